"""A dataset is one registry entry, a network one record and one builder (issue 36), and
validating parameters does not depend on what was imported before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import lthkit
from lthkit.config.architectures import (ArchitectureSpec, register_architecture,
                                         unregister_architecture)
from lthkit.config.base import ParamsError
from lthkit.config.catalog import prunable_sizes
from lthkit.config.datasets import (DatasetSpec, dataset_spec, register_dataset,
                                    registered_datasets, unregister_dataset)
from lthkit.config.params import params_from_dict
from lthkit.data import load_data
from lthkit.nets import models
from lthkit.nets.models import build_model, model_from, prunable_names, register_network
from lthkit.train.training import train

ROOT = Path(__file__).resolve().parents[1]

# Validates params/smoke.yaml and a parameter set whose level checks need the network's prunable
# sizes (layerwise: the smallest layer decides), with `config` the lthkit.config package.
_CHECKS = """
smoke = config.load_params("params/smoke.yaml")
raw = {"data": {"dataset": "synthetic_mnist", "train_size": 256}, "model": {"arch": "lenet5"},
       "train": {"epochs": 2, "batch_size": 64, "milestones": []},
       "imp": {"levels": 8, "prune_fraction": 0.5, "rewind_iteration": 0}}
fits = config.params_from_dict(raw, "fits.yaml")
try:
    config.params_from_dict({**raw, "imp": {**raw["imp"], "scope": "layerwise"}}, "layer.yaml")
    refused = None
except config.ParamsError as e:
    refused = str(e)
