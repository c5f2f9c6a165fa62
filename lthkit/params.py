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
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

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


def _check_rewind_fits(data: "DataSection", train: "TrainSection", imp: "ImpSection",
                       key: str) -> None:
    """k must come before the end of the schedule: epochs x iterations per epoch, the latter from
    the dataset's known training-set size (or data.train_size) and train.batch_size."""
    from .data import iterations_per_epoch, known_train_size  # local import: data imports torch

    n = known_train_size(data.dataset, data.train_size)
    per_epoch = iterations_per_epoch(n, train.batch_size)
    total = train.epochs * per_epoch
    if imp.rewind_iteration >= total:
        raise _KeyError(f"{key}.rewind_iteration",
                        f"{imp.rewind_iteration} is not before the end of training: {train.epochs} "
                        f"epochs x {per_epoch} iterations ({n} training examples at batch "
                        f"{train.batch_size}) = {total} iterations")


def _check_plane_levels(p: "Params") -> None:
    """The plane of Fig 13 goes through IMP levels of this run; its baselines exist at one level."""
    lp = p.landscape
    if lp.plane_levels is not None:
        _check_level_list(lp.plane_levels, p.imp.levels, "landscape.plane_levels", minimum=0)
    level = lp.plane_baseline_level
    if level is not None:
        trained = p.levels(p.baselines.levels, minimum=1)
        if level not in trained:
            raise _KeyError("landscape.plane_baseline_level",
                            f"{level} is not a level the baselines are trained at "
                            f"(baselines.levels: {trained}; imp.levels = {p.imp.levels})")


def contained_run_dir(output_root: Path, name: str) -> Path:
    """<output_root>/<name>, refused (a _KeyError on run.name) unless it resolves, links followed,
    to a folder strictly inside the resolved outputs root and apart from the kit's own files."""
    root = output_root.resolve()
    folder = (output_root / name).resolve()
    if folder == root or root not in folder.parents:
        link = " (through a symbolic link)" if _has_link(output_root, name) else ""
        raise _KeyError("run.name", f"{name!r} puts the run folder at {folder}{link}, which is not "
                        f"a folder of its own inside the outputs root {root}: choose another "
                        f"run.name")
    project = project_root()
    kit = [project / d for d in KIT_FOLDERS]
    if folder in project.parents or folder == project or any(
            folder == d or d in folder.parents for d in kit):
        raise _KeyError("run.name", f"the run folder {folder} would hold or overwrite the kit's own "
                        f"files: choose another run.output_root or run.name")
    return output_root / name


def _has_link(output_root: Path, name: str) -> bool:
    path = output_root
    for part in Path(name).parts:
        path = path / part
        if path.is_symlink():
            return True
    return False


# The project's own folders: a run folder may not be (or lie inside) one of them.
KIT_FOLDERS = ("lthkit", "notebooks", "params", "tests", "benchmarks", "docs", ".git")


