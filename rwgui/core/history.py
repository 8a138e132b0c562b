"""A bounded store of kept iterates: what the timeline can scrub back to, at a stated memory cost.

Why it exists: a Deep Image Prior run peaks and then reproduces the damage, so the best iterate is often one
the run has long moved past. Keeping every iterate at full resolution is impossible (3000 x 256x256 RGB is
1.2 GB at 16 bits), so this store keeps

* full-resolution iterates as **uint16** HxWxC (export writes 16-bit when the input was 16-bit) plus a small
  **uint8 RGBA thumbnail** each, for the timeline strip;
* recent iterates densely and old ones thinned: when the store is over its memory cap (default 512 MiB) or
  its entry count, it drops the entry whose removal leaves the smallest gap *relative to its age*, so the
  spacing between kept iterates grows roughly in proportion to their age (a log-spaced timeline);
* pinned iterates, the latest one and the stopping rule's pick never thinned;
* the latest running average and the running average at the rule's pick as two pseudo-entries.

The producer (the GUI worker) offers iterates on :class:`KeepSchedule`'s schedule, whose spacing doubles each
time the iteration count doubles, so a long run offers about ``per_octave`` iterates per doubling, not one per
step. Qt-free: the GUI owns one store and fills it from worker payloads on its own thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .pixels import as_u16, rgba8_for_display, u16_to_float
from .vocabulary import Iterate

__all__ = [
    "AVERAGE",
    "PICK_AVERAGE",
    "Key",
    "Kept",
    "KeepSchedule",
    "IterateHistory",
    "thumbnail",
]

AVERAGE = Iterate.AVERAGE  #: key of the latest running average
PICK_AVERAGE = Iterate.PICK_AVERAGE  #: key of the running average at the rule's pick (the default result)
Key = int | str
DEFAULT_CAP_BYTES = 512 * 2**20


def thumbnail(img: np.ndarray, side: int = 96) -> np.ndarray:
    """A small HxWx4 uint8 copy whose longer side is at most ``side`` (area averaging)."""
    rgba = rgba8_for_display(img)
    h, w = rgba.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return rgba.copy()
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.ascontiguousarray(cv2.resize(rgba, size, interpolation=cv2.INTER_AREA))


@dataclass
class Kept:
    """One kept image: full-resolution uint16 pixels and a uint8 RGBA thumbnail."""

    key: Key
    iteration: int
    pixels: np.ndarray
    thumb: np.ndarray
    pinned: bool = False
    label: str = ""  # a named entry's human name (see IterateHistory.put); empty for a run's own entries

    @property
    def nbytes(self) -> int:
        return int(self.pixels.nbytes + self.thumb.nbytes)


@dataclass(frozen=True)
class KeepSchedule:
    """Which iterations to offer the store: multiples of a spacing that doubles with every doubling of the
    iteration count past ``per_octave`` (1, 2, ..., per_octave, then every 2nd up to 2*per_octave, ...).

    A pure function of the iteration: safe to call from the worker thread.
    """

    per_octave: int = 32

    def spacing(self, iteration: int) -> int:
        k = max(0, int(iteration // max(1, self.per_octave)).bit_length() - 1)
        return 1 << k

    def wants(self, iteration: int) -> bool:
        return iteration > 0 and iteration % self.spacing(iteration) == 0

    @staticmethod
    def for_size(entry_bytes: int, cap_bytes: int = DEFAULT_CAP_BYTES) -> KeepSchedule:
        """A schedule that offers about a tenth of what the cap can hold per doubling (4..64)."""
        return KeepSchedule(int(np.clip(cap_bytes // max(1, entry_bytes) // 10, 4, 64)))


class IterateHistory:
    """Kept iterates keyed by iteration (int) plus the ``AVERAGE`` and ``PICK_AVERAGE`` pseudo-entries.

    ``memory_bytes`` (pixels + thumbnails of everything held) stays at or under ``cap_bytes`` as long as
    the pinned entries alone fit; when they do not, new unpinned iterates are refused rather than the cap
    broken. ``max_entries`` bounds the number of raw iterates (the timeline strip shows them all).
    """

    def __init__(self, cap_bytes: int = DEFAULT_CAP_BYTES, max_entries: int = 400, thumb_side: int = 96) -> None:
        self.cap_bytes = int(cap_bytes)
        self.max_entries = int(max_entries)
        self.thumb_side = int(thumb_side)
        self.clear()

    def clear(self) -> None:
        self._raw: dict[int, Kept] = {}
        self._special: dict[str, Kept] = {}
        self._pick: int | None = None
        self.chosen: Key | None = None  # the person's "Keep this one"; None = the rule's pick
        self._bytes = 0
        self.dropped = 0  # iterates thinned out so far (for the status line and tests)

    # ----- adding ---------------------------------------------------------------------------------
    def _make(self, key: Key, iteration: int, pixels: np.ndarray, thumb: np.ndarray | None) -> Kept:
        px = as_u16(pixels)
        if px.ndim == 2:
            px = px[:, :, None]
        th = thumbnail(px, self.thumb_side) if thumb is None else np.ascontiguousarray(thumb)
        return Kept(key, int(iteration), px, th)

    def add(self, iteration: int, pixels: np.ndarray, thumb: np.ndarray | None = None) -> bool:
        """Keep a raw iterate; thins older ones as needed. False when it could not be kept (cap full of pins)."""
        iteration = int(iteration)
        old = self._raw.get(iteration)
        entry = self._make(iteration, iteration, pixels, thumb)
        if old is not None:
            entry.pinned = old.pinned
            self._bytes -= old.nbytes
        self._raw[iteration] = entry
        self._bytes += entry.nbytes
        self._thin()
        return iteration in self._raw

    def set_average(self, iteration: int, pixels: np.ndarray, thumb: np.ndarray | None = None) -> None:
        """The latest running average (replaces the previous one)."""
        self._set_special(AVERAGE, iteration, pixels, thumb)

    def set_pick(
        self, iteration: int, raw: np.ndarray, average: np.ndarray | None = None, thumb: np.ndarray | None = None
    ) -> None:
        """The stopping rule's pick: its raw iterate is kept (protected) and its running average stored."""
        self._pick = int(iteration)
        if self._pick not in self._raw:
            self.add(self._pick, raw, thumb)
        if average is not None:
            self._set_special(PICK_AVERAGE, iteration, average)
        self._thin()

    def put(self, key: str, iteration: int, pixels: np.ndarray, label: str, thumb: np.ndarray | None = None) -> None:
        """A named entry made outside the run (the Lab's result handed to the window): listed after the two
        averages, never thinned, replaced when ``key`` is put again. It sits next to the run's iterates so that
        taking it throws nothing away."""
        if key in (AVERAGE, PICK_AVERAGE):
            raise ValueError(f"{key!r} is the run's own entry")
        self._set_special(key, iteration, pixels, thumb)
        self._special[key].label = label

    def _set_special(self, key: str, iteration: int, pixels: np.ndarray, thumb: np.ndarray | None = None) -> None:
        old = self._special.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
        entry = self._make(key, iteration, pixels, thumb)
        self._special[key] = entry
        self._bytes += entry.nbytes
        self._thin()

    # ----- thinning --------------------------------------------------------------------------------
    def _protected(self, it: int, latest: int) -> bool:
        return it == latest or it == self._pick or self._raw[it].pinned or it == self.chosen

    def _thin(self) -> None:
        """Drop the entry with the smallest (gap it would leave) / (its age) until under both caps."""
        while self._raw and (self._bytes > self.cap_bytes or len(self._raw) > self.max_entries):
            its = sorted(self._raw)
            latest = its[-1]
            best, best_score = None, np.inf
            for i, it in enumerate(its):
                if self._protected(it, latest):
                    continue
                prev = its[i - 1] if i > 0 else 0
                gap = its[i + 1] - prev
                score = gap / (latest - it + 1)
                if score < best_score:
                    best, best_score = it, score
            if best is None:  # only protected entries left: refuse the newest unless it is pinned or chosen
                e = self._raw[latest]
                if e.pinned or latest == self._pick or latest == self.chosen:
                    break
                best = latest
            self._bytes -= self._raw.pop(best).nbytes
            self.dropped += 1

    # ----- pins and choice -------------------------------------------------------------------------
    def pin(self, iteration: int, on: bool = True) -> None:
        """Pinned iterates are never thinned."""
        self._raw[int(iteration)].pinned = bool(on)
        if not on:
            self._thin()

    def is_pinned(self, iteration: int) -> bool:
        e = self._raw.get(int(iteration))
        return bool(e and e.pinned)

    def choose(self, key: Key | None) -> None:
        """Make ``key`` the result ("Keep this one"); ``None`` goes back to the rule's pick."""
        if key is not None and key not in self:
            raise KeyError(key)
        self.chosen = key

    def result_key(self) -> Key | None:
        """What Save result exports: the person's choice, else the average at the rule's pick, else the latest
        raw iterate (before the rule has a pick the running average still remembers the noisy first iterates)."""
        if self.chosen is not None and self.chosen in self:
            return self.chosen
        if PICK_AVERAGE in self._special:
            return PICK_AVERAGE
        if self._raw:
            return max(self._raw)
        return AVERAGE if AVERAGE in self._special else None

    # ----- reading ---------------------------------------------------------------------------------
    @property
    def pick_iteration(self) -> int | None:
        return self._pick

    @property
    def memory_bytes(self) -> int:
        return self._bytes

    def iterations(self) -> list[int]:
        return sorted(self._raw)

    def keys(self) -> list[Key]:
        """Raw iterates in order, then the pseudo-entries (average at the pick, latest average), then the named
        entries (:meth:`put`) in the order they were put."""
        special: list[Key] = [k for k in (PICK_AVERAGE, AVERAGE) if k in self._special]
        named: list[Key] = [k for k in self._special if k not in (PICK_AVERAGE, AVERAGE)]
        return list(self.iterations()) + special + named

    def __contains__(self, key: object) -> bool:
        return key in self._raw or key in self._special

    def __len__(self) -> int:
        return len(self._raw) + len(self._special)

    def entry(self, key: Key) -> Kept:
        if isinstance(key, str):
            return self._special[key]
        return self._raw[int(key)]

    def image(self, key: Key) -> np.ndarray:
        """HxWxC float32 in [0, 1] (what export writes)."""
        return u16_to_float(self.entry(key).pixels)

    def rgba(self, key: Key) -> np.ndarray:
        """HxWx4 uint8 for display."""
        return rgba8_for_display(self.entry(key).pixels)

    def label(self, key: Key) -> str:
        """A human name: 'Iteration 812', 'Running average (it. 3000)', 'Average at the pick (it. 812)'."""
        e = self.entry(key)
        if e.label:
            return e.label
        if key == AVERAGE:
            return f"Running average (it. {e.iteration})"
        if key == PICK_AVERAGE:
            return f"Average at the rule's pick (it. {e.iteration})"
        return f"Iteration {e.iteration}"
