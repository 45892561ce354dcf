"""--dtype float32 on every command that writes a table: each float column is the float64 run's column rounded
to the nearest float32 (nulls where they were), the other columns and what the user gave (a surface's axes,
target losses) are unchanged, the metadata says so, and a value float32 cannot hold is refused."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .helpers import assert_one_line_error, run

COMMANDS = {
    "frontier": ["frontier", "--law", "hoffmann2022,kaplan2020", "--flops-range", "1e18:1e26:9", "--max-params", "70B", "--max-tokens", "1e11",
                 "--gpu", "H100", "--gpus", "512", "--usd-per-gpu-hour", "2"],
    "frontier-streamed": ["frontier", "--flops-range", "1e20:1e24:300001"],
    "frontier-bands": None,  # built in the test (needs a law file with bootstrap samples)
    "target-loss": ["target-loss", "--loss", "1.9,2.0,2.5,1.0", "--law", "hoffmann2022,besiroglu2024"],
    "compare": ["compare", "--flops", "1e21,1e24"],
    "loss": ["loss", "--params", "7B,70B", "--tokens", "2T"],
}


def _pair(tmp_path, name, args):
    out64, out32 = tmp_path / f"{name}64.parquet", tmp_path / f"{name}32.parquet"
    run([*args, "-o", out64])
    run([*args, "--dtype", "float32", "-o", out32])
    return pq.read_table(out64), pq.read_table(out32)


def _check_rounded(a: pa.Table, b: pa.Table, kept=()):
    assert a.column_names == b.column_names
    narrowed = [f.name for f in b.schema if f.type == pa.float32()]
    assert narrowed, "no column narrowed"
    for name in a.column_names:
        fa, fb = a.schema.field(name), b.schema.field(name)
        if name in narrowed:
            assert fa.type == pa.float64() and name not in kept
            assert fb.metadata == fa.metadata  # unit, description, null meaning
            assert b.column(name).null_count == a.column(name).null_count
            x = a.column(name).to_numpy(zero_copy_only=False)
            np.testing.assert_array_equal(b.column(name).to_numpy(zero_copy_only=False), x.astype(np.float32))
        else:
            assert b.column(name).equals(a.column(name)), name
    md64 = json.loads(a.schema.metadata[b"scalesweep"])
    md32 = json.loads(b.schema.metadata[b"scalesweep"])
    assert md32.pop("dtype") == "float32" and "dtype" not in md64
    md32.pop("command_line", None), md64.pop("command_line", None)
    assert md32 == md64
    return narrowed


@pytest.mark.parametrize("name", [k for k, v in COMMANDS.items() if v is not None])
def test_float32_is_the_float64_table_rounded(tmp_path, name):
    a, b = _pair(tmp_path, name, COMMANDS[name])
    narrowed = _check_rounded(a, b, kept=("target_loss",))
    assert "loss" in narrowed
    if name == "target-loss":
        assert b.schema.field("target_loss").type == pa.float64()
    if name == "frontier":
        assert {"params", "tokens", "gpu_hours", "usd"} <= set(narrowed)
        assert b.column("feasible").to_pylist().count(False) > 0  # infeasible rows: nulls kept
    if name == "frontier-streamed":
        assert b.num_rows == 300001


def test_float32_frontier_with_bands(tmp_path):
    runs = tmp_path / "runs.csv"
    rng = np.random.default_rng(3)
    n = np.geomspace(1e7, 1e9, 6).repeat(5)
    d = np.tile(np.geomspace(1e9, 1e11, 5), 6)
    loss = 1.8 + 400 / n**0.34 + 410 / d**0.28
    runs.write_text("params,tokens,loss\n" + "".join(f"{x},{y},{z * np.exp(rng.normal(0, 0.003))}\n"
                                                     for x, y, z in zip(n, d, loss, strict=True)))
    law = tmp_path / "law.json"
    run(["fit", runs, "-o", law, "--method", "vp", "--bootstrap", "8"])
    a, b = _pair(tmp_path, "bands", ["frontier", "--law-file", law, "--flops-range", "1e19:1e23:5", "--bands",
                                     "5,50,95"])
    assert {"params_p5", "params_p95"} <= set(_check_rounded(a, b))


def test_float32_lookup_query_and_csv(tmp_path):
    table = tmp_path / "t.parquet"
    run(["lookup", "build", "--flops-range", "1e18:1e24", "-o", table])
    a, b = _pair(tmp_path, "q", ["lookup", "query", table, "--flops", "3e20,1e22"])
    _check_rounded(a, b)
    text = run(["frontier", "--flops-range", "1e21:1e23:3", "--dtype", "float32", "--format", "csv"]).stdout
    rows = [line.split(",") for line in text.splitlines()]
    params = [float(r[rows[0].index("params")]) for r in rows[1:]]
    assert all(np.float32(p) == p for p in params)  # the float32 values, printed as such


def test_a_value_beyond_float32_is_refused_and_nothing_is_written(tmp_path):
    out = tmp_path / "f.parquet"
    res = run(["frontier", "--flops-range", "1e20:1e40:3", "--dtype", "float32", "-o", out], ok=False)
    assert_one_line_error(res, "column 'flops': 1e+40 does not fit in float32 (largest 3.4e+38); write it with "
                               "--dtype float64")
    assert list(tmp_path.iterdir()) == []


def test_partitioned_outputs_take_float32_where_their_parts_can(tmp_path):
    res = run(["frontier", "--flops-range", "1e20:1e24:5", "--dtype", "float32", "--partition-rows", "2", "-o",
               tmp_path / "f"], ok=False)
    assert_one_line_error(res, "--dtype float32 applies to single files, and to partitioned surfaces and scenarios, "
                               "not to a partitioned frontier")
    run(["surface", "--params-range", "1e8:1e10:4", "--tokens-range", "1e9:1e11:4", "--dtype", "float32",
         "--partition-rows", "8", "-o", tmp_path / "s"])
    parts = sorted((tmp_path / "s").glob("*.parquet"))
    assert parts and all(pq.read_schema(p).field("loss").type == pa.float32() for p in parts)
    assert pq.read_schema(parts[0]).field("params").type == pa.float64()


def test_dtype_is_checked():
    res = run(["frontier", "--flops-range", "1e20:1e24:5", "--dtype", "float16"], ok=False)
    assert res.exit_code == 2 and "float16" in res.stderr
