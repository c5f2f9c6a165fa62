"""What a run needs of a network, checked before anything is trained: that it takes the
dataset's images and gives one score per class (`check_forward`, one forward pass on a batch of
two); and what the analyses need: BatchNorm the evaluator can recalibrate, no other running
statistics, Hessian-vector products in the mode the run will use, and points fused by vmap where
the run fuses them.

A network that fails a check is refused with one line naming the module (its path in the network
and its type) or what it gave, and the parameter to change. The kit's own networks pass by
construction; the checks are for torchvision's and the user's (`model.arch`), and cost one
forward and backward on two examples.
"""

from __future__ import annotations

from typing import Any, Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, jvp, vmap

from lthkit.nets.models import NetworkError
from lthkit.platform.errors import first_line

__all__ = ["resolve_hvp_mode", "check_forward", "check_network", "HvpMode"]

HvpMode = Literal["auto", "double_backward", "forward_over_reverse"]


def resolve_hvp_mode(mode: HvpMode, device: torch.device | str) -> str:
    """'auto': double backward on the CPU (ResNet-20 width 8, 256 images: 2.0 s against 2.9 s per
    product), forward-over-reverse on CUDA (H100, ResNet-20, 5,000 images: 0.52 s against 3.3 s;
    benchmarks/hessian_topk.py)."""
    if mode != "auto":
        return mode
    return "forward_over_reverse" if torch.device(device).type == "cuda" else "double_backward"


def check_forward(model: nn.Module, x: torch.Tensor, classes: int, name: str) -> None:
    """NetworkError (model.arch) unless `model` takes the batch `x` (the dataset's shape) and
    gives a tensor of `classes` scores per image: one forward pass, in eval mode, no gradients.
    A network that cannot take the images is told so here, not later as a failing analysis."""
    shape = " x ".join(str(d) for d in x.shape[1:])
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as e:  # noqa: BLE001 - the network's own words say what it expected
        raise NetworkError("model.arch", f"{name} cannot take the dataset's images ({shape}, "
                           f"channels x height x width): a forward pass on two of them fails "
                           f"({first_line(e, 200)}); use a network for {shape} images, or "
                           f"images of its size (data.image_size for an image folder)") from None
    finally:
        model.train(was)
    if not isinstance(out, torch.Tensor):
        raise NetworkError("model.arch", f"{name} returns a {type(out).__name__}, not a tensor "
                           f"of class scores: return the logits alone")
    if tuple(out.shape) != (x.shape[0], classes):
        raise NetworkError("model.arch", f"{name} gives outputs of shape "
                           f"{tuple(out.shape[1:])} per image, the dataset has {classes} "
                           f"classes: its last layer must give {classes} scores (a factory "
                           f"gets num_classes={classes} when it takes that argument)")


def check_network(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, hvp: str,
                  fused_points: bool, name: str, classes: int | None = None) -> None:
    """Raise NetworkError when the analyses cannot use `model` (see the module doc). `x`, `y`: two
    examples; `hvp`: the resolved Hessian-vector product mode; `fused_points`: whether the
    evaluator will vmap over points; `name`: the network as the parameter file names it;
    `classes`: the dataset's, for the forward check first (a network that cannot take the
    images fails there, not as a layer without double backward)."""
    if classes is not None:
        check_forward(model, x, classes, name)
    _check_normalization(model, name)
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    was = model.training
    model.eval()
    try:
        checks: list[tuple[str, str, Callable[[], Any], str]] = []
        if hvp == "forward_over_reverse":
            checks.append(("forward", "forward-mode differentiation (Hessian-vector products by "
                           "forward-over-reverse)", lambda: _forward_over_reverse(
                               model, params, buffers, x, y),
                           "set hessian.hvp: double_backward"))
        else:
            checks.append(("double", "double backward (Hessian-vector products)",
                           lambda: _double_backward(model, params, buffers, x, y),
                           "the network needs twice-differentiable layers"))
        if fused_points:
            checks.append(("vmap", "vmap over points (fused evaluation)",
                           lambda: _vmapped(model, params, buffers, x),
                           "set analysis.vmap: no"))
        for kind, what, run, fix in checks:
            try:
                run()
            except Exception as e:  # noqa: BLE001 - any failure of the library is the answer
                where = _failing_module(model, x, kind) or "a layer"
                raise NetworkError("model.arch", f"{name} cannot be analysed: {where} has no "
                                   f"{what} ({first_line(e, 160)}); {fix}") from None
    finally:
        model.train(was)


