"""Nothing lost, nothing overwritten that should not be: output targets, inputs, signals, stale temporary
files, size guards, bounded-memory streaming, and a machine without a numba cache location.

Device nodes are made inside the test's own temporary directory (never a real /dev entry): if the code
under test still replaced one, only the test's copy would go.
"""

import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import scalesweep as ss
from scalesweep import output, questions
from scalesweep.grid import parse_range
from scalesweep.laws import as_laws

from .helpers import assert_one_line_error, run

FRONTIER = ["frontier", "--flops-range", "1e20:1e22:3"]


def _device(path):
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # a private copy of /dev/full's numbers
    except (PermissionError, OSError) as exc:
        pytest.skip(f"mknod is not permitted here: {exc}")


def _listing(d):
    return sorted(p.name for p in d.iterdir())


@pytest.mark.parametrize("kind", ["device", "fifo", "directory", "trailing-slash"])
def test_special_targets_are_refused_and_left_alone(tmp_path, kind):
    target = tmp_path / "target"
    if kind == "device":
        _device(target)
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    before = os.lstat(target) if kind != "trailing-slash" else None
    arg = str(target) + ("/" if kind == "trailing-slash" else "")
    res = run([*FRONTIER, "-o", arg], ok=False)
    needle = {"device": "not a regular file", "fifo": "not a regular file", "directory": "it is a directory",
              "trailing-slash": "a name ending in / is a directory"}[kind]
    assert_one_line_error(res, needle, 1)
    if before is not None:
        after = os.lstat(target)
        assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)
    assert _listing(tmp_path) == ([] if kind == "trailing-slash" else ["target"])


def test_a_symlink_is_followed_and_kept(tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real.name)
    run([*FRONTIER, "-o", link])
    assert link.is_symlink() and os.readlink(link) == "real.csv"
    assert real.read_text().startswith("flops,params")
    assert _listing(tmp_path) == ["link.csv", "real.csv"]


def test_a_symlink_to_a_device_is_refused(tmp_path):
    _device(tmp_path / "dev")
    (tmp_path / "link").symlink_to("dev")
    assert_one_line_error(run([*FRONTIER, "-o", tmp_path / "link"], ok=False), "not a regular file", 1)
    assert stat.S_ISCHR(os.lstat(tmp_path / "dev").st_mode)


def test_writing_over_an_input_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    law = ss.get_law("hoffmann2022")
    n = np.repeat(np.geomspace(1e7, 1e10, 5), 4)
    d = np.tile(np.geomspace(1e9, 1e12, 4), 5)
    pd.DataFrame({"params": n, "tokens": d, "loss": law.loss(n, d)}).to_csv("runs.csv", index=False)
    pd.DataFrame({"flops": [1e20, 1e21]}).to_csv("budgets.csv", index=False)
    (tmp_path / "spec.csv").write_text("flops\n1e22\n")
    ss.write_lookup("table.parquet", "hoffmann2022", 1e18, 1e20, 2)
    run(["fit", "runs.csv", "-o", "law.json"])
    os.symlink("runs.csv", "alias.json")
    cases = [
        (["fit", "runs.csv", "-o", "./alias.json"], "runs.csv"),
        (["scenarios", "spec.csv", "-o", "spec.csv"], "spec.csv"),
        (["lookup", "query", "table.parquet", "--flops", "1e19", "-o", "./table.parquet"], "table.parquet"),
        (["frontier", "--flops-file", "budgets.csv", "-o", "budgets.csv"], "budgets.csv"),
        (["frontier", "--law-file", "law.json", "--flops-range", "1e20", "-o", "law.json"], "law.json"),
    ]
    for args, victim in cases:
        before = (tmp_path / victim).read_bytes()
        assert_one_line_error(run(args, ok=False), "it is an input of this command", 1)
        assert (tmp_path / victim).read_bytes() == before, args
    pytest.importorskip("matplotlib")
    run(["frontier", "--flops-range", "1e20:1e22:3", "-o", "f.parquet"])
    os.symlink("f.parquet", "f.png")
    before = (tmp_path / "f.parquet").read_bytes()
    assert_one_line_error(run(["plot", "frontier", "f.parquet", "-o", "f.png"], ok=False),
                          "it is an input of this command", 1)
    assert (tmp_path / "f.parquet").read_bytes() == before
    before = (tmp_path / "runs.csv").read_bytes()
    assert_one_line_error(run(["fit", "runs.csv", "-o", "runs.csv"], ok=False), "a law file is JSON", 1)
    assert (tmp_path / "runs.csv").read_bytes() == before


