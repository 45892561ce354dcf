"""The Python API: public functions that take laws, arrays and keyword options and return numpy arrays or
pandas DataFrames. The CLI calls the same layers (``questions``, ``surfaces``, ``engine``) and writes Arrow.

A DataFrame answer to a question (``frontier``, ``target_loss``, ``solve_scenarios``, and
``lookup.build_lookup``) carries in ``df.attrs["scalesweep"]`` the metadata a file of it carries: the law and
its citation, the limits, hardware, the version (``provenance`` reads it back from a DataFrame or a file).

pandas is imported inside the functions that return DataFrames: importing it costs ~0.3 s of a CLI start.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import numba
import numpy as np

from . import engine, questions, surfaces
from .codes import FLOPS_PER_PARAM_TOKEN, SOLVER_NAMES
from .errors import ScalesweepError, UnknownArgument
from .kernels.frontier import frontier_kernel, percentile_rows
from .kernels.loss import loss_array
from .laws import FAMILIES, PRESETS, Law, as_law, as_laws, get_law, law_arrays
from .options import Constraints, Hardware, Shape, Workload, from_values
from .tables import METADATA_KEY, read_metadata, to_frame
from .validate import BYTES_PER_ROW_HELD, check_size, choice, positive_array, suggest

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import ArrayLike, DTypeLike

LawLike = str | Law | None  # a preset name or alias, a Law, or None for the default law
LawsLike = str | Law | Sequence[str | Law] | None  # one law, several (a list, or names joined by commas)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def keywords_checked(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """``fn`` refusing a keyword it does not take with one line naming the closest one (``UnknownArgument``,
    a ``ScalesweepError`` and a ``TypeError``), e.g. ``max_param=`` for ``max_params=``."""
    names = [p.name for p in inspect.signature(fn).parameters.values()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    @functools.wraps(fn)
    def checked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        for k in kwargs:
            if k not in names:
                raise UnknownArgument(f"{fn.__name__}() has no argument {k!r}{suggest(k, names)} "
                                      f"(it takes: {', '.join(names)})")
        return fn(*args, **kwargs)

    return checked


def set_threads(n: int | None) -> int:
    """Use n numba threads (None: all). Results do not depend on it."""
    most: int = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # set when numba loads its config
    if n is None:
        n = most
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= most:
        raise ScalesweepError(f"--threads must be between 1 and {most}, got {n!r}")
    numba.set_num_threads(n)
    return n


# ---------------------------------------------------------------------------------------------- surface


def provenance(source: pd.DataFrame | str | os.PathLike[str] | Mapping[bytes, bytes]) -> dict[str, Any]:
    """The scalesweep metadata of a result: ``df.attrs["scalesweep"]`` of a DataFrame the API returned, the
    metadata of a Parquet file a command wrote, or the decoded metadata of an Arrow schema
    (``table.schema.metadata``)."""
    key = METADATA_KEY.decode()
    if isinstance(source, Mapping):
        if METADATA_KEY not in source:
            raise ScalesweepError("no scalesweep metadata (not written by scalesweep?)")
        return dict(json.loads(source[METADATA_KEY]))
    if isinstance(source, (str, os.PathLike)):
        return read_metadata(source)
    if key not in source.attrs:
        raise ScalesweepError(f'this DataFrame carries no scalesweep provenance (df.attrs["{key}"])')
    return dict(source.attrs[key])


@keywords_checked
def surface(law: LawLike, params: ArrayLike, tokens: ArrayLike, *, out: np.ndarray | None = None,
            dtype: DTypeLike = np.float64) -> np.ndarray:
    """Loss on the grid params x tokens: a 2-D array of shape (len(params), len(tokens)).

    ``out`` may be a preallocated C-contiguous float64/float32 array of that shape; it is filled in place
    and returned (no other allocation proportional to the grid is made).
    """
    law = as_law(law)
    surfaces.require_loss(law)
    n = positive_array(params, "params")
    d = positive_array(tokens, "tokens")
    if out is None:
        out = np.empty((n.size, d.size), dtype=dtype)
    elif out.shape != (n.size, d.size) or out.dtype not in (np.float64, np.float32) or not out.flags.c_contiguous:
        raise ScalesweepError(f"out must be a C-contiguous float64/float32 array of shape {(n.size, d.size)}")
    return surfaces.grid_loss(law, n, d, out)


@keywords_checked
def isoflop(law: LawLike, flops: ArrayLike, params: ArrayLike, *,
            k: float = FLOPS_PER_PARAM_TOKEN) -> pd.DataFrame:
    """IsoFLOP slices (Chinchilla Approach 2): for each budget, each model size, tokens = C/(k*N).

    Returns columns flops, params, tokens, loss; rows budget-major.
    """
    import pandas as pd

    law = as_law(law)
    surfaces.require_loss(law)
    c = positive_array(flops, "flops")
    n = positive_array(params, "params")
    cc = np.repeat(c, n.size)
    nn = np.tile(n, c.size)
    dd = cc / (k * nn)
    return pd.DataFrame({"flops": cc, "params": nn, "tokens": dd, "loss": loss_array(law.family_id, law.vector, nn, dd)})


@keywords_checked
def write_surface(path: str | os.PathLike[str], law: LawLike, params: ArrayLike, tokens: ArrayLike | None = None,
                  flops: ArrayLike | None = None, *, dtype: DTypeLike = np.float64, fmt: str | None = None,
                  chunk_points: int = surfaces.CHUNK_POINTS, grid: dict[str, Any] | None = None,
                  command_line: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Stream the loss surface to a file (columns params, tokens, flops, loss) in bounded memory.

    Give ``tokens`` for the params x tokens grid, or ``flops`` for IsoFLOP slices (tokens derived). The format
    follows the suffix (or ``fmt``); ``path="-"`` writes to stdout. Returns a summary (rows, seconds).
    ``progress(done_rows, total_rows)`` is called after each chunk.
    """
    return surfaces.write(path, as_law(law), params, tokens, flops, dtype=dtype, fmt=fmt, chunk_points=chunk_points,
                          grid=grid, command_line=command_line, progress=progress)


