"""Write the procedural "parts" confirmation dataset (core/data/parts/) and time it.

Run: .venv/bin/python bench/make_parts_data.py OUT [--seed 0] [--size 400] [--categories bracket,gear]
     [--train 60] [--validation 10] [--test-good 12] [--test-per-defect 6] [--defects dent,hole] [--force]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.data.parts import PARTS_CATEGORIES, PARTS_DEFECT_TYPES, generate_parts_dataset  # noqa: E402
from core.errors import UserError  # noqa: E402
from core.progress import Progress  # noqa: E402


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="output folder (created; must be empty or a parts dataset)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=400, help="image side in pixels (default 400)")
    ap.add_argument("--categories", help=f"comma-separated subset of {','.join(PARTS_CATEGORIES)}")
    ap.add_argument("--defects", help=f"comma-separated subset of {','.join(PARTS_DEFECT_TYPES)}")
    ap.add_argument("--train", type=int, default=60)
    ap.add_argument("--validation", type=int, default=10)
    ap.add_argument("--test-good", type=int, default=12)
    ap.add_argument("--test-per-defect", type=int, default=6)
    ap.add_argument("--one-design", action="store_true",
                    help="one design per category (one product, as on a line) instead of a new design per part")
    ap.add_argument("--force", action="store_true", help="replace a parts dataset made with other parameters")
    ap.add_argument("--quiet", action="store_true", help="no per-sample progress")
    args = ap.parse_args(argv)

    state = {"n": 0}

    def report(ev) -> None:
        state["n"] = ev.total
        if not args.quiet and ev.total:
            print(f"\r{ev.stage}: {ev.done}/{ev.total} {ev.message:<40}", end="", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    c0 = time.process_time()
    try:
        out = generate_parts_dataset(
            args.out,
            seed=args.seed,
            categories=_names(args.categories),
            size=args.size,
            n_train=args.train,
            n_validation=args.validation,
            n_test_good=args.test_good,
            n_test_per_defect=args.test_per_defect,
            defect_types=_names(args.defects),
            progress=Progress(report),
            force=args.force,
            one_design=args.one_design,
        )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    if not args.quiet and state["n"]:
        print(file=sys.stderr)
    n = state["n"]
    if n:
        print(f"wrote {n} samples to {out} in {wall:.1f} s ({wall / n * 1000:.0f} ms/sample wall, "
              f"{cpu / n * 1000:.0f} ms/sample CPU)")
    else:
        print(f"{out} already holds this dataset (nothing written, {wall:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
