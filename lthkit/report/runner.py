"""The report runner: execute the notebooks in order with one parameter file.

    lthkit-report params/quick.yaml                 # every notebook the preset lists
    lthkit-report params/quick.yaml --only 04 05    # some of them
    python -m lthkit.report params/smoke.yaml

Each notebook runs through papermill with `params_file` and `interactive=False`; the executed copy
and an HTML copy go to outputs/<run>/notebooks/, and outputs/<run>/index.html links them with
their status, wall time and the figures. With `run.replicates: N` > 1 the series first runs for
replicates N-1, ..., 1 (papermill parameter `replicate`; executed copies in
outputs/<run>/replicate_<r>/notebooks/), then for replicate 0, whose notebooks read the others'
tables and are the report. With `run.executor: ray` the replicates' IMP chains, the groups of
baseline trainings, then the spectra, radius pairs, lines, planes and surfaces of notebooks 04-09
first run as Ray tasks in parallel (`run_units_on_executor`), so the notebooks find them done and
only draw them. The claims each notebook judged (lthkit.verdicts.paper_claims) are gathered in
outputs/<run>/claims.csv, and index.html opens with them.

A failing notebook stops the series: its error is printed (one line for the kit's own errors, else
the failing cell and traceback), and its executed copy goes to notebooks/failed/, beside the last
good copy, never over it. Expensive results are cached in the run folder, so running the report
again resumes where it stopped.

One runner at a time writes a run folder: it holds the folder's lock (lthkit.store.lock) from
before the manifest is read to its end; a second is refused in one line naming the first.

Kernels talk to the runner over IPC sockets (no plain-TCP warning in the notebooks), draw text
progress bars that the saved notebook keeps, and end with the runner: on SIGINT, SIGTERM or
SIGHUP the kernel is shut down before the runner exits, and a kernel left by a runner killed with
SIGKILL is ended by the next run of the same run folder before it starts. Their sockets and
connection files lie in one private folder (/tmp/lthkit-kernel-*: a socket's path must be short),
removed on exit; the one a killed runner left is removed by the next run, which reads it from
the runner's record.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from lthkit.config.base import ParamsError, notebook_path, project_root
from lthkit.config.catalog import check_inputs
from lthkit.config.params import Params, load_params, parse_overrides
from lthkit.config.seeds import replicate_params
from lthkit.config.series import ANALYSIS_NOTEBOOKS, BASELINES, TRAIN_IMP
from lthkit.platform.executor import ExecutorError, UnitsFailedError
from lthkit.platform.processes import process_started, same_process
from lthkit.platform.progress import ENV as PROGRESS_ENV
from lthkit.report.offline_html import notebook_html
from lthkit.store.files import (DamagedFileError, StorageError, atomic_write_bytes, load_json,
                                save_json)
from lthkit.store.layout import MissingInputError, RunMismatchError, RunStore
from lthkit.store.lock import RunFolderBusyError, lock_run_folder
from lthkit.store.paths import REPLICATE_DIR, replicate_dir
from lthkit.report.claims_page import STYLE as CLAIMS_STYLE
from lthkit.report.claims_page import claims_html
from lthkit.verdicts.claims import FRAME_COLUMNS
from lthkit.verdicts.paper_claims import claims_file

__all__ = ["run_report", "main", "NotebookResult", "RunnerBusyError"]

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
FAILED = "failed"  # notebooks/failed/: executed copies of notebooks that failed
# The kit's own errors: their message says what to do, so it is printed alone.
# The columns of claims.csv and of the report's opening table (lthkit.verdicts.claims.claims_frame).
CLAIM_COLUMNS = FRAME_COLUMNS
KIT_ERRORS = {"MissingInputError", "RunMismatchError", "ParamsError", "DamagedFileError",
              "StorageError", "DatasetMissingError", "NetworkError", "RunFolderBusyError"}


class RunnerBusyError(RunFolderBusyError):
    """Another lthkit-report is running the same run folder."""


@dataclass
class NotebookResult:
    name: str
    status: str  # "ok", "failed", "not run"
    seconds: float = 0.0
    error: str = ""
    note: str = ""  # e.g. a later attempt that failed while this good copy was kept
    replicate: int = 0  # which replicate's series (lthkit.verdicts.replicates); 0: the report's own

    @property
    def label(self) -> str:
        return self.name if self.replicate == 0 else f"{self.name}@replicate_{self.replicate}"


def notebook_dir() -> Path:
    return project_root() / "notebooks"


def resolve_notebook(name: str) -> Path:
    """A notebook by name or number prefix ('04' -> the one notebooks/04_*.ipynb)."""
    try:
        path = notebook_path(name)
    except ValueError as e:
        raise FileNotFoundError(str(e)) from None
    if not path.exists():
        raise FileNotFoundError(_no_notebook(name))
    return path


def _no_notebook(name: str) -> str:
    """Where the notebooks are looked for, and how to run from anywhere (the checkout the
    package comes from, when it has them)."""
    folder = notebook_dir()
    if folder.is_dir():
        return f"no notebook named {name!r} in {folder}"
    home = Path(__file__).resolve().parents[2]  # <checkout>/lthkit/report/runner.py
    there = (f"; the kit's are in {home / 'notebooks'}: run lthkit-report from {home} (or "
             f"any folder under it)" if (home / "notebooks").is_dir() else "")
    return (f"no notebook named {name!r}: notebooks are looked for in notebooks/ of the project "
            f"folder (the nearest folder holding params/ and notebooks/, from {Path.cwd()} up), "
            f"and there is none{there}")


def run_report(params: Params, params_file: Path, only: list[str] | None = None,
               html_copies: bool | None = None, stream: bool = False) -> list[NotebookResult]:
    """Execute the report's notebooks in order; stop at the first failure. Returns the results.

    With `run.replicates` N > 1 the series runs for replicates N-1, ..., 1 first (executed copies
    in <run>/replicate_<r>/notebooks/), then for replicate 0, whose notebooks are the report:
    they read the other replicates' tables. The claims every notebook saved are gathered into
    <run>/claims.csv and open index.html. Returns every series' results (replicate 0's last).

    Refuses (RunMismatchError) before running anything when the run folder, or a replicate's
    folder, holds results made with other training parameters, and (RunFolderBusyError) when
    another process writes the run folder: the folder's lock is held for the whole series.
    """
    with lock_run_folder(params.run_dir(), what=f"lthkit-report {params.source}"):
        return _run_report(params, params_file, only, html_copies, stream)


def _run_report(params: Params, params_file: Path, only: list[str] | None,
                html_copies: bool | None, stream: bool) -> list[NotebookResult]:
    names = only or params.report.notebooks
    notebooks = [resolve_notebook(n) for n in names]
    run_dir = params.run_dir()
    store = RunStore(run_dir)
    store.check_compatible(params)
    for r in range(1, params.run.replicates):
        RunStore(replicate_dir(run_dir, r)).check_compatible(replicate_params(params, r))
    store.clean()  # the replicates' folders too (stale temporary files of killed writers)
    make_html = params.report.html if html_copies is None else html_copies
    order = list(range(params.run.replicates - 1, 0, -1)) + [0]
    series = {r: [NotebookResult(nb.stem, "not run", replicate=r) for nb in notebooks]
              for r in order}
    with KernelGuard(run_dir / "notebooks") as guard:
        run_units_on_executor(params, notebooks)
        for r in order:
            if r:
                print(f"replicate {r} of {params.run.replicates - 1} (seed "
                      f"{replicate_params(params, r).run.seed}), before the report's own series",
                      flush=True)
            elif len(order) > 1:
                print("replicate 0 (the run folder): the report's notebooks", flush=True)
            out_dir = replicate_dir(run_dir, r) / "notebooks"
            if r:  # one runner per run folder (the guard): a partial copy is a killed runner's
                try:
                    out_dir.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise StorageError(out_dir, e) from None
                for partial in out_dir.glob(".*.running.ipynb"):
                    partial.unlink(missing_ok=True)
            if not _run_series(notebooks, series[r], out_dir, params_file, r, guard, make_html,
                               stream):
                break
    results = [res for r in order for res in series[r]]
    write_claims(params, names)
    write_index(params, series[0], {r: series[r] for r in order if r})
    return results


def run_units_on_executor(params: Params, notebooks: list[Path]) -> list[str]:
    """With `run.executor` other than local: the expensive work of the series' notebooks runs
    first as units of that executor (lthkit.platform.executor; in parallel on Ray), written into the
    run folder by this process: the replicates' IMP chains when notebook 01 is in the series, the
    groups of baseline trainings when 02 is, then the spectra, radius pairs, lines, planes and
    surfaces of 04-09 (lthkit.analysis.units). The notebooks then find their results and only report
    them. Returns the kinds of unit run.
    """
    stems = {nb.stem for nb in notebooks}
    kinds = [k for k, nb in (("imp", TRAIN_IMP), ("baselines", BASELINES)) if nb in stems]
    if stems & set(ANALYSIS_NOTEBOOKS):
        kinds.append("analyses")
    if params.run.executor == "local" or not kinds:
        return []
    from lthkit.analysis import units as analysis_units
    from lthkit.platform.executor import make_executor
    from lthkit.train.baselines import run_baselines_replicates
    from lthkit.train.imp import run_imp_replicates

    print(f"{', '.join(kinds)} of {params.run.replicates} replicate(s) on "
          f"{params.run.executor}, before the notebooks", flush=True)
    with make_executor(params) as executor:
        if "imp" in kinds:
            run_imp_replicates(params, executor)
        if "baselines" in kinds:
            run_baselines_replicates(params, executor)
        if "analyses" in kinds:
            analysis_units.run_analyses_replicates(params, executor, stems)
    return kinds


def _run_series(notebooks: list[Path], results: list[NotebookResult], out_dir: Path,
                params_file: Path, replicate: int, guard: "KernelGuard", make_html: bool,
                stream: bool) -> bool:
    """Execute one replicate's notebooks in order into `out_dir`; False at the first failure."""
    import papermill

    for i, (nb, result) in enumerate(zip(notebooks, results)):
        print(f"[{i + 1}/{len(notebooks)}] {nb.stem} ...", flush=True)
        partial = out_dir / f".{nb.stem}.running.ipynb"
        t0 = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(nb), str(partial), kernel_name="python3", cwd=str(project_root()),
                parameters={"params_file": str(params_file), "interactive": False,
                            "replicate": replicate},
                progress_bar=False, log_output=stream, coalesce_streams=True,
                kernel_manager_class=guard.kernel_manager_class())
            result.status = "ok"
        except papermill.PapermillExecutionError as e:
            result.status, result.error = "failed", _describe_failure(e, nb.stem, out_dir)
        except OSError as e:  # writing the executed copy: a full disk, a read-only folder
            result.status = "failed"
            result.error = str(e if isinstance(e, StorageError) else StorageError(partial, e))
        except Exception as e:  # the kernel died (out of memory?), a timeout
            result.status = "failed"
            result.error = f"{result.label}: {type(e).__name__}: {e}"
        finally:
            result.seconds = time.perf_counter() - t0
            _keep_executed_copy(partial, out_dir, nb.name, ok=result.status == "ok",
                                make_html=make_html)
        guard.raise_if_interrupted()
        print(f"    {result.status} in {result.seconds / 60:.1f} min", flush=True)
        if result.status == "failed":
            print(result.error, file=sys.stderr)
            return False
    return True


