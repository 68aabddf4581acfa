"""Job functions the window runs in the background: thin wrappers over the engine (Qt-free).

Each ``*_job(...)`` returns a function ``fn(progress)`` for :class:`lsfa_gui.runner.JobRunner`:
a generator that yields small messages to the window and returns the job's result (or a
plain function that returns it). The messages:

  DatasetOpened(listing)            the samples to show (before anything is scored)
  ModelReady(model, path, fitted)   a model was loaded or fitted (and saved to ``path``)
  SampleScored(index, result)       one entry's SampleResult
  SampleFailed(index, message)      one sample could not be read/scored (the job goes on)
  Note(text)                        something worth a line in the log
  WatchScored(record)               a watched part was scored (or failed): a core.watch.WatchRecord
  DataMismatch(messages)            the model does not fit the data being scored (core.compat findings)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generator

from core.errors import ModelFileError, UserError
from core.naming import sanitize
from core.progress import Progress

DEMO_CATEGORY = "puck"
DEMO_COUNTS = dict(size=256, n_train=30, n_validation=6, n_test_good=6, n_test_per_defect=3)  # < 1 min on 2 cores
MODEL_SUFFIX = ".lsfa"


# ---------------------------------------------------------------------- messages
@dataclass
class DatasetListing:
    root: str
    format: str
    category: str
    categories: list[str]
    refs: list[Any]  # SampleRef, in display order
    has_train: bool = False


@dataclass
class DatasetOpened:
    listing: DatasetListing


@dataclass
class ModelReady:
    model: Any
    path: str | None
    fitted: bool = False


@dataclass
class SampleScored:
    index: int
    result: Any


@dataclass
class WatchScored:
    record: Any  # core.watch.WatchRecord (row, result or None, ref)


@dataclass
class SampleFailed:
    index: int
    message: str
    quiet: bool = False  # already told once for the whole batch (a DataMismatch): no line of its own


@dataclass
class Note:
    text: str
    level: str = "info"


@dataclass
class DataMismatch:
    messages: list[str]


@dataclass
class SampleRequest:
    """What to score: entry index + the SampleRef to load."""

    index: int
    ref: Any


@dataclass
class JobSummary:
    """What a listing / fitting / scoring job did (returned as the job result)."""

    model: Any = None
    model_path: str | None = None
    listing: DatasetListing | None = None
    scored: int = 0
    failed: int = 0


# ---------------------------------------------------------------------- paths
def cache_dir() -> Path:
    """Per-user cache (``$LSFA_CACHE_DIR`` or ``$XDG_CACHE_HOME/lsfa-inspector`` or ~/.cache/…)."""
    from core.prepare import default_cache_dir

    return default_cache_dir()


def demo_dir() -> Path:
    return cache_dir() / "demo"


def demo_model_path(category: str = DEMO_CATEGORY) -> Path:
    return cache_dir() / f"demo-{category}{MODEL_SUFFIX}"


def fitted_model_path(dataset_root: str | Path, category: str) -> Path:
    """Where the GUI keeps a model it fitted (never inside the user's dataset folder)."""
    stem = sanitize(f"{Path(dataset_root).name}-{category}")
    return cache_dir() / "models" / f"{stem}{MODEL_SUFFIX}"


def fit_output_path(dataset_root: str | Path, category: str) -> Path:
    """Where a model fitted in the GUI is saved: beside the dataset as ``<root>/<category>.lsfa``
    (``<category>-2.lsfa``, ``-3``… rather than overwrite a file), or in the per-user cache
    (:func:`fitted_model_path`) when the dataset folder cannot be written."""
    root = Path(dataset_root)
    if not _writable(root):
        return fitted_model_path(root, category)
    stem = sanitize(category)
    path, n = root / f"{stem}{MODEL_SUFFIX}", 1
    while path.exists():
        n += 1
        path = root / f"{stem}-{n}{MODEL_SUFFIX}"
    return path


def _writable(folder: Path) -> bool:
    """A file can be created in ``folder`` (tried, not guessed from the permission bits)."""
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".lsfa-write-test-"):
            return True
    except OSError:
        return False


def saved_where(model_path: Path, dataset_root: str | Path) -> str:
    """A sentence saying where a fitted model went and why."""
    if Path(model_path).parent == Path(dataset_root):
        return f"Model saved beside the dataset: {model_path}"
    if not _writable(Path(dataset_root)):
        return f"Model saved to {model_path} (the dataset folder {dataset_root} is not writable)"
    return f"Model saved to {model_path}"


