"""rwgui-restore: exit codes, report schema, outputs written like the input, nothing half-written."""

import json
import subprocess
import sys

import numpy as np
import pytest

from rwgui.cli import main
from rwgui.core import imageio
from rwgui.core.config import RunConfig
from rwgui.core.metrics import psnr
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
    # what was written: the average at the pick (denoising writes it as it is), and its PSNR up to the file's rounding
    assert r["written"]["iterate"] == "pick_average" and r["written"]["iteration"] == r["stop"]["iteration"]
    assert r["written"]["psnr"] == pytest.approx(r["stop"]["psnr_average"], abs=1e-5)
    of_file = psnr(imageio.read(out).pixels, imageio.read(photos / "gt.png").pixels)
    assert r["written"]["psnr"] == pytest.approx(of_file, abs=0.05)


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
        (["denoise", "{d}/noisy.png", "--stop", "fixed", "--stop-window", "5"], "window"),
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


def test_factor_outside_sr_factors_is_refused(photos, capsys):
    assert cli("sr", photos / "noisy.png", "--factor", 3, "--quiet") == 2
    assert "2, 4, 8" in capsys.readouterr().err


def test_console_script_entry_point_runs(photos):
    proc = subprocess.run([sys.executable, "-m", "rwgui.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--loss-prior-weight" in proc.stdout and "--num-scales" in proc.stdout


# ----- the run: the engine's one loop, Ctrl+C, running out of memory ------------------------------------------
def _report_run(photos, name, *extra):
    """Run a 6-iteration denoising with a report; (exit code, the report, the argv)."""
    argv = [photos / "noisy.png", "-o", photos / f"{name}.png", "--ground-truth", photos / "gt.png"]
    argv += ["--iterations", 6, "--seed", 2, "--report", photos / f"{name}.json", "--quiet", *SMALL, *extra]
    code = cli("denoise", *argv)
    report = json.loads((photos / f"{name}.json").read_text()) if (photos / f"{name}.json").exists() else None
    return code, report, ["denoise", *(str(a) for a in argv)]


def test_the_cli_reports_what_draining_the_engines_loop_gives(photos):
    from rwgui.cli import build_parser, load_problem
    from rwgui.core.engine import Engine, drain

    code, report, argv = _report_run(photos, "same")
    assert code == 0 and report["stop_reason"] == "budget"
    problem, _ = load_problem(build_parser().parse_args(argv))
    drained = drain(Engine(problem, RunConfig.from_dict(report["config"])).steps()).reports
    assert [t["iteration"] for t in report["trace"]] == [r.iteration for r in drained] == list(range(1, 7))
    assert [t["loss"] for t in report["trace"]] == pytest.approx([r.loss for r in drained], abs=1e-6)


def test_ctrl_c_stops_the_run_as_the_person_and_writes_what_it_found(photos, monkeypatch):
    import os
    import signal

    from rwgui.core.engine import Engine

    real_step = Engine.step

    def step(self):
        if self.iteration == 2:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl+C during the third step
        return real_step(self)

    monkeypatch.setattr(Engine, "step", step)
    before = signal.getsignal(signal.SIGINT)
    code, report, _ = _report_run(photos, "ctrl-c")
    assert code == 130 and report["stop_reason"] == "user"  # 130: stopped by Ctrl+C, the result so far written
    assert 3 <= report["iterations_run"] < 6 and len(report["trace"]) == report["iterations_run"]
    assert (photos / "ctrl-c.png").exists()
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl+C means what it meant before once the run ends


def test_out_of_memory_mid_run_exits_2_with_its_message_and_keeps_the_run_so_far(photos, monkeypatch, capsys):
    from rwgui.core.engine import Engine
    from rwgui.core.errors import OutOfMemoryError

    real_step = Engine.step

    def step(self):
        if self.iteration == 4:
            raise OutOfMemoryError("the 40x40 run does not fit in the memory of the test device")
        return real_step(self)

    monkeypatch.setattr(Engine, "step", step)
    code, report, _ = _report_run(photos, "oom")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "does not fit" in err and "Traceback" not in err
    assert report["stop_reason"] == "out_of_memory" and report["iterations_run"] == 4
    assert (photos / "oom.png").exists()
