"""The run folder: checksums verified on read, stale temporary files, full and read-only disks,
run folders that take new parameters only while they hold no results."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lthkit.store.compare as store_compare
import lthkit.store.files as store_files
from lthkit.store.files import (DamagedFileError, StorageError, load_json, load_tensors,
                                remove_stale_temp_files, save_json, save_tensors, verify_folder)
from lthkit.store.layout import RunMismatchError, RunStore
from lthkit.store.paths import CHECKSUMS
from lthkit.train.context import open_run
from lthkit.train.imp import ImpResults, run_imp
from lthkit.train.training import Checkpoint

ROOT = Path(__file__).resolve().parents[1]


# --- a run folder holding one IMP level, made without training -----------------------------------

@pytest.fixture
def run(tmp_path, tiny):
    """A run folder (manifest, parameter file) with level 1's mask, final weights and metrics."""
    params_file = tmp_path / "my_run.yaml"
    params_file.write_text("defaults: paper\n")
    params = tiny(imp={"levels": 1}).model_copy(update={"source": str(params_file)})
    ctx = open_run(params, create=True)
    files = ImpResults(ctx.store).level(1)
    g = torch.Generator().manual_seed(0)
    save_tensors(files.mask_file, {"conv.weight": torch.rand(64, 64, generator=g) > 0.5})
    save_tensors(files.final_file, {"conv.weight": torch.randn(64, 64, generator=g)})
    save_json(files.metrics_file, {"final": {"test_acc": 0.8125, "train_loss": 0.25}})
    return ctx


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size))


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) * 2 // 3] ^= 0x01  # inside the tensor data of a .pt, inside a number of a .json
    path.write_bytes(bytes(data))


DAMAGE = {"truncated": _truncate, "garbage": _garbage, "one flipped byte": _flip_one_byte}
READERS = {
    "mask": (lambda ctx: ImpResults(ctx.store).level(1).mask_file,
             lambda ctx: ImpResults(ctx.store).mask(1)),
    "checkpoint": (lambda ctx: ImpResults(ctx.store).level(1).final_file,
                   lambda ctx: ImpResults(ctx.store).final(1)),
    "metrics": (lambda ctx: ImpResults(ctx.store).level(1).metrics_file,
                lambda ctx: ImpResults(ctx.store).metrics(1)),
}


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("kind", READERS)
def test_damaged_artifact_stops_naming_file_maker_and_command(run, kind, damage):
    path_of, read = READERS[kind]
    read(run)  # intact: reads
    DAMAGE[damage](path_of(run))
    with pytest.raises(DamagedFileError) as info:
        read(run)
    msg = str(info.value)
    assert f"imp/level_01/{path_of(run).name}" in msg and "damaged" in msg
    assert "notebooks/01_train_imp.ipynb" in msg, "what made it"
    assert f"lthkit-report {run.params.source} --only 01_train_imp" in msg, "the command"
    assert "delete the folder imp/level_01" in msg
    assert "Traceback" not in msg and "PytorchStreamReader" not in msg.split("(")[0]


def _read_baseline(ctx, root: str, kind: str, level: int):
    from lthkit.train.baselines import BaselineResults

    return BaselineResults(RunStore(ctx.store.root / root)).final(kind, level)


# part: (its file, the notebook that makes it, what the message says to delete, how it is read)
DAMAGED_PARTS = {
    "baselines": ("baselines/one_shot/level_01/final.pt", "02_baselines",
                  "delete the folder baselines/one_shot/level_01 and run",
                  lambda ctx: _read_baseline(ctx, "", "one_shot", 1)),
    "mnist": ("mnist/mlp/imp/level_02/mask.pt", "10_ticket_transfer",
              "delete the folder mnist/mlp/imp/level_02 and the levels after it",
              lambda ctx: ImpResults(RunStore(ctx.store.root / "mnist" / "mlp")).mask(2)),
    "bain": ("bain/baselines/random_prune_oneshot/level_01/final.pt", "11_ticket_landscapes",
             "delete the folder bain/baselines/random_prune_oneshot/level_01 and run",
             lambda ctx: _read_baseline(ctx, "bain", "random_prune_oneshot", 1)),
    "resume.pt": ("imp/level_01/resume.pt", "01_train_imp",
                  "delete imp/level_01/resume.pt (the training it resumes starts again from its "
                  "beginning) and run",
                  lambda ctx: Checkpoint(ctx.store.root / "imp" / "level_01" / "resume.pt").load()),
    "manifest.json": ("manifest.json", "01_train_imp",
                      "delete manifest.json (the run folder then takes the parameters it is run "
                      "with: give it the ones it was made with; its SHA256SUMS keeps it a run "
                      "folder) and run",
                      lambda ctx: open_run(ctx.params, create=True)),
}


