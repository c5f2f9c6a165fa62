"""What an open_lth replicate folder says about its run, before any weights are read: its levels,
where its initialization and rewind state lie, how it counts steps, its hyperparameters
(`level_0/main/hparams.log`) as the kit's parameters, and what its logger measured.

open_lth (facebookresearch/open_lth) keeps a lottery run's replicate as

    level_pretrain/main/model_ep0_it0.pth, model_ep<E>_it<I>.pth   with --rewinding_steps: the
                                          initialization and the state at the rewind step
    level_<L>/main/model_ep<E>_it<I>.pth  the state each level starts from (the masked rewind
                                          state, or the masked initialization) and its last step
    level_<L>/main/mask.pth               the mask level L trained with (int)
    level_<L>/main/logger                 test loss and accuracy per evaluated step
    level_0/main/hparams.log              the run's hyperparameters

open_lth counts ceil(N / batch) iterations per epoch (it keeps the last partial batch); its step
ep<E>_it<I> is iteration E * that + I, read here as open_lth counts it.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lthkit.config import Params, flatten
from lthkit.config.catalog import SPLIT_SIZES
from lthkit.nets.models import DEFAULT_WIDTH, model_from, prunable_names

__all__ = ["OpenLthError", "OpenLthRun", "read_run", "parse_hparams", "open_lth_levels",
           "expected_params", "disagreements", "params_yaml", "STEP"]

STEP = re.compile(r"^model_ep(\d+)_it(\d+)\.pth$")
LEVEL = re.compile(r"^level_(\d+)$")
PRETRAIN = "level_pretrain"
SECTIONS = {"Dataset Hyperparameters": "dataset", "Model Hyperparameters": "model",
            "Training Hyperparameters": "training", "Pruning Hyperparameters": "pruning",
            "Hyperparameters for Sparse Global Pruning": "pruning",
            "Pretraining Dataset Hyperparameters": "pretrain_dataset",
            "Pretraining Training Hyperparameters": "pretrain_training"}
# How open_lth normalizes each dataset (datasets/<name>.py), as the kit's data.normalization
OPEN_LTH_NORMALIZATION = {"cifar10": "imagenet", "mnist": "dataset"}
# Hyperparameters the kit does not reproduce: they change how open_lth trained, not what is
# imported, but notebook 02's baselines train without them.
NOT_REPRODUCED = {("training", "warmup_steps"): "the kit trains without learning-rate warmup",
                  ("training", "apex_fp16"): "the kit trains in fp32 (bf16 on CUDA)",
                  ("dataset", "subsample_fraction"): "the kit measures on the whole training set",
                  ("dataset", "random_labels_fraction"): "the kit keeps the true labels",
                  ("dataset", "unsupervised_labels"): "the kit keeps the true labels",
                  ("dataset", "blur_factor"): "the kit does not blur",
                  ("model", "batchnorm_frozen"): "the kit trains BatchNorm",
                  ("model", "output_frozen"): "the kit trains the output layer",
                  ("model", "others_frozen"): "the kit trains every layer"}


class OpenLthError(ValueError):
    """An open_lth folder that cannot be imported as it is, with the file and what to do."""


Step = tuple[int, int]  # (epoch, iteration in the epoch), as in open_lth's file names


@dataclass
class OpenLthRun:
    """One open_lth replicate folder, read (no weights yet)."""

    folder: Path
    levels: list[int]
    init_file: Path
    rewind_step: Step | None  # None: no rewinding (levels restart from the initialization)
    rewind_file: Path | None
    hparams: dict[str, dict[str, str]]  # section -> name -> value as hparams.log writes it
    per_epoch: int  # open_lth's iterations per epoch
    per_epoch_from: str  # how per_epoch was found, for messages

    @property
    def rewind_iteration(self) -> int:
        """k as open_lth counts it (0 without rewinding)."""
        return 0 if self.rewind_step is None else self.iteration(self.rewind_step)

    def iteration(self, step: Step) -> int:
        return step[0] * self.per_epoch + step[1]

    def main(self, level: int | str) -> Path:
        return self.folder / f"level_{level}" / "main"

    def steps(self, level: int | str) -> list[tuple[int, int, Path]]:
        return saved_steps(self.main(level))

    def logger(self, level: int) -> dict[str, dict[int, float]]:
        """open_lth's logger of a level: name -> {iteration: value}; {} when it has none."""
        return read_logger(self.main(level) / "logger")


