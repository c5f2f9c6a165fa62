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
                                  its own with this layout (lthkit.replicates); the run folder's
                                  checks reach into them on purpose: stale temporary files are
                                  removed there too, `verify` checks them, and they count as
                                  results (a folder holding replicates is not empty)
      */SHA256SUMS                the SHA-256 of every artifact of that folder (`sha256sum -c`)

A write goes to a temporary file in the same folder (`.<name>.<pid>-<random>.tmp`) and is renamed
over the target, so a killed process leaves either the old file or the new one, never half of one;
a temporary file whose process is gone is removed when the run is opened again. Artifacts (what
`save_tensors` and `save_json` write, and the kit reads back) have their SHA-256 recorded in the
folder's SHA256SUMS when written and checked when read: a damaged file stops with one message
naming it, the notebook that made it and the command that makes it again (a damaged cache file is
computed again). Checkpoints load with `torch.load(weights_only=True)`. A full disk or a read-only
folder stops with one line naming the file and the cause; what was written before is intact.

    python -m lthkit.store verify outputs/<run>    # check every recorded checksum of a run
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import io
import json
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import torch

from .params import Params, flatten

__all__ = ["RunStore", "CacheMissing", "run_differences", "value_differences",
           "MissingInputError", "RunMismatchError", "DamagedFileError", "StorageError",
           "atomic_write_bytes", "save_tensors", "load_tensors", "save_json", "load_json",
           "remove_stale_temp_files", "verify_folder", "CHECKSUMS", "save_bytes"]

T = TypeVar("T")

CHECKSUMS = "SHA256SUMS"
_UMASK = os.umask(0o022)  # read once, at import (setting it is the only way to read it)
os.umask(_UMASK)
MANIFEST = "manifest.json"
# Replicate r >= 1 of a run lives in <run>/replicate_<r>/, a run folder of its own inside it
# (lthkit.replicates): its own manifest, SHA256SUMS per folder, notebooks/ and notebooks/failed/.
REPLICATE_DIR = re.compile(r"^replicate_(\d+)$")


class MissingInputError(FileNotFoundError):
    """An input a notebook needs is not in the run folder; the message names what makes it."""


class RunMismatchError(RuntimeError):
    """A run folder made with other training parameters than the ones given."""


