"""The estimate before Start, the time budget and its wall-clock cap (rwgui.core.estimate, --estimate,
--time-budget, the studio's label under Start). No timed assertion: the timing is replaced by a fake whose
seconds per step are a fixed rate times the area, so every number is deterministic."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest

from rwgui import cli
from rwgui.core import estimate, imageio, memory
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


def test_preview_on_a_cpu_takes_the_faster_network_where_it_buys_the_iterations_denoising_wants():
    """At a preview's capped side both networks get the same working size; the preset's network buys a few
    hundred steps, fewer than denoising wants, so the narrower one (more steps in the same time) is taken."""
    p = make_problem("denoise", _noisy((256, 256)))
    cfg = preset("denoise", device="cpu")
    slow = WidthTimer(0.1 / (128 * 128))  # 0.1 s a step at 128² for 128 channels: about 400 steps in 45 s
    plan = estimate.plan_preview(p, cfg, timer=slow)
    assert plan.preset == "denoise-fast" and max(plan.working.size) == estimate.PREVIEW_SIDE  # the cap, not less
    assert plan.iterations >= estimate.MIN_ITERATIONS["denoise"]
    estimate.clear_cache()
    quick = WidthTimer(0.01 / (128 * 128))  # the preset's own network already gets what denoising wants
    assert estimate.plan_preview(p, cfg, timer=quick).preset is None


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
    assert plan.config(cfg).reg_noise_std == preset("denoise-fast").reg_noise_std  # its jitter comes with it
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
    estimate.clear_cache()
    jitter = preset("denoise", device="cpu", reg_noise_std=0.05)  # a person's own jitter is kept: no switch
    plan = estimate.plan_time_budget(p, jitter, 120.0, timer=WidthTimer(1.0 / (256 * 256)))
    assert plan.preset is None and plan.config(jitter).reg_noise_std == 0.05


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


# ----- every task: flash / no-flash and the pre-image -------------------------------------------------------
#: A prior small enough that a real timing of a few steps takes a fraction of a second.
SMALL = ["--num-scales", "3", "--channels-down", "8", "--channels-up", "8", "--channels-skip", "4"]
SMALL += ["--filter-size-down", "3", "--filter-size-up", "3"]


def _flash_pair(tmp_path, size=(40, 56)) -> tuple[str, str]:
    from rwgui.core.problems import flash_pair

    flash, no_flash = flash_pair(_noisy(size), seed=0)
    paths = tmp_path / "flash.png", tmp_path / "noflash.png"
    imageio.write(paths[0], flash)
    imageio.write(paths[1], no_flash)
    return str(paths[0]), str(paths[1])


def _weights(path, widths=(8, 8, 8, 8, 8)) -> str:
    """A small AlexNet-shaped classifier saved as a state dict, as a person's weights file would be."""
    import torch

    from rwgui.core.classifiers import alexnet

    torch.manual_seed(0)
    torch.save(alexnet(widths, hidden=16, classes=10).state_dict(), path)
    return str(path)


class BuildingTimer(FakeTimer):
    """:class:`FakeTimer` that first builds the synthetic problem the real timing would time (so a task it cannot
    build fails here as it would there), and records each one."""

    def __init__(self, rate: float) -> None:
        super().__init__(rate)
        self.problems: list = []

    def __call__(self, config, task, channels, factor, size) -> float:
        self.problems.append(estimate.synthetic_problem(task, channels, factor, size, config.task_params))
        return super().__call__(config, task, channels, factor, size)


def _three_lines(out: str, size: str) -> list[str]:
    lines = out.strip().splitlines()
    assert len(lines) == 3, lines
    assert re.match(rf"^seconds per step: \d+\.\d{{3}} at {size} \(timed over 3 steps at .+ px on ", lines[0])
    assert re.match(r"^total time: .+ for the budget of \d+ iterations", lines[1])
    assert re.match(r"^memory: about \d+ MB$", lines[2])
    return lines


