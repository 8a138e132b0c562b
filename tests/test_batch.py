"""rwgui-restore on many photos: a bad photo is a row of the summary, --resume skips finished photos, masks and
ground truths are matched by name, a wrong command exits 2, and every executor writes the same pixels."""

from __future__ import annotations

import csv
import json
import shutil
import sys

import numpy as np
import pytest

from rwgui import batch, cli
from rwgui.cli import main
from rwgui.core import imageio
from rwgui.core.samples import load_sample

SMALL = ["--iterations", "2", "--channels-down", "8", "--channels-up", "8", "--num-scales", "3", "--quiet"]
GOOD = ("a", "b", "c", "d")


def run_cli(*args) -> int:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code


@pytest.fixture(scope="module")
def album(tmp_path_factory):
    """A folder of five photos (16-24 px), one a truncated PNG, plus a text file the folder scan passes over;
    beside it a file with an extension rwgui does not read, and ground truths for two of the photos."""
    root = tmp_path_factory.mktemp("album")
    photos, gts = root / "photos", root / "gt"
    photos.mkdir()
    gts.mkdir()
    for i, name in enumerate(GOOD):
        s = load_sample("denoise", size=16 + 2 * i, seed=i)
        imageio.write(photos / f"{name}.png", s.observed)
        if name in ("a", "b"):
            imageio.write(gts / f"{name}.png", s.ground_truth)
    data = (photos / "a.png").read_bytes()
    (photos / "broken.png").write_bytes(data[: len(data) // 2])
    (photos / "notes.txt").write_text("not a photo")
    (root / "scan.xyz").write_text("not a photo either")
    return root


def run_album(album, out, *extra) -> int:
    """The album's batch: its folder and the odd file, with ground truths, into ``out``."""
    return run_cli(
        "denoise", album / "photos", album / "scan.xyz", "-o", out, "--ground-truth-dir", album / "gt", *extra
    )


@pytest.fixture(scope="module")
def local_run(album):
    """The album restored once by the default (local) executor; the tests below read what it wrote."""
    out = album / "out-local"
    return run_album(album, out, *SMALL), out


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def test_bad_photos_are_reported_and_skipped(album, local_run):
    code, out = local_run
    assert code == 1  # some failed
    assert sorted(p.name for p in out.glob("*.png")) == [f"{n}.png" for n in GOOD]
    assert sorted(p.name for p in out.glob("*.report.json")) == [f"{n}.report.json" for n in GOOD]
    rows = {r["photo"]: r for r in _summary(out)["photos"]}
    assert str(album / "photos" / "notes.txt") not in rows  # a folder's non-photos are not part of the batch
    broken, odd = rows[str(album / "photos" / "broken.png")], rows[str(album / "scan.xyz")]
    assert broken["status"] == odd["status"] == "failed"
    assert "corrupt or truncated" in broken["error"] and "not a supported image format" in odd["error"]
    for name in GOOD:
        row = rows[str(album / "photos" / f"{name}.png")]
        assert row["status"] == "done" and row["error"] is None and row["output"] == f"{name}.png"
        report = json.loads((out / f"{name}.report.json").read_text())
        assert report["iterations_run"] == row["iterations"] == 2 and report["stop_reason"] == row["stop_reason"]
    assert _summary(out)["counts"] == {"done": 4, "failed": 2, "skipped": 0, "stopped": 0, "not run": 0}


def test_summary_columns_and_psnr_where_a_ground_truth_is_given(album, local_run):
    _, out = local_run
    with (out / "summary.csv").open(newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == list(batch.COLUMNS)
    assert [r["photo"] for r in table] == [r["photo"] for r in _summary(out)["photos"]]
    for row in _summary(out)["photos"]:
        assert list(row) == list(batch.COLUMNS)
    by_name = {r["photo"].rsplit("/", 1)[-1]: r for r in table}
    for name in ("a", "b"):  # the PSNR of the written file against its ground truth
        gt = imageio.read(album / "gt" / f"{name}.png").pixels
        written = imageio.read(out / f"{name}.png").pixels
        want = 10 * np.log10(1 / np.mean((written.astype(np.float64) - gt) ** 2))
        assert float(by_name[f"{name}.png"]["psnr"]) == pytest.approx(want, abs=1e-3)
    assert by_name["c.png"]["psnr"] == by_name["d.png"]["psnr"] == ""  # no ground truth: no PSNR


def test_resume_skips_finished_photos(album, local_run, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(local_run[1], out)  # copy2 keeps the mtimes; the original stays for the executors' test
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if not p.name.startswith("summary")}
    built = []
    real_engine = cli.Engine
    monkeypatch.setattr(cli, "Engine", lambda *a, **k: built.append(a) or real_engine(*a, **k))
    code = run_album(album, out, "--resume", *SMALL)
    assert code == 1  # the two bad ones fail again
    assert built == []  # no engine for the finished four (nor for the bad two: they fail before)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if not p.name.startswith("summary")} == before
    rows = _summary(out)["photos"]
    assert [r["status"] for r in rows].count("skipped") == 4
    skipped = {r["photo"]: r for r in rows}[str(album / "photos" / "a.png")]
    assert skipped["psnr"] is not None and skipped["iterations"] == 2  # a skipped row still reports its run


def test_resume_redoes_a_photo_whose_run_did_not_finish(album, tmp_path):
    out = tmp_path / "out"
    assert run_cli("denoise", album / "photos" / "a.png", album / "photos" / "b.png", "-o", out, *SMALL) == 0
    report = out / "a.report.json"
    data = json.loads(report.read_text())
    report.write_text(json.dumps({**data, "stop_reason": "user"}))  # as after Ctrl+C
    assert (
        run_cli("denoise", album / "photos" / "a.png", album / "photos" / "b.png", "-o", out, "--resume", *SMALL) == 0
    )
    assert [r["status"] for r in _summary(out)["photos"]] == ["done", "skipped"]


def test_inpaint_masks_matched_by_name(tmp_path, monkeypatch):
    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    s = load_sample("inpaint", size=20)
    for name in ("beside", "in_dir", "none"):
        imageio.write(photos / f"{name}.png", s.observed)
    imageio.write_mask(photos / "beside.mask.png", s.mask)
    used = []
    real = imageio.read_mask
    monkeypatch.setattr(imageio, "read_mask", lambda path, shape: used.append(str(path)) or real(path, shape))

    code = run_cli("inpaint", photos, "-o", tmp_path / "out1", *SMALL)  # masks beside the photos
    assert code == 1  # in_dir.png and none.png have no mask beside them
    assert used == [str(photos / "beside.mask.png")]
    rows = {r["photo"].rsplit("/", 1)[-1]: r for r in _summary(tmp_path / "out1")["photos"]}
    assert rows["beside.png"]["status"] == "done" and "beside.mask.png" not in rows  # a mask is not a photo
    assert rows["none.png"]["status"] == "failed" and "no mask for 'none.png'" in rows["none.png"]["error"]

    imageio.write_mask(masks / "in_dir.png", s.mask)  # --mask-dir: the photo's own name ...
    imageio.write_mask(masks / "beside.mask.png", s.mask)  # ... or NAME.mask.png
    imageio.write_mask(masks / "none.mask.png", s.mask)
    used.clear()
    assert run_cli("inpaint", photos, "-o", tmp_path / "out2", "--mask-dir", masks, *SMALL) == 0
    assert sorted(used) == sorted(str(masks / n) for n in ("beside.mask.png", "in_dir.png", "none.mask.png"))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-o", "{tmp}/missing/out"], "does not exist"),
        ([], "needs -o OUT_FOLDER"),
        (["-o", "{tmp}/out", "--mask", "{tmp}/m.png"], "--mask is for one photo"),
        (["-o", "{tmp}/out", "--report", "{tmp}/r.json"], "--report is for one photo"),
        (["-o", "{tmp}/out", "--ray-address", "auto"], "--ray-address is for --executor ray"),
        (["-o", "{tmp}/out", "--executor", "slurm"], "invalid choice"),
        (["-o", "{tmp}/out", "--stop-window", "4", "--stop", "none"], "--stop-window"),
    ],
)
def test_a_wrong_command_exits_2(album, tmp_path, capsys, extra, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    assert run_cli("denoise", album / "photos", *args, *SMALL) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing created before the command is known to be right


def test_ray_executor_without_ray_is_a_wrong_command(album, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert run_cli("denoise", album / "photos", "-o", tmp_path / "out", "--executor", "ray", *SMALL) == 2
    assert "pip install 'rwgui[cluster]'" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_wrong_inputs_exit_2(album, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli("denoise", album / "photos", tmp_path / "nowhere", "-o", out, *SMALL) == 2
    assert "neither a photo nor a folder" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    imageio.write(tmp_path / "other" / "a.png", np.zeros((16, 16, 3), np.float32))
    assert run_cli("denoise", album / "photos" / "a.png", tmp_path / "other" / "a.png", "-o", out, *SMALL) == 2
    assert "would both write a.png" in capsys.readouterr().err
    assert run_cli("denoise", album / "photos" / "a.png", "--resume", *SMALL) == 2  # one photo is not a batch
    assert "--resume is for a batch" in capsys.readouterr().err


def _pixels(out):
    return {p.name: imageio.read(p).pixels for p in sorted(out.glob("*.png"))}


def _rows_without_seconds(out):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in _summary(out)["photos"]]


def test_a_pool_of_processes_writes_what_one_process_writes(album, local_run, tmp_path):
    """The local executor's pool (a process per GPU) run here with two unpinned processes on the CPU."""
    _, local_out = local_run
    out = tmp_path / "pool"
    out.mkdir()
    args = cli.build_parser().parse_args(
        ["denoise", str(album / "photos"), "-o", str(out), "--ground-truth-dir", str(album / "gt"), *SMALL]
    )
    jobs, _ = batch.plan_jobs(args, [album / "photos" / "a.png", album / "photos" / "b.png"], out)
    rows = []
    batch.run_pool(jobs, [None, None], rows.append)
    assert sorted(r["status"] for r in rows) == ["done", "done"]
    local = _pixels(local_out)
    for name, pixels in _pixels(out).items():
        assert np.array_equal(pixels, local[name]), name


def test_ray_executor_matches_local(album, local_run):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'rwgui[cluster]')")
    _, local_out = local_run
    out = album / "out-ray"
    code = run_album(album, out, "--executor", "ray", *SMALL)
    assert code == 1
    ray_pixels, local_pixels = _pixels(out), _pixels(local_out)
    assert sorted(ray_pixels) == sorted(local_pixels) == [f"{n}.png" for n in GOOD]
    for name in ray_pixels:
        assert np.array_equal(ray_pixels[name], local_pixels[name]), name  # same seed, same CPU: same pixels
    assert _rows_without_seconds(out) == _rows_without_seconds(local_out)
    assert _summary(out)["executor"] == "ray"
