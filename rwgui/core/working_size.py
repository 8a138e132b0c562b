"""Fit the work to the device: when a run will not fit in memory, offer a smaller problem that does.

Two ways out. *Downscale*: the whole photo at the largest size whose estimate fits (same aspect). *Crop*
(inpainting only): the bounding box of the holes grown by a margin of context, restored alone and pasted
back into the full-resolution photo with a feathered seam. The CLI and the GUI ask the same plan, turn the
chosen option into a working :class:`Problem` (:func:`working_problem`) and the working result back into
what is written (:func:`to_full`):

* crop: the full photo with the restored crop pasted in; pixels outside the box are the photo's, bit for bit;
* downscale, inpainting: the restored image upscaled to the full size;
* inpainting, at every working size (full, crop, downscale): then the photo's known pixels kept, by the one
  rule of :func:`~rwgui.core.compositing.keep_known` (the network's output in the holes, the photo outside
  them, a feathered seam between; a downscaled run's known pixels would otherwise lose their full-resolution
  detail), unless the network's output as it is was asked for (``seam_px`` None);
* downscale, denoising or super-resolution: the result at the working size, since every input pixel was
  degraded and upscaling would only add blur at a larger size; but a downscale chosen to fit a *time* budget
  (``Working.upscaled``) is upscaled back, since there the person asked for the photo's size.
* tiles (denoising and super-resolution only; :mod:`rwgui.core.tiles`): the photo restored at full resolution
  as overlapping tiles, each its own run, blended across their overlaps. ``auto`` prefers it for those tasks:
  every pixel of a denoising or super-resolution photo is degraded, so a downscaled run gives up the detail
  the run exists to recover (and super-resolution's point is the larger size), while tiles keep all of it at
  the cost of restoring the overlaps twice. The run is not a :class:`Problem` of its own: the caller runs
  :func:`~rwgui.core.tiles.tiled_steps` on the full problem with the plan's grid.

The modes are :class:`~rwgui.core.vocabulary.WorkingMode` members; a member equals its word, so the CLI's
``--working-size`` values, the JSON report and session files keep the plain words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .compositing import keep_known
from .config import RunConfig
from .errors import ConfigError, OutOfMemoryError, WorkingSizeError
from .params import Param
from .pixels import tensor_to_image
from .problems import Problem, remake
from .resample import crop, downscale, downscale_mask, upscale
from .vocabulary import Task, WorkingMode

if TYPE_CHECKING:
    import torch

    from .tiles import TileGrid

__all__ = [
    "Box",
    "WorkingPlan",
    "Working",
    "WORKING_PARAMS",
    "MODES",
    "RUN_MODES",
    "auto_mode",
    "plan_working_size",
    "plan_for_problem",
    "choose_working",
    "hole_box",
    "working_problem",
    "paste_back",
    "to_full",
    "crop",
]

Box = tuple[int, int, int, int]  # y0, y1, x0, x1 (half-open, like slices)

HEADROOM = 0.9  # the share of free memory a run may take (the engine refuses above it)
SLACK = 0.95  # with the device's own budget, offered sizes keep 5 % spare: the engine re-checks free memory
CHECK_ABOVE = 512 * 512  # pixels; smaller runs fit any machine rwgui runs on (the engine's rule too)
DEFAULT_MARGIN = 64  # px of context around the damage: the prior needs known pixels to continue from
MIN_SIDE = 16
#: What ``--working-size`` (and the window's question) may ask for when a run does not fit.
MODES = (WorkingMode.REFUSE, WorkingMode.DOWNSCALE, WorkingMode.CROP, WorkingMode.TILES, WorkingMode.AUTO)
#: What a run's :class:`Working` may be: a run that fits is FULL, whatever was asked for.
RUN_MODES = (WorkingMode.FULL, WorkingMode.DOWNSCALE, WorkingMode.CROP, WorkingMode.TILES)
#: The modes whose result is the photo's own size, whatever the task (a downscale only sometimes is).
_FULL_SIZE_MODES = (WorkingMode.FULL, WorkingMode.CROP, WorkingMode.TILES)

#: What to do when a run does not fit: specs, so the CLI flags come from one place.
WORKING_PARAMS: tuple[Param, ...] = (
    Param(
        "working_size",
        "choice",
        WorkingMode.REFUSE,
        "When the run does not fit in memory: refuse (exit 2), downscale the photo, crop around the damage "
        "(inpainting; the result is pasted back into the full photo), tiles (denoising and super-resolution: "
        "overlapping tiles restored one by one and blended, written at full resolution), or auto (crop for "
        "inpainting and tiles for the other tasks when they fit, else downscale). A run that fits always runs "
        "at full size.",
        choices=MODES,
    ),
    Param(
        "memory_budget",
        "float",
        0.0,
        "Plan as if only this many MB were available (0 = 90 percent of the device's free memory, checked above "
        "512x512 only, like the engine).",
        0.0,
        1e9,
    ),
    Param("crop_margin", "int", DEFAULT_MARGIN, "Pixels of context kept around the damage when cropping.", 0, 4096),
    Param(
        "tile_overlap",
        "int",
        0,
        "Pixels two neighbouring tiles share (0 = the larger of the network's coarsest cell and an eighth of "
        "the tile).",
        0,
        4096,
    ),
)


def _mb(n: float) -> float:
    return n / 2**20


def _wh(size: tuple[int, int]) -> str:
    return f"{size[1]}x{size[0]}"


@dataclass(frozen=True)
class WorkingPlan:
    """Whether a run fits and, if not, the sizes that do. Sizes are (h, w) of the restored image."""

    fits: bool
    size: tuple[int, int]
    task: str
    needed_mb: float | None  # None: not estimated (a small photo, or free memory unknown)
    budget_mb: float | None
    downscale_size: tuple[int, int] | None  # None: nothing smaller fits either
    crop_box: Box | None  # only when a crop around the damage fits
    crop_mb: float | None  # the crop's estimate, also when it does not fit (for the message)
    margin: int
    sentence: str
    tiles: TileGrid | None = None  # denoising and super-resolution: full resolution on tiles that fit

    @property
    def crop_size(self) -> tuple[int, int] | None:
        b = self.crop_box
        return None if b is None else (b[1] - b[0], b[3] - b[2])


@dataclass(frozen=True)
class Working:
    """How a run's problem relates to the photo; the report records it and export undoes it."""

    mode: WorkingMode  # one of RUN_MODES (a string is taken as its member)
    task: str
    full_size: tuple[int, int]  # (h, w) of the whole photo's result
    size: tuple[int, int]  # (h, w) the run restores (tiles: each tile)
    box: Box | None = None
    margin: int = 0
    tiles: TileGrid | None = None  # mode 'tiles': the grid
    #: mode 'downscale' chosen to fit a time budget (:mod:`rwgui.core.estimate`): the result is upscaled back to
    #: the photo's size, since the person asked for the photo and the reduction was only to save time
    upscaled: bool = False

    def __post_init__(self) -> None:
        """The mode as its member, whoever built this (a session file and older callers give the word), so that
        every comparison is by member; a request (refuse, auto) is not a run's mode."""
        mode = WorkingMode(self.mode)
        if mode not in RUN_MODES:
            raise ValueError(f"a run works at one of {', '.join(RUN_MODES)}; {mode!r} is only asked for")
        object.__setattr__(self, "mode", mode)

    @property
    def writes_full_size(self) -> bool:
        if self.mode in _FULL_SIZE_MODES:
            return True
        return self.mode == WorkingMode.DOWNSCALE and (self.task == Task.INPAINT or self.upscaled)

    def describe(self) -> str:
        if self.mode == WorkingMode.CROP and self.box is not None:
            return f"a {_wh(self.size)} crop around the damage at x={self.box[2]}, y={self.box[0]}"
        if self.mode == WorkingMode.DOWNSCALE:
            return f"{_wh(self.size)}, downscaled from {_wh(self.full_size)}"
        if self.mode == WorkingMode.TILES and self.tiles is not None:
            return f"{_wh(self.full_size)}, full size, on {self.tiles.describe()}"
        return f"{_wh(self.size)}, full size"

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "size": list(self.size),
            "full_size": list(self.full_size),
            "box": None if self.box is None else list(self.box),
            "margin": self.margin,
            "written_at_full_size": self.writes_full_size,
            **({"upscaled": True} if self.upscaled else {}),
            **({} if self.tiles is None else {"tiles": self.tiles.count, "tile_overlap": self.tiles.overlap}),
        }


