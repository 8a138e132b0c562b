"""Fitting the work to the device: the plan, the crop box, the seamless paste-back, the CLI and the GUI choice."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rwgui.core import imageio
from rwgui.core.device import precision_dtype
from rwgui.core.errors import ConfigError, OutOfMemoryError, WorkingSizeError
from rwgui.core.memory import MemoryModel
from rwgui.core.problems import denoise_problem, inpaint_problem, sr_problem
from rwgui.core.resample import downscale_mask
from rwgui.core.samples import load_sample
from rwgui.core.vocabulary import WorkingMode
from rwgui.core.working_size import (
    MODES,
    RUN_MODES,
    WORKING_PARAMS,
    Working,
    choose_working,
    feather,
    hole_box,
    paste_back,
    plan_for_problem,
    plan_working_size,
    to_full,
    working_problem,
)

# The offscreen platform cannot resize windows to their size hints and says so on every show(); harmless.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

SMALL = ["--channels-down", "8", "--channels-up", "8", "--num-scales", "3"]


def _model(cfg, channels=3):
    return MemoryModel(cfg, channels, precision_dtype(cfg.speed.precision, torch.device("cpu")))


def _between(cfg, small, big):
    """A budget (bytes) that ``small`` fits and ``big`` does not."""
    m = _model(cfg)
    lo, hi = m.estimate(small).total_bytes, m.estimate(big).total_bytes
    assert lo < hi
    return (lo + hi) // 2


def _corner_mask(h=96, w=96):
    m = np.ones((h, w), np.float32)
    m[8:20, 10:22] = 0  # a hole near the top-left corner
    return m


# ----- the plan ---------------------------------------------------------------------------------------
def test_plan_fits_a_big_budget_and_downscales_within_a_small_one(make_config):
    cfg = make_config("denoise")
    size = (240, 160)
    big = plan_working_size(cfg, size, 3, "denoise", budget_bytes=64 * 2**30)
    assert big.fits and big.needed_mb is not None and big.downscale_size is None and big.crop_box is None
    budget = _between(cfg, (120, 80), size)
    plan = plan_working_size(cfg, size, 3, "denoise", budget_bytes=budget)
    assert not plan.fits and plan.crop_box is None  # denoising never offers a crop
    h, w = plan.downscale_size
    assert h < 240 and w < 160 and abs(w / h - 160 / 240) < 0.05
    assert _model(cfg).estimate((h, w)).total_bytes <= budget
    assert f"{w}x{h}" in plan.sentence and "MB" in plan.sentence
    assert choose_working(plan, "downscale") == Working("downscale", "denoise", size, (h, w))
    assert choose_working(plan, "auto").mode == "tiles"  # denoising: full resolution on tiles beats a downscale
    with pytest.raises(OutOfMemoryError, match="needs about"):
        choose_working(plan, "refuse")
    with pytest.raises(WorkingSizeError, match="inpainting"):
        choose_working(plan, "crop")


def test_unknown_or_automatic_budget_on_a_small_photo_fits_without_probing(make_config, monkeypatch):
    def no_probe(*a, **k):
        raise AssertionError("probed")

    monkeypatch.setattr("rwgui.core.memory.MemoryModel", no_probe)
    cfg = make_config("denoise")
    assert plan_working_size(cfg, (400, 600), 3, "denoise", budget_bytes=None).fits
    assert plan_working_size(cfg, (512, 512), 3, "denoise").fits  # 'auto': the engine's 512x512 rule


def test_automatic_budget_asks_the_device_above_512x512(make_config, monkeypatch):
    monkeypatch.setattr("rwgui.core.memory.available_bytes", lambda device: 10 * 2**20)
    plan = plan_working_size(make_config("denoise"), (600, 800), 3, "denoise")
    assert not plan.fits and plan.budget_mb == pytest.approx(9, abs=0.01)  # 90 % of what is free
    assert plan.downscale_size is None and "nothing smaller fits" in plan.sentence  # the CPU runtime alone is more
    with pytest.raises(WorkingSizeError):
        choose_working(plan, "downscale")


def test_crop_box_holds_every_hole_and_the_margin_clipped_at_the_borders():
    m = np.ones((100, 120), np.float32)
    m[10:20, 30:50] = 0
    m[80:95, 100:110] = 0
    assert hole_box(m, 16) == (0, 100, 14, 120)  # grown by 16, clipped at the top, bottom and right
    assert hole_box(m[:, :70], 5) == (5, 25, 25, 55)
    assert hole_box(np.ones((50, 50)), 8) is None
    tiny = np.ones((50, 60), np.float32)
    tiny[30, 40] = 0
    y0, y1, x0, x1 = hole_box(tiny, 0)
    assert y1 - y0 == 16 and x1 - x0 == 16 and y0 <= 30 < y1 and x0 <= 40 < x1  # at least 16 a side


def test_inpainting_plan_offers_the_crop_only_when_it_fits(make_config):
    cfg = make_config("inpaint")
    mask = _corner_mask()
    box = hole_box(mask, 16)
    crop_hw = (box[1] - box[0], box[3] - box[2])
    plan = plan_working_size(cfg, (96, 96), 3, "inpaint", mask, _between(cfg, crop_hw, (96, 96)), margin=16)
    assert not plan.fits and plan.crop_box == box and plan.crop_size == crop_hw
    assert choose_working(plan, "auto").mode == "crop"
    too_small = _model(cfg).estimate(crop_hw).total_bytes - 1
    plan = plan_working_size(cfg, (96, 96), 3, "inpaint", mask, too_small, margin=16)
    assert plan.crop_box is None and "would still need" in plan.sentence
    with pytest.raises(WorkingSizeError, match="crop does not fit"):
        choose_working(plan, "crop")


# ----- the modes are WorkingMode members, spelt as before ----------------------------------------------
def test_working_modes_are_members_spelt_as_the_flags_reports_and_session_files_spell_them(make_config):
    """Code compares members; the CLI's values, the JSON report and a session file keep the words they had."""
    assert [str(m) for m in MODES] == ["refuse", "downscale", "crop", "tiles", "auto"]
    assert [str(m) for m in RUN_MODES] == ["full", "downscale", "crop", "tiles"]
    spec = next(p for p in WORKING_PARAMS if p.name == "working_size")
    assert spec.default is WorkingMode.REFUSE and spec.coerce("crop") is WorkingMode.CROP
    assert Working("crop", "inpaint", (96, 96), (36, 38), (0, 36, 0, 38)).mode is WorkingMode.CROP  # a word read
    with pytest.raises(ValueError, match="only asked for"):
        Working(WorkingMode.AUTO, "denoise", (8, 8), (8, 8))  # a request is never what a run works at
    cfg = make_config("denoise")
    plan = plan_working_size(cfg, (240, 160), 3, "denoise", budget_bytes=_between(cfg, (120, 80), (240, 160)))
    assert choose_working(plan, WorkingMode.AUTO).mode is WorkingMode.TILES
    assert choose_working(plan, "downscale").mode is WorkingMode.DOWNSCALE  # the flag's word is the member
    assert json.loads(json.dumps(choose_working(plan, "downscale").to_dict()))["mode"] == "downscale"
    with pytest.raises(ConfigError, match="refuse, downscale, crop, tiles, auto; got 'full'"):
        choose_working(plan, WorkingMode.FULL)


