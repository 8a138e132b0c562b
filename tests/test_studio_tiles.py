"""The studio's working-size offer of tiles: a denoising photo too large for the memory budget runs at full
resolution on overlapping tiles, the progress counts over the whole photo, and Save result writes the blend at
the photo's full size (the core's tiles are tested in test_tiles.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rwgui.core import imageio
from rwgui.core.device import precision_dtype
from rwgui.core.memory import MemoryModel
from rwgui.core.tiles import run_tiled
from rwgui.core.working_size import plan_working_size
from rwgui.gui.document import build_problem

# The offscreen platform cannot resize windows to their size hints and says so on every show(); harmless.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def _between(cfg, small, big):
    """A budget (bytes) that ``small`` fits and ``big`` does not."""
    m = MemoryModel(cfg, 3, precision_dtype(cfg.speed.precision, torch.device("cpu")))
    lo, hi = m.estimate(small).total_bytes, m.estimate(big).total_bytes
    assert lo < hi
    return (lo + hi) // 2


def test_the_offer_lists_tiles_with_the_work_for_denoising_and_sr_only(qtbot, make_config):
    from rwgui.gui.working import working_size_box

    for task in ("denoise", "sr"):
        cfg = make_config(task)
        plan = plan_working_size(cfg, (96, 96), 3, task, budget_bytes=_between(cfg, (48, 48), (96, 96)))
        assert plan.tiles is not None
        box, choices = working_size_box(None, plan, iterations=50)
        by_choice = {c: b for b, c in choices.items()}
        assert "tiles" in by_choice and "Tiles (full resolution" in by_choice["tiles"].text()
        assert box.defaultButton() is by_choice["tiles"]  # full resolution first, as the 'auto' working size
        info = box.informativeText()
        n = plan.tiles.count
        assert plan.tiles.describe() in info and f"{n} tiles × 50 iterations = {n * 50} steps" in info
        assert "unknown until the first tile" in info and "96×96" in info
        box.deleteLater()


def test_studio_runs_on_tiles_and_saves_the_full_photo(qtbot, window, make_config, tmp_path, monkeypatch):
    from rwgui.gui.working import working_size_box

    win = window
    cfg = make_config("denoise", iterations=4)
    win.settings_panel.set_config(cfg)
    win.working_size.memory_budget = _between(cfg, (40, 40), (64, 64))
    offered = []

    def choose(plan):
        box, choices = working_size_box(None, plan, win.working_size.iterations)
        offered.append((plan, sorted(choices.values(), key=str)))
        box.deleteLater()
        return "tiles"

    monkeypatch.setattr(win.working_size, "choose_working_size", choose)
    tiles_seen, frames = [], []
    win.controller.tile_started.connect(lambda k, n: tiles_seen.append((k, n)))
    win.controller.frame_ready.connect(lambda it, rgba: frames.append(rgba.shape))
    with qtbot.waitSignal(win.controller.run_finished, timeout=120000) as blocker:
        assert win.start() is not None
    summary = blocker.args[0]
    plan, choices = offered[0]
    assert choices == [None, "downscale", "tiles"]  # None: Cancel
    grid = plan.tiles
    n = grid.count
    assert n >= 2 and win.working.mode == "tiles" and win.working.tiles == grid
    assert tiles_seen == [(k, n) for k in range(n)]  # tile k of n, in order
    assert summary.reason == "budget" and summary.total == summary.iterations == 4 * n
    assert win.status.iteration.text() == f"Iteration {4 * n} / {4 * n}"  # the whole photo's progress
    assert frames and all(s[:2] == (64, 64) for s in frames)  # each tile's frame placed in the whole photo
    assert win.recon_view.image().shape[:2] == (64, 64)
    assert f"tile {n} of {n}" in win.recon_view.title()

    out = tmp_path / "tiled.png"
    assert win.save_result(out)
    back, photo = imageio.read(out).pixels, win.photo.pixels
    assert back.shape == photo.shape == (64, 64, 3)
    # what was saved is the core's blend of the same tiles (the CPU's runs repeat exactly with the same seed)
    expected = run_tiled(build_problem(win.photo, "denoise", cfg.factor, None), win.session.run_config, grid).image
    assert np.abs(back - expected).max() <= 1 / 255 + 1e-6
    assert win.last_error is None


def test_the_lab_is_not_offered_tiles(qtbot, window, make_config, monkeypatch):
    """The Lab compares variants on one problem; a run on tiles is many, so its offer leaves tiles out."""
    win = window
    cfg = make_config("denoise", iterations=4)
    win.settings_panel.set_config(cfg)
    win.working_size.memory_budget = _between(cfg, (40, 40), (64, 64))
    offered = []
    monkeypatch.setattr(win.working_size, "choose_working_size", lambda plan: offered.append(plan) or None)
    win.lab.action.trigger()
    assert offered and offered[0].tiles is None and offered[0].downscale_size is not None
