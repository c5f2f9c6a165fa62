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
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterator, Literal, Mapping, Protocol, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.linalg import eigh_tridiagonal
from torch import nn
from torch.func import functional_call, grad, jvp
from tqdm.auto import tqdm

from .points import ParamLayout, PointEvaluator
from .pruning import Mask, count_alive, magnitude_prune, masked_state

__all__ = [
    "HessianOperator", "DenseOperator", "LanczosResult", "lanczos_topk", "log_volume",
    "hutchinson_trace", "slq_density", "density_curve", "pyhessian_topk", "pyhessian_trace",
    "pyhessian_density", "HessianPoint", "imp_solution", "imp_projection",
    "imp_reverse_projection", "band_projection", "baseline_solution", "HessianAnalysis",
    "PUBLISHED", "paper_preset", "resolve_hvp_mode", "volume_points", "baseline_levels",
    "volume_tables", "flip_table", "volume_by_k", "choice_points", "choices_tables", "trace_table",
    "PRUNING_CHOICE_FIGURES", "BASELINE_SYMBOLS",
]

HvpMode = Literal["auto", "double_backward", "forward_over_reverse"]
ToleranceMode = Literal["eigenvalue", "largest"]


# --- the operator -------------------------------------------------------------------------------

class Operator(Protocol):
    """What the Lanczos routines need: a symmetric linear map on flat vectors."""

    size: int
    device: torch.device
    dtype: torch.dtype
    mask: torch.Tensor | None
    n_hvp: int

    def __call__(self, v: torch.Tensor) -> torch.Tensor: ...


def resolve_hvp_mode(mode: HvpMode, device: torch.device) -> str:
    """'auto': double backward on the CPU (ResNet-20 width 8, 256 images: 2.0 s against 2.9 s per
    product), forward-over-reverse on CUDA (H100, ResNet-20, 5,000 images: 0.52 s against 3.3 s;
    benchmarks/hessian_topk.py)."""
    if mode != "auto":
        return mode
    return "forward_over_reverse" if torch.device(device).type == "cuda" else "double_backward"


@contextlib.contextmanager
def strict_fp32() -> Iterator[None]:
    """TF32 off for matmuls and convolutions (the Hessian wants fp32 at least), then restored."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


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
    """

    def __init__(self, model: nn.Module, point: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *,
                 buffers: Mapping[str, torch.Tensor] | None = None,
                 mask: torch.Tensor | None = None, batch_size: int = 1000, mode: HvpMode = "auto",
                 dtype: torch.dtype = torch.float32, reuse_graph: bool = False):
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
        self.reuse_graph = reuse_graph and self.mode == "double_backward"
        self.size = self.layout.size
        self.n_hvp = 0
        self._graphs: list[torch.Tensor] | None = None
        self._leaf: torch.Tensor | None = None

    @property
    def dim(self) -> int:
        """Dimension of the subspace (alive coordinates)."""
        return self.size if self.mask is None else int(self.mask.sum())

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        """One Hessian-vector product in the subspace (counted in `n_hvp`)."""
        self.n_hvp += 1
        v = v.to(self.device, self.dtype)
        if self.mask is not None:
            v = v * self.mask
        with strict_fp32(), _eval_mode(self.model):
            hv = (self._hvp_reused(v) if self.reuse_graph else
                  self._hvp_double_backward(v) if self.mode == "double_backward" else
                  self._hvp_forward_over_reverse(v))
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

    def _hvp_reused(self, v: torch.Tensor) -> torch.Tensor:
        if self._graphs is None:
            self._leaf = self.point.detach().requires_grad_()
            self._graphs = [torch.autograd.grad(self._loss(self._leaf, xb, yb), self._leaf,
                                                create_graph=True)[0] for xb, yb in self._chunks()]
        out = torch.zeros_like(self.point)
        for g in self._graphs:
            out += torch.autograd.grad(g, self._leaf, v, retain_graph=True)[0]
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

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        self.n_hvp += 1
        v = v.to(self.device, self.dtype)
        if self.mask is None:
            return self.matrix @ v
        return self.mask * (self.matrix @ (self.mask * v))


# --- Lanczos ------------------------------------------------------------------------------------

