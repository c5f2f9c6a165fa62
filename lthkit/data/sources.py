"""Where the images come from: torchvision's datasets (downloaded on first use into
<data.root>/<dataset>/) and image folders in torchvision's ImageFolder layout; and, when they
cannot be read, what is wrong and what to do, in one message.

A dataset of torchvision is a `Source` here, read from its record (lthkit.config.datasets): its
class, how it is called for each split, the files it reads (for the message) and their checksums,
and its published per-channel statistics.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lthkit.config.catalog import IMAGE_SUFFIXES, folder_classes
from lthkit.config.datasets import SYNTHETIC_PREFIX, DatasetSpec, dataset_spec, registered_datasets
from lthkit.data.images import DatasetMissingError, ImageData, channel_stats
from lthkit.platform.errors import first_line

__all__ = ["SOURCES", "Source", "torchvision_dataset", "image_folder", "dataset_problem",
           "check_image_folder"]


@dataclass(frozen=True)
class Source:
    """One torchvision dataset (its record in lthkit.config.datasets): where its files lie under
    <data.root>/<name>/, how to read it."""

    spec: DatasetSpec

    @property
    def cls(self) -> str:
        """The class in torchvision.datasets."""
        return self.spec.torchvision or ""

    @property
    def subfolder(self) -> str:
        """Where torchvision keeps the files, under <data.root>/<name>/."""
        return self.spec.subfolder

    @property
    def files(self) -> tuple[str, ...]:
        """The files it reads there."""
        return self.spec.files

    @property
    def mean(self) -> tuple[float, ...]:
        """Per-channel mean of the real training set."""
        return self.spec.mean or ()

    @property
    def std(self) -> tuple[float, ...]:
        """Per-channel standard deviation of the real training set."""
        return self.spec.std or ()

    @property
    def augmentable(self) -> bool:
        """Random crop and flip make sense (natural images, not digits)."""
        return self.spec.augmentable

    def split_arg(self, train: bool) -> dict[str, Any]:
        """torchvision's argument choosing a split: train=True/False, or split='train'/'test'."""
        if self.spec.split_keyword == "split":
            return {"split": "train" if train else "test"}
        return {self.spec.split_keyword: train}

    def read(self, folder: Path, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 images N x C x H x W, labels) of one split."""
        import torchvision

        dataset = getattr(torchvision.datasets, self.cls)(str(folder), download=download,
                                                          **self.split_arg(train))
        labels = getattr(dataset, "targets", None)
        if labels is None:  # SVHN
            labels = dataset.labels
        images = torch.as_tensor(dataset.data)
        return (images.contiguous() if self.spec.channels_first else as_nchw(images),
                torch.as_tensor(labels).long())


class _Sources(Mapping):
    """The torchvision datasets of the registry (lthkit.config.datasets) as `Source`s, always its
    current state."""

    def __getitem__(self, name: str) -> Source:
        spec = dataset_spec(name) if not name.startswith(SYNTHETIC_PREFIX) else None
        if spec is None or not spec.torchvision:
            raise KeyError(name)
        return Source(spec)

    def __iter__(self) -> Iterator[str]:
        return iter([s.name for s in registered_datasets() if s.torchvision])

    def __len__(self) -> int:
        return sum(1 for s in registered_datasets() if s.torchvision)


SOURCES: Mapping[str, Source] = _Sources()


def torchvision_dataset(name: str, root: Path, download: bool) -> ImageData:
    """Dataset `name` of torchvision from <root>/<name>/ (downloaded there first if allowed)."""
    source = SOURCES[name]
    folder = root / name
    try:
        train_x, train_y = source.read(folder, True, download)
        test_x, test_y = source.read(folder, False, download)
    except Exception as e:  # torchvision: not found, corrupted, a failed download, unreadable
        raise DatasetMissingError(dataset_problem(name, folder, download, e)) from e
    return ImageData(name=name, train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y,
                     mean=torch.tensor(source.mean), std=torch.tensor(source.std),
                     augmentable=source.augmentable)


def dataset_problem(name: str, folder: Path, download: bool, error: Exception) -> str:
    """What is wrong with a torchvision dataset on disk, and what to do, in a few lines."""
    source = SOURCES[name]
    where = folder / source.subfolder if source.subfolder else folder
    names = source.files
    present = [n for n in names if (where / n).is_file()]
    layout = f"{where}/{{{','.join(names)}}}"
    synthetic = f"or use data.dataset: synthetic_{name} (same shapes, no download)"
    if not present:
        if download:
            return (f"could not download {name} into {folder} ({first_line(error)}). Put "
                    f"torchvision's files there by hand ({layout}), {synthetic}.")
        return (f"{name} is not in {folder} and data.download is false: torchvision reads "
                f"{layout}. Set data.download: true, put torchvision's copy there, {synthetic}.")
    failing = _failing_integrity(name, where)
    missing = [n for n in names if n not in present]
    if failing:
        retry = f" (fetching them again failed: {first_line(error)})" if download else ""
        absent = f"; missing: {', '.join(missing)}" if missing else ""
        return (f"the {name} files in {where} are there but fail torchvision's integrity check "
                f"(MD5 of {', '.join(failing)}{absent}): an interrupted download or another "
                f"copy{retry}. "
                f"Delete {where} and run again with data.download: true, or replace them with "
                f"torchvision's files, {synthetic}.")
    what = f"{', '.join(missing)} missing" if missing else first_line(error)
    return (f"the {name} files in {where} cannot be read ({what}). Delete {where} and run again "
            f"with data.download: true, or put torchvision's files there ({layout}), {synthetic}.")


def _known_md5(name: str) -> dict[str, str]:
    """The MD5 torchvision checks each file of a dataset against (its record's checksums)."""
    return dict(SOURCES[name].spec.checksums)


def _failing_integrity(name: str, where: Path) -> list[str]:
    """The present files whose MD5 torchvision knows and that do not match it."""
    from torchvision.datasets.utils import check_integrity

    return [n for n, md5 in _known_md5(name).items()
            if (where / n).is_file() and not check_integrity(str(where / n), md5)]


def as_nchw(images: object) -> torch.Tensor:
    """torchvision's channels-last arrays as N x C x H x W: MNIST's N x H x W, CIFAR's
    N x H x W x C."""
    t = torch.as_tensor(images)
    if t.ndim == 3:
        return t.unsqueeze(1).contiguous()
    return t.permute(0, 3, 1, 2).contiguous()


# --- image folders ------------------------------------------------------------------------------

def image_folder(root: Path, size: int, name: str) -> ImageData:
    """Images of <root>/train/<class>/ and <root>/test/<class>/ as RGB, resized to size x size,
    labelled by their class folder in sorted order (torchvision's ImageFolder); normalized with
    the training images' own per-channel statistics."""
    classes = check_image_folder(root)
    train_x, train_y = _read_split(root / "train", classes, size)
    test_x, test_y = _read_split(root / "test", classes, size)
    mean, std = channel_stats(train_x)
    return ImageData(name=name, train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y,
                     mean=mean, std=std, augmentable=True)


def check_image_folder(root: Path, readable: bool = False) -> tuple[str, ...]:
    """The class folders of an image folder, after checking what a classifier needs of them:
    two classes at least, each with training images, the same classes in test/ and train/, and
    with `readable` every image opened and verified (PIL reads its header and, for PNG, its
    checksums; no pixels are decoded, so it stays fast). DatasetMissingError naming the folder
    or the file and what to do."""
    root = Path(root)
    classes = folder_classes(root)
    if len(classes) < 2:
        raise DatasetMissingError(
            f"{root}/train holds {len(classes)} class folder(s) ({', '.join(classes) or 'none'}):"
            f" a classifier needs two classes at least: add a folder of images per class")
    test_classes = folder_classes(root, "test")
    if test_classes != classes:
        raise DatasetMissingError(
            f"{root}: the class folders of train/ ({', '.join(classes) or 'none'}) and test/ "
            f"({', '.join(test_classes) or 'none'}) differ: give both the same class folders")
    for name in classes:
        if not _images(root / "train" / name):
            raise DatasetMissingError(
                f"{root}/train/{name} holds no images ({', '.join(IMAGE_SUFFIXES)}): the network "
                f"would have a class it never sees: add its images, or remove the class from "
                f"train/ and test/")
    if readable:
        from PIL import Image

        for split in ("train", "test"):
            for name in classes:
                for path in _images(root / split / name):
                    try:
                        with Image.open(path) as image:
                            image.verify()
                    except Exception as e:  # not an image, truncated, unreadable
                        raise _unreadable(path, e) from None
    return classes


def _images(folder: Path) -> list[Path]:
    """The images of one class folder, in ImageFolder's order (file name)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _unreadable(path: Path, error: Exception) -> DatasetMissingError:
    return DatasetMissingError(f"{path} cannot be read as an image ({first_line(error)}): "
                               f"replace it or remove it")


def _read_split(split: Path, classes: tuple[str, ...],
                size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of one split, in ImageFolder's order (class, then file name)."""
    from PIL import Image

    images, labels = [], []
    for label, name in enumerate(classes):
        for path in _images(split / name):
            try:
                with Image.open(path) as image:
                    rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            except Exception as e:  # not an image, truncated, unreadable
                raise _unreadable(path, e) from e
            images.append(torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
                          .view(size, size, 3))
            labels.append(label)
    if not images:
        raise DatasetMissingError(f"{split} holds no images ({', '.join(IMAGE_SUFFIXES)}) under "
                                  f"its class folders")
    return (torch.stack(images).permute(0, 3, 1, 2).contiguous(),
            torch.tensor(labels, dtype=torch.long))
