"""The published values and the one rule deciding when they stand beside ours (lthkit.analysis.published),
applied by the Hessian tables (I, III, V, VIII, IX) and the radius tables (II, IV)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from lthkit.analysis import hessian as hs
from lthkit.analysis import landscape as ls
from lthkit.analysis import published
from lthkit.config.params import load_params
from lthkit.store.layout import RunStore
from lthkit.train.baselines import BaselineResults

ROOT = Path(__file__).resolve().parents[1]
RESNET = ROOT / "params" / "resnet20_paper.yaml"
VGG = ROOT / "params" / "vgg16_paper.yaml"

# One change per key that decides comparability, each from the paper's ResNet-20 preset.
DIFFERENT = [
    ("data.dataset", "synthetic_cifar10"), ("data.train_size", 5000), ("data.augment", False),
    ("model.width", 8), ("train.epochs", 182), ("train.batch_size", 64), ("train.lr", 0.05),
    ("train.optimizer", "adam"), ("train.momentum", 0.0), ("train.weight_decay", 5e-4),
    ("train.milestones", [60, 120]), ("imp.prune_fraction", 0.4), ("imp.scope", "layerwise"),
]


def test_the_paper_presets_follow_their_recipes():
    assert published.paper_recipe(load_params(RESNET)) == "resnet20"
    assert published.paper_recipe(load_params(VGG)) == "vgg16"
    for quantity in ("volume", "radius"):
        assert published.paper_recipe(load_params(RESNET), quantity) == "resnet20"
    # width None means the paper's width
    assert published.paper_recipe(load_params(RESNET, {"model.width": None})) == "resnet20"


@pytest.mark.parametrize("key, value", DIFFERENT, ids=[k for k, _ in DIFFERENT])
def test_a_run_that_differs_in_one_key_gets_no_published_values(key, value):
    params = load_params(RESNET, {key: value})
    assert published.paper_recipe(params) is None
    assert published.recipe_mismatches(params, "resnet20")[0].startswith(key)
    assert key in published.describe(params)
    # every older name follows the same rule
    assert hs.paper_preset(params) is None and not ls.is_paper_preset(params)
    assert published.paper_columns(params, "volume_L", 1) == {}
    assert published.paper_columns(params, "radius_L", 1) == {}


def test_the_run_name_decides_nothing():
    """A run named like the paper's preset on other data gets no published values."""
    params = load_params(ROOT / "params" / "smoke.yaml", {"run.name": "resnet20_paper_smoke"})
    assert not ls.is_paper_preset(params) and hs.paper_preset(params) is None


def test_the_architecture_picks_the_recipe():
    vgg_on_resnet_rate = load_params(VGG, {"imp.prune_fraction": 0.2})
    assert published.paper_recipe(vgg_on_resnet_rate) is None
    assert "imp.prune_fraction" in published.describe(vgg_on_resnet_rate)
    assert "none for mlp" in published.describe(load_params(
        ROOT / "params" / "smoke.yaml", {"model.arch": "mlp", "data.dataset": "synthetic_mnist"}))


@pytest.mark.parametrize("quantity, overrides", [
    ("volume", {"hessian.k": 50, "hessian.ks_fig22": [10, 50]}),
    ("volume", {"hessian.subset_size": 1000}), ("volume", {"analysis.subset_size": 2000}),
    ("radius", {"landscape.radius_reference": "own"}),
], ids=["k", "hessian_examples", "analysis_examples", "radius_reference"])
def test_what_a_measurement_depends_on_is_part_of_the_rule(quantity, overrides):
    params = load_params(RESNET, overrides)
    assert published.paper_recipe(params) == "resnet20"  # the trained networks are the paper's
    assert published.paper_recipe(params, quantity) is None
    other = "radius" if quantity == "volume" else "volume"
    if "analysis.subset_size" not in overrides:  # the analysis subset is both measurements'
        assert published.paper_recipe(params, other) == "resnet20"
    comparison = "volume_L" if quantity == "volume" else "radius_L"
    assert published.paper_columns(params, comparison, 1) == {}


