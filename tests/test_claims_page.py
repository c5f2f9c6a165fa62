"""The claims page (issue 31 items 9-11): the forest plot, the table's width, the family note, and
the claims of several runs side by side (lthkit-claims)."""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from lthkit.plots.claims import claims_forest
from lthkit.report import compare_claims
from lthkit.report.claims_page import claims_html
from lthkit.verdicts import paper_claims as pc
from lthkit.verdicts.claims import claim_table, claims_frame

matplotlib.use("Agg")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _frame(effects: dict[str, tuple[float, float, float, int, str]]) -> pd.DataFrame:
    """A claims.csv frame of real claims with (effect, low, high, replicates, why left out)."""
    claims = pc.by_key()
    rows = []
    for key, (effect, low, high, n, why) in effects.items():
        c = claims[key].claim
        rows.append({"notebook": c.notebook, "claim": key, "source": c.source,
                     "statement": c.statement, "quote": c.quote, "quantity": c.quantity,
                     "relation": c.relation, "expect": c.expect, "margin kind": c.margin,
                     "effect": effect, "effect low": low, "effect high": high, "bound": 0.0,
                     "margin": 0.5, "levels holds": 1, "levels reversed": 0,
                     "levels negligible": 0, "levels does not hold": 0,
                     "levels inconclusive": 0, "left out": 3 if why else 0, "why left out": why,
                     "replicates": n, "replicates needed": None, "p holds": 0.01,
                     "verdict": "inconclusive" if n < 2 else "holds",
                     "holds after Holm": n >= 2})
    return pd.DataFrame(rows)


def test_a_row_without_an_interval_says_why_in_the_plot():
    nan = float("nan")
    frame = _frame({"R1-table1": (-2.0, nan, nan, 3, "3 no certified error bound (raise "
                                  "hessian.max_iterations)"),
                    "R1-table2": (0.3, nan, nan, 1, ""),
                    "R4-fig12": (2.0, 1.0, 3.0, 3, "")})
    fig = claims_forest(frame)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "raise hessian.max_iterations" in labels[0]
    assert labels[1] == "R1-table2 (1 replicate: no interval)"
    assert labels[2] == "R4-fig12"


@pytest.mark.parametrize("reach", [3.0, 40.0, 700.0, 5000.0])
def test_the_symlog_axis_labels_do_not_crowd(reach):
    """Found on a 3-replicate smoke run: '-10' and '-5' printed as '-105'. Every two labels
    stand at least two characters' width apart, whatever the reach of the effects."""
    frame = _frame({"R2-fig9": (-reach, -reach * 1.2, -reach * 0.8, 3, ""),  # greater-claims:
                    "R4-fig12": (0.2, -0.1, 0.5, 3, ""),  # drawn as they are
                    "R6-fig31": (reach, reach / 2, reach, 3, "")})
    frame["margin"] = 1.0
    fig = claims_forest(frame)
    fig.canvas.draw()
    ax = fig.axes[0]
    shown = [t for t in ax.get_xticklabels() if t.get_text()
             and ax.get_xlim()[0] <= t.get_position()[0] <= ax.get_xlim()[1]]
    boxes = sorted((t.get_window_extent() for t in shown), key=lambda b: b.x0)
    gap = 2 * boxes[0].height * 0.6  # about two characters
    assert all(b.x0 - a.x1 >= gap for a, b in zip(boxes, boxes[1:])), \
        [(t.get_text(), round(t.get_window_extent().x0)) for t in shown]
    assert {"-1", "0", "1"} <= {t.get_text() for t in shown}


def _run_folder(tmp_path: Path, name: str, shift: float = 0.0) -> Path:
    """A run folder with claims.csv of every claim (long statements and quotes)."""
    run = tmp_path / name
    (run / "tables").mkdir(parents=True)
    tables = []
    for i, claim in enumerate(pc.all_claims()):
        values = {1: ([1.0 + shift + i / 100, 1.1 + shift, 0.9 + shift], [0.0] * 3)}
        tables.append((claim.claim, claim_table(claim.claim, values)))
    claims_frame(tables).to_csv(run / "claims.csv", index=False)
    return run


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_the_claims_table_reads_without_scrolling_sideways(tmp_path):
    """Issue 31 item 9: the page at 1400 px (every claim, quotes and all) is no wider than the
    window."""
    playwright = pytest.importorskip("playwright.sync_api")
    run = _run_folder(tmp_path, "run")
    from lthkit.report.claims_page import STYLE

    page_file = run / "index.html"
    page_file.write_text(f"<!doctype html><html><head><meta charset='utf-8'><style>"
                         f"body{{font-family:sans-serif;margin:2em}} td,th{{padding:.3em 1em;"
                         f"text-align:left}} {STYLE}</style></head><body>"
                         f"{claims_html(run)}</body></html>")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(page_file.as_uri())
        width = page.evaluate("() => document.documentElement.scrollWidth")
        browser.close()
    assert width <= 1400, f"the claims page is {width} px wide"


def test_the_page_opens_with_the_family_and_folds_each_quote(tmp_path):
    run = _run_folder(tmp_path, "run")
    page = html.unescape(claims_html(run))
    assert page.index("claims hold") < page.index("<table class='claims'>")
    assert "after Holm's correction" in page
    assert page.count("<details>") == len(pc.all_claims())
    assert "table-layout:fixed" not in page  # the style is the page's, given once
    assert (run / "claims_forest.png").exists()


def test_claims_of_several_runs_side_by_side(tmp_path, capsys):
    a, b = _run_folder(tmp_path, "run_a"), _run_folder(tmp_path, "run_b", shift=-5.0)
    out = tmp_path / "across"
    assert compare_claims.main([str(a), str(b), "--out", str(out)]) == 0
    table = pd.read_csv(out / "claims_across.csv", index_col=0)
    assert len(table) == len(pc.all_claims())
    assert {"run_a: verdict", "run_b: verdict", "run_a: effect", "run_b: effect low"} \
        <= set(table.columns)
    assert (table["run_a: verdict"] != table["run_b: verdict"]).any()
    assert (out / "claims_across.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "run_a:" in printed and "run_b:" in printed
    assert not (a / "claims_across.csv").exists(), "nothing written into the runs' folders"


def test_lthkit_claims_names_a_folder_without_claims(tmp_path, capsys):
    empty = tmp_path / "not_a_run"
    empty.mkdir()
    assert compare_claims.main([str(empty), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not_a_run/claims.csv" in err[0] and "lthkit-report" in err[0]
    assert not (tmp_path / "o").exists()
