"""``scalesweep report``: one self-contained HTML file from frontier, scenarios, target-loss and fit outputs.

Without a browser: what the file holds (plotly.js inlined, nothing loaded from elsewhere, the metadata, the
table's exact values), the input formats, and one-line errors that leave no file. In headless Chromium
(tests/browser.py): the report opens with no request other than the file itself and no console error, its
charts draw (SVG), hover shows a row's values, the law checkboxes hide and show traces, a drag zooms, and
the table shows the Parquet file's values.
"""

import html
import io
import json
import math
import os
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scalesweep.errors import ScalesweepError

from .browser import browser, screenshot, watched_page  # noqa: F401  (browser is a fixture)
from .helpers import assert_one_line_error, run

pytest.importorskip("plotly", reason="the report needs plotly (pip install 'scalesweep[report]')")
R = pytest.importorskip("scalesweep.report")

FRONTIER_ARGS = ["frontier", "--law", "hoffmann2022,kaplan2020", "--flops-range", "1e20:1e24:5", "--gpu", "H100",
                 "--gpus", "1024", "--usd-per-gpu-hour", "2.5", "--max-params", "70B"]


class Cells(HTMLParser):
    """The cells of the tables of an HTML text: {table id: (header names, rows of (text, data-value))}."""

    def __init__(self):
        super().__init__()
        self.tables, self._id, self._cell, self._row, self._in = {}, None, None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self._id = a["id"]
            self.tables[self._id] = ([], [])
        elif self._id and tag == "tr":
            self._row = []
        elif self._id and tag in ("td", "th"):
            self._in, self._cell = tag, ["", a.get("data-value")]

    def handle_data(self, data):
        if self._in:
            self._cell[0] += data

    def handle_endtag(self, tag):
        if not self._id:
            return
        if tag in ("td", "th") and self._in:
            self._row.append((self._in, *self._cell))
            self._in = None
        elif tag == "tr" and self._row is not None:
            if all(kind == "th" for kind, _, _ in self._row):
                self.tables[self._id][0].extend(text for _, text, _ in self._row)
            else:
                self.tables[self._id][1].append([(text, value) for _, text, value in self._row])
            self._row = None
        elif tag == "table":
            self._id = None


def cells(path):
    p = Cells()
    p.feed(open(path, encoding="utf-8").read())
    return p.tables


def expected_cell(v):
    """(text, data-value) a report shows for a value read from a file."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "", ""
    if isinstance(v, (bool, np.bool_)):
        return ("true", "true") if v else ("false", "false")
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}", repr(float(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v)), str(int(v))
    return str(v), str(v)


def assert_table_matches(html_path, table_id, df):
    """The HTML table shows every row of ``df``: its columns, each value to 6 digits and exactly in data-value."""
    head, rows = cells(html_path)[table_id]
    assert head == [str(c) for c in df.columns]
    assert len(rows) == len(df)
    for row, (_, want) in zip(rows, df.iterrows(), strict=True):
        assert row == [expected_cell(v) for v in want.tolist()]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Result files as the commands write them: a two-law frontier (Parquet, and one law as CSV, JSON, JSON
    Lines, Arrow), scenarios, a target-loss table and a fit's law file."""
    d = tmp_path_factory.mktemp("results")
    out = {"frontier": d / "f.parquet"}
    run([*FRONTIER_ARGS, "-o", out["frontier"]])
    for fmt in ("csv", "json", "jsonl", "arrow"):
        out[fmt] = d / f"f.{fmt}"
        run(["frontier", "--flops-range", "1e20:1e24:5", "--max-tokens", "1T", "-o", out[fmt]])
    out["scenarios"] = d / "s.parquet"
    run(["scenarios", os.path.join(os.path.dirname(__file__), "..", "data", "example_sweep.yaml"), "-o",
         out["scenarios"]])
    out["target"] = d / "t.parquet"
    run(["target-loss", "--loss", "2.2,2.0,1.9", "--law", "hoffmann2022,kaplan2020", "-o", out["target"]])
    runs = d / "runs.csv"
    rng = np.random.default_rng(0)
    n = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 40))
    tok = n * np.exp(rng.uniform(np.log(5), np.log(80), 40))
    loss = 1.8 + 400 / n**0.34 + 410 / tok**0.28
    pd.DataFrame({"params": n, "tokens": tok, "loss": loss}).to_csv(runs, index=False)
    out["runs"] = runs
    out["law"] = d / "law.json"
    out["law"].write_text(json.dumps({
        "family": "chinchilla", "parameters": {"E": 1.8, "A": 400.0, "B": 410.0, "alpha": 0.34, "beta": 0.28},
        "fit": {"method": "lbfgs", "n_points": 40, "objective": "huber", "runs_file": str(runs)}}))
    return out


