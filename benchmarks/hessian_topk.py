"""Top-k Hessian eigenvalues: single-vector Lanczos, block Lanczos and scipy's eigsh, in one run.

One model, one point, one subset: the seconds per Hessian-vector product of each product mode,
one vector at a time and in blocks (one shared pass over the data per block); then, at each k,
lthkit's single-vector Lanczos (today's default before block products: double backward, graphs
not kept), its block Lanczos at each block size, and scipy.sparse.linalg.eigsh (ARPACK) on the
same operator as a LinearOperator: products, blocks, passes over the data, wall and CPU seconds,
the largest relative residual, and the largest relative eigenvalue error and the V'(k) error
against a reference that is not lthkit: eigsh on float64 products at tol 1e-10.

    python benchmarks/hessian_topk.py --threads 1            # CPU: ResNet-20 width 4, 128 images
    python benchmarks/hessian_topk.py --width 16 --images 5000   # the paper's model and subset
    python benchmarks/hessian_topk.py --params params/quick.yaml --level 5   # a trained solution
    python benchmarks/hessian_topk.py --pyhessian             # pyhessian 0.1 at k = 10 as well

Without --params the point is a ResNet-20 trained for a few hundred SGD steps on the synthetic
stand-in of CIFAR-10. Target (issue 14): on 2 CPU cores, block Lanczos in fewer wall seconds than
single-vector Lanczos at k = 20 and k = 100.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from lthkit.analysis import hessian as hs
from lthkit.config.training import DataSection
from lthkit.data.load import load_data
from lthkit.nets.evaluator import PointEvaluator
from lthkit.nets.models import build_model
from lthkit.nets.points import ParamLayout
from lthkit.train.context import resolve_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def trained_point(args, device: torch.device):
    """(model, point, x, y): a run's W_min(level) on its analysis subset, or a quickly trained
    ResNet on synthetic data."""
    if args.params:
        import lthkit as lk

        ctx = lk.open_run(lk.load_params(args.params, {"run.device": str(device)}))
        state = lk.ImpResults(ctx.store).final(args.level)
        model = ctx.new_model()
        x, y = ctx.data.analysis_subset(args.images, ctx.params.run.seed)
        return model, ParamLayout.from_model(model).flatten(state).to(device), x, y, \
            f"{ctx.params.model.arch} W_min({args.level}) of {ctx.store.root}"
    data = load_data(DataSection(dataset="synthetic_cifar10", train_size=max(args.images, 512),
                                 test_size=64), device, seed=0)
    model = build_model("resnet20", args.width, "synthetic_cifar10", seed=0).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    model.train()
    steps = 0
    while steps < args.train_steps:
        for xb, yb in data.train_batches(64, seed=steps, augment=False):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
            steps += 1
            if steps == args.train_steps:
                break
    opt.zero_grad(set_to_none=True)
    x, y = data.analysis_subset(args.images, 0)
    return model, ParamLayout.from_model(model).flatten(model.state_dict()).to(device), x, y, \
        f"ResNet-20 width {args.width}, {args.train_steps} SGD steps on synthetic CIFAR-10"


def product_seconds(model, point, x, y, buffers, batch_size: int, mode: str, reuse: bool,
                    block: int = 1, batched: bool | None = None, repeats: int = 2) -> float:
    """Seconds per Hessian-vector product, one vector at a time (block 1) or in blocks of
    `block` vectors (after one warm-up call)."""
    op = hs.HessianOperator(model, point, x, y, buffers=buffers, batch_size=batch_size, mode=mode,
                            reuse_graph=reuse, batched_backward=batched)
    v = torch.randn(block, op.size, device=x.device)
    call = (lambda: op(v[0])) if block == 1 else (lambda: op.matmat(v))
    call()
    _sync(x.device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        call()
    _sync(x.device)
    return (time.perf_counter() - t0) / (repeats * block)


def timed(solve):
    """(result, wall seconds, CPU seconds of this process) of solve()."""
    t0, c0 = time.perf_counter(), time.process_time()
    res = solve()
    return res, time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--width", type=int, default=None, help="ResNet-20 width (CPU 4, GPU 16)")
    ap.add_argument("--images", type=int, default=None, help="subset size (CPU 128, GPU 5000)")
    ap.add_argument("--batch-size", type=int, default=1000, help="examples per chunk")
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--params", help="use a trained run instead (with --level)")
    ap.add_argument("--level", type=int, default=1)
    ap.add_argument("--ks", default="20,100", help="k values, comma-separated")
    ap.add_argument("--block-sizes", default="2,4,8", help="block Lanczos block sizes")
    ap.add_argument("--tol", type=float, default=1e-3, help="residual tolerance of all solvers")
    ap.add_argument("--relative-to", default="eigenvalue", choices=["eigenvalue", "largest"])
    ap.add_argument("--mode", default="auto",
                    choices=["auto", "double_backward", "forward_over_reverse"],
                    help="hessian.hvp (auto: single products by double backward on the CPU, "
                    "blocks by forward-over-reverse)")
    ap.add_argument("--eigsh-ks", default="20", help="k values at which eigsh runs too")
    ap.add_argument("--reference-tol", type=float, default=1e-8)
    ap.add_argument("--reuse-graph", action="store_true", help="keep first-order graphs")
    ap.add_argument("--no-reference", action="store_true", help="skip the float64 eigsh reference")
    ap.add_argument("--skip-products", action="store_true", help="skip the per-product timings")
    ap.add_argument("--pyhessian", action="store_true", help="pyhessian 0.1 at k = 10 as well")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    args.width = args.width or (16 if gpu else 4)
    args.images = args.images or (5000 if gpu else 128)
    if args.threads:
        torch.set_num_threads(args.threads)
    ks = [int(k) for k in args.ks.split(",")]
    sizes = [int(b) for b in args.block_sizes.split(",")]

    torch.manual_seed(0)
    model, point, x, y, what = trained_point(args, device)
    bs = min(args.batch_size, x.shape[0])
    buffers = PointEvaluator(model, x, y, batch_size=bs).recalibrated_buffers(point)
    name = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} threads"
    print(f"{what}; {point.numel():,} parameters; {x.shape[0]} images in chunks of {bs}; {name}",
          flush=True)

    def operator(dtype=torch.float32, mode=args.mode, reuse=args.reuse_graph):
        return hs.HessianOperator(model, point, x, y, buffers=buffers, batch_size=bs, mode=mode,
                                  reuse_graph=reuse, dtype=dtype)

    if not args.skip_products:
        print("\nseconds per Hessian-vector product (fp32, TF32 off):", flush=True)
        rows = [("double_backward", False, 1, None), ("forward_over_reverse", False, 1, None),
                ("double_backward", True, 1, None)]
        for b in sorted({max(sizes), 8}):
            rows += [("double_backward", False, b, False), ("double_backward", False, b, True),
                     ("forward_over_reverse", False, b, None)]
        for mode, reuse, b, batched in rows:
            label = mode + (", graph kept" if reuse else "") + (
                "" if b == 1 else f", block of {b}" + {None: " (vmap)", True: " (is_grads_batched)",
                                                       False: " (loop on one graph)"}[batched])
            sec = product_seconds(model, point, x, y, buffers, bs, mode, reuse, b, batched)
            print(f"  {label:62s} {sec:.3f}", flush=True)

    results = []
    common = dict(tol=args.tol, relative_to=args.relative_to)
    eigsh_ks = {int(k) for k in args.eigsh_ks.split(",") if k}
    print(f"\n{'k':>4} {'method':22s} {'products':>8} {'blocks':>6} {'passes':>6} {'wall s':>7} "
          f"{'CPU s':>7} {'residual':>9} {'status':>13}", flush=True)
    for k in ks:
        budget = max(8 * k, 80)
        runs = [("lanczos", lambda: hs.lanczos_topk(operator(), k, max_iterations=budget,
                                                   seed=0, **common))]
        for b in sizes:
            runs.append((f"block_lanczos b={b}", lambda b=b: hs.block_lanczos_topk(
                operator(), k, block_size=b, max_iterations=budget, seed=0, **common)))
        if k in eigsh_ks:
            runs.append(("eigsh", lambda: hs.eigsh_topk(operator(), k, tol=args.tol,
                                                        max_iterations=budget, seed=0)))
        for label, solve in runs:
            res, wall, cpu = timed(solve)
            resid = (float((res.residuals / res.eigenvalues.abs()).max()) if label == "eigsh"
                     else res.relative_residual)
            results.append((k, label, res, wall, cpu, resid))
            print(f"{k:4d} {label:22s} {res.n_hvp:8d} {res.n_blocks:6d} {res.n_passes:6d} "
                  f"{wall:7.1f} {cpu:7.1f} {resid:9.1e} {res.status:>13}", flush=True)
    print("(residual: the largest ||Hv - lv|| relative to l (pairs above 1e-3 l_max) or l_max: "
          "the Lanczos bound, never below the fp32 floor, for lthkit; the true one for eigsh; "
          "CPU s: this process)")

    reference = None
    if not args.no_reference:
        ref, wall, _ = timed(lambda: hs.eigsh_topk(operator(torch.float64, "double_backward",
                                                            reuse=True), max(ks),
                                                   tol=args.reference_tol, max_iterations=5000,
                                                   seed=1))
        reference = ref.eigenvalues
        print(f"\nreference: eigsh on float64 products, tol {args.reference_tol:g}: {ref.n_hvp} "
              f"products, {wall:.0f} s, status {ref.status}, largest true residual "
              f"{float((ref.residuals / ref.eigenvalues.abs()).max()):.1e} relative", flush=True)
        print(f"{'k':>4} {'method':22s} {'max rel err':>11} {'V(k) ours':>10} {'V(k) ref':>10} "
              f"{'dV':>7}")
        for k, label, res, *_ in results:
            n = len(res.eigenvalues)
            rel = float(((res.eigenvalues - reference[:n]) / reference[:n].abs()).abs().max())
            ours = hs.log_volume(res.eigenvalues, n, warn=False)
            theirs = hs.log_volume(reference[:n], n, warn=False)
            print(f"{k:4d} {label:22s} {rel:11.1e} {ours:10.3f} {theirs:10.3f} "
                  f"{ours - theirs:+7.3f}")
        print(f"reference top-{len(reference)} (first 10): "
              + " ".join(f"{v:.4g}" for v in reference[:10].tolist())
              + f"; smallest {float(reference[-1]):.4g}")
        a = operator(torch.float32, "double_backward")
        b = operator(torch.float64, "double_backward")
        v = torch.randn(a.size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        h64 = b(v)
        err = float((a(v.float()).double() - h64).norm()) / (float(reference[0]) * float(v.norm()))
        print(f"fp32 product against fp64, relative to lambda_max ||v||: {err:.1e} (the floor "
              f"lthkit trusts: {hs.dtype_floor(torch.float32):.1e})")

    if args.pyhessian:
        out, wall, _ = timed(lambda: hs.pyhessian_topk(model, point, x, y, 10, buffers=buffers,
                                                       batch_size=bs, seed=0))
        rel = "-" if reference is None else (
            f"{float(((out['eigenvalues'] - reference[:10]) / reference[:10]).abs().max()):.1e}")
        print(f"\npyhessian top-10: {out['n_hvp']} products, {wall:.1f} s, largest relative "
              f"error {rel}; per eigenvalue {out['per_eigenvalue']}")


if __name__ == "__main__":
    main()
