"""The notebook-first API: top-level exports, scenarios as DataFrame in / DataFrame out (equal to the file
route), provenance in ``df.attrs`` equal to the file metadata, short reprs, and law names (aliases, any case,
did-you-mean)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import scalesweep as ss
from scalesweep.laws import PRESETS, as_laws, load_law_file
from scalesweep.tables import read_metadata

from .helpers import assert_one_line_error, run

DATA = Path(__file__).resolve().parent.parent / "data"
KEY = "scalesweep"


# ------------------------------------------------------------------------------------------------ exports


def test_notebook_names_are_exported():
    from scalesweep import api

    for name in ("fit", "compare", "frontier_bands", "solve_scenarios", "provenance", "FitResult", "ALIASES"):
        assert name in ss.__all__, name
    assert ss.compare is api.compare and ss.frontier_bands is api.frontier_bands
    assert ss.solve_scenarios is api.solve_scenarios and ss.provenance is api.provenance
    assert list(__import__("inspect").signature(ss.fit).parameters)[:3] == ["params", "tokens", "loss"]


def test_fit_is_the_module_and_calling_it_fits():
    """``ss.fit(...)`` fits whatever imported ``scalesweep.fit`` first; ``from scalesweep import fit`` still gives
    the module (its functions and constants)."""
    code = ("import scalesweep.fit, scalesweep as ss; from scalesweep import fit as F; "
            "print(callable(ss.fit), ss.fit is F, F.DEFAULT_DELTA, type(ss.fit.fit).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True", "0.001", "function"]
    rng = np.random.default_rng(3)
    n = np.geomspace(1e7, 1e10, 24)
    d = rng.permutation(np.geomspace(1e9, 1e11, 24))
    loss = 1.7 + 400 / n**0.34 + 400 / d**0.28
    grid = {"a": [5.0], "b": [5.0], "e": [0.0], "alpha": [0.3], "beta": [0.3]}
    a, b = ss.fit(n, d, loss, grid=grid), ss.fit.fit(n, d, loss, grid=grid)
    assert isinstance(a, ss.FitResult) and dict(a.law.params) == dict(b.law.params)
    assert a.law.params["alpha"] == pytest.approx(0.34, rel=1e-3)


# --------------------------------------------------------------------------------------------- scenarios


def _read_with_nullable_ints(path):
    """The Parquet file as a DataFrame with its integer columns as pandas' nullable Int64."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def test_scenarios_from_a_dataframe_equal_the_file_route(tmp_path):
    csv = DATA / "example_scenarios.csv"
    out = tmp_path / "o.parquet"
    ss.run_scenarios(csv, out)
    want = _read_with_nullable_ints(out)
    table = pd.read_csv(csv)
    got = ss.solve_scenarios(table)
    pd.testing.assert_frame_equal(got, want)
    assert got.gpus.dtype == "Int64" and got.gpus.isna().any()  # a null GPU count stays <NA>, not NaN
    meta = read_metadata(out)
    assert meta["spec"]["source"] == str(csv) and got.attrs[KEY]["spec"]["source"] == "DataFrame"
    meta["spec"]["source"] = "DataFrame"
    assert got.attrs[KEY] == meta
    assert ss.provenance(got) == got.attrs[KEY] and ss.provenance(out) == read_metadata(out)


def test_scenarios_from_a_dict_equal_the_yaml_route(tmp_path):
    spec = yaml.safe_load((DATA / "example_sweep.yaml").read_text())
    out = tmp_path / "o.parquet"
    ss.run_scenarios(DATA / "example_sweep.yaml", out)
    got = ss.solve_scenarios(spec)
    pd.testing.assert_frame_equal(got, _read_with_nullable_ints(out))
    assert len(got) == 3 * 4 * 3 * 2 * 2  # the spec's list lengths
    meta = read_metadata(out)
    meta["spec"]["source"] = "dict"
    assert got.attrs[KEY] == meta
    pd.testing.assert_frame_equal(ss.solve_scenarios(DATA / "example_sweep.yaml"), got)  # a path works too


def test_scenario_dataframe_errors_name_the_dataframe():
    with pytest.raises(ss.ScalesweepError) as exc:
        ss.solve_scenarios(pd.DataFrame({"flop": [1e22]}))
    assert str(exc.value).startswith("scenario table DataFrame: unknown field 'flop'; did you mean 'flops'?")
    with pytest.raises(ss.ScalesweepError, match=r"^DataFrame, row 2, field 'mfu': must be a number in \(0, 1\]"):
        ss.solve_scenarios(pd.DataFrame({"flops": [1e22, 1e23], "mfu": [0.4, 1.5]}))
    with pytest.raises(ss.ScalesweepError, match="^scenario table DataFrame: a column is not a table column"):
        ss.solve_scenarios(pd.DataFrame({"flops": [1e22, "x"], "mfu": [0.4, object()]}))


