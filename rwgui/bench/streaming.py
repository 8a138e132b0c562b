"""What streaming to the GUI costs: engine iterations per second in the real window vs headless.

``python -m rwgui.bench.streaming`` runs the same problem and settings alternately (a) headless, the engine's
loop drained with nothing between steps (as the CLI runs it, less the progress line), and (b) in the real main
window (offscreen unless a display is set) with the worker streaming reports, frames at the default rate
(~10/s), kept iterates and the rule's pick, while the GUI draws them. Both use the GUI's torch thread count
(cores - 1), so the only difference is the streaming. Engine construction is excluded from both timings. A
third run per round, the worker streaming to a controller that draws nothing, separates the worker's own cost
from the GUI's drawing. Then one long run in the window alternates blocks of streaming and of silence
(:class:`DutyCycle`, the worker's stream policy): the host's speed drifts by 20 % within minutes here, and
blocks seconds apart see the same host, where separate runs do not. It prints one table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TINY_PRIOR = {"num_scales": 3, "channels_down": (16,), "channels_up": (16,), "channels_skip": (4,)}


def _config(prior: str, iterations: int):
    from rwgui.core.config import preset

    params = TINY_PRIOR if prior == "tiny" else None
    extra = {"prior_params": params} if params else {}
    return preset("denoise", iterations=iterations, stop="es-wmv", auto_stop=False, device="cpu", **extra)


def headless(problem, cfg) -> float:
    """Iterations per second of the engine's loop with nobody streaming (construction excluded)."""
    from rwgui.core.engine import Engine

    engine = Engine(problem, cfg)
    t0 = time.perf_counter()
    result = engine.run()
    return result.iterations_run / (time.perf_counter() - t0)


def in_window(win, cfg) -> tuple[float, int, int]:
    """(iterations per second of the worker's loop, frames shown, report batches) for one run in ``win``."""
    from PySide6.QtCore import QEventLoop

    counts = {"frames": 0, "batches": 0}

    def frame(*_):
        counts["frames"] += 1

    def batch(*_):
        counts["batches"] += 1

    win.controller.frame_ready.connect(frame)
    win.controller.reports_ready.connect(batch)
    win.settings_panel.set_config(cfg)
    loop = QEventLoop()
    win.controller.run_finished.connect(loop.quit)
    win.start()
    loop.exec()
    win.controller.run_finished.disconnect(loop.quit)
    win.controller.frame_ready.disconnect(frame)
    win.controller.reports_ready.disconnect(batch)
    s = win.last_summary
    return s.iterations_per_second, counts["frames"], counts["batches"]


def worker_only(problem, cfg) -> float:
    """Iterations per second of the worker thread with nobody drawing: the worker's own streaming cost."""
    from PySide6.QtCore import QEventLoop, QObject, Slot

    from rwgui.gui.worker import RunController, RunSummary

    class _Sink(QObject):
        summary: RunSummary | None = None

        @Slot(object)
        def on_finished(self, s) -> None:
            self.summary = s

    ctrl, sink, loop = RunController(), _Sink(), QEventLoop()
    ctrl.run_finished.connect(sink.on_finished)
    ctrl.run_finished.connect(loop.quit)
    ctrl.start(problem, cfg)
    loop.exec()
    ctrl.shutdown()
    assert sink.summary is not None  # run_finished, connected before loop.quit, has set it
    return sink.summary.iterations_per_second


class DutyCycle:
    """Alternating quiet and loud blocks inside one run, and the iteration times seen in each.

    The worker's stream policy (``rwgui.gui.worker.StreamPolicy``, whose ``enabled`` the worker asks once per
    step): in a quiet block the worker sends nothing (no frame, report or kept iterate), so the window has
    nothing to do and the loop runs as it would headless; in a loud block it streams as usual. Adjacent blocks
    are seconds apart, so the host's speed, which drifts by 20 % over minutes on a shared machine, is the same
    for both: a far steadier comparison than separate runs. The first ``settle_s`` of a quiet block are not
    measured (the window finishes what it was sent, and the curves' once-a-second redraw fires)."""

    def __init__(self, block_s: float = 3.0, settle_s: float = 1.2) -> None:
        self.block_s, self.settle_s = block_s, settle_s
        self.loud = False
        self.start: float | None = None  # when the current block began; None before the first step
        self.prev = 0.0  # the previous step's time (read only once start is set)
        self.blocks: list[tuple[bool, list[float]]] = [(False, [])]

    def enabled(self, now: float) -> bool:
        """The worker asks after every step: stream it? (Only in a loud block.)"""
        self.tick(now)
        return self.loud

    def tick(self, now: float) -> None:
        """Called once every step: the time since the previous call goes to the current block."""
        if self.start is None:
            self.start = now
        elif self.loud or now - self.start >= self.settle_s:
            self.blocks[-1][1].append(now - self.prev)
        self.prev = now
        if now - self.start >= self.block_s:
            self.loud, self.start = not self.loud, now
            self.blocks.append((self.loud, []))

    def ratios(self) -> list[float]:
        """For each loud block between two measured quiet ones: mean quiet iteration time / mean loud one
        (the window's iteration rate over the headless rate)."""
        mean = [(loud, sum(t) / len(t)) for loud, t in self.blocks if t]
        return [
            (mean[i - 1][1] + mean[i + 1][1]) / 2 / mean[i][1]
            for i in range(1, len(mean) - 1)
            if mean[i][0] and not mean[i - 1][0] and not mean[i + 1][0]
        ]