def _check_normalization(model: nn.Module, name: str) -> None:
    """Running statistics the evaluator cannot recalibrate: only BatchNorm's can be."""
    for path, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            continue
        if isinstance(m, nn.modules.instancenorm._InstanceNorm) and m.track_running_stats:
            raise NetworkError("model.arch", f"{name}: {path} ({type(m).__name__}) keeps running "
                               f"statistics the kit cannot recalibrate at the points it "
                               f"evaluates; build it with track_running_stats=False")
        own = [b for b, _ in m.named_buffers(recurse=False) if "running" in b]
        if own:
            raise NetworkError("model.arch", f"{name}: {path or 'the network'} "
                               f"({type(m).__name__}) keeps running statistics {own} the kit "
                               f"cannot recalibrate (only BatchNorm's); use BatchNorm or a layer "
                               f"without them")


def _loss(model, params, buffers, x, y):
    return F.cross_entropy(functional_call(model, {**params, **buffers}, (x,)), y)


def _forward_over_reverse(model, params, buffers, x, y) -> None:
    tangents = {k: torch.randn_like(v) for k, v in params.items()}
    jvp(lambda p: grad(lambda q: _loss(model, q, buffers, x, y))(p), (params,), (tangents,))


def _double_backward(model, params, buffers, x, y) -> None:
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    grads = torch.autograd.grad(_loss(model, leaves, buffers, x, y), list(leaves.values()),
                                create_graph=True, allow_unused=True)
    dot = sum((g * torch.ones_like(g)).sum() for g in grads if g is not None)
    if isinstance(dot, torch.Tensor) and dot.requires_grad:
        torch.autograd.grad(dot, list(leaves.values()), allow_unused=True)


def _vmapped(model, params, buffers, x) -> None:
    stacked = {k: torch.stack([v, v]) for k, v in params.items()}
    vmap(lambda p: functional_call(model, {**p, **buffers}, (x,)))(stacked)


def _failing_module(model: nn.Module, x: torch.Tensor, kind: str) -> str | None:
    """The first leaf module (in forward order) that fails the check alone: 'path (Type)'."""
    inputs: list[tuple[str, nn.Module, tuple]] = []
    hooks = [m.register_forward_hook(lambda m, i, o, path=path: inputs.append((path, m, i)))
             for path, m in model.named_modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(x)
    except Exception:  # noqa: BLE001 - the plain forward fails: the leaves seen so far tell
        pass
    finally:
        for h in hooks:
            h.remove()
    for path, m, args in inputs:
        args = tuple(a.detach() for a in args if isinstance(a, torch.Tensor))
        own = {k: v.detach() for k, v in m.named_parameters(recurse=False)}
        try:
            _leaf_check(m, own, args, kind)
        except Exception:  # noqa: BLE001
            return f"{path} ({type(m).__name__})"
    return None


def _leaf_check(m: nn.Module, params: dict, args: tuple, kind: str) -> None:
    """The check `kind` (forward, double, vmap) on one module alone, with respect to its input
    (its own weights held fixed)."""
    def out(*a):
        result = functional_call(m, params, a)
        return result if isinstance(result, torch.Tensor) else result[0]

    if not args:
        return
    if kind == "forward":  # forward over reverse, as the Hessian products take it
        floats = tuple(a for a in args if a.is_floating_point())
        if not floats:
            return
        argnums = tuple(range(len(floats)))
        backward = grad(lambda *a: out(*a).float().pow(2).sum(), argnums=argnums)
        jvp(backward, floats, tuple(torch.randn_like(a) for a in floats))
    elif kind == "vmap":
        vmap(out)(*(torch.stack([a, a]) for a in args))
    else:
        leaves = tuple(a.clone().requires_grad_(a.is_floating_point()) for a in args)
        value = out(*leaves).float().pow(2).sum()
        g = torch.autograd.grad(value, [a for a in leaves if a.requires_grad], create_graph=True)
        torch.autograd.grad(sum(t.sum() for t in g), [a for a in leaves if a.requires_grad],
                            allow_unused=True)
