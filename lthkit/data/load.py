"""load_data: the dataset a `data` section names (torchvision, an image folder or a synthetic
stand-in), cut to its seeded subsets and moved to the device. Nothing here needs a network
connection unless a torchvision dataset is asked for and absent."""

from __future__ import annotations

from dataclasses import replace

import torch

from lthkit.config.base import resolve_path
from lthkit.config.catalog import FOLDER
from lthkit.config.training import DataSection
from lthkit.data.images import ImageData, generator
from lthkit.data.sources import image_folder, torchvision_dataset
from lthkit.data.synthetic import synthetic_dataset

__all__ = ["load_data"]


def load_data(spec: DataSection, device: torch.device | str = "cpu", seed: int = 0) -> ImageData:
    """The dataset a parameter section names, on `device`, with seeded train/test subsets."""
    if spec.dataset == FOLDER:
        data = image_folder(resolve_path(spec.root), spec.image_size or 32, spec.name)
    elif spec.dataset.startswith("synthetic_"):
        data = synthetic_dataset(spec.dataset.removeprefix("synthetic_"), spec, seed)
    else:
        data = torchvision_dataset(spec.dataset, resolve_path(spec.root), spec.download)
    return _subsets(_normalized(data, spec), spec, seed).to(device)


def _normalized(data: ImageData, spec: DataSection) -> ImageData:
    """`data` standardized as data.normalization says (the dataset's own: as it is)."""
    stats = spec.normalization_stats()
    if stats is None:
        return data
    return replace(data, mean=torch.tensor(stats[0]), std=torch.tensor(stats[1]))


def _subsets(data: ImageData, spec: DataSection, seed: int) -> ImageData:
    """The seeded subsets `data.train_size` and `data.test_size` ask for (None: all)."""
    train_idx = test_idx = None
    if spec.train_size is not None and spec.train_size < data.num_train:
        train_idx = torch.randperm(data.num_train, generator=generator(seed, "train-subset"))
        train_idx = train_idx[:spec.train_size].sort().values
    if spec.test_size is not None and spec.test_size < data.test_x.shape[0]:
        test_idx = torch.randperm(data.test_x.shape[0], generator=generator(seed, "test-subset"))
        test_idx = test_idx[:spec.test_size].sort().values
    return data.select(train_idx, test_idx)