class RunSection(_Section):
    name: str = Field("resnet20_paper", pattern=r"^[A-Za-z0-9_.-]+$",
                      description="run folder name: everything goes to <output_root>/<name>/")
    output_root: str = Field("outputs", description="folder of run folders; relative paths are "
                             "taken from the project root")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda|cuda:\d+|mps)$",
                        description="auto picks cuda when present, else cpu")
    seed: int = Field(0, ge=0, description="seeds initialization, data order, subsets, directions")
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads (None: torch default)")
    replicates: int = Field(1, ge=1, description="independent repeats of the whole series, each "
                            "with its own seed derived from run.seed: replicate 0 is the run "
                            "folder, replicate r >= 1 lives in <run folder>/replicate_<r>/; the "
                            "report shows means and 95% t-intervals across them")
    executor: Literal["local", "ray"] = Field("local", description="where independent units (the "
                                              "replicates' IMP chains) run: local, one after "
                                              "another in this process; ray, as Ray tasks in "
                                              "parallel (pip install -e '.[ray]')")
    ray_address: str | None = Field(None, description="with executor ray: None starts a local Ray "
                                    "on this machine; 'auto' joins the Ray cluster running here; "
                                    "else a cluster address (ray://host:10001 or host:6379)")
    ray_gpus_per_task: float | Literal["auto"] = Field(
        "auto", description="GPUs each Ray task holds (fractions share a GPU: 0.5 runs two per "
        "GPU); auto: 1 where the cluster has GPUs, else 0")
    ray_cpus_per_task: float = Field(1.0, gt=0, description="CPU cores each Ray task holds")
    ray_max_retries: int = Field(1, ge=0, description="times Ray runs a task again when its "
                                 "worker dies (0: never; a rerun of the report resumes anyway)")
    deterministic: bool = Field(False, description="deterministic algorithms on CUDA (torch's "
                                "use_deterministic_algorithms, cuDNN benchmark off, a fixed cuBLAS "
                                "workspace): slower, and needed for a resumed or repeated CUDA "
                                "run to repeat bit for bit (the CPU always does; "
                                "benchmarks/gpu_check.py measures what holds on a GPU)")

    @field_validator("name")
    @classmethod
    def _a_folder_of_its_own(cls, v: str) -> str:
        if set(v) == {"."}:
            raise ValueError(f"{v!r} is not a folder of its own: name the run (letters, digits, "
                             f"'_', '-', '.')")
        return v

    @field_validator("ray_gpus_per_task")
    @classmethod
    def _gpus_not_negative(cls, v: float | str) -> float | str:
        if v != "auto" and v < 0:
            raise ValueError(f"{v} is negative: give a number of GPUs >= 0 (fractions share one), "
                             f"or auto")
        return v


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
    group_size: Literal["auto"] | int = Field(
        "auto", description="baseline trainings of one schedule trained at once as one fused "
        "network (training.train_group), up to this many per group; 1 = one after another; auto "
        "= the K a short probe of speed and memory on the device projects fastest (it prints "
        "why; K = 1 unless fusing is projected group_min_speedup times faster there)")
    group_memory: float = Field(0.8, gt=0, le=1, description="auto group size: keep a group's "
                                "peak GPU memory under this fraction of the free GPU memory")
    group_min_speedup: float = Field(
        1.2, ge=1.0, description="auto group size: fuse only where the probe projects at least "
        "this speedup over one after another. Fused and separate training agree to fp32 rounding "
        "only, which training amplifies, so a group size chosen by timing noise would make two "
        "runs of one parameter file differ (measured: 1.04x on 2 CPU cores picked K = 2 in one "
        "replicate and K = 1 in another)")

    @field_validator("group_size", mode="before")
    @classmethod
    def _int_or_auto(cls, v: Any) -> Any:
        if v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
            return v
        raise ValueError(f"must be a whole number >= 1 or auto (got {v!r})")

    @model_validator(mode="before")
    @classmethod
    def _renamed_train_together(cls, raw: Any) -> Any:
        """Old files: train_together yes/no/auto reads as group_size auto/1/auto."""
        if isinstance(raw, dict) and "train_together" in raw:
            raw = dict(raw)
            old = raw.pop("train_together")
            if "group_size" in raw:
                raise _KeyError("train_together", "replaced by baselines.group_size; give only "
                                "group_size")
            if old not in ("auto", "yes", "no"):
                raise _KeyError("train_together", f"replaced by baselines.group_size (an int, or "
                                f"auto); got {old!r}")
            raw["group_size"] = 1 if old == "no" else "auto"
            warnings.warn(f"baselines.train_together: {old} is now baselines.group_size: "
                          f"{raw['group_size']}", DeprecationWarning, stacklevel=2)
        return raw


