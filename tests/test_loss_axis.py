"""The loss plot's log axis has numbers when the loss stays within one decade step (pyqtgraph's own log
ticks sit only on 1..9 x 10^k, so a loss between 0.012 and 0.018 had an axis with no number on it)."""

from __future__ import annotations

import math

import pytest


@pytest.mark.parametrize(("lo", "hi"), [(0.012, 0.018), (0.0151, 0.0153), (1.2e-5, 1.7e-5), (0.002, 0.009)])
def test_log_axis_has_at_least_two_numbers(qtbot, lo, hi):
    from rwgui.gui.plots import CurvesWidget

    w = CurvesWidget()
    qtbot.addWidget(w)
    w.resize(340, 600)
    w.show()
    w.loss.item.vb.setYRange(math.log10(lo), math.log10(hi), padding=0)
    ax = w.loss.item.getAxis("left")
    mn, mx = w.loss.item.vb.viewRange()[1]
    ticks = ax.tickValues(mn, mx, max(100, ax.geometry().height()))
    strings = [s for spacing, values in ticks for s in ax.tickStrings(values, 1, spacing)]
    assert len(strings) >= 2, strings
    numbers = [float(s) for s in strings]
    assert all(lo <= x <= hi for x in numbers), (numbers, lo, hi)
    assert len(set(strings)) == len(strings), f"distinct labels: {strings}"
