"""The noise level of a photo, estimated from the photo alone (the real-noise task; no sigma is ever asked).

Method: the median absolute deviation of the finest orthonormal Haar diagonal (HH) band, divided by 0.6745
(Donoho and Johnstone's robust estimator), averaged over colour channels. The HH band of a natural image is
mostly near zero, except at edges and fine texture, which are few; white noise passes into it with its
standard deviation unchanged, so the median of its magnitudes measures the noise and hardly the image. One
implementation serves rwgui: :func:`rwgui.core.stopping.estimate_noise_sigma`, which SURE also uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stopping import estimate_noise_sigma

METHOD = "MAD of the finest Haar diagonal band / 0.6745"


@dataclass(frozen=True)
class NoiseEstimate:
    """``sigma`` in [0, 1] units (multiply by 255 for 8-bit levels)."""

    sigma: float
    method: str = METHOD

    @property
    def sigma_255(self) -> float:
        return 255.0 * self.sigma

    def describe(self) -> str:
        return f"estimated noise σ ≈ {self.sigma_255:.1f}/255 ({self.method})"


def estimate_noise(pixels: np.ndarray) -> NoiseEstimate:
    """The noise level of ``pixels`` (HxW or HxWxC, float in [0, 1])."""
    return NoiseEstimate(estimate_noise_sigma(np.asarray(pixels, dtype=np.float32)))
