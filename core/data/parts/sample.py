"""One rendered sample (RGB, xyz in metres, exact mask) in memory."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.parts.common import (
    _design_rng, _sample_rng, FOCAL_PER_PIXEL, MASK_COLOUR, MASK_DEPTH_MM, PARTS_CATEGORIES, PARTS_DEFECT_TYPES,
)
from core.data.parts.defects import _apply_defect
from core.data.parts.optics import _lights, _merge, _rays_over, _render, _render_table, _table_albedo, _view
from core.data.parts.sensor import _camera, _display, _photo, _sensor
from core.data.parts.shapes import _BUILDERS
from core.errors import UserError


@dataclass
class PartsSample:
    """One rendered sample (see :func:`render_parts_sample`)."""

    rgb: np.ndarray  # (H, W, 3) uint8
    xyz: np.ndarray  # (H, W, 3) float32 metres, invalid = 0
    mask: np.ndarray  # (H, W) bool defect mask (all False for good samples)
    part: np.ndarray  # (H, W) bool: pixels that see the part in the defect-free render
    rgb_nodefect: np.ndarray | None  # (H, W, 3) uint8: the same sample without its defect
    info: dict


def render_parts_sample(
    category: str,
    seed: int = 0,
    split: str = "test",
    label: str = "good",
    index: int = 0,
    size: int = 400,
    with_nodefect: bool = False,
    camera_distance: float = 1.0,
    one_design: bool = False,
) -> PartsSample:
    """Render one sample of the parts family (deterministic in all arguments).

    label: "good" or a defect type of ``PARTS_DEFECT_TYPES``. with_nodefect: also fill
    ``rgb_nodefect`` for colour defects (for dents, bumps and good samples it is ``rgb``;
    otherwise None unless asked for). camera_distance: the camera's distance from the table as a
    multiple of the usual 390–420 mm (2: the part half as wide in the frame, every pixel twice as
    wide on the part, the range noise as the sensor model gives it at that distance).
    one_design: every part of the category has the same design (dimensions, holes, teeth,
    colour scheme, decor; drawn from ``seed`` and the category), as on a production line making
    one product; each part keeps its own surface texture, tone, pose, lighting, sensor noise and
    defect. False (default): each part is a new design of its category, a family of products.
    """
    if not (isinstance(camera_distance, (int, float)) and 0.5 <= camera_distance <= 4):
        raise UserError(f"camera_distance must be a number in 0.5..4, got {camera_distance!r}")
    if category not in _BUILDERS:
        raise UserError(f"unknown parts category {category!r} (known: {', '.join(PARTS_CATEGORIES)})")
    if label != "good" and label not in PARTS_DEFECT_TYPES:
        raise UserError(f"unknown parts defect type {label!r} (known: {', '.join(PARTS_DEFECT_TYPES)})")
    size = int(size)
    ss = _sample_rng(seed, category, split, label, index)
    r_part, r_view, r_light, r_table, r_defect, r_cam, r_sensor = (np.random.default_rng(s) for s in ss.spawn(7))
    pitch = 405.0 * camera_distance / FOCAL_PER_PIXEL / size  # approximate pixel pitch on the table (mm)
    design = _design_rng(seed, category) if one_design else r_part
    clean = _BUILDERS[category](design, r_part, pitch / 1.25)
    part, window = clean, None
    info: dict = {"category": category, "split": split, "label": label, "index": int(index), "seed": int(seed)}
    if one_design:
        info["one_design"] = True
    if label != "good":
        part, dinfo, window = _apply_defect(r_defect, clean, label)
        info["defect"] = dinfo
    hmax = float(max(clean.height.max(), part.height.max())) + 0.05
    view, vinfo = _view(r_view, size, clean, hmax, camera_distance)
    lights, linfo = _lights(r_light)
    table = _table_albedo(r_table, view)
    cam = _camera(r_cam, size)
    info.update(view=vinfo, lights=linfo, table=table[3])
    table_render = _render_table(view, table, lights)
    base = _merge(table_render, _render(view, clean, table_render, lights, _rays_over(view, clean, hmax), hmax))
    disp_base = _display(base.rgb, cam)
    mask = np.zeros(size * size, dtype=bool)
    final, disp = base, disp_base
    if label != "good":
        rows, cols = window
        box = (part.p0 + (cols.start - 1) * part.cell, part.p0 + cols.stop * part.cell,
               part.q0 + (rows.start - 1) * part.cell, part.q0 + rows.stop * part.cell)
        pix = _rays_over(view, part, hmax, box)
        sub = _render(view, part, table_render, lights, pix, hmax)
        changed = np.abs(sub.z - base.z[pix]) > MASK_DEPTH_MM
        if label in ("dent", "bump"):  # geometry only: the image stays the defect-free render
            sub.rgb, sub.diffuse_lum, sub.spec_lum = base.rgb[pix], base.diffuse_lum[pix], base.spec_lum[pix]
        else:
            disp = disp_base.copy()
            disp[pix] = _display(sub.rgb, cam, pix)
            changed |= np.abs(disp[pix] - disp_base[pix]).max(axis=1) > MASK_COLOUR
        mask[pix] = changed
        final = _merge(base, sub)
    xyz, sinfo = _sensor(r_sensor, view, final)
    info["sensor"] = sinfo
    rgb = _photo(disp, cam, size)
    rgb_nd = rgb if disp is disp_base else (_photo(disp_base, cam, size) if with_nodefect else None)
    mask = mask.reshape(size, size)
    info["mask_fraction"] = round(float(mask.mean()), 6)
    return PartsSample(rgb, xyz, mask, base.part.reshape(size, size), rgb_nd, info)


