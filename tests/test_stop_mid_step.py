"""A stop asked during a long step is seen between its forward and backward passes, and the abandoned step
leaves no trace: no optimiser update, the iteration not advanced, the noise generator and BatchNorm's running
statistics as they were, so the run's state is the one after the last whole step."""

import copy

import torch

from rwgui.core import engine as engine_mod
from rwgui.core.config import preset
from rwgui.core.engine import Engine, EventKind, RunControl
from rwgui.core.samples import load_sample
from rwgui.core.vocabulary import StopReason

SMALL = {"channels_down": (16,), "channels_up": (16,), "num_scales": 4}


def _engine(**over) -> Engine:
    sample = load_sample("denoise", size=48)
    cfg = preset("denoise", prior_params={**preset("denoise").prior_params, **SMALL}, device="cpu", **over)
    return Engine(sample.problem(), cfg)


def _state(eng: Engine) -> dict:
    return {
        "iteration": eng.iteration,
        "params": [p.detach().clone() for p in eng.net.parameters()],
        "buffers": [b.detach().clone() for b in eng.net.buffers()],
        "optimizer": copy.deepcopy(eng.optimizer.state_dict()),
        "noise": eng._noise_gen.get_state().clone(),
        "out": eng._out.clone(),
        "avg": eng._avg.clone(),
    }


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_a_stop_inside_a_long_step_abandons_it_and_keeps_the_state(monkeypatch):
    monkeypatch.setattr(engine_mod, "MID_STEP_STOP_S", 0.0)  # every step counts as long
    eng = _engine(iterations=50)
    control = RunControl()
    loop = eng.steps(control)
    for _ in range(3):
        assert next(loop).kind is EventKind.STEP
    before = _state(eng)
    forward = eng._generate
    calls = []

    def forward_then_stop(inp):
        calls.append(1)
        out = forward(inp)
        control.stop()  # the person presses Stop while the fourth step's forward pass runs
        return out

    monkeypatch.setattr(eng, "_generate", forward_then_stop)
    try:
        while True:
            next(loop)
    except StopIteration as end:
        result = end.value
    assert calls == [1], "the fourth step's forward ran once; no backward or update followed"
    assert result.stop_reason is StopReason.USER and result.iterations_run == 3
    assert _same(_state(eng), before), "the abandoned step changed the run's state"

    monkeypatch.setattr(eng, "_generate", forward)
    rep = eng.step()  # the engine goes on from the last whole step
    assert eng.iteration == 4 and rep is not None and rep.iteration == 4


def test_a_short_step_is_never_abandoned(monkeypatch):
    """Below MID_STEP_STOP_S the check waits for the step's end: a fast run's stop costs at most one step."""
    monkeypatch.setattr(engine_mod, "MID_STEP_STOP_S", 1e9)
    eng = _engine(iterations=50)
    control = RunControl()
    loop = eng.steps(control)
    next(loop)
    forward = eng._generate

    def forward_then_stop(inp):
        control.stop()
        return forward(inp)

    monkeypatch.setattr(eng, "_generate", forward_then_stop)
    try:
        while True:
            next(loop)
    except StopIteration as end:
        result = end.value
    assert result.stop_reason is StopReason.USER and eng.iteration == 2  # the step in progress finished
