"""The claim registry (issue 36 item 5): each claim one keyword record with its margin kind and its
table; the table is one a notebook of the series declares, the columns its readers read are
columns that notebook writes, and a claim added as one record is judged and shown like the
others."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from lthkit.config import load_params, series
from lthkit.config.analysis import HessianSection
from lthkit.config.training import DataSection
from lthkit.config.report import CLAIM_MARGINS, ClaimsSection
from lthkit.report.claims_page import claims_html
from lthkit.store import MANIFEST, RunStore, replicate_dir
from lthkit.store.files import save_json
from lthkit.verdicts import paper_claims as pc
from lthkit.verdicts.claims import HOLDS
from lthkit.verdicts.replicates import read_table


def _toy(**changes) -> pc.PaperClaim:
    """One record of the registry: a claim of notebook 05's radius_flip.csv (which no claim
    reads)."""
    record = dict(key="toy-radius", source="a toy paper, Fig 1",
                  statement="the toy's A is below its B", quantity="toy distance", a="A",
                  b="B", expect="less", table="radius_flip.csv",
                  extract=pc.columns("toy A", "toy B"), margin="distance",
                  quote="A is smaller than B.")
    return pc._c(**{**record, **changes})


# --- records ------------------------------------------------------------------------------------

def test_a_claim_is_built_from_keywords_only():
    with pytest.raises(TypeError):
        pc._c("toy", "a toy paper", "A below B", "toy distance", "A", "B", "less",  # type: ignore
              "radius_flip.csv", pc.columns("toy A", "toy B"), "distance")
    with pytest.raises(TypeError, match="margin"):
        pc._c(key="toy", source="a toy paper", statement="A below B", quantity="q", a="A",
              b="B", expect="less", table="radius_flip.csv", extract=pc.columns("x", "y"))


def test_every_claim_carries_a_margin_kind_of_claims_margins():
    for claim in pc.all_claims():
        assert claim.claim.margin in CLAIM_MARGINS, (claim.claim.key, claim.claim.margin)


def test_every_claims_table_is_declared_by_its_notebook_in_the_series():
    """The notebook a claim belongs to is the one that saves its table (series.py); a claim
    placed in another notebook would say so with `notebook=`, and none is."""
    for claim in pc.all_claims():
        assert series.notebook_of_table(claim.table) == claim.notebook, claim.claim.key
        assert claim.notebook in series.NOTEBOOKS, claim.claim.key
    assert _toy().notebook == series.BASIN_RADIUS


def test_a_misspelled_table_is_refused_naming_it():
    with pytest.raises(KeyError, match=r"radius_flips\.csv.*lthkit/config/series\.py"):
        _toy(table="radius_flips.csv")
    placed = _toy(notebook=series.BARRIERS, table="radius_flips.csv")  # placed by hand
    with pytest.raises(KeyError, match="radius_flips"):
        series.notebook_of_table(placed.table)


def test_every_claim_names_the_columns_it_reads():
    """Each claim's readers say which columns they read (a '{k}' is the run's hessian.k), so
    that the columns can be checked against the tables the notebooks write."""
    for claim in pc.all_claims():
        assert claim.columns, f"{claim.claim.key}: its extractor names no columns (pc._reads)"
    table1 = pc.by_key()["R1-table1"]
    assert table1.columns_at(100) == ("V'(100) W_min(L)", "V'(100) Pr_L(min(L-1))", "flags",
                                      "bound W_min(L)", "bound Pr_L(min(L-1))")
    assert pc.by_key()["IE643-task2-chance"].columns == (
        "transferred_ticket_test_acc", "chance_test_acc", "weights_left_%")
    assert _toy(extract=pc.columns("toy A", "0")).columns == ("toy A",), "a threshold is no column"


# --- the columns a claim reads are columns its notebook writes -----------------------------------

def _written(table: pd.DataFrame) -> set[str]:
    return {str(c) for c in table.columns} | {str(n) for n in table.index.names if n}


def _readings(claim: pc.PaperClaim, table: pd.DataFrame) -> str:
    """What a claim's readers read off a table (NaN-safe, for comparing two tables)."""
    return repr([sorted(reader(table).items()) if callable(reader) else None
                 for reader in (claim.extract, claim.flagged, claim.bound, claim.scale)])


def _unread_columns(params, claims: list[pc.PaperClaim]) -> dict[str, list[str]]:
    """Per claim, the columns it reads that its table in the run lacks; and (a claim reading a
    column it does not name) those whose readers read differently off the table cut down to the
    columns it names (and the row key, `level`)."""
    store = RunStore(params.run_dir())
    out = {}
    for claim in claims:
        path = store.table_path(claim.table)
        assert path.exists(), f"{claim.claim.key}: {claim.notebook} wrote no {claim.table}"
        table = read_table(path)
        named = claim.columns_at(params.hessian.k)
        missing = [c for c in named if c not in _written(table)]
        if missing:
            out[claim.claim.key] = missing
            continue
        kept = [c for c in table.columns if c in named or c == "level"]
        if _readings(claim, table[kept]) != _readings(claim, table):
            out[claim.claim.key] = ["reads a column it does not name"]
    return out


