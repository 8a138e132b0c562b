"""The "Restoration" settings panel: task, preset, prior, run parameters, stopping rule, loss prior, device.

Every form is generated from a registry's parameter spec (``rwgui.gui.forms``); this panel only arranges
them and turns them into one validated :class:`~rwgui.core.config.RunConfig` when Start is pressed.
Choosing a task (or a super-resolution factor) re-applies that task's preset, the paper's settings;
the person's choice of stopping rule, loss prior and device survives a preset change.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..core.config import PRESETS, RUN_PARAMS, SPEED_PARAMS, RunConfig, SpeedConfig, preset, preset_name
from ..core.device import available_devices, resolve_device, speed_summary
from ..core.errors import RwguiError
from ..core.lossprior import LOSS_PRIORS
from ..core.priors import PRIORS
from ..core.stopping import STOPPING_RULES
from .forms import ParamForm, VariantForm

__all__ = ["SettingsPanel", "TASK_LABELS"]

TASK_LABELS = {"denoise": "Denoise", "sr": "Super-resolution", "inpaint": "Inpaint (fill holes)"}
FACTORS = (2, 4, 8)
DEFAULT_STOP = "es-wmv"  # issue 4: the rule's pick is the default result, so a real rule is the default
_RUN_ORDER = (
    "iterations",
    "seed",
    "lr",
    "reg_noise_std",
    "input_code",
    "input_depth",
    "exp_weight",
    "tv_weight",
    "guard",
    "guard_ratio",
)
_KEEP_ON_PRESET = ("stop", "stop_params", "auto_stop", "loss_prior", "loss_prior_params", "device", "speed")


def _box(title: str, widget: QWidget, parent: QWidget) -> QGroupBox:
    box = QGroupBox(title, parent)
    lay = QVBoxLayout(box)
    lay.setContentsMargins(6, 4, 6, 6)
    lay.addWidget(widget)
    return box


class SettingsPanel(QScrollArea):
    """All settings of a run, scrollable; ``config()`` snapshots them."""

    task_changed = Signal(str)  # the task or the SR factor changed (the preset was re-applied)
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget(self)
        lay = QVBoxLayout(body)
        lay.setContentsMargins(6, 6, 6, 6)

        task_w = QWidget(body)
        form = QFormLayout(task_w)
        form.setContentsMargins(0, 0, 0, 0)
        self.task_combo = QComboBox(task_w)
        for key, label in TASK_LABELS.items():
            self.task_combo.addItem(label, key)
        self.task_combo.setToolTip("What is wrong with the photo: noise, too few pixels, or holes to fill")
        self.factor_combo = QComboBox(task_w)
        for f in FACTORS:
            self.factor_combo.addItem(f"×{f}", f)
        self.factor_combo.setCurrentIndex(FACTORS.index(4))
        self.factor_combo.setToolTip("Super-resolution: how many times larger the result is")
        self.preset_combo = QComboBox(task_w)
        self.preset_combo.setToolTip("The paper's settings for this kind of damage")
        self.reset_button = QPushButton("Reset to preset", task_w)
        self.reset_button.setToolTip("Put every setting back to the chosen preset")
        row = QHBoxLayout()
        row.addWidget(self.preset_combo, 1)
        row.addWidget(self.reset_button)
        form.addRow("Task", self.task_combo)
        form.addRow("Scale", self.factor_combo)
        form.addRow("Preset", row)
        self.device_combo = QComboBox(task_w)
        devices = available_devices()
        self.device_combo.addItem(f"Auto ({devices[0]})", "auto")
        for d in devices:
            self.device_combo.addItem(d.upper() if d != "mps" else "Apple GPU (MPS)", d)
        self.device_combo.setToolTip("Where the network runs; devices found on this machine: " + ", ".join(devices))
        form.addRow("Device", self.device_combo)
        lay.addWidget(_box("Task", task_w, body))

        self.prior_form = VariantForm(PRIORS, "Network", body)
        lay.addWidget(_box("Prior (the untrained network)", self.prior_form, body))
        params = {p.name: p for p in RUN_PARAMS}
        ordered = [params[n] for n in _RUN_ORDER if n in params]
        ordered += [p for p in RUN_PARAMS if p.name not in _RUN_ORDER and p.name != "device"]
        self.run_form = ParamForm(ordered, body, visible=4)
        lay.addWidget(_box("Optimisation", self.run_form, body))
        stop_w = QWidget(body)
        stop_lay = QVBoxLayout(stop_w)
        stop_lay.setContentsMargins(0, 0, 0, 0)
        self.stop_form = VariantForm(STOPPING_RULES, "Rule", stop_w)
        self.auto_stop = QCheckBox("Auto stop (stop when the rule fires; off = only mark its pick)", stop_w)
        self.auto_stop.setChecked(True)
        stop_lay.addWidget(self.stop_form)
        stop_lay.addWidget(self.auto_stop)
        lay.addWidget(_box("Stopping rule", stop_w, body))
        self.loss_form = VariantForm(LOSS_PRIORS, "Network", body, allow_none=True)
        lay.addWidget(_box("Random-weights loss prior", self.loss_form, body))
        speed_w = QWidget(body)
        speed_lay = QVBoxLayout(speed_w)
        speed_lay.setContentsMargins(0, 0, 0, 0)
        self.speed_form = ParamForm(SPEED_PARAMS, speed_w, visible=2)
        self.speed_note = QLabel(speed_w)  # what 'auto' turns on here, in words
        self.speed_note.setWordWrap(True)
        self.speed_note.setStyleSheet("color: palette(mid); font-size: small;")
        speed_lay.addWidget(self.speed_form)
        speed_lay.addWidget(self.speed_note)
        lay.addWidget(_box("Speed", speed_w, body))
        lay.addStretch(1)
        self.setWidget(body)

        self.task_combo.currentIndexChanged.connect(self._on_task)
        self.factor_combo.currentIndexChanged.connect(self._on_task)
        self.preset_combo.activated.connect(self._on_preset_chosen)
        self.reset_button.clicked.connect(self.reset_to_preset)
        for w in (self.prior_form, self.run_form, self.stop_form, self.loss_form, self.speed_form):
            w.changed.connect(self.changed)
        self.auto_stop.toggled.connect(self.changed)
        self.device_combo.currentIndexChanged.connect(self.changed)
        self.speed_form.changed.connect(self._update_speed_note)
        self.device_combo.currentIndexChanged.connect(self._update_speed_note)
        self.stop_form.set_variant(DEFAULT_STOP)
        self._hole_fraction: float | None = None
        self._fill_presets()
        self.apply_preset(self.preset_combo.currentText())
        self._update_speed_note()

    def _update_speed_note(self, *_: object) -> None:
        try:
            speed = SpeedConfig(**self.speed_form.values())
            self.speed_note.setText(speed_summary(speed, resolve_device(self.device_combo.currentData())))
        except RwguiError:
            self.speed_note.setText("")  # an invalid field is already marked in red by the form

    # ----- reading and writing -----------------------------------------------------------------------
    def task(self) -> str:
        return self.task_combo.currentData()

    def factor(self) -> int:
        return int(self.factor_combo.currentData())

    def config(self) -> RunConfig:
        """A validated snapshot of every setting; raises ConfigError naming the bad field."""
        prior, prior_params = self.prior_form.variant()
        stop, stop_params = self.stop_form.variant()
        loss, loss_params = self.loss_form.variant()
        values: dict[str, Any] = dict(self.run_form.values())
        return RunConfig(
            task=self.task(),
            preset=self.preset_combo.currentText(),
            factor=self.factor(),
            prior=prior,
            prior_params=prior_params,
            stop=stop,
            stop_params=stop_params,
            auto_stop=self.auto_stop.isChecked(),
            loss_prior=loss,
            loss_prior_params=loss_params,
            device=self.device_combo.currentData(),
            speed=SpeedConfig(**self.speed_form.values()),
            **values,
        ).validated()

    def set_config(self, cfg: RunConfig) -> None:
        """Show ``cfg`` in every form (a loaded settings file, a preset, a test)."""
        cfg = cfg.validated()
        self.speed_form.set_values(dataclasses.asdict(cfg.speed))
        for combo, value in ((self.task_combo, cfg.task), (self.factor_combo, cfg.factor)):
            i = combo.findData(value)
            if i >= 0:
                combo.blockSignals(True)
                combo.setCurrentIndex(i)
                combo.blockSignals(False)
        self._fill_presets(cfg.preset)
        self.prior_form.set_variant(cfg.prior, cfg.prior_params)
        self.run_form.set_values({p.name: getattr(cfg, p.name) for p in self.run_form.params()})
        self.stop_form.set_variant(cfg.stop, cfg.stop_params)
        self.auto_stop.setChecked(cfg.auto_stop)
        self.loss_form.set_variant(cfg.loss_prior, cfg.loss_prior_params)
        i = self.device_combo.findData(cfg.device)
        self.device_combo.setCurrentIndex(i if i >= 0 else 0)
        self.factor_combo.setEnabled(cfg.task == "sr")
        self._update_speed_note()
        self.changed.emit()

    def apply_preset(self, name: str) -> None:
        """The preset's settings, keeping the person's stopping rule, loss prior and device."""
        try:
            current = self.config()
            keep = {k: getattr(current, k) for k in _KEEP_ON_PRESET}
        except Exception:
            keep = {}
        self.set_config(preset(name, **keep))

    def reset_to_preset(self) -> None:
        self.apply_preset(self.preset_combo.currentText())

    def set_hole_fraction(self, fraction: float | None) -> None:
        """Inpainting: many scattered holes call for the 'inpaint-pixels' preset."""
        self._hole_fraction = fraction

    def set_task(self, task: str, factor: int | None = None) -> None:
        """Choose a task (and factor) as the person would: re-applies the task's preset."""
        if factor is not None:
            self.factor_combo.blockSignals(True)
            self.factor_combo.setCurrentIndex(self.factor_combo.findData(factor))
            self.factor_combo.blockSignals(False)
        i = self.task_combo.findData(task)
        if i == self.task_combo.currentIndex():
            self._on_task()
        else:
            self.task_combo.setCurrentIndex(i)

    # ----- internals ---------------------------------------------------------------------------------
    def _fill_presets(self, select: str | None = None) -> None:
        task = self.task()
        names = [n for n, p in PRESETS.items() if p["task"] == task]
        default = select if select in names else preset_name(task, self.factor(), self._hole_fraction)
        self.preset_combo.blockSignals(True)
        self.preset_combo.clear()
        self.preset_combo.addItems(names)
        self.preset_combo.setCurrentIndex(max(0, names.index(default) if default in names else 0))
        self.preset_combo.blockSignals(False)

    def _on_task(self, *_: Any) -> None:
        task = self.task()
        self.factor_combo.setEnabled(task == "sr")
        self._fill_presets()
        name = self.preset_combo.currentText()
        if task == "sr":
            self.factor_combo.blockSignals(True)
            self.factor_combo.setCurrentIndex(self.factor_combo.findData(PRESETS[name].get("factor", 4)))
            self.factor_combo.blockSignals(False)
        self.apply_preset(name)
        self.task_changed.emit(task)

    def _on_preset_chosen(self, _index: int) -> None:
        name = self.preset_combo.currentText()
        if self.task() == "sr":
            self.factor_combo.blockSignals(True)
            self.factor_combo.setCurrentIndex(self.factor_combo.findData(PRESETS[name].get("factor", 4)))
            self.factor_combo.blockSignals(False)
            self.apply_preset(name)
            self.task_changed.emit(self.task())
        else:
            self.apply_preset(name)
