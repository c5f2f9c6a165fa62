"""K baselines of one level trained together (vmap) against K trained one after another.

Same networks (ResNet-20, each with its own random mask of 50% and its own data order), same
batch, same number of iterations, in one run on the device present:

    python benchmarks/baselines_together.py              # K = 4 (the kinds sharing a schedule)
    python benchmarks/baselines_together.py --k 2 --images 1024 --width 8     # a short CPU run

Prints the wall time of each way, the ratio, and the relative difference of the weight vectors
the two ways reach (float round-off, amplified by training: grouped convolutions sum in another
order).
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from lthkit.context import resolve_device
from lthkit.data import load_data
from lthkit.models import build_model
from lthkit.params import DataSection, TrainSection
from lthkit.pruning import full_mask, random_prune
from lthkit.training import train, train_together


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=4, help="networks trained together")
    parser.add_argument("--images", type=int, default=4096, help="training images (one epoch)")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    device = resolve_device(args.device)
    data = load_data(DataSection(dataset="synthetic_cifar10", train_size=args.images,
                                 test_size=256), device)
    cfg = TrainSection(epochs=1, batch_size=args.batch_size, milestones=[], bf16=False,
                       eval_batch_size=256)
    models = [build_model("resnet20", args.width, "synthetic_cifar10", seed=i).to(device)
              for i in range(args.k)]
    masks = [random_prune(full_mask(m), fraction=0.5, generator=torch.Generator().manual_seed(i))
             for i, m in enumerate(models)]
    tags = [f"bench{i}" for i in range(args.k)]
    alone = [copy.deepcopy(m) for m in models]
    iterations = data.iterations_per_epoch(args.batch_size)
    print(f"device: {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}), "
          f"{torch.get_num_threads()} CPU threads; ResNet-20 width {args.width}, batch "
          f"{args.batch_size}, {iterations} iterations each, K = {args.k}")

    warm = copy.deepcopy(models[0])  # warm-up: kernels, allocator
    train(warm, data, cfg, seed=0, tag="warm", progress=False)
    _sync(device)
    t0 = time.perf_counter()
    for model, mask, tag in zip(alone, masks, tags):
        train(model, data, cfg, seed=0, tag=tag, mask=mask, progress=False)
    _sync(device)
    sequential = time.perf_counter() - t0

    t0 = time.perf_counter()
    train_together(models, data, cfg, seed=0, tags=tags, masks=masks, progress=False)
    _sync(device)
    together = time.perf_counter() - t0

    diff = max(float((_vector(a) - _vector(b)).norm() / _vector(a).norm())
               for a, b in zip(alone, models))
    print(f"one after another: {sequential:8.2f} s")
    print(f"together (vmap):   {together:8.2f} s")
    print(f"speed-up of training together: {sequential / together:.2f}x")
    print(f"relative difference of the weight vectors, ||w_together - w_alone|| / ||w_alone||: "
          f"{diff:.2e}")


def _vector(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().float() for p in model.parameters()])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
