"""Raw Eyecandies layout: ``<root>/<Class>/{train,val,test_public,test_private}/data/``.

Per sample ``NNN``: ``NNN_image_0..5.png`` (renders under six lights; ``image_4`` is the RGB
image by default, as in the M3DM/CFM converters), ``NNN_depth.png`` (16-bit, normalised to
0..65535) with ``NNN_info_depth.yaml`` (``normalization: {min, max}`` in metres),
``NNN_pose.txt`` (4×4 camera pose) and, in test_public, ``NNN_mask.png``.

Depth becomes metres (value / 65535 · (max − min) + min) and is back-projected with a pinhole
camera (focal 711.11 px, principal point at the image centre) to an organized cloud in the
**camera frame**. Background (depth at the far end of the range, and the dominant plane found
by the preprocessing's border RANSAC) is set to exactly (0, 0, 0) — unlike the reference
converter, which leaves it at one constant non-zero point.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from core.data.refs import LOADERS, SampleRef
from core.data.sample import Sample
from core.errors import DataError

FOCAL_LENGTH_PX = 711.11
SPLIT_MAP = {"train": "train", "val": "validation", "test_public": "test", "test_private": "test_private"}
_DEPTH_RE = re.compile(r"^(\d+)_depth\.png$")
_IMAGE_RE = re.compile(r"^(\d+)_image_(\d)\.png$")


def _data_dir(split_dir: Path) -> Path:
    return split_dir / "data" if (split_dir / "data").is_dir() else split_dir


def _has_samples(folder: Path) -> bool:
    try:
        return any(_DEPTH_RE.match(p.name) or _IMAGE_RE.match(p.name) for p in folder.iterdir())
    except OSError:
        return False


def is_class_dir(path: Path) -> bool:
    return any((path / s / "data").is_dir() and _has_samples(path / s / "data") for s in SPLIT_MAP)


def detect(root: Path) -> bool:
    if is_class_dir(root):
        return True
    try:
        return any(d.is_dir() and is_class_dir(d) for d in root.iterdir())
    except OSError:
        return False


class EyecandiesScanner:
    format = "eyecandies"

    def __init__(self, root: Path, light: int = 4):
        if not 0 <= int(light) <= 5:
            raise DataError(root, f"Eyecandies light index must be 0..5, got {light}")
        self.root = Path(root)
        self.light = int(light)
        self._single = is_class_dir(self.root)

    def categories(self) -> list[str]:
        if self._single:
            return [self.root.name]
        return sorted(d.name for d in self.root.iterdir() if d.is_dir() and is_class_dir(d))

    def _category_dir(self, category: str) -> Path:
        return self.root if self._single else self.root / category

    def split_names(self, category: str) -> list[str]:
        cat_dir = self._category_dir(category)
        return [split for folder, split in SPLIT_MAP.items()
                if (cat_dir / folder).is_dir() and _has_samples(_data_dir(cat_dir / folder))]

    def scan_split(self, category: str, split: str) -> list[SampleRef]:
        folder = {v: k for k, v in SPLIT_MAP.items()}[split]
        return self._scan_split(_data_dir(self._category_dir(category) / folder), category, split)

    def _scan_split(self, data: Path, category: str, split: str) -> list[SampleRef]:
        names = {p.name for p in data.iterdir() if p.is_file()}
        ids = sorted(
            {m.group(1) for n in names for m in [_DEPTH_RE.match(n) or _IMAGE_RE.match(n)] if m},
            key=lambda s: (len(s), s),
        )
        refs = []
        for sid in ids:
            rgb = data / f"{sid}_image_{self.light}.png"
            depth = data / f"{sid}_depth.png"
            info = data / f"{sid}_info_depth.yaml"
            pose = data / f"{sid}_pose.txt"
            mask = data / f"{sid}_mask.png"
            if rgb.name not in names:
                culprit = depth if depth.name in names else data / f"{sid}_image_0.png"
                raise DataError(culprit, f"missing RGB image {rgb.name} for this sample")
            has_depth = depth.name in names
            if has_depth and info.name not in names:
                raise DataError(depth, f"missing depth normalisation file {info.name}")
            extra = []
            if has_depth:
                extra.append(("info_depth_path", str(info)))
                if pose.name in names:
                    extra.append(("pose_path", str(pose)))
            mask_path = mask if mask.name in names else None
            label: str | None
            if split in ("train", "validation"):
                label = "good"
            elif split == "test" and mask_path is not None:
                from core.data.imageio import read_mask

                label = "bad" if read_mask(mask_path).any() else "good"
            else:
                label = None
            refs.append(
                SampleRef(
                    name=sid,
                    category=category,
                    split=split,
                    label=label,
                    rgb_path=rgb,
                    xyz_path=depth if has_depth else None,
                    mask_path=mask_path,
                    kind="eyecandies",
                    extra=tuple(extra),
                )
            )
        return sorted(refs, key=lambda r: (r.label != "good", r.label or "", len(r.name), r.name))


def read_depth_range(path: Path) -> tuple[float, float]:
    """(min, max) in metres from an ``info_depth.yaml``."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
        lo = float(data["normalization"]["min"])
        hi = float(data["normalization"]["max"])
    except FileNotFoundError:
        raise DataError(path, "depth normalisation file not found") from None
    except (yaml.YAMLError, KeyError, TypeError, ValueError, UnicodeDecodeError):
        raise DataError(path, "expected 'normalization: {min: <m>, max: <m>}' with numbers") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise DataError(path, f"bad depth normalisation range min={lo} max={hi}")
    return lo, hi


