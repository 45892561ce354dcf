"""``scalesweep serve``: the local web calculator (starlette + uvicorn, the extra ``web``).

Without a browser: answers equal ``scalesweep.api.frontier`` and the command line they print, downloads equal
what ``scalesweep frontier -o`` writes, bad inputs get the command line's message with HTTP 400 (never a
traceback), a query cannot name a file for the server to read, requests to another Host are refused (DNS
rebinding), over-long and repeated values are refused at once, warm answers take less than 50 ms in the
server, and the server started by the CLI stops on Ctrl-C (SIGINT), SIGTERM and SIGHUP with exit status 0 and
one line. In headless Chromium (tests/browser.py): the page shows the
numbers the API gives for the inputs typed, shows the message of a bad input with a 4xx answer, downloads
the table, copies the command line, and loads nothing from anywhere but the server.
"""

import io
import json
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from scalesweep import api

from .browser import browser, screenshot, watched_page  # noqa: F401  (browser is a fixture)
from .helpers import run

pytest.importorskip("starlette", reason="the calculator needs starlette (pip install 'scalesweep[web]')")
pytest.importorskip("uvicorn", reason="the calculator needs uvicorn (pip install 'scalesweep[web]')")
W = pytest.importorskip("scalesweep.web")

QUERY = {"law": "hoffmann2022,kaplan2020", "budget": "1e4", "unit": "gpu_hours", "gpu": "H100", "gpus": "512",
         "usd_per_gpu_hour": "2.5", "max_params": "70B"}
API_ARGS = dict(unit="gpu_hours", gpu="H100", gpus=512, usd_per_gpu_hour=2.5, max_params=7e10)


def cli_error(args) -> str:
    """The message (without ``Error: ``) the command line prints for ``scalesweep frontier ARGS``."""
    res = run(["frontier", "--flops-range", "1e22", *args], ok=False)
    assert res.exit_code != 0
    return res.stderr.strip().removeprefix("Error: ")


@dataclass
class Reply:
    status_code: int
    headers: dict
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8")

    def json(self):
        return json.loads(self.content)


