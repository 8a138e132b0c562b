"""The curves of one run as numbers: every step report's loss, PSNRs and stopping signal, in numpy columns.

Qt-free so that the session model (:mod:`rwgui.core.session`) can hold the curves it will save, and the plots
(:mod:`rwgui.gui.plots`) only draw what is here. Columns are preallocated and grown by doubling, because a
run appends a few reports at a time for thousands of steps and the plots read whole columns at each redraw.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["COLUMNS", "CurveData"]

COLUMNS = ("iteration", "loss", "psnr", "psnr_average", "signal", "pick_iteration")


class CurveData:
    """Columns of step reports in numpy buffers (NaN = missing), grown by doubling; Qt-free."""

    def __init__(self, capacity: int = 1024) -> None:
        self._cap = capacity
        self.clear()

    def clear(self) -> None:
        self.n = 0
        self._cols = {c: np.full(self._cap, np.nan) for c in COLUMNS}
        self._terms: dict[str, np.ndarray] = {}

    def _grow(self, need: int) -> None:
        cap = len(self._cols["iteration"])
        if need <= cap:
            return
        while cap < need:
            cap *= 2
        for store in (self._cols, self._terms):
            for k, v in store.items():
                nv = np.full(cap, np.nan)
                nv[: self.n] = v[: self.n]
                store[k] = nv

    def extend(self, reports: Iterable) -> None:
        reports = list(reports)
        if not reports:
            return
        self._grow(self.n + len(reports))
        i = self.n
        cap = len(self._cols["iteration"])
        for r in reports:
            c = self._cols
            c["iteration"][i] = r.iteration
            c["loss"][i] = r.loss
            c["psnr"][i] = np.nan if r.psnr is None else r.psnr
            c["psnr_average"][i] = np.nan if r.psnr_average is None else r.psnr_average
            c["signal"][i] = np.nan if r.signal is None else r.signal
            c["pick_iteration"][i] = np.nan if r.pick_iteration is None else r.pick_iteration
            for name, value in r.loss_terms.items():
                if name not in self._terms:
                    self._terms[name] = np.full(cap, np.nan)
                self._terms[name][i] = value
            i += 1
        self.n = i

    def column(self, name: str) -> np.ndarray:
        """A view of the filled part of a column (``loss_<term>`` for loss terms)."""
        if name.startswith("loss_") and name[5:] in self._terms:
            return self._terms[name[5:]][: self.n]
        return self._cols[name][: self.n]

    def columns(self) -> dict[str, np.ndarray]:
        """Copies of every filled column by name (``loss_<term>`` for loss terms): what a saved session holds."""
        out = {c: self._cols[c][: self.n].copy() for c in COLUMNS}
        out.update({f"loss_{t}": v[: self.n].copy() for t, v in self._terms.items()})
        return out

    def load_columns(self, columns: dict[str, np.ndarray]) -> None:
        """Replace everything by whole columns of one length (from :meth:`columns`; missing ones are NaN)."""
        n = len(next(iter(columns.values()))) if columns else 0
        self._cap = max(self._cap, n)
        self.clear()
        self.n = n
        for name, col in columns.items():
            store = self._terms if name.startswith("loss_") and name not in COLUMNS else self._cols
            key = name[5:] if store is self._terms else name
            if store is self._cols and key not in COLUMNS:
                continue
            buf = np.full(len(self._cols["iteration"]), np.nan)
            buf[:n] = col
            store[key] = buf

    def has(self, name: str) -> bool:
        return self.n > 0 and bool(np.isfinite(self.column(name)).any())

    def value_at(self, name: str, iteration: int) -> float | None:
        its = self.column("iteration")
        if self.n == 0:
            return None
        i = int(np.clip(np.searchsorted(its, iteration), 0, self.n - 1))
        v = float(self.column(name)[i])
        return v if math.isfinite(v) else None

    def to_csv(self, path: str | Path) -> None:
        """One row per step: iteration, loss, each loss term, PSNRs, signal, the rule's best iteration."""
        names = [
            "iteration",
            "loss",
            *(f"loss_{t}" for t in self._terms),
            "psnr",
            "psnr_average",
            "signal",
            "pick_iteration",
        ]
        cols = [self.column(n) for n in names]
        ints = {"iteration", "pick_iteration"}
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(names)
            for i in range(self.n):
                row = []
                for n, c in zip(names, cols):
                    v = c[i]
                    row.append("" if not math.isfinite(v) else (int(v) if n in ints else f"{v:.6g}"))
                w.writerow(row)
