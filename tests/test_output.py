"""The one output layer: every format round-trips, stdout is data and stderr talk, JSON is strict, files
appear atomically with the umask's mode, and nothing is left behind on failure."""

import csv
import io
import json
import os
import stat

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import scalesweep as ss
from scalesweep import output
from scalesweep.errors import ScalesweepError
from scalesweep.tables import read_metadata

from .helpers import assert_one_line_error, run

ARGS = ["frontier", "--flops-range", "1e18:1e26:5", "--max-params", "1e9", "--max-tokens", "1e12"]


def expected():
    return ss.frontier("hoffmann2022", np.geomspace(1e18, 1e26, 5), max_params=1e9, max_tokens=1e12)


def read_any(path, fmt):
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "arrow":
        return feather.read_table(path).to_pandas()
    if fmt == "csv":
        return pd.read_csv(path)
    if fmt == "jsonl":
        return pd.DataFrame([json.loads(line) for line in open(path)])
    return pd.DataFrame(json.load(open(path)))


@pytest.mark.parametrize("suffix, fmt", [(".parquet", "parquet"), (".arrow", "arrow"), (".feather", "arrow"),
                                         (".csv", "csv"), (".jsonl", "jsonl"), (".json", "json")])
def test_every_format_round_trips_the_same_values(tmp_path, suffix, fmt):
    out = tmp_path / f"f{suffix}"
    res = run([*ARGS, "-o", out])
    assert res.stdout == "" and f"wrote 5 budgets to {out}" in res.stderr
    got, want = read_any(out, fmt), expected()
    assert list(got.columns) == list(want.columns)
    for c in ("flops", "params", "tokens", "loss"):
        np.testing.assert_array_equal(got[c].to_numpy(dtype=float), want[c].to_numpy(dtype=float))  # exact
    assert got.feasible.astype(bool).tolist() == want.feasible.tolist()
    assert got.infeasible_reason.isna().tolist() == want.infeasible_reason.isna().tolist()
    if fmt in ("parquet", "arrow"):  # the binary formats carry the metadata
        meta = pq.read_schema(out).metadata if fmt == "parquet" else feather.read_table(out).schema.metadata
        assert json.loads(meta[b"scalesweep"])["command"] == "frontier"


def test_json_is_strict_nan_and_infinity_become_null(tmp_path):
    out = tmp_path / "f.json"
    run([*ARGS, "-o", out])
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text
    rows = json.loads(text)
    assert rows[-1]["params"] is None and rows[-1]["feasible"] is False
    assert rows[-1]["infeasible_reason"] == "max_params+max_tokens" and rows[0]["infeasible_reason"] is None
    laws = json.loads(run(["laws", "--json"]).stdout)  # strict: parse_constant would reject Infinity
    assert laws["presets"]["muennighoff2023"]["parameters"]["U_D"] == "inf"


def test_stdout_is_csv_when_piped_and_a_table_on_a_terminal(monkeypatch):
    res = run(ARGS)
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == 5 and float(rows[0]["flops"]) == 1e18
    assert res.stderr.startswith("warning: 3 of 5 budgets are infeasible")
    monkeypatch.setattr(output, "stdout_is_terminal", lambda: True)
    lines = run(ARGS).stdout.splitlines()
    assert lines[0].split()[:3] == ["flops", "params", "tokens"] and len(lines) == 6
    end = lines[0].index("feasible ") + len("feasible")  # right-aligned, fixed-width columns
    assert [line[end - 5:end].strip() for line in lines[1:]] == ["True", "True", "False", "False", "False"]
    assert len([json.loads(x) for x in run([*ARGS, "--format", "jsonl", "-o", "-"]).stdout.splitlines()]) == 5
    assert len(json.loads(run([*ARGS, "--format", "json"]).stdout)) == 5


def test_binary_formats_to_stdout():
    from click.testing import CliRunner

    from scalesweep.cli import cli

    out = CliRunner().invoke(cli, [*ARGS, "--format", "parquet"]).stdout_bytes
    assert pq.read_table(pa.BufferReader(out)).num_rows == 5


def test_every_table_command_can_print(tmp_path):
    spec = tmp_path / "s.csv"
    spec.write_text("flops,max_params\n1e22,1e9\n1e24,\n")
    assert len(run(["scenarios", spec]).stdout.splitlines()) == 3
    run(["lookup", "build", "--flops-range", "1e18:1e22", "--points-per-decade", "2", "-o", tmp_path / "t.parquet"])
    assert len(run(["lookup", "query", tmp_path / "t.parquet", "--flops", "1e19,1e20"]).stdout.splitlines()) == 3
    assert run(["target-loss", "--loss", "2.2"]).stdout.startswith("target_loss,flops,params")
    assert run(["compare", "--flops", "1e22", "--laws", "hoffmann2022"]).stdout.startswith("law,family,flops")
    head = run(["resolution", "--flops-range", "1e20:1e22:3", "--points-per-decade", "4"]).stdout.splitlines()[0]
    assert head.split(",") == list(ss.studies.RESOLUTION_COLUMNS)  # printed names are the written names
    surface = run(["surface", "--params-range", "1e8:1e9:2", "--tokens-range", "1e9:1e10:3"]).stdout.splitlines()
    assert surface[0] == "params,tokens,flops,loss" and len(surface) == 7


