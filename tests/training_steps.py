"""Counting the optimizer steps a training takes, for the resume tests: on the CPU a run that
ignores its resume file and starts over ends where a resumed run ends (training is deterministic),
so a resume test must also see that the resumed call trained only what was left."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


@contextmanager
def counted_steps() -> Iterator[list[int]]:
    """A list that gains one entry per optimizer step taken inside the block, by `train` alone or
    by a fused group (one step of the group counts once)."""
    import lthkit.train.training as training

    steps: list[int] = []
    real = training._optimizer_step

    def counting(*args, **kwargs):
        step = real(*args, **kwargs)

        def counted(*batch):
            steps.append(1)
            return step(*batch)

        return counted

    training._optimizer_step = counting
    try:
        yield steps
    finally:
        training._optimizer_step = real
