"""Replicates (folders, seeds, tables across them) and the papers' claims read off saved tables,
on constructed numbers; the runner on a tiny series of two replicates (marked notebook)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats as sps

from lthkit.verdicts import paper_claims as pc
from lthkit import plots
from lthkit.analysis.hessian.lanczos import log_volume
from lthkit.analysis.hessian.tables import _pair_row
from lthkit.analysis.landscape.tables import barrier_table, plane_table, radius_table
from lthkit.config.analysis import HessianSection
from lthkit.config.base import ParamsError
from lthkit.config.report import ClaimsSection
from lthkit.config.seeds import derive_seed, replicate_params
from lthkit.config.training import DataSection
from lthkit.report.runner import write_claims, write_index
from lthkit.store.files import save_json
from lthkit.store.layout import RunStore
from lthkit.store.paths import MANIFEST
from lthkit.store.paths import damage_message as _damage_message
from lthkit.store.paths import replicate_dir
from lthkit.train.context import open_run
from lthkit.verdicts.claims import HOLDS, INCONCLUSIVE, VERDICTS as ALL_VERDICTS
from lthkit.verdicts.replicates import summary_frame, tables_across

ROOT = Path(__file__).resolve().parents[1]
VERDICTS = set(ALL_VERDICTS)


# --- folders and seeds ----------------------------------------------------------------------------

def test_replicate_seeds_and_folders(tiny):
    params = tiny(run={"replicates": 3})
    assert replicate_params(params, 0) is params
    one, two = replicate_params(params, 1), replicate_params(params, 2)
    assert one.run.seed == derive_seed(params.run.seed, "replicate", 1) != two.run.seed
    assert one.training_fingerprint() != params.training_fingerprint()  # its own folder's key
    assert replicate_dir(Path("r"), 0) == Path("r") and replicate_dir(Path("r"), 2) == \
        Path("r/replicate_2")
    with pytest.raises(ParamsError, match="run.replicates"):
        replicate_params(params, 3)


def test_replicate_run_folder_has_its_own_seed_and_the_runs_data(tiny):
    params = tiny(run={"replicates": 2})
    rep = open_run(params, create=True, replicate=1)  # before the run folder's own series
    assert rep.store.root == params.run_dir() / "replicate_1"
    assert (params.run_dir() / MANIFEST).is_file()  # the run folder exists, not "foreign"
    assert rep.store.manifest()["params"]["run"]["seed"] == replicate_params(params, 1).run.seed
    own = open_run(params, create=True)
    assert torch.equal(rep.data.train_x, own.data.train_x)  # same dataset ...
    first = lambda ctx: next(iter(ctx.new_model().state_dict().values()))  # noqa: E731
    assert not torch.equal(first(rep), first(own))  # ... another initialization
    # more replicates later: the run folder and replicate 1 stay readable
    more = tiny(run={"replicates": 3})
    assert open_run(more, replicate=1).store.root == rep.store.root
    open_run(more, create=True)


def test_a_run_folder_holding_only_a_replicates_report_is_not_foreign(tiny):
    params = tiny(run={"replicates": 2})
    notebooks = params.run_dir() / "replicate_1" / "notebooks"
    notebooks.mkdir(parents=True)
    (notebooks / ".01_train_imp.running.ipynb").write_text("{}")
    assert not RunStore(params.run_dir()).has_results()
    open_run(params, create=True, replicate=1)
    (params.run_dir() / "replicate_1" / "imp").mkdir()
    (params.run_dir() / "replicate_1" / "imp" / "init.pt").write_bytes(b"x")
    assert RunStore(params.run_dir()).has_results()


def test_damage_in_a_replicate_names_its_folder_and_notebook(tiny):
    params = tiny(run={"replicates": 2})
    rep = open_run(params, create=True, replicate=1)
    path = rep.store.imp_dir(1) / "final.pt"
    message = _damage_message(path, "truncated")
    assert message.startswith(f"imp/level_01/final.pt in {rep.store.root} is damaged")
    assert "notebooks/01_train_imp.ipynb" in message


# --- tables across replicates ---------------------------------------------------------------------

def _fake_run(tmp_path: Path, replicates: int, tables: dict[int, pd.DataFrame | None],
              name: str = "t.csv"):
    """A context-like object of replicate 0 whose replicates hold the given tables."""
    root = tmp_path / "run"
    for r, table in tables.items():
        folder = replicate_dir(root, r)
        folder.mkdir(parents=True, exist_ok=True)
        save_json(folder / MANIFEST, {"fingerprint": {}})
        if table is not None:
            RunStore(folder).save_table(table, name)
    params = SimpleNamespace(run=SimpleNamespace(replicates=replicates), claims=ClaimsSection(),
                             hessian=HessianSection(k=6, ks_fig22=[2, 4, 6]),
                             data=DataSection())
    return SimpleNamespace(store=RunStore(root), params=params, replicate=0)


def test_tables_across_own_first_only_finished_and_wanted_replicates(tmp_path):
    t = {r: pd.DataFrame({"v": [float(r)]}, index=pd.Index([1], name="level"))
         for r in range(4)}
    ctx = _fake_run(tmp_path, 3, {0: t[0], 1: None, 2: t[2], 3: t[3]})
    frames = tables_across(ctx, "t.csv")
    assert [float(f["v"].iloc[0]) for f in frames] == [0.0, 2.0]  # 1 unfinished, 3 not wanted
    other = SimpleNamespace(store=RunStore(tmp_path / "run" / "replicate_2"),
                            params=ctx.params, replicate=2)
    assert [float(f["v"].iloc[0]) for f in tables_across(other, "t.csv")] == [2.0]
    assert tables_across(ctx, "missing.csv") == []


def test_summary_frame_means_intervals_and_row_alignment():
    f0 = pd.DataFrame({"figure": ["a", "b"], "level": [1, 1], "v": [1.0, 10.0]})
    f1 = pd.DataFrame({"figure": ["b", "a"], "level": [1, 1], "v": [14.0, 3.0]})  # other order
    f2 = pd.DataFrame({"figure": ["a"], "level": [1], "v": [2.0]})  # lacks row b
    out = summary_frame([f0, f1, f2], columns=["v"], key=["figure", "level"])
    a, b = out.loc[("a", 1), "v"], out.loc[("b", 1), "v"]
    assert list(a[["replicate 0", "replicate 1", "replicate 2"]]) == [1.0, 3.0, 2.0]
    half = sps.t.ppf(0.975, 2) * np.std([1.0, 3.0, 2.0], ddof=1) / math.sqrt(3)
    assert a["mean"] == pytest.approx(2.0)
    assert (a["t-interval low"], a["t-interval high"]) == pytest.approx((2 - half, 2 + half))
    assert b["mean"] == pytest.approx(12.0) and math.isnan(b["replicate 2"])
    twice = pd.DataFrame({"v": [1.0, 2.0]}, index=[1, 1])  # a repeated index: rows by position
    assert list(summary_frame([twice, twice + 2])[("v", "mean")]) == [2.0, 3.0]


# --- claims read off the tables the notebooks save ------------------------------------------------

def _csv_roundtrip(table: pd.DataFrame, tmp_path: Path) -> pd.DataFrame:
    """What tables_across reads back: the CSV that RunStore.save_table wrote."""
    path = RunStore(tmp_path).save_table(table, "x.csv")
    return pd.read_csv(path, index_col=0)


def _claim(key: str) -> pc.PaperClaim:
    return pc.by_key()[key]


def test_volume_claims_read_the_solution_as_side_a(tmp_path):
    mn = {"eigenvalues": torch.tensor([4.0, 2.0, 1.0]), "loss": 0.1}  # W_min(L): smaller V'
    pr = {"eigenvalues": torch.tensor([8.0, 6.0, 5.0]), "loss": 0.2}
    row = _pair_row(3, "Pr_L(min(L-1))", pr, "W_min(L)", mn, 3, None, None)
    table = _csv_roundtrip(pd.DataFrame([row]).set_index("level"), tmp_path)
    values = _claim("R1-table1").extract(table)
    assert values == {3: pytest.approx((log_volume(mn["eigenvalues"], 3),
                                        log_volume(pr["eigenvalues"], 3)))}
    assert _claim("R1-table1").claim.expect == "less"
    prev = _pair_row(3, "RPr_L-1(min(L))", pr, "W_min(L-1)", mn, 3, None, None)
    values3 = _claim("R1-table3").extract(pd.DataFrame([prev]).set_index("level"))
    assert values3[3][0] < values3[3][1]  # W_min(L-1) first


def _radius(label: str, mean: float) -> dict:
    return {"label": label, "cutoff": 1.0, "center_loss": 0.5, "mean": mean, "median": mean,
            "std": 0.0, "censored": torch.zeros(2), "radii": torch.full((2,), mean), "space": 2}


def test_radius_claims_read_the_solution_as_side_a(tmp_path):
    table = radius_table([(2, _radius("W_min(2)", 0.3), _radius("Pr_2(min(1))", 0.2))],
                         ("W_min(L)", "Pr_L(min(L-1))"))
    assert _claim("R1-table2").extract(_csv_roundtrip(table, tmp_path)) == {2: (0.3, 0.2)}
    table4 = radius_table([(2, _radius("W_min(1)", 0.1), _radius("RPr_1(min(2))", 0.05))],
                          ("W_min(L-1)", "RPr_L-1(min(L))"))
    assert _claim("R1-table4").extract(table4) == {2: (0.1, 0.05)}
    assert _claim("R1-table2").claim.expect == "greater"


def _line(series: str, bump: float, loss_a: float = 1.0, loss_b: float = 1.0) -> dict:
    """A line whose loss rises `bump` above the straight line between its end losses at α = 0.5."""
    from lthkit.analysis.landscape import alpha_grid, barrier_height

    alpha = alpha_grid(11, 0.2)
    loss = (1 - alpha) * loss_a + alpha * loss_b + bump * 4 * alpha * (1 - alpha)
    height, at = barrier_height(alpha, loss)
    return {"alpha": alpha, "loss": loss, "a": "A", "b": "B", "loss_a": loss_a,
            "loss_b": loss_b, "barrier": height, "barrier_alpha": at, "distance": 1.0,
            "series": series}


def test_barrier_claims_pick_their_lines(tmp_path):
    lines = [("fig12", 1, _line("W_min(L-1) – W_min(L)", 0.7)),
             ("fig09", 1, _line("Pr_L(min(L-1)) – W_RI(L)", 3.0)),
             ("fig17", 1, _line("W_min(L) – W_RP'(L)", 0.1)),
             ("fig17", 1, _line("Pr_L(min(L-1)) – W_RP(L)", 2.0, loss_b=3.0)),
             ("fig19", 1, _line("W_min(L) – W_OS(L)", 0.2))]
    table = _csv_roundtrip(barrier_table(lines), tmp_path)
    assert _claim("R4-fig12").extract(table) == {1: pytest.approx((0.7, 0.0))}
    assert _claim("R2-fig9").extract(table) == {1: pytest.approx((3.0, 0.0))}
    assert _claim("R6-fig17").extract(table) == {1: pytest.approx((2.0, 0.0))}  # the huge one
    assert _claim("R6-fig19").extract(table) == {1: pytest.approx((0.2, 0.0))}
    assert _claim("R6-fig17").scale == "chance_loss"  # not the line's (vanishing) end losses


def test_the_linear_barrier_sees_a_bump_between_unequal_ends(tmp_path):
    """Issue 23 item 4: ends 1 and 3, a bump of 0.5 above the straight line: the loss never passes
    the higher end, so max minus the higher end is 0, while the bump is there."""
    line = _line("W_min(L-1) – W_min(L)", 0.5, loss_a=1.0, loss_b=3.0)
    table = barrier_table([("fig12", 1, line)])
    assert table.loc[0, "barrier"] == pytest.approx(0.0, abs=1e-9)
    assert table.loc[0, "barrier_linear"] == pytest.approx(0.5)
    assert table.loc[0, "alpha_at_linear_max"] == pytest.approx(0.5)
    assert _claim("R4-fig12").extract(table) == {1: pytest.approx((0.5, 0.0))}
    nan_line = {**line, "loss": line["loss"].clone()}
    nan_line["loss"][5] = float("nan")
    judged = pc.values_across(_claim("R4-fig12"), [barrier_table([("fig12", 1, nan_line)])])
    assert judged[1].a == [pytest.approx(float("nan"), nan_ok=True)]  # kept, then counted


def test_sublevel_claims_read_each_points_loss_against_c(tmp_path):
    labels = ["W_min(0)", "W_min(2)", "W_min(3)", "W_RI(3)", "W_RP(3)", "W_RP'(3)", "W_OS(3)"]
    n = len(labels)
    plane = {"coords": torch.zeros(n, 2), "distance": torch.zeros(n), "labels": labels,
             "point_loss": torch.tensor([0.1, 0.2, 0.3, 2.0, 1.5, 0.25, 0.2]),
             "point_acc": torch.zeros(n)}
    table = _csv_roundtrip(plane_table(plane, sublevel=0.3), tmp_path)
    assert _claim("R5-fig13-RI").extract(table) == {3: pytest.approx((2.0, 0.3))}
    assert _claim("R5-fig13-RP").extract(table) == {3: pytest.approx((1.5, 0.3))}
    assert _claim("R5-fig13-OS").extract(table) == {3: pytest.approx((0.2, 0.3))}


def test_choice_claims_skip_levels_without_the_baseline(tmp_path):
    volumes = pd.DataFrame({"level": [1, 2], "W_min(L)": [10.0, 11.0],
                            "Pr_L(min(L-1))": [12.0, 13.0], "W_RI(L)": [15.0, np.nan],
                            "band Pr_L(min(L-1))": [np.nan, 20.0]}).set_index("level")
    table = _csv_roundtrip(volumes, tmp_path)
    assert _claim("R2-fig10").extract(table) == {1: (10.0, 15.0)}
    assert _claim("R6-fig16").extract(table) == {2: (13.0, 20.0)}
    assert _claim("R7-fig21").extract(table) == {}  # no W_FT(L) column: no level tested


def test_ticket_claims_read_level_columns_and_controls(tmp_path):
    transfer = pd.DataFrame({"task": ["labels"] * 3, "level": [0, 1, 2],
                             "weights_left_%": [100.0, 50.0, 25.0],
                             "target_ticket_test_acc": [0.95, 0.9, 0.8],
                             "transferred_ticket_test_acc": [0.96, 0.7, 0.5]})  # RangeIndex
    got = _claim("IE643-task2-labels").extract(_csv_roundtrip(transfer, tmp_path))
    assert got == {1: (0.7, 0.9), 2: (0.5, 0.8)}, "the dense level 0 is no ticket"
    bain = pd.DataFrame({"level": [0, 1, 2, 3], "weights_left_%": [100.0, 80.0, 50.0, 30.0],
                         "ticket_test_acc": [0.6, 0.62, 0.61, 0.6],
                         "random_test_acc": [np.nan, 0.6, 0.5, 0.4]}).set_index("level")
    assert _claim("Bain-fig5").extract(bain) == {2: (0.61, 0.5), 3: (0.6, 0.4)}, \
        "Bain's gap begins around 50% of the weights left: the levels before are not judged"


def test_ie643_claims_are_the_reports_statements(tmp_path):
    """Issue 26 item 8: the report's own statements, at the sparsities it names."""
    mlp = pd.DataFrame({"level": [0, 5, 11, 14], "weights_left_%": [100.0, 33.0, 8.6, 4.4],
                        "ticket_test_acc": [0.98, 0.981, 0.975, 0.7],
                        "ticket_vs_dense": [0.0, 0.001, -0.005, -0.28]})
    table = _csv_roundtrip(mlp, tmp_path)
    assert _claim("IE643-fig1-mlp-90").extract(table) == {11: pytest.approx((-0.005, 0.0))}
    assert _claim("IE643-fig1-mlp-95").extract(table) == {14: pytest.approx((0.7, 0.8))}
    assert _claim("IE643-fig1-mlp-90").claim.expect == "equal"
    keys = {c.claim.key for c in pc.CLAIMS}
    assert not {"IE643-fig1-mlp", "IE643-fig1-lenet5"} & keys, "no random re-init claim"
    assert {"IE643-task1-halves", "IE643-task3-optimizers"} <= keys


