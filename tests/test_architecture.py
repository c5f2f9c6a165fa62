"""The package's rooms (docs/ARCHITECTURE.md): each package imports only the packages before it in
the study's flow, and no module imports itself back through others (no import circles)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import lthkit

PACKAGE = Path(lthkit.__file__).parent

# The flow: parameters -> where work runs -> the run folder -> data -> networks -> training ->
# analyses -> verdicts -> tickets -> figures -> the report. A package may import those before it.
FLOW = ["config", "platform", "store", "data", "nets", "train", "analysis", "verdicts", "tickets",
        "plots", "report"]
# What a package must not import although the flow would let it, and why.
NEVER = {"verdicts": {"analysis": "verdicts read the run folder's tables, and never the paper's "
                                  "published numbers (lthkit.analysis.published)"}}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path, modules: dict[str, Path], runtime_only: bool) -> set[str]:
    """The lthkit modules `module` imports (any depth: function-level imports count; with
    `runtime_only`, imports under `if TYPE_CHECKING:` do not)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and _is_type_checking(node):
                skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}: a relative import (use lthkit.<package>...)"
            if node.module and node.module.split(".")[0] == "lthkit":
                for alias in node.names:  # `from lthkit.x import y`: y may be a module
                    sub = f"{node.module}.{alias.name}"
                    out.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "lthkit"}
    return out - {module}


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_lives_in_a_package_of_the_flow():
    loose = [m for m in _modules() if m != "lthkit" and _package(m) not in FLOW]
    assert not loose, f"modules outside the packages of the flow {FLOW}: {loose}"


def test_no_package_imports_one_later_in_the_flow():
    modules = _modules()
    wrong = []
    for module, path in modules.items():
        own = _package(module)
        if own is None:
            continue  # lthkit/__init__ gathers the public names of every package
        for target in _imports(module, path, modules, runtime_only=False):
            other = _package(target)
            if other is None:
                wrong.append(f"{module} imports the package root {target}")
            elif FLOW.index(other) > FLOW.index(own):
                wrong.append(f"{module} ({own}) imports {target} ({other}, later in the flow)")
            elif other in NEVER.get(own, {}):
                wrong.append(f"{module} imports {target}: {NEVER[own][other]}")
    assert not wrong, "\n".join(wrong)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph`, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _import_graph(runtime_only: bool = True) -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        targets = _imports(module, path, modules, runtime_only=runtime_only)
        # importing a submodule imports its package (its __init__) first, except from inside it
        graph[module] = {t for t in targets if t in modules}
    return graph


def test_no_import_circles_between_modules():
    graph = _import_graph()
    graph.pop("lthkit", None)  # the root names every public name's home
    for deps in graph.values():
        deps.discard("lthkit")
    circle = _cycle(graph)
    assert circle is None, "an import circle: " + " -> ".join(circle)


def test_the_circle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_import_lthkit_imports_nothing_else():
    """`import lthkit` rewrites no sys.modules entry and imports no package of its own, nor torch,
    matplotlib or ipywidgets: a public name is imported from its home when first used."""
    probe = ("import sys; import lthkit; "
             "print(sorted(m for m in sys.modules if m.startswith(('lthkit.', 'torch', "
             "'matplotlib', 'ipywidgets'))))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_the_public_names_come_from_their_homes():
    import importlib

    for name, home in lthkit._HOMES.items():
        assert getattr(lthkit, name) is getattr(importlib.import_module(home), name), name
    with pytest.raises(AttributeError, match="no attribute 'hessian'"):
        lthkit.hessian  # noqa: B018  (the short module names of the flat layout are gone)


@pytest.mark.parametrize("old", ["baselines", "params", "landscape", "training", "gpu"])
def test_the_flat_layout_names_are_gone(old):
    import importlib

    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"lthkit.{old}")


def test_every_package_says_what_it_holds_and_what_it_may_import():
    for name in FLOW:
        doc = (PACKAGE / name / "__init__.py").read_text()
        assert doc.startswith('"""') and "import" in doc.lower().split('"""')[1], (
            f"lthkit/{name}/__init__.py: a docstring that says what the package holds and what "
            f"it may import")


def test_no_file_of_the_package_is_ignored_by_git():
    """A .gitignore pattern meant for a folder of data (data/) once hid lthkit/data from every
    commit: the package imported here and not on a clean clone. Every file the package holds (and
    the notebooks, tests and parameter files) must be one git would commit."""
    import shutil
    import subprocess

    root = PACKAGE.parent
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    files = [str(p.relative_to(root)) for folder in ("lthkit", "notebooks", "params", "tests")
             for p in (root / folder).rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=root,
                             input="\n".join(files), capture_output=True, text=True).stdout.split()
    assert not ignored, f"git ignores files the project needs: {ignored[:5]} (fix .gitignore)"
