"""The names rwgui's parts share, as enums: one name per concept, compared by identity, not by spelling.

Each is a ``StrEnum``: a member equals its value (``Task.SR == "sr"``), so JSON files, CLI flags and reports
keep their plain strings, and a value read from any of them becomes a member with ``Task(value)``.
"""

from __future__ import annotations

from enum import StrEnum


class Task(StrEnum):
    """What the person restores: the degradation the data term models."""

    DENOISE = "denoise"
    SR = "sr"  # super-resolution by an integer factor
    INPAINT = "inpaint"
    JPEG = "jpeg"  # JPEG artefact removal (blind: the operator is the identity)
    FLASH = "flash"  # flash / no-flash: the flash photo is the input code, the no-flash photo the target
    DEBLUR = "deblur"  # deblurring with a known kernel
    PREIMAGE = "preimage"  # invert a classifier's features, or maximise one of its classes
    REAL_NOISE = "real-noise"  # denoising at an unknown noise level (estimated, shown, never asked for)


class StopReason(StrEnum):
    """Why a run ended. The person pressing Stop (or Ctrl+C) is USER everywhere: window, CLI, Lab."""

    RULE = "rule"  # the stopping rule fired and auto stop obeyed it
    BUDGET = "budget"  # the iteration budget was spent
    USER = "user"  # the person stopped it
    DIVERGED = "diverged"  # the loss went non-finite and the guard could not bring it back
    OUT_OF_MEMORY = "out_of_memory"  # the device ran out of memory; the run so far is kept
    ERROR = "error"  # anything else; its message says what


class RunState(StrEnum):
    """The window's (and the Lab's) view of its current run."""

    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"


class Iterate(StrEnum):
    """Which image of a run: the network's raw output, the running average of outputs, and each of the two at
    the stopping rule's *pick* (the iterate the rule judged best; "pick" is the only name for it)."""

    RAW = "raw"
    AVERAGE = "average"
    PICK = "pick"
    PICK_AVERAGE = "pick_average"  # the running average at the pick: the default result


class LabStatus(StrEnum):
    """Where one Lab variant stands."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"  # ran its budget or was stopped by its rule
    STOPPED = "stopped"  # stopped by the person
    FAILED = "failed"


class JobStatus(StrEnum):
    """What became of one photo of a batch (a row of its summary; the Lab's folder runs read the same rows)."""

    DONE = "done"  # ran its budget or was stopped by its rule; the result was written
    FAILED = "failed"
    SKIPPED = "skipped"  # --resume found it finished by an earlier batch
    STOPPED = "stopped"  # the person stopped it (Ctrl+C, Stop); the result so far was written
    NOT_RUN = "not run"  # the batch ended before it started


class WorkingMode(StrEnum):
    """The size a run works at, against the photo's (:mod:`rwgui.core.working_size`), and what the person asks
    for when a run does not fit (``--working-size``, the window's question, a session file's working size).

    A run's ``Working`` is one of the first four; REFUSE and AUTO are only ever asked for: the planner turns
    AUTO into CROP, TILES or DOWNSCALE, and REFUSE into an error naming what would fit."""

    FULL = "full"  # the whole photo at its own size (a run that fits is always this)
    DOWNSCALE = "downscale"  # the whole photo, smaller, same aspect
    CROP = "crop"  # inpainting: the holes' bounding box with a margin of context, pasted back into the photo
    TILES = "tiles"  # denoising and super-resolution: overlapping tiles at full size, blended
    REFUSE = "refuse"  # asked for: do not run at a smaller size (the CLI exits 2 naming the sizes that fit)
    AUTO = "auto"  # asked for: a crop or tiles where one fits (full resolution first), else a downscale
