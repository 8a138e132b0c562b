"""The GPU path, checked on the CPU where a CPU can show it: float16's gradient scaling, the bfloat16 choice,
SURE's probe in float32, the guard never keeping a non-finite snapshot, out-of-memory anywhere in a step,
torch.compile's fall-back, and the GUI thread never asking CUDA. Tests marked ``cuda`` need a GPU."""

import math
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rwgui.core import device as device_mod
from rwgui.core import engine as engine_mod
from rwgui.core.config import SpeedConfig
from rwgui.core.engine import GUARD_EVERY, drain
from rwgui.core.errors import OutOfMemoryError
from rwgui.core.vocabulary import StopReason
from tests.test_engine import small_engine

F32 = SpeedConfig(channels_last=False, precision="float32", overlap="off")
CUDA = torch.device("cuda")


# ----- float16: gradient scaling ----------------------------------------------------------------------------
def _float16_engine(monkeypatch, **over):
    """An engine that autocasts to float16 on the CPU (as it would on CUDA): the precision choice is patched,
    the rest is the engine's own."""
    monkeypatch.setattr(engine_mod, "precision_dtype", lambda precision, device: torch.float16)
    return small_engine(size=32, speed=SpeedConfig(channels_last=False, precision="float16", overlap="off"), **over)


def test_float16_scales_the_loss_and_skips_a_step_with_inf_gradients(monkeypatch):
    eng = _float16_engine(monkeypatch, iterations=10)
    assert eng.autocast_dtype is torch.float16 and isinstance(eng._scaler, torch.amp.GradScaler)
    for _ in range(3):
        eng.step()
    weights = {k: v.clone() for k, v in eng.net.state_dict().items()}
    moments = [t.clone() for s in eng.optimizer.state.values() for t in s.values()]
    scale = eng._scaler.get_scale()
    first = next(eng.net.parameters())
    hook = first.register_hook(lambda g: torch.full_like(g, math.inf))
    eng.step()
    hook.remove()
    for k, v in eng.net.state_dict().items():
        if v.is_floating_point() and "running" not in k:  # BatchNorm's statistics move with every forward
            assert torch.equal(v, weights[k]), k  # the step was skipped
    assert all(
        torch.equal(a, b) for a, b in zip(moments, (t for s in eng.optimizer.state.values() for t in s.values()))
    )
    assert eng._scaler.get_scale() < scale  # and the scale shrank
    eng.step()
    assert all(torch.isfinite(p).all() for p in eng.net.parameters())
    assert not torch.equal(first, weights[next(iter(dict(eng.net.named_parameters())))])  # steps again


def test_scaler_only_for_float16():
    assert small_engine(size=32, speed=SpeedConfig(precision="bfloat16"))._scaler is None
    assert small_engine(size=32, speed=F32)._scaler is None


# ----- "auto" precision on CUDA: native bfloat16 only -------------------------------------------------------
@pytest.mark.parametrize("major, expected", [(7, None), (8, torch.bfloat16)])
def test_auto_precision_on_cuda_wants_bfloat16_in_hardware(monkeypatch, major, expected):
    """A V100 or T4 emulates bfloat16 (torch's default check says yes); 'auto' must choose float32 there."""
    monkeypatch.setattr(device_mod, "_facts", {})
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda i: SimpleNamespace(major=major, name="GPU", total_memory=2**34)
    )
    monkeypatch.setattr(
        torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation or major >= 8
    )
    assert device_mod.precision_dtype("auto", CUDA) is expected


# ----- SURE's probe in float32 -------------------------------------------------------------------------------
def test_sure_probe_runs_in_float32_while_the_step_autocasts():
    eng = small_engine(
        size=32,
        iterations=3,
        stop="sure",
        stop_params={},
        input_code="observed",
        speed=SpeedConfig(channels_last=False, precision="bfloat16", overlap="off"),
    )
    seen: list[tuple[bool, torch.dtype]] = []
    in_probe = [False]
    conv = next(m for m in eng.net.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda m, i, o: seen.append((in_probe[0], o.dtype)))
    probe = eng._probe

    def watched(b):
        in_probe[0] = True
        try:
            return probe(b)
        finally:
            in_probe[0] = False

    eng._probe = watched
    eng.step()
    eng.step()
    assert {d for p, d in seen if p} == {torch.float32}
    assert {d for p, d in seen if not p} == {torch.bfloat16}


