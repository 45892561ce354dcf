"""The ``scalesweep`` command line: thin click commands over the library.

Conventions, the same in every command:

* stdout is data, stderr is talk: tables (and law files with ``-o -``) go to stdout or a file; status lines
  (``wrote ...``), warnings and progress go to stderr.
* ``-o PATH`` writes a file whose format follows the suffix (or ``--format``); ``-o -`` or no ``-o`` prints:
  a fixed-width table on a terminal, CSV when piped. Writing goes through ``output`` (atomic, one writer).
* The options of limits, hardware and workload are generated from ``options``: one definition of each.
* User mistakes print one line, ``Error: ...``, on stderr and exit non-zero (2 for usage errors, 1 for
  everything else); no tracebacks. An option that would have no effect is an error, never ignored.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
import time
from dataclasses import fields

import click

from . import options as opts
from ._version import __version__
from .errors import Interrupted, ScalesweepError
from .output import FORMATS
from .validate import BYTES_PER_ROW_HELD, MAX_ROWS_ENV, check_size, set_max_rows



class _Group(click.Group):
    """Turn every user-facing error into a single ``Error:`` line."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.NoArgsIsHelpError as exc:  # a bare group: its help, not an error line
            click.echo(exc.ctx.get_help(), err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:  # usage errors (exit 2) included
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt) as exc:  # Ctrl-C, SIGTERM, SIGHUP: files already cleaned up
            cause = exc if isinstance(exc, Interrupted) else exc.__cause__ or exc.__context__
            signum = cause.signum if isinstance(cause, Interrupted) else signal.SIGINT
            click.echo("Aborted." if signum == signal.SIGINT else f"Terminated ({signal.Signals(signum).name}).",
                       err=True)
            sys.exit(128 + signum)
        except ScalesweepError as exc:
            click.echo("Error: " + " ".join(str(exc).split()), err=True)  # user data may hold newlines
            sys.exit(1)
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # the reader of stdout went away (``| head``): stop quietly
                sys.exit(141)
            where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
            click.echo(f"Error: I/O failure{where}: {exc.strerror or exc}", err=True)
            sys.exit(1)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


def _set_max_rows(ctx, param, value):
    if value is not None:
        set_max_rows(value)
        ctx.call_on_close(lambda: set_max_rows(None))
    return value


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="scalesweep")
@click.option("--max-rows", type=click.IntRange(1), default=None, expose_value=False, callback=_set_max_rows,
              is_eager=True, metavar="N", help=f"Refuse requests of more rows than this (default 1e10; also "
              f"{MAX_ROWS_ENV}). Requests held in memory are also checked against the memory available.")
def cli():
    """Compute-optimal sweeps over neural scaling laws (Kaplan 2020, Chinchilla 2022, ...).

    Ranges are written LO:HI:COUNT (log-spaced, inclusive). Losses are in nats/token; compute is
    C = 6*N*D FLOPs. Tables print to stdout (or -o FILE: parquet, csv, jsonl, json, arrow by suffix);
    messages go to stderr.
    """


def command_line() -> str:
    return " ".join(["scalesweep", *sys.argv[1:]])


def talk(message: str) -> None:
    """A status line or warning: stderr, always."""
    click.echo(message, err=True)


# ------------------------------------------------------------------------------------------- options


_CLICK_TYPES = {"pos": float, "int": int, "fraction": float, "nonneg": float, "name": str}


def _options_from(cls):
    """Click options for every field of an option class, from the fields' own descriptions."""

    def decorate(f):
        for fld in reversed(fields(cls)):
            md = fld.metadata
            help_ = md["help"]
            if md.get("unit"):
                help_ += f"  [{md['unit']}]"
            if md.get("default") is not None:
                help_ += f"  [default: {md['default']:g}]"
            f = click.option(opts.flag(fld.name), fld.name, type=_CLICK_TYPES[md["rule"]], default=None,
                             help=help_)(f)
        return f

    return decorate


def _take(cls, kwargs: dict):
    """Build an option object from the command's keyword arguments, removing its fields from them."""
    return cls(**{fld.name: kwargs.pop(fld.name) for fld in fields(cls)})


def _law_options(many: bool = False):
    def decorate(f):
        f = click.option("--threads", type=int, default=None, help="Numba threads (default: all cores). "
                         "Results are identical for any count.")(f)
        f = click.option("--set", "overrides", multiple=True, metavar="NAME=VALUE",
                         help="Override a law parameter, e.g. --set alpha=0.35 (repeatable).")(f)
        f = click.option("--law-file", type=click.Path(dir_okay=False), default=None,
                         help="Law from a JSON or TOML file (family + parameters, or preset + overrides).")(f)
        law_help = "Preset name (default: hoffmann2022); see `scalesweep laws`."
        if many:
            law_help = "Preset name, or several joined by commas (rows per law, with a law column); default " \
                       "hoffmann2022; see `scalesweep laws`."
        return click.option("--law", default=None, metavar="NAME[,NAME...]" if many else "NAME", help=law_help)(f)

    return decorate


