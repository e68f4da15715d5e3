"""The published folder ``exports/powerbi/``: a real folder whose files are swapped in
from a complete version, one atomic rename per file, the manifest last.

Why not a link to the version: Windows, Power BI and SMB shares do not reliably follow a
symbolic link (a Samba share may refuse to, a WSL link shows as a special file on
``\\\\wsl$``), and Power BI's ``ExportFolder`` must be a path it can open on every refresh.

A publish (:func:`swap_in`) of the version folder ``versions/<name>/``:

1. replaces ``manifest.json`` with a marker ``{"state": "publishing", ...}``;
2. puts each file of the version in place under its own name: a hard link to the
   version's file (a copy where the file system has none) written as ``.<name>.new``,
   then renamed over the old file (``os.replace``: atomic on POSIX and NTFS); files of
   the old version that the new one lacks are removed;
3. replaces the marker with the version's ``manifest.json`` (``"state": "complete"``).

What a reader sees, in order of how much it checks:

* **Any file, any time, is complete**: each one appears by one rename; nothing is ever
  written in place under a published name. A reader holding a file open keeps reading
  the version it opened.
* **One version across files**: the manifest says ``"complete"`` and names the run
  only when every file in the folder is that run's. A reader that reads the manifest
  before and after its files, and gets the same complete manifest both times, read one
  version (:func:`read_consistent` does that); otherwise a publish overlapped and it
  reads again. The swap itself is a few renames (milliseconds).
* **A pinned version**: ``versions/<name>/`` never changes while it is kept.

A publish that fails half-way (on Windows a file that another program holds open cannot
be replaced, :data:`BUSY_SECONDS`) puts the previous version back the same way and
raises, so the folder holds one complete version either way. A publish killed half-way
leaves the marker, so a checking reader knows; the next publish completes the folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

PUBLISHED = "powerbi"
MANIFEST = "manifest.json"
NEW = ".new"
# On Windows a file open in another program (Power BI refreshing, an ODBC connection)
# cannot be replaced; a refresh ends within seconds, so the swap waits this long.
BUSY_SECONDS = 30.0


class PublishError(OSError):
    """The published folder could not be brought to the new version (the old one is back)."""


def swap_in(exports_dir: Path, version: Path, previous: Path | None) -> Path:
    """Make ``exports_dir/powerbi`` hold the files of ``version``; returns its path.

    ``previous`` is the version published before (its files are put back if the swap
    fails half-way); None when there was none.
    """
    folder = exports_dir / PUBLISHED
    shutil.rmtree(folder.with_name(f".{PUBLISHED}{NEW}"), ignore_errors=True)  # a killed _create
    if folder.is_symlink() or not folder.exists():
        _create(folder, version)
        return folder
    _clean(folder)
    try:
        _swap(folder, version)
    except OSError as exc:
        if previous is not None and previous.is_dir():
            with contextlib.suppress(OSError):
                _swap(folder, previous)
        raise PublishError(
            f"could not publish {version.name} into {folder}: {exc}. The previous version "
            "is still published; if Power BI or another program had a file of it open, "
            "close it (or let its refresh finish) and run again"
        ) from exc
    return folder


def published_version(exports_dir: Path) -> Path | None:
    """The version folder the published folder holds now (None: none, or mid-swap)."""
    try:
        manifest = read_manifest(exports_dir)
    except (OSError, ValueError):
        return None
    name = manifest.get("version") if manifest.get("state", "complete") == "complete" else None
    return exports_dir / "versions" / name if name else None


def read_manifest(exports_dir: str | Path) -> dict:
    return json.loads((Path(exports_dir) / PUBLISHED / MANIFEST).read_text(encoding="utf-8"))


def read_consistent(exports_dir: str | Path, read: Callable[[Path, dict], object], tries=50):
    """``read(folder, manifest)`` on the published folder, again until no publish overlapped.

    The manifest is read before and after: the same complete manifest both times means
    every file ``read`` opened belonged to that version. Returns ``(manifest, result)``.
    """
    folder = Path(exports_dir) / PUBLISHED
    for _ in range(tries):
        try:
            before = read_manifest(exports_dir)
            if before.get("state", "complete") == "complete":
                result = read(folder, before)
                if read_manifest(exports_dir) == before:
                    return before, result
        except (OSError, ValueError):
            pass  # a file replaced between listing and opening: read again
        time.sleep(0.01)
    raise TimeoutError(f"{folder}: a publish overlapped every one of {tries} reads")


def _create(folder: Path, version: Path) -> None:
    """First publish (or the old link layout): fill a new folder, then rename it in place."""
    fresh = folder.with_name(f".{PUBLISHED}{NEW}")
    fresh.mkdir()
    shutil.copymode(version, fresh)
    for src in version.iterdir():
        _place(src, fresh / src.name)
    if folder.is_symlink():
        folder.unlink()  # the old layout; a reader between these two lines finds no folder
    fresh.rename(folder)


def _swap(folder: Path, version: Path) -> None:
    files = sorted(p for p in version.iterdir() if p.is_file() and p.name != MANIFEST)
    marker = {"state": "publishing", "version": version.name}
    _atomic_write(folder / MANIFEST, json.dumps(marker, indent=2) + "\n")
    for src in files:
        _place(src, folder / src.name)
    wanted = {p.name for p in files} | {MANIFEST}
    for old in folder.iterdir():
        if old.name not in wanted and not old.name.startswith("."):
            _retry(old.unlink)
    _place(version / MANIFEST, folder / MANIFEST)


def _place(src: Path, dest: Path) -> None:
    """``dest`` becomes ``src`` by one rename: a hard link (no second copy on disk) or a copy."""
    tmp = dest.with_name(f".{dest.name}{NEW}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    with contextlib.suppress(FileNotFoundError):
        if os.path.samefile(src, dest):
            return  # already that file (a rename between two links of it would do nothing)
    try:
        os.link(src, tmp)
    except OSError:  # no hard links here (FAT, some shares): the bytes once more
        shutil.copy2(src, tmp)
    _retry(lambda: os.replace(tmp, dest))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}{NEW}")
    tmp.write_text(text, encoding="utf-8")
    _retry(lambda: os.replace(tmp, path))


def _retry(action: Callable[[], object], seconds: float | None = None) -> None:
    """``action`` again while Windows says the file is in use (PermissionError)."""
    deadline = time.monotonic() + (BUSY_SECONDS if seconds is None else seconds)
    delay = 0.05
    while True:
        try:
            action()
            return
        except PermissionError:
            if os.name != "nt" or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def _clean(folder: Path) -> None:
    """Leftovers of a publish killed between writing a ``.new`` file and renaming it."""
    for stale in folder.glob(f".*{NEW}"):
        with contextlib.suppress(OSError):
            stale.unlink()
