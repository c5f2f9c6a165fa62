"""The datasets the kit knows, one `DatasetSpec` each: adding a dataset is one `register_dataset`
call (or one entry in `_KIT_DATASETS`).

Everything else reads these records: the shapes, classes and split sizes the parameter checks need
(lthkit.config.catalog), the names `data.dataset` accepts (lthkit.config.training), where
torchvision's files lie and how they are read and checked (lthkit.data.sources), and the synthetic
stand-ins (lthkit.data.synthetic). Plain data, no torch: lthkit.config imports nothing above it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DatasetSpec", "register_dataset", "dataset_spec", "registered_datasets",
           "dataset_names", "SYNTHETIC_PREFIX"]

SYNTHETIC_PREFIX = "synthetic_"  # data.dataset synthetic_<name>: the stand-in of dataset <name>


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its shape, classes and sizes (what the checks need), where torchvision keeps
    its files and how it reads them (what loading needs), and its synthetic stand-in."""

    name: str  # data.dataset
    shape: tuple[int, int, int]  # (channels, height, width) of its images
    classes: int
    split_sizes: tuple[int, int]  # (training, test) examples
    torchvision: str | None = None  # its class in torchvision.datasets (None: a stand-in only)
    subfolder: str = ""  # where torchvision keeps the files, under <data.root>/<name>/
    files: tuple[str, ...] = ()  # the files torchvision reads there (named when they are missing)
    checksums: tuple[tuple[str, str], ...] = ()  # (file, MD5) torchvision checks them against
    mean: tuple[float, ...] | None = None  # per-channel statistics of the real training set
    std: tuple[float, ...] | None = None
    augmentable: bool = False  # random crop and flip make sense (natural images, not digits)
    split_keyword: str = "train"  # torchvision's split argument: train=True/False or split="train"
    channels_first: bool = False  # torchvision's array is N x C x H x W already (SVHN)
    synthetic: bool = True  # data.dataset synthetic_<name> is its learnable stand-in
    stand_in_stream: tuple[str, ...] | None = None  # the stand-in's draw (None: one of its own)

    @property
    def stream(self) -> tuple[str, ...]:
        """The stand-in's draw: the papers' datasets keep the one they always had (empty)."""
        return (self.name,) if self.stand_in_stream is None else self.stand_in_stream

    def names(self) -> tuple[str, ...]:
        """The data.dataset names it goes by: itself (when torchvision has it) and its stand-in."""
        return ((self.name,) if self.torchvision else ()) + (
            (f"{SYNTHETIC_PREFIX}{self.name}",) if self.synthetic else ())


_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte")

_KIT_DATASETS = (
    DatasetSpec("cifar10", (3, 32, 32), 10, (50_000, 10_000), "CIFAR10", "cifar-10-batches-py",
                ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                 "test_batch", "batches.meta"),
                (("data_batch_1", "c99cafc152244af753f735de768cd75f"),
                 ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
                 ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
                 ("data_batch_4", "634d18415352ddfa80567beed471001a"),
                 ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
                 ("test_batch", "40351d587109b95175f43aff81a1287e"),
                 ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888")),
                (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), augmentable=True,
                stand_in_stream=()),
    DatasetSpec("mnist", (1, 28, 28), 10, (60_000, 10_000), "MNIST", "MNIST/raw", _MNIST_FILES,
                mean=(0.1307,), std=(0.3081,), stand_in_stream=()),
    DatasetSpec("cifar100", (3, 32, 32), 100, (50_000, 10_000), "CIFAR100", "cifar-100-python",
                ("train", "test", "meta"),
                (("train", "16019d7e3df5f24257cddd939b257f8d"),
                 ("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),
                 ("meta", "7973b15100ade9c7d40fb424638fde48")),
                (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), augmentable=True),
    DatasetSpec("svhn", (3, 32, 32), 10, (73_257, 26_032), "SVHN", "",
                ("train_32x32.mat", "test_32x32.mat"),
                (("train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"),
                 ("test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3"),
                 ("extra_32x32.mat", "a93ce644f1a588dc4d68dda5feec44a7")),
                (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), split_keyword="split",
                channels_first=True),
    DatasetSpec("fashion_mnist", (1, 28, 28), 10, (60_000, 10_000), "FashionMNIST",
                "FashionMNIST/raw", _MNIST_FILES, mean=(0.2860,), std=(0.3530,)),
)

_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Make `spec` a dataset of the kit (data.dataset <name> and synthetic_<name>); a ValueError
    when its name is taken, or its statistics do not fit its channels."""
    if spec.name in _REGISTRY:
        raise ValueError(f"dataset {spec.name!r} is registered already")
    if spec.name.startswith(SYNTHETIC_PREFIX) or ":" in spec.name or spec.name == "folder":
        raise ValueError(f"{spec.name!r} cannot name a dataset: it would read as a stand-in or "
                         f"an image folder")
    for stat in (spec.mean, spec.std):
        if stat is not None and len(stat) != spec.shape[0]:
            raise ValueError(f"{spec.name}: {len(stat)} statistics for {spec.shape[0]} channels")
    if spec.torchvision and (spec.mean is None or spec.std is None):
        raise ValueError(f"{spec.name}: a torchvision dataset needs its mean and std")
    _REGISTRY[spec.name] = spec
    return spec


def unregister_dataset(name: str) -> None:
    """Forget a dataset registered with `register_dataset` (tests clean up with it)."""
    if any(spec.name == name for spec in _KIT_DATASETS):
        raise ValueError(f"{name!r} is one of the kit's own datasets")
    _REGISTRY.pop(name, None)


def dataset_spec(name: str) -> DatasetSpec:
    """The record of dataset `name` or of its stand-in synthetic_<name>; a KeyError naming it."""
    return _REGISTRY[name.removeprefix(SYNTHETIC_PREFIX)]


def registered_datasets() -> tuple[DatasetSpec, ...]:
    """Every registered dataset, in the order they were registered."""
    return tuple(_REGISTRY.values())


def dataset_names() -> tuple[str, ...]:
    """The data.dataset names of the registered datasets: each, then its stand-in."""
    return tuple(n for spec in _REGISTRY.values() for n in spec.names())


for _spec in _KIT_DATASETS:
    register_dataset(_spec)
