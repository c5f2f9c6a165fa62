"""Data: the synthetic stand-ins are deterministic and learnable; augmentation is what it says."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from lthkit.config.training import DataSection
from lthkit.data.images import DatasetMissingError, crop_and_flip
from lthkit.data.load import load_data
from lthkit.data.synthetic import synthetic_images


def test_synthetic_cifar_has_cifar_shapes_and_balanced_labels():
    data = load_data(DataSection(dataset="synthetic_cifar10", train_size=2000, test_size=1000))
    assert data.train_x.shape == (2000, 3, 32, 32) and data.train_x.dtype == torch.uint8
    assert data.test_x.shape == (1000, 3, 32, 32)
    assert data.train_y.bincount(minlength=10).min() >= 150


def test_synthetic_mnist_has_mnist_shapes():
    data = load_data(DataSection(dataset="synthetic_mnist", train_size=100, test_size=50))
    assert data.train_x.shape == (100, 1, 28, 28) and not data.augmentable


def test_synthetic_is_deterministic_and_prefix_stable():
    a, ya = synthetic_images((3, 32, 32), 1500, "train", 0.5, seed=3)
    b, yb = synthetic_images((3, 32, 32), 2500, "train", 0.5, seed=3)
    c, _ = synthetic_images((3, 32, 32), 1500, "train", 0.5, seed=4)
    t, _ = synthetic_images((3, 32, 32), 1500, "test", 0.5, seed=3)
    assert torch.equal(a, b[:1500]) and torch.equal(ya, yb[:1500])
    assert not torch.equal(a, c) and not torch.equal(a, t)


def test_synthetic_classes_are_learnable_by_a_simple_model():
    """A linear probe on per-channel spectra separates the classes far above chance."""
    data = load_data(DataSection(dataset="synthetic_cifar10", train_size=3000, test_size=1000))

    def features(x):
        f = torch.fft.rfft2(data.normalize(x)).abs()  # phase-free texture and colour
        return torch.nn.functional.avg_pool2d(f, 4).flatten(1)

    xtr, xte = features(data.train_x), features(data.test_x)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    onehot = torch.nn.functional.one_hot(data.train_y, 10).float()
    w = torch.linalg.lstsq(xtr, onehot, driver="gelsd").solution
    acc = ((xte @ w).argmax(1) == data.test_y).float().mean().item()
    assert acc > 0.5, acc


def test_crop_and_flip_matches_torchvision_per_image():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6, 3, 32, 32), generator=g, dtype=torch.uint8)
    shifts = torch.randint(0, 9, (6, 2), generator=g)
    flips = torch.tensor([True, False, True, False, True, False])
    out = crop_and_flip(x, shifts, flips)
    for i in range(6):
        padded = TF.pad(x[i], [4, 4, 4, 4], fill=0)
        ref = padded[:, shifts[i, 0]:shifts[i, 0] + 32, shifts[i, 1]:shifts[i, 1] + 32]
        if flips[i]:
            ref = TF.horizontal_flip(ref)
        assert torch.equal(out[i], ref)


def test_epoch_batches_are_fixed_by_the_seed_and_skippable():
    data = load_data(DataSection(dataset="synthetic_cifar10", train_size=256, test_size=32))
    full = list(data.train_batches(32, seed=7, augment=True))
    again = list(data.train_batches(32, seed=7, augment=True))
    skipped = list(data.train_batches(32, seed=7, augment=True, start=3))
    other = list(data.train_batches(32, seed=8, augment=True))
    assert len(full) == 8 and len(skipped) == 5
    assert all(torch.equal(a[0], b[0]) for a, b in zip(full, again))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(full[3:], skipped))
    assert not torch.equal(full[0][0], other[0][0])
    seen = torch.cat([y for _, y in full])
    assert seen.numel() == 256


def test_analysis_subset_is_fixed_and_unaugmented():
    data = load_data(DataSection(dataset="synthetic_cifar10", train_size=512, test_size=32))
    x1, y1 = data.analysis_subset(100, seed=0)
    x2, y2 = data.analysis_subset(100, seed=0)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and x1.shape == (100, 3, 32, 32)
    assert x1.dtype == torch.float32 and abs(float(x1.mean())) < 0.2


def test_absent_dataset_without_download_is_a_clear_error(tmp_path):
    spec = DataSection(dataset="cifar10", root=str(tmp_path), download=False)
    with pytest.raises(DatasetMissingError, match="data.download is false.*synthetic_cifar10"):
        load_data(spec)


def test_label_split_and_halves():
    data = load_data(DataSection(dataset="synthetic_mnist", train_size=600, test_size=200))
    low = data.with_classes([0, 1, 2, 3, 4])
    assert set(low.train_y.tolist()) == {0, 1, 2, 3, 4} and set(low.test_y.tolist()) <= {0, 1, 2, 3, 4}
    a, b = data.train_half(0, seed=1), data.train_half(1, seed=1)
    assert a.num_train + b.num_train == 600
    rows = {tuple(r.flatten().tolist()[:40]) for r in a.train_x}
    assert not any(tuple(r.flatten().tolist()[:40]) in rows for r in b.train_x)


def test_cifar_files_that_fail_the_integrity_check_are_named(tmp_path):
    """Files present but damaged: say so and what to do, not that the dataset is absent."""
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                 "test_batch", "batches.meta"):
        (folder / name).write_bytes(b"not the real thing")
    spec = DataSection(dataset="cifar10", root=str(tmp_path), download=False)
    with pytest.raises(DatasetMissingError) as info:
        load_data(spec)
    msg = str(info.value)
    assert f"files in {folder} are there but fail torchvision's integrity check" in msg
    assert "data_batch_1" in msg and f"Delete {folder}" in msg and "is not in" not in msg


def test_absent_dataset_message_says_where_the_files_must_be(tmp_path):
    spec = DataSection(dataset="mnist", root=str(tmp_path), download=False)
    with pytest.raises(DatasetMissingError) as info:
        load_data(spec)
    assert f"{tmp_path}/mnist/MNIST/raw/{{train-images-idx3-ubyte," in str(info.value)


def test_unreadable_mnist_files_are_named(tmp_path):
    raw = tmp_path / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"\0" * 16)
    spec = DataSection(dataset="mnist", root=str(tmp_path), download=False)
    with pytest.raises(DatasetMissingError, match=f"the mnist files in {raw} cannot be read"):
        load_data(spec)


# --- the datasets beyond the papers' (issue 25) ----------------------------------------------------

@pytest.mark.parametrize("name, shape, classes", [("cifar100", (3, 32, 32), 100),
                                                  ("svhn", (3, 32, 32), 10),
                                                  ("fashion_mnist", (1, 28, 28), 10)])
def test_each_stand_in_has_its_datasets_shapes_and_classes(name, shape, classes):
    data = load_data(DataSection(dataset=f"synthetic_{name}", train_size=1200, test_size=300))
    assert tuple(data.train_x.shape[1:]) == shape and data.train_x.dtype == torch.uint8
    assert set(data.train_y.tolist()) == set(range(classes))
    again = load_data(DataSection(dataset=f"synthetic_{name}", train_size=1200, test_size=300))
    assert torch.equal(data.train_x, again.train_x), "deterministic"
    twin = "synthetic_cifar10" if shape[0] == 3 else "synthetic_mnist"
    other = load_data(DataSection(dataset=twin, train_size=1200, test_size=300))
    assert not torch.equal(data.train_x, other.train_x), "a stream of its own, not its twin's"
    assert data.augmentable == (name == "cifar100"), "crop and flip for CIFAR only"


def test_the_papers_stand_ins_draw_what_they_always_drew():
    a, _ = synthetic_images((3, 32, 32), 64, "train", 0.5, seed=3)
    b, _ = synthetic_images((3, 32, 32), 64, "train", 0.5, seed=3, classes=10, stream=())
    assert torch.equal(a, b)
    c, _ = synthetic_images((3, 32, 32), 64, "train", 0.5, seed=3, stream=("cifar100",))
    assert not torch.equal(a, c), "a stream of one's own differs"


@pytest.mark.parametrize("name, where", [("cifar100", "cifar100/cifar-100-python/{train,test"),
                                         ("svhn", "svhn/{train_32x32.mat,test_32x32.mat}"),
                                         ("fashion_mnist", "fashion_mnist/FashionMNIST/raw/")])
def test_absent_new_datasets_say_where_torchvision_reads_them(tmp_path, name, where):
    with pytest.raises(DatasetMissingError, match=f"synthetic_{name}") as info:
        load_data(DataSection(dataset=name, root=str(tmp_path), download=False))
    assert where in str(info.value)


def _idx(path, array):
    """An IDX file as torchvision's MNIST readers read it (uint8 data)."""
    import numpy as np

    dims = array.shape
    header = bytes([0, 0, 0x08, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


@pytest.mark.parametrize("name, folder, mean", [("mnist", "MNIST", 0.1307),
                                                 ("fashion_mnist", "FashionMNIST", 0.2860)])
def test_mnist_and_fashion_mnist_are_read_through_torchvision(tmp_path, name, folder, mean):
    import numpy as np

    raw = tmp_path / name / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = {s: rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for s, n in (("train", 40),
                                                                               ("t10k", 12))}
    labels = {s: rng.integers(0, 10, len(images[s]), dtype=np.uint8) for s in images}
    for s in images:
        _idx(raw / f"{s}-images-idx3-ubyte", images[s])
        _idx(raw / f"{s}-labels-idx1-ubyte", labels[s])
    data = load_data(DataSection(dataset=name, root=str(tmp_path), download=False))
    assert tuple(data.train_x.shape) == (40, 1, 28, 28) and not data.augmentable
    assert torch.equal(data.train_x[:, 0], torch.from_numpy(images["train"]))
    assert torch.equal(data.train_y, torch.from_numpy(labels["train"]).long())
    assert torch.equal(data.test_x[:, 0], torch.from_numpy(images["t10k"]))
    assert torch.equal(data.test_y, torch.from_numpy(labels["t10k"]).long())
    assert data.mean.tolist() == pytest.approx([mean])


def test_a_valid_cifar10_copy_is_read_through_torchvision(tmp_path, monkeypatch):
    """CIFAR-10's files in torchvision's layout and format (pickled batches of 3072 bytes per
    image, channel planes of 32 x 32; batches.meta), tiny: torchvision's table of MD5s is given
    these files' own, as it holds the real files'."""
    import hashlib
    import pickle

    import numpy as np
    import torchvision

    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {f"data_batch_{i}": 6 for i in range(1, 6)} | {"test_batch": 8}
    written = {}
    for batch, n in batches.items():
        images = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        with open(folder / batch, "wb") as f:
            pickle.dump({"batch_label": batch, "labels": labels, "data": images,
                         "filenames": [f"{batch}_{i}.png" for i in range(n)]}, f)
        written[batch] = (images.reshape(n, 3, 32, 32), labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog",
                                     "frog", "horse", "ship", "truck"],
                     "num_cases_per_batch": 6, "num_vis": 3072}, f)

    def md5(name: str) -> str:
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    cifar = torchvision.datasets.CIFAR10
    monkeypatch.setattr(cifar, "train_list", [[n, md5(n)] for n in batches if n != "test_batch"])
    monkeypatch.setattr(cifar, "test_list", [["test_batch", md5("test_batch")]])
    monkeypatch.setattr(cifar, "meta", {**cifar.meta, "md5": md5("batches.meta")})
    data = load_data(DataSection(dataset="cifar10", root=str(tmp_path), download=False))
    train_x = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_y = sum((written[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert tuple(data.train_x.shape) == (30, 3, 32, 32) and data.train_x.dtype == torch.uint8
    assert torch.equal(data.train_x, torch.from_numpy(train_x)), "N x C x H x W, batches in order"
    assert data.train_y.tolist() == train_y
    assert torch.equal(data.test_x, torch.from_numpy(written["test_batch"][0]))
    assert data.test_y.tolist() == written["test_batch"][1]
    assert data.augmentable and data.mean.tolist() == pytest.approx([0.4914, 0.4822, 0.4465])


# --- an image folder (data.dataset: folder) ---------------------------------------------------------

def test_an_image_folder_is_read_resized_and_labelled_by_its_class_folders(tmp_path):
    from image_folder import CLASSES, make_image_folder

    from lthkit.config.catalog import input_shape, num_classes

    root = make_image_folder(tmp_path / "images", {"train": 10, "test": 4})
    spec = DataSection(dataset="folder", root=str(root), image_size=16)
    data = load_data(spec)
    assert tuple(data.train_x.shape) == (30, 3, 16, 16) and tuple(data.test_x.shape) == (12, 3, 16, 16)
    assert data.train_y.tolist() == [c for c in range(len(CLASSES)) for _ in range(10)]
    assert num_classes(spec.name) == 3 and input_shape(spec.name) == (3, 16, 16)
    assert data.augmentable and 0 < float(data.mean.min()) < 1


def test_a_folder_that_is_not_an_image_folder_is_refused_naming_the_key(tmp_path):
    from lthkit.config.base import ParamsError
    from lthkit.config.params import params_from_dict

    (tmp_path / "empty").mkdir()
    with pytest.raises(ParamsError, match=r"data.root: .*empty is not an image folder"):
        params_from_dict({"data": {"dataset": "folder", "root": str(tmp_path / "empty")}},
                         source="f.yaml")


def test_test_classes_must_be_the_training_classes(tmp_path):
    from image_folder import make_image_folder

    root = make_image_folder(tmp_path / "images", {"train": 2, "test": 2})
    (root / "test" / "square").rename(root / "test" / "cube")
    with pytest.raises(DatasetMissingError, match="give both the same class folders"):
        load_data(DataSection(dataset="folder", root=str(root)))


def test_a_network_and_the_checks_take_the_folders_classes_and_size(tmp_path):
    from image_folder import make_image_folder

    from lthkit.config.params import params_from_dict
    from lthkit.nets.models import model_from

    root = make_image_folder(tmp_path / "images", {"train": 20, "test": 4})
    p = params_from_dict({"data": {"dataset": "folder", "root": str(root), "image_size": 24},
                          "model": {"arch": "resnet", "width": 4},
                          "train": {"epochs": 2, "batch_size": 10, "milestones": []},
                          "imp": {"levels": 2, "rewind_iteration": 6}}, source="f.yaml")
    model = model_from(p.model, p.data.name)
    assert model(torch.randn(2, 3, 24, 24)).shape == (2, 3)
    from lthkit.config.base import ParamsError

    with pytest.raises(ParamsError, match="imp.rewind_iteration: 12 is not before the end"):
        params_from_dict({"data": {"dataset": "folder", "root": str(root)},
                          "train": {"epochs": 2, "batch_size": 10, "milestones": []},
                          "imp": {"levels": 2, "rewind_iteration": 12}}, source="f.yaml")


def test_cifar100_and_svhn_are_read_in_their_layouts(tmp_path, monkeypatch):
    """torchvision's own readers on files of its layouts (MD5 checks off: the files are ours):
    CIFAR-100's channels-last pickles and SVHN's channels-first .mat become N x C x H x W."""
    import pickle

    import numpy as np
    import scipy.io
    import torchvision.datasets.cifar
    import torchvision.datasets.svhn

    for module in (torchvision.datasets.cifar, torchvision.datasets.svhn):
        monkeypatch.setattr(module, "check_integrity", lambda *args, **kwargs: True)
    rng = np.random.default_rng(0)
    cifar = tmp_path / "cifar100" / "cifar-100-python"
    cifar.mkdir(parents=True)
    images = {}
    for split, n in (("train", 12), ("test", 5)):
        images[split] = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        with open(cifar / split, "wb") as f:
            pickle.dump({"data": images[split].reshape(n, -1),
                         "fine_labels": list(range(90, 90 + n))}, f)
    with open(cifar / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)]}, f)
    data = load_data(DataSection(dataset="cifar100", root=str(tmp_path), download=False))
    assert torch.equal(data.train_x, torch.from_numpy(images["train"])) and data.augmentable
    assert data.test_y.tolist() == [90, 91, 92, 93, 94]

    svhn = tmp_path / "svhn"
    svhn.mkdir()
    digits = {}
    for split, n in (("train", 7), ("test", 4)):
        digits[split] = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        scipy.io.savemat(svhn / f"{split}_32x32.mat",
                         {"X": digits[split].transpose(2, 3, 1, 0),  # SVHN's H x W x C x N
                          "y": np.array([10, *range(1, n)]).reshape(-1, 1)})  # 10 is digit 0
    data = load_data(DataSection(dataset="svhn", root=str(tmp_path), download=False))
    assert torch.equal(data.train_x, torch.from_numpy(digits["train"])) and not data.augmentable
    assert data.test_y.tolist() == [0, 1, 2, 3] and data.mean.shape == (3,)


