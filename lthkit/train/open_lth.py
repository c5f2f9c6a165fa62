"""Finished open_lth runs as run folders of the kit, without retraining.

An open_lth replicate folder (lthkit.train.open_lth_run reads its layout, steps and
hyperparameters) becomes imp/ of a run folder: W_init (level_pretrain's or level 0's
model_ep0_it0.pth), W_rewind (the state at the rewind step, open_lth's --rewinding_steps), and per
level its mask and its last saved step as W_min(L). The import maps open_lth's parameter names
onto the kit's networks (`cifar_resnet_N[_W]` has the kit's ResNet names; `cifar_vgg_N`'s
`layers.<i>.conv` / `layers.<i>.bn` become the kit's `features.<j>`), checks every file (shapes,
masks nested level to level, pruned weights zero, each level's start state the masked rewind
state), compares the parameter file with the run's hparams.log, measures each solution on the
run's data as notebook 01 does beside what open_lth's logger measured, and records the source and
the hash of its initialization (imp/open_lth.json), so that no other run is ever imported into
the folder. Baselines are not imported (notebook 02 trains them when asked).

    lthkit-import-open-lth <open_lth replicate folder> --name my_run     # writes params/my_run.yaml
    lthkit-import-open-lth <open_lth replicate folder> --params params/my_run.yaml
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from lthkit.config import Params, ParamsError, load_params, params_from_dict, parse_overrides
from lthkit.config.base import project_root
from lthkit.config.catalog import known_train_size
from lthkit.nets.models import model_from, prunable_names
from lthkit.nets.pruning import Mask
from lthkit.platform.errors import first_line
from lthkit.store import (DamagedFileError, RunFolderBusyError, RunMismatchError, RunStore,
                          StorageError, atomic_write_bytes, load_json, load_tensors,
                          lock_run_folder, save_json, save_tensors)
from lthkit.train.context import open_run
from lthkit.train.imp import ImpResults, finish_solution
from lthkit.train.open_lth_run import (Expected, OpenLthError, OpenLthRun, disagreements,
                                       expected_params, open_lth_levels, params_yaml, read_run,
                                       saved_steps)

__all__ = ["import_open_lth", "OpenLthError", "open_lth_levels", "kit_names", "write_params",
           "main"]

State = dict[str, torch.Tensor]
RECORD = "open_lth.json"  # imp/open_lth.json: where the import came from


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


def _names_of(state: State) -> dict[str, str]:
    """open_lth's names of `state` -> the kit's, for the family its names show."""
    return kit_names(list(state), "resnet" if any(n.startswith("blocks.") for n in state)
                     else "vgg")


def _architecture(state: State, path: Path) -> dict[str, Any]:
    """model.arch, model.depth and model.width of open_lth's weights, read off their names and
    shapes (what to compare when the run has no hparams.log)."""
    blocks = {int(m.group(1)) for n in state if (m := re.match(r"^blocks\.(\d+)\.", n))}
    convs = [n for n in state if re.match(r"^layers\.\d+\.conv\.weight$", n)]
    source = f"the weights of {path.name}"
    if blocks and "conv.weight" in state:
        return {"model.arch": ("resnet", source),
                "model.depth": (6 * (len(blocks) // 3) + 2, f"{len(blocks)} blocks in {path.name}"),
                "model.width": (int(state["conv.weight"].shape[0]), f"conv.weight of {path.name}")}
    if convs:
        first = state[convs[0]]
        return {"model.arch": ("vgg", source),
                "model.depth": (len(convs) + 3, f"{len(convs)} convolutions in {path.name}"),
                "model.width": (int(first.shape[0]), f"{convs[0]} of {path.name}")}
    raise OpenLthError(f"{path}: neither open_lth's cifar_resnet (blocks.<i>.*) nor its cifar_vgg "
                       f"(layers.<i>.conv.*): the kit imports those two only")


def _load(path: Path) -> dict[str, torch.Tensor]:
    """One of open_lth's .pth files (tensors only); a damaged one named in one line."""
    if not path.is_file():
        raise OpenLthError(f"{path}: no such file: copy the whole open_lth replicate folder")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as e:  # torch's zip reader and unpickler say it in their own words
        raise OpenLthError(f"{path}: cannot be read ({first_line(e, 160)}): a damaged or cut-short "
                           f"copy; copy it again from the open_lth run") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise OpenLthError(f"{path}: not a state dict of tensors (open_lth's model_*.pth and "
                           f"mask.pth are)")
    return state


