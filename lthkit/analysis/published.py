"""The paper's published values and the one rule that decides when they stand beside ours.

Saleem, Ahuja, Prasad and Lall print numbers for two recipes: ResNet-20 and VGG-16 on CIFAR-10
(Appendix I; `../shared/REPRODUCTION.md`). A number of theirs is comparable with one of ours only
when our run follows that recipe in every key that changes the number: the data, the network and
its width, the training schedule, the pruning rate and scope, and what the measurement itself
depends on (k of V'(k), the examples the Hessian is taken on, one cut-off per compared pair for the
radii). `paper_recipe` applies that rule; `recipe_mismatches` says which keys differ.

Published values never enter a verdict of ours: they stand beside our values, in columns named
"paper ...", only for a run of the paper's recipe and only for the quantity they are (V'(100)
beside our V'(100), radii only where the paper has them). Every value carries its source (table)
and what the text extraction lost (`published_frame()` lists them all); every value of the rule
that the paper's text does not give is the kit's assumption and said as one (`ASSUMED`,
`describe`), and a published row that runs against the paper's own text says so.

    from lthkit.analysis import published
    published.paper_recipe(params, "volume")        # "resnet20", "vgg16" or None
    published.paper_columns(params, "volume_L", 5)  # {"paper Pr_L(min(L-1))": 417.984, ...}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Mapping

import pandas as pd

__all__ = ["Quantity", "Recipe", "PaperTable", "RECIPES", "TABLES", "PAPER", "recipe_mismatches",
           "NEUTRAL", "neutral_reason", "GIVEN", "AGAINST_COLUMN", "Assumption", "ASSUMED",
           "assumptions",
           "paper_recipe", "paper_table", "paper_columns", "paper_column", "describe",
           "published_frame", "legacy_volumes", "legacy_radii"]

PAPER = "Saleem, Ahuja, Prasad, Lall: Insights into the Lottery Ticket Hypothesis and IMP"

Quantity = Literal["volume", "radius"]

_LEVEL_LOST = " (level lost)"


@dataclass(frozen=True)
class Recipe:
    """A recipe of the paper: the parameter values (dotted keys) its numbers were measured with."""

    name: str
    title: str
    keys: Mapping[str, Any]


_TRAINING = {  # the schedule: the short version's Appendix B (the long one's lost the numbers)
    "data.dataset": "cifar10", "data.train_size": None, "data.augment": True,
    "data.image_size": None,
    # CIFAR-10 standardized by its own per-channel statistics: the paper does not say (ASSUMED)
    "data.normalization": "dataset",
    "train.epochs": 160, "train.batch_size": 128, "train.optimizer": "sgd", "train.lr": 0.1,
    "train.momentum": 0.9, "train.nesterov": False, "train.weight_decay": 1e-4,
    "train.milestones": [80, 120], "train.gamma": 0.1, "imp.scope": "global",
    # bf16 autocast or TF32 changes every weight a little; the paper names no precision (ASSUMED)
    "train.precision": "fp32",
    # k, the rewind iteration, is not in the text: 1000 is the kit's assumption (README),
    # and a run rewinding elsewhere (0: Frankle & Carbin's original) is another experiment.
    "imp.rewind_iteration": 1000,
    # the paper's networks as the kit builds them: every conv and linear weight prunable
    "model.depth": None, "model.prunable": None, "model.not_prunable": None,
}

RECIPES: dict[str, Recipe] = {
    "resnet20": Recipe("resnet20", "ResNet-20 / CIFAR-10", {
        **_TRAINING, "model.arch": "resnet20", "model.width": 16, "imp.prune_fraction": 0.2}),
    "vgg16": Recipe("vgg16", "VGG-16 / CIFAR-10", {
        **_TRAINING, "model.arch": "vgg16", "model.width": 64, "imp.prune_fraction": 0.4}),
}

# What a measurement adds to the recipe: every key that changes the measured number. V'(100):
# top-100 eigenvalues of the Hessian (the text gives k), on 5,000 training examples (10% of
# CIFAR-10's: the text lost the fraction for both networks, so the size is the kit's), the kit's
# Lanczos to its tolerance, eigenvalues above 0.001 x lambda_max summed. Radii: one cut-off per
# compared pair (the paper reports one per figure; eq. 5 and its value were lost), 100 random
# directions and 5,000 examples (both lost), the kit's bisection. Both on points whose BatchNorm
# statistics are recomputed, in fp32. ASSUMED says which of these values are the kit's.
_MEASUREMENT: dict[str, dict[str, Any]] = {
    "volume": {"hessian.k": 100, "hessian examples": 5000, "hessian.max_iterations": 600,
               "hessian.tol": 1e-3, "hessian.tol_relative_to": "eigenvalue",
               "hessian.positive_threshold": 1e-3, "hessian.dtype": "float32",
               "analysis.recalibrate_bn": True},
    "radius": {"landscape.radius_reference": "pair_max", "landscape.radius_directions": 100,
               "landscape.radius_cutoff": "relative", "landscape.radius_value": 1.0,
               "landscape.radius_start": 0.01, "landscape.radius_growth": 2.0,
               "landscape.radius_max": 50.0, "landscape.radius_tol": 1e-3,
               "landscape examples": 5000, "landscape.dtype": "float32",
               "landscape.one_pass_bn": True, "analysis.recalibrate_bn": True},
}

# Keys that change no published number, with the reason (tests/test_published.py walks every
# key of data, model, train, imp, baselines, analysis, hessian and landscape from the paper's
# presets: a key that changes a published quantity must be in the rule, or listed here).
NEUTRAL: dict[str, str] = {
    "data.root": "where the dataset is kept", "data.download": "whether it may be fetched",
    "data.test_size": "the test split: no published volume or radius reads it",
    "data.synthetic_noise": "the synthetic stand-in only (not CIFAR-10)",
    "train.channels_last": "a memory layout: the same arithmetic to rounding",
    "train.compile": "the same step, compiled: equal to rounding",
    "train.cuda_graphs": "the same step, replayed: equal to rounding",
    "train.eval_every": "how often the test split is measured", "train.eval_batch_size":
    "the evaluation's batch size: the same losses to rounding",
    "imp.levels": "how many levels are made; each level's values have rows of their own",
    "imp.save_every": "which epochs' weights are kept for Fig 4",
    "imp.trajectory_levels": "which levels' trajectories are drawn (Fig 4)",
    "baselines": "the baselines' kinds, levels and grouping; fine-tuning's lr and epochs change "
                 "only W_FT, which has no published value",
    "analysis.levels": "which levels are analysed", "analysis.batch_size":
    "the chunks a loss is summed over: the same number to rounding",
    "hessian.ks_fig22": "Fig 22 reads the same top-k spectra (no published values)",
    "hessian.density_iterations": "the spectral density (no published values)",
    "hessian.density_runs": "the spectral density (no published values)",
    "hessian.trace_samples": "the trace (no published values)",
    "hessian.band_levels": "Fig 16's band pruning (no published values)",
    "hessian.method": "the solver: the same eigenvalues to the tolerance (tests/test_hessian.py)",
    "hessian.block_size": "the block solver's block: the same eigenvalues to the tolerance",
    "landscape.line_points": "lines: no published values", "landscape.line_margin": "lines",
    "landscape.plane_resolution": "planes: no published values",
    "landscape.plane_margin": "planes", "landscape.surface_resolution": "surfaces (Bain)",
    "landscape.surface_span": "surfaces (Bain)", "landscape.surface_examples": "surfaces (Bain)",
    "landscape.surface_include_bn": "surfaces (Bain)",
    "landscape.surface_bn": "surfaces (Li et al., Bain)",
    "landscape.surface_directions": "surfaces (Li et al., Bain)",
    "landscape.surface_draw": "surfaces (Li et al., Bain)",
    "landscape.line_test_examples": "Result 4's test-split lines: no published values",
}


# --- what the paper's text gives, and what the kit assumes ---------------------------------------

# Where the text gives each value of the rule that is the paper's. The long version's Appendix I
# lost its numbers in the extraction; the short version's Appendix B, by the same authors, has
# them ("160 epochs ... batchsize of 128 ... learning rate = 0.1, momentum = 0.9, and weight decay
# = 0.0001 ... decayed by a factor of 10 at 80 and 120 epochs ... prune 20% [40%]").
_SCHEDULE = "the short version's Appendix B (the long version's Appendix I lost the numbers)"
GIVEN: dict[str, str] = {
    "data.dataset": "the recipes' names: ResNet-20 / VGG-16 on CIFAR-10 (Appendix I)",
    "data.train_size": "the whole CIFAR-10 training set (Appendix I names no subset for training)",
    "data.image_size": "CIFAR-10's own 32 x 32 images",
    "model.arch": "the recipes' names (Appendix I)",
    "model.width": "ResNet-20's 16 and VGG-16's 64 channels, the networks as named",
    "model.depth": "the networks as named",
    "model.prunable": "\"The prunable parameters are the weights of the convolutional layers and "
                      "the fully-connected layers\" (Appendix I)",
    "model.not_prunable": "the same sentence of Appendix I",
    **dict.fromkeys(("train.epochs", "train.batch_size", "train.optimizer", "train.lr",
                     "train.momentum", "train.weight_decay", "train.milestones", "train.gamma",
                     "imp.prune_fraction"), _SCHEDULE),
    "hessian.k": "\"top-100 positive eigen values\" (Figs 10, 26, 30; Appendix II)",
}


@dataclass(frozen=True)
class Assumption:
    """Values of the rule that the paper's text does not give: the kit's, said as such wherever
    they are shown (`describe`, the presets' comments, the notebooks)."""

    keys: tuple[str, ...]
    value: str                                  # what the kit takes
    why: str                                    # what the text lost, or never says

    def text(self) -> str:
        return f"{self.value} ({self.why})"


ASSUMED: tuple[Assumption, ...] = (
    Assumption(("imp.rewind_iteration",), "rewinding to iteration k = 1000",
               "the text gives no k"),
    Assumption(("data.augment",), "random crops and flips while training",
               "the paper names no augmentation"),
    Assumption(("data.normalization",), "CIFAR-10 standardized by its own per-channel mean "
               "and std", "the paper does not say how its inputs were normalized"),
    Assumption(("imp.scope",), "one global magnitude ranking",
               "the paper does not say global or per layer"),
    Assumption(("train.nesterov", "train.precision"), "plain SGD momentum in fp32",
               "the paper names SGD and no precision"),
    Assumption(("hessian examples",),
               "the Hessian on 5,000 training examples, a tenth of CIFAR-10's",
               "the text lost the fraction, for ResNet-20 and VGG-16 alike"),
    Assumption(("hessian.max_iterations", "hessian.tol", "hessian.tol_relative_to",
                "hessian.positive_threshold", "hessian.dtype"),
               "the kit's Lanczos in fp32 to relative tolerance 1e-3, eigenvalues above "
               "0.001 x lambda_max summed", "the paper does not say how it computed them"),
    Assumption(("analysis.recalibrate_bn",), "BatchNorm statistics recomputed at every point",
               "the paper does not say"),
    Assumption(("landscape examples",), "radii on 5,000 training examples",
               "the text lost the fraction"),
    Assumption(("landscape.radius_directions",), "100 random directions per point",
               "the text lost the number"),
    Assumption(("landscape.radius_cutoff", "landscape.radius_value",
                "landscape.radius_reference"),
               "one cut-off per compared pair, (c - L)/L = 1 from the higher of the two losses",
               "eq. (5) and the paper's cut-off value were lost"),
    Assumption(("landscape.radius_start", "landscape.radius_growth", "landscape.radius_max",
                "landscape.radius_tol", "landscape.dtype", "landscape.one_pass_bn"),
               "the kit's search for each radius: doubling from 0.01 up to 50, bisection to "
               "1e-3, fp32",
               "the paper does not say how it found them"),
)


def _rule_keys(quantity: Quantity | None) -> list[str]:
    """The keys of the rule for `quantity`: the training recipe's, and the measurement's."""
    return [*RECIPES["resnet20"].keys, *(_MEASUREMENT[quantity] if quantity else {})]


def assumptions(quantity: Quantity | None = None) -> list[str]:
    """The kit's assumptions behind the published values of `quantity` (None: the training
    recipe only), one sentence each: the values the paper's text does not give."""
    keys = set(_rule_keys(quantity))
    return [a.text() for a in ASSUMED if keys & set(a.keys)]


def neutral_reason(key: str, quantity: Quantity) -> str | None:
    """Why `key` changes no published `quantity`, or None where it may: the listed keys, the
    keys that change no number at all (params.RESULT_NEUTRAL_KEYS), and for a volume every
    landscape key, for a radius every Hessian key (the other measurement's)."""
    from lthkit.config.params import RESULT_NEUTRAL_KEYS

    section = key.partition(".")[0]
    other = {"volume": "landscape", "radius": "hessian"}[quantity]
    if section == other:
        return f"a {other} key: the {quantity} does not read it"
    return NEUTRAL.get(key) or NEUTRAL.get(section) or RESULT_NEUTRAL_KEYS.get(key)


def _value(params: Any, key: str) -> Any:
    """A parameter by dotted key, with the defaults resolved (width None = the paper's)."""
    if key == "hessian examples":
        return params.hessian.subset_size or params.analysis.subset_size
    if key == "landscape examples":
        return params.landscape.examples or params.analysis.subset_size
    section, _, name = key.partition(".")
    value = getattr(getattr(params, section), name)
    if key == "model.width" and value is None:
        from lthkit.nets.models import DEFAULT_WIDTH

        value = DEFAULT_WIDTH.get(params.model.arch)
    return value


def _same(ours: Any, theirs: Any) -> bool:
    if isinstance(theirs, float) and isinstance(ours, (int, float)):
        return math.isclose(ours, theirs, rel_tol=1e-9)
    return ours == theirs


def recipe_mismatches(params: Any, recipe: str, quantity: Quantity | None = None) -> list[str]:
    """The keys where `params` differ from the paper's `recipe` (and from what `quantity` needs),
    each as "key ours (paper theirs)"; empty when the run follows the recipe."""
    wanted = {**RECIPES[recipe].keys, **(_MEASUREMENT[quantity] if quantity else {})}
    out = []
    for key, theirs in wanted.items():
        ours = _value(params, key)
        if not _same(ours, theirs):
            out.append(f"{key} {ours!r} (paper {theirs!r})")
    return out


def paper_recipe(params: Any, quantity: Quantity | None = None) -> str | None:
    """"resnet20" or "vgg16" when the run follows that recipe of the paper in every key that
    decides comparability (with `quantity`: also in what that measurement depends on), else None.

    The one rule for every "published beside ours" decision of the kit."""
    arch = params.model.arch
    if arch in RECIPES and not recipe_mismatches(params, arch, quantity):
        return arch
    return None


def describe(params: Any, quantity: Quantity | None = None) -> str:
    """For a notebook: whether the paper's values of `quantity` stand beside ours and, if not,
    why; where they do, one more line per value of the rule that is the kit's assumption."""
    arch = params.model.arch
    if arch not in RECIPES:
        return f"published values: none for {arch} (the paper has ResNet-20 and VGG-16)"
    title = RECIPES[arch].title
    if quantity and not any(t.recipe == arch and t.quantity == quantity
                            for t in TABLES.values()):
        having = sorted({RECIPES[t.recipe].title for t in TABLES.values()
                         if t.quantity == quantity})
        return (f"published values: none (the paper prints no {quantity} values for {title}; "
                f"only for {', '.join(having)})")
    missing = recipe_mismatches(params, arch, quantity)
    if missing:
        return (f"published values not shown (not the paper's {title} recipe): "
                + ", ".join(missing))
    return "\n".join([f"published values beside ours: this run follows the paper's {title} "
                      "recipe; the kit's assumptions in it, not the paper's (its text gives no "
                      "value):", *(f"  - {a}" for a in assumptions(quantity))])


# --- the published values ---------------------------------------------------------------------

@dataclass(frozen=True)
class PaperTable:
    """One published table: a comparison of two points, per level (None: the level was lost)."""

    table: str                                  # "Table I"
    recipe: str                                 # key of RECIPES
    comparison: str                             # what it compares, the kit's name for it
    quantity: Quantity
    space: str                                  # where it is measured: "level L", "level L-1", "own"
    points: tuple[str, str]                     # the paper's order: the one its text says has
    values: Mapping[int | None, tuple[float, float]]  # the larger V' (or radius) first
    note: str = ""
    k: int | None = None                        # k of V'(k); None for the radii
    presumed_level: int | None = None           # where a lost level is presumed to be

    @property
    def level_lost(self) -> bool:
        return None in self.values

    @property
    def measure(self) -> str:
        return f"V'({self.k})" if self.k else "mean radius"

    def against_text(self) -> dict[int | None, str]:
        """{level: sentence} for the rows whose own values run against the paper's text (its
        first point not the larger), which the paper does not remark on."""
        (a, b), out = self.points, {}
        what = "the smaller volume" if self.quantity == "volume" else "the wider basin"
        for level, (va, vb) in self.values.items():
            if not va > vb:
                out[level] = (f"the paper's own values run against its text here: {self.measure} "
                              f"{a} {va:g} < {b} {vb:g}, so {b} has {what}")
        return out


AGAINST_COLUMN = "the paper's row against its text"

_T1_NOTE = "level L space: Pr_L(min(L-1)) against W_min(L), V'(100) per level"
_T3_NOTE = ("level L-1 space: RPr_L-1(min(L)) against W_min(L-1); its W_min(L-1) column is "
            "Table I's W_min(L) one level down")
_RADIUS_NOTE = ("mean radius along random directions (Huang et al. 2020); the level it was "
                "measured at and the cut-off value of eq. (5) were lost in the extraction")
_VGG_NOTE = ("the text shows one row of values without its level; the order follows the text "
             "(the Hessian at the baseline has the larger eigenvalues). 389.957, W_min(L) in both "
             "tables, matches no W_min of Tables VI and VII (levels 0, 1, 5, 6, 11), so the row is "
             "presumably level 12, the one analysed level whose W_min(L) they do not print")

TABLES: dict[str, PaperTable] = {t.table: t for t in [
    PaperTable("Table I", "resnet20", "volume_L", "volume", "level L",
               ("Pr_L(min(L-1))", "W_min(L)"),
               {1: (409.242, 407.417), 2: (402.678, 399.680), 3: (400.855, 386.948),
                4: (392.829, 375.590), 5: (417.984, 372.753), 6: (420.431, 373.472),
                7: (446.758, 375.401), 8: (432.505, 382.051), 9: (488.004, 394.166),
                10: (525.621, 408.810)}, _T1_NOTE, k=100),
    PaperTable("Table II", "resnet20", "radius_L", "radius", "level L",
               ("W_min(L)", "Pr_L(min(L-1))"), {None: (0.232314, 0.183428)}, _RADIUS_NOTE),
    PaperTable("Table III", "resnet20", "volume_L-1", "volume", "level L-1",
               ("RPr_L-1(min(L))", "W_min(L-1)"),
               {1: (418.034, 415.42), 2: (415.826, 407.417), 3: (403.674, 399.68),
                4: (394.347, 386.948), 5: (391.093, 375.59), 6: (391.471, 372.753),
                7: (394.086, 373.472), 8: (398.559, 375.401), 9: (411.997, 382.051),
                10: (427.475, 394.166)}, _T3_NOTE, k=100),
    PaperTable("Table IV", "resnet20", "radius_L-1", "radius", "level L-1",
               ("W_min(L-1)", "RPr_L-1(min(L))"), {None: (0.091809, 0.074714)}, _RADIUS_NOTE),
    PaperTable("Table VI", "vgg16", "volume_L", "volume", "level L",
               ("Pr_L(min(L-1))", "W_min(L)"),
               {1: (212.779, 203.681), 6: (198.106, 177.233), 11: (414.844, 352.86)},
               "Table I for VGG-16 at levels 1, 6, 11", k=100),
    PaperTable("Table VII", "vgg16", "volume_L-1", "volume", "level L-1",
               ("RPr_L-1(min(L))", "W_min(L-1)"),
               {1: (219.996, 220.915), 6: (201.835, 189.044), 12: (426.294, 352.86)},
               "Table III for VGG-16 at levels 1, 6, 12; at level 1 its own values run against its "
               "text (219.996 < 220.915: W_min(L-1) the smaller volume)", k=100),
    PaperTable("Table VIII", "vgg16", "volume_RI", "volume", "own",
               ("W_RI(L)", "W_min(L)"), {None: (442.242, 389.957)},
               "W_min(L) against random re-initialization W_RI(L) (Fig 30); " + _VGG_NOTE,
               k=100, presumed_level=12),
    PaperTable("Table IX", "vgg16", "volume_RP", "volume", "own",
               ("W_RP(L)", "W_min(L)"), {None: (451.384, 389.957)},
               "W_min(L) against random pruning W_RP(L) (Fig 32); " + _VGG_NOTE, k=100,
               presumed_level=12),
]}


def paper_table(params: Any, comparison: str, k: int | None = None) -> PaperTable | None:
    """The published table of `comparison` for this run's recipe, None when the run does not
    follow a recipe of the paper (for that table's quantity), the paper has no such table, or
    ours is another quantity than theirs: V'(`k`) (default hessian.k) for their V'(100)."""
    recipe = paper_recipe(params)
    for t in TABLES.values():
        if t.recipe == recipe and t.comparison == comparison:
            if t.k is not None and (k or params.hessian.k) != t.k:
                return None
            return t if paper_recipe(params, t.quantity) else None
    return None


def paper_column(table: PaperTable, point: str) -> str:
    """The column holding the paper's value of `point`: "paper W_min(L)", with " (level lost)"
    when the table's level was lost in the extraction (its value then repeats on every row), or
    " (level 12, presumed)" where the lost level is presumed (the value stands at that level
    only)."""
    if table.level_lost and table.presumed_level is not None:
        return f"paper {point} (level {table.presumed_level}, presumed)"
    return f"paper {point}" + (_LEVEL_LOST if table.level_lost else "")


def paper_columns(params: Any, comparison: str, level: int,
                  k: int | None = None) -> dict[str, float | str]:
    """{column: published value} of `comparison` at `level`, for a row of one of our tables of
    V'(`k`) (default hessian.k; the radii have no k).

    Empty when the run is not the paper's recipe or measures another quantity (no paper
    columns at all); NaN where the paper has no value at that level; a table whose level was
    lost gives its values at every level, in columns that say so. A table with a row that runs
    against the paper's own text has one more column, AGAINST_COLUMN, saying so on that row.
    """
    table = paper_table(params, comparison, k)
    if table is None:
        return {}
    if table.level_lost and table.presumed_level is not None and level != table.presumed_level:
        return {}  # the lost row belongs to one level, presumably; not beside the others
    key = None if table.level_lost else level
    values = table.values.get(key, (math.nan, math.nan))
    out: dict[str, float | str] = {paper_column(table, p): v
                                   for p, v in zip(table.points, values)}
    if against := table.against_text():
        out[AGAINST_COLUMN] = against.get(key, "")
    return out


def published_frame() -> pd.DataFrame:
    """Every published value the kit shows, one row each, with its source and what was lost."""
    rows = []
    for t in TABLES.values():
        for level, values in t.values.items():
            for point, value in zip(t.points, values):
                rows.append({"source": t.table, "recipe": RECIPES[t.recipe].title,
                             "comparison": t.comparison, "quantity": t.measure, "space": t.space,
                             "point": point, "level": "lost" if level is None else level,
                             "value": value, "note": t.note,
                             "against the text": t.against_text().get(level, "")})
    return pd.DataFrame(rows)


# --- the shapes older code reads (hs.PUBLISHED, ls.PAPER_RADII) --------------------------------

def legacy_volumes() -> dict[str, dict[str, dict[int, tuple[float, float]]]]:
    """{recipe: {"table1" | "table3": {level: (projection, W_min)}}}: Tables I/III and VI/VII."""
    out: dict[str, dict[str, dict[int, tuple[float, float]]]] = {}
    for t in TABLES.values():
        name = {"volume_L": "table1", "volume_L-1": "table3"}.get(t.comparison)
        if name:
            out.setdefault(t.recipe, {})[name] = dict(t.values)  # type: ignore[arg-type]
    return out


def legacy_radii() -> dict[str, dict[str, float]]:
    """{"table2" | "table4": {generic point name: mean radius}}: Tables II and IV."""
    return {name: dict(zip(TABLES[t].points, TABLES[t].values[None]))
            for name, t in (("table2", "Table II"), ("table4", "Table IV"))}
