"""Frontier constraints: validation once, up front, then per-row bounds for the kernel."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from .errors import ScalesweepError

# Index = code emitted by kernels/frontier.py.
ACTIVE_NAMES = (
    "none",
    "min_params",
    "max_params",
    "min_tokens",
    "max_tokens",
    "min_tokens_per_param",
    "max_tokens_per_param",
    # Set outside the kernels (engine.py): the bound came from a hardware or data limit, not a user limit.
    "memory",  # max params = gpus x GPU memory / bytes per param
    "unique_tokens",  # tokens capped by the unique data available (single-epoch laws)
    "max_days",  # a target-loss row needs more compute than the GPUs deliver in max_days
)
CONSTRAINT_NAMES = ACTIVE_NAMES[1:7]


@dataclass(frozen=True)
class Constraints:
    """Limits on the allocation; ``None`` means no limit. Tokens per parameter is D/N."""

    min_params: float | None = None
    max_params: float | None = None
    min_tokens: float | None = None
    max_tokens: float | None = None
    min_tokens_per_param: float | None = None
    max_tokens_per_param: float | None = None

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            opt = "--" + f.name.replace("_", "-")
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise ScalesweepError(f"{opt} must be a number, got {v!r}") from None
            if isinstance(v, bool) or not math.isfinite(fv) or fv <= 0:
                raise ScalesweepError(f"{opt} must be a finite number > 0, got {v!r}")
            object.__setattr__(self, f.name, fv)
        for what in ("params", "tokens", "tokens_per_param"):
            lo, hi = getattr(self, "min_" + what), getattr(self, "max_" + what)
            if lo is not None and hi is not None and lo > hi:
                opt = what.replace("_", "-")
                raise ScalesweepError(f"--min-{opt} ({lo:g}) is greater than --max-{opt} ({hi:g}): no allocation can satisfy both")

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(bounds, log_bounds) as (1, 6) arrays: absent lower limits are 0 / -inf, upper inf / +inf."""
        raw = np.empty((1, 6))
        for i, name in enumerate(CONSTRAINT_NAMES):
            v = getattr(self, name)
            raw[0, i] = v if v is not None else (0.0 if name.startswith("min") else np.inf)
        with np.errstate(divide="ignore"):
            return raw, np.log(raw)
