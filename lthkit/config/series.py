"""The notebook series in one place: each notebook's name, the tables it saves, and whether its
work runs as executor units. Library code names a notebook through these constants (never a bare
'04_hessian_volume'), so renaming or adding one is an edit here and a file in notebooks/."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Notebook", "NOTEBOOKS", "SERIES", "ANALYSIS_NOTEBOOKS", "DEFAULT_NOTEBOOKS",
           "TRAIN_IMP", "BASELINES", "DISTANCES", "HESSIAN_VOLUME", "BASIN_RADIUS", "BARRIERS",
           "SUBLEVEL_SETS", "PRUNING_CHOICES", "VGG16_APPENDIX", "TICKET_TRANSFER",
           "TICKET_LANDSCAPES", "notebook_file", "notebook_of_table"]


@dataclass(frozen=True)
class Notebook:
    """One notebook of the series: its stem (notebooks/<stem>.ipynb), the tables it saves under
    tables/ (a '{}' marks a name with a part the run fills in), whether its computations run
    as executor units before it draws (notebooks 04-09), and how it opens its run
    (lthkit.report.notebook.notebook_context): `creates` it (the training notebooks) or reads
    it; the section whose `levels` it studies; which IMP levels must be trained first: `studied`
    (0 and those), `previous` (and each one's predecessor), `pruning_choices` (notebook 08's:
    lthkit.analysis.hessian.pruning_choice_levels) or `nothing`."""

    stem: str
    tables: tuple[str, ...] = ()
    analysis: bool = False
    creates: bool = False
    levels: Literal["analysis", "baselines"] = "analysis"
    reads: Literal["studied", "previous", "pruning_choices", "nothing"] = "studied"

    @property
    def path(self) -> str:
        return notebook_file(self.stem)


TRAIN_IMP = "01_train_imp"
BASELINES = "02_baselines"
DISTANCES = "03_distances_trajectories"
HESSIAN_VOLUME = "04_hessian_volume"
BASIN_RADIUS = "05_basin_radius"
BARRIERS = "06_barriers"
SUBLEVEL_SETS = "07_sublevel_sets"
PRUNING_CHOICES = "08_pruning_choices"
VGG16_APPENDIX = "09_vgg16_appendix"
TICKET_TRANSFER = "10_ticket_transfer"
TICKET_LANDSCAPES = "11_ticket_landscapes"

SERIES: tuple[Notebook, ...] = (
    Notebook(TRAIN_IMP, ("fig01_imp_levels.csv",), creates=True),
    Notebook(BASELINES, ("fig02_strategies.csv",), levels="baselines", reads="nothing"),
    Notebook(DISTANCES, ("fig03_distances.csv", "fig04_trajectories.csv", "fig14_distances{}.csv",
                         "fig15_cosine{}.csv", "fig14_15_blocks.csv")),
    Notebook(HESSIAN_VOLUME, ("hessian_spectra_report.csv", "table1.csv", "table3.csv",
                              "table5.csv", "fig22_volume_k.csv", "hessian_trace.csv"),
             analysis=True, reads="previous"),
    Notebook(BASIN_RADIUS, ("table2.csv", "table4.csv", "radius_flip.csv"), analysis=True),
    Notebook(BARRIERS, ("barriers.csv", "fig12_test_accuracy.csv"), analysis=True),
    Notebook(SUBLEVEL_SETS, ("fig13_points.csv",), analysis=True),
    Notebook(PRUNING_CHOICES, ("pruning_choices_spectra_report.csv", "pruning_choices_volume.csv",
                               "pruning_choices_loss.csv", "result3_prune_fraction.csv"),
             analysis=True, reads="pruning_choices"),
    Notebook(VGG16_APPENDIX, ("fig23_imp_levels.csv", "fig24_strategies.csv",
                              "fig25_trajectories.csv", "appendix_spectra_report.csv",
                              "table6.csv", "table7.csv", "appendix_barriers.csv", "table8.csv",
                              "table9.csv"), analysis=True, reads="previous"),
    Notebook(TICKET_TRANSFER, ("ie643_tickets_{}.csv", "ie643_transfer_{}.csv",
                               "early_bird_mlp.csv", "early_bird_main_channels.csv",
                               "early_bird_main_weights.csv", "early_bird_summary.csv"),
             creates=True),
    Notebook(TICKET_LANDSCAPES, ("bain_accuracy.csv", "bain_surfaces.csv"), creates=True),
)
NOTEBOOKS: dict[str, Notebook] = {nb.stem: nb for nb in SERIES}
ANALYSIS_NOTEBOOKS: tuple[str, ...] = tuple(nb.stem for nb in SERIES if nb.analysis)
# What `report.notebooks` runs unless a YAML says otherwise: the main paper's series (09 is the
# VGG-16 appendix, 10 and 11 the other papers; the presets that reproduce them name them).
DEFAULT_NOTEBOOKS: tuple[str, ...] = (TRAIN_IMP, BASELINES, DISTANCES, HESSIAN_VOLUME,
                                      BASIN_RADIUS, BARRIERS, SUBLEVEL_SETS, PRUNING_CHOICES)


def notebook_file(stem: str) -> str:
    """'notebooks/<stem>.ipynb', the path error messages tell a user to run."""
    return f"notebooks/{stem}.ipynb"


def _matches(pattern: str, name: str) -> bool:
    if "{}" not in pattern:
        return pattern == name
    head, tail = pattern.split("{}", 1)
    return name.startswith(head) and name.endswith(tail) and len(name) >= len(head) + len(tail)


def notebook_of_table(name: str) -> str:
    """The stem of the notebook that saves table `name` (KeyError naming it where none does)."""
    for nb in SERIES:
        if any(_matches(pattern, name) for pattern in nb.tables):
            return nb.stem
    raise KeyError(f"no notebook of the series saves the table {name!r} (lthkit/config/series.py)")
