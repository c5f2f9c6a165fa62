"""What recording and checking a SHA-256 per artifact costs: lthkit.store against plain torch.

    python benchmarks/store_checksums.py [--repeats 20]

For the state dict of a full-width ResNet-20 (~1.1 MB) and of VGG-16 (~59 MB), prints the median
time of: torch.save to a file, lthkit.store.save_tensors (in-memory serialization, temporary file,
fsync, rename, SHA256SUMS updated under a folder lock); torch.load, lthkit.store.load_tensors
(read, SHA-256 checked, load). Both writers fsync, as the kit did before checksums.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from lthkit.nets.models import build_model
from lthkit.store.files import load_tensors, save_tensors


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _plain_save(path: Path, obj) -> None:
    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for arch in ("resnet20", "vgg16"):
            state = {k: v.clone() for k, v in
                     build_model(arch, None, "cifar10", seed=0).state_dict().items()}
            plain, kit = folder / f"{arch}_plain.pt", folder / f"{arch}_kit.pt"
            t_save = _median(lambda: _plain_save(plain, state), args.repeats)
            t_kit_save = _median(lambda: save_tensors(kit, state), args.repeats)
            t_load = _median(lambda: torch.load(plain, weights_only=True), args.repeats)
            t_kit_load = _median(lambda: load_tensors(kit), args.repeats)
            mb = plain.stat().st_size / 1e6
            print(f"{arch:9s} {mb:6.1f} MB  save: torch {1e3 * t_save:7.1f} ms, kit "
                  f"{1e3 * t_kit_save:7.1f} ms ({t_kit_save / t_save:.2f}x)  load: torch "
                  f"{1e3 * t_load:7.1f} ms, kit {1e3 * t_kit_load:7.1f} ms "
                  f"({t_kit_load / t_load:.2f}x)")


if __name__ == "__main__":
    main()
