"""One writer per run folder: a lock on <run>/.lthkit.lock (`fcntl.flock`), held while a command
or a notebook writes the folder.

A command that runs a series (lthkit-report, lthkit-import-open-lth) holds it exclusively for its
whole run, taken before the folder's manifest is read; its notebook kernels (its children) write
under its hold. A notebook opened by hand (`open_run`) holds it shared while its context lives,
so that notebooks may run side by side (their writes are atomic, their checksums locked), but
never beside a command. A process that cannot take it is refused in one line naming the process
that holds it. The operating system releases the lock of a process that dies, even by SIGKILL.

The lock file stays, except in a folder that this process made and left holding nothing else
(a refused command leaves no folder behind): it is removed while held exclusively, and a process
that takes a lock checks that its file is still the folder's, else takes the new one.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from lthkit.platform.processes import pid_alive, process_started, same_process
from lthkit.store.files import StorageError
from lthkit.store.layout import RunStore
from lthkit.store.paths import LOCK_FILE

__all__ = ["LOCK_FILE", "HELD_ENV", "RunFolderBusyError", "RunFolderLock", "lock_run_folder"]

# {run folder: pid} of the exclusive holders among this process's ancestors: a runner's kernels
# write under its hold, as the runner's hands.
HELD_ENV = "LTHKIT_HELD_RUN_FOLDERS"
WAIT_FOR_RECORD_S = 2.0  # how long a refused process waits for the holder to write its pid


class RunFolderBusyError(RuntimeError):
    """Another process holds the run folder's lock; the message names it and what to do."""


@dataclass
class _Hold:
    """This process's hold on one run folder: the locked descriptor (None: an ancestor's hold),
    whether exclusive, whether this process made the folder, how many handles share it."""

    fd: int | None
    exclusive: bool
    made_folder: bool = False
    count: int = 0


_HOLDS: dict[str, _Hold] = {}
_GUARD = threading.Lock()


class RunFolderLock:
    """One handle on this process's hold of a run folder: released by `release()`, at the end of
    a `with` block, or when the handle is garbage-collected (a notebook's context that goes)."""

    def __init__(self, root: Path, exclusive: bool, create: bool, what: str | None):
        self.root = Path(root)
        self.key = str(self.root.resolve())
        held = _acquire(self.root, self.key, exclusive, create, what or _this_command())
        self._finalizer = weakref.finalize(self, _release, self.root, self.key if held else None)

    def release(self) -> None:
        self._finalizer()

    def __enter__(self) -> "RunFolderLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_run_folder(root: Path, exclusive: bool = True, create: bool = True,
                    what: str | None = None) -> RunFolderLock:
    """Hold the lock of the run folder `root` (exclusive: a command's whole run; shared: a
    notebook's); `create` makes the folder when it is not there (else a missing folder is not
    locked: nothing is written into it). Reentrant within a process. RunFolderBusyError when
    another process holds it; `what` names this process in the refusals of others."""
    return RunFolderLock(root, exclusive, create, what)


# --- taking and giving back --------------------------------------------------------------------

def _acquire(root: Path, key: str, exclusive: bool, create: bool, what: str) -> bool:
    """Take or share this process's hold; False where there is nothing to lock."""
    with _GUARD:
        hold = _HOLDS.get(key)
        if hold is None:
            hold = _new_hold(root, key, exclusive, create, what)
            if hold is None:
                return False
            _HOLDS[key] = hold
        elif exclusive and not hold.exclusive and hold.fd is not None:
            _upgrade(hold, root, key, what)
        hold.count += 1
        return True


def _new_hold(root: Path, key: str, exclusive: bool, create: bool, what: str) -> _Hold | None:
    if _held_by_an_ancestor(key):
        return _Hold(None, True)
    made_folder = create and not root.exists()
    for _ in range(20):  # the file may be removed under it by the holder before: take the new one
        fd = _open_lock_file(root, create, exclusive)
        if fd is None:
            return None
        try:
            _flock(fd, exclusive, root)
        except BaseException:
            os.close(fd)
            raise
        if _is_the_folders(fd, root):
            break
        os.close(fd)
    else:
        raise RunFolderBusyError(f"the lock file of {root} keeps being replaced: another "
                                 f"process is starting and ending there; run again")
    _record(root, exclusive, what)
    if exclusive:
        _advertise(key, os.getpid())
    return _Hold(fd, exclusive, made_folder)


def _upgrade(hold: _Hold, root: Path, key: str, what: str) -> None:
    """A shared hold made exclusive (this process's notebook context, then a command in it)."""
    assert hold.fd is not None
    try:
        _flock(hold.fd, True, root)
    except RunFolderBusyError:
        try:  # flock converts by unlocking first: take the shared lock back
            _flock(hold.fd, False, root)
        except RunFolderBusyError:
            pass
        raise
    hold.exclusive = True
    _record(root, True, what)
    _advertise(key, os.getpid())


def _release(root: Path, key: str | None) -> None:
    with _GUARD:
        hold = _HOLDS.get(key) if key else None
        if hold is None:
            return
        hold.count -= 1
        if hold.count > 0:
            return
        del _HOLDS[key]
        if hold.fd is None:
            return
        if hold.exclusive:
            _advertise(key, None)
        if hold.made_folder:
            _remove_if_left_empty(hold.fd, root)
        os.close(hold.fd)  # releases the lock


