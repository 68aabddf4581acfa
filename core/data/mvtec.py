"""MVTec 3D-AD layout: ``<root>/<category>/{train,validation,test}/<good|defect>/{rgb,xyz,gt}/``.

RGB ``rgb/NNN.png``, organized cloud ``xyz/NNN.tiff`` (H×W×3 float, metres; may be absent for
RGB-only copies), masks ``gt/NNN.png`` holding class ids (253..255; non-zero = defect).
``root`` may be the dataset folder or one category folder.
"""

from __future__ import annotations

from pathlib import Path

from core.data.refs import SampleRef
from core.data.imageio import IMAGE_EXTS
from core.errors import DataError

SPLITS = ("train", "validation", "test")
XYZ_FILE_EXTS = (".tiff", ".tif")


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def is_leaf(path: Path) -> bool:
    """A ``<type>`` folder: it holds an ``rgb/`` or ``xyz/`` subfolder."""
    return (path / "rgb").is_dir() or (path / "xyz").is_dir()


def is_category(path: Path) -> bool:
    """A category folder: a train/validation/test subfolder with at least one type folder."""
    return any(any(is_leaf(t) for t in _subdirs(path / s)) for s in SPLITS if (path / s).is_dir())


def _leaf_has_files(leaf: Path) -> bool:
    for sub in ("rgb", "xyz"):
        try:
            if any(p.suffix.lower() in IMAGE_EXTS + XYZ_FILE_EXTS for p in (leaf / sub).iterdir()):
                return True
        except OSError:
            pass
    return False


def detect(root: Path) -> bool:
    return is_category(root) or any(is_category(d) for d in _subdirs(root))


def _files(folder: Path, exts: tuple[str, ...]) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in exts and not p.name.startswith(".")
    }


def scan_leaf(leaf: Path, category: str, split: str, label: str | None, name_prefix: str) -> list[SampleRef]:
    """Sample references of one ``<type>`` folder (rgb/, optional xyz/ and gt/).

    xyz without its RGB image, or RGB without its xyz when the folder has xyz files, is a DataError.
    """
    rgb = _files(leaf / "rgb", IMAGE_EXTS)
    xyz = _files(leaf / "xyz", XYZ_FILE_EXTS)
    gt = _files(leaf / "gt", IMAGE_EXTS)
    for stem, path in xyz.items():
        if stem not in rgb:
            raise DataError(path, f"missing RGB image for this xyz file (expected {leaf / 'rgb' / (stem + '.png')})")
    if xyz:
        for stem, path in rgb.items():
            if stem not in xyz:
                raise DataError(path, f"missing xyz file for this RGB image (expected {leaf / 'xyz' / (stem + '.tiff')})")
    return [
        SampleRef(
            name=f"{name_prefix}{stem}",
            category=category,
            split=split,
            label=label,
            rgb_path=rgb[stem],
            xyz_path=xyz.get(stem),
            mask_path=gt.get(stem),
        )
        for stem in rgb
    ]


class CategoryFolders:
    """A root that is either one category folder or a folder of category folders; subclasses
    say what a category folder is (``is_category``)."""

    @staticmethod
    def is_category(path: Path) -> bool:
        raise NotImplementedError

    def __init__(self, root: Path):
        self.root = Path(root)
        self._single = self.is_category(self.root)

    def categories(self) -> list[str]:
        if self._single:
            return [self.root.name]
        return [d.name for d in _subdirs(self.root) if self.is_category(d)]

    def _category_dir(self, category: str) -> Path:
        return self.root if self._single else self.root / category


class MVTecScanner(CategoryFolders):
    format = "mvtec3d"
    is_category = staticmethod(is_category)

    def split_names(self, category: str) -> list[str]:
        cat_dir = self._category_dir(category)
        return [s for s in SPLITS if any(_leaf_has_files(leaf) for leaf in _subdirs(cat_dir / s))]

    def scan_split(self, category: str, split: str) -> list[SampleRef]:
        refs: list[SampleRef] = []
        for leaf in _subdirs(self._category_dir(category) / split):
            if is_leaf(leaf):
                refs += scan_leaf(leaf, category, split, leaf.name, f"{leaf.name}/")
        return sorted(refs, key=lambda r: (r.label != "good", r.label or "", r.name))
