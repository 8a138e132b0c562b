"""The optimisation loop: it restores, it is repeatable, it stops when asked, it survives trouble."""

import threading
import time

import numpy as np
import pytest
import torch

from rwgui.core.config import RunConfig, SpeedConfig, preset
from rwgui.core.engine import Engine, EventKind, RunControl, drain
from rwgui.core.errors import ConfigError, OutOfMemoryError
from rwgui.core.samples import load_sample
from rwgui.core.vocabulary import Iterate, StopReason

SMALL = {"channels_down": (16,), "channels_up": (16,), "num_scales": 4}


def small_engine(task="denoise", size=48, **over):
    """On the CPU unless a test names a device: the assertions on step reports assume no overlap."""
    sample = load_sample(task, size=size)
    name = {"denoise": "denoise", "sr": "sr-x4", "inpaint": "inpaint"}[task]
    over.setdefault("device", "cpu")
    cfg = preset(name, prior_params={**preset(name).prior_params, **SMALL}, **over)
    return Engine(sample.problem(), cfg)


def test_short_run_improves_psnr():
    eng = small_engine(iterations=150)
    res = eng.run()
    first, last = res.reports[0], res.reports[-1]
    assert res.iterations_run == 150 and res.stop_reason == "budget"
    assert last.psnr > first.psnr + 5
    assert last.psnr_average > first.psnr_average + 5
    assert last.loss < first.loss / 3


def test_same_seed_same_run_different_seed_differs():
    a = small_engine(iterations=5, seed=3).run().reports
    b = small_engine(iterations=5, seed=3).run().reports
    c = small_engine(iterations=5, seed=4).run().reports
    assert [r.loss for r in a] == [r.loss for r in b]
    assert [r.loss for r in a] != [r.loss for r in c]
    assert a[0].seed == 3


def test_stop_from_another_thread_stops_promptly():
    eng = small_engine(iterations=100000)
    control = RunControl()
    threading.Timer(0.5, control.stop).start()
    t0 = time.perf_counter()
    res = eng.run(control=control)
    assert res.stop_reason == "user"
    assert time.perf_counter() - t0 < 5
    assert 0 < res.iterations_run < 100000


def test_reports_carry_psnr_only_with_ground_truth():
    sample = load_sample("denoise", size=32)
    from rwgui.core.problems import denoise_problem

    eng = Engine(denoise_problem(sample.observed), preset("denoise", prior_params=SMALL, iterations=2, device="cpu"))
    rep = eng.step()
    assert rep.psnr is None and rep.psnr_average is None and rep.loss > 0


def run_then_wreck(eng, steps: int = 60) -> dict:
    """Run ``steps``, then wreck the weights so that the next loss jumps; returns the guard's snapshot."""
    for _ in range(steps):
        eng.step()
    good = eng._good
    assert good is not None
    with torch.no_grad():
        for p in eng.net.parameters():
            p.add_(torch.randn_like(p) * 5)
    return good


def test_divergence_guard_restores_weights_and_optimizer_state():
    eng = small_engine(iterations=100)
    good = run_then_wreck(eng)
    rep = eng.step()
    assert rep.restored
    for k, v in eng.net.state_dict().items():
        assert torch.equal(v, good["net"][k]), k
    opt_state = eng.optimizer.state_dict()["state"]
    for idx, st in good["opt"]["state"].items():
        assert torch.equal(opt_state[idx]["exp_avg"], st["exp_avg"])
        assert int(opt_state[idx]["step"]) == int(st["step"])
    assert not eng.step().restored


def test_the_guards_snapshot_survives_the_steps_after_a_restore():
    """Restoring must not hand the snapshot's own tensors to Adam: the steps after it would change the
    snapshot, and a second divergence would then restore something that was never good."""
    eng = small_engine(iterations=100)
    good = run_then_wreck(eng)
    kept = {idx: {k: v.clone() for k, v in st.items()} for idx, st in good["opt"]["state"].items()}
    assert eng.step().restored
    for _ in range(5):
        eng.step()
    assert eng._good is good
    for idx, st in good["opt"]["state"].items():
        for k, v in st.items():
            assert torch.equal(v, kept[idx][k]), (idx, k)