def report(tmp_path, *inputs, name="report.html", args=()):
    out = tmp_path / name
    res = run(["report", *map(str, inputs), "-o", out, *args])
    assert res.stderr.strip().endswith(f"wrote {out} from {len(inputs)} result{'s' if len(inputs) != 1 else ''}")
    return out


# ------------------------------------------------------------------------------------ the file, no browser


def test_frontier_report_is_self_contained_and_shows_the_file(tmp_path, results):
    out = report(tmp_path, results["frontier"])
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    from plotly.offline import get_plotlyjs

    assert get_plotlyjs() in text  # plotly.js inlined, from the installed package
    assert "<script src" not in text and "<link" not in text and "@import" not in text
    meta = json.loads(pq.read_schema(results["frontier"]).metadata[b"scalesweep"])
    for shown in (meta["command_line"], "max_params 7e+10", "gpu H100-SXM", meta["scalesweep_version"],
                  "Hoffmann et al. 2022", "Kaplan et al. 2020"):
        assert html.escape(shown) in text, shown
    df = pd.read_parquet(results["frontier"])
    df = df.astype({c: object for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)})
    assert_table_matches(out, "r0-table", df)
    figures = json.loads(text.split('id="scalesweep-figures">', 1)[1].split("</script>", 1)[0])
    assert sorted(figures) == [f"r0-chart{k}" for k in range(4)]
    for fig in figures.values():
        assert [t["name"] for t in fig["data"]] == ["hoffmann2022", "kaplan2020"]
    params = figures["r0-chart0"]["data"][0]
    h = df[df["law"] == "hoffmann2022"]
    assert params["x"] == h["flops"].tolist() and params["y"] == h["params"].tolist()
    assert "gpu_hours: %{customdata[" in params["hovertemplate"]


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "arrow"])
def test_other_table_formats(tmp_path, results, fmt):
    out = report(tmp_path, results[fmt])
    want = run(["frontier", "--flops-range", "1e20:1e24:5", "--max-tokens", "1T", "-o", tmp_path / "ref.parquet"])
    assert want.exit_code == 0
    df = pd.read_parquet(tmp_path / "ref.parquet")
    df = df.astype({c: object for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)})
    assert_table_matches(out, "r0-table", df)
    text = out.read_text(encoding="utf-8")
    if fmt == "arrow":
        meta = json.loads(pa.ipc.open_file(str(results[fmt])).schema.metadata[b"scalesweep"])
        assert html.escape(meta["command_line"]) in text and "max_tokens 1e+12" in text
    else:
        assert "CSV and JSON files carry no scalesweep metadata" in text
    assert "max_tokens" in text  # the active limit is in the table


