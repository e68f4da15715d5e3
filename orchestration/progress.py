"""Short progress lines for ``custseg run``: one line per stage start, finish or failure."""

from __future__ import annotations

import logging
import sys
import time

import dagster as dg

_STAGE_NAMES = {
    "ingest_sources": "ingest",
    "dbt_features": "dbt features (staging -> customer_features, with tests)",
    "segmentation_model": "segmentation refit (fit and compare the candidates)",
    "customer_clusters": "segment assignment (saved model)",
    "churn_training_features": "dbt features as of the churn cut-offs",
    "value_models": "CLV and churn model refit",
    "customer_scores": "CLV and churn scores (saved models)",
    "dbt_marts": "dbt marts (with tests)",
    "powerbi_export": "Power BI export",
    "customer_report": "HTML report",
}


class _ProgressHandler(logging.Handler):
    def __init__(self, stream, timings: dict[str, float] | None) -> None:
        super().__init__()
        self.stream = stream
        self.started: dict[str, float] = {}
        self.timings = timings if timings is not None else {}

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event") or getattr(record, "dagster_event", None)
        if event is None:
            return
        step = event.step_key or ""
        name = _STAGE_NAMES.get(step) or (
            f"checks: {step.rsplit('_gx_', 1)[1]}" if "_gx_" in step else step
        )
        kind = event.event_type_value
        if kind == "STEP_START":
            self.started[step] = time.perf_counter()
            self._print(f"▶ {name} ...")
        elif kind == "STEP_SUCCESS":
            took = time.perf_counter() - self.started.get(step, time.perf_counter())
            self.timings[step] = took
            self._print(f"✓ {name} ({took:.1f} s)")
        elif kind == "STEP_FAILURE":
            took = time.perf_counter() - self.started.get(step, time.perf_counter())
            self._print(f"✗ {name} failed after {took:.1f} s")
        elif kind == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            evaluation = getattr(data, "asset_check_evaluation", data)
            if evaluation is not None and not getattr(evaluation, "passed", True):
                key = evaluation.asset_key.to_user_string()
                self._print(f"  ! check failed: {key} / {evaluation.check_name}")

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


def progress_logger(stream=None, timings: dict[str, float] | None = None) -> dg.LoggerDefinition:
    """A logger printing stage lines to ``stream``; step durations (s) go into ``timings``."""
    stream = stream or sys.stdout

    @dg.logger(description="One line per pipeline stage, for the command line.")
    def _progress(_init_context) -> logging.Logger:
        lg = logging.Logger("custseg.progress", level=logging.DEBUG)
        lg.addHandler(_ProgressHandler(stream, timings))
        return lg

    return _progress
