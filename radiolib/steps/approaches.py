"""The study's approaches as library calls: what notebooks 02-05 configure, cross-validate and report.

One entry point per approach, `scratch` (02), `transfer` (03), `features_svm` (04) and `layerwise` (05), takes the
run's `RunContext` (`radiolib.run.context`: parameters `P`, patch set, folds) and returns an `ApproachResult`: the
results rows (`results.make_row`, skipped settings as rows with their reason), the sweep rows, the learning
curves and the figures. A notebook cell, a batch script and a test call the same function; the configurations
and cache keys below are those the notebooks always used, so cached results are read back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, partial
from types import SimpleNamespace

import numpy as np
import pandas as pd

from ..data.patches import scoring_role
from ..learn import features, handcrafted, models, training, weights
from ..run import inputs, paper, results
from ..views import plots
from ..views.report import pairwise_table
from ..views.widgets import feature_map_viewer
from .base import Step


def scratch_config(net: str, P: SimpleNamespace, lr: float | None = None) -> training.TrainConfig:
    """Training configuration of `net` from random weights (02): input side scaled by `input_scale`, `lr` or P.lr."""
    return training.TrainConfig(input_size=training.scaled_input(net, P.input_scale), epochs=P.epochs,
                                lr=P.lr if lr is None else lr, patches_per_epoch=P.patches_per_epoch,
                                batch_size=P.batch_size, bf16=P.bf16, channels_last=P.channels_last, seed=P.seed,
                                test_patches=P.test_patches, device=inputs.device(P))


def cross_validate_scratch(net: str, patch_set, folds: list[dict], P: SimpleNamespace, lr: float | None = None):
    """Train `net` from random weights on every fold (02): a CVResult, cached under "scratch/<net>"."""
    cfg = scratch_config(net, P, lr)
    make_model = partial(models.build, net, seed=P.seed, input_size=cfg.input_size)
    return training.cross_validate_net(patch_set, P.train_patch_size, folds, make_model, cfg, n_jobs=P.n_jobs,
                                       desc=f"{net}, lr {cfg.lr:g}", model_id=f"scratch/{net}",
                                       cache_dir=P.cache_dir, n_boot=P.n_boot)


def transfer_config(P: SimpleNamespace, fc_lr: float | None = None) -> training.TrainConfig:
    """Fine-tuning configuration (03): the new last layer learns at `fc_lr` (or P.fc_lr), inputs of the pretrained
    network's side (`pretrained_input_scale`) cropped at random, normalised as ImageNet."""
    return training.TrainConfig(input_size=inputs.pretrained_input(P), epochs=P.epochs, lr=P.lr,
                                head_lr=P.fc_lr if fc_lr is None else fc_lr, crop=True, normalize="imagenet",
                                patches_per_epoch=P.patches_per_epoch, batch_size=P.batch_size, bf16=P.bf16,
                                channels_last=P.channels_last, seed=P.seed, test_patches=P.test_patches,
                                device=inputs.device(P))


def cross_validate_transfer(net: str, source: str, patch_set, folds: list[dict], P: SimpleNamespace,
                            fc_lr: float | None = None):
    """Fine-tune `net` pretrained on `source` on every fold (03): a CVResult, cached under the weights' identity."""
    cfg = transfer_config(P, fc_lr)
    per_fold = inputs.per_fold(source, P)  # each fold its own pretrained network
    make_model = None if per_fold else partial(inputs.pretrained_model, net, source, P, num_classes=2,
                                               progress=False)
    fold_model = partial(inputs.fold_pretrained_model, net, P, patch_set, num_classes=2) if per_fold else None
    return training.cross_validate_net(patch_set, P.train_patch_size, folds, make_model, cfg, n_jobs=P.n_jobs,
                                       desc=f"{net} from {source}, fc lr {cfg.head_lr:g}",
                                       model_id="transfer/" + inputs.weights_id(net, source, P),
                                       cache_dir=P.cache_dir, n_boot=P.n_boot, fold_model=fold_model)


