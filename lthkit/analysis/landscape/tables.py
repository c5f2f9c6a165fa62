"""Tables of the landscape notebooks (barriers, radii, the radius flip, plane points) and the
paper's published radii."""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import pandas as pd

from lthkit.analysis import published
from lthkit.analysis.landscape.lines import linear_barrier
from lthkit.analysis.landscape.planes import joining_losses

__all__ = ["PAPER_RADII", "is_paper_preset", "plane_table", "barrier_table", "line_test_table",
           "radius_table", "radius_flip_table", "PAPER_SURFACES", "surface_recipe"]

# The published radii and the rule deciding when they stand beside ours live in
# lthkit.analysis.published; these two names are kept for older code.
PAPER_RADII: dict[str, dict[str, float]] = published.legacy_radii()


def is_paper_preset(params: Any) -> bool:
    """Whether the run follows the paper's recipe for the radii of Tables II and IV
    (`lthkit.analysis.published.paper_recipe(params, "radius")`)."""
    return published.paper_recipe(params, "radius") is not None


def plane_table(plane: Mapping[str, Any], sublevel: float | None = None) -> pd.DataFrame:
    """The points of a plane: coordinates on it, distance from it, own loss (in the sublevel set?),
    and, for a plane with its grid, `joins_at`: the level at which the point joins the connected
    sublevel set that holds the three solutions spanning the plane (planes.joining_losses), so
    `in_connected_sublevel_set` is membership of that component of {loss <= c}, not only a loss
    below c; `spanning_joined_at`: the level at which those three are in one component."""
    coords, dist = plane["coords"], plane["distance"]
    df = pd.DataFrame({"point": plane["labels"], "u": coords[:, 0].numpy(),
                       "v": coords[:, 1].numpy(), "distance_from_plane": dist.numpy(),
                       "loss": plane["point_loss"].numpy(), "accuracy": plane["point_acc"].numpy()})
    if sublevel is not None:
        df["loss_below_sublevel"] = df["loss"] <= sublevel
        df["sublevel_loss"] = sublevel  # c, for Result 5 (lthkit.verdicts.paper_claims)
        if "x" in plane and "loss" in plane:  # connectivity on the plane's grid
            spans = list(plane["labels"][:3])
            joins = joining_losses(plane, spans)
            df["spans_plane"] = df["point"].isin(spans)
            df["joins_at"] = [joins[p] for p in df["point"]]
            df["in_connected_sublevel_set"] = df["joins_at"] <= sublevel
            df["spanning_joined_at"] = joins["seeds joined"]
    return df.set_index("point")


# --- tables -------------------------------------------------------------------------------------

def barrier_table(lines: Iterable[tuple[str, int, Mapping[str, Any]]]) -> pd.DataFrame:
    """One row per line (figure, level, line result): end losses, highest loss, and two barrier
    heights: `barrier`, the highest loss minus the higher end's, and `barrier_linear`, the most
    the loss rises above the straight line between the end losses (Frankle et al. 2020), which
    the claims judge (`lthkit.verdicts.paper_claims.BARRIER`)."""
    rows = []
    for figure, level, ln in lines:
        inside = (ln["alpha"] >= 0) & (ln["alpha"] <= 1)
        linear, at = linear_barrier(ln["alpha"], ln["loss"], ln["loss_a"], ln["loss_b"])
        rows.append({"figure": figure, "series": ln.get("series", f"{ln['a']} – {ln['b']}"),
                     "level": level, "A": ln["a"], "B": ln["b"],
                     "loss_A": ln["loss_a"], "loss_B": ln["loss_b"],
                     "max_loss": float(ln["loss"][inside].max()), "barrier": ln["barrier"],
                     "alpha_at_max": ln["barrier_alpha"], "barrier_linear": linear,
                     "alpha_at_linear_max": at, "distance": ln["distance"]})
    return pd.DataFrame(rows)


def line_test_table(lines: Iterable[tuple[str, int, Mapping[str, Any]]]) -> pd.DataFrame:
    """Result 4's generalization between two solutions, one row per test-split line (figure,
    level, `Landscape.line_test`): test accuracy at both ends and its lowest point between them
    (alpha in [0, 1]); `test_acc_drop` is how far that lowest point lies below the lower end
    (0 when the accuracy never dips below both ends), and the same for the test loss's rise."""
    rows = []
    for figure, level, ln in lines:
        inside = (ln["alpha"] >= 0) & (ln["alpha"] <= 1)
        acc, loss = ln["acc"][inside], ln["loss"][inside]
        acc_a, acc_b = float(acc[0]), float(acc[-1])
        rows.append({"figure": figure, "series": ln.get("series", ""), "level": level,
                     "test_acc_A": acc_a, "test_acc_B": acc_b, "test_acc_min": float(acc.min()),
                     "test_acc_drop": max(0.0, min(acc_a, acc_b) - float(acc.min())),
                     "test_loss_A": float(loss[0]), "test_loss_B": float(loss[-1]),
                     "test_loss_rise": max(0.0, float(loss.max()) - max(float(loss[0]),
                                                                        float(loss[-1])))})
    return pd.DataFrame(rows)


