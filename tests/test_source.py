"""Every data source implements the one protocol the study consumes (`source.DataSource`): the Duke and LGG
loaders on the session's synthetic cohorts, each member called and checked against the others."""
import numpy as np
import pandas as pd
import pytest

from radiolib.data import cohort, dataset, lgg
from radiolib.data.imaging import Volume
from radiolib.data.source import DataSource, SourceTables

BOX_COLUMNS = ["patient", "lesion", "Start Row", "End Row", "Start Column", "End Column", "Start Slice", "End Slice"]
OTHER_TARGET = {"duke": "Mol Subtype==3", "lgg": "RNASeqCluster==1"}  # a target besides each source's default


@pytest.fixture(scope="module", params=["duke", "lgg"])
def kind(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def root(kind, faulty_cohort, faulty_lgg):
    return faulty_cohort if kind == "duke" else faulty_lgg


@pytest.fixture(scope="module")
def source(root) -> DataSource:
    return dataset.open_cohort(root, progress=False)


def test_each_loader_gives_a_data_source_of_its_own_class(kind, source):
    assert isinstance(source, DataSource)
    assert type(source) is {"duke": cohort.Cohort, "lgg": lgg.LggCohort}[kind]
    assert not isinstance(source, {"duke": lgg.LggCohort, "lgg": cohort.Cohort}[kind])  # no subclassing


def test_what_lacks_a_member_is_not_a_data_source(faulty_cohort):
    class TablesOnly(SourceTables):  # the shared table methods, without volumes, labels or a root
        pass

    assert not isinstance(TablesOnly(), DataSource)
    assert not isinstance(pd.DataFrame(), DataSource)


def test_patients_labels_and_qc_agree(source):
    patients = source.patients
    assert patients == source.table.patient.tolist() and len(patients) >= 3
    assert not set(patients) & set(source.qc.patient)  # an excluded patient is not included
    assert len(source.qc) > 0 and (source.qc.reason.str.len() > 0).all()  # the faults: each with a reason
    labels = source.labels()
    assert labels.index.tolist() == patients and set(labels) <= {0.0, 1.0}
    assert np.array_equal(labels.to_numpy(), source.table.label.to_numpy(float))
    assert source.labels(source.descriptor.target).equals(labels)
    flow = source.flow().set_index("step").patients
    assert flow["included"] == len(patients) and flow["patient folders found"] == len(patients) + len(source.qc)


def test_labels_for_another_target_match_a_source_opened_for_it(kind, root, source):
    target = OTHER_TARGET[kind]
    other = dataset.open_cohort(root, target, progress=False)
    assert other.descriptor.target == target
    labels = source.labels(target)
    assert labels.index.tolist() == source.patients
    both = sorted(set(source.patients) & set(other.patients))
    assert len(both) >= 3
    assert labels[both].equals(other.labels()[both])
    assert not labels[both].equals(source.labels()[both])  # another target, other labels


def test_the_descriptor_names_classes_channels_and_the_paper(kind, source):
    d = source.descriptor
    assert d.dataset == kind and set(d.class_names) == {0, 1} and d.positive != d.negative
    assert source.channel_names == d.channels and len(d.channels) == 3
    assert d.reference and d.table_of("scratch")  # the default targets are the reference papers' tasks


def test_regions_and_volumes_of_a_patient(source):
    patient = source.patients[0]
    regions = source.regions(patient)
    assert len(regions) > 0 and (regions.patient == patient).all() and set(BOX_COLUMNS) <= set(regions.columns)
    assert (regions["Start Slice"] <= regions["End Slice"]).all()
    vol = source.volume(patient, source.target_spacing)
    assert isinstance(vol, Volume) and vol.patient == patient
    assert vol.channels.shape[0] == len(source.channel_names) and np.isfinite(vol.channels).all()
    assert set(vol.regions.lesion) == set(regions.lesion)
    assert len(vol.regions) == int((regions["End Slice"] - regions["Start Slice"] + 1).sum())  # one per box slice
    with pytest.raises(KeyError, match=source.qc.patient.iloc[0]):
        source.regions(source.qc.patient.iloc[0])


def test_exclude_moves_a_patient_from_the_table_to_qc(root):
    fresh = dataset.open_cohort(root, progress=False)
    patient, n = fresh.patients[0], len(fresh.patients)
    fresh.exclude(patient, "unreadable image: found later")
    assert patient not in fresh.patients and len(fresh.patients) == n - 1
    assert fresh.qc.set_index("patient").reason[patient] == "unreadable image: found later"
    assert fresh.flow().set_index("step").patients["included"] == n - 1
