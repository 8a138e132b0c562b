"""torch's global random generator, shared safely between threads.

A network's initial weights are drawn from torch's *global* generator, and there is one per process. Engines are
built on several threads (a run's worker, the estimate's timing, the Lab), and the memory probe draws weights too.
Without a lock, one thread's seeding could land between another's seeding and its draws, and "same seed, same
run" would fail at random. Every section that seeds or draws from the global generator holds :data:`LOCK`
(re-entrant: a probe may build inside a seeded section).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

LOCK = threading.RLock()


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Draws in this block follow ``seed`` alone, whatever other threads do meanwhile."""
    with LOCK:
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def private() -> Iterator[None]:
    """Draws in this block leave the global stream as it was (a probe's throwaway weights)."""
    with LOCK, torch.random.fork_rng(devices=[]):
        yield
