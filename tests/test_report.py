"""The report runner: failed and refused runs never replace a good report, errors in one line,
kernels over IPC that end with the runner, progress bars that read as text when saved."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml

import lthkit.report.runner as report
from lthkit.config.params import load_params
from lthkit.platform.progress import LINES_PER_CELL
from lthkit.report.runner import KernelGuard, RunnerBusyError, _describe_failure, main
from lthkit.store.files import StorageError, save_json

ROOT = Path(__file__).resolve().parents[1]
psutil = pytest.importorskip("psutil")


def _notebook(folder: Path, name: str, *cells: str) -> Path:
    """A notebook with a `parameters` cell (params_file, interactive) and the given code cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("params_file = None\ninteractive = None",
                                          metadata={"tags": ["parameters"]}),
                *(nbformat.v4.new_code_cell(c) for c in cells)]
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def preset(tmp_path) -> Path:
    """A parameter file whose run folder is under tmp_path."""
    path = tmp_path / "rt.yaml"
    path.write_text(yaml.safe_dump({
        "run": {"name": "rt", "output_root": str(tmp_path / "outputs")},
        "data": {"dataset": "synthetic_cifar10", "train_size": 128, "test_size": 64},
        "model": {"width": 2},
        "train": {"epochs": 3, "batch_size": 32, "milestones": [2], "lr": 0.05},
        "imp": {"levels": 1, "rewind_iteration": 2}}))
    return path


@pytest.fixture
def notebooks(tmp_path, monkeypatch):
    """Test notebooks the runner finds by name (besides the project's)."""
    folder = tmp_path / "nbs"
    folder.mkdir()
    real = report.resolve_notebook
    monkeypatch.setattr(report, "resolve_notebook",
                        lambda name: folder / f"{name}.ipynb"
                        if (folder / f"{name}.ipynb").exists() else real(name))
    return folder


def _outputs_text(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


def _cell_streams(path: Path) -> list[list[str]]:
    """Each code cell's stream output, as its lines."""
    nb = nbformat.read(path, as_version=4)
    return [[line for o in c.get("outputs", []) if o.get("output_type") == "stream"
             for line in o.get("text", "").splitlines()]
            for c in nb.cells if c.cell_type == "code"]


# --- kernels: IPC, progress, ended with the runner --------------------------------------------------

@pytest.mark.notebook
def test_executed_notebook_keeps_finished_progress_lines_and_no_tcp_warning(preset, notebooks,
                                                                            capfd):
    _notebook(notebooks, "progress",
              "import time\nfrom lthkit.platform.progress import bar\n"
              "for _ in bar(range(30), desc='work', mininterval=0):\n    time.sleep(0.01)\n"
              "for _ in bar(range(5), desc='inner', leave=False):\n    pass\nprint('done')",
              "for level in bar(range(3), desc='levels'):\n"
              "    for _ in bar(range(4), desc=f'level {level}', leave=False):\n        pass",
              "for point in range(9):\n"
              "    for _ in bar(range(6), desc=f'point {point}', unit='step', leave=False):\n"
              "        pass")
    assert main([str(preset), "--only", "progress", "--no-html"]) == 0
    executed = load_params(preset).run_dir() / "notebooks" / "progress.ipynb"
    text = _outputs_text(executed)
    assert re.search(r"work: 100%\|[^\n]*\| 30/30 \[", text), text
    assert re.search(r"inner: 100%\|[^\n]*\| 5/5 \[", text), "bars that end are kept too"
    assert "\r" not in text and not re.search(r"(?<!10)0%", text), "only the finished drawing"
    cells = _cell_streams(executed)
    assert len(cells[-2]) == 1 and re.match(r"levels: 100%\|[^\n]*\| 3/3 \[", cells[-2][0]), \
        "bars inside a unit of work leave no line"
    many = cells[-1]
    assert len(many) == LINES_PER_CELL + 1, many
    assert all(line.startswith(f"point {i}: 100%") for i, line in enumerate(many[:-1]))
    assert re.match(r"this cell: 9 units of work in [\d.]+ s: point x9 \(54 step, [\d.]+ s\); "
                    rf"{9 - LINES_PER_CELL} not shown line by line$", many[-1]), many[-1]
    nb = nbformat.read(executed, as_version=4)
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                   for c in nb.cells for o in c.get("outputs", []))
    captured = capfd.readouterr()
    assert "without encryption" not in captured.out + captured.err + executed.read_text()


