"""Seconds of notebook 07's image-level LASSO (Liu & Hu's protocol, `receptors.paper`: one L1 logistic regression per
C of the grid on the 70% of the slices) for one target, today's path against the pipeline-per-C path it replaced, on
a synthetic slice table of the demo's shape (about 4,000 slices x 4,096 features of 264 patients; `--half`: 2,000 x
2,048 of 132) with a planted signal in 5 features. Prints CPU and wall seconds and the largest differences of the
per-C AUCs and non-zero counts. `--saga` also times scikit-learn's warm-started saga path (its only other L1 solver)
on the same split, for comparison (not used by radiolib). The demo's own DRFs are harder than this table: about
67 s CPU per target on 1 thread (3,767 x 4,096), 62 s of it at C >= 1; on 2026-12-07, 20-25 s per target or
permuted null (T, ER, a null: 7 C values, 2,636 training slices; 17-20 s of it at C >= 1). Other L1 solvers with warm
starts were slower on the demo's own T split, with liblinear's objective (the intercept a penalised feature): glum
3.4 (IRLS with coordinate descent) 31-34 s per C up to C = 0.1 and 106 s at 0.316; celer 0.7.4 (working sets)
0.6-5 s up to 0.1 and 112 s at 0.316 (liblinear: 0.6-1 s each). A sequential strong rule keeps every feature on this
grid (ratio 3.16 between Cs), and liblinear's own solution leaves the KKT conditions violated by up to 14% at C = 10,
so an exact screen could not reproduce its numbers either.

BLAS runs on 1 thread (threadpoolctl), so that the figures do not depend on what else runs on the machine's cores.
Run: `python benchmarks/bench_receptors.py [--half] [--saga] [--seed 0]`.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from radiolib.stats import receptors


def slices(patients: int, per_patient: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(slice features, slice labels, slice patients): collinear features, as a network's are (20 factors that vary
    by patient and by slice, plus a little noise of each feature), 5 features shifted by 0.3 in the positive
    patients: a weak target, where the weak penalties keep many features and take the time."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, patients)
    n = patients * per_patient
    factors = np.repeat(rng.normal(size=(patients, 20)), per_patient, axis=0) + rng.normal(size=(n, 20))
    own = np.repeat(rng.normal(size=(patients, features)), per_patient, axis=0) + rng.normal(size=(n, features))
    x = factors @ rng.normal(size=(20, features)) / np.sqrt(20) + 0.3 * own
    x[:, :5] += 0.3 * np.repeat(y, per_patient)[:, None]
    ids = np.repeat([f"P{i:03d}" for i in range(patients)], per_patient)
    return x, np.repeat(y, per_patient), ids


def old_paper(x: np.ndarray, y: np.ndarray, seed: int = 0) -> list[dict]:
    """Today's path before the change: one `lasso` pipeline (scaler and liblinear) fitted per C."""
    train, test = train_test_split(np.arange(len(y)), test_size=receptors.PAPER_TEST_SIZE, stratify=y,
                                   random_state=seed)
    out = []
    for C in receptors.C_GRID:
        model = receptors.lasso(C, seed).fit(x[train], y[train])
        out.append({"C": C, "nonzero": receptors.nonzero(model),
                    "auc": float(roc_auc_score(y[test], model.decision_function(x[test])))})
    return out


def saga_path(x: np.ndarray, y: np.ndarray, seed: int = 0) -> list[dict]:
    """scikit-learn's saga with warm starts along the increasing-C grid (its default tolerance; not liblinear's
    objective: saga leaves the intercept unpenalised)."""
    train, test = train_test_split(np.arange(len(y)), test_size=receptors.PAPER_TEST_SIZE, stratify=y,
                                   random_state=seed)
    scaler = StandardScaler().fit(x[train])
    xtr, xte = scaler.transform(x[train]), scaler.transform(x[test])
    model = LogisticRegression(**receptors._l1(), solver="saga", warm_start=True, max_iter=1000, random_state=seed)
    out = []
    for C in receptors.C_GRID:
        model.set_params(C=C).fit(xtr, y[train])
        out.append({"C": C, "nonzero": int(np.count_nonzero(model.coef_)),
                    "auc": float(roc_auc_score(y[test], model.decision_function(xte)))})
    return out


def timed(fn, *args) -> tuple[list[dict], float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn(*args)
    return out, time.process_time() - cpu, time.perf_counter() - wall


def differences(a: list[dict], b: list[dict]) -> str:
    auc = max(abs(r["auc"] - s["auc"]) for r, s in zip(a, b))
    nz = max(abs(r["nonzero"] - s["nonzero"]) for r, s in zip(a, b))
    best = [max(rows, key=lambda r: r["auc"])["C"] for rows in (a, b)]
    return f"max |AUC difference| {auc:.2e}, max |non-zero difference| {nz}, chosen C {best[0]:g} vs {best[1]:g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--half", action="store_true", help="2,000 slices x 2,048 features of 132 patients")
    ap.add_argument("--saga", action="store_true", help="also time the warm-started saga path")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    patients, features = (132, 2048) if args.half else (264, 4096)
    x, y, ids = slices(patients, 15, features, args.seed)
    print(f"{len(y)} slices x {features} features, {patients} patients, C grid {len(receptors.C_GRID)}, 1 BLAS thread")
    warnings.simplefilter("ignore", ConvergenceWarning)
    with threadpool_limits(1):
        old, old_cpu, old_wall = timed(old_paper, x, y, args.seed)
        new, new_cpu, new_wall = timed(lambda: receptors.paper(x, y, ids, args.seed)["per_C"])
        print(f"old (pipeline per C): {old_cpu:.1f} s CPU, {old_wall:.1f} s wall")
        print(f"new (receptors.paper): {new_cpu:.1f} s CPU, {new_wall:.1f} s wall; {differences(old, new)}")
        if args.saga:
            saga, cpu, wall = timed(saga_path, x, y, args.seed)
            print(f"saga, warm-started: {cpu:.1f} s CPU, {wall:.1f} s wall; against old: {differences(old, saga)}")
    for r, s in zip(old, new):
        print(f"  C {r['C']:.3g}: non-zero {r['nonzero']} / {s['nonzero']}, AUC {r['auc']:.4f} / {s['auc']:.4f}")


if __name__ == "__main__":
    main()