def svm_setting(feats, index, folds: list[dict], kernel: str, P: SimpleNamespace, feature_id: str) -> dict:
    """Keyword arguments of `features.cross_validate_svm` for one feature matrix and kernel (04, 05).

    `feats` (patches x length) are the features of the patch set's `index`; `feature_id` names them for the cache.
    """
    return dict(feats=feats, index=index, folds=folds, kernel=kernel, max_train=P.svm_max_train,
                train_roles=P.svm_train_roles, seed=P.seed, feature_id=feature_id, cache_dir=P.cache_dir,
                n_boot=P.n_boot, test_patches=P.test_patches)


# ---------------------------------------------------------------------------------------------------------------
# What an approach returns


@dataclass(repr=False)
class ApproachResult:
    """The outcome of one approach on one run: rows as written to the results file, and what the figures need.

    `rows`: one `results.make_row` dict per setting, skipped settings included (their `skipped` says why);
    `sweep_rows`: the learning-rate sweep's rows (`sweep_key` names the swept rate); `cv`: setting -> CVResult;
    `curves` / `sweep_curves`: name -> per-fold learning curves; `figures`: figure name -> a function drawing it;
    `ceiling`: the run's `radiolib.stats.ceiling.Ceiling` (from notebook 01), shown beside the tables, or None;
    `baseline`: the run's handcrafted-features row (`radiolib.learn.handcrafted`, from notebook 01), or None.
    """

    approach: str
    descriptor: object
    rows: list[dict]
    sweep_rows: list[dict] = field(default_factory=list)
    sweep_key: str | None = None
    cv: dict = field(default_factory=dict)
    curves: dict = field(default_factory=dict)
    sweep_curves: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    ceiling: object = None
    baseline: dict | None = None

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.approach}: {len(self.rows)} rows ({len(self.skipped)} skipped), "
                f"{len(self.sweep_rows)} sweep rows, figures {list(self.figures)}>")

    @property
    def skipped(self) -> list[dict]:
        """The rows of settings that did not run, each with its reason in `skipped`."""
        return [r for r in self.rows + self.sweep_rows if r["skipped"] is not None]

    @property
    def all_rows(self) -> list[dict]:
        """Rows then sweep rows: what the results file holds."""
        return self.rows + self.sweep_rows

    def table(self) -> pd.DataFrame:
        """The results table beside the reference paper's numbers, each test AUC also as a share of the ceiling;
        prints the ceiling (or why there is none) and a warning per fold whose test scores are all tied (AUC 0.5 by
        construction)."""
        self._print_ceiling()
        for warning in results.tied_fold_warnings(self.rows):
            print(warning)
        return paper.beside(results.results_table(self.rows, self.ceiling, self.baseline), self.rows,
                            self.descriptor)

    def _print_ceiling(self) -> None:
        if self.ceiling is not None:
            print(self.ceiling.sentence())
        if self.baseline is not None:
            print(handcrafted.sentence(self.baseline))

    def sweep_table(self) -> pd.DataFrame:
        """The sweep's rows with their rate (and share of the ceiling), beside the paper's sweep."""
        self._print_ceiling()
        rates = [r[self.sweep_key] for r in self.sweep_rows]
        table = results.results_table(self.sweep_rows, self.ceiling, self.baseline).assign(**{self.sweep_key: rates})
        return paper.beside_sweep(table, self.approach, rates, self.descriptor)

    def browsable_curves(self) -> dict:
        """Every run's learning curves, settings then sweep (for `widgets.curve_browser`)."""
        return {**self.curves, **self.sweep_curves}

    def save_figures(self, folder, *names: str) -> None:
        """Draw the named figures (all when none is named) and save them as folder/<name>.png."""
        for name in names or list(self.figures):
            plots.save(self.figures[name](), folder, name)


# ---------------------------------------------------------------------------------------------------------------
# The entry points


def _ceiling(ctx):
    """The run's ceiling (`RunContext.ceiling_`, read from notebook 01's results file), None for a bare context."""
    return getattr(ctx, "ceiling_", None)


def _baseline(ctx):
    """The run's handcrafted baseline row (`RunContext.baseline_`, from notebook 01's results file), or None."""
    return getattr(ctx, "baseline_", None)


