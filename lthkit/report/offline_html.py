"""HTML copies of executed notebooks that read well offline: math rendered by a local MathJax.

nbconvert's lab template loads MathJax, require.js and mermaid from a CDN, so on a cluster node or a
train the math shows as `$W_{min(L)}$` source. The kit's template (templates/lthkit_offline) loads
nothing from the network: MathJax 2.7 comes from the `jupyter-server-mathjax` package, copied once
into the run folder (`_static/mathjax/`, about 3 MB) and referenced relatively, so a run folder
copied elsewhere still renders. Interactive widgets show a line saying to open JupyterLab.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lthkit.store.files import StorageError, atomic_write_bytes

__all__ = ["MATHJAX_DIR", "MATHJAX_CONFIG", "TEMPLATE", "copy_mathjax", "notebook_html"]

MATHJAX_DIR = Path("_static") / "mathjax"  # under the run folder
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"  # the configs jupyter-server-mathjax ships
TEMPLATE = "lthkit_offline"
TEMPLATES = Path(__file__).parent / "templates"
# Parts of MathJax no page of ours loads: other output processors, the accessibility explorer
# (3.7 MB, loaded only from its menu) and translations of MathJax's own menus.
_NOT_COPIED = ("extensions/a11y", "jax/output/SVG", "jax/output/PreviewHTML", "localization")
_MARKER = ".complete"


def mathjax_source() -> Path:
    """The MathJax that jupyter-server-mathjax installs (a dependency of the kit)."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        raise RuntimeError("the HTML copies need MathJax from the package jupyter-server-mathjax: "
                           "pip install 'jupyter-server-mathjax>=0.2.6' (a dependency of lthkit; "
                           "or set report.html: false)") from None
    return Path(jupyter_server_mathjax.__file__).parent / "static"


def _ignored(source: Path):
    """shutil.copytree's ignore: the parts listed in _NOT_COPIED."""
    skip = {(source / p).resolve() for p in _NOT_COPIED}

    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if (Path(folder) / n).resolve() in skip}
    return ignore


def copy_mathjax(run_dir: Path) -> Path:
    """<run>/_static/mathjax/, copied once (to a temporary folder, then renamed into place, so a
    killed copy is never taken for a whole one). Returns the folder."""
    target = run_dir / MATHJAX_DIR
    if (target / _MARKER).exists():
        return target
    source = mathjax_source()
    partial = target.with_name(f".{target.name}.partial")
    failures: list[OSError] = []  # copytree gathers its files' errors as text: keep the first

    def copy(src: str, dst: str) -> object:
        try:
            return shutil.copy2(src, dst)
        except OSError as e:
            failures.append(e)
            raise

    try:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(source, partial, ignore=_ignored(source), copy_function=copy)
        (partial / _MARKER).write_text("copied from jupyter-server-mathjax\n")
        shutil.rmtree(target, ignore_errors=True)  # a copy without its marker is incomplete
        partial.rename(target)
    except OSError as e:
        shutil.rmtree(partial, ignore_errors=True)
        raise StorageError(target, failures[0] if failures else e) from None
    return target


def mathjax_url(page_dir: Path, run_dir: Path) -> str:
    """The relative address of the run folder's MathJax from a page in `page_dir`."""
    rel = Path(os.path.relpath(run_dir / MATHJAX_DIR / "MathJax.js", page_dir))
    return f"{rel.as_posix()}?config={MATHJAX_CONFIG}"


def notebook_html(executed: Path, run_dir: Path) -> Path:
    """An HTML copy of an executed notebook next to it, math rendered by the run folder's MathJax
    and nothing loaded from the network."""
    from nbconvert import HTMLExporter

    copy_mathjax(run_dir)
    exporter = HTMLExporter(template_name=TEMPLATE, extra_template_basedirs=[str(TEMPLATES)],
                            mathjax_url=mathjax_url(executed.parent, run_dir))
    body, _ = exporter.from_filename(str(executed))
    target = executed.with_suffix(".html")
    atomic_write_bytes(target, lambda f: f.write(body), mode="w")
    return target