# The sentence of its paper each claim quotes, as the papers' plain text has it (the symbols lost
# in the extraction): kept here, so that a clean clone checks the quotes without the papers.
PASSAGES = Path(__file__).with_name("claim_passages.json")


def _first_words(quote: str) -> str:
    """A quote's first eight words of the paper's own, after a leading bracket and before the next
    bracket the kit added (symbols the text lost, restored) or a note of its reading."""
    quote = re.sub(r"^\[[^\]]*\]\s*", "", quote)
    first = re.split(r"\[|\(Read as|\(W_RP|\(The symbols|\.\.\.", quote)[0]
    return " ".join(first.split()[:8]).rstrip(";,")


def test_every_claim_quotes_the_sentence_it_tests():
    passages = json.loads(PASSAGES.read_text())
    for pcl in pc.all_claims():
        key = pcl.claim.key
        assert len(pcl.claim.quote) > 30, key
        assert key in passages, f"{key}: add the sentence it quotes to {PASSAGES.name}"
        words = _first_words(pcl.claim.quote)
        assert len(words.split()) >= 3 and passages[key].startswith(words), \
            (key, words, passages[key])
    stale = set(passages) - {pcl.claim.key for pcl in pc.all_claims()}
    assert not stale, f"passages of no claim in {PASSAGES.name}: {sorted(stale)}"


