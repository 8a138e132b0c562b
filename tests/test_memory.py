"""The memory estimate is close to what a run really takes, and a run too big for the device is refused."""

import json
import subprocess
import sys

import numpy as np
import pytest

from rwgui.core.config import preset
from rwgui.core.engine import Engine
from rwgui.core.errors import OutOfMemoryError
from rwgui.core.memory import estimate_memory, fitting_size
from rwgui.core.problems import denoise_problem

PROBE = r"""
import json, sys
import numpy as np, torch
from rwgui.core.config import preset
from rwgui.core.engine import Engine
from rwgui.core.memory import estimate_memory
from rwgui.core.problems import denoise_problem
torch.set_num_threads(1)
size, name = int(sys.argv[1]), sys.argv[2]
img = np.random.default_rng(0).random((size, size, 3)).astype(np.float32)
cfg = preset(name, device="cpu")  # resident memory is the CPU's; the suite's pin reaches here too
problem = denoise_problem(img)
base = int(open('/proc/self/statm').read().split()[1]) * 4096
eng = Engine(problem, cfg)
for _ in range(2):
    eng.step()
# this process's own high-water mark: ru_maxrss is not, Linux carries the parent's over exec (a large pytest
# process then reads as this probe's peak)
peak = next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmHWM:'))
est = estimate_memory(cfg, (size, size), 3, eng.autocast_dtype).total_bytes
print(json.dumps({"estimate": est, "measured": peak - base}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for resident memory")
@pytest.mark.parametrize("size, name", [(192, "denoise"), (160, "inpaint")])
def test_estimate_within_30_percent_of_measured_peak(size, name):
    out = subprocess.run([sys.executable, "-c", PROBE, str(size), name], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert 0.7 < r["estimate"] / r["measured"] < 1.3, r


def test_estimate_grows_with_area_and_fitting_size_fits():
    cfg = preset("denoise", device="cpu")
    small = estimate_memory(cfg, (256, 256), 3).activation_bytes
    big = estimate_memory(cfg, (512, 512), 3).activation_bytes
    assert 3.5 < big / small < 4.5
    budget = estimate_memory(cfg, (1024, 1024), 3).total_bytes // 3
    h, w = fitting_size(cfg, (1024, 2048), 3, budget)
    assert estimate_memory(cfg, (h, w), 3).total_bytes <= budget
    assert abs(w / h - 2) < 0.05 and h < 1024


def test_run_too_large_for_the_device_is_refused_with_a_working_size(monkeypatch):
    """The budget is set from this machine's own estimate (a quarter of the photo's area fits), never as a
    fixed number of megabytes: the footprint depends on the CPU (bf16 or not, its kernels' runtime)."""
    import torch

    from rwgui.core.device import precision_dtype
    from rwgui.core.memory import MemoryModel
    from rwgui.core.working_size import HEADROOM

    cfg = preset("denoise", device="cpu")
    model = MemoryModel(cfg, 3, precision_dtype(cfg.speed.precision, torch.device("cpu")), "cpu")
    free = int(model.estimate((300, 400)).total_bytes / HEADROOM)
    monkeypatch.setattr("rwgui.core.memory.available_bytes", lambda device: free)
    img = np.zeros((600, 800, 3), np.float32)
    with pytest.raises(OutOfMemoryError, match=r"downscaled to \d+x\d+ it fits.*--working-size"):
        Engine(denoise_problem(img), cfg)


def test_the_probe_runs_once_per_network_and_leaves_the_random_stream_alone(monkeypatch):
    """The window plans before a run and the engine re-checks in its worker: the second must not pay the
    probe again, and neither may shift the seeded draws that make a run reproducible."""
    import torch

    from rwgui.core import memory

    calls = []
    real = memory._probe
    monkeypatch.setattr(memory, "_probe", lambda *a: calls.append(a) or real(*a))
    # a small network no other test probes
    cfg = preset("denoise", prior_params={"channels_down": (8,), "channels_up": (8,), "channels_skip": (3,)})
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    first = estimate_memory(cfg, (64, 64), 3)
    assert torch.equal(torch.rand(3), expected)
    second = estimate_memory(cfg, (96, 96), 3)
    assert len(calls) == 1
    assert second.total_bytes > first.total_bytes  # same rates, a larger image


def test_the_probe_cache_forgets_the_least_recently_used_network(monkeypatch):
    """One entry per network a session tries, so it must not grow without end: the oldest goes first."""
    from rwgui.core import memory

    calls = []
    real = memory._probe
    monkeypatch.setattr(memory, "_probe", lambda *a: calls.append(a) or real(*a))
    monkeypatch.setattr(memory, "_rates_cache", type(memory._rates_cache)())
    size = memory.RATES_CACHE_SIZE
    nets = [
        preset(
            "denoise", prior_params={"num_scales": 2, "channels_down": (c,), "channels_up": (c,), "channels_skip": (2,)}
        )
        for c in range(2, size + 3)
    ]
    for cfg in (*nets[:size], nets[0], nets[size]):  # using 0 again makes 1 the oldest
        estimate_memory(cfg, (32, 32), 3)
    assert len(calls) == size + 1 and len(memory._rates_cache) == size
    estimate_memory(nets[0], (32, 32), 3)
    assert len(calls) == size + 1  # still held
    estimate_memory(nets[1], (32, 32), 3)
    assert len(calls) == size + 2  # forgotten, probed again


# ----- the plan on CUDA -------------------------------------------------------------------------------------
def _cuda_model(monkeypatch, cfg):
    """The CUDA estimate from the CPU probe's rates (as on a thread that must not ask the device before any
    device measurement): the accounting on top of the rates is the same as with a device measurement."""
    from rwgui.core import memory

    monkeypatch.setattr(memory, "_cuda_rates", lambda *a: None)
    return memory.MemoryModel(cfg, 3, None, "cuda")


def test_cuda_estimate_adds_snapshots_that_grow_with_the_network(monkeypatch):
    """The guard keeps two snapshots on the device (weights, Adam's moments, the running average): the CUDA
    estimate counts them, more for a wider network; the CPU estimate (calibrated on measured runs) is unchanged."""
    from rwgui.core import memory

    size = (256, 256)
    narrow = {"channels_down": (8,), "channels_up": (8,), "channels_skip": (2,), "num_scales": 2}
    wide = {"channels_down": (32,), "channels_up": (32,), "channels_skip": (4,), "num_scales": 2}
    extra = {}
    for name, params in (("narrow", narrow), ("wide", wide)):
        on, off = (preset("denoise", prior_params=params, guard=g, device="cpu") for g in (True, False))
        gained = (
            _cuda_model(monkeypatch, on).estimate(size).total_bytes
            - _cuda_model(monkeypatch, off).estimate(size).total_bytes
        )
        rates = memory._rates(on, 3, None)
        assert gained == memory.GUARD_SNAPSHOTS * (rates.state_bytes + 256 * 256 * 3 * 4)
        assert memory.MemoryModel(on, 3).estimate(size) == memory.MemoryModel(off, 3).estimate(size)
        extra[name] = gained
    assert extra["wide"] > extra["narrow"]


def test_cuda_estimate_adds_the_rule_buffer_that_grows_with_the_es_wmv_window(monkeypatch):
    from rwgui.core import memory

    size = (128, 128)  # 49152 values: fewer than the rule's max_pixels, so the whole iterate is kept
    small, big = (
        preset("denoise", stop="es-wmv", stop_params={"window": w, "patience": 1000}, device="cpu") for w in (10, 100)
    )
    grown = (
        _cuda_model(monkeypatch, big).estimate(size).total_bytes
        - _cuda_model(monkeypatch, small).estimate(size).total_bytes
    )
    assert grown == 90 * 128 * 128 * 3 * 4
    assert memory.MemoryModel(big, 3).estimate(size) == memory.MemoryModel(small, 3).estimate(size)
    assert memory.rule_buffer_bytes(preset("denoise", stop="fixed"), 10**6) == 0
    # above max_pixels the window holds a subset: bounded whatever the size
    assert memory.rule_buffer_bytes(big, 10**8) == memory.wmv_memory_cap(100, 65536)


def test_cuda_estimate_has_cudnn_workspace_headroom_and_no_cpu_runtime(monkeypatch):
    from rwgui.core import memory

    cfg = preset("denoise", guard=False, stop="fixed", device="cpu")
    cpu = memory.MemoryModel(cfg, 3).estimate((64, 64)).total_bytes
    cuda = _cuda_model(monkeypatch, cfg).estimate((64, 64)).total_bytes
    assert cuda - cpu == memory.CUDNN_WORKSPACE_BYTES - memory.CPU_RUNTIME_BYTES


def test_the_device_probe_is_never_run_from_a_thread_that_must_not_ask_cuda(monkeypatch):
    """The window plans on the GUI thread: it reads a device measurement an engine made, or the CPU's rates,
    and never probes the device itself."""
    import torch

    from rwgui.core import device, memory

    probes = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(memory, "_device_probe", lambda *a: probes.append(a))
    monkeypatch.setattr(device, "may_query_device", lambda: False)
    monkeypatch.setattr(memory, "_device_rates", {})
    cfg = preset("denoise", device="cpu")
    model = memory.MemoryModel(cfg, 3, None, "cuda")
    assert probes == [] and model.measured_on == "cpu"
    monkeypatch.setattr(device, "may_query_device", lambda: True)
    measured = memory._Rates(1.0, 100, 32, 32, 10, "cuda")
    monkeypatch.setattr(memory, "_device_probe", lambda *a: probes.append(a) or measured)
    assert memory.MemoryModel(cfg, 3, None, "cuda").measured_on == "cuda" and len(probes) == 1
    monkeypatch.setattr(device, "may_query_device", lambda: False)
    assert memory.MemoryModel(cfg, 3, None, "cuda").measured_on == "cuda" and len(probes) == 1  # the cache


@pytest.mark.cuda
@pytest.mark.parametrize("size", [256, 512])
def test_cuda_estimate_within_30_percent_of_the_device_peak(size):
    """The device probe's estimate against the allocator's peak of two real steps above the start."""
    import torch

    from rwgui.core.memory import MemoryModel

    img = np.random.default_rng(0).random((size, size, 3)).astype(np.float32)
    cfg = preset("denoise", device="cuda")
    torch.cuda.empty_cache()
    start = torch.cuda.memory_allocated()
    eng = Engine(denoise_problem(img), cfg)
    torch.cuda.reset_peak_memory_stats()
    for _ in range(2):
        eng.step()
    eng.flush()
    peak = torch.cuda.max_memory_allocated() - start
    model = MemoryModel(cfg, 3, eng.autocast_dtype, "cuda")
    assert model.measured_on == "cuda"
    # the estimate's cuDNN headroom is a reserve, not a measurement: compare without it
    from rwgui.core.memory import CUDNN_WORKSPACE_BYTES

    est = model.estimate((size, size)).total_bytes - CUDNN_WORKSPACE_BYTES
    assert 0.7 < est / peak < 1.3, (est, peak)


# ----- the precision the run will use -----------------------------------------------------------------------
SMALL_NET = {"channels_down": (8,), "channels_up": (8,), "channels_skip": (2,), "num_scales": 3}


def _bf16_cpu_that_measures(monkeypatch, chosen: str) -> list:
    """A CPU that computes bfloat16 natively (forced: the machine the suite runs on does not matter), with speed
    tuning on and its measurement replaced by one that chooses ``chosen`` precision. Returns the sizes timed."""
    import dataclasses

    from rwgui.core import autotune, device

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(autotune, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setenv("RWGUI_SPEED_TUNING", "on")
    timed = []

    def tune(config, size, dev, *, channels=3):
        timed.append(tuple(size))
        picked = dict(precision=chosen, channels_last="off", fused_optimizer="off", threads=1)
        return autotune.Tuning(dataclasses.replace(config.speed, **picked))

    monkeypatch.setattr(autotune, "tune", tune)
    return timed


def _footprints(cfg, size):
    """(float32, bfloat16) estimates of ``size``: bfloat16 autocast saves half-size activations."""
    import torch

    from rwgui.core.memory import MemoryModel

    f32, bf16 = (MemoryModel(cfg, 3, d).estimate(size).total_bytes for d in (None, torch.bfloat16))
    assert bf16 < f32
    return f32, bf16


def test_the_footprint_is_planned_in_the_precision_autotune_chose_not_the_one_the_cpu_has(monkeypatch):
    """A CPU with bfloat16 whose measurement chose float32 runs in float32: the plan must not promise the
    smaller bfloat16 footprint."""
    import torch

    from rwgui.core import autotune
    from rwgui.core.memory import run_dtype
    from rwgui.core.working_size import plan_working_size

    cpu, size = torch.device("cpu"), (600, 800)
    cfg = preset("denoise", prior_params=SMALL_NET, device="cpu")
    f32, bf16 = _footprints(cfg, size)
    between = (f32 + bf16) // 2
    timed = _bf16_cpu_that_measures(monkeypatch, "float32")
    assert run_dtype(cfg, size, cpu, 3) is None  # nothing measured yet: float32, the larger footprint
    autotune.resolve(cfg, size, cpu)
    assert timed == [size] and run_dtype(cfg, size, cpu, 3) is None  # measured: float32
    plan = plan_working_size(cfg, size, 3, "denoise", budget_bytes=between)
    assert not plan.fits and plan.needed_mb == pytest.approx(f32 / 2**20)

    autotune.forget()
    _bf16_cpu_that_measures(monkeypatch, "bfloat16")
    autotune.resolve(cfg, size, cpu)
    assert run_dtype(cfg, size, cpu, 3) is torch.bfloat16
    assert plan_working_size(cfg, size, 3, "denoise", budget_bytes=between).fits


def test_a_forced_precision_or_the_fixed_rule_needs_no_measurement(monkeypatch):
    import torch

    from rwgui.core import autotune
    from rwgui.core.config import SpeedConfig
    from rwgui.core.memory import run_dtype

    cpu = torch.device("cpu")
    timed = _bf16_cpu_that_measures(monkeypatch, "float32")
    forced = preset("denoise", device="cpu", speed=SpeedConfig(precision="bfloat16", channels_last="off"))
    assert run_dtype(forced, (64, 64), cpu, 3) is torch.bfloat16  # as asked, other settings still unmeasured
    monkeypatch.setenv("RWGUI_SPEED_TUNING", "off")  # "auto" is then the fixed rule: bfloat16 where native
    assert run_dtype(preset("denoise", device="cpu"), (64, 64), cpu, 3) is torch.bfloat16
    monkeypatch.setattr(autotune, "cpu_has_native_bf16", lambda: False)
    assert run_dtype(preset("denoise", device="cpu"), (64, 64), cpu, 3) is None
    assert timed == []


def test_the_engine_refuses_a_run_whose_resolved_float32_does_not_fit(monkeypatch):
    """The engine re-checks memory with the speed settings it resolved: float32 chosen on a bfloat16 CPU, and
    free memory enough for the bfloat16 footprint only."""
    from rwgui.core.working_size import HEADROOM

    size = (600, 800)
    cfg = preset("denoise", prior_params=SMALL_NET, device="cpu")
    f32, bf16 = _footprints(cfg, size)
    _bf16_cpu_that_measures(monkeypatch, "float32")
    monkeypatch.setattr("rwgui.core.memory.available_bytes", lambda device: int((f32 + bf16) / 2 / HEADROOM))
    with pytest.raises(OutOfMemoryError, match="needs about"):
        Engine(denoise_problem(np.zeros((*size, 3), np.float32)), cfg)


# ----- the pre-image's classifier ---------------------------------------------------------------------------
def _preimage(tmp_path, side=96):
    """A pre-image problem through an AlexNet-shaped classifier whose weights and activations are large beside a
    small prior's, saved as a person's weights file would be."""
    import torch

    from rwgui.core.classifiers import alexnet
    from rwgui.core.problems import make_problem

    torch.manual_seed(0)
    path = tmp_path / "w.pth"
    torch.save(alexnet((64, 128, 128, 128, 128), hidden=256, classes=10).state_dict(), path)
    photo = np.random.default_rng(0).random((side, side, 3), dtype=np.float32)
    return make_problem("preimage", photo, task_params={"weights": str(path), "layer": "relu2"})


def test_the_preimage_plan_counts_the_classifier_as_the_estimate_does(tmp_path):
    """The classifier's weights and the activations autograd keeps through it are part of every pre-image step:
    a memory budget that holds the prior alone but not the classifier too is refused, and the plan's figure is
    the one the estimate beside Start shows."""
    import torch

    from rwgui.core import estimate
    from rwgui.core.memory import MemoryModel, operator_memory, run_dtype
    from rwgui.core.working_size import plan_for_problem

    p = _preimage(tmp_path)
    cfg = preset("preimage", prior_params=SMALL_NET, device="cpu", task_params=dict(p.task_params))
    dtype = run_dtype(cfg, p.size, torch.device("cpu"), 3)
    prior_only = MemoryModel(cfg, 3, dtype).estimate(p.size).total_bytes
    classifier = operator_memory(p.operator, 3).bytes_at(p.size)
    weights = sum(t.numel() * t.element_size() for t in p.operator.parameters())
    assert classifier > weights  # its weights, and what it saves for the backward pass
    plan = plan_for_problem(p, cfg, prior_only + classifier // 2)
    assert not plan.fits
    fits = plan_for_problem(p, cfg, prior_only + classifier + 2**20)
    assert fits.fits and fits.needed_mb == pytest.approx((prior_only + classifier) / 2**20)
    told = estimate.estimate_run(p, cfg, timer=lambda *a: 1e-3)
    assert told.memory_mb == pytest.approx(fits.needed_mb)


def test_a_plan_that_may_not_measure_says_so_and_reuses_what_was_measured(tmp_path):
    """The GUI thread plans with ``measure=False``: nothing runs a network there; a plan made before (the
    estimate's, on its helper thread) leaves the counts it needs."""
    from rwgui.core import memory
    from rwgui.core.working_size import plan_for_problem

    p = _preimage(tmp_path)
    # a network and classifier no other test measured
    cfg = preset("preimage", prior_params={**SMALL_NET, "channels_skip": (5,)}, device="cpu")
    with pytest.raises(memory.NotMeasured):  # the prior
        plan_for_problem(p, cfg, 10**12, measure=False)
    measured = plan_for_problem(p, cfg, 10**12)
    assert plan_for_problem(p, cfg, 10**12, measure=False) == measured
    memory._operator_cache.clear()
    with pytest.raises(memory.NotMeasured):  # the classifier
        plan_for_problem(p, cfg, 10**12, measure=False)
    assert plan_for_problem(p, cfg, 10**12) == measured
    assert plan_for_problem(p, cfg, 10**12, measure=False) == measured
