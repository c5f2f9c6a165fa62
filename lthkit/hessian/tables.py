"""The paper's Hessian tables: I, III (V'(k) in the level L and L-1 spaces), V (the flip), Fig 22's
V'(k) by k, the pruning choices of notebook 08, traces; the published values beside ours."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import pandas as pd

from .analysis import (BASELINE_SYMBOLS, HessianAnalysis, HessianPoint, band_projection,
                       baseline_solution, imp_projection, imp_reverse_projection, imp_solution)
from .lanczos import DEFAULT_POSITIVE_THRESHOLD, log_volume, volume_count

__all__ = ["PUBLISHED", "paper_preset", "volume_tables", "flip_table", "volume_by_k",
           "choice_points", "choices_tables", "trace_table", "PRUNING_CHOICE_FIGURES"]


# V'(100) published in the paper, for runs of its recipe. Table I (level L space):
# (Pr_L(min(L-1)), W_min(L)); Table III (level L-1 space): (RPr_{L-1}(min(L)), W_min(L-1)).
PUBLISHED: dict[str, dict[str, dict[int, tuple[float, float]]]] = {
    "resnet20": {
        "table1": {1: (409.242, 407.417), 2: (402.678, 399.680), 3: (400.855, 386.948),
                   4: (392.829, 375.590), 5: (417.984, 372.753), 6: (420.431, 373.472),
                   7: (446.758, 375.401), 8: (432.505, 382.051), 9: (488.004, 394.166),
                   10: (525.621, 408.810)},
        "table3": {1: (418.034, 415.42), 2: (415.826, 407.417), 3: (403.674, 399.68),
                   4: (394.347, 386.948), 5: (391.093, 375.59), 6: (391.471, 372.753),
                   7: (394.086, 373.472), 8: (398.559, 375.401), 9: (411.997, 382.051),
                   10: (427.475, 394.166)},
    },
    "vgg16": {  # Table VI: level L space at L = 1, 6, 11; Table VII: level L-1 space, L = 1, 6, 12
        "table1": {1: (212.779, 203.681), 6: (198.106, 177.233), 11: (414.844, 352.86)},
        "table3": {1: (219.996, 220.915), 6: (201.835, 189.044), 12: (426.294, 352.86)},
    },
}


def paper_preset(params) -> str | None:
    """'resnet20' or 'vgg16' when the run follows that recipe of the paper (CIFAR-10, full width,
    160 epochs, its pruning rate, global ranking, k = 100), so its published V'(100) can stand
    beside ours."""
    from ..models import DEFAULT_WIDTH

    arch = params.model.arch
    rate = {"resnet20": 0.2, "vgg16": 0.4}.get(arch)
    if (rate is None or params.data.dataset != "cifar10" or params.hessian.k != 100
            or (params.model.width or DEFAULT_WIDTH[arch]) != DEFAULT_WIDTH[arch]
            or params.imp.prune_fraction != rate or params.imp.scope != "global"
            or params.train.epochs != 160):
        return None
    return arch


def volume_tables(analysis: HessianAnalysis, imp, levels: Sequence[int],
                  k: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table I (level L space: Pr_L(min(L-1)) against W_min(L)) and Table III (level L-1 space:
    RPr_{L-1}(min(L)) against W_min(L-1)), V'(k) per level, with the published values beside
    ours when the run is the paper's recipe."""
    k = k or analysis.cfg.k
    preset = paper_preset(analysis.ctx.params)
    t1, t3 = [], []
    for L in levels:
        pr, mn = analysis.spectrum(imp_projection(imp, L)), analysis.spectrum(imp_solution(imp, L))
        rpr = analysis.spectrum(imp_reverse_projection(imp, L))
        prev = analysis.spectrum(imp_solution(imp, L - 1))
        t1.append(_pair_row(L, "Pr_L(min(L-1))", pr, "W_min(L)", mn, k, preset, "table1",
                            analysis.cfg.positive_threshold))
        t3.append(_pair_row(L, "RPr_L-1(min(L))", rpr, "W_min(L-1)", prev, k, preset, "table3",
                            analysis.cfg.positive_threshold))
        t1[-1].update(_quality(analysis, k, {"Pr_L(min(L-1))": pr, "W_min(L)": mn}))
        t3[-1].update(_quality(analysis, k, {"RPr_L-1(min(L))": rpr, "W_min(L-1)": prev}))
    return (pd.DataFrame(t1).set_index("level"), pd.DataFrame(t3).set_index("level"))


