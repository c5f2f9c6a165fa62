"""`PointEvaluator`: the training loss and accuracy of many points W at once on the fixed analysis
subset, BatchNorm recalibrated at each (the module doc of lthkit.nets.points says how and why)."""

from __future__ import annotations

from contextlib import contextmanager
from functools import partial
from typing import Callable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from lthkit.nets.batchnorm import (BatchNormControl, StopPass, affine_statistics, buffers_from,
                                   fresh_statistics, merge_moments)
from lthkit.nets.points import (ParamLayout, fused_by_default, has_batchnorm, leading_size,
                                map_points)
from lthkit.nets.probe import choose_points_per_pass
from lthkit.platform.device import tf32

__all__ = ["PointEvaluator", "PRECISIONS"]


class PointEvaluator:
    """Training loss and accuracy of points W (flat vectors) on fixed examples (x, y).

    `model` is only a template (architecture and buffer names); its own weights are never used
    or changed. With `recalibrate_bn`, BatchNorm statistics of every point are recomputed on x;
    without, every point needs statistics given (its stored ones: `evaluate(points, buffers)`,
    `evaluate_states`, or `near` for points around stored solutions).
    Points go through the network `points_per_pass` at a time (an int, or "auto"), fused into one
    grouped network when `use_vmap` (None: `fused_by_default(device)`), else one by one.
    `dtype` is float32 (TF32 off), tfloat32 (convolutions and matrix products in TF32 where the
    GPU has it) or bfloat16 (autocast; see the module doc).
    """

    STATISTICS = "exact"  # recalibrated statistics: exact over the subset (issue 17), any chunking

    def __init__(self, model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 1000,
                 recalibrate_bn: bool = True, points_per_pass: int | str = 8,
                 use_vmap: bool | None = None, one_pass_bn: bool = False,
                 dtype: torch.dtype | str = torch.float32, verbose: bool = True):
        self.model = model
        self.layout = ParamLayout.from_model(model)
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.recalibrate = recalibrate_bn and has_batchnorm(model)
        self.device = x.device
        self.fused = fused_by_default(self.device) if use_vmap is None else bool(use_vmap)
        self.buffer_names = [n for n, _ in model.named_buffers()]
        self.one_pass_bn = one_pass_bn
        self.precision = _precision(dtype)
        self.dtype = torch.bfloat16 if self.precision == "bfloat16" else torch.float32
        self.verbose = verbose
        if not (points_per_pass == "auto" or (isinstance(points_per_pass, int)
                                              and points_per_pass >= 1)):
            raise ValueError(f"analysis.points_per_pass must be an integer >= 1 or 'auto', "
                             f"not {points_per_pass!r}")
        self._points_setting = points_per_pass
        self._points: int | None = None if points_per_pass == "auto" else points_per_pass
        self.choice = "" if self._points is None else f"points_per_pass {self._points} (set)"
        self._bn = BatchNormControl(model)

    @property
    def use_vmap(self) -> bool:
        """Whether several points go through one fused network (the old name of `fused`)."""
        return self.fused

    @property
    def points_per_pass(self) -> int:
        """P, the points per pass ("auto": resolved on first use, probe.choose_points_per_pass)."""
        if self._points is None:
            self._points, self.choice = choose_points_per_pass(self)
            if self.verbose:
                print(self.choice, flush=True)
        return self._points

    @property
    def has_batchnorm(self) -> bool:
        """Whether the network has BatchNorm layers (whose statistics a point needs)."""
        return bool(self._bn.layers)

    @property
    def one_pass(self) -> bool:
        """Whether losses come from one pass with full-batch statistics (see the module doc)."""
        return self.one_pass_bn and self.recalibrate and self.x.shape[0] <= self.batch_size

    def subset(self, n: int, seed: int = 0) -> "PointEvaluator":
        """The same evaluator on `n` of its examples, chosen by a seeded permutation."""
        if n >= self.x.shape[0]:
            return self
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(self.x.shape[0], generator=g)[:n].sort().values.to(self.device)
        return self.replace(x=self.x[idx], y=self.y[idx])

    def replace(self, **changes) -> "PointEvaluator":
        """A new evaluator with the same settings but `changes` (x, y, recalibrate_bn, ...)."""
        settings = dict(model=self.model, x=self.x, y=self.y, batch_size=self.batch_size,
                        recalibrate_bn=self.recalibrate, points_per_pass=self._points_setting,
                        use_vmap=self.fused, one_pass_bn=self.one_pass_bn, dtype=self.precision,
                        verbose=self.verbose)
        return PointEvaluator(**{**settings, **changes})

    def near(self, anchors: Sequence[Tensor], statistics: Sequence[Mapping[str, Tensor]]
             ) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
        """`evaluate` for points around stored solutions: without recalibration each point
        normalizes with statistics made from the anchors' stored ones (one anchor: its own at
        every point, as Li et al.'s surfaces; a line or plane: `affine_statistics`). With
        recalibration (or without BatchNorm) the statistics are not needed: `evaluate` itself."""
        if self.recalibrate or not self.has_batchnorm:
            return self.evaluate

        def evaluate(points: Tensor) -> tuple[Tensor, Tensor]:
            rows = points.unsqueeze(0) if points.dim() == 1 else points
            loss, acc = self.evaluate(rows, affine_statistics(rows, anchors, statistics))
            return (loss[0], acc[0]) if points.dim() == 1 else (loss, acc)

        return evaluate

    # --- public -----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, points: Tensor, buffers: Sequence[Mapping[str, Tensor]] | None = None
                 ) -> tuple[Tensor, Tensor]:
        """(loss, accuracy) of each row of `points` (N x P, or one P-vector), as float64 on CPU.

        Rows go through the network in blocks of `points_per_pass`. `buffers` (one dict per
        point) are used as they are when given and recalibration is off; without recalibration
        a network with BatchNorm needs them (fresh statistics would give wrong losses: `near`).
        """
        if buffers is None and not self.recalibrate and self.has_batchnorm:
            raise ValueError("BatchNorm statistics are not recalibrated (analysis.recalibrate_bn: "
                             "false): pass each point's stored statistics (buffers), e.g. through "
                             "PointEvaluator.near")
        single = points.dim() == 1
        pts = points.unsqueeze(0) if single else points
        step = self.points_per_pass
        losses, accs = [], []
        for i in range(0, pts.shape[0], step):
            block = pts[i:i + step].to(self.device, torch.float32)
            own = None if buffers is None else list(buffers[i:i + step])
            loss, acc = self._evaluate_block(block, own)
            losses.append(loss)
            accs.append(acc)
        loss, acc = torch.cat(losses).cpu(), torch.cat(accs).cpu()  # one wait for the device
        return (loss[0], acc[0]) if single else (loss, acc)

    def losses(self, points: Tensor) -> Tensor:
        """Just the losses of `evaluate`."""
        return self.evaluate(points)[0]

    def evaluate_states(self, states: Sequence[Mapping[str, Tensor]]) -> tuple[Tensor, Tensor]:
        """(loss, accuracy) of state dicts; their own BatchNorm statistics are used only when
        recalibration is off."""
        states = list(states)
        points = torch.stack([self.layout.flatten(s) for s in states])
        buffers = [{n: s[n] for n in self.buffer_names} for s in states]
        return self.evaluate(points, buffers)

    def point(self, state: Mapping[str, Tensor]) -> Tensor:
        """The point of a state dict, on the evaluator's device."""
        return self.layout.flatten(state).to(self.device)

    @torch.no_grad()
    def recalibrated_buffers(self, point: Tensor) -> dict[str, Tensor]:
        """BatchNorm statistics of one point recomputed on the examples (fresh ones without BN).

        Exactly what `torch.optim.swa_utils.update_bn` gives with all the examples as one batch:
        each layer's mean and unbiased variance over all examples, of its input computed with
        every earlier layer normalizing by its own full-subset mean and biased variance (train
        mode). When the examples take several chunks, the statistics are gathered layer by
        layer: one pass over the chunks per layer, stopped right after that layer, its moments
        pooled exactly over chunks (Chan et al.), earlier layers normalizing with their final
        statistics. That costs about L/2 forward passes for L layers instead of one, which is
        why the landscape's one-pass mode and one-chunk subsets are the fast paths.
        """
        vec = point.to(self.device, torch.float32).unsqueeze(0)
        with self._passes():
            stats = self._statistics(self.layout.unflatten(vec), fused=False)
        return {n: b[0] for n, b in buffers_from(self.model, stats, 1, self.device).items()}

    # --- blocks of points -----------------------------------------------------------------------
    @contextmanager
    def _passes(self) -> Iterator[None]:
        """No grad, eval mode, BatchNorm under control, the precision asked for: bf16 autocast,
        or fp32 with TF32 allowed only for "tfloat32" (PyTorch lets cuDNN use it by default)."""
        training = self.model.training
        self.model.eval()
        try:
            with tf32(self.precision == "tfloat32"), torch.no_grad(), self._bn, torch.autocast(
                    self.device.type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16):
                yield
        finally:
            self.model.train(training)

    def _evaluate_block(self, points: Tensor, own: list[Mapping[str, Tensor]] | None
                        ) -> tuple[Tensor, Tensor]:
        """(mean loss, accuracy) of the k points of one block, each a k-vector on the device."""
        k = points.shape[0]
        params = self.layout.unflatten(points)
        fused = self.fused and k > 1
        n = self.y.shape[0]
        with self._passes():
            if self.one_pass:
                loss_sum, correct = map_points(self._one_pass_loss, (params,), (self.x, self.y),
                                               fused)
                return loss_sum.double() / n, correct.double() / n
            if own is not None and not self.recalibrate:
                given = {name: tuple(torch.stack([o[f"{name}.{b}"].to(self.device).float()
                                                  for o in own])
                                     for b in ("running_mean", "running_var"))
                         for name in self._bn.layers}
            elif self.recalibrate:
                given = self._statistics(params, fused)
            else:
                given = fresh_statistics(self._bn.layers, k, self.device)
            loss_sum = torch.zeros(k, device=self.device, dtype=torch.float64)
            correct = torch.zeros(k, device=self.device, dtype=torch.float64)
            for xb, yb in self._chunks():
                loss, right = map_points(self._loss, (params, given), (xb, yb), fused)
                loss_sum += loss.double()
                correct += right.double()
        return loss_sum / n, correct / n

    def _loss(self, params: dict[str, Tensor], given: dict, x: Tensor, y: Tensor):
        """Summed loss and number right of one point, BatchNorm with the given statistics."""
        self._bn.plan(given=given)
        logits = functional_call(self.model, params, (x,)).float()
        self._bn.plan()
        return F.cross_entropy(logits, y, reduction="sum"), (logits.argmax(1) == y).sum()

    def _one_pass_loss(self, params: dict[str, Tensor], x: Tensor, y: Tensor):
        """As `_loss`, every BatchNorm normalizing with its batch's mean and unbiased variance."""
        self._bn.plan(correction=1)
        logits = functional_call(self.model, params, (x,)).float()
        self._bn.plan()
        return F.cross_entropy(logits, y, reduction="sum"), (logits.argmax(1) == y).sum()

    def _chunk_moments(self, params: dict[str, Tensor], given: dict, x: Tensor, stop: bool):
        """(mean, M2) per layer not in `given` that one point's forward on x reaches (with
        `stop`, only the first one); counts are left in self._counts."""
        self._bn.plan(given=given, correction=0, record=True, stop=stop)
        try:
            functional_call(self.model, params, (x,))
        except StopPass:
            pass
        recorded, self._counts = self._bn.recorded, dict(self._bn.counts)
        self._bn.plan()
        return recorded

    def _statistics(self, params: dict[str, Tensor], fused: bool
                    ) -> dict[str, tuple[Tensor, Tensor]]:
        """(mean, unbiased variance) of every BatchNorm layer for k points, each k x C.

        One chunk: one pass in which every layer normalizes with its batch statistics (train
        mode) and records them. Several chunks: one pass per layer (see recalibrated_buffers).
        """
        chunks = [xb for xb, _ in self._chunks()]
        whole = len(chunks) == 1
        final: dict[str, tuple[Tensor, Tensor]] = {}  # (mean, biased variance): normalizes
        unbiased: dict[str, Tensor] = {}
        while len(final) < len(self._bn.layers):
            acc: dict[str, list] = {}
            for xb in chunks:
                moments = map_points(partial(self._chunk_moments, stop=not whole),
                                     (params, final), (xb,), fused)
                for name, (mean, m2) in moments.items():
                    merge_moments(acc, name, self._counts[name], mean.double(), m2.double())
            if not acc:  # the remaining layers are never reached: they keep fresh statistics
                break
            for name, (count, mean, m2) in acc.items():
                if count < 2:
                    raise ValueError(f"BatchNorm layer {name!r} sees {count} value per channel on "
                                     f"these examples; its statistics need at least 2")
                final[name] = (mean.float(), (m2 / count).float())
                unbiased[name] = (m2 / (count - 1)).float()
        k = leading_size(params)
        fresh = fresh_statistics(self._bn.layers, k, self.device)
        return {name: (final[name][0], unbiased[name]) if name in final else fresh[name]
                for name in self._bn.layers}

    def _chunks(self) -> Iterator[tuple[Tensor, Tensor]]:
        for i in range(0, self.x.shape[0], self.batch_size):
            yield self.x[i:i + self.batch_size], self.y[i:i + self.batch_size]


PRECISIONS = ("float32", "tfloat32", "bfloat16")


def _precision(dtype: torch.dtype | str) -> str:
    """The evaluation precision named by `landscape.dtype` (or a torch dtype)."""
    named = {torch.float32: "float32", torch.bfloat16: "bfloat16"}
    out = named.get(dtype, dtype) if isinstance(dtype, torch.dtype) else dtype
    if out not in PRECISIONS:
        raise ValueError(f"landscape.dtype must be one of {', '.join(PRECISIONS)}, not {dtype!r}")
    return out
