"""``lsfa demo-data [OUT]``: write the built-in procedural demo dataset (MVTec 3D-AD layout)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    from core.demo import DEFAULT_COUNTS, DEFAULT_SIZE, DEFECT_TYPES, DEMO_CATEGORIES, VARIATION_RANGES

    def span(name: str) -> str:
        lo, hi = VARIATION_RANGES[name]
        return f"{lo:g}-{hi:g}"

    p = subparsers.add_parser(
        "demo-data",
        help="write the built-in demo dataset (synthetic RGB + point-cloud scans)",
        description=(
            "Write a procedural demo dataset in the MVTec 3D-AD layout: "
            "OUT/<category>/{train/good, validation/good, test/<good|defect>}/{rgb,xyz,gt}. "
            "The same seed and options give byte-identical files. An existing demo dataset "
            "made with the same options is kept as is; one made with other options is "
            "replaced only with --force, and only when it holds nothing but the generator's own "
            "files; other non-empty folders are never touched."
        ),
    )
    p.add_argument("out", nargs="?", type=Path, default=None,
                   help="output folder (default: the per-user cache, ~/.cache/lsfa-inspector/demo)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--categories", default=",".join(DEMO_CATEGORIES),
                   help=f"comma-separated object categories (default {','.join(DEMO_CATEGORIES)})")
    p.add_argument("--defect-types", default=",".join(DEFECT_TYPES),
                   help=f"comma-separated defect types (default {','.join(DEFECT_TYPES)})")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE, help=f"image side in pixels (default {DEFAULT_SIZE})")
    p.add_argument("--train", type=int, default=DEFAULT_COUNTS["n_train"], help="good training samples per category")
    p.add_argument("--validation", type=int, default=DEFAULT_COUNTS["n_validation"],
                   help="good validation samples per category")
    p.add_argument("--test-good", type=int, default=DEFAULT_COUNTS["n_test_good"], help="good test samples per category")
    p.add_argument("--test-per-defect", type=int, default=DEFAULT_COUNTS["n_test_per_defect"],
                   help="test samples per defect type and category")
    p.add_argument("--defect-strength", type=float, default=1.0,
                   help="scale of defect depth/height/colour contrast (default 1.0; 0.5 = subtle, 2 = obvious)")
    p.add_argument("--object-scale", type=float, default=1.0,
                   help=f"scale of the objects' physical size, diameter and height ({span('object_scale')}, "
                        "default 1.0); the camera stays, so the object covers more or fewer pixels")
    p.add_argument("--noise-scale", type=float, default=1.0,
                   help=f"multiplies the sensor's depth and RGB noise and its random dropout rates "
                        f"({span('noise_scale')}, default 1.0; 0 = none; shadows and steep walls still lose points)")
    p.add_argument("--defect-scale", type=float, default=1.0,
                   help=f"scale of the defects' lateral size: radius, crack length and width "
                        f"({span('defect_scale')}, default 1.0); --defect-strength sets their depth/contrast")
    p.add_argument("--flying-pixels", type=float, default=0.0,
                   help=f"share of the pixels at depth discontinuities that the sensor places between the "
                        f"two surfaces, as real depth sensors do ({span('flying_pixels')}, default 0)")
    p.add_argument("--dent-shading", type=float, default=1.0,
                   help=f"how much of a dent's or bump's shading shows in the RGB image ({span('dent_shading')}, "
                        f"default 1 = as lit; 0 = geometry only, as on matte textured parts)")
    p.add_argument("--print-variation", type=float, default=0.0,
                   help=f"how much each part's colour varies by a smooth random field of its own, one standard "
                        f"deviation per channel ({span('print_variation')}, default 0): a print or finish that "
                        f"differs from part to part")
    p.add_argument("--workers", type=int, default=0, help="rendering processes (default 0 = automatic)")
    p.add_argument("--force", action="store_true", help="replace a demo dataset made with other options")
    p.set_defaults(func=run)


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def run(args: argparse.Namespace) -> int:
    from core import demo
    from core.progress import Progress

    interactive = sys.stderr.isatty()
    last = [-1]

    def show(ev) -> None:
        pct = int(100 * ev.fraction)
        if interactive:
            print(f"\r{ev.stage}: {ev.done}/{ev.total} ({pct}%)", end="", file=sys.stderr, flush=True)
        elif pct // 25 != last[0] // 25 or ev.done == ev.total:
            print(f"{ev.stage}: {ev.done}/{ev.total}", file=sys.stderr)
        last[0] = pct

    out = args.out if args.out is not None else demo.default_demo_dir()
    path = demo.generate_demo_dataset(
        out,
        seed=args.seed,
        categories=_split(args.categories),
        size=args.size,
        n_train=args.train,
        n_validation=args.validation,
        n_test_good=args.test_good,
        n_test_per_defect=args.test_per_defect,
        defect_types=_split(args.defect_types),
        defect_strength=args.defect_strength,
        object_scale=args.object_scale,
        noise_scale=args.noise_scale,
        defect_scale=args.defect_scale,
        flying_pixels=args.flying_pixels,
        dent_shading=args.dent_shading,
        print_variation=args.print_variation,
        progress=Progress(show),
        force=args.force,
        workers=args.workers,
    )
    if interactive and last[0] >= 0:
        print(file=sys.stderr)
    print(path)
    return 0
