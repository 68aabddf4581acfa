"""Qt-free inspection state: the single source of truth the panels read from and write to.

Widgets never call each other; they change this object and listen to its events. Nothing
here imports Qt, so the logic (verdicts, colour range, thresholds) is testable on plain data.

Units: image and pixel thresholds are in the model's raw score units (fused kNN distance);
"normalised" values are positions inside a displayed range, 0 at its low end, 1 at its high end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core import render
from core.data.sample import label_is_defect
from core.regions import Region, find_regions
from core.thresholds import NG, OK, UNCERTAIN, confusion_counts, verdict  # noqa: F401  (OK/NG/UNCERTAIN: used by the widgets)

TUNED_ON_SHOWN = "optimistic (tuned on the samples shown)"
COLORMAPS = ("turbo", "inferno", "viridis", "plasma", "CET-L3")
DEFAULT_COLORMAP = "turbo"  # core.render's TURBO_LUT: the CLI's overlay PNGs use it too


class Event:
    """A minimal synchronous callback list (Qt-free signal)."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for cb in list(self._callbacks):
            cb(*args)


@dataclass
class SampleEntry:
    """One row of the sample browser: what is known about a sample before and after scoring.

    ``result`` is a ``core.pipeline.SampleResult`` (or any object with the same attributes:
    image_score, anomaly_map, rgb, xyz, valid, mask, seconds) once the sample is scored.
    ``ref`` is whatever loads the sample again (a ``SampleRef``), or None.
    """

    name: str
    split: str = ""
    label: str | None = None
    source: str = ""
    ref: Any = None
    result: Any = None

    @property
    def is_defect(self) -> bool | None:
        return label_is_defect(self.label)

    @property
    def image_score(self) -> float | None:
        return None if self.result is None else float(self.result.image_score)

    @property
    def seconds(self) -> float | None:
        if self.result is None:
            return None
        s = getattr(self.result, "seconds", None)
        return None if s is None else float(s)

    @property
    def mask(self) -> np.ndarray | None:
        return None if self.result is None else getattr(self.result, "mask", None)


@dataclass
class ThresholdSettings:
    """The thresholds the window applies now (slider values; None = not set yet), raw score
    units. The model's stored thresholds are core.results.Thresholds; these are what the user
    is trying, until *Save thresholds* writes them back."""

    image: float | None = None
    pixel: float | None = None
    uncertain_until: float | None = None  # optional uncertain band [image, uncertain_until) (core.thresholds.verdict)
    min_defect_area: int = 0  # a part whose largest defect region is smaller (original pixels) stays OK
    image_origin: str = ""  # TUNED_ON_SHOWN when Auto chose the image threshold on the labelled samples shown


@dataclass
class Display:
    """How maps are drawn: colormap, heatmap opacity (0..1), overlays, colour-range mode.

    fade_low_scores: heatmap alpha grows with the score (low end of the range transparent).
    """

    colormap: str = DEFAULT_COLORMAP
    opacity: float = render.DEFAULT_OPACITY
    show_heatmap: bool = True
    show_prediction: bool = True
    show_ground_truth: bool = True
    hide_below_threshold: bool = False
    fade_low_scores: bool = render.DEFAULT_FADE
    per_sample_range: bool = False
    from_threshold: bool = render.DEFAULT_FROM_THRESHOLD  # fixed range starts at the pixel threshold


@dataclass
class ModelInfo:
    """The active model and what the window shows about it (None fields = unknown)."""

    model: Any = None  # the engine's core.model.Model (None: no model open)
    path: str | None = None
    name: str = ""
    seeded: ThresholdSettings = field(default_factory=ThresholdSettings)
    colour_range: tuple[float, float] | None = None
    estimate: dict | None = None  # fit-time self-check on synthetic defects (core.self_check), if run
    # the self-check's lines on modalities kept although their synthetic defects scored near chance
    # (core.self_check.describe_weak_modalities); "" when none
    self_check_note: str = ""
    model_id: str = ""  # the model file's id (core.model_file: its tensors' checksum prefix)
    # the fit's seeded image threshold: (low, high) raw units holding 80 % of its bootstrap cuts
    # (core.results.Thresholds.image_spread); None for thresholds not seeded by the self-check
    threshold_spread: tuple[float, float] | None = None


