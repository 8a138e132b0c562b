"""The kept-iterate store: memory cap, pins, log-spaced thinning, the rule's pick, the result choice."""

import numpy as np
import pytest

from rwgui.core.history import AVERAGE, PICK_AVERAGE, IterateHistory, KeepSchedule
from rwgui.core.pixels import as_u16, rgba8_for_display


def _img(value: float, size: int = 16) -> np.ndarray:
    return np.full((size, size, 3), value, np.float32)


def _entry_bytes(h: IterateHistory, size: int = 16) -> int:
    probe = IterateHistory(thumb_side=h.thumb_side)
    probe.add(1, _img(0.5, size))
    return probe.memory_bytes


def test_cap_respected_under_a_long_run():
    one = _entry_bytes(IterateHistory())
    h = IterateHistory(cap_bytes=40 * one, max_entries=1000)
    schedule = KeepSchedule(per_octave=16)
    last = 0
    for it in range(1, 20001):
        if schedule.wants(it):
            h.add(it, _img((it % 255) / 255))
            last = it
            assert h.memory_bytes <= h.cap_bytes
    assert 30 <= len(h.iterations()) <= 40
    assert h.iterations()[-1] == last
    assert h.dropped > 0


def test_schedule_offers_a_bounded_number_per_doubling():
    s = KeepSchedule(per_octave=32)
    offered = [it for it in range(1, 100_001) if s.wants(it)]
    assert offered[:32] == list(range(1, 33))
    assert len(offered) < 32 * 13  # ~32 per doubling, not one per step
    assert KeepSchedule.for_size(entry_bytes=10**9).per_octave == 4


def test_recent_denser_than_old():
    h = IterateHistory(cap_bytes=10**12, max_entries=60)
    for it in range(1, 5001):
        h.add(it, _img(0.5, 4))
    its = np.array(h.iterations())
    gaps = np.diff(its)
    assert len(its) == 60
    assert gaps[-10:].mean() * 4 < gaps[:10].mean()
    assert its[-1] == 5000


def test_pinned_never_thinned():
    h = IterateHistory(cap_bytes=10**12, max_entries=20)
    for it in range(1, 101):
        h.add(it, _img(0.1, 4))
        if it in (3, 7, 50):
            h.pin(it)
    for it in range(101, 3001):
        h.add(it, _img(0.2, 4))
    assert {3, 7, 50} <= set(h.iterations())
    assert h.is_pinned(7)
    h.pin(7, False)
    assert not h.is_pinned(7) or 7 not in h.iterations()


def test_rule_pick_kept_and_default_result():
    h = IterateHistory(cap_bytes=10**12, max_entries=10)
    for it in range(1, 51):
        h.add(it, _img(0.3, 4))
    h.set_pick(25, _img(0.25, 4), _img(0.26, 4))
    for it in range(51, 2001):
        h.add(it, _img(0.3, 4))
    assert 25 in h.iterations()
    assert h.pick_iteration == 25
    assert h.result_key() == PICK_AVERAGE
    assert np.allclose(h.image(PICK_AVERAGE), 0.26, atol=1e-4)
    h.set_average(2000, _img(0.4, 4))
    assert h.keys()[-2:] == [PICK_AVERAGE, AVERAGE]
    h.choose(25)
    assert h.result_key() == 25
    h.choose(None)
    assert h.result_key() == PICK_AVERAGE
    with pytest.raises(KeyError):
        h.choose(999_999)


def test_pins_larger_than_cap_refuse_new_iterates():
    one = _entry_bytes(IterateHistory())
    h = IterateHistory(cap_bytes=3 * one)
    for it in (1, 2, 3):
        h.add(it, _img(0.5))
        h.pin(it)
    assert h.add(4, _img(0.5)) is False
    assert h.iterations() == [1, 2, 3]


def test_sixteen_bit_round_trip_and_display():
    ramp = np.linspace(0, 1, 64 * 64 * 3, dtype=np.float32).reshape(64, 64, 3)
    h = IterateHistory()
    h.add(1, ramp)
    e = h.entry(1)
    assert e.pixels.dtype == np.uint16 and e.thumb.dtype == np.uint8 and e.thumb.shape[2] == 4
    assert np.abs(h.image(1) - ramp).max() < 1e-4
    assert h.rgba(1).shape == (64, 64, 4)
    assert rgba8_for_display(as_u16(np.ones((2, 2, 1), np.float32)))[0, 0].tolist() == [255, 255, 255, 255]


def test_result_before_the_rule_has_a_pick_is_the_latest_iterate():
    h = IterateHistory()
    assert h.result_key() is None
    h.set_average(1, _img(0.1, 4))
    assert h.result_key() == AVERAGE
    for it in (1, 2, 3):
        h.add(it, _img(0.2, 4))
    assert h.result_key() == 3
