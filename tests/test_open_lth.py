"""Importing finished open_lth runs (issues 25 and 33) on real open_lth output: the runs of
tests/data/open_lth/ (a ResNet-20 and a VGG-11, with and without --rewinding_steps, made by
open_lth itself; README.md there says how), imported bit for bit, measured as open_lth's logger
measured them, their hyperparameters compared; every damaged or foreign input refused in one line.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from lthkit.config import load_params
from lthkit.config.catalog import iterations_per_epoch
from lthkit.store import RunStore, load_json, save_tensors
from lthkit.train.imp import ImpResults
from lthkit.train.open_lth import kit_names, main, write_params
from lthkit.train.open_lth_run import read_logger, read_run
from open_lth_data import FILES_SHA256, TRAIN, _digest, skip_torchvision_md5, write_cifar10_layout

FIXTURES = Path(__file__).parent / "data" / "open_lth"
# each run's rewind step as open_lth counts it: 5 iterations per epoch (ceil(300 / 64))
RUNS = {"resnet20_2": 0, "resnet20_2_rewind_1ep": 5, "vgg11_1": 0, "vgg11_1_rewind_7it": 7}


def replicate(name: str) -> Path:
    return FIXTURES / name / "replicate_1"


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """The CIFAR-10-layout images the fixtures were trained on, checked to be those."""
    root = write_cifar10_layout(tmp_path_factory.mktemp("open_lth_images"))
    assert _digest(root) == FILES_SHA256, "not the images open_lth trained the fixtures on"
    return root


def _args(folder: Path, project: Path, images: Path, name: str, *more: str) -> list[str]:
    return [str(folder), "--name", name, "--set", f"data.root={images}", "--set",
            f"run.output_root={project / 'outputs'}", "--set", "data.download=false", *more]


@pytest.fixture(scope="module")
def imported(tmp_path_factory, images) -> Path:
    """Every fixture imported once by the command, with no --params (it writes
    params/<name>.yaml of the working directory, a project of its own)."""
    project = tmp_path_factory.mktemp("project")
    with pytest.MonkeyPatch.context() as mp:
        skip_torchvision_md5(mp)
        mp.chdir(project)
        for name in RUNS:
            assert main(_args(replicate(name), project, images, name)) == 0
    return project


@pytest.fixture
def project(imported, monkeypatch) -> Path:
    """The project of `imported` as working directory, torchvision reading the fixture images."""
    skip_torchvision_md5(monkeypatch)
    monkeypatch.chdir(imported)
    return imported


def _refused(argv: list[str], capsys) -> str:
    """The one line a refused command prints."""
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def _step(path: Path) -> tuple[int, int]:
    m = re.match(r"model_ep(\d+)_it(\d+)\.pth", path.name)
    return int(m.group(1)), int(m.group(2))


def _same(kit: dict, open_lth: dict, names: dict[str, str]) -> None:
    assert set(kit) == {names[n] for n in open_lth}
    for name, value in open_lth.items():
        assert torch.equal(kit[names[name]], value), name


# --- real runs, bit for bit (items 1, 2, 5, 8) -----------------------------------------------------

@pytest.mark.parametrize("name", RUNS)
def test_a_real_open_lth_run_imports_bit_for_bit_and_measures_as_its_logger(imported, name):
    folder = replicate(name)
    params = load_params(imported / "params" / f"{name}.yaml")
    imp = ImpResults(RunStore(params.run_dir()))
    levels = sorted(int(p.name.split("_")[1]) for p in folder.glob("level_[0-9]*"))
    assert imp.levels_done() == levels
    load = lambda p: torch.load(p, weights_only=True)  # noqa: E731
    pretrain = sorted((folder / "level_pretrain" / "main").glob("model_*.pth"), key=_step)
    init_file = pretrain[0] if pretrain else folder / "level_0" / "main" / "model_ep0_it0.pth"
    names = kit_names(list(load(init_file)), name.split("_")[0][:-2])
    _same(imp.init(), load(init_file), names)
    _same(imp.rewind(), load(pretrain[-1] if pretrain else init_file), names)
    assert params.imp.rewind_iteration == RUNS[name]
    for level in levels:
        main_dir = folder / f"level_{level}" / "main"
        final_file = max(main_dir.glob("model_*.pth"), key=_step)
        _same(imp.final(level), load(final_file), names)
        kit_mask = imp.mask(level)
        for n, m in load(main_dir / "mask.pth").items():
            if names[n] in kit_mask:
                assert torch.equal(kit_mask[names[n]], m.bool()), n
            else:  # a layer open_lth kept whole (the VGG's fc.weight): not pruned by the kit
                assert n == "fc.weight" and bool(m.all())
        logged = read_logger(main_dir / "logger")
        last = max(logged["test_accuracy"])
        metrics = imp.metrics(level)
        final = metrics["final"]
        assert final["test_acc"] == pytest.approx(logged["test_accuracy"][last], abs=1e-12)
        assert final["test_loss"] == pytest.approx(logged["test_loss"][last], rel=1e-5)
        assert final["open_lth"]["test_acc"] == logged["test_accuracy"][last]
        assert final["start_iteration"] == (RUNS[name] if level else 0)
        assert [h["iteration"] for h in metrics["history"]] == sorted(logged["test_accuracy"])
        assert [h["test_acc"] for h in metrics["history"]] == [
            logged["test_accuracy"][it] for it in sorted(logged["test_accuracy"])]
    summary = imp.summary()
    assert (summary["open_lth_test_acc"] == summary["test_acc"]).all()


def test_open_lths_iterations_per_epoch_are_kept():
    """open_lth keeps the last partial batch: 5 iterations per epoch of 300 images at batch 64,
    where the kit's own training counts 4; the rewind steps 1ep and 7it are iterations 5, 7."""
    assert iterations_per_epoch(TRAIN, 64) == 4
    for name, k in RUNS.items():
        run = read_run(replicate(name))
        assert run.per_epoch == 5 and run.rewind_iteration == k, name


