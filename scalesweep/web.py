"""``scalesweep serve``: a small local web calculator over ``api.frontier`` (starlette + uvicorn, the optional
extra ``web``).

The page asks for the law(s), one budget in any unit the command line takes (``--unit``), the hardware and
the limits, and shows the optimum (params, tokens, loss, tokens per parameter, compute, cost, the limit that
binds) and the frontier around it (``SPAN_DECADES`` either side of the budget, ``POINTS`` budgets), updated as
the inputs change: the page fetches ``/api/frontier?...`` (JSON) after each edit. Buttons download the table
(``/api/frontier.csv``, ``/api/frontier.parquet``, written by the same writer as ``scalesweep frontier -o``)
and copy the equivalent ``scalesweep frontier ...`` command line.

The form's fields are the option fields (``options.Constraints``, ``Hardware``, ``Workload``) that
``api.frontier`` takes, with their help and unit: one definition of each option. Every input is validated
by the same code as on the command line (the option classes, ``grid.parse_range`` for the budget), so a bad
value gets the command line's message, as JSON ``{"error": ...}`` with HTTP status 400, shown on the page.

The calculator reads no file a client names: options that take a path (``PATH_OPTIONS``, such as
``--hardware-file``) are not on the form, and a query that gives one is refused with HTTP 400. A number's text
is at most ``validate.MAX_NUMBER_TEXT`` characters and any other value at most ``MAX_VALUE_CHARS``; a value
given twice is refused. Requests whose ``Host`` header names neither this machine's loopback names
(``LOCAL_HOSTS``) nor the ``--host`` given are refused with HTTP 421, so that a web page whose domain is
rebound to 127.0.0.1 (DNS rebinding) cannot use the calculator; a server bound to every address
(``0.0.0.0``, ``::``) also answers requests to an IP address and to this machine's host name.

``ask`` answers one query without any web machinery; the app only routes to it. Answers are computed on the
event loop, one at a time (the numba kernels are not re-entrant across threads), with one numba thread; each
JSON answer carries ``server_ms``, the time spent on it in the server (also in the ``Server-Timing`` header).
"""

from __future__ import annotations

import functools
import inspect
import json
import shlex
import signal
import socket
import tempfile
import time
from dataclasses import dataclass, fields
from decimal import Decimal
from pathlib import Path

import numpy as np

from . import options as opts
from .errors import ScalesweepError
from .validate import check_number_text, clip, suggest

SPAN_DECADES = 2  # the frontier shown spans the budget / 10^2 .. budget x 10^2
POINTS = 41  # budgets in that span (10 per decade)
DEFAULT_QUERY = {"law": "hoffmann2022", "budget": "1e23", "unit": "flops"}
DEFAULT_PORT = 8000
DEFAULT_HOST = "127.0.0.1"
DOWNLOAD_FORMATS = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
# Shown for the optimum, in this order, when the table has them.
OPTIMUM_COLUMNS = ("law", "flops", "params", "tokens", "loss", "tokens_per_param", "gpu_hours", "wall_days", "usd",
                   "feasible", "active_constraint", "infeasible_reason")
_SECTIONS = ((opts.Hardware, "Hardware"), (opts.Constraints, "Limits"), (opts.Workload, "Data and inference"))
# Options that name a file on the machine running the server: never taken from a client.
PATH_OPTIONS = ("hardware_file",)
MAX_VALUE_CHARS = 1000  # characters of a query value that is not a number (law names, units, GPU names)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")  # Host header names always answered
WILDCARD_HOSTS = ("0.0.0.0", "::", "")  # --host values that listen on every address


@functools.cache
def _option_fields() -> list[tuple[str, object, str]]:
    """(name, dataclass field, section) of every option field ``api.frontier`` takes as a keyword."""
    from .api import frontier

    takes = set(inspect.signature(frontier).parameters)
    return [(f.name, f, section) for cls, section in _SECTIONS for f in fields(cls)
            if f.name in takes and f.name not in PATH_OPTIONS]


def option_names() -> list[str]:
    return [name for name, _, _ in _option_fields()]


INPUTS = ("law", "budget", "unit")  # the query's other names (besides the option fields)


@dataclass
class Answer:
    """One answer: the frontier table around the budget (a DataFrame), the optimum of each law (rows of the
    same columns), the table's scalesweep metadata, the equivalent command line and its budget range."""

    table: object
    optimum: object
    metadata: dict
    command_line: str
    budgets: str

    def to_json(self) -> dict:
        return {"table": _rows(self.table), "optimum": _rows(self.optimum), "command_line": self.command_line,
                "budgets": self.budgets}


