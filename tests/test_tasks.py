"""The tasks beyond denoising, super-resolution and inpainting: JPEG artefacts, deblurring, flash / no-flash,
real (unknown-level) noise and the natural pre-image, each from the CLI and the studio, each measured against
the damage the test made itself."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from rwgui import cli
from rwgui.core import imageio
from rwgui.core.classifiers import alexnet, load_classifier
from rwgui.core.config import PRESETS, preset
from rwgui.core.errors import KernelError, WeightsError
from rwgui.core.kernels import gaussian_kernel, make_kernel, motion_kernel, parse_kernel_spec
from rwgui.core.metrics import psnr
from rwgui.core.operators import Blur
from rwgui.core.problems import add_gaussian_noise, blur, flash_pair, flash_truth, jpeg_compress, make_problem
from rwgui.core.samples import load_sample
from rwgui.core.tasks import TASK_SPECS
from rwgui.core.vocabulary import Task

#: A small prior, so that each run takes seconds: the measures below improve with it as with the presets' nets.
SMALL = ["--num-scales", "3", "--channels-down", "16", "--channels-up", "16", "--channels-skip", "4"]
SMALL += ["--filter-size-down", "3", "--filter-size-up", "3"]
SMALL_PARAMS = {
    "num_scales": 3,
    "channels_down": (16,),
    "channels_up": (16,),
    "channels_skip": (4,),
    "filter_size_down": (3,),
    "filter_size_up": (3,),
}


def _photo(size: int = 32, name: str = "astronaut") -> np.ndarray:
    return load_sample("denoise", name, size=size).ground_truth


def _save(path: Path, img: np.ndarray) -> str:
    import cv2

    u8 = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    assert cv2.imwrite(str(path), u8[..., ::-1] if u8.ndim == 3 and u8.shape[2] == 3 else u8)
    return str(path)


def _grad_corr(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two images' gradient magnitudes (grey): how much they share their structure."""

    def mag(x: np.ndarray) -> np.ndarray:
        g = x.mean(axis=2)
        return np.hypot(np.diff(g, axis=0)[:, :-1], np.diff(g, axis=1)[:-1, :]).ravel()

    return float(np.corrcoef(mag(a), mag(b))[0, 1])


def _run_cli(tmp_path: Path, argv: list[str]) -> dict:
    report = tmp_path / "report.json"
    assert cli.run([*argv, "-o", str(tmp_path / "out.png"), "--report", str(report), "--quiet"]) == 0
    return json.loads(report.read_text())


# ----- JPEG ------------------------------------------------------------------------------------------------


def test_jpeg_from_the_cli_beats_the_compressed_photo(tmp_path: Path) -> None:
    gt = _photo()
    src = _save(tmp_path / "q10.png", jpeg_compress(gt, 10))  # PNG: the artefacts are kept exactly
    rep = _run_cli(
        tmp_path,
        ["jpeg", src, "--ground-truth", _save(tmp_path / "gt.png", gt), *SMALL, "--iterations", "300", "--lr", "0.03"]
        + ["--stop", "fixed"],
    )
    assert rep["config"]["task"] == "jpeg"
    assert rep["stop"]["psnr_average"] > rep["input_psnr"] + 0.2


# ----- deblurring ------------------------------------------------------------------------------------------


def test_deblur_from_the_cli_beats_the_blurred_photo(tmp_path: Path) -> None:
    gt = _photo()
    src = _save(tmp_path / "blurred.png", blur(gt, gaussian_kernel(2.0)))
    rep = _run_cli(
        tmp_path,
        ["deblur", src, "--kernel", "gaussian:2", "--ground-truth", _save(tmp_path / "gt.png", gt), *SMALL]
        + ["--iterations", "300", "--lr", "0.03", "--stop", "fixed"],
    )
    assert rep["config"]["task_params"]["sigma"] == 2.0
    assert rep["stop"]["psnr_average"] > rep["input_psnr"] + 0.3


