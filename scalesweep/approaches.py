"""Hoffmann et al. 2022 Approaches 1 and 2 on a user's own runs ("Training Compute-Optimal Large Language
Models", arXiv:2203.15556, §3.1, §3.2 and Table 2): compute-optimal allocations N_opt(C) = G C^a and
D_opt(C) = H C^b fitted from runs, with bootstrap intervals, written as an ``allocation_rule`` law file:
``scalesweep frontier --law-file`` reads it, and ``laws.load_law_file`` returns the Law that ``api.frontier`` and
``api.compare`` take.

Approach 2, IsoFLOP profiles (:func:`isoflop_fit`): final losses of runs grouped by budget. A budget is the
``flops`` column, or C = 6ND; runs whose budgets agree within a relative tolerance ``rtol`` form one budget
(or each run goes to the nearest of the ``budgets`` given). Every run keeps C = 6ND: where both a flops and a
tokens column are given, a run whose 6·params·tokens differs from its flops by more than ``rtol`` (relative) is
an error. Per budget a least-squares parabola of the loss in log10 N gives N_opt at its vertex, and D_opt =
C/(6 N_opt). A minimum outside the sampled sizes (or D_opt outside the sampled tokens) is extrapolated: flagged
in the table (``extrapolated``) and in a warning. A parabola without a significant minimum (it opens downward,
or its curvature is at rounding level: see :func:`parabola_vertices`) is flagged (``convex`` False), left out of
the power laws, and warned about. The power law N_opt = G C^a is the least-squares line of log10 N_opt on
log10 C through the budgets used; D_opt = C/(6 N_opt) makes it D_opt = C^(1-a)/(6G), so the allocation keeps
C = 6 N_opt D_opt (to rounding).

Approach 1, training curves (:func:`envelope_fit`): every checkpoint of every run (run, params, tokens, loss),
C = 6ND per checkpoint. Each run's loss is interpolated linearly in log C between its checkpoints; at
log-spaced FLOPs points the lower envelope is the least loss over the runs that reach that C, and the run
attaining it gives N (and D = C/(6N); the power law of D is again C^(1-a)/(6G)). A point whose envelope run
is the smallest or the largest model among the runs covering that C is an edge point (``edge``): the optimum
may lie beyond the sizes available there, so edge points are left out of the power laws unless
``include_edge``.

Bootstrap (``bootstrap`` resamples, ``seed``, intervals at ``level``, default 0.8 = the 10th-90th percentiles of
Hoffmann et al. Table 2). IsoFLOP: ``rng = numpy.random.default_rng(seed)``, then for each budget in
increasing order one draw ``rng.integers(0, m, size=(bootstrap, m))`` of its m runs' indices; replicate r refits
each budget's parabola on its draw, and the power laws through the budgets used whose refit has a minimum (a
replicate with fewer than two fails and is counted). The refits are done in batches (``BOOTSTRAP_CELLS``), which
bounds their memory and lets ``progress(done, total)`` be told the refits done (replicates x budgets); the
batching changes a refit by rounding at most. Envelope: one draw ``rng.integers(0, R, size=(bootstrap,
R))`` of the R runs; replicate r is the envelope of the runs drawn, with its own edge flags (``progress`` is
told the replicates done). Intervals are
percentiles of the successful replicates (``numpy.percentile``, linear; a budget's N_opt and D_opt in log10).
The number of resamples (and of envelope points) is checked with ``validate.check_size`` before the runs are
read (the row limit, ``--max-rows``, and the memory the law file's samples take), and again with the memory the
refits hold once the runs are known.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .codes import FLOPS_PER_PARAM_TOKEN
from .errors import ScalesweepError
from .laws import Law, validate_params
from .studies import _power_fit
from .validate import BYTES_PER_ROW_HELD, check_size, integer, number

if TYPE_CHECKING:
    import pandas as pd

APPROACHES = {
    "isoflop": "Hoffmann et al. 2022, 'Training Compute-Optimal Large Language Models', arXiv:2203.15556, "
               "Approach 2 (IsoFLOP profiles, §3.2)",
    "envelope": "Hoffmann et al. 2022, 'Training Compute-Optimal Large Language Models', arXiv:2203.15556, "
                "Approach 1 (minimum over training curves, §3.1)",
}
ISOFLOP_COLUMNS = ("flops", "runs", "params_min", "params_max", "params_opt", "params_opt_lo", "params_opt_hi",
                   "tokens_opt", "tokens_opt_lo", "tokens_opt_hi", "loss_opt", "curvature", "convex",
                   "extrapolated", "used", "bootstrap_ok")
ENVELOPE_COLUMNS = ("flops", "params", "tokens", "loss", "run", "runs_covering", "edge", "used")
DEFAULT_RTOL = 0.05
DEFAULT_BOOTSTRAP = 1000
DEFAULT_LEVEL = 0.8  # Hoffmann et al. 2022 Table 2: 10th-90th percentiles
DEFAULT_POINTS = 100
BATCH_CELLS = 2**21  # replicates x runs x points per numpy pass of the envelope bootstrap (bounds its memory)
BOOTSTRAP_CELLS = 2**18  # replicates x runs per numpy pass of the IsoFLOP bootstrap (bounds its memory)
# A parabola has a minimum only if its quadratic term moves the loss, across the sizes sampled, by more than this
# fraction of the largest |loss|: sqrt(machine epsilon), about 1.5e-8 (see parabola_vertices).
FLAT_RTOL = float(np.sqrt(np.finfo(np.float64).eps))


# ---------------------------------------------------------------------------------------------- input


def _frame(runs: pd.DataFrame | str | os.PathLike[str], what: str) -> tuple[pd.DataFrame, str]:
    """The runs as a DataFrame and the name errors call them by: a DataFrame as it is ("runs"), a path read as CSV
    or Parquet by suffix ("runs 'path'")."""
    import pandas as pd

    if isinstance(runs, pd.DataFrame):
        return runs, what
    if isinstance(runs, (str, os.PathLike)):
        from . import storage
        from .readers import read_table_file

        return read_table_file(runs, what), f"{what} {storage.shown(runs)!r}"
    raise ScalesweepError(f"{what}: give a DataFrame or the path of a CSV or Parquet file, got {type(runs).__name__}")


def _source(runs: object) -> dict[str, str]:
    """``{"runs_file": path}`` for runs read from a file (recorded in the law file), else nothing."""
    return {"runs_file": os.fspath(runs)} if isinstance(runs, (str, os.PathLike)) else {}


def _require(df: pd.DataFrame, where: str, names: Sequence[str]) -> None:
    cols = [str(c) for c in df.columns]
    for c in names:
        if c not in cols:
            raise ScalesweepError(f"{where} has no column {c!r} (columns: {', '.join(cols) or 'none'})")
    if len(df) == 0:
        raise ScalesweepError(f"{where} has no rows")


def _positive(df: pd.DataFrame, where: str, name: str) -> np.ndarray:
    """A column as float64; the first value that is not a finite number > 0 (a boolean included: True is not a
    count or a loss) is a one-line error."""
    import pandas as pd

    col = df[name]
    v = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
    if col.dtype == bool:
        flags = np.ones(len(col), dtype=bool)
    elif col.dtype == object:
        flags = np.fromiter((isinstance(x, (bool, np.bool_)) for x in col), dtype=bool, count=len(col))
    else:
        flags = np.zeros(len(col), dtype=bool)
    bad = ~(np.isfinite(v) & (v > 0)) | flags
    if bad.any():
        i = int(np.argmax(bad))
        raw = df[name].iloc[i]
        raw = raw.item() if isinstance(raw, np.generic) else raw  # nan, not np.float64(nan)
        raise ScalesweepError(f"{where}, row {i + 1}, column {name!r}: {raw!r} is not a finite number > 0")
    return v


def _options(bootstrap: int, seed: int, level: float, command: str) -> tuple[int, int, float]:
    bootstrap = integer(bootstrap, "--bootstrap", 0)
    if bootstrap == 1:
        raise ScalesweepError("--bootstrap needs at least 2 resamples (0: none)")
    # Before the runs are read: each resample is a row of samples in the law file. The memory the refits hold
    # is checked again once the runs are known.
    check_size(f"{command} --bootstrap", bootstrap, bytes_held=BYTES_PER_ROW_HELD * bootstrap,
               raise_with="use fewer --bootstrap resamples")
    seed = integer(seed, "--seed", 0)
    level = number(level, "--level", "pos")
    if not level < 1:
        raise ScalesweepError(f"--level must be between 0 and 1 (0.8: the 10th-90th percentiles), got {level:g}")
    return bootstrap, seed, level


# ------------------------------------------------------------------------------------------ numerics


def parabola_vertices(u: np.ndarray, y: np.ndarray,
                      weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least-squares parabolas y = p2 u^2 + p1 u + p0, one per row of ``weights`` (shape (K, m); a
    weight is a point's multiplicity, 0 leaves it out): (vertex u, value at the vertex, p2, rise).

    ``rise`` is p2 h^2 / max|y|, h half the span of the row's u: how much the quadratic term moves the loss
    across the points, relative to the loss itself. A row has a minimum only with at least three distinct u,
    p2 > 0 and rise > ``FLAT_RTOL`` (sqrt of machine epsilon, about 1.5e-8). The u are centred and scaled to
    [-1, 1] before the solve, so rounding of the losses and of the 3x3 normal equations leaves an error in p2 h^2
    of about kappa * eps * max|y| (kappa, the condition number of the scaled moment matrix, is 10 to 1e4 for any
    sensible spread of sizes): a rise below sqrt(eps) cannot be told from rounding (flat losses give about 1e-15),
    while any measured loss varies by far more than 1e-8 of itself across an IsoFLOP profile. Other rows (flat,
    opening downward, too few distinct u, singular) have a NaN vertex and value."""
    w = np.atleast_2d(weights).astype(np.float64)
    center = 0.5 * float(np.min(u) + np.max(u))
    half = 0.5 * float(np.max(u) - np.min(u))
    scale = half if half > 0 else 1.0
    x = (u - center) / scale  # in [-1, 1]: the moment matrix stays well conditioned whatever the spread
    powers = np.stack([x**k for k in range(5)])  # (5, m)
    s = w @ powers.T  # (K, 5): sums of w x^k
    t = w @ (powers[:3] * y).T  # (K, 3): sums of w y x^k
    mat = np.empty((w.shape[0], 3, 3))
    for i in range(3):
        for j in range(3):
            mat[:, i, j] = s[:, 4 - i - j]
    rhs = t[:, ::-1]  # (x^2, x^1, x^0) moments for (p2, p1, p0)
    present = w > 0
    values, code = np.unique(x, return_inverse=True)
    onehot = np.zeros((x.size, values.size))
    onehot[np.arange(x.size), code] = 1.0
    distinct = ((present @ onehot) > 0).sum(axis=1)  # distinct u per row
    ok = distinct >= 3
    coef = np.full((w.shape[0], 3), np.nan)
    if ok.any():
        try:
            coef[ok] = np.linalg.solve(mat[ok], rhs[ok][..., None])[..., 0]
        except np.linalg.LinAlgError:  # a singular row (distinct u that round together): leave it NaN
            for k in np.flatnonzero(ok):
                try:
                    coef[k] = np.linalg.solve(mat[k], rhs[k])
                except np.linalg.LinAlgError:
                    pass
    p2, p1, p0 = coef[:, 0], coef[:, 1], coef[:, 2]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        span = np.where(present, x, np.inf).min(axis=1), np.where(present, x, -np.inf).max(axis=1)
        h = 0.5 * (span[1] - span[0])
        size = np.where(present, np.abs(y), 0.0).max(axis=1)
        rise = np.where(ok, p2 * h * h / size, np.nan)  # size 0 (all losses 0): NaN, no minimum
        convex = ok & (p2 > 0) & (rise > FLAT_RTOL)
        xv = np.where(convex, -p1 / (2 * p2), np.nan)
        yv = np.where(convex, p0 - p1**2 / (4 * p2), np.nan)
        p2_u = p2 / (scale * scale)
    return xv * scale + center, yv, p2_u, rise


