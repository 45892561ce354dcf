"""One solve for every kind of question: budgets in any unit, hardware, limits, and target losses.

``solve(inputs, m, laws, law_idx)`` takes input columns (scalars shared by every row, or arrays of length
m; NaN means "not given"), converts budgets to FLOPs, turns hardware and data limits into frontier
constraints, runs the compiled kernels (budget rows through the frontier kernel, target-loss rows through
the inverse kernel) and derives the real-unit columns. ``api.frontier``, ``api.target_loss`` and the scenario
sweeps all go through it, so a row means the same thing everywhere.

Input names (the scenario fields; see ``FIELDS``): flops, pf_days, gpu_hours, usd, days (with gpus),
target_loss; peak_tflops, gpu_memory_gb, mfu, gpus, usd_per_gpu_hour, bytes_per_param, max_days,
unique_tokens, inference_tokens; and the six frontier constraints.
"""

from __future__ import annotations

import numpy as np

from . import units
from .constraints import ACTIVE_NAMES, CONSTRAINT_NAMES, overfit_log_k, overfit_penalty
from .errors import ScalesweepError
from .kernels.frontier import MAX_PARAMS, MAX_TOKENS, frontier_kernel
from .kernels.inverse import target_kernel
from .kernels.loss import ALLOCATION_RULE, DATA_CONSTRAINED, KAPLAN_SINGLE

DC_UNIQUE_TOKENS = 7  # index of U_D in a data_constrained parameter vector (laws.py)

FLOPS_PER_PARAM_TOKEN = 6.0  # C = 6ND (Kaplan §2.1, Hoffmann §3)
INFERENCE_FLOPS_PER_PARAM_TOKEN = 2.0  # forward pass only (Sardana et al. 2024, sheet §5.1)

MEMORY = ACTIVE_NAMES.index("memory")
UNIQUE_TOKENS = ACTIVE_NAMES.index("unique_tokens")
MAX_DAYS = ACTIVE_NAMES.index("max_days")
BUDGET_LIMITS = ("budget", "max_days")  # budget_limited_by categories

BUDGET_FIELDS = ("flops", "pf_days", "gpu_hours", "usd", "days", "target_loss")
RESULT_COLUMNS = ("flops", "params", "tokens", "loss", "tokens_per_param", "feasible", "active_constraint",
                  "budget_flops", "budget_limited_by", "gpu_hours", "wall_days", "usd", "inference_flops",
                  "lifetime_flops", "epochs", "max_params_memory", "overfit_penalty")


# Every scenario field, its kind and what it means (the same names in tables, sweep specs and the API).
FIELDS = {
    "law": ("str", "law preset name (default hoffmann2022); parameters overridden as law.NAME"),
    "flops": ("pos", "budget in training FLOPs"),
    "pf_days": ("pos", "budget in PF-days (8.64e19 FLOP)"),
    "gpu_hours": ("pos", "budget in GPU-hours (needs gpu)"),
    "usd": ("pos", "budget in dollars (needs gpu and usd_per_gpu_hour)"),
    "days": ("pos", "budget as wall-clock days on gpus GPUs (needs gpu and gpus)"),
    "target_loss": ("pos", "instead of a budget: the least compute reaching this loss"),
    "gpu": ("str", "hardware preset (A100, H100-SXM, H100-PCIe, H200)"),
    "loss_law": ("str", "a loss law to evaluate allocation-rule rows with (their loss is NaN otherwise)"),
    "peak_tflops": ("pos", "dense bf16 peak per GPU, TFLOP/s (custom GPU, or overrides the preset)"),
    "gpu_memory_gb": ("pos", "memory per GPU, GB (custom GPU, or overrides the preset)"),
    "mfu": ("mfu", "model FLOPs utilisation in (0, 1] (default 0.4)"),
    "gpus": ("int", "number of GPUs"),
    "usd_per_gpu_hour": ("pos", "price of one GPU-hour, dollars"),
    "bytes_per_param": ("pos", "training-state bytes per parameter (default 16, mixed-precision Adam)"),
    "max_days": ("pos", "wall-clock limit, days (needs gpus and a gpu): caps the budget"),
    "unique_tokens": ("pos", "unique training tokens available (caps tokens for single-epoch laws)"),
    "inference_tokens": ("nonneg", "lifetime inference tokens (default 0; 2N FLOPs per token)"),
    "min_params": ("pos", "smallest model allowed"),
    "max_params": ("pos", "largest model allowed"),
    "min_tokens": ("pos", "fewest training tokens allowed"),
    "max_tokens": ("pos", "most training tokens allowed"),
    "min_tokens_per_param": ("pos", "lower limit on tokens per parameter"),
    "max_tokens_per_param": ("pos", "upper limit on tokens per parameter"),
    "max_overfit": ("pos", "Kaplan's overfitting measure dL (Eq. 4.3) at most this (0.02: D >~ 5e3 N^0.74)"),
}
DEFAULTS = {"law": "hoffmann2022", "mfu": units.DEFAULT_MFU, "bytes_per_param": units.DEFAULT_BYTES_PER_PARAM,
            "inference_tokens": 0.0}
