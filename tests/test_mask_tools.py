"""Mask tools: rectangle, polygon/lasso, grow/shrink, feather and brush hardness give the right pixels, are one undo
step each, keep the engine's binary holes where they promise to, and have shortcuts in the real window."""

from __future__ import annotations

import numpy as np
import pytest

from rwgui.core import mask_ops
from rwgui.core.mask_ops import HALF, HOLE
from rwgui.gui.mask_editor import MaskEditor


def _editor(h: int = 40, w: int = 50) -> MaskEditor:
    e = MaskEditor()
    e.reset((h, w))
    return e


def _holes(e: MaskEditor) -> np.ndarray:
    m = e.mask()
    assert m is not None
    return m < 0.5


def test_rectangle_is_its_exact_box_and_subtract_removes():
    e = _editor()
    e.fill_rect(7.0, 9.0, 2.0, 3.0)  # corners in any order
    expected = np.zeros((40, 50), bool)
    expected[3:9, 2:7] = True
    assert np.array_equal(_holes(e), expected)
    e.fill_rect(4.0, 0.0, 50.0, 6.0, subtract=True)
    expected[0:6, 4:50] = False
    assert np.array_equal(_holes(e), expected)
    assert e.mask().min() == 0.0 and set(np.unique(e.mask())) == {0.0, 1.0}  # hard edges: a binary mask


def test_rectangle_outside_the_image_is_clipped_or_nothing():
    e = _editor()
    assert e.fill_rect(-10, -10, -2, -2) is None and not e.can_undo()
    e.fill_rect(45.0, 35.0, 80.0, 90.0)
    assert _holes(e).sum() == 5 * 5


def _inside_triangle(pts, xs, ys) -> np.ndarray:
    """Signed distance (positive inside) from points to a counter-clockwise or clockwise triangle's edges."""
    d = np.full(xs.shape, np.inf)
    sign = np.sign(
        (pts[1][0] - pts[0][0]) * (pts[2][1] - pts[0][1]) - (pts[1][1] - pts[0][1]) * (pts[2][0] - pts[0][0])
    )
    for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1]):
        ex, ey = bx - ax, by - ay
        d = np.minimum(d, sign * (ex * (ys - ay) - ey * (xs - ax)) / np.hypot(ex, ey))
    return d


def test_triangle_area_and_outline_within_one_pixel():
    e = _editor(60, 60)
    tri = [(5.0, 5.0), (55.0, 12.0), (20.0, 50.0)]
    e.fill_polygon(tri)
    holes = _holes(e)
    area = 0.5 * abs(
        (tri[1][0] - tri[0][0]) * (tri[2][1] - tri[0][1]) - (tri[2][0] - tri[0][0]) * (tri[1][1] - tri[0][1])
    )
    perimeter = sum(np.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(tri, tri[1:] + tri[:1]))
    assert abs(holes.sum() - area) <= perimeter * 0.5  # the count differs by at most half a pixel along the outline
    ys, xs = np.mgrid[0:60, 0:60] + 0.5  # pixel centres
    d = _inside_triangle(tri, xs, ys)
    diagonal = np.sqrt(2)  # the outline's pixels lie within one pixel's diagonal of the exact edge
    assert holes[d > diagonal].all()  # every pixel farther inside is a hole
    assert not holes[d < -diagonal].any()  # and none farther outside


def test_polygon_subtract_and_too_few_points():
    e = _editor()
    e.fill_rect(0, 0, 50, 40)
    e.fill_polygon([(10, 10), (30, 10), (30, 30), (10, 30)], subtract=True)
    holes = _holes(e)
    assert not holes[10:30, 10:30].any() and holes.sum() == 50 * 40 - 20 * 20
    assert e.fill_polygon([(1, 1), (5, 5)]) is None


def test_grow_then_shrink_returns_a_filled_shape():
    e = _editor(60, 60)
    e.fill_rect(20, 15, 41, 44)
    e.fill_polygon([(5, 5), (14, 6), (8, 14)])  # far enough from the rectangle that grown they do not meet
    before = _holes(e).copy()
    e.grow(2)
    grown = _holes(e)
    assert grown.sum() > before.sum() and grown[before].all()
    assert grown[30:44, 18].all() and not grown[30:44, 17].any()  # 2 px left of the rectangle, not 3
    e.grow(-2)
    assert np.array_equal(_holes(e), before)


