"""The ``scalesweep`` command line: thin click commands over scalesweep.api.

User mistakes print one line, ``Error: ...``, on stderr and exit non-zero (2 for usage errors, 1 for
everything else); no tracebacks. Results go to files or stdout; progress and summaries to stderr.
"""

from __future__ import annotations

import json
import sys
import time

import click

from . import __version__
from .errors import ScalesweepError


class _Group(click.Group):
    """Turn every user-facing error into a single ``Error:`` line."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:  # usage errors (exit 2) included
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except ScalesweepError as exc:
            click.echo("Error: " + " ".join(str(exc).split()), err=True)  # user data may hold newlines
            sys.exit(1)
        except OSError as exc:
            where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
            click.echo(f"Error: I/O failure{where}: {exc.strerror or exc}", err=True)
            sys.exit(1)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="scalesweep")
def cli():
    """Compute-optimal sweeps over neural scaling laws (Kaplan 2020, Chinchilla 2022, ...).

    Ranges are written LO:HI:COUNT (log-spaced, inclusive). Losses are in nats/token; compute is
    C = 6*N*D FLOPs.
    """


def _law_options(f):
    f = click.option("--threads", type=int, default=None, help="Numba threads (default: all cores). "
                     "Results are identical for any count.")(f)
    f = click.option("--set", "overrides", multiple=True, metavar="NAME=VALUE",
                     help="Override a law parameter, e.g. --set alpha=0.35 (repeatable).")(f)
    f = click.option("--law-file", type=click.Path(dir_okay=False), default=None,
                     help="Law from a JSON or TOML file (family + parameters, or preset + overrides).")(f)
    f = click.option("--law", default=None, metavar="NAME",
                     help="Preset name (default: hoffmann2022); see `scalesweep laws`.")(f)
    return f


def _hardware_options(f):
    """Real-unit options shared by frontier and target-loss (names match the scenario fields)."""
    opts = [
        ("--gpu", str, "Hardware preset: A100, H100-SXM, H100-PCIe, H200 (dense bf16 peak, memory)."),
        ("--peak-tflops", float, "Dense bf16 peak per GPU, TFLOP/s (a custom GPU, or overrides --gpu)."),
        ("--gpu-memory-gb", float, "Memory per GPU in GB (custom GPU, or overrides --gpu)."),
        ("--mfu", float, "Model FLOPs utilisation in (0, 1]  [default: 0.4]."),
        ("--gpus", int, "Number of GPUs: adds wall_days, a memory limit on params, and enables --max-days."),
        ("--usd-per-gpu-hour", float, "Price of a GPU-hour: adds a usd column."),
        ("--bytes-per-param", float, "Training-state bytes per parameter for the memory limit  [default: 16]."),
        ("--max-days", float, "Wall-clock limit in days (needs --gpus and a GPU): caps the budget."),
        ("--unique-tokens", float, "Unique tokens available: caps tokens (single-epoch laws); adds epochs."),
    ]
    for name, typ, help_ in reversed(opts):
        f = click.option(name, type=typ, default=None, help=help_)(f)
    return f


def _constraint_options(f):
    opts = [
        ("--min-params", "Smallest model allowed (parameters)."),
        ("--max-params", "Largest model allowed (parameters)."),
        ("--min-tokens", "Fewest training tokens allowed."),
        ("--max-tokens", "Most training tokens allowed (e.g. data you have)."),
        ("--min-tokens-per-param", "Lower limit on D/N."),
        ("--max-tokens-per-param", "Upper limit on D/N."),
        ("--max-overfit", "Kaplan's overfitting measure dL (Eq. 4.3) at most this; 0.02 ~ D >= 5e3 N^0.74."),
    ]
    for name, help_ in reversed(opts):
        f = click.option(name, type=float, default=None, help=help_)(f)
    return f


HARDWARE_KEYS = ("gpu", "peak_tflops", "gpu_memory_gb", "mfu", "gpus", "usd_per_gpu_hour", "bytes_per_param",
                 "max_days", "unique_tokens")
CONSTRAINT_KEYS = ("min_params", "max_params", "min_tokens", "max_tokens", "min_tokens_per_param",
                   "max_tokens_per_param", "max_overfit")


def _engine_options(f):
    """Scale-out options shared by surface, frontier and scenarios."""
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


def _check_engine(engine, scheduler, workers):
    if engine == "local" and (scheduler is not None or workers is not None):
        raise click.UsageError("--scheduler and --workers need --engine dask")


def _run_dataset(job, output, engine, scheduler, workers):
    """Write a job as a partitioned dataset, locally or on Dask, and report it."""
    from . import dataset

    progress = _progress("parts")
    if engine == "dask":
        with dataset.dask_client(scheduler, workers) as client:
            summary = dataset.run(job, output, engine="dask", client=client, progress=progress)
    else:
        summary = dataset.run(job, output, engine="local", progress=progress)
    reused = f", {summary['reused']} already there" if summary["reused"] else ""
    click.echo(f"wrote {summary['rows']:,} rows as {summary['parts']} parts in {output}/ "
               f"({summary['computed']} computed{reused}, {engine}) in {summary['seconds']:.2f} s")
    return summary


def _numbers(text: str, option: str) -> list[float]:
    """A comma-separated list of numbers, e.g. ``--flops 1e23,3e23``; one line naming the bad entry."""
    out = []
    for part in str(text).split(","):
        try:
            out.append(float(part))
        except ValueError:
            raise ScalesweepError(f"{option}: {part.strip()!r} is not a number") from None
    return out


def _pick(kwargs, keys):
    return {k: kwargs[k] for k in keys if kwargs.get(k) is not None}


def _print_frame(df):
    import pandas as pd

    with pd.option_context("display.max_rows", 200, "display.width", 200, "display.max_columns", 40,
                           "display.float_format", "{:.6g}".format):
        click.echo(df.to_string(index=False))


def _resolve(law, law_file, overrides, threads):
    from .api import set_threads
    from .laws import parse_assignments, resolve_law

    if threads is not None:
        set_threads(threads)
    return resolve_law(law, law_file, parse_assignments(overrides))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def laws(as_json):
    """List law families, presets, parameters and sources."""
    from .laws import describe

    info = describe()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    w = max(map(len, info["families"]))
    click.echo("Families:")
    for name, f in info["families"].items():
        click.echo(f"  {name:<{w}} {f['formula']}")
        click.echo(f"  {'':<{w}} parameters: {', '.join(f['parameters'])}; {f['source']}")
    click.echo(f"\nPresets (default: {info['default']}):")
    for name, p in info["presets"].items():
        params = ", ".join(f"{k}={v:g}" for k, v in p["parameters"].items())
        click.echo(f"  {name:<21} {p['family']:<{w}} {params}")
        click.echo(f"  {'':<21} {p['citation']}")
        click.echo(f"  {'':<21} {p['conventions']}")


@cli.command()
@_law_options
@click.option("--params-range", required=True, metavar="LO:HI:COUNT", help="Model sizes N (parameters).")
@click.option("--tokens-range", default=None, metavar="LO:HI:COUNT", help="Training tokens D (grid form).")
@click.option("--flops-range", default=None, metavar="LO:HI:COUNT",
              help="Budgets C (IsoFLOP form: tokens = C/(6N)). Give this or --tokens-range.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True,
              help="Type of the loss column.")
@click.option("-o", "--output", required=True, type=click.Path(), help="Parquet file (a directory with "
              "--engine dask or --partition-rows) to write.")
@_engine_options
def surface(law, law_file, overrides, threads, params_range, tokens_range, flops_range, dtype, output, engine,
            scheduler, workers, partition_rows):
    """Loss over a params x tokens grid (or IsoFLOP slices), streamed to Parquet.

    Columns: params, tokens, flops (= 6*params*tokens), loss.
    """
    from .api import command_line, write_surface
    from .grid import parse_range
    from .io import check_output_path

    _check_engine(engine, scheduler, workers)
    the_law = _resolve(law, law_file, overrides, threads)
    if (tokens_range is None) == (flops_range is None):
        raise click.UsageError("give --tokens-range (grid) or --flops-range (IsoFLOP slices), not both")
    pr = parse_range(params_range, "--params-range")
    tr = parse_range(tokens_range, "--tokens-range") if tokens_range else None
    fr = parse_range(flops_range, "--flops-range") if flops_range else None
    grid = {"params_range": str(pr)}
    grid.update({"tokens_range": str(tr)} if tr else {"flops_range": str(fr)})
    if engine == "dask" or partition_rows is not None:
        from .api import CHUNK_POINTS
        from .dataset import surface_job

        job = surface_job(the_law, pr.values(), tokens=tr.values() if tr else None,
                          flops=fr.values() if fr else None, dtype=dtype, partition_rows=partition_rows or CHUNK_POINTS,
                          grid=grid, command_line=command_line())
        _run_dataset(job, output, engine, scheduler, workers)
        return
    check_output_path(output)
    summary = write_surface(output, the_law, pr.values(), tokens=tr.values() if tr else None,
                            flops=fr.values() if fr else None, dtype=dtype, grid=grid,
                            command_line=command_line(), progress=_progress())
    click.echo(f"wrote {summary['rows']:,} rows to {output} in {summary['seconds']:.2f} s")


def _progress(unit="rows"):
    """A progress callback that draws on stderr when it is a terminal (silent otherwise)."""
    if not sys.stderr.isatty():
        return None
    t0 = time.perf_counter()

    def report(done, total):
        end = "\n" if done >= total else "\r"
        click.echo(f"  {done:,}/{total:,} {unit} ({100 * done / max(total, 1):.0f}%, {time.perf_counter() - t0:.1f} s)",
                   err=True, nl=False)
        click.echo(end, err=True, nl=False)

    return report


@cli.command()
@_law_options
@click.option("--flops-range", default=None, metavar="LO:HI:COUNT", help="Budgets (in --unit, default FLOPs).")
@click.option("--flops-file", type=click.Path(dir_okay=False), default=None,
              help="Budgets from a CSV or Parquet file (column 'flops', or the only column).")
@click.option("--flops-column", default=None, help="Column of --flops-file to read.")
@click.option("--unit", type=click.Choice(["flops", "pf_days", "gpu_hours", "usd"]), default="flops",
              show_default=True, help="Unit of the budgets (gpu_hours and usd need a GPU).")
@_constraint_options
@_hardware_options
@click.option("--solver", type=click.Choice(["auto", "newton", "newton-midpoint"]), default="auto",
              show_default=True, help="auto: exact closed form where the family has one, else Newton.")
@click.option("--overfit-penalty", "overfit", is_flag=True,
              help="Add Kaplan's overfitting measure dL(N, D) (Eq. 4.3) as a column.")
@click.option("--loss-law", default=None, metavar="NAME",
              help="Evaluate the loss of an allocation-rule law (deepseek2024, ...) with this loss law.")
@click.option("--bands", default=None, metavar="Q[,Q...]",
              help="Percentile bands over the bootstrap samples of a --law-file written by `fit --bootstrap`.")
@click.option("-o", "--output", type=click.Path(), default=None,
              help="Parquet file to write (default: print the table); a directory with --engine dask or "
                   "--partition-rows.")
@_engine_options
def frontier(law, law_file, overrides, threads, flops_range, flops_file, flops_column, unit, solver, overfit, loss_law,
             bands, output, engine, scheduler, workers, partition_rows, **kwargs):
    """Compute-optimal params and tokens per budget, under constraints.

    Fixed-size questions are the same solve with equal bounds: --min-params 7e9 --max-params 7e9 gives the
    tokens (and loss) a 7B model gets from each budget. With a GPU (--gpu, --mfu) every row also reports
    gpu_hours; with --gpus wall_days, with --usd-per-gpu-hour usd.
    """
    from . import api
    from .grid import parse_range
    from .io import check_output_path

    _check_engine(engine, scheduler, workers)
    the_law = _resolve(law, law_file, overrides, threads)
    if (flops_range is None) == (flops_file is None):
        raise click.UsageError("give --flops-range or --flops-file (one of them)")
    if flops_column is not None and flops_file is None:
        raise click.UsageError("--flops-column needs --flops-file")
    if flops_range is not None:
        fr = parse_range(flops_range, "--flops-range")
        flops, grid = fr.values(), {"flops_range": str(fr)}
    else:
        flops, grid = api.read_flops_file(flops_file, flops_column), {"flops_file": str(flops_file)}
    cons, hw = _pick(kwargs, CONSTRAINT_KEYS), _pick(kwargs, HARDWARE_KEYS)
    if engine == "dask" or partition_rows is not None:
        if output is None:
            raise click.UsageError("--engine dask and --partition-rows write a dataset: give -o DIRECTORY")
        if hw or unit != "flops" or bands or loss_law or overfit:
            raise click.UsageError("a partitioned frontier takes budgets in FLOPs and the six frontier limits only")
        from .dataset import frontier_job

        job = frontier_job(the_law, flops, constraints=cons, solver=solver, partition_rows=partition_rows or (1 << 20),
                           grid=grid, command_line=api.command_line())
        _run_dataset(job, output, engine, scheduler, workers)
        return
    if output is not None:
        check_output_path(output)
    df = api.frontier(the_law, flops, unit=unit, solver=solver, loss_law=loss_law, overfit=overfit, **cons, **hw)
    if bands is not None:
        df = _with_bands(df, bands, law_file, overrides, solver, cons)
    n_bad = int((~df["feasible"]).sum())
    if output is None:
        _print_frame(df)
    else:
        api.write_frontier(output, df, the_law, cons, grid={**grid, "unit": unit, "solver": solver},
                           hardware=hw, command_line=api.command_line())
        click.echo(f"wrote {len(df):,} budgets to {output} (law {the_law.name})")
    if n_bad:
        click.echo(f"warning: {n_bad:,} of {len(df):,} budgets cannot meet the constraints (feasible=false)", err=True)


def _with_bands(df, bands, law_file, overrides, solver, cons):
    """Join percentile bands over a law file's bootstrap samples onto a frontier table."""
    from . import api
    from .fit import read_bootstrap

    if law_file is None:
        raise click.UsageError("--bands needs --law-file with bootstrap samples (scalesweep fit --bootstrap N)")
    if overrides:
        raise click.UsageError("--bands uses the law file's samples as they are; drop --set")
    qs = _numbers(bands, "--bands")
    family, samples = read_bootstrap(law_file)
    b = api.frontier_bands(samples, family, df["flops"].to_numpy(), qs, solver=solver, **cons)
    return df.join(b.drop(columns=["flops"]))