def entry_has_xyz(entry: SampleEntry) -> bool:
    """The entry's sample has (or, once loaded, will have) 3D points."""
    if entry.result is not None and getattr(entry.result, "xyz", None) is not None:
        return True
    return "xyz" in (getattr(entry.ref, "modalities", None) or ())


def _robust_range(values: np.ndarray, pixel_threshold: float | None) -> tuple[float, float]:
    """(low, high) covering the bulk of ``values``: 1st .. 99.9th percentile, threshold inside."""
    lo, hi = (float(v) for v in np.percentile(values, [1.0, 99.9]))
    if pixel_threshold is not None and np.isfinite(pixel_threshold):
        lo = min(lo, float(pixel_threshold))
        hi = max(hi, float(pixel_threshold))
    if not hi > lo:
        hi = lo + max(abs(lo) * 1e-3, 1e-6)
    return lo, hi


OUTLIER_FENCE = 3.0  # image scores above Q3 + this × IQR are outliers the default score view leaves out


def robust_score_range(scores, keep=()) -> tuple[float, float] | None:
    """(low, high) raw image scores that the histogram and the image-threshold slider show by
    default: from the lowest score up to the highest one that is not an outlier (above Q3 + 3·IQR),
    widened to hold every finite value of ``keep`` (the thresholds), plus 3 % each side. None
    without scores."""
    s = np.asarray([v for v in scores if v is not None and np.isfinite(v)], np.float64)
    if s.size == 0:
        return None
    lo, hi = float(s.min()), float(s.max())
    q1, q3 = np.percentile(s, [25.0, 75.0])
    fence = float(q3 + OUTLIER_FENCE * (q3 - q1))
    if lo < fence < hi:
        hi = float(s[s <= fence].max())
    for v in keep:
        if v is not None and np.isfinite(v):
            lo, hi = min(lo, float(v)), max(hi, float(v))
    if not hi > lo:
        lo, hi = lo - max(abs(lo) * 1e-3, 1e-6), hi + max(abs(hi) * 1e-3, 1e-6)
    pad = 0.03 * (hi - lo)
    return lo - pad, hi + pad


