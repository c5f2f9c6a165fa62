"""The papers' statements that notebooks 03-11 test, each read off the tables those notebooks save.

Every entry of `CLAIMS` is a `lthkit.verdicts.claims.Claim` (the statement, its two sides, the
expected direction, the kind of its margin) with the saved table it reads and a function that pulls
both sides per level out of one replicate's copy of that table: `{level: (A, B)}`, built by `_c`
from keywords only. The notebook a claim belongs to is the one that saves its table
(`lthkit.config.series.notebook_of_table`); the columns it reads are those its readers name
(`PaperClaim.columns`), which the tests check against the tables the notebooks write. A new claim
is one `_c(...)` record in `CLAIMS`. `notebook_claims` gathers those values
over the replicates (`lthkit.verdicts.replicates.tables_across`), judges each claim with
`lthkit.verdicts.claims.claim_table` (the rule is `lthkit.verdicts.claims.RULE`) and saves the
result in the run folder, where the report runner collects every notebook's claims into
`claims.csv`.

Published numbers are never read here: the verdicts rest on this run's replicates only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, TypeVar

import pandas as pd

from lthkit.config import series
from lthkit.verdicts.claims import RULE, Claim, Measured, claim_table, claims_frame, margins_note
from lthkit.verdicts.replicates import tables_across

__all__ = ["PaperClaim", "CLAIMS", "claims_of", "values_across", "notebook_claims",
           "claims_file", "claim_levels_file", "margins_used", "rule_text", "BARRIER",
           "run_facts", "FIG2_STRATEGIES", "FIG24_STRATEGIES", "reads", "K"]

Values = dict[int, tuple[float, float]]


Scale = Callable[[pd.DataFrame], dict[int, float]] | str | float
Table = Callable[[pd.DataFrame], dict[int, float]]


@dataclass(frozen=True)
class PaperClaim:
    """A claim, the table (under tables/) it is measured in, and how to read both sides; with
    `scale`, the per-level scale of a relative margin (default |B|): a function of the table, the
    name of a fact of the run (`run_facts`: "k", "chance_loss") or a number; with `flagged`, the
    levels whose values cannot enter and why; with `bound`, the certified error bound of A - B
    per level (a V'(k) short of its tolerance enters with it); `columns`, the columns of the table
    its readers read (a `K` in a name stands for the run's hessian.k: `columns_at`)."""

    claim: Claim
    table: str
    extract: Callable[[pd.DataFrame], Values]
    scale: Scale | None = None
    flagged: Callable[[pd.DataFrame], dict[int, str]] | None = None
    skip_levels: tuple[int, ...] = ()  # levels the paper itself excepts from the statement
    bound: Table | None = None
    columns: tuple[str, ...] = ()

    @property
    def notebook(self) -> str:
        return self.claim.notebook

    def columns_at(self, k: int) -> tuple[str, ...]:
        """The columns it reads in a run whose hessian.k is `k`."""
        return tuple(name.replace(K, str(k)) for name in self.columns)


# --- the columns a reader reads -------------------------------------------------------------------

Reader = TypeVar("Reader", bound=Callable[..., Any])
K = "{k}"  # in a column name: the run's hessian.k (the volume tables' "V'(100) W_min(L)")


def _reads(reader: Reader, *names: str) -> Reader:
    """`reader` (a function of a table) marked with the columns it reads, for the registry's
    checks against the tables the notebooks write."""
    reader.reads = tuple(dict.fromkeys(names))  # type: ignore[attr-defined]
    return reader


def _reading(*names: str) -> Callable[[Reader], Reader]:
    """`_reads` as a decorator, for a reader defined at module level."""
    return lambda reader: _reads(reader, *names)


def reads(reader: Any) -> tuple[str, ...]:
    """The columns `reader` reads (none for no reader, a fact of the run or a number)."""
    return tuple(getattr(reader, "reads", ()))


def run_facts(params: Any) -> dict[str, float]:
    """The facts of a run a margin's scale may name: the k of the volume tables (a V'(k) margin
    is per eigenvalue) and the chance-level loss ln(classes) (a barrier's margin does not vanish
    as training converges)."""
    from lthkit.config.catalog import num_classes

    return {"k": float(params.hessian.k),
            "chance_loss": math.log(num_classes(params.data.name))}


# --- reading both sides out of a table ------------------------------------------------------------

def _finite(a: Any, b: Any) -> bool:
    try:
        return not (math.isnan(float(a)) or math.isnan(float(b)))
    except (TypeError, ValueError):
        return False


def _level(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _levels(table: pd.DataFrame) -> Sequence[Any]:
    """The level of each row: a `level` column where the table has one, else its index."""
    return list(table["level"]) if "level" in table.columns else list(table.index)


Rows = Callable[[pd.DataFrame], "pd.Series[bool]"]


def weights_left(low: float = 0.0, high: float = 100.0) -> Rows:
    """The rows (levels) whose `weights_left_%` lies in [low, high): the sparsities a statement
    names ("after pruning more than 90%": weights_left(high=10))."""
    def rows(table: pd.DataFrame) -> "pd.Series[bool]":
        if "weights_left_%" not in table:
            return pd.Series(False, index=table.index)
        left = pd.to_numeric(table["weights_left_%"], errors="coerce")
        return (left >= low) & (left < high)
    return _reads(rows, "weights_left_%")


def columns(a: str, b: str, where: Rows | None = None) -> Callable[[pd.DataFrame], Values]:
    """Side A from column `a`, side B from column `b` (or the number `b` names, a threshold), per
    level (the `level` column, else the index), on the rows `where` picks; a level where either
    is missing (a baseline not trained there) is left out."""
    def extract(table: pd.DataFrame) -> Values:
        threshold = _number(b)
        if a not in table or (threshold is None and b not in table):
            return {}
        rows = table if where is None else table[where(table).to_numpy(dtype=bool)]
        other = rows[b] if threshold is None else [threshold] * len(rows)
        return {int(lv): (float(x), float(y))
                for lv, x, y in zip(_levels(rows), rows[a], other)
                if _level(lv) is not None and _finite(x, y)}
    return _reads(extract, a, *(() if _number(b) is not None else (b,)), *reads(where))


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def against_previous_level(a: str, b: str) -> Callable[[pd.DataFrame], Values]:
    """Side A from column `a` at level L, side B from column `b` at level L-1 (e.g. the loss of
    Pr_L(min(L-1)) against that of W_min(L-1), the previous row's W_min(L))."""
    def extract(table: pd.DataFrame) -> Values:
        if a not in table or b not in table:
            return {}
        by_level = {int(lv): (x, y) for lv, x, y in zip(_levels(table), table[a], table[b])
                    if _level(lv) is not None}
        return {lv: (float(x), float(by_level[lv - 1][1])) for lv, (x, _) in by_level.items()
                if lv - 1 in by_level and _finite(x, by_level[lv - 1][1])}
    return _reads(extract, a, b)


# The strategies each comparison figure of the paper draws beside IMP-WR (learning-rate
# rewinding, which the kit trains as background, is in neither).
FIG2_STRATEGIES = ("one_shot", "fine_tune", "random_reinit", "random_prune",
                   "random_prune_oneshot")
FIG24_STRATEGIES = ("fine_tune", "random_reinit", "random_prune", "one_shot")


def best_other_strategy(column: str, best: str = "max", among: Sequence[str] = FIG2_STRATEGIES,
                        own: str = "imp") -> Callable[[pd.DataFrame], Values]:
    """Fig 2's long table (strategy, level, metrics): IMP-WR's value against the best of the
    strategies `among` (the figure's own) at each level (`best` "max" for accuracy, "min" for a
    loss)."""
    def extract(table: pd.DataFrame) -> Values:
        if not {"strategy", "level", column} <= set(table.columns):
            return {}
        out = {}
        for lv, rows in table.groupby("level"):
            mine = rows.loc[rows["strategy"] == own, column]
            others = pd.to_numeric(rows.loc[rows["strategy"].isin(among), column],
                                   errors="coerce")
            others = others.dropna()
            if len(mine) and len(others) and _level(lv) is not None:
                out[int(lv)] = (float(mine.iloc[0]),
                                float(others.max() if best == "max" else others.min()))
        return out
    return _reads(extract, "strategy", "level", column)


def trend_over_levels(column: str, where: Rows | None = None) -> Callable[[pd.DataFrame], Values]:
    """A quantity at each measured level against itself at the measured level before it (a
    trend as pruning continues; the levels need not be consecutive: Bain's surfaces are drawn at
    levels 0, 7, 14, ...), keyed by the later level; `where` picks the rows that enter."""
    def extract(table: pd.DataFrame) -> Values:
        if column not in table:
            return {}
        rows = table if where is None else table[where(table).to_numpy(dtype=bool)]
        measured = sorted((int(lv), float(v)) for lv, v in zip(_levels(rows), rows[column])
                          if _level(lv) is not None and _finite(v, 0.0))
        return {lv: (v, prev) for (_, prev), (lv, v) in zip(measured, measured[1:])}
    return _reads(extract, column, *reads(where))


def against_dense(column: str, where: Rows | None = None, factor: float = 1.0
                  ) -> Callable[[pd.DataFrame], Values]:
    """Column `column` at the levels `where` picks against `factor` times its value at level 0
    (the dense network)."""
    def extract(table: pd.DataFrame) -> Values:
        if column not in table:
            return {}
        by_level = {int(lv): float(v) for lv, v in zip(_levels(table), table[column])
                    if _level(lv) is not None}
        if 0 not in by_level:
            return {}
        rows = table if where is None else table[where(table).to_numpy(dtype=bool)]
        return {int(lv): (float(v), factor * by_level[0])
                for lv, v in zip(_levels(rows), rows[column])
                if _level(lv) not in (None, 0) and _finite(v, by_level[0])}
    return _reads(extract, column, *reads(where))


def scaled(extract: Callable[[pd.DataFrame], Values], factor: float
           ) -> Callable[[pd.DataFrame], Values]:
    """Side B of `extract` times `factor` ("twice as well as": A against 2 B)."""
    def scaled_extract(table: pd.DataFrame) -> Values:
        return {lv: (a, factor * b) for lv, (a, b) in extract(table).items()}
    return _reads(scaled_extract, *reads(extract))


def sparsest_against_others(column: str) -> Callable[[pd.DataFrame], Values]:
    """Column `column` at the sparsest measured level (side A) against its value at each other
    measured level (side B, keyed by that level): "relative to the others"."""
    def extract(table: pd.DataFrame) -> Values:
        if column not in table:
            return {}
        measured = {int(lv): float(v) for lv, v in zip(_levels(table), table[column])
                    if _level(lv) is not None and _finite(v, 0.0)}
        if len(measured) < 2:
            return {}
        last = max(measured)
        return {lv: (measured[last], v) for lv, v in measured.items() if lv != last}
    return _reads(extract, column)


def volume_columns(a: str, b: str) -> Callable[[pd.DataFrame], Values]:
    """Columns "V'(k) <a>" and "V'(k) <b>" of a volume table, whatever its k."""
    def extract(table: pd.DataFrame) -> Values:
        ks = {m.group(1) for c in table.columns if (m := re.fullmatch(r"V'\((\d+)\) .*", str(c)))}
        if len(ks) != 1:
            return {}
        k = ks.pop()
        return columns(f"V'({k}) {a}", f"V'({k}) {b}")(table)
    return _reads(extract, f"V'({K}) {a}", f"V'({K}) {b}")


_ENTERED = re.compile(r"(\d+) of (\d+) eigenvalues")
FEWER_THAN_K = "fewer than k eigenvalues above the threshold (hessian.positive_threshold, hessian.k)"
NO_BOUND = "no certified error bound (raise hessian.max_iterations)"
UNBOUNDED_FLAG = "flagged spectrum (a table without error bounds: run the notebook again)"


def _flag_text(text: Any, name: str) -> str:
    """The part of a `flags` cell about the spectrum `name` ('' when none)."""
    if not isinstance(text, str):
        return ""
    return " | ".join(part for part in text.split(" | ") if part.startswith(f"{name}: "))


def spectrum_flags(a: str, b: str, k: int | None = None,
                   suffix: str = "") -> Callable[[pd.DataFrame], dict[int, str]]:
    """Levels of a volume table whose V'(k) of side a or b cannot enter a verdict, and why:
    fewer than k eigenvalues above the threshold (a sum of fewer logs), or no certified bound
    (a Ritz value within its residual of 0). A spectrum that stopped short of its tolerance
    enters with the bound its residuals certify (`bound <name>`); in a table without those
    columns (written before them) any flag leaves the value out. `k` (Fig 22: one claim per
    k) is the k the claim sums; by default the k the flags give."""
    def flagged(table: pd.DataFrame) -> dict[int, str]:
        bounds = {name: f"bound {name}{suffix}" for name in (a, b)}
        has_bounds = all(c in table for c in bounds.values())
        out = {}
        for i, lv in enumerate(_levels(table)):
            if _level(lv) is None:
                continue
            for name in (a, b):
                text = _flag_text(table["flags"].iloc[i], name) if "flags" in table else ""
                entered = _ENTERED.search(text)
                if entered and int(entered.group(1)) < (k or int(entered.group(2))):
                    out[int(lv)] = FEWER_THAN_K
                elif has_bounds and not math.isfinite(float(table[bounds[name]].iloc[i])):
                    out[int(lv)] = NO_BOUND
                elif text and not has_bounds:
                    out[int(lv)] = UNBOUNDED_FLAG
        return out
    return _reads(flagged, "flags", f"bound {a}{suffix}", f"bound {b}{suffix}")


def volume_bounds(a: str, b: str, suffix: str = "") -> Table:
    """The certified error bound of V'(a) - V'(b) per level: the sum of both sides' bounds
    (columns `bound <name><suffix>`, `lthkit.analysis.hessian.tables`); {} (exact) in a table
    without them."""
    def bound(table: pd.DataFrame) -> dict[int, float]:
        ca, cb = f"bound {a}{suffix}", f"bound {b}{suffix}"
        if ca not in table or cb not in table:
            return {}
        return {int(lv): float(x) + float(y) for lv, x, y in zip(_levels(table), table[ca],
                                                                  table[cb])
                if _level(lv) is not None}
    return _reads(bound, f"bound {a}{suffix}", f"bound {b}{suffix}")


def _flip_rows(table: pd.DataFrame) -> dict[int, tuple[pd.Series, pd.Series]]:
    """Table V (notebook 04, one row per pair, space and solution): per level L, the row of
    Pr_L(min(L-1)) in level L space and the row of W_min(L-1) in level L-1 space."""
    if not {"solution", "space"} <= set(table.columns):
        return {}
    value = next((c for c in table.columns if re.fullmatch(r"V'\(\d+\)", str(c))), None)
    if value is None:
        return {}
    out: dict[int, tuple[pd.Series, pd.Series]] = {}
    pairs = table.index if "pair" not in table.columns else table["pair"]
    for pair in dict.fromkeys(pairs):
        m = re.fullmatch(r"(\d+)->(\d+)", str(pair))
        if not m:
            continue
        prev, lv = int(m.group(1)), int(m.group(2))
        rows = table[[str(x) == str(pair) for x in pairs]]
        pruned = rows[rows["solution"].astype(str).str.startswith(f"Pr_{lv}(")]
        solution = rows[rows["solution"].astype(str).str.startswith(f"W_min({prev})")]
        if len(pruned) and len(solution):
            out[lv] = (pruned.iloc[0].rename({value: "V"}), solution.iloc[0].rename({value: "V"}))
    return out


TABLE5_COLUMNS = ("pair", "space", "solution", f"V'({K})", "bound", "flags")


@_reading(*TABLE5_COLUMNS)
def pruned_against_solution(table: pd.DataFrame) -> Values:
    """Results 2/3: V'(k) of the pruned point Pr_L(min(L-1)) (level L space) against that of
    the solution it was pruned from, W_min(L-1) (level L-1 space), per level L (Table V)."""
    return {lv: (float(a["V"]), float(b["V"])) for lv, (a, b) in _flip_rows(table).items()
            if _finite(a["V"], b["V"])}


@_reading(*TABLE5_COLUMNS)
def pruned_against_solution_bound(table: pd.DataFrame) -> dict[int, float]:
    """The certified bounds of `pruned_against_solution`'s two V'(k) (Table V's `bound`)."""
    return {lv: float(a.get("bound", 0.0)) + float(b.get("bound", 0.0))
            for lv, (a, b) in _flip_rows(table).items()}


@_reading(*TABLE5_COLUMNS)
def pruned_against_solution_flags(table: pd.DataFrame) -> dict[int, str]:
    """Levels of Table V whose pruned or unpruned V'(k) cannot enter (`spectrum_flags`)."""
    out = {}
    for lv, rows in _flip_rows(table).items():
        for row in rows:
            entered = _ENTERED.search(str(row.get("flags", "")))
            if entered and int(entered.group(1)) < int(entered.group(2)):
                out[lv] = FEWER_THAN_K
            elif "bound" in row and not math.isfinite(float(row["bound"])):
                out[lv] = NO_BOUND
            elif "bound" not in row and isinstance(row.get("flags"), str) and row["flags"]:
                out[lv] = UNBOUNDED_FLAG
    return out


def over_trend(per_row: Callable[[pd.DataFrame], dict[int, Any]], combine: Callable[[Any, Any], Any]
               ) -> Callable[[pd.DataFrame], dict[int, Any]]:
    """A per-row reading (a flag, a bound) for a trend claim keyed by its later row: `combine`
    of the row's and the measured row's before it."""
    def read(table: pd.DataFrame) -> dict[int, Any]:
        own = per_row(table)
        rows = sorted(int(lv) for lv in _levels(table) if _level(lv) is not None)
        out = {lv: combine(own.get(lv), own.get(prev)) for prev, lv in zip(rows, rows[1:])}
        return {lv: v for lv, v in out.items() if v}
    return _reads(read, *reads(per_row))


def trend_flags(name: str) -> Callable[[pd.DataFrame], dict[int, str]]:
    """`spectrum_flags` of the spectrum `name` for a trend: a step is flagged when it or the
    step before it is."""
    return over_trend(spectrum_flags(name, name), lambda x, y: x or y or "")


def trend_bound(name: str) -> Table:
    """The certified bound of a trend of V'(k): the bounds of the step and of the one before."""
    return over_trend(volume_bounds(name, name),
                      lambda x, y: (x or 0.0) / 2 + (y or 0.0) / 2)


def at_k(a: str, b: str, k: int) -> Callable[[pd.DataFrame], Values]:
    """Fig 22's table: columns "<a> k=K" and "<b> k=K" at one K (none where it lacks that K)."""
    return columns(f"{a} k={k}", f"{b} k={k}")


# Which barrier the claims judge: the height above the straight line between the end losses
# (Frankle et al. 2020), where the table has it. The endpoints of the paper's lines have unequal
# losses (a level and the next, a solution and a baseline), and max minus the higher endpoint
# hides a bump that stays below the higher end.
BARRIER = "barrier_linear"
BARRIER_COLUMNS = ("figure", "series", "level", "barrier", BARRIER)


def _barrier_rows(table: pd.DataFrame, figure: str, series_start: str = "") -> pd.DataFrame:
    return table[(table["figure"] == figure)
                 & table["series"].astype(str).str.startswith(series_start)]


def _barriers(table: pd.DataFrame, figure: str, series_start: str = "") -> dict[int, float]:
    """Each level's barrier of a figure's line; NaN kept (a NaN loss on the line): it is
    counted as left out, not dropped."""
    rows = _barrier_rows(table, figure, series_start)
    column = BARRIER if BARRIER in rows else "barrier"
    return {int(lv): float(v) for lv, v in zip(rows["level"], rows[column])}


def barrier_above(figure: str, threshold: float = 0.0,
                  series_start: str = "") -> Callable[[pd.DataFrame], Values]:
    """A barrier table (notebook 06): the barrier height of `figure`'s line (the one whose series
    starts with `series_start`) per level, against a threshold."""
    def extract(table: pd.DataFrame) -> Values:
        if not {"figure", "series", "level", "barrier"} <= set(table.columns):
            return {}
        return {lv: (v, threshold) for lv, v in _barriers(table, figure, series_start).items()}
    return _reads(extract, *BARRIER_COLUMNS)


def barriers_of(a: tuple[str, str], b: tuple[str, str]) -> Callable[[pd.DataFrame], Values]:
    """Two lines' barrier heights per level: a and b are (figure, series prefix)."""
    def extract(table: pd.DataFrame) -> Values:
        if not {"figure", "series", "level", "barrier"} <= set(table.columns):
            return {}
        first, second = _barriers(table, *a), _barriers(table, *b)
        return {lv: (first[lv], second[lv]) for lv in sorted(set(first) & set(second))}
    return _reads(extract, *BARRIER_COLUMNS)


@_reading("slope_level", "slope_projected")
def steeper_scale(table: pd.DataFrame) -> dict[int, float]:
    """The scale of a slope comparison's margin: the steeper of the two slopes (its size)."""
    if not {"slope_level", "slope_projected"} <= set(table.columns):
        return {}
    return {int(lv): max(abs(float(x)), abs(float(y)))
            for lv, x, y in zip(_levels(table), table["slope_level"], table["slope_projected"])
            if _level(lv) is not None and _finite(x, y)}


def point_loss_against_sublevel(symbol: str) -> Callable[[pd.DataFrame], Values]:
    """Fig 13's points (notebook 07): the level at which the point `<symbol>(L)` joins the
    connected sublevel set of the IMP solutions spanning the plane (`joins_at`: the component of
    {loss <= c} that holds them, not only a loss below c), against the sublevel set's loss c, per
    level L. A table without the plane's grid (an older one) gives the point's own loss."""
    pattern = re.compile(re.escape(symbol) + r"\((\d+)\)")

    def extract(table: pd.DataFrame) -> Values:
        column = "joins_at" if "joins_at" in table else "loss"
        if column not in table or "sublevel_loss" not in table:
            return {}
        return {int(m.group(1)): (float(value), float(c))
                for point, value, c in zip(table.index, table[column], table["sublevel_loss"])
                if (m := pattern.fullmatch(str(point))) and _finite(value, c)}
    return _reads(extract, "joins_at", "sublevel_loss")


@_reading("spanning_joined_at", "spans_plane", "sublevel_loss")
def spanning_solutions_joined(table: pd.DataFrame) -> Values:
    """Fig 13: the level at which the IMP solutions spanning the plane lie in one connected
    sublevel set, against c; keyed by the highest level among them."""
    if not {"spanning_joined_at", "spans_plane", "sublevel_loss"} <= set(table.columns):
        return {}
    spans = table[table["spans_plane"].astype(str).str.lower() == "true"]
    levels = [int(m.group(1)) for p in spans.index
              if (m := re.fullmatch(r"W_min\((\d+)\)", str(p)))]
    if not levels or spans.empty:
        return {}
    joined, c = float(spans["spanning_joined_at"].iloc[0]), float(spans["sublevel_loss"].iloc[0])
    return {max(levels): (joined, c)} if _finite(joined, c) else {}


# --- the registry ---------------------------------------------------------------------------------

S = "Saleem et al."
IE = "IE643 report"
BAIN = "Bain"
VOLUME = "V'(k), level L space"
VOLUME_PREV = "V'(k), level L-1 space"
OWN_SPACE = "V'(k), each point in its own mask's space"

# The tables the claims read, one name each; each is declared by the notebook that saves it
# (lthkit/config/series.py), which is the notebook its claims belong to. A '{}' is the network's
# or the task's name.
FIG02_STRATEGIES_CSV = "fig02_strategies.csv"
FIG03_DISTANCES_CSV = "fig03_distances.csv"
FIG04_TRAJECTORIES_CSV = "fig04_trajectories.csv"
FIG14_15_BLOCKS_CSV = "fig14_15_blocks.csv"
TABLE1_CSV, TABLE3_CSV, TABLE5_CSV = "table1.csv", "table3.csv", "table5.csv"
FIG22_VOLUME_K_CSV = "fig22_volume_k.csv"
TABLE2_CSV, TABLE4_CSV = "table2.csv", "table4.csv"
BARRIERS_CSV = "barriers.csv"
FIG12_TEST_ACCURACY_CSV = "fig12_test_accuracy.csv"
FIG13_POINTS_CSV = "fig13_points.csv"
PRUNING_CHOICES_VOLUME_CSV = "pruning_choices_volume.csv"
PRUNING_CHOICES_LOSS_CSV = "pruning_choices_loss.csv"
RESULT3_PRUNE_FRACTION_CSV = "result3_prune_fraction.csv"
FIG24_STRATEGIES_CSV = "fig24_strategies.csv"
FIG25_TRAJECTORIES_CSV = "fig25_trajectories.csv"
TABLE6_CSV, TABLE7_CSV, TABLE8_CSV, TABLE9_CSV = ("table6.csv", "table7.csv", "table8.csv",
                                                  "table9.csv")
APPENDIX_BARRIERS_CSV = "appendix_barriers.csv"
IE643_TICKETS_CSV = "ie643_tickets_{}.csv"
IE643_TRANSFER_CSV = "ie643_transfer_{}.csv"
BAIN_ACCURACY_CSV = "bain_accuracy.csv"
BAIN_SURFACES_CSV = "bain_surfaces.csv"


def _c(*, key: str, source: str, statement: str, quantity: str, a: str, b: str, expect: str,
       table: str, extract: Callable[[pd.DataFrame], Values], margin: str,
       notebook: str | None = None, scale: Scale | None = None, flagged: Callable | None = None,
       quote: str = "", skip: tuple[int, ...] = (), bound: Table | None = None,
       quantifier: str = "every", over: str = "level") -> PaperClaim:
    """A claim of the registry, from keywords only: `margin` is the kind of quantity it compares
    (its margin is claims.margins[margin]); it belongs to the notebook that saves `table` unless
    `notebook` says otherwise; it reads the columns its readers name. A volume claim's margin is
    per eigenvalue (scale: the run's k), its values enter with their certified bounds unless
    flagged; a barrier's margin is a fraction of the chance-level loss."""
    claim = Claim(key=key, source=source, statement=statement, quantity=quantity, a=a, b=b,
                  expect=expect,  # type: ignore[arg-type]
                  notebook=notebook or series.notebook_of_table(table), margin=margin,
                  quote=" ".join(quote.split()), quantifier=quantifier,  # type: ignore[arg-type]
                  over=over)
    if margin == "volume":
        flagged = flagged or spectrum_flags(a, b)
        bound = bound or volume_bounds(a, b)
        scale = scale if scale is not None else "k"
    if margin == "barrier" and scale is None:
        scale = "chance_loss"
    columns = tuple(dict.fromkeys(name for reader in (extract, flagged, bound, scale)
                                  for name in reads(reader)))
    return PaperClaim(claim=claim, table=table, extract=extract, scale=scale, flagged=flagged,
                      skip_levels=skip, bound=bound, columns=columns)


def _ie643_pruning_claims(*, figure: str, net: str, title: str, pruned: int,
                          words: str) -> list[PaperClaim]:
    """The IE643 report's two statements on one network's IMP curve (its Figs 1 and 2): past
    `pruned`% pruned (and up to 95%) the ticket's accuracy is the dense network's, within the
    margin; past 95% it falls below 80%."""
    table, source = IE643_TICKETS_CSV.format(net), f"{IE}, Fig {figure[3:]}"
    return [
        _c(key=f"IE643-{figure}-{net}-{pruned}", source=source,
           statement=f"{title}: past {pruned}% pruned (and up to 95%) the ticket's test accuracy "
                     "is that of the dense network, within the margin",
           quantity="test accuracy, ticket minus dense", a="ticket - dense", b="0",
           expect="equal", table=table,
           extract=columns("ticket_vs_dense", "0", weights_left(5.0, 100.0 - pruned)),
           margin="accuracy",
           quote=f"We observe that even after pruning more than {pruned} % of the weights, we get "
                 f"accuracy {words} the original dense network."),
        _c(key=f"IE643-{figure}-{net}-95", source=source,
           statement=f"{title}: past 95% pruned the test accuracy falls below 80%",
           quantity="ticket test accuracy", a="ticket", b="0.8", expect="less", table=table,
           extract=columns("ticket_test_acc", "0.8", weights_left(high=5.0)), margin="accuracy",
           quote="Accuracy level falls drastically to a level below 80% when the network gets "
                 "pruned by more than 95%."),
    ]


def fig22_claims(ks: Sequence[int]) -> list[PaperClaim]:
    """Fig 22: the volume comparison of Table I at every k the run tabulates
    (hessian.ks_fig22), one claim per k: the paper says the trend holds for each."""
    a, b = "W_min(L)", "Pr_L(min(L-1))"
    return [_c(key=f"R1-fig22-k{k}", source=f"{S}, Result 1 (Fig 22)",
               statement=f"the volume comparison of Table I holds at k = {k} too",
               quantity=f"V'({k}), level L space", a=a, b=b, expect="less",
               table=FIG22_VOLUME_K_CSV, extract=at_k(a, b, k), margin="volume", scale=float(k),
               flagged=spectrum_flags(a, b, k, f" k={k}"), bound=volume_bounds(a, b, f" k={k}"),
               quote="Fig. 22 shows that the trend with top-[k] is consistent with top-[100].")
            for k in ks]


def steeper_trajectory_claim(*, key: str, source: str, network: str, table: str,
                             quote: str) -> PaperClaim:
    """Figs 4 and 25: level L's trajectory descends more steeply than level L-1's projected on
    m_L, read off the slopes of ln(loss) per epoch (`geometry.trajectory_slopes`)."""
    return _c(key=key, source=source,
              statement=f"{network}SGD's trajectory at level L descends more steeply (ln training "
                        "loss per epoch, least squares) than level L-1's trajectory projected on "
                        "m_L",
              quantity="slope of ln(loss) per epoch", a="level L", b="level L-1 on m_L",
              expect="less", table=table, extract=columns("slope_level", "slope_projected"),
              margin="slope", scale=steeper_scale, quote=quote)


def _similarity_claims() -> list[PaperClaim]:
    """Result 5's reading of Figs 14 and 15, per level with baselines: the IMP solutions closer
    (more alike in direction) to one another than to W_RI and W_RP; W_OS closer to them than
    W_RP'. The blocks are means over the matrix (every IMP solution; geometry.similarity_blocks)."""
    quote = ("It is apparent from these figures that the euclidean distance between IMP solutions "
             "is smaller than the euclidean distance of [the IMP solutions] with [W_RI] and "
             "[W_RP]. Similarly, the cosine similarity between IMP solutions is greater than the "
             "cosine similarity of [the IMP solutions] with [W_RI] and [W_RP]. Also the "
             "euclidean distance between [W_OS] and [the IMP solutions] is smaller than the "
             "euclidean distance between [W_RP'] and [the IMP solutions], while the cosine "
             "similarity between [W_OS] and [the IMP solutions] is greater than the cosine "
             "similarity of [W_RP'] with [them]. (Symbols lost in the text, read from Result "
             "5's Fig. 13: W_RI, W_RP, W_RP' outside the sublevel set, W_OS inside.)")
    out = []
    for fig, measure, kind, expect, what in (
            ("14", "distance", "distance", "less", "closer to"),
            ("15", "cosine", "similarity", "greater", "more alike in direction to")):
        for key, a, b in (("RI", "IMP-IMP", "IMP-W_RI"), ("RP", "IMP-IMP", "IMP-W_RP"),
                          ("OS", "IMP-W_OS", "IMP-W_RP'")):
            sides = ("the IMP solutions are", "one another", b.split("-")[1]) if key != "OS" \
                else ("W_OS(L) is", "the IMP solutions", None)
            statement = (f"{sides[0]} {what} {sides[1]} than "
                         + (f"to {sides[2]}(L)" if sides[2] else "W_RP'(L) is"))
            out.append(_c(key=f"R5-fig{fig}-{key}", source=f"{S}, Result 5 (Fig {fig})",
                          statement=statement, quantity=f"mean {measure}, matrix blocks", a=a,
                          b=b, expect=expect, table=FIG14_15_BLOCKS_CSV,
                          extract=columns(f"{measure} {a}", f"{measure} {b}"), margin=kind,
                          quote=quote))
    return out


RESULT3 = ("If too many weights are pruned out in a step, it leads to a bigger increase in the "
           "training loss and a bigger decrease in volume, thus lowering the baseline for the "
           "next solution.")


CLAIMS: list[PaperClaim] = [
    # 02: Fig 2 (the kit's key R0: the observation that opens Section IV)
    _c(key="R0-fig2-accuracy", source=f"{S}, Fig 2",
       statement="IMP-WR's solution W_min(L) has a higher test accuracy than the best of the "
                 "other strategies (OS, FT, RI, RP, RP') at the same level",
       quantity="test accuracy", a="W_min(L)", b="best other strategy", expect="greater",
       table=FIG02_STRATEGIES_CSV, extract=best_other_strategy("test_acc", "max"),
       margin="accuracy",
       quote="A comparison of training loss and test accuracy between [W_min, W_OS, W_FT, W_RI, "
             "W_RP and W_RP'] presented in Fig. 2 shows that [W_min] outperforms the other "
             "solutions."),
    _c(key="R0-fig2-loss", source=f"{S}, Fig 2",
       statement="IMP-WR's solution W_min(L) has a lower training loss than the best of the other "
                 "strategies (OS, FT, RI, RP, RP') at the same level", quantity="training loss",
       a="W_min(L)", b="best other strategy", expect="less", table=FIG02_STRATEGIES_CSV,
       extract=best_other_strategy("train_loss", "min"), margin="loss",
       quote="A comparison of training loss and test accuracy between [W_min, W_OS, W_FT, W_RI, "
             "W_RP and W_RP'] presented in Fig. 2 shows that [W_min] outperforms the other "
             "solutions."),
    # 03: Result 1, Fig 3
    _c(key="R1-fig3", source=f"{S}, Result 1 (Fig 3)",
       statement="the projected previous solution is closer to the projected rewind point than "
                 "the solution SGD finds, at every level but 2 and 3 (the paper's exception)",
       quantity="distance from Pr_L(rewind)", a="Pr_L(min(L-1))", b="W_min(L)", expect="less",
       table=FIG03_DISTANCES_CSV, extract=columns("to_projected_previous", "to_solution"),
       margin="distance", skip=(2, 3),
       quote="A comparison of the euclidean distance between [Pr_L(rewind)] and [Pr_L(min(L-1))], "
             "and the euclidean distance between [Pr_L(rewind)] and [W_min(L)] given in Fig. 3 "
             "shows that for all [L] except [2] and [3], [Pr_L(min(L-1))] is closer to "
             "[Pr_L(rewind)] than [W_min(L)]."),
    steeper_trajectory_claim(
        key="R1-fig4", source=f"{S}, Result 1 (Fig 4)", network="",
        table=FIG04_TRAJECTORIES_CSV,
        quote="It is evident from the figure that the trajectory for level [L] is steeper than "
              "for level [L-1] projected on level [L]. This makes SGD converge to [W_min(L)] and "
              "not to [Pr_L(min(L-1))]."),
    # 03: Result 5 (Figs 14, 15), the matrices read as blocks (geometry.similarity_blocks)
    *_similarity_claims(),
    # 04: Result 1, Tables I, III; Result 2 on Table I's losses
    _c(key="R1-table1", source=f"{S}, Result 1 (Fig 5, Table I)",
       statement="in level L space W_min(L) has the larger volume (smaller V') than Pr_L(min(L-1))",
       quantity=VOLUME, a="W_min(L)", b="Pr_L(min(L-1))", expect="less", table=TABLE1_CSV,
       extract=volume_columns("W_min(L)", "Pr_L(min(L-1))"), margin="volume",
       quote="the volume of basin around [W_min(L)] is seen to be larger than the volume of the "
             "basin around [Pr_L(min(L-1))]. This is demonstrated in Fig. 5 and Table I."),
    _c(key="R1-table3", source=f"{S}, Result 1 (Fig 7, Table III)",
       statement="in level L-1 space the comparison flips: W_min(L-1) has the larger volume than "
                 "RPr_L-1(min(L))", quantity=VOLUME_PREV, a="W_min(L-1)", b="RPr_L-1(min(L))",
       expect="less", table=TABLE3_CSV, extract=volume_columns("W_min(L-1)", "RPr_L-1(min(L))"),
       margin="volume",
       quote="if we consider the reverse projection of level [L] solution on level [L-1], and the "
             "level [L-1] solution, [W_min(L-1)], the volume of basin around [W_min(L-1)] is seen "
             "to be larger than the volume of basin around [RPr_L-1(min(L))]. This is "
             "demonstrated in Fig. 7 and Table III."),
    _c(key="R2-table1-projection", source=f"{S}, Result 2 (Table I's losses)",
       statement="pruning the smallest weights raises the loss: Pr_L(min(L-1)) has a higher "
                 "training loss than W_min(L-1)", quantity="training loss", a="Pr_L(min(L-1))",
       b="W_min(L-1)", expect="greater", table=TABLE1_CSV,
       extract=against_previous_level("loss Pr_L(min(L-1))", "loss W_min(L)"), margin="loss",
       quote="Pruning out the smaller weights leads to a new minimum or a saddle point with a "
             "slightly larger training loss value and a smaller volume."),
    _c(key="R2-table1-new-minimum", source=f"{S}, Result 2 (Table I's losses)",
       statement="retraining with rewinding converges to a lower loss than the pruned point: "
                 "W_min(L) below Pr_L(min(L-1))", quantity="training loss", a="W_min(L)",
       b="Pr_L(min(L-1))", expect="less", table=TABLE1_CSV,
       extract=columns("loss W_min(L)", "loss Pr_L(min(L-1))"), margin="loss",
       quote="Retraining from this point via learning rate rewinding or from a point in close "
             "proximity (via weight rewinding) leads SGD to converge to a new minimum, which has "
             "a larger volume (compared to the earlier minimum) and a lower training loss."),
    _c(key="R2-table5-volume", source=f"{S}, Results 2 and 3 (Table V)",
       statement="pruning the smallest weights of W_min(L-1) shrinks its volume: V'(k) of "
                 "Pr_L(min(L-1)) (level L space) above that of W_min(L-1) (level L-1 space)",
       quantity="V'(k), each point in its own level's space", a="Pr_L(min(L-1))", b="W_min(L-1)",
       expect="greater", table=TABLE5_CSV, extract=pruned_against_solution, margin="volume",
       flagged=pruned_against_solution_flags, bound=pruned_against_solution_bound,
       quote="At each step in the iterative process via the magnitude pruning, we remove "
             "dimensions with smaller weights. This increases the loss of the minimum arrived at "
             "in the previous step and decreases its volume measure."),
    # 05: Result 1, Tables II, IV
    _c(key="R1-table2", source=f"{S}, Result 1 (Fig 6, Table II)",
       statement="in level L space the basin around W_min(L) is wider than around Pr_L(min(L-1))",
       quantity="mean basin radius, level L space", a="W_min(L)", b="Pr_L(min(L-1))",
       expect="greater", table=TABLE2_CSV,
       extract=columns("mean_radius W_min(L)", "mean_radius Pr_L(min(L-1))"), margin="radius",
       quote="It is clear from the figure and the table that the average radius of the basin "
             "around [W_min(L)] is larger than that around [Pr_L(min(L-1))]."),
    _c(key="R1-table4", source=f"{S}, Result 1 (Fig 8, Table IV)",
       statement="in level L-1 space the basin around W_min(L-1) is wider than around "
                 "RPr_L-1(min(L))", quantity="mean basin radius, level L-1 space", a="W_min(L-1)",
       b="RPr_L-1(min(L))", expect="greater", table=TABLE4_CSV,
       extract=columns("mean_radius W_min(L-1)", "mean_radius RPr_L-1(min(L))"), margin="radius",
       quote="It is clear from the figure and the table that the average radius of the basin for "
             "[W_min(L-1)] is larger than that for [RPr_L-1(min(L))]."),
    # 06: Results 2, 4, 6 (barriers above the straight line between the end losses, BARRIER)
    _c(key="R4-fig12", source=f"{S}, Result 4 (Fig 12)",
       statement="there is a loss barrier that matters (above the margin) between IMP solutions "
                 "of successive levels", quantity="barrier on the line W_min(L-1) - W_min(L)",
       a="barrier", b="0", expect="greater", table=BARRIERS_CSV, extract=barrier_above("fig12"),
       margin="barrier", quote="The barriers between successive minima are clearly visible."),
    _c(key="R4-fig12-accuracy", source=f"{S}, Result 4 (Fig 12)",
       statement="the test accuracy stays that of the two IMP solutions all along the line "
                 "between successive levels: its lowest point dips at most the margin below the "
                 "lower end",
       quantity="test accuracy along W_min(L-1) - W_min(L), drop below the lower end", a="drop",
       b="0", expect="at_most", table=FIG12_TEST_ACCURACY_CSV,
       extract=columns("test_acc_drop", "0"), margin="accuracy",
       quote="The implication is that these loss barriers are large enough to prevent SGD from "
             "crossing over and small enough to have almost similar generalization performance "
             "all over the region between these solutions."),
    _c(key="R2-fig9", source=f"{S}, Result 2 (Fig 9)",
       statement="a significant barrier separates Pr_L(min(L-1)) from W_RI(L) (different sublevel "
                 "sets)", quantity="barrier on the line Pr_L(min(L-1)) - W_RI(L)", a="barrier",
       b="0", expect="greater", table=BARRIERS_CSV, extract=barrier_above("fig09"),
       margin="barrier",
       quote="The figure shows a significant barrier between the two points [Pr_L(min(L-1)) and "
             "W_RI(L), Fig. 9], demonstrating clearly that these two points lie in different loss "
             "sublevel sets."),
    _c(key="R6-fig17", source=f"{S}, Result 6 (Fig 17)",
       statement="a huge barrier separates Pr_L(min(L-1)) from the randomly pruned W_RP(L) "
                 "(different sublevel sets)",
       quantity="barrier on the line Pr_L(min(L-1)) - W_RP(L)", a="barrier", b="0",
       expect="greater", table=BARRIERS_CSV, extract=barrier_above("fig17", series_start="Pr_"),
       margin="barrier",
       quote="The figure shows a small barrier between [?] and [?], and a huge barrier between "
             "[Pr_L(min(L-1))] and [W_RP(L)], which again demonstrates that [?] and [?] lie in "
             "the same sublevel set, while [Pr_L(min(L-1))] and [W_RP(L)] lie in different "
             "sublevel sets. (The symbols are lost in the text. The huge barrier is read as the "
             "appendix's Fig. 31 reads it. The small barrier is not judged: the kit draws that "
             "line from [W_min(L)] to [W_RP'(L)], and Result 5 places [W_RP'] outside the IMP "
             "solutions' sublevel set, so a small barrier there would contradict the text; no "
             "reading of the lost symbols is consistent with both.)"),
    _c(key="R6-fig19", source=f"{S}, Result 6 (Fig 19)",
       statement="the barrier from W_min(L) to one-shot pruning's W_OS(L) is small: at most the "
                 "margin (the same sublevel set)",
       quantity="barrier on the line W_min(L) - W_OS(L)", a="barrier", b="0", expect="at_most",
       table=BARRIERS_CSV, extract=barrier_above("fig19"), margin="barrier",
       quote="The figure shows a small barrier between [W_min(L)] and [W_OS(L)], indicating that "
             "they lie in the same sublevel set."),
    # 07: Result 5
    _c(key="R5-fig13-IMP", source=f"{S}, Result 5 (Fig 13)",
       statement="the IMP solutions spanning the plane lie in one connected sublevel set: a path "
                 "on the plane joins them with a loss at most the margin above c",
       quantity="the level at which they are joined on the plane, against the sublevel set's loss "
                "c", a="joined at", b="c", expect="at_most", table=FIG13_POINTS_CSV,
       extract=spanning_solutions_joined, margin="loss",
       quote="The figure clearly shows that all the IMP solutions ([W_min(0)] to [W_min(L)]) lie "
             "within the same connected loss sublevel set (dark green region)."),
    _c(key="R5-fig13-RI", source=f"{S}, Result 5 (Fig 13)",
       statement="W_RI(L) lies outside the sublevel set of the IMP solutions",
       quantity="level at which the point joins the IMP solutions' connected sublevel set, "
                "against c", a="loss W_RI(L)", b="c", expect="greater", table=FIG13_POINTS_CSV,
       extract=point_loss_against_sublevel("W_RI"), margin="loss",
       quote="The figure clearly shows that all the IMP solutions ([W_min(0)] to [W_min(L)]) lie "
             "within the same connected loss sublevel set (dark green region). However, [W_RI] "
             "lies outside the sublevel set."),
    _c(key="R5-fig13-RP", source=f"{S}, Result 5 (Fig 13)",
       statement="W_RP(L) (random pruning from W_min(L-1)) lies outside the sublevel set",
       quantity="level at which the point joins the IMP solutions' connected sublevel set, "
                "against c", a="loss W_RP(L)", b="c", expect="greater", table=FIG13_POINTS_CSV,
       extract=point_loss_against_sublevel("W_RP"), margin="loss",
       quote="Similarly, random pruning of a large number of weights also takes SGD outside the "
             "sublevel set. (Read as W_RP: the phrase the paper uses for [W_RP] in Figs. 17-18 "
             "and, with one random pruning only, for VGG-16's Fig. 31.)"),
    _c(key="R5-fig13-RP'", source=f"{S}, Result 5 (Fig 13)",
       statement="W_RP'(L) (one-shot random pruning of the dense network) lies outside the "
                 "sublevel set, while W_OS(L), which differs from it only by the magnitude mask, "
                 "lies inside",
       quantity="level at which the point joins the IMP solutions' connected sublevel set, "
                "against c", a="loss W_RP'(L)", b="c", expect="greater", table=FIG13_POINTS_CSV,
       extract=point_loss_against_sublevel("W_RP'"), margin="loss",
       quote="It is interesting to see that [W_OS] also lies in the same sublevel set as the IMP "
             "solutions; however, [W_RP'] lies outside the sublevel set. (Read as W_RP': the "
             "paper introduces [W_RP'] as the network whose only difference from [W_OS] is the "
             "random mask.)"),
    _c(key="R5-fig13-OS", source=f"{S}, Result 5 (Fig 13)",
       statement="W_OS(L) (one-shot pruning) lies inside the sublevel set of the IMP solutions: "
                 "it joins them at most the margin above c",
       quantity="level at which the point joins the IMP solutions' connected sublevel set, "
                "against c", a="loss W_OS(L)", b="c", expect="at_most", table=FIG13_POINTS_CSV,
       extract=point_loss_against_sublevel("W_OS"), margin="loss",
       quote="It is interesting to see that [W_OS] also lies in the same sublevel set as the IMP "
             "solutions"),
    # 08: Results 2, 3, 6, 7
    _c(key="R2-fig10", source=f"{S}, Result 2 (Fig 10)",
       statement="random re-initialization leads to a smaller volume than rewinding",
       quantity=OWN_SPACE, a="W_min(L)", b="W_RI(L)", expect="less",
       table=PRUNING_CHOICES_VOLUME_CSV, extract=columns("W_min(L)", "W_RI(L)"), margin="volume",
       quote="a comparison of top-100 positive eigen values of the Hessian at [W_min(L)] and "
             "[W_RI(L)] (Fig. 10) shows that [W_RI(L)] has larger eigen values than [W_min(L)], "
             "which indicates a smaller volume for the basin around [W_RI(L)]."),
    _c(key="R3-fig11", source=f"{S}, Result 3 (Figs 11, 20)",
       statement="one-shot pruning leads to a smaller volume than iterative pruning",
       quantity=OWN_SPACE, a="W_min(L)", b="W_OS(L)", expect="less",
       table=PRUNING_CHOICES_VOLUME_CSV, extract=columns("W_min(L)", "W_OS(L)"), margin="volume",
       quote="A comparison of top-100 positive eigen values of the Hessian between [W_min(L)] and "
             "[W_OS(L)] (Fig. 11) shows that [W_OS(L)] has larger eigen values than [W_min(L)], "
             "which implies a smaller volume for the basin around [W_OS(L)]."),
    _c(key="R6-fig16", source=f"{S}, Result 6 (Fig 16)",
       statement="pruning a band of slightly larger weights gives a much smaller volume than "
                 "pruning the smallest", quantity=OWN_SPACE, a="Pr_L(min(L-1))",
       b="band Pr_L(min(L-1))", expect="less", table=PRUNING_CHOICES_VOLUME_CSV,
       extract=columns("Pr_L(min(L-1))", "band Pr_L(min(L-1))"), margin="volume",
       quote="The volume of minimum in the latter case is generally reduced by a great deal, as "
             "seen in Fig. 16."),
    _c(key="R6-fig18", source=f"{S}, Result 6 (Fig 18)",
       statement="random pruning leads to a smaller volume than magnitude pruning",
       quantity=OWN_SPACE, a="W_min(L)", b="W_RP(L)", expect="less",
       table=PRUNING_CHOICES_VOLUME_CSV, extract=columns("W_min(L)", "W_RP(L)"), margin="volume",
       quote="It can be observed from the figure that [W_RP(L)] has larger eigen values of "
             "Hessian than that at [W_min(L)], which implies a smaller volume for the basin "
             "around [W_RP(L)]. (W_RP as in Fig. 17's huge barrier and VGG-16's Fig. 32.)"),
    _c(key="R7-fig21", source=f"{S}, Result 7 (Fig 21)",
       statement="fine-tuning leads to a smaller volume than rewinding", quantity=OWN_SPACE,
       a="W_min(L)", b="W_FT(L)", expect="less", table=PRUNING_CHOICES_VOLUME_CSV,
       extract=columns("W_min(L)", "W_FT(L)"), margin="volume",
       quote="It can be observed from the figure that [W_FT(L)] has larger eigen values of the "
             "Hessian than [W_min(L)], which implies a smaller volume for the basin around "
             "[W_FT(L)]."),
    _c(key="R6-band-loss", source=f"{S}, Result 6",
       statement="pruning the smallest weights raises the training loss less than pruning the "
                 "band of slightly larger ones", quantity="training loss of the pruned point",
       a="Pr_L(min(L-1))", b="band Pr_L(min(L-1))", expect="less", table=PRUNING_CHOICES_LOSS_CSV,
       extract=columns("Pr_L(min(L-1))", "band Pr_L(min(L-1))"), margin="loss",
       quote="Pruning out the smallest components in the weight vector results in only a small "
             "increase in the loss value. Pruning out the larger weights tends to bring about a "
             "bigger increase in the loss value"),
    _c(key="R3-sweep-loss", source=f"{S}, Result 3",
       statement="pruning more of W_min(L-1)'s weights in one step raises its training loss more: "
                 "the loss at each fraction of the sweep above the loss at the fraction before it",
       quantity="training loss of W_min(L-1) pruned in one step", a="pruned at the larger fraction",
       b="pruned at the smaller fraction", expect="greater", table=RESULT3_PRUNE_FRACTION_CSV,
       extract=trend_over_levels("loss"), margin="loss", over="step of hessian.sweep_fractions",
       quote=RESULT3),
    _c(key="R3-sweep-volume", source=f"{S}, Result 3",
       statement="pruning more of W_min(L-1)'s weights in one step shrinks its volume more: V'(k) "
                 "at each fraction of the sweep above V'(k) at the fraction before it",
       quantity="V'(k) of W_min(L-1) pruned in one step, in its own space",
       a="pruned at the larger fraction", b="pruned at the smaller fraction", expect="greater",
       table=RESULT3_PRUNE_FRACTION_CSV, extract=trend_over_levels("V'(k)"), margin="volume",
       flagged=trend_flags("pruned"), bound=trend_bound("pruned"),
       over="step of hessian.sweep_fractions", quote=RESULT3),
    # 09: the VGG-16 appendix
    _c(key="R0-fig24-accuracy", source=f"{S}, Appendix II (Fig 24)",
       statement="VGG-16: IMP-WR's solution W_min(L) has a higher test accuracy than the best of "
                 "the figure's other strategies (FT, RI, RP, OS) at the same level",
       quantity="test accuracy", a="W_min(L)", b="best other strategy", expect="greater",
       table=FIG24_STRATEGIES_CSV, extract=best_other_strategy("test_acc", "max", FIG24_STRATEGIES),
       margin="accuracy",
       quote="The plots clearly show that the solution obtained with IMP-WR ([W_min]) outperforms "
             "the solutions obtained with the other strategies"),
    _c(key="R0-fig24-loss", source=f"{S}, Appendix II (Fig 24)",
       statement="VGG-16: IMP-WR's solution W_min(L) has a lower training loss than the best of "
                 "the figure's other strategies (FT, RI, RP, OS) at the same level",
       quantity="training loss", a="W_min(L)", b="best other strategy", expect="less",
       table=FIG24_STRATEGIES_CSV,
       extract=best_other_strategy("train_loss", "min", FIG24_STRATEGIES), margin="loss",
       quote="The plots clearly show that the solution obtained with IMP-WR ([W_min]) outperforms "
             "the solutions obtained with the other strategies"),
    _c(key="R1-table6", source=f"{S}, Appendix II (Fig 26, Table VI)",
       statement="VGG-16: in level L space W_min(L) has the larger volume than Pr_L(min(L-1))",
       quantity=VOLUME, a="W_min(L)", b="Pr_L(min(L-1))", expect="less", table=TABLE6_CSV,
       extract=volume_columns("W_min(L)", "Pr_L(min(L-1))"), margin="volume",
       quote="the eigen values of the Hessian at [W_min(L)] are smaller than that at "
             "[Pr_L(min(L-1))], which means larger volume for the basin around [W_min(L)] ... "
             "This is also depicted in Table VI."),
    _c(key="R1-table7", source=f"{S}, Appendix II (Fig 27, Table VII)",
       statement="VGG-16: in level L-1 space W_min(L-1) has the larger volume than RPr_L-1(min(L))",
       quantity=VOLUME_PREV, a="W_min(L-1)", b="RPr_L-1(min(L))", expect="less", table=TABLE7_CSV,
       extract=volume_columns("W_min(L-1)", "RPr_L-1(min(L))"), margin="volume",
       quote="the eigen values of the Hessian at [W_min(L-1)] are smaller than that at "
             "[RPr_L-1(min(L))], which means larger volume for the basin around [W_min(L-1)] ... "
             "This is also depicted in table VII."),
    steeper_trajectory_claim(
        key="R1-fig25", source=f"{S}, Appendix II (Fig 25)", network="VGG-16: ",
        table=FIG25_TRAJECTORIES_CSV,
        quote="The plots clearly show that the path leading to [W_min(L)] is steeper than the "
              "path leading to [Pr_L(min(L-1))]."),
    _c(key="R4-fig28", source=f"{S}, Appendix II (Fig 28)",
       statement="VGG-16: a loss barrier that matters between IMP solutions of successive levels",
       quantity="barrier on the line W_min(L-1) - W_min(L)", a="barrier", b="0", expect="greater",
       table=APPENDIX_BARRIERS_CSV, extract=barrier_above("fig28"), margin="barrier",
       quote="The barriers between successive minima are clearly visible."),
    _c(key="R2-fig29", source=f"{S}, Appendix II (Fig 29)",
       statement="VGG-16: a huge barrier between Pr_L(min(L-1)) and W_RI(L)",
       quantity="barrier on the line Pr_L(min(L-1)) - W_RI(L)", a="barrier", b="0",
       expect="greater", table=APPENDIX_BARRIERS_CSV, extract=barrier_above("fig29"),
       margin="barrier",
       quote="The figure shows a huge barrier between the two points, which demonstrates that "
             "these two points lie in different loss sublevel sets."),
    _c(key="R6-fig31", source=f"{S}, Appendix II (Fig 31)",
       statement="VGG-16: a huge barrier between Pr_L(min(L-1)) and W_RP(L)",
       quantity="barrier on the line Pr_L(min(L-1)) - W_RP(L)", a="barrier", b="0",
       expect="greater", table=APPENDIX_BARRIERS_CSV, extract=barrier_above("fig31"),
       margin="barrier",
       quote="The figure shows a huge barrier between the two points, which demonstrates that "
             "these two points lie in different loss sublevel sets."),
    _c(key="R2-table8", source=f"{S}, Appendix II (Fig 30, Table VIII)",
       statement="VGG-16: random re-initialization leads to a smaller volume", quantity=OWN_SPACE,
       a="W_min(L)", b="W_RI(L)", expect="less", table=TABLE8_CSV,
       extract=volume_columns("W_min(L)", "W_RI(L)"), margin="volume",
       quote="the Hessian at [W_RI(L)] has larger eigen values than that at [W_min(L)], which "
             "indicates a smaller volume for the basin around [W_RI(L)] (Table VIII)."),
    _c(key="R6-table9", source=f"{S}, Appendix II (Fig 32, Table IX)",
       statement="VGG-16: random pruning leads to a smaller volume", quantity=OWN_SPACE,
       a="W_min(L)", b="W_RP(L)", expect="less", table=TABLE9_CSV,
       extract=volume_columns("W_min(L)", "W_RP(L)"), margin="volume",
       quote="the Hessian at [W_RP(L)] has larger eigen values than that at [W_min(L)], which "
             "indicates a smaller volume for the basin around [W_RP(L)] (Table IX)."),
    # 10: the IE643 report (its own statements; it has no random re-initialization result)
    *_ie643_pruning_claims(figure="fig1", net="mlp", title="MLP 300-100-10", pruned=90,
                           words="almost same as"),
    *_ie643_pruning_claims(figure="fig2", net="lenet5", title="LeNet-5", pruned=85,
                           words="almost similar to"),
    *[_c(key=f"IE643-better-{net}", source=f"{IE}, conclusion (Figs {fig})",
         statement=f"{title}: at some pruning level the ticket's test accuracy is above the "
                   "dense network's",
         quantity="test accuracy, ticket minus dense", a="ticket - dense", b="0",
         expect="greater", table=IE643_TICKETS_CSV.format(net),
         extract=columns("ticket_vs_dense", "0", weights_left(high=100)), margin="accuracy",
         quantifier="some",
         quote="We demonstrated performance of subnetworks at different pruning levels and found "
               "that the subnetworks at a specific pruning level perform better than the "
               "original network.")
      for net, title, fig in (("mlp", "MLP 300-100-10", "1"), ("lenet5", "LeNet-5", "2"))],
    _c(key="IE643-task1-halves", source=f"{IE}, Task 1 (Fig 3)",
       statement="a ticket found on one half of MNIST trains as well on the other half as that "
                 "half's own ticket (equal within the margin)",
       quantity="test accuracy on the other half", a="transferred ticket", b="target's own ticket",
       expect="equal", table=IE643_TRANSFER_CSV.format("halves"),
       extract=columns("transferred_ticket_test_acc", "target_ticket_test_acc",
                       weights_left(high=100)),
       margin="accuracy",
       quote="Test Accuracy on S_1 (one half of data containing all labels)= 95.74; Observed Test "
             "Accuracy on S_2 (remaining half of data containing all labels) = 96.14. We conclude "
             "that the winning ticket T_1 trained over S_1 generalized well when trained over "
             "S_2."),
    _c(key="IE643-task2-labels", source=f"{IE}, Task 2 (Fig 4)",
       statement="a ticket found on digits 0-4 does worse on digits 5-9 than their own ticket",
       quantity="test accuracy on the target", a="transferred ticket", b="target's own ticket",
       expect="less", table=IE643_TRANSFER_CSV.format("labels"),
       extract=columns("transferred_ticket_test_acc", "target_ticket_test_acc",
                       weights_left(high=100)),
       margin="accuracy",
       quote="Test accuracy of winning ticket (T_1) on S_1 (data set containing labels 0-4) = "
             "97.23; Test accuracy of T_1 trained over S_2 (data set containing labels 5-9): "
             "21.1479"),
    _c(key="IE643-task2-chance", source=f"{IE}, Task 2 (Fig 4)",
       statement="a ticket found on digits 0-4 and retrained on digits 5-9 collapses to chance "
                 "accuracy there (at most the margin above 1 / classes)",
       quantity="test accuracy on the target against chance", a="transferred ticket", b="chance",
       expect="at_most", table=IE643_TRANSFER_CSV.format("labels"),
       extract=columns("transferred_ticket_test_acc", "chance_test_acc",
                       weights_left(high=100)),
       margin="chance",
       quote="Test accuracy of T_1 trained over S_2 (data set containing labels 5-9): 21.1479 "
             "(five classes: chance is 20%)"),
    _c(key="IE643-task3-optimizers", source=f"{IE}, Task 3 (Fig 5)",
       statement="the ticket found and trained with SGD reaches the test accuracy of the ticket "
                 "found and trained with Adam (equal within the margin)",
       quantity="test accuracy, each optimizer's own ticket", a="SGD's ticket with SGD",
       b="Adam's ticket with Adam", expect="equal", table=IE643_TRANSFER_CSV.format("sgd_to_adam"),
       extract=columns("source_ticket_test_acc", "target_ticket_test_acc", weights_left(high=100)),
       margin="accuracy",
       quote="Test accuracy of winning ticket on O_1(SGD) = 97.52; Observed test accuracy of "
             "winning ticket on O_2(ADAM) = 97.17 (each optimizer's own ticket: no transfer is "
             "measured by these two numbers)"),
    # 11: Bain
    _c(key="Bain-fig5", source=f"{BAIN}, Fig 5 and Section 7",
       statement="from about 50% of the weights left on, the IMP ticket's test accuracy is above "
                 "the random ticket's of the same sparsity", quantity="test accuracy",
       a="IMP ticket", b="random ticket", expect="greater", table=BAIN_ACCURACY_CSV,
       extract=columns("ticket_test_acc", "random_test_acc", weights_left(high=50.0 + 1e-9)),
       margin="accuracy", quote="After around P_m = 50% the gap in performance shows."),
    _c(key="Bain-fig6-7-rise", source=f"{BAIN}, Figs 6 and 7",
       statement="the random ticket's surface is more shallow than the IMP ticket's",
       quantity="rise of the loss surface (border mean - center)", a="IMP ticket",
       b="random ticket", expect="greater", table=BAIN_SURFACES_CSV,
       extract=columns("ticket_rise", "random_rise"), margin="surface",
       quote="These tickets perform much worse relative to the WLTs obtained using IMP. They are "
             "also vastly more shallow."),
    _c(key="Bain-fig6-7-curvature", source=f"{BAIN}, Figs 6 and 7",
       statement="the IMP ticket's surface is sharper at the solution than the random ticket's",
       quantity="curvature of the loss surface at the solution", a="IMP ticket", b="random ticket",
       expect="greater", table=BAIN_SURFACES_CSV,
       extract=columns("ticket_curvature", "random_curvature"), margin="surface",
       quote="The IMP method consistently produced more convex and sharper minimizers relative to "
             "random masking."),
    _c(key="Bain-fig6-shallower", source=f"{BAIN}, Fig 6",
       statement="the IMP tickets' surfaces get shallower as pruning continues: the rise at each "
                 "shown level is below that at the shown level before it",
       quantity="rise of the loss surface (border mean - center)", a="IMP ticket at L",
       b="IMP ticket at the level before", expect="less", table=BAIN_SURFACES_CSV,
       extract=trend_over_levels("ticket_rise"), margin="surface",
       quote="The tickets perform comparably yet the landscapes get flatter and shallower as "
             "pruning continues."),
    _c(key="Bain-fig5-gap-grows", source=f"{BAIN}, Fig 5 and Section 7",
       statement="past 50% of the weights left, the IMP ticket's lead over the random ticket "
                 "grows as pruning continues: the gap at each measured level above the gap at the "
                 "one before", quantity="test accuracy gap, IMP minus random ticket", a="gap at L",
       b="gap at the level before", expect="greater", table=BAIN_ACCURACY_CSV,
       extract=trend_over_levels("gap", weights_left(high=50.0 + 1e-9)), margin="accuracy",
       quote="The results become interesting around [P_m] = 50%. It is here that the performance "
             "gap between IMP and random pruning begins to occur. It continues to grow all the "
             "way through the pruning iterations."),
    _c(key="Bain-fig5-dense", source=f"{BAIN}, Fig 5",
       statement="near 3.2% of the weights left (2-5%) the IMP ticket's test accuracy is the "
                 "dense network's, within the margin", quantity="test accuracy", a="IMP ticket",
       b="dense network", expect="equal", table=BAIN_ACCURACY_CSV,
       extract=against_dense("ticket_test_acc", weights_left(2.0, 5.0)), margin="accuracy",
       quote="When P_m = 3.2% the winning ticket is still performing as well as the original "
             "dense network"),
    _c(key="Bain-fig5-twice", source=f"{BAIN}, Fig 5",
       statement="near 3.2% of the weights left (2-5%) the IMP ticket's test accuracy is at least "
                 "twice the random ticket's", quantity="test accuracy", a="IMP ticket",
       b="2 x random ticket", expect="at_least", table=BAIN_ACCURACY_CSV,
       extract=scaled(columns("ticket_test_acc", "random_test_acc", weights_left(2.0, 5.0)), 2.0),
       margin="accuracy",
       quote="When P_m = 3.2% the winning ticket ... generalizes twice as well as the random "
             "ticket of the same sparsity."),
    _c(key="Bain-fig7-flat", source=f"{BAIN}, Fig 7",
       statement="the random ticket's surface at the sparsest shown level is flatter (smaller "
                 "curvature at the solution) than the random tickets' surfaces at the other shown "
                 "levels", quantity="curvature of the loss surface at the solution",
       a="random ticket, sparsest level", b="random ticket at L", expect="less",
       table=BAIN_SURFACES_CSV, extract=sparsest_against_others("random_curvature"),
       margin="surface",
       quote="Note the scale on the bottom-right subplot of Figure 7, where [P_m] = 4.2%. ... "
             "Relative to the others, this loss surface is very flat."),
]


def claims_of(notebook: str, params: Any = None) -> list[PaperClaim]:
    """The claims a notebook tests (its stem, a name of lthkit.config.series); Fig 22's
    one per k of `params.hessian.ks_fig22` (the default ks without params)."""
    if params is not None:
        ks = params.hessian.ks_fig22
    else:
        from lthkit.config.analysis import HessianSection
        ks = HessianSection().ks_fig22
    every = [*CLAIMS[:_FIG22_AT], *fig22_claims(ks), *CLAIMS[_FIG22_AT:]]
    return [c for c in every if c.notebook == notebook]


def _scale_of(claim: PaperClaim, frame: pd.DataFrame, facts: Mapping[str, float]
              ) -> Callable[[int], float]:
    """The margin's scale at each level of one replicate's table (NaN: |B|)."""
    scale = claim.scale
    if scale is None:
        return lambda level: math.nan
    if callable(scale):
        per_level = scale(frame)
        return lambda level: per_level.get(level, math.nan)
    value = float(facts.get(scale, math.nan)) if isinstance(scale, str) else float(scale)
    return lambda level: value


def values_across(claim: PaperClaim, frames: Sequence[pd.DataFrame],
                  facts: Mapping[str, float] | None = None) -> dict[int, Measured]:
    """{level: Measured} over the replicates' tables: both sides, the margin's scale (`facts`:
    the run's, `run_facts`), the certified bound of A - B, and why a value cannot enter ("not
    measured" where a replicate lacks that level, a flagged spectrum)."""
    per = [claim.extract(f) for f in frames]
    scales = [_scale_of(claim, f, facts or {}) for f in frames]
    flags = [claim.flagged(f) if claim.flagged else {} for f in frames]
    bounds = [claim.bound(f) if claim.bound else {} for f in frames]
    levels = sorted({lv for values in per for lv in values} - set(claim.skip_levels))
    out = {}
    for lv in levels:
        a = [v[lv][0] if lv in v else math.nan for v in per]
        b = [v[lv][1] if lv in v else math.nan for v in per]
        notes = [flag.get(lv, "") if lv in v else "not measured" for v, flag in zip(per, flags)]
        out[lv] = Measured(a, b, [scale(lv) for scale in scales], notes,
                           [e.get(lv, 0.0) for e in bounds])
    return out


_FIG22_AT = next(i for i, c in enumerate(CLAIMS) if c.claim.key == "R2-table1-projection")


def claims_file(notebook: str) -> str:
    return f"claims_{notebook}.csv"


def claim_levels_file(notebook: str) -> str:
    return f"claim_levels_{notebook}.csv"


def notebook_claims(ctx: Any, notebook: str,
                    claims: Sequence[PaperClaim] | None = None) -> pd.DataFrame:
    """Judge the claims of `notebook` over the replicates' saved tables; save the verdicts
    (tables/claims_<notebook>.csv, one row per claim; claim_levels_<notebook>.csv, per level)
    and return the per-level table (a row 'all' per claim holds its overall verdict)."""
    chosen = list(claims) if claims is not None else claims_of(notebook, ctx.params)
    judged: list[tuple[Claim, pd.DataFrame]] = []
    margins, power = ctx.params.claims.margins, ctx.params.claims.power
    facts = run_facts(ctx.params)
    for pc in chosen:
        judged.append((pc.claim, claim_table(pc.claim, values_across(
            pc, tables_across(ctx, pc.table), facts), margins=margins, power=power)))
    per_level = (pd.concat([t for _, t in judged], ignore_index=True) if judged
                 else pd.DataFrame())
    summary = claims_frame(judged)
    ctx.store.save_table(summary, claims_file(notebook))
    ctx.store.save_table(per_level, claim_levels_file(notebook))
    return per_level


def rule_text(ctx: Any, notebook: str) -> str:
    """What goes under a notebook's claims table: the rule, then the margins its claims use."""
    return f"{RULE}\n{margins_used(ctx, notebook)}"


def margins_used(ctx: Any, notebook: str) -> str:
    """The margins of the quantities `notebook`'s claims compare, one line (under its table)."""
    return margins_note(ctx.params.claims.margins,
                        [c.claim.margin for c in claims_of(notebook, ctx.params)])


def all_claims(params: Any = None) -> list[PaperClaim]:
    """Every claim of every notebook, in the series' order (Fig 22's at `params`' ks)."""
    books = dict.fromkeys(c.notebook for c in CLAIMS)
    return [c for nb in books for c in claims_of(nb, params)]


def by_key(params: Any = None) -> Mapping[str, PaperClaim]:
    return {c.claim.key: c for c in all_claims(params)}
