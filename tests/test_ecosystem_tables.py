"""Outputs as pandas, polars and DuckDB read them: a value that is not applicable or infeasible is a null
(Arrow validity in Parquet and Arrow, an empty CSV cell, JSON null), never NaN; whole-number columns are
integers; column names hold no dots; every column carries its unit, description and null meaning as field
metadata; a partitioned directory reads as one table in every reader, equal to the single-file output.

Expected values come from tests/reference.py (scipy) and from the hardware datasheet numbers written here.
"""

import json
import re

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import scalesweep as ss
from scalesweep import dataset, questions, surfaces
from scalesweep import scenarios as sc
from scalesweep.errors import ScalesweepError
from scalesweep.lookup import Lookup, write_lookup
from scalesweep.output import write_table
from scalesweep.tables import COLUMNS, frame_to_arrow

from . import reference as ref

LAW = ss.get_law("hoffmann2022")
P = dict(LAW.params)
FORMATS = {"parquet": ".parquet", "arrow": ".arrow", "csv": ".csv", "json": ".json", "jsonl": ".jsonl"}
MFU = 0.4  # the default
A100, H100 = 312e12, 989.4e12  # dense bf16 peak FLOP/s, NVIDIA datasheets
MAX_PARAMS, MAX_TOKENS = 7e10, 1.5e12  # budgets above 6 * 7e10 * 1.5e12 = 6.3e23 cannot meet both
UNITS = {"flops": "FLOP", "params": "parameters", "tokens": "tokens", "loss": "nats/token", "gpu_hours": "GPU-hours",
         "wall_days": "days", "target_loss": "nats/token"}


# ------------------------------------------------------------------------------------------- readers


def read_pandas(path, fmt, **kw):
    if fmt == "parquet":
        return pd.read_parquet(path, **kw)
    if fmt == "arrow":
        return pd.read_feather(path, **kw)
    if fmt == "csv":
        return pd.read_csv(path, **kw)
    return pd.read_json(path, lines=fmt == "jsonl", precise_float=True, **kw)


def read_polars(path, fmt):
    return {"parquet": pl.read_parquet, "arrow": pl.read_ipc, "csv": pl.read_csv, "json": pl.read_json,
            "jsonl": pl.read_ndjson}[fmt](path)


def duck(path, fmt, query):
    """``query`` with ``t`` standing for the file (an Arrow file is handed to DuckDB as a table)."""
    con = duckdb.connect()
    if fmt == "arrow":
        con.register("t", feather.read_table(path))
        return con.execute(query).fetchall()
    reader = {"parquet": "read_parquet", "csv": "read_csv", "json": "read_json", "jsonl": "read_json"}[fmt]
    return con.execute(query.replace("from t", f"from {reader}('{path}')")).fetchall()


def check_file(path, fmt, expect: dict, ints=(), strings=None):
    """Every reader sees ``expect`` (column -> float array, NaN where a null is expected), the integer columns
    ``ints`` as integers, and ``strings`` (column -> list with None for null)."""
    strings = strings or {}
    df = read_pandas(path, fmt)
    nullable = read_pandas(path, fmt, dtype_backend="numpy_nullable")
    pdf = read_polars(path, fmt)
    for name, want in expect.items():
        want = np.asarray(want, dtype=np.float64)
        nulls = int(np.isnan(want).sum())
        got = df[name].to_numpy(dtype=np.float64, na_value=np.nan)
        np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True, err_msg=f"{fmt} {name}")
        assert pdf[name].null_count() == nulls, (fmt, name)
        assert not pdf[name].cast(pl.Float64).is_nan().any(), (fmt, name)  # nulls, not NaN
        np.testing.assert_array_equal(pdf[name].cast(pl.Float64).to_numpy(), got, err_msg=f"{fmt} {name}")
        [(count, avg)] = duck(path, fmt, f'select count("{name}"), avg("{name}") from t')
        assert count == len(want) - nulls, (fmt, name)
        if count:
            assert avg == pytest.approx(np.nanmean(got), rel=1e-12), (fmt, name)  # the nulls left out
            assert pdf[name].mean() == pytest.approx(np.nanmean(got), rel=1e-12), (fmt, name)
    for name in ints:
        assert pdf[name].dtype == pl.Int64, (fmt, name, pdf[name].dtype)
        assert pd.api.types.is_integer_dtype(nullable[name]), (fmt, name, nullable[name].dtype)
        [(kind,)] = duck(path, fmt, f'select distinct typeof("{name}") from t')
        assert kind == "BIGINT", (fmt, name)
    for name, want in strings.items():
        assert pdf[name].cast(pl.String).to_list() == want, (fmt, name)
        assert [None if pd.isna(v) else v for v in df[name]] == want, (fmt, name)
        [(count,)] = duck(path, fmt, f'select count("{name}") from t')
        assert count == sum(v is not None for v in want), (fmt, name)
    return df


