"""Parameters: notebooks, profiles and validation agree; a misspelled key is refused with the valid ones."""
import warnings
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
import yaml

from radiolib.run import params

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
    assert params.cell_problems(tagged[0].source, stem) == []


PROFILES = ["smoke", "demo", "paper", "lgg"]


def _raw(profile: str) -> dict[str, dict]:
    """The files of a shipped profile, raw: {"study": shared keys, stem: that notebook's own keys}."""
    folder = ROOT / "params" / profile
    return {f.stem: yaml.safe_load(f.read_text()) or {} for f in sorted(folder.glob("*.yaml"))}


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_is_valid_and_states_each_setting_once(profile):
    files = _raw(profile)
    shared = files.pop(params.STUDY_FILE)
    assert shared.get("profile", "smoke") == profile
    bound = {s: params.validate(s, params.load_profile(profile, s, ROOT / "params")) for s in params.NOTEBOOKS}
    assert all(b["profile"] == profile for b in bound.values())
    for key, value in shared.items():  # each shared key changes some notebook's default (or the runner's)
        having = [s for s in params.NOTEBOOKS if key in params.defaults(s)]
        assert having or key in params.RUNNER, key
        assert any(params.defaults(s)[key] != value for s in having) or params.RUNNER.get(key, value) != value, key
    for stem, own in files.items():  # a notebook's own key differs from what the study file and defaults give it
        assert own and not set(own) & set(params.COMMON), f"{profile}/{stem}: the data must be the same for all"
        for key, value in own.items():
            assert value != shared.get(key, params.defaults(stem)[key]), f"{profile}/{stem}: {key}"
            others = [bound[s][key] for s in params.NOTEBOOKS if key in bound[s]]
            assert any(v != value for v in others), f"{profile}/{stem}: {key} belongs in study.yaml"


def test_the_smoke_profile_is_the_defaults():
    assert _raw("smoke") == {"study": {}}
    for stem in params.NOTEBOOKS:
        assert params.load_profile("smoke", stem, ROOT / "params") == {}


def test_a_shared_key_of_another_notebook_is_ignored_and_one_of_none_refused(tmp_path):
    folder = tmp_path / "params" / "mine"
    folder.mkdir(parents=True)
    (folder / "study.yaml").write_text("n_folds: 5\nkernels: [rbf]\ncell_timeout: 60\nseed: 3\n")
    assert params.load_profile("mine", "01_preprocessing", folder.parent) == {"n_folds": 5, "seed": 3}
    assert params.load_profile("mine", "04_deep_features_svm", folder.parent) == \
        {"n_folds": 5, "kernels": ["rbf"], "seed": 3}
    (folder / "study.yaml").write_text("n_fold: 5\n")
    with pytest.raises(ValueError, match=r"study.yaml: unknown parameter 'n_fold' \(did you mean 'n_folds'\?\) in "
                                         r"any notebook. Valid keys: .*n_folds.*cell_timeout"):
        params.load_profile("mine", "01_preprocessing", folder.parent)
    (folder / "study.yaml").write_text("")
    (folder / "01_preprocessing.yaml").write_text("epochs: 5\n")  # a notebook's own file: its keys only
    with pytest.raises(ValueError, match=r"01_preprocessing.yaml: unknown parameter 'epochs' \(a key of "
                                         r"02_training_from_scratch, 03_transfer_learning only\) for notebook 01"):
        params.load_profile("mine", "01_preprocessing", folder.parent)


def test_bind_ignores_another_notebooks_injected_key_and_refuses_one_of_none():
    ns = {**params.defaults("01_preprocessing"), "epochs": 3, "cell_timeout": 60, "n_augment": 2,
          "_ih": ["", "# Parameters\nepochs = 3\ncell_timeout = 60\nn_augment = 2\n", "P"]}
    P = params.bind(ns, "01_preprocessing")
    assert P.n_augment == 2 and not hasattr(P, "epochs") and not hasattr(P, "cell_timeout")
    ns["_ih"][1] += "epoch = 3\n"
    with pytest.raises(ValueError, match="'epoch'.*Valid keys: .*n_augment"):
        params.bind({**ns, "epoch": 3}, "01_preprocessing")


