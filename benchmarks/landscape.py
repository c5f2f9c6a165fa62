"""Landscape engine speed: fused blocks of points against one at a time, a plane and basin radii.

Everything evaluates one ResNet-20 (random initialization: the timing does not depend on
training) on the same examples, BatchNorm statistics recomputed at every point, in one run:

    blocks      points/s of the fused evaluator by points per pass (P), and of a loop at the
                largest P: which P "auto" would take, and whether fusing beats a loop here
    plane       an R x R plane (filter-normalized axes), batched against one at a time
    radii       basin radii of one point along N random directions, batched (every direction
                advances in the same passes, blocks of P) against one direction at a time

    one at a time   every point its own call, two passes (recalibration, then the loss): the
                    plain way
    batched         P points per pass fused into one grouped network, statistics and loss in
                    one pass over all examples (landscape.one_pass_bn), P from --points-per-pass
                    (default auto), --dtype (default float32)
    batched 2-pass  (with --detail) batched, but with the two-pass recalibration (exact
                    update_bn statistics; layer by layer when the examples take several chunks)

    python benchmarks/landscape.py --resolution 11 --radii 16 --threads 2   # 2 CPU cores
    python benchmarks/landscape.py --resolution 51 --detail --conv         # the targets (GPU)
    python benchmarks/landscape.py --resolution 51 --dtype bfloat16        # the same in bf16

Targets on one H100 (issue 14): the 51 x 51 plane on 5,000 images with BatchNorm recalibration
in under 60 s; 100 radii of one point in under 60 s; batched at least 5x one at a time. The
script prints each against its target when run at that size. --conv adds a micro-benchmark of
one convolution of P points: a loop, the vmapped form, and an explicit grouped convolution
(channels first and channels last), i.e. whether building the grouped network by hand would pay.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from lthkit.analysis import landscape as ls
from lthkit.config.training import DataSection
from lthkit.data.load import load_data
from lthkit.nets.evaluator import PointEvaluator
from lthkit.nets.models import build_model
from lthkit.train.context import resolve_device


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


def block_rates(model, x, y, device, center, sizes, dtype, one_pass, budget_s):
    """points/s of fused blocks of each size, and of a loop over the largest (one pass each)."""
    rows = []
    batch = max(1000, x.shape[0]) if one_pass else 1000
    for fused, p in [(True, s) for s in sizes] + [(False, max(sizes))]:
        ev = PointEvaluator(model, x, y, batch_size=batch, points_per_pass=p, use_vmap=fused,
                            one_pass_bn=one_pass, dtype=dtype)
        block = center.expand(p, -1).contiguous()
        ev.evaluate(block)  # warm-up
        sec, _ = timed(device, lambda: ev.evaluate(block))
        rows.append(("fused" if fused else "loop", p, p / sec))
        if sec > budget_s:
            break
    return rows


def conv_layouts(device: torch.device, p: int, images: int, width: int, dtype: torch.dtype):
    """ms per call: P convolutions of P inputs as a loop, under vmap, and as one grouped conv."""
    out = []
    for c, hw in [(width, 32), (2 * width, 16), (4 * width, 8)]:
        x = torch.randn(p, images, c, hw, hw, device=device, dtype=dtype)
        w = torch.randn(p, c, c, 3, 3, device=device, dtype=dtype)
        xg = x.transpose(0, 1).reshape(images, p * c, hw, hw).contiguous()
        wg = w.reshape(p * c, c, 3, 3)
        xcl = xg.contiguous(memory_format=torch.channels_last)
        cases = {
            "loop": lambda: [F.conv2d(x[i], w[i], padding=1) for i in range(p)],
            "vmap": lambda: torch.vmap(lambda a, b: F.conv2d(a, b, padding=1), in_dims=(1, 0))(
                xg.view(images, p, c, hw, hw), w),
            "grouped": lambda: F.conv2d(xg, wg, padding=1, groups=p),
            "grouped, channels last": lambda: F.conv2d(xcl, wg, padding=1, groups=p),
        }
        for name, fn in cases.items():
            with torch.no_grad():
                fn()
                sec, _ = timed(device, lambda: [fn() for _ in range(3)])
            out.append((f"{c} ch, {hw}x{hw}", name, 1e3 * sec / 3))
    return out


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
    ap.add_argument("--points-per-pass", default="auto", help="P: an integer or auto")
    ap.add_argument("--vmap", choices=["auto", "yes", "no"], default="auto")
    ap.add_argument("--dtype", choices=["float32", "tfloat32", "bfloat16"], default="float32",
                    help="landscape.dtype of the batched evaluator (one at a time: float32)")
    ap.add_argument("--chunk", type=int, default=64, help="points built per call of the engine")
    ap.add_argument("--skip-single", action="store_true", help="time the batched path only")
    ap.add_argument("--skip-blocks", action="store_true", help="skip the points/s by block size")
    ap.add_argument("--detail", action="store_true", help="also time batched with two passes")
    ap.add_argument("--conv", action="store_true", help="also the convolution layouts")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    width = args.width or (16 if cuda else 4)
    examples = args.examples or (5000 if cuda else 128)
    resolution, n_radii = args.resolution, args.radii
    ppp = args.points_per_pass if args.points_per_pass == "auto" else int(args.points_per_pass)
    use_vmap = {"auto": None, "yes": True, "no": False}[args.vmap]

    data = load_data(DataSection(dataset="synthetic_cifar10", train_size=examples), device)
    x, y = data.analysis_subset(examples, seed=0)
    model = build_model("resnet20", width, "synthetic_cifar10", seed=0).to(device)
    single = PointEvaluator(model, x, y, batch_size=1000, points_per_pass=1, use_vmap=False)
    batched = PointEvaluator(model, x, y, batch_size=max(1000, examples), points_per_pass=ppp,
                             use_vmap=use_vmap, one_pass_bn=True, dtype=args.dtype)
    layout = single.layout
    center = layout.flatten(model.state_dict()).to(device)
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; ResNet-20 width {width} "
          f"({layout.size:,} parameters), {examples} examples; {args.dtype}")
    p = batched.points_per_pass  # prints the choice when auto
    print(f"batched: {p} points per pass, fused {batched.fused}")

    if not args.skip_blocks:
        sizes = [s for s in (1, 2, 4, 8, 16, 32, 64) if s <= max(p, 8)]
        rows = block_rates(model, x, y, device, center, sizes, args.dtype, True, budget_s=30.0)
        print("\npoints/s by points per pass (one pass, one block timed after a warm-up):")
        print("  " + "  ".join(f"{kind} P={q}: {r:.2f}" for kind, q, r in rows))

    g = torch.Generator().manual_seed(0)
    d1 = ls.filter_normalized_direction(layout, center, None, g)
    d2 = ls.filter_normalized_direction(layout, center, None, g)
    axis = torch.linspace(-1, 1, resolution, dtype=torch.float64)
    n_plane = resolution ** 2

    batched.evaluate(center.repeat(min(p, 2), 1))  # warm-up (cuDNN autotuning, allocator)
    single.evaluate(center)

    def plane(ev_fn):
        return ls.grid_losses(ev_fn, center, d1, d2, axis, axis, chunk=args.chunk)[0]

    rows = []
    t_b, plane_b = timed(device, lambda: plane(batched.evaluate))
    rows.append(("plane", "batched", t_b, n_plane))
    if args.detail:
        two_pass = PointEvaluator(model, x, y, batch_size=1000, points_per_pass=p,
                                  use_vmap=use_vmap, dtype=args.dtype)
        t_2, plane_2 = timed(device, lambda: plane(two_pass.evaluate))
        rows.append(("plane", "batched 2-pass", t_2, n_plane))
    if not args.skip_single:
        t_s, plane_s = timed(device, lambda: plane(one_at_a_time(single)))
        rows.append(("plane", "one at a time", t_s, n_plane))

    mask = torch.ones(layout.size, device=device)
    dirs = ls.random_directions(n_radii, mask, seed=1)
    loss0 = float(single.evaluate(center)[0])
    cut = ls.cutoff_loss(loss0, "relative", 1.0)
    kw = dict(start=args.radius_start, growth=2.0, max_radius=1e4, tol=args.radius_tol,
              chunk=args.chunk, center_loss=loss0)
    t_rb, rad_b = timed(device, lambda: ls.basin_radii(batched.evaluate, center, dirs, cut, **kw))
    rows.append(("radii", "batched", t_rb, rad_b["evaluations"]))
    if not args.skip_single:
        single_fn = one_at_a_time(single)
        t_rs, rad_s = timed(device, lambda: [ls.basin_radii(single_fn, center, dirs[i:i + 1], cut,
                                                            **kw) for i in range(n_radii)])
        rows.append(("radii", "one at a time", t_rs, sum(r["evaluations"] for r in rad_s)))

    print(f"\n{'what':28s} {'mode':15s} {'seconds':>9s} {'points':>7s} {'points/s':>9s}")
    for what, mode, sec, n in rows:
        label = (f"{resolution}x{resolution} plane" if what == "plane"
                 else f"{n_radii} radii (tol {args.radius_tol:g}, {rad_b['steps']} passes)")
        print(f"{label:28s} {mode:15s} {sec:9.2f} {n:7d} {n / sec:9.1f}")
    if not args.skip_single:
        print(f"\nspeed-up over one at a time, plane: {t_s / t_b:.2f}x   radii: {t_rs / t_rb:.2f}x"
              f"   (target on one H100: >= 5x)")
        rel = ((plane_b - plane_s).abs() / plane_s.abs()).max()
        radii_s = torch.cat([r["radii"] for r in rad_s])
        print(f"largest relative difference, plane losses: {float(rel):.2e} (one pass against "
              f"two, {args.dtype} against float32); mean radius {rad_b['mean']:.4f} batched, "
              f"{float(radii_s.mean()):.4f} one at a time")
    if args.detail:
        print(f"one pass against two passes, batched: {t_2 / t_b:.2f}x; largest relative loss "
              f"difference {float(((plane_b - plane_2).abs() / plane_2.abs()).max()):.2e}")
    if cuda and width == 16 and examples == 5000:
        if resolution == 51:
            print(f"target, 51x51 plane on 5,000 images: {t_b:.1f} s "
                  f"({'met' if t_b < 60 else 'MISSED'}; under 60 s on one H100)")
        if n_radii == 100:
            print(f"target, 100 radii of one point: {t_rb:.1f} s "
                  f"({'met' if t_rb < 60 else 'MISSED'}; under 60 s on one H100)")
    if args.conv:
        dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
        print(f"\nms per call, one conv layer of P = {p} points on {min(examples, 1000)} images:")
        for shape, how, ms in conv_layouts(device, p, min(examples, 1000), width, dtype):
            print(f"  {shape:14s} {how:24s} {ms:9.2f}")


if __name__ == "__main__":
    main()
