"""Why Deep Image Prior works, shown on the person's own photo: the Deep Image Prior paper's Figure 2.

The same network (the denoise preset's prior, the same seed, the same settings) is fitted to four targets made
from one photo: the photo itself, the photo plus Gaussian noise, the photo with its pixels shuffled, and pure
uniform noise. The operator is the identity (plain reconstruction) and no stopping rule ends a fit early, so
each fit runs its whole budget and its data loss (the MSE to its target) is recorded at every iteration. A
natural image is fitted fast and noise slowly: the network has "high impedance to noise, low impedance to
signal", which is what lets an early-stopped fit of a noisy photo be the clean photo.

Each fit goes through :meth:`Engine.steps` (the engine's one loop); this module only builds the targets and
reads the reports. It works at a small working size (``DEFAULT_SIDE`` px on the long side, a parameter) so that
the four fits finish in minutes on a CPU: the comparison is about iteration counts, which a smaller photo
keeps, not about the photo's detail.

``python3 -m rwgui.core.impedance PHOTO --csv curves.csv`` writes the curves and prints the iterations at which
each reaches the thresholds.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import RunConfig, preset
from .engine import Engine, RunControl, RunEvent, drain
from .problems import Problem, add_gaussian_noise, denoise_problem
from .resample import downscale
from .vocabulary import StopReason, Task

__all__ = [
    "TARGETS",
    "LABELS",
    "DEFAULT_SIDE",
    "DEFAULT_SIGMA",
    "DEFAULT_ITERATIONS",
    "EXPLANATION",
    "ImpedanceResult",
    "Threshold",
    "default_thresholds",
    "working_photo",
    "make_targets",
    "target_problems",
    "fit_config",
    "fit_curves",
    "first_at_or_below",
    "format_hit",
    "main",
]

#: The four targets, in the order they are fitted, drawn and written (the CSV's columns are ``loss_NAME``).
TARGETS: tuple[str, ...] = ("image", "image_noise", "shuffled", "noise")
#: How the studio and the printed summary name each target.
LABELS: dict[str, str] = {
    "image": "the photo",
    "image_noise": "photo + noise",
    "shuffled": "shuffled pixels",
    "noise": "pure noise",
}
#: The working size's long side: at 128 px the four fits of 1000 iterations took about 20 minutes on a busy
#: 2-core CPU (rwgui/bench/README.md); the curves part within the first few minutes.
DEFAULT_SIDE = 128
#: The noise added to the photo for the second target: the paper's denoising level.
DEFAULT_SIGMA = 25 / 255
#: Enough for the photo to be fitted well below the noise's level and for the gap to the others to show.
DEFAULT_ITERATIONS = 1000
#: The one sentence the studio shows above the curves.
EXPLANATION = (
    "The same untrained network is fitted to four targets made from this photo. It fits the photo quickly and "
    "noise slowly: high impedance to noise, low impedance to signal. Stopped early, a fit of a noisy photo is "
    "mostly the photo."
)


@dataclass(frozen=True)
class Threshold:
    """A loss to report reaching: an MSE (``relative`` False), or a fraction of each target's own variance
    (``relative`` True: the part of the target not yet fitted, which compares targets of different contrast;
    uniform noise has more variance than most photos, a dark photo less)."""

    value: float
    relative: bool = False

    def level(self, variance: float) -> float:
        """The MSE this threshold means for a target of pixel variance ``variance``."""
        return self.value * variance if self.relative else self.value

    @property
    def label(self) -> str:
        return f"MSE ≤ {self.value:g} × Var" if self.relative else f"MSE ≤ {self.value:.3g}"


def default_thresholds(sigma: float = DEFAULT_SIGMA) -> tuple[Threshold, ...]:
    """sigma², then half and a tenth of the target's variance.

    sigma² is the MSE between the photo and the photo plus noise: a fit at that loss is as close to its target
    as the noise is to the photo, and the photo+noise fit reaches it about when it has the photo and little of
    the noise. A relative threshold is reached by every target within a budget of hundreds of iterations at
    0.5, so the four counts compare directly: their ratio is the "impedance" the paper's Figure 2 shows."""
    return (Threshold(sigma**2), Threshold(0.5, relative=True), Threshold(0.1, relative=True))


