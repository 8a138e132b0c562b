"""The CLI and the studio write the same pixels for the same photo, mask and settings.

Both build the Problem with one helper, run the same engine and write through one writer; this test holds
them to it end to end: ``rwgui-restore`` to one PNG, the real window (open, load the mask, import the same
settings JSON, Start, Save result) to another, compared exactly. It caught the two running with different CPU
thread counts (the studio left a core for the window, the CLI took all), which changes torch's floating-point
sums and, amplified by the first iterations, the picture; "auto" threads now mean the same count in both.
"""

from __future__ import annotations

import numpy as np
import pytest

from rwgui.core import imageio
from rwgui.core.config import RunConfig
from rwgui.core.samples import load_sample, scribble_mask

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

SIDE = 40
ITERATIONS = 12


def _cli(args: list[str]) -> None:
    from rwgui.cli import main

    with pytest.raises(SystemExit) as ex:
        main(args)
    assert ex.value.code == 0


@pytest.mark.parametrize("task", ["denoise", "inpaint"])
def test_cli_and_studio_write_identical_pixels(qtbot, tmp_path, make_config, task):
    from PySide6.QtCore import QSettings

    from rwgui.gui.main_window import MainWindow

    sample = load_sample("denoise", size=SIDE)  # a real noisy photo, saved as an ordinary 8-bit PNG
    photo = tmp_path / "photo.png"
    imageio.write(photo, sample.observed)
    cfg_path = tmp_path / "settings.json"
    make_config(task, ITERATIONS, seed=3).save(cfg_path)
    extra: list[str] = []
    mask_path = tmp_path / "mask.png"
    if task == "inpaint":
        imageio.write_mask(mask_path, scribble_mask((SIDE, SIDE), seed=1))
        extra = ["--mask", str(mask_path)]

    cli_out = tmp_path / "cli.png"
    _cli([task, str(photo), "-o", str(cli_out), "--config", str(cfg_path), "--quiet", *extra])

    qs = QSettings(str(tmp_path / "studio.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=qs)
    qtbot.addWidget(win)
    win.settings_panel.set_config(RunConfig.load(cfg_path))
    assert win.open_file(photo)
    win.settings_panel.set_config(RunConfig.load(cfg_path))  # opening a photo may re-suggest a preset
    if task == "inpaint":
        assert win.load_mask(mask_path)
    assert win.settings_panel.config() == RunConfig.load(cfg_path)
    with qtbot.waitSignal(win.controller.run_finished, timeout=60000):
        assert win.start() is not None
    qtbot.waitUntil(lambda: win.history.result_key() is not None, timeout=10000)
    studio_out = tmp_path / "studio.png"
    assert win.save_result(studio_out), win.last_error

    a, b = imageio.read(cli_out), imageio.read(studio_out)
    assert a.meta.bit_depth == b.meta.bit_depth == 8
    assert a.pixels.shape == b.pixels.shape == (SIDE, SIDE, 3)
    np.testing.assert_array_equal(a.pixels, b.pixels)


def test_one_ground_truth_rule_converts_channels_and_refuses_another_size():
    """The rule both the CLI and the studio apply (they build Problems with the same helper)."""
    from rwgui.core.errors import ConfigError
    from rwgui.core.problems import make_problem
    from rwgui.core.vocabulary import Task

    rng = np.random.default_rng(0)
    rgb, gray = rng.random((16, 16, 3)).astype(np.float32), rng.random((16, 16, 1)).astype(np.float32)
    p = make_problem("denoise", rgb, ground_truth=gray)
    assert p.task is Task.DENOISE and tuple(p.ground_truth.shape) == (1, 3, 16, 16)
    assert float(p.ground_truth[0, 1, 3, 4]) == pytest.approx(float(gray[3, 4, 0]))
    p = make_problem("denoise", gray, ground_truth=rgb)
    assert tuple(p.ground_truth.shape) == (1, 1, 16, 16)
    assert float(p.ground_truth[0, 0, 3, 4]) == pytest.approx(float(rgb[3, 4].mean()))
    with pytest.raises(ConfigError, match="32x32"):
        make_problem("sr", rgb, factor=2, ground_truth=rgb)  # the photo's size given for a x2 result
    assert make_problem("sr", rgb, factor=2, ground_truth=np.zeros((32, 32, 3), np.float32)).size == (32, 32)
    with pytest.raises(ConfigError):
        make_problem("colourise", rgb)  # not a task