KIND_RULE = {"pos": "a finite number > 0", "int": "a whole number >= 1", "mfu": "a number in (0, 1]",
             "nonneg": "a finite number >= 0"}


def bad_values(kind: str, v: np.ndarray) -> np.ndarray:
    """Mask of given (non-NaN) values that break the field's rule."""
    given = ~np.isnan(v)
    with np.errstate(invalid="ignore"):
        if kind == "pos":
            ok = np.isfinite(v) & (v > 0)
        elif kind == "int":
            ok = np.isfinite(v) & (v >= 1) & (v == np.floor(v))
        elif kind == "mfu":
            ok = (v > 0) & (v <= 1)
        else:  # nonneg
            ok = np.isfinite(v) & (v >= 0)
    return given & ~ok


def check_scalar(name: str, value, option: str | None = None) -> float | None:
    """Validate one API/CLI value of a numeric field; None stays None."""
    if value is None:
        return None
    kind = FIELDS[name][0]
    opt = option or "--" + name.replace("_", "-")
    try:
        fv = float(value)
    except (TypeError, ValueError):
        raise ScalesweepError(f"{opt} must be {KIND_RULE[kind]}, got {value!r}") from None
    if isinstance(value, bool) or np.isnan(fv) or bad_values(kind, np.array([fv]))[0]:
        raise ScalesweepError(f"{opt} must be {KIND_RULE[kind]}, got {value!r}")
    return fv


def _col(inputs, name):
    v = inputs.get(name)
    return np.float64(np.nan) if v is None else v


def _given(v):
    return ~np.isnan(v)


def _bounds(cols, overfit, m):
    """(raw, log) bounds arrays: (1, 7) when every limit is shared, else (m, 7) (constraints.Constraints)."""
    shared = all(np.ndim(c) == 0 for c in cols) and np.ndim(overfit) == 0
    rows = 1 if shared else m
    raw = np.empty((rows, 7))
    for i, (name, c) in enumerate(zip(CONSTRAINT_NAMES, cols, strict=True)):
        fill = 0.0 if name.startswith("min") else np.inf
        raw[:, i] = np.where(np.isnan(c), fill, c)
    raw[:, 6] = np.where(np.isnan(overfit), np.inf, overfit)
    with np.errstate(divide="ignore"):
        lb = np.log(raw)
    lb[:, 6] = overfit_log_k(overfit)
    return raw, lb


def _allocation_rows(rows, p, flops, raw, n, d, loss, feas, active):
    """Rows whose law is an allocation rule: N and D from the rule (a coefficient of 0 means "from C = 6ND"),
    loss NaN; a row whose allocation breaks a limit is infeasible (a rule cannot be steered)."""
    k = FLOPS_PER_PARAM_TOKEN
    t = flops / p[:, 4]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        nn = np.where(p[:, 0] > 0, p[:, 0] * t ** p[:, 1], np.nan)
        dd = np.where(p[:, 2] > 0, p[:, 2] * t ** p[:, 3], np.nan)
        nn = np.where(np.isnan(nn), flops / (k * dd), nn)
        dd = np.where(np.isnan(dd), flops / (k * nn), dd)
        b = raw if raw.shape[0] == 1 else raw[rows]
        ok = ((nn >= b[:, 0]) & (nn <= b[:, 1]) & (dd >= b[:, 2]) & (dd <= b[:, 3]) & (dd / nn >= b[:, 4])
              & (dd / nn <= b[:, 5]) & np.isfinite(nn) & np.isfinite(dd))
    n[rows] = np.where(ok, nn, np.nan)
    d[rows] = np.where(ok, dd, np.nan)
    loss[rows] = np.nan
    feas[rows] = ok
    active[rows] = 0