def test_the_guard_takes_snapshots_into_the_memory_of_the_old_ones():
    """Every GUARD_EVERY steps: two snapshots' worth of memory in turn, no deep copy each time."""
    from rwgui.core.engine import GUARD_EVERY

    eng = small_engine(iterations=3 * GUARD_EVERY)

    def where():
        return {k: v.data_ptr() for k, v in eng._good["net"].items()}

    eng.step()
    first = where()
    for _ in range(GUARD_EVERY):
        eng.step()
    assert eng._good is not None and where() != first  # a second snapshot, its own memory
    for _ in range(GUARD_EVERY):
        eng.step()
    assert where() == first  # the third one reuses the first one's tensors


def test_out_of_memory_is_reported_and_state_kept(monkeypatch):
    eng = small_engine(iterations=10)
    for _ in range(3):
        eng.step()
    before = {k: v.clone() for k, v in eng.net.state_dict().items()}
    img = eng.image("average")

    def boom(x):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(eng, "_forward", boom)
    with pytest.raises(OutOfMemoryError, match="working size"):
        eng.step()
    assert eng.iteration == 3
    np.testing.assert_array_equal(eng.image("average"), img)
    for k, v in eng.net.state_dict().items():
        assert torch.equal(v, before[k])
    monkeypatch.undo()
    assert eng.step().iteration == 4  # the run can go on


@pytest.mark.parametrize(
    "speed",
    [
        SpeedConfig(channels_last=False, precision="float32"),
        SpeedConfig(channels_last=True, precision="float32", fused_optimizer=False),
        SpeedConfig(channels_last=False, precision="bfloat16", fused_optimizer=False),
        SpeedConfig(channels_last=True, precision="auto"),
    ],
)
def test_speed_settings_keep_the_loss_trajectory(speed):
    off = SpeedConfig(channels_last=False, precision="float32", fused_optimizer=False)
    ref = [r.loss for r in small_engine(iterations=25, speed=off).run().reports]
    got = [r.loss for r in small_engine(iterations=25, speed=speed).run().reports]
    # step 1 sees the same weights: equal up to the arithmetic's precision
    assert got[0] == pytest.approx(ref[0], rel=1e-4 if speed.precision == "float32" else 2e-2)
    # later steps drift apart chaotically (Adam amplifies rounding), but the descent is the same
    assert np.mean(got[-5:]) == pytest.approx(np.mean(ref[-5:]), rel=0.2)
    assert got[-1] < got[0] / 2


def test_stopping_rule_pick_is_kept_after_the_run_moves_on():
    eng = small_engine(iterations=60, stop="es-wmv", stop_params={"window": 5, "patience": 10000})
    res = eng.run()
    pick = res.pick_iteration
    assert pick is not None and 5 <= pick <= 60
    picked = eng.image("pick")
    assert picked.shape == eng.image().shape
    assert eng.result_image().shape == picked.shape


def test_picked_iterate_is_the_image_seen_at_the_pick():
    """The pick and the average at the pick are the images of that step, untouched by later steps."""
    eng = small_engine(iterations=40, stop="es-wmv", stop_params={"window": 4, "patience": 10000})
    seen = {}
    for _ in range(40):
        rep = eng.step()
        if rep.pick_iteration == rep.iteration:
            seen = {"it": rep.iteration, "raw": eng.image("raw"), "avg": eng.image("average")}
    assert seen["it"] == eng.pick_iteration < eng.iteration  # the run moved on after the pick
    np.testing.assert_array_equal(eng.image("pick"), seen["raw"])
    np.testing.assert_array_equal(eng.image("pick_average"), seen["avg"])


def test_auto_stop_obeys_the_rule():
    eng = small_engine(iterations=400, stop="es-wmv", stop_params={"window": 3, "patience": 5})
    res = eng.run()
    assert res.stop_reason == "rule" and res.iterations_run < 400
    eng2 = small_engine(iterations=40, stop="es-wmv", stop_params={"window": 3, "patience": 5}, auto_stop=False)
    assert eng2.run().stop_reason == "budget"


def test_loss_prior_and_tv_terms_are_reported():
    eng = small_engine(iterations=3, loss_prior="cdc", loss_prior_params={"weight": 0.1}, tv_weight=0.01)
    rep = eng.step()
    assert set(rep.loss_terms) == {"data", "prior", "tv"}
    assert rep.loss == pytest.approx(sum(rep.loss_terms.values()), rel=1e-5)


