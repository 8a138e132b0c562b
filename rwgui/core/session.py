"""One restoration session as a model: everything a person made or chose, and events when any of it changes.

Why a model: the window, its docks and the Lab all show parts of the same document (the photo, its mask, the
settings, the kept iterates, the curves, the Lab's results). Keeping that state in one Qt-free object, which
announces each change with a psygnal event, lets every view follow it without knowing the others, and gives
one thing to write when a session is saved. The model knows no view: widgets connect to its events (all of
them fire in the thread that made the change, which in the studio is the GUI thread).

What the session holds:

* ``photo`` (:class:`~rwgui.core.photo.Photo`) and ``mask`` (HxW float32, 1 = known; the painted one);
* ``settings``: the settings the next run will use (the settings dock edits them);
* ``run_config``: the settings that made the result (the last run started, or a Lab variant's settings when
  the result is the one taken from the Lab): exported settings reproduce the result, not the form;
* ``working`` and ``working_mask``: the working size the result was made at (a crop or a downscale when the
  full photo did not fit), and the mask it started with, so :meth:`result_pixels` can paste a crop back;
* ``history`` (:class:`~rwgui.core.history.IterateHistory`) and ``curves`` (:class:`~rwgui.core.curves.CurveData`);
* ``lab_results``: one :class:`LabResult` per Lab variant with a result, and ``lab_result``, the one taken.

Unsaved work (``dirty``): kept iterates, a pin, a chosen result or a Lab result taken that no save has covered
yet. Whatever writes the result or the session calls :meth:`Session.mark_saved`; the window asks before an action
that would throw dirty work away. Starting a run, a new photo or :meth:`Session.clear_run` leave nothing to lose.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from psygnal import Signal

from .compositing import describe_result, result_seam
from .config import RunConfig
from .curves import CurveData
from .history import IterateHistory, Key
from .photo import Photo
from .vocabulary import Iterate, WorkingMode
from .working_size import Working, to_full

__all__ = ["LabResult", "Session"]


@dataclass(frozen=True, eq=False)
class LabResult:
    """One Lab variant's answer, handed to the window when the person takes it.

    ``image`` is HxWxC float32 in [0, 1]: the running average at the variant's pick (the run's answer), at the
    size the Lab ran at. ``psnr`` is that image's PSNR when a ground truth is known. ``key`` identifies the
    variant's row in the Lab. Compared by identity: two results are the same only if they are one object."""

    key: int
    variant_label: str
    config: RunConfig
    pick_iteration: int
    image: np.ndarray
    psnr: float | None = None
    best: bool = False


