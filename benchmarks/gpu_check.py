"""One command that settles on a GPU what the CPU tests cannot: the kit's CUDA paths.

    python benchmarks/gpu_check.py                  # on a GPU: sized for under 6 minutes on an H100
    python benchmarks/gpu_check.py --cpu-smoke      # tiny sizes on the CPU (the test suite runs it)
    python benchmarks/gpu_check.py --out DIR        # where gpu_check.json and gpu_check.md go
                                                    # (default: $OUT, else outputs/gpu_check)

Every check prints one line, `ok`, `FAILED` or `skipped`, with its figure, and the results are
written after each check (a killed run keeps what it measured). Checks not started within
`--budget` seconds are reported as not run. Nothing is installed: `pip install -e .` is enough.

Correctness (on CUDA against the CPU path or the eager path): a fused group's resume keeps every
optimizer state in its parameter's layout and repeats the straight run; the CUDA-graph step
really updates weights (on cuda:1 too where there is one); K = 4 fused against 4 lone trainings;
fused points against single points; bf16 and tf32 points against fp32; block Lanczos and
single-vector Lanczos against eigsh; forward-over-reverse against double backward on ResNet-20
and VGG-16. Determinism: a straight run against a killed and resumed one, and two straight runs,
with and without `run.deterministic`. Speed, as ratios within this run: aggregate images/s of
K fused networks against the same K one after another, points/s fused against single, block
against single Hessian products per second, each with its peak memory. Then the `auto` choices
the kit makes on this card, and `paper_time.py` on the presets from units measured here.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from lthkit import gpu
from lthkit import hessian as hs  # noqa: E402
from lthkit import training
from lthkit.analysis.hessian.lanczos import Subspace, _basis_device  # noqa: E402
from lthkit.config.training import DataSection, TrainSection  # noqa: E402
from lthkit.data.load import load_data  # noqa: E402
from lthkit.nets.evaluator import PointEvaluator  # noqa: E402
from lthkit.nets.models import build_model  # noqa: E402
from lthkit.nets.pruning import full_mask, random_prune  # noqa: E402
from lthkit.train.training import Checkpoint, GroupProbe, Member, train, train_group  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    """What the checks run at: an H100's few minutes, or the CPU smoke test's seconds."""

    width: int = 16            # ResNet-20 base width (the paper's)
    vgg_width: int = 64        # VGG-16 base width (the paper's)
    train_images: int = 4096
    batch: int = 128
    eval_batch: int = 1000
    group_sizes: tuple[int, ...] = (1, 2, 4, 8, 16)
    points: int = 16           # points per fused pass in the points checks
    point_images: int = 1000
    hessian_images: int = 512
    k: int = 10
    max_products: int = 300
    seconds_per_timing: float = 1.0
    paper_presets: tuple[str, ...] = ("params/resnet20_paper.yaml", "params/vgg16_paper.yaml",
                                      "params/quick.yaml")
    paper_args: tuple[str, ...] = ("--reps", "1", "--warm-steps", "100", "--max-products", "40")


CPU_SMOKE = Sizes(width=8, vgg_width=8, train_images=64, batch=32, eval_batch=64,
                  group_sizes=(1, 2), points=4, point_images=32, hessian_images=32, k=4,
                  max_products=60, seconds_per_timing=0.05,
                  paper_presets=("params/smoke.yaml",),
                  paper_args=("--small", "--small-examples", "16", "--reps", "1",
                              "--warm-steps", "2", "--max-products", "4"))


# --- the runner ----------------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    status: str        # ok | FAILED | skipped | not run
    figure: str
    seconds: float
    data: dict


class Checks:
    """Runs the checks in order, prints a line for each, writes the results after each."""

    def __init__(self, out: Path, budget: float, sizes: Sizes, device: torch.device):
        self.out, self.budget, self.sizes, self.device = out, budget, sizes, device
        self.results: list[Result] = []
        self.t0 = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)

    def run(self, name: str, check: Callable[[], tuple[bool | None, str, dict]]) -> None:
        if time.perf_counter() - self.t0 > self.budget:
            self._add(Result(name, "not run", f"over the --budget of {self.budget:.0f} s", 0.0, {}))
            return
        start = time.perf_counter()
        try:
            ok, figure, data = check()
            status = "skipped" if ok is None else ("ok" if ok else "FAILED")
        except Exception as e:  # a check that crashes is a finding, not the end of the script
            status, figure = "FAILED", f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"
            data = {"traceback": traceback.format_exc()}
        finally:
            _free(self.device)
        self._add(Result(name, status, figure, time.perf_counter() - start, data))

    def _add(self, result: Result) -> None:
        self.results.append(result)
        print(f"{result.status:8s} {result.name}: {result.figure} ({result.seconds:.1f} s)",
              flush=True)
        self.write()

    def write(self) -> None:
        summary = {"device": _device_name(self.device), "torch": torch.__version__,
                   "sizes": asdict(self.sizes), "seconds": time.perf_counter() - self.t0,
                   "results": [asdict(r) for r in self.results]}
        (self.out / "gpu_check.json").write_text(json.dumps(summary, indent=1, default=str))
        lines = [f"# gpu_check on {summary['device']} (torch {torch.__version__})", "",
                 "| check | status | figure | s |", "| --- | --- | --- | ---: |"]
        lines += [f"| {r.name} | {r.status} | {r.figure.replace('|', '/')} | {r.seconds:.1f} |"
                  for r in self.results]
        (self.out / "gpu_check.md").write_text("\n".join(lines) + "\n")


# --- helpers -------------------------------------------------------------------------------------

def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads, {platform.machine()})"


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _peak(device: torch.device):
    """Peak memory (MiB) allocated inside the block, in the yielded dict's "mib" (CUDA only)."""
    got: dict[str, float | None] = {"mib": None}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    yield got
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        got["mib"] = (torch.cuda.max_memory_allocated(device) - base) / 2 ** 20


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _rate(device: torch.device, fn: Callable[[], Any], seconds: float) -> float:
    """Calls of fn per second, after one warm-up call."""
    fn()
    _sync(device)
    calls, t0 = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - t0 < seconds:
        fn()
        calls += 1
    _sync(device)
    return calls / (time.perf_counter() - t0)


