"""rwgui-restore checks everything it will read and write before its first step, and Ctrl+C exits 130.

A run can take hours, so a bad path must fail at once (exit 2, one line), not after the run. "No step ran" is
shown without timing: the memory planning and the engine are replaced by functions that fail the test.
"""

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from rwgui.cli import main
from rwgui.core import imageio

PRIOR = ["--channels-down", "8", "--channels-up", "8", "--num-scales", "3", "--quiet"]
SMALL = [*PRIOR, "--iterations", "2"]


@pytest.fixture()
def d(tmp_path):
    """A 24x24 photo, a mask of its size, a ground truth and an unreadable file."""
    rng = np.random.default_rng(0)
    imageio.write(tmp_path / "photo.png", rng.random((24, 24, 3), dtype=np.float32))
    imageio.write(tmp_path / "gt.png", rng.random((24, 24, 3), dtype=np.float32))
    mask = np.ones((24, 24), np.float32)
    mask[8:14, 8:14] = 0
    imageio.write_mask(tmp_path / "mask.png", mask)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return tmp_path


@pytest.fixture()
def no_run(monkeypatch):
    """Fail the test if the CLI gets as far as planning memory, building the engine or taking a step."""
    from rwgui.core.engine import Engine

    def never(*args, **kwargs):
        pytest.fail("the run started although a check should have refused it")

    monkeypatch.setattr("rwgui.cli.fit_to_memory", never)
    monkeypatch.setattr(Engine, "__init__", never)
    monkeypatch.setattr(Engine, "step", never)


def cli(*args):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code


def refused(capsys, *args) -> str:
    """Run the CLI, assert it exits 2 with one line and no traceback, return that line."""
    code = cli(*args, *SMALL)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("rwgui-restore: error:") and "Traceback" not in err
    return err


def test_a_missing_output_folder_exits_2_before_any_step(d, capsys, no_run):
    err = refused(capsys, "denoise", d / "photo.png", "-o", "/nonexistent/dir/out.png", "--report", d / "r.json")
    assert "/nonexistent/dir" in err and "does not exist" in err
    assert not (d / "r.json").exists()


def test_the_input_as_output_is_refused_and_left_byte_identical(d, capsys, no_run):
    before = (d / "photo.png").read_bytes()
    err = refused(capsys, "denoise", d / "photo.png", "-o", d / "photo.png")
    assert "--overwrite" in err
    refused(capsys, "denoise", d / "photo.png", "-o", d / "sub" / ".." / "photo.png")  # another spelling
    os.link(d / "photo.png", d / "hardlink.png")  # another name for the same file
    refused(capsys, "denoise", d / "photo.png", "-o", d / "hardlink.png")
    assert (d / "photo.png").read_bytes() == before


def test_overwrite_replaces_the_input(d):
    before = (d / "photo.png").read_bytes()
    assert cli("denoise", d / "photo.png", "-o", d / "photo.png", "--overwrite", *SMALL) == 0
    assert (d / "photo.png").read_bytes() != before
    assert imageio.read(d / "photo.png").pixels.shape == (24, 24, 3)
    assert not [p.name for p in d.iterdir() if p.name.endswith(".tmp")]  # written through a renamed temp file


@pytest.mark.parametrize("name", ["out.xyz", "out"])
def test_an_unknown_format_exits_2_before_the_run(d, capsys, no_run, name):
    err = refused(capsys, "denoise", d / "photo.png", "-o", d / name)
    assert ".png" in err and not (d / name).exists()


def test_an_output_under_a_file_exits_2(d, capsys, no_run):
    err = refused(capsys, "denoise", d / "photo.png", "-o", d / "photo.png" / "out.png")
    assert "not a folder" in err


