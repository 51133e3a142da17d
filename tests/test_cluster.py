"""The cluster path of the README: joblib's Dask backend spreads a cross-validation's folds over a `distributed`
cluster with no change to the code, and gives the results of an in-process run."""
import re

import joblib
import numpy as np
import pandas as pd
import pytest
from dask.distributed import Client, LocalCluster, get_task_stream  # the `test` extra: pip install -e '.[test]'

from radiolib.learn.features import cross_validate_svm
from radiolib.stats import evaluation as ev


def _features(n_patients: int = 24, per_patient: int = 6, dim: int = 16):
    """Random patch features with a weak label signal; every patient has train and test patches."""
    rng = np.random.default_rng(0)
    patients = [f"P{i:03d}" for i in range(n_patients)]
    labels = np.arange(n_patients) % 2
    index = pd.DataFrame({"patient": np.repeat(patients, per_patient),
                          "label": np.repeat(labels, per_patient),
                          "role": np.tile(["train"] * (per_patient - 2) + ["test"] * 2, n_patients)})
    feats = rng.normal(size=(len(index), dim)) + 0.5 * index.label.to_numpy()[:, None]
    folds = ev.patient_folds(patients, labels, n_folds=3, repeats=2, seed=0)
    return feats, index, folds


def _summary(result):
    return [(r["repeat"], r["fold"], r["test_patients"], r["auc"], r["train_auc"]) for r in result.folds]


@pytest.mark.slow
def test_the_readme_cluster_snippet_runs_the_folds_on_two_workers_with_in_process_results(tmp_path):
    feats, index, folds = _features()
    kwargs = dict(kernel="linear", max_train=None, progress=False, n_boot=200)
    alone = cross_validate_svm(feats, index, folds, n_jobs=1, **kwargs)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, local_directory=str(tmp_path)) as cluster:
        # The README's snippet, with a local cluster for the scheduler's address:
        with Client(cluster) as client:
            with get_task_stream(client) as stream, joblib.parallel_config(backend="dask"):
                spread = cross_validate_svm(feats, index, folds, n_jobs=-1, **kwargs)
            with get_task_stream(client) as stream_one, joblib.parallel_config(backend="dask"):
                one = cross_validate_svm(feats, index, folds, n_jobs=1, **kwargs)  # the backend ignores n_jobs
            workers = set(client.scheduler_info()["workers"])
    assert _summary(spread) == _summary(alone)
    assert spread.test_auc == alone.test_auc and spread.ci95 == alone.ci95
    assert spread.oof_scores.equals(alone.oof_scores)
    assert len(workers) == 2
    # every fold ran as a task on a worker of the cluster (joblib names a task `batch_of__run_fold_<k>_calls`)
    calls = [int(re.search(r"batch_of__run_fold_(\d+)_calls", t["key"]).group(1)) for t in stream.data]
    assert sum(calls) == len(folds) and {t["worker"] for t in stream.data} <= workers
    assert _summary(one) == _summary(alone) and len(stream_one.data) > 0  # as the README says: on the cluster too
