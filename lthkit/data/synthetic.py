"""Synthetic stand-ins of each dataset's shapes and classes: deterministic from a seed and
learnable, so tests and smoke runs need no download.

Colour datasets: every class has its own texture (a grating of its own orientation, frequency
and colour) seen through random phase, contrast, background and noise. Grey datasets: centred
class shapes. CIFAR-10's and MNIST's stand-ins draw what they always drew; the other datasets'
draw a stream of their own (`DatasetSpec.stream`), so that no two stand-ins share their images.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from lthkit.config.catalog import FOLDER, input_shape, num_classes
from lthkit.config.datasets import dataset_spec
from lthkit.config.training import DataSection
from lthkit.data.images import ImageData, channel_stats, generator

__all__ = ["synthetic_images", "synthetic_dataset", "stand_in", "stand_in_batch",
           "SYNTHETIC_BLOCK"]

SYNTHETIC_BLOCK = 1000  # examples generated per seeded block, so the first n never depend on n


def synthetic_dataset(base: str, spec: DataSection, seed: int) -> ImageData:
    """The stand-in of dataset `base` ('cifar10', 'svhn', ...) with `spec`'s sizes and noise."""
    n_train, n_test = dataset_spec(base).split_sizes
    if spec.train_size is not None:  # the seeded subset of i.i.d. examples is their first n
        n_train = min(n_train, spec.train_size)
    if spec.test_size is not None:
        n_test = min(n_test, spec.test_size)
    data = stand_in(base, n_train, n_test, seed, spec.synthetic_noise)
    return replace(data, name=f"synthetic_{base}")


def stand_in(dataset: str, n_train: int, n_test: int, seed: int = 0,
             noise: float = 0.5) -> ImageData:
    """Learnable images of any dataset's shape and classes (a catalog name, its synthetic_ twin,
    or an image folder's folder:<root>:<size>), named `dataset`: what timing a unit of work needs
    (benchmarks/paper_time.py), where the real images are not at hand or not wanted."""
    base = dataset.removeprefix("synthetic_")
    shape, classes = input_shape(base), num_classes(base)
    folder = base.startswith(f"{FOLDER}:")
    spec = None if folder else dataset_spec(base)
    stream = (base,) if spec is None else spec.stream
    train_x, train_y = synthetic_images(shape, n_train, "train", noise, seed, classes, stream)
    test_x, test_y = synthetic_images(shape, n_test, "test", noise, seed, classes, stream)
    mean, std = channel_stats(train_x)
    augmentable = folder or spec.augmentable
    return ImageData(name=dataset, train_x=train_x, train_y=train_y, test_x=test_x,
                     test_y=test_y, mean=mean, std=std, augmentable=augmentable)


def stand_in_batch(dataset: str, n: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n normalized images and their labels of the stand-in of `dataset`'s shape and classes,
    made alone (not a block of SYNTHETIC_BLOCK: large images stay cheap): a batch to try a
    network on before anything is loaded (lthkit.train.context.check_inputs)."""
    base = dataset.removeprefix("synthetic_")
    shape, classes = input_shape(base), num_classes(base)
    make = _texture_images if shape[0] == 3 else _shape_images
    img, y = make(shape, n, 0.5, seed, generator(seed, "stand-in batch", base), classes, (base,))
    x = _as_uint8(img).float()
    mean, std = x.mean(dim=(0, 2, 3), keepdim=True), x.std(dim=(0, 2, 3), keepdim=True)
    return (x - mean) / std.clamp_min(1e-3), y


def _as_uint8(img: torch.Tensor) -> torch.Tensor:
    """A stand-in's images (around 0, class signal of about unit size) as uint8 pixels."""
    return (128 + 40 * img).round().clamp(0, 255).to(torch.uint8)


def synthetic_images(shape: tuple[int, int, int], n: int, split: str, noise: float,
                     seed: int = 0, classes: int = 10,
                     stream: tuple[str, ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """n examples (uint8 images, labels in 0..classes-1) of a synthetic stand-in; the first m
    never depend on n.

    3 channels: class textures (`_texture_images`); 1 channel: centred class shapes
    (`_shape_images`), which a fully connected network can learn too. `stream` names a draw of
    its own (empty: the papers' stand-ins).
    """
    make = _texture_images if shape[0] == 3 else _shape_images
    xs, ys = [], []
    for block in range((n + SYNTHETIC_BLOCK - 1) // SYNTHETIC_BLOCK):
        g = generator(seed, "synthetic", *stream, split, shape, block)
        img, y = make(shape, SYNTHETIC_BLOCK, noise, seed, g, classes, stream)
        xs.append(_as_uint8(img))
        ys.append(y)
    return torch.cat(xs)[:n].contiguous(), torch.cat(ys)[:n].contiguous()


def _smooth_fields(shape: tuple[int, int, int], n: int, g: torch.Generator) -> torch.Tensor:
    """n smooth random images of unit standard deviation (low-frequency noise, upsampled)."""
    c, h, w = shape
    coarse = torch.randn(n, c, 4, 4, generator=g)
    smooth = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return smooth / smooth.flatten(1).std(dim=1).clamp_min(1e-6).view(-1, 1, 1, 1)


def _class_textures(seed: int, classes: int,
                    stream: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per class: a grating orientation, a spatial frequency and a colour (unit vector over RGB).

    Up to 10 classes: 5 orientations at 2 frequencies; more (CIFAR-100): 10 orientations at
    `classes / 10` frequencies, told apart by colour as well.
    """
    g = generator(seed, "synthetic-classes", *stream)
    c = torch.arange(classes)
    if classes <= 10:
        angle = (c % 5) * (torch.pi / 5)
        freq = torch.where(c < 5, 0.12, 0.24)
    else:
        angle = (c % 10) * (torch.pi / 10)
        bands = (classes + 9) // 10
        freq = 0.08 + 0.24 * (c // 10).float() / max(1, bands - 1)
    colour = torch.randn(classes, 3, generator=g)
    return angle, freq, colour / colour.norm(dim=1, keepdim=True)


def _shape_images(shape: tuple[int, int, int], m: int, noise: float, seed: int,
                  g: torch.Generator, classes: int,
                  stream: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Centred class shapes: one of two smooth prototypes of the class, shifted by up to two
    pixels, with random contrast and pixel noise (MNIST's digits are centred, so is this)."""
    prototypes = _smooth_fields(shape, classes * 2, generator(seed, "synthetic-shapes", *stream))
    prototypes = prototypes.view(classes, 2, *shape)
    y = torch.randperm(m, generator=g) % classes
    img = prototypes[y, torch.randint(0, 2, (m,), generator=g)]
    img = _circular_shift(img, torch.randint(-2, 3, (m, 2), generator=g))
    img = img * (0.6 + 0.8 * torch.rand(m, 1, 1, 1, generator=g))
    return img + noise * 2 * torch.randn(img.shape, generator=g), y


def _texture_images(shape: tuple[int, int, int], m: int, noise: float, seed: int,
                    g: torch.Generator, classes: int,
                    stream: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Class textures: a grating with the class's orientation and frequency (each jittered, so
    neighbouring classes overlap a little) at a random phase, tinted with the class's colour,
    over a smooth class-independent background, plus pixel noise. The class is in local texture
    and colour, not in pixel positions, as in natural images: convolutions learn it in a few
    epochs, and larger `noise` leaves room for pruning to matter."""
    c, h, w = shape
    angle, freq, colour = _class_textures(seed, classes, stream)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing="ij")
    y = torch.randperm(m, generator=g) % classes
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