def _unique_tokens_into_laws(fams, P, law_idx, uniq, m):
    """Give every data_constrained row its own U_D (its unique tokens): the law table grows by one entry per
    distinct (law, unique tokens) pair. Returns (fams, P, law_idx, mask of rows whose law models repeats)."""
    li = np.broadcast_to(np.asarray(law_idx, dtype=np.int64).reshape(-1), (m,)) if np.size(law_idx) == 1 \
        else np.asarray(law_idx, dtype=np.int64)
    u = np.broadcast_to(np.asarray(uniq, dtype=np.float64), (m,))
    dc = (fams[li] == DATA_CONSTRAINED) & ~np.isnan(u)
    if not dc.any():
        return fams, P, law_idx, dc
    keys, inverse = np.unique(np.stack([li[dc].astype(np.float64), u[dc]], axis=1), axis=0, return_inverse=True)
    extra = P[keys[:, 0].astype(np.int64)].copy()
    extra[:, DC_UNIQUE_TOKENS] = keys[:, 1]
    new_idx = li.copy()
    new_idx[dc] = P.shape[0] + inverse.reshape(-1)
    return (np.concatenate([fams, fams[keys[:, 0].astype(np.int64)]]), np.ascontiguousarray(np.vstack([P, extra])),
            new_idx, dc)


def materialize(v, m: int, dtype=np.float64) -> np.ndarray:
    """A column as a writable contiguous array of length m (a scalar is a value shared by every row)."""
    a = np.asarray(v, dtype=dtype)
    if a.shape == (m,) and a.flags.c_contiguous and a.flags.writeable:
        return a
    return np.array(np.broadcast_to(a, (m,)), dtype=dtype, order="C")  # a fresh, writable copy


