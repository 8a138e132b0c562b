"""The timeline of kept iterates: scrub, pin, compare two, and choose the result.

It shows an :class:`~rwgui.core.history.IterateHistory` (owned by the window): a slider over the kept
iterations and a strip of thumbnails, with the average at the rule's pick and the latest running average as two
pseudo-entries at the end. The rule's pick carries a gold badge and is the result until the person presses
"Keep this one" on another entry. "Live" follows the run; scrubbing leaves live mode. A Lab result taken into
the session is one more entry at the end.

The widget only shows the history: pinning and choosing are requests (``pin_requested``, ``choose_requested``)
that its owner hands to the session, so that the session's events (unsaved-work tracking, autosave) follow
every change the person makes; the owner syncs the strip when the session says it changed.
"""

from __future__ import annotations

import bisect

from PySide6.QtCore import QSignalBlocker, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QPainter, QPixmap, QPolygonF
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from ..core.history import AVERAGE, PICK_AVERAGE, IterateHistory, Key
from .canvas import rgba_pixmap

__all__ = ["TimelineWidget"]

KEY_ROLE = Qt.ItemDataRole.UserRole
GOLD = QColor(255, 196, 0)


def _star(p: QPainter, cx: float, cy: float, r: float, color: QColor) -> None:
    import math

    pts = [
        (
            cx + (r if i % 2 == 0 else r * 0.45) * math.sin(i * math.pi / 5),
            cy - (r if i % 2 == 0 else r * 0.45) * math.cos(i * math.pi / 5),
        )
        for i in range(10)
    ]
    from PySide6.QtCore import QPointF

    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(QColor(40, 30, 0))
    p.setBrush(QBrush(color))
    p.drawPolygon(QPolygonF([QPointF(x, y) for x, y in pts]))


def _badged(pm: QPixmap, pick: bool, pinned: bool) -> QPixmap:
    if not (pick or pinned):
        return pm
    out = QPixmap(pm)
    p = QPainter(out)
    if pick:  # the rule's pick: a gold star at the top left
        _star(p, 12, 12, 10, GOLD)
    if pinned:  # a favourite: a white star at the top right
        _star(p, out.width() - 12, 12, 9, QColor(250, 250, 250))
    p.end()
    return out


