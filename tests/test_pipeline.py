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


def test_disk_full_while_writing_is_one_error_and_no_file(tmp_path, monkeypatch):
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    real, calls = TableWriter.write, []

    def full(self, batch, row_group_size=None):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, batch, row_group_size)

    monkeypatch.setattr(TableWriter, "write", full)
    monkeypatch.setitem(sc.run.__kwdefaults__, "chunk_rows", 100)
    res = run(["scenarios", spec, "-o", tmp_path / "out.parquet"], ok=False)
    assert_one_line_error(res, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]  # no file, no temp
