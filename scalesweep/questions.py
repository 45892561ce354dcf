"""Single questions asked of one or more laws: the compute-optimal frontier at given budgets, and the least
compute for given target losses. Each returns the result as columns (``tables`` turns them into an Arrow
table or a DataFrame): ``api`` returns DataFrames, the CLI writes Arrow, both from the same call.

Family capabilities are checked up front (a law of N alone has no frontier, a family without a level-curve
solver has no target-loss answer): such a question is refused with a message that says so, never answered
with a column of infeasible rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import engine, units
from .codes import SOLVER_NAMES
from .errors import ScalesweepError
from .laws import FAMILIES, Law, law_arrays
from .options import BUDGET_UNITS, Constraints, Hardware, Shape, Workload, check_rules, cli_name, columns, flag, given
from .shapes import SHAPE_COLUMNS
from .shapes import shape as shape_of
from .tables import RESULT_HEAD, frontier_metadata, optional_columns, to_arrow
from .validate import choice


@dataclass
class Result:
    """Columns in output order (see ``tables.to_arrow``), the row count, and what the metadata records."""

    columns: dict
    rows: int
    laws: list
    describe: dict

    def metadata(self, command: str, grid: dict, command_line: str | None, rows: int | None = None) -> dict:
        return frontier_metadata(self.laws, command=command, grid=grid, rows=self.rows if rows is None else rows,
                                 command_line=command_line, **self.describe)

    def table(self, metadata: dict | None = None):
        return to_arrow(self.columns, self.rows, metadata)

    def infeasible(self) -> dict:
        """Infeasible rows counted by reason."""
        codes, names = self.columns["infeasible_reason"]
        counts = np.bincount(codes[codes >= 0], minlength=len(names))
        return {names[i]: int(c) for i, c in sorted(enumerate(counts), key=lambda t: -t[1]) if c}


def _options(constraints, hardware, workload):
    return (constraints if constraints is not None else Constraints(),
            hardware if hardware is not None else Hardware(),
            workload if workload is not None else Workload())


def _rows(laws, m0):
    """(law table, per-row law index, law column) for ``m0`` values asked of every law, law-major."""
    fams, P = law_arrays(laws)
    if len(laws) == 1:
        return fams, P, np.zeros(1, dtype=np.int64), None
    idx = np.repeat(np.arange(len(laws), dtype=np.int64), m0)
    return fams, P, idx, (idx.astype(np.int32), [law.name for law in laws])


def _describe(cons: Constraints, hw: Hardware, wl: Workload, shape: Shape | None = None) -> dict:
    out = {"constraints": cons.as_dict(), "hardware": hw.describe(), "workload": given(wl)}
    if shape is not None and given(shape):
        out["model"] = given(shape)
    return out


FLOPS_MODEL_FAMILIES = tuple(f.name for f in FAMILIES.values() if f.flops_model)
CONVERGENCE_FAMILIES = tuple(f.name for f in FAMILIES.values() if f.convergence_limit)


def frontier_flops_model(law: Law, flops, model: str, spec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, D, loss) minimising the law's loss on C = flops_per_token(N) D (``shapes.flops_per_token``), with N
    >= 1 and D >= 1, by the compiled solver ``kernels.frontier.curve_frontier_kernel`` (safeguarded Newton in
    ln N_E^(1/3) with exact derivatives; the loss is unimodal along the curve for these families). Rows where
    even N = 1 cannot buy one token are NaN."""
    from .kernels.frontier import CURVE_STEP, curve_frontier_kernel, curve_table
    from .shapes import flops_coefficients, flops_per_token, to_non_embedding

    if law.family not in FLOPS_MODEL_FAMILIES:
        raise ScalesweepError(f"--flops-model {model} supports the {' and '.join(FLOPS_MODEL_FAMILIES)} families, "
                              f"not {law.name} (family {law.family})")
    c = np.ascontiguousarray(flops, dtype=np.float64).reshape(-1)
    curve = np.array(flops_coefficients(model, spec), dtype=np.float64)
    t_lo = float(np.log(np.cbrt(to_non_embedding(1.0, spec.embedding_rows, spec.aspect_ratio)))) if curve[0] else 0.0
    ln_f_lo = float(np.log(flops_per_token(1.0, model, spec)))
    fams, P = law_arrays([law])
    family, p = int(fams[0]), P[0]
    buys = c[(c >= np.exp(ln_f_lo)) & (c < np.inf)]  # the budgets that buy a token at N = 1
    span = np.log([buys.min(), buys.max()]) / CURVE_STEP if buys.size else None
    j0 = int(np.floor(span[0])) if span is not None else 0
    table = np.empty((2, int(np.floor(span[1])) - j0 + 2 if span is not None else 0))
    curve_table(family, p, j0, t_lo, ln_f_lo, curve, table[0], table[1])
    out = np.empty((3, c.size))
    curve_frontier_kernel(family, p, c, t_lo, ln_f_lo, curve, j0, table[0], table[1], out[0], out[1], out[2])
    return out[0], out[1], out[2]


