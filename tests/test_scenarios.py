"""Scenario sweeps: expansion, equality with the single-question API, validation, streaming."""

import math
import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import scalesweep as ss
from scalesweep import scenarios as sc
from scalesweep.cli import cli
from scalesweep.errors import ScalesweepError
from scalesweep.tables import read_metadata

from .helpers import assert_one_line_error


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_cartesian_expansion_order_and_count(tmp_path):
    spec = write(tmp_path, "s.yaml", "law: [hoffmann2022, kaplan2020]\nflops: [1e20, 1e21, 1e22]\n"
                 "max_tokens_per_param: [10, 20, 40, 80]\n")
    out = tmp_path / "o.parquet"
    summary = sc.run(spec, out)
    df = pd.read_parquet(out)
    assert summary["rows"] == len(df) == 2 * 3 * 4
    assert df.scenario_id.tolist() == list(range(24))
    # the last field varies fastest, like itertools.product
    assert df.max_tokens_per_param[:4].tolist() == [10, 20, 40, 80]
    assert df.budget_flops[:8].tolist() == [1e20] * 4 + [1e21] * 4
    assert df.law.astype(str)[:12].eq("hoffmann2022").all() and df.law.astype(str)[12:].eq("kaplan2020").all()


def test_rows_equal_the_single_question_api(tmp_path):
    """Heterogeneous rows in one pass give exactly what per-law frontier calls give."""
    spec = write(tmp_path, "s.toml", 'law = ["hoffmann2022", "besiroglu2024", "kaplan2020"]\n'
                 'gpu = "H100-SXM"\ngpus = [8, 512]\ndays = [1, 30]\nmfu = [0.3, 0.5]\nunique_tokens = [1e11, 1e13]\n'
                 'usd_per_gpu_hour = 2.5\n')
    out = tmp_path / "o.parquet"
    sc.run(spec, out)
    df = pd.read_parquet(out)
    assert len(df) == 3 * 2 * 2 * 2 * 2
    for _, row in df.iterrows():
        hours = row.gpus * row.days * 24
        ref = ss.frontier(str(row.law), [hours], unit="gpu_hours", gpu="H100-SXM", gpus=int(row.gpus), mfu=row.mfu,
                          unique_tokens=row.unique_tokens, usd_per_gpu_hour=2.5)
        for col in ("flops", "params", "tokens", "loss", "gpu_hours", "wall_days", "usd", "epochs",
                    "max_params_memory"):
            assert row[col] == pytest.approx(ref[col][0], rel=1e-14), col
        assert str(row.active_constraint) == str(ref.active_constraint[0])
        assert row.wall_days == pytest.approx(row.days, rel=1e-14)


def test_table_mixing_laws_budgets_and_targets(tmp_path):
    spec = write(tmp_path, "t.csv",
                 "law,flops,pf_days,gpu_hours,usd,gpu,usd_per_gpu_hour,target_loss,inference_tokens,law.alpha,max_params\n"
                 "hoffmann2022,1e23,,,,,,,,,\n"
                 "besiroglu2024,,100,,,,,,,0.36,\n"
                 "kaplan2020,,,5e4,,A100,,,,,1e9\n"
                 ",,,,1e6,H200,3.0,,,,\n"
                 "hoffmann2022,,,,,,,2.1,1e13,,\n")
    out = tmp_path / "o.parquet"
    sc.run(spec, out)
    df = pd.read_parquet(out)
    expect = [
        ss.frontier("hoffmann2022", [1e23]),
        ss.frontier(ss.get_law("besiroglu2024", alpha=0.36), [100], unit="pf_days"),
        ss.frontier("kaplan2020", [5e4], unit="gpu_hours", gpu="A100", max_params=1e9),
        ss.frontier("hoffmann2022", [1e6], unit="usd", gpu="H200", usd_per_gpu_hour=3.0),
        ss.target_loss("hoffmann2022", [2.1], inference_tokens=1e13),
    ]
    for i, e in enumerate(expect):
        for col in ("flops", "params", "tokens", "loss"):
            assert df[col][i] == pytest.approx(e[col][0], rel=1e-14), (i, col)
        assert str(df.active_constraint[i]) == str(e.active_constraint[0])
    assert str(df.law[1]) == "besiroglu2024+alpha" and str(df.law[3]) == "hoffmann2022"  # empty cell: default
    assert df.active_constraint[2] == "max_params"
    assert np.isnan(df.budget_flops[4]) and df.inference_flops[4] > 0
    assert df.budget_pf_days[1] == 100 and df.budget_usd[3] == 1e6


