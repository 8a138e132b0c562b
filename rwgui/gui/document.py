"""The Problem a photo makes; the photo itself (:class:`~rwgui.core.photo.Photo`) lives in core, re-exported here.

Qt-free on purpose: the window snapshots the session's photo (with a copy of the painted mask) into an
immutable Problem when Start is pressed, so the worker never shares an array the GUI writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core.errors import MaskError
from ..core.photo import Photo, display_image, open_photo, sample_photo, with_ground_truth
from ..core.problems import Problem, make_problem
from ..core.vocabulary import Task

__all__ = [
    "Photo",
    "open_photo",
    "sample_photo",
    "with_ground_truth",
    "build_problem",
    "display_image",
    "RUNS_A_NETWORK",
]

#: Tasks whose Problem is made by running a network: the pre-image's classifier computes the photo's features
#: (its target) when the problem is built, or rebuilt at a working size. The studio builds these on the
#: estimate's helper thread, never the GUI's (:mod:`rwgui.gui.estimate_view`).
RUNS_A_NETWORK: frozenset[str] = frozenset({Task.PREIMAGE})


def build_problem(
    photo: Photo,
    task: str,
    factor: int,
    mask: np.ndarray | None,
    task_params: Mapping[str, Any] | None = None,
    second: np.ndarray | None = None,
) -> Problem:
    """An immutable Problem from copies (:func:`~rwgui.core.problems.make_problem`, as the CLI builds it):
    ``mask`` is 1 = known (the canvas's own convention). A mask with no hole is refused here, where the person
    can still paint one: inpainting it would only copy the photo."""
    if task == Task.INPAINT:
        if mask is None:
            raise MaskError("paint the damaged areas (or load a mask) before starting an inpainting run")
        if np.asarray(mask).min() >= 0.5:
            raise MaskError(
                "the mask has no hole: paint over the damaged areas with the brush "
                "(or load a mask) before starting an inpainting run"
            )
    return make_problem(
        task,
        photo.pixels,
        factor=factor,
        mask=mask,
        ground_truth=photo.ground_truth,
        task_params=task_params,
        second=second,
    )