def test_new_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        for name in ("f.parquet", "f.csv"):
            run([*ARGS, "-o", tmp_path / name])
            assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644
        os.umask(0o077)
        run([*ARGS, "-o", tmp_path / "private.parquet"])
        assert stat.S_IMODE(os.stat(tmp_path / "private.parquet").st_mode) == 0o600
        output.write_json(tmp_path / "law.json", {"a": 1})
        assert stat.S_IMODE(os.stat(tmp_path / "law.json").st_mode) == 0o600
    finally:
        os.umask(old)


def test_atomic_path_removes_the_temp_file_and_keeps_the_old_target(tmp_path):
    out = tmp_path / "t.parquet"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with output.table_writer(out, pa.schema([("x", pa.float64())])) as w:
            w.write(pa.table({"x": [1.0]}))
            raise RuntimeError("boom")
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["t.parquet"]
    with pytest.raises(KeyboardInterrupt):
        with output.atomic_path(tmp_path / "law.json") as tmp:
            open(tmp, "w").write("{")
            raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_unknown_suffix_and_bad_format_are_errors(tmp_path):
    res = run([*ARGS, "-o", tmp_path / "out.xlsx"], ok=False)
    assert_one_line_error(res, "cannot tell the format of", 1)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ScalesweepError, match="unknown format 'xml'"):
        output.resolve_format("x.csv", "xml")
    # --format overrides the suffix
    run([*ARGS, "-o", tmp_path / "data.txt", "--format", "csv"])
    assert (tmp_path / "data.txt").read_text().startswith("flops,params")


def test_metadata_is_read_back_and_required(tmp_path):
    run([*ARGS, "-o", tmp_path / "f.parquet"])
    meta = read_metadata(tmp_path / "f.parquet")
    assert meta["constraints"] == {"max_params": 1e9, "max_tokens": 1e12}
    assert meta["hardware"] == {} and meta["workload"] == {}
    pq.write_table(pa.table({"x": [1.0]}), tmp_path / "plain.parquet")
    with pytest.raises(ScalesweepError, match="no scalesweep metadata"):
        read_metadata(tmp_path / "plain.parquet")


def test_a_written_files_digest_is_that_of_the_committed_bytes(tmp_path):
    table = pa.table({"x": np.arange(1000, dtype=np.float64)})
    digest = output.write_table(tmp_path / "t.parquet", table, "parquet", digest=True)
    data = (tmp_path / "t.parquet").read_bytes()
    import hashlib

    assert digest == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert output.write_table(tmp_path / "t.csv", table) is None  # not asked for


def test_a_file_uri_is_the_local_path(tmp_path):
    target = (tmp_path / "a b.csv").as_uri()
    assert target.startswith("file:///") and "%20" in target
    assert output.check_target(target) == tmp_path / "a b.csv"
    run([*ARGS, "-o", target])
    run([*ARGS, "-o", tmp_path / "local.csv"])
    assert (tmp_path / "a b.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a b.csv", "local.csv"]


def _codecs(path):
    md = pq.ParquetFile(path).metadata
    return {md.row_group(i).column(j).compression for i in range(md.num_row_groups) for j in range(md.num_columns)}


def test_compression_option_sets_the_parquet_codec_of_files_and_parts(tmp_path):
    """--compression picks the codec (default snappy) of a single file and of every part of a dataset; the
    values are the same whatever the codec; a codec with a format that has none is refused."""
    from click.testing import CliRunner

    from scalesweep.cli import cli

    base = ["frontier", "--flops-range", "1e18:1e24:40", "--max-params", "1e10"]

    def run_ok(*args):
        res = CliRunner().invoke(cli, [*base, *map(str, args)], catch_exceptions=False)
        assert res.exit_code == 0, res.output

    run_ok("-o", tmp_path / "default.parquet")
    run_ok("--compression", "zstd", "-o", tmp_path / "zstd.parquet")
    run_ok("--compression", "none", "-o", tmp_path / "none.parquet")
    run_ok("--compression", "zstd", "--partition-rows", "10", "-o", tmp_path / "ds")
    assert _codecs(tmp_path / "default.parquet") == {"SNAPPY"}
    assert _codecs(tmp_path / "zstd.parquet") == {"ZSTD"}
    assert _codecs(tmp_path / "none.parquet") == {"UNCOMPRESSED"}
    parts = sorted((tmp_path / "ds").glob("part-*.parquet"))
    assert len(parts) == 4 and all(_codecs(p) == {"ZSTD"} for p in parts)
    want = pq.read_table(tmp_path / "default.parquet")
    for name in ("zstd.parquet", "none.parquet", "ds"):
        assert pq.read_table(tmp_path / name).to_pandas().equals(want.to_pandas())
    run_ok("-o", tmp_path / "again.parquet")  # the codec of one command does not carry over to the next
    assert _codecs(tmp_path / "again.parquet") == {"SNAPPY"}
    res = CliRunner().invoke(cli, [*base, "--compression", "zstd", "-o", str(tmp_path / "f.csv")])
    assert res.exit_code == 2 and "--compression applies to Parquet output, not csv" in res.output
    assert not (tmp_path / "f.csv").exists()
    res = CliRunner().invoke(cli, [*base, "--compression", "brotli9", "-o", str(tmp_path / "b.parquet")])
    assert res.exit_code == 2 and "brotli9" in res.output


