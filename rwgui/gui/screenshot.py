"""``python -m rwgui.gui.screenshot OUT.png [--iterations N]``: a picture of the real window after a short run.

Runs the studio (under Xvfb in practice: ``xvfb-run -s "-screen 0 1600x1000x24" python -m rwgui.gui.screenshot
OUT.png``), opens a crop of the bundled sample, runs the task's preset for a few hundred iterations (about a
minute on two CPU cores at the default size), waits for the run to end and saves ``window.grab()``.
The settings store is a throw-away file, so the person's own settings are never touched.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from ..core.vocabulary import RunState

__all__ = ["main"]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m rwgui.gui.screenshot", description=__doc__.splitlines()[0])
    p.add_argument("out", help="PNG to write")
    p.add_argument("--iterations", type=int, default=300, help="iterations of the run (default 300)")
    p.add_argument("--size", type=int, default=128, help="side of the sample crop in pixels (default 128)")
    p.add_argument("--sample", default="astronaut", help="bundled sample: astronaut, chelsea or coffee")
    p.add_argument("--task", default="denoise", choices=("denoise", "sr", "inpaint"))
    p.add_argument("--width", type=int, default=1560)
    p.add_argument("--height", type=int, default=940)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave one core for the GUI)")
    p.add_argument("--timeout", type=float, default=900, help="give up after this many seconds")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    from .app import prepare

    if not prepare():
        return 2
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from ..core.config import SpeedConfig, preset, preset_name
    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        store = QSettings(str(Path(tmp) / "rwgui.ini"), QSettings.Format.IniFormat)
        os.environ["RWGUI_DATA_DIR"] = str(Path(tmp) / "data")  # its autosave is thrown away too
        win = MainWindow(task=args.task, settings=store, sample_size=args.size)
        if args.sample != "astronaut":
            win.open_sample(args.sample)
        win.resize(args.width, args.height)
        win.show()
        sp = win.settings_panel
        cfg = preset(
            preset_name(args.task, sp.factor()),
            iterations=args.iterations,
            stop="es-wmv",
            stop_params={"window": 50},
            auto_stop=False,
            speed=SpeedConfig(threads=args.threads),
        )
        sp.set_config(cfg)
        app.processEvents()
        t0 = time.perf_counter()
        if win.start() is None:
            print(f"could not start: {win.last_error}", file=sys.stderr)
            return 1
        while win.controller.state != RunState.IDLE and time.perf_counter() - t0 < args.timeout:
            app.processEvents()
            time.sleep(0.02)
        if win.controller.state != RunState.IDLE:
            win.stop()
        end = time.perf_counter() + 1.0
        while time.perf_counter() < end:  # let the last frames, the timeline and the curves settle
            app.processEvents()
            time.sleep(0.02)
        ok = win.grab().save(args.out)
        s = win.last_summary
        if s is not None:
            print(
                f"{s.iterations} iterations in {time.perf_counter() - t0:.0f} s ({s.iterations_per_second:.1f} it/s,"
                f" {s.device}); pick {s.pick_iteration}; peak {s.peak}"
            )
        win.session.mark_saved()  # a scripted screenshot keeps nothing: closing must not ask about the run
        win.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