class Session:
    """The document of one window: photo, mask, settings, working size, kept iterates, curves, Lab results."""

    photo_changed = Signal(object)  # Photo | None; the run (history, curves, working size) was cleared first
    second_photo_changed = Signal(object)  # np.ndarray | None: flash / no-flash's no-flash photo
    ground_truth_changed = Signal(object)  # Photo: the same photo with a ground truth
    mask_changed = Signal(object)  # np.ndarray | None
    settings_changed = Signal(object)  # RunConfig
    working_changed = Signal(object)  # Working | None
    run_cleared = Signal()  # history and curves emptied: a new run, a new photo or a Lab result taken
    history_changed = Signal()  # an iterate was kept, or the chosen result changed
    curves_changed = Signal()  # step reports were appended to ``curves``
    lab_results_changed = Signal(object)  # tuple[LabResult, ...]
    result_taken = Signal(object)  # LabResult: the history now holds it, next to the run's iterates, as the result
    result_chosen = Signal(object)  # Key | None: the person chose the result (None = the rule's pick again)
    pin_changed = Signal(int, bool)  # (iteration, pinned): the person pinned or unpinned a kept iterate
    dirty_changed = Signal(bool)  # unsaved work appeared (True), or was saved or let go (False)

    def __init__(self, history: IterateHistory | None = None) -> None:
        self.photo: Photo | None = None
        self.second_photo: np.ndarray | None = None  # flash / no-flash: the no-flash photo (HxWxC float32)
        self.mask: np.ndarray | None = None
        self.settings: RunConfig | None = None
        self._run_config: RunConfig | None = None
        self.working: Working | None = None
        self.working_mask: np.ndarray | None = None
        self.history = history if history is not None else IterateHistory()
        self.curves = CurveData()
        self.lab_results: tuple[LabResult, ...] = ()
        self.lab_result: LabResult | None = None
        # history key -> (the Lab's result, the working size it was made at, the mask it started with)
        self._taken: dict[str, tuple[LabResult, Working | None, np.ndarray | None]] = {}
        self._dirty = False

    # ----- unsaved work -------------------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        """True while kept iterates, a pin, a chosen result or a taken Lab result have not been saved."""
        return self._dirty and len(self.history) > 0

    def mark_saved(self) -> None:
        """The result (Save result) or the whole session was written: nothing is left to lose until the next
        change."""
        self._set_dirty(False)

    def _set_dirty(self, on: bool) -> None:
        if on != self._dirty:
            self._dirty = on
            self.dirty_changed.emit(on)

    @property
    def run_config(self) -> RunConfig | None:
        """The settings that made the result: the Lab variant's when the result is a Lab result taken, else
        those of the last run started."""
        taken = self.taken_result(self.history.result_key())
        return taken.config if taken is not None else self._run_config

    @run_config.setter
    def run_config(self, cfg: RunConfig | None) -> None:
        self._run_config = cfg

    # ----- the photo and its mask ---------------------------------------------------------------------
    def set_photo(self, photo: Photo | None) -> None:
        """A new photo: what was made from the old one (kept iterates, curves, working size, mask) goes."""
        self.clear_run()
        self.photo = photo
        self.mask = None
        self.photo_changed.emit(photo)

    def set_ground_truth(self, pixels: np.ndarray | None) -> None:
        """The undamaged photo, to score the next run by (checked against the result's size at Start); the
        run and the mask stay."""
        if self.photo is None:
            raise ValueError("no photo to add a ground truth to")
        self.photo = replace(self.photo, ground_truth=pixels)
        self.ground_truth_changed.emit(self.photo)

    def set_second_photo(self, pixels: np.ndarray | None) -> None:
        """Flash / no-flash's second photo (the no-flash one; the photo is the flash one). Its size is checked
        against the photo's at Start, where the problem is built."""
        self.second_photo = pixels
        self.second_photo_changed.emit(pixels)

    def second(self) -> np.ndarray | None:
        """The no-flash photo the next run uses: the one the person opened, else the one the sample brought."""
        if self.second_photo is not None:
            return self.second_photo
        return None if self.photo is None else self.photo.second

    def set_mask(self, mask: np.ndarray | None) -> None:
        """The painted mask (the session keeps the array it is given: hand it a copy)."""
        self.mask = mask
        self.mask_changed.emit(mask)

    # ----- settings ---------------------------------------------------------------------------------
    def set_settings(self, cfg: RunConfig) -> None:
        """The settings for the next run; no event when they are equal to the current ones."""
        if cfg == self.settings:
            return
        self.settings = cfg
        self.settings_changed.emit(cfg)

    # ----- a run ------------------------------------------------------------------------------------
    def clear_run(self) -> None:
        """Forget the kept iterates, the curves, the working size and the taken Lab result."""
        self._clear_results()
        self.set_working(None, None)

    def _clear_results(self) -> None:
        self.history.clear()
        self.curves.clear()
        self.lab_result = None
        self._taken.clear()
        self.run_cleared.emit()
        self._set_dirty(False)

    def begin_run(self, cfg: RunConfig, working: Working | None, mask: np.ndarray | None) -> None:
        """A run starts with ``cfg`` at ``working`` (``mask`` is the one it started with)."""
        self._clear_results()
        self.run_config = cfg
        self.set_working(working, mask)

    def set_working(self, working: Working | None, mask: np.ndarray | None) -> None:
        self.working, self.working_mask = working, mask
        self.working_changed.emit(working)

    def add_reports(self, reports: Sequence[object]) -> None:
        """Step reports of the running run, appended to the curves."""
        self.curves.extend(reports)
        self.curves_changed.emit()

    def keep(
        self,
        kind: Iterate | str,
        iteration: int,
        pixels: np.ndarray,
        average: np.ndarray | None = None,
        thumb: np.ndarray | None = None,
    ) -> None:
        """A kept image of the running run: a raw iterate, the running average, or the rule's pick (its raw
        iterate in ``pixels`` and the running average there in ``average``)."""
        h = self.history
        if kind == Iterate.RAW:
            h.add(iteration, pixels, thumb)
        elif kind == Iterate.AVERAGE:
            h.set_average(iteration, pixels, thumb)
        elif kind == Iterate.PICK:
            h.set_pick(iteration, pixels, average, thumb)
        else:
            raise ValueError(f"unknown kind of kept image {kind!r}")
        self.history_changed.emit()
        self._set_dirty(True)

    def pin(self, iteration: int, on: bool = True) -> None:
        """Pin a kept iterate (never thinned) or unpin it: the person's choice, so it is unsaved work."""
        self.history.pin(iteration, on)
        self.pin_changed.emit(int(iteration), bool(on))
        self.history_changed.emit()
        self._set_dirty(True)

    def choose(self, key: Key | None) -> None:
        """Make ``key`` the result ("Keep this one"); None goes back to the rule's pick."""
        self.history.choose(key)
        self.result_chosen.emit(key)
        self.history_changed.emit()
        self._set_dirty(True)

    # ----- the Lab ----------------------------------------------------------------------------------
    def set_lab_results(self, results: Iterable[LabResult]) -> None:
        self.lab_results = tuple(results)
        self.lab_results_changed.emit(self.lab_results)

    @staticmethod
    def lab_key(result: LabResult) -> str:
        """The history key a taken Lab result is kept under (one per Lab variant)."""
        return f"lab-{result.key}"

    def take_lab_result(self, result: LabResult, working: Working | None, mask: np.ndarray | None) -> None:
        """Add a Lab variant's answer to the history, next to the run's iterates, and make it the result.

        Nothing is thrown away: the run's iterates, pins and curves stay, and "Use rule's pick" goes back to
        the run's result. ``working`` and ``mask`` are the working size the Lab ran at and the mask it started
        with (:meth:`working_for`); with no run of its own the session takes them as its working size. The
        settings for the next run stay as they are (taking a result is not taking its settings);
        ``run_config`` is the variant's while its result is the chosen one, because that is what made it."""
        key = self.lab_key(result)
        if not any(k not in self._taken for k in self.history.keys()):  # no run: the Lab's size is the session's
            self.set_working(working, mask)
        label = f"Lab: {result.variant_label} (it. {result.pick_iteration})"
        self.history.put(key, result.pick_iteration, result.image, label)
        self._taken[key] = (result, working, mask)
        self.history.choose(key)
        self.lab_result = result
        self.history_changed.emit()
        self.result_taken.emit(result)
        self._set_dirty(True)

    def taken_result(self, key: Key | None) -> LabResult | None:
        """The Lab result kept under ``key``, or None when ``key`` is the run's own."""
        got = self._taken.get(key) if isinstance(key, str) else None
        return None if got is None else got[0]

    def working_for(self, key: Key | None) -> tuple[Working | None, np.ndarray | None]:
        """The working size ``key`` was made at and the mask its run started with: the Lab's for a taken Lab
        result, else the run's."""
        got = self._taken.get(key) if isinstance(key, str) else None
        return (self.working, self.working_mask) if got is None else (got[1], got[2])

    # ----- a saved session ------------------------------------------------------------------------------
    def restore_run(
        self,
        cfg: RunConfig | None,
        working: Working | None,
        mask: np.ndarray | None,
        fill: Callable[[IterateHistory, CurveData], None],
        taken: Iterable[tuple[str, LabResult, Working | None, np.ndarray | None]] = (),
        lab_result: LabResult | None = None,
        unsaved: bool = False,
    ) -> None:
        """A saved run comes back (:mod:`rwgui.core.session_file`): ``fill(history, curves)`` puts its kept
        images and curves back; ``taken`` are the Lab results the history holds (key, result, working size,
        mask). An opened file is saved work; a recovered autosave is ``unsaved`` (in no file of the person's)."""
        self._clear_results()
        self.run_config = cfg
        self.set_working(working, mask)
        fill(self.history, self.curves)
        for key, result, w, m in taken:
            self._taken[key] = (result, w, m)
        self.lab_result = lab_result
        self.curves_changed.emit()
        self.history_changed.emit()
        self._set_dirty(unsaved)

    # ----- reading ----------------------------------------------------------------------------------
    def result_pixels(self, key: Key | None = None) -> np.ndarray | None:
        """What Save result writes for ``key`` (default: the result): the kept image, pasted back into the full
        photo, or upscaled, where the run worked on a crop or a downscaled inpainting problem; an inpainting
        result keeps the photo's known pixels (:meth:`result_seam`)."""
        key = self.history.result_key() if key is None else key
        if key is None:
            return None
        px = self.history.image(key)
        (w, wmask), photo = self.working_for(key), self.photo
        if photo is None or w is None or (w.mode == WorkingMode.FULL and wmask is None):
            return px
        return to_full(px, w, photo.pixels, wmask, self.result_seam())

    def result_seam(self) -> int | None:
        """How an inpainting result keeps the known pixels (:func:`~rwgui.core.compositing.result_seam`): by the
        current settings, so the choice can change after the run; None = the network's output as it is."""
        cfg = self.settings or self.run_config
        return 0 if cfg is None else result_seam(cfg)

    def result_description(self) -> str | None:
        """Which result Save result writes, for the status line (None unless the result is an inpainting's)."""
        key = self.history.result_key()
        w, wmask = self.working_for(key)
        if wmask is None or w is None or key is None:
            return None
        return describe_result(self.result_seam())