def test_paper_columns_per_level_and_for_a_lost_level():
    resnet, vgg = load_params(RESNET), load_params(VGG)
    assert published.paper_columns(resnet, "volume_L", 5) == {
        "paper Pr_L(min(L-1))": 417.984, "paper W_min(L)": 372.753}
    assert published.paper_columns(resnet, "volume_L-1", 1) == {
        "paper RPr_L-1(min(L))": 418.034, "paper W_min(L-1)": 415.42}
    missing = published.paper_columns(vgg, "volume_L", 2)  # Table VI has levels 1, 6, 11
    assert list(missing) == ["paper Pr_L(min(L-1))", "paper W_min(L)"]
    assert all(math.isnan(v) for v in missing.values())
    assert published.paper_columns(vgg, "volume_L", 11)["paper W_min(L)"] == 352.86
    # Tables VIII and IX lost their level, presumably 12: their values stand there only, in
    # columns saying so, and never beside the levels the preset trains baselines at (issue 26)
    for level in (1, 6, 11):
        assert published.paper_columns(vgg, "volume_RI", level) == {}
        assert published.paper_columns(vgg, "volume_RP", level) == {}
    assert published.paper_columns(vgg, "volume_RI", 12) == {
        "paper W_RI(L) (level 12, presumed)": 442.242,
        "paper W_min(L) (level 12, presumed)": 389.957}
    assert published.paper_columns(vgg, "volume_RP", 12) == {
        "paper W_RP(L) (level 12, presumed)": 451.384,
        "paper W_min(L) (level 12, presumed)": 389.957}
    assert "5,000 training examples" in published.describe(vgg, "volume")
    assert published.paper_columns(resnet, "radius_L", 3) == {
        "paper W_min(L) (level lost)": 0.232314, "paper Pr_L(min(L-1)) (level lost)": 0.183428}
    # each recipe only its own tables
    assert published.paper_columns(resnet, "volume_RI", 1) == {}
    assert published.paper_columns(vgg, "radius_L", 1) == {}


def test_every_published_value_has_its_source():
    frame = published.published_frame()
    assert set(frame["source"]) == {"Table I", "Table II", "Table III", "Table IV", "Table VI",
                                    "Table VII", "Table VIII", "Table IX"}
    assert frame["value"].notna().all() and frame["note"].str.len().gt(0).all()
    lost = frame[frame["level"] == "lost"]
    assert set(lost["source"]) == {"Table II", "Table IV", "Table VIII", "Table IX"}
    t1 = frame[frame["source"] == "Table I"]
    assert len(t1) == 20 and set(t1["point"]) == {"W_min(L)", "Pr_L(min(L-1))"}
    # Table VIII and IX share W_min(L); the baseline has the larger V' in both
    for table, baseline in (("Table VIII", 442.242), ("Table IX", 451.384)):
        rows = frame[frame["source"] == table].set_index("point")["value"]
        assert rows["W_min(L)"] == 389.957 and rows.drop("W_min(L)").item() == baseline


def test_the_older_names_read_the_same_values():
    t1, t3 = hs.PUBLISHED["resnet20"]["table1"], hs.PUBLISHED["resnet20"]["table3"]
    assert len(t1) == len(t3) == 10 and t1[10] == (525.621, 408.810)
    assert all(t3[L][1] == pytest.approx(t1[L - 1][1]) for L in range(2, 11))
    assert sorted(hs.PUBLISHED["vgg16"]["table1"]) == [1, 6, 11]
    assert sorted(hs.PUBLISHED["vgg16"]["table3"]) == [1, 6, 12]
    assert ls.PAPER_RADII["table2"] == {"W_min(L)": 0.232314, "Pr_L(min(L-1))": 0.183428}
    assert ls.PAPER_RADII["table4"]["W_min(L-1)"] == 0.091809