def write_claims(params: Params, notebooks: list[str] | None = None) -> Path:
    """<run>/claims.csv: the claims every notebook of the series saved (tables/claims_<nb>.csv,
    lthkit.verdicts.paper_claims), one row per claim, in the order of the series (atomically)."""
    import pandas as pd

    run_dir = params.run_dir()
    names = dict.fromkeys(resolve_notebook(n).stem
                          for n in [*params.report.notebooks, *(notebooks or [])])
    frames = []
    for name in names:
        path = run_dir / "tables" / claims_file(name)
        if path.exists():
            frames.append(pd.read_csv(path, index_col=0))
    table = (pd.concat(frames, ignore_index=True) if frames
             else pd.DataFrame(columns=CLAIM_COLUMNS))
    target = run_dir / "claims.csv"
    atomic_write_bytes(target, lambda f: table.to_csv(f, index=False), mode="w")
    return target


def _keep_executed_copy(partial: Path, out_dir: Path, name: str, ok: bool, make_html: bool) -> None:
    """A good copy replaces the last good one (and any failed one); a failed or interrupted copy
    goes to notebooks/failed/, leaving the last good copy in place."""
    if not partial.exists():
        return
    folder = out_dir if ok else out_dir / FAILED
    target = folder / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial.replace(target)
        if ok:
            for stale in (out_dir / FAILED / name, (out_dir / FAILED / name).with_suffix(".html")):
                stale.unlink(missing_ok=True)
    except OSError as e:
        raise StorageError(target, e) from None
    if make_html:
        write_html(target)


