"""Figures of the papers, each a pure function of its data that returns a matplotlib Figure.

Notebooks call these and save the result under the run's figures/ folder with the paper's figure
number in the name (`ctx.store.save_figure(fig, "fig05_...png")`); tests call them directly.
One module per family of figures; everything is re-exported here.
"""

import matplotlib.pyplot as plt

plt.rcParams.update({"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3,
                     "axes.spines.top": False, "axes.spines.right": False})

from .imp import fig01_levels, training_curves  # noqa: E402

__all__ = ["fig01_levels", "training_curves"]
