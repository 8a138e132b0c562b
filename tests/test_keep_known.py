"""Inpainting keeps what is known: the helper's rule, and the same rule in the CLI's and the studio's results.

The promise (rwgui.core.compositing): every known pixel farther than the seam from a hole equals the photo's
pixel exactly, the holes hold the network's output, and with a 0 px seam the result is a hard paste.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from rwgui.core import imageio
from rwgui.core.compositing import describe_result, keep_known, result_seam, seam_weights
from rwgui.core.config import preset
from rwgui.core.metrics import psnr
from rwgui.core.pixels import float_to_u8, float_to_u16, rgba8_for_display
from rwgui.core.samples import load_sample
from rwgui.core.working_size import Working, to_full

SEAMS = (0, 1, 2, 3, 5)


def _painted_mask(side: int) -> np.ndarray:
    """1 = known: a round blot and a brush stroke, as a person paints them, and two stray single pixels."""
    holes = np.zeros((side, side), np.uint8)
    cv2.circle(holes, (side // 3, side // 3), side // 7, 1, -1)
    cv2.line(holes, (side // 2, side - 8), (side - 6, side // 2), 1, max(3, side // 12))
    holes[4, side - 5] = holes[side - 4, 3] = 1
    return (holes == 0).astype(np.float32)


def _far_from_holes(mask: np.ndarray, seam: int) -> np.ndarray:
    """Known pixels whose Euclidean distance to the nearest hole pixel exceeds ``seam`` (computed independently
    of the helper's OpenCV distance transform)."""
    known = mask >= 0.5
    return known & (distance_transform_edt(known) > seam)


def _to(pixels: np.ndarray, dtype: type) -> np.ndarray:
    return float_to_u8(pixels) if dtype is np.uint8 else float_to_u16(pixels)


# ----- the helper ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("seam", SEAMS)
def test_known_pixels_beyond_the_seam_are_exact_and_holes_are_the_networks(dtype, seam):
    rng = np.random.default_rng(seam)
    mask = _painted_mask(64)
    photo = _to(rng.random((64, 64, 3)), dtype)
    net = rng.random((64, 64, 3)).astype(np.float32)
    out = keep_known(net, photo, mask, seam)
    assert out.dtype == dtype and out.shape == photo.shape
    far = _far_from_holes(mask, seam)
    assert far.sum() > 0.5 * far.size
    np.testing.assert_array_equal(out[far], photo[far])
    holes = mask < 0.5
    np.testing.assert_array_equal(out[holes], _to(net, dtype)[holes])
    seam_band = (mask >= 0.5) & ~far
    lo, hi = np.minimum(photo, _to(net, dtype)), np.maximum(photo, _to(net, dtype))
    assert np.all((out[seam_band] >= lo[seam_band]) & (out[seam_band] <= hi[seam_band]))  # a blend of the two
    assert (seam == 0) == np.array_equal(out[mask >= 0.5], photo[mask >= 0.5])  # a seam does blend


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_seam_zero_is_a_hard_paste(dtype):
    rng = np.random.default_rng(3)
    mask = _painted_mask(48)
    photo = _to(rng.random((48, 48, 1)), dtype)
    net = _to(rng.random((48, 48, 1)), dtype)  # the network's output may come as integers too
    out = keep_known(net, photo, mask[..., None], 0)
    np.testing.assert_array_equal(out, np.where(mask[..., None] >= 0.5, photo, net))


def test_the_seam_feathers_from_the_hole_outwards():
    mask = np.ones((40, 40), np.float32)
    mask[10:30, 10:30] = 0
    w = seam_weights(mask, 3)
    row = w[20, 6:14]  # known 6..9, hole from 10
    assert list(row[4:]) == [1.0] * 4
    assert row[0] == 0.0 and 0.0 < row[1] < row[2] < row[3] < 1.0  # 3, 2, 1 px from the hole
    assert row[3] == pytest.approx(0.5 + 0.5 * np.cos(np.pi / 4))
    photo = np.full((40, 40, 3), 0.2, np.float32)
    out = keep_known(np.full_like(photo, 0.8), photo, mask, 3)
    assert out.dtype == np.float32
    assert out[20, 9, 0] == pytest.approx(0.2 + 0.6 * row[3])
    assert out[20, 5, 0] == np.float32(0.2) and out[20, 15, 0] == np.float32(0.8)


def test_scattered_missing_pixels_keep_every_known_pixel_at_any_seam():
    rng = np.random.default_rng(0)
    mask = (rng.random((128, 128)) < 0.5).astype(np.float32)  # the paper's 50 % missing pixels
    photo = float_to_u16(rng.random((128, 128, 3)))
    net = rng.random((128, 128, 3)).astype(np.float32)
    known = mask >= 0.5
    for seam in (1, 5, 16):
        out = keep_known(net, photo, mask, seam)
        np.testing.assert_array_equal(out[known], photo[known])
        np.testing.assert_array_equal(out[~known], float_to_u16(net)[~known])


def test_no_hole_and_bad_shapes():
    photo = np.random.default_rng(1).random((16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(keep_known(np.zeros_like(photo), photo, np.ones((16, 16)), 3), photo)
    with pytest.raises(ValueError):
        keep_known(np.zeros((16, 8, 3), np.float32), photo, np.ones((16, 16)), 1)
    with pytest.raises(ValueError):
        keep_known(photo, photo, np.ones((8, 16)), 1)


def test_the_setting_and_its_words():
    cfg = preset("inpaint")
    assert cfg.keep_known and result_seam(cfg) == cfg.seam_px
    assert result_seam(cfg.replace(keep_known=False)) is None
    assert describe_result(2) == "known pixels kept, 2 px seam"
    assert describe_result(0) == "known pixels kept, no seam"
    assert "network" in describe_result(None)


@pytest.mark.parametrize("mode", ["full", "crop", "downscale"])
def test_every_working_size_keeps_the_known_pixels_by_the_same_rule(mode):
    rng = np.random.default_rng(2)
    mask = _painted_mask(64)
    photo = rng.random((64, 64, 3)).astype(np.float32)
    box = (4, 60, 4, 60)
    size = {"full": (64, 64), "crop": (56, 56), "downscale": (32, 32)}[mode]
    w = Working(mode, "inpaint", (64, 64), size, box if mode == "crop" else None, 8 if mode == "crop" else 0)
    result = rng.random((*size, 3)).astype(np.float32)
    raw = to_full(result, w, photo, mask, None)
    assert raw.shape == photo.shape
    for seam in (0, 2):
        out = to_full(result, w, photo, mask, seam)
        np.testing.assert_array_equal(out, keep_known(raw, photo, mask, seam))
        far = _far_from_holes(mask, seam)
        np.testing.assert_array_equal(out[far], photo[far])
    if mode == "full":
        np.testing.assert_array_equal(raw, result)  # the network's output as it is
    assert not np.array_equal(raw[mask >= 0.5], photo[mask >= 0.5])


def test_a_lab_result_taken_into_the_session_keeps_the_known_pixels():
    from rwgui.core.imageio import ImageMeta
    from rwgui.core.photo import Photo
    from rwgui.core.session import LabResult, Session

    rng = np.random.default_rng(4)
    mask = _painted_mask(32)
    photo = float_to_u8(rng.random((32, 32, 3))) / np.float32(255)
    net = rng.random((32, 32, 3)).astype(np.float32)
    s = Session()
    s.set_photo(Photo("test", photo, None, ImageMeta("test.png", 8, 3, False, 1, "png")))
    cfg = preset("inpaint", seam_px=2)
    s.set_settings(cfg)
    working = Working("full", "inpaint", (32, 32), (32, 32))
    s.take_lab_result(LabResult(1, "variant", cfg, 10, net), working, mask)
    kept = s.history.image(s.history.result_key())  # the network's output, as the history keeps it (16 bits)
    np.testing.assert_array_equal(s.result_pixels(), keep_known(kept, photo, mask, 2))
    assert s.result_description() == "known pixels kept, 2 px seam"
    s.set_settings(cfg.replace(keep_known=False))
    np.testing.assert_array_equal(s.result_pixels(), kept)


# ----- the CLI and the studio ---------------------------------------------------------------------------
SIDE = 48


def _damaged_photo(tmp_path, depth: int):
    """A photo with a painted hole written at ``depth`` bits, its mask and its ground truth, as files."""
    gt = load_sample("denoise", size=SIDE).ground_truth
    mask = _painted_mask(SIDE)
    photo = gt * mask[..., None]
    paths = {k: tmp_path / f"{k}.png" for k in ("photo", "mask", "truth")}
    imageio.write(paths["photo"], photo, bit_depth=depth)
    imageio.write(paths["truth"], gt, bit_depth=depth)
    imageio.write_mask(paths["mask"], mask)
    return paths, mask


def _check_written(out_path, paths, mask, seam, depth):
    """The written result: its known pixels beyond the seam are the photo's file's, exactly; its PSNR."""
    back, photo, truth = (imageio.read(p) for p in (out_path, paths["photo"], paths["truth"]))
    assert back.meta.bit_depth == depth and back.pixels.shape == photo.pixels.shape
    far = _far_from_holes(mask, seam)
    np.testing.assert_array_equal(back.pixels[far], photo.pixels[far])
    return psnr(back.pixels, truth.pixels)


@pytest.mark.parametrize("depth", [8, 16])
def test_cli_writes_the_known_pixels_and_says_so(tmp_path, make_config, depth):
    from rwgui.cli import main

    paths, mask = _damaged_photo(tmp_path, depth)
    cfg_path = tmp_path / "settings.json"
    make_config("inpaint", 25, seed=1).save(cfg_path)
    scores = {}
    for name, extra, seam in (("kept", ["--seam-px", "3"], 3), ("network", ["--no-keep-known"], None)):
        out, report = tmp_path / f"{name}.png", tmp_path / f"{name}.json"
        args = ["inpaint", str(paths["photo"]), "--mask", str(paths["mask"]), "-o", str(out), "--config"]
        args += [str(cfg_path), "--ground-truth", str(paths["truth"]), "--report", str(report), "--quiet", *extra]
        with pytest.raises(SystemExit) as ex:
            main(args)
        assert ex.value.code == 0
        written = json.loads(report.read_text())["written"]
        assert written["keep_known"] is (seam is not None) and written["seam_px"] == seam
        assert written["iterate"] == "pick_average" and written["iteration"] >= 1
        assert written["description"] == describe_result(seam)
        scores[name] = written["psnr"]
        if seam is not None:
            assert _check_written(out, paths, mask, seam, depth) == pytest.approx(written["psnr"], abs=0.05)
        else:  # the network's output: the known pixels moved
            back, photo = imageio.read(out).pixels, imageio.read(paths["photo"]).pixels
            assert not np.array_equal(back[mask >= 0.5], photo[mask >= 0.5])
    assert scores["kept"] >= scores["network"]


def test_report_and_batch_summary_give_the_written_files_psnr(tmp_path, make_config):
    """The report's ``written.psnr`` and the batch summary's PSNR describe the file written (known pixels kept),
    not the network's output that the ``stop`` and ``final`` PSNRs measure."""
    from rwgui.cli import main

    paths, _mask = _damaged_photo(tmp_path, 8)
    photos, truths, out = tmp_path / "photos", tmp_path / "truths", tmp_path / "out"
    photos.mkdir()
    truths.mkdir()
    paths["photo"].rename(photos / "scan.png")
    paths["mask"].rename(photos / "scan.mask.png")
    paths["truth"].rename(truths / "scan.png")
    cfg_path = tmp_path / "settings.json"
    make_config("inpaint", 25, seed=1).save(cfg_path)
    argv = ["inpaint", str(photos), "-o", str(out), "--config", str(cfg_path), "--ground-truth-dir", str(truths)]
    with pytest.raises(SystemExit) as ex:
        main([*argv, "--quiet"])
    assert ex.value.code == 0
    report = json.loads((out / "scan.report.json").read_text())
    (row,) = json.loads((out / "summary.json").read_text())["photos"]
    of_file = psnr(imageio.read(out / "scan.png").pixels, imageio.read(truths / "scan.png").pixels)
    assert row["psnr"] == pytest.approx(of_file, abs=1e-4)  # the summary: the written file's PSNR
    assert report["written"]["psnr"] == pytest.approx(of_file, abs=0.05)  # the same up to the file's 8-bit rounding
    assert report["written"]["iteration"] == report["stop"]["iteration"]
    # the network's output, known pixels included, is what the older keys measure: never better than the result
    assert report["written"]["psnr"] > report["stop"]["psnr_average"]


@pytest.mark.parametrize("depth", [8, 16])
def test_studio_save_result_keeps_the_known_pixels(qtbot, tmp_path, make_config, depth):
    from PySide6.QtCore import QSettings

    from rwgui.gui.main_window import MainWindow

    paths, mask = _damaged_photo(tmp_path, depth)
    win = MainWindow(settings=QSettings(str(tmp_path / "studio.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    assert win.open_file(paths["photo"])
    assert win.open_ground_truth(paths["truth"])
    cfg = make_config("inpaint", 25, seed=1)
    win.settings_panel.set_config(cfg)
    assert win.load_mask(paths["mask"])
    with qtbot.waitSignal(win.controller.run_finished, timeout=60000):
        assert win.start() is not None
    qtbot.waitUntil(lambda: win.history.result_key() is not None, timeout=10000)

    key = win.history.result_key()
    win.timeline.view(key)  # the result is shown as it is written
    shown = win.session.result_pixels(key)
    np.testing.assert_array_equal(win.recon_view.image(), rgba8_for_display(shown))
    kept = tmp_path / "kept.png"
    assert win.save_result(kept), win.last_error
    assert describe_result(cfg.seam_px) in win.statusBar().currentMessage()
    kept_psnr = _check_written(kept, paths, mask, cfg.seam_px, depth)

    win.settings_panel.set_config(cfg.replace(keep_known=False))  # the choice, made after the run
    network = tmp_path / "network.png"
    assert win.save_result(network), win.last_error
    assert "known pixels not kept" in win.statusBar().currentMessage()
    back, photo = imageio.read(network).pixels, imageio.read(paths["photo"]).pixels
    assert not np.array_equal(back[mask >= 0.5], photo[mask >= 0.5])
    assert kept_psnr >= psnr(back, imageio.read(paths["truth"]).pixels)
