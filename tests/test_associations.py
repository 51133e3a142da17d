"""Imaging features against genomic factors (issue 13, notebook 08): the vectorised OLS is statsmodels' OLS, the mixed
model has a random intercept per patient, planted associations are found and a null keeps FDR at its level; the
permutation null of the counts is many draws and calibrated, and the mixed check samples pairs at random (issue 24)."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from radiolib.data.synth import GENE_SETS
from radiolib.learn import dae
from radiolib.stats import associations
from radiolib.steps import radiogenomics as rg


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


# --- the permutation null of the counts and the mixed check (issue 24) ------------------------------------------

GENES = list(GENE_SETS["proliferation"][:6]) + list(GENE_SETS["immune"][:6])  # two programmes of 6 genes


def _study(effect=0.6, seed=0, n=80, slices=2, mixed_pairs=0, permutations=20, link=True):
    """`rg.association_study` on `_patients` tables: the 12 factors named as genes of two of the generator's
    programmes (so programme scores are formed too), the features driven by the first gene ("MKI67") repeated over
    `slices` slices with noise, as DRFs and (other noise) as CRFs; `link=False` deals the genes to other patients."""
    x, g = _patients(n=n, features=30, factors=len(GENES), driven=10, effect=effect, seed=seed)
    genes = g.set_axis(GENES, axis=1).rename_axis("patient")
    if not link:
        genes = rg.permuted(genes, seed + 1000)
    rng = np.random.default_rng(seed + 1)
    rows = np.repeat(x.to_numpy(), slices, axis=0)
    meta = pd.DataFrame({"patient": np.repeat(x.index.to_numpy(), slices)})
    drf = (rows + 0.3 * rng.normal(size=rows.shape)).astype(np.float32)
    crf = pd.DataFrame(rows + 0.3 * rng.normal(size=rows.shape), columns=[f"crf{j}" for j in range(x.shape[1])])
    feats = rg.ImageFeatures(meta, drf, crf, [0.1], {}, dae.DaeConfig(), {})
    P = SimpleNamespace(seed=0, fdr_alpha=0.05, mixed_pairs=mixed_pairs, gene_permutations=permutations)
    return rg.association_study(feats, genes, P)


def test_the_null_is_many_permutations_with_its_median_and_95th_percentile_beside_the_observed_counts():
    study = _study()
    null, draws = study.null_counts, study.null_draws
    assert list(null.index) == ["DRF", "CRF"] and (null.permutations == 20).all()
    for kind in null.index:
        mine = draws[draws.features == kind]
        assert len(mine) == 20 and mine["nominal p < alpha"].nunique() > 3  # 20 different orders, not one 20 times
        for count in ("significant", "nominal p < alpha"):
            assert null.loc[kind, f"{count} median"] == mine[count].median()
            assert null.loc[kind, f"{count} 95th pct"] == pytest.approx(mine[count].quantile(0.95))
        observed = study.tables[kind]
        assert null.loc[kind, "observed significant"] == (observed.q < 0.05).sum() >= 10
        # the planted pairs stand far above every permutation: the smallest permutation p there is, 1 / 21
        assert null.loc[kind, "observed significant"] > null.loc[kind, "significant 95th pct"]
        assert null.loc[kind, "permutation p (significant)"] == pytest.approx(1 / 21)


def test_on_a_null_cohort_the_observed_counts_fall_within_the_null_distribution():
    study = _study(link=False)  # the same genes dealt to other patients
    null = study.null_counts
    for kind in null.index:
        for count in ("significant", "nominal p < alpha"):
            assert null.loc[kind, f"observed {count}"] <= null.loc[kind, f"{count} 95th pct"], null.T
            assert null.loc[kind, f"permutation p ({count})"] > 0.05, null.T


def test_the_null_counts_pairs_as_the_ols_table_does():
    """The null's shortcut (p only where |r| could reach alpha, BH as the largest rank below its line) counts what
    statsmodels' BH on every p of `ols` counts, on planted and null tables, and on the permuted gene table."""
    for seed in range(12):
        x, g = _patients(n=60, features=40, factors=10, effect=0.6 if seed % 2 else 0.0, seed=seed)
        table = associations.ols(x, g)
        xs, gs = associations._prepared(x, g)
        counts = associations._pair_counts(associations._correlations(xs, gs.to_numpy()), len(xs), 0.05)
        assert counts == ((table.q < 0.05).sum(), (table.p < 0.05).sum()) and (seed % 2 == 0 or counts[0] >= 3)
    null = associations.permutation_null(x, g, 1, 0.05, seed=3)
    shuffled = associations.ols(x, rg.permuted(g, 3))  # the null's first order is `permuted`'s at the same seed
    assert null.iloc[0].tolist() == [(shuffled.q < 0.05).sum(), (shuffled.p < 0.05).sum()]


def test_the_permutation_null_is_calibrated_and_finds_planted_associations():
    alpha, cohorts, rejected, draws, planted = 0.05, 150, 0, [], []
    margin = lambda k: 3 * np.sqrt(alpha * (1 - alpha) / k)  # noqa: E731 - three Monte Carlo standard errors
    for seed in range(cohorts):
        x, g = _patients(n=40, features=20, factors=6, effect=0.0, seed=seed)
        draws.append(associations.permutation_null(x, g, 20, alpha, seed))
        summary = associations.null_summary(associations.ols(x, g), draws[-1], alpha)
        rejected += summary["permutation p (nominal p < alpha)"] <= alpha
        if seed < 10:
            x1, g1 = _patients(n=40, features=20, factors=6, driven=5, effect=0.8, seed=seed)
            t1 = associations.ols(x1, g1)
            found = associations.null_summary(t1, associations.permutation_null(x1, g1, 20, alpha, seed), alpha)
            planted.append(found["permutation p (significant)"] <= alpha)
    draws = pd.concat(draws)
    tests = 120 * len(draws)  # 20 features x 6 factors per permutation
    # per pair, false-positive at nominal alpha; after FDR, no discovery in all but about alpha of the permutations
    assert draws["nominal p < alpha"].sum() / tests <= alpha + margin(tests)
    assert (draws.significant > 0).mean() <= alpha + margin(len(draws)), draws.significant.value_counts()
    # the observed count of a null cohort against its own permutations: rejected in at most alpha of the cohorts
    assert rejected / cohorts <= alpha + margin(cohorts) / 3, rejected  # (one standard error: 150 cohorts)
    assert all(planted), planted  # and every planted cohort found


def test_the_mixed_check_samples_significant_pairs_and_all_pairs_at_random_not_the_smallest_p():
    study = _study(slices=3, mixed_pairs=3)
    check = study.mixed_check
    assert set(check["sample"]) == {"FDR-significant", "all pairs"}
    for kind, table in study.tables.items():
        mine = check[check.features == kind]
        sig, every = mine[mine["sample"] == "FDR-significant"], mine[mine["sample"] == "all pairs"]
        assert len(sig) == len(every) == 3 and (sig["q (OLS)"] < 0.05).all()
        assert (table.q < 0.05).sum() > 10  # many to draw from: the three smallest p would be one choice of many
        smallest = set(table.nsmallest(3, "p").set_index(["feature", "factor"]).index)
        assert set(sig.set_index(["feature", "factor"]).index) != smallest
        assert (every["q (OLS)"] >= 0.05).any()  # all pairs: mostly null pairs here
    agreement = study.mixed_agreement().set_index(["features", "sample"])
    assert len(agreement) == 4 and (agreement.pairs == 3).all()
    assert (agreement.xs("FDR-significant", level="sample")["same sign"] == 1).all()
