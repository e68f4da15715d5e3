"""Who may read the workdir and the Power BI export (POSIX permissions).

The workdir holds customer data (the warehouse, models, reports, logs, Dagster's run
history), so it is its owner's alone: a run creates every file and folder under the
umask ``077`` (files ``0600``, folders ``0700``) and keeps the workdir folder itself at
``0700``; at its start and end, group and other permissions are removed from everything
in it but the export (files an older version wrote, copies that kept their source's mode).

The Power BI export is meant for other people: ``export.access`` in the project config
(``orchestration/io/config.py``, default ``owner``) sets the modes of its folders and
files (:data:`EXPORT_MODES`). With ``group`` or ``everyone`` and the export inside the
workdir, the folders on the way to it get only the search bit (``x``) for that class:
Power BI users open ``exports/powerbi`` by its path but cannot list the workdir, and
everything else in it stays ``0700`` / ``0600``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

PRIVATE_UMASK = 0o077
PRIVATE_DIR = 0o700
# export.access -> (folder mode, file mode)
EXPORT_MODES: dict[str, tuple[int, int]] = {
    "owner": (0o700, 0o600),
    "group": (0o750, 0o640),
    "everyone": (0o755, 0o644),
}
# export.access -> the search bits of the folders on the way to an export in the workdir
SEARCH_BITS: dict[str, int] = {
    "owner": 0,
    "group": stat.S_IXGRP,
    "everyone": stat.S_IXGRP | stat.S_IXOTH,
}


@contextmanager
def private_umask() -> Iterator[None]:
    """Files and folders created meanwhile (by this process and its children) are private."""
    old = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path | str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _owned(path: Path) -> bool:
    return path.stat().st_uid == os.getuid()


def close_tree(root: str | Path, skip: str | Path | None = None) -> None:
    """Remove group and other permissions from everything under ``root`` except ``skip``
    (symbolic links are not followed). Cheap (a few ms per thousand files), so a run does
    it at its start and end: a copy that keeps its source's mode (``shutil.copy``, as
    dagster-dbt copies dbt's partial-parse file) is closed as well."""
    skip = Path(skip).resolve() if skip is not None else None
    # Folders on the way to ``skip`` keep their search bits (apply_export_access).
    on_the_way = set(skip.parents) if skip is not None else set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if skip is None or Path(folder, d).resolve() != skip]
        for name in (*dirs, *files):
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            mode = _mode(path)
            keep_search = name in dirs and on_the_way and Path(path).resolve() in on_the_way
            closed = mode & ~(0o066 if keep_search else 0o077)
            if closed != mode:
                os.chmod(path, closed)


def make_private_workdir(
    workdir: str | Path,
    search: int = 0,
    exports_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Create ``workdir`` or close an existing one: everything in it but ``exports_dir``
    loses group and other permissions, the folder itself becomes ``0700`` plus ``search``
    (the bits an export shared from inside it needs, :data:`SEARCH_BITS`). A folder of
    another user is left as it is."""
    path = Path(workdir)
    path.mkdir(parents=True, exist_ok=True)
    if not _owned(path):
        return path
    current = _mode(path)
    close_tree(path, exports_dir)
    if current & 0o066 and log is not None:
        log(
            f"workdir {path} was open to other users ({current:04o}): closed, as it holds "
            "customer data (docs/operations.md: Privacy)"
        )
    wanted = PRIVATE_DIR | search
    if _mode(path) != wanted:
        os.chmod(path, wanted)
    return path


def _chmod_dir(path: Path | str, mode: int) -> None:
    # Keep set-group-ID: on a share it makes new files belong to the readers' group.
    os.chmod(path, mode | (_mode(path) & stat.S_ISGID))


def apply_export_access(
    exports_dir: str | Path, access: str, workdir: str | Path | None, created: bool = False
) -> None:
    """Give the export the modes of ``access``: its ``versions`` folder and every version
    in it (so a changed setting reaches the versions still kept), the published folder
    ``powerbi`` (its files are hard links to a version's, or copies), and ``exports_dir``
    itself when it is inside ``workdir`` or this publish ``created`` it (an existing
    folder elsewhere, a share, keeps the modes its owner gave it). Inside ``workdir``, the
    folders from the workdir to the export get :data:`SEARCH_BITS`."""
    dir_mode, file_mode = EXPORT_MODES[access]
    exports_dir = Path(exports_dir).resolve()
    top = Path(workdir).resolve() if workdir is not None else None
    inside = top is not None and exports_dir != top and exports_dir.is_relative_to(top)
    if inside or created:
        _chmod_dir(exports_dir, dir_mode)
    for top_folder in ("versions", "powerbi"):
        for folder, _dirs, files in os.walk(exports_dir / top_folder):
            _chmod_dir(folder, dir_mode)
            for name in files:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    os.chmod(path, file_mode)
    if not inside:
        return
    folder = exports_dir.parent
    while True:
        os.chmod(folder, PRIVATE_DIR | SEARCH_BITS[access])
        if folder == top:
            break
        folder = folder.parent
