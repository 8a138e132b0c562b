"""GUI building blocks: image views, mask painting with undo, compare split, parameter forms (offscreen)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from rwgui.core.errors import ConfigError, MaskError
from rwgui.core.params import Param, Registry
from rwgui.gui.canvas import CompareView, ImagePane, MaskCanvas
from rwgui.gui.forms import ParamForm, VariantForm, human_label

H, W = 120, 160


def _photo(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    rgba = np.random.default_rng(seed).integers(0, 256, (h, w, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    return rgba


@pytest.fixture
def canvas(qtbot) -> MaskCanvas:
    c = MaskCanvas()
    qtbot.addWidget(c)
    c.resize(400, 300)
    c.set_photo(_photo())
    return c


def _holes(c: MaskCanvas) -> np.ndarray:
    return c.mask() == 0


# -- mask painting ---------------------------------------------------------------------------------
def test_stroke_paints_holes_along_path_only(canvas):
    canvas.brush_size = 9
    canvas.paint_stroke([(30, 60), (90, 60)])
    holes = _holes(canvas)
    assert holes[60, 30:91].all()
    assert holes[56:65, 50].all()
    ys, xs = np.nonzero(holes)
    assert ys.min() >= 60 - 5 and ys.max() <= 60 + 5
    assert xs.min() >= 30 - 5 and xs.max() <= 90 + 5
    m = canvas.mask()
    assert m.dtype == np.float32 and m.shape == (H, W) and set(np.unique(m)) == {0.0, 1.0}


def test_single_dab_is_a_disc_of_brush_diameter(canvas):
    canvas.brush_size = 21
    canvas.paint_stroke([(80, 60)])
    ys, xs = np.nonzero(_holes(canvas))
    assert 19 <= xs.max() - xs.min() + 1 <= 23
    assert 19 <= ys.max() - ys.min() + 1 <= 23
    assert not _holes(canvas)[50, 70]  # corner of the bounding square: outside the disc


def test_mask_is_a_copy(canvas):
    m = canvas.mask()
    m[:] = 0
    assert canvas.mask().min() == 1.0


def test_fast_stroke_has_no_gap(canvas):
    canvas.brush_size = 3
    canvas.paint_stroke([(2, 10), (157, 110)])  # two far-apart samples
    holes = _holes(canvas)
    for x in range(2, 158):
        y = 10 + (x - 2) * 100 / 155
        assert holes[int(round(y)) - 1 : int(round(y)) + 2, x].any(), x


def test_eraser_restores_known(canvas):
    canvas.brush_size = 15
    canvas.paint_stroke([(20, 20), (140, 20)])
    canvas.paint_stroke([(20, 20), (140, 20)], erase=True)
    assert _holes(canvas).sum() == 0


def test_undo_redo_restore_exact_masks(canvas, qtbot):
    m0 = canvas.mask()
    canvas.brush_size = 11
    canvas.paint_stroke([(10, 10), (100, 80), (150, 20)])
    m1 = canvas.mask()
    canvas.paint_stroke([(40, 100), (40, 10)], erase=True)
    m2 = canvas.mask()
    assert not np.array_equal(m1, m2)
    assert canvas.can_undo() and not canvas.can_redo()
    with qtbot.waitSignal(canvas.mask_changed):
        canvas.undo()
    assert np.array_equal(canvas.mask(), m1)
    canvas.undo()
    assert np.array_equal(canvas.mask(), m0)
    assert not canvas.can_undo() and canvas.can_redo()
    canvas.redo()
    assert np.array_equal(canvas.mask(), m1)
    canvas.redo()
    assert np.array_equal(canvas.mask(), m2)
    canvas.undo()
    canvas.paint_stroke([(5, 5)])  # a new edit drops the redo branch
    assert not canvas.can_redo()


def test_undo_stores_only_the_dirty_box(canvas):
    canvas.brush_size = 5
    canvas.paint_stroke([(100, 50), (110, 50)])
    assert 0 < canvas.editor.history_bytes() <= 20 * 12


def test_undo_history_capped_by_bytes(qtbot):
    c = MaskCanvas(undo_bytes=H * W)  # room for one full-image step
    qtbot.addWidget(c)
    c.set_photo(_photo())
    c.invert()
    c.invert()
    c.invert()
    assert c.editor.history_bytes() <= H * W
    c.undo()
    assert not c.can_undo()


def test_clear_and_invert_are_undoable(canvas):
    canvas.paint_stroke([(50, 50), (60, 70)])
    painted = canvas.mask()
    canvas.invert()
    assert np.array_equal(canvas.mask(), 1 - painted)
    canvas.clear()
    assert canvas.mask().min() == 1.0
    canvas.undo()
    assert np.array_equal(canvas.mask(), 1 - painted)
    canvas.undo()
    assert np.array_equal(canvas.mask(), painted)


def test_set_mask_checks_size_and_is_undoable(canvas, qtbot):
    before = canvas.mask()
    with pytest.raises(MaskError) as info:
        canvas.set_mask(np.ones((50, 70), np.float32))
    assert "70x50" in str(info.value) and f"{W}x{H}" in str(info.value)
    assert np.array_equal(canvas.mask(), before)
    new = np.ones((H, W), np.float32)
    new[10:30, 40:90] = 0
    with qtbot.waitSignal(canvas.mask_changed):
        canvas.set_mask(new)
    assert np.array_equal(canvas.mask(), new)
    canvas.undo()
    assert np.array_equal(canvas.mask(), before)


def test_set_photo_resets_mask_and_history(canvas):
    canvas.paint_stroke([(10, 10)])
    canvas.set_photo(_photo(60, 80))
    assert canvas.mask().shape == (60, 80) and canvas.mask().min() == 1.0
    assert not canvas.can_undo()


def test_mask_changed_emitted_once_per_stroke(canvas, qtbot):
    seen = []
    canvas.mask_changed.connect(lambda: seen.append(1))
    canvas.paint_stroke([(10, 10), (20, 20), (30, 30), (40, 40)])
    assert len(seen) == 1
    canvas.paint_stroke([(200, 200)])  # outside the photo: nothing changes, nothing emitted
    assert len(seen) == 1


def test_overlay_alpha_follows_opacity(canvas):
    canvas.overlay_opacity = 0.4
    canvas.paint_stroke([(80, 60)])
    ov = canvas.overlay()
    holes = _holes(canvas)
    assert (ov[..., 3][holes] == round(0.4 * 255)).all()
    assert (ov[..., 3][~holes] == 0).all()
    canvas.overlay_opacity = 1.0
    assert (canvas.overlay()[..., 3][holes] == 255).all()
    assert ov[holes][:, 0].min() > 200  # red


def test_bracket_keys_change_brush_size(canvas, qtbot):
    canvas.brush_size = 20
    qtbot.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert canvas.brush_size > 20
    size = canvas.brush_size
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size < size
    canvas.brush_size = 1
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size == 1
    canvas.brush_size = 10_000
    assert canvas.brush_size == 512


def test_ctrl_z_undoes_and_ctrl_shift_z_redoes(canvas, qtbot):
    canvas.paint_stroke([(30, 30)])
    painted = canvas.mask()
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert canvas.mask().min() == 1.0
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(canvas.mask(), painted)


def _send_mouse(widget, kind, pos: QPointF, button, buttons) -> None:
    ev = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, ev)


def test_real_mouse_events_paint_and_do_not_pan(canvas, qtbot):
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.fit()
    QApplication.processEvents()
    canvas.set_tool("brush")
    canvas.brush_size = 7
    view_before = canvas.vb.viewRect()
    vp = canvas.viewport()
    a, b = canvas.view_to_widget(30.5, 40.5), canvas.view_to_widget(120.5, 40.5)
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    _send_mouse(vp, QMouseEvent.Type.MouseButtonPress, a, left, left)
    for t in np.linspace(0, 1, 4)[1:]:
        _send_mouse(vp, QMouseEvent.Type.MouseMove, a + (b - a) * t, none, left)
    _send_mouse(vp, QMouseEvent.Type.MouseButtonRelease, b, left, none)
    holes = _holes(canvas)
    assert holes[40, 32:119].all()
    assert holes.sum() < 7 * 110
    assert canvas.vb.viewRect() == view_before  # the drag painted instead of panning
    assert canvas.can_undo()
    canvas.undo()
    assert holes.sum() > 0 and _holes(canvas).sum() == 0
    # the eraser, driven through pytest-qt's own helpers
    canvas.paint_stroke([(60, 60)])
    canvas.set_tool("eraser")
    p = canvas.view_to_widget(60.5, 60.5).toPoint()
    qtbot.mousePress(vp, left, pos=p)
    qtbot.mouseRelease(vp, left, pos=p)
    assert _holes(canvas).sum() == 0


def test_right_drag_pans_while_painting_and_cursor_follows(canvas, qtbot):
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_tool("brush")
    canvas.brush_size = 30
    vp, right, none = canvas.viewport(), Qt.MouseButton.RightButton, Qt.MouseButton.NoButton
    a = canvas.view_to_widget(80, 60)
    _send_mouse(vp, QMouseEvent.Type.MouseMove, a, none, none)  # hover
    ring = canvas._cursor[1]
    assert ring.isVisible() and ring.rect().center() == QPointF(80, 60) and ring.rect().width() == 30
    x0 = canvas.vb.viewRange()[0][0]
    _send_mouse(vp, QMouseEvent.Type.MouseButtonPress, a, right, right)
    _send_mouse(vp, QMouseEvent.Type.MouseMove, a + QPointF(40, 0), none, right)
    _send_mouse(vp, QMouseEvent.Type.MouseButtonRelease, a + QPointF(40, 0), right, none)
    assert canvas.vb.viewRange()[0][0] < x0 - 1  # content followed the mouse to the right
    assert _holes(canvas).sum() == 0


def test_tool_none_does_not_paint(canvas, qtbot):
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_tool("none")
    p, left = canvas.view_to_widget(60.5, 60.5), Qt.MouseButton.LeftButton
    _send_mouse(canvas.viewport(), QMouseEvent.Type.MouseButtonPress, p, left, left)
    _send_mouse(canvas.viewport(), QMouseEvent.Type.MouseButtonRelease, p, left, Qt.MouseButton.NoButton)
    assert _holes(canvas).sum() == 0
    with pytest.raises(ValueError):
        canvas.set_tool("pencil")


# -- views -----------------------------------------------------------------------------------------
def test_image_view_keeps_buffer_and_titles(qtbot):
    v = ImagePane()
    qtbot.addWidget(v)
    img = _photo()
    v.set_image(img[..., :3])  # RGB is widened to RGBA
    assert v.image().shape == (H, W, 4) and v.image().flags.c_contiguous
    assert np.array_equal(v.image()[..., :3], img[..., :3])
    v.set_title("Damaged photo")
    assert v.title() == "Damaged photo"


def test_one_to_one_maps_one_pixel_to_one_screen_pixel(qtbot):
    v = ImagePane()
    qtbot.addWidget(v)
    v.resize(300, 200)
    v.show()
    qtbot.waitExposed(v)
    v.set_image(_photo(400, 600))
    v.one_to_one()
    QApplication.processEvents()
    a, b = v.view_to_widget(100, 100), v.view_to_widget(200, 100)
    assert b.x() - a.x() == pytest.approx(100, abs=1)


def test_linked_views_share_range(qtbot):
    a, b = ImagePane(), ImagePane()
    for v in (a, b):
        qtbot.addWidget(v)
        v.resize(300, 200)
        v.set_image(_photo())
        v.show()
    qtbot.waitExposed(b)
    a.link(b)
    a.vb.setRange(QRectF(10, 20, 40, 30), padding=0)
    QApplication.processEvents()
    ra, rb = a.vb.viewRange(), b.vb.viewRange()
    assert np.allclose(ra, rb, atol=1e-6)
    b.vb.scaleBy((0.5, 0.5))  # and the other way round
    QApplication.processEvents()
    assert np.allclose(a.vb.viewRange(), b.vb.viewRange(), atol=1e-6)


def test_compare_view_split(qtbot):
    cv = CompareView()
    qtbot.addWidget(cv)
    before = np.zeros((H, W, 4), np.uint8)
    before[..., 3] = 255
    after = np.full((H, W, 4), 255, np.uint8)
    cv.set_images(before, after)
    cv.set_split(0.25)
    assert cv.split() == 0.25
    comp = cv.composite()
    assert (comp[:, :40, 0] == 0).all() and (comp[:, 40:, 0] == 255).all()
    cv.set_split(1.0)
    assert (cv.composite()[..., 0] == 0).all()
    cv._line.setValue(W * 0.75)  # what dragging the line does
    assert cv.split() == pytest.approx(0.75)
    assert (cv.composite()[:, :120, 0] == 0).all() and (cv.composite()[:, 120:, 0] == 255).all()


def test_compare_view_renders_before_left_after_right(qtbot):
    cv = CompareView()
    qtbot.addWidget(cv)
    cv.resize(320, 240)
    cv.show()
    qtbot.waitExposed(cv)
    before = np.zeros((H, W, 4), np.uint8)
    before[..., 2] = before[..., 3] = 255  # blue
    after = np.zeros((H, W, 4), np.uint8)
    after[..., 0] = after[..., 3] = 255  # red
    cv.set_images(before[::2, ::2].copy(), after)  # a smaller before is stretched over after
    cv.set_split(0.5)
    QApplication.processEvents()
    img = cv.grab().toImage()
    left, right = cv.view_to_widget(W * 0.25, H / 2).toPoint(), cv.view_to_widget(W * 0.75, H / 2).toPoint()
    assert img.pixelColor(left).blue() > 200 and img.pixelColor(left).red() < 50
    assert img.pixelColor(right).red() > 200 and img.pixelColor(right).blue() < 50


# -- forms -----------------------------------------------------------------------------------------
PARAMS = (
    Param("num_scales", "int", 5, "Levels.", 1, 7),
    Param("lr", "float", 0.01, "Learning rate.", 1e-6, 1.0, log=True),
    Param("reg_noise_std", "float", 1 / 30, "Noise.", 0.0, 1.0),
    Param("batch_norm", "bool", True, "BN."),
    Param("upsample", "choice", "bilinear", "How.", choices=("bilinear", "nearest")),
    Param("channels_down", "ints", (128,), "Channels.", 1, 512),
    Param("name", "str", "x", "A name."),
    Param("extra_a", "int", 1, "Folded.", 0, 9),
    Param("extra_b", "int", 2, "Folded.", 0, 9),
)


def test_param_form_round_trip_every_kind(qtbot):
    form = ParamForm(PARAMS)
    qtbot.addWidget(form)
    assert form.values() == {p.name: p.default for p in PARAMS}  # 1/30 survives exactly
    new = {
        "num_scales": 3,
        "lr": 2.5e-4,
        "reg_noise_std": 0.05,
        "batch_norm": False,
        "upsample": "nearest",
        "channels_down": (16, 32, 64),
        "name": "abc",
        "extra_a": 7,
        "extra_b": 0,
    }
    with qtbot.waitSignal(form.changed) as blocker:
        form.set_values(new)
    assert blocker.signal_triggered
    assert form.values() == new
    form.reset()
    assert form.values() == {p.name: p.default for p in PARAMS}


def test_param_form_number_with_choices_is_a_combo_of_them(qtbot):
    from PySide6.QtWidgets import QComboBox

    from rwgui.core.vocabulary import Task

    params = (
        Param("factor", "int", 4, "Scale.", choices=(2, 4, 8)),
        Param("task", "choice", Task.DENOISE, "Task.", choices=tuple(Task)),
    )
    form = ParamForm(params)
    qtbot.addWidget(form)
    combo = form.editor("factor")
    assert isinstance(combo, QComboBox) and [combo.itemText(i) for i in range(combo.count())] == ["2", "4", "8"]
    assert form.values() == {"factor": 4, "task": Task.DENOISE}
    form.set_values({"factor": 8, "task": "sr"})
    values = form.values()
    assert values["factor"] == 8 and type(values["factor"]) is int and values["task"] is Task.SR
    with pytest.raises(ConfigError, match="2, 4, 8"):
        form.set_values({"factor": 3})


def test_param_form_set_values_emits_once_and_checks_first(qtbot):
    form = ParamForm(PARAMS)
    qtbot.addWidget(form)
    seen = []
    form.changed.connect(lambda: seen.append(1))
    form.set_values({"num_scales": 2, "batch_norm": False, "channels_down": "8,8", "not_a_param": 1})
    assert seen == [1]
    with pytest.raises(ConfigError):
        form.set_values({"num_scales": 4, "upsample": "cubic"})
    assert form.values()["num_scales"] == 2  # nothing applied


def test_param_form_invalid_ints_raise_and_mark(qtbot):
    form = ParamForm(PARAMS)
    qtbot.addWidget(form)
    edit = form.editor("channels_down")
    edit.clear()
    qtbot.keyClicks(edit, "64, abc")
    assert form.is_invalid("channels_down")
    with pytest.raises(ConfigError, match="channels_down"):
        form.values()
    edit.clear()
    qtbot.keyClicks(edit, "64, 32")
    assert not form.is_invalid("channels_down")
    assert form.values()["channels_down"] == (64, 32)


def test_param_form_editor_edits_emit_changed(qtbot):
    form = ParamForm(PARAMS)
    qtbot.addWidget(form)
    with qtbot.waitSignal(form.changed):
        form.editor("num_scales").setValue(6)
    with qtbot.waitSignal(form.changed):
        form.editor("batch_norm").setChecked(False)
    assert form.values()["num_scales"] == 6 and form.values()["batch_norm"] is False


def test_float_editor_accepts_scientific_text_and_steps_log_params(qtbot):
    form = ParamForm(PARAMS)
    qtbot.addWidget(form)
    lr = form.editor("lr")
    lr.lineEdit().selectAll()
    qtbot.keyClicks(lr.lineEdit(), "2.5e-4")
    lr.interpretText()
    assert form.values()["lr"] == pytest.approx(2.5e-4)
    lr.setValue(0.01)
    lr.stepBy(1)
    assert form.values()["lr"] == pytest.approx(0.02)
    lr.stepBy(2)
    assert form.values()["lr"] == pytest.approx(0.1)
    lr.stepBy(-3)
    assert form.values()["lr"] == pytest.approx(0.01)


def test_param_form_labels_tooltips_and_folding(qtbot):
    form = ParamForm(PARAMS)
    qtbot.addWidget(form)
    assert human_label("channels_down") == "Channels down" and human_label("lr") == "LR"
    assert form.editor("lr").toolTip() == "Learning rate."
    assert form.editor("num_scales").isVisibleTo(form)
    assert not form.editor("extra_b").isVisibleTo(form) and not form.expanded()
    form.set_expanded(True)
    assert form.editor("extra_b").isVisibleTo(form)


def _registry() -> Registry:
    reg: Registry = Registry("loss prior")
    reg.add(
        "alpha",
        "First variant.",
        [Param("weight", "float", 0.1, "W.", 0.0, 10.0, log=True), Param("depth", "int", 3, "D.", 1, 9)],
    )(dict)
    reg.add("beta", "Second variant.", [Param("width", "int", 16, "Wd.", 1, 64)])(dict)
    return reg


def test_variant_form_keeps_edits_and_resolves(qtbot):
    form = VariantForm(_registry(), "Loss prior", allow_none=True)
    qtbot.addWidget(form)
    assert form.variant() == ("none", {})
    assert [form.combo().itemText(i) for i in range(3)] == ["none", "alpha", "beta"]
    assert form.combo().itemData(1, Qt.ItemDataRole.ToolTipRole) == "First variant."
    with qtbot.waitSignal(form.changed):
        form.combo().setCurrentText("alpha")
    form.current_form().editor("depth").setValue(7)
    assert form.variant() == ("alpha", {"weight": 0.1, "depth": 7})
    form.combo().setCurrentText("beta")
    assert form.variant() == ("beta", {"width": 16})
    form.combo().setCurrentText("alpha")
    assert form.variant() == ("alpha", {"weight": 0.1, "depth": 7})  # kept while switching
    form.set_variant("beta", {"width": 32})
    assert form.variant() == ("beta", {"width": 32})
    form.set_variant("alpha")
    assert form.variant() == ("alpha", {"weight": 0.1, "depth": 3})
    with pytest.raises(ConfigError):
        form.set_variant("gamma")
    with pytest.raises(ConfigError):
        form.set_variant("beta", {"width": 1000})
    assert form.variant()[0] == "alpha"
    form.set_variant("beta", {"width": 8})
    form.reset()
    assert form.variant() == ("beta", {"width": 16})


def test_variant_form_on_real_registries(qtbot):
    from rwgui.core.lossprior import LOSS_PRIORS
    from rwgui.core.priors import PRIORS

    form = VariantForm(PRIORS, "Prior")
    qtbot.addWidget(form)
    name, params = form.variant()
    assert params == PRIORS.get(name).resolve({})
    lp = VariantForm(LOSS_PRIORS, "Loss prior", allow_none=True)
    qtbot.addWidget(lp)
    lp.set_variant("cdc", {"weight": 0.5})
    assert lp.variant() == ("cdc", LOSS_PRIORS.get("cdc").resolve({"weight": 0.5}))
