"""Tables of the landscape notebooks (barriers, radii, the radius flip, plane points) and the
paper's published radii."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import pandas as pd

__all__ = ["PAPER_RADII", "is_paper_preset", "plane_table", "barrier_table", "radius_table",
           "radius_flip_table"]

# Mean basin radii of the paper (ResNet-20 / CIFAR-10; the level they were measured at was lost
# in the extraction). Table II: level L space; Table IV: level L-1 space.
PAPER_RADII: dict[str, dict[str, float]] = {
    "table2": {"W_min(L)": 0.232314, "Pr_L(min(L-1))": 0.183428},
    "table4": {"W_min(L-1)": 0.091809, "RPr_{L-1}(min(L))": 0.074714},
}


def is_paper_preset(params: Any) -> bool:
    """Whether a run follows the paper's ResNet-20 / CIFAR-10 recipe (its numbers are comparable)."""
    p = params
    return (p.run.name.startswith("resnet20_paper")
            or (p.model.arch == "resnet20" and p.data.dataset == "cifar10"
                and p.model.width in (None, 16) and p.train.epochs == 160))


def plane_table(plane: Mapping[str, Any], sublevel: float | None = None) -> pd.DataFrame:
    """The points of a plane: coordinates on it, distance from it, own loss (in the sublevel set?)."""
    coords, dist = plane["coords"], plane["distance"]
    df = pd.DataFrame({"point": plane["labels"], "u": coords[:, 0].numpy(),
                       "v": coords[:, 1].numpy(), "distance_from_plane": dist.numpy(),
                       "loss": plane["point_loss"].numpy(), "accuracy": plane["point_acc"].numpy()})
    if sublevel is not None:
        df["loss_below_sublevel"] = df["loss"] <= sublevel
    return df.set_index("point")


# --- tables -------------------------------------------------------------------------------------

def barrier_table(lines: Iterable[tuple[str, int, Mapping[str, Any]]]) -> pd.DataFrame:
    """One row per line (figure, level, line result): end losses, highest loss, barrier height."""
    rows = []
    for figure, level, ln in lines:
        inside = (ln["alpha"] >= 0) & (ln["alpha"] <= 1)
        rows.append({"figure": figure, "series": ln.get("series", f"{ln['a']} – {ln['b']}"),
                     "level": level, "A": ln["a"], "B": ln["b"],
                     "loss_A": ln["loss_a"], "loss_B": ln["loss_b"],
                     "max_loss": float(ln["loss"][inside].max()), "barrier": ln["barrier"],
                     "alpha_at_max": ln["barrier_alpha"], "distance": ln["distance"]})
    return pd.DataFrame(rows)


def radius_table(pairs: Iterable[tuple[int, dict, dict]], paper: Mapping[str, float] | None = None,
                 names: tuple[str, str] | None = None) -> pd.DataFrame:
    """Mean radius (and spread) of both points of each pair, one row per (level, solution).

    `paper` ({generic name: published mean}) adds a column beside ours, matched through `names`,
    the generic names of the pair's two points (e.g. "W_min(L)", "Pr_L(min(L-1))").
    """
    rows = []
    for level, ra, rb in pairs:
        for which, r in enumerate((ra, rb)):
            row = {"level": level, "solution": r["label"], "space": f"level {r['space']}",
                   "mean_radius": r["mean"], "median": r["median"], "std": r["std"],
                   "censored": int(r["censored"].sum()), "directions": len(r["radii"]),
                   "loss": r["center_loss"], "cutoff": r["cutoff"]}
            if paper is not None and names is not None:
                row["paper_mean_radius"] = paper.get(names[which], float("nan"))
            rows.append(row)
    return pd.DataFrame(rows).set_index(["level", "solution"])


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
