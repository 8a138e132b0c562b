"""Regenerate the bundled sample photos in ``assets/`` from scikit-image's data module.

Run ``python -m rwgui.bench.make_assets [--out DIR]``. Needs scikit-image (a dev extra); the program itself only
reads the PNGs this writes. The sources are public domain / CC0 (see assets/README.md), and the files are kept
small (longer side <= 320 px) so the repository stays light and a CPU run on them finishes in minutes.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from rwgui.core import imageio

MAX_SIDE = 320
ASSETS = Path(__file__).resolve().parents[2] / "assets"


def _square(rgb: np.ndarray, side: int) -> np.ndarray:
    """Centre crop to a square, then shrink with area averaging (no aliasing)."""
    h, w = rgb.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return cv2.resize(rgb[top : top + s, left : left + s], (side, side), interpolation=cv2.INTER_AREA)


def _fit(rgb: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """Shrink so the longer side is at most ``max_side``, keeping the aspect ratio."""
    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return rgb
    size = (round(w * scale), round(h * scale))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _recipes() -> dict[str, Callable[[], np.ndarray]]:
    from skimage import data  # imported here: only this script needs scikit-image

    return {
        "astronaut.png": lambda: _square(data.astronaut(), 256),
        "chelsea.png": lambda: _fit(data.chelsea()),
        "coffee.png": lambda: _fit(data.coffee()),
    }


def make_assets(out: Path = ASSETS) -> list[Path]:
    """Write every sample photo into ``out`` and return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in _recipes().items():
        rgb = make()  # uint8 HxWx3, RGB
        path = out / name
        imageio.write(path, rgb, bit_depth=8)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS, help=f"folder to write into (default: {ASSETS})")
    args = parser.parse_args(argv)
    total = 0
    for path in make_assets(args.out):
        img = imageio.read(path)
        size = path.stat().st_size
        total += size
        print(f"{path.name:16s} {img.size[0]:4d}x{img.size[1]:<4d} {size / 1024:7.1f} KiB")
    print(f"{'total':16s} {'':9s} {total / 1024:7.1f} KiB")


if __name__ == "__main__":
    main()