def check_schema(path, fmt, nullable_columns):
    """Parquet and Arrow files: every field describes itself; no float column holds NaN; names are dot-free."""
    table = pq.read_table(path) if fmt == "parquet" else feather.read_table(path)
    for field in table.schema:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", field.name), field.name
        md = field.metadata or {}
        assert md.get(b"description"), field.name
        if field.name in UNITS:
            assert md[b"unit"].decode() == UNITS[field.name], field.name
        if field.name in nullable_columns:
            assert md.get(b"null"), field.name
        if pa.types.is_floating(field.type):
            assert not pc.any(pc.is_nan(table[field.name])).as_py(), field.name
    return table


def write_all(tmp_path, stem, table):
    paths = {}
    for fmt, suffix in FORMATS.items():
        paths[fmt] = tmp_path / f"{stem}{suffix}"
        write_table(paths[fmt], table)
    return paths


# ------------------------------------------------------------------------------------------- outputs


def test_frontier_infeasible_and_gpu_columns_are_null(tmp_path):
    flops = np.geomspace(1e20, 1e26, 7)
    res = questions.frontier([LAW], flops, constraints=ss.Constraints(max_params=MAX_PARAMS, max_tokens=MAX_TOKENS),
                             hardware=ss.Hardware(gpu="A100"))
    n, d, loss, feas = ref.frontier_scipy("chinchilla", P, flops, max_params=MAX_PARAMS, max_tokens=MAX_TOKENS)
    assert feas.tolist() == [True] * 4 + [False] * 3
    nan = np.where(feas, 1.0, np.nan)
    hours = flops / (A100 * MFU * 3600)  # of the budget, feasible or not
    expect = {"params": n * nan, "tokens": d * nan, "loss": loss * nan, "gpu_hours": hours}
    paths = write_all(tmp_path, "f", res.table(res.metadata("frontier", {}, None)))
    for fmt, path in paths.items():
        check_file(path, fmt, expect, strings={"infeasible_reason": [None] * 4 + ["max_params+max_tokens"] * 3})
        if fmt in ("parquet", "arrow"):
            check_schema(path, fmt, {"params", "tokens", "loss", "infeasible_reason"})
    assert ",,," in paths["csv"].read_text() and "nan" not in paths["csv"].read_text().lower()
    rows = json.loads(paths["json"].read_text())
    assert rows[-1]["params"] is None and rows[0]["infeasible_reason"] is None
    # the API's DataFrame keeps NaN for floats (pandas reads the file's nulls as NaN too)
    api = ss.frontier(LAW, flops, max_params=MAX_PARAMS, max_tokens=MAX_TOKENS)
    assert api.params.dtype == np.float64 and api.params.isna().sum() == 3


