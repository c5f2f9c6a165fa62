"""Basin radius along random unit directions (Huang et al. 2020; Figs 6, 8, Tables II, IV)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from lthkit.analysis.landscape.batch import Evaluate, _call, evaluate_points
from lthkit.config.seeds import derive_seed
from lthkit.platform.progress import tqdm

__all__ = ["random_directions", "cutoff_loss", "basin_radii", "basin_radii_many"]


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

    Batched over directions: every step evaluates all unresolved directions together (in blocks
    of the evaluator's points_per_pass), each advancing its own search. A direction's distance
    is multiplied by `growth` from `start` until the loss exceeds the cut-off (the bracket),
    then bisected until the bracket is narrower than `tol` times its upper end; the radius is
    the bracket's middle. A direction still below the cut-off at `max_radius` reports
    `max_radius` and is marked censored. "First" is up to the bracketing step: a bump narrower
    than one expansion step can be jumped over. Losses that are NaN count as above. Each
    direction's result is the same as searching it alone.
    """
    return basin_radii_many(evaluate, [center], directions, [cutoff], start=start, growth=growth,
                            max_radius=max_radius, tol=tol, chunk=chunk, max_steps=max_steps,
                            progress=progress,
                            center_losses=None if center_loss is None else [center_loss])[0]


def basin_radii_many(evaluate: Evaluate, centers: Sequence[Tensor], directions: Tensor,
                     cutoffs: Sequence[float], *, start: float = 0.01, growth: float = 2.0,
                     max_radius: float = 50.0, tol: float = 1e-3, chunk: int = 64,
                     max_steps: int = 200, progress: bool = False,
                     center_losses: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """`basin_radii` of several centers along the same directions, searched in the same passes.

    One result per center (as `basin_radii` returns), each equal to searching it alone; the
    points of all centers share the evaluator's blocks, so a pair (W_min(L) and Pr_L(min(L-1))
    in one space) fills blocks that one point's few directions would leave part empty.
    """
    m, n = len(centers), directions.shape[0]
    if len(cutoffs) != m or (center_losses is not None and len(center_losses) != m):
        raise ValueError("basin_radii_many: one cut-off (and center loss) per center")
    origin = torch.stack([c for c in centers])
    if center_losses is None:
        center_losses = [float(v) for v in _call(evaluate, origin)[0]]
    owner = torch.arange(m).repeat_interleave(n)           # center of each search
    which = torch.arange(n).repeat(m)                       # direction of each search
    cut = torch.tensor([float(c) for c in cutoffs], dtype=torch.float64)[owner]
    total = m * n
    lo = torch.zeros(total, dtype=torch.float64)
    hi = torch.full((total,), math.inf, dtype=torch.float64)
    trial = torch.full((total,), min(start, max_radius), dtype=torch.float64)
    done = torch.zeros(total, dtype=torch.bool)
    censored = torch.zeros(total, dtype=torch.bool)
    evaluations = torch.zeros(m, dtype=torch.long)
    steps = torch.zeros(m, dtype=torch.long)
    for k, loss0 in enumerate(center_losses):
        if not loss0 <= float(cutoffs[k]):  # the point itself is above the cut-off: no basin
            hi[owner == k] = 0.0
            done[owner == k] = True
    bar = tqdm(total=total, desc="radius", disable=not progress, leave=False)
    passes = 0
    while not bool(done.all()) and passes < max_steps:
        active = (~done).nonzero().flatten()
        r = trial[active]
        dev = origin.device
        own, dirs = owner[active].to(dev), directions[which[active].to(directions.device)]
        loss, _ = evaluate_points(
            evaluate, len(active),
            lambda i, j: origin[own[i:j]] + r[i:j].to(dev, origin.dtype).unsqueeze(1)
            * dirs[i:j].to(dev, origin.dtype), chunk)
        evaluations += torch.bincount(owner[active], minlength=m)
        steps += torch.bincount(owner[active], minlength=m).clamp(max=1)
        passes += 1
        above = ~(loss <= cut[active])
        hi[active] = torch.where(above, r, hi[active])
        lo[active] = torch.where(above, lo[active], r)
        _advance(active, lo, hi, trial, done, censored, start, growth, max_radius, tol)
        bar.update(int(done.sum()) - bar.n)
    bar.close()
    radii = torch.where(censored, lo, (lo + hi.nan_to_num(posinf=0.0)) / 2)
    radii = torch.where(done | censored, radii, lo)  # max_steps reached: the last safe distance
    return [_summary(radii[owner == k], censored[owner == k], float(cutoffs[k]),
                     float(center_losses[k]), int(evaluations[k]), int(steps[k]))
            for k in range(m)]


def _advance(active: Tensor, lo: Tensor, hi: Tensor, trial: Tensor, done: Tensor,
             censored: Tensor, start: float, growth: float, max_radius: float, tol: float) -> None:
    """The next distance of every active search, or its end, from its bracket [lo, hi]."""
    a, b = lo[active], hi[active]
    expand = torch.isinf(b)                                 # not bracketed yet
    out = expand & (a >= max_radius)                        # still below at the largest radius
    narrow = ~expand & ((b - a <= tol * b) | (b <= tol * start))
    bisect = ~expand & ~narrow
    nxt = torch.where(expand, (a * growth).clamp(max=max_radius), (a + b) / 2)
    trial[active] = torch.where((expand & ~out) | bisect, nxt, trial[active])
    done[active] = done[active] | out | narrow
    censored[active] = censored[active] | out


def _summary(radii: Tensor, censored: Tensor, cutoff: float, center_loss: float,
             evaluations: int, steps: int) -> dict[str, Any]:
    n = radii.numel()
    counts, edges = np.histogram(radii.numpy(), bins="auto")
    return {"radii": radii, "censored": censored, "mean": float(radii.mean()),
            "median": float(radii.median()), "std": float(radii.std()) if n > 1 else 0.0,
            "cutoff": float(cutoff), "center_loss": float(center_loss),
            "evaluations": evaluations, "steps": steps,
            "hist_counts": torch.from_numpy(counts), "hist_edges": torch.from_numpy(edges)}
