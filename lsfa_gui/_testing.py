"""Synthetic scored samples for tests and benchmarks (real arrays, no model needed)."""

from __future__ import annotations

import numpy as np

from core.results import SampleResult


def synthetic_result(
    index: int = 0,
    label: str | None = "good",
    size: int = 224,
    with_rgb: bool = True,
    with_xyz: bool = True,
    seed: int = 0,
    part_radius: float = 0.38,
) -> SampleResult:
    """A disc-shaped part (radius ``part_radius`` × size) on a dark background; defects add a Gaussian bump to the map and a mask.

    anomaly_map: raw scores ~0.2-0.25 on good areas, up to ~1.0 on a defect; xyz in metres
    (a shallow dome ~0.4 m from the sensor, background invalid = 0).
    """
    rng = np.random.default_rng(seed * 1000 + index)
    s = size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    r = np.hypot(xx - s / 2, yy - s / 2)
    part = r < s * part_radius
    rgb = np.zeros((s, s, 3), np.uint8)
    rgb[part] = (170, 140, 90)
    rgb[~part] = (30, 30, 30)
    amap = (0.2 + 0.05 * rng.random((s, s))).astype(np.float32)
    mask = np.zeros((s, s), bool)
    if label not in (None, "good"):
        cx, cy = rng.uniform(s * 0.35, s * 0.65, 2)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (s / 18) ** 2))
        amap += (0.8 * blob).astype(np.float32)
        mask = blob > 0.5
    xyz = None
    if with_xyz:
        z = 0.4 - 0.01 * part * np.cos(r / s * 3)
        xyz = np.stack([(xx - s / 2) * 3e-4, (yy - s / 2) * 3e-4, z], -1).astype(np.float32)
        xyz[~part] = 0
    return SampleResult(
        name=f"{label or 'sample'}_{index:03d}",
        label=label,
        image_score=float(amap.max()),
        anomaly_map=amap,
        rgb=rgb if with_rgb else None,
        xyz=xyz,
        mask=mask if label is not None else None,
        split="test",
        seconds=0.05,
    )


def scored_state(results, thresholds=(0.6, 0.5), colour_range=(0.1, 1.1), threshold_spread=None):
    """An InspectionState with ``results`` listed as test samples, scored, under a model "m.lsfa"
    with image/pixel ``thresholds``, ``colour_range`` and the seeded threshold's ``threshold_spread``
    (raw score units)."""
    from lsfa_gui.state import InspectionState, ModelInfo, SampleEntry, ThresholdSettings

    st = InspectionState()
    st.set_entries([SampleEntry(r.name, "test", r.label) for r in results])
    st.set_model(ModelInfo(path="m.lsfa", name="m", seeded=ThresholdSettings(*thresholds), colour_range=colour_range,
                           threshold_spread=threshold_spread))
    for i, r in enumerate(results):
        st.set_result(i, r)
    return st
