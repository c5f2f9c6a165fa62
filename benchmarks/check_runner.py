"""Runs named checks in a child process within a wall-clock budget, and reports whatever happens
(the runner of benchmarks/gpu_check.py, apart from its checks).

The parent (`orchestrate`) starts a child process (the script again, in worker mode) with the
checks still to run and watches it. The child (`work`) runs them one after another: each
check's output (file descriptors 1 and 2, so native libraries' messages too) is streamed to
logs/<check>.txt as it comes, and its result is written to checks/<check>.json when it ends;
checks/.running.json names the check running, when it started and its wall-clock limit (its
own, never past the budget). The parent records each result as it lands, printing one line and
rewriting <stem>.json and <stem>.md atomically. A check past its limit is killed with its
process (FAILED, timed out); a child that dies inside a check (a crash) gets that check FAILED
with the last lines of its log; a check after which the device fails (a sticky CUDA error) is
FAILED and its child exits. In each case the checks left go on in a fresh child; a check that
could not start within the budget is "not run". Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from lthkit.platform.errors import first_line
from lthkit.store.files import atomic_write_bytes

__all__ = ["Result", "Check", "Report", "orchestrate", "work", "write_json", "read_json"]

MIN_START = 5.0      # a check with less time than this left is not started
KILL_SLACK = 3.0     # seconds past its limit before a check's process is killed
FINISH = 10.0        # seconds of the budget kept for that, the kill itself and the last write
STATUSES = ("ok", "FAILED", "skipped", "not run")


@dataclass
class Result:
    name: str
    status: str        # one of STATUSES
    figure: str
    seconds: float
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Any], tuple[bool | None, str, dict]]  # (ok, or None: skipped; figure; data)
    limit: float | None = None     # seconds; None: what is left of the budget


def write_text(path: Path, text: str) -> None:
    """`text` to `path` atomically (a temporary file renamed over it): a kill leaves the old
    file or the new one, never half of one."""
    atomic_write_bytes(path, lambda f: f.write(text), mode="w")


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=1, default=str))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def log_tail(path: Path, lines: int = 6) -> str:
    """The last non-empty lines of a log, joined on one line."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no output)"
    return " / ".join(line.strip() for line in text[-lines:] if line.strip())[-600:] or \
        "(no output)"


# --- the summary ---------------------------------------------------------------------------------

class Report:
    """The results so far, printed one line each and written after each (<stem>.json, .md).
    `header` goes at the top of the JSON; the child's checks/environment.json beside it."""

    def __init__(self, out: Path, stem: str, header: dict, t0: float):
        self.out, self.stem, self.header, self.t0 = out, stem, header, t0
        self.results: list[Result] = []
        self.notes: list[str] = []  # lines under the title of the .md (and "notes" in the JSON)

    def add(self, result: Result) -> None:
        self.results.append(result)
        print(f"{result.status:8s} {result.name}: {result.figure} ({result.seconds:.1f} s)",
              flush=True)
        self.write()

    def write(self) -> None:
        environment = read_json(self.out / "checks" / "environment.json") or {}
        summary = {"device": environment.get("device"), **self.header, "environment": environment,
                   "seconds": time.time() - self.t0, "notes": self.notes,
                   "results": [asdict(r) for r in self.results]}
        write_json(self.out / f"{self.stem}.json", summary)
        torch = f" (torch {self.header['torch']})" if "torch" in self.header else ""
        lines = [f"# {self.stem} on {summary['device'] or 'no device'}{torch}", "", *self.notes, "",
                 "| check | status | figure | s |", "| --- | --- | --- | ---: |"]
        lines += [f"| {r.name} | {r.status} | {r.figure.replace('|', '/')} | {r.seconds:.1f} |"
                  for r in self.results]
        write_text(self.out / f"{self.stem}.md", "\n".join(lines) + "\n")


# --- the parent ----------------------------------------------------------------------------------

