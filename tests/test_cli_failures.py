"""`custseg run` explains every failure in one line, never with a traceback (issue 17, 6).

The real command in subprocesses, on a two-line delivery: a byte that is not UTF-8, a
workdir held by another run, a read-only workdir, a full disk, and ``--verbose``. Each
prints the project's own error (file and line, lock holder, folder) as one
``custseg: error:`` line and says that nothing was published; only ``--verbose`` prints
tracebacks. The runs start together (three at a time) and fail within seconds of
start-up, so the file costs about one pipeline start-up per core.

A read-only workdir and a full disk are made as the machine allows: as a plain user a
``chmod 555`` folder; as root (whom chmod does not stop) a read-only bind mount and a
2 MB tmpfs in a private mount namespace (``unshare --mount``); where neither works, the
subprocess's own ``os.open``/``os.mkdir`` refuse the workdir with EROFS / ENOSPC.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.pipeline_utils import hold_workdir

CONFIG = """\
transactions:
  path: {csv}
  columns: {{customer_id: cust, order_id: order, ordered_at: when, quantity: qty, unit_price: price}}
"""
GOOD = b"cust,order,when,qty,price\nA,1,2024-01-02,1,5\nB,2,2024-01-05,1,1\n"
LATIN_1 = b"cust,order,when,qty,price\nA,1,2024-01-02,1,5\nM\xfcller,2,2024-01-05,1,1\n"

# The fallback: the subprocess itself refuses to write under a folder (argv: folder, errno).
INJECT = """
import errno, os, sys
root, code = os.path.abspath(sys.argv.pop(1)), int(sys.argv.pop(1))
real_open, real_mkdir = os.open, os.mkdir
def _refuse(path):
    if os.path.abspath(path).startswith(root):
        raise OSError(code, os.strerror(code), str(path))
def _open(path, flags, *args, **kw):
    if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
        _refuse(path)
    return real_open(path, flags, *args, **kw)
def _mkdir(path, *args, **kw):
    _refuse(path)
    return real_mkdir(path, *args, **kw)