def test_memory_time_and_data_limits_are_named(tmp_path):
    spec = write(tmp_path, "s.yaml", "gpu: A100\ngpus: 8\npf_days: [1, 100000]\nmax_days: 5\nmfu: 0.5\n")
    out = tmp_path / "o.parquet"
    sc.run(spec, out)
    df = pd.read_parquet(out)
    # 8 A100 x 80 GB / 16 B = 4e10 params; 5 days of 8 A100 at 50%: 8*312e12*0.5*5*86400 = 5.39136e20 FLOPs
    assert df.max_params_memory.tolist() == [4e10, 4e10]
    assert df.budget_limited_by.astype(str).tolist() == ["budget", "max_days"]
    assert df.flops[1] == pytest.approx(5.39136e20, rel=1e-14)
    assert df.wall_days[1] == pytest.approx(5.0, rel=1e-14)
    df2 = ss.frontier("hoffmann2022", [1e25], gpu="A100", gpus=8)
    assert df2.active_constraint[0] == "memory" and df2.params[0] == pytest.approx(4e10, rel=1e-15)
    df3 = ss.frontier("hoffmann2022", [1e24], unique_tokens=1e11)
    assert df3.active_constraint[0] == "unique_tokens" and df3.tokens[0] == 1e11 and df3.epochs[0] == 1.0


def test_infeasible_rows_are_flagged(tmp_path):
    spec = write(tmp_path, "s.yaml", "flops: 1e22\nmin_params: [1e9, 1e11]\nmax_params: [5e9, 1e12]\n")
    out = tmp_path / "o.parquet"
    summary = sc.run(spec, out)
    df = pd.read_parquet(out)
    # rows: (1e9,5e9) ok, (1e9,1e12) ok, (1e11,5e9) min > max, (1e11,1e12) ok
    assert df.feasible.tolist() == [True, True, False, True]
    assert summary["feasible"] == 3 and np.isnan(df.params[2])


def test_identical_for_any_thread_count_and_chunk_size(tmp_path):
    spec = write(tmp_path, "s.yaml", "law: [hoffmann2022, kaplan2020]\nflops: 1e18:1e26:101\n"
                 "max_tokens_per_param: [5, 50, 500]\n")
    tables = []
    for threads, chunk in ((1, 1 << 19), (2, 37)):
        ss.set_threads(threads)
        sc.run(spec, tmp_path / f"{threads}.parquet", chunk_rows=chunk)
        tables.append(pd.read_parquet(tmp_path / f"{threads}.parquet"))
    ss.set_threads(None)
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)


def test_memory_is_bounded_by_the_chunk(tmp_path):
    import tracemalloc

    spec = sc.SweepSpec({"law": ["hoffmann2022", "kaplan2020"], "gpu": "H100-SXM", "gpus": list(range(1, 201)),
                         "days": [1, 2, 4, 8, 16], "mfu": [0.3, 0.4, 0.5]})  # 6,000 scenarios
    sc.run(spec, tmp_path / "warm.parquet", chunk_rows=256)
    tracemalloc.start()
    sc.run(spec, tmp_path / "s.parquet", chunk_rows=256)
    _, peak_small = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    full_bytes = spec.rows * 30 * 8  # every column of the whole sweep at once
    assert peak_small < full_bytes / 4, (peak_small, full_bytes)
    assert pq.ParquetFile(tmp_path / "s.parquet").metadata.num_rows == spec.rows
    assert pq.ParquetFile(tmp_path / "s.parquet").metadata.num_row_groups == math.ceil(spec.rows / 256)


def test_metadata_describes_the_spec(tmp_path):
    spec = write(tmp_path, "s.yaml", "law: kaplan2020\npf_days: [1, 10]\n")
    sc.run(spec, tmp_path / "o.parquet", command_line="scalesweep scenarios s.yaml")
    meta = read_metadata(tmp_path / "o.parquet")
    assert meta["command"] == "scenarios" and meta["spec"]["fields"]["pf_days"] == [1.0, 10.0]
    assert "Kaplan" in meta["laws"]["kaplan2020"] and meta["defaults"]["mfu"] == 0.4


