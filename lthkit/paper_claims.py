"""The papers' statements that notebooks 03-11 test, each read off the tables those notebooks save.

Every entry of `CLAIMS` is a `lthkit.claims.Claim` (the statement, its two sides, the expected
direction) with the saved table it reads and a function that pulls both sides per level out of
one replicate's copy of that table: `{level: (A, B)}`. `notebook_claims` gathers those values
over the replicates (`lthkit.replicates.tables_across`), judges each claim with
`lthkit.claims.claim_table` (the rule is `lthkit.claims.RULE`) and saves the result in the run
folder, where the report runner collects every notebook's claims into `claims.csv`.

Published numbers are never read here: the verdicts rest on this run's replicates only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from .claims import RULE, Claim, Measured, claim_table, claims_frame, margins_note
from .replicates import tables_across

__all__ = ["PaperClaim", "CLAIMS", "claims_of", "values_across", "notebook_claims",
           "claims_file", "claim_levels_file", "margins_used", "rule_text", "BARRIER"]

Values = dict[int, tuple[float, float]]


@dataclass(frozen=True)
class PaperClaim:
    """A claim, the table (under tables/) it is measured in, and how to read both sides; with
    `scale`, the per-level scale of a relative margin (default |B|); with `flagged`, the levels
    whose values cannot enter (a flagged spectrum) and why."""

    claim: Claim
    table: str
    extract: Callable[[pd.DataFrame], Values]
    scale: Callable[[pd.DataFrame], dict[int, float]] | None = None
    flagged: Callable[[pd.DataFrame], dict[int, str]] | None = None

    @property
    def notebook(self) -> str:
        return self.claim.notebook


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


def columns(a: str, b: str) -> Callable[[pd.DataFrame], Values]:
    """Side A from column `a`, side B from column `b`, per level (the `level` column, else the
    index); a level where either is missing (a baseline not trained there) is left out."""
    def extract(table: pd.DataFrame) -> Values:
        if a not in table or b not in table:
            return {}
        return {int(lv): (float(x), float(y))
                for lv, x, y in zip(_levels(table), table[a], table[b])
                if _level(lv) is not None and _finite(x, y)}
    return extract


def volume_columns(a: str, b: str) -> Callable[[pd.DataFrame], Values]:
    """Columns "V'(k) <a>" and "V'(k) <b>" of a volume table, whatever its k."""
    def extract(table: pd.DataFrame) -> Values:
        ks = {m.group(1) for c in table.columns if (m := re.fullmatch(r"V'\((\d+)\) .*", str(c)))}
        if len(ks) != 1:
            return {}
        k = ks.pop()
        return columns(f"V'({k}) {a}", f"V'({k}) {b}")(table)
    return extract


def spectrum_flags(a: str, b: str) -> Callable[[pd.DataFrame], dict[int, str]]:
    """Levels of a volume table whose `flags` column flags the spectrum of side a or b (not
    converged, limited by the dtype, fewer than k eigenvalues entered): their V'(k) cannot enter
    a verdict unnoticed."""
    def flagged(table: pd.DataFrame) -> dict[int, str]:
        if "flags" not in table:
            return {}
        out = {}
        for lv, text in zip(_levels(table), table["flags"]):
            if _level(lv) is None or not isinstance(text, str):
                continue
            if any(f"{name}: " in text for name in (a, b)):
                out[int(lv)] = "flagged spectrum"
        return out
    return flagged


def smallest_k(a: str, b: str) -> Callable[[pd.DataFrame], Values]:
    """Fig 22's table: columns "<a> k=K" and "<b> k=K" for the smallest K it holds."""
    def extract(table: pd.DataFrame) -> Values:
        ks = sorted(int(m.group(1)) for c in table.columns
                    if (m := re.fullmatch(re.escape(a) + r" k=(\d+)", str(c))))
        return columns(f"{a} k={ks[0]}", f"{b} k={ks[0]}")(table) if ks else {}
    return extract


# Which barrier the claims judge: the height above the straight line between the end losses
# (Frankle et al. 2020), where the table has it. The endpoints of the paper's lines have unequal
# losses (a level and the next, a solution and a baseline), and max minus the higher endpoint
# hides a bump that stays below the higher end.
BARRIER = "barrier_linear"


def _barrier_rows(table: pd.DataFrame, figure: str, series_start: str = "") -> pd.DataFrame:
    return table[(table["figure"] == figure)
                 & table["series"].astype(str).str.startswith(series_start)]


