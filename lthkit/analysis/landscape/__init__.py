"""The loss landscape between and around solutions: lines, basin radii, planes, random surfaces.

Everything here is a function of a batched loss: `evaluate(points) -> losses` or
`-> (losses, accuracies)`, with `points` an N x P tensor of flat weight vectors (ParamLayout order).
`PointEvaluator.evaluate` is one (BatchNorm statistics recomputed at every point, or without
recalibration made from the solutions' stored ones: `PointEvaluator.near`); a known quadratic is
another (the tests). Directions and grids are flat vectors over the same
coordinates; "level L space" is where the mask vector `layout.mask_vector(m_L)` is 1.

| paper | what | function |
| --- | --- | --- |
| Figs 9, 12, 17, 19 | loss along (1-α) A + α B, α a little past [0, 1]; barrier height | `evaluate_line` |
| Figs 6, 8, Tables II, IV | basin radius along random unit directions (Huang et al. 2020) | `basin_radii` |
| Fig 13 | loss on the plane through A, B, C (Gram-Schmidt axes), points projected | `evaluate_plane` |
| Bain; Li et al. 2018 | loss on two filter-normalized random directions around a solution | `evaluate_surface` |

Surfaces are made as Li et al.'s code (tomgoldstein/loss-landscape) and Bain's fork make them:
`raw_direction` then `filter_normalize` (every weight of two or more dimensions, 1-D ones zero),
the solution's own BatchNorm statistics at every grid point (`landscape.surface_bn`), dense
directions and one raw draw for every level by default; `surface_recipe` says in words how a
surface was made against either paper (the figures print it).

`Landscape` ties these to a run folder: it builds the points of the paper (W_min(L),
Pr_L(min(L-1)) = m_L ⊙ W_min(L-1), baselines), the evaluator on the analysis subset, and caches
every line, radius, plane and surface under cache/landscape/ in the run folder.

One module per concern, every public name re-exported here (`from lthkit.analysis import landscape as ls`):

    batch    evaluating many points in chunks         lines    lines and barriers
    radius   basin radii                              planes   planes and random surfaces
    run      the points of a run, cached              tables   the notebooks' tables
"""

from __future__ import annotations

from lthkit.analysis.landscape.batch import Evaluate, evaluate_points, points_per_call
from lthkit.analysis.landscape.lines import (alpha_grid, barrier_height, evaluate_line, interpolate,
                                             linear_barrier)
from lthkit.analysis.landscape.planes import (evaluate_plane, evaluate_surface, filter_normalize,
                                              filter_normalized_direction, grid_losses, plane_basis,
                                              plane_grid, project, raw_direction)
from lthkit.analysis.landscape.radius import (basin_radii, basin_radii_many, cutoff_loss,
                                              random_directions)
from lthkit.analysis.landscape.run import (APPENDIX_LINE_FIGURES, BARRIER_FIGURES,
                                           LINE_FIGURE_TITLES, LINE_FIGURES, PLANE_BASELINES,
                                           Landscape, PointRef, figure_ends)
from lthkit.analysis.landscape.tables import (PAPER_RADII, PAPER_SURFACES, barrier_table,
                                              is_paper_preset, line_test_table, plane_table,
                                              radius_flip_table, radius_table, surface_recipe)

__all__ = [
    "Evaluate", "alpha_grid", "interpolate", "evaluate_line", "barrier_height", "linear_barrier",
    "random_directions", "cutoff_loss", "basin_radii", "basin_radii_many", "plane_basis",
    "project", "plane_grid",
    "grid_losses", "evaluate_plane", "raw_direction", "filter_normalize",
    "filter_normalized_direction", "evaluate_surface", "PAPER_SURFACES", "surface_recipe",
    "evaluate_points", "points_per_call", "PointRef", "Landscape", "PAPER_RADII",
    "is_paper_preset",
    "barrier_table", "line_test_table", "radius_table", "radius_flip_table", "plane_table", "LINE_FIGURES",
    "PLANE_BASELINES", "LINE_FIGURE_TITLES", "BARRIER_FIGURES", "APPENDIX_LINE_FIGURES",
    "figure_ends",
]

