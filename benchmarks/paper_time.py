"""How long a preset's whole series takes, projected from units of work measured on this device.

    python benchmarks/paper_time.py                                  # params/resnet20_paper.yaml
    python benchmarks/paper_time.py params/vgg16_paper.yaml params/quick.yaml
    python benchmarks/paper_time.py --small                          # a few minutes on a CPU
    python benchmarks/paper_time.py params/smoke.yaml --check outputs/smoke   # against a real run

`lthkit.report.workload.count_work` counts the units each notebook does with the preset's parameters
(training steps, test-set passes, Hessian-vector products, loss evaluations at points; those of
notebooks 04-09 from their plans, lthkit.analysis.plans, on a stand-in of the trained run). Each
kind of unit is measured here on the present device at the preset's sizes (its network and width,
batch, analysis subset, Hessian subset, synthetic data of the dataset's shape), a few repetitions
each; two counts are measured too, on one real point (a network trained for a few hundred steps):
the products one top-k spectrum takes, and the losses one basin-radius direction takes. The
table gives per notebook the units, seconds per unit and projected minutes, then the total.

`--small` measures on reduced sizes so a CPU finishes in minutes: Hessian products and points on
at most `--small-examples` examples, scaled linearly to the preset's count (the CPU's cost is
linear in examples), the two measured counts on a network of width at most 8; training steps at
the preset's sizes. Every size used is printed. `--check RUN_FOLDER` prints the projection beside
the wall time the report runner recorded for each notebook of that run (its notebooks/index.json),
so the instrument is itself checked. `--deadline SECONDS` starts no measurement after that many
seconds: a preset not finished by then is said so (its rows measured so far are in the JSON, no
total), and the presets after it are not measured. `--json` is rewritten, atomically, after
each preset.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch

from lthkit.analysis import hessian as hs
from lthkit.analysis.landscape import basin_radii, cutoff_loss, random_directions
from lthkit.config.params import Params, load_params
from lthkit.data.synthetic import stand_in
from lthkit.nets.evaluator import PointEvaluator
from lthkit.nets.models import build_model
from lthkit.report.workload import (UnitSpec, WorkItem, baseline_members, baseline_schedule_groups,
                                    count_work, iterations_per_epoch, train_size)
from lthkit.store.files import atomic_write_bytes
from lthkit.train.context import resolve_device
from lthkit.train.training import evaluate, probe_group_sizes, time_steps, train

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _synthetic(dataset: str, n_train: int, n_test: int, seed: int = 0):
    """Images of the dataset's shape and classes (any dataset, an image folder too): a unit's
    cost depends on shapes, not on what the images show."""
    return stand_in(dataset, n_train, n_test, seed)


class DeadlineReached(Exception):
    """--deadline passed: no further measurement starts (the message says which was next)."""


def _before(deadline: float | None, what: str) -> None:
    """Raise DeadlineReached when `deadline` (perf_counter seconds) has passed."""
    if deadline is not None and time.perf_counter() > deadline:
        raise DeadlineReached(what)


@dataclass
class Measured:
    """Seconds per unit of one spec, how it was measured."""

    seconds: float
    how: str


class UnitCosts:
    """Measures (once per spec) what one unit of work costs on `device`."""

    def __init__(self, params: Params, device: torch.device, small: bool, small_examples: int,
                 reps: int, warm_steps: int):
        self.p, self.device, self.small = params, device, small
        self.small_examples, self.reps, self.warm_steps = small_examples, reps, warm_steps
        self.cache: dict[UnitSpec, Measured] = {}
        self.max_products: int | None = None
        self.counts: dict[str, tuple[float, str]] = {}
        self._probe: tuple | None = None
        self.deadline: float | None = None  # perf_counter seconds: start nothing after it

    # --- units --------------------------------------------------------------------------------
    def cost(self, spec: UnitSpec) -> Measured:
        if spec not in self.cache:
            _before(self.deadline, f"the {spec.unit} unit of {spec.arch}")
            measure = {"train_iter": self._train_iter, "group_iter": self._group_iter,
                       "test_eval": self._test_eval, "hvp": self._hvp,
                       "point": self._point}[spec.unit]
            self.cache[spec] = measure(spec)
        return self.cache[spec]

    def _train_cfg(self, spec: UnitSpec):
        """The preset's training recipe for this spec (its optimizer, batch), two epochs."""
        p = self.p
        for cfg in (p.train, p.mnist.mlp.train, p.mnist.lenet5.train, p.mnist.transfer.train,
                    p.bain.train):
            if cfg.batch_size == spec.batch and cfg.optimizer == spec.optimizer:
                return cfg.model_copy(update={"epochs": 2, "milestones": [], "eval_every": 100})
        return p.train.model_copy(update={"epochs": 2, "milestones": [], "eval_every": 100,
                                          "batch_size": spec.batch, "optimizer": spec.optimizer})

    def _steps(self, spec: UnitSpec) -> int:
        return max(5, min(60, int(2000 / max(spec.batch, 1)))) if self.device.type == "cuda" \
            else max(3, min(12, int(600 / max(spec.batch, 1))))

    def _train_iter(self, spec: UnitSpec) -> Measured:
        steps = self._steps(spec)
        data = _synthetic(spec.dataset, spec.batch * steps, 16)
        cfg = self._train_cfg(spec)
        model = build_model(spec.arch, spec.width, data.name, seed=0).to(self.device)
        history = train(model, data.to(self.device), cfg, seed=0, tag="unit", progress=False)
        seconds = history[-1]["train_seconds"] / steps  # epoch 2: warm (graphs captured)
        return Measured(seconds, f"{steps} steps at batch {spec.batch}")

    def _group_iter(self, spec: UnitSpec) -> Measured:
        """One step of K networks fused (training.train_group's step, as its probe times it)."""
        cfg = self._train_cfg(spec)
        name = spec.dataset
        shape = tuple(_synthetic(spec.dataset, 16, 16).train_x.shape[1:])
        row = time_steps(lambda: build_model(spec.arch, spec.width, name, seed=0), shape, cfg,
                          self.device, spec.group, min_seconds=1.0)
        return Measured(row["step_ms"] / 1e3, f"fused step of {spec.group} networks at batch "
                        f"{spec.batch} (random data)")

    def _test_eval(self, spec: UnitSpec) -> Measured:
        n = min(spec.examples, 2000)
        data = _synthetic(spec.dataset, 16, n).to(self.device)
        model = build_model(spec.arch, spec.width, data.name, seed=0).to(self.device)
        evaluate(model, data, "test", spec.chunk)
        _sync(self.device)
        t0 = time.perf_counter()
        for _ in range(self.reps):
            evaluate(model, data, "test", spec.chunk)
        _sync(self.device)
        per = (time.perf_counter() - t0) / self.reps
        return Measured(per * spec.examples / n, f"{n} of {spec.examples} test images, scaled")

    def _examples(self, spec: UnitSpec) -> int:
        return min(spec.examples, self.small_examples) if self.small else spec.examples

    def _subset(self, spec: UnitSpec, n: int):
        data = _synthetic(spec.dataset, n, 16).to(self.device)
        return data.analysis_subset(n, 0)

    def _hvp(self, spec: UnitSpec) -> Measured:
        n = self._examples(spec)
        x, y = self._subset(spec, n)
        model = build_model(spec.arch, spec.width, spec.dataset, seed=0).to(self.device)
        op = _operator(model, x, y, spec.chunk, self.p)
        block = self.p.hessian.block_size if self._method() == "block_lanczos" else 1
        v = torch.randn(block, op.size, device=self.device)
        product = (lambda: op.matmat(v)) if block > 1 else (lambda: op(v[0]))
        product()
        _sync(self.device)
        t0 = time.perf_counter()
        for _ in range(self.reps):
            product()
        _sync(self.device)
        per = (time.perf_counter() - t0) / (self.reps * block)
        scaled = per * spec.examples / n
        how = f"{op.mode}" + (f", blocks of {block}" if block > 1 else "")
        return Measured(scaled, f"{how} on {n} examples" + (", scaled" if n < spec.examples
                                                              else ""))

    def _method(self) -> str:
        """The top-k solver the analysis would use on this device (hessian.method resolved)."""
        return hs.resolve_method(self.p.hessian.method, self.device)

    def _point(self, spec: UnitSpec) -> Measured:
        n = self._examples(spec)
        x, y = self._subset(spec, n)
        model = build_model(spec.arch, spec.width, spec.dataset, seed=0)
        a = self.p.analysis
        chunk = n if spec.chunk >= spec.examples else min(spec.chunk, n)
        ev = PointEvaluator(model.to(self.device), x, y, batch_size=chunk,
                            recalibrate_bn=a.recalibrate_bn, points_per_pass=a.points_per_pass,
                            use_vmap=a.use_vmap, one_pass_bn=self.p.landscape.one_pass_bn)
        w = ev.layout.flatten(model.state_dict()).to(self.device)
        block = max(1, ev.points_per_pass if ev.use_vmap else 1)
        points = w.unsqueeze(0) + 1e-3 * torch.randn(block, w.numel(), device=self.device)
        ev.evaluate(points)
        _sync(self.device)
        t0 = time.perf_counter()
        for _ in range(self.reps):
            ev.evaluate(points)
        _sync(self.device)
        per = (time.perf_counter() - t0) / (self.reps * block)
        return Measured(per * spec.examples / n, f"blocks of {block} on {n} examples"
                        + (", scaled" if n < spec.examples else ""))

    # --- counts measured on one real point -------------------------------------------------------
    def probe(self) -> tuple:
        """A network of the preset trained `warm_steps` steps, with its analysis subset."""
        if self._probe is None:
            _before(self.deadline, "the network the counts are measured on")
            p = self.p
            width = min(p.model.width or 10**9, 8) if self.small else p.model.width
            n = min(p.analysis.subset_size, self.small_examples if self.small else 10**9)
            steps = self.warm_steps
            data = _synthetic(p.data.name, max(n, p.train.batch_size * 20), 16).to(self.device)
            cfg = p.train.model_copy(update={"epochs": max(1, math.ceil(
                steps / data.iterations_per_epoch(p.train.batch_size))), "milestones": [],
                "eval_every": 1000})
            model = build_model(p.model.network, width, data.name, seed=0).to(self.device)
            train(model, data, cfg, seed=0, tag="probe", progress=False)
            x, y = data.analysis_subset(n, 0)
            self._probe = (model, x, y, width, n, cfg.epochs * data.iterations_per_epoch(
                p.train.batch_size))
        return self._probe

    def products_per_spectrum(self) -> tuple[float, str]:
        if "products" not in self.counts:
            _before(self.deadline, "the products of one spectrum")
            p, hp = self.p, self.p.hessian
            model, x, y, width, n, steps = self.probe()
            n_h = min(hp.subset_size or n, n)
            op = _operator(model, x[:n_h], y[:n_h], hp.batch_size or p.analysis.batch_size, p)
            t0 = time.perf_counter()
            budget = min(hp.max_iterations, self.max_products or hp.max_iterations)
            res = hs.topk(op, hp.k, method=self._method(), block_size=hp.block_size,
                          max_iterations=budget, tol=hp.tol,
                          relative_to=hp.tol_relative_to,
                          positive_threshold=hp.positive_threshold, seed=0, progress=False)
            self.counts["products"] = (float(res.n_hvp), (
                f"{self._method()} top-{hp.k} on {n_h} examples, {p.model.arch} width "
                f"{width or 'paper'} after "
                f"{steps} steps: {res.n_hvp} products, converged {res.converged}"
                + (f" (capped by --max-products {budget}: a lower bound)"
                   if budget < hp.max_iterations and not res.converged else "") + ", "
                f"{time.perf_counter() - t0:.0f} s"))
        return self.counts["products"]

    def points_per_direction(self) -> tuple[float, str]:
        if "radius" not in self.counts:
            _before(self.deadline, "the losses of one radius direction")
            lp = self.p.landscape
            model, x, y, width, n, steps = self.probe()
            a = self.p.analysis
            ev = PointEvaluator(model, x, y, batch_size=max(a.batch_size, n),
                                recalibrate_bn=a.recalibrate_bn,
                                points_per_pass=a.points_per_pass, use_vmap=a.use_vmap,
                                one_pass_bn=lp.one_pass_bn)
            w = ev.layout.flatten(model.state_dict()).to(self.device)
            directions = 8
            dirs = random_directions(directions, ev.layout.mask_vector(None, self.device), 0)
            own = float(ev.losses(w))
            out = basin_radii(ev.losses, w, dirs, cutoff_loss(own, lp.radius_cutoff,
                                                              lp.radius_value),
                              start=lp.radius_start, growth=lp.radius_growth,
                              max_radius=lp.radius_max, tol=lp.radius_tol, center_loss=own)
            per = out["evaluations"] / directions
            self.counts["radius"] = (per, f"{directions} directions at a point trained {steps} "
                                          f"steps: {per:.1f} losses each, mean radius "
                                          f"{out['mean']:.3g}")
        return self.counts["radius"]


