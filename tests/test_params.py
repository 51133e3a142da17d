"""Parameters: notebooks, profiles and validation agree; a misspelled key is refused with the valid ones."""
import warnings
from pathlib import Path

import nbformat
import pytest
import yaml

from radiolib import params

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("stem", list(params.NOTEBOOKS))
def test_parameters_cell_matches_the_defaults(stem):
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    namespace = {}
    exec(tagged[0].source, namespace)
    namespace.pop("__builtins__")
    assert namespace == params.defaults(stem)


@pytest.mark.parametrize("profile", ["smoke", "demo", "paper", "lgg"])
def test_every_profile_file_is_valid_and_complete(profile):
    folder = ROOT / "params" / profile
    for stem in params.NOTEBOOKS:
        values = yaml.safe_load((folder / f"{stem}.yaml").read_text())
        assert values["profile"] == profile
        params.validate(stem, values)
    common = [{k: v for k, v in yaml.safe_load(f.read_text()).items() if k in params.COMMON}
              for f in (folder / f"{s}.yaml" for s in params.NOTEBOOKS)]
    assert all(c == common[0] for c in common), "common keys differ between notebooks of one profile"


def test_smoke_profile_equals_the_notebook_defaults():
    for stem in params.NOTEBOOKS:
        values = yaml.safe_load((ROOT / "params" / "smoke" / f"{stem}.yaml").read_text())
        assert {k: params.defaults(stem)[k] for k in values} == values


def test_misspelled_key_names_the_key_and_lists_valid_ones():
    with pytest.raises(ValueError) as err:
        params.validate("01_preprocessing", {"synth_patient": 10})
    msg = str(err.value)
    assert "'synth_patient'" in msg and "did you mean 'synth_patients'" in msg and "n_augment" in msg


def test_wrong_type_is_refused():
    with pytest.raises(TypeError, match="n_augment"):
        params.validate("01_preprocessing", {"n_augment": "four"})
    assert params.validate("01_preprocessing", {"synth_effect": 2})["synth_effect"] == 2


def test_bind_refuses_an_injected_unknown_name():
    injected = "# Parameters\npatchsize = 80\nn_augment = 2\n"
    ns = {**params.defaults("01_preprocessing"), "_ih": ["", params.parameters_cell("01_preprocessing"), injected, "P"],
          "patchsize": 80, "n_augment": 2}
    with pytest.raises(ValueError, match="'patchsize'.*Valid keys: .*n_augment"):
        params.bind(ns, "01_preprocessing")
    ns["_ih"][2] = "# Parameters\nn_augment = 2\n"
    assert params.bind(ns, "01_preprocessing").n_augment == 2


def test_bind_ignores_the_other_variables_of_a_kernel_that_ran_the_notebook():
    ns = {**params.defaults("01_preprocessing"), "In": ["", "x"], "P": object(), "paths": {}, "cohort": [1],
          "synth_patients": 7, "_": None}
    P = params.bind(ns, "01_preprocessing")
    assert P.synth_patients == 7 and not hasattr(P, "paths") and P.patch_sizes == [80, 120]


def test_injected_names_reads_the_latest_papermill_cell():
    history = ["", "# Parameters\nn_augmnt = 2\n", "a = 1", "# Parameters\nseed = 3\nx: int = 1\n", "P = b()"]
    assert params.injected_names({"_ih": history}) == ["seed", "x"]
    assert params.injected_names({"In": ["", "seed = 3"]}) == [] and params.injected_names({}) == []


