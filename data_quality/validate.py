"""Validate a stage suite against the DuckDB warehouse with Great Expectations 1.x.

Row-level expectations see every row up to ``sample_rows`` and a repeatable
reservoir sample above that (after an incremental append, the appended rows
only, where the suite can tell them: ``StageSuite.newest_rows``); table-level metrics are computed by DuckDB in SQL
and validated exactly. Results are stored by a GE file context under
``gx_dir`` and rendered as Data Docs under ``docs_dir``; a plain summary of the
latest outcome of each suite goes to ``gx_dir/validation/<suite>.json`` (read by
the HTML report).

History is bounded: the newest ``KEEP_RESULTS`` results of each suite are kept
(older ones and their Data Docs pages are removed), and each validation renders
only its own pages, the index and the pages of suites whose expectations
changed, so a check costs the same on the 500th daily run as on the first.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import great_expectations as gx
import numpy as np
import pandas as pd
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

from data_quality.offline_docs import SITE_VIEWS, install_assets
from data_quality.suites import StageSuite

DEFAULT_SAMPLE_ROWS = 200_000
SAMPLE_SEED = 42
DOCS_SITE = "custseg_data_docs"
# Fetched with the columns row expectations name, so that a bad row can be found again.
LOCATOR_COLUMNS = ("_source_file", "_source_row")
KEEP_RESULTS = 30  # validation results (and Data Docs pages) kept per suite
# Fingerprints of the suites whose pages are in the Data Docs (rendered again on a change).
SUITE_FINGERPRINTS = ".suite_fingerprints.json"

# GE prints a progress bar per validation; the pipeline has its own progress output.
logging.getLogger("great_expectations").setLevel(logging.WARNING)


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str | None
    severity: str  # critical | warning | info
    success: bool
    unexpected_count: int | None
    examples: list


@dataclass
class ValidationOutcome:
    suite: str
    table: str
    rows: int
    rows_validated: int
    seconds: float
    expectations: list[ExpectationOutcome] = field(default_factory=list)
    bad_rows_sample: list[dict] = field(default_factory=list)
    docs_index: str | None = None
    row_scope: str = "all rows"  # or "rows of the newest load" (StageSuite.newest_rows)
    rows_in_scope: int | None = None  # rows the row rules apply to (default: rows)

    @property
    def scope_rows(self) -> int:
        """How many rows the row rules apply to (the whole table unless ``row_scope`` says)."""
        return self.rows if self.rows_in_scope is None else self.rows_in_scope

    @property
    def sampled(self) -> bool:
        """Row rules saw a sample of the rows in scope, not all of them."""
        return self.rows_validated < self.scope_rows

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [e for e in self.expectations if not e.success]

    @property
    def passed(self) -> bool:
        """No failed critical expectation (warnings do not block)."""
        return not any(e.severity == "critical" for e in self.failed)

    @property
    def has_warnings(self) -> bool:
        return any(e.severity != "critical" for e in self.failed)

    def summary(self) -> str:
        if not self.failed:
            return f"{self.suite}: {len(self.expectations)} expectations passed"
        parts = [
            f"{e.expectation}({e.column or ''}) unexpected={e.unexpected_count}"
            for e in self.failed
        ]
        return f"{self.suite}: failed {'; '.join(parts)}"


def _row_columns(con: duckdb.DuckDBPyConnection, table: str, expectations: list) -> str:
    """The select list for the row-level batch: the columns the expectations name (plus
    ``LOCATOR_COLUMNS``), in table order; ``*`` when one expectation names no column.

    A column the table lacks is left out; GE then fails that expectation by name.
    """
    named: set[str] = set()
    for e in expectations:
        cols = [getattr(e, a, None) for a in ("column", "column_A", "column_B")]
        cols = [c for c in cols if c]
        # Table-level rules (column lists, column order) and conditions need every column.
        if not cols or getattr(e, "column_list", None) or getattr(e, "row_condition", None):
            return "*"
        named.update(cols)
    schema, _, name = table.rpartition(".")
    present = [
        c
        for (c,) in con.execute(
            "select column_name from information_schema.columns where table_name = ? "
            "and table_schema = coalesce(nullif(?, ''), current_schema()) "
            "and table_catalog = current_database() order by ordinal_position",
            [name, schema],
        ).fetchall()
    ]
    wanted = [c for c in present if c in named or c in LOCATOR_COLUMNS]
    return ", ".join(f'"{c}"' for c in wanted) if wanted else "*"


def _for_ge(frame: pd.DataFrame) -> pd.DataFrame:
    """Widen numpy int/float columns to 64 bits and datetimes to ns, in place.

    GE's pandas range checks are vectorised only for int64, float64 and datetime64[ns]
    columns; DuckDB returns INTEGER as int32 and TIMESTAMP/DATE as datetime64[us], which
    GE checks value by value in Python (~0.1 s per 100,000 values and rule).
    """
    for name, dtype in frame.dtypes.items():
        if not isinstance(dtype, np.dtype):
            continue  # pandas extension types (nullable Int32, strings) stay as they are
        if (dtype.kind == "i" or (dtype.kind == "u" and dtype.itemsize < 8)) and dtype != np.int64:
            frame[name] = frame[name].astype(np.int64)
        elif dtype.kind == "f" and dtype != np.float64:
            frame[name] = frame[name].astype(np.float64)
        elif dtype.kind == "M" and dtype != np.dtype("datetime64[ns]"):
            # A date past 2262 does not fit: that column is checked value by value.
            with contextlib.suppress(pd.errors.OutOfBoundsDatetime):
                frame[name] = frame[name].astype("datetime64[ns]")
    return frame


# One GE file context per project folder and process: making one reads ~60 YAML files
# (~0.05 s); a run validates six or seven suites. Made again if its folder is gone.
_CONTEXTS: dict[tuple[str, str], object] = {}


def _context(gx_dir: Path, docs_dir: Path):
    key = (str(gx_dir.resolve()), str(docs_dir.resolve()))
    context = _CONTEXTS.get(key)
    if context is None or not Path(context.root_directory, "great_expectations.yml").exists():
        context = _CONTEXTS[key] = _new_context(gx_dir, docs_dir)
    return context


def _new_context(gx_dir: Path, docs_dir: Path):
    context = gx.get_context(mode="file", project_root_dir=str(gx_dir))
    bars = context.variables.progress_bars
    globally = bars.get("globally") if isinstance(bars, dict) else getattr(bars, "globally", None)
    if globally is not False:
        # GE draws a progress bar per validation; the pipeline has its own progress lines.
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        context.variables.save()
    # Relative to the GE project folder (GE resolves it from there), so that a workdir
    # copied or moved elsewhere renders its Data Docs into itself, not into the original.
    # A site written with an absolute path by an older version is rewritten.
    base = os.path.relpath(docs_dir.resolve(), Path(context.root_directory).resolve())
    # The page views serve the browser assets from the site itself (offline_docs.py).
    site = {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": base},
        **SITE_VIEWS,
    }
    stored = copy.deepcopy((context.get_config().data_docs_sites or {}).get(DOCS_SITE))
    if stored is None:
        context.add_data_docs_site(site_name=DOCS_SITE, site_config=site)
    elif stored != site:
        context.update_data_docs_site(site_name=DOCS_SITE, site_config=site)
        if stored.get("site_index_builder") != site["site_index_builder"]:
            # Pages rendered before the offline views: render every kept one again, once.
            install_assets(docs_dir)
            context.build_data_docs(site_names=[DOCS_SITE])
    return context


def _validation(context, name: str, expectations: list):
    try:
        source = context.data_sources.get("warehouse")
    except (KeyError, ValueError, LookupError):
        source = context.data_sources.add_pandas("warehouse")
    try:
        asset = source.get_asset(name)
    except LookupError:
        asset = source.add_dataframe_asset(name)
    try:
        batch = asset.get_batch_definition("whole")
    except (KeyError, LookupError):
        batch = asset.add_batch_definition_whole_dataframe("whole")
    suite = gx.ExpectationSuite(name=f"{name}_suite", expectations=expectations)
    suite = context.suites.add_or_update(suite)
    return context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{name}_validation", data=batch, suite=suite)
    )


def _prune_results(context, suites: set[str], keep: int) -> list[ValidationResultIdentifier]:
    """Remove all but the newest ``keep`` stored results of each of ``suites``.

    Returns the kept keys of those suites. The Data Docs index build that follows
    removes the pages of the removed results (GE's ``skip_and_clean_missing``).
    """
    store = context.validation_results_store
    by_suite: dict[str, list[ValidationResultIdentifier]] = {}
    for key in store.list_keys():
        if isinstance(key, ValidationResultIdentifier):
            name = key.expectation_suite_identifier.name
            if name in suites:
                by_suite.setdefault(name, []).append(key)
    kept: list[ValidationResultIdentifier] = []
    for keys in by_suite.values():
        keys.sort(key=lambda k: str(k.run_id.run_time), reverse=True)
        kept += keys[:keep]
        for old in keys[keep:]:
            store.remove_key(old)
    return kept


def _fingerprint(suite) -> str:
    """The expectations of a GE suite, independent of the ids GE gives them."""
    configs = [
        {k: v for k, v in c.to_json_dict().items() if k != "id"}
        for c in suite.expectation_configurations
    ]
    return hashlib.sha256(json.dumps(configs, sort_keys=True, default=str).encode()).hexdigest()


def _build_docs(context, suites: dict, run_time: str, keep: int, docs_dir: Path) -> None:
    """Render this validation's pages and the index, and the pages of the suites (by name in
    ``suites``) whose expectations changed since their page was rendered."""
    kept = _prune_results(context, set(suites), keep)
    current = [k for k in kept if str(k.run_id.run_time) == run_time]
    marker = docs_dir / SUITE_FINGERPRINTS
    try:
        known = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    fingerprints = {name: _fingerprint(suite) for name, suite in suites.items()}
    changed = [
        name
        for name, fp in fingerprints.items()
        if known.get(name) != fp or not (docs_dir / "expectations" / f"{name}.html").exists()
    ]
    if not current:  # never expected; an empty list would make GE render every result
        logging.getLogger(__name__).warning("no stored result of this run: Data Docs not built")
        return
    install_assets(docs_dir)
    context.build_data_docs(
        site_names=[DOCS_SITE],
        resource_identifiers=[*current, *(ExpectationSuiteIdentifier(name=s) for s in changed)],
    )
    if changed:
        marker.write_text(json.dumps({**known, **fingerprints}, indent=1), encoding="utf-8")


def _outcomes(result) -> list[ExpectationOutcome]:
    out = []
    for r in result.results:
        cfg = r.expectation_config
        res = r.result or {}
        out.append(
            ExpectationOutcome(
                expectation=cfg.type,
                column=cfg.kwargs.get("column"),
                severity=getattr(cfg.severity, "value", str(cfg.severity)),
                success=bool(r.success),
                unexpected_count=res.get("unexpected_count", res.get("observed_value")),
                examples=[_plain(v) for v in (res.get("partial_unexpected_list") or [])[:5]],
            )
        )
    return out


def _plain(value):
    """A JSON-safe version of a value from a pandas frame or a GE result."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):  # lists, arrays
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def write_summary(outcome: ValidationOutcome, folder: str | Path) -> Path | None:
    """The outcome in a few fields as ``folder/<suite>.json``, replaced atomically."""
    summary = {
        "suite": outcome.suite,
        "table": outcome.table,
        "rows": outcome.rows,
        "rows_validated": outcome.rows_validated,
        "row_scope": outcome.row_scope,
        "expectations": len(outcome.expectations),
        "passed": outcome.passed,
        "failed": [
            {
                "expectation": e.expectation,
                "column": e.column,
                "severity": e.severity,
                "unexpected_count": _plain(e.unexpected_count),
            }
            for e in outcome.failed
        ],
        "validated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "docs_index": None,
    }
    path = Path(folder) / f"{outcome.suite}.json"
    if outcome.docs_index:
        # Relative to this file's folder (read_docs_index): the workdir stays relocatable.
        summary["docs_index"] = Path(
            os.path.relpath(Path(outcome.docs_index).resolve(), path.parent.resolve())
        ).as_posix()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # the summary is a report, never a reason to fail validation
        logging.getLogger(__name__).warning("validation summary not written: %s", exc)
        return None
    return path