class _Basis:
    """Orthonormal Lanczos vectors, stored in blocks on one device; projections in blocks."""

    BLOCK = 32

    def __init__(self, size: int, device: torch.device, dtype: torch.dtype):
        self.size, self.device, self.dtype = size, device, dtype
        self.blocks: list[torch.Tensor] = []
        self.count = 0

    def append(self, v: torch.Tensor) -> None:
        if self.count % self.BLOCK == 0:
            self.blocks.append(torch.empty(self.BLOCK, self.size, device=self.device,
                                           dtype=self.dtype))
        self.blocks[-1][self.count % self.BLOCK] = v.to(self.device, self.dtype)
        self.count += 1

    def _rows(self) -> Iterator[torch.Tensor]:
        for i, block in enumerate(self.blocks):
            yield block[:min(self.BLOCK, self.count - i * self.BLOCK)]

    def orthogonalize(self, w: torch.Tensor, passes: int = 2) -> torch.Tensor:
        """w minus its projection on the basis (classical Gram-Schmidt, twice is enough)."""
        home = w.device
        w = w.to(self.device, self.dtype)
        for _ in range(passes):
            for rows in self._rows():
                w = w - rows.T @ (rows @ w)
        return w.to(home)

    def combine(self, coefficients: torch.Tensor) -> torch.Tensor:
        """Basis^T @ coefficients (count x n): Ritz vectors, as (n x size) on the CPU."""
        c = coefficients.to(self.device, self.dtype)
        out = torch.zeros(c.shape[1], self.size, device=self.device, dtype=self.dtype)
        start = 0
        for rows in self._rows():
            out += c[start:start + rows.shape[0]].T @ rows
            start += rows.shape[0]
        return out.cpu()


def _basis_device(op: Operator, iterations: int, choice: str) -> torch.device:
    """Where the basis lives: 'auto' keeps it on the operator's device when it takes at most half
    of the free memory there, else on the CPU (VGG-16: 15M parameters x 600 vectors = 36 GB)."""
    if choice == "cpu" or op.device.type != "cuda":
        return torch.device("cpu") if choice == "cpu" else op.device
    if choice == "device":
        return op.device
    need = (iterations + 1) * op.size * torch.finfo(op.dtype).bits // 8
    free, _ = torch.cuda.mem_get_info(op.device)
    return op.device if need <= free // 2 else torch.device("cpu")


def _start_vector(op: Operator, seed: int, kind: str = "normal") -> torch.Tensor:
    """A seeded unit vector in the operator's subspace (normal or Rademacher entries)."""
    g = torch.Generator().manual_seed(seed)
    if kind == "rademacher":
        v = torch.randint(0, 2, (op.size,), generator=g).to(op.dtype).mul_(2).sub_(1)
    else:
        v = torch.randn(op.size, generator=g, dtype=op.dtype)
    v = v.to(op.device)
    if op.mask is not None:
        v = v * op.mask
    return v / v.norm()


@dataclass
class LanczosResult:
    """Top-k eigenvalues (descending) of a symmetric operator, and what it took."""

    eigenvalues: torch.Tensor       # float64, descending; fewer than k if the space is smaller
    residuals: torch.Tensor         # ‖Hv − θv‖ of each pair (the Lanczos bound |β s|)
    n_hvp: int
    iterations: int
    converged: bool
    basis_device: str
    seconds: float
    tol: float
    relative_to: str                # what tol is relative to: "eigenvalue" or "largest"
    scale: float                    # max |θ| over all Ritz values at the stop
    dim: int
    vectors: torch.Tensor | None = None  # Ritz vectors (k x size), when asked for

    @property
    def max_residual(self) -> float:
        return float(self.residuals.max()) if self.residuals.numel() else 0.0

    @property
    def relative_residual(self) -> float:
        """The largest residual relative to what it is measured against: what `tol` bounds."""
        if not self.residuals.numel():
            return 0.0
        return float(_residual_ratios(self.eigenvalues.numpy(), self.residuals.numpy(),
                                      self.scale, self.relative_to).max())

    def to_dict(self) -> dict:
        """Plain tensors, numbers and strings (loads with weights_only=True)."""
        return {"eigenvalues": self.eigenvalues, "residuals": self.residuals,
                "n_hvp": self.n_hvp, "iterations": self.iterations, "converged": self.converged,
                "basis_device": self.basis_device, "seconds": self.seconds, "tol": self.tol,
                "relative_to": self.relative_to, "dim": self.dim, "max_residual": self.max_residual,
                "relative_residual": self.relative_residual}


def _tridiagonal_top(alphas: list[float], betas: list[float], k: int
                     ) -> tuple[np.ndarray, np.ndarray, float]:
    """Top-k Ritz values (descending), the last row of their eigenvectors, and max |θ|."""
    d, e = np.asarray(alphas), np.asarray(betas[:len(alphas) - 1])
    m = len(d)
    if m == 1:
        return d.copy(), np.ones(1), abs(d[0])
    theta, s = eigh_tridiagonal(d, e, select="i", select_range=(m - k, m - 1))
    ends = eigh_tridiagonal(d, e, eigvals_only=True, select="i", select_range=(0, 0))
    scale = max(abs(theta[-1]), abs(ends[0]))
    return theta[::-1].copy(), s[-1, ::-1].copy(), scale


