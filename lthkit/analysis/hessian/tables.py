"""The paper's Hessian tables: I, III (V'(k) in the level L and L-1 spaces), V (the flip), Fig 22's
V'(k) by k, the pruning choices of notebook 08, traces; the published values beside ours."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import pandas as pd

from lthkit.analysis import published
from lthkit.analysis.hessian.analysis import (BASELINE_SYMBOLS, HessianAnalysis, HessianPoint,
                                              band_projection, baseline_levels, baseline_solution,
                                              fraction_projection, imp_projection,
                                              imp_reverse_projection, imp_solution,
                                              spectrum_bound)
from lthkit.analysis.hessian.lanczos import DEFAULT_POSITIVE_THRESHOLD, log_volume, volume_count

__all__ = ["PUBLISHED", "paper_preset", "volume_tables", "flip_table", "volume_by_k",
           "choice_points", "choice_names", "choices_tables", "trace_table", "PRUNING_CHOICE_FIGURES",
           "BASELINE_COMPARISONS", "APPENDIX_CHOICE_FIGURES", "baseline_volume_table",
           "unique_points", "sweep_points", "prune_fraction_sweep", "pruning_choice_levels"]


# The published values and the rule deciding when they stand beside ours live in
# lthkit.analysis.published; these two names are kept for older code (notebook 04 prints
# paper_preset).
PUBLISHED: dict[str, dict[str, dict[int, tuple[float, float]]]] = published.legacy_volumes()


def paper_preset(params) -> str | None:
    """'resnet20' or 'vgg16' when the run follows that recipe of the paper for V'(100)
    (`lthkit.analysis.published.paper_recipe(params, "volume")`), else None."""
    return published.paper_recipe(params, "volume")


def volume_tables(analysis: HessianAnalysis, imp, levels: Sequence[int],
                  k: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table I (level L space: Pr_L(min(L-1)) against W_min(L)) and Table III (level L-1 space:
    RPr_{L-1}(min(L)) against W_min(L-1)), V'(k) per level, with the published values beside
    ours when the run is the paper's recipe and k is theirs (100)."""
    k = k or analysis.cfg.k
    params = analysis.ctx.params
    t1, t3 = [], []
    for L in levels:
        pr, mn = analysis.spectrum(imp_projection(imp, L)), analysis.spectrum(imp_solution(imp, L))
        rpr = analysis.spectrum(imp_reverse_projection(imp, L))
        prev = analysis.spectrum(imp_solution(imp, L - 1))
        t1.append(_pair_row(L, "Pr_L(min(L-1))", pr, "W_min(L)", mn, k, params, "volume_L",
                            analysis.cfg.positive_threshold))
        t3.append(_pair_row(L, "RPr_L-1(min(L))", rpr, "W_min(L-1)", prev, k, params,
                            "volume_L-1", analysis.cfg.positive_threshold))
        t1[-1].update(_quality(analysis, k, {"Pr_L(min(L-1))": pr, "W_min(L)": mn}))
        t3[-1].update(_quality(analysis, k, {"RPr_L-1(min(L))": rpr, "W_min(L-1)": prev}))
    return (pd.DataFrame(t1).set_index("level"), pd.DataFrame(t3).set_index("level"))


def _quality(analysis: HessianAnalysis, k: int, spectra: Mapping[str, dict],
             ks: Sequence[int] = ()) -> dict:
    """The columns that say how far V'(k) can be trusted: per spectrum, how many eigenvalues
    entered it (above hessian.positive_threshold x lambda_max), the error bound its residuals
    certify (`bound <name>`; with `ks`, `bound <name> k=K` for each K instead), and the flags of
    all of them (not converged, limited by the dtype, fewer than k entered); '' when nothing to
    say. A value short of its tolerance enters the claims with its bound (lthkit.verdicts)."""
    t = analysis.cfg.positive_threshold
    row: dict[str, object] = {f"entered {name}": volume_count(s["eigenvalues"], k, t)[1]
                              for name, s in spectra.items()}
    for name, s in spectra.items():
        if ks:
            row |= {f"bound {name} k={kk}": spectrum_bound(s, kk, t) for kk in ks}
        else:
            row[f"bound {name}"] = spectrum_bound(s, k, t)
    flags = [f"{name}: {f}" for name, s in spectra.items() if (f := analysis.flags(s, k))]
    row["flags"] = " | ".join(flags)
    return row


