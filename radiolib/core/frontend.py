"""Is a front end attached? Live widgets and progress bars only when someone can see them.

A front end a person works in (JupyterLab, Notebook 7, VS Code, `jupyter console`) sends each cell's
`execute_request` with `allow_stdin` true: it can answer `input()`. Batch runners (papermill, nbclient,
`jupyter nbconvert --execute`, nbval) send it false. The widget views and the progress bars read that flag of the
cell being run: a batch run builds no live widget and writes no progress bar into the saved outputs (which stay
deterministic, as nbval compares them), while JupyterLab gets the interactive views. Outside a kernel (a script,
the CLI) there is no front end for widgets; progress bars go to the terminal as usual.

`RADIOLIB_FRONTEND=1` (or `0`) overrides the detection, e.g. for a front end that disables stdin.
"""
from __future__ import annotations

import os

from tqdm.auto import tqdm as bar

ENV = "RADIOLIB_FRONTEND"
_ON = {"1", "true", "yes", "live"}
_OFF = {"0", "false", "no", "batch"}


def kernel():
    """The running IPython kernel, or None outside one (plain Python, a terminal IPython)."""
    try:
        from IPython import get_ipython  # lazy: optional package; asked only whether a kernel runs
    except ImportError:
        return None
    return getattr(get_ipython(), "kernel", None)


def attached() -> bool:
    """True when a front end that shows widgets is attached to the cell being run (see the module docstring)."""
    forced = os.environ.get(ENV, "").strip().lower()
    if forced in _ON | _OFF:
        return forced in _ON
    k = kernel()
    if k is None:
        return False
    try:
        parent = k.get_parent("shell") or {}
    except (AttributeError, TypeError):
        parent = {}
    if parent.get("header", {}).get("msg_type") == "execute_request":
        return bool(parent.get("content", {}).get("allow_stdin", False))
    # A widget callback (comm message) inherits the flag of the last cell run.
    return bool(getattr(k, "_allow_stdin", False))


def tqdm(*args, **kwargs):
    """`tqdm.auto.tqdm`, switched off in a kernel without a front end: no frozen bar or `0%|` line in outputs."""
    if kernel() is not None and not attached():
        kwargs["disable"] = True
    return bar(*args, **kwargs)
