"""Shared pieces of the benchmarks: test crops from several photos, table printing, timing."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core import imageio
from ..core.problems import Problem, random_pixel_mask
from ..core.samples import centre_crop, damage
from ..core.vocabulary import Task

if TYPE_CHECKING:
    from ..core.config import RunConfig
    from ..core.tiles import TileGrid
    from ..core.working_size import WorkingPlan

#: A folder with the Deep Image Prior repository's reference images, when the person has them; unset, the
#: benchmarks use scikit-image's photos only.
REFERENCE_DIR = os.environ.get("RWGUI_BENCH_PHOTOS", "")


def photos() -> dict[str, np.ndarray]:
    """Natural photos for measuring: the Deep Image Prior repository's reference images (F16, kate, zebra) when
    the folder ``RWGUI_BENCH_PHOTOS`` names holds them (they are research material: never shipped), plus
    scikit-image's public-domain/CC0 photos when scikit-image is installed."""
    out: dict[str, np.ndarray] = {}
    for name, file in (("F16", "denoising_F16_GT.png"), ("kate", "inpainting_kate.png"), ("zebra", "sr_zebra_GT.png")):
        path = Path(REFERENCE_DIR) / file
        if REFERENCE_DIR and path.is_file():
            out[name] = imageio.read(path).pixels
    try:
        from skimage import data
    except ImportError:
        pass
    else:
        for name in ("astronaut", "chelsea", "coffee"):
            out[name] = getattr(data, name)().astype(np.float32) / 255.0
    if not out:
        raise SystemExit("no benchmark photos: install scikit-image (pip install scikit-image)")
    return out


#: Centre crop, ``size`` x ``size`` (or the whole photo when smaller): the samples' own crop.
crop = centre_crop


def make_problem(task: str, img: np.ndarray) -> Problem:
    """Synthetic damage with known ground truth, named by the preset that restores it: the bundled samples'
    damage (:func:`rwgui.core.samples.damage`), plus half the pixels dropped at random for ``inpaint-pixels``
    and the factor of ``sr-xN``."""
    if task == "inpaint-pixels":
        return damage(img, Task.INPAINT, mask=random_pixel_mask(img.shape[:2], 0.5, 0)).problem()
    if task.startswith("sr-x"):
        return damage(img, Task.SR, factor=int(task[4:])).problem()
    return damage(img, task).problem()


def write_json(path: str | None, data: object) -> None:
    """Raw results for later tables (the README's are pasted from the printed ones)."""
    if path:
        import json

        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (pastes straight into the README)."""

    def fmt(v: object) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def forced_tiles(problem: Problem, cfg: RunConfig, tile: int, overlap: int = 0) -> tuple[WorkingPlan, TileGrid]:
    """The working-size plan and tile grid for a memory budget just large enough for a ``tile`` x ``tile`` run
    (in the precision the run will compute in), so that the plan offers tiles and ``choose_working(plan,
    'auto')`` takes them, as it would for a photo larger than the device."""
    from ..core.device import resolve_device
    from ..core.memory import MemoryModel, run_dtype
    from ..core.vocabulary import WorkingMode
    from ..core.working_size import choose_working, plan_for_problem

    device = resolve_device(cfg.device)
    model = MemoryModel(cfg, problem.channels, run_dtype(cfg, problem.size, device, problem.channels), device.type)
    plan = plan_for_problem(problem, cfg, model.estimate((tile, tile)).total_bytes + 2**20, overlap=overlap)
    working = choose_working(plan, WorkingMode.AUTO)
    if working.mode != WorkingMode.TILES or working.tiles is None:
        raise SystemExit(f"the plan did not take tiles: {plan.sentence}")
    return plan, working.tiles