def test_leftover_kernel_of_a_killed_runner_is_ended_before_the_next_run(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    kernel = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                              start_new_session=True)  # a kernel leads its own session
    try:
        dead_runner = subprocess.Popen([sys.executable, "-c", "pass"])
        dead_runner.wait()
        save_json(folder / ".runner.json", {
            "runner": dead_runner.pid, "runner_started": time.time() - 60, "kernel": kernel.pid,
            "kernel_started": psutil.Process(kernel.pid).create_time()})
        with KernelGuard(folder):
            kernel.poll()
            assert kernel.returncode is not None, "the leftover kernel was ended (and waited for)"
        assert not (folder / ".runner.json").exists()
    finally:
        if kernel.poll() is None:
            kernel.kill()


def test_second_runner_on_the_same_run_folder_is_refused(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    other = psutil.Process(os.getppid())
    save_json(folder / ".runner.json", {"runner": other.pid, "runner_started": other.create_time(),
                                        "kernel": None, "kernel_started": None})
    with pytest.raises(RunnerBusyError, match=f"pid {other.pid}"):
        KernelGuard(folder).__enter__()


RUNNER = """
import sys
from pathlib import Path
import lthkit.report.runner as r
real = r.resolve_notebook
r.resolve_notebook = lambda n: Path(n) if Path(n).is_file() else real(n)
sys.exit(r.main(sys.argv[1:]))
"""


@pytest.mark.notebook
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_runner_ends_its_kernel(preset, tmp_path, sig):
    running = tmp_path / "cell_running"  # the cell's own signal that it runs
    nb = _notebook(tmp_path, "sleepy", "import pathlib, time\n"
                   f"pathlib.Path({str(running)!r}).touch()\ntime.sleep(600)")
    record = load_params(preset).run_dir() / "notebooks" / ".runner.json"
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, str(preset), "--only", str(nb),
                               "--no-html"], start_new_session=True, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kernel = None
    try:
        deadline = time.monotonic() + 300
        while not running.exists() and time.monotonic() < deadline and runner.poll() is None:
            time.sleep(0.2)
        assert running.exists(), f"the cell did not start: {runner.communicate()}"
        kernel = next((p.pid for p in psutil.Process(runner.pid).children(recursive=True)
                       if "ipykernel" in " ".join(p.cmdline())), None)
        assert kernel, "the cell runs in a kernel of the runner's"
        assert json.loads(record.read_text())["kernel"] == kernel, "the runner records its kernel"
        os.killpg(runner.pid, sig)  # the whole process group, as a terminal or a job manager does
        out, err = runner.communicate(timeout=120)
        assert runner.returncode != 0 and "interrupted" in err, err
        gone = not psutil.pid_exists(kernel) or \
            psutil.Process(kernel).status() == psutil.STATUS_ZOMBIE
        assert gone, "the kernel ended with the runner"
        failed = record.parent / "failed" / "sleepy.ipynb"
        assert failed.exists() and not (record.parent / "sleepy.ipynb").exists()
        assert not record.exists()
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
        if kernel and psutil.pid_exists(kernel):
            os.killpg(kernel, signal.SIGKILL)


# --- failed and refused runs keep the good report ------------------------------------------------------