@dataclass
class ImpedanceResult:
    """The four fits' data losses (MSE to the target) per iteration: ``curves[name][i]`` is iteration i + 1's.

    A fit that was stopped (``control``) has a shorter curve, and fits not started yet have none."""

    curves: dict[str, np.ndarray]
    variances: dict[str, float]  # each target's pixel variance (what an all-mean output's MSE would be)
    size: tuple[int, int]  # (h, w) of the working photo
    sigma: float
    iterations: int  # the budget of each fit
    seed: int
    thresholds: tuple[Threshold, ...]
    stop_reasons: dict[str, StopReason] = field(default_factory=dict)
    seconds: float = 0.0

    def reached(self, name: str, threshold: Threshold) -> int | None:
        """The first iteration at which ``name``'s loss is at or below ``threshold``; None if never."""
        level = threshold.level(self.variances[name])
        return first_at_or_below(self.curves.get(name, np.empty(0)), level)

    def final_fraction(self, name: str, last: int = 10) -> float | None:
        """The mean of the last ``last`` normalised losses: the part of the target still not fitted at the end."""
        c = self.curves.get(name)
        return float(self.normalised(name)[-last:].mean()) if c is not None and len(c) else None

    def table(self) -> list[tuple[Threshold, dict[str, int | None]]]:
        """For each threshold, the first iteration each target reached it (None: not within the budget)."""
        return [(t, {name: self.reached(name, t) for name in TARGETS}) for t in self.thresholds]

    def normalised(self, name: str) -> np.ndarray:
        """``name``'s curve divided by its target's variance: the fraction of the target not yet explained,
        which compares targets of different contrast (uniform noise has more variance than most photos)."""
        return self.curves[name] / max(self.variances[name], 1e-12)

    def rows(self) -> list[list[str]]:
        """The CSV's rows after its header: one per iteration, an empty cell where a fit has no value."""
        n = max((len(c) for c in self.curves.values()), default=0)
        out = []
        for i in range(n):
            row = [str(i + 1)]
            for name in TARGETS:
                c = self.curves.get(name)
                row.append(f"{c[i]:.8g}" if c is not None and i < len(c) else "")
            out.append(row)
        return out

    def write_csv(self, path: str | Path) -> None:
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["iteration", *(f"loss_{name}" for name in TARGETS)])
            w.writerows(self.rows())

    def summary(self) -> str:
        """The iterations-to-threshold table as text (what the CLI prints)."""
        h, w = self.size
        lines = [
            f"{w}x{h} working photo, sigma {self.sigma * 255:.3g}/255, {self.iterations} iterations per fit, "
            f"seed {self.seed}; first iteration at which the MSE to the target is at or below each threshold:",
            f"{'threshold':>18}  " + "  ".join(f"{LABELS[n]:>16}" for n in TARGETS),
        ]
        for t, hits in self.table():
            cells = [format_hit(hits[n], len(self.curves.get(n, ()))) for n in TARGETS]
            lines.append(f"{t.label:>18}  " + "  ".join(f"{c:>16}" for c in cells))
        ends = [self.final_fraction(n) for n in TARGETS]
        cells = [f"{e:.3f}" if e is not None else "" for e in ends]
        lines.append(f"{'MSE / Var at end':>18}  " + "  ".join(f"{c:>16}" for c in cells))
        return "\n".join(lines)


def format_hit(iteration: int | None, ran: int) -> str:
    """An iteration count for a table: the number, or 'not in N' when the fit ran N iterations without it."""
    return str(iteration) if iteration is not None else f"not in {ran}"


def first_at_or_below(curve: Sequence[float] | np.ndarray, threshold: float) -> int | None:
    """The 1-based iteration of the first value of ``curve`` at or below ``threshold``; None if none is."""
    a = np.asarray(curve, dtype=np.float64)
    hits = np.flatnonzero(a <= threshold)
    return int(hits[0]) + 1 if hits.size else None