def _papers() -> Path | None:
    """The project's shared papers folder (shared/papers/ beside this checkout or above it)."""
    return next((p / "shared" / "papers" for p in ROOT.parents
                 if (p / "shared" / "papers").is_dir()), None)


@pytest.mark.skipif(_papers() is None, reason="the papers' text (shared/papers/ beside the "
                    "checkout) is absent: claim_passages.json is checked against it where it is")
def test_the_kept_passages_are_the_papers_own_text():
    raw = " ".join(p.read_text() for p in sorted(_papers().glob("*.txt")))
    text = " ".join(raw.replace("$", " ").replace("\\", "").replace("~", " ").split())
    for key, passage in json.loads(PASSAGES.read_text()).items():
        assert passage in text, (key, passage)


def test_paper_exceptions_and_every_k(tmp_path):
    """Issue 26 item 7: R1-fig3 leaves out levels 2 and 3 as the paper does; Fig 22 has one
    claim per k of hessian.ks_fig22."""
    from lthkit.config.analysis import HessianSection

    fig3 = pc.by_key()["R1-fig3"]
    frames = [pd.DataFrame({"level": [1, 2, 3, 4], "to_projected_previous": [1.0] * 4,
                            "to_solution": [2.0] * 4})]
    assert sorted(pc.values_across(fig3, frames)) == [1, 4]
    ks = HessianSection().ks_fig22
    assert [c.claim.key for c in pc.claims_of("04_hessian_volume") if "fig22" in c.claim.key] \
        == [f"R1-fig22-k{k}" for k in ks]
    table = pd.DataFrame({"level": [1], "W_min(L) k=10": [1.0], "Pr_L(min(L-1)) k=10": [2.0],
                          "W_min(L) k=25": [3.0], "Pr_L(min(L-1)) k=25": [4.0]})
    assert pc.by_key()["R1-fig22-k25"].extract(table) == {1: (3.0, 4.0)}


