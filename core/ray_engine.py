"""``lsfa score --engine ray``: score a backlog on a Ray cluster (Ray Data), giving the rows the
local engine gives. Imported only for ``--engine ray``; Ray itself is imported inside functions.

The driver lists the inputs (as local scoring does) and makes them a Ray dataset of
(index, sample reference) rows. An actor pool (one actor per worker, 1 CPU each) loads the model
once per actor from its bytes, shipped through the object store (``ray.put``: the nodes need not
share the model file; read with the safe loader, never unpickled), and scores batches with
:func:`core.score_rows.score_rows`, writing the ``--maps`` PNGs itself. The driver collects rows
as batches finish (progress), keeps one row per input, and returns them in input order after
checking that every input has exactly one.

Every node must see the inputs (and the maps folder) at the driver's paths (a shared folder) and
run the same LSFA Inspector install with ``ray[data]``.

Faults: a sample that cannot be scored is a SKIPPED row. An actor that dies is restarted and its
unfinished batches retried: Ray Data's actor-pool defaults (``max_restarts=-1``,
``max_task_retries=-1``; tests/test_ray_score.py checks it). A retried batch cannot duplicate a
row (the driver keeps the first row of each input). Ctrl-C or a cancel ends the Ray job: a
local Ray instance started here is shut down; on a joined cluster the driver's actors end
with it.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import socket
from pathlib import Path

import numpy as np

from core.data.refs import SampleRef
from core.data.units import scoring_units
from core.errors import UserError
from core.progress import Progress, ensure

__all__ = ["score_on_ray", "import_ray", "CRASH_MARKER_ENV"]

log = logging.getLogger(__name__)

RAY_PIN = "ray[data]==2.60.0"
# Fault injection for tests: when this env var names an existing file, the first actor to
# start a batch deletes the file and dies (os._exit) mid-run.
CRASH_MARKER_ENV = "LSFA_RAY_CRASH_MARKER"
_MAX_BATCH = 16  # samples per actor call at most (smaller batches: finer progress and retries)
_PATH_FIELDS = ("rgb_path", "xyz_path", "mask_path")


def import_ray():
    """The ``ray`` module (with Ray Data), or a UserError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UserError(f"--engine ray needs Ray, which is not installed (pip install '{RAY_PIN}')") from None
    return ray


def ref_to_json(ref: SampleRef) -> str:
    """A SampleRef as a JSON string (a Ray dataset cell)."""
    return json.dumps({
        "name": ref.name, "category": ref.category, "split": ref.split, "label": ref.label,
        **{k: None if getattr(ref, k) is None else str(getattr(ref, k)) for k in _PATH_FIELDS},
        "kind": ref.kind, "extra": [list(pair) for pair in ref.extra],
    })


def ref_from_json(text: str) -> SampleRef:
    """The SampleRef of :func:`ref_to_json`."""
    d = json.loads(text)
    for k in _PATH_FIELDS:
        d[k] = None if d[k] is None else Path(d[k])
    d["extra"] = tuple(tuple(pair) for pair in d["extra"])
    return SampleRef(**d)


def _crash_if_armed() -> None:
    marker = os.environ.get(CRASH_MARKER_ENV)
    if not marker:
        return
    try:
        os.unlink(marker)
    except FileNotFoundError:
        return
    os._exit(3)


class Scorer:
    """Ray Data actor: loads the model once from its bytes, then scores batches of
    {"index", "ref"} rows into {"index", "row"} (the row as JSON)."""

    def __init__(self, model_ref: list, model_name: str, thresholds: dict, xyz_units: str,
                 maps: str | None, annotate: bool = False, report: bool = False,
                 roi: np.ndarray | None = None, roi_source: str = "region of interest"):
        from core.model_io import load_model
        from core.results import Thresholds

        ray = import_ray()
        data = model_ref[0]
        if isinstance(data, ray.ObjectRef):
            data = ray.get(data)
        self.model = load_model(model_name, data=data)
        self.model.xyz_units = xyz_units  # the driver's resolved unit (core.data.units.scoring_units)
        self.model.thresholds = Thresholds.from_dict(thresholds)
        self.model.set_roi(roi, roi_source)  # the driver's (stored, or lsfa score --roi)
        self.maps = None if maps is None else Path(maps)
        self.annotate = annotate
        self.report = report

    def __call__(self, batch: dict) -> dict:
        from core.score_rows import score_rows

        _crash_if_armed()
        refs = [ref_from_json(str(text)) for text in batch["ref"]]
        out = list(score_rows(self.model, refs, [int(i) for i in batch["index"]], self.maps,
                              annotate=self.annotate, report=self.report))
        return {"index": np.array([i for i, _ in out], dtype=np.int64),
                "row": np.array([row_to_json(row) for _, row in out], dtype=object)}


