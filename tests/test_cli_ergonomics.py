"""A command line that reads like its users: sizes with suffixes, GPU names and law aliases in any case,
did-you-mean suggestions, SCALESWEEP_* environment defaults, `python -m scalesweep`, -q/-v through logging,
the compile notice and `scalesweep warmup`, shell completion, and help in sections with examples."""

import io
import json
import logging
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import scalesweep as ss
from scalesweep import cli as C
from scalesweep import options as O
from scalesweep import units
from scalesweep.errors import ScalesweepError
from scalesweep.grid import parse_range
from scalesweep.validate import parse_size, suggest

from .helpers import assert_one_line_error, run

FRONTIER = ["frontier", "--flops-range", "1e20:1e24:5"]
NOTICE = "compiling kernels once; later runs start in about a second"


@pytest.fixture(autouse=True)
def _all_threads():
    """--threads 1 and SCALESWEEP_THREADS=1 last for the process: give the tests that follow every thread."""
    yield
    numba = sys.modules.get("numba")
    if numba is not None:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def invoke(args, env=None):
    return CliRunner().invoke(C.cli, [str(a) for a in args], env=env, catch_exceptions=False)


# ------------------------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("text, decimal", [
    ("7B", "7e9"), ("7b", "7e9"), ("1.5T", "1.5e12"), ("1.5t", "1.5e12"), ("350M", "350e6"), ("70k", "70e3"),
    ("70K", "70e3"), ("0.1B", "0.1e9"), (".5T", ".5e12"), ("2.5e3M", "2.5e9"), ("1e-3T", "1e9"), ("+3k", "3e3"),
    ("4.1M", "4.1e6"), ("4.1B", "4.1e9"), ("4.1T", "4.1e12"), (" 7B ", "7e9"), ("6e23", "6e23"), ("1e20", "1e20"),
    ("12", "12"), ("-7B", "-7e9"),
])
def test_a_size_is_the_float_of_the_decimal_it_stands_for(text, decimal):
    assert parse_size(text) == float(decimal)


def test_suffixes_are_read_as_decimals_not_multiplied():
    """4.1 x 1e9 rounds to 4099999999.9999995; the decimal 4.1e9 is 4100000000 exactly."""
    assert 4.1 * 1e9 != 4.1e9 and parse_size("4.1B") == 4.1e9 == 4_100_000_000


@pytest.mark.parametrize("text", ["7X", "B", "k", "7 B", "7BB", "7B7", "1.2.3M", "seven", "", "0x10", "7e"])
def test_what_is_not_a_size_is_refused(text):
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize("value, needle, code", [
    ("7X", "'7X' is not a number (a size may end in K, M, B or T", 2),
    ("B", "'B' is not a number", 2),
    ("-7B", "--max-params must be a finite number > 0, got '-7B'", 1),
    ("0B", "--max-params must be a finite number > 0, got '0B'", 1),
    ("1e400", "--max-params must be a finite number > 0, got '1e400'", 1),
    ("1e300T", "--max-params must be a finite number > 0, got '1e300T'", 1),
    ("nan", "--max-params must be a finite number > 0", 1),
])
def test_bad_sizes_on_the_command_line(value, needle, code):
    assert_one_line_error(invoke([*FRONTIER, "--max-params", value]), needle, code)


def test_size_options_give_what_the_exponent_form_gives(tmp_path):
    with_suffix = invoke([*FRONTIER, "--max-params", "7B", "--min-tokens", "1.5T", "--unique-tokens", "2.5t",
                          "--inference-tokens", "10T"]).stdout
    plain = invoke([*FRONTIER, "--max-params", "7e9", "--min-tokens", "1.5e12", "--unique-tokens", "2.5e12",
                    "--inference-tokens", "1e13"]).stdout
    assert with_suffix == plain and len(with_suffix.splitlines()) == 6
    run([*FRONTIER, "--max-params", "70B", "-o", tmp_path / "f.parquet"])
    meta = json.loads(pq.read_metadata(tmp_path / "f.parquet").metadata[b"scalesweep"])
    assert meta["constraints"] == {"max_params": 7e10}
    target = invoke(["target-loss", "--loss", "2.0", "--max-params", "1B"]).stdout
    assert target == invoke(["target-loss", "--loss", "2.0", "--max-params", "1e9"]).stdout


