"""IMP-WR: rewinding, nesting, resuming after a kill, and the run folder's guarantees."""

from __future__ import annotations

import pytest
import torch

import lthkit.train.imp as imp_module
from lthkit.config.base import ParamsError
from lthkit.nets.pruning import count_alive, count_total, is_nested, masked_state, prune_count
from lthkit.store.files import save_json
from lthkit.store.layout import MissingInputError, RunMismatchError
from lthkit.train.context import open_run
from lthkit.train.imp import ImpResults, run_imp
from lthkit.train.training import Checkpoint, train

from param_walk import with_another_value
from training_steps import counted_steps


class Killed(Exception):
    """Stands for a process killed in the middle of training."""


def _kill_at(iteration: int):
    def hook(i: int, model) -> None:
        if i == iteration:
            raise Killed

    return hook


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resumed_training_equals_uninterrupted(tiny, tmp_path):
    params = tiny()
    ctx = open_run(params, create=True)
    start = ctx.new_model().state_dict()

    def run(kill_at: int | None, ckpt_name: str):
        model = ctx.new_model()
        model.load_state_dict(start)
        ckpt = Checkpoint(tmp_path / ckpt_name)
        kwargs = dict(seed=0, tag="t", start_iteration=2, checkpoint=ckpt, progress=False)
        if kill_at is not None:
            with pytest.raises(Killed):
                train(model, ctx.data, params.train, on_iteration=_kill_at(kill_at), **kwargs)
            # a fresh process: nothing survives but the files. The network it resumes into starts
            # from another initialization, which the resume file must replace entirely.
            model = ctx.new_model(init_seed=12345)
        with counted_steps() as steps:
            history = train(model, ctx.data, params.train, **kwargs)
        return model.state_dict(), history, len(steps)

    straight, h1, n1 = run(None, "a.pt")
    resumed, h2, n2 = run(9, "b.pt")  # killed in epoch 3 (4 iterations per epoch, start at 2)
    assert (n1, n2) == (10, 4), "resumed after epoch 2: only epoch 3's iterations 9-12 are left"
    assert _states_equal(straight, resumed)
    assert [r["train_loss"] for r in h1] == [r["train_loss"] for r in h2]


def test_imp_levels_are_nested_with_exact_sparsity_and_rewound(tiny):
    params = tiny()
    ctx = open_run(params, create=True)
    res = run_imp(ctx, progress=False)
    assert res.levels_done() == [0, 1, 2]
    rewind = res.rewind()
    total = count_total(res.mask(0))
    alive = total
    for level in (1, 2):
        mask, prev = res.mask(level), res.mask(level - 1)
        assert is_nested(mask, prev)
        alive -= prune_count(alive, params.imp.prune_fraction)
        assert count_alive(mask) == alive
        # the level started from exactly m_L ⊙ W_rewind (weights and BatchNorm statistics)
        start = next(res.level(level).trajectory())
        assert start[0] == pytest.approx(params.imp.rewind_iteration / 4)
        assert _states_equal(start[1], masked_state(rewind, mask))
        # and the solution keeps the mask
        final = res.final(level)
        assert all(torch.count_nonzero(final[n][~m]) == 0 for n, m in mask.items())
        # the mask prunes the smallest alive weights of the previous solution
        prev_final = res.final(level - 1)
        kept = torch.cat([prev_final[n].abs()[mask[n]] for n in mask])
        dropped = torch.cat([prev_final[n].abs()[prev[n] & ~mask[n]] for n in mask])
        assert kept.min() >= dropped.max()
    metrics = res.metrics(2)
    assert len(metrics["history"]) == params.train.epochs  # epochs 1..3, the first from iteration k
    assert res.summary().loc[2, "weights_left_%"] == pytest.approx(100 * alive / total)
    epochs = res.level(1).trajectory_epochs()
    assert epochs == [1, 2, 3]


def test_rewind_point_is_the_level_zero_weights_at_iteration_k(tiny):
    params = tiny(imp={"levels": 0})
    ctx = open_run(params, create=True)
    res = run_imp(ctx, progress=False)
    model = ctx.new_model()
    model.load_state_dict(res.init())
    captured = {}

    def capture(i, m):
        if i == params.imp.rewind_iteration:
            captured.update({k: v.clone() for k, v in m.state_dict().items()})

    train(model, ctx.data, params.train, seed=params.run.seed, tag="imp/level_00",
          progress=False, on_iteration=capture)
    assert _states_equal(captured, res.rewind())
    assert not _states_equal(res.init(), res.rewind())
    assert _states_equal(model.state_dict(), res.final(0))