def saved_steps(main: Path) -> list[tuple[int, int, Path]]:
    """(epoch, iteration, file) of every saved state of one level, in training order."""
    if not main.is_dir():
        return []
    return sorted((int(m.group(1)), int(m.group(2)), p) for p in main.iterdir()
                  if (m := STEP.match(p.name)))


def open_lth_levels(folder: Path) -> list[int]:
    """The levels of an open_lth replicate folder, in order; an error when they have gaps."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OpenLthError(f"{folder}: no such folder: give an open_lth replicate folder "
                           f"(lottery_<hash>/replicate_<r>)")
    levels = sorted(int(m.group(1)) for p in folder.iterdir()
                    if (m := LEVEL.match(p.name)) and (p / "main").is_dir())
    if not levels:
        inside = sorted(folder.glob("replicate_*"))
        hint = f" (it holds {inside[0].name}: give that)" if inside else ""
        raise OpenLthError(f"{folder}: no level_<L>/main/ folders: give an open_lth replicate "
                           f"folder (lottery_<hash>/replicate_<r>){hint}")
    if levels != list(range(len(levels))):
        raise OpenLthError(f"{folder}: levels {levels} have gaps: levels 0..L are needed")
    return levels


def parse_hparams(text: str, path: Path) -> dict[str, dict[str, str]]:
    """hparams.log (section titles, then `    * name => value` lines) as section -> name ->
    value."""
    out: dict[str, dict[str, str]] = {}
    section: dict[str, str] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        item = re.match(r"^\s+\* (\w+) => (.*)$", line)
        if item and section is not None:
            section[item.group(1)] = item.group(2).strip()
        elif not line[0].isspace():
            section = out.setdefault(SECTIONS.get(line.strip(), line.strip()), {})
        else:
            raise OpenLthError(f"{path}, line {number}: not open_lth's hparams.log "
                               f"('    * name => value' under a section title): {line.strip()!r}")
    return out


def read_logger(path: Path) -> dict[str, dict[int, float]]:
    """open_lth's logger file (name,iteration,value rows); {} when there is none."""
    if not path.is_file():
        return {}
    out: dict[str, dict[int, float]] = {}
    for number, row in enumerate(path.read_text().splitlines(), 1):
        if not row.strip():
            continue
        try:
            name, iteration, value = row.split(",")
            out.setdefault(name, {})[int(iteration)] = float(value)
        except ValueError:
            raise OpenLthError(f"{path}, line {number}: not open_lth's logger "
                               f"(name,iteration,value): {row!r}") from None
    return out


def read_run(folder: Path, fallback: tuple[int, int] | None = None) -> OpenLthRun:
    """The layout, hyperparameters and step count of an open_lth replicate folder, checked.

    `fallback` (training examples, batch size: the parameter file's) counts iterations per epoch
    as open_lth does, ceil(N / batch), when neither a logger nor hparams.log tells it."""
    folder = Path(folder)
    levels = open_lth_levels(folder)
    hparams_file = folder / "level_0" / "main" / "hparams.log"
    hparams = parse_hparams(hparams_file.read_text(), hparams_file) if hparams_file.is_file() \
        else {}
    pretrain = saved_steps(folder / PRETRAIN / "main")
    if pretrain:
        if pretrain[0][:2] != (0, 0) or len(pretrain) < 2:
            raise OpenLthError(f"{folder / PRETRAIN / 'main'}: needs model_ep0_it0.pth (the "
                               f"initialization) and the state at the rewind step: the "
                               f"pretraining did not finish")
        _same_pretraining(hparams, hparams_file)
        init_file, rewind_step, rewind_file = pretrain[0][2], pretrain[-1][:2], pretrain[-1][2]
    else:
        level0 = saved_steps(folder / "level_0" / "main")
        if not level0 or level0[0][:2] != (0, 0):
            raise OpenLthError(f"{folder}: no model_ep0_it0.pth (the initialization) in "
                               f"level_0/main/ nor in {PRETRAIN}/main/ (where open_lth keeps it "
                               f"for a run with --rewinding_steps): copy the whole replicate "
                               f"folder")
        init_file, rewind_step, rewind_file = level0[0][2], None, None
    per_epoch, how = _iterations_per_epoch(folder, levels, hparams, fallback)
    if not per_epoch and rewind_step is not None:
        raise OpenLthError(f"{folder}: cannot count open_lth's iterations per epoch (no logger, "
                           f"no hparams.log) to place the rewind step ep{rewind_step[0]}_it"
                           f"{rewind_step[1]}: give the parameter file (--params)")
    return OpenLthRun(folder=folder, levels=levels, init_file=init_file, rewind_step=rewind_step,
                      rewind_file=rewind_file, hparams=hparams, per_epoch=per_epoch,
                      per_epoch_from=how)


