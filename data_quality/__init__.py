"""Great Expectations suites per pipeline stage and one helper to validate them.

No Dagster imports: ``orchestration/assets/checks.py`` wraps these as asset checks.
"""

from data_quality.suites import SUITES, StageSuite
from data_quality.validate import ValidationOutcome, validate

__all__ = ["SUITES", "StageSuite", "ValidationOutcome", "validate"]
