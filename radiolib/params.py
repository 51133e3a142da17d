"""Notebook parameters: the valid keys, their smoke-sized defaults, and validation.

Each notebook's `parameters` cell holds exactly the defaults listed here (a test checks it), the profiles in
`params/<profile>/<stem>.yaml` override them, and `bind()` (the cell after the parameters) refuses any unknown or
misspelled key with the list of valid ones; papermill alone would only log a warning.
"""
from __future__ import annotations

import difflib
import types
from pathlib import Path
from typing import Any, Mapping

import yaml

# Keys every notebook shares: where the data is, how the synthetic cohort is made, how patches are cut.
COMMON: dict[str, Any] = {
    "profile": "smoke",
    "data_dir": None,
    "target": None,
    "synth_patients": 24,
    "synth_seed": 0,
    "synth_effect": 1.5,
    "synth_faults": True,
    "patch_sizes": [80, 120],
    "n_augment": 4,
    "seed": 0,
    "n_jobs": 1,
    "run_dir": "../runs/interactive",
    "cache_dir": None,
}

DOC: dict[str, str] = {
    "profile": "name of the params/ profile this run comes from",
    "data_dir": "a Duke or LGG download; None: the synthetic cohort below",
    "target": "the label; None: luminal A (Duke), COCCluster 2 (LGG); README: other targets",
    "synth_patients": "synthetic cohort: number of patients",
    "synth_seed": "synthetic cohort: seed (same seed, same bytes)",
    "synth_effect": "synthetic cohort: subtype-image signal (0: a null cohort)",
    "synth_faults": "synthetic cohort: inject the faults the paper excluded patients for",
    "patch_sizes": "patch sides in the paper's pixels (0.97 mm), scaled to the data's spacing",
    "n_augment": "augmented patches per lesion region (translation + rotation)",
    "seed": "seed of augmentation, folds and training",
    "n_jobs": "parallel workers (joblib)",
    "run_dir": "where results/ and figures/ go",
    "cache_dir": "None: $RADIOLIB_CACHE, else ~/.cache/radiolib",
}

NOTEBOOKS: dict[str, dict[str, Any]] = {
    "01_preprocessing": {},
}

_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def parameters_cell(stem: str) -> str:
    """The source of a notebook's `parameters` cell: every key with its default and what it means."""
    lines = []
    for key, value in defaults(stem).items():
        note = DOC.get(key)
        lines.append(f"{key} = {value!r}" + (f"  # {note}" if note else ""))
    return "\n".join(lines)


def defaults(stem: str) -> dict[str, Any]:
    """The full default parameters of one notebook (common keys first)."""
    if stem not in NOTEBOOKS:
        raise KeyError(f"unknown notebook {stem!r}; known: {', '.join(NOTEBOOKS)}")
    return {**COMMON, **NOTEBOOKS[stem]}


def _unknown_key_message(stem: str, bad: list[str]) -> str:
    valid = list(defaults(stem))
    hints = []
    for key in bad:
        close = difflib.get_close_matches(key, valid, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return (f"unknown parameter {', '.join(hints)} for notebook {stem}. "
            f"Valid keys: {', '.join(valid)}")


def validate(stem: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Check keys and types against the defaults; return the merged parameters."""
    spec = defaults(stem)
    bad = [k for k in values if k not in spec]
    if bad:
        raise ValueError(_unknown_key_message(stem, bad))
    merged = dict(spec)
    for key, value in values.items():
        ref = spec[key]
        if ref is not None and value is not None and not _same_kind(ref, value):
            raise TypeError(f"parameter {key!r} of {stem} should be {type(ref).__name__}, "
                            f"got {value!r} ({type(value).__name__})")
        merged[key] = value
    return merged


def _same_kind(ref: Any, value: Any) -> bool:
    if isinstance(ref, bool) or isinstance(value, bool):
        return isinstance(ref, bool) and isinstance(value, bool)
    if isinstance(ref, (int, float)):
        return isinstance(value, (int, float))
    if isinstance(ref, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(ref))


def bind(namespace: Mapping[str, Any], stem: str) -> types.SimpleNamespace:
    """Collect the notebook's parameters from its globals, refusing names that are not parameters.

    Called in the cell right after the `parameters` cell (and papermill's injected cell), where the only
    user-level globals are parameters: anything else is a misspelled or unknown key.
    """
    values = {k: v for k, v in namespace.items()
              if not k.startswith("_") and k not in _IPYTHON_NAMES
              and not isinstance(v, types.ModuleType) and not callable(v)}
    return types.SimpleNamespace(**validate(stem, values))


def load_profile(profile: str, stem: str, params_dir: Path) -> dict[str, Any]:
    """Read `params/<profile>/<stem>.yaml` and validate it (missing file = no overrides)."""
    path = Path(params_dir) / profile / f"{stem}.yaml"
    if not (Path(params_dir) / profile).is_dir():
        profiles = sorted(p.name for p in Path(params_dir).iterdir() if p.is_dir())
        raise ValueError(f"unknown profile {profile!r}; available: {', '.join(profiles)}")
    values = yaml.safe_load(path.read_text()) if path.exists() else {}
    try:
        validate(stem, values or {})
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path.name} of profile {profile}: {err}") from None
    return dict(values or {})


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn `-p key=value` pairs into typed values (YAML scalars: 3, 0.5, true, [80, 120], null)."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"-p expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(raw)
    return out
