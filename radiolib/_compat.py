"""The modules' former flat names (before the layers): `import radiolib.cohort` or `from radiolib import cohort` still
work and give the module at its new place (`radiolib.data.cohort`), with a DeprecationWarning saying where it is."""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "data": ("cohort", "dataset", "descriptor", "dicom_seg", "fetch", "imaging", "lgg", "patches", "series", "source",
             "synth", "targets"),
    "learn": ("dae", "features", "handcrafted", "models", "pretraining", "training", "weights"),
    "stats": ("associations", "ceiling", "evaluation", "masking", "receptors"),
    "steps": ("approaches", "radiogenomics"),
    "core": ("cache", "frontend"),
    "run": ("cli", "context", "inputs", "notebook_files", "paper", "params", "protocol", "results", "study"),
    "views": ("plots", "report", "widgets"),
}
FORMER = {old: f"{layer}.{old}" for layer, olds in MOVED.items() for old in olds}
FORMER["synth_lgg"] = "data.synth.lgg"


def new_name(package: str, fullname: str) -> str | None:
    """`radiolib.cohort` -> `radiolib.data.cohort`, `radiolib.synth.lgg` -> `radiolib.data.synth.lgg`; None if not
    a former name."""
    parts = fullname.split(".")
    if parts[0] != package or len(parts) < 2 or parts[1] not in FORMER:
        return None
    return ".".join([package, FORMER[parts[1]], *parts[2:]])


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} has moved to {new}; import it from there (the old name will be removed)",
                  DeprecationWarning, stacklevel=3)


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds a former name and loads it as the module at its new place (the same object, not a copy)."""

    def __init__(self, package: str):
        self.package = package

    def find_spec(self, fullname, path=None, target=None):
        new = new_name(self.package, fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        new = new_name(self.package, spec.name)
        _warn(spec.name, new)
        return importlib.import_module(new)

    def exec_module(self, module):
        pass  # the module at its new place has run already


def install(package: str) -> None:
    """Register the finder once, and `from radiolib import cohort` through the package's `__getattr__`."""
    if not any(isinstance(f, _Alias) and f.package == package for f in sys.meta_path):
        sys.meta_path.insert(0, _Alias(package))  # before the path finder, which would load a second copy

    def __getattr__(name: str):
        if name in FORMER:
            return importlib.import_module(f"{package}.{name}")  # through the finder: warns, same module
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    sys.modules[package].__getattr__ = __getattr__
