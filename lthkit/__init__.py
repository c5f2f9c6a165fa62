"""lthkit: a Jupyter-first reproduction of the loss-landscape study of IMP and lottery tickets.

The notebooks under notebooks/ are thin; what they call lives here, one package per step of the
study, each importing only the packages above it in this list (docs/ARCHITECTURE.md):

    config     parameter YAMLs, validated            platform   device, progress bars, executor
    store      the run folder, atomic writes          data       datasets on the device
    nets       networks, masks, points and their loss train      context, training, IMP, baselines
    analysis   geometry, hessian, landscape, tables   verdicts   statistics, the papers' claims
    tickets    the IE643 experiments, Bain's study    plots      the papers' figures, widgets
    report     the notebook series runner, offline HTML

`import lthkit as lk` gives the names a notebook starts from; `from lthkit import hessian, plots,
...` the modules the notebooks use, by their short names.
"""

import importlib as _importlib
import sys as _sys

from lthkit.analysis import geometry, hessian, landscape, published
from lthkit.config import Params, ParamsError, load_params, notebook_params
from lthkit.plots.widgets import choice_picker, interactive_default, level_picker
from lthkit.store import MissingInputError, RunMismatchError, RunStore
from lthkit.train import baselines, imp
from lthkit.train.context import Context, open_run, resolve_device
from lthkit.train.imp import ImpResults, run_imp
from lthkit.verdicts import claims, paper_claims, replicates

from lthkit import plots, tickets  # isort: skip  (plots and tickets import the packages above)

__version__ = "0.1.0"

__all__ = [
    "Context", "open_run", "resolve_device", "ImpResults", "run_imp", "Params", "ParamsError",
    "load_params", "notebook_params", "MissingInputError", "RunMismatchError", "RunStore",
    "choice_picker", "interactive_default", "level_picker",
    "geometry", "hessian", "landscape", "published", "baselines", "imp", "claims", "paper_claims",
    "replicates", "plots", "tickets",
]

# The module names of the flat layout before the packages by concern (issue 24), kept importable
# (`from lthkit.baselines import SYMBOLS`) so that notebooks and scripts written against them keep
# working. Each name is the same module object as its new home, submodules included.
OLD_NAMES = {
    "params": "lthkit.config", "gpu": "lthkit.platform.device",
    "progress": "lthkit.platform.progress", "executor": "lthkit.platform.executor",
    "models": "lthkit.nets.models", "pruning": "lthkit.nets.pruning", "points": "lthkit.nets",
    "fused": "lthkit.train.fused", "context": "lthkit.train.context",
    "training": "lthkit.train.training", "imp": "lthkit.train.imp",
    "baselines": "lthkit.train.baselines", "geometry": "lthkit.analysis.geometry",
    "hessian": "lthkit.analysis.hessian", "landscape": "lthkit.analysis.landscape",
    "published": "lthkit.analysis.published", "analysis_units": "lthkit.analysis.units",
    "stats": "lthkit.verdicts.stats", "claims": "lthkit.verdicts.claims",
    "paper_claims": "lthkit.verdicts.paper_claims", "replicates": "lthkit.verdicts.replicates",
    "widgets": "lthkit.plots.widgets", "offline_html": "lthkit.report.offline_html",
    "workload": "lthkit.report.workload",
}


def _alias_old_names() -> None:
    """Register each old module name (and its submodules) as the module it became."""
    for old, new in OLD_NAMES.items():
        module = _importlib.import_module(new)
        _sys.modules[f"{__name__}.{old}"] = module
        for name, sub in list(_sys.modules.items()):
            if name.startswith(new + ".") and new != "lthkit.nets":
                _sys.modules[f"{__name__}.{old}{name[len(new):]}"] = sub


_alias_old_names()


def __getattr__(name: str):
    """`lthkit.<old name>` after `import lthkit.<old name>`: the module it became."""
    if name in OLD_NAMES:
        return _sys.modules[OLD_NAMES[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
