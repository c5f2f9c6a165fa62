"""The run folder: every expensive result is written once, atomically, and reused.

    outputs/<run>/
      manifest.json               the parameters the run was made with
      imp/init.pt, imp/rewind.pt  W_init and W_rewind (state dicts)
      imp/level_03/               mask.pt, final.pt (W_min(3)), metrics.json, resume.pt while
                                  training, epochs/epoch_0010.pt (the trajectory)
      baselines/<kind>/level_03/  the same files for a comparison solution
      cache/<analysis>/<key>.pt   Hessian spectra, lines, planes, radii
      figures/, tables/           what the notebooks draw, named after the paper's figures
      notebooks/                  executed notebooks, their HTML, index.html

A write goes to a temporary file in the same folder and is renamed over the target, so a killed
process leaves either the old file or the new one, never half of one. Checkpoints load with
`torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch

from .params import Params, flatten

__all__ = ["RunStore", "MissingInputError", "RunMismatchError", "atomic_write_bytes",
           "save_tensors", "load_tensors", "save_json", "load_json"]

T = TypeVar("T")


class MissingInputError(FileNotFoundError):
    """An input a notebook needs is not in the run folder; the message names what makes it."""


class RunMismatchError(RuntimeError):
    """A run folder made with other training parameters than the ones given."""


# --- atomic files -------------------------------------------------------------------------------

def atomic_write_bytes(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Call `write(file)` on a temporary file next to `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_tensors(path: Path, obj: Any) -> None:
    """torch.save, atomically."""
    atomic_write_bytes(path, lambda f: torch.save(obj, f))


def load_tensors(path: Path, map_location: torch.device | str | None = "cpu") -> Any:
    """torch.load with weights_only=True (tensors, numbers, strings, lists and dicts only)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def save_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, lambda f: f.write(json.dumps(obj, indent=1, default=_json_default)),
                       mode="w")


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _json_default(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serializable: {type(x).__name__}")


def _refuse_differences(old: dict[str, Any], new: dict[str, Any], what: str, source: str) -> None:
    """Raise RunMismatchError listing the keys whose values differ between old and new."""
    differ = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if differ:
        lines = "\n".join(f"  {k}: {old.get(k)!r} there, {new.get(k)!r} in {source}"
                          for k in differ[:12])
        raise RunMismatchError(
            f"{what} was made with other parameters:\n{lines}\n"
            f"Use another run.name for these parameters, or delete that folder to start over.")


# --- the run folder -----------------------------------------------------------------------------

class RunStore:
    """Paths and atomic reads and writes inside one run folder."""

    def __init__(self, root: Path):
        self.root = Path(root)

    # construction ----------------------------------------------------------------------------
    @classmethod
    def create(cls, params: Params, root: Path | None = None) -> "RunStore":
        """Open the run folder (or `root`) for training, creating it; refuse one made with other
        training parameters."""
        store = cls(root or params.run_dir())
        manifest = store.root / "manifest.json"
        if manifest.exists():
            store._check_fingerprint(params, load_json(manifest))
        save_json(manifest, {
            "params": params.model_dump(),
            "fingerprint": params.training_fingerprint(),
            "source": params.source,
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })
        return store

    @classmethod
    def existing(cls, params: Params, needed_by: str = "this notebook") -> "RunStore":
        """Open a run folder that notebook 01 made; a missing or mismatched one is an error."""
        store = cls(params.run_dir())
        manifest = store.root / "manifest.json"
        if not manifest.exists():
            raise MissingInputError(
                f"{needed_by} needs the run folder {store.root}, which does not exist yet: run "
                f"notebooks/01_train_imp.ipynb with {params.source} first "
                f"(or: lthkit-report {params.source})")
        store._check_fingerprint(params, load_json(manifest))
        return store

    def _check_fingerprint(self, params: Params, manifest: dict[str, Any]) -> None:
        _refuse_differences(manifest.get("fingerprint", {}), params.training_fingerprint(),
                            f"the run folder {self.root}", params.source)

    def claim(self, folder: Path, spec: dict[str, Any], source: str) -> None:
        """Record the parameters a result folder is made with (spec.json), or refuse other ones.

        Keeps a result made with, say, another fine-tuning lr from being silently reused.
        """
        path = folder / "spec.json"
        if path.exists():
            _refuse_differences(load_json(path), spec, str(folder), source)
        else:
            save_json(path, spec)

    # paths ---------------------------------------------------------------------------------------
    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def imp_dir(self, level: int) -> Path:
        return self.root / "imp" / f"level_{level:02d}"

    def baseline_dir(self, kind: str, level: int) -> Path:
        return self.root / "baselines" / kind / f"level_{level:02d}"

    def cache_path(self, analysis: str, key: str) -> Path:
        return self.root / "cache" / analysis / f"{key}.pt"

    def figure_path(self, name: str) -> Path:
        return self.root / "figures" / name

    def table_path(self, name: str) -> Path:
        return self.root / "tables" / name

    # reading with a clear error ------------------------------------------------------------------
    def require(self, path: Path, made_by: str) -> Path:
        """`path` if it exists; else a MissingInputError naming the notebook that makes it."""
        if not path.exists():
            raise MissingInputError(f"{path.relative_to(self.root)} is missing from the run folder "
                                    f"{self.root}: run {made_by} first")
        return path

    def cached(self, analysis: str, key: str, compute: Callable[[], T]) -> T:
        """Load a cached result, or compute it, save it atomically and return it."""
        path = self.cache_path(analysis, key)
        if path.exists():
            return load_tensors(path)
        value = compute()
        save_tensors(path, value)
        return value

    def save_figure(self, fig: Any, name: str, dpi: int = 120) -> Path:
        """Write a matplotlib figure under figures/ (atomically) and return its path."""
        path = self.figure_path(name)
        atomic_write_bytes(path, lambda f: fig.savefig(f, format=path.suffix.lstrip(".") or "png",
                                                       dpi=dpi, bbox_inches="tight"))
        return path

    def save_table(self, table: Any, name: str) -> Path:
        """Write a pandas DataFrame under tables/ as CSV (atomically) and return its path."""
        path = self.table_path(name)
        atomic_write_bytes(path, lambda f: table.to_csv(f), mode="w")
        return path

    def manifest(self) -> dict[str, Any]:
        return load_json(self.root / "manifest.json")


def params_table(params: Params) -> list[tuple[str, Any]]:
    """The parameters as (key, value) rows, for a notebook's opening table."""
    return sorted(flatten(params.model_dump()).items())