def test_every_claims_table_is_one_its_notebook_saves():
    for claim in pc.all_claims():
        source = (ROOT / "notebooks" / f"{claim.notebook}.py").read_text()
        fstring = re.sub(r"_(mlp|lenet5|labels|halves|sgd_to_adam)\.csv$", "_{", claim.table)
        assert f'"{claim.table}"' in source or f'"{fstring}' in source \
            or f'f"{fstring}' in source, (claim.claim.key, claim.table)
        assert f'notebook_claims(ctx, "{claim.notebook}")' in source


def test_notebook_claims_judge_across_replicates_and_save(tmp_path):
    def table1(w_min: float, proj: float) -> pd.DataFrame:
        return pd.DataFrame({"level": [1], "V'(6) W_min(L)": [w_min],
                             "V'(6) Pr_L(min(L-1))": [proj]}).set_index("level")

    ctx = _fake_run(tmp_path, 3, {0: table1(10.0, 12.0), 1: table1(20.0, 22.5),
                                  2: table1(30.0, 31.8)}, name="table1.csv")
    per_level = pc.notebook_claims(ctx, "04_hessian_volume", [_claim("R1-table1")])
    assert list(per_level["verdict"]) == [HOLDS, HOLDS]  # level 1, then 'all'
    assert per_level.loc[0, "replicates"] == 3
    saved = pd.read_csv(ctx.store.table_path("claims_04_hessian_volume.csv"), index_col=0)
    assert saved.loc[0, "verdict"] == HOLDS and saved.loc[0, "levels holds"] == 1
    assert per_level.loc[0, "margin"] == pytest.approx(0.005 * 6), "per eigenvalue, times k"
    one = _fake_run(tmp_path / "one", 1, {0: table1(10.0, 12.0)}, name="table1.csv")
    assert pc.notebook_claims(one, "04_hessian_volume", [_claim("R1-table1")]).loc[
        1, "verdict"] == INCONCLUSIVE


