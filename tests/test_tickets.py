"""Tickets beyond the main paper: transfer tasks, early-bird tickets, Bain's random tickets."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from lthkit import tickets
from lthkit.analysis.landscape import Landscape, PointRef
from lthkit.config.base import ParamsError
from lthkit.config.params import Params, params_from_dict
from lthkit.config.tickets import EarlyBirdSection
from lthkit.nets.models import build_model
from lthkit.nets.pruning import (count_alive, hamming_distance, keep_counts, magnitude_prune,
                                 prune_count)
from lthkit.store.files import save_json, save_tensors
from lthkit.store.layout import RunMismatchError
from lthkit.tickets import bain, transfer
from lthkit.train.baselines import BaselineResults
from lthkit.train.context import open_run, sub_run
from lthkit.train.imp import ImpResults, SolutionFiles, run_imp
from lthkit.train.training import Checkpoint, evaluate, train

from training_steps import counted_steps

ADAM = {"optimizer": "adam", "lr": 2e-3, "batch_size": 32, "momentum": 0.0, "weight_decay": 0.0,
        "epochs": 1, "milestones": [], "eval_batch_size": 128}
SMALL_IMP = {"levels": 1, "prune_fraction": 0.5, "rewind_iteration": 0, "save_every": 0}
MNIST = {"data": {"dataset": "synthetic_mnist", "train_size": 200, "test_size": 100},
         "transfer": {"arch": "mlp", "train": ADAM, "labels_imp": SMALL_IMP,
                      "halves_imp": SMALL_IMP, "optimizers_imp": SMALL_IMP}}
MNIST_EB = {**MNIST, "mlp": {"model": {"arch": "mlp", "width": 8}, "train": {**ADAM, "epochs": 2},
                             "imp": {**SMALL_IMP, "save_every": 1, "trajectory_levels": [0]}}}


def _labels_task():
    return next(t for t in tickets.transfer_tasks(seed=0) if t.name == "labels")


def test_label_split_ticket_sees_only_its_classes(tiny):
    ctx = open_run(tiny(mnist=MNIST), create=True)
    task = _labels_task()
    for config, classes in [(task.source, {0, 1, 2, 3, 4}), (task.target, {5, 6, 7, 8, 9})]:
        data = transfer._config_run(ctx, task, config).data
        assert set(data.train_y.unique().tolist()) == classes
        assert set(data.test_y.unique().tolist()) == classes
        assert data.num_train > 0


def test_halves_are_disjoint_and_cover_the_training_set(tiny):
    ctx = open_run(tiny(mnist=MNIST), create=True)
    task = next(t for t in tickets.transfer_tasks(seed=0) if t.name == "halves")
    a = transfer._config_run(ctx, task, task.source).data
    b = transfer._config_run(ctx, task, task.target).data
    assert a.num_train + b.num_train == 200
    rows_a = {tuple(x.flatten()[:64].tolist()) for x in a.train_x}
    rows_b = {tuple(x.flatten()[:64].tolist()) for x in b.train_x}
    assert not rows_a & rows_b


def test_transfer_retrains_the_source_mask_from_the_source_init(tiny, monkeypatch):
    ctx = open_run(tiny(mnist=MNIST), create=True)
    calls = []
    real = transfer.train_solution

    def spy(sub, files, **kw):
        if kw["tag"].startswith("transfer/"):
            calls.append((sub, files, kw))
        return real(sub, files, **kw)

    monkeypatch.setattr(transfer, "train_solution", spy)
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


def _cfg(**kw):
    return EarlyBirdSection(**{"prune_fraction": 0.5, "window": 1, "epsilon": 0.1, **kw})


def test_weight_mask_distance_zero_for_equal_masks_one_for_complementary(tmp_path):
    w = torch.arange(1.0, 17.0).view(4, 4)
    flipped = w.flip(0).flip(1)  # the small weights become the large ones
    files = _trajectory(tmp_path, [{"w": w}, {"w": w * 2}, {"w": flipped}, {"w": flipped}])
    table = tickets.weight_early_bird(files, _cfg())
    assert table["distance"].tolist() == [0.0, 1.0, 0.0]
    assert tickets.settled_epoch(table, 0.1) == 4.0  # from epoch 4 on the mask no longer moves
    assert tickets.drawn_epoch(table) == 2.0  # window 1: the first small distance draws it


def test_early_bird_never_settles(tmp_path):
    w = torch.arange(1.0, 17.0).view(4, 4)
    flipped = w.flip(0).flip(1)
    files = _trajectory(tmp_path, [{"w": w}, {"w": flipped}, {"w": w}])
    table = tickets.weight_early_bird(files, _cfg())
    assert table["distance"].tolist() == [1.0, 1.0]
    assert tickets.settled_epoch(table, 0.1) is None and tickets.drawn_epoch(table) is None


def test_you_rule_draws_at_the_first_epoch_whose_window_is_all_under_epsilon():
    d = pd.DataFrame({"epoch": [1.0, 2, 3, 4, 5, 6, 7],
                      "distance": [0.5, 0.05, 0.3, 0.05, 0.02, 0.2, 0.01]})
    # window 2: epochs 2-3 hold 0.3, 3-4 too; 4-5 = (0.05, 0.02) is the first all under 0.1
    table = tickets.early_bird_rule(d, window=2, epsilon=0.1)
    assert tickets.drawn_epoch(table) == 5.0
    assert table["window_max"].isna().tolist() == [True] + [False] * 6
    assert table.loc[table["epoch"] == 5, "window_max"].item() == 0.05
    # during training, not in hindsight: the distance rises again at epoch 6
    assert tickets.settled_epoch(table, 0.1) == 7.0
    assert tickets.drawn_epoch(tickets.early_bird_rule(d, window=1, epsilon=0.1)) == 2.0
    assert tickets.drawn_epoch(tickets.early_bird_rule(d, window=3, epsilon=0.1)) is None
    assert tickets.drawn_epoch(tickets.early_bird_rule(d, window=3, epsilon=0.25)) == 6.0


def test_channel_masks_prune_the_smallest_gammas_over_all_layers(tmp_path):
    model = build_model("resnet20", 2, "synthetic_cifar10", seed=0)
    names = tickets.bn_scale_names(model)
    assert names and all(n.endswith(".weight") for n in names)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(names) == len(bns)
    state = model.state_dict()
    total = sum(state[n].numel() for n in names)
    g = torch.Generator().manual_seed(0)
    for n in names:  # gammas of both signs: the ranking is by |gamma|
        state[n] = torch.randn(state[n].shape, generator=g)
    files = SolutionFiles(tmp_path / "run")
    save_tensors(files.epoch_file(1), state)
    [(epoch, mask)] = tickets.channel_masks(files, names, ratio=0.25)
    assert epoch == 1.0 and set(mask) == set(names)
    flat = torch.cat([state[n].abs().flatten() for n in names])
    kept = torch.cat([mask[n].flatten() for n in names])
    assert int((~kept).sum()) == prune_count(total, 0.25)  # rounded half up, as IMP
    assert flat[~kept].max() <= flat[kept].min(), "a global ranking: no layer keeps a smaller one"


def test_channel_distance_matrix_is_symmetric_with_a_zero_diagonal():
    a = {"x": torch.tensor([True, False, True, True])}
    b = {"x": torch.tensor([True, True, False, True])}
    m = tickets.channel_distance_matrix([(0.0, a), (1.0, b), (2.0, b)])
    assert m.loc[0.0, 1.0] == m.loc[1.0, 0.0] == 0.5
    assert m.loc[1.0, 2.0] == 0.0 and (m.to_numpy().diagonal() == 0).all()


def test_early_birds_use_the_main_run_dense_trajectory_when_it_exists(tiny):
    ctx = open_run(tiny(mnist=MNIST_EB), create=True)
    mlp = tickets.mnist_tickets(ctx, "mlp", progress=False)
    birds, matrix, note = tickets.early_birds(ctx, mlp)
    assert list(birds) == ["MLP (MNIST), weight masks"] and matrix is None
    assert "notebooks/01_train_imp.ipynb" in note
    run_imp(ctx, progress=False, levels=0)
    birds, matrix, note = tickets.early_birds(ctx, mlp)
    epochs = ctx.params.train.epochs
    channels = birds["main run, channel masks (You et al.)"]
    assert channels["epoch"].tolist() == [float(e) for e in range(1, epochs + 1)]  # from W_init
    assert channels["distance"].between(0, 1).all()
    assert list(matrix.index) == [float(e) for e in range(0, epochs + 1)]
    summary = tickets.early_bird_summary(birds, 0.1)
    assert list(summary.index) == list(birds)
    assert summary["last_epoch"].tolist() == [2.0, epochs, epochs]  # the MLP trains 2 epochs


def test_main_run_without_trajectory_says_which_keys_to_set(tiny):
    ctx = open_run(tiny(imp={"save_every": 0}), create=True)
    save_json(ImpResults(ctx.store).level(0).metrics_file, {})  # a finished level 0, no epochs
    files, note = tickets.main_run_trajectory(ctx)
    assert files is None and "imp.save_every" in note and "imp.trajectory_levels" in note


def test_task3_sgd_defaults_to_the_report_lr_and_the_tuned_one_is_an_option(tiny):
    ctx = open_run(tiny(mnist=MNIST), create=True)
    task = next(t for t in tickets.transfer_tasks(seed=0) if t.name == "sgd_to_adam")
    sgd = transfer._config_run(ctx, task, task.source).params.train
    adam = transfer._config_run(ctx, task, task.target).params.train
    assert (sgd.optimizer, sgd.lr, sgd.momentum) == ("sgd", 1.2e-3, 0.0)
    assert Params().mnist.transfer.train.lr == 1.2e-3 == Params().mnist.transfer.sgd_lr
    assert adam.optimizer == "adam"
    tuned = open_run(tiny(run={"name": "tuned"}, mnist={
        **MNIST, "transfer": {**MNIST["transfer"], "sgd_lr": 0.05, "sgd_momentum": 0.9}}),
        create=True)
    sgd = transfer._config_run(tuned, task, task.source).params.train
    assert (sgd.lr, sgd.momentum) == (0.05, 0.9)


def test_iteration_levels_are_the_first_middle_and_last():
    assert tickets.iteration_levels([0, 1, 2, 3, 4]) == [0, 2, 4]
    assert tickets.iteration_levels([0, 1]) == [0, 1]
    assert tickets.iteration_levels([0]) == [0] and tickets.iteration_levels([]) == []


BAIN = {"data": {"dataset": "synthetic_cifar10", "train_size": 128, "test_size": 64,
                 "augment": False},
        "model": {"arch": "lenet5", "width": 2},
        "train": {**ADAM, "batch_size": 64},
        "imp": {"levels": 2, "prune_fraction": 0.4, "scope": "layerwise", "rewind_iteration": 0,
                "save_every": 0},
        "show_levels": [0, 1, 2], "random_levels": "all", "surface_split": "train",
        "early_stopping": {"enabled": False}}
STOPPED = {**BAIN, "train": {**ADAM, "batch_size": 32, "epochs": 4},
           "early_stopping": {"validation_size": 32, "patience": None}}


@pytest.fixture
def bain_run(tiny):
    ctx = open_run(tiny(bain=BAIN, landscape={"surface_resolution": 3, "surface_examples": 16}),
                   create=True)
    return tickets.bain_tickets(ctx, progress=False)


def test_random_ticket_has_the_imp_layer_counts_on_the_same_init(bain_run):
    imp, base = ImpResults(bain_run.store), BaselineResults(bain_run.store)
    assert tickets.bain_pairs(bain_run, [0, 1, 2]) == [1, 2]
    assert tickets.shown_levels(bain_run) == [1, 2]
    for level in (1, 2):
        m_imp, m_rand = imp.mask(level), base.mask(tickets.RANDOM_TICKET, level)
        assert keep_counts(m_imp, "layerwise") == keep_counts(m_rand, "layerwise")
        assert count_alive(m_rand) == count_alive(m_imp)
        assert hamming_distance(m_imp, m_rand) > 0, "a random mask, not the IMP one"
    table = tickets.accuracy_table(bain_run)
    assert {"ticket_test_acc", "random_test_acc", "gap", "ticket_vs_dense"} <= set(table.columns)
    assert "ticket_kept_epoch" not in table, "no early stopping here"
    # every accuracy measured here on the test split, from the saved solutions
    measured = {(side, lv): _test_accuracy(bain_run, files) for lv in (0, 1, 2)
                for side, files in (("ticket", imp.level(lv)),
                                    ("random", base.files(tickets.RANDOM_TICKET, lv)))
                if lv or side == "ticket"}
    for level in (1, 2):
        ticket, random = measured["ticket", level], measured["random", level]
        assert table.loc[level, "ticket_test_acc"] == pytest.approx(ticket)
        assert table.loc[level, "random_test_acc"] == pytest.approx(random)
        assert table.loc[level, "gap"] == pytest.approx(ticket - random), "IMP ticket - random"
        assert table.loc[level, "ticket_vs_dense"] == pytest.approx(ticket - measured["ticket", 0])


def _test_accuracy(sub, files) -> float:
    model = sub.new_model()
    model.load_state_dict(files.final())
    return evaluate(model, sub.data, "test", 64)[1]


def test_random_ticket_surface_perturbs_only_its_own_survivors(bain_run):
    """With `bain.directions: masked` (the kit's extension); Bain's dense ones move every
    weight, and notebook 11 uses his by default."""
    land = Landscape(bain_run, progress=False, directions="masked")
    ref = PointRef(tickets.RANDOM_TICKET, 2)
    own = land.own_space(ref)
    assert not torch.equal(own, land.space(2)), "the random mask differs from m_L"
    masked = land.surface_directions(ref)
    assert all(bool((d[own == 0] == 0).all()) for d in masked)
    bains = tickets.bain_landscape(bain_run, progress=False)
    assert (bains.directions, bains.draw) == ("dense", "shared")
    dense = bains.surface_directions(ref)
    assert all(bool((d[own == 0] != 0).any()) for d in dense), "dense: pruned weights move"
    pair = tickets.ticket_surfaces(land, 2)
    assert list(pair) == ["ticket", "random"]
    assert [t.split(",")[0] for _, t in pair.values()] == ["IMP ticket", "random ticket"]
    surface = pair["random"][0]
    assert surface["loss"].shape == (3, 3) and surface["split"] == "train"
    center = surface["loss"][1, 1].item()  # x = y = 0 is the ticket itself
    assert center == pytest.approx(land._evaluator(16).evaluate(land.point(ref))[0].item(),
                                   rel=1e-5)
    table = tickets.surface_table({2: pair})
    assert table.loc[2, "random_center_loss"] == pytest.approx(center)
    assert {"ticket_rise", "random_rise", "ticket_curvature", "random_curvature"} <= set(table)
    assert (table.loc[2, "directions"], table.loc[2, "draw"]) == ("masked", "shared")


def test_test_split_surfaces_are_evaluated_on_test_images(bain_run):
    train_land = Landscape(bain_run, progress=False)
    test_land = Landscape(bain_run, progress=False, surface_split="test")
    ref = PointRef("imp", 1)
    on_test = test_land.surface(ref, examples=16)
    on_train = train_land.surface(ref, examples=16)
    assert on_test["split"] == "test" and on_test["examples"] == 16
    assert not torch.equal(on_test["loss"], on_train["loss"]), "another cache entry, other data"
    # the centre is the ticket's loss on 16 test images drawn by the run seed
    evaluator = test_land._surface_evaluator(16)
    data = bain_run.data
    test_rows = {tuple(r.flatten()[:32].tolist()) for r in data.normalize(data.test_x)}
    assert all(tuple(r.flatten()[:32].tolist()) in test_rows for r in evaluator.x)
    assert on_test["loss"][1, 1].item() == pytest.approx(
        evaluator.evaluate(test_land.point(ref))[0].item(), rel=1e-5)
    sizes_params = bain_run.params.model_copy(update={"bain": bain_run.params.bain.model_copy(
        update={"surface_split": "test", "subsample_sizes": [8, 64, 1000]})})
    bain_run.params = sizes_params
    assert tickets.sweep_sizes(bain_run) == [8, 64]  # capped at the 64 test images


def test_surface_stats_on_a_known_quadratic():
    xs = torch.linspace(-1, 1, 5, dtype=torch.float64)
    gx, gy = torch.meshgrid(xs, xs, indexing="xy")
    loss = 0.5 + 3.0 * gx ** 2 + 1.0 * gy ** 2
    stats = tickets.surface_stats({"x": xs, "y": xs, "loss": loss})
    assert stats["center_loss"] == pytest.approx(0.5)
    assert stats["curvature"] == pytest.approx(3.0 + 1.0)  # (2a + 2b) / 2
    border = torch.cat([loss[0], loss[-1], loss[1:-1, 0], loss[1:-1, -1]])
    assert stats["rise"] == pytest.approx(float(border.mean()) - 0.5)


def test_bain_protocol_says_which_split_and_which_kept_model():
    p = Params()
    assert "test set" in tickets.bain_protocol(p) and "validation" in tickets.bain_protocol(p)
    off = Params(bain={"surface_split": "train", "early_stopping": {"enabled": False}})
    text = tickets.bain_protocol(off)
    assert "training set" in text and "last epoch" in text
    assert "dense directions on every weight" in tickets.bain_protocol(p)
    assert "one random draw for every level, as Bain" in tickets.bain_protocol(p)
    masked = tickets.bain_protocol(Params(bain={"directions": "masked", "draw": "per_level"}))
    assert "the kit's extension" in masked and "Bain: one for every level" in masked


def test_validation_split_is_disjoint_and_seeded(tiny):
    ctx = open_run(tiny(), create=True)
    data = ctx.data
    train_part, val = tickets.split_validation(data, 32, seed=0)
    assert train_part.num_train == data.num_train - 32 and val.num_train == 32
    rows = {tuple(x.flatten()[:64].tolist()) for x in train_part.train_x}
    assert not rows & {tuple(x.flatten()[:64].tolist()) for x in val.train_x}
    again = tickets.split_validation(data, 32, seed=0)[1]
    assert torch.equal(again.train_x, val.train_x)
    with pytest.raises(ValueError, match="validation_size"):
        tickets.split_validation(data, data.num_train, seed=0)


def test_validation_size_must_leave_training_examples():
    with pytest.raises(ParamsError, match=r"bain\.early_stopping\.validation_size"):
        params_from_dict({"bain": {"data": {"dataset": "synthetic_cifar10", "train_size": 100},
                                   "early_stopping": {"validation_size": 100}}})


def test_train_stops_after_the_epoch_whose_hook_returns_true(tiny, tmp_path):
    ctx = open_run(tiny(), create=True)
    model = ctx.new_model()
    checkpoint = Checkpoint(tmp_path / "resume.pt")
    seen = []

    def on_epoch(epoch, m):
        seen.append(epoch)
        return epoch == 2

    history = train(model, ctx.data, ctx.params.train, seed=0, tag="t", checkpoint=checkpoint,
                    on_epoch=on_epoch, progress=False)
    assert seen == [1, 2] and [h["epoch"] for h in history] == [1, 2]
    assert checkpoint.load()["epoch"] == 1, "the stopping epoch (0-based 1) is checkpointed"


@pytest.fixture
def stopped_params(tiny):
    return tiny(bain=STOPPED)


def _val_losses(files):
    import json
    return json.loads((files.folder / tickets.EARLY_STOPPING_FILE).read_text())


def test_early_stopping_keeps_the_epoch_of_lowest_validation_loss(stopped_params):
    sub = tickets.bain_tickets(open_run(stopped_params, create=True), progress=False)
    imp, base = ImpResults(sub.store), BaselineResults(sub.store)
    assert sub.data.num_train == 128 - 32, "the validation split is not trained on"
    validation = bain._validation_of(sub, sub.select)
    for files in (imp.level(0), imp.level(2), base.files(tickets.RANDOM_TICKET, 1)):
        es = _val_losses(files)
        losses = [h["val_loss"] for h in es["history"]]
        assert len(losses) == 4 and es["last_epoch"] == 4
        assert es["best_epoch"] == 1 + losses.index(min(losses))
        model = sub.new_model()
        model.load_state_dict(files.final())
        assert evaluate(model, validation, "train", 64)[0] == pytest.approx(min(losses))
        assert not (files.folder / "early_stopping.pt").exists()
    # the next round prunes the kept model
    m1 = magnitude_prune(imp.final(0), imp.mask(0), fraction=0.4, scope="layerwise")
    assert all(torch.equal(m1[n], imp.mask(1)[n]) for n in m1)
    table = tickets.accuracy_table(sub)
    assert table.loc[2, "ticket_kept_epoch"] == _val_losses(imp.level(2))["best_epoch"]
    assert "random_kept_epoch" in table
    kept = tickets.kept_iterations(sub, 1)
    assert len(kept) == 2 and all(v > 0 for v in kept.values())


def test_patience_stops_a_round_early(tiny):
    # an lr this large makes the validation loss rise after the first epoch
    params = tiny(bain={**STOPPED, "train": {**STOPPED["train"], "lr": 0.5},
                        "early_stopping": {"validation_size": 32, "patience": 1}})
    sub = tickets.bain_tickets(open_run(params, create=True), progress=False)
    files = ImpResults(sub.store).level(0)
    es = _val_losses(files)
    losses = [h["val_loss"] for h in es["history"]]
    assert es["stopped_early"] and es["last_epoch"] < 4
    assert es["last_epoch"] == es["best_epoch"] + 1 and losses[-1] >= min(losses)
    assert len(files.metrics()["history"]) == es["last_epoch"]


class _Kill(Exception):
    pass


def _finals(sub):
    imp, base = ImpResults(sub.store), BaselineResults(sub.store)
    files = [imp.level(lv) for lv in imp.levels_done()]
    files += [base.files(k, lv) for k, lv in base.available()]
    return [(f.final(), _val_losses(f)) for f in files]


@pytest.mark.parametrize("where", ["mid_epoch", "between_hook_and_checkpoint", "before_finish"])
def test_early_stopping_resumes_after_a_kill_as_if_uninterrupted(tiny, tmp_path, monkeypatch,
                                                                 where):
    stop = {**STOPPED, "imp": {**STOPPED["imp"], "levels": 1}, "show_levels": [0, 1],
            "early_stopping": {"validation_size": 32, "patience": 2}}
    with counted_steps() as whole_steps:
        whole = tickets.bain_tickets(open_run(tiny(bain=stop), create=True), progress=False)
    per_epoch = whole.data.iterations_per_epoch(whole.params.train.batch_size)
    # the steps a kill loses: those since the last epoch the resume file holds
    lost = {"mid_epoch": 1, "between_hook_and_checkpoint": per_epoch, "before_finish": 0}[where]
    killed_params = tiny(run={"name": "killed"}, bain=stop)
    calls = {"n": 0}
    if where == "mid_epoch":  # a kill in the middle of level 1's third epoch
        real = bain.train

        def kill_in_train(*a, **kw):
            if kw["tag"] == "imp/level_01":
                hook = kw.get("on_iteration")

                def on_iteration(i, m):
                    if i == 2 * a[1].iterations_per_epoch(a[2].batch_size) + 1:
                        raise _Kill()
                    if hook:
                        hook(i, m)
                kw["on_iteration"] = on_iteration
            return real(*a, **kw)
        monkeypatch.setattr(bain, "train", kill_in_train)
    elif where == "between_hook_and_checkpoint":  # the best state is saved, the checkpoint not
        real_save = Checkpoint.save

        def kill_save(self, model, optimizer, epoch, iteration, history):
            calls["n"] += 1
            if calls["n"] == 2:  # level 0, epoch 2
                raise _Kill()
            return real_save(self, model, optimizer, epoch, iteration, history)
        monkeypatch.setattr(Checkpoint, "save", kill_save)
    else:  # the round is over (stopped or not), its solution not yet written
        real_finish = bain.finish_solution

        def kill_finish(*a, **kw):
            calls["n"] += 1
            if calls["n"] == 2:  # level 1
                raise _Kill()
            return real_finish(*a, **kw)
        monkeypatch.setattr(bain, "finish_solution", kill_finish)
    with pytest.raises(_Kill), counted_steps() as before_kill:
        tickets.bain_tickets(open_run(killed_params, create=True), progress=False)
    monkeypatch.undo()
    with counted_steps() as after_kill:
        resumed = tickets.bain_tickets(open_run(killed_params, create=True), progress=False)
    assert len(before_kill) + len(after_kill) == len(whole_steps) + lost, \
        "the rerun trains only what the resume files had not reached"
    a, b = _finals(whole), _finals(resumed)
    assert len(a) == len(b) == 3
    for (state_a, es_a), (state_b, es_b) in zip(a, b):
        assert es_a == es_b
        for name in state_a:
            assert torch.equal(state_a[name], state_b[name]), name


def test_turning_early_stopping_on_for_a_folder_trained_without_is_refused(tiny, stopped_params):
    tickets.bain_tickets(open_run(tiny(bain={**STOPPED, "early_stopping": {"enabled": False}}),
                                  create=True), progress=False)
    with pytest.raises(RunMismatchError, match="early_stopping"):
        tickets.bain_tickets(open_run(stopped_params, create=True), progress=False)


def test_a_folder_from_before_early_stopping_counts_as_trained_without_it(tiny, stopped_params):
    ctx = open_run(stopped_params, create=True)
    sub = sub_run(ctx, "bain", data=ctx.params.bain.data, model=ctx.params.bain.model,
                  train=ctx.params.bain.train, imp=ctx.params.bain.imp)
    run_imp(sub, progress=False, levels=0)  # as the kit did before: no claim
    with pytest.raises(RunMismatchError, match="early_stopping"):
        tickets.bain_tickets(ctx, progress=False)
