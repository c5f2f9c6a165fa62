"""Networks beyond the papers' (issue 25): ResNets, VGGs and WideResNets of other depths, any
torchvision classification network, a user's factory; what is prunable; and the networks the kit
refuses before anything is trained."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lthkit.analysis import hessian as hs
from lthkit.config.base import ParamsError
from lthkit.config.params import params_from_dict
from lthkit.config.training import DataSection, ModelSection, TrainSection
from lthkit.data import load_data
from lthkit.nets.checks import check_network
from lthkit.nets.models import NetworkError, build_model, model_from, prunable_names
from lthkit.nets.points import ParamLayout
from lthkit.nets.pruning import full_mask, random_prune
from lthkit.train.context import check_foreign_network
from lthkit.train.training import train

DATASET = "synthetic_cifar10"

# (arch, depth, width): small enough for 2 CPU cores, each of a kind
NETWORKS = [("resnet", 32, 2), ("vgg", 11, 8), ("vgg", 19, 4), ("wrn", 10, 1),
            ("torchvision:resnet18", None, None), ("tests.factories:tiny_cnn", None, 4)]


def _spec(arch, depth, width, **kw) -> ModelSection:
    return ModelSection(arch=arch, depth=depth, width=width, **kw)


def _params(model: dict, **sections):
    raw = {"run": {"name": "networks"}, "data": {"dataset": DATASET, "train_size": 64,
                                                 "test_size": 32},
           "train": {"epochs": 2, "batch_size": 16, "milestones": []},
           "imp": {"levels": 2, "rewind_iteration": 1}, "model": model, **sections}
    return params_from_dict(raw, source="test.yaml")


@pytest.mark.parametrize("depth", [20, 32, 56, 110])
def test_a_resnet_of_depth_6n_plus_2_has_n_blocks_per_stage(depth):
    model = model_from(_spec("resnet", depth, 4), DATASET)
    assert len(model.blocks) == 3 * (depth - 2) // 6
    # depth - 1 convolutions (the stem, 2 per block), 2 shortcuts where the width doubles, the
    # classifier: every one prunable
    assert len(prunable_names(model)) == (depth - 1) + 2 + 1


def test_resnet_of_depth_20_is_the_papers_resnet20_weight_for_weight():
    a = build_model("resnet20", 4, DATASET, seed=3)
    b = model_from(_spec("resnet", 20, 4), DATASET, seed=3)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("depth, convs", [(11, 8), (13, 10), (16, 13), (19, 16)])
def test_vgg_depths_have_their_convolutions(depth, convs):
    model = model_from(_spec("vgg", depth, 8), DATASET)
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == convs
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_wideresnet_widens_by_k():
    narrow, wide = (model_from(_spec("wrn", 16, k), DATASET) for k in (1, 4))
    assert wide.fc.in_features == 4 * narrow.fc.in_features == 256
    assert len(narrow.blocks) == 6  # (16 - 4) / 6 = 2 blocks per stage


@pytest.mark.parametrize("arch, depth", [("resnet", 21), ("vgg", 12), ("wrn", 17),
                                         ("resnet20", 32)])
def test_a_depth_the_network_does_not_have_is_refused_naming_the_key(arch, depth):
    with pytest.raises(ParamsError, match="model.depth"):
        _params({"arch": arch, "depth": depth})


def test_networks_are_seeded_and_torchvision_and_user_networks_too():
    for arch, depth, width in NETWORKS:
        a, b, c = (model_from(_spec(arch, depth, width), DATASET, seed=s) for s in (0, 0, 1))
        first = next(iter(a.state_dict()))
        assert torch.equal(a.state_dict()[first], b.state_dict()[first]), arch
        assert not torch.equal(a.state_dict()[first], c.state_dict()[first]), arch


@pytest.mark.parametrize("arch, depth, width", NETWORKS)
def test_masked_weights_stay_zero_through_training(arch, depth, width):
    data = load_data(DataSection(dataset=DATASET, train_size=32, test_size=16))
    model = model_from(_spec(arch, depth, width), DATASET, seed=0)
    mask = random_prune(full_mask(model), fraction=0.5, generator=torch.Generator().manual_seed(0))
    cfg = TrainSection(epochs=1, batch_size=16, lr=0.05, milestones=[], eval_every=1)
    train(model, data, cfg, seed=0, tag="t", mask=mask, progress=False)  # 2 steps
    params = dict(model.named_parameters())
    for n, m in mask.items():
        assert torch.count_nonzero(params[n][~m]) == 0, n
        assert torch.count_nonzero(params[n][m]) > 0


@pytest.mark.parametrize("arch, depth, width", NETWORKS)
def test_hessian_products_match_double_backward_in_the_masks_subspace(arch, depth, width):
    torch.manual_seed(0)
    model = model_from(_spec(arch, depth, width), DATASET, seed=0).eval()
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    layout = ParamLayout.from_model(model)
    point = layout.flatten(model.state_dict())
    mask = random_prune(full_mask(model), fraction=0.5, generator=torch.Generator().manual_seed(1))
    m = layout.mask_vector(mask)
    buffers = {n: b for n, b in model.named_buffers()}
    op = hs.HessianOperator(model, point, x, y, buffers=buffers, mask=m, batch_size=4,
                            mode="forward_over_reverse")

    def loss_of(vector):
        state = {**layout.unflatten(vector), **buffers}
        return nn.functional.cross_entropy(torch.func.functional_call(model, state, (x,)), y)

    for seed in range(2):
        v = torch.randn(op.size, generator=torch.Generator().manual_seed(seed))
        w = point.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(loss_of(w), w, create_graph=True)
        (hv,) = torch.autograd.grad(g @ (m * v), w)
        expected = m * hv
        got = op(v)
        assert torch.linalg.norm(got - expected) <= 1e-4 * torch.linalg.norm(expected), arch
        assert torch.all(got[m == 0] == 0), "nothing leaks out of the mask's subspace"


def test_prunable_patterns_choose_what_imp_prunes():
    model = model_from(_spec("resnet", 20, 4, not_prunable=["fc.weight", "conv.weight"]), DATASET)
    names = prunable_names(model)
    assert "fc.weight" not in names and "conv.weight" not in names
    assert names == [n for n in prunable_names(build_model("resnet20", 4, DATASET))
                     if n not in ("fc.weight", "conv.weight")]
    only = model_from(_spec("resnet", 20, 4, prunable=["blocks.*.conv?.weight"]), DATASET)
    assert prunable_names(only) == [n for n, _ in only.named_parameters()
                                    if n.startswith("blocks.") and ".conv" in n]
    assert set(full_mask(only)) == set(prunable_names(only))
    assert ParamLayout.from_model(only).prunable == frozenset(prunable_names(only))


@pytest.mark.parametrize("key, pattern", [("prunable", ["blocks.*.conv9.weight"]),
                                          ("not_prunable", ["head.weight"])])
def test_a_pattern_that_matches_nothing_is_refused_naming_the_key(key, pattern):
    with pytest.raises(ParamsError, match=f"model.{key}: .*matches no parameter"):
        _params({"arch": "resnet", "width": 4, key: pattern})


@pytest.mark.parametrize("arch, message", [
    ("torchvision:no_such_net", "model.arch: torchvision cannot build"),
    ("no_such_package:factory", "model.arch: cannot import 'no_such_package'"),
    ("tests.factories:missing", "has no function 'missing'"),
    ("tests.factories:not_a_module", "returned a dict, not an nn.Module"),
])
def test_a_network_that_cannot_be_built_is_refused_when_the_file_is_read(arch, message):
    with pytest.raises(ParamsError, match=message):
        _params({"arch": arch})


@pytest.mark.parametrize("arch, hvp, message", [
    ("tests.factories:with_running_scale", "double_backward",
     r"1 \(_RunningScale\) keeps running statistics \['running_scale'\]"),
    ("tests.factories:without_forward_mode", "forward_over_reverse",
     r"1 \(_CustomRelu\) has no forward-mode differentiation.*set hessian.hvp: double_backward"),
])
def test_a_network_the_analyses_cannot_use_is_refused_before_training(tmp_path, arch, hvp,
                                                                      message):
    p = _params({"arch": arch}, hessian={"hvp": hvp},
                run={"name": "refused", "output_root": str(tmp_path)})
    with pytest.raises(NetworkError, match=message):
        check_foreign_network(p, torch.device("cpu"))
    from lthkit.train.context import open_run

    with pytest.raises(NetworkError):
        open_run(p, create=True)
    assert not (tmp_path / "refused").exists(), "nothing is written for a refused network"


def test_the_same_network_with_double_backward_is_accepted():
    p = _params({"arch": "tests.factories:without_forward_mode"},
                hessian={"hvp": "double_backward"})
    check_foreign_network(p, torch.device("cpu"))


def test_fused_points_are_checked_where_the_run_fuses_them():
    x, y = torch.randn(2, 3, 32, 32), torch.randint(0, 10, (2,))
    model = model_from(_spec("tests.factories:tiny_cnn", None, 4), DATASET).eval()
    check_network(model, x, y, hvp="double_backward", fused_points=True, name="tiny")
    # an autograd.Function without vmap rules: twice differentiable, but not fusable
    custom = model_from(_spec("tests.factories:without_forward_mode", None, None), DATASET)
    check_network(custom, x, y, hvp="double_backward", fused_points=False, name="custom")
    with pytest.raises(NetworkError, match=r"custom cannot be analysed: 1 \(_CustomRelu\) has no "
                                           r"vmap over points .*; set analysis.vmap: no"):
        check_network(custom, x, y, hvp="double_backward", fused_points=True, name="custom")


def test_foreign_networks_are_not_fused_for_baselines():
    with pytest.raises(ParamsError, match="baselines.group_size"):
        _params({"arch": "torchvision:resnet18"}, baselines={"group_size": 2})
    assert _params({"arch": "torchvision:resnet18"}).model.kit_network is False


@pytest.mark.parametrize("dataset, arch, shape", [
    ("synthetic_cifar100", "resnet", (3, 32, 32)), ("synthetic_svhn", "vgg", (3, 32, 32)),
    ("synthetic_fashion_mnist", "wrn", (1, 28, 28)),
    ("synthetic_fashion_mnist", "tests.factories:tiny_cnn", (1, 28, 28))])
def test_networks_take_the_datasets_shape_and_classes(dataset, arch, shape):
    from lthkit.config.catalog import num_classes

    model = model_from(_spec(arch, None, 4 if arch != "wrn" else 1), dataset, seed=0)
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, num_classes(dataset))


def test_a_network_expecting_colour_is_refused_on_grey_images():
    with pytest.raises(ParamsError, match="3-channel images"):
        _params({"arch": "torchvision:resnet18"}, data={"dataset": "synthetic_fashion_mnist"})
    with pytest.raises(ParamsError, match="expects CIFAR-shaped data"):
        _params({"arch": "vgg", "depth": 11}, data={"dataset": "synthetic_fashion_mnist"})


def test_a_torchvision_network_without_forward_mode_rules_is_refused_naming_its_layer():
    p = _params({"arch": "torchvision:mobilenet_v3_small"}, hessian={"hvp": "forward_over_reverse"})
    with pytest.raises(NetworkError, match=r"features\.0\.2 \(Hardswish\) has no forward-mode.*"
                                           r"set hessian.hvp: double_backward"):
        check_foreign_network(p, torch.device("cpu"))


def test_patterns_that_leave_nothing_to_prune_are_refused_naming_the_key():
    with pytest.raises(ParamsError, match=r"model.prunable: with model.not_prunable, it leaves "
                                          r"resnet20 with no parameter to prune"):
        _params({"arch": "resnet", "width": 4, "prunable": ["fc.weight"],
                 "not_prunable": ["fc.weight"]})


# --- the network tried on a stand-in batch when the file is checked (lthkit-params check) ----------

def _check(tmp_path, model: dict, capsys) -> str:
    """`lthkit-params check` on a file with `model` on CIFAR-10's stand-in: its one error line."""
    import yaml

    from lthkit.config.cli import main

    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump({"data": {"dataset": DATASET}, "model": model,
                                    "imp": {"levels": 2}}))
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and err.startswith(f"error: {path}: ")
    return err