def test_columns_option_writes_the_chosen_columns_in_order(tmp_path):
    """--columns keeps the named columns in the order given (values and metadata as in the full file), refuses an
    unknown name with the list of columns and no file, and is refused for partitioned datasets."""
    from click.testing import CliRunner

    from scalesweep.cli import cli

    base = ["frontier", "--flops-range", "1e18:1e24:40", "--gpu", "H100", "--gpus", "64"]

    def invoke(*args):
        return CliRunner().invoke(cli, [*base, *map(str, args)])

    assert invoke("-o", tmp_path / "all.parquet").exit_code == 0
    assert invoke("--columns", "loss,flops,gpu_hours", "-o", tmp_path / "some.parquet").exit_code == 0
    full, some = pq.read_table(tmp_path / "all.parquet"), pq.read_table(tmp_path / "some.parquet")
    assert some.column_names == ["loss", "flops", "gpu_hours"]
    for name in some.column_names:
        assert some.column(name).equals(full.column(name))
        assert some.schema.field(name).metadata == full.schema.field(name).metadata
    assert some.schema.metadata == full.schema.metadata
    res = invoke("--columns", "flops,loss", "--format", "csv", "-o", tmp_path / "some.csv")
    assert res.exit_code == 0 and (tmp_path / "some.csv").read_text().splitlines()[0] == "flops,loss"
    res = invoke("--columns", "flops,parms", "-o", tmp_path / "bad.parquet")
    assert res.exit_code == 1 and "--columns: no column 'parms' in this output (columns: flops, params" in res.output
    assert not (tmp_path / "bad.parquet").exists()
    res = invoke("--columns", "flops,,loss", "-o", tmp_path / "bad.parquet")
    assert res.exit_code == 1 and "--columns must name columns once each" in res.output
    res = CliRunner().invoke(cli, ["frontier", "--flops-range", "1e18:1e24:40", "--columns", "flops",
                                   "--partition-rows", "10", "-o", str(tmp_path / "ds")])
    assert res.exit_code == 2 and "--columns applies to single-file outputs" in res.output
    assert invoke("-o", tmp_path / "again.parquet").exit_code == 0  # the choice does not carry over
    assert pq.read_table(tmp_path / "again.parquet").column_names == full.column_names


def test_a_growing_file_is_synced_while_written_and_the_bytes_are_unchanged(tmp_path, monkeypatch):
    """Batches of FLUSH_ROWS rows or more start a background sync of the file so far; the file's bytes are
    those written without it, and no thread is left once the writer is closed or aborted."""
    import threading
    import time

    schema = pa.schema([("x", pa.float64())])
    batch = pa.RecordBatch.from_arrays([pa.array(np.arange(output.FLUSH_ROWS, dtype=np.float64))], schema=schema)
    syncs = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: syncs.append(fd) or real(fd))

    def write(path, flush_rows):
        monkeypatch.setattr(output, "FLUSH_ROWS", flush_rows)
        with output.table_writer(path, schema) as w:
            for _ in range(4):
                w.write(batch)
                if flush_rows <= batch.num_rows:  # give the background sync the time a real encoding would
                    deadline = time.monotonic() + 5
                    while not syncs and time.monotonic() < deadline:
                        time.sleep(0.001)
        return path.read_bytes()

    assert write(tmp_path / "a.parquet", output.FLUSH_ROWS) == write(tmp_path / "b.parquet", 1 << 60)
    assert syncs  # the first file was synced while written
    assert all(t.name != "scalesweep-flush" for t in threading.enumerate())
    with pytest.raises(RuntimeError, match="stop"):
        with output.table_writer(tmp_path / "c.parquet", schema) as w:
            w.write(batch)
            raise RuntimeError("stop")
    assert not (tmp_path / "c.parquet").exists()
    assert all(t.name != "scalesweep-flush" for t in threading.enumerate())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "b.parquet"]