def test_scenarios_target_loss_and_law_file_in_one_report(tmp_path, results):
    out = report(tmp_path, results["scenarios"], results["target"], results["law"], args=["--title", "Plans <1>"])
    text = out.read_text(encoding="utf-8")
    assert "<title>Plans &lt;1&gt;</title>" in text
    tables = cells(out)
    assert len(tables["r0-table"][1]) == 144  # every scenario
    figures = json.loads(text.split('id="scalesweep-figures">', 1)[1].split("</script>", 1)[0])
    assert {t["name"] for t in figures["r0-chart0"]["data"]} == {"hoffmann2022", "besiroglu2024", "kaplan2020"}
    assert all(t["mode"] == "markers" for t in figures["r0-chart0"]["data"])  # scenarios are points, not lines
    assert figures["r1-chart0"]["layout"]["xaxis"]["title"]["text"].startswith("Target loss")
    t = pd.read_parquet(results["target"])
    t = t.astype({c: object for c in t.columns if isinstance(t[c].dtype, pd.CategoricalDtype)})
    assert_table_matches(out, "r1-table", t)
    # the law file: its frontier from the API, and the runs it names, observed against fitted
    from scalesweep import api
    from scalesweep.laws import load_law_file

    law = load_law_file(results["law"])
    f = api.frontier(law, np.logspace(18, 26, R.LAW_FILE_FRONTIER[2]))
    head, rows = tables["r2-table"]
    assert [float(r[head.index("params")][1]) for r in rows] == f["params"].tolist()
    runs = [fig for k, fig in figures.items() if k.startswith("r2-") and fig["data"][0]["name"] == "observed"]
    assert len(runs) == 1 and len(runs[0]["data"][0]["x"]) == 40
    assert "fit runs_file" in text and "lbfgs" in text


def test_law_file_of_a_family_without_a_frontier_lists_its_parameters(tmp_path):
    path = tmp_path / "n.json"
    path.write_text(json.dumps({"preset": "kaplan2020-N"}))
    out = report(tmp_path, path)
    text = out.read_text(encoding="utf-8")
    assert "family kaplan_single has no loss-minimising frontier; its parameters are listed only" in text
    assert 'id="scalesweep-figures">{}' in text  # nothing to draw
    head, rows = cells(out)["r0-table"]
    assert [(r[0][0], r[1]) for r in rows] == [("X_c", ("8.8e+13", repr(8.8e13))), ("alpha", ("0.076", "0.076")),
                                                 ("variable", ("0", "0.0"))]


def test_target_loss_csv_is_drawn_against_the_target(tmp_path):
    path = tmp_path / "t.csv"
    run(["target-loss", "--loss", "2.2,2.0", "-o", path])
    out = report(tmp_path, path)
    text = out.read_text(encoding="utf-8")
    figures = json.loads(text.split('id="scalesweep-figures">', 1)[1].split("</script>", 1)[0])
    assert [f["layout"]["yaxis"]["title"]["text"] for f in figures.values()] == [
        "Training compute (FLOP)", "Model size N (parameters)", "Training tokens D (tokens)"]
    t = pd.read_csv(path).sort_values("target_loss")  # a line is drawn in the order of its x values
    assert figures["r0-chart0"]["data"][0]["x"] == [2.0, 2.2] == t["target_loss"].tolist()
    assert figures["r0-chart0"]["data"][0]["y"] == t["flops"].tolist()


def test_big_tables_are_sampled_and_say_so(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "MAX_ROWS", 100)
    monkeypatch.setattr(R, "MAX_TABLE_ROWS", 30)
    path = tmp_path / "big.parquet"
    run(["frontier", "--flops-range", "1e18:1e26:1000", "-o", path])
    out = tmp_path / "big.html"
    R.write_report([path], out)
    text = out.read_text(encoding="utf-8")
    assert "1,000 rows: every 10th row is drawn" in text
    assert "The table shows the first 30 of the 100 rows read." in text
    assert len(cells(out)["r0-table"][1]) == 30


def test_values_cannot_break_out_of_the_page(tmp_path):
    bad = "</script><script>alert(1)</script>"
    path = tmp_path / "evil.csv"
    pd.DataFrame({"law": [bad, bad], "flops": [1e20, 1e21], "params": [1e9, 2e9], "tokens": [2e10, 8e10],
                  "loss": [2.5, 2.3]}).to_csv(path, index=False)
    out = report(tmp_path, path)
    assert bad not in out.read_text(encoding="utf-8")
    assert cells(out)["r0-table"][1][0][0][0] == bad  # shown as text


