"""The sections that decide what a run trains: the run itself, data, network, training, IMP, and
the comparison solutions (baselines), with the checks that the schedule and the levels fit."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from lthkit.config.architectures import arch_pattern, architecture, families
from lthkit.config.base import LevelSelection, _KeyError, _Section, resolve_path
from lthkit.config.catalog import (FOLDER, IMAGENET_STATS, folder_classes, folder_count,
                                   folder_name, input_shape, iterations_per_epoch,
                                   known_train_size, prunable_sizes)
from lthkit.config.datasets import dataset_names

if TYPE_CHECKING:
    from lthkit.config.params import Params

def _check_levels_fit(p: "Params") -> None:
    _check_levels_fit_for(p.model, p.data.name, p.imp, "imp")


def _check_levels_fit_for(model: "ModelSection", dataset: str, imp: "ImpSection", key: str) -> None:
    """More levels than the sparsity allows: some layer (or the net) would be left with no weight."""
    try:
        sizes = prunable_sizes(model, dataset)
    except ValueError as e:  # lthkit.nets.models.NetworkError carries the key to change
        key = getattr(e, "key", None)
        raise _KeyError(key or "model.arch", e.message if key else str(e)) from None
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
    n = known_train_size(data.name, data.train_size)
    per_epoch = iterations_per_epoch(n, train.batch_size)
    total = train.epochs * per_epoch
    if imp.rewind_iteration >= total:
        raise _KeyError(f"{key}.rewind_iteration",
                        f"{imp.rewind_iteration} is not before the end of training: {train.epochs} "
                        f"epochs x {per_epoch} iterations ({n} training examples at batch "
                        f"{train.batch_size}) = {total} iterations")


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


class Normalization(_Section):
    """Per-channel mean and standard deviation the images are standardized with, on the [0, 1]
    scale (x / 255 - mean) / std."""

    mean: tuple[float, ...] = Field(min_length=1, description="per-channel mean")
    std: tuple[float, ...] = Field(min_length=1, description="per-channel standard deviation "
                                   "(> 0)")

    @field_validator("mean", "std", mode="before")
    @classmethod
    def _numbers(cls, v: Any) -> Any:
        """A YAML list of numbers as a tuple of floats (hashable: a section is a cache key)."""
        if isinstance(v, list | tuple) and all(isinstance(x, int | float) and
                                               not isinstance(x, bool) for x in v):
            return tuple(float(x) for x in v)
        raise ValueError(f"give a list of numbers, one per channel (got {v!r})")

    @model_validator(mode="after")
    def _one_value_per_channel(self) -> "Normalization":
        if len(self.mean) != len(self.std):
            raise _KeyError("std", f"{len(self.std)} values for {len(self.mean)} means: give "
                            f"one mean and one std per channel")
        if any(s <= 0 for s in self.std):
            raise _KeyError("std", f"{self.std}: every std must be > 0")
        return self


NORMALIZATIONS = ("dataset", "imagenet", "none")


class DataSection(_Section):
    dataset: str = Field(
        "cifar10", description="torchvision dataset (CIFAR-10, CIFAR-100, SVHN: 32 x 32 colour; "
        "MNIST, Fashion-MNIST: 28 x 28 grey), a learnable synthetic stand-in of its shapes "
        "and classes, or folder: your images in torchvision's ImageFolder layout, "
        "<data.root>/train/<class>/*.png and <data.root>/test/<class>/*.png")
    root: str = Field("data", description="where torchvision datasets live (relative: project root)")
    download: bool = Field(True, description="download a torchvision dataset on first use")
    train_size: int | None = Field(None, ge=1, description="use a seeded subset of this many "
                                   "training examples (None: all)")
    test_size: int | None = Field(None, ge=1, description="use a seeded subset of the test set")
    augment: bool = Field(True, description="random crop (4-pixel padding) and horizontal flip, "
                          "done on the device in batch (CIFAR-10, CIFAR-100 and image folders: "
                          "SVHN's digits and the grey datasets are not augmented)")
    synthetic_noise: float = Field(0.5, ge=0.0, description="pixel noise of the synthetic stand-in "
                                   "relative to its class signal (higher: harder)")
    image_size: int | None = Field(None, ge=8, description="data.dataset folder: images are "
                                   "resized to image_size x image_size RGB (None: 32)")
    normalization: Literal["dataset", "imagenet", "none"] | Normalization = Field(
        "dataset", description="how images are standardized after scaling to [0, 1]: dataset, "
        "by the dataset's own per-channel statistics (published for torchvision's, measured on "
        "the training images for stand-ins and image folders); imagenet, by ImageNet's (0.485, "
        "0.456, 0.406 / 0.229, 0.224, 0.225: what open_lth uses for CIFAR-10); none, not at "
        "all; or {mean: [...], std: [...]}, one value per channel. Networks are trained and "
        "analysed on the same inputs, so a run folder keeps the one it was trained with")

    @field_validator("dataset", mode="before")
    @classmethod
    def _registered_dataset(cls, v: Any) -> Any:
        """A registered dataset (lthkit.config.datasets), its stand-in, or folder."""
        allowed = (*dataset_names(), FOLDER)
        if v not in allowed:
            said = ", ".join(repr(n) for n in allowed[:-1])
            raise ValueError(f"Input should be {said} or {allowed[-1]!r} (got {v!r})")
        return v

    @model_validator(mode="after")
    def _folder_exists(self) -> "DataSection":
        if self.dataset == FOLDER:
            root = resolve_path(self.root)
            if not folder_classes(root) or not folder_count(root, "test"):
                raise _KeyError("root", f"{root} is not an image folder: data.dataset folder reads "
                                f"{root}/train/<class>/<image> and {root}/test/<class>/<image> "
                                f"(torchvision's ImageFolder layout)")
        return self

    @field_validator("normalization", mode="before")
    @classmethod
    def _known_normalization(cls, v: Any) -> Any:
        if (isinstance(v, str) and v not in NORMALIZATIONS) or not isinstance(
                v, str | dict | Normalization):
            raise ValueError(f"{v!r} is not a normalization: give {', '.join(NORMALIZATIONS)} "
                             f"or {{mean: [...], std: [...]}} (one value per channel)")
        return Normalization(**v) if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _normalization_fits(self) -> "DataSection":
        stats = self.normalization_stats()
        if stats is not None:
            channels = input_shape(self.name)[0]
            if len(stats[0]) != channels:
                given = self.normalization if isinstance(self.normalization, str) else "given"
                raise _KeyError("normalization", f"{given} has {len(stats[0])} values per "
                                f"statistic, {self.dataset}'s images {channels} channel(s): give "
                                f"{{mean: [...], std: [...]}} with {channels}, dataset or none")
        return self

    def normalization_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """(mean, std) the images are standardized with; None: the dataset's own statistics."""
        n = self.normalization
        if n == "dataset":
            return None
        if n == "imagenet":
            return IMAGENET_STATS
        if n == "none":
            channels = input_shape(self.name)[0]
            return (0.0,) * channels, (1.0,) * channels
        return tuple(n.mean), tuple(n.std)

    def describe(self) -> str:
        """The dataset and its normalization in words, as notebooks print it."""
        n = self.normalization
        how = {"dataset": "its own per-channel statistics", "imagenet": "ImageNet's mean and std",
               "none": "nothing (pixels scaled to [0, 1])"}
        said = how[n] if isinstance(n, str) else f"mean {list(n.mean)}, std {list(n.std)}"
        return f"{self.dataset}, normalized by {said}"

    @property
    def name(self) -> str:
        """The dataset as the networks and the catalog know it: `dataset`, or for an image
        folder folder:<root>:<image size> (its shape and classes come from the folder)."""
        if self.dataset == FOLDER:
            return folder_name(resolve_path(self.root), self.image_size or 32)
        return self.dataset


