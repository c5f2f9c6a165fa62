"""The report's sections: which notebooks and levels the series shows (report), and the practical
margins the claims are judged against (claims)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from lthkit.config.base import LevelSelection, _Section
from lthkit.config.series import DEFAULT_NOTEBOOKS


class ReportSection(_Section):
    notebooks: list[str] = Field(
        list(DEFAULT_NOTEBOOKS),
        description="notebooks the report runner executes, in order")
    html: bool = Field(True, description="write an HTML copy of every executed notebook")
    show_levels: LevelSelection = Field("all", description="levels drawn in the static figures")


# The smallest effect that matters for each kind of quantity a claim compares: (default, how it
# scales, what it is). "absolute": in the quantity's own units; "relative": the default times the
# claim's scale at that level, the mean over the replicates of the scale named in the third
# field (|B| where nothing else is named). Scales never vanish as training converges: a barrier is
# measured against the chance-level loss ln(classes), not against the (shrinking) end losses, and
# a V'(k) difference per eigenvalue, times the k of the table. Read by lthkit.verdicts.claims;
# documented under every claims table.
CLAIM_MARGINS: dict[str, tuple[float, str, str]] = {
    "volume": (0.005, "relative", "V'(k) difference per eigenvalue, times the k used (0.5 at "
               "k = 100): a sum of k log eigenvalues"),
    "radius": (0.02, "relative", "basin radius difference, a fraction of B's radius"),
    "distance": (0.02, "relative", "distance difference, a fraction of B's distance"),
    "similarity": (0.02, "absolute", "cosine similarity difference"),
    "barrier": (0.01, "relative", "barrier height, a fraction of the chance-level loss "
                "ln(classes) (0.023 on 10 classes), which does not vanish as training converges"),
    "loss": (0.01, "relative", "training loss difference, a fraction of B's loss (c)"),
    "accuracy": (0.01, "absolute", "test accuracy difference (0.01: one percentage point)"),
    "chance": (0.05, "absolute", "test accuracy above chance (1 / classes) that still counts as "
               "chance level"),
    "surface": (0.02, "relative", "surface rise or curvature difference, a fraction of B's"),
    "slope": (0.1, "relative", "difference of two slopes of ln(loss) per epoch, a fraction of "
              "the steeper one's"),
}
# The power the replicates needed aim at: the chance that a run of that many replicates settles
# an inconclusive claim, were the measured effect and spread the true ones.
CLAIM_POWER = 0.8
# A per-eigenvalue V'(k) margin above this (a tenth of a log unit per eigenvalue) is a whole-V'
# margin written before margins were per eigenvalue.
VOLUME_MARGIN_MAX = 0.1


class ClaimsSection(_Section):
    """How claims are judged (lthkit.verdicts.claims): the smallest effect that matters, per
    quantity."""

    margins: dict[str, float] = Field(
        default_factory=lambda: {k: v[0] for k, v in CLAIM_MARGINS.items()},
        description="smallest effect that matters, per kind of quantity: "
        + "; ".join(f"{k} {v[0]:g} ({v[1]}: {v[2]})" for k, v in CLAIM_MARGINS.items())
        + ". A claim holds at a level when the interval of its difference lies beyond +margin "
        "on the claimed side, is reversed beyond -margin, negligible within +-margin. Kinds "
        "not given keep their default")
    power: float = Field(CLAIM_POWER, gt=0.5, lt=1.0,
                         description="the power the 'replicates needed' of an inconclusive claim "
                         "aim at: the chance that that many replicates settle it, were the "
                         "measured effect and spread the true ones")

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
            if k == "volume" and x > VOLUME_MARGIN_MAX:
                raise ValueError(f"volume: the margin is per eigenvalue (times the k used: 0.005 "
                                 f"is 0.5 at k = 100), at most {VOLUME_MARGIN_MAX:g} (got {x!r}; "
                                 "a margin for the whole V'(k) divided by k)")
            out[k] = float(x)
        return out


