"""Loss on planes: through three solutions (Fig 13), and on two filter-normalized random
directions around one (Li et al. 2018; Bain)."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from lthkit.analysis.landscape.batch import Evaluate, evaluate_points
from lthkit.nets.points import ParamLayout

__all__ = ["plane_basis", "project", "plane_grid", "grid_losses", "evaluate_plane",
           "joining_loss", "joining_losses",
           "raw_direction", "filter_normalize", "filter_normalized_direction",
           "evaluate_surface"]


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

def raw_direction(layout: ParamLayout, generator: torch.Generator) -> Tensor:
    """A Gaussian entry on every parameter, drawn parameter by parameter in the model's order
    (the reference's `get_random_weights`): the raw direction before normalization."""
    return torch.cat([torch.randn(shape, generator=generator).reshape(-1)
                      for shape in layout.shapes])


def filter_normalize(layout: ParamLayout, raw: Tensor, point: Tensor, mask: Tensor | None = None,
                     include_bn: bool = False) -> Tensor:
    """`raw` filter-normalized at `point` as Li et al.'s code does (norm 'filter', ignore 'biasbn').

    Every parameter of two or more dimensions (a conv or linear weight, prunable or not) has each
    output filter (row) scaled to the norm of the same filter of `point`; a filter whose weights
    are all zero stays zero. With `mask` (a mask vector over W), the raw entries are zeroed where
    it is 0 first (the kit's masked directions: the point stays on its subnetwork); without it
    every weight moves, pruned or not (Li et al.'s and Bain's code). One-dimensional parameters
    (biases, BatchNorm) get zero, or with `include_bn` the point's own values (the reference
    without 'biasbn').
    """
    w_all = point.detach().float().cpu()
    d_all = raw.detach().float().cpu()
    if mask is not None:
        d_all = d_all * mask.detach().float().cpu()
    out = torch.zeros_like(w_all)
    for sl, shape in zip(layout.slices().values(), layout.shapes):
        w = w_all[sl].view(shape)
        if len(shape) >= 2:
            d = d_all[sl].view(shape)
            d_norm = d.flatten(1).norm(dim=1)
            w_norm = w.flatten(1).norm(dim=1)
            scale = torch.where(d_norm > 0, w_norm / d_norm.clamp_min(1e-30),
                                torch.zeros_like(d_norm))
            out[sl] = (d * scale.view(-1, *[1] * (len(shape) - 1))).reshape(-1)
        elif include_bn:
            out[sl] = w.reshape(-1)
    return out.to(point.device)


def filter_normalized_direction(layout: ParamLayout, point: Tensor, mask: Tensor | None,
                                generator: torch.Generator, include_bn: bool = False) -> Tensor:
    """A random direction whose every filter has the norm of the point's filter (Li et al.):
    `raw_direction` drawn from `generator`, then `filter_normalize` (zero where `mask` is 0)."""
    return filter_normalize(layout, raw_direction(layout, generator), point, mask, include_bn)


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


def _nearest_cell(xs: Tensor, ys: Tensor, x: float, y: float) -> tuple[int, int]:
    """The grid cell (row of y, column of x) nearest a point's projection."""
    return int((ys - y).abs().argmin()), int((xs - x).abs().argmin())


def joining_loss(loss: Tensor, seeds: Sequence[tuple[int, int]]) -> Tensor:
    """For every grid cell, the lowest level c' at which it lies in the same connected component
    of the sublevel set {loss <= c'} (4-neighbours on the grid) as all of `seeds`: the minimax
    path loss from the seeds' joined component, i.e. a cell is in the component of {loss <= c}
    that holds the seeds exactly when its value is <= c (and the seeds are joined at <= c).

    First the seeds are joined (the value at which the last of them meets the others), then the
    component grows from there (a Dijkstra search with max instead of sum)."""
    import heapq

    rows, cols = loss.shape
    values = loss.double().numpy()
    if not seeds:
        raise ValueError("joining_loss needs at least one seed cell")

    def minimax_from(start: list[tuple[int, int]]) -> "list[list[float]]":
        best = [[float("inf")] * cols for _ in range(rows)]
        heap = []
        for r, c in start:
            best[r][c] = float(values[r, c])
            heap.append((best[r][c], r, c))
        heapq.heapify(heap)
        while heap:
            level, r, c = heapq.heappop(heap)
            if level > best[r][c]:
                continue
            for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if 0 <= nr < rows and 0 <= nc < cols:
                    through = max(level, float(values[nr, nc]))
                    if through < best[nr][nc]:
                        best[nr][nc] = through
                        heapq.heappush(heap, (through, nr, nc))
        return best

    first = minimax_from([seeds[0]])
    joined = max(first[r][c] for r, c in seeds)  # all seeds in one component from this level
    out = torch.tensor(first, dtype=torch.float64)
    return torch.clamp(out, min=joined)


def joining_losses(plane: Mapping[str, Any], seed_labels: Sequence[str]) -> dict[str, float]:
    """Per point of a plane (evaluate_plane's result), the level at which it joins the connected
    sublevel set that holds the points `seed_labels` (the IMP solutions that span the plane):
    the larger of the minimax path loss on the grid to its projection's cell and its own loss
    (a point off the plane is not its projection). Also "seeds joined": the level at which the
    seeds themselves are in one connected component."""
    xs, ys, loss = plane["x"], plane["y"], plane["loss"]
    labels = list(plane["labels"])
    coords = plane["coords"]
    cells = {lab: _nearest_cell(xs, ys, float(coords[i, 0]), float(coords[i, 1]))
             for i, lab in enumerate(labels)}
    seeds = [cells[s] for s in seed_labels]
    reach = joining_loss(loss, seeds)
    own = plane.get("point_loss")
    out = {}
    for i, lab in enumerate(labels):
        r, c = cells[lab]
        own_loss = float(own[i]) if own is not None else -math.inf
        out[lab] = max(float(reach[r, c]), own_loss)
    joined = float(reach[seeds[0][0], seeds[0][1]])
    out["seeds joined"] = max([joined, *(float(own[labels.index(s)]) for s in seed_labels)]
                              if own is not None else [joined])
    return out
