"""K networks trained at once (fused, `training.train_group`) against the same K one after another.

For each K, the same K ResNet-20s (each with its own initialization, random 50% mask, tag and data
order) are trained for two epochs one after another with `train` (each replaying its own CUDA
graph on a GPU) and then all at once with `train_group` (the fused step replayed from one CUDA
graph), in one run on the device present. The second epoch's training time is the steady state
(warm-up and graph capture happen in the first), so aggregate images/s = K x images per epoch /
that time. Then the `baselines.group_size: auto` probe runs, to show what it would pick, and the
measured step times project the 60 baseline trainings of `params/resnet20_paper.yaml`.

    python benchmarks/baselines_together.py                              # GPU: paper sizes
    python benchmarks/baselines_together.py --width 4 --images 512 --batch-size 64 \
        --test-images 256 --threads 2                                     # CPU, a few minutes

Prints a table per K (aggregate images/s alone and fused, the ratio, peak GPU memory, the
relative difference of the weights reached), the probe's table, and the projection.
"""

from __future__ import annotations

import argparse
import copy
import math
import time

import torch

from lthkit.config.params import load_params
from lthkit.config.training import DataSection, TrainSection
from lthkit.data.load import load_data
from lthkit.nets.models import build_model
from lthkit.nets.pruning import full_mask, random_prune
from lthkit.train.baselines import baseline_schedule
from lthkit.train.context import resolve_device
from lthkit.train.fused import FusedNetworks
from lthkit.train.training import (Member, evaluate, evaluate_group, probe_group_sizes, train,
                                   train_group)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8, 16],
                        help="group sizes K to measure")
    parser.add_argument("--images", type=int, default=10_240, help="training images (one epoch)")
    parser.add_argument("--test-images", type=int, default=2_000, help="test images (evaluation)")
    parser.add_argument("--width", type=int, default=16, help="ResNet-20 base width (paper: 16)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="bf16",
                        help="the training step's arithmetic on CUDA (train.precision)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model (train.compile) instead of CUDA graphs")
    parser.add_argument("--cudnn-benchmark", action="store_true",
                        help="let cuDNN time its algorithms per shape (torch.backends.cudnn."
                        "benchmark; off in the kit): grouped convolutions may gain from it")
    parser.add_argument("--no-probe", action="store_true", help="skip the group_size auto probe")
    parser.add_argument("--preset", default="params/resnet20_paper.yaml",
                        help="the preset whose baseline trainings are projected")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    data = load_data(DataSection(dataset="synthetic_cifar10", train_size=args.images,
                                 test_size=args.test_images), device)
    cfg = TrainSection(epochs=2, batch_size=args.batch_size, lr=0.05, milestones=[],
                       precision=args.precision, compile=args.compile, eval_every=2,
                       eval_batch_size=1000)
    steps = data.iterations_per_epoch(args.batch_size)
    name = torch.cuda.get_device_name() if cuda else "CPU"
    print(f"device: {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} CPU "
          f"threads; ResNet-20 width {args.width} "
          f"({sum(p.numel() for p in _net(args.width, 0).parameters()):,} parameters), batch "
          f"{args.batch_size}, {args.images:,} images = {steps} steps per epoch, 2 epochs (the "
          f"second timed), precision {args.precision if cuda else 'fp32'}, "
          f"{'torch.compile' if args.compile else 'CUDA graphs' if cuda else 'eager'}"
          f"{', cudnn.benchmark' if args.cudnn_benchmark and cuda else ''}")

    warm = _net(args.width, 999).to(device)  # kernels, allocator, cuDNN choices
    train(warm, data, cfg, seed=0, tag="warm", progress=False)

    rows = []
    print(f"\n{'K':>3} {'alone img/s':>12} {'fused img/s':>12} {'ratio':>6} {'peak MiB alone':>15} "
          f"{'peak MiB fused':>15} {'max rel. diff':>14}")
    for k in args.ks:
        row = _measure(k, args, data, cfg, device)
        rows.append(row)
        print(f"{k:3d} {row['alone_ips']:12.0f} {row['fused_ips']:12.0f} "
              f"{row['fused_ips'] / row['alone_ips']:6.2f} {_mib(row['alone_peak']):>15} "
              f"{_mib(row['fused_peak']):>15} {row['diff']:14.1e}", flush=True)
    best = max(rows, key=lambda r: r["fused_ips"])
    print(f"best K = {best['k']}: {best['fused_ips']:.0f} images/s fused, "
          f"{best['fused_ips'] / rows[0]['alone_ips']:.2f}x one network alone "
          f"({rows[0]['alone_ips']:.0f} images/s; target on one H100: at least 3x)")
    print("max rel. diff: ||w_fused - w_alone|| / ||w_alone|| over the K networks after 2 epochs "
          "(float round-off, amplified by training)")

    if not args.no_probe:
        probe = probe_group_sizes(lambda: _net(args.width, 0), tuple(data.train_x.shape[1:]), cfg,
                                  device, max_k=max(args.ks))
        print("\nbaselines.group_size: auto would see:\n" + probe.table())
    _project(args, rows, data, device)