def _tridiagonal_vectors(alphas: list[float], betas: list[float], k: int) -> np.ndarray:
    d, e = np.asarray(alphas), np.asarray(betas[:len(alphas) - 1])
    m = len(d)
    if m == 1:
        return np.ones((1, 1))
    _, s = eigh_tridiagonal(d, e, select="i", select_range=(m - k, m - 1))
    return s[:, ::-1].copy()


def _breakdown(dtype: torch.dtype) -> float:
    """β below this times ‖T‖ means an invariant subspace: reorthogonalized rounding noise."""
    return 1e-5 if dtype == torch.float32 else 1e-12


def _residual_ratios(theta: np.ndarray, residuals: np.ndarray, scale: float,
                     relative_to: str) -> np.ndarray:
    """Residuals over what they are measured against: |θ_i| for positive pairs ('eigenvalue'),
    max|θ| for the others and for every pair with 'largest'."""
    ref = np.full_like(theta, max(scale, 1e-300))
    if relative_to == "eigenvalue":
        ref = np.where(theta > 0, np.maximum(theta, 1e-300), ref)
    return residuals / ref


def lanczos_topk(op: Operator, k: int, *, max_iterations: int = 600, tol: float = 1e-3,
                 relative_to: ToleranceMode = "eigenvalue", seed: int = 0,
                 basis_device: str = "auto", return_vectors: bool = False,
                 progress: bool = False, desc: str = "Lanczos") -> LanczosResult:
    """The k largest eigenvalues of `op` in its subspace, by Lanczos with full reorthogonalization.

    Stops when every wanted residual |β_j s_{j,i}| = ‖Hv_i − θ_i v_i‖ is at most tol·|θ_i| (the
    positive pairs with relative_to='eigenvalue': each eigenvalue that enters V'(k) to relative
    accuracy tol) or tol·max|θ| (the other pairs; every pair with 'largest'), when the Krylov space
    fills the subspace (then the values are exact), or after `max_iterations` products. On a
    breakdown (an invariant subspace found early) it goes on from a fresh vector orthogonal to the
    basis, so repeated eigenvalues are found too.
    """
    t0 = time.perf_counter()
    dim = op.size if op.mask is None else int(op.mask.sum())
    k = min(k, dim)
    iterations = min(max_iterations, dim)
    n0 = op.n_hvp
    where = _basis_device(op, iterations, basis_device)
    basis = _Basis(op.size, where, op.dtype)
    q = _start_vector(op, seed)
    basis.append(q)
    q_prev, beta_prev = torch.zeros_like(q), 0.0
    alphas: list[float] = []
    betas: list[float] = []
    theta, last, scale = np.zeros(0), np.zeros(0), 1.0
    converged = False
    bar = tqdm(total=iterations, desc=desc, leave=False, disable=not progress, mininterval=1.0)
    for j in range(iterations):
        w = op(q)
        alpha = float(torch.dot(w, q))
        w = w - alpha * q - beta_prev * q_prev
        w = basis.orthogonalize(w)
        if op.mask is not None:
            w = w * op.mask
        beta = float(w.norm())
        alphas.append(alpha)
        betas.append(beta)
        bar.update(1)
        if j + 1 >= k:
            theta, last, scale = _tridiagonal_top(alphas, betas, k)
            worst = float(np.max(_residual_ratios(theta, np.abs(beta * last), scale,
                                                  relative_to)))
            bar.set_postfix(residual=f"{worst:.1e}")
            if worst <= tol or j + 1 == dim:
                converged = True
                break
        if j + 1 == iterations:
            break
        if beta <= _breakdown(op.dtype) * max(max(abs(a) for a in alphas), max(betas), 1e-300):
            w = basis.orthogonalize(_start_vector(op, seed + j + 1))  # breakdown: restart
            w = w if op.mask is None else w * op.mask
            betas[-1], beta = 0.0, 0.0
            q_prev, beta_prev, q = q, 0.0, w / w.norm()
        else:
            q_prev, beta_prev, q = q, beta, w / beta
        basis.append(q)
    bar.close()
    m = len(alphas)
    if m < k:  # stopped before k iterations (max_iterations < k): report what there is
        k = m
        theta, last, scale = _tridiagonal_top(alphas, betas, k)
    residuals = torch.as_tensor(np.abs(betas[-1] * last[:k]), dtype=torch.float64)
    vectors = None
    if return_vectors:
        s = torch.as_tensor(_tridiagonal_vectors(alphas, betas, k))
        vectors = basis.combine(s)
    return LanczosResult(eigenvalues=torch.as_tensor(theta[:k], dtype=torch.float64),
                         residuals=residuals, n_hvp=op.n_hvp - n0, iterations=m,
                         converged=converged, basis_device=str(where),
                         seconds=time.perf_counter() - t0, tol=tol, relative_to=relative_to,
                         scale=float(scale), dim=dim, vectors=vectors)