@cli.command("target-loss")
@_law_options
@click.option("--loss", "losses", required=True, metavar="L[,L...]",
              help="Target loss(es), nats/token, comma-separated.")
@click.option("--inference-tokens", type=float, default=None,
              help="Lifetime inference demand (tokens): minimise 6ND + 2N*D_inf instead (Sardana et al. 2024).")
@_constraint_options
@_hardware_options
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Parquet file to write (default: print the table).")
def target_loss_cmd(law, law_file, overrides, threads, losses, inference_tokens, output, **kwargs):
    """The least compute that reaches a target loss: params, tokens and FLOPs.

    Targets at or below the law's irreducible loss, or out of reach under the constraints, are flagged
    feasible=false (with a warning), not errors.
    """
    from . import api
    from .io import check_output_path

    the_law = _resolve(law, law_file, overrides, threads)
    targets = _numbers(losses, "--loss")
    for t in targets:
        if not (t > 0 and t < float("inf")):
            raise ScalesweepError(f"--loss: targets must be finite numbers > 0, got {t!r}")
    if output is not None:
        check_output_path(output)
    cons, hw = _pick(kwargs, CONSTRAINT_KEYS), _pick(kwargs, HARDWARE_KEYS)
    df = api.target_loss(the_law, targets, inference_tokens=inference_tokens, **cons, **hw)
    if output is None:
        _print_frame(df)
    else:
        api.write_frontier(output, df, the_law, cons, command="target-loss", hardware=hw,
                           inference_tokens=inference_tokens, command_line=api.command_line())
        click.echo(f"wrote {len(df):,} targets to {output} (law {the_law.name})")
    n_bad = int((~df["feasible"]).sum())
    if n_bad:
        click.echo(f"warning: {n_bad:,} of {len(df):,} targets cannot be reached (at or below the law's "
                   "irreducible loss, or blocked by the constraints)", err=True)


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(), help="Parquet file (a directory with "
              "--engine dask or --partition-rows) to write.")