def _barriers(table: pd.DataFrame, figure: str, series_start: str = "") -> dict[int, float]:
    """Each level's barrier of a figure's line; NaN kept (a NaN loss on the line): it is
    counted as left out, not dropped."""
    rows = _barrier_rows(table, figure, series_start)
    column = BARRIER if BARRIER in rows else "barrier"
    return {int(lv): float(v) for lv, v in zip(rows["level"], rows[column])}


def barrier_scale(figure: str, series_start: str = "") -> Callable[[pd.DataFrame],
                                                                    dict[int, float]]:
    """The scale of a barrier's margin: the mean of its line's two end losses, per level."""
    def scale(table: pd.DataFrame) -> dict[int, float]:
        if not {"loss_A", "loss_B"} <= set(table.columns):
            return {}
        rows = _barrier_rows(table, figure, series_start)
        return {int(lv): (float(x) + float(y)) / 2
                for lv, x, y in zip(rows["level"], rows["loss_A"], rows["loss_B"])}
    return scale


def barrier_above(figure: str, threshold: float = 0.0,
                  series_start: str = "") -> Callable[[pd.DataFrame], Values]:
    """A barrier table (notebook 06): the barrier height of `figure`'s line (the one whose series
    starts with `series_start`) per level, against a threshold."""
    def extract(table: pd.DataFrame) -> Values:
        if not {"figure", "series", "level", "barrier"} <= set(table.columns):
            return {}
        return {lv: (v, threshold) for lv, v in _barriers(table, figure, series_start).items()}
    return extract


def barriers_of(a: tuple[str, str], b: tuple[str, str]) -> Callable[[pd.DataFrame], Values]:
    """Two lines' barrier heights per level: a and b are (figure, series prefix)."""
    def extract(table: pd.DataFrame) -> Values:
        if not {"figure", "series", "level", "barrier"} <= set(table.columns):
            return {}
        first, second = _barriers(table, *a), _barriers(table, *b)
        return {lv: (first[lv], second[lv]) for lv in sorted(set(first) & set(second))}
    return extract


def point_loss_against_sublevel(symbol: str) -> Callable[[pd.DataFrame], Values]:
    """Fig 13's points (notebook 07): the own loss of the point `<symbol>(L)` against the
    sublevel set's loss c, per level L."""
    pattern = re.compile(re.escape(symbol) + r"\((\d+)\)")

    def extract(table: pd.DataFrame) -> Values:
        if "loss" not in table or "sublevel_loss" not in table:
            return {}
        return {int(m.group(1)): (float(loss), float(c))
                for point, loss, c in zip(table.index, table["loss"], table["sublevel_loss"])
                if (m := pattern.fullmatch(str(point))) and _finite(loss, c)}
    return extract


# --- the registry ---------------------------------------------------------------------------------

S = "Saleem et al."
NB03, NB04, NB05, NB06 = ("03_distances_trajectories", "04_hessian_volume", "05_basin_radius",
                          "06_barriers")
NB07, NB08, NB09, NB10, NB11 = ("07_sublevel_sets", "08_pruning_choices", "09_vgg16_appendix",
                                "10_ticket_transfer", "11_ticket_landscapes")
VOLUME = "V'(k), level L space"
VOLUME_PREV = "V'(k), level L-1 space"
OWN_SPACE = "V'(k), each point in its own mask's space"


def _c(key: str, source: str, statement: str, quantity: str, a: str, b: str, expect: str,
       notebook: str, table: str, extract: Callable[[pd.DataFrame], Values],
       margin: str = "", scale: Callable | None = None,
       flagged: Callable | None = None) -> PaperClaim:
    margin = margin or _MARGIN_KIND[key]
    claim = Claim(key, source, statement, quantity, a, b,
                  expect, notebook, margin)  # type: ignore[arg-type]
    if margin == "volume" and flagged is None:
        flagged = spectrum_flags(a, b)
    return PaperClaim(claim, table, extract, scale or _BARRIER_SCALE.get(key), flagged)


# The kind of quantity each claim compares: its margin is claims.margins[kind].
_MARGIN_KIND = {
    "R1-fig3": "distance", "R1-table2": "radius", "R1-table4": "radius",
    **{k: "volume" for k in ("R1-table1", "R1-table3", "R1-fig22", "R2-fig10", "R3-fig11",
                             "R6-fig16", "R6-fig18", "R7-fig21", "R1-table6", "R1-table7",
                             "R2-table8", "R6-table9")},
    **{k: "barrier" for k in ("R4-fig12", "R2-fig9", "R6-fig17", "R6-fig19", "R4-fig28")},
    **{k: "loss" for k in ("R5-fig13-RI", "R5-fig13-RP", "R5-fig13-OS")},
    **{k: "accuracy" for k in ("IE643-fig1-mlp", "IE643-fig1-lenet5", "IE643-labels",
                               "Bain-fig5")},
    "Bain-fig6-7-rise": "surface", "Bain-fig6-7-curvature": "surface",
}
_BARRIER_SCALE = {"R4-fig12": barrier_scale("fig12"), "R2-fig9": barrier_scale("fig09"),
                  "R6-fig17": barrier_scale("fig17", "Pr_"), "R6-fig19": barrier_scale("fig19"),
                  "R4-fig28": barrier_scale("fig28")}