def test_target_loss_below_the_irreducible_loss_is_null(tmp_path):
    targets = np.array([2.2, 2.0, 1.9, 1.6])  # E = 1.6934: the last cannot be reached
    res = questions.target_loss([LAW], targets)
    n = np.array([ref.target_scipy("chinchilla", P, t)[0] if t > P["E"] else np.nan for t in targets])
    d = np.array([ref.tokens_for_loss("chinchilla", P, a, t) if t > P["E"] else np.nan for a, t in zip(n, targets)])
    expect = {"target_loss": targets, "params": n, "tokens": d, "flops": 6 * n * d,
              "loss": np.where(targets > P["E"], targets, np.nan)}
    for fmt, path in write_all(tmp_path, "t", res.table(res.metadata("target-loss", {}, None))).items():
        check_file(path, fmt, expect, strings={"infeasible_reason": [None] * 3 + ["irreducible_loss"]})
        if fmt in ("parquet", "arrow"):
            check_schema(path, fmt, {"params", "tokens", "loss", "flops", "infeasible_reason"})


SCENARIOS = """law,flops,gpu,gpus,law.alpha,max_params,max_tokens
hoffmann2022,1e22,,,,,
hoffmann2022,1e23,A100,256,,,
hoffmann2022,1e24,H100-SXM,,0.3,,
hoffmann2022,1e25," ",,,7e10,1.5e12
"""


def scenario_expectations():
    flops = np.array([1e22, 1e23, 1e24, 1e25])
    alpha = [P["alpha"], P["alpha"], 0.3, P["alpha"]]
    n = np.array([ref.closed_form_params("chinchilla", {**P, "alpha": a}, c) for a, c in zip(alpha, flops)])
    n[3] = np.nan  # 1e25 > 6 * 7e10 * 1.5e12: infeasible
    hours = np.array([np.nan, 1e23 / (A100 * MFU * 3600), 1e24 / (H100 * MFU * 3600), np.nan])
    return {"params": n, "tokens": flops / (6 * n), "gpu_hours": hours, "wall_days": [np.nan, hours[1] / (24 * 256),
            np.nan, np.nan], "gpus": [np.nan, 256, np.nan, np.nan], "law_alpha": [np.nan, np.nan, 0.3, np.nan],
            "max_params": [np.nan, np.nan, np.nan, MAX_PARAMS]}


def test_scenarios_null_gpu_integer_gpus_and_dot_free_overrides(tmp_path):
    spec = tmp_path / "s.csv"
    spec.write_text(SCENARIOS)
    expect = scenario_expectations()
    for fmt, suffix in FORMATS.items():
        path = tmp_path / f"out{suffix}"
        sc.run(spec, path)
        df = check_file(path, fmt, expect, ints=("gpus", "scenario_id"),
                        strings={"gpu": [None, "A100", "H100-SXM", None],
                                 "law": ["hoffmann2022", "hoffmann2022", "hoffmann2022+alpha", "hoffmann2022"]})
        assert "law.alpha" not in df.columns and "law_alpha" in df.columns
        if fmt in ("parquet", "arrow"):
            table = check_schema(path, fmt, {"gpu", "gpus", "law_alpha", "params", "gpu_hours", "wall_days"})
            assert table.schema.field("gpus").type == pa.int64()
            assert table.schema.field("law_alpha").metadata[b"null"] == b"not overridden: the preset's value"
            assert b"null" not in table.schema.field("mfu").metadata  # written as used: never null


def test_overrides_are_accepted_in_both_forms_and_not_twice(tmp_path):
    dotted, plain = tmp_path / "a.yaml", tmp_path / "b.toml"
    dotted.write_text('flops: 1e22\n"law.alpha": [0.3, 0.32]\n')
    plain.write_text("flops = 1e22\nlaw_alpha = [0.3, 0.32]\n")  # TOML needs no quotes
    sc.run(dotted, tmp_path / "a.parquet")
    sc.run(plain, tmp_path / "b.parquet")
    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_allclose(a.params, ref.closed_form_params("chinchilla", {**P, "alpha": 0.3}, 1e22) *
                               np.array([1.0, 0.0]) + ref.closed_form_params("chinchilla", {**P, "alpha": 0.32}, 1e22) *
                               np.array([0.0, 1.0]), rtol=1e-9)
    both = tmp_path / "c.csv"
    both.write_text("flops,law.alpha,law_alpha\n1e22,0.3,0.3\n")
    with pytest.raises(ScalesweepError, match="fields 'law.alpha' and 'law_alpha' override the same parameter"):
        sc.run(both, tmp_path / "c.parquet")
    assert not (tmp_path / "c.parquet").exists()


