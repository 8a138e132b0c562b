"""What streaming to the GUI costs: engine iterations per second in the real window vs headless.

``python -m rwgui.bench.streaming`` runs the same problem and settings alternately (a) headless, a plain
``Engine.step()`` loop, and (b) in the real main window (offscreen unless a display is set) with the worker
streaming reports, frames at the default rate (~15/s), kept iterates and the rule's pick, while the GUI draws
them. Both use the GUI's torch thread count (cores - 1), so the only difference is the streaming. Engine
construction is excluded from both timings. A third run per round, the worker streaming to a controller
that draws nothing, separates the worker's own cost from the GUI's drawing. It prints one table.
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
    """Iterations per second of a bare step loop."""
    from rwgui.core.engine import Engine

    engine = Engine(problem, cfg)
    t0 = time.perf_counter()
    for _ in range(cfg.iterations):
        engine.step()
    return cfg.iterations / (time.perf_counter() - t0)


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

    from rwgui.gui.worker import RunController

    class _Sink(QObject):
        summary = None

        @Slot(object)
        def on_finished(self, s) -> None:
            self.summary = s

    ctrl, sink, loop = RunController(), _Sink(), QEventLoop()
    ctrl.run_finished.connect(sink.on_finished)
    ctrl.run_finished.connect(loop.quit)
    ctrl.start(problem, cfg)
    loop.exec()
    ctrl.shutdown()
    return sink.summary.iterations_per_second


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rwgui.bench.streaming", description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="alternating headless/GUI pairs per configuration")
    p.add_argument("--quick", action="store_true", help="one round, fewer iterations (a smoke run)")
    p.add_argument("--configs", default="tiny,preset,large",
                   help="comma-separated: tiny (64 px, small net), preset (96 px), large (192 px, the paper's net)")
    p.add_argument("--longer", type=float, default=1.0, help="multiply every run's iterations (steadier medians)")
    p.add_argument("--no-worker-only", action="store_true", help="skip the worker-without-GUI runs")
    p.add_argument("--switch-interval-ms", type=float, default=0.0,
                   help="the interpreter's GIL switch interval (0 = what the studio sets at start-up)")
    args = p.parse_args(argv)
    import torch
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from rwgui.core.device import default_threads
    from rwgui.core.samples import load_sample
    from rwgui.gui.main_window import MainWindow

    from rwgui.gui.app import prepare

    prepare()  # what the studio does at start-up (threads, GIL switch interval)
    if args.switch_interval_ms > 0:
        sys.setswitchinterval(args.switch_interval_ms / 1000)
    threads = default_threads(gui=True)
    torch.set_num_threads(threads)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    known = {"tiny": ("tiny prior", "tiny", 64, 300), "preset": ("preset prior (skip 128)", "preset", 96, 60),
             "large": ("preset prior (skip 128)", "preset", 192, 24)}
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
            win.resize(1400, 900)
            win.show()
            app.processEvents()
            problem = load_sample("denoise", size=size).problem()
            cfg = _config(prior, iterations)
            hl, wo, gui, frames, batches = [], [], [], [], []
            headless(problem, cfg)  # warm-up: the first run in a process pays for kernel selection
            for r in range(rounds):  # the order alternates, so a drift in the machine's speed hits both alike
                pair = [lambda: hl.append(headless(problem, cfg)), lambda: gui_run(win, cfg)]
                for run in pair if r % 2 == 0 else pair[::-1]:
                    run()
                if not args.no_worker_only:
                    wo.append(worker_only(problem, cfg))
            win.close()
            app.processEvents()
            ratios = sorted(g / h for g, h in zip(gui, hl))
            q1, q3 = ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]
            rows.append((label, size, iterations, statistics.median(hl),
                         statistics.median(wo) if wo else float("nan"), statistics.median(gui),
                         statistics.median(ratios), q1, q3, statistics.median(frames), statistics.median(batches)))
    print(f"streaming cost, {os.cpu_count()} cores, torch threads {threads}, switch interval "
          f"{sys.getswitchinterval() * 1000:g} ms, {rounds} alternating round(s), medians")
    print(f"{'configuration':<26}{'size':>5}{'iters':>6}{'headless':>10}{'worker only':>13}{'GUI':>8}"
          f"{'GUI/headless (IQR)':>26}{'frames/s':>10}{'batches/s':>11}")
    for label, size, its, h, wo, g, ratio, q1, q3, fps, bps in rows:
        print(f"{label:<26}{size:>5}{its:>6}{h:>10.2f}{wo:>13.2f}{g:>8.2f}{ratio:>12.3f} ({q1:.3f}-{q3:.3f})"
              f"{fps:>10.1f}{bps:>11.1f}")
    print("it/s columns: headless = bare Engine.step() loop; worker only = the GUI worker thread streaming to a "
          "controller that draws nothing; GUI = the real window drawing frames, curves and the timeline. "
          "GUI/headless is the median of the rounds' paired ratios")
    return 0


if __name__ == "__main__":
    sys.exit(main())