def working_photo(pixels: np.ndarray, side: int | None = DEFAULT_SIDE) -> np.ndarray:
    """The photo with its long side at ``side`` px by area averaging (never enlarged); ``None`` keeps it."""
    a = np.asarray(pixels, dtype=np.float32)
    if a.ndim == 2:
        a = a[..., None]
    h, w = a.shape[:2]
    if side is None or max(h, w) <= side:
        return np.ascontiguousarray(a)
    s = side / max(h, w)
    return downscale(a, (max(8, round(h * s)), max(8, round(w * s))))


def make_targets(photo: np.ndarray, sigma: float = DEFAULT_SIGMA, seed: int = 0) -> dict[str, np.ndarray]:
    """The four targets, HxWxC float32 in [0, 1], in ``TARGETS`` order, all drawn from ``seed``.

    The photo plus N(0, sigma) noise is clipped to [0, 1] (as every noisy photo rwgui makes); the shuffle moves
    whole pixels (a colour stays a colour of the photo) by a fixed permutation, so the shuffled photo has
    exactly the photo's histogram and none of its structure; the noise is uniform in [0, 1], one value per
    pixel and channel, like the paper's white-noise target."""
    img = np.ascontiguousarray(photo, dtype=np.float32)
    if img.ndim == 2:
        img = img[..., None]
    h, w, c = img.shape
    noise_seed, perm_seed, white_seed = np.random.SeedSequence(seed).spawn(3)
    perm = np.random.default_rng(perm_seed).permutation(h * w)
    white = np.random.default_rng(white_seed).uniform(0.0, 1.0, img.shape).astype(np.float32)
    noisy_seed = int(noise_seed.generate_state(1)[0])
    return {
        "image": img.copy(),
        "image_noise": add_gaussian_noise(img, sigma, noisy_seed),
        "shuffled": img.reshape(h * w, c)[perm].reshape(h, w, c),
        "noise": white,
    }


def target_problems(targets: dict[str, np.ndarray]) -> dict[str, Problem]:
    """Each target as a reconstruction problem: the identity operator, the target as the observed photo."""
    return {name: denoise_problem(targets[name]) for name in TARGETS if name in targets}


def fit_config(base: RunConfig | None = None, *, iterations: int = DEFAULT_ITERATIONS, seed: int = 0) -> RunConfig:
    """The settings of every fit: ``base`` (the denoise preset by default) with no stopping rule, no loss prior
    and no total variation, so that the loss is the data term alone and each fit runs its whole budget."""
    base = base if base is not None else preset("denoise")
    return base.replace(
        task=Task.DENOISE,
        stop="fixed",
        stop_params={},
        auto_stop=False,
        loss_prior="none",
        loss_prior_params={},
        tv_weight=0.0,
        iterations=iterations,
        seed=seed,
    ).validated()


def fit_curves(
    photo: np.ndarray,
    *,
    sigma: float = DEFAULT_SIGMA,
    iterations: int = DEFAULT_ITERATIONS,
    seed: int = 0,
    config: RunConfig | None = None,
    thresholds: Iterable[Threshold] | None = None,
    control: RunControl | None = None,
    on_step: Callable[[str, int, float], None] | None = None,
) -> ImpedanceResult:
    """Fit the network to the four targets of ``photo`` (already at its working size: :func:`working_photo`),
    one after another, each through the engine's loop; the same ``seed`` draws the targets and every fit's
    initial weights and input code, so the fits differ only in their target and a run is repeatable.

    ``config`` is the base of :func:`fit_config` (the denoise preset by default). ``on_step(name, iteration,
    loss)`` sees every step's data loss as it settles. A stop through ``control`` ends the current fit and
    starts no other."""
    import time

    cfg = fit_config(config, iterations=iterations, seed=seed)
    targets = make_targets(photo, sigma, seed)
    control = control if control is not None else RunControl()
    result = ImpedanceResult(
        curves={},
        variances={name: float(np.var(t)) for name, t in targets.items()},
        size=(int(targets["image"].shape[0]), int(targets["image"].shape[1])),
        sigma=sigma,
        iterations=iterations,
        seed=seed,
        thresholds=tuple(thresholds) if thresholds is not None else default_thresholds(sigma),
    )
    t0 = time.perf_counter()
    for name, problem in target_problems(targets).items():
        if control.stop_requested:
            break
        losses: list[float] = []

        def on_event(event: RunEvent, name: str = name, losses: list[float] = losses) -> None:
            rep = event.report
            if rep is None:
                return
            loss = rep.loss_terms["data"]
            losses.append(loss)
            if on_step is not None:
                on_step(name, rep.iteration, loss)

        run = drain(Engine(problem, cfg).steps(control), on_event)
        result.curves[name] = np.asarray(losses, dtype=np.float64)
        result.stop_reasons[name] = run.stop_reason
        if run.stop_reason in (StopReason.ERROR, StopReason.OUT_OF_MEMORY, StopReason.DIVERGED):
            break
    result.seconds = time.perf_counter() - t0
    return result