def test_claims_csv_and_index_open_with_the_claims(tiny):
    """Issue 23 item 5: the claims page opens with a forest plot, shows each claim's effect,
    interval, margin and replicates needed, and links each claim to its table level by level."""
    from lthkit.verdicts.claims import Claim, Measured, claim_table, claims_frame

    params = tiny(report={"notebooks": ["01_train_imp", "04_hessian_volume"]})
    store = RunStore(params.run_dir())
    held = Claim("R1-table1", "Saleem et al.", "W_min <b>larger</b>", "V'", "W_min(L)", "Pr",
                 "less", "04_hessian_volume", margin="volume")
    open_one = Claim("R1-table3", "Saleem et al.", "flips", "V'", "W_min(L-1)", "RPr", "less",
                     "04_hessian_volume", margin="volume")
    lone = Claim("R1-table4", "Saleem et al.", "one seed", "V'", "W_min(L)", "RPr", "less",
                 "04_hessian_volume", margin="volume")
    k = [100.0] * 3  # the scale of a volume margin: the k of V'(k)
    tables = [(held, claim_table(held, {1: Measured([1.0, 1.1, 0.9], [3.0, 3.2, 2.9], k)})),
              (open_one, claim_table(open_one, {1: Measured([1.0, 2.9, 1.5], [2.0, 3.0, 2.9],
                                                            k)})),
              (lone, claim_table(lone, {1: Measured([1.0], [2.0], k[:1])}))]
    store.save_table(claims_frame(tables), "claims_04_hessian_volume.csv")
    store.save_table(pd.concat([t for _, t in tables], ignore_index=True),
                     "claim_levels_04_hessian_volume.csv")
    claims = pd.read_csv(write_claims(params, ["04"]))  # a notebook named twice counts once
    assert list(claims["claim"]) == ["R1-table1", "R1-table3", "R1-table4"]
    assert set(claims["verdict"]) <= VERDICTS
    assert claims.loc[1, "verdict"] == INCONCLUSIVE and claims.loc[1, "replicates needed"] > 3
    page = write_index(params, []).read_text()
    assert page.index("<h2>Claims</h2>") < page.index("claims_forest.png") \
        < page.index("<h2>Notebooks</h2>")
    assert (params.run_dir() / "claims_forest.png").stat().st_size > 1000
    assert "W_min &lt;b&gt;larger" in page and "t-interval" in page
    assert 'href="#claim-R1-table1"' in page and 'id="claim-R1-table1"' in page
    assert f"{claims.loc[0, 'effect']:.4g} [" in page
    assert "Margins (claims.margins): volume 0.005" in page
    assert "(no interval: 1 replicate)" in page and "more than 1 (no spread yet)" in page


