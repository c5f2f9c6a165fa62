"""Early-bird tickets (You et al. 2020): the epoch after which a ticket's mask stops changing,
from weight masks (the MNIST MLP) or BatchNorm channel masks (the main run's dense level 0)."""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from lthkit.config.series import TRAIN_IMP, notebook_file
from lthkit.config.tickets import EarlyBirdSection
from lthkit.nets.pruning import Mask, hamming_distance, magnitude_prune
from lthkit.train.context import Context
from lthkit.train.imp import ImpResults, SolutionFiles

# --- early-bird tickets (You et al. 2020) ---------------------------------------------------------
# You et al. draw a channel mask at every epoch (the fraction p of BatchNorm channels with the
# smallest |gamma|, ranked over the whole network), keep the distances between consecutive
# epochs' masks in a FIFO queue of length l = 5, and draw the ticket, during training, at the
# first epoch where the largest distance in the queue is below epsilon = 0.1. (Their released
# code measures the newest mask against each of the queue's older ones instead; with masks that
# move little per epoch the two agree to within an epoch or so.)

def bn_scale_names(model: nn.Module) -> list[str]:
    """State-dict names of the BatchNorm scaling factors gamma, in module order."""
    return [f"{name}.weight" for name, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine]


def _scores_mask(state: Mapping[str, torch.Tensor], names: Sequence[str], fraction: float) -> Mask:
    """Global magnitude pruning of `fraction` of the tensors `names` of a state dict."""
    values = {n: state[n] for n in names}
    dense = {n: torch.ones_like(v, dtype=torch.bool) for n, v in values.items()}
    return magnitude_prune(values, dense, fraction=fraction, scope="global")


def channel_masks(files: SolutionFiles, names: Sequence[str], ratio: float
                  ) -> list[tuple[float, Mask]]:
    """(epoch, channel mask) along a run's trajectory: the fraction `ratio` of BatchNorm channels
    with the smallest |gamma|, ranked over all layers together (You et al.)."""
    if not names:
        raise ValueError("channel masks need BatchNorm scaling factors; this network has none")
    return [(epoch, _scores_mask(state, names, ratio)) for epoch, state in files.trajectory()]


def weight_masks(files: SolutionFiles, fraction: float) -> Iterator[tuple[float, Mask]]:
    """(epoch, weight mask) along a run's trajectory: global magnitude pruning of `fraction` of
    the prunable weights, one epoch at a time (the masks of a large network are not all kept)."""
    names = list(files.mask())
    for epoch, state in files.trajectory():
        yield epoch, _scores_mask(state, names, fraction)


def mask_distances(masks: Iterable[tuple[float, Mask]]) -> pd.DataFrame:
    """Normalized Hamming distance between each epoch's mask and the previous epoch's."""
    rows, previous = [], None
    for epoch, mask in masks:
        if previous is not None:
            rows.append({"epoch": epoch, "distance": hamming_distance(previous, mask)})
        previous = mask
    return pd.DataFrame(rows, columns=["epoch", "distance"])


def early_bird_rule(distances: pd.DataFrame, window: int, epsilon: float) -> pd.DataFrame:
    """You et al.'s rule on a table of consecutive distances: `window_max` is the largest of the
    last `window` distances (NaN until there are that many), `drawn` whether it is < epsilon."""
    out = distances.copy()
    out["window_max"] = out["distance"].rolling(window, min_periods=window).max()
    out["drawn"] = out["window_max"] < epsilon
    return out


def drawn_epoch(table: pd.DataFrame) -> float | None:
    """The epoch at which the early-bird ticket is drawn during training (None: never)."""
    drawn = table.loc[table["drawn"], "epoch"]
    return float(drawn.iloc[0]) if len(drawn) else None


def settled_epoch(table: pd.DataFrame, epsilon: float) -> float | None:
    """In hindsight: the first epoch from which the distance stays under epsilon to the end."""
    below = (table["distance"] < epsilon).to_numpy()
    for i in range(len(below)):
        if below[i:].all():
            return float(table["epoch"].iloc[i])
    return None


