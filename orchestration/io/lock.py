"""One pipeline run at a time per workdir: an advisory file lock, ``WORKDIR/.run.lock``.

DuckDB takes one writer per file, and a run also swaps exports and model folders, so
two runs on one workdir must not interleave. Whatever starts a run (``custseg run``,
the Dagster UI, a schedule or a sensor) takes this lock when the run's warehouse
resource is set up and releases it at the end. A second run waits up to ``timeout``
seconds, saying which run holds the workdir, then fails with a message that names
it. The operating system drops the lock when the holder dies, even on SIGKILL, so a
crashed run never leaves the workdir locked.

The lock is ``filelock``'s native (``flock``) lock. On acquiring it the holder writes
who it is into the locked file (filelock's ``on_acquired`` hook, which also rules out
its soft-lock fallback: a marker file would outlive a killed run).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_FILE = ".run.lock"


class WorkdirBusyError(RuntimeError):
    """Another run holds the workdir for longer than this run was willing to wait."""


class WorkdirLock:
    """``with WorkdirLock(workdir, owner="run 1234", timeout=600): ...``"""

    def __init__(
        self,
        workdir: str | Path,
        owner: str,
        timeout: float = 600.0,
        poll: float = 0.5,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(workdir) / LOCK_FILE
        self.owner = owner
        self.timeout = timeout
        self.log = log or (lambda _msg: None)
        # Not thread-local: Dagster may set a resource up and tear it down on different threads.
        self._lock = FileLock(
            self.path, thread_local=False, poll_interval=poll, on_acquired=self._write_holder
        )

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        with contextlib.suppress(Timeout):
            self._lock.acquire(blocking=False)
            return
        if self.timeout > 0:
            self.log(
                f"workdir {self.path.parent} is in use by {self.holder()}: waiting up "
                f"to {self.timeout:g} s for it to finish"
            )
        try:
            self._lock.acquire(timeout=max(self.timeout - (time.monotonic() - start), 0.0))
        except Timeout:
            waited = time.monotonic() - start
            raise WorkdirBusyError(
                f"workdir {self.path.parent} is in use by {self.holder()}; waited "
                f"{waited:.0f} s (timeout {self.timeout:g} s, CUSTSEG_LOCK_TIMEOUT). "
                "Two runs must not write the same warehouse: start this one again "
                "when that run has finished."
            ) from None

    def _write_holder(self, fd: int) -> None:
        info = {
            "owner": self.owner,
            "pid": os.getpid(),
            "since": dt.datetime.now().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        with contextlib.suppress(OSError):  # still ours: nobody else writes it meanwhile
            os.truncate(self.path, 0)
        self._lock.release()

    def holder(self) -> str:
        """Who holds the lock, as written by the holder ("another run" when unknown)."""
        try:
            info = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            info = {}
        if not info:
            return "another run"
        return (
            f"{info.get('owner', 'another run')} (pid {info.get('pid')}, since {info.get('since')})"
        )

    def __enter__(self) -> WorkdirLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