def _operator(model, x, y, chunk: int, p: Params) -> hs.HessianOperator:
    """The Hessian operator the analysis would build at the model's point (BN recalibrated)."""
    ev = PointEvaluator(model, x, y, batch_size=chunk, recalibrate_bn=p.analysis.recalibrate_bn)
    w = ev.point(model.state_dict())
    buffers = ev.recalibrated_buffers(w) if ev.recalibrate else dict(model.named_buffers())
    return hs.HessianOperator(model, w, x, y, buffers=buffers, batch_size=chunk,
                              mode=p.hessian.hvp,
                              dtype=torch.float64 if p.hessian.dtype == "float64" else torch.float32)


def project(params: Params, costs: UnitCosts, work: list[WorkItem],
            rows: list[dict] | None = None) -> list[dict]:
    """One row per work item: units, seconds per unit, projected minutes (appended to `rows`,
    so that the rows measured before a deadline stay there)."""
    rows = [] if rows is None else rows
    for item in work:
        unit = costs.cost(item.spec)
        count, note = item.count, unit.how
        if item.per == "products_per_spectrum":
            per, how = costs.products_per_spectrum()
            count, note = item.count * per, f"{item.count:g} spectra x {per:g} products"
        elif item.per == "points_per_direction":
            per, how = costs.points_per_direction()
            count, note = item.count * per, f"{item.count:g} directions x {per:.1f} losses"
        rows.append({"notebook": item.notebook, "what": item.what, "unit": item.spec.unit,
                     "units": count, "s_per_unit": unit.seconds,
                     "minutes": count * unit.seconds / 60, "how": note})
    return rows


