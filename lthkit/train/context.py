"""What every notebook starts from: the parameters, the device, the run folder, the data."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Callable

import torch
from torch import nn

from lthkit.config.base import ParamsError, resolve_path
from lthkit.config.catalog import FOLDER, num_classes, provide_input_check
from lthkit.config.params import Params
from lthkit.config.seeds import derive_seed, replicate_params
from lthkit.data.images import DatasetMissingError, ImageData
from lthkit.data.load import load_data
from lthkit.data.sources import check_image_folder
from lthkit.data.synthetic import stand_in_batch
from lthkit.nets.evaluator import PointEvaluator
from lthkit.nets.checks import check_forward, check_network, resolve_hvp_mode
from lthkit.nets.models import NetworkError, model_from
from lthkit.nets.points import fused_by_default
from lthkit.platform.device import set_deterministic
from lthkit.store.layout import RunStore
from lthkit.store.lock import RunFolderLock, lock_run_folder
from lthkit.store.paths import replicate_dir

__all__ = ["Context", "resolve_device", "open_run", "sub_run", "check_inputs"]


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
    select: Callable[[ImageData], ImageData] | None = None  # a part of the data (sub-runs)
    replicate: int = 0  # which replicate of the run (lthkit.verdicts.replicates); 0: the run folder
    data_seed: int | None = None  # seeds the dataset itself (None: run.seed); the run's for all
    #                               replicates, so that they repeat the experiment on one dataset
    lock: RunFolderLock | None = field(default=None, repr=False, compare=False)  # while it lives

    @cached_property
    def data(self) -> ImageData:
        p = self.params
        seed = p.run.seed if self.data_seed is None else self.data_seed
        data = _load_data_cached(p.data, str(self.device), seed)
        return self.select(data) if self.select else data

    @cached_property
    def analysis_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed analysis subset (normalized images, labels) on the device."""
        return self.data.analysis_subset(self.params.analysis.subset_size, self.params.run.seed)

    @cached_property
    def evaluator(self) -> PointEvaluator:
        """Loss and accuracy of weight vectors on the analysis subset (BatchNorm recalibrated)."""
        return self.point_evaluator()

    def point_evaluator(self, one_pass_bn: bool = False) -> PointEvaluator:
        """A new evaluator on the analysis subset with the `analysis` settings (P points per pass,
        fused where measured faster) and `landscape.dtype`; `one_pass_bn` takes statistics and
        loss in one pass over the whole subset (a batch that holds it)."""
        a = self.params.analysis
        x, y = self.analysis_data
        batch = max(a.batch_size, x.shape[0]) if one_pass_bn else a.batch_size
        return PointEvaluator(self.new_model(), x, y, batch_size=batch,
                              recalibrate_bn=a.recalibrate_bn, points_per_pass=a.points_per_pass,
                              use_vmap=a.use_vmap, one_pass_bn=one_pass_bn,
                              dtype=self.params.landscape.dtype)

    def analysis_key(self) -> str:
        """A short hash of what decides an analysis' loss values (subset, seed, BN handling,
        the evaluation precision `landscape.dtype`, the inputs' `data.normalization`).

        Part of every cache key, so changing these parameters computes afresh.
        """
        a, p = self.params.analysis, self.params
        raw = f"{a.subset_size}/{a.batch_size}/{a.recalibrate_bn}/{p.run.seed}"
        if not a.recalibrate_bn:  # stored statistics since issue 32, not fresh ones: new keys
            raw += "/stored"
        if p.landscape.dtype != "float32":  # the default adds nothing: fp32 keys stay as they were
            raw += f"/{p.landscape.dtype}"
        if p.data.normalization != "dataset":  # likewise: the dataset's own statistics
            raw += f"/normalization={p.data.normalization_stats()}"
        return hashlib.sha256(raw.encode()).hexdigest()[:10]

    def other_replicates(self) -> dict[int, RunStore]:
        """The stores of the run's other replicates that exist, for reading their tables (only
        replicate 0 sees them; see `lthkit.verdicts.replicates`)."""
        from lthkit.store.layout import other_replicates

        return other_replicates(self)

    def new_model(self, init_seed: int | None = None) -> nn.Module:
        """A freshly initialized network on the device (seed: the run's initialization)."""
        p = self.params
        seed = derive_seed(p.run.seed, "init") if init_seed is None else init_seed
        return model_from(p.model, p.data.name, seed=seed).to(self.device)


