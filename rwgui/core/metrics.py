"""Image quality measures. PSNR works on tensors (device side, no sync) and on arrays."""

from __future__ import annotations

import numpy as np
import torch


def psnr_t(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of ``x`` against ``ref`` (both in [0, 1]) as a 0-dim tensor on their device."""
    mse = (x.float().clamp(0, 1) - ref.float()).pow(2).mean()
    return -10.0 * torch.log10(mse.clamp_min(1e-12))


def psnr(x: np.ndarray, ref: np.ndarray) -> float:
    """PSNR in dB of two float arrays in [0, 1]."""
    mse = float(np.mean((np.clip(x, 0, 1).astype(np.float64) - ref.astype(np.float64)) ** 2))
    return float(-10.0 * np.log10(max(mse, 1e-12)))


def ssim(x: np.ndarray, ref: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004, Gaussian window sigma 1.5) of HxW or HxWxC arrays in [0, 1]."""
    import cv2

    c1, c2 = 0.01**2, 0.03**2
    a = np.clip(x, 0, 1).astype(np.float64)
    b = ref.astype(np.float64)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    blur = lambda m: cv2.GaussianBlur(m, (11, 11), 1.5)
    vals = []
    for c in range(a.shape[2]):
        u, v = a[..., c], b[..., c]
        mu_u, mu_v = blur(u), blur(v)
        su = blur(u * u) - mu_u**2
        sv = blur(v * v) - mu_v**2
        suv = blur(u * v) - mu_u * mu_v
        m = ((2 * mu_u * mu_v + c1) * (2 * suv + c2)) / ((mu_u**2 + mu_v**2 + c1) * (su + sv + c2))
        vals.append(m.mean())
    return float(np.mean(vals))