def _output_option(required: bool = False, help_: str | None = None):
    def decorate(f):
        f = click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
                         help="Output format (default: from the -o suffix; on stdout a table on a terminal, CSV "
                              "when piped).")(f)
        return click.option("-o", "--output", required=required, type=click.Path(), default=None,
                            help=help_ or "File to write (.parquet, .csv, .jsonl, .json, .arrow); - or none: stdout.")(f)

    return decorate


def _engine_options(f):
    """Scale-out options shared by surface, frontier, scenarios and lookup build."""
    f = click.option("--partition-rows", type=click.IntRange(1), default=None,
                     help="Write a partitioned dataset (a directory of Parquet parts) of about this many rows per "
                          "part; resumable.")(f)
    f = click.option("--workers", type=click.IntRange(1), default=None,
                     help="--engine dask: start a LocalCluster with this many worker processes.")(f)
    f = click.option("--scheduler", default=None, metavar="ADDRESS",
                     help="--engine dask: join the cluster at this scheduler address.")(f)
    f = click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
                     help="dask: split the work over a Dask cluster; output is a partitioned dataset.")(f)
    return f


def _partitioned(engine, scheduler, workers, partition_rows, output) -> bool:
    if engine == "local" and (scheduler is not None or workers is not None):
        raise click.UsageError("--scheduler and --workers need --engine dask")
    if engine == "dask" or partition_rows is not None:
        if output is None or output == "-":
            raise click.UsageError("--engine dask and --partition-rows write a dataset: give -o DIRECTORY")
        from .output import SUFFIXES

        suffix = os.path.splitext(output.rstrip("/"))[1].lower()
        if SUFFIXES.get(suffix, "parquet") != "parquet":
            raise click.UsageError(f"--engine dask and --partition-rows write a directory of Parquet parts, not "
                                   f"{SUFFIXES[suffix]}: give -o DIRECTORY (without the {suffix} suffix)")
        return True
    return False


def _run_dataset(job, output, engine, scheduler, workers):
    """Write a job as a partitioned dataset, locally or on Dask, and report it."""
    from . import dataset

    progress = _progress("parts")
    if engine == "dask":
        with dataset.dask_client(scheduler, workers) as client:
            summary = dataset.run(job, output, engine="dask", client=client, progress=progress)
    else:
        summary = dataset.run(job, output, engine="local", progress=progress)
    _warn_recomputed(summary.get("recomputed", []), output)
    reused = f", {summary['reused']} already there" if summary["reused"] else ""
    talk(f"wrote {summary['rows']:,} rows as {summary['parts']} parts in {output}/ "
         f"({summary['computed']} computed{reused}, {engine}) in {summary['seconds']:.2f} s")
    return summary


def _warn_recomputed(names, output) -> None:
    """Name the parts of a resumed dataset that failed verification and were computed again."""
    if names:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        were = "were" if len(names) != 1 else "was"
        talk(f"warning: {len(names)} part{'s' if len(names) != 1 else ''} in {output}/ failed verification and "
             f"{were} recomputed: {shown}")


def _numbers(text: str, option: str) -> list[float]:
    """A comma-separated list of numbers, e.g. ``--flops 1e23,3e23``; one line naming the bad entry."""
    out = []
    for part in str(text).split(","):
        try:
            out.append(float(part))
        except ValueError:
            raise ScalesweepError(f"{option}: {part.strip()!r} is not a number") from None
    return out


def _parse_lo_hi(text: str, option: str, why_no_count: str) -> tuple[float, float]:
    """``LO:HI`` (a span; a count is refused, with ``why_no_count``)."""
    from .grid import parse_range

    parts = str(text).split(":")
    if len(parts) == 3:
        raise ScalesweepError(f"{option} takes LO:HI here, not a count ({why_no_count}); got {text!r}")
    if len(parts) != 2:
        raise ScalesweepError(f"{option}: expected LO:HI, got {text!r}")
    r = parse_range(f"{parts[0]}:{parts[1]}:2", option)
    if not r.lo < r.hi:
        raise ScalesweepError(f"{option}: LO ({r.lo:g}) must be less than HI ({r.hi:g})")
    return r.lo, r.hi


def _threads(threads):
    if threads is not None:
        from .api import set_threads

        set_threads(threads)


def _resolve(law, law_file, overrides, threads, *, many: bool = False):
    """The law (or laws, with ``many``) that ``--law``, ``--law-file`` and ``--set`` name."""
    from .laws import as_laws, parse_assignments, resolve_law

    _threads(threads)
    if many and law is not None and "," in law:
        if law_file is not None or overrides:
            raise ScalesweepError("several laws in --law take neither --law-file nor --set")
        return as_laws(law)
    found = resolve_law(law, law_file, parse_assignments(overrides))
    return [found] if many else found


def _progress(unit="rows"):
    """A progress callback that draws on stderr when it is a terminal (silent otherwise)."""
    if not sys.stderr.isatty():
        return None
    t0 = time.perf_counter()

    def report(done, total):
        end = "\n" if done >= total else "\r"
        talk_ = f"  {done:,}/{total:,} {unit} ({100 * done / max(total, 1):.0f}%, {time.perf_counter() - t0:.1f} s)"
        click.echo(talk_, err=True, nl=False)
        click.echo(end, err=True, nl=False)

    return report