def _pair_row(level: int, a_name: str, a: dict, b_name: str, b: dict, k: int,
              params, comparison: str | None,
              threshold: float = DEFAULT_POSITIVE_THRESHOLD) -> dict:
    va, vb = log_volume(a["eigenvalues"], k, threshold), log_volume(b["eigenvalues"], k, threshold)
    row: dict[str, object] = {"level": level, f"V'({k}) {a_name}": va, f"V'({k}) {b_name}": vb,
                              "difference": va - vb, f"{b_name} has the larger volume": vb < va,
                              f"loss {a_name}": a["loss"], f"loss {b_name}": b["loss"]}
    if comparison is not None:  # the paper's values, only for a run of its recipe
        row.update(published.paper_columns(params, comparison, level, k))
    return row


def flip_table(analysis: HessianAnalysis, imp, levels: Sequence[int],
               k: int | None = None) -> pd.DataFrame:
    """Table V for every level pair (L-1, L): in level L-1 space W_min(L-1) against W_min(L),
    in level L space W_min(L) against W_min(L-1) projected; rows (pair, space, solution), and
    the paper's values for a run of its recipe at its k."""
    k = k or analysis.cfg.k
    params = analysis.ctx.params
    shown = published.paper_table(params, "volume_L", k) is not None
    rows = []
    for L in levels:
        pair = f"{L - 1}->{L}"
        pub1 = published.paper_columns(params, "volume_L", L, k)
        pub3 = published.paper_columns(params, "volume_L-1", L, k)
        entries = [
            (f"level {L - 1}", f"W_min({L - 1}) (level {L - 1} solution)",
             imp_solution(imp, L - 1), pub3, "paper W_min(L-1)"),
            (f"level {L - 1}", f"RPr_{L - 1}(min({L})) (level {L} solution)",
             imp_reverse_projection(imp, L), pub3, "paper RPr_L-1(min(L))"),
            (f"level {L}", f"W_min({L}) (level {L} solution)",
             imp_solution(imp, L), pub1, "paper W_min(L)"),
            (f"level {L}", f"Pr_{L}(min({L - 1})) (level {L - 1} solution)",
             imp_projection(imp, L), pub1, "paper Pr_L(min(L-1))"),
        ]
        for space, solution, point, pub, column in entries:
            spectrum = analysis.spectrum(point)
            row = {"pair": pair, "space": space, "solution": solution,
                   f"V'({k})": analysis.log_volume(spectrum, k),
                   "entered": volume_count(spectrum["eigenvalues"], k,
                                           analysis.cfg.positive_threshold)[1],
                   "bound": spectrum_bound(spectrum, k, analysis.cfg.positive_threshold),
                   "flags": analysis.flags(spectrum, k)}
            if shown:
                row["paper"] = pub.get(column, math.nan)
                if published.AGAINST_COLUMN in pub:  # a row of the paper against its own text
                    row[published.AGAINST_COLUMN] = pub[published.AGAINST_COLUMN]
            rows.append(row)
    table = pd.DataFrame(rows).set_index(["pair", "space", "solution"])
    if published.AGAINST_COLUMN in table:
        table[published.AGAINST_COLUMN] = table[published.AGAINST_COLUMN].fillna("")
    return table


def volume_by_k(analysis: HessianAnalysis, imp, levels: Sequence[int],
                ks: Sequence[int]) -> pd.DataFrame:
    """Fig 22's data: V'(k) for each k at W_min(L) and Pr_L(min(L-1)), one row per level."""
    rows = []
    for L in levels:
        mn = analysis.spectrum(imp_solution(imp, L))
        pr = analysis.spectrum(imp_projection(imp, L))
        row: dict[str, object] = {"level": L}
        for k in ks:
            row[f"W_min(L) k={k}"] = analysis.log_volume(mn, k)
            row[f"Pr_L(min(L-1)) k={k}"] = analysis.log_volume(pr, k)
        row.update(_quality(analysis, max(ks), {"W_min(L)": mn, "Pr_L(min(L-1))": pr}, ks))
        rows.append(row)
    return pd.DataFrame(rows).set_index("level")


