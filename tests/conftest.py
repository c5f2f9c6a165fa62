"""Shared fixtures: tiny parameter sets whose run folders live in a temporary directory."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from lthkit.params import Params, params_from_dict

ROOT = Path(__file__).resolve().parents[1]

TINY: dict[str, Any] = {
    "run": {"name": "tiny", "seed": 0},
    "data": {"dataset": "synthetic_cifar10", "train_size": 128, "test_size": 64},
    "model": {"arch": "resnet20", "width": 2},
    "train": {"epochs": 3, "batch_size": 32, "lr": 0.05, "milestones": [2], "eval_batch_size": 64},
    "imp": {"levels": 2, "prune_fraction": 0.2, "rewind_iteration": 2, "save_every": 1},
    "analysis": {"subset_size": 64, "batch_size": 64},
}


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for section, values in overrides.items():
        out.setdefault(section, {}).update(values)
    return out


# `make test` runs the suite on two pytest-xdist workers (pyproject.toml: -n 2). Each worker keeps
# to one torch thread, so two workers never ask for more threads than the two cores of CI have;
# run alone (-n 0) tests use two. Each worker runs the smoke notebooks its tests need in a smoke
# run folder of its own (xdist_group would keep them on one worker, but pytest-xdist 3.8's
# loadgroup does not take effect under pytest 9.2: measured, the groups were ignored).
THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(THREADS)
    yield


@pytest.fixture
def tiny(tmp_path: Path):
    """Build a tiny Params (overrides by section) whose run folder is under tmp_path."""

    def make(**overrides: dict[str, Any]) -> Params:
        raw = merge(TINY, overrides)
        raw["run"]["output_root"] = str(tmp_path / "outputs")
        return params_from_dict(raw, source="tiny")

    return make


@pytest.fixture
def write_yaml(tmp_path: Path):
    """Write a dict as a YAML file in tmp_path and return its path."""

    def write(raw: dict[str, Any], name: str = "p.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(raw))
        return path

    return write


class SmokeSeries:
    """Runs notebooks on a smoke preset, once each per test session, in one run folder."""

    def __init__(self, folder: Path, preset: str = "smoke"):
        self.folder = folder
        raw = yaml.safe_load((ROOT / "params" / f"{preset}.yaml").read_text())
        raw["run"]["output_root"] = str(folder / "outputs")
        raw["run"]["num_threads"] = THREADS
        self.params_file = folder / f"{preset}.yaml"
        self.params_file.write_text(yaml.safe_dump(raw))
        self.done: dict[str, Any] = {}

    def run(self, name: str, **parameters: Any):
        """Execute notebooks/<name>.ipynb with papermill (interactive off unless given)."""
        import nbformat
        import papermill

        key = name + repr(sorted(parameters.items()))
        if key not in self.done:
            suffix = "".join(f"-{k}={v}" for k, v in sorted(parameters.items()))
            out = self.folder / f"{name}{suffix}.ipynb"
            papermill.execute_notebook(
                str(ROOT / "notebooks" / f"{name}.ipynb"), str(out), kernel_name="python3",
                cwd=str(ROOT), progress_bar=False,
                parameters={"params_file": str(self.params_file), "interactive": False,
                            **parameters})
            self.done[key] = nbformat.read(out, as_version=4)
        return self.done[key]


@pytest.fixture(scope="session")
def smoke(tmp_path_factory) -> SmokeSeries:
    return SmokeSeries(tmp_path_factory.mktemp("smoke"))


@pytest.fixture(scope="session")
def smoke_vgg16(tmp_path_factory) -> SmokeSeries:
    return SmokeSeries(tmp_path_factory.mktemp("smoke_vgg16"), preset="smoke_vgg16")
