"""Synthetic demo data: the raw files a first run ingests, and a ground truth to score it by.

:func:`generate` writes the raw CSVs that the ingest (:mod:`orchestration.ingest.load`)
reads, plus a ``ground_truth/`` folder that the pipeline never reads and that exists
so that tests and benchmarks can score clustering (planted personas) and churn
prediction (honest future label).

* :mod:`~orchestration.demo.personas` - the planted personas and their knobs;
* :mod:`~orchestration.demo.generation` - the simulated order process and the tables;
* :mod:`~orchestration.demo.formatting` - values as CSV text, the CSV writer;
* :mod:`~orchestration.demo.writing` - :func:`generate`, which writes the files.

Plain Python only (numpy + pyarrow, no Dagster), so the CLI, tests and benchmarks can
make data without the orchestration.
"""

from orchestration.demo.personas import PERSONA_SHARES, PERSONAS
from orchestration.demo.writing import GenerateResult, generate

__all__ = ["PERSONAS", "PERSONA_SHARES", "GenerateResult", "generate"]