def test_a_session_file_keeps_the_working_modes_word_and_reads_it_back_as_the_member(tmp_path):
    import zipfile

    from rwgui.core.config import preset
    from rwgui.core.errors import SessionFileError
    from rwgui.core.photo import sample_photo
    from rwgui.core.session import Session
    from rwgui.core.session_file import SessionData, read_session, write_session

    s = Session()
    s.set_photo(sample_photo("inpaint", size=48))
    mask = _corner_mask(48, 48)
    s.set_mask(mask)
    working = Working(WorkingMode.CROP, "inpaint", (48, 48), (40, 40), (0, 40, 0, 40), 8)
    s.begin_run(preset("inpaint"), working, mask)
    path = write_session(tmp_path / "s.rwgui", SessionData.snapshot(s))
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(members["session.json"])
    assert manifest["working"]["mode"] == "crop"  # the word sessions written before hold too
    back = read_session(path).working
    assert back == working and back.mode is WorkingMode.CROP
    manifest["working"]["mode"] = "auto"  # asked for, never what a run worked at
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in {**members, "session.json": json.dumps(manifest).encode()}.items():
            zf.writestr(name, data)
    with pytest.raises(SessionFileError, match="'auto' is not full, downscale, crop or tiles"):
        read_session(path)


# ----- the working problem -----------------------------------------------------------------------------
def test_downscaled_mask_keeps_every_pixel_that_touches_a_hole():
    m = np.ones((100, 130), np.float32)
    m[37, 51] = 0
    for size in [(33, 43), (50, 65), (71, 97)]:
        d = downscale_mask(m, size)
        holes = np.argwhere(d == 0)
        assert len(holes) >= 1
        sy, sx = 100 / size[0], 130 / size[1]
        for r, c in holes:  # each hole of the small mask covers the hole pixel
            assert r * sy < 38 and (r + 1) * sy > 37 and c * sx < 52 and (c + 1) * sx > 51


