"""How a run departs from the paper's protocol: listed in every notebook and in every results file."""
from __future__ import annotations

from types import SimpleNamespace


def deviations(P: SimpleNamespace, stem: str, patch_set=None) -> list[str]:
    """Every way these parameters differ from Zhu et al. 2019's protocol, as sentences.

    With the run's `patch_set`, the first sentence states the target used (its descriptor's definition) and its
    prevalence among the included patients, beside the reference paper's task.
    """
    out = [target_statement(patch_set)] if patch_set is not None else []
    has = lambda key: hasattr(P, key)  # noqa: E731
    if not P.data_dir and getattr(P, "synth_format", "duke") == "lgg":
        out.append("synthetic cohort in the lgg-mri-segmentation layout instead of the TCGA-LGG images")
    elif not P.data_dir:
        out.append("synthetic cohort instead of the Duke images: matrices 1/4 of the scanners' at the real field of "
                   "view, patch sizes scaled to the same millimetres")
    if stem == "01_preprocessing":
        out.append("augmentation translation up to 10% of the patch side (the paper gives no figure)")
        return out
    if has("n_folds") and P.n_folds != 10:
        out.append(f"{P.n_folds}-fold cross-validation (paper: 10)")
    if has("repeats") and P.repeats != 5:
        out.append(f"cross-validation run {P.repeats} time(s) (paper: 5, median taken)")
    if has("epochs") and P.epochs != 40:
        out.append(f"{P.epochs} epochs (paper: 40)")
    if has("patches_per_epoch") and P.patches_per_epoch:
        out.append(f"{P.patches_per_epoch} class-balanced training patches per epoch (paper: all, ~40k)")
    if has("input_scale") and P.input_scale != 1.0:
        out.append(f"network inputs at {P.input_scale:g} of Table 2's sides (e.g. CIFAR "
                   f"{max(32, round(80 * P.input_scale))} px instead of 80)")
    nets = getattr(P, "networks", ())
    if stem == "02_training_from_scratch" and "googlenet_r" in nets:
        out.append("GoogLeNet_R conv1 stride 2: the paper's text says stride 1, but Table 2's 388.77M MACC is only "
                   "reached with stride 2 (stride 1 gives 1.66G); we follow Table 2")
    if stem == "02_training_from_scratch" and "vgg_r" in nets:
        out.append("VGG_R read from Table 2's counts, not the text's '2 conv + all FC layers': VGG16's first 3 convs "
                   "and fully connected layers of width 4 (fc6, fc7), since 2 convs give 247M MACC and VGG16's "
                   "4096-wide FCs >200M params (Table 2: 365.16M MACC, 317.38K params)")
    if stem == "05_layerwise_analysis":
        size, kern = getattr(P, "layer_patch_size", None) or 120, getattr(P, "kernel", None) or "poly"
        if (size, kern) != (120, "poly"):
            out.append(f"layer-wise SVMs at patch {size}, {kern} kernel (paper's Table 6 setting: 120 px, poly)")
    if stem in ("02_training_from_scratch", "03_transfer_learning"):
        out.append("optimiser Adam with the paper's learning rates (the paper's Caffe solver is not stated); "
                   "L2 weight decay 5e-4 on conv weights")
        out.append("train AUC from 60 randomly chosen training patients per fold (their 25 test-layout patches)")
        out.append("patients scored by the mean class-1 log-odds (logit difference) of their test patches; the "
                   "paper does not say how patch outputs were combined (softmax probabilities saturate and tie)")
    if stem == "03_transfer_learning" and "vgg16" not in P.networks:
        out.append("VGG16 not fine-tuned in this profile: its 138M-parameter classifier trains at about 17 patches/s "
                   "on 2 CPU cores (see the paper profile)")
    if stem == "04_deep_features_svm" and "vgg16" not in P.networks:
        out.append("VGG16 features not in this profile: its 4096-long in-domain features make each SVM fit minutes "
                   "long on 2 CPU cores (see the paper profile)")
    if stem == "05_layerwise_analysis":
        out.append("GoogLeNet 'fc' of the in-domain network is its own 2-way head (length 2, not 1000)")
    if has("sweep_network") and stem == "02_training_from_scratch" and P.sweep_network != "vgg_r":
        out.append(f"learning-rate sweep on {P.sweep_network} (paper: reduced VGGNet)")
    if has("pretrained_input_scale") and P.pretrained_input_scale != 1.0 and stem != "02_training_from_scratch":
        side = max(32, round(224 * P.pretrained_input_scale))
        out.append(f"pretrained networks fed {side} px inputs (paper: 224; transfer: resize to "
                   f"{round(side * 256 / 224)} and random {side} crops)")
    if has("sources") and "domain" in P.sources:
        out.append("extra pretraining source 'domain' (lesion vs normal tissue on a disjoint cohort), not in the paper; "
                   "its SVM features come from the layer below its 2-way head")
    if has("svm_max_train") and P.svm_max_train:
        out.append(f"SVM trained on at most {P.svm_max_train} class-balanced patches per fold "
                   f"(roles: {', '.join(P.svm_train_roles)}; paper: all)")
    return out


def target_statement(patch_set) -> str:
    """The target's definition and prevalence, computed from the patch set's included patients."""
    return patch_set.descriptor.statement(patch_set.table.label)