def solve(inputs: dict, m: int, fams: np.ndarray, P: np.ndarray, law_idx: np.ndarray, *, solver: int = 0,
          overfit: bool = True) -> dict:
    """Solve m rows; returns result columns: arrays of length m, or scalars where a value is shared by every
    row (``materialize`` turns either into an array). Categorical columns are codes.

    Inputs are assumed valid (the scenario loader and the API functions check them first). Work that the
    inputs do not call for (no GPU, no time limit, ...) is skipped, so a plain frontier costs little more
    than its kernel. ``overfit=False`` skips the overfit_penalty column (a power per row).
    """
    nan = np.float64(np.nan)
    given = {name for name, v in inputs.items() if v is not None and not np.all(np.isnan(v))}
    peak = _col(inputs, "peak_tflops")
    mfu = inputs.get("mfu", units.DEFAULT_MFU)
    gpus = _col(inputs, "gpus")
    price = _col(inputs, "usd_per_gpu_hour")
    per_hour = units.model_flops_per_gpu_hour(peak, mfu)  # NaN without a GPU
    with np.errstate(invalid="ignore", divide="ignore"):
        # Budget in FLOPs: exactly one form is given per row; NaN for target-loss rows.
        forms = [(name, factor) for name, factor in (
            ("flops", None), ("pf_days", units.PF_DAY), ("gpu_hours", per_hour), ("usd", per_hour / price),
            ("days", units.HOURS_PER_DAY * gpus * per_hour)) if name in given]
        if len(forms) == 1 and not np.isnan(inputs[forms[0][0]]).any():  # one form for every row
            name, factor = forms[0]
            budget = inputs[name] if factor is None else inputs[name] * factor
        else:
            budget = np.full(m, nan)
            for name, factor in forms:
                v = inputs[name]
                budget = np.where(_given(v), v if factor is None else v * factor, budget)
        target = _col(inputs, "target_loss")
        is_target = _given(target)
        any_target, all_target = bool(np.any(is_target)), bool(np.all(is_target))
        # Time limit: the budget is capped at what the GPUs deliver in max_days.
        cap, time_capped, flops = np.inf, np.False_, budget
        if "max_days" in given:
            cap = units.flops_for_days(_col(inputs, "max_days"), gpus, peak, mfu)
            time_capped = cap < budget
            flops = np.where(time_capped, cap, budget)
        # Memory: fully sharded training state must fit (units.max_params_for_memory).
        max_params, mem_params, memory_binds = _col(inputs, "max_params"), nan, np.False_
        if "gpus" in given and "gpu_memory_gb" in given:
            mem_params = units.max_params_for_memory(gpus, _col(inputs, "gpu_memory_gb"),
                                                     inputs.get("bytes_per_param", units.DEFAULT_BYTES_PER_PARAM))
            memory_binds = mem_params < np.where(np.isnan(max_params), np.inf, max_params)
            max_params = np.where(memory_binds, mem_params, max_params)
        # Unique data: a data_constrained law takes it into the loss (its U_D parameter, per row); the
        # single-epoch families cannot train on more tokens than there are unique tokens.
        uniq, max_tokens, unique_binds = _col(inputs, "unique_tokens"), _col(inputs, "max_tokens"), np.False_
        if "unique_tokens" in given:
            single_epoch = True
            if np.any(fams == DATA_CONSTRAINED):
                fams, P, law_idx, repeats_ok = _unique_tokens_into_laws(fams, P, law_idx, uniq, m)
                single_epoch = ~repeats_ok
            unique_binds = single_epoch & (uniq < np.where(np.isnan(max_tokens), np.inf, max_tokens))
            max_tokens = np.where(unique_binds, uniq, max_tokens)
    cons = [_col(inputs, "min_params"), max_params, _col(inputs, "min_tokens"), max_tokens,
            _col(inputs, "min_tokens_per_param"), _col(inputs, "max_tokens_per_param")]
    if "max_overfit" in given and any_target:
        raise ScalesweepError("max_overfit is a frontier limit; target-loss rows do not support it yet")
    raw, lb = _bounds(cons, _col(inputs, "max_overfit"), m)
    k = FLOPS_PER_PARAM_TOKEN
    n, d, loss = np.empty(m), np.empty(m), np.empty(m)
    feas, active = np.empty(m, dtype=np.bool_), np.empty(m, dtype=np.int8)
    law_idx = np.ascontiguousarray(law_idx, dtype=np.int64).reshape(-1)
    dinf = inputs.get("inference_tokens", 0.0)
    dinf = np.ascontiguousarray(np.atleast_1d(np.asarray(dinf, dtype=np.float64)))
    if all_target:
        target_kernel(fams, P, law_idx, materialize(target, m), k, dinf, lb, raw, n, d, loss, feas, active)
    elif not any_target:
        frontier_kernel(fams, P, law_idx, materialize(flops, m), k, lb, raw, solver, n, d, loss, feas, active)
    else:  # a table mixing budgets and targets: two passes over the two subsets
        flops_all, dinf_all = materialize(flops, m), materialize(dinf if dinf.size > 1 else dinf[0], m)
        for mask, run_target in ((~is_target, False), (is_target, True)):
            idx = np.flatnonzero(mask)
            li = law_idx if law_idx.size == 1 else law_idx[idx]
            bi = (lb, raw) if lb.shape[0] == 1 else (lb[idx], raw[idx])
            on, od, ol = np.empty(idx.size), np.empty(idx.size), np.empty(idx.size)
            of, oa = np.empty(idx.size, dtype=np.bool_), np.empty(idx.size, dtype=np.int8)
            if run_target:
                target_kernel(fams, P, li, np.ascontiguousarray(target[idx]), k, dinf_all[idx], bi[0], bi[1],
                              on, od, ol, of, oa)
            else:
                frontier_kernel(fams, P, li, flops_all[idx], k, bi[0], bi[1], solver, on, od, ol, of, oa)
            n[idx], d[idx], loss[idx], feas[idx], active[idx] = on, od, ol, of, oa
    # Allocation rules are formulas, not optimisations: their rows are filled in here (the kernel flagged them).
    li_full = np.broadcast_to(law_idx, (m,)) if law_idx.size == 1 else law_idx
    if (fams == ALLOCATION_RULE).any():  # (checked on the law table first: most sweeps have none)
        rule = fams[li_full] == ALLOCATION_RULE
        _allocation_rows(np.flatnonzero(rule), P[li_full[rule]], materialize(flops, m)[rule], raw, n, d, loss, feas,
                         active)
    single = fams[li_full] == KAPLAN_SINGLE if (fams == KAPLAN_SINGLE).any() else np.zeros(0, bool)
    if single.any():  # loss at the budget (compute laws) and no allocation
        rows = np.flatnonzero(single)
        p = P[li_full[rows]]
        with np.errstate(invalid="ignore", divide="ignore"):
            val = (p[:, 0] / (materialize(flops, m)[rows] / units.PF_DAY)) ** p[:, 1]
        loss[rows] = np.where(p[:, 2] >= 2, val, np.nan)
        feas[rows] = p[:, 2] >= 2
        n[rows] = np.nan
        d[rows] = np.nan
        active[rows] = 0
    # Name the hardware / data limits that set a binding bound.
    if np.any(memory_binds):
        active[(active == MAX_PARAMS) & np.broadcast_to(memory_binds, (m,))] = MEMORY
    if np.any(unique_binds):
        active[(active == MAX_TOKENS) & np.broadcast_to(unique_binds, (m,))] = UNIQUE_TOKENS
    with np.errstate(invalid="ignore", divide="ignore"):
        # Target rows: the answer is the training compute; a time limit makes too-costly targets infeasible.
        train = flops
        if any_target:
            train = np.where(is_target, k * n * d, flops)
            over_time = is_target & (train > cap)
            if over_time.any():
                feas = feas & ~over_time
                active[over_time] = MAX_DAYS
                for a in (n, d, loss):
                    a[over_time] = np.nan
                train = np.where(over_time, np.nan, train)
        hours = train / per_hour if "peak_tflops" in given else nan
        if dinf.size == 1 and dinf[0] == 0.0:
            inf_flops = np.float64(0.0)  # no inference demand: skip two passes over every row
        else:
            inf_flops = INFERENCE_FLOPS_PER_PARAM_TOKEN * n * (dinf if dinf.size > 1 else dinf[0])
        return {
            "flops": train,
            "params": n,
            "tokens": d,
            "loss": loss,
            "tokens_per_param": d / n,
            "feasible": feas,
            "active_constraint": active,
            "budget_flops": budget,
            "budget_limited_by": np.asarray(time_capped).astype(np.int8),
            "gpu_hours": hours,
            "wall_days": units.wall_days(hours, gpus) if "gpus" in given else nan,
            "usd": hours * price if "usd_per_gpu_hour" in given else nan,
            "inference_flops": inf_flops,
            "lifetime_flops": train + inf_flops,
            "epochs": d / uniq if "unique_tokens" in given else nan,
            "max_params_memory": mem_params,
            "overfit_penalty": overfit_penalty(n, d) if overfit else nan,
        }