def _check_target(output, fmt, *inputs):
    """Before computing: the format is known and the file can be written (stdout always can), and it is none
    of the command's ``inputs``."""
    from .output import STDOUT, check_target, resolve_format

    if output is not None and output != STDOUT:
        check_target(output, inputs)
    return resolve_format(output, fmt)


def _emit(table, output, fmt, noun: str) -> None:
    """Write a result table to ``output`` (or stdout) and say so on stderr when it went to a file."""
    from .output import STDOUT, write_table

    write_table(output, table, fmt)
    if output is not None and output != STDOUT:
        talk(f"wrote {table.num_rows:,} {noun} to {output}")


def _emit_stream(tables, output, fmt, noun: str, total: int) -> dict:
    """Write a stream of (table, infeasible counts) as one output (the first table's schema and metadata);
    returns the infeasible counts summed. Progress on stderr for a file on a terminal."""
    from .output import STDOUT, table_writer

    import itertools

    counts: dict = {}
    rows = 0
    progress = _progress(noun) if output not in (None, STDOUT) else None
    first = next(tables)
    with table_writer(output, first[0].schema, fmt) as w:
        for table, infeasible in itertools.chain([first], tables):
            w.write(table)
            rows += table.num_rows
            for reason, c in infeasible.items():
                counts[reason] = counts.get(reason, 0) + c
            if progress is not None:
                progress(rows, total)
    if output not in (None, STDOUT):
        talk(f"wrote {rows:,} {noun} to {output}")
    return dict(sorted(counts.items(), key=lambda t: -t[1]))


def _warn_infeasible(counts: dict, total: int, noun: str) -> None:
    if counts:
        n = sum(counts.values())
        why = ", ".join(f"{c:,} {reason}" for reason, c in counts.items())
        talk(f"warning: {n:,} of {total:,} {noun} are infeasible (feasible=false): {why}")


# ------------------------------------------------------------------------------------------- commands


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (strict JSON; infinity as \"inf\").")
def laws(as_json):
    """List law families, presets, parameters and sources."""
    from .laws import describe
    from .output import jsonable

    info = describe()
    if as_json:
        click.echo(json.dumps(jsonable(info), indent=2, allow_nan=False))
        return
    w = max(map(len, info["families"]))
    click.echo("Families:")
    for name, f in info["families"].items():
        click.echo(f"  {name:<{w}} {f['formula']}")
        click.echo(f"  {'':<{w}} parameters: {', '.join(f['parameters'])}; answers: {', '.join(f['answers'])}")
        click.echo(f"  {'':<{w}} {f['source']}")
    click.echo(f"\nPresets (default: {info['default']}):")
    for name, p in info["presets"].items():
        params = ", ".join(f"{k}={v:g}" for k, v in p["parameters"].items())
        click.echo(f"  {name:<21} {p['family']:<{w}} {params}")
        click.echo(f"  {'':<21} {p['citation']}")
        click.echo(f"  {'':<21} {p['conventions']}")


@cli.command()
@_law_options()
@click.option("--params-range", required=True, metavar="LO:HI:COUNT", help="Model sizes N (parameters).")
@click.option("--tokens-range", default=None, metavar="LO:HI:COUNT", help="Training tokens D (grid form).")
@click.option("--flops-range", default=None, metavar="LO:HI:COUNT",
              help="Budgets C (IsoFLOP form: tokens = C/(6N)). Give this or --tokens-range.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True,
              help="Type of the loss column.")
@_output_option(help_="File to write (a directory with --engine dask or --partition-rows); - or none: stdout.")
@_engine_options
def surface(law, law_file, overrides, threads, params_range, tokens_range, flops_range, dtype, output, fmt, engine,
            scheduler, workers, partition_rows):
    """Loss over a params x tokens grid (or IsoFLOP slices), streamed in bounded memory.

    Columns: params, tokens, flops (= 6*params*tokens), loss.
    """
    from .grid import parse_range

    the_law = _resolve(law, law_file, overrides, threads)
    if (tokens_range is None) == (flops_range is None):
        raise click.UsageError("give --tokens-range (grid) or --flops-range (IsoFLOP slices), exactly one")
    pr = parse_range(params_range, "--params-range")
    tr = parse_range(tokens_range, "--tokens-range") if tokens_range is not None else None
    fr = parse_range(flops_range, "--flops-range") if flops_range is not None else None
    grid = {"params_range": str(pr)}
    grid.update({"tokens_range": str(tr)} if tr else {"flops_range": str(fr)})
    check_size("surface", pr.size * (tr or fr).size)
    n, d, c = pr.values(), tr.values() if tr else None, fr.values() if fr else None
    if _partitioned(engine, scheduler, workers, partition_rows, output):
        from . import surfaces

        if fmt not in (None, "parquet"):
            raise click.UsageError("a partitioned dataset is written as Parquet parts")
        job = surfaces.job(the_law, n, d, c, dtype=dtype, partition_rows=partition_rows or surfaces.CHUNK_POINTS,
                           grid=grid, command_line=command_line())
        _run_dataset(job, output, engine, scheduler, workers)
        return
    from .api import write_surface

    fmt = _check_target(output, fmt, law_file)
    summary = write_surface(output, the_law, n, tokens=d, flops=c, dtype=dtype, fmt=fmt, grid=grid,
                            command_line=command_line(), progress=_progress() if output not in (None, "-") else None)
    if output not in (None, "-"):
        talk(f"wrote {summary['rows']:,} rows to {output} in {summary['seconds']:.2f} s")