@pytest.mark.notebook
def test_failed_run_goes_beside_the_good_copy(preset, notebooks):
    _notebook(notebooks, "fragile",
              "import lthkit as lk\nP = lk.notebook_params(params_file, globals())\n"
              "print('lr', P.train.lr)\nassert P.train.lr < 0.5, 'lr too high for this notebook'")
    assert main([str(preset), "--only", "fragile", "--no-html", "--set", "train.lr=0.05"]) == 0
    run_dir = load_params(preset).run_dir()
    good, params_yaml = run_dir / "notebooks" / "fragile.ipynb", run_dir / "params.yaml"
    good_bytes, params_bytes = good.read_bytes(), params_yaml.read_bytes()
    assert main([str(preset), "--only", "fragile", "--no-html", "--set", "train.lr=0.9"]) == 1
    assert good.read_bytes() == good_bytes, "the good executed copy is kept"
    assert params_yaml.read_bytes() == params_bytes, "params.yaml is the good run's"
    failed = run_dir / "notebooks" / "failed" / "fragile.ipynb"
    assert "lr too high" in failed.read_text()
    index = json.loads((run_dir / "notebooks" / "index.json").read_text())
    entry = next(r for r in index if r["name"] == "fragile")
    assert entry["status"] == "ok" and "failed" in entry["note"]
    assert "notebooks/failed/fragile.ipynb" in (run_dir / "index.html").read_text()
    # the executed copies name the parameter files they read, which no later run changes
    read = {c.source for p in (good, failed) for c in nbformat.read(p, as_version=4).cells
            if "injected-parameters" in c.metadata.get("tags", [])}
    assert len(read) == 2 and all("notebooks/params_" in s for s in read)


@pytest.mark.notebook
def test_the_series_stops_at_the_first_failing_notebook_and_keeps_those_before(
        preset, notebooks, tmp_path, capsys):
    """The README: the runner stops at the first failing notebook and prints the failing cell;
    the notebooks before it are kept, the ones after it never start."""
    started = tmp_path / "started"
    started.mkdir()

    def starts(name: str) -> str:
        return f"import pathlib\npathlib.Path({str(started / name)!r}).touch()"

    _notebook(notebooks, "first", starts("first"), "print('first done')")
    _notebook(notebooks, "second", starts("second"), "raise ValueError('second breaks here')")
    _notebook(notebooks, "third", starts("third"))
    assert main([str(preset), "--only", "first", "second", "third", "--no-html"]) == 1
    assert sorted(p.name for p in started.iterdir()) == ["first", "second"]
    executed = load_params(preset).run_dir() / "notebooks"
    assert "first done" in _outputs_text(executed / "first.ipynb"), "the one before is kept"
    assert not (executed / "second.ipynb").exists() and not (executed / "third.ipynb").exists()
    assert "second breaks here" in (executed / "failed" / "second.ipynb").read_text()
    err = capsys.readouterr().err
    assert "raise ValueError('second breaks here')" in err, "the failing cell is printed"
    index = json.loads((executed / "index.json").read_text())
    assert {r["name"]: r["status"] for r in index} == {"first": "ok", "second": "failed",
                                                     "third": "not run"}


def test_refused_run_changes_nothing(preset, tmp_path, capsys):
    """A run whose training parameters differ stops before anything is written."""
    from lthkit.train.context import open_run

    params = load_params(preset)
    ctx = open_run(params, create=True)
    save_json(ctx.store.imp_dir(0) / "metrics.json", {"final": {}})  # a trained level
    folder = params.run_dir()
    kept = {folder / "notebooks" / "01_train_imp.ipynb": b'{"executed": "284 KB"}',
            folder / "notebooks" / "index.json": b"[]", folder / "index.html": b"<html>",
            folder / "params.yaml": b"train: {lr: 0.05}\n"}
    for path, data in kept.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    assert main([str(preset), "--only", "01", "--set", "train.lr=0.2"]) == 2
    err = capsys.readouterr().err
    assert "train.lr: 0.05 there, 0.2" in err and err.count("\n") <= 4
    assert all(path.read_bytes() == data for path, data in kept.items())
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before


def test_unknown_notebook_name_is_an_error_before_anything_runs(preset, capsys):
    assert main([str(preset), "--only", "99_nothing"]) == 2
    assert "99_nothing" in capsys.readouterr().err


