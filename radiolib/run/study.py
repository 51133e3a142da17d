"""The study as one run: resolve the data (a user's folder or the cached synthetic cohort), then execute the
notebooks in order with papermill into a run folder (executed notebooks, results/*.json, figures/*.png).
"""
from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import platform
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import nbformat
import torch

from ..core import cache
from ..learn.models import default_device
from . import params
from .inputs import data_folder

NOTEBOOK_ORDER = tuple(params.NOTEBOOKS)
log = logging.getLogger("radiolib.run.study")


def repo_notebooks() -> Path:
    """The notebooks folder of a source checkout (radiolib is installed editable by `make setup`)."""
    return Path(__file__).resolve().parents[2] / "notebooks"


def notebook_parameters(stem: str, profile: str, params_dir: Path, data: str | None, out: Path,
                        overrides: dict) -> dict:
    """Defaults <- params/<profile>/study.yaml <- params/<profile>/<stem>.yaml <- -p overrides; plus data_dir and
    run_dir of this run."""
    values = params.load_profile(profile, stem, params_dir)
    values.update({k: v for k, v in overrides.items() if k in params.defaults(stem)})
    values["profile"] = profile
    values["run_dir"] = str(out.resolve())
    if data:
        values["data_dir"] = str(Path(data).expanduser().resolve())
    return params.validate(stem, values)


