"""The DICOM writer of the synthetic Duke cohort: TCIA folder names, one series per phase (or one holding every
phase), the headers of the real collection, the injected file faults, and a byte encoder that writes a series'
files as pydicom would, about ten times faster."""
from __future__ import annotations

import re
from bisect import bisect
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset, validate_file_meta
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from .plan import STUDY_DATE, PatientSpec, index_of, slice_z
from .scanners import MULTIPHASE_VARIANTS, PHASES, SERIES_DESCRIPTIONS

STUDY_DESCRIPTION = "MRI BREAST BILATERAL W & WO"
_PHASE_TIMES = ("120000.000000", "120130.000000", "120300.000000", "120430.000000", "120600.000000")
_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def folder_safe(text: str) -> str:
    """TCIA folder names keep letters, digits, spaces, dots and hyphens ("W & WO" -> "W  WO")."""
    return re.sub(r"[^A-Za-z0-9 .\-]", "", text)


def write_patient(spec: PatientSpec, volumes: np.ndarray, root: Path, entropy: list[str]) -> int:
    """Write one patient's rendered phases (`phantom.render`) as DICOM series, with its fault; returns the number
    of .dcm files. UIDs are hashes of `entropy` (generator, cohort parameters), the patient and the object: unique
    and reproducible."""

    def uid(*parts) -> str:
        return generate_uid(entropy_srcs=[*entropy, spec.patient, *map(str, parts)])

    study = f"{STUDY_DATE:%m-%d-%Y}-NA-{folder_safe(STUDY_DESCRIPTION)}-{spec.folder_ids[0]:05d}"
    study_dir = root / spec.patient / study
    zs = slice_z(spec, np.arange(spec.slices))
    n_files = 0
    if spec.extra_series:  # the non-dynamic T1 series: every other slice, twice as thick, numbered before the DCE
        number = spec.series_base - 1
        series_dir = study_dir / f"{number}.000000-{folder_safe(spec.extra_series)}-{spec.folder_ids[1] // 3:05d}"
        _write_series(series_dir, volumes[0, ::2], zs[::2], spec, 0, spec.extra_series, number, uid, "t1",
                      slice_mm=2 * spec.protocol.slice_mm)
        n_files += len(zs[::2])
    if spec.variant in MULTIPHASE_VARIANTS:  # one series, the phases one after the other
        series_dir = study_dir / f"{spec.series_base}.000000-{folder_safe(spec.variant)}-{spec.folder_ids[1]:05d}"
        for p in range(len(PHASES)):
            _write_series(series_dir, volumes[p], zs, spec, p, spec.variant, spec.series_base, uid, "dce",
                          first_number=p * spec.slices + 1)
        return n_files + len(PHASES) * spec.slices
    return n_files + _write_phase_series(spec, volumes, zs, study_dir, uid)


def _write_phase_series(spec: PatientSpec, volumes: np.ndarray, zs: np.ndarray, study_dir: Path, uid) -> int:
    """One series per phase, as most real patients have; the faults drop, shorten or damage one of them."""
    detail = spec.fault_detail
    n_files = 0
    for p, phase in enumerate(PHASES):
        if spec.fault == "missing_phase" and phase == detail["phase"]:
            continue
        description = SERIES_DESCRIPTIONS[spec.variant][p]
        number = spec.series_base + p
        series_dir = study_dir / f"{number}.000000-{folder_safe(description)}-{spec.folder_ids[p + 1]:05d}"
        n_slices = spec.slices
        if spec.fault == "discordant_slices" and phase == detail["phase"]:
            n_slices = detail["slices_written"]
        _write_series(series_dir, volumes[p, :n_slices], zs[:n_slices], spec, p, description, number, uid, p)
        n_files += n_slices
        if spec.fault in ("truncated_dicom", "not_dicom") and phase == detail["phase"]:
            _damage(series_dir / f"1-{detail['slice']:03d}.dcm", spec.fault)
    return n_files


