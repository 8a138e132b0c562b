"""What the Lab queues (a variant) and what it learns from running it (an entry); plain data, no widgets.

A variant names three registry choices: the generator prior, the regulariser (a random-weights loss prior with
its weight λ, total variation, or nothing) and the stopping rule. Everything else comes from the settings the
main window hands over, so two variants differ only where the person asked them to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..core.config import RunConfig
from ..core.lossprior import LOSS_PRIORS
from ..core.params import Registry
from ..core.pixels import u16_to_float
from ..core.priors import PRIORS
from ..core.problems import Problem
from ..core.session import LabResult
from ..core.stopping import STOPPING_RULES
from ..core.vocabulary import LabStatus
from .plots import CurveData
from .worker import KeptImage, RunSummary

__all__ = [
    "NONE",
    "TV",
    "PALETTE",
    "LabVariant",
    "Entry",
    "loss_choices",
    "default_weight",
    "carry_params",
    "same_problem",
]

NONE = "none"
TV = "tv"  # not a LOSS_PRIORS entry: the engine's tv_weight (DIP-TV), offered beside the random-weights priors
TV_DEFAULT_WEIGHT = 0.01
#: Distinct colours that read on the plots' dark background (curve, table swatch and thumbnail frame agree).
PALETTE = (
    (86, 180, 233),
    (230, 159, 0),
    (0, 200, 140),
    (240, 228, 66),
    (204, 121, 167),
    (213, 94, 0),
    (150, 150, 255),
    (180, 180, 180),
    (255, 120, 120),
    (120, 220, 120),
)


def loss_choices() -> list[str]:
    return [NONE, TV, *LOSS_PRIORS.names()]


def default_weight(loss: str, base: RunConfig) -> float:
    """λ to propose: the base settings' own when they use the same regulariser, else the registry default."""
    if loss == NONE:
        return 0.0
    if loss == TV:
        return base.tv_weight if base.tv_weight > 0 else TV_DEFAULT_WEIGHT
    if loss == base.loss_prior and "weight" in base.loss_prior_params:
        return float(base.loss_prior_params["weight"])
    return float(LOSS_PRIORS.get(loss).param("weight").default)


def carry_params(registry: Registry[Any], old: str, new: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters for ``new`` given the base's ``params`` for ``old``.

    Same variant: the base's values. Another variant: its registry defaults, except that a parameter both
    variants have *with the same default* keeps the base's value (the person's network size, patience, ...);
    a parameter whose default differs between them is what makes them different, so it takes ``new``'s default
    (``skip`` -> ``hourglass`` keeps the channels and scales but drops the skip connections).
    """
    if new == old:
        return dict(params)
    if old == NONE or old not in registry:
        return {}
    before, after = registry.get(old).defaults(), registry.get(new).defaults()
    return {k: v for k, v in params.items() if k in after and k in before and before[k] == after[k]}


@dataclass(frozen=True)
class LabVariant:
    """One queued choice: prior x regulariser (with λ) x stopping rule."""

    prior: str
    loss: str
    weight: float
    stop: str

    def label(self) -> str:
        reg = "no loss prior" if self.loss == NONE else f"{self.loss} λ={self.weight:g}"
        return f"{self.prior} · {reg} · {self.stop}"

    def config(self, base: RunConfig, *, iterations: int, seed: int, auto_stop: bool) -> RunConfig:
        """The base settings with this variant's choices; raises ConfigError (a RwguiError) when invalid."""
        lp_params: dict[str, Any] = {}
        loss_prior, tv = NONE, 0.0  # a variant names its one regulariser; 'none' really means none
        if self.loss == TV:
            tv = self.weight
        elif self.loss != NONE:
            loss_prior = self.loss
            lp_params = carry_params(LOSS_PRIORS, base.loss_prior, self.loss, base.loss_prior_params)
            lp_params["weight"] = self.weight
        return base.replace(
            prior=self.prior,
            prior_params=carry_params(PRIORS, base.prior, self.prior, base.prior_params),
            stop=self.stop,
            stop_params=carry_params(STOPPING_RULES, base.stop, self.stop, base.stop_params),
            loss_prior=loss_prior,
            loss_prior_params=lp_params,
            tv_weight=tv,
            iterations=iterations,
            seed=seed,
            auto_stop=auto_stop,
        ).validated()


