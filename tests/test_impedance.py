"""The paper's Figure 2 on a photo (rwgui.core.impedance, View > Why it works): the four targets, the ordering of
their loss curves, the CSV and the studio window. Tiny photos (24-32 px), a tiny prior, tens of iterations."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import TINY_PRIOR

from rwgui.core import imageio
from rwgui.core.config import preset
from rwgui.core.engine import RunControl
from rwgui.core.impedance import (
    TARGETS,
    Threshold,
    default_thresholds,
    first_at_or_below,
    fit_config,
    fit_curves,
    main,
    make_targets,
    working_photo,
)
from rwgui.core.samples import sample_path
from rwgui.core.vocabulary import StopReason


def _photo(side: int = 32) -> np.ndarray:
    return working_photo(imageio.read(sample_path("astronaut")).pixels, side)


def _tiny_base():
    return preset("denoise", device="cpu", prior_params=TINY_PRIOR)


def test_working_photo_keeps_the_aspect_and_never_enlarges():
    big = np.random.default_rng(0).random((90, 60, 3)).astype(np.float32)
    assert working_photo(big, 30).shape == (30, 20, 3)
    assert working_photo(big, 200).shape == big.shape
    assert working_photo(big[..., 0], None).shape == (90, 60, 1)


def test_targets_are_the_photo_its_noisy_copy_its_shuffle_and_uniform_noise():
    # a mid-grey photo with texture: the noisy copy is barely clipped, so its residual has the noise's own std
    rng = np.random.default_rng(5)
    photo = (0.35 + 0.3 * rng.random((40, 48, 3))).astype(np.float32)
    t = make_targets(photo, sigma=25 / 255, seed=3)
    assert list(t) == list(TARGETS)
    for name, a in t.items():
        assert a.shape == photo.shape and a.dtype == np.float32, name
        assert 0.0 <= a.min() and a.max() <= 1.0, name
    np.testing.assert_array_equal(t["image"], photo)
    residual = t["image_noise"] - photo
    assert abs(residual.mean()) < 0.01 and abs(residual.std() - 25 / 255) < 0.005
    # the shuffle moves whole pixels: the same multiset of RGB triples, in another order
    px, sh = photo.reshape(-1, 3), t["shuffled"].reshape(-1, 3)
    np.testing.assert_array_equal(px[np.lexsort(px.T)], sh[np.lexsort(sh.T)])
    assert np.mean(np.all(px == sh, axis=1)) < 0.05
    # uniform noise on [0, 1]: mean 1/2, variance 1/12, independent of the photo
    assert abs(t["noise"].mean() - 0.5) < 0.01 and abs(t["noise"].var() - 1 / 12) < 0.005
    # one seed draws all of them the same way again; another draws them differently
    again, other = make_targets(photo, 25 / 255, seed=3), make_targets(photo, 25 / 255, seed=4)
    for name in TARGETS:
        np.testing.assert_array_equal(again[name], t[name])
    assert not np.array_equal(other["shuffled"], t["shuffled"])
    assert not np.array_equal(other["noise"], t["noise"])


def test_gray_photo_keeps_one_channel():
    t = make_targets(np.full((16, 20), 0.5, np.float32), seed=0)
    assert all(a.shape == (16, 20, 1) for a in t.values())


def test_first_at_or_below_counts_from_one():
    assert first_at_or_below([0.5, 0.3, 0.1, 0.2], 0.3) == 2
    assert first_at_or_below([0.5, 0.4], 0.1) is None
    assert first_at_or_below([], 1.0) is None


def test_fit_config_is_plain_reconstruction_without_a_stopping_rule():
    cfg = fit_config(preset("denoise", stop="es-wmv", tv_weight=0.1), iterations=77, seed=9)
    assert (cfg.stop, cfg.auto_stop, cfg.loss_prior, cfg.tv_weight) == ("fixed", False, "none", 0.0)
    assert (cfg.iterations, cfg.seed, cfg.prior) == (77, 9, "skip")
    assert cfg.prior_params == preset("denoise").prior_params  # the denoise preset's network


def test_default_thresholds():
    absolute, half, tenth = default_thresholds(25 / 255)
    assert absolute == Threshold((25 / 255) ** 2) and absolute.level(0.3) == absolute.value
    assert half.relative and half.level(0.08) == pytest.approx(0.04)
    assert tenth.value == 0.1


def test_the_photo_is_fitted_faster_than_its_shuffle_and_noise():
    """The ordering of the paper's Figure 2. Compared as the fraction of each target's variance not yet fitted
    (uniform noise has more variance than the photo, so raw MSE would favour the photo for a dull reason), over
    the last ten of 40 iterations. On 32 px crops of the three bundled photos with seeds 0-2 the photo's fraction
    was 0.15-0.30, the shuffle's 0.46-0.79 and the noise's 0.85-0.91: the margin asserted here is far smaller."""
    result = fit_curves(_photo(32), iterations=40, seed=0, config=_tiny_base())
    assert set(result.curves) == set(TARGETS)
    assert all(len(c) == 40 for c in result.curves.values())
    assert all(r is StopReason.BUDGET for r in result.stop_reasons.values())
    end = {name: result.final_fraction(name) for name in TARGETS}
    assert end["image"] * 1.3 < end["shuffled"]
    assert end["image"] * 1.3 < end["noise"]
    assert end["image"] < end["image_noise"]  # the noise part of the noisy photo resists too
    # the half-of-the-variance threshold: the photo reaches it first
    half = Threshold(0.5, relative=True)
    assert result.reached("image", half) is not None
    for name in ("shuffled", "noise"):
        other = result.reached(name, half)
        assert other is None or other > result.reached("image", half)


def test_same_seed_same_curves_and_stop_ends_the_sequence():
    photo, base = _photo(24), _tiny_base()
    a = fit_curves(photo, iterations=6, seed=1, config=base)
    b = fit_curves(photo, iterations=6, seed=1, config=base)
    for name in TARGETS:
        np.testing.assert_array_equal(a.curves[name], b.curves[name])
    control, seen = RunControl(), []

    def on_step(name: str, iteration: int, loss: float) -> None:
        seen.append((name, iteration))
        if name == "image_noise" and iteration == 2:
            control.stop()

    c = fit_curves(photo, iterations=6, seed=1, config=base, control=control, on_step=on_step)
    assert list(c.curves) == ["image", "image_noise"]  # the fits after the stopped one never start
    assert c.stop_reasons["image_noise"] is StopReason.USER and len(c.curves["image_noise"]) == 2
    assert seen[:6] == [("image", i) for i in range(1, 7)]


def test_cli_writes_the_csv_and_prints_the_table(tmp_path, capsys):
    src = tmp_path / "photo.png"
    imageio.write(src, _photo(24))
    out = tmp_path / "curves.csv"
    rc = main([str(src), "--csv", str(out), "--side", "24", "--iterations", "3", "--device", "cpu", "--quiet"])
    assert rc == 0
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["iteration", "loss_image", "loss_image_noise", "loss_shuffled", "loss_noise"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "3"]
    assert all(float(v) > 0 for r in rows[1:] for v in r[1:])
    text = capsys.readouterr().out
    assert "MSE ≤ 0.00961" in text and "MSE ≤ 0.5 × Var" in text and "not in 3" in text


def test_cli_refuses_a_missing_photo(tmp_path, capsys):
    assert main([str(tmp_path / "nope.png"), "--csv", str(tmp_path / "c.csv")]) == 2
    assert "error" in capsys.readouterr().err


# ----- the studio ------------------------------------------------------------------------------------------


def test_window_runs_the_four_fits_and_draws_four_curves(qtbot):
    from rwgui.gui.impedance_view import WhyItWorksWindow
    from rwgui.gui.worker import live_threads

    win = WhyItWorksWindow()
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(win.finished, timeout=120_000):
        win.start(_photo(24), base=_tiny_base(), iterations=5, side=24)
    assert [len(win.curves[n]) for n in TARGETS] == [5, 5, 5, 5]
    for name in TARGETS:
        line = win.lines[name]  # xData, yData: the values given, before the log scale
        np.testing.assert_array_equal(line.xData, [1, 2, 3, 4, 5])
        np.testing.assert_allclose(line.yData, win.curves[name])
    cells = win.table_text()
    assert len(cells) == len(default_thresholds()) and all(len(r) == 4 for r in cells)
    assert all(c == "not in 5" or c.isdigit() for r in cells for c in r)
    assert win.status.text() == "Done."
    assert not win.stop_button.isEnabled()
    win.close()
    assert not any(t.isRunning() for t in live_threads())


def test_closing_the_window_mid_fit_stops_it(qtbot):
    from rwgui.gui.impedance_view import WhyItWorksWindow
    from rwgui.gui.worker import live_threads

    win = WhyItWorksWindow()
    qtbot.addWidget(win)
    win.show()
    win.start(_photo(24), base=_tiny_base(), iterations=100_000, side=24)
    qtbot.waitUntil(lambda: len(win.curves["image"]) > 0, timeout=60_000)
    win.close()  # stops the fit and waits for its thread
    assert not win.is_running()
    assert not any(t.isRunning() for t in live_threads())


def test_studio_view_menu_opens_why_it_works(window, qtbot):
    from rwgui.gui.worker import live_threads

    view = window.acts.view_menu
    assert window.why_it_works.action in view.actions()
    assert window.why_it_works.action.text().replace("&", "") == "Why it works…"
    win = window.why_it_works.open(base=_tiny_base(), iterations=4, side=24)
    assert win is not None and win.isVisible()
    with qtbot.waitSignal(win.finished, timeout=120_000):
        pass
    assert all(len(win.curves[n]) == 4 for n in TARGETS)
    assert "(its ground truth)" in win.note.text()  # the sample is noisy: the figure fits its clean photo
    win.again.click()  # run again, then close the studio while it fits
    qtbot.waitUntil(lambda: win.is_running(), timeout=10_000)
    window.close()
    assert not any(t.isRunning() for t in live_threads())
