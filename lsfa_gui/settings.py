"""UI preferences in QSettings: window geometry/state, last folders, colormap, opacity, fit choices.

``LSFA_GUI_SETTINGS`` (a file path) points the app at an INI file instead of the per-user
store; tests pass their own ``QSettings`` so they never touch the user's preferences.
"""

from __future__ import annotations

import json
import os

from PySide6.QtCore import QByteArray, QSettings

ORGANISATION = "LSFA"
APPLICATION = "LSFA Inspector"
RECENT_MAX = 8  # entries in each File ▸ Recent menu


def make_qsettings(path: str | None = None) -> QSettings:
    path = path or os.environ.get("LSFA_GUI_SETTINGS")
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(ORGANISATION, APPLICATION)


class Settings:
    """Typed access to the few preferences the window keeps."""

    def __init__(self, qsettings: QSettings | None = None):
        self.q = qsettings if qsettings is not None else make_qsettings()

    def last_dir(self, kind: str) -> str:
        return str(self.q.value(f"last_dir/{kind}", "", type=str) or "")

    def set_last_dir(self, kind: str, folder: str) -> None:
        self.q.setValue(f"last_dir/{kind}", str(folder))

    def recent(self, kind: str) -> list[str]:
        """The recently opened paths of ``kind`` ("models", "folders"), newest first."""
        try:
            value = json.loads(str(self.q.value(f"recent/{kind}", "", type=str) or "[]"))
        except ValueError:
            return []
        return [str(v) for v in value if isinstance(v, str)][:RECENT_MAX] if isinstance(value, list) else []

    def add_recent(self, kind: str, path: str) -> None:
        """Put ``path`` first in the recent list of ``kind`` (at most RECENT_MAX entries)."""
        self.set_recent(kind, [str(path)] + [p for p in self.recent(kind) if p != str(path)])

    def set_recent(self, kind: str, paths: list[str]) -> None:
        self.q.setValue(f"recent/{kind}", json.dumps(list(paths)[:RECENT_MAX]))

    def colormap(self, default: str) -> str:
        return str(self.q.value("display/colormap", default, type=str) or default)

    def opacity(self, default: float) -> float:
        try:
            return float(self.q.value("display/opacity", default))
        except (TypeError, ValueError):
            return default

    def save_display(self, colormap: str, opacity: float) -> None:
        self.q.setValue("display/colormap", colormap)
        self.q.setValue("display/opacity", float(opacity))

    def window_state(self) -> tuple[QByteArray | None, QByteArray | None]:
        geom = self.q.value("window/geometry")
        state = self.q.value("window/state")
        return (geom if isinstance(geom, QByteArray) else None, state if isinstance(state, QByteArray) else None)

    def save_window_state(self, geometry: QByteArray, state: QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)

    def fit_choices(self) -> dict:
        """The last fit-dialog choices (a json object; {} when none or unreadable)."""
        try:
            value = json.loads(str(self.q.value("fit/choices", "", type=str) or "{}"))
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def save_fit_choices(self, choices: dict) -> None:
        self.q.setValue("fit/choices", json.dumps(choices, sort_keys=True))

    def sync(self) -> None:
        self.q.sync()
