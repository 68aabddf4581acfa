"""``lsfa info DATA_ROOT``: what a dataset folder holds (format, categories, splits, types,
sample counts and modalities). Text table by default, ``--json`` for machines."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "info",
        help="describe a dataset folder",
        description="List format, categories, splits, defect types, sample counts and modalities "
        "(rgb/xyz/gt) of a dataset folder (MVTec 3D-AD, raw Eyecandies, MVTec AD / MPDD / BTAD (2D) "
        "or a plain folder of samples).",
    )
    p.add_argument("data_root", metavar="DATA_ROOT", help="dataset folder")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def format_table(info: dict) -> str:
    """Human-readable table of ``Dataset.info()``."""
    lines = [f"{info['root']}  (format: {info['format']})"]
    header = ("category", "split", "type", "samples", "rgb", "xyz", "gt")
    rows = []
    for cat, cinfo in info["categories"].items():
        for split, sinfo in cinfo["splits"].items():
            mods = sinfo["modalities"]
            rows.append((cat, split, "(all)", sinfo["samples"], mods["rgb"], mods["xyz"], mods["gt"]))
            if len(sinfo["types"]) > 1 or split not in ("train", "validation"):
                for t, n in sinfo["types"].items():
                    rows.append(("", "", t, n, "", "", ""))
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    fmt = "  ".join(f"{{:{'>' if i >= 3 else '<'}{w}}}" for i, w in enumerate(widths))
    lines.append(fmt.format(*header))
    lines.append(fmt.format(*("-" * w for w in widths)))
    lines += [fmt.format(*(str(v) for v in r)) for r in rows]
    for cat, cinfo in info["categories"].items():
        types = ", ".join(cinfo["defect_types"]) or "none"
        lines.append(f"{cat}: defect types: {types}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from core.data.dataset import open_dataset

    info = open_dataset(args.data_root).info()
    print(json.dumps(info, indent=2) if args.json else format_table(info))
    return 0