# ----- the guard never keeps a non-finite snapshot --------------------------------------------------------
def test_a_snapshot_with_nan_weights_never_becomes_the_good_one():
    """The loss of a step is computed before its update: a finite loss can come with weights the update made
    NaN, and the snapshot taken after it must not become the state the guard restores."""
    eng = small_engine(iterations=GUARD_EVERY + 10, speed=F32)
    real = eng.optimizer.step

    def step_then_poison(*a, **k):
        out = real(*a, **k)
        if eng.iteration == GUARD_EVERY - 1:  # the update of the step that takes a snapshot
            with torch.no_grad():
                next(eng.net.parameters()).fill_(math.nan)
        return out

    eng.optimizer.step = step_then_poison
    for _ in range(GUARD_EVERY):
        rep = eng.step()
    assert math.isfinite(rep.loss)
    assert all(torch.isfinite(t).all() for t in eng._good["net"].values() if t.is_floating_point())
    assert eng.step().restored  # the NaN weights' loss is non-finite: back to the last finite snapshot
    assert all(torch.isfinite(p).all() for p in eng.net.parameters())
    reports = [eng.step() for _ in range(3)]
    assert not any(r.restored for r in reports) and all(math.isfinite(r.loss) for r in reports)


def test_nan_loss_never_accepts_its_candidate():
    eng = small_engine(iterations=5, speed=F32)
    eng.step()
    good = eng._good
    eng._candidate = (eng.iteration + 1, {"net": {}, "opt": {}, "ema": None, "ema_decay": 1.0})
    assert eng._guard(eng.iteration + 1, math.nan, math.nan)  # restored, not accepted
    assert eng._good is good and eng._candidate is None


# ----- out of memory anywhere in a step -------------------------------------------------------------------
def _oom(*a, **k):
    raise torch.OutOfMemoryError("CUDA out of memory (simulated)")


POINTS = ["forward", "update", "average", "snapshot", "rule", "sure", "fetch", "settle"]


def _arm(monkeypatch, eng, point):
    if point == "forward":
        eng._forward = _oom
    elif point == "update":
        eng.optimizer.step = _oom
    elif point == "average":
        eng._averaged = _oom
    elif point == "snapshot":
        eng._capture = _oom
    elif point == "rule":
        eng.rule.measure = _oom
    elif point == "sure":
        eng._probe = _oom
    elif point == "fetch":
        monkeypatch.setattr(engine_mod, "_Fetch", _oom)
    elif point == "settle":
        eng._guard = _oom


@pytest.mark.parametrize("point", POINTS)
def test_out_of_memory_anywhere_in_a_step_ends_the_run_with_the_state_kept(monkeypatch, point):
    over = {"stop": "sure", "stop_params": {}, "input_code": "observed"} if point == "sure" else {}
    eng = small_engine(size=32, iterations=50, speed=F32, **over)
    for _ in range(3):
        eng.step()
    before = eng.iteration
    calls = []
    oom_error = eng._oom_error
    monkeypatch.setattr(eng, "_oom_error", lambda: calls.append(sys.exc_info()[0]) or oom_error())
    with monkeypatch.context() as m:
        _arm(m, eng, point)
        result = drain(eng.steps())
    assert result.stop_reason is StopReason.OUT_OF_MEMORY and "does not fit" in result.message
    assert calls == [None]  # the cache is freed after the failed step's frames (and graph) are gone
    # the iteration counts the iterates: it advanced with the iterate, or not at all
    assert eng.iteration == (before if point in ("forward", "update", "average") else before + 1)
    assert eng.image().shape == (32, 32, 3)
    assert all(p.grad is None for p in eng.net.parameters())
    for name in ("_averaged", "_capture", "_probe", "_guard"):  # patched on the instance: the class's again
        eng.__dict__.pop(name, None)
    eng.optimizer.__dict__.pop("step", None)
    eng.rule.__dict__.pop("measure", None)
    if point == "forward":
        eng._forward = eng.net
    reps = [eng.step() for _ in range(2)]  # the run can go on
    assert [r.iteration for r in reps] == [eng.iteration - 1, eng.iteration]