def test_working_problems_crop_and_downscale():
    img = load_sample("denoise", size=96).ground_truth
    mask = _corner_mask()
    full = inpaint_problem(img, mask, img)
    crop = working_problem(full, Working("crop", "inpaint", (96, 96), (36, 38), (0, 36, 0, 38), 16))
    assert crop.size == (36, 38) and crop.mask.shape[-2:] == (36, 38) and crop.ground_truth.shape[-2:] == (36, 38)
    assert crop.mask[0, 0, 8:20, 10:22].sum() == 0
    small = working_problem(full, Working("downscale", "inpaint", (96, 96), (48, 48)))
    assert small.size == (48, 48) and small.mask[0, 0, 4:10, 5:11].sum() == 0
    sr = working_problem(sr_problem(img[:48, :48], 2), Working("downscale", "sr", (96, 96), (64, 64)))
    assert sr.size == (64, 64) and sr.observed.shape[-2:] == (32, 32)
    dn = working_problem(denoise_problem(img), Working("downscale", "denoise", (96, 96), (40, 60)))
    assert dn.size == (40, 60)


# ----- paste back --------------------------------------------------------------------------------------
def test_paste_back_is_exact_outside_and_inside_and_smooth_at_the_seam():
    rng = np.random.default_rng(0)
    full = rng.random((100, 100, 3)).astype(np.float32)
    box, margin = (20, 60, 30, 80), 16
    restored = rng.random((40, 50, 3)).astype(np.float32)
    out = paste_back(full, restored, box, margin)
    assert out.dtype == np.float32 and out.shape == full.shape
    outside = np.ones((100, 100), bool)
    outside[20:60, 30:80] = False
    assert np.array_equal(out[outside], full[outside])  # bit-identical
    r = margin // 2
    assert np.array_equal(out[20 + r : 60 - r, 30 + r : 80 - r], restored[r:-r, r:-r])
    # the seam: a flat photo and a flat crop 0.6 apart step by at most the ramp's slope, never 0.6 at once
    flat = paste_back(np.full((100, 100, 1), 0.2, np.float32), np.full((40, 50, 1), 0.8, np.float32), box, margin)
    steps = max(np.abs(np.diff(flat, axis=0)).max(), np.abs(np.diff(flat, axis=1)).max())
    assert steps <= 0.6 * np.pi / (2 * r) + 1e-6 and steps < 0.15
    # on textures: no step bigger than the larger local step of either image plus the ramp's share of their gap
    w = feather(box, (100, 100), margin)[..., None]
    under = full[20:60, 30:80]
    for axis in (0, 1):
        d_out = np.abs(np.diff(out[20:60, 30:80], axis=axis))
        d_in = np.maximum(np.abs(np.diff(under, axis=axis)), np.abs(np.diff(restored, axis=axis)))
        gap = np.abs(np.diff(w, axis=axis)).max() * np.abs(restored - under).max()
        assert gap < 0.25 and (d_out <= d_in + gap + 1e-6).all()


def test_paste_back_does_not_feather_at_the_photo_border():
    w = feather((0, 40, 10, 100), (100, 100), 16)
    assert (w[0][8:-8] == 1).all() and (w[:, -1][8:-8] == 1).all()  # top and right lie on the photo's edge
    assert w[-1, 50] < 0.05 and w[20, 0] < 0.05  # bottom and left border the photo: ramp to ~0


def test_to_full_for_a_downscaled_inpainting_keeps_the_known_pixels():
    rng = np.random.default_rng(1)
    photo = rng.random((64, 64, 3)).astype(np.float32)
    mask = np.ones((64, 64), np.float32)
    mask[10:20, 10:20] = 0
    result = np.full((32, 32, 3), 0.5, np.float32)
    out = to_full(result, Working("downscale", "inpaint", (64, 64), (32, 32)), photo, mask)
    assert out.shape == (64, 64, 3)
    assert np.array_equal(out[mask == 1], photo[mask == 1])
    assert np.allclose(out[mask == 0], 0.5, atol=1e-5)
    same = to_full(result, Working("downscale", "denoise", (64, 64), (32, 32)), photo)
    assert same.shape == (32, 32, 3)  # denoising is written at the working size