def depth_to_xyz(raw: np.ndarray, depth_min: float, depth_max: float, focal_px: float = FOCAL_LENGTH_PX) -> np.ndarray:
    """16-bit normalised depth -> H×W×3 float32 camera-frame cloud in metres.

    Pixels at the far end of the range (raw 65535, the render background) or with depth <= 0
    become (0, 0, 0).
    """
    h, w = raw.shape
    z = raw.astype(np.float64) / 65535.0 * (depth_max - depth_min) + depth_min
    u = np.arange(w, dtype=np.float64)[None, :] - w / 2.0
    v = np.arange(h, dtype=np.float64)[:, None] - h / 2.0
    xyz = np.empty((h, w, 3), dtype=np.float32)
    xyz[..., 0] = u * z / focal_px
    xyz[..., 1] = v * z / focal_px
    xyz[..., 2] = z
    invalid = (raw >= 65535) | (z <= 0)
    xyz[invalid] = 0.0
    return xyz


def load_sample(ref: SampleRef, remove_background: bool = True) -> Sample:
    """Load one Eyecandies sample: RGB render, camera-frame cloud with zeroed background, mask."""
    from core.data.imageio import check_xyz_budget, image_size, one_line, read_depth16, read_mask, read_rgb

    rgb = read_rgb(ref.rgb_path)
    xyz = None
    meta: dict = {"format": "eyecandies"}
    if ref.xyz_path is not None:
        check_xyz_budget(ref.xyz_path, *image_size(ref.xyz_path))
        raw = read_depth16(ref.xyz_path)
        if raw.shape != rgb.shape[:2]:
            raise DataError(ref.xyz_path, f"depth size {raw.shape[1]}×{raw.shape[0]} does not match RGB image "
                                          f"{ref.rgb_path} ({rgb.shape[1]}×{rgb.shape[0]})")
        lo, hi = read_depth_range(ref.extra_path("info_depth_path"))
        xyz = depth_to_xyz(raw, lo, hi)
        pose_path = ref.extra_path("pose_path")
        if pose_path is not None:
            try:
                pose = np.loadtxt(pose_path, dtype=np.float64)
            except (ValueError, OSError) as exc:
                raise DataError(pose_path, f"unreadable camera pose ({one_line(exc)})") from None
            if pose.shape != (4, 4) or not np.isfinite(pose).all():
                raise DataError(pose_path, f"camera pose must be a 4×4 matrix, got shape {pose.shape}")
            meta["pose"] = pose.tolist()
        if remove_background:
            from core.data.preprocess import PreprocessParams, plane_keep_mask

            keep, plane_info = plane_keep_mask(xyz, PreprocessParams())
            xyz[~keep] = 0.0
            meta["background_plane"] = plane_info
    mask = read_mask(ref.mask_path) if ref.mask_path is not None else None
    if mask is not None and mask.shape != rgb.shape[:2]:
        raise DataError(ref.mask_path, f"mask size {mask.shape[1]}×{mask.shape[0]} does not match the RGB image")
    if mask is None and ref.label == "good":
        mask = np.zeros(rgb.shape[:2], dtype=bool)
    return Sample(
        name=ref.name, rgb=rgb, xyz=xyz, mask=mask, label=ref.label, category=ref.category,
        split=ref.split, rgb_path=ref.rgb_path, xyz_path=ref.xyz_path, mask_path=ref.mask_path, meta=meta,
    )


LOADERS["eyecandies"] = load_sample
