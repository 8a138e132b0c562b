"""The Lab's left column: what variant to add, and the settings every variant of a queue run shares."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QSpinBox,
    QWidget,
)

from ..core.config import RunConfig
from ..core.params import Registry
from ..core.priors import PRIORS
from ..core.stopping import STOPPING_RULES
from .lab_model import NONE, TV, default_weight, loss_choices

__all__ = ["VariantBox", "RunBox"]


class VariantBox(QGroupBox):
    """Three registry choices plus λ; the choices start at the main window's settings."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Variant", parent)
        self._base = RunConfig()
        self.prior_combo = QComboBox(self)
        self.prior_combo.addItems(PRIORS.names())
        self.loss_combo = QComboBox(self)
        self.loss_combo.addItems(loss_choices())
        self.loss_combo.setToolTip("The regulariser: a random-weights loss prior, total variation (tv), or none.")
        self.weight_spin = QDoubleSpinBox(self)
        self.weight_spin.setDecimals(4)
        self.weight_spin.setRange(0.0, 100.0)
        self.weight_spin.setSingleStep(0.01)
        self.weight_spin.setToolTip("λ: weight of the regulariser against the data term.")
        self.stop_combo = QComboBox(self)
        self.stop_combo.addItems(STOPPING_RULES.names())
        registries: tuple[tuple[QComboBox, Registry[Any]], ...] = (
            (self.prior_combo, PRIORS),
            (self.stop_combo, STOPPING_RULES),
        )
        for combo, reg in registries:
            for i, v in enumerate(reg):
                combo.setItemData(i, v.help, Qt.ItemDataRole.ToolTipRole)
        self.loss_combo.currentTextChanged.connect(self._on_loss_changed)
        self.add_button = QPushButton("Add to queue", self)
        form = QFormLayout(self)
        form.addRow("Prior", self.prior_combo)
        form.addRow("Loss prior", self.loss_combo)
        form.addRow("Weight λ", self.weight_spin)
        form.addRow("Stopping", self.stop_combo)
        form.addRow(self.add_button)
        self._on_loss_changed(self.loss_combo.currentText())

    def set_base(self, base: RunConfig) -> None:
        self._base = base
        self.prior_combo.setCurrentText(base.prior)
        self.stop_combo.setCurrentText(base.stop)
        loss = base.loss_prior if base.loss_prior != NONE else (TV if base.tv_weight > 0 else NONE)
        self.loss_combo.setCurrentText(loss)
        self._on_loss_changed(loss)

    def current(self) -> tuple[str, str, float, str]:
        """(prior, regulariser, λ, stopping rule)."""
        return (
            self.prior_combo.currentText(),
            self.loss_combo.currentText(),
            self.weight_spin.value(),
            self.stop_combo.currentText(),
        )

    def _on_loss_changed(self, name: str) -> None:
        self.weight_spin.setEnabled(name != NONE)
        self.weight_spin.setValue(default_weight(name, self._base))


class RunBox(QGroupBox):
    """Iteration budget, seed and auto stop shared by every variant, and the Run / Stop buttons."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Every variant runs with", parent)
        self.iterations_spin = QSpinBox(self)
        self.iterations_spin.setRange(1, 1_000_000)
        self.iterations_spin.setToolTip("The same iteration budget for every variant.")
        self.seed_spin = QSpinBox(self)
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("The same seed for every variant: only the variant's choices differ.")
        self.auto_stop_check = QCheckBox("End a run at its stopping rule", self)
        self.run_button = QPushButton("Run queue", self)
        self.run_button.setToolTip(
            "Runs every variant that has no result under these settings yet (all of them when each already has one)."
        )
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setToolTip("Stops the running variant and the rest of the queue.")
        form = QFormLayout(self)
        form.addRow("Iterations", self.iterations_spin)
        form.addRow("Seed", self.seed_spin)
        form.addRow(self.auto_stop_check)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        form.addRow(buttons)

    def set_base(self, base: RunConfig) -> None:
        self.iterations_spin.setValue(base.iterations)
        self.seed_spin.setValue(base.seed)
        self.auto_stop_check.setChecked(base.auto_stop)

    def settings(self) -> dict[str, Any]:
        return {
            "iterations": self.iterations_spin.value(),
            "seed": self.seed_spin.value(),
            "auto_stop": self.auto_stop_check.isChecked(),
        }

    def set_running(self, running: bool, can_run: bool) -> None:
        self.run_button.setEnabled(not running and can_run)
        self.stop_button.setEnabled(running)
        for w in (self.iterations_spin, self.seed_spin, self.auto_stop_check):
            w.setEnabled(not running)
