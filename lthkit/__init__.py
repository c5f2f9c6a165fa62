"""lthkit: a Jupyter-first reproduction of the loss-landscape study of IMP and lottery tickets.

The notebooks under notebooks/ are thin; what they call lives here, one package per step of the
study, each importing only the packages above it in this list (docs/ARCHITECTURE.md):

    config     parameter YAMLs, validated            platform   device, progress bars, executor
    store      the run folder, atomic writes          data       datasets on the device
    nets       networks, masks, points and their loss train      context, training, IMP, baselines
    analysis   geometry, hessian, landscape, tables   verdicts   statistics, the papers' claims
    tickets    the IE643 experiments, Bain's study    plots      the papers' figures, widgets
    report     the notebook series runner, offline HTML

`import lthkit as lk` gives the few names a notebook starts from (`lk.notebook_context`,
`lk.compute`, `lk.open_run`, ...), each imported from its package when first used: importing
lthkit itself imports nothing else. Modules are imported from the packages where they live
(`from lthkit.analysis import hessian as hs`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Each public name and the module it lives in (imported on first use, PEP 562).
_HOMES: dict[str, str] = {
    "Params": "lthkit.config", "ParamsError": "lthkit.config", "load_params": "lthkit.config",
    "notebook_params": "lthkit.config",
    "MissingInputError": "lthkit.store", "RunMismatchError": "lthkit.store",
    "RunStore": "lthkit.store",
    "Context": "lthkit.train.context", "open_run": "lthkit.train.context",
    "resolve_device": "lthkit.train.context",
    "ImpResults": "lthkit.train.imp", "run_imp": "lthkit.train.imp",
    "compute": "lthkit.analysis.plans",
    "choice_picker": "lthkit.plots.widgets", "interactive_default": "lthkit.plots.widgets",
    "level_picker": "lthkit.plots.widgets",
    "NotebookContext": "lthkit.report.notebook", "notebook_context": "lthkit.report.notebook",
}

__all__ = sorted(_HOMES)

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ imports them
    from lthkit.analysis.plans import compute
    from lthkit.config import Params, ParamsError, load_params, notebook_params
    from lthkit.plots.widgets import choice_picker, interactive_default, level_picker
    from lthkit.report.notebook import NotebookContext, notebook_context
    from lthkit.store import MissingInputError, RunMismatchError, RunStore
    from lthkit.train.context import Context, open_run, resolve_device
    from lthkit.train.imp import ImpResults, run_imp


def __getattr__(name: str) -> Any:
    """`lk.<name>`: the public name, imported from its module the first time it is asked for."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
