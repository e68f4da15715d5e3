"""The HTML report: numbers equal the marts, it renders in a real browser, fully offline."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.cli import main
from orchestration.report import latest_report, load_report_data
from orchestration.report.render import render_report
from tests.pipeline_utils import query

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ALWAYS_DRAWN = {"profiles", "rfm", "clv", "churn", "cohorts"}
# Schemes a self-contained page may load; the browser's own traffic is told apart below.
LOCAL_SCHEMES = ("file:", "data:", "about:", "chrome:", "blob:")
BLINK_RESOURCE_LOADER = "101845102"  # Chromium's traffic annotation for a page's subresources
SHAPES = {"path", "rect", "polygon", "use", "line", "polyline", "circle"}
VOID = {"br", "img", "hr", "wbr", "input", "meta", "link"}  # no end tag in HTML


# ---------------------------------------------------------------- helpers


class Metrics(HTMLParser):
    """Elements with a ``data-metric`` attribute: their attributes and text."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict] = []
        self._open: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "data-metric" in attrs:
            self._open.append({**attrs, "tag": tag, "text": ""})
        elif self._open and tag not in VOID:
            self._open.append({"tag": tag, "skip": True})

    def handle_endtag(self, tag):
        if self._open:
            done = self._open.pop()
            if not done.get("skip"):
                self.found.append(done)

    def handle_data(self, data):
        for element in self._open:
            if not element.get("skip"):
                element["text"] += data

    def get(self, name: str, **attrs) -> dict:
        hits = [
            m
            for m in self.found
            if m["data-metric"] == name
            and all(m.get(f"data-{k}") == str(v) for k, v in attrs.items())
        ]
        assert len(hits) == 1, f"{len(hits)} elements data-metric={name} {attrs}"
        return hits[0]


