"""The ground truth of the synthetic Duke cohort, written beside the images: one row per patient (subtype,
scanner, latents, fault), one per lesion (geometry, kinetics), and gene expression driven by the subtype and the
latents the lesion phenotype shares."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .common import stream
from .plan import PatientSpec

# Subtype shifts of the gene-expression programmes (fixed: genes stay linked to subtype whatever `effect`).
_GENE_SHIFT_PROLIF = {0: -0.9, 1: 0.2, 2: 0.6, 3: 1.0}
_GENE_SHIFT_IMMUNE = {0: -0.4, 1: 0.0, 2: 0.3, 3: 0.7}

GENE_SETS: dict[str, tuple[str, ...]] = {
    "luminal": ("ESR1", "PGR", "GATA3", "FOXA1", "XBP1", "TFF1", "TFF3", "AGR2", "CA12", "SCUBE2", "NAT1", "BCL2",
                "MYB", "SLC39A6"),
    "her2": ("ERBB2", "GRB7", "STARD3", "PGAP3", "MIEN1", "TCAP", "PNMT"),
    "basal": ("KRT5", "KRT14", "KRT17", "EGFR", "FOXC1", "SFRP1", "MIA", "CDH3", "KRT6B"),
    "proliferation": ("MKI67", "AURKA", "BIRC5", "CCNB1", "TOP2A", "MYBL2", "BUB1", "CENPF", "CDC20", "UBE2C",
                      "PTTG1", "RRM2", "TYMS", "CEP55", "MELK", "KIF2C", "CCNE1", "ORC6"),
    "immune": ("CD8A", "GZMB", "PRF1", "CXCL9", "CXCL10", "IFNG", "CD274", "LCK", "CD3E", "GZMA", "NKG7", "CCL5",
               "IDO1", "CD2"),
}
_N_GENES = 300


def truth_table(specs: list[PatientSpec]) -> pd.DataFrame:
    rows = [{"patient": s.patient, "mol_subtype": s.subtype, "luminal_like": int(s.subtype == 0),
             "scanner": s.protocol.name, "manufacturer": s.protocol.manufacturer, "model": s.protocol.model,
             "field_strength": s.protocol.field_t, "rows": s.protocol.rows, "columns": s.protocol.rows,
             "slices": s.slices, "pixel_spacing_mm": round(s.protocol.pixel_mm, 4),
             "slice_spacing_mm": s.protocol.slice_mm, "n_lesions": len(s.lesions), "series_variant": s.variant,
             "slice_numbering": s.numbering, "patient_position": s.patient_position, "extra_series": s.extra_series,
             "proliferation": round(s.prolif, 4), "immune": round(s.immune, 4), "fault": s.fault}
            for s in specs]
    return pd.DataFrame(rows)


def lesion_table(specs: list[PatientSpec]) -> pd.DataFrame:
    rows = []
    for s in specs:
        for les in s.lesions:
            rows.append({"patient": s.patient, "lesion": les.lesion, "side": les.side,
                         "centre_z": round(les.centre[0], 3), "centre_y": round(les.centre[1], 3),
                         "centre_x": round(les.centre[2], 3), "radius_z_mm": round(les.radii_mm[0], 3),
                         "radius_y_mm": round(les.radii_mm[1], 3), "radius_x_mm": round(les.radii_mm[2], 3),
                         "kinetic_class": les.kinetic_class, "wash_in": round(les.wash_in, 4),
                         "peak": round(les.peak, 4), "washout": round(les.washout, 4), "rim": round(les.rim, 4),
                         "heterogeneity": round(les.heterogeneity, 4), "irregularity": round(les.irregularity, 4)})
    return pd.DataFrame(rows)


def gene_table(specs: list[PatientSpec], seed: int, link: bool = True) -> pd.DataFrame:
    """log2 expression: subtype programmes (receptor status, amplicon, basal) plus the proliferation and immune
    latents shared with the lesion phenotype, baseline per gene, and noise. One row per patient, 4 decimals.

    `link=False` breaks the link between genes and everything else (images, clinical table): the same profiles,
    dealt to the patients in a random order (a null cohort for the radiogenomic associations)."""
    named = [g for genes in GENE_SETS.values() for g in genes]
    genes = named + [f"GENE{i:04d}" for i in range(1, _N_GENES - len(named) + 1)]
    panel = stream(seed, 3)
    base = panel.uniform(4.0, 11.0, len(genes))
    sd = panel.uniform(0.25, 0.7, len(genes))
    col = {"luminal": 0, "her2": 1, "basal": 2, "proliferation": 3, "immune": 4}  # the programmes (factors)
    loading = np.zeros((len(genes), len(col)))
    for name, members in GENE_SETS.items():
        for g in members:
            loading[genes.index(g), col[name]] = panel.uniform(0.6, 1.3)
    filler = np.arange(len(named), len(genes))
    linked = filler[panel.random(len(filler)) < 0.25]  # a quarter of the filler genes follow a programme weakly
    loading[linked, panel.integers(0, len(col), len(linked))] = panel.uniform(0.1, 0.4, len(linked))
    i_esr1, i_pgr, i_erbb2 = genes.index("ESR1"), genes.index("PGR"), genes.index("ERBB2")

    values = np.empty((len(specs), len(genes)))
    for k, s in enumerate(specs):
        rng = stream(seed, 1, s.index, 4)
        er, pr, her2 = s.receptors
        factors = np.array([1.2 * er + 0.4 * pr + 0.4 * rng.standard_normal(),
                            2.0 * her2 + 0.4 * rng.standard_normal(),
                            1.5 * (s.subtype == 3) + 0.5 * rng.standard_normal(),
                            _GENE_SHIFT_PROLIF[s.subtype] + 0.8 * s.prolif_noise + 0.3 * rng.standard_normal(),
                            _GENE_SHIFT_IMMUNE[s.subtype] + 0.8 * s.immune_noise + 0.3 * rng.standard_normal()])
        values[k] = base + loading @ factors + sd * rng.standard_normal(len(genes))
        values[k, i_esr1] += 2.5 * er  # the receptor genes follow the pathology status itself
        values[k, i_pgr] += 2.0 * pr
        values[k, i_erbb2] += 1.5 * her2
    if not link:
        values = values[stream(seed, 5).permutation(len(specs))]
    table = pd.DataFrame(np.round(values, 4), columns=genes)
    table.insert(0, "patient", [s.patient for s in specs])
    return table


