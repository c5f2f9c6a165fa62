"""The Hessian analysis of a run: its points (IMP solutions, projections, baselines) with the space
each is measured in, and their spectra, traces and densities cached in the run folder."""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from lthkit.analysis.hessian.lanczos import (density_curve, hutchinson_trace, log_volume,
                                             resolve_method, slq_density, topk, volume_bound,
                                             volume_count)
from lthkit.analysis.hessian.operator import HessianOperator
from lthkit.nets.evaluator import PointEvaluator
from lthkit.nets.pruning import Mask, magnitude_prune, masked_state
from lthkit.platform.progress import tqdm

__all__ = ["HessianPoint", "imp_solution", "imp_reverse_projection", "imp_projection",
           "band_projection", "fraction_projection", "baseline_solution", "volume_points",
           "baseline_levels", "HessianAnalysis", "BASELINE_SYMBOLS", "SpectrumWarning",
           "spectrum_status", "spectrum_flags", "spectrum_bound", "point_from_spec"]


@dataclass
class HessianPoint:
    """A point W, the space it is measured in, and its names (cache key and plot label).

    `load()` returns (state dict, mask): the weights (and BatchNorm statistics, used only when
    recalibration is off) and the mask whose space the Hessian is restricted to.
    """

    name: str                    # e.g. imp_L03_min, imp_L03_proj_from_L02, one_shot_L03
    space: str                   # e.g. imp_m03, one_shot_m03
    label: str                   # matplotlib mathtext, e.g. $W_{min(3)}$
    load: Callable[[], tuple[dict[str, torch.Tensor], Mask]] = field(repr=False)
    spec: tuple = ()             # how to make it again elsewhere: see point_from_spec


def imp_solution(imp, level: int, space_level: int | None = None) -> HessianPoint:
    """W_min(level) in level `space_level` space (default: its own level)."""
    s = level if space_level is None else space_level
    label = rf"$W_{{min({level})}}$" if s == level else rf"$RPr_{{{s}}}(min({level}))$"
    return HessianPoint(f"imp_L{level:02d}_min", f"imp_m{s:02d}", label,
                        lambda: (imp.final(level), imp.mask(s)), ("imp_solution", level, s))


def imp_reverse_projection(imp, level: int) -> HessianPoint:
    """RPr_{L-1}(min(L)): W_min(L) measured in level L-1 space."""
    return imp_solution(imp, level, space_level=level - 1)


def imp_projection(imp, level: int) -> HessianPoint:
    """Pr_L(min(L-1)) = m_L ⊙ W_min(L-1), in level L space."""
    def load():
        mask = imp.mask(level)
        return masked_state(imp.final(level - 1), mask), mask

    return HessianPoint(f"imp_L{level:02d}_proj_from_L{level - 1:02d}", f"imp_m{level:02d}",
                        rf"$Pr_{{{level}}}(min({level - 1}))$", load, ("imp_projection", level))


def band_projection(imp, level: int, fraction: float, scope: str = "global") -> HessianPoint:
    """W_min(L-1) pruned of the band of slightly larger weights (ranks p..2p of its alive ones)
    instead of the smallest p, in the space of that band mask (Fig 16)."""
    def load():
        prev = imp.final(level - 1)
        mask = magnitude_prune(prev, imp.mask(level - 1), fraction=fraction, scope=scope,
                               band_offset=fraction)
        return masked_state(prev, mask), mask

    return HessianPoint(f"band_L{level:02d}_from_L{level - 1:02d}_p{fraction:g}",
                        f"band_m{level:02d}_p{fraction:g}",
                        rf"$Pr^{{band}}_{{{level}}}(min({level - 1}))$", load,
                        ("band_projection", level, fraction, scope))


def fraction_projection(imp, level: int, fraction: float, scope: str = "global") -> HessianPoint:
    """W_min(L-1) with the smallest `fraction` of its alive weights pruned, in that mask's space:
    one step of a prune-fraction sweep (Result 3: too many weights pruned in a step raise the
    loss and shrink the volume more). At imp.prune_fraction it is Pr_L(min(L-1))."""
    def load():
        prev = imp.final(level - 1)
        mask = magnitude_prune(prev, imp.mask(level - 1), fraction=fraction, scope=scope)
        return masked_state(prev, mask), mask

    return HessianPoint(f"pruned_L{level - 1:02d}_p{fraction:g}",
                        f"pruned_m{level - 1:02d}_p{fraction:g}",
                        rf"$Pr_{{{fraction:.0%}}}(min({level - 1}))$".replace("%", r"\%"), load,
                        ("fraction_projection", level, fraction, scope))