def hole_box(mask: np.ndarray, margin: int = DEFAULT_MARGIN, min_side: int = MIN_SIDE) -> Box | None:
    """Bounding box of the holes (mask < 0.5; 1 = known) grown by ``margin``, clipped to the photo, at least
    ``min_side`` a side where the photo allows. None when there is no hole."""
    holes = np.asarray(mask) < 0.5
    if holes.ndim == 3:
        holes = holes[..., 0]
    rows, cols = np.flatnonzero(holes.any(axis=1)), np.flatnonzero(holes.any(axis=0))
    if rows.size == 0:
        return None
    h, w = holes.shape

    def grow(lo: int, hi: int, n: int) -> tuple[int, int]:
        lo, hi = max(0, lo - margin), min(n, hi + margin)
        need = min(min_side, n)
        while hi - lo < need:  # widen both ways, within the photo
            if lo > 0:
                lo -= 1
            if hi - lo < need and hi < n:
                hi += 1
        return lo, hi

    y0, y1 = grow(int(rows[0]), int(rows[-1]) + 1, h)
    x0, x1 = grow(int(cols[0]), int(cols[-1]) + 1, w)
    return y0, y1, x0, x1


def _fitting_multiple(size: tuple[int, int], k: int) -> tuple[int, int]:
    return size[0] // k * k, size[1] // k * k