@cli.command()
@_law_options(many=True)
@click.option("--flops-range", default=None, metavar="LO:HI:COUNT", help="Budgets (in --unit, default FLOPs).")
@click.option("--flops-file", type=click.Path(dir_okay=False), default=None,
              help="Budgets from a CSV or Parquet file (column 'flops', or the only column).")
@click.option("--flops-column", default=None, help="Column of --flops-file to read.")
@click.option("--unit", type=click.Choice(list(opts.BUDGET_UNITS)), default="flops", show_default=True,
              help="Unit of the budgets (gpu_hours and usd need a GPU; days needs a GPU and --gpus).")
@_options_from(opts.Constraints)
@_options_from(opts.Hardware)
@_options_from(opts.Workload)
@click.option("--solver", type=click.Choice(["auto", "newton", "newton-midpoint"]), default="auto",
              show_default=True, help="auto: exact closed form where the family has one, else Newton.")
@click.option("--overfit-penalty", "overfit", is_flag=True,
              help="Add Kaplan's overfitting measure dL(N, D) (Eq. 4.3) as a column.")
@click.option("--loss-law", default=None, metavar="NAME",
              help="Evaluate the loss of an allocation-rule law (deepseek2024, ...) with this loss law.")
@click.option("--bands", default=None, metavar="Q[,Q...]",
              help="Percentile bands over the bootstrap samples of a --law-file written by `fit --bootstrap`.")
@_output_option(help_="File to write (a directory with --engine dask or --partition-rows); - or none: stdout.")
@_engine_options
def frontier(law, law_file, overrides, threads, flops_range, flops_file, flops_column, unit, solver, overfit, loss_law,
             bands, output, fmt, engine, scheduler, workers, partition_rows, **kwargs):
    """Compute-optimal params and tokens per budget, under constraints.

    Fixed-size questions are the same solve with equal bounds: --min-params 7e9 --max-params 7e9 gives the
    tokens (and loss) a 7B model gets from each budget. With a GPU (--gpu, --mfu) every row also reports
    gpu_hours; with --gpus wall_days, with --usd-per-gpu-hour usd. Infeasible rows say why in
    infeasible_reason.
    """
    from . import questions
    from .grid import parse_range
    from .laws import as_law
    from .readers import read_flops_file

    laws_ = _resolve(law, law_file, overrides, threads, many=True)
    cons, hw, wl = _take(opts.Constraints, kwargs), _take(opts.Hardware, kwargs), _take(opts.Workload, kwargs)
    if (flops_range is None) == (flops_file is None):
        raise click.UsageError("give --flops-range or --flops-file (one of them)")
    if flops_column is not None and flops_file is None:
        raise click.UsageError("--flops-column needs --flops-file")
    if flops_range is not None:
        budgets = parse_range(flops_range, "--flops-range")  # generated chunk by chunk
        grid = {"flops_range": str(budgets)}
    else:
        budgets, grid = read_flops_file(flops_file, flops_column), {"flops_file": str(flops_file)}
    grid.update(unit=unit, solver=solver)
    if _partitioned(engine, scheduler, workers, partition_rows, output):
        if opts.given(hw) or opts.given(wl) or unit != "flops" or bands or loss_law or overfit or len(laws_) > 1:
            raise click.UsageError("a partitioned frontier takes one law, budgets in FLOPs and the frontier limits "
                                   "only")
        if fmt not in (None, "parquet"):
            raise click.UsageError("a partitioned dataset is written as Parquet parts")
        job = questions.frontier_job(laws_[0], budgets, constraints=cons, solver=solver,
                                     partition_rows=partition_rows or (1 << 20), grid=grid,
                                     command_line=command_line())
        summary = _run_dataset(job, output, engine, scheduler, workers)
        _warn_infeasible(summary["infeasible"], summary["rows"], "budgets")
        return
    fmt = _check_target(output, fmt, law_file, flops_file)
    rows = budgets.size * len(laws_)
    ask = dict(unit=unit, solver=solver, constraints=cons, hardware=hw, workload=wl, overfit=overfit,
               loss_law=None if loss_law is None else as_law(loss_law))
    if bands is None:  # streamed: memory bounded by the chunk
        check_size("frontier", rows)
        tables = questions.frontier_tables(laws_, budgets, grid=grid, command_line=command_line(), **ask)
        _warn_infeasible(_emit_stream(tables, output, fmt, "budgets", rows), rows, "budgets")
        return
    check_size("frontier with --bands", rows, bytes_held=BYTES_PER_ROW_HELD * rows)
    budgets = budgets if flops_file else budgets.values()
    res = questions.frontier(laws_, budgets, **ask)
    table = _with_bands(res.table(res.metadata("frontier", grid, command_line())), bands, law_file, overrides, solver,
                        cons, hw, wl)
    _emit(table, output, fmt, "budgets")
    _warn_infeasible(res.infeasible(), res.rows, "budgets")


