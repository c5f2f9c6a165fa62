"""Points in weight space, and the training loss of many of them at once.

A *point* is the vector W of all trainable parameters of a network, flattened in the order of
`model.named_parameters()` (a `ParamLayout`). Masks become vectors over the same coordinates
(1 on every non-prunable parameter), so "level L space" is simply where the mask vector is 1.

`PointEvaluator` is the primitive of every analysis: the loss and accuracy of a batch of points
on the fixed analysis subset. Points that were not trained (projections, interpolations, grid
points, perturbed minima) have no BatchNorm statistics of their own, so by default every point is
evaluated the same way (REPRODUCTION.md): BatchNorm statistics are recomputed on the subset, then
the loss is computed in eval mode. The statistics are exactly those that
`torch.optim.swa_utils.update_bn` gives with the whole subset as one batch, whatever
`batch_size` is (`PointEvaluator.recalibrated_buffers` says how), so a point's loss is a function
of W and the subset alone.

Many points at once: P weight vectors go through the network together as one grouped network
(`map_points`, `grouped_call`: torch.func.vmap over functional_call, under which P convolutions
of the same input become one convolution with P times the filters, and P convolutions of P inputs
one convolution with P groups: the construction HFTA writes by hand). The statistics pass and the
loss pass are fused the same way. `points_per_pass` is P ("auto": chosen from memory and a short
speed probe on the device, see `PointEvaluator.points_per_pass`). `dtype="bfloat16"` runs the
convolutions and matrix products in bf16, `"tfloat32"` lets them use TF32 on GPUs that have it;
statistics and losses stay fp32. The default `"float32"` turns TF32 off while evaluating (PyTorch
lets cuDNN convolutions use it by default), as the Hessian engine does.

`one_pass_bn` halves the work when all examples fit in one forward pass: every BatchNorm layer
normalizes with the mean and unbiased variance of its input over all the examples, which is what
eval mode does with statistics recalibrated in one chunk, so statistics and loss come from a
single pass. (It differs from the two-pass result by O(1/n), n = examples x pixels per channel:
in the two-pass recalibration, later layers see activations normalized with the biased
variance of train mode.) `subset` gives an evaluator on fewer examples (Bain's speed-up).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from .gpu import is_allocation_failure, memory_budget
from .pruning import Mask

__all__ = ["ParamLayout", "PointEvaluator", "has_batchnorm", "bn_modules", "map_points",
           "grouped_call", "stack_states", "fused_by_default"]


@dataclass(frozen=True)
class ParamLayout:
    """Names, shapes and offsets of a model's trainable parameters: the coordinates of W."""

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]
    prunable: frozenset[str]

    @classmethod
    def from_model(cls, model: nn.Module) -> "ParamLayout":
        from .models import prunable_names

        named = [(n, p.shape) for n, p in model.named_parameters() if p.requires_grad]
        return cls(tuple(n for n, _ in named), tuple(s for _, s in named),
                   frozenset(prunable_names(model)))

    @property
    def numels(self) -> list[int]:
        return [s.numel() for s in self.shapes]

    @property
    def size(self) -> int:
        return sum(self.numels)

    def slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for n, k in zip(self.names, self.numels):
            out[n] = slice(start, start + k)
            start += k
        return out

    def flatten(self, state: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The point W of a state dict (its trainable parameters, in layout order)."""
        return torch.cat([state[n].detach().reshape(-1).float() for n in self.names])

    def unflatten(self, vector: torch.Tensor) -> dict[str, torch.Tensor]:
        """Parameter tensors (views) of a point; a leading batch dimension is kept."""
        lead = vector.shape[:-1]
        return {n: vector[..., s].view(*lead, *shape)
                for (n, s), shape in zip(self.slices().items(), self.shapes)}

    def mask_vector(self, mask: Mask | None, device: torch.device | str = "cpu") -> torch.Tensor:
        """The mask over W as a float vector: 1 where alive and on every non-prunable parameter."""
        parts = []
        for n, shape in zip(self.names, self.shapes):
            if mask is not None and n in mask:
                parts.append(mask[n].reshape(-1).float())
            else:
                parts.append(torch.ones(shape.numel()))
        return torch.cat(parts).to(device)

    def prunable_vector(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """A bool vector over W: True on the prunable coordinates (conv and linear weights)."""
        return torch.cat([torch.full((shape.numel(),), n in self.prunable, dtype=torch.bool)
                          for n, shape in zip(self.names, self.shapes)]).to(device)

    def state_dict(self, vector: torch.Tensor,
                   buffers: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """A loadable state dict: parameters from `vector`, buffers from `buffers`."""
        out = {n: t.clone() for n, t in self.unflatten(vector.detach().cpu()).items()}
        out.update({k: v.clone() for k, v in (buffers or {}).items()})
        return out


def bn_modules(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def has_batchnorm(model: nn.Module) -> bool:
    return bool(bn_modules(model))



# --- P copies of one network as one grouped network ---------------------------------------------

def fused_by_default(device: torch.device) -> bool:
    """Whether P points go through one fused (vmapped) network by default on `device`.

    CUDA: yes, batching is what keeps the GPU busy. CPU: no (FUSED_ON_CPU): on 2 cores a loop
    over the points measured 1.5-2x faster than the fused network (ResNet-20 width 8, 64
    images; mkldnn's grouped convolutions are slower than P plain ones; benchmarks/landscape.py).
    """
    return device.type == "cuda" or FUSED_ON_CPU


FUSED_ON_CPU = False


def map_points(fn: Callable[..., Any], batched: tuple, shared: tuple = (), fused: bool = True) -> Any:
    """fn(*one_point's_args, *shared) for each of P points, outputs stacked along a new dim 0.

    `batched` holds tensors (or dicts and tuples of them) with the P points along dim 0; `shared`
    goes to every point unchanged (the images). `fused`: one torch.func.vmap call, i.e. one
    grouped network for all P points; else a Python loop (same results to rounding).
    """
    if fused:
        return vmap(fn, in_dims=(0,) * len(batched) + (None,) * len(shared))(*batched, *shared)
    count = _leading_size(batched)
    return _tree_stack([fn(*_tree_index(batched, i), *shared) for i in range(count)])


def grouped_call(model: nn.Module, stacked: Mapping[str, Tensor], *args: Any,
                 fused: bool = True) -> Any:
    """The outputs of P copies of `model` on the same inputs, stacked along dim 0.

    `stacked` holds P versions of (some of) the model's parameters and buffers along dim 0
    (`stack_states` makes it from P models); what it lacks comes from `model`. A reusable piece
    for training or evaluating many networks at once; BatchNorm in train mode needs its running
    statistics in `stacked` too (vmap then updates the P copies in place).
    """
    return map_points(lambda state, *a: functional_call(model, state, a), (dict(stacked),), args,
                      fused)


def stack_states(models: Sequence[nn.Module]):
    """Parameters and buffers of several models stacked along a new first dimension."""
    return stack_module_state(list(models))


def _leading_size(tree: Any) -> int:
    if isinstance(tree, Tensor):
        return tree.shape[0]
    items = tree.values() if isinstance(tree, Mapping) else tree
    for item in items:
        if isinstance(item, (Tensor, Mapping, tuple, list)):
            try:
                return _leading_size(item)
            except ValueError:
                continue
    raise ValueError("no tensor with a leading dimension of points")


def _tree_index(tree: Any, i: int) -> Any:
    if isinstance(tree, Tensor):
        return tree[i]
    if isinstance(tree, Mapping):
        return {k: _tree_index(v, i) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(_tree_index(v, i) for v in tree)
    return tree


def _tree_stack(trees: list[Any]) -> Any:
    first = trees[0]
    if isinstance(first, Tensor):
        return torch.stack(trees)
    if isinstance(first, Mapping):
        return {k: _tree_stack([t[k] for t in trees]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_tree_stack(list(parts)) for parts in zip(*trees))
    return first


# --- BatchNorm under our control -----------------------------------------------------------------

class _Stop(Exception):
    """Ends a statistics pass right after the layer whose statistics it was run for."""


class _BatchNormControl:
    """While active, every BatchNorm layer of a model normalizes as the current plan says.

    A layer named in `given` normalizes with those (mean, variance), as eval mode does with its
    buffers; any other layer with the mean and variance of the batch it sees (`correction` 0:
    the biased variance of train mode; 1: unbiased), which it records (mean, M2 = variance x
    count, count) when `record` is set, raising `_Stop` right after when `stop` is set.
    Statistics are taken in fp32 whatever the autocast dtype; a bf16 input is normalized in
    bf16 on accelerators and in fp32 on the CPU (where bf16 elementwise work measured 10x
    slower).
    """

    def __init__(self, model: nn.Module):
        self.layers = {name: m for name, m in model.named_modules()
                       if isinstance(m, nn.modules.batchnorm._BatchNorm)}
        self.depth = 0
        self.plan()

    def plan(self, given: Mapping[str, tuple[Tensor, Tensor]] | None = None, correction: int = 0,
             record: bool = False, stop: bool = False) -> None:
        self.given = dict(given or {})
        self.correction, self.record, self.stop = correction, record, stop
        self.recorded: dict[str, tuple[Tensor, Tensor]] = {}
        self.counts: dict[str, int] = {}

    def __enter__(self) -> "_BatchNormControl":
        if self.depth == 0:
            for name, m in self.layers.items():
                m.forward = partial(self._forward, name, m)
        self.depth += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self.depth -= 1
        if self.depth == 0:
            for m in self.layers.values():
                del m.forward
            self.plan()

    def _forward(self, name: str, m: nn.modules.batchnorm._BatchNorm, x: Tensor) -> Tensor:
        if name in self.given:
            mean, var = self.given[name]
        else:
            var, mean = _channel_var_mean(x.float(), self.correction)
            if self.record:
                count = x.numel() // x.shape[1]
                self.recorded[name] = (mean, var * count)
                self.counts[name] = count
                if self.stop:
                    raise _Stop
        if x.dtype == torch.float32 or x.device.type == "cpu":
            return F.batch_norm(x.float(), mean, var, m.weight, m.bias, False, 0.0, m.eps)
        return _normalize_low_precision(x, mean, var, m)


def _normalize_low_precision(x: Tensor, mean: Tensor, var: Tensor,
                             m: nn.modules.batchnorm._BatchNorm) -> Tensor:
    """Eval-mode BatchNorm of a bf16 input: scale and shift computed in fp32, applied in bf16.

    (F.batch_norm refuses a bf16 input with fp32 statistics under vmap, and upcasting the whole
    activation would triple the memory traffic of the elementwise work the bf16 mode saves.)
    """
    scale = torch.rsqrt(var + m.eps)
    if m.weight is not None:
        scale = scale * m.weight
    shift = -mean * scale
    if m.bias is not None:
        shift = shift + m.bias
    shape = (1, -1, *[1] * (x.dim() - 2))
    return x * scale.to(x.dtype).view(shape) + shift.to(x.dtype).view(shape)


def _channel_var_mean(x: Tensor, correction: int) -> tuple[Tensor, Tensor]:
    """(variance, mean) per channel (dim 1) over every other dim.

    On the CPU two passes (the mean, then the mean square deviation) measured 3-5x faster than
    torch.var_mean's Welford reduction over these strided dims, and are as accurate.
    """
    dims = [0, *range(2, x.dim())]
    if x.device.type != "cpu":
        return torch.var_mean(x, dim=dims, correction=correction)
    mean = x.mean(dim=dims, keepdim=True)
    dev = x - mean
    count = x.numel() // x.shape[1]
    var = (dev * dev).sum(dim=dims) / max(count - correction, 1)
    return var, mean.reshape(-1)


def _merge_moments(acc: dict[str, list], name: str, count: int, mean: Tensor, m2: Tensor) -> None:
    """Chan et al.'s pairwise update: pooled (count, mean, M2) of the chunks seen so far."""
    if name not in acc:
        acc[name] = [count, mean, m2]
        return
    n_a, mean_a, m2_a = acc[name]
    n = n_a + count
    delta = mean - mean_a
    acc[name] = [n, mean_a + delta * (count / n), m2_a + m2 + delta * delta * (n_a * count / n)]


# --- the evaluator -------------------------------------------------------------------------------

_PROBED: dict[tuple, tuple[int, str]] = {}  # points_per_pass "auto", per process and setting
PROBE_BUDGET_S = 5.0  # wall seconds the "auto" speed probe may take (it stops early past this)
PROBE_MAX_POINTS = 256
CPU_POINTS_PER_PASS = 8  # "auto" on the CPU (see _choose_points_per_pass)


class PointEvaluator:
    """Training loss and accuracy of points W (flat vectors) on fixed examples (x, y).

    `model` is only a template (architecture and buffer names); its own weights are never used
    or changed. With `recalibrate_bn`, BatchNorm statistics of every point are recomputed on x.
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
        self._bn = _BatchNormControl(model)

    @property
    def use_vmap(self) -> bool:
        """Whether several points go through one fused network (the old name of `fused`)."""
        return self.fused

    @property
    def points_per_pass(self) -> int:
        """P, the points per pass; "auto" is resolved on first use by `_choose_points_per_pass`."""
        if self._points is None:
            self._points, self.choice = self._choose_points_per_pass()
            if self.verbose:
                print(self.choice, flush=True)
        return self._points

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
        return PointEvaluator(self.model, self.x[idx], self.y[idx], batch_size=self.batch_size,
                              recalibrate_bn=self.recalibrate, points_per_pass=self._points_setting,
                              use_vmap=self.fused, one_pass_bn=self.one_pass_bn, dtype=self.precision,
                              verbose=self.verbose)

    # --- public -----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, points: Tensor, buffers: Sequence[Mapping[str, Tensor]] | None = None
                 ) -> tuple[Tensor, Tensor]:
        """(loss, accuracy) of each row of `points` (N x P, or one P-vector), as float64 on CPU.

        Rows go through the network in blocks of `points_per_pass`. `buffers` (one dict per
        point) are used as they are when given and recalibration is off.
        """
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
        return {n: b[0] for n, b in self._buffers_from(stats, 1).items()}

    # --- blocks of points -----------------------------------------------------------------------
    @contextmanager
    def _passes(self) -> Iterator[None]:
        """No grad, eval mode, BatchNorm under control, the precision asked for: bf16 autocast,
        or fp32 with TF32 allowed only for "tfloat32" (PyTorch lets cuDNN use it by default)."""
        training = self.model.training
        saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        tf32 = self.precision == "tfloat32"
        self.model.eval()
        try:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
            with torch.no_grad(), self._bn, torch.autocast(
                    self.device.type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16):
                yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
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
                given = self._fresh_statistics(k)
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
        except _Stop:
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
                    _merge_moments(acc, name, self._counts[name], mean.double(), m2.double())
            if not acc:  # the remaining layers are never reached: they keep fresh statistics
                break
            for name, (count, mean, m2) in acc.items():
                if count < 2:
                    raise ValueError(f"BatchNorm layer {name!r} sees {count} value per channel on "
                                     f"these examples; its statistics need at least 2")
                final[name] = (mean.float(), (m2 / count).float())
                unbiased[name] = (m2 / (count - 1)).float()
        k = _leading_size(params)
        fresh = self._fresh_statistics(k)
        return {name: (final[name][0], unbiased[name]) if name in final else fresh[name]
                for name in self._bn.layers}

    def _fresh_statistics(self, k: int) -> dict[str, tuple[Tensor, Tensor]]:
        """Statistics of a freshly built layer (mean 0, variance 1) for k points."""
        out = {}
        for name, m in self._bn.layers.items():
            c = m.num_features
            out[name] = (torch.zeros(k, c, device=self.device),
                         torch.ones(k, c, device=self.device))
        return out

    def _buffers_from(self, stats: Mapping[str, tuple[Tensor, Tensor]], k: int
                      ) -> dict[str, Tensor]:
        """Buffers of k points (leading dim k): BatchNorm ones from `stats`, others the model's."""
        out = {n: b.detach().to(self.device).unsqueeze(0).expand(k, *b.shape).clone()
               for n, b in self.model.named_buffers()}
        for name, (mean, var) in stats.items():
            out[f"{name}.running_mean"] = mean.clone()
            out[f"{name}.running_var"] = var.clone()
            if f"{name}.num_batches_tracked" in out:
                out[f"{name}.num_batches_tracked"] = torch.ones_like(
                    out[f"{name}.num_batches_tracked"])
        return out

    def _chunks(self) -> Iterator[tuple[Tensor, Tensor]]:
        for i in range(0, self.x.shape[0], self.batch_size):
            yield self.x[i:i + self.batch_size], self.y[i:i + self.batch_size]

    # --- points_per_pass "auto" ------------------------------------------------------------------
    def _choose_points_per_pass(self, probe: bool | None = None) -> tuple[int, str]:
        """P from memory and, on CUDA (or with `probe`), a short speed probe: (P, why).

        Probe: blocks of 1, 2, 4, ... points, as many as memory holds with room to spare, each
        timed once after a warm-up on this evaluator's own examples; doubling stops when a block
        is no longer 10% faster per point than the best so far, or after PROBE_BUDGET_S. The
        fastest per point wins, or the smallest within 5% of it. On the CPU, without a probe,
        P = CPU_POINTS_PER_PASS (block sizes 2 to 16 measured within noise of each other there,
        and a probe would cost more than it saves). Once per process and setting. Without
        fusion (use_vmap off) P = 1: a loop gains nothing from blocks.
        """
        probe = self.device.type == "cuda" if probe is None else probe
        key = (str(self.device), self.layout.size, tuple(self.x.shape), self.batch_size,
               self.one_pass, self.recalibrate, self.precision, self.fused, probe)
        if key in _PROBED:
            return _PROBED[key]
        if not self.fused:
            result = (1, "points_per_pass auto: 1 (points go one by one: fusion is off)")
        else:
            cap, memory_note = self._memory_cap()
            if probe:
                result = self._probe_speed(cap, memory_note)
            else:
                chosen = min(CPU_POINTS_PER_PASS, cap)
                result = (chosen, f"points_per_pass auto: {chosen} ({self.device.type}: fixed "
                                  f"size, no speed probe; {memory_note})")
        _PROBED[key] = result
        return result

    def _probe_speed(self, cap: int, memory_note: str) -> tuple[int, str]:
        center = self.layout.flatten(self.model.state_dict()).to(self.device)
        rates: dict[int, float] = {}
        start, p = time.perf_counter(), 1
        failed = ""
        while p <= min(cap, PROBE_MAX_POINTS):
            block = center.expand(p, -1).contiguous()
            try:
                self._evaluate_block(block, None)  # warm-up: allocator, cuDNN algorithm choice
                rates[p] = p / _timed(self.device, lambda: self._evaluate_block(block, None))
            except Exception as e:
                if not is_allocation_failure(e) or not rates:
                    raise
                failed = f"; {p} points failed to allocate ({_first_line(e)}): stopped at {p // 2}"
                _release(self.device)
                break
            best_before = max((r for q, r in rates.items() if q < p), default=0.0)
            if ((p > 1 and rates[p] < 1.1 * best_before)
                    or time.perf_counter() - start > PROBE_BUDGET_S):
                break
            p *= 2
        best = max(rates.values())
        chosen = min(q for q, r in rates.items() if r >= 0.95 * best)
        table = ", ".join(f"{q}: {r:.3g}" for q, r in rates.items())
        return chosen, (f"points_per_pass auto: {chosen} (points/s by block size {{{table}}} on "
                        f"{self.device.type}, {self.x.shape[0]} examples; {memory_note}{failed})")

    def _memory_cap(self) -> tuple[int, str]:
        """Most points per pass that memory holds with room to spare, and how that was found.

        CUDA: the peak memory of blocks of 1 and 2 points, against half of the memory this task
        may use (`gpu.memory_budget`: the free memory, or the task's share of the card); a block
        of 2 that fails to allocate leaves 1. CPU: four times the largest activation of one
        point, against a quarter of the memory available.
        """
        center = self.layout.flatten(self.model.state_dict()).to(self.device)
        if self.device.type == "cuda":
            peaks = []
            for p in (1, 2):
                torch.cuda.synchronize(self.device)
                torch.cuda.reset_peak_memory_stats(self.device)
                base = torch.cuda.memory_allocated(self.device)
                try:
                    self._evaluate_block(center.expand(p, -1).contiguous(), None)
                except Exception as e:
                    if not is_allocation_failure(e) or p == 1:
                        raise
                    _release(self.device)
                    return 1, f"memory: 2 points failed to allocate ({_first_line(e)}): 1"
                peaks.append(torch.cuda.max_memory_allocated(self.device) - base)
            per_point = max(peaks[1] - peaks[0], 1)
            budget = memory_budget(self.device)
            cap = max(1, int((0.5 * budget - peaks[0]) // per_point))
            return cap, (f"memory: {per_point / 2**20:.0f} MiB per point, room for {cap} in "
                         f"{budget / 2**20:.0f} MiB")
        per_point = 4 * self._largest_activation_bytes()
        available = _available_memory_bytes()
        cap = max(1, int(0.25 * available // per_point))
        return cap, f"memory: ~{per_point / 2**20:.0f} MiB per point, room for {cap}"

    def _largest_activation_bytes(self) -> int:
        """Bytes of the largest output of any layer for one point on one chunk of examples
        (the one-pass mode's chunk holds all of them)."""
        largest = [0]

        def hook(_m, _i, out):
            if isinstance(out, Tensor):
                largest[0] = max(largest[0], out.numel() * out.element_size())

        leaves = [m for m in self.model.modules() if not list(m.children())]
        handles = [m.register_forward_hook(hook) for m in leaves]
        params = self.layout.unflatten(self.layout.flatten(self.model.state_dict())
                                       .to(self.device))
        xb, yb = next(self._chunks())
        try:
            with self._passes():  # one forward over the largest chunk a pass takes
                self._loss(params, {k: (m[0], v[0]) for k, (m, v)
                                    in self._fresh_statistics(1).items()}, xb, yb)
        finally:
            for h in handles:
                h.remove()
        return max(largest[0], 1)


PRECISIONS = ("float32", "tfloat32", "bfloat16")


def _precision(dtype: torch.dtype | str) -> str:
    """The evaluation precision named by `landscape.dtype` (or a torch dtype)."""
    named = {torch.float32: "float32", torch.bfloat16: "bfloat16"}
    out = named.get(dtype, dtype) if isinstance(dtype, torch.dtype) else dtype
    if out not in PRECISIONS:
        raise ValueError(f"landscape.dtype must be one of {', '.join(PRECISIONS)}, not {dtype!r}")
    return out


def _available_memory_bytes() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil comes with jupyter
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _release(device: torch.device) -> None:
    """Give the cached blocks of a failed allocation back (CUDA)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:160]


def _timed(device: torch.device, fn: Callable[[], Any]) -> float:
    """Wall seconds of fn(), the device synchronized on both sides."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0