def scratch(ctx) -> ApproachResult:
    """02: every network of `P.networks` trained from random weights, then the learning-rate sweep of
    `P.sweep_network` over `P.lr_sweep` (the run at `P.lr` is reused)."""
    P, ps, folds = ctx.P, ctx.patch_set_, ctx.folds_
    cv = {net: cross_validate_scratch(net, ps, folds, P) for net in P.networks}
    sweep = {lr: (cv[P.sweep_network] if lr == P.lr and P.sweep_network in cv
                  else cross_validate_scratch(P.sweep_network, ps, folds, P, lr))
             for lr in P.lr_sweep}
    rows = [results.make_row("scratch", net, "none", P.train_patch_size, cv=cv[net], lr=P.lr,
                             input_size=scratch_config(net, P).input_size)
            for net in P.networks]
    sweep_rows = [results.make_row("scratch", P.sweep_network, "none", P.train_patch_size, cv=c, lr=lr, sweep="lr",
                                   input_size=scratch_config(P.sweep_network, P).input_size)
                  for lr, c in sweep.items()]
    curves = {net: cv[net].curves for net in P.networks}
    sweep_curves = {f"{P.sweep_network}, lr {lr:g}": c.curves for lr, c in sweep.items()}
    figures = {"02_learning_curves": partial(plots.curve_grid, curves, "training from scratch"),
               "02_lr_sweep": partial(plots.curve_grid, sweep_curves, "learning-rate sweep")}
    return ApproachResult("scratch", ps.descriptor, rows, sweep_rows, "lr", cv, curves, sweep_curves, figures,
                          _ceiling(ctx), _baseline(ctx))


@dataclass(repr=False)
class TransferResult(ApproachResult):
    """03's result, plus the source the sweep ran on and the paired comparison of the sources."""

    sweep_source: str | None = None
    n_boot: int = 1000
    seed: int = 0
    labels: pd.Series | None = None

    def pairwise(self) -> pd.DataFrame:
        """Every pair of run rows compared on the same folds and patients (paired bootstrap, Holm-adjusted p)."""
        return pairwise_table(self.rows, self.labels, _network_from_source, n_boot=self.n_boot, seed=self.seed)


def _network_from_source(row: dict) -> str:
    return f"{row['network']} from {row['source']}"


def transfer(ctx) -> TransferResult:
    """03: every network of `P.networks` fine-tuned from each runnable source of `P.sources` (the others are
    skipped rows with their reason), then the last-layer learning-rate sweep of `P.sweep_network` from the first
    source it ran from."""
    P, ps, folds = ctx.P, ctx.patch_set_, ctx.folds_
    status = {net: ctx.source_status(net) for net in P.networks}
    cv = {(net, src): cross_validate_transfer(net, src, ps, folds, P)
          for net in P.networks for src in P.sources if status[net][src] is None}
    sweep_source = next((s for s in P.sources if (P.sweep_network, s) in cv), None)
    sweep = {lr: (cv[P.sweep_network, sweep_source] if lr == P.fc_lr
                  else cross_validate_transfer(P.sweep_network, sweep_source, ps, folds, P, lr))
             for lr in P.fc_lr_sweep} if sweep_source else {}
    size = inputs.pretrained_input(P)
    rows = [results.make_row("transfer", net, src, P.train_patch_size, cv=cv[net, src], fc_lr=P.fc_lr,
                             input_size=size)
            if (net, src) in cv else results.make_row("transfer", net, src, P.train_patch_size,
                                                      skipped=status[net][src])
            for net in P.networks for src in P.sources]
    sweep_rows = [results.make_row("transfer", P.sweep_network, sweep_source, P.train_patch_size, cv=c, fc_lr=lr,
                                   sweep="fc_lr", input_size=size) for lr, c in sweep.items()]
    curves = {f"{n} from {s}": c.curves for (n, s), c in cv.items()}
    sweep_curves = {f"fc lr {lr:g}": c.curves for lr, c in sweep.items()}
    figures = {"03_learning_curves": partial(plots.curve_grid, curves, "transfer learning"),
               "03_fc_lr_sweep": partial(plots.curve_grid, sweep_curves, f"{P.sweep_network} from {sweep_source}")}
    return TransferResult("transfer", ps.descriptor, rows, sweep_rows, "fc_lr", cv, curves, sweep_curves, figures,
                          _ceiling(ctx), _baseline(ctx), sweep_source=sweep_source, n_boot=P.n_boot, seed=P.seed,
                          labels=ps.table.set_index("patient").label.astype(float))