def _with_bands(table, bands, law_file, overrides, solver, cons, hw, wl):
    """Percentile bands over a law file's bootstrap samples, as extra columns of a frontier table (the
    frontier limits apply to every sample; limits from hardware or data would not, so they are refused)."""
    import pyarrow as pa

    from .api import frontier_bands
    from .fit import read_bootstrap

    if law_file is None:
        raise click.UsageError("--bands needs --law-file with bootstrap samples (scalesweep fit --bootstrap N)")
    if overrides:
        raise click.UsageError("--bands uses the law file's samples as they are; drop --set")
    beyond = [name for name, on in (("--gpus (a memory limit)", hw.gpus is not None and hw.memory is not None),
                                    ("--unique-tokens", wl.unique_tokens is not None)) if on]
    if beyond:
        raise click.UsageError(f"--bands applies the frontier limits (--min-params ... --max-overfit) to the "
                               f"samples, not {' or '.join(beyond)}")
    qs = _numbers(bands, "--bands")
    family, samples = read_bootstrap(law_file)
    b = frontier_bands(samples, family, table.column("flops").to_numpy(), qs, solver=solver, **cons.as_dict())
    for name in b.columns[1:]:
        table = table.append_column(name, pa.array(b[name].to_numpy()))
    return table


@cli.command("target-loss")
@_law_options(many=True)
@click.option("--loss", "losses", required=True, metavar="L[,L...]",
              help="Target loss(es), nats/token, comma-separated.")
@_options_from(opts.Constraints)
@_options_from(opts.Hardware)
@_options_from(opts.Workload)
@_output_option()
def target_loss_cmd(law, law_file, overrides, threads, losses, output, fmt, **kwargs):
    """The least compute that reaches a target loss: params, tokens and FLOPs.

    With --inference-tokens it minimises lifetime compute 6ND + 2N*D_inf (Sardana et al. 2024). Targets at
    or below the law's irreducible loss, or out of reach under the constraints, are flagged
    feasible=false with the reason (and a warning), not errors.
    """
    from . import questions
    from .validate import positive_array

    laws_ = _resolve(law, law_file, overrides, threads, many=True)
    cons, hw, wl = _take(opts.Constraints, kwargs), _take(opts.Hardware, kwargs), _take(opts.Workload, kwargs)
    targets = positive_array(_numbers(losses, "--loss"), "--loss")
    fmt = _check_target(output, fmt, law_file)
    res = questions.target_loss(laws_, targets, constraints=cons, hardware=hw, workload=wl)
    _emit(res.table(res.metadata("target-loss", {"loss": losses}, command_line())), output, fmt, "targets")
    _warn_infeasible(res.infeasible(), res.rows, "targets")


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@_output_option(help_="File to write (a directory with --engine dask or --partition-rows); - or none: stdout.")
@click.option("--threads", type=int, default=None, help="Numba threads (default: all cores).")
@_engine_options
def scenarios(spec, output, fmt, threads, engine, scheduler, workers, partition_rows):
    """Solve many scenarios at once: SPEC is a table (.csv/.parquet, one scenario per row) or a sweep
    spec (.yaml/.toml) whose lists expand as a cartesian product.

    Fields: law (law.NAME overrides a parameter), one budget (flops, pf_days, gpu_hours, usd, days with
    gpus, or target_loss), gpu, peak_tflops, gpu_memory_gb, mfu, gpus, usd_per_gpu_hour, bytes_per_param,
    max_days, unique_tokens, inference_tokens and the frontier limits. See the README for defaults.
    """
    from . import scenarios as sc

    _threads(threads)
    if _partitioned(engine, scheduler, workers, partition_rows, output):
        if fmt not in (None, "parquet"):
            raise click.UsageError("a partitioned dataset is written as Parquet parts")
        job = sc.job(spec, partition_rows=partition_rows or sc.CHUNK_ROWS, command_line=command_line())
        summary = _run_dataset(job, output, engine, scheduler, workers)
        _warn_infeasible(summary["infeasible"], summary["rows"], "scenarios")
        return
    fmt = _check_target(output, fmt, spec)
    loaded = sc.load_spec(spec)
    to_file = output not in (None, "-")
    summary = sc.run(loaded, output, fmt=fmt, command_line=command_line(), progress=_progress() if to_file else None)
    if to_file:
        talk(f"wrote {summary['rows']:,} scenarios to {output} in {summary['seconds']:.2f} s "
             f"({summary['feasible']:,} feasible)")
    _warn_infeasible(summary["infeasible"], summary["rows"], "scenarios")


