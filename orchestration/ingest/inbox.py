"""The transactions inbox: which files are in it, which are complete, and which are new.

Plain functions shared by the sensor (``orchestration/sensors.py``) and the ingest
(``orchestration/ingest/load.py``); no Dagster imports. A file's identity is its
content: the SHA-256 of its bytes. The sensor remembers (in its Dagster cursor)
name, size, modification time and hash of every file it has seen, hashes only
files whose size or time changed, and asks for one run per batch of new content;
the run key is derived from the batch, so asking twice asks for the same run.
The ingest then skips any content already loaded (``raw.load_log``), which keeps
a file loaded exactly once even when a run is retried.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from orchestration.io.config import InboxConfig

# Names of files still being written by common tools (copies, downloads, editors).
UNFINISHED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".filepart", ".swp")


@dataclass(frozen=True)
class InboxFile:
    name: str  # relative to the inbox folder
    path: Path
    size: int
    mtime_ns: int


def list_inbox(folder: Path, cfg: InboxConfig, now: float | None = None) -> list[InboxFile]:
    """Complete files in ``folder`` matching ``cfg.pattern``, by name.

    Left out: hidden files, names of files still being written (``*.tmp``, ``*.part`` …)
    and files modified less than ``cfg.settle_seconds`` ago. A missing folder is empty.
    """
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    found = []
    for path in sorted(folder.glob(cfg.pattern)):
        name = path.relative_to(folder).as_posix()
        if not path.is_file() or path.name.startswith((".", "~")):
            continue
        if path.name.lower().endswith(UNFINISHED_SUFFIXES):
            continue
        stat = path.stat()
        if now - stat.st_mtime < cfg.settle_seconds:
            continue
        found.append(InboxFile(name, path, stat.st_size, stat.st_mtime_ns))
    return found


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Batch:
    """New content found by :func:`new_files`: ``files`` are (name, sha256) pairs."""

    files: list[tuple[str, str]]
    cursor: str

    @property
    def run_key(self) -> str:
        """The same for the same set of (name, content), whatever the order or the tick."""
        text = json.dumps(sorted(self.files))
        return "inbox-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def new_files(files: list[InboxFile], cursor: str | None) -> Batch:
    """The files whose content the cursor has not seen, and the cursor that has seen them.

    The cursor is JSON ``{name: [size, mtime_ns, sha256]}`` for the files present now
    (entries of removed files are dropped). A file touched but not changed is not new.
    """
    seen: dict = json.loads(cursor) if cursor else {}
    out: dict[str, list] = {}
    new: list[tuple[str, str]] = []
    for f in files:
        old = seen.get(f.name)
        if old and old[0] == f.size and old[1] == f.mtime_ns:
            out[f.name] = old
            continue
        sha = sha256_file(f.path)
        out[f.name] = [f.size, f.mtime_ns, sha]
        if not old or old[2] != sha:
            new.append((f.name, sha))
    return Batch(new, json.dumps(out, sort_keys=True))


def inbox_path(folder: Path, name: str) -> Path:
    """``folder / name`` (spelt as :func:`list_inbox` spells it); a name leading out of
    the folder is refused."""
    if not (folder / name).resolve().is_relative_to(folder.resolve()):
        raise ValueError(f"{name!r} is not inside the inbox {folder}")
    return folder / name
