"""Plain folders of samples from custom sensors.

A sample is ``NAME.png`` (or .jpg/.jpeg/.bmp) with ``NAME.tiff``/``.tif``/``.npy`` (organized
H×W×3 float xyz in metres) or ``NAME.pcd`` (organized PCD; its rgb/rgba field is used when
there is no image), or an image alone (RGB-only), or a ``.pcd`` alone. ``NAME_mask.png`` is
an optional GT mask (non-zero = defect). MVTec-style ``<type>/{rgb,xyz,gt}/`` folders are
read too. Subfolders give the split and type: ``<split>/`` or ``<split>/<type>/``; files
directly in the root form the split "all" (or the root's name if it is train/validation/test).
"""

from __future__ import annotations

from pathlib import Path

from core.data.refs import SampleRef
from core.data.imageio import IMAGE_EXTS, XYZ_EXTS
from core.data.mvtec import SPLITS, is_leaf, scan_leaf
from core.errors import DataError

PCD_EXT = ".pcd"
MASK_SUFFIX = "_mask"
GOOD_SPLITS = ("train", "validation", "val")
KNOWN_SPLITS = ("train", "validation", "val", "test")
MAX_DEPTH = 2  # <split>/<type>/


def _is_sample_file(p: Path) -> bool:
    ext = p.suffix.lower()
    return p.is_file() and not p.name.startswith(".") and ext in IMAGE_EXTS + XYZ_EXTS + (PCD_EXT,)


def _has_sample_files(folder: Path) -> bool:
    try:
        return any(_is_sample_file(p) for p in folder.iterdir())
    except OSError:
        return False


def _groups(root: Path) -> list[Path]:
    """Folders (root and subfolders up to MAX_DEPTH) holding samples or MVTec-style type folders."""
    out = []
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        if is_leaf(folder) or _has_sample_files(folder):
            out.append(folder)
        if is_leaf(folder) or depth >= MAX_DEPTH:
            continue
        try:
            subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            continue
        stack += [(s, depth + 1) for s in subs]
    return sorted(out)


def detect(root: Path) -> bool:
    return bool(_groups(root))


def pcd_fields(path: Path) -> str:
    from core.data.pcd import read_header

    return ",".join(read_header(path).fields)


def scan_plain(folder: Path, category: str, split: str, label: str | None, name_prefix: str) -> list[SampleRef]:
    """Pair the files of one folder into samples (see module docstring)."""
    files = sorted(p for p in folder.iterdir() if _is_sample_file(p))
    images, clouds, masks = {}, {}, {}
    for p in files:
        ext = p.suffix.lower()
        if ext in IMAGE_EXTS and p.stem.endswith(MASK_SUFFIX):
            masks[p.stem[: -len(MASK_SUFFIX)]] = p
        elif ext in IMAGE_EXTS:
            if p.stem in images:
                raise DataError(p, f"two images for sample {p.stem!r} ({images[p.stem].name})")
            images[p.stem] = p
        else:
            if p.stem in clouds:
                raise DataError(p, f"two point clouds for sample {p.stem!r} ({clouds[p.stem].name})")
            clouds[p.stem] = p
    refs = []
    for stem in sorted(set(images) | set(clouds)):
        rgb, xyz = images.get(stem), clouds.get(stem)
        extra: tuple[tuple[str, str], ...] = ()
        if xyz is not None and xyz.suffix.lower() == PCD_EXT:
            extra = (("pcd_fields", pcd_fields(xyz)),)
        elif xyz is not None and rgb is None:
            raise DataError(xyz, f"missing RGB image for this xyz file (expected {folder / (stem + '.png')})")
        refs.append(
            SampleRef(
                name=f"{name_prefix}{stem}",
                category=category,
                split=split,
                label=label,
                rgb_path=rgb,
                xyz_path=xyz,
                mask_path=masks.get(stem),
                extra=extra,
            )
        )
    for stem, p in masks.items():
        if stem not in images and stem not in clouds:
            raise DataError(p, f"mask has no sample {stem!r} next to it")
    return refs