def test_ranges_and_lists_take_sizes():
    assert np.array_equal(parse_range("1B:70B:10").values(), parse_range("1e9:7e10:10").values())
    assert parse_range("1B:70B:10").lo == 1e9 and parse_range("1B:70B:10").hi == 7e10
    surface = ["surface", "--tokens-range", "1B:1T:3", "--params-range"]
    assert invoke([*surface, "100M:10B:4"]).stdout == invoke([*surface, "1e8:1e10:4"]).stdout
    assert invoke(["compare", "--flops", "1e24,6000000T"]).stdout == invoke(["compare", "--flops", "1e24,6e18"]).stdout
    sim = ["isoflop-sim", "--budgets", "6e18:3e21:3", "--target-flops"]
    assert invoke([*sim, "1000000000T"]).stdout == invoke([*sim, "1e21"]).stdout


@pytest.mark.parametrize("args, needle", [
    (["frontier", "--flops-range", "1e20:1e24:5k"], "COUNT must be a whole number, got '5k'"),
    (["frontier", "--flops-range", "1e20:7X:5"], "--flops-range: HI '7X' is not a number"),
    (["compare", "--flops", "1e24,7X"], "--flops: '7X' is not a number"),
    (["target-loss", "--loss", "2k"], "--loss: '2k' is not a number"),  # a loss is not a size
])
def test_counts_and_non_sizes_take_no_suffix(args, needle):
    assert_one_line_error(invoke(args), needle, 1)


def test_option_objects_and_the_row_limit_take_sizes():
    assert O.Constraints(max_params="7B", min_tokens="1.5T").as_dict() == {"max_params": 7e9, "min_tokens": 1.5e12}
    assert O.Workload(inference_tokens="10t").inference_tokens == 1e13
    with pytest.raises(ScalesweepError, match="--mfu must be a number"):
        O.Hardware(gpu="A100", mfu="1k")  # a fraction is not a size
    assert_one_line_error(invoke(["--max-rows", "1k", "frontier", "--flops-range", "1e20:1e22:1001"]),
                          "over the limit of 1,000 rows", 1)
    assert invoke(["--max-rows", "1k", "frontier", "--flops-range", "1e20:1e22:1000"]).exit_code == 0


# ------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize("name, preset", [
    ("h100", "H100-SXM"), ("H100", "H100-SXM"), ("h100-sxm5", "H100-SXM"), ("H100 SXM", "H100-SXM"),
    ("h100_pcie", "H100-PCIe"), ("a100", "A100"), ("A100-80GB", "A100"), ("a100-sxm4-80gb", "A100"),
    ("h200-sxm", "H200"), (" H200 ", "H200"),
])
def test_gpu_names_and_aliases_in_any_case(name, preset):
    assert units.gpu_preset(name).name == preset


def test_a_gpu_alias_gives_the_presets_numbers_on_the_command_line():
    args = [*FRONTIER, "--gpus", "8", "--gpu"]
    out = invoke([*args, "h100"]).stdout
    assert out == invoke([*args, "H100-SXM"]).stdout and "gpu_hours" in out.splitlines()[0]
    # 1e20 FLOPs / (989.4e12 * 0.4 * 3600 FLOPs per GPU-hour), the H100 SXM datasheet peak at 40% MFU
    first = pd.read_csv(io.StringIO(out)).gpu_hours[0]
    assert first == pytest.approx(1e20 / (989.4e12 * 0.4 * 3600), rel=1e-12)


@pytest.mark.parametrize("name, closest", [("H10-SXM", "H100-SXM"), ("h10-sxm", "H100-SXM"), ("H100-PCI", "H100-PCIe"),
                                           ("a10", "A100")])