@pytest.mark.parametrize("stem", ["01_preprocessing", "02_training_from_scratch"])
def test_one_notebook_of_a_profile_runs_with_papermill_and_two_files(stem, tmp_path):
    """The README's single-notebook command binds what `radiolib study` would (a notebook without its own file
    takes study.yaml alone)."""
    import json
    import subprocess
    import sys
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    tagged = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    bind = next(c.source for c in nb.cells if "params.bind(globals()" in c.source)
    nb.cells = [tagged, nbformat.v4.new_code_cell(bind),
                nbformat.v4.new_code_cell("import json\nprint(json.dumps(vars(P)))")]
    nbformat.write(nb, tmp_path / "in.ipynb")
    files = [ROOT / "params" / "demo" / f"{name}.yaml" for name in ("study", stem)]
    cmd = [sys.executable, "-m", "papermill", str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"), "--cwd",
           str(ROOT / "notebooks"), "-k", "python3", "--no-progress-bar"]
    cmd += [arg for f in files if f.exists() for arg in ("-f", str(f))]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    bound = json.loads(nbformat.read(tmp_path / "out.ipynb", 4).cells[-1].outputs[0]["text"])
    expected = params.validate(stem, params.load_profile("demo", stem, ROOT / "params"))
    assert bound == json.loads(json.dumps(expected)) and bound["n_jobs"] == 2


def test_the_paper_profile_departs_from_the_papers_protocol_only_where_it_says():
    """The paper profile on real data against protocol.PROTOCOL: only the in-domain source it adds (the notes on
    what is not a parameter are stated whatever the settings)."""
    from radiolib.run import protocol
    notes = {e.text for e in protocol.PROTOCOL if isinstance(e, protocol.Note)}
    found = []
    for stem in params.NOTEBOOKS:
        P = SimpleNamespace(**{**params.validate(stem, params.load_profile("paper", stem, ROOT / "params")),
                               "data_dir": "/real/Duke-Breast-Cancer-MRI"})
        found += [d for d in protocol.deviations(P, stem) if d not in notes]
    assert found and all(d.startswith("extra pretraining source 'domain'") for d in found)
    smoke = SimpleNamespace(**params.defaults("03_transfer_learning"))
    assert len([d for d in protocol.deviations(smoke, "03_transfer_learning") if d not in notes]) >= 8


def test_every_setting_of_the_papers_protocol_is_a_parameter():
    from radiolib.run import protocol
    keys = params.known_keys()
    assert all(e.key in keys for e in protocol.PROTOCOL if isinstance(e, protocol.Setting))
    assert all(set(e.notebooks) <= set(params.NOTEBOOKS) for e in protocol.PROTOCOL)


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
    from radiolib.learn import models, weights
    assert set(params.SCRATCH_NETWORKS) == set(models.NETWORKS)
    assert set(params.PRETRAINED_NETWORKS) == set(weights.PRETRAINED)
    assert set(params.SOURCES) == set(weights.SOURCES) | {"in_cohort"}  # in_cohort rows load in-domain weights


@pytest.mark.parametrize("profile", PROFILES)
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
    assert "sources = ['imagenet', 'web']: has 'web', which must be one of imagenet, domain, in_cohort, random " \
           "(03_transfer_learning)" in problems
    assert "n_folds = 1: must be an integer >= 2 (01_preprocessing, 02_training_from_scratch, " \
           "03_transfer_learning, 05_layerwise_analysis, 07_receptors, 09_gene_masking)" in problems  # 04: unreadable
    assert sum(p.startswith("seed = -1") for p in problems) == 1