def _flops_model_curve(laws, m0, shape: Shape, cons, hw, wl, overfit, solver: str):
    """The budget-row solver of ``engine.solve`` on C = flops_per_token(N) D for every law (law-major rows,
    ``frontier_flops_model``, which refuses a family it cannot solve); refuses the limits it does not apply."""
    limits = [flag(x) for x in given(cons)]
    limits += [flag(x) for x, on in (("unique_tokens", wl.unique_tokens is not None),
                                      ("inference_tokens", wl.inference_tokens is not None),
                                      ("gpus", hw.gpus is not None and hw.memory is not None),
                                      ("overfit_penalty", overfit)) if on]
    if limits:
        raise ScalesweepError(f"--flops-model {shape.flops_model} solves frontiers without limits: "
                              f"{', '.join(limits)} cannot apply to it")
    if solver != "auto":
        raise ScalesweepError(f"--flops-model {shape.flops_model} has a solver of its own: --solver {solver} "
                              "cannot apply to it")

    def solve(flops):
        out = [frontier_flops_model(law, flops[i * m0:(i + 1) * m0], shape.flops_model,
                                    shape.spec(law.params_convention)) for i, law in enumerate(laws)]
        return tuple(np.concatenate(parts) if len(parts) > 1 else parts[0] for parts in zip(*out))

    return solve


def _convergence_gap(laws, cols, m0) -> None:
    """L(N, D) / L(N, inf) - 1 per row: the loss over the converged loss of the row's model size (the law at
    unlimited data); NaN for a row without N or loss, and for a law without a loss of N and D."""
    m = m0 * len(laws)
    out = np.full(m, np.nan)
    params, loss = np.broadcast_to(cols["params"], (m,)), np.broadcast_to(cols["loss"], (m,))
    for i, law in enumerate(laws):
        if not law.spec.has_loss or law.spec.frontier == "budget_loss":
            continue
        sl = slice(i * m0, (i + 1) * m0)
        with np.errstate(invalid="ignore", divide="ignore"):
            n = np.array(params[sl], dtype=np.float64)
            out[sl] = loss[sl] / np.asarray(law.loss(n, np.full(n.size, np.inf)), dtype=np.float64) - 1.0
    cols["convergence_gap"] = out


def _shape_columns(laws, cols, m0, shape: Shape | None, asked: bool) -> None:
    """The shape of each row's model (``shapes.shape``), each law's params read in its own convention unless
    ``params_convention`` says otherwise."""
    shape = shape if shape is not None else Shape()
    if not (asked or shape.wanted):
        return
    m = m0 * len(laws)
    out = {name: np.full(m, np.nan) for name in SHAPE_COLUMNS}
    params = np.broadcast_to(cols["params"], (m,))
    for i, law in enumerate(laws):
        sl = slice(i * m0, (i + 1) * m0)
        sh = shape_of(params[sl], shape.spec(law.params_convention))
        for name in SHAPE_COLUMNS:
            out[name][sl] = sh[name]
    cols.update(out)