def radius_table(pairs: Iterable[tuple[int, Mapping[str, Any], Mapping[str, Any]]],
                 names: tuple[str, str], params: Any = None,
                 comparison: str | None = None) -> pd.DataFrame:
    """One compared pair per level (Tables II, IV): both points' radii, the cut-off used, which
    basin is wider, and, for a run of the paper's recipe, the published means.

    `names` are the generic names of the two points ("W_min(L)", "Pr_L(min(L-1))"), in the
    order of `pairs`. Per point: mean, median and std of the radius over the directions, how many
    directions never crossed the cut-off (censored), its own loss L, the cut-off c it was measured
    under and (c - L) / L, how loose that cut-off is for it. With `landscape.radius_reference:
    pair_max` both points share c (from the higher of their losses); with `own` each has its own.
    `comparison` ("radius_L", "radius_L-1") names the paper's table (lthkit.analysis.published).
    """
    rows = []
    for level, *both in pairs:
        row: dict[str, Any] = {"level": level, "space": f"level {both[0]['space']}",
                               "reference": both[0].get("reference", "own"),
                               "cutoff_rule": both[0].get("cutoff_rule", "")}
        columns = {  # column -> value per point; grouped so each quantity's pair sits together
            "solution": lambda r: r["label"], "cutoff": lambda r: r["cutoff"],
            "loss": lambda r: r["center_loss"],
            "normalized_cutoff": lambda r: _normalized(r["cutoff"], r["center_loss"]),
            "mean_radius": lambda r: r["mean"], "median": lambda r: r["median"],
            "std": lambda r: r["std"], "censored": lambda r: int(r["censored"].sum())}
        for column, value in columns.items():
            row |= {f"{column} {name}": value(r) for name, r in zip(names, both)}
            if column == "mean_radius":
                row[f"{names[0]} wider"] = both[0]["mean"] > both[1]["mean"]
        row["directions"] = len(both[0]["radii"])
        if params is not None and comparison is not None:
            row |= {c.replace("paper ", "paper mean_radius ", 1): v
                    for c, v in published.paper_columns(params, comparison, level).items()}
        rows.append(row)
    return pd.DataFrame(rows).set_index("level")


def _normalized(cutoff: float, loss: float) -> float:
    return (cutoff - loss) / loss if loss > 0 else math.nan


def radius_flip_table(pairs_l: Mapping[int, tuple[dict, dict]],
                      pairs_prev: Mapping[int, tuple[dict, dict]]) -> pd.DataFrame:
    """Per level: mean radii of Fig 6's pair (level L space) and Fig 8's (level L-1 space), and
    whether the solution found at that space's level has the wider basin in each."""
    rows = []
    for level in sorted(pairs_l):
        (a, b), (c, d) = pairs_l[level], pairs_prev[level]
        rows.append({"level": level, "L space: W_min(L)": a["mean"],
                     "L space: Pr_L(min(L-1))": b["mean"], "W_min(L) wider": a["mean"] > b["mean"],
                     "L-1 space: W_min(L-1)": c["mean"], "L-1 space: RPr_{L-1}(min(L))": d["mean"],
                     "W_min(L-1) wider": c["mean"] > d["mean"]})
    return pd.DataFrame(rows).set_index("level")


# How each paper made its filter-normalized surfaces (Li et al. 2018's code,
# tomgoldstein/loss-landscape: `plot_surface.py --dir_type weights --xnorm filter --xignore
# biasbn`, the model in eval mode, torch.manual_seed(123) for every model; Bain's fork of it).
PAPER_SURFACES: dict[str, dict[str, Any]] = {
    "li": {"name": "Li et al.", "bn": "solution", "directions": "dense", "draw": "shared",
           "data": "the whole training set", "resolution": 51},
    "bain": {"name": "Bain", "bn": "solution", "directions": "dense", "draw": "shared",
             "data": "250 test images", "resolution": 125},
}
# (what the figure says, the short form beside a paper's) per setting
_WORDS: dict[str, dict[str, tuple[str, str]]] = {
    "bn": {"solution": ("BN: the solution's running statistics", "the solution's"),
           "recalibrate": ("BN: recomputed at every point", "recomputed")},
    "directions": {"dense": ("directions: dense, every weight moves", "dense"),
                   "masked": ("directions: masked, zero on pruned weights, the kit's extension",
                              "masked")},
    "draw": {"shared": ("one draw for every level", "one for every level"),
             "per_level": ("a draw per level", "per level")},
}


def surface_recipe(surface: Mapping[str, Any], paper: str,
                   examples: Iterable[int] | None = None) -> str:
    """Two lines saying how a surface was made against `paper` ("li" or "bain"): BatchNorm,
    directions and draw, then its examples and grid beside the paper's (the figures' note).
    `examples`: the sizes of a sweep (default: the surface's own)."""
    ref = PAPER_SURFACES[paper]
    name = ref["name"]

    def versus(key: str) -> str:
        value = surface[key]
        said = _WORDS[key][value][0]
        if value == ref[key]:
            return f"{said} (as {name})"
        return f"{said} ({name}: {_WORDS[key][ref[key]][1]})"

    first = [versus("bn") if surface.get("batchnorm", True) else "no BatchNorm in this network",
             versus("directions")]
    sizes = list(examples) if examples is not None else [surface.get("examples", "?")]
    split = "test" if surface.get("split") == "test" else "training"
    n = len(surface["x"])
    span = surface.get("span", max(abs(float(surface["x"][0])), abs(float(surface["x"][-1]))))
    data = (f"{', '.join(map(str, sizes))} {split} examples, {n} x {n} grid on "
            f"[-{span:g}, {span:g}]² ({name}: {ref['data']}, {ref['resolution']} x "
            f"{ref['resolution']})")
    return "; ".join(first) + "\n" + versus("draw") + "; " + data
