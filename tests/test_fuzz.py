"""Hypothesis fuzzing of the command line: arguments and input files drawn from a mix of valid and hostile values.

The property, for every drawn command line (always run as ``scalesweep --max-rows 100000 ...``, so that a
drawn huge count is refused fast):

* either it succeeds (exit 0, no exception) and a requested output exists and reads back with the matching
  reader (``pyarrow.parquet.read_table``, ``pandas.read_csv``, ``json.load``, ...), a partitioned dataset
  being a directory that ``pyarrow.parquet.read_table`` reads, and a table printed to stdout parses as CSV;
* or it fails with exit status 1 or 2 and exactly one line on stderr starting with ``Error: ``, no
  ``Traceback`` anywhere, the output not created (an output that existed before is left as it was);

and in both cases no ``*.tmp`` file is left behind in the working directory.

The CLI runs in process (CliRunner), so a crash of the interpreter inside the command (a segfault in a
writer) ends the whole pytest run; pytest's faulthandler then prints where it happened. Hypothesis draws
differently on every run; ``--hypothesis-seed=N`` repeats one, ``SCALESWEEP_FUZZ_SCALE=10`` runs ten times
the examples.

Commands: frontier, target-loss, surface, scenarios (generated YAML / TOML / CSV / Parquet specs), lookup
build, compare and fit (generated runs files). Each test draws its own command so that a failure names it.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import traceback

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scalesweep.cli import cli

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck))
# SCALESWEEP_FUZZ_SCALE=10 runs ten times the examples (for hunting; the default keeps the file near 10 s).
SCALE = float(os.environ.get("SCALESWEEP_FUZZ_SCALE", "1"))




def examples(n):
    return max(1, round(n * SCALE))


T = "@TMP@"  # placeholder for the per-example temporary directory in arguments and file names

PRESETS = ["hoffmann2022", "hoffmann2022-printed", "besiroglu2024", "kaplan2020", "kaplan2020-steps",
           "deepseek2024", "llama3_2024", "porian2024_tuned", "kaplan2020-table6", "kaplan2020-N",
           "kaplan2020-D", "kaplan2020-Cmin", "kaplan2020-C", "muennighoff2023"]
HOSTILE_NUMBERS = ["nan", "NaN", "inf", "-inf", "-1", "0", "-0", "1e400", "-1e400", "", " ", "abc", "1e20:",
                   "0x10", "1_000", "1e-400", "5e-324", "1e308", "--", "1,2", "\x00", "٣"]
HOSTILE_RANGES = ["1e20:", ":1e22", "a:b:c", "1e20:1e22:1e12", "1e20:1e22:1000000000000",
                  "1e20:1e22:99999999999999999999999", "1e20:1e22:200000", "1e20:1e22:0", "1e20:1e22:-3",
                  "1e22:1e20:3", "nan:1e22:3", "1e20:nan:3", "1e20:inf:3", "-inf:1e20:3", "1e20:1e22:3.5",
                  "1e20:1e22:nan", "", "::", ":::", "1e20:1e22:3:4", "1e400:1e401:2", "0:1e20:3",
                  "-1e20:1e20:3", "1e20:1e22:1", "1e20", "1e20:1e20:5", " 1e20 : 1e22 : 3 ", "1e20:1e22:+3",
                  "1e20:1e22:3e0", "5e-324:1e-300:3", "1e300:1e308:3", "1e20:1e22:\x00"]
HOSTILE_LAWS = ["chinchila", "", ",", "hoffmann2022,", ",hoffmann2022", "HOFFMANN2022", "hoffmann2022,,kaplan2020",
                "chinchilla", "kaplan2020-C", "muennighoff2023", "kaplan2020-N", "deepseek2024", "a" * 300,
                "hoffmann2022,hoffmann2022", "hoffmann2022 "]
HOSTILE_OPTIONS = [["--bogus"], ["--flops-rnage", "1e20:1e22:3"], ["-x"], ["--max-rows", "5"], ["--"],
                   ["--law"], ["--set", "alpha"], ["--set", "=1"], ["--set", "zeta=1"], ["--set", "alpha=nan"],
                   ["--set", "alpha="], ["--set", "E=-1"], ["--set", "alpha=0.35=1"], ["--threads", "0"],
                   ["--threads", "-1"], ["--threads", "abc"], ["--threads", "100000"], ["--format", "xlsx"],
                   ["--engine", "spark"], ["--partition-rows", "0"], ["--partition-rows", "-5"],
                   ["--partition-rows", "1e3"], ["--help-me"], ["extra-positional"]]
CONSTRAINTS = ["--min-params", "--max-params", "--min-tokens", "--max-tokens", "--min-tokens-per-param",
               "--max-tokens-per-param", "--max-overfit"]
HARDWARE = ["--gpu", "--peak-tflops", "--gpu-memory-gb", "--mfu", "--gpus", "--usd-per-gpu-hour",
            "--bytes-per-param", "--max-days", "--unique-tokens", "--inference-tokens"]
VALID_HW = {"--gpu": ["A100", "h100-sxm", "H200"], "--peak-tflops": ["312", "989.4"], "--gpu-memory-gb": ["40", "80"],
            "--mfu": ["0.4", "1", "0.05"], "--gpus": ["1", "8", "512"], "--usd-per-gpu-hour": ["2.5"],
            "--bytes-per-param": ["16", "2"], "--max-days": ["30", "0.5"], "--unique-tokens": ["1e11", "5e12"],
            "--inference-tokens": ["0", "1e13"]}
HOSTILE_HW = {"--gpu": ["B200", "", "a100 ", "H100"], "--gpus": ["0", "-8", "1.5", "1e12", "99999999999999999999"]}
TABLE_SUFFIXES = [".parquet", ".pq", ".csv", ".json", ".jsonl", ".ndjson", ".arrow", ".feather", ".ipc", ".txt",
                  ".xyz", "", ".PARQUET", ".parquet.gz", ".tmp"]
FORMATS = ["parquet", "csv", "jsonl", "json", "arrow", "table"]
SENTINEL = b"older file of the target name\n"
SUFFIX_FORMAT = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                 ".json": "json", ".arrow": "arrow", ".feather": "arrow", ".ipc": "arrow", ".txt": "table"}


# ------------------------------------------------------------------------------------------ strategies
#
# Every case strategy first draws `h`: False gives a clean command line (valid values, a fresh output, good
# files), so that the success side of the property is exercised too; True mixes in hostile values.


def rare(draw, h, k):
    """True about once in `k` draws, and only in hostile mode."""
    return h and draw(st.integers(0, k - 1)) == 0


def pick(draw, h, valid, hostile, weight=3):
    """A value from `valid`, or in hostile mode one time in `weight + 1` from `hostile`."""
    if h and draw(st.integers(0, weight)) == 0:
        return draw(st.sampled_from(hostile))
    return draw(valid if isinstance(valid, st.SearchStrategy) else st.sampled_from(valid))


def _fmt(x: float) -> str:
    return f"{x:.6g}"


@st.composite
def log_range(draw, h, lo=(7.0, 24.0), max_count=50):
    """``LO:HI:COUNT``: valid (COUNT <= max_count), or in hostile mode sometimes malformed or huge."""
    if rare(draw, h, 3):
        return draw(st.sampled_from(HOSTILE_RANGES))
    a = draw(st.floats(*lo))
    count = draw(st.integers(1, max_count))
    b = a if count == 1 else a + draw(st.floats(0.01, 4.0))
    return f"{_fmt(10 ** a)}:{_fmt(10 ** b)}:{count}"


@st.composite
def law_args(draw, h, many=True, valid=PRESETS[:6]):
    args = []
    if draw(st.booleans()):
        good = st.sampled_from(valid)
        if many:
            good = st.one_of(good, st.lists(st.sampled_from(valid), min_size=2, max_size=3, unique=True).map(",".join))
        args += ["--law", pick(draw, h, good, HOSTILE_LAWS)]
    if draw(st.integers(0, 5)) == 0:
        args += ["--set", pick(draw, h, ["alpha=0.35", "beta=0.3", "E=1.8"],
                               ["alpha=nan", "zeta=1", "E=-1", "alpha=1e400", "A=0", "alpha", "N_c=1e13"], weight=1)]
    return args


CLEAN_CONSTRAINTS = [[], [], ["--max-params", "7e10"], ["--min-params", "7e9", "--max-params", "7e9"],
                     ["--max-tokens", "2e12"], ["--min-tokens-per-param", "10", "--max-tokens-per-param", "100"],
                     ["--max-overfit", "0.05"], ["--max-params", "1e8", "--max-tokens", "1e9"]]
CLEAN_HARDWARE = [[], [], ["--gpu", "A100"], ["--gpu", "h100-sxm", "--gpus", "512", "--usd-per-gpu-hour", "2.5"],
                  ["--gpu", "H200", "--gpus", "64", "--max-days", "30"], ["--unique-tokens", "1e11"],
                  ["--inference-tokens", "1e13"], ["--peak-tflops", "500", "--mfu", "0.5"]]


@st.composite
def constraint_args(draw, h):
    if not h:
        return list(draw(st.sampled_from(CLEAN_CONSTRAINTS)))
    args = []
    for flag in draw(st.lists(st.sampled_from(CONSTRAINTS), max_size=2, unique=True)):
        valid = {"--max-overfit": ["0.02", "0.1"], "--min-tokens-per-param": ["1", "20"],
                 "--max-tokens-per-param": ["20", "100"]}.get(flag, ["1e8", "7e9", "1e11", "2e12"])
        args += [flag, pick(draw, h, valid, HOSTILE_NUMBERS)]
    return args


@st.composite
def hardware_args(draw, h):
    if not h:
        return list(draw(st.sampled_from(CLEAN_HARDWARE)))
    args = []
    for flag in draw(st.lists(st.sampled_from(HARDWARE), max_size=3, unique=True)):
        args += [flag, pick(draw, h, VALID_HW[flag], HOSTILE_HW.get(flag, []) + HOSTILE_NUMBERS, weight=1)]
    return args


@st.composite
def output_args(draw, h, suffixes=TABLE_SUFFIXES, required=False, formats=FORMATS, partition=False):
    """The -o part of a command line; returns (args, output description)."""
    kinds = ["fresh", "fresh", "fresh", "existing"]
    if h:
        kinds += ["dir", "slash", "missing_parent"]
    kinds += ["stdout"] if required else ["none", "stdout"]
    kind = draw(st.sampled_from(kinds))
    suffix = draw(st.sampled_from(suffixes if h else [x for x in suffixes if x in SUFFIX_FORMAT]))
    path = {"fresh": f"{T}/out{suffix}", "existing": f"{T}/old{suffix}", "dir": f"{T}/adir",
            "slash": f"{T}/newdir/", "missing_parent": f"{T}/missing/out{suffix}", "none": None,
            "stdout": "-"}[kind]
    args = [] if path is None else [draw(st.sampled_from(["-o", "--output"])), path]
    fmt = None
    if formats and draw(st.integers(0, 4)) == 0:
        fmt = pick(draw, h, formats, ["bogus", "PARQUET", ""])
        args += ["--format", fmt]
    part = None
    if partition and draw(st.integers(0, 3)) == 0:
        part = draw(st.sampled_from(["7", "20", "1000", "1"]))
        if not h:  # a partitioned dataset is a directory: give it one
            kind, path, fmt = "fresh", f"{T}/dataset" + draw(st.sampled_from(["", "/"])), None
            args = ["-o", path]
        args += ["--partition-rows", part]
    return args, dict(kind=kind, path=path, fmt=fmt, partitioned=part is not None)


def hostile_option(draw, h):
    return list(draw(st.sampled_from(HOSTILE_OPTIONS))) if rare(draw, h, 6) else []


def garbage():
    return st.one_of(st.binary(min_size=0, max_size=200),
                     st.sampled_from([b"", b"\x00\x01\x02\xff\xfe", b"PAR1\x00\x00PAR1", b"\xef\xbb\xbf",
                                      "é,ü\n1,2\n".encode("latin-1"), b"\n\n\n", b"{}", b"[]", b"null"]))


def csv_bytes(header, rows):
    return ("\n".join([",".join(header)] + [",".join(r) for r in rows]) + "\n").encode()


def _parquet_bytes(columns):
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


@st.composite
def budgets_file(draw, h):
    """A --flops-file: CSV or Parquet (good or broken) or garbage."""
    good = [[_fmt(10 ** draw(st.floats(18, 26)))] for _ in range(draw(st.integers(1, 20)))]
    kinds = ["good", "parquet"]
    if h:
        kinds += ["two_cols", "ragged", "empty", "header_only", "dup", "nan", "text", "garbage", "negative", "huge",
                  "parquet_garbage"]
    kind = draw(st.sampled_from(kinds))
    if kind == "good":
        return "budgets.csv", csv_bytes(["flops"], good)
    if kind == "parquet":
        return "budgets.parquet", _parquet_bytes({"flops": [float(r[0]) for r in good]})
    if kind == "two_cols":
        return "budgets.csv", csv_bytes(["flops", "other"], [r + ["1"] for r in good])
    if kind == "ragged":
        return "budgets.csv", csv_bytes(["flops"], good + [["1e20", "1e21", "1e22"]])
    if kind == "empty":
        return "budgets.csv", b""
    if kind == "header_only":
        return "budgets.csv", b"flops\n"
    if kind == "dup":
        return "budgets.csv", csv_bytes(["flops", "flops"], [r + r for r in good])
    if kind == "nan":
        bad = draw(st.sampled_from(["nan", "inf", "", "-1", "0", "1e400"]))
        return "budgets.csv", csv_bytes(["flops"], good + [[bad]])
    if kind == "text":
        return "budgets.csv", csv_bytes(["flops"], good + [["lots"]])
    if kind == "negative":
        return "budgets.csv", csv_bytes(["flops"], [["-1e20"]])
    if kind == "huge":
        return "budgets.csv", csv_bytes(["flops"], [["1e20"]] * 150_000)  # over --max-rows 100000
    return draw(st.sampled_from(["budgets.csv", "budgets.parquet", "budgets.txt"])), draw(garbage())


# --------------------------------------------------------------------------------------------- commands


@st.composite
def frontier_case(draw):
    h = draw(st.booleans())
    args, files = ["frontier"], {}
    args += draw(law_args(h, many=True))
    which = pick(draw, h, ["range", "range", "range", "file"], ["both", "neither"], weight=2)
    if which in ("range", "both"):
        args += ["--flops-range", draw(log_range(h, lo=(16.0, 27.0)))]
    if which in ("file", "both"):
        name, data = draw(budgets_file(h))
        files[name] = data
        args += ["--flops-file", f"{T}/{name}"]
        if rare(draw, h, 4):
            args += ["--flops-column", draw(st.sampled_from(["flops", "other", "", "missing"]))]
    if draw(st.integers(0, 4)) == 0:
        args += ["--unit", pick(draw, h, ["flops", "pf_days"], ["gpu_hours", "usd", "days", "PF_DAYS", "joules"])]
    args += draw(constraint_args(h))
    args += draw(hardware_args(h))
    if draw(st.integers(0, 5)) == 0:
        args += ["--solver", pick(draw, h, ["auto", "newton", "newton-midpoint"], ["brent", ""])]
    if draw(st.integers(0, 6)) == 0:
        args += ["--overfit-penalty"]
    if draw(st.integers(0, 6)) == 0:
        args += ["--loss-law", pick(draw, h, ["hoffmann2022", "kaplan2020"], ["deepseek2024", "bogus", ""], weight=1)]
    if rare(draw, h, 8):
        args += ["--bands", draw(st.sampled_from(["5,95", "50", "nan", "101", ""]))]
    out, desc = draw(output_args(h, partition=True))
    return args + out + hostile_option(draw, h), files, desc


@st.composite
def target_loss_case(draw):
    h = draw(st.booleans())
    args = ["target-loss"] + draw(law_args(h, many=True, valid=["hoffmann2022", "besiroglu2024", "kaplan2020"]))
    losses = st.lists(st.sampled_from(["2.2", "2.0", "1.9", "1.69", "3", "10", "1.7"]), min_size=1, max_size=5)
    args += ["--loss", pick(draw, h, losses.map(",".join),
                            HOSTILE_NUMBERS + ["2.0,", ",", "2.0,,1.9", "2.0;1.9", "2.0:3.0:5"], weight=2)]
    args += draw(constraint_args(h))
    args += draw(hardware_args(h))
    out, desc = draw(output_args(h))
    return args + out + hostile_option(draw, h), {}, desc


@st.composite
def surface_case(draw):
    h = draw(st.booleans())
    args = ["surface"] + draw(law_args(h, many=False, valid=["hoffmann2022", "kaplan2020", "kaplan2020-N",
                                                                "muennighoff2023", "kaplan2020-steps"]))
    args += ["--params-range", draw(log_range(h, lo=(6.0, 12.0), max_count=20))]
    which = pick(draw, h, ["tokens", "tokens", "flops"], ["both", "neither"], weight=2)
    if which in ("tokens", "both"):
        args += ["--tokens-range", draw(log_range(h, lo=(8.0, 14.0), max_count=20))]
    if which in ("flops", "both"):
        args += ["--flops-range", draw(log_range(h, lo=(17.0, 24.0), max_count=10))]
    if draw(st.integers(0, 4)) == 0:
        args += ["--dtype", pick(draw, h, ["float64", "float32"], ["float16"])]
    out, desc = draw(output_args(h, partition=True))
    return args + out + hostile_option(draw, h), {}, desc


SPEC_FIELDS = {  # the first value of each list is valid on its own
    "law": ["hoffmann2022", "kaplan2020", "besiroglu2024", "muennighoff2023", "deepseek2024", "chinchila", ""],
    "flops": ["1e20", "1e23", "1e20:1e22:3", "nan", "-1", "0", "1e20:1e22:1e12", "abc", "inf"],
    "pf_days": ["1000", "-3"],
    "target_loss": ["2.0", "1.5", "nan"],
    "gpu": ["A100", "H100-SXM", "B200"],
    "gpus": ["8", "256", "0", "1.5"],
    "days": ["7", "30"],
    "mfu": ["0.4", "1.5", "0"],
    "max_params": ["1e10", "-1"],
    "min_params": ["1e9", "1e12"],
    "unique_tokens": ["1e12"],
    "law.alpha": ["0.36", "nan"],
    "bogus_field": ["1"],
}
CLEAN_SPEC_FIELDS = {"law": ["hoffmann2022", "kaplan2020", "besiroglu2024"], "flops": ["1e20", "1e23", "1e20:1e22:3"],
                     "pf_days": ["1000", "10"], "target_loss": ["2.0", "2.2"], "max_params": ["1e10", "7e10"],
                     "unique_tokens": ["1e12", "1e13"], "law.alpha": ["0.36", "0.3"],
                     "inference_tokens": ["0", "1e13"]}


@st.composite
def sweep_spec(draw, h):
    """A scenarios SPEC file: YAML / TOML sweep spec, CSV / Parquet table, or something broken."""
    kind = pick(draw, h, ["yaml", "yaml", "toml", "csv", "parquet"], ["broken"], weight=6)
    fields = SPEC_FIELDS if h else CLEAN_SPEC_FIELDS
    budget = pick(draw, h, ["flops", "flops", "pf_days", "target_loss"], ["days", None], weight=4)
    others = draw(st.lists(st.sampled_from([k for k in fields if k not in ("flops", "pf_days", "target_loss", "days")]),
                           max_size=3, unique=True))
    keys = ([budget] if budget else []) + others

    def values(key, n):
        pool = fields[key]
        return [pool[0] if i == 0 else draw(st.sampled_from(pool)) for i in range(n)]

    if kind in ("yaml", "toml"):
        lines = []
        for key in keys:
            vals = values(key, draw(st.integers(1, 3)))
            if not h:
                vals = list(dict.fromkeys(vals))

            def lit(v):
                try:
                    float(v)
                    return v
                except ValueError:
                    return f'"{v}"'
            rendered = [lit(v) if ":" not in v else f'"{v}"' for v in vals]
            k = f'"{key}"' if (kind == "toml" and "." in key) else key
            sep = ": " if kind == "yaml" else " = "
            lines.append(f"{k}{sep}" + (rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"))
        if rare(draw, h, 5) and lines:
            lines.append(lines[0])  # duplicate key
        if rare(draw, h, 4):
            lines.append(draw(st.sampled_from(["a: [1, 2", "- 1", "flops: {a: 1}", "flops: []", "law: [[1]]",
                                               "gpus: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]",
                                               "flops: '1e20:1e24:100000'", "? [a]\n: 1", "&a x: *a", "\t",
                                               "law: [hoffmann2022, kaplan2020]\nflops: '1e20:1e24:60000'"])))
        name = "spec.yaml" if kind == "yaml" else "spec.toml"
        if h:
            name = draw(st.sampled_from([name, name, name, "spec.yml", "spec.json", "spec"]))
        return name, "\n".join(lines).encode() + b"\n"
    if kind in ("csv", "parquet"):
        n = draw(st.integers(0 if h else 1, 4))
        cols = [values(key, n) for key in keys]
        rows = [list(r) for r in zip(*cols)] if keys else [[] for _ in range(n)]
        header = list(keys)
        if rare(draw, h, 5) and header:
            header.append(header[0])  # duplicate column
            rows = [r + r[:1] for r in rows]
        if kind == "parquet" and len(set(header)) == len(header) and header:
            def col(i, h_):
                vals = [r[i] for r in rows]
                try:
                    return [float(v) for v in vals]
                except ValueError:
                    return vals
            return "spec.parquet", _parquet_bytes({h_: col(i, h_) for i, h_ in enumerate(header)})
        if rare(draw, h, 4) and rows:
            rows[-1] = rows[-1] + ["extra", "cells"]  # ragged
        return "spec.csv", csv_bytes(header, rows) if header else b""
    return draw(st.sampled_from(["spec.yaml", "spec.csv", "spec.parquet", "spec.toml"])), draw(garbage())


@st.composite
def scenarios_case(draw):
    h = draw(st.booleans())
    name, data = draw(sweep_spec(h))
    spec = f"{T}/{name}"
    if rare(draw, h, 6):
        spec = draw(st.sampled_from([f"{T}/nope.yaml", f"{T}/adir", ""]))
    args = ["scenarios", spec]
    if draw(st.integers(0, 6)) == 0:
        args += ["--threads", pick(draw, h, ["1", "2"], ["0", "-1"])]
    out, desc = draw(output_args(h, partition=True))
    return args + out + hostile_option(draw, h), {name: data}, desc


@st.composite
def lookup_case(draw):
    h = draw(st.booleans())
    args = ["lookup", "build"] + draw(law_args(h, many=False, valid=["hoffmann2022", "kaplan2020", "besiroglu2024"]))
    if rare(draw, h, 3):
        span = draw(st.sampled_from(HOSTILE_RANGES + ["1e20:1e22:5", "1e22:1e20", "1e20:1e20", "1e20:1e400"]))
    else:
        a = draw(st.floats(16, 26))
        span = f"{_fmt(10 ** a)}:{_fmt(10 ** (a + draw(st.floats(0.1, 4))))}"
    args += ["--flops-range", span]
    if draw(st.booleans()):
        args += ["--points-per-decade", pick(draw, h, st.integers(1, 8).map(str),
                                             ["0", "-1", "1e12", "1000000000000", "100000", "2.5", "nan", ""])]
    args += draw(constraint_args(h))
    out, desc = draw(output_args(h, suffixes=[".parquet", ".parquet", ".csv", ".json", ""], required=True,
                                 formats=[], partition=True))
    desc["partitioned"] = False  # lookup build joins its parts into the one table file
    return args + out + hostile_option(draw, h), {}, desc


@st.composite
def compare_case(draw):
    h = draw(st.booleans())
    budgets = st.lists(st.sampled_from(["1e20", "1e24", "3e23", "1e30", "1e10"]), min_size=1, max_size=3)
    args = ["compare", "--flops", pick(draw, h, budgets.map(",".join), HOSTILE_NUMBERS + ["1e24,", "1e24,,1e25"],
                                       weight=2)]
    if draw(st.booleans()):
        laws = st.lists(st.sampled_from(PRESETS), min_size=1, max_size=3, unique=True).map(",".join)
        args += ["--laws", pick(draw, h, laws, HOSTILE_LAWS, weight=2)]
    out, desc = draw(output_args(h))
    return args + out + hostile_option(draw, h), {}, desc


@st.composite
def runs_file(draw, h):
    """A fit RUNS file: a small CSV or Parquet of synthetic runs (good or broken), or garbage."""
    n = draw(st.integers(0 if h else 8, 12))
    rows = []
    for _ in range(n):
        p, d = 10 ** draw(st.floats(7, 11)), 10 ** draw(st.floats(9, 12))
        loss = 1.8 + 400 / p ** 0.34 + 410 / d ** 0.28
        rows.append([_fmt(p), _fmt(d), _fmt(loss * (1 + draw(st.floats(-0.01, 0.01))))])
    header = ["params", "tokens", "loss"]
    kind = pick(draw, h, ["good", "good", "flops", "parquet"],
                ["ragged", "dup", "bad_value", "missing_col", "empty", "header_only", "garbage", "dup_rows"], weight=1)
    if kind == "flops":
        header = ["params", "flops", "loss"]
        rows = [[r[0], _fmt(6 * float(r[0]) * float(r[1])), r[2]] for r in rows]
    elif kind == "ragged" and rows:
        rows[0] = rows[0] + ["1"]
        rows[-1] = rows[-1][:2]
    elif kind == "dup":
        header = ["params", "params", "loss"]
    elif kind == "bad_value" and rows:
        rows[draw(st.integers(0, len(rows) - 1))][draw(st.integers(0, 2))] = draw(st.sampled_from(HOSTILE_NUMBERS))
    elif kind == "missing_col":
        header, rows = header[:2], [r[:2] for r in rows]
    elif kind == "empty":
        return "runs.csv", b"", kind
    elif kind == "header_only":
        rows = []
    elif kind == "garbage":
        return draw(st.sampled_from(["runs.csv", "runs.parquet"])), draw(garbage()), kind
    elif kind == "dup_rows" and rows:
        rows = rows[:1] * 8
    elif kind == "parquet":
        return "runs.parquet", _parquet_bytes({h_: [float(r[i]) for r in rows] for i, h_ in enumerate(header)}), kind
    return "runs.csv", csv_bytes(header, rows), kind


SMALL_GRID = ["--grid", "alpha=0.5", "--grid", "beta=0.5", "--grid", "e=0", "--grid", "a=5,10", "--grid", "b=5,10"]


@st.composite
def fit_case(draw):
    h = draw(st.booleans())
    name, data, kind = draw(runs_file(h))
    args = ["fit", f"{T}/{name}"]
    family = pick(draw, h, [None, "chinchilla", "kaplan"], ["muennighoff2023", "bogus", ""])
    if family is not None:
        args += ["--family", family]
    method = pick(draw, h, [None, None, "vp", "lbfgs"], ["newton"]) if family in (None, "chinchilla") else None
    if method:
        args += ["--method", method]
    if kind == "flops":
        args += ["--flops-column", "flops"]
    # The full chinchilla start grid (4,500 starts) costs ~1 s; a reduced grid keeps the examples fast.
    if family in (None, "chinchilla") and method in (None, "lbfgs"):
        args += SMALL_GRID
    if rare(draw, h, 4):
        args += ["--grid", draw(st.sampled_from(["alpha=0.5,1", "alpha=", "zeta=1", "alpha=nan", "=1", "alpha"]))]
    for flag, good, bad in (("--objective", ["huber", "lad"], ["l2"]), ("--delta", ["1e-3"], ["0", "-1", "nan"]),
                            ("--exclude-highest", ["0", "1"], ["100", "-1"]),
                            ("--bootstrap", ["0", "3"], ["-1", "1e12"]),
                            ("--seed", ["0", "7"], ["-1", "abc"]), ("--loss-column", ["loss"], ["missing", ""]),
                            ("--tokens-column", ["tokens"], ["x", "flops"])):
        if draw(st.integers(0, 7)) == 0:
            args += [flag, pick(draw, h, good, bad, weight=1)]
    out, desc = draw(output_args(h, suffixes=[".json", ".json", ".json", ".toml", ".parquet", ""], required=True,
                                 formats=[]))
    return args + out + hostile_option(draw, h), {name: data}, desc


# ------------------------------------------------------------------------------------------- the property


def _read_back(path, fmt, partitioned):
    """Read an output file (or dataset directory) with the reader its format calls for."""
    import pandas as pd
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    if partitioned:
        assert os.path.isdir(path), f"a partitioned run did not leave a directory at {path}"
        return pq.read_table(path)
    assert os.path.isfile(path), f"exit 0 but {path} is not a regular file"
    if fmt in ("parquet", "pq"):
        return pq.read_table(path)
    if fmt == "csv":
        try:
            return pd.read_csv(path, compression=None)  # the format, not the suffix (out.csv.gz)
        except pd.errors.EmptyDataError:  # a table of no rows and no columns
            assert os.path.getsize(path) == 0 or open(path).read().strip() == ""
            return None
    if fmt == "json":
        with open(path) as fh:
            return json.load(fh)
    if fmt == "jsonl":
        with open(path) as fh:
            return [json.loads(line) for line in fh if line.strip()]
    if fmt == "arrow":
        return feather.read_table(path)
    with open(path) as fh:  # table / txt
        return fh.read()


def _leftover_tmp(root, target):
    """Temporary files under ``root`` (the target itself may be named *.tmp when --format is given)."""
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
                  if f.endswith(".tmp") and os.path.join(d, f) != target)


def _restore_threads():
    """A drawn --threads N must not slow down the examples (and tests) that follow."""
    import sys

    numba = sys.modules.get("numba")
    if numba is not None:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def check(case):
    argv, files, desc = case
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            with open(os.path.join(tmp, name), "wb") as fh:
                fh.write(data)
        os.mkdir(os.path.join(tmp, "adir"))
        path = desc["path"].replace(T, tmp) if desc["path"] else None
        if desc["kind"] == "existing":
            with open(path, "wb") as fh:
                fh.write(SENTINEL)
        before = set(os.listdir(tmp))
        args = ["--max-rows", "100000"] + [a.replace(T, tmp) for a in argv]
        shown = "scalesweep " + " ".join(repr(a) if (not a or " " in a) else a for a in args)
        try:
            res = CliRunner().invoke(cli, args, catch_exceptions=True)
        finally:
            _restore_threads()
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            tb = "".join(traceback.format_exception(*res.exc_info))
            pytest.fail(f"{shown}\nraised instead of an Error line:\n{tb}")
        out, err = res.stdout, res.stderr
        try:
            event(f"{argv[0]}: exit {res.exit_code}")
        except Exception:  # noqa: BLE001 - outside a hypothesis test (the fixed cases)
            pass
        context = f"{shown}\nexit {res.exit_code}\nstderr: {err!r}\nstdout: {out[:500]!r}"
        assert "Traceback" not in out and "Traceback" not in err, context
        requested = desc["kind"] not in ("none", "stdout")
        if res.exit_code == 0:
            if requested:
                if argv[0] == "lookup":
                    fmt = "parquet"
                elif argv[0] == "fit":
                    fmt = "json"
                else:
                    fmt = desc["fmt"] or SUFFIX_FORMAT.get(os.path.splitext(path)[1].lower())
                target = path.rstrip("/") if desc["partitioned"] else path
                try:
                    _read_back(target, fmt, desc["partitioned"])
                except Exception as exc:  # noqa: BLE001 - any reader failure is the finding
                    pytest.fail(f"{context}\nexit 0 but the output does not read back as {fmt}: {exc!r}")
                if desc["kind"] == "existing" and not desc["partitioned"]:
                    with open(path, "rb") as fh:
                        assert fh.read() != SENTINEL, f"{context}\nexit 0 but the older file was not replaced"
            elif argv[0] == "fit":
                json.loads(out)
            elif desc["fmt"] in (None, "csv") and out.strip() and "--help" not in argv:
                import pandas as pd

                try:
                    pd.read_csv(io.StringIO(out))
                except Exception as exc:  # noqa: BLE001
                    pytest.fail(f"{context}\nstdout is not CSV: {exc!r}")
        else:
            assert res.exit_code in (1, 2), context
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("Error: "), context
            if requested:
                if desc["kind"] == "existing":
                    with open(path, "rb") as fh:
                        assert fh.read() == SENTINEL, f"{context}\nthe older file was changed by a failed run"
                elif desc["kind"] == "dir":
                    assert os.path.isdir(path) and not os.listdir(path), \
                        f"{context}\nthe existing directory was written into: {os.listdir(path)}"
                else:
                    assert not os.path.lexists(path.rstrip("/")), f"{context}\nfailed run left {path}"
            new = sorted(set(os.listdir(tmp)) - before)  # e.g. a lookup's OUTPUT.parts/
            assert not new, f"{context}\nfailed run created {new}"
        left = _leftover_tmp(tmp, path)
        assert not left, f"{context}\ntemporary files left behind: {left}"


# One test per command (about 150 examples in all); each prints the failing command line.


@settings(max_examples=examples(30), **SETTINGS)
@given(frontier_case())
def test_fuzz_frontier(case):
    check(case)


@settings(max_examples=examples(20), **SETTINGS)
@given(target_loss_case())
def test_fuzz_target_loss(case):
    check(case)


@settings(max_examples=examples(20), **SETTINGS)
@given(surface_case())
def test_fuzz_surface(case):
    check(case)


@settings(max_examples=examples(30), **SETTINGS)
@given(scenarios_case())
def test_fuzz_scenarios(case):
    check(case)


@settings(max_examples=examples(20), **SETTINGS)
@given(lookup_case())
def test_fuzz_lookup_build(case):
    check(case)


@settings(max_examples=examples(10), **SETTINGS)
@given(compare_case())
def test_fuzz_compare(case):
    check(case)


@settings(max_examples=examples(20), **SETTINGS)
@given(fit_case())
def test_fuzz_fit(case):
    check(case)


def test_harness_fixed_cases():
    """The harness itself on two fixed cases: one success, one refusal."""
    check((["frontier", "--flops-range", "1e20:1e22:3", "-o", f"{T}/out.parquet"], {},
           dict(kind="fresh", path=f"{T}/out.parquet", fmt=None, partitioned=False)))
    check((["frontier", "--flops-range", "1e20:1e22:1e12", "-o", f"{T}/out.parquet"], {},
           dict(kind="fresh", path=f"{T}/out.parquet", fmt=None, partitioned=False)))
