"""What every notebook of the series starts from, in one call: its parameters, whether it draws
widgets, the run it reads or creates, the IMP results and the levels it studies (checked to be
trained), so that a notebook's setup cell holds only what is its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from lthkit.analysis.hessian import pruning_choice_levels
from lthkit.config import Params, notebook_params
from lthkit.config.series import NOTEBOOKS, notebook_file
from lthkit.plots.widgets import interactive_default
from lthkit.train.context import Context, open_run
from lthkit.train.imp import ImpResults

__all__ = ["NotebookContext", "notebook_context"]


@dataclass(frozen=True)
class NotebookContext:
    """A notebook's start; unpacks as `P, ctx, interactive, imp_results, levels`."""

    params: Params
    ctx: Context
    interactive: bool
    imp: ImpResults
    levels: list[int]

    def __iter__(self) -> Iterator[Any]:
        return iter((self.params, self.ctx, self.interactive, self.imp, self.levels))


def notebook_context(namespace: Mapping[str, Any], stem: str) -> NotebookContext:
    """Open the run of notebook `stem` from its parameters cell (`namespace`: its globals), as
    lthkit/config/series.py declares the notebook opens it.

    The parameters are the sections papermill injected, else `params_file` (lthkit.config.
    notebook_params); a notebook that `creates` its run makes the run folder, any other stops on
    a missing run with an error naming the notebook to run first, and on a missing IMP level
    with one naming the levels (the levels it studies, and what it `reads` besides).
    """
    if stem not in NOTEBOOKS:
        raise KeyError(f"{stem!r} is not a notebook of the series (lthkit/config/series.py)")
    declared = NOTEBOOKS[stem]
    params = notebook_params(namespace.get("params_file"), namespace)
    interactive = interactive_default(namespace.get("interactive"), namespace)
    ctx = open_run(params, create=declared.creates, needed_by=notebook_file(stem),
                   replicate=int(namespace.get("replicate") or 0))
    imp = ImpResults(ctx.store)
    studied = params.levels(getattr(params, declared.levels).levels, minimum=1)
    if not declared.creates:
        print(f"data: {params.data.describe()}")
        if declared.reads != "nothing":
            imp.require_levels(levels_read(params, declared.reads, studied), notebook_file(stem))
    return NotebookContext(params, ctx, interactive, imp, studied)


def levels_read(params: Params, reads: str, studied: list[int]) -> list[int]:
    """The IMP levels a notebook needs trained: level 0 and those it studies; with `previous`
    each one's predecessor; notebook 08's band and sweep levels for `pruning_choices`."""
    if reads == "pruning_choices":
        return pruning_choice_levels(params)
    return sorted({0, *studied, *(lv - 1 for lv in studied if reads == "previous")})
