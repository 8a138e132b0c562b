"""Screenshots of the real window, taken by a script so that they can be made again after any change.

``python -m rwgui.gui.screenshot OUT.png [--iterations N]``: the main window after a short run.
``python -m rwgui.gui.screenshot --all DIR``: every view a person meets, one PNG each, in ``DIR``:

* ``main-window.png``: the studio after a short denoising run, the rule's pick shown as the result (the README's
  picture, ``assets/screenshot.png``, is this one);
* ``compare-before-after.png``: Compare before/after, fitted to the view;
* ``compare-iterates.png``: two timeline iterates (an early one and the result) side by side;
* ``lab.png`` and ``lab-hand-off.png``: the Lab after comparing three variants, and the main window after its
  best result was handed over (title, timeline and status line name the Lab's result);
* ``mask-tools.png``: inpainting with a mask painted by brush, rectangle and polygon, the mask tool bar shown.

Run it under an X server, for real sizes and fonts (``xvfb-run -a -s "-screen 0 1600x1000x24" python -m
rwgui.gui.screenshot --all DIR``); offscreen works too, with Qt's plain fallback fonts. Runs use the task's
preset on a crop of the bundled sample (about a minute on two CPU cores for ``--all``). The settings store and
the autosave folder are throw-away, so the person's own are never touched.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..core.vocabulary import RunState

__all__ = ["main", "screenshot_tasks"]


def screenshot_tasks() -> list[str]:
    """The tasks ``--task`` offers: every task of the registry (:mod:`rwgui.core.tasks`) whose damage the bundled
    sample makes by itself (the mask, the blur, the flash / no-flash pair, the JPEG blocks, the noise), so a new
    task is offered without touching this script. A task that needs what the script has no way to make (the
    pre-image's classifier weights) is left out."""
    from ..core.tasks import TASK_SPECS

    return [str(task) for task, spec in TASK_SPECS.items() if not spec.requires_weights]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m rwgui.gui.screenshot", description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", help="PNG to write (one screenshot of the main window)")
    p.add_argument("--all", metavar="DIR", help="write every screenshot into DIR instead")
    p.add_argument("--iterations", type=int, default=300, help="iterations of the run (default 300)")
    p.add_argument("--lab-iterations", type=int, default=80, help="iterations of each Lab variant (default 80)")
    p.add_argument("--size", type=int, default=128, help="side of the sample crop in pixels (default 128)")
    p.add_argument("--sample", default="astronaut", help="bundled sample: astronaut, chelsea or coffee")
    p.add_argument(
        "--task", default="denoise", choices=screenshot_tasks(), help="the task of the run (default denoise)"
    )
    p.add_argument("--width", type=int, default=1560)
    p.add_argument("--height", type=int, default=940)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave one core for the GUI)")
    p.add_argument("--timeout", type=float, default=900, help="give up on a run after this many seconds")
    args = p.parse_args(argv)
    if (args.out is None) == (args.all is None):
        p.error("give either OUT.png or --all DIR")
    return args


