"""Data: the collections' sources and loaders (Duke DCE-MRI, TCGA-LGG, IDC fetch, DICOM SEG), the clinical targets,
the patch geometry and the cached patch set, and the synthetic cohorts written in the real layouts (`synth`)."""
