"""Progress bars that read well where they end up.

In JupyterLab or a terminal a bar is what `tqdm.auto` gives (a widget, or a text bar). An executed
notebook saved by papermill keeps only a widget's first drawing ("0%"), so under the report runner
(which sets LTHKIT_PROGRESS=text for its kernels; set it yourself around a plain `papermill` call)
a bar is a text bar that stays in place when it is done: the saved notebook shows its finished
line (count, time, rate). The runner also merges each cell's stream output, so only that last
drawing of each bar is kept.

    from lthkit.progress import bar
    for x in bar(items, desc="points"): ...
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm.auto import tqdm as _auto_tqdm
from tqdm.std import tqdm as _text_tqdm

__all__ = ["bar", "tqdm", "ENV", "text_mode"]

ENV = "LTHKIT_PROGRESS"  # "text": finished text bars; anything else: tqdm.auto
TEXT_INTERVAL = 10.0  # seconds between redraws of a text bar (each redraw is saved output)


def text_mode() -> bool:
    """Whether bars are drawn as text that stays (LTHKIT_PROGRESS=text)."""
    return os.environ.get(ENV, "").strip().lower() == "text"


def bar(*args: Any, **kwargs: Any) -> Any:
    """A tqdm bar (same arguments as tqdm) in the form that suits where its output ends up."""
    if not text_mode():
        return _auto_tqdm(*args, **kwargs)
    kwargs["leave"] = True  # the finished line is the point
    kwargs["mininterval"] = max(float(kwargs.get("mininterval") or 0.0), TEXT_INTERVAL)
    kwargs.setdefault("file", sys.stdout)
    kwargs.setdefault("ncols", 100)
    kwargs["dynamic_ncols"] = False
    return _text_tqdm(*args, **kwargs)


tqdm = bar  # a drop-in name for `from tqdm.auto import tqdm`