def test_shrink_keeps_holes_at_the_border():
    e = _editor(20, 20)
    e.fill_rect(0, 0, 6, 20)
    e.grow(-2)
    h = _holes(e)
    assert h[:, 0:4].all() and not h[:, 4:].any()  # the image edge is no edge of the hole


def test_feather_softens_without_moving_the_holes():
    e = _editor(40, 40)
    e.fill_rect(10, 10, 30, 30)
    before = _holes(e).copy()
    e.feather(8)
    m = e.mask()
    assert np.array_equal(m < 0.5, before)  # the engine fills the same pixels
    row = m[20, :]
    assert 0.5 < row[9] < 1.0 and 0.0 < row[10] < 0.5  # soft on both sides of the edge
    assert row[0] == 1.0 and row[20] == 0.0  # far from it, hard as before
    assert np.all(np.diff(row[2:12]) <= 0)  # falls monotonically into the hole
    e.feather(0)
    assert set(np.unique(e.mask())) == {0.0, 1.0}


def test_hardness_changes_the_edge_profile_not_the_holes():
    hard, soft = _editor(40, 60), _editor(40, 60)
    for e, h in ((hard, 1.0), (soft, 0.0)):
        e.begin_stroke()
        e.draw_path([(10.0, 20.0), (50.0, 20.0)], 16, 1, hardness=h)
        e.end_stroke()
    mh, ms = hard.mask(), soft.mask()
    assert set(np.unique(mh)) == {0.0, 1.0}
    column = ms[:, 30]
    assert len(np.unique(column)) > 6  # a ramp, not a step
    assert np.all(np.diff(column[:20]) <= 1e-6)  # falls towards the stroke's centre line
    assert abs(int((ms < 0.5).sum()) - int((mh < 0.5).sum())) <= 0.1 * (mh < 0.5).sum()  # about the same holes


def test_soft_eraser_gives_pixels_back():
    e = _editor(40, 60)
    e.fill_rect(0, 0, 60, 40)
    e.begin_stroke()
    e.draw_path([(30.0, 20.0)], 12, 0, hardness=0.0)
    e.end_stroke()
    m = e.mask()
    assert m[20, 30] == 1.0 and m[0, 0] == 0.0


def test_each_tool_is_one_undo_step_restored_exactly():
    e = _editor(50, 50)
    e.fill_rect(5, 5, 20, 20)
    states = [e.holes().copy()]
    for op in (
        lambda: e.fill_polygon([(25, 5), (45, 10), (30, 40)]),
        lambda: e.fill_rect(10, 10, 30, 30, subtract=True),
        lambda: e.grow(3),
        lambda: e.feather(6),
        lambda: e.grow(-2),
        e.invert,
    ):
        op()
        states.append(e.holes().copy())
        assert not np.array_equal(states[-1], states[-2])
    for state in reversed(states[:-1]):
        e.undo()
        assert np.array_equal(e.holes(), state)
    for state in states[1:]:
        e.redo()
        assert np.array_equal(e.holes(), state)


def test_soft_float_masks_round_trip_their_side():
    m = np.linspace(0, 1, 1001, dtype=np.float32).reshape(1, -1)
    w = mask_ops.weights_from_mask(m)
    assert np.array_equal(w >= HALF, m < 0.5)
    e = _editor(1, 1001)
    e.set_mask(m)
    assert np.array_equal(e.mask() < 0.5, m < 0.5)
    assert w[0, 0] == HOLE and w[0, -1] == 0


# ----- in the window ---------------------------------------------------------------------------------------


@pytest.fixture
def inpaint(window, make_config):
    window.settings_panel.set_config(make_config("inpaint"))
    window.settings_panel.set_task("inpaint")
    window.mask_clear()
    return window


def _press(qtbot, win, shortcut: str) -> None:
    """Type ``shortcut`` the way a person would: to the window, the canvas focused."""
    from PySide6.QtGui import QKeySequence
    from PySide6.QtTest import QTest

    win.photo_view.setFocus()
    combo = QKeySequence(shortcut)[0]
    QTest.keyClick(win.photo_view, combo.key(), combo.keyboardModifiers())


