"""The glioma study's external in-domain source (issue 28): the `domain` network pretrained once on another
brain-tumour cohort (the Figshare layout, one post-contrast channel, the tumour-type task), beside the `in_cohort`
networks and random weights on the same folds in 03, 04 and 05; its deviations; the report's external pairs."""
import types

import numpy as np
import pytest
import studies

from radiolib.learn import weights
from radiolib.run import inputs, protocol, results
from radiolib.steps import TransferLearning, approaches
from radiolib.views import report

SOURCES = ["domain", "in_cohort", "random"]


@pytest.fixture(scope="module")
def lgg_set(tmp_path_factory):
    return studies.tiny_lgg_patch_set(tmp_path_factory.mktemp("external"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("external-cache")


def _context(stem, ps, cache_dir, **overrides):
    """The external source of the lgg profile at the tiny setting: tumour types of 6 synthetic Figshare patients."""
    return studies.tiny_lgg_context(stem, ps, cache_dir, **{
        "domain_source": "external", "domain_task": "tumour_type", "domain_patients": 6,
        "domain_patches_per_epoch": 48, "sources": SOURCES, **overrides})


@pytest.fixture(scope="module")
def transfer(lgg_set, cache):
    ctx = _context("03_transfer_learning", lgg_set, cache, networks=["googlenet"], fc_lr_sweep=[1e-3])
    return ctx, approaches.transfer(ctx)


def test_three_sources_run_on_the_same_folds_each_pretrained_where_it_says(transfer):
    ctx, result = transfer
    rows = {r["source"]: r for r in result.rows}
    assert sorted(rows) == sorted(SOURCES) and all(r["skipped"] is None for r in rows.values())
    results.validate_rows(result.all_rows)
    tests = {s: [f["test_patients"] for f in r["folds"]] for s, r in rows.items()}
    assert tests["domain"] == tests["in_cohort"] == tests["random"]  # the same folds
    # in_cohort: one network per fold, on its training patients; domain: one network, on the external cohort
    assert all(f["pretraining_patients"] == sorted(fold["train_patients"])
               for f, fold in zip(rows["in_cohort"]["folds"], ctx.folds_))
    assert all("pretraining_patients" not in f for f in rows["domain"]["folds"])
    meta = weights.domain_meta(inputs.domain_dir("googlenet", ctx.P), "googlenet")["meta"]
    assert meta["task_name"] == "tumour_type" and meta["input_channels"] == 1 and meta["held_out_unit"] == "patients"
    assert set(meta["classes"]) == {"glioma", "meningioma", "pituitary"}
    assert not set(meta["patients"]) & set(ctx.patch_set_.table.patient)  # another cohort's patients
    assert "Figshare" in meta["source"]


def test_notebook_03s_table_of_checkpoints_lists_both_in_domain_sources(transfer, lgg_set):
    ctx, _ = transfer
    step = TransferLearning(ctx.P, progress=False, patch_set=lgg_set).fit()  # the cached networks and folds
    table = step.domain_table()
    assert list(table.index) == [("domain", "googlenet", "all", "all")] + [
        ("in_cohort", "googlenet", f["repeat"], f["fold"]) for f in ctx.folds_]
    assert table.loc["domain"].held_out_unit.tolist() == ["patients"]


def test_the_external_network_reads_the_studys_post_contrast_channel(transfer):
    ctx, _ = transfer
    model = inputs.pretrained_model("googlenet", "domain", ctx.P, num_classes=2, progress=False)
    conv = weights.first_conv(model).weight.detach()
    assert inputs.study_contrast_channel(ctx.P, ctx.patch_set_) == 2  # pre-contrast, FLAIR, post-contrast
    assert conv[:, 2].abs().sum() > 0 and conv[:, :2].abs().sum() == 0  # the other channels start at zero


def test_the_deviations_say_what_the_external_source_is(transfer):
    ctx, _ = transfer
    said = protocol.deviations(ctx.P, "03_transfer_learning")
    assert any("tumour type: glioma, meningioma or pituitary" in d and "3-way head" in d for d in said)
    assert any(d.startswith("extra pretraining source 'in_cohort'") for d in said)
    assert protocol.ONE_CHANNEL in said
    assert any("synthetic, in the layout of Cheng et al.'s Figshare release" in d for d in said)
    source = next(d for d in said if d.startswith("extra pretraining source 'domain'"))
    assert protocol.BUDA_SOURCE in source and "not in the paper" not in source  # Buda's design, not an addition
    in_cohort = types.SimpleNamespace(**{**vars(ctx.P), "domain_source": "in_cohort", "sources": ["domain"]})
    assert any(d.startswith("extra pretraining source 'domain'") and "not in the paper" in d
               for d in protocol.deviations(in_cohort, "03_transfer_learning"))
    lesion = types.SimpleNamespace(**{**vars(ctx.P), "domain_task": "lesion", "sources": ["domain", "random"]})
    told = protocol.deviations(lesion, "03_transfer_learning")
    assert not any("in_cohort" in d for d in told) and any("lesion vs normal tissue on a disjoint" in d for d in told)


def test_in_cohort_is_skipped_where_it_would_repeat_the_domain_rows(transfer):
    ctx, _ = transfer
    same = types.SimpleNamespace(**{**vars(ctx.P), "domain_source": "in_cohort"})
    assert "repeat them" in inputs.source_status("googlenet", same)["in_cohort"]
    assert inputs.source_status("googlenet", ctx.P)["in_cohort"] is None


def test_features_and_layers_from_the_three_sources(transfer, lgg_set, cache):
    ctx = _context("04_deep_features_svm", lgg_set, cache, networks=["googlenet"], kernels=["linear"],
                   svm_max_train=60)
    result = approaches.features_svm(ctx)
    rows = {r["source"]: r for r in result.rows}
    assert sorted(rows) == sorted(SOURCES) and all(r["skipped"] is None for r in rows.values())
    assert rows["domain"]["layer"] == rows["in_cohort"]["layer"] == "flatten" and rows["random"]["layer"] == "fc"
    results.validate_rows(result.rows)
    ctx5 = _context("05_layerwise_analysis", lgg_set, cache, layer_patch_size=80)
    feats = approaches.layer_features(ctx5)  # 04's pass at 80 px kept every layer: read back, not recomputed
    fc = {s: feats.features[s][1]["fc"] for s in SOURCES}
    assert fc["domain"].shape[1] == 3 and fc["random"].shape[1] == 1000  # the 3-way tumour-type head
    assert np.isfinite(fc["domain"]).all()


def _doc(rows):
    return {"parameters": {"domain_source": "external", "domain_data_dir": None, "data_dir": None},
            "rows": rows, "descriptor": report.lgg_descriptor("COCCluster", "2").to_dict()}


def _row(approach, source, **extra):
    return {"approach": approach, "network": "googlenet", "source": source, "skipped": None, "oof": {"a": 0.1},
            **extra}


def test_the_report_adds_external_against_random_only_for_an_external_source():
    docs = {"03_transfer_learning": _doc([_row("transfer", s) for s in ("domain", "in_cohort", "random")]),
            "05_layerwise_analysis": _doc([_row("layerwise", s, layer=layer) for s in ("domain", "random")
                                                for layer in ("conv3", "fc")])}
    pairs = report.external_pairs(docs)
    assert [(a.split(":")[0], b.split(":")[0]) for a, _, b, _ in pairs] == [
        ("transfer GoogLeNet external", "transfer GoogLeNet random"),
        ("layer-wise GoogLeNet fc external", "layer-wise GoogLeNet fc random")]
    assert all(ra["source"] == "domain" and rb["source"] == "random" for _, ra, _, rb in pairs)
    assert pairs[1][1]["layer"] == "fc"
    for doc in docs.values():  # in-cohort domain rows are not an external source: no pair
        doc["parameters"]["domain_source"] = "in_cohort"
    assert report.external_pairs(docs) == []
    for doc in docs.values():  # nor in the Duke study, whose paper makes no such claim
        doc["parameters"]["domain_source"] = "external"
        doc["descriptor"] = report.duke_descriptor().to_dict()
    assert report.external_pairs(docs) == []
