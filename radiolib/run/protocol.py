"""How a run departs from the paper's protocol: listed in every notebook and in every results file.

The paper's values are the `paper` fields of the parameter table (params.PARAMETERS). PROTOCOL holds, in the order
they are stated, the sentence a run with another value states (`Setting`) and each departure that is not a
parameter (`Note`: an architecture read from Table 2, a detail the paper does not give), attached to the notebooks,
or the networks, it concerns. `deviations()` compares a run's parameters with them; a parameter with a paper value
and no Setting gets a plain "key = value (paper: value)".
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Mapping

from ..data.dicom_seg import mask_sentence, mask_source
from ..data.figshare import is_figshare_layout
from ..learn.features import LAYERWISE_SETTING
from ..learn.models import INPUT_SIZE, NAMES, inception_sides
from ..learn.training import BN_PATCHES, CRF_BIN_WIDTH, INTENSITY_CAP, scaled_input
from . import params
from .inputs import IN_COHORT, domain_mode, external_format
from .params import ASSOCIATIONS, FEATURES, LAYERWISE, MASKING, NO_PAPER, PRETRAINING, RECEPTORS, SCRATCH, TRANSFER

ZHU = params.ZHU_NOTEBOOKS  # Zhu et al. 2019's notebooks
RADIOGENOMIC = (RECEPTORS, ASSOCIATIONS, MASKING)  # Liu & Hu; Smedley et al.
FROM_TABLE = "the table's"  # Setting.paper: the parameter's `paper` in params.PARAMETERS


@dataclass(frozen=True)
class Setting:
    """A setting the paper fixes, and the sentence a run with another value states.

    It concerns every notebook whose parameters have `key` (only `notebooks`, when given). The paper's value is the
    parameter's in the table (FROM_TABLE); when it is of something the parameters imply, `paper` is that, computed
    from the table, and the run's value `of(P)`. `sentence` is a format string over the run's parameters, `value`,
    `paper` and `extra(P)`; a mapping gives one per run value. `also`: other parameters the sentence speaks for.
    """

    key: str
    sentence: str | Mapping[Any, str]
    paper: Any = FROM_TABLE
    of: Callable[[SimpleNamespace], Any] | None = None
    extra: Callable[[SimpleNamespace], dict] | None = None
    notebooks: tuple[str, ...] = ()
    also: tuple[str, ...] = ()

    def departure(self, P: SimpleNamespace, stem: str) -> str | None:
        """The sentence when notebook `stem`'s parameters `P` differ from the paper here, else None."""
        if not hasattr(P, self.key) or (self.notebooks and stem not in self.notebooks):
            return None
        value = self.of(P) if self.of else getattr(P, self.key)
        paper = params.paper_value(self.key, stem) if self.paper is FROM_TABLE else self.paper
        if value == paper:
            return None
        text = self.sentence[value] if isinstance(self.sentence, Mapping) else self.sentence
        facts = self.extra(P) if self.extra else {}
        return text.format_map({**vars(P), "value": value, "paper": paper, **facts})


@dataclass(frozen=True)
class Note:
    """A departure that is not a parameter, stated in `notebooks` (in a run that trains `network`, when given)."""

    text: str
    notebooks: tuple[str, ...]
    network: str | None = None
    when: Callable[[SimpleNamespace], bool] | None = None  # a further condition on the run's parameters

    def departure(self, P: SimpleNamespace, stem: str) -> str | None:
        """The note when it concerns notebook `stem` run with parameters `P`, else None."""
        if stem not in self.notebooks or (self.network and self.network not in getattr(P, "networks", ())):
            return None
        return None if self.when and not self.when(P) else self.text


def _pretrained_sides(P: SimpleNamespace) -> dict:
    """GoogLeNet / VGG16's input side of this run, the paper's, the side transfer learning resizes to first, and
    what a smaller side leaves GoogLeNet's late inception blocks."""
    side = scaled_input("googlenet", P.pretrained_input_scale)
    maps = _inception_maps("googlenet", side) if side < INPUT_SIZE["googlenet"] else ""
    return {"side": side, "paper_side": INPUT_SIZE["googlenet"], "resize": round(side * 256 / 224),
            "maps": f"; {maps}" if maps else ""}


