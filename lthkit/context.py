"""What every notebook starts from: the parameters, the device, the run folder, the data."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch
from torch import nn

from .data import ImageData, derive_seed, load_data
from .models import build_model
from .params import Params
from .store import RunStore

__all__ = ["Context", "resolve_device", "open_run"]


def resolve_device(name: str) -> torch.device:
    """'auto' is cuda when a GPU is present, else cpu; an absent cuda is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"run.device is {name!r} but no CUDA device is present; use 'auto' or 'cpu'")
    return device


@dataclass
class Context:
    """Parameters, device and run folder of one run, with its data loaded on first use."""

    params: Params
    store: RunStore
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @cached_property
    def data(self) -> ImageData:
        p = self.params
        return load_data(p.data, self.device, seed=p.run.seed)

    @cached_property
    def analysis_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed analysis subset (normalized images, labels) on the device."""
        return self.data.analysis_subset(self.params.analysis.subset_size, self.params.run.seed)

    def new_model(self, init_seed: int | None = None) -> nn.Module:
        """A freshly initialized network on the device (seed: the run's initialization)."""
        p = self.params
        seed = derive_seed(p.run.seed, "init") if init_seed is None else init_seed
        return build_model(p.model.arch, p.model.width, p.data.dataset, seed=seed).to(self.device)


def open_run(params: Params, create: bool = False, needed_by: str = "this notebook") -> Context:
    """The context of a run: `create` for training notebooks, else the run must exist."""
    if params.run.num_threads:
        torch.set_num_threads(params.run.num_threads)
    store = RunStore.create(params) if create else RunStore.existing(params, needed_by)
    return Context(params=params, store=store, device=resolve_device(params.run.device))
