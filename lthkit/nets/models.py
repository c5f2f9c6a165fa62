"""The networks: the papers' ResNet-20 and VGG-16 (BatchNorm) for CIFAR, MLP 300-100-10 and LeNet-5;
ResNets, VGGs and WideResNets for CIFAR of other depths; any torchvision classification network;
and the user's own (a factory function).

`width` scales a network so smoke runs stay small: ResNet-20's stages are (w, 2w, 4w) channels
(paper: w = 16), VGG-16's layers are the usual 64..512 times w/64, the MLP's hidden layers are
(w, w/3) (300-100), LeNet-5's convolutions are (w, 16w/6) channels (w = 6).
ResNet-20 follows open_lth: 1x1 convolution + BatchNorm shortcuts where the shape changes; a ResNet
of depth 6n+2 has n blocks per stage, VGG-11/13/16/19 are open_lth's cifar_vgg layouts, and WRN-d-k
is Zagoruyko & Komodakis' pre-activation WideResNet (n = (d-4)/6 blocks per stage of 16k, 32k, 64k
channels; `width` is k).

What IMP prunes: the weight of every convolution and linear layer (biases and BatchNorm never),
for every network, unless `model.prunable` / `model.not_prunable` name the parameters (glob
patterns). The kit's networks are initialized as open_lth's (Kaiming-normal weights, zero biases);
torchvision's and the user's keep their own initialization, drawn from the run's seed.

A network of the kit's own is a record in lthkit.config.architectures (what the parameters know
of it) and a builder here (`register_network`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib
import inspect
import sys
from collections.abc import Mapping
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

from lthkit.config.architectures import architecture, kit_architectures, split_network
from lthkit.config.base import project_root
from lthkit.config.catalog import input_shape, num_classes, provide_prunable_sizes
from lthkit.platform.errors import first_line

__all__ = ["build_model", "model_from", "prunable_names", "prunable_sizes", "DEFAULT_WIDTH",
           "input_shape", "NetworkError", "FactoryError", "VGG_LAYOUTS", "register_network"]

VGG_LAYOUTS = {  # open_lth's cifar_vgg_<depth>: channels, "M" a 2x2 max-pool
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512,
         512, 512],
}
VGG16_LAYOUT = VGG_LAYOUTS[16]
PRUNABLE_KEY = "_lthkit_prunable"  # set on a network whose prunable names a parameter file chose


class NetworkError(ValueError):
    """A network the kit cannot build or use: `key` the parameter to change, `message` what is
    wrong and what to do (str: "<key>: <message>")."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


class FactoryError(NetworkError):
    """The user's factory (`model.arch: <module>:<factory>`) raised while building the network."""


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a residual connection (He et al. 2016)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    """ResNet-(6n+2) for 32x32 images; n = 3 gives ResNet-20."""

    def __init__(self, width: int = 16, blocks_per_stage: int = 3, num_classes: int = 10,
                 in_channels: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        layers: list[nn.Module] = []
        c_in = width
        for stage, c_out in enumerate((width, 2 * width, 4 * width)):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(BasicBlock(c_in, c_out, stride))
                c_in = c_out
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn(self.conv(x)))
        out = self.blocks(out)
        out = torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1)
        return self.fc(out)


