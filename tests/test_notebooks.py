"""The notebooks: paired with their py:percent twins, parameterized, and run under papermill."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest
import torch
from jupytext.compare import compare_notebooks

from lthkit.config.params import load_params
from lthkit.nets.pruning import count_alive, count_total, prune_count
from lthkit.store.layout import RunStore
from lthkit.train.imp import ImpResults

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_and_twin_are_in_sync(nb: Path):
    twin = nb.with_suffix(".py")
    assert twin.exists(), f"{nb.name} has no py:percent twin"
    compare_notebooks(jupytext.read(twin), jupytext.read(nb), fmt="py:percent")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean_and_parameterized(nb: Path):
    notebook = nbformat.read(nb, as_version=4)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert "params_file" in tagged[0].source and "interactive" in tagged[0].source
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), \
        "notebooks under notebooks/ are kept without outputs"
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and "Fig" in first.source, "open with the figures it reproduces"


@pytest.mark.notebook
def test_01_train_imp_on_smoke(smoke):
    nb = smoke.run("01_train_imp")
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    params = load_params(smoke.params_file)
    store = RunStore(params.run_dir())
    results = ImpResults(store)
    assert results.levels_done() == list(range(params.imp.levels + 1))
    total = count_total(results.mask(0))
    alive = total
    for level in range(1, params.imp.levels + 1):
        alive -= prune_count(alive, params.imp.prune_fraction)
        assert count_alive(results.mask(level)) == alive, f"level {level} sparsity"
        files = results.level(level)
        assert files.final_file.exists() and files.metrics_file.exists()
        assert files.trajectory_epochs() == list(range(2, params.train.epochs + 1))
        assert not files.resume_file.exists()
    assert (store.root / "figures" / "fig01_loss_accuracy.png").stat().st_size > 10_000
    table = (store.root / "tables" / "fig01_imp_levels.csv").read_text()
    assert len(table.strip().splitlines()) == params.imp.levels + 2  # header + one row per level
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 1 + len(params.levels(params.report.show_levels)), "Fig 1 + every level"


@pytest.mark.notebook
def test_lthkit_report_runs_the_smoke_preset_end_to_end(smoke):
    """`make report` (lthkit-report params/smoke.yaml) end to end, on the suite's smoke run
    folder: once the notebook tests have trained and analysed it (each notebook once), the
    runner executes the whole series in order, reads what they computed (retrains and
    recomputes nothing) and writes the report: every notebook and its HTML copy, the claims,
    index.html."""
    import json
    import subprocess
    import sys

    import pandas as pd

    from lthkit.verdicts.paper_claims import all_claims

    params = load_params(smoke.params_file)
    for name in params.report.notebooks:
        smoke.run(name)
    run_dir = params.run_dir()
    trained = {p: p.stat().st_mtime_ns for p in run_dir.glob("*/**/*.pt")
               if p.relative_to(run_dir).parts[0] in ("imp", "baselines", "cache", "mnist", "bain")}
    script = Path(sys.executable).with_name("lthkit-report")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "lthkit.report"]
    done = subprocess.run([*command, str(smoke.params_file)], cwd=ROOT, capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    statuses = json.loads(done.stdout.strip().splitlines()[-1])
    assert statuses == {name: "ok" for name in params.report.notebooks}
    for name in params.report.notebooks:
        for ext in ("ipynb", "html"):
            assert (run_dir / "notebooks" / f"{name}.{ext}").stat().st_size > 10_000, (name, ext)
    assert not list((run_dir / "notebooks").glob("failed/*"))
    index = (run_dir / "index.html").read_text()
    assert all(f"notebooks/{name}.html" in index for name in params.report.notebooks)
    claims = pd.read_csv(run_dir / "claims.csv")
    assert len(claims) == len([c for c in all_claims(params)
                               if c.notebook in params.report.notebooks])
    assert list((run_dir / "_static" / "mathjax").rglob("MathJax.js"))
    assert {p: p.stat().st_mtime_ns for p in trained} == trained, "nothing trained or computed"


@pytest.mark.notebook
def test_a_notebook_whose_inputs_are_missing_stops_naming_the_notebook_to_run(tmp_path):
    """The README: a notebook opened before the run it analyses exists stops with an error that
    names the notebook to run first (here 05, on a parameter file nothing was run with)."""
    import papermill
    import yaml

    params_file = tmp_path / "fresh.yaml"
    params_file.write_text(yaml.safe_dump({
        "run": {"name": "fresh", "output_root": str(tmp_path / "outputs")},
        "data": {"dataset": "synthetic_cifar10", "train_size": 128, "test_size": 64},
        "model": {"width": 2}, "train": {"epochs": 2, "batch_size": 32, "milestones": [1]},
        "imp": {"levels": 1, "rewind_iteration": 2}}))
    with pytest.raises(papermill.PapermillExecutionError) as info:
        papermill.execute_notebook(
            str(ROOT / "notebooks" / "05_basin_radius.ipynb"), str(tmp_path / "05.ipynb"),
            kernel_name="python3", cwd=str(ROOT), progress_bar=False,
            parameters={"params_file": str(params_file), "interactive": False})
    assert info.value.ename == "MissingInputError"
    assert info.value.evalue.startswith("notebooks/05_basin_radius.ipynb needs the run folder ")
    assert f"run notebooks/01_train_imp.ipynb with {params_file} first" in info.value.evalue
    assert not (tmp_path / "outputs").exists(), "nothing is written"


def _images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.notebook
def test_09_vgg16_appendix_on_smoke_vgg16(smoke_vgg16):
    for name in ("01_train_imp", "02_baselines"):
        smoke_vgg16.run(name)
    nb = smoke_vgg16.run("09_vgg16_appendix")
    params = load_params(smoke_vgg16.params_file)
    store = RunStore(params.run_dir())
    levels = params.levels(params.analysis.levels, minimum=1)
    figures = {p.name for p in (store.root / "figures").glob("*.png")}
    assert {"fig23_loss_accuracy.png", "fig24_strategies.png"} <= figures
    for lv in levels:
        for fig in ("fig25_trajectory", "fig26_eigenvalues", "fig27_eigenvalues",
                    "fig28_barrier"):
            assert f"{fig}_level{lv:02d}.png" in figures, (fig, lv)
    for lv in params.levels(params.baselines.levels, minimum=1):
        for fig in ("fig29_barrier", "fig30_eigenvalues", "fig31_barrier", "fig32_eigenvalues"):
            assert f"{fig}_level{lv:02d}.png" in figures, (fig, lv)
    import pandas as pd
    table6 = pd.read_csv(store.table_path("table6.csv"), index_col="level")
    assert list(table6.index) == levels
    assert table6.filter(like="V'").notna().all().all()
    report = pd.read_csv(store.table_path("appendix_spectra_report.csv"))
    assert set(report["basis"]) <= {"cpu", "cuda"} and len(report) >= 3 * len(levels)
    k = params.hessian.k
    baseline_levels = params.levels(params.baselines.levels, minimum=1)
    for table, point in (("table8", "W_RI(L)"), ("table9", "W_RP(L)")):
        t = pd.read_csv(store.table_path(f"{table}.csv"), index_col="level")
        assert list(t.index) == [lv for lv in levels if lv in baseline_levels]
        assert t[[f"V'({k}) {point}", f"V'({k}) W_min(L)"]].notna().all().all()
        assert not t.filter(like="paper").columns.size, "smoke is not the paper's VGG-16 recipe"
    slopes = pd.read_csv(store.table_path("fig25_trajectories.csv"), index_col="level")
    assert list(slopes.index) == levels and slopes["slope_level"].notna().all()
    assert _images(nb) >= 10


@pytest.mark.notebook
def test_10_ticket_transfer_on_smoke(smoke):
    smoke.run("01_train_imp")  # the main run's dense trajectory gives the channel masks
    nb = smoke.run("10_ticket_transfer")
    params = load_params(smoke.params_file)
    store = RunStore(params.run_dir())
    import pandas as pd
    mlp = pd.read_csv(store.table_path("ie643_tickets_mlp.csv"), index_col="level")
    assert list(mlp.index) == list(range(params.mnist.mlp.imp.levels + 1))
    assert mlp["control_test_acc"].iloc[1:].notna().all()
    assert mlp["ticket_vs_dense"].iloc[0] == 0
    for task in ("halves", "labels", "sgd_to_adam", "adam_to_sgd"):
        t = pd.read_csv(store.table_path(f"ie643_transfer_{task}.csv"))
        assert t["transferred_ticket_test_acc"].notna().all(), task
        assert t["transferred_minus_target"].notna().all(), task
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    t = params.mnist.transfer
    assert f"SGD lr {t.sgd_lr:g}, momentum {t.sgd_momentum:g}" in text
    eb = pd.read_csv(store.table_path("early_bird_mlp.csv"))
    assert eb["distance"].between(0, 1).all() and len(eb) == params.mnist.mlp.train.epochs
    assert {"window_max", "drawn"} <= set(eb.columns)
    channels = pd.read_csv(store.table_path("early_bird_main_channels.csv"))
    assert len(channels) == params.train.epochs  # from W_init through every epoch of level 0
    summary = pd.read_csv(store.table_path("early_bird_summary.csv"), index_col="masks")
    assert len(summary) == 3 and "drawn_epoch" in summary
    assert store.figure_path("early_bird_channel_matrix.png").exists()
    assert _images(nb) >= 6


@pytest.mark.notebook
def test_11_ticket_landscapes_on_smoke(smoke):
    nb = smoke.run("11_ticket_landscapes")
    params = load_params(smoke.params_file)
    store = RunStore(params.run_dir())
    import pandas as pd
    table = pd.read_csv(store.table_path("bain_accuracy.csv"), index_col="level")
    assert list(table.index) == list(range(params.bain.imp.levels + 1))
    assert table["gap"].iloc[1:].notna().all()
    epochs = params.bain.train.epochs
    assert table["ticket_kept_epoch"].between(1, epochs).all(), "early stopping is on in smoke"
    assert table["random_kept_epoch"].iloc[1:].between(1, epochs).all()
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "drawn (seeded) from the test set" in text and "validation split" in text
    assert "dense directions on every weight, pruned or not, as Bain" in text
    shown = [lv for lv in params.bain.show_levels if lv >= 1]
    surfaces = pd.read_csv(store.table_path("bain_surfaces.csv"), index_col="level")
    assert list(surfaces.index) == shown
    assert surfaces[["ticket_rise", "random_rise", "ticket_curvature"]].notna().all().all()
    assert (surfaces["directions"] == "dense").all() and (surfaces["draw"] == "shared").all()
    for lv in shown:
        assert store.figure_path(f"bain_surfaces_level{lv:02d}.png").exists()
        assert store.figure_path(f"bain_training_level{lv:02d}.png").exists()
    assert store.figure_path(f"bain_fig2_subsample_level{shown[-1]:02d}.png").exists()
    assert _images(nb) >= 2 * len(shown) + 3


# --- your own network and data (issue 25): notebooks 01 and 04-06 on a torchvision network and on
# a user's factory with a dataset beyond the papers' ---------------------------------------------

@pytest.mark.notebook
@pytest.mark.parametrize("series", ["smoke_torchvision", "smoke_factory", "smoke_folder"])
def test_the_analyses_run_on_a_network_that_is_not_the_kits(series, request):
    smoke = request.getfixturevalue(series)
    for name in ("01_train_imp", "04_hessian_volume", "05_basin_radius", "06_barriers"):
        smoke.run(name)
    params = load_params(smoke.params_file)
    store = RunStore(params.run_dir())
    results = ImpResults(store)
    assert results.levels_done() == list(range(params.imp.levels + 1))
    mask = results.mask(params.imp.levels)
    if params.model.not_prunable:  # the factory's classifier is left whole at every level
        assert not set(mask) & set(params.model.not_prunable)
    final = results.final(params.imp.levels)
    for name, m in mask.items():  # pruned weights are zero in the solution the analyses read
        assert torch.count_nonzero(final[name][~m]) == 0, name
    for table in ("hessian_spectra_report", "table1", "radius_flip", "barriers"):
        matches = list((store.root / "tables").glob(f"{table}*.csv"))
        assert matches, f"{table}: not written for {params.model.arch}"


@pytest.mark.notebook
def test_an_imported_open_lth_run_is_analysed_by_notebooks_04_to_06(smoke, smoke_open_lth):
    """The smoke run's levels written in the layout of open_lth's rewinding runs (the
    initialization and the rewind state in level_pretrain/main/, each level's masked rewind state
    and last step in level_<L>/main/model_ep<E>_it<I>.pth, int masks), imported, then analysed:
    the imported levels are the smoke run's exactly (tests/test_open_lth.py imports real
    open_lth runs)."""
    from filelock import FileLock

    from lthkit.train.open_lth import import_open_lth

    smoke.run("01_train_imp")
    source = load_params(smoke.params_file)
    trained = ImpResults(RunStore(source.run_dir()))
    params = load_params(smoke_open_lth.params_file)
    per_epoch = source.data.train_size // source.train.batch_size  # = open_lth's ceil(N / B)
    k = source.imp.rewind_iteration
    rewind_file = f"model_ep{k // per_epoch}_it{k % per_epoch}.pth"
    folder = smoke_open_lth.folder / "open_lth" / "replicate_1"
    with FileLock(smoke_open_lth.folder / "import.lock"):
        if not (smoke_open_lth.folder / "imported").exists():
            pretrain = folder / "level_pretrain" / "main"
            pretrain.mkdir(parents=True, exist_ok=True)
            torch.save(trained.init(), pretrain / "model_ep0_it0.pth")
            torch.save(trained.rewind(), pretrain / rewind_file)
            for level in trained.levels_done():
                main = folder / f"level_{level}" / "main"
                main.mkdir(parents=True, exist_ok=True)
                mask = trained.mask(level)
                torch.save({n: v * mask[n] if n in mask else v
                            for n, v in trained.rewind().items()}, main / rewind_file)
                torch.save(trained.final(level), main / f"model_ep{source.train.epochs}_it0.pth")
                torch.save({n: m.int() for n, m in mask.items()}, main / "mask.pth")
            import_open_lth(folder, params)
            (smoke_open_lth.folder / "imported").touch()
    imported = ImpResults(RunStore(params.run_dir()))
    assert imported.levels_done() == trained.levels_done()
    for level in trained.levels_done():
        a, b = trained.final(level), imported.final(level)
        assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)
        assert imported.metrics(level)["final"]["test_acc"] == pytest.approx(
            trained.metrics(level)["final"]["test_acc"]), "measured as notebook 01 measures"
    for name in ("04_hessian_volume", "05_basin_radius", "06_barriers"):
        smoke_open_lth.run(name)
    tables = RunStore(params.run_dir()).root / "tables"
    assert (tables / "table1.csv").exists() and (tables / "barriers.csv").exists()
