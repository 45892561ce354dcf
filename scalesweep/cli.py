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
    click.echo("Families:")
    for name, f in info["families"].items():
        click.echo(f"  {name:<11} {f['formula']}")
        click.echo(f"  {'':<11} parameters: {', '.join(f['parameters'])}; {f['source']}")
    click.echo("\nPresets (default: %s):" % info["default"])
    for name, p in info["presets"].items():
        params = ", ".join(f"{k}={v:g}" for k, v in p["parameters"].items())
        click.echo(f"  {name:<21} {p['family']:<11} {params}")
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
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Parquet file to write.")
def surface(law, law_file, overrides, threads, params_range, tokens_range, flops_range, dtype, output):
    """Loss over a params x tokens grid (or IsoFLOP slices), streamed to Parquet.

    Columns: params, tokens, flops (= 6*params*tokens), loss.
    """
    from .api import command_line, write_surface
    from .grid import parse_range
    from .io import check_output_path

    the_law = _resolve(law, law_file, overrides, threads)
    if (tokens_range is None) == (flops_range is None):
        raise click.UsageError("give --tokens-range (grid) or --flops-range (IsoFLOP slices), not both")
    pr = parse_range(params_range, "--params-range")
    tr = parse_range(tokens_range, "--tokens-range") if tokens_range else None
    fr = parse_range(flops_range, "--flops-range") if flops_range else None
    check_output_path(output)
    grid = {"params_range": str(pr)}
    grid.update({"tokens_range": str(tr)} if tr else {"flops_range": str(fr)})
    summary = write_surface(output, the_law, pr.values(), tokens=tr.values() if tr else None,
                            flops=fr.values() if fr else None, dtype=dtype, grid=grid,
                            command_line=command_line(), progress=_progress())
    click.echo(f"wrote {summary['rows']:,} rows to {output} in {summary['seconds']:.2f} s")


def _progress():
    """A progress callback that draws on stderr when it is a terminal (silent otherwise)."""
    if not sys.stderr.isatty():
        return None
    t0 = time.perf_counter()

    def report(done, total):
        end = "\n" if done >= total else "\r"
        click.echo(f"  {done:,}/{total:,} rows ({100 * done / total:.0f}%, {time.perf_counter() - t0:.1f} s)",
                   err=True, nl=False)
        click.echo(end, err=True, nl=False)

    return report


@cli.command()
@_law_options
@click.option("--flops-range", default=None, metavar="LO:HI:COUNT", help="Budgets C in FLOPs.")
@click.option("--flops-file", type=click.Path(dir_okay=False), default=None,
              help="Budgets from a CSV or Parquet file (column 'flops', or the only column).")
@click.option("--flops-column", default=None, help="Column of --flops-file to read.")
@click.option("--min-params", type=float, default=None, help="Smallest model allowed (parameters).")
@click.option("--max-params", type=float, default=None, help="Largest model allowed (parameters).")
@click.option("--min-tokens", type=float, default=None, help="Fewest training tokens allowed.")
@click.option("--max-tokens", type=float, default=None, help="Most training tokens allowed (e.g. data you have).")
@click.option("--min-tokens-per-param", type=float, default=None, help="Lower limit on D/N.")
@click.option("--max-tokens-per-param", type=float, default=None, help="Upper limit on D/N.")
@click.option("--solver", type=click.Choice(["auto", "newton", "newton-midpoint"]), default="auto",
              show_default=True, help="auto: exact closed form where the family has one, else Newton.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Parquet file to write (default: print the table).")
def frontier(law, law_file, overrides, threads, flops_range, flops_file, flops_column, min_params, max_params,
             min_tokens, max_tokens, min_tokens_per_param, max_tokens_per_param, solver, output):
    """Compute-optimal params and tokens per budget, under constraints.

    Fixed-size questions are the same solve with equal bounds: --min-params 7e9 --max-params 7e9 gives the
    tokens (and loss) a 7B model gets from each budget.
    """
    from . import api
    from .constraints import Constraints
    from .grid import parse_range
    from .io import check_output_path

    the_law = _resolve(law, law_file, overrides, threads)
    if (flops_range is None) == (flops_file is None):
        raise click.UsageError("give --flops-range or --flops-file (one of them)")
    if flops_column is not None and flops_file is None:
        raise click.UsageError("--flops-column needs --flops-file")
    cons = Constraints(min_params=min_params, max_params=max_params, min_tokens=min_tokens, max_tokens=max_tokens,
                       min_tokens_per_param=min_tokens_per_param, max_tokens_per_param=max_tokens_per_param)
    if flops_range is not None:
        fr = parse_range(flops_range, "--flops-range")
        flops, grid = fr.values(), {"flops_range": str(fr)}
    else:
        flops, grid = api.read_flops_file(flops_file, flops_column), {"flops_file": str(flops_file)}
    if output is not None:
        check_output_path(output)
    df = api.frontier(the_law, flops, solver=solver, **cons.as_dict())
    n_bad = int((~df["feasible"]).sum())
    if output is None:
        import pandas as pd

        with pd.option_context("display.max_rows", 200, "display.width", 120, "display.float_format", "{:.6g}".format):
            click.echo(df.to_string(index=False))
    else:
        api.write_frontier(output, df, the_law, cons.as_dict(), grid={**grid, "solver": solver},
                           command_line=api.command_line())
        click.echo(f"wrote {len(df):,} budgets to {output} (law {the_law.name})")
    if n_bad:
        click.echo(f"warning: {n_bad:,} of {len(df):,} budgets cannot meet the constraints (feasible=false)", err=True)


def main():
    cli()


if __name__ == "__main__":
    main()
