"""The study report: the run's results files turned into the paper's tables, comparisons, figures and provenance,
and exported as one self-contained `report.html` (no machine path, no patient identity beyond pseudonymous IDs).
"""
from __future__ import annotations

import base64
import html
import io
import json
import platform
from itertools import combinations
from pathlib import Path
from types import SimpleNamespace

import matplotlib.pyplot as plt
import pandas as pd
import torch

from .. import __version__
from ..core.cache import atomic_write_text
from ..data.descriptor import BUDA, Descriptor, duke_descriptor, lgg_descriptor
from ..learn import handcrafted
from ..run import paper
from ..run.inputs import domain_mode
from ..run.results import check_same_run, results_table, tied_fold_warnings
from ..run.results import provenance as provenance_of
from ..run.results import structure as results_structure
from ..stats.ceiling import SOURCE_STEM as CEILING_STEM
from ..stats.ceiling import Ceiling
from ..stats.evaluation import holm, paired_fold_mean_bootstrap
from . import plots

APPROACH_NOTEBOOKS = {"scratch": "02_training_from_scratch", "transfer": "03_transfer_learning",
                      "features": "04_deep_features_svm", "layerwise": "05_layerwise_analysis"}
APPROACH_TITLES = {"scratch": "training from scratch", "transfer": "transfer learning",
                   "features": "deep features + SVM", "layerwise": "layer-wise GoogLeNet features"}


def load_run(run_dir, P=None) -> dict[str, dict]:
    """Every results file of the run, keyed by notebook stem, all made from the same data and run parameters.

    A file made by another run (other data, synth_seed, n_folds, ...) is refused (results.StaleResults naming the
    file and the differing keys): compared with `P` (the report notebook's parameters) when given, and with the
    earlier files (notebook 01 first) for what `P` does not hold.
    """
    folder = Path(run_dir) / "results"
    docs = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}
    check_same_run(docs, None if P is None else provenance_of(P), folder)
    return docs


def main_rows(doc: dict) -> list[dict]:
    """The rows of a results file without the learning-rate sweeps (those have their own figure)."""
    return [r for r in doc.get("rows", []) if "sweep" not in r]


def descriptor(docs: dict) -> Descriptor:
    """The run's dataset descriptor (the `descriptor` entry of its results files). Files written before it existed:
    the default target of the layout their parameters name."""
    for doc in docs.values():
        if doc.get("descriptor"):
            return Descriptor.from_dict(doc["descriptor"])
    lgg = any(doc.get("parameters", {}).get("synth_format") == "lgg" for doc in docs.values())
    return lgg_descriptor("COCCluster", "2") if lgg else duke_descriptor()


def table_title(approach: str, d: Descriptor) -> str:
    """"Table 3: training from scratch" beside Zhu et al.; "Training from scratch (Buda et al. 2020, abstract)"."""
    name, label = APPROACH_TITLES[approach], d.table_of(approach)
    if label and label.startswith("Table"):
        return f"{label}: {name}"
    return name[0].upper() + name[1:] + (f" ({d.reference}, {label})" if label else "")


def beside_sentence(d: Descriptor) -> str:
    """What the reference paper's numbers beside our rows are: the same task, another target, or absent."""
    if not d.tables:
        return f"{d.reference} did not study this target: none of its numbers stand beside ours."
    if d.reference_target:
        return (f"{d.reference}'s numbers stand beside ours labelled \"{d.reference_label}\": they answer "
                f"{d.reference_target} vs the rest, not this target, and are not a reproduction check.")
    return f"{d.reference}'s numbers stand beside ours: the same task."


def ceiling(docs: dict) -> Ceiling:
    """The run's ground-truth ceiling, as notebook 01 recorded it (radiolib.stats.ceiling), or why there is none."""
    if CEILING_STEM not in docs:
        return Ceiling.missing(f"no results/{CEILING_STEM}.json in this run")
    return Ceiling.from_doc(docs[CEILING_STEM])