def frontier(laws: list[Law], budgets: np.ndarray, *, unit: str = "flops", solver: str = "auto",
             constraints: Constraints | None = None, hardware: Hardware | None = None,
             workload: Workload | None = None, overfit: bool = False, loss_law: Law | None = None,
             energy: bool = False, shape: Shape | None = None, shapes: bool = False,
             convergence_gap: bool = False) -> Result:
    """The compute-optimal allocation of each budget (in ``unit``) under each law; see ``api.frontier``.
    ``energy`` asks for the energy columns with the default power fraction and PUE (an energy option of
    ``hardware``, or a budget in kWh, asks for them too). ``shapes`` asks for the shape columns (n_layer,
    d_model, n_heads, non_embedding_params, embedding_params) by the rule of ``shape`` (a field given asks
    for them too). ``convergence_gap`` adds L(N, D) / L(N, inf) - 1: how far above the converged loss of its
    size the row stops (Kaplan et al. 2020 Eq. B.5: about alpha_N / alpha_S = 10% on Kaplan's frontier)."""
    cons, hw, wl = _options(constraints, hardware, workload)
    choice(unit, BUDGET_UNITS, "budget unit")
    choice(solver, SOLVER_NAMES, "solver")
    for law in laws:
        why = law.spec.frontier_error(law.name, law.params)
        if why is not None:
            raise ScalesweepError(why)
        if not law.spec.allocates:
            limits = [*given(cons), *(name for name, v in (("unique_tokens", wl.unique_tokens),
                                                          ("inference_tokens", wl.inference_tokens),
                                                          ("bytes_per_param", hw.bytes_per_param)) if v is not None)]
            if limits:
                raise ScalesweepError(f"{law.name} gives the loss at a budget, not an allocation of params and tokens: "
                                  f"{', '.join(flag(x) for x in limits)} cannot apply to it")
        if cons.max_convergence_gap is not None and not law.spec.convergence_limit:
            raise ScalesweepError(f"--max-convergence-gap needs a law whose loss of N and D has a converged limit "
                                  f"L(N, inf) the frontier can bound (families {', '.join(CONVERGENCE_FAMILIES)}), "
                                  f"not {law.name} (family {law.family})")
    if loss_law is not None:
        if not loss_law.spec.has_loss:
            raise ScalesweepError(f"--loss-law must be a loss law, not {loss_law.name} (family {loss_law.family})")
        if all(law.spec.has_loss for law in laws):
            raise ScalesweepError(f"--loss-law applies to allocation rules; {', '.join(law.name for law in laws)} "
                                  "has its own loss")
    m0 = budgets.size
    inputs = columns(hw, wl, cons)
    check_rules({**{k: True for obj in (hw, wl, cons) for k in given(obj)}, unit: True}, 1, lambda i: "frontier", cli_name)
    energy = _energy_inputs(inputs, hw, energy or unit == "kwh")
    fams, P, law_idx, law_col = _rows(laws, m0)
    m = m0 * len(laws)
    inputs[unit] = budgets if len(laws) == 1 else np.tile(budgets, len(laws))
    priced = hw.usd_per_gpu_hour is not None or hw.usd_per_kwh is not None
    opt = optional_columns(budget_converted=unit != "flops", max_days=hw.max_days is not None, gpu=hw.given,
                           gpus=hw.gpus is not None, price=priced,
                           inference=wl.inference_tokens is not None, unique_tokens=wl.unique_tokens is not None,
                           overfit=overfit or cons.max_overfit is not None, energy=energy,
                           co2=hw.grid_gco2_per_kwh is not None)
    curve = (_flops_model_curve(laws, m0, shape, cons, hw, wl, overfit, solver)
             if shape is not None and shape.flops_model not in (None, "6N") else None)
    res = engine.solve(inputs, m, fams, P, law_idx, solver=SOLVER_NAMES.index(solver),
                       overfit="overfit_penalty" in opt, curve=curve)
    spent = res["flops"]
    cols = {} if law_col is None else {"law": law_col}
    cols["flops"] = spent.copy() if np.shares_memory(spent, budgets) else spent  # never alias the caller's array
    cols.update({name: res[name] for name in RESULT_HEAD[1:]})
    cols.update({name: res[name] for name in opt})
    _family_columns(laws, cols, m0, loss_law)
    _shape_columns(laws, cols, m0, shape, shapes)
    if convergence_gap:
        _convergence_gap(laws, cols, m0)
    return Result(cols, m, list(laws), _describe(cons, hw, wl, shape))


def _energy_inputs(inputs, hw: Hardware, asked: bool) -> bool:
    """Whether the energy columns are wanted (asked for, or an energy option given); puts the board power and
    the energy defaults among the engine inputs when they are."""
    if not (asked or hw.energy):
        return False
    if not hw.given:
        raise ScalesweepError("the energy columns need a GPU (--gpu, or --peak-tflops with --board-power-w)")
    if hw.power is None:
        raise ScalesweepError(f"{hw.gpu or 'a custom GPU'} has no board power in the hardware catalogue: give "
                              "--board-power-w")
    inputs["board_power_w"] = hw.power
    inputs.setdefault("power_fraction", units.DEFAULT_POWER_FRACTION)
    inputs.setdefault("pue", units.DEFAULT_PUE)
    return True


