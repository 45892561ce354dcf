"""Fit a scaling law to a user's own training runs (Hoffmann et al. 2022, 'Training Compute-Optimal Large
Language Models', arXiv:2203.15556, Eq. 3 and App. D.2; Besiroglu et al. 2024, 'Chinchilla Scaling: A
replication attempt', arXiv:2404.10102).

Two methods:

* ``lbfgs`` (default): the Hoffmann et al. / Besiroglu et al. procedure. Huber loss (delta 1e-3) of the
  log-space residuals, summed over points, minimised by L-BFGS with analytic gradients from every point of
  an initialisation grid (4,500 starts for chinchilla: alpha, beta in {0, 0.5, ..., 2}, e in
  {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}); the best objective wins. The starts run in parallel in
  compiled code.
* ``vp`` (chinchilla only): variable projection. For fixed (alpha, beta) the model E + A/N^alpha + B/D^beta
  is linear in (E, A, B): those are solved exactly by non-negative least squares on the losses, and only
  (alpha, beta) are searched, on a grid and then by a compass search. Its objective is the (weighted) sum of
  squared loss residuals, not the Huber objective, so the two methods can differ on noisy data.

A bootstrap refits on resamples of the points (``bootstrap=B``, ``seed``): each resample starts from the
full-data optimum, runs in parallel, and the same seed gives the same samples on any thread count.

The module is callable: ``scalesweep.fit(params, tokens, loss, ...)`` is :func:`fit`, so the package's ``fit``
is both this module and the function.
"""

from __future__ import annotations

import html
import inspect
import math
import os
import sys
import time
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ScalesweepError
from .kernels import fit as kfit
from .laws import FAMILIES, FitSpec, Law, validate_params
from .output import STDOUT, write_json
from .validate import choice, integer, number

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

METHODS = ("lbfgs", "vp")
OBJECTIVES = {"huber": kfit.LOSS_HUBER, "lad": kfit.LOSS_LAD}
DEFAULT_DELTA = 1e-3  # Hoffmann et al. 2022, App. D.2
MAXITER = 1000
BOOTSTRAP_BATCH = 256  # resamples refitted per compiled pass (progress is shown between passes)
WITHIN = 1e-6  # a start "reached the best" when f <= f_best * (1 + WITHIN) + 1e-12

FITTABLE = tuple(name for name, f in FAMILIES.items() if f.fit is not None)  # start grids: FitSpec in laws.py
VP_ALPHAS = np.arange(0.02, 1.5 + 1e-9, 0.02)  # grid for (alpha, beta), then a compass search
VP_TOL = 1e-7  # compass search to here, then Levenberg-Marquardt on all five parameters
VP_MAXITER = 100


def _fit_spec(family: str) -> FitSpec:
    """The family's fit entry (``laws.FitSpec``); the family is one of ``FITTABLE``."""
    spec = FAMILIES[family].fit
    if spec is None:
        raise ScalesweepError(f"family {family!r} cannot be fitted (families that can: {', '.join(FITTABLE)})")
    return spec


def start_grid(family: str, grid: Mapping[str, Sequence[float]] | None = None) -> np.ndarray:
    """Every combination of the grid's values, one start per row, in the family's theta order."""
    g = _fit_spec(family).grid if grid is None else grid
    names = list(_fit_spec(family).grid)
    missing = [n for n in names if n not in g]
    if missing:
        raise ScalesweepError(f"start grid for {family} needs {', '.join(names)} (missing {missing[0]!r})")
    axes = []
    for n in names:
        vals = np.atleast_1d(np.asarray(g[n], dtype=np.float64))
        if vals.size == 0 or not np.isfinite(vals).all():
            raise ScalesweepError(f"start grid {n!r}: values must be finite numbers")
        axes.append(vals)
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.ascontiguousarray(np.stack([m.ravel() for m in mesh], axis=1))


def parse_grid(family: str, items: Sequence[str] | None) -> dict[str, list[float]] | None:
    """``--grid NAME=V1,V2,...`` items replacing axes of the family's start grid (None: no items)."""
    if not items:
        return None
    choice(family, FITTABLE, "family to fit")
    grid = dict(_fit_spec(family).grid)
    for item in items:
        key, sep, vals = item.partition("=")
        key = key.strip()
        if not sep or key not in grid:
            raise ScalesweepError(f"--grid expects NAME=V1,V2,... with NAME one of {', '.join(grid)}; got {item!r}")
        try:
            grid[key] = [float(v) for v in vals.split(",")]
        except ValueError:
            raise ScalesweepError(f"--grid {key}: values must be numbers, got {vals!r}") from None
    return grid


