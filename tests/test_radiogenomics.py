"""Notebooks 07-09's library entry points (radiolib.steps.radiogenomics) on feature tables made from the synthetic
cohort's ground truth (no images: the DAE and pyradiomics have their own tests), planted and null."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_receptors import null_auc_sd

from radiolib.data import synth
from radiolib.learn import dae
from radiolib.run import results
from radiolib.steps import radiogenomics as rg


def _features(n: int, seed: int = 2, effect: float = 1.5, gene_link: bool = True, slices: int = 3):
    """ImageFeatures whose CRFs hold each patient's true wash-in and rim (plus slice noise) and 20 noise columns, and
    whose DRFs are 30 noise columns (each patient's own, plus slice noise) and a noisy copy of wash-in; the genes and
    clinical labels of the same patients."""
    patients, lesions, genes = synth.simulate_truth(n, seed=seed, effect=effect, gene_link=gene_link)
    rng = np.random.default_rng(seed)
    kin = lesions.groupby("patient")[["wash_in", "rim"]].mean().loc[patients.patient]
    meta = pd.DataFrame({"patient": np.repeat(patients.patient.to_numpy(), slices)})
    k = len(meta)
    crf = pd.DataFrame({"wash": np.repeat(kin.wash_in.to_numpy(), slices) + 0.05 * rng.standard_normal(k),
                        "rim": np.repeat(kin.rim.to_numpy(), slices) + 0.05 * rng.standard_normal(k),
                        **{f"noise{i}": rng.standard_normal(k) for i in range(20)}})
    own = np.repeat(rng.standard_normal((n, 30)), slices, axis=0)  # a patient's slices look alike, as in images
    drf = np.column_stack([own + 0.3 * rng.standard_normal((k, 30)), crf.wash + 0.1 * rng.standard_normal(k)])
    drf = drf.astype(np.float32)
    feats = rg.ImageFeatures(meta, drf, crf, [0.1], {}, dae.DaeConfig(), {})
    sub = patients.set_index("patient").mol_subtype
    labels = pd.DataFrame({"ER": sub.isin([0, 1]), "HER2": sub.isin([1, 2])}).astype(float)
    labels.index = labels.index.astype(str)
    return feats, genes.set_index("patient").rename_axis("patient"), labels


class _P:
    n_folds, repeats, n_boot, seed, fdr_alpha, mixed_pairs, n_jobs, gene_permutations = 3, 1, 200, 0, 0.05, 2, 1, 20
    gene_epochs, gene_pretrain, random_sets = 60, False, 20


def test_associations_find_the_planted_programmes_and_a_broken_gene_link_finds_none():
    feats, genes, _ = _features(150)
    study = rg.association_study(feats, genes, _P())
    crf = study.tables["CRF"].set_index(["feature", "factor"])
    assert crf.loc[("wash", "proliferation"), "q"] < 0.05 and crf.loc[("rim", "immune"), "q"] < 0.05
    assert crf.loc[[(f"noise{i}", "proliferation") for i in range(20)], "q"].min() > 0.05
    assert study.counts().loc["DRF", "proliferation"] >= 1  # the noisy copy of wash-in
    check = study.mixed_check.groupby("sample")  # random FDR-significant pairs: significant over the slices too
    assert (check.size() == 2 * _P.mixed_pairs).all() and (check.get_group("FDR-significant")["p (mixed)"] < 0.05).all()
    # the generator's switch: the same profiles dealt to other patients
    feats0, genes0, _ = _features(150, gene_link=False)
    null = rg.association_study(feats0, genes0, _P())
    programmes = {k: t[t.factor.isin(null.programmes)] for k, t in null.tables.items()}
    assert all((t.q < 0.05).sum() <= 1 for t in programmes.values()), null.counts()
    nominal = null.null_counts["nominal p < alpha"] / null.null_counts["pairs"]
    assert nominal.between(0.02, 0.09).all(), nominal  # the permuted gene table: p uniform, ~5% below 0.05


def _recording_fits(monkeypatch) -> list[dict]:
    """Spies on the gene networks `masking_study` fits: per fit its training patients' gene means and how many of
    the rows it was asked to score had every gene at those means."""
    from radiolib.stats import masking
    fits, fit = [], masking.fit_gene_net

    def recording(x, y, cfg):
        fitted, seen = fit(x, y, cfg), {"mean": x.mean().to_numpy(float), "at mean": 0}
        predict = fitted.predict

        def counting(table):
            seen["at mean"] += int(np.isclose(np.asarray(table, float), seen["mean"]).all(axis=1).sum())
            return predict(table)
        fitted.predict = counting
        fits.append(seen)
        return fitted
    monkeypatch.setattr(masking, "fit_gene_net", recording)
    return fits


@pytest.mark.slow
def test_gene_masking_puts_each_driver_on_top_and_the_model_table_has_every_model(monkeypatch):
    fits = _recording_fits(monkeypatch)
    feats, genes, labels = _features(180)
    pheno = rg.phenotypes(feats, labels, None)
    kin = feats.per_patient("CRF")
    pheno["wash_in (truth)"] = (kin.wash > kin.wash.median()).astype(float)
    pheno["rim (truth)"] = (kin.rim > kin.rim.median()).astype(float)
    study = rg.masking_study(genes, pheno[["ER", "HER2", "wash_in (truth)", "rim (truth)"]], _P(), progress=False)
    top = study.summary.set_index("phenotype")
    drivers = {"ER": "luminal", "HER2": "her2", "wash_in (truth)": "proliferation", "rim (truth)": "immune"}
    assert top["best programme"].to_dict() == drivers
    assert (top["share of random sets below"] >= 0.95).all(), top
    # "all genes" is the unmasked network: its AUC is the one the model table computes from the network's logits
    net = study.aucs[study.aucs.model == "gene network"].set_index("phenotype")["test AUC"]
    assert top["all genes"].to_dict() == pytest.approx(net.loc[top.index].to_dict(), abs=2e-3), (top, net)
    # "no genes" scores every test patient on its fold's training means (one input, one score: AUC 1/2)
    assert len(fits) == len(study.folds) and (top["no genes"] == 0.5).all()
    assert all(f["at mean"] >= study.patients - len(s["train_patients"]) for f, s in zip(fits, study.folds)), fits
    assert set(study.table().columns) == set(rg.MODELS) and study.table().loc["ER"].min() > 0.7


def test_the_receptor_study_writes_valid_rows_finds_a_planted_target_and_the_paper_split_inflates_a_null():
    feats, _, labels = _features(60, effect=0.0)
    wash = feats.per_patient("CRF").wash.loc[labels.index]
    labels = labels[["ER"]].assign(**{"wash_in high": (wash > wash.median()).astype(float)})  # the DRFs' noisy copy
    study = rg.receptor_study(feats, labels, _P(), progress=False)
    results.validate_rows(study.rows)
    assert {(r["target"], r["features"]) for r in study.rows} == {(t, k) for t in labels for k in rg.KINDS}
    assert set(study.paths.protocol) == {"nested", "paper"}
    assert list(study.comparisons.columns[-2:]) == ["p", "p (Holm)"]
    row = {(r["target"], r["features"]): r for r in study.rows}
    # ER is linked to wash-in only through the subtype, and the effect is 0: no signal at patient level
    assert row["ER", "DRF"]["ci95"][0] < 0.5 < row["ER", "DRF"]["ci95"][1], row["ER", "DRF"]
    # ER's labels permuted among the patients: our AUCs centre on 1/2, their mean within 3 standard deviations
    null = study.null
    sd = null_auc_sd(labels.ER.dropna(), _P.n_folds) / np.sqrt(len(null))
    assert len(null) >= 5 and abs(null["ours (patient folds)"].mean() - 0.5) < 3 * sd, (null, sd)
    assert row["wash_in high", "DRF"]["ci95"][0] > 0.75 and row["wash_in high", "CRF"]["ci95"][0] > 0.75
    assert null["paper's protocol"].mean() > null["ours (patient folds)"].mean() + 0.1, null


def test_a_gene_table_must_be_numbers_with_one_row_per_patient(tmp_path):
    path = tmp_path / "genes.csv"
    path.write_text("patient,ESR1,PGR\nBreast_MRI_001,1.0,2.0\nBreast_MRI_002,x,1\n")
    with pytest.raises(ValueError, match=r"genes.csv: gene column\(s\) \['ESR1'\] are not numbers"):
        rg.read_genes(path, ["Breast_MRI_001"])
    path.write_text("patient,ESR1\nBreast_MRI_001,1.0\nBreast_MRI_001,2.0\n")
    with pytest.raises(ValueError, match="repeated patient"):
        rg.read_genes(path, ["Breast_MRI_001"])
    path.write_text("patient,ESR1\nBreast_MRI_001,1.0\n")
    table, lacking = rg.read_genes(path, ["Breast_MRI_001", "Breast_MRI_002"])
    assert list(table.index) == ["Breast_MRI_001"] and lacking == ["Breast_MRI_002"]



def test_a_real_download_without_a_gene_table_gives_08_and_09_a_reason_and_a_users_table_is_read(tmp_path):
    """A Duke download has no gene table: 08 and 09 skip, saying which parameter to set; the synthetic cohort's own
    table is found beside its clinical file; the user's `gene_table` wins over both, and a wrong path is named."""
    from types import SimpleNamespace
    (tmp_path / rg.GENE_FILE).write_text("patient,ESR1\nBreast_MRI_001,1.0\n")
    real = SimpleNamespace(gene_table=None, data_dir=str(tmp_path))
    path, why = rg.gene_path(real, tmp_path)
    assert path is None and "set the parameter gene_table" in why
    assert rg.gene_path(SimpleNamespace(gene_table=None, data_dir=None), tmp_path) == (tmp_path / rg.GENE_FILE, None)
    own = tmp_path / "mine.csv"
    own.write_text("patient,ESR1\nBreast_MRI_001,2.0\n")
    assert rg.gene_path(SimpleNamespace(gene_table=str(own), data_dir=str(tmp_path)), tmp_path) == (own, None)
    path, why = rg.gene_path(SimpleNamespace(gene_table=str(tmp_path / "missing.csv"), data_dir=None), tmp_path)
    assert path is None and "missing.csv" in why and "is not a file" in why


DUKE = Path(__file__).resolve().parents[2] / "shared" / "data" / "duke"


@pytest.mark.skipif(not (DUKE / "Clinical_and_Other_Features.xlsx").is_file(),
                    reason="the real Duke clinical table is not beside the project (../shared/data/duke)")
def test_notebook_07_reads_its_targets_from_the_real_duke_clinical_table():
    patients = [f"Breast_MRI_{i:03d}" for i in range(1, 923)]
    labels, reasons = rg.clinical_labels(DUKE, patients, ["T", "N", "ER", "PR", "HER2"])
    assert list(labels.index) == patients
    # the counts of the public file (tests/test_targets.py reads the same columns)
    assert labels.notna().sum().to_dict() == {"T": 916, "N": 898, "ER": 922, "PR": 922, "HER2": 922}
    assert (labels == 1).sum().to_dict() == {"T": 507, "N": 369, "ER": 686, "PR": 598, "HER2": 163}
    assert (reasons.loc[labels.N.isna(), "N"] != "").all()
    with pytest.raises(ValueError, match="no row for 1 included patient"):
        rg.clinical_labels(DUKE, ["Breast_MRI_999"], ["ER"])


def test_a_crf_failure_is_the_image_s_reason_and_its_row_is_empty():
    images = np.random.default_rng(0).random((7, 64, 64)).astype(np.float32)
    images[2] = 0.5  # flat: measured (zero texture), not a failure
    images[5, 5, 5] = np.nan
    one, failed = rg.slice_crfs(images)
    assert list(failed) == [5] and "not finite" in failed[5]
    assert one.drop(index=5).notna().all().all() and one.loc[5].isna().all() and len(one.columns) > 80
    assert one.firstorder_Mean[2] == pytest.approx(0.5)
    assert one.firstorder_Mean.drop(index=[2, 5]).between(0.45, 0.55).all()


@pytest.mark.slow
def test_whole_slices_change_the_drfs_not_the_crfs_nor_does_the_number_of_processes(patch_set, faulty_cohort,
                                                                                    tmp_path):
    from types import SimpleNamespace

    from radiolib.run import params
    P = SimpleNamespace(**{**params.defaults("07_receptors"), "data_dir": str(faulty_cohort), "dae_epochs": 1,
                           "cache_dir": str(tmp_path), "n_jobs": 2})
    lesion = rg.image_features(P, patch_set, progress=False)
    P.dae_input, P.n_jobs = "slice", 1
    whole = rg.image_features(P, patch_set, progress=False)
    assert whole.drf.shape == lesion.drf.shape and not np.allclose(whole.drf, lesion.drf)
    # the CRFs describe the lesion either way, and two processes measure what one does
    pd.testing.assert_frame_equal(whole.crf, lesion.crf)
    assert whole.crf_failed == lesion.crf_failed and len(whole.crf.columns) > 80
    shown = rg.images_of(P, patch_set, 3)
    lesions, meta = dae.lesion_slices(patch_set)
    assert lesion.mean_image_mse == pytest.approx(float(((lesions - lesions.mean(axis=0)) ** 2).mean()), rel=1e-5)
    assert whole.mean_image_mse != pytest.approx(lesion.mean_image_mse)  # each DAE's own yardstick
    assert shown.shape == (3, 64, 64) and np.array_equal(shown, rg._whole_slices(P, patch_set, meta.head(3), False))
    assert len(list((tmp_path / "radiogenomic_features").iterdir())) == 2  # two cache entries, one per input
