"""L over a params x tokens grid, written into a caller-owned buffer (no temporaries per point).

The additive families are separable: for chinchilla each row is (E + A/N_i^alpha) + B/D_j^beta, i.e. one
add per point (memory-bound); for kaplan each point is (a_i + b_j)^alpha_D, one power per point
(compute-bound). The addition order is the published formula's, so values equal a direct evaluation.
"""

import numpy as np
from numba import njit, prange

from ..codes import CHINCHILLA, KAPLAN
from . import JIT, PJIT
from .loss import loss_point


@njit(**JIT)
def _token_terms(family, p, d_axis):
    b = np.empty(d_axis.size, dtype=np.float64)
    for j in range(d_axis.size):
        if family == CHINCHILLA:
            b[j] = p[2] / d_axis[j] ** p[4]
        else:
            b[j] = p[1] / d_axis[j]
    return b


@njit(**PJIT)
def surface_grid(family, p, n_axis, d_axis, out):
    """out[i, j] = L(n_axis[i], d_axis[j]); out is float64 or float32, shape (len(n), len(d))."""
    nn, nd = n_axis.size, d_axis.size
    if family == CHINCHILLA or family == KAPLAN:
        b = _token_terms(family, p, d_axis)
        if family == CHINCHILLA:
            for i in prange(nn):
                a = p[0] + p[1] / n_axis[i] ** p[3]
                row = out[i]
                for j in range(nd):
                    row[j] = a + b[j]
        else:
            r = p[2] / p[3]
            ad = p[3]
            for i in prange(nn):
                a = (p[0] / n_axis[i]) ** r
                row = out[i]
                for j in range(nd):
                    row[j] = (a + b[j]) ** ad
    else:
        for i in prange(nn):
            for j in range(nd):
                out[i, j] = loss_point(family, p, n_axis[i], d_axis[j])
