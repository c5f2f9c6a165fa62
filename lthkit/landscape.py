"""The loss landscape between and around solutions: lines, basin radii, planes, random surfaces.

Everything here is a function of a batched loss: `evaluate(points) -> losses` or
`-> (losses, accuracies)`, with `points` an N x P tensor of flat weight vectors (ParamLayout order).
`PointEvaluator.evaluate` is one (BatchNorm statistics recomputed at every point); a known
quadratic is another (the tests). Directions and grids are flat vectors over the same
coordinates; "level L space" is where the mask vector `layout.mask_vector(m_L)` is 1.

| paper | what | function |
| --- | --- | --- |
| Figs 9, 12, 17, 19 | loss along (1-α) A + α B, α a little past [0, 1]; barrier height | `evaluate_line` |
| Figs 6, 8, Tables II, IV | basin radius along random unit directions (Huang et al. 2020) | `basin_radii` |
| Fig 13 | loss on the plane through A, B, C (Gram-Schmidt axes), points projected | `evaluate_plane` |
| Bain; Li et al. 2018 | loss on two filter-normalized random directions around a solution | `evaluate_surface` |

`Landscape` ties these to a run folder: it builds the points of the paper (W_min(L),
Pr_L(min(L-1)) = m_L ⊙ W_min(L-1), baselines), the evaluator on the analysis subset, and caches
every line, radius, plane and surface under cache/landscape/ in the run folder.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from .data import derive_seed
from .points import ParamLayout, PointEvaluator

__all__ = [
    "Evaluate", "alpha_grid", "interpolate", "evaluate_line", "barrier_height",
    "random_directions", "cutoff_loss", "basin_radii", "plane_basis", "project", "plane_grid",
    "grid_losses", "evaluate_plane", "filter_normalized_direction", "evaluate_surface",
    "evaluate_points", "PointRef", "Landscape", "PAPER_RADII", "is_paper_preset",
    "barrier_table", "radius_table", "radius_flip_table", "plane_table", "LINE_FIGURES",
    "PLANE_BASELINES",
]

Evaluate = Callable[[Tensor], "Tensor | tuple[Tensor, Tensor]"]

# Mean basin radii of the paper (ResNet-20 / CIFAR-10; the level they were measured at was lost
# in the extraction). Table II: level L space; Table IV: level L-1 space.
PAPER_RADII: dict[str, dict[str, float]] = {
    "table2": {"W_min(L)": 0.232314, "Pr_L(min(L-1))": 0.183428},
    "table4": {"W_min(L-1)": 0.091809, "RPr_{L-1}(min(L))": 0.074714},
}


def is_paper_preset(params: Any) -> bool:
    """Whether a run follows the paper's ResNet-20 / CIFAR-10 recipe (its numbers are comparable)."""
    p = params
    return (p.run.name.startswith("resnet20_paper")
            or (p.model.arch == "resnet20" and p.data.dataset == "cifar10"
                and p.model.width in (None, 16) and p.train.epochs == 160))


# --- evaluating many points ---------------------------------------------------------------------

def evaluate_points(evaluate: Evaluate, count: int, build: Callable[[int, int], Tensor],
                    chunk: int = 64, progress: bool = False, desc: str = "points"
                    ) -> tuple[Tensor, Tensor | None]:
    """Losses (and accuracies) of `count` points built chunk by chunk by `build(start, stop)`.

    Points are made on demand so a 51 x 51 grid never holds 2,601 weight vectors at once.
    """
    losses, accs = [], []
    with tqdm(total=count, desc=desc, disable=not progress, leave=False) as bar:
        for start in range(0, count, chunk):
            stop = min(count, start + chunk)
            loss, acc = _call(evaluate, build(start, stop))
            losses.append(loss)
            if acc is not None:
                accs.append(acc)
            bar.update(stop - start)
    loss = torch.cat(losses) if losses else torch.zeros(0, dtype=torch.float64)
    return loss, (torch.cat(accs) if accs and len(accs) == len(losses) else None)


def _call(evaluate: Evaluate, points: Tensor) -> tuple[Tensor, Tensor | None]:
    """Normalize an evaluator's answer to (float64 CPU losses, accuracies or None)."""
    out = evaluate(points)
    loss, acc = out if isinstance(out, tuple) else (out, None)
    loss = loss.detach().double().cpu().reshape(-1)
    return loss, (None if acc is None else acc.detach().double().cpu().reshape(-1))


# --- lines --------------------------------------------------------------------------------------

def alpha_grid(points: int, margin: float) -> Tensor:
    """α = k / (points-1), from about -margin to 1 + margin: 0 and 1 are exactly on the grid."""
    extra = math.ceil(margin * (points - 1) - 1e-9) if margin > 0 else 0
    return torch.arange(-extra, points + extra, dtype=torch.float64) / (points - 1)


