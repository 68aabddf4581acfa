"""Which files in a generated dataset folder the generator wrote: ``--force`` may replace a
generated dataset only when nothing else is in it, so files a user added are never deleted."""

from __future__ import annotations

import re
from pathlib import Path


def foreign_files(out: Path, marker: dict, marker_name: str) -> list[str]:
    """Files under ``out`` (relative paths) that a generator with parameters ``marker`` does not
    write: anything but the marker, ``<cat>/calibration/camera_parameters.json`` and
    ``<cat>/<split>/<good|defect>/<rgb|xyz|gt>/<number>.<png|tiff>`` of its categories and types."""
    cats = "|".join(re.escape(str(c)) for c in marker.get("categories", []))
    types = "|".join(re.escape(str(t)) for t in ["good", *marker.get("defect_types", [])])
    ours = re.compile(
        rf"(?:{re.escape(marker_name)}|(?:{cats})/calibration/camera_parameters\.json"
        rf"|(?:{cats})/(?:train|validation|test)/(?:{types})/(?:rgb|xyz|gt)/\d+\.(?:png|tiff))"
    )
    found = []
    for path in sorted(out.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        rel = path.relative_to(out).as_posix()
        if not (cats and ours.fullmatch(rel)):
            found.append(rel)
    return found


def refuse_foreign(out: Path, marker: dict, marker_name: str) -> None:
    """UserError when replacing ``out`` would delete files its generator did not write."""
    from core.errors import UserError

    foreign = foreign_files(out, marker, marker_name)
    if foreign:
        raise UserError(
            f"{out}: holds {len(foreign)} file(s) the generator did not write (e.g. {foreign[0]}); "
            "not replacing it. Move them away or choose another output folder"
        )
