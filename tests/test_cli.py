"""rwgui-restore: exit codes, report schema, outputs written like the input, nothing half-written."""

import json
import subprocess
import sys

import numpy as np
import pytest

from rwgui.cli import main
from rwgui.core import imageio
from rwgui.core.config import RunConfig
from rwgui.core.samples import load_sample

SMALL = ["--channels-down", "8", "--channels-up", "8", "--num-scales", "3"]


@pytest.fixture()
def photos(tmp_path):
    s = load_sample("denoise", size=40)
    imageio.write(tmp_path / "noisy.png", s.observed)
    imageio.write(tmp_path / "gt.png", s.ground_truth)
    imageio.write(tmp_path / "noisy16.png", s.observed, bit_depth=16, alpha=np.full((40, 40), 0.5, np.float32))
    i = load_sample("inpaint", size=40)
    imageio.write(tmp_path / "holes.png", i.observed)
    imageio.write_mask(tmp_path / "mask.png", i.mask)
    return tmp_path


def cli(*args):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code


def test_denoise_report_schema(photos):
    out, rep = photos / "out.png", photos / "r.json"
    code = cli(
        "denoise",
        photos / "noisy.png",
        "-o",
        out,
        "--ground-truth",
        photos / "gt.png",
        "--iterations",
        12,
        "--report",
        rep,
        "--quiet",
        "--stop",
        "es-wmv",
        "--stop-window",
        4,
        *SMALL,
    )
    assert code == 0 and out.exists()
    r = json.loads(rep.read_text())
    for key in (
        "task",
        "config",
        "device",
        "seed",
        "iterations_run",
        "stop_reason",
        "seconds_per_iteration",
        "trace",
        "final",
        "peak",
        "stop",
    ):
        assert key in r, key
    assert r["iterations_run"] == 12 and len(r["trace"]) == 12
    t = r["trace"][-1]
    assert {"iteration", "loss", "psnr", "psnr_average", "loss_terms", "signal"} <= set(t)
    assert set(r["stop"]) == {"rule", "iteration", "psnr", "psnr_average"} and r["stop"]["rule"] == "es-wmv"
    assert r["peak"]["psnr"] == max(x["psnr"] for x in r["trace"])
    assert RunConfig.from_dict(r["config"]).iterations == 12  # the report's config reproduces the run


def test_loss_prior_flags_reach_the_report(photos):
    rep = photos / "r.json"
    code = cli(
        "denoise",
        photos / "noisy.png",
        "-o",
        photos / "o.png",
        "--iterations",
        3,
        "--report",
        rep,
        "--quiet",
        "--loss-prior",
        "cdc",
        "--loss-prior-weight",
        0.1,
        *SMALL,
    )
    assert code == 0
    r = json.loads(rep.read_text())
    assert r["loss_prior"] == "cdc" and r["config"]["loss_prior_params"]["weight"] == 0.1
    assert set(r["trace"][0]["loss_terms"]) == {"data", "prior"}


def test_output_keeps_bit_depth_and_alpha(photos):
    out = photos / "out16.png"
    assert cli("denoise", photos / "noisy16.png", "-o", out, "--iterations", 2, "--quiet", *SMALL) == 0
    img = imageio.read(out)
    assert img.meta.bit_depth == 16 and img.alpha is not None
    np.testing.assert_allclose(img.alpha, 0.5, atol=1e-3)


def test_inpaint_and_sr(photos):
    assert (
        cli(
            "inpaint",
            photos / "holes.png",
            "--mask",
            photos / "mask.png",
            "-o",
            photos / "i.png",
            "--iterations",
            2,
            "--quiet",
            *SMALL,
        )
        == 0
    )
    assert (
        cli("sr", photos / "noisy.png", "--factor", 2, "-o", photos / "sr.tif", "--iterations", 2, "--quiet", *SMALL)
        == 0
    )
    assert imageio.read(photos / "sr.tif").pixels.shape == (80, 80, 3)


def test_settings_json_reproduces_a_run(photos):
    cfg_path, r1, r2 = photos / "cfg.json", photos / "r1.json", photos / "r2.json"
    assert (
        cli(
            "denoise",
            photos / "noisy.png",
            "-o",
            photos / "a.png",
            "--iterations",
            4,
            "--seed",
            5,
            "--save-config",
            cfg_path,
            "--report",
            r1,
            "--quiet",
            *SMALL,
        )
        == 0
    )
    assert (
        cli("denoise", photos / "noisy.png", "-o", photos / "b.png", "--config", cfg_path, "--report", r2, "--quiet")
        == 0
    )
    t1 = [x["loss"] for x in json.loads(r1.read_text())["trace"]]
    t2 = [x["loss"] for x in json.loads(r2.read_text())["trace"]]
    assert t1 == t2


@pytest.mark.parametrize(
    "args, message",
    [
        (["denoise", "{d}/missing.png"], "does not exist"),
        (["inpaint", "{d}/holes.png"], "--mask"),
        (["inpaint", "{d}/holes.png", "--mask", "{d}/small.png"], "mask"),
        (["denoise", "{d}/noisy.png", "--lr", "-3"], "lr"),
        (["denoise", "{d}/noisy.png", "--stop", "whenever"], "unknown stopping rule"),
        (["denoise", "{d}/noisy.png", "--stop-window", "5"], "window"),
        (["denoise", "{d}/noisy.png", "-o", "{d}/out.xyz"], "cannot write"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(photos, capsys, args, message):
    imageio.write(photos / "small.png", np.ones((5, 5, 3), np.float32))
    code = cli(*[a.format(d=photos) for a in args], "--iterations", "1", "--quiet", *SMALL)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err
    assert not list(photos.glob("*_restored*")) and not (photos / "out.xyz").exists()


def test_console_script_entry_point_runs(photos):
    proc = subprocess.run([sys.executable, "-m", "rwgui.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--loss-prior-weight" in proc.stdout and "--num-scales" in proc.stdout
