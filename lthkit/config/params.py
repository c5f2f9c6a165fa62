"""Parameter files: one YAML per preset, read into a validated, typed object (`Params`).

Every value a user may want to change lives in a section (lthkit.config.training, .analysis,
.report, .tickets), with its default and a one-line help string. A YAML names only what differs
from the defaults (the defaults are the paper's ResNet-20 recipe, see `../shared/REPRODUCTION.md`).
Reading is strict: an unknown key, a value of the wrong type or an impossible value stops with a
`ParamsError` that names the key and the file.

    lthkit-params show params/quick.yaml     # the full, resolved parameter set
    lthkit-params check params/*.yaml        # validate files, exit 1 on the first error
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import Field, ValidationError, model_validator

from lthkit.config.analysis import AnalysisSection, HessianSection, LandscapeSection
from lthkit.config.architectures import architecture
from lthkit.config.base import (LevelSelection, ParamsError, _check_level_list, _KeyError, _Section,
                                contained_run_dir, flatten, notebook_path, project_root,
                                resolve_params_file, resolve_path)
from lthkit.config.catalog import input_shape
from lthkit.config.report import ClaimsSection, ReportSection
from lthkit.config.tickets import BainSection, MnistSection
from lthkit.config.training import (BaselinesSection, DataSection, ImpSection, ModelSection,
                                    RunSection, TrainSection, _check_levels_fit, _check_rewind_fits)

__all__ = ["Params", "ParamsError", "load_params", "params_from_dict", "notebook_params",
           "project_root", "parse_overrides", "SECTIONS"]


def _cifar_shaped(arch: str) -> bool:
    """Whether `model.arch` is one of the kit's networks that expect CIFAR-shaped images."""
    spec = architecture(arch)
    return spec is not None and spec.cifar_shaped


def _check_plane_levels(p: "Params") -> None:
    """The plane of Fig 13 goes through IMP levels of this run; its baselines exist at one level."""
    lp = p.landscape
    if lp.plane_levels is not None:
        _check_level_list(lp.plane_levels, p.imp.levels, "landscape.plane_levels", minimum=0)
    level = lp.plane_baseline_level
    if level is not None:
        trained = p.levels(p.baselines.levels, minimum=1)
        if level not in trained:
            raise _KeyError("landscape.plane_baseline_level",
                            f"{level} is not a level the baselines are trained at "
                            f"(baselines.levels: {trained}; imp.levels = {p.imp.levels})")


SECTIONS: dict[str, type[_Section]] = {
    "run": RunSection,
    "data": DataSection,
    "model": ModelSection,
    "train": TrainSection,
    "imp": ImpSection,
    "baselines": BaselinesSection,
    "analysis": AnalysisSection,
    "hessian": HessianSection,
    "landscape": LandscapeSection,
    "report": ReportSection,
    "claims": ClaimsSection,
    "mnist": MnistSection,
    "bain": BainSection,
}

# Keys that do not change what a finished level holds: a run folder may be reused when only
# these differ (for example to add levels to a run, or to resume on another device).
EXTENDABLE_KEYS = frozenset({
    "run.device", "run.num_threads", "run.output_root", "run.replicates", "data.root", "data.download",
    "run.executor", "run.ray_address", "run.ray_gpus_per_task", "run.ray_cpus_per_task",
    "run.ray_max_retries", "run.deterministic",
    "train.eval_batch_size", "train.compile", "train.cuda_graphs", "imp.levels",
})
TRAINING_SECTIONS = ("run", "data", "model", "train", "imp")
# Training keys added after run folders were made, with the value that gives what such a folder
# holds: a manifest without the key reads as made with that value.
ADDED_TRAINING_KEYS: dict[str, Any] = {"data.normalization": "dataset"}


