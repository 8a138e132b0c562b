"""Parameter forms generated from the registries' specs (``rwgui.core.params.Param``).

One spec feeds the form, the CLI and the JSON config, so a new variant or setting needs no GUI code. A
parameter with ``choices`` (a choice, or a number limited to a few values) is a combo box.
Values leave a form only through ``Param.coerce``: what the form returns is what the engine accepts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from PySide6.QtCore import QEvent, QObject, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QPalette, QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import ConfigError
from ..core.params import Param, Registry

__all__ = ["ParamForm", "VariantForm", "guard_wheel", "hint_style", "human_label"]

_ACRONYMS = {"lr": "LR", "tv": "TV", "sr": "SR", "ema": "EMA", "psnr": "PSNR", "ssim": "SSIM", "sure": "SURE"}
_INT32 = 2**31 - 1
_FLOAT_TEXT = re.compile(r"^\s*[+-]?(\d*\.?\d*)([eE][+-]?\d*)?\s*$")
_INVALID_STYLE = "border: 1px solid #e0524f; background-color: rgba(224, 82, 79, 40);"


def human_label(name: str) -> str:
    """``channels_down`` -> ``Channels down``; ``lr`` -> ``LR``."""
    words = [_ACRONYMS.get(w, w) for w in name.split("_") if w]
    if words and words[0] == words[0].lower():
        words[0] = words[0][:1].upper() + words[0][1:]
    return " ".join(words)


class _WheelGuard(QObject):
    """Spin boxes and combos ignore the wheel unless focused, so scrolling a dock changes no value."""

    def eventFilter(self, obj, ev) -> bool:
        if ev.type() == QEvent.Type.Wheel and not obj.hasFocus():
            # hand the wheel to the enclosing scroll area ourselves: Qt passes an ignored wheel event on to the
            # parent only when it came from the window system, not when it was posted or sent
            from PySide6.QtWidgets import QAbstractScrollArea, QApplication

            area = obj.parentWidget()
            while area is not None and not isinstance(area, QAbstractScrollArea):
                area = area.parentWidget()
            if area is not None:
                QApplication.sendEvent(area.verticalScrollBar(), ev)
            ev.accept()
            return True
        return False


def guard_wheel(*widgets: QWidget) -> None:
    """Let the wheel scroll the panel over these spin boxes and combos unless one is focused (click it first)."""
    for w in widgets:
        w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        guard = _WheelGuard(w)
        w.installEventFilter(guard)


def hint_style(palette: QPalette | None = None) -> str:
    """A style sheet for small hint text: the text colour mixed 35 % towards the background, so it reads as
    secondary yet keeps a contrast of about 4.5:1 or more in light and dark themes (``palette(mid)``, used
    before, was barely visible on a light window)."""
    from PySide6.QtWidgets import QApplication

    pal = palette if palette is not None else QApplication.palette()
    fg, bg = pal.color(QPalette.ColorRole.WindowText), pal.color(QPalette.ColorRole.Window)
    rgb = lambda c: (c.red(), c.green(), c.blue())  # getRgb() is typed as returning object
    mix = QColor(*(round(0.65 * a + 0.35 * b) for a, b in zip(rgb(fg), rgb(bg))))
    return f"color: {mix.name()}; font-size: small;"


class _FloatSpin(QDoubleSpinBox):
    """A float spin box that shows ``%g`` text, accepts scientific notation in any locale, steps
    1-2-5 per decade for ``log`` params, and returns the exact value it was given until edited."""

    def __init__(self, p: Param, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._log = p.log
        self._exact: float | None = None
        self.setDecimals(12)
        self.setRange(p.min if p.min is not None else -1e12, p.max if p.max is not None else 1e12)
        ref = abs(float(p.default)) or (p.max or 1.0)
        self.setSingleStep(10 ** math.floor(math.log10(ref)) / 10 if ref > 0 else 0.1)

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        try:
            v = float(text.strip())
        except ValueError:
            state = QValidator.State.Intermediate if _FLOAT_TEXT.match(text) else QValidator.State.Invalid
            return state, text, pos
        ok = self.minimum() <= v <= self.maximum()
        return (QValidator.State.Acceptable if ok else QValidator.State.Intermediate), text, pos

    def stepBy(self, steps: int) -> None:
        v = self.value()
        if not self._log or v <= 0:
            super().stepBy(steps)
            return
        ladder = [m * 10.0**e for e in range(-12, 13) for m in (1, 2, 5)]
        i = min(range(len(ladder)), key=lambda k: abs(math.log(ladder[k] / v)))
        self.setValue(ladder[max(0, min(len(ladder) - 1, i + steps))])

    def set_exact(self, value: float) -> None:
        self._exact = float(value)
        self.setValue(self._exact)

    def exact(self) -> float:
        v = self.value()
        if self._exact is not None and abs(v - self._exact) <= 10 ** -self.decimals() * 2:
            return self._exact
        return v


class ParamForm(QWidget):
    """One editor per Param in a QFormLayout; beyond ``visible`` rows the rest fold under "More…".

    ``changed`` fires after each valid edit (invalid line-edit text marks the field red instead),
    and once after ``set_values``/``reset``.
    """

    changed = Signal()

    def __init__(
        self, params: Sequence[Param], parent: QWidget | None = None, *, visible: int = 6, owner: str = ""
    ) -> None:
        super().__init__(parent)
        self._params = tuple(params)
        self._owner = owner
        self._editors: dict[str, QWidget] = {}
        self._updating = False
        self._wheel_guard = _WheelGuard(self)
        self._layout = QFormLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        fold = len(self._params) > visible + 1
        self._more: QToolButton | None = None
        self._folded_rows: list[int] = []
        for i, p in enumerate(self._params):
            if fold and i == visible:
                self._more = QToolButton(self)
                self._more.setCheckable(True)
                self._more.setAutoRaise(True)
                self._more.setStyleSheet("QToolButton { border: none; }")
                self._more.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
                self._more.toggled.connect(self._on_more_toggled)
                self._layout.addRow(self._more)
            editor = self._make_editor(p)
            editor.setToolTip(p.help)
            label = QLabel(human_label(p.name), self)
            label.setToolTip(p.help)
            label.setBuddy(editor)
            self._layout.addRow(label, editor)
            self._editors[p.name] = editor
            if fold and i >= visible:
                self._folded_rows.append(self._layout.rowCount() - 1)
        self.set_values({p.name: p.default for p in self._params}, emit=False)
        if self._more is not None:
            self._on_more_toggled(False)

    # -- public API ------------------------------------------------------------------------------
    def params(self) -> tuple[Param, ...]:
        return self._params

    def editor(self, name: str) -> QWidget:
        return self._editors[name]

    def values(self) -> dict[str, Any]:
        """Coerced values; raises ConfigError for the first invalid field (all invalid ones turn red)."""
        out: dict[str, Any] = {}
        first: ConfigError | None = None
        for p in self._params:
            try:
                out[p.name] = p.coerce(self._raw(p), self._owner)
                self._mark(p, None)
            except ConfigError as exc:
                self._mark(p, str(exc))
                first = first or exc
        if first is not None:
            raise first
        return out

    def set_values(self, values: Mapping[str, Any], emit: bool = True) -> None:
        """Show ``values`` (names not in this form are ignored); all are checked before any is shown."""
        known = {p.name: p for p in self._params}
        coerced = {k: known[k].coerce(v, self._owner) for k, v in values.items() if k in known}
        self._updating = True
        try:
            for name, value in coerced.items():
                editor = self._editors[name]
                with QSignalBlocker(editor):
                    self._show(known[name], editor, value)
                self._mark(known[name], None)
        finally:
            self._updating = False
        if emit:
            self.changed.emit()

    def reset(self) -> None:
        self.set_values({p.name: p.default for p in self._params})

    def is_invalid(self, name: str) -> bool:
        return bool(self._editors[name].property("invalid"))

    def expanded(self) -> bool:
        return self._more is None or self._more.isChecked()

    def set_expanded(self, on: bool) -> None:
        if self._more is not None:
            self._more.setChecked(on)

    # -- editors ---------------------------------------------------------------------------------
    def _make_editor(self, p: Param) -> QWidget:
        w: QWidget
        if p.choices:  # a choice, or a number limited to a few values: a combo of them
            combo = QComboBox(self)
            combo.addItems([str(c) for c in p.choices])
            combo.currentIndexChanged.connect(self._on_edited)
            w = combo
        elif p.kind == "int":
            spin = QSpinBox(self)
            lo = -_INT32 if p.min is None else max(-_INT32, int(math.ceil(p.min)))
            hi = _INT32 if p.max is None else min(_INT32, int(math.floor(p.max)))
            spin.setRange(lo, hi)
            spin.setAccelerated(True)
            spin.valueChanged.connect(self._on_edited)
            w = spin
        elif p.kind == "float":
            fspin = _FloatSpin(p, self)
            fspin.valueChanged.connect(self._on_edited)
            w = fspin
        elif p.kind == "bool":
            check = QCheckBox(self)
            check.toggled.connect(self._on_edited)
            w = check
        else:  # ints, str
            line = QLineEdit(self)
            if p.kind == "ints":
                # one value for every scale or one per scale: a list a spin box cannot hold; as tall as the spin
                # boxes beside it, and text that is no list of integers is marked (see _on_text_edited)
                line.setPlaceholderText("e.g. 128 or 16, 32, 64")
                line.setMinimumHeight(QSpinBox().sizeHint().height())
            line.textEdited.connect(self._on_text_edited)
            w = line
        if isinstance(w, (QSpinBox, QDoubleSpinBox, QComboBox)):
            w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            w.installEventFilter(self._wheel_guard)
        w.setObjectName(p.name)
        return w

    def _raw(self, p: Param) -> Any:
        w = self._editors[p.name]
        if isinstance(w, _FloatSpin):
            return w.exact()
        if isinstance(w, QSpinBox):
            return w.value()
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QComboBox):
            return w.currentText()
        return cast(QLineEdit, w).text()  # the only other editor _make_editor makes

    def _show(self, p: Param, w: QWidget, value: Any) -> None:
        if isinstance(w, _FloatSpin):
            w.set_exact(value)
        elif isinstance(w, QSpinBox):
            w.setValue(value)
        elif isinstance(w, QCheckBox):
            w.setChecked(value)
        elif isinstance(w, QComboBox):
            w.setCurrentIndex(w.findText(str(value)))
        elif p.kind == "ints":
            cast(QLineEdit, w).setText(", ".join(str(v) for v in value))
        else:
            cast(QLineEdit, w).setText(value)

    def _mark(self, p: Param, error: str | None) -> None:
        w = self._editors[p.name]
        if bool(w.property("invalid")) == (error is not None) and error is None:
            return
        w.setProperty("invalid", error is not None)
        w.setStyleSheet(_INVALID_STYLE if error else "")
        w.setToolTip(f"{p.help}\n\n{error}" if error else p.help)

    # -- slots -----------------------------------------------------------------------------------
    def _on_edited(self, *_: Any) -> None:
        if not self._updating:
            self.changed.emit()

    def _on_text_edited(self, _text: str) -> None:
        name = self.sender().objectName()
        p = next(q for q in self._params if q.name == name)
        try:
            p.coerce(self._raw(p), self._owner)
        except ConfigError as exc:
            self._mark(p, str(exc))
            return
        self._mark(p, None)
        self._on_edited()

    def _on_more_toggled(self, on: bool) -> None:
        assert self._more is not None
        self._more.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self._more.setText("Fewer" if on else f"More… ({len(self._folded_rows)})")
        for row in self._folded_rows:
            self._layout.setRowVisible(row, on)


class VariantForm(QWidget):
    """A choice of registry variant plus its ParamForm; each variant keeps its edits while switching."""

    changed = Signal()
    NONE = "none"

    def __init__(
        self, registry: Registry[Any], title: str, parent: QWidget | None = None, allow_none: bool = False
    ) -> None:
        super().__init__(parent)
        self._registry = registry
        self._forms: dict[str, ParamForm] = {}
        self._current: str | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        top = QFormLayout()
        top.setContentsMargins(0, 0, 0, 0)
        self._combo = QComboBox(self)
        self._combo.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._combo.installEventFilter(_WheelGuard(self))
        if allow_none:
            self._combo.addItem(self.NONE)
            self._combo.setItemData(0, f"No {registry.kind}.", Qt.ItemDataRole.ToolTipRole)
        for v in registry:
            self._combo.addItem(v.name)
            self._combo.setItemData(self._combo.count() - 1, v.help, Qt.ItemDataRole.ToolTipRole)
        top.addRow(title, self._combo)
        layout.addLayout(top)
        self._help = QLabel(self)
        self._help.setWordWrap(True)
        self._help.setStyleSheet(hint_style())
        layout.addWidget(self._help)
        self._host = QVBoxLayout()
        self._host.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._host)
        self._combo.currentTextChanged.connect(self._on_choice)
        self._show(self._combo.currentText())

    # -- public API ------------------------------------------------------------------------------
    def variant(self) -> tuple[str, dict[str, Any]]:
        """(name, fully resolved params); ("none", {}) for the empty choice. Raises ConfigError."""
        name = self._combo.currentText()
        if name == self.NONE and name not in self._registry:
            return name, {}
        return name, self._registry.get(name).resolve(self._forms[name].values())

    def set_variant(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        """Choose ``name`` and show ``params`` over its defaults; unknown names or values raise ConfigError."""
        if self._combo.findText(name) < 0:
            self._registry.get(name)  # raises ConfigError listing the choices
        resolved = {} if name == self.NONE and name not in self._registry else self._registry.get(name).resolve(params)
        with QSignalBlocker(self._combo):
            self._combo.setCurrentIndex(self._combo.findText(name))
        self._show(name)
        form = self._forms.get(name)
        if form is not None:
            form.set_values(resolved, emit=False)
        self.changed.emit()

    def reset(self) -> None:
        """Every variant's parameters back to their defaults; the choice stays."""
        for form in self._forms.values():
            form.set_values({p.name: p.default for p in form.params()}, emit=False)
        self.changed.emit()

    def current_form(self) -> ParamForm | None:
        return self._forms.get(self._combo.currentText())

    def combo(self) -> QComboBox:
        return self._combo

    # -- internals -------------------------------------------------------------------------------
    def _show(self, name: str) -> None:
        if name == self._current:
            return
        old = self._forms.get(self._current or "")
        if old is not None:
            old.hide()
        self._current = name
        if name == self.NONE and name not in self._registry:
            self._help.setText(f"No {self._registry.kind}.")
            return
        variant = self._registry.get(name)
        self._help.setText(variant.help)
        form = self._forms.get(name)
        if form is None:
            form = ParamForm(variant.params, self, owner=name)
            form.changed.connect(self._on_form_changed)
            self._host.addWidget(form)
            self._forms[name] = form
        form.show()

    def _on_choice(self, name: str) -> None:
        self._show(name)
        self.changed.emit()

    def _on_form_changed(self) -> None:
        self.changed.emit()
