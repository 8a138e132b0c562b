"""``rwgui [PHOTO | SESSION] [--mask PATH] [--task ...]``: start the studio (a ``.rwgui`` session reopens as saved).

Two things happen before Qt is touched. Torch's intra-op threads are limited to (cores - 1) so the GUI
keeps a core (torch's default pool takes every core; the count must be set before any torch op, and the
engine sets it again in the run's thread). And on Linux we check that a Qt
platform plugin can load: without a display, or without the X11 libraries Qt's xcb plugin needs (pip cannot
install them), Qt aborts with a cryptic "could not load the Qt platform plugin" and a core dump; we print
what to install instead and exit 2.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys

from ..core.vocabulary import Task

__all__ = ["main", "platform_problem", "XCB_LIBRARIES"]

#: Shared libraries Qt's xcb platform plugin loads, and the Debian/Ubuntu package that ships each.
XCB_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}
_HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb", "vkkhrdisplay")


def _loadable(soname: str) -> bool:
    """Whether the dynamic loader finds ``soname`` (what Qt's plugin will ask it for)."""
    try:
        ctypes.CDLL(soname)
        return True
    except OSError:
        return False


def platform_problem(env: dict[str, str] | None = None, platform: str | None = None, loadable=_loadable) -> str | None:
    """A message saying what to do when Qt's platform plugin cannot load here, else None (Linux only)."""
    env = dict(os.environ) if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return None
    qpa = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip().lower()
    if qpa in _HEADLESS_PLATFORMS or qpa == "wayland" or (not qpa and env.get("WAYLAND_DISPLAY")):
        return None
    if not qpa and not env.get("DISPLAY"):
        return (
            "rwgui: no display found (neither DISPLAY nor WAYLAND_DISPLAY is set).\n"
            "  - On a desktop, start rwgui from a terminal inside the desktop session.\n"
            "  - Over SSH, use `ssh -X`, or run under a virtual display: xvfb-run rwgui\n"
            "  - Without any display (screenshots, CI): QT_QPA_PLATFORM=offscreen rwgui\n"
            "  - For restoring photos without a window, use the command line: rwgui-restore --help"
        )
    missing = [lib for lib in XCB_LIBRARIES if not loadable(lib)]
    if not missing:
        return None
    packages = " ".join(dict.fromkeys(XCB_LIBRARIES[lib] for lib in missing))
    return (
        "rwgui: Qt's X11 (xcb) platform plugin cannot load: these system libraries are missing:\n"
        f"  {', '.join(missing)}\n"
        "pip cannot install them. On Debian or Ubuntu:\n"
        f"  sudo apt-get install {packages}\n"
        "(on Fedora: sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms libxkbcommon-x11)\n"
        "Or run without a window: QT_QPA_PLATFORM=offscreen, or the command line rwgui-restore."
    )


def _limit_torch_threads() -> None:
    from ..core.device import default_threads

    n = default_threads()
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    import torch

    torch.set_num_threads(n)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="rwgui", description="Restore a photo with an untrained network (Deep Image Prior), live."
    )
    p.add_argument(
        "photo",
        nargs="?",
        help="photo to open, or a saved session (.rwgui) to reopen (default: a bundled sample with synthetic damage)",
    )
    p.add_argument("--mask", help="mask PNG for inpainting: white = keep, black = hole (the photo's size)")
    p.add_argument("--task", choices=tuple(Task), help="what to restore (default: the last one)")
    p.add_argument("--weights", help="pre-image: a classifier's weights (torchvision AlexNet or VGG state dict)")
    p.add_argument("--factor", type=int, choices=(2, 4, 8), help="super-resolution factor")
    p.add_argument(
        "--quit-after",
        type=float,
        metavar="SECONDS",
        help="close the window after SECONDS (smoke tests, scripted demos)",
    )
    return p.parse_args(argv)


#: The GIL switch interval under the window. The run's thread gives up the GIL at every tensor operation
#: and needs it back right after; with Python's default 5 ms it can then wait that long behind a repaint's
#: Python code on the GUI thread. A shorter interval hands it back sooner (rwgui.bench.streaming measures it).
GIL_SWITCH_S = 0.001


def prepare() -> bool:
    """Before any Qt or torch work: leave a core to the GUI, hand the GIL over promptly between the run and
    the GUI, and say what is missing if Qt cannot start."""
    _limit_torch_threads()
    sys.setswitchinterval(GIL_SWITCH_S)
    problem = platform_problem()
    if problem:
        print(problem, file=sys.stderr)
    return not problem


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not prepare():
        return 2
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("rwgui")
    app.setOrganizationName("rwgui")
    from ..core.session_file import is_session_path

    session = args.photo if is_session_path(args.photo) else None
    win = MainWindow(None if session else args.photo, mask=args.mask, task=args.task)
    if args.weights:
        win.set_classifier_weights(args.weights)
    if args.factor and (args.task or win.task()) == Task.SR:
        win.settings_panel.set_task(Task.SR, args.factor)
    if session:
        win.sessions.open_session(session)  # one that cannot be read says why; the window stays open
    win.show()
    if args.quit_after is not None:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(int(args.quit_after * 1000), win.close)
    code = app.exec()
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