def test_lookup_tables_and_queries(tmp_path):
    build = tmp_path / "lk.parquet"
    write_lookup(build, LAW, 1e20, 1e26, 2, max_params=MAX_PARAMS, max_tokens=MAX_TOKENS)
    flops = np.geomspace(1e20, 1e26, 13)
    n, d, loss, feas = ref.frontier_scipy("chinchilla", P, flops, max_params=MAX_PARAMS, max_tokens=MAX_TOKENS)
    nan = np.where(feas, 1.0, np.nan)
    assert np.isnan(nan).sum() == 5  # 1e24 ... 1e26
    check_file(build, "parquet", {"params": n * nan, "tokens": d * nan, "loss": loss * nan})
    check_schema(build, "parquet", {"params", "tokens", "loss"})
    # queries at the table's nodes: the stored values, null where the segment [node, next node] (the last
    # node: the last segment) has an infeasible end
    seg = np.minimum(np.arange(flops.size), flops.size - 2)
    qnan = np.where(feas[seg] & feas[seg + 1], 1.0, np.nan)
    assert np.isnan(qnan).sum() == 6
    query = Lookup(build).query_table(flops)
    for fmt, path in write_all(tmp_path, "q", query).items():
        check_file(path, fmt, {"params": n * qnan, "tokens": d * qnan, "tokens_per_param": d / n * qnan})
        if fmt in ("parquet", "arrow"):
            check_schema(path, fmt, {"params", "tokens", "tokens_per_param"})


def test_surface_values_and_units(tmp_path):
    n, d = np.geomspace(1e8, 1e10, 5), np.geomspace(1e9, 1e12, 4)
    nn, dd = np.meshgrid(n, d, indexing="ij")
    expect = {"params": nn.ravel(), "tokens": dd.ravel(), "flops": 6 * nn.ravel() * dd.ravel(),
              "loss": ref.loss("chinchilla", P, nn, dd).ravel()}
    for fmt, suffix in FORMATS.items():
        path = tmp_path / f"s{suffix}"
        ss.write_surface(path, LAW, n, tokens=d)
        check_file(path, fmt, expect)
        if fmt in ("parquet", "arrow"):
            check_schema(path, fmt, set())
    ss.write_surface(tmp_path / "s32.parquet", LAW, n, tokens=d, dtype=np.float32)
    field = pq.read_schema(tmp_path / "s32.parquet").field("loss")
    assert field.type == pa.float32() and field.metadata[b"unit"] == b"nats/token"


def test_frame_tables_have_nulls_types_and_field_metadata():
    cmp = frame_to_arrow(ss.compare([1e22], ["hoffmann2022", "llama3_2024"]))
    assert cmp.column("loss").null_count == 1  # an allocation rule has no loss
    assert cmp.schema.field("law").type == pa.dictionary(pa.int32(), pa.string())
    res = frame_to_arrow(ss.resolution(LAW, np.geomspace(1e20, 1e22, 3), [2, 4], repeat=1))
    assert res.schema.field("points_per_decade").type == pa.int64()
    assert res.schema.field("seconds").metadata[b"unit"] == b"s"
    for table in (cmp, res):
        for field in table.schema:
            assert field.metadata[b"description"] == COLUMNS[field.name].description.encode()


# ------------------------------------------------------------------------------- partitioned datasets