# ---------------------------------------------------------------------- building blocks
def list_dataset(root: str | Path, category: str | None = None, split: str = "test") -> DatasetListing:
    """Open a dataset and list the samples of ``split`` (falls back to every split it has)."""
    from core.data.dataset import open_dataset

    ds = open_dataset(root)
    if not ds.categories:
        raise UserError(f"{root}: the dataset has no categories")
    cat = category or ds.categories[0]
    splits = ds.splits(cat)
    refs = ds.samples(cat, split) if split in splits else [r for s in splits for r in ds.samples(cat, s)]
    return DatasetListing(str(ds.root), ds.format, cat, list(ds.categories), refs, "train" in splits)


def train_summary(root: str | Path, category: str) -> tuple[int, tuple[str, ...]]:
    """(number of training samples, modalities they have) of a dataset's category; (0, ()) when
    it has no train split or cannot be read (the fit itself then says why)."""
    from core.data.dataset import open_dataset

    try:
        ds = open_dataset(root)
        refs = ds.samples(category, "train") if "train" in ds.splits(category) else []
    except (UserError, OSError):
        return 0, ()
    modalities = {m for r in refs for m in r.modalities}
    return len(refs), tuple(m for m in ("rgb", "xyz") if m in modalities)


def score_requests(model, requests: list[SampleRequest], progress: Progress) -> Generator[Any, None, tuple[int, int]]:
    """Score each request, yielding SampleScored / SampleFailed (a bad sample is reported and
    skipped); returns (scored, failed). The model/data check (core.compat) runs first and on the
    scores: its findings are one DataMismatch each time, and samples lacking a modality the model
    needs (or not the size of its region of interest) are skipped with a quiet SampleFailed each
    (the window does not log them one by one)."""
    from core.compat import check_inputs, check_scores, missing_reason, roi_reason

    findings = check_inputs(model, [r.ref for r in requests])
    if findings:
        yield DataMismatch([f.message for f in findings])
    reasons = {r.index: missing_reason(model, r.ref) or roi_reason(model, r.ref) for r in requests}
    lacking = [r for r in requests if reasons[r.index]]
    for r in lacking:
        yield SampleFailed(r.index, reasons[r.index], quiet=True)
    requests = [r for r in requests if not reasons[r.index]]
    ok = 0
    failures: list[SampleFailed] = []
    scores = []

    def skip(k, _ref, exc) -> None:
        failures.append(SampleFailed(requests[k].index, str(exc)))

    reported = 0
    for k, _ref, result in model.score_each([r.ref for r in requests], progress, "Scoring", on_error=skip):
        yield from failures[reported:]
        reported = len(failures)
        yield SampleScored(requests[k].index, result)
        scores.append(result.image_score)
        ok += 1
    yield from failures[reported:]
    late = check_scores(model, scores)
    if late:
        yield DataMismatch([f.message for f in late])
    return ok, len(failures) + len(lacking)


def load_or_fit(
    dataset_root: str | Path, category: str, model_path: Path, progress: Progress, config=None, save_path: Path | None = None
) -> Generator[Any, None, tuple[Any, bool]]:
    """Load ``model_path`` if it is a readable model fitted with ``config`` (default: the default
    settings), else fit on the dataset with it and save to ``save_path`` (default: ``model_path``);
    returns (model, fitted). A cached model fitted with other settings (an earlier version's
    defaults) is fitted anew, so an upgrade's new defaults reach the models this app keeps."""
    from core.config import FitConfig
    from core.model_io import load_model

    if model_path.is_file():
        try:
            progress.update("Loading model", 0, 1)
            model = load_model(model_path)
        except ModelFileError as exc:
            yield Note(f"Cached model unusable ({exc}); fitting a new one", "warning")
        else:
            # "ensemble: auto" compared as it resolves for the data the model was fitted on
            changed = model.config.differences(config if config is not None else FitConfig(),
                                               model.trained_on_point_clouds)
            if not changed:
                yield Note(f"Loaded cached model {model_path}")
                return model, False
            yield Note(f"Cached model {model_path} was fitted with other settings than this version's "
                       f"({', '.join(changed)}); fitting a new one")
    model = yield from fit_and_save(dataset_root, category, save_path or model_path, progress, config)
    return model, True


