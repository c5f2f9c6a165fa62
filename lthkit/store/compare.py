"""Comparing two run folders artifact by artifact (weights, masks, cached analyses, metrics;
timings ignored), and the command line: python -m lthkit.store verify|compare."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from lthkit.store.files import DamagedFileError, load_json, load_tensors, verify_folder

__all__ = ["is_timing", "value_differences", "run_differences", "COMPARED", "main"]


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
    "same": [...]}, paths relative to the folders; with "damaged": [...] where some cannot be
    read, their messages (lthkit.store.files.DamagedFileError: the file and the fix)."""
    def artifacts(root: Path) -> set[str]:
        return {p.relative_to(root).as_posix() for pattern in COMPARED for p in root.rglob(pattern)
                if p.name != "resume.pt" and "notebooks" not in p.relative_to(root).parts}

    def load(path: Path) -> Any:
        return load_json(path) if path.suffix == ".json" else load_tensors(path)

    in_a, in_b = artifacts(Path(a)), artifacts(Path(b))
    out: dict[str, list[str]] = {"differ": [], "only_a": sorted(in_a - in_b),
                                 "only_b": sorted(in_b - in_a), "same": []}
    for rel in sorted(in_a & in_b):
        try:
            differs = value_differences(load(Path(a) / rel), load(Path(b) / rel))
        except DamagedFileError as e:
            out.setdefault("damaged", []).append(str(e))
            continue
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
    folders = [args.a, args.b] if args.command == "compare" else [args.folder]
    missing = [f for f in folders if not Path(f).is_dir()]
    if missing:
        print(f"error: {missing[0]} is not a folder: give a run folder (outputs/<run>)",
              file=sys.stderr)
        return 2
    if args.command == "compare":
        return _print_comparison(Path(args.a), Path(args.b))
    damaged = verify_folder(Path(args.folder))
    for e in damaged:
        print(f"damaged: {e}")
    print(f"{len(damaged)} damaged file(s) under {args.folder}")
    return 1 if damaged else 0


def _print_comparison(a: Path, b: Path) -> int:
    found = {"damaged": [], **run_differences(a, b)}
    for kind, label in (("differ", "differs"), ("only_a", f"only in {a}"),
                        ("only_b", f"only in {b}"), ("damaged", "damaged")):
        for rel in found[kind]:
            print(f"{label}: {rel}")
    print(f"{len(found['same'])} artifact(s) the same, {len(found['differ'])} different, "
          f"{len(found['only_a'])} only in {a}, {len(found['only_b'])} only in {b}, "
          f"{len(found['damaged'])} damaged")
    return 0 if not any(found[k] for k in ("differ", "only_a", "only_b", "damaged")) else 1


if __name__ == "__main__":
    sys.exit(main())
