"""Loss along straight lines between two solutions, and the barrier height (Figs 9, 12, 17, 19)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from lthkit.analysis.landscape.batch import Evaluate, evaluate_points

__all__ = ["alpha_grid", "interpolate", "barrier_height", "linear_barrier", "evaluate_line"]


def alpha_grid(points: int, margin: float) -> Tensor:
    """α = k / (points-1), from about -margin to 1 + margin: 0 and 1 are exactly on the grid."""
    extra = math.ceil(margin * (points - 1) - 1e-9) if margin > 0 else 0
    return torch.arange(-extra, points + extra, dtype=torch.float64) / (points - 1)


def interpolate(a: Tensor, b: Tensor, alphas: Tensor) -> Tensor:
    """The points (1-α) A + α B, one row per α (exactly A at α = 0 and B at α = 1)."""
    al = alphas.to(a.device, a.dtype).unsqueeze(1)
    return (1 - al) * a.unsqueeze(0) + al * b.unsqueeze(0)


def barrier_height(alphas: Tensor, losses: Tensor) -> tuple[float, float]:
    """Max loss over α in [0, 1] minus the higher endpoint, and the α of that maximum."""
    inside = (alphas >= 0) & (alphas <= 1)
    a, loss = alphas[inside], losses[inside]
    ends = max(float(loss[a == 0][0]), float(loss[a == 1][0]))
    top = int(torch.argmax(torch.nan_to_num(loss, nan=float("inf"))))
    return float(loss[top]) - ends, float(a[top])


def linear_barrier(alphas: Tensor, losses: Tensor, loss_a: float, loss_b: float
                   ) -> tuple[float, float]:
    """Max over α in [0, 1] of the loss above the straight line between the end losses,
    loss(α) - ((1-α) loss_a + α loss_b), and its α (Frankle et al. 2020's barrier: unlike
    `barrier_height`, it sees a bump between ends of unequal loss that stays below the higher
    one). NaN when a loss on the segment is NaN."""
    inside = (alphas >= 0) & (alphas <= 1)
    a, loss = alphas[inside].double(), losses[inside].double()
    if bool(torch.isnan(loss).any()):
        return math.nan, math.nan
    above = loss - ((1 - a) * loss_a + a * loss_b)
    top = int(torch.argmax(above))
    return float(above[top]), float(a[top])


def evaluate_line(evaluate: Evaluate, a: Tensor, b: Tensor, points: int = 41, margin: float = 0.2,
                  chunk: int = 64, progress: bool = False) -> dict[str, Any]:
    """Loss (and accuracy) along (1-α) A + α B; the barrier between A and B as a number."""
    alphas = alpha_grid(points, margin)
    loss, acc = evaluate_points(evaluate, len(alphas),
                                lambda i, j: interpolate(a, b, alphas[i:j]), chunk, progress, "line")
    height, at = barrier_height(alphas, loss)
    out = {"alpha": alphas, "loss": loss, "barrier": height, "barrier_alpha": at,
           "loss_a": float(loss[alphas == 0][0]), "loss_b": float(loss[alphas == 1][0]),
           "distance": float((b.double() - a.double()).norm())}
    if acc is not None:
        out["acc"] = acc
    return out