@cli.command("fit")
@click.argument("runs", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Law file (JSON) to write; - prints it.")
@click.option("--family", default="chinchilla", show_default=True,
              help="Family to fit (those whose answers include fit in `scalesweep laws`).")
@click.option("--method", type=click.Choice(["lbfgs", "vp"]), default="lbfgs", show_default=True,
              help="lbfgs: Huber multi-start (Hoffmann/Besiroglu); vp: variable projection (chinchilla).")
@click.option("--objective", type=click.Choice(["huber", "lad"]), default="huber", show_default=True,
              help="Loss on log residuals (lbfgs): Huber, or least absolute deviation.")
@click.option("--delta", type=float, default=None, help="Huber delta (lbfgs with huber) [default: 1e-3].")
@click.option("--exclude-highest", type=int, default=0, show_default=True, help="Leave out the k highest-loss runs.")
@click.option("--grid", "grid_items", multiple=True, metavar="NAME=V1,V2,...",
              help="Replace one axis of the start grid (chinchilla: a, b, e, alpha, beta; kaplan: ln_N_c, ln_D_c, "
                   "alpha_N, alpha_D). Repeatable.")
@click.option("--bootstrap", type=int, default=0, show_default=True, help="Resamples for uncertainty (0: none).")
@click.option("--seed", type=int, default=None, help="Seed of the bootstrap; needs --bootstrap [default: 0].")
@click.option("--params-column", default="params", show_default=True)
@click.option("--tokens-column", default=None, help="Tokens column [default: tokens].")
@click.option("--flops-column", default=None, help="Use flops instead of tokens (tokens = flops / (6 params)).")
@click.option("--loss-column", default="loss", show_default=True)
@click.option("--threads", type=int, default=None, help="Numba threads (results do not depend on it).")
def fit_cmd(runs, output, family, method, objective, delta, exclude_highest, grid_items, bootstrap, seed,
            params_column, tokens_column, flops_column, loss_column, threads):
    """Fit a law to your own training runs (CSV or Parquet: params, tokens or flops, loss).

    Writes a law file every other command reads with --law-file.
    """
    from . import fit as F
    from .output import STDOUT, check_target

    _threads(threads)
    F.check_law_path(output)
    if output != STDOUT:
        check_target(output, (runs,))
    grid = F.parse_grid(family, grid_items)
    n, d, y = F.read_runs(runs, params_column=params_column, tokens_column=tokens_column, flops_column=flops_column,
                          loss_column=loss_column)
    res = F.fit(n, d, y, family=family, method=method, delta=delta, objective=objective,
                exclude_highest=exclude_highest, grid=grid, bootstrap=bootstrap, seed=seed)
    res.info["runs_file"] = str(runs)
    F.write_law_file(output, res)
    p = ", ".join(f"{k}={v:.6g}" for k, v in res.law.params.items())
    used = res.info["n_points"] - res.info["excluded_highest_loss"]
    excluded = f" ({res.info['excluded_highest_loss']} excluded)" if res.info["excluded_highest_loss"] else ""
    talk(f"fitted {family} to {used} runs{excluded} ({method}): {p}")
    extra = f"; {res.info['starts_within_1e-6']} of {res.info['starts']} starts within 1e-6 of the best" \
        if method == "lbfgs" else ""
    talk(f"objective {res.info['objective_value']:.6g} in {res.info['seconds']:.2f} s{extra}")
    if res.samples is not None:
        se = res.to_dict()["bootstrap"]["standard_errors"]
        talk(f"bootstrap ({bootstrap} resamples, seed {res.extra['seed']}) standard errors: "
             + ", ".join(f"{k} {v:.3g}" for k, v in se.items()))
    if output != STDOUT:
        talk(f"wrote {output}")


@cli.command()
@click.option("--flops", "flops_values", required=True, metavar="C[,C...]", help="Budget(s), FLOPs.")
@click.option("--laws", "law_names", default=None, metavar="A,B,...", help="Presets to compare (default: all).")
@_output_option()
def compare(flops_values, law_names, output, fmt):
    """What every preset recommends at a budget, side by side (params, tokens, tokens/param, loss)."""
    from .api import compare as compare_laws
    from .tables import frame_to_arrow, metadata
    from .validate import positive_array

    budgets = positive_array(_numbers(flops_values, "--flops"), "--flops")
    names = None if law_names is None else [x.strip() for x in law_names.split(",") if x.strip()]
    fmt = _check_target(output, fmt)
    df = compare_laws(budgets, names)
    meta = metadata("compare", flops=budgets, laws=[str(x) for x in df["law"].cat.categories], rows=len(df),
                    command_line=command_line())
    _emit(frame_to_arrow(df, meta), output, fmt, "rows")


@cli.group()
def plot():
    """Plots (PNG or SVG, by the output's suffix) from the Parquet files the other commands write.

    Needs matplotlib: pip install 'scalesweep[plot]'.
    """


@plot.command("frontier")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Image to write (.png/.svg).")
@click.option("--title", default=None)
def plot_frontier_cmd(files, output, title):
    """Params and tokens vs flops (log-log) for one or more frontier files; bootstrap bands shaded."""
    from .plot import plot_frontier

    plot_frontier(list(files), output, title=title)
    talk(f"wrote {output}")


@plot.command("surface")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--frontier", "frontier_file", default=None, type=click.Path(dir_okay=False),
              help="A frontier file to draw on top.")