def theta_to_params(family: str, theta: np.ndarray) -> dict[str, float]:
    """The family's parameters at the fit kernel's theta, unchecked: a log past float64's range gives inf (or 0),
    never an OverflowError; ``validate_params`` says whether the result is a law."""
    return _fit_spec(family).to_params(theta)


def params_to_theta(family: str, p: Mapping[str, float]) -> np.ndarray:
    """The fit kernel's theta (e.g. ln A, ln B, ln E, alpha, beta) of a family's parameters."""
    return _fit_spec(family).to_theta(p)


# ----------------------------------------------------------------------------------------------- input


def check_runs(params: ArrayLike, tokens: ArrayLike, loss: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs as three float64 arrays of one length; a one-line error names the first bad value."""
    out = []
    for name, v in (("params", params), ("tokens", tokens), ("loss", loss)):
        a = np.asarray(v, dtype=np.float64).reshape(-1)
        bad = ~(np.isfinite(a) & (a > 0))
        if bad.any():
            i = int(np.argmax(bad))
            raise ScalesweepError(f"runs, row {i + 1}: {name} is {a[i]!r}; values must be finite and > 0")
        out.append(np.ascontiguousarray(a))
    if not out[0].size == out[1].size == out[2].size:
        raise ScalesweepError("runs: params, tokens and loss must have the same length")
    return out[0], out[1], out[2]


def read_runs(path: str | os.PathLike[str], *, params_column: str = "params", tokens_column: str | None = None,
              flops_column: str | None = None, loss_column: str = "loss") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(params, tokens, loss) from a CSV or Parquet file. Tokens come from ``tokens_column`` (None: "tokens"), or
    from ``flops_column`` as tokens = flops/(6*params); with neither given, a file without a "tokens" column but
    with a "flops" column is read that way. Giving both columns is an error (one of them would be ignored)."""
    import pandas as pd

    from . import storage
    from .readers import read_table_file

    if tokens_column is not None and flops_column is not None:
        raise ScalesweepError("--tokens-column and --flops-column exclude each other: give one (tokens = flops / "
                              "(6 params) with --flops-column)")
    name = storage.shown(path)
    df = read_table_file(path, "runs file")
    cols = [str(c) for c in df.columns]
    if tokens_column is None:
        tokens_column = "tokens"
        use_flops = flops_column is not None or (tokens_column not in cols and "flops" in cols)
    else:
        use_flops = False
    need = [params_column, loss_column, (flops_column or "flops") if use_flops else tokens_column]
    for c in need:
        if c not in cols:
            raise ScalesweepError(f"runs file {name!r} has no column {c!r} (columns: {', '.join(cols) or 'none'})")
    if len(df) == 0:
        raise ScalesweepError(f"runs file {name!r} has no rows")

    def num(c: str) -> np.ndarray:
        v = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~(np.isfinite(v) & (v > 0))
        if bad.any():
            i = int(np.argmax(bad))
            raise ScalesweepError(f"runs file {name!r}, row {i + 1}, column {c!r}: {df[c].iloc[i]!r} is not a "
                                  "finite number > 0")
        return v

    n, loss = num(params_column), num(loss_column)
    d = num(flops_column or "flops") / (6.0 * n) if use_flops else num(tokens_column)
    return check_runs(n, d, loss)


# ------------------------------------------------------------------------------------------------- fit


@dataclass(repr=False)
class FitResult:
    """A fit: the law, what the fit did (``info``: method, objective, runs, starts, seconds) and, with a
    bootstrap, the refitted parameter samples and how they were drawn (``extra``)."""

    law: Law
    info: dict[str, Any]
    samples: np.ndarray | None = None  # bootstrap parameter samples, (B, K) in the family's order
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def standard_errors(self) -> dict[str, float] | None:
        """Each parameter's bootstrap standard error (None without a bootstrap); huge or non-finite samples give
        inf or nan."""
        if self.samples is None:
            return None
        with np.errstate(over="ignore", invalid="ignore"):
            se = np.std(self.samples, axis=0, ddof=1)
        return dict(zip(self.law.spec.param_names, se.tolist(), strict=True))

    def _summary(self) -> str:
        """Objective, runs and bootstrap in words: what both reprs show besides the parameters."""
        info = self.info
        objective = info["objective"] if info["method"] == "lbfgs" else "least squares"
        excluded = f" ({info['excluded_highest_loss']} excluded)" if info["excluded_highest_loss"] else ""
        boot = f"bootstrap {len(self.samples)}" if self.samples is not None else "no bootstrap"
        return (f"{objective} objective {info['objective_value']:.4g} ({info['method']}), "
                f"{info['n_points'] - info['excluded_highest_loss']} runs{excluded}, {boot}")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v:.4g}" for k, v in self.law.params.items())
        return f"FitResult({self.law.family}: {params}; {self._summary()})"

    def _repr_html_(self) -> str:
        """The parameters as a table, with their bootstrap standard errors where there are some."""
        se = self.standard_errors
        head = "<th>parameter</th><th>value</th>" + ("<th>standard error</th>" if se is not None else "")
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.6g}</td>"
                       + (f"<td>{se[k]:.3g}</td>" if se is not None else "") + "</tr>"
                       for k, v in self.law.params.items())
        caption = html.escape(f"FitResult: {self.law.family}; {self._summary()}")
        return f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the law file ``scalesweep fit`` writes (``--law-file`` reads it back)."""
        out: dict[str, Any] = {"family": self.law.family, "parameters": dict(self.law.params), "fit": self.info}
        if self.samples is not None:
            names = self.law.spec.param_names
            # huge or non-finite samples give an inf/nan spread, written as the strings "inf"/"nan" (strict JSON)
            with np.errstate(over="ignore", invalid="ignore"):
                pct = {q: np.percentile(self.samples, float(q), axis=0) for q in ("2.5", "5", "50", "95", "97.5")}
            out["bootstrap"] = {
                **self.extra,
                "parameter_names": list(names),
                "standard_errors": self.standard_errors,
                "percentiles": {q: dict(zip(names, v.tolist(), strict=True)) for q, v in pct.items()},
                "samples": self.samples.tolist(),
            }
        return out


def _weights(n: int, exclude_highest: int, loss: np.ndarray) -> np.ndarray:
    w = np.ones(n)
    if exclude_highest:
        w[np.argsort(-loss, kind="stable")[:exclude_highest]] = 0.0
    return w


def fit(params: ArrayLike, tokens: ArrayLike, loss: ArrayLike, *, family: str = "chinchilla", method: str = "lbfgs",
        delta: float | None = None, objective: str = "huber", exclude_highest: int = 0,
        grid: Mapping[str, Sequence[float]] | None = None, bootstrap: int = 0, seed: int | None = None,
        maxiter: int = MAXITER, progress: Callable[[int, int], None] | None = None) -> FitResult:
    """Fit ``family`` to runs (N, D, L); see the module docstring for the methods.

    ``delta`` (None: ``DEFAULT_DELTA``) is the Huber width, for ``method="lbfgs"`` with ``objective="huber"``;
    ``grid`` (None: the family's start grid) is for ``method="lbfgs"``; ``seed`` (None: 0) is for ``bootstrap``;
    ``progress(done, total)`` is told the bootstrap refits done.
    Giving one where it would have no effect is an error, as is anything else that would be silently ignored."""
    choice(family, FITTABLE, "family to fit")
    choice(method, METHODS, "method")
    if method not in _fit_spec(family).methods:
        raise ScalesweepError(f"--method {method} does not fit the {family} family (methods for it: "
                              f"{', '.join(_fit_spec(family).methods)}); vp needs a model linear in E, A, B")
    choice(objective, list(OBJECTIVES), "objective")
    if method == "vp" and objective != "huber":
        raise ScalesweepError("--objective applies to --method lbfgs (vp minimises squared residuals)")
    if method == "vp" and delta is not None:
        raise ScalesweepError("--delta needs --method lbfgs (vp minimises squared residuals, not the Huber loss)")
    if method == "vp" and grid is not None:
        raise ScalesweepError("--grid needs --method lbfgs (vp searches its own (alpha, beta) grid)")
    if objective == "lad" and delta is not None:
        raise ScalesweepError("--delta needs --objective huber (lad has no delta)")
    if seed is not None and not bootstrap:
        raise ScalesweepError("--seed needs --bootstrap")
    delta = number(DEFAULT_DELTA if delta is None else delta, "--delta", "pos")
    seed = 0 if seed is None else seed
    for v, opt in ((exclude_highest, "--exclude-highest"), (bootstrap, "--bootstrap"), (seed, "--seed")):
        integer(v, opt, 0)
    if bootstrap == 1:
        raise ScalesweepError("--bootstrap needs at least 2 resamples")
    n, d, y = check_runs(params, tokens, loss)
    k = len(FAMILIES[family].param_names)
    used = n.size - exclude_highest
    if exclude_highest >= n.size:
        raise ScalesweepError(f"--exclude-highest {exclude_highest} leaves no runs ({n.size} given)")
    if used <= k:
        raise ScalesweepError(f"too few points: {used} left to fit {k} parameters (need at least {k + 1})")
    ln_n, ln_d, ln_l = np.log(n), np.log(d), np.log(y)
    w = _weights(n.size, exclude_highest, y)
    fam_id = FAMILIES[family].id
    t0 = time.perf_counter()
    info = {"method": method, "n_points": int(n.size), "excluded_highest_loss": int(exclude_highest)}
    if method == "lbfgs":
        starts = start_grid(family, grid)
        th = np.empty_like(starts)
        fv = np.empty(starts.shape[0])
        kfit.multistart(fam_id, starts, ln_n, ln_d, ln_l, w, OBJECTIVES[objective], float(delta), maxiter, th, fv)
        best = int(np.argmin(fv))
        if not math.isfinite(fv[best]):
            raise ScalesweepError("the fit failed from every start (objective not finite)")
        theta = np.empty(starts.shape[1])  # polish the best start to full precision
        fbest, _ = kfit.lbfgs(fam_id, th[best], ln_n, ln_d, ln_l, w, OBJECTIVES[objective], float(delta), maxiter,
                              kfit.FTOL_POLISH, theta)
        fbest = float(fbest)
        if not fbest <= fv[best]:  # never worse than the screened start (a failed polish keeps it)
            theta, fbest = th[best].copy(), float(fv[best])
        info.update({"objective": objective, "delta": float(delta) if objective == "huber" else None,
                     "objective_value": fbest, "starts": int(starts.shape[0]),
                     "starts_within_1e-6": int(np.sum(fv <= fbest * (1 + WITHIN) + 1e-12)),
                     "best_start": starts[best].tolist()})
    else:
        alphas = VP_ALPHAS
        grid_f = np.empty((alphas.size, alphas.size))
        kfit.vp_grid(alphas, alphas, ln_n, ln_d, y, w, grid_f)
        i, j = np.unravel_index(int(np.argmin(grid_f)), grid_f.shape)
        a, b, _, c = kfit.vp_refine(alphas[i], alphas[j], 0.02, ln_n, ln_d, y, w, VP_TOL)
        p, fbest = kfit.vp_polish(np.array([c[0], c[1], c[2], a, b]), ln_n, ln_d, y, w, VP_MAXITER)
        theta = None
        vp_params = dict(zip(("E", "A", "B", "alpha", "beta"), (float(v) for v in p), strict=True))
        info.update(objective="squared residuals of L (variable projection, E, A, B >= 0)",
                    objective_value=float(fbest), grid_points=int(grid_f.size))
    info["seconds"] = time.perf_counter() - t0
    try:
        raw = theta_to_params(family, theta) if theta is not None else vp_params
        law = Law(family=family, params=validate_params(family, raw), citation="fitted by scalesweep fit",
                  conventions="as the runs it was fitted to")
    except ScalesweepError as exc:
        raise ScalesweepError(f"the best fit is not a valid {family} law ({exc}); check the runs") from None
    result = FitResult(law=law, info=info)
    if bootstrap:
        result.samples, result.extra = _bootstrap(family, method, law, ln_n, ln_d, ln_l, y, w, objective, delta,
                                                  bootstrap, seed, maxiter, progress)
    return result


def _bootstrap(family: str, method: str, law: Law, ln_n: np.ndarray, ln_d: np.ndarray, ln_l: np.ndarray,
               y: np.ndarray, w: np.ndarray, objective: str, delta: float, count: int, seed: int,
               maxiter: int, progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Refit on ``count`` resamples (multiplicities drawn from the included points) from the full-data fit."""
    rng = np.random.default_rng(seed)
    included = np.flatnonzero(w > 0)
    draws = rng.integers(0, included.size, size=(count, included.size))
    flat = (np.arange(count)[:, None] * ln_n.size + included[draws]).ravel()
    weights = np.bincount(flat, minlength=count * ln_n.size).reshape(count, ln_n.size).astype(np.float64)
    t0 = time.perf_counter()
    names = FAMILIES[family].param_names
    k = len(names)
    fam_id = FAMILIES[family].id
    th, fv, samples = np.empty((count, k)), np.empty(count), np.empty((count, 5))
    theta0 = params_to_theta(family, law.params) if method == "lbfgs" else None
    # Resamples are refitted BOOTSTRAP_BATCH at a time (each on its own, in parallel), so progress can be shown
    # between batches; the batching does not change any refit.
    if progress is not None:
        progress(0, count)
    for s in range(0, count, BOOTSTRAP_BATCH):
        e = min(count, s + BOOTSTRAP_BATCH)
        if method == "lbfgs":
            kfit.bootstrap_fits(fam_id, theta0, ln_n, ln_d, ln_l, weights[s:e], OBJECTIVES[objective], float(delta),
                                maxiter, th[s:e], fv[s:e])
        else:
            kfit.vp_bootstrap(law.params["alpha"], law.params["beta"], 0.02, ln_n, ln_d, y, weights[s:e], VP_TOL,
                              VP_MAXITER, samples[s:e])
        if progress is not None:
            progress(e, count)
    if method == "lbfgs":
        samples = np.array([[p[name] for name in names] for p in (theta_to_params(family, t) for t in th)])
        objective_bad = ~np.isfinite(fv)
    else:
        objective_bad = np.zeros(count, dtype=bool)
    invalid = [_invalid(family, dict(zip(names, row, strict=True))) for row in samples]
    bad = objective_bad | np.array([why is not None for why in invalid], dtype=bool)
    if bad.any():  # any failed resample fails the bootstrap: dropping them would narrow the spread unseen
        why = [f"first invalid refit: {next(w for w in invalid if w is not None)}"] \
            if any(w is not None for w in invalid) else []
        why += ["objective not finite"] if objective_bad.any() else []
        raise ScalesweepError(f"{int(bad.sum())} of {count} bootstrap refits failed ({'; '.join(why)}); the runs do "
                              f"not pin down the {family} law on every resample (add runs, or fit without --bootstrap)")
    return samples, {"resamples": int(count), "seed": int(seed), "seconds": time.perf_counter() - t0,
                     "start": "each resample is refitted from the full-data optimum"}


def _invalid(family: str, params: Mapping[str, float]) -> str | None:
    """Why a bootstrap refit's parameters are not a law of the family (``validate_params``), or None."""
    try:
        validate_params(family, params)
    except ScalesweepError as exc:
        return str(exc)
    return None


def check_law_path(path: str | os.PathLike[str]) -> None:
    """Refuse a law file name other than ``*.json`` (a law file is JSON whatever the name); ``-`` is stdout."""
    if str(path) == STDOUT:
        return
    if Path(str(path)).suffix.lower() != ".json":
        raise ScalesweepError(f"-o {path}: a law file is JSON; give a .json name (or - for stdout)")


def write_law_file(path: str | os.PathLike[str], result: FitResult) -> None:
    """Write the fit as a JSON law file (``--law-file`` reads it back), atomically; ``-`` is stdout."""
    check_law_path(path)
    write_json(path, result.to_dict())


def read_bootstrap(path: str | os.PathLike[str]) -> tuple[str, np.ndarray]:
    """(family, samples (B, K)) from a law file written by ``scalesweep fit --bootstrap``."""
    from . import storage
    from .readers import json_loads

    try:
        data = json_loads(storage.read_bytes(path), f"law file {storage.shown(path)!r}")
        boot = data["bootstrap"]
        family = data["family"]
        names = FAMILIES[family].param_names
        if list(boot["parameter_names"]) != list(names):
            raise KeyError("parameter_names")
        samples = np.asarray(boot["samples"], dtype=np.float64)
    except ScalesweepError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ScalesweepError(f"law file {str(path)!r} has no usable bootstrap samples ({type(exc).__name__}: "
                              f"{exc}); run `scalesweep fit --bootstrap N` first") from None
    if samples.ndim != 2 or samples.shape[1] != len(names) or samples.shape[0] < 2:
        raise ScalesweepError(f"law file {str(path)!r}: bootstrap samples must be a (B >= 2) x {len(names)} table")
    if not np.isfinite(samples).all():
        raise ScalesweepError(f"law file {str(path)!r}: bootstrap samples must be finite")
    return family, samples


class _CallableModule(types.ModuleType):
    """This module's type: calling the module calls :func:`fit` (see the module docstring)."""

    def __call__(self, *args: Any, **kwargs: Any) -> FitResult:
        return fit(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(fit)


sys.modules[__name__].__class__ = _CallableModule
