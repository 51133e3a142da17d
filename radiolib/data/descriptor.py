"""What a run predicts: the dataset descriptor (class names, target definition, channels, the reference paper and
its tables that stand beside our results), and the targets each loader accepts.

Duke-Breast-Cancer-MRI targets (`target` parameter):
- `luminal_like` (default): public "Mol Subtype" 0, i.e. ER or PR positive and HER2 negative. This is *not* Zhu et
  al.'s luminal A (90 of 270, 33%): 595 of the 922 public patients (65%) are luminal-like.
- `luminal_a_surrogate`: luminal-like and Nottingham grade 1-2, a stricter surrogate of luminal A (Ki-67 is not in
  the public table). Where the grade is blank it is derived from its tubule, nuclear and mitotic scores (the three
  columns headed "Tumor Grade" beside it; sum 3-5 -> 1, 6-7 -> 2, 8-9 -> 3); a patient with neither is excluded with
  a reason, whatever its subtype, so that the exclusion does not depend on the class.
- `<column>==<value>`: any column of Clinical_and_Other_Features.xlsx (row-2 names), label 1 where equal, as for
  LGG's data.csv (e.g. `Mol Subtype==3` for triple negative).
TCGA-LGG (lgg-mri-segmentation): `<data.csv column>==<value>`, default `COCCluster==2` (Buda et al. 2020).
Figshare brain tumours (Cheng et al.): `tumour_type==<glioma|meningioma|pituitary>`, default glioma.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

DUKE_CHANNELS = ("post1 - pre", "post2 - pre", "post3 - pre")
LGG_CHANNELS = ("pre-contrast", "FLAIR", "post-contrast")
ZHU = "Zhu et al. 2019"
BUDA = "Buda et al. 2020"
ZHU_TASK = "luminal A vs other subtypes: 90 luminal A of 270 patients (33%)"
BUDA_TASK = "cluster-of-clusters 2 vs other clusters, 110 patients"
ZHU_TABLES = (("scratch", "Table 3"), ("transfer", "Table 4"), ("features", "Table 5"), ("layerwise", "Table 6"))
BUDA_TABLES = (("scratch", "abstract"), ("transfer", "abstract"))  # the AUCs of the abstract (seeds/002)

LUMINAL_LIKE = "luminal_like"
LUMINAL_A_SURROGATE = "luminal_a_surrogate"
DUKE_TARGETS = (LUMINAL_LIKE, LUMINAL_A_SURROGATE)
LGG_DEFAULT = "COCCluster==2"
# The legend of "Mol Subtype" in the clinical table's third header row.
MOL_SUBTYPES = {0: "luminal-like", 1: "ER/PR+ HER2+", 2: "HER2-enriched", 3: "triple negative"}
MOL_LEGEND = {0: "ER or PR positive, HER2 negative", 1: "ER or PR positive, HER2 positive",
              2: "ER and PR negative, HER2 positive", 3: "ER, PR and HER2 negative"}
# Exclusion reasons of the targets (the QC table's `reason` begins with one of these).
NO_SUBTYPE = "missing label (Mol Subtype blank)"
NO_GRADE = ("missing label (Nottingham grade blank and its tubule, nuclear and mitotic scores incomplete, needed "
            "by luminal_a_surrogate)")
# The Nottingham grade's component scores (1-3 each; `cohort.read_clinical` finds them by their legends) and the
# grade of their sum: 3-5 -> 1, 6-7 -> 2, 8-9 -> 3.
GRADE_COMPONENTS = ("tubule_score", "nuclear_score", "mitotic_score")
GRADE_OF_SUM = {3: 1, 4: 1, 5: 1, 6: 2, 7: 2, 8: 3, 9: 3}


@dataclass(frozen=True)
class Descriptor:
    """The classes a run predicts and what stands beside its results.

    `tables` pairs each approach with the reference paper's table shown beside our rows; it is empty when the
    target is unrelated to the reference paper's task. `reference_target` names the paper's target where ours is
    another one that its numbers still stand beside (luminal-like beside luminal A), so that they are labelled as
    such; empty when ours is the paper's. `note` says how this run's table gave the labels (e.g. derived grades).
    """

    dataset: str  # "duke" or "lgg"
    target: str  # canonical target, e.g. "luminal_like" or "COCCluster==2"
    definition: str  # what label 1 means, in the data's own terms
    positive: str  # name of label 1
    negative: str  # name of label 0
    channels: tuple[str, ...]
    reference: str  # the paper this dataset's study reproduces
    reference_task: str  # that paper's task and class balance
    tables: tuple[tuple[str, str], ...] = ()
    reference_target: str = ""  # e.g. "luminal A": the paper's target, where the run's is another
    note: str = ""  # measured on the run's own table, e.g. how many grades were derived and how well they agree

    @property
    def class_names(self) -> dict[int, str]:
        return {1: self.positive, 0: self.negative}

    @property
    def reference_label(self) -> str:
        """The reference paper as its numbers are labelled beside ours: "Zhu et al. 2019 (luminal A: another
        target)" where the run's target is not the paper's, else the paper's name."""
        if not self.reference_target:
            return self.reference
        return f"{self.reference} ({self.reference_target}: another target)"

    def table_of(self, approach: str) -> str | None:
        """The reference paper's table standing beside our rows of `approach`, or None."""
        return dict(self.tables).get(approach)

    def prevalence(self, labels) -> str:
        """E.g. "61% of 264 included patients" (label 1 among the given labels)."""
        y = pd.Series(labels, dtype=float).dropna()
        share = f"{y.mean():.0%}" if len(y) else "n/a"
        return f"{share} of {len(y)} included patients"

    def statement(self, labels) -> str:
        """The deviations-list sentence: the definition used, its prevalence here, and the reference's task."""
        return (f"target {self.target} ({self.definition}): {self.positive} in {self.prevalence(labels)}; "
                f"{self.reference}: {self.reference_task}" + (f"; {self.note}" if self.note else ""))

    def entries(self) -> dict:
        """The top-level entries of a results file: `target` (the canonical string) and `descriptor` (all fields)."""
        return {"target": self.target, "descriptor": self.to_dict()}

    def to_dict(self) -> dict:
        return {k: list(map(list, v)) if k == "tables" else list(v) if k == "channels" else v
                for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "Descriptor":
        """The descriptor of a results file or patch set; one written before `reference_target` existed gets its
        target's (so that an old luminal-like run still labels Zhu et al.'s luminal A numbers as another target)."""
        d = dict(d)
        if "reference_target" not in d:
            d["reference_target"] = _reference_target(d.get("dataset"), d.get("target"))
        return cls(**{**d, "channels": tuple(d["channels"]), "tables": tuple(tuple(t) for t in d.get("tables", ()))})


# ---------------------------------------------------------------------------------------------------------------
# `column==value` targets, shared by the Duke and LGG loaders


def split_target(target: str, table: str, example: str) -> tuple[str, str]:
    """Split "<column>==<value>" into (column, value); `table` and `example` only word the error."""
    m = re.fullmatch(r"\s*([^=]*?)\s*==\s*(.*?)\s*", str(target))
    if not m or not m.group(1) or not m.group(2):
        raise ValueError(f"target {target!r} is not of the form '<column>==<value>' (a column of {table}), "
                         f"e.g. {example!r}")
    return m.group(1), m.group(2)


def parse_target(target: str, columns, table: str = "data.csv", example: str = LGG_DEFAULT) -> tuple[str, str]:
    """(column, value) of "<column>==<value>"; the column must be one of `columns` (named once)."""
    column, value = split_target(target, table, example)
    check_column(column, columns, table)
    return column, value


def check_column(column: str, columns, table: str) -> None:
    """Refuse a target column that `table` lacks or names more than once (which one would be meant?)."""
    columns = [str(c) for c in columns]
    if column not in columns:
        raise ValueError(f"target column {column!r} is not in {table}; its columns are: {', '.join(columns)}")
    if columns.count(column) > 1:
        raise ValueError(f"target column {column!r} appears {columns.count(column)} times in {table}: ambiguous")


def target_labels(values: pd.Series, column: str, wanted: str) -> pd.Series:
    """1.0 where `values` equals `wanted`, 0.0 where not, NaN where blank (numeric columns compare as numbers)."""
    present = values.notna() & (values.astype(str).str.strip() != "")
    numbers = pd.to_numeric(values, errors="coerce")
    if present.any() and numbers[present].notna().all():
        try:
            equal = numbers == float(wanted)
        except ValueError:
            raise ValueError(f"target {column}=={wanted}: {column} holds numbers, {wanted!r} is not one") from None
    else:
        equal = values.astype(str).str.strip() == wanted
    if present.any() and not equal[present].any():
        seen = ", ".join(sorted(values[present].astype(str).str.strip().unique())[:12])
        raise ValueError(f"target {column}=={wanted}: no patient has this value (values found: {seen})")
    return equal.astype(float).where(present)


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------------------------
# Duke


def duke_target(target: str | None) -> str:
    """The canonical Duke target: luminal_like (also for None and "Mol Subtype==0"), luminal_a_surrogate, or a
    "<column>==<value>" string; anything else is refused with the choices."""
    if target is None or str(target).strip() in (LUMINAL_LIKE, ""):
        return LUMINAL_LIKE
    target = str(target).strip()
    if target in DUKE_TARGETS:
        return target
    if "==" not in target:
        raise ValueError(f"target {target!r}: the Duke loader accepts {', '.join(DUKE_TARGETS)} or "
                         "'<column>==<value>' (a column of Clinical_and_Other_Features.xlsx, e.g. 'Mol Subtype==3')")
    column, value = split_target(target, "Clinical_and_Other_Features.xlsx", "Mol Subtype==3")
    if column == "Mol Subtype" and _number(value) == 0:
        return LUMINAL_LIKE
    return f"{column}=={value}"


def duke_descriptor(target: str | None = None, clinical: pd.DataFrame | None = None) -> Descriptor:
    """The descriptor of a Duke target (see `duke_target`). With the run's `clinical` table (`cohort.read_clinical`),
    luminal_a_surrogate's `note` gives the grades derived there and their agreement with the recorded ones."""
    target = duke_target(target)
    common = dict(dataset="duke", target=target, channels=DUKE_CHANNELS, reference=ZHU, reference_task=ZHU_TASK,
                  reference_target=_reference_target("duke", target))
    if target == LUMINAL_LIKE:
        return Descriptor(definition=f"Mol Subtype 0: {MOL_LEGEND[0]}", positive="luminal-like",
                          negative="other subtypes", tables=ZHU_TABLES, **common)
    if target == LUMINAL_A_SURROGATE:
        note = grade_note(clinical) if clinical is not None else ""
        return Descriptor(definition=f"Mol Subtype 0 ({MOL_LEGEND[0]}) and Nottingham grade 1-2, where blank the "
                          "grade of its tubule + nuclear + mitotic scores (3-5: 1, 6-7: 2, 8-9: 3); patients with "
                          "neither excluded", positive="luminal A surrogate", negative="other",
                          tables=ZHU_TABLES, note=note, **common)
    column, value = split_target(target, "Clinical_and_Other_Features.xlsx", "Mol Subtype==3")
    code = _number(value)
    if column == "Mol Subtype" and code in MOL_SUBTYPES:
        return Descriptor(definition=f"Mol Subtype {int(code)}: {MOL_LEGEND[int(code)]}",
                          positive=MOL_SUBTYPES[int(code)], negative="other subtypes", **common)
    return Descriptor(definition=f"clinical column {column!r} equal to {value}", positive=f"{column} = {value}",
                      negative=f"{column} other than {value}", **common)


def _reference_target(dataset: str | None, target: str | None) -> str:
    """The reference paper's target where a run's target differs from it but the paper's numbers stand beside
    (Duke's luminal_like and luminal_a_surrogate beside Zhu et al.'s luminal A); "" otherwise."""
    if dataset == "duke" and target in DUKE_TARGETS:
        return "luminal A"
    return ""


def component_grade(clinical: pd.DataFrame) -> pd.Series:
    """The Nottingham grade of the tubule + nuclear + mitotic scores (3-5: 1, 6-7: 2, 8-9: 3), NaN where one score
    is blank or outside 1-3 (or the table has no score columns)."""
    if not set(GRADE_COMPONENTS) <= set(clinical.columns):
        return pd.Series(np.nan, index=clinical.index)
    scores = clinical[list(GRADE_COMPONENTS)].apply(pd.to_numeric, errors="coerce")
    valid = scores.isin([1, 2, 3]).all(axis=1)
    return scores.sum(axis=1).map(GRADE_OF_SUM).where(valid).astype(float)


def nottingham_grade(clinical: pd.DataFrame) -> pd.Series:
    """The grade used by luminal_a_surrogate: the recorded Nottingham grade, else the grade of its scores."""
    return clinical["nottingham_grade"].fillna(component_grade(clinical))


def grade_derivation(clinical: pd.DataFrame) -> dict[str, int]:
    """Counts on a clinical table: patients, grades blank, of those derived from the scores, patients with both a
    recorded and a derived grade, and of those agreeing."""
    recorded, derived = clinical["nottingham_grade"], component_grade(clinical)
    both = recorded.notna() & derived.notna()
    return {"patients": len(clinical), "blank": int(recorded.isna().sum()),
            "derived": int((recorded.isna() & derived.notna()).sum()), "both": int(both.sum()),
            "agree": int((recorded[both] == derived[both]).sum())}


def grade_note(clinical: pd.DataFrame) -> str:
    """The deviations-list sentence on the derived grades, measured on the run's clinical table."""
    c = grade_derivation(clinical)
    return (f"Nottingham grade blank for {c['blank']} of {c['patients']} patients of the clinical table, derived "
            f"from the tubule, nuclear and mitotic scores for {c['derived']} of them; where both exist the derived "
            f"grade equals the recorded one for {c['agree']} of {c['both']} patients")


def label_revision(target: str | None) -> dict:
    """Patch-cache key entries of a target whose labels changed for the same clinical table, so that patch sets cut
    before are not reused: luminal_a_surrogate since its blank grades are derived from the scores. {} otherwise
    (every other target's cached patch sets stay valid)."""
    return {"labels": 2} if str(target or "").strip() == LUMINAL_A_SURROGATE else {}


def duke_columns(target: str | None) -> tuple[str, ...]:
    """The raw clinical columns a Duke target reads besides the standard ones (the `column` of column==value)."""
    target = duke_target(target)
    if target in DUKE_TARGETS:
        return ()
    return (split_target(target, "Clinical_and_Other_Features.xlsx", "Mol Subtype==3")[0],)


def duke_labels(clinical: pd.DataFrame, target: str | None) -> pd.DataFrame:
    """Per patient (index): `label` (1.0, 0.0 or NaN) and `reason` (the exclusion reason where NaN, else "").

    `clinical` is `cohort.read_clinical`'s table: patient, mol_subtype, er, pr, her2, nottingham_grade, the grade's
    component scores (GRADE_COMPONENTS) and the raw columns of `duke_columns(target)`.
    """
    target = duke_target(target)
    sub = clinical["mol_subtype"]
    if target == LUMINAL_LIKE:
        label, reason = (sub == 0).astype(float).where(sub.notna()), pd.Series(NO_SUBTYPE, index=clinical.index)
    elif target == LUMINAL_A_SURROGATE:
        if "nottingham_grade" not in clinical:
            raise ValueError("target luminal_a_surrogate needs the 'Nottingham grade' column of the clinical table")
        grade = nottingham_grade(clinical)
        label = ((sub == 0) & grade.isin([1, 2])).astype(float).where(sub.notna() & grade.notna())
        reason = pd.Series(NO_GRADE, index=clinical.index).where(sub.notna(), NO_SUBTYPE)
    else:
        column, value = split_target(target, "Clinical_and_Other_Features.xlsx", "Mol Subtype==3")
        label = target_labels(clinical[column], column, value)
        reason = pd.Series(NO_SUBTYPE if column == "Mol Subtype" else f"missing label ({column} blank)",
                           index=clinical.index)
    out = pd.DataFrame({"label": label.values, "reason": reason.where(label.isna(), "").values},
                       index=clinical["patient"].values)
    return out


# ---------------------------------------------------------------------------------------------------------------
# LGG


def lgg_descriptor(column: str, value: str) -> Descriptor:
    """The descriptor of an LGG `column==value` target; Buda et al.'s numbers stand beside COCCluster==2 only."""
    common = dict(dataset="lgg", target=f"{column}=={value}", channels=LGG_CHANNELS, reference=BUDA,
                  reference_task=BUDA_TASK)
    if column == "COCCluster" and _number(value) == 2:
        return Descriptor(definition="COCCluster 2 in data.csv (TCGA cluster-of-clusters)",
                          positive="COC 2", negative="other clusters", tables=BUDA_TABLES, **common)
    return Descriptor(definition=f"data.csv column {column!r} equal to {value}", positive=f"{column} {value}",
                      negative=f"{column} other than {value}", **common)


# ---------------------------------------------------------------------------------------------------------------
# The Figshare brain tumour cohort (Cheng et al.), an external source for the glioma study's pretraining

FIGSHARE_CHANNELS = ("post-contrast T1",)
CHENG = "Cheng et al. 2015/2017 (Figshare brain tumour dataset, doi 10.6084/m9.figshare.1512427)"
CHENG_TASK = ("tumour type of 3,064 contrast-enhanced T1 slices of 233 patients: 1,426 glioma, 708 meningioma, "
              "930 pituitary tumour slices")
TUMOUR_TYPES = ("glioma", "meningioma", "pituitary")
FIGSHARE_DEFAULT = "tumour_type==glioma"


def figshare_target(target: str | None) -> str:
    """The tumour type of a Figshare target "tumour_type==<glioma|meningioma|pituitary>" (None: glioma); any other
    target is refused, named, with the choices."""
    text = FIGSHARE_DEFAULT if target is None else str(target)
    column, value = split_target(text, "the Figshare cohort's table", FIGSHARE_DEFAULT)
    if column != "tumour_type" or value not in TUMOUR_TYPES:
        raise ValueError(f"target {text!r}: the Figshare cohort accepts tumour_type==<type>, type one of "
                         f"{', '.join(TUMOUR_TYPES)} (e.g. {FIGSHARE_DEFAULT!r})")
    return value


def figshare_descriptor(target: str | None = None) -> Descriptor:
    """The descriptor of a Figshare target (label 1: the named tumour type, 0: the two others); no paper tables
    stand beside it (the cohort is a pretraining source, not a study of its own)."""
    kind = figshare_target(target)
    others = " or ".join(t for t in TUMOUR_TYPES if t != kind)
    return Descriptor(dataset="figshare", target=f"tumour_type=={kind}", definition=f"tumour type {kind}",
                      positive=kind, negative=others, channels=FIGSHARE_CHANNELS, reference=CHENG,
                      reference_task=CHENG_TASK)


# The post-contrast channel of each study's channels, by name. Duke has no plain post-contrast image: its first
# subtraction (post1 - pre, the early enhancement) is the chosen one, the one closest to a post-contrast T1.
CONTRAST_CHANNELS = {"post-contrast": "lgg", "post-contrast T1": "figshare", "post1 - pre": "duke"}


def contrast_channel(descriptor_or_channels: Descriptor | tuple[str, ...] | list[str]) -> int:
    """The index of the post-contrast channel among a study's channels (a `Descriptor` or its channel names): LGG 2
    ("post-contrast"), Duke 0 ("post1 - pre", the first post-contrast subtraction: the early enhancement; a choice,
    Duke has no plain post-contrast channel), Figshare 0. For adapting a one-channel network's first layer."""
    channels = getattr(descriptor_or_channels, "channels", descriptor_or_channels)
    channels = [str(c) for c in channels]
    found = [i for i, c in enumerate(channels) if c in CONTRAST_CHANNELS]
    if len(found) != 1:
        raise ValueError(f"channels {channels}: expected exactly one post-contrast channel, one of "
                         f"{list(CONTRAST_CHANNELS)}")
    return found[0]
