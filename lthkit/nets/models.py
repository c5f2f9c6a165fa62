"""The networks of the papers: ResNet-20 and VGG-16 (BatchNorm) for CIFAR, MLP 300-100-10, LeNet-5.

`width` scales a network so smoke runs stay small: ResNet-20's stages are (w, 2w, 4w) channels
(paper: w = 16), VGG-16's layers are the usual 64..512 times w/64, the MLP's hidden layers are
(w, w/3) (300-100), LeNet-5's convolutions are (w, 16w/6) channels (w = 6).
ResNet-20 follows open_lth: 1x1 convolution + BatchNorm shortcuts where the shape changes.
"""

from __future__ import annotations

import torch
from torch import nn

from lthkit.config.catalog import input_shape, provide_prunable_sizes

__all__ = ["build_model", "prunable_names", "prunable_sizes", "DEFAULT_WIDTH", "input_shape"]

DEFAULT_WIDTH = {"resnet20": 16, "vgg16": 64, "mlp": 300, "lenet5": 6}
VGG16_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]


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

    def __init__(self, width: int = 16, blocks_per_stage: int = 3, num_classes: int = 10):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1, bias=False)
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
    """VGG-16 with BatchNorm for CIFAR (open_lth's cifar_vgg_16): 13 conv layers, one linear."""

    def __init__(self, width: int = 64, num_classes: int = 10):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for item in VGG16_LAYOUT:
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


def build_model(arch: str, width: int | None, dataset: str, seed: int | None = None) -> nn.Module:
    """A freshly initialized network; with `seed`, the initialization is that seed's."""
    w = width or DEFAULT_WIDTH[arch]
    channels, size, _ = input_shape(dataset)
    if arch == "resnet20":
        model: nn.Module = ResNetCifar(w)
    elif arch == "vgg16":
        model = VGGCifar(w)
    elif arch == "mlp":
        model = MLP(w, in_features=channels * size * size)
    elif arch == "lenet5":
        model = LeNet5(w, in_channels=channels, image_size=size)
    else:
        raise ValueError(f"unknown architecture {arch!r}")
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _kaiming_init(model)
    else:
        _kaiming_init(model)
    return model


def prunable_names(model: nn.Module) -> list[str]:
    """Names of the prunable parameters: the weight of every convolution and linear layer."""
    return [f"{name}.weight" if name else "weight" for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear))]


@provide_prunable_sizes  # the level checks of lthkit.config use it, without importing networks
def prunable_sizes(arch: str, width: int | None, dataset: str) -> list[int]:
    """Number of weights in each prunable layer, computed without allocating the model."""
    with torch.device("meta"):
        model = build_model(arch, width, dataset)
    params = dict(model.named_parameters())
    return [params[n].numel() for n in prunable_names(model)]
