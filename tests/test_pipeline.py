"""The compute/encode pipeline: the sequential loop's output byte for byte, bounded items in flight, and a
failure on either side raised once with nothing written."""

import errno
import hashlib
import threading

import pytest

import scalesweep as ss
from scalesweep import pipeline
from scalesweep import scenarios as sc
from scalesweep.output import TableWriter

from .helpers import assert_one_line_error, run

SPEC = ('law: [hoffmann2022, kaplan2020, llama3_2024]\ngpu: H100-SXM\ngpus: [8, 512]\nmfu: [0.3, 0.5]\n'
        'days: "1:100:40"\nunique_tokens: [1e11, 1e13]\n')  # 960 scenarios


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_items_consumed_in_order_with_a_bounded_number_in_flight():
    produced, consumed, most = [], [], [0]
    lock = threading.Lock()

    def items():
        for i in range(200):
            with lock:
                produced.append(i)
                most[0] = max(most[0], len(produced) - len(consumed))
            yield i

    def consume(i):
        with lock:
            consumed.append(i)

    pipeline.overlapped(items(), consume, depth=3)
    assert consumed == list(range(200))
    assert most[0] <= 3 + 2  # waiting + the one being made + the one being consumed


def test_a_consumer_failure_stops_the_producer_and_is_raised():
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    def consume(i):
        if i == 5:
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        pipeline.overlapped(items(), consume, depth=2)
    assert len(produced) <= 5 + 2 + 2


def test_a_producer_failure_is_raised_after_the_consumer_stops():
    consumed = []

    def items():
        yield from range(3)
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):
        pipeline.overlapped(items(), consumed.append)
    assert consumed == [0, 1, 2][:len(consumed)]  # in order; items still waiting at the failure are dropped
    assert all(t.name != "scalesweep-writer" for t in threading.enumerate())  # the consumer thread has ended


@pytest.mark.parametrize("threads", [1, 2])
def test_scenarios_overlapped_equal_the_sequential_loop_byte_for_byte(tmp_path, monkeypatch, threads):
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    before = ss.set_threads(None)
    try:
        ss.set_threads(min(threads, before))
        sc.run(spec, tmp_path / "overlapped.parquet", chunk_rows=100)  # 10 chunks through the pipeline
        monkeypatch.setattr(sc, "overlapped", lambda items, consume: [consume(i) for i in items])
        sc.run(spec, tmp_path / "sequential.parquet", chunk_rows=100)
    finally:
        ss.set_threads(before)
    assert digest(tmp_path / "overlapped.parquet") == digest(tmp_path / "sequential.parquet")


def _disk_full_at_third_write(monkeypatch):
    """The table writer fails with ENOSPC on its third batch, as a full disk would."""
    real, calls = TableWriter.write, []

    def full(self, batch, row_group_size=None):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, batch, row_group_size)

    monkeypatch.setattr(TableWriter, "write", full)


def test_disk_full_while_writing_is_one_error_and_no_file(tmp_path, monkeypatch):
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    _disk_full_at_third_write(monkeypatch)
    monkeypatch.setitem(sc.run.__kwdefaults__, "chunk_rows", 100)
    res = run(["scenarios", spec, "-o", tmp_path / "out.parquet"], ok=False)
    assert_one_line_error(res, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]  # no file, no temp


@pytest.mark.parametrize("name, chunk", [("hoffmann2022", 1000), ("kaplan2020", 150_000)])
def test_surface_overlapped_equals_the_sequential_loop_on_one_and_two_threads(tmp_path, monkeypatch, name, chunk):
    """write_surface through the pipeline, on 1 and on 2 threads, writes the bytes of the chunk-by-chunk loop
    (the kaplan chunks are large enough for its threaded power)."""
    import numpy as np

    from scalesweep import surfaces

    n, d = np.geomspace(1e6, 1e12, 600), np.geomspace(1e8, 1e14, 600)
    before = ss.set_threads(None)
    try:
        for threads in sorted({1, min(2, before)}):
            ss.set_threads(threads)
            ss.write_surface(tmp_path / f"overlapped{threads}.parquet", name, n, tokens=d, chunk_points=chunk)
        ss.set_threads(1)
        monkeypatch.setattr(surfaces, "overlapped", lambda items, consume, depth=1: [consume(b) for b in items])
        ss.write_surface(tmp_path / "sequential.parquet", name, n, tokens=d, chunk_points=chunk)
    finally:
        ss.set_threads(before)
    files = sorted(tmp_path.glob("*.parquet"))
    assert len({digest(f) for f in files}) == 1, [f.name for f in files]