def _rows(df) -> dict:
    """A DataFrame as ``{"columns": [...], "rows": [[...], ...]}``, missing values as null."""
    cols = [str(c) for c in df.columns]
    values = []
    for c in cols:
        a = df[c].to_numpy()
        if a.dtype.kind == "f":
            values.append(np.where(np.isfinite(a), a, None).tolist())
        elif a.dtype.kind in "biu":
            values.append(a.tolist())
        else:  # categories, nullable integers: objects, missing ones null
            missing = df[c].isna().to_numpy()
            values.append([None if m else _plain(v) for v, m in zip(a.tolist(), missing, strict=True)])
    return {"columns": cols, "rows": [list(r) for r in zip(*values, strict=True)]}


def _plain(v):
    return v if isinstance(v, (bool, int, float, str)) else str(v)


def _numeric(name: str) -> bool:
    """Whether an input's value is a number (the budget, an option that is not a name)."""
    if name == "budget":
        return True
    return any(n == name and f.metadata["rule"] != "name" for n, f, _ in _option_fields())


def parse_query(query) -> dict[str, str]:
    """The query's values as given (text), empty ones dropped. Refused: an unknown name, a name given twice, an
    option that names a file on the server (``PATH_OPTIONS``), and a value too long to be one."""
    known = [*INPUTS, *option_names()]
    items = query.multi_items() if hasattr(query, "multi_items") else list(query.items())
    out: dict[str, str] = {}
    seen: set[str] = set()
    for key, value in items:
        if key in PATH_OPTIONS:
            raise ScalesweepError(f"input {key!r} is not taken here: the calculator reads no file named by a "
                                  "request (the server's own $XDG_CONFIG_HOME/scalesweep/hardware.toml is read)")
        if key not in known:
            raise ScalesweepError(f"unknown input {clip(key)}{suggest(key, known)} (one of: {', '.join(known)})")
        if key in seen:
            raise ScalesweepError(f"input {key!r} is given more than once; give it once")
        seen.add(key)
        value = str(value).strip()
        if _numeric(key):
            check_number_text(value, key)
        elif len(value) > MAX_VALUE_CHARS:
            raise ScalesweepError(f"{key}: at most {MAX_VALUE_CHARS} characters, got {clip(value)}")
        if value:
            out[key] = value
    return out


def ask(query) -> Answer:
    """The answer to a query (a mapping of input name -> text, as the page sends it)."""
    from .api import frontier
    from .grid import parse_range
    from .options import BUDGET_UNITS
    from .tables import METADATA_KEY

    given = {**DEFAULT_QUERY, **parse_query(query)}
    law, unit = given.pop("law"), given.pop("unit")
    if unit not in BUDGET_UNITS:
        raise ScalesweepError(f"unknown budget unit {clip(unit)}{suggest(unit, BUDGET_UNITS)} (one of: "
                              f"{', '.join(BUDGET_UNITS)})")
    budget = parse_range(given.pop("budget"), "budget")
    if budget.count != 1:
        raise ScalesweepError(f"budget: give one value (in {unit}), not a range; got {str(budget)!r}")
    centre = budget.lo
    # The span's ends as decimals (1e23 -> 1e21:1e25), so the command line shows them as they are.
    lo, hi = (float(Decimal(repr(centre)).scaleb(k)) for k in (-SPAN_DECADES, SPAN_DECADES))
    span = f"{lo!r}:{hi!r}:{POINTS}"
    values = parse_range(span, "budget").values()
    text = dict(given)
    for name, f, _ in _option_fields():  # as the command line reads them: sizes as text (7B), other numbers as floats
        if name in given and f.metadata["rule"] != "name" and not f.metadata["size"]:
            try:
                given[name] = float(given[name])
            except ValueError:
                pass  # refused below, with the option's message
    df = frontier(law, np.append(values, centre), unit=unit, **given)
    meta = df.attrs.pop(METADATA_KEY.decode(), {})
    df.attrs.clear()  # pandas deep-copies attrs into every column and slice taken below
    m = POINTS + 1
    last = np.arange(m - 1, len(df), m)  # each law's block ends with the budget asked for
    keep = np.setdiff1d(np.arange(len(df)), last)
    table = df.iloc[keep].reset_index(drop=True)
    optimum = df.iloc[last].reset_index(drop=True)
    cmd = ["scalesweep", "frontier", "--law", law, "--flops-range", span]
    if unit != "flops":
        cmd += ["--unit", unit]
    for name in option_names():
        if name in given:
            cmd += [opts.flag(name), text[name]]
    return Answer(table, optimum, meta, shlex.join(cmd), span)


