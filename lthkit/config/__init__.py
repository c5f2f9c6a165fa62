"""Parameters: every value a user may change, one validated section per concern, read from YAML.

    base       the section base, ParamsError, level lists, paths from the project root
    datasets   the datasets the kit knows, one DatasetSpec each (register_dataset)
    architectures  the kit's networks as the parameters know them (register_architecture)
    catalog    datasets' and networks' facts the checks need (shapes, sizes), without torch
    training   run, data, model, train, imp, baselines: what decides the trained weights
    analysis   analysis, hessian, landscape: what decides the analyses' numbers
    report     report, claims (the claims' margins)
    tickets    mnist (the IE643 experiments), bain
    params     Params (all sections), reading a YAML, overrides, notebook parameters
    seeds      derive_seed, the replicates' seeds and parameters
    cli        lthkit-params show|check (python -m lthkit.config)

Imports nothing else of lthkit (pydantic and yaml only: no torch); every other package imports it.
"""

from lthkit.config.analysis import AnalysisSection, HessianSection, LandscapeSection
from lthkit.config.architectures import ArchitectureSpec, register_architecture
from lthkit.config.base import (ParamsError, contained_run_dir, flatten, notebook_path,
                                project_root, resolve_params_file, resolve_path)
from lthkit.config.datasets import DatasetSpec, register_dataset
from lthkit.config.params import (EXTENDABLE_KEYS, RESULT_NEUTRAL_KEYS, SECTIONS, TRAINING_SECTIONS,
                                  Params, load_params, notebook_params, params_from_dict,
                                  parse_overrides, read_yaml)
from lthkit.config.report import CLAIM_MARGINS, ClaimsSection, ReportSection
from lthkit.config.seeds import derive_seed, replicate_params, replicate_seed
from lthkit.config.tickets import (BainSection, EarlyBirdSection, EarlyStoppingSection,
                                   MnistSection, RunSpec, TransferSection)
from lthkit.config.training import (BaselinesSection, DataSection, ImpSection, ModelSection,
                                    RunSection, TrainSection)

__all__ = ["ParamsError", "Params", "load_params", "notebook_params", "params_from_dict",
           "parse_overrides", "read_yaml", "project_root", "resolve_path", "resolve_params_file",
           "notebook_path", "contained_run_dir", "flatten", "SECTIONS", "EXTENDABLE_KEYS",
           "TRAINING_SECTIONS", "RESULT_NEUTRAL_KEYS", "derive_seed", "replicate_seed",
           "replicate_params", "RunSection", "DataSection", "ModelSection", "TrainSection",
           "ImpSection", "BaselinesSection", "AnalysisSection", "HessianSection",
           "LandscapeSection", "ReportSection", "ClaimsSection", "CLAIM_MARGINS", "MnistSection",
           "BainSection", "RunSpec", "EarlyBirdSection", "TransferSection",
           "EarlyStoppingSection", "DatasetSpec", "register_dataset", "ArchitectureSpec",
           "register_architecture"]
