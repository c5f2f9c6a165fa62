"""The report's sections: which notebooks and levels the series shows (report), and the practical
margins the claims are judged against (claims)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from lthkit.config.base import LevelSelection, _Section


class ReportSection(_Section):
    notebooks: list[str] = Field(
        ["01_train_imp", "02_baselines", "03_distances_trajectories", "04_hessian_volume",
         "05_basin_radius", "06_barriers", "07_sublevel_sets", "08_pruning_choices"],
        description="notebooks the report runner executes, in order")
    html: bool = Field(True, description="write an HTML copy of every executed notebook")
    show_levels: LevelSelection = Field("all", description="levels drawn in the static figures")


# The smallest effect that matters for each kind of quantity a claim compares: (default, how it
# scales, what it is). "absolute": in the quantity's own units; "relative": a fraction of the
# claim's scale at that level (the mean, over the replicates, of |B|, or for barriers of the
# line's end losses). Read by lthkit.verdicts.claims; documented under every claims table.
CLAIM_MARGINS: dict[str, tuple[float, str, str]] = {
    "volume": (0.5, "absolute", "V'(k) difference, a sum of log eigenvalues"),
    "radius": (0.02, "relative", "basin radius difference, a fraction of B's radius"),
    "distance": (0.02, "relative", "distance difference, a fraction of B's distance"),
    "barrier": (0.01, "relative", "barrier height, a fraction of the line's mean end loss"),
    "loss": (0.01, "relative", "training loss difference, a fraction of B's loss (c)"),
    "accuracy": (0.01, "absolute", "test accuracy difference (0.01: one percentage point)"),
    "surface": (0.02, "relative", "surface rise or curvature difference, a fraction of B's"),
    "slope": (0.1, "relative", "difference of two slopes of ln(loss) per epoch, a fraction of "
              "the steeper one's"),
}


class ClaimsSection(_Section):
    """How claims are judged (lthkit.verdicts.claims): the smallest effect that matters, per
    quantity."""

    margins: dict[str, float] = Field(
        default_factory=lambda: {k: v[0] for k, v in CLAIM_MARGINS.items()},
        description="smallest effect that matters, per kind of quantity: "
        + "; ".join(f"{k} {v[0]:g} ({v[1]}: {v[2]})" for k, v in CLAIM_MARGINS.items())
        + ". A claim holds at a level when the interval of its difference lies beyond +margin "
        "on the claimed side, and does not hold when it lies on the other side of 0 or wholly "
        "within +-margin. Kinds not given keep their default")

    @field_validator("margins", mode="before")
    @classmethod
    def _known_kinds(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            raise ValueError(f"must be a mapping of quantity kind to margin (got {v!r})")
        unknown = sorted(set(v) - set(CLAIM_MARGINS))
        if unknown:
            raise ValueError(f"unknown kind {unknown[0]!r}; known: {', '.join(CLAIM_MARGINS)}")
        out = {k: d[0] for k, d in CLAIM_MARGINS.items()}
        for k, x in v.items():
            if isinstance(x, bool) or not isinstance(x, int | float) or x < 0:
                raise ValueError(f"{k}: a margin is a number >= 0 (got {x!r})")
            out[k] = float(x)
        return out