@pytest.mark.parametrize("make, needle", [
    (lambda d: d / "missing.parquet", "result '{d}/missing.parquet' does not exist"),
    (lambda d: (pq.write_table(pa.table({"flops": [1e20]}), d / "plain.parquet"), d / "plain.parquet")[1],
     "is not a scalesweep table: it has no scalesweep metadata"),
    (lambda d: (d.joinpath("other.csv").write_text("a,b\n1,2\n"), d / "other.csv")[1],
     "is not a scalesweep table: 'a' is not a scalesweep column"),
    (lambda d: (d.joinpath("runs.csv").write_text("params,tokens,loss\n1e9,2e10,2.5\n"), d / "runs.csv")[1],
     "has no flops or target_loss column"),
    (lambda d: (d.joinpath("junk.parquet").write_bytes(b"not parquet"), d / "junk.parquet")[1],
     "cannot read result"),
    (lambda d: (d.joinpath("x.json").write_text('{"family": "nope"}'), d / "x.json")[1], "unknown family 'nope'"),
    (lambda d: (d.joinpath("x.jsonl").write_text('{"flops": 1e20}\n[1]\n'), d / "x.jsonl")[1],
     "expected a JSON array of row objects"),
    (lambda d: (d.joinpath("spec.yaml").write_text("flops: 1e20\n"), d / "spec.yaml")[1],
     "cannot tell its format from the suffix"),
])
def test_bad_inputs_are_one_line_errors_and_write_nothing(tmp_path, make, needle):
    src = make(tmp_path)
    out = tmp_path / "r.html"
    res = run(["report", src, "-o", out], ok=False)
    assert_one_line_error(res, needle.format(d=tmp_path), code=1)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def _csv(d, name, text):
    d.joinpath(name).write_text(text)
    return d / name


RUNS_CSV = "flops,params,tokens,loss\n1e18,2e7,8e9,4.6\n1e18,3e7,5e9,4.5\n1e19,5e7,3e10,3.9\n"


@pytest.mark.parametrize("make, needle", [
    # a runs file: every column is a scalesweep column, but several rows share a budget
    (lambda d: _csv(d, "runs.csv", RUNS_CSV), "result '{d}/runs.csv' looks like a runs file, not a result"),
    (lambda d: (d.joinpath("runs.json").write_text(pd.read_csv(io.StringIO(RUNS_CSV)).to_json(orient="records")),
                d / "runs.json")[1], "looks like a runs file"),
    # values no result holds (the row counts from 1, as in the file)
    (lambda d: _csv(d, "text.csv", "flops,params\n1e20,1e9\n1e21,abc\n"),
     "result '{d}/text.csv': row 2, column 'params': 'abc' is not a number"),
    (lambda d: _csv(d, "neg.csv", "flops,params\n-1e20,1e9\n"), "row 1, column 'flops': -1e+20 must be > 0"),
    (lambda d: _csv(d, "zero.csv", "flops,params\n1e20,0\n"), "row 1, column 'params': 0.0 must be > 0"),
    (lambda d: _csv(d, "inf.csv", "flops,params,tokens,loss\n1e20,1e9,inf,2\n"),
     "row 1, column 'tokens': inf is infinite"),
    (lambda d: _csv(d, "nanflops.csv", "flops,params\nnan,1e9\n"),
     "row 1, column 'flops' has no value (only a target-loss row may have no budget)"),
    (lambda d: _csv(d, "nanlaw.csv", "scenario_id,flops,params\n,1e20,1e9\n"),
     "row 1, column 'scenario_id' has no value, and this column always has one"),
    (lambda d: _csv(d, "bool.csv", "flops,params\n1e20,true\n"), "column 'params' holds true/false"),
    (lambda d: (d.joinpath("neg.json").write_text('[{"flops": 1e20, "loss": -2}]'), d / "neg.json")[1],
     "row 1, column 'loss': -2.0 must be > 0"),
    (lambda d: _csv(d, "long.csv", "flops,params\n1e20," + "x" * 5000 + "\n"), "(5,000 characters) is not a number"),
])
def test_tables_that_are_not_results_are_refused(tmp_path, make, needle):
    src = make(tmp_path)
    out = tmp_path / "r.html"
    res = run(["report", src, "-o", out], ok=False)
    assert_one_line_error(res, needle.format(d=tmp_path), code=1)
    assert len(res.stderr) < 400
    assert not out.exists()


