"""Parameter files: the presets are valid, and every kind of mistake names its key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from lthkit.config.base import ParamsError
from lthkit.config.cli import main
from lthkit.config.params import load_params, notebook_params, params_from_dict

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted((ROOT / "params").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_presets_are_valid(preset: Path):
    params = load_params(preset)
    assert params.run.name
    assert params.source == str(preset.resolve())


def test_paper_presets_hold_the_paper_recipe():
    resnet = load_params(ROOT / "params" / "resnet20_paper.yaml")
    assert (resnet.train.epochs, resnet.train.batch_size, resnet.train.lr) == (160, 128, 0.1)
    assert (resnet.train.momentum, resnet.train.weight_decay) == (0.9, 1e-4)
    assert resnet.train.milestones == [80, 120]
    assert (resnet.imp.levels, resnet.imp.prune_fraction) == (10, 0.2)
    assert resnet.model.arch == "resnet20" and resnet.data.dataset == "cifar10"
    vgg = load_params(ROOT / "params" / "vgg16_paper.yaml")
    assert (vgg.imp.levels, vgg.imp.prune_fraction, vgg.model.arch) == (12, 0.4, "vgg16")
    # the paper trains in fp32: strict (torch's default lets cuDNN use TF32), issue 35 item 8
    assert resnet.train.precision == vgg.train.precision == "fp32"


# --- keys an earlier version read: refused, naming what replaced them ---------------------------

@pytest.mark.parametrize("raw, key, replaced_by", [
    ({"train": {"bf16": True}}, "train.bf16", "train.precision"),
    ({"baselines": {"train_together": "no"}}, "baselines.train_together", "baselines.group_size"),
])
def test_a_renamed_key_is_refused_naming_its_replacement(write_yaml, raw, key, replaced_by):
    msg = _error(write_yaml, raw)
    assert f"{key}: unknown key: replaced by {replaced_by}" in msg and "\n" not in msg, msg


def _error(write_yaml, raw) -> str:
    path = write_yaml(raw)
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert str(path) in str(info.value), "the error must name the file"
    return str(info.value)


def test_unknown_key_is_named_with_a_suggestion(write_yaml):
    msg = _error(write_yaml, {"train": {"epoch": 3}})
    assert "train.epoch" in msg and "unknown key" in msg and "epochs" in msg


def test_unknown_section_is_named(write_yaml):
    msg = _error(write_yaml, {"trian": {"epochs": 3}})
    assert "trian" in msg and "train" in msg


@pytest.mark.parametrize("raw, key", [
    ({"train": {"epochs": "ten"}}, "train.epochs"),
    ({"train": {"epochs": 2.5}}, "train.epochs"),
    ({"train": {"bf16": "yes"}}, "train.bf16"),
    ({"train": {"precision": "fp16"}}, "train.precision"),
    ({"train": {"milestones": 80}}, "train.milestones"),
])
def test_wrong_type_is_named(write_yaml, raw, key):
    assert key in _error(write_yaml, raw)


@pytest.mark.parametrize("raw, key", [
    ({"train": {"lr": -0.1}}, "train.lr"),
    ({"imp": {"prune_fraction": 1.0}}, "imp.prune_fraction"),
    ({"imp": {"prune_fraction": 0.0}}, "imp.prune_fraction"),
    ({"imp": {"levels": 200}}, "imp.levels"),
    ({"train": {"epochs": 10, "milestones": [5, 20]}}, "train.milestones"),
    ({"train": {"milestones": [120, 80]}}, "train.milestones"),
    ({"data": {"dataset": "imagenet"}}, "data.dataset"),
    ({"baselines": {"levels": [0, 3]}}, "baselines.levels"),
    ({"run": {"name": "a/b"}}, "run.name"),
])
def test_impossible_value_is_named(write_yaml, raw, key):
    assert key in _error(write_yaml, raw)


def test_layerwise_levels_are_limited_by_the_smallest_layer(write_yaml):
    # ResNet-20's first conv has 432 weights: 0.5**9 * 432 < 1, while the whole net has 270k.
    raw = {"imp": {"levels": 9, "prune_fraction": 0.5}}
    load_params(write_yaml(raw, "global.yaml"))
    msg = _error(write_yaml, {"imp": {**raw["imp"], "scope": "layerwise"}})
    assert "imp.levels" in msg and "smallest layer" in msg


def test_broken_yaml_names_the_file(write_yaml, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("train:\n  epochs: [1, 2\n")
    with pytest.raises(ParamsError, match="broken.yaml.*not valid YAML"):
        load_params(path)


def test_missing_file_is_a_params_error(tmp_path):
    with pytest.raises(ParamsError, match="no such parameter file"):
        load_params(tmp_path / "nope.yaml")


def test_exponent_floats_without_a_dot_are_floats(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("train:\n  weight_decay: 5e-4\n  lr: 1e-1\n")
    params = load_params(path)
    assert params.train.weight_decay == 5e-4 and params.train.lr == 0.1


def test_injected_sections_replace_the_file():
    params = notebook_params("params/smoke.yaml", {"run": {"name": "x"},
                                                   "train": {"epochs": 3, "milestones": [1]}})
    assert params.run.name == "x" and params.train.epochs == 3
    assert params.data.dataset == "cifar10", "injected sections are the whole parameter set"
    with pytest.raises(ParamsError, match="papermill.*train.epochs"):
        notebook_params(None, {"train": {"epochs": -1}})


def test_training_fingerprint_ignores_extendable_keys():
    a = params_from_dict({"imp": {"levels": 2}})
    b = params_from_dict({"imp": {"levels": 5}, "run": {"device": "cpu"}})
    c = params_from_dict({"train": {"lr": 0.2}})
    assert a.training_fingerprint() == b.training_fingerprint()
    assert a.training_fingerprint() != c.training_fingerprint()


def test_cli_check_and_show(capsys, write_yaml):
    assert main(["check", str(ROOT / "params" / "smoke.yaml")]) == 0
    assert main(["show", str(ROOT / "params" / "smoke.yaml")]) == 0
    assert "synthetic_cifar10" in capsys.readouterr().out
    assert main(["check", str(write_yaml({"train": {"lr": 0}}))]) == 1
    assert "train.lr" in capsys.readouterr().err


@pytest.mark.parametrize("raw, key", [
    ({"mnist": {"mlp": {"imp": {"levels": 80}}}}, "mnist.mlp.imp.levels"),
    ({"mnist": {"transfer": {"train": {"lr": -1}}}}, "mnist.transfer.train.lr"),
    ({"mnist": {"lenet5": {"train": {"epochs": 5, "milestones": [9]}}}}, "mnist.lenet5.train.milestones"),
    ({"bain": {"show_levels": [99]}}, "bain.show_levels"),
    ({"bain": {"imp": {"prune_fraction": 2}}}, "bain.imp.prune_fraction"),
    ({"bain": {"surface": 3}}, "bain.surface"),
])
def test_nested_sections_name_the_full_key(write_yaml, raw, key):
    assert key in _error(write_yaml, raw)


# --- run folders that cannot escape the outputs root -------------------------------------------

@pytest.mark.parametrize("name", ["..", ".", "...", "a/..", "a/../..", "/tmp/elsewhere", "../x"])
def test_run_name_that_is_not_a_folder_of_its_own_is_refused(write_yaml, tmp_path, name):
    msg = _error(write_yaml, {"run": {"name": name, "output_root": str(tmp_path / "outputs")}})
    assert "run.name" in msg


def test_run_name_through_a_link_pointing_out_is_refused(write_yaml, tmp_path):
    outputs, elsewhere = tmp_path / "outputs", tmp_path / "elsewhere"
    outputs.mkdir()
    elsewhere.mkdir()
    (outputs / "link").symlink_to(elsewhere)
    (outputs / "inside").symlink_to(outputs / "real")  # a link within the root is fine
    load_params(write_yaml({"run": {"name": "inside", "output_root": str(outputs)}}, "ok.yaml"))
    msg = _error(write_yaml, {"run": {"name": "link", "output_root": str(outputs)}})
    assert "run.name" in msg and "symbolic link" in msg and str(elsewhere) in msg


def test_link_made_after_reading_is_refused_when_the_run_folder_is_used(tmp_path):
    from lthkit.config.base import ParamsError as Error

    params = params_from_dict({"run": {"name": "r", "output_root": str(tmp_path / "out")}},
                              source="p.yaml")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "r").symlink_to(ROOT)
    with pytest.raises(Error, match="p.yaml: run.name"):
        params.run_dir()


def test_run_folder_inside_the_kit_is_refused(write_yaml):
    msg = _error(write_yaml, {"run": {"name": "notebooks", "output_root": str(ROOT)}})
    assert "run.name" in msg and "kit's own files" in msg


# --- impossible values accepted before -------------------------------------------------------------

@pytest.mark.parametrize("raw, key, words", [
    # CIFAR-10: 50,000 / 128 = 390 iterations per epoch
    ({"train": {"epochs": 2, "milestones": [1]}}, "imp.rewind_iteration", "2 epochs x 390"),
    ({"data": {"train_size": 1000}, "train": {"epochs": 3, "batch_size": 100, "milestones": [1]},
      "imp": {"rewind_iteration": 30}}, "imp.rewind_iteration", "3 epochs x 10 iterations"),
    ({"imp": {"rewind_iteration": 100000}}, "imp.rewind_iteration", "62400"),
    ({"mnist": {"mlp": {"imp": {"rewind_iteration": 10**6}}}}, "mnist.mlp.imp.rewind_iteration",
     "not before the end"),
    ({"bain": {"imp": {"levels": 35, "prune_fraction": 0.1, "scope": "layerwise",
                       "rewind_iteration": 200}}}, "bain.imp.rewind_iteration",
     "35 epochs x 5 iterations (50000 training examples at batch 9600) = 175"),
    ({"report": {"notebooks": ["01_train_imp", "12_nothing"]}}, "report.notebooks",
     "02_baselines"),
    ({"report": {"notebooks": ["4"]}}, "report.notebooks", "no notebook named '4'"),
    ({"landscape": {"plane_levels": [0, 5, 11]}}, "landscape.plane_levels", "outside 0..10"),
    ({"landscape": {"plane_baseline_level": 12}}, "landscape.plane_baseline_level", "12"),
    ({"baselines": {"levels": [2, 4]}, "landscape": {"plane_baseline_level": 3}},
     "landscape.plane_baseline_level", "[2, 4]"),
])
def test_impossible_value_accepted_before_is_named(write_yaml, raw, key, words):
    msg = _error(write_yaml, raw)
    assert f"{key}:" in msg and words in msg, msg


def test_report_notebooks_by_number_prefix_are_fine(write_yaml):
    params = load_params(write_yaml({"report": {"notebooks": ["01", "04_hessian_volume"]}}))
    assert params.report.notebooks == ["01", "04_hessian_volume"]


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("run:\n  name: x\ntrain:\n  epochs: 3\n   lr: 0.1\n")
    with pytest.raises(ParamsError) as info:
        load_params(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}, line 5") and "not valid YAML" in msg
    assert "<unicode string>" not in msg and "\n" not in msg


def test_key_given_twice_is_an_error_naming_both_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("train:\n  epochs: 3\nimp:\n  levels: 2\ntrain:\n  lr: 0.2\n")
    with pytest.raises(ParamsError, match=r"twice.yaml, line 5.*'train' is given twice.*line 1"):
        load_params(path)


# --- empty files, nested keys ---------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "{}\n"])
def test_empty_parameter_file_is_an_error_saying_how_to_ask_for_defaults(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert str(path) in str(info.value) and "defaults: paper" in str(info.value)


def test_defaults_line_asks_for_every_default(tmp_path):
    path = tmp_path / "paper.yaml"
    path.write_text("defaults: paper\n")
    params = load_params(path)
    assert params.model_dump() == params_from_dict({}).model_dump()
    path.write_text("defaults: paper\ntrain:\n  epochs: 200\n")
    assert load_params(path).train.epochs == 200
    path.write_text("defaults: fast\n")
    with pytest.raises(ParamsError, match="defaults: 'fast' is not known"):
        load_params(path)
    assert notebook_params(None, {"defaults": "paper"}).train.epochs == 160


@pytest.mark.parametrize("raw, key", [
    ({"hessian": {"k": 10, "ks_fig22": [5, 20]}}, "hessian.ks_fig22"),
    ({"landscape": {"radius_start": 60.0}}, "landscape.radius_start"),
    ({"mnist": {"mlp": {"imp": {"levels": 80}}}}, "mnist.mlp.imp.levels"),
    ({"bain": {"show_levels": [99]}}, "bain.show_levels"),
])
def test_nested_key_is_named_once(write_yaml, raw, key):
    msg = _error(write_yaml, raw)
    assert f": {key}: " in msg
    section = key.split(".")[0]
    assert f"{section}.{section}." not in msg


def test_nested_override(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("defaults: paper\n")
    params = load_params(path, {"mnist.mlp.imp.levels": 3, "train.epochs": 170})
    assert params.mnist.mlp.imp.levels == 3 and params.train.epochs == 170