@pytest.mark.notebook
@pytest.mark.parametrize("preset", ["smoke", "smoke_vgg16"])
def test_every_column_a_claim_reads_is_one_its_notebook_writes(preset, request):
    """On the smoke presets' runs of the series (the notebook tests' own, each notebook run once
    a session): every claim of the notebooks run reads columns its table has."""
    smoke = request.getfixturevalue(preset)
    params = load_params(smoke.params_file)
    for name in params.report.notebooks:
        smoke.run(name)
    claims = [c for c in pc.all_claims(params) if c.notebook in params.report.notebooks]
    assert claims
    assert _unread_columns(params, claims) == {}


def test_a_misspelled_column_is_found(tmp_path):
    """The check above finds a claim reading a column the table lacks, and a claim reading a
    column it does not name."""
    params = SimpleNamespace(run_dir=lambda: tmp_path, hessian=SimpleNamespace(k=6))
    RunStore(tmp_path).save_table(pd.DataFrame({"toy A": [1.0], "toy B": [2.0]},
                                               index=pd.Index([1], name="level")),
                                  "radius_flip.csv")
    assert _unread_columns(params, [_toy()]) == {}
    assert _unread_columns(params, [_toy(extract=pc.columns("toy A", "toy b"))]) == {
        "toy-radius": ["toy b"]}
    unnamed = pc._reads(lambda t: {1: (float(t["toy A"].iloc[0]), float(t["toy B"].iloc[0]))}
                        if "toy B" in t else {}, "toy A")
    assert _unread_columns(params, [_toy(extract=unnamed)]) == {
        "toy-radius": ["reads a column it does not name"]}


# --- a new claim is one record ----------------------------------------------------------------------

def _run_of(tmp_path: Path, frames: list[pd.DataFrame], name: str):
    """A context of replicate 0 of a run whose replicates saved `frames` as table `name`."""
    root = tmp_path / "run"
    for r, frame in enumerate(frames):
        folder = replicate_dir(root, r)
        folder.mkdir(parents=True, exist_ok=True)
        save_json(folder / MANIFEST, {"fingerprint": {}})
        RunStore(folder).save_table(frame, name)
    params = SimpleNamespace(run=SimpleNamespace(replicates=len(frames)), claims=ClaimsSection(),
                             hessian=HessianSection(k=6, ks_fig22=[6]), data=DataSection())
    return SimpleNamespace(store=RunStore(root), params=params, replicate=0)


def test_a_claim_added_as_one_record_is_judged_and_shown(tmp_path, monkeypatch):
    toy = _toy()
    monkeypatch.setattr(pc, "CLAIMS", [*pc.CLAIMS, toy])
    assert pc.claims_of(series.BASIN_RADIUS)[-1] is toy
    assert pc.by_key()["toy-radius"] is toy
    frames = [pd.DataFrame({"toy A": [1.0 + e, 2.0 - e], "toy B": [3.0, 4.0 + e]},
                           index=pd.Index([1, 2], name="level")) for e in (0.0, 0.05, -0.05)]
    ctx = _run_of(tmp_path, frames, "radius_flip.csv")
    per_level = pc.notebook_claims(ctx, series.BASIN_RADIUS)
    mine = per_level[per_level["claim"] == "toy-radius"]
    assert list(mine["level"]) == [1, 2, "all"] and set(mine["verdict"]) == {HOLDS}
    assert mine.iloc[0]["margin"] == pytest.approx(0.02 * 3.0), "distance: 2% of |B|"
    summary = pd.read_csv(ctx.store.table_path(pc.claims_file(series.BASIN_RADIUS)), index_col=0)
    row = summary.set_index("claim").loc["toy-radius"]
    assert (row["notebook"], row["margin kind"], row["verdict"]) == (series.BASIN_RADIUS,
                                                                    "distance", HOLDS)
    assert "distance" in pc.margins_used(ctx, series.BASIN_RADIUS)
    summary.to_csv(ctx.store.root / "claims.csv", index=False)  # as lthkit-report gathers them
    page = claims_html(ctx.store.root)
    assert "toy-radius" in page and "the toy&#x27;s A is below its B" in page
    assert 'id="claim-toy-radius"' in page, "its table level by level"
    assert row["effect"] == pytest.approx(-2.0), "A - B, pooled over the levels"
