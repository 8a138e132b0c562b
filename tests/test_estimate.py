"""The estimate before Start, the time budget and its wall-clock cap (rwgui.core.estimate, --estimate,
--time-budget, the studio's label under Start). No timed assertion: the timing is replaced by a fake whose
seconds per step are a fixed rate times the area, so every number is deterministic."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest

from rwgui import cli
from rwgui.core import estimate, imageio
from rwgui.core.config import preset
from rwgui.core.engine import Engine, RunControl, drain
from rwgui.core.problems import make_problem
from rwgui.core.vocabulary import StopReason

TINY = {"num_scales": 2, "channels_down": (8,), "channels_up": (8,), "channels_skip": (4,)}


class FakeTimer:
    """Seconds per step = ``rate`` x the area timed; records the sizes and the threads it ran on."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.sizes: list[tuple[int, int]] = []
        self.threads: list[threading.Thread] = []

    def __call__(self, config, task, channels, factor, size) -> float:
        self.sizes.append(size)
        self.threads.append(threading.current_thread())
        return self.rate * size[0] * size[1]


@pytest.fixture(autouse=True)
def _fresh_cache():
    estimate.clear_cache()
    yield
    estimate.clear_cache()


def _noisy(size=(256, 256)) -> np.ndarray:
    return np.random.default_rng(0).random((*size, 3), dtype=np.float32)


def _write_photo(tmp_path, size=(32, 32)) -> str:
    path = tmp_path / "photo.png"
    imageio.write(path, _noisy(size))
    return str(path)