def weight_early_bird(files: SolutionFiles, cfg: EarlyBirdSection) -> pd.DataFrame:
    """Distances between consecutive epochs' weight masks, with You et al.'s rule applied."""
    return early_bird_rule(mask_distances(weight_masks(files, cfg.prune_fraction)), cfg.window,
                           cfg.epsilon)


def channel_early_bird(masks: Sequence[tuple[float, Mask]], cfg: EarlyBirdSection) -> pd.DataFrame:
    """Distances between consecutive epochs' channel masks, with You et al.'s rule applied."""
    return early_bird_rule(mask_distances(masks), cfg.window, cfg.epsilon)


def channel_distance_matrix(masks: Sequence[tuple[float, Mask]]) -> pd.DataFrame:
    """Distance between the channel masks of every pair of epochs (You et al.'s mask-distance
    matrix): rows and columns are epochs."""
    epochs = [e for e, _ in masks]
    flat = torch.stack([torch.cat([m[n].flatten() for n in m]) for _, m in masks])
    matrix = (flat[:, None, :] ^ flat[None, :, :]).float().mean(-1)
    return pd.DataFrame(matrix.numpy(), index=epochs, columns=epochs)


def main_run_trajectory(ctx: Context) -> tuple[SolutionFiles | None, str]:
    """The main run's dense level 0, when it has per-epoch weights and BatchNorm; and a line
    saying what is used, or why it cannot be."""
    files = ImpResults(ctx.store).level(0)
    p = ctx.params
    what = f"the main run's dense level 0 ({p.model.arch} on {p.data.dataset})"
    if not files.done():
        return None, (f"{what} is not trained yet: run {notebook_file(TRAIN_IMP)} with "
                      f"{p.source} first for You et al.'s channel masks")
    if len(files.trajectory_epochs()) < 2:
        return None, (f"{what} kept no per-epoch weights: You et al.'s rule needs imp.save_every "
                      f">= 1 and level 0 in imp.trajectory_levels (a new run.name, then "
                      f"notebook 01)")
    if not bn_scale_names(ctx.new_model()):
        return None, f"{what} has no BatchNorm, so no channel masks"
    return files, f"{what}, {len(files.trajectory_epochs())} kept epochs"


def early_birds(ctx: Context, mlp: Context
                ) -> tuple[dict[str, pd.DataFrame], pd.DataFrame | None, str]:
    """The early-bird tables of notebook 10: weight masks of the MNIST MLP's dense run and, when
    the main run has them, channel and weight masks of its dense level 0; the channel masks'
    distance matrix (or None); and a line saying which runs were used."""
    cfg = ctx.params.mnist.early_bird
    tables = {"MLP (MNIST), weight masks": weight_early_bird(ImpResults(mlp.store).level(0), cfg)}
    files, note = main_run_trajectory(ctx)
    matrix = None
    if files is not None:
        masks = channel_masks(files, bn_scale_names(ctx.new_model()), cfg.channel_ratio)
        tables["main run, channel masks (You et al.)"] = channel_early_bird(masks, cfg)
        tables["main run, weight masks"] = weight_early_bird(files, cfg)
        matrix = channel_distance_matrix(masks)
    return tables, matrix, note


def early_bird_summary(tables: Mapping[str, pd.DataFrame], epsilon: float) -> pd.DataFrame:
    """One row per run and kind of mask: the epoch the ticket is drawn at during training (You
    et al.'s rule), the epoch from which the mask stays settled (hindsight), the last epoch."""
    rows = []
    for name, t in tables.items():
        last = float(t["epoch"].iloc[-1]) if len(t) else None
        drawn = drawn_epoch(t) if len(t) else None
        rows.append({"masks": name, "last_epoch": last, "drawn_epoch": drawn,
                     "drawn_at_%_of_training": None if drawn is None or not last
                     else 100 * drawn / last,
                     "settled_epoch": settled_epoch(t, epsilon) if len(t) else None,
                     "last_distance": float(t["distance"].iloc[-1]) if len(t) else None})
    return pd.DataFrame(rows).set_index("masks")


