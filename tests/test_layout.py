"""How the package is laid out: radiolib's modules import one another without a cycle.

Issue 9 asks that `python -c "import radiolib.cohort"` import no module that imports `radiolib.cohort` back. The
imports are read from the source with `ast`, function-level (lazy) imports included: a lazy import hides a cycle
from the interpreter, not from a reader.
"""
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import radiolib

PACKAGE = Path(radiolib.__file__).parent


def radiolib_imports(source: str, modules: set[str]) -> set[str]:
    """The modules of `modules` (radiolib's, by bare name) that `source` imports anywhere in its code."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("radiolib.")}
        elif isinstance(node, ast.ImportFrom):
            inside = node.level == 1 or (node.level == 0 and (node.module or "").split(".")[0] == "radiolib")
            if not inside:
                continue
            parts = (node.module or "").split(".")[node.level == 0:]  # "radiolib.x" -> ["x"], ".x" -> ["x"]
            found |= {parts[0]} if parts and parts[0] else {a.name for a in node.names}
    return found & modules


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the radiolib modules it imports (itself left out)."""
    files = {p.stem: p for p in package.glob("*.py")}
    return {name: radiolib_imports(p.read_text(), set(files)) - {name} for name, p in files.items()}


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
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"b"}, "b": {"c"}, "c": {"b"}}) == ["b", "c", "b"]


def test_radiolib_imports_have_no_cycle():
    graph = import_graph()
    assert {"cohort", "imaging", "dataset"} <= set(graph) and "cohort" in graph["dataset"]  # the graph is read
    cycle = find_cycle(graph)
    assert cycle is None, f"radiolib modules import each other in a cycle: {' -> '.join(cycle)}"


def test_importing_cohort_loads_no_module_that_imports_cohort_back(tmp_path):
    path = [str(PACKAGE.parent), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "PYTHONDONTWRITEBYTECODE": "1"}
    code = ("import json, sys, radiolib.cohort\n"
            "print(json.dumps(sorted(m.split('.')[1] for m in sys.modules if m.startswith('radiolib.'))))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    loaded = set(json.loads(run.stdout.strip().splitlines()[-1]))
    assert {"cohort", "descriptor"} <= loaded  # the fresh interpreter imported our package
    graph = import_graph()
    may_load = loaded | reachable(graph, "cohort")  # lazy imports load their module when the function runs
    back = sorted(m for m in may_load - {"cohort"} if "cohort" in reachable(graph, m))
    assert not back, f"import radiolib.cohort loads {back}, which import radiolib.cohort back"
