"""A dataset on one device: uint8 images and labels, normalized per batch, shuffled and augmented
there in batch (one copy of the epoch's order to the device, one gather per batch)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator

import torch
import torch.nn.functional as F

from lthkit.config.catalog import iterations_per_epoch
from lthkit.config.seeds import derive_seed

__all__ = ["ImageData", "DatasetMissingError", "crop_and_flip", "channel_stats", "generator",
           "CROP_PADDING"]

CROP_PADDING = 4


class DatasetMissingError(FileNotFoundError):
    """A dataset that is not on disk and may not (or could not) be downloaded, or cannot be read."""


def generator(*parts: object) -> torch.Generator:
    """A CPU generator seeded from any parts (see `derive_seed`)."""
    return torch.Generator().manual_seed(derive_seed(*parts))


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of uint8 images (N x C x H x W) on the [0, 1]
    scale, for datasets without published statistics (the stand-ins, an image folder)."""
    x = images.float()
    mean = x.mean(dim=(0, 2, 3)) / 255.0
    std = x.std(dim=(0, 2, 3)) / 255.0
    return mean, std.clamp_min(1e-3)


@dataclass
class ImageData:
    """Train and test images (uint8, N x C x H x W) and labels, on one device."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    augmentable: bool

    @property
    def device(self) -> torch.device:
        return self.train_x.device

    @property
    def num_train(self) -> int:
        return self.train_x.shape[0]

    def to(self, device: torch.device | str) -> "ImageData":
        move = {k: getattr(self, k).to(device) for k in
                ("train_x", "train_y", "test_x", "test_y", "mean", "std")}
        return replace(self, **move)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> float32, scaled to [0, 1] and standardized per channel."""
        x = x.float().div_(255.0)
        return x.sub_(self.mean.view(1, -1, 1, 1)).div_(self.std.view(1, -1, 1, 1))

    def iterations_per_epoch(self, batch_size: int) -> int:
        """Full batches per epoch (the last partial batch is dropped)."""
        return iterations_per_epoch(self.num_train, batch_size)

    def train_batches(self, batch_size: int, seed: int, augment: bool,
                      start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of shuffled, augmented batches; order and augmentation are fixed by `seed`.

        `start` skips the first batches (a run that resumes, or starts, mid-epoch) without
        changing the ones that follow.
        """
        g = torch.Generator().manual_seed(seed)
        n = self.num_train
        order = torch.randperm(n, generator=g)
        do_augment = augment and self.augmentable
        if do_augment:
            shifts = torch.randint(0, 2 * CROP_PADDING + 1, (n, 2), generator=g)
            flips = torch.randint(0, 2, (n,), generator=g, dtype=torch.bool)
        # One copy to the device per epoch: a copy per batch from pageable memory would make the
        # host wait for the GPU at every step.
        order = order.to(self.device)
        if do_augment:
            shifts, flips = shifts.to(self.device), flips.to(self.device)
        batches = self.iterations_per_epoch(batch_size)
        bs = min(batch_size, n)
        for b in range(start, batches):
            idx = order[b * bs:(b + 1) * bs]
            x = self.train_x[idx]
            if do_augment:
                x = crop_and_flip(x, shifts[idx], flips[idx])
            yield self.normalize(x), self.train_y[idx]

    def eval_batches(self, split: str,
                     batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The train or test split in order, without augmentation."""
        train = split == "train"
        x_all = self.train_x if train else self.test_x
        y_all = self.train_y if train else self.test_y
        for i in range(0, x_all.shape[0], batch_size):
            yield self.normalize(x_all[i:i + batch_size]), y_all[i:i + batch_size]

    def analysis_subset(self, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed, seeded subset of the training set without augmentation, normalized."""
        size = min(size, self.num_train)
        idx = torch.randperm(self.num_train, generator=generator(seed, "analysis-subset"))[:size]
        idx = idx.sort().values.to(self.device)
        return self.normalize(self.train_x[idx]), self.train_y[idx]

    def select(self, train_idx: torch.Tensor | None = None,
               test_idx: torch.Tensor | None = None) -> "ImageData":
        """A copy holding only the given train and test examples."""
        out = self
        if train_idx is not None:
            i = train_idx.to(self.device)
            out = replace(out, train_x=out.train_x[i], train_y=out.train_y[i])
        if test_idx is not None:
            i = test_idx.to(self.device)
            out = replace(out, test_x=out.test_x[i], test_y=out.test_y[i])
        return out

    def with_classes(self, classes: list[int]) -> "ImageData":
        """Only the examples (train and test) whose label is in `classes`."""
        keep = torch.tensor(classes, device=self.device)
        return self.select(torch.isin(self.train_y, keep).nonzero().flatten(),
                           torch.isin(self.test_y, keep).nonzero().flatten())

    def train_half(self, half: int, seed: int) -> "ImageData":
        """One of two disjoint, seeded halves of the training set (the test set is kept)."""
        perm = torch.randperm(self.num_train, generator=generator(seed, "train-half"))
        cut = self.num_train // 2
        return self.select((perm[:cut] if half == 0 else perm[cut:]).sort().values)


def crop_and_flip(x: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Random crop after zero padding, and horizontal flip, for a whole batch in one gather."""
    b, c, h, w = x.shape
    padded = F.pad(x, (CROP_PADDING,) * 4)
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = shifts[:, 0:1] + ar_h  # B x H
    cols = shifts[:, 1:2] + torch.where(flips[:, None], w - 1 - ar_w, ar_w)  # B x W
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]
