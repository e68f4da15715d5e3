"""Values as CSV text (ids, timestamps, prices) and the CSV writer of the demo files.

The text is built with pyarrow compute over whole columns, never row by row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Zero-padded text ids (``C000123``); wider if a number needs more digits."""
    digits = pc.utf8_lpad(
        pc.cast(pa.array(numbers, type=pa.int64()), pa.string()), width, padding="0"
    )
    return pc.binary_join_element_wise(prefix, digits, "")


def _id_width(min_width: int, largest: int) -> int:
    return max(min_width, len(str(int(largest))))


def _format_ts(epoch_s: np.ndarray, with_time: bool) -> pa.Array:
    """Epoch seconds -> ``%Y-%m-%d[ %H:%M:%S]`` text.

    Formats each distinct day and each second-of-day once and joins them, rather
    than running strftime on every row.
    """
    if epoch_s.size == 0:
        return pa.array([], type=pa.string())
    epoch_day = epoch_s // 86400
    first = int(epoch_day.min())
    day_epochs = (first + np.arange(int(epoch_day.max()) - first + 1)) * 86400
    day_text = pc.strftime(pa.array(day_epochs, type=pa.timestamp("s")), format="%Y-%m-%d")
    dates = day_text.take(pa.array(epoch_day - first))
    if not with_time:
        return dates
    clock = pc.strftime(pa.array(np.arange(86400), type=pa.timestamp("s")), format="%H:%M:%S")
    return pc.binary_join_element_wise(dates, clock.take(pa.array(epoch_s % 86400)), " ")


def _format_price(cents: np.ndarray) -> pa.Array:
    """``1250`` -> ``"12.50"``: fixed two decimals read as a price everywhere."""
    whole = pc.cast(pa.array(cents // 100), pa.string())
    frac = pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), 2, padding="0")
    return pc.binary_join_element_wise(whole, frac, ".")


def _lookup(values: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.string()).take(pa.array(codes, type=pa.int64()))


def _write_csv(table: pa.Table, path: Path) -> None:
    # No quoting: every value is generated here and never holds a comma, quote
    # or newline (pyarrow raises if one ever does), so files stay diff-friendly.
    opts = pacsv.WriteOptions(batch_size=65536, quoting_style="none", quoting_header="none")
    pacsv.write_csv(table, str(path), write_options=opts)
