"""Krylov methods on a masked operator: the top-k eigenvalues by Lanczos with full
reorthogonalization and residual stopping, V'(k), Hutchinson's trace and the spectral density by
stochastic Lanczos quadrature (pyhessian's algorithms, on the masked operator)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterator, Literal, Sequence

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal
from ..progress import tqdm

from .operator import Operator

__all__ = ["LanczosResult", "lanczos_topk", "log_volume", "hutchinson_trace", "slq_density",
           "density_curve", "ToleranceMode"]

ToleranceMode = Literal["eigenvalue", "largest"]


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