def row_to_json(row: dict) -> str:
    """A score row as JSON (its report PNG, if any, base64-encoded)."""
    from core.score_rows import REPORT_PNG

    if REPORT_PNG in row:
        row = {**row, REPORT_PNG: base64.b64encode(row[REPORT_PNG]).decode("ascii")}
    return json.dumps(row)


def row_from_json(text: str) -> dict:
    """The row of :func:`row_to_json`."""
    from core.score_rows import REPORT_PNG

    row = json.loads(text)
    if REPORT_PNG in row:
        row[REPORT_PNG] = base64.b64decode(row[REPORT_PNG])
    return row


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """UserError unless the head at ``address`` (HOST:PORT or ray://HOST:PORT; not "auto")
    accepts a TCP connection within ``timeout_s`` seconds (Ray itself retries for minutes)."""
    target = address.removeprefix("ray://")
    if address == "auto" or ":" not in target:
        return
    host, _, port = target.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except ValueError:
        raise UserError(f"--address {address}: expected 'auto', HOST:PORT or ray://HOST:PORT") from None
    except OSError as exc:
        raise UserError(f"--address {address}: cannot reach the Ray head ({exc.strerror or exc}); "
                        "is 'ray start --head' running there?") from None


def _connect(ray, address: str | None, workers: int | None) -> bool:
    """Join the cluster at ``address``, or start a local Ray instance (``workers`` CPUs, default
    all); nothing when Ray is already initialised. True if this call connected."""
    if address:
        check_reachable(address)
    if ray.is_initialized():
        return False
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise UserError(f"cannot start or join {where} ({exc})") from None
    return True


def _quiet_ray_data(ray) -> None:
    """No Ray Data progress bars or execution banners: the driver reports progress itself."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def pool_size(ray, workers: int | None, n: int) -> int:
    """Actors to start: ``workers``, else one per CPU of the cluster; never more than ``n``."""
    if workers is None:
        workers = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(workers, n))


def batch_size(n: int, actors: int) -> int:
    """Samples per actor call: about four calls per actor, 1 to 16 samples each."""
    return max(1, min(_MAX_BATCH, math.ceil(n / (4 * actors))))


def score_on_ray(model_path: str | Path, model_data: bytes, model, refs: list[SampleRef], *,
                 maps: Path | None = None, address: str | None = None, workers: int | None = None,
                 progress: Progress | None = None, stage: str = "Scoring", annotate: bool = False,
                 report: bool = False) -> list[tuple[int, dict]]:
    """(index, row) for every SampleRef, in input order, scored on Ray as
    :func:`core.score_rows.score_rows` scores them locally. ``model``: the model loaded from
    ``model_data`` on the driver, whose thresholds, point units (core.data.units.scoring_units) and
    region of interest the actors use."""
    ray = import_ray()
    n = len(refs)
    if n == 0:
        return []
    p = ensure(progress)
    started = _connect(ray, address, workers)
    rows: dict[int, dict] = {}
    batches = None
    try:
        _quiet_ray_data(ray)
        actors = pool_size(ray, workers, n)
        size = batch_size(n, actors)
        items = [{"index": i, "ref": ref_to_json(ref)} for i, ref in enumerate(refs)]
        dataset = ray.data.from_items(items, override_num_blocks=math.ceil(n / size))
        model_ref = ray.put(model_data)  # held here until the job ends: restarted actors read it
        scored = dataset.map_batches(
            Scorer,
            fn_constructor_args=([model_ref], str(model_path), model.thresholds.to_dict(), scoring_units(model),
                                 None if maps is None else str(maps), annotate, report, model.roi,
                                 model.roi_source),
            batch_size=size, batch_format="numpy", num_cpus=1,
            compute=ray.data.ActorPoolStrategy(size=actors),
        )
        log.info("scoring %d sample(s) on Ray with %d worker(s), %d sample(s) per batch", n, actors, size)
        p.update(stage, 0, n)
        batches = iter(scored.iter_batches(batch_size=None, batch_format="numpy"))
        for out in batches:
            for i, text in zip(out["index"], out["row"]):
                rows.setdefault(int(i), row_from_json(str(text)))
            p.update(stage, len(rows), n)
    except ray.exceptions.RayError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, UserError):  # e.g. a map that cannot be written, raised in an actor
            raise UserError(str(cause)) from None
        log.debug("Ray job failed", exc_info=True)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"the Ray job failed: {first}") from None
    finally:
        if batches is not None and hasattr(batches, "close"):
            batches.close()
        if started:
            ray.shutdown()
    missing = [i for i in range(n) if i not in rows]
    if missing:
        raise UserError(f"the Ray job returned no row for {len(missing)} of {n} sample(s), e.g. "
                        f"{refs[missing[0]].source()}")
    return sorted(rows.items())
