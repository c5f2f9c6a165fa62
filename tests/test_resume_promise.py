"""The resume tests can fail: with resuming switched off each of them fails.

On the CPU training is deterministic, so a run that ignores its resume file and starts its
training over ends where a resumed run ends; the resume tests also count what the resumed call
trained (tests/training_steps.py). This test runs them under `tests/resume_off.py`, a plugin that
reads every resume file as absent, and expects every one of them to fail on an assertion.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RESUME_TESTS = [
    "tests/test_imp.py::test_resumed_training_equals_uninterrupted",
    "tests/test_imp.py::test_killed_imp_run_resumes_without_retraining_finished_levels",
    "tests/test_baselines.py::test_a_fused_members_checkpoint_resumes_alone",
    "tests/test_baselines.py::test_a_killed_group_resumes_and_matches_an_uninterrupted_run",
    "tests/test_baselines.py::test_a_group_killed_between_its_members_saves_regroups_by_progress",
    "tests/test_tickets.py::test_early_stopping_resumes_after_a_kill_as_if_uninterrupted",
]


def _outcomes(report: Path) -> dict[str, str]:
    """{test id: passed | failed: <message> | error: <message> | skipped} from a JUnit report."""
    out = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        found = [(c.tag, c.get("message", "")) for c in case
                 if c.tag in ("failure", "error", "skipped")]
        out[name] = f"{found[0][0]}: {found[0][1]}" if found else "passed"
    return out


def test_every_resume_test_fails_with_resuming_switched_off(tmp_path):
    report = tmp_path / "report.xml"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "tests"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "resume_off", "-p", "no:cacheprovider", "-n", "0",
         "-q", f"--basetemp={tmp_path / 'runs'}", f"--junitxml={report}", *RESUME_TESTS],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert report.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    outcomes = _outcomes(report)
    for test in RESUME_TESTS:
        path, name = test.split("::")
        module = path.removesuffix(".py").replace("/", ".")
        ran = {k: v for k, v in outcomes.items() if k.split("[")[0] == f"{module}::{name}"}
        assert ran, f"{test} did not run: {sorted(outcomes)} {done.stdout[-2000:]}"
        for case, outcome in ran.items():
            assert outcome.startswith("failure: AssertionError"), \
                f"{case} does not fail with resuming switched off: {outcome[:300]}"