def _max_abs_difference(a: dict, b: dict) -> float:
    return max(float((a[n].double() - b[n].double()).abs().max()) for n in a
               if a[n].is_floating_point())


def _state(model) -> dict[str, torch.Tensor]:
    return {n: t.detach().cpu().clone() for n, t in model.state_dict().items()}


class Kit:
    """The data, networks and schedules the checks share."""

    def __init__(self, sizes: Sizes, device: torch.device):
        self.s, self.device = sizes, device
        self.data = load_data(DataSection(dataset="synthetic_cifar10", train_size=sizes.train_images,
                                          test_size=sizes.eval_batch), device)

    def cfg(self, epochs: int = 2, **update) -> TrainSection:
        return TrainSection(epochs=epochs, batch_size=self.s.batch, lr=0.05, momentum=0.9,
                            weight_decay=5e-4, milestones=[], eval_batch_size=self.s.eval_batch,
                            **update)

    def net(self, seed: int = 0, arch: str = "resnet20"):
        width = self.s.width if arch == "resnet20" else self.s.vgg_width
        return build_model(arch, width, "synthetic_cifar10", seed=seed).to(self.device)

    def members(self, k: int) -> list[Member]:
        out = []
        for i in range(k):
            model = self.net(seed=i)
            mask = random_prune(full_mask(model), fraction=0.5,
                                generator=torch.Generator().manual_seed(i))
            out.append(Member(model, tag=f"m{i}", seed=100 + i, mask=mask))
        return out


def _layouts(device: torch.device):
    """On the CPU the CUDA layouts are forced, so that the smoke run takes the CUDA paths."""
    return gpu.force_cuda_layouts() if device.type != "cuda" else contextlib.nullcontext()


