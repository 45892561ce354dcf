"""Numba kernels. Flat numpy arrays in, flat numpy arrays out: no pandas, no I/O, no Python objects.

Compiled with ``cache=True`` so a second process reuses the machine code, and with ``error_model="numpy"``
and *without* ``fastmath`` so NaN and inf propagate as IEEE says (infeasible rows stay flagged).
"""

JIT = dict(cache=True, nogil=True, error_model="numpy")
PJIT = dict(cache=True, nogil=True, error_model="numpy", parallel=True)