def _damage(victim: Path, fault: str) -> None:
    """A partial download (the file cut in half) or a file that is not DICOM at all."""
    if fault == "truncated_dicom":
        data = victim.read_bytes()
        victim.write_bytes(data[: len(data) // 2])
    else:
        victim.write_text("This file was meant to be a DICOM image but holds this text instead.\n")


def _write_series(series_dir: Path, volume: np.ndarray, zs: np.ndarray, spec: PatientSpec, p: int, description: str,
                  number: int, uid, series_key, first_number: int = 1, slice_mm: float | None = None) -> None:
    """One DICOM file per slice (Explicit VR Little Endian, uint16 MONOCHROME2) of phase p; `volume` and its
    slice positions `zs` in increasing z. Files and InstanceNumbers count from `first_number` in the patient's
    numbering (`index_of`); `series_key` names the series (its UID), shared by the phases of one series."""

    series_dir.mkdir(parents=True, exist_ok=True)
    proto = spec.protocol
    fov = proto.fov_cm * 10.0
    dx = proto.pixel_mm
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = _MR_IMAGE_STORAGE
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.SOPClassUID = _MR_IMAGE_STORAGE
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = f"{STUDY_DATE:%Y%m%d}"
    ds.StudyTime = _PHASE_TIMES[0]
    ds.SeriesTime = _PHASE_TIMES[0 if series_key == "dce" else p]  # a series of every phase starts with the first
    ds.AcquisitionTime = ds.ContentTime = _PHASE_TIMES[p]
    ds.AccessionNumber = ""
    ds.Modality = "MR"
    ds.Manufacturer = proto.manufacturer
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = STUDY_DESCRIPTION
    ds.SeriesDescription = description
    ds.ManufacturerModelName = proto.model
    ds.PatientName = spec.name
    ds.PatientID = spec.patient
    ds.PatientBirthDate = spec.birth_date
    ds.PatientSex = "F"
    ds.PatientAge = f"{spec.age:03d}Y"
    ds.BodyPartExamined = "BREAST"
    ds.ScanningSequence = "GR"
    ds.SequenceVariant = ["SS", "SK"]
    ds.MRAcquisitionType = "3D"
    slice_mm = slice_mm or proto.slice_mm
    ds.SliceThickness = f"{slice_mm:g}"
    ds.RepetitionTime = f"{proto.tr_te[0]:g}"
    ds.EchoTime = f"{proto.tr_te[1]:g}"
    ds.MagneticFieldStrength = f"{proto.field_t:g}"
    ds.SpacingBetweenSlices = f"{slice_mm:g}"
    ds.FlipAngle = "10"
    ds.ContrastBolusAgent = "" if p == 0 else "MAGNEVIST"
    ds.PatientPosition = spec.patient_position
    ds.StudyInstanceUID = uid("study")
    ds.SeriesInstanceUID = uid("series", series_key)
    ds.StudyID = f"{spec.folder_ids[0]}"
    ds.SeriesNumber = number
    ds.AcquisitionNumber = 1
    if series_key != "t1":  # the DCE phases
        ds.TemporalPositionIdentifier = p + 1
        ds.NumberOfTemporalPositions = len(PHASES)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = uid("frame")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = volume.shape[1:]
    ds.PixelSpacing = [f"{dx:.6f}", f"{dx:.6f}"]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.WindowCenter, ds.WindowWidth = 600, 1200
    ds.PixelData = b""  # written per file by _FileEncoder (declared here so its tag order and VR are known)
    x0 = y0 = -fov / 2 + dx / 2
    write = _FileEncoder(meta, ds)
    count = volume.shape[0]
    for n in range(1, count + 1):
        k = index_of(spec, n, count)
        z = f"{zs[k]:.4f}"
        number_k = first_number + n - 1
        write(series_dir / f"1-{number_k:03d}.dcm", uid("image", series_key, p, k), number_k,
              [f"{x0:.4f}", f"{y0:.4f}", z], z, np.ascontiguousarray(volume[k], dtype="<u2").tobytes())


class _FileEncoder:
    """Writes the files of one series as pydicom would (`save_as(..., enforce_file_format=True)`), ~10x faster.

    The elements shared by every slice are encoded once by pydicom; only the per-slice elements (SOP instance UID,
    instance number, position, slice location, pixels) are encoded per file and spliced in tag order.
    """

    _VARIABLE = ((0x00080018, "UI"), (0x00200013, "IS"), (0x00200032, "DS"), (0x00201041, "DS"),
                 (0x7FE00010, "OW"))

    def __init__(self, meta, ds) -> None:
        meta.MediaStorageSOPInstanceUID = "1.2"  # placeholder; replaced per file
        validate_file_meta(meta, enforce_standard=True)
        self.meta_runs = self._runs(meta, [0x00020003])
        self.runs = self._runs(ds, [tag for tag, _ in self._VARIABLE])

    @staticmethod
    def _encode(elements) -> bytes:
        if not isinstance(elements, Dataset):
            dataset = Dataset()
            for elem in elements:
                dataset.add(elem)
            elements = dataset
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, False
        write_dataset(fp, elements)
        return fp.getvalue()

    def _runs(self, ds, variable: list[int]) -> list[bytes]:
        """The encoded constant elements between consecutive variable tags (len(variable) + 1 byte runs)."""
        runs: list[list] = [[] for _ in range(len(variable) + 1)]
        for elem in ds:
            if elem.tag not in variable and elem.tag != 0x00020000:
                runs[bisect(variable, elem.tag)].append(elem)
        return [self._encode(r) for r in runs]

    def __call__(self, path: Path, sop_uid: str, number: int, position: list[str], location: str,
                 pixels: bytes) -> None:
        meta_tail = self.meta_runs[0] + self._encode([DataElement(0x00020003, "UI", sop_uid)]) + self.meta_runs[1]
        group_length = self._encode([DataElement(0x00020000, "UL", len(meta_tail))])
        parts = [b"\0" * 128, b"DICM", group_length, meta_tail, self.runs[0]]
        for (tag, vr), value, run in zip(self._VARIABLE, (sop_uid, number, position, location, pixels),
                                         self.runs[1:]):
            parts += [self._encode([DataElement(tag, vr, value)]), run]
        path.write_bytes(b"".join(parts))


def fake_identities(root: str | Path) -> set[str]:
    """The fake patient names and birth dates in the DICOM headers (one readable file per patient).

    Each name is returned as written ("Family^Given") and as "Given Family"; each birth date as YYYYMMDD and
    YYYY-MM-DD, so tests can check that no output (tables, notebooks, results) shows them.
    """
    found: set[str] = set()
    for pdir in sorted(Path(root).glob("Breast_MRI_*")):
        for f in sorted(pdir.rglob("*.dcm")):
            try:
                ds = pydicom.dcmread(f, stop_before_pixels=True)
                name, born = str(ds.PatientName), str(ds.PatientBirthDate)
            except Exception:  # noqa: BLE001 - the injected faults make some files unreadable
                continue
            family, _, given = name.partition("^")
            found |= {name, f"{given} {family}".strip(), born, f"{born[:4]}-{born[4:6]}-{born[6:]}"}
            break
    return found
