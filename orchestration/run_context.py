"""The run context: what one run works with, resolved once before any data is read.

:meth:`RunContext.resolve` turns the settings (environment or command line) into a
frozen value: the project config (read and validated once), the as-of date (checked
for its format; None means the day after the last transaction) and the paths. Every
asset gets it from the warehouse resource (``WarehouseResource.run_context()``), and
:meth:`RunContext.dbt_vars` is the one mapping onto dbt vars, one name per concept.

The defaults of the scoring settings are those of ``ScoringConfig``
(orchestration/io/config.py); ``dbt_project/dbt_project.yml`` repeats them for dbt runs
by hand, and tests/test_run_context.py checks that the two agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from orchestration.io.config import ProjectConfig, ScoringConfig, demo_config, load_config
from orchestration.settings import Settings, parse_as_of


@dataclass(frozen=True)
class RunContext:
    settings: Settings  # resolved: absolute paths
    config: ProjectConfig
    as_of_date: dt.date | None  # None: the day after the last transaction

    @classmethod
    def resolve(cls, settings: Settings) -> RunContext:
        """Read the config and check the as-of date; raises ConfigError / SettingsError."""
        s = settings.resolved()
        as_of = parse_as_of(s.as_of_date)
        config = load_config(s.config_path) if s.config_path else demo_config(s.demo_data_dir)
        return cls(settings=s, config=config, as_of_date=as_of)

    @property
    def scoring(self) -> ScoringConfig:
        return self.config.scoring

    @property
    def churn_horizon_days(self) -> int:
        return self.config.scoring.churn_horizon_days

    @property
    def clv_horizon_days(self) -> int:
        return self.config.scoring.clv_horizon_days

    @property
    def workdir(self) -> Path:
        return Path(self.settings.workdir)

    def dbt_vars(self) -> dict:
        """The run's dbt vars (dbt_project.yml declares each with its default)."""
        out: dict = {
            "warehouse_path": str(self.settings.warehouse_path),
            # DuckDB's memory_limit for dbt's connection too (profiles.yml).
            "duckdb_memory_limit": self.settings.duckdb_memory_limit,
            "duckdb_threads": self.settings.duckdb_threads,
            "drop_exact_duplicates": self.config.transactions.drop_exact_duplicates,
            # One churn horizon for the scores (Python), the cut-off outcomes and the
            # observed churn of the marts.
            "churn_horizon_days": self.churn_horizon_days,
            "campaign_min_expected_value": self.config.campaign.min_expected_value,
        }
        if self.as_of_date is not None:
            out["as_of_date"] = self.as_of_date.isoformat()
        return out