# --- correctness -----------------------------------------------------------------------------------

def check_fused_resume(kit: Kit):
    """A fused group killed after epoch 1 and resumed: every state in its parameter's layout, and
    the weights of the straight run (bit for bit where the device repeats itself)."""
    mismatches: list[str] = []
    real = training.make_optimizer

    def recording(model, cfg, device):
        opt = real(model, cfg, device)
        recording.last = opt
        return opt

    def watch(*_):
        opt = recording.last
        for group in opt.param_groups:
            for p in group["params"]:
                for key, v in opt.state.get(p, {}).items():
                    if isinstance(v, torch.Tensor) and v.shape == p.shape and v.stride() != p.stride():
                        mismatches.append(key)

    training.make_optimizer = recording
    try:
        with _layouts(kit.device), tempfile.TemporaryDirectory() as tmp:
            straight = kit.members(2)
            train_group(straight, kit.data, kit.cfg(), progress=False)
            first = kit.members(2)
            for i, m in enumerate(first):
                m.checkpoint = Checkpoint(Path(tmp) / f"m{i}.pt")
            train_group(first, kit.data, kit.cfg(epochs=1), progress=False)
            again = kit.members(2)
            for i, m in enumerate(again):
                m.checkpoint, m.on_epoch = Checkpoint(Path(tmp) / f"m{i}.pt"), watch
            train_group(again, kit.data, kit.cfg(), progress=False)
            alone = kit.members(1)[0]  # member 0's group file, resumed alone
            train(alone.model, kit.data, kit.cfg(), seed=alone.seed, tag=alone.tag,
                  mask=alone.mask, checkpoint=Checkpoint(Path(tmp) / "m0.pt"), on_epoch=watch,
                  progress=False)
    finally:
        training.make_optimizer = real
    diff = max(_max_abs_difference(_state(a.model), _state(b.model))
               for a, b in zip(straight, again))
    ok = not mismatches
    return ok, (f"no crash; {len(mismatches)} state tensors in another layout than their "
                f"parameter; resumed group against straight: max |dw| {diff:.2e}"
                f"{' (bit-identical)' if diff == 0 else ''}"), {"max_abs_dw": diff,
                                                                "mismatches": mismatches}


def check_graph_updates_weights(kit: Kit):
    """The CUDA-graph step changes the weights at every replay, on cuda:0 and (when present)
    cuda:1, and matches the eager step to bf16 rounding."""
    if kit.device.type != "cuda":
        return None, "needs CUDA (the CPU stand-in runs in tests/test_cuda_paths.py)", {}
    devices = [torch.device("cuda:0")] + ([torch.device("cuda:1")]
                                          if torch.cuda.device_count() > 1 else [])
    data = {}
    for device in devices:
        d = load_data(DataSection(dataset="synthetic_cifar10", train_size=kit.s.train_images,
                                  test_size=kit.s.eval_batch), device)
        sums = []
        printed = io.StringIO()

        def hook(i, model):
            if i >= training._GraphedStep.WARMUP:
                sums.append(sum(float(p.detach().double().sum()) for p in model.parameters()))

        finals = {}
        for graphs in (True, False):
            model = build_model("resnet20", kit.s.width, "synthetic_cifar10", seed=3).to(device)
            with contextlib.redirect_stdout(printed):
                history = train(model, d, kit.cfg(epochs=1, cuda_graphs=graphs), seed=0,
                                tag="graph", on_iteration=hook if graphs else None, progress=False)
            finals[graphs] = (history[-1]["train_loss"], _state(model))
        moved = sum(1 for a, b in zip(sums, sums[1:]) if a != b)
        loss_g, loss_e = finals[True][0], finals[False][0]
        data[str(device)] = {"replays_that_moved": moved, "replays": len(sums) - 1,
                             "fallback": "changed no weight" in printed.getvalue(),
                             "loss_graph": loss_g, "loss_eager": loss_e}
    ok = all(v["replays_that_moved"] == v["replays"] and not v["fallback"] and
             abs(v["loss_graph"] - v["loss_eager"]) <= 0.05 * abs(v["loss_eager"])
             for v in data.values())
    return ok, "; ".join(f"{dev}: {v['replays_that_moved']}/{v['replays']} replays changed the "
                         f"weights, loss {v['loss_graph']:.4f} graph / {v['loss_eager']:.4f} eager"
                         + (" (fell back to eager)" if v["fallback"] else "")
                         for dev, v in data.items()), data