# --------------------------------------------------------------------------------------------- frontier


@keywords_checked
def frontier(law: LawsLike = None, flops: ArrayLike | None = None, *, unit: str = "flops", solver: str = "auto",
             min_params: float | None = None, max_params: float | None = None, min_tokens: float | None = None,
             max_tokens: float | None = None, min_tokens_per_param: float | None = None,
             max_tokens_per_param: float | None = None, max_overfit: float | None = None,
             max_convergence_gap: float | None = None, overfit: bool = False, gpu: str | None = None,
             peak_tflops: float | None = None, gpu_memory_gb: float | None = None,
             mfu: float | None = None, gpus: float | None = None, usd_per_gpu_hour: float | None = None,
             bytes_per_param: float | None = None, max_days: float | None = None, unique_tokens: float | None = None,
             inference_tokens: float | None = None, loss_law: LawLike = None, precision: str | None = None,
             hardware_file: str | os.PathLike[str] | None = None, board_power_w: float | None = None,
             power_fraction: float | None = None, pue: float | None = None, grid_gco2_per_kwh: float | None = None,
             usd_per_kwh: float | None = None, energy: bool = False, vocab: float | None = None,
             context: float | None = None, aspect_ratio: float | None = None, head_size: float | None = None,
             positions: str | None = None, params_convention: str | None = None, flops_model: str | None = None,
             shapes: bool = False, convergence_gap: bool = False) -> pd.DataFrame:
    """Compute-optimal allocation per budget under constraints (C = 6*N*D).

    ``law``: a Law, a preset name or alias, or several (a list, or names joined by commas): rows are then law-major
    with a ``law`` column first. ``flops`` are the budgets, in ``unit``: ``"flops"``, ``"pf_days"``,
    ``"gpu_hours"``, ``"usd"`` or ``"days"`` (GPU-hours and dollars need a GPU: ``gpu="H100-SXM"`` or
    ``peak_tflops``; dollars also ``usd_per_gpu_hour``; days also ``gpus``).

    Returns columns flops, params, tokens, loss, tokens_per_param, feasible, active_constraint,
    infeasible_reason, and the real-unit columns the inputs allow: gpu_hours (given a GPU; MFU default 0.4),
    wall_days (given gpus), usd (given usd_per_gpu_hour), budget_flops and budget_limited_by (given
    max_days: the budget is capped at what ``gpus`` deliver in that time), inference_flops and lifetime_flops
    (given inference_tokens), epochs (given unique_tokens, which also caps tokens), and max_params_memory
    (given gpus: ``gpus x memory / bytes_per_param`` caps params, active constraint ``memory``). Rows whose
    constraints cannot be met have ``feasible=False``, NaN results and the reason in ``infeasible_reason``.

    ``precision`` (``"bf16"``, the default, or ``"fp8"``) picks the preset's dense peak; ``hardware_file`` is a
    TOML catalogue adding or replacing presets (see ``scalesweep/hardware.toml``). Energy: ``energy=True``, or
    any of ``board_power_w``, ``power_fraction``, ``pue``, ``grid_gco2_per_kwh`` (adds ``co2_t``) and
    ``usd_per_kwh`` (``usd`` includes the energy), adds ``energy_kwh``; ``unit="kwh"`` states budgets in kWh.
    Shapes: ``shapes=True``, or any of ``vocab``, ``context``, ``aspect_ratio``, ``head_size``, ``positions``,
    ``params_convention``, adds n_layer, d_model, n_heads, non_embedding_params and embedding_params.
    ``flops_model``: ``"6N"`` (the default, C = 6ND), ``"kaplan"`` or ``"chinchilla"`` (FLOPs per token of the
    row's shape: the frontier solves C = flops_per_token(N) D; chinchilla and kaplan families, no limits).
    ``convergence_gap=True`` adds loss / L(N, inf) - 1 (Kaplan et al. 2020 Eq. B.5).

    ``solver``: ``"auto"`` (closed form where the family has an exact one, else Newton), ``"newton"`` (the
    general safeguarded Newton solver, from the family's initial guess) or ``"newton-midpoint"`` (Newton from
    the middle of the feasible interval: no prior knowledge of the optimum).

    ``max_overfit`` limits Kaplan's overfitting measure dL(N, D) (Eq. 4.3, Table 2 constants; 0.02 is Eq. 4.4's
    D >~ 5e3 N^0.74) and adds the ``overfit_penalty`` column, which ``overfit=True`` adds on its own.
    ``max_convergence_gap`` limits the law's own L(N, D) / L(N, inf) - 1 (the ``convergence_gap`` column;
    chinchilla, kaplan and kaplan_steps laws; active constraint ``max_convergence_gap``).

    An ``allocation_rule`` law (deepseek2024, llama3_2024, ...) gives params and tokens by its formula; its
    loss is NaN unless ``loss_law`` names a law to evaluate it with. A rule's row that breaks a limit is
    infeasible. A ``kaplan_steps`` law adds ``batch`` and ``steps`` columns.

    ``df.attrs["scalesweep"]`` holds the metadata ``scalesweep frontier`` writes into a file (laws with their
    citations, limits, hardware, workload).
    """
    if flops is None:
        raise ScalesweepError("frontier needs budgets: flops=[...]")
    laws = as_laws(law)
    c = positive_array(flops, "flops" if unit == "flops" else f"budgets ({unit})")
    res = questions.frontier(
        laws, c, unit=unit, solver=solver,
        constraints=Constraints(min_params=min_params, max_params=max_params, min_tokens=min_tokens,
                                max_tokens=max_tokens, min_tokens_per_param=min_tokens_per_param,
                                max_tokens_per_param=max_tokens_per_param, max_overfit=max_overfit,
                                max_convergence_gap=max_convergence_gap),
        hardware=Hardware(gpu=gpu, peak_tflops=peak_tflops, gpu_memory_gb=gpu_memory_gb, mfu=mfu, gpus=gpus,
                          usd_per_gpu_hour=usd_per_gpu_hour, bytes_per_param=bytes_per_param, max_days=max_days,
                          precision=precision, hardware_file=None if hardware_file is None else str(hardware_file),
                          board_power_w=board_power_w, power_fraction=power_fraction, pue=pue,
                          grid_gco2_per_kwh=grid_gco2_per_kwh, usd_per_kwh=usd_per_kwh),
        workload=Workload(unique_tokens=unique_tokens, inference_tokens=inference_tokens),
        overfit=overfit, loss_law=None if loss_law is None else as_law(loss_law), energy=energy,
        shape=Shape(vocab=vocab, context=context, aspect_ratio=aspect_ratio, head_size=head_size, positions=positions,
                    params_convention=params_convention, flops_model=flops_model), shapes=shapes,
        convergence_gap=convergence_gap)
    df = to_frame(res.columns, res.rows)
    df.attrs[METADATA_KEY.decode()] = provenance(res.metadata("frontier", {"unit": unit, "solver": solver}, None))
    return df