class DamagedFileError(RuntimeError):
    """An artifact that is unreadable or differs from the checksum recorded when it was written;
    the message names the file, what made it and how to make it again."""

    def __init__(self, path: Path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(_damage_message(self.path, problem))


class CacheMissing(LookupError):
    """A cached result that is not there yet (raised only while the store is probing)."""

    def __init__(self, path: Path):
        self.path = path
        super().__init__(f"{path}: not computed yet")


class StorageError(OSError):
    """A write that the disk refused (full, read-only, no permission), in one line."""

    def __init__(self, path: Path, error: OSError):
        super().__init__(error.errno, error.strerror)
        self.path = Path(path)
        self.message = (f"{_cause(error)} writing {_where(self.path)}; earlier results are "
                        f"intact: {_storage_remedy(error)}")

    def __str__(self) -> str:
        return self.message


def _cause(error: OSError) -> str:
    return {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
            errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
            errno.EPERM: "operation not permitted"}.get(error.errno or 0,
                                                         error.strerror or type(error).__name__)


def _storage_remedy(error: OSError) -> str:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return ("free some space (or set run.output_root to a larger disk) and run the same "
                "command again; it resumes where it stopped")
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "make the folder writable, or set run.output_root to a writable folder"
    return "fix the cause and run the same command again; it resumes where it stopped"


# --- atomic, checksummed files --------------------------------------------------------------------

def atomic_write_bytes(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Call `write(file)` on an in-memory file, then write it next to `path` and rename it over.

    For figures, tables and pages (not read back by the kit, so no checksum is recorded).
    """
    buf: io.BytesIO | io.StringIO = io.BytesIO() if "b" in mode else io.StringIO()
    write(buf)
    data = buf.getvalue()
    _atomic_write(Path(path), data if isinstance(data, bytes) else data.encode(), checksum=False)


def save_tensors(path: Path, obj: Any) -> None:
    """torch.save, atomically, with its SHA-256 recorded in the folder's SHA256SUMS."""
    buf = io.BytesIO()
    torch.save(obj, buf)  # in memory first: a full disk then fails in our write, not in torch's
    _atomic_write(Path(path), buf.getvalue(), checksum=True)


def load_tensors(path: Path, map_location: torch.device | str | None = "cpu") -> Any:
    """torch.load with weights_only=True (tensors, numbers, strings, lists and dicts only), after
    checking the checksum recorded when it was written; a damaged file is a DamagedFileError."""
    data = _read_verified(Path(path))
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except MemoryError:
        raise
    except Exception as e:  # torch's zip reader and unpickler say it in their own words
        raise DamagedFileError(path, f"torch cannot read it ({_first_line(e)})") from None


def save_json(path: Path, obj: Any) -> None:
    """JSON, atomically, with its SHA-256 recorded in the folder's SHA256SUMS."""
    text = json.dumps(obj, indent=1, default=_json_default)
    _atomic_write(Path(path), text.encode(), checksum=True)


def save_bytes(path: Path, data: bytes) -> None:
    """An artifact's bytes as they are (made elsewhere: a Ray worker's file), atomically, with
    its SHA-256 recorded in the folder's SHA256SUMS."""
    _atomic_write(Path(path), bytes(data), checksum=True)


def load_json(path: Path) -> Any:
    """A JSON artifact, after checking its recorded checksum; a damaged file is a DamagedFileError."""
    data = _read_verified(Path(path))
    try:
        return json.loads(data)
    except ValueError as e:
        raise DamagedFileError(path, f"not valid JSON ({e})") from None


def _json_default(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serializable: {type(x).__name__}")


def _atomic_write(path: Path, data: bytes, checksum: bool) -> None:
    """Write `data` to a temporary file next to `path`, fsync, rename it over `path`; with
    `checksum`, record its SHA-256 so that the folder's SHA256SUMS matches whichever file a kill
    at any moment leaves in place (the old digest is kept beside the new one until the rename)."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp",
                                   dir=path.parent)
        if hasattr(os, "fchmod"):  # mkstemp makes 0600: give the file the usual permissions
            os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            _write_all(f, data, path)
            f.flush()
            os.fsync(f.fileno())
        if checksum:
            digest = hashlib.sha256(data).hexdigest()
            with _locked(path.parent):  # every writer records, renames, records under it
                sums = _read_sums(path.parent)
                before = sums.get(path.name, [])
                gone = [n for n in sums if n != path.name and not (path.parent / n).exists()]
                if before != [digest] or gone:  # a deleted file's line goes (sha256sum -c)
                    accepted = before if digest in before else [*before, digest]
                    kept = {n: d for n, d in sums.items() if n not in gone}
                    _write_sums(path.parent, {**kept, path.name: accepted})
                os.replace(tmp, path)
                if before and before != [digest]:
                    _write_sums(path.parent, {**_read_sums(path.parent), path.name: [digest]})
        else:
            os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise StorageError(path, e) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _write_all(f: Any, data: bytes, path: Path) -> None:
    """The one place an artifact's bytes reach the disk (`path`: what they become), where tests
    put a full disk when they cannot mount one."""
    f.write(data)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on a folder (flock on its descriptor) while its SHA256SUMS changes."""
    try:
        import fcntl
    except ImportError:  # not POSIX: one writer per folder is assumed
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


_SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


def _read_sums(folder: Path) -> dict[str, list[str]]:
    """SHA256SUMS of a folder as {file name: accepted digests}; {} when there is none."""
    path = folder / CHECKSUMS
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise DamagedFileError(path, f"unreadable ({_first_line(e)})") from None
    sums: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        match = _SUM_LINE.match(line)
        if not match:
            raise DamagedFileError(path, f"line {number} is not '<sha256>  <file name>'")
        sums.setdefault(match.group(2), []).append(match.group(1))
    return sums


def _write_sums(folder: Path, sums: dict[str, list[str]]) -> None:
    text = "".join(f"{d}  {name}\n" for name in sorted(sums) for d in sums[name])
    _atomic_write(folder / CHECKSUMS, text.encode(), checksum=False)


def _read_verified(path: Path) -> bytes:
    """The bytes of `path` when they match a digest recorded for it (or none is recorded)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as e:
        raise DamagedFileError(path, f"unreadable ({e.strerror})") from None
    expected = _read_sums(path.parent).get(path.name)
    if expected and hashlib.sha256(data).hexdigest() not in expected:
        raise DamagedFileError(path, f"its SHA-256 differs from the one recorded in {CHECKSUMS} "
                                     f"when it was written ({len(data)} bytes now)")
    return data


def verify_folder(root: Path) -> list[DamagedFileError]:
    """Every recorded checksum under `root` checked: the damaged files (missing ones are skipped)."""
    damaged = []
    for sums in sorted(Path(root).rglob(CHECKSUMS)):
        try:
            names = _read_sums(sums.parent)
        except DamagedFileError as e:
            damaged.append(e)
            continue
        for name in sorted(names):
            try:
                if (sums.parent / name).exists():
                    _read_verified(sums.parent / name)
            except DamagedFileError as e:
                damaged.append(e)
    return damaged


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# --- what a damaged file is, who made it, how to make it again ------------------------------------

# The notebook that writes each top-level part of a run folder.
WRITTEN_BY = {"imp": "01_train_imp", MANIFEST: "01_train_imp", "baselines": "02_baselines",
              "mnist": "10_ticket_transfer", "bain": "11_ticket_landscapes"}


def run_root_of(path: Path) -> Path | None:
    """The run folder holding `path`: its outermost ancestor with a manifest.json."""
    roots = [p for p in Path(path).parents if (p / MANIFEST).is_file()]
    return roots[-1] if roots else None


def _where(path: Path) -> str:
    root = run_root_of(path)
    return f"{path.relative_to(root)} in {root}" if root else str(path)


def _damage_message(path: Path, problem: str) -> str:
    root = run_root_of(path)
    if root is None:
        return f"{path} is damaged: {problem}. Delete it and make it again."
    rel = path.relative_to(root)
    if len(rel.parts) > 1 and REPLICATE_DIR.match(rel.parts[0]):  # a replicate's own file
        root, rel = root / rel.parts[0], Path(*rel.parts[1:])
    notebook = WRITTEN_BY.get(rel.parts[0])
    if rel.parts[0] == "cache":
        return (f"{rel} in {root} is damaged: {problem}. It is a cache: delete it and run the "
                f"notebook that reads it again, which computes it again.")
    if rel.parts[0] == "notebooks":
        return (f"{rel} in {root} is damaged: {problem}. The report runner writes it: delete it "
                f"and run lthkit-report again.")
    made_by = f"notebooks/{notebook}.ipynb" if notebook else "the notebook that writes it"
    command = f"lthkit-report {_params_file(root)} --only {notebook}" if notebook else \
        "that notebook"
    return (f"{rel} in {root} is damaged: {problem}. It was made by {made_by}; to make it "
            f"again, {_remedy(rel)} and run `{command}`.")


def _remedy(rel: Path) -> str:
    """What to delete so that the notebook that made `rel` makes it again."""
    parts = rel.parts
    levels = [i for i, part in enumerate(parts) if re.fullmatch(r"level_\d+", part)]
    if rel.name == CHECKSUMS:
        return f"delete {rel} (the files of its folder are then read unchecked until rewritten)"
    if rel.name == MANIFEST:
        return (f"delete {rel} (the run folder then takes the parameters it is run with: give it "
                f"the ones it was made with)")
    if rel.name == "resume.pt" or rel.name.startswith("together_"):
        return f"delete {rel} (the training it resumes starts again from its beginning)"
    if levels:
        folder = Path(*parts[:levels[-1] + 1])
        later = (" and the levels after it, which were pruned from it (a CPU run retrains it bit "
                 "for bit, so there they may stay; on CUDA a retrained level differs in rounding "
                 "unless run.deterministic: true, so delete them too)"
                 ) if "imp" in parts[:levels[-1]] else ""
        return f"delete the folder {folder}{later}"
    if rel.name in ("init.pt", "rewind.pt"):
        return f"delete the folder {rel.parent} (every level starts from {rel.name})"
    return f"delete {rel}"


def _params_file(root: Path) -> str:
    """The parameter file a run was made with, as its manifest says (or a placeholder)."""
    try:
        source = json.loads((root / MANIFEST).read_text()).get("source", "")
    except (OSError, ValueError, AttributeError):
        source = ""
    return source if source and Path(source).is_file() else "<parameter file>"


# --- stale temporary files ------------------------------------------------------------------------

_TEMP = re.compile(r"^\..+\.(?:(\d+)-)?[^.]*\.tmp$")


def remove_stale_temp_files(root: Path) -> list[Path]:
    """Remove the temporary files under `root` that a killed writer left; those of a process that
    is still running stay. Returns what was removed."""
    removed = []
    if not Path(root).is_dir():
        return removed
    for tmp in Path(root).rglob(".*.tmp"):
        match = _TEMP.match(tmp.name)
        if not match or not tmp.is_file():
            continue
        pid = int(match.group(1)) if match.group(1) else None
        if pid is not None and _alive(pid):
            continue
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # a read-only folder: it stays, harmless
            continue
        removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


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
    NOT_RESULTS = frozenset({MANIFEST, CHECKSUMS, "notebooks", "index.html", "params.yaml",
                             "params", "_static"})  # _static: the HTML copies' MathJax

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
                f"notebooks/01_train_imp.ipynb{which} with {params.source} first "
                f"(or: lthkit-report {params.source})")
        store.clean()
        store._check_fingerprint(params, load_json(manifest))
        return store

    def _check_fingerprint(self, params: Params, manifest: dict[str, Any],
                           replaceable: bool = False, quiet: bool = False) -> None:
        old, new = manifest.get("fingerprint", {}), params.training_fingerprint()
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
            if entry.name in self.NOT_RESULTS or _TEMP.match(entry.name):
                continue
            if REPLICATE_DIR.match(entry.name) and entry.is_dir():  # a run folder of its own
                if RunStore(entry).has_results():
                    return True
                continue
            if entry.is_file() or any(p.is_file() and not _TEMP.match(p.name)
                                       for p in entry.rglob("*")):
                return True
        return False

    def _refuse_foreign_folder(self) -> None:
        """A folder that exists, holds files and has no manifest is not a run folder: refuse to
        write into it (a run.name that names some other folder)."""
        if self.root.exists() and not self.root.is_dir():
            raise RunMismatchError(f"the run folder {self.root} is a file: choose another run.name")
        if self.root.is_dir() and not (self.root / MANIFEST).exists() and self.has_results():
            raise RunMismatchError(
                f"{self.root} exists, holds files and is not a run folder (no {MANIFEST}): "
                f"choose another run.name (or run.output_root)")

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


# --- comparing two run folders ----------------------------------------------------------------

def is_timing(key: str) -> bool:
    """A field that says how long something took: the one thing two faithful runs differ in."""
    return key.endswith("seconds")


def value_differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Where two loaded artifacts differ (tensors exactly, numbers exactly with NaN equal to NaN,
    timing fields ignored): a list of paths into them, empty when they are the same."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where}: keys {sorted(map(str, a.keys() ^ b.keys()))} in one only"]
        return [d for k in a if not is_timing(str(k))
                for d in value_differences(a[k], b[k], f"{where}/{k}")]
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        same = a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
        return [] if same else [where]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{where}: length {len(a)} against {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in value_differences(x, y,
                                                                                  f"{where}[{i}]")]
    if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        return [where]
    return [] if a == b or (a != a and b != b) else [where]


COMPARED = ("*.pt", "metrics.json", "early_stopping.json")


def run_differences(a: Path, b: Path) -> dict[str, list[str]]:
    """Two run folders artifact by artifact (weights, masks, cached analyses, metrics; not the
    notebooks, figures or resume files): {"differ": [...], "only_a": [...], "only_b": [...],
    "same": [...]}, paths relative to the folders."""
    def artifacts(root: Path) -> set[str]:
        return {p.relative_to(root).as_posix() for pattern in COMPARED for p in root.rglob(pattern)
                if p.name != "resume.pt" and "notebooks" not in p.relative_to(root).parts}

    def load(path: Path) -> Any:
        return load_json(path) if path.suffix == ".json" else load_tensors(path)

    in_a, in_b = artifacts(Path(a)), artifacts(Path(b))
    out: dict[str, list[str]] = {"differ": [], "only_a": sorted(in_a - in_b),
                                 "only_b": sorted(in_b - in_a), "same": []}
    for rel in sorted(in_a & in_b):
        differs = value_differences(load(Path(a) / rel), load(Path(b) / rel))
        out["differ" if differs else "same"].append(rel)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lthkit.store",
                                     description="check or compare run folders")
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="check every artifact against its SHA256SUMS line")
    verify.add_argument("folder")
    compare = sub.add_parser("compare", help="compare two run folders artifact by artifact "
                             "(weights, masks, cached analyses, metrics; timings ignored)")
    compare.add_argument("a")
    compare.add_argument("b")
    args = parser.parse_args(argv)
    if args.command == "compare":
        return _print_comparison(Path(args.a), Path(args.b))
    damaged = verify_folder(Path(args.folder))
    for e in damaged:
        print(f"damaged: {e}")
    print(f"{len(damaged)} damaged file(s) under {args.folder}")
    return 1 if damaged else 0


def _print_comparison(a: Path, b: Path) -> int:
    found = run_differences(a, b)
    for kind, label in (("differ", "differs"), ("only_a", f"only in {a}"),
                        ("only_b", f"only in {b}")):
        for rel in found[kind]:
            print(f"{label}: {rel}")
    print(f"{len(found['same'])} artifact(s) the same, {len(found['differ'])} different, "
          f"{len(found['only_a'])} only in {a}, {len(found['only_b'])} only in {b}")
    return 0 if not (found["differ"] or found["only_a"] or found["only_b"]) else 1


if __name__ == "__main__":
    sys.exit(main())
