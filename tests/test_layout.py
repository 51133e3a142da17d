"""How the package is laid out: radiolib's modules import one another without a cycle.

Issue 9 asks that `python -c "import radiolib.data.cohort"` import no module that imports `radiolib.data.cohort`
back. The
imports are read from the source with `ast`, function-level (lazy) imports included: a lazy import hides a cycle
from the interpreter, not from a reader.
"""
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import radiolib

PACKAGE = Path(radiolib.__file__).parent


def radiolib_imports(source: str, modules: set[str], current: str = "", is_package: bool = False) -> set[str]:
    """The modules of `modules` (radiolib's, by dotted name below radiolib: "cohort", "synth.plan") that `source`
    imports anywhere in its code. Relative imports start from the package of `current`, the importing module
    (itself when `is_package`, i.e. an __init__.py)."""
    parts = current.split(".") if current else []
    package = parts if is_package else parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {_resolve(a.name.split(".")[1:], modules) for a in node.names if a.name.startswith("radiolib.")}
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        module = [p for p in (node.module or "").split(".") if p]
        if node.level == 0:
            if not module or module[0] != "radiolib":
                continue
            base = module[1:]
        elif node.level - 1 > len(package):
            continue  # above radiolib
        else:
            base = package[:len(package) - (node.level - 1)] + module
        for alias in node.names:
            name = ".".join(base + [alias.name])
            found.add(name if name in modules else _resolve(base, modules))  # a submodule, or a name of `base`
    return found & modules


def _resolve(parts: list[str], modules: set[str]) -> str | None:
    """The longest module named by a prefix of `parts` (an imported name may be a function of that module)."""
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in modules:
            return ".".join(parts[:n])
    return None


def module_names(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name below radiolib -> file, subpackages included ("synth" is synth/__init__.py)."""
    names = {}
    for p in sorted(package.rglob("*.py")):
        parts = p.relative_to(package).with_suffix("").parts
        if "__pycache__" in parts:
            continue
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        names[".".join(parts)] = p
    return names


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the radiolib modules it imports (itself left out)."""
    files = module_names(package)
    return {name: radiolib_imports(p.read_text(), set(files), name, p.name == "__init__.py") - {name}
            for name, p in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that ends where it starts (["a", "b", "a"]), or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once every successor is explored

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [node])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [])):
            return cycle
    return None


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_import_reader_sees_lazy_and_absolute_imports_and_the_cycle_finder_finds_cycles():
    modules = {"a", "b", "c", "cache"}
    source = ("import os\nfrom . import cache\nfrom radiolib.b import x\n"
              "def f():\n    from .c import y\n    import radiolib.a\n    from .. import other\n")
    assert radiolib_imports(source, modules) == {"a", "b", "c", "cache"}
    inside = {"cache", "pkg", "pkg.x", "pkg.y"}  # a subpackage: relative imports start from its folder
    nested = "from . import y\nfrom .x import f\nfrom ..cache import g\nimport radiolib.pkg.y\nfrom ... import z\n"
    assert radiolib_imports(nested, inside, "pkg.x") == {"pkg.y", "pkg.x", "cache"}
    assert radiolib_imports("from . import x\nfrom .y import f\n", inside, "pkg", is_package=True) == {"pkg.x", "pkg.y"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"b"}, "b": {"c"}, "c": {"b"}}) == ["b", "c", "b"]


def test_radiolib_imports_have_no_cycle():
    graph = import_graph()
    assert {"data.cohort", "data.imaging", "data.dataset"} <= set(graph)  # the graph is read
    assert "data.cohort" in graph["data.dataset"]
    cycle = find_cycle(graph)
    assert cycle is None, f"radiolib modules import each other in a cycle: {' -> '.join(cycle)}"


def test_the_subpackages_are_read_and_the_data_sources_are_in_the_graph():
    graph = import_graph()
    synth = {"data.synth", "data.synth.plan", "data.synth.phantom", "data.synth.dicom", "data.synth.workbook"}
    assert {"data.source", "data.synth.lgg"} | synth <= set(graph)
    assert "data.synth.plan" in graph["data.synth.phantom"]  # relative imports resolved
    assert "core.cache" in graph["data.synth.common"]
    assert all("data.source" in graph[f"data.{m}"] for m in ("cohort", "lgg", "dataset"))


# The loaders and what they build on; the generators must not share code with them (a synthetic cohort written with
# the loader's own assumptions would pass the loader's tests and prove nothing about real data).
LOADERS = tuple(f"data.{m}" for m in ("cohort", "lgg", "series", "imaging", "source", "descriptor", "dataset"))