CLAIMS: list[PaperClaim] = [
    # 03: Result 1, Fig 3
    _c("R1-fig3", f"{S}, Result 1 (Fig 3)",
       "the projected previous solution is closer to the projected rewind point than the "
       "solution SGD finds", "distance from Pr_L(rewind)", "Pr_L(min(L-1))", "W_min(L)", "less",
       NB03, "fig03_distances.csv", columns("to_projected_previous", "to_solution")),
    # 04: Result 1, Tables I, III, Fig 22
    _c("R1-table1", f"{S}, Result 1 (Fig 5, Table I)",
       "in level L space W_min(L) has the larger volume (smaller V') than Pr_L(min(L-1))",
       VOLUME, "W_min(L)", "Pr_L(min(L-1))", "less", NB04, "table1.csv",
       volume_columns("W_min(L)", "Pr_L(min(L-1))")),
    _c("R1-table3", f"{S}, Result 1 (Fig 7, Table III)",
       "in level L-1 space the comparison flips: W_min(L-1) has the larger volume than "
       "RPr_L-1(min(L))", VOLUME_PREV, "W_min(L-1)", "RPr_L-1(min(L))", "less", NB04,
       "table3.csv", volume_columns("W_min(L-1)", "RPr_L-1(min(L))")),
    _c("R1-fig22", f"{S}, Result 1 (Fig 22)",
       "the volume comparison of Table I holds for smaller k too (the smallest k tabulated)",
       "V'(k) at the smallest k of hessian.ks_fig22, level L space", "W_min(L)",
       "Pr_L(min(L-1))", "less", NB04, "fig22_volume_k.csv",
       smallest_k("W_min(L)", "Pr_L(min(L-1))")),
    # 05: Result 1, Tables II, IV
    _c("R1-table2", f"{S}, Result 1 (Fig 6, Table II)",
       "in level L space the basin around W_min(L) is wider than around Pr_L(min(L-1))",
       "mean basin radius, level L space", "W_min(L)", "Pr_L(min(L-1))", "greater", NB05,
       "table2.csv", columns("mean_radius W_min(L)", "mean_radius Pr_L(min(L-1))")),
    _c("R1-table4", f"{S}, Result 1 (Fig 8, Table IV)",
       "in level L-1 space the basin around W_min(L-1) is wider than around RPr_L-1(min(L))",
       "mean basin radius, level L-1 space", "W_min(L-1)", "RPr_L-1(min(L))", "greater", NB05,
       "table4.csv", columns("mean_radius W_min(L-1)", "mean_radius RPr_L-1(min(L))")),
    # 06: Results 2, 4, 6
    _c("R4-fig12", f"{S}, Result 4 (Fig 12)",
       "there is a loss barrier between IMP solutions of successive levels",
       "barrier height on the line W_min(L-1) - W_min(L)", "barrier", "0", "greater", NB06,
       "barriers.csv", barrier_above("fig12")),
    _c("R2-fig9", f"{S}, Result 2 (Fig 9)",
       "a significant barrier separates Pr_L(min(L-1)) from W_RI(L) (different sublevel sets)",
       "barrier height on the line Pr_L(min(L-1)) - W_RI(L)", "barrier", "0", "greater", NB06,
       "barriers.csv", barrier_above("fig09")),
    _c("R6-fig17", f"{S}, Result 6 (Fig 17)",
       "the barrier from Pr_L(min(L-1)) to W_RP(L) is larger than from W_min(L) to W_RP'(L)",
       "barrier height", "Pr_L(min(L-1)) - W_RP(L)", "W_min(L) - W_RP'(L)", "greater", NB06,
       "barriers.csv", barriers_of(("fig17", "Pr_"), ("fig17", "W_min"))),
    _c("R6-fig19", f"{S}, Result 6 (Figs 19 and 9)",
       "the barrier from W_min(L) to W_OS(L) is small: smaller than from Pr_L(min(L-1)) to "
       "W_RI(L)", "barrier height", "W_min(L) - W_OS(L)", "Pr_L(min(L-1)) - W_RI(L)", "less",
       NB06, "barriers.csv", barriers_of(("fig19", ""), ("fig09", ""))),
    # 07: Result 5
    _c("R5-fig13-RI", f"{S}, Result 5 (Fig 13)",
       "W_RI(L) lies outside the sublevel set of the IMP solutions",
       "training loss at the point, against the sublevel set's loss c", "loss W_RI(L)", "c",
       "greater", NB07, "fig13_points.csv", point_loss_against_sublevel("W_RI")),
    _c("R5-fig13-RP", f"{S}, Result 5 (Fig 13)",
       "W_RP(L) (random pruning) lies outside the sublevel set of the IMP solutions",
       "training loss at the point, against the sublevel set's loss c", "loss W_RP(L)", "c",
       "greater", NB07, "fig13_points.csv", point_loss_against_sublevel("W_RP")),
    _c("R5-fig13-OS", f"{S}, Result 5 (Fig 13)",
       "W_OS(L) (one-shot pruning) lies inside the sublevel set of the IMP solutions",
       "training loss at the point, against the sublevel set's loss c", "loss W_OS(L)", "c",
       "less", NB07, "fig13_points.csv", point_loss_against_sublevel("W_OS")),
    # 08: Results 2, 3, 6, 7
    _c("R2-fig10", f"{S}, Result 2 (Fig 10)",
       "random re-initialization leads to a smaller volume than rewinding", OWN_SPACE,
       "W_min(L)", "W_RI(L)", "less", NB08, "pruning_choices_volume.csv",
       columns("W_min(L)", "W_RI(L)")),
    _c("R3-fig11", f"{S}, Result 3 (Figs 11, 20)",
       "one-shot pruning leads to a smaller volume than iterative pruning", OWN_SPACE,
       "W_min(L)", "W_OS(L)", "less", NB08, "pruning_choices_volume.csv",
       columns("W_min(L)", "W_OS(L)")),
    _c("R6-fig16", f"{S}, Result 6 (Fig 16)",
       "pruning a band of slightly larger weights gives a much smaller volume than pruning the "
       "smallest", OWN_SPACE, "Pr_L(min(L-1))", "band Pr_L(min(L-1))", "less", NB08,
       "pruning_choices_volume.csv", columns("Pr_L(min(L-1))", "band Pr_L(min(L-1))")),
    _c("R6-fig18", f"{S}, Result 6 (Fig 18)",
       "random pruning leads to a smaller volume than magnitude pruning", OWN_SPACE, "W_min(L)",
       "W_RP(L)", "less", NB08, "pruning_choices_volume.csv", columns("W_min(L)", "W_RP(L)")),
    _c("R7-fig21", f"{S}, Result 7 (Fig 21)",
       "fine-tuning leads to a smaller volume than rewinding", OWN_SPACE, "W_min(L)", "W_FT(L)",
       "less", NB08, "pruning_choices_volume.csv", columns("W_min(L)", "W_FT(L)")),
    # 09: the VGG-16 appendix
    _c("R1-table6", f"{S}, Appendix II (Fig 26, Table VI)",
       "VGG-16: in level L space W_min(L) has the larger volume than Pr_L(min(L-1))", VOLUME,
       "W_min(L)", "Pr_L(min(L-1))", "less", NB09, "table6.csv",
       volume_columns("W_min(L)", "Pr_L(min(L-1))")),
    _c("R1-table7", f"{S}, Appendix II (Fig 27, Table VII)",
       "VGG-16: in level L-1 space W_min(L-1) has the larger volume than RPr_L-1(min(L))",
       VOLUME_PREV, "W_min(L-1)", "RPr_L-1(min(L))", "less", NB09, "table7.csv",
       volume_columns("W_min(L-1)", "RPr_L-1(min(L))")),
    _c("R4-fig28", f"{S}, Appendix II (Fig 28)",
       "VGG-16: a loss barrier between IMP solutions of successive levels",
       "barrier height on the line W_min(L-1) - W_min(L)", "barrier", "0", "greater", NB09,
       "appendix_barriers.csv", barrier_above("fig28")),
    _c("R2-table8", f"{S}, Appendix II (Fig 30, Table VIII)",
       "VGG-16: random re-initialization leads to a smaller volume", OWN_SPACE, "W_min(L)",
       "W_RI(L)", "less", NB09, "table8.csv", volume_columns("W_min(L)", "W_RI(L)")),
    _c("R6-table9", f"{S}, Appendix II (Fig 32, Table IX)",
       "VGG-16: random pruning leads to a smaller volume", OWN_SPACE, "W_min(L)", "W_RP(L)",
       "less", NB09, "table9.csv", volume_columns("W_min(L)", "W_RP(L)")),
    # 10: the IE643 report
    _c("IE643-fig1-mlp", "IE643 report, Figs 1-2 (Table 1)",
       "MLP 300-100-10: the ticket keeps a higher test accuracy than its random "
       "re-initialization", "test accuracy", "ticket", "random re-init", "greater", NB10,
       "ie643_tickets_mlp.csv", columns("ticket_test_acc", "control_test_acc")),
    _c("IE643-fig1-lenet5", "IE643 report, Figs 1-2 (Table 1)",
       "LeNet-5: the ticket keeps a higher test accuracy than its random re-initialization",
       "test accuracy", "ticket", "random re-init", "greater", NB10,
       "ie643_tickets_lenet5.csv", columns("ticket_test_acc", "control_test_acc")),
    _c("IE643-labels", "IE643 report, Fig 4 (Table 2)",
       "a ticket found on other labels (digits 0-4) does worse on digits 5-9 than their own "
       "ticket", "test accuracy on the target", "transferred ticket", "target's own ticket",
       "less", NB10, "ie643_transfer_labels.csv",
       columns("transferred_ticket_test_acc", "target_ticket_test_acc")),
    # 11: Bain
    _c("Bain-fig5", "Bain, Fig 5 and Section 7",
       "the IMP ticket's test accuracy is above the random ticket's of the same sparsity",
       "test accuracy", "IMP ticket", "random ticket", "greater", NB11, "bain_accuracy.csv",
       columns("ticket_test_acc", "random_test_acc")),
    _c("Bain-fig6-7-rise", "Bain, Figs 6 and 7",
       "the random ticket's surface is more shallow than the IMP ticket's",
       "rise of the loss surface (border mean - center)", "IMP ticket", "random ticket",
       "greater", NB11, "bain_surfaces.csv", columns("ticket_rise", "random_rise")),
    _c("Bain-fig6-7-curvature", "Bain, Figs 6 and 7",
       "the IMP ticket's surface is sharper at the solution than the random ticket's",
       "curvature of the loss surface at the solution", "IMP ticket", "random ticket",
       "greater", NB11, "bain_surfaces.csv", columns("ticket_curvature", "random_curvature")),
]


