"""A pytest plugin that switches resuming off: every training's resume file reads as absent, so a
killed run starts its training over. `tests/test_resume_promise.py` runs the resume tests under it
(`pytest -p resume_off`) and expects each of them to fail; never loaded otherwise."""

from __future__ import annotations


def pytest_configure(config) -> None:
    from lthkit.train.training import Checkpoint

    Checkpoint.load = lambda self: None
