"""``lsfa watch MODEL.lsfa FOLDER [--csv LOG.csv] [--maps DIR] [--recursive] [--uncertain LOW HIGH]
[--settle SECONDS]``: live line inspection. Scores every new sample dropped into FOLDER once, in
arrival order, logs one line per part and appends one CSV row per part, until Ctrl-C (exit 0
with a summary). See :mod:`core.watch` for when a sample counts as complete."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

from core.commands.fit import add_roi_arg, add_units_arg
from core.commands.score import add_min_area_arg, add_uncertain_arg, apply_scoring_options

log = logging.getLogger(__name__)


def _positive(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def register(sub) -> None:
    from core.watch import PARTNER_TIMEOUT_S, POLL_S, SETTLE_S

    p = sub.add_parser(
        "watch", help="live inspection: score each new sample dropped into a folder (until Ctrl-C)",
        description="Watch FOLDER and score every new sample once, in arrival order, until Ctrl-C. "
                    "A sample is scored when all the files the model needs (e.g. NAME.png + NAME.tiff) "
                    "are there and none changed for --settle seconds. Samples already in the --csv log "
                    "are not scored again, so a restart picks up where the last run stopped.")
    p.add_argument("model", type=Path, help="model file (.lsfa)")
    p.add_argument("folder", type=Path, help="folder the samples are dropped into")
    p.add_argument("--csv", type=Path,
                   help="append one row per part to this CSV log (the lsfa score columns plus a timestamp); "
                        "an existing log is continued, its samples are not scored again")
    p.add_argument("--maps", type=Path, help="write a heatmap overlay PNG per part into this folder")
    p.add_argument("--recursive", action="store_true", help="watch the subfolders of FOLDER too")
    p.add_argument("--settle", type=_positive, default=SETTLE_S, metavar="SECONDS",
                   help=f"a sample's files must not change for this long before it is scored (default {SETTLE_S:g})")
    p.add_argument("--poll", type=_positive, default=POLL_S, metavar="SECONDS",
                   help=f"seconds between two looks at the folder (default {POLL_S:g})")
    p.add_argument("--partner-timeout", type=_positive, default=PARTNER_TIMEOUT_S, metavar="SECONDS",
                   help="a sample still missing a partner file (e.g. its .tiff) this long after it appeared "
                        f"becomes an error row (default {PARTNER_TIMEOUT_S:g})")
    add_units_arg(p)
    add_uncertain_arg(p)
    add_min_area_arg(p)
    add_roi_arg(p, what="replaces the ROI stored in the model file (default: the stored one, else the whole image)")
    p.set_defaults(func=run)


def run(args) -> int:
    from core.errors import UserError
    from core.model_io import load_model
    from core.naming import safe_name
    from core.outputs import check_output_dir, check_output_file
    from core.progress import Cancelled
    from core.render import save_png
    from core.watch import WatchLog, tally, watch
    from core.commands.score import map_image

    folder = args.folder.expanduser()
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder (give the folder to watch)")
    model = load_model(args.model)
    apply_scoring_options(model, args)
    if args.csv:
        check_output_file(args.csv, "CSV log")
    if args.maps:
        from core.watch import sample_key

        if sample_key(args.maps) == sample_key(folder):
            raise UserError(f"{args.maps}: the maps folder must not be the watched folder "
                            "(its PNGs would be taken for new samples); use a subfolder or another folder")
        check_output_dir(args.maps, "maps folder")
    logbook = WatchLog(args.csv) if args.csv else None
    done = logbook.done if logbook else set()
    verdicts: list[str] = []
    thr = model.thresholds
    band = f", uncertain until {thr.uncertain_until:.6g}" if thr.uncertain_until is not None else ""
    log.info("watching %s%s (image threshold %.6g%s); %s; Ctrl-C (or SIGTERM) stops", folder,
             " and its subfolders" if args.recursive else "", thr.image, band,
             f"{len(done)} sample(s) already in {args.csv}" if logbook else "no CSV log")
    previous = _stop_on_sigterm()
    try:
        for record in watch(model, folder, recursive=args.recursive, settle_s=args.settle, poll_s=args.poll,
                            partner_timeout_s=args.partner_timeout, done=done,
                            ignore=[args.maps] if args.maps else ()):
            row = record.row
            verdicts.append(row["verdict"])  # first: a Ctrl-C right after the CSV row still counts it
            if logbook:
                logbook.append(row)
            if record.result is None:
                log.error("%s  %s  %s", row["name"], row["verdict"], row["error"])
                continue
            log.info("%s  %s  %s", row["name"], row["verdict"], row["image_score"])
            sys.stderr.flush()
            if args.maps:
                target = args.maps / f"{safe_name(row['name'])}.png"
                try:
                    save_png(target, map_image(record.result, model, original=_reload(record.ref)))
                except OSError as exc:
                    log.error("%s: cannot write the map (%s)", target, exc.strerror or exc)
    except (KeyboardInterrupt, Cancelled):
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if logbook:
            logbook.close()
    log.info("stopped: %s", tally(verdicts).summary())
    return 0


def _stop_on_sigterm():
    """Make SIGTERM (a service manager's stop) end the watch as Ctrl-C does: summary, exit 0.
    Returns the previous handler (None when not on the main thread, where none can be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(_signum, _frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, stop)


def _reload(ref):
    """The sample as loaded again, for a map at original resolution (None when it is gone:
    the map is then drawn on the model grid)."""
    from core.errors import UserError

    try:
        return ref.load()
    except (UserError, OSError):
        return None
