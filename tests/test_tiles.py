"""Tiles: the grid covers the photo, the blend's weights sum to one, the seams do not show, the plan offers tiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rwgui.core.device import precision_dtype
from rwgui.core.engine import EventKind, RunControl
from rwgui.core.errors import WorkingSizeError
from rwgui.core.memory import MemoryModel
from rwgui.core.problems import add_gaussian_noise, denoise_problem, downsample, inpaint_problem, sr_problem
from rwgui.core.tiles import default_overlap, fit_tiles, run_tiled, seam_gradients, tile_grid, tiled_steps
from rwgui.core.vocabulary import StopReason
from rwgui.core.working_size import choose_working, plan_for_problem, to_full, working_problem

GRIDS = [
    # (result size, tile, overlap, SR factor)
    ((100, 130), (48, 48), 8, 1),
    ((64, 64), (32, 32), 16, 1),
    ((77, 200), (40, 64), 12, 1),
    ((50, 50), (64, 64), 8, 1),  # one tile
    ((96, 96), (32, 64), 6, 2),
    ((200, 76), (64, 64), 16, 4),
    ((256, 192), (96, 64), 24, 8),
]


def _smooth(h: int = 96, w: int = 96) -> np.ndarray:
    """A photo whose content has about the same gradient everywhere, so a seam is the only thing that can raise
    the gradient on some lines (a natural photo's detail would fall on some seams and not others)."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    return np.stack([0.3 + 0.4 * xx, 0.5 + 0.2 * np.sin(2 * np.pi * yy), 0.4 + 0.3 * xx * yy], -1).astype(np.float32)


@pytest.mark.parametrize(("size", "tile", "overlap", "factor"), GRIDS)
def test_the_blending_weights_sum_to_one_at_every_pixel(size, tile, overlap, factor):
    g = tile_grid(size, tile, overlap, factor)
    total = np.zeros(g.size)
    for (y0, y1, x0, x1), w in zip(g.boxes, g.weights()):
        assert w.shape == (y1 - y0, x1 - x0) and w.min() >= 0.0 and w.max() <= 1.0
        total[y0:y1, x0:x1] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-12)


