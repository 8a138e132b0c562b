"""The Lab on many photos: the queued variants over a folder through the batch's path, summarised per variant
(mean ± std PSNR over the photos, n, failures), in the Lab's folder dialog."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rwgui.batch import summarise_variants, variant_jobs
from rwgui.core import imageio

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def _row(variant, status="done", psnr=None, seconds=1.0, stop=None):
    return {
        "variant": variant,
        "photo": "p",
        "status": status,
        "psnr": psnr,
        "seconds": seconds,
        "stop_iteration": stop,
    }


def test_summarise_variants_mean_std_range_and_failures():
    rows = [
        _row("a", psnr=20.0, seconds=1.0, stop=10),
        _row("b", psnr=30.0),
        _row("a", psnr=22.0, seconds=3.0, stop=30),
        _row("a", status="failed", seconds=None),
        _row("a", psnr=24.0, seconds=2.0, stop=20),
        _row("b", status="stopped", psnr=31.0),
    ]
    a, b = summarise_variants(rows)
    assert a["variant"] == "a" and b["variant"] == "b"  # in the order first seen
    assert (a["photos"], a["n"], a["failed"], a["psnr_n"]) == (4, 3, 1, 3)
    assert a["psnr_mean"] == pytest.approx(22.0) and a["psnr_std"] == pytest.approx(2.0)  # n - 1
    assert (a["psnr_min"], a["psnr_max"]) == (20.0, 24.0)
    assert a["seconds_mean"] == pytest.approx(2.0) and a["stop_iteration_mean"] == pytest.approx(20.0)
    # a stopped photo is not a result: b has one photo, so no spread
    assert (b["n"], b["stopped"], b["psnr_n"], b["psnr_mean"], b["psnr_std"]) == (1, 1, 1, 30.0, None)


def test_summarise_variants_without_ground_truths_has_no_psnr():
    (s,) = summarise_variants([_row("a", stop=5), _row("a", stop=7)])
    assert s["n"] == 2 and s["psnr_n"] == 0 and s["psnr_mean"] is None and s["psnr_std"] is None
    assert s["stop_iteration_mean"] == 6.0


def _photos(tmp_path, sizes=(16, 20, 24)):
    """Damaged photos and their ground truths, by name, in two folders."""
    rng = np.random.default_rng(0)
    photos, truths = tmp_path / "photos", tmp_path / "truths"
    photos.mkdir()
    truths.mkdir()
    for i, side in enumerate(sizes):
        y, x = np.mgrid[0:side, 0:side] / side
        clean = np.stack([y, x, 0.5 * (x + y)], axis=-1).astype(np.float32)
        noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)
        imageio.write(truths / f"p{i}.png", clean)
        imageio.write(photos / f"p{i}.png", noisy)
    return photos, truths


def test_variant_jobs_plan_every_photo_for_every_variant(tmp_path, make_config):
    photos, truths = _photos(tmp_path)
    variants = [("one", make_config("denoise", iterations=2)), ("two", make_config("denoise", iterations=3))]
    jobs, failed = variant_jobs(variants, str(photos), tmp_path / "out", str(truths))
    assert not failed and len(jobs) == 6
    assert [j["variant"] for j in jobs] == ["one"] * 3 + ["two"] * 3
    assert all(j["args"]["ground_truth"].startswith(str(truths)) for j in jobs)
    assert {j["args"]["output"].split("/")[-2] for j in jobs} == {"variant-1", "variant-2"}


def test_lab_runs_its_variants_on_a_folder(qtbot, window, tmp_path):
    from rwgui.gui.lab_folder import COLUMNS

    photos, truths = _photos(tmp_path)
    window.lab.action.trigger()
    panel = window.lab.panel
    panel.run_box.iterations_spin.setValue(2)
    assert panel.add_variant("skip", "none")
    assert panel.add_variant("skip", "tv", 0.01)
    assert panel.folder_button.isEnabled()
    dialog = panel.open_folder_run()
    dialog.folder_edit.setText(str(photos))
    dialog.gt_edit.setText(str(truths))
    with qtbot.waitSignal(dialog.run_finished, timeout=120000):
        assert dialog.start()
    assert not dialog.is_running()
    t = dialog.table
    assert t.rowCount() == 2 and t.columnCount() == len(COLUMNS)
    for i, s in enumerate(dialog.summary):
        assert s["n"] == 3 and s["photos"] == 3 and s["failed"] == 0 and s["psnr_n"] == 3
        assert math.isfinite(s["psnr_mean"]) and math.isfinite(s["psnr_std"])
        assert t.item(i, 0).text() == s["variant"] and "±" in t.item(i, 1).text() and t.item(i, 3).text() == "3 of 3"
    assert [s["variant"] for s in dialog.summary] == [e.variant.label() for e in panel._entries]
    assert "Done: 6 of 6 runs" in dialog.progress_label.text()
    dialog.close()


def test_lab_folder_without_ground_truths_says_psnr_is_unavailable(qtbot, window, tmp_path):
    photos, _ = _photos(tmp_path, sizes=(16,))
    window.lab.action.trigger()
    panel = window.lab.panel
    panel.run_box.iterations_spin.setValue(2)
    assert panel.add_variant("skip", "none")
    dialog = panel.open_folder_run()
    dialog.folder_edit.setText(str(photos))
    with qtbot.waitSignal(dialog.run_finished, timeout=120000):
        assert dialog.start()
    assert dialog.table.item(0, 1).text() == "unavailable" and "unavailable without ground truths" in (
        dialog.note_label.text()
    )
    assert dialog.table.item(0, 5).text().endswith(" s")  # the mean time is still there to compare


def test_lab_folder_stop_ends_the_run_and_its_thread(qtbot, window, tmp_path):
    photos, _ = _photos(tmp_path)
    window.lab.action.trigger()
    panel = window.lab.panel
    panel.run_box.iterations_spin.setValue(2000)
    assert panel.add_variant("skip", "none")
    dialog = panel.open_folder_run()
    dialog.folder_edit.setText(str(photos))
    with qtbot.waitSignal(dialog.run_finished, timeout=120000):
        assert dialog.start()
        dialog.stop()
    assert not dialog.is_running()
    assert "Stopped" in dialog.progress_label.text()
    assert sum(r["status"] == "done" for r in dialog.rows) < 3
