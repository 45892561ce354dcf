"""Fit a scaling law to a user's own training runs (Hoffmann et al. 2022, 'Training Compute-Optimal Large
Language Models', arXiv:2203.15556, Eq. 3 and App. D.2; Besiroglu et al. 2024, 'Chinchilla Scaling: A
replication attempt', arXiv:2404.10102).

Two methods and five estimators (``estimator=``; ``method``/``objective`` name the first three and ls-vp):

* ``lbfgs``: the Hoffmann et al. / Besiroglu et al. procedure. A robust loss of the log-space residuals, summed
  over points, minimised by L-BFGS with analytic gradients from an initialisation grid (4,500 starts for
  chinchilla: alpha, beta in {0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}); the best
  objective wins and is polished to full precision. Estimators: ``huber`` (delta 1e-3, the default), ``lad``, and
  ``huber-likelihood``, Epoch's scale-adjusted Huber likelihood: the negative log-likelihood of residuals with
  density exp(-Huber_delta(r/sigma)) / (sigma Z(delta)), sigma fitted with the law (delta in units of sigma;
  ``info["sigma"]``, ``info["log_likelihood"]``). ``asymmetry=k`` weighs the runs the law over-predicts k times
  (huber, lad).
  ``search="screened"`` (default) evaluates the objective at every start, runs L-BFGS from the starts in that
  order in fixed batches, and stops once two batches in a row found nothing better and at least three starts
  reached the best (``SCREEN_*``); ``search="full"`` runs every start. Tested equal to the full grid's best
  objective to 1e-12 (relative) on several data sets; the batches do not depend on the thread count.
* ``vp`` (chinchilla only): variable projection. For fixed (alpha, beta) the model E + A/N^alpha + B/D^beta
  is linear in (E, A, B): those are solved exactly by non-negative least squares, and only (alpha, beta) are
  searched, on a grid and then by a compass search. ``ls-vp`` minimises the (weighted) sum of squared loss
  residuals, then polishes all five parameters by Levenberg-Marquardt; ``huber-vp`` the Huber loss of the
  relative residuals (pred - L)/L, its (E, A, B) by iteratively reweighted non-negative least squares.

``data_constrained`` (Muennighoff et al. 2023, arXiv:2305.16264) is fitted by the lbfgs estimators on runs that
also give their unique tokens (``unique_tokens``: each run's U_D; D > U_D means repeated epochs): all seven
constants jointly (E, A, B, alpha, beta, R_D*, R_N*; theta as chinchilla's plus ln R_D*, ln R_N*), or with
``base_law=`` only R_D* and R_N*, E, A, B, alpha, beta held at the base law's values. The law written has
U_D = inf (``--unique-tokens`` sets it where it is used).

Per-run ``weights`` multiply every estimator's terms. A bootstrap refits on resamples of the points
(``bootstrap=B``, ``seed``): each resample starts from the full-data optimum (``bootstrap_start="optimum"``) or
searches the start grid again (``"grid"``), and the same seed gives the same samples on any thread count.
``holdout_top``, ``cv="budgets"`` and :func:`fit_compare` validate a fit; ``FitResult`` carries the residual
table, the parameter correlation matrix and flags (an optimum outside the start grid, a parameter at its bound).
The fit calls no BLAS (its small solves are by hand), so no BLAS threads compete with numba's; ``info["seconds"]``
is the fit's own time, ``info["compile_seconds"]`` the kernels' compilation or cache load before it.

The module is callable: ``scalesweep.fit(params, tokens, loss, ...)`` is :func:`fit`, so the package's ``fit``
is both this module and the function.
"""

from __future__ import annotations

import contextlib
import html
import inspect
import math
import os
import sys
import time
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ScalesweepError
from .kernels import fit as kfit
from .laws import FAMILIES, FitSpec, Law, get_law, load_law_file, validate_params
from .output import STDOUT, write_json
from .validate import choice, integer, number

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

METHODS = ("lbfgs", "vp")
OBJECTIVES = {"huber": kfit.LOSS_HUBER, "lad": kfit.LOSS_LAD}
DEFAULT_DELTA = 1e-3  # Hoffmann et al. 2022, App. D.2
MAXITER = 1000
BOOTSTRAP_BATCH = 256  # resamples refitted per compiled pass (progress is shown between passes)
WITHIN = 1e-6  # a start "reached the best" when f <= f_best + WITHIN * |f_best| + 1e-12

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


def _run_column(path: str | os.PathLike[str], column: str, valid: Callable[[np.ndarray], np.ndarray],
                what: str) -> np.ndarray:
    """``column`` of a runs file as numbers, in ``read_runs``' order; the first row where ``valid`` is false is
    refused with one line saying the column holds ``what``."""
    import pandas as pd

    from . import storage
    from .readers import read_table_file

    name = storage.shown(path)
    df = read_table_file(path, "runs file")
    cols = [str(c) for c in df.columns]
    if column not in cols:
        raise ScalesweepError(f"runs file {name!r} has no column {column!r} (columns: {', '.join(cols) or 'none'})")
    v = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~valid(v)
    if bad.any():
        i = int(np.argmax(bad))
        raw = df[column].iloc[i]
        raw = raw.item() if isinstance(raw, np.generic) else raw
        raise ScalesweepError(f"runs file {name!r}, row {i + 1}, column {column!r}: {raw!r} is not {what}")
    return v


def read_weights(path: str | os.PathLike[str], column: str) -> np.ndarray:
    """Per-run weights from ``column`` of a runs file (the rows ``read_runs`` reads, in its order): finite, >= 0."""
    return _run_column(path, column, lambda v: np.isfinite(v) & (v >= 0), "a finite number >= 0 (a weight)")


def read_unique_tokens(path: str | os.PathLike[str], column: str) -> np.ndarray:
    """Each run's unique tokens (U_D; ``inf``: unlimited) from ``column`` of a runs file, in ``read_runs``' order:
    numbers > 0 (NaN is not; +inf, unlimited unique data, is)."""
    return _run_column(path, column, lambda v: v > 0, "a number > 0 (unique tokens; inf: unlimited)")


def resolve_base_law(law: str | os.PathLike[str] | Law) -> Law:
    """A base law for ``fit(..., base_law=)``: a Law as it is, a law file (``.json`` or ``.toml``) or a preset name
    or alias."""
    if isinstance(law, Law):
        return law
    if Path(str(law)).suffix.lower() in (".json", ".toml"):
        return load_law_file(law)
    return get_law(str(law))


