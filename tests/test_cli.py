import csv
import io
import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import scalesweep as ss
from scalesweep.tables import read_metadata

from . import reference as ref
from .helpers import assert_one_line_error, run


def test_laws_text_and_json():
    out = run(["laws"]).output
    for name in ss.PRESETS:
        assert name in out
    data = json.loads(run(["laws", "--json"]).output)
    assert data["default"] == "hoffmann2022"
    assert data["families"]["kaplan"]["parameters"] == ["N_c", "D_c", "alpha_N", "alpha_D"]
    assert data["presets"]["besiroglu2024"]["parameters"]["B"] == 2085.43


def test_frontier_to_parquet_with_metadata(tmp_path):
    out = tmp_path / "f.parquet"
    res = run(["frontier", "--law", "hoffmann2022", "--set", "alpha=0.35", "--flops-range", "1e18:1e26:9",
               "--max-params", "1e11", "-o", str(out), "--threads", "1"])
    assert "wrote 9 budgets" in res.output
    df = pd.read_parquet(out)
    assert list(df.columns) == list(ss.tables.RESULT_HEAD)
    assert df.feasible.dtype == bool
    law = ss.get_law("hoffmann2022", alpha=0.35)
    expect = ss.frontier(law, np.geomspace(1e18, 1e26, 9), max_params=1e11)
    pd.testing.assert_frame_equal(df, expect)
    meta = read_metadata(out)
    assert meta["command"] == "frontier"
    assert meta["law"]["parameters"]["alpha"] == 0.35 and meta["law"]["overrides"] == ["alpha"]
    assert meta["constraints"] == {"max_params": 1e11}
    assert meta["grid"]["flops_range"] == "1e+18:1e+26:9"
    assert meta["command_line"].startswith("scalesweep")


def test_frontier_prints_table_and_warns_on_infeasible():
    res = run(["frontier", "--flops-range", "1e18:1e26:3", "--max-params", "1e9", "--max-tokens", "1e12"])
    lines = res.stdout.strip().splitlines()  # piped: CSV
    assert lines[0].split(",") == list(ss.tables.RESULT_HEAD) and len(lines) == 4
    assert lines[-1].endswith(',false,"none","max_params+max_tokens"')
    assert "warning: 2 of 3 budgets are infeasible (feasible=false): 2 max_params+max_tokens" in res.stderr
    # on a terminal (or with --format table): fixed-width columns
    table = run(["frontier", "--flops-range", "1e18:1e26:3", "--max-params", "1e9", "--max-tokens", "1e12",
                 "--format", "table"]).stdout.splitlines()
    assert table[0].split() == list(ss.tables.RESULT_HEAD)
    end = table[0].index("active_constraint") + len("active_constraint")  # right-aligned columns
    assert [line[:end].split()[-1] for line in table[1:]] == ["none", "none", "none"]


def test_frontier_fixed_size_question():
    res = run(["frontier", "--flops-range", "1e23", "--min-params", "7e9", "--max-params", "7e9"])
    row = next(csv.DictReader(io.StringIO(res.stdout)))
    assert float(row["params"]) == 7e9 and row["active_constraint"] == "max_params"


def test_frontier_flops_file_csv_and_parquet(tmp_path):
    csv = tmp_path / "b.csv"
    pd.DataFrame({"name": ["a", "b"], "budget": [1e20, 1e22]}).to_csv(csv, index=False)
    out = tmp_path / "f.parquet"
    run(["frontier", "--flops-file", str(csv), "--flops-column", "budget", "-o", str(out)])
    assert pd.read_parquet(out).flops.tolist() == [1e20, 1e22]
    pq_in = tmp_path / "b.parquet"
    pq.write_table(pa.table({"flops": [3e21]}), pq_in)
    run(["frontier", "--flops-file", str(pq_in), "-o", str(out), "--law", "kaplan2020"])
    df = pd.read_parquet(out)
    assert df.params[0] == pytest.approx(ref.closed_form_params("kaplan", dict(ss.get_law("kaplan2020").params), 3e21),
                                         rel=1e-10)


def test_frontier_law_file(tmp_path):
    lf = tmp_path / "law.toml"
    lf.write_text('family = "chinchilla"\n[parameters]\nE = 1.8\nA = 400\nB = 400\nalpha = 0.3\nbeta = 0.3\n')
    out = tmp_path / "f.parquet"
    run(["frontier", "--law-file", str(lf), "--flops-range", "1e20:1e22:3", "-o", str(out)])
    df = pd.read_parquet(out)
    np.testing.assert_allclose(df.params, np.sqrt(df.flops / 6), rtol=1e-12)  # alpha = beta, A = B: N = D
    assert read_metadata(out)["law"]["family"] == "chinchilla"