BAD_SPECS = [
    ("s.yaml", "mfu: 0.4\n", "no budget"),
    ("s.yaml", "flops: 1e21\npf_days: 3\n", "more than one budget"),
    ("s.yaml", "flops: 1e21\ngpus: abc\n", "field 'gpus', item 1: expected a number, got 'abc'"),
    ("s.yaml", "flops: 1e21\ngpus: [8, -4]\n", "field 'gpus', item 2: must be a whole number >= 1"),
    ("s.yaml", "flops: 1e21\ngpus: 2.5\n", "whole number"),
    ("s.yaml", "flops: 1e21\nmfu: 1.5\n", "field 'mfu', item 1: must be a number in (0, 1]"),
    ("s.yaml", "flops: [1e21, .nan]\n", "field 'flops', item 2"),
    ("s.yaml", "flops: 1e21\nlaw: [hoffmann2022, chinchillaa]\n", "unknown law 'chinchillaa'"),
    ("s.yaml", "flops: 1e21\nmfuu: 0.4\n", "unknown field 'mfuu'"),
    ("s.yaml", "flops: []\n", "empty list"),
    ("s.yaml", "flops: [1e21\n", "cannot parse spec"),
    ("s.yaml", "- 1\n- 2\n", "a sweep spec is a mapping"),
    ("s.yaml", "gpu_hours: 100\n", "a budget in gpu_hours needs gpu or peak_tflops"),
    ("s.yaml", "gpu: B300\ngpu_hours: 100\n", "unknown GPU 'B300'"),
    ("s.yaml", "usd: 100\ngpu: A100\n", "usd_per_gpu_hour"),
    ("s.yaml", "days: 3\ngpu: A100\n", "needs gpus"),
    ("s.yaml", "flops: 1e21\nmax_days: 3\n", "max_days needs gpus"),
    ("s.yaml", "flops: 1e21\nlaw: kaplan2020\nlaw.alpha: 0.3\n", "law.alpha is not a parameter of kaplan2020"),
    ("s.yaml", "flops: 1e21\nlaw.alpha: -0.3\n", "parameter 'alpha' must be > 0"),
    ("s.yaml", "flops: 1e21:1e19:3\n", "LO (1e+21) is greater than HI"),
    ("s.toml", "flops = [1e21,\n", "cannot parse spec"),
    ("s.toml", 'law = "hoffmann2022"\nlaw.alpha = 0.3\nflops = 1e21\n', 'quote dotted field names'),
    ("s.toml", 'law.alpha = 0.3\nflops = 1e21\n', "'law' must be a preset name"),
    ("s.json", "{}", "unknown file type"),
    ("t.csv", "flops,mfu\n1e21,0.4\n1e22,2\n", "row 2, field 'mfu': must be a number in (0, 1], got 2"),
    ("t.csv", "flops,gpus\n1e21,8\n1e22,x\n", "row 2, field 'gpus': expected a number, got 'x'"),
    ("t.csv", "flops,gpus\n1e21,-8\n", "row 1, field 'gpus': must be a whole number >= 1"),
    ("t.csv", "law,flops\nhoffmann2022,1e21\nnope,1e22\n", "row 2, field 'law': unknown law 'nope'"),
    ("t.csv", "flops,pf_days\n1e21,\n1e22,4\n", "row 2: more than one budget"),
    ("t.csv", "flops,gpu_hours\n1e21,\n,4\n", "row 2: a budget in gpu_hours needs gpu or peak_tflops"),
    ("t.csv", "flops,colour\n1e21,red\n", "unknown field 'colour'"),
    ("t.csv", "flops\n", "has no rows"),
    ("t.csv", "", "cannot read scenario table"),
    ("t.csv", "law,flops,law.alpha\nkaplan2020,1e21,0.3\n", "row 1: law.alpha is not a parameter of kaplan2020"),
]


@pytest.mark.parametrize("name, text, needle", BAD_SPECS)
def test_bad_specs_give_one_line_and_no_file(tmp_path, name, text, needle):
    spec = write(tmp_path, name, text)
    out = tmp_path / "o.parquet"
    res = CliRunner().invoke(cli, ["scenarios", str(spec), "-o", str(out)], catch_exceptions=False)
    assert_one_line_error(res, needle, code=1)
    assert not out.exists()
    assert os.listdir(tmp_path) == [name]  # no temporary file left behind either