BASELINE_SYMBOLS = {"one_shot": "OS", "fine_tune": "FT", "lr_rewind": "LRR",
                    "random_reinit": "RI", "random_prune": "RP", "random_prune_oneshot": "RP'"}


def baseline_solution(baselines, kind: str, level: int) -> HessianPoint:
    """A comparison solution W_X(L) of notebook 02, in the space of its own mask."""
    sym = BASELINE_SYMBOLS.get(kind, kind)
    return HessianPoint(f"{kind}_L{level:02d}", f"{kind}_m{level:02d}", rf"$W_{{{sym}({level})}}$",
                        lambda: (baselines.final(kind, level), baselines.mask(kind, level)),
                        ("baseline_solution", kind, level))


def point_from_spec(imp, baselines, spec: tuple) -> HessianPoint:
    """The point a HessianPoint's `spec` names, loading from these results (a worker's run
    folder): ('imp_solution', L, space), ('imp_projection', L), ('band_projection', L, fraction,
    scope) or ('baseline_solution', kind, L)."""
    builder, *args = spec
    if builder == "baseline_solution":
        return baseline_solution(baselines, *args)
    if builder in ("imp_solution", "imp_projection", "band_projection", "fraction_projection"):
        return globals()[builder](imp, *args)
    raise ValueError(f"not a point of the Hessian analysis: {spec!r}")


def volume_points(imp, levels: Sequence[int]) -> list[HessianPoint]:
    """Every point of Tables I, III and V for these levels, each once: W_min(L) and
    Pr_L(min(L-1)) in level L space, W_min(L-1) and RPr_{L-1}(min(L)) in level L-1 space."""
    points: dict[tuple[str, str], HessianPoint] = {}
    for L in levels:
        for pt in (imp_solution(imp, L - 1), imp_reverse_projection(imp, L),
                   imp_solution(imp, L), imp_projection(imp, L)):
            points.setdefault((pt.name, pt.space), pt)
    return list(points.values())


def baseline_levels(baselines, kind: str, levels: Sequence[int]) -> list[int]:
    """The levels of `levels` at which notebook 02 has finished the baseline `kind`."""
    have = set(baselines.available())
    return [lv for lv in levels if (kind, lv) in have]


# --- the analysis of a run ----------------------------------------------------------------------

# Bumped when what a cached spectrum means changes (2: pairs measured against themselves only
# above hessian.positive_threshold, the dtype floor, block methods; status and counts stored).
SPECTRUM_VERSION = 2


class SpectrumWarning(UserWarning):
    """A spectrum that did not meet its tolerance: its V'(k) is flagged in the tables."""


def spectrum_status(spectrum: Mapping) -> str:
    """converged | exhausted | dtype_limited | budget (older cache entries: from `converged`)."""
    return spectrum.get("status") or ("converged" if spectrum["converged"] else "budget")


def spectrum_flags(spectrum: Mapping, k: int, threshold: float) -> str:
    """What a table should say beside V'(k) of this spectrum ('' when nothing): not converged,
    limited by the dtype, fewer than k eigenvalues above threshold x lambda_max."""
    flags = [_convergence_flag(spectrum)]
    _, entered, wanted = volume_count(spectrum["eigenvalues"], k, threshold)
    if entered < wanted:
        flags.append(f"{entered} of {wanted} eigenvalues > {threshold:g} x lambda_max")
    return "; ".join(f for f in flags if f)


def spectrum_bound(spectrum: Mapping, k: int, threshold: float) -> float:
    """The error bound of V'(k) of a cached spectrum (`lanczos.volume_bound`); an older entry
    without residuals has none (NaN)."""
    return volume_bound(spectrum["eigenvalues"], spectrum.get("residuals"), k, threshold)


def _convergence_flag(spectrum: Mapping) -> str:
    status = spectrum_status(spectrum)
    if status == "budget":
        return (f"not converged: residual {spectrum['relative_residual']:.1e} > tol "
                f"{spectrum['tol']:g} after {spectrum['n_hvp']} products")
    if status == "dtype_limited":
        return (f"residual {spectrum['relative_residual']:.1e} > tol {spectrum['tol']:g}: "
                f"as close as the products' dtype allows ({spectrum.get('floor', 0):.1e} x "
                f"lambda_max)")
    return ""


def _digest(fields: Mapping[str, object]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]