def plan_working_size(
    config: RunConfig,
    size: tuple[int, int],
    channels: int,
    task: str,
    mask: np.ndarray | None = None,
    budget_bytes: int | None | str = "auto",
    margin: int = DEFAULT_MARGIN,
    overlap: int = 0,
    operator: torch.nn.Module | None = None,
    *,
    measure: bool = True,
) -> WorkingPlan:
    """Does a run restoring ``size`` (h, w) fit ``budget_bytes``, and what fits if not.

    ``budget_bytes`` 'auto' is 90 % of the device's free memory, asked only above 512x512 (the engine's rule);
    None means unknown, which fits. The estimate probes the prior once (~0.5 s on one CPU core), and
    ``operator``, the problem's, once when it has weights (the pre-image's classifier: every step runs it
    forward and backward, so its weights and activations are part of the run's memory). ``measure`` False
    never runs a network: :class:`~rwgui.core.memory.NotMeasured` when the plan needs a probe no earlier plan
    made (the GUI thread then plans on a helper thread). Denoising and super-resolution also get the grid of
    the largest tiles that fit (``overlap`` px shared by neighbours, 0 = :func:`~rwgui.core.tiles.default_overlap`).
    """
    from .device import describe, resolve_device
    from .memory import MemoryModel, available_bytes, run_dtype

    cfg = config.validated()
    device = resolve_device(cfg.device)
    box = hole_box(mask, margin) if task == Task.INPAINT and mask is not None else None
    fits = WorkingPlan(True, size, task, None, None, None, None, None, margin, "")
    slack = 1.0
    if budget_bytes == "auto":
        if size[0] * size[1] <= CHECK_ABOVE:
            return fits
        free = available_bytes(device)
        budget_bytes, slack = (None if free is None else int(HEADROOM * free)), SLACK
    if budget_bytes is None:
        return fits
    budget = int(budget_bytes)
    model = MemoryModel(cfg, channels, run_dtype(cfg, size, device, channels), device.type, operator, measure=measure)
    need = model.estimate(size).total_bytes
    where = f"{_wh(size)} needs about {_mb(need):.0f} MB and {describe(device)} has {_mb(budget):.0f} MB to spare"
    if need <= budget:
        return WorkingPlan(True, size, task, _mb(need), _mb(budget), None, None, None, margin, "restoring " + where)

    k = cfg.factor if task == Task.SR else 1  # super-resolution works at a multiple of the factor
    room = int(slack * budget)
    fit = _fitting_multiple(model.fitting_size(size, room), k)
    too_small = min(fit) < max(MIN_SIDE, 8 * k) or model.estimate(fit).total_bytes > room
    down = None if too_small else fit
    crop_mb = None
    if box is not None:
        crop_bytes = model.estimate((box[1] - box[0], box[3] - box[2])).total_bytes
        crop_mb = _mb(crop_bytes)
        box = box if crop_bytes <= room else None
    grid = None
    if task in (Task.DENOISE, Task.SR):
        from .tiles import fit_tiles, size_multiple

        def tile_bytes(hw: tuple[int, int]) -> int:
            return model.estimate(hw).total_bytes

        grid = fit_tiles(tile_bytes, size, room, size_multiple(cfg, channels), k, overlap)
    options = []
    if grid is not None:
        options.append(f"at full size on {grid.describe()} it fits")
    if down is not None:
        options.append(f"downscaled to {_wh(down)} it fits")
    if box is not None:
        options.append(f"a {_wh((box[1] - box[0], box[3] - box[2]))} crop around the damage fits")
    elif crop_mb is not None:
        options.append(f"a crop around the damage would still need {crop_mb:.0f} MB")
    if down is None and box is None and grid is None:
        options.append("nothing smaller fits either: choose a prior with fewer channels or another device")
    sentence = f"restoring {where}; " + ", ".join(options)
    return WorkingPlan(False, size, task, _mb(need), _mb(budget), down, box, crop_mb, margin, sentence, grid)