class _Network:
    """The kit's network of the parameter file, with open_lth's names mapped onto it."""

    def __init__(self, params: Params, init_state: State):
        model = model_from(params.model, params.data.name)
        self.params, self.template = params, model.state_dict()
        self.prunable = prunable_names(model)
        self.network = params.model.network
        self.names = _names_of(init_state)

    def state(self, path: Path) -> State:
        """An open_lth state dict under the kit's names, every entry checked against the kit's."""
        out = {}
        for name, value in _load(path).items():
            kit = self.names.get(name)
            if kit is None or kit not in self.template:
                raise OpenLthError(f"{path}: {name!r} is no parameter or buffer of the kit's "
                                   f"{self.network}: check model.arch and model.depth")
            if tuple(value.shape) != tuple(self.template[kit].shape):
                raise OpenLthError(f"{path}: {name} has shape {tuple(value.shape)}, the kit's "
                                   f"{self.network} {tuple(self.template[kit].shape)}: check "
                                   f"model.width")
            out[kit] = value.to(self.template[kit].dtype)
        missing = sorted(set(self.template) - set(out))
        if missing:
            raise OpenLthError(f"{path}: lacks {', '.join(missing[:4])} of the kit's "
                               f"{self.network}")
        return out

    def mask(self, path: Path) -> Mask:
        """open_lth's int mask as the kit's boolean one over the kit's prunable names; a layer
        open_lth keeps whole (pruning_layers_to_ignore) may be in it as all ones."""
        if not path.is_file():
            raise OpenLthError(f"{path}: no mask.pth (open_lth writes one per level): copy the "
                               f"whole level folder; a level without its mask cannot be imported")
        raw = _load(path)
        mask = {self.names.get(n, n): v for n, v in raw.items()}
        for name, m in mask.items():
            if not bool(((m == 0) | (m == 1)).all()):
                raise OpenLthError(f"{path}: {name} holds values other than 0 and 1: not a mask")
        extra = sorted(n for n in set(mask) - set(self.prunable) if not bool(mask[n].all()))
        if extra:
            raise OpenLthError(f"{path}: prunes {', '.join(extra[:4])}, which the kit does not "
                               f"prune: set model.prunable / model.not_prunable to open_lth's "
                               f"pruned layers")
        absent = [n for n in self.prunable if n not in mask]
        if absent:
            raise OpenLthError(f"{path}: has no mask of {', '.join(absent[:4])}, which the kit "
                               f"prunes: set model.not_prunable to the layers open_lth kept whole")
        out = {n: mask[n].bool() for n in self.prunable}
        for n, m in out.items():
            if m.shape != self.template[n].shape:
                raise OpenLthError(f"{path}: the mask of {n} has shape {tuple(m.shape)}, the "
                                   f"kit's {tuple(self.template[n].shape)}")
        return out


# --- checks ------------------------------------------------------------------------------------

def _check_params(params: Params, expected: Expected) -> None:
    problems = disagreements(params, expected)
    if problems:
        raise OpenLthError(f"{params.source} disagrees with the open_lth run: "
                           f"{'; '.join(problems)}: set them as the run has them (or import "
                           f"with --name and no --params: the import writes the file)")


def _steps_of(run: OpenLthRun, level: int) -> tuple[Path, Path | None]:
    """(the level's last saved state, the state it started from when saved)."""
    main = run.main(level)
    steps = saved_steps(main)
    start = run.rewind_step or (0, 0)
    last = [p for e, i, p in steps if run.iteration((e, i)) > run.iteration(start)]
    if not last:
        raise OpenLthError(f"{main}: no state saved after the start step ep{start[0]}_it{start[1]}"
                           f": the level did not finish")
    first = [p for e, i, p in steps if (e, i) == start]
    return last[-1], (first[0] if first else None)


