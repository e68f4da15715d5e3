"""Why a run failed, in one line each, for ``custseg run`` (no Dagster import).

What a step raised reaches the command line wrapped twice over: Dagster wraps it
(``DagsterExecutionStepExecutionError``, a resource's ``DagsterResourceFunctionError``,
the ``dg.Failure`` of ``assets/retry.py``), and the project's own errors are raised *from*
the library error they explain (an ``IngestError`` naming file, line and byte offset from
DuckDB's 25-line CSV sniffer dump). The line a user needs is the project's: it names the
file, line, column, config key, flag or the run holding the workdir. So the explanation is

* the outermost error raised by the project's own code (``orchestration``, ``ml``,
  ``data_quality``);
* else the outermost error that is not a Dagster wrapper (a library's own error, e.g.
  SQLite's "database or disk is full", or dbt's first error line);
* its first line only. The whole chain with its tracebacks goes to the run's log file
  and, with ``--verbose``, to the console.

A full disk shows up as whatever the writer made of ENOSPC (SQLite's "database or disk is
full" or "disk I/O error", DuckDB's "No space left on device"); a read-only disk as
EROFS, or SQLite's "unable to open database file". The line then says so first.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_PACKAGES = ("orchestration", "ml", "data_quality")
CHECK_FAILED = "DagsterAssetCheckFailedError"  # a blocking check failed: the checks say why
INTERRUPTED = "DagsterExecutionInterruptedError"  # Ctrl-C, or a termination from the UI
DBT_ERRORS = "Errors parsed from dbt logs:"  # dagster-dbt's DagsterDbtCliRuntimeError
MAX_LINES = 5

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_FULL_TEXT = ("no space left", "disk is full", "quota exceeded")
_READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}
_READ_ONLY_TEXT = ("read-only file system", "permission denied", "readonly database")


@dataclass(frozen=True)
class Link:
    """One error of a chain: where its class lives, its name and its message."""

    module: str
    name: str
    text: str
    errno: int | None = None

    @property
    def is_project(self) -> bool:
        return self.module.split(".")[0] in PROJECT_PACKAGES

    @property
    def is_dagster(self) -> bool:
        return self.module.split(".")[0] == "dagster"


def chain(error: BaseException | Any) -> list[Link]:
    """The links of a live exception or of Dagster's ``SerializableErrorInfo``, outermost
    first, following each error's cause (else the error it was raised while handling)."""
    return list(_exception_links(error) if isinstance(error, BaseException) else _info_links(error))


def _exception_links(exc: BaseException | None) -> Iterator[Link]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        kind = type(exc)
        code = exc.errno if isinstance(exc, OSError) else None
        yield Link(kind.__module__, kind.__qualname__, str(exc), code)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)


def _info_links(info: Any) -> Iterator[Link]:
    """``info.message`` is ``traceback.format_exception_only``: ``pkg.mod.Name: text``."""
    while info is not None:
        name = info.cls_name or ""
        head, sep, rest = info.message.partition(": ")
        head = head.strip() if sep else info.message.strip()
        if name and head.endswith(name) and " " not in head:
            module, text = head[: -len(name)].rstrip(".") or "builtins", rest if sep else ""
        else:
            module, text = "", info.message
        yield Link(module, name, text)
        info = info.cause or info.context


def root(links: list[Link]) -> Link:
    """The link that explains the chain (see the module docstring)."""
    for link in links:
        if link.is_project:
            return link
    wraps = {i for i, link in enumerate(links[:-1]) if link.is_dagster}
    return next((link for i, link in enumerate(links) if i not in wraps), links[-1])


def first_line(link: Link) -> str:
    text = link.text
    if DBT_ERRORS in text:  # dbt's own error ("Failure in test ...", "Database Error in ...")
        text = text.split(DBT_ERRORS, 1)[1]
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    if link.is_project or link.is_dagster:
        return line or link.name
    return f"{link.name}: {line}" if line else link.name


def explain(error: BaseException | Any, workdir: str | Path | None = None) -> str:
    """One line: the root error's first line, said to be a full or read-only disk first
    when the chain says so."""
    links = chain(error)
    cause = root(links)
    if cause.name == INTERRUPTED:
        return "interrupted (Ctrl-C, or the run was terminated) before it finished"
    line = first_line(cause)
    texts = [link.text.lower() for link in links]
    said = cause.is_project and any(marker in line.lower() for marker in ("space", "full"))
    if not said and (
        any(link.errno in _FULL_ERRNOS for link in links)
        or any(marker in text for text in texts for marker in _FULL_TEXT)
    ):
        return f"the disk is full{_free(workdir)}: {line}"
    if not cause.is_project and (
        any(link.errno in _READ_ONLY_ERRNOS for link in links)
        or any(marker in text for text in texts for marker in _READ_ONLY_TEXT)
    ):
        return f"cannot write{f' to {workdir}' if workdir else ''}: {line}"
    if "disk i/o error" in " ".join(texts) and _free_bytes(workdir) == 0:
        return f"the disk is full{_free(workdir)}: {line}"
    return line


def _free_bytes(workdir: str | Path | None) -> int | None:
    if workdir is None:
        return None
    path = Path(workdir)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def _free(workdir: str | Path | None) -> str:
    free = _free_bytes(workdir)
    if free is None:
        return ""
    return f" ({free / 2**20:,.1f} MB free where the workdir {workdir} is)"


def run_failure_lines(result: Any, workdir: str | Path | None = None) -> list[str]:
    """Why a failed Dagster run (an ``ExecuteInProcessResult``) failed, one line each.

    The project's own step errors and the blocking checks that failed (Great Expectations
    suites and dbt tests) come first; a library's error only when neither says more; the
    run's own error (a resource that could not start, e.g. a busy workdir) otherwise.
    """
    project, library = [], []
    for event in result.all_events:
        if not event.is_step_failure or event.step_failure_data.error is None:
            continue
        links = chain(event.step_failure_data.error)
        if root(links).name == CHECK_FAILED:
            continue
        line = f"{event.step_key}: {explain(event.step_failure_data.error, workdir)}"
        (project if any(link.is_project for link in links) else library).append(line)
    checks = [
        _check_line(e)
        for e in result.get_asset_check_evaluations()
        if not e.passed and getattr(e.severity, "value", e.severity) == "ERROR"
    ]
    lines = project + checks or library
    if not lines:
        for event in result.all_events:
            if event.is_run_failure:
                error = getattr(event.event_specific_data, "error", None)
                lines.append(explain(error, workdir) if error else (event.message or "failed"))
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES], f"... and {len(lines) - MAX_LINES} more"]
    return lines or ["the run failed (no error recorded)"]


def _check_line(evaluation: Any) -> str:
    key = evaluation.asset_key.to_user_string()
    text = (evaluation.description or "").strip().splitlines()
    if not text:
        count = evaluation.metadata.get("dagster_dbt/failed_row_count")
        text = [f"{getattr(count, 'value', count)} failing rows"] if count is not None else []
    return f"check {key} / {evaluation.check_name} failed" + (f": {text[0]}" if text else "")


def run_failure_details(result: Any) -> str:
    """Every error of a failed run with its traceback, for the log file and ``--verbose``."""
    parts = []
    for event in result.all_events:
        data = event.event_specific_data
        error = (
            getattr(data, "error", None)
            if (event.is_step_failure or event.is_run_failure)
            else None
        )
        if error is not None:
            parts.append(f"{event.step_key or 'run'}: {error.to_string()}")
    return "\n".join(parts)