def duty_cycled(win, cfg, seconds: float, block_s: float, settle_s: float = 1.2) -> list[float]:
    """Run ``cfg`` in ``win`` for ``seconds`` with streaming switched on and off in blocks; the ratios."""
    from PySide6.QtCore import QEventLoop, QTimer

    duty = DutyCycle(block_s, settle_s)
    controller = win.controller
    controller.stream_policy = duty  # the studio's own worker, streaming only in loud blocks
    try:
        win.settings_panel.set_config(cfg)
        loop = QEventLoop()
        controller.run_finished.connect(loop.quit)
        QTimer.singleShot(int(seconds * 1000), win.stop)
        win.start()
        loop.exec()
        controller.run_finished.disconnect(loop.quit)
    finally:
        controller.stream_policy = None
    return duty.ratios()


def gui_python_share(win, cfg, top: int = 0) -> float:
    """The GUI thread's time in Python (cProfile: everything but the idle event loop) over the wall time of
    one run in ``win``: the time it holds Python's lock, which the run's own Python then waits for."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    in_window(win, cfg)
    prof.disable()
    wall = time.perf_counter() - t0
    stats = pstats.Stats(prof)
    table = stats.stats  # type: ignore[attr-defined]  # Stats.stats, the profile's table, is missing from typeshed
    idle = sum(v[2] for k, v in table.items() if k[2].startswith("<method 'exec' of 'PySide6"))
    if top:
        stats.sort_stats("tottime").print_stats(top)
    return (wall - idle) / wall


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rwgui.bench.streaming", description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="alternating headless/GUI pairs per configuration")
    p.add_argument("--quick", action="store_true", help="one round, fewer iterations (a smoke run)")
    p.add_argument(
        "--configs",
        default="tiny,preset,large",
        help="comma-separated: tiny (64 px, small net), preset (96 px), large (192 px, the paper's net)",
    )
    p.add_argument("--longer", type=float, default=1.0, help="multiply every run's iterations (steadier medians)")
    p.add_argument("--no-worker-only", action="store_true", help="skip the worker-without-GUI runs")
    p.add_argument(
        "--in-run-seconds",
        type=float,
        default=90.0,
        help="length of the in-run (duty-cycled) measurement per configuration; 0 skips it",
    )
    p.add_argument("--block", type=float, default=3.0, help="seconds per quiet or loud block of the in-run measure")
    p.add_argument(
        "--profile-gui",
        type=int,
        default=0,
        metavar="N",
        help="also profile the GUI thread over one window run per configuration (its Python share, "
        "and the N functions that take most of it)",
    )
    p.add_argument(
        "--switch-interval-ms",
        type=float,
        default=0.0,
        help="the interpreter's GIL switch interval (0 = what the studio sets at start-up)",
    )
    args = p.parse_args(argv)
    import torch
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from rwgui.core.device import default_threads
    from rwgui.core.samples import load_sample
    from rwgui.gui.app import prepare
    from rwgui.gui.main_window import MainWindow

    prepare()  # what the studio does at start-up (threads, GIL switch interval)
    if args.switch_interval_ms > 0:
        sys.setswitchinterval(args.switch_interval_ms / 1000)
    threads = default_threads()
    torch.set_num_threads(threads)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    known = {
        "tiny": ("tiny prior", "tiny", 64, 300),
        "preset": ("preset prior (skip 128)", "preset", 96, 60),
        "large": ("preset prior (skip 128)", "preset", 192, 24),
    }
    configs = [known[k] for k in args.configs.split(",")]
    rounds = 1 if args.quick else args.rounds
    rows = []

    def gui_run(win, cfg) -> None:
        torch.set_num_threads(threads)
        g, f, b = in_window(win, cfg)
        gui.append(g)
        frames.append(f / (cfg.iterations / g))
        batches.append(b / (cfg.iterations / g))

    with tempfile.TemporaryDirectory() as tmp:
        store = QSettings(str(Path(tmp) / "rwgui.ini"), QSettings.Format.IniFormat)
        for label, prior, size, iterations in configs:
            iterations = iterations // 3 if args.quick else int(iterations * args.longer)
            win = MainWindow(settings=store, sample_size=size)
            # each Start (and the close) would ask Save / Discard / Cancel about the last run's iterates in a modal
            # box; a benchmark's runs are measurements, nothing to keep
            win.discard.ask = lambda action: "discard"  # type: ignore[method-assign]  # the hook discard.py offers
            win.resize(1400, 900)
            win.show()
            app.processEvents()
            problem = load_sample("denoise", size=size).problem()
            cfg = _config(prior, iterations)
            hl: list[float] = []
            wo: list[float] = []
            gui: list[float] = []
            frames: list[float] = []
            batches: list[float] = []
            headless(problem, cfg)  # warm-up: the first run in a process pays for kernel selection
            for r in range(rounds):  # the order alternates, so a drift in the machine's speed hits both alike
                for which in ("headless", "gui") if r % 2 == 0 else ("gui", "headless"):
                    if which == "headless":
                        hl.append(headless(problem, cfg))
                    else:
                        gui_run(win, cfg)
                if not args.no_worker_only:
                    wo.append(worker_only(problem, cfg))
            python_share = gui_python_share(win, cfg, args.profile_gui) if args.profile_gui else float("nan")
            duty: list[float] = []
            if args.in_run_seconds > 0 and not args.quick:
                torch.set_num_threads(threads)
                duty = sorted(duty_cycled(win, _config(prior, 10**6), args.in_run_seconds, args.block))
            win.close()
            app.processEvents()
            ratios = sorted(g / h for g, h in zip(gui, hl))
            q1, q3 = ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]
            rows.append(
                (
                    label,
                    size,
                    iterations,
                    statistics.median(hl),
                    statistics.median(wo) if wo else float("nan"),
                    statistics.median(gui),
                    statistics.median(ratios),
                    q1,
                    q3,
                    statistics.median(frames),
                    statistics.median(batches),
                    duty,
                    python_share,
                )
            )
    print(
        f"streaming cost, {os.cpu_count()} cores, torch threads {threads}, switch interval "
        f"{sys.getswitchinterval() * 1000:g} ms, {rounds} alternating round(s), medians"
    )
    print(
        f"{'configuration':<26}{'size':>5}{'iters':>6}{'headless':>10}{'worker only':>13}{'GUI':>8}"
        f"{'GUI/headless (IQR)':>26}{'frames/s':>10}{'batches/s':>11}{'in-run loud/quiet (IQR, blocks)':>36}"
        f"{'GUI Python':>12}"
    )
    for label, size, its, h, w_only, g, ratio, q1, q3, fps, bps, duty, share in rows:
        in_run = (
            f"{statistics.median(duty):>14.3f} ({duty[len(duty) // 4]:.3f}-{duty[3 * len(duty) // 4]:.3f}, {len(duty)})"
            if duty
            else f"{'-':>14}"
        )
        print(
            f"{label:<26}{size:>5}{its:>6}{h:>10.2f}{w_only:>13.2f}{g:>8.2f}{ratio:>12.3f} ({q1:.3f}-{q3:.3f})"
            f"{fps:>10.1f}{bps:>11.1f}{in_run}" + (f"{100 * share:>10.1f} %" if share == share else f"{'-':>12}")
        )
    print(
        "it/s columns: headless = the engine's loop with nobody streaming; worker only = the GUI worker thread "
        "streaming to a controller that draws nothing; GUI = the real window drawing frames, curves and the timeline. "
        "GUI/headless is the median of the rounds' paired ratios. in-run: one long run in the window whose worker "
        "streams in loud blocks and sends nothing in quiet ones; the median over loud blocks of the iteration "
        "rate against the quiet blocks on either side (see DutyCycle). GUI Python (--profile-gui): the GUI "
        "thread's share of wall time spent in Python, under cProfile (which inflates it somewhat)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