def _quality(analysis: HessianAnalysis, k: int, spectra: Mapping[str, dict]) -> dict:
    """The columns that say how far V'(k) can be trusted: per spectrum, how many eigenvalues
    entered it (above hessian.positive_threshold x lambda_max), and the flags of all of them
    (not converged, limited by the dtype, fewer than k entered); '' when nothing to say."""
    t = analysis.cfg.positive_threshold
    row: dict[str, object] = {f"entered {name}": volume_count(s["eigenvalues"], k, t)[1]
                              for name, s in spectra.items()}
    flags = [f"{name}: {f}" for name, s in spectra.items() if (f := analysis.flags(s, k))]
    row["flags"] = " | ".join(flags)
    return row


def _pair_row(level: int, a_name: str, a: dict, b_name: str, b: dict, k: int,
              preset: str | None, table: str,
              threshold: float = DEFAULT_POSITIVE_THRESHOLD) -> dict:
    va, vb = log_volume(a["eigenvalues"], k, threshold), log_volume(b["eigenvalues"], k, threshold)
    row: dict[str, object] = {"level": level, f"V'({k}) {a_name}": va, f"V'({k}) {b_name}": vb,
                              "difference": va - vb, f"{b_name} has the larger volume": vb < va,
                              f"loss {a_name}": a["loss"], f"loss {b_name}": b["loss"]}
    published = PUBLISHED.get(preset or "", {}).get(table, {}).get(level)
    if preset is not None:
        row[f"paper {a_name}"] = published[0] if published else math.nan
        row[f"paper {b_name}"] = published[1] if published else math.nan
    return row


def flip_table(analysis: HessianAnalysis, imp, levels: Sequence[int],
               k: int | None = None) -> pd.DataFrame:
    """Table V for every level pair (L-1, L): in level L-1 space W_min(L-1) against W_min(L),
    in level L space W_min(L) against W_min(L-1) projected; rows (pair, space, solution)."""
    k = k or analysis.cfg.k
    preset = paper_preset(analysis.ctx.params)
    pub1 = PUBLISHED.get(preset or "", {}).get("table1", {})
    pub3 = PUBLISHED.get(preset or "", {}).get("table3", {})
    rows = []
    for L in levels:
        pair = f"{L - 1}->{L}"
        entries = [
            (f"level {L - 1}", f"W_min({L - 1}) (level {L - 1} solution)",
             imp_solution(imp, L - 1), pub3.get(L, (math.nan, math.nan))[1]),
            (f"level {L - 1}", f"RPr_{L - 1}(min({L})) (level {L} solution)",
             imp_reverse_projection(imp, L), pub3.get(L, (math.nan, math.nan))[0]),
            (f"level {L}", f"W_min({L}) (level {L} solution)",
             imp_solution(imp, L), pub1.get(L, (math.nan, math.nan))[1]),
            (f"level {L}", f"Pr_{L}(min({L - 1})) (level {L - 1} solution)",
             imp_projection(imp, L), pub1.get(L, (math.nan, math.nan))[0]),
        ]
        for space, solution, point, published in entries:
            spectrum = analysis.spectrum(point)
            row = {"pair": pair, "space": space, "solution": solution,
                   f"V'({k})": analysis.log_volume(spectrum, k),
                   "entered": volume_count(spectrum["eigenvalues"], k,
                                           analysis.cfg.positive_threshold)[1],
                   "flags": analysis.flags(spectrum, k)}
            if preset is not None:
                row["paper"] = published
            rows.append(row)
    return pd.DataFrame(rows).set_index(["pair", "space", "solution"])


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
        row.update(_quality(analysis, max(ks), {"W_min(L)": mn, "Pr_L(min(L-1))": pr}))
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


def choices_tables(analysis: HessianAnalysis, points: Mapping[int, Mapping[str, HessianPoint]],
                   k: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """V'(k) and the loss at every point of `choice_points`: one row per level, one column per
    kind of point (NaN where a point is not part of the run)."""
    k = k or analysis.cfg.k
    volumes, losses = [], []
    for L, named in points.items():
        spectra = {name: analysis.spectrum(pt) for name, pt in named.items()}
        volumes.append({"level": L, **{n: analysis.log_volume(s, k) for n, s in spectra.items()}})
        losses.append({"level": L, **{n: s["loss"] for n, s in spectra.items()}})
    return (pd.DataFrame(volumes).set_index("level"), pd.DataFrame(losses).set_index("level"))


def trace_table(analysis: HessianAnalysis, points: Mapping[int, HessianPoint]) -> pd.DataFrame:
    """Hutchinson trace (and its standard error) of the masked Hessian per level."""
    rows = []
    for level, point in points.items():
        t = analysis.trace(point)
        rows.append({"level": level, "point": point.name, "dim": t["dim"], "trace": t["trace"],
                     "std_error": t["std_error"], "trace_per_dim": t["trace"] / t["dim"]})
    return pd.DataFrame(rows).set_index("level")
