"""The window's file side: save the result, export curves and settings, file dialogs, recent files.

:class:`WindowIO` is a collaborator of :class:`~rwgui.gui.main_window.MainWindow`, kept apart so that the window
module stays wiring. It reads what it writes from the session; what it opens goes through the window's own
methods (:class:`DocumentHost`), which put it into the session. Every dialog is thin: it asks for a path and
calls a method that tests call directly.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Protocol

from PySide6.QtWidgets import QFileDialog, QMenu, QStatusBar, QWidget

from ..core import imageio
from ..core.config import RunConfig
from ..core.errors import RwguiError
from ..core.history import Key
from ..core.paths import default_output_name, extension_for_filter
from ..core.session import Session
from .files import FileState, image_filter
from .working import WorkingSize

__all__ = ["DocumentHost", "WindowIO"]


class DocumentHost(Protocol):
    """What the dialogs act on: the window's public methods that change the document."""

    def open_file(self, path: str | Path) -> bool: ...
    def open_ground_truth(self, path: str | Path) -> bool: ...
    def open_no_flash(self, path: str | Path) -> bool: ...
    def set_classifier_weights(self, path: str | Path) -> None: ...
    def load_mask(self, path: str | Path) -> bool: ...
    def save_mask(self, path: str | Path) -> bool: ...
    def show_error(self, text: str, title: str = "rwgui") -> None: ...
    def current_settings(self) -> RunConfig: ...
    def apply_settings(self, cfg: RunConfig) -> bool: ...


class WindowIO:
    """Export, file dialogs and recent files for one window."""

    def __init__(
        self,
        session: Session,
        host: DocumentHost,
        parent: QWidget,
        files: FileState,
        working: WorkingSize,
        status_bar: QStatusBar,
    ) -> None:
        self.session = session
        self.host = host
        self.parent = parent
        self.files = files
        self.working = working
        self.status_bar = status_bar

    # ----- export -------------------------------------------------------------------------------------
    def save_result(self, path: str | Path, key: Key | None = None) -> bool:
        """Write the result (or ``key``) at the photo's bit depth, with its alpha; a run on a crop is pasted
        back into the full photo (see :meth:`~rwgui.core.session.Session.result_pixels`)."""
        s = self.session
        key = s.history.result_key() if key is None else key
        if key is None or s.photo is None:
            self.host.show_error("Nothing to save yet: press Start and let the network fit for a while.")
            return False
        pixels = s.result_pixels(key)
        assert pixels is not None
        try:
            imageio.write_result(path, pixels, s.photo.meta, s.photo.alpha)
        except (RwguiError, ValueError) as exc:
            self.host.show_error(str(exc), "Cannot save the result")
            return False
        if key == s.history.result_key():
            s.mark_saved()  # the result is on disk: quitting or a new photo need not ask about it
        how = [f"{pixels.shape[1]}×{pixels.shape[0]}"] if self.working.note() else []
        if (written := s.result_description()) is not None:  # inpainting: were the known pixels kept?
            how.append(written)
        note = f" ({'; '.join(how)})" if how else ""
        self.status_bar.showMessage(f"Saved {s.history.label(key)} to {path}{note}", 8000)
        return True

    def export_curves(self, path: str | Path) -> bool:
        try:
            self.session.curves.to_csv(path)
        except OSError as exc:
            self.host.show_error(f"Cannot write '{path}': {exc.strerror or exc}", "Cannot export the curves")
            return False
        return True

    def export_settings(self, path: str | Path) -> bool:
        """The settings that made the result (or the current ones before any run) as JSON for
        `rwgui-restore --config`."""
        try:
            cfg = self.session.run_config or self.host.current_settings()
            cfg.save(path)
        except RwguiError as exc:
            self.host.show_error(str(exc), "Cannot export the settings")
            return False
        except OSError as exc:
            self.host.show_error(f"Cannot write '{path}': {exc.strerror or exc}", "Cannot export the settings")
            return False
        return True

    def import_settings(self, path: str | Path) -> bool:
        """Settings from a JSON file (Export settings' or ``--save-config``'s) into the settings panel. A file
        that is not valid settings, whatever it holds, is a dialog with the one-line reason and its key path
        (the CLI's message for ``--config``), and the current settings stay as they were."""
        try:
            cfg = RunConfig.load(path)
        except RwguiError as exc:
            self.host.show_error(str(exc), "Cannot import the settings")
            return False
        if not self.host.apply_settings(cfg):
            return False
        self.status_bar.showMessage(f"Settings imported from {path}", 5000)
        return True

    # ----- dialogs (thin: each calls one of the methods above, or the host's) -------------------------
    def _ask(self, save: bool, title: str, filt: str, suffix: str = "") -> str | None:
        folder = self.files.last_folder()
        if save:
            # the filter shown first matches the offered name, and the name gets the chosen filter's extension
            ext = Path(suffix).suffix.lower()
            offered = next((f for f in filt.split(";;") if ext and f"*{ext}" in f), "")
            path, chosen = QFileDialog.getSaveFileName(self.parent, title, str(Path(folder) / suffix), filt, offered)
            if path:
                path = str(extension_for_filter(path, chosen or offered))
        else:
            path, _ = QFileDialog.getOpenFileName(self.parent, title, folder, filt)
        if path:
            self.files.set_last_folder(str(Path(path).parent))
        return path or None

    def ask_open(self) -> None:
        if path := self._ask(False, "Open a photo", image_filter()):
            self.host.open_file(path)

    def ask_open_ground_truth(self) -> None:
        if path := self._ask(False, "Open the undamaged photo", image_filter()):
            self.host.open_ground_truth(path)

    def ask_open_no_flash(self) -> None:
        if path := self._ask(False, "Open the no-flash photo (same scene, same size)", image_filter()):
            self.host.open_no_flash(path)

    def ask_classifier_weights(self) -> None:
        title = "Classifier weights (torchvision AlexNet or VGG state dict)"
        if path := self._ask(False, title, "Weights (*.pth *.pt)"):
            self.host.set_classifier_weights(path)

    def ask_load_mask(self) -> None:
        if path := self._ask(False, "Load a mask (white = keep, black = hole)", "Mask (*.png)"):
            self.host.load_mask(path)

    def ask_save_mask(self) -> None:
        if path := self._ask(True, "Save the mask", "PNG (*.png)", "mask.png"):
            self.host.save_mask(path)

    def ask_save_result(self) -> None:
        photo = self.session.photo
        name = default_output_name(photo.path if photo else None, keep_format=True)
        if path := self._ask(True, "Save the result", "PNG (*.png);;TIFF (*.tif *.tiff);;JPEG (*.jpg *.jpeg)", name):
            self.save_result(path)

    def ask_export_curves(self) -> None:
        if path := self._ask(True, "Export the curves", "CSV (*.csv)", "curves.csv"):
            self.export_curves(path)

    def ask_import_settings(self) -> None:
        if path := self._ask(False, "Import settings", "JSON (*.json);;All files (*)"):
            self.import_settings(path)

    def ask_export_settings(self) -> None:
        if path := self._ask(True, "Export the settings", "JSON (*.json)", "settings.json"):
            self.export_settings(path)

    def fill_recent(self, menu: QMenu) -> None:
        menu.clear()
        for path in self.files.recent():
            menu.addAction(path, functools.partial(self.host.open_file, path))
        menu.setEnabled(bool(self.files.recent()))
