"""dagster-dbt's ``DbtCliResource`` without two costs per dbt step: an adapter over its internals.

Before each ``dbt build``, dagster-dbt runs ``dbt --version`` in a subprocess and builds a
dbt adapter in this process (profile, project, base macros). The adapter only serves
``fetch_row_counts`` / ``fetch_column_metadata``, which these assets do not call, and
dagster-dbt has no setting to skip either step. The version comes from the installed
dbt-core instead (the executable beside it). The two methods overridden here are private
to dagster-dbt: ``tests/test_private_internals.py`` fails when its version, or the way
``DbtCliResource.cli`` calls them, changes.
"""

from __future__ import annotations

import importlib.metadata
from functools import cached_property

from dagster_dbt import DbtCliResource
from packaging import version

# The dagster-dbt release these overrides were read against (tests/test_private_internals.py).
CHECKED_WITH = {"dagster-dbt": "==0.29.27"}


class CustsegDbtCli(DbtCliResource):
    """``DbtCliResource`` that neither asks the dbt executable its version nor builds an adapter."""

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):  # noqa: ARG002 - same signature as the base
        return None