def test_out_of_memory_in_the_frame_copy_is_the_engines_error(monkeypatch):
    eng = small_engine(size=32, iterations=5, speed=F32)
    eng.step()
    monkeypatch.setattr(engine_mod, "FrameFetch", _oom)
    with pytest.raises(OutOfMemoryError, match="does not fit"):
        eng.request_frame()
    monkeypatch.undo()
    assert eng.frame().shape == (32, 32, 4) and eng.step().iteration == 2


# ----- torch.compile --------------------------------------------------------------------------------------
def test_compile_compiles_the_training_step_inside_the_fallback(monkeypatch):
    """A compiler that fails on the first training call (where the backward graph is made), after running
    part of the network, leaves a run equal to an eager one: same losses, same BatchNorm statistics; no
    warm-up under no_grad, and never a CUDA-graph mode."""
    made = []

    class FailsOnFirstTrainingCall:
        def __init__(self, net, **kwargs):
            self.net, self.kwargs, self.grad_calls = net, kwargs, []
            made.append(self)

        def __call__(self, x):
            self.grad_calls.append(torch.is_grad_enabled())
            out = self.net(x)  # moves BatchNorm's running statistics, as a half-run graph may
            if len(self.grad_calls) == 1:
                raise RuntimeError("backend compiler failed (simulated)")
            return out

    monkeypatch.setattr(torch, "compile", FailsOnFirstTrainingCall)
    eager = small_engine(iterations=6, speed=F32)
    compiled = small_engine(
        iterations=6, speed=SpeedConfig(channels_last=False, precision="float32", overlap="off", compile=True)
    )
    (fake,) = made
    assert fake.grad_calls == []  # nothing ran before the first step
    assert fake.kwargs.get("mode") in (None, "default")
    got, ref = [r.loss for r in compiled.run().reports], [r.loss for r in eager.run().reports]
    assert fake.grad_calls == [True]
    assert compiled._forward is compiled.net
    assert got == pytest.approx(ref, rel=1e-6)
    for k, v in eager.net.state_dict().items():
        torch.testing.assert_close(compiled.net.state_dict()[k], v, rtol=1e-5, atol=1e-6)


def test_compile_resets_its_caches_per_engine(monkeypatch):
    resets = []
    monkeypatch.setattr(torch._dynamo, "reset", lambda: resets.append(1))
    monkeypatch.setattr(torch, "compile", lambda net, **k: net)
    for _ in range(2):
        small_engine(size=32, speed=SpeedConfig(channels_last=False, precision="float32", compile=True))
    assert len(resets) == 2


# ----- the GUI thread never asks CUDA ---------------------------------------------------------------------
def _cuda_must_not_be_asked(monkeypatch):
    asked = []

    def refuse(name):
        def call(*a, **k):
            asked.append(name)
            raise AssertionError(f"torch.cuda.{name} called on the GUI thread")

        return call

    for name in (
        "is_bf16_supported",
        "mem_get_info",
        "get_device_properties",
        "get_device_name",
        "current_device",
        "init",
        "memory_reserved",
        "memory_allocated",
        "synchronize",
    ):
        monkeypatch.setattr(torch.cuda, name, refuse(name))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(device_mod, "_facts", {})
    monkeypatch.setattr(device_mod, "_free", {})
    learnt = []
    monkeypatch.setattr(device_mod, "_learn_in_background", learnt.append)
    return asked, learnt