def test_surface_grid_and_isoflop(tmp_path):
    out = tmp_path / "s.parquet"
    res = run(["surface", "--law", "kaplan2020", "--params-range", "1e6:1e10:5", "--tokens-range", "1e8:1e12:4",
               "--dtype", "float32", "-o", str(out)])
    assert "wrote 20 rows" in res.output
    t = pd.read_parquet(out)
    assert list(t.columns) == ["params", "tokens", "flops", "loss"] and t.loss.dtype == np.float32
    law = ss.get_law("kaplan2020")
    np.testing.assert_allclose(t.loss, ref.loss("kaplan", dict(law.params), t.params, t.tokens), rtol=1e-6)
    meta = read_metadata(out)
    assert meta["grid"] == {"params_range": "1e+06:1e+10:5", "tokens_range": "1e+08:1e+12:4"}
    assert meta["dtype"] == "float32"
    run(["surface", "--params-range", "1e7:1e10:4", "--flops-range", "1e18:1e21:4", "-o", str(out)])
    t = pd.read_parquet(out)
    np.testing.assert_allclose(t.tokens, t.flops / (6 * t.params), rtol=1e-15)
    assert read_metadata(out)["form"] == "isoflop"


GOOD = ["--flops-range", "1e18:1e20:3"]


@pytest.mark.parametrize(
    "args, needle, code",
    [
        (["frontier", "--flops-range", "nan:1e20:3"], "LO must be finite", 1),
        (["frontier", "--flops-range", "1e18:inf:3"], "HI must be finite", 1),
        (["frontier", "--flops-range", "-1:1e20:3"], "LO must be > 0", 1),
        (["frontier", "--flops-range", "0:1e20:3"], "LO must be > 0", 1),
        (["frontier", "--flops-range", "1e20:1e18:3"], "LO (1e+20) is greater than HI (1e+18)", 1),
        (["frontier", "--flops-range", "1e18:1e20:0"], "COUNT must be >= 1", 1),
        (["frontier", "--flops-range", "1e18:1e20:2.5"], "COUNT must be a whole number", 1),
        (["frontier", "--flops-range", "1e18:1e20:1"], "COUNT 1 needs LO == HI", 1),
        (["frontier", "--flops-range", "1e18:1e20"], "expected LO:HI:COUNT", 1),
        (["frontier", "--flops-range", "abc"], "is not a number", 1),
        (["frontier"], "give --flops-range or --flops-file", 2),
        (["frontier", *GOOD, "--max-params", "nan"], "--max-params must be a finite number > 0", 1),
        (["frontier", *GOOD, "--min-tokens", "inf"], "--min-tokens must be a finite number > 0", 1),
        (["frontier", *GOOD, "--max-tokens", "-1"], "--max-tokens must be a finite number > 0", 1),
        (["frontier", *GOOD, "--min-params", "0"], "--min-params must be a finite number > 0", 1),
        (["frontier", *GOOD, "--min-params", "abc"], "'abc' is not a number", 2),
        (["frontier", *GOOD, "--min-params", "2e9", "--max-params", "1e9"], "no allocation can satisfy both", 1),
        (["frontier", *GOOD, "--law", "chinchila"], "unknown law 'chinchila'", 1),
        (["frontier", *GOOD, "--set", "gamma=1"], "unknown parameter 'gamma'", 1),
        (["frontier", *GOOD, "--set", "alpha=nan"], "'alpha' must be finite", 1),
        (["frontier", *GOOD, "--set", "alpha=-0.3"], "'alpha' must be > 0", 1),
        (["frontier", *GOOD, "--set", "alpha"], "NAME=VALUE", 1),
        (["frontier", *GOOD, "--threads", "0"], "--threads must be between 1", 1),
        (["frontier", *GOOD, "--solver", "brent"], "Invalid value for '--solver'", 2),
        (["frontier", *GOOD, "--law", "kaplan2020", "--law-file", "x.json"], "not both", 1),
        (["frontier", *GOOD, "--flops-column", "x"], "--flops-column needs --flops-file", 2),
        (["surface", "--params-range", "1e6:1e9:3", "-o", "s.parquet"], "give --tokens-range", 2),
        (["surface", "--params-range", "1e6:1e9:3", "--tokens-range", "1e9:1e8:3", "-o", "s.parquet"],
         "--tokens-range: LO (1e+09) is greater than HI (1e+08)", 1),
        (["surface", "--params-range", "1e6:1e9:-2", "--tokens-range", "1e8:1e9:3", "-o", "s.parquet"],
         "COUNT must be >= 1", 1),
        (["surface", "--params-range", "1e6:1e9:3", "--tokens-range", "1e8:1e9:3", "-o", "s.xyz"],
         "cannot tell the format of 's.xyz' from its suffix", 1),
        (["frontier", *GOOD, "--law", "chinchila"], "did you mean 'chinchilla'?", 1),
        (["frontier", *GOOD, "--gpus", "8"], "--gpus needs --gpu or --peak-tflops", 1),
        (["frontier", *GOOD, "--mfu", "0.5"], "--mfu needs --gpu or --peak-tflops", 1),
        (["frontier", *GOOD, "--usd-per-gpu-hour", "2"], "--usd-per-gpu-hour needs --gpu or --peak-tflops", 1),
        (["frontier", *GOOD, "--gpu", "A100", "--bytes-per-param", "8"], "--bytes-per-param needs --gpus", 1),
        (["frontier", *GOOD, "--gpu", "H10"], "unknown GPU 'H10'", 1),
        (["frontier", *GOOD, "--unit", "days", "--gpu", "A100"], "--unit days needs --gpus and a GPU", 1),
        (["frontier", *GOOD, "--format", "xml"], "Invalid value for '--format'", 2),
        (["frontier", *GOOD, "--law", "hoffmann2022,nope"], "unknown law 'nope'", 1),
        (["frontier", *GOOD, "--law", "hoffmann2022,kaplan2020", "--set", "alpha=0.3"], "neither --law-file nor --set", 1),
        (["frontier", *GOOD, "--law", "kaplan2020-N"], "kaplan2020-N is a law of N alone", 1),
        (["target-loss", "--loss", "2", "--law", "muennighoff2023"], "target-loss does not support muennighoff2023", 1),
        (["lookup", "build", "--flops-range", "1e18:1e26:9", "-o", "t.parquet"], "takes LO:HI here, not a count", 1),
        (["lookup", "build", "--flops-range", "1e18:1e26", "-o", "t.csv"], "written as Parquet", 1),
        (["nonsense"], "No such command 'nonsense'", 2),
    ],
)
def test_bad_input_one_line_error_no_output(tmp_path, args, needle, code):
    os.chdir(tmp_path)
    args = list(args)
    if args[0] == "frontier" and "-o" not in args:
        args += ["-o", "out.parquet"]
    res = run(args, ok=False)
    assert_one_line_error(res, needle, code)
    assert not any(p.suffix == ".parquet" or p.name.endswith(".tmp") for p in tmp_path.iterdir())


