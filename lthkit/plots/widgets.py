"""Pickers that show one level (or one choice) of a figure at a time.

Every figure is rendered once, to PNG. Interactive: a slider flips between them through a
front-end link (`jslink`), so an executed notebook opened in JupyterLab responds without a
kernel, from its saved widget state. Not interactive (papermill, the report runner): every
choice is drawn as a static image, one after the other, so the report shows them all.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import Image, display

from lthkit.config.params import SECTIONS

__all__ = ["level_picker", "choice_picker", "Picker", "figure_png", "interactive_default"]


def interactive_default(interactive: bool | None, namespace: Mapping[str, Any]) -> bool:
    """None means: widgets when a person runs the notebook, static figures under papermill -f."""
    if interactive is not None:
        return bool(interactive)
    return not any(namespace.get(k) is not None for k in SECTIONS)


def figure_png(fig: Any, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


@dataclass
class Picker:
    """The widgets of a picker: `selector` chooses, `stack` shows the chosen image."""

    selector: widgets.SelectionSlider | widgets.Dropdown
    stack: widgets.Stack
    box: widgets.VBox
    choices: list[Any]

    @property
    def shown(self) -> Any:
        """The choice whose image the stack shows now."""
        return self.choices[self.stack.selected_index]

    def _ipython_display_(self) -> None:
        """Shown once, when made: as the value of a notebook cell it adds nothing."""


def choice_picker(render: Callable[[Any], Any], choices: Sequence[Any], interactive: bool,
                  static: Sequence[Any] | None = None, description: str = "choice",
                  labels: Sequence[str] | None = None, slider: bool = False) -> Picker | None:
    """Render `render(choice)` for each choice and show them with a picker (or statically).

    `static` limits which choices are drawn when not interactive (default: all).
    Returns the Picker when interactive, else None.
    """
    choices = list(choices)
    if not choices:
        print(f"nothing to show: no {description} available")
        return None
    if not interactive:
        for c in (choices if static is None else [c for c in choices if c in set(static)]):
            display(Image(figure_png(render(c))))
        return None
    names = list(labels) if labels is not None else [str(c) for c in choices]
    images = [widgets.Image(value=figure_png(render(c)), format="png") for c in choices]
    stack = widgets.Stack(children=images, selected_index=0)
    options = list(zip(names, range(len(choices))))
    if slider:
        selector = widgets.SelectionSlider(options=options, value=0, description=description,
                                           continuous_update=True)
    else:
        selector = widgets.Dropdown(options=options, value=0, description=description)
    # The front-end link works without a kernel (saved widget state); the observer keeps the
    # Python side in step while a kernel is attached.
    widgets.jslink((selector, "index"), (stack, "selected_index"))
    selector.observe(lambda change: setattr(stack, "selected_index", change["new"]), names="index")
    box = widgets.VBox([selector, stack])
    display(box)
    return Picker(selector=selector, stack=stack, box=box, choices=choices)


def level_picker(render: Callable[[int], Any], levels: Sequence[int], interactive: bool,
                 static: Sequence[int] | None = None) -> Picker | None:
    """A slider over IMP levels showing `render(level)`; static images when not interactive."""
    return choice_picker(render, levels, interactive, static=static, description="level",
                         slider=True)