def test_the_written_parameter_file_holds_the_runs_hyperparameters(imported):
    resnet = load_params(imported / "params" / "resnet20_2_rewind_1ep.yaml")
    assert (resnet.model.arch, resnet.model.depth, resnet.model.width) == ("resnet", 20, 2)
    assert (resnet.train.batch_size, resnet.train.lr, resnet.train.epochs) == (64, 0.05, 4)
    assert (resnet.train.milestones, resnet.train.momentum, resnet.train.weight_decay) == (
        [3], 0.9, 1e-4)
    assert (resnet.imp.levels, resnet.imp.prune_fraction, resnet.imp.rewind_iteration) == (
        2, 0.5, 5)
    assert resnet.data.dataset == "cifar10" and resnet.data.normalization == "imagenet"
    vgg = load_params(imported / "params" / "vgg11_1.yaml")
    assert (vgg.model.network, vgg.model.width, vgg.model.not_prunable) == (
        "vgg11", 1, ["fc.weight"])
    record = load_json(vgg.run_dir() / "imp" / "open_lth.json")
    assert record["source"] == str(replicate("vgg11_1").resolve())
    assert len(record["init_sha256"]) == 64 and record["iterations_per_epoch"] == 5


def test_a_rerun_resumes_and_rewrites_nothing(project, images, capsys):
    params = load_params(project / "params" / "resnet20_2.yaml")
    metrics = params.run_dir() / "imp" / "level_02" / "metrics.json"
    before = metrics.stat().st_mtime_ns
    assert main(_args(replicate("resnet20_2"), project, images, "resnet20_2")) == 0
    assert metrics.stat().st_mtime_ns == before


def test_imported_training_curves_are_drawn_from_open_lths_log(imported):
    from lthkit.plots.imp import training_curves

    params = load_params(imported / "params" / "resnet20_2.yaml")
    history = ImpResults(RunStore(params.run_dir())).metrics(1)["history"]
    assert history and "train_loss" not in history[0]
    fig = training_curves(history, "level 1")
    assert fig.axes[0].get_ylabel() == "test loss" and len(fig.axes[1].lines) == 1


# --- hyperparameters (items 3, 4, 6) -----------------------------------------------------------