def _check_unique_tokens(family: str, unique_tokens: ArrayLike | None, n: int) -> np.ndarray | None:
    """Each run's unique tokens as float64 (> 0, +inf allowed), for a family whose law has them (None otherwise);
    a one-line error where they are missing, or given to a family that does not read them."""
    param = FAMILIES[family].unique_tokens_param
    if param is None:
        if unique_tokens is not None:
            raise ScalesweepError(f"unique tokens per run (--unique-tokens-column) apply to data_constrained fits, "
                                  f"not {family}")
        return None
    if unique_tokens is None:
        raise ScalesweepError(f"fitting {family} needs each run's unique tokens ({param}): give "
                              "--unique-tokens-column (unique_tokens= in the API)")
    u = np.asarray(unique_tokens, dtype=np.float64).reshape(-1)
    if u.size != n:
        raise ScalesweepError(f"unique tokens: {u.size} given for {n} runs (one per run)")
    bad = ~(u > 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ScalesweepError(f"unique tokens, row {i + 1}: {float(u[i])!r}; values must be > 0 (inf: unlimited)")
    return np.ascontiguousarray(u)


def run_losses(law: Law, params: ArrayLike, tokens: ArrayLike, unique_tokens: ArrayLike | None = None) -> np.ndarray:
    """The law's loss at each run (N, D), with each run's own unique tokens where the family has them (the law's
    ``unique_tokens_param`` set per run); without ``unique_tokens``, the law as it is."""
    n = np.asarray(params, dtype=np.float64).reshape(-1)
    d = np.asarray(tokens, dtype=np.float64).reshape(-1)
    param = law.spec.unique_tokens_param
    if unique_tokens is None or param is None:
        return np.asarray(law.loss(n, d), dtype=np.float64).reshape(-1)
    u = np.asarray(unique_tokens, dtype=np.float64).reshape(-1)
    out = np.empty(n.size)
    for value in np.unique(u):
        rows = u == value
        out[rows] = get_law(law, **{param: float(value)}).loss(n[rows], d[rows])
    return out


# ------------------------------------------------------------------------------------------------- fit


@dataclass(repr=False)
class FitResult:
    """A fit: the law, what the fit did (``info``: method, estimator, objective, runs, starts, seconds, flags) and,
    with a bootstrap, the refitted parameter samples and how they were drawn (``extra``). ``runs`` holds the runs
    (N, D, L, weight; weight 0: not fitted) for the residual table; ``correlation`` the parameter correlation
    matrix at the optimum (names, matrix); ``holdout`` and ``cv`` the validation tables when asked for."""

    law: Law
    info: dict[str, Any]
    samples: np.ndarray | None = None  # bootstrap parameter samples, (B, K) in the family's order
    extra: dict[str, Any] = field(default_factory=dict)
    runs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    correlation: tuple[list[str], np.ndarray] | None = None
    holdout: Any = None  # pandas DataFrame, one row per held-out run (fit(..., holdout_top=K))
    cv: Any = None  # pandas DataFrame, one row per left-out budget (fit(..., cv="budgets"))
    unique_tokens: np.ndarray | None = None  # each run's unique tokens (data_constrained fits)

    @property
    def n_fitted(self) -> int:
        """How many runs the fit used (weight > 0): the runs given less those excluded, held out or weighted 0."""
        info = self.info
        return int(info["n_fitted"]) if "n_fitted" in info else int(info["n_points"]) - int(
            info.get("excluded_highest_loss", 0))

    @property
    def residuals(self) -> Any:
        """One row per run: params, tokens, loss, the law's predicted loss (at the run's own unique tokens, for a
        data_constrained fit), the log residual ln(pred) - ln(L), the weight and whether the fit used the run (None
        without runs)."""
        import pandas as pd

        if self.runs is None:
            return None
        n, d, y, w = self.runs
        pred = run_losses(self.law, n, d, self.unique_tokens)
        return pd.DataFrame({"params": n, "tokens": d, "loss": y, "predicted_loss": pred,
                             "log_residual": np.log(pred) - np.log(y), "weight": w, "fitted": w > 0})

    @property
    def standard_errors(self) -> dict[str, float] | None:
        """Each parameter's bootstrap standard error (None without a bootstrap); huge or non-finite samples give
        inf or nan, a parameter the fit holds (a base law's) exactly 0."""
        if self.samples is None:
            return None
        with np.errstate(over="ignore", invalid="ignore"):
            se = np.std(self.samples - self.samples[0], axis=0, ddof=1)  # the shift: a constant's spread is 0
        return dict(zip(self.law.spec.param_names, se.tolist(), strict=True))

    def _summary(self) -> str:
        """Objective, runs and bootstrap in words: what both reprs show besides the parameters."""
        info = self.info
        excluded = f" ({info['excluded_highest_loss']} excluded)" if info["excluded_highest_loss"] else ""
        boot = f"bootstrap {len(self.samples)}" if self.samples is not None else "no bootstrap"
        return (f"{info['estimator']} objective {info['objective_value']:.4g} ({info['method']}), "
                f"{self.n_fitted} runs{excluded}, {boot}")

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

    def summary_lines(self) -> list[str]:
        """What ``scalesweep fit`` says about the fit on stderr, line by line."""
        info = self.info
        params = ", ".join(f"{k}={v:.6g}" for k, v in self.law.params.items())
        excluded = f" ({info['excluded_highest_loss']} excluded)" if info["excluded_highest_loss"] else ""
        lines = [f"fitted {self.law.family} to {self.n_fitted} runs{excluded} ({info['estimator']}): {params}"]
        if "base_law" in info:
            lines.append(f"held at the base law {info['base_law']['law']}: "
                         + ", ".join(f"{k}={v:.6g}" for k, v in info["base_law"]["parameters"].items()))
        starts = (f"; {info['starts_within_1e-6']} of {info['starts_run']} starts within 1e-6 of the best "
                  f"({info['search']} search: {info['starts_run']:,} of the {info['starts']:,} in the grid run)") \
            if info["method"] == "lbfgs" else ""
        lines.append(f"objective {info['objective_value']:.6g} in {info['seconds']:.2f} s (kernels compiled or "
                     f"loaded in {info['compile_seconds']:.2f} s before){starts}")
        if "sigma" in info:
            lines.append(f"sigma {info['sigma']:.4g}, log-likelihood {info['log_likelihood']:.6g}")
        if "holdout" in info:
            h = info["holdout"]
            lines.append(f"held out the {h['held_out']} largest budgets (6ND >= {h['min_flops_held_out']:.3g}): "
                         f"RMSE of log loss {h['loss_rmse_log']:.3g}, largest loss error "
                         f"{h['loss_max_abs_rel_error']:.2%}, largest N_opt error against the fit on all runs "
                         f"{h['n_opt_max_abs_rel_error']:.2%}")
        if "cv" in info:
            lines.append(f"leave-one-budget-out over {info['cv']['budgets']} budgets: RMSE of log loss "
                         f"{info['cv']['rmse_log']:.3g}")
        if self.samples is not None:
            se = self.standard_errors or {}
            held = self._held()
            lines.append(f"bootstrap ({len(self.samples)} resamples, seed {self.extra['seed']}; "
                         f"{self.extra['start']}) in {self.extra['seconds']:.2f} s, standard errors: "
                         + ", ".join(f"{k} {v:.3g}" for k, v in se.items() if k not in held))
        lines += [f"warning: {flag}" for flag in info.get("flags", [])]
        return lines

    def _held(self) -> set[str]:
        """The parameters the fit did not fit: a base law's, and U_D of a data_constrained fit (inf: set where the
        law is used)."""
        spec = self.law.spec
        held = set(self.info.get("base_law", {}).get("parameters", {}))
        return held | ({spec.unique_tokens_param} if spec.unique_tokens_param else set())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the law file ``scalesweep fit`` writes (``--law-file`` reads it back)."""
        out: dict[str, Any] = {"family": self.law.family, "parameters": dict(self.law.params), "fit": self.info}
        diag: dict[str, Any] = {"flags": list(self.info.get("flags", []))}
        if self.runs is not None:
            res = self.residuals
            diag["residuals"] = {c: res[c].tolist() for c in ("predicted_loss", "log_residual", "weight")}
        if self.correlation is not None:
            diag["correlation"] = {"names": list(self.correlation[0]), "matrix": self.correlation[1].tolist()}
        if self.holdout is not None:
            diag["holdout"] = {c: self.holdout[c].tolist() for c in self.holdout.columns}
        if self.cv is not None:
            diag["cv"] = {c: self.cv[c].tolist() for c in self.cv.columns}
        out["diagnostics"] = diag
        if self.samples is not None:
            names = self.law.spec.param_names
            # huge or non-finite samples give an inf/nan spread, written as the strings "inf"/"nan" (strict JSON)
            same = (self.samples == self.samples[0]).all(axis=0)  # a held parameter (even inf) is its own percentile
            with np.errstate(over="ignore", invalid="ignore"):
                pct = {q: np.where(same, self.samples[0], np.percentile(self.samples, float(q), axis=0))
                       for q in ("2.5", "5", "50", "95", "97.5")}
            out["bootstrap"] = {
                **self.extra,
                "parameter_names": list(names),
                "standard_errors": self.standard_errors,
                "percentiles": {q: dict(zip(names, v.tolist(), strict=True)) for q, v in pct.items()},
                "samples": self.samples.tolist(),
            }
        return out


ESTIMATORS: dict[str, tuple[str, int]] = {  # name: (method, kernel loss code; vp estimators use -1)
    "huber": ("lbfgs", kfit.LOSS_HUBER),
    "lad": ("lbfgs", kfit.LOSS_LAD),
    "huber-likelihood": ("lbfgs", kfit.LOSS_HUBER_LIK),
    "ls-vp": ("vp", -1),
    "huber-vp": ("vp", -1),
}
HUBER_ESTIMATORS = ("huber", "huber-likelihood", "huber-vp")  # the ones with a Huber width delta
ASYMMETRIC_ESTIMATORS = ("huber", "lad")
SEARCHES = ("screened", "full")
BOOTSTRAP_STARTS = ("optimum", "grid")
CV_KINDS = ("budgets",)
# Screened search: starts run in batches of SCREEN_BATCH in order of their objective value (ties in grid order);
# it stops once SCREEN_PATIENCE batches in a row lowered the best objective by no more than WITHIN (relative)
# and at least SCREEN_HITS starts ended within WITHIN of the best. Batches are fixed, so the thread count does not
# change which starts run.
SCREEN_BATCH = 16
SCREEN_PATIENCE = 2
SCREEN_HITS = 3
POLISH = 8  # end points polished to full precision (the lowest first)
VP_HUBER_GRID_ROUNDS = 10  # reweighting rounds per (alpha, beta) grid point of huber-vp (the compass search
VP_HUBER_ROUNDS = 1000     # and the answer use up to VP_HUBER_ROUNDS)
BUDGET_DIGITS = 3  # cv="budgets": runs whose 6ND agree to this many significant digits share a budget


def _resolve(family: str, method: str | None, objective: str | None, estimator: str | None) -> tuple[str, str]:
    """(method, estimator) from the three ways of naming one; a one-line error where they disagree."""
    if estimator is None:
        method = "lbfgs" if method is None else method
        choice(method, METHODS, "method")
        if method == "vp":
            if objective not in (None, "huber"):
                raise ScalesweepError("--objective applies to --method lbfgs (vp minimises squared residuals)")
            estimator = "ls-vp"
        else:
            estimator = "huber" if objective is None else choice(objective, list(OBJECTIVES), "objective")
    else:
        choice(estimator, list(ESTIMATORS), "estimator")
        if objective is not None:
            raise ScalesweepError("--objective and --estimator exclude each other: give one (--estimator huber or "
                                  "lad covers --objective)")
        if method is not None and method != ESTIMATORS[estimator][0]:
            raise ScalesweepError(f"--estimator {estimator} is fitted by {ESTIMATORS[estimator][0]}; drop "
                                  f"--method {method}")
        method = ESTIMATORS[estimator][0]
    if method not in _fit_spec(family).methods:
        raise ScalesweepError(f"--method {method} does not fit the {family} family (methods for it: "
                              f"{', '.join(_fit_spec(family).methods)}); vp needs a model linear in E, A, B")
    return method, estimator


def _run_weights(weights: ArrayLike | None, n: int) -> np.ndarray:
    """Per-run weights as float64 (None: all 1); finite, >= 0, one per run, not all 0."""
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.size != n:
        raise ScalesweepError(f"weights: {w.size} given for {n} runs (one per run)")
    bad = ~(np.isfinite(w) & (w >= 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ScalesweepError(f"weights, row {i + 1}: {float(w[i])!r}; weights must be finite and >= 0")
    if not (w > 0).any():
        raise ScalesweepError("weights: every weight is 0 (nothing to fit)")
    return np.ascontiguousarray(w)


def _weights(n: int, exclude_highest: int, loss: np.ndarray, run_weights: np.ndarray | None = None) -> np.ndarray:
    """Per-run weights with the ``exclude_highest`` highest-loss runs set to 0."""
    w = np.ones(n) if run_weights is None else run_weights.copy()
    if exclude_highest:
        w[np.argsort(-loss, kind="stable")[:exclude_highest]] = 0.0
    return w


@dataclass
class _Problem:
    """One fit as the kernels see it: the runs in logs, the weights and the estimator's settings."""

    family: str
    estimator: str
    ln_n: np.ndarray
    ln_d: np.ndarray
    ln_l: np.ndarray
    y: np.ndarray
    w: np.ndarray
    delta: float
    asym: float
    maxiter: int
    ln_u: np.ndarray  # ln of each run's unique tokens (+inf: unlimited; read by data_constrained only)
    free: np.ndarray  # per theta entry: 1 fitted, 0 held at its start value (fixed by a base law)

    @property
    def fam_id(self) -> int:
        return int(FAMILIES[self.family].id)

    @property
    def code(self) -> int:
        return ESTIMATORS[self.estimator][1]

    @property
    def vp_delta(self) -> float:
        """The Huber width of huber-vp; 0 (least squares) for ls-vp."""
        return self.delta if self.estimator == "huber-vp" else 0.0

    def with_weights(self, w: np.ndarray) -> _Problem:
        return _Problem(self.family, self.estimator, self.ln_n, self.ln_d, self.ln_l, self.y, w, self.delta,
                        self.asym, self.maxiter, self.ln_u, self.free)

    @property
    def args(self) -> tuple[Any, ...]:
        """The runs and the estimator's settings, in the order the lbfgs kernels take them after theta."""
        return self.ln_n, self.ln_d, self.ln_l, self.w, self.code, float(self.delta), float(self.asym)

    @property
    def extra(self) -> dict[str, np.ndarray]:
        """The lbfgs kernels' optional arguments this fit needs: ``ln_u`` where the family reads unique tokens,
        ``free`` where a base law holds some entries (none for a chinchilla or kaplan fit)."""
        out = {}
        if FAMILIES[self.family].unique_tokens_param is not None:
            out["ln_u"] = self.ln_u
        if (self.free == 0).any():
            out["free"] = self.free
        return out

    def objective(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        g = np.empty(theta.size)
        f = kfit.objective(self.fam_id, np.ascontiguousarray(theta, dtype=np.float64), *self.args, g, **self.extra)
        return float(f), g


def lbfgs_starts(family: str, estimator: str, grid: Mapping[str, Sequence[float]] | None,
                 ln_l: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The start grid of an lbfgs estimator: the family's grid; for huber-likelihood with ln sigma appended, set to
    the log of the (weighted) standard deviation of ln L."""
    starts = start_grid(family, grid)
    if estimator != "huber-likelihood":
        return starts
    m = np.average(ln_l, weights=w)
    s0 = math.log(max(math.sqrt(np.average((ln_l - m) ** 2, weights=w)), 1e-6))
    return np.ascontiguousarray(np.column_stack([starts, np.full(starts.shape[0], s0)]))


def _search(pb: _Problem, starts: np.ndarray, search: str) -> dict[str, Any]:
    """Multi-start L-BFGS over ``starts`` (every start with ``search="full"``; screened: see SCREEN_BATCH), then the
    best end point polished to full precision. Returns theta, f and what the search did."""
    count = starts.shape[0]
    th = np.full(starts.shape, np.nan)
    fv = np.full(count, np.inf)
    ran = np.zeros(count, dtype=bool)
    args = pb.args
    if search == "full":
        kfit.multistart(pb.fam_id, starts, *args, pb.maxiter, th, fv, **pb.extra)
        ran[:] = True
    else:
        f0 = np.empty(count)
        kfit.start_values(pb.fam_id, starts, *args, f0, **pb.extra)
        order = np.lexsort((np.arange(count), f0))
        best, stale = np.inf, 0
        for lo in range(0, count, SCREEN_BATCH):
            idx = order[lo:lo + SCREEN_BATCH]
            bt, bf = np.empty((idx.size, starts.shape[1])), np.empty(idx.size)
            kfit.multistart(pb.fam_id, np.ascontiguousarray(starts[idx]), *args, pb.maxiter, bt, bf, **pb.extra)
            th[idx], fv[idx], ran[idx] = bt, bf, True
            fb = float(bf.min())
            improved = fb < best if math.isinf(best) else fb < best - WITHIN * abs(best) - 1e-12
            stale = 0 if improved else stale + 1
            best = min(best, fb)
            if stale >= SCREEN_PATIENCE and np.sum(fv <= best + WITHIN * abs(best) + 1e-12) >= SCREEN_HITS:
                break
    i = int(np.argmin(fv))
    if not math.isfinite(fv[i]):
        raise ScalesweepError("the fit failed from every start (objective not finite)")
    # Polish the POLISH best end points to full precision and keep the lowest: near the optimum the Huber objective
    # has kinks (runs crossing |r| = delta) where L-BFGS stalls a few 1e-13 (relative) short, at a point that
    # depends on where it came from; several end points narrow that.
    theta, f = th[i].copy(), float(fv[i])  # never worse than the best end point (a failed polish keeps it)
    for j in np.lexsort((np.arange(count), fv))[:POLISH]:
        if not math.isfinite(fv[j]):
            break
        out = np.empty(starts.shape[1])
        fj, _ = kfit.lbfgs(pb.fam_id, th[j], *args, pb.maxiter, kfit.FTOL_POLISH, out, **pb.extra)
        if fj < f:
            theta, f = out, float(fj)
    return {"theta": theta, "f": f, "best": i, "starts": int(count), "starts_run": int(ran.sum()),
            "within": int(np.sum(fv <= f + WITHIN * abs(f) + 1e-12))}


def _vp_search(pb: _Problem) -> dict[str, Any]:
    """Variable projection: the (alpha, beta) grid, a compass search, then (ls-vp) Levenberg-Marquardt."""
    alphas = VP_ALPHAS
    grid_f = np.empty((alphas.size, alphas.size))
    huber = pb.estimator == "huber-vp"
    kfit.vp_grid(alphas, alphas, pb.ln_n, pb.ln_d, pb.y, pb.w, pb.vp_delta, VP_HUBER_GRID_ROUNDS if huber else 1,
                 grid_f)
    i, j = np.unravel_index(int(np.argmin(grid_f)), grid_f.shape)
    a, b, f, c = kfit.vp_refine(alphas[i], alphas[j], 0.02, pb.ln_n, pb.ln_d, pb.y, pb.w, pb.vp_delta,
                                VP_HUBER_ROUNDS, VP_TOL)
    if huber:
        p = np.array([c[0], c[1], c[2], a, b])
    else:
        p, f = kfit.vp_polish(np.array([c[0], c[1], c[2], a, b]), pb.ln_n, pb.ln_d, pb.y, pb.w, VP_MAXITER)
    return {"p": np.asarray(p, dtype=np.float64), "f": float(f), "grid_points": int(grid_f.size),
            "grid_edge": [name for name, k in (("alpha", i), ("beta", j)) if k in (0, alphas.size - 1)]}


def _compile(method: str, bootstrap: bool, **extra: np.ndarray) -> float:
    """Compile (or load from numba's cache) the kernels a fit uses, on a two-run problem, with the optional arguments
    it passes (``_Problem.extra``: each set is its own compiled variant); returns the seconds."""
    t0 = time.perf_counter()
    z, one = np.zeros(2), np.ones(2)
    opt = {k: (z if k == "ln_u" else np.ones(5)) for k in extra}  # free: one entry per theta entry
    kfit._solve(np.eye(2), np.ones(2), np.empty(2))  # the correlation matrix's solves
    if method == "lbfgs":
        starts, th, fv = np.zeros((1, 5)), np.empty((1, 5)), np.empty(1)
        fam = int(FAMILIES["chinchilla"].id)
        kfit.start_values(fam, starts, z, z, z, one, kfit.LOSS_HUBER, 1e-3, 1.0, fv, **opt)
        kfit.multistart(fam, starts, z, z, z, one, kfit.LOSS_HUBER, 1e-3, 1.0, 1, th, fv, **opt)
        kfit.lbfgs(fam, starts[0], z, z, z, one, kfit.LOSS_HUBER, 1e-3, 1.0, 1, kfit.FTOL_POLISH, th[0], **opt)
        kfit.log_predictions(fam, starts[0], z, z, np.empty(2), np.empty((2, 5)),
                             **{k: v for k, v in opt.items() if k == "ln_u"})
        if bootstrap:
            kfit.bootstrap_fits(fam, starts[0], z, z, z, one[None, :].copy(), kfit.LOSS_HUBER, 1e-3, 1.0, 1, th, fv,
                                **opt)
    else:
        out = np.empty((1, 1))
        kfit.vp_grid(np.ones(1), np.ones(1), z, z, one, one, 0.0, 1, out)
        kfit.vp_refine(1.0, 1.0, 0.5, z, z, one, one, 0.0, 1, 1.0)
        kfit.vp_polish(np.ones(5), z, z, one, one, 1)
        kfit.sq_residuals(np.ones(5), z, z, one, one)
        if bootstrap:
            kfit.vp_bootstrap(1.0, 1.0, 0.5, z, z, one, one[None, :].copy(), 0.0, 1, 1.0, 1, np.empty((1, 5)))
    return time.perf_counter() - t0


def fit(params: ArrayLike, tokens: ArrayLike, loss: ArrayLike, *, family: str = "chinchilla",
        method: str | None = None, estimator: str | None = None, delta: float | None = None,
        objective: str | None = None, exclude_highest: int = 0, weights: ArrayLike | None = None,
        asymmetry: float | None = None, grid: Mapping[str, Sequence[float]] | None = None,
        search: str | None = None, bootstrap: int = 0, bootstrap_start: str | None = None,
        seed: int | None = None, holdout_top: int = 0, cv: str | None = None, maxiter: int = MAXITER,
        progress: Callable[[int, int], None] | None = None, unique_tokens: ArrayLike | None = None,
        base_law: str | os.PathLike[str] | Law | None = None) -> FitResult:
    """Fit ``family`` to runs (N, D, L); see the module docstring for the methods and estimators.

    ``estimator`` (None: from ``method`` and ``objective``, whose None means lbfgs and huber) is one of
    ``ESTIMATORS``; ``delta`` (None: ``DEFAULT_DELTA``) is the Huber width of the Huber estimators (in units of
    sigma for huber-likelihood, of the relative residual for huber-vp); ``weights`` (None: all 1) are per-run
    weights; ``asymmetry`` (None: 1) multiplies the terms of runs the law over-predicts (huber, lad);
    ``grid`` (None: the family's start grid) and ``search`` (None: "screened"; or "full") are for lbfgs
    estimators; ``bootstrap_start`` (None: "optimum"; or "grid": every resample searches the whole grid) and
    ``seed`` (None: 0) are for ``bootstrap``; ``holdout_top=K`` fits on all but the K largest budgets (6ND) and
    reports the extrapolation error on them (``FitResult.holdout``); ``cv="budgets"`` adds a leave-one-budget-out
    table (``FitResult.cv``); ``progress(done, total)`` is told the bootstrap refits done. ``unique_tokens`` (one per
    run, inf: unlimited) is each run's U_D, needed by and only by data_constrained; ``base_law`` (a Law, a preset
    name or a law file, for data_constrained) holds E, A, B, alpha, beta at its values, so that only R_D* and R_N*
    are fitted.
    Giving one where it would have no effect is an error, as is anything else that would be silently ignored."""
    choice(family, FITTABLE, "family to fit")
    given = {"delta": delta, "search": search, "bootstrap_start": bootstrap_start, "seed": seed}
    method, estimator = _resolve(family, method, objective, estimator)
    if delta is not None and estimator not in HUBER_ESTIMATORS:
        if method == "vp":
            raise ScalesweepError("--delta needs --method lbfgs or --estimator huber-vp (ls-vp minimises squared "
                                  "residuals, not the Huber loss)")
        raise ScalesweepError(f"--delta needs --objective huber ({estimator} has no delta)")
    if method == "vp" and grid is not None:
        raise ScalesweepError("--grid needs --method lbfgs (vp searches its own (alpha, beta) grid)")
    if method == "vp" and search is not None:
        raise ScalesweepError("--search needs --method lbfgs (vp searches its own (alpha, beta) grid)")
    if asymmetry is not None and estimator not in ASYMMETRIC_ESTIMATORS:
        raise ScalesweepError(f"--asymmetry applies to --estimator {' or '.join(ASYMMETRIC_ESTIMATORS)}, "
                              f"not {estimator}")
    if seed is not None and not bootstrap:
        raise ScalesweepError("--seed needs --bootstrap")
    if bootstrap_start is not None and not bootstrap:
        raise ScalesweepError("--bootstrap-start needs --bootstrap")
    search = choice("screened" if search is None else search, SEARCHES, "search")
    bootstrap_start = choice("optimum" if bootstrap_start is None else bootstrap_start, BOOTSTRAP_STARTS,
                             "bootstrap start")
    if bootstrap_start == "grid" and method == "vp":
        raise ScalesweepError("--bootstrap-start grid needs --method lbfgs (vp has no start grid)")
    if cv is not None:
        choice(cv, CV_KINDS, "cross-validation")
    delta = number(DEFAULT_DELTA if delta is None else delta, "--delta", "pos")
    asym = number(1.0 if asymmetry is None else asymmetry, "--asymmetry", "pos")
    seed = 0 if seed is None else seed
    for v, opt in ((exclude_highest, "--exclude-highest"), (bootstrap, "--bootstrap"), (seed, "--seed"),
                   (holdout_top, "--holdout-top")):
        integer(v, opt, 0)
    if bootstrap == 1:
        raise ScalesweepError("--bootstrap needs at least 2 resamples")
    n, d, y = check_runs(params, tokens, loss)
    run_w = _run_weights(weights, n.size)
    u = _check_unique_tokens(family, unique_tokens, n.size)
    spec = _fit_spec(family)
    fit_grid = dict(spec.grid if grid is None else grid)
    fixed: dict[str, float] = {}  # parameters a base law holds
    fixed_axes: dict[str, float] = {}  # the theta entries they are
    base = None
    if base_law is not None:
        if spec.base_theta is None:
            takes = [f for f in FITTABLE if _fit_spec(f).base_theta is not None]
            raise ScalesweepError(f"--base-law applies to {' and '.join(takes)} fits, not {family}")
        base = resolve_base_law(base_law)
        missing = [p for p in spec.base if p not in base.params]
        if missing:
            raise ScalesweepError(f"--base-law {base.name} is a {base.family} law without {', '.join(missing)}; a base "
                                  f"law gives {', '.join(spec.base)} (a chinchilla or {family} law)")
        fixed = {p: float(base.params[p]) for p in spec.base}
        fixed_axes = spec.base_theta(fixed)
        clash = [a for a in fixed_axes if grid is not None and list(grid[a]) != list(spec.grid[a])]
        if clash:
            raise ScalesweepError(f"--grid {clash[0]}: that axis is fixed by --base-law {base.name}")
        fit_grid.update({a: [v] for a, v in fixed_axes.items()})
    if holdout_top or cv is not None:
        per_run = {} if u is None else {"unique_tokens": u, "base_law": base_law}
        return _validated(n, d, y, run_w, holdout_top, cv, family=family, estimator=estimator,
                          exclude_highest=exclude_highest, asymmetry=asymmetry, grid=grid, bootstrap=bootstrap,
                          maxiter=maxiter, progress=progress, **given, **per_run)
    if exclude_highest >= n.size:
        raise ScalesweepError(f"--exclude-highest {exclude_highest} leaves no runs ({n.size} given)")
    w = _weights(n.size, exclude_highest, y, run_w)
    free = np.array([0.0 if a in fixed_axes else 1.0 for a in spec.grid] + [1.0] * (estimator == "huber-likelihood"))
    k = int(free.sum())
    used = int(np.sum(w > 0))
    if used <= k:
        raise ScalesweepError(f"too few points: {used} left to fit {k} parameters (need at least {k + 1})")
    ln_u = np.full(n.size, np.inf) if u is None else np.log(u)
    pb = _Problem(family, estimator, np.log(n), np.log(d), np.log(y), y, w, float(delta), float(asym), maxiter,
                  ln_u, free)
    with _one_blas_thread():
        compile_s = _compile(method, bool(bootstrap), **pb.extra)
        t0 = time.perf_counter()
        info: dict[str, Any] = {"method": method, "estimator": estimator, "n_points": int(n.size),
                                "n_fitted": used, "excluded_highest_loss": int(exclude_highest),
                                "weighted": weights is not None}
        if base is not None:
            info["base_law"] = {"law": base.name, "parameters": fixed}
        flags: list[str] = []
        if method == "lbfgs":
            starts = lbfgs_starts(family, estimator, fit_grid, pb.ln_l, w)
            res = _search(pb, starts, search)
            theta, fbest = res["theta"], res["f"]
            best_start = starts[res["best"]]
            axes = list(_fit_spec(family).grid)
            for j, name in enumerate(axes):
                lo, hi = starts[:, j].min(), starts[:, j].max()
                if not lo <= theta[j] <= hi:
                    flags.append(f"optimum outside the start grid: {name} = {theta[j]:.6g} (grid {lo:g} to {hi:g})")
            info.update({"objective": estimator if estimator != "huber-likelihood" else "huber likelihood",
                         "delta": float(delta) if estimator in HUBER_ESTIMATORS else None,
                         "asymmetry": float(asym), "search": search, "objective_value": res["f"],
                         "starts": res["starts"], "starts_run": res["starts_run"],
                         "starts_within_1e-6": res["within"], "best_start": best_start.tolist()})
            if estimator == "huber-likelihood":
                info["sigma"] = math.exp(theta[-1])
                info["log_likelihood"] = -fbest
            raw = {**theta_to_params(family, theta[:len(axes)]), **fixed}
        else:
            res = _vp_search(pb)
            theta, fbest = res["p"], res["f"]
            flags += [f"{name} at the edge of the vp grid" for name in res["grid_edge"]]
            info.update(objective="squared residuals of L (variable projection, E, A, B >= 0)" if estimator == "ls-vp"
                        else "Huber loss of relative residuals of L (variable projection, E, A, B >= 0)",
                        delta=float(delta) if estimator == "huber-vp" else None, objective_value=fbest,
                        grid_points=res["grid_points"])
            raw = dict(zip(("E", "A", "B", "alpha", "beta"), (float(v) for v in theta), strict=True))
        info["seconds"] = time.perf_counter() - t0
        info["compile_seconds"] = compile_s
        citation = "fitted by scalesweep fit" if base is None else \
            f"fitted by scalesweep fit ({', '.join(p for p in raw if p not in fixed)} on the base law {base.name})"
        try:
            law = Law(family=family, params=validate_params(family, raw), citation=citation,
                      conventions="as the runs it was fitted to")
        except ScalesweepError as exc:
            raise ScalesweepError(f"the best fit is not a valid {family} law ({exc}); check the runs") from None
        flags += [f"{k} at its bound 0" for k, v in law.params.items() if v <= 1e-12]
        names, corr = _correlation(pb, method, theta)
        if corr is None:
            flags.append("the Gauss-Newton Hessian at the optimum is singular (no correlation matrix)")
        info["flags"] = flags
        result = FitResult(law=law, info=info, runs=(n, d, y, w),
                           correlation=None if corr is None else (names, corr), unique_tokens=u)
        if bootstrap:
            result.samples, result.extra = _bootstrap(pb, method, law, theta, bootstrap, seed, bootstrap_start,
                                                      fit_grid, search, progress, fixed)
    return result


def _validated(n: np.ndarray, d: np.ndarray, y: np.ndarray, run_w: np.ndarray, holdout_top: int, cv: str | None,
               **kw: Any) -> FitResult:
    """fit() with ``holdout_top`` (the law is fitted on all but the largest budgets) and/or ``cv``."""
    flops = 6.0 * n * d
    full = None
    if holdout_top:
        if holdout_top >= n.size:
            raise ScalesweepError(f"--holdout-top {holdout_top} leaves no runs to fit ({n.size} given)")
        held = np.zeros(n.size, dtype=bool)
        held[np.argsort(-flops, kind="stable")[:holdout_top]] = True
        result = fit(n, d, y, weights=np.where(held, 0.0, run_w), **kw)
        full = fit(n, d, y, weights=run_w, **{**kw, "bootstrap": 0, "bootstrap_start": None, "seed": None})
        u = kw.get("unique_tokens")
        result.holdout = _holdout_table(result.law, full.law, n[held], d[held], y[held],
                                        None if u is None else np.asarray(u)[held])
        result.info["holdout"] = _holdout_summary(result.holdout, holdout_top)
    else:
        result = fit(n, d, y, weights=run_w, **kw)
    if cv is not None:
        result.cv = cross_validate(n, d, y, weights=run_w, **{**kw, "bootstrap": 0, "bootstrap_start": None,
                                                             "seed": None})
        result.info["cv"] = {"kind": cv, "budgets": int(len(result.cv)),
                             "rmse_log": float(np.sqrt(np.average(result.cv["rmse_log"] ** 2,
                                                                  weights=result.cv["runs"])))}
    return result


def _n_opt(law: Law, flops: np.ndarray, unique_tokens: np.ndarray | None) -> np.ndarray:
    """The law's compute-optimal N at each budget, with each run's own unique tokens where the family has them
    (as ``run_losses`` does for the loss)."""
    from .questions import frontier

    param = law.spec.unique_tokens_param
    if unique_tokens is None or param is None:
        return np.asarray(frontier([law], flops).columns["params"], dtype=np.float64)
    out = np.empty(flops.size)
    for value in np.unique(unique_tokens):
        rows = unique_tokens == value
        out[rows] = np.asarray(frontier([get_law(law, **{param: float(value)})], flops[rows]).columns["params"],
                               dtype=np.float64)
    return out


def _holdout_table(law: Law, full_law: Law, n: np.ndarray, d: np.ndarray, y: np.ndarray,
                   unique_tokens: np.ndarray | None = None) -> Any:
    """Per held-out run: the loss the law predicts and N_opt at the run's budget from the law and from the fit on
    every run (at the run's own unique tokens, for a family that has them)."""
    import pandas as pd

    flops = 6.0 * n * d
    pred = run_losses(law, n, d, unique_tokens)
    n_opt = _n_opt(law, flops, unique_tokens)
    n_opt_full = _n_opt(full_law, flops, unique_tokens)
    return pd.DataFrame({"params": n, "tokens": d, "flops": flops, "loss": y, "predicted_loss": pred,
                         "loss_rel_error": pred / y - 1.0, "log_residual": np.log(pred) - np.log(y),
                         "n_opt": n_opt, "n_opt_all_runs": n_opt_full, "n_opt_rel_error": n_opt / n_opt_full - 1.0})


def _holdout_summary(table: Any, k: int) -> dict[str, Any]:
    return {"held_out": int(k), "min_flops_held_out": float(table.flops.min()),
            "loss_rmse_log": float(np.sqrt(np.mean(table.log_residual ** 2))),
            "loss_max_abs_rel_error": float(np.max(np.abs(table.loss_rel_error))),
            "n_opt_max_abs_rel_error": float(np.max(np.abs(table.n_opt_rel_error)))}


def budget_groups(params: ArrayLike, tokens: ArrayLike) -> np.ndarray:
    """Budget of each run as cv="budgets" groups them: 6ND rounded to BUDGET_DIGITS significant digits."""
    flops = 6.0 * np.asarray(params, dtype=np.float64) * np.asarray(tokens, dtype=np.float64)
    return np.array([float(f"{c:.{BUDGET_DIGITS}g}") for c in flops])


def cross_validate(params: ArrayLike, tokens: ArrayLike, loss: ArrayLike, *, weights: ArrayLike | None = None,
                   **kw: Any) -> Any:
    """Leave-one-budget-out: for each budget (``budget_groups``), fit on the other runs and predict its runs. A
    table, one row per budget: flops, runs, the held-out runs' RMSE of log residuals and largest relative error."""
    import pandas as pd

    n, d, y = check_runs(params, tokens, loss)
    run_w = _run_weights(weights, n.size)
    groups = budget_groups(n, d)
    budgets = np.unique(groups)
    if budgets.size < 2:
        raise ScalesweepError("--cv budgets needs runs at 2 or more budgets (6ND to 3 significant digits)")
    u = kw.get("unique_tokens")
    rows = []
    for c in budgets:
        out = groups == c
        res = fit(n, d, y, weights=np.where(out, 0.0, run_w), **kw)
        pred = run_losses(res.law, n[out], d[out], None if u is None else np.asarray(u)[out])
        r = np.log(pred) - np.log(y[out])
        rows.append({"flops": c, "runs": int(out.sum()), "rmse_log": float(np.sqrt(np.mean(r ** 2))),
                     "max_abs_rel_error": float(np.max(np.abs(pred / y[out] - 1.0)))})
    return pd.DataFrame(rows)


def fit_compare(params: ArrayLike, tokens: ArrayLike, loss: ArrayLike, *, families: Sequence[str] = ("chinchilla",),
                estimators: Sequence[str] = ("huber", "huber-likelihood", "ls-vp", "huber-vp"),
                holdout_top: int = 0, unique_tokens: ArrayLike | None = None, **kw: Any) -> Any:
    """Fit every (family, estimator) pair the family allows and compare them side by side, one row each: the
    objective, the Gaussian log-likelihood of the log residuals on the fitted runs (sigma at its maximum), AIC
    (2k - 2 log-likelihood, k = the parameters fitted + sigma), the estimator's own log-likelihood where it has one,
    and with ``holdout_top=K`` the held-out errors (``fit(..., holdout_top=K)``). Other keywords go to
    :func:`fit`; ``grid``, ``search`` and ``asymmetry`` reach only the lbfgs estimators, ``delta`` only the Huber
    ones, ``unique_tokens`` only the families that read them (data_constrained)."""
    import pandas as pd

    for fam in families:
        choice(fam, FITTABLE, "family to fit")
    if unique_tokens is not None and not any(FAMILIES[f].unique_tokens_param for f in families):
        raise ScalesweepError(f"unique tokens per run (--unique-tokens-column) apply to data_constrained fits, not "
                              f"{', '.join(families)}")
    for est in estimators:
        choice(est, list(ESTIMATORS), "estimator")
    rows = []
    for fam in families:
        for est in estimators:
            if ESTIMATORS[est][0] not in _fit_spec(fam).methods:
                continue
            own = dict(kw)
            if ESTIMATORS[est][0] == "vp":
                for key in ("grid", "search", "asymmetry"):
                    own.pop(key, None)
            if est not in HUBER_ESTIMATORS:
                own.pop("delta", None)
            if FAMILIES[fam].unique_tokens_param is not None:
                own["unique_tokens"] = unique_tokens
            res = fit(params, tokens, loss, family=fam, estimator=est, holdout_top=holdout_top, **own)
            if res.runs is None:  # fit() always records its runs
                raise ScalesweepError("fit-compare: a fit came back without its runs")
            n, d, y, w = res.runs
            r = np.log(run_losses(res.law, n, d, res.unique_tokens)) - np.log(y)
            fitted = w > 0
            s2 = float(np.average(r[fitted] ** 2, weights=w[fitted]))
            m = float(w[fitted].sum())
            ll = -0.5 * m * (math.log(2 * math.pi * s2) + 1.0)
            k = len(res.law.params) - len(res._held()) + 1
            row = {"family": fam, "estimator": est, "runs_fitted": res.n_fitted, "objective": res.info["objective_value"],
                   "log_likelihood_gaussian": ll, "aic": 2 * k - 2 * ll,
                   "log_likelihood_own": res.info.get("log_likelihood", math.nan),
                   **{f"param_{p}": v for p, v in res.law.params.items()}}
            if holdout_top:
                h = res.info["holdout"]
                row.update(heldout_rmse_log=h["loss_rmse_log"], heldout_max_abs_rel_error=h["loss_max_abs_rel_error"],
                           heldout_n_opt_max_abs_rel_error=h["n_opt_max_abs_rel_error"])
            rows.append(row)
    if not rows:
        raise ScalesweepError("fit-compare: no estimator fits any of the families given")
    df = pd.DataFrame(rows)
    df["family"] = pd.Categorical(df.family, categories=list(dict.fromkeys(df.family)))
    df["estimator"] = pd.Categorical(df.estimator, categories=list(dict.fromkeys(df.estimator)))
    return df


def _correlation(pb: _Problem, method: str, theta: np.ndarray) -> tuple[list[str], np.ndarray | None]:
    """Parameter correlation matrix at the optimum from the Gauss-Newton Hessian J'WJ of the estimator's residuals
    (log-space for lbfgs estimators, linear for ls-vp, relative for huber-vp; J their Jacobian in the fit
    coordinates, W the run weights): the Fisher information under Gaussian errors, positive semi-definite, which
    the exact Hessian of a Huber objective with a small delta is often not. Inverted by ``kfit._solve``; None where
    it is singular. Names: the fit coordinates (the law's theta entries the fit moves for lbfgs, E, A, B, alpha,
    beta for vp)."""
    m = pb.ln_n.size
    if method == "lbfgs":
        axes = list(_fit_spec(pb.family).grid)
        pred, J = np.empty(m), np.empty((m, len(axes)))
        kfit.log_predictions(pb.fam_id, np.ascontiguousarray(theta[:len(axes)]), pb.ln_n, pb.ln_d, pred, J,
                             **{k: v for k, v in pb.extra.items() if k == "ln_u"})
        fitted = pb.free[:len(axes)] > 0  # a base law's fixed entries have no variance
        names = [a for a, f in zip(axes, fitted, strict=True) if f]
        J = J[:, fitted]
        k = len(names)
    else:
        names = ["E", "A", "B", "alpha", "beta"]
        k = 5
        x1, x2 = np.exp(-theta[3] * pb.ln_n), np.exp(-theta[4] * pb.ln_d)
        J = np.column_stack([np.ones(m), x1, x2, -theta[1] * x1 * pb.ln_n, -theta[2] * x2 * pb.ln_d])
        if pb.estimator == "huber-vp":
            J = J / pb.y[:, None]
    H = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            H[i, j] = float(np.sum(pb.w * J[:, i] * J[:, j]))
    cov = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = 1.0
        x = np.empty(k)
        if not kfit._solve(H.copy(), e, x):
            return names, None
        cov[:, j] = x
    var = np.diag(cov).copy()
    if not (np.isfinite(cov).all() and (var > 0).all()):
        return names, None
    return names, cov / np.sqrt(np.outer(var, var))


def _bootstrap(pb: _Problem, method: str, law: Law, theta: np.ndarray, count: int, seed: int, start: str,
               grid: Mapping[str, Sequence[float]] | None, search: str,
               progress: Callable[[int, int], None] | None = None,
               fixed: Mapping[str, float] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Refit on ``count`` resamples (multiplicities of the included points, times their weights): each from the
    full-data fit (``start="optimum"``), or each by the whole search over the start grid (``start="grid"``).
    ``fixed``: the parameters a base law holds, and their values."""
    rng = np.random.default_rng(seed)
    n_runs = pb.ln_n.size
    included = np.flatnonzero(pb.w > 0)
    draws = rng.integers(0, included.size, size=(count, included.size))
    flat = (np.arange(count)[:, None] * n_runs + included[draws]).ravel()
    weights = np.bincount(flat, minlength=count * n_runs).reshape(count, n_runs).astype(np.float64) * pb.w
    t0 = time.perf_counter()
    family = pb.family
    names = FAMILIES[family].param_names
    k = theta.size
    th, fv, samples = np.empty((count, k)), np.empty(count), np.empty((count, 5))
    if progress is not None:
        progress(0, count)
    if start == "grid":
        starts = lbfgs_starts(family, pb.estimator, grid, pb.ln_l, pb.w)
        for r in range(count):
            try:
                res = _search(pb.with_weights(np.ascontiguousarray(weights[r])), starts, search)
                th[r], fv[r] = res["theta"], res["f"]
            except ScalesweepError:
                th[r], fv[r] = np.nan, np.inf
            if progress is not None and ((r + 1) % BOOTSTRAP_BATCH == 0 or r + 1 == count):
                progress(r + 1, count)
    else:
        # Resamples are refitted BOOTSTRAP_BATCH at a time (each on its own, in parallel), so progress can be shown
        # between batches; the batching does not change any refit.
        for s in range(0, count, BOOTSTRAP_BATCH):
            e = min(count, s + BOOTSTRAP_BATCH)
            if method == "lbfgs":
                kfit.bootstrap_fits(pb.fam_id, theta, pb.ln_n, pb.ln_d, pb.ln_l, weights[s:e], pb.code, pb.delta,
                                    pb.asym, pb.maxiter, th[s:e], fv[s:e], **pb.extra)
            else:
                kfit.vp_bootstrap(law.params["alpha"], law.params["beta"], 0.02, pb.ln_n, pb.ln_d, pb.y,
                                  weights[s:e], pb.vp_delta, VP_HUBER_ROUNDS, VP_TOL, VP_MAXITER, samples[s:e])
            if progress is not None:
                progress(e, count)
    if method == "lbfgs":
        m = len(_fit_spec(family).grid)
        samples = np.array([[p[name] for name in names] for p in (theta_to_params(family, t[:m]) for t in th)])
        if fixed:  # a base law's parameters exactly as it gives them (not through exp(log(...)))
            for j, name in enumerate(names):
                if name in fixed:
                    samples[:, j] = fixed[name]
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
    how = "each resample is refitted from the full-data optimum" if start == "optimum" else \
        f"each resample is refitted by the {search} search over the start grid"
    return samples, {"resamples": int(count), "seed": int(seed), "seconds": time.perf_counter() - t0,
                     "start": how}


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Hold BLAS libraries to one thread inside the block (threadpoolctl, where it is installed), so that a BLAS
    call never adds its threads to numba's. The fit itself calls no BLAS: its linear algebra is by hand
    (``kfit._solve``)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


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
    may_be_inf = np.array([name in FAMILIES[family].may_be_inf for name in names])
    if not (np.isfinite(samples) | (may_be_inf & (samples == np.inf))).all():
        raise ScalesweepError(f"law file {str(path)!r}: bootstrap samples must be finite (or inf where the parameter "
                              "may be: unlimited data)")
    return family, samples


class _CallableModule(types.ModuleType):
    """This module's type: calling the module calls :func:`fit` (see the module docstring)."""

    def __call__(self, *args: Any, **kwargs: Any) -> FitResult:
        return fit(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(fit)


sys.modules[__name__].__class__ = _CallableModule