def fit_and_save(dataset_root, category, model_path: Path, progress: Progress, config=None, roi=None,
                 roi_source: str = "region of interest", xyz_units: str | None = None):
    """Fit (core.pipeline.fit; with the region of interest ``roi`` in original pixels, as
    ``lsfa fit --roi``; point clouds read in ``xyz_units``, as ``lsfa fit --xyz-units``, None:
    metres) and save to ``model_path``, yielding Notes; returns the model."""
    from core.config import FitConfig
    from core.model_io import save_model
    from core.pipeline import fit

    config = config if config is not None else FitConfig()
    yield Note(f"Fitting {category!r} of {dataset_root} (this runs in the background)")
    model = fit(dataset_root, category, config, progress=progress, xyz_units=xyz_units, roi=roi,
                roi_source=roi_source)
    progress.update("Saving model", 0, 1)
    save_model(model, model_path)
    progress.update("Saving model", 1, 1)
    yield Note(saved_where(model_path, dataset_root), "success")
    return model


# ---------------------------------------------------------------------- jobs
def open_dataset_job(root: str | Path, category: str | None, model=None, fit_if_needed: bool = False, config=None,
                     xyz_units: str | None = None):
    """List a dataset; then score it with ``model`` or (``fit_if_needed``) a model fitted on it
    (with ``config`` and its point clouds read in ``xyz_units``, from the Fit settings dialog)."""

    def run(progress: Progress):
        progress.update("Reading dataset", 0, 1)
        listing = list_dataset(root, category)
        yield DatasetOpened(listing)
        out = JobSummary(listing=listing)
        m = model
        if m is None and fit_if_needed:
            if not listing.has_train:
                raise UserError(f"{root}: no train split to fit a model on; open a model file instead")
            path = fit_output_path(listing.root, listing.category)
            if config is not None:  # settings chosen by the user: always a fresh fit
                m = yield from fit_and_save(listing.root, listing.category, path, progress, config,
                                            xyz_units=xyz_units)
                fitted = True
            else:  # a model this app fitted earlier with the default settings, or a new one
                cached = fitted_model_path(listing.root, listing.category)
                m, fitted = yield from load_or_fit(listing.root, listing.category, cached, progress, save_path=path)
                path = path if fitted else cached
            out.model_path = str(path)
            yield ModelReady(m, str(path), fitted)
        out.model = m
        if m is not None:
            reqs = [SampleRequest(i, r) for i, r in enumerate(listing.refs)]
            out.scored, out.failed = yield from score_requests(m, reqs, progress)
        return out

    return run


def demo_fit_config():
    """The demo's first model: frozen features (no LSFA adaptor training), so a first launch shows
    scored samples within about a minute; Fit… with adaptation gives the full method."""
    from core.config import FitConfig

    return FitConfig(adapt=False)


def demo_job(category: str = DEMO_CATEGORY, counts: dict | None = None, config=None):
    """Generate the demo data once (per-user cache), load or fit its model (``config``; default
    :func:`demo_fit_config`), score the test split."""

    def run(progress: Progress):
        from core.demo import MARKER_NAME, generate_demo_dataset

        root = demo_dir()
        if not (root / MARKER_NAME).is_file():
            yield Note(f"Generating the demo dataset in {root} (first launch only)")
            generate_demo_dataset(root, categories=[category], progress=progress, force=True, **(counts or DEMO_COUNTS))
        listing = list_dataset(root, category)
        yield DatasetOpened(listing)
        path = demo_model_path(category)
        if config is None and not path.is_file():
            yield Note("The demo model is fitted with frozen features for a quick first look; "
                       "Fit… with LSFA adaptation ticked trains the adaptors too.")
        model, fitted = yield from load_or_fit(root, category, path, progress,
                                               config if config is not None else demo_fit_config())
        yield ModelReady(model, str(path), fitted)
        reqs = [SampleRequest(i, r) for i, r in enumerate(listing.refs)]
        scored, failed = yield from score_requests(model, reqs, progress)
        return JobSummary(model, str(path), listing, scored, failed)

    return run


def load_model_job(path: str | Path, requests: list[SampleRequest] | None = None):
    """Load the model file ``path`` (yields ModelReady), then score ``requests`` with it."""

    def run(progress: Progress):
        from core.model_io import load_model

        progress.update("Loading model", 0, 1)
        model = load_model(path)
        progress.update("Loading model", 1, 1)
        yield ModelReady(model, str(path), False)
        out = JobSummary(model=model, model_path=str(path))
        if requests:
            out.scored, out.failed = yield from score_requests(model, requests, progress)
        return out

    return run


