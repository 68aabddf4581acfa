"""The dataset writer: MVTec 3D-AD layout, marker file, atomic replace."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from core.data.parts.common import (
    GENERATOR_NAME, GENERATOR_VERSION, MARKER_NAME, PARTS_CATEGORIES, PARTS_DEFECT_TYPES,
)
from core.data.parts.sample import PartsSample, render_parts_sample
from core.errors import UserError
from core.progress import Progress, ensure


def _write_sample(folder: Path, name: str, sample: PartsSample, with_gt: bool) -> None:
    import tifffile
    from PIL import Image

    (folder / "rgb").mkdir(parents=True, exist_ok=True)
    (folder / "xyz").mkdir(parents=True, exist_ok=True)
    Image.fromarray(sample.rgb, "RGB").save(folder / "rgb" / f"{name}.png", compress_level=1)  # noisy: fast zlib
    tifffile.imwrite(folder / "xyz" / f"{name}.tiff", sample.xyz, photometric="rgb", software=False)
    if with_gt:
        (folder / "gt").mkdir(parents=True, exist_ok=True)
        Image.fromarray(sample.mask.astype(np.uint8) * 255, "L").save(folder / "gt" / f"{name}.png")


def _params(seed, categories, size, n_train, n_validation, n_test_good, n_test_per_defect, defect_types) -> dict:
    return {
        "generator": GENERATOR_NAME,
        "version": GENERATOR_VERSION,
        "seed": int(seed),
        "categories": list(categories),
        "size": int(size),
        "n_train": int(n_train),
        "n_validation": int(n_validation),
        "n_test_good": int(n_test_good),
        "n_test_per_defect": int(n_test_per_defect),
        "defect_types": list(defect_types),
    }


def _read_marker(path: Path) -> dict | None:
    try:
        data = json.loads((path / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("generator") == GENERATOR_NAME else None


def _check_choice(values, known: tuple[str, ...], what: str) -> list[str]:
    values = list(known if values is None else ([values] if isinstance(values, str) else values))
    bad = [v for v in values if v not in known]
    if bad:
        raise UserError(f"unknown parts {what} {', '.join(map(repr, bad))} (known: {', '.join(known)})")
    if not values:
        raise UserError(f"no parts {what} selected (known: {', '.join(known)})")
    if len(set(values)) != len(values):
        raise UserError(f"parts {what} listed twice: {', '.join(values)}")
    return values


def generate_parts_dataset(
    out_dir: str | Path,
    seed: int = 0,
    categories=None,
    size: int = 400,
    n_train: int = 60,
    n_validation: int = 10,
    n_test_good: int = 12,
    n_test_per_defect: int = 6,
    defect_types=None,
    progress: Progress | None = None,
    force: bool = False,
    camera_distance: float = 1.0,
    one_design: bool = False,
) -> Path:
    """Write a parts dataset in the MVTec 3D-AD layout to ``out_dir`` and return its path
    (``camera_distance``, ``one_design``: see :func:`render_parts_sample`).

    The folder is built beside ``out_dir`` and renamed into place at the end, with
    ``.lsfa_parts.json`` holding the parameters. An existing parts dataset with the same
    parameters is returned unchanged; one with other parameters is replaced only with
    ``force=True``. A non-empty folder that is not a parts dataset is never written to.
    """
    cats = _check_choice(categories, PARTS_CATEGORIES, "category")
    defects = _check_choice(defect_types, PARTS_DEFECT_TYPES, "defect type")
    counts = {"n_train": n_train, "n_validation": n_validation, "n_test_good": n_test_good, "n_test_per_defect": n_test_per_defect}
    for key, value in counts.items():
        if int(value) != value or value < 0:
            raise UserError(f"{key} must be a whole number ≥ 0, got {value!r}")
    if n_train < 1:
        raise UserError("n_train must be at least 1")
    if int(size) != size or not 32 <= size <= 4096:
        raise UserError(f"size must be a whole number of pixels in 32..4096, got {size!r}")
    params = _params(seed, cats, size, n_train, n_validation, n_test_good, n_test_per_defect, defects)
    if camera_distance != 1.0:  # recorded only when set, so datasets made before it still match
        params["camera_distance"] = float(camera_distance)
    if one_design:
        params["one_design"] = True
    out = Path(out_dir).expanduser().absolute()
    existing = None
    if out.exists():
        if not out.is_dir():
            raise UserError(f"{out}: exists and is not a folder; choose another output folder")
        marker = _read_marker(out)
        if marker is not None:
            if marker == params:
                return out
            if not force:
                raise UserError(
                    f"{out}: holds a parts dataset made with other parameters; use force=True (--force) to replace it"
                )
            from core.data.generated import refuse_foreign

            refuse_foreign(out, marker, MARKER_NAME)
            existing = out
        elif any(out.iterdir()):
            raise UserError(f"{out}: folder is not empty and is not a parts dataset; refusing to write into it")
    p = ensure(progress)
    jobs: list[tuple[str, str, str, int]] = []
    for cat in cats:
        jobs += [(cat, "train", "good", i) for i in range(n_train)]
        jobs += [(cat, "validation", "good", i) for i in range(n_validation)]
        jobs += [(cat, "test", "good", i) for i in range(n_test_good)]
        jobs += [(cat, "test", d, i) for d in defects for i in range(n_test_per_defect)]
    widths = {}
    for cat, split, label, i in jobs:
        widths[(cat, split, label)] = max(widths.get((cat, split, label), 3), len(str(i)))
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as exc:
        raise UserError(f"{out.parent}: cannot write here ({exc.__class__.__name__}: {exc.strerror or exc})") from None
    try:
        stage = "Generating parts data"
        for n, (cat, split, label, i) in enumerate(jobs):
            p.update(stage, n, len(jobs), f"{cat}/{split}/{label}/{i}")
            sample = render_parts_sample(
                cat, seed, split, label, i, size, camera_distance=camera_distance, one_design=one_design
            )
            name = str(i).zfill(widths[(cat, split, label)])
            _write_sample(tmp / cat / split / label, name, sample, with_gt=split == "test")
        p.update(stage, len(jobs), len(jobs))
        (tmp / MARKER_NAME).write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")
        if existing is not None:
            trash = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.replace(out, trash)
            try:
                os.replace(tmp, out)
            except OSError:
                os.replace(trash, out)  # put the old dataset back
                raise
            shutil.rmtree(trash, ignore_errors=True)
        else:
            if out.exists():
                out.rmdir()  # empty folder
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