def test_device_facts_on_a_quiet_thread_come_from_the_cache(monkeypatch):
    asked, learnt = _cuda_must_not_be_asked(monkeypatch)
    from rwgui.core.memory import available_bytes

    device_mod.keep_device_queries_off_this_thread()
    text = device_mod.speed_summary(SpeedConfig(), CUDA)
    assert "bfloat16 autocast if the GPU computes it natively" in text
    assert device_mod.precision_dtype("auto", CUDA) is None  # float32's estimate until the facts are known
    assert available_bytes(CUDA) is None and device_mod.describe(CUDA) == "cuda"
    assert asked == [] and learnt  # a helper thread was asked to find out
    device_mod._facts[0] = device_mod.CudaFacts("GPU", True, 2**34)
    assert device_mod.precision_dtype("auto", CUDA) is torch.bfloat16
    assert device_mod.describe(CUDA) == "cuda (GPU)"


def test_the_studio_and_its_speed_summary_never_ask_cuda(qtbot, monkeypatch):
    asked, _ = _cuda_must_not_be_asked(monkeypatch)
    from rwgui.gui.main_window import MainWindow

    win = MainWindow(sample_size=48)
    qtbot.addWidget(win)
    panel = win.settings_panel
    combo = panel.device_combo
    index = combo.findData("cuda")
    assert index >= 0
    combo.setCurrentIndex(index)
    panel._update_speed_note()
    assert "On CUDA" in panel.speed_note.text()
    assert asked == []


def test_engine_leaves_the_callers_problem_where_it_was():
    from rwgui.core.config import preset
    from rwgui.core.engine import Engine
    from rwgui.core.samples import load_sample
    from tests.test_engine import SMALL

    problem = load_sample("inpaint", size=32).problem()
    mask = problem.operator.mask
    eng = Engine(problem, preset("inpaint", prior_params=SMALL, device="cpu"))
    assert eng.operator is not problem.operator  # a copy: moving it to a GPU leaves the caller's alone
    assert problem.operator.mask is mask and problem.operator.mask.device.type == "cpu"


# ----- smaller: fused Adam, backend flags -----------------------------------------------------------------
def test_fused_adam_asks_torch_which_devices_have_the_kernel(monkeypatch):
    import torch.utils._foreach_utils as fu

    monkeypatch.setattr(fu, "_get_fused_kernels_supported_devices", lambda: ["cuda"])
    eng = small_engine(size=32, speed=SpeedConfig(channels_last=False, precision="float32"))
    assert not eng.optimizer.defaults.get("fused")
    assert eng.step().iteration == 1


# ----- no hidden host syncs in the studio's loop -------------------------------------------------------------
_SYNCS = ("cpu", "numpy", "item", "tolist")


def _stream_a_run(qtbot, monkeypatch, iterations=30):
    """A short overlapped run streamed by the studio's worker, keeping an iterate at every step's chance;
    (the reads of tensors to the host the worker made between steps other than through a fetch object, the
    ``Engine.image`` calls, the requested keeps, the kept items in arrival order)."""
    import threading

    from rwgui.core.history import KeepSchedule
    from rwgui.core.samples import load_sample
    from rwgui.gui import worker as worker_mod
    from tests.conftest import tiny_config

    between = threading.local()
    stray, images, requested = [], [], []

    def watch(name):
        real = getattr(torch.Tensor, name)

        def call(self, *a, **k):
            caller = sys._getframe(1).f_locals.get("self")
            if getattr(between, "on", False) and not isinstance(caller, engine_mod._Fetch):
                stray.append((name, sys._getframe(1).f_code.co_name))
            return real(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, call)

    for name in _SYNCS:
        watch(name)
    real_event, real_image, real_keep = (
        worker_mod.RunWorker._on_event,
        engine_mod.Engine.image,
        worker_mod.RunWorker._keep,
    )

    def on_event(self, engine, event):
        between.on = True
        try:
            real_event(self, engine, event)
        finally:
            between.on = False

    def image(self, *a, **k):
        images.append(a)
        return real_image(self, *a, **k)

    def keep(self, engine, kind, iteration):
        requested.append((str(kind), iteration))
        return real_keep(self, engine, kind, iteration)

    monkeypatch.setattr(worker_mod.RunWorker, "_on_event", on_event)
    monkeypatch.setattr(engine_mod.Engine, "image", image)
    monkeypatch.setattr(worker_mod.RunWorker, "_keep", keep)
    cfg = tiny_config(iterations=iterations, speed=SpeedConfig(channels_last=False, overlap="on"))
    ctrl = worker_mod.RunController()
    kept = []
    ctrl.iterate_kept.connect(lambda item: kept.append(item))
    with qtbot.waitSignal(ctrl.run_finished, timeout=60000) as fin:
        ctrl.start(
            load_sample("denoise", size=32).problem(),
            cfg,
            keep=KeepSchedule(per_octave=1000),
            keep_every_s=0.0,
            average_every_s=0.0,
            pick_every_s=0.0,
        )
    assert ctrl.shutdown()
    assert fin.args[0].reason == "budget"
    return stray, images, requested, kept


