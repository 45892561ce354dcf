"""The ``scalesweep`` command line: thin click commands over the library.

Conventions, the same in every command:

* stdout is data, stderr is talk: tables (and law files with ``-o -``) go to stdout or a file; status lines
  (``wrote ...``), warnings and progress go to stderr, through the ``scalesweep`` logger (``-q``: warnings
  only; ``-v``: details too). Errors always print.
* ``-o PATH`` writes a file whose format follows the suffix (or ``--format``); ``-o -`` or no ``-o`` prints:
  a fixed-width table on a terminal, CSV when piped. Writing goes through ``output`` (atomic, one writer).
* The options of limits, hardware and workload are generated from ``options``: one definition of each.
  Counts of parameters, tokens and FLOPs, and the ends of ranges, are sizes (``7B``, ``1.5T``).
* ``SCALESWEEP_LAW``, ``SCALESWEEP_GPU``, ``SCALESWEEP_THREADS`` and ``SCALESWEEP_MAX_ROWS`` are the defaults
  of ``--law``, ``--gpu``, ``--threads`` and ``--max-rows``; a default from the environment gives way to an
  option that conflicts with it (``--law-file``, ``--peak-tflops``).
* User mistakes print one line, ``Error: ...``, on stderr and exit non-zero (2 for usage errors, 1 for
  everything else); no tracebacks. An option that would have no effect is an error, never ignored.
* Help lists each command's options in sections (``_Option.section``) and ends with examples.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import signal
import sys
import time
from dataclasses import fields

import click
from click.core import ParameterSource
from click.shell_completion import CompletionItem

from . import options as opts
from . import units
from ._version import __version__
from .errors import Interrupted, ScalesweepError
from .output import COMPRESSIONS, DEFAULT_COMPRESSION, FLOAT_DTYPES, FORMATS
from .validate import BYTES_PER_ROW_HELD, MAX_ROWS_ENV, SIZE_HINT, check_size, clip, number, parse_size, set_max_rows

LOG = logging.getLogger("scalesweep")
LAW_ENV, GPU_ENV, THREADS_ENV = "SCALESWEEP_LAW", "SCALESWEEP_GPU", "SCALESWEEP_THREADS"
COMPILE_NOTICE = "compiling kernels once; later runs start in about a second"


# ------------------------------------------------------------------------------------------- talk


class _Stderr(logging.Handler):
    """Log records as plain lines on stderr as it is now (click.echo: a test runner's stand-in included);
    warnings start with ``warning:``, details with ``debug:``."""

    def emit(self, record):
        prefix = {logging.WARNING: "warning: ", logging.DEBUG: "debug: "}.get(record.levelno, "")
        click.echo(prefix + record.getMessage(), err=True)


def _log_level(quiet: bool, verbose: bool) -> None:
    if quiet and verbose:
        raise click.UsageError("give -q or -v, not both")
    if not any(isinstance(h, _Stderr) for h in LOG.handlers):
        LOG.addHandler(_Stderr())
    LOG.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)


def talk(message: str) -> None:
    """A status line on stderr (silenced by -q)."""
    LOG.info(message)


def warn(message: str) -> None:
    """A warning on stderr, ``warning: message`` (shown with -q too)."""
    LOG.warning(message)


_compiled: list[str] = []  # kernels numba compiled in this process (loads from its on-disk cache are not)
_watching = False


def _watch_compiles() -> None:
    """Say on stderr, once, when a kernel starts compiling (its on-disk cache is cold), and count compiled
    kernels in ``_compiled``. A listener on numba's compile event, which fires at the start of a compile and
    not for a kernel loaded from the cache: nothing is timed or guessed. It is registered when the kernels are
    imported (``progress.when_kernels_load``): a command that needs none never loads numba."""
    global _watching
    if _watching:
        return
    _watching = True
    from .progress import when_kernels_load

    when_kernels_load(_listen_to_compiles)


def _listen_to_compiles() -> None:
    from numba.core import event

    class Notice(event.Listener):
        def on_start(self, ev):
            func = ev.data["dispatcher"].py_func
            if not func.__module__.startswith(__package__ + "."):
                return
            if not _compiled:
                from .kernels import CACHE

                talk(COMPILE_NOTICE if CACHE else "compiling kernels")
            _compiled.append(f"{func.__module__}.{func.__qualname__}")
            LOG.debug("compiling %s", _compiled[-1])

        def on_end(self, ev):
            pass

    event.register("numba:compile", Notice())


# ------------------------------------------------------------------------------------------- help


SECTIONS = ("Law", "Budget", "Grid", "Input", "Limits", "Hardware", "Model", "Data and inference", "Solver",
            "Fit", "Design", "Output", "Scale-out")
OTHER = "Other options"


class _Option(click.Option):
    """An option with a help ``section``, help text made when help is shown (``help_fn``: no heavy import at
    start-up), and, for a value from its environment variable, errors that name the variable (exit 1)."""

    def __init__(self, *decls, section: str = OTHER, help_fn=None, **attrs):
        super().__init__(*decls, **attrs)
        self.section, self.help_fn = section, help_fn

    def get_help_record(self, ctx):
        if self.help_fn is not None:
            self.help, self.help_fn = self.help_fn(), None
        return super().get_help_record(ctx)

    def process_value(self, ctx, value):
        try:
            return super().process_value(ctx, value)
        except (click.BadParameter, ScalesweepError) as exc:
            if ctx.get_parameter_source(self.name) is not ParameterSource.ENVIRONMENT:
                raise
            why = exc.message if isinstance(exc, click.ClickException) else str(exc)
            raise ScalesweepError(f"{self.envvar}={os.environ.get(self.envvar, '')!r} (the default of "
                                  f"{self.opts[-1]}): {why}") from None


def _opt(section: str, *decls, **attrs):
    """A click option listed under ``section`` in its command's help."""
    return click.option(*decls, cls=_Option, section=section, **attrs)


class _Command(click.Command):
    """A command whose help lists options by section and ends with ``examples``. ``kernels``: it runs numba
    kernels, so the first compile in the process is announced (``_watch_compiles``); ``-v`` adds its time."""

    def __init__(self, *args, examples=(), kernels: bool = True, **attrs):
        super().__init__(*args, **attrs)
        self.examples, self.kernels = tuple(examples), kernels

    def format_options(self, ctx, formatter):
        groups: dict[str, list] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None  # arguments: usage
            if record is not None:
                groups.setdefault(getattr(param, "section", OTHER), []).append(record)
        order = [s for s in SECTIONS if s in groups] + [s for s in groups if s not in SECTIONS and s != OTHER]
        for name in order + ([OTHER] if OTHER in groups else []):
            with formatter.section(name if order else "Options"):
                formatter.write_dl(groups[name])

    def format_epilog(self, ctx, formatter):
        super().format_epilog(ctx, formatter)
        if self.examples:
            with formatter.section("Examples"):
                for line in self.examples:
                    formatter.write(f"{'':>{formatter.current_indent}}{line}\n")

    def invoke(self, ctx):
        if self.kernels:
            _watch_compiles()
        t0 = time.perf_counter()
        rv = super().invoke(ctx)
        numba = sys.modules.get("numba")
        threads = f" on {numba.get_num_threads()} numba threads" if numba is not None else ""
        LOG.debug("%s took %.2f s%s", ctx.command_path, time.perf_counter() - t0, threads)
        return rv


class _Group(click.Group):
    """Turn every user-facing error into a single ``Error:`` line; subcommands are ``_Command``s."""

    command_class = _Command
    group_class = type  # subgroups are _Groups too

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
            hint = ""
            if isinstance(exc, click.NoSuchOption) and exc.option_name in GROUP_OPTIONS:
                hint = f" ({exc.option_name} goes before the command: scalesweep {exc.option_name} COMMAND ...)"
            click.echo(f"Error: {exc.format_message()}{hint}", err=True)
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

    def format_epilog(self, ctx, formatter):
        if ctx.parent is None:
            with formatter.section("Environment (defaults, shown in each command's help)"):
                formatter.write_dl([(LAW_ENV, "--law"), (GPU_ENV, "--gpu"), (THREADS_ENV, "--threads"),
                                    (MAX_ROWS_ENV, "--max-rows")])
            with formatter.section("Shell completion (bash; zsh_source, fish_source for the others)"):
                formatter.write(f"{'':>{formatter.current_indent}}eval \"$(_SCALESWEEP_COMPLETE=bash_source "
                                "scalesweep)\"\n")


# ------------------------------------------------------------------------------------------- values


class _Size(click.ParamType):
    """A number by an option's rule (``validate.RULES``) that may be written with a size suffix: 7B, 1.5T. A
    whole number (rule ``int``) comes back as an int."""

    name = "size"

    def __init__(self, rule: str = "pos"):
        self.rule = rule

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            parse_size(value)
        except ValueError:
            self.fail(f"{clip(value)} is not a number ({SIZE_HINT})", param, ctx)
        v = number(value, param.opts[-1] if param is not None else "value", self.rule, size=True)
        return int(v) if self.rule == "int" else v


def _complete(names: dict, incomplete: str, many: bool = False) -> list:
    """Completions of ``incomplete`` among ``names`` (name -> help), without case; with ``many``, of the last
    name of a comma-separated list."""
    head, _, last = incomplete.rpartition(",") if many else ("", "", incomplete)
    head = head + "," if head else ""
    return [CompletionItem(head + n, help=h) for n, h in names.items() if n.lower().startswith(last.lower())]


def _law_names() -> dict:
    """Presets and their aliases (name -> what it is), from ``laws``."""
    from . import laws

    aliases = getattr(laws, "ALIASES", {})
    return {**{n: p.citation.split(";")[0] for n, p in laws.PRESETS.items()},
            **{a: f"alias of {n}" for a, n in aliases.items()}}


def _complete_laws(ctx, param, incomplete):
    return _complete(_law_names(), incomplete, many=param.metavar is not None and "," in param.metavar)


def _complete_gpus(ctx, param, incomplete):
    return _complete({**{n: g.source.split(":")[0] for n, g in units.GPUS.items()},
                      **{a: f"alias of {n}" for a, n in units.GPU_ALIASES.items()}}, incomplete)


def _law_help(many: bool):
    def text():
        from . import laws

        aliases = getattr(laws, "ALIASES", {})
        several = "; several joined by commas give rows per law, with a law column" if many else ""
        alias_text = f"; aliases: {', '.join(f'{a} = {n}' for a, n in aliases.items())}" if aliases else ""
        return (f"Law preset, any case (default: {laws.DEFAULT_LAW}){several}: {', '.join(laws.PRESETS)}"
                f"{alias_text}. See `scalesweep laws`.")

    return text


def _check_laws_from_env(ctx, param, value):
    """A law named by SCALESWEEP_LAW is checked as it is read, so that an error names the variable."""
    if value is not None and ctx.get_parameter_source(param.name) is ParameterSource.ENVIRONMENT:
        from .laws import as_laws

        as_laws(value)
    return value


def _check_gpu(ctx, param, value):
    """A GPU given on the command line is checked as it is read; one from SCALESWEEP_GPU only once it is used
    (``_take_hardware``: it gives way to --peak-tflops and to a partitioned frontier)."""
    if value is not None and ctx.get_parameter_source(param.name) is not ParameterSource.ENVIRONMENT:
        units.gpu_preset(value, ctx.params.get("hardware_file"))  # --hardware-file is eager: read before
    return value


def _set_threads(ctx, param, value):
    if value is not None:
        from .api import set_threads

        set_threads(value)
        LOG.debug("numba threads: %d", value)
    return value


def _set_max_rows(ctx, param, value):
    if value is not None:
        set_max_rows(value)
        ctx.call_on_close(lambda: set_max_rows(None))
    return value


def _from_env(name: str) -> bool:
    """Whether the value of option ``name`` of the running command came from its environment variable."""
    ctx = click.get_current_context()
    return ctx.get_parameter_source(name) is ParameterSource.ENVIRONMENT


# ------------------------------------------------------------------------------------------- the group

GROUP_OPTIONS = ("-q", "--quiet", "-v", "--verbose", "--max-rows")  # options of scalesweep itself


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="scalesweep")
@click.option("-q", "--quiet", is_flag=True, help="Warnings and errors only: no status lines or progress.")
@click.option("-v", "--verbose", is_flag=True, help="Details too: threads, chunks, compiles, timings.")
@click.option("--max-rows", type=_Size("int"), default=None, expose_value=False, callback=_set_max_rows,
              is_eager=True, metavar="N", cls=_Option, envvar=MAX_ROWS_ENV, show_envvar=True,
              help="Refuse requests of more rows than this (default 1e10). Requests held in memory are also "
                   "checked against the memory available.")