def test_a_fit_isoflop_table_is_refused_as_csv_and_as_parquet(tmp_path):
    runs = os.path.join(os.path.dirname(__file__), "..", "data", "example_isoflop_runs.csv")
    for suffix, needle in ((".csv", "is a table of `scalesweep fit-isoflop --table` (column 'runs'), not a result"),
                           (".parquet", "was written by `scalesweep fit-isoflop`")):
        table = tmp_path / f"budgets{suffix}"
        run(["fit-isoflop", runs, "-o", tmp_path / f"law{suffix}.json", "--table", table, "--bootstrap", "0"])
        res = run(["report", table, "-o", tmp_path / "r.html"], ok=False)
        assert_one_line_error(res, needle, code=1)
    assert not (tmp_path / "r.html").exists()


def test_infeasible_rows_and_target_loss_rows_may_have_no_values(tmp_path):
    path = tmp_path / "f.csv"
    run(["frontier", "--flops-range", "1e18:1e24:4", "--max-params", "1B", "--max-tokens", "100B", "-o", path])
    assert pd.read_csv(path)["loss"].isna().sum() == 2  # two infeasible budgets: empty values
    report(tmp_path, path)
    path = tmp_path / "t.csv"
    _csv(tmp_path, "t.csv", "target_loss,flops,params,tokens\n1.0,,,\n2.0,1e22,1e9,2e10\n")
    report(tmp_path, path, name="t.html")


def test_invisible_characters_are_shown_escaped(tmp_path):
    path = tmp_path / "law.csv"
    pd.DataFrame({"law": ["a\u202eb\x01c", "a\u202eb\x01c"], "flops": [1e20, 1e21], "params": [1e9, 2e9]}).to_csv(
        path, index=False)
    text = report(tmp_path, path).read_text(encoding="utf-8").split("</head>", 1)[1]  # after plotly.js
    assert "\u202e" not in text and "\x01" not in text
    assert "a\\u202eb\\u0001c" in text


def test_surface_files_are_refused_by_name(tmp_path):
    path = tmp_path / "s.parquet"
    run(["surface", "--params-range", "1e8:1e9:3", "--tokens-range", "1e9:1e10:3", "-o", path])
    res = run(["report", path, "-o", tmp_path / "r.html"], ok=False)
    assert_one_line_error(res, "was written by `scalesweep surface`; a report draws the tables of", code=1)


@pytest.mark.parametrize("target, needle", [
    ("nodir/r.html", "directory '{d}/nodir' does not exist"),
    ("r.txt", "a report is HTML; give a .html name"),
    ("f.parquet", "it is an input of this command"),
    ("sub/", "a name ending in / is a directory"),
    ("f.parquet/r.html", "directory '{d}/f.parquet' does not exist"),
])
def test_bad_outputs_are_refused_before_reading(tmp_path, results, target, needle):
    src = tmp_path / "f.parquet"
    src.write_bytes(results["frontier"].read_bytes())
    before = src.read_bytes()
    res = run(["report", src, "-o", f"{tmp_path}/{target}"], ok=False)
    assert_one_line_error(res, needle.format(d=tmp_path))
    assert src.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_unwritable_directory(tmp_path, results):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    res = run(["report", results["frontier"], "-o", ro / "r.html"], ok=False)
    assert_one_line_error(res, "is not writable", code=1)


