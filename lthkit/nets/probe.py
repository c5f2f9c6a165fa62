"""points_per_pass "auto": how many points go through the network together, from memory and, on
CUDA, a short speed probe on the evaluator's own examples (the choice and why are printed)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import Tensor

from lthkit.nets.batchnorm import fresh_statistics
from lthkit.platform.device import is_allocation_failure, memory_budget
from lthkit.platform.errors import first_line

if TYPE_CHECKING:
    from lthkit.nets.evaluator import PointEvaluator

__all__ = ["choose_points_per_pass", "probe_speed", "memory_cap", "CPU_POINTS_PER_PASS",
           "PROBE_BUDGET_S", "PROBE_MAX_POINTS"]

_PROBED: dict[tuple, tuple[int, str]] = {}  # points_per_pass "auto", per process and setting
PROBE_BUDGET_S = 5.0  # wall seconds the "auto" speed probe may take (it stops early past this)
PROBE_MAX_POINTS = 256
CPU_POINTS_PER_PASS = 8  # "auto" on the CPU (see choose_points_per_pass)


def choose_points_per_pass(ev: "PointEvaluator", probe: bool | None = None) -> tuple[int, str]:
    """P from memory and, on CUDA (or with `probe`), a short speed probe: (P, why).

    Probe: blocks of 1, 2, 4, ... points, as many as memory holds with room to spare, each
    timed once after a warm-up on this evaluator's own examples; doubling stops when a block
    is no longer 10% faster per point than the best so far, or after PROBE_BUDGET_S. The
    fastest per point wins, or the smallest within 5% of it. On the CPU, without a probe,
    P = CPU_POINTS_PER_PASS (block sizes 2 to 16 measured within noise of each other there,
    and a probe would cost more than it saves). Once per process and setting. Without
    fusion (use_vmap off) P = 1: a loop gains nothing from blocks.
    """
    probe = ev.device.type == "cuda" if probe is None else probe
    key = (str(ev.device), ev.layout.size, tuple(ev.x.shape), ev.batch_size,
           ev.one_pass, ev.recalibrate, ev.precision, ev.fused, probe)
    if key in _PROBED:
        return _PROBED[key]
    if not ev.fused:
        result = (1, "points_per_pass auto: 1 (points go one by one: fusion is off)")
    else:
        cap, memory_note = memory_cap(ev)
        if probe:
            result = probe_speed(ev, cap, memory_note)
        else:
            chosen = min(CPU_POINTS_PER_PASS, cap)
            result = (chosen, f"points_per_pass auto: {chosen} ({ev.device.type}: fixed "
                              f"size, no speed probe; {memory_note})")
    _PROBED[key] = result
    return result

def probe_speed(ev: "PointEvaluator", cap: int, memory_note: str) -> tuple[int, str]:
    center = ev.layout.flatten(ev.model.state_dict()).to(ev.device)
    rates: dict[int, float] = {}
    start, p = time.perf_counter(), 1
    failed = ""
    while p <= min(cap, PROBE_MAX_POINTS):
        block = center.expand(p, -1).contiguous()
        try:
            ev._evaluate_block(block, None)  # warm-up: allocator, cuDNN algorithm choice
            rates[p] = p / _timed(ev.device, lambda: ev._evaluate_block(block, None))
        except Exception as e:
            if not is_allocation_failure(e) or not rates:
                raise
            failed = f"; {p} points failed to allocate ({first_line(e, 160)}): stopped at {p // 2}"
            _release(ev.device)
            break
        best_before = max((r for q, r in rates.items() if q < p), default=0.0)
        if ((p > 1 and rates[p] < 1.1 * best_before)
                or time.perf_counter() - start > PROBE_BUDGET_S):
            break
        p *= 2
    best = max(rates.values())
    chosen = min(q for q, r in rates.items() if r >= 0.95 * best)
    table = ", ".join(f"{q}: {r:.3g}" for q, r in rates.items())
    return chosen, (f"points_per_pass auto: {chosen} (points/s by block size {{{table}}} on "
                    f"{ev.device.type}, {ev.x.shape[0]} examples; {memory_note}{failed})")

def memory_cap(ev: "PointEvaluator") -> tuple[int, str]:
    """Most points per pass that memory holds with room to spare, and how that was found.

    CUDA: the peak memory of blocks of 1 and 2 points, against half of the memory this task
    may use (`gpu.memory_budget`: the free memory, or the task's share of the card); a block
    of 2 that fails to allocate leaves 1. CPU: four times the largest activation of one
    point, against a quarter of the memory available.
    """
    center = ev.layout.flatten(ev.model.state_dict()).to(ev.device)
    if ev.device.type == "cuda":
        peaks = []
        for p in (1, 2):
            torch.cuda.synchronize(ev.device)
            torch.cuda.reset_peak_memory_stats(ev.device)
            base = torch.cuda.memory_allocated(ev.device)
            try:
                ev._evaluate_block(center.expand(p, -1).contiguous(), None)
            except Exception as e:
                if not is_allocation_failure(e) or p == 1:
                    raise
                _release(ev.device)
                return 1, f"memory: 2 points failed to allocate ({first_line(e, 160)}): 1"
            peaks.append(torch.cuda.max_memory_allocated(ev.device) - base)
        per_point = max(peaks[1] - peaks[0], 1)
        budget = memory_budget(ev.device)
        cap = max(1, int((0.5 * budget - peaks[0]) // per_point))
        return cap, (f"memory: {per_point / 2**20:.0f} MiB per point, room for {cap} in "
                     f"{budget / 2**20:.0f} MiB")
    per_point = 4 * largest_activation_bytes(ev)
    available = _available_memory_bytes()
    cap = max(1, int(0.25 * available // per_point))
    return cap, f"memory: ~{per_point / 2**20:.0f} MiB per point, room for {cap}"


def largest_activation_bytes(ev: "PointEvaluator") -> int:
    """Bytes of the largest output of any layer for one point on one chunk of examples
    (the one-pass mode's chunk holds all of them)."""
    largest = [0]

    def hook(_m, _i, out):
        if isinstance(out, Tensor):
            largest[0] = max(largest[0], out.numel() * out.element_size())

    leaves = [m for m in ev.model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    params = ev.layout.unflatten(ev.layout.flatten(ev.model.state_dict()).to(ev.device))
    xb, yb = next(ev._chunks())
    try:
        with ev._passes():  # one forward over the largest chunk a pass takes
            fresh = fresh_statistics(ev._bn.layers, 1, ev.device)
            ev._loss(params, {k: (m[0], v[0]) for k, (m, v) in fresh.items()}, xb, yb)
    finally:
        for h in handles:
            h.remove()
    return max(largest[0], 1)


def _available_memory_bytes() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil comes with jupyter
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _release(device: torch.device) -> None:
    """Give the cached blocks of a failed allocation back (CUDA)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()




def _timed(device: torch.device, fn: Callable[[], Any]) -> float:
    """Wall seconds of fn(), the device synchronized on both sides."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0