def _net(width: int, seed: int) -> torch.nn.Module:
    return build_model("resnet20", width, "synthetic_cifar10", seed=seed)


def _measure(k: int, args, data, cfg: TrainSection, device: torch.device) -> dict:
    """Steady-state aggregate images/s of K networks alone (one after another) and fused."""
    models = [_net(args.width, i).to(device) for i in range(k)]
    masks = [random_prune(full_mask(m), fraction=0.5, generator=torch.Generator().manual_seed(i))
             for i, m in enumerate(models)]
    alone = [copy.deepcopy(m) for m in models]
    _reset_peak(device)
    seconds = 0.0
    for i, (model, mask) in enumerate(zip(alone, masks)):
        history = train(model, data, cfg, seed=0, tag=f"bench{i}", mask=mask, progress=False)
        seconds += history[-1]["train_seconds"]
    alone_peak = _peak(device)
    _reset_peak(device)
    members = [Member(m, tag=f"bench{i}", seed=0, mask=mask)
               for i, (m, mask) in enumerate(zip(models, masks))]
    history = train_group(members, data, cfg, progress=False)
    fused_seconds = history[0][-1]["train_seconds"]
    fused_peak = _peak(device)
    diff = max(float((_vector(a) - _vector(b)).norm() / _vector(a).norm())
               for a, b in zip(alone, models))
    images = k * data.iterations_per_epoch(cfg.batch_size) * cfg.batch_size
    return {"k": k, "alone_ips": images / seconds, "fused_ips": images / fused_seconds,
            "alone_step": seconds / (k * data.iterations_per_epoch(cfg.batch_size)),
            "fused_step": fused_seconds / data.iterations_per_epoch(cfg.batch_size),
            "alone_peak": alone_peak, "fused_peak": fused_peak, "diff": diff,
            "alone_eval": _eval_seconds(alone[0], None, data),
            "fused_eval": _eval_seconds(None, FusedNetworks(models), data) if k > 1 else None}


def _eval_seconds(model, fused, data) -> float:
    """Seconds of one test evaluation (per network alone, or of the whole group)."""
    run = (lambda: evaluate(model, data, "test", 1000)) if fused is None else \
        (lambda: evaluate_group(fused, data, "test", 1000))
    run()
    _sync(data.device)
    t0 = time.perf_counter()
    run()
    _sync(data.device)
    return time.perf_counter() - t0


def _project(args, rows: list[dict], data, device: torch.device) -> None:
    """The preset's baseline trainings at the measured step and evaluation times."""
    p = load_params(args.preset)
    n_train, n_test = p.data.train_size or 50_000, p.data.test_size or 10_000  # CIFAR-10's sizes
    levels = len(p.levels(p.baselines.levels, minimum=1))
    classes: dict[tuple, list[int]] = {}
    for kind in p.baselines.kinds:
        start, cfg = baseline_schedule(p, kind)
        ipe = n_train // cfg.batch_size
        key = (cfg.model_dump_json(), start)
        classes.setdefault(key, [0, cfg.epochs * ipe - start, cfg.epochs])
        classes[key][0] += levels
    work = list(classes.values())
    scale = n_test / data.test_x.shape[0]
    same = args.width == (p.model.width or 16) and args.batch_size == p.train.batch_size
    print(f"\nprojected: the {sum(n for n, _, _ in work)} baseline trainings of {args.preset} "
          f"({n_train:,} images, a test evaluation per epoch on {n_test:,}), at this run's step "
          f"and evaluation times{'' if same else ' (NOT the preset sizes: width ' + str(args.width) + ', batch ' + str(args.batch_size) + ')'}; "
          f"checkpoint writes not counted")
    alone = sum(n * (steps * rows[0]["alone_step"] + epochs * rows[0]["alone_eval"] * scale)
                for n, steps, epochs in work)
    print(f"  one after another (K = 1): {alone / 60:8.1f} min")
    for r in rows[1:]:
        k = r["k"]
        total = sum(math.ceil(n / k) * (steps * r["fused_step"] + epochs * r["fused_eval"] * scale)
                    for n, steps, epochs in work)
        print(f"  groups of up to K = {k:2d}:   {total / 60:8.1f} min  ({alone / total:.2f}x)")
    print("  target on one H100: the 60 trainings of resnet20_paper under 45 min")


def _vector(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().float() for p in model.parameters()])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated() / 2 ** 20 if device.type == "cuda" else None


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


if __name__ == "__main__":
    main()