def completed_fingerprint(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """A recorded training fingerprint with the keys added since, at the values it was made
    with (ADDED_TRAINING_KEYS; a key given in parts, data.normalization.mean, is there)."""
    out = dict(fingerprint)
    for key, value in ADDED_TRAINING_KEYS.items():
        if not any(k == key or k.startswith(f"{key}.") for k in out):
            out[key] = value
    return out

# Analysis keys that change no cached number (lthkit.store's cache/), and why. Every other key of
# the analysis sections is part of the cache key of each result it changes, so that a result
# computed under other settings is never returned; tests/test_cache_keys.py walks them all.
RESULT_NEUTRAL_KEYS: dict[str, str] = {
    "analysis.levels": "chooses which levels are analysed; each level's results have keys of their own",
    "analysis.points_per_pass": "how many points share a pass: the same losses to fp32 rounding "
                                "(tests/test_points.py), like the device",
    "analysis.vmap": "a loop or one fused network over the points: the same losses to rounding",
    "hessian.ks_fig22": "read from the same top-k spectra",
    "hessian.batch_size": "the chunks a product is summed over: the same product to rounding",
    "hessian.hvp": "two ways of one Hessian-vector product, equal to rounding "
                   "(tests/test_hessian.py)",
    "hessian.reuse_graph": "keeps the first-order graph between products: the same products",
    "hessian.basis_device": "where the Lanczos basis is kept: the same arithmetic",
    "hessian.band_levels": "chooses the levels of Fig 16; each point has a key of its own",
    "hessian.sweep_fractions": "chooses the points of Result 3's sweep; each has a key of its own",
    "hessian.sweep_level": "chooses the level of Result 3's sweep; each point has a key of its own",
    "landscape.plane_levels": "chooses the plane's points; each plane's key names its points",
    "landscape.plane_baseline_level": "chooses the points projected on the plane; the key names them",
    "landscape.sublevel_loss": "the level drawn on the plane, not a computed number",
    "landscape.surface_sweep": "chooses subsample sizes; each surface's key holds its size",
}


class Params(_Section):
    """The whole parameter set of one run; `source` says where it was read from."""

    run: RunSection = RunSection()
    data: DataSection = DataSection()
    model: ModelSection = ModelSection()
    train: TrainSection = TrainSection()
    imp: ImpSection = ImpSection()
    baselines: BaselinesSection = BaselinesSection()
    analysis: AnalysisSection = AnalysisSection()
    hessian: HessianSection = HessianSection()
    landscape: LandscapeSection = LandscapeSection()
    report: ReportSection = ReportSection()
    claims: ClaimsSection = ClaimsSection()
    # built when a Params is (their level checks need the networks' sizes, lthkit.config.catalog)
    mnist: MnistSection = Field(default_factory=MnistSection)
    bain: BainSection = Field(default_factory=BainSection)
    source: str = Field("<defaults>", exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> "Params":
        _check_levels_fit(self)
        for name in ("trajectory_levels",):
            _check_level_list(getattr(self.imp, name), self.imp.levels, f"imp.{name}", minimum=0)
        _check_level_list(self.baselines.levels, self.imp.levels, "baselines.levels", minimum=1)
        _check_level_list(self.analysis.levels, self.imp.levels, "analysis.levels", minimum=1)
        _check_level_list(self.hessian.band_levels, self.imp.levels, "hessian.band_levels",
                          minimum=1)
        _check_level_list(self.report.show_levels, self.imp.levels, "report.show_levels",
                          minimum=0)
        if self.hessian.k > self.hessian.max_iterations:
            raise _KeyError("hessian.max_iterations", "must be at least hessian.k")
        if _cifar_shaped(self.model.arch) and input_shape(self.data.name)[0] == 1:
            raise _KeyError("model.arch", f"{self.model.arch} expects CIFAR-shaped data")
        if not self.model.kit_network and self.baselines.group_size not in ("auto", 1):
            raise _KeyError("baselines.group_size", f"{self.baselines.group_size}: networks "
                            f"trained as one fused network are proven for the kit's own "
                            f"architectures only, not {self.model.arch}; set 1 (auto trains "
                            f"them one after another)")
        _check_rewind_fits(self.data, self.train, self.imp, "imp")
        for name in ("mlp", "lenet5"):
            spec = getattr(self.mnist, name)
            _check_rewind_fits(self.mnist.data, spec.train, spec.imp, f"mnist.{name}.imp")
        _check_rewind_fits(self.bain.data, self.bain.train, self.bain.imp, "bain.imp")
        _check_plane_levels(self)
        for name in self.report.notebooks:
            try:
                notebook_path(name)
            except ValueError as e:
                raise _KeyError("report.notebooks", str(e)) from None
        contained_run_dir(resolve_path(self.run.output_root), self.run.name)
        return self

    # --- conveniences used across the kit -----------------------------------------------------
    def levels(self, selection: LevelSelection, minimum: int = 0) -> list[int]:
        """Resolve a level selection ("all" or a list) against this run's levels."""
        if selection == "all":
            return list(range(minimum, self.imp.levels + 1))
        return sorted(set(selection))

    def run_dir(self) -> Path:
        """The run folder, absolute; a ParamsError when it would not be a folder of its own
        strictly inside the outputs root (checked after resolving links)."""
        try:
            return contained_run_dir(resolve_path(self.run.output_root), self.run.name)
        except _KeyError as e:
            raise ParamsError(f"{self.source}: {e.key}: {e.message}") from None

    def training_fingerprint(self) -> dict[str, Any]:
        """The keys that decide what a run folder's trained weights are."""
        flat = flatten(self.model_dump(include=set(TRAINING_SECTIONS), mode="json"))
        return {k: v for k, v in flat.items() if k not in EXTENDABLE_KEYS}

    def digest(self, *sections: str) -> str:
        """A short stable hash of the given sections (all when none): a cache key."""
        dump = self.model_dump(include=set(sections) if sections else None)
        return hashlib.sha256(json.dumps(dump, sort_keys=True).encode()).hexdigest()[:12]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(), sort_keys=False)


# --- reading ------------------------------------------------------------------------------------

class _YamlLoader(yaml.SafeLoader):
    """SafeLoader that reads 1e-4 as a float (YAML 1.1 wants 1.0e-4, a classic trap) and refuses
    a key given twice in one mapping (YAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    f"while reading a mapping (its first '{key}' on line {seen[key] + 1})",
                    node.start_mark, f"'{key}' is given twice", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+][0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)

# The one line a parameter file that wants every default holds (an empty file is an error).
ALL_DEFAULTS = "defaults: paper"
_DEFAULTS_KEY, _DEFAULTS_VALUE = (x.strip() for x in ALL_DEFAULTS.split(":"))


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML file as a dict; a broken, empty or non-mapping file is a ParamsError naming it
    (and, for a syntax error, the line)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ParamsError(f"{path}: cannot read parameter file ({getattr(e, 'strerror', e)})") \
            from None
    try:
        data = yaml.load(text, Loader=_YamlLoader)
    except yaml.YAMLError as e:
        raise ParamsError(_yaml_message(path, e)) from None
    if data is None or data == {}:
        raise ParamsError(f"{path}: the parameter file is empty. A preset that wants every default "
                          f"(the paper's ResNet-20 recipe) says so in one line: `{ALL_DEFAULTS}`")
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: the top level must be a mapping of sections "
                          f"({', '.join(SECTIONS)}), not {type(data).__name__}")
    return data


def _yaml_message(path: Path, error: yaml.YAMLError) -> str:
    """'file, line N, column M: not valid YAML: what (context)' from a PyYAML error."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    context_mark = getattr(error, "context_mark", None)
    if context and context_mark is not None and context_mark is not mark:
        context = f"{context}, line {context_mark.line + 1}" if "line" not in context else context
    return f"{path}{where}: not valid YAML: {problem}" + (f" ({context})" if context else "")


def _take_defaults(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """Drop the `defaults: paper` line (the only value it takes) from a file's top level."""
    if _DEFAULTS_KEY not in raw:
        return raw
    if raw[_DEFAULTS_KEY] != _DEFAULTS_VALUE:
        raise ParamsError(f"{source}: {_DEFAULTS_KEY}: {raw[_DEFAULTS_KEY]!r} is not known; "
                          f"`{ALL_DEFAULTS}` means: every key not given takes its default")
    return {k: v for k, v in raw.items() if k != _DEFAULTS_KEY}


def params_from_dict(raw: Mapping[str, Any], source: str = "<dict>") -> Params:
    """Validate a nested dict of sections; errors name `section.key` and the source."""
    unknown = [k for k in raw if k not in SECTIONS]
    if unknown:
        raise ParamsError(_unknown_message(source, unknown[0], list(SECTIONS)))
    try:
        return Params(**{k: v for k, v in raw.items()}, source=source)
    except ValidationError as e:
        raise ParamsError(_validation_message(source, e, raw)) from None
    except _KeyError as e:
        raise ParamsError(f"{source}: {e.key}: {e.message}") from None


def load_params(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> Params:
    """Read and validate a parameter YAML; `overrides` ({"train.epochs": 2}, also nested keys
    such as "mnist.mlp.imp.levels") are applied on top."""
    file = resolve_params_file(path)
    raw = _take_defaults(read_yaml(file), str(file))
    for dotted, value in (overrides or {}).items():
        *sections, key = dotted.split(".")
        node = raw
        for depth, section in enumerate(sections):
            node = node.setdefault(section, {})
            if not isinstance(node, dict):
                raise ParamsError(f"{file}: {'.'.join(sections[:depth + 1])}: must be a mapping")
        node[key] = value
    return params_from_dict(raw, source=str(file))


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """["train.epochs=2", "data.dataset=synthetic_cifar10"] -> {"train.epochs": 2, ...}."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ParamsError(f"--set {item!r}: expected section.key=value")
        out[key.strip()] = yaml.load(value, Loader=_YamlLoader)
    return out


def notebook_params(params_file: str | None, namespace: Mapping[str, Any]) -> Params:
    """The parameters a notebook runs with.

    `papermill -f preset.yaml` injects each section of the YAML as a variable (`run`, `data`, ...);
    when any section is injected, the injected sections are the parameter set. Otherwise the
    notebook reads `params_file` (default: $LTHKIT_PARAMS, else params/smoke.yaml).
    """
    injected = {k: namespace[k] for k in SECTIONS if isinstance(namespace.get(k), Mapping)}
    defaults = namespace.get(_DEFAULTS_KEY)
    if injected or defaults is not None:  # a YAML of `defaults: paper` alone injects only that
        source = "the parameters papermill injected (-f YAML)"
        if defaults is not None:
            _take_defaults({_DEFAULTS_KEY: defaults}, source)
        return params_from_dict(injected, source=source)
    return load_params(params_file or os.environ.get("LTHKIT_PARAMS") or "params/smoke.yaml")


# Keys an earlier version read, and what replaced them: named in the unknown-key error only.
RENAMED_KEYS = {"train.bf16": "train.precision (fp32, tf32 or bf16; bf16: true was bf16, false "
                              "was fp32)",
                "baselines.train_together": "baselines.group_size (yes/auto was auto, no was 1)"}


def _unknown_message(source: str, key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], allowed, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(allowed)})"
    if key in RENAMED_KEYS:
        hint = f": replaced by {RENAMED_KEYS[key]}"
    return f"{source}: {key}: unknown key{hint}"


def _validation_message(source: str, error: ValidationError, raw: Mapping[str, Any]) -> str:
    """The first validation error as 'file: section.key: what is wrong (got value)'."""
    first = error.errors()[0]
    loc = [str(x) for x in first["loc"] if not isinstance(x, int)]
    key = ".".join(loc)
    if first["type"] == "extra_forbidden" and len(loc) >= 2:
        section = SECTIONS.get(loc[0])
        allowed = list(section.model_fields) if section else []
        return _unknown_message(source, key, allowed)
    if first["type"] == "value_error":
        ctx_error = first.get("ctx", {}).get("error")
        if isinstance(ctx_error, _KeyError):  # its key is relative to the section that raised it
            return f"{source}: {_join_key(loc, ctx_error.key)}: {ctx_error.message}"
        msg = str(ctx_error) if ctx_error else first["msg"]
        return f"{source}: {key}: {msg}" if key else f"{source}: {msg}"
    got = first.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{source}: {key}: {first['msg']}{shown}"


def _join_key(loc: list[str], key: str) -> str:
    """The section path and a validator's key, each part once: a validator may name its key with
    its own section (`hessian.ks_fig22` raised inside `hessian`)."""
    parts = key.split(".")
    overlap = max(k for k in range(min(len(loc), len(parts)) + 1)
                  if loc[len(loc) - k:] == parts[:k])
    return ".".join([*loc[:len(loc) - overlap], *parts])


# --- paths --------------------------------------------------------------------------------------

