"""MVTec AD (2D) layout, also used by MPDD, BTAD and most 2D anomaly-detection datasets::

    <root>/<category>/train/good/NNN.png
    <root>/<category>/test/good/NNN.png
    <root>/<category>/test/<defect_type>/NNN.png
    <root>/<category>/ground_truth/<defect_type>/NNN_mask.png     (0 good, non-zero defect)

RGB only (no point clouds). Images may be .png/.jpg/.jpeg/.bmp, colour or grey (grey loads as
3-channel RGB). Masks are ``ground_truth/<type>/<stem>_mask.<ext>`` or, as in BTAD,
``ground_truth/<type>/<stem>.<ext>``. BTAD's ``ok`` folders are normal samples (label "good";
``ko`` is a defect type). A defect image without a mask gets no mask (unknown; logged), a good
one an all-zero mask; masks without an image and mask folders for types without images are
logged and ignored. There is no validation split. ``root`` may be the dataset folder or one
category folder.

A folder is a category of this layout when ``train/`` or ``test/`` has ``<type>/`` folders
holding images directly, and it has a ``ground_truth/`` folder or a ``train/`` holding only
``good``/``ok`` folders. Layouts the other readers handle are not claimed: MVTec 3D-AD
``<type>/{rgb,xyz}/`` folders, or plain-folder signs (sample files directly in ``train/`` or
``test/``, point clouds, or ``NAME_mask`` images beside the images).
"""

from __future__ import annotations

import logging
from pathlib import Path

from core.data.refs import SampleRef
from core.data.imageio import IMAGE_EXTS, XYZ_EXTS
from core.data.mvtec import CategoryFolders, is_leaf
from core.errors import DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
GT_DIR = "ground_truth"
MASK_SUFFIX = "_mask"
GOOD_NAMES = ("good", "ok")  # MVTec AD / MPDD "good", BTAD "ok"
_SAMPLE_EXTS = IMAGE_EXTS + XYZ_EXTS + (".pcd",)


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def _file_names(folder: Path) -> list[str]:
    """Names of the non-hidden entries of ``folder`` with a sample-file extension (no stat calls)."""
    try:
        return sorted(
            p.name for p in folder.iterdir() if not p.name.startswith(".") and p.suffix.lower() in _SAMPLE_EXTS
        )
    except OSError:
        return []


def _is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTS


def label_for(type_name: str) -> str:
    """Sample label of a ``<type>`` folder: "good" for good/ok (any case), else the folder name."""
    return "good" if type_name.lower() in GOOD_NAMES else type_name


def is_category(path: Path) -> bool:
    """A category folder of this layout (see the module docstring)."""
    type_dirs: dict[str, list[Path]] = {s: _subdirs(path / s) for s in SPLITS}
    has_images = False
    for split in SPLITS:
        if _file_names(path / split):
            return False  # <split>/NAME.png: a plain folder
        for t in type_dirs[split]:
            if is_leaf(t):
                return False  # MVTec 3D-AD <type>/rgb/
            names = _file_names(t)
            for n in names:
                p = Path(n)
                if p.suffix.lower() not in IMAGE_EXTS or p.stem.endswith(MASK_SUFFIX):
                    return False  # point clouds or masks beside the images: a plain folder
            has_images = has_images or bool(names)
    if not has_images:
        return False
    if (path / GT_DIR).is_dir():
        return True
    train_types = [t.name.lower() for t in type_dirs["train"]]
    return bool(train_types) and all(t in GOOD_NAMES for t in train_types)


def detect(root: Path) -> bool:
    return is_category(root) or any(is_category(d) for d in _subdirs(root))


def _images(folder: Path) -> dict[str, Path]:
    """stem -> image file of one ``<type>`` folder; DataError for two images with one stem."""
    out: dict[str, Path] = {}
    for name in _file_names(folder):
        p = folder / name
        if not _is_image_name(name) or not p.is_file():
            continue
        if p.stem in out:
            raise DataError(p, f"two images for sample {p.stem!r} ({out[p.stem].name})")
        out[p.stem] = p
    return out


def _masks(folder: Path, stems: dict[str, Path]) -> tuple[dict[str, Path], list[Path]]:
    """Masks of a ``ground_truth/<type>`` folder matched to image stems: ``<stem>_mask.<ext>``
    (preferred) or ``<stem>.<ext>``. Returns (stem -> mask, masks matching no image)."""
    files = {p.stem: p for p in (folder / n for n in _file_names(folder)) if _is_image_name(p.name) and p.is_file()}
    found: dict[str, Path] = {}
    used: set[str] = set()
    for stem in stems:
        for key in (stem + MASK_SUFFIX, stem):
            if key in files:
                found[stem] = files[key]
                used.add(key)
                break
    orphans = [p for key, p in sorted(files.items()) if key not in used]
    return found, orphans


class MVTecADScanner(CategoryFolders):
    format = "mvtec_ad"
    is_category = staticmethod(is_category)

    def split_names(self, category: str) -> list[str]:
        cat_dir = self._category_dir(category)
        return [
            s for s in SPLITS if any(any(map(_is_image_name, _file_names(t))) for t in _subdirs(cat_dir / s))
        ]

    def scan_split(self, category: str, split: str) -> list[SampleRef]:
        cat_dir = self._category_dir(category)
        gt_root = cat_dir / GT_DIR
        refs: list[SampleRef] = []
        type_names = set()
        for type_dir in _subdirs(cat_dir / split):
            images = _images(type_dir)
            if not images:
                continue
            type_names.add(type_dir.name)
            label = label_for(type_dir.name)
            masks: dict[str, Path] = {}
            if split == "test":
                masks, orphans = _masks(gt_root / type_dir.name, images)
                for p in orphans:
                    log.info("%s: mask has no image in %s; ignored", p, type_dir)
                missing = 0 if label == "good" else len(images) - len(masks)
                if missing:
                    log.warning(
                        "%s: %d of %d defect images have no mask in %s (their masks are unknown)",
                        type_dir, missing, len(images), gt_root / type_dir.name,
                    )
            refs += [
                SampleRef(
                    name=f"{type_dir.name}/{stem}",
                    category=category,
                    split=split,
                    label=label,
                    rgb_path=path,
                    mask_path=masks.get(stem),
                )
                for stem, path in images.items()
            ]
        if split == "test":
            for gt_dir in _subdirs(gt_root):
                if gt_dir.name not in type_names:
                    log.info("%s: no test images of type %r; masks ignored", gt_dir, gt_dir.name)
        return sorted(refs, key=lambda r: (r.label != "good", r.label or "", r.name))
