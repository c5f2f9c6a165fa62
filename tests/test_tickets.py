"""Tickets beyond the main paper: transfer tasks, early-bird tickets, Bain's random tickets."""

from __future__ import annotations

import pytest
import torch

from lthkit import tickets
from lthkit.baselines import BaselineResults
from lthkit.context import open_run
from lthkit.imp import ImpResults, SolutionFiles
from lthkit.landscape import Landscape, PointRef
from lthkit.pruning import count_alive, hamming_distance, keep_counts
from lthkit.store import save_tensors

ADAM = {"optimizer": "adam", "lr": 2e-3, "batch_size": 32, "momentum": 0.0, "weight_decay": 0.0,
        "epochs": 1, "milestones": [], "eval_batch_size": 128}
SMALL_IMP = {"levels": 1, "prune_fraction": 0.5, "rewind_iteration": 0, "save_every": 0}
MNIST = {"data": {"dataset": "synthetic_mnist", "train_size": 200, "test_size": 100},
         "transfer": {"arch": "mlp", "train": ADAM, "labels_imp": SMALL_IMP,
                      "halves_imp": SMALL_IMP, "optimizers_imp": SMALL_IMP}}


def _labels_task():
    return next(t for t in tickets.transfer_tasks(seed=0) if t.name == "labels")


def test_label_split_ticket_sees_only_its_classes(tiny):
    ctx = open_run(tiny(mnist=MNIST), create=True)
    task = _labels_task()
    for config, classes in [(task.source, {0, 1, 2, 3, 4}), (task.target, {5, 6, 7, 8, 9})]:
        data = tickets._config_run(ctx, task, config).data
        assert set(data.train_y.unique().tolist()) == classes
        assert set(data.test_y.unique().tolist()) == classes
        assert data.num_train > 0


def test_halves_are_disjoint_and_cover_the_training_set(tiny):
    ctx = open_run(tiny(mnist=MNIST), create=True)
    task = next(t for t in tickets.transfer_tasks(seed=0) if t.name == "halves")
    a = tickets._config_run(ctx, task, task.source).data
    b = tickets._config_run(ctx, task, task.target).data
    assert a.num_train + b.num_train == 200
    rows_a = {tuple(x.flatten()[:64].tolist()) for x in a.train_x}
    rows_b = {tuple(x.flatten()[:64].tolist()) for x in b.train_x}
    assert not rows_a & rows_b


def test_transfer_retrains_the_source_mask_from_the_source_init(tiny, monkeypatch):
    ctx = open_run(tiny(mnist=MNIST), create=True)
    calls = []
    real = tickets.train_solution

    def spy(sub, files, **kw):
        if kw["tag"].startswith("transfer/"):
            calls.append((sub, files, kw))
        return real(sub, files, **kw)

    monkeypatch.setattr(tickets, "train_solution", spy)
    result = tickets.run_transfer(ctx, _labels_task(), progress=False)
    src = ImpResults(result.source.store)
    assert [c[2]["tag"] for c in calls] == ["transfer/labels/level_00", "transfer/labels/level_01"]
    for sub, files, kw in calls:
        level = int(kw["tag"][-2:])
        assert sub is result.target, "retrained on the target's data and optimizer"
        assert set(sub.data.train_y.unique().tolist()) == {5, 6, 7, 8, 9}
        assert kw["start_iteration"] == 0
        for name, m in src.mask(level).items():
            assert torch.equal(kw["mask"][name], m)
        for name, w in src.init().items():
            assert torch.equal(kw["start"][name], w), name
        final = files.final()
        for name, m in src.mask(level).items():
            assert torch.all(final[name][~m] == 0), f"{name}: pruned weights left the mask"
    table = tickets.transfer_table(result)
    assert list(table["level"]) == [0, 1]
    assert table["transferred_ticket_test_acc"].notna().all()


def _trajectory(tmp_path, states):
    files = SolutionFiles(tmp_path / "run")
    save_tensors(files.mask_file, {"w": torch.ones(4, 4, dtype=torch.bool)})
    for epoch, state in enumerate(states, start=1):
        save_tensors(files.epoch_file(epoch), state)
    return files


def test_early_bird_distance_zero_for_equal_masks_one_for_complementary(tmp_path):
    w = torch.arange(1.0, 17.0).view(4, 4)
    flipped = w.flip(0).flip(1)  # the small weights become the large ones
    files = _trajectory(tmp_path, [{"w": w}, {"w": w * 2}, {"w": flipped}, {"w": flipped}])
    table, eb = tickets.early_bird(files, fraction=0.5, threshold=0.1)
    assert table["distance"].tolist() == [0.0, 1.0, 0.0]
    assert eb == 4.0  # from epoch 4 on the mask no longer moves


def test_early_bird_never_settles(tmp_path):
    w = torch.arange(1.0, 17.0).view(4, 4)
    flipped = w.flip(0).flip(1)
    files = _trajectory(tmp_path, [{"w": w}, {"w": flipped}, {"w": w}])
    table, eb = tickets.early_bird(files, fraction=0.5, threshold=0.1)
    assert table["distance"].tolist() == [1.0, 1.0]
    assert eb is None


BAIN = {"data": {"dataset": "synthetic_cifar10", "train_size": 128, "test_size": 64,
                 "augment": False},
        "model": {"arch": "lenet5", "width": 2},
        "train": {**ADAM, "batch_size": 64},
        "imp": {"levels": 2, "prune_fraction": 0.4, "scope": "layerwise", "rewind_iteration": 0,
                "save_every": 0},
        "show_levels": [0, 1, 2], "random_levels": "all"}


@pytest.fixture
def bain_run(tiny):
    ctx = open_run(tiny(bain=BAIN, landscape={"surface_resolution": 3, "surface_examples": 16}),
                   create=True)
    return tickets.bain_tickets(ctx, progress=False)


def test_random_ticket_has_the_imp_layer_counts_on_the_same_init(bain_run):
    imp, base = ImpResults(bain_run.store), BaselineResults(bain_run.store)
    assert tickets.bain_pairs(bain_run, [0, 1, 2]) == [1, 2]
    for level in (1, 2):
        m_imp, m_rand = imp.mask(level), base.mask(tickets.RANDOM_TICKET, level)
        assert keep_counts(m_imp, "layerwise") == keep_counts(m_rand, "layerwise")
        assert count_alive(m_rand) == count_alive(m_imp)
        assert hamming_distance(m_imp, m_rand) > 0, "a random mask, not the IMP one"
    table = tickets.accuracy_table(bain_run)
    assert {"ticket_test_acc", "random_test_acc", "gap"} <= set(table.columns)
    assert table.loc[1, "gap"] == pytest.approx(table.loc[1, "ticket_test_acc"]
                                               - table.loc[1, "random_test_acc"])


def test_random_ticket_surface_perturbs_only_its_own_survivors(bain_run):
    land = Landscape(bain_run, progress=False)
    ref = PointRef(tickets.RANDOM_TICKET, 2)
    own = land.own_space(ref)
    assert not torch.equal(own, land.space(2)), "the random mask differs from m_L"
    pair = tickets.ticket_surfaces(land, 2)
    assert [t.split(",")[0] for _, t in pair] == ["IMP ticket", "random ticket"]
    surface = pair[1][0]
    assert surface["loss"].shape == (3, 3)
    center = surface["loss"][1, 1].item()  # x = y = 0 is the ticket itself
    assert center == pytest.approx(land._evaluator(16).evaluate(land.point(ref))[0].item(),
                                   rel=1e-5)
