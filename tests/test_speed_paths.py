"""The speed paths change nothing but timing.

Overlapped fetching (the engine reads a step's numbers during the next step): on the CPU there is nothing to
overlap, so ``overlap='on'`` is forced here to exercise the code path CUDA takes by default: same reports,
same pick, same images, same guard, one step later. A failing ``torch.compile`` falls back to eager. And the
speed benchmark's plain baseline is the engine's algorithm, so its speed-up compares like with like.
"""

import numpy as np
import pytest
import torch

from rwgui.bench.speed import Baseline, paired_summary, quality
from rwgui.core.config import SpeedConfig
from rwgui.core.engine import Engine
from rwgui.core.samples import load_sample
from tests.conftest import tiny_config
from tests.test_engine import run_then_wreck, small_engine


def _engine(overlap: str, iterations: int = 30):
    return small_engine(
        iterations=iterations,
        stop="es-wmv",
        stop_params={"window": 4, "patience": 10000},
        speed=SpeedConfig(channels_last=False, precision="float32", overlap=overlap),
    )


def test_overlapped_run_reports_the_same_numbers_and_pick():
    plain, lagged = _engine("off"), _engine("on")
    assert lagged.overlap and not plain.overlap
    a, b = plain.run(), lagged.run()
    assert [r.iteration for r in b.reports] == list(range(1, 31))  # every step reported, in order, flushed
    for ra, rb in zip(a.reports, b.reports):
        assert rb.loss == pytest.approx(ra.loss, rel=1e-6)
        assert rb.psnr == pytest.approx(ra.psnr, rel=1e-6)
        assert (ra.signal is None) == (rb.signal is None)
        if ra.signal is not None:
            assert rb.signal == pytest.approx(ra.signal, rel=1e-5)
        assert rb.pick_iteration == ra.pick_iteration
    assert b.pick_iteration == a.pick_iteration is not None
    np.testing.assert_allclose(lagged.image("pick_average"), plain.image("pick_average"), atol=1e-5)


def test_overlapped_step_reports_the_previous_step_and_flush_the_last():
    eng = _engine("on")
    assert eng.step() is None  # the first step's numbers are still "on the device"
    assert eng.step().iteration == 1
    assert eng.step().iteration == 2
    assert eng.flush().iteration == 3
    assert eng.flush() is None


def test_frame_request_gives_an_owned_rgba_frame():
    eng = _engine("on")
    eng.step()
    fetch = eng.request_frame("raw")
    assert fetch.ready() and fetch.iteration == 1
    rgba = fetch.array()
    assert rgba.dtype == np.uint8 and rgba.shape[2] == 4 and rgba.flags.c_contiguous
    assert (rgba[..., 3] == 255).all()
    eng.step()
    assert not np.array_equal(eng.frame("raw"), rgba)  # a later iterate; the earlier frame is untouched


def test_guard_restores_under_overlap():
    eng = _engine("on", iterations=100)
    good = run_then_wreck(eng)
    eng.step()  # computes the wrecked step; its report is still pending
    assert eng.step().restored  # the wrecked step's report arrives and the guard restores
    for k, v in eng.net.state_dict().items():
        assert torch.equal(v, good["net"][k]), k
    # the step computed while the wrecked report was in flight is restored once more, then the run goes on
    assert [eng.step().restored for _ in range(3)] == [True, False, False]


def test_compile_that_fails_falls_back_to_eager(monkeypatch):
    """torch.compile needs a working compiler tool chain; without one the run goes on, eager and correct."""

    def broken_compile(*args, **kwargs):
        raise RuntimeError("no C++ compiler (simulated)")

    monkeypatch.setattr(torch, "compile", broken_compile)
    eager = small_engine(iterations=5, speed=SpeedConfig(channels_last=False, precision="float32"))
    fallback = small_engine(iterations=5, speed=SpeedConfig(channels_last=False, precision="float32", compile=True))
    assert fallback._forward is fallback.net
    ref = [r.loss for r in eager.run().reports]
    got = [r.loss for r in fallback.run().reports]
    assert got == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("task", ["denoise", "sr", "inpaint"])
def test_benchmark_baseline_is_the_engine_with_speed_settings_off(task):
    """So the benchmark's quality differences come from the speed settings alone, for every task it runs."""
    problem = load_sample(task, size=40).problem()
    off = SpeedConfig(channels_last=False, precision="float32", fused_optimizer=False)
    cfg = tiny_config(task, iterations=6, speed=off, stop="fixed", stop_params={}, loss_prior="none")
    base = Baseline(problem, cfg, torch.device("cpu"))
    losses, psnrs = [], []
    for _ in range(6):
        base.step()
        losses.append(base.last_loss)
        psnrs.append(base.last_psnr_average)
    reports = Engine(problem, cfg).run().reports
    assert [r.loss_terms["data"] for r in reports] == pytest.approx(losses, rel=1e-5)
    assert [r.psnr_average for r in reports] == pytest.approx(psnrs, abs=1e-3)


def test_quality_check_pairs_both_sides_on_each_seed():
    """The PSNR check's seeds reach both sides: with the speed settings off each pair is identical, while the
    baseline itself moves from seed to seed (the noise a same-seed difference is judged against)."""
    img = load_sample("denoise", size=32).ground_truth
    off = SpeedConfig(channels_last=False, precision="float32", fused_optimizer=False)
    rows = [quality("denoise", img, "sample", torch.device("cpu"), 3, off, seed) for seed in (0, 1)]
    assert [r[4] for r in rows] == [0, 1]
    assert all(abs(r[-1]) < 1e-3 for r in rows)
    assert rows[0][-3] != rows[1][-3]
    (summary,) = paired_summary(rows)
    assert summary[1] == 2 and abs(summary[2]) < 1e-3 and summary[4] > 0


def test_speed_summary_names_what_runs():
    from rwgui.core.device import overlaps, speed_summary

    cpu = torch.device("cpu")
    assert not overlaps("auto", cpu) and overlaps("on", cpu) and overlaps("auto", torch.device("cuda"))
    assert not overlaps("auto", torch.device("mps"))  # its fetch waits for the newest step: no gain there
    text = speed_summary(SpeedConfig(precision="float32", overlap="on", compile=True), cpu)
    assert text.startswith("On CPU: float32") and "overlapped steps" in text and "torch.compile" in text
    assert "bfloat16 autocast" in speed_summary(SpeedConfig(precision="bfloat16"), cpu)


def test_fused_optimizer_is_a_setting_and_keeps_the_losses():
    """Fused Adam is on by default on the CPU (where this torch has the kernel) and can be turned off; the
    first steps' losses agree with the plain loop's to rounding."""
    on = small_engine(iterations=8, speed=SpeedConfig(channels_last=True, precision="float32"))
    off = small_engine(iterations=8, speed=SpeedConfig(channels_last=True, precision="float32", fused_optimizer=False))
    assert on.optimizer.defaults.get("fused") and not off.optimizer.defaults.get("fused")
    a, b = [r.loss for r in on.run().reports], [r.loss for r in off.run().reports]
    assert a[:4] == pytest.approx(b[:4], rel=1e-3)
