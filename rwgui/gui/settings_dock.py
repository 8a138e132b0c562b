"""The "Restoration" settings panel: task, preset, prior, run parameters, stopping rule, loss prior, device.

Every form is generated from a registry's parameter spec (``rwgui.gui.forms``); this panel only arranges
them and turns them into one validated :class:`~rwgui.core.config.RunConfig` when Start is pressed.
Choosing a task (or a super-resolution factor), a preset, or "Reset to preset" applies that preset entirely
(prior and its parameters, loss prior, stopping rule, run settings): the window starts from the same
:func:`~rwgui.core.config.preset` as the CLI and the Lab. Only the machine's settings (device, speed) survive.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLayout,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..core import autotune
from ..core.config import (
    MACHINE_SETTINGS,
    PRESETS,
    RUN_PARAMS,
    SPEED_PARAMS,
    SR_FACTORS,
    RunConfig,
    SpeedConfig,
    preset,
    preset_name,
)
from ..core.device import available_devices, keep_device_queries_off_this_thread, resolve_device, speed_summary
from ..core.errors import RwguiError
from ..core.lossprior import LOSS_PRIORS
from ..core.priors import PRIORS
from ..core.stopping import STOPPING_RULES
from ..core.tasks import TASK_SPECS, task_spec
from ..core.vocabulary import Task
from .estimate_view import StartArea
from .forms import ParamForm, VariantForm, guard_wheel, hint_style

__all__ = ["SettingsPanel", "TASK_LABELS"]

#: The task list comes from the task registry (rwgui.core.tasks): a new task needs no code here.
TASK_LABELS = {t: spec.label for t, spec in TASK_SPECS.items()}
#: Why the pre-image entry is disabled until a classifier's weights are known.
NEEDS_WEIGHTS = (
    "Needs a classifier's weights (a torchvision AlexNet or VGG state dict): File > Classifier weights…, "
    "or start the studio with --weights PATH. Nothing is downloaded."
)


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
        keep_device_queries_off_this_thread()  # the Speed box's summary must not start CUDA on the GUI thread
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget(self)
        lay = QVBoxLayout(body)
        lay.setContentsMargins(6, 6, 6, 6)

        # Start, Preview, the time budget and the run's estimate under them (rwgui.gui.estimate_view)
        self.start_area = StartArea(body)
        lay.addWidget(self.start_area)

        task_w = QWidget(body)
        form = QFormLayout(task_w)
        form.setContentsMargins(0, 0, 0, 0)
        self.task_combo = QComboBox(task_w)
        self._weights = ""  # the classifier weights the pre-image task uses (set_classifier_weights)
        for key, label in TASK_LABELS.items():
            self.task_combo.addItem(label, key)
            self.task_combo.setItemData(self.task_combo.count() - 1, TASK_SPECS[key].help, Qt.ItemDataRole.ToolTipRole)
        self._enable_weight_tasks()
        self.task_combo.setToolTip("What is wrong with the photo (hover an entry for what it does)")
        self.factor_combo = QComboBox(task_w)
        for f in SR_FACTORS:
            self.factor_combo.addItem(f"×{f}", f)
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
        guard_wheel(self.task_combo, self.factor_combo, self.preset_combo, self.device_combo)
        form.addRow("Device", self.device_combo)
        lay.addWidget(_box("Task", task_w, body))
        # the task's own parameters (the deblur kernel, the pre-image's weights), a form made from its spec
        self.task_form = ParamForm((), body)
        self.task_params_box = _box("Task parameters", QWidget(body), body)
        self._task_params_layout = cast(QLayout, self.task_params_box.layout())  # the one _box gave it
        self._task_params_layout.addWidget(self.task_form)
        lay.addWidget(self.task_params_box)

        self.prior_form = VariantForm(PRIORS, "Network", body)
        lay.addWidget(_box("Prior (the untrained network)", self.prior_form, body))
        # RunConfig's field order is the form's; the device has its own combo above
        self.run_form = ParamForm([p for p in RUN_PARAMS if p.name != "device"], body, visible=4)
        lay.addWidget(_box("Optimisation", self.run_form, body))
        stop_w = QWidget(body)
        stop_lay = QVBoxLayout(stop_w)
        stop_lay.setContentsMargins(0, 0, 0, 0)
        self.stop_form = VariantForm(STOPPING_RULES, "Rule", stop_w)
        self.auto_stop = QCheckBox("Auto stop (stop when the rule fires; off = only mark its pick)", stop_w)
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
        self.speed_note.setStyleSheet(hint_style())
        # forgets the measured choices; the next run measures again, in its worker (never on this thread)
        self.remeasure_button = QPushButton("Re-measure", speed_w)
        self.remeasure_button.setToolTip(
            "Forget the speed settings measured on this machine: the next run times the candidates again "
            "(after a hardware or driver change, or when the machine is much busier or idler than it was)."
        )
        self.remeasure_button.clicked.connect(self._remeasure)
        speed_lay.addWidget(self.speed_form)
        speed_lay.addWidget(self.speed_note)
        speed_lay.addWidget(self.remeasure_button, 0, Qt.AlignmentFlag.AlignLeft)
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
        self._hole_fraction: float | None = None
        self._fill_presets()
        self.apply_preset(self.preset_combo.currentText())
        self._update_speed_note()

    def _remeasure(self) -> None:
        """Forget the cached choices (a file removed: no timing here, on the GUI thread)."""
        autotune.forget()
        self._update_speed_note()
        self.speed_note.setText(self.speed_note.text() + " Forgotten: the next run measures again.")

    def _update_speed_note(self, *_: object) -> None:
        try:
            speed = SpeedConfig(**self.speed_form.values())
            self.speed_note.setText(speed_summary(speed, resolve_device(self.device_combo.currentData())))
        except RwguiError:
            self.speed_note.setText("")  # an invalid field is already marked in red by the form

    # ----- reading and writing -----------------------------------------------------------------------
    def task(self) -> Task:
        return Task(self.task_combo.currentData())

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
            task_params=self.task_form.values(),
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
                with QSignalBlocker(combo):
                    combo.setCurrentIndex(i)
        self._fill_presets(cfg.preset)
        self._show_task_form(cfg.task, cfg.task_params)
        self.prior_form.set_variant(cfg.prior, cfg.prior_params)
        self.run_form.set_values({p.name: getattr(cfg, p.name) for p in self.run_form.params()})
        self.stop_form.set_variant(cfg.stop, cfg.stop_params)
        self.auto_stop.setChecked(cfg.auto_stop)
        self.loss_form.set_variant(cfg.loss_prior, cfg.loss_prior_params)
        i = self.device_combo.findData(cfg.device)
        self.device_combo.setCurrentIndex(i if i >= 0 else 0)
        self.factor_combo.setEnabled(cfg.task == Task.SR)
        self._update_speed_note()
        self.changed.emit()

    def apply_preset(self, name: str) -> None:
        """Every setting the preset names (all but the machine's: device and speed, which are kept)."""
        try:
            current = self.config()
            keep = {k: getattr(current, k) for k in MACHINE_SETTINGS}
        except RwguiError:  # an invalid field: the preset replaces it, the machine's settings start afresh
            keep = {}
        self.set_config(preset(name, **keep))

    def reset_to_preset(self) -> None:
        """Undo every edit since the preset was chosen (its stopping rule and loss prior too)."""
        self.apply_preset(self.preset_combo.currentText())

    def set_hole_fraction(self, fraction: float | None) -> None:
        """Inpainting: many scattered holes call for the 'inpaint-pixels' preset."""
        self._hole_fraction = fraction

    def set_task(self, task: str, factor: int | None = None) -> None:
        """Choose a task (and factor) as the person would: re-applies the task's preset."""
        if factor is not None:
            with QSignalBlocker(self.factor_combo):
                self.factor_combo.setCurrentIndex(self.factor_combo.findData(factor))
        i = self.task_combo.findData(task)
        if i == self.task_combo.currentIndex():
            self._on_task()
        else:
            self.task_combo.setCurrentIndex(i)

    def set_classifier_weights(self, path: str) -> None:
        """The pre-image task's weights file: enables its entry and fills its form."""
        self._weights = str(path)
        self._enable_weight_tasks()
        if self.task() == Task.PREIMAGE:
            self._show_task_form(self.task(), {**self.task_form.values(), "weights": self._weights})
            self.changed.emit()

    # ----- internals ---------------------------------------------------------------------------------
    def _enable_weight_tasks(self) -> None:
        """A task that needs classifier weights is a disabled entry, with the reason as its tooltip, until
        weights are known."""
        model = self.task_combo.model()
        for i in range(self.task_combo.count()):
            spec = TASK_SPECS[Task(self.task_combo.itemData(i))]
            if not spec.requires_weights:
                continue
            item = model.item(i) if hasattr(model, "item") else None
            if item is not None:
                item.setEnabled(bool(self._weights))
            tip = spec.help if self._weights else NEEDS_WEIGHTS
            self.task_combo.setItemData(i, tip, Qt.ItemDataRole.ToolTipRole)

    def _show_task_form(self, task: Task, values: Any = None) -> None:
        """The form of ``task``'s parameters (hidden when it has none)."""
        params = task_spec(task).params
        values = dict(values or {})
        if task_spec(task).requires_weights and not values.get("weights") and self._weights:
            values["weights"] = self._weights
        if tuple(self.task_form.params()) != tuple(params):
            old = self.task_form
            self.task_form = ParamForm(params, self.task_params_box, visible=5)
            self._task_params_layout.replaceWidget(old, self.task_form)
            old.deleteLater()
            self.task_form.changed.connect(self.changed)
        if values:
            self.task_form.set_values(values, emit=False)
        self.task_params_box.setVisible(bool(params))
        self.task_params_box.setTitle(f"{TASK_LABELS[task]}: parameters")

    def _fill_presets(self, select: str | None = None) -> None:
        task = self.task()
        names = [n for n, p in PRESETS.items() if p["task"] == task]
        default = select if select in names else preset_name(task, self.factor(), self._hole_fraction)
        with QSignalBlocker(self.preset_combo):
            self.preset_combo.clear()
            self.preset_combo.addItems(names)
            self.preset_combo.setCurrentIndex(max(0, names.index(default) if default in names else 0))

    def _on_task(self, *_: Any) -> None:
        """A new task or factor: its preset, entirely (set_config also moves the factor to the preset's)."""
        self._fill_presets()
        self.apply_preset(self.preset_combo.currentText())
        self.task_changed.emit(self.task())

    def _on_preset_chosen(self, _index: int) -> None:
        factor = self.factor()
        self.apply_preset(self.preset_combo.currentText())
        if self.factor() != factor:  # an SR preset of another factor: the result's size changes
            self.task_changed.emit(self.task())