class AnalysisSection(_Section):
    subset_size: int = Field(5000, ge=1, description="fixed seeded subset of the training set, no "
                             "augmentation, used by every analysis (paper: 10%)")
    batch_size: int = Field(1000, ge=1, description="examples per forward pass in analyses")
    recalibrate_bn: bool = Field(True, description="recompute BatchNorm statistics on the subset "
                                 "at points that were not trained")
    levels: LevelSelection = Field("all", description="IMP levels (>= 1) the analyses look at")
    points_per_pass: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto", description="weight vectors evaluated together as one grouped network (P); auto: "
        "on CUDA the fastest block size of a short speed probe that memory holds, on the CPU 8 "
        "when fused, else 1 (the choice and why are printed)")
    vmap: Literal["auto", "yes", "no"] = Field("auto", description="fuse the P points of a pass "
                                                "into one grouped network (torch.func.vmap) "
                                                "instead of a loop: auto = where measured faster, "
                                                "on CUDA only (a loop was faster on the CPU, "
                                                "benchmarks/landscape.py)")

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
                       "||Hv - lv|| <= tol * (see tol_relative_to); at least 100 units of "
                       "rounding of hessian.dtype (float32: 1.2e-5), below which residuals are "
                       "noise")
    tol_relative_to: Literal["eigenvalue", "largest"] = Field(
        "eigenvalue", description="eigenvalue: the residual of a pair above positive_threshold x "
        "l_max is measured against its own l (each log l of V'(k) to relative accuracy tol), the "
        "others against l_max; largest: every pair against l_max (cheaper, but the small "
        "eigenvalues of the top 100 then carry errors up to tol * l_max)")
    positive_threshold: float = Field(1e-3, gt=0, lt=1, description="V'(k) sums log l over the "
                                      "top-k eigenvalues above this times l_max; smaller ones are "
                                      "zero to the accuracy of fp32 products, and a table says how "
                                      "many entered (a warning when fewer than k)")
    method: Literal["auto", "lanczos", "block_lanczos", "eigsh"] = Field(
        "auto", description="top-k solver: lanczos = one product at a time; block_lanczos = "
        "blocks of block_size products sharing one pass over the data; eigsh = scipy's ARPACK; "
        "auto = block_lanczos on the CPU (0.63x the CPU time at k = 100, about equal at k = 20), lanczos "
        "on CUDA (blocks not measured there yet)")
    block_size: int = Field(8, ge=1, description="vectors per block of block_lanczos (more: "
                            "fewer passes over the data, more products in all)")
    hvp: Literal["auto", "double_backward", "forward_over_reverse"] = Field(
        "auto", description="how Hessian-vector products are taken: auto = double_backward "
        "on the CPU, forward_over_reverse (torch.func jvp(grad)) on CUDA, measured faster on "
        "each")
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
        floor = 100 * {"float32": 2.0 ** -23, "float64": 2.0 ** -52}[self.dtype]
        if self.tol < floor:
            raise _KeyError("hessian.tol", f"{self.tol:g} is finer than {self.dtype} products "
                            f"can certify (residuals below {floor:.1e} x l_max are rounding "
                            f"noise): use at least {floor:.1e}, or hessian.dtype float64")
        return self


class LandscapeSection(_Section):
    """Lines, basin radii, planes and filter-normalized surfaces (notebooks 05-07)."""

    examples: int | None = Field(None, ge=1, description="examples of the analysis subset that "
                                 "lines, radii and planes are evaluated on (None: all of them)")
    dtype: Literal["float32", "tfloat32", "bfloat16"] = Field(
        "float32", description="precision of the loss at many points (lines, radii, planes, "
        "surfaces, trajectories): float32 (TF32 off); tfloat32 lets GPU convolutions and matrix "
        "products use TF32; bfloat16 runs them in bf16 (statistics and losses stay fp32; "
        "tests/test_points.py states the error on the smoke model)")
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


# The smallest effect that matters for each kind of quantity a claim compares: (default, how it
# scales, what it is). "absolute": in the quantity's own units; "relative": a fraction of the
# claim's scale at that level (the mean, over the replicates, of |B|, or for barriers of the
# line's end losses). Read by lthkit.claims; documented under every claims table.
CLAIM_MARGINS: dict[str, tuple[float, str, str]] = {
    "volume": (0.5, "absolute", "V'(k) difference, a sum of log eigenvalues"),
    "radius": (0.02, "relative", "basin radius difference, a fraction of B's radius"),
    "distance": (0.02, "relative", "distance difference, a fraction of B's distance"),
    "barrier": (0.01, "relative", "barrier height, a fraction of the line's mean end loss"),
    "loss": (0.01, "relative", "training loss difference, a fraction of B's loss (c)"),
    "accuracy": (0.01, "absolute", "test accuracy difference (0.01: one percentage point)"),
    "surface": (0.02, "relative", "surface rise or curvature difference, a fraction of B's"),
}