@dataclass
class DeepFeatures:
    """Features of the patches for an SVM: key -> (patch index, features), and key -> cache name of the features.

    04's keys are (network, source, patch size) and its features the source's feature layer; 05's are sources and
    its features {layer: matrix} of one patch size.
    """

    features: dict
    ids: dict
    patch_size: int | None = None

    def table(self) -> pd.DataFrame:
        """04: network, source, patch size, layer, number of patches and feature length of each matrix."""
        return pd.DataFrame([{"network": n, "source": s, "patch": p, "layer": _feature_layer(n, s),
                              "patches": f.shape[0], "length": f.shape[1]}
                             for (n, s, p), (_, f) in self.features.items()])

    def lengths(self) -> pd.DataFrame:
        """05: each GoogLeNet layer's feature length per source beside Table 6's (the last, `fc`, may differ: the
        in-domain network's head is 2-way). Raises ValueError when another length differs from the paper's."""
        lengths = pd.DataFrame({s: {layer: f[layer].shape[1] for layer in weights.GOOGLENET_LAYERS}
                                for s, (_, f) in self.features.items()})
        lengths["paper"] = paper.TABLE6_LENGTH
        if not all((lengths[s] == lengths.paper).iloc[:-1].all() for s in self.features):
            raise ValueError(f"feature lengths differ from Table 6:\n{lengths}")
        return lengths.T


def _feature_layer(net: str, source: str) -> str:
    """The layer whose output a (network, source) pair's SVM reads (`features.feature_layer` of its weights)."""
    return features.feature_layer(net, inputs.weights_source(source))


def _roles(P) -> list[str]:
    """The patches features are extracted from: the SVM's training roles and the patches that score a patient."""
    return list(dict.fromkeys([*P.svm_train_roles, scoring_role(P.test_patches)]))


def _source_features(ctx, patch_size: int, net: str, source: str, layers: tuple[str, ...], domain):
    """(patch index, {layer: features}, {layer: feature id}) of `net` from `source`, cached on disk; `domain` is
    the source's checkpoint folder, or for a source pretrained per fold (`inputs.per_fold`) its {fold: folder},
    whose features are a `features.PerFold`."""
    P, ps, size, roles = ctx.P, ctx.patch_set_, ctx.pretrained_input, _roles(ctx.P)
    if inputs.per_fold(source, P):
        index, f = features.cached_fold_features(ps, patch_size, net, layers, size, domain, P.cache_dir,
                                                 P.bf16, roles=roles, device=inputs.device(P))
        return index, f, {layer: features.fold_feature_id(ps, patch_size, net, layer, size, domain, roles)
                          for layer in layers}
    source = inputs.weights_source(source)
    index, f = features.cached_features(ps, patch_size, net, source, layers, size, domain, P.cache_dir, P.bf16,
                                        roles=roles, device=inputs.device(P))
    return index, f, {layer: features.feature_id(ps, patch_size, net, source, layer, size, domain, roles)
                      for layer in layers}


def _domain_dirs(ctx, networks) -> dict:
    """{source: {network: checkpoint folder(s)}} of the in-domain sources (domain, in_cohort) of `P.sources`."""
    return {s: ctx.domain_dirs(networks, s) for s in ("domain", inputs.IN_COHORT) if s in ctx.P.sources}


def deep_features(ctx) -> DeepFeatures:
    """04: the feature layer of every runnable (network, source) pair at every patch size, cached on disk (the
    in-cohort in-domain source: one matrix per fold, from the fold's own network)."""
    P = ctx.P
    status = {net: ctx.source_status(net) for net in P.networks}
    domain = _domain_dirs(ctx, P.networks)
    feats, ids = {}, {}
    for n, s in [(n, s) for n in P.networks for s in P.sources if status[n][s] is None]:
        layer = _feature_layer(n, s)
        for p in P.patch_sizes:
            index, f, names = _source_features(ctx, p, n, s, (layer,), domain.get(s, {}).get(n))
            feats[n, s, p] = (index, f[layer])
            ids[n, s, p] = names[layer]
    return DeepFeatures(feats, ids)


