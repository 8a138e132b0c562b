"""Autosave: the open session written to the user's data folder at a bounded rate, and found again after a crash.

Why: a run can take hours and a mask minutes of painting; a crash, a kill or a power cut must not take them.
Each studio window owns a *slot*, ``DATA/autosave/<id>/``, holding

* ``lock.json``: written when the window opens, removed when it closes cleanly. A lock left behind by a process
  that is gone (or by an earlier window of this process that never closed) means that session ended uncleanly;
* ``autosave.rwgui``: the session (:mod:`rwgui.core.session_file`), written atomically (temporary file, then
  ``os.replace``), so a write killed half-way leaves the previous autosave readable.

``DATA`` is the studio's application data folder (``QStandardPaths.AppDataLocation``, e.g.
``~/.local/share/rwgui/rwgui`` on Linux), or the folder named by the ``RWGUI_DATA_DIR`` environment variable.

How much can be lost: a change the person makes (a mask stroke, a pin, the chosen result, a setting, a Lab
result taken) is written :data:`EDIT_DELAY_S` seconds after it (a burst of strokes makes one write); during a
run, the new iterates and curves are written at most every :data:`RUN_INTERVAL_S` seconds. So a crash loses at
most the last :data:`RUN_INTERVAL_S` seconds of a run and the last :data:`EDIT_DELAY_S` seconds of edits, plus the
duration of one write. One more bound keeps autosave cheap whatever the session's size: the next write waits at
least :data:`WRITE_GAP_FACTOR` times as long as the last one took, so autosave never spends more than a fifth of
the time writing. Measured for a 512x512 photo (two shared CPU cores, writes landing in the page cache): photo and
mask alone 8 ms (4 MB), with 40 kept iterates 0.14 s (70 MB), with a full history at its 512 MiB memory cap
(300 iterates) 1.1 s (490 MB). That last figure is why writes are not made on the GUI thread.

Writes happen on a thread of their own from a :class:`~rwgui.core.session_file.SessionData` snapshot taken on
the GUI thread (cheap: it shares the session's arrays, which the session replaces rather than changes, and copies
the curves), so the window never waits for a write. Qt-free: the window's timer asks :meth:`Autosave.seconds_due`
and hands over snapshots.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import RwguiError
from .session_file import SUFFIX, SessionData, peek_session, write_session

__all__ = [
    "DATA_DIR_ENV",
    "EDIT_DELAY_S",
    "RUN_INTERVAL_S",
    "WRITE_GAP_FACTOR",
    "Autosave",
    "Recoverable",
    "data_dir",
    "discard",
    "find_recoverable",
]

DATA_DIR_ENV = "RWGUI_DATA_DIR"
RUN_INTERVAL_S = 30.0  #: during a run, at most one autosave per this many seconds
EDIT_DELAY_S = 3.0  #: a person's change is autosaved this many seconds after it
WRITE_GAP_FACTOR = 4.0  #: the next write waits at least this many times the last write's duration
SLOTS = "autosave"
LOCK = "lock.json"
FILE = "autosave" + SUFFIX

_LIVE: set[str] = set()  # slots owned by windows of this process that are still open


def data_dir(default: str | os.PathLike[str] | None = None) -> Path:
    """Where autosaves live: ``$RWGUI_DATA_DIR``, else ``default`` (the GUI passes Qt's AppDataLocation), else
    ``~/.local/share/rwgui``."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    if default:
        return Path(default)
    return Path.home() / ".local" / "share" / "rwgui"


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (a lock of a live process belongs to another open studio)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined,unused-ignore]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class Recoverable:
    """An autosave left by a studio that did not close cleanly."""

    slot: Path
    path: Path
    saved_at: float
    description: str


def find_recoverable(folder: str | os.PathLike[str]) -> list[Recoverable]:
    """Autosaves whose studio ended without closing (newest first). A slot whose lock names a live process is
    another open studio's and is left alone; a lock without an autosave (a crash before anything was made) is
    removed."""
    root = Path(folder) / SLOTS
    if not root.is_dir():
        return []
    found = []
    for slot in root.iterdir():
        lock = slot / LOCK
        if not lock.is_file():
            continue
        try:
            info = json.loads(lock.read_text(encoding="utf-8"))
            pid = int(info.get("pid", -1)) if isinstance(info, dict) else -1
        except (OSError, ValueError, UnicodeDecodeError):
            pid = -1
        if slot.name in _LIVE or (pid != os.getpid() and _pid_alive(pid)):
            continue
        path = slot / FILE
        if not path.is_file():
            discard(slot)
            continue
        try:
            saved_at, description = peek_session(path)
        except RwguiError as exc:
            saved_at, description = path.stat().st_mtime, f"unreadable: {exc}"
        found.append(Recoverable(slot, path, saved_at, description))
    return sorted(found, key=lambda r: r.saved_at, reverse=True)


