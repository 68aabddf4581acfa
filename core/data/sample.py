"""One inspection sample: registered RGB image + organized point cloud + optional GT mask."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

GOOD = "good"  # the label of defect-free samples


def label_is_defect(label: str | None) -> bool | None:
    """Ground truth from a label: None when unknown, False for "good", True for a defect type."""
    return None if label is None else label != GOOD


def valid_points(xyz):
    """H×W bool: points of an organized cloud that are measured, i.e. not exactly (0, 0, 0).

    The readers turn NaN/inf into (0, 0, 0), so this is the one validity test of the project
    (:func:`finite_valid_points` also drops non-finite points, for arrays not from a reader).
    """
    return (xyz[..., 0] != 0) | (xyz[..., 1] != 0) | (xyz[..., 2] != 0)


def finite_valid_points(xyz: np.ndarray) -> np.ndarray:
    """H×W bool: :func:`valid_points` that are also finite."""
    return np.isfinite(xyz).all(-1) & valid_points(xyz)


@dataclass
class Sample:
    """A loaded sample. Arrays share the same H×W grid.

    rgb:   H×W×3 uint8, or None for 3D-only data.
    xyz:   H×W×3 float32 organized point cloud in metres; invalid points are exactly (0,0,0)
           (NaN/inf from sensors are converted to 0 by the readers); None for RGB-only data.
    mask:  H×W bool ground-truth defect mask (True = defect), or None when unknown.
    label: "good", a defect type name, or None when unknown.
    roi:   H×W bool region of interest (True = inspected) of the model scoring it, or None
           (everything inspected); it follows the mask's path to the model grid (core.roi).
    """

    name: str
    rgb: np.ndarray | None
    xyz: np.ndarray | None = None
    mask: np.ndarray | None = None
    label: str | None = None
    category: str = ""
    split: str = ""
    rgb_path: Path | None = None
    xyz_path: Path | None = None
    mask_path: Path | None = None
    meta: dict = field(default_factory=dict)
    roi: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        arr = self.rgb if self.rgb is not None else self.xyz
        assert arr is not None, "a sample has at least one modality"
        return int(arr.shape[0]), int(arr.shape[1])

    @property
    def valid(self) -> np.ndarray | None:
        """H×W bool: pixels with a measured 3D point (not exactly 0,0,0); None without xyz."""
        return None if self.xyz is None else valid_points(self.xyz)

    @property
    def is_defect(self) -> bool | None:
        return label_is_defect(self.label)

    @property
    def modalities(self) -> tuple[str, ...]:
        out = []
        if self.rgb is not None:
            out.append("rgb")
        if self.xyz is not None:
            out.append("xyz")
        return tuple(out)

    def source(self) -> str:
        """The most specific file path naming this sample, for messages."""
        for p in (self.rgb_path, self.xyz_path):
            if p is not None:
                return str(p)
        return self.name

    def with_arrays(self, **arrays) -> "Sample":
        """Copy with some of rgb/xyz/mask/roi replaced."""
        return replace(self, **arrays)
