"""Public sample-level API of the demo generator: one sample, or a sample with and without its defect."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.demo.camera import _MARCH_STEP_M
from core.demo.defects import DEFECT_TYPES, _DefectSpec, _apply_defect
from core.demo.objects import DEMO_CATEGORIES, _BUILDERS, _Grid, _Object, _build_object, _grid, _varied_print
from core.demo.params import DEFAULT_SIZE, _variation
from core.demo.scene import _Render, _affected_pixels, _draw_noise, _draw_pose, _render, _sensor
from core.demo.textures import _sample_streams, _textures
from core.errors import UserError


@dataclass
class SyntheticSample:
    """One generated sample (arrays S×S) plus what is needed to check it."""

    rgb: np.ndarray  # uint8 S×S×3
    xyz: np.ndarray  # float32 S×S×3, metres, invalid = (0, 0, 0)
    mask: np.ndarray  # bool S×S, True = defect (all False for good samples)
    label: str  # "good" or a defect type
    height: np.ndarray  # object height field (m) on the object grid
    albedo_grid: np.ndarray  # object albedo on the object grid (linear RGB)
    render: _Render = field(repr=False)
    defect: _DefectSpec | None = None


def _changed(clean: _Render, dirty: _Render) -> np.ndarray:
    """Flat bool: pixels whose noise-free geometry, validity or colour differ at all."""
    diff = np.any(clean.xyz != dirty.xyz, axis=-1) | (clean.occluded != dirty.occluded)
    diff |= clean.grazing != dirty.grazing
    diff |= np.any(clean.rgb != dirty.rgb, axis=-1) | np.any(clean.albedo != dirty.albedo, axis=-1)
    return diff


def _changed_disc(g: _Grid, before: _Object, after: _Object) -> tuple[tuple[float, float], float]:
    """Centre and radius (object coordinates, m) of a disc holding every changed grid cell,
    widened by the reach of the bilinear lookups and the gradient (3 cells)."""
    diff = (before.height != after.height) | np.any(before.albedo != after.albedo, axis=-1)
    if not diff.any():
        return (0.0, 0.0), 0.0
    a, b = g.a[diff], g.b[diff]
    ca, cb = 0.5 * (a.min() + a.max()), 0.5 * (b.min() + b.max())
    return (float(ca), float(cb)), float(np.hypot(a - ca, b - cb).max() + 3 * g.cell)


def render_sample_pair(
    seed: int,
    category: str,
    folder: str,
    index: int,
    size: int = DEFAULT_SIZE,
    defect_strength: float = 1.0,
    full_render: bool = False,
    *,
    object_scale: float = 1.0,
    noise_scale: float = 1.0,
    defect_scale: float = 1.0,
    flying_pixels: float = 0.0,
    dent_shading: float = 1.0,
    print_variation: float = 0.0,
) -> tuple[SyntheticSample, SyntheticSample]:
    """Render sample ``index`` of ``folder`` ("train", "validation", "test/good",
    "test/<defect>") without and with its defect (the same object for good samples).

    Both share pose, appearance and sensor noise; the defect's mask is exactly the set of
    pixels whose noise-free geometry, validity or colour the defect changed. The defective
    render re-traces only the pixels the defect can reach; ``full_render`` re-traces all
    (for checking that shortcut). ``object_scale``, ``noise_scale``, ``defect_scale``,
    ``flying_pixels``, ``dent_shading`` and ``print_variation`` are the variation factors of
    :func:`demo_parameters`."""
    object_scale, noise_scale, defect_scale, flying_pixels, dent_shading, print_variation = _variation(
        object_scale, noise_scale, defect_scale, flying_pixels, dent_shading, print_variation)
    if category not in _BUILDERS:
        raise UserError(f"unknown demo category {category!r}; known: {', '.join(DEMO_CATEGORIES)}")
    label = folder.split("/", 1)[1] if folder.startswith("test/") else "good"
    if folder not in ("train", "validation") and not folder.startswith("test/"):
        raise UserError(f"unknown split folder {folder!r}: use train, validation or test/<good|defect>")
    if label != "good" and label not in DEFECT_TYPES:
        raise UserError(f"unknown defect type {label!r}; known: {', '.join(DEFECT_TYPES)}")
    streams = _sample_streams(seed, category, folder, index)
    tex = _textures(int(seed), category)
    g = _grid(size, object_scale)
    obj = _build_object(category, size, object_scale, tex, streams["scene"])
    if print_variation > 0.0:
        obj = _varied_print(obj, streams["print"], print_variation)
    pose = _draw_pose(streams["scene"], obj.light_azimuth)
    noise = _draw_noise(streams["noise"], size, noise_scale, flying_pixels)
    dobj = spec = None
    if label != "good":
        dobj, spec = _apply_defect(obj, g, label, streams["defect"], float(defect_strength), tex,
                                   defect_scale)
    top = max(float(obj.height.max()), float(dobj.height.max()) if dobj is not None else 0.0)
    ceiling = (np.floor(top / _MARCH_STEP_M) + 1) * _MARCH_STEP_M
    clean_r = _render(obj, g, pose, tex, size, ceiling)
    rgb, xyz, _ = _sensor(clean_r, noise, size)
    empty = np.zeros((size, size), dtype=bool)
    clean = SyntheticSample(rgb, xyz, empty, "good", obj.height, obj.albedo, clean_r)
    if dobj is None:
        return clean, clean
    if full_render:
        dirty_r = _render(dobj, g, pose, tex, size, ceiling)
    else:
        centre, radius = _changed_disc(g, obj, dobj)
        pix = _affected_pixels(clean_r, pose, size, ceiling, centre, radius)
        dirty_r = _render(dobj, g, pose, tex, size, ceiling, pix).merged_into(clean_r)
    if DEFECT_TYPES[label] == "geometry" and dent_shading < 1.0:
        # the dent's change of shading only partly (0: not at all) in the image
        dirty_r.rgb = clean_r.rgb + dent_shading * (dirty_r.rgb - clean_r.rgb)
    rgb_d, xyz_d, _ = _sensor(dirty_r, noise, size)
    mask = _changed(clean_r, dirty_r).reshape(size, size)
    dirty = SyntheticSample(rgb_d, xyz_d, mask, label, dobj.height, dobj.albedo, dirty_r, spec)
    return clean, dirty


def render_sample(
    seed: int, category: str, folder: str, index: int, size: int = DEFAULT_SIZE, defect_strength: float = 1.0,
    *, object_scale: float = 1.0, noise_scale: float = 1.0, defect_scale: float = 1.0,
    flying_pixels: float = 0.0, dent_shading: float = 1.0, print_variation: float = 0.0,
) -> SyntheticSample:
    """The sample as written to ``<category>/<folder>/{rgb,xyz,gt}/<index:03d>.*`` (with its
    defect, if any); ``folder`` is "train", "validation", "test/good" or "test/<defect>"."""
    return render_sample_pair(
        seed, category, folder, index, size, defect_strength,
        object_scale=object_scale, noise_scale=noise_scale, defect_scale=defect_scale,
        flying_pixels=flying_pixels, dent_shading=dent_shading, print_variation=print_variation,
    )[1]
