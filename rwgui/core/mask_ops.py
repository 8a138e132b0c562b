"""Geometry on a painted mask, without Qt: rectangles, polygons, grow/shrink, feather and soft brush strokes.

Why a module of its own: the studio's mask tools (and anything scripted) need the same pixels from the same
gestures, and these rules are easier to test on small arrays than through a window.

The array these functions work on is a **hole weight** map, HxW uint8: 0 = known, 255 = hole. What the engine
fits is binary: a pixel is a hole when its weight is at least :data:`HALF` (128), i.e. when the session's mask
``1 - weight / 255`` is below 0.5, the rule every part of rwgui uses. Weights between 0 and 255 are a soft edge
(brush hardness below 1, feather): they never move the line between hole and known pixels that a hard edge would
draw, and the keep-known result composite blends the network's output into the photo by them on the known side.

Coordinates are the views': pixel (col, row) covers [col, col + 1) x [row, row + 1), so a pixel's centre is at
(col + 0.5, row + 0.5). Shapes cover the pixels whose centres lie inside them.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "HOLE",
    "HALF",
    "Box",
    "holes_of",
    "weights_from_mask",
    "fill_rect",
    "fill_polygon",
    "grow",
    "feather",
    "stroke_weights",
]

#: The weight of a full hole.
HOLE = 255
#: The smallest weight the engine treats as a hole (``1 - 128 / 255 < 0.5``).
HALF = 128

Box = tuple[int, int, int, int]  # y0, y1, x0, x1 (half-open)
Point = tuple[float, float]


def holes_of(weights: np.ndarray) -> np.ndarray:
    """The engine's binary holes (bool HxW) of a weight map."""
    out: np.ndarray = np.asarray(weights) >= HALF
    return out


def weights_from_mask(mask: np.ndarray) -> np.ndarray:
    """A float mask (1 = known, 0 = hole; values between are a soft edge) as a weight map whose binary holes are
    exactly the mask's (``mask < 0.5``), even where rounding to 8 bits would put a value on the other side."""
    m = np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)
    w = np.rint((1.0 - m) * HOLE)
    hole = m < 0.5
    w = np.where(hole, np.maximum(w, HALF), np.minimum(w, HALF - 1))
    return w.astype(np.uint8)


def _clip_box(box: Box, shape: tuple[int, ...]) -> Box | None:
    y0, y1, x0, x1 = box
    h, w = shape[:2]
    y0, y1, x0, x1 = max(0, y0), min(h, y1), max(0, x0), min(w, x1)
    return None if y0 >= y1 or x0 >= x1 else (y0, y1, x0, x1)


def fill_rect(weights: np.ndarray, x0: float, y0: float, x1: float, y1: float, value: int) -> Box | None:
    """Set the pixels whose centres lie in the rectangle with corners (x0, y0), (x1, y1) to ``value`` (in place).

    Corners may come in any order and lie outside the image. Returns the box set, or None when it covers no
    pixel centre."""
    xa, xb = sorted((float(x0), float(x1)))
    ya, yb = sorted((float(y0), float(y1)))
    # pixel c is inside when xa <= c + 0.5 < xb
    box = _clip_box(
        (int(np.ceil(ya - 0.5)), int(np.ceil(yb - 0.5)), int(np.ceil(xa - 0.5)), int(np.ceil(xb - 0.5))),
        weights.shape,
    )
    if box is not None:
        weights[box[0] : box[1], box[2] : box[3]] = value
    return box


def fill_polygon(weights: np.ndarray, points: Sequence[Point], value: int) -> Box | None:
    """Fill the polygon through ``points`` (view coordinates, closed automatically) with ``value`` (in place).

    A scanline fill sampled at pixel centres with the even-odd rule: a pixel is inside when its centre is, so a
    polygon's pixel count is its area to within its outline's pixels, and an axis-aligned one is its exact box.
    Returns the box that may have changed, or None for fewer than three points or no pixel centre inside."""
    if len(points) < 3:
        return None
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    h, w = weights.shape[:2]
    ya, yb = pts[:, 1], np.roll(pts[:, 1], -1)
    xa, xb = pts[:, 0], np.roll(pts[:, 0], -1)
    r0 = max(0, int(np.ceil(pts[:, 1].min() - 0.5)))
    r1 = min(h, int(np.ceil(pts[:, 1].max() - 0.5)))
    if r0 >= r1:
        return None
    cy = np.arange(r0, r1, dtype=np.float64)[:, None] + 0.5  # row centres
    lo, hi = np.minimum(ya, yb), np.maximum(ya, yb)
    crosses = (cy >= lo) & (cy < hi)  # half-open: a vertex shared by two edges counts once
    with np.errstate(divide="ignore", invalid="ignore"):
        x = xa + (cy - ya) * (xb - xa) / (yb - ya)
    x = np.where(crosses, x, np.inf)
    x.sort(axis=1)
    n = crosses.sum(axis=1)
    changed: list[int] = [w, 0]
    for i, row in enumerate(range(r0, r1)):
        xs = x[i, : n[i]]
        for left, right in zip(xs[0::2], xs[1::2]):
            c0 = max(0, int(np.ceil(left - 0.5)))  # centre c + 0.5 in [left, right)
            c1 = min(w, int(np.ceil(right - 0.5)))
            if c0 < c1:
                weights[row, c0:c1] = value
                changed = [min(changed[0], c0), max(changed[1], c1)]
    return None if changed[0] >= changed[1] else (r0, r1, changed[0], changed[1])