def print_table(preset: str, params: Params, rows: list[dict], costs: UnitCosts,
                device: torch.device, check: dict[str, float] | None) -> float:
    print(f"\n== {preset}: {params.model.arch} (width {params.model.width or 'paper'}) on "
          f"{params.data.dataset}, {params.imp.levels} levels x {params.train.epochs} epochs ==")
    print(f"{'notebook':28s} {'what':44s} {'units':>12s} {'s/unit':>10s} {'minutes':>9s}")
    per_nb: dict[str, float] = defaultdict(float)
    for r in rows:
        per_nb[r["notebook"]] += r["minutes"]
        print(f"{r['notebook']:28s} {r['what'][:44]:44s} {r['units']:12,.0f} "
              f"{r['s_per_unit']:10.4g} {r['minutes']:9.1f}   ({r['unit']}: {r['how']})")
    total = sum(per_nb.values())
    print("per notebook (projected minutes" + (", measured minutes" if check else "") + "):")
    for nb, minutes in per_nb.items():
        seen = f"   measured {check[nb] / 60:6.1f}" if check and nb in check else ""
        print(f"  {nb:28s} {minutes:9.1f}{seen}")
    print(f"TOTAL {total:,.1f} minutes = {total / 60:,.2f} hours on {_device_name(device)}")
    if check:
        both = [nb for nb in per_nb if nb in check]
        measured = sum(check[nb] for nb in both) / 60
        projected = sum(per_nb[nb] for nb in both)
        print(f"check: notebooks {', '.join(both)}: projected {projected:.1f} min, measured "
              f"{measured:.1f} min (ratio {projected / max(measured, 1e-9):.2f})")
    for key, (value, how) in costs.counts.items():
        print(f"measured count: {how}")
    return total


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return f"CPU, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}" \
           f" (torch {torch.__version__})"


