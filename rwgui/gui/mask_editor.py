"""The mask being painted, without Qt: hole weights, strokes, shapes, grow/shrink/feather and diff-based undo/redo.

Kept apart from the canvas so its memory rules (one undo step per stroke or tool, only the dirty box stored,
history capped by bytes) are testable and reusable without a window. The geometry itself is
:mod:`rwgui.core.mask_ops`'s; this class adds the undo history around it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from ..core import mask_ops
from ..core.errors import MaskError
from ..core.mask_ops import HALF, HOLE

Box = tuple[int, int, int, int]  # y0, y1, x0, x1 (half-open)


@dataclass
class _Diff:
    box: Box
    values: np.ndarray  # the hole weights of the *other* state inside box (swapped on undo/redo)


def _changed_box(a: np.ndarray, b: np.ndarray) -> Box | None:
    diff = a != b
    rows, cols = np.flatnonzero(diff.any(axis=1)), np.flatnonzero(diff.any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


class MaskEditor:
    """Qt-free mask state: a uint8 hole weight map (0 = known, 255 = hole, a hole to the engine from 128 up;
    see :mod:`rwgui.core.mask_ops`) and a diff-based undo history.

    Each undo step stores only the changed bounding box's values; the history is capped by bytes
    and by count, so painting on a large photo neither copies the whole mask per stroke nor grows without
    bound. Edits return the dirty box, or None when nothing changed.
    """

    def __init__(self, undo_bytes: int = 256 * 2**20, undo_steps: int = 200) -> None:
        self.undo_bytes, self.undo_steps = int(undo_bytes), int(undo_steps)
        self._hole: np.ndarray | None = None
        self._undo: deque[_Diff] = deque()
        self._redo: deque[_Diff] = deque()
        self._snapshot: np.ndarray | None = None
        self._box: Box | None = None

    def reset(self, shape: tuple[int, int]) -> None:
        self._hole = np.zeros(shape, np.uint8)
        self._undo.clear()
        self._redo.clear()
        self._snapshot = self._box = None

    def ready(self) -> bool:
        return self._hole is not None

    def holes(self) -> np.ndarray | None:
        """The live hole weight map (not a copy): 0 = known, 255 = hole, soft edges between."""
        return self._hole

    def mask(self) -> np.ndarray | None:
        """A new float32 mask, 1 = known, 0 = hole; a soft edge's values lie between (below 0.5 = hole)."""
        if self._hole is None:
            return None
        out: np.ndarray = 1.0 - self._hole.astype(np.float32) / HOLE
        return out

    def hole_fraction(self) -> float:
        """The share of pixels the engine fills."""
        if self._hole is None or self._hole.size == 0:
            return 0.0
        return float(np.count_nonzero(self._hole >= HALF)) / self._hole.size

    def history_bytes(self) -> int:
        return sum(d.values.nbytes for d in self._undo) + sum(d.values.nbytes for d in self._redo)

    # -- whole-mask edits ------------------------------------------------------------------------
    def set_mask(self, mask: np.ndarray) -> Box | None:
        if self._hole is None:
            raise MaskError("open a photo before loading a mask")
        m = np.asarray(mask)
        if m.ndim == 3 and m.shape[2] in (1, 3, 4):
            m = m[:, :, 0]
        h, w = self._hole.shape
        if m.ndim != 2 or m.shape != (h, w):
            size = f"{m.shape[1]}x{m.shape[0]}" if m.ndim >= 2 else f"shape {m.shape}"
            raise MaskError(f"the mask is {size} pixels but the photo is {w}x{h}; use a mask of the photo's size")
        if m.dtype == bool:
            known = m
        elif np.issubdtype(m.dtype, np.integer):
            known = m >= (128 if m.size and m.max() > 1 else 1)
        else:
            return self._replace(mask_ops.weights_from_mask(m))  # a float mask keeps its soft edge
        return self._replace((~known).astype(np.uint8) * np.uint8(HOLE))

    def clear(self) -> Box | None:
        return None if self._hole is None else self._replace(np.zeros_like(self._hole))

    def invert(self) -> Box | None:
        """Swap holes and known pixels (a soft edge stays soft: 255 - weight keeps each pixel's new side)."""
        return None if self._hole is None else self._replace(HOLE - self._hole)

    # -- tools (each one undo step) ----------------------------------------------------------------
    def fill_rect(self, x0: float, y0: float, x1: float, y1: float, subtract: bool = False) -> Box | None:
        """Make the pixels whose centres lie in the rectangle holes (or known with ``subtract``); view
        coordinates (pixel (c, r) covers [c, c+1) x [r, r+1))."""
        if self._hole is None:
            return None
        new = self._hole.copy()
        return None if mask_ops.fill_rect(new, x0, y0, x1, y1, 0 if subtract else HOLE) is None else self._replace(new)

    def fill_polygon(self, points: list[tuple[float, float]], subtract: bool = False) -> Box | None:
        """Fill a polygon or lasso (view coordinates, closed automatically) with holes, or clear it."""
        if self._hole is None:
            return None
        new = self._hole.copy()
        box = mask_ops.fill_polygon(new, points, 0 if subtract else HOLE)
        return None if box is None else self._replace(new)

    def grow(self, px: int) -> Box | None:
        """Grow the holes by ``px`` pixels (shrink them for a negative ``px``); the edge becomes hard."""
        return None if self._hole is None else self._replace(mask_ops.grow(self._hole, px))

    def feather(self, px: int) -> Box | None:
        """Soften the holes' edges over ``px`` pixels (0 hardens them); which pixels are holes does not change."""
        return None if self._hole is None else self._replace(mask_ops.feather(self._hole, px))

    def _replace(self, new: np.ndarray) -> Box | None:
        assert self._hole is not None
        box = _changed_box(self._hole, new)
        if box is not None:
            y0, y1, x0, x1 = box
            self._push(_Diff(box, self._hole[y0:y1, x0:x1].copy()))
            self._hole[y0:y1, x0:x1] = new[y0:y1, x0:x1]
        return box

    # -- strokes ---------------------------------------------------------------------------------
    def begin_stroke(self) -> None:
        """Remember the current state; the stroke becomes one undo step in end_stroke."""
        if self._hole is not None:
            self._snapshot, self._box = self._hole.copy(), None

    def draw_path(self, path: list[tuple[float, float]], size: int, value: int, hardness: float = 1.0) -> Box | None:
        """Draw round-capped segments of diameter ``size`` through ``path`` (pixel-centre coords).

        ``value`` 1 paints holes, 0 erases them. A ``hardness`` below 1 lays a soft edge
        (:func:`rwgui.core.mask_ops.stroke_weights`): painting keeps the larger weight, erasing the smaller."""
        if self._hole is None or not path:
            return None
        pts = [(int(round(x * 16)), int(round(y * 16))) for x, y in path]  # 4 fractional bits
        xs, ys = [p[0] / 16 for p in pts], [p[1] / 16 for p in pts]
        r = size / 2 + 2
        h, w = self._hole.shape
        box = (
            max(0, int(min(ys) - r)),
            min(h, int(max(ys) + r) + 1),
            max(0, int(min(xs) - r)),
            min(w, int(max(xs) + r) + 1),
        )
        if box[0] >= box[1] or box[2] >= box[3]:
            return None
        if hardness >= 1.0:
            thickness = max(1, int(size) - 1)  # cv2 draws about one pixel thicker than asked: match the cursor
            for p0, p1 in zip(pts[:-1], pts[1:]):
                cv2.line(self._hole, p0, p1, HOLE if value else 0, thickness=thickness, lineType=cv2.LINE_8, shift=4)
        else:
            y0, y1, x0, x1 = box
            dab = mask_ops.stroke_weights(path, size, hardness, box)
            view = self._hole[y0:y1, x0:x1]
            if value:
                np.maximum(view, dab, out=view)
            else:
                np.minimum(view, HOLE - dab, out=view)
        if self._box is not None:
            b = self._box
            self._box = (min(b[0], box[0]), max(b[1], box[1]), min(b[2], box[2]), max(b[3], box[3]))
        elif self._snapshot is not None:
            self._box = box
        return box

    def end_stroke(self) -> Box | None:
        """Commit the stroke as one undo step holding only the changed box's old values."""
        snap, box = self._snapshot, self._box
        self._snapshot = self._box = None
        if snap is None or box is None or self._hole is None:
            return None
        y0, y1, x0, x1 = box
        sub = _changed_box(snap[y0:y1, x0:x1], self._hole[y0:y1, x0:x1])
        if sub is None:
            return None
        tight = (y0 + sub[0], y0 + sub[1], x0 + sub[2], x0 + sub[3])
        self._push(_Diff(tight, snap[tight[0] : tight[1], tight[2] : tight[3]].copy()))
        return tight

    # -- history ---------------------------------------------------------------------------------
    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> Box | None:
        return self._swap(self._undo, self._redo)

    def redo(self) -> Box | None:
        return self._swap(self._redo, self._undo)

    def _swap(self, src: deque[_Diff], dst: deque[_Diff]) -> Box | None:
        if not src or self._hole is None:
            return None
        d = src.pop()
        y0, y1, x0, x1 = d.box
        current = self._hole[y0:y1, x0:x1].copy()
        self._hole[y0:y1, x0:x1] = d.values
        dst.append(_Diff(d.box, current))
        return d.box

    def _push(self, diff: _Diff) -> None:
        self._redo.clear()
        self._undo.append(diff)
        total = sum(d.values.nbytes for d in self._undo)
        while self._undo and (len(self._undo) > self.undo_steps or total > self.undo_bytes):
            total -= self._undo.popleft().values.nbytes
