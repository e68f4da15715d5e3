"""What the ingest returns and raises (orchestration/ingest/load.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


class IngestError(ValueError):
    """An input that cannot be loaded at all; the message names the file and what is wrong."""


@dataclass
class FileLoad:
    source: str
    file: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    content_sha256: str | None = None  # None for a database source
    # A database table with `incremental:`: its column and the rows' range of it,
    # mark_from < column <= mark_to (orchestration/ingest/database/high_water.py); None otherwise.
    mark_column: str | None = None
    mark_from: str | None = None
    mark_to: str | None = None


@dataclass
class IngestResult:
    run_id: str
    files: list[FileLoad] = field(default_factory=list)
    mode: str = "full"  # or "incremental"
    # Inbox files not loaded because their content already was: {file, reason}.
    skipped: list[dict] = field(default_factory=list)

    def totals(self, source: str) -> tuple[int, int, int]:
        rows = [f for f in self.files if f.source == source]
        return (
            sum(f.rows_read for f in rows),
            sum(f.rows_loaded for f in rows),
            sum(f.rows_rejected for f in rows),
        )
