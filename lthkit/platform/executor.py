"""Where independent units of work run: one after another in this process, or as Ray tasks.

    executor = make_executor(params)           # run.executor: local (default) or ray
    with executor:
        executor.map(fn, units, desc="IMP chains", on_result=write)

A unit's function computes and returns its result; it writes nothing the run keeps. The driver
(this process) receives each result as its unit finishes (`on_result`) and writes it into the run
folder itself, atomically and checksummed, so a worker lost in the middle of a unit loses only
that unit, and running the same command again does only what is not written yet. A unit whose
function is a generator hands over each part as it yields it (an IMP chain: each level as it
finishes; a Ray streaming generator task), so a lost worker loses only the part under way.

With run.executor ray, each unit is a Ray task holding `run.ray_gpus_per_task` GPUs (fractions
share one) and `run.ray_cpus_per_task` cores, on a local Ray started here (run.ray_address None),
on the cluster running here ('auto'), or on the cluster at an address. Ray is imported only here,
and only then (an optional extra: pip install -e '.[ray]'). Each kind of unit shows one progress
bar counting finished tasks.
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Callable, Sequence

from lthkit.platform.device import GPU_SHARE_ENV
from lthkit.platform.progress import bar

__all__ = ["Executor", "LocalExecutor", "RayExecutor", "ExecutorError", "UnitsFailedError",
           "make_executor", "RAY_MISSING", "unit_label", "task_options"]

RAY_MISSING = ("run.executor is 'ray' but Ray is not installed here: pip install -e '.[ray]' "
               "(or set run.executor: local)")


class ExecutorError(RuntimeError):
    """The executor cannot run (Ray missing, no cluster at the address); one line says why."""


class UnitsFailedError(RuntimeError):
    """Some units failed (a worker died, a unit raised); the others' results were delivered."""

    def __init__(self, desc: str, total: int, failures: dict[int, BaseException],
                 labels: Sequence[str] | None = None):
        self.failures = failures
        first = next(iter(failures.values()))
        text = str(first).strip().splitlines()
        cause = f"{type(first).__name__}: {text[0] if text else ''}"
        named = [labels[i] if labels else str(i) for i in sorted(failures)]
        shown = ", ".join(named[:5]) + (f" and {len(named) - 5} more" if len(named) > 5 else "")
        super().__init__(
            f"{len(failures)} of {total} {desc} failed (units {sorted(failures)}: {shown}; the "
            f"first: {cause[:300]}); the {total - len(failures)} that finished are saved: run the "
            f"same command again to do the rest")


def unit_label(unit: Any, i: int) -> str:
    """How a failure names a unit: its `label` (replicate, group, call), else its index."""
    return str(getattr(unit, "label", i))


Handler = Callable[[int, Any], None]


