"""Parameters: notebooks, profiles and validation agree; a misspelled key is refused with the valid ones."""
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
    ns = {**params.defaults("01_preprocessing"), "In": [], "_i1": "", "patchsize": 80}
    with pytest.raises(ValueError, match="patchsize"):
        params.bind(ns, "01_preprocessing")
    ns.pop("patchsize")
    assert params.bind(ns, "01_preprocessing").patch_sizes == [80, 120]


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
