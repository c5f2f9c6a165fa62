"""pyhessian 0.1, wrapped: seeded, on the given device, `torch.eig` replaced by `eigh`, the caller's
model untouched. The reference the tests and `benchmarks/hessian_topk.py` compare against."""

from __future__ import annotations

import contextlib
import copy
import sys
import time
import warnings
from typing import Iterator, Mapping

import numpy as np
import torch
from torch import nn

from lthkit.analysis.hessian.operator import strict_fp32
from lthkit.nets.points import ParamLayout

__all__ = ["pyhessian_topk", "pyhessian_trace", "pyhessian_density"]


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
