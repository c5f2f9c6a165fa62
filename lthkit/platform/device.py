"""What the kit's CUDA paths share: the device they act on, its memory budget, allocation
failures, deterministic algorithms, and the layouts that the CUDA paths use.

- `on_device(device)`: CUDA calls that act on the *current* device (graph capture, streams,
  synchronize) are made under `torch.cuda.device(device)`, so `run.device: cuda:1` captures on
  cuda:1, not on cuda:0.
- `memory_budget(device)`: the bytes a probe may plan with: the free memory of the card plus
  what PyTorch's caching allocator holds reserved but unused (the driver counts that as taken),
  capped at this task's share of the card (a Ray task holding 0.25 GPU sizes itself to a quarter
  of the card, not to the whole of it, since the tasks sharing it start at once).
- `is_allocation_failure(error)`: out of memory in any of its forms (cuDNN and cuBLAS report a
  failed allocation as a RuntimeError, not as torch.cuda.OutOfMemoryError); nothing else (an
  unsupported or failing kernel is a real error, not a full card).
- `set_deterministic(on)`: `run.deterministic`, deterministic algorithms on CUDA.
- `tf32(allowed)`: TF32 for CUDA convolutions and matrix products on or off inside a block
  (torch lets cuDNN use TF32 by default, so fp32 without it is not IEEE fp32);
  `effective_precision(precision, device)`: what `train.precision` gives on a device;
  `cudnn_benchmark()`: cuDNN times its algorithms inside a block (fused groups' convolutions),
  unless deterministic algorithms are on.
- `cuda_layouts(device)`: whether the CUDA-only layouts (channels_last) apply; tests force them on
  the CPU with `force_cuda_layouts()` so that the code paths a GPU takes run in CI.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch

__all__ = ["on_device", "memory_budget", "set_gpu_share", "gpu_share", "is_allocation_failure",
           "set_deterministic", "cuda_layouts", "force_cuda_layouts", "GPU_SHARE_ENV",
           "cuda_memory", "tf32", "effective_precision", "PRECISION_WORDS",
           "cudnn_benchmark"]

GPU_SHARE_ENV = "LTHKIT_GPU_SHARE"  # set in a Ray task holding a fraction of a GPU
_share: float | None = None
_forced_layouts = False

# Only the words of a failed allocation: CUDNN_STATUS_NOT_SUPPORTED (an unsupported convolution),
# CUDNN_STATUS_INTERNAL_ERROR and CUBLAS_STATUS_NOT_INITIALIZED (a broken library or driver) are
# real errors, and read as "out of memory" they would stop a probe at a K that merely failed.
_ALLOCATION_MESSAGES = ("out of memory", "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED",
                        "cudaErrorMemoryAllocation", "CUFFT_ALLOC_FAILED")


def on_device(device: torch.device | str):
    """A context in which CUDA's current device is `device` (nothing for other devices)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.device(device)
    return contextlib.nullcontext()


def set_gpu_share(share: float | None) -> None:
    """The fraction of a GPU this process may plan with (None: the environment's, else all)."""
    global _share
    if share is not None and not 0 < share <= 1:
        raise ValueError(f"a GPU share is in (0, 1], not {share}")
    _share = share


def gpu_share() -> float:
    """This process's share of its GPU: `set_gpu_share`, else $LTHKIT_GPU_SHARE, else 1."""
    if _share is not None:
        return _share
    raw = os.environ.get(GPU_SHARE_ENV)
    try:
        value = float(raw) if raw else 1.0
    except ValueError:
        return 1.0
    return value if 0 < value <= 1 else 1.0


def cuda_memory(device: torch.device) -> tuple[int, int, int, int]:
    """(free, total, reserved by this process, allocated by this process) bytes of a CUDA device
    (tests replace it). Reserved less allocated is PyTorch's cache: free to this process, taken
    to the driver."""
    free, total = torch.cuda.mem_get_info(device)
    return (int(free), int(total), int(torch.cuda.memory_reserved(device)),
            int(torch.cuda.memory_allocated(device)))


def memory_budget(device: torch.device | str) -> int | None:
    """Bytes a probe may plan with on `device`: the driver's free memory plus the blocks PyTorch
    holds free in its cache (after training in the same kernel that cache can be tens of GB),
    capped at this task's share of the card less what this process has allocated; None off CUDA
    (the CPU's is not probed here)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    free, total, reserved, allocated = cuda_memory(device)
    usable = free + max(0, reserved - allocated)
    share = gpu_share()
    if share >= 1:
        return usable
    return max(0, min(usable, int(share * total) - allocated))


def is_allocation_failure(error: BaseException) -> bool:
    """Whether `error` is a failed allocation on an accelerator, in any library's words."""
    if isinstance(error, torch.cuda.OutOfMemoryError | MemoryError):
        return True
    if not isinstance(error, RuntimeError):
        return False
    text = str(error)
    return any(m in text for m in _ALLOCATION_MESSAGES)


def set_deterministic(on: bool) -> None:
    """`run.deterministic`: deterministic algorithms everywhere torch has them (an op without one
    raises), cuDNN's benchmark off, cuBLAS with a fixed workspace. Off restores torch's default."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.deterministic = on
    if on:
        torch.backends.cudnn.benchmark = False


@contextlib.contextmanager
def tf32(allowed: bool) -> Iterator[None]:
    """TF32 allowed (or not) for CUDA matrix products and cuDNN convolutions inside the block,
    then both flags as they were. Off: every product is IEEE fp32."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@contextlib.contextmanager
def cudnn_benchmark() -> Iterator[None]:
    """cuDNN times its algorithms for each new shape inside the block (torch.backends.cudnn.
    benchmark), unless deterministic algorithms are on (`run.deterministic`); then as before.
    Its heuristics often pick slow kernels for grouped convolutions (the fused groups')."""
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = not torch.are_deterministic_algorithms_enabled()
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


PRECISION_WORDS = {"fp32": "IEEE fp32, TF32 off", "tf32": "convolutions and matrix products in "
                   "TF32", "bf16": "bf16 autocast"}


def effective_precision(precision: str, device: torch.device) -> str:
    """The arithmetic `train.precision` gives a training step on `device`: as asked on CUDA, fp32
    elsewhere (the CPU has no TF32, and bf16 autocast is used on CUDA only)."""
    return precision if torch.device(device).type == "cuda" else "fp32"


def cuda_layouts(device: torch.device) -> bool:
    """Whether the CUDA-only memory layouts apply on `device` (or are forced by a test)."""
    return device.type == "cuda" or _forced_layouts


@contextlib.contextmanager
def force_cuda_layouts() -> Iterator[None]:
    """Test switch: take the CUDA-only layouts (channels_last) on the CPU too."""
    global _forced_layouts
    before, _forced_layouts = _forced_layouts, True
    try:
        yield
    finally:
        _forced_layouts = before