def score_job(model, requests: list[SampleRequest]):
    def run(progress: Progress):
        scored, failed = yield from score_requests(model, requests, progress)
        return JobSummary(model=model, scored=scored, failed=failed)

    return run


def fit_job(dataset_root: str | Path, category: str, model_path: str | Path | None = None, config=None, score_refs=None,
            roi=None, roi_source: str = "region of interest", xyz_units: str | None = None):
    """Fit (with the region of interest ``roi``, original pixels, if given; point clouds read in
    ``xyz_units``, None: metres), save (to ``model_path``; None: :func:`fit_output_path`), then
    (optionally) score the given entries."""

    def run(progress: Progress):
        nonlocal model_path
        model_path = model_path or fit_output_path(dataset_root, category)
        model = yield from fit_and_save(dataset_root, category, Path(model_path), progress, config, roi, roi_source,
                                        xyz_units)
        yield ModelReady(model, str(model_path), True)
        out = JobSummary(model=model, model_path=str(model_path))
        if score_refs:
            out.scored, out.failed = yield from score_requests(model, score_refs, progress)
        return out

    return run


def open_samples_job(paths: list[str | Path]):
    def run(progress: Progress) -> list:
        from core.data.dataset import load_inputs

        progress.update("Reading samples", 0, 1)
        return load_inputs([Path(p) for p in paths])

    return run


@dataclass
class ModelSaved:
    """A model file was written: its path, model id and the thresholds stored in it."""

    path: str
    model_id: str
    thresholds: Any  # core.results.Thresholds


def save_model_job(model, path: str | Path, image: float | None = None, pixel: float | None = None,
                   min_defect_area: int | None = None, uncertain_until: float | None = None):
    """Write ``model`` atomically to ``path``, with the thresholds ``image`` and ``pixel`` (raw
    units) and the uncertain band's upper end ``uncertain_until`` (None: no band) when both
    thresholds are given, and the minimum defect area (original pixels; None: keep the model's);
    returns :class:`ModelSaved`. A copy is written: the open model is left untouched for the
    window to update on its own thread."""

    def run(progress: Progress) -> ModelSaved:
        import copy

        from core.model_io import save_model
        from core.results import Thresholds

        progress.update("Saving model", 0, 1)
        saved = copy.copy(model)
        saved.info = dict(model.info)
        area = getattr(model.thresholds, "min_defect_area", 0) if min_defect_area is None else int(min_defect_area)
        if image is not None and pixel is not None:
            band = None if uncertain_until is None or uncertain_until <= image else float(uncertain_until)
            saved.thresholds = Thresholds(float(image), float(pixel), "user (GUI)", band, min_defect_area=area)
        elif area != getattr(model.thresholds, "min_defect_area", 0):
            saved.thresholds = copy.copy(model.thresholds)
            saved.thresholds.min_defect_area = area
        model_id = save_model(saved, path)
        progress.update("Saving model", 1, 1)
        return ModelSaved(str(path), model_id, saved.thresholds)

    return run


def watch_job(model, folder: str, csv_path: str | None = None, recursive: bool = False,
              settle_s: float | None = None, poll_s: float | None = None, paused: Callable[[], bool] | None = None):
    """Watch ``folder`` until cancelled (:func:`core.watch.watch`): each new part is appended to
    the CSV log ``csv_path`` (as ``lsfa watch --csv``) and streamed as :class:`WatchScored`.
    Samples already in the log are not scored again. ``paused()``: True holds scoring."""
    from core import watch as engine

    def run(progress: Progress):
        log = engine.WatchLog(csv_path) if csv_path else None
        try:
            if log is not None and log.rows_before:
                yield Note(f"Continuing {csv_path}: {len(log.done)} sample(s) already scored are skipped")
            for record in engine.watch(
                model, folder, recursive=recursive, progress=progress, paused=paused,
                settle_s=engine.SETTLE_S if settle_s is None else settle_s,
                poll_s=engine.POLL_S if poll_s is None else poll_s, done=log.done if log else (),
            ):
                if log is not None:
                    log.append(record.row)
                yield WatchScored(record)
        finally:
            if log is not None:
                log.close()

    return run
