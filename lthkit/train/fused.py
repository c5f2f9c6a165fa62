"""K networks of one architecture computed as one network K times as wide (horizontal fusion).

Every convolution becomes a grouped convolution with K groups, every BatchNorm one BatchNorm over
K times the channels (its statistics are per channel, hence per network), every linear layer a
batched matrix product; ReLU, pooling, residual sums and channel-major flattening act per channel
and need no change, so the architecture's own `forward` runs the wide network. Network k owns the
k-th block of channels of every layer: its input is the k-th block of the input channels and its
logits the k-th block of the output. Each network computes what it computes alone (up to the
order of float sums), and K small networks fill a GPU that one leaves mostly idle (Wang et al.
2021, HFTA, horizontally fused training).

Every wide tensor (parameter, buffer, gradient, optimizer state) reshaped to (K, *member shape)
holds network k's tensor at index k; `member_states`, `load_members` and the optimizer-state
helpers rely on that, so a member's checkpoint is exactly the one `training.train` writes alone.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from lthkit.nets.pruning import Mask

__all__ = ["FusedNetworks", "WideLinear", "widen", "FusionError"]


class FusionError(TypeError):
    """A network holding a layer the fusion does not know how to widen."""


class WideLinear(nn.Module):
    """K linear layers applied to the K blocks of features of a (B, K * in) input."""

    def __init__(self, k: int, in_features: int, out_features: int, bias: bool = True,
                 device: torch.device | None = None, dtype: torch.dtype | None = None):
        super().__init__()
        self.k, self.in_features, self.out_features = k, in_features, out_features
        self.weight = nn.Parameter(torch.empty(k, out_features, in_features, device=device, dtype=dtype))
        self.bias = (nn.Parameter(torch.empty(k, out_features, device=device, dtype=dtype))
                     if bias else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        xk = x.reshape(b, self.k, self.in_features).transpose(0, 1)  # K x B x in
        w = self.weight.transpose(1, 2)  # K x in x out
        out = torch.bmm(xk, w) if self.bias is None else torch.baddbmm(self.bias.unsqueeze(1), xk, w)
        return out.transpose(0, 1).reshape(b, self.k * self.out_features)


def _wide_conv(m: nn.Conv2d, k: int) -> nn.Conv2d:
    w = m.weight
    return nn.Conv2d(k * m.in_channels, k * m.out_channels, m.kernel_size, stride=m.stride,
                     padding=m.padding, dilation=m.dilation, groups=k * m.groups,
                     bias=m.bias is not None, padding_mode=m.padding_mode, device=w.device,
                     dtype=w.dtype)


def _wide_batchnorm(m: nn.modules.batchnorm._BatchNorm, k: int) -> nn.Module:
    if m.momentum is None:
        raise FusionError("BatchNorm with momentum=None (a cumulative average) cannot be fused: its "
                          "update depends on a per-network batch count")
    ref = m.weight if m.weight is not None else m.running_mean
    wide = type(m)(k * m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine,
                   track_running_stats=m.track_running_stats,
                   device=ref.device if ref is not None else None)
    if m.track_running_stats:  # one batch count per network (they all step together)
        wide.num_batches_tracked = torch.zeros(k, dtype=torch.long, device=wide.running_mean.device)
    return wide


def _wide_linear(m: nn.Linear, k: int) -> WideLinear:
    return WideLinear(k, m.in_features, m.out_features, bias=m.bias is not None,
                      device=m.weight.device, dtype=m.weight.dtype)


_WIDENERS = {nn.Conv2d: _wide_conv, nn.BatchNorm1d: _wide_batchnorm, nn.BatchNorm2d: _wide_batchnorm,
             nn.Linear: _wide_linear}


def widen(template: nn.Module, k: int) -> nn.Module:
    """A copy of `template` whose every layer computes K networks side by side (weights unset)."""
    wide = copy.deepcopy(template)
    for name, module in list(wide.named_modules()):
        maker = _WIDENERS.get(type(module))
        if maker is not None:
            _replace(wide, name, maker(module, k))
        elif any(True for _ in module.parameters(recurse=False)) or \
                any(True for _ in module.buffers(recurse=False)):
            raise FusionError(f"cannot fuse {type(template).__name__}: its layer {name or '<root>'} "
                              f"({type(module).__name__}) holds weights of a kind the fusion does "
                              f"not widen (known: {', '.join(t.__name__ for t in _WIDENERS)})")
    return wide


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, new)


class FusedNetworks:
    """K networks of one architecture held as one wide module (`module`), trained as one.

    The wide module's parameter and buffer names are the member's, in the same order, so one
    optimizer over `module.parameters()` has the member optimizer's indices.
    """

    def __init__(self, models: list[nn.Module]):
        if not models:
            raise ValueError("FusedNetworks needs at least one network")
        self.k = len(models)
        template = models[0]
        self.shapes = {n: t.shape for n, t in template.state_dict().items()}
        for i, m in enumerate(models[1:], 1):
            if {n: t.shape for n, t in m.state_dict().items()} != self.shapes:
                raise FusionError(f"network {i} is not of network 0's architecture (other tensors)")
        self.module = widen(template, self.k)
        names = list(self.module.state_dict())
        if names != list(self.shapes):
            raise FusionError("widening changed the tensor names: "
                              f"{sorted(set(names) ^ set(self.shapes))}")
        self.param_names = [n for n, _ in self.module.named_parameters()]
        self.load_members([m.state_dict() for m in models])

    # --- moving states in and out ---------------------------------------------------------------
    def stacked(self, name: str, wide: torch.Tensor) -> torch.Tensor:
        """`wide` (a tensor of the layout of `name`) as K x member shape (a view when it can be)."""
        return wide.reshape(self.k, *self.shapes[name])

    @torch.no_grad()
    def load_members(self, states: list[dict[str, torch.Tensor]]) -> None:
        """Copy K member state dicts into the wide module."""
        if len(states) != self.k:
            raise ValueError(f"{len(states)} states for {self.k} networks")
        for name, wide in self.module.state_dict().items():
            parts = torch.stack([s[name].to(wide.device, wide.dtype) for s in states])
            wide.copy_(parts.reshape(wide.shape))

    @torch.no_grad()
    def member_states(self) -> list[dict[str, torch.Tensor]]:
        """Each member's state dict (fresh contiguous tensors on the module's device)."""
        out: list[dict[str, torch.Tensor]] = [{} for _ in range(self.k)]
        for name, wide in self.module.state_dict().items():
            for i, t in enumerate(self.stacked(name, wide.detach())):
                out[i][name] = t.clone(memory_format=torch.contiguous_format)
        return out

    def stack_masks(self, masks: list[Mask | None]) -> Mask:
        """The members' masks as wide masks (all ones where a member has none)."""
        names = [n for n in self.param_names if any(m and n in m for m in masks)]
        out = {}
        for n in names:
            shape = self.shapes[n]
            parts = [(m[n] if m and n in m else torch.ones(shape, dtype=torch.bool)).cpu()
                     for m in masks]
            out[n] = torch.stack(parts).reshape(self.module.get_parameter(n).shape)
        return out

    def member_optimizer_states(self, optimizer: torch.optim.Optimizer) -> list[dict]:
        """Each member's optimizer state dict, as an optimizer over the member alone holds it."""
        wide = optimizer.state_dict()
        members: list[dict] = [{"state": {}, "param_groups": copy.deepcopy(wide["param_groups"])}
                               for _ in range(self.k)]
        for index, entry in wide["state"].items():
            name = self.param_names[index]
            for key, value in entry.items():
                parts = self._split_state(name, value)
                for i in range(self.k):
                    members[i]["state"].setdefault(index, {})[key] = parts[i]
        return members

    def stacked_optimizer_state(self, states: list[dict]) -> dict:
        """The wide optimizer's state dict made of K members' optimizer state dicts."""
        wide: dict = {"state": {}, "param_groups": copy.deepcopy(states[0]["param_groups"])}
        for index in states[0]["state"]:
            name = self.param_names[int(index)]
            entry = {}
            for key, value in states[0]["state"][index].items():
                values = [s["state"][index][key] for s in states]
                if isinstance(value, torch.Tensor) and value.shape == self.shapes[name]:
                    shape = self.module.get_parameter(name).shape
                    entry[key] = torch.stack([v.to(value.device) for v in values]).reshape(shape)
                else:  # a count shared by all (Adam's step): every member has trained as long
                    entry[key] = value
            wide["state"][index] = entry
        return wide

    def _split_state(self, name: str, value):
        shape = self.module.get_parameter(name).shape
        if isinstance(value, torch.Tensor) and value.shape == shape:
            return [t.clone(memory_format=torch.contiguous_format)
                    for t in self.stacked(name, value.detach())]
        return [value.clone() if isinstance(value, torch.Tensor) else copy.deepcopy(value)
                for _ in range(self.k)]

    # --- computing --------------------------------------------------------------------------------
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Wide input (B x K*C x H x W: network k's images in channel block k) -> B x K x classes."""
        out = self.module(x)
        return out.view(out.shape[0], self.k, -1)

    def replicate_input(self, x: torch.Tensor) -> torch.Tensor:
        """The same images for every network: B x C x ... -> B x K*C x ..."""
        return x.repeat(1, self.k, *([1] * (x.dim() - 2)))

    @staticmethod
    def member_losses(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Cross-entropy of each network (B x K x classes logits, B x K labels) -> K."""
        b, k, c = logits.shape
        losses = F.cross_entropy(logits.reshape(b * k, c), y.reshape(b * k), reduction="none")
        losses = losses.view(b, k)
        return losses.mean(0) if reduction == "mean" else losses.sum(0)