def _check_level(run: OpenLthRun, level: int, net: _Network, rewind: State,
                 previous: Mask | None) -> tuple[State, Mask, Path]:
    """Level `level`'s solution and mask, checked: nested in the previous level's mask, pruned
    weights zero, its start state the masked rewind state."""
    main = run.main(level)
    final_file, start_file = _steps_of(run, level)
    mask = net.mask(main / "mask.pth")
    if previous is not None:
        grown = [n for n in mask if bool((mask[n] & ~previous[n]).any())]
        if grown:
            raise OpenLthError(f"{main / 'mask.pth'}: keeps weights of {', '.join(grown[:3])} "
                               f"that level {level - 1} pruned: not nested in level "
                               f"{level - 1}'s mask; the levels come from different runs")
    final = net.state(final_file)
    for n, m in mask.items():
        if torch.count_nonzero(final[n][~m]):
            raise OpenLthError(f"{final_file}: {n} has nonzero weights where "
                               f"{main / 'mask.pth'} prunes them: not a solution of that mask")
    if start_file is not None:
        start = net.state(start_file)
        masked = {n: rewind[n] * mask[n] if n in mask else rewind[n] for n in rewind}
        differ = [n for n in masked if not torch.equal(start[n], masked[n])]
        if differ:
            what = "rewind state" if run.rewind_step else "initialization"
            raise OpenLthError(f"{start_file}: is not the {what} under level {level}'s mask "
                               f"({', '.join(differ[:3])} differ): the levels come from "
                               f"different runs")
    return final, mask, final_file


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_source(params: Params, run: OpenLthRun, init: State, init_sha: str) -> None:
    """Refuse a run folder that holds another run: another open_lth run (its initialization's
    hash differs) or a run the kit trained."""
    imp = params.run_dir() / "imp"
    record, init_file = imp / RECORD, imp / "init.pt"
    use = f"import {run.folder} under a run name of its own (--name)"
    if record.exists():
        old = load_json(record)
        if old.get("init_sha256") != init_sha:
            raise OpenLthError(f"the run folder {params.run_dir()} holds the open_lth run "
                               f"{old.get('source')}, whose initialization differs: {use}")
    elif init_file.exists():
        old_init = load_tensors(init_file)
        if old_init.keys() != init.keys() or not all(torch.equal(old_init[n], init[n])
                                                     for n in init):
            raise OpenLthError(f"the run folder {params.run_dir()} holds a run the kit trained "
                               f"(another initialization): {use}")


# --- the import --------------------------------------------------------------------------------

def import_open_lth(folder: Path, params: Params) -> RunStore:
    """Import the open_lth replicate `folder` as the run folder of `params` (see the module doc);
    returns its store. Every file is read and checked before anything is written; a run folder
    that exists must hold this run, made with the same parameters, and a rerun resumes."""
    train_size = known_train_size(params.data.name, params.data.train_size)
    run = read_run(Path(folder), fallback=(train_size, params.train.batch_size))
    init_state = _load(run.init_file)
    net = _Network(params, init_state)
    expected = _expected(run, init_state, net.names)
    _check_params(params, expected)
    init = net.state(run.init_file)
    rewind = net.state(run.rewind_file) if run.rewind_file else init
    previous = None
    for level in run.levels:  # first every check, so that a refused import writes nothing
        _, previous, _ = _check_level(run, level, net, rewind, previous)
    init_sha = _sha256(run.init_file)
    _check_source(params, run, init, init_sha)
    ctx = open_run(params, create=True)
    save_tensors(ctx.store.path("imp", "init.pt"), init)
    save_tensors(ctx.store.path("imp", "rewind.pt"), rewind)
    save_json(ctx.store.path("imp", RECORD), _record(run, expected, init_sha))
    imp = ImpResults(ctx.store)
    previous = None
    for level in run.levels:
        final, mask, final_file = _check_level(run, level, net, rewind, previous)
        previous = mask
        files = imp.level(level)
        if files.done():
            _same_level(files.metrics(), final_file, level)
            continue  # imported before: a rerun resumes
        save_tensors(files.mask_file, mask)
        model = ctx.new_model()
        model.load_state_dict(final)
        history, measured = _logged(run, level, final_file)
        finish_solution(ctx, files, model, tag=f"open_lth/level_{level:02d}", mask=mask,
                        history=history, cfg=params.train,
                        start_iteration=run.rewind_iteration if level else 0,
                        seconds=_seconds(run, level, final_file), extra={"open_lth": measured})
    return ctx.store


def _expected(run: OpenLthRun, init_state: State, names: dict[str, str]) -> Expected:
    """The parameters the run implies: its hparams.log, else what its weights show."""
    expected = expected_params(run, rename=lambda n: names.get(n, n))
    for key, value in _architecture(init_state, run.init_file).items():
        expected.values.setdefault(key, value)
    return expected


def _record(run: OpenLthRun, expected: Expected, init_sha: str) -> dict[str, Any]:
    step = run.rewind_step
    return {"source": str(run.folder.resolve()), "init_file": str(run.init_file.relative_to(
        run.folder)), "init_sha256": init_sha,
        "rewind_step": None if step is None else f"ep{step[0]}_it{step[1]}",
        "rewind_iteration": run.rewind_iteration, "iterations_per_epoch": run.per_epoch,
        "iterations_per_epoch_from": run.per_epoch_from, "hparams": run.hparams,
        "not_reproduced": expected.notes}


