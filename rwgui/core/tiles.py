"""Tiles: restore a photo too large for the device at full resolution, one overlapping tile at a time.

A denoising or super-resolution problem is cut into a grid of equal tiles, each small enough for the memory
plan (:func:`fit_tiles` asks the same :class:`~rwgui.core.memory.MemoryModel` the working-size plan does).
Each tile is a problem of its own, built by :func:`~rwgui.core.problems.make_problem` from the photo's crop,
and runs as its own engine run through the engine's one loop (:meth:`Engine.steps
<rwgui.core.engine.Engine.steps>`): its own stopping rule, its own pick, the same settings and seed. The
tiles' results are blended with weights that sum to one at every pixel.

**Blend.** Along each axis, consecutive tiles overlap by at least ``overlap`` output pixels; in the middle of
each overlap a raised-cosine ramp of width ``ramp`` hands over from one tile to the next (the leaving tile's
weight is one minus the arriving tile's, so the two sum to one), and outside the ramps exactly one tile has
weight 1. The 2-D weight is the product of the row and column weights, so over the grid the weights sum to
(sum over rows) x (sum over columns) = 1. A difference ``d`` between two tiles' answers in their overlap
thus becomes a gradient of at most about ``1.6 d / ramp`` per pixel, spread across the ramp, instead of a
step of ``d`` at one line (a hard paste), which the eye sees as a seam.

**Overlap.** The default (:func:`default_overlap`) is the larger of the network's coarsest cell (``2 **
num_scales`` output pixels, the prior's ``size_multiple``) and an eighth of the tile, at most a quarter of
it. Near a tile's edge the network lacks the context beyond it and its convolutions see padding; that edge
effect reaches about one cell of the coarsest scale into the tile, so an overlap of at least one cell keeps
the ramp on pixels both tiles restored with context. An eighth of the tile keeps the ramp wide enough that
the tiles' independent fits (each settles on a slightly different brightness and texture) blend gently; a
quarter at most keeps the extra work (the share of pixels restored twice) under about 2x.

**Super-resolution** tiles the low-resolution input (a tile's observation is exactly the photo's crop, so its
operator is the photo's operator on that crop) and blends at the output scale: input tile boxes times the
factor, the ramp likewise.

**Inpainting is excluded**: a mask says where the damage is, so the crop path of
:mod:`rwgui.core.working_size` already restores only the damaged region, at full resolution, and keeps every
other pixel of the photo; tiling would restore the undamaged parts of the photo for nothing, and a tile whose
holes meet its edge would fill them without the context the crop's margin guarantees.

**Progress and stopping.** :func:`tiled_steps` is a generator like the engine's loop: it yields a
:class:`TileEvent` (tile k of n, the engine's event, the whole photo's fraction done) for every event of every
tile and returns a :class:`TiledResult`. One :class:`~rwgui.core.engine.RunControl` serves every tile, so a
stop or pause reaches whichever tile is running. A run that ends early (stopped, out of memory, an error,
divergence) leaves the tiles not yet run at the naive answer (the photo itself for denoising, bicubic for
super-resolution), so the result so far can still be written.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np

from .config import RunConfig
from .engine import Engine, RunControl, RunEvent, RunResult, drain
from .metrics import psnr
from .pixels import tensor_to_image
from .problems import Problem, remake
from .vocabulary import Iterate, StopReason, Task

__all__ = [
    "TILE_TASKS",
    "TileGrid",
    "TileEvent",
    "TiledResult",
    "default_overlap",
    "size_multiple",
    "fit_tiles",
    "tile_grid",
    "tile_problem",
    "tiled_steps",
    "run_tiled",
    "seam_gradients",
]

Box = tuple[int, int, int, int]  # y0, y1, x0, x1 (half-open, like slices), as in working_size
TILE_TASKS = (Task.DENOISE, Task.SR)
MIN_TILE = 32  # output px: a smaller tile has almost no pixels away from its edges


def default_overlap(tile_side: int, multiple: int) -> int:
    """Output pixels two neighbouring tiles share by default: the network's coarsest cell or an eighth of the
    tile, whichever is larger, at most a quarter of the tile (see the module's docstring for why)."""
    return max(1, min(max(multiple, tile_side // 8), tile_side // 4))


@functools.lru_cache(maxsize=32)
def _multiple(prior: str, params_json: str, input_code: str, input_depth: int, channels: int) -> int:
    from .priors import build_prior, input_channels

    net = build_prior(
        prior,
        json.loads(params_json),
        in_channels=input_channels(input_code, input_depth, channels),
        out_channels=channels,
    )
    return int(getattr(net, "size_multiple", 1))


def size_multiple(config: RunConfig, channels: int) -> int:
    """The prior's size multiple (``2 ** num_scales`` for the hourglass): images are padded to it, so a tile
    that is a multiple of it wastes nothing, and its coarsest cell sets the default overlap. Built once per
    network (a few milliseconds)."""
    cfg = config.validated()
    params = json.dumps(dict(cfg.prior_params), sort_keys=True)
    return _multiple(cfg.prior, params, cfg.input_code, cfg.input_depth, channels)


def _axis_starts(n: int, t: int, o: int) -> list[int]:
    """Starts of equal tiles of ``t`` covering ``[0, n)``, neighbours overlapping by at least ``o``, spread
    evenly (the first at 0, the last ending at ``n``)."""
    if t >= n:
        return [0]
    m = math.ceil((n - o) / (t - o))
    return [round(i * (n - t) / (m - 1)) for i in range(m)]


def _rise(width: int) -> np.ndarray:
    """Raised cosine from ~0 to ~1 over ``width`` samples at pixel centres; ``rise[d] + rise[width-1-d] = 1``."""
    d = np.arange(width, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(np.pi * (d + 0.5) / width)


def _axis_weights(starts: list[int], t: int, ramp: int) -> list[np.ndarray]:
    """Each tile's 1-D weights (length ``t``): 1, except a ramp of ``ramp`` px centred in each overlap with a
    neighbour, where the arriving tile rises and the leaving tile falls by its complement."""
    weights = [np.ones(t, np.float64) for _ in starts]
    for i in range(len(starts) - 1):
        lo, hi = starts[i + 1], starts[i] + t  # the overlap, in output px
        width = min(ramp, hi - lo)
        r0 = lo + (hi - lo - width) // 2  # the ramp, centred in the overlap
        rise = _rise(width)
        a, b = weights[i], weights[i + 1]
        a[r0 - starts[i] :] = 0.0
        a[r0 - starts[i] : r0 - starts[i] + width] = 1.0 - rise
        b[: r0 - starts[i + 1]] = 0.0
        b[r0 - starts[i + 1] : r0 - starts[i + 1] + width] = rise
    return weights


@dataclass(frozen=True)
class TileGrid:
    """The tiles of one photo. ``in_boxes`` cut the observed photo (low resolution for super-resolution),
    ``boxes`` the result at output scale (the same boxes times ``factor``); ``overlap`` and ``ramp`` are in
    output pixels; ``rows``/``cols`` are the tiles' starts along each axis, in input pixels."""

    size: tuple[int, int]  # (h, w) of the result
    tile: tuple[int, int]  # (h, w) of every tile's result
    factor: int
    overlap: int
    ramp: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.rows) * len(self.cols)

    @property
    def in_tile(self) -> tuple[int, int]:
        return self.tile[0] // self.factor, self.tile[1] // self.factor

    @property
    def in_boxes(self) -> list[Box]:
        th, tw = self.in_tile
        return [(y, y + th, x, x + tw) for y in self.rows for x in self.cols]

    @property
    def boxes(self) -> list[Box]:
        f = self.factor
        return [(y0 * f, y1 * f, x0 * f, x1 * f) for y0, y1, x0, x1 in self.in_boxes]

    def _axes(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        f = self.factor
        wy = _axis_weights([y * f for y in self.rows], self.tile[0], self.ramp)
        wx = _axis_weights([x * f for x in self.cols], self.tile[1], self.ramp)
        return wy, wx

    def weights(self) -> list[np.ndarray]:
        """Each tile's blending weights (tile-sized float64 arrays), in the order of ``boxes``."""
        wy, wx = self._axes()
        return [a[:, None] * b[None, :] for a in wy for b in wx]

    def blend(self, images: list[np.ndarray]) -> np.ndarray:
        """The tiles' results (HxWxC each, in the order of ``boxes``) blended into the whole result, float32."""
        c = images[0].shape[2] if images[0].ndim == 3 else 1
        out = np.zeros((*self.size, c), np.float64)
        for box, w, img in zip(self.boxes, self.weights(), images):
            y0, y1, x0, x1 = box
            a = np.asarray(img, np.float64).reshape(y1 - y0, x1 - x0, c)
            out[y0:y1, x0:x1] += w[..., None] * a
        return out.astype(np.float32)

    def seams(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The ramps, as half-open output-pixel ranges: (row ranges, column ranges). A seam would show there."""
        f = self.factor

        def ranges(starts: list[int], t: int) -> list[tuple[int, int]]:
            out = []
            for i in range(len(starts) - 1):
                lo, hi = starts[i + 1] * f, starts[i] * f + t
                width = min(self.ramp, hi - lo)
                r0 = lo + (hi - lo - width) // 2
                out.append((r0, r0 + width))
            return out

        return ranges(list(self.rows), self.tile[0]), ranges(list(self.cols), self.tile[1])

    def describe(self) -> str:
        t = self.tile
        return f"{self.count} tiles of {t[1]}x{t[0]} ({self.overlap} px overlap)"


def tile_grid(size: tuple[int, int], tile: tuple[int, int], overlap: int, factor: int = 1) -> TileGrid:
    """The grid of tiles of at most ``tile`` (h, w output px, multiples of ``factor``) covering a result of
    ``size`` (h, w), neighbours sharing at least ``overlap`` output px (rounded up to whole input px)."""
    f = max(1, factor)
    n_in = (size[0] // f, size[1] // f)
    t_in = (min(tile[0] // f, n_in[0]), min(tile[1] // f, n_in[1]))
    if min(t_in) < 1:
        raise ValueError(f"tile {tile} is smaller than the factor {f}")
    o_in = max(1, -(-overlap // f))
    o_in = min(o_in, max(1, min(t_in) // 2))  # a pixel lies in at most two tiles along an axis
    rows = _axis_starts(n_in[0], t_in[0], o_in)
    cols = _axis_starts(n_in[1], t_in[1], o_in)
    ramp = o_in
    for starts in (rows, cols):  # ramps of consecutive overlaps must not meet
        if len(starts) > 2:
            ramp = min(ramp, min(b - a for a, b in zip(starts, starts[1:])))
    return TileGrid(
        size=(n_in[0] * f, n_in[1] * f),
        tile=(t_in[0] * f, t_in[1] * f),
        factor=f,
        overlap=o_in * f,
        ramp=max(1, ramp) * f,
        rows=tuple(rows),
        cols=tuple(cols),
    )


def fit_tiles(
    estimate: Callable[[tuple[int, int]], int],
    size: tuple[int, int],
    room: int,
    multiple: int,
    factor: int = 1,
    overlap: int = 0,
) -> TileGrid | None:
    """The grid of the largest square-ish tiles whose memory ``estimate`` (bytes for a result of (h, w))
    fits ``room``; sides are multiples of the prior's ``multiple`` and the SR ``factor`` (the photo's own side
    where it is smaller). ``overlap`` 0 takes :func:`default_overlap`. None when no tile of at least
    ``MIN_TILE`` px (and twice the overlap) fits."""
    q = math.lcm(max(1, multiple), max(1, factor))
    h, w = size
    side = max(h, w) // q * q
    while side >= q:
        tile = (min(side, h // factor * factor), min(side, w // factor * factor))
        if estimate(tile) <= room:
            break
        side -= q
    else:
        return None
    o = overlap if overlap > 0 else default_overlap(side, multiple)
    if min(tile) < max(MIN_TILE, 2 * o):
        return None

    def snug(n: int, t: int) -> int:  # as many tiles as ``t`` needs, each no larger than they need to be
        if t >= n:
            return t
        m = math.ceil((n - o) / (t - o))
        return min(t, -(-math.ceil((n + (m - 1) * o) / m) // q) * q)

    return tile_grid(size, (snug(h, tile[0]), snug(w, tile[1])), o, factor)


def tile_problem(problem: Problem, box_in: Box) -> Problem:
    """The problem of one tile: the photo's crop (low resolution for SR), its ground truth's crop at output
    scale, built by :func:`~rwgui.core.problems.remake` (the task's parameters kept) like a working size's."""
    if problem.task not in TILE_TASKS:
        raise ValueError(f"tiles are for denoising and super-resolution, not {problem.task}")
    y0, y1, x0, x1 = box_in
    f = problem.size[0] // int(problem.observed.shape[2]) if problem.task == Task.SR else 1
    gt = None
    if problem.ground_truth is not None:
        gt = tensor_to_image(problem.ground_truth)[y0 * f : y1 * f, x0 * f : x1 * f]
    return remake(problem, lambda a: a[y0:y1, x0:x1], factor=f, ground_truth=gt)


@dataclass(frozen=True)
class TileEvent:
    """One event of :func:`tiled_steps`: the engine's ``event`` of tile ``index`` (0-based) of ``count``;
    ``fraction`` is the whole photo's progress in [0, 1] (a tile that stops early counts as done)."""

    index: int
    count: int
    event: RunEvent
    fraction: float
    budget: int  # iterations each tile may run
    #: the tile's engine, for a consumer that streams its frames (the studio's worker); held only while the
    #: event is handled, so that the next tile's engine can take the memory
    engine: Engine | None = field(default=None, repr=False, compare=False)


@dataclass
class TiledResult:
    """The blended result (HxWxC float32 at full size), each tile's RunResult and image, and a summary
    RunResult for the whole photo (``run``: the first early end's reason and message, else RULE when every
    tile's rule stopped it, else BUDGET; iterations summed)."""

    image: np.ndarray
    grid: TileGrid
    results: list[RunResult]
    images: list[np.ndarray] = field(repr=False, default_factory=list)
    run: RunResult | None = None
    psnr: float | None = None  # of ``image`` against the ground truth, when the problem has one


_EARLY = (StopReason.USER, StopReason.OUT_OF_MEMORY, StopReason.ERROR, StopReason.DIVERGED)


def _summary(results: list[RunResult], count: int) -> RunResult:
    early = next((r for r in results if r.stop_reason in _EARLY), None)
    if early is not None:
        reason, k = early.stop_reason, results.index(early)
        message = f"tile {k + 1} of {count}: {early.message}" if early.message else ""
    else:
        every_rule = len(results) == count and all(r.stop_reason is StopReason.RULE for r in results)
        reason, message = (StopReason.RULE if every_rule else StopReason.BUDGET), ""
    n = sum(r.iterations_run for r in results)
    seconds = sum(r.seconds for r in results)
    return RunResult(
        iterations_run=n,
        stop_reason=reason,
        pick_iteration=None,
        peak_iteration=None,
        peak_psnr=None,
        seconds_per_iteration=seconds / max(n, 1),
        seconds=seconds,
        step_seconds=sum(r.step_seconds for r in results),
        message=message,
        error=None if early is None else early.error,
    )


def tiled_steps(
    problem: Problem,
    config: RunConfig,
    grid: TileGrid,
    control: RunControl | None = None,
    which: Iterate = Iterate.PICK_AVERAGE,
) -> Generator[TileEvent, None, TiledResult]:
    """Run every tile of ``grid`` through the engine's loop, one after another, yielding a :class:`TileEvent`
    for each engine event; returns the :class:`TiledResult`. ``which`` is the iterate each tile contributes
    (the running average at its rule's pick by default, as an untiled run's result)."""
    if problem.task not in TILE_TASKS:
        raise ValueError(
            "tiles are for denoising and super-resolution; inpainting restores a crop around the damage instead"
        )
    control = control if control is not None else RunControl()
    cfg = config.validated()
    budget, n = cfg.iterations, grid.count
    naive = problem.naive()
    results: list[RunResult] = []
    images: list[np.ndarray] = []
    for k, (box_in, box) in enumerate(zip(grid.in_boxes, grid.boxes)):
        if results and results[-1].stop_reason in _EARLY:
            y0, y1, x0, x1 = box
            images.append(naive[y0:y1, x0:x1])
            continue
        engine = Engine(tile_problem(problem, box_in), cfg)
        steps = engine.steps(control, budget)
        while True:
            try:
                event = next(steps)
            except StopIteration as end:
                result: RunResult = end.value
                break
            yield TileEvent(k, n, event, (k + min(1.0, event.iteration / max(budget, 1))) / n, budget, engine)
        results.append(result)
        if engine.iteration > 0:
            images.append(engine.image(which))
        else:  # nothing to read: the naive answer stands in
            y0, y1, x0, x1 = box
            images.append(naive[y0:y1, x0:x1])
        del engine, steps  # the next tile's engine takes the memory
    image = grid.blend(images)
    score = None
    if problem.ground_truth is not None:
        score = psnr(image, tensor_to_image(problem.ground_truth)[: grid.size[0], : grid.size[1]])
    return TiledResult(image, grid, results, images, _summary(results, n), score)


def run_tiled(
    problem: Problem,
    config: RunConfig,
    grid: TileGrid,
    control: RunControl | None = None,
    on_event: Callable[[TileEvent], None] | None = None,
    which: Iterate = Iterate.PICK_AVERAGE,
) -> TiledResult:
    """:func:`tiled_steps` drained (``on_event`` sees every event), for code that wants the end only."""
    return drain(tiled_steps(problem, config, grid, control, which), on_event)


def seam_gradients(image: np.ndarray, grid: TileGrid) -> dict[str, float]:
    """How much a seam shows: the mean absolute difference between neighbouring pixels across each line,
    averaged over the lines inside the blending ramps ('seam'), the worst such line ('seam_max'), and over
    every other line ('elsewhere'), horizontal and vertical lines together. A hard paste of tiles that
    disagree puts a step on one line of each overlap, which 'seam_max' sees at once; a good blend keeps
    both near 'elsewhere'."""
    img = np.asarray(image, np.float64)
    if img.ndim == 2:
        img = img[..., None]
    row_seams, col_seams = grid.seams()
    dy = np.abs(np.diff(img, axis=0)).mean(axis=(1, 2))  # line between rows i and i+1
    dx = np.abs(np.diff(img, axis=1)).mean(axis=(0, 2))

    def split(lines: np.ndarray, seams: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
        inside = np.zeros(lines.size, bool)
        for a, b in seams:  # the lines between pixel a-1 and b: the ramp and its two borders
            inside[max(0, a - 1) : min(lines.size, b)] = True
        return lines[inside], lines[~inside]

    sy, ey = split(dy, row_seams)
    sx, ex = split(dx, col_seams)
    seam, other = np.concatenate([sy, sx]), np.concatenate([ey, ex])
    return {
        "seam": float(seam.mean()) if seam.size else 0.0,
        "seam_max": float(seam.max()) if seam.size else 0.0,
        "elsewhere": float(other.mean()) if other.size else 0.0,
        "elsewhere_max": float(other.max()) if other.size else 0.0,
    }
