"""The `device` parameter: resolved and checked on any machine; a tiny training on CUDA where a GPU is present."""
from types import SimpleNamespace

import pytest
import torch

from radiolib.learn import models, training
from radiolib.run import inputs, params, results
from radiolib.stats import evaluation
from radiolib.steps import approaches

CUDA = torch.cuda.is_available()


def _params(stem: str, **values) -> SimpleNamespace:
    return SimpleNamespace(**params.validate(stem, values))


def test_device_auto_is_cuda_when_present_else_cpu_and_reaches_the_training_configs():
    expected = "cuda" if CUDA else "cpu"
    assert models.resolve_device("auto").type == expected
    P = _params(params.SCRATCH)
    assert P.device == "auto"
    assert torch.device(approaches.scratch_config("cifar", P).device).type == expected
    assert torch.device(approaches.transfer_config(_params(params.TRANSFER)).device).type == expected
    assert torch.device(inputs.domain_config(_params(params.FEATURES)).device).type == expected
    assert approaches.scratch_config("cifar", _params(params.SCRATCH, device="cpu")).device == "cpu"


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cpu:0", "CUDA"])
def test_a_device_the_table_does_not_know_is_refused_naming_the_key(bad):
    with pytest.raises(ValueError, match=r"device = .*must be auto, cpu, cuda or cuda:N"):
        params.validate(params.SCRATCH, {"device": bad})


def test_a_cuda_device_the_machine_lacks_is_refused_when_resolved():
    with pytest.raises(ValueError, match=r"device = 'cuda:99': this machine has \d+ CUDA device"):
        models.resolve_device("cuda:99")
    with pytest.raises(ValueError, match="device = 'gpu'"):
        models.resolve_device("gpu")


def test_the_device_is_no_run_key_and_a_cpu_training_keeps_its_cache_key():
    assert "device" not in results.RUN_KEYS
    assert {p.name for p in params.PARAMETERS if p.name == "device" and not p.run_key} == {"device"}
    assert "precision" not in training._cfg_key(training.TrainConfig(input_size=32, device="cpu"))


def _tiny_cv(patch_set, device: str):
    folds = evaluation.patient_folds(patch_set.table.patient.tolist(), patch_set.table.label.tolist(), 2, 1, 0)
    cfg = training.TrainConfig(input_size=32, epochs=2, patches_per_epoch=64, curve_patients=5, device=device)
    return training.cross_validate_net(patch_set, 80, folds, lambda: models.build("cifar", seed=0, input_size=32),
                                       cfg, progress=False, n_boot=50)


@pytest.mark.skipif(not CUDA, reason="no CUDA device: the CUDA path (mixed precision, pinned DataLoader) needs a GPU")
def test_a_tiny_training_on_cuda_writes_the_rows_a_cpu_training_writes(patch_set):
    cpu, cuda = _tiny_cv(patch_set, "cpu"), _tiny_cv(patch_set, "cuda")
    row_cpu, row_cuda = (results.make_row("scratch", "cifar", patch_size=80, cv=cv) for cv in (cpu, cuda))
    assert list(row_cuda) == list(row_cpu)
    assert [list(f) for f in row_cuda["folds"]] == [list(f) for f in row_cpu["folds"]]
    assert 0 <= row_cuda["test_auc"] <= 1 and set(row_cuda["oof"]) == set(row_cpu["oof"])
    assert "precision" in training._cfg_key(training.TrainConfig(input_size=32, device="cuda"))
