"""Shared fixtures: tiny parameter sets whose run folders live in a temporary directory."""

from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from filelock import FileLock

from lthkit.config.params import Params, params_from_dict

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
# run alone (-n 0) tests use two. The workers share the smoke run folders (SmokeSeries): each
# smoke notebook runs once per session, whichever worker needs it first.
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
    """Runs notebooks on a smoke preset, once each per test session, in one run folder that the
    session's xdist workers share: a notebook one worker ran (or is running: a lock per notebook)
    is read by the other, not run again. Notebooks write atomically and lock a folder's checksums,
    so two workers may run different notebooks of the series at once.

    With `plan_only`, notebooks 04-08 run with LTHKIT_PLAN_ONLY=1: each computes its declared plan
    (lthkit.analysis.plans) and any other computation it makes stops it (OutsidePlanError), so
    the notebook tests check that every plan is complete at no extra cost. (Notebook 09's Fig 25
    trajectory losses are not part of its plan: it runs without the check.)"""

    PLAN_CHECKED = ("04_hessian_volume", "05_basin_radius", "06_barriers", "07_sublevel_sets",
                    "08_pruning_choices")

    def __init__(self, folder: Path, preset: str = "smoke", edit=None, plan_only: bool = False):
        self.folder = folder
        self.plan_only = plan_only
        self.params_file = folder / f"{preset}.yaml"
        with FileLock(folder / "params.lock"):
            if not self.params_file.exists():
                raw = yaml.safe_load((ROOT / "params" / f"{preset}.yaml").read_text())
                raw["run"]["output_root"] = str(folder / "outputs")
                raw["run"]["num_threads"] = THREADS
                if edit is not None:  # a series of its own made from a preset
                    edit(raw, folder)
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
            finished = out.with_suffix(".finished")  # papermill writes `out` while it runs
            with FileLock(out.with_suffix(".lock")):
                if not finished.exists():
                    with _plan_only(self.plan_only and name in self.PLAN_CHECKED):
                        papermill.execute_notebook(
                            str(ROOT / "notebooks" / f"{name}.ipynb"), str(out),
                            kernel_name="python3", cwd=str(ROOT), progress_bar=False,
                            parameters={"params_file": str(self.params_file),
                                        "interactive": False, **parameters})
                    finished.touch()
            self.done[key] = nbformat.read(out, as_version=4)
        return self.done[key]


@contextlib.contextmanager
def _plan_only(on: bool):
    """LTHKIT_PLAN_ONLY=1 in the environment the notebook's kernel inherits, while it runs."""
    from lthkit.analysis.plans import PLAN_ONLY

    before = os.environ.get(PLAN_ONLY)
    if on:
        os.environ[PLAN_ONLY] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PLAN_ONLY, None)
        else:
            os.environ[PLAN_ONLY] = before


def session_folder(tmp_path_factory, name: str) -> Path:
    """A folder of the whole test session: shared by its xdist workers (their temporary folders
    have one parent), a fresh one when pytest runs in one process."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return tmp_path_factory.mktemp(name)
    folder = tmp_path_factory.getbasetemp().parent / name
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def smoke(tmp_path_factory) -> SmokeSeries:
    return SmokeSeries(session_folder(tmp_path_factory, "smoke"), plan_only=True)


@pytest.fixture(scope="session")
def smoke_vgg16(tmp_path_factory) -> SmokeSeries:
    return SmokeSeries(session_folder(tmp_path_factory, "smoke_vgg16"), preset="smoke_vgg16")


@pytest.fixture(scope="session")
def smoke_torchvision(tmp_path_factory) -> SmokeSeries:
    return SmokeSeries(session_folder(tmp_path_factory, "smoke_torchvision"),
                       preset="smoke_torchvision")


@pytest.fixture(scope="session")
def smoke_factory(tmp_path_factory) -> SmokeSeries:
    return SmokeSeries(session_folder(tmp_path_factory, "smoke_factory"), preset="smoke_factory")


@pytest.fixture(scope="session")
def smoke_open_lth(tmp_path_factory) -> SmokeSeries:
    return SmokeSeries(session_folder(tmp_path_factory, "smoke_open_lth"), preset="smoke_open_lth")


def _image_folder_series(raw: dict, folder: Path) -> None:
    """smoke_factory's schedule on an image folder made on the fly, with a ResNet-8 of the kit."""
    from image_folder import make_image_folder

    root = make_image_folder(folder / "images", {"train": 60, "test": 20})
    raw["run"]["name"] = "smoke_folder"
    raw["data"] = {"dataset": "folder", "root": str(root), "image_size": 24}
    raw["model"] = {"arch": "resnet", "depth": 8, "width": 4}
    raw["train"]["batch_size"] = 36  # 180 images: 5 iterations per epoch
    raw["imp"]["rewind_iteration"] = 5


@pytest.fixture(scope="session")
def smoke_folder(tmp_path_factory) -> SmokeSeries:
    return SmokeSeries(session_folder(tmp_path_factory, "smoke_folder"), preset="smoke_factory",
                       edit=_image_folder_series)


@pytest.fixture
def deny_writes(monkeypatch):
    """Make a folder (and the folders below it) refuse new files and folders as folders without
    write permission do, with the OS's own EACCES: by chmod where permissions hold; as root, who
    bypasses them, through os.open and os.mkdir raising PermissionError(EACCES) for a new entry
    below it (tempfile.mkstemp, where every artifact's write starts, creates through os.open)."""
    import errno

    denied: list[Path] = []
    real_open, real_mkdir = os.open, os.mkdir

    def below(path) -> bool:
        p = Path(os.fsdecode(path)).absolute()
        return any(d == p or d in p.parents for d in denied)

    def creates_below(path) -> bool:  # a new entry in a denied folder (an existing one: EEXIST)
        return below(Path(os.fsdecode(path)).parent) and not os.path.lexists(path)

    def refusing_open(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and creates_below(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    def refusing_mkdir(path, *args, **kwargs):
        if creates_below(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))
        return real_mkdir(path, *args, **kwargs)

    def deny(folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            for sub in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
                sub.chmod(0o555)
                denied.append(sub)
            return
        if not denied:
            monkeypatch.setattr(os, "open", refusing_open)
            monkeypatch.setattr(os, "mkdir", refusing_mkdir)
        denied.append(folder.absolute())

    yield deny
    if os.geteuid() != 0:
        for sub in denied:
            sub.chmod(0o755)
