"""Lab mode (offscreen): queue variants, run them in turn through one controller, compare, choose, stop, close."""

from __future__ import annotations

import numpy as np
import pytest
import shiboken6

from rwgui.core.config import preset
from rwgui.core.errors import RwguiError
from rwgui.core.problems import denoise_problem
from rwgui.core.samples import load_sample
from rwgui.core.session import LabResult
from rwgui.core.vocabulary import StopReason
from rwgui.gui import worker as worker_mod
from rwgui.gui.lab import LabPanel

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

SMALL = {"num_scales": 3, "channels_down": (8,), "channels_up": (8,), "channels_skip": (4,)}
WAIT_MS = 120_000


def base_config(iterations: int = 20, **overrides):
    values = dict(
        prior_params=SMALL,
        iterations=iterations,
        device="cpu",
        seed=3,
        stop="es-wmv",
        stop_params={"window": 5, "patience": 1000},
        auto_stop=False,
    )
    values.update(overrides)
    return preset("denoise", **values)


@pytest.fixture
def sample():
    return load_sample("denoise", size=40)


@pytest.fixture
def panel(qtbot, sample):
    p = LabPanel()
    qtbot.addWidget(p)
    assert p.set_problem(sample.problem(), base_config())
    return p


def queue_three(panel) -> None:
    assert panel.add_variant("skip", "none")
    assert panel.add_variant("skip", "cdc", 0.1)
    assert panel.add_variant("skip", "tv", 0.01)


def wait_queue(qtbot, panel, timeout=WAIT_MS) -> None:
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=timeout)


def no_running_threads() -> bool:
    return not any(t.isRunning() for t in worker_mod.live_threads())


def test_variants_are_overlaid_on_the_base_settings(panel):
    queue_three(panel)
    assert panel.add_variant("hourglass", "none", stop="fixed")
    assert not panel.add_variant("skip", "cdc", 0.1)  # already queued
    none, cdc, tv, hourglass = panel.queue_variants()
    for cfg in (none, cdc, tv, hourglass):
        assert (cfg.iterations, cfg.seed, cfg.device, cfg.auto_stop) == (20, 3, "cpu", False)
        assert cfg.prior_params["channels_down"] == (8,) and cfg.prior_params["num_scales"] == 3
    assert none.loss_prior == "none" and none.tv_weight == 0 and none.stop == "es-wmv"
    assert none.stop_params["window"] == 5  # same rule: the base's parameters
    assert cdc.loss_prior == "cdc" and cdc.loss_prior_params["weight"] == 0.1 and cdc.tv_weight == 0
    assert tv.loss_prior == "none" and tv.tv_weight == 0.01
    # another prior keeps the base's network size but takes what defines it (no skip connections)
    assert hourglass.prior == "hourglass" and hourglass.prior_params["channels_skip"] == (0,)
    assert hourglass.prior_params["channels_down"] == (8,) and hourglass.stop == "fixed"
    assert panel.table.rowCount() == 4 and [r["status"] for r in panel.results()] == ["queued"] * 4
    panel.select(1)
    panel.remove_selected()
    assert [c.loss_prior for c in panel.queue_variants()] == ["none", "none", "none"]


def test_run_queue_compares_and_offers_the_best(qtbot, panel, sample):
    queue_three(panel)
    started = []
    panel.controller.run_started.connect(started.append)
    assert panel.run_queue()
    assert panel.is_running() and not panel.run_button.isEnabled() and panel.stop_button.isEnabled()
    wait_queue(qtbot, panel)
    assert len(started) == 3  # one controller, three runs, one after another
    res = panel.results()
    assert [r["status"] for r in res] == ["done"] * 3
    assert all(r["iterations"] == 20 and r["reason"] == StopReason.BUDGET for r in res)
    assert all(r["psnr_average_pick"] is not None and r["psnr_pick"] is not None for r in res)
    assert all(r["seconds_per_step"] > 0 and 1 <= r["pick_iteration"] <= 20 for r in res)
    # one curve and one pick marker per variant, named in the legend
    assert len(panel.plot.curves) == 3 and len(panel.plot.markers) == 3
    assert panel.plot.psnr_mode
    names = [label.text for _sample, label in panel.plot.legend.items]
    assert names == [r["variant"] for r in res]
    assert all(len(c.getData()[0]) == 20 for c in panel.plot.curves.values())
    # the table shows PSNRs; the best is starred, bold, selected and is the maximum
    for row in range(3):
        assert panel.table.item(row, 4).text().endswith("dB")
    best = max(res, key=lambda r: r["psnr_average_pick"])
    assert [r["best"] for r in res].count(True) == 1 and best["best"]
    assert panel.best_key() == best["key"] and panel.table.is_highlighted(best["key"])
    assert not any(panel.table.is_highlighted(r["key"]) for r in res if r is not best)
    assert panel.selected_key() == best["key"] and panel.use_button.isEnabled()
    assert len(panel.strip.buttons) == 3 and panel.strip.buttons[best["key"]].isChecked()
    with qtbot.waitSignal(panel.result_chosen, timeout=1000) as sig:
        assert panel.use_result()
    chosen = sig.args[0]
    assert isinstance(chosen, LabResult)
    cfg, image = chosen.config, chosen.image
    assert cfg == best["config"] and cfg.loss_prior == panel.queue_variants()[best["key"]].loss_prior
    assert image.shape == sample.ground_truth.shape and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert panel.last_choice.key == best["key"] and panel.last_choice.pick_iteration == best["pick_iteration"]
    # the person's choice: another row (or its thumbnail) is offered instead
    other = next(r for r in res if not r["best"])
    panel.strip.buttons[other["key"]].click()
    assert panel.selected_key() == other["key"]
    with qtbot.waitSignal(panel.result_chosen, timeout=1000) as sig:
        panel.use_button.click()
    assert sig.args[0].config == other["config"]
    # a second press runs only what has no result under these settings: here, everything again
    assert panel.add_variant("skip", "zero-order", 0.1)
    assert panel.run_queue()
    wait_queue(qtbot, panel)
    assert len(started) == 4 and [r["status"] for r in panel.results()] == ["done"] * 4