@dataclass
class Entry:
    """A queue row: its variant, its colour everywhere, and the outcome of its latest run.

    ``status``: 'queued', 'running', 'done' (completed or stopped by its rule), 'stopped' (by the person)
    or 'failed'. ``settings`` records what the outcome was made with, so a queue run can skip rows
    that are already done under the same settings. ``scores`` are the PSNRs of what the person gets from the
    result, once :meth:`score` has measured them when the run ended.
    """

    key: int
    variant: LabVariant
    color: tuple[int, int, int]
    status: LabStatus = LabStatus.QUEUED
    settings: tuple | None = None
    config: RunConfig | None = None
    data: CurveData = field(default_factory=CurveData)
    summary: RunSummary | None = None
    pick: KeptImage | None = None
    average: KeptImage | None = None
    message: str = ""
    scores: dict[str, float | None] | None = None

    def reset(self) -> None:
        self.status, self.settings, self.config, self.summary = LabStatus.QUEUED, None, None, None
        self.pick = self.average = None
        self.message = ""
        self.scores = None
        self.data.clear()

    @property
    def label(self) -> str:
        return self.variant.label()

    @property
    def image(self) -> np.ndarray | None:
        """HxWxC uint16: the running average at the rule's pick (the run's answer), else the last average."""
        if self.status == LabStatus.FAILED:
            return None
        if self.pick is not None and self.pick.average is not None:
            return self.pick.average
        return self.average.pixels if self.average is not None else None

    @property
    def image_iteration(self) -> int | None:
        if self.image is None:
            return None
        if self.pick is not None and self.pick.average is not None:
            return self.pick.iteration
        return self.average.iteration if self.average is not None else None  # not None: there is an image

    def psnr(self, column: str = "psnr_average") -> float | None:
        """PSNR of the result image ('psnr_average') or of the raw iterate at the same iteration ('psnr'): as
        :meth:`score` measured them once the run ended, else the run's curve there."""
        if self.scores is not None and column in self.scores:
            return self.scores[column]
        it = self.image_iteration
        return None if it is None else self.data.value_at(column, it)

    def score(self, problem: Problem) -> None:
        """Measure the PSNRs of what the person gets (:func:`~rwgui.core.compositing.result_psnr`): for
        inpainting the composite that keeps the known pixels, as the CLI and Save result write it, not the
        network's output, whose error on pixels that are never written the run's curves include. The raw
        iterate is scored the same way where the pick's is kept, so the two columns compare alike."""
        from ..core.compositing import result_psnr

        self.scores = None
        image, it = self.image, self.image_iteration
        if image is None or it is None or self.config is None or problem.ground_truth is None:
            return
        raw = self.pick.pixels if self.pick is not None and self.pick.average is not None else None
        self.scores = {
            "psnr_average": result_psnr(u16_to_float(image), problem, self.config),
            "psnr": self.data.value_at("psnr", it)
            if raw is None
            else result_psnr(u16_to_float(raw), problem, self.config),
        }

    def curve_column(self, psnr: bool) -> str:
        """What the comparison plots: the result's PSNR, else the data term alone (the total loss would add
        each variant's own regulariser, which says nothing about how the variants compare)."""
        if psnr:
            return "psnr_average"
        try:
            self.data.column("loss_data")  # the term exists once a report has arrived
        except KeyError:
            return "loss"
        return "loss_data"

    def seconds_per_step(self) -> float | None:
        s = self.summary
        return s.step_seconds / s.iterations if s is not None and s.iterations > 0 else None

    def result(self, best: bool = False) -> LabResult | None:
        """The typed answer handed to the window, or None while the row has no result."""
        image, it = self.image, self.image_iteration
        if image is None or it is None or self.config is None:
            return None
        return LabResult(self.key, self.label, self.config, it, u16_to_float(image), self.psnr(), best)

    def as_dict(self, best: bool = False) -> dict[str, Any]:
        s = self.summary
        return {
            "key": self.key,
            "variant": self.label,
            "status": self.status,
            "message": self.message,
            "reason": s.reason if s else None,
            "iterations": s.iterations if s else self.data.n,
            "pick_iteration": self.image_iteration,
            "psnr_pick": self.psnr("psnr"),
            "psnr_average_pick": self.psnr("psnr_average"),
            "seconds_per_step": self.seconds_per_step(),
            "config": self.config,
            "image": self.image,
            "best": best,
        }


def same_problem(a: Problem, b: Problem) -> bool:
    """Same task, photo, mask and ground truth (the window builds a fresh Problem each time the Lab opens)."""
    if a is b:
        return True

    def same(x: torch.Tensor | None, y: torch.Tensor | None) -> bool:
        if x is None or y is None:
            return x is None and y is None
        return x.shape == y.shape and bool(torch.equal(x, y))

    return (
        a.task == b.task
        and a.size == b.size
        and a.operator.name == b.operator.name
        and same(a.observed, b.observed)
        and same(a.mask, b.mask)
        and same(a.ground_truth, b.ground_truth)
    )