@click.option("--threads", type=int, default=None, help="Numba threads (default: all cores).")
@_engine_options
def scenarios(spec, output, threads, engine, scheduler, workers, partition_rows):
    """Solve many scenarios at once: SPEC is a table (.csv/.parquet, one scenario per row) or a sweep
    spec (.yaml/.toml) whose lists expand as a cartesian product.

    Fields: law (law.NAME overrides a parameter), one budget (flops, pf_days, gpu_hours, usd, days with
    gpus, or target_loss), gpu, peak_tflops, gpu_memory_gb, mfu, gpus, usd_per_gpu_hour, bytes_per_param,
    max_days, unique_tokens, inference_tokens and the six frontier limits. See the README for defaults.
    """
    from . import api
    from . import scenarios as sc
    from .io import check_output_path

    _check_engine(engine, scheduler, workers)
    if threads is not None:
        api.set_threads(threads)
    if engine == "dask" or partition_rows is not None:
        from .dataset import scenarios_job

        job = scenarios_job(spec, partition_rows=partition_rows or sc.CHUNK_ROWS, command_line=api.command_line())
        summary = _run_dataset(job, output, engine, scheduler, workers)
        n_bad = summary["rows"] - summary["feasible"] if not summary["reused"] else 0
        if n_bad:
            click.echo(f"warning: {n_bad:,} scenarios cannot meet their constraints (feasible=false)", err=True)
        return
    check_output_path(output)
    loaded = sc.load_spec(spec)
    summary = sc.run(loaded, output, command_line=api.command_line(), progress=_progress())
    click.echo(f"wrote {summary['rows']:,} scenarios to {output} in {summary['seconds']:.2f} s "
               f"({summary['feasible']:,} feasible)")
    n_bad = summary["rows"] - summary["feasible"]
    if n_bad:
        click.echo(f"warning: {n_bad:,} scenarios cannot meet their constraints (feasible=false)", err=True)