def test_the_loaders_and_the_synthetic_generators_share_no_code():
    graph = import_graph()
    generators = {m for m in graph if m == "data.synth" or m.startswith("data.synth.")}
    for loader in LOADERS:
        reached = sorted(reachable(graph, loader) & generators)
        assert not reached, f"the loader {loader} imports the synthetic generator modules {reached}"
    for generator in sorted(generators):
        reached = sorted(reachable(graph, generator) & set(LOADERS))
        assert not reached, f"the generator {generator} imports the loader modules {reached}"


@pytest.mark.parametrize("module", ["data.cohort", "data.lgg", "data.source", "data.synth"])
def test_importing_a_data_module_loads_no_module_that_imports_it_back(module, tmp_path):
    path = [str(PACKAGE.parent), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "PYTHONDONTWRITEBYTECODE": "1"}
    code = (f"import json, sys, radiolib.{module}\n"
            "print(json.dumps(sorted(m.split('.', 1)[1] for m in sys.modules if m.startswith('radiolib.'))))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    loaded = set(json.loads(run.stdout.strip().splitlines()[-1]))
    assert module in loaded  # the fresh interpreter imported our package
    graph = import_graph()
    may_load = loaded | reachable(graph, module)  # lazy imports load their module when the function runs
    back = sorted(m for m in may_load - {module} if module in reachable(graph, m))
    assert not back, f"import radiolib.{module} loads {back}, which import radiolib.{module} back"


# The layers, lowest first: a module imports only from its own layer and the layers below it.
LAYERS = ("core", "data", "stats", "learn", "run", "views", "steps")


def layer_of(module: str) -> str:
    return module.split(".")[0]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    rank = {name: i for i, name in enumerate(LAYERS)}
    return sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps
                  if layer_of(m) in rank and layer_of(d) in rank and rank[layer_of(d)] > rank[layer_of(m)])


def test_every_module_sits_in_a_layer_and_imports_only_from_its_layer_and_below():
    graph = import_graph()
    top = sorted(m for m in graph if "." not in m and m not in LAYERS)
    assert top == ["__init__", "__main__", "_compat"], f"modules outside the layers: {top}"
    assert upward_imports({"data.x": {"learn.y", "core.z"}, "learn.y": {"data.x"}}) == ["data.x -> learn.y"]
    assert upward_imports(graph) == []


def test_no_folder_holds_more_than_a_dozen_modules():
    for folder in [PACKAGE, *(p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__")]:
        modules = [p.name for p in folder.glob("*.py") if p.name != "__init__.py"]
        assert len(modules) <= 12, f"{folder.relative_to(PACKAGE.parent)} holds {len(modules)} modules: {modules}"


def test_the_former_flat_names_still_import_the_same_module_with_a_deprecation_warning():
    import importlib
    import warnings

    from radiolib.data import cohort
    from radiolib.data.synth import lgg
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module("radiolib.cohort")
        old_lgg = importlib.import_module("radiolib.synth_lgg")
    assert old is cohort and old_lgg is lgg
    assert any("radiolib.data.cohort" in str(w.message) for w in caught if w.category is DeprecationWarning)


# The only packages a function may import (each such line saying why, with a `# lazy:` comment): optional extras a user
# may not have installed (pyradiomics, highdicom, idc-index), and packages that are slow and needed on one path only
# (a notebook execution's papermill and nbclient; the widgets' ipywidgets and IPython).
# The command line imports each command's modules in the command, so that `radiolib --help` answers at once.
LAZY_HERE = {("radiolib", "cli.py")}
LAZY_PACKAGES = {"radiomics", "highdicom", "idc_index", "idc_index_data", "papermill", "nbclient", "ipywidgets",
                 "IPython"}


def function_level_imports(source: str) -> list[tuple[int, str, str]]:
    """(line, top-level package, source text) of each import inside a function of `source`, sorted by line; a
    relative import's package is "radiolib"."""
    lines = source.splitlines()
    found = set()
    for func in ast.walk(ast.parse(source)):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Import):
                packages = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                packages = ["radiolib" if node.level else node.module.split(".")[0]]
            else:
                continue
            text = " ".join(line.strip() for line in lines[node.lineno - 1:node.end_lineno])
            found |= {(node.lineno, package, text) for package in packages}
    return sorted(found)


def test_imports_sit_at_the_top_of_each_module():
    source = ("import os\n\n\ndef f():\n    import torch\n\n    def g():\n        from . import x\n"
              "    import papermill as pm  # lazy: slow\n")
    assert function_level_imports(source) == [(5, "torch", "import torch"), (8, "radiolib", "from . import x"),
                                              (9, "papermill", "import papermill as pm  # lazy: slow")]
    misplaced = [f"{path.relative_to(PACKAGE.parent)}:{line}: {text}"
                 for path in module_names().values()
                 for line, package, text in function_level_imports(path.read_text())
                 if (package not in LAZY_PACKAGES and (package, path.name) not in LAZY_HERE) or "# lazy:" not in text]
    assert not misplaced, f"{len(misplaced)} imports inside functions (move them to the top):\n" + "\n".join(misplaced)
