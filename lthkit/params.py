"""Parameter files: one YAML per preset, read into a validated, typed object.

Every value a user may want to change lives here, with its default and a one-line help string.
A YAML names only what differs from the defaults (the defaults are the paper's ResNet-20 recipe,
see `../shared/REPRODUCTION.md`). Reading is strict: an unknown key, a value of the wrong type or
an impossible value stops with a `ParamsError` that names the key and the file.

    python -m lthkit.params show params/quick.yaml     # the full, resolved parameter set
    python -m lthkit.params check params/*.yaml        # validate files, exit 1 on the first error
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "Params",
    "ParamsError",
    "load_params",
    "params_from_dict",
    "notebook_params",
    "project_root",
    "parse_overrides",
    "SECTIONS",
]


class ParamsError(ValueError):
    """A parameter file (or injected parameter set) that cannot be used, with the key and source."""


class _Section(BaseModel):
    """Base of every section: no unknown keys, no silent type coercion, frozen once read."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=True)


LevelSelection = Literal["all"] | list[int]


class _KeyError(ValueError):
    """Raised inside validators to name the offending key (relative to the section raising it)."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def _check_level_list(selection: LevelSelection, levels: int, key: str, minimum: int) -> None:
    if selection == "all":
        return
    bad = [x for x in selection if not minimum <= x <= levels]
    if bad:
        raise _KeyError(key, f"levels {bad} outside {minimum}..{levels} (imp.levels = {levels})")


def _check_levels_fit(p: "Params") -> None:
    _check_levels_fit_for(p.model, p.data.dataset, p.imp, "imp")


def _check_levels_fit_for(model: "ModelSection", dataset: str, imp: "ImpSection", key: str) -> None:
    """More levels than the sparsity allows: some layer (or the net) would be left with no weight."""
    from .models import prunable_sizes  # local import: models imports torch

    sizes = prunable_sizes(model.arch, model.width, dataset)
    keep = (1.0 - imp.prune_fraction) ** imp.levels
    smallest = min(sizes) if imp.scope == "layerwise" else sum(sizes)
    if smallest * keep < 1.0:
        what = "the smallest layer" if imp.scope == "layerwise" else "the network"
        raise _KeyError(f"{key}.levels", f"{imp.levels} levels of {imp.prune_fraction:.0%} leave "
                        f"{what} ({smallest} weights) with less than one weight")


class RunSection(_Section):
    name: str = Field("resnet20_paper", pattern=r"^[A-Za-z0-9_.-]+$",
                      description="run folder name: everything goes to <output_root>/<name>/")
    output_root: str = Field("outputs", description="folder of run folders; relative paths are "
                             "taken from the project root")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda|cuda:\d+|mps)$",
                        description="auto picks cuda when present, else cpu")
    seed: int = Field(0, ge=0, description="seeds initialization, data order, subsets, directions")
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads (None: torch default)")


class DataSection(_Section):
    dataset: Literal["cifar10", "synthetic_cifar10", "mnist", "synthetic_mnist"] = Field(
        "cifar10", description="torchvision dataset, or a learnable synthetic stand-in of its shapes")
    root: str = Field("data", description="where torchvision datasets live (relative: project root)")
    download: bool = Field(True, description="download a torchvision dataset on first use")
    train_size: int | None = Field(None, ge=1, description="use a seeded subset of this many "
                                   "training examples (None: all)")
    test_size: int | None = Field(None, ge=1, description="use a seeded subset of the test set")
    augment: bool = Field(True, description="random crop (4-pixel padding) and horizontal flip, "
                          "done on the device in batch (CIFAR-shaped data only)")
    synthetic_noise: float = Field(0.5, ge=0.0, description="pixel noise of the synthetic stand-in "
                                   "relative to its class signal (higher: harder)")


class ModelSection(_Section):
    arch: Literal["resnet20", "vgg16", "mlp", "lenet5"] = Field(
        "resnet20", description="resnet20 / vgg16 (BatchNorm) for CIFAR, mlp 300-100-10, lenet5")
    width: int | None = Field(None, ge=1, description="base width: resnet20 16, vgg16 64, mlp 300, "
                              "lenet5 6 (None: the paper's); other layers scale with it")


class TrainSection(_Section):
    epochs: int = Field(160, ge=1)
    batch_size: int = Field(128, ge=2)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(1e-4, ge=0)
    milestones: list[int] = Field([80, 120], description="epochs at which lr is multiplied by gamma")
    gamma: float = Field(0.1, gt=0, le=1)
    bf16: bool = Field(True, description="bf16 autocast for training on CUDA (ignored on CPU)")
    channels_last: bool = Field(True, description="channels_last memory format on CUDA")
    compile: bool = Field(False, description="torch.compile the model on CUDA (no CUDA graph then)")
    cuda_graphs: bool = Field(True, description="replay the SGD training step from a CUDA graph on "
                              "CUDA (removes the launch overhead that bounds small networks)")
    eval_every: int = Field(1, ge=1, description="test accuracy every n epochs (and the last)")
    eval_batch_size: int = Field(1000, ge=1)

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, v: list[int]) -> list[int]:
        if any(m < 1 for m in v) or v != sorted(set(v)):
            raise ValueError("milestones must be strictly increasing positive epochs")
        return v

    @model_validator(mode="after")
    def _milestones_in_schedule(self) -> "TrainSection":
        if any(m > self.epochs for m in self.milestones):
            raise _KeyError("milestones", f"milestone after the last epoch ({self.epochs})")
        return self


class ImpSection(_Section):
    levels: int = Field(10, ge=0, description="pruning levels after the dense level 0")
    prune_fraction: float = Field(0.2, gt=0, lt=1, description="fraction of alive weights pruned "
                                  "per level")
    scope: Literal["global", "layerwise"] = Field("global", description="one ranking over all "
                                                  "prunable layers, or one per layer")
    rewind_iteration: int = Field(1000, ge=0, description="k: level-0 iteration whose weights are "
                                  "the rewind point (the paper's value was lost; 0 = initialization)")
    save_every: int = Field(1, ge=0, description="keep the weights every n epochs (Fig 4 "
                            "trajectories); 0 keeps none")
    trajectory_levels: LevelSelection = Field("all", description="levels whose per-epoch weights "
                                              "are kept")


BaselineKind = Literal["one_shot", "fine_tune", "lr_rewind", "random_reinit", "random_prune",
                       "random_prune_oneshot"]


class BaselinesSection(_Section):
    kinds: list[BaselineKind] = Field(
        ["one_shot", "fine_tune", "lr_rewind", "random_reinit", "random_prune",
         "random_prune_oneshot"], description="comparison solutions to train (REPRODUCTION.md)")
    levels: LevelSelection = Field("all", description="IMP levels (>= 1) at whose sparsity they are "
                                   "trained")
    fine_tune_lr: float = Field(1e-3, gt=0, description="fixed lr of fine-tuning")
    fine_tune_epochs: int = Field(40, ge=1, description="epochs of fine-tuning")
    train_together: Literal["auto", "yes", "no"] = Field(
        "auto", description="train the baselines of one level together (vmap); auto = no: "
        "measured slower on the CPU and on an H100 (0.72x, benchmarks/baselines_together.py), "
        "where one after another each replays a CUDA graph")


class AnalysisSection(_Section):
    subset_size: int = Field(5000, ge=1, description="fixed seeded subset of the training set, no "
                             "augmentation, used by every analysis (paper: 10%)")
    batch_size: int = Field(1000, ge=1, description="examples per forward pass in analyses")
    recalibrate_bn: bool = Field(True, description="recompute BatchNorm statistics on the subset "
                                 "at points that were not trained")
    levels: LevelSelection = Field("all", description="IMP levels (>= 1) the analyses look at")
    points_per_pass: int = Field(8, ge=1, description="weight vectors evaluated together (vmap)")
    vmap: Literal["auto", "yes", "no"] = Field("auto", description="evaluate many points with "
                                                "torch.func.vmap: auto = on CUDA only")

    @property
    def use_vmap(self) -> bool | None:
        """`vmap` as PointEvaluator takes it (None: decide by device)."""
        return {"auto": None, "yes": True, "no": False}[self.vmap]


class HessianSection(_Section):
    k: int = Field(100, ge=1, description="top-k eigenvalues; V'(k) sums the logs of the positive ones")
    ks_fig22: list[int] = Field([10, 25, 50, 100], description="k values of Fig 22 (each <= k; "
                                "taken from the same top-k spectra)")
    subset_size: int | None = Field(None, ge=1, description="examples the Hessian is computed on: "
                                    "the first n of the seeded analysis subset (None: "
                                    "analysis.subset_size; paper: 10% of the training set)")
    batch_size: int | None = Field(None, ge=1, description="examples per chunk of a Hessian-vector "
                                   "product, summed weighted by size (None: analysis.batch_size)")
    max_iterations: int = Field(600, ge=2, description="Lanczos iterations (= Hessian-vector "
                                "products) at most")
    tol: float = Field(1e-3, gt=0, lt=1, description="Lanczos stops when every wanted residual "
                       "||Hv - lv|| <= tol * (see tol_relative_to)")
    tol_relative_to: Literal["eigenvalue", "largest"] = Field(
        "eigenvalue", description="eigenvalue: a positive pair's residual is measured against its "
        "own l (each log l of V'(k) to relative accuracy tol); largest: against l_max (cheaper, "
        "but the small eigenvalues of the top 100 then carry errors up to tol * l_max)")
    hvp: Literal["auto", "double_backward", "forward_over_reverse"] = Field(
        "auto", description="how Hessian-vector products are taken: auto = double_backward "
        "(measured faster on the CPU); forward_over_reverse = torch.func jvp(grad)")
    reuse_graph: bool = Field(False, description="keep each chunk's first-order graph between "
                              "products (double backward): about 25% faster, memory grows with "
                              "the subset (fine for ResNet-20 on a GPU, not for VGG-16)")
    dtype: Literal["float32", "float64"] = Field("float32", description="precision of the "
                                                 "products (TF32 is always off; bf16 never)")
    basis_device: Literal["auto", "cpu", "device"] = Field(
        "auto", description="where the Lanczos basis lives: auto = on the device when it fits")
    density_iterations: int = Field(80, ge=2, description="Lanczos steps per SLQ run")
    density_runs: int = Field(1, ge=1, description="SLQ runs (random starting vectors)")
    trace_samples: int = Field(50, ge=1, description="Hutchinson samples for the trace")
    band_levels: LevelSelection = Field("all", description="levels of Fig 16 (smallest vs next band)")

    @model_validator(mode="after")
    def _ks_within_k(self) -> "HessianSection":
        bad = [x for x in self.ks_fig22 if not 1 <= x <= self.k]
        if bad:
            raise _KeyError("hessian.ks_fig22", f"{bad} outside 1..k (k = {self.k}): Fig 22 "
                            f"reads them from the top-k spectra")
        return self


class LandscapeSection(_Section):
    """Lines, basin radii, planes and filter-normalized surfaces (notebooks 05-07)."""

    examples: int | None = Field(None, ge=1, description="examples of the analysis subset that "
                                 "lines, radii and planes are evaluated on (None: all of them)")
    one_pass_bn: bool = Field(True, description="BatchNorm statistics and loss in one pass over "
                              "all the examples at once (half the work; statistics of the whole "
                              "subset instead of an average of per-batch ones)")
    line_points: int = Field(41, ge=3, description="points on a line between two solutions, "
                             "both ends included (alpha in [0, 1])")
    line_margin: float = Field(0.2, ge=0, description="alpha runs from -margin to 1 + margin, "
                               "on the same spacing")
    radius_directions: int = Field(100, ge=1, description="random unit directions per point")
    radius_cutoff: Literal["relative", "additive", "absolute"] = Field(
        "relative", description="cut-off c: relative L0*(1+value), additive L0+value, absolute value")
    radius_value: float = Field(1.0, gt=0, description="value of the cut-off rule")
    radius_reference: Literal["own", "pair_max"] = Field(
        "pair_max", description="L0 of the cut-off: pair_max = the higher loss of the two points "
        "compared (one cut-off for both, as the paper's one normalized cut-off per comparison); "
        "own = each point's own loss (a point with a higher loss then gets a looser cut-off)")
    radius_start: float = Field(0.01, gt=0, description="first distance tried along a direction")
    radius_growth: float = Field(2.0, gt=1, description="the distance is multiplied by this until "
                                 "the loss exceeds the cut-off (then bisection)")
    radius_max: float = Field(50.0, gt=0, description="largest radius searched (a direction that "
                              "never crosses reports this and counts as censored)")
    radius_tol: float = Field(1e-3, gt=0, lt=1, description="bisection stops when the bracket is "
                              "this narrow, relative to its upper end")
    plane_resolution: int = Field(31, ge=3, description="grid points per axis on the plane of Fig 13")
    plane_margin: float = Field(0.3, ge=0, description="grid extends this fraction of the points' "
                                "extent past them")
    plane_levels: list[int] | None = Field(None, description="IMP levels of the plane's points A, "
                                           "B, C (axes B-A, C-A); None: 0, the middle and the last "
                                           "analysis level")
    plane_baseline_level: int | None = Field(None, ge=1, description="level whose baselines are "
                                             "projected on the plane (None: the last level with "
                                             "baselines)")
    sublevel_loss: float | None = Field(None, gt=0, description="loss of the shaded sublevel set "
                                        "(None: the largest loss of the IMP solutions)")
    surface_resolution: int = Field(25, ge=3, description="grid points per axis, filter-normalized "
                                    "surface (Li et al. 2018)")
    surface_span: float = Field(1.0, gt=0, description="the surface spans [-span, span]^2")
    surface_examples: int = Field(250, ge=1, description="examples the surface is evaluated on "
                                  "(Bain's subsample)")
    surface_include_bn: bool = Field(False, description="perturb biases and BatchNorm too")
    surface_sweep: list[int] = Field([], description="subsample sizes of the figure showing how one "
                                     "surface settles as examples grow (empty: skip it)")

    @field_validator("plane_levels")
    @classmethod
    def _three_levels(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (len(v) != 3 or len(set(v)) != 3 or min(v) < 0):
            raise ValueError("plane_levels must be three different levels >= 0 (A, B, C)")
        return v

    @field_validator("surface_sweep")
    @classmethod
    def _positive_sizes(cls, v: list[int]) -> list[int]:
        if any(n < 1 for n in v):
            raise ValueError("surface_sweep sizes must be >= 1")
        return v

    @model_validator(mode="after")
    def _radius_range(self) -> "LandscapeSection":
        if self.radius_start >= self.radius_max:
            raise _KeyError("landscape.radius_start", f"must be below landscape.radius_max "
                            f"({self.radius_max})")
        return self


class ReportSection(_Section):
    notebooks: list[str] = Field(
        ["01_train_imp", "02_baselines", "03_distances_trajectories", "04_hessian_volume",
         "05_basin_radius", "06_barriers", "07_sublevel_sets", "08_pruning_choices"],
        description="notebooks the report runner executes, in order")
    html: bool = Field(True, description="write an HTML copy of every executed notebook")
    show_levels: LevelSelection = Field("all", description="levels drawn in the static figures")


class RunSpec(_Section):
    """A training run of its own inside a section (another model, optimizer or IMP recipe)."""

    model: ModelSection = ModelSection()
    train: TrainSection = TrainSection()
    imp: ImpSection = ImpSection()


_ADAM_MNIST = {"optimizer": "adam", "lr": 1.2e-3, "batch_size": 60, "momentum": 0.0,
               "weight_decay": 0.0, "milestones": [], "bf16": False}


class EarlyBirdSection(_Section):
    prune_fraction: float = Field(0.5, gt=0, lt=1, description="sparsity of the masks compared "
                                  "epoch to epoch (You et al. 2020)")
    threshold: float = Field(0.1, gt=0, lt=1, description="the early-bird epoch is the first from "
                             "which the mask distance stays under this")


class TransferSection(_Section):
    arch: Literal["mlp", "lenet5"] = Field("mlp", description="network of the transfer tasks")
    train: TrainSection = Field(TrainSection(**{**_ADAM_MNIST, "batch_size": 50, "epochs": 50}),
                                description="Adam recipe of the report's Table 2")
    sgd_lr: float = Field(0.05, gt=0, description="lr of the SGD ticket (task 3; momentum 0.9)")
    halves_imp: ImpSection = Field(ImpSection(levels=5, prune_fraction=0.5, rewind_iteration=0,
                                              save_every=0), description="task 1: halves of the data")
    labels_imp: ImpSection = Field(ImpSection(levels=15, prune_fraction=0.35, rewind_iteration=0,
                                              save_every=0), description="task 2: digits 0-4 -> 5-9")
    optimizers_imp: ImpSection = Field(ImpSection(levels=10, prune_fraction=0.5, rewind_iteration=0,
                                                  save_every=0), description="task 3: SGD <-> Adam")


class MnistSection(_Section):
    """Notebook 10 (the IE643 report): MNIST tickets, their transfer, early-bird tickets."""

    data: DataSection = DataSection(dataset="mnist", augment=False)
    mlp: RunSpec = RunSpec(model=ModelSection(arch="mlp"),
                           train=TrainSection(**{**_ADAM_MNIST, "epochs": 75}),
                           imp=ImpSection(levels=20, prune_fraction=0.3, rewind_iteration=0,
                                          trajectory_levels=[0]))
    lenet5: RunSpec = RunSpec(model=ModelSection(arch="lenet5"),
                              train=TrainSection(**{**_ADAM_MNIST, "epochs": 50}),
                              imp=ImpSection(levels=20, prune_fraction=0.2, rewind_iteration=0,
                                             save_every=0))
    transfer: TransferSection = TransferSection()
    early_bird: EarlyBirdSection = EarlyBirdSection()

    @model_validator(mode="after")
    def _fits(self) -> "MnistSection":
        for name in ("mlp", "lenet5"):
            spec = getattr(self, name)
            _check_levels_fit_for(spec.model, self.data.dataset, spec.imp, f"{name}.imp")
        t = self.transfer
        for name in ("halves_imp", "labels_imp", "optimizers_imp"):
            _check_levels_fit_for(ModelSection(arch=t.arch), self.data.dataset, getattr(t, name),
                                  f"transfer.{name}")
        return self


class BainSection(_Section):
    """Notebook 11 (Bain): LeNet-5 tickets on CIFAR-10 against random tickets, their landscapes."""

    data: DataSection = DataSection(dataset="cifar10", augment=False)
    model: ModelSection = ModelSection(arch="lenet5")
    train: TrainSection = Field(
        TrainSection(optimizer="adam", lr=2e-3, batch_size=9600, momentum=0.0, weight_decay=0.0,
                     epochs=35, milestones=[], bf16=False, eval_batch_size=2000),
        description="Adam with very large batches, 35 epochs per round (Bain); lr not given there")
    imp: ImpSection = ImpSection(levels=35, prune_fraction=0.1, scope="layerwise",
                                 rewind_iteration=0, save_every=0)
    show_levels: LevelSelection = Field([0, 7, 14, 21, 28, 35], description="levels whose IMP and "
                                        "random tickets get a surface")
    random_levels: LevelSelection = Field("all", description="levels with a random ticket (the "
                                          "accuracy-gap plot uses all of them)")
    subsample_sizes: list[int] = Field([10, 50, 250, 1000], description="examples per surface in "
                                       "the plot of how the surface settles")

    @model_validator(mode="after")
    def _fits(self) -> "BainSection":
        _check_levels_fit_for(self.model, self.data.dataset, self.imp, "imp")
        for key in ("show_levels", "random_levels"):
            _check_level_list(getattr(self, key), self.imp.levels, key, minimum=0)
        if self.data.dataset.endswith("mnist") or self.model.arch not in ("lenet5", "mlp"):
            raise _KeyError("model.arch", "Bain's experiment is LeNet-5 (or an MLP) on CIFAR-10")
        return self


SECTIONS: dict[str, type[_Section]] = {
    "run": RunSection,
    "data": DataSection,
    "model": ModelSection,
    "train": TrainSection,
    "imp": ImpSection,
    "baselines": BaselinesSection,
    "analysis": AnalysisSection,
    "hessian": HessianSection,
    "landscape": LandscapeSection,
    "report": ReportSection,
    "mnist": MnistSection,
    "bain": BainSection,
}

# Keys that do not change what a finished level holds: a run folder may be reused when only
# these differ (for example to add levels to a run, or to resume on another device).
EXTENDABLE_KEYS = frozenset({
    "run.device", "run.num_threads", "run.output_root", "data.root", "data.download",
    "train.eval_batch_size", "train.compile", "train.cuda_graphs", "imp.levels",
})
TRAINING_SECTIONS = ("run", "data", "model", "train", "imp")


class Params(_Section):
    """The whole parameter set of one run; `source` says where it was read from."""

    run: RunSection = RunSection()
    data: DataSection = DataSection()
    model: ModelSection = ModelSection()
    train: TrainSection = TrainSection()
    imp: ImpSection = ImpSection()
    baselines: BaselinesSection = BaselinesSection()
    analysis: AnalysisSection = AnalysisSection()
    hessian: HessianSection = HessianSection()
    landscape: LandscapeSection = LandscapeSection()
    report: ReportSection = ReportSection()
    mnist: MnistSection = MnistSection()
    bain: BainSection = BainSection()
    source: str = Field("<defaults>", exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> "Params":
        _check_levels_fit(self)
        for name in ("trajectory_levels",):
            _check_level_list(getattr(self.imp, name), self.imp.levels, f"imp.{name}", minimum=0)
        _check_level_list(self.baselines.levels, self.imp.levels, "baselines.levels", minimum=1)
        _check_level_list(self.analysis.levels, self.imp.levels, "analysis.levels", minimum=1)
        _check_level_list(self.hessian.band_levels, self.imp.levels, "hessian.band_levels",
                          minimum=1)
        _check_level_list(self.report.show_levels, self.imp.levels, "report.show_levels",
                          minimum=0)
        if self.hessian.k > self.hessian.max_iterations:
            raise _KeyError("hessian.max_iterations", "must be at least hessian.k")
        if self.data.dataset.endswith("mnist") and self.model.arch in ("resnet20", "vgg16"):
            raise _KeyError("model.arch", f"{self.model.arch} expects CIFAR-shaped data")
        return self

    # --- conveniences used across the kit -----------------------------------------------------
    def levels(self, selection: LevelSelection, minimum: int = 0) -> list[int]:
        """Resolve a level selection ("all" or a list) against this run's levels."""
        if selection == "all":
            return list(range(minimum, self.imp.levels + 1))
        return sorted(set(selection))

    def run_dir(self) -> Path:
        """The run folder, absolute."""
        return resolve_path(self.run.output_root) / self.run.name

    def training_fingerprint(self) -> dict[str, Any]:
        """The keys that decide what a run folder's trained weights are."""
        flat = flatten(self.model_dump(include=set(TRAINING_SECTIONS)))
        return {k: v for k, v in flat.items() if k not in EXTENDABLE_KEYS}

    def digest(self, *sections: str) -> str:
        """A short stable hash of the given sections (all when none): a cache key."""
        dump = self.model_dump(include=set(sections) if sections else None)
        return hashlib.sha256(json.dumps(dump, sort_keys=True).encode()).hexdigest()[:12]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(), sort_keys=False)


