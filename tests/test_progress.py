"""The progress reporter: nothing for short work, throttled log lines off a terminal, in-place redraws on one,
rate and time left, an unknown total, and silence below INFO (``-q``)."""

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
        clock.t += 0.2
        p(i * 10, 1000)
    p.close()
    lines = log_lines()
    # nothing in the first DELAY (2 s); then one line at least LOG_INTERVAL (5 s) after the previous, and the last
    assert [line.split(" rows")[0] for line in lines] == \
        ["frontier: 100/1,000", "frontier: 350/1,000", "frontier: 600/1,000", "frontier: 850/1,000",
         "frontier: 1,000/1,000"]
    assert lines[0] == "frontier: 100/1,000 rows (10%), 50 rows/s, 2.0 s elapsed, about 18.0 s left"
    assert lines[-1] == "frontier: 1,000/1,000 rows (100%), 50 rows/s, 20.0 s elapsed"


def test_short_work_shows_nothing(log_lines):
    clock, out = Clock(), io.StringIO()
    for terminal in (False, True):
        with P.Progress("rows", stream=out, terminal=terminal, clock=clock) as p:
            for i in range(1, 11):
                clock.t += 0.15  # 1.5 s in all, under DELAY
                p(i, 10)
    assert log_lines() == [] and out.getvalue() == ""


def test_long_work_reported_once_at_its_end_shows_that_line(log_lines):
    clock = Clock()
    with P.Progress("parts", stream=io.StringIO(), terminal=False, clock=clock) as p:
        clock.t += 12.0
        p(3, 3)
    assert log_lines() == ["3/3 parts (100%), 0.25 parts/s, 12.0 s elapsed"]


def test_on_a_terminal_redrawn_in_place_and_ended_with_a_newline(log_lines):
    clock, out = Clock(), io.StringIO()
    logging.getLogger("scalesweep.progress").setLevel(logging.INFO)
    try:
        with P.Progress("parts", stream=out, terminal=True, clock=clock) as p:
            for i in range(1, 6):
                clock.t += 1.0
                p(i, 5)
    finally:
        logging.getLogger("scalesweep.progress").setLevel(logging.NOTSET)
    text = out.getvalue()
    # reports at 1..5 s: the first two fall within DELAY, then one redraw each
    assert text.count("\r") == 4 and text.endswith("\n") and text.count("\n") == 1
    assert text.split("\r")[1].startswith("  2/5 parts (40%)")
    assert "5/5 parts (100%)" in text.split("\r")[-1]
    assert log_lines() == []  # drawn on the terminal, not logged


def test_held_back_report_is_shown_on_close_once(log_lines):
    clock = Clock()
    p = P.Progress("rows", stream=io.StringIO(), terminal=False, clock=clock)
    clock.t += 3.0
    p(10)  # unknown total
    clock.t += 1.0
    p(20)  # within the interval: held back
    p.close()
    p.close()
    assert log_lines() == ["10 rows, 3.33 rows/s, 3.0 s elapsed", "20 rows, 5 rows/s, 4.0 s elapsed"]


def test_silent_below_info(caplog):
    caplog.set_level(logging.WARNING, logger="scalesweep.progress")
    out, clock = io.StringIO(), Clock()
    p = P.Progress("rows", stream=out, terminal=True, clock=clock)
    clock.t += 5.0
    p(5, 10)
    clock.t += 5.0
    p(10, 10)
    p.close()
    assert out.getvalue() == "" and not caplog.records


def test_a_first_report_of_nothing_done_starts_the_clock(log_lines):
    clock = Clock()
    with P.Progress("refits", "bootstrap", stream=io.StringIO(), terminal=False, clock=clock) as p:
        clock.t += 30.0  # preparation (the fit itself) is not counted
        p(0, 100)
        clock.t += 4.0
        p(50, 100)
        clock.t += 4.0
        p(100, 100)
    assert log_lines() == ["bootstrap: 50/100 refits (50%), 12.5 refits/s, 4.0 s elapsed, about 4.0 s left",
                           "bootstrap: 100/100 refits (100%), 12.5 refits/s, 8.0 s elapsed"]


def test_cli_progress_in_a_log_file(tmp_path, monkeypatch):
    """Off a terminal (a log file, CliRunner's stderr) a long command logs plain progress lines; -q drops them."""
    from click.testing import CliRunner

    from scalesweep.cli import cli

    monkeypatch.setattr(P, "DELAY", 0.0)
    monkeypatch.setattr(P, "LOG_INTERVAL", 0.0)
    spec = tmp_path / "s.yaml"
    spec.write_text('law: [hoffmann2022, kaplan2020]\nflops: "1e18:1e26:300000"\n')  # chunks of 2^18 rows
    args = ["scenarios", str(spec), "-o", str(tmp_path / "o.parquet")]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    lines = [line for line in res.stderr.splitlines() if line.startswith("scenarios: ")]
    assert [line.split(" rows")[0] for line in lines] == ["scenarios: 262,144/600,000", "scenarios: 524,288/600,000",
                                                          "scenarios: 600,000/600,000"]
    assert "rows/s" in lines[-1] and "(100%)" in lines[-1]
    res = CliRunner().invoke(cli, ["-q", *args], catch_exceptions=False)
    assert res.exit_code == 0 and res.stderr == ""
