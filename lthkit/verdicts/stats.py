"""Means and 95% intervals across replicates: Student's t-interval on the replicates' values.

Why a t-interval: replicates are few (2-5 seeds is typical at paper scale), each is an independent
run, and the quantities compared (V'(k), radii, barriers, accuracies) are averages of many
contributions, so their spread across seeds is close to normal; a bootstrap over 3 values says
little. With one replicate there is no interval (NaN), and nothing is claimed from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

__all__ = ["Interval", "t_interval", "replicate_summary", "CONFIDENCE"]

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """Mean of n values and its two-sided t-interval (NaN bounds when n < 2)."""

    mean: float
    low: float
    high: float
    n: int

    def excludes(self, value: float = 0.0) -> bool:
        """Whether the interval lies wholly on one side of `value` (never with n < 2, nor with
        bounds that are not finite numbers)."""
        return (self.n >= 2 and math.isfinite(self.low) and math.isfinite(self.high)
                and not (self.low <= value <= self.high))

    def __str__(self) -> str:
        if self.n < 2 or math.isnan(self.low):
            return f"{self.mean:.4g}"
        return f"{self.mean:.4g} [{self.low:.4g}, {self.high:.4g}]"


def t_interval(values: Iterable[float], confidence: float = CONFIDENCE) -> Interval:
    """The mean of `values` (NaN and infinite values dropped) and its t-interval at
    `confidence`."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return Interval(mean, mean - half, mean + half, n)


def replicate_summary(frames: Sequence[pd.DataFrame], confidence: float = CONFIDENCE
                      ) -> pd.DataFrame:
    """The numeric columns of per-replicate tables of one shape: mean, low and high per cell.

    Returns a frame with the same index and columns (mean, "<col> low", "<col> high") after each
    numeric column; non-numeric columns are kept from the first replicate. With one frame the
    result is that frame (nothing to summarize).
    """
    if len(frames) == 1:
        return frames[0]
    first = frames[0]
    out = {}
    for col in first.columns:
        if not pd.api.types.is_numeric_dtype(first[col]) or pd.api.types.is_bool_dtype(first[col]):
            out[col] = first[col]
            continue
        stacked = np.stack([f[col].to_numpy(dtype=float) for f in frames])
        cells = [t_interval(stacked[:, i], confidence) for i in range(stacked.shape[1])]
        out[col] = [c.mean for c in cells]
        out[f"{col} low"] = [c.low for c in cells]
        out[f"{col} high"] = [c.high for c in cells]
    return pd.DataFrame(out, index=first.index)
