"""A batched loss over many weight vectors, called chunk by chunk with points built on demand."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from lthkit.platform.progress import tqdm

__all__ = ["Evaluate", "evaluate_points", "points_per_call"]

Evaluate = Callable[[Tensor], "Tensor | tuple[Tensor, Tensor]"]


def points_per_call(evaluate: Evaluate, chunk: int) -> int:
    """`chunk` rounded up to whole blocks of the evaluator's `points_per_pass` (P).

    A PointEvaluator takes points through the network P at a time; a call with a multiple of P
    points fills every pass, so only the last call of a series can leave a block part empty.
    Evaluators without a P (plain functions) get `chunk` as it is.
    """
    owner = getattr(evaluate, "__self__", evaluate)
    p = getattr(owner, "points_per_pass", None)
    if not isinstance(p, int) or p < 1:
        return chunk
    return max(1, math.ceil(chunk / p)) * p


def evaluate_points(evaluate: Evaluate, count: int, build: Callable[[int, int], Tensor],
                    chunk: int = 64, progress: bool = False, desc: str = "points"
                    ) -> tuple[Tensor, Tensor | None]:
    """Losses (and accuracies) of `count` points built chunk by chunk by `build(start, stop)`.

    Points are made on demand so a 51 x 51 grid never holds 2,601 weight vectors at once; a chunk
    is a whole number of the evaluator's passes (`points_per_call`).
    """
    losses, accs = [], []
    step = points_per_call(evaluate, chunk) if count > 0 else chunk
    with tqdm(total=count, desc=desc, disable=not progress, leave=False) as bar:
        for start in range(0, count, step):
            stop = min(count, start + step)
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