@lru_cache(maxsize=2)
def _load_data_cached(spec, device: str, seed: int) -> ImageData:
    """Sub-runs of one notebook share the dataset they are cut from."""
    return load_data(spec, device, seed=seed)


def sub_run(ctx: Context, name: str, select: Callable[[ImageData], ImageData] | None = None,
            **sections) -> Context:
    """A training run of its own inside ctx's run folder (<run>/<name>/), with other sections.

    `sections` replace the parent's (data=, model=, train=, imp=, baselines=); `select` keeps a
    part of the data (a half, some classes). The sub-run's folder has its own manifest, so it is
    resumed, reused and refused like a run folder.
    """
    params = ctx.params.model_copy(update={**sections,
                                           "source": f"{ctx.params.source} (sub-run {name})"})
    store = RunStore.create(params, root=ctx.store.root / name)
    return Context(params=params, store=store, device=ctx.device, select=select,
                   replicate=ctx.replicate, data_seed=ctx.data_seed, lock=ctx.lock)


def open_run(params: Params, create: bool = False, needed_by: str = "this notebook",
             replicate: int = 0) -> Context:
    """The context of a run: `create` for training notebooks, else the run must exist.

    `replicate` r >= 1 opens <run folder>/replicate_<r>/ with that replicate's seed
    (`lthkit.verdicts.replicates`); creating one creates (or checks) the run folder first.
    The context holds the run folder's lock, shared, while it lives (lthkit.store.lock): a
    folder that a command (lthkit-report) writes is refused, unless this is its notebook.
    """
    if params.run.num_threads:
        torch.set_num_threads(params.run.num_threads)
    set_deterministic(params.run.deterministic)
    device = resolve_device(params.run.device)
    if create and not params.model.kit_network:
        check_foreign_network(params, device)  # before anything is written or trained
    own = replicate_params(params, replicate)
    lock = lock_run_folder(params.run_dir(), exclusive=False, create=create)
    if replicate == 0:
        store = RunStore.create(params) if create else RunStore.existing(params, needed_by)
    else:
        folder = replicate_dir(params.run_dir(), replicate)
        if create:
            RunStore.create(params)  # the run folder holds the replicates: it is a run folder
            store = RunStore.create(own, root=folder)
        else:
            store = RunStore.existing(own, needed_by, root=folder)
    return Context(params=own, store=store, device=device, replicate=replicate,
                   data_seed=params.run.seed, lock=lock)


_CHECKED: set[tuple] = set()  # networks checked in this process, with what decided the checks


def check_foreign_network(params: Params, device: torch.device) -> None:
    """Refuse, in one line naming the module and the key to change, a torchvision or user network
    the analyses cannot use (lthkit.nets.checks); two examples of the run's data, once per
    process and setting."""
    hvp = resolve_hvp_mode(params.hessian.hvp, device)
    use_vmap = params.analysis.use_vmap
    fused = fused_by_default(device) if use_vmap is None else use_vmap
    key = (params.model.model_dump_json(), params.data.name, hvp, fused, str(device))
    if key in _CHECKED:
        return
    data = _load_data_cached(params.data, str(device), params.run.seed)
    x, y = data.analysis_subset(2, params.run.seed)
    model = model_from(params.model, params.data.name, seed=0).to(device)
    check_network(model, x, y, hvp=hvp, fused_points=fused, name=params.model.arch,
                  classes=num_classes(params.data.name))
    _CHECKED.add(key)


@provide_input_check
def check_inputs(params: Params) -> None:
    """What `lthkit-params check` and `lthkit-report` ask before a run starts (reading the
    parameters cannot tell): an image folder's classes and files (every image opened), then one
    forward pass of the network on a stand-in batch of the dataset's shape, two images, no
    dataset loaded. A ParamsError naming the key and the file."""
    try:
        if params.data.dataset == FOLDER:
            check_image_folder(resolve_path(params.data.root), readable=True)
        x, _ = stand_in_batch(params.data.name)
        model = model_from(params.model, params.data.name, seed=0)
        check_forward(model, x, num_classes(params.data.name), params.model.arch)
    except NetworkError as e:
        raise ParamsError(f"{params.source}: {e.key}: {e.message}") from None
    except DatasetMissingError as e:
        raise ParamsError(f"{params.source}: data.root: {e}") from None
