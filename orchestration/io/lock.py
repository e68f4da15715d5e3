"""One pipeline run at a time per workdir: an advisory file lock, ``WORKDIR/.run.lock``.

DuckDB takes one writer per file, and a run also swaps exports and model folders, so
two runs on one workdir must not interleave. Whatever starts a run (``custseg run``,
the Dagster UI, a schedule or a sensor) takes this lock when the run's warehouse
resource is set up and releases it at the end. A second run waits up to ``timeout``
seconds, saying which run holds the workdir, then fails with a message that names
it. The operating system drops the lock when the holder dies, even on SIGKILL, so a
crashed run never leaves the workdir locked.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

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
        self.poll = poll
        self.log = log or (lambda _msg: None)
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        start = time.monotonic()
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - start
                if waited >= self.timeout:
                    os.close(fd)
                    raise WorkdirBusyError(
                        f"workdir {self.path.parent} is in use by {self.holder()}; waited "
                        f"{waited:.0f} s (timeout {self.timeout:g} s, CUSTSEG_LOCK_TIMEOUT). "
                        "Two runs must not write the same warehouse: start this one again "
                        "when that run has finished."
                    ) from None
                if not announced:
                    self.log(
                        f"workdir {self.path.parent} is in use by {self.holder()}: waiting up "
                        f"to {self.timeout:g} s for it to finish"
                    )
                    announced = True
                time.sleep(self.poll)
        info = {
            "owner": self.owner,
            "pid": os.getpid(),
            "since": dt.datetime.now().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

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
