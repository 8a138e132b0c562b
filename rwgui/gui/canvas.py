"""Zoomable image views: a plain view, a before/after compare, and a mask painter.

Images are shown as contiguous uint8 RGBA through ``pg.ImageItem(axisOrder='row-major')`` with
``levels=None``: pyqtgraph's zero-conversion path (float data, auto-levels or a non-contiguous view cost
milliseconds per frame instead of microseconds). Every view keeps a reference to the array it shows, because
a QImage built on a numpy array aliases its buffer: freed or reused, the view would paint garbage or crash.
View coordinates are image coordinates: pixel (col, row) covers [col, col+1) x [row, row+1), y down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QImage, QKeySequence, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem, QGraphicsPathItem, QGraphicsRectItem, QLabel

from ..core.pixels import rgba8_for_display
from .mask_editor import MaskEditor

__all__ = ["ImagePane", "CompareView", "MaskCanvas", "MaskEditor", "rgba_pixmap"]

BACKGROUND = (38, 38, 40)


def rgba_pixmap(rgba: np.ndarray, side: int | None = None) -> QPixmap:
    """A QPixmap that owns its pixels, from anything :func:`rgba8_for_display` takes.

    The QImage built on the array aliases its buffer, so it is copied at once. With ``side`` the image is
    scaled (smoothly, aspect kept) and centred on a transparent ``side`` square, the cell of an icon grid."""
    a = rgba8_for_display(rgba)
    img = QImage(a.data, a.shape[1], a.shape[0], a.strides[0], QImage.Format.Format_RGBA8888).copy()
    if side is None:
        return QPixmap.fromImage(img)
    pm = QPixmap(side, side)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    scaled = img.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    p.drawImage((side - scaled.width()) // 2, (side - scaled.height()) // 2, scaled)
    p.end()
    return pm


class ImagePane(pg.GraphicsView):
    """One photo in a ViewBox: wheel zoom, drag pan, aspect locked, y down, no axes.

    A ``pg.GraphicsView`` around one ImageItem, not pyqtgraph's own ``ImageView`` (which adds a histogram,
    ROI and time axis), hence the other name."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent, background=BACKGROUND)
        self.vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.0)
        self.setCentralItem(self.vb)
        self._item = pg.ImageItem(axisOrder="row-major")
        self._item.setAutoDownsample(False)
        self.vb.addItem(self._item)
        self.vb.disableAutoRange()
        self._image: np.ndarray | None = None
        self._place: QRectF | None = None  # where the image lies in view coordinates; None = at the origin, 1:1
        self._title = QLabel(self)
        self._title.setStyleSheet(
            "color: #e8e8e8; background: rgba(0, 0, 0, 140); padding: 2px 6px; border-radius: 3px;"
        )
        self._title.move(8, 6)
        self._title.hide()

    # -- image ---------------------------------------------------------------------------------
    def set_image(self, rgba: np.ndarray) -> None:
        """Show ``rgba`` (HxWx4 uint8; other layouts converted). Refits only when the size changes."""
        img = rgba8_for_display(rgba)
        new_shape = self._image is None or self._image.shape != img.shape
        self._image = img
        self._item.setImage(img, levels=None)
        if self._place is not None:
            self._item.setRect(self._place)  # the scale depends on the image's size: set it again
        if new_shape:
            self.fit()

    def set_placement(self, rect: tuple[float, float, float, float] | None) -> None:
        """Stretch the image over ``rect`` (x, y, w, h in view coordinates), e.g. a crop where it lies in the
        photo or a downscaled result over the photo's extent, so that linked views stay aligned."""
        self._place = None if rect is None else QRectF(*rect)
        if self._place is None:
            self._item.resetTransform()
        elif self._image is not None:
            self._item.setRect(self._place)

    def image(self) -> np.ndarray | None:
        return self._image

    def image_size(self) -> tuple[int, int] | None:
        """(width, height) of the shown image."""
        return None if self._image is None else (self._image.shape[1], self._image.shape[0])

    # -- view ----------------------------------------------------------------------------------
    def fit(self) -> None:
        """Show the whole image."""
        size = self.image_size()
        if size is not None:
            self.vb.setRange(self._place or QRectF(0, 0, *size), padding=0.02)

    def one_to_one(self) -> None:
        """One image pixel per screen (logical) pixel, keeping the current centre."""
        rect = self.vb.viewRect()
        w, h = max(1.0, self.vb.width()), max(1.0, self.vb.height())
        c = rect.center()
        self.vb.setRange(QRectF(c.x() - w / 2, c.y() - h / 2, w, h), padding=0)

    def link(self, other: ImagePane) -> None:
        """Zoom and pan together with ``other`` (both ways)."""
        self.vb.setXLink(other.vb)
        self.vb.setYLink(other.vb)

    def set_title(self, text: str) -> None:
        if text == self._title.text() and self._title.isVisible() == bool(text):
            return  # a changed label repaints the view under it (in Python): only when it changes
        self._title.setText(text)
        self._size_title()
        self._title.setVisible(bool(text))
        self._title.raise_()

    def _size_title(self) -> None:
        """One line when it fits in the pane, else wrapped to the pane's width: a long title (a Lab variant's
        name, a working-size note) is never cut off at the pane's edge."""
        t = self._title
        avail = max(80, self.width() - 16)
        natural = t.fontMetrics().horizontalAdvance(t.text()) + 14  # the style sheet's padding
        t.setWordWrap(natural > avail)
        if natural > avail:
            t.resize(avail, t.heightForWidth(avail))
        else:
            t.adjustSize()

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        title = getattr(self, "_title", None)  # pyqtgraph's own set-up resizes before __init__ made it
        if title is not None and title.text():
            self._size_title()

    def title(self) -> str:
        return self._title.text()

    def view_to_widget(self, x: float, y: float) -> QPointF:
        """Viewport position of view (image) coordinates; for tests and overlays."""
        return QPointF(self.mapFromScene(self.vb.mapViewToScene(QPointF(x, y))))

    def image_rect_in_view(self) -> QRectF:
        """Where the image lies in the viewport (widget pixels); empty before an image is set."""
        size = self.image_size()
        if size is None:
            return QRectF()
        r = self._place or QRectF(0, 0, *size)
        return QRectF(self.view_to_widget(r.left(), r.top()), self.view_to_widget(r.right(), r.bottom()))


