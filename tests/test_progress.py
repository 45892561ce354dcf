"""The progress reporter: throttled log lines off a terminal, in-place redraws on one, rate and time left, an
unknown total, and silence below INFO (``-q``)."""

import io
import logging

import pytest

from scalesweep import progress as P


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


@pytest.fixture
def log_lines(caplog):
    caplog.set_level(logging.INFO, logger="scalesweep.progress")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "scalesweep.progress"]


def test_describe_counts_rate_and_time_left():
    # 250,000 of 1,000,000 rows in 2 s: 125k rows/s, 6 s left
    assert P.describe("scenarios", "rows", 250_000, 1_000_000, 2.0) == \
        "scenarios: 250,000/1,000,000 rows (25%), 125k rows/s, 2.0 s elapsed, about 6.0 s left"
    # unknown total: no percentage, no time left
    assert P.describe("", "rows", 3_000_000, None, 1.5) == "3,000,000 rows, 2M rows/s, 1.5 s elapsed"
    # long runs in minutes and hours: 1 of 120 parts after 100 s leaves 119 x 100 s = 3h18m20s
    assert P.describe("", "parts", 1, 120, 100.0).endswith("1m40s elapsed, about 3h18m left")
    assert P.describe("", "parts", 0, 0, 0.0) == "0/0 parts (100%), 0.0 s elapsed"


def test_off_a_terminal_one_line_every_few_seconds_and_the_last(log_lines):
    clock = Clock()
    p = P.Progress("rows", "frontier", stream=io.StringIO(), terminal=False, clock=clock)
    for i in range(1, 101):  # 100 reports, 0.2 s apart: 20 s in all
        p(i * 10, 1000)
        clock.t += 0.2
    p.close()
    lines = log_lines()
    # the first report, then one at least LOG_INTERVAL (5 s) after the previous shown, then the final one
    assert 4 <= len(lines) <= 6
    assert lines[0].startswith("frontier: 10/1,000 rows (1%)")
    assert lines[-1].startswith("frontier: 1,000/1,000 rows (100%)")
    assert "left" not in lines[-1]


def test_on_a_terminal_redrawn_in_place_and_ended_with_a_newline(log_lines):
    clock, out = Clock(), io.StringIO()
    logging.getLogger("scalesweep.progress").setLevel(logging.INFO)
    try:
        with P.Progress("parts", stream=out, terminal=True, clock=clock) as p:
            for i in range(1, 6):
                p(i, 5)
                clock.t += 1.0
    finally:
        logging.getLogger("scalesweep.progress").setLevel(logging.NOTSET)
    text = out.getvalue()
    assert text.count("\r") == 5 and text.endswith("\n") and text.count("\n") == 1
    assert "5/5 parts (100%)" in text.split("\r")[-1]
    assert log_lines() == []  # drawn on the terminal, not logged


def test_held_back_report_is_shown_on_close_once(log_lines):
    clock = Clock()
    p = P.Progress("rows", stream=io.StringIO(), terminal=False, clock=clock)
    p(10)  # unknown total
    clock.t += 1.0
    p(20)  # within the interval: held back
    p.close()
    p.close()
    assert log_lines() == ["10 rows, 0.0 s elapsed", "20 rows, 20 rows/s, 1.0 s elapsed"]


def test_silent_below_info(caplog):
    caplog.set_level(logging.WARNING, logger="scalesweep.progress")
    out = io.StringIO()
    p = P.Progress("rows", stream=out, terminal=True, clock=Clock())
    p(5, 10)
    p(10, 10)
    p.close()
    assert out.getvalue() == "" and not caplog.records