def test_a_failed_report_keeps_the_older_file(tmp_path, results, monkeypatch):
    out = report(tmp_path, results["frontier"])
    before = out.read_bytes()

    def broken(*a, **k):
        raise ScalesweepError("boom")

    monkeypatch.setattr(R, "_section", broken)
    res = run(["report", results["csv"], "-o", out], ok=False)
    assert_one_line_error(res, "boom", code=1)
    assert out.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_without_plotly_the_error_names_the_extra(tmp_path, results, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_plotly(name, *args, **kwargs):
        if name.startswith("plotly"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_plotly)
    res = run(["report", results["frontier"], "-o", tmp_path / "r.html"], ok=False)
    assert_one_line_error(res, "pip install 'scalesweep[report]'", code=1)
    assert not (tmp_path / "r.html").exists()


# ---------------------------------------------------------------------------------------------- browser


def test_report_in_chromium(tmp_path, results, browser):  # noqa: F811
    # the frontier made by the command in its own process, so that its metadata holds its real command line
    frontier_file = tmp_path / "frontier.parquet"
    subprocess.run([sys.executable, "-m", "scalesweep", *FRONTIER_ARGS, "-o", str(frontier_file)], check=True,
                   capture_output=True, timeout=300)
    out = report(tmp_path, frontier_file, results["scenarios"])
    url = out.as_uri()
    w = watched_page(browser, (url,), width=1300, height=1000)
    page = w.page
    try:
        page.goto(url)
        page.wait_for_function("document.querySelectorAll('.chart svg.main-svg').length >= 8")
        assert w.refused == [] and w.requests == [url]
        screenshot(page, "report")
        # every chart div drew SVG with one trace per law
        for k in range(4):
            assert page.locator(f"#r0-chart{k} svg.main-svg").count() >= 1
            assert page.locator(f"#r0-chart{k} .scatterlayer .trace").count() == 2
        # the table shows the Parquet file's values
        df = pd.read_parquet(frontier_file)
        shown = page.eval_on_selector_all("#r0-table tbody tr", "rows => rows.map(r => Array.from(r.cells, "
                                          "c => [c.textContent, c.getAttribute('data-value')]))")
        df = df.astype({c: object for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)})
        assert shown == [[list(expected_cell(v)) for v in row] for row in df.itertuples(index=False, name=None)]
        # hover a point: the label lists the row's values
        point = page.locator("#r0-chart0 .scatterlayer .trace").first.locator(".points path").nth(2)
        point.scroll_into_view_if_needed()
        box = point.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_selector("#r0-chart0 .hoverlayer .hovertext")
        label = page.eval_on_selector("#r0-chart0 .hoverlayer .hovertext",
                                      "g => Array.from(g.querySelectorAll('tspan.line'), t => t.textContent).join('\\n')")
        row = df[df["law"] == "hoffmann2022"].iloc[2]
        for col in ("flops", "params", "tokens", "loss", "gpu_hours", "usd"):
            assert f"{col}: {row[col]:.6g}" in label, (col, label)
        # a law's checkbox hides its traces in every chart of its section, and shows them again
        box = page.locator('input.law-toggle[data-section="r0"][data-law="kaplan2020"]')
        visible = "[0,1,2,3].map(k => document.getElementById('r0-chart' + k).data.map(t => t.visible))"
        box.uncheck()
        shown_now = page.evaluate(visible)
        assert [v[1] for v in shown_now] == ["legendonly"] * 4 and all(v[0] in (None, True) for v in shown_now)
        assert page.locator("#r0-chart0 .scatterlayer .trace").count() == 1
        box.check()
        assert all(v[1] is True for v in page.evaluate(visible))
        # drag a box: the x axis zooms in
        before = page.evaluate("document.getElementById('r0-chart1').layout.xaxis.range.slice()")
        drag = page.locator("#r0-chart1 .nsewdrag").bounding_box()
        page.mouse.move(drag["x"] + drag["width"] * 0.3, drag["y"] + drag["height"] * 0.3)
        page.mouse.down()
        page.mouse.move(drag["x"] + drag["width"] * 0.6, drag["y"] + drag["height"] * 0.6, steps=8)
        page.mouse.up()
        after = page.evaluate("document.getElementById('r0-chart1').layout.xaxis.range.slice()")
        assert before[0] < after[0] < after[1] < before[1]
        assert w.errors == []
        assert w.refused == []
    finally:
        w.context.close()
