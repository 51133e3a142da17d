"""Committed notebooks carry what the cells printed, not the run's timestamps (issue 9, part 4)."""
from pathlib import Path

import nbformat
import pytest

from radiolib import notebook_files

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