# A field that needs others: (field, needed fields, what to say). "peak" is a gpu preset or peak_tflops.
REQUIRES = (
    ("gpu_hours", ("peak",), "a budget in gpu_hours needs a GPU (gpu or peak_tflops)"),
    ("usd", ("peak", "usd_per_gpu_hour"), "a budget in usd needs a GPU (gpu or peak_tflops) and usd_per_gpu_hour"),
    ("days", ("peak", "gpus"), "a budget in days needs gpus and a GPU (gpu or peak_tflops)"),
    ("max_days", ("peak", "gpus"), "max_days needs gpus and a GPU (gpu or peak_tflops)"),
)


def check_rules(given: dict, m: int, label) -> None:
    """Raise on the first row breaking a cross-field rule. ``given`` maps field -> bool (shared) or bool
    array (per row); absent names are not given. ``label(i)`` names row i in the message."""
    if all(np.ndim(v) == 0 for v in given.values()):  # the same fields for every row: check once
        m = 1
        label0 = label
        label = lambda i: label0(0)  # noqa: E731

    def g(name):
        if name == "peak":
            return np.broadcast_to(g("gpu") | g("peak_tflops"), (m,))
        return np.broadcast_to(given.get(name, False), (m,))

    count = sum(g(f).astype(np.int8) for f in BUDGET_FIELDS)
    for bad, msg in ((count == 0, "no budget: give one of " + ", ".join(BUDGET_FIELDS)),
                     (count > 1, "more than one budget: give exactly one of " + ", ".join(BUDGET_FIELDS))):
        if bad.any():
            raise ScalesweepError(f"{label(int(np.argmax(bad)))}: {msg}")
    for name, needs, msg in REQUIRES:
        bad = g(name) & ~np.logical_and.reduce([g(n) for n in needs])
        if bad.any():
            raise ScalesweepError(f"{label(int(np.argmax(bad)))}: {msg}")
