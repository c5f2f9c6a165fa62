"""Training throughput: lthkit's on-device data path against a plain DataLoader loop.

Both train the same ResNet-20 with the same batch size and optimizer on the device present, in
one run. The plain loop is the usual recipe: a torchvision-style Dataset returning PIL images,
per-image RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor + Normalize in DataLoader
workers, batches copied to the device. lthkit keeps the uint8 images on the device and crops and
flips whole batches there (plus bf16 autocast and channels_last on CUDA).

    python benchmarks/train_throughput.py                 # CIFAR-shaped synthetic data
    python benchmarks/train_throughput.py --images 2048   # a shorter epoch (CPU)

Prints images per second of each and the ratio, and the projected time of a 160-epoch level.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from lthkit.config.training import DataSection, TrainSection
from lthkit.data.load import load_data
from lthkit.nets.models import build_model
from lthkit.train.context import resolve_device
from lthkit.train.training import train


class PilImages(Dataset):
    """uint8 N x C x H x W images served as PIL images, as torchvision's CIFAR10 does."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images = images.permute(0, 2, 3, 1).numpy()
        self.labels = labels.numpy()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def plain_loop_epoch(model, data, cfg: TrainSection, device, workers: int) -> float:
    """One epoch of the plain DataLoader recipe; returns seconds."""
    tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(),
                             transforms.Normalize(data.mean.tolist(), data.std.tolist())])
    loader = DataLoader(PilImages(data.train_x.cpu(), data.train_y.cpu(), tf), batch_size=cfg.batch_size,
                        shuffle=True, drop_last=True, num_workers=workers,
                        pin_memory=device.type == "cuda", persistent_workers=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay)
    model.train()
    _sync(device)
    t0 = time.perf_counter()
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    _sync(device)
    return time.perf_counter() - t0


def lthkit_epoch(model, data, cfg: TrainSection) -> float:
    """One epoch through lthkit.train.training.train, after one untimed epoch of the same call (its
    warm-up steps and graph capture happen there, once per training as in a real level);
    returns the second epoch's training seconds (no evaluation)."""
    history = train(model, data, cfg.model_copy(update={"epochs": 2, "milestones": []}), seed=0,
                    tag="bench", progress=False)
    return history[1]["train_seconds"]


def graph_agrees_with_eager(data, cfg: TrainSection, device) -> str:
    """One epoch from one init with and without the CUDA graph: training losses and weights."""
    out = []
    for graphs in (True, False):
        model = build_model("resnet20", 16, "synthetic_cifar10", seed=1).to(device)
        h = train(model, data, cfg.model_copy(update={"cuda_graphs": graphs}), seed=1, tag="check",
                  progress=False)
        out.append((h[0]["train_loss"], torch.cat([p.detach().flatten() for p in model.parameters()])))
    (la, wa), (lb, wb) = out
    return (f"one epoch, CUDA graph against eager: train loss {la:.4f} against {lb:.4f}, weights "
            f"differ by {float((wa - wb).norm() / wb.norm()):.1e} (relative; bf16 round-off "
            f"amplified by training)")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=None, help="training images per epoch "
                        "(default: 50,000, CIFAR-10's training set)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers of the plain loop")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true", help="torch.compile in lthkit's loop")
    parser.add_argument("--repeats", type=int, default=2, help="epochs timed per loop (best kept)")
    args = parser.parse_args()

    device = resolve_device(args.device)
    data = load_data(DataSection(dataset="synthetic_cifar10", train_size=args.images,
                                 test_size=1000), device)
    cfg = TrainSection(epochs=1, batch_size=args.batch_size, milestones=[], compile=args.compile,
                       eval_batch_size=1000)
    n = data.iterations_per_epoch(args.batch_size) * args.batch_size
    print(f"device: {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(f"ResNet-20 (width 16), batch {args.batch_size}, {n} images per epoch, best of "
          f"{args.repeats} epochs after one warm-up epoch")

    model = build_model("resnet20", 16, "synthetic_cifar10", seed=0).to(device)
    plain_loop_epoch(model, data, cfg, device, args.workers)  # warm-up (workers, cudnn)
    plain = min(plain_loop_epoch(model, data, cfg, device, args.workers) for _ in range(args.repeats))

    model = build_model("resnet20", 16, "synthetic_cifar10", seed=0).to(device)
    lthkit_epoch(model, data, cfg)  # warm-up (and compilation)
    ours = min(lthkit_epoch(model, data, cfg) for _ in range(args.repeats))
    eager = None
    if device.type == "cuda" and cfg.cuda_graphs and not cfg.compile:
        eager_cfg = cfg.model_copy(update={"cuda_graphs": False})
        eager = min(lthkit_epoch(model, data, eager_cfg) for _ in range(args.repeats))

    print(f"plain DataLoader loop ({args.workers} workers): {n / plain:10.0f} images/s  "
          f"({plain:.2f} s/epoch)")
    print(f"lthkit on-device path:                {n / ours:10.0f} images/s  ({ours:.2f} s/epoch)")
    if eager is not None:
        print(f"  the same without the CUDA graph:    {n / eager:10.0f} images/s  ({eager:.2f} s/epoch)")
    print(f"speed-up: {plain / ours:.2f}x")
    if eager is not None:
        print(graph_agrees_with_eager(data, cfg, device))
    per_epoch_50k = ours * 50_000 / n
    print(f"projected 160-epoch ResNet-20 level on 50,000 images: {160 * per_epoch_50k / 60:.1f} min")


if __name__ == "__main__":
    np.random.seed(0)
    main()