def test_an_unreadable_image_in_a_folder_is_named(tmp_path):
    from image_folder import make_image_folder

    root = make_image_folder(tmp_path / "images", {"train": 2, "test": 2})
    broken = root / "train" / "circle" / "1.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(DatasetMissingError, match=f"{broken} cannot be read as an image"):
        load_data(DataSection(dataset="folder", root=str(root)))


def test_a_stand_in_has_any_datasets_shape_and_classes(tmp_path):
    """What the time projection trains and evaluates on (benchmarks/paper_time.py): CIFAR-100's
    100 classes, an image folder's size and class folders, the papers' stand-ins unchanged."""
    from image_folder import CLASSES, make_image_folder

    from lthkit.config.catalog import folder_name
    from lthkit.data.synthetic import stand_in

    cifar100 = stand_in("cifar100", 1000, 10)
    assert tuple(cifar100.train_x.shape) == (1000, 3, 32, 32) and cifar100.name == "cifar100"
    assert set(cifar100.train_y.tolist()) == set(range(100))
    name = folder_name(make_image_folder(tmp_path / "images", {"train": 1, "test": 1}), 24)
    folder = stand_in(name, 30, 6)
    assert tuple(folder.test_x.shape) == (6, 3, 24, 24) and folder.name == name
    assert set(folder.train_y.tolist()) == set(range(len(CLASSES)))
    paper = load_data(DataSection(dataset="synthetic_cifar10", train_size=50, test_size=10))
    assert torch.equal(stand_in("cifar10", 50, 10).train_x, paper.train_x)