@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_tools_have_shortcuts_that_work_in_the_window(qtbot, inpaint):
    w, a = inpaint, inpaint.acts
    for act in (a.rect, a.lasso, a.subtract, a.grow, a.shrink, a.feather, a.brush, a.eraser, a.pan):
        assert not act.shortcut().isEmpty(), act.text()
    _press(qtbot, w, "R")
    assert w.photo_view.tool() == "rect" and a.rect.isChecked()
    _press(qtbot, w, "L")
    assert w.photo_view.tool() == "lasso"
    w.photo_view.fill_rect(20, 20, 40, 40)
    before = int((w.session.mask < 0.5).sum())
    assert before == 400
    w.acts.amount.setValue(2)
    _press(qtbot, w, "G")
    assert int((w.session.mask < 0.5).sum()) > before
    _press(qtbot, w, "Shift+G")
    assert int((w.session.mask < 0.5).sum()) == before
    _press(qtbot, w, "F")
    assert 0 < w.session.mask[19, 30] < 1  # soft
    _press(qtbot, w, "X")
    assert w.photo_view.subtract
    _press(qtbot, w, "Ctrl+Z")
    _press(qtbot, w, "Ctrl+Z")
    _press(qtbot, w, "Ctrl+Z")
    assert int((w.session.mask < 0.5).sum()) == before and set(np.unique(w.session.mask)) == {0.0, 1.0}
    hard = w.photo_view.hardness
    _press(qtbot, w, "{")
    assert w.photo_view.hardness < hard and w.acts.hardness_slider.value() == round(w.photo_view.hardness * 100)


@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_rectangle_and_lasso_by_mouse(qtbot, inpaint):
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    w = inpaint
    view = w.photo_view
    w.acts.rect.trigger()
    vp = view.viewport()

    def at(x, y) -> QPoint:
        return view.view_to_widget(x, y).toPoint()

    QTest.mousePress(vp, Qt.MouseButton.LeftButton, pos=at(10, 10))
    QTest.mouseMove(vp, at(20, 20))
    QTest.mouseMove(vp, at(30, 30))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=at(30, 30))
    holes = w.session.mask < 0.5
    ys, xs = np.nonzero(holes)
    assert holes.sum() > 300 and abs(xs.min() - 10) <= 1 and abs(xs.max() - 29) <= 1  # a 20x20 box, to a pixel
    w.acts.lasso.trigger()
    mods = Qt.KeyboardModifier.ControlModifier  # subtract a polygon clicked corner by corner
    for x, y in ((12, 12), (28, 12), (28, 28)):
        QTest.mouseClick(vp, Qt.MouseButton.LeftButton, mods, at(x, y))
    QTest.keyClick(view, Qt.Key.Key_Return)
    after = w.session.mask < 0.5
    assert after.sum() < holes.sum() and not after[14, 26] and after[26, 14]


@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_painting_during_a_run_says_it_applies_to_the_next_run(qtbot, inpaint, make_config):
    w = inpaint
    w.photo_view.fill_rect(20, 20, 40, 40)
    w.settings_panel.set_config(make_config("inpaint", iterations=100_000))
    w.start()
    qtbot.waitUntil(lambda: w.curves.data.n >= 1, timeout=20000)
    assert not w.acts.mask_note_action.isVisible()
    started = w.session.working_mask.copy()
    w.photo_view.paint_stroke([(5, 5), (15, 8)])
    assert w.acts.mask_note_action.isVisible() and "next run" in w.acts.mask_note.text()
    assert np.array_equal(w.session.working_mask, started)  # the run keeps its mask
    w.photo_view.undo()
    assert not w.acts.mask_note_action.isVisible()  # back to the run's mask: nothing to say
    w.photo_view.paint_stroke([(5, 5), (15, 8)])
    with qtbot.waitSignal(w.controller.run_finished, timeout=10000):
        w.stop()
    assert not w.acts.mask_note_action.isVisible()


def test_a_feathered_edge_blends_in_the_result_composite():
    """Feather is not only drawn: the keep-known composite blends the fill into the photo by the soft edge."""
    from rwgui.core.compositing import keep_known

    e = _editor(40, 40)
    e.fill_rect(10, 10, 30, 30)
    photo, net = np.zeros((40, 40, 3), np.float32), np.ones((40, 40, 3), np.float32)
    hard = keep_known(net, photo, e.mask(), 0)
    e.feather(8)
    soft = keep_known(net, photo, e.mask(), 0)
    assert np.array_equal(hard[..., 0] > 0, e.mask() < 0.5)  # hard: only the holes change
    row = soft[20, :, 0]
    assert 0.0 < row[8] < 0.5 and row[0] == 0.0 and row[20] == 1.0  # soft: a ramp on the known side
