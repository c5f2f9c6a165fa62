"""Seeds: one 63-bit seed derived from any parts, and the seed and parameters of each replicate
(replicate 0 is the run itself; replicate r >= 1 runs with a seed derived from run.seed)."""

from __future__ import annotations

import hashlib

from lthkit.config.base import ParamsError
from lthkit.config.params import Params

__all__ = ["derive_seed", "replicate_seed", "replicate_params"]


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (run seed, a tag, an epoch): stable across runs and machines."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def replicate_seed(seed: int, replicate: int) -> int:
    """The seed of a replicate: the run's own for replicate 0, a derived one for the others."""
    return seed if replicate == 0 else derive_seed(seed, "replicate", replicate)


def replicate_params(params: Params, replicate: int) -> Params:
    """The parameters replicate `replicate` runs with (only `run.seed` differs); a ParamsError
    when the run has no such replicate."""
    if not 0 <= replicate < params.run.replicates:
        raise ParamsError(f"{params.source}: run.replicates: replicate {replicate} was asked for, "
                          f"but the run has {params.run.replicates} (replicates 0.."
                          f"{params.run.replicates - 1}): raise run.replicates")
    if replicate == 0:
        return params
    run = params.run.model_copy(update={"seed": replicate_seed(params.run.seed, replicate)})
    return params.model_copy(update={"run": run})
