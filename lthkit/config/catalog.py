"""What the parameters need to know of datasets and networks without loading or building them:
image shapes, split sizes, iterations per epoch, and the size of each prunable layer.

The datasets' facts come from their records (lthkit.config.datasets), the kit's networks' from
theirs (lthkit.config.architectures). The one fact that needs a network built, its prunable layer
sizes, is provided by `lthkit.nets.models` (`provide_prunable_sizes`); so is what `lthkit-params
check` and `lthkit-report` ask before a run starts (`check_inputs`: a forward pass on a stand-in
batch, an image folder's classes and files), by `lthkit.train.context` (`provide_input_check`).
Each provider module is named in `PROVIDERS` and imported on first need, so that validating
parameters never depends on what happened to be imported before.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from lthkit.config.datasets import SYNTHETIC_PREFIX, dataset_spec, registered_datasets

__all__ = ["NUM_CLASSES", "SPLIT_SIZES", "CLASSES", "DATASETS", "num_classes", "input_shape",
           "known_train_size", "iterations_per_epoch", "split_sizes", "folder_name",
           "folder_classes", "FOLDER", "IMAGENET_STATS", "PROVIDERS",
           "prunable_sizes", "provide_prunable_sizes", "check_inputs", "provide_input_check"]

NUM_CLASSES = 10
# ImageNet's per-channel mean and std (torchvision's models; open_lth normalizes CIFAR-10 by them)
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


class _RegistryView(Mapping):
    """A read-only mapping of dataset name to one fact of its record, always the registry's
    current state (a dataset registered later is in it)."""

    def __init__(self, fact: Callable[[Any], Any]):
        self._fact = fact

    def __getitem__(self, name: str) -> Any:
        if name.startswith(SYNTHETIC_PREFIX):  # a dataset's name, not its stand-in's
            raise KeyError(name)
        return self._fact(dataset_spec(name))

    def __iter__(self) -> Iterator[str]:
        return iter([spec.name for spec in registered_datasets()])

    def __len__(self) -> int:
        return len(registered_datasets())

    def __repr__(self) -> str:
        return repr(dict(self))


SPLIT_SIZES: Mapping[str, tuple[int, int]] = _RegistryView(lambda spec: spec.split_sizes)
CLASSES: Mapping[str, int] = _RegistryView(lambda spec: spec.classes)
DATASETS = SPLIT_SIZES  # the registered datasets' names (iterate it; tuple(DATASETS) a snapshot)

# The modules that provide what needs torch, imported when first needed (config imports nothing
# above it statically: tests/test_architecture.py); importing one registers its provider below.
PROVIDERS = {"prunable sizes": "lthkit.nets.models", "input check": "lthkit.train.context"}

PrunableSizes = Callable[[Any, str], list[int]]
_prunable_sizes: list[PrunableSizes] = []
InputCheck = Callable[[Any], None]
_input_checks: list[InputCheck] = []

FOLDER = "folder"  # data.dataset: an image folder (torchvision's ImageFolder layout)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


def folder_name(root: str | Path, image_size: int) -> str:
    """The name an image folder goes by in the kit: folder:<absolute root>:<image size>."""
    return f"{FOLDER}:{Path(root).resolve()}:{image_size}"


def _folder(name: str) -> tuple[Path, int]:
    root, _, size = name.removeprefix(f"{FOLDER}:").rpartition(":")
    return Path(root), int(size)


@lru_cache(maxsize=32)
def folder_classes(root: Path, split: str = "train") -> tuple[str, ...]:
    """The class folders of <root>/<split>, sorted (ImageFolder's order); () when there is
    none."""
    folder = Path(root) / split
    return tuple(sorted(p.name for p in folder.iterdir() if p.is_dir())) if folder.is_dir() else ()


@lru_cache(maxsize=32)
def folder_count(root: Path, split: str) -> int:
    """Images under <root>/<split>/<class>/."""
    folder = Path(root) / split
    return sum(1 for p in folder.glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)


def input_shape(dataset: str) -> tuple[int, int, int]:
    """(channels, height, width) of a dataset's images (an image folder's: RGB at its size)."""
    if dataset.startswith(f"{FOLDER}:"):
        size = _folder(dataset)[1]
        return (3, size, size)
    return dataset_spec(dataset).shape


def split_sizes(dataset: str) -> tuple[int, int]:
    """(training, test) examples of a dataset (an image folder's counted on disk)."""
    if dataset.startswith(f"{FOLDER}:"):
        root = _folder(dataset)[0]
        return folder_count(root, "train"), folder_count(root, "test")
    return dataset_spec(dataset).split_sizes


def num_classes(dataset: str) -> int:
    """Classes of a dataset (its synthetic stand-in has as many; an image folder's class
    folders)."""
    if dataset.startswith(f"{FOLDER}:"):
        return len(folder_classes(_folder(dataset)[0]))
    return dataset_spec(dataset).classes


def known_train_size(dataset: str, train_size: int | None) -> int:
    """Training examples a run of `dataset` (with `data.train_size`) trains on, without loading it."""
    full = split_sizes(dataset)[0]
    return full if train_size is None else min(full, train_size)


def iterations_per_epoch(num_train: int, batch_size: int) -> int:
    """Full batches per epoch (the last partial batch is dropped); at least one."""
    return max(1, num_train // batch_size)


def provide_prunable_sizes(sizes: PrunableSizes) -> PrunableSizes:
    """Register the function that gives a network's prunable layer sizes (lthkit.nets.models)."""
    _prunable_sizes[:] = [sizes]
    return sizes


def prunable_sizes(model: Any, dataset: str) -> list[int]:
    """Number of weights in each prunable layer of the network a `ModelSection` names, for
    `dataset`'s images."""
    if not _prunable_sizes:
        _import_provider("prunable sizes", _prunable_sizes)
    return _prunable_sizes[0](model, dataset)


def provide_input_check(check: InputCheck) -> InputCheck:
    """Register the function that checks a run's network and images (lthkit.train.context)."""
    _input_checks[:] = [check]
    return check


def check_inputs(params: Any) -> None:
    """What reading the parameters cannot tell, before a run starts: that the network takes the
    dataset's images and gives one score per class, that an image folder's classes and files are
    usable. A ParamsError naming the key and the file."""
    if not _input_checks:
        _import_provider("input check", _input_checks)
    _input_checks[0](params)


def _import_provider(what: str, provided: list) -> None:
    """Import the module that provides `what` (it registers its provider as it is imported);
    a RuntimeError when it did not (asked while that module is itself being imported)."""
    importlib.import_module(PROVIDERS[what])
    if not provided:
        raise RuntimeError(f"no {what}: {PROVIDERS[what]} did not provide them (asked for while "
                           f"it is being imported?)")