def orchestrate(names: list[str], report: Report, budget: float,
                command: Callable[[list[str], float], list[str]]) -> int:
    """Run the checks `names` in child processes (`command(names, end_at)`: the child's command
    line) within `budget` seconds of `report.t0`; 1 if any FAILED, else 0."""
    out = report.out
    end_at = report.t0 + budget - FINISH
    for folder in ("checks", "logs"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for stale in [*(out / "checks").glob("*.json"), *(out / "checks").glob(".*.json")]:
        stale.unlink()
    report.write()
    print(f"{report.stem}: {len(names)} checks within {budget:.0f} s; files in {out}", flush=True)
    pending = list(names)
    signal.signal(signal.SIGTERM, _interrupt)  # a killed parent takes its child with it
    try:
        while pending:
            if end_at - time.time() < MIN_START:
                for name in pending:
                    report.add(Result(name, "not run", f"over the --budget of {budget:.0f} s",
                                      0.0))
                break
            pending = _one_child(command(pending, end_at), pending, report)
    except KeyboardInterrupt:  # SIGINT or SIGTERM: say so for every check left, then stop
        for name in pending:
            report.add(Result(name, "not run", "the run was interrupted", 0.0))
        return 130
    failed = [r.name for r in report.results if r.status == "FAILED"]
    print(f"{len(report.results) - len(failed)} of {len(report.results)} checks not failed in "
          f"{time.time() - report.t0:.0f} s" + (f"; FAILED: {', '.join(failed)}" if failed
                                                 else ""), flush=True)
    return 1 if failed else 0


def _one_child(command: list[str], pending: list[str], report: Report) -> list[str]:
    """Run one child until it ends or is killed; the checks still pending after it."""
    out = report.out
    running_file = out / "checks" / ".running.json"
    running_file.unlink(missing_ok=True)
    log = out / "logs" / f"process-{len(list((out / 'logs').glob('process-*'))) + 1}.txt"
    with open(log, "wb") as sink:
        child = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:
        return _watch(child, log, pending, report)
    except BaseException:
        _kill(child)
        _collect(out, pending, report)
        raise


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _watch(child: subprocess.Popen, log: Path, pending: list[str], report: Report) -> list[str]:
    """Record the child's results as they land, kill it past a check's limit; the checks still
    pending when it ends or is killed."""
    out = report.out
    running_file = out / "checks" / ".running.json"
    running = None
    while True:
        code = child.poll()
        _collect(out, pending, report)
        running = read_json(running_file) or running
        if code is not None:
            break
        if running and running["name"] in pending and \
                time.time() > running["started"] + running["limit"] + KILL_SLACK:
            _kill(child)
            _collect(out, pending, report)
            name = running["name"]
            if name in pending:
                report.add(Result(name, "FAILED", f"timed out: still running after "
                                  f"{running['limit']:.0f} s, its limit (killed; the last of its "
                                  f"output: {log_tail(out / 'logs' / f'{name}.txt')})",
                                  time.time() - running["started"], {"timed_out": True}))
                pending.remove(name)
            return pending
        time.sleep(0.2)
    _collect(out, pending, report)
    if running and running["name"] in pending:  # the child died inside this check
        name = running["name"]
        report.add(Result(name, "FAILED", f"its process died ({_exit_words(code)}) during the "
                          f"check: {log_tail(out / 'logs' / f'{name}.txt')}; "
                          f"{log_tail(log, 2)}", time.time() - running["started"],
                          {"exit_code": code}))
        pending.remove(name)
    elif running is None and pending:  # it never started a check: each would fail alike
        for name in pending:
            report.add(Result(name, "FAILED", f"the checks' process could not start "
                              f"({_exit_words(code)}): {log_tail(log)}", 0.0,
                              {"exit_code": code}))
        return []
    return pending


def _collect(out: Path, pending: list[str], report: Report) -> None:
    """Record the results the child has written since the last look."""
    for name in list(pending):
        data = read_json(out / "checks" / f"{name}.json")
        if data is not None:
            report.add(Result(**data))
            pending.remove(name)


def _kill(child: subprocess.Popen) -> None:
    """End the child's process group: SIGTERM, then SIGKILL after 2 s."""
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, sig)
        try:
            child.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _exit_words(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


# --- the child -----------------------------------------------------------------------------------

def work(plan: list[Check], names: list[str], end_at: float, out: Path, context: Any,
         environment: Callable[[], dict], device_fault: Callable[[], str | None]) -> int:
    """Run the checks `names` of `plan` in order, each given `context` (its `deadline` set to
    when the check must end); each one's output to logs/<name>.txt, its result to
    checks/<name>.json. `device_fault()` after each: None, or why the device no longer works
    (then that check is FAILED and this returns 3: the rest need a fresh process)."""
    sys.stdout.reconfigure(line_buffering=True)
    by_name = {c.name: c for c in plan}
    write_json(out / "checks" / "environment.json", environment())
    for name in names:
        check = by_name[name]
        left = end_at - time.time()
        limit = left if check.limit is None else min(check.limit, left)
        if left < MIN_START:
            write_json(out / "checks" / f"{name}.json",
                       asdict(Result(name, "not run", "over the --budget", 0.0)))
            continue
        started = time.time()
        context.deadline = started + limit
        write_json(out / "checks" / ".running.json", {"name": name, "started": started,
                                                      "limit": limit, "pid": os.getpid()})
        with output_to(out / "logs" / f"{name}.txt"):
            result = _run_one(check, context)
            fault = device_fault()
        if fault is not None:
            result.status = "FAILED"
            result.figure += (f"; then the device failed ({fault}): a sticky error, the checks "
                              f"left run in a new process")
        result.seconds = time.time() - started
        write_json(out / "checks" / f"{name}.json", asdict(result))
        if fault is not None:
            return 3
    return 0


def _run_one(check: Check, context: Any) -> Result:
    """The check's result, or FAILED with whatever it raised (a crashing check is a finding)."""
    try:
        ok, figure, data = check.run(context)
        status = "skipped" if ok is None else ("ok" if ok else "FAILED")
    except Exception as e:
        status, figure = "FAILED", f"{type(e).__name__}: {first_line(e, 300)}"
        data = {"traceback": traceback.format_exc()}
        print(data["traceback"], flush=True)
    except SystemExit as e:  # a script called inside (paper_time) that exits
        status, figure, data = "FAILED", f"it exited ({e.code})", {}
    return Result(check.name, status, figure, 0.0, data)


@contextlib.contextmanager
def output_to(path: Path):
    """The process's stdout and stderr (file descriptors 1 and 2: native libraries' messages
    too) go to `path` inside the block, as they come."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab", buffering=0) as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
