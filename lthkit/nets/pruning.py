"""Masks over the prunable weights, and the ways of making them.

A mask is a dict from the name of a prunable parameter (every conv and linear weight, never a
bias or BatchNorm parameter) to a bool tensor of its shape: True where the weight is alive.
Parameters not in the mask are never pruned. Counts are exact: pruning a fraction p of n alive
weights removes round(p * n) of them (half up), ties broken by position, never by a `< threshold` test.
"""

from __future__ import annotations

from typing import Literal, Mapping

import torch
from torch import nn

from lthkit.nets.models import prunable_names

__all__ = [
    "Mask", "full_mask", "count_alive", "count_total", "sparsity", "density", "layer_report",
    "magnitude_prune", "random_prune", "prune_count", "apply_mask", "is_nested",
    "hamming_distance", "masked_state", "keep_counts",
]

Mask = dict[str, torch.Tensor]
Scope = Literal["global", "layerwise"]


def full_mask(model: nn.Module) -> Mask:
    """The dense mask m_0: every prunable weight alive."""
    params = dict(model.named_parameters())
    return {n: torch.ones_like(params[n], dtype=torch.bool) for n in prunable_names(model)}


def count_alive(mask: Mask) -> int:
    return int(sum(int(m.sum()) for m in mask.values()))


def count_total(mask: Mask) -> int:
    return int(sum(m.numel() for m in mask.values()))


def sparsity(mask: Mask) -> float:
    """S(m): the fraction of prunable weights that are pruned."""
    return 1.0 - count_alive(mask) / count_total(mask)


def density(mask: Mask) -> float:
    """The fraction of prunable weights left."""
    return count_alive(mask) / count_total(mask)


def layer_report(mask: Mask) -> list[dict[str, object]]:
    """Alive and total weights per prunable layer (the sparsity report of a level)."""
    return [{"layer": n, "alive": int(m.sum()), "total": m.numel(),
             "density": float(m.float().mean())} for n, m in mask.items()]


def prune_count(alive: int, fraction: float) -> int:
    """How many of `alive` weights a pruning step of `fraction` removes (rounded half up)."""
    return int(fraction * alive + 0.5)


def _pick_smallest(scores: torch.Tensor, n: int, offset: int = 0) -> torch.Tensor:
    """Indices of the n smallest scores after skipping the `offset` smallest (stable ties)."""
    order = torch.argsort(scores, stable=True)
    return order[offset:offset + n]


def magnitude_prune(weights: Mapping[str, torch.Tensor], mask: Mask, fraction: float | None = None,
                    scope: Scope = "global", keep: int | Mapping[str, int] | None = None,
                    band_offset: float = 0.0) -> Mask:
    """Prune the smallest-magnitude alive weights; returns a new mask nested in `mask`.

    Either `fraction` of the alive weights is removed, or exactly `keep` weights are kept (an int
    for a global ranking, a per-layer dict for layerwise; one-shot pruning to a target sparsity).
    `band_offset` > 0 prunes a band of slightly larger weights instead: the ranks from
    band_offset*alive on (Fig 16 of the paper: ranks p..2p for band_offset = p).
    """
    groups = _groups(mask, scope)
    new = {n: m.clone() for n, m in mask.items()}
    for names in groups:
        alive_idx, scores = _alive_scores(weights, mask, names)
        n_alive = alive_idx.numel()
        n_prune = _n_prune(n_alive, fraction, keep, names, scope)
        offset = min(prune_count(n_alive, band_offset), n_alive - n_prune)
        chosen = alive_idx[_pick_smallest(scores, n_prune, offset)]
        _clear(new, names, chosen)
    return new


def random_prune(mask: Mask, fraction: float | None = None, generator: torch.Generator | None = None,
                 scope: Scope = "global", keep: int | Mapping[str, int] | None = None) -> Mask:
    """Prune alive weights chosen uniformly at random (same counts as magnitude_prune)."""
    groups = _groups(mask, scope)
    new = {n: m.clone() for n, m in mask.items()}
    for names in groups:
        alive_idx, _ = _alive_scores(None, mask, names)
        n_prune = _n_prune(alive_idx.numel(), fraction, keep, names, scope)
        perm = torch.randperm(alive_idx.numel(), generator=generator)
        chosen = alive_idx[perm[:n_prune].to(alive_idx.device)]
        _clear(new, names, chosen)
    return new


def _groups(mask: Mask, scope: Scope) -> list[list[str]]:
    return [list(mask)] if scope == "global" else [[n] for n in mask]


def _alive_scores(weights: Mapping[str, torch.Tensor] | None, mask: Mask,
                  names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices (over the concatenated layers in `names`) of alive weights, and |w| there."""
    flat_mask = torch.cat([mask[n].flatten() for n in names])
    alive_idx = flat_mask.nonzero().flatten()
    if weights is None:
        return alive_idx, torch.empty(0)
    flat_w = torch.cat([weights[n].detach().flatten().to(flat_mask.device) for n in names])
    return alive_idx, flat_w[alive_idx].abs().float()


def _n_prune(n_alive: int, fraction: float | None, keep: int | Mapping[str, int] | None,
             names: list[str], scope: Scope) -> int:
    if (fraction is None) == (keep is None):
        raise ValueError("give exactly one of fraction and keep")
    if fraction is not None:
        return prune_count(n_alive, fraction)
    target = keep[names[0]] if isinstance(keep, Mapping) else keep
    if scope == "layerwise" and not isinstance(keep, Mapping):
        raise ValueError("layerwise pruning to a target needs a per-layer keep dict")
    if not 0 <= int(target) <= n_alive:
        raise ValueError(f"cannot keep {target} of {n_alive} alive weights")
    return n_alive - int(target)


def _clear(mask: Mask, names: list[str], flat_idx: torch.Tensor) -> None:
    """Set the given flat indices (over the concatenation of `names`) to pruned."""
    start = 0
    for n in names:
        size = mask[n].numel()
        local = flat_idx[(flat_idx >= start) & (flat_idx < start + size)] - start
        mask[n].view(-1)[local] = False
        start += size


def keep_counts(mask: Mask, scope: Scope) -> int | dict[str, int]:
    """What `keep=` takes to reproduce `mask`'s sparsity (total, or per layer)."""
    if scope == "global":
        return count_alive(mask)
    return {n: int(m.sum()) for n, m in mask.items()}


@torch.no_grad()
def apply_mask(model: nn.Module, mask: Mask) -> None:
    """Zero the pruned weights of `model` in place."""
    params = dict(model.named_parameters())
    for n, m in mask.items():
        params[n].mul_(m.to(params[n].device, params[n].dtype))


def masked_state(state: Mapping[str, torch.Tensor], mask: Mask) -> dict[str, torch.Tensor]:
    """A copy of a state dict with the pruned weights set to zero (m ⊙ W)."""
    out = {k: v.clone() for k, v in state.items()}
    for n, m in mask.items():
        out[n].mul_(m.to(out[n].device, out[n].dtype))
    return out


def is_nested(inner: Mask, outer: Mask) -> bool:
    """True when every weight alive in `inner` is alive in `outer`."""
    return all(bool((inner[n] & ~outer[n]).sum() == 0) for n in outer)


def hamming_distance(a: Mask, b: Mask) -> float:
    """The fraction of prunable weights on which two masks differ (0: equal, 1: complementary)."""
    differ = sum(int((a[n] ^ b[n]).sum()) for n in a)
    return differ / count_total(a)