def test_flash_estimate_times_a_flash_problem(tmp_path, capsys):
    flash, no_flash = _flash_pair(tmp_path)
    assert cli.run(["flash", flash, "--no-flash", no_flash, "--estimate", *SMALL]) == 0  # the real timing
    lines = _three_lines(capsys.readouterr().out, "56x40")
    assert "budget of 600 iterations" in lines[1]  # the flash preset's
    assert not list(tmp_path.glob("*_restored*"))


def test_flash_synthetic_problem_has_a_second_photo():
    p = estimate.synthetic_problem("flash", 3, 1, (32, 48))
    assert p.task == "flash" and p.size == (32, 48)
    assert p.code_image is not None and p.code_image.shape == p.observed.shape  # two photos of one size


def test_preimage_estimate_times_the_runs_own_classifier(tmp_path, capsys):
    photo = _write_photo(tmp_path, (64, 64))
    weights = _weights(tmp_path / "w.pth")
    argv = ["preimage", photo, "--weights", weights, "--layer", "relu2", "--estimate", *SMALL]
    assert cli.run(argv) == 0  # the real timing, on a target made by this classifier
    lines = _three_lines(capsys.readouterr().out, "64x64")
    assert "budget of 3000 iterations" in lines[1]  # the pre-image preset's


def test_preimage_timing_uses_the_weights_layer_and_file(tmp_path):
    from rwgui.core.operators import Features

    weights = _weights(tmp_path / "w.pth")
    params = {"weights": weights, "layer": "relu2"}
    p = make_problem("preimage", _noisy((64, 64)), task_params=params)
    timer = BuildingTimer(1e-6)
    e = estimate.estimate_run(p, preset("preimage", prior_params=TINY | {"num_scales": 2}), timer=timer)
    built = timer.problems[0]
    assert isinstance(built.operator, Features) and built.operator.net.layer == "features.4"  # relu2, the run's
    assert built.observed.shape[1] == 8  # the classifier's features, not the photo
    assert e.memory_mb is not None
    weights_mb = sum(t.numel() * 4 for t in p.operator.parameters()) / 2**20
    assert memory.operator_memory(p.operator, 3).bytes_at((64, 64)) / 2**20 > weights_mb  # weights + saved
    assert memory.operator_memory(make_problem("denoise", _noisy()).operator, 3).bytes_at((64, 64)) == 0
    cfg = preset("preimage", task_params=params)
    key = estimate._network_key(cfg, "preimage", 3)
    assert key != estimate._network_key(preset("preimage", task_params={**params, "layer": "relu5"}), "preimage", 3)
    _weights(tmp_path / "w.pth", widths=(16, 16, 16, 16, 16))  # another network under the same name
    import os

    os.utime(weights, ns=(1, 1))  # a different time too, whatever the file system's resolution
    assert estimate._network_key(cfg, "preimage", 3) != key


def test_preimage_time_budget_keeps_the_photos_size_and_sets_iterations(tmp_path):
    weights = _weights(tmp_path / "w.pth")
    p = make_problem("preimage", _noisy((96, 96)), task_params={"weights": weights, "layer": "relu2"})
    cfg = preset("preimage")
    plan = estimate.plan_time_budget(p, cfg, 60.0, timer=BuildingTimer(1.0 / (96 * 96)))  # 1 s a step at 96²
    assert plan.working.mode == "full" and plan.working.size == (96, 96)  # no downscale: the classifier's input
    assert plan.iterations < cfg.iterations and plan.reduced
    assert "classifier's input" in plan.message and "downscaled" not in plan.message
    estimate.clear_cache()
    preview = estimate.plan_preview(p, cfg, timer=BuildingTimer(0.1 / (96 * 96)))
    assert preview.working.size == (96, 96) and preview.iterations * preview.step_seconds < 60


