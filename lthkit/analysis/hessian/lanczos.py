"""Krylov methods on a masked operator: the top-k eigenvalues by Lanczos with full
reorthogonalization and residual stopping (one vector at a time, or in blocks of b vectors whose
products share one pass over the data), scipy's eigsh (ARPACK) on the same operator, V'(k),
Hutchinson's trace and the spectral density by stochastic Lanczos quadrature (pyhessian's
algorithms, on the masked operator).

Every method works in the operator's subspace: vectors hold only the alive coordinates (a mask
with 1% of 4M coordinates alive keeps a 100-vector basis at 15 MiB instead of 1.5 GiB); the
operator sees them scattered into full-length vectors one block at a time.

What a result may claim: residuals are the Lanczos bounds ‖Hv − θv‖, and no bound below
`dtype_floor(dtype) · max|θ|` (100 units of rounding: 1.2e-5 in fp32, 2.2e-14 in fp64) is
trusted, because each product carries rounding errors of that order (measured in fp32 on a
ResNet-20: a 1e-12 bound after 13 products whose true residual was 3e-6). A tolerance finer than
the floor is refused; a pair whose own tolerance falls below it is reported as limited by the
dtype, not as converged.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Iterator, Literal, Sequence

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal

from lthkit.analysis.hessian.operator import Operator
from lthkit.platform.device import memory_budget
from lthkit.platform.progress import tqdm

__all__ = ["LanczosResult", "lanczos_topk", "block_lanczos_topk", "eigsh_topk", "topk",
           "resolve_method", "log_volume", "volume_count", "volume_bound", "VolumeWarning", "dtype_floor",
           "Subspace", "hutchinson_trace", "slq_density", "density_curve", "ToleranceMode",
           "Method", "DEFAULT_POSITIVE_THRESHOLD"]

ToleranceMode = Literal["eigenvalue", "largest"]
Method = Literal["auto", "lanczos", "block_lanczos", "eigsh"]

# Eigenvalues at most this times lambda_max count as zero in V'(k) (hessian.positive_threshold).
DEFAULT_POSITIVE_THRESHOLD = 1e-3


def dtype_floor(dtype: torch.dtype) -> float:
    """The smallest residual, relative to max|θ|, that products in `dtype` can certify: 100 units
    of rounding (fp32 1.2e-5, fp64 2.2e-14)."""
    return 100 * torch.finfo(dtype).eps


def resolve_method(method: Method, device: torch.device | str) -> str:
    """'auto': block Lanczos on the CPU, where its products cost 0.41x per vector (blocks of 8 by
    forward-over-reverse vmap) and it used 0.63x the CPU seconds of single-vector Lanczos at
    k = 100 and the same (0.97x) at k = 20 (benchmarks/hessian_topk.py, ResNet-20 width 2, 64
    images, one thread on a shared machine); single-vector Lanczos on CUDA, where blocks have not
    been measured yet."""
    if method != "auto":
        return method
    return "lanczos" if torch.device(device).type == "cuda" else "block_lanczos"


class Subspace:
    """An operator seen in its alive coordinates only: vectors of length `dim`, scattered into
    full-length vectors for the products and gathered back."""

    def __init__(self, op: Operator):
        self.op = op
        self.device, self.dtype = op.device, op.dtype
        self.index = None if op.mask is None else op.mask.nonzero().squeeze(1)
        self.dim = op.size if self.index is None else int(self.index.numel())

    def expand(self, v: torch.Tensor) -> torch.Tensor:
        """(..., dim) -> (..., size), zeros on the pruned coordinates."""
        if self.index is None:
            return v
        out = torch.zeros(*v.shape[:-1], self.op.size, device=v.device, dtype=v.dtype)
        out[..., self.index.to(v.device)] = v
        return out

    def restrict(self, v: torch.Tensor) -> torch.Tensor:
        """(..., size) -> (..., dim): the alive coordinates."""
        return v if self.index is None else v[..., self.index.to(v.device)]

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        return self.restrict(self.op(self.expand(v.to(self.device, self.dtype))))

    def matmat(self, rows: torch.Tensor) -> torch.Tensor:
        """Products with a block of rows (b x dim), one pass over the data."""
        full = self.expand(rows.to(self.device, self.dtype))
        if hasattr(self.op, "matmat"):
            return self.restrict(self.op.matmat(full))
        return self.restrict(torch.stack([self.op(v) for v in full]))


class _Basis:
    """Orthonormal rows of length `dim` (alive coordinates only), stored in blocks of 32 rows on
    one device; projections one block at a time."""

    BLOCK = 32

    def __init__(self, size: int, device: torch.device, dtype: torch.dtype):
        self.size, self.device, self.dtype = size, device, dtype
        self.blocks: list[torch.Tensor] = []
        self.count = 0

    @property
    def numel(self) -> int:
        """Elements held (what the basis costs in memory)."""
        return sum(b.numel() for b in self.blocks)

    def append(self, v: torch.Tensor) -> None:
        """Add one row, or the rows of a (b x dim) block."""
        for row in (v[None] if v.dim() == 1 else v):
            if self.count % self.BLOCK == 0:
                self.blocks.append(torch.empty(self.BLOCK, self.size, device=self.device,
                                               dtype=self.dtype))
            self.blocks[-1][self.count % self.BLOCK] = row.to(self.device, self.dtype)
            self.count += 1

    def _rows(self) -> Iterator[torch.Tensor]:
        for i, block in enumerate(self.blocks):
            yield block[:min(self.BLOCK, self.count - i * self.BLOCK)]

    def orthogonalize(self, w: torch.Tensor, passes: int = 2) -> torch.Tensor:
        """w minus its projection on the basis (classical Gram-Schmidt, twice is enough)."""
        return self.project_out(w, passes)[0]

    def project_out(self, w: torch.Tensor, passes: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        """(w minus its projection on the basis, the coefficients basis @ wᵀ summed over the
        passes (count x b, float64)) for a vector or the rows of a block."""
        home, single = w.device, w.dim() == 1
        w = (w[None] if single else w).to(self.device, self.dtype)
        coefficients = torch.zeros(self.count, w.shape[0], dtype=torch.float64)
        for _ in range(passes):
            start = 0
            for rows in self._rows():
                c = rows @ w.T
                w = w - c.T @ rows
                coefficients[start:start + rows.shape[0]] += c.double().cpu()
                start += rows.shape[0]
        w = w.to(home)
        return (w[0] if single else w), coefficients

    def combine(self, coefficients: torch.Tensor) -> torch.Tensor:
        """Basis^T @ coefficients (count x n): Ritz vectors, as (n x dim) on the CPU."""
        c = coefficients.to(self.device, self.dtype)
        out = torch.zeros(c.shape[1], self.size, device=self.device, dtype=self.dtype)
        start = 0
        for rows in self._rows():
            out += c[start:start + rows.shape[0]].T @ rows
            start += rows.shape[0]
        return out.cpu()


def _basis_device(sub: Subspace, iterations: int, choice: str) -> torch.device:
    """Where the basis lives: 'auto' keeps it on the operator's device when it takes at most half
    of the memory this task may use there (`gpu.memory_budget`: the free memory, or the task's
    share of the card), else on the CPU (VGG-16: 15M parameters x 600 vectors = 36 GB)."""
    if choice == "cpu" or sub.device.type != "cuda":
        return torch.device("cpu") if choice == "cpu" else sub.device
    if choice == "device":
        return sub.device
    need = (iterations + 1) * sub.dim * torch.finfo(sub.dtype).bits // 8
    return sub.device if need <= memory_budget(sub.device) // 2 else torch.device("cpu")


def _start_vector(op: Operator, seed: int, kind: str = "normal") -> torch.Tensor:
    """A seeded unit vector in the operator's subspace (normal or Rademacher entries), full
    length (zeros on the pruned coordinates)."""
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
    status: str = "converged"       # converged | exhausted | dtype_limited | budget
    floor: float = 0.0              # dtype_floor: residuals below floor·scale are not trusted
    positive_threshold: float = 0.0  # pairs above threshold·scale are measured against themselves
    method: str = "lanczos"
    block_size: int = 1
    n_blocks: int = 0               # products taken as blocks (one call of the operator each)
    n_passes: int = 0               # passes over the data (one per block)
    basis_numel: int = 0            # elements held by the Krylov basis (alive coordinates only)

    @property
    def max_residual(self) -> float:
        return float(self.residuals.max()) if self.residuals.numel() else 0.0

    @property
    def relative_residual(self) -> float:
        """The largest residual relative to what it is measured against: what `tol` bounds (never
        below what the dtype can certify)."""
        if not self.residuals.numel():
            return 0.0
        theta, res = self.eigenvalues.numpy(), self.residuals.numpy()
        ratios = _residual_ratios(theta, np.maximum(res, self.floor * self.scale), self.scale,
                                  self.relative_to, self.positive_threshold)
        return float(ratios.max())

    def to_dict(self) -> dict:
        """Plain tensors, numbers and strings (loads with weights_only=True)."""
        return {"eigenvalues": self.eigenvalues, "residuals": self.residuals,
                "n_hvp": self.n_hvp, "iterations": self.iterations, "converged": self.converged,
                "status": self.status, "basis_device": self.basis_device,
                "seconds": self.seconds, "tol": self.tol, "relative_to": self.relative_to,
                "scale": self.scale, "floor": self.floor,
                "positive_threshold": self.positive_threshold, "dim": self.dim,
                "max_residual": self.max_residual, "relative_residual": self.relative_residual,
                "method": self.method, "block_size": self.block_size, "n_blocks": self.n_blocks,
                "n_passes": self.n_passes, "basis_numel": self.basis_numel}


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
                     relative_to: str, threshold: float = 0.0) -> np.ndarray:
    """Residuals over what they are measured against: |θ_i| for the pairs above
    threshold·max|θ| ('eigenvalue': the values V'(k) sums the logs of), max|θ| for the others
    and for every pair with 'largest'."""
    top = max(scale, 1e-300)
    ref = np.full_like(theta, top)
    if relative_to == "eigenvalue":
        ref = np.where(theta > threshold * top, np.maximum(theta, 1e-300), ref)
    return residuals / ref


def _check_tolerance(tol: float, dtype: torch.dtype) -> None:
    floor = dtype_floor(dtype)
    if tol < floor:
        name = str(dtype).removeprefix("torch.")
        raise ValueError(f"tol {tol:g} is finer than {name} products can certify (residuals "
                         f"below ~{floor:.1e} x lambda_max are rounding noise): use tol >= "
                         f"{floor:.1e}, or float64 products (hessian.dtype)")


def _status(theta: np.ndarray, residuals: np.ndarray, scale: float, tol: float,
            relative_to: str, threshold: float, floor: float) -> str | None:
    """'converged' when every pair meets tol; 'dtype_limited' when every pair is as good as the
    dtype allows but some pair's tolerance lies below the floor; None: not there yet."""
    ratios = _residual_ratios(theta, residuals, scale, relative_to, threshold)
    attainable = _residual_ratios(theta, np.full_like(theta, floor * scale), scale, relative_to,
                                  threshold)
    met = (ratios <= tol) & (attainable <= tol)
    limited = (attainable > tol) & (residuals <= floor * scale)
    if met.all():
        return "converged"
    if (met | limited).all():
        return "dtype_limited"
    return None


def lanczos_topk(op: Operator, k: int, *, max_iterations: int = 600, tol: float = 1e-3,
                 relative_to: ToleranceMode = "eigenvalue",
                 positive_threshold: float = DEFAULT_POSITIVE_THRESHOLD, seed: int = 0,
                 basis_device: str = "auto", return_vectors: bool = False,
                 progress: bool = False, desc: str = "Lanczos") -> LanczosResult:
    """The k largest eigenvalues of `op` in its subspace, by Lanczos with full reorthogonalization,
    one product at a time.

    Stops when every wanted residual |β_j s_{j,i}| = ‖Hv_i − θ_i v_i‖ is at most tol·θ_i (with
    relative_to='eigenvalue', the pairs above positive_threshold·max|θ|: each eigenvalue that
    enters V'(k) to relative accuracy tol) or tol·max|θ| (the other pairs; every pair with
    'largest'), or at most the dtype's floor where tol asks for less (status 'dtype_limited'),
    when the Krylov space fills the subspace ('exhausted': the values are exact), or after
    `max_iterations` products ('budget'). On a breakdown (an invariant subspace found early) it
    goes on from a fresh vector orthogonal to the basis, so repeated eigenvalues are found too.
    The basis holds the alive coordinates only.
    """
    _check_tolerance(tol, op.dtype)
    t0 = time.perf_counter()
    sub = Subspace(op)
    dim = sub.dim
    k = min(k, dim)
    iterations = min(max_iterations, dim)
    n0, p0 = op.n_hvp, op.n_passes
    floor = dtype_floor(op.dtype)
    where = _basis_device(sub, iterations, basis_device)
    basis = _Basis(dim, where, op.dtype)
    q = sub.restrict(_start_vector(op, seed))
    basis.append(q)
    q_prev, beta_prev = torch.zeros_like(q), 0.0
    alphas: list[float] = []
    betas: list[float] = []
    theta, last, scale = np.zeros(0), np.zeros(0), 1.0
    status = "budget"
    bar = tqdm(total=iterations, desc=desc, leave=False, disable=not progress, mininterval=1.0)
    for j in range(iterations):
        w = sub(q)
        alpha = float(torch.dot(w, q))
        w = w - alpha * q - beta_prev * q_prev
        w = basis.orthogonalize(w)
        beta = float(w.norm())
        alphas.append(alpha)
        betas.append(beta)
        bar.update(1)
        if j + 1 >= k:
            theta, last, scale = _tridiagonal_top(alphas, betas, k)
            res = np.abs(beta * last)
            worst = float(np.max(_residual_ratios(theta, res, scale, relative_to,
                                                  positive_threshold)))
            bar.set_postfix(residual=f"{worst:.1e}")
            done = _status(theta, res, scale, tol, relative_to, positive_threshold, floor)
            if j + 1 == dim:
                status = "exhausted"
                break
            if done:
                status = done
                break
        if j + 1 == iterations:
            break
        if beta <= _breakdown(op.dtype) * max(max(abs(a) for a in alphas), max(betas), 1e-300):
            w = basis.orthogonalize(sub.restrict(_start_vector(op, seed + j + 1)))  # restart
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
        vectors = sub.expand(basis.combine(s))
    return LanczosResult(eigenvalues=torch.as_tensor(theta[:k], dtype=torch.float64),
                         residuals=residuals, n_hvp=op.n_hvp - n0, iterations=m,
                         converged=status in ("converged", "exhausted"), basis_device=str(where),
                         seconds=time.perf_counter() - t0, tol=tol, relative_to=relative_to,
                         scale=float(scale), dim=dim, vectors=vectors, status=status,
                         floor=floor, positive_threshold=positive_threshold, method="lanczos",
                         block_size=1, n_blocks=m, n_passes=op.n_passes - p0,
                         basis_numel=basis.numel)
def _start_block(sub: Subspace, b: int, seed: int) -> torch.Tensor:
    """b orthonormal rows in the subspace: the single-vector start, then seeded normal rows."""
    rows = [sub.restrict(_start_vector(sub.op, seed))]
    g = torch.Generator().manual_seed(seed + 7919)
    rows += [torch.randn(sub.dim, generator=g, dtype=sub.dtype).to(sub.device)
             for _ in range(b - 1)]
    q, _ = torch.linalg.qr(torch.stack(rows).T)
    return q.T.contiguous()


def _next_block(w: torch.Tensor, basis: _Basis, b: int, scale: float, seed: int) -> torch.Tensor:
    """An orthonormal block (b x dim) spanning the residual block w, orthogonal to the basis;
    directions w has (almost) none of (an invariant subspace found) are replaced by seeded
    random ones, so the search goes on."""
    q, r = torch.linalg.qr(w[:b].T)
    weak = r.diagonal().abs() <= _breakdown(w.dtype) * max(scale, 1e-300)
    if bool(weak.any()):
        g = torch.Generator().manual_seed(seed)
        fresh = torch.randn(int(weak.sum()), q.shape[0], generator=g, dtype=q.dtype)
        q = q.clone()
        q[:, weak] = fresh.to(q.device).T
    q = basis.orthogonalize(q.T.contiguous()).T  # once more: QR does not keep it exactly
    q, _ = torch.linalg.qr(q)
    return q.T.contiguous()


def block_lanczos_topk(op: Operator, k: int, *, block_size: int = 8, max_iterations: int = 600,
                       tol: float = 1e-3, relative_to: ToleranceMode = "eigenvalue",
                       positive_threshold: float = DEFAULT_POSITIVE_THRESHOLD, seed: int = 0,
                       basis_device: str = "auto", return_vectors: bool = False,
                       progress: bool = False, desc: str = "block Lanczos") -> LanczosResult:
    """The k largest eigenvalues of `op` in its subspace by block Lanczos: products of b vectors
    at a time (one pass over the data each, `op.matmat`), full reorthogonalization, and
    Rayleigh-Ritz on the projection T = QᵀHQ assembled from the reorthogonalization coefficients.

    The residual of a Ritz pair (θ, Qᵀs) is ‖Wᵀ s_last‖ exactly, W the last block's products
    left after projection. Stopping as `lanczos_topk` ('converged', 'dtype_limited',
    'exhausted', 'budget'); at most `max_iterations` products, in whole blocks.
    """
    _check_tolerance(tol, op.dtype)
    t0 = time.perf_counter()
    sub = Subspace(op)
    dim = sub.dim
    k = min(k, dim)
    budget = min(max_iterations, dim)
    b = max(1, min(block_size, budget))
    n0, p0 = op.n_hvp, op.n_passes
    floor = dtype_floor(op.dtype)
    where = _basis_device(sub, budget, basis_device)
    basis = _Basis(dim, where, op.dtype)
    q = _start_block(sub, b, seed)
    basis.append(q)
    t = np.zeros((budget, budget))
    theta, s, residuals, scale = np.zeros(0), np.zeros((0, 0)), np.zeros(0), 1.0
    status, blocks = "budget", 0
    bar = tqdm(total=budget, desc=desc, leave=False, disable=not progress, mininterval=1.0)
    while True:
        m, nb = basis.count, q.shape[0]
        w = sub.matmat(q)
        blocks += 1
        bar.update(nb)
        w, c = basis.project_out(w)
        c = c.numpy()
        t[:m, m - nb:m] = c
        t[m - nb:m, :m] = c.T
        t[m - nb:m, m - nb:m] = (c[m - nb:] + c[m - nb:].T) / 2
        values, vectors = np.linalg.eigh(t[:m, :m])
        scale = float(max(abs(values[0]), abs(values[-1])))
        kk = min(k, m)
        theta, s = values[::-1][:kk].copy(), vectors[:, ::-1][:, :kk].copy()
        gram = (w @ w.T).double().cpu().numpy()
        ends = s[m - nb:m]
        residuals = np.sqrt(np.maximum(np.einsum("ji,jl,li->i", ends, gram, ends), 0.0))
        if m >= k:
            ratios = _residual_ratios(theta, residuals, scale, relative_to, positive_threshold)
            bar.set_postfix(residual=f"{float(ratios.max()):.1e}")
            done = _status(theta, residuals, scale, tol, relative_to, positive_threshold, floor)
            if m == dim:
                status = "exhausted"
                break
            if done:
                status = done
                break
        if m == dim:
            status = "exhausted"
            break
        nb = min(b, dim - m)
        if m + nb > budget:
            break
        q = _next_block(w, basis, nb, scale, seed + m)
        basis.append(q)
    bar.close()
    vectors = None
    if return_vectors:
        vectors = sub.expand(basis.combine(torch.as_tensor(s)))
    return LanczosResult(eigenvalues=torch.as_tensor(theta, dtype=torch.float64),
                         residuals=torch.as_tensor(residuals, dtype=torch.float64),
                         n_hvp=op.n_hvp - n0, iterations=basis.count,
                         converged=status in ("converged", "exhausted"), basis_device=str(where),
                         seconds=time.perf_counter() - t0, tol=tol, relative_to=relative_to,
                         scale=scale, dim=dim, vectors=vectors, status=status, floor=floor,
                         positive_threshold=positive_threshold, method="block_lanczos",
                         block_size=b, n_blocks=blocks, n_passes=op.n_passes - p0,
                         basis_numel=basis.numel)


def eigsh_topk(op: Operator, k: int, *, max_iterations: int = 600, tol: float = 1e-3,
               seed: int = 0, ncv: int | None = None, check: bool = True,
               positive_threshold: float = DEFAULT_POSITIVE_THRESHOLD,
               return_vectors: bool = False) -> LanczosResult:
    """The k largest eigenvalues by scipy's eigsh (ARPACK's implicitly restarted Lanczos,
    which='LA') on the same operator in its subspace, one product at a time: the bar the
    Lanczos routines are measured against. ARPACK's tol bounds ‖Hv − θv‖ relative to |θ|.
    `max_iterations` caps the products, as for the Lanczos routines: ARPACK's own `maxiter`
    counts restarts (each up to ncv - k products), so it is set from the cap (`arpack_restarts`)
    and the products are counted; a product past the cap stops ARPACK. Without convergence only
    the values that converged come back (status 'budget': fewer than k, maybe none).
    With `check`, the true residuals are measured after with one block of k more products
    (not counted in n_hvp; they are in the operator's own count)."""
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    t0 = time.perf_counter()
    sub = Subspace(op)
    dim = sub.dim
    k = min(k, dim - 1)
    n0, p0 = op.n_hvp, op.n_passes
    counted = {"n": 0}

    ncv, restarts = arpack_restarts(k, dim, max_iterations, ncv)

    def matvec(v: np.ndarray) -> np.ndarray:
        if counted["n"] >= max_iterations:
            raise _ProductCap
        counted["n"] += 1
        x = torch.as_tensor(np.ascontiguousarray(v).reshape(-1), dtype=op.dtype)
        return sub(x).double().cpu().numpy()

    linear = LinearOperator((dim, dim), matvec=matvec, dtype=np.float64)
    v0 = sub.restrict(_start_vector(op, seed)).double().cpu().numpy()
    status = "converged"
    try:
        values, vecs = eigsh(linear, k=k, which="LA", tol=tol, v0=v0, ncv=ncv, maxiter=restarts)
    except ArpackNoConvergence as err:
        values, vecs, status = err.eigenvalues, err.eigenvectors, "budget"
    except _ProductCap:
        values, vecs, status = np.zeros(0), np.zeros((dim, 0)), "budget"
    order = np.argsort(values)[::-1]
    values, vecs = values[order], vecs[:, order]
    n_hvp, n_passes = op.n_hvp - n0, op.n_passes - p0
    residuals = torch.full((len(values),), math.nan, dtype=torch.float64)
    rows = torch.as_tensor(vecs.T.copy(), dtype=op.dtype)
    if check and len(values):
        hv = sub.matmat(rows).double().cpu()
        residuals = (hv - torch.as_tensor(values)[:, None] * rows.double()).norm(dim=1)
    scale = float(np.abs(values).max()) if len(values) else 1.0
    return LanczosResult(eigenvalues=torch.as_tensor(values.copy(), dtype=torch.float64),
                         residuals=residuals, n_hvp=n_hvp, iterations=counted["n"],
                         converged=status == "converged", basis_device="cpu",
                         seconds=time.perf_counter() - t0, tol=tol, relative_to="eigenvalue",
                         scale=scale, dim=dim,
                         vectors=sub.expand(rows) if return_vectors else None, status=status,
                         floor=dtype_floor(op.dtype), positive_threshold=positive_threshold,
                         method="eigsh", block_size=1, n_blocks=n_hvp, n_passes=n_passes)


class _ProductCap(Exception):
    """Raised inside ARPACK's matvec when the product cap is reached."""


def arpack_restarts(k: int, dim: int, max_products: int,
                    ncv: int | None = None) -> tuple[int, int]:
    """(ncv, maxiter) for ARPACK so that eigsh spends at most about `max_products` products:
    its first pass takes ncv + 1 of them, each restart at most ncv - k more (measured: k = 4,
    ncv = 20: 37 products at maxiter 1, 53 at 2, 180 at 10). A cap too small for ncv's default
    (max(2k + 1, 20)) shrinks ncv, never below k + 2."""
    ncv = ncv or min(dim, max(2 * k + 1, 20))
    ncv = min(dim, max(min(ncv, (max_products - 1 + k) // 2), k + 2))
    return ncv, max(1, (max_products - ncv - 1) // max(1, ncv - k))


def topk(op: Operator, k: int, *, method: Method = "auto", block_size: int = 8,
         **kwargs) -> LanczosResult:
    """The top-k eigenvalues by `method` ('auto': see `resolve_method`); keyword arguments go to
    `lanczos_topk` / `block_lanczos_topk`."""
    chosen = resolve_method(method, op.device)
    if chosen == "block_lanczos":
        return block_lanczos_topk(op, k, block_size=block_size, **kwargs)
    if chosen == "eigsh":
        keep = {n: kwargs[n] for n in ("max_iterations", "tol", "seed", "positive_threshold",
                                       "return_vectors") if n in kwargs}
        return eigsh_topk(op, k, **keep)
    return lanczos_topk(op, k, **kwargs)


class VolumeWarning(UserWarning):
    """Fewer than k eigenvalues entered V'(k): the rest are not clearly positive."""


def volume_count(eigenvalues: torch.Tensor | Sequence[float], k: int | None = None,
                 threshold: float = DEFAULT_POSITIVE_THRESHOLD) -> tuple[float, int, int]:
    """(V'(k), how many values entered, how many were asked for): the sum of log λ_i over the
    top k that exceed threshold·λ_max (the others are zero to the accuracy of the products)."""
    lam = torch.as_tensor(eigenvalues, dtype=torch.float64).sort(descending=True).values
    lam = lam[:k] if k is not None else lam
    wanted = k if k is not None else len(lam)
    if not len(lam) or lam[0] <= 0:
        return 0.0, 0, wanted
    kept = lam[lam > threshold * lam[0]]
    return float(torch.log(kept).sum()), len(kept), wanted


def volume_bound(eigenvalues: torch.Tensor | Sequence[float],
                 residuals: torch.Tensor | Sequence[float] | None, k: int | None = None,
                 threshold: float = DEFAULT_POSITIVE_THRESHOLD) -> float:
    """How far V'(k) of these Ritz values may lie from the same sum over the eigenvalues they
    approximate: a Ritz value θ with residual r = ‖Hv − θv‖ is within r of an eigenvalue, so
    its log is within log(θ / (θ − r)) of that eigenvalue's (the larger side, log being concave);
    the bound is the sum over the values V'(k) sums. It assumes, as residual bounds do, that the
    Ritz values stand for the top eigenvalues (Lanczos finds the extreme ones first). inf where a
    value lies within its residual of 0 (no bound), NaN without residuals."""
    if residuals is None:
        return math.nan
    lam = torch.as_tensor(eigenvalues, dtype=torch.float64)
    res = torch.as_tensor(residuals, dtype=torch.float64).abs()
    if res.numel() != lam.numel():
        return math.nan
    order = lam.argsort(descending=True)
    lam, res = lam[order], res[order]
    _, entered, _ = volume_count(lam, k, threshold)
    lam, res = lam[:entered], res[:entered]
    if bool((res >= lam).any()):
        return math.inf
    return float(torch.log(lam / (lam - res)).sum())


def log_volume(eigenvalues: torch.Tensor | Sequence[float], k: int | None = None,
               threshold: float = DEFAULT_POSITIVE_THRESHOLD, warn: bool = True) -> float:
    """V'(k) = Σ log λ_i over the top k eigenvalues (all given when k is None) that exceed
    threshold·λ_max (Wu et al. 2017; the others are rounding noise around zero, whose logs would
    dominate the sum). Warns (VolumeWarning) when fewer than k entered."""
    value, entered, wanted = volume_count(eigenvalues, k, threshold)
    if warn and entered < wanted:
        warnings.warn(f"V'({wanted}): only {entered} of the top {wanted} eigenvalues exceed "
                      f"{threshold:g} x lambda_max; the others are left out of the sum",
                      VolumeWarning, stacklevel=2)
    return value

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
    sub = Subspace(op)
    for r in range(runs):
        q = sub.restrict(_start_vector(op, seed + r, kind="rademacher"))
        basis = _Basis(sub.dim, op.device, op.dtype)
        basis.append(q)
        q_prev, beta_prev = torch.zeros_like(q), 0.0
        alphas, betas = [], []
        steps = min(iterations, sub.dim)
        for j in tqdm(range(steps), desc=f"SLQ run {r + 1}", leave=False, disable=not progress):
            w = sub(q)
            alpha = float(torch.dot(w, q))
            w = basis.orthogonalize(w - alpha * q - beta_prev * q_prev)
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
