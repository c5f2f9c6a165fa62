"""The notebooks: paired with their py:percent twins, parameterized, and run under papermill."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.compare import compare_notebooks

from lthkit.imp import ImpResults
from lthkit.params import load_params
from lthkit.pruning import count_alive, count_total, prune_count
from lthkit.store import RunStore

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