@click.option("--levels", type=click.IntRange(2, 200), default=20, show_default=True, help="Contour levels.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Image to write (.png/.svg).")
@click.option("--title", default=None)
def plot_surface_cmd(file, frontier_file, levels, output, title):
    """Loss contours over a params x tokens surface file, with a frontier overlaid."""
    from .plot import plot_surface

    plot_surface(file, output, frontier=frontier_file, levels=levels, title=title)
    talk(f"wrote {output}")


@cli.group()
def lookup():
    """Dense frontier lookup tables (build once, interpolate log-log)."""


@lookup.command("build")
@_law_options()
@click.option("--flops-range", required=True, metavar="LO:HI",
              help="Budgets the table covers, FLOPs (the rows follow --points-per-decade).")
@click.option("--points-per-decade", type=int, default=16, show_default=True, help="Rows per decade of budget.")
@_options_from(opts.Constraints)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Parquet file to write.")
@_engine_options
def lookup_build(law, law_file, overrides, threads, flops_range, points_per_decade, output, engine, scheduler, workers,
                 partition_rows, **kwargs):
    """Build a frontier table; its metadata records the largest interpolation error, measured by solving
    exactly at every midpoint between rows. With --engine dask or --partition-rows the rows are solved as
    resumable parts (in OUTPUT.parts/) and then joined into the one table file."""
    from .lookup import write_lookup, write_lookup_parts

    the_law = _resolve(law, law_file, overrides, threads)
    cons = _take(opts.Constraints, kwargs)
    lo, hi = _parse_lo_hi(flops_range, "--flops-range", "the rows follow --points-per-decade")
    if engine == "local" and (scheduler is not None or workers is not None):
        raise click.UsageError("--scheduler and --workers need --engine dask")
    _check_target(output, None, law_file)
    if engine == "dask" or partition_rows is not None:
        from . import dataset

        kw = dict(partition_rows=partition_rows, progress=_progress("parts"), command_line=command_line(),
                  **cons.as_dict())
        if engine == "dask":
            with dataset.dask_client(scheduler, workers) as client:
                info = write_lookup_parts(output, the_law, lo, hi, points_per_decade, engine="dask", client=client, **kw)
        else:
            info = write_lookup_parts(output, the_law, lo, hi, points_per_decade, **kw)
    else:
        info = write_lookup(output, the_law, lo, hi, points_per_decade, command_line=command_line(), **cons.as_dict())
    _warn_recomputed(info.get("recomputed", []), f"{output}.parts")
    err = info["max_interpolation_error"]
    talk(f"wrote {info['rows']:,} rows to {output} (law {the_law.name}); max interpolation error at "
         f"midpoints: params {err['params']:.2e}, tokens {err['tokens']:.2e}, loss {err['loss']:.2e}")


@lookup.command("query")
@click.argument("table", type=click.Path(dir_okay=False))
@click.option("--flops", "flops_values", default=None, metavar="C[,C...]", help="Budget(s), FLOPs, comma-separated.")
@click.option("--flops-file", type=click.Path(dir_okay=False), default=None,
              help="Budgets from a CSV or Parquet file (column 'flops', or the only column).")
@click.option("--flops-column", default=None, help="Column of --flops-file to read.")
@_output_option()
def lookup_query(table, flops_values, flops_file, flops_column, output, fmt):
    """Interpolate a table at budgets inside its range (outside is an error, not an extrapolation)."""
    from .lookup import Lookup
    from .readers import read_flops_file

    if (flops_values is None) == (flops_file is None):
        raise click.UsageError("give --flops or --flops-file (one of them)")
    if flops_column is not None and flops_file is None:
        raise click.UsageError("--flops-column needs --flops-file")
    budgets = _numbers(flops_values, "--flops") if flops_values is not None else read_flops_file(flops_file, flops_column)
    fmt = _check_target(output, fmt, table, flops_file)
    _emit(Lookup(table).query_table(budgets, command_line()), output, fmt, "rows")


@cli.command()
@_law_options()
@click.option("--flops-range", required=True, metavar="LO:HI:COUNT", help="Budgets to test at, FLOPs.")
@click.option("--points-per-decade", "ppd", default="2,4,8,16,32,64", show_default=True, metavar="K[,K...]",
              help="Resolutions to compare.")
@click.option("--params-range", default=None, metavar="LO:HI",
              help="Params grid span (default: a decade beyond the optima at either end).")
@_output_option()
def resolution(law, law_file, overrides, threads, flops_range, ppd, params_range, output, fmt):
    """How fine a grid do I need? Grid search and lookup tables at each resolution against the exact solver."""
    from . import studies
    from .grid import parse_range
    from .tables import frame_to_arrow, metadata

    the_law = _resolve(law, law_file, overrides, threads)
    fr = parse_range(flops_range, "--flops-range")
    ks = studies.parse_int_list(ppd, "--points-per-decade")
    pr = _parse_lo_hi(params_range, "--params-range", "the grid follows --points-per-decade") if params_range is not None else None
    fmt = _check_target(output, fmt, law_file)
    df = studies.resolution(the_law, fr.values(), ks, params_range=pr)
    meta = metadata("resolution", law=the_law.to_dict(), grid={"flops_range": str(fr)}, points_per_decade=ks,
                    rows=len(df), command_line=command_line())
    _emit(frame_to_arrow(df, meta), output, fmt, "rows")