# --- the tables that apply the rule -------------------------------------------------------------

class _Analysis:
    """Stands for HessianAnalysis: a spectrum per point name (`default` for the others), k, and
    the run's parameters."""

    def __init__(self, params, spectra: dict[str, list[float]], threshold: float = 1e-3,
                 k: int = 3, default: list[float] | None = None):
        self.cfg = SimpleNamespace(k=k, positive_threshold=threshold)
        self.ctx = SimpleNamespace(params=params)
        self.spectra = spectra
        self.default = default

    def flags(self, spectrum, k):
        return ""

    def spectrum(self, point):
        lam = self.spectra.get(point.name, self.default)
        return {"eigenvalues": torch.tensor(lam), "loss": float(sum(lam))}

    def log_volume(self, spectrum, k):
        return hs.log_volume(spectrum["eigenvalues"], k, self.cfg.positive_threshold)


class _Baselines:
    def __init__(self, have):
        self.have = have

    def available(self):
        return self.have


def _baseline_table(params, kind="random_reinit", threshold=1e-3):
    spectra = {"imp_L01_min": [3.0, 2.0, 1.0], f"{kind}_L01": [30.0, 20.0, 10.0],
               "imp_L06_min": [6.0, 5.0, 4.0], f"{kind}_L06": [60.0, 50.0, 40.0],
               "imp_L12_min": [6.0, 5.0, 4.0], f"{kind}_L12": [60.0, 50.0, 40.0]}
    base = _Baselines([(kind, 1), (kind, 6), ("fine_tune", 11), (kind, 12)])
    return hs.baseline_volume_table(_Analysis(params, spectra, threshold), object(), base, kind,
                                    [1, 6, 11, 12])


def test_tables_8_and_9_hold_both_volumes_and_the_paper_only_for_its_recipe():
    ours = _baseline_table(load_params(VGG))
    assert list(ours.index) == [1, 6, 12]  # level 11 has no W_RI
    assert ours.loc[1, "V'(3) W_RI(L)"] == pytest.approx(math.log(6000))
    assert ours.loc[1, "V'(3) W_min(L)"] == pytest.approx(math.log(6))
    assert ours["W_min(L) has the larger volume"].all()
    # V'(3) is not the paper's V'(100): no paper columns beside it (issue 37, item 4)
    assert not ours.filter(like="paper").columns.size
    other = _baseline_table(load_params(VGG, {"data.dataset": "synthetic_cifar10"}))
    assert not other.filter(like="paper").columns.size
    one_shot = _baseline_table(load_params(VGG), "one_shot")  # the paper has no such table
    assert list(one_shot.index) == [1, 6, 12] and not one_shot.filter(like="paper").columns.size


# --- issue 37: the paper's tables where its recipe can show them --------------------------------

K = 100
SOLUTION, BASELINE = [2.0] * K, [20.0] * K  # V'(100) = 100 ln 2 and 100 ln 20


def _finished_baselines(root: Path, params) -> BaselineResults:
    """A run folder in which notebook 02 finished every baseline `params` asks for: the metrics
    file, written last, marks each one done (nothing here reads weights)."""
    results = BaselineResults(RunStore(root))
    for kind in params.baselines.kinds:
        for level in params.levels(params.baselines.levels, minimum=1):
            metrics = results.files(kind, level).metrics_file
            metrics.parent.mkdir(parents=True)
            metrics.write_text("{}")
    return results


def _vgg_tables(root: Path, params, kind: str, k: int | None = None) -> pd.DataFrame:
    """Table VIII or IX of a run folder with the preset's levels and baselines."""
    baselines = _finished_baselines(root, params)
    levels = params.levels(params.analysis.levels, minimum=1)
    spectra = {hs.baseline_solution(baselines, kind, lv).name: BASELINE for lv in levels}
    analysis = _Analysis(params, spectra, k=K, default=SOLUTION)
    return hs.baseline_volume_table(analysis, object(), baselines, kind, levels, k)