def interpolate(a: Tensor, b: Tensor, alphas: Tensor) -> Tensor:
    """The points (1-α) A + α B, one row per α (exactly A at α = 0 and B at α = 1)."""
    al = alphas.to(a.device, a.dtype).unsqueeze(1)
    return (1 - al) * a.unsqueeze(0) + al * b.unsqueeze(0)


def barrier_height(alphas: Tensor, losses: Tensor) -> tuple[float, float]:
    """Max loss over α in [0, 1] minus the higher endpoint, and the α of that maximum."""
    inside = (alphas >= 0) & (alphas <= 1)
    a, loss = alphas[inside], losses[inside]
    ends = max(float(loss[a == 0][0]), float(loss[a == 1][0]))
    top = int(torch.argmax(torch.nan_to_num(loss, nan=float("inf"))))
    return float(loss[top]) - ends, float(a[top])


def evaluate_line(evaluate: Evaluate, a: Tensor, b: Tensor, points: int = 41, margin: float = 0.2,
                  chunk: int = 64, progress: bool = False) -> dict[str, Any]:
    """Loss (and accuracy) along (1-α) A + α B; the barrier between A and B as a number."""
    alphas = alpha_grid(points, margin)
    loss, acc = evaluate_points(evaluate, len(alphas),
                                lambda i, j: interpolate(a, b, alphas[i:j]), chunk, progress, "line")
    height, at = barrier_height(alphas, loss)
    out = {"alpha": alphas, "loss": loss, "barrier": height, "barrier_alpha": at,
           "loss_a": float(loss[alphas == 0][0]), "loss_b": float(loss[alphas == 1][0]),
           "distance": float((b.double() - a.double()).norm())}
    if acc is not None:
        out["acc"] = acc
    return out


# --- basin radius (Huang et al. 2020) -----------------------------------------------------------

def random_directions(count: int, mask: Tensor, seed: int) -> Tensor:
    """`count` random unit directions inside the subspace where `mask` is 1 (count x P).

    Direction i depends only on (seed, i), so two points measured with one seed share their
    directions, and the first k of 100 directions are the same as the k of a run with fewer.
    """
    m = mask.detach().float().cpu()
    out = torch.empty(count, m.numel())
    for i in range(count):
        g = torch.Generator().manual_seed(derive_seed(seed, "direction", i))
        d = torch.randn(m.numel(), generator=g) * m
        out[i] = d / d.norm()
    return out.to(mask.device)


def cutoff_loss(reference: float, rule: str, value: float) -> float:
    """The basin's cut-off c from a reference loss L0.

    relative: c = L0 (1 + value), i.e. the normalized cut-off (c - L0) / L0 equals `value`;
    additive: c = L0 + value; absolute: c = value. The paper's eq (5), lost in the text
    extraction, defines a "normalized cut-off value ... in proximity to the loss values at the
    minima"; the relative rule is the natural reading of it (Huang et al. used a fixed cut-off).
    The paper reports one such value per comparison (Fig 6, Fig 8), which suggests a single
    cut-off for both points of a pair: `landscape.radius_reference: pair_max` does that.
    """
    if rule == "relative":
        return reference * (1.0 + value)
    if rule == "additive":
        return reference + value
    if rule == "absolute":
        return value
    raise ValueError(f"unknown cut-off rule {rule!r}: relative, additive or absolute")