def check_fused_against_lone(kit: Kit, k: int = 4):
    """K networks fused against the same K trained alone: loss curves and test accuracy."""
    fused = kit.members(k)
    histories = train_group(fused, kit.data, kit.cfg(), progress=False)
    alone = kit.members(k)
    worst_loss, worst_acc = 0.0, 0.0
    for m, fused_history in zip(alone, histories):
        own = train(m.model, kit.data, kit.cfg(), seed=m.seed, tag=m.tag, mask=m.mask,
                    progress=False)
        for a, b in zip(fused_history, own):
            worst_loss = max(worst_loss, abs(a["train_loss"] - b["train_loss"]) / b["train_loss"])
            worst_acc = max(worst_acc, abs(a["test_acc"] - b["test_acc"]))
    # bf16 autocast on CUDA: a step's rounding differs between grouped and plain convolutions,
    # and training amplifies it; fp32 on the CPU agrees far closer
    tol = (0.05, 0.05) if kit.device.type == "cuda" else (1e-3, 0.02)
    ok = worst_loss <= tol[0] and worst_acc <= tol[1]
    return ok, (f"K = {k}: train loss within {worst_loss:.1e} relative (tolerance {tol[0]:g}), "
                f"test accuracy within {worst_acc:.3f} (tolerance {tol[1]:g})"), \
        {"loss_rel": worst_loss, "acc": worst_acc, "tolerance": tol}


def _points(kit: Kit):
    model = kit.net(seed=5)
    x, y = kit.data.analysis_subset(kit.s.point_images, 0)
    w = PointEvaluator(model, x, y).point(model.state_dict())
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(kit.s.points, w.numel(), generator=g).to(kit.device)
    return model, x, y, w.unsqueeze(0) + 1e-2 * w.norm() / math.sqrt(w.numel()) * noise


def check_fused_points(kit: Kit):
    """P points through one fused network against one by one: losses, points/s, memory."""
    model, x, y, points = _points(kit)
    batch = kit.s.point_images
    fused = PointEvaluator(model, x, y, batch_size=batch, points_per_pass=kit.s.points,
                           use_vmap=True, verbose=False)
    single = PointEvaluator(model, x, y, batch_size=batch, points_per_pass=1, use_vmap=False,
                            verbose=False)
    a, b = fused.losses(points), single.losses(points)
    err = float(((a - b).abs() / b.abs()).max())
    with _peak(kit.device) as mem_f:
        rate_f = kit.s.points * _rate(kit.device, lambda: fused.losses(points),
                                      kit.s.seconds_per_timing)
    with _peak(kit.device) as mem_s:
        rate_s = kit.s.points * _rate(kit.device, lambda: single.losses(points),
                                      kit.s.seconds_per_timing)
    ok = err <= 1e-4
    return ok, (f"{kit.s.points} points on {batch} images: losses within {err:.1e} relative "
                f"(tolerance 1e-4); {rate_f:.1f} points/s fused against {rate_s:.1f} single "
                f"({rate_f / rate_s:.2f}x); peak {_mib(mem_f['mib'])} / {_mib(mem_s['mib'])} MiB"), \
        {"rel_error": err, "points_per_s_fused": rate_f, "points_per_s_single": rate_s,
         "peak_mib_fused": mem_f["mib"], "peak_mib_single": mem_s["mib"]}