def _family_columns(laws, cols, m0, loss_law):
    """Columns a law's family adds (kaplan_steps: batch and steps), and allocation-rule losses from a loss law."""
    m = m0 * len(laws)
    feasible = np.broadcast_to(cols["feasible"], (m,))
    extra = [name for law in laws for name in law.spec.extra_columns]
    for name in dict.fromkeys(extra):
        cols[name] = np.full(m, np.nan)
    for i, law in enumerate(laws):
        sl = slice(i * m0, (i + 1) * m0)
        if law.spec.extra is not None:
            for name, values in law.spec.extra(law.vector[None, :], cols["loss"][sl], cols["tokens"][sl]).items():
                cols[name][sl] = values
        if loss_law is not None and not law.spec.has_loss:
            cols["loss"][sl] = np.where(feasible[sl], loss_law.loss(cols["params"][sl], cols["tokens"][sl]), np.nan)


def target_loss(laws: list[Law], targets: np.ndarray, *, constraints: Constraints | None = None,
                hardware: Hardware | None = None, workload: Workload | None = None, energy: bool = False) -> Result:
    """The least compute reaching each target loss under each law; see ``api.target_loss``. ``energy`` as for
    :func:`frontier`."""
    cons, hw, wl = _options(constraints, hardware, workload)
    for law in laws:
        if not law.spec.target_loss:
            raise ScalesweepError(f"target-loss does not support {law.name} (family {law.family}): the inverse solver "
                                  "has no level curve for it")
    for name in engine.FRONTIER_ONLY_LIMITS:
        if getattr(cons, name) is not None:
            raise ScalesweepError(f"{flag(name)} is a frontier limit; target-loss does not support it")
    m0 = targets.size
    inputs = columns(hw, wl, cons)
    check_rules({**{k: True for obj in (hw, wl, cons) for k in given(obj)}, "target_loss": True}, 1, lambda i: "target-loss", cli_name)
    energy = _energy_inputs(inputs, hw, energy)
    fams, P, law_idx, law_col = _rows(laws, m0)
    m = m0 * len(laws)
    inputs["target_loss"] = targets if len(laws) == 1 else np.tile(targets, len(laws))
    res = engine.solve(inputs, m, fams, P, law_idx, overfit=False)
    opt = optional_columns(budget_converted=False, max_days=False, gpu=hw.given, gpus=hw.gpus is not None,
                           price=hw.usd_per_gpu_hour is not None or hw.usd_per_kwh is not None,
                           inference=wl.inference_tokens is not None, unique_tokens=wl.unique_tokens is not None,
                           overfit=False, energy=energy, co2=hw.grid_gco2_per_kwh is not None)
    cols = {} if law_col is None else {"law": law_col}
    cols["target_loss"] = np.array(inputs["target_loss"], copy=True)
    cols["flops"] = res["flops"]
    cols.update({name: res[name] for name in RESULT_HEAD[1:]})
    cols.update({name: res[name] for name in opt})
    return Result(cols, m, list(laws), _describe(cons, hw, wl))


def _sizes(values, what: str) -> np.ndarray:
    """Numbers or sizes (``7B``) as a 1-D array of finite positive floats."""
    from .validate import SIZE_HINT, parse_size, positive_array

    items = values.split(",") if isinstance(values, str) else np.atleast_1d(np.asarray(values, dtype=object)).tolist()
    out = []
    for v in items:
        try:
            out.append(parse_size(v.strip() if isinstance(v, str) else v))
        except (TypeError, ValueError):
            raise ScalesweepError(f"{what}: {v!r} is not a number or a size ({SIZE_HINT})") from None
    return positive_array(out, what)


