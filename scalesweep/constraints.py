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
    "max_overfit",  # Kaplan's overfitting measure (Eq. 4.3) at its limit
)
CONSTRAINT_NAMES = ACTIVE_NAMES[1:7]  # the six limits on params, tokens and tokens per parameter

# Kaplan's overfitting measure (Kaplan et al. 2020 Eq. 4.3, sheet §1.2) with the Table 2 constants of the
# joint L(N, D) fit: dL(N, D) = (1 + (N/N_c)^(alpha_N/alpha_D) D_c/D)^alpha_D - 1, N non-embedding.
OVERFIT_N_C, OVERFIT_D_C, OVERFIT_ALPHA_N, OVERFIT_ALPHA_D = 6.4e13, 1.8e13, 0.076, 0.103


def overfit_penalty(params, tokens):
    """Kaplan's dL(N, D) (Eq. 4.3): how far the loss sits above the infinite-data loss of the same model."""
    r = OVERFIT_ALPHA_N / OVERFIT_ALPHA_D
    return (1.0 + (np.asarray(params) / OVERFIT_N_C) ** r * OVERFIT_D_C / np.asarray(tokens)) ** OVERFIT_ALPHA_D - 1.0


def overfit_log_k(max_overfit):
    """ln K such that dL <= max_overfit  <=>  ln D >= ln K + (alpha_N/alpha_D) ln N (np.nan -> -inf: no limit).

    With Q = (1 + x)^(1/alpha_D) - 1: D >= D_c (N/N_c)^r / Q, so ln K = ln(D_c/Q) - r ln N_c. For x = 0.02
    this is Eq. 4.4's D >~ 5e3 N^0.74 (sheet §1.2).
    """
    x = np.asarray(max_overfit, dtype=np.float64)
    r = OVERFIT_ALPHA_N / OVERFIT_ALPHA_D
    with np.errstate(invalid="ignore", divide="ignore"):
        q = (1.0 + x) ** (1.0 / OVERFIT_ALPHA_D) - 1.0
        out = np.log(OVERFIT_D_C / q) - r * np.log(OVERFIT_N_C)
    return np.where(np.isnan(x), -np.inf, out)


@dataclass(frozen=True)
class Constraints:
    """Limits on the allocation; ``None`` means no limit. Tokens per parameter is D/N."""

    min_params: float | None = None
    max_params: float | None = None
    min_tokens: float | None = None
    max_tokens: float | None = None
    min_tokens_per_param: float | None = None
    max_tokens_per_param: float | None = None
    max_overfit: float | None = None  # Kaplan's dL (Eq. 4.3) at most this (needs D >= K N^0.74)

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
        """(bounds, log_bounds) as (1, 7) arrays: the six limits (absent lower limits 0 / -inf, upper inf /
        +inf), then the overfitting limit (raw value, and ln K of ``overfit_log_k``)."""
        raw = np.empty((1, 7))
        for i, name in enumerate(CONSTRAINT_NAMES):
            v = getattr(self, name)
            raw[0, i] = v if v is not None else (0.0 if name.startswith("min") else np.inf)
        raw[0, 6] = np.inf if self.max_overfit is None else self.max_overfit
        with np.errstate(divide="ignore"):
            lb = np.log(raw)
        lb[0, 6] = overfit_log_k(np.nan if self.max_overfit is None else self.max_overfit)
        return raw, lb
