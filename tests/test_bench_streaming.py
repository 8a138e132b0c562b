"""The streaming benchmark's in-run measure: its block arithmetic, and one short run in the real window."""

from __future__ import annotations

import math

import pytest

from rwgui.bench.streaming import DutyCycle, duty_cycled

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def _feed(duty: DutyCycle, seconds: float, quiet_dt: float, loud_dt: float, hiccup: float = 0.0) -> None:
    """Steps of ``quiet_dt`` in quiet blocks and ``loud_dt`` in loud ones; the first step of every quiet
    block takes ``hiccup`` more (the window finishing what it was sent)."""
    t, was_loud = 0.0, duty.loud
    while t < seconds:
        duty.tick(t)
        dt = loud_dt if duty.loud else quiet_dt
        if was_loud and not duty.loud:
            dt += hiccup
        was_loud = duty.loud
        t += dt


def test_loud_blocks_are_compared_with_the_quiet_ones_around_them():
    duty = DutyCycle(block_s=1.0, settle_s=0.3)
    _feed(duty, 20.0, quiet_dt=0.010, loud_dt=0.0125, hiccup=0.2)
    r = duty.ratios()
    assert len(r) >= 8
    assert all(math.isclose(x, 0.8, rel_tol=1e-6) for x in r)  # the hiccups fall in the unmeasured settle


def test_a_short_duty_cycled_run_in_the_real_window(qtbot, window, make_config):
    frames = []
    window.controller.frame_ready.connect(lambda it, rgba: frames.append(it))
    r = duty_cycled(window, make_config(iterations=100_000), seconds=5.5, block_s=1.0, settle_s=0.3)
    assert r and all(0.2 < x < 5.0 for x in r)
    assert frames  # the loud blocks streamed
    assert window.controller.state == "idle" and window.last_summary.reason == "user"
