"""Basin radius along random unit directions (Huang et al. 2020; Figs 6, 8, Tables II, IV)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor
from ..progress import tqdm

from ..data import derive_seed
from .batch import Evaluate, _call, evaluate_points

__all__ = ["random_directions", "cutoff_loss", "basin_radii"]


def random_directions(count: int, mask: Tensor, seed: int) -> Tensor:
    """`count` random unit directions inside the subspace where `mask` is 1 (count x P).

    Direction i depends only on (seed, i), so two points measured with one seed share their
    directions, and the first k of 100 directions are the same as the k of a run with fewer.
    """
    m = mask.detach().float().cpu()
    out = torch.empty(count, m.numel())
    for i in range(count):
        g = torch.Generator().manual_seed(derive_seed(seed, "direction", i))
        d = torch.randn(m.numel(), generator=g) * m
        out[i] = d / d.norm()
    return out.to(mask.device)


def cutoff_loss(reference: float, rule: str, value: float) -> float:
    """The basin's cut-off c from a reference loss L0.

    relative: c = L0 (1 + value), i.e. the normalized cut-off (c - L0) / L0 equals `value`;
    additive: c = L0 + value; absolute: c = value. The paper's eq (5), lost in the text
    extraction, defines a "normalized cut-off value ... in proximity to the loss values at the
    minima"; the relative rule is the natural reading of it (Huang et al. used a fixed cut-off).
    The paper reports one such value per comparison (Fig 6, Fig 8), which suggests a single
    cut-off for both points of a pair: `landscape.radius_reference: pair_max` does that.
    """
    if rule == "relative":
        return reference * (1.0 + value)
    if rule == "additive":
        return reference + value
    if rule == "absolute":
        return value
    raise ValueError(f"unknown cut-off rule {rule!r}: relative, additive or absolute")


def basin_radii(evaluate: Evaluate, center: Tensor, directions: Tensor, cutoff: float, *,
                start: float = 0.01, growth: float = 2.0, max_radius: float = 50.0,
                tol: float = 1e-3, chunk: int = 64, max_steps: int = 200,
                progress: bool = False, center_loss: float | None = None) -> dict[str, Any]:
    """Distance from `center` along each unit direction to where the loss first exceeds `cutoff`.

    Batched over directions: at every step all unresolved directions are evaluated together.
    A direction's distance is multiplied by `growth` from `start` until the loss exceeds the
    cut-off (the bracket), then bisected until the bracket is narrower than `tol` times its upper
    end; the radius is the bracket's middle. A direction still below the cut-off at `max_radius`
    reports `max_radius` and is marked censored. "First" is up to the bracketing step: a bump
    narrower than one expansion step can be jumped over. Losses that are NaN count as above.
    """
    n = directions.shape[0]
    if center_loss is None:
        center_loss = float(_call(evaluate, center.unsqueeze(0))[0][0])
    lo = torch.zeros(n, dtype=torch.float64)
    hi = torch.full((n,), math.inf, dtype=torch.float64)
    trial = torch.full((n,), min(start, max_radius), dtype=torch.float64)
    done = torch.zeros(n, dtype=torch.bool)
    censored = torch.zeros(n, dtype=torch.bool)
    evaluations, steps = 0, 0
    if not center_loss <= cutoff:  # the point itself is above the cut-off: no basin
        hi.zero_()
        done[:] = True
    bar = tqdm(total=n, desc="radius", disable=not progress, leave=False)
    while not bool(done.all()) and steps < max_steps:
        active = (~done).nonzero().flatten()
        r = trial[active]
        dirs = directions[active.to(directions.device)]
        loss, _ = evaluate_points(
            evaluate, len(active),
            lambda i, j: center.unsqueeze(0) + r[i:j].to(center.device, center.dtype)
            .unsqueeze(1) * dirs[i:j], chunk)
        evaluations += len(active)
        steps += 1
        above = ~(loss <= cutoff)
        hi[active] = torch.where(above, r, hi[active])
        lo[active] = torch.where(above, lo[active], r)
        for i in active.tolist():
            a, b = float(lo[i]), float(hi[i])
            if math.isinf(b):  # not bracketed yet: expand
                if a >= max_radius:
                    done[i], censored[i] = True, True
                else:
                    trial[i] = min(a * growth, max_radius)
            elif b - a <= tol * b or b <= tol * start:  # bracketed narrowly enough
                done[i] = True
            else:  # bisect
                trial[i] = (a + b) / 2
        bar.update(int(done.sum()) - bar.n)
    bar.close()
    radii = torch.where(censored, lo, (lo + hi.nan_to_num(posinf=0.0)) / 2)
    radii = torch.where(done | censored, radii, lo)  # max_steps reached: the last safe distance
    counts, edges = np.histogram(radii.numpy(), bins="auto")
    return {"radii": radii, "censored": censored, "mean": float(radii.mean()),
            "median": float(radii.median()), "std": float(radii.std()) if n > 1 else 0.0,
            "cutoff": float(cutoff), "center_loss": float(center_loss),
            "evaluations": evaluations, "steps": steps,
            "hist_counts": torch.from_numpy(counts), "hist_edges": torch.from_numpy(edges)}
