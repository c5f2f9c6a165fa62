"""The base of every parameter section: its error, strict validation, level lists, and where
paths are resolved from (the project root: the folder holding params/ and notebooks/)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict


class ParamsError(ValueError):
    """A parameter file (or injected parameter set) that cannot be used, with the key and source."""


class _Section(BaseModel):
    """Base of every section: no unknown keys, no silent type coercion, frozen once read."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_default=True)


LevelSelection = Literal["all"] | list[int]


class _KeyError(ValueError):
    """Raised inside validators to name the offending key (relative to the section raising it)."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def _check_level_list(selection: LevelSelection, levels: int, key: str, minimum: int) -> None:
    if selection == "all":
        return
    bad = [x for x in selection if not minimum <= x <= levels]
    if bad:
        raise _KeyError(key, f"levels {bad} outside {minimum}..{levels} (imp.levels = {levels})")



def contained_run_dir(output_root: Path, name: str) -> Path:
    """<output_root>/<name>, refused (a _KeyError on run.name) unless it resolves, links followed,
    to a folder strictly inside the resolved outputs root and apart from the kit's own files."""
    root = output_root.resolve()
    folder = (output_root / name).resolve()
    if folder == root or root not in folder.parents:
        link = " (through a symbolic link)" if _has_link(output_root, name) else ""
        raise _KeyError("run.name", f"{name!r} puts the run folder at {folder}{link}, which is not "
                        f"a folder of its own inside the outputs root {root}: choose another "
                        f"run.name")
    project = project_root()
    kit = [project / d for d in KIT_FOLDERS]
    if folder in project.parents or folder == project or any(
            folder == d or d in folder.parents for d in kit):
        raise _KeyError("run.name", f"the run folder {folder} would hold or overwrite the kit's own "
                        f"files: choose another run.output_root or run.name")
    return output_root / name


def _has_link(output_root: Path, name: str) -> bool:
    path = output_root
    for part in Path(name).parts:
        path = path / part
        if path.is_symlink():
            return True
    return False


# The project's own folders: a run folder may not be (or lie inside) one of them.
KIT_FOLDERS = ("lthkit", "notebooks", "params", "tests", "benchmarks", "docs", ".git")


def project_root(start: Path | None = None) -> Path:
    """The nearest folder (from the working directory up) holding both params/ and notebooks/.

    Notebooks run with their own folder as working directory in JupyterLab and with the caller's
    under papermill; relative paths in a parameter file mean the same in both.
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "params").is_dir() and (folder / "notebooks").is_dir():
            return folder
    return here


def resolve_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_root() / p


def notebook_path(name: str) -> Path:
    """A notebook by name or number prefix ('04' -> the one notebooks/04_*.ipynb).

    A ValueError naming the known notebooks when there is no single match. Where the project's
    notebooks/ folder cannot be found (the package used on its own), the name is not checked.
    """
    folder = project_root() / "notebooks"
    stem = name.removesuffix(".ipynb")
    exact = folder / f"{stem}.ipynb"
    if not folder.is_dir() or exact.exists():
        return exact
    matches = sorted(folder.glob(f"{stem}_*.ipynb"))
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted(p.stem for p in folder.glob("*.ipynb")))
    what = "more than one notebook" if matches else "no notebook"
    raise ValueError(f"{what} named {name!r} in {folder} (known: {known})")


def resolve_params_file(path: str | os.PathLike[str]) -> Path:
    """A parameter file path: as given when it exists, else from the project root, else params/."""
    p = Path(path).expanduser()
    for candidate in (p, project_root() / p, project_root() / "params" / p):
        if candidate.is_file():
            return candidate.resolve()
    raise ParamsError(f"{p}: no such parameter file (looked in {Path.cwd()}, {project_root()}, "
                      f"{project_root() / 'params'})")


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 0.1}} -> {"train.lr": 0.1}"""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


# --- command line -------------------------------------------------------------------------------

