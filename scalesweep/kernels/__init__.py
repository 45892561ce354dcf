"""Numba kernels. Flat numpy arrays in, flat numpy arrays out: no pandas, no I/O, no Python objects.

Compiled with ``cache=True`` so a second process reuses the machine code, and with ``error_model="numpy"``
and *without* ``fastmath`` so NaN and inf propagate as IEEE says (infeasible rows stay flagged).

Where numba finds no writable cache location (an installed package in a read-only place and no usable
home directory), the kernels compile without the on-disk cache, with one warning naming ``NUMBA_CACHE_DIR``.
"""

import sys


def _identity(x):
    return x


def _cache_available() -> bool:
    """Whether numba can cache functions of this package (it picks the location when a function is
    decorated, so decorating a probe from this directory answers for every kernel)."""
    import numba

    try:
        numba.njit(cache=True)(_identity)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return False
    return True


CACHE = _cache_available()
if not CACHE:
    sys.stderr.write("warning: numba has no writable cache location, so kernels compile on every run; set "
                     "NUMBA_CACHE_DIR to a writable directory to keep them\n")

JIT = dict(cache=CACHE, nogil=True, error_model="numpy")
PJIT = dict(cache=CACHE, nogil=True, error_model="numpy", parallel=True)

from ..progress import kernels_loaded  # noqa: E402  (after JIT and PJIT: what waits may compile)

kernels_loaded()