def validate(
    con: duckdb.DuckDBPyConnection,
    suite: StageSuite,
    gx_dir: str | Path,
    docs_dir: str | Path,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    keep_results: int = KEEP_RESULTS,
) -> ValidationOutcome:
    """Run ``suite`` on the warehouse; never raises for failed expectations."""
    t0 = time.perf_counter()
    gx_dir, docs_dir = Path(gx_dir), Path(docs_dir)
    gx_dir.mkdir(parents=True, exist_ok=True)
    (rows,) = con.execute(f"select count(*) from {suite.table}").fetchone()
    row_expectations = suite.row_expectations()
    query = f"select {_row_columns(con, suite.table, row_expectations)} from {suite.table}"
    in_scope, scope = rows, "all rows"
    if suite.newest_rows:
        newest = suite.newest_rows.format(table=suite.table)
        try:
            (n,) = con.execute(f"select count(*) from {suite.table} where {newest}").fetchone()
        except duckdb.Error:  # no load_seq (a warehouse from before it): the whole table
            n = 0
        if 0 < n < rows:
            query, in_scope, scope = f"{query} where {newest}", n, "rows of the newest load"
    if in_scope > sample_rows:
        query = (
            f"select * from ({query}) "
            f"using sample reservoir({int(sample_rows)} rows) repeatable ({SAMPLE_SEED})"
        )
    frame = _for_ge(con.execute(query).df())

    context = _context(gx_dir, docs_dir)
    validations, batches = [], []
    if row_expectations:
        validations.append(_validation(context, f"{suite.name}_rows", row_expectations))
        batches.append(frame)
    if suite.metrics_sql:
        metrics = con.execute(suite.metrics_sql.format(table=suite.table)).df()
        validations.append(
            _validation(context, f"{suite.name}_metrics", suite.metric_expectations())
        )
        batches.append(metrics)

    expectations: list[ExpectationOutcome] = []
    bad_index: set[int] = set()
    run_id = RunIdentifier(run_name=suite.name, run_time=datetime.now(UTC))
    for definition, batch in zip(validations, batches, strict=True):
        result = definition.run(
            batch_parameters={"dataframe": batch},
            result_format={"result_format": "SUMMARY", "unexpected_index_column_names": []},
            run_id=run_id,
        )
        expectations += _outcomes(result)
        if batch is frame:
            for r in result.results:
                if not r.success:
                    bad_index.update((r.result or {}).get("partial_unexpected_index_list") or [])
    docs = None
    try:
        suites = {v.suite.name: v.suite for v in validations}
        _build_docs(context, suites, str(run_id.run_time), keep_results, docs_dir)
        index = docs_dir / "index.html"
        docs = str(index) if index.exists() else None
    except Exception as exc:  # docs are a report, never a reason to fail validation
        logging.getLogger(__name__).warning("Data Docs not built: %s", exc)
    bad_rows = frame.loc[sorted(bad_index)[:5]] if bad_index else frame.iloc[0:0]
    outcome = ValidationOutcome(
        suite=suite.name,
        table=suite.table,
        rows=int(rows),
        rows_validated=len(frame),
        row_scope=scope,
        rows_in_scope=int(in_scope),
        seconds=time.perf_counter() - t0,
        expectations=expectations,
        bad_rows_sample=[
            {k: _plain(v) for k, v in rec.items()} for rec in bad_rows.to_dict("records")
        ],
        docs_index=docs,
    )
    write_summary(outcome, gx_dir / "validation")
    return outcome
