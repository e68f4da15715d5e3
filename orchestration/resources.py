"""Dagster resources: where the warehouse lives and how to open it, and the dbt CLI."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
from pydantic import PrivateAttr

from orchestration.gc_pace import set_run_pace
from orchestration.io.config import ProjectConfig
from orchestration.io.lock import WorkdirLock
from orchestration.io.permissions import (
    PRIVATE_UMASK,
    SEARCH_BITS,
    close_tree,
    make_private_workdir,
)
from orchestration.run_context import RunContext
from orchestration.settings import DEFAULT_MEMORY_LIMIT, Settings, default_duckdb_threads

DEMO_CUSTOMERS = 20_000
DEMO_SEED = 42

# One thread at a time holds a warehouse connection: steps that overlap
# (orchestration/executor.py) may open it read-only and read-write, which DuckDB does
# not allow at once in one process. Re-entrant: a step may nest its own connections.
_CONNECTION_LOCK = threading.RLock()


class WarehouseResource(dg.ConfigurableResource):
    """The project's workdir: DuckDB warehouse, exports, reports, and the project config.

    DuckDB allows one writer at a time; the job runs its steps in one process, the
    model fits two at a time (orchestration/executor.py), and every asset opens the
    file through this resource, one thread at a time (:meth:`connect`). A run
    holds the workdir's lock (``orchestration/io/lock.py``) from the moment this
    resource is set up until the run ends: a second run on the same workdir waits up
    to ``lock_timeout`` seconds, then fails naming the run that holds it. From the same
    moment the run writes under the umask ``077`` and the workdir folder is its owner's
    alone (``orchestration/io/permissions.py``).
    """

    workdir: str
    config_path: str | None = None
    data_root: str | None = None
    as_of_date: str | None = None
    lock_timeout: float = 600.0
    export_dir: str | None = None
    # DuckDB's memory_limit for every connection of the run (settings.py); dbt gets it
    # through the var duckdb_memory_limit (profiles.yml).
    duckdb_memory_limit: str = DEFAULT_MEMORY_LIMIT
    # DuckDB's threads, likewise (var duckdb_threads).
    duckdb_threads: int = default_duckdb_threads()
    _lock: WorkdirLock | None = PrivateAttr(default=None)
    _umask: int | None = PrivateAttr(default=None)
    _context: RunContext | None = PrivateAttr(default=None)
    _gc_threshold: tuple[int, int, int] | None = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: Settings) -> WarehouseResource:
        """The resource of ``settings`` (its fields are those of Settings it needs)."""
        return cls(**{f: getattr(settings, f) for f in _SETTINGS_FIELDS})

    def settings(self) -> Settings:
        return Settings(**{f: getattr(self, f) for f in _SETTINGS_FIELDS})

    def run_context(self) -> RunContext:
        """This run's context: the config is read and checked on first use, then kept for the
        run (``setup_for_execution`` starts each run afresh). Sensors, which outlive runs,
        resolve their own on every look (orchestration/sensors.py)."""
        if self._context is None:
            self._context = RunContext.resolve(self.settings())
        return self._context

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._context = None
        run_id = getattr(context, "run_id", None)
        warn = context.log.warning if context.log else None
        # Customer data: what the run (and dbt, its child) writes is the owner's alone.
        self._umask = os.umask(PRIVATE_UMASK)
        try:
            lock = WorkdirLock(
                self.root,
                owner=f"run {run_id}" if run_id else "a Dagster run",
                timeout=self.lock_timeout,
                log=warn,
            )
            lock.acquire()
        except BaseException:
            self._restore_umask()
            raise
        self._lock = lock
        # Runs launched from the UI or by the daemon collect garbage at the pace of
        # `custseg run` too (orchestration/gc_pace.py).
        self._gc_threshold = set_run_pace()
        # Once the workdir is this run's (another run may still be writing before that).
        try:
            make_private_workdir(
                self.root, self._export_search_bits(), exports_dir=self.exports_dir, log=warn
            )
        except OSError as exc:  # e.g. a file of another user in it: said, not fatal
            if warn:
                warn(f"workdir {self.root} not closed to other users: {exc}")

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        try:
            # What the run copied with its source's mode (dbt's partial-parse file).
            close_tree(self.root, self.exports_dir)
        except OSError as exc:
            if context.log:
                context.log.warning(f"workdir {self.root} not closed to other users: {exc}")
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._gc_threshold is not None:
            gc.set_threshold(*self._gc_threshold)
            self._gc_threshold = None
        self._restore_umask()

    def _restore_umask(self) -> None:
        if self._umask is not None:
            os.umask(self._umask)
            self._umask = None

    def _export_search_bits(self) -> int:
        """What the workdir folders must let Power BI users do to reach an export inside it."""
        root, exports = self.root.resolve(), self.exports_dir.resolve()
        if exports == root or not exports.is_relative_to(root):
            return 0
        try:
            access = self.project_config().export.access
        except (ValueError, OSError):
            return 0  # a bad config fails the run's first step, with its own message
        return SEARCH_BITS[access]

    @property
    def root(self) -> Path:
        return Path(self.workdir)

    @property
    def warehouse_path(self) -> Path:
        return self.settings().warehouse_path

    @property
    def exports_dir(self) -> Path:
        """Where the Power BI export is published: ``export_dir`` or ``WORKDIR/exports``."""
        return self.settings().exports_dir

    @property
    def data_docs_dir(self) -> Path:
        return self.root / "reports" / "data_docs"

    @property
    def demo_data_dir(self) -> Path:
        return self.settings().demo_data_dir

    @property
    def models_dir(self) -> Path:
        """Fitted models (``segmentation/<version>/``, ...): artefacts of the workdir, never in git."""
        return self.root / "models"

    def project_config(self) -> ProjectConfig:
        return self.run_context().config

    def ground_truth(self) -> pd.DataFrame | None:
        """The config's ground-truth labels indexed by customer id (str), or None."""
        config = self.project_config()
        if config.ground_truth is None:
            return None
        gt = config.ground_truth
        path = config.resolve_root(self.data_root) / gt.path
        if not path.is_file():
            raise FileNotFoundError(f"ground_truth.path: {path} does not exist")
        frame = pd.read_csv(path, dtype={gt.customer_id_column: str})
        missing = [
            c
            for c in (gt.customer_id_column, gt.segment_column, gt.churn_column)
            if c and c not in frame.columns
        ]
        if missing:
            raise ValueError(
                f"{path}: ground-truth column(s) {missing} not in {list(frame.columns)}"
            )
        return frame.set_index(gt.customer_id_column)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        self.root.mkdir(parents=True, exist_ok=True)
        with _CONNECTION_LOCK:
            con = duckdb.connect(
                str(self.warehouse_path),
                read_only=read_only,
                config={"memory_limit": self.duckdb_memory_limit, "threads": self.duckdb_threads},
            )
            try:
                yield con
            finally:
                con.close()


# The settings the resource carries as its Dagster config (all but `env`).
_SETTINGS_FIELDS = tuple(
    f.name for f in fields(Settings) if f.name in WarehouseResource.model_fields
)
