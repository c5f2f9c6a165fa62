"""Where things are in a run folder, and what to say when one of them is damaged: the manifest,
the replicates' folders, the notebook that writes each part, and how to make a part again."""

from __future__ import annotations

import json
import re
from pathlib import Path

from lthkit.config.series import (BASELINES, TICKET_LANDSCAPES, TICKET_TRANSFER, TRAIN_IMP,
                                  notebook_file)

__all__ = ["MANIFEST", "REPLICATE_DIR", "LOCK_FILE", "WRITTEN_BY", "run_root_of", "replicate_dir",
           "written_by",
           "damage_message", "where"]

MANIFEST = "manifest.json"
# Replicate r >= 1 of a run lives in <run>/replicate_<r>/, a run folder of its own inside it
# (lthkit.verdicts.replicates): its own manifest, SHA256SUMS per folder, notebooks/ and
# notebooks/failed/.
REPLICATE_DIR = re.compile(r"^replicate_(\d+)$")
CHECKSUMS = "SHA256SUMS"
LOCK_FILE = ".lthkit.lock"  # one writer at a time (lthkit.store.lock); never removed


def replicate_dir(run_dir: Path, replicate: int) -> Path:
    """The folder of a replicate: the run folder itself for 0, <run>/replicate_<r>/ else."""
    return Path(run_dir) if replicate == 0 else Path(run_dir) / f"replicate_{replicate}"


# The notebook that writes each top-level part of a run folder.
WRITTEN_BY = {"imp": TRAIN_IMP, MANIFEST: TRAIN_IMP, "baselines": BASELINES,
              "mnist": TICKET_TRANSFER, "bain": TICKET_LANDSCAPES}


def run_root_of(path: Path) -> Path | None:
    """The run folder holding `path`: its outermost ancestor with a manifest.json."""
    roots = [p for p in Path(path).parents if (p / MANIFEST).is_file()]
    return roots[-1] if roots else None


def written_by(folder: Path) -> str:
    """The notebook that writes a run's `folder`: a sub-run's (<run>/mnist/..., <run>/bain/) is
    10's or 11's, anything else of a run's training 01's."""
    root = run_root_of(Path(folder) / MANIFEST)
    parts = Path(folder).relative_to(root).parts if root else ()
    if parts and REPLICATE_DIR.match(parts[0]):
        parts = parts[1:]
    return WRITTEN_BY.get(parts[0], TRAIN_IMP) if parts else TRAIN_IMP


def where(path: Path) -> str:
    root = run_root_of(path)
    return f"{path.relative_to(root)} in {root}" if root else str(path)


def damage_message(path: Path, problem: str) -> str:
    root = run_root_of(path)
    if root is None:
        return f"{path} is damaged: {problem}. Delete it and make it again."
    rel = path.relative_to(root)
    if len(rel.parts) > 1 and REPLICATE_DIR.match(rel.parts[0]):  # a replicate's own file
        root, rel = root / rel.parts[0], Path(*rel.parts[1:])
    # the root's SHA256SUMS vouches for manifest.json: what writes the manifest writes it again
    notebook = WRITTEN_BY.get(MANIFEST if rel == Path(CHECKSUMS) else rel.parts[0])
    if rel.parts[0] == "cache":
        return (f"{rel} in {root} is damaged: {problem}. It is a cache: delete it and run the "
                f"notebook that reads it again, which computes it again.")
    if rel.parts[0] == "notebooks":
        return (f"{rel} in {root} is damaged: {problem}. The report runner writes it: delete it "
                f"and run lthkit-report again.")
    made_by = (notebook_file(notebook) if notebook else
               "a notebook of the series (the run's own code, a sub-run of it)")
    command = f"lthkit-report {_params_file(root)}" + (f" --only {notebook}" if notebook else "")
    return (f"{rel} in {root} is damaged: {problem}. It was made by {made_by}; to make it "
            f"again, {_remedy(rel)} and run `{command}`.")


def _remedy(rel: Path) -> str:
    """What to delete so that the notebook that made `rel` makes it again."""
    parts = rel.parts
    levels = [i for i, part in enumerate(parts) if re.fullmatch(r"level_\d+", part)]
    if rel == Path(CHECKSUMS):
        return (f"delete {rel} ({MANIFEST} is then read unchecked until "
                f"{WRITTEN_BY[MANIFEST]} writes both again)")
    if rel.name == CHECKSUMS and not levels:
        return f"delete {rel} (the files of its folder are then read unchecked until rewritten)"
    if rel.name == MANIFEST:
        return (f"delete {rel} (the run folder then takes the parameters it is run with: give it "
                f"the ones it was made with; its {CHECKSUMS} keeps it a run folder)")
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

