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
from tqdm.auto import tqdm

from .data import ImageData, derive_seed
from .params import TrainSection
from .pruning import Mask
from .store import load_tensors, save_tensors

__all__ = ["train", "evaluate", "Checkpoint", "lr_at_epoch", "make_optimizer", "EpochHook"]

EpochHook = Callable[[int, nn.Module], None]
IterationHook = Callable[[int, nn.Module], None]


def lr_at_epoch(cfg: TrainSection, epoch: int) -> float:
    """Learning rate during (0-based) `epoch`: lr times gamma for each milestone passed."""
    return cfg.lr * cfg.gamma ** sum(1 for m in cfg.milestones if epoch >= m)


def make_optimizer(model: nn.Module, cfg: TrainSection, device: torch.device) -> torch.optim.Optimizer:
    """SGD with momentum and weight decay, or Adam, over every trainable parameter."""
    fused = {"fused": True} if device.type == "cuda" else {}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                           nesterov=cfg.nesterov, weight_decay=cfg.weight_decay, **fused)


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
    """One optimizer step (forward, backward, masked update) -> (loss, logits)."""
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cfg.bf16 and device.type == "cuda"
                else contextlib.nullcontext())
    forward = torch.compile(model) if cfg.compile and device.type == "cuda" else model

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast:
            logits = forward(x)
            loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        keeper.grads()
        optimizer.step()
        keeper.weights()
        return loss, logits

    return step


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