def test_the_blur_does_not_wrap_around() -> None:
    x = torch.zeros(1, 1, 16, 16)
    x[0, 0, 8, 0] = 1.0  # a bright spot on the left edge
    y = Blur(gaussian_kernel(2.0), 1)(x)
    assert y[0, 0, 8, :3].sum() > 0.05
    assert float(y[0, 0, :, -4:].abs().max()) == 0.0  # nothing reaches the right edge
    assert y.shape == x.shape


def test_kernel_specs_parse_and_bad_ones_are_refused(tmp_path: Path) -> None:
    assert parse_kernel_spec("gaussian:1.5") == {"kernel": "gaussian", "sigma": 1.5}
    assert parse_kernel_spec("motion:7,45") == {"kernel": "motion", "length": 7.0, "angle": 45.0}
    k = np.zeros((4, 6), np.uint8)
    k[1:3, 1:5] = 255
    path = _save(tmp_path / "k.png", np.repeat(k[..., None], 3, axis=2).astype(np.float32) / 255)
    params = parse_kernel_spec(path)
    kernel = make_kernel(params)
    assert kernel.shape[0] % 2 == 1 and kernel.shape[1] % 2 == 1
    assert abs(float(kernel.sum()) - 1.0) < 1e-5
    for kern in (gaussian_kernel(2.0), motion_kernel(9, 30)):
        assert abs(float(kern.sum()) - 1.0) < 1e-5 and kern.min() >= 0
    for bad in (
        "gaussian:",
        "gaussian:x",
        "gaussian:-1",
        "motion:5",
        "motion:0,10",
        "boxcar:3",
        "",
        str(tmp_path / "missing.png"),
    ):
        with pytest.raises(KernelError):
            parse_kernel_spec(bad)


def test_a_bad_kernel_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _save(tmp_path / "p.png", _photo())
    with pytest.raises(SystemExit) as exc:
        cli.main(["deblur", src, "--kernel", "motion:5", "-o", str(tmp_path / "o.png")])
    assert exc.value.code == 2
    assert "motion:LENGTH,ANGLE" in capsys.readouterr().err


# ----- flash / no-flash ------------------------------------------------------------------------------------


def test_flash_from_the_cli_keeps_the_flash_detail_and_the_no_flash_light(tmp_path: Path) -> None:
    img = _photo()
    flash, no_flash = flash_pair(img, seed=0)
    truth = flash_truth(img)
    rep = _run_cli(
        tmp_path,
        ["flash", _save(tmp_path / "flash.png", flash), "--no-flash", _save(tmp_path / "noflash.png", no_flash)]
        + ["--ground-truth", _save(tmp_path / "gt.png", truth), *SMALL, "--iterations", "200"],
    )
    out = imageio.read(tmp_path / "out.png").pixels
    assert rep["stop"]["psnr_average"] > rep["input_psnr"] + 2.0  # the no-flash light, without its noise
    assert _grad_corr(out, flash) > _grad_corr(no_flash, flash) + 0.1  # the flash photo's structure


def test_flash_photos_of_different_sizes_are_refused(tmp_path: Path) -> None:
    from rwgui.core.errors import ConfigError

    with pytest.raises(ConfigError, match="same size"):
        make_problem("flash", _photo(32), second=_photo(40))
    with pytest.raises(ConfigError, match="--no-flash"):
        cli.run(["flash", _save(tmp_path / "f.png", _photo()), "-o", str(tmp_path / "o.png")])


# ----- real noise ------------------------------------------------------------------------------------------


def test_real_noise_estimates_the_level_and_restores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = _photo(48)
    noisy = add_gaussian_noise(gt, 25 / 255, 0)
    problem = make_problem("real-noise", noisy)
    assert problem.noise_sigma is not None and abs(problem.noise_sigma * 255 - 25) < 6
    report = tmp_path / "r.json"
    argv = ["real-noise", _save(tmp_path / "n.png", noisy), "--ground-truth", _save(tmp_path / "gt.png", gt)]
    argv += [*SMALL, "--iterations", "250", "--lr", "0.02", "-o", str(tmp_path / "o.png"), "--report", str(report)]
    assert cli.run(argv) == 0
    assert "estimated noise" in capsys.readouterr().err
    rep = json.loads(report.read_text())
    assert rep["config"]["stop"] == "es-wmv"  # the stopping rule picks the result: no sigma is asked for
    assert abs(rep["noise_sigma"] * 255 - 25) < 6
    assert rep["stop"]["psnr_average"] > rep["input_psnr"] + 2.0