def test_scenario_memory_does_not_grow_with_the_sweep(tmp_path):
    """Memory follows the chunks in flight, not the sweep: a sweep 8x as long (96 chunks instead of 12) peaks
    at about the same traced memory (numpy buffers included) and Arrow memory."""
    import tracemalloc

    import pyarrow as pa

    peaks = []
    for days in (40, 320):
        spec = tmp_path / f"s{days}.yaml"
        spec.write_text(SPEC.replace('"1:100:40"', f'"1:100:{days}"'))
        arrow = [0]

        def watch(done, total, arrow=arrow):
            arrow[0] = max(arrow[0], pa.total_allocated_bytes())

        sc.run(spec, tmp_path / "warm.parquet", chunk_rows=200)
        tracemalloc.start()
        summary = sc.run(spec, tmp_path / f"out{days}.parquet", chunk_rows=200, progress=watch)
        peaks.append((tracemalloc.get_traced_memory()[1], arrow[0], summary["rows"]))
        tracemalloc.stop()
    (small, small_arrow, rows_small), (big, big_arrow, rows_big) = peaks
    assert rows_big == 8 * rows_small == 8 * 960
    assert big < 1.5 * small + (1 << 20), peaks
    assert big_arrow < 1.5 * small_arrow + (1 << 20), peaks


def _no_flusher_left():
    return all(t.name not in ("scalesweep-writer", "scalesweep-flush") for t in threading.enumerate())


def test_surface_disk_full_while_writing_is_one_error_and_no_file(tmp_path, monkeypatch):
    _disk_full_at_third_write(monkeypatch)
    from scalesweep import surfaces

    monkeypatch.setitem(surfaces.write.__kwdefaults__, "chunk_points", 8000)  # 20 chunks
    res = run(["surface", "--params-range", "1e8:1e10:400", "--tokens-range", "1e9:1e12:400", "-o",
               tmp_path / "out.parquet"], ok=False)
    assert_one_line_error(res, "No space left on device")
    assert list(tmp_path.iterdir()) == []  # no file, no temp
    assert _no_flusher_left()


@pytest.mark.parametrize("command", [
    ["surface", "--params-range", "1e8:1e10:600", "--tokens-range", "1e9:1e12:600"],
    ["scenarios", "{spec}"]])
def test_disk_full_at_the_final_sync_is_one_error_and_no_file(tmp_path, monkeypatch, command):
    """The file is written to disk while it grows; a failure of the final fsync (the disk filled up as the last
    bytes went out) is still one error and leaves nothing behind."""
    import os

    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC.replace('"1:100:40"', '"1:100:4000"'))  # 96,000 scenarios: batches big enough to flush
    target = tmp_path / "out" / "out.parquet"
    target.parent.mkdir()
    real_fsync = os.fsync

    def fsync(fd):
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".out.parquet."):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")
    monkeypatch.setattr(os, "fsync", fsync)
    res = run([c.format(spec=spec) for c in command] + ["-o", target], ok=False)
    assert_one_line_error(res, "No space left on device")
    assert list(target.parent.iterdir()) == []
    assert _no_flusher_left()


def test_the_consumer_gets_a_core_once_it_has_work():
    """From the first item handed over, the producing thread's kernels run on one thread fewer than numba's
    maximum, and get it back when the pipeline ends, also after a failure; a count the user lowered stays."""
    import numba

    from scalesweep.pipeline import overlapped

    most = numba.config.NUMBA_NUM_THREADS
    seen = []

    def items():
        for i in range(3):
            seen.append(numba.get_num_threads())  # the producer's count when it makes item i
            yield i

    before = numba.get_num_threads()
    try:
        numba.set_num_threads(most)
        overlapped(items(), lambda item: None)
        assert seen == [most] + [max(1, most - 1) if most >= 2 else most] * 2
        assert numba.get_num_threads() == most

        def boom(item):
            raise OSError("disk full")

        with pytest.raises(OSError):
            overlapped(range(5), boom)
        assert numba.get_num_threads() == most
        if most >= 3:
            numba.set_num_threads(most - 1)
            seen.clear()
            overlapped(items(), lambda item: None)
            assert seen == [most - 1] * 3
    finally:
        numba.set_num_threads(before)