class VGGCifar(nn.Module):
    """VGG with BatchNorm for CIFAR (open_lth's cifar_vgg_<depth>: 16 has 13 convolutions)."""

    def __init__(self, width: int = 64, num_classes: int = 10, depth: int = 16,
                 in_channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for item in VGG_LAYOUTS[depth]:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            c_out = max(1, int(item) * width // 64)
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = nn.functional.avg_pool2d(self.features(x), 2)
        return self.fc(torch.flatten(out, 1))


class WideBlock(nn.Module):
    """A pre-activation block of a WideResNet: BN-ReLU-conv twice, a 1x1 shortcut where the
    shape changes (Zagoruyko & Komodakis 2016)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
                         if stride != 1 or c_in != c_out else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + skip


class WideResNet(nn.Module):
    """WRN-depth-k for 32x32 images: (depth - 4) / 6 blocks per stage of 16k, 32k, 64k channels."""

    def __init__(self, depth: int = 16, k: int = 4, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        n = (depth - 4) // 6
        self.conv = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        layers: list[nn.Module] = []
        c_in = 16
        for stage, c_out in enumerate((16 * k, 32 * k, 64 * k)):
            for block in range(n):
                layers.append(WideBlock(c_in, c_out, 2 if stage > 0 and block == 0 else 1))
                c_in = c_out
        self.blocks = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(c_in)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn(self.blocks(self.conv(x))))
        out = torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1)
        return self.fc(out)


class MLP(nn.Module):
    """Fully connected 300-100-10 (Frankle & Carbin's LeNet-300-100)."""

    def __init__(self, width: int = 300, in_features: int = 784, num_classes: int = 10):
        super().__init__()
        hidden2 = max(1, round(width / 3))
        self.fc1 = nn.Linear(in_features, width)
        self.fc2 = nn.Linear(width, hidden2)
        self.fc3 = nn.Linear(hidden2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class LeNet5(nn.Module):
    """LeNet-5: two 5x5 conv + max-pool layers and three linear layers (28x28 or 32x32 input)."""

    def __init__(self, width: int = 6, in_channels: int = 1, image_size: int = 28,
                 num_classes: int = 10):
        super().__init__()
        c2, f1, f2 = (max(1, round(n * width / 6)) for n in (16, 120, 84))
        pad = 2 if image_size == 28 else 0
        self.conv1 = nn.Conv2d(in_channels, width, 5, padding=pad)
        self.conv2 = nn.Conv2d(width, c2, 5)
        self.fc1 = nn.Linear(c2 * 5 * 5, f1)
        self.fc2 = nn.Linear(f1, f2)
        self.fc3 = nn.Linear(f2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def _kaiming_init(model: nn.Module) -> None:
    """Kaiming-normal conv and linear weights, zero biases, BatchNorm at (1, 0), as open_lth."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_model(arch: str, width: int | None, dataset: str, seed: int | None = None, *,
                prunable: Sequence[str] | None = None, not_prunable: Sequence[str] | None = None
                ) -> nn.Module:
    """A freshly initialized network named as `ModelSection.network` names it (resnet20, resnet56,
    vgg11, wrn16, mlp, lenet5, torchvision:<name>, <module>:<factory>); with `seed`, the
    initialization is that seed's. `prunable` / `not_prunable` (glob patterns of parameter names)
    choose what IMP prunes instead of the convolutions' and linear layers' weights."""
    channels, size, _ = input_shape(dataset)
    classes = num_classes(dataset)
    kit = _kit_network(arch, width, channels, size, classes)
    if kit is not None:
        model = kit()  # built outside the seed's stream: the kit's weights are drawn by the init
        with _seeded(seed):
            _kaiming_init(model)
    else:
        with _seeded(seed):  # torchvision's and the user's networks keep their own init
            model = _foreign_network(arch, width, channels, size, classes)
    if prunable is not None or not_prunable:
        setattr(model, PRUNABLE_KEY, tuple(_chosen_prunable(model, prunable, not_prunable, arch)))
    return model


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Draws inside from `seed`'s stream, the global one untouched (None: the global stream)."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def model_from(spec: Any, dataset: str, seed: int | None = None) -> nn.Module:
    """The network a `ModelSection` names, for `dataset`'s images."""
    return build_model(spec.network, spec.width, dataset, seed, prunable=spec.prunable,
                       not_prunable=spec.not_prunable)


# A kit network's builder: (width, depth (None: a network of fixed depth), channels, image size,
# classes) -> the network, its weights initialized afterwards by _kaiming_init.
Builder = Callable[[int, int | None, int, int, int], nn.Module]
_BUILDERS: dict[str, Builder] = {}


def register_network(name: str) -> Callable[[Builder], Builder]:
    """Register (as a decorator) the builder of the kit's network `name`, whose record
    (lthkit.config.architectures.register_architecture) says what the parameters know of it."""
    def register(builder: Builder) -> Builder:
        _BUILDERS[name] = builder
        return builder
    return register


@register_network("resnet")
@register_network("resnet20")
def _resnet(width: int, depth: int | None, channels: int, size: int, classes: int) -> nn.Module:
    return ResNetCifar(width, ((depth or 20) - 2) // 6, classes, in_channels=channels)


@register_network("vgg")
@register_network("vgg16")
def _vgg(width: int, depth: int | None, channels: int, size: int, classes: int) -> nn.Module:
    return VGGCifar(width, classes, depth=depth or 16, in_channels=channels)


@register_network("wrn")
def _wrn(width: int, depth: int | None, channels: int, size: int, classes: int) -> nn.Module:
    return WideResNet(depth or 16, width, classes, in_channels=channels)


@register_network("mlp")
def _mlp(width: int, depth: int | None, channels: int, size: int, classes: int) -> nn.Module:
    return MLP(width, in_features=channels * size * size, num_classes=classes)


@register_network("lenet5")
def _lenet5(width: int, depth: int | None, channels: int, size: int, classes: int) -> nn.Module:
    return LeNet5(width, in_channels=channels, image_size=size, num_classes=classes)


class _DefaultWidths(Mapping):
    """The kit's networks' default widths (model.width None), from their records."""

    def __getitem__(self, name: str) -> int:
        spec = architecture(name)
        if spec is None:
            raise KeyError(name)
        return spec.default_width

    def __iter__(self) -> Iterator[str]:
        return iter([spec.name for spec in kit_architectures()])

    def __len__(self) -> int:
        return len(kit_architectures())


DEFAULT_WIDTH: Mapping[str, int] = _DefaultWidths()


def _kit_network(network: str, width: int | None, channels: int, size: int, classes: int
                 ) -> Callable[[], nn.Module] | None:
    """A builder of one of the kit's own networks (resnet56, mlp, ...), or None when `network`
    is not one."""
    found = split_network(network)
    if found is None:
        return None
    spec, depth = found
    builder = _BUILDERS.get(spec.name)
    if builder is None:
        raise NetworkError("model.arch", f"{spec.name} has no builder: register one with "
                           f"lthkit.nets.models.register_network({spec.name!r})")
    w = width or spec.default_width
    return lambda: builder(w, depth, channels, size, classes)


def _foreign_network(arch: str, width: int | None, channels: int, size: int, classes: int
                     ) -> nn.Module:
    """A torchvision network (untrained) or the module a user's factory returns."""
    if arch.startswith("torchvision:"):
        import torchvision

        name = arch.removeprefix("torchvision:")
        try:
            model = torchvision.models.get_model(name, weights=None, num_classes=classes)
        except Exception as e:  # an unknown name, or one that refuses these settings
            known = ", ".join(sorted(torchvision.models.list_models(torchvision.models))[:12])
            raise NetworkError("model.arch", f"torchvision cannot build {name!r} "
                               f"({first_line(e, 160)}); its "
                               f"classification networks include {known}, ...") from None
        if channels != 3:
            raise NetworkError("model.arch", f"{arch} takes 3-channel images, the dataset has "
                               f"{channels}: use a 3-channel dataset or a network of your own")
        return model
    module_name, _, factory_name = arch.partition(":")
    try:
        module = _import_user_module(module_name)
    except Exception as e:
        raise NetworkError("model.arch", f"cannot import {module_name!r} ({first_line(e, 160)}): "
                           f"install it, or put its folder on PYTHONPATH") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise NetworkError("model.arch", f"{module_name} has no function {factory_name!r}")
    offered = {"num_classes": classes, "in_channels": channels, "image_size": size, "width": width}
    accepted = inspect.signature(factory).parameters
    kwargs = {k: v for k, v in offered.items() if k in accepted and v is not None}
    try:
        model = factory(**kwargs)
    except Exception as e:  # the user's code: its error in one line, with how it was called
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise FactoryError("model.arch", f"{arch}({args}) raised {type(e).__name__}: "
                           f"{first_line(e, 200)}; fix the factory, or name another "
                           f"network") from None
    if not isinstance(model, nn.Module):
        raise NetworkError("model.arch", f"{arch} returned a {type(model).__name__}, not an "
                           f"nn.Module")
    return model


def _import_user_module(name: str) -> Any:
    """A user's module: from the Python path, else from the project root (the folder holding
    params/ and notebooks/, where a notebook kernel and lthkit-report may not have it on the
    path)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        root = str(project_root())
        if root in sys.path or not (e.name and name.startswith(e.name.split(".")[0])):
            raise
        sys.path.append(root)
        return importlib.import_module(name)


def default_prunable_names(model: nn.Module) -> list[str]:
    """The weight of every convolution and linear layer, in module order."""
    return [f"{name}.weight" if name else "weight" for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and getattr(m, "weight", None) is not None]


def prunable_names(model: nn.Module) -> list[str]:
    """Names of the prunable parameters: the parameter file's choice when it made one, else the
    weight of every convolution and linear layer."""
    chosen = getattr(model, PRUNABLE_KEY, None)
    return list(chosen) if chosen is not None else default_prunable_names(model)


def _chosen_prunable(model: nn.Module, prunable: Sequence[str] | None,
                     not_prunable: Sequence[str] | None, arch: str) -> list[str]:
    """The parameter names the patterns choose, in parameter order; a NetworkError naming a
    pattern that matches nothing (a typo would silently prune something else)."""
    names = [n for n, _ in model.named_parameters()]
    for key, patterns in (("model.prunable", prunable or []),
                          ("model.not_prunable", not_prunable or [])):
        for pattern in patterns:
            if not fnmatch.filter(names, pattern):
                raise NetworkError(key, f"{pattern!r} matches no parameter of {arch} (its "
                                   f"parameters: {', '.join(names[:8])}, ...)")
    chosen = (set(default_prunable_names(model)) if prunable is None else
              {n for n in names if any(fnmatch.fnmatchcase(n, p) for p in prunable)})
    chosen -= {n for n in names if any(fnmatch.fnmatchcase(n, p) for p in not_prunable or [])}
    out = [n for n in names if n in chosen]
    if not out:
        raise NetworkError("model.prunable", f"with model.not_prunable, it leaves {arch} with no "
                           f"parameter to prune")
    return out


@provide_prunable_sizes  # the level checks of lthkit.config use it, without importing networks
def prunable_sizes(model: Any, dataset: str, width: int | None = None) -> list[int]:
    """Number of weights in each prunable layer of the network a `ModelSection` names (or of the
    kit's network `model` at `width`), computed without allocating it."""
    def build() -> nn.Module:
        return (build_model(model, width, dataset) if isinstance(model, str)
                else model_from(model, dataset))

    try:
        with torch.device("meta"):
            net = build()
    except Exception as e:  # a factory that cannot build on the meta device: build it for real
        if isinstance(e, NetworkError) and not isinstance(e, FactoryError):
            raise
        net = build()
    params = dict(net.named_parameters())
    names = prunable_names(net)
    if not names:
        shown = ", ".join(list(params)[:8]) or "none"
        raise NetworkError("model.prunable", f"{getattr(model, 'network', model)} has no "
                           f"convolution or linear layer, whose weights IMP prunes unless told "
                           f"otherwise: name the parameters to prune with model.prunable (glob "
                           f"patterns; its parameters: {shown})")
    return [params[n].numel() for n in names]
