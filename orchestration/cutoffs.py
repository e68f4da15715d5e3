"""Features and outcomes as of an earlier cut-off date, built by the production dbt models.

CLV and churn models are evaluated on a calibration / holdout split: features as of
a cut-off date, outcomes in the horizon after it. Both come from the same dbt models
as production (everything tagged ``as_of``: int_as_of_date and what depends on it,
up to features.customer_features and features.customer_outcomes), run with the var
``as_of_date`` set to the cut-off and ``cutoff_schema_suffix`` set to ``_<name>``, so
they land in ``intermediate_<name>`` / ``features_<name>`` beside the untouched
production tables (dbt_project/macros/generate_schema_name.sql).

The run reads the production upstream tables (staging views, int_transactions_deduped,
int_orders, seeds), so the production pre-ML build must have run first. With a var as-of
date the as_of models recompute the per-customer facts from the orders and lines before
it; they never read the all-time int_customer_order_totals. No Dagster imports; the
asset that calls this is a thin wrapper.

dbt runs in this process (``dbtRunner``), not a subprocess, on the manifest
:func:`~orchestration.dbt_parse.parsed_manifest` keeps per schema suffix: the as-of date
and the horizon are only read when dbt compiles the SQL, while the schema suffix is
resolved when it parses (``generate_schema_name``). dbt opens the warehouse file in
this process, so the caller must not hold a connection to it meanwhile (DuckDB has
one writer); :func:`~orchestration.dbt.invoke_dbt` frees it again before returning.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path

from orchestration.dbt import DBT_PROJECT_DIR, QUIET_FILE_ARGS, invoke_dbt
from orchestration.dbt_parse import parsed_manifest

_NAME = re.compile(r"^[a-z0-9_]+$")
_LOG_TAIL_LINES = 40


@dataclass(frozen=True)
class CutoffTables:
    """What one cut-off build wrote: fully qualified ``schema.table`` names."""

    name: str
    cutoff: dt.date
    horizon_days: int
    features: str  # e.g. features_cutoff_train.customer_features
    outcomes: str  # e.g. features_cutoff_train.customer_outcomes
    schemas: tuple[str, ...]  # every schema the build wrote into


def cutoff_dates(as_of: dt.date, horizon_days: int) -> tuple[dt.date, dt.date]:
    """(train_cutoff, eval_cutoff) = (as_of - 2 * horizon, as_of - horizon).

    Training labels (horizon after train_cutoff) end at eval_cutoff, and evaluation
    labels (horizon after eval_cutoff) end at the production as-of date, i.e. the
    day after the last transaction: both horizons are complete and do not overlap.
    """
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be >= 1, got {horizon_days}")
    horizon = dt.timedelta(days=horizon_days)
    return as_of - 2 * horizon, as_of - horizon


def cutoff_schema_suffix(name: str) -> str:
    """The schema suffix of a cut-off build, ``_<name>``; the name is checked first."""
    if not _NAME.match(name):
        raise ValueError(
            f"cut-off name must contain only a-z, 0-9 and '_' (it becomes part of schema"
            f" names), got {name!r}"
        )
    return f"_{name}"


def build_features_as_of(
    cutoff: dt.date,
    *,
    name: str,
    dbt_vars: dict,
    log_path: Path | None = None,
    horizon_days: int,
) -> CutoffTables:
    """Run the ``as_of`` dbt models as of ``cutoff`` into the ``*_<name>`` schemas.

    ``dbt_vars`` are the production vars (``RunContext.dbt_vars()``: at least
    ``warehouse_path``); ``as_of_date``, ``cutoff_schema_suffix`` and
    ``churn_horizon_days`` (= ``horizon_days``) are set on top. dbt's target and log folders are
    ``<warehouse folder>/dbt_cutoffs/<name>/``, never dbt_project/target. Its console
    output goes to ``log_path`` (default ``dbt_cutoffs/<name>/dbt_run.log``). ``dbt run``,
    not ``build``: the dbt tests run on the production build.

    Raises RuntimeError with the tail of that output when dbt fails.
    """
    suffix = cutoff_schema_suffix(name)
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be >= 1, got {horizon_days}")
    if not dbt_vars.get("warehouse_path"):
        raise ValueError("dbt_vars must name the warehouse file (key 'warehouse_path')")
    work_dir = Path(dbt_vars["warehouse_path"]).resolve().parent / "dbt_cutoffs" / name
    work_dir.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path) if log_path is not None else work_dir / "dbt_run.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    variables = {
        **dbt_vars,
        "as_of_date": cutoff.isoformat(),
        "cutoff_schema_suffix": suffix,
        "churn_horizon_days": int(horizon_days),
    }
    common = [
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(work_dir / "target"),
        "--log-path", str(work_dir / "logs"),
        "--no-use-colors",
        "--no-version-check",
        *QUIET_FILE_ARGS,  # as the production builds
    ]  # fmt: skip
    with log_path.open("w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        warehouse = Path(dbt_vars["warehouse_path"]).resolve()
        manifest = parsed_manifest(warehouse.parent, suffix, warehouse.name)
        result = invoke_dbt(
            ["run", "--select", "tag:as_of", "--exclude", "tag:post_ml", *common,
             "--vars", json.dumps(variables)],
            manifest,
        )  # fmt: skip
    if not result.success:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        tail = "\n".join(lines[-_LOG_TAIL_LINES:])
        raise RuntimeError(
            f"dbt run of the features as of {cutoff.isoformat()} (cut-off {name!r}) failed"
            f"{': ' + result.error if result.error else ''}; full output in "
            f"{log_path}:\n{tail}"
        )
    return _tables(manifest, name, cutoff, horizon_days)


def _tables(manifest, name: str, cutoff: dt.date, horizon_days: int) -> CutoffTables:
    """Where the run put the models, from the manifest it ran (no schema name hard-coded)."""
    as_of_models = {
        n.name: f"{n.schema}.{n.alias}"
        for n in manifest.nodes.values()
        if n.resource_type == "model" and "as_of" in n.tags
    }
    return CutoffTables(
        name=name,
        cutoff=cutoff,
        horizon_days=horizon_days,
        features=as_of_models["customer_features"],
        outcomes=as_of_models["customer_outcomes"],
        schemas=tuple(sorted({t.split(".")[0] for t in as_of_models.values()})),
    )