def test_bad_row_late_in_a_table_keeps_the_old_output(tmp_path):
    rows = "\n".join(f"{1e18 * (i + 1):g}" for i in range(999))
    spec = write(tmp_path, "t.csv", f"flops\n{rows}\n-1\n")
    out = tmp_path / "o.parquet"
    out.write_bytes(b"old")
    res = CliRunner().invoke(cli, ["scenarios", str(spec), "-o", str(out)], catch_exceptions=False)
    assert_one_line_error(res, "row 1000, field 'flops'", code=1)
    assert out.read_bytes() == b"old"
    with pytest.raises(ScalesweepError, match="row 1000"):
        sc.run(spec, out, chunk_rows=100)  # the bad row sits in a later chunk: still nothing written
    assert out.read_bytes() == b"old"


def test_parquet_table_spec(tmp_path):
    pd.DataFrame({"law": ["hoffmann2022", "kaplan2020"], "pf_days": [1.0, 10.0]}).to_parquet(tmp_path / "t.parquet")
    res = CliRunner().invoke(cli, ["scenarios", str(tmp_path / "t.parquet"), "-o", str(tmp_path / "o.parquet")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "wrote 2 scenarios" in res.output
    df = pd.read_parquet(tmp_path / "o.parquet")
    assert df.flops.tolist() == [8.64e19, 8.64e20]


def test_cli_unwritable_output(tmp_path):
    spec = write(tmp_path, "s.yaml", "flops: 1e21\n")
    res = CliRunner().invoke(cli, ["scenarios", str(spec), "-o", str(tmp_path / "nope" / "o.parquet")])
    assert_one_line_error(res, "does not exist", code=1)


def test_frontier_cli_in_real_units(tmp_path):
    out = tmp_path / "f.parquet"
    res = CliRunner().invoke(cli, ["frontier", "--flops-range", "1e4:1e6:3", "--unit", "gpu_hours", "--gpu", "H100-SXM",
                                   "--gpus", "256", "--usd-per-gpu-hour", "2", "-o", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(out)
    assert df.gpu_hours.tolist() == pytest.approx([1e4, 1e5, 1e6], rel=1e-14)
    assert df.usd.tolist() == pytest.approx([2e4, 2e5, 2e6], rel=1e-14)
    assert df.wall_days.tolist() == pytest.approx([1e4 / 256 / 24, 1e5 / 256 / 24, 1e6 / 256 / 24], rel=1e-14)
    assert df.flops[0] == pytest.approx(1e4 * 989.4e12 * 0.4 * 3600, rel=1e-14)
    assert read_metadata(out)["hardware"]["gpu"] == "H100-SXM"
    for args, needle in ((["--unit", "usd", "--gpu", "A100"], "--unit usd needs a GPU (--gpu or --peak-tflops) and --usd-per-gpu-hour"),
                         (["--unit", "gpu_hours"], "--unit gpu_hours needs --gpu or --peak-tflops"),
                         (["--gpu", "A100", "--mfu", "1.2"], "--mfu must be a number in (0, 1]"),
                         (["--gpu", "A100", "--gpus", "-3"], "--gpus must be a whole number >= 1"),
                         (["--max-days", "3"], "--max-days needs --gpus and a GPU (--gpu or --peak-tflops)")):
        res = CliRunner().invoke(cli, ["frontier", "--flops-range", "1e20", *args])
        assert_one_line_error(res, needle, code=1)


def test_target_loss_cli(tmp_path):
    res = CliRunner().invoke(cli, ["target-loss", "--loss", "2.0,1.5", "--inference-tokens", "1e13"],
                             catch_exceptions=False)
    assert res.exit_code == 0
    assert "warning: 1 of 2 targets are infeasible (feasible=false): 1 irreducible_loss" in res.stderr
    out = tmp_path / "t.parquet"
    res = CliRunner().invoke(cli, ["target-loss", "--loss", "2.0", "--max-params", "7e9", "-o", str(out)],
                             catch_exceptions=False)
    assert res.exit_code == 0
    df = pd.read_parquet(out)
    assert df.params[0] == 7e9 and df.active_constraint[0] == "max_params"
    assert read_metadata(out)["command"] == "target-loss"
    for args, needle in ((["--loss", "two"], "'two' is not a number"), (["--loss", "nan"], "values must be finite and > 0"),
                         (["--loss", "2", "--inference-tokens", "-1"], "--inference-tokens must be")):
        assert_one_line_error(CliRunner().invoke(cli, ["target-loss", *args]), needle, code=1)


def test_sweep_columns_are_the_mixed_radix_digits_of_the_row_index():
    """Each field's column for rows start..stop-1 is values[(i // stride) % count], whatever the chunk bounds."""
    rng = np.random.default_rng(3)
    for _ in range(2000):
        count = int(rng.integers(1, 12))
        stride = int(rng.integers(1, 50)) if rng.random() < 0.7 else int(rng.integers(1, 10**6))
        start, m = int(rng.integers(0, 10**7)), int(rng.integers(1, 3000))
        idx = np.arange(start, start + m)
        values = rng.random(count)
        assert np.array_equal(sc._digit(values, start, start + m, stride), values[(idx // stride) % count])
        codes = sc._digit(np.arange(count, dtype=np.int32), start, start + m, stride)
        assert codes.dtype == np.int32 and np.array_equal(codes, (idx // stride) % count)
    spec = sc.SweepSpec({"law": ["hoffmann2022", "kaplan2020"], "flops": "1e20:1e24:7", "gpu": "H100-SXM",
                         "mfu": [0.3, 0.4, 0.5], "max_tokens_per_param": [10, 20]})
    flops = np.geomspace(1e20, 1e24, 7)
    for start, stop in [(0, spec.rows), (5, 6), (13, 61), (41, 84)]:
        cols, idx = spec.columns_for(start, stop), np.arange(start, stop)
        assert np.array_equal(cols["law"][0], idx // 42)
        assert np.array_equal(cols["gpu"][0], np.zeros(idx.size)) and cols["gpu"][1] == ["H100-SXM"]
        assert np.array_equal(cols["flops"], flops[(idx // 6) % 7])
        assert np.array_equal(cols["mfu"], np.array([0.3, 0.4, 0.5])[(idx // 2) % 3])
        assert np.array_equal(cols["max_tokens_per_param"], np.array([10.0, 20.0])[idx % 2])


def test_float32_results_are_the_float64_results_rounded(tmp_path):
    """dtype="float32": every float result column is the float64 result rounded to float32 (nulls where they
    were), inputs and other columns unchanged, the metadata says so, and a partitioned part equals the rows."""
    import json

    import pyarrow as pa

    spec = tmp_path / "s.yaml"
    spec.write_text("law: [hoffmann2022, kaplan2020]\ngpu: H100-SXM\ngpus: [8, 4096]\ndays: [1, 30]\n"
                    "mfu: [0.3, 0.5]\nunique_tokens: [1e10, 1e13]\n")
    sc.run(spec, tmp_path / "f64.parquet", chunk_rows=7)
    sc.run(spec, tmp_path / "f32.parquet", chunk_rows=7, dtype="float32")
    a, b = pq.read_table(tmp_path / "f64.parquet"), pq.read_table(tmp_path / "f32.parquet")
    assert a.column_names == b.column_names
    narrowed = [n for n in a.column_names if b.schema.field(n).type == pa.float32()]
    assert {"params", "tokens", "loss", "gpu_hours"} <= set(narrowed) and "mfu" not in narrowed
    for name in a.column_names:
        if name in narrowed:
            assert a.schema.field(name).type == pa.float64()
            assert b.column(name).null_count == a.column(name).null_count
            x = a.column(name).to_numpy(zero_copy_only=False)
            np.testing.assert_array_equal(b.column(name).to_numpy(zero_copy_only=False), x.astype(np.float32))
        else:
            assert b.column(name).equals(a.column(name)), name
    md = json.loads(pq.read_schema(tmp_path / "f32.parquet").metadata[b"scalesweep"])
    assert md["dtype"] == "float32"
    assert "dtype" not in json.loads(pq.read_schema(tmp_path / "f64.parquet").metadata[b"scalesweep"])
    job = sc.job(spec, partition_rows=5, dtype="float32")
    part, _ = sc.compute_part(job.spec, 5, 10)
    assert part.schema.field("loss").type == pa.float32()
    assert part.drop_columns([]).select(b.column_names).equals(b.slice(5, 5).select(b.column_names))
    with pytest.raises(ScalesweepError, match="float64 or float32"):
        sc.run(spec, tmp_path / "x.parquet", dtype="int8")