def table_bytes(answer: Answer, fmt: str) -> bytes:
    """The frontier table as the file ``scalesweep frontier -o`` writes (with its metadata in Parquet)."""
    from .output import jsonable, write_table
    from .tables import METADATA_KEY, frame_to_arrow

    meta = dict(answer.metadata)
    meta.update(command_line=answer.command_line, rows=len(answer.table),
                grid={"flops_range": answer.budgets, **(meta.get("grid") or {})})
    table = frame_to_arrow(answer.table, {METADATA_KEY: json.dumps(jsonable(meta)).encode()})
    with tempfile.TemporaryDirectory(prefix="scalesweep-web-") as tmp:
        path = Path(tmp, f"frontier.{fmt}")
        write_table(str(path), table, fmt)
        return path.read_bytes()


# ---------------------------------------------------------------------------------------------- the page


def _field_html(name: str, f) -> str:
    """The label and control of an option field: its flag, unit and help (as a tooltip), default as placeholder."""
    import html

    md = f.metadata
    label = opts.flag(name)
    unit = f" [{md['unit']}]" if md.get("unit") else ""
    default = md.get("default")
    hint = f"default {default:g}" if default is not None else ""
    title = html.escape(md["help"] + unit, quote=True)
    if name == "gpu":
        from . import units

        choices = "".join(f'<option value="{html.escape(g)}">{html.escape(g)}</option>' for g in units.GPUS)
        control = f'<select name="gpu" id="in-gpu"><option value="">none</option>{choices}</select>'
    else:
        control = (f'<input name="{name}" id="in-{name}" type="text" inputmode="decimal" '
                   f'placeholder="{html.escape(hint, quote=True)}" autocomplete="off">')
    return f'<label title="{title}"><span>{html.escape(label)}{html.escape(unit)}</span>{control}</label>'


def page() -> str:
    """The calculator page (plotly.js from ``/plotly.min.js``: served from the installed package)."""
    import html

    from .laws import ALIASES, PRESETS
    from .options import BUDGET_UNITS

    laws = "".join(f'<option value="{html.escape(n)}">' for n in [*PRESETS, *ALIASES])
    units_ = "".join(f'<option value="{u}"{" selected" if u == "flops" else ""}>{u}</option>' for u in BUDGET_UNITS)
    groups: dict[str, list[str]] = {}
    for name, f, section in _option_fields():
        groups.setdefault(section, []).append(_field_html(name, f))
    sections = "".join(f"<fieldset><legend>{html.escape(s)}</legend>{''.join(items)}</fieldset>"
                       for s, items in groups.items())
    return _PAGE.format(laws=laws, units=units_, sections=sections, law=DEFAULT_QUERY["law"],
                        budget=DEFAULT_QUERY["budget"], span=SPAN_DECADES, points=POINTS,
                        optimum_columns=json.dumps(OPTIMUM_COLUMNS))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>scalesweep calculator</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1em 1.5em; color: #222; }}