# ----- command line ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python3 -m rwgui.core.impedance",
        description="The Deep Image Prior paper's Figure 2 on your photo: fit the denoise preset's network to the "
        "photo, the photo plus noise, the photo's pixels shuffled and pure noise; write the four loss curves "
        "as CSV and print the iteration at which each reaches each threshold.",
    )
    ap.add_argument("photo", help="the photo (any format rwgui reads)")
    ap.add_argument("--csv", required=True, metavar="OUT", help="where to write the curves")
    ap.add_argument(
        "--side", type=int, default=DEFAULT_SIDE, help=f"working size's long side in px (default {DEFAULT_SIDE})"
    )
    ap.add_argument("--sigma", type=float, default=25.0, help="noise of the photo+noise target, in /255 (default 25)")
    ap.add_argument(
        "--iterations", type=int, default=DEFAULT_ITERATIONS, help=f"iterations per fit (default {DEFAULT_ITERATIONS})"
    )
    ap.add_argument("--seed", type=int, default=0, help="draws the targets and the network (default 0)")
    ap.add_argument(
        "--threshold",
        type=float,
        action="append",
        metavar="MSE",
        help="an MSE to report reaching (repeatable; default: sigma^2, and --fraction 0.5 and 0.1)",
    )
    ap.add_argument(
        "--fraction",
        type=float,
        action="append",
        metavar="F",
        help="report reaching an MSE of F times each target's variance (repeatable)",
    )
    ap.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default)")
    ap.add_argument("--quiet", action="store_true", help="no progress line")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Run the four fits, write the CSV, print the summary. Exit 2 on a user error, 1 when a fit failed."""
    from . import imageio
    from .errors import RwguiError

    args = build_parser().parse_args(argv)
    if args.side < 8 or args.iterations < 1 or not 0 <= args.sigma <= 255:
        print("error: --side must be at least 8, --iterations at least 1, --sigma in [0, 255]", file=sys.stderr)
        return 2
    sigma = args.sigma / 255
    given = [Threshold(t) for t in args.threshold or ()] + [Threshold(f, True) for f in args.fraction or ()]
    thresholds = tuple(given) or None
    try:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        photo = working_photo(imageio.read(args.photo).pixels, args.side)
        base = preset("denoise", device=args.device)
    except (RwguiError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    control = RunControl()
    last = [0.0]

    def progress(name: str, iteration: int, loss: float) -> None:
        now = time.monotonic()
        if args.quiet or (now - last[0] < 1.0 and iteration != args.iterations):
            return
        last[0] = now
        print(f"\r{LABELS[name]:>16}: iteration {iteration}/{args.iterations}, MSE {loss:.3g}   ", end="", flush=True)

    try:
        result = fit_curves(
            photo,
            sigma=sigma,
            iterations=args.iterations,
            seed=args.seed,
            config=base,
            thresholds=thresholds,
            control=control,
            on_step=progress,
        )
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except RwguiError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print()
    result.write_csv(args.csv)
    print(result.summary())
    print(f"curves written to {args.csv} ({result.seconds:.0f} s)")
    failed = [n for n, r in result.stop_reasons.items() if r not in (StopReason.BUDGET, StopReason.USER)]
    if failed or len(result.curves) < len(TARGETS):
        print(f"error: the fit of {', '.join(failed) or 'a target'} did not finish", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
