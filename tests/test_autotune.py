"""Speed settings chosen by measurement (rwgui.core.autotune).

The timer is replaced by a table of made-up seconds wherever a choice must be deterministic: what is tested is
the rule (the fastest measured candidate wins, the plain configuration is always measured, the cache is keyed
and re-used, forced settings are never measured over), never the machine's speed. No timed assertions.
"""

from __future__ import annotations

import threading

import pytest
import torch

from rwgui.core import autotune, estimate
from rwgui.core.config import RunConfig, SpeedConfig
from rwgui.core.engine import Engine
from tests.conftest import TINY_PRIOR, tiny_config

CPU = torch.device("cpu")
SIZE = (32, 32)


@pytest.fixture
def tuning(monkeypatch):
    """Measurement on (the suite's default is the fixed rule), and a fake timer: seconds per step from a table
    of (precision, channels_last, fused_optimizer, threads), recording each call's candidate and thread."""
    monkeypatch.setenv("RWGUI_SPEED_TUNING", "on")
    calls: list[tuple[str, str, str, int, threading.Thread]] = []
    table: dict[tuple[str, str, str, int], float] = {}

    def fake(engine, steps):
        s = engine.speed
        key = (s.precision, s.channels_last, s.fused_optimizer, torch.get_num_threads())
        calls.append((*key, threading.current_thread()))
        return table.get(key, 1.0)

    monkeypatch.setattr(autotune, "time_steps", fake)
    return calls, table


def _cfg(**speed):
    return tiny_config(speed=SpeedConfig(**speed))


def test_the_choice_is_the_fastest_measured_candidate(tuning):
    calls, table = tuning
    table[("float32", "on", "off", 1)] = 0.1  # fastest on one thread in stage 1 ...
    for t in autotune.thread_candidates():
        table[("float32", "on", "off", t)] = 0.1 if t == 1 else 0.5
    chosen = autotune.resolve(_cfg(), SIZE, CPU)
    assert (chosen.precision, chosen.channels_last, chosen.fused_optimizer, chosen.threads) == (
        "float32",
        "on",
        "off",
        1,
    )


def test_the_plain_configuration_is_always_a_candidate_and_wins_when_fastest(tuning):
    """Plain = float32, NCHW, the plain Adam loop, torch's own thread count: measured in every tuning, so the
    choice is never one measured slower than it."""
    calls, table = tuning
    plain_threads = autotune.plain_threads()
    table[("float32", "off", "off", plain_threads)] = 0.01
    result = autotune.resolve_tuning(_cfg(), SIZE, CPU)
    assert f"float32 cl:off fused:off t{plain_threads}" in result.seconds
    s = result.speed
    assert (s.precision, s.channels_last, s.fused_optimizer, s.threads) == ("float32", "off", "off", plain_threads)
    assert min(result.seconds.values()) == result.seconds[autotune.label(s)]


def test_the_cache_is_keyed_per_machine_and_reused(tuning, monkeypatch, tmp_path):
    calls, _ = tuning
    first = autotune.resolve(_cfg(), SIZE, CPU)
    assert calls and autotune.cache_path().is_file()
    assert str(autotune.cache_path()).startswith(str(tmp_path))  # the test's folder, never the person's
    n = len(calls)
    assert autotune.resolve(_cfg(), SIZE, CPU) == first and len(calls) == n  # the second call does not time
    engine = Engine(estimate.synthetic_problem("denoise", 3, 1, SIZE), _cfg())  # the engine takes the cached choice
    assert engine.speed == first and len(calls) == n
    monkeypatch.setattr(autotune, "machine_key", lambda device: "another machine")
    autotune.resolve(_cfg(), SIZE, CPU)
    assert len(calls) > n  # another machine: measured again
    assert len(autotune.cached_choices()) == 2