class HessianAnalysis:
    """Spectra, traces and densities of the points of one run, cached in its run folder."""

    def __init__(self, ctx, progress: bool = True):
        p = ctx.params
        self.ctx, self.cfg, self.progress = ctx, p.hessian, progress
        self.subset_size = min(self.cfg.subset_size or p.analysis.subset_size, ctx.data.num_train)
        self.seed = p.run.seed
        self.batch_size = self.cfg.batch_size or p.analysis.batch_size
        self.dtype = torch.float64 if self.cfg.dtype == "float64" else torch.float32
        self.recalibrate = p.analysis.recalibrate_bn
        self._data: tuple[torch.Tensor, torch.Tensor] | None = None
        self._model: nn.Module | None = None
        self._warned: set[tuple[str, str]] = set()

    # --- data, model, operator -------------------------------------------------------------
    @property
    def data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The Hessian's examples: the first subset_size of the seeded analysis draw."""
        if self._data is None:
            self._data = self.ctx.data.analysis_subset(self.subset_size, self.seed)
        return self._data

    @property
    def model(self) -> nn.Module:
        if self._model is None:
            self._model = self.ctx.new_model()
        return self._model

    def operator(self, point: HessianPoint) -> HessianOperator:
        """The masked Hessian operator at a point, BatchNorm recalibrated on the subset."""
        state, mask = point.load()
        x, y = self.data
        evaluator = PointEvaluator(self.model, x, y, batch_size=self.batch_size,
                                   recalibrate_bn=self.recalibrate)
        w = evaluator.point(state)
        if evaluator.recalibrate:
            buffers = evaluator.recalibrated_buffers(w)
        else:
            buffers = {n: state[n] for n in evaluator.buffer_names if n in state}
        layout = evaluator.layout
        return HessianOperator(self.model, w, x, y, buffers=buffers,
                               mask=layout.mask_vector(mask, x.device),
                               batch_size=self.batch_size, mode=self.cfg.hvp, dtype=self.dtype,
                               reuse_graph=self.cfg.reuse_graph)

    # --- cached results ----------------------------------------------------------------------
    def key(self, what: str, point: HessianPoint, **fields: object) -> str:
        """Cache key: what, point, space, subset size and seed, and a digest of the settings."""
        settings = {"dtype": self.cfg.dtype, "recalibrate_bn": self.recalibrate, **fields}
        normalization = self.ctx.params.data.normalization
        if normalization != "dataset":  # the default adds nothing: earlier results keep their keys
            settings["normalization"] = self.ctx.params.data.normalization_stats()
        return (f"{what}__{point.name}__in_{point.space}__n{self.subset_size}_s{self.seed}"
                f"__{_digest(settings)}")

    @property
    def method(self) -> str:
        """The top-k solver on this run's device (hessian.method, 'auto' resolved)."""
        return resolve_method(self.cfg.method, self.ctx.device)

    def spectrum(self, point: HessianPoint) -> dict:
        """Top-k eigenvalues at a point in its space, with the loss there and the solver's report
        (products, blocks, passes, residuals, status); warns when it missed its tolerance."""
        c = self.cfg
        method = self.method
        solver = {"method": method, "max_iterations": c.max_iterations, "tol": c.tol,
                  "relative_to": c.tol_relative_to, "positive_threshold": c.positive_threshold,
                  "version": SPECTRUM_VERSION}
        if method == "block_lanczos":
            solver["block_size"] = c.block_size
        key = self.key(f"top{c.k}", point, k=c.k, **solver)

        def compute() -> dict:
            op = self.operator(point)
            res = topk(op, c.k, method=method, block_size=c.block_size,
                       max_iterations=c.max_iterations, tol=c.tol,
                       relative_to=c.tol_relative_to, positive_threshold=c.positive_threshold,
                       seed=self.seed, basis_device=c.basis_device, progress=self.progress,
                       desc=point.name)
            op.release()
            return {**res.to_dict(), "loss": op.loss(), "hvp_mode": op.mode, "k": c.k,
                    "point": point.name, "space": point.space, "subset_size": self.subset_size}

        out = self.ctx.store.cached("hessian", key, compute)
        self._warn_once(point, out)
        return out

    def _warn_once(self, point: HessianPoint, spectrum: Mapping) -> None:
        status = spectrum_status(spectrum)
        if status in ("converged", "exhausted") or (point.name, point.space) in self._warned:
            return
        self._warned.add((point.name, point.space))
        warnings.warn(f"spectrum of {point.name} in {point.space}: {_convergence_flag(spectrum)} "
                      f"(flagged in the tables)", SpectrumWarning, stacklevel=3)

    def trace(self, point: HessianPoint) -> dict:
        """Hutchinson trace of the masked Hessian at a point."""
        n = self.cfg.trace_samples
        key = self.key(f"trace{n}", point, samples=n)

        def compute() -> dict:
            op = self.operator(point)
            out = hutchinson_trace(op, n, seed=self.seed, progress=self.progress)
            op.release()
            return {**out, "dim": op.dim, "point": point.name, "space": point.space}

        return self.ctx.store.cached("hessian", key, compute)

    def density(self, point: HessianPoint) -> dict:
        """SLQ nodes and weights of the masked Hessian at a point."""
        c = self.cfg
        key = self.key(f"slq{c.density_iterations}x{c.density_runs}", point,
                       iterations=c.density_iterations, runs=c.density_runs)

        def compute() -> dict:
            op = self.operator(point)
            out = slq_density(op, c.density_iterations, c.density_runs, seed=self.seed,
                              progress=self.progress)
            op.release()
            return {**out, "dim": op.dim, "point": point.name, "space": point.space}

        return self.ctx.store.cached("hessian", key, compute)

    def density_curve(self, point: HessianPoint) -> tuple[torch.Tensor, torch.Tensor]:
        """(grid, density) of the SLQ spectral density at a point, for plotting."""
        d = self.density(point)
        return density_curve(d["nodes"], d["weights"])

    def spectra(self, points: Sequence[HessianPoint], desc: str = "spectra") -> list[dict]:
        """The spectra of several points, one progress bar over them."""
        out = []
        for point in tqdm(points, desc=desc, disable=not self.progress, leave=False):
            out.append(self.spectrum(point))
        return out

    # --- tables --------------------------------------------------------------------------------
    def volume(self, point: HessianPoint, k: int | None = None) -> float:
        """V'(k) at a point (k: hessian.k), over the eigenvalues above hessian.positive_threshold
        x lambda_max."""
        return self.log_volume(self.spectrum(point), k)

    def log_volume(self, spectrum: Mapping, k: int | None = None) -> float:
        """V'(k) of a spectrum with this run's positive threshold (warns when fewer than k)."""
        return log_volume(spectrum["eigenvalues"], k or self.cfg.k, self.cfg.positive_threshold)

    def flags(self, spectrum: Mapping, k: int | None = None) -> str:
        """What the tables say beside V'(k) of a spectrum ('' when nothing)."""
        return spectrum_flags(spectrum, k or self.cfg.k, self.cfg.positive_threshold)

    def eigenvalues(self, *points: HessianPoint) -> dict[str, torch.Tensor]:
        """{label: top-k eigenvalues} of the points, for the comparison figures."""
        return {pt.label: self.spectrum(pt)["eigenvalues"] for pt in points}

    def report(self, points: Sequence[HessianPoint]) -> pd.DataFrame:
        """What each spectrum cost and how well it converged: one row per point (computing the
        missing spectra first, one progress bar over them). `status` is converged, exhausted
        (the Krylov space filled the subspace), dtype_limited (as close as the products' dtype
        allows, short of tol) or budget (not converged); `entered` counts the eigenvalues above
        positive_threshold x lambda_max that V'(k) sums."""
        rows = []
        threshold = self.cfg.positive_threshold
        for pt, s in zip(points, self.spectra(points)):
            lam = s["eigenvalues"]
            value, entered, wanted = volume_count(lam, s["k"], threshold)
            rows.append({"point": pt.name, "space": pt.space, "dim": s["dim"],
                         "loss": s["loss"], "lambda_max": float(lam[0]),
                         "lambda_k": float(lam[-1]), "positive": int((lam > 0).sum()),
                         f"V'({s['k']})": value, "entered": entered,
                         "threshold": threshold, "method": s.get("method", "lanczos"),
                         "n_hvp": s["n_hvp"], "blocks": s.get("n_blocks", s["n_hvp"]),
                         "passes": s.get("n_passes", s["n_hvp"]),
                         "max_residual": s["max_residual"],
                         "relative_residual": s["relative_residual"], "tol": s["tol"],
                         "status": spectrum_status(s), "converged": s["converged"],
                         "flags": spectrum_flags(s, s["k"], threshold),
                         "basis": s["basis_device"], "seconds": s["seconds"]})
        return pd.DataFrame(rows).set_index("point")
