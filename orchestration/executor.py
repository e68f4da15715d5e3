"""Dagster's in-process executor, with the steps marked safe to overlap run two at a time.

The run's steps share one process (DuckDB takes one writer at a time, and every step
needs the imports paid once), and most of them must run alone: dbt, the checks, the
ingest and the export write the warehouse or read what the step before wrote. Two
Python model fits that are ready together, the segmentation refit and the CLV and churn
refit (and the two scoring steps), only read the features and write their own tables;
on two cores they can share the time. A step opts in with the op tag
:data:`OVERLAP_TAG` (:data:`OVERLAP`); any other step runs with nothing beside it, on
the run's own thread as in Dagster's in-process executor. While two steps run, each
fit takes its share of the cores (``ml.threads.share_cores``): OpenMP teams started
from two threads at once slow each other down many times over.

What overlapping steps share, and how it stays consistent:

* the warehouse: :meth:`WarehouseResource.connect <orchestration.resources.WarehouseResource.connect>`
  lets one thread at a time hold a DuckDB connection (a read-only and a read-write
  connection to one file cannot coexist in a process);
* process-wide settings that fits change and restore (native thread limits,
  ``warnings`` filters): an overlapping step may see the other's while both run, so
  they are put back as they were before the group once its last step ends;
* Dagster's event log (``orchestration/event_log.py`` takes one connection at a time)
  and the progress lines (a logging handler, which locks).

The loop is Dagster's own in-process loop (``inner_plan_execution_iterator``) with the
step bodies on worker threads and their events handed to this thread, which yields them
in arrival order and tells Dagster's ``ActiveExecution`` as the in-process loop does:
retries, skips after a failed blocking check and hooks work the same way. An adapter
over Dagster internals, pinned in ``CHECKED_WITH`` (tests/test_private_internals.py).
"""

from __future__ import annotations

import os
import queue
import threading
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from functools import partial

import dagster as dg
from dagster._core.errors import raise_execution_interrupts
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.api import ExecuteRunWithPlanIterable
from dagster._core.execution.compute_logs import create_compute_log_file_key
from dagster._core.execution.context_creation_job import PlanExecutionContextManager
from dagster._core.execution.plan.execute_plan import (
    _trigger_hook,
    dagster_event_sequence_for_step,
)
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.executor.base import Executor
from threadpoolctl import threadpool_limits

from ml.threads import share_cores

# The Dagster release this adapter was read against (tests/test_private_internals.py).
CHECKED_WITH = {"dagster": "==1.13.27"}

OVERLAP_TAG = "custseg/overlap"
#: ``op_tags`` of a step that may run beside another such step.
OVERLAP = {OVERLAP_TAG: "true"}
#: Steps at a time, at most (a step that does not opt in always runs alone).
MAX_CONCURRENT = 2

_DONE = object()


def may_overlap(step) -> bool:
    return step.tags.get(OVERLAP_TAG) == "true"


def pick(ready: list, running: list, limit: int) -> list:
    """The steps of ``ready`` to start now, given those ``running``: a step that does not
    opt in only alone (and first, so that what it unblocks can overlap), the others
    beside each other up to ``limit``. Removes them from ``ready``."""
    chosen = []
    while ready and len(running) + len(chosen) < limit:
        busy = running + chosen
        if not busy:
            step = next((s for s in ready if not may_overlap(s)), ready[0])
        elif all(may_overlap(s) for s in busy):
            step = next((s for s in ready if may_overlap(s)), None)
        else:
            step = None
        if step is None:
            break
        ready.remove(step)
        chosen.append(step)
    return chosen


class _SharedSettings:
    """Native thread limits and warning filters as they were when a group of overlapping
    steps began, put back when it ends."""

    def __init__(self) -> None:
        self._limits = threadpool_limits(limits=None)  # records the limits, changes none
        self._filters = list(warnings.filters)
        self._showwarning = warnings.showwarning
        self._showwarnmsg = warnings._showwarnmsg_impl  # noqa: SLF001 - catch_warnings' too

    def restore(self) -> None:
        self._limits.restore_original_limits()
        warnings.filters[:] = self._filters
        warnings._filters_mutated()  # noqa: SLF001 - what catch_warnings calls on exit
        warnings.showwarning = self._showwarning
        warnings._showwarnmsg_impl = self._showwarnmsg  # noqa: SLF001


def _run_step(step_context, out: queue.Queue) -> None:
    key = step_context.step.key
    try:
        for event in dagster_event_sequence_for_step(step_context):
            out.put((key, event))
    except BaseException as exc:  # noqa: BLE001 - re-raised by the loop's thread
        out.put((key, exc))
    finally:
        out.put((key, _DONE))