# --- reading ------------------------------------------------------------------------------------

class _YamlLoader(yaml.SafeLoader):
    """SafeLoader that reads 1e-4 as a float (YAML 1.1 wants 1.0e-4, a classic trap)."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+][0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML file as a dict; a broken or non-mapping file is a ParamsError naming it."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ParamsError(f"{path}: cannot read parameter file ({e.strerror})") from None
    try:
        data = yaml.load(text, Loader=_YamlLoader)
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: the top level must be a mapping of sections "
                          f"({', '.join(SECTIONS)}), not {type(data).__name__}")
    return data


def params_from_dict(raw: Mapping[str, Any], source: str = "<dict>") -> Params:
    """Validate a nested dict of sections; errors name `section.key` and the source."""
    unknown = [k for k in raw if k not in SECTIONS]
    if unknown:
        raise ParamsError(_unknown_message(source, unknown[0], list(SECTIONS)))
    try:
        return Params(**{k: v for k, v in raw.items()}, source=source)
    except ValidationError as e:
        raise ParamsError(_validation_message(source, e, raw)) from None
    except _KeyError as e:
        raise ParamsError(f"{source}: {e.key}: {e.message}") from None


def load_params(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> Params:
    """Read and validate a parameter YAML; `overrides` ({"train.epochs": 2}) are applied on top."""
    file = resolve_params_file(path)
    raw = read_yaml(file)
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise ParamsError(f"{file}: {section}: must be a mapping")
        raw[section][key] = value
    return params_from_dict(raw, source=str(file))


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """["train.epochs=2", "data.dataset=synthetic_cifar10"] -> {"train.epochs": 2, ...}."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ParamsError(f"--set {item!r}: expected section.key=value")
        out[key.strip()] = yaml.load(value, Loader=_YamlLoader)
    return out