def baseline(docs: dict) -> dict | None:
    """The run's handcrafted-features baseline row, as notebook 01 recorded it (radiolib.learn.handcrafted), or None."""
    return handcrafted.of_doc(docs.get(CEILING_STEM, {}))


def baseline_sentence(docs: dict) -> str:
    """The handcrafted baseline in one line (radiolib.learn.handcrafted.sentence), or that the run has none."""
    return handcrafted.sentence(baseline(docs))


def tables(docs: dict, ran_only: bool = False) -> dict[str, pd.DataFrame]:
    """The approach tables of this run, each row with our AUC, CI, its share of the ceiling (when the run has one),
    its difference from the handcrafted baseline (when it ran)
    and the reference paper's number beside it (where the paper has that table for the run's target).
    `ran_only`: without the skipped rows (`skip_causes` gives one line per cause instead); a table with none left
    is left out."""
    d, ceil = descriptor(docs), ceiling(docs)
    out = {}
    for approach, stem in APPROACH_NOTEBOOKS.items():
        if stem in docs:
            rows = [r for r in main_rows(docs[stem]) if not (ran_only and r.get("skipped"))]
            if rows:
                out[table_title(approach, d)] = paper.beside(results_table(rows, ceil, baseline(docs)), rows, d)
    return out


def skip_causes(docs: dict) -> list[str]:
    """One line per cause of the skipped rows of 02-05, with how many rows and which notebooks it concerns,
    e.g. "19 rows (03, 04, 05): weights file missing, expected at ..."."""
    causes: dict[str, list[str]] = {}
    for stem in APPROACH_NOTEBOOKS.values():
        for row in main_rows(docs.get(stem, {})):
            if row.get("skipped"):
                causes.setdefault(row["skipped"], []).append(stem[:2])
    return [f"{len(stems)} row{'s' if len(stems) > 1 else ''} ({', '.join(dict.fromkeys(stems))}): {cause}"
            for cause, stems in sorted(causes.items(), key=lambda kv: -len(kv[1]))]


def structure(docs: dict) -> str:
    """results.structure of each approach table of the run, under its title (what nbval compares on every machine)."""
    d = descriptor(docs)
    return "\n".join(f"{table_title(approach, d)}\n{results_structure(main_rows(docs[stem]))}"
                     for approach, stem in APPROACH_NOTEBOOKS.items() if stem in docs)


def labels(docs: dict) -> pd.Series:
    """Patient -> label of the included patients (notebook 01)."""
    included = docs.get("01_preprocessing", {}).get("included", [])
    return pd.Series({r["patient"]: r["label"] for r in included}, dtype=float)


