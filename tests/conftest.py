"""Shared fixtures: small synthetic cohorts and the tiny whole study (Duke layout), made once per test
session; a scratch cache and run folder for the whole session; and a check that the session wrote nothing in
~/.cache/radiolib or the work tree."""
import atexit
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REPO = Path(__file__).resolve().parents[1]
USER_CACHE = Path.home() / ".cache" / "radiolib"
NOT_OURS = {".venv", ".git", "__pycache__", ".pytest_cache"}  # Python's and pytest's own files, the environment

# Set at import, before nbval starts the notebooks' kernels (they inherit the environment): caches and the
# notebooks' interactive run folder go to a scratch folder, removed at exit. A test may still set its own.
_SCRATCH = Path(tempfile.mkdtemp(prefix="radiolib-tests-"))
os.environ["RADIOLIB_CACHE"] = str(_SCRATCH / "cache")
os.environ["RADIOLIB_RUN_DIR"] = str(_SCRATCH / "runs")
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)

# Under pytest-xdist (`make test` runs one worker per core) each worker, and the notebook kernels it starts, takes
# its share of the cores: workers x threads no more than the machine has (oversubscribed OpenMP threads spin).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _threads = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = _threads
    import torch
    torch.set_num_threads(int(_threads))


# Modules of few but long tests: handed out first (xdist orders scopes by their number of tests, which put a
# single four-minute test last, alone, on one worker while the other sat idle)
LONG_FIRST = ("tests/test_external_planted.py", "tests/test_in_cohort.py")


def pytest_xdist_make_scheduler(config, log):
    """`make test` under pytest-xdist: a test module's tests on one worker (its module fixtures made once), the
    notebooks all on one worker, in order, as nbval runs them without xdist (06 reads what 01-05 wrote); the
    LONG_FIRST modules before the rest."""
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndNotebooks(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "notebooks" if nodeid.startswith("notebooks/") else super()._split_scope(nodeid)

        def _assign_work_unit(self, node) -> None:
            for scope in reversed(LONG_FIRST):
                if scope in self.workqueue:
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)
    return ModulesAndNotebooks(config, log)


def _files(root: Path):
    """Files under root (root itself if a file), skipping NOT_OURS folders."""
    if root.is_file() or root.is_symlink():
        yield root
        return
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in NOT_OURS]
        yield from (Path(folder) / n for n in names)


def _footprint() -> dict[str, tuple]:
    """(size, mtime) of every file in ~/.cache/radiolib and every file git reports in the work tree (modified,
    untracked or ignored: runs/ too)."""
    paths = list(_files(USER_CACHE)) if USER_CACHE.exists() else []
    try:
        out = subprocess.run(["git", "status", "--porcelain", "-z", "--ignored=matching", "--untracked-files=all"],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: the cache alone
        out = ""
    for entry in filter(None, out.split("\0")):
        path = REPO / entry[3:]
        if not NOT_OURS.intersection(Path(entry[3:]).parts) and path.exists():
            paths += _files(path)
    footprint = {}
    for p in paths:
        st = p.lstat()
        footprint[str(p)] = (st.st_size, st.st_mtime_ns)
    return footprint


@pytest.fixture(scope="session", autouse=True)
def leaves_no_trace():
    """Fails the session (an error at the last test's teardown) naming what it wrote outside temporary folders."""
    before = _footprint()
    yield
    after = _footprint()
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    assert not changed, f"the tests wrote outside temporary folders ({len(changed)} paths): {changed[:20]}"


@pytest.fixture(scope="session")
def faulty_cohort(tmp_path_factory) -> Path:
    """14 patients, every fault injected once (on the last six), few slices: fast to read."""
    from radiolib.data.synth import FAULTS, synthesize
    return synthesize(tmp_path_factory.mktemp("cohort") / "faulty", patients=14, seed=3, effect=1.0,
                      faults=list(FAULTS), progress=False, _max_slices=16)


@pytest.fixture(scope="session")
def faulty_lgg(tmp_path_factory) -> Path:
    """An LGG (kaggle_3m) cohort: 8 patients of 128x128 slices, with the three injected faults."""
    from radiolib.data.synth.lgg import synthesize_lgg
    return synthesize_lgg(tmp_path_factory.mktemp("lgg") / "faulty", patients=8, seed=3, faults=True, size=128)


@pytest.fixture(scope="session")
def patch_set(faulty_cohort, tmp_path_factory):
    from radiolib.data.dataset import build_patch_set
    return build_patch_set(faulty_cohort, [80, 120], 4, 0, tmp_path_factory.mktemp("cache"), progress=False)


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory):
    """The tiny profile's whole study (01 to 06) on the synthetic Duke cohort, run once through the CLI.
    A namespace: home (the folder), run (its output folder), cache, params (the profile folder), output (printed)."""
    import studies
    from filelock import FileLock
    if _WORKERS == 1:
        home = tmp_path_factory.mktemp("tiny")
    else:  # one study for all workers: the first to get here runs it, the others wait for it and read it
        home = tmp_path_factory.getbasetemp().parent / "tiny"
    with FileLock(str(home) + ".lock"):
        done = home / "output.txt"
        if not done.exists():
            profiles = studies.tiny_profile(home / "params")
            done.write_text(studies.run(home / "run", home / "cache", profiles))
    profiles = home / "params"
    return SimpleNamespace(home=home, run=home / "run", cache=home / "cache", params=profiles, output=done.read_text())