def jobs(tmp_path):
    """(name, job, single-file writer, sort key) for each kind a partitioned run writes."""
    spec = tmp_path / "spec.csv"
    spec.write_text(SCENARIOS + "".join(f"hoffmann2022,{c:g},A100,{g},,,\n" for c in (3e22, 3e23) for g in (8, 64)))
    n, d, flops = np.geomspace(1e8, 1e10, 7), np.geomspace(1e9, 1e12, 6), np.geomspace(1e20, 1e26, 25)
    cons = ss.Constraints(max_params=MAX_PARAMS, max_tokens=MAX_TOKENS)

    def frontier_file(path):
        res = questions.frontier([LAW], flops, constraints=cons)
        write_table(path, res.table(res.metadata("frontier", {"unit": "flops", "solver": "auto"}, None)))

    return [("surface", surfaces.job(LAW, n, d, partition_rows=12), lambda p: ss.write_surface(p, LAW, n, tokens=d),
             "params, tokens"),
            ("frontier", questions.frontier_job(LAW, flops, constraints=cons, partition_rows=10), frontier_file,
             "flops"),
            ("scenarios", sc.job(spec, partition_rows=3), lambda p: sc.run(spec, p), "scenario_id")]


def plain(table):
    """``table`` with dictionary columns decoded, in one chunk (parts have dictionaries of their own)."""
    cols = [pc.cast(c, c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    schema = pa.schema([f.with_type(c.type) for f, c in zip(table.schema, cols, strict=True)],
                       metadata=table.schema.metadata)
    return pa.Table.from_arrays(cols, schema=schema).combine_chunks()


def test_partitioned_directories_read_as_one_table_in_every_reader(tmp_path):
    for name, job, single, key in jobs(tmp_path):
        out, path = tmp_path / name, tmp_path / f"{name}.parquet"
        dataset.run(job, out)
        single(path)
        assert sorted(p.name for p in out.iterdir()) == [dataset.part_name(i) for i in range(len(job.parts))]
        assert dataset.manifest_path(out) == tmp_path / f".{name}.manifest.json"
        assert json.loads(dataset.manifest_path(out).read_text())["complete"] is True
        schemas = [pq.read_schema(p) for p in sorted(out.iterdir())]
        assert len(schemas) > 2 and all(s.equals(schemas[0], check_metadata=True) for s in schemas)
        assert schemas[0].equals(pq.read_schema(path), check_metadata=True)  # field metadata included
        want = pq.read_table(path)
        assert plain(pads.dataset(out, format="parquet").to_table()).equals(plain(want), check_metadata=True)
        pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(path), check_categorical=False)
        pl_want = pl.read_parquet(path)
        for got in (pl.read_parquet(out), pl.scan_parquet(out).collect(), pl.read_parquet(f"{out}/*.parquet"),
                    pl.scan_parquet(f"{out}/*.parquet").collect()):
            assert got.equals(pl_want), name
        duck_want = duckdb.sql(f"select * from read_parquet('{path}') order by {key}").fetchall()
        for pattern in ("*.parquet", "**"):
            got = duckdb.sql(f"select * from read_parquet('{out}/{pattern}') order by {key}").fetchall()
            assert len(got) == want.num_rows and got == duck_want, (name, pattern)


def test_a_stale_manifest_beside_a_new_directory_is_replaced(tmp_path):
    name, job, _, _ = jobs(tmp_path)[0]
    other = surfaces.job(ss.get_law("besiroglu2024"), np.geomspace(1e8, 1e10, 7), np.geomspace(1e9, 1e12, 6),
                         partition_rows=12)
    out = tmp_path / "ds"
    dataset.run(job, out)
    with pytest.raises(ScalesweepError, match="different spec"):  # parts of another spec are never mixed in
        dataset.run(other, out)
    for p in out.iterdir():  # the directory removed by hand, its manifest left beside it
        p.unlink()
    out.rmdir()
    assert dataset.run(other, out)["computed"] == len(other.parts)
    assert json.loads(dataset.manifest_path(out).read_text())["spec_hash"] == other.spec_hash