class ModelSection(_Section):
    arch: str = Field(
        "resnet20",
        description="the network: resnet20 / vgg16 (BatchNorm, CIFAR), mlp 300-100-10, lenet5 (the "
        "papers'); resnet, vgg, wrn (a ResNet, VGG or WideResNet for CIFAR of model.depth); "
        "torchvision:<name> (any torchvision classification network, untrained); "
        "<module.path>:<factory> (a function of yours returning an nn.Module, imported from your "
        "environment; it gets num_classes, in_channels, image_size and width if it takes them). "
        "The output has as many classes as the dataset")
    depth: int | None = Field(None, ge=1, description="layers of resnet (6n+2: 20, 32, 56, 110), "
                              "vgg (11, 13, 16, 19) and wrn (6n+4: 16, 28, 40); None: 20, 16, 16")
    width: int | None = Field(None, ge=1, description="base width: resnet20/resnet 16, vgg16/vgg "
                              "64, "
                              "mlp 300, lenet5 6 (None: the paper's), wrn the widen factor k "
                              "(None: 4); other layers scale with it")
    prunable: list[str] | None = Field(None, description="parameter names (glob patterns, e.g. "
                                       "'features.*.weight') that IMP prunes (None: the weight of "
                                       "every convolution and linear layer; biases and BatchNorm "
                                       "never)")
    not_prunable: list[str] | None = Field(None, description="patterns of parameter names left out "
                                           "of the prunable ones (e.g. 'fc.weight', the last "
                                           "layer)")

    @field_validator("arch", mode="before")
    @classmethod
    def _known_arch(cls, v: Any) -> Any:
        """One of the kit's networks (lthkit.config.architectures), torchvision:<name> or
        <module.path>:<factory>."""
        pattern = arch_pattern()
        if isinstance(v, str) and not re.fullmatch(pattern, v):
            raise ValueError(f"String should match pattern '{pattern}' (got {v!r})")
        return v

    @model_validator(mode="after")
    def _depth_fits(self) -> "ModelSection":
        spec = architecture(self.arch)
        if self.depth is not None and not (spec and spec.family):
            raise _KeyError("depth", f"{self.arch} has a fixed depth; model.depth is for "
                            f"{', '.join(families())}")
        depth = self.depth
        if depth is not None and spec and spec.depth_fits and not spec.depth_fits(depth):
            raise _KeyError("depth", f"{depth} is not a depth of {self.arch}: {spec.depths}")
        return self

    @property
    def network(self) -> str:
        """The network's full name: resnet56, vgg11, wrn16, or `arch` as given."""
        spec = architecture(self.arch)
        if spec is not None and spec.family:
            return f"{self.arch}{self.depth or spec.default_depth}"
        return self.arch

    @property
    def kit_network(self) -> bool:
        """Whether the network is one of the kit's own (not torchvision's or the user's)."""
        return architecture(self.arch) is not None


Precision = Literal["fp32", "tf32", "bf16"]


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
    precision: Precision = Field(
        "bf16", description="the arithmetic of a training step on CUDA: fp32 (IEEE float32, TF32 "
        "off: what the paper presets use), tf32 (convolutions and matrix products in TF32, "
        "torch's default for cuDNN), bf16 (bf16 autocast: the fastest). The CPU always trains "
        "in fp32; evaluation is fp32 everywhere")
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