def test_check_study_names_a_problem_of_the_shared_file_once_and_a_misspelled_file_name(tmp_path):
    folder = _profiles(tmp_path)
    (folder / "demo" / "study.yaml").write_text("profile: demo\nbatchsize: 8\nn_folds: ten\ncell_timeout: 0\n")
    problems = params.check_study("demo", {}, folder)
    study = folder / "demo" / "study.yaml"
    assert [p for p in problems if "batchsize" in p] == [
        f"{study}: unknown parameter 'batchsize' (did you mean 'batch_size'?) in any notebook. Valid keys: "
        + ", ".join(params.known_keys())]
    assert f"{study}: cell_timeout = 0: must be an integer >= 1 (the runner)" in problems
    assert f"n_folds = 'ten' ({study}): should be int (01_preprocessing, 02_training_from_scratch, " \
           "03_transfer_learning, 04_deep_features_svm, 05_layerwise_analysis, 07_receptors, 09_gene_masking)" \
        in problems
    (folder / "demo" / "study.yaml").write_text("profile: demo\n")
    (folder / "demo" / "03_transfer_learning.yaml").rename(folder / "demo" / "03_transfer_lerning.yaml")
    problems = params.check_study("demo", {}, folder)
    assert problems == [f"{folder / 'demo' / '03_transfer_lerning.yaml'}: not a file of a profile (did you mean "
                        "03_transfer_learning.yaml?); a profile holds study.yaml, "
                        + ", ".join(f"{s}.yaml" for s in params.NOTEBOOKS)]


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
    from radiolib.run import cli, study
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
    from radiolib.run import cli
    rc = cli.main(["study", "--profile", "smoke", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"radiolib study: error: data folder not found (--data): {tmp_path / 'absent'}"]
    assert not (tmp_path / "r").exists()
    (tmp_path / "file").write_text("a user's file\n")
    rc = cli.main(["study", "--profile", "smoke", "--out", str(tmp_path / "file"), "--notebooks", "06_report"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "is a file, not a folder" in err[0] and "Traceback" not in err[0]
    assert (tmp_path / "file").read_text() == "a user's file\n"


def test_the_lgg_profile_scores_patients_from_their_tumour_slices_and_says_so():
    from radiolib.run import protocol
    stem = "02_training_from_scratch"
    lgg = params.load_profile("lgg", stem, ROOT / "params")
    P = SimpleNamespace(**{**params.defaults(stem), **lgg})
    assert P.test_patches == "tumour"
    said = [d for d in protocol.deviations(P, stem) if "every tumour slice" in d]
    assert len(said) == 1 and "Buda et al." in said[0]
    smoke = SimpleNamespace(**params.defaults("04_deep_features_svm"))
    assert not [d for d in protocol.deviations(smoke, "04_deep_features_svm") if "tumour slice" in d]
    with pytest.raises(ValueError, match="test_patches"):
        params.validate("04_deep_features_svm", {**vars(smoke), "test_patches": "all"})


# --- the one parameter table ----------------------------------------------------------------------------------


def _applies(p):
    """(stem, the entry as that notebook has it) for each notebook that takes `p`; the runner's: (None, p)."""
    return [(None, p)] if p.notebooks == params.RUNNER_KEY else [(s, p.of(s)) for s in params.NOTEBOOKS if p.takes(s)]


@pytest.mark.parametrize("p", params.PARAMETERS, ids=lambda p: p.name)
def test_every_parameter_has_a_doc_a_check_a_notebook_and_a_paper_value_its_check_accepts(p):
    assert [q.name for q in params.PARAMETERS].count(p.name) == 1
    assert p.doc.strip() and "\n" not in p.doc, "one line of doc"
    assert p.notebooks in (params.ALL, params.RUNNER_KEY) or (p.notebooks and set(p.notebooks) <= set(params.NOTEBOOKS))
    assert set(p.per_notebook) <= {s for s, _ in _applies(p)}
    assert all(set(fields) <= {"default", "check", "paper"} for fields in p.per_notebook.values())
    for stem, entry in _applies(p):
        assert callable(entry.check) and entry.check(entry.default) is None, (stem, entry.default)
        if entry.paper is not params.NO_PAPER:
            assert entry.check(entry.paper) is None, (stem, entry.paper)


def test_the_papers_layerwise_setting_is_the_one_the_code_falls_back_to():
    from radiolib.learn.features import LAYERWISE_SETTING
    assert (params.paper_value("layer_patch_size"), params.paper_value("kernel")) == LAYERWISE_SETTING


def test_the_run_keys_of_a_results_file_are_the_tables():
    from radiolib.run import results
    assert results.RUN_KEYS == ("data", *(p.name for p in params.PARAMETERS if p.run_key))
    assert {"synth_seed", "n_folds", "seed"} <= set(results.RUN_KEYS) and "n_jobs" not in results.RUN_KEYS


def test_adding_a_parameter_touches_the_table_and_the_notebook_that_uses_it_nothing_else(monkeypatch, tmp_path):
    """One new entry in the table and its line in 02's parameters cell: every derived piece takes it; the cell
    without the line, and a profile that misspells it, are refused naming the key."""
    from radiolib.run import protocol
    stem, other = "02_training_from_scratch", "01_preprocessing"
    new = params.Parameter("tta", False, lambda v: None if isinstance(v, bool) else "must be true or false",
                           "average the scores over flipped test patches", (stem,), paper=True)
    old_cell = params.parameters_cell(stem)
    monkeypatch.setattr(params, "PARAMETERS", (*params.PARAMETERS, new))

    # the notebook: its parameters cell, with the line added, agrees with the table; without it, it is refused
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert params.cell_problems(cell.source, stem) and "'tta'" in params.cell_problems(cell.source, stem)[0]
    cell.source += "\ntta = False  # average the scores over flipped test patches"
    nbformat.write(nb, tmp_path / f"{stem}.ipynb")
    source = next(c.source for c in nbformat.read(tmp_path / f"{stem}.ipynb", 4).cells
                  if "parameters" in c.metadata.get("tags", []))
    assert params.cell_problems(source, stem) == [] and source == params.parameters_cell(stem)
    assert params.parameters_cell(stem) == old_cell + "\ntta = False  # average the scores over flipped test patches"

    # defaults, known keys, validate, bind
    assert params.defaults(stem)["tta"] is False and "tta" not in params.defaults(other)
    assert "tta" in params.known_keys()
    assert params.validate(stem, {"tta": True})["tta"] is True
    with pytest.raises(TypeError, match="'tta'"):
        params.validate(stem, {"tta": "yes"})
    injected = "# Parameters\ntta = True\n"
    P = params.bind({**params.defaults(stem), "tta": True, "_ih": ["", source, injected, "P"]}, stem)
    assert P.tta is True
    assert not hasattr(params.bind({**params.defaults(other), "tta": True, "_ih": ["", injected, "P"]}, other), "tta")
    with pytest.raises(ValueError, match=r"'tta' \(a key of 02_training_from_scratch only\)"):
        params.validate(other, {"tta": True})

    # a profile sets it; one that misspells it, or gives it a wrong value, is refused naming the key
    folder = tmp_path / "params" / "mine"
    folder.mkdir(parents=True)
    (folder / "study.yaml").write_text("tta: true\n")
    assert params.check_study("mine", {}, folder.parent) == []
    assert params.load_profile("mine", stem, folder.parent) == {"tta": True}
    assert params.check_study("mine", {"tta": 1}, folder.parent) == [f"tta = 1 (-p): should be bool ({stem})"]
    (folder / "study.yaml").write_text("ttta: true\n")
    problems = params.check_study("mine", {}, folder.parent)
    assert problems and all("unknown parameter 'ttta' (did you mean 'tta'?)" in p for p in problems)

    # the deviations state it where the run departs from the paper's value
    assert "tta = False (paper: True)" in protocol.deviations(SimpleNamespace(**params.defaults(stem)), stem)
    assert not [d for d in protocol.deviations(P, stem) if "tta" in d]
