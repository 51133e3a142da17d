"""The study report: the run's results files turned into the paper's tables, comparisons, figures and provenance,
and exported as one self-contained `report.html` (no machine path, no patient identity beyond pseudonymous IDs).
"""
from __future__ import annotations

import base64
import html
import json
import platform
from itertools import combinations
from pathlib import Path

import pandas as pd

from . import __version__, paper
from .cache import atomic_write_text
from .descriptor import Descriptor, duke_descriptor, lgg_descriptor
from .evaluation import delong
from .results import check_same_run, results_table
from .results import provenance as provenance_of

APPROACH_NOTEBOOKS = {"scratch": "02_training_from_scratch", "transfer": "03_transfer_learning",
                      "features": "04_deep_features_svm", "layerwise": "05_layerwise_analysis"}
TABLE_TITLES = {"scratch": "Table 3: training from scratch", "transfer": "Table 4: transfer learning",
                "features": "Table 5: deep features + SVM", "layerwise": "Table 6: layer-wise GoogLeNet features"}
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


def tables(docs: dict) -> dict[str, pd.DataFrame]:
    """The approach tables of this run, each row with our AUC, CI and the reference paper's number beside it (where
    the paper has that table for the run's target)."""
    d = descriptor(docs)
    out = {}
    for approach, stem in APPROACH_NOTEBOOKS.items():
        if stem in docs:
            rows = main_rows(docs[stem])
            out[table_title(approach, d)] = paper.beside(results_table(rows), rows, d)
    return out


def labels(docs: dict) -> pd.Series:
    """Patient -> label of the included patients (notebook 01)."""
    included = docs.get("01_preprocessing", {}).get("included", [])
    return pd.Series({r["patient"]: r["label"] for r in included}, dtype=float)


def best_rows(docs: dict) -> dict[str, dict]:
    """The best (highest test AUC) row of each approach that ran."""
    best = {}
    for approach, stem in APPROACH_NOTEBOOKS.items():
        rows = [r for r in main_rows(docs.get(stem, {})) if r["skipped"] is None and r.get("oof")]
        if rows:
            best[approach] = max(rows, key=lambda r: r["test_auc"])
    return best


def describe(row: dict) -> str:
    parts = [row["network"], row["source"] if row["source"] != "none" else None,
             f"patch {row['patch_size']}" if row.get("patch_size") else None, row.get("kernel"), row.get("layer")]
    return " ".join(str(p) for p in parts if p)


def delong_table(rows: list[dict], y: pd.Series, name=None) -> pd.DataFrame:
    """DeLong's test between every pair of rows (their out-of-fold scores), on the patients both scored."""
    name = name or describe
    out = []
    usable = [r for r in rows if r.get("skipped") is None and r.get("oof")]
    for a, b in combinations(usable, 2):
        sa, sb = pd.Series(a["oof"]), pd.Series(b["oof"])
        common = sorted(set(sa.index) & set(sb.index) & set(y.index))
        if len(common) < 4 or y[common].nunique() < 2:
            continue
        d = delong(y[common].to_numpy(), sa[common].to_numpy(), sb[common].to_numpy())
        out.append({"A": name(a), "B": name(b), "patients": len(common), "AUC A": round(d["auc1"], 3),
                    "AUC B": round(d["auc2"], 3), "difference": round(d["diff"], 3), "p (DeLong)": round(d["p"], 4)})
    return pd.DataFrame(out, columns=["A", "B", "patients", "AUC A", "AUC B", "difference", "p (DeLong)"])


def comparisons(docs: dict) -> pd.DataFrame:
    """DeLong's test between the best rows of each pair of approaches, on the patients both scored."""
    best = best_rows(docs)
    return delong_table(list(best.values()), labels(docs), lambda r: f"{r['approach']}: {describe(r)}")


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


def provenance(run_dir, docs: dict) -> dict:
    """Parameters, seed, versions and wall time per notebook of the run."""
    import torch
    run = Path(run_dir) / "run.json"
    seconds = json.loads(run.read_text()).get("seconds", {}) if run.is_file() else {}
    params = {stem: doc.get("parameters", {}) for stem, doc in docs.items()}
    seeds = sorted({p.get("seed") for p in params.values() if p.get("seed") is not None})
    return {"versions": {"radiolib": __version__, "python": platform.python_version(), "torch": torch.__version__,
                         "pandas": pd.__version__},
            "seed": seeds, "wall_seconds": seconds or "not recorded (notebooks run outside the study runner)",
            "parameters": params}


def figures(run_dir) -> list[Path]:
    return sorted((Path(run_dir) / "figures").glob("*.png"))


def to_html(run_dir) -> str:
    """The whole report as one HTML page with the figures embedded (base64), no external resources."""
    docs = load_run(run_dir)
    d = descriptor(docs)
    disease = {"duke": "breast cancer", "lgg": "lower-grade glioma"}.get(d.dataset, d.dataset)
    parts = [f"<h1>Deep learning for radiogenomics of {disease}: {html.escape(d.positive)} vs "
             f"{html.escape(d.negative)}, beside {d.reference}</h1>",
             f"<p>Target {html.escape(d.target)}: {html.escape(d.definition)}. {d.reference}: "
             f"{html.escape(d.reference_task)}. Our results beside the paper's where it has the same task, from the "
             "results files of one run.</p>",
             "<h2>Cohort flow</h2>", cohort_flow(docs).to_html(index=False)]
    for title, table in tables(docs).items():
        parts += [f"<h2>{html.escape(title)}</h2>", table.to_html(index=False, na_rep="")]
    comp = comparisons(docs)
    parts += ["<h2>Comparisons between approaches (DeLong)</h2>",
              comp.to_html(index=False) if len(comp) else "<p>Fewer than two approaches ran.</p>"]
    parts += ["<h2>Figures</h2>"]
    for fig in figures(run_dir):
        data = base64.b64encode(fig.read_bytes()).decode()
        parts.append(f"<figure><img src='data:image/png;base64,{data}' style='max-width:100%'>"
                     f"<figcaption>{html.escape(fig.stem)}</figcaption></figure>")
    parts += ["<h2>Deviations from the paper's protocol</h2>", deviations(docs).to_html(index=False),
              "<h2>Provenance</h2>",
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
