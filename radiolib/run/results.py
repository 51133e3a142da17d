"""The results-file interface: one JSON per notebook, one row per model setting (a line of the paper's Tables 3-6).

Other tools read these files, so the row keys are fixed (ROW_KEYS) and every write is validated, atomic and
byte-identical for identical inputs.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.cache import atomic_write_text
from ..stats.evaluation import CVResult, check_no_leakage
from . import params

ROW_KEYS = ("approach", "network", "source", "patch_size", "kernel", "layer", "train_auc", "test_auc",
            "ci95", "repeat_aucs", "folds", "skipped")
APPROACHES = ("scratch", "transfer", "features", "layerwise", "handcrafted", "receptors")
SOURCES = ("imagenet", "domain", "in_cohort", "random", "none")
FOLD_KEYS = ("repeat", "fold", "train_patients", "test_patients", "auc")
FOLD_EXTRA_KEYS = ("pretraining_patients",)  # in-cohort pretraining: the patients the fold's network was pretrained on
SIGNIFICANT_DIGITS = 6  # generic float rounding at write time; AUCs are already rounded to 4 decimals
UNROUNDED_KEYS = ("oof",)  # patient scores: written at full precision (rounding them would tie patients)


def _r4(x) -> float | None:
    """An AUC-like number rounded to 4 decimals; None for None or nan."""
    if x is None:
        return None
    x = float(x)
    return round(x, 4) if math.isfinite(x) else None


def make_row(
    approach: str,
    network: str,
    source: str = "none",
    patch_size: int | None = None,
    kernel: str | None = None,
    layer: str | None = None,
    cv: CVResult | None = None,
    skipped: str | None = None,
    **extra,
) -> dict:
    """One results row with every ROW_KEYS key (AUCs rounded to 4 decimals), then any `extra` keys.

    Give either `cv` (a finished cross-validation) or `skipped` (the reason the setting was not run, e.g. a
    missing package); a skipped row has null numbers and empty folds. A row from `cv` also carries `oof` (patient ->
    out-of-fold score of the median repeat, unrounded), `median_repeat` and `tied_folds` (folds whose test scores
    are all tied, so that their AUC of 0.5 is not read as a result); `extra` may override them. A fold record also
    carries the FOLD_EXTRA_KEYS its cross-validation recorded (`pretraining_patients` of in-cohort pretraining).
    """
    _check_choice("approach", approach, APPROACHES, "make_row")
    _check_choice("source", source, SOURCES, "make_row")
    if (cv is None) == (skipped is None):
        raise ValueError(f"make_row({approach}, {network}): give exactly one of cv= or skipped=")
    if skipped is not None and not (isinstance(skipped, str) and skipped.strip()):
        raise ValueError(f"make_row({approach}, {network}): skipped must be a non-empty reason, got {skipped!r}")
    clash = sorted(set(extra) & set(ROW_KEYS))
    if clash:
        raise ValueError(f"make_row: extra keys {clash} clash with the binding row keys")
    row = {
        "approach": approach,
        "network": network,
        "source": source,
        "patch_size": None if patch_size is None else int(patch_size),
        "kernel": kernel,
        "layer": layer,
        "train_auc": None,
        "test_auc": None,
        "ci95": None,
        "repeat_aucs": None,
        "folds": [],
        "skipped": skipped,
    }
    if cv is not None:
        row.update(
            train_auc=_r4(cv.train_auc),
            test_auc=_r4(cv.test_auc),
            ci95=[_r4(v) for v in cv.ci95],
            repeat_aucs=[_r4(v) for v in cv.repeat_aucs],
            folds=[{"repeat": int(f["repeat"]), "fold": int(f["fold"]),
                    "train_patients": list(f["train_patients"]), "test_patients": list(f["test_patients"]),
                    "auc": _r4(f["auc"]), **{k: list(f[k]) for k in FOLD_EXTRA_KEYS if k in f}} for f in cv.folds],
            oof={str(k): float(v) for k, v in cv.oof_scores.items()},
            median_repeat=int(cv.median_repeat),
            tied_folds=list(getattr(cv, "tied_folds", [])),
        )
    row.update(extra)
    return row


def _check_choice(key: str, value, allowed: Sequence[str], where: str) -> None:
    if value not in allowed:
        raise ValueError(f"{where}: unknown {key} {value!r}; expected one of {list(allowed)}")


def validate_rows(rows: Iterable[Mapping]) -> None:
    """Raise ValueError naming the row and key when a row misses a binding key or has an unknown approach/source."""
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"row {i}: expected a dict, got {type(row).__name__}")
        name = f"row {i} ({row.get('approach')}, {row.get('network')})"
        missing = [k for k in ROW_KEYS if k not in row]
        if missing:
            raise ValueError(f"{name}: missing key {missing[0]!r} (all missing: {missing})")
        _check_choice("approach", row["approach"], APPROACHES, name)
        _check_choice("source", row["source"], SOURCES, name)
        folds = row["folds"] or []
        for fold in folds:
            absent = [k for k in FOLD_KEYS if k not in fold]
            if absent:
                raise ValueError(f"{name}: a fold is missing key {absent[0]!r}")
        check_no_leakage(row)


def _jsonable(obj, where: str):
    """A JSON-ready copy: numpy/pandas to Python, tuples to lists, floats to 6 significant digits, nan/inf to None."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return float(f"{obj:.{SIGNIFICANT_DIGITS}g}") if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, pd.DataFrame):
        obj = obj.to_dict(orient="records")
    elif isinstance(obj, pd.Series):
        obj = obj.to_dict()
    elif isinstance(obj, np.ndarray):
        obj = obj.tolist()
    if isinstance(obj, Mapping):
        return {str(k): (_exact(v, f"{where}.{k}") if k in UNROUNDED_KEYS else _jsonable(v, f"{where}.{k}"))
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise TypeError(f"write_results: cannot store {type(obj).__name__} at {where}")


def _exact(scores, where: str):
    """Patient -> score as JSON without rounding (Python floats round-trip exactly); nan/inf written as None."""
    if scores is None:
        return None
    if isinstance(scores, pd.Series):
        scores = scores.to_dict()
    if not isinstance(scores, Mapping):
        raise TypeError(f"write_results: {where} must map patients to scores, got {type(scores).__name__}")
    return {str(k): (float(v) if v is not None and math.isfinite(float(v)) else None) for k, v in scores.items()}


def tied_fold_warnings(rows: Sequence[Mapping]) -> list[str]:
    """One sentence per row with tied folds (every test score equal: an AUC of 0.5 by construction, not a result)."""
    out = []
    for row in rows:
        tied = row.get("tied_folds") or []
        if tied:
            out.append(f"WARNING {_setting_name(row)}: {len(tied)} fold(s) with all test scores tied "
                       f"(AUC 0.5 by construction): {', '.join(tied)}")
    return out


def write_results(path: str | os.PathLike, rows: Sequence[Mapping] | None = None, deviations: Iterable = (),
                  **top) -> Path:
    """Write `{"notebook": <file stem>, "rows": [...], "deviations": [...], **top}` as JSON, atomically.

    Validated first; then written with `cache.atomic_write_text` (a temporary file replaces the target), so a
    failure leaves any old file intact. Insertion order kept, indent=1, nan written as null: identical inputs give
    identical bytes. `top` may override "notebook".
    """
    path = Path(path)
    rows = list(rows or [])
    validate_rows(rows)
    doc = {"notebook": top.pop("notebook", path.stem), "rows": rows, "deviations": list(deviations), **top}
    text = json.dumps(_jsonable(doc, "results"), indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    atomic_write_text(path, text)
    return path


PRIVATE_PARAMETERS = ("run_dir", "cache_dir", "data_dir", "domain_data_dir")  # machine paths: never in a results file


def public_parameters(P) -> dict:
    """A notebook's parameters as recorded in its results file, machine paths replaced by what they were."""
    values = dict(vars(P))
    for key in PRIVATE_PARAMETERS:
        values.pop(key, None)
    values["data"] = "user folder" if getattr(P, "data_dir", None) else "synthetic cohort"
    return values


# What makes two results files parts of one run: the data and the parameters marked `run_key` in params.PARAMETERS
# (where a notebook has them).
RUN_KEYS = ("data", *params.run_keys())
SYNTH_KEYS = ("synth_format", "synth_patients", "synth_seed", "synth_effect", "synth_faults")


def provenance(P, patch_set=None) -> dict:
    """What a results file was made from: the data's fingerprint (of the patch set's data folder) and RUN_KEYS.

    The synthetic cohort's parameters count only when no data_dir is given.
    """
    values = public_parameters(P)
    keys = [k for k in RUN_KEYS if k in values and not (k in SYNTH_KEYS and getattr(P, "data_dir", None))]
    return {"data_fingerprint": None if patch_set is None else patch_set.fingerprint,
            "parameters": {k: values[k] for k in keys}}


def write_summary(path: str | os.PathLike, P, deviations: Iterable = (), rows=None, patch_set=None, **top) -> dict:
    """write_results plus the run's public parameters and provenance; returns the document as written.

    Give `patch_set` (the notebook's PatchSet) so the file records the data it came from and what its label
    means (`target` and `descriptor`, see descriptor.py).
    """
    descriptor = getattr(patch_set, "descriptor", None)
    described = descriptor.entries() if descriptor is not None else {}
    write_results(path, rows=rows, deviations=deviations, parameters=public_parameters(P),
                  provenance=provenance(P, patch_set), **{**described, **top})
    return read_results(path)


def read_results(path: str | os.PathLike, expect: Mapping | None = None) -> dict:
    """Load a results file written by write_results, validating its rows.

    With `expect` (a `provenance()`), refuse a file made from other data or other run parameters.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    if not isinstance(doc, dict) or "rows" not in doc:
        raise ValueError(f"{path}: not a results file (no 'rows' key)")
    try:
        validate_rows(doc["rows"])
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    if expect is not None:
        differing = provenance_mismatch(doc, expect)
        if differing:
            raise StaleResults(path, differing, "this notebook's")
    return doc


def check_earlier(results_dir, stems: Iterable[str], P, patch_set=None) -> None:
    """Refuse the earlier notebooks' results files (those present) that another run made (StaleResults)."""
    expect = provenance(P, patch_set)
    for stem in stems:
        path = Path(results_dir) / f"{stem}.json"
        if path.is_file():
            read_results(path, expect)


def read_run_results(results_dir: str | os.PathLike, stem: str, P, patch_set=None) -> tuple[dict | None, str]:
    """Another notebook's results file of this run folder, read once and checked to belong to this run (its data
    and run parameters): (the doc, "") or (None, why not)."""
    path = Path(results_dir) / f"{stem}.json"
    if not path.is_file():
        return None, f"notebook {stem} has not written results/{path.name} in this run folder: run it first"
    try:
        return read_results(path, expect=provenance(P, patch_set)), ""
    except StaleResults as exc:
        return None, f"results/{path.name} belongs to another run ({'; '.join(exc.differing)})"


class StaleResults(ValueError):
    """A results file that belongs to another run (other data or parameters)."""

    def __init__(self, path, differing: list[str], other: str):
        super().__init__(f"{path} does not belong to this run: {'; '.join(differing)} (the file vs {other}). "
                         f"Run its notebook again with this run's parameters, or remove the file.")
        self.path, self.differing = path, differing


def _recorded(doc: Mapping) -> tuple[str | None, dict]:
    """(data fingerprint, run parameters) of a results file; files of older versions: their `parameters`."""
    prov = doc.get("provenance") or {}
    params = prov.get("parameters") or {k: v for k, v in (doc.get("parameters") or {}).items() if k in RUN_KEYS}
    return prov.get("data_fingerprint"), params


def provenance_mismatch(doc: Mapping, expect: Mapping) -> list[str]:
    """The differences between a results file's provenance and `expect`, one "key: file value != expected"."""
    data, params = _recorded(doc)
    out = []
    if data and expect.get("data_fingerprint") and data != expect["data_fingerprint"]:
        out.append(f"data {data} != {expect['data_fingerprint']}")
    want = expect.get("parameters") or {}
    out += [f"{k} {params[k]!r} != {want[k]!r}" for k in RUN_KEYS if k in params and k in want
            and _jsonable(params[k], k) != _jsonable(want[k], k)]
    return out


def check_same_run(docs: Mapping[str, Mapping], expect: Mapping | None = None, folder="results") -> None:
    """Refuse results files that do not belong together (or to `expect`, the current notebook's provenance).

    Files are compared in order (notebook 01 first): each with `expect`, then with the earlier files for the keys
    `expect` lacks (e.g. n_folds, or the data fingerprint in the report). A StaleResults names the file and keys.
    """
    ref = {"data_fingerprint": (expect or {}).get("data_fingerprint"),
           "parameters": dict((expect or {}).get("parameters") or {})}
    source = {k: "this notebook's parameters" for k in ref["parameters"]}
    ref_data_from = "this notebook's data" if ref["data_fingerprint"] else None
    for stem, doc in docs.items():
        name = Path(folder) / f"{stem}.json"
        differing = provenance_mismatch(doc, ref)
        if differing:
            keys = [d.split(" ")[0] for d in differing]
            others = sorted({ref_data_from if k == "data" else source[k] for k in keys})
            raise StaleResults(name, differing, " and ".join(others))
        data, params = _recorded(doc)
        if data and not ref["data_fingerprint"]:
            ref["data_fingerprint"], ref_data_from = data, f"{stem}.json"
        for k, v in params.items():
            if k not in ref["parameters"]:
                ref["parameters"][k], source[k] = v, f"{stem}.json"


def _fmt_ci(ci) -> str:
    if not ci or any(v is None or (isinstance(v, float) and math.isnan(v)) for v in ci):
        return ""
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]"


SHARE_COLUMN = "share of ceiling"
BASELINE_COLUMN = "vs handcrafted"


def results_table(rows: Sequence[Mapping] | Mapping, ceiling=None, baseline: Mapping | None = None) -> pd.DataFrame:
    """Rows as a display table like the paper's: network, source, patch, kernel, layer, AUCs, CI "[0.51, 0.60]".

    With a known `ceiling` (`radiolib.stats.ceiling.Ceiling`), a column SHARE_COLUMN after the CI: each row's test AUC
    divided by the ceiling's (blank for a skipped row). With a `baseline` row that ran (`radiolib.learn.handcrafted`), a
    column BASELINE_COLUMN: each row's test AUC minus the baseline's. Display only: the rows are not changed.
    """
    if isinstance(rows, Mapping):
        rows = rows["rows"]
    validate_rows(rows)
    table = pd.DataFrame({
        "network": [r["network"] for r in rows],
        "source": [r["source"] for r in rows],
        "patch": pd.array([r["patch_size"] for r in rows], dtype="Int64"),
        "kernel": [r["kernel"] or "" for r in rows],
        "layer": [r["layer"] or "" for r in rows],
        "train AUC": [np.nan if r["train_auc"] is None else float(r["train_auc"]) for r in rows],
        "test AUC": [np.nan if r["test_auc"] is None else float(r["test_auc"]) for r in rows],
        "95% CI": [_fmt_ci(r["ci95"]) for r in rows],
        "skipped": [r["skipped"] or "" for r in rows],
    })
    if ceiling is not None and ceiling.known:
        table.insert(table.columns.get_loc("95% CI") + 1, SHARE_COLUMN, [ceiling.share(r["test_auc"]) for r in rows])
    if baseline is not None and baseline.get("test_auc") is not None:
        ref = float(baseline["test_auc"])
        table.insert(table.columns.get_loc("skipped"), BASELINE_COLUMN,
                     [np.nan if r["test_auc"] is None else round(float(r["test_auc"]) - ref, 2) + 0.0  # no -0.00
                      for r in rows])
    return table


def _setting_name(row: Mapping) -> str:
    """"scratch cifar none 80", "features googlenet domain 120 poly flatten": the row's setting in words."""
    return " ".join(str(row[k]) for k in ("approach", "network", "source", "patch_size", "kernel", "layer")
                    if row.get(k))


def _row_name(row: Mapping) -> str:
    """_setting_name, plus the swept value of a sweep row ("... lr 0.0005")."""
    name = _setting_name(row)
    swept = row.get("sweep")
    return f"{name} {swept} {row.get(swept):g}" if swept and isinstance(row.get(swept), (int, float)) else name


def structure(rows: Sequence[Mapping] | Mapping) -> str:
    """What a results table must be on every machine: each row run or skipped (with the reason), its repeats x folds
    and test patients; raises ValueError naming the row if an AUC or CI end is outside [0, 1], a CI is reversed, a
    patient is tested twice in one repeat or a repeat does not test the row's patients.

    Trained networks' AUCs are not bit-reproducible across CPUs (float kernels and their reduction order differ with
    the instruction set), so notebooks show the numbers for reading and let nbval compare this summary.
    """
    if isinstance(rows, Mapping):
        rows = rows["rows"]
    validate_rows(rows)
    lines = []
    for row in rows:
        name = _row_name(row)
        if row["skipped"]:
            lines.append(f"{name}: skipped ({row['skipped'].split(':')[0]})")
            continue
        numbers = [row["train_auc"], row["test_auc"], *(row["ci95"] or []), *[f["auc"] for f in row["folds"]]]
        bad = [v for v in numbers if v is not None and not 0.0 <= float(v) <= 1.0]
        if bad or row["test_auc"] is None:
            raise ValueError(f"{name}: AUC outside [0, 1] or missing: {bad or row['test_auc']}")
        lo, hi = row["ci95"]
        if lo > hi:
            raise ValueError(f"{name}: 95% CI reversed: {row['ci95']}")
        tested: dict[int, list] = {}
        for f in row["folds"]:
            tested.setdefault(int(f["repeat"]), []).extend(map(str, f["test_patients"]))
        sets = {r: set(p) for r, p in tested.items()}
        for r, patients in tested.items():
            if len(patients) != len(sets[r]):
                raise ValueError(f"{name}: a patient is tested twice in repeat {r}")
        first = next(iter(sets.values()))
        if any(s != first for s in sets.values()):
            raise ValueError(f"{name}: the repeats test different patients")
        folds = len(row["folds"]) // len(tested)
        lines.append(f"{name}: {len(tested)} repeat(s) x {folds} folds, {len(first)} test patients each once "
                     f"per repeat; AUCs and CI in [0, 1]")
    return "\n".join(lines)