@pytest.mark.parametrize("part", DAMAGED_PARTS)
def test_damage_anywhere_names_the_file_its_notebook_and_what_to_delete(run, part):
    """Beyond imp/: a damaged file of the baselines, of notebooks 10 and 11, a resume file and the
    manifest, each read by the kit's own reader."""
    rel, notebook, remedy, read = DAMAGED_PARTS[part]
    path = run.store.root / rel
    if not path.exists():
        save_tensors(path, {"conv.weight": torch.randn(64, 64, generator=torch.Generator()
                                                        .manual_seed(1))})
        save_json(path.parent / "metrics.json", {"final": {}})  # a finished solution
    read(run)  # intact: reads
    _flip_one_byte(path)
    with pytest.raises(DamagedFileError) as info:
        read(run)
    msg = str(info.value)
    assert msg.startswith(f"{rel} in {run.store.root} is damaged: "), msg
    assert f"It was made by notebooks/{notebook}.ipynb; to make it again, {remedy}" in msg, msg
    assert msg.endswith(f"--only {notebook}`."), msg
    if part != "manifest.json":  # the command names the parameter file the manifest names
        assert f"`lthkit-report {run.params.source} --only {notebook}`" in msg
    assert "Traceback" not in msg


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_cache_file_is_computed_again_with_a_note(run, damage, capsys):
    calls = []

    def compute():
        calls.append(1)
        return {"spectrum": torch.linspace(0, 1, 500)}

    first = run.store.cached("hessian", "key", compute)
    DAMAGE[damage](run.store.cache_path("hessian", "key"))
    again = run.store.cached("hessian", "key", compute)
    assert len(calls) == 2 and torch.equal(first["spectrum"], again["spectrum"])
    assert "cache/hessian/key.pt was damaged" in capsys.readouterr().err
    assert torch.equal(run.store.cached("hessian", "key", compute)["spectrum"], first["spectrum"])
    assert len(calls) == 2, "the recomputed file verifies"