@keywords_checked
def target_loss(law: LawsLike = None, loss: ArrayLike | None = None, *, inference_tokens: float | None = None,
                min_params: float | None = None, max_params: float | None = None, min_tokens: float | None = None,
                max_tokens: float | None = None, min_tokens_per_param: float | None = None,
                max_tokens_per_param: float | None = None, gpu: str | None = None, peak_tflops: float | None = None,
                gpu_memory_gb: float | None = None, mfu: float | None = None, gpus: float | None = None,
                usd_per_gpu_hour: float | None = None, bytes_per_param: float | None = None,
                max_days: float | None = None, unique_tokens: float | None = None, precision: str | None = None,
                hardware_file: str | os.PathLike[str] | None = None, board_power_w: float | None = None,
                power_fraction: float | None = None, pue: float | None = None,
                grid_gco2_per_kwh: float | None = None, usd_per_kwh: float | None = None,
                energy: bool = False) -> pd.DataFrame:
    """The least compute that reaches each target loss (the inverse of the frontier).

    With ``inference_tokens`` (lifetime inference demand D_inf), minimises lifetime FLOPs
    6*N*D + 2*N*D_inf instead (Sardana et al. 2024): a smaller model trained on more tokens. ``law`` and
    the options are those of :func:`frontier`. Returns columns target_loss, flops (training), params,
    tokens, loss, tokens_per_param, feasible, active_constraint, infeasible_reason, and the real-unit
    columns the inputs allow. Targets at or below the law's irreducible loss, or out of reach under the
    constraints, come back with ``feasible=False``, NaN results and a reason; if the constraints alone force
    a model better than the target (e.g. a large ``min_params`` and ``min_tokens``), the row reports that
    cheapest allowed point and its lower loss. Families without a level-curve solver are refused.
    ``df.attrs["scalesweep"]`` holds the metadata ``scalesweep target-loss`` writes into a file.
    """
    if loss is None:
        raise ScalesweepError("target_loss needs targets: loss=[...]")
    laws = as_laws(law)
    t = positive_array(loss, "target loss")
    res = questions.target_loss(
        laws, t,
        constraints=Constraints(min_params=min_params, max_params=max_params, min_tokens=min_tokens,
                                max_tokens=max_tokens, min_tokens_per_param=min_tokens_per_param,
                                max_tokens_per_param=max_tokens_per_param),
        hardware=Hardware(gpu=gpu, peak_tflops=peak_tflops, gpu_memory_gb=gpu_memory_gb, mfu=mfu, gpus=gpus,
                          usd_per_gpu_hour=usd_per_gpu_hour, bytes_per_param=bytes_per_param, max_days=max_days,
                          precision=precision, hardware_file=None if hardware_file is None else str(hardware_file),
                          board_power_w=board_power_w, power_fraction=power_fraction, pue=pue,
                          grid_gco2_per_kwh=grid_gco2_per_kwh, usd_per_kwh=usd_per_kwh),
        workload=Workload(unique_tokens=unique_tokens, inference_tokens=inference_tokens), energy=energy)
    df = to_frame(res.columns, res.rows)
    df.attrs[METADATA_KEY.decode()] = provenance(res.metadata("target-loss", {}, None))
    return df