def check_precision(kit: Kit):
    """bf16 and tf32 losses at points against fp32 (landscape.dtype)."""
    model, x, y, points = _points(kit)
    losses = {}
    for dtype in ("float32", "tfloat32", "bfloat16"):
        ev = PointEvaluator(model, x, y, batch_size=kit.s.point_images,
                            points_per_pass=kit.s.points, dtype=dtype, verbose=False)
        losses[dtype] = ev.losses(points)
    errs = {d: float(((losses[d] - losses["float32"]).abs() / losses["float32"].abs()).max())
            for d in ("tfloat32", "bfloat16")}
    tol = {"tfloat32": 1e-2, "bfloat16": 5e-2}
    ok = all(errs[d] <= tol[d] for d in errs)
    return ok, (f"largest relative loss error: tf32 {errs['tfloat32']:.1e} (tolerance 1e-2), "
                f"bf16 {errs['bfloat16']:.1e} (tolerance 5e-2)"), {"rel_error": errs}


def _operator(kit: Kit, model, mode: str = "auto"):
    x, y = kit.data.analysis_subset(kit.s.hessian_images, 0)
    ev = PointEvaluator(model, x, y, batch_size=kit.s.hessian_images, verbose=False)
    w = ev.point(model.state_dict())
    return hs.HessianOperator(model, w, x, y, buffers=ev.recalibrated_buffers(w),
                              batch_size=kit.s.hessian_images, mode=mode)


def check_block_hessian(kit: Kit):
    """Top-k by block Lanczos and by single-vector Lanczos against eigsh; products per second of
    blocks against single products, with peak memory."""
    model = kit.net(seed=7)
    train(model, kit.data, kit.cfg(epochs=1), seed=0, tag="hessian", progress=False)
    op = _operator(kit, model)
    values = {}
    for method in ("eigsh", "lanczos", "block_lanczos"):
        res = hs.topk(op, kit.s.k, method=method, max_iterations=kit.s.max_products, tol=1e-4,
                      seed=0, progress=False)
        values[method] = (res.eigenvalues, res.n_hvp, res.seconds)
    ref = values["eigsh"][0]
    scale = float(ref.abs().max())
    errs = {m: float((values[m][0] - ref).abs().max()) / scale for m in ("lanczos", "block_lanczos")}
    v = torch.randn(8, op.size, device=kit.device)
    with _peak(kit.device) as mem_1:
        single = _rate(kit.device, lambda: op(v[0]), kit.s.seconds_per_timing)
    with _peak(kit.device) as mem_b:
        block = 8 * _rate(kit.device, lambda: op.matmat(v), kit.s.seconds_per_timing)
    ok = all(e <= 1e-3 for e in errs.values())
    seconds = {m: values[m][2] for m in values}
    return ok, (f"top-{kit.s.k} on {kit.s.hessian_images} images against eigsh: Lanczos "
                f"{errs['lanczos']:.1e}, block {errs['block_lanczos']:.1e} of lambda_max "
                f"(tolerance 1e-3); products: Lanczos {values['lanczos'][1]} in "
                f"{seconds['lanczos']:.1f} s, block {values['block_lanczos'][1]} in "
                f"{seconds['block_lanczos']:.1f} s; {block:.1f} products/s in blocks of 8 against "
                f"{single:.1f} single ({block / single:.2f}x); peak {_mib(mem_b['mib'])} / "
                f"{_mib(mem_1['mib'])} MiB"), \
        {"rel_error": errs, "products": {m: values[m][1] for m in values}, "seconds": seconds,
         "products_per_s_block": block, "products_per_s_single": single,
         "peak_mib_block": mem_b["mib"], "peak_mib_single": mem_1["mib"], "mode": op.mode}


