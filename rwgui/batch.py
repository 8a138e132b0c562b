"""Many photos with the same settings: ``rwgui-restore TASK FOLDER_OR_FILES... -o OUT_FOLDER``.

Every photo goes through the one-photo path (:func:`rwgui.cli.restore`) with its own input, mask, ground truth,
output and report; only the bookkeeping is here: which photos, which mask and ground truth belong to each (by
name), which are already done (``--resume``), where they run (the executors), the progress line and the
summary. A bad photo is a failed row of the summary, not the end of the batch.

A photo's work travels as plain data: a *job* is a dict of the command's settings with that photo's paths,
and a worker answers with a *row* (a dict of the summary's columns). So the same :func:`restore_job` runs in
this process, in a pool process pinned to one GPU, or as a Ray task on another machine; the paths in a job must
name files every worker can see. Qt-free, so that the studio's Lab can run a folder through it too.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.atomic import atomic_file
from .core.errors import ConfigError, OutputPathError, RwguiError
from .core.imageio import READ_EXTENSIONS
from .core.paths import check_output_path, check_writable
from .core.vocabulary import JobStatus, Task

if TYPE_CHECKING:
    from .core.config import RunConfig
    from .core.engine import RunControl

EXECUTORS = ("local", "ray")
#: The summary's columns, in order (summary.csv's header; each row of summary.json has these keys). ``psnr`` is
#: the written file's against its ground truth (:func:`_written_psnr`; for inpainting the known pixels kept), the
#: photo's report's ``written.psnr`` up to the file's rounding, not the network's output's ``stop`` PSNRs.
COLUMNS = ("photo", "status", "seconds", "iterations", "stop_iteration", "stop_reason", "psnr", "error", "output")
#: Stop reasons of a run that ended as asked; a report with another one (Ctrl+C, out of memory, divergence, an
#: error) belongs to a photo that ``--resume`` restores again.
FINISHED = ("rule", "budget")
#: Ray retries a task whose worker died (a lost node, a killed process) or raised an unexpected error this many
#: times; a user error (a corrupt photo) is a failed row at once, since it would fail the same way again.
RAY_RETRIES = 2

Row = dict[str, Any]
Job = dict[str, Any]


def add_batch_flags(ap: argparse.ArgumentParser) -> None:
    """The flags only a batch takes, in a group of their own."""
    g = ap.add_argument_group("many photos (several inputs or a folder; -o names the output folder)")
    g.add_argument("--mask-dir", help="inpainting: the masks' folder (photo.png or photo.mask.png for photo.png)")
    g.add_argument("--ground-truth-dir", help="undamaged photos of the same names, for the summary's PSNR")
    g.add_argument("--resume", action="store_true", help="skip photos whose output and report are complete")
    g.add_argument(
        "--executor",
        choices=EXECUTORS,
        help="local (default): one process per CUDA GPU, on a CPU one photo at a time; ray: a Ray task per photo",
    )
    g.add_argument("--ray-address", help="with --executor ray: a running cluster (default: start a local one)")


class Inputs(argparse.Action):
    """The photos argument: one path stays a path (the one-photo command, whose helpers take ``args.input`` as
    one file), several are a list."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option_string: Any = None) -> None:
        setattr(namespace, self.dest, values[0] if len(values) == 1 else list(values))


def inputs(args: argparse.Namespace) -> list[str]:
    return [args.input] if isinstance(args.input, str) else list(args.input)


_BATCH_ONLY = ("mask_dir", "ground_truth_dir", "resume", "executor", "ray_address")


def is_batch(args: argparse.Namespace) -> bool:
    """Several inputs or a folder; the batch-only flags with a single photo are a wrong command."""
    batch = len(inputs(args)) > 1 or Path(inputs(args)[0]).is_dir()
    if not batch:
        given = [name for name in _BATCH_ONLY if getattr(args, name)]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise ConfigError(f"{flag} is for a batch (several photos or a folder); one photo was given")
    return batch


