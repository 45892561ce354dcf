"""Kaplan's overfitting measure, as a column and as a frontier limit (the limit options are
``options.Constraints``; the kernels take them as bounds built by ``engine.bounds``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .codes import OVERFIT_ALPHA_D, OVERFIT_D_C, OVERFIT_N_C, OVERFIT_RATIO

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


def overfit_penalty(params: ArrayLike, tokens: ArrayLike) -> np.ndarray:
    """Kaplan's dL(N, D) (Kaplan et al. 2020, arXiv:2001.08361, Eq. 4.3): how far the loss sits above the
    infinite-data loss of the same model, (1 + (N/N_c)^(alpha_N/alpha_D) D_c/D)^alpha_D - 1 (computed by the
    compiled ``kernels.loss.overfit_rows``, in parallel: two powers per row)."""
    from .kernels.loss import overfit_rows

    n, d = np.broadcast_arrays(np.asarray(params, dtype=np.float64), np.asarray(tokens, dtype=np.float64))
    out = np.empty(n.shape)
    overfit_rows(np.ascontiguousarray(n).reshape(-1), np.ascontiguousarray(d).reshape(-1), out.reshape(-1))
    return out


def overfit_log_k(max_overfit: ArrayLike) -> np.ndarray:
    """ln K such that dL <= max_overfit  <=>  ln D >= ln K + (alpha_N/alpha_D) ln N (np.nan -> -inf: no limit).

    With Q = (1 + x)^(1/alpha_D) - 1: D >= D_c (N/N_c)^r / Q, so ln K = ln(D_c/Q) - r ln N_c. For x = 0.02
    this is Kaplan et al. 2020's Eq. 4.4, D >~ 5e3 N^0.74.
    """
    x = np.asarray(max_overfit, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = (1.0 + x) ** (1.0 / OVERFIT_ALPHA_D) - 1.0
        out = np.log(OVERFIT_D_C / q) - OVERFIT_RATIO * np.log(OVERFIT_N_C)
    return np.where(np.isnan(x), -np.inf, out)
