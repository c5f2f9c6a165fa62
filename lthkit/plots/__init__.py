"""Figures of the papers, each a pure function of its data that returns a matplotlib Figure.

Notebooks call these and save the result under the run's figures/ folder with the paper's figure
number in the name (`ctx.store.save_figure(fig, "fig05_...png")`); tests call them directly.
One module per family of figures; everything is re-exported here. `widgets` holds the level and
choice pickers of the interactive notebooks (not re-exported: `import lthkit as lk` gives them).

Imports matplotlib and lthkit.verdicts (the claims page's colours); the figures take tables and
arrays, not runs. Only the notebooks and the report runner import it.
"""

import matplotlib.pyplot as plt

plt.rcParams.update({"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3,
                     "axes.spines.top": False, "axes.spines.right": False})

from lthkit.plots.claims import VERDICT_COLORS, claims_forest  # noqa: E402
from lthkit.plots.geometry import (fig03_distances, fig04_trajectory, fig14_15_matrices,
                                   matrix_heatmap)
from lthkit.plots.hessian import (choice_eigenvalues, density_figure, eigenvalue_comparison,
                                  fig22_volume_k,
                                  flip_figure, points_volume_by_level,
                                  prune_fraction_sweep_figure, trace_figure, volume_by_level)
from lthkit.plots.imp import (STRATEGY_STYLE, fig01_levels, fig02_strategies, strategy_curves,
                              training_curves)
from lthkit.plots.landscape import (barrier_summary, line_figure, plane_figure, radius_histograms,
                                    radius_summary, save_each, surface_figure, surface_sweep,
                                    surfaces_side_by_side)
from lthkit.plots.tickets import (accuracy_vs_iterations, early_bird_distance, mask_distance_matrix,
                                  ticket_gap, ticket_surface, ticket_surface_sweep, ticket_surfaces,
                                  tickets_accuracy, transfer_accuracy)

__all__ = [
    # the claims page of the report
    "claims_forest", "VERDICT_COLORS",
    # IMP and baselines (notebooks 01, 02)
    "STRATEGY_STYLE", "fig01_levels", "fig02_strategies", "strategy_curves", "training_curves",
    # geometry (03)
    "fig03_distances", "fig04_trajectory", "fig14_15_matrices", "matrix_heatmap",
    # Hessian (04, 08)
    "choice_eigenvalues", "density_figure", "eigenvalue_comparison", "fig22_volume_k",
    "flip_figure", "points_volume_by_level", "trace_figure",
    "volume_by_level", "prune_fraction_sweep_figure",
    # landscape (05-07, 11)
    "barrier_summary", "line_figure", "plane_figure", "radius_histograms", "radius_summary",
    "surface_figure", "surface_sweep", "surfaces_side_by_side", "save_each",
    # tickets (10, 11)
    "accuracy_vs_iterations", "early_bird_distance", "mask_distance_matrix", "ticket_gap",
    "ticket_surface", "ticket_surface_sweep", "ticket_surfaces", "tickets_accuracy",
    "transfer_accuracy",
]