# --- data.normalization (issue 33, item 3) -------------------------------------------------------

@pytest.mark.parametrize("normalization, mean, std", [
    ("imagenet", [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ("none", [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]),
    ({"mean": [0.5, 0.25, 0], "std": [0.5, 2, 1]}, [0.5, 0.25, 0.0], [0.5, 2.0, 1.0]),
])
def test_normalization_standardizes_by_the_statistics_it_names(normalization, mean, std):
    spec = dict(dataset="synthetic_cifar10", train_size=8, test_size=4)
    own = load_data(DataSection(**spec))
    data = load_data(DataSection(**spec, normalization=normalization))
    assert torch.equal(data.train_x, own.train_x), "the same images, other statistics"
    assert data.mean.tolist() == pytest.approx(mean) and data.std.tolist() == pytest.approx(std)
    x = data.train_x[:2]
    expected = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(
        std).view(1, 3, 1, 1)
    assert torch.allclose(data.normalize(x), expected, atol=1e-6)


def test_the_default_normalization_is_the_datasets_own(tmp_path):
    """`dataset` (the default) changes nothing: the published statistics of a torchvision
    dataset, the measured ones of a stand-in."""
    default = DataSection(dataset="synthetic_cifar10", train_size=8, test_size=4)
    assert default.normalization == "dataset" and default.normalization_stats() is None
    from lthkit.data.images import channel_stats

    data = load_data(default)
    assert torch.equal(torch.stack(channel_stats(data.train_x)), torch.stack((data.mean,
                                                                              data.std)))
    assert "its own per-channel statistics" in default.describe()


@pytest.mark.parametrize("raw, message", [
    ({"normalization": "imagenet", "dataset": "synthetic_mnist"},
     "data.normalization: imagenet has 3 values per statistic, synthetic_mnist's images 1"),
    ({"normalization": "cifar"}, "data.normalization: 'cifar' is not a normalization: give "
                                 "dataset, imagenet, none or {mean: [...], std: [...]}"),
    ({"normalization": {"mean": [0.5] * 3, "std": [1, 0, 1]}},
     "data.normalization.std: (1.0, 0.0, 1.0): every std must be > 0"),
    ({"normalization": {"mean": [0.5] * 3, "std": [1, 1]}},
     "data.normalization.std: 2 values for 3 means"),
])
def test_a_normalization_that_does_not_fit_is_refused_naming_the_key(raw, message):
    from lthkit.config import ParamsError
    from lthkit.config.params import params_from_dict

    data = {"dataset": "synthetic_cifar10", **raw}
    model = {"arch": "mlp"} if data["dataset"].endswith("mnist") else {}
    with pytest.raises(ParamsError) as e:
        params_from_dict({"data": data, "model": model}, source="p.yaml")
    assert str(e.value).startswith(f"p.yaml: {message}"), str(e.value)


# --- an image folder checked when the parameter file is (lthkit-params check) ------------------------

def _no_square_images(root):
    for path in (root / "train" / "square").iterdir():
        path.unlink()


def _one_class(root):
    import shutil

    for split in ("train", "test"):
        for name in ("square", "stripes"):
            shutil.rmtree(root / split / name)


def _half_a_png(root):
    path = root / "test" / "stripes" / "1.png"
    path.write_bytes(path.read_bytes()[:40])


@pytest.mark.parametrize("damage, message", [
    (_one_class, "train holds 1 class folder(s) (circle): a classifier needs two classes"),
    (_no_square_images, "train/square holds no images"),
    (lambda root: (root / "test" / "square").rename(root / "test" / "cube"),
     "give both the same class folders"),
    (lambda root: (root / "train" / "circle" / "1.png").write_bytes(b"not a png"),
     "train/circle/1.png cannot be read as an image"),
    (_half_a_png, "test/stripes/1.png cannot be read as an image"),
], ids=["one class", "empty class", "other test classes", "not an image", "truncated"])
def test_an_image_folder_a_run_cannot_use_is_told_when_the_file_is_checked(
        tmp_path, capsys, damage, message):
    import yaml
    from image_folder import make_image_folder

    from lthkit.config.cli import main

    root = make_image_folder(tmp_path / "images", {"train": 2, "test": 2})
    path = tmp_path / "folder.yaml"
    path.write_text(yaml.safe_dump({"data": {"dataset": "folder", "root": str(root),
                                             "image_size": 16},
                                    "train": {"epochs": 2, "batch_size": 2, "milestones": []},
                                    "imp": {"levels": 1, "rewind_iteration": 1}}))
    assert main(["check", str(path)]) == 0
    capsys.readouterr()
    damage(root)
    from lthkit.config.catalog import folder_classes

    folder_classes.cache_clear()  # the listing the check read before the damage
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}: data.root: ") and message in err, err
    assert "\n" not in err and "Traceback" not in err