def cli(quiet, verbose):
    """Compute-optimal sweeps over neural scaling laws (Kaplan 2020, Chinchilla 2022, ...).

    Ranges are written LO:HI:COUNT (log-spaced, inclusive). Counts of parameters, tokens and FLOPs take
    suffixes K, M, B, T (thousand, million, billion, trillion; any case): 350M, 7B, 1.5T, 1B:70B:10.
    Losses are in nats/token; compute is C = 6*N*D FLOPs. Tables print to stdout (or -o FILE: parquet, csv,
    jsonl, json, arrow by suffix); messages go to stderr.
    """
    _log_level(quiet, verbose)


def command_line() -> str:
    return " ".join(["scalesweep", *sys.argv[1:]])


# ------------------------------------------------------------------------------------------- options


_CLICK_TYPES = {"pos": float, "int": int, "fraction": float, "nonneg": float, "name": str}
_CLASS_SECTIONS = {opts.Constraints: "Limits", opts.Hardware: "Hardware", opts.Workload: "Data and inference",
                   opts.Shape: "Model"}
# What the command line adds to a field: an environment default, a check as it is read, completion.
_FIELD_CLI = {"gpu": dict(envvar=GPU_ENV, show_envvar=True, callback=_check_gpu, shell_complete=_complete_gpus,
                          metavar="NAME"),
              # read before --gpu, which may name a part the file defines
              "hardware_file": dict(is_eager=True, metavar="FILE")}


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
            kind = _Size(md["rule"]) if md["size"] else _CLICK_TYPES[md["rule"]]
            f = _opt(_CLASS_SECTIONS[cls], opts.flag(fld.name), fld.name, type=kind, default=None, help=help_,
                     **_FIELD_CLI.get(fld.name, {}))(f)
        return f

    return decorate


def _take(cls, kwargs: dict):
    """Build an option object from the command's keyword arguments, removing its fields from them."""
    return cls(**{fld.name: kwargs.pop(fld.name) for fld in fields(cls)})


def _take_hardware(kwargs: dict, partitioned: bool = False):
    """The Hardware options. A GPU from SCALESWEEP_GPU gives way to --peak-tflops (a custom GPU) and to a
    partitioned frontier (which takes no hardware)."""
    if _from_env("gpu"):
        if kwargs["peak_tflops"] is not None or partitioned:
            kwargs["gpu"] = None
        else:
            try:
                units.gpu_preset(kwargs["gpu"], kwargs.get("hardware_file"))
            except ScalesweepError as exc:
                raise ScalesweepError(f"{GPU_ENV}={kwargs['gpu']!r} (the default of --gpu): {exc}") from None
    return _take(opts.Hardware, kwargs)


def _threads_option(f):
    return _opt("Scale-out", "--threads", type=int, default=None, expose_value=False, callback=_set_threads,
                envvar=THREADS_ENV, show_envvar=True,
                help="Numba threads (default: all cores). Results are identical for any count.")(f)


def _runs_columns(f):
    """--params-column, --tokens-column, --flops-column, --loss-column, handed on as one ``columns`` dict of
    fit.read_runs's keywords."""
    @functools.wraps(f)
    def command(*args, params_column, tokens_column, flops_column, loss_column, **kwargs):
        return f(*args, columns=dict(params_column=params_column, tokens_column=tokens_column,
                                     flops_column=flops_column, loss_column=loss_column), **kwargs)

    for decorate in (
        _opt("Input", "--loss-column", default="loss", show_default=True),
        _opt("Input", "--flops-column", default=None,
             help="Use flops instead of tokens (tokens = flops / (6 params))."),
        _opt("Input", "--tokens-column", default=None, help="Tokens column [default: tokens]."),
        _opt("Input", "--params-column", default="params", show_default=True),
    ):
        command = decorate(command)
    return command


def _unique_tokens_option(f):
    return _opt("Input", "--unique-tokens-column", default=None,
                help="Each run's unique tokens (U_D; tokens > U_D: repeated epochs; inf: unlimited), for the "
                     "data_constrained family.")(f)


def _law_options(many: bool = False):
    def decorate(f):
        f = _threads_option(f)
        f = _opt("Law", "--set", "overrides", multiple=True, metavar="NAME=VALUE",
                 help="Override a law parameter, e.g. --set alpha=0.35 (repeatable).")(f)
        f = _opt("Law", "--law-file", type=click.Path(dir_okay=False), default=None,
                 help="Law from a JSON or TOML file (family + parameters, or preset + overrides).")(f)
        return _opt("Law", "--law", default=None, metavar="NAME[,NAME...]" if many else "NAME", help_fn=_law_help(many),
                    envvar=LAW_ENV, show_envvar=True, callback=_check_laws_from_env, shell_complete=_complete_laws)(f)

    return decorate


def _set_compression(ctx, param, value):
    from .output import set_compression

    if value is not None:
        set_compression(value)
        ctx.call_on_close(lambda: set_compression(None))
    return value


def _set_columns(ctx, param, value):
    from .output import set_columns

    if value is not None:
        set_columns(value.split(","))
        ctx.call_on_close(lambda: set_columns(None))
    return value


def _set_float_dtype(ctx, param, value):
    from .output import set_float_dtype

    if value is not None:
        set_float_dtype(value)
        ctx.call_on_close(lambda: set_float_dtype(None))
    return value


def _dtype_option(f):
    return _opt("Output", "--dtype", type=click.Choice(FLOAT_DTYPES), default=None, expose_value=False,
                callback=_set_float_dtype, is_eager=True,
                help="float32 writes computed float columns in half the bytes, rounded to nearest; what you gave "
                     "(budgets, target losses, a surface's axes, a sweep's spec fields) stays float64 "
                     "[default: float64].")(f)


def _output_option(required: bool = False, help_: str | None = None):
    def decorate(f):
        f = _dtype_option(f)
        f = _opt("Output", "--columns", default=None, expose_value=False, callback=_set_columns, is_eager=True,
                 metavar="NAME[,NAME...]", help="Write only these columns, in this order (single-file outputs; "
                 "unknown names are refused with the list of columns) [default: all].")(f)
        f = _opt("Output", "--compression", type=click.Choice(COMPRESSIONS), default=None, expose_value=False,
                 callback=_set_compression, is_eager=True,
                 help=f"Parquet compression codec [default: {DEFAULT_COMPRESSION}; zstd writes 16-34% smaller "
                      "files, 35-70% slower].")(f)
        f = _opt("Output", "--format", "fmt", type=click.Choice(FORMATS), default=None,
                 help="Output format (default: from the -o suffix; on stdout a table on a terminal, CSV "
                      "when piped).")(f)
        return _opt("Output", "-o", "--output", required=required, type=click.Path(), default=None,
                    help=help_ or "File to write (.parquet, .csv, .jsonl, .json, .arrow); - or none: stdout.")(f)

    return decorate


