"""The kit's own networks as the parameters know them, one `ArchitectureSpec` each: the name
`model.arch` accepts, its default width, its depths (a family such as resnet), and what data it
expects. Their builders live in lthkit.nets.models (`register_network`): adding a network is one
`register_architecture` call here and one builder there.

Plain data, no torch: lthkit.config imports nothing above it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

__all__ = ["ArchitectureSpec", "register_architecture", "architecture", "kit_architectures",
           "families", "split_network", "arch_pattern"]


@dataclass(frozen=True)
class ArchitectureSpec:
    """One of the kit's networks: `model.arch` <name>, its default width (`model.width` None),
    and for a family (resnet, vgg, wrn) the depths `model.depth` may take."""

    name: str
    default_width: int
    depths: str | None = None  # a family: its depths in words (None: a network of fixed depth)
    default_depth: int | None = None  # a family's depth when model.depth is None
    depth_fits: Callable[[int], bool] | None = None  # a family: whether a depth is one of its
    cifar_shaped: bool = False  # expects CIFAR-shaped data: refused on grey (1-channel) datasets

    @property
    def family(self) -> bool:
        """Whether `model.depth` chooses its depth (its networks are named <name><depth>)."""
        return self.depths is not None


_KIT_ARCHITECTURES = (
    ArchitectureSpec("resnet20", 16, cifar_shaped=True),
    ArchitectureSpec("vgg16", 64, cifar_shaped=True),
    ArchitectureSpec("mlp", 300),
    ArchitectureSpec("lenet5", 6),
    ArchitectureSpec("resnet", 16, "6n+2 (20, 32, 44, 56, 110)", 20,
                     lambda d: d >= 8 and (d - 2) % 6 == 0),
    ArchitectureSpec("vgg", 64, "11, 13, 16 or 19", 16, lambda d: d in (11, 13, 16, 19),
                     cifar_shaped=True),
    ArchitectureSpec("wrn", 4, "6n+4 (16, 22, 28, 40)", 16,
                     lambda d: d >= 10 and (d - 4) % 6 == 0),
)

_REGISTRY: dict[str, ArchitectureSpec] = {}
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def register_architecture(spec: ArchitectureSpec) -> ArchitectureSpec:
    """Make `spec` one of the kit's networks (model.arch <name>); its builder is registered in
    lthkit.nets.models (`register_network`). A ValueError when the name is taken or unusable."""
    if spec.name in _REGISTRY:
        raise ValueError(f"architecture {spec.name!r} is registered already")
    if not _NAME.fullmatch(spec.name):
        raise ValueError(f"{spec.name!r} cannot name an architecture: lower-case letters, digits "
                         f"and '_', starting with a letter")
    if spec.family and (spec.default_depth is None or spec.depth_fits is None
                        or spec.name[-1].isdigit()):
        raise ValueError(f"{spec.name}: a family needs a default depth, a depth check and a name "
                         f"not ending in a digit (its networks are <name><depth>)")
    _REGISTRY[spec.name] = spec
    return spec


def unregister_architecture(name: str) -> None:
    """Forget an architecture registered with `register_architecture` (tests clean up with it)."""
    if any(spec.name == name for spec in _KIT_ARCHITECTURES):
        raise ValueError(f"{name!r} is one of the kit's own architectures")
    _REGISTRY.pop(name, None)


def architecture(name: str) -> ArchitectureSpec | None:
    """The record of `model.arch` <name>; None for torchvision's and the user's networks."""
    return _REGISTRY.get(name)


def kit_architectures() -> tuple[ArchitectureSpec, ...]:
    """The kit's networks, in the order they were registered."""
    return tuple(_REGISTRY.values())


def families() -> tuple[str, ...]:
    """The architectures whose depth `model.depth` chooses."""
    return tuple(spec.name for spec in _REGISTRY.values() if spec.family)


def split_network(network: str) -> tuple[ArchitectureSpec, int | None] | None:
    """A kit network's name (`ModelSection.network`) as its architecture and depth: resnet56 ->
    (resnet, 56), a family at its depth first (resnet20 is ResNet of depth 20); mlp -> (mlp, None);
    None when it is not one of the kit's."""
    match = re.fullmatch(r"(.+?)(\d+)", network)
    if match:
        spec = _REGISTRY.get(match.group(1))
        if spec is not None and spec.family:
            return spec, int(match.group(2))
    spec = _REGISTRY.get(network)
    return (spec, None) if spec is not None and not spec.family else None


def arch_pattern() -> str:
    """The names `model.arch` accepts, as a regular expression: the kit's networks,
    torchvision:<name>, <module.path>:<factory>."""
    kit = "|".join(re.escape(spec.name) for spec in _REGISTRY.values())
    return (f"^({kit}|torchvision:[A-Za-z0-9_]+|"
            r"[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*)$")


for _spec in _KIT_ARCHITECTURES:
    register_architecture(_spec)