def _describe_failure(e: Exception, name: str = "", out_dir: Path | None = None) -> str:
    """The kit's own error in one line; any other error with the failing cell and traceback."""
    ename, evalue = getattr(e, "ename", "Error"), getattr(e, "evalue", str(e))
    folder = "notebooks"
    if out_dir is not None and REPLICATE_DIR.match(out_dir.parent.name):
        folder = f"{out_dir.parent.name}/notebooks"
    copy = (f" (the executed copy with the traceback: {folder}/{FAILED}/{name}.ipynb)" if name
            else "")
    if ename in KIT_ERRORS:
        return f"error in {name}: {evalue}{copy}"
    source = getattr(e, "source", "")
    tb = ANSI.sub("", "\n".join(getattr(e, "traceback", []) or []))
    return (f"--- failing cell (execution count {getattr(e, 'exec_count', '?')}) ---\n{source}\n"
            f"--- {ename}: {evalue} ---\n{tb}")


def write_html(executed: Path, run_dir: Path | None = None) -> Path:
    """An HTML copy of an executed notebook next to it that renders offline (its math by the run
    folder's own MathJax: lthkit.report.offline_html). `run_dir` defaults to the run folder
    holding it."""
    if run_dir is None:
        run_dir = executed.parent.parent
        if REPLICATE_DIR.match(run_dir.name):
            run_dir = run_dir.parent
    return notebook_html(executed, run_dir)


