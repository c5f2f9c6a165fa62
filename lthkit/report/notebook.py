"""What every notebook of the series starts from, in one call: its parameters, whether it draws
widgets, the run it reads or creates, the IMP results and the levels it studies (checked to be
trained), so that a notebook's setup cell holds only what is its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping

from lthkit.config import Params, notebook_params
from lthkit.config.series import NOTEBOOKS, notebook_path
from lthkit.plots.widgets import interactive_default
from lthkit.train.context import Context, open_run
from lthkit.train.imp import ImpResults

__all__ = ["NotebookContext", "notebook_context"]

LevelSection = Literal["analysis", "baselines"]


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


def notebook_context(namespace: Mapping[str, Any], stem: str, *, create: bool = False,
                     levels: LevelSection = "analysis", previous: bool = False,
                     require: bool = True,
                     also: Callable[[Params], Iterable[int]] | None = None) -> NotebookContext:
    """Open the run of notebook `stem` from its parameters cell (`namespace`: its globals).

    The parameters are the sections papermill injected, else `params_file` (lthkit.config.
    notebook_params); `create` makes the run folder (the training notebooks), otherwise a missing
    run stops with an error naming the notebook to run first. `levels` names the section whose
    `levels` the notebook studies (level 0 left out); unless `require` is off, those levels,
    level 0, with `previous` each level's predecessor, and the levels `also(params)` names must
    be trained.
    """
    if stem not in NOTEBOOKS:
        raise KeyError(f"{stem!r} is not a notebook of the series (lthkit/config/series.py)")
    params = notebook_params(namespace.get("params_file"), namespace)
    interactive = interactive_default(namespace.get("interactive"), namespace)
    ctx = open_run(params, create=create, needed_by=notebook_path(stem),
                   replicate=int(namespace.get("replicate") or 0))
    imp = ImpResults(ctx.store)
    studied = params.levels(getattr(params, levels).levels, minimum=1)
    if not create:
        print(f"data: {params.data.describe()}")
        if require:
            needed = {0, *studied, *(lv - 1 for lv in studied if previous),
                      *(also(params) if also else ())}
            imp.require_levels(sorted(needed), notebook_path(stem))
    return NotebookContext(params, ctx, interactive, imp, studied)
