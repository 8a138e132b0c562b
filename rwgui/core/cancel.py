"""Cooperative cancellation of a measurement on a helper thread.

Why: speed tuning (:mod:`rwgui.core.autotune`) and the estimate's timings step real networks for seconds, up
to tens of seconds on a busy machine or a large network. The studio runs them on helper threads, and a window
that closes, or a Stop pressed while a run is still measuring its speed, must not wait for them to finish: a
thread still stepping a network when Python exits aborts the process. Python cannot interrupt a thread, so the
thread's own code asks between steps.

The thread that may be cancelled runs its work inside :func:`cancellable`, naming what says "give up"; the
timing loops call :func:`check` between steps, which raises :class:`Cancelled` once it does. Outside such a
block (the CLI, the tests, the engine's own loop, which has :class:`~rwgui.core.engine.RunControl`)
:func:`check` does nothing. The flag lives in a context variable, so each thread sees only its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["Cancelled", "cancellable", "check"]

_asked: ContextVar[Callable[[], bool] | None] = ContextVar("rwgui_cancel_asked", default=None)


class Cancelled(Exception):
    """The work was given up between two steps because its owner asked (nothing was cached or written)."""


@contextmanager
def cancellable(asked: Callable[[], bool]) -> Iterator[None]:
    """Within the block, :func:`check` raises :class:`Cancelled` once ``asked()`` is true."""
    token = _asked.set(asked)
    try:
        yield
    finally:
        _asked.reset(token)


def check() -> None:
    """Raise :class:`Cancelled` if the surrounding :func:`cancellable` block's owner has asked to give up."""
    asked = _asked.get()
    if asked is not None and asked():
        raise Cancelled("given up: its owner asked")
