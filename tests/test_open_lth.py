"""Importing a finished open_lth run (issue 25, item 4): a folder with open_lth's layout and
parameter names becomes a run folder of the kit, exactly, or is refused naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lthkit.config.params import params_from_dict
from lthkit.nets.models import VGG_LAYOUTS, build_model, prunable_names
from lthkit.nets.pruning import full_mask, masked_state, random_prune
from lthkit.train.imp import ImpResults
from lthkit.train.open_lth import OpenLthError, import_open_lth, main

BATCH, TRAIN = 16, 64  # 4 iterations per epoch


def _params(tmp_path: Path, arch: str, width: int, rewind: int = 0, levels: int = 2, **model):
    raw = {"run": {"name": f"imported_{arch}", "output_root": str(tmp_path / "outputs")},
           "data": {"dataset": "synthetic_cifar10", "train_size": TRAIN, "test_size": 32},
           "model": {"arch": arch, "width": width, **model},
           "train": {"epochs": 2, "batch_size": BATCH, "milestones": [], "eval_batch_size": 32},
           "imp": {"levels": levels, "rewind_iteration": rewind}}
    return params_from_dict(raw, source="test.yaml")


def _open_lth_vgg_names(depth: int) -> list[str]:
    """The state-dict names open_lth's cifar_vgg_<depth> has: layers[i] a ConvModule (conv, bn)
    or a max-pool, then fc (models/cifar_vgg.py)."""
    names = []
    for i, spec in enumerate(VGG_LAYOUTS[depth]):
        if spec == "M":
            continue
        names += [f"layers.{i}.conv.weight", f"layers.{i}.conv.bias"]
        names += [f"layers.{i}.bn.{b}" for b in ("weight", "bias", "running_mean", "running_var",
                                                  "num_batches_tracked")]
    return names + ["fc.weight", "fc.bias"]


def _as_open_lth(state: dict, arch: str, depth: int | None) -> dict:
    """A kit state dict under open_lth's names (ResNet: the same names; VGG: layers.<i>.*)."""
    if arch.startswith("resnet"):
        return dict(state)
    kit = list(state)  # the kit's order is open_lth's order of modules
    return dict(zip(_open_lth_vgg_names(depth), (state[n] for n in kit)))


def _write_open_lth(folder: Path, arch: str, width: int, depth: int | None, rewind_step=None,
                    levels: int = 2, dirty: bool = False) -> dict:
    """An open_lth replicate folder of `levels` + 1 levels; returns the kit states written."""
    network = arch if depth is None else f"{arch}{depth}"
    written = {"masks": [], "finals": []}
    init = build_model(network, width, "synthetic_cifar10", seed=1).state_dict()
    mask = full_mask(build_model(network, width, "synthetic_cifar10"))
    for level in range(levels + 1):
        main = folder / f"level_{level}" / "main"
        main.mkdir(parents=True)
        if level:
            mask = random_prune(mask, fraction=0.5, generator=torch.Generator().manual_seed(level))
        final = build_model(network, width, "synthetic_cifar10", seed=10 + level).state_dict()
        final = masked_state(final, mask)
        if dirty and level == levels:
            name = next(iter(mask))
            final[name] = final[name] + 1.0  # nonzero where the mask prunes
        torch.save(_as_open_lth(init, arch, depth), main / "model_ep0_it0.pth")
        if level == 0 and rewind_step:
            rewound = build_model(network, width, "synthetic_cifar10", seed=5).state_dict()
            torch.save(_as_open_lth(rewound, arch, depth),
                       main / f"model_ep{rewind_step[0]}_it{rewind_step[1]}.pth")
            written["rewind"] = rewound
        torch.save(_as_open_lth(final, arch, depth), main / "model_ep2_it0.pth")
        open_lth_mask = {n: m.int() for n, m in mask.items()}
        torch.save(_as_open_lth(open_lth_mask, arch, depth) if arch.startswith("resnet") else
                   {o: open_lth_mask[k] for o, k in zip(
                       [n for n in _open_lth_vgg_names(depth) if n.endswith("conv.weight")]
                       + ["fc.weight"], prunable_names(build_model(network, width,
                                                                   "synthetic_cifar10")))},
                   main / "mask.pth")
        written["masks"].append(mask)
        written["finals"].append(final)
    written["init"] = init
    return written