BANDS_CHUNK_ROWS = 1 << 22  # (sample, budget) pairs solved per pass: bounds the memory of a band sweep


def frontier_bands(samples: ArrayLike, family: str, flops: ArrayLike, percentiles: Sequence[float], *,
                   solver: str = "auto", chunk_rows: int = BANDS_CHUNK_ROWS,
                   progress: Callable[[int, int], None] | None = None, **constraints: float | None) -> pd.DataFrame:
    """Percentile bands of the frontier over parameter samples (e.g. a fit's bootstrap; for an allocation rule,
    the bootstrap of ``fit-isoflop`` or ``fit-envelope``: its params and tokens, no loss, and no limits).

    ``samples`` is (B, K) in the family's parameter order. Every sample's frontier is solved at every budget
    (one compiled pass per chunk of budgets, B x chunk rows), then each budget's params, tokens and loss are
    summarised by the percentiles: columns ``params_p5``, ``tokens_p50``, ... Rows where some samples cannot
    meet the constraints use the feasible ones; ``feasible_fraction`` says how many. ``progress(done, total)``
    is told the budgets done after each chunk.
    """
    import pandas as pd

    c = positive_array(flops, "flops")
    qs = [float(q) for q in percentiles]
    if not qs or any(not (0.0 <= q <= 100.0) for q in qs):
        raise ScalesweepError(f"--bands: percentiles must lie in [0, 100], got {percentiles!r}")
    code = SOLVER_NAMES.index(choice(solver, SOLVER_NAMES, "solver"))
    fam = FAMILIES[choice(family, list(FAMILIES), "family")]
    if fam.frontier == "budget_loss":
        raise ScalesweepError(f"--bands needs a family that allocates params and tokens, not {family}")
    limits = [k for k, v in constraints.items() if v is not None]
    if fam.frontier == "rule" and limits:
        raise ScalesweepError(f"--bands over samples of an allocation rule takes no limits (--"
                              f"{limits[0].replace('_', '-')} given): a rule's allocation does not move to meet them")
    samples = np.ascontiguousarray(samples, dtype=np.float64)
    b = samples.shape[0]
    fams = np.full(b, fam.id, dtype=np.int64)
    raw, lb = engine.constraint_bounds(from_values(Constraints, constraints, what="constraint"))
    per = max(1, chunk_rows // b)
    cols = {f"{what}_p{q:g}": np.empty(c.size) for what in ("params", "tokens", "loss") for q in qs}
    frac = np.empty(c.size)
    for start in range(0, c.size, per):
        sl = slice(start, min(c.size, start + per))
        nb = sl.stop - sl.start
        law_idx = np.tile(np.arange(b, dtype=np.int64), nb)  # budget-major: each budget's samples contiguous
        fl = np.repeat(c[sl], b)
        m = fl.size
        n, d, loss = np.empty(m), np.empty(m), np.empty(m)
        feas, active = np.empty(m, dtype=np.bool_), np.empty(m, dtype=np.int8)
        if fam.allocate is not None:  # an allocation rule (fit-isoflop, fit-envelope): its formula, no loss
            n[:], d[:] = fam.allocate(samples[law_idx], fl)
            loss[:] = np.nan
            feas[:] = np.isfinite(n) & np.isfinite(d)
        else:
            frontier_kernel(fams, samples, law_idx, fl, FLOPS_PER_PARAM_TOKEN, lb, raw, code, n, d, loss, feas,
                            active)
        frac[sl] = feas.reshape(nb, b).mean(axis=1)
        vals = np.empty((nb, len(qs)))
        for what, arr in (("params", n), ("tokens", d), ("loss", loss)):
            percentile_rows(arr.reshape(nb, b), np.array(sorted(qs)), vals)  # infeasible (NaN) samples left out
            for k, q in enumerate(sorted(qs)):
                cols[f"{what}_p{q:g}"][sl] = vals[:, k]
        if progress is not None:
            progress(sl.stop, c.size)
    return pd.DataFrame({"flops": c.copy(), **cols, "feasible_fraction": frac}, copy=False)


@keywords_checked
def compare(flops: ArrayLike, laws: Sequence[str | Law] | None = None) -> pd.DataFrame:
    """What each law recommends at each budget, side by side: one row per (law, budget), law-major, with
    family, flops, params, tokens, tokens_per_param, loss, feasible and infeasible_reason.

    ``laws``: preset names, aliases or Laws (default: every preset). Every law asked for has its rows, and a row the
    law cannot answer is flagged rather than dropped: ``feasible`` False, params, tokens and loss NaN, and the
    engine's reason (``unsupported_family`` for a law of N or D alone, which has no answer at a budget;
    ``budget`` where an allocation rule gives fewer than one parameter or token). Loss is NaN for allocation
    rules (they have none), params and tokens for laws that give only the loss at a budget. Conventions differ
    between presets (Kaplan counts non-embedding parameters, and its kaplan2020-steps / kaplan2020-table6
    budgets are C_min): see ``scalesweep laws``.
    """
    import pandas as pd

    c = positive_array(flops, "flops")
    chosen = [get_law(x) for x in PRESETS] if laws is None else as_laws(list(laws))
    fams, P = law_arrays(chosen)
    m = c.size * len(chosen)
    law_idx = np.repeat(np.arange(len(chosen), dtype=np.int64), c.size)
    res = engine.solve({"flops": np.tile(c, len(chosen))}, m, fams, P, law_idx, overfit=False)
    codes, names = res["infeasible_reason"]
    return pd.DataFrame({
        "law": pd.Categorical.from_codes(law_idx, [law.name for law in chosen]),
        "family": pd.Categorical([chosen[i].family for i in law_idx]),
        "flops": np.tile(c, len(chosen)),
        "params": res["params"], "tokens": res["tokens"], "tokens_per_param": res["tokens_per_param"],
        "loss": res["loss"], "feasible": res["feasible"],
        "infeasible_reason": pd.Categorical.from_codes(codes, names),
    })


@keywords_checked
def loss_at(params: ArrayLike | str, tokens: ArrayLike | str, laws: LawsLike = None) -> pd.DataFrame:
    """The loss each law predicts at (params, tokens), its irreducible loss and the gap: see
    :func:`scalesweep.questions.loss_at`."""
    return questions.loss_at(params, tokens, laws)


def solve_scenarios(spec: pd.DataFrame | Mapping[str, Any] | str | os.PathLike[str]) -> pd.DataFrame:
    """Solve scenarios and return them as a DataFrame: the rows, columns and metadata (``df.attrs["scalesweep"]``)
    that ``scalesweep scenarios SPEC -o out.parquet`` writes, read back.

    ``spec`` is a DataFrame (a scenario table: one scenario per row, columns named like the scenario fields,
    an empty cell taking the field's default), a dict (a sweep spec: field -> value or list of values, lists
    expanding as a cartesian product, a numeric field also as a ``"LO:HI:COUNT"`` range) or the path of a spec
    file. The metadata names the spec's source as ``DataFrame`` or ``dict``.
    """
    import tempfile

    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from . import scenarios

    with tempfile.TemporaryDirectory(prefix="scalesweep-") as tmp:
        loaded: scenarios.SweepSpec | scenarios.TableSpec
        if isinstance(spec, pd.DataFrame):
            table_path = Path(tmp, "scenarios.parquet")
            try:
                pq.write_table(pa.Table.from_pandas(spec, preserve_index=False), table_path)
            except (pa.ArrowException, ValueError, TypeError) as exc:
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ScalesweepError(f"scenario table DataFrame: a column is not a table column ({msg})") from None
            try:
                loaded = scenarios.TableSpec(table_path, "parquet")
            except ScalesweepError as exc:  # name the DataFrame, not the temporary file it was written to
                raise ScalesweepError(str(exc).replace(repr(str(table_path)), "DataFrame")) from None
            loaded.source = "DataFrame"
        elif isinstance(spec, Mapping):
            loaded = scenarios.SweepSpec(dict(spec), source="dict")
        else:
            loaded = scenarios.load_spec(spec)
        rows = loaded.count_rows()
        check_size("scenarios", rows, bytes_held=BYTES_PER_ROW_HELD * rows)
        out = Path(tmp, "result.parquet")
        scenarios.run(loaded, out)
        table = pq.read_table(out)
    import pandas as pd
    import pyarrow as pa

    # whole-number columns as nullable Int64, as ``frontier`` returns them: a null gpus stays <NA>, not NaN
    df = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    df.attrs[METADATA_KEY.decode()] = provenance(table.schema.metadata)
    return df