class TimelineWidget(QWidget):
    """Slider + thumbnail strip over the kept iterates of one run (oldest left; the averages at the end)."""

    viewed = Signal(object)  # a history key, or None for the live frames
    choose_requested = Signal(object)  # "Keep this one" on a key, or None = "Use rule's pick"
    compare_requested = Signal(object, object)  # (before key, after key)
    pin_requested = Signal(int, bool)  # (iteration, pin it or not)

    def __init__(self, history: IterateHistory, parent: QWidget | None = None, icon_side: int = 84) -> None:
        super().__init__(parent)
        self.history = history
        self._side = icon_side
        self._items: dict[Key, QListWidgetItem] = {}
        self._shown: dict[Key, tuple] = {}  # key -> what its item shows, to skip needless redraws
        self._its: list[int] = []
        self._current: Key | None = None

        self.live_button = QPushButton("● Live", self)
        self.live_button.setCheckable(True)
        self.live_button.setChecked(True)
        self.live_button.setToolTip("Follow the run: show each new frame as it arrives")
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, 0)
        self.slider.setToolTip("Scrub through the kept iterates")
        self.position_label = QLabel("No iterates yet — press Start", self)
        self.result_label = QLabel("", self)
        self.result_label.setStyleSheet("color: #ffc400;")

        self.strip = QListWidget(self)
        self.strip.setViewMode(QListView.ViewMode.IconMode)
        self.strip.setFlow(QListView.Flow.LeftToRight)
        self.strip.setWrapping(False)
        self.strip.setMovement(QListView.Movement.Static)
        self.strip.setResizeMode(QListView.ResizeMode.Adjust)
        self.strip.setUniformItemSizes(True)
        self.strip.setIconSize(QSize(icon_side, icon_side))
        self.strip.setGridSize(QSize(icon_side + 26, icon_side + 22))
        self.strip.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.strip.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.strip.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.strip.setFixedHeight(icon_side + 44)
        self.strip.setToolTip("Kept iterates: click to view, Ctrl+click a second one to compare")

        self.pin_button = QPushButton("☆ Pin", self)
        self.pin_button.setToolTip("Pin this iterate: pinned ones are never thinned out")
        self.compare_button = QPushButton("Compare", self)
        self.compare_button.setToolTip("Select two thumbnails (Ctrl+click), then compare them with a split view")
        self.keep_button = QPushButton("Keep this one", self)
        self.keep_button.setToolTip("Make the viewed iterate the result that Save result writes")
        self.pick_button = QPushButton("Use rule's pick", self)
        self.pick_button.setToolTip("Go back to the stopping rule's choice (the default result)")

        top = QHBoxLayout()
        top.addWidget(self.live_button)
        top.addWidget(self.slider, 1)
        top.addWidget(self.position_label)
        buttons = QVBoxLayout()
        for b in (self.keep_button, self.pick_button, self.pin_button, self.compare_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        middle = QHBoxLayout()
        middle.addWidget(self.strip, 1)
        middle.addLayout(buttons)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addLayout(middle)
        lay.addWidget(self.result_label)

        self.live_button.toggled.connect(self._on_live_toggled)
        self.slider.valueChanged.connect(self._on_slider)
        self.strip.currentItemChanged.connect(self._on_item)
        self.strip.itemSelectionChanged.connect(self._update_buttons)
        self.pin_button.clicked.connect(self._on_pin)
        self.compare_button.clicked.connect(self._on_compare)
        self.keep_button.clicked.connect(self._on_keep)
        self.pick_button.clicked.connect(self._on_use_pick)
        self._update_buttons()

    # ----- public ----------------------------------------------------------------------------------
    def clear(self) -> None:
        """Forget the items (a new run); back to live."""
        self.strip.clear()
        self._items.clear()
        self._shown.clear()
        self._its = []
        self._current = None
        with QSignalBlocker(self.slider):
            self.slider.setRange(0, 0)
        self.live_button.setChecked(True)
        self.sync()

    def current(self) -> Key | None:
        """The viewed key, or None in live mode."""
        return None if self.is_live() else self._current

    def is_live(self) -> bool:
        return self.live_button.isChecked()

    def set_live(self, on: bool = True) -> None:
        self.live_button.setChecked(on)

    def view(self, key: Key) -> None:
        """Scrub to ``key`` (leaves live mode)."""
        if key not in self.history:
            raise KeyError(key)
        self._current = key
        self.sync()
        item = self._items.get(key)
        if item is not None:
            with QSignalBlocker(self.strip):
                self.strip.setCurrentItem(item)
                self.strip.scrollToItem(item)
        self._sync_slider()
        if self.live_button.isChecked():
            with QSignalBlocker(self.live_button):
                self.live_button.setChecked(False)
        self._update_labels()
        self._update_buttons()
        self.viewed.emit(key)

    def view_nearest(self, iteration: int) -> None:
        """Scrub to the kept iterate nearest ``iteration`` (a click on the curves)."""
        if self._its:
            i = bisect.bisect_left(self._its, iteration)
            cands = [self._its[j] for j in (i - 1, i) if 0 <= j < len(self._its)]
            self.view(min(cands, key=lambda it: abs(it - iteration)))

    def sync(self) -> None:
        """Bring the strip and slider in line with the history (after adds, thinning, pins, a new pick)."""
        h = self.history
        keys = h.keys()
        keyset = set(keys)
        for key in [k for k in self._items if k not in keyset]:
            self.strip.takeItem(self.strip.row(self._items.pop(key)))
            self._shown.pop(key, None)
        for i, key in enumerate(keys):
            e = h.entry(key)
            state = (id(e.pixels), e.iteration, e.pinned, key == h.pick_iteration, key == h.result_key())
            item = self._items.get(key)
            if item is None:
                item = QListWidgetItem()
                item.setData(KEY_ROLE, key)
                item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
                self.strip.insertItem(i, item)
                self._items[key] = item
            if self._shown.get(key) != state:
                self._shown[key] = state
                self._draw(item, key)
        self._its = h.iterations()
        if self.is_live() and self.strip.count():
            self.strip.scrollToItem(self.strip.item(self.strip.count() - 1))  # follow the run: the newest
        self._sync_slider()
        self._update_labels()
        self._update_buttons()

    # ----- drawing ---------------------------------------------------------------------------------
    def _draw(self, item: QListWidgetItem, key: Key) -> None:
        h = self.history
        e = h.entry(key)
        is_pick = key == h.pick_iteration or key == PICK_AVERAGE
        result = key == h.result_key()
        if key == AVERAGE:
            text = "Average"
        elif key == PICK_AVERAGE:
            text = "Pick · avg"
        elif isinstance(key, str):  # a named entry: the Lab's result
            text = f"Lab · {e.iteration}"
        else:
            text = f"{'★ ' if e.pinned else ''}{e.iteration}{' pick' if is_pick else ''}"
        item.setText(("✓ " if result else "") + text)
        item.setToolTip(h.label(key) + ("\nthe result Save result writes" if result else ""))
        thumb = _badged(rgba_pixmap(e.thumb, self._side), is_pick, e.pinned)
        icon = QIcon(thumb)
        icon.addPixmap(thumb, QIcon.Mode.Selected)  # Qt tints a selected icon, which hides the photo's colours
        item.setIcon(icon)
        font = QFont(item.font())
        font.setBold(result)
        item.setFont(font)
        if result:
            item.setForeground(QBrush(GOLD))
        else:
            item.setData(Qt.ItemDataRole.ForegroundRole, None)

    def _sync_slider(self) -> None:
        with QSignalBlocker(self.slider):
            self.slider.setRange(0, max(0, len(self._its) - 1))
            if isinstance(self._current, int) and self._current in self.history:
                self.slider.setValue(bisect.bisect_left(self._its, self._current))
            elif self.is_live() and self._its:
                self.slider.setValue(len(self._its) - 1)

    def _update_labels(self) -> None:
        h = self.history
        n = len(h.keys())  # everything the strip shows (an average alone, a Lab result), not only raw iterates
        mb = h.memory_bytes / 2**20
        if not n:
            self.position_label.setText("No iterates yet — press Start")
        else:
            cur = self._current
            where = "live" if self.is_live() or cur is None or cur not in h else h.label(cur)
            self.position_label.setText(f"{where} · {n} kept ({mb:.0f} MB)")
        rk = h.result_key()
        if rk is None:
            self.result_label.setText("")
        else:
            whose = (
                "your choice"
                if h.chosen is not None
                else "the stopping rule's pick (default)"
                if rk == PICK_AVERAGE
                else "the running average so far: the rule has no pick yet"
                if rk == AVERAGE
                else "the latest iterate: the rule has no pick yet"
            )
            self.result_label.setText(f"Result: {h.label(rk)} — {whose}")

    def _update_buttons(self) -> None:
        key = self.current()
        self.keep_button.setEnabled(key is not None)
        self.pin_button.setEnabled(isinstance(key, int))
        self.pin_button.setText("★ Unpin" if isinstance(key, int) and self.history.is_pinned(key) else "☆ Pin")
        self.compare_button.setEnabled(len(self.strip.selectedItems()) == 2)
        self.pick_button.setEnabled(self.history.chosen is not None)

    # ----- slots -----------------------------------------------------------------------------------
    def _on_live_toggled(self, on: bool) -> None:
        if on:
            self._current = None
            self.strip.clearSelection()
            self._sync_slider()
            self._update_labels()
            self._update_buttons()
            self.viewed.emit(None)
        elif self._current is None:
            key = self.history.result_key()
            if key is not None:
                self.view(key)

    def _on_slider(self, value: int) -> None:
        if 0 <= value < len(self._its):
            self.view(self._its[value])

    def _on_item(self, item: QListWidgetItem | None, _prev=None) -> None:
        if item is not None:
            key = item.data(KEY_ROLE)
            if key in self.history and key != self._current or self.is_live():
                self.view(key)

    def _on_pin(self) -> None:
        key = self.current()
        if isinstance(key, int):
            self.pin_requested.emit(key, not self.history.is_pinned(key))

    def _on_keep(self) -> None:
        key = self.current()
        if key is not None:
            self.choose_requested.emit(key)

    def _on_use_pick(self) -> None:
        self.choose_requested.emit(None)

    def _on_compare(self) -> None:
        keys = [it.data(KEY_ROLE) for it in self.strip.selectedItems()]
        if len(keys) == 2:
            order = {k: i for i, k in enumerate(self.history.keys())}
            a, b = sorted(keys, key=lambda k: order.get(k, 0))
            self.compare_requested.emit(a, b)
