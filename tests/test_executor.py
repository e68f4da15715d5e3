"""The executor that lets the model fits overlap (orchestration/executor.py).

Small Dagster jobs run on it through ``execute_in_process`` with a real instance; the
assets meet at barriers, so a test fails (times out) when steps that should overlap run
one after another, and records who ran beside whom when they must not.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
import warnings

import dagster as dg
import duckdb
from threadpoolctl import threadpool_info

from ml import threads
from orchestration.executor import OVERLAP, execute_in_process, pick
from orchestration.resources import WarehouseResource


def _run(*assets, checks=(), run_config=None, dagsters=False, then=None):
    """Run the assets as one job on our executor (``dagsters``: on Dagster's own serial
    in-process executor, for comparison); the result and its events. ``then()`` runs
    after the run, while its instance is still open."""
    defs = dg.Definitions(
        assets=list(assets),
        asset_checks=list(checks),
        jobs=[dg.define_asset_job("job")],
    )
    job = defs.resolve_job_def("job")
    with dg.DagsterInstance.ephemeral() as instance:
        if dagsters:
            result = job.execute_in_process(instance=instance, raise_on_error=False)
        else:
            result = execute_in_process(
                job, run_config=run_config or {}, instance=instance, run_id=str(uuid.uuid4())
            )
        events = list(result.all_events)
        if then is not None:
            then()
    return result, events


def _outcome(events) -> dict[str, str]:
    """Each step's last step event (success, failure, skip, ...)."""
    return {e.step_key: e.event_type_value for e in events if e.is_step_event and e.step_key}