def claims_of(notebook: str) -> list[PaperClaim]:
    """The claims a notebook tests (its name without .ipynb, e.g. '04_hessian_volume')."""
    return [c for c in CLAIMS if c.notebook == notebook]


def values_across(claim: PaperClaim, frames: Sequence[pd.DataFrame]) -> dict[int, Measured]:
    """{level: Measured} over the replicates' tables: both sides, the margin's scale, and why a
    value cannot enter ("not measured" where a replicate lacks that level, "flagged spectrum")."""
    per = [claim.extract(f) for f in frames]
    scales = [claim.scale(f) if claim.scale else {} for f in frames]
    flags = [claim.flagged(f) if claim.flagged else {} for f in frames]
    levels = sorted({lv for values in per for lv in values})
    out = {}
    for lv in levels:
        a = [v[lv][0] if lv in v else math.nan for v in per]
        b = [v[lv][1] if lv in v else math.nan for v in per]
        notes = [flag.get(lv, "") if lv in v else "not measured" for v, flag in zip(per, flags)]
        out[lv] = Measured(a, b, [s.get(lv, math.nan) for s in scales], notes)
    return out


def claims_file(notebook: str) -> str:
    return f"claims_{notebook}.csv"


def claim_levels_file(notebook: str) -> str:
    return f"claim_levels_{notebook}.csv"


def notebook_claims(ctx: Any, notebook: str,
                    claims: Sequence[PaperClaim] | None = None) -> pd.DataFrame:
    """Judge the claims of `notebook` over the replicates' saved tables; save the verdicts
    (tables/claims_<notebook>.csv, one row per claim; claim_levels_<notebook>.csv, per level)
    and return the per-level table (a row 'all' per claim holds its overall verdict)."""
    chosen = list(claims) if claims is not None else claims_of(notebook)
    judged: list[tuple[Claim, pd.DataFrame]] = []
    margins = ctx.params.claims.margins
    for pc in chosen:
        judged.append((pc.claim, claim_table(pc.claim, values_across(
            pc, tables_across(ctx, pc.table)), margins=margins)))
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
    return margins_note(ctx.params.claims.margins, [c.claim.margin for c in claims_of(notebook)])


def by_key() -> Mapping[str, PaperClaim]:
    return {c.claim.key: c for c in CLAIMS}
