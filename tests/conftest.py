"""Shared fixtures: small synthetic cohorts, made once per test session."""
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def faulty_cohort(tmp_path_factory) -> Path:
    """14 patients, every fault injected once (on the last six), few slices: fast to read."""
    from radiolib.synth import FAULTS, synthesize
    return synthesize(tmp_path_factory.mktemp("cohort") / "faulty", patients=14, seed=3, effect=1.0,
                      faults=list(FAULTS), progress=False, _max_slices=16)


@pytest.fixture(scope="session")
def patch_set(faulty_cohort, tmp_path_factory):
    from radiolib.dataset import build_patch_set
    return build_patch_set(faulty_cohort, [80, 120], 4, 0, tmp_path_factory.mktemp("cache"), progress=False)