def power_fits(log_c: np.ndarray, log_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(slope, intercept) of least-squares lines of log_y on log_c, one per row of ``log_y`` (K, m); NaN entries
    are left out of their row; a row with fewer than two distinct finite points gives NaN."""
    y = np.atleast_2d(log_y)
    w = np.isfinite(y).astype(np.float64)
    yz = np.where(w > 0, y, 0.0)
    n = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        xm = (w * log_c).sum(axis=1) / n
        ym = yz.sum(axis=1) / n
        dx = (log_c[None, :] - xm[:, None]) * w
        sxx = (dx * dx).sum(axis=1)
        slope = (dx * (yz - ym[:, None])).sum(axis=1) / sxx
        bad = (n < 2) | ~(sxx > 1e-300)
        slope = np.where(bad, np.nan, slope)
        intercept = np.where(bad, np.nan, ym - slope * xm)
    return slope, intercept


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    s = samples[np.isfinite(samples)]
    if s.size == 0:
        return (math.nan, math.nan)
    lo, hi = np.percentile(s, [50 * (1 - level), 50 * (1 + level)])
    return (float(lo), float(hi))


# ------------------------------------------------------------------------------------------ the result


@dataclass(repr=False)
class AllocationFit:
    """N_opt(C) = params_coef C^params_exponent and D_opt(C) = tokens_coef C^tokens_exponent (C in FLOPs) fitted by
    one of Hoffmann et al.'s approaches, with the per-budget (``isoflop``) or per-point (``envelope``) table.

    ``intervals`` maps N_exp, N_coef, D_exp, D_coef to (lo, hi) bootstrap percentiles at ``level`` (NaN without a
    bootstrap); ``samples`` holds the replicates' (N_coef, N_exp, D_coef, D_exp), NaN where a replicate failed.
    ``warnings`` are one-line messages (extrapolated minima, parabolas without a minimum, edge points, failed
    replicates); the CLI prints them as warnings.
    """

    approach: str
    table: pd.DataFrame
    params_coef: float
    params_exponent: float
    tokens_coef: float
    tokens_exponent: float
    level: float
    intervals: dict[str, tuple[float, float]]
    samples: np.ndarray | None
    warnings: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def a(self) -> float:
        """The exponent of N_opt(C) (Hoffmann et al.'s a)."""
        return self.params_exponent

    @property
    def b(self) -> float:
        """The exponent of D_opt(C) (Hoffmann et al.'s b)."""
        return self.tokens_exponent

    @property
    def parameters(self) -> dict[str, float]:
        """The ``allocation_rule`` parameters, C in FLOPs (C_unit = 1)."""
        return {"N_coef": self.params_coef, "N_exp": self.params_exponent, "D_coef": self.tokens_coef,
                "D_exp": self.tokens_exponent, "C_unit": 1.0}

    @property
    def law(self) -> Law:
        """The fitted allocation as an ``allocation_rule`` law (what the written law file loads as)."""
        try:
            params = validate_params("allocation_rule", self.parameters)
        except ScalesweepError as exc:
            raise ScalesweepError(f"the fitted allocation is not an allocation_rule law ({exc}); check the runs") \
                from None
        return Law(family="allocation_rule", params=params, citation=self.citation, conventions=self.conventions)

    @property
    def citation(self) -> str:
        return f"fitted by scalesweep ({APPROACHES[self.approach]})"

    @property
    def conventions(self) -> str:
        return ("N and D as in the runs fitted; C in FLOPs (" + ("the flops column, else 6ND" if self.approach ==
                "isoflop" else "6ND per checkpoint") + "); no loss of its own (frontier --loss-law gives one)")

    def to_frame(self) -> pd.DataFrame:
        """The per-budget (isoflop) or per-point (envelope) table, a copy."""
        return self.table.copy()

    def __repr__(self) -> str:
        def iv(key: str) -> str:
            lo, hi = self.intervals[key]
            return "" if math.isnan(lo) else f" [{lo:.4g}, {hi:.4g}]"

        return (f"AllocationFit({self.approach}: N_opt = {self.params_coef:.4g} C^{self.params_exponent:.4f}"
                f"{iv('N_exp')}, D_opt = {self.tokens_coef:.4g} C^{self.tokens_exponent:.4f}{iv('D_exp')}; "
                f"{len(self.table)} {'budgets' if self.approach == 'isoflop' else 'points'}, "
                f"{len(self.warnings)} warning(s))")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the law file (``family`` allocation_rule, ``parameters``; the rest is provenance that
        ``load_law_file`` ignores)."""
        self.law  # refuse to write a law that would not load
        out: dict[str, Any] = {"family": "allocation_rule", "parameters": self.parameters, "citation": self.citation,
                               "conventions": self.conventions,
                               "fit": {"approach": self.approach, **self.info, "warnings": list(self.warnings)}}
        if self.samples is not None:
            ok = np.isfinite(self.samples).all(axis=1)
            out["bootstrap"] = {
                "resamples": int(self.samples.shape[0]), "failed": int((~ok).sum()), "seed": self.info.get("seed"),
                "level": self.level,
                "intervals": {k: list(v) for k, v in self.intervals.items()},
                # the family's parameter order, C_unit included, as fit.read_bootstrap reads samples
                "parameter_names": ["N_coef", "N_exp", "D_coef", "D_exp", "C_unit"],
                "samples": np.column_stack([self.samples[ok], np.ones(int(ok.sum()))]).tolist(),
            }
        return out

    def write_law_file(self, path: str | os.PathLike[str]) -> None:
        """Write the law file (JSON, atomically; ``-`` prints it)."""
        from .fit import check_law_path
        from .output import write_json

        check_law_path(path)
        write_json(path, self.to_dict())


def _result(approach: str, table: pd.DataFrame, log_c: np.ndarray, log_n: np.ndarray, boot_c: np.ndarray,
            boot_n: np.ndarray | None, level: float, warnings: list[str], info: dict[str, Any]) -> AllocationFit:
    """The power law N_opt = G C^a (log10 line) through (log_c, log_n), and through (boot_c, each row of boot_n),
    NaN entries left out: the bootstrap replicates. D_opt = C/(6 N_opt) in both approaches, so the law of D is
    C^(1-a)/(6G): the allocation keeps C = 6 N_opt D_opt (to rounding)."""
    a, lg = _power_fit(log_c, log_n)
    samples = None
    intervals = {k: (math.nan, math.nan) for k in ("N_coef", "N_exp", "D_coef", "D_exp")}
    if boot_n is not None:
        sa, sg = power_fits(boot_c, boot_n)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            g = 10.0**sg
            samples = np.stack([g, sa, 1.0 / (FLOPS_PER_PARAM_TOKEN * g), 1.0 - sa], axis=1)
        failed = ~(np.isfinite(samples).all(axis=1) & (samples[:, 0] > 0) & (samples[:, 2] > 0))
        samples[failed] = np.nan
        for j, k in enumerate(("N_coef", "N_exp", "D_coef", "D_exp")):
            intervals[k] = _interval(samples[:, j], level)
        if failed.any():
            warnings.append(f"{int(failed.sum())} of {len(samples)} bootstrap replicates had fewer than 2 usable "
                            f"{'budgets' if approach == 'isoflop' else 'points'} and were left out of the intervals")
        info["bootstrap_failed"] = int(failed.sum())
    with np.errstate(over="ignore", divide="ignore"):
        g = float(np.power(10.0, float(lg)))
    return AllocationFit(approach=approach, table=table, params_coef=g, params_exponent=float(a),
                         tokens_coef=1.0 / (FLOPS_PER_PARAM_TOKEN * g) if g > 0 else math.inf,
                         tokens_exponent=1.0 - float(a), level=level,
                         intervals=intervals, samples=samples, warnings=warnings, info=info)


# ------------------------------------------------------------------------------------------ approach 2


def assign_budgets(c: np.ndarray, budgets: Sequence[float] | np.ndarray | None,
                   rtol: float) -> tuple[np.ndarray, np.ndarray]:
    """(budget values, index of each run's budget). With ``budgets`` given each run goes to the nearest in log;
    without, runs sorted by C start a new budget where C grows by more than ``rtol`` over the previous run, and a
    budget is its runs' geometric mean (their C itself where they all have the same). Either way a run more than
    ``rtol`` from its budget is an error."""
    if budgets is None:
        order = np.argsort(c, kind="stable")
        cs = c[order]
        start = np.concatenate([[True], cs[1:] / cs[:-1] - 1 > rtol])
        group_sorted = np.cumsum(start) - 1
        idx = np.empty(c.size, dtype=np.int64)
        idx[order] = group_sorted
        values = np.exp(np.bincount(idx, weights=np.log(c)) / np.bincount(idx))
        lo, hi = np.full(values.size, np.inf), np.full(values.size, -np.inf)
        np.minimum.at(lo, idx, c)
        np.maximum.at(hi, idx, c)
        values = np.where(lo == hi, lo, values)  # a budget whose runs share one C is that C, not its rounded mean
        source = "budget"
    else:
        values = np.unique(np.asarray(budgets, dtype=np.float64))
        if values.size == 0 or not (np.isfinite(values) & (values > 0)).all():
            raise ScalesweepError("--budgets: values must be finite numbers > 0")
        idx = np.argmin(np.abs(np.log(c)[:, None] - np.log(values)[None, :]), axis=1)
        source = "nearest of --budgets"
    rel = np.abs(c / values[idx] - 1)
    if (rel > rtol).any():
        i = int(np.argmax(rel))
        fix = "add its budget to --budgets" if budgets is not None else "give --budgets"
        raise ScalesweepError(f"run {i + 1}: its budget {c[i]:.4g} FLOPs is {rel[i]:.1%} from its {source} "
                              f"{values[idx[i]]:.4g} (over --rtol {rtol:g}); {fix} or a larger --rtol")
    used = np.unique(idx)
    remap = np.full(values.size, -1)
    remap[used] = np.arange(used.size)
    return values[used], remap[idx]


def _check_6nd(where: str, c: np.ndarray, n: np.ndarray, d: np.ndarray, names: tuple[str, str, str],
               rtol: float) -> None:
    """Refuse the first run whose 6·params·tokens differs from its flops by more than ``rtol`` (relative)."""
    with np.errstate(over="ignore", invalid="ignore"):
        rel = FLOPS_PER_PARAM_TOKEN * n * d / c - 1
    bad = ~(np.abs(rel) <= rtol)
    if bad.any():
        i = int(np.argmax(bad))
        flops, params, tokens = names
        raise ScalesweepError(
            f"{where}, row {i + 1}: {tokens} {d[i]:.6g} disagrees with {flops}/(6·{params}) = "
            f"{c[i] / (FLOPS_PER_PARAM_TOKEN * n[i]):.6g} (6·{params}·{tokens} is {rel[i]:+.2%} from {flops}, over "
            f"--rtol {rtol:g}); every run must have C = 6ND: fix the row, or drop the {tokens!r} column (tokens are "
            f"then {flops}/(6·{params}))")


def isoflop_fit(runs: pd.DataFrame | str | os.PathLike[str], *, params_column: str = "params",
                tokens_column: str | None = None, flops_column: str | None = None, loss_column: str = "loss",
                budgets: Sequence[float] | np.ndarray | None = None, rtol: float = DEFAULT_RTOL,
                exclude_extrapolated: bool = False, bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                level: float = DEFAULT_LEVEL, progress: Callable[[int, int], None] | None = None) -> AllocationFit:
    """Approach 2 (IsoFLOP profiles) on final losses of runs: see the module docstring.

    ``runs``: a DataFrame or a CSV/Parquet path with params, loss, and tokens or flops. Budgets come from
    ``flops_column`` (None: "flops" where the file has it), else C = 6ND; tokens from ``tokens_column`` (None:
    "tokens", else flops/(6 params)); with both, 6·params·tokens must be within ``rtol`` of flops on every run.
    ``budgets``: the budgets the runs were planned at (each run goes to the nearest); ``rtol``: how far
    (relative) a run's C may be from its budget. ``exclude_extrapolated``: leave budgets whose minimum lies
    outside the sampled sizes out of the power laws (they are always flagged). ``progress(done, total)``: told
    the bootstrap refits done (replicates x budgets). Returns an :class:`AllocationFit` whose table has one row
    per budget (``ISOFLOP_COLUMNS``).
    """
    import pandas as pd

    bootstrap, seed, level = _options(bootstrap, seed, level, "fit-isoflop")
    rtol = number(rtol, "--rtol", "pos")
    df, where = _frame(runs, "runs")
    cols = [str(c) for c in df.columns]
    if flops_column is None and "flops" in cols:
        flops_column = "flops"
    if tokens_column is None and ("tokens" in cols or flops_column is None):
        tokens_column = "tokens"
    _require(df, where, [params_column, loss_column, *([tokens_column] if tokens_column else []),
                         *([flops_column] if flops_column else [])])
    n = _positive(df, where, params_column)
    loss = _positive(df, where, loss_column)
    if flops_column:
        c = _positive(df, where, flops_column)
        if tokens_column:
            d = _positive(df, where, tokens_column)
            _check_6nd(where, c, n, d, (flops_column, params_column, tokens_column), rtol)
        else:
            d = c / (FLOPS_PER_PARAM_TOKEN * n)
    else:
        d = _positive(df, where, tokens_column or "tokens")  # without flops the tokens column is required
        with np.errstate(over="ignore"):
            c = FLOPS_PER_PARAM_TOKEN * n * d
    values, idx = assign_budgets(c, budgets, rtol)
    counts = np.bincount(idx, minlength=values.size)
    for j in range(values.size):
        sizes = np.unique(n[idx == j]).size
        if sizes < 3:
            hint = "" if budgets is not None else f" (runs whose budgets agree within --rtol {rtol:g} share one)"
            raise ScalesweepError(f"budget {values[j]:.4g} FLOPs has {counts[j]} run(s) with {sizes} model size(s): "
                                  f"a parabola needs at least 3 sizes per budget{hint}")
    if values.size < 2:
        raise ScalesweepError(f"all {n.size} runs share one budget ({values[0]:.4g} FLOPs): a power law needs at "
                              "least 2 budgets")
    if bootstrap:
        # the draws (int64), the weights and the moments of one batch, the replicates' vertices per budget, and
        # the samples written to the law file
        most = int(counts.max())
        held = bootstrap * (8 * most + 16 * values.size + BYTES_PER_ROW_HELD) + 80 * BOOTSTRAP_CELLS
        check_size("fit-isoflop --bootstrap", bootstrap, bytes_held=held, raise_with="use fewer --bootstrap resamples")
    lc = np.log10(values)
    ld_of_n = lc - math.log10(FLOPS_PER_PARAM_TOKEN)  # log10 D_opt = log10(C/6) - log10 N_opt
    rng = np.random.default_rng(seed)
    rows, warnings, boot_n, boot_ok, log_n = [], [], [], [], []
    total, done = bootstrap * values.size, 0
    if progress is not None and bootstrap:
        progress(0, total)
    for j in range(values.size):
        members = np.flatnonzero(idx == j)
        m = members.size
        un, ud, y = np.log10(n[members]), np.log10(d[members]), loss[members]
        vn, yv, p2, rise = parabola_vertices(un, y, np.ones((1, m)))
        convex = bool(np.isfinite(vn[0]))
        vd = ld_of_n[j] - vn[0]
        log_n.append(vn[0])
        outside_n = convex and not un.min() <= vn[0] <= un.max()
        outside_d = convex and not ud.min() <= vd <= ud.max()
        extrapolated = bool(outside_n or outside_d)
        used = convex and not (extrapolated and exclude_extrapolated)
        with np.errstate(over="ignore"):
            n_opt, d_opt = 10.0 ** vn[0], 10.0**vd
        row = {"flops": values[j], "runs": int(m), "params_min": float(n[members].min()),
               "params_max": float(n[members].max()), "params_opt": n_opt, "tokens_opt": d_opt,
               "loss_opt": yv[0], "curvature": p2[0], "convex": convex, "extrapolated": extrapolated, "used": used}
        if not convex:
            if abs(rise[0]) <= FLAT_RTOL:
                why = (f"the parabola of loss in log N has no curvature beyond rounding (it moves the loss by "
                       f"{abs(rise[0]):.2g} of its size across the sizes, not over {FLAT_RTOL:.2g})")
            else:
                why = "the parabola of loss in log N opens downward"
            warnings.append(f"budget {values[j]:.4g} FLOPs: {why}: no minimum; left out of the power laws")
        elif extrapolated:
            place = (f"the minimum (N = {n_opt:.4g}) lies outside the sampled sizes ({row['params_min']:.4g} "
                     f"to {row['params_max']:.4g})" if outside_n else f"the minimum (D = C/(6N) = {d_opt:.4g}) "
                     f"lies outside the sampled tokens ({d[members].min():.4g} to {d[members].max():.4g})")
            warnings.append(f"budget {values[j]:.4g} FLOPs: {place}: extrapolated"
                            + ("; left out of the power laws" if exclude_extrapolated else ""))
        if bootstrap:
            draws = rng.integers(0, m, size=(bootstrap, m))
            bn = np.empty(bootstrap)
            step = max(1, BOOTSTRAP_CELLS // m)
            for s in range(0, bootstrap, step):
                e = min(bootstrap, s + step)
                flat = (np.arange(e - s)[:, None] * m + draws[s:e]).ravel()
                w = np.bincount(flat, minlength=(e - s) * m).reshape(e - s, m).astype(np.float64)
                bn[s:e] = parabola_vertices(un, y, w)[0]
                done += e - s
                if progress is not None:
                    progress(done, total)
            del draws
            ok = np.isfinite(bn)
            with np.errstate(over="ignore"):
                row["params_opt_lo"], row["params_opt_hi"] = np.power(10.0, _interval(bn, level))
                row["tokens_opt_lo"], row["tokens_opt_hi"] = np.power(10.0, _interval(ld_of_n[j] - bn, level))
            row["bootstrap_ok"] = int(ok.sum())
            boot_n.append(bn if used else np.full(bootstrap, np.nan))
            boot_ok.append(ok)
        else:
            row.update(params_opt_lo=math.nan, params_opt_hi=math.nan, tokens_opt_lo=math.nan,
                       tokens_opt_hi=math.nan, bootstrap_ok=0)
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(ISOFLOP_COLUMNS))
    use = table["used"].to_numpy()
    if use.sum() < 2:
        raise ScalesweepError(f"only {int(use.sum())} of {values.size} budgets have a usable minimum: a power law "
                              "needs at least 2 (see the warnings)" + (f": {warnings[0]}" if warnings else ""))
    if bootstrap:
        weak = [values[j] for j in range(values.size) if use[j] and boot_ok[j].mean() < 0.5]
        if weak:
            warnings.append(f"{len(weak)} budget(s) ({', '.join(f'{v:.3g}' for v in weak)} FLOPs) have a minimum in "
                            "fewer than half of their resamples (too few distinct sizes): their intervals are loose")
    info = {"runs": int(n.size), "budgets": int(values.size), "budgets_used": int(use.sum()),
            "extrapolated": int(table["extrapolated"].sum()), "not_convex": int((~table["convex"]).sum()),
            "rtol": rtol, "budgets_from": "--budgets (nearest)" if budgets is not None else
            f"{flops_column!r} column" if flops_column else "6ND",
            "exclude_extrapolated": bool(exclude_extrapolated), "bootstrap": bootstrap, "seed": seed,
            **_source(runs)}
    return _result("isoflop", table, lc[use], np.array(log_n)[use], lc[use],
                   np.stack(boot_n, axis=1)[:, use] if bootstrap else None, level, warnings, info)


# ------------------------------------------------------------------------------------------ approach 1


def envelope_matrix(run_ids: np.ndarray, n: np.ndarray, d: np.ndarray, loss: np.ndarray,
                    grid: np.ndarray) -> np.ndarray:
    """Loss of each run at each grid budget (runs, points): linear in log C between the run's checkpoints
    (C = 6ND), NaN outside the run's first and last checkpoint. ``run_ids`` are integer codes 0..R-1."""
    runs = int(run_ids.max()) + 1
    out = np.full((runs, grid.size), np.nan)
    lg = np.log(grid)
    for r in range(runs):
        sel = run_ids == r
        order = np.argsort(d[sel])
        lc = np.log(FLOPS_PER_PARAM_TOKEN * n[sel][order] * d[sel][order])
        out[r] = np.interp(lg, lc, loss[sel][order], left=np.nan, right=np.nan)
    return out


def envelope_points(matrix: np.ndarray, sizes: np.ndarray,
                    present: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each row of ``present`` (K, runs; True: the run is in the replicate): the envelope run per point (-1
    where no run covers it), the envelope loss, the number of runs covering each point and the edge flags (the
    envelope run is the smallest or largest model covering the point). Shapes (K, points)."""
    cov = np.isfinite(matrix)[None, :, :] & present[:, :, None]  # (K, R, P)
    vals = np.where(cov, matrix[None, :, :], np.inf)
    arg = np.argmin(vals, axis=1)  # (K, P); first of equal losses
    best = np.take_along_axis(vals, arg[:, None, :], axis=1)[:, 0, :]
    count = cov.sum(axis=1)
    s = sizes[None, :, None]
    lo = np.where(cov, s, np.inf).min(axis=1)
    hi = np.where(cov, s, -np.inf).max(axis=1)
    n_att = sizes[arg]
    edge = (n_att <= lo) | (n_att >= hi)
    none = count == 0
    arg = np.where(none, -1, arg)
    best = np.where(none, np.nan, best)
    return arg, best, count, edge | none


def envelope_fit(runs: pd.DataFrame | str | os.PathLike[str], *, run_column: str = "run",
                 params_column: str = "params", tokens_column: str = "tokens", loss_column: str = "loss",
                 points: int = DEFAULT_POINTS, flops_range: tuple[float, float] | None = None,
                 include_edge: bool = False, bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                 level: float = DEFAULT_LEVEL, progress: Callable[[int, int], None] | None = None) -> AllocationFit:
    """Approach 1 (minimum over training curves) on checkpoints of runs: see the module docstring.

    ``runs``: a DataFrame or a CSV/Parquet path, one row per checkpoint: run (any label), params (the same on
    every row of a run), tokens seen so far, loss. ``points`` log-spaced FLOPs from ``flops_range`` (default:
    the first checkpoint of any run to the last of any run). ``include_edge``: keep edge points in the power
    laws (they are always flagged). ``progress(done, total)``: told the bootstrap replicates done. Returns an
    :class:`AllocationFit` whose table has one row per FLOPs point (``ENVELOPE_COLUMNS``).
    """
    import pandas as pd

    bootstrap, seed, level = _options(bootstrap, seed, level, "fit-envelope")
    points = integer(points, "--points", 2)
    # before the runs are read: each point is a row of the table (checked again with the runs' count below)
    check_size("fit-envelope --points", points, bytes_held=BYTES_PER_ROW_HELD * points,
               raise_with="use fewer --points")
    df, where = _frame(runs, "training curves")
    _require(df, where, [run_column, params_column, tokens_column, loss_column])
    labels = df[run_column]
    if labels.isna().any():
        i = int(np.argmax(labels.isna().to_numpy()))
        raise ScalesweepError(f"{where}, row {i + 1}, column {run_column!r}: the run label is missing")
    n = _positive(df, where, params_column)
    d = _positive(df, where, tokens_column)
    loss = _positive(df, where, loss_column)
    codes, names = pd.factorize(labels.astype(str))
    runs_count = names.size
    sizes = np.empty(runs_count)
    first, last = np.empty(runs_count), np.empty(runs_count)
    for r in range(runs_count):
        sel = codes == r
        nr = np.unique(n[sel])
        if nr.size != 1:
            raise ScalesweepError(f"{where}: run {names[r]!r} has {nr.size} different params values ({nr[0]:.4g}, "
                                  f"{nr[1]:.4g}, ...); a run is one model")
        dr = d[sel]
        if np.unique(dr).size != dr.size:
            raise ScalesweepError(f"{where}: run {names[r]!r} has two checkpoints at the same tokens")
        if dr.size < 2:
            raise ScalesweepError(f"{where}: run {names[r]!r} has {dr.size} checkpoint: a training curve needs at "
                                  "least 2")
        sizes[r] = nr[0]
        first[r] = FLOPS_PER_PARAM_TOKEN * nr[0] * dr.min()
        last[r] = FLOPS_PER_PARAM_TOKEN * nr[0] * dr.max()
    if np.unique(sizes).size < 2:
        raise ScalesweepError(f"{where}: every run has {sizes[0]:.4g} params: the envelope needs at least 2 model "
                              "sizes")
    if flops_range is None:
        lo, hi = float(first.min()), float(last.max())
    else:
        lo = number(flops_range[0], "--flops-range LO", "pos")
        hi = number(flops_range[1], "--flops-range HI", "pos")
        if not lo < hi:
            raise ScalesweepError(f"--flops-range: LO ({lo:g}) must be less than HI ({hi:g})")
        if hi <= first.min() or lo >= last.max():
            raise ScalesweepError(f"--flops-range {lo:g}:{hi:g} misses every run (checkpoints span "
                                  f"{first.min():.4g} to {last.max():.4g} FLOPs)")
    # The losses of every run at every point and the envelope's temporaries over them, and the table's rows;
    # with a bootstrap also its draws, the replicates' N (and their power-law fits) per point, one batch and the
    # samples written to the law file.
    cells = runs_count * points
    check_size("fit-envelope --points", points, bytes_held=BYTES_PER_ROW_HELD * points + 40 * cells,
               raise_with="use fewer --points")
    if bootstrap:
        held = (BYTES_PER_ROW_HELD * points + 40 * cells + 40 * BATCH_CELLS
                + bootstrap * (BYTES_PER_ROW_HELD + 9 * runs_count + 48 * points))
        check_size("fit-envelope --bootstrap", bootstrap, bytes_held=held,
                   raise_with="use fewer --bootstrap resamples or fewer --points")
    grid = np.geomspace(lo, hi, points)
    mat = envelope_matrix(codes, n, d, loss, grid)
    arg, best, count, edge = envelope_points(mat, sizes, np.ones((1, runs_count), dtype=bool))
    arg, best, count, edge = arg[0], best[0], count[0], edge[0]
    covered = arg >= 0
    used = covered & (include_edge | ~edge)
    n_att = np.where(covered, sizes[np.maximum(arg, 0)], np.nan)
    table = pd.DataFrame({
        "flops": grid, "params": n_att, "tokens": grid / (FLOPS_PER_PARAM_TOKEN * n_att), "loss": best,
        "run": pd.Categorical.from_codes(arg, categories=list(names)),  # -1: no run covers the point
        "runs_covering": count.astype(np.int64), "edge": edge, "used": used}, columns=list(ENVELOPE_COLUMNS))
    warnings = []
    if (edge & covered).any():
        warnings.append(f"{int((edge & covered).sum())} of {points} FLOPs points have their envelope at the smallest "
                        "or largest model covering them (the optimum may lie beyond the sizes there): "
                        + ("kept in the power laws" if include_edge else "left out of the power laws"))
    if (~covered).any():
        warnings.append(f"{int((~covered).sum())} of {points} FLOPs points are covered by no run")
    if used.sum() < 2:
        raise ScalesweepError(f"only {int(used.sum())} of {points} FLOPs points are usable (not at the edge of the "
                              "model sizes): a power law needs at least 2; add model sizes or use --include-edge")
    lc = np.log10(grid)
    boot_n = None
    if bootstrap:
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, runs_count, size=(bootstrap, runs_count))
        present = np.zeros((bootstrap, runs_count), dtype=bool)
        present[np.repeat(np.arange(bootstrap), runs_count), draws.ravel()] = True
        boot_n = np.full((bootstrap, points), np.nan)
        batch = max(1, BATCH_CELLS // (runs_count * points))
        if progress is not None:
            progress(0, bootstrap)
        for s in range(0, bootstrap, batch):
            e = min(bootstrap, s + batch)
            barg, _, _, bedge = envelope_points(mat, sizes, present[s:e])
            keep = (barg >= 0) & (include_edge | ~bedge)
            boot_n[s:e] = np.where(keep, np.log10(sizes[np.maximum(barg, 0)]), np.nan)
            if progress is not None:
                progress(e, bootstrap)
    info = {"runs": int(runs_count), "checkpoints": int(n.size), "model_sizes": int(np.unique(sizes).size),
            "points": points, "flops_range": [lo, hi], "points_used": int(used.sum()),
            "edge_points": int((edge & covered).sum()), "include_edge": bool(include_edge), "bootstrap": bootstrap,
            "seed": seed, **_source(runs)}
    return _result("envelope", table, lc[used], np.log10(n_att[used]), lc, boot_n, level, warnings, info)
