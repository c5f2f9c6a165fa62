"""lthkit-claims: the claims of several finished runs side by side (does an insight generalize?).

    lthkit-claims outputs/resnet20_paper outputs/vgg16_paper outputs/my_wrn [--out DIR]

Reads each run folder's claims.csv (written by lthkit-report), and writes DIR/claims_across.csv
(one row per claim, for each run its verdict, effect and interval) and DIR/claims_across.png
(claim by run, coloured by verdict, each cell the effect in units of the claim's margin with its
interval). DIR defaults to outputs/claims_across; nothing is written into the runs' folders.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from lthkit.store.files import atomic_write_bytes
from lthkit.verdicts.claims import sign_of

__all__ = ["claims_across", "claims_across_figure", "main", "MissingClaimsError"]

SHOWN = ("verdict", "effect", "effect low", "effect high", "margin", "replicates")


class MissingClaimsError(RuntimeError):
    """A folder given has no claims.csv (not a finished run of lthkit-report)."""


def read_claims(run: Path) -> pd.DataFrame:
    """A run folder's claims.csv, or one clear error naming the file and what to do."""
    path = run / "claims.csv"
    if not path.is_file():
        raise MissingClaimsError(f"{path}: no claims.csv; run `lthkit-report <params.yaml>` for "
                                 "that run first (its report writes it)")
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.EmptyDataError) as e:
        raise MissingClaimsError(f"{path}: cannot be read ({e}); rerun lthkit-report for that "
                                 "run to write it again") from None
    missing = [c for c in ("claim", *SHOWN) if c not in table]
    if missing:
        raise MissingClaimsError(f"{path}: written by an older lthkit (no {missing[0]!r}); rerun "
                                 "lthkit-report for that run to judge its claims again")
    return table


def run_labels(runs: Sequence[Path]) -> list[str]:
    """A short label per run: the folder's name, with its parent where two names are the same."""
    names = [r.name for r in runs]
    return [f"{r.parent.name}/{r.name}" if names.count(r.name) > 1 else r.name for r in runs]


def claims_across(runs: Sequence[Path]) -> pd.DataFrame:
    """One row per claim (in the order the runs first name them), for each run its verdict,
    effect, interval, margin and replicates (columns (run, what)); a claim a run did not judge
    is empty there. The claim's statement and relation from the first run that has it."""
    tables = [read_claims(r) for r in runs]
    order = list(dict.fromkeys(k for t in tables for k in t["claim"]))
    out = pd.DataFrame(index=pd.Index(order, name="claim"))
    described = pd.concat([t.set_index("claim")[[c for c in ("statement", "relation", "expect")
                                                  if c in t]] for t in tables])
    described = described[~described.index.duplicated()]
    for column in described.columns:
        out[("", column)] = described[column].reindex(order)
    for label, table in zip(run_labels(runs), tables):
        by_claim = table.set_index("claim")
        for what in SHOWN:
            out[(label, what)] = by_claim[what].reindex(order)
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    return out


def claims_across_figure(table: pd.DataFrame):
    """Claim by run, each cell coloured by the run's verdict and showing the effect in units of
    the claim's margin (as claimed: positive is the claimed direction) and its interval."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from lthkit.plots.claims import VERDICT_COLORS

    runs = [r for r in dict.fromkeys(table.columns.get_level_values(0)) if r]
    n, m = len(table), len(runs)
    fig, ax = plt.subplots(figsize=(2.3 * m + 3.0, 0.32 * n + 1.4))
    for i, claim in enumerate(table.index):
        sign = sign_of(str(table.loc[claim, ("", "expect")]))
        for j, run in enumerate(runs):
            verdict = table.loc[claim, (run, "verdict")]
            color = VERDICT_COLORS.get(str(verdict), "#ffffff")
            ax.add_patch(Rectangle((j, n - 1 - i), 1, 1, color=color, alpha=0.35 if
                                   isinstance(verdict, str) else 0.0))
            ax.text(j + 0.5, n - 0.5 - i, _cell(table, claim, run, sign), ha="center",
                    va="center", fontsize=6.5)
    ax.set_xlim(0, m)
    ax.set_ylim(0, n)
    ax.set_xticks([j + 0.5 for j in range(m)], runs, fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks([n - 0.5 - i for i in range(n)], list(table.index), fontsize=7)
    ax.grid(False)
    handles = [plt.Line2D([], [], color=c, marker="s", lw=0, label=v)
               for v, c in VERDICT_COLORS.items()]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("Claims across runs: effect as claimed in margins [95% interval]", fontsize=9,
                 pad=24)
    fig.tight_layout()
    return fig


def _cell(table: pd.DataFrame, claim: str, run: str, sign: float) -> str:
    """'effect [low, high]' in units of the margin (as claimed), or the verdict alone."""
    verdict = table.loc[claim, (run, "verdict")]
    if not isinstance(verdict, str):
        return "not judged"
    margin = float(table.loc[claim, (run, "margin")])
    values = [sign * float(table.loc[claim, (run, w)]) for w in ("effect", "effect low",
                                                                  "effect high")]
    if not (margin > 0 and all(math.isfinite(v) for v in values)):
        return verdict
    effect, low, high = (v / margin for v in values)
    low, high = sorted((low, high))
    return f"{effect:.2g} [{low:.2g}, {high:.2g}]"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lthkit-claims", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (outputs/<run>)")
    parser.add_argument("--out", type=Path, default=Path("outputs") / "claims_across",
                        help="folder for claims_across.csv and .png (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        table = claims_across(args.runs)
    except MissingClaimsError as e:
        print(f"lthkit-claims: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    flat = table.copy()
    flat.columns = [f"{run}: {what}" if run else what for run, what in table.columns]
    atomic_write_bytes(args.out / "claims_across.csv", lambda f: flat.to_csv(f), mode="w")
    import matplotlib.pyplot as plt

    fig = claims_across_figure(table)
    atomic_write_bytes(args.out / "claims_across.png",
                       lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    labels = [r for r in dict.fromkeys(table.columns.get_level_values(0)) if r]
    for run in labels:
        counts = table[(run, "verdict")].value_counts()
        print(f"{run}: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    print(f"written: {args.out / 'claims_across.csv'}, {args.out / 'claims_across.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
