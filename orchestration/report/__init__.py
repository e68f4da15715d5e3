"""The automated HTML report: one self-contained page per run under ``WORKDIR/reports/``.

``data`` reads the numbers from the warehouse, ``charts`` draws them as inline
SVG, ``sections`` / ``analysis`` / ``quality`` write the text around them and
``render`` assembles the page. No Dagster imports: the ``customer_report`` asset
and ``custseg report`` call :func:`write_report` / :func:`latest_report`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import duckdb

from orchestration.io.config import CurrencyConfig
from orchestration.report.data import ReportData, load_report_data

LATEST = "latest.html"


@dataclass(frozen=True)
class ReportResult:
    path: Path
    latest: Path
    data: ReportData


def reports_dir(workdir: str | Path) -> Path:
    return Path(workdir) / "reports"


def latest_report(workdir: str | Path) -> Path:
    """Where the newest report is (it may not exist yet)."""
    return reports_dir(workdir) / LATEST


def _href(target: Path, start: Path) -> str:
    """A relative link from the report folder, so the folder can be moved or zipped."""
    return quote(Path(os.path.relpath(target, start)).as_posix())


def _links(workdir: Path, data: ReportData, exports_dir: Path | None = None) -> dict[str, str]:
    out = reports_dir(workdir)
    links = {}
    docs = [out / "data_docs" / "index.html"]
    docs += [Path(v["docs_index"]) for v in data.validations if v.get("docs_index")]
    existing = next((p for p in docs if p.is_file()), None)
    if existing:
        links["data_docs"] = _href(existing, out)
    powerbi = (exports_dir or workdir / "exports") / "powerbi"
    if powerbi.exists():
        links["powerbi"] = _href(powerbi, out) + "/"
    return links


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # a reader never sees half a page


def write_report(
    con: duckdb.DuckDBPyConnection,
    workdir: str | Path,
    run_id: str,
    min_expected_value: float = 1.0,
    now: datetime | None = None,
    exports_dir: Path | None = None,
    currency: CurrencyConfig | None = None,
) -> ReportResult:
    """Render the report of the warehouse ``con`` to ``WORKDIR/reports/``.

    Writes ``report_<date>_<run id>.html`` and a copy as ``latest.html``; amounts carry
    ``currency`` (project config ``currency``; its defaults without one).
    """
    from orchestration.report.render import render_report  # matplotlib: only when rendering

    workdir = Path(workdir)
    now = now or datetime.now(UTC)
    data = load_report_data(con, workdir, min_expected_value, currency)
    data.links = _links(workdir, data, exports_dir)
    html = render_report(data, run_id, now)
    out = reports_dir(workdir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"report_{now:%Y-%m-%d}_{run_id[:8]}.html"
    _write(path, html)
    _write(out / LATEST, html)
    return ReportResult(path=path, latest=out / LATEST, data=data)


__all__ = ["ReportData", "ReportResult", "latest_report", "load_report_data", "write_report"]
