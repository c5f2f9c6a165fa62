"""The report runner: execute the notebooks in order with one parameter file.

    lthkit-report params/quick.yaml                 # every notebook the preset lists
    lthkit-report params/quick.yaml --only 04 05    # some of them
    python -m lthkit.report params/smoke.yaml

Each notebook runs through papermill with `params_file` and `interactive=False`; the executed copy
and an HTML copy go to outputs/<run>/notebooks/, and outputs/<run>/index.html links them with
their status, wall time and the figures. A failing notebook stops the series: its failing cell
and error are printed, and the executed copy (with the error in place) is kept. Expensive results
are cached in the run folder, so running the report again resumes where it stopped.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .params import Params, ParamsError, load_params, parse_overrides, project_root
from .store import atomic_write_bytes, load_json, save_json

__all__ = ["run_report", "main", "NotebookResult"]

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class NotebookResult:
    name: str
    status: str  # "ok", "failed", "not run"
    seconds: float = 0.0
    error: str = ""


def notebook_dir() -> Path:
    return project_root() / "notebooks"


def resolve_notebook(name: str) -> Path:
    """A notebook by name or number prefix ('04' -> notebooks/04_hessian_volume.ipynb)."""
    folder = notebook_dir()
    exact = folder / f"{name.removesuffix('.ipynb')}.ipynb"
    if exact.exists():
        return exact
    matches = sorted(folder.glob(f"{name}_*.ipynb"))
    if len(matches) != 1:
        raise FileNotFoundError(f"no single notebook named {name!r} in {folder}")
    return matches[0]


def run_report(params: Params, params_file: Path, only: list[str] | None = None,
               html_copies: bool | None = None, stream: bool = False) -> list[NotebookResult]:
    """Execute the report's notebooks in order; stop at the first failure. Returns the results."""
    import papermill

    names = only or params.report.notebooks
    notebooks = [resolve_notebook(n) for n in names]
    out_dir = params.run_dir() / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    results = [NotebookResult(nb.stem, "not run") for nb in notebooks]
    make_html = params.report.html if html_copies is None else html_copies
    for i, (nb, result) in enumerate(zip(notebooks, results)):
        print(f"[{i + 1}/{len(notebooks)}] {nb.stem} ...", flush=True)
        target = out_dir / nb.name
        partial = out_dir / f".{nb.stem}.running.ipynb"
        t0 = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(nb), str(partial), kernel_name="python3", cwd=str(project_root()),
                parameters={"params_file": str(params_file), "interactive": False},
                progress_bar=False, log_output=stream)
            result.status = "ok"
        except papermill.PapermillExecutionError as e:
            result.status = "failed"
            result.error = _describe_failure(e)
        finally:
            result.seconds = time.perf_counter() - t0
            if partial.exists():
                partial.replace(target)
        if make_html and target.exists():
            write_html(target)
        print(f"    {result.status} in {result.seconds / 60:.1f} min", flush=True)
        if result.status == "failed":
            print(result.error, file=sys.stderr)
            break
    write_index(params, results)
    return results


def _describe_failure(e: Exception) -> str:
    """The failing cell's source and the error, without terminal colour codes."""
    source = getattr(e, "source", "")
    tb = ANSI.sub("", "\n".join(getattr(e, "traceback", []) or []))
    return (f"--- failing cell (execution count {getattr(e, 'exec_count', '?')}) ---\n{source}\n"
            f"--- {getattr(e, 'ename', 'Error')}: {getattr(e, 'evalue', e)} ---\n{tb}")


def write_html(executed: Path) -> Path:
    """An HTML copy of an executed notebook next to it."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_filename(str(executed))
    target = executed.with_suffix(".html")
    atomic_write_bytes(target, lambda f: f.write(body), mode="w")
    return target


def write_index(params: Params, results: list[NotebookResult]) -> Path:
    """outputs/<run>/index.html: every notebook of the report with status, time, links, figures.

    Results of notebooks not run this time are kept from the previous index (index.json).
    """
    run_dir = params.run_dir()
    record = run_dir / "notebooks" / "index.json"
    known = {r["name"]: NotebookResult(**r) for r in (load_json(record) if record.exists() else [])}
    for r in results:
        if r.status != "not run" or r.name not in known:
            known[r.name] = r
    save_json(record, [asdict(r) for r in known.values()])
    rows = []
    for r in known.values():
        links = " ".join(f'<a href="notebooks/{r.name}.{ext}">{ext}</a>' for ext in ("html", "ipynb")
                         if (run_dir / "notebooks" / f"{r.name}.{ext}").exists())
        rows.append(f"<tr class='{r.status.replace(' ', '-')}'><td>{html.escape(r.name)}</td>"
                    f"<td>{r.status}</td><td>{r.seconds / 60:.1f} min</td><td>{links}</td></tr>")
    figures = sorted((run_dir / "figures").glob("*.png")) if (run_dir / "figures").exists() else []
    thumbs = "\n".join(f'<a href="figures/{f.name}"><figure><img src="figures/{f.name}" '
                       f'loading="lazy"><figcaption>{html.escape(f.stem)}</figcaption></figure></a>'
                       for f in figures)
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>lthkit report: {html.escape(params.run.name)}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:.3em 1em;text-align:left}}
.failed td{{color:#b00}} .not-run td{{color:#888}} figure{{display:inline-block;margin:.5em;width:300px}}
img{{width:300px}} figcaption{{font-size:80%}}</style></head><body>
<h1>lthkit report: {html.escape(params.run.name)}</h1>
<p>Parameters: <code>{html.escape(params.source)}</code></p>
<table><tr><th>notebook</th><th>status</th><th>wall time</th><th>executed copy</th></tr>
{''.join(rows)}</table>
<h2>Figures</h2>
{thumbs}
</body></html>"""
    index = run_dir / "index.html"
    atomic_write_bytes(index, lambda f: f.write(page), mode="w")
    return index


def save_yaml(path: Path, params: Params) -> None:
    """The full parameter set as a YAML file (atomically)."""
    atomic_write_bytes(path, lambda f: f.write(params.to_yaml()), mode="w")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lthkit-report", description=__doc__.split("\n")[0])
    parser.add_argument("params", help="parameter YAML, e.g. params/quick.yaml")
    parser.add_argument("--only", nargs="+", metavar="NOTEBOOK",
                        help="run only these notebooks (names or number prefixes)")
    parser.add_argument("--no-html", action="store_true", help="skip the HTML copies")
    parser.add_argument("--stream", action="store_true", help="echo notebook output while it runs")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a parameter, e.g. --set data.dataset=synthetic_cifar10")
    args = parser.parse_args(argv)
    try:
        overrides = parse_overrides(args.set)
        params = load_params(args.params, overrides)
    except ParamsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    params_file = Path(params.source)
    if overrides:  # the notebooks read a file: write the resolved parameters next to the run
        params_file = params.run_dir() / "params.yaml"
        save_yaml(params_file, params)
    results = run_report(params, params_file, only=args.only,
                         html_copies=False if args.no_html else None, stream=args.stream)
    index = params.run_dir() / "index.html"
    print(f"report: {index}")
    print(json.dumps({r.name: r.status for r in results}))
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
