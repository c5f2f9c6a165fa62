"""Landscape engine speed: a plane and 100 basin radii, batched against one point at a time.

Both evaluate the same ResNet-20 (random initialization: the timing does not depend on training)
on the same examples, with BatchNorm statistics recomputed at every point, in one run:

    one at a time   every point its own call: recalibration pass + evaluation pass (the plain way)
    batched         many points per call (torch.func.vmap where enabled: on CUDA by default),
                    statistics and loss in one pass over all examples (landscape.one_pass_bn)
    batched 2-pass  (with --detail) batched, but with the two-pass recalibration

The radii are found by bracketing and bisection; "batched" advances all directions together,
"one at a time" runs the same search direction by direction with single-point evaluations.

    python benchmarks/landscape.py                                  # CPU-sized defaults
    python benchmarks/landscape.py --width 16 --examples 5000 --resolution 51 --skip-single
                                    # the target: a 51 x 51 ResNet-20 plane on 5,000 images (GPU)

Prints seconds and points per second of each, the speed-up, and how far their answers differ.
"""

from __future__ import annotations

import argparse
import time

import torch

from lthkit import landscape as ls
from lthkit.context import resolve_device
from lthkit.data import load_data
from lthkit.models import build_model
from lthkit.params import DataSection
from lthkit.points import PointEvaluator


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(device: torch.device, fn):
    """(seconds, result) of fn()."""
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, out


def one_at_a_time(ev: PointEvaluator):
    """An evaluate(points) that calls the evaluator once per point."""
    def evaluate(points: torch.Tensor):
        out = [ev.evaluate(p) for p in points]
        return torch.stack([o[0] for o in out]), torch.stack([o[1] for o in out])
    return evaluate


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--width", type=int, default=None, help="ResNet-20 width (paper 16; default: "
                    "16 on CUDA, 4 on CPU)")
    ap.add_argument("--examples", type=int, default=None, help="analysis examples (default: 5000 "
                    "on CUDA, 128 on CPU)")
    ap.add_argument("--resolution", type=int, default=21, help="plane grid points per axis")
    ap.add_argument("--radii", type=int, default=100, help="random directions")
    ap.add_argument("--radius-tol", type=float, default=1e-2)
    ap.add_argument("--radius-start", type=float, default=8.0, help="first distance tried")
    ap.add_argument("--points-per-pass", type=int, default=None, help="points per vmap call "
                    "(default: 16 on CUDA, 8 on CPU)")
    ap.add_argument("--vmap", choices=["auto", "yes", "no"], default="auto")
    ap.add_argument("--chunk", type=int, default=64, help="points built per call of the engine")
    ap.add_argument("--skip-single", action="store_true", help="time the batched path only")
    ap.add_argument("--detail", action="store_true", help="also time batched with two passes")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    width = args.width or (16 if cuda else 4)
    examples = args.examples or (5000 if cuda else 128)
    ppp = args.points_per_pass or (16 if cuda else 8)
    use_vmap = {"auto": None, "yes": True, "no": False}[args.vmap]

    data = load_data(DataSection(dataset="synthetic_cifar10", train_size=examples), device)
    x, y = data.analysis_subset(examples, seed=0)
    model = build_model("resnet20", width, "synthetic_cifar10", seed=0).to(device)
    single = PointEvaluator(model, x, y, batch_size=1000, points_per_pass=1, use_vmap=False)
    batched = PointEvaluator(model, x, y, batch_size=max(1000, examples), points_per_pass=ppp,
                             use_vmap=use_vmap, one_pass_bn=True)
    two_pass = PointEvaluator(model, x, y, batch_size=1000, points_per_pass=ppp, use_vmap=use_vmap)
    layout = single.layout
    center = layout.flatten(model.state_dict()).to(device)
    g = torch.Generator().manual_seed(0)
    d1 = ls.filter_normalized_direction(layout, center, None, g)
    d2 = ls.filter_normalized_direction(layout, center, None, g)
    axis = torch.linspace(-1, 1, args.resolution, dtype=torch.float64)
    n_plane = args.resolution ** 2
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; ResNet-20 width {width} ({layout.size:,} parameters), {examples} "
          f"examples; vmap {batched.use_vmap} ({ppp} points per pass)")

    # warm-up (cuDNN autotuning, allocator)
    batched.evaluate(center.repeat(min(ppp, 2), 1))
    single.evaluate(center)

    def plane(ev_fn):
        return ls.grid_losses(ev_fn, center, d1, d2, axis, axis, chunk=args.chunk)[0]

    rows = []
    t_b, plane_b = timed(device, lambda: plane(batched.evaluate))
    rows.append(("plane", "batched", t_b, n_plane))
    if args.detail:
        t_2, plane_2 = timed(device, lambda: plane(two_pass.evaluate))
        rows.append(("plane", "batched 2-pass", t_2, n_plane))
    if not args.skip_single:
        t_s, plane_s = timed(device, lambda: plane(one_at_a_time(single)))
        rows.append(("plane", "one at a time", t_s, n_plane))

    mask = torch.ones(layout.size, device=device)
    dirs = ls.random_directions(args.radii, mask, seed=1)
    loss0 = float(single.evaluate(center)[0])
    cut = ls.cutoff_loss(loss0, "relative", 1.0)
    kw = dict(start=args.radius_start, growth=2.0, max_radius=1e4, tol=args.radius_tol, chunk=args.chunk,
              center_loss=loss0)
    t_rb, rad_b = timed(device, lambda: ls.basin_radii(batched.evaluate, center, dirs, cut, **kw))
    rows.append(("radii", "batched", t_rb, rad_b["evaluations"]))
    if not args.skip_single:
        single_fn = one_at_a_time(single)
        t_rs, rad_s = timed(device, lambda: [ls.basin_radii(single_fn, center, dirs[i:i + 1], cut,
                                                            **kw) for i in range(args.radii)])
        rows.append(("radii", "one at a time", t_rs, sum(r["evaluations"] for r in rad_s)))

    print(f"\n{'what':28s} {'mode':15s} {'seconds':>9s} {'points':>7s} {'points/s':>9s}")
    for what, mode, sec, n in rows:
        label = (f"{args.resolution}x{args.resolution} plane" if what == "plane"
                 else f"{args.radii} radii (tol {args.radius_tol:g})")
        print(f"{label:28s} {mode:15s} {sec:9.2f} {n:7d} {n / sec:9.1f}")
    if not args.skip_single:
        print(f"\nspeed-up, plane: {t_s / t_b:.2f}x   radii: {t_rs / t_rb:.2f}x   (target on a "
              f"GPU: >= 5x)")
        rel = ((plane_b - plane_s).abs() / plane_s.abs()).max()
        radii_s = torch.cat([r["radii"] for r in rad_s])
        print(f"largest relative difference, plane losses: {float(rel):.2e}; mean radius "
              f"{rad_b['mean']:.4f} batched, {float(radii_s.mean()):.4f} one at a time")
    if args.detail:
        print(f"one pass against two passes, batched: {t_2 / t_b:.2f}x; largest relative loss "
              f"difference {float(((plane_b - plane_2).abs() / plane_2.abs()).max()):.2e}")
    if args.resolution == 51 and width == 16 and examples == 5000:
        print(f"51x51 ResNet-20 plane on 5,000 images: {t_b:.1f} s (target: under 60 s on one H100)")


if __name__ == "__main__":
    main()