def _same_level(metrics: dict, final_file: Path, level: int) -> None:
    """A level imported before must have come from the same file."""
    recorded = metrics.get("final", {}).get("open_lth", {}).get("file_sha256")
    if recorded and recorded != _sha256(final_file):
        raise OpenLthError(f"{final_file}: level {level} of the run folder was imported from "
                           f"another file: import this run under a run name of its own (--name)")


def _logged(run: OpenLthRun, level: int, final_file: Path) -> tuple[list[dict], dict]:
    """open_lth's logger of a level as the kit's history (one entry per evaluated step), and
    what it measured at the level's last step."""
    logged = run.logger(level)
    per_epoch = run.per_epoch or 1
    names = {"test_loss": "test_loss", "test_accuracy": "test_acc", "train_loss": "train_loss",
             "train_accuracy": "train_acc"}
    history: dict[int, dict] = {}
    for name, values in logged.items():
        if name in names:
            for it, value in values.items():
                history.setdefault(it, {"epoch": it / per_epoch, "iteration": it,
                                        "source": "open_lth logger"})[names[name]] = value
    entries = [history[it] for it in sorted(history)]
    measured = {"file": str(final_file.relative_to(run.folder)),
                "file_sha256": _sha256(final_file)}
    if entries:
        last = entries[-1]
        measured.update({k: last[k] for k in ("iteration", "test_loss", "test_acc", "train_loss",
                                              "train_acc") if k in last})
    return entries, measured


def _seconds(run: OpenLthRun, level: int, final_file: Path) -> float:
    """How long open_lth trained the level, from its files' times (its first state and its last
    are saved at the start and at the end); 0 where they tell nothing."""
    main = run.main(level)
    files = [p for p in main.iterdir() if p.name.startswith("model_")]
    start = min(p.stat().st_mtime for p in files)
    return max(0.0, final_file.stat().st_mtime - start)


# --- a parameter file from the run -------------------------------------------------------------

def write_params(folder: Path, name: str, overrides: dict[str, Any]) -> Path:
    """params/<name>.yaml of the project, written from the open_lth run's hparams.log (and the
    overrides, --set), checked; a file of that name that says something else is refused."""
    run = read_run(Path(folder))
    init_state = _load(run.init_file)
    expected = _expected(run, init_state, _names_of(init_state))
    given = {"run.name": name, **overrides}
    text = params_yaml(run, expected, given)
    path = project_root() / "params" / f"{name}.yaml"
    _checked(text, path)
    if path.exists():
        if path.read_text() != text:
            raise OpenLthError(f"{path} exists and says something else: import with --params "
                               f"{path} (your edits stay), or choose another --name")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, lambda f: f.write(text), mode="w")
    for note in expected.notes:
        print(f"note: {note}", file=sys.stderr)
    return path


def _checked(text: str, path: Path) -> Params:
    """The parameters a written file holds, validated as any parameter file is."""
    return params_from_dict(yaml.safe_load(text), source=str(path))


# --- the command ---------------------------------------------------------------------------------

def _one_line(error: Exception) -> str:
    """A multi-line message (a RunMismatchError's list of keys) on one line."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lthkit-import-open-lth",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="an open_lth replicate folder "
                        "(lottery_<hash>/replicate_<r>)")
    parser.add_argument("--params", help="the parameter YAML of the run: its data, model (the "
                        "open_lth network), train, imp; none: params/<name>.yaml is written "
                        "from the run's hparams.log")
    parser.add_argument("--name", help="run.name of the run folder it becomes")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        overrides = parse_overrides(args.set)
        if args.params is None:
            if not args.name:
                raise OpenLthError("give --name (the run folder's name: the import writes "
                                   "params/<name>.yaml from the run) or --params")
            params_file = write_params(Path(args.folder), args.name, overrides)
            print(f"wrote {params_file} from {args.folder}: edit it freely; the import refuses "
                  f"it where it disagrees with the run")
            overrides = {}
        else:
            params_file = args.params
        if args.name:
            overrides["run.name"] = args.name
        params = load_params(params_file, overrides)
        with lock_run_folder(params.run_dir()):  # one writer per run folder, before its manifest
            store = import_open_lth(Path(args.folder), params)
    except (OpenLthError, ParamsError, FileNotFoundError, RunMismatchError, DamagedFileError,
            StorageError, RunFolderBusyError) as e:
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 1
    print(f"imported {args.folder} into {store.root}: run notebooks 03-09 on it "
          f"(lthkit-report {params_file})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
