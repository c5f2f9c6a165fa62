"""benchmarks/gpu_check.py, the one device script: at its CPU smoke sizes (so it cannot rot before
a session with a GPU runs it), and its runner against stand-in checks that fail in every way a
first contact with CUDA can (an error, a crash, a hang, a sticky device error, the budget)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from conftest import ROOT, THREADS

sys.path.insert(0, str(ROOT / "benchmarks"))
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
CHECKS = {"fused_group_resume", "graph_updates_weights", "resume_determinism",
          "fused_against_lone", "fused_points", "precision", "block_hessian", "hvp_modes",
          "fused_training_speed", "training_precision", "auto_choices", "paper_time"}


def _statuses(out) -> dict[str, str]:
    return {r["name"]: r["status"] for r in json.loads((out / "gpu_check.json").read_text())
            ["results"]}


def test_gpu_check_runs_every_check_on_the_cpu(tmp_path):
    out = tmp_path / "gc"
    budget = 600
    done = subprocess.run([sys.executable, str(SCRIPT), "--cpu-smoke", "--threads", str(THREADS),
                           "--out", str(out), "--budget", str(budget)],
                          capture_output=True, text=True, timeout=budget + 60, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    status = _statuses(out)
    assert set(status) == CHECKS
    assert status.pop("graph_updates_weights") == "skipped"  # CUDA graphs need a GPU
    assert set(status.values()) == {"ok"}, status
    assert "| fused_group_resume | ok |" in (out / "gpu_check.md").read_text()
    written = {p.stem for p in (out / "checks").glob("*.json") if not p.name.startswith(".")}
    assert written == CHECKS | {"environment"}
    assert (out / "logs" / "paper_time.txt").read_text().count("TOTAL") == 1
    presets = json.loads((out / "paper_time.json").read_text())
    assert all(v["total_minutes"] > 0 for v in presets.values())
    for line in ("ok       fused_group_resume", "skipped  graph_updates_weights"):
        assert line in done.stdout


STAND_INS = '''
    import os
    import signal
    import time

    from check_runner import Check

    _broken = False


    def device_fault():
        return "CUDA error: an illegal memory access was encountered" if _broken else None


    def fine(ctx):
        return True, "1.5x", {"ratio": 1.5}


    def broken(ctx):
        raise RuntimeError("boom")


    def sticky(ctx):
        global _broken
        _broken = True
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


    def crash(ctx):
        print("about to crash", flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)


    def hang(ctx):
        print("started the long part", flush=True)
        time.sleep(600)


    def forever(ctx):
        time.sleep(600)


    PLAN = [Check("fine", fine), Check("broken", broken), Check("sticky", sticky),
            Check("crash", crash), Check("hang", hang, limit=1.0),
            Check("after", lambda ctx: (True, "ran after all of them", {}))]
    BUDGET = [Check("forever", forever), Check("never", fine)]
'''


def _run_stand_ins(tmp_path, plan: str, budget: float) -> tuple[subprocess.CompletedProcess, float]:
    (tmp_path / "stand_ins.py").write_text(textwrap.dedent(STAND_INS))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    t0 = time.time()
    done = subprocess.run([sys.executable, str(SCRIPT), "--cpu-smoke", "--plan",
                           f"stand_ins:{plan}", "--out", str(tmp_path / "gc"), "--budget",
                           str(budget)], capture_output=True, text=True, timeout=budget + 60,
                          cwd=ROOT, env=env)
    return done, time.time() - t0


def test_a_check_that_raises_crashes_hangs_or_breaks_the_device_is_recorded_and_the_rest_run(
        tmp_path):
    done, _ = _run_stand_ins(tmp_path, "PLAN", 300)
    out = tmp_path / "gc"
    assert done.returncode == 1, done.stdout + done.stderr
    results = {r["name"]: r for r in json.loads((out / "gpu_check.json").read_text())["results"]}
    assert {n: r["status"] for n, r in results.items()} == {
        "fine": "ok", "broken": "FAILED", "sticky": "FAILED", "crash": "FAILED",
        "hang": "FAILED", "after": "ok"}
    assert results["broken"]["figure"] == "RuntimeError: boom"
    assert "then the device failed (CUDA error: an illegal memory access" in \
        results["sticky"]["figure"]
    assert "killed by SIGSEGV" in results["crash"]["figure"]
    assert "about to crash" in results["crash"]["figure"]
    assert "timed out" in results["hang"]["figure"]
    # streamed as it came: the hung check's output was on disk before it was killed
    assert "started the long part" in (out / "logs" / "hang.txt").read_text()
    assert "Traceback" in (out / "logs" / "broken.txt").read_text()
    assert len(list((out / "logs").glob("process-*.txt"))) == 4  # after sticky, crash, hang
    assert "| after | ok | ran after all of them |" in (out / "gpu_check.md").read_text()


def test_the_whole_run_ends_within_its_budget(tmp_path):
    budget = 20
    done, seconds = _run_stand_ins(tmp_path, "BUDGET", budget)
    status = _statuses(tmp_path / "gc")
    assert seconds < budget, done.stdout
    assert status["never"] == "not run"
    assert status["forever"] in ("FAILED", "not run")  # cut off (or, on a slow start, not begun)


def test_an_interrupted_run_says_so_and_takes_its_child_with_it(tmp_path):
    """The device call's own limit may kill gpu_check: the checks left are written as not run,
    and the child running a check does not outlive it."""
    (tmp_path / "stand_ins.py").write_text(textwrap.dedent(STAND_INS))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    out = tmp_path / "gc"
    parent = subprocess.Popen([sys.executable, str(SCRIPT), "--cpu-smoke", "--plan",
                               "stand_ins:BUDGET", "--out", str(out), "--budget", "300"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    running = out / "checks" / ".running.json"
    deadline = time.time() + 120
    while not running.exists() and time.time() < deadline:
        time.sleep(0.2)
    child = json.loads(running.read_text())["pid"]
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(60) == 130, parent.stdout.read()
    assert _statuses(out) == {"forever": "not run", "never": "not run"}
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def test_without_cuda_the_json_says_why(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 2
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    assert summary["status"] == "no CUDA"
    assert any(line.startswith("torch.cuda.init(): ") for line in summary["notes"])
    assert {r["status"] for r in summary["results"]} == {"not run"}
    assert "torch.cuda.init()" in (tmp_path / "gpu_check.md").read_text()


@pytest.mark.parametrize("check", ["check_fused_resume", "check_resume_determinism"])
def test_the_resume_checks_fail_when_resuming_is_off(tmp_path, monkeypatch, check):
    """With the training checkpoint's load patched to return nothing (a run that ignores its
    resume file and starts over), the resume checks must fail (issue 38 item 1): they resume
    into other start weights and check that epoch 1 was read back."""
    import gpu_check
    from lthkit.train.training import Checkpoint

    kit = gpu_check.Kit(gpu_check.CPU_SMOKE, torch.device("cpu"), tmp_path)
    monkeypatch.setattr(Checkpoint, "load", lambda self: None)
    ok, figure, _ = getattr(gpu_check, check)(kit)
    assert ok is False, figure
    assert "RETRAINED" in figure


def test_only_converged_eigsh_values_are_compared():
    import gpu_check

    converged = torch.tensor([9.0, 7.0], dtype=torch.float64)  # eigsh: 2 of 4 values
    lanczos = torch.tensor([9.0, 8.0, 7.0 + 1e-4, 1.0], dtype=torch.float64)
    assert gpu_check.matched_error(converged, lanczos, 9.0) == pytest.approx(1e-4 / 9)
    assert gpu_check.matched_error(converged, torch.tensor([9.0, 6.0]), 9.0) == \
        pytest.approx(1 / 9)
    assert gpu_check.matched_error(torch.tensor([]), lanczos, 9.0) is None


def test_paper_time_stops_at_its_deadline_and_says_so(tmp_path, monkeypatch, capsys):
    """gpu_check gives paper_time the time left: past it no measurement starts, the preset is
    written without a total, with the rows measured so far."""
    import paper_time

    def cost(self, spec):  # a stand-in unit: the first is measured, then the deadline passes
        paper_time._before(self.deadline, f"the {spec.unit} unit")
        self.deadline = 0.0
        return paper_time.Measured(0.01, "stand-in")

    monkeypatch.setattr(paper_time.UnitCosts, "cost", cost)
    monkeypatch.setattr(paper_time, "_group_size", lambda params, device, deadline=None: 1)
    target = tmp_path / "paper_time.json"
    paper_time.main([str(ROOT / "params" / "smoke.yaml"), "--device", "cpu", "--json",
                     str(target), "--deadline", "600"])
    preset = json.loads(target.read_text())[str(ROOT / "params" / "smoke.yaml")]
    assert preset["total_minutes"] is None and preset["stopped_before"].startswith("the ")
    assert len(preset["rows"]) == 1
    printed = capsys.readouterr().out
    assert "the deadline (600 s) passed before" in printed and "TOTAL" not in printed
