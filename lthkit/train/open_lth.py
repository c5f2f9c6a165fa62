"""Finished open_lth runs as run folders of the kit, without retraining.

open_lth (facebookresearch/open_lth) keeps a lottery run's replicate as

    <replicate>/level_<L>/main/model_ep<E>_it<I>.pth   state dicts at the steps it saved
    <replicate>/level_<L>/main/mask.pth                 the mask level L trained with (int)

Level 0's `model_ep0_it0.pth` is the initialization and, when the run rewinds, its state at the
rewind step is saved beside it; each level's last step is its solution W_min(L). The import maps
open_lth's parameter names onto the kit's networks (`cifar_resnet_N[_W]` has the kit's ResNet
names; `cifar_vgg_N`'s `layers.<i>.conv` / `layers.<i>.bn` become the kit's `features.<j>`),
checks every shape against the network the parameter file names and that pruned weights are zero,
measures each solution on the run's data as notebook 01 does, and writes imp/ of a run folder
(atomically, checksummed) that notebooks 03-09 analyse as if the kit had trained it. Baselines are
not imported (notebook 02 trains them when asked).

    lthkit-import-open-lth <open_lth replicate folder> --params params/my_run.yaml [--name run]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch
from torch import nn

from lthkit.config import Params, ParamsError, load_params, parse_overrides
from lthkit.config.catalog import iterations_per_epoch, known_train_size
from lthkit.nets.models import model_from, prunable_names
from lthkit.nets.pruning import Mask
from lthkit.store import RunFolderBusyError, RunStore, lock_run_folder, save_tensors
from lthkit.train.context import open_run
from lthkit.train.imp import ImpResults, finish_solution

__all__ = ["import_open_lth", "OpenLthError", "open_lth_levels", "kit_names", "main"]

STEP = re.compile(r"^model_ep(\d+)_it(\d+)\.pth$")
LEVEL = re.compile(r"^level_(\d+)$")


class OpenLthError(ValueError):
    """An open_lth folder that cannot be imported as it is, with the file and what to do."""


def open_lth_levels(folder: Path) -> list[int]:
    """The levels of an open_lth replicate folder, in order; an error when they have gaps."""
    levels = sorted(int(m.group(1)) for p in Path(folder).iterdir()
                    if (m := LEVEL.match(p.name)) and (p / "main").is_dir())
    if not levels:
        raise OpenLthError(f"{folder}: no level_<L>/main/ folders: give an open_lth replicate "
                           f"folder (lottery_<hash>/replicate_<r>)")
    if levels != list(range(len(levels))):
        raise OpenLthError(f"{folder}: levels {levels} have gaps: levels 0..L are needed")
    return levels


def _steps(main: Path) -> list[tuple[int, int, Path]]:
    """(epoch, iteration, file) of every saved state of one level, in training order."""
    return sorted((int(m.group(1)), int(m.group(2)), p) for p in main.iterdir()
                  if (m := STEP.match(p.name)))


def kit_names(open_lth_names: list[str], network: str) -> dict[str, str]:
    """open_lth parameter and buffer names -> the kit's, for the kit's network `network`."""
    if network.startswith("resnet"):
        return {n: n for n in open_lth_names}  # the kit's ResNet has open_lth's names
    if network.startswith("vgg"):
        out: dict[str, str] = {}
        # open_lth: layers[i] is a ConvModule (conv, bn) or a max-pool; the kit: features holds
        # conv, bn, relu per module and one max-pool: the k-th module's conv is features[3k + pools]
        modules = sorted({int(m.group(1)) for name in open_lth_names
                          if (m := re.match(r"^layers\.(\d+)\.(conv|bn)\.", name))})
        for name in open_lth_names:
            m = re.match(r"^layers\.(\d+)\.(conv|bn)\.(.+)$", name)
            if m:
                i, part, rest = int(m.group(1)), m.group(2), m.group(3)
                k = modules.index(i)
                pools = i - k  # the max-pools before layers[i]
                j = 3 * k + pools + (0 if part == "conv" else 1)
                out[name] = f"features.{j}.{rest}"
            else:
                out[name] = name  # fc.weight, fc.bias
        return out
    raise OpenLthError(f"model.arch: {network}: open_lth runs import onto the kit's ResNets "
                       f"(cifar_resnet_N) and VGGs (cifar_vgg_N) only")


def _mapped_state(path: Path, names: dict[str, str], template: dict[str, torch.Tensor],
                  network: str) -> dict[str, torch.Tensor]:
    """An open_lth state dict under the kit's names, every entry checked against the kit's."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    out = {}
    for name, value in state.items():
        kit = names.get(name)
        if kit is None or kit not in template:
            raise OpenLthError(f"{path}: {name!r} is no parameter or buffer of the kit's "
                               f"{network}: check model.arch, model.depth and model.width")
        if tuple(value.shape) != tuple(template[kit].shape):
            raise OpenLthError(f"{path}: {name} has shape {tuple(value.shape)}, the kit's "
                               f"{network} {tuple(template[kit].shape)}: check model.width")
        out[kit] = value.to(template[kit].dtype)
    missing = sorted(set(template) - set(out))
    if missing:
        raise OpenLthError(f"{path}: lacks {', '.join(missing[:4])} of the kit's {network}")
    return out