def test_the_worker_keeps_iterates_through_fetches_never_waiting_between_steps(qtbot, monkeypatch):
    """With the overlap on, nothing the worker does between two steps reads a tensor to the host except
    through a fetch object (pinned memory and an event on CUDA): ``Engine.image`` (a ``.cpu()`` that waits
    for all queued work) is never called, and every iterate it kept still arrives, the end's included."""
    stray, images, requested, kept = _stream_a_run(qtbot, monkeypatch)
    assert stray == [] and images == []
    assert [(str(k.kind), k.iteration) for k in kept] == requested
    assert ("raw", 30) in requested and ("average", 30) in requested
    assert any(kind == "pick" for kind, _ in requested)
    raw = [k for k in kept if k.kind == "raw"]
    assert len(raw) > 5 and raw[-1].iteration == 30
    assert raw[-1].pixels.dtype == np.uint16 and raw[-1].pixels.shape == (32, 32, 3)
    assert raw[-1].thumb.dtype == np.uint8 and raw[-1].thumb.shape[2] == 4
    pick = next(k for k in kept if k.kind == "pick")
    assert pick.average is not None and pick.average.dtype == np.uint16


def test_kept_iterates_still_on_their_way_at_the_end_are_all_settled(qtbot, monkeypatch):
    """A device that never finishes a copy during the run (``ready()`` always False): nothing is sent while
    it runs, and the end still sends every kept iterate, in the order they were kept, then the final ones."""
    monkeypatch.setattr(engine_mod.ImageFetch, "ready", lambda self: False)
    _stray, _images, requested, kept = _stream_a_run(qtbot, monkeypatch, iterations=12)
    assert [(str(k.kind), k.iteration) for k in kept] == requested
    assert len(requested) > 12  # a raw and an average at every step, then the end's
    assert requested[-3:-1] == [("raw", 12), ("average", 12)] and requested[-1][0] == "pick"


def test_request_image_is_what_image_returns_at_the_iterates_own_iteration():
    eng = small_engine(size=32, iterations=6, speed=F32, stop="es-wmv", stop_params={"window": 2, "patience": 1000})
    eng.run()
    assert eng.pick_iteration is not None
    for which in ("raw", "average", "pick", "pick_average"):
        fetch = eng.request_image(which)
        assert np.array_equal(fetch.array(), eng.image(which))
    assert eng.request_image("raw").iteration == 6
    assert eng.request_image("pick").iteration == eng.pick_iteration


def test_mps_never_overlaps_and_the_summary_says_so():
    """On MPS the fetch is a ``.cpu()`` that waits for the newest step too: an overlap would only make the
    reports late. 'auto' and 'on' are both off there, and the Speed summary says why."""
    mps = torch.device("mps")
    assert not device_mod.overlaps("auto", mps) and not device_mod.overlaps("on", mps)
    assert device_mod.overlaps("auto", CUDA) and device_mod.overlaps("on", torch.device("cpu"))
    summary = device_mod.speed_summary(SpeedConfig(overlap="auto"), mps)
    assert "no overlap" in summary and "overlapped steps" not in summary