@cli.command("fit")
@click.argument("runs", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Law file (JSON) to write.")
@click.option("--family", type=click.Choice(["chinchilla", "kaplan"]), default="chinchilla", show_default=True)
@click.option("--method", type=click.Choice(["lbfgs", "vp"]), default="lbfgs", show_default=True,
              help="lbfgs: Huber multi-start (Hoffmann/Besiroglu); vp: variable projection (chinchilla).")
@click.option("--objective", type=click.Choice(["huber", "lad"]), default="huber", show_default=True,
              help="Loss on log residuals (lbfgs): Huber, or least absolute deviation.")
@click.option("--delta", type=float, default=1e-3, show_default=True, help="Huber delta.")
@click.option("--exclude-highest", type=int, default=0, show_default=True, help="Leave out the k highest-loss runs.")
@click.option("--grid", "grid_items", multiple=True, metavar="NAME=V1,V2,...",
              help="Replace one axis of the start grid (chinchilla: a, b, e, alpha, beta; kaplan: ln_N_c, ln_D_c, "
                   "alpha_N, alpha_D). Repeatable.")
@click.option("--bootstrap", type=int, default=0, show_default=True, help="Resamples for uncertainty (0: none).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@click.option("--params-column", default="params", show_default=True)
@click.option("--tokens-column", default="tokens", show_default=True)
@click.option("--flops-column", default=None, help="Use flops instead of tokens (tokens = flops / (6 params)).")
@click.option("--loss-column", default="loss", show_default=True)
@click.option("--threads", type=int, default=None, help="Numba threads (results do not depend on it).")
def fit_cmd(runs, output, family, method, objective, delta, exclude_highest, grid_items, bootstrap, seed,
            params_column, tokens_column, flops_column, loss_column, threads):
    """Fit a law to your own training runs (CSV or Parquet: params, tokens or flops, loss).

    Writes a law file every other command reads with --law-file.
    """
    from . import fit as F
    from .api import set_threads
    from .io import check_output_path

    if threads is not None:
        set_threads(threads)
    check_output_path(output)
    grid = None
    if grid_items:
        grid = dict(F.GRIDS[family])
        for item in grid_items:
            key, sep, vals = item.partition("=")
            key = key.strip()
            if not sep or key not in grid:
                raise ScalesweepError(f"--grid expects NAME=V1,V2,... with NAME one of {', '.join(grid)}; got {item!r}")
            try:
                grid[key] = [float(v) for v in vals.split(",")]
            except ValueError:
                raise ScalesweepError(f"--grid {key}: values must be numbers, got {vals!r}") from None
    n, d, y = F.read_runs(runs, params_column=params_column, tokens_column=tokens_column, flops_column=flops_column,
                          loss_column=loss_column)
    res = F.fit(n, d, y, family=family, method=method, delta=delta, objective=objective,
                exclude_highest=exclude_highest, grid=grid, bootstrap=bootstrap, seed=seed)
    res.info["runs_file"] = str(runs)
    F.write_law_file(output, res)
    p = ", ".join(f"{k}={v:.6g}" for k, v in res.law.params.items())
    click.echo(f"fitted {family} to {res.info['n_points']} runs ({method}): {p}")
    extra = f"; {res.info['starts_within_1e-6']} of {res.info['starts']} starts within 1e-6 of the best" \
        if method == "lbfgs" else ""
    click.echo(f"objective {res.info['objective_value']:.6g} in {res.info['seconds']:.2f} s{extra}")
    if res.samples is not None:
        se = res.to_dict()["bootstrap"]["standard_errors"]
        click.echo(f"bootstrap ({bootstrap} resamples, seed {seed}) standard errors: "
                   + ", ".join(f"{k} {v:.3g}" for k, v in se.items()))
    click.echo(f"wrote {output}")


@cli.command()
@click.option("--flops", "flops_values", required=True, metavar="C[,C...]", help="Budget(s), FLOPs.")
@click.option("--laws", "law_names", default=None, metavar="A,B,...", help="Presets to compare (default: all).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Also write Parquet.")
def compare(flops_values, law_names, output):
    """What every preset recommends at a budget, side by side (params, tokens, tokens/param, loss)."""
    from . import api
    from .io import check_output_path, make_metadata, write_table

    budgets = _numbers(flops_values, "--flops")
    names = None if law_names is None else [x.strip() for x in law_names.split(",") if x.strip()]
    if output is not None:
        check_output_path(output)
    df = api.compare(budgets, names)
    _print_frame(df)
    if output is not None:
        import pyarrow as pa

        meta = make_metadata(command="compare", flops=budgets, laws=[str(x) for x in df["law"].cat.categories],
                             rows=len(df), command_line=api.command_line())
        write_table(output, pa.Table.from_pandas(df, preserve_index=False), meta)
        click.echo(f"wrote {len(df):,} rows to {output}", err=True)


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
    click.echo(f"wrote {output}")


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
    click.echo(f"wrote {output}")


def _parse_lo_hi(text: str, option: str) -> tuple[float, float]:
    from .grid import parse_range

    parts = str(text).split(":")
    if len(parts) == 2:
        text = f"{parts[0]}:{parts[1]}:2"
    r = parse_range(text, option)
    if not r.lo < r.hi:
        raise ScalesweepError(f"{option}: LO ({r.lo:g}) must be less than HI ({r.hi:g})")
    return r.lo, r.hi


@cli.group()
def lookup():
    """Dense frontier lookup tables (build once, interpolate log-log)."""


@lookup.command("build")
@_law_options
@click.option("--flops-range", required=True, metavar="LO:HI", help="Budgets the table covers, FLOPs.")
@click.option("--points-per-decade", type=int, default=16, show_default=True, help="Rows per decade of budget.")
@_constraint_options
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Parquet file to write.")
@_engine_options
def lookup_build(law, law_file, overrides, threads, flops_range, points_per_decade, output, engine, scheduler, workers,
                 partition_rows, **kwargs):
    """Build a frontier table; its metadata records the largest interpolation error, measured by solving
    exactly at every midpoint between rows. With --engine dask or --partition-rows the rows are solved as
    resumable parts (in OUTPUT.parts/) and then joined into the one table file."""
    from .api import command_line
    from .io import check_output_path
    from .lookup import write_lookup, write_lookup_parts

    _check_engine(engine, scheduler, workers)
    the_law = _resolve(law, law_file, overrides, threads)
    lo, hi = _parse_lo_hi(flops_range, "--flops-range")
    check_output_path(output)
    if engine == "dask" or partition_rows is not None:
        from . import dataset

        kw = dict(partition_rows=partition_rows, progress=_progress("parts"), command_line=command_line(),
                  **_pick(kwargs, CONSTRAINT_KEYS))
        if engine == "dask":
            with dataset.dask_client(scheduler, workers) as client:
                info = write_lookup_parts(output, the_law, lo, hi, points_per_decade, engine="dask", client=client, **kw)
        else:
            info = write_lookup_parts(output, the_law, lo, hi, points_per_decade, **kw)
    else:
        info = write_lookup(output, the_law, lo, hi, points_per_decade, command_line=command_line(),
                            **_pick(kwargs, CONSTRAINT_KEYS))
    err = info["max_interpolation_error"]
    click.echo(f"wrote {info['rows']:,} rows to {output} (law {the_law.name}); max interpolation error at "
               f"midpoints: params {err['params']:.2e}, tokens {err['tokens']:.2e}, loss {err['loss']:.2e}")


@lookup.command("query")
@click.argument("table", type=click.Path(dir_okay=False))
@click.option("--flops", "flops_values", default=None, metavar="C[,C...]", help="Budget(s), FLOPs, comma-separated.")
@click.option("--flops-file", type=click.Path(dir_okay=False), default=None,
              help="Budgets from a CSV or Parquet file (column 'flops', or the only column).")
@click.option("--flops-column", default=None, help="Column of --flops-file to read.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Parquet file to write (default: print the table).")
def lookup_query(table, flops_values, flops_file, flops_column, output):
    """Interpolate a table at budgets inside its range (outside is an error, not an extrapolation)."""
    from . import api
    from .io import check_output_path, make_metadata, write_table
    from .lookup import Lookup

    if (flops_values is None) == (flops_file is None):
        raise click.UsageError("give --flops or --flops-file (one of them)")
    if flops_values is not None:
        budgets = _numbers(flops_values, "--flops")
    else:
        budgets = api.read_flops_file(flops_file, flops_column)
    if output is not None:
        check_output_path(output)
    lk = Lookup(table)
    df = lk.query(budgets)
    if output is None:
        _print_frame(df)
    else:
        import pyarrow as pa

        meta = make_metadata(command="lookup query", table=lk.path, law=lk.meta.get("law"), lookup=lk.info,
                             rows=len(df), command_line=api.command_line())
        write_table(output, pa.Table.from_pandas(df, preserve_index=False), meta)
        click.echo(f"wrote {len(df):,} rows to {output}")


@cli.command()
@_law_options
@click.option("--flops-range", required=True, metavar="LO:HI:COUNT", help="Budgets to test at, FLOPs.")
@click.option("--points-per-decade", "ppd", default="2,4,8,16,32,64", show_default=True, metavar="K[,K...]",
              help="Resolutions to compare.")
@click.option("--params-range", default=None, metavar="LO:HI",
              help="Params grid span (default: a decade beyond the optima at either end).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Parquet file to write.")
def resolution(law, law_file, overrides, threads, flops_range, ppd, params_range, output):
    """How fine a grid do I need? Grid search and lookup tables at each resolution against the exact solver."""
    from . import api, studies
    from .grid import parse_range
    from .io import check_output_path, make_metadata, write_table

    the_law = _resolve(law, law_file, overrides, threads)
    fr = parse_range(flops_range, "--flops-range")
    ks = studies.parse_int_list(ppd, "--points-per-decade")
    pr = _parse_lo_hi(params_range, "--params-range") if params_range else None
    if output is not None:
        check_output_path(output)
    df = studies.resolution(the_law, fr.values(), ks, params_range=pr)
    show = df.rename(columns=lambda c: c.replace("_rel_error", "").replace("median", "med"))
    _print_frame(show)
    if output is not None:
        import pyarrow as pa

        meta = make_metadata(command="resolution", law=the_law.to_dict(), grid={"flops_range": str(fr)},
                             points_per_decade=ks, rows=len(df), command_line=api.command_line())
        write_table(output, pa.Table.from_pandas(df, preserve_index=False), meta)
        click.echo(f"wrote {len(df):,} rows to {output}", err=True)


@cli.command("isoflop-sim")
@_law_options
@click.option("--budgets", required=True, metavar="LO:HI:K", help="IsoFLOP budgets (Chinchilla: 6e18:3e21:9).")
@click.option("--points-per-curve", type=int, default=9, show_default=True, help="Model sizes sampled per budget.")
@click.option("--width", type=float, default=1.0, show_default=True, help="Total span of each curve, decades of params.")
@click.option("--center-offset", type=float, default=0.0, show_default=True,
              help="Shift of the sampled span from the true optimum, decades.")
@click.option("--noise", type=float, default=0.0, show_default=True, help="Std. dev. of noise on each loss, nats.")
@click.option("--trials", type=int, default=1, show_default=True, help="Noisy repetitions.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed for the noise.")
@click.option("--target-flops", type=float, default=None, help="Budget to extrapolate to (default: 100x the largest).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Parquet file to write (per trial).")
def isoflop_sim_cmd(law, law_file, overrides, threads, budgets, points_per_curve, width, center_offset, noise,
                    trials, seed, target_flops, output):
    """Simulate Chinchilla's Approach 2 (parabola per IsoFLOP curve, power law through the vertices) on a
    known law: the bias of the fitted exponents and of N*, D* extrapolated to a target budget."""
    from . import api, studies
    from .io import check_output_path, make_metadata, write_table

    the_law = _resolve(law, law_file, overrides, threads)
    c = studies.budgets_from_range(budgets)
    if output is not None:
        check_output_path(output)
    df = studies.isoflop_sim(the_law, c, points_per_curve=points_per_curve, width=width,
                             center_offset=center_offset, noise=noise, trials=trials, seed=seed,
                             target_flops=target_flops)
    r = df.iloc[0]
    click.echo(f"law {the_law.name}: {len(c)} budgets, {points_per_curve} points per curve over {width:g} decades "
               f"(offset {center_offset:+g}), noise {noise:g}, {len(df)} trial(s); target {r.exact_params_at_target:.4g} "
               f"params at {target_flops or 100 * c.max():.3g} FLOPs")
    summary = [("exponent N*(C)", df.exponent_params, r.true_exponent_params),
               ("exponent D*(C)", df.exponent_tokens, r.true_exponent_tokens),
               ("N* at target", df.params_at_target, r.exact_params_at_target),
               ("D* at target", df.tokens_at_target, r.exact_tokens_at_target)]
    click.echo(f"  {'':<15} {'true':>12} {'fitted mean':>12} {'rel. bias':>10} {'std':>10}")
    for name, col, true in summary:
        mean = col.mean()
        std = col.std() if len(col) > 1 else 0.0
        click.echo(f"  {name:<15} {true:>12.6g} {mean:>12.6g} {mean / true - 1:>+10.3%} {std:>10.3g}")
    failed = int(df.failed_fits.sum())
    if failed:
        click.echo(f"warning: {failed} IsoFLOP parabolas opened downward (too noisy) and were left out", err=True)
    if output is not None:
        import pyarrow as pa

        meta = make_metadata(command="isoflop-sim", law=the_law.to_dict(),
                             design=dict(budgets=budgets, points_per_curve=points_per_curve, width=width,
                                         center_offset=center_offset, noise=noise, trials=trials, seed=seed,
                                         target_flops=target_flops), rows=len(df), command_line=api.command_line())
        write_table(output, pa.Table.from_pandas(df, preserve_index=False), meta)
        click.echo(f"wrote {len(df):,} trials to {output}", err=True)


def main():
    cli()


if __name__ == "__main__":
    main()