form {{ display: flex; flex-wrap: wrap; gap: .5em; }}
fieldset {{ border: 1px solid #ccc; padding: .4em .6em; }}
label {{ display: inline-flex; flex-direction: column; margin: .2em .4em; font-size: .85em; }}
label span {{ font-family: ui-monospace, monospace; }}
input, select {{ width: 9.5em; }}
#in-law {{ width: 18em; }}
#error {{ color: #b00020; font-weight: bold; min-height: 1.3em; margin: .5em 0; }}
#results.stale {{ opacity: .35; }}
table {{ border-collapse: collapse; font-size: .85em; font-variant-numeric: tabular-nums; }}
th, td {{ border: 1px solid #e4e4e4; padding: .15em .4em; text-align: right; }}
thead th {{ background: #f4f4f4; position: sticky; top: 0; }}
#tablewrap {{ max-height: 24em; overflow: auto; border: 1px solid #ddd; }}
#command {{ font-family: ui-monospace, monospace; font-size: .85em; background: #f6f6f6; padding: .4em;
            white-space: pre-wrap; word-break: break-all; }}
.buttons a, .buttons button {{ margin-right: .6em; }}
#timing {{ color: #666; font-size: .8em; }}
</style>
<script src="/plotly.min.js"></script></head>
<body>
<h1>scalesweep calculator</h1>
<form id="form" autocomplete="off" onsubmit="return false">
<fieldset><legend>Law and budget</legend>
<label title="Law preset(s), any case; several joined by commas"><span>--law</span>
<input name="law" id="in-law" list="laws" value="{law}"></label>
<datalist id="laws">{laws}</datalist>
<label title="One budget, in the unit below; sizes like 1e23, 6e23 or 2.5M"><span>budget</span>
<input name="budget" id="in-budget" value="{budget}"></label>
<label title="Unit of the budget"><span>--unit</span><select name="unit" id="in-unit">{units}</select></label>
</fieldset>
{sections}
</form>
<div id="error" role="alert"></div>
<div id="results">
<h2>Optimum</h2>
<table id="optimum"><thead></thead><tbody></tbody></table>
<h2>Frontier around it</h2>
<p>Budgets from 10<sup>-{span}</sup> to 10<sup>{span}</sup> times the budget ({points} points).</p>
<div id="chart" style="height: 380px"></div>
<div class="buttons"><a id="download-csv" href="#" download="frontier.csv"><button type="button">Download CSV</button></a><a
 id="download-parquet" href="#" download="frontier.parquet"><button type="button">Download Parquet</button></a><button
 type="button" id="copy">Copy command line</button> <span id="copied"></span></div>
<pre id="command"></pre>
<div id="tablewrap"><table id="table"><thead></thead><tbody></tbody></table></div>
<p id="timing"></p>
</div>
<script>
(function () {{
  var OPTIMUM = {optimum_columns};
  var form = document.getElementById("form"), timer = null, asked = 0;
  function query() {{
    var q = new URLSearchParams();
    new FormData(form).forEach(function (v, k) {{ if (String(v).trim() !== "") q.append(k, v); }});
    return q.toString();
  }}
  function text(v) {{
    if (v === null || v === undefined) return "";
    if (typeof v === "boolean") return v ? "true" : "false";
    if (typeof v === "number") return g6(v);
    return String(v);
  }}
  function g6(v) {{  // Python's format(v, ".6g")
    if (v === 0) return "0";
    var parts = v.toExponential(5).split("e"), exp = parseInt(parts[1], 10);
    if (exp < -4 || exp >= 6) {{
      var a = Math.abs(exp);
      return parts[0].replace(/\\.?0+$/, "") + "e" + (exp < 0 ? "-" : "+") + (a < 10 ? "0" : "") + a;
    }}
    var f = v.toFixed(5 - exp);
    return f.indexOf(".") >= 0 ? f.replace(/\\.?0+$/, "") : f;
  }}
  function fill(table, cols, rows, only) {{
    var use = only ? only.filter(function (c) {{ return cols.indexOf(c) >= 0; }}) : cols;
    var idx = use.map(function (c) {{ return cols.indexOf(c); }});
    table.tHead.innerHTML = "<tr>" + use.map(function (c) {{ return "<th>" + c + "</th>"; }}).join("") + "</tr>";
    var body = document.createElement("tbody");
    rows.forEach(function (r) {{
      var tr = document.createElement("tr");
      idx.forEach(function (i, k) {{
        var td = document.createElement("td");
        td.textContent = text(r[i]);
        td.setAttribute("data-column", use[k]);
        td.setAttribute("data-value", r[i] === null ? "" : String(r[i]));
        tr.appendChild(td);
      }});
      body.appendChild(tr);
    }});
    table.replaceChild(body, table.tBodies[0]);
  }}
  function chart(t, best) {{
    if (typeof Plotly === "undefined") return;
    var c = t.columns, li = c.indexOf("law"), fi = c.indexOf("flops"), groups = {{}};
    t.rows.forEach(function (r) {{
      var law = li >= 0 ? r[li] : document.getElementById("in-law").value;
      (groups[law] = groups[law] || []).push(r);
    }});
    var traces = [];
    Object.keys(groups).forEach(function (law) {{
      ["params", "tokens"].forEach(function (what) {{
        var k = c.indexOf(what);
        traces.push({{type: "scatter", mode: "lines", name: law + " " + what,
          x: groups[law].map(function (r) {{ return r[fi]; }}), y: groups[law].map(function (r) {{ return r[k]; }}),
          line: {{dash: what === "tokens" ? "dot" : "solid"}}}});
      }});
    }});
    var bc = best.columns;
    traces.push({{type: "scatter", mode: "markers", name: "optimum", marker: {{size: 10, symbol: "diamond"}},
      x: best.rows.map(function (r) {{ return r[bc.indexOf("flops")]; }}),
      y: best.rows.map(function (r) {{ return r[bc.indexOf("params")]; }})}});
    Plotly.react("chart", traces, {{margin: {{t: 10, l: 70, r: 20, b: 90}},
      xaxis: {{type: "log", title: {{text: "training compute (FLOP)"}}, exponentformat: "power"}},
      yaxis: {{type: "log", title: {{text: "params (solid), tokens (dotted)"}}, exponentformat: "power"}},
      legend: {{orientation: "h", y: -0.3}}}}, {{displaylogo: false, responsive: true}});
  }}
  function update() {{
    var q = query(), mine = ++asked;
    fetch("/api/frontier?" + q).then(function (resp) {{
      return resp.json().then(function (body) {{ return [resp.status, body]; }});
    }}).then(function (sb) {{
      if (mine !== asked) return;
      var status = sb[0], body = sb[1], results = document.getElementById("results");
      document.body.setAttribute("data-status", String(status));
      if (status !== 200) {{
        document.getElementById("error").textContent = body.error;
        results.classList.add("stale");
        return;
      }}
      document.getElementById("error").textContent = "";
      results.classList.remove("stale");
      fill(document.getElementById("optimum"), body.optimum.columns, body.optimum.rows, OPTIMUM);
      fill(document.getElementById("table"), body.table.columns, body.table.rows, null);
      document.getElementById("command").textContent = body.command_line;
      document.getElementById("download-csv").href = "/api/frontier.csv?" + q;
      document.getElementById("download-parquet").href = "/api/frontier.parquet?" + q;
      document.getElementById("timing").textContent = "answered in " + body.server_ms.toFixed(1) + " ms (server)";
      chart(body.table, body.optimum);
      document.body.setAttribute("data-answered", String(mine));
    }}).catch(function (e) {{
      document.getElementById("error").textContent = "no answer from the server: " + e;
    }});
  }}
  form.addEventListener("input", function () {{ clearTimeout(timer); timer = setTimeout(update, 120); }});
  form.addEventListener("change", function () {{ clearTimeout(timer); timer = setTimeout(update, 120); }});
  document.getElementById("copy").addEventListener("click", function () {{
    var cmd = document.getElementById("command").textContent, done = function () {{
      document.getElementById("copied").textContent = "copied";
    }};
    if (navigator.clipboard && window.isSecureContext) {{
      navigator.clipboard.writeText(cmd).then(done, function () {{ fallback(cmd); done(); }});
    }} else {{ fallback(cmd); done(); }}
  }});
  function fallback(cmd) {{
    var t = document.createElement("textarea");
    t.value = cmd; document.body.appendChild(t); t.select(); document.execCommand("copy"); t.remove();
  }}
  update();
}})();
</script>
</body></html>
"""


# ----------------------------------------------------------------------------------------------- the app


def _starlette():
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ScalesweepError("the calculator needs starlette and uvicorn: pip install 'scalesweep[web]'") from None


def _host_name(header: str) -> str:
    """The name of a Host header, without its port and brackets, lower case: ``[::1]:8000`` -> ``::1``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    if header.count(":") == 1:
        header = header.split(":", 1)[0]
    return header.rstrip(".")


def allowed_hosts(host: str) -> frozenset[str]:
    """The Host header names a server listening on ``host`` answers: the loopback names and ``host``; bound to
    every address, also this machine's host names."""
    names = {*LOCAL_HOSTS, _host_name(host) if host else ""}
    if host in WILDCARD_HOSTS:
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    names.discard("")
    return frozenset(names)


def host_allowed(header: str | None, host: str) -> bool:
    """Whether a request with this Host header is answered by a server listening on ``host``. Without a Host
    header (HTTP/1.0) it is: browsers always send one. Bound to every address, a Host that is an IP address is
    answered too: a rebound domain name is what DNS rebinding needs."""
    import ipaddress

    if header is None:
        return True
    name = _host_name(header)
    if name in allowed_hosts(host):
        return True
    if host in WILDCARD_HOSTS:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True
    return False


def app(ready=None, host: str = DEFAULT_HOST):
    """The ASGI application; ``ready()`` is called when the server has started it (its lifespan startup).
    Requests whose Host header ``host_allowed`` refuses are answered 421 with a JSON error."""
    _starlette()
    import contextlib

    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    html_page = page()

    def error(exc: Exception, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": " ".join(str(exc).split())}, status_code=status)

    async def index(request):
        return HTMLResponse(html_page)

    async def plotly_js(request):
        try:
            from plotly.offline import get_plotlyjs
        except ImportError:
            return Response("// plotly is not installed: the calculator draws no chart\n",
                            media_type="text/javascript")
        return Response(get_plotlyjs(), media_type="text/javascript",
                        headers={"Cache-Control": "max-age=86400"})

    async def answer(request):
        t0 = time.perf_counter()
        try:
            body = ask(request.query_params).to_json()
        except ScalesweepError as exc:
            return error(exc)
        ms = (time.perf_counter() - t0) * 1e3
        body["server_ms"] = ms
        return JSONResponse(body, headers={"Server-Timing": f"app;dur={ms:.2f}"})

    async def download(request):
        fmt = request.path_params["fmt"]
        if fmt not in DOWNLOAD_FORMATS:
            return error(ScalesweepError(f"unknown download format {fmt!r} (one of: {', '.join(DOWNLOAD_FORMATS)})"),
                         404)
        try:
            data = table_bytes(ask(request.query_params), fmt)
        except ScalesweepError as exc:
            return error(exc)
        return Response(data, media_type=DOWNLOAD_FORMATS[fmt],
                        headers={"Content-Disposition": f'attachment; filename="frontier.{fmt}"'})

    @contextlib.asynccontextmanager
    async def lifespan(application):
        if ready is not None:
            ready()
        yield

    async def not_found(request, exc):
        return error(ScalesweepError(f"no page {request.url.path!r}"), getattr(exc, "status_code", 404))

    async def failure(request, exc):
        return error(ScalesweepError(f"internal error: {type(exc).__name__}: {exc}"), 500)

    inner = Starlette(routes=[Route("/", index), Route("/plotly.min.js", plotly_js), Route("/api/frontier", answer),
                              Route("/api/frontier.{fmt}", download)],
                      exception_handlers={404: not_found, 405: not_found, Exception: failure}, lifespan=lifespan)

    async def checked(scope, receive, send):
        if scope["type"] == "http":
            header = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), None)
            if not host_allowed(header, host):
                msg = (f"this server answers requests to {', '.join(sorted(allowed_hosts(host)))}, not to Host "
                       f"{clip(header)}")
                await error(ScalesweepError(msg), 421)(scope, receive, send)
                return
        await inner(scope, receive, send)

    return checked


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one. One line if it cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ScalesweepError(f"--host {host!r}: {exc.strerror or exc}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ScalesweepError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; give another --port "
                              "(0: any free port)") from None
    sock.set_inheritable(True)
    return sock


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, ready=None, log_level: str = "warning") -> None:
    """Serve the calculator until Ctrl-C (SIGINT), SIGTERM or SIGHUP, then return: each stops it gracefully.
    ``ready(url)`` is called once the kernels are warm and the socket listens (a signal before then is not
    handled here)."""
    _starlette()
    import uvicorn

    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ScalesweepError(f"--port must be a whole number from 0 to 65535, got {port!r}")
    from .api import set_threads

    # An answer is a few dozen rows per law: one numba thread answers it fastest (on a busy 2-core machine, a
    # median of 16 ms against 45 ms with 2 threads), and results do not depend on the thread count.
    set_threads(1)
    ask(DEFAULT_QUERY)  # compile or load the kernels now, so that the first answer is warm
    sock = listen(host, port)
    url = f"http://{f'[{host}]' if ':' in host else host}:{sock.getsockname()[1]}/"
    # ready() once uvicorn runs the app: from then on its signal handlers stop it gracefully
    application = app(None if ready is None else lambda: ready(url), host)
    server = uvicorn.Server(uvicorn.Config(application, log_level=log_level, access_log=False, lifespan="on"))

    def hang_up(signum, frame):  # uvicorn handles SIGINT and SIGTERM; SIGHUP stops it the same graceful way
        server.should_exit = True

    hup = getattr(signal, "SIGHUP", None)
    previous = signal.signal(hup, hang_up) if hup is not None else None
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn stopped gracefully, then raised the signal it caught again
        pass
    finally:
        if hup is not None:
            signal.signal(hup, previous)
        sock.close()