def basin_radii(evaluate: Evaluate, center: Tensor, directions: Tensor, cutoff: float, *,
                start: float = 0.01, growth: float = 2.0, max_radius: float = 50.0,
                tol: float = 1e-3, chunk: int = 64, max_steps: int = 200,
                progress: bool = False, center_loss: float | None = None) -> dict[str, Any]:
    """Distance from `center` along each unit direction to where the loss first exceeds `cutoff`.

    Batched over directions: at every step all unresolved directions are evaluated together.
    A direction's distance is multiplied by `growth` from `start` until the loss exceeds the
    cut-off (the bracket), then bisected until the bracket is narrower than `tol` times its upper
    end; the radius is the bracket's middle. A direction still below the cut-off at `max_radius`
    reports `max_radius` and is marked censored. "First" is up to the bracketing step: a bump
    narrower than one expansion step can be jumped over. Losses that are NaN count as above.
    """
    n = directions.shape[0]
    if center_loss is None:
        center_loss = float(_call(evaluate, center.unsqueeze(0))[0][0])
    lo = torch.zeros(n, dtype=torch.float64)
    hi = torch.full((n,), math.inf, dtype=torch.float64)
    trial = torch.full((n,), min(start, max_radius), dtype=torch.float64)
    done = torch.zeros(n, dtype=torch.bool)
    censored = torch.zeros(n, dtype=torch.bool)
    evaluations, steps = 0, 0
    if not center_loss <= cutoff:  # the point itself is above the cut-off: no basin
        hi.zero_()
        done[:] = True
    bar = tqdm(total=n, desc="radius", disable=not progress, leave=False)
    while not bool(done.all()) and steps < max_steps:
        active = (~done).nonzero().flatten()
        r = trial[active]
        dirs = directions[active.to(directions.device)]
        loss, _ = evaluate_points(
            evaluate, len(active),
            lambda i, j: center.unsqueeze(0) + r[i:j].to(center.device, center.dtype)
            .unsqueeze(1) * dirs[i:j], chunk)
        evaluations += len(active)
        steps += 1
        above = ~(loss <= cutoff)
        hi[active] = torch.where(above, r, hi[active])
        lo[active] = torch.where(above, lo[active], r)
        for i in active.tolist():
            a, b = float(lo[i]), float(hi[i])
            if math.isinf(b):  # not bracketed yet: expand
                if a >= max_radius:
                    done[i], censored[i] = True, True
                else:
                    trial[i] = min(a * growth, max_radius)
            elif b - a <= tol * b or b <= tol * start:  # bracketed narrowly enough
                done[i] = True
            else:  # bisect
                trial[i] = (a + b) / 2
        bar.update(int(done.sum()) - bar.n)
    bar.close()
    radii = torch.where(censored, lo, (lo + hi.nan_to_num(posinf=0.0)) / 2)
    radii = torch.where(done | censored, radii, lo)  # max_steps reached: the last safe distance
    counts, edges = np.histogram(radii.numpy(), bins="auto")
    return {"radii": radii, "censored": censored, "mean": float(radii.mean()),
            "median": float(radii.median()), "std": float(radii.std()) if n > 1 else 0.0,
            "cutoff": float(cutoff), "center_loss": float(center_loss),
            "evaluations": evaluations, "steps": steps,
            "hist_counts": torch.from_numpy(counts), "hist_edges": torch.from_numpy(edges)}


# --- planes through three points (Fig 13) -------------------------------------------------------

