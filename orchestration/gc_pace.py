"""How often Python's cyclic garbage collector runs during a pipeline run, and at exit.

A run holds hundreds of thousands of long-lived objects (Dagster's, dbt's and
scikit-learn's modules, the dbt manifest, the definitions) and creates many more. With
Python's default threshold (a young collection every 700 net allocations, a full one
every 100 young ones) the full collections, each walking every object, come seconds
apart. A threshold of ``GEN0_THRESHOLD`` for the run (set by ``custseg run`` and by the
warehouse resource, which every run sets up, also from the UI) makes them rare; cyclic
garbage waits a few thousand allocations longer, which is kilobytes. At exit of the console
command the interpreter's last collection walks everything once more only to free memory
the process is about to return: freezing the heap first skips it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

GEN0_THRESHOLD = 10_000


def set_run_pace() -> tuple[int, int, int]:
    """Set the collector to ``GEN0_THRESHOLD`` (a higher setting is kept); returns the
    thresholds to restore with ``gc.set_threshold(*previous)``."""
    before = gc.get_threshold()
    gc.set_threshold(max(GEN0_THRESHOLD, before[0]), *before[1:])
    return before


@contextmanager
def run_pace() -> Iterator[None]:
    """The collector at ``GEN0_THRESHOLD`` inside, as it was afterwards."""
    before = set_run_pace()
    try:
        yield
    finally:
        gc.set_threshold(*before)


def skip_final_collection() -> None:
    """Move every object out of the collector's reach, for a process about to exit."""
    gc.freeze()
