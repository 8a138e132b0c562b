"""What the window remembers between sessions (QSettings) and file-name helpers.

The store is an INI file in the user's config folder, under the organisation name in ``RWGUI_SETTINGS_ORG``
(default "rwgui"); tests point ``QSettings.setPath`` at a temporary folder so they never touch a real one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QMimeData, QObject, QSettings, Signal

from ..core.config import RunConfig
from ..core.imageio import READ_EXTENSIONS

if TYPE_CHECKING:
    from PySide6.QtWidgets import QMainWindow

    from .settings_dock import SettingsPanel

__all__ = ["FileState", "app_settings", "image_filter", "paths_from_mime"]

MAX_RECENT = 8


def app_settings() -> QSettings:
    org = os.environ.get("RWGUI_SETTINGS_ORG", "rwgui")
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, org, "rwgui")


def image_filter() -> str:
    pats = " ".join(f"*.{e}" for e in READ_EXTENSIONS) + " " + " ".join(f"*.{e.upper()}" for e in READ_EXTENSIONS)
    return f"Photos ({pats});;All files (*)"


def paths_from_mime(mime: QMimeData) -> list[str]:
    """Local image files in a drag's data (other files and URLs are ignored)."""
    if not mime.hasUrls():
        return []
    out = []
    for url in mime.urls():
        p = url.toLocalFile()
        if p and Path(p).suffix.lower().lstrip(".") in READ_EXTENSIONS:
            out.append(p)
    return out


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


class FileState(QObject):
    """Recent files, the last folder, window layout and the last settings, persisted in QSettings."""

    recent_changed = Signal()

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.qs = settings if settings is not None else app_settings()

    def recent(self) -> list[str]:
        return _as_list(self.qs.value("files/recent"))

    def add_recent(self, path: str) -> None:
        path = str(Path(path).resolve())
        items = [path] + [p for p in self.recent() if p != path]
        self.qs.setValue("files/recent", items[:MAX_RECENT])
        self.set_last_folder(str(Path(path).parent))
        self.recent_changed.emit()

    def last_folder(self) -> str:
        folder = self.qs.value("files/last_folder")
        return str(folder) if folder and Path(str(folder)).is_dir() else str(Path.home())

    def set_last_folder(self, folder: str) -> None:
        self.qs.setValue("files/last_folder", folder)

    def save_window(self, win: QMainWindow, panel: SettingsPanel) -> None:
        self.qs.setValue("window/geometry", win.saveGeometry())
        self.qs.setValue("window/state", win.saveState())
        try:
            self.qs.setValue("run/config", panel.config().to_json())
        except Exception:
            pass
        self.qs.sync()

    def restore_window(self, win: QMainWindow, panel: SettingsPanel) -> None:
        geo, state = self.qs.value("window/geometry"), self.qs.value("window/state")
        if isinstance(geo, QByteArray):
            win.restoreGeometry(geo)
        if isinstance(state, QByteArray):
            win.restoreState(state)
        text = self.qs.value("run/config")
        if text:
            try:
                panel.set_config(RunConfig.from_json(str(text)))
            except Exception:
                pass