# Notebook 08: figure -> (baseline kind compared with W_min(L), what it shows). Figs 11 and 20
# are the same pair in REPRODUCTION.md (the symbols of Fig 20 were lost in the extraction).
PRUNING_CHOICE_FIGURES: dict[int, tuple[str, str]] = {
    10: ("random_reinit", "random re-initialization W_RI(L)"),
    11: ("one_shot", "one-shot pruning W_OS(L)"),
    18: ("random_prune", "random pruning W_RP(L)"),
    20: ("one_shot", "one-shot pruning W_OS(L), the pair of Fig 19"),
    21: ("fine_tune", "fine-tuning W_FT(L)"),
}


def choice_points(imp, baselines, levels: Sequence[int], kinds: Sequence[str],
                  band_levels: Sequence[int], fraction: float, scope: str = "global"
                  ) -> dict[int, dict[str, HessianPoint]]:
    """Per level, {column name: point}: W_min(L), Pr_L(min(L-1)), the band-pruned projection
    (at `band_levels`) and every baseline kind notebook 02 has finished at that level."""
    have = set(baselines.available())
    out: dict[int, dict[str, HessianPoint]] = {}
    for L in levels:
        points = {"W_min(L)": imp_solution(imp, L), "Pr_L(min(L-1))": imp_projection(imp, L)}
        if L in band_levels:
            points["band Pr_L(min(L-1))"] = band_projection(imp, L, fraction, scope)
        for kind in kinds:
            if (kind, L) in have:
                points[f"W_{BASELINE_SYMBOLS.get(kind, kind)}(L)"] = baseline_solution(
                    baselines, kind, L)
        out[L] = points
    return out


def choice_names(points: Mapping[int, Mapping[str, HessianPoint]]) -> list[str]:
    """The kinds of point of `choice_points`, each once, in order: the volume table's columns
    of V'(k) (beside them stand the columns that say how far each can be trusted)."""
    return list(dict.fromkeys(name for named in points.values() for name in named))