def notebook_params(params_file: str | None, namespace: Mapping[str, Any]) -> Params:
    """The parameters a notebook runs with.

    `papermill -f preset.yaml` injects each section of the YAML as a variable (`run`, `data`, ...);
    when any section is injected, the injected sections are the parameter set. Otherwise the
    notebook reads `params_file` (default: $LTHKIT_PARAMS, else params/smoke.yaml).
    """
    injected = {k: namespace[k] for k in SECTIONS if namespace.get(k) is not None}
    if injected:
        return params_from_dict(injected, source="the parameters papermill injected (-f YAML)")
    return load_params(params_file or os.environ.get("LTHKIT_PARAMS") or "params/smoke.yaml")


def _unknown_message(source: str, key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], allowed, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(allowed)})"
    return f"{source}: {key}: unknown key{hint}"


def _validation_message(source: str, error: ValidationError, raw: Mapping[str, Any]) -> str:
    """The first validation error as 'file: section.key: what is wrong (got value)'."""
    first = error.errors()[0]
    loc = [str(x) for x in first["loc"] if not isinstance(x, int)]
    key = ".".join(loc)
    if first["type"] == "extra_forbidden" and len(loc) >= 2:
        section = SECTIONS.get(loc[0])
        allowed = list(section.model_fields) if section else []
        return _unknown_message(source, key, allowed)
    if first["type"] == "value_error":
        ctx_error = first.get("ctx", {}).get("error")
        if isinstance(ctx_error, _KeyError):  # its key is relative to the section that raised it
            return f"{source}: {'.'.join([*loc, ctx_error.key])}: {ctx_error.message}"
        msg = str(ctx_error) if ctx_error else first["msg"]
        return f"{source}: {key}: {msg}" if key else f"{source}: {msg}"
    got = first.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{source}: {key}: {first['msg']}{shown}"