def threaded_plan_iterator(
    job_context,
    execution_plan,
    instance_concurrency_context=None,
    *,
    limit: int,
) -> Iterator[DagsterEvent]:
    """``inner_plan_execution_iterator`` with up to ``limit`` overlapping steps at once."""
    compute_log_manager = job_context.instance.compute_log_manager
    step_keys = [step.key for step in execution_plan.get_steps_to_execute_in_topo_order()]
    with ExitStack() as stack:
        icc = stack.enter_context(
            InstanceConcurrencyContext(job_context.instance, job_context.dagster_run)
        )
        active = stack.enter_context(
            execution_plan.start(
                retry_mode=job_context.retry_mode,
                instance_concurrency_context=icc,
                step_dependency_config=job_context.step_dependency_config,
            )
        )
        log_key = compute_log_manager.build_log_key_for_run(
            job_context.run_id, create_compute_log_file_key()
        )
        log_context = stack.enter_context(compute_log_manager.capture_logs(log_key))
        stack.callback(share_cores, 1)  # however the loop ends
        yield DagsterEvent.capture_logs(job_context, step_keys, log_key, log_context)

        def finish(key: str, step_context, step_events: list) -> Iterator[DagsterEvent]:
            active.verify_complete(job_context, key)
            for event in active.plan_events_iterator(job_context):  # skips after a failure
                step_events.append(event)
                yield event
            yield from _trigger_hook(step_context, step_events)

        events: queue.Queue = queue.Queue()
        ready: list = []
        running: dict[str, tuple] = {}  # key -> (step context, its events so far)
        shared: _SharedSettings | None = None
        while not active.is_complete or running:
            ready += active.get_steps_to_execute()
            yield from active.concurrency_event_iterator(job_context)
            started = pick(ready, [c.step for c, _ in running.values()], limit)
            for step in started:
                step_context = job_context.for_step(step, active.get_known_state())
                step_events: list = []
                if limit == 1 or not may_overlap(step):  # alone: on this thread, as Dagster's
                    for event in dagster_event_sequence_for_step(step_context):
                        step_events.append(event)
                        yield event
                        active.handle_event(event)
                    yield from finish(step.key, step_context, step_events)
                    continue
                if not running:
                    shared = _SharedSettings()
                running[step.key] = (step_context, step_events)
                share_cores(len(running))
                # A daemon: an interrupted run ends without waiting for a fit to finish
                # (the process then exits, as after a kill; DuckDB recovers its file).
                threading.Thread(
                    target=_run_step,
                    args=(step_context, events),
                    name=f"step-{step.key}",
                    daemon=True,
                ).start()
            if not running:
                if not started:
                    active.sleep_til_ready()
                continue
            with raise_execution_interrupts():  # Ctrl-C or a UI termination: now, not
                key, item = events.get()  # when the running fits have ended
            step_context, step_events = running[key]
            if isinstance(item, BaseException):
                raise item
            if item is not _DONE:
                step_events.append(item)
                yield item
                active.handle_event(item)
                continue
            del running[key]
            share_cores(len(running))
            if not running and shared is not None:
                shared.restore()
                shared = None
            yield from finish(key, step_context, step_events)


class OverlappingExecutor(Executor):
    def __init__(self, retries: RetryMode, max_concurrent: int = MAX_CONCURRENT):
        self._retries = retries
        self._max_concurrent = max_concurrent

    @property
    def retries(self) -> RetryMode:
        return self._retries

    def execute(self, plan_context, execution_plan) -> Iterator[DagsterEvent]:
        keys = execution_plan.step_keys_to_execute
        yield DagsterEvent.engine_event(
            plan_context,
            f"Executing steps in process (pid: {os.getpid()}), up to "
            f"{self._max_concurrent} steps tagged {OVERLAP_TAG} at a time",
            event_specific_data=EngineEventData.in_process(os.getpid(), keys),
        )
        yield from iter(
            ExecuteRunWithPlanIterable(
                execution_plan=plan_context.execution_plan,
                iterator=partial(threaded_plan_iterator, limit=self._max_concurrent),
                execution_context_manager=PlanExecutionContextManager(
                    job=plan_context.job,
                    retry_mode=plan_context.retry_mode,
                    execution_plan=plan_context.execution_plan,
                    run_config=plan_context.run_config,
                    dagster_run=plan_context.dagster_run,
                    instance=plan_context.instance,
                    raise_on_error=plan_context.raise_on_error,
                    output_capture=plan_context.output_capture,
                ),
            )
        )
        yield DagsterEvent.engine_event(
            plan_context,
            f"Finished steps in process (pid: {os.getpid()})",
            event_specific_data=EngineEventData.in_process(os.getpid(), keys),
        )


@dg.executor(
    name="overlapping_in_process",
    config_schema={
        "retries": get_retries_config(),
        "max_concurrent": dg.Field(
            int,
            default_value=MAX_CONCURRENT,
            description="Steps tagged custseg/overlap run this many at a time (1: one "
            "after another, as Dagster's in_process executor).",
        ),
    },
)
def overlapping_executor(init_context) -> OverlappingExecutor:
    """In-process execution; steps tagged ``custseg/overlap`` may run two at a time."""
    config = init_context.executor_config
    return OverlappingExecutor(
        retries=RetryMode.from_config(config["retries"]), max_concurrent=config["max_concurrent"]
    )


def execute_in_process(job: dg.JobDefinition, *, run_config: dict, instance, run_id: str):
    """``job.execute_in_process(...)`` (no selection, ``raise_on_error=False``) on
    :func:`overlapping_executor`: Dagster's own ``execute_in_process`` always swaps the
    job's executor for its serial in-process one."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.execute_in_process import core_execute_in_process, merge_run_tags

    ephemeral = job.as_ephemeral_job(resource_defs={}, input_values={})
    return core_execute_in_process(
        job=InMemoryJob(job_def=ephemeral.with_executor_def(overlapping_executor)),
        run_config=run_config,
        instance=instance,
        output_capturing_enabled=True,
        raise_on_error=False,
        run_tags=merge_run_tags(
            job_def=job,
            partition_key=None,
            tags=None,
            asset_selection=None,
            instance=instance,
            run_config=run_config,
        ),
        run_id=run_id,
        asset_selection=frozenset(),
    )