class Executor:
    """Runs a function on each of a list of units; results come back in the units' order."""

    kind = "base"

    def map(self, fn: Callable[..., Any], units: Sequence[Any], desc: str,
            on_result: Handler | None = None, shared: Any = None) -> list[Any]:
        """fn(unit) for every unit (fn(unit, shared) when `shared` is given: inputs common to
        the units, sent once); `on_result(i, result)` runs here, in the driver, as unit i
        finishes (the place to write it). Raises UnitsFailedError after the rest finished when
        some failed."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the executor started."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LocalExecutor(Executor):
    """Each unit in this process, one after another (the default); an error stops at once."""

    kind = "local"

    def map(self, fn: Callable[..., Any], units: Sequence[Any], desc: str,
            on_result: Handler | None = None, shared: Any = None) -> list[Any]:
        results = []
        streams = inspect.isgeneratorfunction(fn)
        for i, unit in enumerate(bar(units, desc=desc, unit="unit")):
            result = fn(unit) if shared is None else fn(unit, shared)
            if streams:  # each part handed over as it is yielded
                parts = []
                for part in result:
                    if on_result is not None:
                        on_result(i, part)
                    parts.append(part)
                results.append(parts)
                continue
            if on_result is not None:
                on_result(i, result)
            results.append(result)
        return results


class RayExecutor(Executor):
    """Each unit a Ray task (`num_gpus`, `num_cpus`, `max_retries` per task).

    Joins the Ray this process already runs (ray.init was called: tests, a notebook), else starts
    a local one (`address` None) or connects to `address` ('auto', 'ray://host:10001', ...); shuts
    down only a Ray it started itself.
    """

    kind = "ray"

    def __init__(self, address: str | None = None, gpus_per_task: float | str = "auto",
                 cpus_per_task: float = 1.0, max_retries: int = 1, **init_kwargs: Any):
        ray = _import_ray()
        self._started = False
        self.startup_seconds = 0.0
        if not ray.is_initialized():
            t0 = time.perf_counter()
            try:
                if address is None:  # a Ray of our own: no dashboard (a cluster has its own)
                    init_kwargs.setdefault("include_dashboard", False)
                ray.init(address=address, **init_kwargs)
            except ConnectionError as e:
                raise ExecutorError(f"run.ray_address {address!r}: no Ray cluster answers there "
                                    f"({e}); start one (ray start --head) or fix the address") \
                    from None
            self.startup_seconds = time.perf_counter() - t0
            self._started = True
        if gpus_per_task == "auto":
            gpus_per_task = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        self.options = task_options(float(gpus_per_task), float(cpus_per_task), int(max_retries))

    def map(self, fn: Callable[..., Any], units: Sequence[Any], desc: str,
            on_result: Handler | None = None, shared: Any = None) -> list[Any]:
        import ray

        streams = inspect.isgeneratorfunction(fn)  # a streaming generator task: parts as yielded
        remote = ray.remote(fn).options(**self.options)
        if shared is None:
            pending = {remote.remote(unit): i for i, unit in enumerate(units)}
        else:  # one copy in the object store, read in place by every task of a node
            ref = ray.put(shared)
            pending = {remote.remote(unit, ref): i for i, unit in enumerate(units)}
        results: list[Any] = [[] if streams else None for _ in units]
        failures: dict[int, BaseException] = {}
        try:
            with bar(total=len(units), desc=desc, unit="task") as progress:
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    for waited in ready:
                        i = pending[waited]
                        try:
                            if streams:
                                ref = next(waited, None)
                                if ref is None:  # the generator ended: the unit is done
                                    pending.pop(waited)
                                    progress.update(1)
                                    continue
                                result = ray.get(ref)
                                results[i].append(result)
                            else:
                                pending.pop(waited)
                                result = results[i] = ray.get(waited)
                        except ray.exceptions.RayError as e:  # the unit raised, or its worker died
                            pending.pop(waited, None)
                            failures[i] = e
                            progress.update(1)
                            continue
                        if on_result is not None:
                            on_result(i, result)
                        if not streams:
                            progress.update(1)
        finally:
            for waited in pending:  # the driver stopped (an error writing, Ctrl-C): stop the rest
                ray.cancel(waited, force=True)
        if failures:
            raise UnitsFailedError(desc, len(units), failures,
                                   [unit_label(u, i) for i, u in enumerate(units)])
        return results

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False


def task_options(gpus: float, cpus: float, retries: int) -> dict[str, Any]:
    """Ray options of every task. A task holding a fraction of a GPU is told its share
    ($LTHKIT_GPU_SHARE, read by `gpu.memory_budget`): the tasks sharing a card start at once, and
    each would otherwise size its probes, point blocks and Lanczos basis to the whole card."""
    options: dict[str, Any] = {"num_gpus": gpus, "num_cpus": cpus, "max_retries": retries}
    if 0 < gpus < 1:
        options["runtime_env"] = {"env_vars": {GPU_SHARE_ENV: repr(gpus)}}
    return options


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorError(RAY_MISSING) from None
    return ray


def make_executor(params: Any) -> Executor:
    """The executor `run.executor` names, set up from the run section's ray_* keys."""
    run = params.run
    if run.executor == "local":
        return LocalExecutor()
    try:
        return RayExecutor(address=run.ray_address, gpus_per_task=run.ray_gpus_per_task,
                           cpus_per_task=run.ray_cpus_per_task, max_retries=run.ray_max_retries)
    except ExecutorError as e:
        raise ExecutorError(f"{params.source}: {e}") from None
