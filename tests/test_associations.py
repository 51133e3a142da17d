"""Imaging features against genomic factors (issue 13, notebook 08): the vectorised OLS is statsmodels' OLS, the mixed
model has a random intercept per patient, planted associations are found and a null keeps FDR at its level."""
import numpy as np
import pandas as pd
import pytest

from radiolib import associations


def _patients(n=100, features=40, factors=10, driven=10, effect=0.6, seed=0):
    """Factors per patient; the first `driven` features follow factor "f0" (slope `effect`), the rest are noise."""
    rng = np.random.default_rng(seed)
    ids = [f"P{i:03d}" for i in range(n)]
    g = pd.DataFrame(rng.normal(size=(n, factors)), index=ids, columns=[f"f{k}" for k in range(factors)])
    x = pd.DataFrame(rng.normal(size=(n, features)), index=ids, columns=[f"x{j}" for j in range(features)])
    x.iloc[:, :driven] += effect * g[["f0"]].to_numpy()
    return x, g


def test_the_vectorised_ols_is_statsmodels_ols():
    import statsmodels.api as sm
    x, g = _patients(n=50, features=4, factors=3)
    table = associations.ols(x, g).set_index(["feature", "factor"])
    z = lambda s: (s - s.mean()) / s.std(ddof=1)  # noqa: E731
    for f, k in [("x0", "f0"), ("x3", "f2"), ("x1", "f1")]:
        fit = sm.OLS(z(x[f]).to_numpy(), sm.add_constant(z(g[k]).to_numpy())).fit()
        assert table.loc[(f, k), "slope"] == pytest.approx(fit.params[1], abs=1e-10)
        assert table.loc[(f, k), "t"] == pytest.approx(fit.tvalues[1], rel=1e-8)
        assert table.loc[(f, k), "p"] == pytest.approx(fit.pvalues[1], rel=1e-6, abs=1e-300)
    assert len(table) == 12 and (table.n == 50).all()


def test_planted_associations_are_found_and_the_false_discovery_rate_is_held():
    recall, fdp = [], []
    for seed in range(20):  # BH holds the *expected* share of false discoveries: averaged over cohorts
        x, g = _patients(seed=seed)
        table = associations.ols(x, g)
        hits = table[table.q < 0.05]
        planted = hits.feature.isin([f"x{j}" for j in range(10)]) & (hits.factor == "f0")
        recall.append(planted.sum() / 10)
        fdp.append((~planted).sum() / max(len(hits), 1))
        if seed == 0:
            assert associations.counts(table).idxmax() == "f0"
    assert np.mean(recall) > 0.8 and np.mean(fdp) <= 0.08, (np.mean(recall), np.mean(fdp))


def test_a_null_keeps_the_nominal_rates():
    x, g = _patients(effect=0.0, seed=1)
    table = associations.ols(x, g)
    assert 0.02 <= (table.p < 0.05).mean() <= 0.09  # 400 null pairs: about 5% nominally significant
    assert (table.q < 0.05).sum() <= 2  # and next to none after FDR


def test_the_mixed_model_uses_a_random_intercept_per_patient():
    rng = np.random.default_rng(2)
    x, g = _patients(n=60, features=2, factors=2, driven=1, effect=0.8, seed=2)
    slices = 4
    patients = np.repeat(x.index, slices)
    rows = pd.DataFrame(np.repeat(x.to_numpy(), slices, axis=0) + 0.5 * rng.normal(size=(60 * slices, 2)),
                        columns=x.columns)
    table = associations.associations(rows, g, patients).set_index(["feature", "factor"])
    assert len(table) == 4 and (table.n == 60).all()
    means = rows.groupby(patients).mean()
    reference = associations.ols(means, g).set_index(["feature", "factor"])
    assert table.loc[("x0", "f0"), "p"] < 1e-4
    assert table.loc[("x0", "f0"), "slope"] == pytest.approx(reference.loc[("x0", "f0"), "slope"], abs=0.15)
    assert table.loc[("x1", "f1"), "p"] > 0.01
    # as many rows as slices, yet the test has the power of 60 patients, not 240 rows: t close to the means' t
    assert abs(table.loc[("x0", "f0"), "t"]) == pytest.approx(abs(reference.loc[("x0", "f0"), "t"]), rel=0.35)


def test_too_few_patients_are_named():
    x, g = _patients(n=3, features=2, factors=2)
    with pytest.raises(ValueError, match="only 3 patients have both"):
        associations.ols(x, g)