def runner_settings(profile: str, params_dir: Path, overrides: dict) -> dict:
    """params.RUNNER <- its keys in params/<profile>/study.yaml <- -p overrides (cell_timeout, ...)."""
    shared = params.read_profile_file(profile, params.STUDY_FILE, params_dir)
    values = {**params.RUNNER, **{k: v for k, v in {**shared, **overrides}.items() if k in params.RUNNER}}
    timeout = values["cell_timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise TypeError(f"cell_timeout should be a positive number of seconds, got {timeout!r}")
    return values


# ---------------------------------------------------------------------------------------------------------------
# Executing one notebook: every cell has a timeout, a lost reply or a dead kernel restarts the notebook once

IOPUB_TIMEOUT = 60  # s to wait for a cell's last output messages after its reply (nbclient's 4 s trips on a busy CPU)


@dataclass
class Failure:
    """Why one attempt at a notebook stopped, and at which cell (index in the executed notebook)."""

    kind: str  # "timeout", "lost output", "lost reply", "dead kernel", "kernel start" or "error"
    cell: int | None
    line: str  # first line of that cell
    detail: str

    @property
    def transient(self) -> bool:
        """A lost reply, a hung cell or a dead kernel may not happen again; a Python error in a cell would."""
        return self.kind != "error"

    def describe(self) -> str:
        where = f"cell {self.cell} `{self.line}`" if self.cell is not None else "before the first cell"
        return f"{where}: {self.detail}"


class NotebookFailed(RuntimeError):
    """A notebook that failed (after its retry when the failure was transient): names the notebook and the cell."""

    def __init__(self, stem: str, failures: list[Failure], output: Path, resume: str | None = None):
        self.stem, self.failures, self.output, self.resume = stem, failures, Path(output), resume
        last, first = failures[-1].describe(), failures[0].describe()
        tries = "" if len(failures) == 1 else (f" (on all {len(failures)} attempts)" if first == last else
                                                f" (first attempt: {first})")
        text = f"notebook {stem} failed at {last}{tries}. Its outputs so far: {output}"
        super().__init__(text + (f"\nTo resume: {resume}" if resume else ""))

    def with_resume(self, resume: str) -> "NotebookFailed":
        return NotebookFailed(self.stem, self.failures, self.output, resume)


def _first_line(source: str) -> str:
    line = next((ln.strip() for ln in str(source).splitlines() if ln.strip()), "")
    return line if len(line) <= 80 else line[:77] + "..."


def mark_unrun_cells(path: Path, stopped_at: int | None = None) -> int:
    """After an interrupted execution, mark the cells that never ran as such; return how many.

    Papermill's last save marks every cell still `pending` as `completed` when a run stops without a failed cell
    (a timeout, a dead kernel, a stop signal), so an interrupted notebook would claim cells it never ran. A cell
    that ran has an end time; one without stays `pending`, and the cell that was running (`stopped_at`, the index
    the runner saw start last) is marked `failed`.
    """
    path = Path(path)
    if not path.is_file():
        return 0
    try:
        nb = nbformat.read(path, 4)
    except Exception:  # noqa: BLE001 - a half-written file: nothing to mark
        return 0
    n = 0
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("papermill", {})
        if i == stopped_at and meta.get("status") != "failed":
            meta["status"] = "failed"
            n += 1
        elif meta.get("end_time") is None and meta.get("status") == "completed":
            meta["status"] = "failed" if meta.get("start_time") else "pending"
            n += 1
        elif meta.get("status") == "running":
            meta["status"] = "failed"
            n += 1
    if n:
        cache.atomic_write_text(path, nbformat.writes(nb))
    return n


def _attempt(path_in: Path, path_out: Path, parameters: dict, timeout: float, cwd, progress: bool) -> Failure | None:
    """One papermill execution; None when every cell finished, else what stopped it."""
    import papermill as pm  # lazy: slow; only a notebook execution needs it
    from nbclient.exceptions import CellTimeoutError, DeadKernelError  # lazy: slow; only a notebook execution needs it

    current: dict = {}

    def on_cell_execute(cell=None, cell_index=None, **_):
        current.update(cell=cell_index, line=_first_line(cell.source))

    def failure(kind: str, detail: str) -> Failure:
        return Failure(kind, current.get("cell"), current.get("line", ""), detail)

    try:
        try:
            pm.execute_notebook(str(path_in), str(path_out), parameters=parameters, cwd=str(cwd) if cwd else None,
                                progress_bar=progress, kernel_name="python3", execution_timeout=int(timeout),
                                iopub_timeout=IOPUB_TIMEOUT, on_cell_execute=on_cell_execute)
        except BaseException:
            mark_unrun_cells(path_out, current.get("cell"))
            raise
    except pm.PapermillExecutionError as err:
        return Failure("error", err.cell_index, _first_line(err.source), f"{err.ename}: {err.evalue}"[:300])
    except CellTimeoutError as err:
        if "IOPub" in str(err):
            return failure("lost output", f"its output messages did not arrive within {IOPUB_TIMEOUT} s")
        return failure("timeout", f"did not finish within {timeout:g} s (cell_timeout)")
    except DeadKernelError:
        return failure("dead kernel", "the kernel died (killed, e.g. out of memory)")
    except (TimeoutError, AssertionError):  # nbclient's wait for a reply outside a cell (final kernel_info)
        return failure("lost reply", f"the kernel did not reply within {timeout:g} s")
    except RuntimeError as err:  # the kernel did not start: "Kernel died before replying", "didn't respond"
        if "kernel" not in str(err).lower():
            raise
        return failure("kernel start", str(err)[:300])
    return None


def execute_notebook(path_in, path_out, parameters: dict, timeout: float, retries: int = 1, cwd=None,
                     progress: bool = False) -> int:
    """Execute a notebook with papermill, every cell within `timeout` seconds; return the number of attempts.

    A cell that does not finish in time, lost output messages or a dead kernel stop the notebook, which is then
    executed again from the start (up to `retries` times; finished work is in the caches). A Python error in a
    cell is not retried. Raises NotebookFailed naming the notebook, the cell and the reason.
    """
    stem = Path(path_in).stem
    failures: list[Failure] = []
    for attempt in range(1, retries + 2):
        failure = _attempt(Path(path_in), Path(path_out), parameters, timeout, cwd, progress)
        if failure is None:
            return attempt
        failures.append(failure)
        if not failure.transient or attempt > retries:
            break
        print(f"{stem}: stopped at {failure.describe()}; executing it again from the start "
              f"(attempt {attempt + 1} of {retries + 1}, finished work is cached)", flush=True)
    raise NotebookFailed(stem, failures, Path(path_out))


# ---------------------------------------------------------------------------------------------------------------
# The run folder: run.json states each notebook's status; a folder never mixes two runs' files

RUN_FILE = "run.json"
WHERE_KEYS = ("run_dir", "cache_dir")  # where a run writes and caches, not what it computes


def run_outputs(run_dir: Path) -> list[Path]:
    """What a study run writes into its folder (and --fresh deletes); nothing else there is touched."""
    names = [RUN_FILE, "results", "figures", "report.html"] + [f"{s}.ipynb" for s in NOTEBOOK_ORDER]
    return [Path(run_dir) / n for n in names if (Path(run_dir) / n).exists()]


def _notebook_outputs(run_dir: Path, stem: str) -> list[Path]:
    """The results file, figures (and report) a notebook writes: removed before it runs, so none is stale."""
    root = Path(run_dir)
    found = [root / "results" / f"{stem}.json"] + sorted((root / "figures").glob(f"{stem[:2]}_*.png"))
    return found + ([root / "report.html"] if stem == "06_report" else [])


def _comparable(plan: dict) -> dict:
    return {stem: {k: v for k, v in values.items() if k not in WHERE_KEYS} for stem, values in plan.items()}


def parameter_differences(old: dict, new: dict) -> list[str]:
    """`key (stem): old -> new` for every parameter of a notebook that differs from the earlier run's: all its
    parameters when the earlier run had that notebook, else those every notebook shares (data, cohort, patches)."""
    old, new = _comparable(old), _comparable(new)
    shared = {k: v for k, v in next(iter(old.values()), {}).items() if k in params.COMMON}
    out = []
    for stem, values in new.items():
        before = old.get(stem, shared)
        for key in sorted(set(before) | (set(values) if stem in old else set())):
            if before.get(key, "<absent>") != values.get(key, "<absent>"):
                out.append(f"{key} ({stem}): {before.get(key)!r} -> {values.get(key)!r}")
    return out


def open_run_folder(run_dir: Path, plan: dict, fresh: bool = False) -> dict:
    """The run record to continue: the folder's own when its parameters are the same as `plan`'s, else a new one.

    Refuses (ValueError) a folder holding another run's files, unless `fresh`, which deletes them first.
    """
    run_dir = Path(run_dir)
    if fresh:
        for path in run_outputs(run_dir):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    old = {}
    if (run_dir / RUN_FILE).is_file():
        with contextlib.suppress(ValueError):
            old = json.loads((run_dir / RUN_FILE).read_text())
    if old.get("parameters"):
        diffs = parameter_differences(old["parameters"], plan)
        if diffs:
            shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
            raise ValueError(f"{run_dir} holds a run with other parameters ({shown}). Choose another --out, or "
                             f"add --fresh to delete that run's notebooks, results/ and figures/ and start over")
        return old
    if run_outputs(run_dir):
        raise ValueError(f"{run_dir} holds files of a run without a readable {RUN_FILE} (an older version or "
                         f"another tool): choose another --out, or add --fresh to delete "
                         f"{', '.join(p.name for p in run_outputs(run_dir))} and start over")
    return {}


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def machine() -> dict:
    """What the run ran on (device, threads, cores, versions): recorded in run.json, never in notebook outputs."""
    return {"device": str(default_device()), "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__}


class RunRecord:
    """run.json of a run folder, rewritten atomically at every change of state."""

    def __init__(self, run_dir: Path, old: dict, plan: dict, fields: dict):
        self.path = Path(run_dir) / RUN_FILE
        state = dict(old.get("state", {}))
        state.update({s: {"status": "not started"} for s in plan})
        self.doc = {**old, **fields, "status": "running", "message": None, "resume": None, "started": _now(),
                    "machine": machine(),
                    "parameters": {**old.get("parameters", {}), **plan}, "state": state,
                    "seconds": {s: v for s, v in old.get("seconds", {}).items() if s not in plan}}
        self.doc["notebooks"] = [s for s in NOTEBOOK_ORDER if s in self.doc["state"]] + \
            [s for s in self.doc["state"] if s not in NOTEBOOK_ORDER]
        self.write()

    def write(self) -> None:
        self.doc["updated"] = _now()
        cache.atomic_write_text(self.path, json.dumps(self.doc, indent=1, default=str))

    def notebook(self, stem: str, **fields) -> None:
        self.doc["state"][stem] = fields
        if fields.get("status") == "done":
            self.doc["seconds"][stem] = fields["seconds"]  # what the report reads
        self.write()

    def finish(self, status: str, message: str | None = None, resume: str | None = None) -> None:
        self.doc.update(status=status, message=message, resume=resume)
        self.write()


def resume_command(profile: str, data, out: Path, overrides: dict, params_dir, stems: list[str]) -> str:
    """The command line that runs `stems` again into the same folder with the same parameters."""
    cmd = [sys.executable, "-m", "radiolib", "study", "--profile", profile, "--out", str(Path(out).resolve())]
    if data:
        cmd += ["--data", str(Path(data).expanduser().resolve())]
    if params_dir:
        cmd += ["--params", str(Path(params_dir).resolve())]
    for key, value in overrides.items():
        cmd += ["-p", f"{key}={json.dumps(value)}"]
    return shlex.join(cmd + ["--notebooks", *stems])


# ---------------------------------------------------------------------------------------------------------------
# The study


def run_study(profile: str = "demo", data: str | None = None, out: str | None = None, overrides: dict | None = None,
              notebooks: list[str] | None = None, notebooks_dir: Path | None = None,
              params_dir: Path | None = None, fresh: bool = False, retries: int = 1) -> Path:
    """Execute the notebooks in order into the run folder; return the run folder.

    Every cell gets `cell_timeout` seconds (profile's study.yaml, or -p); a notebook that hangs or loses its kernel
    is executed again once; a failure raises NotebookFailed with the command to resume. run.json states each
    notebook's status. A folder holding a run with other parameters is refused unless `fresh`.
    """
    overrides = overrides or {}
    nb_dir = Path(notebooks_dir or repo_notebooks())
    given_params_dir = params_dir
    params_dir = Path(params_dir or nb_dir.parent / "params")
    if not nb_dir.is_dir():
        raise FileNotFoundError("notebooks folder not found: run from a source checkout (make setup)")
    stems = notebooks or list(NOTEBOOK_ORDER)
    unknown = [k for k in overrides if k not in params.RUNNER and not any(k in params.defaults(s) for s in stems)]
    if unknown:
        valid = sorted({k for s in stems for k in params.defaults(s)} | set(params.RUNNER))
        raise ValueError(f"unknown parameter {', '.join(map(repr, unknown))}. Valid keys: {', '.join(valid)}")
    settings = runner_settings(profile, params_dir, overrides)
    run_dir = Path(out or Path("runs") / profile)
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"the run folder (--out) {run_dir} is a file, not a folder: choose a folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    plan = {s: notebook_parameters(s, profile, params_dir, data, run_dir, overrides) for s in stems}
    old = open_run_folder(run_dir, plan, fresh)
    record = RunRecord(run_dir, old, plan, {"profile": profile, "overrides": overrides, **settings,
                                            "data": "user folder" if data else "synthetic"})
    try:
        _run_notebooks(stems, plan, nb_dir, run_dir, settings["cell_timeout"], retries, record)
    except NotebookFailed as err:
        rest = stems[stems.index(err.stem):]
        err = err.with_resume(resume_command(profile, data, run_dir, overrides, given_params_dir, rest))
        record.finish("failed", str(err), err.resume)
        raise err from None
    except BaseException as err:  # an error before the notebooks, Ctrl-C, SIGTERM: the record says so
        record.finish("failed", f"{type(err).__name__}: {err}"[:500])
        raise
    record.finish("done")
    print(f"Done in {sum(record.doc['seconds'].values()):.0f} s: executed notebooks, results/ and figures/ are in "
          f"{run_dir}")
    if (run_dir / "report.html").is_file():
        print(f"Report: {run_dir / 'report.html'}")
    return run_dir


def _run_notebooks(stems, plan, nb_dir: Path, run_dir: Path, timeout: float, retries: int,
                   record: RunRecord) -> None:
    first = SimpleNamespace(**plan[stems[0]])
    if not first.data_dir:
        print(f"Synthetic cohort: {first.synth_patients} patients (seed {first.synth_seed}, "
              f"effect {first.synth_effect})")
        data_folder(first)
    for stem in stems:
        print(f"Running {stem} ({plan[stem]['profile']})", flush=True)
        for path in _notebook_outputs(run_dir, stem):
            path.unlink(missing_ok=True)
        record.notebook(stem, status="running", started=_now())
        start = time.perf_counter()
        try:
            attempts = execute_notebook(nb_dir / f"{stem}.ipynb", run_dir / f"{stem}.ipynb", plan[stem], timeout,
                                        retries, cwd=nb_dir, progress=True)
        except NotebookFailed as err:
            last = err.failures[-1]
            record.notebook(stem, status="failed", reason=last.describe(), cell=last.cell, kind=last.kind,
                            attempts=len(err.failures), seconds=round(time.perf_counter() - start, 1))
            raise
        except BaseException as err:
            record.notebook(stem, status="failed", reason=f"{type(err).__name__}: {err}"[:500],
                            seconds=round(time.perf_counter() - start, 1))
            raise
        record.notebook(stem, status="done", seconds=round(time.perf_counter() - start, 1), attempts=attempts)
