"""Dataset access: ``open_dataset`` (auto-detects the layout) and ``load_inputs`` (files or folders).

Supported layouts (see the format modules):

* ``mvtec3d``    MVTec 3D-AD: ``<root>/<category>/{train,validation,test}/<type>/{rgb,xyz,gt}/``
  (:mod:`core.data.mvtec`); the root may also be one category folder.
* ``eyecandies`` raw Eyecandies: ``<root>/<Class>/{train,val,test_public,test_private}/data/``
  (:mod:`core.data.eyecandies`).
* ``mvtec_ad``   MVTec AD (2D; also MPDD, BTAD): ``<root>/<category>/{train,test}/<type>/NNN.png`` with
  masks in ``<category>/ground_truth/<type>/`` (:mod:`core.data.mvtec_ad`); RGB only, the root
  may also be one category folder.
* ``folder``     plain folders of ``NAME.png`` + ``NAME.tiff|.npy`` pairs or organized ``.pcd``
  files, optionally in ``<split>/`` or ``<split>/<type>/`` subfolders (:mod:`core.data.folder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from core.data.sample import Sample
from core.errors import DataError

SPLIT_ORDER = ("train", "validation", "test")


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
        if self.kind == "eyecandies":
            from core.data.eyecandies import load_sample

            return load_sample(self)
        return load_files(self)


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


class Scanner(Protocol):
    """What a layout module provides to :class:`Dataset`."""

    format: str
    root: Path

    def categories(self) -> list[str]: ...

    def split_names(self, category: str) -> list[str]:
        """Splits that hold sample files (cheap: no pairing or validation)."""
        ...

    def scan_split(self, category: str, split: str) -> list[SampleRef]:
        """Pair and validate the files of one split (DataError names the culprit file)."""
        ...


class Dataset:
    """A dataset on disk: categories -> splits -> sample references.

    Each split is scanned (files paired and checked) on first use and then cached, so a broken
    file in one split does not block the others.
    """

    def __init__(self, scanner: Scanner):
        self._scanner = scanner
        self.root: Path = scanner.root
        self.format: str = scanner.format
        self.categories: list[str] = list(scanner.categories())
        self._cache: dict[tuple[str, str], list[SampleRef]] = {}

    def _check_category(self, category: str) -> None:
        if category not in self.categories:
            known = ", ".join(self.categories) or "none"
            raise DataError(self.root, f"category {category!r} does not exist (available: {known})")

    def splits(self, category: str) -> list[str]:
        """Splits with sample files, in the order train, validation, test, then others alphabetically."""
        self._check_category(category)
        found = self._scanner.split_names(category)
        return sorted(set(found), key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 99, s))

    def samples(self, category: str, split: str) -> list[SampleRef]:
        """Sample references of one split ("test" = every test subfolder). DataError if empty."""
        self._check_category(category)
        key = (category, split)
        if key not in self._cache:
            names = self.splits(category)
            self._cache[key] = self._scanner.scan_split(category, split) if split in names else []
        refs = self._cache[key]
        if not refs:
            have = ", ".join(self.splits(category)) or "none"
            raise DataError(
                self.root, f"split {split!r} of category {category!r} has no samples (non-empty splits: {have})"
            )
        return list(refs)

    def all_samples(self) -> list[SampleRef]:
        out = []
        for cat in self.categories:
            for split in self.splits(cat):
                out += self.samples(cat, split)
        return out

    def info(self) -> dict:
        """JSON-ready summary: format, categories, per split the sample counts per type and
        how many samples have each modality (rgb/xyz/gt)."""
        cats = {}
        for cat in self.categories:
            splits = {}
            for split in self.splits(cat):
                refs = self.samples(cat, split)
                types: dict[str, int] = {}
                for r in refs:
                    key = r.label if r.label is not None else "unlabelled"
                    types[key] = types.get(key, 0) + 1
                splits[split] = {
                    "samples": len(refs),
                    "types": dict(sorted(types.items(), key=lambda kv: (kv[0] != "good", kv[0]))),
                    "modalities": {
                        "rgb": sum("rgb" in r.modalities for r in refs),
                        "xyz": sum("xyz" in r.modalities for r in refs),
                        "gt": sum(r.mask_path is not None for r in refs),
                    },
                }
            defect_types = sorted(
                {t for s in splits.values() for t in s["types"] if t not in ("good", "unlabelled")}
            )
            cats[cat] = {"splits": splits, "defect_types": defect_types}
        return {"root": str(self.root), "format": self.format, "categories": cats}


def open_dataset(root: str | Path, eyecandies_light: int = 4) -> Dataset:
    """Open a dataset folder, auto-detecting MVTec 3D-AD, raw Eyecandies, MVTec AD (2D) or a
    plain folder (checked in this order: the plain folder reader would also accept the others).

    eyecandies_light: which Eyecandies render (``image_0``..``image_5``) is the RGB image.
    """
    from core.data import eyecandies, folder, mvtec, mvtec_ad

    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(root, "dataset folder not found")
    if not root.is_dir():
        raise DataError(root, "not a folder (give a dataset folder, or use load_inputs for single files)")
    if mvtec.detect(root):
        return Dataset(mvtec.MVTecScanner(root))
    if eyecandies.detect(root):
        return Dataset(eyecandies.EyecandiesScanner(root, light=eyecandies_light))
    if mvtec_ad.detect(root):
        return Dataset(mvtec_ad.MVTecADScanner(root))
    if folder.detect(root):
        return Dataset(folder.FolderScanner(root))
    raise DataError(
        root,
        "no supported layout found (expected MVTec 3D-AD <category>/train|test/<type>/rgb/, "
        "Eyecandies <Class>/train|test_public/data/, MVTec AD <category>/train|test/<type>/*.png with "
        "ground_truth/, or image + .tiff/.npy pairs / organized .pcd files)",
    )


def load_inputs(paths: list[str | Path]) -> list[SampleRef]:
    """Sample references for ``lsfa score``: each path is a sample file (an RGB image, an xyz
    .tiff/.npy, an organized .pcd) or a folder in any supported layout (all its samples)."""
    from core.data import folder

    refs: list[SampleRef] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise DataError(path, "file or folder not found")
        if path.is_dir():
            refs += open_dataset(path).all_samples()
        else:
            refs.append(folder.ref_for_file(path))
    if not refs:
        raise DataError(", ".join(str(p) for p in paths) or None, "no samples found")
    return refs
