"""A batched loss over many weight vectors, called chunk by chunk with points built on demand."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from ..progress import tqdm

__all__ = ["Evaluate", "evaluate_points"]

Evaluate = Callable[[Tensor], "Tensor | tuple[Tensor, Tensor]"]


def evaluate_points(evaluate: Evaluate, count: int, build: Callable[[int, int], Tensor],
                    chunk: int = 64, progress: bool = False, desc: str = "points"
                    ) -> tuple[Tensor, Tensor | None]:
    """Losses (and accuracies) of `count` points built chunk by chunk by `build(start, stop)`.

    Points are made on demand so a 51 x 51 grid never holds 2,601 weight vectors at once.
    """
    losses, accs = [], []
    with tqdm(total=count, desc=desc, disable=not progress, leave=False) as bar:
        for start in range(0, count, chunk):
            stop = min(count, start + chunk)
            loss, acc = _call(evaluate, build(start, stop))
            losses.append(loss)
            if acc is not None:
                accs.append(acc)
            bar.update(stop - start)
    loss = torch.cat(losses) if losses else torch.zeros(0, dtype=torch.float64)
    return loss, (torch.cat(accs) if accs and len(accs) == len(losses) else None)


def _call(evaluate: Evaluate, points: Tensor) -> tuple[Tensor, Tensor | None]:
    """Normalize an evaluator's answer to (float64 CPU losses, accuracies or None)."""
    out = evaluate(points)
    loss, acc = out if isinstance(out, tuple) else (out, None)
    loss = loss.detach().double().cpu().reshape(-1)
    return loss, (None if acc is None else acc.detach().double().cpu().reshape(-1))