@pytest.mark.parametrize("kind, table, point", [("random_reinit", "Table VIII", "W_RI(L)"),
                                                ("random_prune", "Table IX", "W_RP(L)")])
def test_the_vgg16_preset_shows_tables_8_and_9_beside_its_own_values(tmp_path, kind, table,
                                                                      point):
    """Item 1: the preset trains the baselines at the level where the lost row presumably
    stands (12), so its own run shows the paper's row there, beside the kit's values."""
    params = load_params(VGG)
    ours = _vgg_tables(tmp_path, params, kind)
    presumed = published.TABLES[table].presumed_level
    assert presumed in ours.index, "the preset trains no baseline where the paper's row stands"
    row = ours.loc[presumed]
    assert row[f"V'({K}) {point}"] == pytest.approx(K * math.log(20))
    assert row[f"V'({K}) W_min(L)"] == pytest.approx(K * math.log(2))
    paper = published.TABLES[table].values[None]
    assert row[f"paper {point} (level 12, presumed)"] == paper[0]
    assert row["paper W_min(L) (level 12, presumed)"] == paper[1] == 389.957
    assert ours.drop(presumed).filter(like="paper").isna().all().all(), \
        "the lost row stands at its presumed level only"


def test_notebook_09_names_the_columns_tables_8_and_9_appear_in():
    """Item 2: the prose says what the code shows (one row, at level 12, presumed)."""
    text = (ROOT / "notebooks" / "09_vgg16_appendix.py").read_text()
    column = published.paper_column(published.TABLES["Table VIII"], "W_RI(L)")
    assert f'"{column.removeprefix("paper W_RI(L) ")}"' in text  # "(level 12, presumed)"
    assert "repeat on every level" not in text
    assert "trains its baselines at levels 1, 6 and 12" in text
    assert load_params(VGG).baselines.levels == [1, 6, 12]


def test_every_value_of_the_rule_is_the_papers_or_the_kits_assumption():
    """Item 3: each key of the rule is given by the text (and where) or assumed (and why)."""
    rule = {*published.RECIPES["resnet20"].keys, *published.RECIPES["vgg16"].keys}
    for quantity in ("volume", "radius"):
        rule |= set(published._MEASUREMENT[quantity])
    assumed = [key for a in published.ASSUMED for key in a.keys]
    assert len(assumed) == len(set(assumed))
    assert not set(assumed) & set(published.GIVEN)
    assert rule == set(assumed) | set(published.GIVEN)
    for key in ("hessian examples", "landscape examples", "landscape.radius_directions",
                "landscape.radius_value", "imp.rewind_iteration"):
        assert key in assumed, f"{key}: the text lost it"


@pytest.mark.parametrize("preset, quantity, says", [
    (RESNET, "volume", "the Hessian on 5,000 training examples"),
    (VGG, "volume", "the Hessian on 5,000 training examples"),
    (RESNET, "radius", "100 random directions per point"),
    (RESNET, "radius", "radii on 5,000 training examples"),
    (RESNET, None, "rewinding to iteration k = 1000")])
def test_the_assumptions_are_said_where_the_published_values_are_shown(preset, quantity, says):
    text = published.describe(load_params(preset), quantity)
    assert text.startswith("published values beside ours")
    line = next(ln for ln in text.splitlines() if says in ln)
    assert any(w in line for w in ("lost", "does not say", "names no", "gives no"))