def test_a_key_a_later_cell_reassigned_binds_the_parameters_cells_value():
    cell = params.parameters_cell("01_preprocessing").replace("n_augment = 4", "n_augment = 3")
    ns = {**params.defaults("01_preprocessing"), "n_augment": 3, "data_dir": "/cohort/folder", "target": 3.86,
          "_ih": ["", cell, "P = bind()", "data_dir = study.data_folder(P)", "x = 1\ntarget = 3.86", "P = bind()"]}
    with pytest.warns(UserWarning, match=r"'data_dir' was reassigned by a later cell \(`data_dir = study.data_fo"):
        P = params.bind(ns, "01_preprocessing")
    assert (P.data_dir, P.target, P.n_augment) == (None, None, 3)
    ns["_ih"] = ns["_ih"][:-1] + [cell.replace("data_dir = None", "data_dir = '/d'"), "P = bind()"]
    ns.update(data_dir="/d", target=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert params.bind(ns, "01_preprocessing").data_dir == "/d"


def _mini_notebook(stem: str):
    """The real parameters and bind cells of a notebook, then a rerun of both with an edited parameter."""
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    tagged = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    bind = next(c.source for c in nb.cells[tagged:] if "params.bind(globals()" in c.source)
    default = f"synth_patients = {params.COMMON['synth_patients']}"
    code = nbformat.v4.new_code_cell
    nb.cells = [nb.cells[tagged], code(bind), code("paths, cohort, ps = 1, 2, 3\nfirst = P"),
                code(nb.cells[tagged].source.replace(default, "synth_patients = 9")), code(bind),
                code("print(first.synth_patients, P.synth_patients)"),
                code("data_dir = 'the cohort folder a later cell found'"), code(bind), code("print(P.data_dir)")]
    return nb


def test_a_second_run_in_the_same_kernel_binds_and_takes_the_edited_value(tmp_path):
    import papermill as pm
    nbformat.write(_mini_notebook("01_preprocessing"), tmp_path / "in.ipynb")
    pm.execute_notebook(str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"), progress_bar=False,
                        kernel_name="python3", cwd=str(ROOT / "notebooks"), parameters={"n_augment": 2})
    out = nbformat.read(tmp_path / "out.ipynb", 4).cells
    assert out[-4].outputs[0]["text"] == f"{params.COMMON['synth_patients']} 9\n"
    assert out[-1].outputs[0]["text"] == "None\n" and "reassigned by a later cell" in str(out[-2].outputs)
    with pytest.raises(pm.PapermillExecutionError, match="'synth_patiens' .*did you mean 'synth_patients'"):
        pm.execute_notebook(str(tmp_path / "in.ipynb"), str(tmp_path / "bad.ipynb"), progress_bar=False,
                            kernel_name="python3", cwd=str(ROOT / "notebooks"), parameters={"synth_patiens": 3})


def test_overrides_are_typed():
    assert params.parse_overrides(["n_augment=2", "patch_sizes=[80]", "data_dir=null", "synth_effect=0.5"]) == \
        {"n_augment": 2, "patch_sizes": [80], "data_dir": None, "synth_effect": 0.5}
    with pytest.raises(ValueError, match="key=value"):
        params.parse_overrides(["n_augment"])


def test_unknown_profile_lists_the_available_ones():
    with pytest.raises(ValueError, match="smoke"):
        params.load_profile("nope", "01_preprocessing", ROOT / "params")


@pytest.mark.parametrize("stem", list(params.NOTEBOOKS))
def test_papermill_parses_every_parameter(stem):
    import papermill
    found = papermill.inspect_notebook(str(ROOT / "notebooks" / f"{stem}.ipynb"))
    assert list(found) == list(params.defaults(stem))


# --- values checked before any work ------------------------------------------------------------------------------

@pytest.mark.parametrize("key, value, expected", [
    ("n_folds", 1, "n_folds = 1: must be an integer >= 2"),
    ("n_folds", 0, "n_folds = 0: must be an integer >= 2"),
    ("n_folds", 1000, "n_folds = 1000: more folds than the 24 synthetic patients"),
    ("seed", -1, "seed = -1: must be an integer >= 0"),
    ("patch_sizes", [], "patch_sizes = []: must be a non-empty list"),
    ("networks", ["resnet"], "networks = ['resnet']: has 'resnet', which must be one of cifar, vgg_r"),
    ("n_jobs", 0, "n_jobs = 0: must be an integer >= 1"),
    ("train_patch_size", 100, "train_patch_size = 100: must be one of patch_sizes [80, 120]"),
])
def test_a_bad_value_is_named_with_what_it_must_be(key, value, expected):
    problems = params.check_values("02_training_from_scratch", {**params.defaults("02_training_from_scratch"),
                                                                key: value})
    assert problems == [expected] or problems[0].startswith(expected)
    with pytest.raises(ValueError, match=key):
        params.validate("02_training_from_scratch", {key: value})


def test_the_code_accepts_exactly_the_names_the_checks_allow():
    from radiolib import models, weights
    assert set(params.SCRATCH_NETWORKS) == set(models.NETWORKS)
    assert set(params.PRETRAINED_NETWORKS) == set(weights.PRETRAINED)
    assert set(params.SOURCES) == set(weights.SOURCES)


@pytest.mark.parametrize("profile", ["smoke", "demo", "paper", "lgg"])
def test_the_shipped_profiles_have_no_problem(profile):
    assert params.check_study(profile, {}, ROOT / "params") == []


def _profiles(tmp_path):
    import shutil
    return shutil.copytree(ROOT / "params", tmp_path / "params")


def test_check_study_gives_one_line_per_problem_naming_notebook_key_or_file(tmp_path):
    folder = _profiles(tmp_path)
    (folder / "smoke" / "04_deep_features_svm.yaml").write_text("kernels: [poly\nseed: 0\n")
    (folder / "smoke" / "03_transfer_learning.yaml").write_text("sources: [imagenet, web]\nbatchsize: 8\n")
    problems = params.check_study("smoke", {"seed": -1, "n_folds": 1}, folder)
    assert len(problems) == len(set(problems))
    text = "\n".join(problems)
    assert "04_deep_features_svm.yaml: line" in text and "not valid YAML" in text
    assert "03_transfer_learning.yaml: unknown parameter 'batchsize' (did you mean 'batch_size'?)" in text
    assert "sources = ['imagenet', 'web']: has 'web', which must be one of imagenet, domain, random " \
           "(03_transfer_learning)" in problems
    assert "n_folds = 1: must be an integer >= 2 (02_training_from_scratch, 03_transfer_learning, " \
           "05_layerwise_analysis)" in problems  # 04 is unreadable: its file is the problem
    assert sum(p.startswith("seed = -1") for p in problems) == 1


def test_malformed_overrides_and_files_name_the_pair_or_file(tmp_path):
    with pytest.raises(ValueError) as err:
        params.parse_overrides(["patch_sizes=[80,", "=3", "ok=1"])
    assert err.value.args[0].splitlines() == [
        "-p 'patch_sizes=[80,': the value of 'patch_sizes' is not a YAML value (expected the node content, "
        "but found '<stream end>')", "-p expects key=value, got '=3'"]
    folder = _profiles(tmp_path)
    (folder / "smoke" / "01_preprocessing.yaml").write_text("- a list\n- not a mapping\n")
    with pytest.raises(ValueError, match=r"01_preprocessing.yaml: expected 'key: value' lines"):
        params.load_profile("smoke", "01_preprocessing", folder)


def test_the_cli_refuses_bad_parameters_before_any_work(tmp_path, monkeypatch, capsys):
    from radiolib import cli, study
    ran = []
    monkeypatch.setattr(study, "run_study", lambda *a, **k: ran.append(1))
    out = tmp_path / "run"
    rc = cli.main(["study", "--profile", "smoke", "--out", str(out), "-p", "n_folds=1", "-p", "networks=[resnet]",
                   "-p", "n_jobs=0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and not ran and not out.exists()
    assert all(line.startswith("radiolib study: error: ") for line in err) and len(err) == 4
    assert any("n_folds = 1" in line for line in err) and any("n_jobs = 0" in line for line in err)
    assert cli.main(["study", "--profile", "smoke", "-p", "seed=[0"]) == 2
    assert "seed=[0" in capsys.readouterr().err
    assert cli.main(["study", "--profile", "smoke", "--out", str(out), "-p", "n_folds=2"]) == 0 and ran == [1]


def test_the_cli_names_a_missing_data_folder_and_an_out_that_is_a_file_in_one_line(tmp_path, capsys):
    from radiolib import cli
    rc = cli.main(["study", "--profile", "smoke", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"radiolib study: error: data folder not found (--data): {tmp_path / 'absent'}"]
    assert not (tmp_path / "r").exists()
    (tmp_path / "file").write_text("a user's file\n")
    rc = cli.main(["study", "--profile", "smoke", "--out", str(tmp_path / "file"), "--notebooks", "06_report"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "is a file, not a folder" in err[0] and "Traceback" not in err[0]
    assert (tmp_path / "file").read_text() == "a user's file\n"
