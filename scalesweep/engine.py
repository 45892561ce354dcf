"""One solve for every kind of question: budgets in any unit, hardware, limits, and target losses.

``solve(inputs, m, fams, P, law_idx)`` takes input columns named as the scenario fields (``options.FIELDS``;
scalars shared by every row, or arrays of length m; NaN means "not given") and runs named stages:

1. ``budget_flops``: the budget of each row in FLOPs, whatever form it was given in;
2. ``time_limit``: the budget capped at what the GPUs deliver in ``max_days``;
3. ``hardware_limits``: GPU memory and unique data become frontier limits (or, for a family that models
   repeated data, a per-row law parameter);
4. ``run_kernels``: budget rows through the frontier kernel, target-loss rows through the inverse kernel;
5. ``family_rows``: families whose frontier is not a solve (allocation rules, loss-at-budget laws) and rows
   whose family cannot answer the question;
6. ``name_limits``: the hardware or data limit behind a binding bound, and the reason of each infeasible row;
7. ``derived_columns``: the real-unit columns.

A budget given in another unit whose FLOPs are beyond the float range, or a row whose real-unit column
(``OVERFLOW_COLUMNS``) is, is infeasible with reason ``budget_overflow`` or ``<column>_overflow`` (``solve``
with ``overflow="error"`` refuses the first such budget instead); no numpy warning is left to escape.

``api.frontier``, ``api.target_loss`` and the scenario sweeps all go through it, so a row means the same
thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import units
from .codes import (ACTIVE_NAMES, CONSTRAINT_NAMES, FLOPS_PER_PARAM_TOKEN, INFERENCE_FLOPS_PER_PARAM_TOKEN, MAX_DAYS,
                    MAX_PARAMS, MAX_TOKENS, MEMORY, NONE, PF_DAY, SOLVER_AUTO, UNIQUE_TOKENS)
from .constraints import overfit_log_k, overfit_penalty
from .errors import ScalesweepError
from .kernels.frontier import frontier_kernel, interval_conflicts, rows_of_columns
from .kernels.inverse import TARGET_IRREDUCIBLE, target_conflicts, target_kernel
from .laws import family_of_code
from .options import BUDGET_FIELDS, columns

NAN = np.float64(np.nan)
REASON_UNSUPPORTED = "unsupported_family"
REASON_NO_ALLOCATION = "no_allocation"  # a limit on N or D given to a law that states no allocation
# The allocation leaves the physical domain N >= 1 parameter, D >= 1 token: the budget itself is too small (for
# a solved frontier, too small for the limits given; for an allocation rule, its power law gives N or D < 1).
REASON_DOMAIN = "budget"
# The real-unit columns checked for overflow (a value beyond the float range from finite inputs).
OVERFLOW_COLUMNS = ("gpu_hours", "wall_days", "usd", "energy_kwh", "co2_t", "inference_flops", "lifetime_flops",
                    "max_params_memory")
REASON_BUDGET_OVERFLOW = "budget_overflow"
FLOAT_MAX = float(np.finfo(np.float64).max)
# Limits the frontier kernel applies and the inverse (target-loss) kernel does not.
FRONTIER_ONLY_LIMITS = ("max_overfit", "max_convergence_gap")
# The inputs that limit the allocation: a law without one (loss at a budget) cannot honour them.
ALLOCATION_LIMITS = (*CONSTRAINT_NAMES, "max_overfit", "max_convergence_gap", "unique_tokens")


def _col(inputs, name):
    v = inputs.get(name)
    return NAN if v is None else v


def _any_given(v) -> bool:
    """Whether a column gives a value on some row (not all NaN); a column whose first row has one needs no pass."""
    a = np.asarray(v)
    return (a.size > 0 and not np.isnan(a.flat[0])) or not np.all(np.isnan(a))


def materialize(v, m: int, dtype=np.float64) -> np.ndarray:
    """A column as a writable contiguous array of length m (a scalar is a value shared by every row)."""
    a = np.asarray(v, dtype=dtype)
    if a.shape == (m,) and a.flags.c_contiguous and a.flags.writeable:
        return a
    return np.array(np.broadcast_to(a, (m,)), dtype=dtype, order="C")  # a fresh, writable copy


@dataclass
class _Hardware:
    peak: object
    mfu: object
    gpus: object
    price: object  # USD per GPU-hour: the GPU-hour price, plus the energy of the hour where usd_per_kwh is given
    per_hour: object  # model FLOPs one GPU delivers in an hour (NaN without a GPU)
    kwh_per_hour: object  # facility energy of one GPU-hour (NaN without a board power)


def _hardware(inputs) -> _Hardware:
    peak, mfu = _col(inputs, "peak_tflops"), inputs.get("mfu", units.DEFAULT_MFU)
    price = _col(inputs, "usd_per_gpu_hour")
    kwh = NAN
    with np.errstate(over="ignore"):  # an overflow shows as inf in a converted budget or a column (``solve``)
        return _hardware_rates(inputs, peak, mfu, price, kwh)


def _hardware_rates(inputs, peak, mfu, price, kwh) -> _Hardware:
    """The per-GPU-hour rates: model FLOPs, facility energy (with a board power) and price (the GPU-hour's,
    plus its energy's where usd_per_kwh is given)."""
    if inputs.get("board_power_w") is not None:
        kwh = units.energy_kwh(1.0, inputs["board_power_w"], inputs.get("power_fraction", units.DEFAULT_POWER_FRACTION),
                               inputs.get("pue", units.DEFAULT_PUE))
        if inputs.get("usd_per_kwh") is not None:  # a GPU-hour's price plus its energy's, where either is given
            usd_kwh = inputs["usd_per_kwh"]
            with np.errstate(invalid="ignore"):
                price = np.where(np.isnan(price) & np.isnan(usd_kwh), np.nan,
                                 np.where(np.isnan(price), 0.0, price) + np.where(np.isnan(usd_kwh), 0.0, kwh * usd_kwh))
    return _Hardware(peak, mfu, _col(inputs, "gpus"), price, units.model_flops_per_gpu_hour(peak, mfu), kwh)


def budget_flops(inputs, given, m, hw: _Hardware):
    """Each row's budget in FLOPs (exactly one form is given per row; NaN for target-loss rows)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        forms = [(name, factor) for name, factor in (
            ("flops", None), ("pf_days", PF_DAY), ("gpu_hours", hw.per_hour), ("usd", hw.per_hour / hw.price),
            ("days", units.HOURS_PER_DAY * hw.gpus * hw.per_hour), ("kwh", hw.per_hour / hw.kwh_per_hour))
            if name in given]
        if len(forms) == 1 and not np.isnan(inputs[forms[0][0]]).any():  # one form for every row
            name, factor = forms[0]
            return inputs[name] if factor is None else inputs[name] * factor
        budget = np.full(m, NAN)
        for name, factor in forms:
            v = inputs[name]
            budget = np.where(~np.isnan(v), v if factor is None else v * factor, budget)
        return budget


def time_limit(inputs, given, budget, hw: _Hardware):
    """(flops, cap, time_capped): the budget capped at what the GPUs deliver in max_days."""
    if "max_days" not in given:
        return budget, np.inf, np.False_
    with np.errstate(invalid="ignore", over="ignore"):
        cap = units.flops_for_days(_col(inputs, "max_days"), hw.gpus, hw.peak, hw.mfu)
        time_capped = cap < budget
        return np.where(time_capped, cap, budget), cap, time_capped


@dataclass
class _Limits:
    cons: list  # the six limits as columns (NaN: none)
    mem_params: object
    memory_binds: object
    uniq: object
    unique_binds: object
    fams: np.ndarray
    P: np.ndarray
    law_idx: np.ndarray


def _unique_tokens_into_laws(fams, P, law_idx, uniq, m):
    """Give every row whose family models repeated data its own unique-token parameter: the law table grows
    by one entry per distinct (law, unique tokens). Returns (fams, P, law_idx, mask of those rows)."""
    li = np.broadcast_to(np.asarray(law_idx, dtype=np.int64).reshape(-1), (m,)) if np.size(law_idx) == 1 \
        else np.asarray(law_idx, dtype=np.int64)
    u = np.broadcast_to(np.asarray(uniq, dtype=np.float64), (m,))
    slot = np.array([-1 if (f := family_of_code(c)).unique_tokens_param is None
                     else f.param_names.index(f.unique_tokens_param) for c in fams], dtype=np.int64)
    repeats = (slot[li] >= 0) & ~np.isnan(u)
    if not repeats.any():
        return fams, P, law_idx, repeats
    keys, inverse = np.unique(np.stack([li[repeats].astype(np.float64), u[repeats]], axis=1), axis=0,
                              return_inverse=True)
    base = keys[:, 0].astype(np.int64)
    extra = P[base].copy()
    extra[np.arange(base.size), slot[base]] = keys[:, 1]
    new_idx = li.copy()
    new_idx[repeats] = P.shape[0] + inverse.reshape(-1)
    return (np.concatenate([fams, fams[base]]), np.ascontiguousarray(np.vstack([P, extra])), new_idx, repeats)


def hardware_limits(inputs, given, fams, P, law_idx, m, hw: _Hardware) -> _Limits:
    """GPU memory caps params (fully sharded training state, ``units.max_params_for_memory``); unique data caps
    tokens for single-epoch families and becomes the law's own parameter for families that model repeats."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        max_params, mem_params, memory_binds = _col(inputs, "max_params"), NAN, np.False_
        if "gpus" in given and "gpu_memory_gb" in given:
            mem_params = units.max_params_for_memory(hw.gpus, _col(inputs, "gpu_memory_gb"),
                                                     inputs.get("bytes_per_param", units.DEFAULT_BYTES_PER_PARAM))
            memory_binds = mem_params < np.where(np.isnan(max_params), np.inf, max_params)
            max_params = np.where(memory_binds, mem_params, max_params)
        uniq, max_tokens, unique_binds = _col(inputs, "unique_tokens"), _col(inputs, "max_tokens"), np.False_
        if "unique_tokens" in given:
            fams, P, law_idx, repeats_ok = _unique_tokens_into_laws(fams, P, law_idx, uniq, m)
            unique_binds = ~repeats_ok & (uniq < np.where(np.isnan(max_tokens), np.inf, max_tokens))
            max_tokens = np.where(unique_binds, uniq, max_tokens)
    cons = [_col(inputs, "min_params"), max_params, _col(inputs, "min_tokens"), max_tokens,
            _col(inputs, "min_tokens_per_param"), _col(inputs, "max_tokens_per_param")]
    return _Limits(cons, mem_params, memory_binds, uniq, unique_binds, fams, P,
                   np.ascontiguousarray(law_idx, dtype=np.int64).reshape(-1))


def bounds(cons, overfit, m, gap=NAN):
    """(raw, log) bounds arrays for the kernels: (1, 8) when every limit is shared, else (m, 8). Columns: the
    six limits, the overfitting limit (raw; log: ln K of its floor on D) and the convergence-gap limit (the
    gap itself in both; the kernel turns it into a bound with the row's law). Absent: 0 or +inf (raw)."""
    shared = all(np.ndim(c) == 0 for c in cons) and np.ndim(overfit) == 0 and np.ndim(gap) == 0
    raw_cols, log_cols = [], []
    for name, c in zip(CONSTRAINT_NAMES, cons, strict=True):
        col = np.atleast_1d(np.where(np.isnan(c), 0.0 if name.startswith("min") else np.inf, c))
        raw_cols.append(col)
        with np.errstate(divide="ignore"):  # a limit shared by every row costs one logarithm, not one per row
            log_cols.append(np.log(col))
    over = np.atleast_1d(np.asarray(overfit, dtype=np.float64))
    gap_col = np.atleast_1d(np.where(np.isnan(gap), np.inf, gap))
    raw_cols += [np.where(np.isnan(over), np.inf, over), gap_col]
    log_cols += [np.atleast_1d(overfit_log_k(over)), gap_col]
    rows = 1 if shared else m
    raw, lb = np.empty((rows, 8)), np.empty((rows, 8))
    rows_of_columns(tuple(np.ascontiguousarray(c, dtype=np.float64) for c in raw_cols), raw)
    rows_of_columns(tuple(np.ascontiguousarray(c, dtype=np.float64) for c in log_cols), lb)
    return raw, lb


def constraint_bounds(cons) -> tuple[np.ndarray, np.ndarray]:
    """(raw, log) bounds of one ``options.Constraints`` shared by every row."""
    cols = columns(cons)
    return bounds([cols.get(name, NAN) for name in CONSTRAINT_NAMES], cols.get("max_overfit", NAN), 1,
                  cols.get("max_convergence_gap", NAN))


def run_kernels(lim: _Limits, m, flops, target, is_target, dinf, raw, lb, solver, curve=None):
    """(n, d, loss, feasible, active) from the frontier kernel (budget rows) and the inverse kernel (targets).
    ``curve(flops) -> (n, d, loss)`` solves the budget rows instead where C is not 6 N D (a FLOPs model of
    ``shapes``; no limits apply, NaN marks an infeasible row)."""
    k = FLOPS_PER_PARAM_TOKEN
    fams, P, law_idx = lim.fams, lim.P, lim.law_idx
    n, d, loss = np.empty(m), np.empty(m), np.empty(m)
    feas, active = np.empty(m, dtype=np.bool_), np.empty(m, dtype=np.int8)
    any_target, all_target = bool(np.any(is_target)), bool(np.all(is_target))
    if curve is not None and any_target:
        raise ScalesweepError("a FLOPs model beyond 6N answers budgets, not target losses")
    if all_target:
        target_kernel(fams, P, law_idx, materialize(target, m), k, dinf, lb, raw, n, d, loss, feas, active)
    elif curve is not None:
        n, d, loss = curve(materialize(flops, m))
        feas = ~np.isnan(n)
        active.fill(NONE)
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
    return n, d, loss, feas, active


def _rule_violations(nn, dd, b) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """(ok, [violated mask per limit], outside the domain N >= 1, D >= 1) for allocations against the six
    limits (rows of ``b``)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        tpp = dd / nn
        broken = [nn < b[:, 0], nn > b[:, 1], dd < b[:, 2], dd > b[:, 3], tpp < b[:, 4], tpp > b[:, 5]]
    below_one = (nn < 1.0) | (dd < 1.0)
    ok = ~np.logical_or.reduce(broken) & ~below_one & np.isfinite(nn) & np.isfinite(dd)
    return ok, broken, below_one


def _rule_label(broken_row, below_one) -> str:
    """The reason of an infeasible rule row, named as a solved frontier's are (``_frontier_label``)."""
    parts = [name for name, br in zip(CONSTRAINT_NAMES, broken_row, strict=True) if br]
    return "+".join(parts + ([REASON_DOMAIN] if below_one else [])) or "undefined_loss"


def family_rows(lim: _Limits, m, flops, is_target, raw, n, d, loss, feas, active, reasons: dict, limited=False,
                gap=NAN):
    """Rows whose family's frontier is not a kernel solve, and rows whose family cannot answer at all.

    Allocation rules give N and D by formula (a rule cannot be steered: a row breaking a limit, or whose N or
    D is below one, is infeasible);
    loss-at-budget laws give the loss and no allocation, so a row of theirs with a limit on N or D
    (``limited``, per row or shared) is infeasible with reason ``no_allocation``; a law without a frontier, or a
    target-loss row of a family without a level-curve solver, and a row with a convergence-gap limit (``gap``,
    NaN: none) whose family has none, is infeasible with reason ``unsupported_family``.
    """
    fams, P = lim.fams, lim.P
    li_full = np.broadcast_to(lim.law_idx, (m,)) if lim.law_idx.size == 1 else lim.law_idx
    specs = [family_of_code(c) for c in fams]
    unsupported_law = np.array([s.frontier_error("", dict(zip(s.param_names, P[i], strict=False))) is not None
                                for i, s in enumerate(specs)])
    no_target = np.array([not s.target_loss for s in specs])
    for kind in ("rule", "budget_loss"):
        of_kind = np.array([s.frontier == kind for s in specs])
        if not of_kind.any():  # checked on the law table first: most sweeps have none
            continue
        rows = np.flatnonzero(of_kind[li_full] & ~np.broadcast_to(is_target, (m,)))
        if not rows.size:
            continue
        p = P[li_full[rows]]
        f_rows = materialize(flops, m)[rows]
        if kind == "rule":
            nn, dd = _allocate_mixed(specs, li_full[rows], p, f_rows)
            b = raw if raw.shape[0] == 1 else raw[rows]
            ok, broken, below_one = _rule_violations(nn, dd, np.broadcast_to(b, (rows.size, b.shape[1])))
            n[rows], d[rows] = np.where(ok, nn, np.nan), np.where(ok, dd, np.nan)
            loss[rows], feas[rows], active[rows] = np.nan, ok, NONE
            # Each infeasible row's broken limits (and N or D below one) as the bits of a small code: one label
            # per code that occurs, looked up per row (no sort of the rows).
            flags = [*broken, below_one]
            code = np.zeros(rows.size, dtype=np.int64)
            for bit, f in enumerate(flags):
                code |= f.astype(np.int64) << bit
            code = code[~ok]
            lut = np.empty(1 << len(flags), dtype=object)
            for c in np.flatnonzero(np.bincount(code, minlength=lut.size)):
                bits = [bool(c >> bit & 1) for bit in range(len(flags))]
                lut[c] = _rule_label(bits[:-1], bits[-1])
            reasons["rows"].append((rows[~ok], lut[code]))
        else:
            val = _budget_loss_mixed(specs, li_full[rows], p, f_rows)
            blocked = np.broadcast_to(limited, (m,))[rows]
            loss[rows] = np.where(blocked, np.nan, val)
            feas[rows] = ~np.isnan(val) & ~blocked
            n[rows], d[rows], active[rows] = np.nan, np.nan, NONE
            if blocked.any():
                reasons["rows"].append((rows[blocked], np.full(int(blocked.sum()), REASON_NO_ALLOCATION,
                                                               dtype=object)))
    # Each test runs over the rows only where some law of the table fails it (most sweeps: none).
    bad = np.False_
    if unsupported_law.any():
        bad = unsupported_law[li_full] & ~np.broadcast_to(is_target, (m,))
    if no_target.any() and np.any(is_target):
        bad = bad | (no_target[li_full] & is_target)
    no_gap = np.array([not s.convergence_limit and s.frontier != "budget_loss" for s in specs])
    if no_gap.any() and not np.all(np.isnan(gap)):  # budget-loss laws: no_allocation, above
        bad = bad | (no_gap[li_full] & ~np.isnan(np.broadcast_to(gap, (m,))))
    if np.any(bad):
        rows = np.flatnonzero(bad)
        n[rows], d[rows], loss[rows], feas[rows], active[rows] = np.nan, np.nan, np.nan, False, NONE
        reasons["rows"].append((rows, np.full(rows.size, REASON_UNSUPPORTED, dtype=object)))


def _allocate_mixed(specs, li, p, flops):
    nn, dd = np.empty(li.size), np.empty(li.size)
    for code in np.unique(li):
        sel = li == code
        nn[sel], dd[sel] = specs[code].allocate(p[sel], flops[sel])
    return nn, dd


def _budget_loss_mixed(specs, li, p, flops):
    out = np.empty(li.size)
    for code in np.unique(li):
        sel = li == code
        out[sel] = specs[code].budget_loss(p[sel], flops[sel])
    return out


def name_limits(active, lim: _Limits, m):
    """Name the hardware and data limits that supplied a binding bound."""
    if np.any(lim.memory_binds):
        active[(active == MAX_PARAMS) & np.broadcast_to(lim.memory_binds, (m,))] = MEMORY
    if np.any(lim.unique_binds):
        active[(active == MAX_TOKENS) & np.broadcast_to(lim.unique_binds, (m,))] = UNIQUE_TOKENS


def _limit_name(code, memory, unique):
    if code == MAX_PARAMS and memory:
        return "memory"
    if code == MAX_TOKENS and unique:
        return "unique_tokens"
    return ACTIVE_NAMES[code]


def _frontier_label(lo, hi, memory, unique) -> str:
    """The reason of an infeasible budget row from the codes of its interval's two ends."""
    if lo < 0:
        return "undefined_loss"
    # NONE is the physical domain N >= 1, D >= 1: the budget itself is too small for the limit
    parts = [_limit_name(c, memory, unique) for c in sorted({lo, hi}) if c != NONE]
    return "+".join(parts + ([REASON_DOMAIN] if NONE in (lo, hi) else []))


def _target_label(why, bnd_row, memory, unique) -> str:
    """The reason of an infeasible target row: below the irreducible loss, or the limits given (which
    conflict, or keep the loss above the target)."""
    if why == TARGET_IRREDUCIBLE:
        return "irreducible_loss"
    limits = [c + 1 for c in range(6) if (bnd_row[c] > 0 if c % 2 == 0 else bnd_row[c] < np.inf)]
    return "+".join(_limit_name(c, memory, unique) for c in limits) or "limits"


def _grouped(rows, keys, label_of):
    """(rows, labels of the distinct keys, index of each row's key): rows sharing a key share a label, so
    a million infeasible rows cost one label per distinct reason."""
    uniq, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    return rows, [label_of(int(rows[f]), k) for f, k in zip(first, uniq, strict=True)], inverse.reshape(-1)


_CODE_BITS = 5  # an active-constraint code + 1 (from -1: the interval is not empty) fits in 5 bits
assert len(ACTIVE_NAMES) < 1 << _CODE_BITS


def _frontier_groups(rows, lo, hi, memory, unique):
    """``_grouped`` for infeasible budget rows, keyed by (lower-end code, upper-end code, memory flag, data flag)
    packed into one small integer whose order is that of the tuples: the groups come from a count per key (no
    sort of the rows), in the order ``_grouped`` gives them."""
    key = ((lo + 1) << (_CODE_BITS + 2) | (hi + 1) << 2 | memory.astype(np.int64) << 1 | unique.astype(np.int64))
    present = np.flatnonzero(np.bincount(key))
    lut = np.empty(present[-1] + 1, dtype=np.int64)
    lut[present] = np.arange(present.size)
    labels = [_frontier_label(int(k >> (_CODE_BITS + 2)) - 1, int(k >> 2 & (1 << _CODE_BITS) - 1) - 1,
                              bool(k >> 1 & 1), bool(k & 1)) for k in present]
    return rows, labels, lut[key]


def infeasible_reasons(lim: _Limits, m, flops, target, is_target, raw, lb, feas, reasons: dict):
    """The reason of every infeasible row: the limits that conflict (joined by '+'; ``budget`` for the domain
    N >= 1, D >= 1), ``max_days``, ``irreducible_loss``, ``unsupported_family``, ``no_allocation`` or
    ``undefined_loss``. Returns (codes, names): codes index names, -1 for feasible rows."""
    codes = np.full(m, -1, dtype=np.int32)
    names: list[str] = []
    index: dict[str, int] = {}

    def assign(rows, labels, inverse):
        for label in labels:
            if label not in index:
                index[label] = len(names)
                names.append(label)
        codes[rows] = np.array([index[x] for x in labels], dtype=np.int32)[inverse]

    explained = np.zeros(m, dtype=bool)
    for rows, labels in reasons["rows"]:
        labels = np.asarray(labels, dtype=object)
        if rows.size:
            uniq, inverse = np.unique(labels, return_inverse=True)
            assign(rows, [str(x) for x in uniq], inverse.reshape(-1))
        explained[rows] = True
    todo = np.flatnonzero(~feas & ~explained)
    if not todo.size:
        return codes, names
    mem = np.broadcast_to(lim.memory_binds, (m,))
    uniq_b = np.broadcast_to(lim.unique_binds, (m,))
    tgt = np.broadcast_to(is_target, (m,))
    frontier_rows, target_rows = todo[~tgt[todo]], todo[tgt[todo]]
    if frontier_rows.size:
        lo, hi = np.empty(frontier_rows.size, np.int64), np.empty(frontier_rows.size, np.int64)
        interval_conflicts(lim.fams, lim.P, lim.law_idx, materialize(flops, m), FLOPS_PER_PARAM_TOKEN, lb,
                           frontier_rows, lo, hi)
        assign(*_frontier_groups(frontier_rows, lo, hi, mem[frontier_rows], uniq_b[frontier_rows]))
    if target_rows.size:
        why = np.empty(target_rows.size, np.int64)
        target_conflicts(lim.fams, lim.P, lim.law_idx, materialize(target, m), lb, target_rows, why)
        bnd = np.broadcast_to(raw, (m, raw.shape[1])) if raw.shape[0] == 1 else raw
        given = np.concatenate([bnd[target_rows, 0:6:2] > 0, bnd[target_rows, 1:6:2] < np.inf], axis=1)
        keys = np.concatenate([why[:, None], given, mem[target_rows, None], uniq_b[target_rows, None]],
                              axis=1).astype(np.int64)
        assign(*_grouped(target_rows, keys, lambda i, k: _target_label(k[0], bnd[i], k[-2], k[-1])))
    return codes, names


def derived_columns(inputs, given, m, hw: _Hardware, lim: _Limits, budget, flops, time_capped, n, d, loss, feas,
                    active, dinf, overfit):
    """The result columns: arrays of length m, or scalars where a value is shared by every row."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        hours = flops / hw.per_hour if "peak_tflops" in given else NAN
        if dinf.size == 1 and dinf[0] == 0.0:
            inf_flops = np.float64(0.0)  # no inference demand: skip two passes over every row
        else:
            inf_flops = INFERENCE_FLOPS_PER_PARAM_TOKEN * n * (dinf if dinf.size > 1 else dinf[0])
        return {
            "flops": flops,
            "params": n,
            "tokens": d,
            "loss": loss,
            "tokens_per_param": d / n,
            "feasible": feas,
            "active_constraint": active,
            "budget_flops": budget,
            "budget_limited_by": np.asarray(time_capped).astype(np.int8),
            "gpu_hours": hours,
            "wall_days": units.wall_days(hours, hw.gpus) if "gpus" in given else NAN,
            "usd": hours * hw.price if "usd_per_gpu_hour" in given or "usd_per_kwh" in given else NAN,
            "energy_kwh": hours * hw.kwh_per_hour if "board_power_w" in given else NAN,
            "co2_t": units.co2_tonnes(hours * hw.kwh_per_hour, _col(inputs, "grid_gco2_per_kwh"))
            if "board_power_w" in given and "grid_gco2_per_kwh" in given else NAN,
            "inference_flops": inf_flops,
            "lifetime_flops": flops + inf_flops,
            "epochs": d / lim.uniq if "unique_tokens" in given else NAN,
            "max_params_memory": lim.mem_params,
            "overfit_penalty": overfit_penalty(n, d) if overfit else NAN,
        }


def _budget_overflow(inputs, given, m, budget, is_target, overflow: str):
    """Rows whose budget, given in another unit, is beyond the float range in FLOPs (the inputs are finite:
    an infinite budget is an overflow of the conversion). With ``overflow="error"``, the first is refused."""
    over = np.isinf(budget) & ~is_target
    if not np.any(over) or overflow != "error":
        return over
    row = int(np.argmax(np.broadcast_to(over, (m,))))
    name, value = next((n, float(v)) for n in BUDGET_FIELDS[:-1] if n in given and n != "flops"
                       for v in (np.broadcast_to(inputs[n], (m,))[row],) if not np.isnan(v))
    raise ScalesweepError(f"a budget of {value:g} {name} is more than {FLOAT_MAX:.2g} FLOPs, the largest number "
                          "a float holds: give a smaller budget, or check the hardware figures it is converted with")


def _overflow_rows(out: dict, over, m: int, reasons: dict) -> None:
    """Make the rows whose budget (``over``: already NaN in flops and budget_flops) or real-unit column
    (``OVERFLOW_COLUMNS``) overflowed infeasible, their results null and the reason naming what overflowed."""
    hit = {REASON_BUDGET_OVERFLOW: np.broadcast_to(over, (m,))} if np.any(over) else {}
    seen = np.zeros(m, dtype=bool)
    if hit:
        seen |= hit[REASON_BUDGET_OVERFLOW]
    for name in OVERFLOW_COLUMNS:
        v = out[name]
        if np.ndim(v) == 0 and not np.isinf(v):
            continue
        bad = np.broadcast_to(np.isinf(v), (m,)) & ~seen  # a row is named by the first overflow met
        if bad.any():
            hit[f"{name}_overflow"] = bad
            seen |= bad
    if not hit:
        return
    for name, v in out.items():
        a = np.asarray(v)
        if name in ("flops", "budget_flops") or a.dtype.kind != "f":
            continue
        if a.ndim == 0:  # a value shared by every row stays shared unless it overflowed itself
            out[name] = NAN if np.isinf(a) else v
        else:
            out[name] = np.where(seen, np.nan, a)
    out["feasible"] = np.where(seen, False, out["feasible"])
    out["active_constraint"] = np.where(seen, np.int8(NONE), out["active_constraint"]).astype(np.int8)
    for reason, bad in hit.items():
        rows = np.flatnonzero(bad)
        reasons["rows"].append((rows, np.full(rows.size, reason, dtype=object)))


def solve(inputs: dict, m: int, fams: np.ndarray, P: np.ndarray, law_idx: np.ndarray, *, solver: int = SOLVER_AUTO,
          overfit: bool = True, overflow: str = "row", curve=None) -> dict:
    """Solve m rows; returns the result columns (``derived_columns``) plus ``infeasible_reason`` as
    (codes, names). Categorical columns are codes.

    Inputs are assumed valid (the option classes and the scenario loader check them first). Work that the
    inputs do not call for (no GPU, no time limit, ...) is skipped, so a plain frontier costs little more
    than its kernel. ``overfit=False`` skips the overfit_penalty column (a power per row). ``overflow``:
    "row" makes a row whose budget or real-unit column is beyond the float range infeasible (reason
    ``budget_overflow`` or ``<column>_overflow``), so one such row does not stop a sweep; "error" refuses a
    budget that overflows with a one-line error naming its value and unit. ``curve`` solves the budget rows on
    C = f(N) D (``run_kernels``); a finite budget it finds infeasible cannot buy one token at N = 1 (reason
    ``budget``).
    """
    given = {name for name, v in inputs.items() if v is not None and _any_given(v)}
    hw = _hardware(inputs)
    budget = budget_flops(inputs, given, m, hw)
    target = _col(inputs, "target_loss")
    is_target = ~np.isnan(target)
    any_target = bool(np.any(is_target))
    over = _budget_overflow(inputs, given, m, budget, is_target, overflow)
    if np.any(over):  # the kernels see no budget on those rows (NaN: infeasible), the reason is set below
        budget = np.where(over, np.nan, budget)
    flops, cap, time_capped = time_limit(inputs, given, budget, hw)
    lim = hardware_limits(inputs, given, fams, P, law_idx, m, hw)
    for name in FRONTIER_ONLY_LIMITS:
        if name in given and any_target:
            raise ScalesweepError(f"{name} is a frontier limit; target-loss rows do not support it yet")
    raw, lb = bounds(lim.cons, _col(inputs, "max_overfit"), m, _col(inputs, "max_convergence_gap"))
    dinf = np.ascontiguousarray(np.atleast_1d(np.asarray(inputs.get("inference_tokens", 0.0), dtype=np.float64)))
    n, d, loss, feas, active = run_kernels(lim, m, flops, target, is_target, dinf, raw, lb, solver, curve)
    reasons = {"rows": []}
    if curve is not None:
        rows = np.flatnonzero(~feas & np.isfinite(materialize(flops, m)))
        reasons["rows"].append((rows, np.full(rows.size, REASON_DOMAIN, dtype=object)))
    limited = np.False_  # per row where a limit is a column, shared where every limit given is a scalar
    for name in ALLOCATION_LIMITS:
        if name in given:
            limited = limited | ~np.isnan(inputs[name])
    family_rows(lim, m, flops, is_target, raw, n, d, loss, feas, active, reasons, limited,
                _col(inputs, "max_convergence_gap"))
    name_limits(active, lim, m)
    train = flops
    if any_target:  # the answer is the training compute; a time limit makes too-costly targets infeasible
        with np.errstate(invalid="ignore"):
            train = np.where(is_target, FLOPS_PER_PARAM_TOKEN * n * d, flops)
            over_time = is_target & (train > cap)
        if over_time.any():
            feas = feas & ~over_time
            active[over_time] = MAX_DAYS
            for a in (n, d, loss):
                a[over_time] = np.nan
            train = np.where(over_time, np.nan, train)
            rows = np.flatnonzero(over_time)
            reasons["rows"].append((rows, np.full(rows.size, "max_days", dtype=object)))
    out = derived_columns(inputs, given, m, hw, lim, budget, train, time_capped, n, d, loss, feas, active, dinf,
                          overfit)
    _overflow_rows(out, over, m, reasons)
    feas = out["feasible"]
    out["infeasible_reason"] = infeasible_reasons(lim, m, flops, target, is_target, raw, lb, feas, reasons)
    return out