def log_volume(eigenvalues: torch.Tensor | Sequence[float], k: int | None = None) -> float:
    """V'(k) = Σ log λ_i over the positive values among the top k (all given when k is None)."""
    lam = torch.as_tensor(eigenvalues, dtype=torch.float64).sort(descending=True).values
    lam = lam[:k] if k is not None else lam
    return float(torch.log(lam[lam > 0]).sum())


# --- trace and density (pyhessian's algorithms on the masked operator) -----------------------

def hutchinson_trace(op: Operator, samples: int, seed: int = 0, progress: bool = False) -> dict:
    """tr(m ⊙ H ⊙ m) by Hutchinson: the mean of vᵀHv over Rademacher v in the subspace."""
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in tqdm(range(samples), desc="trace", leave=False, disable=not progress):
        v = torch.randint(0, 2, (op.size,), generator=g).to(op.dtype).mul_(2).sub_(1).to(op.device)
        if op.mask is not None:
            v = v * op.mask
        values.append(float(torch.dot(op(v), v)))
    t = torch.tensor(values, dtype=torch.float64)
    err = float(t.std() / math.sqrt(samples)) if samples > 1 else math.nan
    return {"trace": float(t.mean()), "std_error": err, "samples": t, "n_hvp": samples}


def slq_density(op: Operator, iterations: int, runs: int = 1, seed: int = 0,
                progress: bool = False) -> dict:
    """Stochastic Lanczos quadrature: per run, the Ritz values of `iterations` Lanczos steps from
    a Rademacher vector in the subspace (nodes) and their squared first components (weights)."""
    nodes, weights = [], []
    for r in range(runs):
        q = _start_vector(op, seed + r, kind="rademacher")
        basis = _Basis(op.size, op.device, op.dtype)
        basis.append(q)
        q_prev, beta_prev = torch.zeros_like(q), 0.0
        alphas, betas = [], []
        steps = min(iterations, op.size if op.mask is None else int(op.mask.sum()))
        for j in tqdm(range(steps), desc=f"SLQ run {r + 1}", leave=False, disable=not progress):
            w = op(q)
            alpha = float(torch.dot(w, q))
            w = basis.orthogonalize(w - alpha * q - beta_prev * q_prev)
            if op.mask is not None:
                w = w * op.mask
            beta = float(w.norm())
            alphas.append(alpha)
            if j + 1 == steps or beta <= _breakdown(op.dtype) * max(max(map(abs, alphas)), beta):
                break  # an invariant subspace: the quadrature is exact
            betas.append(beta)
            q_prev, beta_prev, q = q, beta, w / beta
            basis.append(q)
        theta, s = (np.linalg.eigh(np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)))
        pad = iterations - len(theta)
        nodes.append(np.pad(theta, (0, pad), constant_values=np.nan))
        weights.append(np.pad(s[0] ** 2, (0, pad)))
    return {"nodes": torch.as_tensor(np.stack(nodes)), "weights": torch.as_tensor(np.stack(weights)),
            "n_hvp": sum(int(np.isfinite(n).sum()) for n in nodes)}


def density_curve(nodes: torch.Tensor, weights: torch.Tensor, grid: torch.Tensor | None = None,
                  sigma: float | None = None, points: int = 400) -> tuple[torch.Tensor, torch.Tensor]:
    """Spectral density on a grid: SLQ nodes broadened by Gaussians, averaged over runs."""
    nodes = torch.as_tensor(nodes, dtype=torch.float64)
    weights = torch.as_tensor(weights, dtype=torch.float64)
    ok = torch.isfinite(nodes)
    lo, hi = float(nodes[ok].min()), float(nodes[ok].max())
    span = max(hi - lo, 1e-12)
    sigma = sigma if sigma is not None else 0.01 * span
    if grid is None:
        grid = torch.linspace(lo - 0.05 * span, hi + 0.05 * span, points, dtype=torch.float64)
    n = torch.where(ok, nodes, torch.zeros_like(nodes))
    w = torch.where(ok, weights, torch.zeros_like(weights))
    kernel = torch.exp(-(grid[None, None, :] - n[..., None]) ** 2 / (2 * sigma ** 2))
    density = (w[..., None] * kernel).sum(1).mean(0) / (sigma * math.sqrt(2 * math.pi))
    return grid, density


# --- pyhessian, wrapped -------------------------------------------------------------------------