@pytest.mark.parametrize("arch, depth, width", [("resnet", 20, 4), ("vgg", 11, 8)])
def test_an_open_lth_run_imports_exactly(tmp_path, arch, depth, width):
    written = _write_open_lth(tmp_path / "replicate_1", arch, width, depth, rewind_step=(1, 0))
    params = _params(tmp_path, arch, width, rewind=4, depth=depth)  # epoch 1, iteration 0
    store = import_open_lth(tmp_path / "replicate_1", params)
    imp = ImpResults(store)
    assert imp.levels_done() == [0, 1, 2]
    for level in range(3):
        mask, final = imp.mask(level), imp.final(level)
        assert set(mask) == set(written["masks"][level])
        assert all(torch.equal(mask[n], written["masks"][level][n]) for n in mask)
        assert final.keys() == written["finals"][level].keys()
        assert all(torch.equal(final[n], written["finals"][level][n]) for n in final)
        metrics = imp.metrics(level)["final"]
        assert 0 <= metrics["test_acc"] <= 1 and metrics["alive"] == sum(
            int(m.sum()) for m in written["masks"][level].values())
    assert all(torch.equal(imp.rewind()[n], written["rewind"][n]) for n in written["rewind"])
    assert all(torch.equal(imp.init()[n], written["init"][n]) for n in written["init"])
    again = import_open_lth(tmp_path / "replicate_1", params)  # a rerun resumes, rewrites nothing
    assert again.root == store.root and ImpResults(again).levels_done() == [0, 1, 2]


def test_a_solution_with_weights_where_its_mask_prunes_is_refused(tmp_path):
    _write_open_lth(tmp_path / "rep", "resnet", 4, 20, dirty=True)
    with pytest.raises(OpenLthError, match=r"level_2/main/model_ep2_it0.pth: .* nonzero weights"):
        import_open_lth(tmp_path / "rep", _params(tmp_path, "resnet", 4, depth=20))


def test_a_network_of_another_width_is_refused_naming_the_file_and_key(tmp_path):
    _write_open_lth(tmp_path / "rep", "resnet", 4, 20)
    params = _params(tmp_path, "resnet", 8, depth=20)
    with pytest.raises(OpenLthError, match=r"model_ep2_it0.pth: conv.weight has shape .*"
                                           r"model.width"):
        import_open_lth(tmp_path / "rep", params)
    assert not params.run_dir().exists(), "every file is checked before anything is written"


def test_levels_and_the_rewind_step_must_match_the_parameter_file(tmp_path):
    _write_open_lth(tmp_path / "rep", "resnet", 4, 20)
    with pytest.raises(OpenLthError, match="set imp.levels: 2"):
        import_open_lth(tmp_path / "rep", _params(tmp_path, "resnet", 4, depth=20, levels=3))
    with pytest.raises(OpenLthError, match="no state at iteration 4"):
        import_open_lth(tmp_path / "rep", _params(tmp_path, "resnet", 4, rewind=4, depth=20))


def test_the_command_names_what_is_wrong_in_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    params = tmp_path / "p.yaml"
    params.write_text("run: {name: x, output_root: %s}\ndata: {dataset: synthetic_cifar10}\n"
                      "imp: {rewind_iteration: 0}\n" % (tmp_path / "outputs"))
    assert main([str(tmp_path / "empty"), "--params", str(params)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no level_<L>/main/ folders" in err[0]
    assert not (tmp_path / "outputs" / "x").exists(), "nothing written for a refused import"
