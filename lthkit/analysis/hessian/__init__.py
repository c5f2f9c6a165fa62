"""The Hessian of the training loss in a mask's subspace: products, top-k spectrum, trace, density.

The loss is the mean cross-entropy over the fixed analysis subset (the first `hessian.subset_size`
examples of the seeded analysis draw), with the network in eval mode and BatchNorm statistics
recalibrated at the point (REPRODUCTION.md), so it is a function of the trainable parameters W
alone. "Level L space" is where the mask vector m_L is 1, and every product there is

    v ↦ m ⊙ H (m ⊙ v)

computed in fp32 (or fp64; TF32 is switched off) and summed over chunks of the subset, each
weighted by its size. On top of the products:

* `lanczos_topk`: the top-k eigenvalues by Lanczos with full reorthogonalization, stopping when
  the residual bound |β_j s_{j,i}| = ‖Hv_i − θ_i v_i‖ of every wanted Ritz pair is at most
  tol·θ_i for the positive pairs (V'(k) sums their logs, so each needs relative accuracy:
  measured on a ResNet-20, tol·max|θ| with tol = 1e-3 stopped after k products and missed
  V'(100) by 19 units) and tol·max|θ| for the others; it reports the products used, the largest
  residual and where its basis lived.
* `log_volume`: V'(k) = Σ log λ_i over the positive ones among the top k (Wu et al. 2017).
* `hutchinson_trace`, `slq_density`: pyhessian's trace and spectral density (stochastic Lanczos
  quadrature) on the masked operator.
* `pyhessian_topk`, `pyhessian_trace`, `pyhessian_density`: pyhessian 0.1 itself, wrapped (seeded,
  on the given device, `torch.eig` replaced by `eigh`, the caller's model untouched), the reference
  the tests and the benchmark compare against.
* `HessianAnalysis`: all of it for the points of a run, cached in the run folder under
  cache/hessian/ keyed by (point, space, k, subset, seed, parameters), and the tables of the paper.

One module per concern, every public name re-exported here (`from lthkit.analysis import hessian as hs`):

    operator    the masked Hessian operator (products)      lanczos    the Krylov solvers
    reference   pyhessian, wrapped (the tests' reference)   analysis   the points of a run, cached
    tables      the paper's tables and published values
"""

from __future__ import annotations

from lthkit.analysis.hessian.analysis import (BASELINE_SYMBOLS, HessianAnalysis, HessianPoint,
                                              SpectrumWarning, band_projection, baseline_levels,
                                              baseline_solution, imp_projection,
                                              imp_reverse_projection, imp_solution, point_from_spec,
                                              spectrum_flags, spectrum_status, volume_points)
from lthkit.analysis.hessian.lanczos import (DEFAULT_POSITIVE_THRESHOLD, LanczosResult, Subspace,
                                             VolumeWarning, block_lanczos_topk, density_curve,
                                             dtype_floor, eigsh_topk, hutchinson_trace,
                                             lanczos_topk, log_volume, resolve_method, slq_density,
                                             topk, volume_count)
from lthkit.analysis.hessian.operator import (DenseOperator, HessianOperator, resolve_hvp_mode,
                                              strict_fp32)
from lthkit.analysis.hessian.reference import pyhessian_density, pyhessian_topk, pyhessian_trace
from lthkit.analysis.hessian.tables import (APPENDIX_CHOICE_FIGURES, BASELINE_COMPARISONS,
                                            PRUNING_CHOICE_FIGURES, PUBLISHED,
                                            baseline_volume_table, choice_names, choice_points,
                                            choices_tables, flip_table, paper_preset,
                                            prune_fraction_sweep, pruning_choice_levels,
                                            sweep_points, trace_table,
                                            unique_points, volume_by_k, volume_tables)

__all__ = [
    "HessianOperator", "DenseOperator", "LanczosResult", "lanczos_topk", "log_volume",
    "hutchinson_trace", "slq_density", "density_curve", "pyhessian_topk", "pyhessian_trace",
    "pyhessian_density", "HessianPoint", "imp_solution", "imp_projection",
    "imp_reverse_projection", "band_projection", "baseline_solution", "HessianAnalysis",
    "PUBLISHED", "paper_preset", "resolve_hvp_mode", "volume_points", "baseline_levels",
    "volume_tables", "flip_table", "volume_by_k", "choice_points", "choice_names",
    "choices_tables", "trace_table", "prune_fraction_sweep", "sweep_points", "pruning_choice_levels",
    "PRUNING_CHOICE_FIGURES", "BASELINE_SYMBOLS", "strict_fp32", "block_lanczos_topk",
    "eigsh_topk", "topk", "resolve_method", "volume_count", "VolumeWarning", "dtype_floor",
    "Subspace", "DEFAULT_POSITIVE_THRESHOLD", "SpectrumWarning", "spectrum_status",
    "spectrum_flags", "BASELINE_COMPARISONS", "baseline_volume_table", "APPENDIX_CHOICE_FIGURES",
    "unique_points", "point_from_spec",
]
