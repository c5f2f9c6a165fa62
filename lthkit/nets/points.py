"""Points in weight space, and the training loss of many of them at once.

A *point* is the vector W of all trainable parameters of a network, flattened in the order of
`model.named_parameters()` (a `ParamLayout`). Masks become vectors over the same coordinates
(1 on every non-prunable parameter), so "level L space" is simply where the mask vector is 1.

`PointEvaluator` (lthkit.nets.evaluator) is the primitive of every analysis: the loss and accuracy
of a batch of points on the fixed analysis subset. Points that were not trained (projections,
interpolations, grid points, perturbed minima) have no BatchNorm statistics of their own, so by
default every point is evaluated the same way (REPRODUCTION.md): BatchNorm statistics are recomputed
on the subset, then the loss is computed in eval mode. The statistics are exactly those that
`torch.optim.swa_utils.update_bn` gives with the whole subset as one batch, whatever `batch_size` is
(`PointEvaluator.recalibrated_buffers` says how), so a point's loss is a function of W and the
subset alone.

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

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from lthkit.nets.pruning import Mask

__all__ = ["ParamLayout", "has_batchnorm", "bn_modules", "map_points", "grouped_call",
           "stack_states", "fused_by_default", "leading_size"]


@dataclass(frozen=True)
class ParamLayout:
    """Names, shapes and offsets of a model's trainable parameters: the coordinates of W."""

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]
    prunable: frozenset[str]

    @classmethod
    def from_model(cls, model: nn.Module) -> "ParamLayout":
        from lthkit.nets.models import prunable_names

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
    count = leading_size(batched)
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


def leading_size(tree: Any) -> int:
    if isinstance(tree, Tensor):
        return tree.shape[0]
    items = tree.values() if isinstance(tree, Mapping) else tree
    for item in items:
        if isinstance(item, (Tensor, Mapping, tuple, list)):
            try:
                return leading_size(item)
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