@contextlib.contextmanager
def _torch_eig_shim() -> Iterator[None]:
    """pyhessian 0.1's density() calls torch.eig (removed); lend it one built on eigh, then remove
    it (torch keeps a stub that raises). Its use, a_[:, 0] (eigenvalues) and b_[0, :]**2 (squared
    first components, the quadrature weights), holds for eigh's column eigenvectors."""
    missing = object()
    saved = getattr(torch, "eig", missing)

    def eig(matrix: torch.Tensor, eigenvectors: bool = False):
        values, vectors = torch.linalg.eigh(matrix)
        return torch.stack([values, torch.zeros_like(values)], 1), vectors

    torch.eig = eig  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if saved is missing:
            del torch.eig  # type: ignore[attr-defined]
        else:
            torch.eig = saved  # type: ignore[attr-defined]


@contextlib.contextmanager
def _pyhessian(model: nn.Module, point: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
               buffers: Mapping[str, torch.Tensor] | None, batch_size: int, seed: int):
    """A pyhessian.hessian over a copy of `model` set to (point, buffers), the data in chunks,
    counting its products; seeded, on x's device, fp32 without TF32."""
    from pyhessian import hessian as PyHessian  # pyhessian 0.1

    class Counted(PyHessian):
        n_hvp = 0

        def dataloader_hv_product(self, v):
            self.n_hvp += 1
            return super().dataloader_hv_product(v)

    net = copy.deepcopy(model).to(x.device)
    layout = ParamLayout.from_model(net)
    state = layout.state_dict(point.float(), buffers if buffers is not None else
                              {n: b for n, b in net.named_buffers()})
    net.load_state_dict(state)
    net.to(x.device)
    chunks = [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), strict_fp32(), _torch_eig_shim(), \
            warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using backward.. with create_graph=True")
        torch.manual_seed(seed)
        h = Counted(net, nn.CrossEntropyLoss(), dataloader=chunks, cuda=x.device.type == "cuda")
        yield h
    net.zero_grad(set_to_none=True)


def pyhessian_topk(model: nn.Module, point: torch.Tensor, x: torch.Tensor, y: torch.Tensor, k: int,
                   *, buffers: Mapping[str, torch.Tensor] | None = None, batch_size: int = 1000,
                   seed: int = 0, max_iter: int = 100, tol: float = 1e-3) -> dict:
    """pyhessian's eigenvalues(top_n=k): power iteration with deflation (largest |λ| first), with
    the products it used in all and per eigenvalue."""
    import pyhessian  # noqa: F401  (its package attribute `hessian` is the class, not the module)

    module = sys.modules["pyhessian.hessian"]
    t0 = time.perf_counter()
    per_value: list[int] = []
    orthonormal = module.orthnormal

    def counted(w, found):  # called once per power step, before its product
        per_value.extend([0] * (len(found) + 1 - len(per_value)))
        per_value[len(found)] += 1
        return orthonormal(w, found)

    module.orthnormal = counted
    try:
        with _pyhessian(model, point, x, y, buffers, batch_size, seed) as h:
            values, _ = h.eigenvalues(maxIter=max_iter, tol=tol, top_n=k)
            n = h.n_hvp
    finally:
        module.orthnormal = orthonormal
    found = torch.tensor(values, dtype=torch.float64)
    return {"eigenvalues": found.sort(descending=True).values, "as_found": found, "n_hvp": n,
            "per_eigenvalue": per_value, "seconds": time.perf_counter() - t0}


def pyhessian_trace(model: nn.Module, point: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *,
                    buffers: Mapping[str, torch.Tensor] | None = None, batch_size: int = 1000,
                    seed: int = 0, max_iter: int = 100, tol: float = 1e-3) -> dict:
    """pyhessian's Hutchinson trace (stops when the running mean settles within tol)."""
    with _pyhessian(model, point, x, y, buffers, batch_size, seed) as h:
        samples = h.trace(maxIter=max_iter, tol=tol)
        n = h.n_hvp
    t = torch.tensor(samples, dtype=torch.float64)
    return {"trace": float(t.mean()), "samples": t, "n_hvp": n}


def pyhessian_density(model: nn.Module, point: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *,
                      buffers: Mapping[str, torch.Tensor] | None = None, batch_size: int = 1000,
                      seed: int = 0, iterations: int = 100, runs: int = 1) -> dict:
    """pyhessian's SLQ density (nodes and weights per run), with torch.eig replaced by eigh."""
    with _pyhessian(model, point, x, y, buffers, batch_size, seed) as h:
        nodes, weights = h.density(iter=iterations, n_v=runs)
        n = h.n_hvp
    return {"nodes": torch.tensor(np.array(nodes), dtype=torch.float64),
            "weights": torch.tensor(np.array(weights), dtype=torch.float64), "n_hvp": n}