def test_stop_mid_queue_stops_everything(qtbot, panel):
    panel.run_box.iterations_spin.setValue(100_000)
    queue_three(panel)
    panel.run_queue()
    qtbot.waitUntil(lambda: panel.results()[0]["iterations"] >= 3, timeout=WAIT_MS)
    assert not panel.set_problem(load_sample("denoise", size=32).problem(), base_config())  # refused mid-run
    panel.stop_button.click()
    wait_queue(qtbot, panel, timeout=10_000)
    res = panel.results()
    assert [r["status"] for r in res] == ["stopped", "queued", "queued"]
    assert res[0]["image"] is not None and res[1]["iterations"] == 0 and res[2]["iterations"] == 0
    assert panel.best_key() is None  # a stopped run is not ranked against finished ones
    qtbot.waitUntil(no_running_threads, timeout=5000)
    assert panel.run_button.isEnabled() and not panel.stop_button.isEnabled()


def test_a_failing_variant_is_marked_and_the_queue_goes_on(qtbot, panel, monkeypatch):
    from rwgui.core import engine

    real_init = engine.Engine.__init__

    def init(self, problem, config):
        if config.loss_prior == "cdc":
            raise RwguiError("cdc exploded on purpose")
        real_init(self, problem, config)

    monkeypatch.setattr(engine.Engine, "__init__", init)
    queue_three(panel)
    panel.run_queue()
    wait_queue(qtbot, panel)
    res = panel.results()
    assert [r["status"] for r in res] == ["done", "failed", "done"]
    assert "exploded" in res[1]["message"] and res[1]["image"] is None
    assert panel.table.item(1, 1).text() == "failed" and "exploded" in panel.table.item(1, 1).toolTip()
    assert panel.best_key() in (res[0]["key"], res[2]["key"])


def test_without_ground_truth_the_loss_is_compared_and_the_person_picks(qtbot, sample):
    p = LabPanel()
    qtbot.addWidget(p)
    p.set_problem(denoise_problem(sample.observed), base_config(iterations=10))
    p.add_variant("skip", "none")
    p.add_variant("skip", "cdc", 0.1)
    p.run_queue()
    wait_queue(qtbot, p)
    assert not p.plot.psnr_mode and p.plot.item.getAxis("left").logMode
    assert len(p.plot.curves) == 2 and p.best_key() is None
    assert p.plot.item.getAxis("left").labelText.startswith("Data loss")  # not the total: it holds each prior
    assert all(r["psnr_average_pick"] is None and r["image"] is not None for r in p.results())
    assert p.table.isColumnHidden(4) and p.selected_key() is None and not p.use_button.isEnabled()
    p.select(1)
    with qtbot.waitSignal(p.result_chosen, timeout=1000) as sig:
        assert p.use_result()
    assert sig.args[0].image.shape == (40, 40, 3)


