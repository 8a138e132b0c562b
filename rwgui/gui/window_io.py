"""The window's file side: save the result, export curves and settings, file dialogs, recent files, drops.

A mixin of :class:`~rwgui.gui.main_window.MainWindow` (kept apart so that the window module stays wiring).
Every dialog is thin: it asks for a path and calls a method that tests call directly.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from ..core import imageio
from ..core.errors import RwguiError
from .document import result_alpha
from .files import image_filter, paths_from_mime

__all__ = ["WindowIO"]


class WindowIO:
    """Export, dialogs, recent files and drag and drop for the main window."""

    # ----- export -------------------------------------------------------------------------------------
    def save_result(self, path: str | Path, key=None) -> bool:
        """Write the result (or ``key``) at the photo's bit depth, with its alpha; a run on a crop is pasted
        back into the full photo (see :meth:`~rwgui.gui.working.WorkingSize.export_pixels`)."""
        key = self.history.result_key() if key is None else key
        if key is None or self.photo is None:
            self.show_error("Nothing to save yet: press Start and let the network fit for a while.")
            return False
        pixels = self.export_pixels(key)
        try:
            imageio.write_like(path, pixels, self.photo.meta, result_alpha(self.photo, pixels.shape[:2]))
        except (RwguiError, ValueError) as exc:
            self.show_error(str(exc), "Cannot save the result")
            return False
        how = f" ({pixels.shape[1]}×{pixels.shape[0]})" if self.working_note() else ""
        self.statusBar().showMessage(f"Saved {self.history.label(key)} to {path}{how}", 8000)
        return True

    def export_curves(self, path: str | Path) -> bool:
        try:
            self.curves.data.to_csv(path)
        except OSError as exc:
            self.show_error(f"Cannot write '{path}': {exc.strerror or exc}", "Cannot export the curves")
            return False
        return True

    def export_settings(self, path: str | Path) -> bool:
        """The last run's settings (or the current ones before any run) as JSON for `rwgui-restore --config`."""
        try:
            cfg = self.run_config or self.settings_panel.config()
            cfg.save(path)
        except RwguiError as exc:
            self.show_error(str(exc), "Cannot export the settings")
            return False
        except OSError as exc:
            self.show_error(f"Cannot write '{path}': {exc.strerror or exc}", "Cannot export the settings")
            return False
        return True

    # ----- dialogs (thin: each calls one of the methods above) -----------------------------------------
    def _ask(self, save: bool, title: str, filt: str, suffix: str = "") -> str | None:
        folder = self.files.last_folder()
        if save:
            path, _ = QFileDialog.getSaveFileName(self, title, str(Path(folder) / suffix), filt)
        else:
            path, _ = QFileDialog.getOpenFileName(self, title, folder, filt)
        if path:
            self.files.set_last_folder(str(Path(path).parent))
        return path or None

    def ask_open(self) -> None:
        if path := self._ask(False, "Open a photo", image_filter()):
            self.open_file(path)

    def ask_open_ground_truth(self) -> None:
        if path := self._ask(False, "Open the undamaged photo", image_filter()):
            self.open_ground_truth(path)

    def ask_load_mask(self) -> None:
        if path := self._ask(False, "Load a mask (white = keep, black = hole)", "Mask (*.png)"):
            self.load_mask(path)

    def ask_save_mask(self) -> None:
        if path := self._ask(True, "Save the mask", "PNG (*.png)", "mask.png"):
            self.save_mask(path)

    def ask_save_result(self) -> None:
        stem = Path(self.photo.path).stem if self.photo and self.photo.path else "restored"
        ext = "tif" if self.photo and self.photo.meta.bit_depth == 16 else "png"
        if path := self._ask(
            True, "Save the result", "PNG (*.png);;TIFF (*.tif *.tiff);;JPEG (*.jpg *.jpeg)", f"{stem}-restored.{ext}"
        ):
            self.save_result(path)

    def ask_export_curves(self) -> None:
        if path := self._ask(True, "Export the curves", "CSV (*.csv)", "curves.csv"):
            self.export_curves(path)

    def ask_export_settings(self) -> None:
        if path := self._ask(True, "Export the settings", "JSON (*.json)", "settings.json"):
            self.export_settings(path)

    def _fill_recent(self) -> None:
        menu = self.acts.recent_menu
        menu.clear()
        for path in self.files.recent():
            menu.addAction(path, lambda p=path: self.open_file(p))
        menu.setEnabled(bool(self.files.recent()))

    # ----- drag and drop ----------------------------------------------------------------------------
    def dragEnterEvent(self, ev) -> None:
        if paths_from_mime(ev.mimeData()):
            ev.acceptProposedAction()

    def dropEvent(self, ev) -> None:
        paths = paths_from_mime(ev.mimeData())
        if paths:
            ev.acceptProposedAction()
            self.open_file(paths[0])
