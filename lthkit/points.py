"""Points in weight space, and the training loss of many of them at once.

A *point* is the vector W of all trainable parameters of a network, flattened in the order of
`model.named_parameters()` (a `ParamLayout`). Masks become vectors over the same coordinates
(1 on every non-prunable parameter), so "level L space" is simply where the mask vector is 1.

`PointEvaluator` is the primitive of every analysis: the loss and accuracy of a batch of points
on the fixed analysis subset. Points that were not trained (projections, interpolations, grid
points, perturbed minima) have no BatchNorm statistics of their own, so by default every point is
evaluated the same way (REPRODUCTION.md): BatchNorm running statistics are recomputed on the
subset (one no-grad pass in train mode, cumulative average over chunks, as `update_bn` does),
then the loss is computed in eval mode. A point's loss is therefore a function of W alone.
Several points can be evaluated together with `torch.func.vmap` (one pass per chunk for all of
them); on the CPU a loop is faster, so vmap is used on CUDA unless asked otherwise.

`one_pass_bn` halves the work when all examples fit in one forward pass: every BatchNorm layer
normalizes with the mean and unbiased variance of its input over all the examples, which is what
eval mode does with statistics recalibrated in one chunk, so statistics and loss come from a
single pass. (It differs from the two-pass result by O(1/n), n = examples x pixels per channel:
in the two-pass recalibration, later layers see activations normalized with the biased
variance of train mode.) `subset` gives an evaluator on fewer examples (Bain's speed-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import types

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .pruning import Mask

__all__ = ["ParamLayout", "PointEvaluator", "has_batchnorm", "bn_modules"]


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


class PointEvaluator:
    """Training loss and accuracy of points W (flat vectors) on fixed examples (x, y).

    `model` is only a template (architecture and buffer names); its own weights are never used
    or changed. With `recalibrate_bn`, BatchNorm statistics of every point are recomputed on x.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000,
                 recalibrate_bn: bool = True, points_per_pass: int = 8, use_vmap: bool | None = None,
                 one_pass_bn: bool = False):
        self.model = model
        self.layout = ParamLayout.from_model(model)
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.recalibrate = recalibrate_bn and has_batchnorm(model)
        self.points_per_pass = points_per_pass
        self.device = x.device
        self.use_vmap = (self.device.type == "cuda") if use_vmap is None else use_vmap
        self.buffer_names = [n for n, _ in model.named_buffers()]
        self.one_pass_bn = one_pass_bn

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
                              recalibrate_bn=self.recalibrate, points_per_pass=self.points_per_pass,
                              use_vmap=self.use_vmap, one_pass_bn=self.one_pass_bn)

    # --- public -----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, points: torch.Tensor,
                 buffers: Sequence[Mapping[str, torch.Tensor]] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, accuracy) of each row of `points` (N x P, or one P-vector), as float64 on CPU.

        `buffers` (one dict per point) are used as they are when given and recalibration is off.
        """
        single = points.dim() == 1
        pts = points.unsqueeze(0) if single else points
        losses, accs = [], []
        step = self.points_per_pass if self.use_vmap else 1
        for i in range(0, pts.shape[0], step):
            chunk = pts[i:i + step].to(self.device, torch.float32)
            own = None if buffers is None else list(buffers[i:i + step])
            if self.one_pass:
                loss, acc = self._evaluate_one_pass(chunk)
            elif self.use_vmap and chunk.shape[0] > 1:
                loss, acc = self._evaluate_vmap(chunk, own)
            else:
                loss, acc = zip(*(self._evaluate_one(p, None if own is None else own[j])
                                  for j, p in enumerate(chunk)))
                loss, acc = torch.stack(loss), torch.stack(acc)
            losses.append(loss.double().cpu())
            accs.append(acc.double().cpu())
        loss, acc = torch.cat(losses), torch.cat(accs)
        return (loss[0], acc[0]) if single else (loss, acc)

    def losses(self, points: torch.Tensor) -> torch.Tensor:
        """Just the losses of `evaluate`."""
        return self.evaluate(points)[0]

    def evaluate_states(self, states: Iterable[Mapping[str, torch.Tensor]]
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, accuracy) of state dicts; their own BatchNorm statistics are used only when
        recalibration is off."""
        states = list(states)
        points = torch.stack([self.layout.flatten(s) for s in states])
        buffers = [{n: s[n] for n in self.buffer_names} for s in states]
        return self.evaluate(points, buffers)

    def point(self, state: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The point of a state dict, on the evaluator's device."""
        return self.layout.flatten(state).to(self.device)

    def recalibrated_buffers(self, point: torch.Tensor) -> dict[str, torch.Tensor]:
        """BatchNorm statistics of one point recomputed on the examples (empty without BN)."""
        params = self.layout.unflatten(point.to(self.device, torch.float32))
        return self._recalibrate(params)

    # --- one point at a time ----------------------------------------------------------------
    def _fresh_buffers(self, lead: tuple[int, ...] = ()) -> dict[str, torch.Tensor]:
        out = {}
        for n, b in self.model.named_buffers():
            if n.endswith("running_var"):
                t = torch.ones((*lead, *b.shape), device=self.device)
            else:
                t = torch.zeros((*lead, *b.shape), device=self.device, dtype=b.dtype)
            out[n] = t
        return out

    def _recalibrate(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        buffers = self._fresh_buffers()
        if not self.recalibrate:
            return buffers
        with _bn_cumulative(self.model) as set_chunk:
            self.model.train()
            for j, (xb, _) in enumerate(self._chunks()):
                set_chunk(j)
                functional_call(self.model, {**params, **buffers}, (xb,))
        self.model.eval()
        return buffers

    def _evaluate_one(self, point: torch.Tensor, own: Mapping[str, torch.Tensor] | None):
        params = self.layout.unflatten(point)
        if own is not None and not self.recalibrate:
            buffers = {n: own[n].to(self.device) for n in self.buffer_names}
        else:
            buffers = self._recalibrate(params)
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        correct = torch.zeros((), device=self.device)
        for xb, yb in self._chunks():
            logits = functional_call(self.model, {**params, **buffers}, (xb,))
            loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
            correct += (logits.argmax(1) == yb).sum()
        n = self.y.shape[0]
        return loss_sum / n, correct / n

    # --- many points at once -----------------------------------------------------------------
    def _evaluate_vmap(self, points: torch.Tensor, own):
        k = points.shape[0]
        params = self.layout.unflatten(points)  # each k x shape
        if own is not None and not self.recalibrate:
            buffers = {n: torch.stack([o[n].to(self.device) for o in own]) for n in self.buffer_names}
        else:
            buffers = self._fresh_buffers((k,))
            if self.recalibrate:
                with _bn_cumulative(self.model) as set_chunk:
                    self.model.train()
                    for j, (xb, _) in enumerate(self._chunks()):
                        set_chunk(j)
                        vmap(lambda p, b: functional_call(self.model, {**p, **b}, (xb,)),
                             in_dims=(0, 0), randomness="same")(params, buffers)
        self.model.eval()
        loss_sum = torch.zeros(k, device=self.device, dtype=torch.float64)
        correct = torch.zeros(k, device=self.device)
        for xb, yb in self._chunks():
            logits = vmap(lambda p, b: functional_call(self.model, {**p, **b}, (xb,)))(params, buffers)
            loss_sum += F.cross_entropy(logits.flatten(0, 1), yb.repeat(k), reduction="none"
                                        ).view(k, -1).sum(1).double()
            correct += (logits.argmax(2) == yb).sum(1)
        n = self.y.shape[0]
        return loss_sum / n, correct / n

    # --- statistics and loss in one pass ------------------------------------------------------
    def _evaluate_one_pass(self, points: torch.Tensor):
        """Loss and accuracy of k points, every BatchNorm normalizing with full-batch statistics."""
        k = points.shape[0]
        params = self.layout.unflatten(points)
        self.model.eval()
        with _full_batch_bn(self.model):
            if self.use_vmap and k > 1:
                logits = vmap(lambda p: functional_call(self.model, p, (self.x,)))(params)
            else:
                logits = torch.stack([functional_call(
                    self.model, {n: t[j] for n, t in params.items()}, (self.x,)) for j in range(k)])
        n = self.y.shape[0]
        loss = F.cross_entropy(logits.flatten(0, 1), self.y.repeat(k), reduction="none")
        loss = loss.view(k, n).double().sum(1) / n
        acc = (logits.argmax(2) == self.y).sum(1).float() / n
        return loss, acc

    def _chunks(self):
        for i in range(0, self.x.shape[0], self.batch_size):
            yield self.x[i:i + self.batch_size], self.y[i:i + self.batch_size]


class _bn_cumulative:
    """Context in which BatchNorm layers average statistics over chunks (momentum 1/(j+1)).

    Equivalent to momentum=None (a cumulative average), but with a plain float, which also works
    under vmap, where momentum=None's `float(num_batches_tracked)` cannot.
    """

    def __init__(self, model: nn.Module):
        self.bns = bn_modules(model)
        self.saved = [m.momentum for m in self.bns]

    def __enter__(self):
        def set_chunk(j: int) -> None:
            for m in self.bns:
                m.momentum = 1.0 / (j + 1)
        return set_chunk

    def __exit__(self, *exc) -> None:
        for m, momentum in zip(self.bns, self.saved):
            m.momentum = momentum


class _full_batch_bn:
    """Context in which BatchNorm layers normalize with the batch mean and unbiased variance.

    That is eval mode with statistics recalibrated on this very batch, in one pass. Running
    statistics are left alone (the layer's buffers are not touched).
    """

    def __init__(self, model: nn.Module):
        self.bns = bn_modules(model)

    def __enter__(self) -> None:
        for m in self.bns:
            m.forward = types.MethodType(_bn_full_batch_forward, m)

    def __exit__(self, *exc) -> None:
        for m in self.bns:
            del m.forward


def _bn_full_batch_forward(self: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    var, mean = torch.var_mean(x, dim=[d for d in range(x.dim()) if d != 1], correction=1)
    return F.batch_norm(x, mean, var, self.weight, self.bias, False, 0.0, self.eps)


def stack_states(models: Sequence[nn.Module]):
    """Parameters and buffers of several models stacked along a new first dimension."""
    return stack_module_state(list(models))