# --- points of a run ----------------------------------------------------------------------------

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


def imp_solution(imp, level: int, space_level: int | None = None) -> HessianPoint:
    """W_min(level) in level `space_level` space (default: its own level)."""
    s = level if space_level is None else space_level
    label = rf"$W_{{min({level})}}$" if s == level else rf"$RPr_{{{s}}}(min({level}))$"
    return HessianPoint(f"imp_L{level:02d}_min", f"imp_m{s:02d}", label,
                        lambda: (imp.final(level), imp.mask(s)))


def imp_reverse_projection(imp, level: int) -> HessianPoint:
    """RPr_{L-1}(min(L)): W_min(L) measured in level L-1 space."""
    return imp_solution(imp, level, space_level=level - 1)


def imp_projection(imp, level: int) -> HessianPoint:
    """Pr_L(min(L-1)) = m_L ⊙ W_min(L-1), in level L space."""
    def load():
        mask = imp.mask(level)
        return masked_state(imp.final(level - 1), mask), mask

    return HessianPoint(f"imp_L{level:02d}_proj_from_L{level - 1:02d}", f"imp_m{level:02d}",
                        rf"$Pr_{{{level}}}(min({level - 1}))$", load)


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
                        rf"$Pr^{{band}}_{{{level}}}(min({level - 1}))$", load)


BASELINE_SYMBOLS = {"one_shot": "OS", "fine_tune": "FT", "lr_rewind": "LRR",
                    "random_reinit": "RI", "random_prune": "RP", "random_prune_oneshot": "RP'"}


def baseline_solution(baselines, kind: str, level: int) -> HessianPoint:
    """A comparison solution W_X(L) of notebook 02, in the space of its own mask."""
    sym = BASELINE_SYMBOLS.get(kind, kind)
    return HessianPoint(f"{kind}_L{level:02d}", f"{kind}_m{level:02d}", rf"$W_{{{sym}({level})}}$",
                        lambda: (baselines.final(kind, level), baselines.mask(kind, level)))


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
        return (f"{what}__{point.name}__in_{point.space}__n{self.subset_size}_s{self.seed}"
                f"__{_digest(settings)}")

    def spectrum(self, point: HessianPoint) -> dict:
        """Top-k eigenvalues at a point in its space, with the loss there and Lanczos' report."""
        c = self.cfg
        key = self.key(f"top{c.k}", point, k=c.k, tol=c.tol, relative_to=c.tol_relative_to,
                       max_iterations=c.max_iterations)

        def compute() -> dict:
            op = self.operator(point)
            res = lanczos_topk(op, c.k, max_iterations=c.max_iterations, tol=c.tol,
                               relative_to=c.tol_relative_to, seed=self.seed,
                               basis_device=c.basis_device,
                               progress=self.progress, desc=point.name)
            op.release()
            return {**res.to_dict(), "loss": op.loss(), "hvp_mode": op.mode, "k": c.k,
                    "point": point.name, "space": point.space, "subset_size": self.subset_size}

        return self.ctx.store.cached("hessian", key, compute)

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
        """V'(k) at a point (k: hessian.k)."""
        return log_volume(self.spectrum(point)["eigenvalues"], k or self.cfg.k)

    def eigenvalues(self, *points: HessianPoint) -> dict[str, torch.Tensor]:
        """{label: top-k eigenvalues} of the points, for the comparison figures."""
        return {pt.label: self.spectrum(pt)["eigenvalues"] for pt in points}

    def report(self, points: Sequence[HessianPoint]) -> pd.DataFrame:
        """What each spectrum cost and how well it converged: one row per point (computing the
        missing spectra first, one progress bar over them)."""
        rows = []
        for pt, s in zip(points, self.spectra(points)):
            lam = s["eigenvalues"]
            rows.append({"point": pt.name, "space": pt.space, "dim": s["dim"],
                         "loss": s["loss"], "lambda_max": float(lam[0]),
                         "lambda_k": float(lam[-1]), "positive": int((lam > 0).sum()),
                         f"V'({s['k']})": log_volume(lam, s["k"]), "n_hvp": s["n_hvp"],
                         "max_residual": s["max_residual"],
                         "relative_residual": s["relative_residual"],
                         "converged": s["converged"], "basis": s["basis_device"],
                         "seconds": s["seconds"]})
        return pd.DataFrame(rows).set_index("point")


# --- the paper's tables -------------------------------------------------------------------------

