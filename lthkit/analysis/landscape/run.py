"""The points of the paper bound to a run folder, and their lines, radii, planes and surfaces,
cached under cache/landscape/."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor

from lthkit.analysis.landscape.lines import evaluate_line
from lthkit.analysis.landscape.planes import (evaluate_plane, evaluate_surface, filter_normalize,
                                              raw_direction)
from lthkit.analysis.landscape.radius import basin_radii, cutoff_loss, random_directions
from lthkit.config.seeds import derive_seed
from lthkit.nets.evaluator import PointEvaluator
from lthkit.nets.points import ParamLayout

__all__ = ["PointRef", "Landscape", "LINE_FIGURES", "LINE_FIGURE_TITLES", "PLANE_BASELINES"]


@dataclass(frozen=True)
class PointRef:
    """A point of the paper: kind "imp" (W_min(L)), "proj" (Pr_L(min(L-1)) = m_L ⊙ W_min(L-1)),
    "rpr" (RPr_{L-1}(min(L)), the vector W_min(L)), "rewind", "init", or a baseline kind."""

    kind: str
    level: int = 0

    @property
    def label(self) -> str:
        """Plain-text name, as in tables."""
        from lthkit.train.baselines import SYMBOLS

        lv = self.level
        return {"imp": f"W_min({lv})", "proj": f"Pr_{lv}(min({lv - 1}))",
                "rpr": f"RPr_{lv - 1}(min({lv}))", "rewind": "W_rewind", "init": "W_init"
                }.get(self.kind) or f"{SYMBOLS.get(self.kind, self.kind)}({lv})"

    @property
    def math(self) -> str:
        """Mathtext name, as in figures."""
        from lthkit.train.baselines import SYMBOLS

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
        from lthkit.train.baselines import SYMBOLS

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


def _normalized(cutoff: float, reference: float) -> float:
    """(c - L0) / L0: the normalized cut-off the paper reports per comparison."""
    return (cutoff - reference) / reference if reference > 0 else float("nan")


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


SURFACE_CHOICES = {"surface_split": ("train", "test"), "directions": ("dense", "masked"),
                   "draw": ("shared", "per_level")}


class Landscape:
    """Lines, radii, planes and surfaces of one run's solutions, cached in its run folder.

    Surfaces are drawn on `surface_split` ("train": the analysis subset; "test": test images,
    as Bain), with `directions` "dense" (every weight moves, pruned or not: Li et al.'s and
    Bain's code) or "masked" (zero on the point's pruned weights: the kit's extension), and one
    raw draw for every level (`draw` "shared": the reference seeds every model alike) or one
    per level. None: `landscape.surface_directions` and `landscape.surface_draw`.
    """

    ANALYSIS = "landscape"

    def __init__(self, ctx: Any, progress: bool = True, surface_split: str = "train",
                 directions: str | None = None, draw: str | None = None):
        self.ctx = ctx
        self.params = ctx.params
        self.progress = progress
        lp = self.params.landscape
        self.surface_split = surface_split  # surfaces on the analysis subset, or "test" (Bain)
        self.directions = lp.surface_directions if directions is None else directions
        self.draw = lp.surface_draw if draw is None else draw
        for name, allowed in SURFACE_CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"Landscape {name} must be one of {', '.join(allowed)}, not "
                                 f"{getattr(self, name)!r}")
        self._points: dict[PointRef, Tensor] = {}
        self._statistics: dict[PointRef, dict[str, Tensor]] = {}
        self._own: dict[PointRef, tuple[float, float]] = {}
        self._evaluators: dict[int | None, PointEvaluator] = {}
        self._surface_evaluators: dict[tuple[int, bool], PointEvaluator] = {}

    # inputs --------------------------------------------------------------------------------------
    @cached_property
    def imp(self):
        from lthkit.train.imp import ImpResults

        return ImpResults(self.ctx.store)

    @cached_property
    def baselines(self):
        from lthkit.train.baselines import BaselineResults

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
        if examples is None:
            return self.ctx.point_evaluator(one_pass_bn=self.params.landscape.one_pass_bn)
        return self._evaluator(None).subset(
            examples, seed=derive_seed(self.params.run.seed, "landscape", examples))

    def _surface_evaluator(self, examples: int) -> PointEvaluator:
        """Surfaces' examples: a seeded sample of the analysis subset, or of the test set when
        `surface_split` is "test" (Bain evaluates his surfaces on 250 test images); BatchNorm
        as `landscape.surface_bn` says (recalibrated at every point, or the solution's)."""
        recalibrate = self.params.landscape.surface_bn == "recalibrate"
        key = (examples, recalibrate)
        if key in self._surface_evaluators:
            return self._surface_evaluators[key]
        if self.surface_split == "train":
            evaluator = self._evaluator(examples)
        else:
            evaluator = self._test_evaluator(examples, "surface-test", recalibrate)
        if evaluator.recalibrate != (recalibrate and evaluator.has_batchnorm):
            evaluator = evaluator.replace(recalibrate_bn=recalibrate)
        self._surface_evaluators[key] = evaluator
        return evaluator

    @property
    def layout(self) -> ParamLayout:
        return self.evaluator.layout

    @property
    def device(self) -> torch.device:
        return self.evaluator.device

    def _state(self, ref: PointRef) -> dict[str, Tensor]:
        """The state dict a point is read from (W_min(L-1)'s for its projection Pr_L)."""
        if ref.kind in ("imp", "rpr"):
            return self.imp.final(ref.level)
        if ref.kind == "proj":
            return self.imp.final(ref.level - 1)
        if ref.kind == "rewind":
            return self.imp.rewind()
        if ref.kind == "init":
            return self.imp.init()
        return self.baselines.final(ref.kind, ref.level)

    def point(self, ref: PointRef) -> Tensor:
        """The flat weight vector of a point of the paper, on the evaluator's device."""
        if ref not in self._points:
            vec = self.layout.flatten(self._state(ref))
            if ref.kind == "proj":
                vec = self.space(ref.level).cpu() * vec
            self._points[ref] = vec.to(self.device)
        return self._points[ref]

    def statistics(self, ref: PointRef) -> dict[str, Tensor]:
        """The BatchNorm running statistics stored with a point (the model's buffers, on the
        device; a projection Pr_L(min(L-1)) keeps W_min(L-1)'s)."""
        if ref not in self._statistics:
            state = self._state(ref)
            names = [n for n, _ in self.evaluator.model.named_buffers()]
            self._statistics[ref] = {n: state[n].to(self.device) for n in names if n in state}
        return self._statistics[ref]

    def _near(self, evaluator: PointEvaluator, refs: Sequence[PointRef]):
        """`evaluator.evaluate` for points around `refs`: where BatchNorm is not recalibrated,
        with statistics made from the refs' stored ones (PointEvaluator.near)."""
        if evaluator.recalibrate or not evaluator.has_batchnorm:
            return evaluator.evaluate
        return evaluator.near([self.point(r) for r in refs], [self.statistics(r) for r in refs])

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
        config = {"subset": a.subset_size, "batch": a.batch_size, "bn": a.recalibrate_bn,
                  "one_pass": lp.one_pass_bn, "examples": n, "seed": self.params.run.seed}
        if not a.recalibrate_bn:  # stored statistics (issue 32): not the old fresh ones' keys
            config["bn"] = "stored"
        if lp.dtype != "float32":  # the default adds nothing: fp32 results keep their keys
            config["dtype"] = lp.dtype
        if self.params.data.normalization != "dataset":  # likewise
            config["normalization"] = self.params.data.normalization_stats()
        return config

    def _cached(self, name: str, config: dict[str, Any], compute: Callable[[], dict]) -> dict:
        key = f"{name}_{_digest(config)}"
        return self.ctx.store.cached(self.ANALYSIS, key, compute)

    # results -------------------------------------------------------------------------------------
    def own_loss(self, ref: PointRef) -> tuple[float, float]:
        """(loss, accuracy) of a point on the landscape's examples."""
        if ref not in self._own:
            def compute() -> dict:
                loss, acc = self._near(self.evaluator, [ref])(self.point(ref))
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
            self._near(self.evaluator, [a, b]), self.point(a), self.point(b), lp.line_points,
            lp.line_margin, progress=self.progress))
        return {**out, "a": a.label, "b": b.label, "a_math": a.math, "b_math": b.math,
                "series": f"{a.generic(b.level)} – {b.generic(b.level)}"}

    def line_test(self, a: PointRef, b: PointRef) -> dict[str, Any]:
        """Test loss and accuracy along (1-α) A + α B on `landscape.line_test_examples` test
        images (Result 4: generalization between two solutions). Each point normalizes as the
        training-side line does: BatchNorm statistics recalibrated on the analysis subset (not
        on the test images), or, without recalibration, the ends' stored ones interpolated."""
        lp = self.params.landscape
        config = {"a": a.tag, "b": b.tag, "points": lp.line_points, "margin": lp.line_margin,
                  "test": lp.line_test_examples or "all", **self._eval_config()}

        def compute() -> dict[str, Any]:
            train_side = self.evaluator
            test_side = self._test_evaluator(lp.line_test_examples, "line-test")

            def evaluate(points: Tensor) -> tuple[Tensor, Tensor]:
                if not (train_side.recalibrate and train_side.has_batchnorm):
                    return self._near(test_side, [a, b])(points)
                rows = points.unsqueeze(0) if points.dim() == 1 else points
                loss, acc = test_side.evaluate(
                    rows, [train_side.recalibrated_buffers(row) for row in rows])
                return (loss[0], acc[0]) if points.dim() == 1 else (loss, acc)

            return evaluate_line(evaluate, self.point(a), self.point(b), lp.line_points,
                                 lp.line_margin, progress=self.progress)

        out = self._cached(f"line_test_{a.tag}-{b.tag}", config, compute)
        return {**out, "a": a.label, "b": b.label, "split": "test",
                "series": f"{a.generic(b.level)} – {b.generic(b.level)}"}

    def _test_evaluator(self, examples: int | None, purpose: str,
                        recalibrate: bool = False) -> PointEvaluator:
        """An evaluator on a seeded sample of `examples` test images (None: all of them), the
        sample drawn for `purpose`; by default it never recalibrates BatchNorm on test images
        (each point brings its statistics)."""
        data, a = self.ctx.data, self.params.analysis
        total = data.test_x.shape[0]
        n = total if examples is None else examples
        g = torch.Generator().manual_seed(derive_seed(self.params.run.seed, purpose, n))
        idx = torch.randperm(total, generator=g)[:n].sort().values.to(data.device)
        return PointEvaluator(self.ctx.new_model(), data.normalize(data.test_x[idx]),
                              data.test_y[idx], batch_size=a.batch_size,
                              recalibrate_bn=recalibrate, points_per_pass=a.points_per_pass,
                              use_vmap=a.use_vmap, dtype=self.params.landscape.dtype)

    def radius(self, ref: PointRef, space_level: int, reference_loss: float | None = None
               ) -> dict[str, Any]:
        """Basin radii of a point along random unit directions of level `space_level` space.

        The directions depend on the run seed and the space only, so every point measured in one
        space shares them. `reference_loss` is L0 of the cut-off rule (default: the point's own).
        The result carries the cut-off c, L0 and the normalized cut-off (c - L0) / L0.
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
            return basin_radii(self._near(self.evaluator, [ref]), self.point(ref), dirs, cut,
                               start=lp.radius_start, growth=lp.radius_growth,
                               max_radius=lp.radius_max, tol=lp.radius_tol,
                               center_loss=own, progress=self.progress)

        out = self._cached(f"radius_{ref.tag}_space{space_level:02d}", config, compute)
        return {**out, "label": ref.label, "math": ref.math, "space": space_level,
                "reference": "own" if reference_loss is None else "given",
                "reference_loss": ref_loss, "normalized_cutoff": _normalized(cut, ref_loss),
                "cutoff_rule": f"{lp.radius_cutoff} {lp.radius_value:g}"}

    def radius_pair(self, a: PointRef, b: PointRef, space_level: int) -> tuple[dict, dict]:
        """Radii of two points in one space along the same directions.

        `landscape.radius_reference: pair_max` (default): one cut-off for both, from the higher
        of their two losses, as the paper's one normalized cut-off per comparison; `own`: each
        point's cut-off from its own loss (a point with a higher loss then gets a looser one).
        """
        rule = self.params.landscape.radius_reference
        reference = None
        if rule == "pair_max":
            reference = max(self.own_loss(a)[0], self.own_loss(b)[0])
        pair = (self.radius(a, space_level, reference), self.radius(b, space_level, reference))
        return tuple({**r, "reference": rule} for r in pair)  # type: ignore[return-value]

    def plane(self, a: PointRef, b: PointRef, c: PointRef, extras: Sequence[PointRef] = ()
              ) -> dict[str, Any]:
        """Loss on the plane through A, B, C with every point of interest projected (Fig 13)."""
        lp = self.params.landscape
        extras = [e for e in extras if e not in (a, b, c)]
        config = {"abc": [a.tag, b.tag, c.tag], "extras": [e.tag for e in extras],
                  "res": lp.plane_resolution, "margin": lp.plane_margin, **self._eval_config()}
        out = self._cached(f"plane_{a.tag}-{b.tag}-{c.tag}", config, lambda: evaluate_plane(
            self._near(self.evaluator, [a, b, c]), self.point(a), self.point(b), self.point(c),
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

        Directions as `directions` says: on every weight of two or more dimensions ("dense"),
        or zero outside level `space_level` space ("masked"; default: the point's own mask, so
        a random ticket moves only on its own survivors); zero on biases and BatchNorm unless
        `landscape.surface_include_bn`. BatchNorm as `landscape.surface_bn`: the point's stored
        running statistics at every grid point (Li et al.), or recalibrated at each. The raw
        draw depends on the run seed only (`draw` "shared") or also on the level: an IMP ticket
        and a random ticket of one sparsity share it either way.
        """
        lp = self.params.landscape
        n = lp.surface_examples if examples is None else examples
        res = lp.surface_resolution if resolution is None else resolution
        level = ref.level if space_level is None else space_level
        config = {"ref": ref.tag, "space": "own" if space_level is None else level, "res": res,
                  "span": lp.surface_span, **self._eval_config(n), "bn": lp.surface_bn,
                  "directions": self.directions, "draw": self.draw}
        if lp.surface_include_bn:  # its own name: "bn" is how BatchNorm statistics are taken
            config["perturb_bn"] = True
        if self.surface_split != "train":
            config["split"] = self.surface_split

        def compute() -> dict:
            evaluator = self._surface_evaluator(n)
            center = self.point(ref)
            d1, d2 = self.surface_directions(ref, space_level)
            out = evaluate_surface(self._near(evaluator, [ref]), center, d1, d2,
                                   lp.surface_span, res, progress=self.progress)
            return {**out, "examples": int(evaluator.y.numel()),
                    "batchnorm": evaluator.has_batchnorm}

        out = self._cached(f"surface_{ref.tag}_n{n}_r{res}", config, compute)
        return {**out, "label": ref.label, "math": ref.math, "split": self.surface_split,
                "bn": lp.surface_bn, "directions": self.directions, "draw": self.draw,
                "span": lp.surface_span}

    def raw_directions(self, level: int) -> tuple[Tensor, Tensor]:
        """The two raw Gaussian directions of a surface, before normalization: one draw for
        every level (`draw` "shared", as the reference, which seeds every model alike) or one
        per level."""
        parts = ("surface-shared",) if self.draw == "shared" else ("surface", level)
        g = torch.Generator().manual_seed(derive_seed(self.params.run.seed, *parts))
        return raw_direction(self.layout, g), raw_direction(self.layout, g)

    def surface_directions(self, ref: PointRef, space_level: int | None = None
                           ) -> tuple[Tensor, Tensor]:
        """The two filter-normalized directions of `surface` around a point."""
        level = ref.level if space_level is None else space_level
        mask = None
        if self.directions == "masked":
            mask = self.own_space(ref) if space_level is None else self.space(level)
        include_bn = self.params.landscape.surface_include_bn
        center = self.point(ref)
        d1, d2 = (filter_normalize(self.layout, raw, center, mask, include_bn)
                  for raw in self.raw_directions(level))
        return d1, d2

    # the paper's comparisons -------------------------------------------------------------------
    def figure_levels(self, figure: str, levels: Sequence[int]) -> list[int]:
        """The levels of `levels` at which every baseline a line figure needs exists."""
        kinds = {k for pair in LINE_FIGURES[figure] for k in pair if k not in _IMP_KINDS}
        have = set(self.baselines.available())
        return [lv for lv in levels if all((k, lv) in have for k in kinds)]

    def figure_lines(self, figure: str, level: int) -> list[dict[str, Any]]:
        """The lines of one figure of `LINE_FIGURES` at one level (Fig 12: W_min(L-1) to
        W_min(L))."""
        return [self.line(a, b) for a, b in figure_ends(figure, level)]

    def lines_of(self, figures: Sequence[str], levels: Sequence[int]
                 ) -> dict[tuple[str, int], list[dict[str, Any]]]:
        """{(figure, level): its lines} for every figure at the levels of `levels` where the
        baselines it needs exist (notebooks 06 and 09)."""
        return {(f, lv): self.figure_lines(f, lv) for f in figures
                for lv in self.figure_levels(f, levels)}

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


