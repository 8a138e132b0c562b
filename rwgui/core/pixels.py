"""Every conversion between rwgui's pixel representations, one function per job.

rwgui holds an image in four forms, and each conversion between them is written once, here:

* **float** HxWxC float32 in [0, 1]: what files are read into, what the engine returns, what is written;
* **u16** HxWxC uint16: how the studio keeps iterates (a third of float64's memory, more than any file holds);
* **u8 RGBA** HxWx4 uint8: what the screen shows (pyqtgraph and QImage take it without a copy);
* **tensor** 1xCxHxW float32: what the engine fits.

Scaling is by 255 or 65535 with rounding to the nearest integer (never truncation), so a value read from an
8- or 16-bit file comes back as the same integer, and uint8 k maps to uint16 257 k (the exact widening).
NaN becomes 0 and everything is clipped to [0, 1] before it is quantised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "float_to_u8",
    "float_to_u16",
    "u16_to_float",
    "as_float",
    "as_u16",
    "rgba8_for_display",
    "image_to_tensor",
    "tensor_to_image",
]


def _unit(pixels: np.ndarray) -> np.ndarray:
    x = np.nan_to_num(np.asarray(pixels, dtype=np.float32), nan=0.0)
    return np.clip(x, 0.0, 1.0)


def float_to_u8(pixels: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 by rounding (clipped; NaN -> 0)."""
    return np.rint(_unit(pixels) * 255.0).astype(np.uint8)


def float_to_u16(pixels: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint16 by rounding (clipped; NaN -> 0)."""
    return np.rint(_unit(pixels) * 65535.0).astype(np.uint16)


def u16_to_float(pixels: np.ndarray) -> np.ndarray:
    """uint16 -> float32 in [0, 1] (exactly inverted by :func:`float_to_u16`)."""
    return np.divide(np.asarray(pixels), np.float32(65535), dtype=np.float32)


def as_float(pixels: np.ndarray) -> np.ndarray:
    """Any pixels -> float in [0, 1]: uint8 and uint16 are scaled, floats pass through unchanged.

    For writers that accept either the engine's floats or stored integer frames."""
    a = np.asarray(pixels)
    if a.dtype == np.uint8:
        return np.divide(a, np.float32(255), dtype=np.float32)
    if a.dtype == np.uint16:
        return u16_to_float(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"pixels must be float in [0, 1], uint8 or uint16, not {a.dtype}")
    return a


def as_u16(pixels: np.ndarray) -> np.ndarray:
    """Any pixels -> contiguous uint16: uint16 as is, uint8 widened exactly (x 257), floats quantised."""
    a = np.asarray(pixels)
    if a.dtype == np.uint16:
        return np.ascontiguousarray(a)
    if a.dtype == np.uint8:
        return a.astype(np.uint16) * np.uint16(257)
    return float_to_u16(a)


def rgba8_for_display(pixels: np.ndarray) -> np.ndarray:
    """Gray, RGB or RGBA (uint8, uint16 or float in [0, 1]) -> a C-contiguous HxWx4 uint8 array to show.

    Gray is spread over R, G and B; a missing alpha is opaque."""
    a = np.asarray(pixels)
    if a.dtype == np.uint16:
        a = ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)  # rounds like float_to_u8
    elif a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.floating):
            raise TypeError(f"expected a uint8, uint16 or float image, got {a.dtype}")
        a = float_to_u8(a)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an HxW, HxWx1, HxWx3 or HxWx4 image, got shape {a.shape}")
    if a.shape[2] == 4:
        return np.ascontiguousarray(a)
    out = np.empty(a.shape[:2] + (4,), np.uint8)
    out[..., :3] = a  # broadcasts gray over RGB
    out[..., 3] = 255
    return out


def image_to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """HxW or HxWxC float array -> 1xCxHxW float32 tensor on the CPU (a copy)."""
    import torch

    a = np.asarray(pixels, dtype=np.float32)
    if a.ndim == 2:
        a = a[..., None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].clone()


def tensor_to_image(t: torch.Tensor) -> np.ndarray:
    """1xCxHxW tensor (any device) -> HxWxC float32 array in [0, 1] on the host (a copy)."""
    out: np.ndarray = t.detach().float().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy().copy()
    return out