def _same_pretraining(hparams: dict[str, dict[str, str]], path: Path) -> None:
    """open_lth's --rewinding_steps pretrains with the run's own data and schedule; --pretrain may
    use others, which the kit's rewinding cannot stand for."""
    if not hparams:
        return
    for main, pre in (("dataset", "pretrain_dataset"), ("training", "pretrain_training")):
        a = {k: v for k, v in hparams.get(main, {}).items() if k != "training_steps"}
        b = {k: v for k, v in hparams.get(pre, {}).items() if k != "training_steps"}
        if a != b:
            differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            raise OpenLthError(f"{path}: the pretraining ({pre}) differs from the run's own "
                               f"({', '.join(differ)}): only runs made with --rewinding_steps "
                               f"(pretraining = the run's first steps) import as IMP with "
                               f"rewinding")


def _iterations_per_epoch(folder: Path, levels: list[int], hparams: dict,
                          fallback: tuple[int, int] | None) -> tuple[int, str]:
    """open_lth's iterations per epoch: from a level's logger (its last evaluation is at its last
    saved step ep<E>_it<I>), else ceil(N / batch) as open_lth counts."""
    for level in levels:
        main = folder / f"level_{level}" / "main"
        steps, logged = saved_steps(main), read_logger(main / "logger")
        last = max((max(v) for v in logged.values() if v), default=None)
        if steps and last is not None and steps[-1][0] > 0:
            epoch, it = steps[-1][:2]
            if (last - it) % epoch == 0 and last >= it:
                return (last - it) // epoch, f"{main / 'logger'}: iteration {last} at " \
                                             f"{steps[-1][2].name}"
    batch = hparams.get("dataset", {}).get("batch_size")
    dataset = hparams.get("dataset", {}).get("dataset_name")
    n = SPLIT_SIZES.get(dataset, (None,))[0] if dataset else None
    if fallback is not None:
        n, batch = fallback[0], batch or fallback[1]
    if batch is None or n is None:
        return 0, "unknown: no logger and no hparams.log"
    return math.ceil(n / int(batch)), f"ceil({n} / {batch}) (open_lth keeps the last partial batch)"


# --- hyperparameters as the kit's parameters ------------------------------------------------------

def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def _epochs(step: str, per_epoch: int, what: str) -> int | None:
    """A step string of open_lth ('160ep', '2000it', '1ep5it') in whole epochs; None when it is
    not a whole number of epochs (or open_lth's count is unknown)."""
    m = re.fullmatch(r"(?:(\d+)ep)?(?:(\d+)it)?", step.strip())
    if not m or not step.strip():
        raise OpenLthError(f"{what}: {step!r} is not an open_lth step (160ep, 2000it, 1ep5it)")
    epochs, its = int(m.group(1) or 0), int(m.group(2) or 0)
    if its == 0:
        return epochs
    if per_epoch and its % per_epoch == 0:
        return epochs + its // per_epoch
    return None


def model_keys(model_name: str) -> dict[str, Any]:
    """open_lth's model_name as the kit's model keys: cifar_resnet_N[_W] -> resnet of depth N,
    width W (16); cifar_vgg_N[_W] -> vgg of depth N, width W (64)."""
    m = re.fullmatch(r"cifar_(resnet|vgg)_(\d+)(?:_(\d+))?", model_name)
    if not m:
        raise OpenLthError(f"model_name {model_name}: open_lth runs import onto the kit's ResNets "
                           f"(cifar_resnet_N[_W]) and VGGs (cifar_vgg_N) only")
    arch, depth = m.group(1), int(m.group(2))
    width = int(m.group(3)) if m.group(3) else {"resnet": 16, "vgg": 64}[arch]
    return {"model.arch": arch, "model.depth": depth, "model.width": width}