def _settle(app, seconds: float = 0.6) -> None:
    """Let frames, the timeline, the curves and the X server's layout catch up before a grab."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.02)


def _wait(app, done: Callable[[], bool], timeout: float) -> bool:
    t0 = time.perf_counter()
    while not done() and time.perf_counter() - t0 < timeout:
        app.processEvents()
        time.sleep(0.02)
    return done()


class _Shots:
    """One studio window, driven like a person would drive it, writing screenshots on the way."""

    def __init__(self, args: argparse.Namespace, store, app) -> None:
        from .main_window import MainWindow

        self.args, self.app = args, app
        self.win = MainWindow(task=args.task, settings=store, sample_size=args.size)
        if args.sample != "astronaut":
            self.win.open_sample(args.sample)
        self.win.resize(args.width, args.height)
        self.win.show()
        _settle(app)

    def config(self, iterations: int):
        from ..core.config import SpeedConfig, preset, preset_name

        sp = self.win.settings_panel
        return preset(
            preset_name(sp.task(), sp.factor()),
            iterations=iterations,
            stop="es-wmv",
            stop_params={"window": 50},
            auto_stop=False,
            speed=SpeedConfig(threads=self.args.threads),
        )

    def run(self) -> bool:
        win, args = self.win, self.args
        win.settings_panel.set_config(self.config(args.iterations))
        self.app.processEvents()
        t0 = time.perf_counter()
        if win.start() is None:
            print(f"could not start: {win.last_error}", file=sys.stderr)
            return False
        if not _wait(self.app, lambda: win.controller.state == RunState.IDLE, args.timeout):
            win.stop()
            _wait(self.app, lambda: win.controller.state == RunState.IDLE, 60)
        _settle(self.app, 1.0)
        s = win.last_summary
        if s is not None:
            print(
                f"{s.iterations} iterations in {time.perf_counter() - t0:.0f} s ({s.iterations_per_second:.1f} it/s,"
                f" {s.device}); pick {s.pick_iteration}; peak {s.peak}"
            )
        return True

    def grab(self, path: Path, widget=None) -> bool:
        _settle(self.app)
        ok = (widget or self.win).grab().save(str(path))
        print(f"wrote {path}" if ok else f"could not write {path}", file=sys.stdout if ok else sys.stderr)
        return ok

    def close(self) -> None:
        self.win.session.mark_saved()  # a scripted screenshot keeps nothing: closing must not ask about the run
        self.win.close()

    # ----- the views ------------------------------------------------------------------------------
    def compare_before_after(self, out: Path) -> bool:
        win = self.win
        win.acts.compare.setChecked(True)  # toggled -> set_compare, as a click does
        _settle(self.app)
        win.view_fit()
        ok = self.grab(out / "compare-before-after.png")
        win.acts.compare.setChecked(False)
        return ok

    def compare_iterates(self, out: Path) -> bool:
        win = self.win
        keys = win.history.keys()
        result = win.history.result_key()
        early = next((k for k in keys if isinstance(k, int)), None)
        if early is None or result is None:
            print("no iterates to compare", file=sys.stderr)
            return False
        win.timeline.compare_requested.emit(early, result)
        ok = self.grab(out / "compare-iterates.png")
        win.acts.compare.setChecked(False)
        return ok

    def lab(self, out: Path) -> bool:
        win, app = self.win, self.app
        win.settings_panel.set_config(self.config(self.args.lab_iterations))
        win.lab.open()
        panel = win.lab.panel
        for prior, loss, weight in (("skip", "none", None), ("skip", "cdc", 0.1), ("skip", "tv", 0.01)):
            panel.add_variant(prior, loss, weight)
        if not panel.run_queue():
            print("the Lab did not start", file=sys.stderr)
            return False
        _wait(app, lambda: not panel.is_running(), self.args.timeout)
        dock = win.lab.dock
        if dock.isFloating():
            dock.resize(1200, 860)
        ok = self.grab(out / "lab.png", dock)
        if panel.use_result():  # hand the best over: the main window names the Lab's result everywhere
            dock.hide()
            ok = self.grab(out / "lab-hand-off.png") and ok
        return ok

    def mask_tools(self, out: Path) -> bool:
        win = self.win
        win.session.mark_saved()  # the task switch makes the sample again: nothing here is worth a question
        win.settings_panel.set_task("inpaint")
        _settle(self.app)
        pv = win.photo_view
        size = pv.image_size()
        if size is None:
            return False
        w, h = size
        pv.clear()
        pv.brush_size = max(4, w // 14)
        pv.paint_stroke([(w * 0.15, h * 0.2), (w * 0.35, h * 0.3), (w * 0.5, h * 0.25)])
        if hasattr(pv, "fill_rect"):
            pv.fill_rect(w * 0.6, h * 0.55, w * 0.85, h * 0.8)
        if hasattr(pv, "fill_polygon"):
            pv.fill_polygon([(w * 0.15, h * 0.7), (w * 0.35, h * 0.6), (w * 0.4, h * 0.9), (w * 0.2, h * 0.85)])
        tools = getattr(win.acts, "mask_tools", {})
        if "brush" in tools:
            tools["brush"].trigger()
        win.view_fit()
        return self.grab(out / "mask-tools.png")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    from .app import prepare

    if not prepare():
        return 2
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        store = QSettings(str(Path(tmp) / "rwgui.ini"), QSettings.Format.IniFormat)
        os.environ["RWGUI_DATA_DIR"] = str(Path(tmp) / "data")  # its autosave is thrown away too
        shots = _Shots(args, store, app)
        try:
            if args.out is not None:
                return 0 if shots.run() and shots.grab(Path(args.out)) else 1
            out = Path(args.all)
            out.mkdir(parents=True, exist_ok=True)
            ok = shots.run()
            shots.win.view_fit()
            ok = ok and shots.grab(out / "main-window.png")
            ok = shots.compare_before_after(out) and ok
            ok = shots.compare_iterates(out) and ok
            ok = shots.lab(out) and ok
            ok = shots.mask_tools(out) and ok
            return 0 if ok else 1
        finally:
            shots.close()


if __name__ == "__main__":
    sys.exit(main())