# ----- which photos, and what belongs to each ------------------------------------------------------------------
def _is_photo_name(p: Path) -> bool:
    return p.suffix.lower().lstrip(".") in READ_EXTENSIONS and not p.stem.lower().endswith(".mask")


def collect_photos(inputs: Iterable[str]) -> list[Path]:
    """The photos of the inputs, in the order given: a file as it is (a file that is not a photo fails as its
    own row), a folder's photos by name (not its subfolders, masks or other files). A missing input is a
    wrong command."""
    photos: list[Path] = []
    for given in inputs:
        p = Path(given)
        if p.is_dir():
            photos += sorted(c for c in p.iterdir() if c.is_file() and _is_photo_name(c))
        elif p.is_file():
            photos.append(p)
        else:
            raise ConfigError(f"'{given}' is neither a photo nor a folder")
    if not photos:
        raise ConfigError(f"no photos ({', '.join(READ_EXTENSIONS)}) in {', '.join(map(str, inputs))}")
    return photos


def _by_name(folder: Path, photo: Path, suffixes: tuple[str, ...]) -> Path | None:
    """The first file in ``folder`` named after ``photo``: its stem plus one of ``suffixes`` ("" = the same
    stem), with any photo extension."""
    for suffix in suffixes:
        for ext in (photo.suffix.lstrip("."), *READ_EXTENSIONS):
            for candidate in (folder / f"{photo.stem}{suffix}.{ext}", folder / f"{photo.stem}{suffix}.{ext.upper()}"):
                if candidate.is_file() and candidate != photo:
                    return candidate
    return None


def find_mask(photo: Path, mask_dir: str | None) -> Path | None:
    """``photo.mask.png`` beside the photo, or in ``--mask-dir`` ``photo.mask.png`` or ``photo.png``."""
    if mask_dir:
        return _by_name(Path(mask_dir), photo, (".mask", ""))
    return _by_name(photo.parent, photo, (".mask",))


def plan_jobs(args: argparse.Namespace, photos: list[Path], out_dir: Path) -> tuple[list[Job], list[Row]]:
    """A job per photo (its settings and paths, plain data), and a failed row for each photo that cannot start
    (inpainting without a mask). Two photos that would write the same output are a wrong command."""
    jobs: list[Job] = []
    unstartable: list[Row] = []
    outputs: dict[str, Path] = {}
    for photo in photos:
        if photo.stem in outputs:
            raise OutputPathError(f"'{photo}' and '{outputs[photo.stem]}' would both write {photo.stem}.png")
        outputs[photo.stem] = photo
        out = out_dir / f"{photo.stem}.png"
        check_output_path(out, photo, overwrite=False)
        mask = find_mask(photo, args.mask_dir) if args.task == Task.INPAINT else None
        gt = _by_name(Path(args.ground_truth_dir), photo, ("",)) if args.ground_truth_dir else None
        if args.task == Task.INPAINT and mask is None:
            where = f"in '{args.mask_dir}'" if args.mask_dir else "beside it (or give --mask-dir)"
            unstartable.append(_row(str(photo), JobStatus.FAILED, error=f"no mask for '{photo.name}': none {where}"))
            continue
        settings = {k: v for k, v in vars(args).items() if k not in _BATCH_ONLY}
        settings.update(
            input=str(photo),
            output=str(out),
            report=str(out_dir / f"{photo.stem}.report.json"),
            mask=None if mask is None else str(mask),
            ground_truth=None if gt is None else str(gt),
            save_config=None,
        )
        jobs.append({"photo": str(photo), "args": settings})
    return jobs, unstartable


# ----- one photo (any executor) ---------------------------------------------------------------------------------
def _row(photo: str, status: JobStatus, **values: Any) -> Row:
    return {c: values.get(c) for c in COLUMNS} | {"photo": photo, "status": status}