def _mask(path: Path, names: dict[str, str], prunable: list[str]) -> Mask:
    """open_lth's int mask as the kit's boolean one over the kit's prunable names."""
    raw = torch.load(path, map_location="cpu", weights_only=True)
    mask = {names.get(n, n): v.bool() for n, v in raw.items()}
    unknown = sorted(set(mask) - set(prunable))
    if unknown:
        raise OpenLthError(f"{path}: masks {', '.join(unknown[:4])}, which the kit does not "
                           f"prune: set model.prunable to open_lth's pruned layers")
    return {n: mask[n] for n in prunable if n in mask}


def import_open_lth(folder: Path, params: Params) -> RunStore:
    """Import the open_lth replicate `folder` as the run folder of `params` (see the module doc);
    returns its store. Every file is read and checked before anything is written; a run folder
    that exists must have been made with the same parameters, and a rerun resumes."""
    folder = Path(folder)
    levels = open_lth_levels(folder)
    if params.imp.levels != levels[-1]:
        raise OpenLthError(f"imp.levels is {params.imp.levels}, the open_lth run has "
                           f"{levels[-1]} levels after level 0: set imp.levels: {levels[-1]}")
    template_model = model_from(params.model, params.data.name)
    template = template_model.state_dict()
    prunable = prunable_names(template_model)
    network = params.model.network
    level0 = _steps(folder / "level_0" / "main")
    if not level0 or level0[0][:2] != (0, 0):
        raise OpenLthError(f"{folder / 'level_0' / 'main'}: no model_ep0_it0.pth (the "
                           f"initialization)")
    names = kit_names(list(torch.load(level0[0][2], map_location="cpu",
                                      weights_only=True)), network)
    k = params.imp.rewind_iteration
    per_epoch = iterations_per_epoch(known_train_size(params.data.name, params.data.train_size),
                                     params.train.batch_size)
    rewind_at = [p for e, i, p in level0 if e * per_epoch + i == k]
    if k and not rewind_at:
        raise OpenLthError(f"{folder / 'level_0' / 'main'}: no state at iteration {k} "
                           f"(imp.rewind_iteration; {per_epoch} iterations per epoch): set "
                           f"imp.rewind_iteration to the run's rewinding step")
    read = lambda path: _mapped_state(path, names, template, network)  # noqa: E731
    for level in levels:  # first every check, so that a refused import writes nothing
        _level(folder, level, read, names, template, prunable)
    init = read(level0[0][2])
    rewind = read(rewind_at[0]) if k else init
    ctx = open_run(params, create=True)
    save_tensors(ctx.store.path("imp", "init.pt"), init)
    save_tensors(ctx.store.path("imp", "rewind.pt"), rewind)
    imp = ImpResults(ctx.store)
    for level in levels:
        files = imp.level(level)
        if files.done():
            continue  # imported before: a rerun resumes
        final, mask = _level(folder, level, read, names, template, prunable)
        save_tensors(files.mask_file, mask)
        model: nn.Module = ctx.new_model()
        model.load_state_dict(final)
        finish_solution(ctx, files, model, tag=f"open_lth/level_{level:02d}", mask=mask,
                        history=[], cfg=params.train, start_iteration=0 if level == 0 else k)
    return ctx.store


def _level(folder: Path, level: int, read, names: dict[str, str], template: dict,
           prunable: list[str]) -> tuple[dict[str, torch.Tensor], Mask]:
    """Level `level`'s solution (its last saved step) and mask, checked: pruned weights zero."""
    main = folder / f"level_{level}" / "main"
    steps = _steps(main)
    if not steps:
        raise OpenLthError(f"{main}: no model_ep<E>_it<I>.pth: the level did not finish")
    final = read(steps[-1][2])
    given = _mask(main / "mask.pth", names, prunable) if (main / "mask.pth").exists() else {}
    mask = {n: given.get(n, torch.ones_like(template[n], dtype=torch.bool)) for n in prunable}
    for n, m in mask.items():
        if m.shape != template[n].shape:
            raise OpenLthError(f"{main / 'mask.pth'}: the mask of {n} has shape "
                               f"{tuple(m.shape)}, the kit's {tuple(template[n].shape)}")
        if torch.count_nonzero(final[n][~m]):
            raise OpenLthError(f"{steps[-1][2]}: {n} has nonzero weights where "
                               f"{main / 'mask.pth'} prunes them: not a solution of that mask")
    return final, mask


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lthkit-import-open-lth",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="an open_lth replicate folder "
                        "(lottery_<hash>/replicate_<r>)")
    parser.add_argument("--params", required=True, help="the parameter YAML of the run: its "
                        "data, model (the open_lth network), train, imp")
    parser.add_argument("--name", help="run.name of the run folder it becomes")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key")
    args = parser.parse_args(argv)
    try:
        overrides = parse_overrides(args.set)
        if args.name:
            overrides["run.name"] = args.name
        params = load_params(args.params, overrides)
        with lock_run_folder(params.run_dir()):  # one writer per run folder, before its manifest
            store = import_open_lth(Path(args.folder), params)
    except (OpenLthError, ParamsError, FileNotFoundError, RunFolderBusyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"imported {args.folder} into {store.root}: run notebooks 03-09 on it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