# -------------------------------------------------------------------------------------------- provenance


def _without(meta: dict, *keys: str) -> dict:
    return {k: v for k, v in meta.items() if k not in keys}


def test_frontier_and_target_loss_attrs_equal_the_file_metadata(tmp_path):
    f, t = tmp_path / "f.parquet", tmp_path / "t.parquet"
    run(["frontier", "--law", "chinchilla", "--flops-range", "1e21:1e23:3", "--max-params", "3e10", "--gpu",
         "H100-SXM", "--gpus", "64", "-o", f])
    run(["target-loss", "--law", "epoch,kaplan", "--loss", "2.2,2.4", "-o", t])
    df = ss.frontier("Chinchilla", np.geomspace(1e21, 1e23, 3), max_params=3e10, gpu="H100-SXM", gpus=64)
    file_meta = read_metadata(f)
    assert _without(df.attrs[KEY], "grid", "command_line") == _without(file_meta, "grid", "command_line")
    assert df.attrs[KEY]["grid"] == {"unit": "flops", "solver": "auto"}
    assert {k: file_meta["grid"][k] for k in ("unit", "solver")} == df.attrs[KEY]["grid"]
    assert df.attrs[KEY]["law"]["preset"] == "hoffmann2022" and "arXiv:2203.15556" in df.attrs[KEY]["law"]["citation"]
    tl = ss.target_loss(["EPOCH", "Kaplan"], [2.2, 2.4])
    assert _without(tl.attrs[KEY], "grid", "command_line") == _without(read_metadata(t), "grid", "command_line")
    assert [law["preset"] for law in tl.attrs[KEY]["laws"]] == ["besiroglu2024", "kaplan2020"]
    json.dumps(df.attrs)  # plain data


def test_lookup_attrs_equal_the_file_metadata(tmp_path):
    path = tmp_path / "lk.parquet"
    ss.write_lookup(path, "kaplan", 1e18, 1e22, 4, max_params=1e10)
    df, info = ss.build_lookup("kaplan", 1e18, 1e22, 4, max_params=1e10)
    assert df.attrs[KEY] == read_metadata(path)  # neither has a command line
    assert df.attrs[KEY]["lookup"] == info and df.attrs[KEY]["law"]["preset"] == "kaplan2020"
    lk = ss.Lookup(path)
    q = lk.query([1e19, 1e21])
    table = lk.query_table([1e19, 1e21])
    assert q.attrs[KEY] == ss.provenance(table.schema.metadata)
    assert q.attrs[KEY]["command"] == "lookup query" and q.attrs[KEY]["rows"] == 2


def test_provenance_refuses_what_has_none():
    with pytest.raises(ss.ScalesweepError, match="carries no scalesweep provenance"):
        ss.provenance(pd.DataFrame({"a": [1]}))
    with pytest.raises(ss.ScalesweepError, match="no scalesweep metadata"):
        ss.provenance({b"pandas": b"{}"})


# ------------------------------------------------------------------------------------------------- reprs


def test_law_repr_is_short_and_names_the_law():
    assert repr(ss.get_law("hoffmann2022-printed")) == \
        "Law('hoffmann2022-printed', chinchilla: E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)"
    assert repr(ss.get_law("epoch", alpha=0.3)).startswith("Law('besiroglu2024+alpha', chinchilla: E=1.8172, ")
    for name in PRESETS:
        text = repr(ss.get_law(name))
        assert len(text) <= 160 and text.startswith(f"Law({name!r}, {PRESETS[name].family}: "), text


def test_lookup_repr(tmp_path):
    path = tmp_path / "lk.parquet"
    ss.write_lookup(path, "hoffmann2022", 1e18, 1e22, 4)
    text = repr(ss.Lookup(path))
    # 4 decades at 4 points per decade, both ends included: 17 rows; an unconstrained chinchilla frontier is a
    # power law, so params and tokens interpolate exactly
    assert text.startswith(f"Lookup({str(path)!r}, law hoffmann2022, flops 1e+18..1e+22, 17 rows, max error params ")
    assert "object at" not in text and len(text) <= 120 + len(str(path))


