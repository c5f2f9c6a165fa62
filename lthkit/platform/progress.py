"""Progress bars that read well where they end up.

In JupyterLab or a terminal a bar is what `tqdm.auto` gives (a widget, or a text bar). An executed
notebook saved by papermill keeps every line a bar leaves, so under the report runner (which sets
LTHKIT_PROGRESS=text for its kernels; set it yourself around a plain `papermill` call) the saved
notebook holds only what a reader wants:

- each unit of work (a bar opened while no other kit bar is open: a level's training, the spectra
  of a level's points) leaves one finished line: what, how many, how long;
- bars opened inside it (the Lanczos iterations of one point, a line's evaluation chunks) leave
  nothing;
- a cell leaves at most LINES_PER_CELL such lines; a cell that ran more units, or ran several for
  over a minute, ends with one summary line (units, counts and time per kind of work).

The runner merges each cell's stream output, so a bar's redraws (every TEXT_INTERVAL seconds, for
a terminal following the run with --stream) collapse into its last drawing.

    from lthkit.platform.progress import bar
    for x in bar(items, desc="points"): ...
"""

from __future__ import annotations

import io
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm as _auto_tqdm
from tqdm.std import tqdm as _text_tqdm

__all__ = ["bar", "tqdm", "ENV", "text_mode", "cell_summary", "LINES_PER_CELL"]

ENV = "LTHKIT_PROGRESS"  # "text": finished text lines; anything else: tqdm.auto
TEXT_INTERVAL = 10.0  # seconds between redraws of a text bar (each redraw is saved output)
LINES_PER_CELL = 5  # finished lines one cell leaves; the rest go into its summary
SUMMARY_AFTER_S = 60.0  # a cell that ran several units this long ends with a summary too


def text_mode() -> bool:
    """Whether bars are drawn as text that stays (LTHKIT_PROGRESS=text)."""
    return os.environ.get(ENV, "").strip().lower() == "text"


@dataclass
class _Unit:
    """A finished unit of work: what, how many, how long."""
    kind: str
    count: int
    unit: str
    seconds: float
    shown: bool


@dataclass
class _Cell:
    """The units of work finished since the cell began (or since the last summary)."""
    started: float = field(default_factory=time.perf_counter)
    units: list[_Unit] = field(default_factory=list)
    shown: int = 0  # finished lines left so far


_state = threading.local()  # open: how many kit text bars are open in this thread
_cell = _Cell()


def _kind(desc: str | None) -> str:
    """The kind of work a bar's description names, numbers dropped ("level 3" -> "level")."""
    words = re.sub(r"\d+", " ", desc or "work").split()
    return " ".join(words) or "work"


class _UnitBar(_text_tqdm):
    """A text bar for one unit of work: its finished line stays, unless the cell has left its
    quota of lines, in which case it draws nowhere and only its summary row is kept."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._shown = _cell.shown < LINES_PER_CELL
        if not self._shown:
            kwargs["file"] = io.StringIO()  # counts and times, draws nowhere
        else:
            _cell.shown += 1
        super().__init__(*args, **kwargs)
        _state.open = getattr(_state, "open", 0) + 1
        self._counted = False

    def close(self) -> None:
        if not self._counted and not self.disable:
            self._counted = True
            _state.open = max(0, getattr(_state, "open", 1) - 1)
            _cell.units.append(_Unit(_kind(self.desc.rstrip(": ")), int(self.n), str(self.unit),
                                     self._time() - self.start_t, self._shown))
        super().close()


def bar(*args: Any, **kwargs: Any) -> Any:
    """A tqdm bar (same arguments as tqdm) in the form that suits where its output ends up."""
    if not text_mode():
        return _auto_tqdm(*args, **kwargs)
    if getattr(_state, "open", 0) > 0 or kwargs.get("disable"):
        kwargs["disable"] = True  # a part of the unit of work around it: no line of its own
        return _text_tqdm(*args, **kwargs)
    _watch_cells()
    kwargs["leave"] = True  # the finished line is the point
    kwargs["mininterval"] = max(float(kwargs.get("mininterval") or 0.0), TEXT_INTERVAL)
    kwargs.setdefault("file", sys.stdout)
    kwargs.setdefault("ncols", 100)
    kwargs["dynamic_ncols"] = False
    return _UnitBar(*args, **kwargs)


tqdm = bar  # a drop-in name for `from tqdm.auto import tqdm`


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def cell_summary(reset: bool = True) -> str | None:
    """One line for the units of work finished in this cell, or None where the finished lines
    already say it all (the cell left every line, and ran one unit or ran briefly)."""
    global _cell
    cell, elapsed = _cell, time.perf_counter() - _cell.started
    if reset:
        _cell = _Cell()
    hidden = sum(not u.shown for u in cell.units)
    if not cell.units or (not hidden and (len(cell.units) < 2 or elapsed < SUMMARY_AFTER_S)):
        return None
    kinds: dict[str, list[_Unit]] = {}
    for u in cell.units:
        kinds.setdefault(u.kind, []).append(u)
    parts = [f"{k} x{len(us)} ({sum(u.count for u in us):,} {us[0].unit}, "
             f"{_duration(sum(u.seconds for u in us))})" for k, us in kinds.items()]
    note = f"; {hidden} not shown line by line" if hidden else ""
    return (f"this cell: {len(cell.units)} units of work in {_duration(elapsed)}: "
            f"{', '.join(parts)}{note}")


def _print_summary(*_: Any) -> None:
    line = cell_summary()
    if line:
        print(line, flush=True)


def _start_cell(*_: Any) -> None:
    global _cell
    _cell = _Cell()
    _state.open = 0


_watching: list[Any] = []


def _watch_cells() -> None:
    """In an IPython kernel, start each cell's count afresh and end it with its summary line."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or shell in _watching:
        return
    _start_cell()  # the first bar's cell is running now
    shell.events.register("pre_run_cell", _start_cell)
    shell.events.register("post_run_cell", _print_summary)
    _watching.append(shell)