class ClaimsSection(_Section):
    """How claims are judged (lthkit.claims): the smallest effect that matters, per quantity."""

    margins: dict[str, float] = Field(
        default_factory=lambda: {k: v[0] for k, v in CLAIM_MARGINS.items()},
        description="smallest effect that matters, per kind of quantity: "
        + "; ".join(f"{k} {v[0]:g} ({v[1]}: {v[2]})" for k, v in CLAIM_MARGINS.items())
        + ". A claim holds at a level when the interval of its difference lies beyond +margin "
        "on the claimed side, and does not hold when it lies on the other side of 0 or wholly "
        "within +-margin. Kinds not given keep their default")

    @field_validator("margins", mode="before")
    @classmethod
    def _known_kinds(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            raise ValueError(f"must be a mapping of quantity kind to margin (got {v!r})")
        unknown = sorted(set(v) - set(CLAIM_MARGINS))
        if unknown:
            raise ValueError(f"unknown kind {unknown[0]!r}; known: {', '.join(CLAIM_MARGINS)}")
        out = {k: d[0] for k, d in CLAIM_MARGINS.items()}
        for k, x in v.items():
            if isinstance(x, bool) or not isinstance(x, int | float) or x < 0:
                raise ValueError(f"{k}: a margin is a number >= 0 (got {x!r})")
            out[k] = float(x)
        return out


class RunSpec(_Section):
    """A training run of its own inside a section (another model, optimizer or IMP recipe)."""

    model: ModelSection = ModelSection()
    train: TrainSection = TrainSection()
    imp: ImpSection = ImpSection()


_ADAM_MNIST = {"optimizer": "adam", "lr": 1.2e-3, "batch_size": 60, "momentum": 0.0,
               "weight_decay": 0.0, "milestones": [], "bf16": False}


class EarlyBirdSection(_Section):
    """Early-bird tickets (You et al. 2020): when a run's mask stops moving, during training."""

    channel_ratio: float = Field(0.5, gt=0, lt=1, description="You et al.'s channel pruning ratio "
                                 "p: the fraction of BatchNorm channels, ranked globally by "
                                 "|gamma|, that each epoch's channel mask prunes (they use 0.3, "
                                 "0.5, 0.7)")
    prune_fraction: float = Field(0.5, gt=0, lt=1, description="sparsity of the weight masks "
                                  "(global magnitude pruning) compared epoch to epoch beside the "
                                  "channel masks")
    window: int = Field(5, ge=1, description="the ticket is drawn when the distances of the last "
                        "`window` pairs of consecutive epochs are all under epsilon (You et al.: "
                        "a FIFO queue of 5)")
    epsilon: float = Field(0.1, gt=0, lt=1, description="largest normalized Hamming distance "
                           "between consecutive masks that counts as settled (You et al.: 0.1)")


class TransferSection(_Section):
    arch: Literal["mlp", "lenet5"] = Field("mlp", description="network of the transfer tasks")
    train: TrainSection = Field(TrainSection(**{**_ADAM_MNIST, "batch_size": 50, "epochs": 50}),
                                description="Adam recipe of the report's Table 2")
    sgd_lr: float = Field(1.2e-3, gt=0, description="lr of the SGD runs of task 3: the report's "
                          "0.0012 (Table 2 gives one lr for both optimizers); 0.05 with "
                          "sgd_momentum 0.9 is the tuned alternative, for an SGD ticket trained "
                          "as well as the Adam one")
    sgd_momentum: float = Field(0.0, ge=0, lt=1, description="momentum of the SGD runs of task 3: "
                                "the report names none, so 0 (torch.optim.SGD's default); 0.9 "
                                "with sgd_lr 0.05 is the tuned alternative")
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


class EarlyStoppingSection(_Section):
    """Bain keeps "the best models ... using early stopping": each round's kept model is the
    epoch with the lowest loss on a validation split carved from the training set."""

    enabled: bool = Field(True, description="keep each round's best epoch by validation loss "
                          "(Bain); false: keep the last epoch")
    validation_size: int = Field(5000, ge=1, description="examples carved (seeded) from the "
                                 "training set as the validation split; they are never trained on")
    patience: int | None = Field(None, ge=1, description="stop a round after this many epochs "
                                 "without a lower validation loss; None: train the whole round "
                                 "and keep its best epoch (Bain prunes 'after every 35 epochs' "
                                 "and gives no patience)")


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
    surface_split: Literal["test", "train"] = Field(
        "test", description="examples the surfaces are evaluated on: a seeded sample of the test "
        "set (Bain: 250 test images) or of the analysis subset of the training set")
    early_stopping: EarlyStoppingSection = EarlyStoppingSection()

    @model_validator(mode="after")
    def _fits(self) -> "BainSection":
        _check_levels_fit_for(self.model, self.data.dataset, self.imp, "imp")
        for key in ("show_levels", "random_levels"):
            _check_level_list(getattr(self, key), self.imp.levels, key, minimum=0)
        if self.data.dataset.endswith("mnist") or self.model.arch not in ("lenet5", "mlp"):
            raise _KeyError("model.arch", "Bain's experiment is LeNet-5 (or an MLP) on CIFAR-10")
        es = self.early_stopping
        if es.enabled and self.data.train_size is not None and \
                es.validation_size >= self.data.train_size:
            raise _KeyError("early_stopping.validation_size", f"{es.validation_size} leaves no "
                            f"training example of data.train_size {self.data.train_size}")
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
    "claims": ClaimsSection,
    "mnist": MnistSection,
    "bain": BainSection,
}

