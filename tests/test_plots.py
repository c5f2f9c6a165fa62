"""Figures: accuracy axes in percent within 0-100 that do not magnify a one-image difference,
and Fig 13's markers (issue 12.14)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lthkit import plots  # noqa: E402
from lthkit.analysis.landscape import PointRef  # noqa: E402
from lthkit.plots.imp import percent_axis  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.mark.parametrize("values", [[99.3, 100.0], [0.0, 3.0], [10.0, 95.0], [50.0], []])
def test_percent_axis_stays_in_0_100_and_spans_ten_points(values):
    _, ax = plt.subplots()
    lo, hi = percent_axis(ax, values, "accuracy (%)")
    assert ax.get_ylim() == (lo, hi) and 0 <= lo and hi <= 100 and hi - lo >= 10
    assert all(lo <= v <= hi for v in values)
    assert ("axis" in ax.get_ylabel()) == ((lo, hi) != (0, 100)), "the label states the range"


def test_fig01_and_fig02_do_not_magnify_one_image():
    summary = pd.DataFrame({"train_loss": [0.02, 0.021, 0.019], "test_acc": [0.996, 0.998, 0.993],
                            "weights_left_%": [100, 80, 64]}, index=pd.Index([0, 1, 2],
                                                                             name="level"))
    fig = plots.fig01_levels(summary)
    lo, hi = fig.axes[1].get_ylim()
    assert hi <= 100 and hi - lo >= 10
    strategies = pd.DataFrame({"strategy": ["imp", "imp", "one_shot"], "symbol": ["W_min"] * 2
                               + ["W_OS"], "level": [1, 2, 2], "train_loss": [0.1, 0.1, 0.2],
                               "test_acc": [0.999, 1.0, 0.997]})
    lo, hi = plots.fig02_strategies(strategies).axes[1].get_ylim()
    assert hi == 100 and hi - lo >= 10


def test_line_accuracy_axis_ends_at_100():
    alpha = torch.linspace(-0.2, 1.2, 8)
    line = {"alpha": alpha, "loss": 1 + alpha ** 2, "acc": torch.full((8,), 1.0), "barrier": 0.1,
            "a_math": "A", "b_math": "B"}
    fig = plots.line_figure([line])
    assert fig.axes[1].get_ylim()[1] == 100


def test_fig13_marks_imp_solutions_apart_from_baselines():
    tags = ["imp00", "imp02", "imp03", "imp01", "random_reinit03", "one_shot03"]
    refs = [PointRef(t[:-2], int(t[-2:])) for t in tags]
    grid = torch.linspace(-1, 3, 5)
    plane = {"x": grid, "y": grid, "loss": torch.rand(5, 5) + 0.1, "refs": tags,
             "coords": torch.tensor([[0, 0], [2, 0], [0, 2], [1, 1], [2, 2], [1.1, 1.0]]),
             "distance": torch.tensor([0, 0, 0, 0.5, 3.0, 0.0]),
             "labels": [r.label for r in refs], "math": [r.math for r in refs]}
    fig = plots.plane_figure(plane, 0.5)
    marks = {ln.get_label(): ln for ln in fig.axes[0].get_lines() if ln.get_label()[:1] != "_"}
    imp_off = next(ln for name, ln in marks.items() if "min(1)" in name)
    ri = next(ln for name, ln in marks.items() if "RI" in name)
    os_ = next(ln for name, ln in marks.items() if "OS" in name)
    assert imp_off.get_marker() != ri.get_marker() != os_.get_marker()
    assert imp_off.get_markerfacecolor() == "none", "off the plane: hollow"
    assert os_.get_markerfacecolor() != "none", "on the plane: filled"
    assert "d = 0.5" in imp_off.get_label() and "d =" not in os_.get_label()
    assert [name[:4] for name in list(marks)[:3]] == ["A = ", "B = ", "C = "]


def test_density_axis_ends_just_above_the_peak():
    grid = torch.linspace(-1, 10, 200)
    density = torch.exp(-grid ** 2) / 2 + 1e-30
    ax = plots.density_figure({"level 0": (grid, density)}).axes[0]
    lo, hi = ax.get_ylim()
    assert hi == pytest.approx(1.5, rel=1e-3) and lo == pytest.approx(0.5e-7, rel=1e-3)


def test_radius_histogram_counts_whole_directions():
    r = {"radii": torch.tensor([1.0, 2.0, 2.5]), "mean": 1.8, "math": "A", "center_loss": 0.5}
    ax = plots.radius_histograms(r, {**r, "math": "B"}).axes[0]
    assert all(float(t).is_integer() for t in ax.get_yticks())
