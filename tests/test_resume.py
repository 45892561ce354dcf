"""Resuming partitioned datasets safely: parts verified against the manifest (size and SHA-256, or footer,
schema and page checksums for parts without an entry) and recomputed when damaged; unknown entries refused;
one run per directory (the lock, beside it like the manifest), temp files of live runs kept; a failing manifest
write leaves no temp;
job specs hold ranges as their description and are hashed once."""

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import scalesweep as ss
from scalesweep import dataset, lookup, output, questions, surfaces
from scalesweep.errors import ScalesweepError
from scalesweep.grid import LogRange

from .helpers import assert_one_line_error, run

LAW = ss.get_law("hoffmann2022")
OTHER = ss.get_law("besiroglu2024")
N = np.geomspace(1e7, 1e11, 60)
D = np.geomspace(1e9, 1e13, 70)  # partition_rows=700: 6 parts of 10 params rows (700 rows) each


def read(path):
    return pd.read_parquet(path)


def same(a, b):
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True,
                                  check_categorical=False)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The single-file surface every dataset here must read back equal to."""
    path = tmp_path_factory.mktemp("ref") / "s.parquet"
    ss.write_surface(path, LAW, N, tokens=D)
    return read(path)


def job(law=LAW, partition_rows=700):
    return surfaces.job(law, N, D, partition_rows=partition_rows)


def identity(path):
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns, st.st_size


def snapshot(out):
    return {p.name: identity(p) for p in out.glob("part-*.parquet")}


def manifest(out):
    return json.loads(dataset.manifest_path(out).read_text())


def lock(out):
    return dataset.sidecar(out, dataset.LOCK)


def listing(out):
    return sorted(p.name for p in out.iterdir())


def dead_pid():
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def flip_middle(path):
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 16] = bytes(b ^ 0xFF for b in data[mid:mid + 16])
    path.write_bytes(bytes(data))


def damage(kind, path, foreign_dir):
    if kind == "truncate":
        os.truncate(path, 100)
    elif kind == "empty":
        os.truncate(path, 0)
    elif kind == "foreign":  # the same part of a dataset of another law: same rows and size class, other data
        shutil.copyfile(foreign_dir / path.name, path)
    elif kind == "flip":
        size = path.stat().st_size
        flip_middle(path)
        assert path.stat().st_size == size


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    """A dataset of another law with the same plan (its parts are the wrong data for ours)."""
    out = tmp_path_factory.mktemp("foreign") / "ds"
    dataset.run(job(OTHER), out)
    return out


# ----------------------------------------------------------------------------------- verified resume


@pytest.mark.parametrize("kind", ["truncate", "empty", "foreign", "flip"])
def test_a_rerun_recomputes_exactly_the_damaged_parts(tmp_path, reference, foreign, kind):
    out = tmp_path / "ds"
    first = dataset.run(job(), out)
    assert first["computed"] == 6 and first["recomputed"] == []
    files = manifest(out)["files"]
    assert sorted(files) == [dataset.part_name(i) for i in range(6)]
    for name, entry in files.items():
        assert entry == {"rows": 700, **dataset.file_digest(out / name)}
    for i in (1, 4):
        damage(kind, out / dataset.part_name(i), foreign)
    before = snapshot(out)
    summary = dataset.run(job(), out)
    assert summary["recomputed"] == ["part-000001.parquet", "part-000004.parquet"]
    assert summary["computed"] == 2 and summary["reused"] == 4
    after = snapshot(out)
    assert {k: v for k, v in after.items() if k not in summary["recomputed"]} == \
           {k: v for k, v in before.items() if k not in summary["recomputed"]}
    same(read(out), reference)
    assert manifest(out)["complete"] is True
    assert manifest(out)["files"]["part-000001.parquet"] == {"rows": 700,
                                                             **dataset.file_digest(out / "part-000001.parquet")}
    again = dataset.run(job(), out)
    assert again["computed"] == 0 and again["recomputed"] == [] and snapshot(out) == after


def test_parts_without_an_entry_are_checked_and_recorded(tmp_path, reference, foreign):
    """Parts the manifest never heard of (its last batch was lost): the plan's row count, the job's schema
    and metadata, and page checksums decide; sound ones are recorded, not recomputed."""
    out = tmp_path / "ds"
    dataset.run(job(), out)
    other_plan = tmp_path / "other_plan"
    dataset.run(job(partition_rows=1400), other_plan)  # parts of 1400 rows
    data = manifest(out)
    data["files"] = {}
    data["complete"] = False
    dataset.manifest_path(out).write_text(json.dumps(data))
    flip_middle(out / "part-000002.parquet")
    shutil.copyfile(foreign / "part-000003.parquet", out / "part-000003.parquet")  # another law's metadata
    shutil.copyfile(other_plan / "part-000001.parquet", out / "part-000004.parquet")  # right law, 1400 rows
    before = snapshot(out)
    summary = dataset.run(job(), out)
    assert summary["recomputed"] == ["part-000002.parquet", "part-000003.parquet", "part-000004.parquet"]
    assert summary["computed"] == 3 and summary["reused"] == 3
    after = snapshot(out)
    for name in ("part-000000.parquet", "part-000001.parquet", "part-000005.parquet"):
        assert after[name] == before[name]
    files = manifest(out)["files"]
    assert sorted(files) == [dataset.part_name(i) for i in range(6)]
    for name, entry in files.items():
        assert entry == {"rows": 700, **dataset.file_digest(out / name)}
    same(read(out), reference)


def test_a_part_with_a_stale_entry_and_a_missing_part(tmp_path, reference):
    out = tmp_path / "ds"
    dataset.run(job(), out)
    (out / "part-000005.parquet").unlink()
    data = manifest(out)
    data["files"]["part-000000.parquet"]["sha256"] = "0" * 64  # the entry, not the file, is wrong: recompute
    dataset.manifest_path(out).write_text(json.dumps(data))
    summary = dataset.run(job(), out)
    assert summary["recomputed"] == ["part-000000.parquet"] and summary["computed"] == 2
    same(read(out), reference)


def test_the_cli_resumes_a_damaged_dataset(tmp_path):
    cmd = ["frontier", "--flops-range", "1e18:1e24:40", "--max-params", "1e10", "--partition-rows", "10"]
    run([*cmd, "-o", tmp_path / "ds"])
    run([*cmd[:-2], "-o", tmp_path / "f.parquet"])
    os.truncate(tmp_path / "ds" / "part-000002.parquet", 100)
    res = run([*cmd, "-o", tmp_path / "ds"])
    assert "1 computed, 3 already there" in res.stderr
    same(read(tmp_path / "ds"), read(tmp_path / "f.parquet"))


def test_manifest_entries_are_written_in_batches(tmp_path, monkeypatch):
    writes = []
    real = dataset.write_json

    def counting(path, data, **kw):
        writes.append(len(data.get("files", {})))
        real(path, data, **kw)

    monkeypatch.setattr(dataset, "write_json", counting)
    dataset.run(surfaces.job(LAW, N, D, partition_rows=70), tmp_path / "a")  # 60 parts in well under 2 s
    assert len(writes) <= 4 and writes[-1] == 60
    writes.clear()
    monkeypatch.setattr(dataset, "FLUSH_SECONDS", 0.0)  # a write per part
    monkeypatch.setattr(dataset, "FLUSH_SHARE", 1e9)
    dataset.run(job(), tmp_path / "b")
    assert writes == [0, 1, 2, 3, 4, 5, 6, 6]  # prepare, each part, finish


# ------------------------------------------------------------------------------------- unknown entries


@pytest.mark.parametrize("name", ["part-999999.parquet", "part-000006.parquet", "notes.txt", "subdir"])
def test_unknown_entries_are_refused(tmp_path, name):
    out = tmp_path / "ds"
    dataset.run(job(), out)
    if name == "subdir":
        (out / name).mkdir()
    else:
        shutil.copyfile(out / "part-000000.parquet", out / name)
    names = listing(out)
    state = snapshot(out), dataset.manifest_path(out).read_bytes()
    with pytest.raises(ScalesweepError, match=f"holds '{name}', which is not one of its 6 parts"):
        dataset.run(job(), out)
    assert listing(out) == names and (snapshot(out), dataset.manifest_path(out).read_bytes()) == state
    cmd = ["surface", "--params-range", "1e8:1e9:3", "--tokens-range", "1e9:1e10:3", "--partition-rows", "3",
           "-o", tmp_path / "cli"]
    run(cmd)
    shutil.move(out / name, tmp_path / "cli" / name)
    assert_one_line_error(run(cmd, ok=False), f"holds '{name}', which is not one of its 3 parts", 1)


def test_entries_readers_skip_are_left_alone(tmp_path, reference):
    out = tmp_path / "ds"
    dataset.run(job(), out)
    (out / "_notes.txt").write_text("mine")
    (out / ".hidden").write_text("mine")
    (out / "a.txt").write_text("x")
    (out / "b.txt").write_text("x")
    with pytest.raises(ScalesweepError, match=r"holds 'a.txt' \(and 1 more\)"):
        dataset.run(job(), out)
    (out / "a.txt").unlink()
    (out / "b.txt").unlink()
    assert dataset.run(job(), out)["computed"] == 0
    assert (out / "_notes.txt").read_text() == (out / ".hidden").read_text() == "mine"
    same(read(out), reference)


# ----------------------------------------------------------------------------------- lock and temps


BIG = ["surface", "--params-range", "1e7:1e11:1200", "--tokens-range", "1e9:1e13:1000", "--partition-rows", "1000"]


def test_a_second_run_is_refused_while_the_first_is_live(tmp_path):
    out = tmp_path / "ds"
    proc = subprocess.Popen([sys.executable, "-m", "scalesweep", *BIG, "-o", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (out / "part-000000.parquet").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, proc.communicate()
        holder = json.loads(lock(out).read_text())
        assert holder["pid"] == proc.pid and holder["host"] == output.HOST and holder["started"]
        res = run([*BIG, "-o", out], ok=False)
        assert_one_line_error(res, f"dataset {out} is being written by pid {proc.pid} on {output.HOST} (lock "
                                   f"{lock(out)}); wait for it or remove the lock if that run is gone", 1)
        assert proc.poll() is None, "the first run ended before the second was refused: make BIG bigger"
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "1200 computed" in stderr
    assert listing(out) == [dataset.part_name(i) for i in range(1200)]  # no temps
    assert not lock(out).exists() and manifest(out)["complete"] is True
    got = read(out)
    assert len(got) == 1_200_000
    single = tmp_path / "s.parquet"
    ss.write_surface(single, LAW, LogRange(1e7, 1e11, 1200).values(), tokens=LogRange(1e9, 1e13, 1000).values())
    same(got, read(single))


def test_temps_of_live_runs_are_kept(tmp_path, reference):
    """An older run's worker still writing (a live pid on this host, or any pid on another host) keeps its
    temp; a dead process's temp and an unowned part temp go."""
    out = tmp_path / "ds"
    dataset.run(job(), out)
    (out / "part-000003.parquet").unlink()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        live = out / f".part-000003.parquet.{output.HOST}~{sleeper.pid}.abc.tmp"
        elsewhere = out / ".part-000003.parquet.otherhost~1.abc.tmp"
        dead = out / f".part-000003.parquet.{output.HOST}~{dead_pid()}.abc.tmp"
        unowned = out / ".part-000003.parquet.x.tmp"
        for p in (live, elsewhere, dead, unowned):
            p.write_text("half")
        summary = dataset.run(job(), out)
        assert summary["computed"] == 1
        assert live.exists() and elsewhere.exists() and not dead.exists() and not unowned.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    live.unlink()
    elsewhere.unlink()
    same(read(out), reference)