os.open, os.mkdir = _open, _mkdir
from orchestration.cli import main
sys.argv[0] = "custseg"
sys.exit(main())
"""


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    how: str = ""

    @property
    def text(self) -> str:
        return self.out + self.err

    def error_lines(self) -> list[str]:
        return [s for s in self.err.splitlines() if s.startswith("custseg: error: ")]


def _mounts_allowed(tmp: Path) -> bool:
    """Whether this process may mount in a private namespace (root in most containers)."""
    probe = tmp / "mount-probe"
    probe.mkdir()
    script = 'mount -t tmpfs -o size=64k tmpfs "$0" && touch "$0/x"'
    try:
        done = subprocess.run(["unshare", "--mount", "sh", "-c", script, str(probe)],
                              capture_output=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and not (probe / "x").exists()


def _workdir_case(tmp: Path, name: str, kind: str, mounts: bool) -> tuple[list[str], Path, str]:
    """(command prefix, workdir, how) for a read-only workdir or one on a full disk."""
    folder = tmp / name
    folder.mkdir()
    if kind == "read-only" and os.geteuid() != 0:
        folder.chmod(0o555)
        return [], folder / "wd", "chmod 555"
    if mounts:
        if kind == "read-only":
            script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
        else:
            script = 'mount -t tmpfs -o size=2m tmpfs "$0" && exec "$@"'
        return ["unshare", "--mount", "sh", "-c", script, str(folder)], folder / "wd", "mount"
    code = errno.EROFS if kind == "read-only" else errno.ENOSPC
    return ["INJECT", str(folder), str(code)], folder / "wd", "injected"


def _custseg(prefix: list[str], config: Path, workdir: Path, *extra: str) -> list[str]:
    args = ["run", "--config", str(config), "--workdir", str(workdir), *extra]
    if prefix[:1] == ["INJECT"]:
        return [sys.executable, "-c", INJECT, *prefix[1:], *args]
    return [*prefix, sys.executable, "-m", "orchestration.cli", *args]


def _run(command: list[str]) -> Outcome:
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    return Outcome(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, Outcome]:
    tmp = tmp_path_factory.mktemp("cli_failures")
    for name, content in (("good.csv", GOOD), ("latin1.csv", LATIN_1)):
        (tmp / name).write_bytes(content)
        (tmp / f"{name}.yaml").write_text(CONFIG.format(csv=tmp / name))
    good, latin1 = tmp / "good.csv.yaml", tmp / "latin1.csv.yaml"
    mounts = os.geteuid() == 0 and _mounts_allowed(tmp)
    read_only, ro_workdir, ro_how = _workdir_case(tmp, "read_only", "read-only", mounts)
    full, full_workdir, full_how = _workdir_case(tmp, "full", "full", mounts)

    # The busy workdir: "the first run" holds the lock; its log is the workdir's last
    # one (a plain file, as every earlier version wrote it). The second must not touch it.
    busy = tmp / "busy"
    (busy / "logs").mkdir(parents=True)
    (busy / "logs" / "last_run.log").write_text("the first run's dbt output\n")
    holder = hold_workdir(busy, 120, owner="run first-run")
    commands = {
        "bad-encoding": _custseg([], latin1, tmp / "wd_latin1"),
        "busy": _custseg([], good, busy, "--lock-timeout", "1"),
        "read-only": _custseg(read_only, good, ro_workdir),
        "disk-full": _custseg(full, good, full_workdir),
        "verbose": _custseg([], good, tmp / "wd_verbose", "--verbose"),
    }
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = dict(zip(commands, pool.map(_run, commands.values()), strict=True))
    finally:
        holder.kill()
        holder.wait()
        if os.geteuid() != 0:
            (tmp / "read_only").chmod(0o755)
    results["read-only"].how, results["disk-full"].how = ro_how, full_how
    results["busy"].how = str(busy)
    return results


def _one_line_failure(outcome: Outcome) -> str:
    """The single error line of a failed run without --verbose; no traceback anywhere."""
    assert outcome.code == 1, outcome.text
    assert "Traceback" not in outcome.text and "Stack Trace" not in outcome.text, outcome.text
    lines = outcome.error_lines()
    assert len(lines) == 1, outcome.text
    assert "Nothing was published" in outcome.out, outcome.text
    return lines[0]


def test_latin1_byte_in_a_utf8_delivery_prints_the_ingest_line_and_byte_offset(outcomes):
    line = _one_line_failure(outcomes["bad-encoding"])
    assert "latin1.csv: not valid utf-8 at line 3 (counting the header; byte offset 46" in line
    assert "set `encoding:`" in line and "Possible Solution" not in outcomes["bad-encoding"].text


def test_workdir_held_by_another_run_names_the_holder_and_keeps_its_log(outcomes):
    busy = outcomes["busy"]
    line = _one_line_failure(busy)
    assert "is in use by run first-run (pid " in line
    # --lock-timeout 1: waited one second, not the default 600
    assert "; waited 1 s (timeout 1 s, CUSTSEG_LOCK_TIMEOUT)" in line
    logs = Path(busy.how) / "logs"
    kept = [p for p in logs.rglob("*.log") if p.read_text() == "the first run's dbt output\n"]
    assert kept, "the first run's log was truncated or removed"
    # This run's own log has its error with the traceback.
    assert "WorkdirBusyError" in (logs / "last_run.log").read_text()


def test_read_only_workdir_is_one_line_naming_the_folder(outcomes):
    outcome = outcomes["read-only"]
    line = _one_line_failure(outcome)
    assert "read_only" in line, f"{outcome.how}: {line}"
    assert "read-only file system" in line or "not writable" in line, f"{outcome.how}: {line}"


def test_full_disk_is_one_line_saying_so(outcomes):
    outcome = outcomes["disk-full"]
    line = _one_line_failure(outcome)
    assert "disk is full" in line or "no space left" in line, f"{outcome.how}: {line}"


def test_verbose_runs_and_prints_the_tracebacks_with_the_delivery_line(outcomes):
    outcome = outcomes["verbose"]
    assert outcome.code == 1, outcome.text
    assert "unexpected config entry" not in outcome.text
    assert " - dagster - " in outcome.err  # Dagster's own console log
    assert "Stack Trace" in outcome.err or "Traceback" in outcome.err
    (line,) = outcome.error_lines()
    assert "2 customer(s) with a transaction before the day after the last transaction" in line