# ----- the CLI -----------------------------------------------------------------------------------------
@pytest.fixture()
def corner(tmp_path):
    img = load_sample("denoise", size=96).ground_truth
    imageio.write(tmp_path / "photo.png", img)
    imageio.write_mask(tmp_path / "mask.png", _corner_mask())
    return tmp_path


def _cli(*args):
    from rwgui.cli import main

    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code


def _cli_budget_mb(d, margin):
    """A budget between what the CLI's crop and its full 96x96 run need."""
    from rwgui.cli import build_parser, make_config

    args = build_parser().parse_args(["inpaint", str(d / "photo.png"), "--mask", str(d / "mask.png"), *SMALL])
    cfg = make_config(args, 0.02)
    b = hole_box(_corner_mask(), margin)
    return _between(cfg, (b[1] - b[0], b[3] - b[2]), (96, 96)) / 2**20


def test_cli_refuses_naming_the_flag_then_crops_and_pastes_back(corner, capsys):
    d = corner
    budget = _cli_budget_mb(d, 16)
    common = [
        "inpaint",
        d / "photo.png",
        "--mask",
        d / "mask.png",
        "--iterations",
        20,
        "--quiet",
        "--memory-budget",
        f"{budget:.3f}",
        "--crop-margin",
        16,
        *SMALL,
    ]
    assert _cli(*common, "-o", d / "refused.png") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--working-size crop" in err and "MB" in err
    assert not (d / "refused.png").exists()

    out, rep = d / "out.png", d / "r.json"
    assert _cli(*common, "-o", out, "--working-size", "crop", "--report", rep) == 0
    assert "crop around the damage" in capsys.readouterr().err
    photo, back = imageio.read(d / "photo.png").pixels, imageio.read(out).pixels
    assert back.shape == photo.shape == (96, 96, 3)
    ws = json.loads(rep.read_text())["working_size"]
    y0, y1, x0, x1 = ws["box"]
    assert ws["mode"] == "crop" and ws["full_size"] == [96, 96] and (y0, x0) == (0, 0) and y1 < 96 and x1 < 96
    far = np.ones((96, 96), bool)
    far[:y1, :x1] = False
    assert np.array_equal(back[far], photo[far])  # far from the hole: the input, bit for bit
    assert not np.array_equal(back[8:20, 10:22], photo[8:20, 10:22])  # the hole was restored


def test_cli_downscale_writes_denoising_at_the_working_size(corner, capsys):
    from rwgui.cli import build_parser, make_config

    d = corner
    cfg = make_config(build_parser().parse_args(["denoise", str(d / "photo.png"), *SMALL]), None)
    budget = _between(cfg, (48, 48), (96, 96)) / 2**20
    out = d / "dn.png"
    assert (
        _cli(
            "denoise",
            d / "photo.png",
            "-o",
            out,
            "--iterations",
            3,
            "--quiet",
            "--memory-budget",
            f"{budget:.3f}",
            "--working-size",
            "downscale",
            *SMALL,
        )
        == 0
    )
    assert "written at that size" in capsys.readouterr().err
    h, w, _ = imageio.read(out).pixels.shape
    assert 48 <= h < 96 and h == w


# ----- the GUI -----------------------------------------------------------------------------------------
@pytest.fixture
def damaged(window, make_config):
    """The window on the inpainting sample, one small hole near the top-left corner, a budget between the
    crop's need and the whole photo's."""
    window.settings_panel.set_task("inpaint")
    cfg = make_config("inpaint", iterations=20)
    window.settings_panel.set_config(cfg)
    window.photo_view.clear()
    window.photo_view.brush_size = 6
    window.photo_view.paint_stroke([(6, 6), (12, 12)])
    window.working_size.crop_margin = 8
    b = hole_box(window.photo_view.mask(), 8)
    window.working_size.memory_budget = _between(cfg, (b[1] - b[0], b[3] - b[2]), (64, 64))
    return window


