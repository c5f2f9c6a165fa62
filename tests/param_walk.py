"""Walking the parameters: another valid value for any key, to change one key at a time
(tests/test_cache_keys.py walks the analysis keys, tests/test_imp.py the training keys)."""

from __future__ import annotations

import typing
from typing import Any, Callable

from lthkit.config.base import ParamsError
from lthkit.config.datasets import dataset_names
from lthkit.config.params import SECTIONS


def _options(annotation) -> list:
    """The literal values a field's annotation admits (auto, the dtypes, ...)."""
    found = []
    for arg in typing.get_args(annotation):
        if isinstance(arg, str | int | float) and not isinstance(arg, type):
            found.append(arg)
        else:
            found += _options(arg)
    return found


# Valid values of keys whose type says little (a pattern, a network's name, glob patterns).
KNOWN: dict[str, list] = {
    "run.device": ["cpu", "cuda"],
    "model.arch": ["vgg16", "resnet20", "lenet5"],
    "data.dataset": list(dataset_names()),  # the registry's (lthkit/config/datasets.py)
    "model.prunable": [["*.weight"]],
    "model.not_prunable": [["fc.weight"], ["classifier.weight"]],
}


def other_values(section: str, name: str, value: Any) -> list:
    """Other values to try for `section.name` (now `value`), most likely valid first."""
    known = [v for v in KNOWN.get(f"{section}.{name}", []) if v != value]
    options = _options(SECTIONS[section].model_fields[name].annotation)
    others = [*known, *(o for o in options if o != value)]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        tried = [value + 1, value * 2, max(1, value - 1), *others]
    elif isinstance(value, float):
        tried = [value * 1.5, value / 2, value * 0.9, *others]
    elif isinstance(value, list):
        tried = [*known, value[:1], [1], [*value, value[-1] + 1] if value else [1]]
    elif value is None:
        tried = [*known, 32, 0.5, [0, 1, 2], 1, *others, "auto"]
    else:
        tried = [*others, f"{value}_other", 4, [1]]
    return [v for v in tried if v != value]


def with_another_value(build: Callable[[Any], Any], section: str, name: str, value: Any
                       ) -> tuple[Any, Any]:
    """(build(v), v) for the first other value v of `section.name` that `build` takes (it refuses
    one with a ParamsError); (None, None) when it takes none."""
    for candidate in other_values(section, name, value):
        try:
            return build(candidate), candidate
        except ParamsError:
            continue
    return None, None
