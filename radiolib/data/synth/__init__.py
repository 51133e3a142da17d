"""The synthetic cohorts, written in the real collections' conventions (never the loaders'): Duke-Breast-Cancer-MRI
(`synthesize`, module `duke`), lgg-mri-segmentation (`radiolib.data.synth.lgg.synthesize_lgg`) and the Figshare brain
tumour cohort (`synthesize_figshare`, module `figshare`, an external pretraining source).

One concern per module:
- `scanners`: the Duke acquisition conventions (phases, scanner protocols of Table 1, series descriptions);
- `plan`: the statistical plan (subtypes, receptors, latents, anatomy, lesions, faults, clinical rows);
- `truth`: the ground-truth sidecars and gene expression;
- `phantom`: the image model; `dicom`: the DICOM writer; `workbook` and `duke_header`: the clinical workbook;
- `seg`: DICOM SEG tumour masks written with highdicom, as IDC's AIMI segmentations (tests of `dicom_seg`);
- `common`: what both generators share (random streams, argument checks, the manifest, refusing to replace
  files a user wrote); `duke`, `lgg` and `figshare`: the three generators.
"""
from .common import check_cohort_args, check_replaceable, read_manifest, table_checksums, user_files  # noqa: F401
from .dicom import fake_identities, folder_safe  # noqa: F401
from .duke import GENERATOR, TABLE_NAMES, VERSION, simulate_truth, synthesize  # noqa: F401
from .figshare import synthesize_figshare  # noqa: F401
from .plan import FAULTS, KINETIC_CLASSES, Lesion, PatientSpec, draw_patient  # noqa: F401
from .scanners import (  # noqa: F401
    MULTIPHASE_VARIANTS,
    NON_DYNAMIC_DESCRIPTION,
    PHASE_MINUTES,
    PHASES,
    PROTOCOLS,
    SERIES_DESCRIPTIONS,
    SPACING_SCALE,
    Protocol,
)
from .truth import GENE_SETS  # noqa: F401