def check_hvp_modes(kit: Kit):
    """Forward-over-reverse against double backward, ResNet-20 and VGG-16, three vectors."""
    errs = {}
    for arch in ("resnet20", "vgg16"):
        model = kit.net(seed=9, arch=arch)
        fwd, dbl = _operator(kit, model, "forward_over_reverse"), _operator(kit, model,
                                                                            "double_backward")
        g = torch.Generator().manual_seed(1)
        worst = 0.0
        for _ in range(3):
            v = torch.randn(fwd.size, generator=g).to(kit.device)
            a, b = fwd(v), dbl(v)
            worst = max(worst, float((a - b).norm() / b.norm()))
        errs[arch] = worst
        del fwd, dbl, model
        _free(kit.device)
    ok = all(e <= 1e-4 for e in errs.values())
    return ok, ", ".join(f"{a}: {e:.1e}" for a, e in errs.items()) + \
        " relative (tolerance 1e-4)", {"rel_error": errs}


# --- determinism ---------------------------------------------------------------------------------

def check_resume_determinism(kit: Kit):
    """A straight run against a run killed after epoch 1 and resumed, and against a second
    straight run, with and without run.deterministic."""
    out = {}
    try:
        for deterministic in (False, True):
            gpu.set_deterministic(deterministic)
            with tempfile.TemporaryDirectory() as tmp:
                runs = []
                for how in ("straight", "again", "resumed"):
                    m = kit.members(1)[0]
                    if how == "resumed":
                        ckpt = Checkpoint(Path(tmp) / "r.pt")
                        train(m.model, kit.data, kit.cfg(epochs=1), seed=1, tag="d", mask=m.mask,
                              checkpoint=ckpt, progress=False)
                        m = kit.members(1)[0]
                        train(m.model, kit.data, kit.cfg(), seed=1, tag="d", mask=m.mask,
                              checkpoint=ckpt, progress=False)
                    else:
                        train(m.model, kit.data, kit.cfg(), seed=1, tag="d", mask=m.mask,
                              progress=False)
                    runs.append(_state(m.model))
            out["deterministic" if deterministic else "default"] = {
                "repeat_max_abs_dw": _max_abs_difference(runs[0], runs[1]),
                "resume_max_abs_dw": _max_abs_difference(runs[0], runs[2])}
    finally:
        gpu.set_deterministic(False)
    det = out["deterministic"]
    ok = det["repeat_max_abs_dw"] == 0 and det["resume_max_abs_dw"] == 0
    return ok, "; ".join(f"{k}: repeat {v['repeat_max_abs_dw']:.1e}, resume "
                         f"{v['resume_max_abs_dw']:.1e} max |dw|" for k, v in out.items()) + \
        " (run.deterministic must give 0)", out


# --- speed ---------------------------------------------------------------------------------------

def check_fused_training_speed(kit: Kit, state: dict):
    """Aggregate images/s of K fused networks against the same K one after another (K x the step
    of one: that is K = 1's images/s), and peak memory of training with evaluation."""
    rows = []
    make = lambda: build_model("resnet20", kit.s.width, "synthetic_cifar10", seed=0)  # noqa: E731
    for k in kit.s.group_sizes:
        try:
            row = training.time_steps(make, (3, 32, 32), kit.cfg(), kit.device, k,
                                      kit.s.seconds_per_timing)
        except Exception as e:
            if not gpu.is_allocation_failure(e):
                raise
            rows.append({"group_size": k, "images_per_s": None, "step_ms": None,
                         "peak_mib": None, "note": "failed to allocate"})
            break
        rows.append({"group_size": k, **row, "note": ""})
        _free(kit.device)
    state["probe"] = GroupProbe(rows, _device_name(kit.device))
    alone = rows[0]["images_per_s"]
    ratios = {r["group_size"]: r["images_per_s"] / alone for r in rows if r["images_per_s"]}
    best = max(ratios, key=ratios.get)
    return True, (", ".join(f"K={k} {v:.2f}x" for k, v in ratios.items()) +
                  f" aggregate images/s against one after another (best K = {best}; peaks " +
                  ", ".join(f"{r['group_size']}: {_mib(r['peak_mib'])}" for r in rows) +
                  " MiB)"), {"rows": rows, "ratios": ratios}


