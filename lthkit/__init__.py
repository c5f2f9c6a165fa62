"""lthkit: a Jupyter-first reproduction of the loss-landscape study of IMP and lottery tickets.

The notebooks under notebooks/ are thin; what they call lives here:

    params     parameter YAMLs, validated          data       datasets on the device
    models     ResNet-20, VGG-16, MLP, LeNet-5     pruning    masks and how they are made
    training   masked SGD/Adam, resumable          imp        IMP with weight rewinding
    store      the run folder, atomic writes       plots      the papers' figures
    widgets    level pickers                       report     the notebook series runner
    replicates seeds, folders, tables across them  paper_claims  the papers' claims, judged
    executor   local or Ray units of work          analysis_units  notebooks 04-09's work as units
"""

from .context import Context, open_run, resolve_device
from .imp import ImpResults, run_imp
from .params import Params, ParamsError, load_params, notebook_params
from .store import MissingInputError, RunMismatchError, RunStore
from .widgets import choice_picker, interactive_default, level_picker

__version__ = "0.1.0"

__all__ = [
    "Context", "open_run", "resolve_device", "ImpResults", "run_imp", "Params", "ParamsError",
    "load_params", "notebook_params", "MissingInputError", "RunMismatchError", "RunStore",
    "choice_picker", "interactive_default", "level_picker",
]