def test_preimage_time_budget_from_the_cli_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(estimate, "time_steps", BuildingTimer(0.5 / (64 * 64)))
    photo = _write_photo(tmp_path, (64, 64))
    weights = _weights(tmp_path / "w.pth")
    argv = ["preimage", photo, "--weights", weights, "--layer", "relu2", "--estimate", "--time-budget", "1"]
    assert cli.run(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[3].startswith("time budget: full size, 64x64 (the pre-image is the classifier")
    assert re.match(r"^total time: .+ for the budget of \d+ iterations", lines[1])


def test_preimage_time_budget_refuses_the_downscale_memory_would_need(tmp_path):
    from rwgui.core.errors import ConfigError
    from rwgui.core.working_size import Working, WorkingPlan

    weights = _weights(tmp_path / "w.pth")
    p = make_problem("preimage", _noisy((96, 96)), task_params={"weights": weights, "layer": "relu2"})
    plan = WorkingPlan(False, (96, 96), "preimage", 500.0, 400.0, (64, 64), None, None, 64, "96x96 does not fit")
    args = cli.build_parser().parse_args(["preimage", _write_photo(tmp_path), "--time-budget", "1"])
    small = Working("downscale", "preimage", (96, 96), (64, 64))
    with pytest.raises(ConfigError, match="keeps the preimage task at the photo's size"):
        cli.fit_to_time(args, p, preset("preimage"), small, plan)


def test_flash_time_budget_downscales_both_photos_and_writes_the_full_size(tmp_path, monkeypatch, capsys):
    import json

    timer = BuildingTimer(10.0 / (40 * 56))  # 10 s a step at the photos' size: the budget downscales
    monkeypatch.setattr(estimate, "time_steps", timer)
    flash, no_flash = _flash_pair(tmp_path)
    out, report = tmp_path / "out.png", tmp_path / "r.json"
    argv = ["flash", flash, "--no-flash", no_flash, "-o", str(out), "--report", str(report), "--quiet"]
    assert cli.run([*argv, "--time-budget", "0.5", *SMALL]) == 0
    err = capsys.readouterr().err
    assert "downscaled to" in err and "upscaled back to 56x40" in err
    assert all(p.task == "flash" and p.code_image is not None for p in timer.problems)
    data = json.loads(report.read_text())
    assert data["time_budget"]["reduced"] and data["working_size"]["upscaled"]
    assert data["working_size"]["mode"] == "downscale"
    assert imageio.read(str(out)).pixels.shape[:2] == (40, 56)  # the flash photo's full size


def test_studio_shows_an_estimate_for_flash_and_the_preimage(qtbot, monkeypatch, make_config, tmp_path):
    from rwgui.gui.main_window import MainWindow

    timer = BuildingTimer(1e-6)
    monkeypatch.setattr(estimate, "time_steps", timer)
    win = MainWindow(sample_size=64)
    qtbot.addWidget(win)
    win.show()
    label = win.settings_panel.start_area.estimate_label
    win.settings_panel.set_task("flash")  # the sample brings its no-flash photo
    win.settings_panel.set_config(make_config("flash"))
    qtbot.waitUntil(lambda: "s/step" in label.text(), timeout=20000)
    assert any(p.task == "flash" for p in timer.problems)
    weights = _weights(tmp_path / "w.pth")
    win.set_classifier_weights(weights)
    win.settings_panel.set_task("preimage")
    cfg = make_config("preimage", prior_params=TINY | {"num_scales": 2}, task_params={"weights": weights})
    win.settings_panel.set_config(cfg.replace(task_params={"weights": weights, "layer": "relu2"}))
    qtbot.waitUntil(lambda: any(p.task == "preimage" for p in timer.problems), timeout=20000)
    qtbot.waitUntil(lambda: "s/step" in label.text(), timeout=20000)
    assert "No estimate" not in label.text()


def test_estimate_piped_into_a_reader_that_stops_early_ends_without_a_traceback(tmp_path):
    """`rwgui-restore ... --estimate | head -1`: the reader is gone before the other lines; the command must say
    nothing more (no BrokenPipeError traceback on the terminal)."""
    import subprocess
    import sys

    photo = _write_photo(tmp_path)
    cmd = [sys.executable, "-c", "from rwgui.cli import main; main()", "denoise", photo, "--estimate",
           "--iterations", "50", "--channels-down", "8", "--channels-up", "8", "--device", "cpu"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader leaves before the estimate is printed
    err = proc.stderr.read().decode()
    proc.wait(timeout=300)
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert proc.returncode == 1
