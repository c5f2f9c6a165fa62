"""Where the time of the kit's GPU primitives goes: launch overhead or kernels.

For a training step, a Hessian-vector product (both modes) and a batched loss evaluation of
ResNet-20 (width 16) on 1,000 images, prints the wall time per call with cudnn.benchmark off and
on, and, from torch.profiler, the CPU time against the summed CUDA kernel time and the top
kernels. A call whose wall time is far above its kernel time is bound by launches (fix: fewer,
fused kernels, torch.compile, CUDA graphs); one close to it is bound by the kernels themselves.

    python benchmarks/profile_gpu.py [--images 1000] [--top 6]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, jvp
from torch.profiler import ProfilerActivity, profile

from lthkit.nets.evaluator import PointEvaluator
from lthkit.nets.models import build_model
from lthkit.nets.points import ParamLayout


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, repeats: int = 5) -> float:
    fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - t0) / repeats


def show_profile(name: str, fn, top: int) -> None:
    fn()
    sync()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        fn()
        sync()
        wall = time.perf_counter() - t0
    events = prof.key_averages()
    kernel = sum(e.self_device_time_total for e in events) / 1e6
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel",
                                                        "cudaLaunchKernelExC"))
    print(f"\n{name}: wall {wall * 1e3:.1f} ms, CUDA kernels {kernel * 1e3:.1f} ms, "
          f"{launches} launches")
    rows = sorted((e for e in events if e.self_device_time_total > 0),
                  key=lambda e: -e.self_device_time_total)[:top]
    for e in rows:
        print(f"   {e.self_device_time_total / 1e3:8.2f} ms  x{e.count:<5d} {e.key[:90]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--top", type=int, default=6)
    args = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model("resnet20", 16, "synthetic_cifar10", seed=0).to(dev)
    layout = ParamLayout.from_model(model)
    point = layout.flatten(dict(model.named_parameters())).detach()
    buffers = {n: b for n, b in model.named_buffers()}
    x = torch.randn(args.images, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (args.images,), device=dev)
    v = torch.randn_like(point)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xb, yb = x[:128], y[:128]

    def train_step(bf16: bool, channels_last: bool):
        def step():
            xx = xb.contiguous(memory_format=torch.channels_last) if channels_last else xb
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16 and dev.type == "cuda"):
                loss = F.cross_entropy(model(xx), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    def loss_at(w):
        out = functional_call(model, {**layout.unflatten(w), **buffers}, (x,))
        return F.cross_entropy(out, y)

    def hvp_double():
        w = point.detach().requires_grad_()
        (g,) = torch.autograd.grad(loss_at(w), w, create_graph=True)
        torch.autograd.grad(g, w, v)

    def hvp_fwd_rev():
        jvp(grad(loss_at), (point,), (v,))

    model.eval()
    evaluator = PointEvaluator(model, x, y, batch_size=args.images, recalibrate_bn=True,
                               points_per_pass=16, use_vmap=True)
    single = PointEvaluator(model, x, y, batch_size=args.images, recalibrate_bn=True,
                            use_vmap=False)
    points16 = point[None] + 0.01 * torch.randn(16, point.numel(), device=dev)

    cases = {
        "train step fp32 (batch 128)": train_step(False, False),
        "train step bf16 + channels_last": train_step(True, True),
        f"HVP double backward ({args.images} images)": hvp_double,
        f"HVP forward-over-reverse ({args.images} images)": hvp_fwd_rev,
        f"loss of 16 points, vmap ({args.images} images)": lambda: evaluator.evaluate(points16),
        "loss of 16 points, one by one": lambda: single.evaluate(points16),
    }
    print(f"{torch.cuda.get_device_name() if dev.type == 'cuda' else 'CPU'}, torch {torch.__version__}; ms per call")
    print(f"{'':48s} {'benchmark off':>14s} {'on':>8s} {'on, no TF32':>12s}")
    for name, fn in cases.items():
        model.train(name.startswith("train"))
        torch.backends.cudnn.benchmark = False
        off = timed(fn)
        torch.backends.cudnn.benchmark = True
        on = timed(fn)
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        strict = timed(fn)
        torch.backends.cudnn.allow_tf32 = True
        print(f"{name:48s} {off * 1e3:14.1f} {on * 1e3:8.1f} {strict * 1e3:12.1f}", flush=True)
    torch.backends.cudnn.benchmark = True
    for name, fn in cases.items():
        model.train(name.startswith("train"))
        show_profile(name, fn, args.top)


if __name__ == "__main__":
    main()
