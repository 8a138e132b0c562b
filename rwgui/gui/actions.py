"""Menus, toolbars and their actions for the main window, built in one place so the window stays wiring.

Every action calls a method of the window; the window enables and hides them from its state (``update_actions``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QLabel, QSlider, QSpinBox, QStyle, QToolBar, QWidget

from ..core.samples import SAMPLES
from .help import build_help_menu

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["build_actions"]


def _action(
    win: MainWindow,
    text: str,
    slot: Callable | None = None,
    shortcut=None,
    tip: str = "",
    icon: QStyle.StandardPixmap | None = None,
    checkable: bool = False,
) -> QAction:
    a = QAction(text, win)
    if icon is not None:
        a.setIcon(win.style().standardIcon(icon))
    if shortcut is not None:
        a.setShortcut(QKeySequence(shortcut))
    if tip:
        a.setToolTip(tip)
        a.setStatusTip(tip)
    a.setCheckable(checkable)
    if slot is not None:
        (a.toggled if checkable else a.triggered).connect(slot)
    return a


def _slider(parent: QWidget, lo: int, hi: int, value: int, tip: str, width: int = 110) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal, parent)
    s.setRange(lo, hi)
    s.setValue(value)
    s.setFixedWidth(width)
    s.setToolTip(tip)
    return s


def build_actions(win: MainWindow) -> SimpleNamespace:
    """Create the actions, the File/Edit/View menus, the main toolbar and the mask toolbar."""
    SP = QStyle.StandardPixmap
    K = QKeySequence.StandardKey
    a = SimpleNamespace()
    a.open = _action(win, "&Open photo…", win.io.ask_open, K.Open, "Open a damaged photo", SP.SP_DialogOpenButton)
    a.open_gt = _action(
        win,
        "Open &ground truth…",
        win.io.ask_open_ground_truth,
        tip="Optional: the undamaged photo, to plot PSNR while the network fits",
    )
    a.load_mask = _action(win, "&Load mask…", win.io.ask_load_mask, tip="Load a mask PNG (white = keep, black = hole)")
    a.open_no_flash = _action(
        win, "&No-flash photo…", win.io.ask_open_no_flash, tip="Flash / no-flash: the photo taken without the flash"
    )
    a.classifier_weights = _action(
        win, "Classifier &weights…", win.io.ask_classifier_weights, tip="Pre-image: an AlexNet or VGG state dict"
    )
    a.save = _action(
        win,
        "&Save result…",
        win.io.ask_save_result,
        K.Save,
        "Save the chosen iterate (PNG/TIFF/JPEG, 16-bit when the photo was)",
        SP.SP_DialogSaveButton,
    )
    a.save_mask = _action(win, "Save &mask…", win.io.ask_save_mask, tip="Save the painted mask as a PNG")
    a.export_csv = _action(win, "Export &curves CSV…", win.io.ask_export_curves)
    a.export_json = _action(
        win,
        "Export &settings JSON…",
        win.io.ask_export_settings,
        tip="Settings that `rwgui-restore --config FILE` reproduces",
    )
    a.import_json = _action(
        win,
        "&Import settings JSON…",
        win.io.ask_import_settings,
        tip="Settings exported by the studio or `rwgui-restore --save-config` (a bad file changes nothing)",
    )
    a.save_session = _action(
        win,
        "Save sessi&on…",
        win.sessions.ask_save_session,
        "Ctrl+Shift+S",
        "Save everything: photo, mask, settings, kept iterates and pins, curves, the Lab's results (.rwgui)",
    )
    a.open_session = _action(
        win,
        "Open sess&ion…",
        win.sessions.ask_open_session,
        "Ctrl+Shift+O",
        "Open a saved session (.rwgui) as it was saved",
    )
    a.quit = _action(win, "&Quit", win.close, K.Quit)
    a.start = _action(
        win, "Start", win.start, "Ctrl+Return", "Start fitting the network to this photo", SP.SP_MediaPlay
    )
    a.pause = _action(win, "Pause", win.toggle_pause, "Ctrl+Shift+P", "Pause or resume the run", SP.SP_MediaPause)
    a.stop = _action(win, "Stop", win.stop, "Esc", "Stop the run; everything found so far is kept", SP.SP_MediaStop)
    a.undo = _action(win, "&Undo stroke", win.mask_undo, K.Undo)
    a.redo = _action(win, "&Redo stroke", win.mask_redo, "Ctrl+Shift+Z")
    a.clear_mask = _action(win, "&Clear mask", win.mask_clear, tip="Mark every pixel as good (no holes)")
    a.invert_mask = _action(win, "&Invert mask", win.mask_invert, tip="Swap holes and good pixels")
    a.fit = _action(win, "&Fit", win.view_fit, "Ctrl+0", "Show the whole photo")
    a.one = _action(win, "&1:1", win.view_one_to_one, "Ctrl+1", "One photo pixel per screen pixel")
    a.compare = _action(
        win,
        "&Compare before/after",
        win.set_compare,
        "C",
        "Split view: the damaged photo left of the line, the restoration right of it",
        checkable=True,
    )
    a.live_average = _action(
        win,
        "Show running &average live",
        win.set_live_average,
        checkable=True,
        tip="Live view shows the smoothed running average instead of the raw iterate",
    )
    a.brush = _action(win, "Brush", None, "B", "Paint holes: the areas to fill (red)", checkable=True)
    a.eraser = _action(win, "Eraser", None, "E", "Erase holes: give pixels back", checkable=True)
    a.rect = _action(
        win, "Rectangle", None, "R", "Drag a rectangle of holes (Ctrl or Alt: give pixels back)", checkable=True
    )
    a.lasso = _action(
        win,
        "Lasso",
        None,
        "L",
        "Drag a free outline, or click the corners of a polygon and double-click to close it; its inside becomes "
        "holes (Ctrl or Alt: give pixels back)",
        checkable=True,
    )
    a.pan = _action(win, "Pan", None, "H", "Move and zoom without painting", checkable=True)
    group = QActionGroup(win)
    a.mask_tools = {"brush": a.brush, "eraser": a.eraser, "rect": a.rect, "lasso": a.lasso, "none": a.pan}
    for tool, act in a.mask_tools.items():
        group.addAction(act)
        act.triggered.connect(lambda _=False, t=tool: win.set_mask_tool(t))
    a.brush.setChecked(True)
    a.subtract = _action(
        win,
        "Subtract",
        lambda on: setattr(win.photo_view, "subtract", on),
        "X",
        "Rectangles and lassos give pixels back instead of adding holes",
        checkable=True,
    )
    a.grow = _action(win, "Grow", lambda: win.photo_view.grow(a.amount.value()), "G", "Grow the holes by N pixels")
    a.shrink = _action(
        win, "Shrink", lambda: win.photo_view.grow(-a.amount.value()), "Shift+G", "Shrink the holes by N pixels"
    )
    a.feather = _action(
        win,
        "Feather",
        lambda: win.photo_view.feather(a.amount.value()),
        "F",
        "Soften the holes' edges over N pixels. The network still fills exactly the pixels that are holes now; "
        "the result blends its fill into the photo over the soft edge's outer half (with 'keep known pixels' on)",
    )

    # ----- menus -------------------------------------------------------------------------------------
    mb = win.menuBar()
    file = mb.addMenu("&File")
    file.addAction(a.open)
    file.addAction(a.open_session)
    a.recent_menu = file.addMenu("Open &Recent")
    samples = file.addMenu("Open sa&mple")
    for name in SAMPLES:
        samples.addAction(name.capitalize(), functools.partial(win.open_sample, name))
    file.addAction(a.open_gt)
    file.addAction(a.open_no_flash)
    file.addAction(a.classifier_weights)
    file.addAction(a.load_mask)
    file.addAction(a.import_json)
    file.addSeparator()
    for act in (a.save, a.save_session, a.save_mask, a.export_csv, a.export_json):
        file.addAction(act)
    file.addSeparator()
    file.addAction(a.quit)
    edit = mb.addMenu("&Edit")
    for act in (a.undo, a.redo, a.clear_mask, a.invert_mask):
        edit.addAction(act)
    edit.addSeparator()
    for act in (a.brush, a.eraser, a.rect, a.lasso, a.pan, a.subtract, a.grow, a.shrink, a.feather):
        edit.addAction(act)
    run = mb.addMenu("&Run")
    for act in (a.start, a.pause, a.stop):
        run.addAction(act)
    view = mb.addMenu("&View")
    for act in (a.fit, a.one, a.compare, a.live_average):
        view.addAction(act)
    a.view_menu = view
    a.help_menu = build_help_menu(win)

    # ----- toolbars ----------------------------------------------------------------------------------
    tb = QToolBar("Main", win)
    tb.setObjectName("main_toolbar")
    tb.setIconSize(QSize(20, 20))
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for act in (a.open, a.start, a.pause, a.stop, a.save):
        tb.addAction(act)
    tb.addSeparator()
    for act in (a.compare, a.fit, a.one):
        tb.addAction(act)
    win.addToolBar(tb)
    a.main_toolbar = tb

    mt = QToolBar("Mask", win)
    mt.setObjectName("mask_toolbar")
    mt.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    mt.addWidget(QLabel(" Mask: ", mt))
    # first on the bar, so that it is never in the overflow menu: "mask changed — applies to the next run"
    a.mask_note = QLabel("", mt)
    a.mask_note.setObjectName("mask_note")
    a.mask_note.setStyleSheet("color: #1a1a1a; background: #ffc400; padding: 2px 8px; border-radius: 3px;")
    a.mask_note.setToolTip("A run keeps the mask it started with; Start again to use the mask as painted now")
    a.mask_note_action = mt.addWidget(a.mask_note)
    a.mask_note_action.setVisible(False)
    for act in (a.brush, a.eraser, a.rect, a.lasso, a.pan, a.subtract):
        mt.addAction(act)
    mt.addWidget(QLabel("  Size ", mt))
    a.size_slider = _slider(mt, 1, 200, 24, "Brush diameter in photo pixels ([ and ] change it)", width=90)
    mt.addWidget(a.size_slider)
    mt.addWidget(QLabel("  Hardness ", mt))
    a.hardness_slider = _slider(
        mt,
        0,
        100,
        100,
        "Brush edge: 100 = hard, 0 = soft ({ and } change it). The brush fills the pixels inside its circle "
        "either way; a soft edge is how the result blends into the photo",
        width=70,
    )
    mt.addWidget(a.hardness_slider)
    mt.addSeparator()
    for act in (a.grow, a.shrink, a.feather):
        mt.addAction(act)
    a.amount = QSpinBox(mt)
    a.amount.setRange(1, 200)
    a.amount.setValue(4)
    a.amount.setSuffix(" px")
    a.amount.setToolTip("N: pixels to grow, shrink or feather by")
    mt.addWidget(a.amount)
    mt.addWidget(QLabel("  Opacity ", mt))
    a.opacity_slider = _slider(mt, 0, 100, 50, "How strongly the holes are tinted red", width=80)
    mt.addWidget(a.opacity_slider)
    mt.addSeparator()
    a.undo_tb = _action(win, "Undo", win.mask_undo, tip="Undo the last stroke (Ctrl+Z)")
    a.redo_tb = _action(win, "Redo", win.mask_redo, tip="Redo (Ctrl+Shift+Z)")
    for act in (a.undo_tb, a.redo_tb, a.clear_mask, a.invert_mask, a.load_mask, a.save_mask):
        mt.addAction(act)
    win.addToolBarBreak()
    win.addToolBar(mt)
    a.mask_toolbar = mt
    return a
