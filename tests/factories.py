"""Networks of a user's own, for the tests of `model.arch: tests.factories:<factory>`."""

from __future__ import annotations

import torch
from torch import nn


def tiny_cnn(num_classes: int = 10, in_channels: int = 3, width: int | None = None) -> nn.Module:
    """A small BatchNorm CNN a user might bring: conv-BN-ReLU twice, pooling, a linear head."""
    w = width or 8
    return nn.Sequential(
        nn.Conv2d(in_channels, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
        nn.Conv2d(w, 2 * w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * w, num_classes))


class _RunningScale(nn.Module):
    """A layer keeping running statistics of its own, which the kit cannot recalibrate."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("running_scale", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.running_scale.view(1, -1, 1, 1)


def with_running_scale(num_classes: int = 10) -> nn.Module:
    """A network the kit must refuse: a non-BatchNorm layer with running statistics."""
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), _RunningScale(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))


class _NoForwardMode(torch.autograd.Function):
    """ReLU with a backward rule (twice differentiable through autograd) but no forward-mode
    rule: forward-over-reverse Hessian products fail on it."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 0).to(g.dtype)


class _CustomRelu(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _NoForwardMode.apply(x)


def without_forward_mode(num_classes: int = 10) -> nn.Module:
    """A network whose custom activation has no forward-mode rule."""
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), _CustomRelu(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, num_classes))


def not_a_module(num_classes: int = 10):
    """A factory that returns something else than an nn.Module."""
    return {"classes": num_classes}


def raises(num_classes: int = 10) -> nn.Module:
    """A factory with a bug of its own."""
    raise RuntimeError("the factory's own bug")


def thirteen_outputs() -> nn.Module:
    """A network that ignores num_classes: 13 scores whatever the dataset."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 13))


def grey_only(num_classes: int = 10) -> nn.Module:
    """A network for 1-channel images whatever the dataset."""
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, num_classes))


class _ChannelScale(nn.Module):
    """Class scores from a learned scale of each channel's mean: no convolution, no linear."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(3, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)) @ self.scale


def nothing_prunable(num_classes: int = 10) -> nn.Module:
    """A network without a convolution or linear layer: nothing to prune by default."""
    return _ChannelScale(num_classes)