def _engine_options(f):
    """Scale-out options shared by surface, frontier, scenarios and lookup build."""
    f = _opt("Scale-out", "--partition-rows", type=_Size("int"), default=None, metavar="N",
             help="Write a partitioned dataset (a directory of Parquet parts) of about this many rows per "
                  "part (1M is a million); resumable.")(f)
    f = _opt("Scale-out", "--workers", type=click.IntRange(1), default=None,
             help="--engine dask: start a LocalCluster with this many worker processes.")(f)
    f = _opt("Scale-out", "--scheduler", default=None, metavar="ADDRESS",
             help="--engine dask: join the cluster at this scheduler address.")(f)
    f = _opt("Scale-out", "--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
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
    from .output import columns_given, float_dtype

    if columns_given():  # parts are verified against the job's whole schema when a run resumes
        raise click.UsageError("--columns applies to single-file outputs, not to partitioned datasets")
    if float_dtype() == "float32" and job.kind not in ("surface", "scenarios"):
        raise click.UsageError(f"--dtype float32 applies to single files, and to partitioned surfaces and "
                               f"scenarios, not to a partitioned {job.kind}")

    if engine == "dask":
        with dataset.dask_client(scheduler, workers) as client, _progress("parts", job.kind) as progress:
            summary = dataset.run(job, output, engine="dask", client=client, progress=progress)
    else:
        with _progress("parts", job.kind) as progress:
            summary = dataset.run(job, output, engine="local", progress=progress)
    _warn_recomputed(summary.get("recomputed", []), output)
    reused = f", {summary['reused']} already there" if summary["reused"] else ""
    talk(f"wrote {summary['rows']:,} rows as {summary['parts']} parts in {str(output).rstrip('/')}/ "
         f"({summary['computed']} computed{reused}, {engine}) in {summary['seconds']:.2f} s")
    return summary


def _warn_recomputed(names, output) -> None:
    """Name the parts of a resumed dataset that failed verification and were computed again."""
    if names:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        were = "were" if len(names) != 1 else "was"
        where = str(output).rstrip("/")
        warn(f"{len(names)} part{'s' if len(names) != 1 else ''} in {where}/ failed verification and "
             f"{were} recomputed: {shown}")


def _numbers(text: str, option: str, sizes: bool = False) -> list[float]:
    """A comma-separated list of numbers, e.g. ``--flops 1e23,3e23`` (or, with ``sizes``, ``--flops 6e23,1T``);
    one line naming the bad entry."""
    out = []
    for part in str(text).split(","):
        try:
            out.append(parse_size(part) if sizes else float(part))
        except ValueError:
            hint = f" ({SIZE_HINT})" if sizes else ""
            raise ScalesweepError(f"{option}: {clip(part.strip())} is not a number{hint}") from None
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


def _resolve(law, law_file, overrides, *, many: bool = False):
    """The law (or laws, with ``many``) that ``--law``, ``--law-file`` and ``--set`` name; a law from
    SCALESWEEP_LAW gives way to --law-file."""
    from .laws import as_laws, parse_assignments, resolve_law

    if law_file is not None and _from_env("law"):
        law = None
    if many and law is not None and "," in law:
        if law_file is not None or overrides:
            raise ScalesweepError("several laws in --law take neither --law-file nor --set")
        return as_laws(law)
    found = resolve_law(law, law_file, parse_assignments(overrides))
    return [found] if many else found


def _progress(unit: str = "rows", what: str = "", output=None):
    """The progress reporter of a long command (``progress.Progress``: rate and time left on a terminal, a log
    line every few seconds elsewhere, nothing with -q); use it as a context manager, which ends its line. A
    table printed to a terminal (``output`` stdout) gets none: the two would interleave."""
    import contextlib

    from .output import STDOUT
    from .progress import Progress

    if output in (None, STDOUT) and sys.stdout.isatty():
        return contextlib.nullcontext(lambda done, total=None: None)
    return Progress(unit, what)


def _check_target(output, fmt, *inputs):
    """Before computing: the format is known and the file can be written (stdout always can), and it is none
    of the command's ``inputs``."""
    from .output import STDOUT, check_target, compression_given, resolve_format

    if output is not None and output != STDOUT:
        check_target(output, inputs)
    fmt = resolve_format(output, fmt)
    if compression_given() and fmt != "parquet":
        raise click.UsageError(f"--compression applies to Parquet output, not {fmt}")
    return fmt


# A frontier's budgets as given (and as spent, when a time limit caps them): float64 under --dtype float32.
BUDGET_COLUMNS = ("flops", "budget_flops")


def _narrowed(table, keep=()):
    """``table`` under ``--dtype``: float32 narrows its float columns but those in ``keep``, the values the user
    gave (``tables.narrow``)."""
    from .output import float_dtype
    from .tables import narrow

    return narrow(table, keep) if float_dtype() == "float32" else table


def _emit(table, output, fmt, noun: str, keep=()) -> None:
    """Write a result table to ``output`` (or stdout) and say so on stderr when it went to a file; ``keep``: the
    float columns ``--dtype float32`` leaves as given."""
    from .output import STDOUT, write_table

    write_table(output, _narrowed(table, keep), fmt)
    if output is not None and output != STDOUT:
        talk(f"wrote {table.num_rows:,} {noun} to {output}")


def _emit_stream(tables, output, fmt, noun: str, total: int, keep=()) -> dict:
    """Write a stream of (table, infeasible counts) as one output (the first table's schema and metadata), the
    next table computed while one is encoded (``pipeline.overlapped``); returns the infeasible counts summed.
    Progress on stderr."""
    import itertools

    from .output import STDOUT, table_writer
    from .pipeline import overlapped

    counts: dict = {}
    rows = 0
    first = next(tables)
    with table_writer(output, _narrowed(first[0].slice(0, 0), keep).schema, fmt) as w, \
            _progress(noun, output=output) as progress:
        def write(item):
            nonlocal rows
            table, infeasible = item
            w.write(table)
            rows += table.num_rows
            LOG.debug("wrote a chunk of %s %s (%s of %s)", f"{table.num_rows:,}", noun, f"{rows:,}", f"{total:,}")
            for reason, c in infeasible.items():
                counts[reason] = counts.get(reason, 0) + c
            progress(rows, total)

        # narrowed by the producer, which otherwise waits for the writer
        overlapped(((_narrowed(t, keep), counted) for t, counted in itertools.chain([first], tables)), write)
    if output not in (None, STDOUT):
        talk(f"wrote {rows:,} {noun} to {output}")
    return dict(sorted(counts.items(), key=lambda t: -t[1]))


def _warn_infeasible(counts: dict, total: int, noun: str) -> None:
    if counts:
        n = sum(counts.values())
        why = ", ".join(f"{c:,} {reason}" for reason, c in counts.items())
        warn(f"{n:,} of {total:,} {noun} are infeasible (feasible=false): {why}")


# ------------------------------------------------------------------------------------------- commands


@cli.command(kernels=False, examples=["scalesweep laws", "scalesweep laws --json"])
@_opt("Output", "--json", "as_json", is_flag=True, help="Machine-readable output (strict JSON; infinity as \"inf\").")
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


@cli.command(examples=[
    "scalesweep surface --params-range 10M:1T:200 --tokens-range 1B:100T:200 -o surface.parquet",
    "scalesweep surface --params-range 100M:100B:50 --flops-range 1e20:1e24:5 --format csv",
    "scalesweep surface --params-range 10M:1T:2000 --tokens-range 1B:100T:2000 --partition-rows 1M -o surface/"])
@_law_options()
@_opt("Grid", "--params-range", required=True, metavar="LO:HI:COUNT", help="Model sizes N (parameters).")
@_opt("Grid", "--tokens-range", default=None, metavar="LO:HI:COUNT", help="Training tokens D (grid form).")
@_opt("Grid", "--flops-range", default=None, metavar="LO:HI:COUNT",
      help="Budgets C (IsoFLOP form: tokens = C/(6N)). Give this or --tokens-range.")
@_output_option(help_="File to write (a directory with --engine dask or --partition-rows); - or none: stdout.")
@_engine_options
def surface(law, law_file, overrides, params_range, tokens_range, flops_range, output, fmt, engine,
            scheduler, workers, partition_rows):
    """Loss over a params x tokens grid (or IsoFLOP slices), streamed in bounded memory.

    Columns: params, tokens, flops (= 6*params*tokens), loss.
    """
    from .grid import parse_range
    from .output import float_dtype

    dtype = float_dtype()
    the_law = _resolve(law, law_file, overrides)
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
    from . import surfaces

    fmt = _check_target(output, fmt, law_file)
    with _progress("rows", "surface", output) as progress:
        summary = surfaces.write(output, the_law, n, tokens=d, flops=c, dtype=dtype, fmt=fmt, grid=grid,
                                 command_line=command_line(), progress=progress)
    if output not in (None, "-"):
        talk(f"wrote {summary['rows']:,} rows to {output} in {summary['seconds']:.2f} s")


@cli.command(examples=[
    "scalesweep frontier --flops-range 1e20:1e24:5",
    "scalesweep frontier --law besiroglu2024 --flops-range 1e22:1e26:9 --max-params 70B --max-tokens 1.5T -o f.parquet",
    "scalesweep frontier --flops-range 1e21:1e24:4 --min-params 7B --max-params 7B",
    "scalesweep frontier --flops-range 1e4:1e6:3 --unit gpu_hours --gpu H100 --gpus 512 --usd-per-gpu-hour 2.5",
    "scalesweep frontier --law hoffmann2022,kaplan2020 --flops-file budgets.csv -o f.csv"])
@_law_options(many=True)
@_opt("Budget", "--flops-range", default=None, metavar="LO:HI:COUNT", help="Budgets (in --unit, default FLOPs).")
@_opt("Budget", "--flops-file", type=click.Path(dir_okay=False), default=None,
      help="Budgets from a CSV or Parquet file (column 'flops', or the only column).")
@_opt("Budget", "--flops-column", default=None, help="Column of --flops-file to read.")
@_opt("Budget", "--unit", type=click.Choice(list(opts.BUDGET_UNITS)), default="flops", show_default=True,
      help="Unit of the budgets (gpu_hours and usd need a GPU; days needs a GPU and --gpus).")
@_options_from(opts.Constraints)
@_options_from(opts.Hardware)
@_opt("Hardware", "--energy", is_flag=True,
      help="Add energy_kwh (and co2_t with --grid-gco2-per-kwh) with the default power fraction and PUE.")
@_options_from(opts.Shape)
@_opt("Model", "--shapes", is_flag=True,
      help="Add the shape columns (n_layer, d_model, n_heads, non_embedding_params, embedding_params) with the "
           "default vocabulary, context and aspect ratio.")
@_options_from(opts.Workload)
@_opt("Solver", "--solver", type=click.Choice(["auto", "newton", "newton-midpoint"]), default="auto",
      show_default=True, help="auto: exact closed form where the family has one, else Newton.")
@_opt("Solver", "--overfit-penalty", "overfit", is_flag=True,
      help="Add Kaplan's overfitting measure dL(N, D) (Eq. 4.3) as a column.")
@_opt("Solver", "--convergence-gap", is_flag=True,
      help="Add loss / L(N, inf) - 1: how far above the converged loss of its size each row stops (Kaplan Eq. B.5).")
@_opt("Solver", "--loss-law", default=None, metavar="NAME", shell_complete=_complete_laws,
      help="Evaluate the loss of an allocation-rule law (deepseek2024, ...) with this loss law.")
@_opt("Solver", "--bands", default=None, metavar="Q[,Q...]",
      help="Percentile bands over the bootstrap samples of a --law-file written by `fit --bootstrap`.")
@_output_option(help_="File to write (a directory with --engine dask or --partition-rows); - or none: stdout.")
@_engine_options
def frontier(law, law_file, overrides, flops_range, flops_file, flops_column, unit, solver, overfit, loss_law,
             bands, energy, shapes, convergence_gap, output, fmt, engine, scheduler, workers, partition_rows,
             **kwargs):
    """Compute-optimal params and tokens per budget, under constraints.

    Fixed-size questions are the same solve with equal bounds: --min-params 7B --max-params 7B gives the
    tokens (and loss) a 7B model gets from each budget. With a GPU (--gpu, --mfu) every row also reports
    gpu_hours; with --gpus wall_days, with --usd-per-gpu-hour usd. Infeasible rows say why in
    infeasible_reason.
    """
    from . import questions
    from .grid import parse_range
    from .laws import as_law
    from .readers import read_flops_file

    laws_ = _resolve(law, law_file, overrides, many=True)
    partitioned = engine == "dask" or partition_rows is not None
    cons, hw = _take(opts.Constraints, kwargs), _take_hardware(kwargs, partitioned)
    wl, shape = _take(opts.Workload, kwargs), _take(opts.Shape, kwargs)
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
        if (opts.given(hw) or opts.given(wl) or opts.given(shape) or energy or shapes or convergence_gap
                or unit != "flops" or bands or loss_law or overfit or len(laws_) > 1):
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
               loss_law=None if loss_law is None else as_law(loss_law), energy=energy, shape=shape, shapes=shapes,
               convergence_gap=convergence_gap)
    _float32_budgets(budgets, unit)
    if bands is None:  # streamed: memory bounded by the chunk
        check_size("frontier", rows)
        tables = questions.frontier_tables(laws_, budgets, grid=grid, command_line=command_line(), **ask)
        _warn_infeasible(_emit_stream(tables, output, fmt, "budgets", rows, BUDGET_COLUMNS), rows, "budgets")
        return
    check_size("frontier with --bands", rows, bytes_held=BYTES_PER_ROW_HELD * rows)
    budgets = budgets if flops_file else budgets.values()
    res = questions.frontier(laws_, budgets, **ask)
    table = _with_bands(res.table(res.metadata("frontier", grid, command_line())), bands, law_file, overrides, solver,
                        cons, hw, wl)
    _emit(table, output, fmt, "budgets", BUDGET_COLUMNS)
    _warn_infeasible(res.infeasible(), res.rows, "budgets")