# --- paths --------------------------------------------------------------------------------------

def project_root(start: Path | None = None) -> Path:
    """The nearest folder (from the working directory up) holding both params/ and notebooks/.

    Notebooks run with their own folder as working directory in JupyterLab and with the caller's
    under papermill; relative paths in a parameter file mean the same in both.
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "params").is_dir() and (folder / "notebooks").is_dir():
            return folder
    return here


def resolve_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p


def resolve_params_file(path: str | os.PathLike[str]) -> Path:
    """A parameter file path: as given when it exists, else from the project root, else params/."""
    p = Path(path).expanduser()
    for candidate in (p, project_root() / p, project_root() / "params" / p):
        if candidate.is_file():
            return candidate.resolve()
    raise ParamsError(f"{p}: no such parameter file (looked in {Path.cwd()}, {project_root()}, "
                      f"{project_root() / 'params'})")


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 0.1}} -> {"train.lr": 0.1}"""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


# --- command line -------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lthkit-params", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print the full parameter set a file resolves to")
    show.add_argument("file")
    show.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key")
    check = sub.add_parser("check", help="validate parameter files")
    check.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "show":
            print(load_params(args.file, parse_overrides(args.set)).to_yaml(), end="")
        else:
            for f in args.files:
                load_params(f)
                print(f"ok  {f}")
    except ParamsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
