"""Training with a fixed mask: SGD (or Adam), step schedule, per-epoch metrics, resumable.

Pruned weights stay exactly zero: their gradients are masked before the optimizer step (so
momentum and Adam moments never see them, and weight decay acts on a zero) and the weights are
masked again after it. Data order and augmentation of epoch e come from a seed derived from
(run seed, tag, e), so an epoch is the same whether the run went straight through or resumed:
on the CPU a resumed run equals an uninterrupted one bit for bit.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from .progress import tqdm

from .data import ImageData, derive_seed
from .params import TrainSection
from .pruning import Mask
from .store import load_tensors, save_tensors

__all__ = ["train", "train_together", "evaluate", "Checkpoint", "lr_at_epoch", "make_optimizer",
           "EpochHook"]

EpochHook = Callable[[int, nn.Module], None]
IterationHook = Callable[[int, nn.Module], None]


def lr_at_epoch(cfg: TrainSection, epoch: int) -> float:
    """Learning rate during (0-based) `epoch`: lr times gamma for each milestone passed."""
    return cfg.lr * cfg.gamma ** sum(1 for m in cfg.milestones if epoch >= m)


def make_optimizer(model: nn.Module, cfg: TrainSection, device: torch.device) -> torch.optim.Optimizer:
    """SGD with momentum and weight decay, or Adam, over every trainable parameter."""
    return make_optimizer_for(list(model.parameters()), cfg, device)


@dataclass
class Checkpoint:
    """The resume point of one training run: a file holding model, optimizer and history."""

    path: Path

    def load(self) -> dict | None:
        return load_tensors(self.path) if self.path.exists() else None

    def save(self, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int,
             iteration: int, history: list[dict]) -> None:
        save_tensors(self.path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                 "epoch": epoch, "iteration": iteration, "history": history})

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class _MaskKeeper:
    """Masks gradients before the step and weights after it, with foreach kernels."""

    def __init__(self, model: nn.Module, mask: Mask | None):
        params = dict(model.named_parameters())
        self.params = [params[n] for n in (mask or {})]
        self.masks = [m.to(p.device, p.dtype) for m, p in zip((mask or {}).values(), self.params)]

    def grads(self) -> None:
        grads = [p.grad for p in self.params if p.grad is not None]
        if grads and len(grads) == len(self.masks):
            torch._foreach_mul_(grads, self.masks)

    @torch.no_grad()
    def weights(self) -> None:
        if self.params:
            torch._foreach_mul_(self.params, self.masks)


def train(model: nn.Module, data: ImageData, cfg: TrainSection, *, seed: int, tag: str,
          mask: Mask | None = None, start_iteration: int = 0, augment: bool = True,
          checkpoint: Checkpoint | None = None, on_iteration: IterationHook | None = None,
          on_epoch: EpochHook | None = None, progress: bool = True) -> list[dict]:
    """Train `model` in place from `start_iteration` to the end of `cfg.epochs`; the history.

    `tag` names the run (e.g. "imp/level_03") and, with `seed`, fixes its data order.
    `on_iteration(i, model)` is called after every step (used to save the rewind point);
    `on_epoch(e, model)` after every epoch, before the checkpoint (used for trajectories).
    With a `checkpoint`, training resumes from its last saved epoch.
    """
    device = next(model.parameters()).device
    ipe = data.iterations_per_epoch(cfg.batch_size)
    total = cfg.epochs * ipe
    if start_iteration > total:
        raise ValueError(f"start iteration {start_iteration} is past the end of training "
                         f"({cfg.epochs} epochs x {ipe} iterations = {total})")
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
        history, iteration, first_epoch = state["history"], state["iteration"], state["epoch"] + 1
    step = _compiled_step(model, optimizer, keeper, cfg, device)
    channels_last = cfg.channels_last and device.type == "cuda" and _is_conv(model)
    if channels_last:
        model.to(memory_format=torch.channels_last)

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
                  "train_seconds": time.perf_counter() - t0, "images": seen}
        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
            test_loss, test_acc = evaluate(model, data, "test", cfg.eval_batch_size)
            record.update(test_loss=test_loss, test_acc=test_acc)
        record["seconds"] = time.perf_counter() - t0
        history.append(record)
        bar.set_postfix(loss=f"{record['train_loss']:.3f}", acc=f"{record.get('test_acc', math.nan):.3f}")
        if on_epoch is not None:
            on_epoch(epoch + 1, model)
        if checkpoint is not None:
            checkpoint.save(model, optimizer, epoch, iteration, history)
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
    cuda = device.type == "cuda"
    forward = torch.compile(model) if cfg.compile and cuda else model

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # cache_enabled=False: autocast's weight cache must not outlive a graph capture
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.bf16 and cuda,
                            cache_enabled=False) if cuda else contextlib.nullcontext():
            logits = forward(x)
            loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        keeper.grads()
        optimizer.step()
        keeper.weights()
        return loss.detach(), logits.detach()  # keep no autograd graph alive between steps

    if cuda and cfg.cuda_graphs and cfg.optimizer == "sgd" and not cfg.compile:
        return _GraphedStep(step, optimizer)
    return step


class _GraphedStep:
    """The whole training step captured as a CUDA graph and replayed, one graph per lr.

    ResNet-20 at batch 128 is bound by kernel launches on a GPU (H100: about 2.6 ms of kernels
    against 14 ms of launching per step, benchmarks/profile_gpu.py); a replay launches them all at
    once. The first `WARMUP` steps run eagerly on a side stream (they are real steps: momentum
    buffers and cuDNN's choices are made there), then the step is captured for the lr in force;
    a new lr (a milestone) captures a new graph. The lr is baked into a graph as a number, which
    is why there is one graph per value. A batch of another shape runs eagerly.
    """

    WARMUP = 3

    def __init__(self, step: Callable, optimizer: torch.optim.Optimizer):
        self.step, self.optimizer = step, optimizer
        self.graphs: dict[float, torch.cuda.CUDAGraph] = {}
        self.static: tuple[torch.Tensor, torch.Tensor] | None = None
        self.out: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}
        self.eager_steps = 0

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.eager_steps < self.WARMUP or (self.static is not None and
                                              (x.shape, y.shape) != (self.static[0].shape,
                                                                     self.static[1].shape)):
            return self._eager(x, y)
        if self.static is None:
            self.static = (x.clone(), y.clone())
        sx, sy = self.static
        sx.copy_(x)
        sy.copy_(y)
        lr = float(self.optimizer.param_groups[0]["lr"])
        if lr not in self.graphs:
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.out[lr] = self.step(sx, sy)
            self.graphs[lr] = graph
        self.graphs[lr].replay()
        return self.out[lr]

    def _eager(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.eager_steps += 1
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            out = self.step(x, y)
        torch.cuda.current_stream().wait_stream(side)
        return out


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageData, split: str, batch_size: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on a whole split, in eval mode, without augmentation."""
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


# --- several networks of one architecture trained together ----------------------------------------

def train_together(models: list[nn.Module], data: ImageData, cfg: TrainSection, *, seed: int,
                   tags: list[str], masks: list[Mask | None], start_iteration: int = 0,
                   augment: bool = True, checkpoint: Checkpoint | None = None,
                   progress: bool = True) -> list[list[dict]]:
    """Train K networks of one architecture at once: one vmapped forward and backward per step.

    Each network keeps its own data order (its tag), mask, optimizer state and metrics, exactly
    as `train` would give it; only the arithmetic is batched (convolutions become grouped ones).
    The K networks' parameters are stacked into leaf tensors with a leading K dimension, so one
    ordinary optimizer updates all of them (SGD and Adam act elementwise). Returns the histories.
    """
    from torch.func import functional_call, stack_module_state

    device = next(models[0].parameters()).device
    k = len(models)
    ipe = data.iterations_per_epoch(cfg.batch_size)
    params, buffers = stack_module_state(models)
    template = models[0]
    stacked_masks = _stack_masks(masks, params)
    optimizer = make_optimizer_for(list(params.values()), cfg, device)
    histories: list[list[dict]] = [[] for _ in range(k)]
    iteration, first_epoch = start_iteration, start_iteration // ipe
    state = checkpoint.load() if checkpoint else None
    if state is not None:
        with torch.no_grad():
            for name, t in {**params, **buffers}.items():
                t.copy_(state["model"][name])
        optimizer.load_state_dict(state["optimizer"])
        histories, iteration, first_epoch = state["history"], state["iteration"], state["epoch"] + 1
    _mask_stacked(params, stacked_masks, grads=False)

    def forward(p, b, x):
        return functional_call(template, (p, b), (x,))

    batched = torch.func.vmap(forward, in_dims=(0, 0, 0), randomness="different")
    bar = tqdm(total=(cfg.epochs * ipe - start_iteration), initial=iteration - start_iteration,
               desc=f"{k} together", unit="it", disable=not progress, leave=False, mininterval=1.0)
    for epoch in range(first_epoch, cfg.epochs):
        for group in optimizer.param_groups:
            group["lr"] = lr_at_epoch(cfg, epoch)
        template.train()
        t0 = time.perf_counter()
        skip = max(0, iteration - epoch * ipe)
        streams = [data.train_batches(cfg.batch_size, derive_seed(seed, tag, epoch), augment,
                                      start=skip) for tag in tags]
        loss_sum = torch.zeros(k, device=device)
        correct = torch.zeros(k, device=device)
        seen = 0
        for batches in zip(*streams):
            x = torch.stack([b[0] for b in batches])
            y = torch.stack([b[1] for b in batches])
            logits = batched(params, buffers, x)
            losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
            losses = losses.view(k, -1).mean(1)
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()  # each network's loss reaches only its own slice
            _mask_stacked(params, stacked_masks, grads=True)
            optimizer.step()
            _mask_stacked(params, stacked_masks, grads=False)
            loss_sum += losses.detach() * y.shape[1]
            correct += (logits.argmax(2) == y).sum(1)
            seen += y.shape[1]
            iteration += 1
            bar.update(1)
        for i in range(k):
            record = {"epoch": epoch + 1, "iteration": iteration, "lr": lr_at_epoch(cfg, epoch),
                      "train_loss": float(loss_sum[i]) / max(seen, 1),
                      "train_acc": float(correct[i]) / max(seen, 1),
                      "train_seconds": time.perf_counter() - t0, "images": seen}
            histories[i].append(record)
        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
            _unstack_into(models, params, buffers)
            for i, model in enumerate(models):
                test_loss, test_acc = evaluate(model, data, "test", cfg.eval_batch_size)
                histories[i][-1].update(test_loss=test_loss, test_acc=test_acc)
        for h in histories:
            h[-1]["seconds"] = time.perf_counter() - t0
        if checkpoint is not None:
            save_tensors(checkpoint.path, {
                "model": {n: t.detach() for n, t in {**params, **buffers}.items()},
                "optimizer": optimizer.state_dict(), "epoch": epoch, "iteration": iteration,
                "history": histories})
    bar.close()
    _unstack_into(models, params, buffers)
    return histories


def make_optimizer_for(tensors: list[torch.Tensor], cfg: TrainSection,
                       device: torch.device) -> torch.optim.Optimizer:
    """The optimizer of `make_optimizer` over explicit tensors (stacked parameters)."""
    fused = {"fused": True} if device.type == "cuda" else {}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(tensors, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
    return torch.optim.SGD(tensors, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           weight_decay=cfg.weight_decay, **fused)


def _stack_masks(masks: list[Mask | None], params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Masks stacked like the parameters (K x shape), for the names any network masks."""
    names = sorted({n for m in masks if m for n in m})
    out = {}
    for n in names:
        p = params[n]
        out[n] = torch.stack([(m[n] if m and n in m else torch.ones(p.shape[1:], dtype=torch.bool))
                              .to(p.device, p.dtype) for m in masks])
    return out


@torch.no_grad()
def _mask_stacked(params: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], grads: bool) -> None:
    for n, m in masks.items():
        target = params[n].grad if grads else params[n]
        if target is not None:
            target.mul_(m)


@torch.no_grad()
def _unstack_into(models: list[nn.Module], params: dict[str, torch.Tensor],
                  buffers: dict[str, torch.Tensor]) -> None:
    for i, model in enumerate(models):
        model.load_state_dict({n: t[i] for n, t in {**params, **buffers}.items()})