def test_outside_the_project_the_message_says_where_notebooks_are_looked_for(tmp_path,
                                                                               monkeypatch):
    """Issue 33, item 6: started outside the project folder, the runner says where it looks for
    the notebooks and where the kit's are, instead of '<cwd>/notebooks' alone."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        report.resolve_notebook("04")
    message = str(e.value)
    assert "notebooks are looked for in notebooks/ of the project folder" in message
    assert f"from {tmp_path} up" in message
    assert f"run lthkit-report from {ROOT} (or any folder under it)" in message


def test_read_only_run_folder_is_one_line(preset, deny_writes, capsys):
    deny_writes(load_params(preset).run_dir())  # the OS's EACCES (chmod, or as root os.open)
    assert main([str(preset), "--only", "01"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: permission denied writing ") and "\n" not in err
    assert "earlier results are intact" in err and "Traceback" not in err


def test_kit_errors_are_reported_in_one_line():
    import papermill

    e = papermill.PapermillExecutionError(
        cell_index=3, exec_count=3, source="run_imp(ctx)", ename="StorageError",
        evalue="no space left on device writing imp/level_02/epochs/epoch_0003.pt in outputs/x; "
               "earlier results are intact: free some space",
        traceback=["\x1b[31mTraceback (most recent call last)\x1b[0m", "  File ...", "OSError"])
    msg = _describe_failure(e, "01_train_imp")
    assert msg.startswith("error in 01_train_imp: no space left on device writing imp/level_02")
    assert "Traceback" not in msg and msg.count("\n") == 0
    other = papermill.PapermillExecutionError(
        cell_index=1, exec_count=1, source="1/0", ename="ZeroDivisionError",
        evalue="division by zero", traceback=["Traceback ...", "ZeroDivisionError"])
    assert "1/0" in _describe_failure(other, "x"), "other errors show the failing cell"


def test_text_progress_bar_leaves_its_finished_line(monkeypatch):
    import io

    from lthkit.platform.progress import ENV, bar

    monkeypatch.setenv(ENV, "text")
    out = io.StringIO()
    for _ in bar(range(7), desc="level 3", leave=False, file=out):
        pass
    last = out.getvalue().split("\r")[-1]
    assert re.match(r"level 3: 100%\|[^\n]*\| 7/7 \[", last) and last.endswith("\n")
    monkeypatch.setenv(ENV, "")
    from tqdm.auto import tqdm as auto

    assert type(bar(range(2), disable=True)) is type(auto(range(2), disable=True))


def test_kernels_are_not_interrupted_on_their_way_out(tmp_path, monkeypatch):
    """jupyter_client interrupts a kernel before shutting it down, and the idle kernel logs
    'KeyboardInterrupt caught in kernel' into the report; the runner's manager skips that
    interrupt during a shutdown, and only then."""
    import asyncio

    from jupyter_client.manager import AsyncKernelManager

    sent = []

    async def interrupt(self):
        sent.append(self.shutting_down)

    monkeypatch.setattr(AsyncKernelManager, "_async_interrupt_kernel", interrupt)
    with KernelGuard(tmp_path / "notebooks") as guard:
        manager = guard.kernel_manager_class()()
        asyncio.run(manager._async_interrupt_kernel())  # a user's interrupt goes through
        manager.shutting_down = True
        asyncio.run(manager._async_interrupt_kernel())  # the one before a shutdown does not
    assert sent == [False]


def test_text_bars_inside_a_unit_of_work_leave_no_line(monkeypatch):
    import io

    from lthkit.platform import progress

    monkeypatch.setenv(progress.ENV, "text")
    progress.cell_summary()  # a fresh cell
    out = io.StringIO()
    for _ in progress.bar(range(2), desc="levels", file=out):
        for _ in progress.bar(range(3), desc="spectra", file=out, leave=False):
            pass
    lines = out.getvalue().replace("\r", "\n").strip().splitlines()
    assert lines and all(line.startswith("levels") for line in lines), lines
    assert progress.cell_summary() is None, "one unit, briefly: its line says it all"


def test_a_cell_of_many_units_leaves_its_quota_of_lines_and_one_summary(monkeypatch):
    import io

    from lthkit.platform import progress

    monkeypatch.setenv(progress.ENV, "text")
    progress.cell_summary()
    out = io.StringIO()
    for level in range(8):
        for _ in progress.bar(range(10), desc=f"level {level}", unit="it", file=out):
            pass
    for _ in progress.bar(range(4), desc="radius", unit="step", file=out):
        pass
    finished = [line for line in out.getvalue().split("\n") if line]
    assert len(finished) == progress.LINES_PER_CELL
    summary = progress.cell_summary()
    assert summary.startswith("this cell: 9 units of work in ")
    assert "level x8 (80 it, " in summary and "radius x1 (4 step, " in summary
    assert summary.endswith(f"{9 - progress.LINES_PER_CELL} not shown line by line")
    assert progress.cell_summary() is None, "the summary starts the count afresh"


def test_a_signal_whose_exception_is_swallowed_still_stops_the_runner(tmp_path):
    """A stop signal ends the kernels at once and is remembered: where a library swallows the
    KeyboardInterrupt (it can land in any frame of the event loop), the kernel's end ends the
    cell and the runner still stops (the CI once waited 120 s on a swallowed SIGINT)."""
    from lthkit.report.runner import KernelGuard

    kernel = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                              start_new_session=True)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN in a pytest-xdist worker
    try:
        with KernelGuard(tmp_path) as guard:
            guard.kernels.append(kernel.pid)
            guard.raise_if_interrupted()  # nothing yet
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
            except KeyboardInterrupt:
                pass  # swallowed, as a library might
            assert kernel.wait(timeout=10) == -signal.SIGTERM, "the kernel was sent SIGTERM"
            with pytest.raises(KeyboardInterrupt, match=f"signal {int(signal.SIGINT)}"):
                guard.raise_if_interrupted()
        assert signal.getsignal(signal.SIGINT) == before, "the handler before it is restored"
    finally:
        if kernel.poll() is None:
            kernel.kill()


# --- one runner per run folder ------------------------------------------------------------------

RACER = """
import sys, time
import lthkit.report.runner as r
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))  # the two start their run together
sys.exit(r.main(sys.argv[2:]))
"""


@pytest.mark.notebook
def test_two_runners_started_at_once_on_one_run_folder(tmp_path):
    """Two lthkit-report with other seeds and one run.name, started at the same instant: one is
    refused in one line naming the other's pid, before it writes anything, and the survivor's
    folder is an uninterrupted run's (python -m lthkit.store compare; the reference trained in
    this process as notebook 01 trains it, which saves a third runner's kernel)."""
    from lthkit.train.context import open_run
    from lthkit.train.imp import run_imp

    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump({
        "run": {"name": "race", "output_root": str(tmp_path / "outputs"), "num_threads": 1},
        "data": {"dataset": "synthetic_cifar10", "train_size": 128, "test_size": 64},
        "model": {"width": 4},
        "train": {"epochs": 2, "batch_size": 32, "milestones": [1], "lr": 0.05},
        "imp": {"levels": 1, "rewind_iteration": 2},
        "report": {"notebooks": ["01_train_imp"], "html": False}}))
    env = {k: v for k, v in os.environ.items()  # the racers are not this process's hands
           if k != "LTHKIT_HELD_RUN_FOLDERS"}
    start = time.time() + 8  # both imported by then

    def runner(*args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", RACER, str(start), str(preset), *args],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    racers = {seed: runner("--set", f"run.seed={seed}") for seed in (0, 1)}
    done = {seed: (p.wait(timeout=600), *p.communicate()) for seed, p in racers.items()}
    assert sorted(rc for rc, _, _ in done.values()) == [0, 2], done
    won = next(seed for seed, (rc, _, _) in done.items() if rc == 0)
    lost = 1 - won
    err = done[lost][2].strip()
    assert "\n" not in err and f"pid {racers[won].pid}" in err and f"kill {racers[won].pid}" in err
    race = tmp_path / "outputs" / "race"
    params = load_params(preset, {"run.seed": won, "run.name": "alone"})
    run_imp(open_run(params, create=True), progress=False)
    compared = subprocess.run([sys.executable, "-m", "lthkit.store", "compare", str(race),
                               str(params.run_dir())], cwd=ROOT, capture_output=True, text=True)
    assert compared.returncode == 0 and "0 different, 0 only in" in compared.stdout, compared
    written = [load_params(p).run.seed for p in (race / "notebooks").glob("params_*.yaml")]
    assert written == [won], "nothing of the refused runner's in the folder"
    assert load_params(race / "params.yaml").run.seed == won


def test_a_runner_never_removes_another_runners_record(tmp_path):
    folder = tmp_path / "notebooks"
    other = psutil.Process(os.getppid())
    with KernelGuard(folder) as guard:
        assert json.loads(guard.record.read_text())["runner"] == os.getpid()
        save_json(guard.record, {"runner": other.pid, "runner_started": other.create_time(),
                                 "kernel": None, "kernel_started": None})
    assert json.loads(guard.record.read_text())["runner"] == other.pid, "the other's record stays"
    with KernelGuard(tmp_path / "mine") as guard:
        pass
    assert not guard.record.exists(), "its own goes"


# --- what a killed runner's kernels leave in /tmp ------------------------------------------------

def test_kernel_sockets_and_connection_files_lie_in_one_folder_the_record_names(tmp_path):
    with KernelGuard(tmp_path / "notebooks") as guard:
        manager = guard.kernel_manager_class()()
        folder = Path(guard.kernel_dir)
        assert folder.is_dir() and folder.name.startswith("lthkit-kernel-")
        assert Path(manager.connection_file).parent == folder
        if manager.transport == "ipc":
            assert Path(manager.ip).parent == folder
        assert json.loads(guard.record.read_text())["kernel_dir"] == str(folder)
    assert not folder.exists(), "removed with the runner"


def test_the_kernel_folder_of_a_killed_runner_is_removed_by_the_next_run(tmp_path):
    import tempfile

    left = Path(tempfile.mkdtemp(prefix="lthkit-kernel-"))
    for name in ("k0-1", "k0-2", "k0.json"):  # sockets, a connection file
        (left / name).write_text("")
    foreign = Path(tempfile.mkdtemp(prefix="someone-else-"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        for folder, kernel_dir in ((tmp_path / "a", left), (tmp_path / "b", foreign)):
            save_json(folder / ".runner.json", {
                "runner": dead.pid, "runner_started": time.time() - 60, "kernel": None,
                "kernel_started": None, "kernel_dir": str(kernel_dir)})
            with KernelGuard(folder):
                pass
        assert not left.exists(), "the killed runner's kernel folder is gone"
        assert foreign.is_dir(), "a folder the kit did not make is never removed"
    finally:
        import shutil

        shutil.rmtree(left, ignore_errors=True)
        shutil.rmtree(foreign, ignore_errors=True)


# --- a full disk while copying MathJax --------------------------------------------------------------

def test_a_full_disk_while_copying_mathjax_says_so_and_where(tmp_path, monkeypatch):
    import errno
    import shutil

    from lthkit.report.offline_html import MATHJAX_DIR, copy_mathjax

    run_dir = tmp_path / "run"
    save_json(run_dir / "manifest.json", {"params": {}})
    real = shutil.copyfile
    copied = []

    def fills_up(src, dst, *args, **kwargs):
        if len(copied) == 5:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), dst)
        copied.append(dst)
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", fills_up)
    with pytest.raises(StorageError) as info:
        copy_mathjax(run_dir)
    msg = str(info.value)
    assert msg.startswith(f"no space left on device writing {MATHJAX_DIR} in {run_dir}"), msg
    assert "free some space" in msg and "\n" not in msg
    assert not (run_dir / MATHJAX_DIR).exists() and not list(run_dir.glob("_static/.*partial"))
