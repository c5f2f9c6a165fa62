"""The analysis sections: the fixed analysis subset and how points are evaluated (analysis),
the Hessian's spectra (hessian), and lines, planes and radii of the landscape (landscape)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from lthkit.config.base import LevelSelection, _KeyError, _Section


class AnalysisSection(_Section):
    subset_size: int = Field(5000, ge=1, description="fixed seeded subset of the training set, no "
                             "augmentation, used by every analysis (the paper's fraction was "
                             "lost in the extraction; 5,000, 10% of CIFAR-10, is the kit's "
                             "assumption)")
    batch_size: int = Field(1000, ge=1, description="examples per forward pass in analyses")
    recalibrate_bn: bool = Field(True, description="recompute BatchNorm statistics on the subset "
                                 "at points that were not trained")
    levels: LevelSelection = Field("all", description="IMP levels (>= 1) the analyses look at")
    points_per_pass: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto", description="weight vectors evaluated together as one grouped network (P); auto: "
        "on CUDA the fastest block size of a short speed probe that memory holds, on the CPU 8 "
        "when fused, else 1 (the choice and why are printed)")
    vmap: Literal["auto", "yes", "no"] = Field("auto", description="fuse the P points of a pass "
                                                "into one grouped network (torch.func.vmap) "
                                                "instead of a loop: auto = where measured faster, "
                                                "on CUDA only (a loop was faster on the CPU, "
                                                "benchmarks/landscape.py)")

    @property
    def use_vmap(self) -> bool | None:
        """`vmap` as PointEvaluator takes it (None: decide by device)."""
        return {"auto": None, "yes": True, "no": False}[self.vmap]


class HessianSection(_Section):
    k: int = Field(100, ge=1, description="top-k eigenvalues; V'(k) sums the logs of the positive ones")
    ks_fig22: list[int] = Field([10, 25, 50, 100], description="k values of Fig 22 (each <= k; "
                                "taken from the same top-k spectra)")
    subset_size: int | None = Field(None, ge=1, description="examples the Hessian is computed on: "
                                    "the first n of the seeded analysis subset (None: "
                                    "analysis.subset_size; the paper's fraction was lost, see "
                                    "analysis.subset_size)")
    batch_size: int | None = Field(None, ge=1, description="examples per chunk of a Hessian-vector "
                                   "product, summed weighted by size (None: analysis.batch_size)")
    max_iterations: int = Field(600, ge=2, description="Lanczos iterations (= Hessian-vector "
                                "products) at most")
    tol: float = Field(1e-3, gt=0, lt=1, description="Lanczos stops when every wanted residual "
                       "||Hv - lv|| <= tol * (see tol_relative_to); at least 100 units of "
                       "rounding of hessian.dtype (float32: 1.2e-5), below which residuals are "
                       "noise")
    tol_relative_to: Literal["eigenvalue", "largest"] = Field(
        "eigenvalue", description="eigenvalue: the residual of a pair above positive_threshold x "
        "l_max is measured against its own l (each log l of V'(k) to relative accuracy tol), the "
        "others against l_max; largest: every pair against l_max (cheaper, but the small "
        "eigenvalues of the top 100 then carry errors up to tol * l_max)")
    positive_threshold: float = Field(1e-3, gt=0, lt=1, description="V'(k) sums log l over the "
                                      "top-k eigenvalues above this times l_max; smaller ones are "
                                      "zero to the accuracy of fp32 products, and a table says how "
                                      "many entered (a warning when fewer than k)")
    method: Literal["auto", "lanczos", "block_lanczos", "eigsh"] = Field(
        "auto", description="top-k solver: lanczos = one product at a time; block_lanczos = "
        "blocks of block_size products sharing one pass over the data; eigsh = scipy's ARPACK; "
        "auto = block_lanczos on the CPU (0.63x the CPU time at k = 100, about equal at k = 20), lanczos "
        "on CUDA (blocks not measured there yet)")
    block_size: int = Field(8, ge=1, description="vectors per block of block_lanczos (more: "
                            "fewer passes over the data, more products in all)")
    hvp: Literal["auto", "double_backward", "forward_over_reverse"] = Field(
        "auto", description="how Hessian-vector products are taken: auto = double_backward "
        "on the CPU, forward_over_reverse (torch.func jvp(grad)) on CUDA, measured faster on "
        "each")
    reuse_graph: bool = Field(False, description="keep each chunk's first-order graph between "
                              "products (double backward): about 25% faster, memory grows with "
                              "the subset (fine for ResNet-20 on a GPU, not for VGG-16)")
    dtype: Literal["float32", "float64"] = Field("float32", description="precision of the "
                                                 "products (TF32 is always off; bf16 never)")
    basis_device: Literal["auto", "cpu", "device"] = Field(
        "auto", description="where the Lanczos basis lives: auto = on the device when it fits")
    density_iterations: int = Field(80, ge=2, description="Lanczos steps per SLQ run")
    density_runs: int = Field(1, ge=1, description="SLQ runs (random starting vectors)")
    trace_samples: int = Field(50, ge=1, description="Hutchinson samples for the trace")
    band_levels: LevelSelection = Field("all", description="levels of Fig 16 (smallest vs next band)")
    sweep_fractions: list[float] = Field(
        [0.1, 0.2, 0.4, 0.6, 0.8], description="Result 3's prune-fraction sweep (notebook 08): "
        "W_min(L-1) pruned of each fraction of its alive weights in one step, its training loss "
        "and V'(k) (a new, cheap experiment: no retraining); [] skips it")
    sweep_level: int | None = Field(None, ge=1, description="the level L of the sweep (pruning "
                                    "W_min(L-1)); None: the first analysis level")

    @field_validator("sweep_fractions")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if any(not 0 < f < 1 for f in v) or len(set(v)) != len(v):
            raise ValueError(f"fractions strictly between 0 and 1, each once (got {v})")
        return sorted(v)

    @model_validator(mode="after")
    def _ks_within_k(self) -> "HessianSection":
        bad = [x for x in self.ks_fig22 if not 1 <= x <= self.k]
        if bad:
            raise _KeyError("hessian.ks_fig22", f"{bad} outside 1..k (k = {self.k}): Fig 22 "
                            f"reads them from the top-k spectra")
        floor = 100 * {"float32": 2.0 ** -23, "float64": 2.0 ** -52}[self.dtype]
        if self.tol < floor:
            raise _KeyError("hessian.tol", f"{self.tol:g} is finer than {self.dtype} products "
                            f"can certify (residuals below {floor:.1e} x l_max are rounding "
                            f"noise): use at least {floor:.1e}, or hessian.dtype float64")
        return self


class LandscapeSection(_Section):
    """Lines, basin radii, planes and filter-normalized surfaces (notebooks 05-07)."""

    examples: int | None = Field(None, ge=1, description="examples of the analysis subset that "
                                 "lines, radii and planes are evaluated on (None: all of them)")
    dtype: Literal["float32", "tfloat32", "bfloat16"] = Field(
        "float32", description="precision of the loss at many points (lines, radii, planes, "
        "surfaces, trajectories): float32 (TF32 off); tfloat32 lets GPU convolutions and matrix "
        "products use TF32; bfloat16 runs them in bf16 (statistics and losses stay fp32; "
        "tests/test_points.py states the error on the smoke model)")
    one_pass_bn: bool = Field(True, description="BatchNorm statistics and loss in one pass over "
                              "all the examples at once (half the work; statistics of the whole "
                              "subset instead of an average of per-batch ones)")
    line_points: int = Field(41, ge=3, description="points on a line between two solutions, "
                             "both ends included (alpha in [0, 1])")
    line_test_examples: int | None = Field(
        None, ge=1, description="test images the test accuracy along Fig 12's lines is measured "
        "on (Result 4's 'similar generalization all over the region between these solutions'; "
        "None: the whole test split)")
    line_margin: float = Field(0.2, ge=0, description="alpha runs from -margin to 1 + margin, "
                               "on the same spacing")
    radius_directions: int = Field(100, ge=1, description="random unit directions per point "
                                   "(the paper's number was lost; 100 is the kit's assumption)")
    radius_cutoff: Literal["relative", "additive", "absolute"] = Field(
        "relative", description="cut-off c: relative L0*(1+value), additive L0+value, absolute value")
    radius_value: float = Field(1.0, gt=0, description="value of the cut-off rule")
    radius_reference: Literal["own", "pair_max"] = Field(
        "pair_max", description="L0 of the cut-off: pair_max = the higher loss of the two points "
        "compared (one cut-off for both, as the paper's one normalized cut-off per comparison); "
        "own = each point's own loss (a point with a higher loss then gets a looser cut-off)")
    radius_start: float = Field(0.01, gt=0, description="first distance tried along a direction")
    radius_growth: float = Field(2.0, gt=1, description="the distance is multiplied by this until "
                                 "the loss exceeds the cut-off (then bisection)")
    radius_max: float = Field(50.0, gt=0, description="largest radius searched (a direction that "
                              "never crosses reports this and counts as censored)")
    radius_tol: float = Field(1e-3, gt=0, lt=1, description="bisection stops when the bracket is "
                              "this narrow, relative to its upper end")
    plane_resolution: int = Field(31, ge=3, description="grid points per axis on the plane of Fig 13")
    plane_margin: float = Field(0.3, ge=0, description="grid extends this fraction of the points' "
                                "extent past them")
    plane_levels: list[int] | None = Field(None, description="IMP levels of the plane's points A, "
                                           "B, C (axes B-A, C-A); None: 0, the middle and the last "
                                           "analysis level")
    plane_baseline_level: int | None = Field(None, ge=1, description="level whose baselines are "
                                             "projected on the plane (None: the last level with "
                                             "baselines)")
    sublevel_loss: float | None = Field(None, gt=0, description="loss of the shaded sublevel set "
                                        "(None: the largest loss of the IMP solutions)")
    surface_resolution: int = Field(25, ge=3, description="grid points per axis, filter-normalized "
                                    "surface (Li et al. 2018: 51; Bain: 125)")
    surface_span: float = Field(1.0, gt=0, description="the surface spans [-span, span]^2")
    surface_examples: int = Field(250, ge=1, description="examples the surface is evaluated on "
                                  "(Bain's subsample of 250; Li et al.: the whole training set)")
    surface_include_bn: bool = Field(False, description="perturb biases and BatchNorm too")
    surface_bn: Literal["solution", "recalibrate"] = Field(
        "solution", description="BatchNorm at a surface's points: solution = the solution's own "
        "running statistics at every point, eval mode (Li et al.'s code); recalibrate = "
        "statistics recomputed on the surface's examples at every point (as lines and planes)")
    surface_directions: Literal["dense", "masked"] = Field(
        "dense", description="notebook 07's surface directions: dense = on every weight of two or "
        "more dimensions, pruned or not (Li et al.'s code); masked = zero on the solution's "
        "pruned weights, so it stays on its subnetwork (the kit's extension)")
    surface_draw: Literal["shared", "per_level"] = Field(
        "shared", description="notebook 07's raw random directions: shared = one draw for every "
        "level (Li et al.'s code seeds every model alike); per_level = a draw of its own per "
        "level")
    surface_sweep: list[int] = Field([], description="subsample sizes of the figure showing how one "
                                     "surface settles as examples grow (empty: skip it)")

    @field_validator("plane_levels")
    @classmethod
    def _three_levels(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (len(v) != 3 or len(set(v)) != 3 or min(v) < 0):
            raise ValueError("plane_levels must be three different levels >= 0 (A, B, C)")
        return v

    @field_validator("surface_sweep")
    @classmethod
    def _positive_sizes(cls, v: list[int]) -> list[int]:
        if any(n < 1 for n in v):
            raise ValueError("surface_sweep sizes must be >= 1")
        return v

    @model_validator(mode="after")
    def _radius_range(self) -> "LandscapeSection":
        if self.radius_start >= self.radius_max:
            raise _KeyError("landscape.radius_start", f"must be below landscape.radius_max "
                            f"({self.radius_max})")
        return self


