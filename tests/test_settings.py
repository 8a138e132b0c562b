"""Each setting is declared once, and the CLI, the window and the JSON start from the same preset."""

import dataclasses
import json
from typing import Any

import pytest

from rwgui.cli import build_parser, make_config
from rwgui.core.config import (
    MACHINE_SETTINGS,
    PRESETS,
    RUN_PARAMS,
    SPEED_PARAMS,
    SR_FACTORS,
    RunConfig,
    SpeedConfig,
    preset,
)
from rwgui.core.errors import ConfigError
from rwgui.core.params import Param, params_of, setting
from rwgui.core.vocabulary import Task

#: RunConfig fields with a control of their own in the window and a hand-written CLI argument: the task and the
#: factor, the preset's name, and the variant choices whose parameters their registries declare.
STRUCTURAL = {
    "task",
    "preset",
    "factor",
    "task_params",  # the task's own parameters (rwgui.core.tasks), like a variant's
    "prior",
    "prior_params",
    "stop",
    "stop_params",
    "auto_stop",
    "loss_prior",
    "loss_prior_params",
    "speed",
}

#: (task, --factor or None, the hole fraction the CLI and the window are told)
DEFAULT_CASES = [
    ("denoise", None, None),
    ("sr", None, None),
    *[("sr", f, None) for f in SR_FACTORS],
    ("inpaint", None, 0.02),
    ("inpaint", None, 0.5),  # many scattered holes: the restoration preset
]


# ----- one declaration per setting ----------------------------------------------------------------------
@pytest.mark.parametrize(("cls", "params"), [(RunConfig, RUN_PARAMS), (SpeedConfig, SPEED_PARAMS)])
def test_every_setting_field_has_a_param_whose_default_is_the_fields(cls, params):
    names = [f.name for f in dataclasses.fields(cls) if f.name not in STRUCTURAL]
    assert names == [p.name for p in params]  # same settings, in field order (the forms' order)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for p in params:
        assert p.default == defaults[p.name], p.name
        assert p.coerce(p.default) == p.default, p.name


def test_every_setting_is_a_cli_flag_a_json_key_and_a_form_field(qtbot):
    from rwgui.gui.settings_dock import SettingsPanel

    flags = {s for a in build_parser()._actions for s in a.option_strings}
    data = RunConfig().to_dict()
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    for p in RUN_PARAMS:
        assert p.flag in flags and p.name in data, p.name
        if p.name != "device":  # the device has its own combo, listing the devices found
            assert panel.run_form.editor(p.name) is not None
    for p in SPEED_PARAMS:
        assert p.flag in flags and p.name in data["speed"], p.name
        assert panel.speed_form.editor(p.name) is not None


def test_a_setting_declared_once_gives_its_param_with_the_kind_read_from_the_annotation():
    @dataclasses.dataclass(frozen=True)
    class Toy:
        plain: int = 3  # not a setting: no Param
        steps: int = setting(10, "steps", min=1, max=100)
        rate: float = setting(0.5, "rate", log=True)
        on: bool = setting(True, "on")
        mode: str = setting("a", "mode", choices=("a", "b"))
        name: str = setting("x", "free text")
        task: Task = setting(Task.SR, "a StrEnum: its members are the choices")
        channels: tuple[int, ...] = setting((8, 8), "ints")
        factor: int = setting(4, "a number limited to a few values", choices=(2, 4, 8))

    params = {p.name: p for p in params_of(Toy)}
    assert list(params) == ["steps", "rate", "on", "mode", "name", "task", "channels", "factor"]
    kinds = {n: p.kind for n, p in params.items()}
    assert kinds == {
        "steps": "int",
        "rate": "float",
        "on": "bool",
        "mode": "choice",
        "name": "str",
        "task": "choice",
        "channels": "ints",
        "factor": "int",
    }
    assert params["steps"].default == 10 and params["steps"].max == 100 and params["rate"].log
    assert params["task"].choices == tuple(Task)
    assert params["task"].coerce("inpaint") is Task.INPAINT  # the member, not its string
    assert params["factor"].coerce("8") == 8
    with pytest.raises(ConfigError, match="2, 4, 8"):
        params["factor"].coerce(3)
    assert Toy().steps == 10  # still an ordinary dataclass field


def test_a_number_with_choices_needs_its_default_among_them():
    with pytest.raises(ValueError, match="not among its choices"):
        Param("factor", "int", 3, "", choices=(2, 4, 8))
    with pytest.raises(ValueError, match="take choices"):
        Param("on", "bool", True, "", choices=(True,))


# ----- the super-resolution factors -----------------------------------------------------------------------
@pytest.mark.parametrize("factor", [1, 3, 16])
def test_config_refuses_a_factor_outside_sr_factors_and_names_them(factor):
    with pytest.raises(ConfigError, match="factor: must be one of 2, 4, 8"):
        RunConfig(factor=factor).validated()
    assert SR_FACTORS == (2, 4, 8)