# Pre-specified comparisons, fixed before any result of the run is seen (never chosen by test AUC). Each entry is a
# list of candidate rows in order of preference; the first that ran is used (a candidate is skipped only when its
# weights were unavailable). The rows are the paper's own: its best setting of each approach (Tables 3-5: CIFAR from
# scratch, GoogLeNet transfer, GoogLeNet 120 px poly features) and, for Table 6's claim that the last FC layer is
# best, that layer against the paper's runner-up (conv3, its "Conv2", 0.63).
_SOURCES = ("imagenet", "domain")
PRESPECIFIED = {
    "scratch CIFAR": [{"approach": "scratch", "network": "cifar"}],
    "transfer GoogLeNet": [{"approach": "transfer", "network": "googlenet", "source": s} for s in _SOURCES],
    "features GoogLeNet 120 px poly": [{"approach": "features", "network": "googlenet", "source": s,
                                        "patch_size": 120, "kernel": "poly"} for s in _SOURCES],
    "layer-wise GoogLeNet fc": [{"approach": "layerwise", "network": "googlenet", "source": s, "layer": "fc"}
                                for s in _SOURCES],
    "layer-wise GoogLeNet conv3": [{"approach": "layerwise", "network": "googlenet", "source": s, "layer": "conv3"}
                                   for s in _SOURCES],
}
PRESPECIFIED_PAIRS = (  # (A, B): the paper's ranking deep features > transfer > scratch, and FC > conv3 (Table 6)
    ("features GoogLeNet 120 px poly", "transfer GoogLeNet"),
    ("features GoogLeNet 120 px poly", "scratch CIFAR"),
    ("transfer GoogLeNet", "scratch CIFAR"),
    ("layer-wise GoogLeNet fc", "layer-wise GoogLeNet conv3"),
)
# Buda et al. 2020's claim, for its study (the reference BUDA): a network pretrained on another brain-tumour cohort
# beats one trained from random weights. When the `domain` source was pretrained on an external cohort, its rows are
# compared with the `random` rows on the same folds, under the same Holm as the pairs above.
EXTERNAL_PAIRS = {
    "transfer GoogLeNet": {"approach": "transfer", "network": "googlenet"},
    "features GoogLeNet 120 px poly": {"approach": "features", "network": "googlenet", "patch_size": 120,
                                       "kernel": "poly"},
    "layer-wise GoogLeNet fc": {"approach": "layerwise", "network": "googlenet", "layer": "fc"},
}
SELECTION_NOTE = (
    "Rows compared are pre-specified (radiolib.views.report.PRESPECIFIED), not the best of this run: "
    "the paper's own best "
    "settings, which the paper chose on its test folds. The only choice made here is the pretraining source, by "
    "availability (ImageNet weights, else the in-domain network), never by AUC; the layer-wise SVMs use the paper's "
    "Table 6 setting (120 px, poly) unless the parameters set another. Test: paired bootstrap of the difference of "
    "the fold-mean AUCs (the statistic of the tables; the same patient resamples for both rows), two-sided p, "
    "Holm-adjusted over the comparisons shown. In the glioma study, when the `domain` source was "
    "pretrained on an external cohort, its rows are also compared with random weights "
    "(radiolib.views.report.EXTERNAL_PAIRS), under the same Holm.")


def _usable(row: dict) -> bool:
    return row.get("skipped") is None and bool(row.get("oof"))


def prespecified_rows(docs: dict) -> dict[str, dict]:
    """Name -> the row of the run for each pre-specified entry that ran (first available candidate)."""
    rows = [r for stem in APPROACH_NOTEBOOKS.values() for r in main_rows(docs.get(stem, {})) if _usable(r)]
    out = {}
    for name, candidates in PRESPECIFIED.items():
        for want in candidates:
            match = [r for r in rows if all(r.get(k) == v for k, v in want.items())]
            if match:
                out[name] = match[0]
                break
    return out


def best_rows(docs: dict) -> dict[str, dict]:
    """The pre-specified row of each approach that ran (the first PRESPECIFIED entry of that approach).

    Kept under its old name for callers; it no longer picks rows by test AUC.
    """
    best = {}
    for row in prespecified_rows(docs).values():
        best.setdefault(row["approach"], row)
    return best


def describe(row: dict) -> str:
    parts = [row["network"], row["source"] if row["source"] != "none" else None,
             f"patch {row['patch_size']}" if row.get("patch_size") else None, row.get("kernel"), row.get("layer")]
    return " ".join(str(p) for p in parts if p)


def _median_repeat(row: dict) -> int:
    """The repeat whose folds made the row's test AUC and oof scores (stored, else the one matching test_auc)."""
    if row.get("median_repeat") is not None:
        return int(row["median_repeat"])
    repeats = sorted({int(f["repeat"]) for f in row["folds"]})
    def gap(r):
        aucs = [f["auc"] for f in row["folds"] if int(f["repeat"]) == r and f["auc"] is not None]
        return abs(sum(aucs) / len(aucs) - row["test_auc"]) if aucs and row["test_auc"] is not None else 1.0
    return min(repeats, key=gap)


def row_folds(row: dict, y: pd.Series) -> list[tuple[pd.Series, pd.Series]]:
    """(labels, out-of-fold scores) of each test fold of the row's median repeat, patients with a label only."""
    oof = pd.Series(row["oof"], dtype=float)
    rep = _median_repeat(row)
    out = []
    for fold in row["folds"]:
        if int(fold["repeat"]) != rep:
            continue
        pats = [str(p) for p in fold["test_patients"] if str(p) in y.index and str(p) in oof.index]
        out.append((y[pats].astype(int), oof[pats]))
    return out


