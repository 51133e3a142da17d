"""What the study needs of a data source, whatever the collection: the `DataSource` protocol that the Duke loader
(`cohort.Cohort`), the LGG loader (`lgg.LggCohort`) and later sources implement, and `SourceTables`, the methods
every source computes the same way from its tables.

A source is opened for one target (`descriptor.target`); it holds the included patients (`table`, one row each with
at least patient, label, pixel_spacing, rows, columns, slices, n_boxes), the excluded ones with their reasons
(`qc`: patient, reason), the lesion boxes (`boxes`: patient, lesion and Annotation_Boxes.csv's 1-based inclusive
Start/End Row, Column and Slice), and reads a patient's preprocessed `Volume` on demand. Consumers (`dataset`,
`widgets`, the notebooks) use only these members, so a new collection needs a loader and nothing else.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import pandas as pd

from .descriptor import Descriptor

if TYPE_CHECKING:  # the type only: importing `imaging` here would load SimpleITK for every source user
    from .imaging import Volume


@runtime_checkable
class DataSource(Protocol):
    """One collection opened for one target: patients, labels, volumes, regions, QC table and descriptor."""

    root: Path  # the folder the tables and images were found in
    table: pd.DataFrame  # one row per included patient
    qc: pd.DataFrame  # one row per excluded patient: patient, reason
    boxes: pd.DataFrame  # lesion boxes of the included patients (Annotation_Boxes.csv convention)
    descriptor: Descriptor  # target, class names, channel names, the reference paper and its tables

    @property
    def patients(self) -> list[str]:
        """The included patients, in table order."""

    @property
    def channel_names(self) -> tuple[str, ...]:
        """The names of a volume's channels (the descriptor's)."""

    @property
    def target_spacing(self) -> float:
        """The in-plane spacing (mm) the volumes are resampled to."""

    def labels(self, target: str | None = None) -> pd.Series:
        """Label (1.0, 0.0, NaN where the target's column is blank) per included patient, for `target` (None: the
        source's own, `descriptor.target`)."""

    def regions(self, patient: str) -> pd.DataFrame:
        """The lesion boxes of one included patient (rows of `boxes`)."""

    def volume(self, patient: str, target_spacing: float) -> Volume:
        """The patient's preprocessed channels and lesion regions on the target grid."""

    def exclude(self, patient: str, reason: str) -> None:
        """Move a patient from `table` to `qc` (e.g. an unreadable file found while reading pixels)."""

    def flow(self) -> pd.DataFrame:
        """The cohort flow: folders found, each exclusion reason, included."""


class SourceTables:
    """The members of `DataSource` computed from `table`, `qc`, `boxes` and `descriptor` alone (no fields)."""

    table: pd.DataFrame
    qc: pd.DataFrame
    boxes: pd.DataFrame
    descriptor: Descriptor

    @property
    def patients(self) -> list[str]:
        return self.table.patient.tolist()

    @property
    def channel_names(self) -> tuple[str, ...]:
        return self.descriptor.channels

    @property
    def target_spacing(self) -> float:
        """The most frequent in-plane spacing among included patients (the paper's resampling target)."""
        counts = self.table["pixel_spacing"].round(4).value_counts()
        return float(counts.index[0]) if len(counts) else float("nan")

    def regions(self, patient: str) -> pd.DataFrame:
        if patient not in set(self.table.patient):
            raise KeyError(f"{patient} is not an included patient of this cohort")
        return self.boxes[self.boxes.patient == patient].reset_index(drop=True)

    def exclude(self, patient: str, reason: str) -> None:
        self.table = self.table[self.table.patient != patient].reset_index(drop=True)
        row = pd.DataFrame([{"patient": patient, "reason": reason}])
        self.qc = pd.concat([self.qc, row], ignore_index=True).sort_values("patient").reset_index(drop=True)

    def flow(self) -> pd.DataFrame:
        return flow_table(self.table, self.qc)


def flow_table(table: pd.DataFrame, qc: pd.DataFrame) -> pd.DataFrame:
    """The cohort flow: found -> each exclusion reason -> included (like the paper's exclusion list)."""
    kinds = qc.reason.str.split(":").str[0].value_counts()
    rows = [("patient folders found", len(table) + len(qc))]
    rows += [(f"excluded: {k}", -int(n)) for k, n in kinds.items()]
    rows += [("included", len(table))]
    return pd.DataFrame(rows, columns=["step", "patients"])


def labels_of(values: pd.Series, patients) -> pd.Series:
    """Labels given per patient (index), restricted to and ordered as `patients`."""
    return values.astype(float).reindex(list(patients)).rename("label").rename_axis("patient")
