"""Distances, trajectories and similarity matrices between solutions (Figs 3, 4, 14, 15).

Every point is the flat vector W of all trainable parameters (ParamLayout order): weights,
biases and BatchNorm parameters alike, as in the paper's "N-dimensional" weights.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd
import torch

from lthkit.nets.evaluator import PointEvaluator
from lthkit.nets.points import ParamLayout
from lthkit.train.context import Context
from lthkit.train.imp import ImpResults

__all__ = ["rewind_distances", "trajectory_levels", "trajectory_losses", "trajectory_slopes",
           "log_loss_slope", "pairwise_matrices",
           "points_of_interest", "similarity_matrices", "similarity_blocks",
           "SIMILARITY_BASELINES"]


def rewind_distances(imp: ImpResults, layout: ParamLayout, levels: list[int]) -> pd.DataFrame:
    """Per level L: ‖Pr_L(rewind) − Pr_L(min(L-1))‖ and ‖Pr_L(rewind) − W_min(L)‖ (Fig 3)."""
    rewind = layout.flatten(imp.rewind())
    rows = []
    for level in levels:
        m = layout.mask_vector(imp.mask(level))
        proj_rewind = m * rewind
        proj_prev = m * layout.flatten(imp.final(level - 1))
        w_min = layout.flatten(imp.final(level))
        rows.append({"level": level,
                     "to_projected_previous": float((proj_rewind - proj_prev).norm()),
                     "to_solution": float((proj_rewind - w_min).norm())})
    return pd.DataFrame(rows).set_index("level")


def trajectory_levels(imp: ImpResults, levels: list[int]) -> list[int]:
    """The levels of `levels` whose run kept its per-epoch weights, as did the run of the level
    before (Fig 4 projects that one on m_L): `imp.save_every` and `imp.trajectory_levels`."""
    return [lv for lv in levels
            if imp.level(lv).start_file.exists() and imp.level(lv - 1).start_file.exists()]


def trajectory_losses(ctx: Context, evaluator: PointEvaluator, level: int) -> dict[str, torch.Tensor]:
    """Fig 4 of one level: loss per epoch of level L's run and of level L-1's run projected on m_L.

    Every point is evaluated on the analysis subset with BatchNorm statistics recomputed, or
    with `analysis.recalibrate_bn: false` its epoch's stored ones (a projected point keeps those
    of the weights it projects). Cached in the run folder.
    """
    imp = ImpResults(ctx.store)

    def compute() -> dict[str, torch.Tensor]:
        mask = evaluator.layout.mask_vector(imp.mask(level), evaluator.device)
        own_epochs, own, own_stats = _trajectory_points(imp, level, evaluator)
        prev_epochs, prev, prev_stats = _trajectory_points(imp, level - 1, evaluator)
        points = torch.cat([own, prev * mask])  # one series: full blocks of P
        stored = None if evaluator.recalibrate else own_stats + prev_stats
        losses = evaluator.evaluate(points, stored)[0]
        return {"epochs": torch.tensor(own_epochs), "loss": losses[:len(own_epochs)],
                "projected_epochs": torch.tensor(prev_epochs),
                "projected_loss": losses[len(own_epochs):]}

    return ctx.store.cached("trajectories", f"fig04_level{level:02d}_{ctx.analysis_key()}", compute)


def log_loss_slope(epochs: torch.Tensor, losses: torch.Tensor) -> float:
    """The least-squares slope of ln(loss) against epoch: how fast a trajectory descends (the
    more negative, the steeper). NaN with fewer than two finite, positive losses."""
    loss = losses.detach().double().cpu().numpy()
    keep = np.isfinite(loss) & (loss > 0)
    x = epochs.detach().double().cpu().numpy()[keep]
    if keep.sum() < 2 or np.ptp(x) == 0:
        return math.nan
    return float(np.polyfit(x, np.log(loss[keep]), 1)[0])


def trajectory_slopes(trajectories: Mapping[int, dict[str, torch.Tensor]]) -> pd.DataFrame:
    """Fig 4 as numbers, per level L: the slope of ln(loss) per epoch of level L's run and of
    level L-1's run projected on m_L (the paper's "the trajectory for level L is steeper"), and
    the losses where both start and end."""
    rows = []
    for level, t in sorted(trajectories.items()):
        rows.append({"level": level,
                     "slope_level": log_loss_slope(t["epochs"], t["loss"]),
                     "slope_projected": log_loss_slope(t["projected_epochs"], t["projected_loss"]),
                     "start_loss_level": float(t["loss"][0]),
                     "start_loss_projected": float(t["projected_loss"][0]),
                     "end_loss_level": float(t["loss"][-1]),
                     "end_loss_projected": float(t["projected_loss"][-1]),
                     "epochs": int(t["epochs"].numel())})
    columns = ["level", "slope_level", "slope_projected", "start_loss_level",
               "start_loss_projected", "end_loss_level", "end_loss_projected", "epochs"]
    return pd.DataFrame(rows, columns=columns).set_index("level")


def _trajectory_points(imp: ImpResults, level: int, evaluator: PointEvaluator):
    """(epochs, points, each epoch's stored buffers) of one level's kept trajectory."""
    files = imp.level(level)
    epochs, points, buffers = [], [], []
    for epoch, state in files.trajectory():
        epochs.append(epoch)
        points.append(evaluator.layout.flatten(state))
        buffers.append({n: state[n] for n in evaluator.buffer_names if n in state})
    if not points:
        raise ValueError(f"level {level} kept no trajectory: set imp.save_every >= 1 and include "
                         f"{level} in imp.trajectory_levels, then train it again")
    return epochs, torch.stack(points).to(evaluator.device), buffers


def points_of_interest(imp: ImpResults, baselines, layout: ParamLayout,
                       baseline_level: int | None) -> dict[str, torch.Tensor]:
    """IMP solutions of every level and the baselines that exist at `baseline_level`, by label."""
    from lthkit.train.baselines import SYMBOLS

    points = {f"W_min({level})": layout.flatten(imp.final(level)) for level in imp.levels_done()}
    if baseline_level is not None:
        for kind, level in baselines.available():
            if level == baseline_level:
                points[f"{SYMBOLS[kind]}({level})"] = layout.flatten(baselines.final(kind, level))
    return points


def similarity_matrices(imp: ImpResults, baselines, layout: ParamLayout
                        ) -> dict[int | None, tuple[pd.DataFrame, pd.DataFrame]]:
    """Figs 14 and 15 for each level with baselines: {level: (distances, cosines)} over every IMP
    solution and the baselines of that level; {None: ...} over the IMP solutions alone when no
    baseline has been trained."""
    return {lv: pairwise_matrices(points_of_interest(imp, baselines, layout, lv))
            for lv in (baselines.levels() or [None])}


def pairwise_matrices(points: Mapping[str, torch.Tensor]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Euclidean distances and cosine similarities between labelled points (Figs 14, 15)."""
    labels = list(points)
    stacked = torch.stack([points[k].double() for k in labels])
    dist = torch.cdist(stacked, stacked)
    unit = stacked / stacked.norm(dim=1, keepdim=True)
    cos = (unit @ unit.T).clamp(-1, 1)
    return (pd.DataFrame(dist.numpy(), index=labels, columns=labels),
            pd.DataFrame(cos.numpy(), index=labels, columns=labels))


# The baselines whose distance from the IMP solutions Result 5 compares (Figs 14, 15).
SIMILARITY_BASELINES = ("W_RI", "W_RP", "W_OS", "W_RP'")


def similarity_blocks(matrices: Mapping[int | None, tuple[pd.DataFrame, pd.DataFrame]]
                      ) -> pd.DataFrame:
    """Figs 14 and 15 read as blocks, per level with baselines: the mean distance and cosine
    similarity between the IMP solutions (every pair), and from the IMP solutions to each
    baseline of that level (`<measure> IMP-<symbol>`): what Result 5's sentences compare."""
    rows = []
    for level, (distance, cosine) in matrices.items():
        if level is None:
            continue
        imp = [p for p in distance.index if str(p).startswith("W_min(")]
        row: dict[str, float] = {"level": level, "imp_solutions": len(imp)}
        for measure, matrix in (("distance", distance), ("cosine", cosine)):
            block = matrix.loc[imp, imp].to_numpy()
            pairs = block[np.triu_indices(len(imp), k=1)]
            row[f"{measure} IMP-IMP"] = float(pairs.mean()) if len(pairs) else float("nan")
            for symbol in SIMILARITY_BASELINES:
                name = f"{symbol}({level})"
                row[f"{measure} IMP-{symbol}"] = (float(matrix.loc[imp, name].mean())
                                                  if name in matrix.columns else float("nan"))
        rows.append(row)
    return pd.DataFrame(rows).set_index("level") if rows else pd.DataFrame()