COMPARISON_COLUMNS = ["A", "B", "patients", "AUC A (fold mean)", "AUC B (fold mean)", "difference",
                      "95% CI of difference", "p (paired bootstrap)", "p (Holm)"]


def fold_mean_test(a: dict, b: dict, y: pd.Series, n_boot: int = 1000, seed: int = 0) -> dict:
    """Paired bootstrap test of two rows' fold-mean AUC difference
    (radiolib.stats.evaluation.paired_fold_mean_bootstrap)."""
    return paired_fold_mean_bootstrap(row_folds(a, y), row_folds(b, y), n_boot=n_boot, seed=seed)


def comparison_table(pairs: list[tuple[str, dict, str, dict]], y: pd.Series, n_boot: int = 1000,
                     seed: int = 0) -> pd.DataFrame:
    """One line per (name A, row A, name B, row B): fold-mean AUCs, their difference with a paired-bootstrap CI,
    its two-sided p and the Holm-adjusted p over the lines of the table."""
    out = []
    for name_a, a, name_b, b in pairs:
        t = fold_mean_test(a, b, y, n_boot, seed)
        patients = len(set(a["oof"]) & set(b["oof"]) & set(y.index))
        out.append({"A": name_a, "B": name_b, "patients": patients, "AUC A (fold mean)": round(t["auc_a"], 3),
                    "AUC B (fold mean)": round(t["auc_b"], 3), "difference": round(t["diff"], 3),
                    "95% CI of difference": f"[{t['ci95'][0]:.3f}, {t['ci95'][1]:.3f}]",
                    "p (paired bootstrap)": t["p"]})
    table = pd.DataFrame(out, columns=COMPARISON_COLUMNS)
    table["p (Holm)"] = holm(table["p (paired bootstrap)"].to_numpy(float)).round(4) if len(table) else []
    table["p (paired bootstrap)"] = table["p (paired bootstrap)"].astype(float).round(4)
    return table


def comparison_structure(table: pd.DataFrame) -> str:
    """What a comparison table must be on every machine: the pairs and their patients; raises ValueError naming the
    pair if a p lies outside [0, 1], a Holm p is below its raw p or a CI of the difference is reversed."""
    lines = []
    for _, r in table.iterrows():
        pair = f"{r['A']} vs {r['B']}"
        p, p_holm = float(r["p (paired bootstrap)"]), float(r["p (Holm)"])
        lo, hi = (float(v) for v in r["95% CI of difference"].strip("[]").split(","))
        if not (0.0 <= p <= p_holm <= 1.0):
            raise ValueError(f"{pair}: p {p} and Holm p {p_holm} must satisfy 0 <= p <= Holm p <= 1")
        if not -1.0 <= lo <= hi <= 1.0:
            raise ValueError(f"{pair}: CI of the difference [{lo}, {hi}] reversed or outside [-1, 1]")
        lines.append(f"{pair}: {r['patients']} patients; 0 <= p <= Holm p <= 1, CI within [-1, 1]")
    return "\n".join(lines) or "no comparison could run"


