"""The masked Hessian operator: v ↦ m ⊙ H (m ⊙ v) at a point, by double backward or
forward-over-reverse, summed over chunks of the examples, one vector or a block of vectors at a
time (and a dense matrix as an operator)."""

from __future__ import annotations

import contextlib
from typing import Iterator, Mapping, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, jvp, vmap

from lthkit.nets.checks import HvpMode, resolve_hvp_mode
from lthkit.nets.points import ParamLayout
from lthkit.platform.device import tf32

__all__ = ["Operator", "HvpMode", "resolve_hvp_mode", "strict_fp32", "HessianOperator",
           "DenseOperator"]

class Operator(Protocol):
    """What the Lanczos routines need: a symmetric linear map on flat vectors, one vector
    (`__call__`) or a block of rows (`matmat`), counting products and passes over the data."""

    size: int
    device: torch.device
    dtype: torch.dtype
    mask: torch.Tensor | None
    n_hvp: int
    n_passes: int

    def __call__(self, v: torch.Tensor) -> torch.Tensor: ...

    def matmat(self, vectors: torch.Tensor) -> torch.Tensor: ...


def strict_fp32():
    """TF32 off for matmuls and convolutions (the Hessian wants fp32 at least), then restored."""
    return tf32(False)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


class HessianOperator:
    """v ↦ m ⊙ H (m ⊙ v), H the Hessian of the mean eval-mode loss on (x, y) at `point`.

    `model` is a template (architecture, buffer names); its own weights are never used. `buffers`
    are the BatchNorm statistics the loss is evaluated with (recalibrated ones, normally).
    `mask` is a mask vector over the layout (None: the full space). Products are summed over
    chunks of `batch_size` examples; `reuse_graph` keeps each chunk's first-order graph between
    products (faster, memory grows with the subset; double backward only).

    `matmat` takes a block of b vectors in one pass over the chunks: forward-over-reverse vmaps
    the tangents of one jvp(grad) whose primal pass is shared; double backward builds each
    chunk's first-order graph once and takes the b second backward passes on it, batched
    (`is_grads_batched`, a vmap) or one after another (`batched_backward`; None: batched on CUDA,
    a loop on the CPU). With mode 'auto', blocks take forward-over-reverse on every device: on
    the CPU (ResNet-20 width 2, 64 images, blocks of 8, benchmarks/hessian_topk.py) 1.22 s per
    vector against 1.89 s (is_grads_batched), 2.08 s (loop) and 3.08 s for one double-backward
    product at a time.
    """

    def __init__(self, model: nn.Module, point: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *,
                 buffers: Mapping[str, torch.Tensor] | None = None,
                 mask: torch.Tensor | None = None, batch_size: int = 1000, mode: HvpMode = "auto",
                 dtype: torch.dtype = torch.float32, reuse_graph: bool = False,
                 batched_backward: bool | None = None):
        self.model = model
        self.layout = ParamLayout.from_model(model)
        self.device = x.device
        self.dtype = dtype
        self.point = point.detach().to(self.device, dtype)
        own = dict(model.named_buffers()) if buffers is None else buffers
        self.buffers = {n: b.to(self.device, dtype if b.is_floating_point() else b.dtype)
                        for n, b in own.items()}
        self.mask = None if mask is None else mask.to(self.device, dtype)
        self.x, self.y = x.to(dtype), y
        self.batch_size = batch_size
        self.mode = resolve_hvp_mode(mode, self.device)
        self.block_mode = "forward_over_reverse" if mode == "auto" else self.mode
        self.reuse_graph = reuse_graph and self.mode == "double_backward"
        self.size = self.layout.size
        self.batched_backward = (self.device.type == "cuda" if batched_backward is None
                                 else batched_backward)
        self.n_hvp = 0
        self.n_passes = 0
        self._graphs: list[torch.Tensor] | None = None
        self._leaf: torch.Tensor | None = None

    @property
    def dim(self) -> int:
        """Dimension of the subspace (alive coordinates)."""
        return self.size if self.mask is None else int(self.mask.sum())

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        """One Hessian-vector product in the subspace (counted in `n_hvp`)."""
        self.n_hvp += 1
        self.n_passes += 1
        v = v.to(self.device, self.dtype)
        if self.mask is not None:
            v = v * self.mask
        with strict_fp32(), _eval_mode(self.model):
            hv = (self._hvp_reused(v) if self.reuse_graph else
                  self._hvp_double_backward(v) if self.mode == "double_backward" else
                  self._hvp_forward_over_reverse(v))
        return hv if self.mask is None else hv * self.mask

    def matmat(self, vectors: torch.Tensor) -> torch.Tensor:
        """Products with a block of vectors (rows of b x size) in one pass over the chunks
        (counted as b products in `n_hvp`, one pass in `n_passes`)."""
        v = vectors.to(self.device, self.dtype)
        if v.shape[0] == 1:
            return self(v[0])[None]
        self.n_hvp += v.shape[0]
        self.n_passes += 1
        if self.mask is not None:
            v = v * self.mask
        with strict_fp32(), _eval_mode(self.model):
            hv = (self._block_forward_over_reverse(v) if self.block_mode != "double_backward"
                  else self._block_reused(v) if self.reuse_graph else
                  self._block_double_backward(v))
        return hv if self.mask is None else hv * self.mask

    @torch.no_grad()
    def loss(self) -> float:
        """The mean loss at the point (what the Hessian is the Hessian of)."""
        with strict_fp32(), _eval_mode(self.model):
            return float(sum(self._loss(self.point, xb, yb) for xb, yb in self._chunks()))

    def dense(self) -> torch.Tensor:
        """The full (masked) Hessian by torch.autograd.functional.hessian: small models only."""
        def total(w: torch.Tensor) -> torch.Tensor:
            return sum(self._loss(w, xb, yb) for xb, yb in self._chunks())

        with strict_fp32(), _eval_mode(self.model):
            h = torch.autograd.functional.hessian(total, self.point)
        if self.mask is not None:
            h = h * self.mask[:, None] * self.mask[None, :]
        return h

    def release(self) -> None:
        """Drop the kept graphs (reuse_graph)."""
        self._graphs, self._leaf = None, None

    # --- internals ------------------------------------------------------------------------
    def _loss(self, w: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """This chunk's share of the mean loss: sum over the chunk / size of the subset."""
        logits = functional_call(self.model, {**self.layout.unflatten(w), **self.buffers}, (xb,))
        return F.cross_entropy(logits, yb, reduction="sum") / self.y.shape[0]

    def _chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, self.x.shape[0], self.batch_size):
            yield self.x[i:i + self.batch_size], self.y[i:i + self.batch_size]

    def _hvp_double_backward(self, v: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(self.point)
        for xb, yb in self._chunks():
            w = self.point.detach().requires_grad_()
            (g,) = torch.autograd.grad(self._loss(w, xb, yb), w, create_graph=True)
            (hv,) = torch.autograd.grad(g, w, v)
            out += hv
        return out

    def _kept_graphs(self) -> list[torch.Tensor]:
        """Each chunk's gradient with its graph, built once and kept (reuse_graph)."""
        if self._graphs is None:
            self._leaf = self.point.detach().requires_grad_()
            self._graphs = [torch.autograd.grad(self._loss(self._leaf, xb, yb), self._leaf,
                                                create_graph=True)[0] for xb, yb in self._chunks()]
        return self._graphs

    def _hvp_reused(self, v: torch.Tensor) -> torch.Tensor:
        self._kept_graphs()
        out = torch.zeros_like(self.point)
        for g in self._graphs:
            out += torch.autograd.grad(g, self._leaf, v, retain_graph=True)[0]
        return out

    def _second_backward(self, g: torch.Tensor, w: torch.Tensor, v: torch.Tensor,
                         retain: bool) -> torch.Tensor:
        """The rows of v times the Jacobian of g (the chunk's gradient) on its graph."""
        if self.batched_backward:
            return torch.autograd.grad(g, w, v, retain_graph=retain, is_grads_batched=True)[0]
        last = v.shape[0] - 1
        return torch.stack([torch.autograd.grad(g, w, row, retain_graph=retain or i < last)[0]
                            for i, row in enumerate(v)])

    def _block_double_backward(self, v: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(v)
        for xb, yb in self._chunks():
            w = self.point.detach().requires_grad_()
            (g,) = torch.autograd.grad(self._loss(w, xb, yb), w, create_graph=True)
            out += self._second_backward(g, w, v, retain=False)
        return out

    def _block_reused(self, v: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(v)
        for g in self._kept_graphs():
            out += self._second_backward(g, self._leaf, v, retain=True)
        return out

    def _block_forward_over_reverse(self, v: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(v)
        for xb, yb in self._chunks():
            gradient = grad(lambda w: self._loss(w, xb, yb))
            out += vmap(lambda t: jvp(gradient, (self.point,), (t,))[1])(v).detach()
        return out

    def _hvp_forward_over_reverse(self, v: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(self.point)
        for xb, yb in self._chunks():
            _, hv = jvp(grad(lambda w: self._loss(w, xb, yb)), (self.point,), (v,))
            out += hv.detach()
        return out


class DenseOperator:
    """A symmetric matrix as an operator (tests, and checking the Lanczos routines)."""

    def __init__(self, matrix: torch.Tensor, mask: torch.Tensor | None = None):
        self.matrix = matrix
        self.size = matrix.shape[0]
        self.device = matrix.device
        self.dtype = matrix.dtype
        self.mask = None if mask is None else mask.to(matrix.device, matrix.dtype)
        self.n_hvp = 0
        self.n_passes = 0

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        return self.matmat(v[None])[0]

    def matmat(self, vectors: torch.Tensor) -> torch.Tensor:
        self.n_hvp += vectors.shape[0]
        self.n_passes += 1
        v = vectors.to(self.device, self.dtype)
        if self.mask is None:
            return v @ self.matrix
        return self.mask * ((self.mask * v) @ self.matrix)
