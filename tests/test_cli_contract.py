"""The command-line contract, command by command: stdout is data and stderr talk, `-o` follows the suffix
(or `-` for stdout), strict JSON, one-line errors that leave no file behind (and keep an older one), options
that need others are refused, families that cannot answer are refused up front, new files follow the umask.
These complement test_cli.py / test_output.py (which exercise mostly `frontier` and `surface`)."""

import io
import json
import os
import stat
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import scalesweep as ss
from scalesweep import dataset

from .helpers import assert_one_line_error, run


def strict_json(text):
    """json.loads that refuses NaN / Infinity tokens (what strict JSON means)."""
    def refuse(token):
        raise ValueError(f"non-strict JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Small input files every command test can share: a lookup table, a scenario table, a runs file."""
    d = tmp_path_factory.mktemp("inputs")
    ss.write_lookup(d / "table.parquet", "hoffmann2022", 1e18, 1e20, 2)
    (d / "spec.csv").write_text("flops,max_params\n1e22,1e9\n1e24,\n")
    law = ss.get_law("hoffmann2022")
    n = np.repeat(np.geomspace(1e7, 1e10, 5), 4)
    tokens = np.tile(np.geomspace(1e9, 1e12, 4), 5)
    pd.DataFrame({"params": n, "tokens": tokens, "loss": law.loss(n, tokens)}).to_csv(d / "runs.csv", index=False)
    return d


def table_commands(inputs):
    """One small run of every table-writing command other than frontier/surface (test_output covers those)."""
    return {
        "target-loss": ["target-loss", "--loss", "2.2,2.0"],
        "scenarios": ["scenarios", inputs / "spec.csv"],
        "compare": ["compare", "--flops", "1e22", "--laws", "hoffmann2022,deepseek2024"],
        "resolution": ["resolution", "--flops-range", "1e20:1e22:3", "--points-per-decade", "2"],
        "isoflop-sim": ["isoflop-sim", "--budgets", "6e18:3e21:3"],
        "lookup query": ["lookup", "query", inputs / "table.parquet", "--flops", "1e19,3e19"],
    }


COMMANDS = ["target-loss", "scenarios", "compare", "resolution", "isoflop-sim", "lookup query"]


# ------------------------------------------------------------------------------ -o, formats, stdout/stderr


@pytest.mark.parametrize("name", COMMANDS)
def test_unknown_suffix_is_an_error_in_every_table_command(tmp_path, inputs, name):
    out = tmp_path / "result.xlsx"
    res = run([*table_commands(inputs)[name], "-o", out], ok=False)
    assert_one_line_error(res, "cannot tell the format of", 1)
    assert res.stdout == "" and leftovers(tmp_path) == []


@pytest.mark.parametrize("name", COMMANDS)
def test_writing_a_file_keeps_stdout_empty(tmp_path, inputs, name):
    out = tmp_path / "result.csv"
    res = run([*table_commands(inputs)[name], "-o", out])
    assert res.stdout == ""
    assert f"to {out}" in res.stderr
    assert pd.read_csv(out).shape[0] >= 1
    assert leftovers(tmp_path) == ["result.csv"]  # no temporary file beside it


@pytest.mark.parametrize("name", COMMANDS)
def test_dash_o_prints_csv_on_stdout_and_writes_no_file(tmp_path, inputs, name, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = run([*table_commands(inputs)[name], "-o", "-"])
    df = pd.read_csv(io.StringIO(res.stdout))
    assert len(df) >= 1 and "wrote" not in res.stderr
    assert leftovers(tmp_path) == []  # no file called '-'


@pytest.mark.parametrize("suffix", [".pq", ".ndjson", ".ipc", ".txt", ".json"])
def test_every_suffix_picks_its_format_for_target_loss(tmp_path, suffix):
    out = tmp_path / f"t{suffix}"
    run(["target-loss", "--loss", "2.2,1.5", "-o", out])
    if suffix == ".pq":
        df = pd.read_parquet(out)
    elif suffix == ".ipc":
        df = feather.read_table(out).to_pandas()
    elif suffix == ".ndjson":
        df = pd.DataFrame([strict_json(line) for line in out.read_text().splitlines()])
    elif suffix == ".json":
        df = pd.DataFrame(strict_json(out.read_text()))
    else:  # fixed-width text
        lines = out.read_text().splitlines()
        assert lines[0].split()[:3] == ["target_loss", "flops", "params"] and len(lines) == 3
        return
    assert df.target_loss.tolist() == [2.2, 1.5]
    assert df.feasible.tolist() == [True, False]


def test_binary_format_to_stdout_from_another_command():
    res = run(["compare", "--flops", "1e22,1e23", "--laws", "hoffmann2022", "--format", "arrow"])
    assert feather.read_table(pa.BufferReader(res.stdout_bytes)).num_rows == 2
    res = run(["target-loss", "--loss", "2.2", "--format", "parquet", "-o", "-"])
    assert pq.read_table(pa.BufferReader(res.stdout_bytes)).column("target_loss").to_pylist() == [2.2]


def test_json_is_strict_where_tables_hold_nan(tmp_path, inputs):
    # allocation rules have no loss of their own (NaN); kaplan2020-C has no params/tokens (NaN)
    out = tmp_path / "c.json"
    run(["compare", "--flops", "1e22", "--laws", "deepseek2024,kaplan2020-C", "-o", out])
    rows = strict_json(out.read_text())
    assert rows[0]["loss"] is None and rows[1]["params"] is None
    lines = run(["scenarios", inputs / "spec.csv", "--format", "jsonl"]).stdout.splitlines()
    rows = [strict_json(line) for line in lines]
    assert len(rows) == 2 and rows[0]["gpu_hours"] is None and rows[0]["infeasible_reason"] is None
    rows = strict_json(run(["target-loss", "--loss", "1.5", "--format", "json"]).stdout)
    assert rows[0]["flops"] is None and rows[0]["infeasible_reason"] == "irreducible_loss"


def test_fit_to_dash_prints_the_law_file_and_talks_on_stderr(inputs, tmp_path):
    res = run(["fit", inputs / "runs.csv", "-o", "-", "--method", "vp"])
    law = strict_json(res.stdout)
    assert law["family"] == "chinchilla" and set(law["parameters"]) == {"E", "A", "B", "alpha", "beta"}
    assert "fitted chinchilla to 20 runs" in res.stderr and "wrote" not in res.stderr
    out = tmp_path / "law.json"
    res = run(["fit", inputs / "runs.csv", "-o", out, "--method", "vp"])
    assert res.stdout == "" and res.stderr.splitlines()[-1] == f"wrote {out}"
    assert strict_json(out.read_text())["family"] == "chinchilla"


def test_isoflop_sim_table_on_stdout_summary_on_stderr():
    res = run(["isoflop-sim", "--budgets", "6e18:3e21:3", "-o", "-"])
    df = pd.read_csv(io.StringIO(res.stdout))
    assert list(df.trial) == [0] and "exponent_params" in df.columns
    assert "exponent N*(C)" in res.stderr and "exponent N*(C)" not in res.stdout
    res = run(["isoflop-sim", "--budgets", "6e18:3e21:3"])  # without -o the summary is the output
    assert "exponent N*(C)" in res.stdout and res.stderr == ""


def test_lookup_build_talks_on_stderr_only(tmp_path):
    out = tmp_path / "t.parquet"
    res = run(["lookup", "build", "--flops-range", "1e18:1e20", "--points-per-decade", "2", "-o", out])
    assert res.stdout == "" and res.stderr.startswith(f"wrote 5 rows to {out}")
    assert leftovers(tmp_path) == ["t.parquet"]  # no OUTPUT.parts/ or temporary file left


# ------------------------------------------------------------------------------------------ user mistakes


@pytest.mark.parametrize("args, needle, code", [
    (["compare", "--flops", "1e22,nan"], "values must be finite and > 0", 1),
    (["compare", "--flops", "1e22,abc"], "'abc' is not a number", 1),
    (["compare", "--flops", "1e22", "--laws", "nope"], "unknown law 'nope'", 1),
    (["target-loss", "--loss", "inf"], "values must be finite and > 0", 1),
    (["target-loss", "--loss", "2,"], "'' is not a number", 1),
    (["resolution", "--flops-range", "1e20:1e22:3", "--points-per-decade", "0"], "must be >= 1", 1),
    (["resolution", "--flops-range", "1e20:1e22:3", "--params-range", "1e9:1e8"], "--params-range", 1),
    (["isoflop-sim", "--budgets", "6e18:3e21:3", "--width", "nan"], "--width", 1),
    (["isoflop-sim", "--budgets", "6e18:3e21:3", "--target-flops", "0"], "--target-flops", 1),
    (["target-loss", "--loss", "2", "--max-param", "1e9"], "No such option '--max-param'", 2),
    (["fit", "runs.csv", "-o", "law.json", "--method", "newton"], "Invalid value for '--method'", 2),
    (["scenarios"], "Missing argument 'SPEC'", 2),
    (["lookup", "build", "--flops-range", "1e18:1e20", "-o", "t.parquet", "--points-per-decade", "0"],
     "--points-per-decade must be a whole number >= 1", 1),
])
def test_mistakes_in_other_commands_are_one_line(tmp_path, monkeypatch, args, needle, code):
    monkeypatch.chdir(tmp_path)
    res = run([*args, "-o", "out.csv"] if args[0] in ("compare", "target-loss", "resolution") else args, ok=False)
    assert_one_line_error(res, needle, code)
    assert res.stdout == "" and leftovers(tmp_path) == []


@pytest.mark.parametrize("extra, needle", [
    (["--gpus", "8"], "--gpus needs --gpu or --peak-tflops"),
    (["--mfu", "0.5"], "--mfu needs --gpu or --peak-tflops"),
    (["--usd-per-gpu-hour", "2"], "--usd-per-gpu-hour needs --gpu or --peak-tflops"),
    (["--gpu-memory-gb", "40"], "--gpu-memory-gb needs --gpu or --peak-tflops"),
    (["--gpu", "A100", "--bytes-per-param", "8"], "--bytes-per-param needs --gpus"),
    (["--gpu", "A100", "--max-days", "3"], "--max-days needs --gpus"),
])
@pytest.mark.parametrize("question", [["target-loss", "--loss", "2.2"], ["frontier", "--flops-range", "1e20:1e22:3"]])
def test_options_that_need_others_are_refused(tmp_path, question, extra, needle):
    out = tmp_path / "out.parquet"
    assert_one_line_error(run([*question, *extra, "-o", out], ok=False), needle, 1)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("args, needle", [
    (["target-loss", "--loss", "2.2", "--law", "kaplan2020-steps"], "target-loss does not support kaplan2020-steps"),
    (["target-loss", "--loss", "2.2", "--law", "deepseek2024"], "target-loss does not support deepseek2024"),
    (["target-loss", "--loss", "2.2", "--law", "kaplan2020-C"], "target-loss does not support kaplan2020-C"),
    (["target-loss", "--loss", "2.2", "--law", "hoffmann2022,muennighoff2023"], "does not support muennighoff2023"),
    (["frontier", "--flops-range", "1e20", "--law", "kaplan2020-D"], "kaplan2020-D is a law of D alone"),
    (["frontier", "--flops-range", "1e20", "--law", "hoffmann2022,kaplan2020-N"], "kaplan2020-N is a law of N alone"),
    (["frontier", "--flops-range", "1e20", "--loss-law", "hoffmann2022"], "--loss-law applies to allocation rules"),
])
def test_families_that_cannot_answer_are_refused_up_front(tmp_path, args, needle):
    out = tmp_path / "out.csv"
    assert_one_line_error(run([*args, "-o", out], ok=False), needle, 1)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("case", ["lookup query", "fit", "target-loss", "scenarios"])
def test_a_failed_run_keeps_the_older_file(tmp_path, inputs, case):
    bad = tmp_path / "bad.csv"
    bad.write_text("params,tokens,loss\n1e8,1e9,3.0\n")  # too few runs to fit; a spec without a budget
    out = tmp_path / ("law.json" if case == "fit" else "out.csv")
    out.write_text("older result\n")
    args = {"lookup query": ["lookup", "query", inputs / "table.parquet", "--flops", "1e19,1e27"],
            "fit": ["fit", bad],
            "target-loss": ["target-loss", "--loss", "2.2", "--law", "deepseek2024"],
            "scenarios": ["scenarios", bad]}[case]
    res = run([*args, "-o", out], ok=False)
    assert_one_line_error(res, "", 1)
    assert out.read_text() == "older result\n"
    assert leftovers(tmp_path) == sorted(["bad.csv", out.name])  # no temporary file


# ------------------------------------------------------------------------------------------ several laws, units


def test_target_loss_several_laws_rows_law_by_law_with_a_law_column():
    res = run(["target-loss", "--loss", "2.2,2.0", "--law", "hoffmann2022,kaplan2020"])
    df = pd.read_csv(io.StringIO(res.stdout))
    assert list(df.columns[:2]) == ["law", "target_loss"]
    assert df.law.tolist() == ["hoffmann2022", "hoffmann2022", "kaplan2020", "kaplan2020"]
    one = pd.read_csv(io.StringIO(run(["target-loss", "--loss", "2.2,2.0", "--law", "kaplan2020"]).stdout))
    assert df.params.tolist()[2:] == one.params.tolist()


def test_budget_in_days_on_the_command_line():
    res = run(["frontier", "--flops-range", "30", "--unit", "days", "--gpu", "H100-SXM", "--gpus", "64", "--format",
               "json"])
    row = strict_json(res.stdout)[0]
    assert row["flops"] == pytest.approx(30 * 24 * 64 * 989.4e12 * 0.4 * 3600, rel=1e-14)
    assert row["wall_days"] == pytest.approx(30.0, rel=1e-14) and row["gpu_hours"] == pytest.approx(30 * 24 * 64)
    assert row["max_params_memory"] == pytest.approx(64 * 80e9 / 16)


def test_infeasible_targets_are_rows_with_a_reason_and_a_counted_warning():
    res = run(["target-loss", "--loss", "2.2,1.6,1.5"])
    df = pd.read_csv(io.StringIO(res.stdout))
    assert df.feasible.tolist() == [True, False, False]
    assert df.infeasible_reason.isna().tolist() == [True, False, False]
    assert res.stderr.strip() == "warning: 2 of 3 targets are infeasible (feasible=false): 2 irreducible_loss"


# ------------------------------------------------------------------------------------------ partitioned runs


@pytest.mark.parametrize("extra, needle, code", [
    (["-o", "-"], "give -o DIRECTORY", 2),
    ([], "give -o DIRECTORY", 2),
    (["-o", "ds", "--format", "csv"], "written as Parquet parts", 2),
    (["-o", "ds", "--gpu", "A100"], "a partitioned frontier takes one law", 2),
    (["-o", "afile.csv"], "not csv: give -o DIRECTORY", 2),
    (["-o", "afile"], "it is a file", 1),
])
def test_partitioned_run_usage_errors(tmp_path, monkeypatch, extra, needle, code):
    monkeypatch.chdir(tmp_path)
    for name in ("afile.csv", "afile"):
        (tmp_path / name).write_text("keep\n")
    res = run(["frontier", "--flops-range", "1e18:1e22:5", "--partition-rows", "2", *extra], ok=False)
    assert_one_line_error(res, needle, code)
    assert leftovers(tmp_path) == ["afile", "afile.csv"]
    assert (tmp_path / "afile.csv").read_text() == (tmp_path / "afile").read_text() == "keep\n"


def test_partitioned_run_talks_on_stderr_warns_and_follows_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        res = run(["frontier", "--flops-range", "1e18:1e22:5", "--partition-rows", "2", "--max-params", "1e8",
                   "--max-tokens", "1e10", "-o", tmp_path / "ds"])
    finally:
        os.umask(old)
    assert res.stdout == ""
    assert "wrote 5 rows as 3 parts" in res.stderr
    assert "warning: 4 of 5 budgets are infeasible (feasible=false): 4 max_params+max_tokens" in res.stderr
    names = leftovers(tmp_path / "ds")
    assert names == ["part-000000.parquet", "part-000001.parquet", "part-000002.parquet"]
    for path in [tmp_path / "ds" / name for name in names] + [dataset.manifest_path(tmp_path / "ds")]:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    df = pd.read_parquet(tmp_path / "ds")
    assert len(df) == 5 and df.infeasible_reason.isna().sum() == 1


def test_other_writers_follow_the_umask(tmp_path, inputs):
    old = os.umask(0o022)
    try:
        run(["fit", inputs / "runs.csv", "-o", tmp_path / "law.json", "--method", "vp"])
        run(["lookup", "build", "--flops-range", "1e18:1e20", "--points-per-decade", "2", "-o", tmp_path / "t.parquet"])
        run(["scenarios", inputs / "spec.csv", "-o", tmp_path / "s.ndjson"])
    finally:
        os.umask(old)
    for name in ("law.json", "t.parquet", "s.ndjson"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name


# ------------------------------------------------------------------------------------------ start-up


def test_help_loads_no_compiled_layers():
    code = ("import sys\nfrom scalesweep.cli import cli\ntry:\n    cli(['--help'])\nexcept SystemExit as e:\n"
            "    code = e.code\nsys.stderr.write(f\"{code} {'numba' in sys.modules} {'pyarrow' in sys.modules}\")\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Commands:" in res.stdout and "frontier" in res.stdout
    assert res.stderr == "0 False False"


def test_limits_on_a_loss_at_budget_law_are_refused_or_flagged(tmp_path):
    """kaplan2020-C gives L(C) with no allocation: a limit on N or D cannot apply. The CLI refuses it up front;
    a scenario row carrying one is infeasible with reason no_allocation, and its neighbours are untouched."""
    res = run(["frontier", "--law", "kaplan2020-C", "--flops-range", "1e20:1e22:3", "--max-params", "1e9"], ok=False)
    assert_one_line_error(res, "--max-params cannot apply", 1)
    spec = tmp_path / "k.csv"
    spec.write_text("law,flops,max_params\nkaplan2020-C,1e22,1e9\nkaplan2020-C,1e22,\n")
    res = run(["scenarios", spec, "-o", tmp_path / "k.parquet"])
    assert res.exit_code == 0, res.output
    assert "1 no_allocation" in res.stderr
    df = pd.read_parquet(tmp_path / "k.parquet")
    assert df.feasible.tolist() == [False, True]
    assert df.infeasible_reason.tolist()[0] == "no_allocation" and pd.isna(df.infeasible_reason[1])
    # L(C) = (C_c / C_PF-days)^alpha (Kaplan Eq. 3.3, Table 5: C_c = 1.6e7 PF-days, alpha_C = 0.057)
    assert df.loss[1] == pytest.approx((1.6e7 / (1e22 / 8.64e19)) ** 0.057, rel=1e-12)
    assert np.isnan(df.loss[0])


def test_scenario_rows_refuse_options_they_cannot_use(tmp_path):
    for text, needle in (("flops,mfu,gpu\n1e22,0.5,A100\n1e22,0.5,\n", "row 2: mfu needs gpu or peak_tflops"),
                         ("flops,gpus,bytes_per_param,peak_tflops\n1e22,8,20,900\n",
                          "row 1: bytes_per_param needs gpus and GPU memory (gpu or gpu_memory_gb)")):
        spec = tmp_path / "s.csv"
        spec.write_text(text)
        assert_one_line_error(run(["scenarios", spec, "-o", tmp_path / "out.parquet"], ok=False), needle, 1)
        assert not (tmp_path / "out.parquet").exists()


def test_closed_stdout_is_one_line_and_files_still_work(tmp_path):
    """Started with stdout closed (``>&-``): printing data is a one-line error; -o FILE works."""
    cmd = [sys.executable, "-c", "import sys; sys.stdout = None; from scalesweep.cli import main; main()"]
    p = subprocess.run([*cmd, "frontier", "--flops-range", "1e20:1e22:3"], capture_output=True, text=True)
    assert p.returncode == 1 and p.stderr == "Error: standard output is closed: give -o FILE\n", p.stderr
    p = subprocess.run([*cmd, "frontier", "--flops-range", "1e20:1e22:3", "-o", str(tmp_path / "f.csv")],
                       capture_output=True, text=True)
    assert p.returncode == 0 and (tmp_path / "f.csv").read_text().count("\n") == 4, p.stderr


@pytest.mark.parametrize("args", [[], ["plot"], ["lookup"]])
def test_a_bare_group_prints_its_help_on_stderr(args):
    p = subprocess.run([sys.executable, "-m", "scalesweep", *args], capture_output=True, text=True)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.startswith("Usage: ") and "Error" not in p.stderr and "Commands:" in p.stderr


@pytest.mark.parametrize("args, needle", [
    (["frontier", "--law", "", "--flops-range", "1e20:1e22:3"], "--law is empty"),
    (["frontier", "--law", "hoffmann2022,", "--flops-range", "1e20:1e22:3"], "an empty name in the law list"),
    (["isoflop-sim", "--budgets", "6e18:3e21:3", "--format", "csv"], "--format applies to the per-trial table"),
    (["compare", "--flops", "1e22,-1"], "--flops: value #2 is -1.0"),
    (["frontier", "--flops-range", "1e20:1e22:3", "--partition-rows", "2", "-o", "ds.csv"],
     "a directory of Parquet parts, not csv"),
])
def test_empty_or_ineffective_values_are_refused(args, needle):
    assert_one_line_error(run(args, ok=False), needle)


def test_bands_refuse_limits_they_would_not_apply(inputs, tmp_path):
    law = tmp_path / "law.json"
    run(["fit", inputs / "runs.csv", "--bootstrap", "3", "-o", law])
    base = ["frontier", "--law-file", law, "--flops-range", "1e20:1e22:3", "--bands", "10,90"]
    for extra, needle in ((["--gpu", "A100", "--gpus", "8"], "not --gpus (a memory limit)"),
                          (["--unique-tokens", "1e10"], "not --unique-tokens")):
        assert_one_line_error(run([*base, *extra], ok=False), needle, 2)
    res = run([*base, "--max-params", "1e9"])  # a frontier limit applies to every sample
    assert "params_p10" in res.stdout.splitlines()[0]
