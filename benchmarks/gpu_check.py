"""One command that settles on a GPU what the CPU tests cannot: the kit's CUDA paths.

    python benchmarks/gpu_check.py                  # on a GPU: within --budget (330 s) on an H100
    python benchmarks/gpu_check.py --cpu-smoke      # tiny sizes on the CPU (the test suite runs it)
    python benchmarks/gpu_check.py --out DIR        # where its files go
                                                    # (default: $OUT, else outputs/gpu_check)

It reports whatever happens (benchmarks/check_runner.py runs the checks): each check has a
wall-clock limit (`LIMITS`, never past the budget) and the whole script ends within --budget
seconds, its imports included; a check over its limit is killed (FAILED, timed out), one not
started in time is "not run". Each check's output streams to logs/<check>.txt as it comes and
its result lands in checks/<check>.json; gpu_check.json and gpu_check.md (the summary) are
rewritten atomically after every result. A check that raises anything, or whose process dies (a
crash, or a sticky CUDA error such as an illegal address, which fails every later CUDA call), is
FAILED with its error or the last lines of its log, and the checks left go on in a fresh
process. Without CUDA (no GPU, or a driver too old for this torch wheel) gpu_check.json says
why. Every check prints one line, `ok`, `FAILED`, `skipped` or `not run`, with its figure.
Nothing is installed: `pip install -e .` is enough.

Correctness (on CUDA against the CPU path or the eager path): a fused group's resume keeps every
optimizer state in its parameter's layout, resumes (its first epoch read back, not retrained,
from other start weights) and repeats the straight run; the CUDA-graph step really updates
weights (on cuda:1 too where there is one); K = 4 fused against 4 lone trainings, step by step in
fp32 (the bf16 epochs reported beside); fused points against single points; bf16 and tf32 points
against fp32; block Lanczos and single-vector Lanczos against eigsh (capped in products, only its
converged values compared); forward-over-reverse against double backward on ResNet-20 and
VGG-16. Determinism: two straight runs must repeat bit for bit under run.deterministic; a run
killed after epoch 1 and resumed (into other start weights) must run only the epochs left; how far
it ends from the straight run is reported, with and without CUDA graphs. Speed, as ratios within
this run: aggregate images/s of K fused networks (both layouts) against the same K one after
another, points/s fused against single, block against single Hessian products per second, each
with its peak memory, and one network's training step in each train.precision. Then the `auto`
choices the kit makes on this card, and `paper_time.py` on the presets from units measured here,
with the time left as its deadline.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

_START = time.time()  # before torch is imported: the budget counts its import too

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from lthkit.platform import device as gpu  # noqa: E402
from lthkit.analysis import hessian as hs  # noqa: E402
from lthkit.train import training  # noqa: E402
from lthkit.analysis.hessian.lanczos import Subspace, _basis_device  # noqa: E402
from lthkit.config.training import DataSection, TrainSection  # noqa: E402
from lthkit.data.load import load_data  # noqa: E402
from lthkit.nets.evaluator import PointEvaluator  # noqa: E402
from lthkit.nets.models import build_model  # noqa: E402
from lthkit.nets.pruning import full_mask, random_prune  # noqa: E402
from lthkit.platform.errors import first_line  # noqa: E402
from lthkit.store.files import load_tensors, save_tensors  # noqa: E402
from lthkit.train.training import Checkpoint, GroupProbe, Member, train, train_group  # noqa: E402

from check_runner import Check, Report, Result, orchestrate, read_json, work  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    """What the checks run at: an H100's few minutes, or the CPU smoke test's seconds."""

    width: int = 16            # ResNet-20 base width (the paper's)
    vgg_width: int = 64        # VGG-16 base width (the paper's)
    train_images: int = 4096
    batch: int = 128
    eval_batch: int = 1000
    group_sizes: tuple[int, ...] = (1, 2, 4, 8, 16)
    fp32_steps: int = 6        # steps of fused against lone training compared one by one
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
                  group_sizes=(1, 2), fp32_steps=4, points=4, point_images=32, hessian_images=32,
                  k=4, max_products=60, seconds_per_timing=0.05,
                  paper_presets=("params/smoke.yaml",),
                  paper_args=("--small", "--small-examples", "16", "--reps", "1",
                              "--warm-steps", "2", "--max-products", "4"))

# Wall-clock limit of each check, seconds (a check also never runs past the --budget). Sized for
# an H100 at `Sizes()` with room for a slow first CUDA call; the CPU smoke run takes a tenth.
LIMITS = {"fused_group_resume": 60, "graph_updates_weights": 60, "resume_determinism": 90,
          "fused_against_lone": 60, "fused_points": 45, "precision": 30, "block_hessian": 90,
          "hvp_modes": 45, "fused_training_speed": 90, "training_precision": 45,
          "auto_choices": 45, "paper_time": None}
# the CPU smoke run's limits are these times SMOKE_LIMIT_SCALE: a CPU shared with other jobs can
# be ten times slower than an idle one, and there the --budget is what bounds the run
SMOKE_LIMIT_SCALE = 5.0


# --- the plan, the parent, the child -------------------------------------------------------------

def _plan() -> list[Check]:
    checks = [("fused_group_resume", check_fused_resume),
              ("graph_updates_weights", check_graph_updates_weights),
              ("resume_determinism", check_resume_determinism),
              ("fused_against_lone", check_fused_against_lone),
              ("fused_points", check_fused_points), ("precision", check_precision),
              ("block_hessian", check_block_hessian), ("hvp_modes", check_hvp_modes),
              ("fused_training_speed", check_fused_training_speed),
              ("training_precision", check_training_precision),
              ("auto_choices", check_auto_choices), ("paper_time", check_paper_time)]
    return [Check(name, fn, LIMITS[name]) for name, fn in checks]


def _load_plan(spec: str | None, scale: float) -> tuple[list[Check], Callable | None]:
    """The checks (limits times `scale`) and the device-health probe: this script's, or
    `module:attribute` (tests give stand-ins; the module may define `device_fault()` too)."""
    if spec:
        module_name, _, attribute = spec.partition(":")
        module = importlib.import_module(module_name)
        return list(getattr(module, attribute)), getattr(module, "device_fault", None)
    return [Check(c.name, c.run, None if c.limit is None else scale * c.limit)
            for c in _plan()], None


def _header(args: argparse.Namespace, sizes: Sizes) -> dict:
    return {"torch": torch.__version__, "cuda_build": torch.version.cuda,
            "cpu_smoke": args.cpu_smoke, "budget_s": args.budget, "sizes": asdict(sizes)}


def _child_command(args: argparse.Namespace, out: Path) -> Callable[[list[str], float], list[str]]:
    def command(names: list[str], end_at: float) -> list[str]:
        line = [sys.executable, str(Path(__file__).resolve()), "--worker", "--out", str(out),
                "--checks", ",".join(names), "--end-at", repr(end_at)]
        line += ["--cpu-smoke"] if args.cpu_smoke else []
        line += ["--threads", str(args.threads)] if args.threads else []
        return line + (["--plan", args.plan] if args.plan else [])
    return command


def _no_cuda(args: argparse.Namespace, out: Path, sizes: Sizes) -> int:
    """No CUDA device: a gpu_check.json that says why (and which checks were not run)."""
    report = Report(out, "gpu_check", {**_header(args, sizes), "status": "no CUDA"}, _START)
    report.notes = _why_no_cuda()
    report.results = [Result(c.name, "not run", "no CUDA device", 0.0) for c in _plan()]
    report.write()
    print("no CUDA device here: " + "; ".join(report.notes) +
          "\n(run with --cpu-smoke for the CPU's tiny version)", flush=True)
    return 2


def _why_no_cuda() -> list[str]:
    """What torch and the driver say about the missing CUDA device."""
    why = [f"torch {torch.__version__} built for CUDA {torch.version.cuda}"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = torch.cuda.is_available()
    why += [f"torch warned: {first_line(w.message, 400)}" for w in caught]
    why.append(f"torch.cuda.is_available() is {available}, {torch.cuda.device_count()} devices")
    try:
        torch.cuda.init()
    except Exception as e:  # what torch says: no driver, a driver too old for this build, ...
        why.append(f"torch.cuda.init(): {first_line(e, 400)}")
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return why + ["no nvidia-smi on the PATH"]
    try:
        done = subprocess.run([smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20)
        return why + [f"nvidia-smi: {(done.stdout or done.stderr).strip()[:400]}"]
    except (OSError, subprocess.TimeoutExpired) as e:
        return why + [f"nvidia-smi did not answer ({first_line(e)})"]


def _device_fault(device: torch.device) -> str | None:
    """None while the device still runs a kernel (its cache emptied); else its error (a sticky
    CUDA error, such as an illegal address, fails every later call of the process)."""
    if device.type != "cuda":
        return None
    try:
        torch.cuda.synchronize(device)
        float(torch.ones(1, device=device).add_(1).item())
        torch.cuda.empty_cache()
        return None
    except Exception as e:
        return first_line(e, 300)


def _environment(device: torch.device) -> dict:
    info = {"device": _device_name(device), "torch": torch.__version__,
            "cuda_build": torch.version.cuda, "python": platform.python_version()}
    if device.type == "cuda":
        info.update(capability=".".join(map(str, torch.cuda.get_device_capability(device))),
                    devices=torch.cuda.device_count(),
                    memory_gib=torch.cuda.get_device_properties(device).total_memory / 2 ** 30,
                    cudnn=torch.backends.cudnn.version())
    return info


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


def _relative_distance(a: dict, b: dict) -> float:
    """|a - b| / |b| over every floating-point tensor of two state dicts."""
    num = sum(float((a[n].double() - b[n].double()).pow(2).sum()) for n in a
              if a[n].is_floating_point())
    den = sum(float(b[n].double().pow(2).sum()) for n in b if b[n].is_floating_point())
    return math.sqrt(num / max(den, 1e-300))


def _state(model) -> dict[str, torch.Tensor]:
    return {n: t.detach().cpu().clone() for n, t in model.state_dict().items()}


# A resumed run ends this close to the straight one (relative distance of the weights) where it
# really resumed; one that ignored its resume file and trained the other start weights ends about
# 1 away (measured on the CPU: 0 resumed, 0.6-1.3 from other start weights)
RESUMED_DISTANCE = 0.25
OTHER_START = 50  # seed offset of the start weights a resumed run is given


class Kit:
    """The data, networks and schedules the checks share, the output folder, and the deadline
    of the check that is running (wall-clock time)."""

    def __init__(self, sizes: Sizes, device: torch.device, out: Path):
        self.s, self.device, self.out = sizes, device, out
        self.deadline = math.inf

    @cached_property
    def data(self):
        return load_data(DataSection(dataset="synthetic_cifar10", train_size=self.s.train_images,
                                     test_size=self.s.eval_batch), self.device)

    @cached_property
    def one_batch(self):
        """A training set of one batch: an epoch is one step, so a history is per step."""
        return load_data(DataSection(dataset="synthetic_cifar10", train_size=self.s.batch,
                                     test_size=self.s.eval_batch), self.device)

    def cfg(self, epochs: int = 2, **update) -> TrainSection:
        return TrainSection(**{"epochs": epochs, "batch_size": self.s.batch, "lr": 0.05,
                               "momentum": 0.9, "weight_decay": 5e-4, "milestones": [],
                               "eval_batch_size": self.s.eval_batch, **update})

    def net(self, seed: int = 0, arch: str = "resnet20"):
        width = self.s.width if arch == "resnet20" else self.s.vgg_width
        return build_model(arch, width, "synthetic_cifar10", seed=seed).to(self.device)

    def members(self, k: int, start_seed: int = 0) -> list[Member]:
        """K masked networks; `start_seed` moves their start weights (not their masks or data
        order): a resume into them that reads its file ends where the straight run ends."""
        out = []
        for i in range(k):
            model = self.net(seed=start_seed + i)
            mask = random_prune(full_mask(model), fraction=0.5,
                                generator=torch.Generator().manual_seed(i))
            out.append(Member(model, tag=f"m{i}", seed=100 + i, mask=mask))
        return out


def _layouts(device: torch.device):
    """On the CPU the CUDA layouts are forced, so that the smoke run takes the CUDA paths."""
    return gpu.force_cuda_layouts() if device.type != "cuda" else contextlib.nullcontext()


# --- correctness ---------------------------------------------------------------------------------

def check_fused_resume(kit: Kit):
    """A fused group killed after epoch 1 and resumed into other start weights (as a group and
    a member alone): every state in its parameter's layout, epoch 1 read back (not retrained),
    and the weights of the straight run (bit for bit where the device repeats itself)."""
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
                    if isinstance(v, torch.Tensor) and v.shape == p.shape and \
                            v.stride() != p.stride():
                        mismatches.append(key)

    training.make_optimizer = recording
    try:
        with _layouts(kit.device), tempfile.TemporaryDirectory() as tmp:
            files = [Path(tmp) / f"m{i}.pt" for i in range(2)]
            straight = kit.members(2)
            train_group(straight, kit.data, kit.cfg(), progress=False)
            first = kit.members(2)
            for m, path in zip(first, files):
                m.checkpoint = Checkpoint(path)
            done = train_group(first, kit.data, kit.cfg(epochs=1), progress=False)
            # member 0's file for a lone run, written through the store (its checksum recorded)
            save_tensors(Path(tmp) / "alone.pt", load_tensors(files[0]))
            again = kit.members(2, start_seed=OTHER_START)
            for m, path in zip(again, files):
                m.checkpoint, m.on_epoch = Checkpoint(path), watch
            resumed = train_group(again, kit.data, kit.cfg(), progress=False)
            alone = kit.members(1, start_seed=OTHER_START + 10)[0]  # member 0's file, alone
            lone = train(alone.model, kit.data, kit.cfg(), seed=alone.seed, tag=alone.tag,
                         mask=alone.mask, checkpoint=Checkpoint(Path(tmp) / "alone.pt"),
                         on_epoch=watch, progress=False)
    finally:
        training.make_optimizer = real
    read_back = all(r[0] == d[0] for r, d in zip(resumed, done)) and lone[0] == done[0][0]
    diff = max(_max_abs_difference(_state(a.model), _state(b.model))
               for a, b in zip(straight, again))
    distance = max(_relative_distance(_state(a.model), _state(b.model))
                   for a, b in [*zip(again, straight), (alone, straight[0])])
    ok = not mismatches and read_back and distance <= RESUMED_DISTANCE
    return ok, (f"{len(mismatches)} state tensors in another layout than their parameter; epoch 1 "
                f"{'read back' if read_back else 'RETRAINED'} by the resumed group and member; "
                f"resumed into other start weights against straight: relative distance "
                f"{distance:.1e} (at most {RESUMED_DISTANCE}), max |dw| {diff:.2e}"
                f"{' (bit-identical)' if diff == 0 else ''}"), \
        {"max_abs_dw": diff, "relative_distance": distance, "epoch_1_read_back": read_back,
         "mismatches": mismatches}


def _eager_fallback(printed: str) -> bool:
    return "training goes on eagerly" in printed


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
        print(printed.getvalue(), end="")
        moved = sum(1 for a, b in zip(sums, sums[1:]) if a != b)
        loss_g, loss_e = finals[True][0], finals[False][0]
        data[str(device)] = {"replays_that_moved": moved, "replays": len(sums) - 1,
                             "fallback": _eager_fallback(printed.getvalue()),
                             "loss_graph": loss_g, "loss_eager": loss_e}
    ok = all(v["replays_that_moved"] == v["replays"] and not v["fallback"] and
             abs(v["loss_graph"] - v["loss_eager"]) <= 0.05 * abs(v["loss_eager"])
             for v in data.values())
    return ok, "; ".join(f"{dev}: {v['replays_that_moved']}/{v['replays']} replays changed the "
                         f"weights, loss {v['loss_graph']:.4f} graph / {v['loss_eager']:.4f} eager"
                         + (" (fell back to eager)" if v["fallback"] else "")
                         for dev, v in data.items()), data


def check_fused_against_lone(kit: Kit, k: int = 4):
    """K networks fused against the same K trained alone. The gate: a few steps in fp32 (lr
    0.01), loss by loss (a training set of one batch: an epoch is a step). Reported beside it:
    two epochs at the default precision (bf16 on CUDA), where grouped and plain convolutions
    round differently and training amplifies it (RESULTS.md: 48.0% against 45.1% test accuracy
    from rounding alone)."""
    steps = kit.s.fp32_steps
    # lr 0.01: rounding differences grow step by step at any lr (on the CPU at 0.05 from 1e-7 to
    # 2e-3 of the loss in 4 steps, at 0.01 to 5e-4 in 8: a sharp start, measured); the gate is
    # about the fused arithmetic, not that growth
    cfg = kit.cfg(epochs=steps, precision="fp32", eval_every=steps, lr=0.01)
    fused = kit.members(k)
    fused_losses = [[h["train_loss"] for h in hist]
                    for hist in train_group(fused, kit.one_batch, cfg, progress=False)]
    worst_step = 0.0
    for m, losses in zip(kit.members(k), fused_losses):
        own = train(m.model, kit.one_batch, cfg, seed=m.seed, tag=m.tag, mask=m.mask,
                    progress=False)
        worst_step = max(worst_step, *(abs(a - b["train_loss"]) / b["train_loss"]
                                       for a, b in zip(losses, own)))
    info = _fused_epochs(kit, k)
    ok = worst_step <= 1e-3
    return ok, (f"K = {k}, {steps} fp32 steps: per-step loss within {worst_step:.1e} relative "
                f"(tolerance 1e-3); for information, 2 epochs at the default precision "
                f"({info['precision']}): train loss within {info['loss_rel']:.1e} relative, test "
                f"accuracy within {info['acc']:.3f}"), \
        {"fp32_step_loss_rel": worst_step, "steps": steps, "default_precision_epochs": info}


def _fused_epochs(kit: Kit, k: int) -> dict:
    """Two epochs of K fused against K alone at the default precision: the largest differences."""
    cfg = kit.cfg()
    histories = train_group(kit.members(k), kit.data, cfg, progress=False)
    worst_loss, worst_acc = 0.0, 0.0
    for m, fused_history in zip(kit.members(k), histories):
        own = train(m.model, kit.data, cfg, seed=m.seed, tag=m.tag, mask=m.mask, progress=False)
        for a, b in zip(fused_history, own):
            worst_loss = max(worst_loss, abs(a["train_loss"] - b["train_loss"]) / b["train_loss"])
            worst_acc = max(worst_acc, abs(a.get("test_acc", 0) - b.get("test_acc", 0)))
    return {"loss_rel": worst_loss, "acc": worst_acc,
            "precision": gpu.effective_precision(cfg.precision, kit.device)}


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
                f"({rate_f / rate_s:.2f}x); peak {_mib(mem_f['mib'])} / {_mib(mem_s['mib'])} "
                f"MiB"), \
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


def matched_error(reference: torch.Tensor, values: torch.Tensor, scale: float) -> float | None:
    """The largest distance from a reference value to the nearest of `values`, relative to
    `scale`; None without reference values. The reference holds only values that converged (an
    unconverged eigsh returns fewer than k), so nothing is compared by position."""
    if not len(reference) or not len(values):
        return None
    distance = (reference.double()[:, None] - values.double()[None, :]).abs().min(dim=1).values
    return float(distance.max()) / scale


def check_block_hessian(kit: Kit):
    """Top-k by block Lanczos and by single-vector Lanczos against eigsh (at most
    `max_products` products each; only the values eigsh converged are compared); products per
    second of blocks against single products, with peak memory."""
    model = kit.net(seed=7)
    train(model, kit.data, kit.cfg(epochs=1), seed=0, tag="hessian", progress=False)
    op = _operator(kit, model)
    runs = {}
    for method in ("eigsh", "lanczos", "block_lanczos"):
        runs[method] = hs.topk(op, kit.s.k, method=method, max_iterations=kit.s.max_products,
                               tol=1e-4, seed=0, progress=False)
    ref = runs["eigsh"]
    solvers = ("lanczos", "block_lanczos")
    scale = float(max(r.eigenvalues.abs().max() for r in runs.values() if len(r.eigenvalues)))
    errs = {m: matched_error(ref.eigenvalues, runs[m].eigenvalues, scale) for m in solvers}
    if not len(ref.eigenvalues):  # eigsh converged nothing: the two Lanczos against each other
        errs["block_lanczos"] = matched_error(runs["lanczos"].eigenvalues,
                                              runs["block_lanczos"].eigenvalues, scale)
        errs["lanczos"] = 0.0
    v = torch.randn(8, op.size, device=kit.device)
    with _peak(kit.device) as mem_1:
        single = _rate(kit.device, lambda: op(v[0]), kit.s.seconds_per_timing)
    with _peak(kit.device) as mem_b:
        block = 8 * _rate(kit.device, lambda: op.matmat(v), kit.s.seconds_per_timing)
    ok = all(e is not None and e <= 1e-3 for e in errs.values())
    against = (f"against the {len(ref.eigenvalues)} of {kit.s.k} values eigsh converged in "
               f"{ref.n_hvp} products" if len(ref.eigenvalues) else
               f"eigsh converged none in {ref.n_hvp} products: block against Lanczos")
    fmt = lambda e: "-" if e is None else f"{e:.1e}"  # noqa: E731
    return ok, (f"top-{kit.s.k} on {kit.s.hessian_images} images {against}: Lanczos "
                f"{fmt(errs['lanczos'])}, block {fmt(errs['block_lanczos'])} of lambda_max "
                f"(tolerance 1e-3); products: Lanczos {runs['lanczos'].n_hvp} in "
                f"{runs['lanczos'].seconds:.1f} s, block {runs['block_lanczos'].n_hvp} in "
                f"{runs['block_lanczos'].seconds:.1f} s, eigsh {ref.n_hvp} in {ref.seconds:.1f} s; "
                f"{block:.1f} products/s in blocks of 8 against {single:.1f} single "
                f"({block / single:.2f}x); peak {_mib(mem_b['mib'])} / {_mib(mem_1['mib'])} MiB"), \
        {"rel_error": errs, "eigsh_converged": len(ref.eigenvalues),
         "products": {m: r.n_hvp for m, r in runs.items()},
         "seconds": {m: r.seconds for m, r in runs.items()},
         "converged": {m: r.converged for m, r in runs.items()},
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

def _straight_and_resumed(kit: Kit, tmp: Path, cfg: TrainSection) -> dict:
    """A straight run, a second one, and a run killed after epoch 1 and resumed into other start
    weights: their weights, the iterations the resumed call ran, whether it read epoch 1 back."""
    runs, ran = {}, []
    for how in ("straight", "again"):
        m = kit.members(1)[0]
        train(m.model, kit.data, cfg, seed=1, tag="d", mask=m.mask, progress=False)
        runs[how] = _state(m.model)
    ckpt = Checkpoint(tmp / f"resume-{cfg.cuda_graphs}.pt")
    ckpt.remove()
    m = kit.members(1)[0]
    first = train(m.model, kit.data, cfg.model_copy(update={"epochs": 1}), seed=1, tag="d",
                  mask=m.mask, checkpoint=ckpt, progress=False)
    m = kit.members(1, start_seed=OTHER_START)[0]
    resumed = train(m.model, kit.data, cfg, seed=1, tag="d", mask=m.mask, checkpoint=ckpt,
                    on_iteration=lambda i, _: ran.append(i), progress=False)
    runs["resumed"] = _state(m.model)
    return {"runs": runs, "iterations_ran": len(ran), "read_back": resumed[0] == first[0],
            "expected": (cfg.epochs - 1) * kit.data.iterations_per_epoch(cfg.batch_size)}


def check_resume_determinism(kit: Kit):
    """Under run.deterministic two straight runs must repeat bit for bit, and a run killed after
    epoch 1 and resumed into other start weights must read epoch 1 back and run only the epochs
    left. How far the resumed run ends from the straight one is reported (not gated: on CUDA the
    resumed run takes eager warm-up steps where the straight one replays its graph); on CUDA the
    pair is rerun with graphs off to say whether the graphs or the resume make the difference."""
    out, resumed_ok = {}, True
    workspace = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for deterministic in (False, True):
                gpu.set_deterministic(deterministic)
                got = _straight_and_resumed(kit, Path(tmp), kit.cfg())
                runs = got.pop("runs")
                row = {"repeat_max_abs_dw": _max_abs_difference(runs["straight"], runs["again"]),
                       "resume_max_abs_dw": _max_abs_difference(runs["straight"], runs["resumed"]),
                       "resume_distance": _relative_distance(runs["resumed"], runs["straight"]),
                       **got}
                if deterministic and kit.device.type == "cuda":
                    eager = _straight_and_resumed(kit, Path(tmp), kit.cfg(cuda_graphs=False))
                    row["resume_max_abs_dw_graphs_off"] = _max_abs_difference(
                        eager["runs"]["straight"], eager["runs"]["resumed"])
                resumed_ok &= (got["iterations_ran"] == got["expected"] and got["read_back"]
                               and row["resume_distance"] <= RESUMED_DISTANCE)
                out["deterministic" if deterministic else "default"] = row
    finally:
        gpu.set_deterministic(False)
        if workspace is None:  # set_deterministic set it: the later checks run as before
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    det = out["deterministic"]
    ok = det["repeat_max_abs_dw"] == 0 and resumed_ok
    return ok, "; ".join(_determinism_words(k, v) for k, v in out.items()) + \
        " (run.deterministic: the repeat must be 0; the resume must run only the epochs left)", \
        out


def _determinism_words(mode: str, row: dict) -> str:
    words = (f"{mode}: repeat {row['repeat_max_abs_dw']:.1e}, resumed "
             f"{row['resume_max_abs_dw']:.1e} max |dw| (ran {row['iterations_ran']} of "
             f"{row['expected']} iterations left"
             f"{', epoch 1 read back' if row['read_back'] else ', epoch 1 RETRAINED'})")
    if "resume_max_abs_dw_graphs_off" in row:
        off = row["resume_max_abs_dw_graphs_off"]
        words += (f", graphs off {off:.1e}" + (" (the graphs make the difference)"
                                               if off == 0 and row["resume_max_abs_dw"] else ""))
    return words


# --- speed ---------------------------------------------------------------------------------------

def check_fused_training_speed(kit: Kit):
    """Aggregate images/s of K fused networks (channels_last and contiguous, the faster kept)
    against the same K one after another (K x the step of one: that is K = 1's images/s), and
    peak memory of training with evaluation."""
    rows = []
    make = lambda: build_model("resnet20", kit.s.width, "synthetic_cifar10", seed=0)  # noqa: E731
    for k in kit.s.group_sizes:
        try:
            row = training.time_layouts(make, (3, 32, 32), kit.cfg(), kit.device, k,
                                        kit.s.seconds_per_timing)
        except Exception as e:
            if not gpu.is_allocation_failure(e):
                raise
            rows.append({"group_size": k, "images_per_s": None, "step_ms": None,
                         "peak_mib": None, "note": f"failed to allocate ({first_line(e, 120)})"})
            break
        rows.append({"group_size": k, **row, "note": ""})
        _free(kit.device)
    alone = rows[0]["images_per_s"]
    ratios = {r["group_size"]: r["images_per_s"] / alone for r in rows if r["images_per_s"]}
    best = max(ratios, key=ratios.get)
    layouts = ", ".join(f"K={r['group_size']} {r['layout']} (contiguous "
                        f"{r['layouts']['contiguous'] / r['layouts']['channels_last']:.2f}x "
                        f"channels_last)" for r in rows if r.get("layouts"))
    return True, (", ".join(f"K={k} {v:.2f}x" for k, v in ratios.items()) +
                  f" aggregate images/s against one after another (best K = {best}; peaks " +
                  ", ".join(f"{r['group_size']}: {_mib(r['peak_mib'])}" for r in rows) +
                  " MiB)" + (f"; layouts: {layouts}" if layouts else "")), \
        {"rows": rows, "ratios": ratios}


def check_training_precision(kit: Kit):
    """Images/s of one network's training step in each `train.precision` (fp32 strict, tf32,
    bf16), against fp32: what the precision of the presets costs on this card."""
    make = lambda: build_model("resnet20", kit.s.width, "synthetic_cifar10", seed=0)  # noqa: E731
    rates = {}
    for precision in ("fp32", "tf32", "bf16"):
        row = training.time_steps(make, (3, 32, 32), kit.cfg(precision=precision), kit.device, 1,
                                  kit.s.seconds_per_timing)
        rates[precision] = row["images_per_s"]
    return True, (", ".join(f"{p} {r:,.0f} images/s ({r / rates['fp32']:.2f}x)"
                            for p, r in rates.items()) +
                  f" (ResNet-20 width {kit.s.width}, batch {kit.s.batch}"
                  + ("" if kit.device.type == "cuda" else "; the CPU trains in fp32 in each")
                  + ")"), {"images_per_s": rates}


def check_auto_choices(kit: Kit):
    """What the kit's `auto` settings choose on this card (the group size from the rows the
    speed check wrote, where it ran)."""
    from lthkit.config.params import load_params
    from lthkit.report.workload import baseline_schedule_groups, iterations_per_epoch, train_size

    p = load_params(ROOT / "params" / "resnet20_paper.yaml")
    n = train_size(p.data.dataset, p.data.train_size)
    work = [(len(group), cfg.epochs * iterations_per_epoch(n, cfg.batch_size) - start)
            for start, cfg, group in baseline_schedule_groups(p)]
    speed = read_json(kit.out / "checks" / "fused_training_speed.json") or {}
    rows = speed.get("data", {}).get("rows")
    probe = GroupProbe(rows, _device_name(kit.device)) if rows else None
    group = probe.best(work, p.baselines.group_min_speedup) if probe else None
    model, x, y, _ = _points(kit)
    ev = PointEvaluator(model, x, y, batch_size=kit.s.point_images, points_per_pass="auto",
                        verbose=False)
    points = ev.points_per_pass
    op = _operator(kit, model)
    basis = _basis_device(Subspace(op), 600, "auto")
    choices = {"baselines.group_size": group,
               "group layout": (None if not probe or probe.channels_last(group) is None else
                                "channels_last" if probe.channels_last(group) else "contiguous"),
               "analysis.points_per_pass": points,
               "points_choice": ev.choice, "hessian.method": hs.resolve_method("auto", kit.device),
               "hessian.hvp": hs.resolve_hvp_mode("auto", kit.device),
               "hessian.basis_device (600 vectors)": str(basis),
               "memory_budget_mib": (gpu.memory_budget(kit.device) or 0) / 2 ** 20}
    return True, ", ".join(f"{k} {v}" for k, v in choices.items() if k != "points_choice"), choices


def check_paper_time(kit: Kit):
    """benchmarks/paper_time.py on the presets, from units measured here, with the time left to
    this check (less a margin) as its deadline: a preset it did not finish is said so."""
    import paper_time

    target = kit.out / "paper_time.json"
    target.unlink(missing_ok=True)
    left = kit.deadline - time.time()
    deadline = max(1.0, left - max(5.0, 0.1 * left)) if math.isfinite(left) else None
    paper_time.main([*(str(ROOT / p) for p in kit.s.paper_presets), *kit.s.paper_args,
                     "--device", str(kit.device), "--json", str(target)]
                    + (["--deadline", f"{deadline:.1f}"] if deadline else []))
    presets = read_json(target) or {}
    totals = {Path(k).stem: v.get("total_minutes") for k, v in presets.items()}
    done = {k: v for k, v in totals.items() if v is not None}
    if not done:
        return None, (f"no preset projected before the deadline ({deadline:.0f} s): "
                      f"logs/paper_time.txt has what it measured"), {"total_minutes": totals}
    return True, ", ".join(f"{k} {v:,.1f} min" if v is not None else f"{k} not finished by the "
                           f"deadline" for k, v in totals.items()) + \
        " projected (logs/paper_time.txt has the tables)", {"total_minutes": totals,
                                                             "deadline_s": deadline}


# --- the command ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--budget", type=float, default=330.0, help="seconds the whole script "
                        "may take: checks are cut off at it, and none starts after it")
    parser.add_argument("--skip", nargs="*", default=[], help="checks to leave out")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--plan", default=None, help=argparse.SUPPRESS)  # tests: module:attr
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--checks", default="", help=argparse.SUPPRESS)
    parser.add_argument("--end-at", type=float, default=math.inf, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = (args.out or Path(os.environ.get("OUT") or ROOT / "outputs" / "gpu_check")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    sizes = CPU_SMOKE if args.cpu_smoke else Sizes()
    plan, fault = _load_plan(args.plan, SMOKE_LIMIT_SCALE if args.cpu_smoke else 1.0)
    if args.worker:
        torch.manual_seed(0)
        device = torch.device("cpu" if args.cpu_smoke else "cuda:0")
        return work(plan, args.checks.split(","), args.end_at, out, Kit(sizes, device, out),
                    lambda: _environment(device), fault or (lambda: _device_fault(device)))
    if not args.cpu_smoke and not torch.cuda.is_available():
        return _no_cuda(args, out, sizes)
    report = Report(out, "gpu_check", _header(args, sizes), _START)
    return orchestrate([c.name for c in plan if c.name not in args.skip], report, args.budget,
                       _child_command(args, out))


if __name__ == "__main__":
    sys.exit(main())