def _float32_budgets(budgets, unit: str) -> None:
    """Under --dtype float32, refuse before anything is written budgets whose parameters or tokens (up to C/6
    each) float32 cannot hold, rather than stop a stream part-way (stdout cannot be taken back)."""
    import numpy as np

    from .output import float_dtype
    from .tables import FLOAT32_MAX

    if float_dtype() != "float32" or unit != "flops":
        return
    values = np.asarray(budgets.hi if hasattr(budgets, "hi") else budgets, dtype=np.float64)
    top = float(np.max(values, where=np.isfinite(values), initial=0.0))
    if top > 6 * FLOAT32_MAX:
        raise click.UsageError(f"--dtype float32: a budget of {top:g} FLOPs may give parameters or tokens beyond "
                               f"float32's largest, {FLOAT32_MAX:.9g}; give --dtype float64")


def _with_bands(table, bands, law_file, overrides, solver, cons, hw, wl):
    """Percentile bands over a law file's bootstrap samples, as extra columns of a frontier table (the
    frontier limits apply to every sample; limits from hardware or data would not, so they are refused)."""
    from .api import frontier_bands
    from .tables import append_frame
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
    with _progress("budgets", "bands") as progress:
        b = frontier_bands(samples, family, table.column("flops").to_numpy(), qs, solver=solver, progress=progress,
                           **cons.as_dict())
    return append_frame(table, b.drop(columns="flops"))


@cli.command("target-loss", examples=[
    "scalesweep target-loss --loss 2.2,2.0,1.9",
    "scalesweep target-loss --loss 2.0 --inference-tokens 10T",
    "scalesweep target-loss --loss 2.0 --max-params 70B --gpu H100 --gpus 1024 -o t.parquet"])
@_law_options(many=True)
@_opt("Budget", "--loss", "losses", required=True, metavar="L[,L...]",
      help="Target loss(es), nats/token, comma-separated.")
@_options_from(opts.Constraints)
@_options_from(opts.Hardware)
@_opt("Hardware", "--energy", is_flag=True,
      help="Add energy_kwh (and co2_t with --grid-gco2-per-kwh) with the default power fraction and PUE.")
@_options_from(opts.Workload)
@_output_option()
def target_loss_cmd(law, law_file, overrides, losses, energy, output, fmt, **kwargs):
    """The least compute that reaches a target loss: params, tokens and FLOPs.

    With --inference-tokens it minimises lifetime compute 6ND + 2N*D_inf (Sardana et al. 2024). Targets at
    or below the law's irreducible loss, or out of reach under the constraints, are flagged
    feasible=false with the reason (and a warning), not errors.
    """
    from . import questions
    from .validate import positive_array

    laws_ = _resolve(law, law_file, overrides, many=True)
    cons, hw, wl = _take(opts.Constraints, kwargs), _take_hardware(kwargs), _take(opts.Workload, kwargs)
    targets = positive_array(_numbers(losses, "--loss"), "--loss")
    fmt = _check_target(output, fmt, law_file)
    res = questions.target_loss(laws_, targets, constraints=cons, hardware=hw, workload=wl, energy=energy)
    _emit(res.table(res.metadata("target-loss", {"loss": losses}, command_line())), output, fmt, "targets",
          ("target_loss",))
    _warn_infeasible(res.infeasible(), res.rows, "targets")


@cli.command(examples=[
    "scalesweep scenarios sweep.yaml -o results.parquet",
    "scalesweep scenarios runs.csv --format csv > results.csv",
    "scalesweep scenarios sweep.yaml --engine dask --scheduler tcp://head:8786 -o results/"])
@click.argument("spec", type=click.Path(dir_okay=False))
@_output_option(help_="File to write (a directory with --engine dask or --partition-rows); - or none: stdout.")
@_threads_option
@_engine_options
def scenarios(spec, output, fmt, engine, scheduler, workers, partition_rows):
    """Solve many scenarios at once: SPEC is a table (.csv/.parquet, one scenario per row) or a sweep
    spec (.yaml/.toml) whose lists expand as a cartesian product.

    Fields: law (law.NAME overrides a parameter), one budget (flops, pf_days, gpu_hours, usd, days with
    gpus, or target_loss), gpu, peak_tflops, gpu_memory_gb, mfu, gpus, usd_per_gpu_hour, bytes_per_param,
    max_days, unique_tokens, inference_tokens and the frontier limits. See the README for defaults.
    """
    from . import scenarios as sc
    from .output import float_dtype

    dtype = float_dtype()
    if _partitioned(engine, scheduler, workers, partition_rows, output):
        if fmt not in (None, "parquet"):
            raise click.UsageError("a partitioned dataset is written as Parquet parts")
        job = sc.job(spec, partition_rows=partition_rows or sc.CHUNK_ROWS, command_line=command_line(), dtype=dtype)
        summary = _run_dataset(job, output, engine, scheduler, workers)
        _warn_infeasible(summary["infeasible"], summary["rows"], "scenarios")
        return
    fmt = _check_target(output, fmt, spec)
    loaded = sc.load_spec(spec)
    to_file = output not in (None, "-")
    with _progress("rows", "scenarios", output) as progress:
        summary = sc.run(loaded, output, fmt=fmt, command_line=command_line(), progress=progress, dtype=dtype)
    if to_file:
        talk(f"wrote {summary['rows']:,} scenarios to {output} in {summary['seconds']:.2f} s "
             f"({summary['feasible']:,} feasible)")
    _warn_infeasible(summary["infeasible"], summary["rows"], "scenarios")


@cli.command("fit", examples=[
    "scalesweep fit runs.csv -o law.json",
    "scalesweep fit runs.parquet -o law.json --method vp --flops-column compute",
    "scalesweep fit runs.csv -o law.json --bootstrap 1000 --seed 0",
    "scalesweep fit runs.csv -o law.json --estimator huber-likelihood --holdout-top 10",
    "scalesweep fit data/example_multi_epoch_runs.csv -o law.json --family data_constrained "
    "--unique-tokens-column unique_tokens --base-law muennighoff2023"])
@click.argument("runs", type=click.Path(dir_okay=False))
@_opt("Output", "-o", "--output", required=True, type=click.Path(dir_okay=False),
      help="Law file (JSON) to write; - prints it.")
@_opt("Fit", "--family", default="chinchilla", show_default=True,
      help="Family to fit (those whose answers include fit in `scalesweep laws`).")
@_opt("Fit", "--method", type=click.Choice(["lbfgs", "vp"]), default=None,
      help="lbfgs: Huber multi-start (Hoffmann/Besiroglu); vp: variable projection (chinchilla) [default: lbfgs, "
           "or the --estimator's].")
@_opt("Fit", "--objective", type=click.Choice(["huber", "lad"]), default=None,
      help="Loss on log residuals (lbfgs): Huber, or least absolute deviation [default: huber].")