def test_gui_crop_runs_on_the_crop_and_saves_the_full_photo(qtbot, damaged, tmp_path, monkeypatch):
    win = damaged
    asked = []
    monkeypatch.setattr(win.working_size, "choose_working_size", lambda plan: asked.append(plan) or "crop")
    with qtbot.waitSignal(win.controller.run_finished, timeout=30000):
        assert win.start() is not None
    plan = asked[0]
    assert plan.crop_box is not None and plan.downscale_size is not None
    assert win.working.mode == "crop" and win.working.box == plan.crop_box
    h, w = plan.crop_size
    assert win.recon_view.image().shape[:2] == (h, w)  # the live view shows the crop
    assert "crop" in win.windowTitle() and "crop" in win.recon_view.title()
    out = tmp_path / "result.png"
    assert win.save_result(out)
    back = imageio.read(out).pixels
    photo = win.photo.pixels
    assert back.shape == photo.shape == (64, 64, 3)
    y0, y1, x0, x1 = plan.crop_box
    far = np.ones((64, 64), bool)
    far[y0:y1, x0:x1] = False
    assert np.abs(back[far] - photo[far]).max() <= 0.5 / 255 + 1e-6
    assert win.last_error is None


def test_gui_cancel_starts_nothing_and_keeps_everything(qtbot, damaged, monkeypatch):
    win = damaged
    budget = win.working_size.memory_budget
    win.working_size.memory_budget = 64 * 2**30  # fits: no question, a normal run
    monkeypatch.setattr(win.working_size, "choose_working_size", lambda plan: pytest.fail("asked although it fits"))
    with qtbot.waitSignal(win.controller.run_finished, timeout=30000):
        first = win.start()
    assert win.working.mode == "full"
    kept, mask, run_id = len(win.history), win.photo_view.mask(), win.controller.run_id
    win.working_size.memory_budget = budget
    monkeypatch.setattr(win.working_size, "choose_working_size", lambda plan: None)  # Cancel
    assert win.start() is None
    assert win.controller.run_id == run_id == first and win.controller.state == "idle"
    assert len(win.history) == kept > 0 and np.array_equal(win.photo_view.mask(), mask)
    assert win.last_error is None


def test_gui_dialog_offers_crop_only_for_inpainting(qtbot, make_config):
    from rwgui.gui.working import working_size_box

    cfg = make_config("inpaint")
    mask = _corner_mask()
    b = hole_box(mask, 16)
    budget = _between(cfg, (b[1] - b[0], b[3] - b[2]), (96, 96))
    plan = plan_for_problem(inpaint_problem(np.zeros((96, 96, 3), np.float32), mask), cfg, budget, 16)
    box, choices = working_size_box(None, plan)
    texts = {btn.text(): c for btn, c in choices.items()}
    dh, dw = plan.downscale_size
    assert texts[f"Downscale to {dw}×{dh}"] == "downscale"
    assert texts[f"Crop around the damage ({b[3] - b[2]}×{b[1] - b[0]})"] == "crop"
    assert set(texts.values()) == {None, "crop", "downscale"}  # None: Cancel
    assert "MB" in box.text()
    box.deleteLater()
    den = plan_working_size(
        make_config("denoise"),
        (96, 96),
        3,
        "denoise",
        budget_bytes=_between(make_config("denoise"), (48, 48), (96, 96)),
    )
    box, choices = working_size_box(None, den)
    assert set(choices.values()) == {None, "downscale", "tiles"}  # denoising: tiles, never a crop
    box.deleteLater()


def test_gui_lab_compares_on_the_crop_and_its_result_is_pasted_back(qtbot, damaged, tmp_path, monkeypatch):
    """The Lab makes the same offer as Start; a result taken from it saves as the full photo."""
    win = damaged
    monkeypatch.setattr(win.working_size, "choose_working_size", lambda plan: "crop")
    win.lab.action.trigger()
    panel = win.lab.panel
    b = hole_box(win.photo_view.mask(), 8)
    assert panel._problem is not None and panel._problem.size == (b[1] - b[0], b[3] - b[2])
    assert panel.add_current()
    with qtbot.waitSignal(panel.queue_finished, timeout=60000):
        assert panel.run_queue()
    assert panel.use_result()
    assert win.working is not None and win.working.mode == "crop"
    out = tmp_path / "lab.png"
    assert win.save_result(out)
    back, photo = imageio.read(out).pixels, win.photo.pixels
    assert back.shape == photo.shape
    far = np.ones(photo.shape[:2], bool)
    far[b[0] : b[1], b[2] : b[3]] = False
    assert np.abs(back[far] - photo[far]).max() <= 0.5 / 255 + 1e-6
    assert win.last_error is None
