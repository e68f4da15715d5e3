"""Per-stage wall time, CPU time and peak memory of one pipeline run.

``run_pipeline`` reports stage starts and ends as progress lines on a stream and
the wall time of each finished step in a ``timings`` dict. :class:`StageMeter`
is that stream: on each start/end line it reads the CPU time of the process
(plus reaped children, e.g. the dbt subprocess), and a sampling thread keeps the
peak resident memory of the process tree (every 50 ms) per running step. Most steps
run alone; the model fits that overlap (orchestration/executor.py) share the process,
so the CPU time and peak of each include the other's while both run, and the time
outside any step (Dagster's start-up and between steps) is the run's time minus the
union of the step spans.

Steps are then grouped into the issue's stage names (:data:`GROUPS`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

import psutil

# step key -> stage; checks (keys containing "_gx_") are "validation".
GROUPS = {
    "ingest_sources": "ingest",
    "dbt_features": "dbt",
    "segmentation_model": "clustering",
    "customer_clusters": "clustering",
    "churn_training_features": "CLV/churn",
    "value_models": "CLV/churn",
    "customer_scores": "CLV/churn",
    "dbt_marts": "marts",
    "powerbi_export": "export",
    "customer_report": "report",
}
STAGE_ORDER = [
    "ingest",
    "dbt",
    "validation",
    "clustering",
    "CLV/churn",
    "marts",
    "export",
    "report",
    "other",
]
OVERHEAD = "Dagster start-up and between steps"


def stage_of(step: str) -> str:
    return "validation" if "_gx_" in step else GROUPS.get(step, "other")


def cpu_seconds() -> float:
    t = os.times()  # children_* = reaped children (the dbt subprocess once it ended)
    return t.user + t.system + t.children_user + t.children_system


class TreeRss:
    """Resident bytes of this process and its children, cheap enough to call every 50 ms
    inside the measured run.

    Listing the children scans every process in /proc (about 1.3 ms, against 15 us to read
    one process's memory), so the list is made again every ``relist`` calls only: a child
    that starts and ends between two listings (0.5 s at the meter's pace) is not counted.
    The runs' steps start no process (dbt runs in process); a subset of a dbt step does.
    """

    def __init__(self, relist: int = 10) -> None:
        self.me = psutil.Process()
        self.relist = relist
        self.children: list[psutil.Process] = []
        self.calls = 0

    def __call__(self) -> int:
        if self.calls % self.relist == 0:
            with contextlib.suppress(psutil.Error):
                self.children = self.me.children(recursive=True)
        self.calls += 1
        total = 0
        for p in [self.me, *self.children]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total


class StageMeter:
    """A write-only text stream for ``run_pipeline(stream=...)`` that measures each step.

    Use as a context manager around the run; afterwards ``cpu_s[step]`` and
    ``peak_rss[step]`` hold the CPU seconds and peak bytes of each finished step,
    ``peak`` the peak of the whole run, ``lines`` the progress lines.
    """

    def __init__(self, timings: dict[str, float], interval: float = 0.05, clock=time.perf_counter):
        self.timings = timings
        self.interval = interval
        self.clock = clock
        self.cpu_s: dict[str, float] = {}
        self.peak_rss: dict[str, int] = {}
        self.spans: list[tuple[float, float]] = []
        self.peak = 0
        self.lines: list[str] = []
        self._open: dict[str, list] = {}  # step name -> [start, CPU at start, peak bytes]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._rss = TreeRss()

    # -- stream protocol ------------------------------------------------- #
    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self._event(line.strip())
        return len(text)

    def flush(self) -> None:
        pass

    def _event(self, line: str) -> None:
        self.lines.append(line)
        now = self.clock()
        with self._lock:
            if line.startswith("▶"):
                name = line[2:].removesuffix(" ...")
                self._open[name] = [now, cpu_seconds(), self._rss()]
            elif line.startswith(("✓", "✗")):
                done = line.startswith("✓")  # "✓ name (1.2 s)" or "✗ name failed after 1.2 s"
                name = line[2:].rsplit(" (" if done else " failed after ", 1)[0]
                opened = self._open.pop(name, None)
                if opened is None:
                    return
                # the progress logger stores the step's time just before printing this line
                step = next(reversed(self.timings)) if done else line
                self.cpu_s[step] = cpu_seconds() - opened[1]
                self.peak_rss[step] = opened[2]
                self.spans.append((opened[0], now))

    def busy_s(self) -> float:
        """Seconds during which at least one step ran (the union of the step spans)."""
        total, end = 0.0, float("-inf")
        for start, stop in sorted(self.spans):
            if stop > end:
                total += stop - max(start, end)
                end = stop
        return total

    # -- sampling -------------------------------------------------------- #
    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = self._rss()
            self.peak = max(self.peak, rss)
            with self._lock:
                for opened in self._open.values():
                    opened[2] = max(opened[2], rss)
            time.sleep(self.interval)

    def __enter__(self) -> StageMeter:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def stage_table(
    timings: dict, cpu_s: dict, peak_rss: dict, total_s: float, busy_s: float | None = None
) -> list[dict]:
    """Rows (stage, wall_s, cpu_s, peak_rss_mb, steps) in STAGE_ORDER, plus the overhead row:
    ``total_s`` minus ``busy_s``, the time some step ran (default: the sum of the steps)."""
    rows = []
    for stage in STAGE_ORDER:
        steps = [s for s in timings if stage_of(s) == stage]
        if not steps:
            continue
        rows.append(
            {
                "stage": stage,
                "wall_s": round(sum(timings[s] for s in steps), 2),
                "cpu_s": round(sum(cpu_s.get(s, 0.0) for s in steps), 2),
                "peak_rss_mb": round(max(peak_rss.get(s, 0) for s in steps) / 2**20),
                "steps": steps,
            }
        )
    rows.append(
        {
            "stage": OVERHEAD,
            "wall_s": round(total_s - (sum(timings.values()) if busy_s is None else busy_s), 2),
            "cpu_s": None,
            "peak_rss_mb": None,
            "steps": [],
        }
    )
    return rows