def test_an_output_that_is_a_folder_exits_2(d, capsys, no_run):
    (d / "dir.png").mkdir()
    assert "is a folder" in refused(capsys, "denoise", d / "photo.png", "-o", d / "dir.png")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_exits_2(d, capsys, no_run):
    locked = d / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        err = refused(capsys, "denoise", d / "photo.png", "-o", locked / "out.png")
        assert "does not take new files" in err
        refused(capsys, "denoise", d / "photo.png", "-o", d / "out.png", "--report", locked / "r.json")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--report", "/nonexistent/dir/r.json"], "the report"),
        (["--save-config", "/nonexistent/dir/c.json"], "the settings"),
        (["--report", "{d}/photo.png/r.json"], "not a folder"),
        (["--report", "{d}/photo.png"], "input photo"),
        (["--save-config", "{d}/out.png"], "the output"),
        (["--report", "{d}/same.json", "--save-config", "{d}/same.json"], "its own file"),
    ],
)
def test_report_and_settings_paths_are_checked_before_the_run(d, capsys, no_run, flags, message):
    before = (d / "photo.png").read_bytes()
    flags = [f.format(d=d) for f in flags]
    assert message in refused(capsys, "denoise", d / "photo.png", "-o", d / "out.png", *flags)
    assert (d / "photo.png").read_bytes() == before and not (d / "out.png").exists()


def test_a_mask_of_the_wrong_size_exits_2_before_the_run(d, capsys, no_run):
    imageio.write_mask(d / "small_mask.png", np.ones((12, 12), np.float32))
    err = refused(capsys, "inpaint", d / "photo.png", "--mask", d / "small_mask.png", "-o", d / "out.png")
    assert "12x12" in err and "24x24" in err


def test_an_unreadable_mask_or_ground_truth_exits_2_before_the_run(d, capsys, no_run):
    err = refused(capsys, "inpaint", d / "photo.png", "--mask", d / "broken.png", "-o", d / "out.png")
    assert "broken.png" in err
    err = refused(capsys, "denoise", d / "photo.png", "--ground-truth", d / "broken.png", "-o", d / "out.png")
    assert "broken.png" in err
    err = refused(capsys, "denoise", d / "photo.png", "--ground-truth", d / "missing.png", "-o", d / "out.png")
    assert "does not exist" in err


def test_a_ground_truth_of_the_wrong_size_exits_2_before_the_run(d, capsys, no_run):
    imageio.write(d / "gt_small.png", np.zeros((12, 12, 3), np.float32))
    refused(capsys, "denoise", d / "photo.png", "--ground-truth", d / "gt_small.png", "-o", d / "out.png")
    refused(capsys, "inpaint", d / "photo.png", "--mask", d / "mask.png", "--ground-truth", d / "gt_small.png")
    # super-resolution: the ground truth is the result's size (factor x the photo), not the photo's
    err = refused(capsys, "sr", d / "photo.png", "--factor", 2, "--ground-truth", d / "gt.png", "-o", d / "out.png")
    assert "48x48" in err


def test_a_ground_truth_factor_times_the_photo_is_accepted_for_sr(d):
    imageio.write(d / "gt_big.png", np.zeros((48, 48, 3), np.float32))
    code = cli("sr", d / "photo.png", "--factor", 2, "--ground-truth", d / "gt_big.png", "-o", d / "out.png", *SMALL)
    assert code == 0 and imageio.read(d / "out.png").pixels.shape == (48, 48, 3)


def test_ctrl_c_writes_the_result_so_far_and_exits_130(d, monkeypatch):
    from rwgui.core.engine import Engine

    real_step = Engine.step

    def step(self):
        if self.iteration == 1:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl+C during the second step
        return real_step(self)

    monkeypatch.setattr(Engine, "step", step)
    out, report = d / "out.png", d / "r.json"
    args = ["denoise", d / "photo.png", "-o", out, "--report", report, *PRIOR, "--iterations", 50]
    assert cli(*args) == 130
    assert out.exists() and imageio.read(out).pixels.shape == (24, 24, 3)
    r = json.loads(report.read_text())
    assert r["stop_reason"] == "user" and r["iterations_run"] < 50


def test_ctrl_c_before_the_run_exits_130_with_one_line(d, monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("rwgui.cli.load_problem", interrupted)
    assert cli("denoise", d / "photo.png", "-o", d / "out.png", *SMALL) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "interrupted" in err and not (d / "out.png").exists()


def test_help_and_readme_say_the_exit_codes():
    from rwgui.cli import build_parser

    assert "--overwrite" in build_parser().format_help()
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "130" in readme and "--overwrite" in readme