def discard(slot: str | os.PathLike[str]) -> None:
    """Remove an autosave slot (its lock, its autosave and any stray temporary file)."""
    shutil.rmtree(slot, ignore_errors=True)


class Autosave:
    """One window's autosave slot and the thread that writes it.

    The window calls :meth:`changed` for each change (``during_run`` for a run's iterates and curves), asks
    :meth:`seconds_due` when to come back, and at that time hands a snapshot to :meth:`save`. :meth:`close`
    on a clean exit removes the slot; a crash leaves it for :func:`find_recoverable`."""

    def __init__(self, folder: str | os.PathLike[str], clock: Callable[[], float] = time.monotonic) -> None:
        self.folder = Path(folder)
        self.slot = self.folder / SLOTS / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self.path = self.slot / FILE
        self.clock = clock
        self.last_error: str | None = None
        self.last_write_s = 0.0
        self.writes = 0
        self._due: float | None = None
        self._last_end = -float("inf")
        self._pending: SessionData | None = None
        self._busy = False
        self._closed = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    # ----- the slot -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Claim the slot: the lock says a studio is open (the autosave is written only once there is work)."""
        self.slot.mkdir(parents=True, exist_ok=True)
        info = {"pid": os.getpid(), "started": time.time()}
        (self.slot / LOCK).write_text(json.dumps(info), encoding="utf-8")
        _LIVE.add(self.slot.name)
        self._thread = threading.Thread(target=self._loop, name="rwgui-autosave", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """A clean exit: wait for a write in progress, then remove the slot (nothing is offered next time)."""
        self._stop()
        discard(self.slot)

    def abandon(self) -> None:
        """Stop as a killed process would: the lock and the last autosave stay (tests use it for a crash)."""
        self._stop()

    def _stop(self) -> None:
        with self._cond:
            self._closed = True
            self._pending = None
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60)
        _LIVE.discard(self.slot.name)

    def clear(self) -> None:
        """Nothing worth keeping any more (no photo, no work): remove the autosave, keep the lock."""
        with self._cond:
            self._pending = None
            self._due = None
            while self._busy:
                self._cond.wait()
            with contextlib.suppress(OSError):
                self.path.unlink()

    # ----- when to write ----------------------------------------------------------------------------------
    def changed(self, during_run: bool = False) -> None:
        """Something changed: a write becomes due (an edit after :data:`EDIT_DELAY_S`, a run's progress
        :data:`RUN_INTERVAL_S` after the last write), never sooner than the last write's duration allows."""
        now = self.clock()
        due = self._last_end + RUN_INTERVAL_S if during_run else now + EDIT_DELAY_S
        due = max(due, now, self._last_end + WRITE_GAP_FACTOR * self.last_write_s)
        self._due = due if self._due is None else min(self._due, due)

    def seconds_due(self) -> float | None:
        """Seconds until a write is due (0 = now), or None when nothing changed since the last one."""
        if self._due is None:
            return None
        return max(0.0, self._due - self.clock())

    # ----- writing ------------------------------------------------------------------------------------
    def save(self, data: SessionData) -> None:
        """Hand a snapshot to the writer thread and return at once; a snapshot still waiting is replaced."""
        with self._cond:
            if self._closed:
                return
            self._due = None
            self._pending = data
            self._cond.notify_all()

    def busy(self) -> bool:
        with self._cond:
            return self._busy or self._pending is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no write is waiting or in progress (tests, and a clean exit); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy and self._pending is None, timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._pending is not None)
                if self._closed:
                    return
                data, self._pending, self._busy = self._pending, None, True
            t0 = time.perf_counter()
            error = None
            try:
                assert data is not None
                write_session(self.path, data)
            except RwguiError as exc:
                error = str(exc)
            except Exception as exc:  # a bug must not kill the thread and stop autosave for good
                error = f"autosave failed: {exc!r}"
            with self._cond:
                self.last_write_s = time.perf_counter() - t0
                self._last_end = self.clock()
                self.last_error = error
                self.writes += error is None
                self._busy = False
                self._cond.notify_all()
