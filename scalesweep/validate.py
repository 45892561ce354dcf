"""The checks every input goes through, with one message style: ``WHAT must be RULE, got VALUE``.

A rule is a name (``RULES``): ``pos`` (a finite number > 0), ``int`` (a whole number >= 1), ``fraction``
(a number in (0, 1]) or ``nonneg`` (a finite number >= 0). Scalars are checked by ``number``, columns by
``bad_mask`` (which rows break the rule) and lists of budgets, sizes or losses by ``positive_array``.

A size (a count of parameters, tokens or FLOPs, and the ends of a range) may end in a suffix, any case:
K (thousand, 1e3), M (million, 1e6), B (billion, 1e9) or T (trillion, 1e12). ``parse_size`` reads it as the
decimal it stands for, so ``7B`` is exactly ``float("7e9")`` and ``1.5T`` exactly ``float("1.5e12")``.

Number text longer than ``MAX_NUMBER_TEXT`` characters is refused before it is parsed (no float needs more,
and reading tens of thousands of digits takes seconds), and messages show a value cut to ``SHOWN_CHARS``
characters (``clip``).
"""

from __future__ import annotations

import difflib
import math
import os
import re

from .errors import ScalesweepError

RULES = {"pos": "a finite number > 0", "int": "a whole number >= 1", "fraction": "a number in (0, 1]",
         "nonneg": "a finite number >= 0", "finite": "a finite number"}


def bad_mask(rule: str, v):
    """Which given (non-NaN) values break ``rule``; NaN means "not given" and is never bad."""
    import numpy as np

    v = np.asarray(v, dtype=np.float64)
    given = ~np.isnan(v)
    with np.errstate(invalid="ignore"):
        if rule == "pos":
            ok = np.isfinite(v) & (v > 0)
        elif rule == "int":
            ok = np.isfinite(v) & (v >= 1) & (v == np.floor(v))
        elif rule == "fraction":
            ok = (v > 0) & (v <= 1)
        elif rule == "nonneg":
            ok = np.isfinite(v) & (v >= 0)
        elif rule == "finite":
            ok = np.isfinite(v)
        else:
            raise ValueError(f"unknown rule {rule!r}")
    return given & ~ok


MAX_NUMBER_TEXT = 100  # characters of a number or size written as text
SHOWN_CHARS = 40  # characters of a value a message repeats