@_opt("Fit", "--estimator", type=click.Choice(["huber", "lad", "huber-likelihood", "ls-vp", "huber-vp"]),
      default=None, help="The estimator, in place of --method/--objective: huber, lad, huber-likelihood (Epoch's "
      "scale-adjusted Huber likelihood, sigma fitted), ls-vp (least squares, variable projection), huber-vp "
      "(Huber on relative residuals, variable projection) [default: huber].")
@_opt("Fit", "--delta", type=float, default=None,
      help="Huber delta (huber; in units of sigma for huber-likelihood; of the relative residual for huber-vp) "
           "[default: 1e-3].")
@_opt("Fit", "--asymmetry", type=float, default=None,
      help="Weight factor on runs the law over-predicts (huber, lad) [default: 1].")
@_opt("Fit", "--exclude-highest", type=int, default=0, show_default=True, help="Leave out the k highest-loss runs.")
@_opt("Fit", "--base-law", default=None, metavar="NAME|FILE",
      help="data_constrained: hold E, A, B, alpha, beta at this law's values (a preset, or a .json/.toml law file) "
           "and fit only R_D* and R_N* [default: fit all seven].")
@_opt("Fit", "--grid", "grid_items", multiple=True, metavar="NAME=V1,V2,...",
      help="Replace one axis of the start grid (chinchilla: a, b, e, alpha, beta; kaplan: ln_N_c, ln_D_c, "
           "alpha_N, alpha_D; data_constrained: chinchilla's and ln_R_D_star, ln_R_N_star). Repeatable.")
@_opt("Fit", "--search", type=click.Choice(["screened", "full"]), default=None,
      help="screened: run the starts best-first in batches until the best basin is found again; full: every "
           "start of the grid (lbfgs) [default: screened].")
@_opt("Fit", "--bootstrap", type=int, default=0, show_default=True, help="Resamples for uncertainty (0: none).")
@_opt("Fit", "--bootstrap-start", type=click.Choice(["optimum", "grid"]), default=None,
      help="Refit each resample from the full-data optimum, or by the whole grid search (lbfgs); needs "
           "--bootstrap [default: optimum].")
@_opt("Fit", "--seed", type=int, default=None, help="Seed of the bootstrap; needs --bootstrap [default: 0].")
@_opt("Validation", "--holdout-top", type=int, default=0, show_default=True,
      help="Fit on all but the K largest budgets (6ND) and report the error extrapolating to them.")
@_opt("Validation", "--cv", type=click.Choice(["budgets"]), default=None,
      help="Leave-one-budget-out cross-validation table (in the law file).")
@_opt("Input", "--weights-column", default=None, help="Per-run weights from this column [default: all 1].")
@_unique_tokens_option
@_runs_columns
@_threads_option
def fit_cmd(runs, output, family, method, objective, estimator, delta, asymmetry, exclude_highest, base_law,
            grid_items, search, bootstrap, bootstrap_start, seed, holdout_top, cv, weights_column,
            unique_tokens_column, columns):
    """Fit a law to your own training runs (CSV or Parquet: params, tokens or flops, loss; for data_constrained
    also each run's unique tokens).

    Writes a law file every other command reads with --law-file.
    """
    from . import fit as F
    from .output import STDOUT, check_target

    F.check_law_path(output)
    if output != STDOUT:
        check_target(output, (runs,))
    grid = F.parse_grid(family, grid_items)
    n, d, y = F.read_runs(runs, **columns)
    weights = F.read_weights(runs, weights_column) if weights_column is not None else None
    unique = F.read_unique_tokens(runs, unique_tokens_column) if unique_tokens_column is not None else None
    with _progress("refits", "bootstrap") as progress:
        res = F.fit(n, d, y, family=family, method=method, estimator=estimator, delta=delta, objective=objective,
                    asymmetry=asymmetry, exclude_highest=exclude_highest, weights=weights, grid=grid, search=search,
                    bootstrap=bootstrap, bootstrap_start=bootstrap_start, seed=seed, holdout_top=holdout_top, cv=cv,
                    progress=progress, unique_tokens=unique, base_law=base_law)
    res.info["runs_file"] = str(runs)
    if weights_column is not None:
        res.info["weights_column"] = weights_column
    if unique_tokens_column is not None:
        res.info["unique_tokens_column"] = unique_tokens_column
    F.write_law_file(output, res)
    for line in res.summary_lines():
        talk(line)
    if output != STDOUT:
        talk(f"wrote {output}")


@cli.command("fit-compare", examples=[
    "scalesweep fit-compare runs.csv",
    "scalesweep fit-compare runs.csv --families chinchilla,kaplan --holdout-top 10 -o compare.csv"])
@click.argument("runs", type=click.Path(dir_okay=False))
@_opt("Fit", "--families", default="chinchilla", show_default=True, metavar="A,B,...", help="Families to fit.")
@_opt("Fit", "--estimators", default="huber,huber-likelihood,ls-vp,huber-vp", show_default=True, metavar="A,B,...",
      help="Estimators to compare (those a family cannot use are skipped).")
@_opt("Fit", "--delta", type=float, default=None, help="Huber delta of the Huber estimators [default: 1e-3].")
@_opt("Fit", "--exclude-highest", type=int, default=0, show_default=True, help="Leave out the k highest-loss runs.")
@_opt("Fit", "--grid", "grid_items", multiple=True, metavar="NAME=V1,V2,...",
      help="Replace one axis of the start grid of the lbfgs estimators (one family only). Repeatable.")
@_opt("Fit", "--search", type=click.Choice(["screened", "full"]), default=None,
      help="Search of the lbfgs estimators [default: screened].")
@_opt("Validation", "--holdout-top", type=int, default=0, show_default=True,
      help="Fit each on all but the K largest budgets (6ND) and report the extrapolation error.")
@_opt("Input", "--weights-column", default=None, help="Per-run weights from this column [default: all 1].")
@_unique_tokens_option
@_runs_columns
@_output_option()
@_threads_option
def fit_compare_cmd(runs, families, estimators, delta, exclude_highest, grid_items, search, holdout_top,
                    weights_column, unique_tokens_column, columns, output, fmt):
    """Fit several families and estimators to the same runs and compare them: objective, Gaussian log-likelihood
    of the log residuals, AIC, the estimator's own log-likelihood, held-out errors."""
    from . import fit as F
    from .laws import FAMILIES
    from .tables import frame_to_arrow, metadata

    fmt = _check_target(output, fmt, runs)
    fams = [x.strip() for x in families.split(",") if x.strip()]
    ests = [x.strip() for x in estimators.split(",") if x.strip()]
    per_run = [f for f in fams if f in FAMILIES and FAMILIES[f].unique_tokens_param is not None]
    if per_run and unique_tokens_column is None:
        raise click.UsageError(f"{per_run[0]} needs each run's unique tokens: give --unique-tokens-column")
    if grid_items and len(fams) != 1:
        raise click.UsageError("--grid needs exactly one family in --families (start grids differ by family)")
    grid = F.parse_grid(fams[0], grid_items) if grid_items else None
    n, d, y = F.read_runs(runs, **columns)
    weights = F.read_weights(runs, weights_column) if weights_column is not None else None
    unique = F.read_unique_tokens(runs, unique_tokens_column) if unique_tokens_column is not None else None
    df = F.fit_compare(n, d, y, families=fams, estimators=ests, holdout_top=holdout_top, delta=delta,
                       exclude_highest=exclude_highest, weights=weights, grid=grid, search=search,
                       unique_tokens=unique)
    meta = metadata("fit-compare", runs_file=str(runs), families=fams, estimators=ests, holdout_top=holdout_top,
                    rows=len(df), command_line=command_line())
    _emit(frame_to_arrow(df, meta), output, fmt, "fits")


def _approach_options(f):
    """-o, --table (and its --dtype), --bootstrap, --seed and --level: what fit-isoflop and fit-envelope share."""
    for decorate in (
        _dtype_option,
        _opt("Fit", "--level", type=float, default=0.8, show_default=True,
             help="Coverage of the bootstrap intervals (0.8: the 10th-90th percentiles, as Hoffmann et al. Table 2)."),
        _opt("Fit", "--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap."),
        _opt("Fit", "--bootstrap", type=int, default=1000, show_default=True,
             help="Resamples of the runs for the intervals (0: none)."),
        _opt("Output", "--table", default=None, type=click.Path(dir_okay=False),
             help="Also write the per-budget (per-point) table: .parquet, .csv, .jsonl, .json or .arrow; - prints it."),
        _opt("Output", "-o", "--output", required=True, type=click.Path(dir_okay=False),
             help="Law file (JSON, family allocation_rule) to write; - prints it. Read it with --law-file."),
    ):
        f = decorate(f)
    return f


def _report_approach(res, output, table, fmt, command: str, noun: str) -> None:
    """Write the law file (and the table), then say what was fitted, with the warnings, on stderr."""
    from .output import STDOUT
    from .tables import frame_to_arrow, metadata

    res.write_law_file(output)

    def iv(key: str) -> str:
        lo, hi = res.intervals[key]
        return "" if lo != lo else f" [{lo:.4g}, {hi:.4g}]"

    used = int(res.to_frame()["used"].sum())
    talk(f"N_opt = {res.params_coef:.4g} C^{res.a:.4f}{iv('N_exp')}, D_opt = {res.tokens_coef:.4g} C^{res.b:.4f}"
         f"{iv('D_exp')} (C in FLOPs) from {used} of {len(res.to_frame())} {noun}"
         + (f"; {res.level:.0%} bootstrap intervals of the exponents ({res.info['bootstrap']} resamples, seed "
            f"{res.info['seed']})" if res.samples is not None else ""))
    for line in res.warnings:
        warn(line)
    if table is not None:
        df = res.to_frame()
        meta = metadata(command, law=res.law.to_dict(), fit=res.to_dict()["fit"], rows=len(df),
                        command_line=command_line())
        _emit(frame_to_arrow(df, meta), table, fmt, noun)
    if output != STDOUT:
        talk(f"wrote {output}")


