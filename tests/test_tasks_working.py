"""Working sizes keep what a problem was built from (the deblur kernel, the no-flash photo, the pre-image's
weights); the Deep Decoder's denoising preset; the quality benchmark's prior comparison."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rwgui import cli
from rwgui.bench import quality
from rwgui.core import imageio
from rwgui.core.classifiers import alexnet
from rwgui.core.config import PRESETS, RunConfig, preset
from rwgui.core.device import precision_dtype
from rwgui.core.engine import StepReport
from rwgui.core.kernels import gaussian_kernel, motion_kernel
from rwgui.core.memory import MemoryModel
from rwgui.core.problems import blur, deblur_problem, flash_pair, flash_truth, make_problem
from rwgui.core.resample import crop, downscale
from rwgui.core.tasks import presets_table
from rwgui.core.working_size import Working, working_problem

#: A small prior, so that each run takes seconds.
SMALL = ["--num-scales", "3", "--channels-down", "8", "--channels-up", "8", "--channels-skip", "4"]
SMALL += ["--filter-size-down", "3", "--filter-size-up", "3"]


def _photo(h: int = 96, w: int = 96) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    smooth = np.stack([np.sin(xx / 7), np.cos(yy / 9), np.sin((xx + yy) / 11)], axis=2) * 0.3 + 0.5
    return np.clip(smooth + rng.normal(0, 0.02, smooth.shape), 0, 1).astype(np.float32)


def _weights(path: Path) -> str:
    torch.manual_seed(0)
    torch.save(alexnet((8, 8, 8, 8, 8), hidden=16, classes=10).state_dict(), path)
    return str(path)


def _kernel(problem) -> np.ndarray:
    return torch.flip(problem.operator.kernel[0, 0], dims=(0, 1)).numpy()


# ----- working_problem keeps the task's parameters and second photo -------------------------------------------


def test_downscaled_deblur_scales_the_kernel_with_the_photo() -> None:
    img = _photo()
    gauss = make_problem("deblur", blur(img, gaussian_kernel(2.0)), ground_truth=img, task_params={"sigma": 2.0})
    small = working_problem(gauss, Working("downscale", "deblur", (96, 96), (48, 48)))
    assert small.size == (48, 48) and small.ground_truth is not None and small.ground_truth.shape[2:] == (48, 48)
    assert np.allclose(_kernel(small), gaussian_kernel(1.0), atol=1e-6)  # sigma 2 px on the photo, 1 px at half
    assert small.task_params is not None and small.task_params["sigma"] == 2.0  # the photo's kernel, as given

    motion = make_problem("deblur", img, task_params={"kernel": "motion", "length": 12.0, "angle": 30.0})
    small = working_problem(motion, Working("downscale", "deblur", (96, 96), (48, 48)))
    assert np.allclose(_kernel(small), motion_kernel(6.0, 30.0), atol=1e-6)

    given = deblur_problem(img, gaussian_kernel(2.0))  # built from a kernel array: the operator's own is used
    small = working_problem(given, Working("downscale", "deblur", (96, 96), (48, 48)))
    assert small.size == (48, 48) and _kernel(small).shape[0] < gaussian_kernel(2.0).shape[0]
    assert _kernel(small).sum() == pytest.approx(1.0, abs=1e-5)


def test_cropped_deblur_keeps_the_kernel() -> None:
    img = _photo()
    p = make_problem("deblur", img, task_params={"kernel": "motion", "length": 9.0, "angle": 45.0})
    box = (10, 58, 20, 76)
    c = working_problem(p, Working("crop", "deblur", (96, 96), (48, 56), box, 0))
    assert c.size == (48, 56) and np.allclose(_kernel(c), motion_kernel(9.0, 45.0))
    assert np.allclose(c.observed[0].permute(1, 2, 0).numpy(), crop(img, box), atol=1e-6)


def test_flash_working_sizes_resize_both_photos_alike() -> None:
    img = _photo(96, 80)
    flash, no_flash = flash_pair(img)
    p = make_problem("flash", flash, second=no_flash, ground_truth=flash_truth(img))
    small = working_problem(p, Working("downscale", "flash", (96, 80), (48, 40)))
    assert small.size == (48, 40) and small.code_image is not None
    assert np.allclose(small.code_image[0].permute(1, 2, 0).numpy(), downscale(flash, (48, 40)), atol=1e-6)
    assert np.allclose(small.observed[0].permute(1, 2, 0).numpy(), downscale(no_flash, (48, 40)), atol=1e-6)

    box = (8, 56, 16, 64)
    c = working_problem(p, Working("crop", "flash", (96, 80), (48, 48), box, 0))
    assert c.size == (48, 48) and c.code_image is not None and c.ground_truth is not None
    assert np.allclose(c.code_image[0].permute(1, 2, 0).numpy(), crop(flash, box), atol=1e-6)
    assert np.allclose(c.observed[0].permute(1, 2, 0).numpy(), crop(no_flash, box), atol=1e-6)


def test_preimage_working_sizes_keep_the_weights_and_layer(tmp_path: Path) -> None:
    weights = _weights(tmp_path / "tiny.pth")
    p = make_problem("preimage", _photo(), task_params={"weights": weights, "layer": "relu2"})
    small = working_problem(p, Working("downscale", "preimage", (96, 96), (64, 64)))
    assert small.size == (64, 64) and small.code_image is not None and small.code_image.shape[2:] == (64, 64)
    assert small.task_params is not None and small.task_params["layer"] == "relu2"
    with torch.no_grad():  # the observation is the classifier's features of the downscaled photo
        assert torch.allclose(small.operator(small.code_image), small.observed)
    c = working_problem(p, Working("crop", "preimage", (96, 96), (64, 64), (0, 64, 16, 80), 0))
    assert c.size == (64, 64) and c.task_params == p.task_params


def _budget_mb(argv: list[str]) -> float:
    """A memory budget (MB) that a 48x48 run of these settings fits and a 96x96 one does not."""
    cfg = cli.make_config(cli.build_parser().parse_args(argv), None)
    model = MemoryModel(cfg, 3, precision_dtype(cfg.speed.precision, torch.device("cpu")))
    lo, hi = model.estimate((48, 48)).total_bytes, model.estimate((96, 96)).total_bytes
    assert lo < hi
    return (lo + hi) / 2 / 2**20


@pytest.mark.parametrize("task", ["deblur", "flash", "preimage"])
def test_cli_runs_each_task_at_a_downscaled_working_size(task: str, tmp_path: Path) -> None:
    img = _photo()
    flash, no_flash = flash_pair(img)
    photo = tmp_path / "photo.png"
    imageio.write(photo, flash if task == "flash" else blur(img, gaussian_kernel(2.0)) if task == "deblur" else img)
    extra = {
        "deblur": ["--kernel", "gaussian:2"],
        "flash": ["--no-flash", str(tmp_path / "noflash.png")],
        "preimage": ["--weights", _weights(tmp_path / "tiny.pth"), "--layer", "relu2"],
    }[task]
    if task == "flash":
        imageio.write(tmp_path / "noflash.png", no_flash)
    argv = [task, str(photo), *extra, *SMALL, "--iterations", "3"]
    out, report = tmp_path / "out.png", tmp_path / "report.json"
    budget = _budget_mb(argv)
    rc = cli.run(
        [*argv, "-o", str(out), "--report", str(report), "--quiet", "--memory-budget", f"{budget:.3f}"]
        + ["--working-size", "downscale"]
    )
    assert rc == 0
    ws = json.loads(report.read_text())["working_size"]
    assert ws["mode"] == "downscale" and ws["full_size"] == [96, 96]
    h, w, _ = imageio.read(out).pixels.shape
    assert [h, w] == ws["size"] and 48 <= h < 96 and h == w  # written at the working size


# ----- the Deep Decoder's preset --------------------------------------------------------------------------------


def test_the_deep_decoder_denoising_preset_has_no_input_jitter() -> None:
    cfg = preset("denoise-dd")
    assert cfg.prior == "deep-decoder" and cfg.reg_noise_std == 0 and cfg.task == "denoise"
    assert RunConfig.from_dict(cfg.to_dict()) == cfg  # validates and round-trips
    assert "denoise-dd" in presets_table() and "denoise-dd" in cli.build_parser().format_help()
    assert [n for n, p in PRESETS.items() if p["task"] == "denoise"][:2] == ["denoise", "denoise-dd"]  # the combo


def test_the_studio_offers_the_deep_decoder_preset(qtbot) -> None:
    from rwgui.gui.settings_dock import SettingsPanel

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    combo = panel.preset_combo
    assert panel.config().preset == "denoise" and combo.findText("denoise-dd") >= 0
    combo.setCurrentIndex(combo.findText("denoise-dd"))
    combo.activated.emit(combo.currentIndex())  # as when the person picks it
    cfg = panel.config()
    assert cfg.preset == "denoise-dd" and cfg.prior == "deep-decoder" and cfg.reg_noise_std == 0


def test_the_cli_says_when_the_deep_decoder_keeps_the_input_jitter(tmp_path: Path) -> None:
    def note(*flags: str) -> str | None:
        args = cli.build_parser().parse_args(["denoise", "p.png", *flags])
        return cli.prior_note(args, cli.make_config(args, None))

    said = note("--prior", "deep-decoder")
    assert said is not None and "--reg-noise-std 0" in said and "denoise-dd" in said
    assert cli.make_config(cli.build_parser().parse_args(["denoise", "p.png", "--prior", "deep-decoder"]), None)
    assert note("--prior", "deep-decoder", "--reg-noise-std", "0") is None
    assert note("--preset", "denoise-dd") is None and note() is None
    # the setting itself is the person's: the note changes nothing
    args = cli.build_parser().parse_args(["denoise", "p.png", "--prior", "deep-decoder"])
    assert cli.make_config(args, None).reg_noise_std == pytest.approx(1 / 30)


# ----- the quality benchmark --------------------------------------------------------------------------------


def test_quality_bench_compares_the_deep_decoder_with_the_skip_network(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("skimage")
    quality.main(
        ["--tasks", "denoise", "--images", "astronaut", "--priors", "skip,deep-decoder", "--sigma", "50"]
        + ["--size", "32", "--iterations", "5"]
    )
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| denoise (σ=50)")]
    assert len(rows) == 2
    assert "denoise, skip" in rows[0] and "denoise-dd, deep-decoder (no jitter)" in rows[1]


def test_quality_bench_reads_the_rules_pick_where_it_would_have_stopped() -> None:
    cfg = preset("denoise", stop_params={"window": 2, "patience": 2})
    signals = [None, 3.0, 2.0, 2.5, 2.6, 1.0]  # the minimum at 3, then two steps without a new one: stop at 5

    def rep(i: int, s: float | None) -> StepReport:
        return StepReport(i, 0.0, {}, None, None, s, None, 0.0)

    reps = [rep(i + 1, s) for i, s in enumerate(signals)]
    assert quality.rule_pick(cfg, reps) == (5, 3)
    assert quality.rule_pick(cfg, reps[:4]) == (None, 3)  # never fired: the last pick
    assert quality.preset_for("denoise", "deep-decoder") == "denoise-dd"
    assert quality.preset_for("denoise", "resnet") == "denoise" and quality.preset_for("jpeg", "") == "jpeg"
    assert quality.run_config("jpeg", "", 0, None, None).iterations == PRESETS["jpeg"]["iterations"]
