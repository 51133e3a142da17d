"""radiolib: a reproduction of Zhu et al. 2019 (deep learning for radiogenomics of breast cancer DCE-MRI).

Modules, one concern each: synth (the synthetic Duke-layout cohort), series (DICOM series primitives, QC reasons),
cohort (loader and QC), imaging (reading, resampling, subtraction), patches (geometry), dataset (the cached patch
set), params (notebook parameters), study (the run), evaluation and results (the paper's protocol), models and
weights (networks), plots and widgets (notebooks).
"""
__version__ = "0.1.0"
