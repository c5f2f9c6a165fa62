"""MNIST tickets (the IE643 report's Table 1, after Frankle & Carbin 2019): IMP rewinding to
initialization and the random re-initialization control, for the MLP and LeNet-5."""

from __future__ import annotations

from typing import Sequence

from lthkit.train.baselines import run_baselines
from lthkit.train.context import Context, sub_run
from lthkit.train.imp import ImpResults, run_imp

# --- MNIST tickets (IE643 Table 1) --------------------------------------------------------------

def mnist_tickets(ctx: Context, arch: str, progress: bool = True) -> Context:
    """IMP (rewinding to initialization) and the random re-initialization control on MNIST."""
    p = ctx.params.mnist
    spec = getattr(p, arch)
    sub = sub_run(ctx, f"mnist/{arch}", data=p.data, model=spec.model, train=spec.train,
                  imp=spec.imp, baselines=ctx.params.baselines.model_copy(
                      update={"kinds": ["random_reinit"], "levels": "all"}))
    run_imp(sub, progress=progress)
    run_baselines(sub, progress=progress, together=False)
    return sub


def iteration_levels(levels: Sequence[int]) -> list[int]:
    """The levels whose training curves are drawn: the dense one, the middle one and the last."""
    if not levels:
        return []
    return sorted({levels[0], levels[len(levels) // 2], levels[-1]})


def iteration_histories(sub: Context) -> dict[str, list[dict]]:
    """Per-epoch records of the levels of `iteration_levels`, labelled by % of weights left
    (the report's Figs 1b and 2b)."""
    imp = ImpResults(sub.store)
    out = {}
    for level in iteration_levels(imp.levels_done()):
        metrics = imp.metrics(level)
        out[f"{100 * metrics['final']['density']:.1f}% left"] = metrics["history"]
    return out