def check_auto_choices(kit: Kit, state: dict):
    """What the kit's `auto` settings choose on this card."""
    from lthkit.config.params import load_params
    from lthkit.report.workload import baseline_schedule_groups, iterations_per_epoch, train_size

    p = load_params(ROOT / "params" / "resnet20_paper.yaml")
    n = train_size(p.data.dataset, p.data.train_size)
    work = [(len(group), cfg.epochs * iterations_per_epoch(n, cfg.batch_size) - start)
            for start, cfg, group in baseline_schedule_groups(p)]
    probe: GroupProbe | None = state.get("probe")
    group = probe.best(work, p.baselines.group_min_speedup) if probe else None
    model, x, y, _ = _points(kit)
    ev = PointEvaluator(model, x, y, batch_size=kit.s.point_images, points_per_pass="auto",
                        verbose=False)
    points = ev.points_per_pass
    op = _operator(kit, model)
    basis = _basis_device(Subspace(op), 600, "auto")
    choices = {"baselines.group_size": group, "analysis.points_per_pass": points,
               "points_choice": ev.choice, "hessian.method": hs.resolve_method("auto", kit.device),
               "hessian.hvp": hs.resolve_hvp_mode("auto", kit.device),
               "hessian.basis_device (600 vectors)": str(basis),
               "memory_budget_mib": (gpu.memory_budget(kit.device) or 0) / 2 ** 20}
    return True, ", ".join(f"{k} {v}" for k, v in choices.items() if k != "points_choice"), choices


def check_paper_time(kit: Kit, out: Path):
    """benchmarks/paper_time.py on the presets, from units measured here."""
    import paper_time

    target = out / "paper_time.json"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        paper_time.main([*(str(ROOT / p) for p in kit.s.paper_presets), *kit.s.paper_args,
                         "--device", str(kit.device), "--json", str(target)])
    (out / "paper_time.txt").write_text(printed.getvalue())
    totals = {Path(k).stem: v["total_minutes"] for k, v in json.loads(target.read_text()).items()}
    return True, ", ".join(f"{k} {v:,.1f} min" for k, v in totals.items()) + \
        " projected (paper_time.txt has the tables)", {"total_minutes": totals}


# --- the command ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--budget", type=float, default=330.0, help="seconds after which no "
                        "further check starts")
    parser.add_argument("--skip", nargs="*", default=[], help="checks to leave out")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or Path(os.environ.get("OUT") or ROOT / "outputs" / "gpu_check")
    if args.cpu_smoke:
        device, sizes = torch.device("cpu"), CPU_SMOKE
    else:
        if not torch.cuda.is_available():
            print("no CUDA device here: run with --cpu-smoke for the CPU's tiny version")
            return 2
        device, sizes = torch.device("cuda:0"), Sizes()
    torch.manual_seed(0)
    kit = Kit(sizes, device)
    checks = Checks(out, args.budget, sizes, device)
    print(f"gpu_check on {_device_name(device)}, torch {torch.__version__}; results in {out}",
          flush=True)
    state: dict = {}
    plan = [("fused_group_resume", lambda: check_fused_resume(kit)),
            ("graph_updates_weights", lambda: check_graph_updates_weights(kit)),
            ("resume_determinism", lambda: check_resume_determinism(kit)),
            ("fused_against_lone", lambda: check_fused_against_lone(kit)),
            ("fused_points", lambda: check_fused_points(kit)),
            ("precision", lambda: check_precision(kit)),
            ("block_hessian", lambda: check_block_hessian(kit)),
            ("hvp_modes", lambda: check_hvp_modes(kit)),
            ("fused_training_speed", lambda: check_fused_training_speed(kit, state)),
            ("auto_choices", lambda: check_auto_choices(kit, state)),
            ("paper_time", lambda: check_paper_time(kit, out))]
    for name, check in plan:
        if name not in args.skip:
            checks.run(name, check)
    failed = [r.name for r in checks.results if r.status == "FAILED"]
    print(f"{len(checks.results) - len(failed)} of {len(checks.results)} checks not failed in "
          f"{time.perf_counter() - checks.t0:.0f} s" + (f"; FAILED: {', '.join(failed)}"
                                                         if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