# Lines of notebooks 06 and 09: figure -> [(A kind, B kind)] at level L, with "prev" standing
# for W_min(L-1), "imp" for W_min(L), "proj" for Pr_L(min(L-1)), else a baseline kind at L.
LINE_FIGURES: dict[str, list[tuple[str, str]]] = {
    "fig12": [("prev", "imp")],
    "fig09": [("proj", "random_reinit")],
    "fig17": [("imp", "random_prune_oneshot"), ("proj", "random_prune")],
    "fig19": [("imp", "one_shot")],
    # the VGG-16 appendix (notebook 09): Fig 28 as Fig 12, Fig 29 as Fig 9, Fig 31 as the
    # iterative half of Fig 17
    "fig28": [("prev", "imp")],
    "fig29": [("proj", "random_reinit")],
    "fig31": [("proj", "random_prune")],
}
# The line figures of notebook 06 (Fig 12, then those to the baselines) and of notebook 09 (the
# VGG-16 appendix), drawn at the levels where the baselines they need exist.
BARRIER_FIGURES: tuple[str, ...] = ("fig12", "fig09", "fig17", "fig19")
APPENDIX_LINE_FIGURES: tuple[str, ...] = ("fig28", "fig29", "fig31")
LINE_FIGURE_TITLES: dict[str, str] = {
    "fig12": "Fig 12: successive IMP levels",
    "fig09": "Fig 9: projection to random re-initialization",
    "fig17": "Fig 17: to random pruning (one-shot W_RP', iterative W_RP)",
    "fig19": "Fig 19: to one-shot magnitude pruning",
    "fig28": "Fig 28: successive IMP levels",
    "fig29": "Fig 29: projection to random re-initialization",
    "fig31": "Fig 31: projection to random pruning",
}
_IMP_KINDS = ("imp", "proj", "prev")


def figure_ends(figure: str, level: int) -> list[tuple[PointRef, PointRef]]:
    """The ends of each line of `figure` (LINE_FIGURES) at level L."""
    return [(_line_end(a, level), _line_end(b, level)) for a, b in LINE_FIGURES[figure]]


def _line_end(kind: str, level: int) -> PointRef:
    """The point of a LINE_FIGURES entry at level L ("prev": W_min(L-1))."""
    return PointRef("imp", level - 1) if kind == "prev" else PointRef(kind, level)


PLANE_BASELINES = ("random_reinit", "random_prune", "random_prune_oneshot", "one_shot")