def _read_index(record: Path) -> dict[str, NotebookResult]:
    """The notebooks' last results (index.json); a damaged record is started afresh, with a note."""
    if not record.exists():
        return {}
    try:
        rows = load_json(record)
    except DamagedFileError as e:
        print(f"note: {e.problem} in {record}: the index starts afresh", file=sys.stderr)
        return {}
    known = {f.name for f in fields(NotebookResult)}
    return {r["name"]: NotebookResult(**{k: v for k, v in r.items() if k in known}) for r in rows}


def write_index(params: Params, results: list[NotebookResult],
                replicates: dict[int, list[NotebookResult]] | None = None) -> Path:
    """outputs/<run>/index.html: the claims of the series (claims.csv) first, then every notebook
    of the report with status, time, links, figures, and how each replicate's series went.

    Results of notebooks not run this time are kept from the previous index (index.json); a
    notebook that failed this time keeps its last good result, with a note linking the failure.
    """
    run_dir = params.run_dir()
    record = run_dir / "notebooks" / "index.json"
    known = _read_index(record)
    for r in results:
        before = known.get(r.name)
        if r.status == "failed" and before is not None and before.status == "ok":
            before.note = (f"a later run failed: notebooks/{FAILED}/{r.name}.ipynb "
                           f"({time.strftime('%Y-%m-%d %H:%M')})")
        elif r.status != "not run" or before is None:
            known[r.name] = r
    save_json(record, [asdict(r) for r in known.values()])
    rows = []
    for r in known.values():
        links = " ".join(f'<a href="notebooks/{r.name}.{ext}">{ext}</a>' for ext in ("html", "ipynb")
                         if (run_dir / "notebooks" / f"{r.name}.{ext}").exists())
        failed = run_dir / "notebooks" / FAILED / f"{r.name}.ipynb"
        if failed.exists():
            which = "html" if failed.with_suffix(".html").exists() else "ipynb"
            links += f' <a href="notebooks/{FAILED}/{r.name}.{which}">failed run</a>'
        rows.append(f"<tr class='{r.status.replace(' ', '-')}'><td>{html.escape(r.name)}</td>"
                    f"<td>{r.status}</td><td>{r.seconds / 60:.1f} min</td><td>{links}</td>"
                    f"<td>{html.escape(r.note)}</td></tr>")
    figures = sorted((run_dir / "figures").glob("*.png")) if (run_dir / "figures").exists() else []
    thumbs = "\n".join(f'<a href="figures/{f.name}"><figure><img src="figures/{f.name}" '
                       f'loading="lazy"><figcaption>{html.escape(f.stem)}</figcaption></figure></a>'
                       for f in figures)
    claims = claims_html(run_dir, params.claims.margins)
    replicate_rows = _replicates_html(run_dir, replicates or {})
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>lthkit report: {html.escape(params.run.name)}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:.3em 1em;text-align:left}}
.failed td{{color:#b00}} .not-run td{{color:#888}}
figure{{display:inline-block;margin:.5em;width:300px}} figure img{{width:300px}}
figcaption{{font-size:80%}}
{CLAIMS_STYLE}</style></head><body>
<h1>lthkit report: {html.escape(params.run.name)}</h1>
<p>Parameters: <code>{html.escape(params.source)}</code>; replicates: {params.run.replicates}</p>
{claims}
<h2>Notebooks</h2>
<table><tr><th>notebook</th><th>status</th><th>wall time</th><th>executed copy</th><th></th></tr>
{''.join(rows)}</table>
{replicate_rows}
<h2>Figures</h2>
{thumbs}
</body></html>"""
    index = run_dir / "index.html"
    atomic_write_bytes(index, lambda f: f.write(page), mode="w")
    return index


def _replicates_html(run_dir: Path, replicates: dict[int, list[NotebookResult]]) -> str:
    """How the other replicates' series went this time, with links to their executed copies."""
    if not replicates:
        return ""
    rows = []
    for r, results in sorted(replicates.items()):
        cells = []
        for res in results:
            copy = f"replicate_{r}/notebooks/{res.name}"
            ext = next((e for e in ("html", "ipynb") if (run_dir / f"{copy}.{e}").exists()), None)
            name = f'<a href="{copy}.{ext}">{html.escape(res.name)}</a>' if ext else \
                html.escape(res.name)
            cells.append(f"{name}: {res.status}")
        rows.append(f"<tr><td>replicate {r}</td><td>{', '.join(cells)}</td></tr>")
    return ("<h2>Replicates</h2><p>Each an independent run in its own folder, with its own seed; "
            "the notebooks above show their values beside the run folder's.</p>"
            f"<table>{''.join(rows)}</table>")


def save_yaml(path: Path, params: Params) -> None:
    """The full parameter set as a YAML file (atomically)."""
    atomic_write_bytes(path, lambda f: f.write(params.to_yaml()), mode="w")


def resolved_params_file(params: Params) -> Path:
    """The resolved parameters (a file given --set overrides) as a file of its own, named by its
    content under the run's notebooks/, so no later run changes what an executed notebook read."""
    text = params.to_yaml()
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    path = params.run_dir() / "notebooks" / f"params_{digest}.yaml"
    if not path.exists():
        atomic_write_bytes(path, lambda f: f.write(text), mode="w")
    return path


# --- the kernels --------------------------------------------------------------------------------

class KernelGuard:
    """The kernels of one runner: over IPC, recorded in the run's notebooks/.runner.json, and
    ended with the runner.

    On entry, a record left by a runner that is gone names its kernel and the folder of its
    sockets and connection files: if that kernel still runs, its process group is ended (and
    waited for) before anything starts, and the folder is removed; a runner that still runs the
    same folder is an error. SIGINT, SIGTERM and SIGHUP end the kernels and become
    KeyboardInterrupt while the guard is active, so every exit path passes through the kernel's
    shutdown; on exit a kernel still alive is killed, and the record (this runner's only) goes.
    """

    def __init__(self, folder: Path):
        self.record = folder / ".runner.json"
        self.kernels: list[int] = []
        self.kernel_dir: str | None = None  # the kernels' sockets and connection files
        self._handlers: dict[int, Any] = {}
        self._env: str | None = None
        self.interrupted: int | None = None  # the signal that asked the runner to stop

    # entry and exit ----------------------------------------------------------------------------
    def __enter__(self) -> "KernelGuard":
        self._end_leftover_kernel()
        self._write_record()
        for partial in self.record.parent.glob(".*.running.ipynb"):  # a killed runner's
            partial.unlink(missing_ok=True)
        self._env = os.environ.get(PROGRESS_ENV)
        os.environ.setdefault(PROGRESS_ENV, "text")  # kernels inherit it: text progress bars
        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                try:
                    self._handlers[sig] = signal.signal(sig, self._interrupt)
                except ValueError:  # not the main thread: signals stay as they are
                    pass
        return self

    def _interrupt(self, signum: int, frame: Any) -> None:
        """A signal to stop: the kernels are sent SIGTERM at once (not waited for), and
        KeyboardInterrupt is raised. Where a library swallows that exception (it can land in
        any frame of the event loop), the kernel's end still ends the cell it runs, and the
        runner stops at `raise_if_interrupted`."""
        self.interrupted = signum
        for pid in self.kernels:
            _signal_group(pid, signal.SIGTERM)
        raise KeyboardInterrupt(f"signal {signum}")

    def raise_if_interrupted(self) -> None:
        """KeyboardInterrupt when a signal to stop came, though its exception was lost."""
        if self.interrupted is not None:
            raise KeyboardInterrupt(f"signal {self.interrupted}")

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._handlers.items():
            signal.signal(sig, handler)
        if self._env is None:
            os.environ.pop(PROGRESS_ENV, None)
        for pid in self.kernels:
            _end_process_group(pid)
        if self.kernel_dir:
            shutil.rmtree(self.kernel_dir, ignore_errors=True)
        if (self._read_record() or {}).get("runner") == os.getpid():  # never another's record
            try:
                self.record.unlink(missing_ok=True)
            except OSError:
                pass

    # the record ----------------------------------------------------------------------------------
    def _write_record(self) -> None:
        me = os.getpid()
        kernel = self.kernels[-1] if self.kernels else None
        save_json(self.record, {"runner": me, "runner_started": process_started(me),
                                "kernel": kernel,
                                "kernel_started": process_started(kernel) if kernel else None,
                                "kernel_dir": self.kernel_dir})

    def _read_record(self) -> dict[str, Any] | None:
        if not self.record.exists():
            return None
        try:
            old = load_json(self.record)
        except DamagedFileError:
            return None
        return old if isinstance(old, dict) else None

    def _end_leftover_kernel(self) -> None:
        old = self._read_record()
        if old is None:
            return
        runner, kernel = old.get("runner"), old.get("kernel")
        if runner and runner != os.getpid() and same_process(runner, old.get("runner_started")):
            raise RunnerBusyError(
                f"another lthkit-report (pid {runner}) is running the run folder "
                f"{self.record.parent.parent}: wait for it to finish, or stop it (kill {runner})")
        if kernel and same_process(kernel, old.get("kernel_started")):
            print(f"note: ending the kernel (pid {kernel}) that an interrupted run left behind",
                  file=sys.stderr)
            _end_process_group(kernel)
        _remove_kernel_dir(old.get("kernel_dir"))

    def kernel_started(self, pid: int) -> None:
        self.kernels.append(pid)
        self._write_record()

    # the kernel manager --------------------------------------------------------------------------
    def kernel_manager_class(self) -> type:
        """AsyncKernelManager over IPC sockets, its sockets and connection file in a private
        folder that the record names, reporting its kernel's pid."""
        from jupyter_client.manager import AsyncKernelManager
        from traitlets import default

        guard = self
        if self.kernel_dir is None:
            self.kernel_dir = tempfile.mkdtemp(prefix=KERNEL_DIR_PREFIX)
            self._write_record()  # before a kernel starts: a killed runner's folder is known
        ipc = _ipc_available()

        class ReportKernelManager(AsyncKernelManager):
            @default("transport")
            def _transport_default(self) -> str:
                return "ipc" if ipc else "tcp"

            @default("ip")
            def _ip_default(self) -> str:
                if self.transport == "ipc":
                    return os.path.join(guard.kernel_dir, f"k{len(guard.kernels)}")
                return super()._ip_default()

            @default("connection_file")
            def _connection_file_default(self) -> str:
                return os.path.join(guard.kernel_dir, f"k{len(guard.kernels)}.json")

            async def start_kernel(self, **kw: Any) -> None:
                await super().start_kernel(**kw)
                pid = getattr(self.provisioner, "pid", None)
                if pid:
                    guard.kernel_started(int(pid))

            async def _async_interrupt_kernel(self) -> None:
                # jupyter_client interrupts a kernel before asking it to shut down; the idle
                # kernel then logs "KeyboardInterrupt caught in kernel" into the report's output.
                # A shutdown request reaches a busy kernel too (control channel), and one that
                # does not end is killed, so the interrupt is left out of shutdowns only.
                if not self.shutting_down:
                    await super()._async_interrupt_kernel()

        return ReportKernelManager


KERNEL_DIR_PREFIX = "lthkit-kernel-"


def _remove_kernel_dir(folder: object) -> None:
    """Remove a kernel folder a runner recorded (sockets, connection files); nothing else."""
    if not isinstance(folder, str) or not Path(folder).name.startswith(KERNEL_DIR_PREFIX):
        return
    if Path(folder).is_dir() and not Path(folder).is_symlink():
        shutil.rmtree(folder, ignore_errors=True)


def _ipc_available() -> bool:
    try:
        import zmq
    except ImportError:
        return False
    return os.name == "posix" and bool(zmq.has("ipc"))


def _signal_group(pid: int, sig: int) -> bool:
    """`sig` to the process group `pid` leads (a kernel leads its own), else to the process
    alone (not a group leader, or not POSIX); False when there is no such process."""
    try:
        if not hasattr(os, "killpg"):
            raise OSError
        os.killpg(pid, sig)
    except OSError:
        try:
            os.kill(pid, sig)
        except OSError:
            return False
    return True


def _end_process_group(pid: int, wait: float = 10.0) -> None:
    """SIGTERM to the process group `pid` leads (a kernel leads its own), SIGKILL after a
    grace period; returns once the leader is gone."""
    try:
        import psutil
    except ImportError:
        psutil = None
    for sig, grace in ((signal.SIGTERM, wait / 2), (getattr(signal, "SIGKILL", signal.SIGTERM),
                                                   wait / 2)):
        if not _signal_group(pid, sig):
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if psutil is not None:
                try:
                    if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                        try:
                            os.waitpid(pid, os.WNOHANG)
                        except ChildProcessError:
                            pass
                        return
                except psutil.NoSuchProcess:
                    return
            else:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
            time.sleep(0.05)


# --- command line ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lthkit-report", description=__doc__.split("\n")[0])
    parser.add_argument("params", help="parameter YAML, e.g. params/quick.yaml")
    parser.add_argument("--only", nargs="+", metavar="NOTEBOOK",
                        help="run only these notebooks (names or number prefixes)")
    parser.add_argument("--no-html", action="store_true", help="skip the HTML copies")
    parser.add_argument("--stream", action="store_true", help="echo notebook output while it runs")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a parameter, e.g. --set data.dataset=synthetic_cifar10")
    args = parser.parse_args(argv)
    try:
        overrides = parse_overrides(args.set)
        params = load_params(args.params, overrides)
        for name in args.only or []:
            resolve_notebook(name)
        check_inputs(params)  # the network on a stand-in batch, an image folder's files
    except (ParamsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    command = " ".join(["lthkit-report", *(sys.argv[1:] if argv is None else argv)])
    try:  # one runner per run folder: its lock, before the manifest is read
        with lock_run_folder(params.run_dir(), what=command):
            RunStore(params.run_dir()).check_compatible(params)
            # the notebooks read a file: with overrides, the resolved parameters get their own
            params_file = resolved_params_file(params) if overrides else Path(params.source)
            results = run_report(params, params_file, only=args.only,
                                 html_copies=False if args.no_html else None, stream=args.stream)
            ok = all(r.status == "ok" for r in results)
            if ok and overrides:
                save_yaml(params.run_dir() / "params.yaml", params)
    except (RunMismatchError, RunFolderBusyError, StorageError, DamagedFileError, ExecutorError,
            UnitsFailedError, MissingInputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, (RunMismatchError, RunFolderBusyError)) else 1
    except KeyboardInterrupt:
        print("interrupted: the notebook's kernel was ended; run the same command again to "
              "resume", file=sys.stderr)
        return 130
    index = params.run_dir() / "index.html"
    print(f"report: {index}")
    print(json.dumps({r.label: r.status for r in results}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