def test_checksums_are_recorded_in_sha256sum_format(run):
    folder = ImpResults(run.store).level(1).folder
    result = subprocess.run(["sha256sum", "-c", CHECKSUMS], cwd=folder, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {"mask.pt: OK", "final.pt: OK", "metrics.json: OK"} <= set(result.stdout.splitlines())
    save_tensors(folder / "resume.pt", {"epoch": torch.tensor(1)})
    (folder / "resume.pt").unlink()  # as a finished training does
    save_json(folder / "metrics.json", {"final": {"test_acc": 0.8}})
    result = subprocess.run(["sha256sum", "-c", CHECKSUMS], cwd=folder, capture_output=True,
                            text=True)
    assert result.returncode == 0 and "resume.pt" not in result.stdout, result.stdout


def test_overwrite_killed_at_any_moment_leaves_a_file_that_verifies(tmp_path, monkeypatch):
    path = tmp_path / "resume.pt"
    save_tensors(path, {"epoch": torch.tensor(1)})

    class Killed(BaseException):
        pass

    real_replace, real_sums = os.replace, store_files._write_sums
    # killed after the new digest is recorded, before the rename: the old file stays
    monkeypatch.setattr(store_files.os, "replace",
                        lambda a, b: (_ for _ in ()).throw(Killed()) if Path(b) == path
                        else real_replace(a, b))
    with pytest.raises(Killed):
        save_tensors(path, {"epoch": torch.tensor(2)})
    monkeypatch.setattr(store_files.os, "replace", real_replace)
    assert int(load_tensors(path)["epoch"]) == 1
    # killed after the rename, before the old digest is dropped: the new file stays
    calls = []

    def sums_then_kill(folder, sums):
        calls.append(1)
        if len(calls) == 2:
            raise Killed
        real_sums(folder, sums)

    monkeypatch.setattr(store_files, "_write_sums", sums_then_kill)
    with pytest.raises(Killed):
        save_tensors(path, {"epoch": torch.tensor(3)})
    monkeypatch.setattr(store_files, "_write_sums", real_sums)
    assert int(load_tensors(path)["epoch"]) == 3
    save_tensors(path, {"epoch": torch.tensor(4)})
    assert len((tmp_path / CHECKSUMS).read_text().splitlines()) == 1
    assert not list(tmp_path.glob(".*.tmp"))


def test_verify_command_lists_damaged_files(run, capsys):
    assert store_compare.main(["verify", str(run.store.root)]) == 0
    _flip_one_byte(ImpResults(run.store).level(1).final_file)
    assert store_compare.main(["verify", str(run.store.root)]) == 1
    out = capsys.readouterr().out
    assert "imp/level_01/final.pt" in out and "1 damaged" in out
    assert len(verify_folder(run.store.root)) == 1


# --- stale temporary files --------------------------------------------------------------------------

def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def test_stale_temp_files_are_removed_when_the_run_is_opened(run):
    level = ImpResults(run.store).level(1).folder
    stale = level / f".resume.pt.{_dead_pid()}-k2j3h4.tmp"  # a writer killed with SIGKILL
    legacy = level / ".final.pt.x8d7f6s5.tmp"  # the name the kit used before it kept the pid
    live = level / f".mask.pt.{os.getppid()}-a1b2c3.tmp"  # a writer still running
    for p in (stale, legacy, live):
        p.write_bytes(b"half a file")
    open_run(run.params, create=True)
    assert not stale.exists() and not legacy.exists()
    assert live.exists(), "a running writer's temporary file stays"
    assert remove_stale_temp_files(run.store.root) == []


def test_killed_write_leaves_no_temp_file_after_the_rerun(tiny, monkeypatch):
    """A kill -9 in the middle of a write: the temporary file it leaves is gone after a rerun."""
    params = tiny(imp={"levels": 0})
    ctx = open_run(params, create=True)
    folder = ctx.store.imp_dir(0)
    folder.mkdir(parents=True)
    (folder / f".resume.pt.{_dead_pid()}-q9w8e7.tmp").write_bytes(b"\0" * 100)
    run_imp(open_run(params, create=True), progress=False)
    assert [p for p in ctx.store.root.rglob("*.tmp")] == []


# --- a run folder takes new parameters only while it holds no results ------------------------------

def test_run_that_failed_before_training_can_be_rerun_with_corrected_parameters(tiny, tmp_path,
                                                                                  capsys):
    from lthkit.data.images import DatasetMissingError

    broken = tiny(imp={"levels": 0}, data={"dataset": "cifar10", "root": str(tmp_path / "none"),
                                           "download": False})
    with pytest.raises(DatasetMissingError):
        run_imp(open_run(broken, create=True), progress=False)
    fixed = tiny(imp={"levels": 0})
    ctx = open_run(fixed, create=True)  # refused before: "data.dataset: 'cifar10' there, ..."
    assert "holds no results yet" in capsys.readouterr().err
    run_imp(ctx, progress=False)
    assert ctx.store.manifest()["fingerprint"]["data.dataset"] == "synthetic_cifar10"
    with pytest.raises(RunMismatchError, match="data.dataset"):
        open_run(broken, create=True)  # now it holds results


def test_a_folder_trained_with_one_normalization_refuses_another(tiny):
    """Issue 33, item 3: data.normalization changes every trained number: a fixed training key,
    recorded in the manifest; a folder made before the key existed reads as `dataset`."""
    params = tiny(imp={"levels": 0})
    ctx = open_run(params, create=True)
    save_tensors(ctx.store.path("imp", "init.pt"), {"w": torch.zeros(2)})  # a result
    manifest = ctx.store.manifest()
    assert manifest["fingerprint"]["data.normalization"] == "dataset"
    assert manifest["params"]["data"]["normalization"] == "dataset"
    with pytest.raises(RunMismatchError, match="data.normalization: 'dataset' there, "
                                               "'imagenet' in tiny"):
        open_run(tiny(imp={"levels": 0}, data={"normalization": "imagenet"}), create=True)
    with pytest.raises(RunMismatchError, match=r"data.normalization.mean: None there, \[0.5"):
        open_run(tiny(imp={"levels": 0}, data={"normalization": {"mean": [0.5] * 3,
                                                                 "std": [1] * 3}}), create=True)
    del manifest["fingerprint"]["data.normalization"]  # a manifest of an earlier kit
    save_json(ctx.store.root / "manifest.json", manifest)
    open_run(params)  # reads as made with the dataset's own statistics
    with pytest.raises(RunMismatchError, match="data.normalization"):
        open_run(tiny(imp={"levels": 0}, data={"normalization": "none"}))


def test_folder_that_is_not_a_run_folder_is_refused(tiny, tmp_path):
    params = tiny()
    folder = params.run_dir()
    folder.mkdir(parents=True)
    (folder / "thesis.tex").write_text("months of work")
    with pytest.raises(RunMismatchError, match="not a run folder"):
        open_run(params, create=True)
    assert (folder / "thesis.tex").read_text() == "months of work"
    assert not (folder / "manifest.json").exists()


# --- full disk, read-only folder ----------------------------------------------------------------------

def _mount_tmpfs(folder: Path, size: str) -> bool:
    """A small tmpfs at `folder` where the test may mount one (root on Linux), else False."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True)
    return done.returncode == 0


def _umount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _on(folder: Path, params):
    """`params` with its outputs root at `folder`."""
    return params.model_copy(update={"run": params.run.model_copy(
        update={"output_root": str(folder)})})


def _one_line_storage_error(e: BaseException, cause: str) -> str:
    msg = str(e)
    assert isinstance(e, StorageError) and "\n" not in msg
    assert msg.startswith(cause) and "earlier results are intact" in msg
    assert "inline_container" not in msg and "enforce fail" not in msg
    return msg


def test_full_disk_stops_with_one_line_and_keeps_earlier_results(tiny, tmp_path, monkeypatch):
    """On a 1 MiB tmpfs where the test can mount one, else with writes that raise ENOSPC."""
    disk = tmp_path / "disk"
    mounted = _mount_tmpfs(disk, "1m")  # a tiny run's level takes about 0.5 MB
    params = _on(disk, tiny()) if mounted else tiny()
    if not mounted:  # a stub: the disk fills up at the third epoch file of level 1
        real = store_files._write_all

        def full(f, data, path):
            if path.match("imp/level_01/epochs/epoch_0003.pt"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real(f, data, path)

        monkeypatch.setattr(store_files, "_write_all", full)
    try:
        with pytest.raises(StorageError) as info:
            run_imp(open_run(params, create=True), progress=False)
        msg = _one_line_storage_error(info.value, "no space left on device writing imp/")
        if not mounted:
            assert msg.startswith("no space left on device writing "
                                  "imp/level_01/epochs/epoch_0003.pt in ")
        root = params.run_dir()
        assert verify_folder(root) == [], "what was written before verifies"
        assert [p for p in root.rglob(".*.tmp")] == []
        done = ImpResults(RunStore(root)).levels_done()
        if mounted:  # more room, and the same command resumes
            subprocess.run(["mount", "-o", "remount,size=4m", str(disk)], check=True)
        else:
            monkeypatch.setattr(store_files, "_write_all", real)
        resumed = run_imp(open_run(params, create=True), progress=False)
        assert resumed.levels_done() == [0, 1, 2] and done != [0, 1, 2]
    finally:
        if mounted:
            _umount(disk)


def test_read_only_folder_stops_with_one_line(tiny, tmp_path, deny_writes):
    """A folder without write permission: the OS's EACCES (by chmod, or for root, who ignores
    chmod, from the os calls that create files) becomes one line."""
    params = tiny(imp={"levels": 1})
    run_imp(open_run(params.model_copy(update={"imp": params.imp.model_copy(
        update={"levels": 0})}), create=True), progress=False)
    level1 = params.run_dir() / "imp" / "level_01"
    deny_writes(level1)
    with pytest.raises(StorageError) as info:
        run_imp(open_run(params, create=True), progress=False)
    msg = _one_line_storage_error(info.value, "permission denied writing imp/level_01/")
    assert "make the folder writable" in msg
    assert isinstance(info.value.__context__, PermissionError), "from the OS's own error"
    assert info.value.__context__.errno == errno.EACCES


def test_read_only_file_system_stops_with_one_line(tiny, tmp_path):
    disk = tmp_path / "ro"
    if not _mount_tmpfs(disk, "4m"):
        pytest.skip("cannot mount a tmpfs here (needs root on Linux)")
    try:
        params = _on(disk, tiny(imp={"levels": 1}))
        short = params.model_copy(update={"imp": params.imp.model_copy(update={"levels": 0})})
        run_imp(open_run(short, create=True), progress=False)
        ctx = open_run(params, create=True)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        with pytest.raises(StorageError) as info:
            run_imp(ctx, progress=False)
        _one_line_storage_error(info.value, "read-only file system writing imp/level_01/")
        assert verify_folder(params.run_dir()) == []
    finally:
        _umount(disk)


def test_outputs_folder_is_kept_with_its_readme_and_its_contents_ignored():
    if subprocess.run(["git", "rev-parse"], cwd=ROOT, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    readme = ROOT / "outputs" / "README.md"
    assert readme.is_file() and "run.name" in readme.read_text()
    ignored = subprocess.run(["git", "check-ignore", "-q", "outputs/smoke/manifest.json"], cwd=ROOT)
    kept = subprocess.run(["git", "check-ignore", "-q", "outputs/README.md"], cwd=ROOT)
    assert ignored.returncode == 0 and kept.returncode == 1


def test_load_json_of_a_record_without_checksum_still_reads(tmp_path):
    """Files written before checksums were recorded (or copied without SHA256SUMS) still load."""
    path = tmp_path / "old.json"
    path.write_text('{"a": 1}')
    assert load_json(path) == {"a": 1}
    path.write_text('{"a": 1')
    with pytest.raises(DamagedFileError, match="not valid JSON"):
        load_json(path)


def _artifact_folder(root: Path, weight: float, seconds: float, extra: bool = False) -> Path:
    save_tensors(root / "imp" / "level_00" / "final.pt", {"w": torch.tensor([1.0, weight])})
    save_json(root / "imp" / "level_00" / "metrics.json", {"final": {"test_acc": 0.5,
                                                                      "seconds": seconds}})
    spectrum = {"eigenvalues": torch.tensor([3.0, 1.0]), "status": "converged",
                "nan": float("nan"), "seconds": seconds}
    save_tensors(root / "cache" / "hessian" / "top2.pt", spectrum)
    if extra:
        save_tensors(root / "cache" / "landscape" / "line.pt", {"loss": torch.zeros(3)})
    return root


def test_run_differences_compares_artifacts_by_value_ignoring_timings(tmp_path):
    a = _artifact_folder(tmp_path / "a", 2.0, seconds=1.0)
    b = _artifact_folder(tmp_path / "b", 2.0, seconds=9.0, extra=True)
    found = store_compare.run_differences(a, b)
    assert found == {"differ": [], "only_a": [], "only_b": ["cache/landscape/line.pt"],
                     "same": ["cache/hessian/top2.pt", "imp/level_00/final.pt",
                              "imp/level_00/metrics.json"]}
    _artifact_folder(tmp_path / "b", 2.0 + 1e-6, seconds=9.0)  # one weight moved
    assert store_compare.run_differences(a, b)["differ"] == ["imp/level_00/final.pt"]
    done = subprocess.run([sys.executable, "-m", "lthkit.store", "compare", str(a), str(b)],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "differs: imp/level_00/final.pt" in done.stdout
    assert f"only in {b}: cache/landscape/line.pt" in done.stdout
    assert "2 artifact(s) the same, 1 different" in done.stdout


# --- files no checksum vouches for, fixes that name what remakes them ------------------------------

def _drop_line(folder: Path, name: str) -> None:
    lines = (folder / CHECKSUMS).read_text().splitlines()
    (folder / CHECKSUMS).write_text("".join(f"{line}\n" for line in lines
                                            if not line.endswith(f"  {name}")))


def test_a_file_its_checksums_have_no_line_for_is_damaged(run, capsys):
    """A file the store wrote and cannot vouch for: its SHA256SUMS line dropped and 64 bytes of
    it overwritten, it is reported by verify and refused when loaded, in one line with the fix."""
    final = ImpResults(run.store).level(1).final_file
    _drop_line(final.parent, final.name)
    with open(final, "r+b") as f:
        f.seek(final.stat().st_size // 2)
        f.write(b"\xff" * 64)
    assert store_compare.main(["verify", str(run.store.root)]) == 1
    out = capsys.readouterr().out
    assert "damaged: imp/level_01/final.pt" in out and "1 damaged" in out
    with pytest.raises(DamagedFileError) as info:
        ImpResults(run.store).final(1)
    msg = str(info.value)
    assert "\n" not in msg and "imp/level_01/final.pt" in msg and "no line" in msg
    assert "delete the folder imp/level_01" in msg and "--only 01_train_imp" in msg
    (final.parent / CHECKSUMS).unlink()  # a folder without one is read unchecked (the fix's way)
    assert verify_folder(run.store.root) == []


def test_damaged_root_checksums_name_the_notebook_that_writes_them_again(run):
    """The root SHA256SUMS vouches for manifest.json: its fix names notebook 01 (no placeholder),
    and following it works; so does the fix of a damaged manifest."""
    root = run.store.root
    (root / CHECKSUMS).write_text("not a checksum line\n")
    with pytest.raises(DamagedFileError) as info:
        RunStore.create(run.params)
    msg = str(info.value)
    assert msg.startswith(f"{CHECKSUMS} in {root} is damaged") and "that notebook" not in msg
    assert f"delete {CHECKSUMS}" in msg and "--only 01_train_imp`" in msg
    assert "lthkit-report " + run.params.source in msg
    (root / CHECKSUMS).unlink()
    RunStore.create(run.params)
    assert "manifest.json" in (root / CHECKSUMS).read_text() and verify_folder(root) == []
    (root / "manifest.json").write_text("{")
    with pytest.raises(DamagedFileError, match="delete manifest.json"):
        RunStore.create(run.params)
    (root / "manifest.json").unlink()
    RunStore.create(run.params)  # a run folder still: its results are kept
    assert ImpResults(RunStore(root)).metrics(1)["final"]["test_acc"] == 0.8125


def test_compare_names_a_damaged_file_without_a_traceback(tmp_path, capsys):
    a = _artifact_folder(tmp_path / "a", 2.0, seconds=1.0)
    b = _artifact_folder(tmp_path / "b", 2.0, seconds=1.0)
    _flip_one_byte(b / "imp" / "level_00" / "final.pt")
    assert store_compare.main(["compare", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    damaged = [line for line in out.splitlines() if line.startswith("damaged: ")]
    assert len(damaged) == 1 and f"{b}/imp/level_00/final.pt is damaged" in damaged[0]
    assert "2 artifact(s) the same, 0 different" in out and "1 damaged" in out
    assert store_compare.main(["compare", str(a), str(tmp_path / "nothing")]) == 2
    assert "nothing is not a folder" in capsys.readouterr().err


# --- one writer per run folder ---------------------------------------------------------------------

HOLDER = """
import sys, time
from lthkit.store.lock import lock_run_folder
lock = lock_run_folder(sys.argv[1], exclusive=sys.argv[2] == "exclusive", what=sys.argv[3])
print("held", flush=True)
time.sleep(120)
"""


def _holder(folder: Path, mode: str, what: str) -> subprocess.Popen:
    """Another process holding a run folder's lock (not a child writing under this one's)."""
    from lthkit.store.lock import HELD_ENV

    env = {k: v for k, v in os.environ.items() if k != HELD_ENV}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), mode, what],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_run_folder_held_by_a_command_refuses_every_other_writer(tiny, tmp_path, capsys):
    from lthkit.report.runner import main as report
    from lthkit.store.lock import RunFolderBusyError
    from lthkit.train.open_lth import main as import_open_lth

    params = tiny()
    preset = tmp_path / "p.yaml"
    preset.write_text(params.to_yaml())
    held = _holder(params.run_dir(), "exclusive", "lthkit-report p.yaml")
    try:
        with pytest.raises(RunFolderBusyError) as info:  # a notebook opened by hand
            open_run(params, create=True)
        assert f"pid {held.pid}: lthkit-report p.yaml" in str(info.value)
        assert report([str(preset), "--only", "01"]) == 2
        assert import_open_lth([str(tmp_path), "--params", str(preset)]) == 1
        errors = capsys.readouterr().err.strip().splitlines()
        assert len(errors) == 2 and all(f"(kill {held.pid})" in line for line in errors)
        assert sorted(p.name for p in params.run_dir().iterdir()) == [".lthkit.lock"]
    finally:
        held.kill()
        held.wait()
    ctx = open_run(params, create=True)  # the holder is gone: the lock went with it
    assert (ctx.store.root / "manifest.json").is_file()


def test_notebooks_share_a_run_folder_that_no_command_may_take_meanwhile(tiny, tmp_path, capsys):
    from lthkit.report.runner import main as report
    from lthkit.store.lock import lock_run_folder

    params = tiny()
    preset = tmp_path / "p.yaml"
    preset.write_text(params.to_yaml())
    ctx = open_run(params, create=True)  # this process's notebook, and another one's
    held = _holder(params.run_dir(), "shared", "a notebook kernel")
    try:
        assert report([str(preset), "--only", "01"]) == 2
        assert f"pid {held.pid}: a notebook kernel" in capsys.readouterr().err
        assert open_run(params).store.root == ctx.store.root, "notebooks side by side"
    finally:
        held.kill()
        held.wait()
    with lock_run_folder(params.run_dir(), what="a command"):  # this process's own share grows
        del ctx
    proc = _holder(params.run_dir(), "exclusive", "a command")  # every hold here is released
    proc.kill()
    proc.wait()