def _check_approach_outputs(runs, output, table):
    """Both targets writable, neither the input nor each other, and not both on stdout; the table's format from
    its suffix."""
    from . import storage
    from .fit import check_law_path
    from .output import STDOUT, check_target

    check_law_path(output)
    if output == STDOUT and table == STDOUT:
        raise click.UsageError("-o - and --table - would both print to stdout: write one of them to a file")
    if output != STDOUT:
        check_target(output, (runs,))
    if table is not None and output != STDOUT and table != STDOUT and storage.same(output, table):
        raise click.UsageError(f"-o and --table name the same file ({output!r}): give the table another name")
    return None if table is None else _check_target(table, None, runs)


@cli.command("fit-isoflop", kernels=False, examples=[
    "scalesweep fit-isoflop data/example_isoflop_runs.csv -o law.json",
    "scalesweep fit-isoflop runs.csv -o law.json --table budgets.parquet --bootstrap 2000 --seed 1",
    "scalesweep fit-isoflop runs.parquet -o law.json --budgets 6e18,1e19,3e19,1e20 --rtol 0.1"])
@click.argument("runs", type=click.Path(dir_okay=False))
@_approach_options
@_opt("Fit", "--budgets", default=None, metavar="C[,C...]",
      help="The budgets the runs were planned at (FLOPs); each run goes to the nearest [default: from the flops "
           "column, else C = 6ND, runs within --rtol of each other forming one budget].")
@_opt("Fit", "--rtol", type=float, default=0.05, show_default=True,
      help="How far (relative) a run's budget may lie from its group's.")
@_opt("Fit", "--exclude-extrapolated", is_flag=True,
      help="Leave budgets whose minimum lies outside the sampled sizes out of the power laws (always flagged).")
@_opt("Input", "--params-column", default="params", show_default=True)
@_opt("Input", "--tokens-column", default=None, help="Tokens column [default: tokens, else flops / (6 params)].")
@_opt("Input", "--flops-column", default=None, help="Budget column [default: flops where there is one, else 6ND].")
@_opt("Input", "--loss-column", default="loss", show_default=True)
def fit_isoflop_cmd(runs, output, table, bootstrap, seed, level, budgets, rtol, exclude_extrapolated, params_column,
                    tokens_column, flops_column, loss_column):
    """Fit N_opt(C) and D_opt(C) to final losses of runs by IsoFLOP profiles (Hoffmann et al. 2022, Approach 2).

    Runs (CSV or Parquet: params, loss, and tokens or flops) are grouped by budget; per budget a parabola in
    log N (and one in log D) gives the optimum, and power laws through the optima give the allocation, with
    bootstrap intervals (runs resampled within each budget). Writes an allocation_rule law file (frontier
    --law-file reads it). A budget whose minimum lies outside its sampled sizes is flagged (extrapolated) and
    warned about.
    """
    from .approaches import isoflop_fit
    from .validate import positive_array

    fmt = _check_approach_outputs(runs, output, table)
    planned = None if budgets is None else positive_array(_numbers(budgets, "--budgets", sizes=True), "--budgets")
    with _progress("refits", "bootstrap") as progress:
        res = isoflop_fit(runs, params_column=params_column, tokens_column=tokens_column, flops_column=flops_column,
                          loss_column=loss_column, budgets=planned, rtol=rtol,
                          exclude_extrapolated=exclude_extrapolated, bootstrap=bootstrap, seed=seed, level=level,
                          progress=progress)
    _report_approach(res, output, table, fmt, "fit-isoflop", "budgets")


@cli.command("fit-envelope", kernels=False, examples=[
    "scalesweep fit-envelope data/example_training_curves.csv -o law.json",
    "scalesweep fit-envelope curves.parquet -o law.json --points 250 --flops-range 1e18:1e21 --table points.csv"])
@click.argument("runs", type=click.Path(dir_okay=False))
@_approach_options
@_opt("Fit", "--points", type=int, default=100, show_default=True, help="Log-spaced FLOPs points of the envelope.")
@_opt("Fit", "--flops-range", default=None, metavar="LO:HI",
      help="FLOPs span of the points [default: first checkpoint of any run to the last of any run].")
@_opt("Fit", "--include-edge", is_flag=True,
      help="Keep points whose envelope is the smallest or largest model covering them (always flagged).")
@_opt("Input", "--run-column", default="run", show_default=True)
@_opt("Input", "--params-column", default="params", show_default=True)
@_opt("Input", "--tokens-column", default="tokens", show_default=True)
@_opt("Input", "--loss-column", default="loss", show_default=True)
def fit_envelope_cmd(runs, output, table, bootstrap, seed, level, points, flops_range, include_edge, run_column,
                     params_column, tokens_column, loss_column):
    """Fit N_opt(C) and D_opt(C) to training curves by their lower envelope (Hoffmann et al. 2022, Approach 1).

    One row per checkpoint (CSV or Parquet: run, params, tokens seen, loss); C = 6ND per checkpoint, each run's
    loss interpolated in log C. At log-spaced FLOPs the run with the least loss gives N; power laws through those
    give the allocation, with bootstrap intervals (runs resampled). Writes an allocation_rule law file (frontier
    --law-file reads it). Points whose envelope is the smallest or largest model there are flagged (edge) and
    left out unless --include-edge.
    """
    from .approaches import envelope_fit

    fmt = _check_approach_outputs(runs, output, table)
    span = None if flops_range is None else _parse_lo_hi(flops_range, "--flops-range", "the count is --points")
    with _progress("resamples", "bootstrap") as progress:
        res = envelope_fit(runs, run_column=run_column, params_column=params_column, tokens_column=tokens_column,
                           loss_column=loss_column, points=points, flops_range=span, include_edge=include_edge,
                           bootstrap=bootstrap, seed=seed, level=level, progress=progress)
    _report_approach(res, output, table, fmt, "fit-envelope", "points")


@cli.command(examples=["scalesweep compare --flops 1e24",
                       "scalesweep compare --flops 6e23,1e25 --laws hoffmann2022,besiroglu2024,kaplan2020"])
@_opt("Budget", "--flops", "flops_values", required=True, metavar="C[,C...]", help="Budget(s), FLOPs.")
@_opt("Law", "--laws", "law_names", default=None, metavar="A,B,...", shell_complete=_complete_laws,
      help="Presets to compare (default: all).")
@_output_option()
def compare(flops_values, law_names, output, fmt):
    """What every preset recommends at a budget, side by side (params, tokens, tokens/param, loss)."""
    from .api import compare as compare_laws
    from .tables import frame_to_arrow, metadata
    from .validate import positive_array

    budgets = positive_array(_numbers(flops_values, "--flops", sizes=True), "--flops")
    names = None if law_names is None else [x.strip() for x in law_names.split(",") if x.strip()]
    fmt = _check_target(output, fmt)
    df = compare_laws(budgets, names)
    meta = metadata("compare", flops=budgets, laws=[str(x) for x in df["law"].cat.categories], rows=len(df),
                    command_line=command_line())
    _emit(frame_to_arrow(df, meta), output, fmt, "rows", ("flops",))


@cli.command(examples=["scalesweep loss --params 7B --tokens 2T",
                       "scalesweep loss --params 7B,70B --tokens 2T,15T --law hoffmann2022,besiroglu2024,kaplan2020"])
@_opt("Input", "--params", "params", required=True, metavar="N[,N...]", help="Model size(s), parameters: 7B, 70B.")
@_opt("Input", "--tokens", "tokens", required=True, metavar="D[,D...]", help="Training tokens: 2T, 15T.")
@_opt("Law", "--law", "law_names", default=None, metavar="NAME[,NAME...]", shell_complete=_complete_laws,
      help="Laws to ask, joined by commas (default: hoffmann2022).")
@_output_option()
def loss(params, tokens, law_names, output, fmt):
    """The loss each law predicts for a model size and token count, its irreducible loss and the gap between."""
    from .questions import loss_at
    from .tables import frame_to_arrow, metadata

    fmt = _check_target(output, fmt)
    df = loss_at(params, tokens, law_names)
    meta = metadata("loss", laws=[str(x) for x in df["law"].cat.categories], params=params, tokens=tokens,
                    rows=len(df), command_line=command_line())
    _emit(frame_to_arrow(df, meta), output, fmt, "rows", ("params", "tokens"))


@cli.group()
def plot():
    """Figures (PDF, PNG or SVG, by the output's suffix) from the files the other commands write.

    Needs matplotlib: pip install 'scalesweep[plot]'. Text stays text in PDF and SVG.
    """


_image_output = _opt("Output", "-o", "--output", required=True, type=click.Path(dir_okay=False),
                     help="Image to write: .pdf, .png or .svg (the format follows the suffix).")


def _figure_options(f):
    """--label, --title, --size and --dpi, handed to the command as one ``figure`` dict of scalesweep.plot's
    keywords."""
    @functools.wraps(f)
    def command(*args, labels, title, size, dpi, **kwargs):
        return f(*args, figure=dict(labels=list(labels) or None, title=title, size=size, dpi=dpi), **kwargs)

    for decorate in (
        _opt("Output", "--dpi", type=click.FloatRange(10, 2400), default=None,
             help="Pixels per inch of a PNG (and of the filled contours in PDF/SVG) [default: 150]."),
        _opt("Output", "--size", default=None, metavar="W,H", help="Figure size, inches [default: per figure]."),
        _opt("Output", "--title", default=None, help="Figure title [default: says what is drawn]."),
        _opt("Output", "--label", "labels", multiple=True, metavar="TEXT",
             help="Legend name of a line (a frontier's law; the fitted law in plot fit), in drawing order; repeat, "
                  "one per line [default: the law's name]."),
    ):
        command = decorate(command)
    return command


@plot.command("frontier", kernels=False, examples=[
    "scalesweep plot frontier f1.parquet f2.parquet -o frontier.pdf",
    "scalesweep plot frontier fit.parquet both.parquet --label 'our fit' --label Chinchilla --label Kaplan "
    "--size 10,3.5 --dpi 200 -o frontier.png"])
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_image_output
@_figure_options
def plot_frontier_cmd(files, output, figure):
    """Params, tokens and loss against compute (log-log), one line per law of each frontier file: bootstrap
    bands shaded, a marker where a limit binds, a top axis in GPU-hours (files with a GPU) or PF-days."""
    from .plot import plot_frontier

    plot_frontier(list(files), output, **figure)
    talk(f"wrote {output}")