def clip(value, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)``, cut to about ``limit`` characters with the full length said: a message stays one
    short line however long the value."""
    text = repr(value)
    if len(text) <= limit + 2:
        return text
    length = len(value) if isinstance(value, (str, bytes)) else len(text)
    return f"{text[:limit]}... ({length:,} characters)"


def check_number_text(text, what: str | None = None) -> None:
    """Refuse number text longer than ``MAX_NUMBER_TEXT`` characters (a ScalesweepError, which is a ValueError:
    callers that catch ValueError for "not a number" catch it too)."""
    if isinstance(text, str) and len(text) > MAX_NUMBER_TEXT:
        raise ScalesweepError(f"{what + ': ' if what else ''}too long for a number (at most {MAX_NUMBER_TEXT} "
                              f"characters), got {clip(text)}")


SIZE_SUFFIXES = {"k": 3, "m": 6, "b": 9, "t": 12}  # thousand, million, billion, trillion: powers of ten
SIZE_HINT = "a size may end in K, M, B or T: 350M, 7B, 1.5T"
_SIZE = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(?:e([+-]?\d+))?([kmbt])", re.IGNORECASE)


def parse_size(text) -> float:
    """A number, or a size with a suffix (``7B``, ``1.5t``, ``2e3M``), as a float; ValueError if it is neither.
    The mantissa and the suffix's power of ten are read as one decimal (``1.5T`` is ``float("1.5e12")``), so the
    result is the float nearest the value written, as for plain numbers. Signs, ``inf`` and ``nan`` pass through
    (the caller's rule refuses them)."""
    if isinstance(text, bool):
        raise ValueError(f"not a number: {text!r}")
    if not isinstance(text, str):
        return float(text)
    check_number_text(text)
    m = _SIZE.fullmatch(text.strip())
    if m is None:
        return float(text)
    mantissa, exponent, suffix = m.groups()
    return float(f"{mantissa}e{int(exponent or 0) + SIZE_SUFFIXES[suffix.lower()]}")


def number(value, what: str, rule: str = "pos", *, size: bool = False) -> float:
    """``value`` as a float that satisfies ``rule``; a one-line error naming ``what`` otherwise. With ``size``,
    text may end in a suffix (``parse_size``). Text over ``MAX_NUMBER_TEXT`` characters is refused unread."""
    check_number_text(value, what)
    try:
        fv = parse_size(value) if size else float(value)
    except (TypeError, ValueError):
        hint = f" ({SIZE_HINT})" if size else ""
        raise ScalesweepError(f"{what} must be {RULES[rule]}{hint}, got {clip(value)}") from None
    if isinstance(value, bool) or not _ok(rule, fv):
        raise ScalesweepError(f"{what} must be {RULES[rule]}, got {clip(value)}")
    return fv


def integer(value, what: str, minimum: int = 0) -> int:
    """``value`` as an int of at least ``minimum`` (a bool or a float is refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ScalesweepError(f"{what} must be a whole number >= {minimum}, got {clip(value)}")
    return value


def _ok(rule: str, v: float) -> bool:
    if rule == "pos":
        return math.isfinite(v) and v > 0
    if rule == "int":
        return math.isfinite(v) and v >= 1 and v == math.floor(v)
    if rule == "fraction":
        return 0 < v <= 1
    if rule == "nonneg":
        return math.isfinite(v) and v >= 0
    if rule == "finite":
        return math.isfinite(v)
    raise ValueError(f"unknown rule {rule!r}")


def positive_array(values, what: str):
    """A 1-D float64 array of finite positive values, else an error naming the first bad entry."""
    import numpy as np

    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ScalesweepError(f"{what}: values must be numbers") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ScalesweepError(f"{what}: expected a 1-D list of values, got shape {arr.shape}")
    if arr.size == 0:
        raise ScalesweepError(f"{what}: no values")
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ScalesweepError(f"{what}: value #{i + 1} is {float(arr[i])}; values must be finite and > 0")
    return np.ascontiguousarray(arr)


def choice(value: str, choices, what: str) -> str:
    """``value`` if it is one of ``choices``; else an error listing them, with a did-you-mean suggestion."""
    if value in choices:
        return value
    raise ScalesweepError(f"unknown {what} {clip(value)}{suggest(value, choices)} (one of: {', '.join(choices)})")


def suggest(name, choices) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` (compared without case), or ``""``."""
    by_lower: dict[str, str] = {}
    for c in choices:
        by_lower.setdefault(str(c).lower(), str(c))
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean {by_lower[close[0]]!r}?" if close else ""


# ------------------------------------------------------------------------------------------- size guards

MAX_ROWS_ENV = "SCALESWEEP_MAX_ROWS"
BYTES_PER_ROW_HELD = 400  # result columns, Arrow table and copies of one result row held in memory at once
MAX_ROWS_DEFAULT = 10**10  # rows streamed to a file: ~1 TB of Parquet, far past any planning sweep
MEMORY_FRACTION = 0.8  # of the memory available now, for what a command holds at once


_max_rows_given: int | None = None


def set_max_rows(limit: int | None) -> None:
    """Set the row limit for this process (``--max-rows``); None goes back to the environment / default."""
    global _max_rows_given
    _max_rows_given = None if limit is None else int(limit)


def max_rows() -> int:
    """The row limit: ``--max-rows`` (``set_max_rows``), else ``SCALESWEEP_MAX_ROWS``, else the default."""
    if _max_rows_given is not None:
        return _max_rows_given
    text = os.environ.get(MAX_ROWS_ENV)
    if text is None:
        return MAX_ROWS_DEFAULT
    try:
        v = parse_size(text)
    except ValueError:
        raise ScalesweepError(f"{MAX_ROWS_ENV} must be a whole number >= 1, got {clip(text)}") from None
    if not (math.isfinite(v) and v >= 1 and v == math.floor(v)):
        raise ScalesweepError(f"{MAX_ROWS_ENV} / --max-rows must be a whole number >= 1, got {clip(text)}")
    return int(v)


def available_memory() -> int:
    """Bytes of memory available to this process now (Linux MemAvailable, else physical memory)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: no memory guard


def check_size(what: str, rows: int, *, bytes_held: float = 0.0, raise_with: str | None = None) -> None:
    """Refuse, with the numbers, a request of more than ``max_rows()`` rows, or one that would hold more than
    ``MEMORY_FRACTION`` of the available memory at once (``bytes_held``). ``raise_with`` names the option that
    makes a big request smaller or streamed."""
    limit = max_rows()
    if rows > limit:
        raise ScalesweepError(f"{what}: {rows:,} rows requested, over the limit of {limit:,} rows; raise it with "
                              f"scalesweep --max-rows N (or {MAX_ROWS_ENV}) if that is intended")
    if bytes_held:
        avail = available_memory()
        if bytes_held > MEMORY_FRACTION * avail:
            hint = f"; {raise_with}" if raise_with else ""
            raise ScalesweepError(f"{what}: {rows:,} rows need about {bytes_held / 2**30:,.1f} GiB in memory at once, "
                                  f"more than the {avail / 2**30:,.1f} GiB available{hint}")