def _remove_if_left_empty(fd: int, root: Path) -> None:
    """The folder this process made, when it holds nothing but the lock file (the command was
    refused before writing), removed while the lock is held exclusively."""
    try:
        if [p.name for p in root.iterdir()] != [LOCK_FILE]:
            return
        _flock(fd, True, root, wait_for_record=False)
        (root / LOCK_FILE).unlink()
        root.rmdir()
    except (OSError, RunFolderBusyError):  # another holder, a new file: the folder stays
        pass


def _open_lock_file(root: Path, create: bool, exclusive: bool) -> int | None:
    """The lock file's descriptor, opened to read (flock needs no more, and a file held open for
    writing would keep its file system from being remounted read-only); None where there is
    nothing to lock (a folder not made yet that is only read, a read-only folder only read)."""
    path = root / LOCK_FILE
    if not create and not root.is_dir():
        return None
    try:
        if not path.exists():
            if create:
                RunStore(root)._refuse_foreign_folder()  # no lock file in a folder not ours
                root.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o666))
        return os.open(path, os.O_RDONLY)
    except OSError as e:
        if exclusive or e.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise StorageError(path, e) from None
        return None


def _is_the_folders(fd: int, root: Path) -> bool:
    """Whether the locked file is still the folder's lock file (not one removed meanwhile)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(root / LOCK_FILE))
    except OSError:
        return False


def _flock(fd: int, exclusive: bool, root: Path, wait_for_record: bool = True) -> None:
    """Lock without waiting; RunFolderBusyError naming the holders when another process has it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: one writer per folder is assumed
        return
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        message = _busy_message(root) if wait_for_record else f"{root} is busy"
        raise RunFolderBusyError(message) from None


# --- who holds it ---------------------------------------------------------------------------------

def _record(root: Path, exclusive: bool, what: str) -> None:
    """Write this process into the lock file (an exclusive holder alone, a shared one beside the
    others that still run), for the message of a process that is refused."""
    line = json.dumps({"pid": os.getpid(), "started": process_started(os.getpid()), "what": what})
    alone = exclusive or not _holders(root)
    try:
        fd = os.open(root / LOCK_FILE, os.O_WRONLY | os.O_APPEND | (os.O_TRUNC if alone else 0))
        try:
            os.write(fd, f"{line}\n".encode())
        finally:
            os.close(fd)
    except OSError:  # a read-only folder: the lock holds, a refusal names no pid
        pass


def _holders(root: Path) -> list[dict]:
    """The processes the lock file names that still run (this one left out)."""
    try:
        text = (root / LOCK_FILE).read_text()
    except (OSError, UnicodeDecodeError):
        return []
    out = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            pid = int(entry["pid"])
        except (ValueError, KeyError, TypeError):
            continue
        started = entry.get("started")
        running = same_process(pid, started) if started is not None else pid_alive(pid)
        if pid != os.getpid() and running:
            out.append(entry)
    return out


def _busy_message(root: Path) -> str:
    deadline = time.monotonic() + WAIT_FOR_RECORD_S
    holders = _holders(root)
    while not holders and time.monotonic() < deadline:  # it took the lock, not yet written
        time.sleep(0.05)
        holders = _holders(root)
    if not holders:
        return (f"another process is writing the run folder {root}: wait for it to finish, "
                f"then run again")
    pids = ", ".join(str(h["pid"]) for h in holders)
    named = "; ".join(f"pid {h['pid']}: {h.get('what') or 'a process'}" for h in holders)
    return (f"the run folder {root} is being written by another process ({named}): wait for it "
            f"to finish, or stop it (kill {pids}), then run again")


def _this_command() -> str:
    """This process as a refused one reads it: a notebook kernel, or its command line."""
    argv = [os.path.basename(sys.argv[0])] + sys.argv[1:] if sys.argv and sys.argv[0] else []
    if argv and "ipykernel" in argv[0]:
        return "a notebook kernel (shut it down to free the folder)"
    text = " ".join(argv) or "python"
    return text if len(text) <= 120 else text[:117] + "..."


def _advertise(key: str, pid: int | None) -> None:
    """Name (or stop naming) this process as the folder's exclusive holder to its children."""
    held = _advertised()
    if pid is None:
        held.pop(key, None)
    else:
        held[key] = pid
    if held:
        os.environ[HELD_ENV] = json.dumps(held)
    else:
        os.environ.pop(HELD_ENV, None)


def _advertised() -> dict[str, int]:
    try:
        held = json.loads(os.environ.get(HELD_ENV, "{}"))
    except ValueError:
        return {}
    return held if isinstance(held, dict) else {}


def _held_by_an_ancestor(key: str) -> bool:
    """Whether a process this one descends from (the runner of a kernel) holds `key`
    exclusively: then this process writes under that hold."""
    pid = _advertised().get(key)
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        import psutil

        return pid in {p.pid for p in psutil.Process().parents()}
    except ImportError:
        return pid == os.getppid()
    except Exception:
        return False