def plane_basis(a: Tensor, b: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """Orthonormal axes (u, v) of the plane through A, B, C: u ∥ B−A, v = Gram-Schmidt of C−A."""
    ad = a.double()
    u = b.double() - ad
    u = u / u.norm()
    w = c.double() - ad
    w = w - (w @ u) * u
    w = w - (w @ u) * u  # a second pass keeps u ⊥ v to rounding error
    if float(w.norm()) <= 1e-12 * float((c.double() - ad).norm() + 1e-30):
        raise ValueError("A, B and C are on one line: they span no plane")
    return u.to(a.dtype), (w / w.norm()).to(a.dtype)


def project(points: Tensor, origin: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """(α, β, distance) of each point: α = <W−A, u>, β = <W−A, v>, distance from the plane."""
    pts = points.unsqueeze(0) if points.dim() == 1 else points
    rel = pts.double() - origin.double()
    alpha, beta = rel @ u.double(), rel @ v.double()
    resid = rel - alpha.unsqueeze(1) * u.double() - beta.unsqueeze(1) * v.double()
    return torch.stack([alpha, beta, resid.norm(dim=1)], dim=1)


def plane_grid(coords: Tensor, resolution: int, margin: float) -> tuple[Tensor, Tensor]:
    """Grid axes covering every (α, β) in `coords`, extended by `margin` of the larger extent."""
    lo, hi = coords[:, :2].min(0).values, coords[:, :2].max(0).values
    pad = margin * float((hi - lo).max())
    return (torch.linspace(float(lo[0]) - pad, float(hi[0]) + pad, resolution, dtype=torch.float64),
            torch.linspace(float(lo[1]) - pad, float(hi[1]) + pad, resolution, dtype=torch.float64))


def grid_losses(evaluate: Evaluate, origin: Tensor, u: Tensor, v: Tensor, xs: Tensor, ys: Tensor,
                chunk: int = 64, progress: bool = False, desc: str = "grid"
                ) -> tuple[Tensor, Tensor | None]:
    """Loss (and accuracy) at origin + x u + y v on the grid; arrays are len(ys) x len(xs)."""
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    fx, fy = gx.reshape(-1), gy.reshape(-1)

    def build(i: int, j: int) -> Tensor:
        cx = fx[i:j].to(origin.device, origin.dtype).unsqueeze(1)
        cy = fy[i:j].to(origin.device, origin.dtype).unsqueeze(1)
        return origin.unsqueeze(0) + cx * u.unsqueeze(0) + cy * v.unsqueeze(0)

    loss, acc = evaluate_points(evaluate, fx.numel(), build, chunk, progress, desc)
    shape = (len(ys), len(xs))
    return loss.view(shape), (None if acc is None else acc.view(shape))


def evaluate_plane(evaluate: Evaluate, a: Tensor, b: Tensor, c: Tensor,
                   extras: Mapping[str, Tensor] | None = None, labels: Sequence[str] = ("A", "B", "C"),
                   resolution: int = 31, margin: float = 0.3, chunk: int = 64,
                   progress: bool = False) -> dict[str, Any]:
    """Loss on the plane through A, B, C, and every point of interest projected on it.

    Returns the grid axes x, y (coordinates along u, v from A), loss (and acc) as len(y) x
    len(x), the points' labels, coords (α, β) and distance from the plane.
    """
    u, v = plane_basis(a, b, c)
    names = list(labels) + list(extras or {})
    pts = torch.stack([a, b, c, *(extras or {}).values()]).to(a.device, a.dtype)
    proj = project(pts, a, u, v).cpu()  # results live on the CPU (cached, plotted)
    xs, ys = plane_grid(proj, resolution, margin)
    loss, acc = grid_losses(evaluate, a, u, v, xs, ys, chunk, progress, "plane")
    out = {"x": xs, "y": ys, "loss": loss, "labels": names, "coords": proj[:, :2],
           "distance": proj[:, 2]}
    if acc is not None:
        out["acc"] = acc
    return out


# --- filter-normalized random surfaces (Li et al. 2018; Bain) -----------------------------------

def filter_normalized_direction(layout: ParamLayout, point: Tensor, mask: Tensor | None,
                                generator: torch.Generator, include_bn: bool = False) -> Tensor:
    """A random direction whose every filter has the norm of the weights' filter (Li et al.).

    For each prunable weight (conv or linear), Gaussian entries are zeroed where the mask is 0
    and each output filter (row) is scaled to the norm of the same filter of `point` (a filter
    pruned entirely stays zero). Biases and BatchNorm parameters get zero, or with `include_bn`
    the weights themselves (as Li et al.'s code does when it does not ignore them).
    """
    w_all = point.detach().float().cpu()
    m_all = torch.ones_like(w_all) if mask is None else mask.detach().float().cpu()
    out = torch.zeros_like(w_all)
    for name, sl, shape in zip(layout.names, layout.slices().values(), layout.shapes):
        w = w_all[sl].view(shape)
        if name in layout.prunable and len(shape) >= 2:
            d = torch.randn(shape, generator=generator) * m_all[sl].view(shape)
            d_norm = d.flatten(1).norm(dim=1)
            w_norm = w.flatten(1).norm(dim=1)
            scale = torch.where(d_norm > 0, w_norm / d_norm.clamp_min(1e-30), torch.zeros_like(d_norm))
            out[sl] = (d * scale.view(-1, *[1] * (len(shape) - 1))).reshape(-1)
        elif include_bn:
            out[sl] = w.reshape(-1)
    return out.to(point.device)


def evaluate_surface(evaluate: Evaluate, center: Tensor, d1: Tensor, d2: Tensor,
                     span: float = 1.0, resolution: int = 25, chunk: int = 64,
                     progress: bool = False) -> dict[str, Any]:
    """Loss on center + x d1 + y d2 for x, y in [-span, span] (a 2D surface around a solution)."""
    xs = torch.linspace(-span, span, resolution, dtype=torch.float64)
    loss, acc = grid_losses(evaluate, center, d1, d2, xs, xs.clone(), chunk, progress, "surface")
    out = {"x": xs, "y": xs.clone(), "loss": loss}
    if acc is not None:
        out["acc"] = acc
    return out


# --- the points of the paper, bound to a run folder ---------------------------------------------

@dataclass(frozen=True)
class PointRef:
    """A point of the paper: kind "imp" (W_min(L)), "proj" (Pr_L(min(L-1)) = m_L ⊙ W_min(L-1)),
    "rpr" (RPr_{L-1}(min(L)), the vector W_min(L)), "rewind", "init", or a baseline kind."""

    kind: str
    level: int = 0

    @property
    def label(self) -> str:
        """Plain-text name, as in tables."""
        from .baselines import SYMBOLS

        lv = self.level
        return {"imp": f"W_min({lv})", "proj": f"Pr_{lv}(min({lv - 1}))",
                "rpr": f"RPr_{lv - 1}(min({lv}))", "rewind": "W_rewind", "init": "W_init"
                }.get(self.kind) or f"{SYMBOLS.get(self.kind, self.kind)}({lv})"

    @property
    def math(self) -> str:
        """Mathtext name, as in figures."""
        from .baselines import SYMBOLS

        lv = self.level
        named = {"imp": f"$W_{{min({lv})}}$", "proj": f"$Pr_{{{lv}}}(min({lv - 1}))$",
                 "rpr": f"$RPr_{{{lv - 1}}}(min({lv}))$", "rewind": "$W_{rewind}$",
                 "init": "$W_{init}$"}
        if self.kind in named:
            return named[self.kind]
        sym = SYMBOLS.get(self.kind, self.kind).removeprefix("W_")
        return f"$W_{{{sym}}}({lv})$"

    def generic(self, level: int) -> str:
        """The label with `level` written L (and level-1 written L-1): "W_min(L-1)"."""
        from .baselines import SYMBOLS

        def name(lv: int) -> str:
            return {level: "L", level - 1: "L-1"}.get(lv, str(lv))

        lv, prev = name(self.level), name(self.level - 1)
        return {"imp": f"W_min({lv})", "proj": f"Pr_{lv}(min({prev}))",
                "rpr": f"RPr_{prev}(min({lv}))", "rewind": "W_rewind", "init": "W_init"
                }.get(self.kind) or f"{SYMBOLS.get(self.kind, self.kind)}({lv})"

    @property
    def tag(self) -> str:
        """File-name fragment: imp03, proj03, one_shot03."""
        return f"{self.kind}{self.level:02d}"


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


class Landscape:
    """Lines, radii, planes and surfaces of one run's solutions, cached in its run folder."""

    ANALYSIS = "landscape"

    def __init__(self, ctx: Any, progress: bool = True):
        self.ctx = ctx
        self.params = ctx.params
        self.progress = progress
        self._points: dict[PointRef, Tensor] = {}
        self._own: dict[PointRef, tuple[float, float]] = {}
        self._evaluators: dict[int | None, PointEvaluator] = {}

    # inputs --------------------------------------------------------------------------------------
    @cached_property
    def imp(self):
        from .imp import ImpResults

        return ImpResults(self.ctx.store)

    @cached_property
    def baselines(self):
        from .baselines import BaselineResults

        return BaselineResults(self.ctx.store)

    @property
    def evaluator(self) -> PointEvaluator:
        """Loss on the analysis subset (or `landscape.examples` of it), BatchNorm recalibrated."""
        return self._evaluator(self.params.landscape.examples)

    def _evaluator(self, examples: int | None) -> PointEvaluator:
        """An evaluator on `examples` of the analysis subset (seeded choice; None: all)."""
        if examples not in self._evaluators:
            self._evaluators[examples] = self._make_evaluator(examples)
        return self._evaluators[examples]

    def _make_evaluator(self, examples: int | None) -> PointEvaluator:
        a, lp = self.params.analysis, self.params.landscape
        x, y = self.ctx.analysis_data
        if examples is not None and examples < x.shape[0]:
            g = torch.Generator().manual_seed(derive_seed(self.params.run.seed, "landscape", examples))
            idx = torch.randperm(x.shape[0], generator=g)[:examples].sort().values.to(x.device)
            x, y = x[idx], y[idx]
        batch = max(a.batch_size, x.shape[0]) if lp.one_pass_bn else a.batch_size
        use_vmap = {"auto": None, "yes": True, "no": False}[a.vmap]
        return PointEvaluator(self.ctx.new_model(), x, y, batch_size=batch,
                              recalibrate_bn=a.recalibrate_bn, points_per_pass=a.points_per_pass,
                              use_vmap=use_vmap, one_pass_bn=lp.one_pass_bn)

    @property
    def layout(self) -> ParamLayout:
        return self.evaluator.layout

    @property
    def device(self) -> torch.device:
        return self.evaluator.device

    def point(self, ref: PointRef) -> Tensor:
        """The flat weight vector of a point of the paper, on the evaluator's device."""
        if ref not in self._points:
            flat = self.layout.flatten
            if ref.kind in ("imp", "rpr"):
                vec = flat(self.imp.final(ref.level))
            elif ref.kind == "proj":
                vec = self.space(ref.level).cpu() * flat(self.imp.final(ref.level - 1))
            elif ref.kind == "rewind":
                vec = flat(self.imp.rewind())
            elif ref.kind == "init":
                vec = flat(self.imp.init())
            else:
                vec = flat(self.baselines.final(ref.kind, ref.level))
            self._points[ref] = vec.to(self.device)
        return self._points[ref]

    def space(self, level: int) -> Tensor:
        """m_L over W: 1 on the weights alive at `level` and on every non-prunable parameter."""
        return self.layout.mask_vector(self.imp.mask(level), self.device)

    def own_space(self, ref: PointRef) -> Tensor:
        """The point's own mask over W: a baseline's mask for a baseline, m_L for IMP points."""
        if ref.kind in ("imp", "rpr", "proj", "rewind", "init"):
            return self.space(ref.level)
        return self.layout.mask_vector(self.baselines.mask(ref.kind, ref.level), self.device)

    def baseline_levels(self, kind: str) -> list[int]:
        """Levels at which a finished baseline of `kind` exists."""
        return sorted(lv for k, lv in self.baselines.available() if k == kind)

    # cache keys ------------------------------------------------------------------------------------
    def _eval_config(self, examples: int | None = None) -> dict[str, Any]:
        a, lp = self.params.analysis, self.params.landscape
        n = examples if examples is not None else lp.examples
        return {"subset": a.subset_size, "batch": a.batch_size, "bn": a.recalibrate_bn,
                "one_pass": lp.one_pass_bn, "examples": n, "seed": self.params.run.seed}

    def _cached(self, name: str, config: dict[str, Any], compute: Callable[[], dict]) -> dict:
        key = f"{name}_{_digest(config)}"
        return self.ctx.store.cached(self.ANALYSIS, key, compute)

    # results -------------------------------------------------------------------------------------
    def own_loss(self, ref: PointRef) -> tuple[float, float]:
        """(loss, accuracy) of a point on the landscape's examples."""
        if ref not in self._own:
            def compute() -> dict:
                loss, acc = self.evaluator.evaluate(self.point(ref))
                return {"loss": float(loss), "acc": float(acc)}
            got = self._cached(f"point_{ref.tag}", {"ref": ref.tag, **self._eval_config()}, compute)
            self._own[ref] = (got["loss"], got["acc"])
        return self._own[ref]

    def line(self, a: PointRef, b: PointRef) -> dict[str, Any]:
        """Loss and accuracy along (1-α) A + α B, with the barrier height (Figs 9, 12, 17, 19)."""
        lp = self.params.landscape
        config = {"a": a.tag, "b": b.tag, "points": lp.line_points, "margin": lp.line_margin,
                  **self._eval_config()}
        out = self._cached(f"line_{a.tag}-{b.tag}", config, lambda: evaluate_line(
            self.evaluator.evaluate, self.point(a), self.point(b), lp.line_points, lp.line_margin,
            progress=self.progress))
        return {**out, "a": a.label, "b": b.label, "a_math": a.math, "b_math": b.math,
                "series": f"{a.generic(b.level)} – {b.generic(b.level)}"}

    def radius(self, ref: PointRef, space_level: int, reference_loss: float | None = None
               ) -> dict[str, Any]:
        """Basin radii of a point along random unit directions of level `space_level` space.

        The directions depend on the run seed and the space only, so every point measured in one
        space shares them. `reference_loss` is L0 of the cut-off rule (default: the point's own).
        """
        lp = self.params.landscape
        own = self.own_loss(ref)[0]
        ref_loss = own if reference_loss is None else reference_loss
        cut = cutoff_loss(ref_loss, lp.radius_cutoff, lp.radius_value)
        config = {"ref": ref.tag, "space": space_level, "n": lp.radius_directions, "cut": cut,
                  "start": lp.radius_start, "growth": lp.radius_growth, "max": lp.radius_max,
                  "tol": lp.radius_tol, **self._eval_config()}

        def compute() -> dict:
            dirs = random_directions(lp.radius_directions, self.space(space_level),
                                     derive_seed(self.params.run.seed, "radius", space_level))
            return basin_radii(self.evaluator.evaluate, self.point(ref), dirs, cut,
                               start=lp.radius_start, growth=lp.radius_growth,
                               max_radius=lp.radius_max, tol=lp.radius_tol,
                               center_loss=own, progress=self.progress)

        out = self._cached(f"radius_{ref.tag}_space{space_level:02d}", config, compute)
        return {**out, "label": ref.label, "math": ref.math, "space": space_level}

    def radius_pair(self, a: PointRef, b: PointRef, space_level: int) -> tuple[dict, dict]:
        """Radii of two points in one space with the same directions (and cut-off rule)."""
        reference = None
        if self.params.landscape.radius_reference == "pair_max":
            reference = max(self.own_loss(a)[0], self.own_loss(b)[0])
        return (self.radius(a, space_level, reference), self.radius(b, space_level, reference))

    def plane(self, a: PointRef, b: PointRef, c: PointRef, extras: Sequence[PointRef] = ()
              ) -> dict[str, Any]:
        """Loss on the plane through A, B, C with every point of interest projected (Fig 13)."""
        lp = self.params.landscape
        extras = [e for e in extras if e not in (a, b, c)]
        config = {"abc": [a.tag, b.tag, c.tag], "extras": [e.tag for e in extras],
                  "res": lp.plane_resolution, "margin": lp.plane_margin, **self._eval_config()}
        out = self._cached(f"plane_{a.tag}-{b.tag}-{c.tag}", config, lambda: evaluate_plane(
            self.evaluator.evaluate, self.point(a), self.point(b), self.point(c),
            {e.tag: self.point(e) for e in extras}, labels=(a.tag, b.tag, c.tag),
            resolution=lp.plane_resolution, margin=lp.plane_margin, progress=self.progress))
        refs = [a, b, c, *extras]
        own = [self.own_loss(r) for r in refs]
        return {**out, "refs": [r.tag for r in refs], "labels": [r.label for r in refs],
                "math": [r.math for r in refs], "point_loss": torch.tensor([o[0] for o in own]),
                "point_acc": torch.tensor([o[1] for o in own])}

    def surface(self, ref: PointRef, examples: int | None = None, resolution: int | None = None,
                space_level: int | None = None) -> dict[str, Any]:
        """Loss on two filter-normalized random directions around a point (Li et al.; Bain).

        Directions are zero outside level `space_level` space (default: the point's own mask,
        so a random ticket is perturbed only on its own survivors) and on biases and BatchNorm
        unless `landscape.surface_include_bn`. The random draw depends on the run seed and the
        level only: an IMP ticket and a random ticket of one sparsity share it.
        """
        lp = self.params.landscape
        n = lp.surface_examples if examples is None else examples
        res = lp.surface_resolution if resolution is None else resolution
        level = ref.level if space_level is None else space_level
        config = {"ref": ref.tag, "space": "own" if space_level is None else level, "res": res,
                  "span": lp.surface_span, "bn": lp.surface_include_bn, **self._eval_config(n)}

        def compute() -> dict:
            center = self.point(ref)
            mask = self.own_space(ref) if space_level is None else self.space(level)
            g = torch.Generator().manual_seed(derive_seed(self.params.run.seed, "surface", level))
            d1 = filter_normalized_direction(self.layout, center, mask, g, lp.surface_include_bn)
            d2 = filter_normalized_direction(self.layout, center, mask, g, lp.surface_include_bn)
            out = evaluate_surface(self._evaluator(n).evaluate, center, d1, d2, lp.surface_span,
                                   res, progress=self.progress)
            return {**out, "examples": int(min(n, self.ctx.analysis_data[1].numel()))}

        out = self._cached(f"surface_{ref.tag}_n{n}_r{res}", config, compute)
        return {**out, "label": ref.label, "math": ref.math}


    # the paper's comparisons -------------------------------------------------------------------
    def figure_levels(self, figure: str, levels: Sequence[int]) -> list[int]:
        """The levels of `levels` at which every baseline a line figure needs exists."""
        kinds = {k for pair in LINE_FIGURES[figure] for k in pair if k not in ("imp", "proj")}
        have = set(self.baselines.available())
        return [lv for lv in levels if all((k, lv) in have for k in kinds)]

    def figure_lines(self, figure: str, level: int) -> list[dict[str, Any]]:
        """The lines of one figure at one level (Fig 12: W_min(L-1) to W_min(L))."""
        if figure == "fig12":
            return [self.line(PointRef("imp", level - 1), PointRef("imp", level))]
        return [self.line(PointRef(a, level), PointRef(b, level)) for a, b in LINE_FIGURES[figure]]

    def plane_points(self, levels: Sequence[int]) -> tuple[list[PointRef], list[PointRef]]:
        """A, B, C of Fig 13 and the points projected on the plane.

        A, B, C: `landscape.plane_levels`, else W_min of level 0, of the middle and of the last of
        `levels`. Projected: every other finished IMP solution and, at `plane_baseline_level`
        (else the last level with any), W_RI, W_RP, W_RP' and W_OS where they exist.
        """
        lp = self.params.landscape
        done = self.imp.levels_done()
        if lp.plane_levels:
            chosen = list(lp.plane_levels)
        else:
            chosen = sorted({0, levels[len(levels) // 2], levels[-1]})
            for lv in reversed(done):  # too few analysis levels: fill from the finished ones
                if len(chosen) < 3 and lv not in chosen:
                    chosen = sorted([*chosen, lv])
        missing = [lv for lv in chosen if lv not in done]
        if missing or len(set(chosen)) != 3:
            raise ValueError(f"landscape.plane_levels: levels {missing or chosen} are not three "
                             f"finished IMP levels (finished: {done})")
        abc = [PointRef("imp", lv) for lv in chosen]
        extras = [PointRef("imp", lv) for lv in done if lv not in chosen]
        have = set(self.baselines.available())
        level = lp.plane_baseline_level
        if level is None and have:  # the level with most of them, the last one on ties
            level = max({lv for _, lv in have},
                        key=lambda lv: (sum((k, lv) in have for k in PLANE_BASELINES), lv))
        extras += [PointRef(k, level) for k in PLANE_BASELINES if (k, level) in have]
        return abc, extras

    def sublevel_loss(self, plane: Mapping[str, Any]) -> float:
        """The shaded level of Fig 13: `landscape.sublevel_loss`, else the largest loss of the IMP
        solutions on the plane."""
        if self.params.landscape.sublevel_loss is not None:
            return self.params.landscape.sublevel_loss
        own = [float(loss) for tag, loss in zip(plane["refs"], plane["point_loss"])
               if tag.startswith("imp")]
        return max(own)


# Lines of notebook 06 besides Fig 12: (A kind, B kind) at one level.
LINE_FIGURES: dict[str, list[tuple[str, str]]] = {
    "fig12": [("imp", "imp")],
    "fig09": [("proj", "random_reinit")],
    "fig17": [("imp", "random_prune_oneshot"), ("proj", "random_prune")],
    "fig19": [("imp", "one_shot")],
}
PLANE_BASELINES = ("random_reinit", "random_prune", "random_prune_oneshot", "one_shot")


def plane_table(plane: Mapping[str, Any], sublevel: float | None = None) -> pd.DataFrame:
    """The points of a plane: coordinates on it, distance from it, own loss (in the sublevel set?)."""
    coords, dist = plane["coords"], plane["distance"]
    df = pd.DataFrame({"point": plane["labels"], "u": coords[:, 0].numpy(),
                       "v": coords[:, 1].numpy(), "distance_from_plane": dist.numpy(),
                       "loss": plane["point_loss"].numpy(), "accuracy": plane["point_acc"].numpy()})
    if sublevel is not None:
        df["loss_below_sublevel"] = df["loss"] <= sublevel
    return df.set_index("point")


# --- tables -------------------------------------------------------------------------------------

def barrier_table(lines: Iterable[tuple[str, int, Mapping[str, Any]]]) -> pd.DataFrame:
    """One row per line (figure, level, line result): end losses, highest loss, barrier height."""
    rows = []
    for figure, level, ln in lines:
        inside = (ln["alpha"] >= 0) & (ln["alpha"] <= 1)
        rows.append({"figure": figure, "series": ln.get("series", f"{ln['a']} – {ln['b']}"),
                     "level": level, "A": ln["a"], "B": ln["b"],
                     "loss_A": ln["loss_a"], "loss_B": ln["loss_b"],
                     "max_loss": float(ln["loss"][inside].max()), "barrier": ln["barrier"],
                     "alpha_at_max": ln["barrier_alpha"], "distance": ln["distance"]})
    return pd.DataFrame(rows)


def radius_table(pairs: Iterable[tuple[int, dict, dict]], paper: Mapping[str, float] | None = None,
                 names: tuple[str, str] | None = None) -> pd.DataFrame:
    """Mean radius (and spread) of both points of each pair, one row per (level, solution).

    `paper` ({generic name: published mean}) adds a column beside ours, matched through `names`,
    the generic names of the pair's two points (e.g. "W_min(L)", "Pr_L(min(L-1))").
    """
    rows = []
    for level, ra, rb in pairs:
        for which, r in enumerate((ra, rb)):
            row = {"level": level, "solution": r["label"], "space": f"level {r['space']}",
                   "mean_radius": r["mean"], "median": r["median"], "std": r["std"],
                   "censored": int(r["censored"].sum()), "directions": len(r["radii"]),
                   "loss": r["center_loss"], "cutoff": r["cutoff"]}
            if paper is not None and names is not None:
                row["paper_mean_radius"] = paper.get(names[which], float("nan"))
            rows.append(row)
    return pd.DataFrame(rows).set_index(["level", "solution"])


def radius_flip_table(pairs_l: Mapping[int, tuple[dict, dict]],
                      pairs_prev: Mapping[int, tuple[dict, dict]]) -> pd.DataFrame:
    """Per level: mean radii of Fig 6's pair (level L space) and Fig 8's (level L-1 space), and
    whether the solution found at that space's level has the wider basin in each."""
    rows = []
    for level in sorted(pairs_l):
        (a, b), (c, d) = pairs_l[level], pairs_prev[level]
        rows.append({"level": level, "L space: W_min(L)": a["mean"],
                     "L space: Pr_L(min(L-1))": b["mean"], "W_min(L) wider": a["mean"] > b["mean"],
                     "L-1 space: W_min(L-1)": c["mean"], "L-1 space: RPr_{L-1}(min(L))": d["mean"],
                     "W_min(L-1) wider": c["mean"] > d["mean"]})
    return pd.DataFrame(rows).set_index("level")
