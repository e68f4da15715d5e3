"""Where a pipeline run's time goes outside its steps: CPU and wall time per phase.

    .venv/bin/python benchmarks/startup.py WORKDIR [CONFIG]   # WORKDIR is emptied first

One ``run_pipeline`` (as ``custseg run`` does, default config ``examples/cdnow.yaml``)
in this process, with the imports timed one after another before it, then Dagster's
instance and run creation, the time before the first step starts and after the last
ends, the gaps between steps, and every event written to the event log. CPU is the
process's own (``time.process_time``), so the figures hold on a busy machine where wall
time does not; the dbt subprocess's CPU is listed apart.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ROWS: list[tuple[str, float, float]] = []  # (phase, cpu s, wall s)
CALLS: dict[str, list[float]] = {}  # name -> [calls, cpu s, wall s]


def _clock() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


def _since(name: str, start: tuple[float, float]) -> None:
    cpu, wall = _clock()
    ROWS.append((name, cpu - start[0], wall - start[1]))


def _timed(owner, attr: str, name: str) -> None:
    """Add the CPU and wall time of every call of ``owner.attr`` to ``CALLS[name]``."""
    function = getattr(owner, attr)

    @functools.wraps(function)
    def timed(*args, **kwargs):
        start = _clock()
        try:
            return function(*args, **kwargs)
        finally:
            cpu, wall = _clock()
            calls = CALLS.setdefault(name, [0, 0.0, 0.0])
            calls[0] += 1
            calls[1] += cpu - start[0]
            calls[2] += wall - start[1]

    setattr(owner, attr, timed)


class _Steps:
    """The progress stream: when the first step starts and the last ends, CPU per step."""

    def __init__(self) -> None:
        self.first: tuple[float, float] | None = None
        self.last: tuple[float, float] | None = None
        self.cpu = self.wall = 0.0
        self._start: tuple[float, float] | None = None

    def write(self, text: str) -> int:
        for line in text.splitlines():
            now = _clock()
            if line.startswith("▶"):
                self.first = self.first or now
                self._start = now
            elif line.startswith(("✓", "✗")) and self._start is not None:
                self.cpu += now[0] - self._start[0]
                self.wall += now[1] - self._start[1]
                self.last, self._start = now, None
        return len(text)

    def flush(self) -> None:
        pass


def main() -> int:
    workdir = sys.argv[1]
    config = sys.argv[2] if len(sys.argv) > 2 else str(REPO / "examples" / "cdnow.yaml")
    shutil.rmtree(workdir, ignore_errors=True)
    for module in ("dagster", "orchestration.dbt", "orchestration.event_log", "orchestration.definitions"):  # fmt: skip
        start = _clock()
        __import__(module)
        _since(f"import {module}", start)

    import dagster as dg

    from orchestration.cli import run_pipeline
    from orchestration.event_log import PooledSqliteEventLogStorage
    from orchestration.settings import Settings

    _timed(dg.DagsterInstance, "local_temp", "DagsterInstance.local_temp")
    _timed(dg.DagsterInstance, "create_run_for_job", "instance.create_run_for_job")
    _timed(PooledSqliteEventLogStorage, "store_event", "event log: store_event")
    steps = _Steps()
    start = _clock()
    result = run_pipeline(Settings(workdir=workdir, config_path=config), stream=steps)
    end = _clock()
    if not result.success or steps.first is None or steps.last is None:
        raise SystemExit(f"the run failed: {Path(workdir) / 'logs' / 'last_run.log'}")
    ROWS.append(("run: start -> first step", steps.first[0] - start[0], steps.first[1] - start[1]))  # fmt: skip
    span = (steps.last[0] - steps.first[0], steps.last[1] - steps.first[1])
    ROWS.append(("run: the steps", steps.cpu, steps.wall))
    ROWS.append(("run: between steps", span[0] - steps.cpu, span[1] - steps.wall))
    ROWS.append(("run: last step -> end", end[0] - steps.last[0], end[1] - steps.last[1]))
    children = os.times()
    width = 52
    print(f"{'phase':{width}s} {'CPU s':>7s} {'wall s':>7s}")
    for name, cpu, wall in ROWS:
        print(f"{name:{width}s} {cpu:7.2f} {wall:7.2f}")
    for name, (calls, cpu, wall) in CALLS.items():
        label = f"{name} ({calls}x, inside the above)"
        print(f"{label:{width}s} {cpu:7.2f} {wall:7.2f}")
    dbt = children.children_user + children.children_system
    print(f"{'dbt subprocess (children)':{width}s} {dbt:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
