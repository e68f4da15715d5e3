"""The one place that reads the environment.

Everything else receives a :class:`Settings` (or the Dagster resources built
from it). Variables:

``CUSTSEG_WORKDIR``     where the warehouse, exports and reports live (default ``.custseg``)
``CUSTSEG_CONFIG``      project config YAML; unset means the built-in demo data
``CUSTSEG_DATA_ROOT``   overrides ``data_root`` of the config file
``CUSTSEG_AS_OF_DATE``  ``YYYY-MM-DD``; unset means the day after the last transaction
``CUSTSEG_LOCK_TIMEOUT`` seconds a run waits for another run on the same workdir (600)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_WORKDIR = ".custseg"


@dataclass(frozen=True)
class Settings:
    workdir: str = DEFAULT_WORKDIR
    config_path: str | None = None
    data_root: str | None = None
    as_of_date: str | None = None
    lock_timeout: float = 600.0

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            workdir=os.environ.get("CUSTSEG_WORKDIR") or DEFAULT_WORKDIR,
            config_path=os.environ.get("CUSTSEG_CONFIG") or None,
            data_root=os.environ.get("CUSTSEG_DATA_ROOT") or None,
            as_of_date=os.environ.get("CUSTSEG_AS_OF_DATE") or None,
            lock_timeout=float(os.environ.get("CUSTSEG_LOCK_TIMEOUT") or 600.0),
        )

    def resolved(self) -> Settings:
        """Absolute paths, so the Dagster code location and dbt agree whatever their cwd."""

        def _abs(p: str | None) -> str | None:
            return str(Path(p).expanduser().resolve()) if p else None

        return Settings(
            workdir=_abs(self.workdir) or DEFAULT_WORKDIR,
            config_path=_abs(self.config_path),
            data_root=_abs(self.data_root),
            as_of_date=self.as_of_date,
            lock_timeout=self.lock_timeout,
        )