def test_fit_result_repr_and_html():
    law = ss.Law(family="chinchilla", params={"E": 1.8, "A": 482.0, "B": 2085.0, "alpha": 0.35, "beta": 0.37})
    info = {"method": "lbfgs", "objective": "huber", "estimator": "huber", "objective_value": 0.00123,
            "n_points": 240, "excluded_highest_loss": 5}
    samples = np.array([[1.0, 480.0, 2000.0, 0.3, 0.3], [2.0, 482.0, 2100.0, 0.4, 0.4], [3.0, 484.0, 2200.0,
                                                                                       0.5, 0.5]])
    res = ss.FitResult(law=law, info=info, samples=samples)
    assert repr(res) == ("FitResult(chinchilla: E=1.8, A=482, B=2085, alpha=0.35, beta=0.37; huber objective "
                         "0.00123 (lbfgs), 235 runs (5 excluded), bootstrap 3)")
    html = res._repr_html_()
    # standard errors (ddof 1) of the samples: E 1, A 2, B 100, alpha 0.1, beta 0.1
    assert "<th>standard error</th>" in html
    for name, value, se in (("E", "1.8", "1"), ("A", "482", "2"), ("B", "2085", "100"), ("alpha", "0.35", "0.1")):
        assert f"<tr><td>{name}</td><td>{value}</td><td>{se}</td></tr>" in html
    plain = ss.FitResult(law=law, info={**info, "method": "vp", "estimator": "ls-vp", "excluded_highest_loss": 0})
    assert repr(plain).endswith("ls-vp objective 0.00123 (vp), 240 runs, no bootstrap)")
    assert "standard error" not in plain._repr_html_() and "<td>beta</td><td>0.37</td></tr>" in plain._repr_html_()


# ------------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize("written, canonical", [
    ("chinchilla", "hoffmann2022"), ("Chinchilla", "hoffmann2022"), ("HOFFMANN2022", "hoffmann2022"),
    ("epoch", "besiroglu2024"), ("Epoch", "besiroglu2024"), ("kaplan", "kaplan2020"),
    ("Kaplan2020-cmin", "kaplan2020-Cmin"), ("llama3 2024", "llama3_2024"), ("Llama3", "llama3_2024"),
    ("deepseek", "deepseek2024"), ("chinchilla-printed", "hoffmann2022-printed"),
])
def test_preset_names_and_aliases_any_case(written, canonical):
    law = ss.get_law(written)
    assert law.preset == canonical and law.name == canonical
    assert dict(law.params) == PRESETS[canonical].params


def test_aliases_table():
    assert ss.ALIASES["chinchilla"] == "hoffmann2022" and ss.ALIASES["epoch"] == "besiroglu2024"
    assert ss.ALIASES["kaplan"] == "kaplan2020"
    assert all(k == k.lower() and v in PRESETS and k not in PRESETS for k, v in ss.ALIASES.items())


def test_outputs_record_the_canonical_name(tmp_path):
    df = ss.compare([1e23], ["epoch", "Kaplan"])
    assert [str(x) for x in df.law] == ["besiroglu2024", "kaplan2020"]
    with pytest.raises(ss.ScalesweepError, match="law 'hoffmann2022' is given twice"):
        as_laws("chinchilla,hoffmann2022")
    f = tmp_path / "law.json"
    f.write_text('{"preset": "Chinchilla", "parameters": {"alpha": 0.35}}')
    law = load_law_file(f)
    assert law.preset == "hoffmann2022" and law.params["alpha"] == 0.35 and law.name == "hoffmann2022+alpha"


def test_family_names_stay_families_where_a_family_is_asked_for(tmp_path):
    f = tmp_path / "law.json"
    f.write_text(json.dumps({"family": "kaplan", "parameters": dict(PRESETS["kaplan2020"].params)}))
    law = load_law_file(f)
    assert law.family == "kaplan" and law.preset is None
    with pytest.raises(ss.ScalesweepError, match="unknown family to fit 'hoffmann2022'"):
        ss.fit([1e8] * 6, [1e9] * 6, [3.0] * 6, family="hoffmann2022")
    with pytest.raises(ss.ScalesweepError, match="unknown family 'chinchila'; did you mean 'chinchilla'"):
        f.write_text('{"family": "chinchila", "parameters": {}}')
        load_law_file(f)


@pytest.mark.parametrize("name, hint", [
    ("chinchila", "; did you mean 'chinchilla'?"),
    ("hofmann2022", "; did you mean 'hoffmann2022'?"),
    ("kaplan_step", "; did you mean 'kaplan2020-steps'?"),
    ("allocation_rule", "; 'allocation_rule' is a family, did you mean 'deepseek2024' or 'llama3_2024' or "
                        "'porian2024_tuned' or 'kaplan2020-table6'?"),
])
def test_unknown_names_suggest_the_closest(name, hint):
    with pytest.raises(ss.ScalesweepError) as exc:
        ss.get_law(name)
    assert str(exc.value).startswith(f"unknown law {name!r}{hint} (presets: hoffmann2022, ")
    assert "aliases: chinchilla" in str(exc.value) and "\n" not in str(exc.value)


def test_cli_reads_aliases_and_suggests(tmp_path):
    out = tmp_path / "f.parquet"
    run(["frontier", "--law", "Epoch", "--flops-range", "1e21:1e23:3", "-o", out])
    assert read_metadata(out)["law"]["preset"] == "besiroglu2024"
    assert_one_line_error(run(["frontier", "--flops-range", "1e21:1e23:3", "--law", "chinchila"], ok=False),
                          "unknown law 'chinchila'; did you mean 'chinchilla'?")