def loss_at(params, tokens, laws=None):
    """The loss each law predicts for a model of ``params`` parameters trained on ``tokens`` tokens: a small
    DataFrame with one row per (law, point), law-major: law, params, tokens, loss, irreducible_loss (the loss
    as N and D grow without limit: E for the chinchilla and data-constrained families, 0 for Kaplan's power
    laws) and gap = loss - irreducible_loss (what more parameters and data could still win).

    ``params`` and ``tokens`` are numbers or sizes (``"7B"``, ``"2T"``), or equal-length lists of them;
    ``laws`` a law, a preset name, names joined by commas or a list (default: the default law). Each law reads
    N in its own convention (``scalesweep laws``: Kaplan's presets count non-embedding parameters). An
    allocation rule has no loss and is refused.
    """
    from .laws import as_laws
    from .tables import to_frame

    chosen = as_laws(laws)
    n, d = _sizes(params, "params"), _sizes(tokens, "tokens")
    if n.size != d.size:
        if n.size != 1 and d.size != 1:
            raise ScalesweepError(f"give as many params as tokens (or one of either), got {n.size} and {d.size}")
        n, d = (np.array(a) for a in np.broadcast_arrays(n, d))
    for law in chosen:
        if not law.spec.has_loss:
            raise ScalesweepError(f"{law.name} is an allocation rule (family {law.family}): it gives no loss")
    k = n.size
    loss = np.concatenate([np.atleast_1d(law.loss(n, d)) for law in chosen])
    floor = np.repeat([law.spec.irreducible_loss(law.params) for law in chosen], k)
    cols = {"law": (np.repeat(np.arange(len(chosen), dtype=np.int32), k), [law.name for law in chosen]),
            "params": np.tile(n, len(chosen)), "tokens": np.tile(d, len(chosen)), "loss": loss,
            "irreducible_loss": floor, "gap": loss - floor}
    return to_frame(cols, k * len(chosen))


CHUNK_ROWS = 1 << 18  # budgets solved and written at a time when streaming (~60 MB of columns)


def frontier_tables(laws: list[Law], budgets, *, grid: dict, command_line: str | None, chunk_rows: int = CHUNK_ROWS,
                    **kwargs):
    """The frontier of ``frontier(laws, budgets, **kwargs)`` as a stream of (Arrow table, infeasible counts),
    ``chunk_rows`` budgets at a time, law by law: the same rows, columns and metadata as one call, in bounded
    memory. ``budgets`` is an array or a ``grid.LogRange`` (generated chunk by chunk)."""
    total = budgets.size * len(laws)
    names = [law.name for law in laws]
    first = budgets.values(0, 1) if hasattr(budgets, "values") else budgets[:1]
    # The columns of one call over every law (a law's own extra columns, e.g. batch and steps, are NaN on the
    # other laws' rows): every chunk is written with these, in this order.
    columns = list(frontier(list(laws), np.asarray(first, dtype=np.float64), **kwargs).columns)
    for i, law in enumerate(laws):
        for start in range(0, budgets.size, chunk_rows):
            stop = min(budgets.size, start + chunk_rows)
            chunk = budgets.values(start, stop) if hasattr(budgets, "values") else budgets[start:stop]
            res = frontier([law], np.asarray(chunk, dtype=np.float64), **kwargs)
            if len(laws) > 1:
                own = {"law": (np.full(res.rows, i, dtype=np.int32), names), **res.columns}
                res.columns = {name: own[name] if name in own else np.full(res.rows, np.nan) for name in columns}
            res.laws = list(laws)
            yield res.table(res.metadata("frontier", grid, command_line, rows=total)), res.infeasible()


def frontier_job(law: Law, budgets, *, constraints: Constraints | None = None, solver: str = "auto",
                 partition_rows: int, grid: dict | None = None, command_line: str | None = None):
    """A partitioned frontier (one law, budgets in FLOPs, the frontier limits): parts of consecutive budgets.
    ``budgets`` is a ``grid.LogRange`` or an array; the spec holds a range as its description
    (``dataset.axis``)."""
    from .dataset import Job, axis, axis_size, plan

    flops = axis(budgets)
    n = axis_size(flops)
    constraints = constraints if constraints is not None else Constraints()
    spec = {"law": law.to_dict(), "flops": flops, "constraints": constraints.as_dict(), "solver": solver,
            "grid": grid if grid is not None else {"unit": "flops", "solver": solver}, "command_line": command_line}
    return Job("frontier", spec, plan(n, partition_rows), n, compute_frontier_part)


def compute_frontier_part(spec: dict, start: int, stop: int):
    """Budgets start..stop-1 of a frontier job, with the metadata a single-file run of the job writes."""
    from .dataset import axis_size, axis_values

    c = axis_values(spec["flops"], start, stop)
    res = frontier([Law.from_dict(spec["law"])], c, solver=spec["solver"], constraints=Constraints(**spec["constraints"]))
    meta = res.metadata("frontier", spec["grid"], spec["command_line"], rows=axis_size(spec["flops"]))
    return res.table(meta), {"rows": res.rows, "infeasible": res.infeasible()}
