"""Small studio fixes: one rule for default result names (CLI and studio), and the wheel over the settings panel
scrolls it instead of changing the spin box or combo under the pointer."""

from __future__ import annotations

import argparse

import pytest

from rwgui.core.paths import default_output_name, extension_for_filter

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.mark.parametrize(
    ("given", "keep", "expected"),
    [
        ("photos/scan.jpg", False, "scan_restored.png"),
        ("scan.tif", True, "scan_restored.tif"),
        ("scan.jpg", True, "scan_restored.png"),  # re-compressing a JPEG would lose what was restored
        ("scan16.png", True, "scan16_restored.png"),  # a 16-bit PNG stays a PNG
        ("scan_restored.png", True, "scan_restored.png"),  # never doubled
        ("scan-restored.tiff", True, "scan-restored.tiff"),
        (None, True, "restored.png"),  # the bundled sample has no file
    ],
)
def test_default_output_name(given, keep, expected):
    assert default_output_name(given, keep_format=keep) == expected


def test_the_name_takes_the_chosen_filters_extension():
    assert extension_for_filter("a.png", "TIFF (*.tif *.tiff)").name == "a.tif"
    assert extension_for_filter("a", "PNG (*.png)").name == "a.png"
    assert extension_for_filter("a.tiff", "TIFF (*.tif *.tiff)").name == "a.tiff"
    assert extension_for_filter("my.photo", "PNG (*.png)").name == "my.photo.png"


def test_cli_default_uses_the_rule(tmp_path):
    from rwgui.cli import check_destinations

    photo = tmp_path / "old_restored.png"
    photo.write_bytes(b"")
    args = argparse.Namespace(input=str(photo), output=None, overwrite=False, report=None, save_config=None)
    with pytest.raises(Exception, match="input"):  # the rule gives the input's own name: refused, not doubled
        check_destinations(args)
    photo2 = tmp_path / "scan.jpg"
    args.input = str(photo2)
    assert check_destinations(args) == str(tmp_path / "scan_restored.png")


def test_studio_offers_the_rules_name_under_the_matching_filter(window, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QFileDialog

    seen = {}

    def fake(parent, title, start, filt, selected=""):
        seen.update(start=start, selected=selected)
        return str(tmp_path / "picked"), "TIFF (*.tif *.tiff)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake)
    saved = []
    monkeypatch.setattr(window.io, "save_result", lambda path: saved.append(path))
    window.io.ask_save_result()
    assert seen["start"].endswith("restored.png") and "restored-restored" not in seen["start"]
    assert seen["selected"].startswith("PNG")
    assert saved == [str(tmp_path / "picked.tif")]  # no extension typed: the chosen filter's


def _wheel(widget, dy: int = -120) -> None:
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    pos = QPointF(widget.rect().center())
    ev = QWheelEvent(
        pos,
        QPointF(widget.mapToGlobal(pos.toPoint())),
        QPoint(0, 0),
        QPoint(0, dy),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, ev)


def test_wheel_over_an_unfocused_spin_box_scrolls_the_panel(qtbot, window):
    from PySide6.QtWidgets import QComboBox, QSpinBox

    panel = window.settings_panel
    window.resize(900, 420)  # short enough that the panel scrolls
    qtbot.waitUntil(lambda: panel.verticalScrollBar().maximum() > 0, timeout=3000)
    boxes = [w for w in panel.widget().findChildren(QSpinBox) if w.isVisible()]
    combos = [w for w in panel.widget().findChildren(QComboBox) if w.isVisible()]
    assert boxes and combos
    for w in (boxes[0], combos[0], panel.task_combo):
        window.photo_view.setFocus()
        value = w.value() if isinstance(w, QSpinBox) else w.currentIndex()
        before = panel.verticalScrollBar().value()
        _wheel(w)
        assert (w.value() if isinstance(w, QSpinBox) else w.currentIndex()) == value, w.objectName()
        assert panel.verticalScrollBar().value() > before  # the wheel went on to the panel
        panel.verticalScrollBar().setValue(0)
    box = boxes[0]
    box.setFocus()
    qtbot.waitUntil(box.hasFocus, timeout=1000)
    value = box.value()
    _wheel(box, dy=120)
    assert box.value() != value  # focused, the wheel changes it as ever


def test_ints_editor_is_as_tall_as_a_spin_box_and_shows_an_example(window):
    from PySide6.QtWidgets import QLineEdit, QSpinBox

    edit = window.settings_panel.widget().findChild(QLineEdit, "channels_down")
    assert edit is not None
    assert edit.minimumHeight() >= QSpinBox().sizeHint().height()
    assert "16, 32, 64" in edit.placeholderText()
