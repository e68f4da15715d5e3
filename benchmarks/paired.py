"""Repeated end-to-end runs, paired with the user's script: child measurement and medians.

:func:`run_child` times a child process from outside: wall clock from start to exit, and
CPU time and peak resident memory from the kernel's account of the exited child
(``wait4``: its own CPU plus that of the children it waited for). Peak memory is the
child's own high-water mark (``VmHWM`` in ``/proc/<pid>/status``, read every 20 ms until
it exits): ``wait4``'s ``ru_maxrss`` starts from the parent's size at the fork, so it
would count this process too. :func:`summarize` is the pure
part: per-metric medians and the pipeline / script ratios (a ratio of medians, so one
slow run on a shared machine moves neither side much).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import threading
import time

METRICS = ("wall_s", "end_to_end_s", "cpu_s", "peak_rss_mb")


def run_child(cmd: list[str], stdout=None, stderr=None) -> dict:
    """Run ``cmd`` to its end; its wall and CPU seconds, peak MB and return code."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr)
    peak_kib = [0]
    done = threading.Event()
    watcher = threading.Thread(target=_watch_hwm, args=(proc.pid, peak_kib, done), daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    watcher.join()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(peak_kib[0] / 1024),
        "returncode": proc.returncode,
    }


_HWM = re.compile(rb"VmHWM:\s+(\d+) kB")


def _watch_hwm(pid: int, peak_kib: list[int], done: threading.Event) -> None:
    """Keep the child's resident high-water mark (KiB) in ``peak_kib[0]`` until ``done``."""
    path = f"/proc/{pid}/status"
    while not done.is_set():
        try:
            with open(path, "rb") as f:
                found = _HWM.search(f.read())
        except OSError:  # exited (a zombie has no VmHWM line either)
            found = None
        if found:
            peak_kib[0] = max(peak_kib[0], int(found.group(1)))
        done.wait(0.02)


def medians(runs: list[dict]) -> dict:
    """The median of each metric the runs have (lower middle run for an even count)."""
    return {
        k: statistics.median_low([r[k] for r in runs])
        for k in METRICS
        if runs and all(r.get(k) is not None for r in runs)
    }


def median_index(runs: list[dict], key: str = "end_to_end_s") -> int:
    """Index of the run whose ``key`` is the median: its stage table stands for the series."""
    order = sorted(range(len(runs)), key=lambda i: runs[i][key])
    return order[(len(order) - 1) // 2]


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def summarize(pipeline: list[dict], script: list[dict]) -> dict:
    """Medians of both series and pipeline / script for wall and CPU time.

    ``pairs`` holds the wall ratio of each (pipeline, script) pair run back to back, which
    shows whether the load changed during the series.
    """
    p, s = medians(pipeline), medians(script)
    out: dict = {"runs": len(pipeline), "pipeline": p}
    if script:
        out["script"] = s
        out["ratio"] = {
            "wall": _ratio(p.get("wall_s"), s.get("wall_s")),
            "cpu": _ratio(p.get("cpu_s"), s.get("cpu_s")),
        }
        out["pairs"] = [
            _ratio(a["wall_s"], b["wall_s"]) for a, b in zip(pipeline, script, strict=True)
        ]
    return out