def _written_psnr(output: str, ground_truth: str | None) -> float | None:
    """PSNR of the written file against the ground truth (None without one, or when the sizes differ: a
    downscaled result); from the file, so that a resumed photo reports what a fresh one does."""
    if ground_truth is None:
        return None
    from .core import imageio
    from .core.metrics import psnr

    out, gt = imageio.read(output).pixels, imageio.read(ground_truth).pixels
    return round(psnr(out, gt), 4) if out.shape == gt.shape else None


def restore_job(job: Job, control: RunControl | None = None) -> Row:
    """Restore one photo of a batch and answer with its summary row (plain data). A user error (an unreadable
    photo, a mask of the wrong size, out of memory) is a failed row; anything else propagates, so that Ray can
    retry the task and the local executors can report it. ``control`` (in this process only) stops the run."""
    from . import cli

    args = argparse.Namespace(**job["args"])
    t0 = time.perf_counter()
    try:
        outcome = cli.restore(args, args.output, control)
        code = cli._fail(outcome.result)
    except RwguiError as exc:
        return _row(job["photo"], JobStatus.FAILED, seconds=round(time.perf_counter() - t0, 3), error=str(exc))
    return _row(
        job["photo"],
        JobStatus.STOPPED if code else JobStatus.DONE,
        seconds=round(time.perf_counter() - t0, 3),
        iterations=outcome.iterations,
        stop_iteration=outcome.stop_iteration,
        stop_reason=outcome.stop_reason,
        psnr=_written_psnr(outcome.output, args.ground_truth) if outcome.written else None,
        output=Path(outcome.output).name if outcome.written else None,
    )


def finished_row(job: Job) -> Row | None:
    """The row of a photo an earlier run finished (output and report present, the report's run ended as asked),
    else None. Both files are written atomically, so a present file is a complete one."""
    args = job["args"]
    out, report = Path(args["output"]), Path(args["report"])
    if not (out.is_file() and report.is_file()):
        return None
    try:
        rep = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if rep.get("stop_reason") not in FINISHED:
        return None
    return _row(
        job["photo"],
        JobStatus.SKIPPED,
        iterations=rep.get("iterations_run"),
        stop_iteration=rep.get("stop", {}).get("iteration"),
        stop_reason=rep["stop_reason"],
        psnr=_written_psnr(str(out), args["ground_truth"]),
        output=out.name,
    )


