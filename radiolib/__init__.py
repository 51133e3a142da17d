"""radiolib: a reproduction of Zhu et al. 2019 (deep learning for radiogenomics of breast cancer DCE-MRI).

Layers, each a subpackage, each importing only from the ones before it:
- `data`: sources and loaders (Duke, TCGA-LGG, IDC fetch, DICOM SEG), targets, patches, the synthetic cohorts;
- `learn`: networks, training, pretraining, deep and handcrafted features;
- `stats`: the evaluation protocol, the ceiling, the radiogenomic tests;
- `run`: parameters, protocol, caches, results files, the study runner and the command line;
- `views`: figures, widgets, the report;
- `steps`: one step per notebook, called the same way everywhere.

The modules' former flat names (`radiolib.cohort`, `radiolib.synth`, ...) still import, with a DeprecationWarning
naming the new one (`_compat`).
"""
from . import _compat

__version__ = "0.1.0"

_compat.install(__name__)