@pytest.mark.parametrize(("size", "tile", "overlap", "factor"), GRIDS)
def test_the_tiles_cover_the_photo_and_overlap_by_at_least_the_overlap(size, tile, overlap, factor):
    g = tile_grid(size, tile, overlap, factor)
    assert g.size == (size[0] // factor * factor, size[1] // factor * factor)
    covered = np.zeros(g.size, int)
    for (y0, y1, x0, x1), (a0, a1, b0, b1) in zip(g.boxes, g.in_boxes):
        assert (y0, y1, x0, x1) == (a0 * factor, a1 * factor, b0 * factor, b1 * factor)  # SR: input boxes x f
        assert (y1 - y0, x1 - x0) == g.tile and 0 <= y0 and y1 <= g.size[0] and 0 <= x0 and x1 <= g.size[1]
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1
    for starts, t in ((g.rows, g.in_tile[0]), (g.cols, g.in_tile[1])):
        for a, b in zip(starts, starts[1:]):
            assert a + t - b >= g.overlap // factor  # neighbours share at least the overlap
    for lo, hi in g.seams()[0] + g.seams()[1]:
        assert hi - lo == g.ramp


def test_an_oracle_blend_of_the_true_crops_is_the_image_exactly():
    """Continuity of the blend itself: where every tile's answer is right, the blend is the image, bit for bit
    up to float32 rounding, seams included."""
    rng = np.random.default_rng(0)
    for size, tile, overlap, factor in GRIDS:
        g = tile_grid(size, tile, overlap, factor)
        img = rng.random((*g.size, 3)).astype(np.float32)
        crops = [img[y0:y1, x0:x1] for y0, y1, x0, x1 in g.boxes]
        np.testing.assert_allclose(g.blend(crops), img, atol=2e-7)


def test_default_overlap_is_the_coarsest_cell_or_an_eighth_of_the_tile():
    assert default_overlap(512, 32) == 64  # an eighth
    assert default_overlap(128, 32) == 32  # the cell
    assert default_overlap(96, 32) == 24  # at most a quarter


def test_fit_tiles_picks_the_largest_tile_that_fits():
    area = lambda hw: hw[0] * hw[1]
    g = fit_tiles(area, (512, 512), 288 * 288, 32)
    assert g is not None and area(g.tile) <= 288 * 288 and g.tile[0] % 32 == 0 and g.count == 4
    assert fit_tiles(area, (512, 512), 20 * 20, 32) is None  # no tile of a useful size fits
    sr = fit_tiles(area, (400, 600), 200 * 200, 8, factor=4)
    assert sr is not None and sr.tile[0] % 4 == 0 and sr.size == (400, 600)


def _forced_plan(cfg, problem, tile):
    model = MemoryModel(cfg, 3, precision_dtype(cfg.speed.precision, torch.device("cpu")))
    budget = model.estimate(tile).total_bytes + 1
    assert budget < model.estimate(problem.size).total_bytes
    return plan_for_problem(problem, cfg, budget)


def test_a_tiled_run_under_a_tiny_budget_writes_the_full_size_result(make_config):
    img = _smooth(80, 72)
    problem = denoise_problem(add_gaussian_noise(img, 25 / 255, 0), img)
    cfg = make_config("denoise", iterations=6)
    plan = _forced_plan(cfg, problem, (48, 48))
    assert not plan.fits and plan.tiles is not None and "tiles" in plan.sentence
    working = choose_working(plan, "auto")  # full resolution beats a downscale for denoising
    assert working.mode == "tiles" and working.writes_full_size and working.tiles is plan.tiles
    assert working_problem(problem, working) is problem
    events = []
    result = run_tiled(problem, cfg, working.tiles, on_event=events.append)
    assert result.image.shape == (80, 72, 3) and result.image.dtype == np.float32
    assert to_full(result.image, working, img).shape == (80, 72, 3)
    n = working.tiles.count
    assert n > 1 and len(result.results) == n and {e.index for e in events} == set(range(n))
    assert all(r.iterations_run == 6 and r.stop_reason is StopReason.BUDGET for r in result.results)
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert result.run is not None and result.run.iterations_run == 6 * n and result.psnr is not None
    assert choose_working(plan, "downscale").mode == "downscale"  # the other offers stay


def test_super_resolution_tiles_the_low_resolution_photo(make_config):
    img = _smooth(96, 96)
    problem = sr_problem(downsample(img, 2), 2, img)
    g = tile_grid(problem.size, (64, 64), 16, 2)
    result = run_tiled(problem, make_config("sr", iterations=3, factor=2), g)
    assert result.image.shape == (96, 96, 3) and [im.shape for im in result.images] == [(64, 64, 3)] * g.count


def test_inpainting_is_not_tiled(make_config):
    img = _smooth(64, 64)
    mask = np.ones((64, 64), np.float32)
    mask[10:20, 10:20] = 0
    problem = inpaint_problem(img, mask)
    cfg = make_config("inpaint", iterations=3)
    plan = _forced_plan(cfg, problem, (48, 48))
    assert plan.tiles is None
    with pytest.raises(WorkingSizeError, match="tiles are for denoising"):
        choose_working(plan, "tiles")
    with pytest.raises(ValueError, match="inpainting"):
        next(tiled_steps(problem, cfg, tile_grid((64, 64), (48, 48), 8)))


def test_a_stop_ends_every_tile_and_the_rest_keep_the_photo(make_config):
    img = _smooth(64, 64)
    noisy = add_gaussian_noise(img, 25 / 255, 0)
    problem = denoise_problem(noisy)
    g = tile_grid((64, 64), (40, 40), 8)
    control = RunControl()
    steps = tiled_steps(problem, make_config("denoise", iterations=50), g, control)
    kinds = []
    while True:
        try:
            ev = next(steps)
        except StopIteration as end:
            result = end.value
            break
        kinds.append((ev.index, ev.event.kind))
        if ev.event.kind is EventKind.STEP and ev.event.iteration == 2:
            control.stop()
    assert {k for k, _ in kinds} == {0}  # the later tiles never started
    assert result.run.stop_reason is StopReason.USER and result.results[0].iterations_run == 2
    assert result.image.shape == (64, 64, 3)
    y0, y1, x0, x1 = g.boxes[-1]
    np.testing.assert_array_equal(result.images[-1], noisy[y0:y1, x0:x1])


def test_the_seams_of_a_real_tiled_run_do_not_show(make_config):
    """On a photo whose gradient is about the same everywhere, the worst line inside a blending ramp is no
    steeper than the worst line elsewhere (within 1.5x), after a short run whose tiles still disagree; a hard
    paste of the very same tiles breaks that (the tiles' disagreement lands on one line), so the assertion
    can fail."""
    img = _smooth(96, 96)
    problem = denoise_problem(add_gaussian_noise(img, 25 / 255, 0), img)
    g = tile_grid(problem.size, (56, 56), 16)
    result = run_tiled(problem, make_config("denoise", iterations=40), g)
    blended = seam_gradients(result.image, g)
    assert blended["seam_max"] <= 1.5 * blended["elsewhere_max"], blended
    pasted = np.zeros_like(result.image)
    for (y0, y1, x0, x1), tile in zip(g.boxes, result.images):
        pasted[y0:y1, x0:x1] = tile
    hard = seam_gradients(pasted, g)
    assert hard["seam_max"] > 1.5 * hard["elsewhere_max"], hard


def test_the_cli_writes_the_full_resolution_blend_with_working_size_tiles(tmp_path, capsys):
    import json

    from rwgui.cli import build_parser, main, make_config
    from rwgui.core import imageio

    small = ["--channels-down", "8", "--channels-up", "8", "--num-scales", "3"]
    img = _smooth(96, 96)
    imageio.write(tmp_path / "photo.png", add_gaussian_noise(img, 25 / 255, 0))
    imageio.write(tmp_path / "gt.png", img)
    cfg = make_config(build_parser().parse_args(["denoise", str(tmp_path / "photo.png"), *small]), None)
    model = MemoryModel(cfg, 3, precision_dtype(cfg.speed.precision, torch.device("cpu")))
    budget_mb = (model.estimate((56, 56)).total_bytes + 1) / 2**20
    out, report = tmp_path / "out.png", tmp_path / "r.json"
    argv = ["denoise", tmp_path / "photo.png", "-o", out, "--iterations", 3, "--report", report]
    argv += ["--ground-truth", tmp_path / "gt.png", "--memory-budget", f"{budget_mb:.4f}", "--working-size", "tiles"]
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in [*argv, *small]])
    err = capsys.readouterr().err
    assert exc.value.code == 0, err
    assert imageio.read(out).pixels.shape == (96, 96, 3)
    r = json.loads(report.read_text())
    assert r["working_size"]["mode"] == "tiles" and r["working_size"]["written_at_full_size"]
    n = r["working_size"]["tiles"]
    assert len(r["tiles"]) == n > 1 and r["written"]["psnr"] > 0
    # the progress line says which tile runs, up to the last
    assert "tiles" in err and " tile 1/" in err and f" tile {n}/{n} " in err
