"""Range syntax and chunk planning.

``LO:HI:COUNT`` is a log-spaced, inclusive range everywhere (COUNT >= 1; COUNT == 1 needs LO == HI).
A single number ``V`` is the one-point range ``V:V:1``. Endpoints are reproduced exactly. LO and HI are sizes:
``1B:70B:10`` is ``1e9:7e10:10`` (suffixes K, M, B, T as in ``validate.parse_size``); COUNT is a plain integer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ScalesweepError
from .validate import SIZE_HINT, check_size, clip, parse_size


@dataclass(frozen=True)
class LogRange:
    lo: float
    hi: float
    count: int

    @property
    def size(self) -> int:
        return self.count

    def values(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Values start..stop-1 (all by default); any slice equals the same slice of the whole range, so a
        long range can be generated chunk by chunk."""
        stop = self.count if stop is None else min(stop, self.count)
        if self.count == 1:
            return np.array([self.lo])[start:stop]
        # Spaced in log10 as np.linspace does it (i * step + lo, the last point exactly hi), and whole decades
        # parsed from text, so 1e20:1e24:5 gives 1e21, 1e22, 1e23 exactly (10.0**23 is one ulp off 1e23).
        lo, hi = math.log10(self.lo), math.log10(self.hi)
        k = np.arange(start, stop, dtype=np.float64) * ((hi - lo) / (self.count - 1)) + lo
        if stop == self.count and stop > start:
            k[-1] = hi
        out = 10.0**k
        for i in np.flatnonzero(k == np.round(k)):
            out[i] = float(f"1e{int(k[i])}")
        if start == 0 and stop > 0:
            out[0] = self.lo
        if stop == self.count and stop > start:
            out[-1] = self.hi
        return out

    def __str__(self) -> str:
        return f"{self.lo:g}:{self.hi:g}:{self.count}"


def _positive_number(text: str, what: str, option: str) -> float:
    try:
        v = parse_size(text)
    except ValueError:
        raise ScalesweepError(f"{option}: {what} {clip(text)} is not a number ({SIZE_HINT})") from None
    if not math.isfinite(v):
        raise ScalesweepError(f"{option}: {what} must be finite, got {clip(text)}")
    if v <= 0:
        raise ScalesweepError(f"{option}: {what} must be > 0, got {clip(text)}")
    return v


def parse_range(text: str, option: str = "range") -> LogRange:
    """Parse ``LO:HI:COUNT`` (or a single value) into a :class:`LogRange`, with one-line errors."""
    text = str(text).strip()
    parts = text.split(":")
    if len(parts) == 1:
        v = _positive_number(parts[0], "value", option)
        return LogRange(v, v, 1)
    if len(parts) != 3:
        raise ScalesweepError(f"{option}: expected LO:HI:COUNT (log-spaced, inclusive), got {clip(text)}")
    lo = _positive_number(parts[0], "LO", option)
    hi = _positive_number(parts[1], "HI", option)
    try:
        count = int(parts[2])
    except ValueError:
        raise ScalesweepError(f"{option}: COUNT must be a whole number, got {clip(parts[2])}") from None
    if count < 1:
        raise ScalesweepError(f"{option}: COUNT must be >= 1, got {count}")
    if lo > hi:
        raise ScalesweepError(f"{option}: LO ({lo:g}) is greater than HI ({hi:g})")
    if count == 1 and lo != hi:
        raise ScalesweepError(f"{option}: COUNT 1 needs LO == HI, got {text!r}")
    check_size(option, count, bytes_held=8.0 * count)
    return LogRange(lo, hi, count)


def row_chunks(n_rows: int, row_len: int, chunk_points: int):
    """Split n_rows rows of row_len points into slices of about chunk_points points (at least one row)."""
    step = max(1, chunk_points // max(1, row_len))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))