def choices_tables(analysis: HessianAnalysis, points: Mapping[int, Mapping[str, HessianPoint]],
                   k: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """V'(k) and the loss at every point of `choice_points`: one row per level, one column per
    kind of point (NaN where a point is not part of the run); beside the volumes, how far each
    can be trusted (`_quality`: entered, bound, flags)."""
    k = k or analysis.cfg.k
    volumes, losses = [], []
    for L, named in points.items():
        spectra = {name: analysis.spectrum(pt) for name, pt in named.items()}
        volumes.append({"level": L, **{n: analysis.log_volume(s, k) for n, s in spectra.items()},
                        **_quality(analysis, k, spectra)})
        losses.append({"level": L, **{n: s["loss"] for n, s in spectra.items()}})
    return (pd.DataFrame(volumes).set_index("level"), pd.DataFrame(losses).set_index("level"))


# Baselines whose comparison with W_min(L) the paper tabulates (VGG-16: Tables VIII and IX), by
# the name of that comparison in lthkit.analysis.published, and the appendix figures drawing them.
BASELINE_COMPARISONS: dict[str, str] = {"random_reinit": "volume_RI", "random_prune": "volume_RP"}
APPENDIX_CHOICE_FIGURES: dict[int, tuple[str, str]] = {
    30: ("random_reinit", "random re-initialization W_RI(L) (Table VIII)"),
    32: ("random_prune", "random pruning W_RP(L) (Table IX)"),
}


def unique_points(*groups: Sequence[HessianPoint] | Mapping[int, Mapping[str, HessianPoint]]
                  ) -> list[HessianPoint]:
    """The points of several lists or `choice_points` results, each (name, space) once, in order:
    the input of one spectra report."""
    out: dict[tuple[str, str], HessianPoint] = {}
    for group in groups:
        flat = ([pt for named in group.values() for pt in named.values()]
                if isinstance(group, Mapping) else list(group))
        for pt in flat:
            out.setdefault((pt.name, pt.space), pt)
    return list(out.values())


def baseline_volume_table(analysis: HessianAnalysis, imp, baselines, kind: str,
                          levels: Sequence[int], k: int | None = None) -> pd.DataFrame:
    """V'(k) of a baseline W_X(L) against W_min(L), one row per level where notebook 02 trained
    it (Tables VIII and IX for random re-initialization and random pruning): both volumes, their
    difference, which is larger, both losses, and the paper's values for a run of its recipe at
    its k (Table VIII/IX's row, level lost, at the level it is presumed to be: 12)."""
    k = k or analysis.cfg.k
    name = f"W_{BASELINE_SYMBOLS.get(kind, kind)}(L)"
    rows = []
    for L in baseline_levels(baselines, kind, levels):
        other = analysis.spectrum(baseline_solution(baselines, kind, L))
        mn = analysis.spectrum(imp_solution(imp, L))
        row = _pair_row(L, name, other, "W_min(L)", mn, k, analysis.ctx.params,
                        BASELINE_COMPARISONS.get(kind), analysis.cfg.positive_threshold)
        row.update(_quality(analysis, k, {name: other, "W_min(L)": mn}))
        rows.append(row)
    return pd.DataFrame(rows).set_index("level") if rows else pd.DataFrame()


def trace_table(analysis: HessianAnalysis, points: Mapping[int, HessianPoint]) -> pd.DataFrame:
    """Hutchinson trace (and its standard error) of the masked Hessian per level."""
    rows = []
    for level, point in points.items():
        t = analysis.trace(point)
        rows.append({"level": level, "point": point.name, "dim": t["dim"], "trace": t["trace"],
                     "std_error": t["std_error"], "trace_per_dim": t["trace"] / t["dim"]})
    return pd.DataFrame(rows).set_index("level")


def pruning_choice_levels(params) -> list[int]:
    """The IMP levels notebook 08 reads: 0, the analysis levels, the band-pruning levels and the
    sweep's level, with the predecessor of each of the last two (they are pruned from it)."""
    levels = params.levels(params.analysis.levels, minimum=1)
    band = params.levels(params.hessian.band_levels, minimum=1)
    sweep = [params.hessian.sweep_level or levels[0]] if params.hessian.sweep_fractions else []
    return sorted({0, *levels, *band, *sweep, *(lv - 1 for lv in (*band, *sweep))})


def sweep_points(imp, level: int, fractions: Sequence[float], scope: str = "global"
                 ) -> list[HessianPoint]:
    """The points of Result 3's sweep: W_min(L-1) pruned of each fraction in one step."""
    return [fraction_projection(imp, level, f, scope) for f in fractions]


def prune_fraction_sweep(analysis: HessianAnalysis, imp, level: int, fractions: Sequence[float],
                         scope: str = "global", k: int | None = None) -> pd.DataFrame:
    """Result 3 ("if too many weights are pruned out in a step, it leads to a bigger increase in
    the training loss and a bigger decrease in volume"), measured without retraining: one row
    per step of `fractions`, W_min(L-1) pruned of its smallest fraction: the dimension of its
    space, its training loss and the increase over W_min(L-1)'s, V'(k) in its space and how far
    that can be trusted (`_quality`, the point named "pruned")."""
    k = k or analysis.cfg.k
    before = analysis.spectrum(imp_solution(imp, level - 1))["loss"]
    rows = []
    for step, point in enumerate(sweep_points(imp, level, fractions, scope)):
        spectrum = analysis.spectrum(point)
        rows.append({"step": step, "level": level, "fraction": fractions[step],
                     "dim": spectrum["dim"], "loss": spectrum["loss"],
                     "loss increase": spectrum["loss"] - before, "k": k,
                     "V'(k)": analysis.log_volume(spectrum, k),
                     **_quality(analysis, k, {"pruned": spectrum})})
    return pd.DataFrame(rows).set_index("step") if rows else pd.DataFrame()