@dataclass
class Expected:
    """The kit's parameters an open_lth run implies: key -> (value, where it comes from)."""

    values: dict[str, tuple[Any, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the kit does not reproduce

    def set(self, key: str, value: Any, source: str) -> None:
        self.values[key] = (value, source)


def expected_params(run: OpenLthRun, rename=lambda name: name) -> Expected:
    """What the run's hparams.log and layout say the kit's parameters are (`rename`: open_lth's
    parameter names -> the kit's)."""
    out = Expected()
    out.set("imp.levels", run.levels[-1], f"level_0..level_{run.levels[-1]}")
    step = "no rewinding" if run.rewind_step is None else \
        f"{PRETRAIN}/main/model_ep{run.rewind_step[0]}_it{run.rewind_step[1]}.pth"
    out.set("imp.rewind_iteration", run.rewind_iteration,
            f"{step}; {run.per_epoch} iterations per epoch as open_lth counts them")
    h = run.hparams
    if not h:
        return out
    d, m, t, p = (h.get(s, {}) for s in ("dataset", "model", "training", "pruning"))
    if "dataset_name" in d:
        name = d["dataset_name"]
        out.set("data.dataset", name, f"dataset_name => {name}")
        if name in OPEN_LTH_NORMALIZATION:
            out.set("data.normalization", OPEN_LTH_NORMALIZATION[name],
                    f"open_lth's datasets/{name}.py")
    if "batch_size" in d:
        out.set("train.batch_size", int(d["batch_size"]), f"batch_size => {d['batch_size']}")
    out.set("data.augment", d.get("do_not_augment") != "True",
            "do_not_augment => True" if d.get("do_not_augment") == "True" else
            "do_not_augment not set")
    if "model_name" in m:
        for key, value in model_keys(m["model_name"]).items():
            out.set(key, value, f"model_name => {m['model_name']}")
    _training_keys(out, t, run.per_epoch)
    _pruning_keys(out, p, rename)
    for (section, name), why in NOT_REPRODUCED.items():
        value = h.get(section, {}).get(name)
        if value not in (None, "False", "None"):
            out.notes.append(f"{name} => {value}: {why}")
    for section, name in (("model", "model_init"), ("model", "batchnorm_init")):
        value = h.get(section, {}).get(name)
        if value and value not in ("kaiming_normal", "fixed"):
            out.notes.append(f"{name} => {value}: the kit initializes new networks (notebook 02's "
                             f"random reinitialization) Kaiming-normal, BatchNorm at (1, 0)")
    return out


def _training_keys(out: Expected, t: dict[str, str], per_epoch: int) -> None:
    if "optimizer_name" in t:
        out.set("train.optimizer", t["optimizer_name"], f"optimizer_name => {t['optimizer_name']}")
    if "lr" in t:
        out.set("train.lr", float(t["lr"]), f"lr => {t['lr']}")
    if "training_steps" in t:
        epochs = _epochs(t["training_steps"], per_epoch, "training_steps")
        if epochs is None:
            out.notes.append(f"training_steps => {t['training_steps']}: not whole epochs; the "
                             f"kit trains whole epochs")
        else:
            out.set("train.epochs", epochs, f"training_steps => {t['training_steps']}")
    nesterov = float(t.get("nesterov_momentum") or 0)
    if t.get("optimizer_name", "sgd") == "sgd":
        momentum = float(t.get("momentum") or 0) or nesterov
        out.set("train.momentum", momentum, f"momentum => {t.get('momentum', 0)}"
                + (f", nesterov_momentum => {nesterov}" if nesterov else ""))
        out.set("train.nesterov", nesterov > 0, f"nesterov_momentum => {nesterov or 'not set'}")
    out.set("train.weight_decay", float(t.get("weight_decay") or 0),
            f"weight_decay => {t.get('weight_decay', 'not set')}")
    steps = [s for s in (t.get("milestone_steps") or "").split(",") if s.strip()]
    milestones = [_epochs(s, per_epoch, "milestone_steps") for s in steps]
    if None in milestones:
        out.notes.append(f"milestone_steps => {t['milestone_steps']}: not whole epochs; the kit "
                         f"drops the learning rate at epochs")
    else:
        out.set("train.milestones", milestones, f"milestone_steps => {t.get('milestone_steps')}")
        if milestones:
            out.set("train.gamma", float(t.get("gamma") or 0.1), f"gamma => {t.get('gamma')}")


def _pruning_keys(out: Expected, p: dict[str, str], rename) -> None:
    strategy = p.get("pruning_strategy")
    if strategy is None:
        return
    if strategy != "sparse_global":
        raise OpenLthError(f"pruning_strategy => {strategy}: the kit imports runs pruned by "
                           f"open_lth's sparse_global (imp.scope: global) only")
    out.set("imp.scope", "global", "pruning_strategy => sparse_global")
    if "pruning_fraction" in p:
        out.set("imp.prune_fraction", float(p["pruning_fraction"]),
                f"pruning_fraction => {p['pruning_fraction']}")
    ignored = [s for s in (p.get("pruning_layers_to_ignore") or "").split(",") if s.strip()]
    out.set("model.not_prunable", [rename(n) for n in ignored] or None,
            f"pruning_layers_to_ignore => {','.join(ignored) or 'not set'}")


def disagreements(params: Params, expected: Expected) -> list[str]:
    """'key: value in <file>, value in the open_lth run (where from)' for every key of `params`
    that differs from what the run says."""
    have = flatten(params.model_dump(include=set(SECTION_ORDER), mode="json"))
    network = re.fullmatch(r"([a-z]+?)(\d*)", params.model.network)
    have["model.arch"] = network.group(1) if network else params.model.arch
    have["model.depth"] = int(network.group(2)) if network and network.group(2) else None
    have["model.width"] = params.model.width or DEFAULT_WIDTH.get(have["model.arch"])
    out = []
    for key, (want, source) in expected.values.items():
        got = have.get(key)
        if key == "data.normalization":
            same = params.data.normalization_stats() == _stats(want, params)
            got = params.data.normalization if isinstance(params.data.normalization, str) \
                else _given_stats(params)
        elif key == "model.not_prunable":  # the layers pruned, however the file names them
            same = _pruned(params, params.model) == _pruned(params, params.model.model_copy(
                update={"prunable": None, "not_prunable": want}))
        elif isinstance(want, float) and isinstance(got, int | float):
            same = math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)
        else:
            same = got == want
        if not same:
            out.append(f"{key}: {got!r} in {params.source}, {want!r} in the open_lth run "
                       f"({source})")
    return out


def _pruned(params: Params, model) -> list[str]:
    """The parameters the kit prunes in the network a model section names."""
    return prunable_names(model_from(model, params.data.name))


def _stats(normalization: str, params: Params):
    """The (mean, std) a normalization name stands for on the parameters' dataset."""
    return params.data.model_copy(update={"normalization": normalization}).normalization_stats()


def _given_stats(params: Params) -> dict[str, list[float]]:
    n = params.data.normalization
    return {"mean": list(n.mean), "std": list(n.std)}


# --- the parameter file an import writes ----------------------------------------------------------

SECTION_ORDER = ("run", "data", "model", "train", "imp")


def params_yaml(run: OpenLthRun, expected: Expected, given: dict[str, Any]) -> str:
    """A parameter file for the run: the keys its hyperparameters fix (each with where it comes
    from), then `given` ({"run.name": ..., "data.root": ...}); every other key keeps the kit's
    default."""
    rows: dict[str, list[str]] = {s: [] for s in SECTION_ORDER}
    values = {k: v for k, (v, _) in expected.values.items()}
    comments = {k: c for k, (_, c) in expected.values.items()}
    values.setdefault("imp.save_every", 0)
    comments.setdefault("imp.save_every", "open_lth keeps no per-epoch weights")
    for key, value in given.items():
        values[key] = value
        comments[key] = comments.get(key, "given") if key in expected.values else "given"
    for key in sorted(values, key=lambda k: (SECTION_ORDER.index(k.split(".")[0]), k)):
        section, name = key.split(".", 1)
        text = yaml.safe_dump(values[key], default_flow_style=True, width=1000).strip()
        text = text.removesuffix("\n...").strip()
        line = f"  {name}: {text}"
        rows[section].append(f"{line:<34}  # {comments[key]}")
    head = [f"# The open_lth run {run.folder.resolve()}",
            "# as a parameter file of lthkit, written by lthkit-import-open-lth from its",
            "# level_0/main/hparams.log and its folders. The import refuses a file whose keys",
            "# below disagree with the run; edit anything else (every key not given keeps the",
            "# kit's default: `lthkit-params show` lists them)."]
    if expected.notes:
        head.append("# Not reproduced by the kit (notebook 02's baselines train without them):")
        head += [line for note in expected.notes
                 for line in textwrap.wrap(note, 96, initial_indent="#   ",
                                           subsequent_indent="#     ")]
    body = [f"{s}:\n" + "\n".join(rows[s]) for s in SECTION_ORDER if rows[s]]
    return "\n".join(head) + "\n" + "\n".join(body) + "\n"