def _edited(project: Path, name: str, **changes) -> Path:
    """A copy of the written parameter file of `name` with `changes` ({"train.batch_size": 128})."""
    raw = yaml.safe_load((project / "params" / f"{name}.yaml").read_text())
    for key, value in changes.items():
        section, field = key.split(".")
        raw[section][field] = value
    path = project / f"edited_{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_parameter_file_that_disagrees_with_the_run_is_refused_naming_both_values(
        project, images, capsys):
    edited = _edited(project, "resnet20_2", **{"train.batch_size": 128, "model.depth": 32,
                                               "data.normalization": "dataset",
                                               "imp.prune_fraction": 0.2})
    line = _refused(_args(replicate("resnet20_2"), project, images, "other", "--params",
                          str(edited)), capsys)
    assert "train.batch_size: 128 in " in line and "64 in the open_lth run (batch_size => 64)" \
        in line
    assert "model.depth: 32 in " in line and "20 in the open_lth run (model_name => " \
                                             "cifar_resnet_20_2)" in line
    assert "data.normalization: 'dataset' in " in line and "'imagenet' in the open_lth run" in line
    assert "imp.prune_fraction: 0.2 in " in line and "0.5 in the open_lth run" in line
    assert not (project / "outputs" / "other").exists(), "a refused import writes nothing"


def test_without_hparams_log_the_weights_name_the_key_that_differs(project, images, tmp_path,
                                                                   capsys):
    folder = shutil.copytree(replicate("resnet20_2"), tmp_path / "replicate_1")
    (folder / "level_0" / "main" / "hparams.log").unlink()
    edited = _edited(project, "resnet20_2", **{"model.depth": 32})
    line = _refused(_args(folder, project, images, "other", "--params", str(edited)), capsys)
    assert "model.depth: 32 in " in line and "20 in the open_lth run (9 blocks in " \
                                             "model_ep0_it0.pth)" in line


def test_an_edited_parameter_file_is_not_overwritten(project, images, tmp_path, capsys):
    written = project / "params" / "vgg11_1.yaml"
    text = written.read_text()
    try:
        written.write_text(text.replace("lr: 0.05", "lr: 0.07"))
        line = _refused(_args(replicate("vgg11_1"), project, images, "vgg11_1"), capsys)
        assert "exists and says something else: import with --params" in line
        assert "lr: 0.07" in written.read_text()
    finally:
        written.write_text(text)


def test_what_the_kit_does_not_reproduce_is_noted_in_the_file(project, images, tmp_path,
                                                             capsys):
    folder = shutil.copytree(replicate("resnet20_2"), tmp_path / "replicate_1")
    log = folder / "level_0" / "main" / "hparams.log"
    log.write_text(log.read_text().replace("    * lr => 0.05\n",
                                           "    * lr => 0.05\n    * warmup_steps => 1ep\n"))
    try:
        write_params(folder, "warm", {"data.root": str(images)})
        assert "warmup_steps => 1ep: the kit trains without learning-rate warmup" in \
            (project / "params" / "warm.yaml").read_text()
        assert "note: warmup_steps => 1ep" in capsys.readouterr().err
    finally:
        (project / "params" / "warm.yaml").unlink(missing_ok=True)


# --- never two runs in one folder; damaged inputs (item 7) ----------------------------------------

def _copy(name: str, tmp_path: Path) -> Path:
    return shutil.copytree(replicate(name), tmp_path / name / "replicate_1")


def test_another_run_under_an_existing_name_is_refused(project, images, tmp_path, capsys):
    """The same hyperparameters, another initialization (every level's start state changed
    alike): refused, and the run folder keeps the first run's files."""
    folder = _copy("resnet20_2", tmp_path)
    for start in folder.glob("level_*/main/model_ep0_it0.pth"):
        state = torch.load(start, weights_only=True)
        state["bn.weight"] = state["bn.weight"] + 1
        torch.save(state, start)
    params_file = project / "params" / "resnet20_2.yaml"
    init = RunStore(load_params(params_file).run_dir()).path("imp", "init.pt")
    before = init.read_bytes()
    line = _refused(_args(folder, project, images, "resnet20_2", "--params", str(params_file)),
                    capsys)
    assert "holds the open_lth run" in line and "(--name)" in line
    assert init.read_bytes() == before


