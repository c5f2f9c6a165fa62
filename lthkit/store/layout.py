"""The run folder: every expensive result is written once, atomically, checksummed, and reused.

    outputs/<run>/
      manifest.json               the parameters the run was made with
      imp/init.pt, imp/rewind.pt  W_init and W_rewind (state dicts)
      imp/level_03/               mask.pt, final.pt (W_min(3)), metrics.json, resume.pt while
                                  training, epochs/epoch_0010.pt (the trajectory)
      baselines/<kind>/level_03/  the same files for a comparison solution
      cache/<analysis>/<key>.pt   Hessian spectra, lines, planes, radii
      figures/, tables/           what the notebooks draw, named after the paper's figures
      notebooks/                  executed notebooks, their HTML, index.html
      replicate_1/, replicate_2/  the other replicates (run.replicates > 1): each a run folder of
                                  its own with this layout (lthkit.verdicts.replicates); the
                                  run folder's checks reach into them on purpose: stale temporary
                                  files are removed there too, `verify` checks them, and they
                                  count as results (a folder holding replicates is not empty)
      */SHA256SUMS                the SHA-256 of every artifact of that folder (`sha256sum -c`)
      .lthkit.lock                one writer at a time: a command, or notebooks opened by hand
                                  (lthkit.store.lock)

A write goes to a temporary file in the same folder (`.<name>.<pid>-<random>.tmp`) and is renamed
over the target, so a killed process leaves either the old file or the new one, never half of one;
a temporary file whose process is gone is removed when the run is opened again. Artifacts (what
`save_tensors` and `save_json` write, and the kit reads back) have their SHA-256 recorded in the
folder's SHA256SUMS when written and checked when read: a damaged file (or one that its folder's
SHA256SUMS has no line for: nothing vouches for it) stops with one message naming it, the
notebook that made it and the command that makes it again (a damaged cache file is computed
again). Checkpoints load with `torch.load(weights_only=True)`. A full disk or a read-only folder
stops with one line naming the file and the cause; what was written before is intact.

    python -m lthkit.store verify outputs/<run>    # every checksum, every file without a line
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from lthkit.config import Params, flatten
from lthkit.config.params import completed_fingerprint
from lthkit.config.series import TRAIN_IMP, notebook_file
from lthkit.store.files import (CHECKSUMS, TEMP_FILE, DamagedFileError, atomic_write_bytes,
                                load_json, load_tensors, recorded_names, remove_stale_temp_files,
                                save_json, save_tensors)
from lthkit.store.paths import LOCK_FILE, MANIFEST, REPLICATE_DIR, replicate_dir

__all__ = ["RunStore", "CacheMissing", "MissingInputError", "RunMismatchError", "params_table",
           "other_replicates"]

T = TypeVar("T")


class MissingInputError(FileNotFoundError):
    """An input a notebook needs is not in the run folder; the message names what makes it."""


class RunMismatchError(RuntimeError):
    """A run folder made with other training parameters than the ones given."""



class CacheMissing(LookupError):
    """A cached result that is not there yet (raised only while the store is probing)."""

    def __init__(self, path: Path):
        self.path = path
        super().__init__(f"{path}: not computed yet")




def _refuse_differences(old: dict[str, Any], new: dict[str, Any], what: str, source: str) -> None:
    """Raise RunMismatchError listing the keys whose values differ between old and new."""
    differ = _differences(old, new)
    if differ:
        lines = "\n".join(f"  {k}: {old.get(k)!r} there, {new.get(k)!r} in {source}"
                          for k in differ[:12])
        raise RunMismatchError(
            f"{what} was made with other parameters:\n{lines}\n"
            f"Use another run.name for these parameters, or delete that folder to start over.")


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


# --- the run folder -----------------------------------------------------------------------------

class RunStore:
    """Paths and atomic reads and writes inside one run folder."""

    # What a run folder holds besides its results: the report, the parameters it was run with.
    NOT_RESULTS = frozenset({MANIFEST, CHECKSUMS, LOCK_FILE, "notebooks", "index.html",
                             "params.yaml", "params", "_static"})  # _static: the HTMLs' MathJax

    def __init__(self, root: Path):
        self.root = Path(root)
        self._probing = False

    @contextmanager
    def probing(self) -> Iterator[None]:
        """Within it, `cached` reads what is there and raises CacheMissing for what is not (what
        a run still has to compute, found without computing it)."""
        self._probing = True
        try:
            yield
        finally:
            self._probing = False

    # construction ----------------------------------------------------------------------------
    @classmethod
    def create(cls, params: Params, root: Path | None = None) -> "RunStore":
        """Open the run folder (or `root`) for training, creating it; refuse one made with other
        training parameters. A folder with no results yet (a run that failed before training)
        takes the new parameters, with a note."""
        store = cls(root or params.run_dir())
        store._refuse_foreign_folder()
        store.clean()
        manifest = store.root / MANIFEST
        if manifest.exists():
            store._check_fingerprint(params, load_json(manifest), replaceable=True)
        elif store._lost_its_manifest():
            print(f"note: {manifest} was deleted: the run folder takes the parameters of "
                  f"{params.source}", file=sys.stderr)
        save_json(manifest, {
            "params": params.model_dump(),
            "fingerprint": params.training_fingerprint(),
            "source": params.source,
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })
        return store

    @classmethod
    def existing(cls, params: Params, needed_by: str = "this notebook",
                 root: Path | None = None) -> "RunStore":
        """Open a run folder that notebook 01 made (or `root`, a replicate's folder); a missing
        or mismatched one is an error."""
        store = cls(root or params.run_dir())
        manifest = store.root / MANIFEST
        if not manifest.exists():
            replicate = REPLICATE_DIR.match(store.root.name) if root else None
            which = f" with the parameter replicate={replicate.group(1)}" if replicate else ""
            raise MissingInputError(
                f"{needed_by} needs the run folder {store.root}, which does not exist yet: run "
                f"{notebook_file(TRAIN_IMP)}{which} with {params.source} first "
                f"(or: lthkit-report {params.source})")
        store.clean()
        store._check_fingerprint(params, load_json(manifest))
        return store

    def _check_fingerprint(self, params: Params, manifest: dict[str, Any],
                           replaceable: bool = False, quiet: bool = False) -> None:
        old = completed_fingerprint(manifest.get("fingerprint", {}))
        new = params.training_fingerprint()
        if replaceable and _differences(old, new) and not self.has_results():
            if quiet:
                return
            print(f"note: the run folder {self.root} holds no results yet (a run that stopped "
                  f"before training?): it takes the parameters of {params.source} "
                  f"(changed: {', '.join(_differences(old, new)[:6])})", file=sys.stderr)
            return
        _refuse_differences(old, new, f"the run folder {self.root}", params.source)

    def check_compatible(self, params: Params) -> None:
        """RunMismatchError when the folder holds results made with other training parameters."""
        manifest = self.root / MANIFEST
        if manifest.exists():
            self._check_fingerprint(params, load_json(manifest), replaceable=True, quiet=True)

    def has_results(self) -> bool:
        """Whether the folder holds anything a run made (beyond its manifest and report)."""
        if not self.root.is_dir():
            return False
        for entry in self.root.iterdir():
            if entry.name in self.NOT_RESULTS or TEMP_FILE.match(entry.name):
                continue
            if REPLICATE_DIR.match(entry.name) and entry.is_dir():  # a run folder of its own
                if RunStore(entry).has_results():
                    return True
                continue
            if entry.is_file() or any(p.is_file() and not TEMP_FILE.match(p.name)
                                       for p in entry.rglob("*")):
                return True
        return False

    def _refuse_foreign_folder(self) -> None:
        """A folder that exists, holds files and has no manifest is not a run folder: refuse to
        write into it (a run.name that names some other folder). One whose SHA256SUMS still
        names its manifest is a run folder whose damaged manifest was deleted (the remedy of
        lthkit.store.paths): it takes the parameters it is run with."""
        if self.root.exists() and not self.root.is_dir():
            raise RunMismatchError(f"the run folder {self.root} is a file: choose another run.name")
        if self.root.is_dir() and not (self.root / MANIFEST).exists() \
                and not self._lost_its_manifest() and self.has_results():
            raise RunMismatchError(
                f"{self.root} exists, holds files and is not a run folder (no {MANIFEST}): "
                f"choose another run.name (or run.output_root)")

    def _lost_its_manifest(self) -> bool:
        try:
            return MANIFEST in recorded_names(self.root)
        except DamagedFileError:
            return False

    def clean(self) -> list[Path]:
        """Remove what killed writers left in the folder (stale temporary files)."""
        return remove_stale_temp_files(self.root)

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
        """Load a cached result, or compute it, save it atomically and return it (while
        `probing()`: raise CacheMissing instead of computing)."""
        path = self.cache_path(analysis, key)
        if path.exists():
            try:
                return load_tensors(path)
            except DamagedFileError as e:
                print(f"note: {path.relative_to(self.root)} was damaged ({e.problem}); computing "
                      f"it again", file=sys.stderr)
                path.unlink(missing_ok=True)
        if self._probing:
            raise CacheMissing(path)
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
        return load_json(self.root / MANIFEST)


def params_table(params: Params) -> list[tuple[str, Any]]:
    """The parameters as (key, value) rows, for a notebook's opening table."""
    return sorted(flatten(params.model_dump()).items())



def other_replicates(ctx: Any) -> dict[int, RunStore]:
    """The stores of the run's other replicates that exist (a manifest), for reading only.

    Only replicate 0 gathers (its notebooks are the report); replicate r >= 1 sees none. Folders
    of replicates beyond `run.replicates` (left by an earlier, larger run) are not read.
    """
    if getattr(ctx, "replicate", 0) != 0:
        return {}
    root = ctx.store.root
    out = {}
    for r in range(1, ctx.params.run.replicates):
        folder = replicate_dir(root, r)
        if (folder / MANIFEST).is_file():
            out[r] = RunStore(folder)
    return out