class Charts(HTMLParser):
    """Every top-level ``<svg>`` inside a ``figure.chart``: size and drawn shapes."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[str] = []
        self.svgs: list[dict] = []
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "figure" and "data-chart" in attrs:
            self.figures.append(attrs["data-chart"])
        if tag == "svg":
            if self._depth == 0:
                self.svgs.append(
                    {
                        "figure": self.figures[-1] if self.figures else None,
                        "width": attrs.get("width"),
                        "height": attrs.get("height"),
                        "shapes": 0,
                        "texts": 0,
                    }
                )
            self._depth += 1
        elif self._depth:
            self.svgs[-1]["shapes"] += tag in SHAPES
            self.svgs[-1]["texts"] += tag == "text"

    def handle_endtag(self, tag):
        if tag == "svg" and self._depth:
            self._depth -= 1


def _size(value: str | None) -> float:
    return float("".join(c for c in (value or "0") if c.isdigit() or c == ".") or 0)


def chromium(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run headless Chromium with a fresh profile; FAIL (not skip) without it."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: the report's browser tests need Chromium. Install it with "
            "`sudo apt-get install chromium` (Debian/Ubuntu package `chromium`)."
        )
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        out = subprocess.run(
            [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def page_requests(netlog: Path) -> set[str]:
    """URLs the page asked the network stack for, from a Chromium net log.

    The browser's own background traffic (sign-in, time sync) is made for no page;
    requests made for the file:// page carry its network isolation key, or Blink's
    subresource traffic annotation.
    """
    log = json.loads(netlog.read_text(encoding="utf-8"))
    types = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    urls: dict[int, str] = {}
    mine: set[int] = set()
    for event in log["events"]:
        kind, params = types.get(event["type"]), event.get("params") or {}
        source = event["source"]["id"]
        if "url" in params and kind in ("REQUEST_ALIVE", "URL_REQUEST_START_JOB"):
            urls.setdefault(source, params["url"])
        key = str(params.get("network_isolation_key", ""))
        if (
            key.startswith("file://")
            or params.get("initiator") == "null"
            or str(params.get("traffic_annotation")) == BLINK_RESOURCE_LOADER
        ):
            mine.add(source)
    return {urls[s] for s in mine if s in urls}


def external(urls: set[str]) -> set[str]:
    return {u for u in urls if not u.startswith(LOCAL_SCHEMES)}


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def report(published_demo) -> Path:
    path = latest_report(published_demo)
    assert path.is_file(), "the pipeline run did not write reports/latest.html"
    return path


@pytest.fixture(scope="module")
def metrics(report) -> Metrics:
    parser = Metrics()
    parser.feed(report.read_text(encoding="utf-8"))
    return parser


# ---------------------------------------------------------------- numbers


def test_headline_numbers_equal_the_marts(published_demo, metrics):
    wd = published_demo
    ((customers, churners, at_risk),) = query(
        wd,
        "select count(*), sum(churn_probability), sum(revenue_at_risk) from marts.dim_customer",
    )
    ((segments,),) = query(wd, "select count(*) from marts.dim_segment")
    assert int(metrics.get("customers")["data-value"]) == customers
    assert metrics.get("customers")["text"] == f"{customers:,}"
    assert int(metrics.get("segments")["data-value"]) == segments
    assert float(metrics.get("revenue-at-risk")["data-value"]) == pytest.approx(at_risk, rel=1e-9)
    assert float(metrics.get("expected-churners")["data-value"]) == pytest.approx(churners)
    for name, size in query(
        wd, "select segment_name, count(*) from marts.dim_customer group by segment_name"
    ):
        element = metrics.get("segment-customers", segment=name)
        assert int(element["data-value"]) == size
        assert element["text"] == f"{size:,}"


def test_top_actions_equal_the_campaign_targets(published_demo, metrics):
    top = query(
        published_demo,
        "select recommended_action, segment_name, count(*) as n, sum(expected_value) as v "
        "from marts.mart_campaign_targets group by all order by v desc limit 3",
    )
    assert top, "the demo should select customers for a campaign"
    actions = [m for m in metrics.found if m["data-metric"] == "action"]
    assert len(actions) == len(top)
    for rank, (_action, _segment, n, value) in enumerate(top, start=1):
        assert int(metrics.get("action-customers", rank=rank)["data-value"]) == n
        shown = float(metrics.get("action-value", rank=rank)["data-value"])
        assert shown == pytest.approx(value, rel=1e-9)
    ((n_all, v_all),) = query(
        published_demo, "select count(*), sum(expected_value) from marts.mart_campaign_targets"
    )
    assert int(metrics.get("targets-customers")["data-value"]) == n_all
    assert float(metrics.get("targets-value")["data-value"]) == pytest.approx(v_all, rel=1e-9)


def test_data_quality_section_lists_every_suite_with_its_docs(published_demo, report):
    html = report.read_text(encoding="utf-8")
    summaries = sorted((published_demo / "validation").glob("*.json"))
    assert len(summaries) >= 7  # one per suite, written by data_quality.validate
    for path in summaries:
        summary = json.loads(path.read_text(encoding="utf-8"))
        assert summary["suite"] == path.stem and summary["passed"] is True
        assert summary["rows_validated"] <= summary["rows"]
        assert f"<td>{summary['suite']}</td>" in html
    assert 'href="data_docs/index.html"' in html
    assert (report.parent / "data_docs" / "index.html").is_file()
    ((loaded,),) = query(published_demo, "select sum(rows_loaded) from raw.load_log")
    assert f"{loaded:,} loaded" in html
    dated = list(report.parent.glob("report_*_*.html"))
    assert dated and dated[0].read_text(encoding="utf-8") == html


# ---------------------------------------------------------------- in a browser


def test_report_renders_in_headless_chromium(published_demo, report, tmp_path):
    png = tmp_path / "report.png"
    chromium(f"--screenshot={png}", "--window-size=1400,6000", report.as_uri())
    assert png.is_file()
    from PIL import Image, ImageStat

    with Image.open(png) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (1400, 6000)
        colours = rgb.getcolors(maxcolors=1 << 24)
        assert len(colours) > 500, "the screenshot is (nearly) blank"
        assert max(ImageStat.Stat(rgb).stddev) > 15
    kept = published_demo / "reports" / "report_screenshot.png"
    shutil.copyfile(png, kept)
    print(f"screenshot: {kept}")


def test_every_chart_is_a_drawn_inline_svg(published_demo, report):
    dom = chromium("--dump-dom", report.as_uri()).stdout
    expected = set(ALWAYS_DRAWN)
    if query(published_demo, "select count(*) from ml.churn_drivers")[0][0]:
        expected.add("drivers")
    if query(published_demo, "select count(*) from marts.mart_segment_migration")[0][0]:
        expected.add("migration")
    parser = Charts()
    parser.feed(dom)
    assert {s["figure"] for s in parser.svgs} == expected
    assert len(parser.svgs) == len(expected) == len(set(parser.figures))
    for svg in parser.svgs:
        assert _size(svg["width"]) > 0 and _size(svg["height"]) > 0, svg
        assert svg["shapes"] > 5 and svg["texts"] > 0, svg


def test_report_loads_nothing_from_the_network(report, tmp_path):
    netlog = tmp_path / "netlog.json"
    chromium(
        f"--log-net-log={netlog}",
        "--net-log-capture-mode=Everything",
        "--dump-dom",
        report.as_uri(),
    )
    assert external(page_requests(netlog)) == set()


def test_network_check_detects_an_external_image(report, tmp_path):
    """The net-log parsing really sees a page's request (so the check above can fail)."""
    page = tmp_path / "injected.html"
    html = report.read_text(encoding="utf-8")
    page.write_text(html.replace("<body>", '<body><img src="http://127.0.0.1:9/x.png">', 1))
    netlog = tmp_path / "netlog.json"
    chromium(
        f"--log-net-log={netlog}", "--net-log-capture-mode=Everything", "--dump-dom", page.as_uri()
    )
    assert external(page_requests(netlog)) == {"http://127.0.0.1:9/x.png"}