@plot.command("surface", kernels=False, examples=[
    "scalesweep plot surface s.parquet --frontier f.parquet -o surface.svg",
    "scalesweep plot surface iso.parquet -o isoflop.png"])
@click.argument("file", type=click.Path(dir_okay=False))
@_opt("Input", "--frontier", "frontier_files", multiple=True, type=click.Path(dir_okay=False),
      help="A frontier file to draw on top (repeatable).")
@_opt("Output", "--levels", type=click.IntRange(2, 200), default=20, show_default=True,
      help="Filled contour levels, log-spaced above the lowest loss.")
@_image_output
@_figure_options
def plot_surface_cmd(file, frontier_files, levels, output, figure):
    """Loss over a params x tokens surface file: labelled iso-loss and iso-FLOP (C = 6ND) lines, frontiers on
    top with a marker at each iso-FLOP budget. An IsoFLOP surface draws the IsoFLOP curves (plot isoflop)."""
    from .plot import plot_surface

    plot_surface(file, output, frontier=list(frontier_files), levels=levels, **figure)
    talk(f"wrote {output}")


@plot.command("isoflop", kernels=False, examples=[
    "scalesweep plot isoflop iso.parquet --frontier f.parquet -o isoflop.png",
    "scalesweep plot isoflop runs.csv --flops-column compute -o isoflop.pdf"])
@click.argument("file", type=click.Path(dir_okay=False))
@_opt("Input", "--frontier", "frontier_files", multiple=True, type=click.Path(dir_okay=False),
      help="A frontier file to draw as loss against N (repeatable).")
@_runs_columns
@_image_output
@_figure_options
def plot_isoflop_cmd(file, frontier_files, columns, output, figure):
    """Loss against N per budget (Chinchilla's IsoFLOP curves), the minimum of each marked, from an IsoFLOP
    surface (surface --flops-range) or a runs file (params, tokens or flops, loss; runs whose 6ND agree within
    1% share a budget, and a parabola in log N gives each budget's minimum)."""
    from .plot import plot_isoflop

    plot_isoflop(file, output, frontier=list(frontier_files), columns=columns, **figure)
    talk(f"wrote {output}")


@plot.command("fit", examples=[
    "scalesweep plot fit law.json -o fit.png",
    "scalesweep plot fit law.json held_out.csv -o fit.pdf"])
@click.argument("law_file", type=click.Path(dir_okay=False))
@click.argument("runs", required=False, type=click.Path(dir_okay=False))
@_runs_columns
@_image_output
@_figure_options
def plot_fit_cmd(law_file, runs, columns, output, figure):
    """A fit's diagnostics: predicted vs observed loss, and residuals against compute, for a law file and
    RUNS (default: the runs file the fit names); runs the fit left out are drawn hollow."""
    from .plot import plot_fit

    plot_fit(law_file, runs, output, columns=columns, **figure)
    talk(f"wrote {output}")


@cli.command(examples=[
    "scalesweep report frontier.parquet -o report.html",
    "scalesweep report f.parquet scenarios.parquet law.json -o report.html --title 'H100 plans'"])
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_opt("Output", "-o", "--output", required=True, type=click.Path(dir_okay=False),
      help="HTML file to write: one self-contained file that opens offline.")
@_opt("Output", "--title", default=None, help="Title of the report [default: names the files].")
def report(results, output, title):
    """One HTML file of interactive charts (zoom, hover for a row's values, a law shown or hidden) and the
    tables of frontier, target-loss, scenarios and compare outputs (Parquet, Arrow, CSV, JSON) and fit law
    files, with the law, limits, command line and version each was made with.

    Needs plotly, whose plotly.js is inlined: pip install 'scalesweep[report]'.
    """
    from .report import write_report

    summary = write_report(list(results), output, title=title)
    talk(f"wrote {output} from {summary['inputs']} result{'s' if summary['inputs'] != 1 else ''}")


@cli.command(examples=["scalesweep serve", "scalesweep serve --port 8080"])
@_opt("Server", "--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
      help="Port to listen on (0: any free port; the URL is printed).")
@_opt("Server", "--host", default="127.0.0.1", show_default=True,
      help="Address to listen on; the default keeps the calculator on this machine.")
def serve(port, host):
    """A local web calculator: the optimum and the frontier around a budget, updated as you type.

    Takes the law(s), one budget in any --unit, the hardware and the limits of `scalesweep frontier`, checked
    by the same rules; downloads the table as CSV or Parquet and copies the equivalent command line. Ctrl-C
    stops it. Needs starlette and uvicorn: pip install 'scalesweep[web]'.
    """
    from .web import serve as run_server

    def ready(url):
        talk(f"calculator at {url} (Ctrl-C stops it)")
        if host not in ("127.0.0.1", "localhost", "::1"):
            warn(f"--host {host}: the calculator can be reached from other machines, without any authentication")

    run_server(host, port, ready=ready, log_level="info" if LOG.isEnabledFor(logging.DEBUG) else "warning")
    talk("calculator stopped")


@cli.group()
def lookup():
    """Dense frontier lookup tables (build once, interpolate log-log)."""


@lookup.command("build", examples=[
    "scalesweep lookup build --flops-range 1e18:1e26 -o table.parquet",
    "scalesweep lookup build --law besiroglu2024 --flops-range 1e20:1e26 --max-params 400B -o table.parquet"])
@_law_options()
@_opt("Budget", "--flops-range", required=True, metavar="LO:HI",
      help="Budgets the table covers, FLOPs (the rows follow --points-per-decade).")
@_opt("Budget", "--points-per-decade", type=int, default=16, show_default=True, help="Rows per decade of budget.")
@_options_from(opts.Constraints)
@_opt("Output", "-o", "--output", required=True, type=click.Path(dir_okay=False), help="Parquet file to write.")
@_engine_options
def lookup_build(law, law_file, overrides, flops_range, points_per_decade, output, engine, scheduler, workers,
                 partition_rows, **kwargs):
    """Build a frontier table; its metadata records the largest interpolation error, measured by solving
    exactly at every midpoint between rows. With --engine dask or --partition-rows the rows are solved as
    resumable parts (in OUTPUT.parts/) and then joined into the one table file."""
    from .lookup import write_lookup, write_lookup_parts

    the_law = _resolve(law, law_file, overrides)
    cons = _take(opts.Constraints, kwargs)
    lo, hi = _parse_lo_hi(flops_range, "--flops-range", "the rows follow --points-per-decade")
    if engine == "local" and (scheduler is not None or workers is not None):
        raise click.UsageError("--scheduler and --workers need --engine dask")
    _check_target(output, None, law_file)
    if engine == "dask" or partition_rows is not None:
        from . import dataset

        with _progress("parts", "lookup") as progress:
            kw = dict(partition_rows=partition_rows, progress=progress, command_line=command_line(), **cons.as_dict())
            if engine == "dask":
                with dataset.dask_client(scheduler, workers) as client:
                    info = write_lookup_parts(output, the_law, lo, hi, points_per_decade, engine="dask", client=client,
                                              **kw)
            else:
                info = write_lookup_parts(output, the_law, lo, hi, points_per_decade, **kw)
    else:
        info = write_lookup(output, the_law, lo, hi, points_per_decade, command_line=command_line(), **cons.as_dict())
    _warn_recomputed(info.get("recomputed", []), f"{output}.parts")
    err = info["max_interpolation_error"]
    talk(f"wrote {info['rows']:,} rows to {output} (law {the_law.name}); max interpolation error at "
         f"midpoints: params {err['params']:.2e}, tokens {err['tokens']:.2e}, loss {err['loss']:.2e}")


@lookup.command("query", kernels=False, examples=["scalesweep lookup query table.parquet --flops 3e23,1e24",
                                                   "scalesweep lookup query table.parquet --flops-file budgets.csv"])
@click.argument("table", type=click.Path(dir_okay=False))
@_opt("Budget", "--flops", "flops_values", default=None, metavar="C[,C...]", help="Budget(s), FLOPs, comma-separated.")
@_opt("Budget", "--flops-file", type=click.Path(dir_okay=False), default=None,
      help="Budgets from a CSV or Parquet file (column 'flops', or the only column).")
@_opt("Budget", "--flops-column", default=None, help="Column of --flops-file to read.")
@_output_option()
def lookup_query(table, flops_values, flops_file, flops_column, output, fmt):
    """Interpolate a table at budgets inside its range (outside is an error, not an extrapolation)."""
    from .lookup import Lookup
    from .readers import read_flops_file

    if (flops_values is None) == (flops_file is None):
        raise click.UsageError("give --flops or --flops-file (one of them)")
    if flops_column is not None and flops_file is None:
        raise click.UsageError("--flops-column needs --flops-file")
    if flops_values is not None:
        budgets = _numbers(flops_values, "--flops", sizes=True)
    else:
        budgets = read_flops_file(flops_file, flops_column)
    fmt = _check_target(output, fmt, table, flops_file)
    _emit(Lookup(table).query_table(budgets, command_line()), output, fmt, "rows", ("flops",))


@cli.command(examples=["scalesweep resolution --flops-range 1e19:1e25:1000",
                       "scalesweep resolution --flops-range 1e20:1e24:100 --points-per-decade 4,16 "
                       "--params-range 10M:1T"])
@_law_options()
@_opt("Budget", "--flops-range", required=True, metavar="LO:HI:COUNT", help="Budgets to test at, FLOPs.")
@_opt("Grid", "--points-per-decade", "ppd", default="2,4,8,16,32,64", show_default=True, metavar="K[,K...]",
      help="Resolutions to compare.")
@_opt("Grid", "--params-range", default=None, metavar="LO:HI",
      help="Params grid span (default: a decade beyond the optima at either end).")
@_output_option()
def resolution(law, law_file, overrides, flops_range, ppd, params_range, output, fmt):
    """How fine a grid do I need? Grid search and lookup tables at each resolution against the exact solver."""
    from . import studies
    from .grid import parse_range
    from .tables import frame_to_arrow, metadata

    the_law = _resolve(law, law_file, overrides)
    fr = parse_range(flops_range, "--flops-range")
    ks = studies.parse_int_list(ppd, "--points-per-decade")
    pr = _parse_lo_hi(params_range, "--params-range", "the grid follows --points-per-decade") if params_range is not None else None
    fmt = _check_target(output, fmt, law_file)
    df = studies.resolution(the_law, fr.values(), ks, params_range=pr)
    meta = metadata("resolution", law=the_law.to_dict(), grid={"flops_range": str(fr)}, points_per_decade=ks,
                    rows=len(df), command_line=command_line())
    _emit(frame_to_arrow(df, meta), output, fmt, "rows")