def features_svm(ctx, feats: DeepFeatures | None = None) -> ApproachResult:
    """04: an SVM per feature matrix and kernel of `P.kernels` (features from `deep_features`, computed when not
    given); the pairs whose source cannot run are skipped rows. Its figure: ROC curves of the pre-specified kernel
    (poly, else the first of `kernels`), never one chosen by its test AUC."""
    P, ps, size = ctx.P, ctx.patch_set_, ctx.pretrained_input
    feats = feats if feats is not None else deep_features(ctx)
    status = {net: ctx.source_status(net) for net in P.networks}
    settings = {(n, s, p, k): svm_setting(f, index, ctx.folds_, k, P, feats.ids[n, s, p])
                for (n, s, p), (index, f) in feats.features.items() for k in P.kernels}
    cv = features.cross_validate_svms(settings, P.n_jobs)
    rows = [results.make_row("features", n, s, p, kernel=k, layer=_feature_layer(n, s), cv=c,
                             input_size=size) for (n, s, p, k), c in cv.items()]
    rows += [results.make_row("features", n, s, p, kernel=k, layer=features.LAST_FC[n], skipped=status[n][s])
             for n in P.networks for s in P.sources if status[n][s] for p in P.patch_sizes for k in P.kernels]
    roc_kernel = "poly" if "poly" in P.kernels else P.kernels[0]
    scores = {f"{n}/{s} {p} {k}": (c.oof_labels.values, c.oof_scores.values)
              for (n, s, p, k), c in cv.items() if k == roc_kernel}
    figures = {"04_roc": partial(plots.roc_curves, scores, "deep features + SVM")}
    return ApproachResult("features", ps.descriptor, rows, cv=cv, figures=figures, ceiling=_ceiling(ctx),
                          baseline=_baseline(ctx))


def layer_features(ctx) -> DeepFeatures:
    """05: every GoogLeNet layer's features (one forward pass per batch, cached) for each runnable source, at the
    layer-wise patch size (`features.layerwise_setting`)."""
    P = ctx.P
    patch_size, _, _ = features.layerwise_setting(P.layer_patch_size, P.kernel, P.patch_sizes)
    status = ctx.source_status("googlenet")
    sources = [s for s in P.sources if status[s] is None]
    domain = _domain_dirs(ctx, ["googlenet"])
    found = {s: _source_features(ctx, patch_size, "googlenet", s, weights.GOOGLENET_LAYERS,
                                 domain.get(s, {}).get("googlenet")) for s in sources}
    feats = {s: (index, f) for s, (index, f, _) in found.items()}
    ids = {(s, layer): names[layer] for s, (_, _, names) in found.items() for layer in weights.GOOGLENET_LAYERS}
    return DeepFeatures(feats, ids, patch_size)


@dataclass(repr=False)
class LayerwiseResult(ApproachResult):
    """05's result, plus its SVM setting and the feature maps of one pretrained network."""

    setting: dict = field(default_factory=dict)
    ctx: object = None
    viewer_source: str | None = None

    @cached_property
    def viewer_model(self):
        """GoogLeNet with the first runnable source's weights, for the feature maps (in-cohort in-domain weights:
        those of the first fold)."""
        ctx = self.ctx
        return inputs.pretrained_model("googlenet", self.viewer_source, ctx.P, progress=False, fold=ctx.folds_[0],
                                       patch_set=ctx.patch_set_).eval()

    def feature_maps_figure(self, layer: str):
        """The first `maps_channels` feature maps of `layer` for one test patch of each class."""
        ps, size = self.ctx.patch_set_, self.ctx.pretrained_input
        first = {c: ps.index.index[(ps.index.role == "test") & (ps.index.label == c)][0] for c in (1, 0)}
        patches = np.asarray(ps.patches(self.setting["patch_size"])[list(first.values())])
        maps = features.feature_maps(self.viewer_model, patches, "googlenet", layer, size)
        named = dict(zip(ps.descriptor.class_names.values(), maps))  # class 1 first, as `first`
        return plots.feature_maps(named, f"{layer} ({self.viewer_source})", self.ctx.P.maps_channels)

    def show_viewer(self) -> None:
        """The interactive feature-map viewer (JupyterLab): pick a layer and the patches."""
        ctx = self.ctx
        feature_map_viewer(self.viewer_model, ctx.patch_set_, self.setting["patch_size"], "googlenet",
                           ctx.pretrained_input, weights.GOOGLENET_LAYERS, ctx.P.maps_channels)


