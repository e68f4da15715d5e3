"""Stop a real publish at a chosen point, so a test can SIGKILL it exactly there.

A subprocess materialises the ``powerbi_export`` asset on a workdir, as the UI or a
pipeline run does. Before that it installs a breakpoint with Python's own debugging
hooks (no change to the code under test): when the publish reaches the point, the
subprocess writes a marker file and sleeps; the test waits for the marker and kills
the process group with SIGKILL. Points:

``first-parquet``  in ``publish_marts``, right after the first table's Parquet file is
                   written (a tracer on that function's lines);
``version-rename`` just before the complete ``versions/.tmp-*`` folder is renamed to
                   its final name;
``mid-swap``       in the swap into the published ``powerbi`` folder, just before its
                   second Parquet file is replaced (one file already the new version's)
                   (both: Python's audit event ``os.rename``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO

POINTS = ("first-parquet", "version-rename", "mid-swap")

SCRIPT = r"""
import os, sys, threading, time
from pathlib import Path

marker, point, workdir = sys.argv[1:4]


def pause():
    Path(marker).write_text(point, encoding="utf-8")
    while True:
        time.sleep(60)


import orchestration.publish.export as export

if point == "first-parquet":
    code = export.publish_marts.__code__

    def lines(frame, event, arg):
        f = frame.f_locals
        if event == "line" and f.get("tmp") and f.get("tables"):
            if (f["tmp"] / f"{f['tables'][0]}.parquet").exists():
                pause()
        return lines

    def calls(frame, event, arg):
        return lines if frame.f_code is code else None

    sys.settrace(calls)
    threading.settrace(calls)
else:
    swapped = []

    def hook(event, args):  # os.rename and os.replace raise the same audit event
        if event != "os.rename":
            return
        src, dst = Path(os.fsdecode(args[0])), Path(os.fsdecode(args[1]))
        if point == "version-rename" and src.name.startswith(".tmp-"):
            pause()
        if point == "mid-swap" and dst.parent.name == "powerbi" and dst.suffix == ".parquet":
            swapped.append(dst)
            if len(swapped) == 2:
                pause()

    sys.addaudithook(hook)

import dagster as dg

from orchestration.assets.export import powerbi_export
from orchestration.resources import WarehouseResource

dg.materialize([powerbi_export], resources={"warehouse": WarehouseResource(workdir=workdir)})
print("published without pausing", flush=True)
"""


def kill_publish_at(workdir: Path, point: str, marker: Path, timeout: float = 120) -> None:
    """Publish ``workdir``'s marts in a subprocess and SIGKILL it at ``point``."""
    assert point in POINTS, point
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(marker), point, str(workdir)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while not marker.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        output = proc.communicate(timeout=30)[0]
    assert marker.exists(), f"the publish never reached {point}:\n{output}"
    assert proc.returncode == -signal.SIGKILL, output