@cli.command("isoflop-sim")
@_law_options()
@click.option("--budgets", required=True, metavar="LO:HI:K", help="IsoFLOP budgets (Chinchilla: 6e18:3e21:9).")
@click.option("--points-per-curve", type=int, default=9, show_default=True, help="Model sizes sampled per budget.")
@click.option("--width", type=float, default=1.0, show_default=True, help="Total span of each curve, decades of params.")
@click.option("--center-offset", type=float, default=0.0, show_default=True,
              help="Shift of the sampled span from the true optimum, decades.")
@click.option("--noise", type=float, default=0.0, show_default=True, help="Std. dev. of noise on each loss, nats.")
@click.option("--trials", type=int, default=1, show_default=True, help="Noisy repetitions.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed for the noise.")
@click.option("--target-flops", type=float, default=None, help="Budget to extrapolate to (default: 100x the largest).")
@_output_option(help_="Per-trial table to write (- prints it); without -o the summary is printed instead.")
def isoflop_sim_cmd(law, law_file, overrides, threads, budgets, points_per_curve, width, center_offset, noise,
                    trials, seed, target_flops, output, fmt):
    """Simulate Chinchilla's Approach 2 (parabola per IsoFLOP curve, power law through the vertices) on a
    known law: the bias of the fitted exponents and of N*, D* extrapolated to a target budget.

    Without -o the bias summary is the output (stdout); with -o the per-trial table is, and the summary
    goes to stderr.
    """
    from . import studies
    from .tables import frame_to_arrow, metadata

    the_law = _resolve(law, law_file, overrides, threads)
    c = studies.budgets_from_range(budgets)
    if output is not None:
        fmt = _check_target(output, fmt, law_file)
    elif fmt is not None:
        raise click.UsageError("--format applies to the per-trial table: give -o FILE (or -o - for stdout)")
    df = studies.isoflop_sim(the_law, c, points_per_curve=points_per_curve, width=width,
                             center_offset=center_offset, noise=noise, trials=trials, seed=seed,
                             target_flops=target_flops)
    say = talk if output is not None else click.echo
    r = df.iloc[0]
    say(f"law {the_law.name}: {len(c)} budgets, {points_per_curve} points per curve over {width:g} decades "
        f"(offset {center_offset:+g}), noise {noise:g}, {len(df)} trial(s); target {r.exact_params_at_target:.4g} "
        f"params at {target_flops or 100 * c.max():.3g} FLOPs")
    summary = [("exponent N*(C)", df.exponent_params, r.true_exponent_params),
               ("exponent D*(C)", df.exponent_tokens, r.true_exponent_tokens),
               ("N* at target", df.params_at_target, r.exact_params_at_target),
               ("D* at target", df.tokens_at_target, r.exact_tokens_at_target)]
    say(f"  {'':<15} {'true':>12} {'fitted mean':>12} {'rel. bias':>10} {'std':>10}")
    for name, col, true in summary:
        mean = col.mean()
        std = col.std() if len(col) > 1 else 0.0
        say(f"  {name:<15} {true:>12.6g} {mean:>12.6g} {mean / true - 1:>+10.3%} {std:>10.3g}")
    failed = int(df.failed_fits.sum())
    if failed:
        talk(f"warning: {failed} IsoFLOP parabolas opened downward (too noisy) and were left out")
    if output is not None:
        meta = metadata("isoflop-sim", law=the_law.to_dict(),
                        design=dict(budgets=budgets, points_per_curve=points_per_curve, width=width,
                                    center_offset=center_offset, noise=noise, trials=trials, seed=seed,
                                    target_flops=target_flops), rows=len(df), command_line=command_line())
        _emit(frame_to_arrow(df, meta), output, fmt, "trials")


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
def clean(directory):
    """Remove the temporary files that runs killed on this machine left in DIRECTORY (an output's directory or
    a partitioned dataset); files of live runs and of other machines are kept."""
    from .output import remove_stale_temps

    removed = remove_stale_temps(directory)
    talk(f"removed {len(removed)} stale temporary file{'s' if len(removed) != 1 else ''} from {directory}")


def main():
    """The console script: run the CLI, flush what it wrote, and leave without the interpreter's teardown of
    numba's and LLVM's state (0.3-0.4 s of every run). Every file is closed by then: writes go through
    context managers that commit or remove them before the command returns."""
    def interrupted(signum, frame):
        raise Interrupted(signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):  # unwind like Ctrl-C: temp files removed, old outputs kept
        signal.signal(signum, interrupted)
    if sys.stdout is None:  # started with stdout closed: data written to it is the one-line error
        from .output import ClosedStdout

        sys.stdout = ClosedStdout()
    try:
        cli()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            sys.stderr.write(exc.code + "\n")
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            continue
        try:
            stream.flush()
        except OSError:  # a closed pipe
            code = code or 141
    os._exit(code)


if __name__ == "__main__":
    main()