@pytest.mark.parametrize("arch, message", [
    ("tests.factories:raises", r"model.arch: tests.factories:raises\(num_classes=10\) raised "
                               r"RuntimeError: the factory's own bug"),
    ("tests.factories:thirteen_outputs", r"model.arch: .* gives outputs of shape \(13,\) per "
                                         r"image, the dataset has 10 classes"),
    ("tests.factories:grey_only", r"model.arch: .* cannot take the dataset's images \(3 x 32 x "
                                  r"32, .*expected input\[2, 3, 32, 32\] to have 1 channels"),
    ("torchvision:vit_b_16", r"model.arch: .* cannot take the dataset's images \(3 x 32 x 32, "
                             r".*Wrong image height! Expected 224 but got 32"),
    ("tests.factories:nothing_prunable", r"model.prunable: .* has no convolution or linear "
                                         r"layer.*its parameters: scale"),
])
def test_a_network_that_cannot_run_is_told_in_one_line_when_the_file_is_checked(
        tmp_path, capsys, arch, message):
    import re

    err = _check(tmp_path, {"arch": arch}, capsys)
    assert re.search(message, err), err
    assert "imp.levels" not in err and "double backward" not in err


def test_a_network_that_cannot_take_the_images_is_told_so_before_training(tmp_path):
    """Not as a layer without double backward (the wrong diagnosis and fix)."""
    from lthkit.train.context import open_run

    p = _params({"arch": "tests.factories:grey_only"},
                run={"name": "grey", "output_root": str(tmp_path)})
    with pytest.raises(NetworkError, match="cannot take the dataset's images") as info:
        open_run(p, create=True)
    assert "double backward" not in str(info.value)
    assert not (tmp_path / "grey").exists()
