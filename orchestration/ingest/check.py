"""What a full load would make of the configured sources, without loading them:
``custseg check`` (orchestration/cli_check.py) prints it.

The sources go through the ingest's own rules (:func:`~orchestration.ingest.load.staged`:
the same readers, value rules and quarantine, into a throwaway in-memory DuckDB), so
the counts, the quarantine reasons and the date range are exactly those a run would
get, and so are the errors that would stop it: a file that cannot be read or lacks a
mapped column (:class:`~orchestration.ingest.types.IngestError`), an as-of date outside
the data or too few customers (:class:`~orchestration.ingest.delivery.DeliveryError`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb

from orchestration.ingest.delivery import DAY, DeliveryError, check_delivery, transaction_range
from orchestration.ingest.load import staged
from orchestration.ingest.types import FileLoad
from orchestration.io.config import ProjectConfig

# Canonical transaction columns the ingest fills itself when the config maps none
# (orchestration/ingest/value_rules.py, _transaction_rules).
DERIVED = {
    "quantity": "1 per line",
    "amount": "quantity × unit_price",
    "unit_price": "amount / quantity",
    "order_id": "customer_id and the day (one order per customer and day)",
}


@dataclass
class Reason:
    rule: str  # one rule, e.g. "missing customer_id (cust)"
    rows: int
    example: str  # file and row of the first such row


@dataclass
class SourceCheck:
    source: str
    columns: dict[str, str]  # canonical -> the source's column
    derived: dict[str, str]  # canonical -> how the ingest derives it
    files: list[FileLoad]
    sample: list[dict]  # the first rows as the run would load them (canonical columns)
    reasons: list[Reason]

    @property
    def rows(self) -> tuple[int, int, int]:
        """(read, loaded, quarantined) over the source's files."""
        return (
            sum(f.rows_read for f in self.files),
            sum(f.rows_loaded for f in self.files),
            sum(f.rows_rejected for f in self.files),
        )


@dataclass
class CheckReport:
    sources: list[SourceCheck] = field(default_factory=list)
    first: dt.date | None = None  # first and last transaction date a load would accept
    last: dt.date | None = None
    customers: int = 0  # with a transaction before the as-of date
    orders: int = 0
    as_of: dt.date | None = None  # the run's (None: the day after the last transaction)
    problems: list[str] = field(default_factory=list)  # what would stop the run

    @property
    def effective_as_of(self) -> dt.date | None:
        return self.as_of or (self.last + DAY if self.last else None)


def check_sources(
    config: ProjectConfig,
    data_root: str | None = None,
    as_of: dt.date | None = None,
    memory_limit: str | None = None,
    sample_rows: int = 3,
    today: dt.date | None = None,
    threads: int | None = None,
) -> CheckReport:
    """Read every configured source as a full load would and report on it.

    Raises :class:`IngestError` where a load would (a source it cannot read); the
    problems found in data that does read (dates, customers) are in ``problems``.
    """
    report = CheckReport(as_of=as_of)
    with staged(config, data_root, memory_limit, today=today, threads=threads) as (con, result):
        for source, cfg in config.sources().items():
            if cfg is None:
                continue
            derived = {}
            if source == "transactions":
                derived = {k: v for k, v in DERIVED.items() if k not in cfg.columns}
            report.sources.append(
                SourceCheck(
                    source=source,
                    columns=dict(cfg.columns),
                    derived=derived,
                    files=[f for f in result.files if f.source == source],
                    sample=_sample(con, source, list(cfg.columns) + list(derived), sample_rows),
                    reasons=_reasons(con, source),
                )
            )
        _transactions(con, report)
    return report


def _sample(con: duckdb.DuckDBPyConnection, source: str, columns: list[str], n: int) -> list[dict]:
    names = ", ".join(f'"{c}"' for c in columns)
    frame = con.execute(
        f"select {names} from _ok_{source} order by _source_file, _source_row limit {int(n)}"
    ).df()
    return frame.to_dict("records")


def _reasons(con: duckdb.DuckDBPyConnection, source: str) -> list[Reason]:
    """One line per rule (a row breaking two rules counts under both), most rows first."""
    rows = con.execute(
        f"""
        with rules as (
            select unnest(string_split(reason, '; ')) as rule, source_file, source_row
            from _bad_{source}
        )
        select rule, count(*) as n, arg_min(source_file || ', row ' || source_row,
                                            (source_file, source_row)) as example
        from rules group by rule order by n desc, rule
        """
    ).fetchall()
    return [Reason(rule, n, example) for rule, n, example in rows]


def _transactions(con: duckdb.DuckDBPyConnection, report: CheckReport) -> None:
    """The run's own delivery check (as-of date in range, enough customers), on the rows
    a load would publish."""
    con.execute("create or replace view raw.transactions as select * from _ok_transactions")
    span = transaction_range(con)
    if span is None:
        report.problems.append("no transaction would load: nothing to segment")
        return
    report.first, report.last = span
    try:
        check_delivery(con, report.as_of)
    except DeliveryError as exc:
        report.problems.append(str(exc))
    day = dt.datetime.combine(report.effective_as_of, dt.time())
    report.customers, report.orders = con.execute(
        "select count(distinct customer_id), count(distinct order_id) from raw.transactions "
        "where ordered_at < ?",
        [day],
    ).fetchone()
