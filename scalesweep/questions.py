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

from . import engine
from .codes import SOLVER_NAMES
from .errors import ScalesweepError
from .laws import Law, law_arrays
from .options import BUDGET_UNITS, Constraints, Hardware, Workload, check_rules, cli_name, columns, flag, given
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


def _describe(cons: Constraints, hw: Hardware, wl: Workload) -> dict:
    return {"constraints": cons.as_dict(), "hardware": hw.describe(), "workload": given(wl)}


def frontier(laws: list[Law], budgets: np.ndarray, *, unit: str = "flops", solver: str = "auto",
             constraints: Constraints | None = None, hardware: Hardware | None = None,
             workload: Workload | None = None, overfit: bool = False, loss_law: Law | None = None) -> Result:
    """The compute-optimal allocation of each budget (in ``unit``) under each law; see ``api.frontier``."""
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
    if loss_law is not None:
        if not loss_law.spec.has_loss:
            raise ScalesweepError(f"--loss-law must be a loss law, not {loss_law.name} (family {loss_law.family})")
        if all(law.spec.has_loss for law in laws):
            raise ScalesweepError(f"--loss-law applies to allocation rules; {', '.join(law.name for law in laws)} "
                                  "has its own loss")
    m0 = budgets.size
    inputs = columns(hw, wl, cons)
    check_rules({**{k: True for obj in (hw, wl, cons) for k in given(obj)}, unit: True}, 1, lambda i: "frontier", cli_name)
    fams, P, law_idx, law_col = _rows(laws, m0)
    m = m0 * len(laws)
    inputs[unit] = budgets if len(laws) == 1 else np.tile(budgets, len(laws))
    opt = optional_columns(budget_converted=unit != "flops", max_days=hw.max_days is not None, gpu=hw.given,
                           gpus=hw.gpus is not None, price=hw.usd_per_gpu_hour is not None,
                           inference=wl.inference_tokens is not None, unique_tokens=wl.unique_tokens is not None,
                           overfit=overfit or cons.max_overfit is not None)
    res = engine.solve(inputs, m, fams, P, law_idx, solver=SOLVER_NAMES.index(solver),
                       overfit="overfit_penalty" in opt)
    spent = res["flops"]
    cols = {} if law_col is None else {"law": law_col}
    cols["flops"] = spent.copy() if np.shares_memory(spent, budgets) else spent  # never alias the caller's array
    cols.update({name: res[name] for name in RESULT_HEAD[1:]})
    cols.update({name: res[name] for name in opt})
    _family_columns(laws, cols, m0, loss_law)
    return Result(cols, m, list(laws), _describe(cons, hw, wl))


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
                hardware: Hardware | None = None, workload: Workload | None = None) -> Result:
    """The least compute reaching each target loss under each law; see ``api.target_loss``."""
    cons, hw, wl = _options(constraints, hardware, workload)
    for law in laws:
        if not law.spec.target_loss:
            raise ScalesweepError(f"target-loss does not support {law.name} (family {law.family}): the inverse solver "
                                  "has no level curve for it")
    if cons.max_overfit is not None:
        raise ScalesweepError("--max-overfit is a frontier limit; target-loss does not support it")
    m0 = targets.size
    inputs = columns(hw, wl, cons)
    check_rules({**{k: True for obj in (hw, wl, cons) for k in given(obj)}, "target_loss": True}, 1, lambda i: "target-loss", cli_name)
    fams, P, law_idx, law_col = _rows(laws, m0)
    m = m0 * len(laws)
    inputs["target_loss"] = targets if len(laws) == 1 else np.tile(targets, len(laws))
    res = engine.solve(inputs, m, fams, P, law_idx, overfit=False)
    opt = optional_columns(budget_converted=False, max_days=False, gpu=hw.given, gpus=hw.gpus is not None,
                           price=hw.usd_per_gpu_hour is not None, inference=wl.inference_tokens is not None,
                           unique_tokens=wl.unique_tokens is not None, overfit=False)
    cols = {} if law_col is None else {"law": law_col}
    cols["target_loss"] = np.array(inputs["target_loss"], copy=True)
    cols["flops"] = res["flops"]
    cols.update({name: res[name] for name in RESULT_HEAD[1:]})
    cols.update({name: res[name] for name in opt})
    return Result(cols, m, list(laws), _describe(cons, hw, wl))


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
