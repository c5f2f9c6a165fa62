"""Masks: exact counts, the global ranking, nesting, random pruning, and dead weights stay dead."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lthkit.config.training import DataSection, TrainSection
from lthkit.data.load import load_data
from lthkit.nets.models import build_model, prunable_names, prunable_sizes
from lthkit.nets.pruning import (apply_mask, count_alive, count_total, full_mask, hamming_distance,
                                 is_nested, keep_counts, magnitude_prune, masked_state, prune_count,
                                 random_prune, sparsity)
from lthkit.train.training import train


def _toy_weights() -> dict[str, torch.Tensor]:
    return {"a.weight": torch.tensor([[0.5, -0.1], [3.0, -2.0]]),
            "b.weight": torch.tensor([0.05, -0.7, 0.2, 1.5, -0.01])}


def _full(weights):
    return {k: torch.ones_like(v, dtype=torch.bool) for k, v in weights.items()}


def test_global_ranking_prunes_the_smallest_magnitudes_across_layers():
    w = _toy_weights()
    mask = magnitude_prune(w, _full(w), fraction=3 / 9)
    # the three smallest |w| overall: 0.01 (b), 0.05 (b), 0.1 (a)
    assert mask["a.weight"].tolist() == [[True, False], [True, True]]
    assert mask["b.weight"].tolist() == [False, True, True, True, False]


def test_layerwise_ranking_prunes_each_layer_alone():
    w = _toy_weights()
    mask = magnitude_prune(w, _full(w), fraction=0.5, scope="layerwise")
    assert mask["a.weight"].tolist() == [[False, False], [True, True]]  # round(0.5*4) = 2
    assert mask["b.weight"].tolist() == [False, True, False, True, False]  # 2.5 rounds up to 3
    assert count_alive({"b": mask["b.weight"]}) == 5 - prune_count(5, 0.5)


def test_negative_weights_are_ranked_by_magnitude_not_value():
    w = {"w": torch.tensor([-5.0, -4.0, 0.1, 0.2])}
    mask = magnitude_prune(w, _full(w), fraction=0.5)
    assert mask["w"].tolist() == [True, True, False, False]


def test_ties_do_not_prune_more_than_asked():
    w = {"w": torch.zeros(10)}
    mask = magnitude_prune(w, _full(w), fraction=0.3)
    assert count_alive(mask) == 7


def test_band_pruning_skips_the_smallest():
    w = {"w": torch.arange(1.0, 11.0)}
    mask = magnitude_prune(w, _full(w), fraction=0.2, band_offset=0.2)
    assert (~mask["w"]).nonzero().flatten().tolist() == [2, 3]  # ranks 2..3, not 0..1


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_exact_counts_and_nesting_over_many_levels(scope):
    model = build_model("resnet20", 4, "synthetic_cifar10", seed=0)
    mask = full_mask(model)
    state = dict(model.named_parameters())
    g = torch.Generator().manual_seed(0)
    for level in range(1, 8):
        alive_before = {n: int(m.sum()) for n, m in mask.items()}
        weights = {n: torch.randn(state[n].shape, generator=g) for n in mask}
        new = magnitude_prune(weights, mask, fraction=0.2, scope=scope)
        assert is_nested(new, mask)
        if scope == "global":
            assert count_alive(new) == sum(alive_before.values()) - prune_count(
                sum(alive_before.values()), 0.2)
        else:
            for n in mask:
                assert int(new[n].sum()) == alive_before[n] - prune_count(alive_before[n], 0.2)
        # the survivors are exactly the largest alive magnitudes (global: across all layers)
        if scope == "global":
            kept = torch.cat([weights[n].abs()[new[n]] for n in mask])
            dropped = torch.cat([weights[n].abs()[mask[n] & ~new[n]] for n in mask])
            assert kept.min() >= dropped.max()
        mask = new
    assert count_total(mask) == sum(prunable_sizes("resnet20", "synthetic_cifar10", width=4))


def test_prunable_parameters_are_conv_and_linear_weights_only():
    model = build_model("resnet20", 4, "synthetic_cifar10", seed=0)
    names = prunable_names(model)
    modules = dict(model.named_modules())
    assert names and all(isinstance(modules[n.rsplit(".", 1)[0]], (nn.Conv2d, nn.Linear))
                         for n in names)
    assert "fc.bias" not in names and not any("bn" in n for n in names)
    assert "fc.weight" in names


def test_one_shot_keep_reproduces_a_masks_sparsity():
    model = build_model("resnet20", 4, "synthetic_cifar10", seed=0)
    weights = dict(model.named_parameters())
    m1 = full_mask(model)
    for _ in range(3):
        m1 = magnitude_prune(weights, m1, fraction=0.2)
    one_shot = magnitude_prune(weights, full_mask(model), keep=keep_counts(m1, "global"))
    assert count_alive(one_shot) == count_alive(m1)
    layer = magnitude_prune(weights, full_mask(model), scope="layerwise",
                            keep=keep_counts(m1, "layerwise"))
    assert all(int(layer[n].sum()) == int(m1[n].sum()) for n in m1)


def test_random_pruning_counts_and_seed():
    model = build_model("resnet20", 4, "synthetic_cifar10", seed=0)
    m0 = full_mask(model)
    a = random_prune(m0, fraction=0.2, generator=torch.Generator().manual_seed(1))
    b = random_prune(m0, fraction=0.2, generator=torch.Generator().manual_seed(1))
    c = random_prune(m0, fraction=0.2, generator=torch.Generator().manual_seed(2))
    assert count_alive(a) == count_total(m0) - prune_count(count_total(m0), 0.2)
    assert hamming_distance(a, b) == 0 and hamming_distance(a, c) > 0
    d = random_prune(a, fraction=0.5, generator=torch.Generator().manual_seed(3))
    assert is_nested(d, a)


def test_hamming_distance_bounds():
    m = {"w": torch.tensor([True, False, True, False])}
    assert hamming_distance(m, m) == 0.0
    assert hamming_distance(m, {"w": ~m["w"]}) == 1.0


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_pruned_weights_stay_zero_through_training(optimizer):
    data = load_data(DataSection(dataset="synthetic_cifar10", train_size=256, test_size=64))
    model = build_model("resnet20", 2, "synthetic_cifar10", seed=0)
    mask = random_prune(full_mask(model), fraction=0.6, generator=torch.Generator().manual_seed(0))
    # start from nonzero weights everywhere: training must zero and keep zero the pruned ones
    cfg = TrainSection(epochs=4, batch_size=32, lr=0.05, momentum=0.9, weight_decay=5e-3,
                       optimizer=optimizer, milestones=[])
    train(model, data, cfg, seed=0, tag="t", mask=mask, progress=False)  # 32 steps
    params = dict(model.named_parameters())
    for n, m in mask.items():
        assert torch.count_nonzero(params[n][~m]) == 0
        assert torch.count_nonzero(params[n][m]) > 0.9 * int(m.sum())
    assert sparsity(mask) == pytest.approx(0.6, abs=1e-3)


def test_apply_and_masked_state_zero_exactly_the_pruned():
    model = build_model("resnet20", 2, "synthetic_cifar10", seed=0)
    mask = random_prune(full_mask(model), fraction=0.5, generator=torch.Generator().manual_seed(0))
    state = masked_state(model.state_dict(), mask)
    apply_mask(model, mask)
    for n, m in mask.items():
        assert torch.equal(state[n], dict(model.named_parameters())[n].detach())
        assert torch.count_nonzero(state[n][~m]) == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_cuda_graph_step_equals_the_eager_step_and_keeps_zeros():
    """On a GPU only: the replayed step (two lr values: two graphs) matches the eager one."""
    data = load_data(DataSection(dataset="synthetic_cifar10", train_size=512, test_size=64),
                     torch.device("cuda"))
    mask = random_prune(full_mask(build_model("resnet20", 4, "synthetic_cifar10", seed=0)),
                        fraction=0.5, generator=torch.Generator().manual_seed(0))
    finals = []
    for graphs in (True, False):
        model = build_model("resnet20", 4, "synthetic_cifar10", seed=0).cuda()
        cfg = TrainSection(epochs=3, batch_size=64, lr=0.05, milestones=[2], cuda_graphs=graphs)
        history = train(model, data, cfg, seed=0, tag="g", mask=mask, progress=False)
        finals.append((history[-1]["train_loss"], dict(model.named_parameters())))
    (loss_g, p_g), (loss_e, p_e) = finals
    assert loss_g == pytest.approx(loss_e, rel=1e-3)
    for n, m in mask.items():
        assert torch.count_nonzero(p_g[n][~m.cuda()]) == 0
        assert torch.allclose(p_g[n], p_e[n], rtol=1e-3, atol=1e-4), n


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_fused_group_replayed_from_cuda_graphs_equals_the_eager_group():
    """On a GPU only: K networks fused (`train_group`), their step replayed from CUDA graphs (two
    lr values: two graphs), match the same group stepped eagerly, keep zeros, and stay near each
    network trained alone."""
    from lthkit.train.training import Member, train_group

    device = torch.device("cuda")
    data = load_data(DataSection(dataset="synthetic_cifar10", train_size=512, test_size=64), device)
    masks = [random_prune(full_mask(build_model("resnet20", 4, "synthetic_cifar10", seed=i)),
                          fraction=0.5, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    runs = {}
    for graphs in (True, False):
        cfg = TrainSection(epochs=3, batch_size=64, lr=0.05, milestones=[2], cuda_graphs=graphs)
        members = [Member(build_model("resnet20", 4, "synthetic_cifar10", seed=i).to(device),
                          tag=f"g{i}", seed=i, mask=masks[i]) for i in range(3)]
        runs[graphs] = (train_group(members, data, cfg, progress=False), members)
    (h_g, m_g), (h_e, m_e) = runs[True], runs[False]
    for a, b, mask in zip(m_g, m_e, masks):
        pa, pb = dict(a.model.named_parameters()), dict(b.model.named_parameters())
        for n, m in mask.items():
            assert torch.count_nonzero(pa[n][~m.to(device)]) == 0
        for n in pa:
            assert torch.allclose(pa[n], pb[n], rtol=1e-3, atol=1e-4), n
    for ha, hb in zip(h_g, h_e):
        assert [h["train_loss"] for h in ha] == pytest.approx([h["train_loss"] for h in hb], rel=1e-3)
    cfg = TrainSection(epochs=1, batch_size=64, lr=0.05, milestones=[])
    for i, history in enumerate(h_g):
        model = build_model("resnet20", 4, "synthetic_cifar10", seed=i).to(device)
        alone = train(model, data, cfg, seed=i, tag=f"g{i}", mask=masks[i], progress=False)
        assert history[0]["train_loss"] == pytest.approx(alone[0]["train_loss"], rel=2e-2)
