"""Demo dataset writer: MVTec 3D-AD layout on disk, worker processes, marker file, digest."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from core import progress as progress_mod
from core.demo.camera import _camera_matrix
from core.demo.defects import DEFECT_TYPES
from core.demo.objects import DEMO_CATEGORIES, _BUILDERS
from core.demo.params import DEFAULT_COUNTS, DEFAULT_SIZE, VARIATION_DEFAULTS, VARIATION_RANGES, _variation
from core.demo.sample import render_sample
from core.errors import UserError

log = logging.getLogger(__name__)


GENERATOR_VERSION = 1
MARKER_NAME = ".lsfa_demo.json"  # written at the dataset root; identifies a generated dataset



def _write_png(path: Path, arr: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(arr).save(path, format="PNG", compress_level=1)


def _write_tiff(path: Path, xyz: np.ndarray) -> None:
    import tifffile

    tifffile.imwrite(path, xyz, photometric="rgb", metadata=None)


def _plan(
    categories, n_train, n_validation, n_test_good, n_test_per_defect, defect_types
) -> list[tuple[str, str, int]]:
    jobs = []
    for cat in categories:
        for folder, count in (
            ("train", n_train),
            ("validation", n_validation),
            ("test/good", n_test_good),
            *((f"test/{t}", n_test_per_defect) for t in defect_types),
        ):
            jobs += [(cat, folder, i) for i in range(count)]
    return jobs


def _folder_path(root: Path, category: str, folder: str) -> Path:
    if folder in ("train", "validation"):
        return root / category / folder / "good"
    return root / category / folder


def _write_sample(root: str, seed: int, category: str, folder: str, index: int, size: int,
                  defect_strength: float, object_scale: float = 1.0, noise_scale: float = 1.0,
                  defect_scale: float = 1.0, flying_pixels: float = 0.0, dent_shading: float = 1.0,
                  print_variation: float = 0.0) -> str:
    """Render one sample and write its rgb/xyz(/gt) files under ``root``; returns its name."""
    s = render_sample(seed, category, folder, index, size, defect_strength, object_scale=object_scale,
                      noise_scale=noise_scale, defect_scale=defect_scale, flying_pixels=flying_pixels,
                      dent_shading=dent_shading, print_variation=print_variation)
    base = _folder_path(Path(root), category, folder)
    name = f"{index:03d}"
    subs = ("rgb", "xyz") + (("gt",) if folder.startswith("test/") else ())
    for sub in subs:
        (base / sub).mkdir(parents=True, exist_ok=True)
    _write_png(base / "rgb" / f"{name}.png", s.rgb)
    _write_tiff(base / "xyz" / f"{name}.tiff", s.xyz)
    if "gt" in subs:
        _write_png(base / "gt" / f"{name}.png", np.where(s.mask, 255, 0).astype(np.uint8))
    return f"{category}/{folder}/{name}"


def _default_workers(n_jobs: int) -> int:
    if n_jobs < 24:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def _run_jobs(jobs, root: Path, args: tuple, workers: int, p: progress_mod.Progress) -> None:
    """Render and write all ``jobs`` (category, folder, index), in worker processes if > 1."""
    total = len(jobs)
    p.update("Demo data", 0, total)
    if workers <= 1:
        for done, (cat, folder, i) in enumerate(jobs, start=1):
            name = _write_sample(str(root), args[0], cat, folder, i, *args[1:])
            p.update("Demo data", done, total, name)
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = multiprocessing.get_context("spawn")  # safe beside GUI threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending = set()
        try:
            for cat, folder, i in jobs:
                pending.add(pool.submit(_write_sample, str(root), args[0], cat, folder, i, *args[1:]))
            done = 0
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in finished:
                    name = fut.result()
                    done += 1
                    p.update("Demo data", done, total, name)
                p.check()
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise



def read_marker(out_dir: str | Path) -> dict | None:
    """The generation parameters of a demo dataset at ``out_dir``, or None if it is not one;
    variation factors the marker does not list are at their standard values (VARIATION_DEFAULTS)."""
    try:
        data = json.loads((Path(out_dir) / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("generator") != "lsfa-demo":
        return None
    for name in VARIATION_RANGES:
        data.setdefault(name, VARIATION_DEFAULTS[name])
    return data


def _marker_text(params: dict) -> str:
    """The marker file's text for :func:`demo_parameters` output: variation factors at their
    standard values are left out (older generators wrote none; :func:`read_marker` fills them in)."""
    stored = {k: v for k, v in params.items() if not (k in VARIATION_RANGES and v == VARIATION_DEFAULTS[k])}
    return json.dumps(stored, indent=2) + "\n"


def demo_parameters(
    seed: int = 0,
    categories: list[str] | tuple[str, ...] | None = None,
    size: int = DEFAULT_SIZE,
    n_train: int = DEFAULT_COUNTS["n_train"],
    n_validation: int = DEFAULT_COUNTS["n_validation"],
    n_test_good: int = DEFAULT_COUNTS["n_test_good"],
    n_test_per_defect: int = DEFAULT_COUNTS["n_test_per_defect"],
    defect_types: list[str] | tuple[str, ...] | None = None,
    defect_strength: float = 1.0,
    object_scale: float = 1.0,
    noise_scale: float = 1.0,
    defect_scale: float = 1.0,
    flying_pixels: float = 0.0,
    dent_shading: float = 1.0,
    print_variation: float = 0.0,
) -> dict:
    """Validated, normalised generation parameters (as stored in the dataset's marker file,
    which leaves out variation factors at 1.0); UserError on bad values.

    ``object_scale`` (0.5-2) scales the objects' physical size (diameter and height) at the
    fixed camera, so they cover more or fewer pixels; ``noise_scale`` (0-5) multiplies the
    sensor's depth and RGB noise and its random dropout rates (0 = noise-free, steep-wall and
    shadow losses stay); ``defect_scale`` (0.3-3) scales the defects' lateral size (radius,
    length, width) independently of ``defect_strength`` (depth/height/contrast). At 1.0 they
    leave the output unchanged. ``flying_pixels`` (0-1, default 0) is the share of pixels at
    depth discontinuities (> 1 mm) that the sensor places between the two surfaces ("mixed" or
    "flying" pixels of real depth sensors); 0 leaves the output unchanged. ``dent_shading`` (0-1,
    default 1) is how much of a dent's or bump's change of shading reaches the RGB image: 1 as lit,
    0 none (geometry-only defects, as on matte textured parts); the xyz and the mask are the same.
    ``print_variation`` (0-1, default 0) multiplies each part's colour by a smooth random field of
    its own (per channel 1 ± this much, one standard deviation): a print or finish that differs
    from part to part, so the RGB image of good parts varies (0 leaves the output unchanged)."""
    categories = list(DEMO_CATEGORIES if categories is None else categories)
    defect_types = list(DEFECT_TYPES if defect_types is None else defect_types)
    if not categories:
        raise UserError("no demo category selected")
    for cat in categories:
        if cat not in _BUILDERS:
            raise UserError(f"unknown demo category {cat!r}; known: {', '.join(DEMO_CATEGORIES)}")
    for t in defect_types:
        if t not in DEFECT_TYPES:
            raise UserError(f"unknown defect type {t!r}; known: {', '.join(DEFECT_TYPES)}")
    if len(set(categories)) != len(categories) or len(set(defect_types)) != len(defect_types):
        raise UserError("categories and defect types must not repeat")
    if not 0 <= int(seed) < 2**63:
        raise UserError(f"seed must be a non-negative integer, got {seed}")
    if not 64 <= int(size) <= 2048:
        raise UserError(f"image size must be between 64 and 2048 pixels, got {size}")
    counts = {"n_train": n_train, "n_validation": n_validation, "n_test_good": n_test_good,
              "n_test_per_defect": n_test_per_defect}
    for k, v in counts.items():
        if not 0 <= int(v) <= 100_000:
            raise UserError(f"{k} must be between 0 and 100000, got {v}")
    if int(n_train) < 1:
        raise UserError("n_train must be at least 1")
    if not 0 < float(defect_strength) <= 10:
        raise UserError(f"defect strength must be in (0, 10], got {defect_strength}")
    variation = dict(zip(VARIATION_RANGES, _variation(object_scale, noise_scale, defect_scale, flying_pixels,
                                                      dent_shading, print_variation)))
    return {
        "generator": "lsfa-demo",
        "version": GENERATOR_VERSION,
        "seed": int(seed),
        "categories": categories,
        "size": int(size),
        **{k: int(v) for k, v in counts.items()},
        "defect_types": defect_types,
        "defect_strength": float(defect_strength),
        **variation,
    }


def generate_demo_dataset(
    out_dir: str | Path,
    seed: int = 0,
    categories: list[str] | tuple[str, ...] | None = None,
    size: int = DEFAULT_SIZE,
    n_train: int = DEFAULT_COUNTS["n_train"],
    n_validation: int = DEFAULT_COUNTS["n_validation"],
    n_test_good: int = DEFAULT_COUNTS["n_test_good"],
    n_test_per_defect: int = DEFAULT_COUNTS["n_test_per_defect"],
    defect_types: list[str] | tuple[str, ...] | None = None,
    defect_strength: float = 1.0,
    object_scale: float = 1.0,
    noise_scale: float = 1.0,
    defect_scale: float = 1.0,
    flying_pixels: float = 0.0,
    dent_shading: float = 1.0,
    print_variation: float = 0.0,
    progress: progress_mod.Progress | None = None,
    force: bool = False,
    workers: int = 1,
) -> Path:
    """Write a demo dataset in the MVTec 3D-AD layout to ``out_dir`` and return its path.

    Files are written into a temporary folder beside ``out_dir`` and renamed into place.
    If ``out_dir`` already holds a demo dataset made with the same parameters it is returned
    as is (the output is deterministic). Another demo dataset there (``.lsfa_demo.json``
    marker) is replaced only with ``force``; any other non-empty folder is refused, never
    deleted. ``workers`` > 1 renders in that many spawned processes, 0 picks up to 4 for
    larger sets; files do not depend on it (scripts calling with workers != 1 need the
    ``if __name__ == "__main__":`` guard). ``object_scale``, ``noise_scale``,
    ``defect_scale``, ``flying_pixels``, ``dent_shading`` and ``print_variation`` vary the scene
    (see :func:`demo_parameters`).
    """
    p = progress_mod.ensure(progress)
    params = demo_parameters(
        seed, categories, size, n_train, n_validation, n_test_good, n_test_per_defect,
        defect_types, defect_strength, object_scale, noise_scale, defect_scale, flying_pixels, dent_shading,
        print_variation,
    )
    out = Path(out_dir).expanduser().absolute()
    replacing = False
    if out.exists():
        if not out.is_dir():
            raise UserError(f"{out}: exists and is not a folder")
        if any(out.iterdir()):
            marker = read_marker(out)
            if marker is None:
                raise UserError(
                    f"{out}: folder is not empty and is not a demo dataset; choose another output folder"
                )
            if marker == params:
                log.info("%s: demo dataset already up to date", out)
                return out
            if not force:
                raise UserError(
                    f"{out}: holds a demo dataset made with other parameters; use --force to replace it"
                )
            from core.data.generated import refuse_foreign

            refuse_foreign(out, marker, MARKER_NAME)
            replacing = True
    out.parent.mkdir(parents=True, exist_ok=True)

    jobs = _plan(params["categories"], params["n_train"], params["n_validation"],
                 params["n_test_good"], params["n_test_per_defect"], params["defect_types"])
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for cat in params["categories"]:
            calib = tmp / cat / "calibration"
            calib.mkdir(parents=True)
            (calib / "camera_parameters.json").write_text(json.dumps(_camera_matrix(size), indent=2) + "\n")
        n_workers = _default_workers(len(jobs)) if int(workers) == 0 else max(1, int(workers))
        args = (params["seed"], params["size"], params["defect_strength"],
                *(params[k] for k in VARIATION_RANGES))
        _run_jobs(jobs, tmp, args, n_workers, p)
        (tmp / MARKER_NAME).write_text(_marker_text(params))
        os.chmod(tmp, 0o755)
        if replacing:
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, trash / "old")
            os.replace(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            if out.exists():
                out.rmdir()  # an empty folder
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def ensure_demo_dataset(out_dir: str | Path | None = None, progress: progress_mod.Progress | None = None,
                        **kwargs) -> Path:
    """The demo dataset at ``out_dir`` (default: :func:`default_demo_dir`), generated or
    replaced if missing or made with other parameters (other data is never replaced)."""
    out = default_demo_dir() if out_dir is None else out_dir
    return generate_demo_dataset(out, progress=progress, force=True, **kwargs)


def default_demo_dir() -> Path:
    """Per-user folder for the built-in demo dataset: ``<cache>/demo``, where <cache> is
    ``$LSFA_CACHE_DIR`` or ``$XDG_CACHE_HOME/lsfa-inspector`` (~/.cache/lsfa-inspector)."""
    from core.prepare import default_cache_dir

    return default_cache_dir() / "demo"


def dataset_digest(root: str | Path) -> str:
    """sha256 over all file names and contents under ``root`` (for determinism checks)."""
    h = hashlib.sha256()
    root = Path(root)
    for path in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()