def test_unknown_gpu_names_suggest_the_closest(name, closest):
    assert_one_line_error(invoke([*FRONTIER, "--gpu", name]), f"unknown GPU {name!r}; did you mean {closest!r}?", 1)


def test_suggestions_ignore_case():
    assert suggest("MAX_PARAM", ["max_params", "min_params"]) == "; did you mean 'max_params'?"
    assert suggest("zzz", ["max_params"]) == ""


def test_law_names_pass_through_to_laws_in_any_case():
    """Aliases and case are the laws module's; the command line hands the name over unchanged."""
    ref = invoke([*FRONTIER, "--law", "hoffmann2022"]).stdout
    assert invoke([*FRONTIER, "--law", "HOFFMANN2022"]).stdout == ref
    assert invoke([*FRONTIER, "--law", "chinchilla"]).stdout == ref
    assert invoke([*FRONTIER, "--law", "Epoch"]).stdout == invoke([*FRONTIER, "--law", "besiroglu2024"]).stdout
    assert_one_line_error(invoke([*FRONTIER, "--law", "chinchila"]), "did you mean 'chinchilla'?", 1)


# ------------------------------------------------------------------------------------------- environment


def test_environment_defaults(tmp_path):
    kaplan = invoke([*FRONTIER, "--law", "kaplan2020"]).stdout
    assert invoke(FRONTIER, env={"SCALESWEEP_LAW": "kaplan2020"}).stdout == kaplan
    hoffmann = invoke(FRONTIER).stdout
    assert invoke([*FRONTIER, "--law", "hoffmann2022"], env={"SCALESWEEP_LAW": "kaplan2020"}).stdout == hoffmann
    law_file = tmp_path / "law.json"
    law_file.write_text(json.dumps({"preset": "besiroglu2024"}))  # a law file beats the environment's law
    assert invoke([*FRONTIER, "--law-file", law_file], env={"SCALESWEEP_LAW": "kaplan2020"}).stdout == \
        invoke([*FRONTIER, "--law", "besiroglu2024"]).stdout

    gpu = invoke([*FRONTIER, "--gpu", "H100-SXM", "--gpus", "8"]).stdout
    assert invoke([*FRONTIER, "--gpus", "8"], env={"SCALESWEEP_GPU": "h100"}).stdout == gpu
    custom = invoke([*FRONTIER, "--peak-tflops", "500", "--gpus", "8"]).stdout  # a custom GPU beats the default
    assert invoke([*FRONTIER, "--peak-tflops", "500", "--gpus", "8"], env={"SCALESWEEP_GPU": "H200"}).stdout == custom
    res = invoke([*FRONTIER, "--partition-rows", "2", "-o", tmp_path / "ds"], env={"SCALESWEEP_GPU": "H100"})
    assert res.exit_code == 0, res.output  # a partitioned frontier takes no hardware: the default gives way
    # ... even a default that names no GPU: it is not used, so it is not checked
    assert invoke([*FRONTIER, "--peak-tflops", "500", "--gpus", "8"], env={"SCALESWEEP_GPU": "H10"}).stdout == custom
    res = invoke([*FRONTIER, "--partition-rows", "2", "-o", tmp_path / "ds2"], env={"SCALESWEEP_GPU": "H10"})
    assert res.exit_code == 0, res.output
    assert_one_line_error(invoke([*FRONTIER, "--gpus", "8"], env={"SCALESWEEP_GPU": "H10"}),
                          "SCALESWEEP_GPU='H10' (the default of --gpu): unknown GPU 'H10'; did you mean", 1)
    assert_one_line_error(invoke([*FRONTIER, "--gpu", "H10"], env={"SCALESWEEP_GPU": "H100"}),
                          "unknown GPU 'H10'", 1)  # the command line's own value is checked as it is read

    res = invoke(["-v", *FRONTIER], env={"SCALESWEEP_THREADS": "1"})
    assert res.exit_code == 0 and "numba threads: 1" in res.stderr
    assert_one_line_error(invoke(["frontier", "--flops-range", "1e20:1e22:6"], env={"SCALESWEEP_MAX_ROWS": "5"}),
                          "over the limit of 5 rows", 1)


