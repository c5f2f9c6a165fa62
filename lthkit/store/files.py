"""Atomic, checksummed files: every artifact is written to a temporary file and renamed over its
target, its SHA-256 recorded in the folder's SHA256SUMS, and checked when read back. A damaged
file, a full disk or a read-only folder stops with one line naming the file and what to do."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from lthkit.platform.errors import first_line
from lthkit.platform.processes import pid_alive
from lthkit.store.paths import CHECKSUMS, damage_message, where

__all__ = ["CHECKSUMS", "TEMP_FILE", "DamagedFileError", "StorageError", "atomic_write_bytes",
           "save_tensors",
           "load_tensors", "save_json", "load_json", "save_bytes", "verify_folder",
           "remove_stale_temp_files", "recorded_names"]

_UMASK = os.umask(0o022)  # read once, at import (setting it is the only way to read it)
os.umask(_UMASK)


class DamagedFileError(RuntimeError):
    """An artifact that is unreadable or differs from the checksum recorded when it was written;
    the message names the file, what made it and how to make it again."""

    def __init__(self, path: Path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(damage_message(self.path, problem))




class StorageError(OSError):
    """A write that the disk refused (full, read-only, no permission), in one line."""

    def __init__(self, path: Path, error: OSError):
        super().__init__(error.errno, error.strerror)
        self.path = Path(path)
        self.message = (f"{_cause(error)} writing {where(self.path)}; earlier results are "
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
        raise DamagedFileError(path, f"torch cannot read it ({first_line(e)})") from None


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
        raise DamagedFileError(path, f"unreadable ({first_line(e)})") from None
    sums: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        match = _SUM_LINE.match(line)
        if not match:
            raise DamagedFileError(path, f"line {number} is not '<sha256>  <file name>'")
        sums.setdefault(match.group(2), []).append(match.group(1))
    return sums


def recorded_names(folder: Path) -> set[str]:
    """The file names a folder's SHA256SUMS has lines for (none without one); DamagedFileError
    when it cannot be read."""
    return set(_read_sums(Path(folder)))


def _write_sums(folder: Path, sums: dict[str, list[str]]) -> None:
    text = "".join(f"{d}  {name}\n" for name in sorted(sums) for d in sums[name])
    _atomic_write(folder / CHECKSUMS, text.encode(), checksum=False)


def _read_verified(path: Path) -> bytes:
    """The bytes of `path` when they match a digest recorded for it. In a folder with a
    SHA256SUMS, a file it has no line for is damaged: the store records every file it writes
    before the file appears, so nothing vouches for it (put there by hand, its line removed).
    A folder without one (deleted to make it again) is read unchecked until it is rewritten."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as e:
        raise DamagedFileError(path, f"unreadable ({e.strerror})") from None
    expected = _read_sums(path.parent).get(path.name)
    if expected is None and (path.parent / CHECKSUMS).exists():
        raise DamagedFileError(path, NO_LINE)
    if expected and hashlib.sha256(data).hexdigest() not in expected:
        raise DamagedFileError(path, f"its SHA-256 differs from the one recorded in {CHECKSUMS} "
                                     f"when it was written ({len(data)} bytes now)")
    return data


NO_LINE = (f"no line of its folder's {CHECKSUMS} vouches for it (the kit records every file it "
           f"writes there: this one was put there by hand, or its line was removed)")
ARTIFACT_SUFFIXES = (".pt", ".json")  # what save_tensors, save_json and save_bytes write


def verify_folder(root: Path) -> list[DamagedFileError]:
    """Every recorded checksum under `root` checked, and every artifact in a folder with a
    SHA256SUMS that has no line there: the damaged files (recorded ones missing are skipped)."""
    damaged = []
    for sums in sorted(Path(root).rglob(CHECKSUMS)):
        try:
            names = _read_sums(sums.parent)
        except DamagedFileError as e:
            damaged.append(e)
            continue
        unvouched = [p.name for p in sums.parent.iterdir()
                     if p.suffix in ARTIFACT_SUFFIXES and p.is_file()]
        for name in sorted(set(names) | set(unvouched)):
            try:
                if (sums.parent / name).exists():
                    _read_verified(sums.parent / name)
            except DamagedFileError as e:
                damaged.append(e)
    return damaged




# --- what a damaged file is, who made it, how to make it again ------------------------------------


# --- stale temporary files ------------------------------------------------------------------------

TEMP_FILE = re.compile(r"^\..+\.(?:(\d+)-)?[^.]*\.tmp$")


def remove_stale_temp_files(root: Path) -> list[Path]:
    """Remove the temporary files under `root` that a killed writer left; those of a process that
    is still running stay. Returns what was removed."""
    removed = []
    if not Path(root).is_dir():
        return removed
    for tmp in Path(root).rglob(".*.tmp"):
        match = TEMP_FILE.match(tmp.name)
        if not match or not tmp.is_file():
            continue
        pid = int(match.group(1)) if match.group(1) else None
        if pid is not None and pid_alive(pid):
            continue
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # a read-only folder: it stays, harmless
            continue
        removed.append(tmp)
    return removed