def test_dock_offers_exactly_sr_factors(qtbot):
    from rwgui.gui.settings_dock import SettingsPanel

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    combo = panel.factor_combo
    assert [combo.itemData(i) for i in range(combo.count())] == list(SR_FACTORS)
    assert sorted(PRESETS[f"sr-x{f}"]["factor"] for f in SR_FACTORS) == list(SR_FACTORS)


# ----- one set of defaults ------------------------------------------------------------------------------
def test_runconfig_defaults_are_the_denoise_preset():
    assert RunConfig().to_dict() == preset("denoise").to_dict()
    assert RunConfig().stop == "es-wmv"


def _cli_default(tmp_path, task: str, factor: int | None, hint: float | None) -> RunConfig:
    argv = [task, str(tmp_path / "photo.png"), *(["--factor", str(factor)] if factor else [])]
    return make_config(build_parser().parse_args(argv), hint)


def _studio_default(panel, task: str, factor: int | None, hint: float | None) -> RunConfig:
    panel.set_hole_fraction(hint)
    panel.set_task(task, factor)
    return panel.config()


def _differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}


@pytest.mark.parametrize(("task", "factor", "hint"), DEFAULT_CASES)
def test_cli_and_studio_default_settings_are_equal(qtbot, tmp_path, task, factor, hint):
    """No field differs: both are the task's preset (device 'auto' and the speed defaults included)."""
    from rwgui.gui.settings_dock import SettingsPanel

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    panel.set_task("inpaint" if task != "inpaint" else "denoise")  # from another task, as a person would
    cli_cfg = _cli_default(tmp_path, task, factor, hint)
    studio_cfg = _studio_default(panel, task, factor, hint)
    assert _differences(cli_cfg.to_dict(), studio_cfg.to_dict()) == {}
    assert cli_cfg == studio_cfg


@pytest.mark.parametrize(("task", "factor"), [("denoise", None), ("sr", 8), ("inpaint", None)])
def test_cli_and_the_real_window_start_from_the_same_preset(qtbot, tmp_path, task, factor):
    from rwgui.gui.main_window import MainWindow

    win = MainWindow(sample_size=32)
    qtbot.addWidget(win)
    win.settings_panel.set_hole_fraction(None)
    win.settings_panel.set_task(task, factor)
    studio = win.current_settings()
    assert _differences(_cli_default(tmp_path, task, factor, None).to_dict(), studio.to_dict()) == {}
    assert json.loads(studio.to_json()) == json.loads(preset(studio.preset).to_json())


def test_denoising_stops_with_es_wmv_in_the_cli_and_the_studio(qtbot, tmp_path):
    from rwgui.gui.settings_dock import SettingsPanel

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    assert panel.config().stop == "es-wmv" == _cli_default(tmp_path, "denoise", None, None).stop


def test_choosing_super_resolution_gives_the_sr_presets_loss_prior(qtbot):
    from rwgui.gui.settings_dock import SettingsPanel

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    assert panel.config().loss_prior == "none"
    panel.set_task("sr")
    cfg = panel.config()
    assert cfg.preset == "sr-x4" and cfg.loss_prior == "cdc" == PRESETS["sr-x4"]["loss_prior"]
    assert cfg.loss_prior_params == preset("sr-x4").loss_prior_params
    assert cfg.stop == preset("sr-x4").stop


def test_reset_to_preset_restores_everything_the_preset_names(qtbot):
    from rwgui.gui.settings_dock import SettingsPanel

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    panel.set_task("sr", 4)
    panel.loss_form.set_variant("inn")
    panel.stop_form.set_variant("es-emv", {"alpha": 0.2})
    panel.auto_stop.setChecked(False)
    panel.prior_form.set_variant("hourglass", {"num_scales": 3})
    panel.run_form.set_values({"iterations": 5, "seed": 9, "lr": 0.5})
    changed = panel.config()
    assert (changed.loss_prior, changed.stop, changed.auto_stop) == ("inn", "es-emv", False)
    panel.reset_button.click()
    assert panel.config() == preset("sr-x4")
    assert (panel.config().loss_prior, panel.config().stop) == ("cdc", preset("sr-x4").stop)


def test_changing_the_task_applies_its_preset_and_keeps_only_the_machines_settings(qtbot):
    from rwgui.gui.settings_dock import SettingsPanel

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    panel.stop_form.set_variant("sure")
    panel.loss_form.set_variant("taylor")
    panel.run_form.set_values({"iterations": 7})
    panel.speed_form.set_values({"threads": 1, "channels_last": "off"})
    panel.set_task("inpaint")
    cfg = panel.config()
    assert MACHINE_SETTINGS == ("device", "speed")
    assert cfg.speed == SpeedConfig(threads=1, channels_last=False)  # the machine's: kept
    assert cfg.replace(speed=SpeedConfig()) == preset("inpaint")  # everything else: the preset's