def plan_for_problem(
    problem: Problem,
    config: RunConfig,
    budget_bytes: int | None | str = "auto",
    margin: int = DEFAULT_MARGIN,
    overlap: int = 0,
    *,
    measure: bool = True,
) -> WorkingPlan:
    """:func:`plan_working_size` for a built Problem (its size, channels, task, mask and operator)."""
    mask = None if problem.mask is None else problem.mask[0, 0].numpy()
    return plan_working_size(
        config,
        problem.size,
        problem.channels,
        problem.task,
        mask,
        budget_bytes,
        margin,
        overlap,
        problem.operator,
        measure=measure,
    )


def _asked_mode(mode: WorkingMode | str) -> WorkingMode:
    """``mode`` as the member of MODES it names; anything else is a ConfigError listing them."""
    asked = next((m for m in MODES if m == mode), None)
    if asked is None:
        raise ConfigError(f"working size must be one of {', '.join(MODES)}; got {str(mode)!r}")
    return asked


def auto_mode(plan: WorkingPlan) -> WorkingMode:
    """What AUTO means for a plan that does not fit: full resolution first, a crop (inpainting) or tiles
    (denoising, super-resolution) where one fits, else a downscale."""
    if plan.crop_box is not None:
        return WorkingMode.CROP
    return WorkingMode.TILES if plan.tiles is not None else WorkingMode.DOWNSCALE


def choose_working(plan: WorkingPlan, mode: WorkingMode | str) -> Working:
    """The Working for ``mode`` (one of MODES, or its word). A plan that fits always works at full size."""
    mode = _asked_mode(mode)
    if plan.fits:
        return Working(WorkingMode.FULL, plan.task, plan.size, plan.size)
    if mode == WorkingMode.REFUSE:
        raise OutOfMemoryError(plan.sentence)
    if mode == WorkingMode.AUTO:
        mode = auto_mode(plan)
    if mode == WorkingMode.TILES:
        if plan.task not in (Task.DENOISE, Task.SR):
            raise WorkingSizeError(
                "tiles are for denoising and super-resolution; for inpainting, crop around the damage "
                "(it restores only the damaged region, at full resolution)"
            )
        if plan.tiles is None:
            raise WorkingSizeError(f"{plan.sentence}; no tile fits either")
        return Working(WorkingMode.TILES, plan.task, plan.size, plan.tiles.tile, tiles=plan.tiles)
    if mode == WorkingMode.CROP:
        if plan.task != Task.INPAINT:
            raise WorkingSizeError(
                "cropping around the damage is for inpainting, where the mask says where the "
                "damage is; downscale instead"
            )
        if plan.crop_box is None:
            raise WorkingSizeError(f"{plan.sentence}; the crop does not fit, downscale instead")
        size = plan.crop_size
        assert size is not None
        return Working(WorkingMode.CROP, plan.task, plan.size, size, plan.crop_box, plan.margin)
    if plan.downscale_size is None:
        raise WorkingSizeError(plan.sentence)
    return Working(WorkingMode.DOWNSCALE, plan.task, plan.size, plan.downscale_size)


