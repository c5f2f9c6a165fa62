"""benchmarks/gpu_check.py, the one device script, at its CPU smoke sizes (so it cannot rot
before a session with a GPU runs it)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, THREADS


def test_gpu_check_runs_every_check_on_the_cpu(tmp_path):
    out = tmp_path / "gc"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"),
                           "--cpu-smoke", "--threads", str(THREADS), "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "gpu_check.json").read_text())
    status = {r["name"]: r["status"] for r in summary["results"]}
    assert set(status) == {"fused_group_resume", "graph_updates_weights", "resume_determinism",
                           "fused_against_lone", "fused_points", "precision", "block_hessian",
                           "hvp_modes", "fused_training_speed", "auto_choices", "paper_time"}
    assert status.pop("graph_updates_weights") == "skipped"  # CUDA graphs need a GPU
    assert set(status.values()) == {"ok"}, status
    assert "| fused_group_resume | ok |" in (out / "gpu_check.md").read_text()
    assert (out / "paper_time.txt").read_text().count("TOTAL") == 1
    for line in ("ok       fused_group_resume", "skipped  graph_updates_weights"):
        assert line in done.stdout


def test_a_failing_check_is_reported_and_the_rest_still_run(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_check
    import torch

    checks = gpu_check.Checks(tmp_path, 100.0, gpu_check.CPU_SMOKE, torch.device("cpu"))

    def broken():
        raise RuntimeError("boom")

    checks.run("broken", broken)
    checks.run("fine", lambda: (True, "1.5x", {"ratio": 1.5}))
    checks.budget = -1
    checks.run("late", lambda: (True, "", {}))
    results = json.loads((tmp_path / "gpu_check.json").read_text())["results"]
    assert [(r["name"], r["status"]) for r in results] == [
        ("broken", "FAILED"), ("fine", "ok"), ("late", "not run")]
    assert "RuntimeError: boom" in results[0]["figure"]
