"""A sample on disk before it is read (:class:`SampleRef`), and how each kind of sample is read.

Format modules (``core.data.mvtec``, ``eyecandies``, ...) build SampleRefs; a format whose files
need their own reader registers it in :data:`LOADERS` under its ``kind``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from core.data.sample import Sample
from core.errors import DataError


@dataclass(frozen=True)
class SampleRef:
    """A sample on disk, not loaded yet. ``load()`` reads and validates it.

    kind: "files" (rgb image + optional xyz .tiff/.npy/.pcd + optional mask) or "eyecandies"
    (xyz_path is the 16-bit depth PNG). ``extra``: (key, value) string pairs, keys ending in
    "_path" name further input files (Eyecandies info_depth.yaml, pose), "pcd_fields" lists the
    fields of a .pcd (comma-separated).
    """

    name: str
    category: str
    split: str
    label: str | None
    rgb_path: Path | None = None
    xyz_path: Path | None = None
    mask_path: Path | None = None
    kind: str = "files"
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modalities this sample will have once loaded ("rgb", "xyz")."""
        out = []
        pcd_fields = (self.extra_value("pcd_fields") or "").split(",")
        if self.rgb_path is not None or "rgb" in pcd_fields or "rgba" in pcd_fields:
            out.append("rgb")
        if self.xyz_path is not None:
            out.append("xyz")
        return tuple(out)

    @property
    def files(self) -> tuple[Path, ...]:
        """All files this sample is read from."""
        paths = [p for p in (self.rgb_path, self.xyz_path, self.mask_path) if p is not None]
        paths += [Path(v) for k, v in self.extra if k.endswith("_path")]
        return tuple(paths)

    def extra_value(self, key: str) -> str | None:
        """A format-specific entry of ``extra`` (keys ending in "_path" name files)."""
        for k, v in self.extra:
            if k == key:
                return v
        return None

    def extra_path(self, key: str) -> Path | None:
        value = self.extra_value(key)
        return None if value is None else Path(value)

    def source(self) -> str:
        p = self.rgb_path or self.xyz_path
        return str(p) if p is not None else self.name

    def load(self) -> Sample:
        """Read and validate the sample (the loader registered for ``kind``)."""
        return LOADERS[self.kind](self)


def load_files(ref: SampleRef) -> Sample:
    """Read an RGB image / xyz (.tiff, .npy, .pcd) / mask triple and check that the grids match."""
    from core.data.imageio import read_mask, read_rgb, read_xyz

    rgb = read_rgb(ref.rgb_path) if ref.rgb_path is not None else None
    xyz = None
    meta: dict = {}
    if ref.xyz_path is not None:
        if ref.xyz_path.suffix.lower() == ".pcd":
            from core.data.pcd import read_pcd

            cloud = read_pcd(ref.xyz_path)
            xyz = cloud.xyz
            if rgb is None:
                rgb = cloud.rgb
        else:
            xyz = read_xyz(ref.xyz_path)
        if rgb is not None and rgb.shape[:2] != xyz.shape[:2]:
            raise DataError(
                ref.xyz_path,
                f"point grid {_hw(xyz)} does not match RGB image {ref.rgb_path or ref.xyz_path} {_hw(rgb)}",
            )
    if rgb is None and xyz is None:
        raise DataError(ref.name, "sample has neither an RGB image nor a point cloud")
    shape = (rgb if rgb is not None else xyz).shape[:2]
    mask = None
    if ref.mask_path is not None:
        mask = read_mask(ref.mask_path)
        if mask.shape != shape:
            raise DataError(ref.mask_path, f"mask size {_hw(mask)} does not match the image ({shape[1]}×{shape[0]})")
    elif ref.label == "good":
        mask = np.zeros(shape, dtype=bool)
    return Sample(
        name=ref.name,
        rgb=rgb,
        xyz=xyz,
        mask=mask,
        label=ref.label,
        category=ref.category,
        split=ref.split,
        rgb_path=ref.rgb_path,
        xyz_path=ref.xyz_path,
        mask_path=ref.mask_path,
        meta=meta,
    )


def _hw(arr: np.ndarray) -> str:
    return f"{arr.shape[1]}×{arr.shape[0]}"


LOADERS: dict[str, Callable[[SampleRef], Sample]] = {"files": load_files}

__all__ = ["SampleRef", "load_files", "LOADERS"]