# ----- --estimate -----------------------------------------------------------------------------------------
def test_estimate_prints_three_quantities_and_runs_no_step(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(estimate, "time_steps", FakeTimer(1e-5))

    def no_step(self):
        raise AssertionError("--estimate must not run a step")

    monkeypatch.setattr(Engine, "step", no_step)
    photo = _write_photo(tmp_path)
    code = cli.run(["denoise", photo, "--estimate", "--iterations", "500", "--channels-down", "8"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert re.match(r"^seconds per step: \d+\.\d{3} at 32x32 \(", lines[0])
    assert re.match(r"^total time: .+ for the budget of 500 iterations", lines[1])
    assert re.match(r"^memory: about \d+ MB$", lines[2])
    assert not list(tmp_path.glob("*_restored*"))  # nothing written


def test_estimate_says_when_the_rule_usually_stops(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(estimate, "time_steps", FakeTimer(1e-5))
    photo = _write_photo(tmp_path)
    assert cli.run(["denoise", photo, "--estimate", "--iterations", "3000"]) == 0
    out = capsys.readouterr().out
    stop = estimate.TYPICAL_PICK["es-wmv"] + 1000  # the preset's patience
    assert f"usually stops around iteration {stop}" in out


def test_expected_stop_follows_the_rule_and_the_budget():
    assert estimate.expected_stop(preset("denoise")) == estimate.TYPICAL_PICK["es-wmv"] + 1000
    assert estimate.expected_stop(preset("denoise", iterations=900)) is None  # the budget ends it first
    assert estimate.expected_stop(preset("denoise", auto_stop=False)) is None
    assert estimate.expected_stop(preset("sr-x4")) is None  # a fixed budget


def test_total_time_is_steps_times_step_time():
    p = make_problem("denoise", _noisy((64, 64)))
    e = estimate.estimate_run(p, preset("denoise", iterations=1000, prior_params=TINY), timer=FakeTimer(1e-4))
    assert e.seconds_per_step == pytest.approx(1e-4 * 64 * 64)
    assert e.total_seconds == pytest.approx(1000 * e.seconds_per_step)


def test_step_time_interpolates_between_the_probes():
    timer = FakeTimer(1e-6)
    model = estimate.step_time(preset("denoise"), "denoise", 3, (512, 512), timer)
    assert sorted(timer.sizes) == [(128, 128), (256, 256)]
    assert model.exponent == pytest.approx(1.0)
    assert model.at((512, 512)) == pytest.approx(1e-6 * 512 * 512)
    assert model.at((192, 192)) == pytest.approx(1e-6 * 192 * 192)


# ----- the time budget --------------------------------------------------------------------------------------
def test_time_budget_downscales_when_steps_are_slow_and_keeps_the_size_when_fast():
    p = make_problem("denoise", _noisy((256, 256)))
    cfg = preset("denoise")
    slow = estimate.plan_time_budget(p, cfg, 120.0, timer=FakeTimer(1.0 / (256 * 256)))  # 1 s/step at 256²
    assert slow.working.mode == "downscale" and slow.working.upscaled
    assert max(slow.working.size) < 256
    assert slow.working.writes_full_size
    estimate.clear_cache()
    fast = estimate.plan_time_budget(p, cfg, 120.0, timer=FakeTimer(1e-3 / (256 * 256)))  # 1 ms/step
    assert fast.working.mode == "full" and fast.working.size == (256, 256)
    assert fast.iterations == cfg.iterations and not fast.reduced


def test_iterations_follow_budget_over_step_time_with_a_floor():
    p = make_problem("denoise", _noisy((128, 128)))
    cfg = preset("denoise", iterations=1_000_000)
    step = 0.01
    plan = estimate.plan_time_budget(p, cfg, 120.0, timer=FakeTimer(step / (128 * 128)))
    usable = 120.0 * (1 - estimate.OVERHEAD_SHARE) - estimate.OVERHEAD_S
    assert plan.working.mode == "full"
    assert plan.iterations == pytest.approx(usable / step, rel=0.02)
    estimate.clear_cache()
    hopeless = estimate.plan_time_budget(p, cfg, 60.0, timer=FakeTimer(100.0 / (32 * 32)))  # 100 s a step
    assert hopeless.iterations == estimate.ITERATION_FLOOR


def test_time_budget_message_names_what_was_reduced():
    p = make_problem("denoise", _noisy((256, 256)))
    plan = estimate.plan_time_budget(p, preset("denoise"), 120.0, timer=FakeTimer(1.0 / (256 * 256)))
    h, w = plan.working.size
    assert f"downscaled to {w}x{h}" in plan.message
    assert f"{plan.iterations} iterations" in plan.message
    assert "to fit about 2 min" in plan.message


def test_inpainting_time_budget_crops_around_the_damage():
    mask = np.ones((256, 256), np.float32)
    mask[100:120, 100:130] = 0
    p = make_problem("inpaint", _noisy((256, 256)), mask=mask)
    cfg = preset("inpaint", prior_params={**TINY, "upsample": "nearest"})
    plan = estimate.plan_time_budget(p, cfg, 120.0, timer=FakeTimer(0.1 / (256 * 256)))  # whole photo too slow
    assert plan.working.mode == "crop"
    assert "crop around the damage" in plan.message


def test_preview_is_small_and_short():
    p = make_problem("denoise", _noisy((256, 256)))
    plan = estimate.plan_preview(p, preset("denoise"), timer=FakeTimer(0.05 / (128 * 128)))
    assert max(plan.working.size) <= estimate.PREVIEW_SIDE
    assert plan.iterations * plan.step_seconds < 60


class WidthTimer(FakeTimer):
    """:class:`FakeTimer` whose rate grows with the square of the network's channels (as a convolution's work
    does); records the widths it timed."""

    def __init__(self, rate: float) -> None:
        super().__init__(rate)
        self.widths: list[int] = []

    def __call__(self, config, task, channels, factor, size) -> float:
        width = config.prior_params["channels_down"][0]
        self.widths.append(width)
        return super().__call__(config, task, channels, factor, size) * (width / 128) ** 2


def test_time_budget_switches_to_the_faster_network_only_where_the_plan_gains():
    p = make_problem("denoise", _noisy((256, 256)))
    cfg = preset("denoise", device="cpu")
    fast_width = preset(estimate.CPU_FAST_PRESETS["denoise"]).prior_params["channels_down"][0]
    slow = WidthTimer(1.0 / (256 * 256))  # 1 s a step at 256² for 128 channels: the preset's network downscales
    plan = estimate.plan_time_budget(p, cfg, 120.0, timer=slow)
    assert plan.preset == "denoise-fast" and "denoise-fast" in plan.message
    assert plan.config(cfg).prior_params["channels_down"][0] == fast_width
    assert plan.config(cfg).preset == "denoise-fast" and plan.config(cfg).iterations == plan.iterations
    estimate.clear_cache()
    quick = WidthTimer(1e-3 / (256 * 256))  # the whole photo and the preset's budget fit: nothing to gain
    plan = estimate.plan_time_budget(p, cfg, 120.0, timer=quick)
    assert plan.preset is None and not plan.reduced and set(quick.widths) == {128}
    assert plan.config(cfg).prior_params == cfg.prior_params
    estimate.clear_cache()
    same = FakeTimer(1.0 / (256 * 256))  # the narrower network is no faster: the preset's network stays
    assert estimate.plan_time_budget(p, cfg, 120.0, timer=same).preset is None
    estimate.clear_cache()
    own = preset("denoise", device="cpu", prior_params={"channels_down": (96,), "channels_up": (96,)})
    assert estimate.plan_time_budget(p, own, 120.0, timer=WidthTimer(1.0 / (256 * 256))).preset is None


# ----- the wall-clock cap -----------------------------------------------------------------------------------
def test_the_wall_clock_cap_stops_after_the_steps_it_allows():
    now = [0.0]
    control = RunControl(seconds=3.5, clock=lambda: now[0])
    p = make_problem("denoise", _noisy((32, 32)))
    engine = Engine(p, preset("denoise", iterations=1000, prior_params=TINY))

    def tick(event) -> None:
        now[0] += 1.0

    result = drain(engine.steps(control), tick)
    assert result.stop_reason is StopReason.BUDGET
    assert engine.iteration == 4  # started at 0, 1, 2, 3 s; the fifth would start at 4 s, after the cap


def test_cli_time_budget_says_what_was_reduced_and_reports_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(estimate, "time_steps", FakeTimer(10.0 / (64 * 64)))  # 10 s a step at 64²: downscale
    photo = _write_photo(tmp_path, (64, 64))
    out, report = tmp_path / "out.png", tmp_path / "r.json"
    args = ["denoise", photo, "-o", str(out), "--report", str(report), "--quiet", "--time-budget", "0.5"]
    code = cli.run([*args, "--num-scales", "2", "--channels-down", "8", "--channels-up", "8"])
    assert code == 0
    err = capsys.readouterr().err
    assert "downscaled to 32x32" in err and "to fit about 30 s" in err
    import json

    data = json.loads(report.read_text())
    assert data["time_budget"]["reduced"] and data["working_size"]["upscaled"]
    assert imageio.read(str(out)).pixels.shape[:2] == (64, 64)  # upscaled back to the photo's size


# ----- the studio -------------------------------------------------------------------------------------------
def test_studio_shows_an_estimate_beside_start_computed_off_the_gui_thread(qtbot, monkeypatch, make_config):
    from rwgui.gui.main_window import MainWindow

    timer = FakeTimer(1e-6)
    monkeypatch.setattr(estimate, "time_steps", timer)
    win = MainWindow(sample_size=64)
    qtbot.addWidget(win)
    win.settings_panel.set_config(make_config())
    win.show()
    label = win.settings_panel.start_area.estimate_label
    qtbot.waitUntil(lambda: "s/step" in label.text(), timeout=20000)
    assert "Estimate:" in label.text() and "MB" in label.text()
    assert timer.threads and all(t is not threading.main_thread() for t in timer.threads)
    assert win.settings_panel.start_area.start_button.defaultAction() is win.acts.start