@pytest.mark.parametrize(
    "content, extra, needle",
    [
        ("flops\n1e20\nnan\n", [], "row 2: nan is not a finite budget > 0"),
        ("flops\n1e20\n-3\n", [], "row 2"),
        ("flops\n1e20\nabc\n", [], "row 2: 'abc'"),
        ("flops\n", [], "has no rows"),
        ("", [], "cannot read flops file"),
        ("a,b\n1,2\n", [], "no 'flops' column"),
        ("flops\n1e20\n", ["--flops-column", "budget"], "has no column 'budget'"),
        ('x,"y\n1,"2\n3', [], "no 'flops' column"),
        ('flops\n1e20\n"unterminated\n', [], "cannot read flops file"),
    ],
)
def test_malformed_flops_files(tmp_path, content, extra, needle):
    f = tmp_path / "budgets.csv"
    f.write_text(content)
    out = tmp_path / "out.parquet"
    res = run(["frontier", "--flops-file", str(f), *extra, "-o", str(out)], ok=False)
    assert_one_line_error(res, needle, 1)
    assert not out.exists()


def test_corrupt_parquet_and_missing_flops_file(tmp_path):
    f = tmp_path / "budgets.parquet"
    f.write_bytes(b"PAR1 this is not parquet")
    assert_one_line_error(run(["frontier", "--flops-file", str(f)], ok=False), "cannot read flops file", 1)
    assert_one_line_error(run(["frontier", "--flops-file", str(tmp_path / "nope.csv")], ok=False), "does not exist", 1)


def test_malformed_law_file_cli(tmp_path):
    lf = tmp_path / "law.json"
    lf.write_text('{"family": "chinchilla", "parameters": {"E": 1}}')
    res = run(["frontier", *GOOD, "--law-file", str(lf)], ok=False)
    assert_one_line_error(res, "missing parameter 'A'", 1)


@pytest.mark.parametrize("target", ["missing-dir/out.parquet", "adir"])
def test_unwritable_output(tmp_path, target):
    (tmp_path / "adir").mkdir()
    out = tmp_path / target
    for cmd in (["frontier", *GOOD], ["surface", "--params-range", "1e6:1e9:3", "--tokens-range", "1e8:1e9:3"]):
        res = run([*cmd, "-o", str(out)], ok=False)
        if target == "adir":  # click's path check (usage error, exit 2) or ours
            assert_one_line_error(res, "is a directory")
        else:
            assert_one_line_error(res, "does not exist", 1)
    assert not (tmp_path / "missing-dir").exists()


def test_failed_write_leaves_no_file_and_keeps_old_one(tmp_path, monkeypatch):
    out = tmp_path / "s.parquet"
    out.write_bytes(b"previous result")
    calls = {"n": 0}
    real = ss.surfaces.chunks

    def failing(*a, **k):
        for chunk in real(*a, **k):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-run
            yield chunk

    monkeypatch.setattr(ss.surfaces, "chunks", failing)
    with pytest.raises(KeyboardInterrupt):
        ss.write_surface(out, "hoffmann2022", np.geomspace(1e6, 1e9, 10), tokens=np.geomspace(1e8, 1e9, 10),
                         chunk_points=20)
    assert out.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["s.parquet"]


def test_read_metadata_requires_scalesweep_file(tmp_path):
    f = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"x": [1.0]}), f)
    with pytest.raises(ss.ScalesweepError, match="no scalesweep metadata"):
        read_metadata(f)


def test_version_and_help():
    assert ss.__version__ in run(["--version"]).output
    assert "LO:HI:COUNT" in run(["frontier", "--help"]).output