def _and(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _inception_maps(net: str, side: int) -> str:
    """The map sides GoogLeNet's (or GoogLeNet_R's) inception blocks 4 and 5 work on at input `side`, against
    Table 2's side (`models.inception_sides`), and what a 1 x 1 map does to their 3 x 3 branches."""
    ours, paper = inception_sides(net, side), inception_sides(net, INPUT_SIZE[net])
    text = (f"at {side} px {NAMES[net]}'s inception 4 blocks see {ours[4]} x {ours[4]} maps and its inception 5 "
            f"blocks {ours[5]} x {ours[5]} ({paper[4]} x {paper[4]} and {paper[5]} x {paper[5]} at "
            f"{INPUT_SIZE[net]} px)")
    if min(ours.values()) == 1:
        text += (": on a 1 x 1 map the 3 x 3 branches see only padding around the one pixel (the convolutions act "
                 "as 1 x 1 ones, the max-pool as the identity)")
    return text


def _scratch_sides(P: SimpleNamespace) -> dict:
    """The input side of each network 02 trains in this run (`networks` and the sweep's) beside Table 2's, and what
    a smaller side leaves GoogLeNet's and GoogLeNet_R's late inception blocks."""
    nets = list(dict.fromkeys([*P.networks, *([P.sweep_network] if getattr(P, "sweep_network", None) else [])]))
    sides = {net: scaled_input(net, P.input_scale) for net in nets}
    floored = [n for n in nets if sides[n] > int(round(INPUT_SIZE[n] * P.input_scale))]
    parts = [f"{NAMES[n]} {sides[n]} px instead of {INPUT_SIZE[n]}" for n in nets if n not in floored]
    if floored:
        parts.append(f"{_and([NAMES[n] for n in floored])} at the {sides[floored[0]]}-px floor instead of "
                     f"{_and([str(INPUT_SIZE[n]) for n in floored])}")
    parts += [_inception_maps(n, sides[n]) for n in nets
              if n in ("googlenet", "googlenet_r") and sides[n] < INPUT_SIZE[n]]
    return {"sides": "; ".join(parts)}


def _domain_cohort(P: SimpleNamespace) -> dict:
    """What the in-domain network learned and where (`inputs.domain_mode`), in words, its head's width, and whose
    protocol it follows: none of the paper's, but for the glioma study's external brain-tumour cohort (Buda's)."""
    origin = {"origin": BUDA_SOURCE if external_single_channel(P) else "not in the paper"}
    if domain_mode(P) == "in_cohort":
        return {"learned": "lesion vs normal tissue inside each outer fold, on its training patients only", "k": 2,
                **origin}
    if getattr(P, "domain_task", "lesion") == "tumour_type":
        return {"learned": "tumour type: glioma, meningioma or pituitary tumour, from tumour-centred patches of an "
                           "external brain-tumour cohort", "k": 3, **origin}
    return {"learned": "lesion vs normal tissue on a disjoint cohort", "k": 2, **origin}


BUDA_SOURCE = ("as Buda et al. 2020 pretrained on brain-tumour MRI of other patients (their glioblastoma cohort; "
               "not in Zhu et al.)")


def external_single_channel(P: SimpleNamespace) -> bool:
    """Whether the `domain` source is pretrained on the Figshare brain-tumour cohort (post-contrast T1 only): the
    user's copy in `domain_data_dir`, or the synthetic one of the glioma study."""
    if "domain" not in getattr(P, "sources", ()) or domain_mode(P) != "external":
        return False
    return is_figshare_layout(P.domain_data_dir) if P.domain_data_dir else external_format(P) == "figshare"


def _synthetic_figshare(P: SimpleNamespace) -> bool:
    return external_single_channel(P) and not P.domain_data_dir


ONE_CHANNEL = ("the external cohort has post-contrast T1 only: its network is pretrained on that channel replicated "
               "into the three inputs, and its first convolution is then moved onto the study's post-contrast "
               "channel (the filters summed over the three inputs, zero on the other channels), so that channel "
               "passes exactly the filters learned on the source; fine-tuning (03) grows the other channels' filters "
               "from zero, frozen features (04, 05) see the post-contrast channel only. Their comparison with random "
               "weights (all three channels, batch-norm statistics at their initial mean 0 and variance 1) is "
               "therefore not of what pretraining learned alone. Against the right control (an untrained network "
               "with the same first layer, statistics recomputed on the source), a synthetic source whose tumour "
               "types differ only by the subtypes' patterns added 0.03-0.15 test AUC to frozen features, one whose "
               "types differ by size only added nothing (tests/test_external_planted.py); with release-look "
               "synthetic sources both came within 0.05 of that control (benchmarks/bench_external_source.py)")


_BATCH_NORM = ("GoogLeNet's batch-norm layers (torchvision's; the paper's Caffe GoogLeNet had none) evaluated with "
               "statistics recomputed with the weights scored ({when}), without gradient, over the training patches "
               f"(at most {BN_PATCHES:,}, drawn at random): not an average of training batches taken while the weights "
               "moved, nor PyTorch's running average, which after a CPU-sized run's few dozen steps still holds its "
               "start and gives every patient the same score")


def _trains_a_googlenet(P: SimpleNamespace) -> bool:
    return any(net.startswith("googlenet") for net in getattr(P, "networks", ()))


PROTOCOL: tuple[Setting | Note, ...] = (
    Setting("data_dir", paper="the real images", of=lambda P: "the real images" if P.data_dir else P.synth_format,
            sentence={
        "lgg": "synthetic cohort in the lgg-mri-segmentation layout instead of the TCGA-LGG images",
        "duke": "synthetic cohort instead of the Duke images: matrices 1/4 of the scanners' at the real field of "
                "view, patch sizes scaled to the same millimetres"}),
    Note("augmentation translation up to 10% of the patch side (the paper gives no figure)", ("01_preprocessing",)),
    Setting("n_folds", "{n_folds}-fold cross-validation (paper: {paper})", notebooks=ZHU),
    Setting("repeats", "cross-validation run {repeats} time(s) (paper: {paper}, median taken)", notebooks=ZHU),
    Note("the reference paper is Liu & Hu 2023: they split the slices 70/30 at random (one patient's slices on "
         "both sides) and reported the penalty best on the test part; our rows use patient-level stratified folds "
         "with the penalty chosen inside each training fold; their protocol is run too and kept apart "
         "(`paper_protocol`)", (RECEPTORS,)),
    Note("DAE input: the lesion-centred patches of the first subtraction (post1 - pre) at `dae_patch_size`, resized "
         "to 64 x 64 (the paper's 64 x 64 slices), in the units of notebooks 02-05 (the patient's pre-contrast 99th "
         f"percentile), clamped to [0, {INTENSITY_CAP:g}] and divided by {INTENSITY_CAP:g}: one map for the cohort, "
         "not per slice, so that the DAE sees how strongly a lesion enhances", (RECEPTORS, ASSOCIATIONS, MASKING),
         when=lambda P: P.dae_input == "lesion"),
    Setting("dae_input", {"slice": "DAE input: the whole axial slice of the first subtraction (post1 - pre) "
                                             "through each lesion slice, resized to 64 x 64 and mapped to [0, 1] as "
                                             "the patches are, one map for the cohort (paper: the lesion-centred "
                                             "slices); the CRFs stay on the lesion slices"}),
    Note("DAE trained once on every included patient's slices, label-free, with Adam (lr 1e-3; the published "
         "code's optimiser settings are not restated)", (RECEPTORS, ASSOCIATIONS, MASKING)),
    Note("DAE loss: the parameter dae_loss (mse by default); the published code's Keras cosine_proximity "
         "normalises over the size-1 channel axis, so it is constant and trains nothing (radiolib.learn.dae)",
         (RECEPTORS, ASSOCIATIONS, MASKING)),
    Setting("dae_bf16", "DAE trained under bfloat16 autocast (a CPU budget; its features are computed in "
                               "fp32)"),
    Note("CRFs: pyradiomics first-order and texture classes on the same 64 x 64 slices (the slice inside a 1-pixel "
         "border as the region: Duke has boxes, not outlines), measured on the subtraction's intensities themselves "
         "(units of the pre-contrast 99th percentile, not rescaled per slice) with a fixed bin width of "
         f"{CRF_BIN_WIDTH:g} (32 bins over [0, {INTENSITY_CAP:g}], IBSI's fixed bin size for relative units); a "
         "patient's features are the mean over its slices", (RECEPTORS, ASSOCIATIONS, MASKING)),
    Note("T1 against T2-T4 and N0 against N1-N3 are our reading of the targets (the abstract gives no cut points)",
         (RECEPTORS, MASKING)),
    Note("the primary model is OLS of each feature's patient mean (over its slices) on each genomic factor, both "
         "standardised, Benjamini-Hochberg over all pairs of a feature kind, not Liu & Hu's linear mixed model over "
         "the slices (a random intercept per patient); the mixed model is only a check, refitted on a random sample "
         "of `mixed_pairs` FDR-significant pairs and one of all pairs; the counts are read against "
         "`gene_permutations` permutations of the gene table among the patients (not in the paper)", (ASSOCIATIONS,)),
    Setting("epochs", "{epochs} epochs (paper: {paper})"),
    Setting("patches_per_epoch",  # the paper's epochs see every training patch
            "{patches_per_epoch} class-balanced training patches per epoch (paper: all, ~40k)"),
    Setting("input_scale", "network inputs at {input_scale:g} of Table 2's sides: {sides}", extra=_scratch_sides),
    Note("GoogLeNet_R conv1 stride 2: the paper's text says stride 1, but Table 2's 388.77M MACC is only reached "
         "with stride 2 (stride 1 gives 1.66G); we follow Table 2", (SCRATCH,), network="googlenet_r"),
    Note("VGG_R read from Table 2's counts, not the text's '2 conv + all FC layers': VGG16's first 3 convs and fully "
         "connected layers of width 4 (fc6, fc7), since 2 convs give 247M MACC and VGG16's 4096-wide FCs >200M "
         "params (Table 2: 365.16M MACC, 317.38K params)", (SCRATCH,), network="vgg_r"),
    Setting("layer_patch_size", paper=(params.paper_value("layer_patch_size"), params.paper_value("kernel")),
            of=lambda P: (P.layer_patch_size or LAYERWISE_SETTING[0], P.kernel or LAYERWISE_SETTING[1]),
            sentence="layer-wise SVMs at patch {value[0]}, {value[1]} kernel (paper's Table 6 setting: "
                     "{paper[0]} px, {paper[1]})", also=("kernel",)),
    Note("optimiser Adam with the paper's learning rates (the paper's Caffe solver is not stated); L2 weight decay "
         "5e-4 on conv weights", (SCRATCH, TRANSFER)),
    Note(_BATCH_NORM.format(when="after every epoch"), (SCRATCH,), when=_trains_a_googlenet),
    Note(_BATCH_NORM.format(when="after every epoch of fine-tuning, and once at the end of the in-domain pretraining"),
         (TRANSFER,), when=_trains_a_googlenet),
    Note("train AUC from 60 randomly chosen training patients per fold (scored on the same patches as the test "
         "patients)", (SCRATCH, TRANSFER)),
    Note("patients scored by the mean class-1 log-odds (logit difference) of their test patches; the paper does not "
         "say how patch outputs were combined (softmax probabilities saturate and tie)", (SCRATCH, TRANSFER)),
    Setting("test_patches", sentence={
        "tumour": "patients scored from every tumour slice (the mean over one centred patch per lesion region and "
                  "slice: Buda et al. 2020 scored a patient from its tumour slices, the mean is our choice), not Zhu "
                  "et al.'s 25 patches on the 5 consecutive slices with the largest lesion area"}),
    Setting("networks", paper="vgg16" in params.paper_value("networks", TRANSFER), of=lambda P: "vgg16" in P.networks,
            notebooks=(TRANSFER,),
            sentence="VGG16 not fine-tuned in this profile: its 138M-parameter classifier trains at about 17 "
                     "patches/s on 2 CPU cores (see the paper profile)"),
    Setting("networks", paper="vgg16" in params.paper_value("networks", FEATURES), of=lambda P: "vgg16" in P.networks,
            notebooks=(FEATURES,),
            sentence="VGG16 features not in this profile: its 4096-long in-domain features make each SVM fit "
                     "minutes long on 2 CPU cores (see the paper profile)"),
    Note("GoogLeNet 'fc' of the in-domain network is its own 2-way head (length 2, not 1000)", (LAYERWISE,),
         when=lambda P: _domain_cohort(P)["k"] == 2),
    Note("GoogLeNet 'fc' of the in-domain network is its own 3-way tumour-type head (length 3, not 1000)",
         (LAYERWISE,), when=lambda P: _domain_cohort(P)["k"] == 3),
    Setting("sweep_network", "learning-rate sweep on {sweep_network} (paper: reduced VGGNet)",
            notebooks=(SCRATCH,)),
    Setting("pretrained_input_scale", "pretrained networks fed {side} px inputs (paper: {paper_side}; "
            "transfer: resize to {resize} and random {side} crops){maps}", extra=_pretrained_sides),
    Setting("sources", paper="domain" in params.paper_value("sources"), of=lambda P: "domain" in P.sources,
            sentence="extra pretraining source 'domain' ({learned}), {origin}; its SVM features come from "
                     "the layer below its {k}-way head", extra=_domain_cohort, also=("domain_task",)),
    Setting("sources", paper=False, of=lambda P: IN_COHORT in P.sources and domain_mode(P) == "external",
            sentence="extra pretraining source 'in_cohort' (lesion vs normal tissue inside each outer fold, on its "
                     "training patients only) beside the external 'domain' source, on the same folds"),
    Note(ONE_CHANNEL, PRETRAINING, when=external_single_channel),
    Note("the external source cohort is synthetic, in the layout of Cheng et al.'s Figshare release (MATLAB v7.3 "
         "files, post-contrast T1, glioma / meningioma / pituitary tumour): its gliomas enhance in a rim like the "
         "synthetic cluster-2 tumours (a planted link; give domain_data_dir for the real release)", PRETRAINING,
         when=_synthetic_figshare),
    Setting("svm_max_train", "SVM trained on at most {svm_max_train} class-balanced patches per fold "
            "(roles: {roles}; paper: all)", extra=lambda P: {"roles": ", ".join(P.svm_train_roles)}),
)


def deviations(P: SimpleNamespace, stem: str, patch_set=None) -> list[str]:
    """Every way these parameters differ from Zhu et al. 2019's protocol (PROTOCOL), as sentences.

    With the run's `patch_set`, the first sentence states the target used (its descriptor's definition) and its
    prevalence among the included patients, beside the reference paper's task.
    """
    out = [target_statement(patch_set)] if patch_set is not None else []
    if stem in RADIOGENOMIC and patch_set is not None and patch_set.descriptor.dataset != "duke":
        return out  # 07-09 do not run on this cohort (radiogenomics.not_duke): none of their protocol applies
    return (out + [s for entry in PROTOCOL if (s := entry.departure(P, stem)) is not None] + _plain_departures(P, stem)
            + mask_statement(stem, patch_set))


MASKED_STEMS = ("01_preprocessing", *RADIOGENOMIC)  # the handcrafted baseline (01) and the CRFs (07-09)


def mask_statement(stem: str, patch_set=None) -> list[str]:
    """How many included patients' handcrafted features and CRFs are measured in a SEG tumour mask and how many in
    the box (`dicom_seg.mask_source`); nothing when no patient has a SEG."""
    sentence = mask_sentence(mask_source(patch_set.table)) if stem in MASKED_STEMS and patch_set is not None else None
    return [sentence] if sentence else []


def _plain_departures(P: SimpleNamespace, stem: str) -> list[str]:
    """"key = value (paper: value)" for each parameter of `stem` with a paper value but no Setting that differs."""
    worded = {k for e in PROTOCOL if isinstance(e, Setting) for k in (e.key, *e.also)}
    out = []
    for p in params.PARAMETERS:
        if p.takes(stem) and p.name not in worded and hasattr(P, p.name):
            paper = p.of(stem).paper
            if paper is not NO_PAPER and getattr(P, p.name) != paper:
                out.append(f"{p.name} = {getattr(P, p.name)!r} (paper: {paper!r})")
    return out


def target_statement(patch_set) -> str:
    """The target's definition and prevalence, computed from the patch set's included patients."""
    return patch_set.descriptor.statement(patch_set.table.label)