def _start(args, cwd):
    return subprocess.Popen([sys.executable, "-m", "scalesweep", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_temp(d, proc, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if any(p.name.endswith(".tmp") for p in d.iterdir()):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


BIG_SURFACE = ["surface", "--params-range", "1e6:1e10:4000", "--tokens-range", "1e9:1e12:4000", "-o", "s.parquet"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_removes_the_temp_file_and_keeps_the_old_target(tmp_path, sig):
    (tmp_path / "s.parquet").write_text("old\n")
    proc = _start(BIG_SURFACE, tmp_path)
    assert _wait_for_temp(tmp_path, proc), proc.communicate()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert _listing(tmp_path) == ["s.parquet"] and (tmp_path / "s.parquet").read_text() == "old\n"


@pytest.mark.slow
def test_temp_files_of_killed_runs_are_removed_by_the_next_run(tmp_path):
    (tmp_path / "s.parquet").write_text("old\n")
    proc = _start(BIG_SURFACE, tmp_path)
    assert _wait_for_temp(tmp_path, proc), proc.communicate()
    proc.kill()
    proc.wait()
    stale = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(stale) == 1 and f"~{proc.pid}." in stale[0]
    # a live run's temp (this process) and another host's are kept
    mine = tmp_path / f".s.parquet.{output.RUN_ID}.abc.tmp"
    other = tmp_path / ".s.parquet.elsewhere~1.abc.tmp"
    mine.write_text("")
    other.write_text("")
    run([*FRONTIER, "-o", tmp_path / "s.parquet"])
    assert _listing(tmp_path) == sorted([other.name, mine.name, "s.parquet"])


def test_clean_removes_stale_temps_only(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (tmp_path / f".a.csv.{output.HOST}~{pid}.x1.tmp").write_text("")
    (tmp_path / f".a.csv.{output.RUN_ID}.x2.tmp").write_text("")
    (tmp_path / "a.csv").write_text("keep\n")
    res = run(["clean", tmp_path])
    assert "removed 1 " in res.stderr
    assert _listing(tmp_path) == sorted(["a.csv", f".a.csv.{output.RUN_ID}.x2.tmp"])


@pytest.mark.parametrize("args, needle", [
    (["frontier", "--flops-range", "1e20:1e22:1000000000000"], "1,000,000,000,000 rows requested, over the limit"),
    (["surface", "--params-range", "1e6:1e10:1000000", "--tokens-range", "1e9:1e12:1000000"],
     "1,000,000,000,000 rows requested"),
    (["--max-rows", "10", "frontier", "--flops-range", "1e20:1e22:11"], "11 rows requested, over the limit of 10"),
    (["--max-rows", "100", "frontier", "--flops-range", "1e20:1e22:60", "--law", "hoffmann2022,besiroglu2024"],
     "120 rows requested, over the limit of 100"),
])
def test_size_guards_refuse_before_allocating(tmp_path, args, needle):
    res = run([*args, "-o", tmp_path / "x.parquet"], ok=False)
    assert_one_line_error(res, needle, 1)
    assert "--max-rows" in res.stderr
    assert _listing(tmp_path) == []


SWEEP_100 = "flops: [1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29]\nmax_params: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"


@pytest.mark.parametrize("args, needle", [
    (["scenarios", "s.yaml"], "the sweep (the product of its list lengths): 100 rows requested, over the limit of 50"),
    (["lookup", "build", "--flops-range", "1e18:1e24", "--points-per-decade", "10"], "61 rows requested"),
    (["isoflop-sim", "--budgets", "1e19:1e21:9"], "isoflop-sim points (budgets x --points-per-curve): 81 rows"),
    (["surface", "--params-range", "1e7:1e9:8", "--tokens-range", "1e9:1e11:8"], "surface: 64 rows requested"),
])
def test_every_command_has_a_size_guard(tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(SWEEP_100)
    assert_one_line_error(run(["--max-rows", "50", *args, "-o", "x.parquet"], ok=False), needle, 1)
    assert _listing(tmp_path) == ["s.yaml"]
    run(["--max-rows", "200", *args, "-o", "x.parquet"])  # the limit is the only obstacle
    assert (tmp_path / "x.parquet").is_file()


def test_max_rows_lasts_one_invocation(tmp_path):
    assert_one_line_error(run(["--max-rows", "5", *FRONTIER[:-1], "1e20:1e22:6"], ok=False), "over the limit of 5")
    run([*FRONTIER[:-1], "1e20:1e22:6"])


@pytest.mark.parametrize("option", ["--tokens-range", "--flops-range"])
def test_an_empty_range_is_refused(tmp_path, option):
    res = run(["surface", "--params-range", "1e7:1e9:3", option, "", "-o", tmp_path / "s.parquet"], ok=False)
    assert_one_line_error(res, f"{option}: value '' is not a number", 1)


def test_a_dataset_has_at_most_a_million_parts(tmp_path):
    res = run(["frontier", "--flops-range", "1e20:1e22:2000000", "--partition-rows", "1", "-o", tmp_path / "ds"],
              ok=False)
    assert_one_line_error(res, "2,000,000 parts requested, over the limit of 1,000,000 parts", 1)
    assert _listing(tmp_path) == []


def test_size_guard_from_the_environment(monkeypatch):
    monkeypatch.setenv("SCALESWEEP_MAX_ROWS", "5")
    assert_one_line_error(run(["frontier", "--flops-range", "1e20:1e22:6"], ok=False), "over the limit of 5", 1)
    monkeypatch.setenv("SCALESWEEP_MAX_ROWS", "many")
    assert_one_line_error(run(["frontier", "--flops-range", "1e20:1e22:6"], ok=False), "SCALESWEEP_MAX_ROWS", 1)


def test_memory_guard_names_the_memory(monkeypatch):
    from scalesweep import validate

    monkeypatch.setattr(validate, "available_memory", lambda: 1 << 20)
    res = run(["frontier", "--flops-range", "1e20:1e22:200000"], ok=False)
    assert_one_line_error(res, "GiB in memory at once, more than the 0.0 GiB available", 1)


@pytest.mark.parametrize("laws", ["hoffmann2022", "hoffmann2022,deepseek2024,kaplan2020",
                                  "kaplan2020-steps,deepseek2024", "deepseek2024,kaplan2020-steps"])
def test_streamed_frontier_equals_one_call(laws):
    """Chunk by chunk (small chunks here) gives the rows, columns and metadata of one in-memory call."""
    budgets = parse_range("1e18:1e27:1001")
    law_list = as_laws(laws)
    kw = dict(constraints=ss.Constraints(max_params=3e11), hardware=ss.Hardware(gpu="A100", gpus=64))
    whole = questions.frontier(law_list, budgets.values(), **kw)
    expected = whole.table(whole.metadata("frontier", {"r": 1}, "cmd"))
    parts = list(questions.frontier_tables(law_list, budgets, grid={"r": 1}, command_line="cmd", chunk_rows=97,
                                           **kw))
    import pyarrow as pa

    got = pa.concat_tables([t for t, _ in parts]).combine_chunks()
    assert got.schema.metadata == expected.schema.metadata
    assert got.column_names == expected.column_names
    for name in expected.column_names:
        a, b = got.column(name).to_pylist(), expected.column(name).to_pylist()
        assert a == b or np.array_equal(np.array(a, dtype=float), np.array(b, dtype=float), equal_nan=True), name
    summed = {}
    for _, counts in parts:
        for k, v in counts.items():
            summed[k] = summed.get(k, 0) + v
    assert summed == whole.infeasible()


@pytest.mark.parametrize("suffix", ["csv", "parquet", "arrow", "json", "jsonl", "txt"])
def test_laws_with_their_own_columns_stream_into_one_file(tmp_path, suffix):
    """kaplan2020-steps adds batch and steps: other laws' rows carry NaN (null) there, in every format."""
    out = tmp_path / f"f.{suffix}"
    run(["frontier", "--law", "deepseek2024,kaplan2020-steps", "--flops-range", "1e20:1e22:3", "-o", out])
    import pyarrow.feather as feather

    df = {"parquet": lambda p: pq.read_table(p).to_pandas(), "arrow": feather.read_feather, "csv": pd.read_csv, "json": pd.read_json, "jsonl": lambda p: pd.read_json(p, lines=True),
          "txt": lambda p: pd.read_fwf(p)}[suffix](out)
    assert len(df) == 6 and {"batch", "steps"} <= set(df.columns)
    steps = df["steps"].astype(float).to_numpy()
    assert np.isnan(steps[:3]).all() and (steps[3:] > 0).all()


def test_streamed_frontier_file_matches_the_api(tmp_path):
    path = tmp_path / "f.parquet"
    run(["frontier", "--flops-range", "1e18:1e27:3001", "--max-params", "1e11", "-o", path])
    df = pq.read_table(path).to_pandas()
    ref = ss.frontier("hoffmann2022", parse_range("1e18:1e27:3001").values(), max_params=1e11)
    np.testing.assert_array_equal(df.params.to_numpy(), ref.params.to_numpy())
    np.testing.assert_array_equal(df.loss.to_numpy(), ref.loss.to_numpy())
    assert pq.read_metadata(path).num_rows == 3001


def test_without_a_numba_cache_location_kernels_run_with_one_warning():
    code = ("import numba.core.caching as c; c.CacheImpl._locator_classes = []; "
            "import scalesweep as ss; print(ss.frontier('hoffmann2022', [1e22]).params[0])")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert float(p.stdout) == pytest.approx(ss.frontier("hoffmann2022", [1e22]).params[0], rel=0, abs=0)
    assert p.stderr.count("warning: numba has no writable cache location") == 1 and "NUMBA_CACHE_DIR" in p.stderr


def test_stdout_guard_and_flush_of_closed_pipe_are_quiet():
    """`scalesweep frontier ... | head -1`: the reader goes away; no traceback, no error line."""
    p = subprocess.run(f"{sys.executable} -m scalesweep frontier --flops-range 1e18:1e26:200000 | head -1",
                       shell=True, capture_output=True, text=True)
    assert p.stdout.startswith("flops,") and "Traceback" not in p.stderr and "Error" not in p.stderr, p.stderr
