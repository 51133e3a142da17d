"""The clinical workbook of the synthetic Duke cohort: Clinical_and_Other_Features.xlsx with the real file's three
header rows (`duke_header`) and one row per patient, its bytes fixed for a given content."""
from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl

from .duke_header import CLINICAL_CATEGORIES, CLINICAL_COLUMNS
from .plan import PatientSpec

_FIXED_DATETIME = datetime(1990, 1, 1, 0, 0, 0)


def write_clinical(path: Path, specs: list[PatientSpec], creator: str) -> None:
    """The clinical table with the real file's three header rows; bytes fixed for a given content. A row's keys are
    column names (row 2) or, for columns that share a name or have none, their unique code legend (row 3)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    for first, last, text in CLINICAL_CATEGORIES:
        ws.cell(1, first + 1, text)
        if last > first:
            ws.merge_cells(start_row=1, start_column=first + 1, end_row=1, end_column=last + 1)
    index = {}
    legends = [legend for _, legend in CLINICAL_COLUMNS]
    for j, (name, legend) in enumerate(CLINICAL_COLUMNS):
        ws.cell(2, j + 1, name)
        ws.cell(3, j + 1, legend)
        if name is not None:
            index.setdefault(name, j)
        if legend is not None and legends.count(legend) == 1:  # e.g. the grade's scores, one name for three
            index.setdefault(legend, j)
    for i, spec in enumerate(specs):
        for name, value in spec.clinical.items():
            if name not in index:
                raise KeyError(f"{spec.patient}: clinical column {name!r} is not in the Duke header")
            if value is not None:
                ws.cell(4 + i, index[name] + 1, value)
    wb.properties.creator = creator
    wb.properties.created = wb.properties.modified = _FIXED_DATETIME
    buf = io.BytesIO()
    wb.save(buf)
    _rezip_deterministic(buf.getvalue(), path)


def _rezip_deterministic(data: bytes, path: Path) -> None:
    """openpyxl stamps the save time (core.xml and zip entries); rewrite both with a fixed date."""
    stamp = _FIXED_DATETIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            payload = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                payload = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + stamp, payload)
                payload = re.sub(rb"(<dcterms:created[^>]*>)[^<]*", rb"\g<1>" + stamp, payload)
            entry = zipfile.ZipInfo(info.filename, date_time=_FIXED_DATETIME.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, payload)

