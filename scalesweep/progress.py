"""Feedback on long work: one reporter, called as ``progress(done, total)`` by whatever does the work.

Work that ends within ``DELAY`` seconds shows nothing. Longer work shows a line with the count, the
percentage, the rate and the time left: on a terminal redrawn in place (at most ten times a second);
elsewhere (a log file, a batch job's stderr) logged at most every ``LOG_INTERVAL`` seconds, and once at the
end. Lines go to the ``scalesweep.progress`` logger at INFO, so
``-q`` silences them like every other status line. A total of ``None`` (a CSV table not yet counted) shows
the count and the rate, without a percentage or a time left.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable, TextIO

LOGGER = logging.getLogger("scalesweep.progress")
_on_kernels: list[Callable[[], None]] = []  # called once the compiled kernels are imported
DELAY = 2.0  # seconds of work before the first line
LOG_INTERVAL = 5.0  # seconds between lines when stderr is not a terminal
DRAW_INTERVAL = 0.1  # seconds between redraws on a terminal


def _si(x: float) -> str:
    """A rate or count in a few significant digits: 950, 12.3k, 4.56M, 1.2G."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def _duration(seconds: float) -> str:
    """12.3 s, 4m05s, 2h07m."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def describe(what: str, unit: str, done: int, total: int | None, elapsed: float) -> str:
    """The text of one progress line."""
    count = f"{done:,}/{total:,} {unit}" if total is not None else f"{done:,} {unit}"
    parts = [f"{what}: {count}" if what else count]
    if total is not None:
        parts[0] += f" ({100.0 * done / total:.0f}%)" if total else " (100%)"
    if elapsed > 0 and done > 0:
        rate = done / elapsed
        parts.append(f"{_si(rate)} {unit}/s")
    parts.append(f"{_duration(elapsed)} elapsed")
    if total is not None and 0 < done < total and elapsed > 0:
        parts.append(f"about {_duration((total - done) * elapsed / done)} left")
    return ", ".join(parts)


class Progress:
    """``progress(done, total)``: report ``done`` of ``total`` units (``total`` None when unknown). The clock
    starts when the reporter is made, or at a first report of 0 done (work that is prepared first, such as a
    fit before its bootstrap, reports 0 when the counted work starts). ``close()`` ends the line; once anything
    was shown, the last report is shown too."""

    def __init__(self, unit: str = "rows", what: str = "", *, stream: TextIO | None = None,
                 terminal: bool | None = None, clock: Callable[[], float] = time.monotonic):
        self.unit, self.what, self.clock = unit, what, clock
        self.stream = stream
        self.terminal = terminal
        self.t0 = clock()
        self.last_shown = -float("inf")
        self.shown: tuple | None = None
        self.pending: tuple | None = None
        self.drawn = False

    def _stream(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stderr

    def _is_terminal(self) -> bool:
        if self.terminal is not None:
            return self.terminal
        try:
            return self._stream().isatty()
        except (AttributeError, ValueError):
            return False

    def __call__(self, done: int, total: int | None = None) -> None:
        now = self.clock()
        if done == 0 and self.shown is None and self.pending is None:
            self.t0 = now  # the work starts now (a first report of nothing done)
        state = (int(done), None if total is None else int(total))
        finished = state[1] is not None and state[0] >= state[1]
        interval = DRAW_INTERVAL if self._is_terminal() else LOG_INTERVAL
        if now - self.t0 < DELAY and self.shown is None:
            self.pending = state
        elif (finished and self.shown is not None) or now - self.last_shown >= interval:
            self._show(state, now)
        else:
            self.pending = state

    def _show(self, state: tuple, now: float) -> None:
        if state == self.shown or not LOGGER.isEnabledFor(logging.INFO):
            self.pending = None
            return
        line = describe(self.what, self.unit, state[0], state[1], now - self.t0)
        if self._is_terminal():
            stream = self._stream()
            stream.write("\r  " + line + "\033[K")
            stream.flush()
            self.drawn = True
        else:
            LOGGER.info(line)
        self.shown, self.pending, self.last_shown = state, None, now

    def close(self) -> None:
        """Show the last state if it was held back, and end a line drawn in place."""
        if self.pending is not None and self.shown is not None:
            self._show(self.pending, self.clock())
        if self.drawn:
            self._stream().write("\n")
            self._stream().flush()
            self.drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def when_kernels_load(fn: Callable[[], None]) -> None:
    """Call ``fn`` as soon as the compiled kernels (``scalesweep.kernels``, which loads numba) are imported: now
    if they are, else from their import. Work that needs no kernel never pays for numba's start-up."""
    if "scalesweep.kernels" in sys.modules:
        fn()
    else:
        _on_kernels.append(fn)


def kernels_loaded() -> None:
    """Run what waits for the kernels (``scalesweep.kernels`` calls this as it is imported)."""
    while _on_kernels:
        _on_kernels.pop(0)()