MAPS_LAYERS = ("conv3", "inception4e")  # the layers of 05's static feature-map figures


def layerwise(ctx, feats: DeepFeatures | None = None) -> LayerwiseResult:
    """05: one SVM per GoogLeNet layer and runnable source (features from `layer_features`, computed when not
    given) at the pre-specified setting; the sources that cannot run are skipped rows, one per layer."""
    P, ps, size = ctx.P, ctx.patch_set_, ctx.pretrained_input
    patch_size, kernel, why = features.layerwise_setting(P.layer_patch_size, P.kernel, P.patch_sizes)
    feats = feats if feats is not None else layer_features(ctx)
    status = ctx.source_status("googlenet")
    matrices = {s: f for s, (_, f) in feats.features.items()}
    index = next(iter(feats.features.values()))[0] if feats.features else None
    settings = {(s, layer): svm_setting(matrices[s][layer], index, ctx.folds_, kernel, P, feats.ids[s, layer])
                for s, layer in feats.ids}
    cv = features.cross_validate_svms(settings, P.n_jobs)
    rows = [results.make_row("layerwise", "googlenet", s, patch_size, kernel=kernel, layer=layer, cv=c,
                             input_size=size, length=int(matrices[s][layer].shape[1]))
            for (s, layer), c in cv.items()]
    rows += [results.make_row("layerwise", "googlenet", s, patch_size, kernel=kernel, layer=layer, skipped=reason)
             for s, reason in status.items() if reason for layer in weights.GOOGLENET_LAYERS]
    table = pd.DataFrame([r for r in rows if r["skipped"] is None])
    title = f"GoogLeNet layers, patch {patch_size}, {kernel} SVM"
    figures = {"05_layerwise": partial(plots.layerwise, table, paper.layerwise_test(ps.descriptor), title,
                                       ps.descriptor.reference_label)}
    sources = [s for s in P.sources if status[s] is None]
    out = LayerwiseResult("layerwise", ps.descriptor, rows, cv=cv, figures=figures, ceiling=_ceiling(ctx),
                          baseline=_baseline(ctx), ctx=ctx,
                          setting={"patch_size": patch_size, "kernel": kernel, "chosen_by": why},
                          viewer_source=sources[0] if sources else None)
    out.figures.update({f"05_maps_{layer}": partial(out.feature_maps_figure, layer) for layer in MAPS_LAYERS})
    return out


# ---------------------------------------------------------------------------------------------------------------
# The steps of notebooks 02-05 (radiolib.steps.scratch, transfer, deep_features, layerwise) share their views


class ApproachStep(Step):
    """A step of 02-05: `fit()` runs its approach on `context_` into `result_` (an `ApproachResult`); its tables,
    figures and results file are those of `result_`, the figures saved in the run's figures/."""

    def describe(self) -> str:
        """Patients, folds and the deviations from the paper's protocol, one per line."""
        self._check_fitted()
        return self.context_.describe()

    def source_table(self) -> pd.DataFrame:
        """Networks x pretraining sources: `available`, or why that source's rows are skipped."""
        self._check_fitted()
        return self.context_.source_table(self.P.networks)

    def table(self) -> pd.DataFrame:
        """The results table beside the paper's numbers, after the ceiling and baseline lines."""
        self._check_fitted()
        return self.result_.table()

    def sweep_table(self) -> pd.DataFrame:
        """The learning-rate sweep's rows beside the paper's sweep."""
        self._check_fitted()
        return self.result_.sweep_table()

    def structure(self) -> str:
        """What the results table must be on every machine (`results.structure` of its rows)."""
        self._check_fitted()
        return results.structure(self.result_.rows)

    def sweep_structure(self) -> str:
        """`results.structure` of the sweep's rows."""
        self._check_fitted()
        return results.structure(self.result_.sweep_rows)

    def save_figures(self, *names: str) -> None:
        """Draw the named figures (all when none is named) into the run's figures/<name>.png."""
        self._check_fitted()
        self.result_.save_figures(self.context_.paths_.figures, *names)

    def write(self) -> dict:
        """results/<stem>.json: the rows, then the sweep's rows; the document."""
        self._check_fitted()
        return self.context_.write_results(self.result_.all_rows)