# Keys that do not change what a finished level holds: a run folder may be reused when only
# these differ (for example to add levels to a run, or to resume on another device).
EXTENDABLE_KEYS = frozenset({
    "run.device", "run.num_threads", "run.output_root", "run.replicates", "data.root", "data.download",
    "run.executor", "run.ray_address", "run.ray_gpus_per_task", "run.ray_cpus_per_task",
    "run.ray_max_retries", "run.deterministic",
    "train.eval_batch_size", "train.compile", "train.cuda_graphs", "imp.levels",
})
TRAINING_SECTIONS = ("run", "data", "model", "train", "imp")

# Analysis keys that change no cached number (lthkit.store's cache/), and why. Every other key of
# the analysis sections is part of the cache key of each result it changes, so that a result
# computed under other settings is never returned; tests/test_cache_keys.py walks them all.
RESULT_NEUTRAL_KEYS: dict[str, str] = {
    "analysis.levels": "chooses which levels are analysed; each level's results have keys of their own",
    "analysis.points_per_pass": "how many points share a pass: the same losses to fp32 rounding "
                                "(tests/test_points.py), like the device",
    "analysis.vmap": "a loop or one fused network over the points: the same losses to rounding",
    "hessian.ks_fig22": "read from the same top-k spectra",
    "hessian.batch_size": "the chunks a product is summed over: the same product to rounding",
    "hessian.hvp": "two ways of one Hessian-vector product, equal to rounding "
                   "(tests/test_hessian.py)",
    "hessian.reuse_graph": "keeps the first-order graph between products: the same products",
    "hessian.basis_device": "where the Lanczos basis is kept: the same arithmetic",
    "hessian.band_levels": "chooses the levels of Fig 16; each point has a key of its own",
    "landscape.plane_levels": "chooses the plane's points; each plane's key names its points",
    "landscape.plane_baseline_level": "chooses the points projected on the plane; the key names them",
    "landscape.sublevel_loss": "the level drawn on the plane, not a computed number",
    "landscape.surface_sweep": "chooses subsample sizes; each surface's key holds its size",
}


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
    claims: ClaimsSection = ClaimsSection()
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
        _check_rewind_fits(self.data, self.train, self.imp, "imp")
        for name in ("mlp", "lenet5"):
            spec = getattr(self.mnist, name)
            _check_rewind_fits(self.mnist.data, spec.train, spec.imp, f"mnist.{name}.imp")
        _check_rewind_fits(self.bain.data, self.bain.train, self.bain.imp, "bain.imp")
        _check_plane_levels(self)
        for name in self.report.notebooks:
            try:
                notebook_path(name)
            except ValueError as e:
                raise _KeyError("report.notebooks", str(e)) from None
        contained_run_dir(resolve_path(self.run.output_root), self.run.name)
        return self

    # --- conveniences used across the kit -----------------------------------------------------
    def levels(self, selection: LevelSelection, minimum: int = 0) -> list[int]:
        """Resolve a level selection ("all" or a list) against this run's levels."""
        if selection == "all":
            return list(range(minimum, self.imp.levels + 1))
        return sorted(set(selection))

    def run_dir(self) -> Path:
        """The run folder, absolute; a ParamsError when it would not be a folder of its own
        strictly inside the outputs root (checked after resolving links)."""
        try:
            return contained_run_dir(resolve_path(self.run.output_root), self.run.name)
        except _KeyError as e:
            raise ParamsError(f"{self.source}: {e.key}: {e.message}") from None

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
    """SafeLoader that reads 1e-4 as a float (YAML 1.1 wants 1.0e-4, a classic trap) and refuses
    a key given twice in one mapping (YAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    f"while reading a mapping (its first '{key}' on line {seen[key] + 1})",
                    node.start_mark, f"'{key}' is given twice", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+][0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)

# The one line a parameter file that wants every default holds (an empty file is an error).
ALL_DEFAULTS = "defaults: paper"
_DEFAULTS_KEY, _DEFAULTS_VALUE = (x.strip() for x in ALL_DEFAULTS.split(":"))


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML file as a dict; a broken, empty or non-mapping file is a ParamsError naming it
    (and, for a syntax error, the line)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ParamsError(f"{path}: cannot read parameter file ({getattr(e, 'strerror', e)})") \
            from None
    try:
        data = yaml.load(text, Loader=_YamlLoader)
    except yaml.YAMLError as e:
        raise ParamsError(_yaml_message(path, e)) from None
    if data is None or data == {}:
        raise ParamsError(f"{path}: the parameter file is empty. A preset that wants every default "
                          f"(the paper's ResNet-20 recipe) says so in one line: `{ALL_DEFAULTS}`")
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: the top level must be a mapping of sections "
                          f"({', '.join(SECTIONS)}), not {type(data).__name__}")
    return data


def _yaml_message(path: Path, error: yaml.YAMLError) -> str:
    """'file, line N, column M: not valid YAML: what (context)' from a PyYAML error."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    context_mark = getattr(error, "context_mark", None)
    if context and context_mark is not None and context_mark is not mark:
        context = f"{context}, line {context_mark.line + 1}" if "line" not in context else context
    return f"{path}{where}: not valid YAML: {problem}" + (f" ({context})" if context else "")


