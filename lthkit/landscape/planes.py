"""Loss on planes: through three solutions (Fig 13), and on two filter-normalized random
directions around one (Li et al. 2018; Bain)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from ..points import ParamLayout
from .batch import Evaluate, evaluate_points

__all__ = ["plane_basis", "project", "plane_grid", "grid_losses", "evaluate_plane",
           "filter_normalized_direction", "evaluate_surface"]


def plane_basis(a: Tensor, b: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """Orthonormal axes (u, v) of the plane through A, B, C: u ∥ B−A, v = Gram-Schmidt of C−A."""
    ad = a.double()
    u = b.double() - ad
    u = u / u.norm()
    w = c.double() - ad
    w = w - (w @ u) * u
    w = w - (w @ u) * u  # a second pass keeps u ⊥ v to rounding error
    if float(w.norm()) <= 1e-12 * float((c.double() - ad).norm() + 1e-30):
        raise ValueError("A, B and C are on one line: they span no plane")
    return u.to(a.dtype), (w / w.norm()).to(a.dtype)


def project(points: Tensor, origin: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """(α, β, distance) of each point: α = <W−A, u>, β = <W−A, v>, distance from the plane."""
    pts = points.unsqueeze(0) if points.dim() == 1 else points
    rel = pts.double() - origin.double()
    alpha, beta = rel @ u.double(), rel @ v.double()
    resid = rel - alpha.unsqueeze(1) * u.double() - beta.unsqueeze(1) * v.double()
    return torch.stack([alpha, beta, resid.norm(dim=1)], dim=1)


def plane_grid(coords: Tensor, resolution: int, margin: float) -> tuple[Tensor, Tensor]:
    """Grid axes covering every (α, β) in `coords`, extended by `margin` of the larger extent."""
    lo, hi = coords[:, :2].min(0).values, coords[:, :2].max(0).values
    pad = margin * float((hi - lo).max())
    return (torch.linspace(float(lo[0]) - pad, float(hi[0]) + pad, resolution, dtype=torch.float64),
            torch.linspace(float(lo[1]) - pad, float(hi[1]) + pad, resolution, dtype=torch.float64))


def grid_losses(evaluate: Evaluate, origin: Tensor, u: Tensor, v: Tensor, xs: Tensor, ys: Tensor,
                chunk: int = 64, progress: bool = False, desc: str = "grid"
                ) -> tuple[Tensor, Tensor | None]:
    """Loss (and accuracy) at origin + x u + y v on the grid; arrays are len(ys) x len(xs)."""
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    fx, fy = gx.reshape(-1), gy.reshape(-1)

    def build(i: int, j: int) -> Tensor:
        cx = fx[i:j].to(origin.device, origin.dtype).unsqueeze(1)
        cy = fy[i:j].to(origin.device, origin.dtype).unsqueeze(1)
        return origin.unsqueeze(0) + cx * u.unsqueeze(0) + cy * v.unsqueeze(0)

    loss, acc = evaluate_points(evaluate, fx.numel(), build, chunk, progress, desc)
    shape = (len(ys), len(xs))
    return loss.view(shape), (None if acc is None else acc.view(shape))


def evaluate_plane(evaluate: Evaluate, a: Tensor, b: Tensor, c: Tensor,
                   extras: Mapping[str, Tensor] | None = None, labels: Sequence[str] = ("A", "B", "C"),
                   resolution: int = 31, margin: float = 0.3, chunk: int = 64,
                   progress: bool = False) -> dict[str, Any]:
    """Loss on the plane through A, B, C, and every point of interest projected on it.

    Returns the grid axes x, y (coordinates along u, v from A), loss (and acc) as len(y) x
    len(x), the points' labels, coords (α, β) and distance from the plane.
    """
    u, v = plane_basis(a, b, c)
    names = list(labels) + list(extras or {})
    pts = torch.stack([a, b, c, *(extras or {}).values()]).to(a.device, a.dtype)
    proj = project(pts, a, u, v).cpu()  # results live on the CPU (cached, plotted)
    xs, ys = plane_grid(proj, resolution, margin)
    loss, acc = grid_losses(evaluate, a, u, v, xs, ys, chunk, progress, "plane")
    out = {"x": xs, "y": ys, "loss": loss, "labels": names, "coords": proj[:, :2],
           "distance": proj[:, 2]}
    if acc is not None:
        out["acc"] = acc
    return out


# --- filter-normalized random surfaces (Li et al. 2018; Bain) -----------------------------------

def filter_normalized_direction(layout: ParamLayout, point: Tensor, mask: Tensor | None,
                                generator: torch.Generator, include_bn: bool = False) -> Tensor:
    """A random direction whose every filter has the norm of the weights' filter (Li et al.).

    For each prunable weight (conv or linear), Gaussian entries are zeroed where the mask is 0
    and each output filter (row) is scaled to the norm of the same filter of `point` (a filter
    pruned entirely stays zero). Biases and BatchNorm parameters get zero, or with `include_bn`
    the weights themselves (as Li et al.'s code does when it does not ignore them).
    """
    w_all = point.detach().float().cpu()
    m_all = torch.ones_like(w_all) if mask is None else mask.detach().float().cpu()
    out = torch.zeros_like(w_all)
    for name, sl, shape in zip(layout.names, layout.slices().values(), layout.shapes):
        w = w_all[sl].view(shape)
        if name in layout.prunable and len(shape) >= 2:
            d = torch.randn(shape, generator=generator) * m_all[sl].view(shape)
            d_norm = d.flatten(1).norm(dim=1)
            w_norm = w.flatten(1).norm(dim=1)
            scale = torch.where(d_norm > 0, w_norm / d_norm.clamp_min(1e-30), torch.zeros_like(d_norm))
            out[sl] = (d * scale.view(-1, *[1] * (len(shape) - 1))).reshape(-1)
        elif include_bn:
            out[sl] = w.reshape(-1)
    return out.to(point.device)


def evaluate_surface(evaluate: Evaluate, center: Tensor, d1: Tensor, d2: Tensor,
                     span: float = 1.0, resolution: int = 25, chunk: int = 64,
                     progress: bool = False) -> dict[str, Any]:
    """Loss on center + x d1 + y d2 for x, y in [-span, span] (a 2D surface around a solution)."""
    xs = torch.linspace(-span, span, resolution, dtype=torch.float64)
    loss, acc = grid_losses(evaluate, center, d1, d2, xs, xs.clone(), chunk, progress, "surface")
    out = {"x": xs, "y": xs.clone(), "loss": loss}
    if acc is not None:
        out["acc"] = acc
    return out
