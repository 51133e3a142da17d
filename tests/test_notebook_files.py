"""Committed notebooks carry what the cells printed, not the run's timestamps (issue 9, part 4), and no
function definitions in 02-05 (part 1)."""
import re
from pathlib import Path

import nbformat
import pytest

from radiolib.run import notebook_files

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebooks_have_no_run_timestamps(path):
    nb = nbformat.read(path, 4)
    found = [key for key in notebook_files.RUN_METADATA if key in nb.metadata]
    found += [f"cell {i}: {key}" for i, c in enumerate(nb.cells) for key in notebook_files.RUN_METADATA
              if key in c.metadata]
    assert not found, f"{path.name} keeps run metadata (run `make notebooks`): {found[:5]}"
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")  # outputs kept for nbval


def test_normalise_drops_timestamps_and_keeps_outputs(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", text="1\n")])
    cell.metadata.update(papermill={"duration": 0.1, "start_time": "2026-12-01T00:00:00"},
                         execution={"iopub.status.idle": "2026-12-01T00:00:01"}, tags=["keep"])
    nb.cells.append(cell)
    nb.metadata["papermill"] = {"duration": 3.0}
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    notebook_files.normalise([path])
    back = nbformat.read(path, 4)
    assert "papermill" not in back.metadata and set(back.cells[0].metadata) == {"tags"}
    assert back.cells[0].outputs[0].text == "1\n" and back.cells[0].metadata.tags == ["keep"]


FUNCTION = re.compile(r"^\s*(async\s+)?def\s|^\s*\w+(\s*,\s*\w+)*\s*=\s*lambda\b", re.MULTILINE)


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem[:2] in ("02", "03", "04", "05")], ids=lambda p: p.stem)
def test_approach_notebooks_define_no_function(path):
    """Glue belongs in the library (radiolib.steps.approaches); a cell calls it (issue 9, part 1)."""
    cells = [c for c in nbformat.read(path, 4).cells if c.cell_type == "code"]
    defining = [c.get("id") for c in cells if FUNCTION.search(c.source)]
    assert cells and not defining, f"{path.name}: code cells {defining} define a function (move it to radiolib)"


def test_the_function_check_sees_a_def_and_a_named_lambda():
    assert FUNCTION.search("x = 1\ndef f(a):\n    return a") and FUNCTION.search("f = lambda a: a")
    assert not FUNCTION.search("rows = sorted(rows, key=lambda r: r['auc'])  # default for a parameter")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_cells_are_short_lines(path):
    """Code read like a methods section: no line of a code cell (parameters cell included) over 100 characters."""
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    long = [(c.get("id"), line) for c in cells for line in c.source.splitlines() if len(line) > 100]
    assert not long, long