def test_an_inpainting_result_is_scored_as_it_is_written_with_the_known_pixels_kept(qtbot):
    """The Lab ranks what Save result (and the CLI) write: the keep-known composite, not the network's output,
    whose error on the known pixels the run's curves include."""
    from rwgui.core.compositing import keep_known, result_psnr, result_seam
    from rwgui.core.metrics import psnr
    from rwgui.core.pixels import tensor_to_image

    problem = load_sample("inpaint", size=40).problem()
    cfg = preset("inpaint", prior_params=SMALL, iterations=12, device="cpu", seed=3, stop="es-wmv", auto_stop=False)
    p = LabPanel()
    qtbot.addWidget(p)
    assert p.set_problem(problem, cfg)
    assert p.add_variant("skip", "none")
    assert p.run_queue()
    wait_queue(qtbot, p)
    (row,) = p.results()
    result = p.lab_results()[0]
    seam = result_seam(row["config"])
    assert seam is not None  # the preset keeps the known pixels
    gt = tensor_to_image(problem.ground_truth)
    mask = problem.mask[0, 0].numpy()
    composite = keep_known(result.image, tensor_to_image(problem.observed), mask, seam)
    expected = psnr(composite, gt)
    assert row["psnr_average_pick"] == pytest.approx(expected, abs=1e-9)
    assert result.psnr == pytest.approx(expected, abs=1e-9)  # what the window shows when the result is taken
    assert p.table.item(0, 4).text() == f"{expected:.2f} dB"
    assert result_psnr(result.image, problem, row["config"]) == pytest.approx(expected, abs=1e-9)
    # not the network's output: 12 iterations reconstruct the known pixels poorly, and they are never written
    network = psnr(result.image, gt)
    assert expected > network + 1.0
    assert row["psnr_average_pick"] != pytest.approx(p._entries[0].data.value_at("psnr_average", row["pick_iteration"]))


def test_closing_mid_run_stops_the_thread(qtbot, panel):
    panel.run_box.iterations_spin.setValue(100_000)
    queue_three(panel)
    panel.run_queue()
    qtbot.waitUntil(lambda: panel.results()[0]["iterations"] >= 2, timeout=WAIT_MS)
    panel.close()
    assert no_running_threads() and not panel.is_running()


def test_deleting_mid_run_stops_the_thread(qtbot, sample):
    p = LabPanel()
    p.set_problem(sample.problem(), base_config(iterations=100_000))
    p.add_variant("skip", "none")
    p.run_queue()
    qtbot.waitUntil(lambda: p.results()[0]["iterations"] >= 2, timeout=WAIT_MS)
    shiboken6.delete(p)  # C++ deletion (a parent going away): no closeEvent
    assert no_running_threads()


def test_lab_opens_from_the_main_window_and_closes_cleanly(window, qtbot):
    """The window's Lab action hands the current photo and settings to the panel."""
    window.lab.action.trigger()
    assert window.lab.dock.isVisible()
    panel = window.lab.panel
    assert panel._problem is not None and panel._problem.size == (64, 64)
    assert panel.add_current()
    assert panel.queue_variants()[0].task == window.task()
    window.close()


def test_taking_a_lab_result_changes_no_setting_now_or_at_the_next_start(window, qtbot, make_config):
    """The Lab runs with its own budget and regulariser; taking its result leaves the window's settings (and
    what is persisted at close) as they were. Only "Use its settings" applies the variant's settings."""
    from rwgui.gui.main_window import MainWindow

    before = make_config(iterations=33, seed=5)
    window.settings_panel.set_config(before)
    window.lab.action.trigger()
    panel = window.lab.panel
    panel.run_box.iterations_spin.setValue(4)
    assert panel.add_variant("skip", "cdc", 0.1)
    with qtbot.waitSignal(panel.queue_finished, timeout=WAIT_MS):
        assert panel.run_queue()
    panel.select(panel.results()[0]["key"])
    taken = []
    window.session.result_taken.connect(taken.append)
    assert panel.use_result()
    r = taken[0]
    assert isinstance(r, LabResult) and r.config.iterations == 4 and r.config.loss_prior == "cdc"
    assert window.settings_panel.config() == before and window.session.settings == before
    assert window.run_config == r.config  # what made the result, for Export settings
    assert window.history.result_key() is not None and window.acts.save.isEnabled()
    assert window.session.lab_result is r and len(window.session.lab_results) == 1
    assert "from the Lab" in window.recon_view.title()
    window.close()
    again = MainWindow(sample_size=64)
    qtbot.addWidget(again)
    assert again.settings_panel.config() == before


def test_use_its_settings_applies_the_variant_on_request(window, qtbot, make_config):
    window.settings_panel.set_config(make_config(iterations=33))
    window.lab.action.trigger()
    panel = window.lab.panel
    panel.run_box.iterations_spin.setValue(3)
    assert panel.add_variant("skip", "cdc", 0.1)
    with qtbot.waitSignal(panel.queue_finished, timeout=WAIT_MS):
        assert panel.run_queue()
    panel.select(panel.results()[0]["key"])
    assert panel.settings_button.isEnabled() and panel.use_settings()
    cfg = window.settings_panel.config()
    assert (cfg.iterations, cfg.loss_prior) == (3, "cdc") and window.session.settings == cfg
