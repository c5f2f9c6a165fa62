"""The run folder: every expensive result is written once, atomically, checksummed, and reused.

    paths      where things are in a run folder (manifest, replicates), what made each part
    files      atomic, checksummed writes and verified reads; damaged files, a full disk
    layout     RunStore: creating, reopening and refusing run folders, caches, figures, tables
    compare    two run folders artifact by artifact; python -m lthkit.store verify|compare
    lock       one writer per run folder: a command's exclusive hold, a notebook's shared one

Imports lthkit.config and lthkit.platform (one-line errors); every package that reads or writes
results imports it.
"""

from lthkit.store.compare import run_differences, value_differences
from lthkit.store.files import (CHECKSUMS, DamagedFileError, StorageError, atomic_write_bytes,
                                load_json, load_tensors, remove_stale_temp_files, save_bytes,
                                save_json, save_tensors, verify_folder)
from lthkit.store.layout import (CacheMissing, MissingInputError, RunMismatchError, RunStore,
                                 other_replicates, params_table)
from lthkit.store.lock import LOCK_FILE, RunFolderBusyError, RunFolderLock, lock_run_folder
from lthkit.store.paths import MANIFEST, REPLICATE_DIR, WRITTEN_BY, replicate_dir, run_root_of

__all__ = ["RunStore", "CacheMissing", "run_differences", "value_differences",
           "MissingInputError", "RunMismatchError", "DamagedFileError", "StorageError",
           "atomic_write_bytes", "save_tensors", "load_tensors", "save_json", "load_json",
           "remove_stale_temp_files", "verify_folder", "CHECKSUMS", "save_bytes", "MANIFEST",
           "REPLICATE_DIR", "WRITTEN_BY", "replicate_dir", "run_root_of", "other_replicates",
           "params_table", "LOCK_FILE", "RunFolderBusyError", "RunFolderLock", "lock_run_folder"]