class Scripts(HTMLParser):
    """Whatever would run code in a browser: script elements (HTML or SVG), event-handler
    attributes, javascript: URLs, and frames or objects that load another document."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "iframe", "object", "embed"):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"{tag} {name}=")
            if (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"{tag} {name}=javascript:")


def _scripts(html: str) -> list[str]:
    parser = Scripts()
    parser.feed(html)
    return parser.found


def test_report_has_no_scripts(report):
    """README: the report opens offline and can be mailed as one file, without scripts."""
    assert _scripts(report.read_text(encoding="utf-8")) == []


def test_script_check_finds_a_script_an_event_handler_and_a_javascript_link(report):
    """The check above can fail: each kind of script put into the real report is found."""
    html = report.read_text(encoding="utf-8")
    injected = html.replace(
        "<body>",
        '<body><svg><script>alert(1)</script></svg><div onclick="x()"></div>'
        '<a href=" JavaScript:x()">a</a>',
        1,
    )
    assert _scripts(injected) == ["<script>", "div onclick=", "a href=javascript:"]


# ---------------------------------------------------------------- CLI


def test_cli_report_prints_and_opens_the_latest(published_demo, report, capsys, monkeypatch):
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url, *a, **k: opened.append(url) or True)
    assert main(["report", "--workdir", str(published_demo)]) == 0
    assert capsys.readouterr().out.strip() == str(report.resolve())
    assert main(["report", "--workdir", str(published_demo), "--open"]) == 0
    assert capsys.readouterr().out.strip() == str(report.resolve())
    assert opened == [report.resolve().as_uri()]


def test_cli_report_without_a_report_fails_clearly(tmp_path, capsys):
    assert main(["report", "--workdir", str(tmp_path), "--open"]) == 1
    err = capsys.readouterr().err
    assert "no report yet" in err and str(tmp_path / "reports" / "latest.html") in err


# ---------------------------------------------------------------- empty / first run


def test_empty_warehouse_renders_no_data_sentences(tmp_path):
    with duckdb.connect() as con:  # no tables at all
        data = load_report_data(con, tmp_path)
    html = render_report(data, "run-0000", datetime(2026, 1, 1, tzinfo=UTC))
    assert "<svg" not in html
    assert html.count("No data yet") >= 5
    assert 'data-metric="customers"' not in html


def test_first_run_and_later_runs_render_migration(published_demo, tmp_path):
    with duckdb.connect(str(published_demo / "warehouse.duckdb"), read_only=True) as con:
        data = load_report_data(con, published_demo)
    data.drivers = data.drivers.iloc[0:0]  # a churn model fallback has no drivers
    first = render_report(data, "run-0001", datetime(2026, 1, 1, tzinfo=UTC))
    assert "No data yet: segment migration compares two runs" in first
    assert "No churn drivers yet" in first
    names = list(data.segments["segment_name"][:2])
    data.migration = pd.DataFrame(
        {
            "from_snapshot_date": pd.Timestamp("2026-01-01"),
            "to_snapshot_date": pd.Timestamp("2026-02-01"),
            "from_segment": [names[0], names[0], "(new customer)", names[1]],
            "to_segment": [names[0], names[1], names[1], "(no longer present)"],
            "customers": [90, 10, 5, 3],
            "share_of_from": [0.9, 0.1, 1.0, 1.0],
        }
    )
    later = render_report(data, "run-0002", datetime(2026, 2, 1, tzinfo=UTC))
    parser = Charts()
    parser.feed(later)
    assert "migration" in {s["figure"] for s in parser.svgs}
    assert "90 of the existing customers (87%) stayed" in later


def test_validation_summary_json_feeds_the_report(tmp_path, published_demo):
    from data_quality.validate import ExpectationOutcome, ValidationOutcome, write_summary

    failed = ExpectationOutcome(
        "expect_column_values_to_not_be_null", "customer_id", "critical", False, 3, ["a"]
    )
    outcome = ValidationOutcome("raw_transactions", "raw.transactions", 10, 10, 0.1, [failed])
    path = write_summary(outcome, tmp_path / "validation")
    summary = json.loads(path.read_text(encoding="utf-8"))
    assert path.name == "raw_transactions.json" and summary["passed"] is False
    assert summary["failed"][0]["unexpected_count"] == 3 and summary["docs_index"] is None
    with duckdb.connect(str(published_demo / "warehouse.duckdb"), read_only=True) as con:
        data = load_report_data(con, tmp_path)
    html = render_report(data, "run-0003", datetime(2026, 1, 1, tzinfo=UTC))
    assert "1 of 1 suites failed" in html
    assert "column values to not be null (customer_id)" in html


def test_number_formats():
    from orchestration.report.markup import fmt_int, fmt_money, fmt_pct

    assert [fmt_money(x) for x in (2_094_823.8, 999_600, 248_872, 14_706, 9_500)] == [
        "2.09M", "1.00M", "249k", "14.7k", "9,500"
    ]  # fmt: skip
    assert [fmt_pct(x) for x in (0.5528, 0.058, 0.0042, 0.05)] == ["55%", "5.8%", "0.4%", "5%"]
    assert fmt_int(11_056.2) == "11,056" and fmt_money(None) == "–"