def test_no_lost_value_is_credited_to_the_paper():
    """Item 3: where the kit shows the Hessian and radius samples, they are its assumptions."""
    for name in ("resnet20_paper.yaml", "vgg16_paper.yaml"):
        lines = (ROOT / "params" / name).read_text().splitlines()
        for key in ("subset_size:", "radius_directions:", "rewind_iteration:", "bf16:"):
            for i, line in enumerate(lines):
                if line.strip().startswith(key):
                    assert "kit's assumption" in line + lines[i + 1], f"{name}: {key}"
    from lthkit.config.analysis import AnalysisSection, HessianSection, LandscapeSection

    for section, key in ((AnalysisSection, "subset_size"), (HessianSection, "subset_size"),
                         (LandscapeSection, "radius_directions")):
        assert "lost" in section.model_fields[key].description, key
    for path in ("notebooks/04_hessian_volume.py", "notebooks/05_basin_radius.py",
                 "notebooks/09_vgg16_appendix.py", "lthkit/analysis/published.py",
                 "params/resnet20_paper.yaml"):
        text = (ROOT / path).read_text()
        assert "paper: 10%" not in text and "(paper)" not in text, path


def test_no_published_values_for_a_quantity_the_paper_does_not_have():
    """Item 4: the paper prints no VGG-16 radii, and V'(100) only beside a V'(100)."""
    vgg, resnet = load_params(VGG), load_params(RESNET)
    text = published.describe(vgg, "radius")
    assert text.startswith("published values: none") and "beside ours" not in text
    assert published.paper_columns(vgg, "radius_L", 1) == {}
    for params, comparison, level in ((vgg, "volume_L", 1), (resnet, "volume_L", 1),
                                      (vgg, "volume_L-1", 6), (vgg, "volume_RI", 12)):
        assert published.paper_columns(params, comparison, level, k=100)
        assert published.paper_columns(params, comparison, level)  # hessian.k = 100
        assert published.paper_columns(params, comparison, level, k=50) == {}
        assert published.paper_table(params, comparison, k=10) is None
    assert published.paper_columns(resnet, "radius_L", 1, k=50)  # the radii have no k


@pytest.mark.parametrize("preset", [RESNET, VGG])
def test_volume_tables_at_another_k_carry_no_published_values(preset):
    params = load_params(preset)
    analysis = _Analysis(params, {}, k=K, default=SOLUTION)
    for k, shown in ((None, True), (K, True), (50, False), (10, False)):
        t1, t3 = hs.volume_tables(analysis, object(), [1, 6], k)
        flip = hs.flip_table(analysis, object(), [1], k)
        assert bool(t1.filter(like="paper").columns.size) is shown, k
        assert bool(t3.filter(like="paper").columns.size) is shown, k
        assert ("paper" in flip) is shown, k


def test_table_7_says_the_papers_own_level_1_row_runs_against_its_text():
    """Item 5: RPr_0(min(1)) 219.996 < W_min(0) 220.915 in the paper's own Table VII."""
    vgg = load_params(VGG)
    against = published.AGAINST_COLUMN
    note = published.paper_columns(vgg, "volume_L-1", 1)[against]
    assert "219.996 < W_min(L-1) 220.915" in note and "W_min(L-1) has the smaller volume" in note
    assert published.paper_columns(vgg, "volume_L-1", 6)[against] == ""
    assert published.paper_columns(vgg, "volume_L-1", 2)[against] == ""  # no value there
    for comparison in ("volume_L", "volume_RI", "volume_RP"):  # rows that agree: no column
        assert against not in published.paper_columns(vgg, comparison, 12)
    assert against not in published.paper_columns(load_params(RESNET), "volume_L-1", 1)
    frame = published.published_frame()
    flagged = frame[frame["against the text"] != ""]
    assert set(flagged["source"]) == {"Table VII"} and set(flagged["level"]) == {1}
    # beside the published column of the kit's tables
    analysis = _Analysis(vgg, {}, k=K, default=SOLUTION)
    _, t7 = hs.volume_tables(analysis, object(), [1, 6, 11, 12])
    assert t7.loc[1, against] == note and (t7.loc[[6, 11, 12], against] == "").all()
    assert t7.loc[1, "paper RPr_L-1(min(L))"] == 219.996
    flip = hs.flip_table(analysis, object(), [1, 6])
    assert (flip.loc["0->1", against].loc["level 0"] == note).all()
    assert (flip.loc["5->6", against] == "").all()