# ----- pre-image -------------------------------------------------------------------------------------------


def _tiny_weights(path: Path) -> str:
    torch.manual_seed(0)
    net = alexnet((8, 8, 8, 8, 8), hidden=16, classes=10)
    torch.save(net.state_dict(), path)
    return str(path)


def test_preimage_lowers_the_feature_distance_from_the_cli(tmp_path: Path) -> None:
    weights = _tiny_weights(tmp_path / "tiny.pth")
    rep = _run_cli(
        tmp_path,
        ["preimage", _save(tmp_path / "p.png", _photo(48)), "--weights", weights, "--layer", "relu2", *SMALL]
        + ["--iterations", "150", "--lr", "0.01"],
    )
    first, last = rep["feature_distance"]["first"], rep["feature_distance"]["last"]
    assert last < 0.5 * first


def test_preimage_maximises_a_class(tmp_path: Path) -> None:
    from rwgui.core.engine import Engine

    weights = _tiny_weights(tmp_path / "tiny.pth")
    problem = make_problem("preimage", _photo(64), task_params={"weights": weights, "class_index": 3})
    cfg = preset("preimage", iterations=60, lr=0.01, prior_params=SMALL_PARAMS, task_params={"weights": weights})
    reports = Engine(problem, cfg).run().reports
    assert reports[-1].loss_terms["data"] < reports[0].loss_terms["data"]