@pytest.mark.parametrize("var, value, needle", [
    ("SCALESWEEP_THREADS", "abc", "'abc' is not a valid integer"),
    ("SCALESWEEP_THREADS", "0", "--threads must be between 1 and"),
    ("SCALESWEEP_GPU", "H10", "unknown GPU 'H10'; did you mean"),
    ("SCALESWEEP_LAW", "chinchila", "unknown law 'chinchila'"),
    ("SCALESWEEP_LAW", "hoffmann2022,nope", "unknown law 'nope'"),
    ("SCALESWEEP_MAX_ROWS", "many", "'many' is not a number"),
])
def test_a_bad_environment_value_is_one_line_naming_the_variable(var, value, needle):
    res = invoke(["target-loss", "--loss", "2.0"], env={var: value})
    assert_one_line_error(res, f"Error: {var}={value!r} (the default of --", 1)
    assert needle in res.stderr


def test_help_shows_the_environment_variables():
    text = " ".join(invoke(["frontier", "--help"]).stdout.split())
    for var in ("SCALESWEEP_LAW", "SCALESWEEP_GPU", "SCALESWEEP_THREADS"):
        assert f"[env var: {var}]" in text
    top = invoke(["--help"]).stdout
    for var in ("SCALESWEEP_LAW", "SCALESWEEP_GPU", "SCALESWEEP_THREADS", "SCALESWEEP_MAX_ROWS"):
        assert var in top


# ------------------------------------------------------------------------------------------- python -m, -q, -v