def test_sizes_and_networks_have_their_own_entries():
    cfg = _cfg()
    key = autotune.cache_key(cfg, (32, 32), CPU)
    assert autotune.cache_key(cfg, (30, 34), CPU) == key  # the same bucket
    assert autotune.cache_key(cfg, (512, 512), CPU) != key
    other = cfg.replace(prior_params={**TINY_PRIOR, "channels_down": (8,)})
    assert autotune.cache_key(other, (32, 32), CPU) != key
    assert autotune.cache_key(_cfg(threads=1), (32, 32), CPU) != key  # forced settings shape the candidates


def test_remeasure_forgets(tuning):
    calls, _ = tuning
    autotune.resolve(_cfg(), SIZE, CPU)
    n = len(calls)
    autotune.forget()
    assert not autotune.cache_path().exists() and autotune.cached_choices() == {}
    autotune.resolve(_cfg(), SIZE, CPU)
    assert len(calls) > n


def test_a_forced_setting_is_honoured_and_never_measured_over(tuning):
    calls, table = tuning
    for t in autotune.thread_candidates():
        table[("float32", "off", "off", t)] = 0.001  # the fastest, but channels-last is forced on
    chosen = autotune.resolve(_cfg(channels_last="on", threads=1, precision="float32"), SIZE, CPU)
    assert chosen.channels_last == "on" and chosen.threads == 1 and chosen.precision == "float32"
    assert calls and all(c[1] == "on" and c[0] == "float32" and c[3] == 1 for c in calls)
    calls.clear()
    forced = SpeedConfig(precision="float32", channels_last="off", fused_optimizer="on", threads=1)
    assert autotune.resolve(tiny_config(speed=forced), SIZE, CPU) == forced and calls == []  # nothing to tune
    engine = Engine(estimate.synthetic_problem("denoise", 3, 1, SIZE), tiny_config(speed=forced))
    assert engine.speed == forced and not engine.z.is_contiguous(memory_format=torch.channels_last)


def test_old_settings_files_with_true_false_still_load():
    data = RunConfig().to_dict()
    data["speed"] = {**data["speed"], "channels_last": True, "fused_optimizer": False}
    cfg = RunConfig.from_dict(data)
    assert cfg.speed.channels_last == "on" and cfg.speed.fused_optimizer == "off"
    assert SpeedConfig(channels_last=False) == SpeedConfig(channels_last="off")
    assert RunConfig.from_json(cfg.to_json()) == cfg
    assert RunConfig().speed.channels_last == "auto" and RunConfig().speed.threads == 0


def test_without_measurement_auto_follows_the_fixed_rule(monkeypatch):
    """The suite's default (RWGUI_SPEED_TUNING=off): concrete settings, no timing, forced ones kept."""
    monkeypatch.setattr(autotune, "time_steps", lambda *a: pytest.fail("timed with tuning off"))
    s = autotune.resolve(_cfg(fused_optimizer="off"), SIZE, CPU)
    assert not autotune.needs_tuning(s) and s.fused_optimizer == "off"
    assert s.precision in ("float32", "bfloat16") and s.channels_last in ("on", "off")


def test_thread_candidates_include_one_and_every_core():
    assert autotune.thread_candidates(1) == [1]
    assert autotune.thread_candidates(2) == [1, 2]
    assert {1, 2, 4, 15, 16} <= set(autotune.thread_candidates(16))


def test_the_studio_measures_in_its_worker_never_on_the_gui_thread(qtbot, window, make_config, tuning):
    calls, _ = tuning
    statuses: list[str] = []
    window.controller.status.connect(statuses.append)
    window.settings_panel.set_config(make_config(iterations=3))
    with qtbot.waitSignal(window.controller.run_finished, timeout=60000):
        window.start()
    assert calls, "the run's 'auto' settings were not measured"
    assert all(c[4] is not threading.main_thread() for c in calls)
    assert statuses == ["measuring speed…"]
    n = len(calls)
    with qtbot.waitSignal(window.controller.run_finished, timeout=60000):
        window.start()
    assert len(calls) == n and statuses == ["measuring speed…"]  # cached: no second measurement