def _check_times(run_folder: Path | None) -> dict[str, float] | None:
    if run_folder is None:
        return None
    index = run_folder / "notebooks" / "index.json"
    if not index.exists():
        sys.exit(f"--check {run_folder}: no notebooks/index.json there (run lthkit-report first)")
    return {r["name"]: r["seconds"] for r in json.loads(index.read_text()) if r["status"] == "ok"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("presets", nargs="*", default=["params/resnet20_paper.yaml"])
    parser.add_argument("--small", action="store_true", help="reduced sizes (a CPU in minutes)")
    parser.add_argument("--small-examples", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3, help="repetitions per unit")
    parser.add_argument("--warm-steps", type=int, default=300,
                        help="training steps of the network the counts are measured on")
    parser.add_argument("--max-products", type=int, default=None,
                        help="cap the products of the measured spectrum (a CPU shortcut: an "
                        "unconverged count is printed as a lower bound)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--check", type=Path, help="a run folder of the (first) preset")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--deadline", type=float, default=None, help="seconds after which no "
                        "measurement starts (gpu_check.py gives it the time left)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    t0 = time.perf_counter()
    deadline = None if args.deadline is None else t0 + args.deadline
    out: dict[str, dict] = {}
    for i, preset in enumerate(args.presets):
        try:
            _before(deadline, f"preset {preset}")
            out[preset] = _one_preset(preset, args, device, deadline,
                                      _check_times(args.check) if i == 0 else None)
        except DeadlineReached as e:
            print(f"\n== {preset}: the deadline ({args.deadline:g} s) passed before {e}: "
                  f"no total ==", flush=True)
            out[preset] = {**getattr(e, "partial", {}), "total_minutes": None,
                           "stopped_before": str(e), "device": _device_name(device)}
        if args.json:
            atomic_write_bytes(args.json, lambda f: f.write(json.dumps(out, indent=1,
                                                                       default=str)), mode="w")
    print(f"\n(measured in {time.perf_counter() - t0:.0f} s; sizes: "
          + ("--small: Hessian products and points on at most "
             f"{args.small_examples} examples, scaled linearly; counts on width <= 8"
             if args.small else "the presets' own") + ")")
    return 0


def _one_preset(preset: str, args: argparse.Namespace, device: torch.device,
                deadline: float | None, check: dict[str, float] | None) -> dict:
    """A preset's projection, its table printed; on DeadlineReached the rows measured so far
    ride on the exception (`partial`)."""
    params = load_params(preset)
    rows: list[dict] = []
    costs = UnitCosts(params, device, args.small, args.small_examples, args.reps,
                      args.warm_steps)
    costs.max_products, costs.deadline = args.max_products, deadline
    try:
        group = _group_size(params, device, deadline)
        project(params, costs, count_work(params, group_size=group), rows)
    except DeadlineReached as e:
        e.partial = {"rows": rows, "counts": costs.counts, "small": args.small}
        raise
    total = print_table(preset, params, rows, costs, device, check)
    return {"rows": rows, "total_minutes": total, "counts": costs.counts, "small": args.small,
            "device": _device_name(device)}


def _group_size(params: Params, device: torch.device, deadline: float | None = None) -> int:
    """Networks trained together per baseline group, as notebook 02 would: baselines.group_size,
    or for auto the K its probe on this device projects fastest, if at least
    baselines.group_min_speedup faster than one after another (the probe's table printed)."""
    size = params.baselines.group_size
    if size != "auto":
        return int(size)
    members = baseline_members(params)
    if len(members) <= 1:
        return 1
    _before(deadline, "the group-size probe")
    name = params.data.name
    shape = tuple(_synthetic(name, 16, 16).train_x.shape[1:])
    n_train = train_size(name, params.data.train_size)
    work = [(len(group), cfg.epochs * iterations_per_epoch(n_train, cfg.batch_size) - start)
            for start, cfg, group in baseline_schedule_groups(params)]
    probe = probe_group_sizes(lambda: build_model(params.model.network, params.model.width, name,
                                                  seed=0), shape, params.train, device,
                              max_k=max(n for n, _ in work),
                              memory_fraction=params.baselines.group_memory)
    k = probe.best(work, params.baselines.group_min_speedup)  # as notebook 02 decides
    print(f"baselines.group_size auto -> K = {k}\n{probe.table(work)}")
    return k


if __name__ == "__main__":
    sys.exit(main())