def pairwise_table(rows: list[dict], y: pd.Series, name=None, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """comparison_table between every pair of usable rows (Holm over all those pairs)."""
    name = name or describe
    usable = [r for r in rows if _usable(r)]
    return comparison_table([(name(a), a, name(b), b) for a, b in combinations(usable, 2)], y, n_boot, seed)


def _run_setting(docs: dict, key: str, default: int) -> int:
    values = [d.get("parameters", {}).get(key) for d in docs.values()]
    return next((int(v) for v in values if v is not None), default)


def external_pairs(docs: dict) -> list[tuple[str, dict, str, dict]]:
    """(name, row, name, row) of each EXTERNAL_PAIRS entry whose `domain` row (pretrained on an external cohort,
    `inputs.domain_mode` of its notebook's parameters) and `random` row both ran."""
    out = []
    if descriptor(docs).reference != BUDA:
        return out
    for name, want in EXTERNAL_PAIRS.items():
        stem = APPROACH_NOTEBOOKS[want["approach"]]
        doc = docs.get(stem, {})
        if not doc or domain_mode(_parameters(doc)) != "external":
            continue
        found = {}
        for row in main_rows(doc):
            if _usable(row) and row.get("source") in ("domain", "random") and all(
                    row.get(k) == v for k, v in want.items()):
                found.setdefault(row["source"], row)
        if len(found) == 2:
            out.append((f"{name} external: {describe(found['domain'])}", found["domain"],
                        f"{name} random: {describe(found['random'])}", found["random"]))
    return out


def _parameters(doc: dict):
    """A results file's parameters as attributes (those `inputs.domain_mode` reads, None when absent)."""
    params = doc.get("parameters", {})
    return SimpleNamespace(**{k: params.get(k) for k in ("domain_data_dir", "data_dir")},
                           domain_source=params.get("domain_source", "external"))


def comparisons(docs: dict) -> pd.DataFrame:
    """The pre-specified pairs (PRESPECIFIED_PAIRS) of rows that ran, and an external in-domain source against
    random weights (`external_pairs`): paired bootstrap of the fold-mean AUC difference, Holm-adjusted over all; the
    rows used are named in A and B (see SELECTION_NOTE)."""
    rows = prespecified_rows(docs)
    pairs = [(f"{na}: {describe(rows[na])}", rows[na], f"{nb}: {describe(rows[nb])}", rows[nb])
             for na, nb in PRESPECIFIED_PAIRS if na in rows and nb in rows] + external_pairs(docs)
    return comparison_table(pairs, labels(docs), _run_setting(docs, "n_boot", 1000), _run_setting(docs, "seed", 0))


def glance_table(docs: dict) -> pd.DataFrame:
    """One line per pre-specified row that ran (`PRESPECIFIED`): its name, setting, test AUC and CI, and the
    reference paper's test AUC for that row where the paper has one for this target."""
    d = descriptor(docs)
    out = []
    for name, row in prespecified_rows(docs).items():
        ref = paper.paper_value(row, d)
        ci = row.get("ci95") or [None, None]
        out.append({"row": name, "setting": describe(row), "test AUC": float(row["test_auc"]),
                    "ci low": float("nan") if ci[0] is None else float(ci[0]),
                    "ci high": float("nan") if ci[1] is None else float(ci[1]),
                    "paper": float("nan") if not ref else float(ref[1])})
    return pd.DataFrame(out, columns=["row", "setting", "test AUC", "ci low", "ci high", "paper"])


def glance_figure(docs: dict):
    """The report's first figure (`plots.at_a_glance`): the pre-specified rows beside the paper, the ceiling and the
    handcrafted baseline."""
    d, ceil, base = descriptor(docs), ceiling(docs), baseline(docs)
    return plots.at_a_glance(glance_table(docs), ceil.test_auc if ceil.known else None,
                             None if not base or base.get("test_auc") is None else float(base["test_auc"]),
                             d.reference_label)


def glance_sentences(docs: dict, comp: pd.DataFrame | None = None) -> list[str]:
    """A few sentences of what the run found, written from its results files (`comp`: `comparisons(docs)`, when
    already computed)."""
    d, ceil, base, table = descriptor(docs), ceiling(docs), baseline(docs), glance_table(docs)
    included = len(docs.get("01_preprocessing", {}).get("included", []))
    out = []
    if len(table):
        lo, hi = table.loc[table["test AUC"].idxmin()], table.loc[table["test AUC"].idxmax()]
        out.append(f"{len(table)} of the {len(PRESPECIFIED)} pre-specified rows ran on {included} patients "
                   f"({d.positive} vs {d.negative}); their test AUCs run from {lo['test AUC']:.2f} ({lo['row']}) "
                   f"to {hi['test AUC']:.2f} ({hi['row']}).")
    else:
        out.append("None of the pre-specified rows ran in this run folder.")
    yard = []
    if base and base.get("test_auc") is not None:
        yard.append(f"the handcrafted baseline reaches {float(base['test_auc']):.2f}")
    yard.append(f"the ground-truth ceiling is {ceil.test_auc:.2f}" if ceil.known else "there is no ceiling (real "
                "data has no ground truth)")
    out.append("For scale: " + " and ".join(yard) + ".")
    comp = comparisons(docs) if comp is None else comp
    if len(comp):
        hits = comp[comp["p (Holm)"] < 0.05]
        out.append(f"{len(hits)} of the {len(comp)} pre-specified comparisons differ at Holm-adjusted p < 0.05"
                   + (": " + "; ".join(f"{r.A} vs {r.B} ({r.difference:+.2f})" for r in hits.itertuples())
                      if len(hits) else f" (smallest Holm p {comp['p (Holm)'].min():.2f})") + ".")
    if d.tables and table["paper"].notna().any():
        what = (f"answer {d.reference_target} vs the rest, another target, so they orient and do not check"
                if d.reference_target else "are the same task")
        out.append(f"{d.reference}'s figures beside them {what}.")
    out += [s for s in (_glance_07(docs), _glance_08(docs), _glance_09(docs)) if s]
    return out


def _glance_07(docs: dict) -> str | None:
    doc = docs.get("07_receptors")
    rows = [r for r in (doc or {}).get("rows", []) if not r.get("skipped")]
    if not rows:
        return None
    aucs = [r["test_auc"] for r in rows]
    return (f"07 (Liu & Hu): T, N and receptor status from deep and conventional radiomic features reach test AUCs "
            f"{min(aucs):.2f} to {max(aucs):.2f} under patient-level folds.")


def _glance_08(docs: dict) -> str | None:
    doc = docs.get("08_associations")
    if not doc or doc.get("skipped"):
        return None
    parts = []
    for r in doc.get("null_permuted_genes", []):
        if "observed significant" in r:
            parts.append(f"{r['features']} {r['observed significant']} (null median {r['significant median']:g}, "
                         f"95th percentile {r['significant 95th pct']:g})")
    permutations = doc["null_permuted_genes"][0].get("permutations", 1)
    return (f"08: feature-gene pairs at FDR {doc['fdr_alpha']:g}, against {permutations} "
            f"permutations of the gene table: " + "; ".join(parts) + ".") if parts else None


def _glance_09(docs: dict) -> str | None:
    doc = docs.get("09_gene_masking")
    if not doc or doc.get("skipped"):
        return None
    rows = [r for r in doc.get("masking_summary", []) if "p (max, Holm over phenotypes)" in r]
    found = [f"{r['phenotype']} ({r['best programme']})" for r in rows if r["p (max, Holm over phenotypes)"] < 0.05]
    return (f"09 (Smedley et al.): gene masking names a programme beyond size-matched random sets (Holm p < 0.05) for "
            f"{len(found)} of {len(rows)} phenotypes" + (": " + ", ".join(found) if found else "") + ".")


def cohort_flow(docs: dict) -> pd.DataFrame:
    """Included and excluded patients with the reasons (notebook 01)."""
    doc = docs.get("01_preprocessing", {})
    reasons = pd.Series([e["reason"].split(":")[0] for e in doc.get("excluded", [])], dtype=object).value_counts()
    rows = [("patients found", len(doc.get("included", [])) + len(doc.get("excluded", [])))]
    rows += [(f"excluded: {k}", int(v)) for k, v in reasons.items()] + [("included", len(doc.get("included", [])))]
    return pd.DataFrame(rows, columns=["step", "patients"])


def deviations(docs: dict) -> pd.DataFrame:
    return pd.DataFrame([{"notebook": stem, "deviation": d} for stem, doc in docs.items()
                         for d in doc.get("deviations", [])])


def shared_deviations(docs: dict) -> tuple[list[str], dict[str, list[str]]]:
    """(the deviations every notebook of the run states, each notebook's own): the report lists the shared ones
    once, then what is particular to each notebook."""
    lists = {stem: list(doc.get("deviations", [])) for stem, doc in docs.items() if doc.get("deviations")}
    if not lists:
        return [], {}
    shared = [d for d in next(iter(lists.values())) if all(d in v for v in lists.values())] if len(lists) > 1 else []
    own = {stem: [d for d in v if d not in shared] for stem, v in lists.items()}
    return shared, {stem: v for stem, v in own.items() if v}


def provenance(run_dir, docs: dict) -> dict:
    """Parameters, seed, versions and wall time per notebook of the run."""
    run = Path(run_dir) / "run.json"
    seconds = json.loads(run.read_text()).get("seconds", {}) if run.is_file() else {}
    params = {stem: doc.get("parameters", {}) for stem, doc in docs.items()}
    seeds = sorted({p.get("seed") for p in params.values() if p.get("seed") is not None})
    return {"versions": {"radiolib": __version__, "python": platform.python_version(), "torch": torch.__version__,
                         "pandas": pd.__version__},
            "seed": seeds, "wall_seconds": seconds or "not recorded (notebooks run outside the study runner)",
            "parameters": params}


RADIOGENOMIC_NOTEBOOKS = {"07_receptors": "Receptors and stage from deep and conventional radiomic features "
                                          "(Liu & Hu 2023)",
                          "08_associations": "Imaging features against gene programmes (Liu & Hu 2023)",
                          "09_gene_masking": "From genes to imaging phenotypes, and gene masking (Smedley et al. 2021)"}


def radiogenomics(docs: dict) -> dict[str, list]:
    """Notebooks 07-09's sections: title -> [sentence or table, ...] from their results files ("not run in this run
    folder" or the reason a notebook skipped)."""
    out = {}
    for stem, title in RADIOGENOMIC_NOTEBOOKS.items():
        doc = docs.get(stem)
        if doc is None:
            out[title] = [f"{stem} has not run in this run folder."]
        elif doc.get("skipped"):
            out[title] = [f"Skipped: {doc['skipped']}"]
        elif stem == "07_receptors":
            paper = {(p["target"], p["features"]): p["test_auc"] for p in doc["paper_protocol"]}
            table = pd.DataFrame([{"target": r["target"], "features": r["features"], "patients": r["patients"],
                                   "test AUC (ours)": r["test_auc"], "95% CI": _ci(r["ci95"]),
                                   "AUC (paper's protocol)": round(paper[(r["target"], r["features"])], 4)}
                                  for r in doc["rows"] if not r["skipped"]])
            null = pd.DataFrame(doc["null_permutations"], columns=["ours (patient folds)", "paper's protocol"])
            ours, theirs = null["ours (patient folds)"].mean(), null["paper's protocol"].mean()
            out[title] = [table, "DRF against CRF (paired bootstrap of the fold-mean AUC, Holm over targets):",
                          pd.DataFrame(doc["comparisons"]),
                          f"Labels permuted among patients ({len(null)} times): ours {ours:.2f} on average, the "
                          f"paper's protocol {theirs:.2f}."]
        elif stem == "08_associations":
            out[title] = [f"Features associated at FDR {doc['fdr_alpha']:g} ({doc['gene_table']}, "
                          f"{doc['patients_with_genes']} patients):", pd.DataFrame(doc["counts"]),
                          "The same counts against the gene table permuted among patients (the null's median "
                          "and 95th percentile, and the permutation p of the observed count):",
                          _null_columns(pd.DataFrame(doc["null_permuted_genes"]))]
        else:
            models = pd.DataFrame(doc["models"])
            out[title] = [models.pivot(index="phenotype", columns="model", values="test AUC").reset_index(),
                          "Gene masking: the best programme per phenotype against random sets of its size:",
                          pd.DataFrame(doc["masking_summary"])]
    return out


NULL_COLUMNS = ("features", "permutations", "observed significant", "significant median", "significant 95th pct",
                "permutation p (significant)")


def _null_columns(table: pd.DataFrame) -> pd.DataFrame:
    """08's null table reduced to the columns a reader compares (all of them for a file without the new keys)."""
    keep = [c for c in NULL_COLUMNS if c in table]
    return table[keep] if len(keep) == len(NULL_COLUMNS) else table


def _ci(ci) -> str:
    return "" if not ci or ci[0] is None else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def _figure_html(fig, caption: str) -> str:
    """A matplotlib figure as an inline PNG (base64), closed after."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return (f"<figure><img src='data:image/png;base64,{data}' style='max-width:100%'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def figures(run_dir) -> list[Path]:
    return sorted((Path(run_dir) / "figures").glob("*.png"))


def to_html(run_dir) -> str:
    """The whole report as one HTML page with the figures embedded (base64), no external resources."""
    docs = load_run(run_dir)
    d = descriptor(docs)
    disease = {"duke": "breast cancer", "lgg": "lower-grade glioma"}.get(d.dataset, d.dataset)
    comp = comparisons(docs)
    parts = [f"<h1>Deep learning for radiogenomics of {disease}: {html.escape(d.positive)} vs "
             f"{html.escape(d.negative)}, beside {d.reference}</h1>",
             f"<p>Target {html.escape(d.target)}: {html.escape(d.definition)}. {d.reference}: "
             f"{html.escape(d.reference_task)}. {html.escape(beside_sentence(d))} From the results files of one "
             "run.</p>",
             "<h2>At a glance</h2>", _figure_html(glance_figure(docs), "pre-specified rows beside the paper"),
             "<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in glance_sentences(docs, comp)) + "</ul>",
             "<h2>Cohort flow</h2>", cohort_flow(docs).to_html(index=False),
             "<h2>Ceiling</h2>", f"<p>{html.escape(ceiling(docs).sentence())}</p>",
             "<h2>Handcrafted baseline</h2>", f"<p>{html.escape(baseline_sentence(docs))}</p>"]
    for title, table in tables(docs, ran_only=True).items():
        parts += [f"<h2>{html.escape(title)}</h2>", table.to_html(index=False, na_rep="")]
    skips = skip_causes(docs)
    if skips:
        parts += ["<h2>Rows that did not run</h2>",
                  "<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in skips) + "</ul>"]
    parts += ["<h2>Comparisons of pre-specified rows (paired bootstrap of the fold-mean AUC, Holm)</h2>",
              f"<p>{html.escape(SELECTION_NOTE)}</p>",
              comp.to_html(index=False) if len(comp) else "<p>No pre-specified pair ran.</p>"]
    for title, items in radiogenomics(docs).items():
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts += [item.to_html(index=False, na_rep="") if isinstance(item, pd.DataFrame)
                  else f"<p>{html.escape(item)}</p>" for item in items]
    warned = [w for doc in docs.values() for w in tied_fold_warnings(main_rows(doc))]
    if warned:
        parts += ["<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in warned) + "</ul>"]
    parts += ["<h2>Figures</h2>"]
    for fig in figures(run_dir):
        data = base64.b64encode(fig.read_bytes()).decode()
        parts.append(f"<figure><img src='data:image/png;base64,{data}' style='max-width:100%'>"
                     f"<figcaption>{html.escape(fig.stem)}</figcaption></figure>")
    shared, own = shared_deviations(docs)
    parts += ["<h2>Deviations from the paper's protocol</h2>"]
    if shared:
        parts += ["<h3>Every notebook</h3>", "<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in shared) + "</ul>"]
    for stem, items in own.items():
        parts += [f"<h3>{html.escape(stem)}</h3>", "<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in items)
                  + "</ul>"]
    parts += ["<h2>Provenance</h2>",
              f"<pre>{html.escape(json.dumps(provenance(run_dir, docs), indent=1, default=str))}</pre>"]
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px}"
             "th{background:#f3f3f3}figure{margin:1em 0}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>radiolib report</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


def write(run_dir) -> Path:
    """Write `report.html` into the run folder (atomically) and return its path."""
    path = Path(run_dir) / "report.html"
    atomic_write_text(path, to_html(run_dir))
    return path