@cli.command("isoflop-sim", examples=[
    "scalesweep isoflop-sim --budgets 6e18:3e21:9 --width 1",
    "scalesweep isoflop-sim --budgets 6e18:3e21:9 --noise 0.005 --trials 200 -o t.parquet"])
@_law_options()
@_opt("Design", "--budgets", required=True, metavar="LO:HI:K", help="IsoFLOP budgets (Chinchilla: 6e18:3e21:9).")
@_opt("Design", "--points-per-curve", type=int, default=9, show_default=True, help="Model sizes sampled per budget.")
@_opt("Design", "--width", type=float, default=1.0, show_default=True,
      help="Total span of each curve, decades of params.")
@_opt("Design", "--center-offset", type=float, default=0.0, show_default=True,
      help="Shift of the sampled span from the true optimum, decades.")
@_opt("Design", "--noise", type=float, default=0.0, show_default=True, help="Std. dev. of noise on each loss, nats.")
@_opt("Design", "--trials", type=int, default=1, show_default=True, help="Noisy repetitions.")
@_opt("Design", "--seed", type=int, default=0, show_default=True, help="Random seed for the noise.")
@_opt("Design", "--target-flops", type=_Size(), default=None, metavar="SIZE",
      help="Budget to extrapolate to (default: 100x the largest).")
@_output_option(help_="Per-trial table to write (- prints it); without -o the summary is printed instead.")
def isoflop_sim_cmd(law, law_file, overrides, budgets, points_per_curve, width, center_offset, noise,
                    trials, seed, target_flops, output, fmt):
    """Simulate Chinchilla's Approach 2 (parabola per IsoFLOP curve, power law through the vertices) on a
    known law: the bias of the fitted exponents and of N*, D* extrapolated to a target budget.

    Without -o the bias summary is the output (stdout); with -o the per-trial table is, and the summary
    goes to stderr.
    """
    from . import studies
    from .tables import frame_to_arrow, metadata

    the_law = _resolve(law, law_file, overrides)
    c = studies.budgets_from_range(budgets)
    if output is not None:
        fmt = _check_target(output, fmt, law_file)
    elif fmt is not None:
        raise click.UsageError("--format applies to the per-trial table: give -o FILE (or -o - for stdout)")
    with _progress("trials", "isoflop-sim") as progress:
        df = studies.isoflop_sim(the_law, c, points_per_curve=points_per_curve, width=width,
                                 center_offset=center_offset, noise=noise, trials=trials, seed=seed,
                                 target_flops=target_flops, progress=progress)
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
        warn(f"{failed} IsoFLOP parabolas opened downward (too noisy) and were left out")
    if output is not None:
        meta = metadata("isoflop-sim", law=the_law.to_dict(),
                        design=dict(budgets=budgets, points_per_curve=points_per_curve, width=width,
                                    center_offset=center_offset, noise=noise, trials=trials, seed=seed,
                                    target_flops=target_flops), rows=len(df), command_line=command_line())
        _emit(frame_to_arrow(df, meta), output, fmt, "trials")


@cli.command(kernels=False, examples=["scalesweep clean results/", "scalesweep clean ."])
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
def clean(directory):
    """Remove the temporary files that runs killed on this machine left in DIRECTORY (an output's directory or
    a partitioned dataset); files of live runs and of other machines are kept."""
    from .output import remove_stale_temps

    removed = remove_stale_temps(directory)
    talk(f"removed {len(removed)} stale temporary file{'s' if len(removed) != 1 else ''} from {directory}")


# Every command that runs kernels, once, on tiny inputs, in each way that compiles differently: every preset
# (compare), limits and hardware, infeasible rows, both surface forms and dtypes, each fit method with its
# bootstrap, bands, streamed and partitioned writers. {d} is a temporary directory holding runs.csv and spec.csv.
_WARMUP = (
    (("compare",), ["--flops", "1e16,1e22", "-o", "{d}/c.parquet"]),
    (("frontier",), ["--flops-range", "1e16:1e24:3", "--max-params", "1e9", "--max-tokens", "1e10", "--gpu", "H100-SXM",
                     "--gpus", "8", "--unique-tokens", "1e11", "--inference-tokens", "1e12", "-o", "{d}/f.parquet"]),
    (("frontier",), ["--law", "kaplan2020,kaplan2020-steps,muennighoff2023", "--flops-range", "1e18:1e22:3",
                     "--max-overfit", "0.02", "--overfit-penalty", "-o", "{d}/f.parquet"]),
    (("frontier",), ["--law", "deepseek2024", "--flops-range", "1e22", "--loss-law", "hoffmann2022",
                     "-o", "{d}/f.parquet"]),
    (("frontier",), ["--flops-range", "1e18:1e22:4", "--solver", "newton", "--partition-rows", "2", "-o", "{d}/fd"]),
    (("target-loss",), ["--loss", "2.5,1.0", "--max-params", "1e12", "--inference-tokens", "1e12",
                        "--law", "hoffmann2022,kaplan2020", "-o", "{d}/t.parquet"]),
    *((("surface",), ["--params-range", "1e8:1e10:3", form, rng, "--dtype", dtype, "-o", "{d}/s.parquet"])
      for form, rng in (("--tokens-range", "1e9:1e11:3"), ("--flops-range", "1e20:1e22:2"))
      for dtype in ("float64", "float32")),
    (("surface",), ["--params-range", "1e8:1e10:3", "--tokens-range", "1e9:1e11:3", "--partition-rows", "4",
                    "-o", "{d}/sd"]),
    *((("fit",), ["{d}/runs.csv", "-o", "{d}/law.json", "--family", family, "--method", method, "--bootstrap", "2"])
      for family, method in (("chinchilla", "lbfgs"), ("chinchilla", "vp"), ("kaplan", "lbfgs"))),
    (("frontier",), ["--law-file", "{d}/law.json", "--flops-range", "1e20:1e22:2", "--bands", "5,95",
                     "-o", "{d}/b.parquet"]),
    (("lookup", "build"), ["--flops-range", "1e18:1e20", "--points-per-decade", "2", "-o", "{d}/l.parquet"]),
    (("lookup", "build"), ["--flops-range", "1e18:1e20", "--points-per-decade", "2", "--partition-rows", "2",
                           "-o", "{d}/lp.parquet"]),
    (("resolution",), ["--flops-range", "1e20:1e22:2", "--points-per-decade", "2", "-o", "{d}/r.parquet"]),
    (("isoflop-sim",), ["--budgets", "6e18:3e21:3", "--noise", "0.001", "--trials", "2", "-o", "{d}/i.parquet"]),
    (("scenarios",), ["{d}/spec.csv", "-o", "{d}/sc.parquet"]),
    (("scenarios",), ["{d}/spec.csv", "--partition-rows", "2", "-o", "{d}/scd"]),
)
_WARMUP_SPEC = ("law,flops,target_loss,gpu_hours,gpu,gpus,max_params,unique_tokens\n"
                "hoffmann2022,1e22,,,,,1e9,\nkaplan2020,,2.5,,,,,\nmuennighoff2023,1e21,,,,,,1e10\n"
                "besiroglu2024,,,1000,H100-SXM,8,,\n")


@cli.command(examples=["scalesweep warmup", "NUMBA_CACHE_DIR=/opt/numba-cache scalesweep warmup"])
@click.pass_context
def warmup(ctx):
    """Compile every kernel now, into numba's on-disk cache, so that later runs of every command start in about
    a second: for cluster images and CI. Runs each command once on tiny inputs in a temporary directory, and
    says how long it took."""
    import tempfile

    import numpy as np

    from .kernels import CACHE
    from .laws import get_law

    if not CACHE:
        raise ScalesweepError("numba has no writable cache location, so compiled kernels would not be kept; set "
                              "NUMBA_CACHE_DIR to a writable directory")
    talk("warmup: running every command once on tiny inputs; what numba's cache lacks is compiled")
    t0, before, level, steps = time.perf_counter(), len(_compiled), LOG.level, []
    with tempfile.TemporaryDirectory(prefix="scalesweep-warmup-") as d:
        n, tokens = np.repeat(np.geomspace(1e7, 1e10, 5), 4), np.tile(np.geomspace(1e9, 1e12, 4), 5)
        loss = get_law("hoffmann2022").loss(n, tokens)
        with open(os.path.join(d, "runs.csv"), "w") as fh:
            rows = zip(n.tolist(), tokens.tolist(), loss.tolist(), strict=True)
            fh.write("params,tokens,loss\n" + "".join(f"{a!r},{b!r},{c!r}\n" for a, b, c in rows))
        with open(os.path.join(d, "spec.csv"), "w") as fh:
            fh.write(_WARMUP_SPEC)
        LOG.setLevel(logging.ERROR)  # the steps' own status lines and warnings are not news
        defaults = {var: os.environ.pop(var) for var in (LAW_ENV, GPU_ENV) if var in os.environ}  # steps as written
        try:
            for path, args in _WARMUP:
                cmd, t = cli, time.perf_counter()
                for name in path:
                    cmd = cmd.commands[name]
                with cmd.make_context(f"scalesweep {' '.join(path)}", [a.format(d=d) for a in args], parent=ctx) as sub:
                    cmd.invoke(sub)
                steps.append((" ".join(path), time.perf_counter() - t))
        finally:
            LOG.setLevel(level)
            os.environ.update(defaults)
    for name, seconds in steps:
        LOG.debug("warmup: %s in %.2f s", name, seconds)
    compiled = len(_compiled) - before
    how = f"{compiled} compiled, the rest loaded from numba's cache" if compiled else "all loaded from numba's cache"
    talk(f"kernels ready in {time.perf_counter() - t0:.1f} s ({how})")


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
        cli(complete_var="_SCALESWEEP_COMPLETE")
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