@pytest.mark.parametrize("task", ["sr", "inpaint"])
def test_other_tasks_improve(task):
    eng = small_engine(task, size=64, iterations=120)
    res = eng.run()
    assert res.reports[-1].psnr > res.reports[0].psnr + 3


def test_sure_runs_with_observed_input():
    eng = small_engine(iterations=5, stop="sure", input_code="observed")
    reps = eng.run().reports
    assert reps[-1].signal is not None


def test_config_json_round_trip(tmp_path):
    cfg = preset("inpaint", stop="es-wmv", loss_prior="inn", seed=7, device="cpu")
    path = tmp_path / "run.json"
    cfg.save(path)
    back = RunConfig.load(path)
    assert back == cfg
    assert back.prior_params["channels_skip"] == (128,)


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="lr"):
        preset("denoise", lr=-1)
    with pytest.raises(ConfigError, match="unknown stopping rule"):
        preset("denoise", stop="never")
    with pytest.raises(ConfigError, match="unknown settings"):
        RunConfig.from_dict({"task": "denoise", "colour": "blue"})
    with pytest.raises(ConfigError, match="JSON"):
        RunConfig.from_json("{not json")


# ----- the one loop: Engine.steps() and the reasons it ends ---------------------------------------------------
def events_of(eng, control=None, budget=None):
    """(every event, the RunResult) of one drained loop."""
    events = []
    result = drain(eng.steps(control, budget), events.append)
    return events, result


@pytest.mark.parametrize("overlap", ["off", "on"])
def test_the_loop_runs_the_budget_and_hands_every_report_over_once(overlap):
    eng = small_engine(iterations=6, speed=SpeedConfig(overlap=overlap))
    events, res = events_of(eng)
    assert res.stop_reason == StopReason.BUDGET and res.iterations_run == 6 == eng.iteration
    assert [e.iteration for e in events if e.kind is EventKind.STEP] == [1, 2, 3, 4, 5, 6]
    arrived = [e.report for e in events if e.report is not None]
    assert [r.iteration for r in arrived] == [1, 2, 3, 4, 5, 6] and arrived == res.reports
    # with overlap a step's numbers arrive with the next event; the end settles the last one
    assert (events[-1].kind is EventKind.SETTLED) == (overlap == "on")
    assert res.step_seconds <= res.seconds


def test_the_rule_ends_the_loop_only_with_auto_stop():
    stop = {"stop": "es-wmv", "stop_params": {"window": 3, "patience": 5}}
    events, res = events_of(small_engine(iterations=400, **stop))
    assert res.stop_reason == StopReason.RULE and res.iterations_run < 400
    last = res.reports[-1]
    assert last.iteration - last.pick_iteration >= 5  # patience ran out
    _, res = events_of(small_engine(iterations=400, auto_stop=False, **stop), budget=40)
    assert res.stop_reason == StopReason.BUDGET and res.iterations_run == 40


def test_a_stop_asked_during_a_step_ends_the_loop_after_that_step():
    eng = small_engine(iterations=1000)
    control = RunControl()
    real_step = eng.step

    def step_that_is_stopped_midway():
        if eng.iteration == 4:
            control.stop()  # as the window's Stop would, while the step runs
        return real_step()

    eng.step = step_that_is_stopped_midway
    _, res = events_of(eng, control)
    assert res.stop_reason == StopReason.USER and res.iterations_run == 5 == len(res.reports)


def test_a_paused_loop_waits_until_resumed_and_loses_no_step():
    reference = [r.loss for r in small_engine(iterations=12, seed=5).run().reports]
    eng = small_engine(iterations=12, seed=5)
    control = RunControl()
    kinds = []

    def on_event(event):
        kinds.append(event.kind)
        if event.kind is EventKind.STEP and event.iteration == 4:
            control.pause()
        elif event.kind is EventKind.PAUSED:
            assert control.pause_requested
            threading.Thread(target=control.resume).start()  # resumed from another thread, as by the window

    res = drain(eng.steps(control), on_event)
    assert kinds.count(EventKind.PAUSED) == 1 and kinds.count(EventKind.RESUMED) == 1
    assert kinds.index(EventKind.RESUMED) == kinds.index(EventKind.PAUSED) + 1
    assert res.stop_reason == StopReason.BUDGET and [r.iteration for r in res.reports] == list(range(1, 13))
    assert [r.loss for r in res.reports] == reference  # the same run as without the pause