result = {"smoke": smoke.digest(), "fits": fits.digest(), "refused": refused}
"""

# The checks in a fresh interpreter that imports lthkit.config alone: lthkit/__init__ (which
# imports every package, the networks among them) is kept out by a bare package module.
_CONFIG_ONLY = """
import importlib.util, json, sys, types
found = importlib.util.find_spec("lthkit")
root = types.ModuleType("lthkit")
root.__path__ = list(found.submodule_search_locations)
sys.modules["lthkit"] = root
import lthkit.config as config
nets_before = "lthkit.nets.models" in sys.modules
""" + _CHECKS + """
print(json.dumps({**result, "nets_before": nets_before}))
"""


def test_validation_needs_nothing_imported_before_lthkit_config():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _CONFIG_ONLY], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    alone = json.loads(out.stdout.strip().splitlines()[-1])
    assert alone.pop("nets_before") is False
    assert alone["refused"] and "layer.yaml: imp.levels" in alone["refused"]
    after_import_lthkit = {"config": lthkit.config}
    exec(_CHECKS, after_import_lthkit)  # this process imported lthkit (conftest, the imports)
    assert alone == after_import_lthkit["result"]


# --- a dataset added through the registry alone ----------------------------------------------

TOY = DatasetSpec("toy12", shape=(1, 12, 12), classes=3, split_sizes=(300, 100))


@pytest.fixture
def toy_dataset():
    register_dataset(TOY)
    yield TOY
    unregister_dataset(TOY.name)


def _toy_params(dataset: str, source: str = "toy.yaml", imp: dict | None = None, **model):
    raw = {"run": {"name": "toy"}, "data": {"dataset": dataset, "train_size": 96, "test_size": 48},
           "model": {"arch": "mlp", "width": 12, **model},
           "train": {"epochs": 2, "batch_size": 32, "lr": 0.05, "milestones": []},
           "imp": imp or {"levels": 2, "rewind_iteration": 1}}
    return params_from_dict(raw, source=source)


def test_a_registered_dataset_validates_loads_and_trains(toy_dataset):
    params = _toy_params("synthetic_toy12")
    assert prunable_sizes(params.model, params.data.name) == [144 * 12, 12 * 4, 4 * 3]
    data = load_data(params.data, seed=0)
    assert data.train_x.shape == (96, 1, 12, 12) and data.test_x.shape == (48, 1, 12, 12)
    assert set(data.train_y.tolist()) == {0, 1, 2} and not data.augmentable
    model = model_from(params.model, params.data.name, seed=0)
    history = train(model, data, params.train, seed=0, tag="toy", progress=False)
    assert len(history) == 2 and model(data.test_x[:5].float()).shape == (5, 3)


def test_a_registered_dataset_is_refused_where_its_kind_is(toy_dataset):
    with pytest.raises(ParamsError, match=r"toy.yaml: model.arch: resnet20 expects CIFAR-shaped"):
        _toy_params("synthetic_toy12", arch="resnet20", width=2)


def test_an_unknown_dataset_names_the_key_the_file_and_the_registered_names(toy_dataset):
    with pytest.raises(ParamsError) as e:
        _toy_params("toy12", source="mine.yaml")  # no torchvision class: its stand-in only
    said = str(e.value)
    assert said.startswith("mine.yaml: data.dataset: Input should be 'cifar10', ")
    assert "'synthetic_toy12' or 'folder' (got 'toy12')" in said
    unregister_dataset(TOY.name)
    with pytest.raises(ParamsError, match=r"mine.yaml: data.dataset: .*\(got 'synthetic_toy12'\)"):
        _toy_params("synthetic_toy12", source="mine.yaml")


def test_a_dataset_name_is_registered_once(toy_dataset):
    with pytest.raises(ValueError, match="registered already"):
        register_dataset(TOY)
    with pytest.raises(ValueError, match="statistics"):
        register_dataset(DatasetSpec("toy_rgb", (3, 8, 8), 2, (10, 10), mean=(0.5,), std=(0.2,)))


def test_the_registered_checksums_are_torchvisions():
    """The MD5 sums the kit names a damaged file by are those torchvision checks."""
    tvd = pytest.importorskip("torchvision.datasets")
    for spec in registered_datasets():
        cls = getattr(tvd, spec.torchvision)
        if hasattr(cls, "split_list"):  # SVHN
            known = {file: md5 for _, file, md5 in cls.split_list.values()}
        elif hasattr(cls, "train_list"):  # CIFAR
            known = dict(cls.train_list + cls.test_list)
            known[cls.meta["filename"]] = cls.meta["md5"]
        else:  # MNIST's are of the archives, not of the files read
            known = {}
        assert dict(spec.checksums) == known, spec.name


def test_the_kit_datasets_keep_their_facts():
    """What the parameter checks and the stand-ins read: unchanged by the registry."""
    facts = {s.name: (s.shape, s.classes, s.split_sizes, s.augmentable, s.stream)
             for s in registered_datasets()}
    assert facts == {
        "cifar10": ((3, 32, 32), 10, (50_000, 10_000), True, ()),
        "mnist": ((1, 28, 28), 10, (60_000, 10_000), False, ()),
        "cifar100": ((3, 32, 32), 100, (50_000, 10_000), True, ("cifar100",)),
        "svhn": ((3, 32, 32), 10, (73_257, 26_032), False, ("svhn",)),
        "fashion_mnist": ((1, 28, 28), 10, (60_000, 10_000), False, ("fashion_mnist",))}
    assert dataset_spec("synthetic_svhn").name == "svhn"


# --- a network added through its record and its builder ----------------------------------------

class _Toy(nn.Module):
    def __init__(self, width: int, in_features: int, classes: int):
        super().__init__()
        self.hidden = nn.Linear(in_features, width)
        self.out = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(torch.flatten(x, 1))))


@pytest.fixture
def toy_network():
    register_architecture(ArchitectureSpec("toynet", default_width=5))
    register_network("toynet")(lambda w, depth, c, size, k: _Toy(w, c * size * size, k))
    yield "toynet"
    unregister_architecture("toynet")
    models._BUILDERS.pop("toynet", None)


def test_a_registered_network_validates_and_builds(toy_network):
    params = _toy_params("synthetic_mnist", arch="toynet", width=None)
    assert params.model.kit_network and params.model.network == "toynet"
    model = model_from(params.model, params.data.name, seed=0)
    assert isinstance(model, _Toy) and model.hidden.out_features == 5
    assert torch.count_nonzero(model.hidden.bias) == 0  # the kit's own init: zero biases
    assert prunable_names(model) == ["hidden.weight", "out.weight"]
    assert prunable_sizes(params.model, params.data.name) == [784 * 5, 5 * 10]
    with pytest.raises(ParamsError, match=r"toy.yaml: imp.levels: 12 levels of 50% leave the "
                                          r"smallest layer \(50 weights\)"):
        _toy_params("synthetic_mnist", arch="toynet", width=None,
                    imp={"levels": 12, "prune_fraction": 0.5, "scope": "layerwise",
                         "rewind_iteration": 1})


def test_a_registered_network_is_refused_once_unregistered(toy_network):
    unregister_architecture("toynet")
    with pytest.raises(ParamsError, match=r"toy.yaml: model.arch: String should match pattern "
                                          r"'\^\(resnet20\|vgg16\|.*\(got 'toynet'\)"):
        _toy_params("synthetic_mnist", arch="toynet")


def test_a_network_without_a_builder_says_how_to_register_one(toy_network):
    models._BUILDERS.pop("toynet", None)
    with pytest.raises(ParamsError, match=r"model.arch: toynet has no builder: register one with "
                                          r"lthkit.nets.models.register_network\('toynet'\)"):
        _toy_params("synthetic_mnist", arch="toynet")


def test_the_kit_networks_build_as_before():
    """Each family's network at its depth is the network of that name (resnet20 is ResNet of
    depth 20), and the default widths are the papers'."""
    assert dict(models.DEFAULT_WIDTH) == {"resnet20": 16, "vgg16": 64, "mlp": 300, "lenet5": 6,
                                          "resnet": 16, "vgg": 64, "wrn": 4}
    with torch.device("meta"):
        resnet = build_model("resnet56", None, "cifar10")
        vgg = build_model("vgg11", 8, "cifar10")
        wrn = build_model("wrn16", 1, "cifar10")
    assert len(resnet.blocks) == 27 and resnet.conv.out_channels == 16
    assert isinstance(vgg, models.VGGCifar) and isinstance(wrn, models.WideResNet)
