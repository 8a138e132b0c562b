"""The task registry: each task's label, help text, parameters and what it needs besides the photo.

The studio's task list (the settings panel's combo, the Lab, the help) and the CLI's task argument come from
here, so adding a task touches no widget code: a :class:`Task` member, an entry here, a builder in
:func:`~rwgui.core.problems.make_problem` and a preset in :data:`~rwgui.core.config.PRESETS`. A task's
parameters (the deblur kernel, the pre-image's weights and layer) are :class:`~rwgui.core.params.Param` specs:
the CLI makes flags of them, the studio a form, and a settings file stores them as ``task_params``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .kernels import KERNEL_KINDS
from .params import Param, Variant
from .vocabulary import Task


def _nothing(**_: Any) -> None:
    return None


@dataclass(frozen=True)
class TaskSpec:
    """One task as the person meets it. ``needs`` names what the task takes besides the photo, in words
    (shown next to the task); ``requires_weights`` marks the task that stays disabled without a classifier."""

    task: Task
    label: str
    help: str
    params: tuple[Param, ...] = ()
    needs: str = ""
    requires_weights: bool = False

    @property
    def variant(self) -> Variant[None]:
        return Variant(str(self.task), self.help, self.params, _nothing)

    def resolve(self, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults overlaid with ``values``, coerced and range-checked (ConfigError names a bad one)."""
        return self.variant.resolve(values)


_KERNEL_PARAMS = (
    Param("kernel", "choice", "gaussian", "Blur kernel: Gaussian, straight motion, or an image.", choices=KERNEL_KINDS),
    Param("sigma", "float", 2.0, "Gaussian kernel: standard deviation in pixels.", min=0.1, max=16.0),
    Param("length", "float", 9.0, "Motion kernel: length of the motion in pixels.", min=1.0, max=99.0),
    Param(
        "angle",
        "float",
        0.0,
        "Motion kernel: direction in degrees, counter-clockwise from the x axis.",
        min=-360.0,
        max=360.0,
    ),
    Param("kernel_file", "str", "", "Kernel image: a grey image of the blur, normalised to sum 1."),
)

_PREIMAGE_PARAMS = (
    Param("weights", "str", "", "A torchvision AlexNet or VGG state dict (.pth), loaded with weights_only."),
    Param(
        "layer",
        "str",
        "",
        "Layer to invert: features.N, classifier.N, convK, reluK, poolK, fc6..fc8 "
        "(empty: the last convolutional ReLU).",
    ),
    Param(
        "class_index", "int", -1, "Class to maximise instead of inverting a layer (-1: invert).", min=-1, max=100_000
    ),
)

TASK_SPECS: dict[Task, TaskSpec] = {
    spec.task: spec
    for spec in (
        TaskSpec(Task.DENOISE, "Denoise", "Remove noise and grain (synthetic or known-level noise)."),
        TaskSpec(Task.SR, "Super-resolution", "Enlarge the photo by an integer factor."),
        TaskSpec(Task.INPAINT, "Inpaint (fill holes)", "Fill holes painted on the photo.", needs="a mask"),
        TaskSpec(
            Task.REAL_NOISE,
            "Denoise (unknown noise)",
            "Remove noise of an unknown level: the level is estimated from the photo and shown, and the "
            "stopping rule picks the result.",
        ),
        TaskSpec(
            Task.JPEG,
            "Remove JPEG artefacts",
            "Blind restoration of a heavily compressed photo: blocks and ringing go, stopped early by the rule.",
        ),
        TaskSpec(
            Task.DEBLUR,
            "Deblur (known kernel)",
            "Undo a known blur (Gaussian, motion or a kernel image); the border is mirrored, never wrapped.",
            _KERNEL_PARAMS,
            needs="a blur kernel",
        ),
        TaskSpec(
            Task.FLASH,
            "Flash / no-flash",
            "Two photos of one scene: the result keeps the flash photo's detail and the no-flash photo's light. "
            "Open the flash photo, then File > No-flash photo.",
            needs="a no-flash photo",
        ),
        TaskSpec(
            Task.PREIMAGE,
            "Pre-image (invert a classifier)",
            "Show what a classification network sees: invert a layer's features of the photo, or draw a class, "
            "with the network prior as the only regulariser.",
            _PREIMAGE_PARAMS,
            needs="classifier weights (--weights)",
            requires_weights=True,
        ),
    )
}

assert set(TASK_SPECS) == set(Task), "every Task needs a TaskSpec"


def task_spec(task: str) -> TaskSpec:
    return TASK_SPECS[Task(task)]


def task_params(task: str) -> tuple[Param, ...]:
    return task_spec(task).params


def all_task_params() -> list[Param]:
    """Every task's parameters once (for the CLI's flags)."""
    seen: dict[str, Param] = {}
    for spec in TASK_SPECS.values():
        for p in spec.params:
            seen.setdefault(p.name, p)
    return list(seen.values())


#: The columns of the presets table (``rwgui-restore --presets``, README.md).
PRESET_COLUMNS = (
    "preset",
    "task",
    "prior",
    "input code",
    "reg. noise",
    "lr",
    "iterations",
    "stopping rule",
    "loss prior",
)


def preset_rows() -> list[list[str]]:
    """One row per preset, every value resolved (the preset's own or RunConfig's default)."""
    from .config import PRESETS, preset

    rows = []
    for name in PRESETS:
        cfg = preset(name)
        prior = cfg.prior
        diff = dict(PRESETS[name].get("prior_params", {}))
        if diff:
            prior += " (" + ", ".join(f"{k}={_fmt(v)}" for k, v in diff.items()) + ")"
        named = dict(PRESETS[name].get("loss_prior_params", {}))
        loss = cfg.loss_prior + (f" ({_fmt(named)})" if named and cfg.loss_prior != "none" else "")
        code = cfg.input_code + (f" ({cfg.input_depth} ch)" if cfg.input_code == "noise" else "")
        rows.append(
            [
                name,
                str(cfg.task),
                prior,
                code,
                f"{cfg.reg_noise_std:.3g}",
                f"{cfg.lr:g}",
                str(cfg.iterations),
                cfg.stop,
                loss,
            ]
        )
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return ",".join(str(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items())
    return str(v)


def presets_table(markdown: bool = False) -> str:
    """Every preset as a table: plain columns for a terminal, or a Markdown table for the README."""
    rows = preset_rows()
    if markdown:
        lines = ["| " + " | ".join(PRESET_COLUMNS) + " |", "|" + "---|" * len(PRESET_COLUMNS)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(PRESET_COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(PRESET_COLUMNS, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)
