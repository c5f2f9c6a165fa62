"""Datasets held as tensors on the training device, augmented there in batch.

CIFAR-10 and MNIST come through torchvision (downloaded on first use into `data.root`). Each has
a synthetic stand-in of the same shapes (`synthetic_cifar10`, `synthetic_mnist`): deterministic
from a seed and learnable, because every class has its own texture (a grating of its own
orientation, frequency and colour) seen through random phase, contrast, background and noise.
Tests and smoke runs use the stand-ins; nothing here needs a network connection unless a
torchvision dataset is asked for and absent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F

from .models import input_shape
from .params import DataSection, resolve_path

__all__ = ["ImageData", "load_data", "DatasetMissingError", "derive_seed", "synthetic_images",
           "known_train_size", "iterations_per_epoch"]

NUM_CLASSES = 10
SPLIT_SIZES = {"cifar10": (50_000, 10_000), "mnist": (60_000, 10_000)}
STATS = {  # per-channel mean and std of the real training sets
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "mnist": ((0.1307,), (0.3081,)),
}
SYNTHETIC_BLOCK = 1000  # examples generated per seeded block, so the first n never depend on n
CROP_PADDING = 4


class DatasetMissingError(FileNotFoundError):
    """A torchvision dataset that is not on disk and may not (or could not) be downloaded."""


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (run seed, a tag, an epoch): stable across runs and machines."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _generator(*parts: object) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(*parts))


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

    def eval_batches(self, split: str, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The train or test split in order, without augmentation."""
        x_all, y_all = (self.train_x, self.train_y) if split == "train" else (self.test_x, self.test_y)
        for i in range(0, x_all.shape[0], batch_size):
            yield self.normalize(x_all[i:i + batch_size]), y_all[i:i + batch_size]

    def analysis_subset(self, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A fixed, seeded subset of the training set without augmentation, normalized."""
        size = min(size, self.num_train)
        idx = torch.randperm(self.num_train, generator=_generator(seed, "analysis-subset"))[:size]
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
        perm = torch.randperm(self.num_train, generator=_generator(seed, "train-half"))
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


# --- loading ------------------------------------------------------------------------------------

def load_data(spec: DataSection, device: torch.device | str = "cpu", seed: int = 0) -> ImageData:
    """The dataset a parameter section names, on `device`, with seeded train/test subsets."""
    base = spec.dataset.removeprefix("synthetic_")
    if spec.dataset.startswith("synthetic_"):
        data = _synthetic(base, spec, seed)
    else:
        data = _torchvision(base, resolve_path(spec.root), spec.download)
    data = _subsets(data, spec, seed)
    return data.to(device)


def _subsets(data: ImageData, spec: DataSection, seed: int) -> ImageData:
    train_idx = test_idx = None
    if spec.train_size is not None and spec.train_size < data.num_train:
        train_idx = torch.randperm(data.num_train, generator=_generator(seed, "train-subset"))
        train_idx = train_idx[:spec.train_size].sort().values
    if spec.test_size is not None and spec.test_size < data.test_x.shape[0]:
        test_idx = torch.randperm(data.test_x.shape[0], generator=_generator(seed, "test-subset"))
        test_idx = test_idx[:spec.test_size].sort().values
    return data.select(train_idx, test_idx)


def known_train_size(dataset: str, train_size: int | None) -> int:
    """Training examples a run of `dataset` (with `data.train_size`) trains on, without loading it."""
    full = SPLIT_SIZES[dataset.removeprefix("synthetic_")][0]
    return full if train_size is None else min(full, train_size)


def iterations_per_epoch(num_train: int, batch_size: int) -> int:
    """Full batches per epoch (the last partial batch is dropped); at least one."""
    return max(1, num_train // batch_size)


# Where torchvision keeps each dataset under <data.root>/<dataset>/, and the files it reads.
TORCHVISION_FILES = {
    "cifar10": ("cifar-10-batches-py", ["data_batch_1", "data_batch_2", "data_batch_3",
                                        "data_batch_4", "data_batch_5", "test_batch",
                                        "batches.meta"]),
    "mnist": ("MNIST/raw", ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                            "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]),
}


def _torchvision(base: str, root: Path, download: bool) -> ImageData:
    import torchvision

    cls = {"cifar10": torchvision.datasets.CIFAR10, "mnist": torchvision.datasets.MNIST}[base]
    folder = root / base
    try:
        train = cls(str(folder), train=True, download=download)
        test = cls(str(folder), train=False, download=download)
    except Exception as e:  # torchvision: not found, corrupted, a failed download, unreadable
        raise DatasetMissingError(_dataset_problem(base, folder, download, e)) from e
    mean, std = STATS[base]
    return ImageData(name=base, train_x=_as_nchw(train.data), train_y=torch.as_tensor(train.targets),
                     test_x=_as_nchw(test.data), test_y=torch.as_tensor(test.targets),
                     mean=torch.tensor(mean), std=torch.tensor(std), augmentable=base == "cifar10")


def _dataset_problem(base: str, folder: Path, download: bool, error: Exception) -> str:
    """What is wrong with a torchvision dataset on disk, and what to do, in a few lines."""
    sub, names = TORCHVISION_FILES[base]
    where = folder / sub
    present = [n for n in names if (where / n).is_file()]
    layout = f"{where}/{{{','.join(names)}}}"
    synthetic = f"or use data.dataset: synthetic_{base} (same shapes, no download)"
    if not present:
        if download:
            return (f"could not download {base} into {folder} ({_first_line(error)}). Put "
                    f"torchvision's files there by hand ({layout}), {synthetic}.")
        return (f"{base} is not in {folder} and data.download is false: torchvision reads "
                f"{layout}. Set data.download: true, put torchvision's copy there, {synthetic}.")
    failing = _failing_integrity(base, where)
    missing = [n for n in names if n not in present]
    if failing:
        retry = (f" (fetching them again failed: {_first_line(error)})" if download else "")
        absent = f"; missing: {', '.join(missing)}" if missing else ""
        return (f"the {base} files in {where} are there but fail torchvision's integrity check "
                f"(MD5 of {', '.join(failing)}{absent}): an interrupted download or another "
                f"copy{retry}. "
                f"Delete {where} and run again with data.download: true, or replace them with "
                f"torchvision's files, {synthetic}.")
    what = f"{', '.join(missing)} missing" if missing else _first_line(error)
    return (f"the {base} files in {where} cannot be read ({what}). Delete {where} and run again "
            f"with data.download: true, or put torchvision's files there ({layout}), {synthetic}.")


def _failing_integrity(base: str, where: Path) -> list[str]:
    """The present files whose MD5 torchvision knows and that do not match it (CIFAR-10)."""
    if base != "cifar10":
        return []
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    known = dict(CIFAR10.train_list + CIFAR10.test_list)
    known[CIFAR10.meta["filename"]] = CIFAR10.meta["md5"]
    return [n for n, md5 in known.items()
            if (where / n).is_file() and not check_integrity(str(where / n), md5)]


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _as_nchw(images: object) -> torch.Tensor:
    t = torch.as_tensor(images)
    if t.ndim == 3:  # MNIST: N x H x W
        return t.unsqueeze(1).contiguous()
    return t.permute(0, 3, 1, 2).contiguous()  # CIFAR: N x H x W x C


def _synthetic(base: str, spec: DataSection, seed: int) -> ImageData:
    n_train, n_test = SPLIT_SIZES[base]
    shape = input_shape(base)
    if spec.train_size is not None:  # the seeded subset of i.i.d. examples is their first n
        n_train = min(n_train, spec.train_size)
    if spec.test_size is not None:
        n_test = min(n_test, spec.test_size)
    train_x, train_y = synthetic_images(shape, n_train, "train", spec.synthetic_noise, seed)
    test_x, test_y = synthetic_images(shape, n_test, "test", spec.synthetic_noise, seed)
    mean = train_x.float().mean(dim=(0, 2, 3)) / 255.0
    std = train_x.float().std(dim=(0, 2, 3)) / 255.0
    return ImageData(name=f"synthetic_{base}", train_x=train_x, train_y=train_y, test_x=test_x,
                     test_y=test_y, mean=mean, std=std.clamp_min(1e-3),
                     augmentable=base == "cifar10")


def _smooth_fields(shape: tuple[int, int, int], n: int, g: torch.Generator) -> torch.Tensor:
    """n smooth random images of unit standard deviation (low-frequency noise, upsampled)."""
    c, h, w = shape
    coarse = torch.randn(n, c, 4, 4, generator=g)
    smooth = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return smooth / smooth.flatten(1).std(dim=1).clamp_min(1e-6).view(-1, 1, 1, 1)


def _class_textures(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per class: a grating orientation, a spatial frequency and a colour (unit vector over RGB)."""
    g = _generator(seed, "synthetic-classes")
    classes = torch.arange(NUM_CLASSES)
    angle = (classes % 5) * (torch.pi / 5)
    freq = torch.where(classes < 5, 0.12, 0.24)
    colour = torch.randn(NUM_CLASSES, 3, generator=g)
    return angle, freq, colour / colour.norm(dim=1, keepdim=True)


def synthetic_images(shape: tuple[int, int, int], n: int, split: str, noise: float,
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n examples (uint8 images, labels) of a synthetic stand-in; the first m never depend on n.

    CIFAR-shaped (3 channels): class textures (`_texture_images`); MNIST-shaped (1 channel):
    centred class shapes (`_shape_images`), which a fully connected network can learn too.
    """
    make = _texture_images if shape[0] == 3 else _shape_images
    xs, ys = [], []
    for block in range((n + SYNTHETIC_BLOCK - 1) // SYNTHETIC_BLOCK):
        g = _generator(seed, "synthetic", split, shape, block)
        img, y = make(shape, SYNTHETIC_BLOCK, noise, seed, g)
        xs.append((128 + 40 * img).round().clamp(0, 255).to(torch.uint8))
        ys.append(y)
    return torch.cat(xs)[:n].contiguous(), torch.cat(ys)[:n].contiguous()


def _shape_images(shape: tuple[int, int, int], m: int, noise: float, seed: int,
                  g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Centred class shapes: one of two smooth prototypes of the class, shifted by up to two
    pixels, with random contrast and pixel noise (MNIST's digits are centred, so is this)."""
    prototypes = _smooth_fields(shape, NUM_CLASSES * 2, _generator(seed, "synthetic-shapes"))
    prototypes = prototypes.view(NUM_CLASSES, 2, *shape)
    y = torch.randperm(m, generator=g) % NUM_CLASSES
    img = prototypes[y, torch.randint(0, 2, (m,), generator=g)]
    img = _circular_shift(img, torch.randint(-2, 3, (m, 2), generator=g))
    img = img * (0.6 + 0.8 * torch.rand(m, 1, 1, 1, generator=g))
    return img + noise * 2 * torch.randn(img.shape, generator=g), y


def _texture_images(shape: tuple[int, int, int], m: int, noise: float, seed: int,
                    g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Class textures: a grating with the class's orientation and frequency (each jittered, so
    neighbouring classes overlap a little) at a random phase, tinted with the class's colour,
    over a smooth class-independent background, plus pixel noise. The class is in local texture
    and colour, not in pixel positions, as in natural images: convolutions learn it in a few
    epochs, and larger `noise` leaves room for pruning to matter."""
    c, h, w = shape
    angle, freq, colour = _class_textures(seed)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing="ij")
    y = torch.randperm(m, generator=g) % NUM_CLASSES
    theta = angle[y] + 0.25 * torch.randn(m, generator=g)
    f = freq[y] * (1 + 0.15 * torch.randn(m, generator=g))
    phase = 2 * torch.pi * torch.rand(m, generator=g)
    proj = xx * torch.cos(theta).view(-1, 1, 1) + yy * torch.sin(theta).view(-1, 1, 1)
    grating = torch.sin(2 * torch.pi * f.view(-1, 1, 1) * proj + phase.view(-1, 1, 1))
    tint = colour[y] + 0.5 * torch.randn(m, 3, generator=g)
    contrast = 0.6 + 0.8 * torch.rand(m, 1, 1, 1, generator=g)
    img = contrast * grating.unsqueeze(1) * tint.view(m, c, 1, 1)
    img = img + 0.8 * _smooth_fields(shape, m, g)
    return img + noise * torch.randn(img.shape, generator=g), y


def _circular_shift(img: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Roll each image by its own (dy, dx), in one gather."""
    m, c, h, w = img.shape
    rows = (torch.arange(h) - shifts[:, 0:1]) % h
    cols = (torch.arange(w) - shifts[:, 1:2]) % w
    bi = torch.arange(m)[:, None, None, None]
    ci = torch.arange(c)[None, :, None, None]
    return img[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]