def test_remeasure_button_forgets(qtbot, window, tuning):
    autotune.resolve(_cfg(), SIZE, CPU)
    assert autotune.cache_path().exists()
    window.settings_panel.remeasure_button.click()
    assert not autotune.cache_path().exists()


# ----- the task's own step ----------------------------------------------------------------------------------
def _classifier(path) -> str:
    """A small AlexNet-shaped classifier saved as a person's weights file would be."""
    from rwgui.core.classifiers import alexnet

    torch.manual_seed(0)
    torch.save(alexnet((8, 8, 8, 8, 8), hidden=16, classes=10).state_dict(), path)
    return str(path)


def test_the_preimage_is_tuned_on_its_own_classifier_and_cached_apart_from_denoising(monkeypatch, tmp_path):
    """The pre-image's classifier runs forward and backward in every step: its candidates are timed on a
    problem through the run's classifier, and its choice is neither taken from nor given to denoising's."""
    from rwgui.core.operators import Features

    monkeypatch.setenv("RWGUI_SPEED_TUNING", "on")
    timed: list = []
    monkeypatch.setattr(autotune, "time_steps", lambda engine, steps: timed.append(engine.problem) or 1.0)
    weights = _classifier(tmp_path / "w.pth")
    pre = tiny_config("preimage", task_params={"weights": weights, "layer": "relu2"})
    den = tiny_config("denoise")
    size = (96, 96)
    assert autotune.cache_key(pre, size, CPU) != autotune.cache_key(den, size, CPU)
    autotune.resolve(pre, size, CPU)
    assert timed and all(isinstance(p.operator, Features) and p.task == "preimage" for p in timed)
    assert autotune.known_speed(den, size, CPU) is None  # the pre-image's choice is not denoising's
    timed.clear()
    autotune.resolve(den, size, CPU)
    assert timed and all(p.task == "denoise" for p in timed)
    timed.clear()
    autotune.resolve(pre, size, CPU)
    assert timed == []  # each cached under its own key
    other = pre.replace(task_params={"weights": weights, "layer": "relu5"})
    assert autotune.cache_key(other, size, CPU) != autotune.cache_key(pre, size, CPU)  # another layer, other cost


def test_a_cache_written_before_tasks_were_told_apart_is_denoisings(monkeypatch, tmp_path):
    """An entry of an earlier version (no task in its key) is read as denoising's choice (and inpainting's,
    whose step costs the same), never the pre-image's."""
    import json

    monkeypatch.setenv("RWGUI_SPEED_TUNING", "on")
    monkeypatch.setattr(autotune, "time_steps", lambda *a: pytest.fail("timed although cached"))
    den, size = tiny_config("denoise"), (64, 64)
    old_key = (
        f"{autotune.machine_key(CPU)} | {autotune.size_bucket(size)}px | "
        f"{autotune._network_signature(den.validated(), 3)} | forced:-"
    )
    chosen = {"precision": "float32", "channels_last": "on", "fused_optimizer": "off", "threads": 1}
    path = autotune.cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = {old_key: {"speed": chosen, "seconds": {}, "when": "2024-01-01T00:00:00+00:00"}}
    path.write_text(json.dumps({"version": autotune.CACHE_VERSION, "entries": entries}))
    s = autotune.known_speed(den, size, CPU)
    assert s is not None and (s.channels_last, s.threads) == ("on", 1)
    inpaint = den.replace(task="inpaint")
    assert autotune.known_speed(inpaint, size, CPU) == s
    weights = _classifier(tmp_path / "w.pth")
    pre = den.replace(task="preimage", task_params={"weights": weights})
    assert autotune.known_speed(pre, size, CPU) is None


