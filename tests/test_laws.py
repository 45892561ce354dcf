import json
import math
import re

import numpy as np
import pytest

import scalesweep as ss
from scalesweep.laws import FAMILIES, PRESETS, load_law_file, parse_assignments, resolve_law

from . import reference as ref

# Values as listed in shared/reference/scaling-laws.md (§1.2, §2.1, §3.2, §7).
SHEET = {
    "hoffmann2022": ("chinchilla", {"E": 1.6934, "A": 406.4, "B": 410.72, "alpha": 0.33917084, "beta": 0.2849083}),
    "hoffmann2022-printed": ("chinchilla", {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}),
    "besiroglu2024": ("chinchilla", {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}),
    "kaplan2020": ("kaplan", {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}),
}


@pytest.mark.parametrize("name", list(SHEET))
def test_presets_match_reference_sheet(name):
    family, params = SHEET[name]
    law = ss.get_law(name)
    assert law.family == family
    assert dict(law.params) == params
    assert law.citation and law.conventions
    assert law.vector.dtype == np.float64 and not law.vector.flags.writeable


def test_citations_stand_alone():
    """Every preset names its paper by arXiv id and where in it the constants are; no citation points at a
    file outside the package."""
    for name, p in PRESETS.items():
        assert re.search(r"arXiv:\d{4}\.\d{5}", p.citation), name
        assert re.search(r"\b(Eq|Table|Fig|appendix|fit)\b", p.citation), name
    texts = [p.citation + p.conventions for p in PRESETS.values()] + [f.source for f in FAMILIES.values()]
    assert not any("sheet" in t for t in texts)
    assert ss.get_law("hoffmann2022").citation.startswith(
        "Hoffmann et al. 2022, 'Training Compute-Optimal Large Language Models', arXiv:2203.15556, Eq. 10")


def test_default_law_and_conventions():
    assert ss.get_law().preset == "hoffmann2022"
    assert "NON-embedding" in ss.get_law("kaplan2020").conventions
    assert "total" in ss.get_law("hoffmann2022").conventions


@pytest.mark.parametrize(
    "name, G, a",
    [  # reference sheet §2.2 ([D] rows) and §3.2
        ("hoffmann2022-printed", 1.3447, 0.4516),
        ("hoffmann2022", 1.3004, 0.4565),
        ("besiroglu2024", 0.11963, 0.5126),
    ],
)
def test_frontier_reproduces_published_G_and_a(name, G, a):
    flops = np.array([1e20, 1e24])
    df = ss.frontier(name, flops, solver="newton")
    slope = math.log(df.params[1] / df.params[0]) / math.log(1e4)
    assert slope == pytest.approx(a, abs=5e-5)
    assert df.params[0] / (flops[0] / 6) ** slope == pytest.approx(G, rel=5e-4)


def test_kaplan_frontier_data_grows_as_params_to_074():
    # Kaplan Eq. 4.3/4.4: the optimum keeps N^(alpha_N/alpha_D)/D fixed; 8x the model needs 8^0.74 ~ 4.7x data.
    r = 0.076 / 0.103
    df = ss.frontier("kaplan2020", [1e20, 1e20 * 8 ** (1 + r)], solver="newton")  # N grows 8x
    n_ratio, d_ratio = df.params[1] / df.params[0], df.tokens[1] / df.tokens[0]
    assert n_ratio == pytest.approx(8, rel=1e-10)
    assert math.log(d_ratio) / math.log(n_ratio) == pytest.approx(r, rel=1e-10)
    assert d_ratio == pytest.approx(4.7, abs=0.1)  # the paper: "8x the model needs only ~5x the data"


def test_overrides_and_names():
    law = ss.get_law("hoffmann2022", alpha=0.35)
    assert law.params["alpha"] == 0.35 and law.params["beta"] == 0.2849083
    assert law.name == "hoffmann2022+alpha"
    law2 = ss.get_law(law, E="1.7")  # strings from the CLI are parsed
    assert law2.params["E"] == 1.7 and law2.overrides == ("alpha", "E")
    assert ss.get_law("hoffmann2022", E=0).params["E"] == 0.0  # irreducible loss may be zero