def _disk(radius: int) -> np.ndarray:
    k = 2 * int(radius) + 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))


def grow(weights: np.ndarray, px: int) -> np.ndarray:
    """A new weight map with the holes grown by ``px`` pixels (a negative ``px`` shrinks them).

    A dilation (erosion) of the binary holes with an elliptical kernel, so corners round as a brush would
    paint them; the result is hard-edged (0 or 255). Outside the image counts as neither: a hole at the border
    does not shrink away from it."""
    hole: np.ndarray = holes_of(weights).astype(np.uint8)
    n = int(px)
    if n > 0:
        hole = cv2.dilate(hole, _disk(n), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    elif n < 0:
        hole = cv2.erode(hole, _disk(-n), borderType=cv2.BORDER_REPLICATE)
    out: np.ndarray = hole * np.uint8(HOLE)
    return out


def feather(weights: np.ndarray, px: int) -> np.ndarray:
    """A new weight map whose hole edges fall from 255 to 0 over ``px`` pixels across the edge (0: hard edge).

    The ramp is linear in the distance to the edge and centred on it, and clamped so that every pixel keeps its
    side: holes stay at least :data:`HALF`, known pixels below it, so what the engine fills does not change.
    A feathered mask is drawn with a soft edge, and the result composite blends the fill into the photo over
    the known half of the ramp."""
    hole = holes_of(weights)
    n = int(px)
    if n <= 0 or not hole.any() or hole.all():
        out: np.ndarray = hole.astype(np.uint8) * np.uint8(HOLE)
        return out
    half = n / 2.0
    # distances between pixel centres: inside a hole to the nearest known pixel, outside to the nearest hole
    d_in = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    d_out = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    inside = 0.5 + 0.5 * np.clip((d_in - 0.5) / half, 0.0, 1.0)
    outside = 0.5 - 0.5 * np.clip((d_out - 0.5) / half, 0.0, 1.0)
    w = np.where(hole, np.maximum(np.rint(inside * HOLE), HALF), np.minimum(np.rint(outside * HOLE), HALF - 1))
    return w.astype(np.uint8)


def stroke_weights(path: Sequence[Point], size: float, hardness: float, box: Box) -> np.ndarray:
    """The weights (uint8, the box's shape) a round brush of diameter ``size`` lays along ``path``.

    ``path`` is in pixel-centre coordinates (col, row) of the whole image; ``box`` the part to compute.
    Hardness 1 is a hard edge at the brush's radius; below 1 the weight falls linearly across a band of
    ``(1 - hardness) * radius`` pixels centred on that radius, so the pixels the engine fills are those a hard
    brush would paint and only the edge's softness changes (hardness 0: the band spans the whole radius)."""
    y0, y1, x0, x1 = box
    line = np.full((y1 - y0, x1 - x0), 255, np.uint8)
    pts = [(int(round((x - x0) * 16)), int(round((y - y0) * 16))) for x, y in path]
    if len(pts) == 1:
        pts = pts * 2
    for p0, p1 in zip(pts[:-1], pts[1:]):
        cv2.line(line, p0, p1, 0, thickness=1, lineType=cv2.LINE_8, shift=4)
    d = cv2.distanceTransform(line, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    r = max(0.5, float(size) / 2)
    band = max(1.0, (1.0 - float(np.clip(hardness, 0.0, 1.0))) * r)
    w = np.clip(0.5 - (d - r) / band, 0.0, 1.0)
    out: np.ndarray = np.rint(w * HOLE).astype(np.uint8)
    return out