def working_problem(problem: Problem, working: Working) -> Problem:
    """The Problem the run restores: ``problem`` itself, downscaled, or cropped to the box. With tiles,
    ``problem`` itself: :func:`~rwgui.core.tiles.tiled_steps` cuts it.

    Built by :func:`~rwgui.core.problems.remake`, so the task's parameters and second photo come along: the
    deblur kernel scaled with the photo, flash / no-flash's two photos resized alike, the pre-image's weights.
    A crop is what inpainting's plan offers; any other task but super-resolution can be cropped too."""
    if working.mode in (WorkingMode.FULL, WorkingMode.TILES):
        return problem
    gt = None if problem.ground_truth is None else tensor_to_image(problem.ground_truth)
    mask = None if problem.mask is None else problem.mask[0, 0].numpy()
    if working.mode == WorkingMode.CROP:
        if working.box is None or (mask is None and problem.task == Task.INPAINT) or problem.task == Task.SR:
            raise WorkingSizeError("cropping around the damage needs an inpainting mask")
        b = working.box
        return remake(
            problem,
            lambda a: crop(a, b),
            mask=None if mask is None else crop(mask, b),
            ground_truth=None if gt is None else crop(gt, b),
        )
    h, w = working.size
    gt_small = None if gt is None else downscale(gt, (h, w))
    if problem.task == Task.SR:
        f = problem.size[0] // int(problem.observed.shape[2])
        return remake(problem, lambda a: downscale(a, (h // f, w // f)), factor=f, ground_truth=gt_small)
    small = None
    if problem.task == Task.INPAINT and mask is not None:
        small = downscale_mask(mask, (h, w))
        if not small.any():
            raise WorkingSizeError(
                f"downscaled to {w}x{h}, every pixel touches a hole (the holes are scattered "
                "too finely); crop around the damage or free some memory instead"
            )
    scale = (h / problem.size[0] + w / problem.size[1]) / 2
    return remake(problem, lambda a: downscale(a, (h, w)), scale=scale, mask=small, ground_truth=gt_small)


def _ramp(n: int, width: int, start: bool, end: bool) -> np.ndarray:
    """1-D weights: raised-cosine from ~0 to 1 over ``width`` px at the ends that lie inside the photo."""
    w = np.ones(n, np.float32)
    if width <= 0:
        return w
    d = np.arange(min(width, n), dtype=np.float64)
    rise = (0.5 - 0.5 * np.cos(np.pi * (d + 0.5) / width)).astype(np.float32)
    if start:
        w[: rise.size] = np.minimum(w[: rise.size], rise)
    if end:
        w[n - rise.size :] = np.minimum(w[n - rise.size :], rise[::-1])
    return w


def feather(box: Box, shape_hw: tuple[int, int], margin: int) -> np.ndarray:
    """HxW paste weights over the box: 1 inside, a ramp over the outer half of the margin on the sides that
    border the photo (none where the box touches the photo's edge). The holes lie at least ``margin`` inside,
    so they always get full weight."""
    y0, y1, x0, x1 = box
    width = (margin + 1) // 2
    wy = _ramp(y1 - y0, width, y0 > 0, y1 < shape_hw[0])
    wx = _ramp(x1 - x0, width, x0 > 0, x1 < shape_hw[1])
    return wy[:, None] * wx[None, :]


def paste_back(full: np.ndarray, restored: np.ndarray, box: Box, margin: int) -> np.ndarray:
    """``full`` (HxWxC float in [0, 1]) with ``restored`` (the box's size) blended in; a new float32 array.

    Outside the box the photo is untouched, bit for bit; where the weight is 1 the pixels are ``restored``'s.
    """
    out = np.array(full, dtype=np.float32, copy=True)
    y0, y1, x0, x1 = box
    region = out[y0:y1, x0:x1]
    r = np.asarray(restored, dtype=np.float32)
    if r.ndim == 2 and region.ndim == 3:
        r = r[..., None]
    if r.shape != region.shape:
        raise ValueError(f"the restored crop is {r.shape} but the box holds {region.shape}")
    wgt = feather(box, out.shape[:2], margin)
    if region.ndim == 3:
        wgt = wgt[..., None]
    out[y0:y1, x0:x1] = np.where(wgt >= 1.0, r, wgt * r + (1.0 - wgt) * region)
    return out


def to_full(
    result: np.ndarray,
    working: Working,
    photo: np.ndarray,
    mask: np.ndarray | None = None,
    seam_px: int | None = 0,
) -> np.ndarray:
    """What to write for a working-size ``result`` (see the module's docstring); ``photo`` is the full photo
    (HxWxC float in [0, 1]) and ``mask`` its inpainting mask (1 = known) when the task has one.

    An inpainting result keeps the photo's known pixels at every working size, by the one rule of
    :func:`~rwgui.core.compositing.keep_known` with a ``seam_px`` seam; ``seam_px`` None gives the network's
    output as it is (pasted back or upscaled to the full size, known pixels included)."""
    inpaint = working.task == Task.INPAINT and mask is not None
    if working.mode == WorkingMode.CROP and working.box is not None:
        full = paste_back(photo, result, working.box, working.margin)
    elif working.mode == WorkingMode.DOWNSCALE and (inpaint or working.upscaled):
        full = upscale(result, working.full_size)
    else:
        full = np.asarray(result, dtype=np.float32)
    if inpaint and seam_px is not None:
        assert mask is not None
        return keep_known(full, np.asarray(photo, np.float32), mask, seam_px)
    return full