def test_killed_imp_run_resumes_without_retraining_finished_levels(tiny, monkeypatch):
    params = tiny()
    straight = run_imp(open_run(params, create=True), progress=False)
    reference = {lv: straight.final(lv) for lv in (0, 1, 2)}

    other = tiny(run={"name": "killed"})
    ctx = open_run(other, create=True)
    real_train = imp_module.train

    def killing_train(*args, **kwargs):
        if kwargs["tag"] == "imp/level_02":
            kwargs["on_iteration"] = _kill_at(7)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(imp_module, "train", killing_train)
    with pytest.raises(Killed):
        run_imp(ctx, progress=False)
    files = ImpResults(ctx.store).level(2)
    assert files.resume_file.exists() and not files.done()
    level1_mtime = ImpResults(ctx.store).level(1).final_file.stat().st_mtime_ns
    monkeypatch.setattr(imp_module, "train", real_train)

    calls = []
    monkeypatch.setattr(imp_module, "train", lambda *a, **k: calls.append(k["tag"]) or real_train(*a, **k))
    with counted_steps() as steps:
        resumed = run_imp(open_run(other, create=True), progress=False)
    assert calls == ["imp/level_02"], "finished levels must not be retrained"
    assert len(steps) == 8, "level 2 resumes after its first epoch: iterations 5-12, not 3-12"
    assert ImpResults(ctx.store).level(1).final_file.stat().st_mtime_ns == level1_mtime
    assert not files.resume_file.exists()
    for lv in (0, 1, 2):
        assert _states_equal(resumed.final(lv), reference[lv])
    leftovers = [p for p in ctx.store.root.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_run_folder_with_other_training_params_is_refused(tiny):
    ctx = open_run(tiny(imp={"levels": 0}), create=True)
    save_json(ctx.store.imp_dir(0) / "metrics.json", {"final": {}})  # it holds a result now
    with pytest.raises(RunMismatchError, match="train.lr"):
        open_run(tiny(imp={"levels": 0}, train={"lr": 0.2}), create=True)
    open_run(tiny(imp={"levels": 1}, run={"device": "cpu"}), create=True)  # extending is fine


def test_every_training_key_is_fixed_unless_extendable(tiny):
    """Walk every key of run, data, model, train and imp: a run folder holding results refuses a
    change of the key, naming it, unless the key is in EXTENDABLE_KEYS (then it takes it)."""
    from lthkit.config.base import flatten
    from lthkit.config.params import EXTENDABLE_KEYS, TRAINING_SECTIONS, params_from_dict
    from lthkit.store.layout import RunStore

    params = tiny(imp={"levels": 1})
    folder = params.run_dir()
    RunStore.create(params)
    save_json(folder / "imp" / "level_00" / "metrics.json", {"final": {}})  # it holds a result
    raw = params.model_dump()
    training = flatten(params.model_dump(include=set(TRAINING_SECTIONS)))
    # model.depth has no other value for resnet20 alone: it comes with the family's name
    together = {"model.depth": {"arch": "resnet"}}
    refused, taken, untried = [], [], []
    for key, value in training.items():
        section, name = key.split(".")
        changed, _ = with_another_value(lambda v: params_from_dict(
            {**raw, section: {**raw[section], **together.get(key, {}), name: v}}, source="walk"),
            section, name, value)
        if changed is None:
            untried.append(key)
            continue
        try:
            RunStore.create(changed, root=folder)  # the same folder, whatever run.name says
            taken.append(key)
        except RunMismatchError as e:
            assert f"{key}: " in str(e), f"the refusal of {key} does not name it: {e}"
            refused.append(key)
    assert not untried, f"no other valid value found for {untried}: extend param_walk"
    assert sorted(taken) == sorted(k for k in training if k in EXTENDABLE_KEYS)
    assert len(refused) + len(taken) == len(training) > 40


def test_later_notebooks_name_the_notebook_to_run_first(tiny):
    with pytest.raises(MissingInputError, match="01_train_imp"):
        open_run(tiny(), create=False)
    ctx = open_run(tiny(), create=True)
    with pytest.raises(MissingInputError, match="01_train_imp"):
        ImpResults(ctx.store).final(0)
    with pytest.raises(MissingInputError, match="01_train_imp"):
        ImpResults(ctx.store).require_levels([0, 1], "notebook 04")


def test_rewind_iteration_past_the_end_is_a_clear_error(tiny):
    """3 epochs x 4 iterations (128 examples at batch 32): k = 12 is past the end, when read."""
    tiny(imp={"rewind_iteration": 11})
    with pytest.raises(ParamsError, match=r"tiny: imp.rewind_iteration: 12 is not before the end "
                                          r"of training: 3 epochs x 4 iterations"):
        tiny(imp={"rewind_iteration": 12})


@pytest.mark.parametrize("sub, notebook", [(None, "01_train_imp"), ("bain", "11_ticket_landscapes"),
                                           ("mnist/mlp", "10_ticket_transfer")])
def test_a_missing_level_names_the_notebook_that_trains_it(tiny, sub, notebook):
    """A sub-run's IMP levels (Bain's tickets, the IE643 networks) are trained by notebook 11 or
    10: a missing one names that notebook, not notebook 01."""
    from lthkit.store.layout import RunStore

    params = tiny()
    store = RunStore.create(params)
    for part in (sub.split("/") if sub else []):
        store = RunStore.create(params, root=store.root / part)
    with pytest.raises(MissingInputError,
                       match=f"run notebooks/{notebook}.ipynb \\(levels \\[0, 1\\]"):
        ImpResults(store).require_levels([0, 1], "a test")