def test_preimage_without_weights_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _save(tmp_path / "p.png", _photo())
    with pytest.raises(SystemExit) as exc:
        cli.main(["preimage", src, "-o", str(tmp_path / "o.png")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--weights PATH" in err[0]


class _Exploit:
    def __reduce__(self) -> tuple:
        return (os.system, ("echo pwned > " + str(Path(os.environ.get("RWGUI_EXPLOIT_MARK", "/nonexistent"))),))


# torch warns that the crafted file's pickle protocol is not its own default: expected, it is a hostile file
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_weights_are_loaded_with_weights_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mark = tmp_path / "mark"
    monkeypatch.setenv("RWGUI_EXPLOIT_MARK", str(mark))
    bad = tmp_path / "evil.pth"
    with open(bad, "wb") as f:
        pickle.dump({"features.0.weight": _Exploit()}, f)
    with pytest.raises(WeightsError, match="plain weights"):
        load_classifier(bad)
    assert not mark.exists()
    net = load_classifier(_tiny_weights(tmp_path / "ok.pth"))
    assert net.arch == "alexnet"


# ----- the presets table -----------------------------------------------------------------------------------


def test_presets_prints_every_preset_without_task_or_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["--presets"]) == 0
    out = capsys.readouterr().out
    for name in PRESETS:
        assert any(line.startswith(name + " ") for line in out.splitlines()), name
    for task in Task:
        assert any(p["task"] == task for p in PRESETS.values()), f"no preset for {task}"
    assert set(TASK_SPECS) == set(Task)


# ----- the studio ------------------------------------------------------------------------------------------


@pytest.fixture
def studio(qtbot):
    from rwgui.gui.main_window import MainWindow

    win = MainWindow(sample_size=32)
    qtbot.addWidget(win)
    win.show()
    return win


def _studio_run(qtbot, win, task: str, iterations: int, **overrides):
    """Choose ``task`` as the person would (the sample is damaged for it), shrink the prior, run to the end."""
    win.settings_panel.set_task(task)
    cfg = win.settings_panel.config()
    prior = {**SMALL_PARAMS} if cfg.prior == "skip" else {}
    if "stop" in overrides:
        overrides["stop_params"] = {}
    cfg = cfg.replace(iterations=iterations, prior_params=prior, device="cpu", **overrides)
    win.settings_panel.set_config(cfg)
    with qtbot.waitSignal(win.controller.run_finished, timeout=240_000) as fin:
        assert win.start() is not None, win.last_error
    assert win.last_error is None
    return fin.args[0]


def _gain(win) -> float:
    gt = win.photo.ground_truth
    return psnr(win.session.result_pixels(), gt) - psnr(win.photo.pixels, gt)


def test_every_task_is_in_the_studio_with_its_help(studio) -> None:
    combo = studio.settings_panel.task_combo
    assert [combo.itemData(i) for i in range(combo.count())] == list(TASK_SPECS)
    i = combo.findData(Task.PREIMAGE)
    assert not combo.model().item(i).isEnabled()  # no weights yet: disabled, and the tooltip says why
    assert "weights" in combo.itemData(i, 3)  # Qt.ToolTipRole


def test_jpeg_in_the_studio(qtbot, studio) -> None:
    _studio_run(qtbot, studio, "jpeg", 300, lr=0.03, stop="fixed")
    assert _gain(studio) > 0.2


def test_deblur_in_the_studio_uses_the_kernel_form(qtbot, studio) -> None:
    form = studio.settings_panel.task_form
    studio.settings_panel.set_task("deblur")
    form = studio.settings_panel.task_form
    assert [p.name for p in form.params()] == ["kernel", "sigma", "length", "angle", "kernel_file"]
    assert studio.settings_panel.config().task_params["sigma"] == 2.0
    _studio_run(qtbot, studio, "deblur", 300, lr=0.03, stop="fixed")
    assert _gain(studio) > 0.3


def test_real_noise_in_the_studio_shows_the_estimate(qtbot, studio) -> None:
    _studio_run(qtbot, studio, "real-noise", 200, lr=0.02)
    assert studio.noise_note is not None and "estimated noise" in studio.noise_note
    assert _gain(studio) > 2.0


def test_flash_in_the_studio_takes_the_no_flash_photo(qtbot, studio, tmp_path: Path) -> None:
    studio.settings_panel.set_task("flash")
    file_menu = studio.menuBar().actions()[0].menu()
    assert studio.acts.open_no_flash in file_menu.actions() and studio.acts.open_no_flash.isVisible()
    studio.settings_panel.set_task("denoise")
    assert not studio.acts.open_no_flash.isVisible()  # the second photo slot is the flash task's only
    studio.settings_panel.set_task("flash")
    img = _photo(32, "coffee")
    flash, no_flash = flash_pair(img, seed=1)
    assert studio.open_file(_save(tmp_path / "flash.png", flash))
    assert studio.open_no_flash(_save(tmp_path / "noflash.png", no_flash))
    assert studio.session.second_photo is not None
    _studio_run(qtbot, studio, "flash", 200)
    out = studio.session.result_pixels()
    truth = flash_truth(img)
    assert psnr(out, truth) > psnr(no_flash, truth) + 2.0
    assert _grad_corr(out, flash) > _grad_corr(no_flash, flash) + 0.1
    assert studio.open_no_flash(_save(tmp_path / "small.png", _photo(40)))
    studio.settings_panel.set_task("flash")
    assert studio.start() is None and "same size" in (studio.last_error or "")


def test_preimage_in_the_studio_after_weights(qtbot, studio, tmp_path: Path) -> None:
    weights = _tiny_weights(tmp_path / "tiny.pth")
    studio.set_classifier_weights(weights)
    combo = studio.settings_panel.task_combo
    assert combo.model().item(combo.findData(Task.PREIMAGE)).isEnabled()
    _studio_run(qtbot, studio, "preimage", 100, lr=0.01, task_params={"weights": weights, "layer": "relu2"})
    data = studio.curves.data.column("loss")
    assert data[-1] < 0.5 * data[0]
