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


# What each command was given, which --dtype float32 leaves as float64.
KEPT = {"frontier": ("flops",), "frontier-streamed": ("flops",), "target-loss": ("target_loss",),
        "compare": ("flops",), "loss": ("params", "tokens")}


def _pair(tmp_path, name, args):
    out64, out32 = tmp_path / f"{name}64.parquet", tmp_path / f"{name}32.parquet"
    run([*args, "-o", out64])
    run([*args, "--dtype", "float32", "-o", out32])
    return pq.read_table(out64), pq.read_table(out32)


def _check_rounded(a: pa.Table, b: pa.Table, kept=()):
    assert a.column_names == b.column_names
    assert all(b.schema.field(name).type == pa.float64() for name in kept)
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
    narrowed = _check_rounded(a, b, kept=KEPT[name])
    assert "loss" in narrowed
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
    assert {"params_p5", "params_p95"} <= set(_check_rounded(a, b, kept=("flops",)))


def test_float32_lookup_query_and_csv(tmp_path):
    table = tmp_path / "t.parquet"
    run(["lookup", "build", "--flops-range", "1e18:1e24", "-o", table])
    a, b = _pair(tmp_path, "q", ["lookup", "query", table, "--flops", "3e20,1e22"])
    _check_rounded(a, b, kept=("flops",))
    text = run(["frontier", "--flops-range", "1e21:1e23:3", "--dtype", "float32", "--format", "csv"]).stdout
    rows = [line.split(",") for line in text.splitlines()]
    params = [float(r[rows[0].index("params")]) for r in rows[1:]]
    assert all(np.float32(p) == p for p in params)  # the float32 values, printed as such


def test_what_float32_cannot_hold_is_refused_and_nothing_is_written(tmp_path):
    """Budgets whose tokens float32 cannot hold are refused before a row is written (a stream to stdout cannot
    be taken back); a computed value beyond float32 (a dollar cost) or one it would write as zero (a loss gap)
    is refused with one line naming it, and no file is left."""
    out = tmp_path / "f.parquet"
    res = run(["frontier", "--flops-range", "1e20:1e40:3000000", "--dtype", "float32"], ok=False)
    assert_one_line_error(res, "--dtype float32: a budget of 1e+40 FLOPs may give parameters or tokens beyond "
                               "float32's largest, 3.40282347e+38; give --dtype float64")
    assert res.stdout == ""
    res = run(["frontier", "--flops-range", "1e30", "--gpu", "H100", "--usd-per-gpu-hour", "1e30", "--dtype",
               "float32", "-o", out], ok=False)
    assert_one_line_error(res, "column 'usd': 7.0188")  # 1e30 / (989.4e12 * 0.4 * 3600) GPU-hours at $1e30
    assert "is beyond float32's largest, 3.40282347e+38: write it with --dtype float64" in res.stderr
    assert list(tmp_path.iterdir()) == []
    run(["frontier", "--flops-range", "1e20:1e38:3", "--dtype", "float32", "-o", out])  # tokens <= C/6 fit
    t = pq.read_table(out)
    assert t.schema.field("flops").type == pa.float64() and t.column("flops").to_pylist()[-1] == 1e38


def test_narrow_refuses_what_float32_would_write_as_zero_or_infinity():
    from scalesweep.errors import ScalesweepError
    from scalesweep.tables import arrow_float32, narrow

    ok = pa.table({"a": [1e-30, 0.0, None, float("inf"), 3e38], "b": [1e-50, 2.0, 3.0, 4.0, 5.0]})
    out = narrow(ok, keep=("b",))
    assert out.schema.field("a").type == pa.float32() and out.schema.field("b").type == pa.float64()
    assert out.column("a").to_pylist()[1:4] == [0.0, None, float("inf")]
    for table, needle in ((pa.table({"x": [1.0, 1e-50]}), "column 'x': 1e-50 is below float32's smallest, "
                                                          "1.40129846e-45: write it with --dtype float64"),
                          (pa.table({"x": [-1e39]}), "column 'x': -1e+39 is beyond float32's largest")):
        with pytest.raises(ScalesweepError, match=needle.replace("+", r"\+")):
            narrow(table)
        with pytest.raises(ScalesweepError, match=needle.replace("+", r"\+")):
            arrow_float32(table.column("x").to_numpy(), "x")


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


def test_fit_approach_tables_take_float32(tmp_path):
    from pathlib import Path

    runs = Path(__file__).resolve().parents[1] / "data" / "example_isoflop_runs.csv"
    for dtype in ("float64", "float32"):
        run(["fit-isoflop", runs, "-o", tmp_path / f"{dtype}.json", "--table", tmp_path / f"{dtype}.parquet",
             "--bootstrap", "20", "--dtype", dtype])
    a, b = pq.read_table(tmp_path / "float64.parquet"), pq.read_table(tmp_path / "float32.parquet")
    assert "params_opt" in _check_rounded(a, b)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_streamed_frontier_imports_no_pandas(tmp_path, dtype):
    """The CLI path builds Arrow arrays from numpy buffers in either dtype: pandas (0.2-0.3 s of start-up) is
    never imported."""
    import subprocess
    import sys

    out = tmp_path / "f.parquet"
    code = ("import sys\nfrom click.testing import CliRunner\nfrom scalesweep.cli import cli\n"
            "r = CliRunner().invoke(cli, ['frontier', '--flops-range', '1e18:1e26:300000', '--gpu', 'H100', "
            f"'--dtype', '{dtype}', '-o', r'{out}'])\n"
            "assert r.exit_code == 0, r.output\nprint('pandas' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"
    assert pq.read_schema(out).field("params").type == (pa.float32() if dtype == "float32" else pa.float64())