def test_a_run_the_kit_trained_is_not_imported_into(project, images, tmp_path, capsys):
    edited = _edited(project, "resnet20_2", **{"run.name": "kit_trained"})
    params = load_params(edited)
    store = RunStore.create(params)
    other = {k: v + 1 if v.is_floating_point() else v for k, v in ImpResults(RunStore(
        load_params(project / "params" / "resnet20_2.yaml").run_dir())).init().items()}
    save_tensors(store.path("imp", "init.pt"), other)
    line = _refused(_args(replicate("resnet20_2"), project, images, "kit_trained", "--params",
                          str(edited)), capsys)
    assert "holds a run the kit trained" in line and "(--name)" in line


def test_other_training_parameters_for_an_imported_folder_in_one_line(project, images, capsys):
    line = _refused(_args(replicate("resnet20_2"), project, images, "resnet20_2", "--params",
                          str(project / "params" / "resnet20_2.yaml"), "--set", "run.seed=3"),
                    capsys)
    assert "was made with other parameters" in line and "run.seed: 0 there, 3 in" in line


@pytest.mark.parametrize("damage, expected", [
    ("truncate", r"level_1/main/model_ep4_it0.pth: cannot be read \(.*\): a damaged or "
                 r"cut-short copy"),
    ("no_mask", r"level_1/main/mask.pth: no mask.pth"),
    ("not_nested", r"level_2/main/mask.pth: keeps weights of .* that level 1 pruned: not nested"),
    ("dirty", r"level_2/main/model_ep4_it0.pth: .* nonzero weights where .* prunes them"),
    ("start", r"level_1/main/model_ep0_it0.pth: is not the initialization under level 1's mask"),
])
def test_a_damaged_or_mixed_folder_is_refused_in_one_line(project, images, tmp_path, capsys,
                                                          damage, expected):
    folder = _copy("resnet20_2", tmp_path)
    main_dir = lambda level: folder / f"level_{level}" / "main"  # noqa: E731
    if damage == "truncate":
        final = main_dir(1) / "model_ep4_it0.pth"
        final.write_bytes(final.read_bytes()[:20_000])
    elif damage == "no_mask":
        (main_dir(1) / "mask.pth").unlink()
    elif damage == "not_nested":
        masks = [torch.load(main_dir(lv) / "mask.pth", weights_only=True) for lv in (1, 2)]
        name = next(n for n in masks[0] if bool((masks[0][n] == 0).any()))
        masks[1][name][masks[0][name] == 0] = 1
        torch.save(masks[1], main_dir(2) / "mask.pth")
    elif damage == "dirty":
        mask = torch.load(main_dir(2) / "mask.pth", weights_only=True)
        state = torch.load(main_dir(2) / "model_ep4_it0.pth", weights_only=True)
        state["conv.weight"] = state["conv.weight"] + (1 - mask["conv.weight"])
        torch.save(state, main_dir(2) / "model_ep4_it0.pth")
    else:  # level 1 starts from another state than the masked initialization
        shutil.copy(main_dir(0) / "model_ep4_it0.pth", main_dir(1) / "model_ep0_it0.pth")
    line = _refused(_args(folder, project, images, f"damaged_{damage}", "--params",
                          str(_edited(project, "resnet20_2",
                                      **{"run.name": f"damaged_{damage}"}))), capsys)
    assert re.search(expected, line), line
    assert not (project / "outputs" / f"damaged_{damage}").exists()


def test_a_folder_that_is_no_replicate_is_named(project, images, tmp_path, capsys):
    line = _refused(_args(FIXTURES / "resnet20_2", project, images, "x"), capsys)
    assert "no level_<L>/main/ folders" in line and "replicate_1: give that" in line
    params_file = str(project / "params" / "resnet20_2.yaml")
    assert _refused([str(tmp_path / "empty"), "--params", params_file], capsys).endswith(
        "no such folder: give an open_lth replicate folder (lottery_<hash>/replicate_<r>)")