# V'(100) published in the paper, for runs of its recipe. Table I (level L space):
# (Pr_L(min(L-1)), W_min(L)); Table III (level L-1 space): (RPr_{L-1}(min(L)), W_min(L-1)).
PUBLISHED: dict[str, dict[str, dict[int, tuple[float, float]]]] = {
    "resnet20": {
        "table1": {1: (409.242, 407.417), 2: (402.678, 399.680), 3: (400.855, 386.948),
                   4: (392.829, 375.590), 5: (417.984, 372.753), 6: (420.431, 373.472),
                   7: (446.758, 375.401), 8: (432.505, 382.051), 9: (488.004, 394.166),
                   10: (525.621, 408.810)},
        "table3": {1: (418.034, 415.42), 2: (415.826, 407.417), 3: (403.674, 399.68),
                   4: (394.347, 386.948), 5: (391.093, 375.59), 6: (391.471, 372.753),
                   7: (394.086, 373.472), 8: (398.559, 375.401), 9: (411.997, 382.051),
                   10: (427.475, 394.166)},
    },
    "vgg16": {  # Table VI: level L space at L = 1, 6, 11; Table VII: level L-1 space, L = 1, 6, 12
        "table1": {1: (212.779, 203.681), 6: (198.106, 177.233), 11: (414.844, 352.86)},
        "table3": {1: (219.996, 220.915), 6: (201.835, 189.044), 12: (426.294, 352.86)},
    },
}


def paper_preset(params) -> str | None:
    """'resnet20' or 'vgg16' when the run follows that recipe of the paper (CIFAR-10, full width,
    160 epochs, its pruning rate, global ranking, k = 100), so its published V'(100) can stand
    beside ours."""
    from .models import DEFAULT_WIDTH

    arch = params.model.arch
    rate = {"resnet20": 0.2, "vgg16": 0.4}.get(arch)
    if (rate is None or params.data.dataset != "cifar10" or params.hessian.k != 100
            or (params.model.width or DEFAULT_WIDTH[arch]) != DEFAULT_WIDTH[arch]
            or params.imp.prune_fraction != rate or params.imp.scope != "global"
            or params.train.epochs != 160):
        return None
    return arch


