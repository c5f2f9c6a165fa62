"""Training with a fixed mask: SGD (or Adam), step schedule, per-epoch metrics, resumable.

Pruned weights stay exactly zero: their gradients are masked before the optimizer step (so
momentum and Adam moments never see them, and weight decay acts on a zero) and the weights are
masked again after it. Data order and augmentation of epoch e come from a seed derived from
(run seed, tag, e), so an epoch is the same whether the run went straight through or resumed:
on the CPU a resumed run equals an uninterrupted one bit for bit. On CUDA that needs
`run.deterministic: true` (cuDNN and cuBLAS otherwise pick algorithms whose sums differ in
rounding from run to run; a resumed run also takes eager warm-up steps where the uninterrupted
one replays its graph): benchmarks/gpu_check.py measures what holds on a given GPU.

`train_group` trains K networks of one architecture and one schedule at once, as one network K
times as wide (`fused.FusedNetworks`), each member with its own data order, mask, optimizer state,
metrics and resume file; `probe_group_sizes` measures which K is fastest on the device.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from lthkit.config.seeds import derive_seed
from lthkit.config.training import TrainSection
from lthkit.data.images import CROP_PADDING, ImageData, crop_and_flip
from lthkit.nets.pruning import Mask, full_mask
from lthkit.platform.device import (PRECISION_WORDS, cuda_layouts, cudnn_benchmark,
                                    effective_precision, is_allocation_failure, memory_budget,
                                    on_device, tf32)
from lthkit.platform.errors import first_line
from lthkit.platform.progress import tqdm
from lthkit.store.files import load_tensors, save_tensors
from lthkit.train.fused import FusedNetworks

__all__ = ["train", "train_group", "Member", "group_batches", "evaluate", "evaluate_group",
           "probe_group_sizes", "GroupProbe", "Checkpoint", "lr_at_epoch", "make_optimizer",
           "EpochHook", "time_steps", "time_layouts", "precision_note", "capture_stream"]

EpochHook = Callable[[int, nn.Module], bool | None]
IterationHook = Callable[[int, nn.Module], None]


def lr_at_epoch(cfg: TrainSection, epoch: int) -> float:
    """Learning rate during (0-based) `epoch`: lr times gamma for each milestone passed."""
    return cfg.lr * cfg.gamma ** sum(1 for m in cfg.milestones if epoch >= m)


def make_optimizer(model: nn.Module, cfg: TrainSection, device: torch.device) -> torch.optim.Optimizer:
    """SGD with momentum and weight decay, or Adam, over every trainable parameter."""
    return make_optimizer_for(list(model.parameters()), cfg, device)


def make_optimizer_for(tensors: list[torch.Tensor], cfg: TrainSection,
                       device: torch.device) -> torch.optim.Optimizer:
    """The optimizer of `make_optimizer` over explicit tensors."""
    fused = {"fused": True} if device.type == "cuda" else {}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(tensors, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
    return torch.optim.SGD(tensors, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           weight_decay=cfg.weight_decay, **fused)


@dataclass
class Checkpoint:
    """The resume point of one training run: a file holding model, optimizer and history."""

    path: Path

    def load(self) -> dict | None:
        return load_tensors(self.path) if self.path.exists() else None

    def save(self, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int,
             iteration: int, history: list[dict]) -> None:
        self.save_state(model.state_dict(), optimizer.state_dict(), epoch, iteration, history)

    def save_state(self, model: dict, optimizer: dict, epoch: int, iteration: int,
                   history: list[dict]) -> None:
        """The same file from state dicts (a member of a group writes its own this way)."""
        save_tensors(self.path, {"model": model, "optimizer": optimizer, "epoch": epoch,
                                 "iteration": iteration, "history": history})

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class _MaskKeeper:
    """Masks gradients before the step and weights after it, with foreach kernels."""

    def __init__(self, model: nn.Module, mask: Mask | None):
        params = dict(model.named_parameters())
        self.params = [params[n] for n in (mask or {})]
        # each mask in its parameter's layout (channels_last or not): foreach kernels take their
        # fast path only when the strides of the two lists agree
        self.masks = [like_param(m, p) for m, p in zip((mask or {}).values(), self.params)]

    def grads(self) -> None:
        grads = [p.grad for p in self.params if p.grad is not None]
        if grads and len(grads) == len(self.masks):
            torch._foreach_mul_(grads, self.masks)

    @torch.no_grad()
    def weights(self) -> None:
        if self.params:
            torch._foreach_mul_(self.params, self.masks)


def like_param(t: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """`t` (of `param`'s shape) on its device, in its dtype and memory layout (strides)."""
    if t.shape == param.shape and t.stride() == param.stride() and t.dtype == param.dtype \
            and t.device == param.device:
        return t
    return torch.empty_like(param).copy_(t)


def states_like_params(optimizer: torch.optim.Optimizer) -> None:
    """Give every state tensor of `optimizer` of its parameter's shape that parameter's layout.

    A loaded state (a resume file written contiguous by a group, or channels_last by a lone run
    on CUDA) keeps the strides it was saved with, while the parameters and their gradients are
    channels_last on CUDA; the fused SGD and Adam kernels refuse tensors of mismatched strides.
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            entry = optimizer.state.get(param)
            if not entry:
                continue
            for key, value in entry.items():
                if (isinstance(value, torch.Tensor) and value.shape == param.shape
                        and (value.stride() != param.stride() or value.device != param.device)):
                    entry[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _to_training_layout(module: nn.Module, cfg: TrainSection, device: torch.device,
                        channels_last: bool | None = None) -> bool:
    """channels_last for a convolutional network on CUDA (train.channels_last, or
    `channels_last` where given: the group probe's choice); whether taken. Done before masks,
    optimizer and loaded states are made, so that all take its layout."""
    wanted = cfg.channels_last if channels_last is None else channels_last
    channels_last = wanted and cuda_layouts(device) and _is_conv(module)
    if channels_last:
        module.to(memory_format=torch.channels_last)
    return channels_last


def train(model: nn.Module, data: ImageData, cfg: TrainSection, *, seed: int, tag: str,
          mask: Mask | None = None, start_iteration: int = 0, augment: bool = True,
          checkpoint: Checkpoint | None = None, on_iteration: IterationHook | None = None,
          on_epoch: EpochHook | None = None, progress: bool = True) -> list[dict]:
    """Train `model` in place from `start_iteration` to the end of `cfg.epochs`; the history.

    `tag` names the run (e.g. "imp/level_03") and, with `seed`, fixes its data order.
    `on_iteration(i, model)` is called after every step (used to save the rewind point);
    `on_epoch(e, model)` after every epoch, before the checkpoint (used for trajectories); when
    it returns True, training stops after that epoch's checkpoint (early stopping).
    With a `checkpoint`, training resumes from its last saved epoch.
    """
    device = next(model.parameters()).device
    ipe = data.iterations_per_epoch(cfg.batch_size)
    total = cfg.epochs * ipe
    if start_iteration > total:
        raise ValueError(f"start iteration {start_iteration} is past the end of training "
                         f"({cfg.epochs} epochs x {ipe} iterations = {total})")
    channels_last = _to_training_layout(model, cfg, device)
    keeper = _MaskKeeper(model, mask)
    keeper.weights()
    optimizer = make_optimizer(model, cfg, device)
    history: list[dict] = []
    iteration = start_iteration
    first_epoch = start_iteration // ipe
    state = checkpoint.load() if checkpoint else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        states_like_params(optimizer)
        history, iteration, first_epoch = state["history"], state["iteration"], state["epoch"] + 1
    step = _compiled_step(model, optimizer, keeper, cfg, device)

    bar = tqdm(total=total - start_iteration, initial=iteration - start_iteration, desc=tag,
               unit="it", disable=not progress, leave=False, mininterval=1.0)
    for epoch in range(first_epoch, cfg.epochs):
        for group in optimizer.param_groups:
            group["lr"] = lr_at_epoch(cfg, epoch)
        model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        skip = max(0, iteration - epoch * ipe)
        for x, y in data.train_batches(cfg.batch_size, derive_seed(seed, tag, epoch), augment,
                                       start=skip):
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            loss, logits = step(x, y)
            loss_sum += loss.detach() * y.shape[0]
            correct += (logits.argmax(1) == y).sum()
            seen += y.shape[0]
            iteration += 1
            if on_iteration is not None:
                on_iteration(iteration, model)
            bar.update(1)
        record = {"epoch": epoch + 1, "iteration": iteration, "lr": lr_at_epoch(cfg, epoch),
                  "train_loss": float(loss_sum) / max(seen, 1),  # syncs once per epoch
                  "train_acc": float(correct) / max(seen, 1),
                  "train_seconds": time.perf_counter() - t0, "images": seen,
                  "precision": effective_precision(cfg.precision, device)}
        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
            test_loss, test_acc = evaluate(model, data, "test", cfg.eval_batch_size)
            record.update(test_loss=test_loss, test_acc=test_acc)
        record["seconds"] = time.perf_counter() - t0
        history.append(record)
        bar.set_postfix(loss=f"{record['train_loss']:.3f}", acc=f"{record.get('test_acc', math.nan):.3f}")
        stop = on_epoch is not None and on_epoch(epoch + 1, model) is True
        if checkpoint is not None:
            checkpoint.save(model, optimizer, epoch, iteration, history)
        if stop:
            break
    bar.close()
    if channels_last:
        model.to(memory_format=torch.contiguous_format)
    return history


def _is_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def _compiled_step(model: nn.Module, optimizer: torch.optim.Optimizer, keeper: _MaskKeeper,
                   cfg: TrainSection, device: torch.device) -> Callable:
    """One optimizer step (forward, backward, masked update) -> (loss, logits).

    On CUDA with SGD and `train.cuda_graphs`, the step is replayed from a CUDA graph (see
    `_GraphedStep`); otherwise it runs eagerly.
    """
    forward = torch.compile(model) if cfg.compile and device.type == "cuda" else model

    def loss_of(x: torch.Tensor, y: torch.Tensor):
        logits = forward(x)
        loss = F.cross_entropy(logits, y)
        return loss, (loss.detach(), logits.detach())  # keep no autograd graph alive between steps

    return _optimizer_step(loss_of, model, optimizer, keeper, cfg, device)


def _optimizer_step(loss_of: Callable, module: nn.Module, optimizer: torch.optim.Optimizer,
                    keeper: _MaskKeeper, cfg: TrainSection, device: torch.device) -> Callable:
    """A step function from `loss_of(x, y) -> (loss, outputs)`: forward (under bf16 autocast
    for `train.precision` bf16), backward, masked update, with TF32 allowed only for tf32 and
    bf16; returns the outputs. Replayed from a CUDA graph where it can be (the arithmetic is
    chosen when the graph is captured)."""
    cuda = device.type == "cuda"
    bf16 = cfg.precision == "bf16" and cuda

    def step(x: torch.Tensor, y: torch.Tensor):
        with tf32(cfg.precision != "fp32"):
            # cache_enabled=False: autocast's weight cache must not outlive a graph capture
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16,
                                cache_enabled=False) if cuda else contextlib.nullcontext():
                loss, outputs = loss_of(x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            keeper.grads()
            optimizer.step()
            keeper.weights()
        return outputs

    backend = graph_backend(device) if cfg.cuda_graphs and cfg.optimizer == "sgd" \
        and not cfg.compile else None
    return _GraphedStep(step, optimizer, module, backend) if backend is not None else step


class CudaGraphs:
    """The CUDA calls of `_GraphedStep`, each on one device (`run.device: cuda:N` included:
    graph capture, streams and synchronize act on the *current* device, so every call is made
    under `torch.cuda.device(device)`). Tests put a stand-in of the same methods in its place."""

    def __init__(self, device: torch.device):
        self.device = device

    def context(self):
        return on_device(self.device)

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def side_stream(self) -> Iterator[None]:
        """Eager warm-up steps run on a side stream, as graph capture requires."""
        current = torch.cuda.current_stream(self.device)
        side = torch.cuda.Stream(device=self.device)
        side.wait_stream(current)
        with torch.cuda.stream(side):
            yield
        current.wait_stream(side)

    def capture(self, fn: Callable[[], tuple], state: list[torch.Tensor]) -> tuple[Any, tuple]:
        """(graph, outputs) of `fn` captured (not run: its kernels run at each replay), on this
        device's own capture stream."""
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=capture_stream(self.device)):
            out = fn()
        return graph, out

    def replay(self, graph: Any) -> None:
        graph.replay()


_CAPTURE_STREAMS: dict[int, Any] = {}


def capture_stream(device: torch.device) -> Any:
    """The stream graphs on `device` are captured on, one per device, made on that device.

    `torch.cuda.graph` without a stream takes one class-wide stream made on whichever device was
    current at the first capture: a later capture for cuda:1 would then capture on cuda:0's
    stream, record nothing, and run the step instead (torch 2.14)."""
    index = torch.device(device).index
    index = torch.cuda.current_device() if index is None else index
    if index not in _CAPTURE_STREAMS:
        _CAPTURE_STREAMS[index] = torch.cuda.Stream(device=torch.device("cuda", index))
    return _CAPTURE_STREAMS[index]


def graph_backend(device: torch.device) -> CudaGraphs | None:
    """The graph calls for `device`, None where there are no graphs (a seam: the tests give a
    CPU stand-in of the same meaning, tests/test_cuda_paths.py)."""
    return CudaGraphs(device) if device.type == "cuda" else None


class _GraphedStep:
    """The whole training step captured as a CUDA graph and replayed, one graph per lr.

    ResNet-20 at batch 128 is bound by kernel launches on a GPU (H100: about 2.6 ms of kernels
    against 14 ms of launching per step, benchmarks/profile_gpu.py); a replay launches them all at
    once. The first `WARMUP` steps run eagerly on a side stream (they are real steps: momentum
    buffers and cuDNN's choices are made there), then the step is captured for the lr in force;
    a new lr (a milestone) captures a new graph and frees the previous one. The lr is baked into
    a graph as a number, which is why there is one graph per value. A batch of another shape runs
    eagerly. The step may return any tuple of tensors (the fused step of `train_group` does).

    Every new graph is checked twice. Its capture must change no state (its kernels only run at a
    replay): one that did ran the step instead of recording it, so that step is kept as taken and
    training goes on eagerly (replaying it as well would apply the step twice). The first replay
    of every graph must change the weights: one that changed none (an empty or broken capture)
    is said in one line and training goes on eagerly, never frozen.
    """

    WARMUP = 3

    def __init__(self, step: Callable, optimizer: torch.optim.Optimizer, module: nn.Module,
                 backend: CudaGraphs):
        self.step, self.optimizer, self.module, self.backend = step, optimizer, module, backend
        self.graphs: dict[float, Any] = {}
        self.static: tuple[torch.Tensor, torch.Tensor] | None = None
        self.out: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}
        self.eager_steps = 0
        self.disabled = ""  # why the graph is off (a replay that changed nothing)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.disabled or self.eager_steps < self.WARMUP or (
                self.static is not None and (x.shape, y.shape) != (self.static[0].shape,
                                                                   self.static[1].shape)):
            return self._eager(x, y)
        with self.backend.context():
            if self.static is None:
                self.static = (x.clone(), y.clone())
            sx, sy = self.static
            sx.copy_(x)
            sy.copy_(y)
            lr = float(self.optimizer.param_groups[0]["lr"])
            fresh = lr not in self.graphs
            if fresh:
                self.backend.synchronize()
                # a schedule never returns to an earlier lr: free the earlier graph's memory pool
                self.graphs.clear()
                self.out.clear()
                before = self._checksum() if lr > 0 else None
                self.graphs[lr], self.out[lr] = self.backend.capture(
                    lambda: self.step(sx, sy), self._state())
                if before is not None and not torch.equal(before, self._checksum()):
                    return self._captured_by_running(lr)
            before = self._checksum() if fresh and lr > 0 else None
            self.backend.replay(self.graphs[lr])
            if before is not None and torch.equal(before, self._checksum()):
                return self._give_up(x, y, lr)
            return self.out[lr]

    def _give_up(self, x: torch.Tensor, y: torch.Tensor, lr: float):
        """The replay changed no weight: this step, and every later one, eagerly."""
        self._disable(f"the CUDA-graph training step changed no weight at its first replay "
                      f"(lr {lr:g}, on {self.backend.device})")
        return self._eager(x, y)

    def _captured_by_running(self, lr: float):
        """The capture changed the weights: it ran the step (on this batch) instead of recording
        it. That step counts as taken (its outputs are returned); every later one runs eagerly."""
        out = self.out[lr]
        self._disable(f"the CUDA-graph capture ran the training step instead of recording it "
                      f"(lr {lr:g}, on {self.backend.device}); the step it ran is kept")
        return out

    def _disable(self, why: str) -> None:
        self.graphs.clear()
        self.out.clear()
        self.disabled = (f"{why}: training goes on eagerly (train.cuda_graphs: false does this "
                         f"from the start)")
        print(self.disabled, flush=True)

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    @torch.no_grad()
    def _checksum(self) -> torch.Tensor:
        """One float64 sum per parameter: any update of a weight shows in it."""
        return torch.stack([p.detach().double().sum() for p in self._params()])

    def _state(self) -> list[torch.Tensor]:
        """Every tensor a step changes: parameters, buffers, optimizer state."""
        tensors = [*self.module.parameters(), *self.module.buffers()]
        for entry in self.optimizer.state.values():
            tensors += [v for v in entry.values() if isinstance(v, torch.Tensor)]
        return tensors

    def _eager(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.eager_steps += 1
        with self.backend.context(), self.backend.side_stream():
            return self.step(x, y)


def precision_note(cfg: TrainSection, device: torch.device) -> str:
    """`train.precision` in words, and what it gives on `device` (a notebook prints it)."""
    used = effective_precision(cfg.precision, device)
    note = f"train.precision {cfg.precision} ({PRECISION_WORDS[cfg.precision]})"
    return note if used == cfg.precision else f"{note}; on {device.type}: {used}"


@torch.no_grad()
@tf32(False)
def evaluate(model: nn.Module, data: ImageData, split: str, batch_size: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on a whole split, in eval mode, without augmentation, in
    IEEE fp32 whatever `train.precision` (TF32 off)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.long)
    n = 0
    for x, y in data.eval_batches(split, batch_size):
        logits = model(x).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
        correct += (logits.argmax(1) == y).sum()
        n += y.shape[0]
    model.train(was_training)
    return float(loss_sum) / n, float(correct) / n


# --- K networks of one architecture and one schedule trained at once ------------------------------

@dataclass
class Member:
    """One network of a group, with what `train` would take for it alone.

    `model` holds the start weights and, once trained, the trained ones. `seed` and `tag` fix its
    data order, so members of different runs or replicate seeds can share a group. `checkpoint` is
    its own resume file in `train`'s format: it resumes alone or in any other group. `on_epoch`
    is called as in `train`; returning True stops this member (the others go on without it).
    """

    model: nn.Module
    tag: str
    seed: int
    mask: Mask | None = None
    start_iteration: int = 0
    checkpoint: Checkpoint | None = None
    on_epoch: Callable[[int, nn.Module], bool | None] | None = None


def train_group(members: list[Member], data: ImageData, cfg: TrainSection, *, augment: bool = True,
                progress: bool = True, channels_last: bool | None = None) -> list[list[dict]]:
    """Train K networks of one architecture and one schedule at once; the history of each.

    Each member gets what `train` gives it alone: its data order, mask, optimizer state, metrics
    and checkpoint; only the arithmetic is shared, as one network K times as wide
    (`fused.FusedNetworks`), and on CUDA the whole step (forward, backward, masked update, each
    member's loss and accuracy) is replayed from a CUDA graph. Every member must be at the same
    iteration of the schedule (fresh from one start iteration, or resumed from one epoch).
    `channels_last` overrides `train.channels_last` for the fused network (the layout the group
    probe measured faster for this K; None: the parameter's). cuDNN times its algorithms for the
    grouped convolutions (`cudnn.benchmark`, unless deterministic algorithms are on).
    """
    device = next(members[0].model.parameters()).device
    ipe = data.iterations_per_epoch(cfg.batch_size)
    total = cfg.epochs * ipe
    states = [m.checkpoint.load() if m.checkpoint else None for m in members]
    at = [s["iteration"] if s else m.start_iteration for m, s in zip(members, states)]
    if len(set(at)) > 1:
        raise ValueError(f"the members of a group must be at one iteration of the schedule, not at "
                         f"{at} ({[m.tag for m in members]}): group them by progress")
    iteration = at[0]
    if iteration > total:
        raise ValueError(f"start iteration {iteration} is past the end of training "
                         f"({cfg.epochs} epochs x {ipe} iterations = {total})")
    histories = [s["history"] if s else [] for s in states]
    optimizer_states = [s["optimizer"] if s else None for s in states]
    for m, s in zip(members, states):
        if s is not None:
            m.model.load_state_dict(s["model"])
    bar = tqdm(total=total - min(m.start_iteration for m in members),
               initial=iteration - min(m.start_iteration for m in members),
               desc=f"{len(members)} together", unit="it", disable=not progress, leave=False,
               mininterval=1.0)
    active = list(range(len(members)))
    epoch = iteration // ipe
    while active and epoch < cfg.epochs:
        group = [members[i] for i in active]
        with cudnn_benchmark():
            stopped, iteration, epoch = _train_fused(
                group, [histories[i] for i in active], [optimizer_states[i] for i in active], data,
                cfg, iteration, epoch, augment, device, bar, channels_last)
        for j, i in enumerate(active):  # each member's optimizer state, to go on without some
            optimizer_states[i] = stopped.optimizer_states[j]
        active = [i for j, i in enumerate(active) if j not in stopped.members]
    bar.close()
    return histories


@dataclass
class _Stopped:
    members: set[int]
    optimizer_states: list[dict]


def _train_fused(group: list[Member], histories: list[list[dict]], optimizer_states: list[dict | None],
                 data: ImageData, cfg: TrainSection, iteration: int, first_epoch: int, augment: bool,
                 device: torch.device, bar,
                 layout: bool | None = None) -> tuple[_Stopped, int, int]:
    """Train `group` fused from `first_epoch` to the end, or until some member's hook stops it.

    Writes the members' weights back into their models; returns who stopped, every member's
    optimizer state, the iteration reached and the next epoch to train.
    """
    k = len(group)
    ipe = data.iterations_per_epoch(cfg.batch_size)
    fused = FusedNetworks([m.model for m in group])
    channels_last = _to_training_layout(fused.module, cfg, device, layout)
    keeper = _MaskKeeper(fused.module, fused.stack_masks([m.mask for m in group]))
    keeper.weights()
    optimizer = make_optimizer(fused.module, cfg, device)
    if all(s is not None for s in optimizer_states):
        optimizer.load_state_dict(fused.stacked_optimizer_state(optimizer_states))
        states_like_params(optimizer)
    elif any(s is not None for s in optimizer_states):
        raise ValueError("some members of a group have an optimizer state and others none")
    step = _fused_step(fused, optimizer, keeper, cfg, device)
    stop: set[int] = set()
    epoch = first_epoch
    for epoch in range(first_epoch, cfg.epochs):
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr_at_epoch(cfg, epoch)
        fused.module.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros(k, device=device)
        correct = torch.zeros(k, device=device, dtype=torch.long)
        seen = 0
        skip = max(0, iteration - epoch * ipe)
        seeds = [derive_seed(m.seed, m.tag, epoch) for m in group]
        for x, y in group_batches(data, cfg.batch_size, seeds, augment, start=skip):
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            losses, right = step(x, y)
            loss_sum += losses * y.shape[0]
            correct += right
            seen += y.shape[0]
            iteration += 1
            bar.update(1)
        loss_sum, correct = loss_sum.tolist(), correct.tolist()  # syncs once per epoch
        train_seconds = time.perf_counter() - t0
        for i, history in enumerate(histories):
            history.append({"epoch": epoch + 1, "iteration": iteration, "lr": lr_at_epoch(cfg, epoch),
                            "train_loss": loss_sum[i] / max(seen, 1),
                            "train_acc": correct[i] / max(seen, 1),
                            "train_seconds": train_seconds, "images": seen, "group_size": k,
                            "precision": effective_precision(cfg.precision, device)})
        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
            for history, (test_loss, test_acc) in zip(histories, evaluate_group(
                    fused, data, "test", cfg.eval_batch_size)):
                history[-1].update(test_loss=test_loss, test_acc=test_acc)
        for history in histories:
            history[-1]["seconds"] = time.perf_counter() - t0
        bar.set_postfix(loss=f"{min(loss_sum) / max(seen, 1):.3f}..{max(loss_sum) / max(seen, 1):.3f}")
        stop = _end_of_epoch(fused, optimizer, group, histories, epoch, iteration)
        if stop:
            break
    if channels_last:
        fused.module.to(memory_format=torch.contiguous_format)
    for m, state in zip(group, fused.member_states()):
        m.model.load_state_dict(state)
    return _Stopped(stop, fused.member_optimizer_states(optimizer)), iteration, epoch + 1


def _end_of_epoch(fused: FusedNetworks, optimizer: torch.optim.Optimizer, group: list[Member],
                  histories: list[list[dict]], epoch: int, iteration: int) -> set[int]:
    """Each member's hook (on its own model), then its checkpoint; the members that stop."""
    hooks = any(m.on_epoch is not None for m in group)
    saves = any(m.checkpoint is not None for m in group)
    if not (hooks or saves):
        return set()
    states = fused.member_states()
    optimizer_states = fused.member_optimizer_states(optimizer) if saves else None
    stop = set()
    for j, m in enumerate(group):
        if m.on_epoch is not None:
            m.model.load_state_dict(states[j])
            if m.on_epoch(epoch + 1, m.model):
                stop.add(j)
        if m.checkpoint is not None:
            m.checkpoint.save_state(states[j], optimizer_states[j], epoch, iteration, histories[j])
    return stop


def _fused_step(fused: FusedNetworks, optimizer: torch.optim.Optimizer, keeper: _MaskKeeper,
                cfg: TrainSection, device: torch.device) -> Callable:
    """One step of the K fused networks -> (each one's mean loss, each one's correct count)."""
    forward = torch.compile(fused.module) if cfg.compile and device.type == "cuda" else fused.module

    def loss_of(x: torch.Tensor, y: torch.Tensor):
        out = forward(x)
        logits = out.view(out.shape[0], fused.k, -1)
        losses = fused.member_losses(logits, y)
        # each network's loss reaches only its own weights, so the sum trains each on its own mean
        return losses.sum(), (losses.detach(), (logits.detach().argmax(2) == y).sum(0))

    return _optimizer_step(loss_of, fused.module, optimizer, keeper, cfg, device)


def group_batches(data: ImageData, batch_size: int, seeds: list[int], augment: bool,
                  start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of K networks' batches at once, as `FusedNetworks` takes them.

    Network k's part of batch b is exactly batch b of `data.train_batches(batch_size, seeds[k],
    augment)`: images B x K*C x H x W (network k's in channel block k) and labels B x K. The K
    orders and augmentations are drawn as `train_batches` draws them, and each batch is then one
    gather, one crop and flip and one normalization for all K networks.
    """
    n, k = data.num_train, len(seeds)
    do_augment = augment and data.augmentable
    orders, shifts, flips = [], [], []
    for seed in seeds:  # the draws of ImageData.train_batches, in its order
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(n, generator=g)
        orders.append(order)
        if do_augment:
            shifts.append(torch.randint(0, 2 * CROP_PADDING + 1, (n, 2), generator=g)[order])
            flips.append(torch.randint(0, 2, (n,), generator=g, dtype=torch.bool)[order])
    order = torch.stack(orders, 1).to(data.device)  # position x network
    if do_augment:
        shift = torch.stack(shifts, 1).to(data.device)
        flip = torch.stack(flips, 1).to(data.device)
    bs = min(batch_size, n)
    _, c, h, w = data.train_x.shape
    for b in range(start, data.iterations_per_epoch(batch_size)):
        rows = slice(b * bs, (b + 1) * bs)
        idx = order[rows]
        x = data.train_x[idx.reshape(-1)]
        if do_augment:
            x = crop_and_flip(x, shift[rows].reshape(-1, 2), flip[rows].reshape(-1))
        yield data.normalize(x).view(bs, k * c, h, w), data.train_y[idx]


@torch.no_grad()
@tf32(False)
def evaluate_group(fused: FusedNetworks, data: ImageData, split: str,
                   batch_size: int = 1000) -> list[tuple[float, float]]:
    """`evaluate` for each of the fused networks: (mean cross-entropy, accuracy) of each."""
    module = fused.module
    was_training = module.training
    module.eval()
    device = next(module.parameters()).device
    loss_sum = torch.zeros(fused.k, device=device, dtype=torch.float64)
    correct = torch.zeros(fused.k, device=device, dtype=torch.long)
    n = 0
    for x, y in data.eval_batches(split, batch_size):
        logits = fused.logits(fused.replicate_input(x)).float()
        labels = y.unsqueeze(1).expand(-1, fused.k)
        loss_sum += fused.member_losses(logits, labels, reduction="sum").double()
        correct += (logits.argmax(2) == labels).sum(0)
        n += y.shape[0]
    module.train(was_training)
    return [(loss / n, right / n) for loss, right in zip(loss_sum.tolist(), correct.tolist())]


# --- how many networks to train together: a short probe on the device ----------------------------

@dataclass
class GroupProbe:
    """Aggregate training speed of K networks at once on the device, for the probed K."""

    rows: list[dict]  # group_size, images_per_s, step_ms, peak_mib (None on the CPU), note;
    #                   layout and layouts (images/s of each) where both layouts were timed
    device: str

    def channels_last(self, k: int) -> bool | None:
        """The layout the probe measured faster for K networks fused (True: channels_last,
        False: contiguous), None where it timed one layout only (K = 1, the CPU, no convolution)."""
        row = next((r for r in self.rows if r["group_size"] == k), {})
        return {"channels_last": True, "contiguous": False}.get(row.get("layout", ""))

    def best(self, work: list[tuple[int, int]], min_speedup: float = 1.0) -> int:
        """The K that trains `work` (members, steps each) in the least projected time; 1 unless
        that K is projected at least `min_speedup` times faster than one after another."""
        if not any(r["images_per_s"] for r in self.rows):
            return 1  # not even one network's step fitted: train them one after another
        k = min((r for r in self.rows if r["images_per_s"]), key=lambda r: (
            self.projected_seconds(r["group_size"], work), r["group_size"]))["group_size"]
        if k != 1 and self.projected_seconds(1, work) < min_speedup * self.projected_seconds(k,
                                                                                           work):
            return 1
        return k

    def projected_seconds(self, k: int, work: list[tuple[int, int]]) -> float:
        row = next(r for r in self.rows if r["group_size"] == k)
        return sum(math.ceil(members / k) * steps * row["step_ms"] / 1e3 for members, steps in work)

    def table(self, work: list[tuple[int, int]] | None = None) -> str:
        lines = [f"probe on {self.device}: K networks trained at once (K = 1: alone)",
                 "     K   images/s   step ms   peak MiB" + ("   projected min" if work else "")]
        for r in self.rows:
            peak = "-" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"
            if not r["images_per_s"]:
                lines.append(f"  {r['group_size']:4d}   {r['note']}")
                continue
            line = f"  {r['group_size']:4d} {r['images_per_s']:10.0f} {r['step_ms']:9.1f} {peak:>10}"
            if work:
                line += f" {self.projected_seconds(r['group_size'], work) / 60:15.1f}"
            notes = [_layout_note(r)] if r.get("layouts") else []
            notes += [r["note"]] if r.get("note") else []
            lines.append(line + (f"   {'; '.join(notes)}" if notes else ""))
        return "\n".join(lines)


def probe_group_sizes(make_model: Callable[[], nn.Module], image_shape: tuple[int, ...],
                      cfg: TrainSection, device: torch.device, max_k: int,
                      memory_fraction: float = 0.8, min_seconds: float = 0.3) -> GroupProbe:
    """Time the training step of K = 1, 2, 4, ... networks at once (random data, the real
    architecture, batch and settings; K = 1 is `train`'s own step), up to `max_k`.

    Stops doubling when K fails to gain 5% over K/2, when twice K's peak memory (training or
    evaluation, whichever is larger) would pass `memory_fraction` of the memory this task may
    use (`gpu.memory_budget`: the free GPU memory, or the task's share of the card), or when K
    fails to allocate (in any library's words: the probe stops at the last K that worked and
    says so). Memory is probed on CUDA only. For K > 1 in channels_last (CUDA, a convolutional
    network, `train.channels_last`) the fused step is timed contiguous too (grouped NHWC
    convolutions of 16-64 channels a group are often no faster than K plain ones), and the row
    keeps the faster layout (`GroupProbe.channels_last(k)`: what `train_group` should take).
    """
    cuda = device.type == "cuda"
    rows: list[dict] = []
    with on_device(device):
        budget = memory_budget(device)
        k = 1
        while k <= max(1, max_k):
            row = {"group_size": k, "images_per_s": None, "step_ms": None, "peak_mib": None,
                   "note": ""}
            rows.append(row)
            try:
                row.update(time_layouts(make_model, image_shape, cfg, device, k, min_seconds))
            except Exception as e:
                if not is_allocation_failure(e):
                    raise
                worked = [r["group_size"] for r in rows if r["images_per_s"]]
                row["note"] = (f"failed to allocate ({first_line(e, 160)}): K stops at "
                               f"{worked[-1] if worked else 'none'}")
                break
            finally:
                if cuda:
                    torch.cuda.empty_cache()
            if budget is not None and row["peak_mib"] * 2 ** 20 > memory_fraction * budget:
                row.update(images_per_s=None, note=f"{row['peak_mib']:.0f} MiB: over "
                           f"{memory_fraction:.0%} of the {budget / 2 ** 20:.0f} MiB it may use")
                break
            if budget is not None and row["peak_mib"] * 2 ** 20 * 2 > memory_fraction * budget:
                row["note"] = (f"2K would pass {memory_fraction:.0%} of the "
                               f"{budget / 2 ** 20:.0f} MiB it may use")
                break
            done = [r for r in rows if r["images_per_s"]]
            if k > 1 and row["images_per_s"] < 1.05 * done[-2]["images_per_s"]:
                row["note"] = "less than 5% over K/2: stop doubling"
                break
            k *= 2
        name = torch.cuda.get_device_name(device) if cuda else \
            f"CPU ({torch.get_num_threads()} threads)"
    return GroupProbe(rows, name)




# contiguous is kept for a fused group only when this much faster than channels_last (timing
# noise must not flip the layout from one probe to the next)
LAYOUT_MARGIN = 1.05


def time_layouts(make_model: Callable[[], nn.Module], image_shape: tuple[int, ...],
                 cfg: TrainSection, device: torch.device, k: int, min_seconds: float) -> dict:
    """`time_steps` of K networks; for K > 1 in channels_last, of both layouts: the faster one's
    row (contiguous only when `LAYOUT_MARGIN` faster), with each layout's images/s."""
    row = time_steps(make_model, image_shape, cfg, device, k, min_seconds)
    if not row.pop("channels_last", False) or k == 1:
        return row
    other = time_steps(make_model, image_shape, cfg, device, k, min_seconds, channels_last=False)
    other.pop("channels_last", None)
    layouts = {"channels_last": row["images_per_s"], "contiguous": other["images_per_s"]}
    if other["images_per_s"] > LAYOUT_MARGIN * row["images_per_s"]:
        return {**other, "layout": "contiguous", "layouts": layouts}
    return {**row, "layout": "channels_last", "layouts": layouts}


def _layout_note(row: dict) -> str:
    rates = row["layouts"]
    other = "contiguous" if row["layout"] == "channels_last" else "channels_last"
    return (f"{row['layout']} ({rates[row['layout']]:.0f} images/s against {rates[other]:.0f} "
            f"{other})")


def time_steps(make_model: Callable[[], nn.Module], image_shape: tuple[int, ...], cfg: TrainSection,
               device: torch.device, k: int, min_seconds: float,
               channels_last: bool | None = None) -> dict:
    """Images per second, ms per step and peak memory of K networks trained at once (the
    group-size probe's timer; benchmarks/paper_time.py times a training unit with it).

    The peak is that of training *and* of evaluating the K networks at `train.eval_batch_size`
    while the step (and on CUDA its graph's memory pool) is alive, as `train_group` does at the
    end of an epoch: evaluation at batch 1000 can need more than the training step at batch 128.
    `channels_last` overrides `train.channels_last` (the row's "channels_last": whether taken).
    K > 1 runs with cuDNN's benchmark on, warm-up included, as `train_group` trains.
    """
    cuda = device.type == "cuda"
    with on_device(device), cudnn_benchmark() if k > 1 else contextlib.nullcontext():
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        g = torch.Generator().manual_seed(0)
        models = [make_model().to(device) for _ in range(k)]
        b = cfg.batch_size
        fused = FusedNetworks(models) if k > 1 else None
        model = fused.module if fused else models[0]
        channels_last = _to_training_layout(model, cfg, device, channels_last)
        if fused is None:
            keeper = _MaskKeeper(model, full_mask(model))
            optimizer = make_optimizer(model, cfg, device)
            step = _compiled_step(model, optimizer, keeper, cfg, device)
            x = torch.randn(b, *image_shape, generator=g)
            y = torch.randint(0, 10, (b,), generator=g)
        else:
            keeper = _MaskKeeper(model, fused.stack_masks([full_mask(m) for m in models]))
            optimizer = make_optimizer(model, cfg, device)
            step = _fused_step(fused, optimizer, keeper, cfg, device)
            x = torch.randn(b, k * image_shape[0], *image_shape[1:], generator=g)
            y = torch.randint(0, 10, (b, k), generator=g)
        x, y = x.to(device), y.to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        model.train()
        for _ in range(_GraphedStep.WARMUP + 2 if cuda else 1):  # warm-up (and graph capture)
            step(x, y)
        _sync(device)
        steps, t0 = 0, time.perf_counter()
        while steps < 3 or (time.perf_counter() - t0 < min_seconds and steps < 200):
            step(x, y)
            steps += 1
            if steps % 10 == 0 or steps < 3:
                _sync(device)
        _sync(device)
        seconds = (time.perf_counter() - t0) / steps
        train_peak = (torch.cuda.max_memory_allocated(device) - base) / 2 ** 20 if cuda else None
        eval_seconds = _time_evaluation(model, fused, image_shape, cfg.eval_batch_size, device)
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2 ** 20 if cuda else None
        del step, optimizer, keeper, models, model, fused
    return {"images_per_s": k * b / seconds, "step_ms": 1e3 * seconds, "peak_mib": peak,
            "train_peak_mib": train_peak, "eval_ms": 1e3 * eval_seconds,
            "channels_last": channels_last}


@torch.no_grad()
@tf32(False)
def _time_evaluation(model: nn.Module, fused: FusedNetworks | None, image_shape: tuple[int, ...],
                     batch_size: int, device: torch.device) -> float:
    """Seconds of one evaluation batch of the K networks (as `evaluate_group` runs it, fp32)."""
    was_training = model.training
    model.eval()
    x = torch.randn(batch_size, *image_shape, generator=torch.Generator().manual_seed(1))
    x = x.to(device)
    _sync(device)
    t0 = time.perf_counter()
    logits = fused.logits(fused.replicate_input(x)) if fused else model(x)
    logits.float().argmax(-1)
    _sync(device)
    model.train(was_training)
    return time.perf_counter() - t0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