class _Log:
    """Which steps were running when each step started."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running: set[str] = set()
        self.seen: dict[str, set[str]] = {}

    def step(self, name: str, seconds: float = 0.0, barrier: threading.Barrier | None = None):
        with self.lock:
            self.seen[name] = set(self.running)
            self.running.add(name)
        try:
            if barrier is not None:
                barrier.wait(timeout=20)  # BrokenBarrierError when the other never comes
            time.sleep(seconds)
        finally:
            with self.lock:
                self.running.discard(name)


def test_steps_tagged_to_overlap_run_at_once_and_the_others_alone():
    log, meet = _Log(), threading.Barrier(2)

    @dg.asset
    def features():
        log.step("features", 0.2)

    @dg.asset(deps=[features], op_tags=OVERLAP)
    def segments():
        log.step("segments", 0.1, meet)

    @dg.asset(deps=[features], op_tags=OVERLAP)
    def scores():
        log.step("scores", 0.1, meet)

    @dg.asset(deps=[features])
    def cutoffs():  # not tagged: ready beside the two, it runs with nothing else
        log.step("cutoffs", 0.2)

    @dg.asset(deps=[segments, scores, cutoffs])
    def marts():
        log.step("marts")

    result, _ = _run(features, segments, scores, cutoffs, marts)
    assert result.success
    assert log.seen["cutoffs"] == set() and log.seen["marts"] == set()
    assert {frozenset(log.seen["segments"]), frozenset(log.seen["scores"])} == {
        frozenset(),
        frozenset({"segments"}) if log.seen["scores"] else frozenset({"scores"}),
    }
    assert log.running == set()


def test_max_concurrent_1_runs_every_step_on_the_run_thread_one_after_another():
    threads_seen = {}

    def body(name):
        threads_seen[name] = threading.current_thread() is threading.main_thread()

    @dg.asset(op_tags=OVERLAP)
    def a():
        body("a")

    @dg.asset(op_tags=OVERLAP)
    def b():
        body("b")

    config = {"execution": {"config": {"max_concurrent": 1}}}
    result, _ = _run(a, b, run_config=config)
    assert result.success
    assert threads_seen == {"a": True, "b": True}


def _failing_pair(meet: threading.Barrier) -> list:
    @dg.asset(op_tags=OVERLAP)
    def broken():
        meet.wait(timeout=20)
        raise RuntimeError("the fit diverged")

    @dg.asset(op_tags=OVERLAP)
    def fine():
        meet.wait(timeout=20)
        time.sleep(0.2)
        return 1

    @dg.asset(deps=[broken])
    def after_broken():
        return 2

    @dg.asset(deps=[fine])
    def after_fine():
        return 3

    return [broken, fine, after_broken, after_fine]


def test_a_failed_overlapping_step_stops_its_downstream_and_the_other_finishes():
    result, events = _run(*_failing_pair(threading.Barrier(2)))
    assert not result.success
    status = _outcome(events)
    assert status["broken"] == "STEP_FAILURE"
    assert status["fine"] == "STEP_SUCCESS"
    assert status["after_fine"] == "STEP_SUCCESS"
    assert "after_broken" not in status  # never started
    failure = next(e for e in events if e.is_step_failure)
    assert "the fit diverged" in failure.step_failure_data.error.to_string()
    # Dagster's own serial executor ends the same way (its steps meet nobody)
    _, reference = _run(*_failing_pair(threading.Barrier(1)), dagsters=True)
    assert _outcome(reference) == status


def test_a_failed_blocking_check_skips_downstream_as_the_in_process_executor_does():
    @dg.asset(op_tags=OVERLAP)
    def scored():
        return 1

    @dg.asset_check(asset=scored, blocking=True)
    def scores_are_sane():
        return dg.AssetCheckResult(passed=False)

    @dg.asset(deps=[scored])
    def published():
        raise AssertionError("must not run after a failed blocking check")

    result, events = _run(scored, published, checks=[scores_are_sane])
    assert not result.success
    status = _outcome(events)
    assert "published" not in status or status["published"] != "STEP_SUCCESS"
    _, reference = _run(scored, published, checks=[scores_are_sane], dagsters=True)
    assert _outcome(reference) == status


def test_an_overlapping_step_is_retried_by_its_retry_policy():
    calls = []

    @dg.asset(op_tags=OVERLAP, retry_policy=dg.RetryPolicy(max_retries=1, delay=0.1))
    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("the source hung up")

    @dg.asset(op_tags=OVERLAP)
    def steady():
        return 1

    config = {"execution": {"config": {"retries": {"enabled": {}}}}}
    result, events = _run(flaky, steady, run_config=config)
    assert result.success
    assert len(calls) == 2
    assert any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in events)


def test_warning_filters_and_native_thread_limits_are_put_back_after_overlapping_steps():
    # Two overlapping fits that each change a process-wide setting and restore it in an
    # order that leaves the other's value behind, as interleaved `with` blocks do.
    meet = threading.Barrier(2)
    before_filters = list(warnings.filters)
    before_threads = [lib["num_threads"] for lib in threadpool_info()]

    @dg.asset(op_tags=OVERLAP)
    def left():
        meet.wait(timeout=20)
        warnings.simplefilter("error")
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)  # never restored
        meet.wait(timeout=20)

    @dg.asset(op_tags=OVERLAP)
    def right():
        meet.wait(timeout=20)
        warnings.simplefilter("ignore")
        meet.wait(timeout=20)

    result, _ = _run(left, right)
    assert result.success
    assert warnings.filters == before_filters
    assert [lib["num_threads"] for lib in threadpool_info()] == before_threads


def test_fits_take_their_share_of_the_cores_while_steps_overlap():
    # joblib's count of this machine's cores, which the fits use alone
    alone = threads.cores()
    shares = {}
    meet = threading.Barrier(2)

    def most_native_threads() -> int:  # OpenMP's, whose per-thread pools must not pile up
        return max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "openmp")

    @dg.asset(op_tags=OVERLAP)
    def one():
        meet.wait(timeout=20)
        shares["one"] = threads.cores()
        with threads.native_threads(threads.SMALL_ROWS):  # a large fit: its share
            shares["one: large fit"] = most_native_threads()
        with threads.threads_for_call(threads.SMALL_ROWS):  # a long call: its share
            shares["one: long call"] = most_native_threads()
        meet.wait(timeout=20)

    @dg.asset(op_tags=OVERLAP)
    def two():
        meet.wait(timeout=20)
        meet.wait(timeout=20)

    @dg.asset(deps=[one, two])
    def after():
        shares["after"] = threads.cores()
        with threads.native_threads(threads.SMALL_ROWS):  # alone: the process's default
            shares["after: large fit"] = most_native_threads()
            with threads.threads_for_call(threads.SMALL_ROWS - 1):  # a short call: one
                shares["after: short call"] = most_native_threads()
        with threads.threads_for_call(threads.SMALL_ROWS):  # a long call: every core
            shares["after: long call"] = most_native_threads()

    default = most_native_threads()
    result, _ = _run(one, two, after)
    assert result.success
    assert shares == {
        "one": max(1, alone // 2),
        "one: large fit": max(1, alone // 2),
        "one: long call": max(1, alone // 2),
        "after": alone,
        "after: large fit": default,
        "after: short call": 1,
        "after: long call": alone,
    }


def test_pick_starts_a_step_that_does_not_opt_in_alone_and_first():
    class Step:
        def __init__(self, key, overlap):
            self.key = key
            self.tags = OVERLAP if overlap else {}

        def __repr__(self):
            return self.key

    seg, val, dbt, chk = (
        Step("seg", True),
        Step("val", True),
        Step("dbt", False),
        Step("chk", False),
    )
    ready = [seg, dbt, val]
    assert pick(ready, [], 2) == [dbt] and ready == [seg, val]
    assert pick(ready, [dbt], 2) == [] and ready == [seg, val]
    assert pick(ready, [], 2) == [seg, val] and ready == []
    ready = [chk, val]
    assert pick(ready, [seg], 2) == [val] and ready == [chk]
    assert pick(ready, [seg, val], 3) == []
    assert pick([seg, val], [], 1) == [seg]


def test_the_warehouse_lets_one_thread_at_a_time_hold_a_connection(tmp_path):
    # A read-only and a read-write connection to one file cannot coexist in a process:
    # without the lock the writer below fails with DuckDB's "different configuration".
    warehouse = WarehouseResource(workdir=str(tmp_path))
    with warehouse.connect() as con:
        con.execute("create table t as select 1 as x")
    reading, errors = threading.Event(), []

    def reader():
        with warehouse.connect(read_only=True) as con:
            reading.set()
            time.sleep(0.3)
            con.execute("select * from t").fetchall()

    def writer():
        reading.wait(timeout=10)
        try:
            with warehouse.connect() as con:
                con.execute("insert into t values (2)")
        except duckdb.Error as exc:  # pragma: no cover - the failure this test guards
            errors.append(exc)

    workers = [threading.Thread(target=reader), threading.Thread(target=writer)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=20)
    assert errors == []
    with warehouse.connect(read_only=True) as con:
        assert con.execute("select count(*) from t").fetchone() == (2,)


def test_an_interrupt_ends_the_run_at_once_though_overlapping_fits_still_run():
    # Ctrl-C (or a termination from the UI) reaches the run's thread as SIGINT; it must not
    # wait for the fits on the worker threads, which cannot be interrupted.
    from orchestration.failures import run_failure_lines

    meet, release = threading.Barrier(2), threading.Event()

    @dg.asset(op_tags=OVERLAP)
    def long_fit():
        meet.wait(timeout=20)
        release.wait(timeout=60)

    @dg.asset(op_tags=OVERLAP)
    def fit_where_ctrl_c_is_pressed():
        meet.wait(timeout=20)
        os.kill(os.getpid(), signal.SIGINT)
        release.wait(timeout=60)

    took = []
    started = time.monotonic()

    def let_the_abandoned_fits_end():  # before the instance they log to closes
        took.append(time.monotonic() - started)
        release.set()
        for thread in threading.enumerate():
            if thread.name.startswith("step-"):
                thread.join(timeout=20)

    try:
        result, events = _run(
            long_fit, fit_where_ctrl_c_is_pressed, then=let_the_abandoned_fits_end
        )
    finally:
        release.set()
    assert took[0] < 15  # not the fits' 60 s
    assert not result.success
    assert any(e.is_run_failure for e in events)
    assert run_failure_lines(result) == [
        "interrupted (Ctrl-C, or the run was terminated) before it finished"
    ]