def test_python_m_scalesweep():
    p = subprocess.run([sys.executable, "-m", "scalesweep", "--version"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and ss.__version__ in p.stdout
    p = subprocess.run([sys.executable, "-m", "scalesweep", "frontier", "--flops-range", "1e20:1e22:3",
                        "--max-params", "1B"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("flops,params,tokens") and len(lines) == 4
    assert float(lines[-1].split(",")[1]) == 1e9  # 1e22 FLOPs wants more than 1B params: the limit binds
    p = subprocess.run([sys.executable, "-m", "scalesweep", "frontier", "--max-params", "7X"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and p.stderr.startswith("Error: ") and len(p.stderr.splitlines()) == 1


def test_quiet_and_verbose(tmp_path):
    out = tmp_path / "f.parquet"
    assert invoke([*FRONTIER, "-o", out]).stderr == f"wrote 5 budgets to {out}\n"
    assert invoke(["-q", *FRONTIER, "-o", out]).stderr == ""
    infeasible = [*FRONTIER, "--max-params", "1e6", "--max-tokens", "1e6", "-o", out]
    res = invoke(["-q", *infeasible])  # warnings still print
    assert res.stderr == "warning: 5 of 5 budgets are infeasible (feasible=false): 5 max_params+max_tokens\n"
    assert_one_line_error(invoke(["-q", *FRONTIER, "--max-params", "-1"]), "--max-params must be", 1)  # errors too
    res = invoke(["-v", *FRONTIER, "--threads", "1", "-o", out])
    debug = [line for line in res.stderr.splitlines() if line.startswith("debug: ")]
    assert "debug: numba threads: 1" in debug
    assert any(line.startswith("debug: wrote a chunk of 5 budgets") for line in debug)
    assert any(line.startswith("debug: ") and " frontier took " in line for line in debug)
    assert f"wrote 5 budgets to {out}" in res.stderr.splitlines()
    assert_one_line_error(invoke(["-q", "-v", *FRONTIER]), "give -q or -v, not both", 2)
    for option in C.GROUP_OPTIONS:  # scalesweep's own options after the command: where they go
        assert_one_line_error(invoke([*FRONTIER, option]), f"({option} goes before the command: scalesweep "
                              f"{option} COMMAND ...)", 2)
    assert set(C.GROUP_OPTIONS) == {o for p in C.cli.params for o in p.opts} - {"--version"}
    assert "goes before" not in invoke([*FRONTIER, "--no-such"]).stderr


def test_messages_go_through_the_scalesweep_logger(tmp_path):
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append((record.name, record.levelno, record.getMessage()))

    keep = Keep()
    logging.getLogger("scalesweep").addHandler(keep)
    try:
        invoke([*FRONTIER, "--max-params", "1e6", "--max-tokens", "1e6", "-o", tmp_path / "f.parquet"])
    finally:
        logging.getLogger("scalesweep").removeHandler(keep)
    assert ("scalesweep", logging.INFO, f"wrote 5 budgets to {tmp_path / 'f.parquet'}") in records
    assert ("scalesweep", logging.WARNING,
            "5 of 5 budgets are infeasible (feasible=false): 5 max_params+max_tokens") in records


# ------------------------------------------------------------------------------------------- compiling


def test_the_first_compile_says_so_once(monkeypatch):
    """Two compiles of a scalesweep kernel (two signatures) give one notice; a function of another package none."""
    import numba

    def probe(x):
        return x + 1

    def other(x):
        return x - 1

    probe.__module__ = "scalesweep.kernels.probe"
    other.__module__ = "somewhere.else"
    monkeypatch.setattr(C, "_compiled", [])
    C._watch_compiles()
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    keep, logger = Keep(), logging.getLogger("scalesweep")
    old = logger.level
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    try:
        numba.njit(cache=False)(other)(1)
        assert records == [] and C._compiled == []
        f = numba.njit(cache=False)(probe)
        assert f(1) == 2 and f(1.5) == 2.5
    finally:
        logger.removeHandler(keep)
        logger.setLevel(old)
    assert records.count(NOTICE) == 1
    assert C._compiled == ["scalesweep.kernels.probe.test_the_first_compile_says_so_once.<locals>.probe"] * 2


def test_warmup_needs_a_cache(monkeypatch):
    from scalesweep import kernels

    monkeypatch.setattr(kernels, "CACHE", False)
    assert_one_line_error(invoke(["warmup"]), "set NUMBA_CACHE_DIR to a writable directory", 1)


def _run_cold(args, cache, cwd):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    p = subprocess.run([sys.executable, "-m", "scalesweep", *map(str, args)], capture_output=True, text=True, env=env,
                       cwd=cwd, timeout=600)
    assert p.returncode == 0, p.stderr
    return p.stderr


@pytest.mark.slow
def test_warmup_compiles_what_every_command_needs(tmp_path):
    """In an empty numba cache: the first command says it compiles, once; warmup compiles the rest; afterwards
    no command compiles anything (-v names every kernel compiled) and warmup only loads."""
    cache = tmp_path / "cache"
    err = _run_cold(["frontier", "--flops-range", "1e20:1e22:3"], cache, tmp_path)
    assert err.splitlines().count(NOTICE) == 1, err
    assert NOTICE not in _run_cold(["frontier", "--flops-range", "1e20:1e22:3"], cache, tmp_path)
    err = _run_cold(["warmup"], cache, tmp_path)
    assert err.splitlines()[-1].startswith("kernels ready in ") and "compiled" in err.splitlines()[-1], err
    law = ss.get_law("hoffmann2022")
    n, d = np.repeat(np.geomspace(3e7, 3e9, 4), 4), np.tile(np.geomspace(3e9, 3e11, 4), 4)
    pd.DataFrame({"params": n, "tokens": d, "loss": law.loss(n, d)}).to_csv(tmp_path / "runs.csv", index=False)
    (tmp_path / "sweep.yaml").write_text("law: [hoffmann2022, kaplan2020]\nflops: 1e20:1e24:5\n"
                                         "max_params: [1e9, 1e11]\n")
    commands = [
        ["frontier", "--flops-range", "1e18:1e26:9", "--max-params", "70B", "--gpu", "H100", "--gpus", "64",
         "--unit", "gpu_hours", "--usd-per-gpu-hour", "2"],
        ["frontier", "--law", "muennighoff2023", "--flops-range", "1e21:1e25:5", "--unique-tokens", "1e11"],
        ["target-loss", "--loss", "2.2,1.9,1.0", "--inference-tokens", "1e13"],
        ["surface", "--params-range", "1e7:1e12:50", "--tokens-range", "1e9:1e14:50", "--dtype", "float32",
         "-o", "s.parquet"],
        ["fit", "runs.csv", "-o", "law.json", "--method", "vp", "--bootstrap", "20"],
        ["fit", "runs.csv", "-o", "law.json", "--objective", "lad", "--bootstrap", "20"],
        ["frontier", "--law-file", "law.json", "--flops-range", "1e20:1e24:5", "--bands", "5,95"],
        ["scenarios", "sweep.yaml", "-o", "sc.parquet"],
        ["lookup", "build", "--flops-range", "1e18:1e24", "-o", "t.parquet"],
        ["resolution", "--flops-range", "1e19:1e23:20", "--points-per-decade", "4,8"],
        ["isoflop-sim", "--budgets", "6e18:3e21:9", "--noise", "0.005", "--trials", "5"],
        ["compare", "--flops", "1e24"],
    ]
    for args in commands:
        err = _run_cold(["-v", *args], cache, tmp_path)
        assert "compiling" not in err, (args, err)
    err = _run_cold(["warmup"], cache, tmp_path)
    assert err.splitlines()[-1].endswith("(all loaded from numba's cache)"), err


# ------------------------------------------------------------------------------------------- completion


def complete(words, env_extra=None):
    """What bash completion offers for the last word, asked the way click's own tests ask."""
    env = {"_SCALESWEEP_COMPLETE": "bash_complete", "COMP_WORDS": " ".join(words), "COMP_CWORD": str(len(words) - 1)}
    res = CliRunner().invoke(C.cli, [], env={**env, **(env_extra or {})}, prog_name="scalesweep")
    assert res.exit_code == 0, res.output
    return {line.split(",", 1)[1] for line in res.stdout.splitlines()}


def test_law_and_gpu_values_complete():
    assert complete(["scalesweep", "frontier", "--law", "hoffmann2022-"]) == {"hoffmann2022-printed"}
    assert complete(["scalesweep", "frontier", "--law", "kaplan2020-"]) == {
        "kaplan2020-steps", "kaplan2020-table6", "kaplan2020-N", "kaplan2020-D", "kaplan2020-Cmin", "kaplan2020-C"}
    assert "chinchilla" in complete(["scalesweep", "frontier", "--law", "CHIN"])  # an alias, any case
    assert "epoch" in complete(["scalesweep", "surface", "--law", "ep"])
    several = complete(["scalesweep", "frontier", "--law", "hoffmann2022,muenn"])
    assert "hoffmann2022,muennighoff2023" in several and all(s.startswith("hoffmann2022,muenn") for s in several)
    assert complete(["scalesweep", "frontier", "--gpu", "h1"]) == {"H100-SXM", "H100-PCIe", "H100-NVL", "H100", "H100-SXM5"}
    assert complete(["scalesweep", "target-loss", "--gpu", "H2"]) == {"H200", "H200-SXM"}
    assert "besiroglu2024,hoffmann2022" in complete(["scalesweep", "compare", "--laws", "besiroglu2024,hoff"])
    assert complete(["scalesweep", "war"]) == {"warmup"}


def test_completion_from_the_installed_command():
    script = os.path.join(os.path.dirname(sys.executable), "scalesweep")
    if not os.path.exists(script):
        pytest.skip("the scalesweep console script is not installed beside this python")
    env = {**os.environ, "_SCALESWEEP_COMPLETE": "bash_source"}
    p = subprocess.run([script], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0 and "_scalesweep_completion()" in p.stdout
    assert "complete -o nosort -F _scalesweep_completion scalesweep" in p.stdout
    env = {**os.environ, "_SCALESWEEP_COMPLETE": "bash_complete", "COMP_WORDS": "scalesweep frontier --gpu a1",
           "COMP_CWORD": "3"}
    p = subprocess.run([script], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0 and p.stdout.splitlines() == ["plain,A100", "plain,A100-40GB", "plain,A100-80GB", "plain,A100-SXM4-80GB", "plain,A100-SXM4-40GB"]


# ------------------------------------------------------------------------------------------- help


def test_frontier_help_is_in_sections():
    text = invoke(["frontier", "-h"]).stdout
    heads = ["Law:", "Budget:", "Limits:", "Hardware:", "Data and inference:", "Solver:", "Output:", "Scale-out:",
             "Other options:", "Examples:"]
    at = [text.index("\n" + h + "\n") for h in heads]
    assert at == sorted(at), "sections out of order"
    assert "\nOptions:\n" not in text

    def section_of(flag):
        i = next(m.start() for m in re.finditer(rf"\n  (-\w, )?{flag} ", text) if m.start() > at[0])
        return max((a, h) for a, h in zip(at, heads, strict=True) if a < i)[1]

    expected = {"--law": "Law:", "--set": "Law:", "--flops-range": "Budget:", "--unit": "Budget:",
                "--max-params": "Limits:", "--max-overfit": "Limits:", "--gpu": "Hardware:", "--mfu": "Hardware:",
                "--unique-tokens": "Data and inference:", "--bands": "Solver:", "--format": "Output:",
                "--threads": "Scale-out:", "--engine": "Scale-out:", "--help": "Other options:"}
    assert {flag: section_of(flag) for flag in expected} == expected
    assert "--max-params SIZE" in text and "--min-tokens-per-param FLOAT" in text


def _commands(group, path=()):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))
        else:
            yield (*path, name), cmd


@pytest.mark.parametrize("path", [p for p, _ in _commands(C.cli)], ids=" ".join)
def test_every_command_has_examples_that_parse(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    cmd = C.cli
    for name in path:
        cmd = cmd.commands[name]
    help_text = invoke([*path, "--help"]).stdout
    assert "\nExamples:\n" in help_text
    assert cmd.examples
    for example in cmd.examples:
        words = shlex.split(example)
        words = words[next(i for i, w in enumerate(words) if w == "scalesweep"):]  # VAR=value prefixes
        words = words[:words.index(">")] if ">" in words else words
        assert words[:len(path) + 1] == ["scalesweep", *path], example
        assert f"  {example}\n" in help_text
        with click.Context(C.cli, info_name="scalesweep") as parent:
            cmd.make_context(" ".join(path), words[len(path) + 1:], parent=parent)  # raises on a bad option or value


def test_help_loads_no_compiled_layers():
    code = ("import sys\nfrom scalesweep.cli import cli\nfor args in (['--help'], ['frontier', '-h']):\n"
            "    try:\n        cli(args)\n    except SystemExit:\n        pass\n"
            "    sys.stderr.write(f\"{'numba' in sys.modules} {'pyarrow' in sys.modules} \")\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stderr == "False False False False ", res.stderr


def test_a_law_file_and_its_table_cannot_share_a_name(tmp_path):
    root = Path(__file__).resolve().parents[1]
    runs = root / "data" / "example_isoflop_runs.csv"
    for command in ("fit-isoflop", "fit-envelope"):
        data = runs if command == "fit-isoflop" else root / "data" / "example_training_curves.csv"
        law = tmp_path / "l.json"
        law.write_text("{}")
        res = invoke([command, data, "-o", law, "--table", tmp_path / "." / "l.json", "--bootstrap", "0"])
        assert_one_line_error(res, "-o and --table name the same file", 2)
        assert law.read_text() == "{}"
