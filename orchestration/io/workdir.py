"""The workdir before a run: can it be written, and where this run's log goes.

A read-only workdir (a read-only mount, another user's folder) or a full disk used to
end in a 70-90 line traceback from deep inside Dagster's SQLite storage; one write of a
probe file before anything else says which folder and why, in one line.

Each ``custseg run`` writes dbt's output (and, on failure, every error with its
traceback) to its own file, ``logs/runs/<run id>.log``, the id the Dagster UI shows.
``logs/last_run.log`` is a symbolic link to the newest run's file: a second run
started while the first is busy (or waiting for the workdir lock) never truncates the
first one's log. The newest ``KEEP_RUN_LOGS`` files are kept.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
from pathlib import Path

RUN_LOGS = Path("logs") / "runs"
LAST_RUN_LOG = Path("logs") / "last_run.log"
KEEP_RUN_LOGS = 20
_RECENT = 3600  # seconds: a log written this recently may belong to a run still going


class WorkdirError(RuntimeError):
    """The workdir cannot be used: not writable, or its disk is full."""


def check_writable(workdir: str | Path) -> None:
    """Create ``workdir`` if needed and write (then remove) a probe file in it.

    Raises
    ------
    WorkdirError
        Naming the folder and the reason (read-only, permissions, disk full).
    """
    path = Path(workdir)
    probe = path / f".write-probe-{os.getpid()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"custseg\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        probe.unlink()
    except OSError as exc:
        with contextlib.suppress(OSError):
            probe.unlink()
        raise WorkdirError(_why(path, exc)) from exc


def _why(path: Path, exc: OSError) -> str:
    where = f"workdir {path}"
    fix = "choose another --workdir (CUSTSEG_WORKDIR)"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        free = _free_mb(path)
        return f"no space left on the disk of the {where}{free}: free some space or {fix}"
    if exc.errno == errno.EROFS:
        return f"the {where} is on a read-only file system: {fix}"
    if exc.errno in (errno.EACCES, errno.EPERM):
        owner = _owner(Path(exc.filename) if exc.filename else path)
        return f"the {where} is not writable by this user{owner}: {fix} or change its permissions"
    return f"the {where} cannot be written ({exc.strerror or exc}): {fix}"


def _free_mb(path: Path) -> str:
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return f" ({shutil.disk_usage(path).free / 2**20:,.1f} MB free)"
    except OSError:
        return ""


def _owner(path: Path) -> str:
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        st = path.stat()
    except OSError:
        return ""
    return f" (uid {os.geteuid()}; {path} belongs to uid {st.st_uid}, mode {st.st_mode & 0o777:o})"


def run_log(workdir: str | Path, run_id: str) -> Path:
    """``WORKDIR/logs/runs/<run_id>.log`` (created empty), now ``logs/last_run.log``."""
    root = Path(workdir)
    folder = root / RUN_LOGS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.log"
    path.touch()
    _point_last_run_log(root, path)
    _prune(folder, keep=path)
    return path


def _point_last_run_log(root: Path, path: Path) -> None:
    link = root / LAST_RUN_LOG
    if link.is_file() and not link.is_symlink():
        # A log from before per-run files: kept beside them instead of being replaced.
        with contextlib.suppress(OSError):
            link.replace(link.parent / RUN_LOGS.name / f"before-{int(link.stat().st_mtime)}.log")
    tmp = link.with_name(f".{link.name}.{os.getpid()}")
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(path.relative_to(link.parent))
        tmp.replace(link)  # atomic: a reader sees the old run's log or the new one
    except OSError:  # no symbolic links here: the runs folder still has every log
        with contextlib.suppress(OSError):
            tmp.unlink()


def _prune(folder: Path, keep: Path) -> None:
    now = time.time()
    logs = sorted(((_mtime(p), p) for p in folder.glob("*.log")), reverse=True)
    for mtime, old in logs[KEEP_RUN_LOGS:]:
        if old != keep and now - mtime > _RECENT:
            with contextlib.suppress(OSError):  # another run may have pruned it meanwhile
                old.unlink()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