# ----- on a GPU -------------------------------------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.parametrize("overlap", ["off", "on"])
def test_cuda_run_matches_the_cpu_run_closely(overlap):
    """The same short run on CUDA (float32, TF32 off) and on the CPU: close losses, every report once."""
    cpu = small_engine(size=32, iterations=10, speed=F32).run()
    gpu_engine = small_engine(
        size=32,
        iterations=10,
        device="cuda",
        speed=SpeedConfig(channels_last=False, precision="float32", overlap=overlap),
    )
    gpu = gpu_engine.run()
    assert [r.iteration for r in gpu.reports] == list(range(1, 11))
    assert [r.loss for r in gpu.reports] == pytest.approx([r.loss for r in cpu.reports], rel=1e-2)
    assert not torch.backends.cudnn.allow_tf32 and torch.backends.cudnn.benchmark


@pytest.mark.cuda
def test_cuda_loss_prior_redraw_and_kept_iterates_never_sync():
    """A loss prior's redraw goes up from pinned memory, and a kept iterate comes down to it, both without
    waiting for the device (torch raises under sync debug mode 'error' where an operation would)."""
    eng = small_engine(size=32, iterations=4, device="cuda", loss_prior="conv", loss_prior_params={"redraw_every": 1})
    eng.step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        eng.loss_prior.redraw(7)
        fetch = eng.request_image("raw")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert fetch._host.is_pinned() and fetch.array().shape == (32, 32, 3)


@pytest.mark.cuda
def test_cuda_frame_fetch_is_pinned_and_owned():
    eng = small_engine(size=32, iterations=3, device="cuda")
    eng.step()
    fetch = eng.request_frame()
    rgba = fetch.array()
    assert rgba.shape == (32, 32, 4) and rgba.dtype == np.uint8
    assert fetch._host.is_pinned()


# ----- the benchmark and the GPU check script -------------------------------------------------------------
def test_speed_benchmark_syncs_once_per_block_not_per_step(monkeypatch):
    """A sync around every step would hide the overlap it means to measure: blocks of steps are timed."""
    from rwgui.bench import speed

    syncs = []
    monkeypatch.setattr(speed, "_sync", syncs.append)
    img = load_sample_image(32)
    row = speed.bench("denoise", img, torch.device("cpu"), speed.BLOCK, SpeedConfig(channels_last=False))
    assert row[0] == "denoise" and row[2] > 0 and row[3] > 0
    assert len(syncs) == 2 * 2 * 2  # (warm-up + one timed block) x two sides x before and after


def test_speed_benchmark_counts_each_sides_device_peak_above_its_own_start():
    """Both sides live in one process and the allocator's peak is process-wide: a side's peak is its own
    memory (what its constructor and earlier blocks left) plus its block's rise, never the other's weights."""
    from rwgui.bench.speed import DevicePeaks

    state = {"now": 0, "max": 0}

    def alloc(n):
        state["now"] += n
        state["max"] = max(state["max"], state["now"])

    peaks = DevicePeaks(lambda: state["now"], lambda: state["max"], lambda: state.update(max=state["now"]))
    peaks.build("base", lambda: alloc(100))  # the baseline's weights
    peaks.build("ours", lambda: alloc(300))  # the engine's weights, code, buffers
    for _ in range(2):
        with peaks.block("base"):  # activations come and go; Adam's moments stay (the first block only)
            alloc(50)
            alloc(-50 + (20 if peaks.held["base"] == 100 else 0))
        with peaks.block("ours"):
            alloc(400)
            alloc(-400 + (10 if peaks.held["ours"] == 300 else 0))
    assert peaks.peak == {"base": 170, "ours": 710}  # process-wide the peaks were 450 and 820
    assert peaks.held == {"base": 120, "ours": 310}
    cpu = DevicePeaks.of(torch.device("cpu"))
    cpu.build("base", lambda: None)
    with cpu.block("base"):
        pass
    assert cpu.peak == {"base": 0}


def load_sample_image(size):
    from rwgui.core.samples import load_sample

    return load_sample("denoise", size=size).ground_truth


def test_gpu_check_says_plainly_when_there_is_no_cuda(monkeypatch, capsys):
    from rwgui.bench import gpu_check

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 0
    assert capsys.readouterr().out.strip() == gpu_check.NO_CUDA


@pytest.mark.cuda
def test_gpu_check_runs_quick():
    from rwgui.bench import gpu_check

    assert gpu_check.main(["--quick"]) == 0