# --- figures --------------------------------------------------------------------------------------

def test_per_level_figures_draw_the_other_replicates_faintly():
    table = pd.DataFrame({"level": [1, 2], "a": [1.0, 2.0]}).set_index("level")
    alone = plots.volume_by_level(table, ["a"], ["A"])
    both = plots.volume_by_level(table, ["a"], ["A"], others=[table + 1, table + 2])
    faint = [ln for ln in both.axes[0].lines if ln.get_alpha() and ln.get_alpha() < 1]
    assert len(both.axes[0].lines) == len(alone.axes[0].lines) + 2 and len(faint) == 2
    radii = pd.DataFrame({"level": [1], "mean_radius W": [0.2], "std W": [0.01]}).set_index(
        "level")
    fig = plots.radius_summary(radii, others=[radii * 2])
    assert sum(1 for ln in fig.axes[0].lines if (ln.get_alpha() or 1) < 1) == 1


# --- the runner on a tiny series of two replicates ------------------------------------------------

@pytest.mark.notebook
def test_runner_runs_the_replicates_first_and_reports_across_them(tmp_path, write_yaml):
    import nbformat

    from lthkit.config.params import load_params
    from lthkit.report.runner import main
    from lthkit.store.files import load_tensors
    from lthkit.train.imp import ImpResults, run_imp

    path = write_yaml({
        "run": {"name": "reps", "output_root": str(tmp_path / "outputs"), "replicates": 2,
                "num_threads": 1},
        "data": {"dataset": "synthetic_cifar10", "train_size": 128, "test_size": 64},
        "model": {"width": 2},
        "train": {"epochs": 2, "batch_size": 32, "milestones": [1], "lr": 0.05,
                  "eval_batch_size": 64},
        "imp": {"levels": 1, "rewind_iteration": 2, "save_every": 0},
        "analysis": {"subset_size": 32, "batch_size": 32},
        "landscape": {"examples": 32, "radius_directions": 2, "radius_start": 8.0,
                      "radius_max": 400.0, "radius_tol": 0.3},
        "report": {"notebooks": ["01_train_imp", "05_basin_radius"], "html": False}})
    params = load_params(path)
    # notebook 01 of each replicate, in this process (what the runner's 01 does, without a kernel)
    for r in (1, 0):
        run_imp(open_run(params, create=True, replicate=r))
    run_dir = params.run_dir()
    finals = {r: ImpResults(RunStore(replicate_dir(run_dir, r))).level(1).final_file
              for r in (0, 1)}
    stamps = {r: f.stat().st_mtime_ns for r, f in finals.items()}
    seeds = {r: RunStore(replicate_dir(run_dir, r)).manifest()["params"]["run"]["seed"]
             for r in (0, 1)}
    assert seeds[0] == params.run.seed != seeds[1]
    w0, w1 = (next(iter(load_tensors(finals[r]).values())) for r in (0, 1))
    assert not torch.equal(w0, w1)

    assert main([str(path), "--only", "05", "--no-html"]) == 0
    assert (run_dir / "replicate_1" / "notebooks" / "05_basin_radius.ipynb").is_file()
    report = nbformat.read(run_dir / "notebooks" / "05_basin_radius.ipynb", as_version=4)
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/html", ""))
                   for c in report.cells for o in c.get("outputs", []))
    assert "across 2 replicates" in text and "t-interval" in text and "replicate 1" in text
    claims = pd.read_csv(run_dir / "claims.csv")
    assert set(claims["claim"]) == {"R1-table2", "R1-table4"}
    assert set(claims["verdict"]) <= VERDICTS and set(claims["replicates"]) == {2}
    assert "R1-table2" in (run_dir / "index.html").read_text()

    # a rerun of notebook 01's work for both replicates (in this process: each notebook costs a
    # kernel) finds each replicate's folder, reads every level and retrains nothing
    for r in (1, 0):
        assert run_imp(open_run(params, create=True, replicate=r)).levels_done() == [0, 1]
    assert {r: f.stat().st_mtime_ns for r, f in finals.items()} == stamps


