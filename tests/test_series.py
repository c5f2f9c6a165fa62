"""The series declared once (lthkit/config/series.py): the notebooks it names are the notebooks
there are, the tables they save are the ones it declares, no other library file names a notebook,
and every notebook starts from the same parameters cell and one `lk.notebook_context` call."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jupytext
import pytest

from lthkit.config.params import SECTIONS
from lthkit.config.series import NOTEBOOKS, SERIES, notebook_of_table
from lthkit.store import MissingInputError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
STEM = re.compile(r"\b(?:0[1-9]|1[0-9])_[a-z][a-z0-9_]*")
# The files of lthkit that may name a notebook by its stem: the series itself.
NAMING_FILES = {"lthkit/config/series.py"}


def _code_cells(stem: str) -> list:
    return [c for c in jupytext.read(NOTEBOOK_DIR / f"{stem}.py").cells if c.cell_type == "code"]


def test_the_series_is_the_notebooks_folder():
    on_disk = {p.stem for p in NOTEBOOK_DIR.glob("*.py")}
    assert on_disk == set(NOTEBOOKS), "notebooks/ and lthkit/config/series.py disagree"
    assert all((NOTEBOOK_DIR / f"{stem}.ipynb").is_file() for stem in NOTEBOOKS)


def test_no_library_file_but_the_series_names_a_notebook():
    naming = {}
    for path in sorted((ROOT / "lthkit").rglob("*.py")):
        found = set(STEM.findall(path.read_text())) & set(NOTEBOOKS)
        if found:
            naming[str(path.relative_to(ROOT))] = sorted(found)
    assert set(naming) <= NAMING_FILES, f"name notebooks through lthkit.config.series: {naming}"


def test_the_stem_finder_finds_a_stem():
    assert STEM.findall('MADE_BY = "notebooks/04_hessian_volume.ipynb"') == ["04_hessian_volume"]
    assert STEM.findall("50_000 10_000 fig14_15_blocks") == []


@pytest.mark.parametrize("stem", list(NOTEBOOKS))
def test_every_parameters_cell_declares_every_section(stem):
    tagged = [c for c in _code_cells(stem) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    names = [t.id for node in ast.parse(tagged[0].source).body if isinstance(node, ast.Assign)
             for t in node.targets]
    assert names == ["params_file", "interactive", "replicate", "defaults", *SECTIONS], stem


@pytest.mark.parametrize("stem", list(NOTEBOOKS))
def test_every_notebook_starts_from_its_own_context(stem):
    """The setup cell's one call names the notebook it is in (a copied cell would not)."""
    setup = _code_cells(stem)[1].source
    calls = re.findall(r"lk\.notebook_context\(\s*globals\(\),\s*\"([^\"]+)\"\)", setup)
    assert calls == [stem], f"{stem}: its setup cell calls lk.notebook_context(globals(), {stem!r})"
    assert "open_run(" not in setup and "notebook_params(" not in setup


@pytest.mark.parametrize("stem", list(NOTEBOOKS))
def test_the_tables_a_notebook_saves_are_the_ones_declared(stem):
    source = "\n".join(c.source for c in _code_cells(stem))
    saved = {_pattern(n) for n in re.findall(r"save_table\([^\n]*?,\s*f?\"([^\"]+)\"", source)}
    named = {_pattern(n) for n in re.findall(r"f?\"([^\"\s]+\.csv)\"", source)}
    declared = set(NOTEBOOKS[stem].tables)
    assert saved <= declared, f"{stem} saves tables lthkit/config/series.py does not declare"
    assert declared <= named, f"{stem} never names tables lthkit/config/series.py declares"


def _pattern(name: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", name)


def test_a_table_names_the_notebook_that_saves_it():
    assert notebook_of_table("table1.csv") == "04_hessian_volume"
    assert notebook_of_table("fig14_distances_pruned.csv") == "03_distances_trajectories"
    assert notebook_of_table("ie643_transfer_mnist.csv") == "10_ticket_transfer"
    with pytest.raises(KeyError, match="table01.csv"):
        notebook_of_table("table01.csv")
    names = [t for nb in SERIES for t in nb.tables]
    assert len(names) == len(set(names)), "a table saved by two notebooks"


def test_a_notebook_without_its_run_names_the_notebook_to_run_first(tmp_path, monkeypatch):
    import lthkit as lk

    yaml = tmp_path / "p.yaml"
    yaml.write_text(f"run: {{name: absent, output_root: {tmp_path}}}\n")
    with pytest.raises(MissingInputError, match=r"notebooks/04_hessian_volume\.ipynb needs .*"
                                                r"notebooks/01_train_imp\.ipynb"):
        lk.notebook_context({"params_file": str(yaml), "interactive": False},
                            "04_hessian_volume")
    with pytest.raises(KeyError, match="'04_hessian' is not a notebook"):
        lk.notebook_context({"params_file": str(yaml)}, "04_hessian")


def test_the_levels_a_notebook_reads_follow_its_declaration():
    from lthkit.config.params import params_from_dict
    from lthkit.report.notebook import levels_read

    p = params_from_dict({"imp": {"levels": 6}, "analysis": {"levels": [3, 5]},
                          "hessian": {"band_levels": [2], "sweep_fractions": [0.2],
                                      "sweep_level": 4}})
    assert levels_read(p, "studied", [3, 5]) == [0, 3, 5]
    assert levels_read(p, "previous", [3, 5]) == [0, 2, 3, 4, 5]
    assert levels_read(p, "pruning_choices", [3, 5]) == [0, 1, 2, 3, 4, 5]
    declared = {nb.stem: nb.reads for nb in SERIES}
    assert declared["04_hessian_volume"] == declared["09_vgg16_appendix"] == "previous"
    assert [nb.stem for nb in SERIES if nb.creates] == ["01_train_imp", "10_ticket_transfer",
                                                        "11_ticket_landscapes"]