def pooled_map_values(maps: list[np.ndarray], max_values: int = 200_000) -> np.ndarray:
    """A deterministic subsample of all map values (for ranges and quantiles), float32 1-D."""
    if not maps:
        return np.zeros(0, np.float32)
    per_map = max(1, max_values // len(maps))
    parts = []
    for m in maps:
        flat = np.asarray(m, np.float32).ravel()
        step = max(1, flat.size // per_map)
        parts.append(flat[::step])
    return np.concatenate(parts)


class InspectionState:
    """Samples, thresholds, display options and the current selection, with change events.

    Events (all synchronous):
      samples_reset()            the list of entries was replaced
      sample_updated(index)      one entry got a (new) result
      current_changed(index)     the selected sample changed (-1 = none)
      thresholds_changed()       image and/or pixel threshold changed
      display_changed()          colormap, opacity, overlays or colour-range mode changed
      colour_range_changed()     the fixed colour range changed
      model_changed()            a model was loaded / fitted / closed, or saved under a new path
      metrics_changed()          the threshold-free metrics were computed or became stale
      score_view_changed()       the image-score range shown by the histogram (its zoom) changed
      original_loaded(index)     entry ``index``'s sample was loaded at original resolution
    """

    ORIGINALS_KEPT = 6  # loaded samples kept (original resolution; the oldest is dropped first)

    def __init__(self) -> None:
        self.entries: list[SampleEntry] = []
        self.current: int = -1
        self.thresholds = ThresholdSettings()
        self.display = Display()
        self.model = ModelInfo()
        self.metrics: dict[str, float | None] | None = None  # I-AUROC etc. of the scored set; None = stale
        self.metrics_note = ""  # what the metrics were computed over
        self.dataset_root: str | None = None
        self.category: str | None = None
        self._colour_range: tuple[float, float] | None = None
        self._colour_range_locked = False
        self._regions: dict[int, tuple[Any, float | None, list[Region]]] = {}  # id(entry) -> (result, pixel thr, regions)
        self.samples_reset = Event()
        self.sample_updated = Event()
        self.current_changed = Event()
        self.thresholds_changed = Event()
        self.display_changed = Event()
        self.colour_range_changed = Event()
        self.model_changed = Event()
        self.metrics_changed = Event()
        self._score_view: tuple[float, float] | None = None  # the histogram's zoom (raw image scores)
        self.score_view_changed = Event()
        self.original_loaded = Event()
        self._originals: dict[int, tuple[Any, Any]] = {}  # id(entry) -> (entry, loaded Sample), oldest first

    # ------------------------------------------------------------------ samples
    def set_entries(self, entries: list[SampleEntry]) -> None:
        self.entries = list(entries)
        self._regions.clear()
        self._score_view = None  # new samples: the histogram shows their scores again
        self._originals.clear()
        self.current = -1
        self.set_metrics(None)
        self.samples_reset.emit()
        self.current_changed.emit(-1)

    def add_entries(self, entries: list[SampleEntry]) -> list[int]:
        """Append entries (e.g. single samples opened by the user); returns their indices."""
        start = len(self.entries)
        self.entries.extend(entries)
        self.set_metrics(None)
        self.samples_reset.emit()
        return list(range(start, len(self.entries)))

    def set_result(self, index: int, result: Any) -> None:
        """Attach a scored result to entry ``index``; fills the fixed range on first result."""
        self.entries[index].result = result
        if self._colour_range is None:
            self._set_colour_range(self._default_range([result.anomaly_map]), emit=True)
        self.sample_updated.emit(index)
        if index == self.current:
            self.current_changed.emit(index)

    def clear_results(self) -> None:
        for e in self.entries:
            e.result = None
        self.set_metrics(None)
        self.samples_reset.emit()
        self.current_changed.emit(self.current)

    @property
    def scored(self) -> list[int]:
        return [i for i, e in enumerate(self.entries) if e.result is not None]

    def set_current(self, index: int) -> None:
        index = int(index)
        if not -1 <= index < len(self.entries):
            raise IndexError(index)
        if index != self.current:
            self.current = index
            self.current_changed.emit(index)

    @property
    def current_entry(self) -> SampleEntry | None:
        return self.entries[self.current] if 0 <= self.current < len(self.entries) else None

    def has_xyz(self) -> bool | None:
        """Whether the open model or any listed sample has 3D points (None: nothing is open)."""
        if "xyz" in tuple(getattr(self.model.model, "modalities", ()) or ()):
            return True
        if not self.entries and self.model.model is None:
            return None
        return any(entry_has_xyz(e) for e in self.entries)

    # ------------------------------------------------------------------ thresholds
    def set_thresholds(self, image: float | None = None, pixel: float | None = None, image_origin: str = "") -> None:
        """Change one or both thresholds (raw units); None leaves that one unchanged. A new image
        threshold records ``image_origin`` (e.g. TUNED_ON_SHOWN; empty: set by hand or the model)."""
        changed = False
        if image is not None and image != self.thresholds.image:
            self.thresholds.image = float(image)
            self.thresholds.image_origin = image_origin
            changed = True
        if pixel is not None and pixel != self.thresholds.pixel:
            self.thresholds.pixel = float(pixel)
            changed = True
        if changed:
            self.thresholds_changed.emit()
            if pixel is not None and self.display.from_threshold and not self.display.per_sample_range:
                self.colour_range_changed.emit()  # the range starts at the pixel threshold

    def set_uncertain_until(self, value: float | None) -> None:
        """The upper end of the uncertain band (raw units; None = no band)."""
        value = None if value is None else float(value)
        if value != self.thresholds.uncertain_until:
            self.thresholds.uncertain_until = value
            self.thresholds_changed.emit()

    def set_min_defect_area(self, pixels: int) -> None:
        """A part whose largest defect region is smaller than this (original pixels; 0 = off) stays OK."""
        pixels = int(pixels)
        if pixels != self.thresholds.min_defect_area:
            self.thresholds.min_defect_area = pixels
            self.thresholds_changed.emit()

    def verdict(self, entry: SampleEntry) -> str | None:
        """"OK" / "NG" (or "UNCERTAIN" inside the uncertain band) at the current image threshold,
        None if unscored or no threshold."""
        score = entry.image_score
        if score is None or self.thresholds.image is None:
            return None
        thr = self.thresholds
        largest = None
        if thr.min_defect_area:
            regions = self.regions(entry)
            largest = regions[0].area_px if regions else 0
        return verdict(score, thr.image, thr.uncertain_until, largest, thr.min_defect_area)

    def regions(self, entry: SampleEntry) -> list[Region]:
        """The defect regions of a scored entry at the current pixel threshold, largest first, in
        original pixels (core.regions; cached per result and threshold). Empty if unscored or no
        threshold."""
        if entry.result is None or self.thresholds.pixel is None:
            return []
        cached = self._regions.get(id(entry))
        if cached is not None and cached[0] is entry.result and cached[1] == self.thresholds.pixel:
            return cached[2]
        r = entry.result
        regions = find_regions(r.anomaly_map, self.thresholds.pixel, getattr(r, "xyz", None), getattr(r, "grid", None))
        self._regions[id(entry)] = (entry.result, self.thresholds.pixel, regions)
        return regions

    # ------------------------------------------------------------------ original samples
    def original(self, entry: SampleEntry | None):
        """The entry's sample as loaded (core.data.sample.Sample at original resolution), if it
        was loaded and is still kept; else None."""
        kept = self._originals.get(id(entry))
        return kept[1] if kept is not None and kept[0] is entry else None

    def set_original(self, entry: SampleEntry, sample) -> None:
        """Keep ``entry``'s loaded sample (the oldest beyond ORIGINALS_KEPT is dropped) and tell
        the views, if the entry is still listed."""
        self._originals.pop(id(entry), None)
        self._originals[id(entry)] = (entry, sample)
        while len(self._originals) > self.ORIGINALS_KEPT:
            self._originals.pop(next(iter(self._originals)))
        for i, e in enumerate(self.entries):
            if e is entry:
                self.original_loaded.emit(i)
                break

    def image_score_range(self) -> tuple[float, float] | None:
        """(min, max) raw image score over scored samples, None if fewer than one."""
        scores = [e.image_score for e in self.entries if e.result is not None]
        if not scores:
            return None
        lo, hi = float(min(scores)), float(max(scores))
        if self.thresholds.image is not None:
            lo, hi = min(lo, self.thresholds.image), max(hi, self.thresholds.image)
        if not hi > lo:
            hi = lo + max(abs(lo) * 1e-3, 1e-6)
        return lo, hi

    # ------------------------------------------------------------------ image-score view (histogram zoom)
    def set_score_view(self, rng: tuple[float, float] | None) -> None:
        """Show image scores ``rng`` = (low, high), raw units, in the histogram (its zoom; the
        image-threshold slider follows it); None: the default, :func:`robust_score_range`."""
        if rng is not None:
            lo, hi = float(rng[0]), float(rng[1])
            if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
                return
            rng = (lo, hi)
        if rng != self._score_view:
            self._score_view = rng
            self.score_view_changed.emit()

    @property
    def zoomed(self) -> bool:
        """The histogram shows a range the user zoomed to (not the default)."""
        return self._score_view is not None

    def score_view(self) -> tuple[float, float] | None:
        """(low, high) raw image scores the histogram shows: the user's zoom, else the bulk of the
        scored samples' scores with the thresholds (:func:`robust_score_range`); None unscored."""
        if self._score_view is not None:
            return self._score_view
        scores = [e.image_score for e in self.entries if e.result is not None]
        return robust_score_range(scores, (self.thresholds.image, self.thresholds.uncertain_until))

    def image_slider_range(self) -> tuple[float, float] | None:
        """(low, high) raw values at the image-threshold slider's ends: the histogram's view,
        widened to hold the current image threshold (so the slider always shows it exactly)."""
        view = self.score_view()
        thr = self.thresholds.image
        if view is None or thr is None or view[0] <= thr <= view[1]:
            return view
        lo, hi = min(view[0], thr), max(view[1], thr)
        return lo, hi

    # ------------------------------------------------------------------ model
    def set_model(self, info: ModelInfo) -> None:
        """Make ``info`` the active model: seeds thresholds and (if given) the colour range."""
        self.model = info
        self._colour_range_locked = False
        self._colour_range = None
        if info.colour_range is not None:
            self._set_colour_range(info.colour_range, emit=False)
            self._colour_range_locked = True
        self.model_changed.emit()
        self.colour_range_changed.emit()
        self.set_min_defect_area(info.seeded.min_defect_area)
        self.set_uncertain_until(info.seeded.uncertain_until)
        self.set_thresholds(info.seeded.image, info.seeded.pixel)

    def set_model_path(self, path: str) -> None:
        """The active model now lives in ``path`` (saved under a new name)."""
        self.model.path = path
        self.model.name = Path(path).name
        self.model_changed.emit()

    def set_seeded(self, image: float | None, pixel: float | None, min_defect_area: int = 0,
                   uncertain_until: float | None = None) -> None:
        """The thresholds stored in the model file (after saving the live ones into it)."""
        self.model.seeded = ThresholdSettings(image, pixel, uncertain_until, min_defect_area=int(min_defect_area))
        self.model_changed.emit()

    # ------------------------------------------------------------------ metrics
    def set_metrics(self, values: dict[str, float | None] | None, note: str = "") -> None:
        """Threshold-free metrics of the scored set (None where undefined); ``values=None``
        marks them stale (new samples, results or model)."""
        values = None if values is None else dict(values)
        if values is None and self.metrics is None:
            return
        self.metrics = values
        self.metrics_note = note
        self.metrics_changed.emit()

    # ------------------------------------------------------------------ display
    def set_display(self, **changes: Any) -> None:
        for key, value in changes.items():
            if not hasattr(self.display, key):
                raise AttributeError(f"unknown display option {key!r}")
        changed = {k: v for k, v in changes.items() if getattr(self.display, k) != v}
        if not changed:
            return
        for key, value in changed.items():
            setattr(self.display, key, value)
        self.display_changed.emit()

    @property
    def colour_range(self) -> tuple[float, float] | None:
        """The fixed (low, high) raw-score range shared by the heatmap and the cloud."""
        return self._colour_range

    def set_colour_range(self, low: float, high: float) -> None:
        """Fix the colour range explicitly (keeps it until a new model is set)."""
        if not high > low:
            raise ValueError(f"colour range needs high > low, got ({low}, {high})")
        self._colour_range_locked = True
        self._set_colour_range((float(low), float(high)), emit=True)

    def fit_colour_range_to_results(self) -> None:
        """Fix the range to the bulk of all scored maps (unless the model or user fixed it)."""
        if self._colour_range_locked:
            return
        maps = [e.result.anomaly_map for e in self.entries if e.result is not None]
        if maps:
            self._set_colour_range(self._default_range(maps), emit=True)

    def display_range(self, entry: SampleEntry | None = None) -> tuple[float, float] | None:
        """The colour range for ``entry`` (default: current): fixed (from the pixel threshold up
        when ``display.from_threshold``), or per-sample if toggled."""
        entry = entry if entry is not None else self.current_entry
        if self.display.per_sample_range and entry is not None and entry.result is not None:
            amap = np.asarray(entry.result.anomaly_map)
            lo, hi = float(amap.min()), float(amap.max())
            return (lo, hi if hi > lo else lo + 1e-6)
        if self._colour_range is not None and self.display.from_threshold:
            return render.range_from_threshold(self._colour_range, self.thresholds.pixel)
        return self._colour_range

    def _default_range(self, maps: list[np.ndarray]) -> tuple[float, float]:
        return _robust_range(pooled_map_values(maps), self.thresholds.pixel)

    def _set_colour_range(self, rng: tuple[float, float], emit: bool) -> None:
        if rng != self._colour_range:
            self._colour_range = rng
            if emit:
                self.colour_range_changed.emit()

    # ------------------------------------------------------------------ summaries
    def labelled_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """(is_defect bool (n,), raw image score (n,)) of scored samples with a known label."""
        ys, ss = [], []
        for e in self.entries:
            if e.result is not None and e.is_defect is not None:
                ys.append(e.is_defect)
                ss.append(e.image_score)
        return np.asarray(ys, bool), np.asarray(ss, np.float64)

    def confusion(self) -> dict[str, int] | None:
        """TP/FP/FN/TN of labelled scored samples at the current image threshold."""
        y, s = self.labelled_scores()
        if y.size == 0 or self.thresholds.image is None:
            return None
        return confusion_counts(y, s, self.thresholds.image)


def normalised(value: float | None, rng: tuple[float, float] | None) -> float | None:
    """Position of a raw value inside ``rng`` (0 = low end, 1 = high end), None if unknown."""
    if value is None or rng is None:
        return None
    lo, hi = rng
    return (float(value) - lo) / (hi - lo) if hi > lo else 0.0