def test_fig2_claims_compare_imp_with_the_best_other_strategy():
    table = pd.DataFrame({"strategy": ["imp", "imp", "one_shot", "random_reinit", "one_shot"],
                          "level": [0, 1, 1, 1, 2], "test_acc": [0.9, 0.91, 0.89, 0.7, 0.8],
                          "train_loss": [0.1, 0.09, 0.12, 0.5, 0.2]})
    assert _claim("R0-fig2-accuracy").extract(table) == {1: (0.91, 0.89)}, \
        "the best other at each level with an IMP value and another strategy"
    assert _claim("R0-fig2-loss").extract(table) == {1: (0.09, 0.12)}
    assert _claim("R0-fig24-accuracy").notebook == "09_vgg16_appendix"


def test_result2_claims_read_table1_losses_one_level_apart():
    table = pd.DataFrame({"level": [1, 2, 3], "loss Pr_L(min(L-1))": [0.5, 0.6, 0.7],
                          "loss W_min(L)": [0.2, 0.3, 0.4]})
    assert _claim("R2-table1-projection").extract(table) == {2: (0.6, 0.2), 3: (0.7, 0.3)}
    assert _claim("R2-table1-new-minimum").extract(table) == {1: (0.2, 0.5), 2: (0.3, 0.6),
                                                              3: (0.4, 0.7)}


def test_notebook_04_judges_fig22_at_the_ks_of_its_run(tmp_path):
    """Found on a 3-replicate smoke run: the Fig 22 claims were those of the default ks (10..100),
    absent from a run of hessian.ks_fig22 [2, 4, 6], and came out empty and inconclusive."""
    from lthkit.config.analysis import HessianSection

    fig22 = pd.DataFrame({"level": [1, 2], "k": [2, 2], "V'(k) W_min(L)": [1.0, 2.0],
                          "V'(k) Pr_L(min(L-1))": [3.0, 4.0]})
    ctx = _fake_run(tmp_path, 1, {0: fig22}, name="fig22_volume_k.csv")
    ctx.params.hessian = HessianSection(k=6, ks_fig22=[2, 4, 6], max_iterations=24)
    pc.notebook_claims(ctx, "04_hessian_volume")
    saved = pd.read_csv(ctx.store.table_path("claims_04_hessian_volume.csv"), index_col=0)
    keys = [k for k in saved["claim"] if k.startswith("R1-fig22")]
    assert keys == ["R1-fig22-k2", "R1-fig22-k4", "R1-fig22-k6"]
    assert "margins" in pc.rule_text(ctx, "04_hessian_volume").lower()