def test_tables_8_and_9_sum_the_eigenvalues_above_the_threshold():
    """hessian.positive_threshold: eigenvalues below threshold x lambda_max do not enter."""
    table = _baseline_table(load_params(VGG), threshold=0.5)
    assert table.loc[1, "V'(3) W_RI(L)"] == pytest.approx(math.log(30 * 20))
    assert table.loc[1, "entered W_RI(L)"] == 2 and "flags" in table


def test_radius_table_applies_the_rule_and_prints_the_cutoff():
    def result(label, mean, loss, cutoff):
        return {"label": label, "space": 2, "radii": torch.tensor([mean, mean]),
                "censored": torch.tensor([False, False]), "mean": mean, "median": mean,
                "std": 0.0, "center_loss": loss, "cutoff": cutoff, "reference": "pair_max",
                "cutoff_rule": "relative 1"}

    pairs = [(2, result("W_min(2)", 0.3, 0.1, 1.0), result("Pr_2(min(1))", 0.2, 0.5, 1.0))]
    names = ("W_min(L)", "Pr_L(min(L-1))")
    table = ls.radius_table(pairs, names, load_params(RESNET), "radius_L")
    row = table.loc[2]
    assert row["cutoff W_min(L)"] == row["cutoff Pr_L(min(L-1))"] == 1.0
    assert row["normalized_cutoff W_min(L)"] == pytest.approx(9.0)
    assert row["normalized_cutoff Pr_L(min(L-1))"] == pytest.approx(1.0)
    assert row["W_min(L) wider"] and row["reference"] == "pair_max"
    assert row["paper mean_radius W_min(L) (level lost)"] == 0.232314
    smoke = ls.radius_table(pairs, names, load_params(RESNET, {"model.width": 8}), "radius_L")
    assert not smoke.filter(like="paper").columns.size
    assert isinstance(smoke, pd.DataFrame)


# --- every key that changes a published number is in the rule (issue 26 item 10) ----------------

WALKED_FOR_PUBLISHED = ("data", "model", "train", "imp", "baselines", "analysis", "hessian",
                        "landscape")


# Keys no valid parameter file changes while the rest is the paper's recipe, and why.
CANNOT_CHANGE_ALONE = {"model.depth": "a depth only with model.arch resnet, vgg or wrn, which the "
                                      "rule's model.arch refuses already"}


def _published_candidates(key: str, value):
    from param_walk import other_values  # the same "another valid value" as the cache walk

    section, name = key.split(".")
    extra = {"model.arch": ["vgg16"], "data.dataset": ["synthetic_cifar10"],
             "train.optimizer": ["adam"], "imp.scope": ["layerwise"],
             "hessian.tol_relative_to": ["lambda_max"], "landscape.radius_cutoff": ["absolute"],
             "landscape.radius_reference": ["own"], "hessian.dtype": ["float64"],
             "landscape.dtype": ["bfloat16"], "data.root": ["elsewhere"],
             "data.train_size": [5000], "model.prunable": [["fc.weight"]],
             "model.not_prunable": [["fc.weight"]]}.get(key, [])
    try:
        more = other_values(section, name, value)
    except TypeError:  # a list of names (baselines.kinds)
        more = [value[:1]]
    return [*extra, *more]