def volume_tables(analysis: HessianAnalysis, imp, levels: Sequence[int],
                  k: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table I (level L space: Pr_L(min(L-1)) against W_min(L)) and Table III (level L-1 space:
    RPr_{L-1}(min(L)) against W_min(L-1)), V'(k) per level, with the published values beside
    ours when the run is the paper's recipe."""
    k = k or analysis.cfg.k
    preset = paper_preset(analysis.ctx.params)
    t1, t3 = [], []
    for L in levels:
        pr, mn = analysis.spectrum(imp_projection(imp, L)), analysis.spectrum(imp_solution(imp, L))
        rpr = analysis.spectrum(imp_reverse_projection(imp, L))
        prev = analysis.spectrum(imp_solution(imp, L - 1))
        t1.append(_pair_row(L, "Pr_L(min(L-1))", pr, "W_min(L)", mn, k, preset, "table1"))
        t3.append(_pair_row(L, "RPr_L-1(min(L))", rpr, "W_min(L-1)", prev, k, preset, "table3"))
    return (pd.DataFrame(t1).set_index("level"), pd.DataFrame(t3).set_index("level"))


def _pair_row(level: int, a_name: str, a: dict, b_name: str, b: dict, k: int,
              preset: str | None, table: str) -> dict:
    va, vb = log_volume(a["eigenvalues"], k), log_volume(b["eigenvalues"], k)
    row: dict[str, object] = {"level": level, f"V'({k}) {a_name}": va, f"V'({k}) {b_name}": vb,
                              "difference": va - vb, f"{b_name} has the larger volume": vb < va,
                              f"loss {a_name}": a["loss"], f"loss {b_name}": b["loss"]}
    published = PUBLISHED.get(preset or "", {}).get(table, {}).get(level)
    if preset is not None:
        row[f"paper {a_name}"] = published[0] if published else math.nan
        row[f"paper {b_name}"] = published[1] if published else math.nan
    return row


def flip_table(analysis: HessianAnalysis, imp, levels: Sequence[int],
               k: int | None = None) -> pd.DataFrame:
    """Table V for every level pair (L-1, L): in level L-1 space W_min(L-1) against W_min(L),
    in level L space W_min(L) against W_min(L-1) projected; rows (pair, space, solution)."""
    k = k or analysis.cfg.k
    preset = paper_preset(analysis.ctx.params)
    pub1 = PUBLISHED.get(preset or "", {}).get("table1", {})
    pub3 = PUBLISHED.get(preset or "", {}).get("table3", {})
    rows = []
    for L in levels:
        pair = f"{L - 1}->{L}"
        entries = [
            (f"level {L - 1}", f"W_min({L - 1}) (level {L - 1} solution)",
             imp_solution(imp, L - 1), pub3.get(L, (math.nan, math.nan))[1]),
            (f"level {L - 1}", f"RPr_{L - 1}(min({L})) (level {L} solution)",
             imp_reverse_projection(imp, L), pub3.get(L, (math.nan, math.nan))[0]),
            (f"level {L}", f"W_min({L}) (level {L} solution)",
             imp_solution(imp, L), pub1.get(L, (math.nan, math.nan))[1]),
            (f"level {L}", f"Pr_{L}(min({L - 1})) (level {L - 1} solution)",
             imp_projection(imp, L), pub1.get(L, (math.nan, math.nan))[0]),
        ]
        for space, solution, point, published in entries:
            row = {"pair": pair, "space": space, "solution": solution,
                   f"V'({k})": analysis.volume(point, k)}
            if preset is not None:
                row["paper"] = published
            rows.append(row)
    return pd.DataFrame(rows).set_index(["pair", "space", "solution"])


def volume_by_k(analysis: HessianAnalysis, imp, levels: Sequence[int],
                ks: Sequence[int]) -> pd.DataFrame:
    """Fig 22's data: V'(k) for each k at W_min(L) and Pr_L(min(L-1)), one row per level."""
    rows = []
    for L in levels:
        mn = analysis.spectrum(imp_solution(imp, L))["eigenvalues"]
        pr = analysis.spectrum(imp_projection(imp, L))["eigenvalues"]
        row: dict[str, object] = {"level": L}
        for k in ks:
            row[f"W_min(L) k={k}"] = log_volume(mn, k)
            row[f"Pr_L(min(L-1)) k={k}"] = log_volume(pr, k)
        rows.append(row)
    return pd.DataFrame(rows).set_index("level")


# Notebook 08: figure -> (baseline kind compared with W_min(L), what it shows). Figs 11 and 20
# are the same pair in REPRODUCTION.md (the symbols of Fig 20 were lost in the extraction).
PRUNING_CHOICE_FIGURES: dict[int, tuple[str, str]] = {
    10: ("random_reinit", "random re-initialization W_RI(L)"),
    11: ("one_shot", "one-shot pruning W_OS(L)"),
    18: ("random_prune", "random pruning W_RP(L)"),
    20: ("one_shot", "one-shot pruning W_OS(L), the pair of Fig 19"),
    21: ("fine_tune", "fine-tuning W_FT(L)"),
}


def choice_points(imp, baselines, levels: Sequence[int], kinds: Sequence[str],
                  band_levels: Sequence[int], fraction: float, scope: str = "global"
                  ) -> dict[int, dict[str, HessianPoint]]:
    """Per level, {column name: point}: W_min(L), Pr_L(min(L-1)), the band-pruned projection
    (at `band_levels`) and every baseline kind notebook 02 has finished at that level."""
    have = set(baselines.available())
    out: dict[int, dict[str, HessianPoint]] = {}
    for L in levels:
        points = {"W_min(L)": imp_solution(imp, L), "Pr_L(min(L-1))": imp_projection(imp, L)}
        if L in band_levels:
            points["band Pr_L(min(L-1))"] = band_projection(imp, L, fraction, scope)
        for kind in kinds:
            if (kind, L) in have:
                points[f"W_{BASELINE_SYMBOLS.get(kind, kind)}(L)"] = baseline_solution(
                    baselines, kind, L)
        out[L] = points
    return out


def choices_tables(analysis: HessianAnalysis, points: Mapping[int, Mapping[str, HessianPoint]],
                   k: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """V'(k) and the loss at every point of `choice_points`: one row per level, one column per
    kind of point (NaN where a point is not part of the run)."""
    k = k or analysis.cfg.k
    volumes, losses = [], []
    for L, named in points.items():
        spectra = {name: analysis.spectrum(pt) for name, pt in named.items()}
        volumes.append({"level": L, **{n: log_volume(s["eigenvalues"], k)
                                       for n, s in spectra.items()}})
        losses.append({"level": L, **{n: s["loss"] for n, s in spectra.items()}})
    return (pd.DataFrame(volumes).set_index("level"), pd.DataFrame(losses).set_index("level"))


def trace_table(analysis: HessianAnalysis, points: Mapping[int, HessianPoint]) -> pd.DataFrame:
    """Hutchinson trace (and its standard error) of the masked Hessian per level."""
    rows = []
    for level, point in points.items():
        t = analysis.trace(point)
        rows.append({"level": level, "point": point.name, "dim": t["dim"], "trace": t["trace"],
                     "std_error": t["std_error"], "trace_per_dim": t["trace"] / t["dim"]})
    return pd.DataFrame(rows).set_index("level")