def test_a_stop_wakes_a_paused_loop():
    eng = small_engine(iterations=1000)
    control = RunControl()

    def on_event(event):
        if event.kind is EventKind.STEP and event.iteration == 3:
            control.pause()
        elif event.kind is EventKind.PAUSED:
            threading.Thread(target=control.stop).start()

    res = drain(eng.steps(control), on_event)
    assert res.stop_reason == StopReason.USER and res.iterations_run == 3
    control.pause()  # a pause after a stop is ignored: nothing can block a stopped run
    assert not control.pause_requested


def _poison(eng):
    """From now on every loss is NaN (the operator returns NaN): the weights go NaN after the next update."""
    real = eng.operator.forward
    eng.operator.forward = lambda x: real(x) * float("nan")


def test_a_non_finite_loss_without_the_guard_ends_the_loop_as_diverged():
    eng = small_engine(iterations=1000, guard=False)
    control = RunControl()

    def on_event(event):
        if event.iteration == 3:
            _poison(eng)

    res = drain(eng.steps(control), on_event)
    assert res.stop_reason == StopReason.DIVERGED and res.iterations_run == 4
    assert "non-finite" in res.message and "guard" in res.message


def test_a_non_finite_loss_the_guard_cannot_cure_ends_the_loop_as_diverged():
    from rwgui.core.engine import GUARD_RETRIES

    eng = small_engine(iterations=1000)
    for _ in range(60):  # a good snapshot exists
        eng.step()
    _poison(eng)
    res = eng.run()
    restores = [r.iteration for r in res.reports if r.restored]
    assert res.stop_reason == StopReason.DIVERGED
    assert len(restores) == GUARD_RETRIES  # it tried, then gave up
    assert res.iterations_run == GUARD_RETRIES + 1


def test_a_single_non_finite_step_is_restored_and_the_run_goes_on():
    eng = small_engine(iterations=80)
    for _ in range(60):
        eng.step()
    with torch.no_grad():
        next(eng.net.parameters()).fill_(float("nan"))
    res = eng.run()
    assert res.stop_reason == StopReason.BUDGET and eng.iteration == 80
    assert res.reports[0].restored and not any(r.restored for r in res.reports[1:])
    assert np.isfinite(res.reports[-1].loss)


def test_out_of_memory_ends_the_loop_with_the_message_and_the_state_kept():
    eng = small_engine(iterations=10)

    def out_of_memory_at_3(real_forward):  # through the public seam rwgui.bench.gpu_check uses
        def forward(x):
            if eng.iteration == 3:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return real_forward(x)

        return forward

    with eng.forward_wrapped(out_of_memory_at_3):
        res = eng.run()
    assert res.stop_reason == StopReason.OUT_OF_MEMORY and "working size" in res.message
    assert isinstance(res.error, OutOfMemoryError)
    assert res.iterations_run == 3 and [r.iteration for r in res.reports] == [1, 2, 3]
    assert eng.image(Iterate.AVERAGE).shape == (48, 48, 3)  # the run so far is there to keep


def test_an_unexpected_error_ends_the_loop_with_its_name_and_traceback(monkeypatch):
    eng = small_engine(iterations=10)
    real_step = Engine.step

    def step(self):
        if self.iteration == 2:
            raise RuntimeError("boom")
        return real_step(self)

    monkeypatch.setattr(Engine, "step", step)
    res = eng.run()
    assert res.stop_reason == StopReason.ERROR and res.message == "RuntimeError: boom"
    assert isinstance(res.error, RuntimeError) and res.error.__traceback__ is not None
    assert res.iterations_run == 2


def test_engines_built_at_once_on_two_threads_keep_their_own_seeds():
    """A run's worker and the estimate's timing build engines at the same time; torch's global generator is one
    per process, so without the seeding lock one thread's seed could leak into the other's weights."""
    import threading

    def weights(seed):
        eng = small_engine(seed=seed)
        return torch.cat([p.detach().flatten() for p in eng.net.parameters()])

    ref = {seed: weights(seed) for seed in (0, 7)}
    got: dict[int, list[torch.Tensor]] = {0: [], 7: []}

    def build(seed):
        for _ in range(6):
            got[seed].append(weights(seed))

    threads = [threading.Thread(target=build, args=(seed,)) for seed in (0, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not torch.equal(ref[0], ref[7])
    for seed in (0, 7):
        assert all(torch.equal(w, ref[seed]) for w in got[seed])