def _take_defaults(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """Drop the `defaults: paper` line (the only value it takes) from a file's top level."""
    if _DEFAULTS_KEY not in raw:
        return raw
    if raw[_DEFAULTS_KEY] != _DEFAULTS_VALUE:
        raise ParamsError(f"{source}: {_DEFAULTS_KEY}: {raw[_DEFAULTS_KEY]!r} is not known; "
                          f"`{ALL_DEFAULTS}` means: every key not given takes its default")
    return {k: v for k, v in raw.items() if k != _DEFAULTS_KEY}


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
    """Read and validate a parameter YAML; `overrides` ({"train.epochs": 2}, also nested keys
    such as "mnist.mlp.imp.levels") are applied on top."""
    file = resolve_params_file(path)
    raw = _take_defaults(read_yaml(file), str(file))
    for dotted, value in (overrides or {}).items():
        *sections, key = dotted.split(".")
        node = raw
        for depth, section in enumerate(sections):
            node = node.setdefault(section, {})
            if not isinstance(node, dict):
                raise ParamsError(f"{file}: {'.'.join(sections[:depth + 1])}: must be a mapping")
        node[key] = value
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
    injected = {k: namespace[k] for k in SECTIONS if isinstance(namespace.get(k), Mapping)}
    defaults = namespace.get(_DEFAULTS_KEY)
    if injected or defaults is not None:  # a YAML of `defaults: paper` alone injects only that
        source = "the parameters papermill injected (-f YAML)"
        if defaults is not None:
            _take_defaults({_DEFAULTS_KEY: defaults}, source)
        return params_from_dict(injected, source=source)
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
            return f"{source}: {_join_key(loc, ctx_error.key)}: {ctx_error.message}"
        msg = str(ctx_error) if ctx_error else first["msg"]
        return f"{source}: {key}: {msg}" if key else f"{source}: {msg}"
    got = first.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{source}: {key}: {first['msg']}{shown}"


def _join_key(loc: list[str], key: str) -> str:
    """The section path and a validator's key, each part once: a validator may name its key with
    its own section (`hessian.ks_fig22` raised inside `hessian`)."""
    parts = key.split(".")
    overlap = max(k for k in range(min(len(loc), len(parts)) + 1)
                  if loc[len(loc) - k:] == parts[:k])
    return ".".join([*loc[:len(loc) - overlap], *parts])


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


def notebook_path(name: str) -> Path:
    """A notebook by name or number prefix ('04' -> notebooks/04_hessian_volume.ipynb).

    A ValueError naming the known notebooks when there is no single match. Where the project's
    notebooks/ folder cannot be found (the package used on its own), the name is not checked.
    """
    folder = project_root() / "notebooks"
    stem = name.removesuffix(".ipynb")
    exact = folder / f"{stem}.ipynb"
    if not folder.is_dir() or exact.exists():
        return exact
    matches = sorted(folder.glob(f"{stem}_*.ipynb"))
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted(p.stem for p in folder.glob("*.ipynb")))
    what = "more than one notebook" if matches else "no notebook"
    raise ValueError(f"{what} named {name!r} in {folder} (known: {known})")


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