def test_a_large_photo_is_timed_at_a_side_that_ranks_like_its_own_and_old_choices_are_measured_again(
    monkeypatch,
):
    """At 96 px a step is mostly overhead and the candidates' order is noise: a choice measured there made
    1088 px steps 2.3x slower. A large photo is timed at ``TUNE_SIDE`` (a small one at its own bucket), and a
    cache of the version that timed at 96 px is not trusted."""
    import json

    monkeypatch.setenv("RWGUI_SPEED_TUNING", "on")
    sides: list = []
    monkeypatch.setattr(autotune, "time_steps", lambda engine, steps: sides.append(engine.problem.size) or 1.0)
    cfg = tiny_config("denoise")
    autotune.tune(cfg, (2048, 1536), CPU)
    assert sides and set(sides) == {(autotune.TUNE_SIDE, autotune.TUNE_SIDE)} and autotune.TUNE_SIDE >= 192
    sides.clear()
    autotune.tune(cfg, (64, 64), CPU)
    assert set(sides) == {(64, 64)}

    size = (1024, 1024)
    path = autotune.cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    stale = {"precision": "float32", "channels_last": "off", "fused_optimizer": "off", "threads": 1}
    entry = {"speed": stale, "seconds": {}, "when": "2026-01-01T00:00:00+00:00"}
    path.write_text(json.dumps({"version": 1, "entries": {autotune.cache_key(cfg, size, CPU): entry}}))
    assert autotune.known_speed(cfg, size, CPU) is None
    sides.clear()
    autotune.resolve(cfg, size, CPU)
    assert sides  # measured again


def test_a_measurement_asked_to_give_up_stops_between_steps_and_caches_nothing(monkeypatch):
    """Inside :func:`rwgui.core.cancel.cancellable`, tuning gives up at its next step once asked (a window
    closing, a Stop): no step of a candidate runs after the ask, nothing is cached; outside, nothing changes."""
    from rwgui.core import cancel

    monkeypatch.setenv("RWGUI_SPEED_TUNING", "on")
    timed: list[int] = []
    asked = threading.Event()

    def fake(engine, steps):
        cancel.check()
        timed.append(steps)
        asked.set()  # the owner asks while the first candidate is being timed
        return 1.0

    monkeypatch.setattr(autotune, "time_steps", fake)
    cfg = tiny_config("denoise")
    with pytest.raises(cancel.Cancelled), cancel.cancellable(asked.is_set):
        autotune.resolve(cfg, SIZE, CPU)
    assert timed == [autotune.STEPS_PER_ROUND]  # gave up at the next candidate's timing
    assert autotune.known_speed(cfg, SIZE, CPU) is None
    asked.set()
    chosen = autotune.resolve(cfg, SIZE, CPU)  # no cancellable block: the ask is nobody's
    assert chosen.precision != "auto" and autotune.known_speed(cfg, SIZE, CPU) == chosen


def test_stop_while_the_run_measures_its_speed_ends_it_at_once_without_a_step_or_an_error(
    qtbot, window, make_config, monkeypatch
):
    """Pressing Stop during "measuring speed…" must not wait for the measurement (seconds to tens of
    seconds): the run ends as stopped, with no step taken, no error shown and nothing cached."""
    from rwgui.core import cancel

    monkeypatch.setenv("RWGUI_SPEED_TUNING", "on")
    measuring, stopped = threading.Event(), threading.Event()

    def slow(engine, steps):  # a measurement that would take 30 s unless given up
        measuring.set()
        stopped.wait(30)
        cancel.check()
        return 1.0

    monkeypatch.setattr(autotune, "time_steps", slow)
    failures: list[str] = []
    window.controller.run_failed.connect(failures.append)
    cfg = make_config(iterations=50)
    window.settings_panel.set_config(cfg)
    with qtbot.waitSignal(window.controller.run_finished, timeout=20000) as fin:
        window.start()
        qtbot.waitUntil(measuring.is_set, timeout=10000)
        window.controller.stop()
        stopped.set()
    summary = fin.args[0]
    assert summary.reason == "user" and summary.iterations == 0 and failures == []
    assert autotune.known_speed(window.settings_panel.config(), (64, 64), CPU) is None
