"""One restoration session as a model: everything a person made or chose, and events when any of it changes.

Why a model: the window, its docks and the Lab all show parts of the same document (the photo, its mask, the
settings, the kept iterates, the curves, the Lab's results). Keeping that state in one Qt-free object, which
announces each change with a psygnal event, lets every view follow it without knowing the others, and gives
one thing to write when a session is saved. The model knows no view: widgets connect to its events (all of
them fire in the thread that made the change, which in the studio is the GUI thread).

What the session holds:

* ``photo`` (:class:`~rwgui.core.photo.Photo`) and ``mask`` (HxW float32, 1 = known; the painted one);
* ``settings``: the settings the next run will use (the settings dock edits them);
* ``run_config``: the settings that made what ``history`` holds (the last run started, or a Lab variant's
  settings when its result was taken): exported settings reproduce the result, not the form;
* ``working`` and ``working_mask``: the working size the result was made at (a crop or a downscale when the
  full photo did not fit), and the mask it started with, so :meth:`result_pixels` can paste a crop back;
* ``history`` (:class:`~rwgui.core.history.IterateHistory`) and ``curves`` (:class:`~rwgui.core.curves.CurveData`);
* ``lab_results``: one :class:`LabResult` per Lab variant with a result, and ``lab_result``, the one taken.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from psygnal import Signal

from .compositing import describe_result, result_seam
from .config import RunConfig
from .curves import CurveData
from .history import IterateHistory, Key
from .photo import Photo
from .vocabulary import Iterate
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
    ground_truth_changed = Signal(object)  # Photo: the same photo with a ground truth
    mask_changed = Signal(object)  # np.ndarray | None
    settings_changed = Signal(object)  # RunConfig
    working_changed = Signal(object)  # Working | None
    run_cleared = Signal()  # history and curves emptied: a new run, a new photo or a Lab result taken
    history_changed = Signal()  # an iterate was kept, or the chosen result changed
    curves_changed = Signal()  # step reports were appended to ``curves``
    lab_results_changed = Signal(object)  # tuple[LabResult, ...]
    result_taken = Signal(object)  # LabResult: the history now holds it as the result

    def __init__(self, history: IterateHistory | None = None) -> None:
        self.photo: Photo | None = None
        self.mask: np.ndarray | None = None
        self.settings: RunConfig | None = None
        self.run_config: RunConfig | None = None
        self.working: Working | None = None
        self.working_mask: np.ndarray | None = None
        self.history = history if history is not None else IterateHistory()
        self.curves = CurveData()
        self.lab_results: tuple[LabResult, ...] = ()
        self.lab_result: LabResult | None = None

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
        self.run_cleared.emit()

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

    # ----- the Lab ----------------------------------------------------------------------------------
    def set_lab_results(self, results: Iterable[LabResult]) -> None:
        self.lab_results = tuple(results)
        self.lab_results_changed.emit(self.lab_results)

    def take_lab_result(self, result: LabResult, working: Working | None, mask: np.ndarray | None) -> None:
        """Make a Lab variant's answer the session's result, in place of the run's iterates.

        The settings for the next run stay as they are (taking a result is not taking its settings);
        ``run_config`` becomes the variant's, because that is what made the result."""
        self._clear_results()
        self.run_config = result.config
        self.set_working(working, mask)
        self.history.set_average(result.pick_iteration, result.image)
        self.lab_result = result
        self.history_changed.emit()
        self.result_taken.emit(result)

    # ----- reading ----------------------------------------------------------------------------------
    def result_pixels(self, key: Key | None = None) -> np.ndarray | None:
        """What Save result writes for ``key`` (default: the result): the kept image, pasted back into the full
        photo, or upscaled, where the run worked on a crop or a downscaled inpainting problem; an inpainting
        result keeps the photo's known pixels (:meth:`result_seam`)."""
        key = self.history.result_key() if key is None else key
        if key is None:
            return None
        px = self.history.image(key)
        w, photo = self.working, self.photo
        if photo is None or w is None or (w.mode == "full" and self.working_mask is None):
            return px
        return to_full(px, w, photo.pixels, self.working_mask, self.result_seam())

    def result_seam(self) -> int | None:
        """How an inpainting result keeps the known pixels (:func:`~rwgui.core.compositing.result_seam`): by the
        current settings, so the choice can change after the run; None = the network's output as it is."""
        cfg = self.settings or self.run_config
        return 0 if cfg is None else result_seam(cfg)

    def result_description(self) -> str | None:
        """Which result Save result writes, for the status line (None unless the result is an inpainting's)."""
        if self.working_mask is None or self.working is None or self.history.result_key() is None:
            return None
        return describe_result(self.result_seam())