def _crashed(job: Job, exc: BaseException) -> Row:
    first = (str(exc).strip().splitlines() or [""])[0]
    return _row(job["photo"], JobStatus.FAILED, error=f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


# ----- executors: each runs the jobs and hands every row to ``done`` as it arrives -------------------------------
Done = Callable[[Row], None]


def run_inline(
    jobs: list[Job], done: Done, started: Callable[[Job], None] | None = None, control: RunControl | None = None
) -> None:
    """One photo at a time in this process (a CPU, or one GPU): its own progress line shows, and Ctrl+C stops
    the photo after its step (the result so far is written) and then the batch. ``control``, from another
    thread (the studio), stops likewise: the running photo after its step, and no photo starts after it."""
    for job in jobs:
        if control is not None and control.stop_requested:
            raise KeyboardInterrupt
        if started is not None:
            started(job)
        try:
            row = restore_job(job, control)
        except Exception as exc:
            row = _crashed(job, exc)
        done(row)
        if row["status"] == JobStatus.STOPPED:
            raise KeyboardInterrupt


def _pin_to_gpu(slots: Any) -> None:
    """A pool process's start: take a GPU index and see only that GPU (before anything starts CUDA here)."""
    index = slots.get()
    if index is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(index)


def run_pool(jobs: list[Job], gpus: list[int | None], done: Done) -> None:
    """A process per entry of ``gpus``, each pinned to that GPU (None: not pinned), each restoring one photo at
    a time. Processes are spawned, not forked: a fork of a process that started CUDA cannot use it."""
    import concurrent.futures as cf
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    slots = ctx.Queue()
    for g in gpus:
        slots.put(g)
    with cf.ProcessPoolExecutor(len(gpus), mp_context=ctx, initializer=_pin_to_gpu, initargs=(slots,)) as pool:
        futures = {pool.submit(restore_job, job): job for job in jobs}
        try:
            for fut in cf.as_completed(futures):
                try:
                    done(fut.result())
                except Exception as exc:
                    done(_crashed(futures[fut], exc))
        except KeyboardInterrupt:
            for fut in futures:
                fut.cancel()
            raise


def wants_gpu(device: str) -> bool:
    """Whether a run with this device setting uses CUDA where there is one ('auto' follows RWGUI_AUTO_DEVICE)."""
    if device == "auto":
        return os.environ.get("RWGUI_AUTO_DEVICE", "cuda") in ("", "cuda")
    return device == "cuda"


def local_gpus(device: str) -> list[int | None]:
    """The local executor's processes: one per CUDA GPU when the run uses CUDA and there are several, else none
    (one photo at a time in this process: on a CPU a second run would only share the same cores)."""
    if not wants_gpu(device):
        return []
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return list(range(n)) if n > 1 else []


def _ray() -> Any:
    """The ray module, or the command's error where it is not installed."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'rwgui[cluster]'") from None
    return ray


def run_ray(jobs: list[Job], done: Done, address: str | None, device: str) -> None:
    """A Ray task per photo, placed by Ray: one GPU each where the cluster has GPUs (and the run uses them),
    else one CPU each; Ray retries a task whose worker died. ``address``: a running cluster, else a local one
    started here and shut down after the batch."""
    ray = _ray()
    started_here = not ray.is_initialized()
    if started_here:
        env = {k: os.environ[k] for k in ("RWGUI_AUTO_DEVICE",) if k in os.environ}
        try:
            if address:
                ray.init(address=address, runtime_env={"env_vars": env} if env else None)
            else:
                ray.init(include_dashboard=False, runtime_env={"env_vars": env} if env else None)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"cannot start or reach the Ray cluster ({address or 'local'}): {exc}") from None
    try:
        gpu = wants_gpu(device) and ray.cluster_resources().get("GPU", 0) > 0
        task = ray.remote(max_retries=RAY_RETRIES, retry_exceptions=True)(restore_job)
        task = task.options(num_gpus=1) if gpu else task.options(num_cpus=1)
        refs = {task.remote(job): job for job in jobs}
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                try:
                    row = ray.get(ready[0])
                except ray.exceptions.RayError as exc:
                    row = _crashed(refs[ready[0]], getattr(exc, "cause", None) or exc)
                done(row)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref)
            raise
    finally:
        if started_here:
            ray.shutdown()


# ----- the studio's Lab on a folder: every queued variant over the same photos --------------------------------
def variant_jobs(
    variants: list[tuple[str, RunConfig]], folder: str, out_dir: Path, ground_truth_dir: str | None = None
) -> tuple[list[Job], list[Row]]:
    """The batch's jobs for each variant (label, settings) over the photos of ``folder``, planned by the same
    command line a person would type (``TASK FOLDER -o OUT --config SETTINGS``), each variant writing into its
    own subfolder of ``out_dir``; jobs and unstartable rows carry their variant's label under ``variant``."""
    from .cli import build_parser

    jobs: list[Job] = []
    failed: list[Row] = []
    for i, (label, cfg) in enumerate(variants):
        vdir = out_dir / f"variant-{i + 1}"
        vdir.mkdir(parents=True, exist_ok=True)
        cfg.save(vdir / "settings.json")
        argv = [str(cfg.task), folder, "-o", str(vdir), "--config", str(vdir / "settings.json"), "--quiet"]
        argv += ["--factor", str(cfg.factor)] if cfg.task == Task.SR else []
        argv += ["--ground-truth-dir", ground_truth_dir] if ground_truth_dir else []
        args = build_parser().parse_args(argv)
        photos = collect_photos(inputs(args))
        some, unstartable = plan_jobs(args, photos, vdir)
        jobs += [job | {"variant": label} for job in some]
        failed += [row | {"variant": label} for row in unstartable]
    return jobs, failed


def run_variants(
    jobs: list[Job], done: Done, control: RunControl | None = None, started: Callable[[Job], None] | None = None
) -> None:
    """:func:`variant_jobs`' jobs through the inline executor, one photo at a time (``started`` hears of each
    as it starts); each row handed to ``done`` carries its job's variant. A stop (``control``) ends it with
    KeyboardInterrupt, as Ctrl+C ends a batch."""
    current: dict[str, Job] = {}

    def starting(job: Job) -> None:
        current["job"] = job
        if started is not None:
            started(job)

    run_inline(jobs, lambda row: done(row | {"variant": current["job"]["variant"]}), starting, control)


def summarise_variants(rows: Iterable[Row]) -> list[dict[str, Any]]:
    """Per variant (in the order first seen): how many photos, how many restored, failed or stopped, and over
    the restored photos the PSNR's mean, standard deviation (over photos, n - 1; None for one photo), min and
    max (None without ground truths), the mean seconds and the mean stop iteration. Plain data, Qt-free."""
    import statistics

    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(str(row.get("variant")), []).append(row)

    def mean(values: list[float]) -> float | None:
        return statistics.fmean(values) if values else None

    out = []
    for variant, rs in groups.items():
        ok = [r for r in rs if r["status"] in (JobStatus.DONE, JobStatus.SKIPPED)]
        psnrs = [float(r["psnr"]) for r in ok if r.get("psnr") is not None]
        out.append(
            {
                "variant": variant,
                "photos": len(rs),
                "n": len(ok),
                "failed": sum(r["status"] == JobStatus.FAILED for r in rs),
                "stopped": sum(r["status"] == JobStatus.STOPPED for r in rs),
                "psnr_n": len(psnrs),
                "psnr_mean": mean(psnrs),
                "psnr_std": statistics.stdev(psnrs) if len(psnrs) > 1 else None,
                "psnr_min": min(psnrs) if psnrs else None,
                "psnr_max": max(psnrs) if psnrs else None,
                "seconds_mean": mean([float(r["seconds"]) for r in ok if r.get("seconds") is not None]),
                "stop_iteration_mean": mean(
                    [float(r["stop_iteration"]) for r in ok if r.get("stop_iteration") is not None]
                ),
            }
        )
    return out


# ----- progress and summary --------------------------------------------------------------------------------------
def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{s:02d}s"


class BatchProgress:
    """The batch's line on stderr (photo k of n, done, failed, skipped, ETA from the photos run so far), printed
    as each photo starts (one at a time) or finishes (in parallel); the photo's own progress line follows it."""

    def __init__(self, total: int, skipped: int, parallel: int, enabled: bool) -> None:
        self.total, self.parallel, self.enabled = total, max(1, parallel), enabled
        self.counts = {"done": 0, "failed": 0, "skipped": skipped, "stopped": 0}
        self.seconds: list[float] = []

    def _line(self, head: str) -> None:
        if not self.enabled:
            return
        c = self.counts
        left = self.total - sum(c.values())
        eta = ""
        if self.seconds and left:
            eta = f" · eta {_clock(sum(self.seconds) / len(self.seconds) * left / self.parallel)}"
        tail = f"{c['done']} done · {c['failed']} failed" + (f" · {c['skipped']} skipped" if c["skipped"] else "")
        print(f"[batch] {head} · {tail}{eta}", file=sys.stderr, flush=True)

    def started(self, job: Job) -> None:
        k = sum(self.counts.values()) + 1
        self._line(f"photo {k} of {self.total}: {Path(job['photo']).name}")

    def finished(self, row: Row) -> None:
        self.counts[row["status"]] = self.counts.get(row["status"], 0) + 1
        if row["status"] == JobStatus.DONE:
            self.seconds.append(row["seconds"])
        k = sum(self.counts.values())
        what = row["status"] + (f" ({row['error']})" if row["error"] else "")
        self._line(f"{k} of {self.total} finished: {Path(row['photo']).name} {what}")


def write_summary(out_dir: Path, rows: list[Row], task: str, executor: str) -> None:
    """summary.csv and summary.json in the output folder, each written whole and then renamed into place."""
    from .cli import _write_json

    counts = {str(s): sum(r["status"] == s for r in rows) for s in JobStatus}
    _write_json(str(out_dir / "summary.json"), {"task": task, "executor": executor, "counts": counts, "photos": rows})
    with atomic_file(out_dir / "summary.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)


def _out_folder(output: str | None) -> Path:
    """-o as the batch's folder: given, not a file, its parent existing (the folder itself is created)."""
    if not output:
        raise OutputPathError("a batch needs -o OUT_FOLDER, the folder for the results, reports and summary")
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"-o '{out}' is a file; a batch writes into a folder")
    if not out.parent.is_dir():
        raise OutputPathError(f"cannot create the output folder '{out}': '{out.parent}' does not exist")
    return out


def run_batch(args: argparse.Namespace) -> int:
    """The batch: every check of the command first (inputs, output folder, settings: exit 2), then the photos;
    returns 0 when every photo succeeded (or was already done), 1 when some failed; Ctrl+C writes the summary so
    far and ends the batch (130)."""
    from .cli import EXIT_INTERRUPTED, make_config

    for flag, value in (("--mask", args.mask), ("--ground-truth", args.ground_truth), ("--report", args.report)):
        if value:
            other = {"--mask": "--mask-dir or photo.mask.png", "--ground-truth": "--ground-truth-dir"}.get(flag)
            instead = f"; use {other}" if other else " (a report per photo is written to the output folder)"
            raise ConfigError(f"{flag} is for one photo{instead}")
    if args.save_config:
        raise ConfigError("--save-config is for one photo; each photo's report holds its settings")
    if args.executor != "ray" and args.ray_address:
        raise ConfigError("--ray-address is for --executor ray")
    if args.executor == "ray":
        _ray()
    out_dir = _out_folder(args.output)
    device = make_config(args, None).device  # a wrong setting is the command's error, not every photo's
    photos = collect_photos(inputs(args))
    out_dir.mkdir(exist_ok=True)
    check_writable(out_dir / "summary.json", "the summary")
    jobs, rows_failed = plan_jobs(args, photos, out_dir)
    executor = args.executor or "local"

    rows: dict[str, Row] = {str(p): _row(str(p), JobStatus.NOT_RUN) for p in photos}
    for row in rows_failed:
        rows[row["photo"]] = row
    todo = []
    for job in jobs:
        finished = finished_row(job) if args.resume else None
        if finished is None:
            todo.append(job)
        else:
            rows[job["photo"]] = finished
    gpus = local_gpus(device) if executor == "local" else []
    parallel = len(gpus) if gpus else 1
    progress = BatchProgress(len(photos), len(photos) - len(todo) - len(rows_failed), parallel, not args.quiet)
    for row in rows_failed:
        progress.finished(row)
    if executor == "ray" or gpus:
        for job in todo:  # photos running side by side: only the batch line, no interleaved photo lines
            job["args"]["quiet"] = True

    def done(row: Row) -> None:
        rows[row["photo"]] = row
        progress.finished(row)
        write_summary(out_dir, list(rows.values()), args.task, executor)

    interrupted = False
    try:
        if executor == "ray":
            run_ray(todo, done, args.ray_address, device)
        elif gpus:
            run_pool(todo, gpus, done)
        else:
            run_inline(todo, done, progress.started)
    except KeyboardInterrupt:
        interrupted = True
    write_summary(out_dir, list(rows.values()), args.task, executor)
    failed = sum(r["status"] == JobStatus.FAILED for r in rows.values())
    if not args.quiet:
        print(
            f"rwgui-restore: {len(photos)} photos, {progress.counts['done']} restored, {failed} failed, "
            f"{progress.counts['skipped']} skipped; summary in {out_dir / 'summary.csv'}",
            file=sys.stderr,
        )
    if interrupted:
        return EXIT_INTERRUPTED
    return 1 if failed else 0