class Client:
    """GET requests to the calculator's server, 4xx and 5xx answers included."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def get(self, path: str, params: dict | None = None) -> Reply:
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                return Reply(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


@pytest.fixture(scope="module")
def client(server):
    return Client(server)


def frame(answer_part) -> pd.DataFrame:
    return pd.DataFrame(answer_part["rows"], columns=answer_part["columns"])


# ------------------------------------------------------------------------------------------- no browser


def test_answer_equals_api_and_the_command_line(client, tmp_path):
    r = client.get("/api/frontier", params=QUERY)
    assert r.status_code == 200
    body = r.json()
    optimum = frame(body["optimum"])
    want = api.frontier("hoffmann2022,kaplan2020", [1e4], **API_ARGS)
    assert optimum["law"].tolist() == ["hoffmann2022", "kaplan2020"]
    for col in ("flops", "params", "tokens", "loss", "tokens_per_param", "gpu_hours", "wall_days", "usd"):
        assert optimum[col].tolist() == want[col].tolist(), col
    assert optimum["active_constraint"].tolist() == want["active_constraint"].astype(str).tolist()
    # the table is what the command line it shows prints, value for value
    cmd = shlex.split(body["command_line"])
    assert cmd[:2] == ["scalesweep", "frontier"] and "--max-params" in cmd and "70B" in cmd
    out = tmp_path / "f.parquet"
    run([*cmd[1:], "-o", out])
    cli_table = pd.read_parquet(out)
    table = frame(body["table"])
    assert list(table.columns) == list(cli_table.columns)
    assert len(table) == W.POINTS * 2
    for col in table.columns:
        got, exp = table[col].tolist(), cli_table[col].astype(object).where(cli_table[col].notna(), None).tolist()
        assert got == exp, col
    # the budget asked for sits in the middle of the span, two decades either side
    assert body["budgets"] == "100.0:1000000.0:41"
    assert r.headers["server-timing"].startswith("app;dur=")


def test_single_law_flops_budget_defaults(client):
    body = client.get("/api/frontier", params={"budget": "6e23"}).json()
    want = api.frontier("hoffmann2022", [6e23])
    optimum = frame(body["optimum"])
    assert optimum["params"].tolist() == want["params"].tolist()
    assert optimum["loss"].tolist() == want["loss"].tolist()
    assert body["command_line"] == "scalesweep frontier --law hoffmann2022 --flops-range 6e+21:6e+25:41"


@pytest.mark.parametrize("query, cli_args", [
    ({"gpus": "8"}, ["--gpus", "8"]),
    ({"max_params": "-1"}, ["--max-params", "-1"]),
    ({"min_params": "7B", "max_params": "1B"}, ["--min-params", "7B", "--max-params", "1B"]),
    ({"gpu": "H10"}, ["--gpu", "H10"]),
    ({"law": "hofman"}, ["--law", "hofman"]),
    ({"gpu": "H100", "mfu": "1.5"}, ["--gpu", "H100", "--mfu", "1.5"]),
    ({"unit": "usd", "gpu": "H100"}, ["--unit", "usd", "--gpu", "H100"]),
    ({"law": "kaplan2020-C", "max_params": "7B"}, ["--law", "kaplan2020-C", "--max-params", "7B"]),
])
def test_bad_inputs_get_the_command_lines_message(client, query, cli_args):
    r = client.get("/api/frontier", params=query)
    assert r.status_code == 400
    message = r.json()["error"]
    assert "\n" not in message and "Traceback" not in message
    cli = cli_error(cli_args)
    assert message == cli


@pytest.mark.parametrize("query, needle", [
    ({"budget": "abc"}, "budget: value 'abc' is not a number"),
    ({"budget": "-5"}, "budget: value must be > 0, got '-5'"),
    ({"budget": "1e20:1e22:3"}, "budget: give one value (in flops), not a range"),
    ({"unit": "gpuhours"}, "unknown budget unit 'gpuhours'; did you mean 'gpu_hours'?"),
    ({"max_parms": "7B"}, "unknown input 'max_parms'; did you mean 'max_params'?"),
])
def test_bad_form_values(client, query, needle):
    r = client.get("/api/frontier", params=query)
    assert r.status_code == 400 and needle in r.json()["error"]
    r = client.get("/api/frontier.csv", params=query)
    assert r.status_code == 400 and needle in r.json()["error"]


def test_unknown_pages_and_formats_are_json_404(client):
    r = client.get("/api/frontier.xlsx")
    assert r.status_code == 404 and "unknown download format 'xlsx'" in r.json()["error"]
    r = client.get("/nowhere")
    assert r.status_code == 404 and r.json() == {"error": "no page '/nowhere'"}


def test_downloads_are_what_frontier_writes(client, tmp_path):
    body = client.get("/api/frontier", params=QUERY).json()
    cmd = shlex.split(body["command_line"])
    ref = tmp_path / "ref.parquet"
    run([*cmd[1:], "-o", ref])
    r = client.get("/api/frontier.parquet", params=QUERY)
    assert r.status_code == 200 and 'filename="frontier.parquet"' in r.headers["content-disposition"]
    got = pq.read_table(io.BytesIO(r.content))
    want = pq.read_table(ref)
    assert got.schema.names == want.schema.names and got.schema.types == want.schema.types
    assert [f.metadata for f in got.schema] == [f.metadata for f in want.schema]  # units and descriptions
    assert got.to_pandas().equals(want.to_pandas())
    from scalesweep.api import provenance

    meta = provenance(got.schema.metadata)
    assert meta["command_line"] == body["command_line"]
    assert meta["hardware"]["gpu"] == "H100-SXM" and meta["constraints"] == {"max_params": 7e10}
    r = client.get("/api/frontier.csv", params=QUERY)
    ref_csv = tmp_path / "ref.csv"
    run([*cmd[1:], "-o", ref_csv])
    assert r.text == ref_csv.read_text()


def test_page_lists_the_option_fields(client):
    text = client.get("/").text
    for name in W.option_names():
        assert f'name="{name}"' in text
    assert "--usd-per-gpu-hour" in text and "--max-tokens-per-param" in text
    js = client.get("/plotly.min.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")


def test_warm_answers_take_under_50_ms(client):
    client.get("/api/frontier", params=QUERY)
    times = [client.get("/api/frontier", params=QUERY).json()["server_ms"] for _ in range(15)]
    assert statistics.median(times) < 50, times


def test_files_named_by_a_request_are_not_read(client, tmp_path):
    """A client cannot make the server open a file: /dev/zero would be read until memory runs out."""
    assert "hardware_file" not in W.option_names()
    assert 'name="hardware_file"' not in client.get("/").text
    hw = tmp_path / "hw.toml"
    hw.write_text("[password]\nx = 1\n")
    for path in ("/dev/zero", "/etc/passwd", str(hw)):
        for route in ("/api/frontier", "/api/frontier.csv"):
            r = client.get(route, params={"budget": "1e23", "gpu": "H100", "hardware_file": path})
            assert r.status_code == 400, (route, path)
            message = r.json()["error"]
            assert message.startswith("input 'hardware_file' is not taken here: the calculator reads no file")
            assert "password" not in message and "TOML" not in message
    with pytest.raises(W.ScalesweepError, match="hardware_file"):
        W.ask({"budget": "1e23", "hardware_file": "/dev/zero"})


def raw_get(url: str, path: str, host: str | None) -> tuple[int, dict]:
    """GET with the Host header given (None: none sent), as a page on a rebound domain would send it."""
    import http.client

    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    try:
        conn.putrequest("GET", path, skip_host=True)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null") if r.getheader("content-type", "").startswith(
            "application/json") else {}
    finally:
        conn.close()


def test_requests_to_other_host_names_are_refused(server):
    port = urllib.parse.urlsplit(server).port
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", f"10.1.2.3:{port}"):
        for path in ("/", "/api/frontier?budget=1e23", "/api/frontier.csv?budget=1e23"):
            status, body = raw_get(server, path, host)
            assert status == 421, (host, path)
            assert body["error"].startswith("this server answers requests to 127.0.0.1, ::1, localhost, not to Host")
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"):
        assert raw_get(server, "/api/frontier?budget=1e23", host)[0] == 200, host


def test_host_names_a_server_answers():
    assert W.host_allowed("127.0.0.1:80", "127.0.0.1") and W.host_allowed("localhost.", "127.0.0.1")
    assert not W.host_allowed("evil.example", "127.0.0.1") and not W.host_allowed("192.168.1.5", "127.0.0.1")
    assert W.host_allowed("myhost.lan:8000", "myhost.lan") and not W.host_allowed("other.lan", "myhost.lan")
    assert W.host_allowed("[fe80::1]:8000", "fe80::1")
    # bound to every address: IP addresses and this machine's name, still not a rebound domain name
    assert W.host_allowed("192.168.1.5:8000", "0.0.0.0") and W.host_allowed("[2001:db8::1]", "::")
    assert W.host_allowed(socket.gethostname(), "0.0.0.0")
    assert not W.host_allowed("evil.example:8000", "0.0.0.0")
    assert W.host_allowed(None, "127.0.0.1")  # HTTP/1.0 without a Host header: never a browser


@pytest.mark.parametrize("query, needle", [
    ({"budget": "1" * 60_000}, "budget: too long for a number (at most 100 characters), got '1111"),
    ({"budget": "1e23", "max_params": "7" * 5_000 + "B"}, "max_params: too long for a number"),
    ({"budget": "1e23", "gpu": "H100", "mfu": "0." + "4" * 200}, "mfu: too long for a number"),
    ({"law": "x" * 20_000}, "law: at most 1000 characters, got 'xxxx"),
])
def test_over_long_values_are_refused_at_once(client, query, needle):
    import time

    t0 = time.perf_counter()
    r = client.get("/api/frontier", params=query)
    assert time.perf_counter() - t0 < 5
    assert r.status_code == 400
    message = r.json()["error"]
    assert needle in message and len(message) < 200, message
    assert "characters)" in message  # the value is cut short, its length said


@pytest.mark.parametrize("query", ["budget=1e23&budget=1e24", "law=hoffmann2022&law=kaplan2020",
                                   "budget=1e23&max_params=7B&max_params=70B"])
def test_inputs_given_twice_are_refused(client, query):
    name = query.rsplit("&", 1)[1].split("=")[0]
    try:
        with urllib.request.urlopen(f"{client.url}/api/frontier?{query}", timeout=60) as r:
            status, body = r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        status, body = exc.code, json.loads(exc.read())
    assert status == 400 and body["error"] == f"input {name!r} is given more than once; give it once"


# ------------------------------------------------------------------------------------- the server process


def start_server(*args):
    """``python -m scalesweep serve --port 0 ARGS`` and the URL it prints."""
    proc = subprocess.Popen([sys.executable, "-m", "scalesweep", "serve", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    found = re.search(r"calculator at (http://\S+) \(Ctrl-C stops it\)", line)
    if found is None:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the server did not start: {line}{err}")
    return proc, found[1]


def stop(proc, signum=signal.SIGINT):
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def test_serve_answers_and_stops_cleanly_on_ctrl_c():
    proc, url = start_server()
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/frontier?budget=1e22") as r:
            assert r.status == 200 and b'"optimum"' in r.read()
        with pytest.raises(urllib.error.HTTPError) as bad:
            urllib.request.urlopen(url + "api/frontier?gpus=8")
        assert bad.value.code == 400 and b"--gpus needs --gpu or --peak-tflops" in bad.value.read()
    finally:
        code, out, err = stop(proc)
    assert code == 0, err
    assert out == "" and err.strip() == "calculator stopped"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_serve_stops_on_sigterm_and_sighup_too(signum):
    """Both stop it as Ctrl-C does: gracefully, one line, exit status 0 (no traceback from the event loop)."""
    proc, url = start_server()
    with urllib.request.urlopen(url + "api/frontier?budget=1e22") as r:
        assert r.status == 200
    code, out, err = stop(proc, signum)
    assert code == 0 and out == "" and err.strip() == "calculator stopped", err


def test_serve_refuses_a_port_in_use():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = subprocess.run([sys.executable, "-m", "scalesweep", "serve", "--port", str(port)], capture_output=True,
                             text=True, timeout=120)
    assert res.returncode == 1
    assert res.stderr.strip() == (f"Error: cannot listen on 127.0.0.1:{port}: Address already in use; give another "
                                  "--port (0: any free port)")


def test_serve_options_are_checked(tmp_path):
    res = run(["serve", "--port", "70000"], ok=False)
    assert res.exit_code == 2 and "70000 is not in the range 0<=x<=65535" in res.stderr


# ---------------------------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def server():
    proc, url = start_server()
    yield url
    code, _, err = stop(proc)
    assert code == 0, err


def cells(page, table):
    return page.eval_on_selector_all(
        f"#{table} tbody tr", "rows => rows.map(r => Object.fromEntries(Array.from(r.cells, "
        "c => [c.getAttribute('data-column'), [c.textContent, c.getAttribute('data-value')]])))")


def answered(page, after: int) -> int:
    page.wait_for_function(f"Number(document.body.getAttribute('data-answered') || 0) > {after}")
    return int(page.get_attribute("body", "data-answered"))


def test_calculator_in_chromium(server, browser, tmp_path):  # noqa: F811
    origin = server.rstrip("/")
    w = watched_page(browser, (origin,), width=1300, height=1100,
                     permissions=("clipboard-read", "clipboard-write"), origin=origin)
    page = w.page
    try:
        page.goto(server)
        n = answered(page, 0)
        # the defaults: hoffmann2022 at 1e23 FLOPs
        want = api.frontier("hoffmann2022", [1e23])
        row = cells(page, "optimum")[0]
        for col in ("flops", "params", "tokens", "loss", "tokens_per_param"):
            assert float(row[col][1]) == want[col].iloc[0], col
            assert row[col][0] == f"{want[col].iloc[0]:.6g}"
        assert row["active_constraint"][0] == "none"
        # type the inputs: two laws, a budget in GPU-hours on 512 H100s at $2.5, models up to 70B
        page.fill("#in-law", QUERY["law"])
        page.select_option("#in-unit", "gpu_hours")
        page.select_option("#in-gpu", "H100-SXM")
        for name in ("budget", "gpus", "usd_per_gpu_hour", "max_params"):
            page.fill(f"#in-{name}", QUERY[name])
        page.wait_for_function("document.querySelectorAll('#optimum tbody tr').length === 2 && "
                               "document.querySelector('#optimum td[data-column=usd]') !== null")
        n = answered(page, n - 1)
        page.wait_for_timeout(400)  # the last edit's answer
        want = api.frontier("hoffmann2022,kaplan2020", [1e4], **API_ARGS)
        rows = cells(page, "optimum")
        assert [r["law"][0] for r in rows] == ["hoffmann2022", "kaplan2020"]
        for r, (_, exp) in zip(rows, want.iterrows(), strict=True):
            for col in ("flops", "params", "tokens", "loss", "tokens_per_param", "gpu_hours", "wall_days", "usd"):
                assert float(r[col][1]) == exp[col], col
                assert r[col][0] == f"{exp[col]:.6g}", col
            assert r["active_constraint"][0] == exp["active_constraint"]
        assert len(cells(page, "table")) == 2 * W.POINTS
        assert page.locator("#chart svg.main-svg").count() >= 1
        # the command line, copied, prints the table shown
        page.click("#copy")
        page.wait_for_selector("#copied:has-text('copied')")
        cmd = page.evaluate("navigator.clipboard.readText()")
        assert cmd == page.text_content("#command")
        out = tmp_path / "cli.parquet"
        run([*shlex.split(cmd)[1:], "-o", out])
        cli_table = pd.read_parquet(out)
        shown = cells(page, "table")
        assert [float(r["params"][1]) if r["params"][1] else None for r in shown] == \
            [None if np.isnan(v) else v for v in cli_table["params"]]
        # the Parquet download is that table too
        with page.expect_download() as dl:
            page.click("#download-parquet button")
        path = tmp_path / "download.parquet"
        dl.value.save_as(path)
        assert pd.read_parquet(path).equals(cli_table)
        page.mouse.move(0, 0)
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, "calculator")
        assert w.errors == [] and w.refused == []
        # a bad input: the message on the page, a 400 answer, the numbers marked stale
        with page.expect_response(lambda r: "/api/frontier?" in r.url and "gpu=" not in r.url) as resp:
            page.select_option("#in-gpu", "")
        assert resp.value.status == 400
        page.wait_for_selector("#error:has-text('--gpus needs --gpu or --peak-tflops')")
        assert page.get_attribute("body", "data-status") == "400"
        assert "stale" in page.get_attribute("#results", "class")
        assert all("400" in e for e in w.errors)  # Chromium logs the failed fetch, nothing else
        page.select_option("#in-gpu", "H100-SXM")
        page.wait_for_function("document.getElementById('error').textContent === ''")
        assert w.refused == []
    finally:
        w.context.close()