def write_lock(out, host, pid):
    lock(out).write_text(json.dumps({"host": host, "pid": pid, "started": "2020-01-01T00:00:00"}))


def test_a_stale_lock_is_taken_over(tmp_path, reference):
    out = tmp_path / "ds"
    out.mkdir()
    write_lock(out, output.HOST, dead_pid())
    assert dataset.run(job(), out)["computed"] == 6
    assert not lock(out).exists()
    same(read(out), reference)
    # a lock left empty by a run that died between creating and filling it, a while ago
    lock(out).write_text("")
    os.utime(lock(out), (time.time() - 60, time.time() - 60))
    assert dataset.run(job(), out)["computed"] == 0
    assert not lock(out).exists()


def test_live_and_other_host_locks_are_refused(tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        for host, pid in ((output.HOST, sleeper.pid), ("otherhost", dead_pid()), (output.HOST, os.getpid())):
            write_lock(out, host, pid)
            with pytest.raises(ScalesweepError, match=f"being written by pid {pid} on {host} "):
                dataset.run(job(), out)
            assert listing(out) == [] and lock(out).exists()  # nothing written, the other run's lock kept
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_lock_goes_on_errors_and_interrupts(tmp_path):
    out = tmp_path / "ds"
    dataset.run(job(), out)
    with pytest.raises(ScalesweepError, match="different spec"):
        dataset.run(job(OTHER), out)
    assert not lock(out).exists()

    good = job(partition_rows=70)
    calls = []

    def interrupted(spec, start, stop):
        calls.append(start)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return good.compute(spec, start, stop)

    out2 = tmp_path / "ds2"
    with pytest.raises(KeyboardInterrupt):
        dataset.run(dataset.Job(good.kind, good.spec, good.parts, good.rows, interrupted), out2)
    assert listing(out2) == ["part-000000.parquet", "part-000001.parquet"] and not lock(out2).exists()  # no temp
    assert sorted(manifest(out2)["files"]) == ["part-000000.parquet", "part-000001.parquet"]  # entries kept
    summary = dataset.run(good, out2)
    assert summary["computed"] == 58 and summary["recomputed"] == []


# --------------------------------------------------------------------------------- manifest failures


def failing_manifest_fsync(monkeypatch, after=0):
    """os.fsync fails with ENOSPC for the manifest's temporary file, from its ``after``-th write on."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")
    real = os.fsync
    seen = []

    def fsync(fd):
        if f"{dataset.MANIFEST}." in os.readlink(f"/proc/self/fd/{fd}"):
            seen.append(fd)
            if len(seen) > after:
                raise OSError(28, os.strerror(28))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def test_a_failing_manifest_write_leaves_no_temp(tmp_path, monkeypatch, reference):
    failing_manifest_fsync(monkeypatch)
    out = tmp_path / "new"
    with pytest.raises(ScalesweepError, match=r"cannot write .*\.manifest\.json.*No space left on device"):
        dataset.run(job(), out)
    assert listing(out) == []
    monkeypatch.undo()

    out = tmp_path / "ds"
    failing_manifest_fsync(monkeypatch, after=1)  # the first write (prepare) lands, the last (finish) fails
    with pytest.raises(ScalesweepError, match="No space left on device"):
        dataset.run(job(), out)
    assert listing(out) == [dataset.part_name(i) for i in range(6)]
    assert manifest(out)["complete"] is False and manifest(out)["files"] == {}  # the older manifest, whole
    monkeypatch.undo()
    summary = dataset.run(job(), out)  # the parts are verified without entries and recorded
    assert summary["computed"] == 0 and summary["recomputed"] == []
    assert len(manifest(out)["files"]) == 6 and manifest(out)["complete"] is True
    same(read(out), reference)


def test_a_failing_manifest_write_is_one_line_in_the_cli(tmp_path, monkeypatch):
    failing_manifest_fsync(monkeypatch)
    res = run(["frontier", "--flops-range", "1e18:1e24:40", "--partition-rows", "10", "-o", tmp_path / "ds"],
              ok=False)
    assert_one_line_error(res, "No space left on device", 1)
    assert listing(tmp_path / "ds") == []


# -------------------------------------------------------------------------------------------- job specs


def test_specs_hold_ranges_and_are_hashed_once():
    big = LogRange(1e18, 1e26, 10_000_000)
    j = questions.frontier_job(LAW, big, partition_rows=1 << 20)
    assert j.spec["flops"] == {"range": [1e18, 1e26, 10_000_000]} and j.rows == 10_000_000
    assert len(json.dumps(j.spec)) < 2000
    h = j.spec_hash
    assert j.__dict__["spec_hash"] == h  # cached on the job
    # an array that a range reproduces bit for bit is held (and hashed) as that range
    r = LogRange(1e18, 1e26, 100_001)
    from_array = questions.frontier_job(LAW, r.values(), partition_rows=1000)
    assert from_array.spec["flops"] == {"range": [1e18, 1e26, 100_001]}
    assert from_array.spec_hash == questions.frontier_job(LAW, r, partition_rows=1000).spec_hash
    # surfaces and lookups too
    s = surfaces.job(LAW, LogRange(1e7, 1e11, 60), LogRange(1e9, 1e13, 70).values(), partition_rows=700)
    assert s.spec["params"] == {"range": [1e7, 1e11, 60]} and s.spec["tokens"] == {"range": [1e9, 1e13, 70]}
    lk = lookup.job(LAW, lookup.lookup_budgets(1e18, 1e24, 8), ss.Constraints(), partition_rows=7)
    assert lk.spec["flops"] == {"range": [1e18, 1e24, 49]}


def test_array_specs_are_hashed_by_their_bytes():
    flops = np.geomspace(1e18, 1e24, 1000)
    flops[500] *= 1.5  # no longer a range
    a = questions.frontier_job(LAW, flops, partition_rows=100)
    assert isinstance(a.spec["flops"], np.ndarray) and not a.spec["flops"].flags.writeable
    flops2 = flops.copy()
    assert questions.frontier_job(LAW, flops2, partition_rows=100).spec_hash == a.spec_hash
    flops2[999] = np.nextafter(flops2[999], 0)  # one ulp in one budget is another spec
    assert questions.frontier_job(LAW, flops2, partition_rows=100).spec_hash != a.spec_hash
    flops[0] = 1.0  # the job holds its own copy
    assert questions.frontier_job(LAW, flops2, partition_rows=100).spec["flops"][0] == 1e18
    # ranges that differ only in the last bits of an end are different specs
    r = questions.frontier_job(LAW, LogRange(1e18, 1e24, 50), partition_rows=10)
    r2 = questions.frontier_job(LAW, LogRange(1e18, np.nextafter(1e24, 0), 50), partition_rows=10)
    assert r.spec_hash != r2.spec_hash


def test_partitioned_runs_equal_single_files(tmp_path):
    """Budgets from a file (held as an array) and from ranges (held as their description), slice by slice."""
    budgets = np.sort(np.random.default_rng(1).uniform(1e18, 1e24, 300))
    pd.DataFrame({"flops": budgets}).to_csv(tmp_path / "b.csv", index=False)
    for name, cmd in (("file", ["frontier", "--flops-file", tmp_path / "b.csv", "--max-params", "1e10"]),
                      ("range", ["frontier", "--flops-range", "1.7e18:3.3e24:301", "--max-tokens", "1e12"]),
                      ("isoflop", ["surface", "--params-range", "1e7:1e11:37", "--flops-range", "1e19:3e23:41"]),
                      ("grid", ["surface", "--params-range", "1.1e7:1e11:37", "--tokens-range", "1e9:7e12:41"])):
        run([*cmd, "-o", tmp_path / f"{name}.parquet"])
        run([*cmd, "--partition-rows", "64", "-o", tmp_path / name])
        same(read(tmp_path / name), read(tmp_path / f"{name}.parquet"))
    spec = questions.frontier_job(LAW, budgets, partition_rows=64).spec
    assert isinstance(spec["flops"], np.ndarray)


def test_dask_records_every_part_in_the_driver(tmp_path, reference):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        out = tmp_path / "ds"
        dataset.run(job(), out, engine="dask", client=client)
        os.truncate(out / "part-000002.parquet", 100)
        summary = dataset.run(job(), out, engine="dask", client=client)
    assert summary["recomputed"] == ["part-000002.parquet"] and summary["computed"] == 1
    files = manifest(out)["files"]
    assert sorted(files) == [dataset.part_name(i) for i in range(6)]
    for name, entry in files.items():
        assert entry == {"rows": 700, **dataset.file_digest(out / name)}
    same(read(out), reference)