class FolderScanner:
    format = "folder"

    def __init__(self, root: Path):
        self.root = Path(root)

    def categories(self) -> list[str]:
        return [self.root.name]

    def _grouped(self) -> dict[str, list[tuple[Path, str | None, bool]]]:
        """split -> [(folder, label, is MVTec-style type folder)]"""
        default_split = self.root.name if self.root.name in KNOWN_SPLITS else "all"
        out: dict[str, list[tuple[Path, str | None, bool]]] = {}
        for group in _groups(self.root):
            parts = group.relative_to(self.root).parts
            leaf = is_leaf(group)
            if leaf:
                parts = parts[:-1]
            split = parts[0] if parts else default_split
            if split == "val":
                split = "validation"
            if leaf:
                label: str | None = group.name
            else:
                label = parts[1] if len(parts) >= 2 else ("good" if split in GOOD_SPLITS + ("validation",) else None)
            out.setdefault(split, []).append((group, label, leaf))
        return out

    def split_names(self, category: str) -> list[str]:
        return list(self._grouped())

    def scan_split(self, category: str, split: str) -> list[SampleRef]:
        refs: list[SampleRef] = []
        for group, label, leaf in self._grouped().get(split, []):
            prefix = "/".join(group.relative_to(self.root).parts)
            prefix = prefix + "/" if prefix else ""
            scan = scan_leaf if leaf else scan_plain
            refs += scan(group, category, split, label, prefix)
        return sorted(refs, key=lambda r: (r.label != "good", r.label or "", r.name))


def ref_for_file(path: Path) -> SampleRef:
    """A sample reference for one file given on the command line: an image (its xyz partner is
    looked up beside it, or in ``../xyz/`` for MVTec layouts), an xyz .tiff/.npy (needs its
    image), or an organized .pcd."""
    path = Path(path)
    ext = path.suffix.lower()
    if not path.is_file():
        raise DataError(path, "file not found")
    folder, stem = path.parent, path.stem
    mvtec_leaf = folder.name in ("rgb", "xyz") and is_leaf(folder.parent)
    label = folder.parent.name if mvtec_leaf else None
    name = f"{label}/{stem}" if mvtec_leaf else stem
    split = category = ""
    if mvtec_leaf and folder.parent.parent.name in SPLITS:
        split, category = folder.parent.parent.name, folder.parent.parent.parent.name

    def find(directory: Path, exts: tuple[str, ...]) -> Path | None:
        for e in exts:
            for cand in (directory / (stem + e), directory / (stem + e.upper())):
                if cand.is_file():
                    return cand
        return None

    if ext == PCD_EXT:
        rgb = find(folder, IMAGE_EXTS)
        return SampleRef(name=name, category=category, split=split, label=None, rgb_path=rgb, xyz_path=path,
                         extra=(("pcd_fields", pcd_fields(path)),))
    if ext in IMAGE_EXTS:
        if mvtec_leaf:
            xyz_dir = folder.parent / "xyz"
            rgb, xyz = path, find(xyz_dir, XYZ_EXTS)
            if xyz is None and xyz_dir.is_dir() and any(xyz_dir.iterdir()):
                raise DataError(path, f"missing xyz file for this RGB image (expected {xyz_dir / (stem + '.tiff')})")
            mask = find(folder.parent / "gt", IMAGE_EXTS)
        else:
            rgb, xyz = path, find(folder, XYZ_EXTS + (PCD_EXT,))
            mask_file = folder / f"{stem}{MASK_SUFFIX}.png"
            mask = mask_file if mask_file.is_file() else None
    elif ext in XYZ_EXTS:
        xyz = path
        rgb = find(folder.parent / "rgb", IMAGE_EXTS) if mvtec_leaf else find(folder, IMAGE_EXTS)
        if rgb is None:
            where = folder.parent / "rgb" if mvtec_leaf else folder
            raise DataError(path, f"missing RGB image for this xyz file (expected {where / (stem + '.png')})")
        mask = find(folder.parent / "gt", IMAGE_EXTS) if mvtec_leaf else None
    else:
        raise DataError(path, f"unsupported file type {ext!r} (use .png/.jpg images, .tiff/.npy xyz or .pcd)")
    extra = (("pcd_fields", pcd_fields(xyz)),) if xyz is not None and xyz.suffix.lower() == PCD_EXT else ()
    return SampleRef(name=name, category=category, split=split, label=label, rgb_path=rgb, xyz_path=xyz,
                     mask_path=mask, extra=extra)
