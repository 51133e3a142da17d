"""Genes -> imaging phenotypes and gene masking (issue 13, notebook 09), on the synthetic cohort's own gene table:
the programme that drives each phenotype comes out on top, above the random sets' 95th percentile; all genes kept is
the full model, none is chance."""
import numpy as np
import pandas as pd
import pytest

from radiolib import masking, synth

# the generator's links: the programme that drives each phenotype
DRIVERS = {"wash_in": "proliferation", "rim": "immune", "ER": "luminal", "HER2": "her2"}


def _cohort(gene_link: bool = True):
    """Genes and four binary phenotypes of 270 synthetic patients (no images needed), split 180 / 90."""
    patients, lesions, genes = synth.simulate_truth(270, seed=2, effect=1.5, gene_link=gene_link)
    genes = genes.set_index("patient").loc[patients.patient]
    per_patient = lesions.groupby("patient")[["wash_in", "rim"]].mean().loc[patients.patient]
    sub = patients.set_index("patient").mol_subtype
    y = pd.DataFrame({"wash_in": per_patient.wash_in > per_patient.wash_in.median(),
                      "rim": per_patient.rim > per_patient.rim.median(),
                      "ER": sub.isin([0, 1]), "HER2": sub.isin([1, 2])}, index=genes.index).astype(int)
    train, test = genes.index[:180], genes.index[180:]
    return genes.loc[train], y.loc[train], genes.loc[test], y.loc[test]


@pytest.fixture(scope="module")
def cohort():
    return _cohort()


def test_the_network_learns_every_phenotype_and_masking_finds_its_programme(cohort):
    x_train, y_train, x_test, y_test = cohort
    fitted = masking.fit_gene_net(x_train, y_train)
    train_mean = x_train.mean()
    for j, phenotype in enumerate(y_train.columns):
        def score(table, j=j):
            return fitted.predict(table)[:, j]
        scores = masking.mask_scores(score, x_test, y_test[phenotype], train_mean, synth.GENE_SETS)
        assert scores["all genes"] > 0.75, (phenotype, scores["all genes"])
        assert scores["no genes"] == 0.5  # every patient the same input: chance
        programmes = scores[list(synth.GENE_SETS)]
        assert programmes.idxmax() == DRIVERS[phenotype], (phenotype, programmes.round(3).to_dict())
        size = len(synth.GENE_SETS[DRIVERS[phenotype]])
        null = masking.mask_scores(score, x_test, y_test[phenotype], train_mean,
                                   masking.random_sets(x_train.columns, size, 40, seed=j))
        null = null.drop(["all genes", "no genes"])
        assert masking.null_percentile(programmes.max(), null) >= 0.95, (phenotype, programmes.max(),
                                                                         null.quantile(0.95))


def test_keeping_every_gene_is_the_full_model_and_masking_uses_training_means(cohort):
    x_train, y_train, x_test, _ = cohort
    fitted = masking.fit_gene_net(x_train, y_train, masking.GeneNetConfig(epochs=20, pretrain=True,
                                                                          pretrain_epochs=10))
    mean = x_train.mean()
    np.testing.assert_array_equal(fitted.predict(masking.masked(x_test, mean, list(x_test.columns))),
                                  fitted.predict(x_test))
    kept = masking.masked(x_test, mean, ["ESR1", "PGR"])
    assert (kept[["ESR1", "PGR"]] == x_test[["ESR1", "PGR"]]).all().all()
    assert (kept.drop(columns=["ESR1", "PGR"]) == mean.drop(["ESR1", "PGR"])).all().all()
    with pytest.raises(ValueError, match="genes the table does not: \\['NOTAGENE'\\]"):
        masking.masked(x_test, mean, ["ESR1", "NOTAGENE"])


def test_the_fit_is_reproducible_and_the_autoencoder_start_differs(cohort):
    x_train, y_train, x_test, _ = cohort
    cfg = masking.GeneNetConfig(epochs=10)
    a, b = masking.fit_gene_net(x_train, y_train, cfg), masking.fit_gene_net(x_train, y_train, cfg)
    np.testing.assert_array_equal(a.predict(x_test), b.predict(x_test))
    pre = masking.fit_gene_net(x_train, y_train, masking.GeneNetConfig(epochs=10, pretrain=True, pretrain_epochs=20))
    assert not np.allclose(pre.predict(x_test), a.predict(x_test))


def test_with_the_gene_link_broken_the_genes_predict_nothing():
    x_train, y_train, x_test, y_test = _cohort(gene_link=False)
    fitted = masking.fit_gene_net(x_train, y_train)
    for j, phenotype in enumerate(y_train.columns):
        scores = masking.mask_scores(lambda table, j=j: fitted.predict(table)[:, j], x_test, y_test[phenotype],
                                     x_train.mean(), synth.GENE_SETS)
        assert 0.3 < scores["all genes"] < 0.7, (phenotype, scores["all genes"])  # measured: 0.47 to 0.55
        assert scores[list(synth.GENE_SETS)].max() < 0.75, (phenotype, scores.round(2).to_dict())
