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

from pathlib import Path
from typing import Protocol

from core.data import eyecandies, folder, mvtec, mvtec_ad
from core.data.refs import SampleRef, load_files  # noqa: F401  (SampleRef/load_files are part of this API)
from core.errors import DataError, UserError

SPLIT_ORDER = ("train", "validation", "test")


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


def collect_inputs(paths: list[str | Path]) -> tuple[list[SampleRef], list[tuple[str, str]]]:
    """Like :func:`load_inputs`, but a path that cannot be used (missing, no partner file, not
    a dataset) becomes a (path, reason) failure instead of stopping the whole batch."""
    refs: list[SampleRef] = []
    failures: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw).expanduser()
        try:
            if not path.exists():
                raise DataError(path, "file or folder not found")
            if path.is_dir():
                found = open_dataset(path).all_samples()
                if not found:
                    raise DataError(path, "no samples found")
                refs += found
            else:
                refs.append(folder.ref_for_file(path))
        except UserError as exc:
            failures.append((str(path), str(getattr(exc, "problem", None) or exc)))
    return refs, failures
