"""The committed notebooks as files: written as JupyterLab saves them, without the run's timestamps.

papermill records each cell's start and end time, its duration and the paths it ran from, and Jupyter records
execution times; they change on every run and say nothing a reader needs, so the committed notebooks drop them
(`make notebooks`). What the cells printed stays.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import nbformat

RUN_METADATA = ("papermill", "execution")  # per-run keys, in the notebook's and each cell's metadata


def strip_run_metadata(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove RUN_METADATA from the notebook and its cells, in place; return the notebook."""
    for key in RUN_METADATA:
        nb.metadata.pop(key, None)
        for cell in nb.cells:
            cell.metadata.pop(key, None)
    return nb


def normalise(paths: Iterable[str | Path]) -> None:
    """Rewrite each notebook without run metadata, as nbformat (and so JupyterLab) writes it."""
    for path in paths:
        nbformat.write(strip_run_metadata(nbformat.read(path, 4)), path)


if __name__ == "__main__":
    normalise(sys.argv[1:])
