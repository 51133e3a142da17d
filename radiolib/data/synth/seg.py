"""DICOM SEG tumour masks for the synthetic cohort, written with highdicom as IDC's AIMI breast-tumour segmentations
are published: one binary segment referencing one DCE series by its SOPInstanceUIDs, laid out as idc-index
downloads a series (`<out>/<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>/<file>.dcm`).

What could not be checked against the real objects here (no download): their segment label and codes, which phase
they reference, BINARY against FRACTIONAL, and whether empty frames are omitted; `AIMI_AI` is their series
description as IDC's index lists it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

AIMI_AI = "AIMI breast-tumor AI segmentation"  # SeriesDescription in IDC's index (805 Duke patients)
MASK_FOLDER = "AIMI_SEG"  # where `radiolib fetch duke --masks aimi` puts the AIMI SEG objects, beside the patients


def write_seg(files, mask: np.ndarray, out: str | Path, description: str = AIMI_AI, series_number: int = 1000) -> Path:
    """Write `mask` (bool, slices x rows x columns, slices ascending along the slice normal) as a SEG of one DCE
    phase, the image `files` (a series folder's, or one phase's share of a series holding every phase); returns the
    file. UIDs are hashes of the source series, its first image and the description."""
    import highdicom as hd  # lazy: optional package (the fetch extra)

    sources = sorted((pydicom.dcmread(f) for f in files), key=_along_normal)
    if mask.shape != (len(sources), sources[0].Rows, sources[0].Columns):
        raise ValueError(f"mask {mask.shape} does not fit the series ({len(sources)}, {sources[0].Rows}, "
                         f"{sources[0].Columns})")
    algorithm = hd.AlgorithmIdentificationSequence(name="synthetic lesion", version="1",
                                                   family=codes.cid7162.ArtificialIntelligence)
    segment = hd.seg.SegmentDescription(segment_number=1, segment_label="tumor",
                                        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                                        segmented_property_type=codes.SCT.Neoplasm, algorithm_type="AUTOMATIC",
                                        algorithm_identification=algorithm)
    uid = lambda *parts: generate_uid(entropy_srcs=[sources[0].SeriesInstanceUID, sources[0].SOPInstanceUID,
                                                     description, *parts])  # noqa: E731
    seg = hd.seg.Segmentation(source_images=sources, pixel_array=mask.astype(np.uint8), segmentation_type="BINARY",
                              segment_descriptions=[segment], series_instance_uid=uid("series"),
                              series_number=series_number, sop_instance_uid=uid("instance"), instance_number=1,
                              manufacturer="radiolib.synth", manufacturer_model_name="synthetic",
                              software_versions="1", device_serial_number="0", series_description=description)
    folder = Path(out) / str(seg.PatientID) / str(seg.StudyInstanceUID) / str(seg.SeriesInstanceUID)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{seg.SOPInstanceUID}.dcm"
    seg.save_as(path)
    return path


def _along_normal(ds) -> float:
    """An image's position along its slice normal (row x column direction): the order of the mask's slices."""
    iop = np.asarray(ds.ImageOrientationPatient, float)
    return float(np.dot(np.asarray(ds.ImagePositionPatient, float), np.cross(iop[:3], iop[3:])))