@pytest.mark.parametrize("quantity", ["volume", "radius"])
def test_every_key_that_changes_a_published_number_is_in_the_rule(quantity):
    from lthkit.config.base import ParamsError, flatten

    base = load_params(RESNET)
    assert published.paper_recipe(base, quantity) == "resnet20"
    flat = flatten(base.model_dump(include=set(WALKED_FOR_PUBLISHED)))
    drifting, wrongly_listed, untried = [], [], []
    for key in sorted(flat):
        if key in CANNOT_CHANGE_ALONE:
            continue
        value = flat[key]
        changed = None
        for candidate in _published_candidates(key, value):
            try:
                changed = load_params(RESNET, {key: candidate})
            except ParamsError:
                continue
            if flatten(changed.model_dump(include=set(WALKED_FOR_PUBLISHED)))[key] != value:
                break
            changed = None
        if changed is None:
            untried.append(key)
            continue
        shown = published.paper_recipe(changed, quantity) is not None
        reason = published.neutral_reason(key, quantity)
        if shown and reason is None:
            drifting.append(f"{key}: {value!r} -> {candidate!r}")
        if not shown and reason is not None:
            wrongly_listed.append(key)
    assert not untried, f"no other valid value for {untried}"
    assert not drifting, f"published {quantity} values still shown after changing {drifting}"
    assert not wrongly_listed, f"listed as neutral but part of the rule: {wrongly_listed}"


@pytest.mark.parametrize("key, value", [
    ("imp.rewind_iteration", 0), ("analysis.recalibrate_bn", False),
    ("hessian.positive_threshold", 0.5), ("hessian.max_iterations", 100),
    ("train.precision", "bf16"), ("train.precision", "tf32")])
def test_the_issues_drifts_hide_the_published_volumes(key, value):
    params = load_params(RESNET, {key: value})
    assert published.paper_recipe(params, "volume") is None
    assert published.paper_columns(params, "volume_L", 1) == {}


@pytest.mark.parametrize("key, value", [
    ("landscape.radius_directions", 1), ("landscape.examples", 10),
    ("analysis.subset_size", 50), ("landscape.radius_cutoff", "absolute")])
def test_the_issues_drifts_hide_the_published_radii(key, value):
    params = load_params(RESNET, {key: value})
    assert published.paper_recipe(params, "radius") is None
    assert published.paper_columns(params, "radius_L", 1) == {}


@pytest.mark.notebook
def test_published_numbers_never_enter_a_verdict(smoke, smoke_vgg16):
    """The README: the verdicts rest on the tables the run folder holds, never on published
    numbers. Every claim of the smoke series (notebook 09's on smoke_vgg16), read off the run's
    own tables, gives the same values and verdicts when those tables also hold published numbers
    far from ours: the columns a run of the paper's recipe adds ("paper W_min(L)", ...) and a
    "paper" twin of every column."""
    from lthkit.verdicts import paper_claims as pc
    from lthkit.verdicts.claims import claim_table
    from lthkit.verdicts.replicates import read_table

    paper_columns = {published.paper_column(t, point) for t in published.TABLES.values()
                     for point in t.points}
    checked = []
    for series in (smoke, smoke_vgg16):
        params = load_params(series.params_file)
        for name in params.report.notebooks:
            series.run(name)
        for claim in pc.all_claims(params):
            if claim.notebook not in params.report.notebooks:
                continue
            path = params.run_dir() / "tables" / claim.table
            assert path.exists(), f"{claim.claim.key}: {claim.table} was not written"
            own = read_table(path)
            published_columns = {f"paper {c}": 1e6 for c in own.columns}
            published_columns.update({c: -1e6 for c in paper_columns})
            with_published = own.assign(**published_columns)
            values = pc.values_across(claim, [own])
            assert repr(pc.values_across(claim, [with_published])) == repr(values), \
                claim.claim.key
            if values:  # a claim about sparsities the smoke runs do not reach has none
                verdicts = [claim_table(claim.claim, pc.values_across(claim, [t]),
                                        margins=params.claims.margins)
                            for t in (own, with_published)]
                assert verdicts[0].equals(verdicts[1]), claim.claim.key
                checked.append(claim.claim.key)
    assert len(set(checked)) >= 40, checked  # 02's claims are read in both series