class CompareView(ImagePane):
    """Before/after compare: ``before`` left of a draggable vertical line, ``after`` right of it.

    The after image sits inside a clipping rectangle, so dragging the line moves a clip rect and
    copies no pixels. ``set_image`` updates only the after side (live frames).
    """

    split_changed = Signal(float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._before: np.ndarray | None = None
        self._before_item = pg.ImageItem(axisOrder="row-major")
        self._before_item.setZValue(0)
        self.vb.addItem(self._before_item)
        self.vb.removeItem(self._item)
        self._clip = QGraphicsRectItem()
        self._clip.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape, True)
        self._clip.setPen(Qt.PenStyle.NoPen)
        self._clip.setZValue(1)
        self._item.setParentItem(self._clip)
        self.vb.addItem(self._clip, ignoreBounds=True)
        self._split = 0.5
        self._line = pg.InfiniteLine(
            angle=90,
            movable=True,
            pen=pg.mkPen((255, 255, 255, 220), width=2),
            hoverPen=pg.mkPen((255, 200, 60), width=3),
        )
        self._line.setZValue(10)
        self.vb.addItem(self._line, ignoreBounds=True)
        self._line.sigPositionChanged.connect(self._on_line_moved)

    def set_images(self, before_rgba: np.ndarray, after_rgba: np.ndarray) -> None:
        self.set_before(before_rgba)
        self.set_image(after_rgba)

    def set_before(self, rgba: np.ndarray) -> None:
        self._before = rgba8_for_display(rgba)
        self._before_item.setImage(self._before, levels=None)
        self._layout_items()

    def set_image(self, rgba: np.ndarray) -> None:
        """Update the after side only."""
        super().set_image(rgba)
        self._layout_items()

    def set_split(self, fraction: float) -> None:
        self._split = float(np.clip(fraction, 0.0, 1.0))
        size = self.image_size()
        if size is not None:
            self._line.setValue(self._split * size[0])  # -> _on_line_moved
        self._update_clip()

    def split(self) -> float:
        return self._split

    def composite(self) -> np.ndarray | None:
        """The HxWx4 image as displayed (before left of the split, after right of it)."""
        if self._image is None:
            return None
        out = self._image.copy()
        if self._before is not None:
            before = self._before_resized()
            x0 = self._split_column()
            out[:, :x0] = before[:, :x0]
        return out

    # -- internals -------------------------------------------------------------------------------
    def _split_column(self) -> int:
        """Columns whose centres lie left of the line show ``before``."""
        w = self._image.shape[1] if self._image is not None else 0
        return int(np.clip(np.ceil(self._split * w - 0.5), 0, w))

    def _before_resized(self) -> np.ndarray:
        assert self._before is not None and self._image is not None
        h, w = self._image.shape[:2]
        if self._before.shape[:2] == (h, w):
            return self._before
        rows = (np.arange(h) * self._before.shape[0] // h).clip(0, self._before.shape[0] - 1)
        cols = (np.arange(w) * self._before.shape[1] // w).clip(0, self._before.shape[1] - 1)
        return self._before[rows][:, cols]

    def _layout_items(self) -> None:
        """Stretch ``before`` over the after's extent (e.g. low-res input vs. super-resolved output)."""
        size = self.image_size()
        if size is None:
            return
        w, h = size
        if self._before is not None:
            self._before_item.setRect(QRectF(0, 0, w, h))
        self._line.setBounds((0, w))
        with QSignalBlocker(self._line):
            self._line.setValue(self._split * w)
        self._update_clip()

    def _on_line_moved(self, line: pg.InfiniteLine) -> None:
        size = self.image_size()
        if size is None or size[0] == 0:
            return
        self._split = float(np.clip(line.value() / size[0], 0.0, 1.0))
        self._update_clip()
        self.split_changed.emit(self._split)

    def _update_clip(self) -> None:
        size = self.image_size()
        if size is None:
            return
        w, h = size
        x = self._split * w
        self._clip.setRect(QRectF(x, 0, w - x, h))


@dataclass
class _Stroke:
    erase: bool
    last: tuple[float, float] | None = None


@dataclass
class _Shape:
    """A rectangle or lasso being drawn: view-coordinate points, and whether it takes holes away."""

    subtract: bool
    points: list[tuple[float, float]]
    dragged: bool = False


class MaskCanvas(ImagePane):
    """A photo with a red overlay over the holes; brush paints holes, eraser restores known pixels.

    ``tool`` "brush"/"eraser": left-drag paints, right-drag pans, middle-drag pans, wheel zooms.
    ``tool`` "rect": left-drag a rectangle of holes. ``tool`` "lasso": left-drag a free outline, or click
    corners of a polygon and close it by double-clicking, clicking its first corner or pressing Enter. With
    ``subtract`` on, or Ctrl or Alt held, shapes give pixels back instead. ``tool`` "none": pyqtgraph's default
    navigation. The keys the canvas handles itself are listed in :attr:`KEYS`. The mask state and its undo
    history live in :class:`MaskEditor`; every tool is one undo step.
    """

    mask_changed = Signal()
    brush_size_changed = Signal(int)
    hardness_changed = Signal(float)
    tool_changed = Signal(str)

    TOOLS = ("brush", "eraser", "rect", "lasso", "none")
    SHAPES = ("rect", "lasso")
    HOLE_RGB = (255, 36, 36)
    #: Keys handled by the canvas itself (not window actions), for the shortcuts list: (keys, what they do).
    KEYS = (
        ("[ / ]", "Smaller / larger brush"),
        ("{ / }  (Shift+[ / Shift+])", "Softer / harder brush edge"),
        ("Ctrl or Alt + drag", "Rectangle or lasso: give pixels back instead of adding holes"),
        ("Double-click, Enter", "Lasso: close the polygon"),
        ("Backspace", "Lasso: cancel the polygon being drawn"),
        ("Right-drag, middle-drag", "Pan"),
        ("Wheel", "Zoom"),
    )

    def __init__(self, parent=None, undo_bytes: int = 256 * 2**20, undo_steps: int = 200) -> None:
        super().__init__(parent)
        self.editor = MaskEditor(undo_bytes=undo_bytes, undo_steps=undo_steps)
        self._overlay: np.ndarray | None = None
        self._overlay_item = pg.ImageItem(axisOrder="row-major")
        self._overlay_item.setZValue(5)
        self.vb.addItem(self._overlay_item)
        self._tool = "none"
        self._brush_size = 24
        self._hardness = 1.0
        self._subtract = False
        self._shape: _Shape | None = None
        self._outline = QGraphicsPathItem()
        pen = QPen(QColor(255, 255, 255), 1.5, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self._outline.setPen(pen)
        self._outline.setZValue(22)
        self._outline.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self._outline.hide()
        self.vb.addItem(self._outline, ignoreBounds=True)
        self._opacity = 0.5
        self._stroke: _Stroke | None = None
        self._pan_from: QPointF | None = None
        self._cursor_pos: QPointF | None = None
        self._cursor = [QGraphicsEllipseItem(), QGraphicsEllipseItem()]
        for z, (color, width) in enumerate(((QColor(0, 0, 0, 200), 3), (QColor(255, 255, 255), 1))):
            pen = QPen(color, width)
            pen.setCosmetic(True)
            item = self._cursor[z]
            item.setPen(pen)
            item.setZValue(20 + z)
            item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
            item.hide()
            self.vb.addItem(item, ignoreBounds=True)
        self.scene().installEventFilter(self)

    # -- photo and mask ----------------------------------------------------------------------------
    def set_photo(self, rgba: np.ndarray) -> None:
        """Show a new photo; the mask becomes all-known and the undo history is cleared."""
        self.set_image(rgba)
        h, w = self._image.shape[:2]  # type: ignore[union-attr]
        self.editor.reset((h, w))
        self._overlay = np.zeros((h, w, 4), np.uint8)
        self._overlay[..., :3] = self.HOLE_RGB
        self._overlay_item.setImage(self._overlay, levels=None)
        self._stroke = None
        self._cancel_shape()
        self.mask_changed.emit()

    def mask(self) -> np.ndarray | None:
        """A copy of the mask: float32 HxW, 1 = known, 0 = hole (None before a photo is set)."""
        return self.editor.mask()

    def hole_fraction(self) -> float:
        return self.editor.hole_fraction()

    def set_mask(self, mask: np.ndarray) -> None:
        """Replace the mask (1 = known, 0 = hole); undoable. Raises MaskError on a size mismatch."""
        self._after_edit(self.editor.set_mask(mask))

    def clear(self) -> None:
        """Mark every pixel known; undoable."""
        self._after_edit(self.editor.clear())

    def invert(self) -> None:
        self._after_edit(self.editor.invert())

    def undo(self) -> None:
        self._after_edit(self.editor.undo())

    def redo(self) -> None:
        self._after_edit(self.editor.redo())

    def can_undo(self) -> bool:
        return self.editor.can_undo()

    def can_redo(self) -> bool:
        return self.editor.can_redo()

    def fill_rect(self, x0: float, y0: float, x1: float, y1: float, subtract: bool = False) -> None:
        """Holes over the rectangle (view coordinates), or known pixels with ``subtract``; undoable."""
        self._after_edit(self.editor.fill_rect(x0, y0, x1, y1, subtract))

    def fill_polygon(self, points: list[tuple[float, float]], subtract: bool = False) -> None:
        """Holes inside the polygon (view coordinates), or known pixels with ``subtract``; undoable."""
        self._after_edit(self.editor.fill_polygon(list(points), subtract))

    def grow(self, px: int) -> None:
        """Grow the holes by ``px`` pixels (negative: shrink); undoable."""
        self._after_edit(self.editor.grow(px))

    def feather(self, px: int) -> None:
        """Soften the holes' edges over ``px`` pixels (0: hard edges); undoable."""
        self._after_edit(self.editor.feather(px))

    def paint_stroke(self, points: list[tuple[float, float]], erase: bool = False) -> None:
        """Paint (or erase) along ``points`` (pixel-centre coords: (col, row)) as one undo step."""
        if not self.editor.ready() or not points:
            return
        self._begin_stroke(erase)
        self._stroke_to(list(points))
        self._end_stroke()

    # -- tool settings -------------------------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        if tool not in self.TOOLS:
            raise ValueError(f"tool must be one of {', '.join(self.TOOLS)}; got {tool!r}")
        if tool == self._tool:
            return
        if self._stroke is not None:
            self._end_stroke()  # a stroke cut short still becomes one undo step
        self._cancel_shape()
        self._pan_from = None
        self._tool = tool
        painting = tool != "none"
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if painting else Qt.CursorShape.ArrowCursor)
        self._update_cursor()
        self.tool_changed.emit(tool)

    def tool(self) -> str:
        return self._tool

    @property
    def brush_size(self) -> int:
        """Brush diameter in image pixels (1..512)."""
        return self._brush_size

    @brush_size.setter
    def brush_size(self, size: int) -> None:
        size = int(np.clip(round(size), 1, 512))
        if size != self._brush_size:
            self._brush_size = size
            self._update_cursor()
            self.brush_size_changed.emit(size)

    @property
    def hardness(self) -> float:
        """Brush edge: 1 = hard, 0 = soft over the whole radius (the pixels filled stay those inside the cursor;
        the soft part is how the result blends into the photo)."""
        return self._hardness

    @hardness.setter
    def hardness(self, value: float) -> None:
        value = round(float(np.clip(value, 0.0, 1.0)), 2)
        if value != self._hardness:
            self._hardness = value
            self.hardness_changed.emit(value)

    @property
    def subtract(self) -> bool:
        """Whether rectangles and lassos give pixels back instead of adding holes."""
        return self._subtract

    @subtract.setter
    def subtract(self, on: bool) -> None:
        self._subtract = bool(on)

    @property
    def overlay_opacity(self) -> float:
        return self._opacity

    @overlay_opacity.setter
    def overlay_opacity(self, value: float) -> None:
        self._opacity = float(np.clip(value, 0.0, 1.0))
        if self._overlay is not None:
            self._refresh_overlay(None)

    def overlay(self) -> np.ndarray | None:
        """The overlay's RGBA buffer as shown (alpha = opacity over holes)."""
        return self._overlay

    # -- painting ----------------------------------------------------------------------------------
    def _begin_stroke(self, erase: bool) -> None:
        self._stroke = _Stroke(erase)
        self.editor.begin_stroke()

    def _stroke_to(self, points: list[tuple[float, float]]) -> None:
        """Draw segments to ``points`` and refresh the overlay once for all of them."""
        s = self._stroke
        if s is None:
            return
        path = ([s.last] if s.last is not None else []) + points
        if len(path) == 1:
            path = path * 2
        box = self.editor.draw_path(path, self._brush_size, value=0 if s.erase else 1, hardness=self._hardness)
        s.last = points[-1]
        self._refresh_overlay(box)

    def _end_stroke(self) -> None:
        self._stroke = None
        self._after_edit(self.editor.end_stroke(), refresh=False)

    def _after_edit(self, box: tuple[int, int, int, int] | None, refresh: bool = True) -> None:
        """Refresh the dirty box (y0, y1, x0, x1) and tell listeners; ``None`` means nothing changed."""
        if box is None:
            return
        if refresh:
            self._refresh_overlay(box)
        self.mask_changed.emit()

    def _refresh_overlay(self, box: tuple[int, int, int, int] | None) -> None:
        hole = self.editor.holes()
        if self._overlay is None or hole is None:
            return
        y0, y1, x0, x1 = box if box is not None else (0, hole.shape[0], 0, hole.shape[1])
        # alpha = weight * opacity, through a 256-entry table (the weights are uint8)
        lut = np.rint(np.arange(256, dtype=np.float32) * self._opacity).astype(np.uint8)
        self._overlay[y0:y1, x0:x1, 3] = lut[hole[y0:y1, x0:x1]]
        self._overlay_item.setImage(self._overlay, levels=None)

    # -- shapes ------------------------------------------------------------------------------------
    def _cancel_shape(self) -> None:
        self._shape = None
        self._outline.hide()

    def _show_outline(self, cursor: tuple[float, float] | None = None) -> None:
        s = self._shape
        if s is None:
            self._outline.hide()
            return
        pts = s.points + ([cursor] if cursor is not None else [])
        path = QPainterPath()
        if self._tool == "rect" and len(pts) >= 2:
            (xa, ya), (xb, yb) = pts[0], pts[-1]
            path.addRect(QRectF(min(xa, xb), min(ya, yb), abs(xb - xa), abs(yb - ya)))
        elif pts:
            path.moveTo(*pts[0])
            for p in pts[1:]:
                path.lineTo(*p)
            if s.dragged:
                path.closeSubpath()
        self._outline.setPath(path)
        self._outline.show()

    def _finish_shape(self) -> None:
        s = self._shape
        self._cancel_shape()
        if s is None:
            return
        if self._tool == "rect" and len(s.points) >= 2:
            (xa, ya), (xb, yb) = s.points[0], s.points[-1]
            self.fill_rect(xa, ya, xb, yb, s.subtract)
        elif self._tool == "lasso" and len(s.points) >= 3:
            self.fill_polygon(s.points, s.subtract)

    def _shape_subtract(self, ev) -> bool:
        mods = ev.modifiers()
        return self._subtract or bool(mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier))

    def _shape_event(self, kind, ev, pos: QPointF) -> bool:
        """Rectangle: press, drag, release. Lasso: drag a free outline, or click corners and close the polygon
        with a double-click, a click on its first corner or Enter."""
        p = (pos.x(), pos.y())
        s = self._shape
        if kind == QEvent.Type.GraphicsSceneMouseMove:
            if s is None:
                return False
            if ev.buttons() & Qt.MouseButton.LeftButton:
                if self._tool == "rect":
                    s.points[1:] = [p]
                elif len(s.points) == 1 or s.dragged:
                    s.dragged = True
                    last = s.points[-1]
                    if abs(p[0] - last[0]) + abs(p[1] - last[1]) > 0.5 / max(1e-6, self._scale()):
                        s.points.append(p)
                self._show_outline()
            else:
                self._show_outline(cursor=p)  # a polygon in progress follows the pointer
            return True
        if kind == QEvent.Type.GraphicsSceneMouseDoubleClick:
            if s is not None and self._tool == "lasso":
                self._finish_shape()
            return True
        if kind == QEvent.Type.GraphicsSceneMousePress:
            if s is None:
                self._shape = _Shape(self._shape_subtract(ev), [p])
            elif self._tool == "lasso" and not s.dragged:
                first = s.points[0]
                near = 6 / max(1e-6, self._scale())  # six screen pixels from the first corner closes it
                if len(s.points) >= 3 and abs(p[0] - first[0]) <= near and abs(p[1] - first[1]) <= near:
                    self._finish_shape()
                    return True
                s.points.append(p)
            self._show_outline()
            return True
        # release
        if s is None:
            return True
        if self._tool == "rect":
            if len(s.points) >= 2:
                self._finish_shape()
            else:
                self._cancel_shape()
        elif s.dragged:
            self._finish_shape()
        return True

    def _scale(self) -> float:
        """Screen pixels per image pixel at the current zoom."""
        w = self.vb.viewRect().width()
        return self.vb.width() / w if w > 0 else 1.0

    # -- mouse and keys --------------------------------------------------------------------------------
    _PRESS = (QEvent.Type.GraphicsSceneMousePress, QEvent.Type.GraphicsSceneMouseDoubleClick)
    _MOUSE = _PRESS + (QEvent.Type.GraphicsSceneMouseMove, QEvent.Type.GraphicsSceneMouseRelease)

    def eventFilter(self, obj, ev) -> bool:
        """Scene mouse events: paint with the left button, pan with the right, before pyqtgraph sees them."""
        if ev.type() not in self._MOUSE or obj is not self.scene():
            return super().eventFilter(obj, ev)
        if self._tool == "none" or not self.editor.ready():
            return False
        pos = self.vb.mapSceneToView(ev.scenePos())
        kind = ev.type()
        if self._tool in self.SHAPES and self._pan_from is None:
            left = kind == QEvent.Type.GraphicsSceneMouseMove or ev.button() == Qt.MouseButton.LeftButton
            if left and self._shape_event(kind, ev, pos):
                ev.accept()
                return True
        if kind == QEvent.Type.GraphicsSceneMouseMove:
            self._cursor_pos = pos
            self._update_cursor()
            if self._stroke is not None:
                self._stroke_to([(pos.x() - 0.5, pos.y() - 0.5)])
            elif self._pan_from is not None:
                d = self.vb.mapSceneToView(self._pan_from) - pos
                self.vb.translateBy(x=d.x(), y=d.y())
                self._pan_from = ev.scenePos()
            else:
                return False  # hover: let pyqtgraph do its bookkeeping
            ev.accept()
            return True
        button = ev.button()
        if kind in self._PRESS:
            if button == Qt.MouseButton.LeftButton:
                self._begin_stroke(self._tool == "eraser")
                self._stroke_to([(pos.x() - 0.5, pos.y() - 0.5)])
            elif button == Qt.MouseButton.RightButton:
                self._pan_from = ev.scenePos()
            else:
                return False  # middle button: pyqtgraph pans
        else:  # release
            if button == Qt.MouseButton.LeftButton and self._stroke is not None:
                self._end_stroke()
            elif button == Qt.MouseButton.RightButton and self._pan_from is not None:
                self._pan_from = None
            else:
                return False
        ev.accept()
        return True

    def keyPressEvent(self, ev) -> None:
        key = ev.key()
        shift = bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        ctrl = bool(ev.modifiers() & Qt.KeyboardModifier.ControlModifier)
        if key == Qt.Key.Key_BracketRight:
            self.brush_size = max(self._brush_size + 1, round(self._brush_size * 1.25))
        elif key == Qt.Key.Key_BracketLeft:
            self.brush_size = min(self._brush_size - 1, round(self._brush_size / 1.25))
        elif key == Qt.Key.Key_BraceRight:
            self.hardness = self._hardness + 0.25
        elif key == Qt.Key.Key_BraceLeft:
            self.hardness = self._hardness - 0.25
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self._shape is not None:
            self._finish_shape()
        elif key == Qt.Key.Key_Backspace and self._shape is not None:
            self._cancel_shape()
        elif ev.matches(QKeySequence.StandardKey.Redo) or (ctrl and shift and key == Qt.Key.Key_Z):
            self.redo()
        elif ev.matches(QKeySequence.StandardKey.Undo) or (ctrl and key == Qt.Key.Key_Z):
            self.undo()
        else:
            super().keyPressEvent(ev)
            return
        ev.accept()

    def leaveEvent(self, ev) -> None:
        self._cursor_pos = None
        self._update_cursor()
        super().leaveEvent(ev)

    def _update_cursor(self) -> None:
        p = self._cursor_pos
        show = p is not None and self._tool in ("brush", "eraser")
        for item in self._cursor:
            item.setVisible(show)
            if show and p is not None:
                r = self._brush_size / 2
                item.setRect(QRectF(p.x() - r, p.y() - r, 2 * r, 2 * r))