@pytest.mark.parametrize(
    "overrides, needle",
    [
        ({"alpha": float("nan")}, "'alpha' must be finite"),
        ({"beta": float("inf")}, "'beta' must be finite"),
        ({"A": -1.0}, "'A' must be > 0"),
        ({"alpha": 0.0}, "'alpha' must be > 0"),
        ({"E": -0.1}, "'E' must be >= 0"),
        ({"gamma": 1.0}, "unknown parameter 'gamma'"),
        ({"B": "abc"}, "'B' must be a number"),
        ({"B": True}, "'B' must be a number"),
    ],
)
def test_bad_parameters_are_refused_by_name(overrides, needle):
    with pytest.raises(ss.ScalesweepError, match=needle):
        ss.get_law("hoffmann2022", **overrides)


def test_unknown_law():
    with pytest.raises(ss.ScalesweepError, match="unknown law 'chinchila'"):
        ss.get_law("chinchila")


def test_kaplan_parameters_must_be_positive():
    with pytest.raises(ss.ScalesweepError, match="'N_c' must be > 0"):
        ss.get_law("kaplan2020", N_c=0)


def test_parse_assignments():
    assert parse_assignments(["alpha=0.3", " E = 1 "]) == {"alpha": "0.3", "E": "1"}
    for bad in ["alpha", "=1", "alpha="]:
        with pytest.raises(ss.ScalesweepError, match="NAME=VALUE"):
            parse_assignments([bad])


def test_law_files_json_and_toml(tmp_path):
    j = tmp_path / "law.json"
    j.write_text(json.dumps({"family": "kaplan", "parameters": SHEET["kaplan2020"][1], "objective": 0.1}))
    law = load_law_file(j)
    assert law.family == "kaplan" and dict(law.params) == SHEET["kaplan2020"][1]
    assert law.name == "law.json"
    t = tmp_path / "law.toml"
    t.write_text('preset = "hoffmann2022"\n[parameters]\nalpha = 0.35\n')
    law = load_law_file(t)
    assert law.preset == "hoffmann2022" and law.params["alpha"] == 0.35 and law.params["E"] == 1.6934
    # Law.to_dict round-trips through a file.
    r = tmp_path / "round.json"
    r.write_text(json.dumps(ss.get_law("besiroglu2024", beta=0.4).to_dict()))
    assert dict(load_law_file(r).params) == dict(ss.get_law("besiroglu2024", beta=0.4).params)


@pytest.mark.parametrize(
    "content, suffix, needle",
    [
        ("{not json", ".json", "not valid JSON"),
        ("a = [", ".toml", "not valid TOML"),
        ("[1, 2]", ".json", "must hold an object"),
        ('{"family": "gpt"}', ".json", "unknown family 'gpt'"),
        ('{"parameters": {}}', ".json", "needs 'family'"),
        ('{"family": "chinchilla", "parameters": {"E": 1, "A": 1, "B": 1, "alpha": 0.3}}', ".json",
         "missing parameter 'beta'"),
        ('{"family": "chinchilla", "parameters": {"E": 1, "A": 1, "B": 1, "alpha": 0.3, "beta": -2}}', ".json",
         "'beta' must be > 0"),
        ('{"preset": "nope"}', ".json", "unknown preset 'nope'"),
        ('{"preset": "kaplan2020", "family": "chinchilla"}', ".json", "is family 'kaplan'"),
        ('{"preset": "kaplan2020", "parameters": {"alpha": 1}}', ".json", "unknown parameter 'alpha'"),
        ('{"family": "kaplan", "parameters": [1, 2]}', ".json", "'parameters' must be a table"),
    ],
)
def test_malformed_law_files(tmp_path, content, suffix, needle):
    f = tmp_path / ("law" + suffix)
    f.write_text(content)
    with pytest.raises(ss.ScalesweepError, match=needle) as exc:
        load_law_file(f)
    assert "\n" not in str(exc.value)


def test_missing_law_file_and_conflicting_options(tmp_path):
    with pytest.raises(ss.ScalesweepError, match="cannot read law file"):
        load_law_file(tmp_path / "nope.json")
    with pytest.raises(ss.ScalesweepError, match="not both"):
        resolve_law("hoffmann2022", tmp_path / "x.json")


@pytest.mark.parametrize("name", list(SHEET))
def test_law_loss_matches_reference(name):
    law = ss.get_law(name)
    n = np.geomspace(1e6, 1e12, 7)
    d = np.geomspace(1e8, 1e14, 7)
    np.testing.assert_allclose(law.loss(n, d), ref.loss(law.family, dict(law.params), n, d), rtol=1e-14)
    assert isinstance(law.loss(1e9, 2e10), float)
