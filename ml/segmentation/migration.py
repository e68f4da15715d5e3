"""Customers moving between segments from one assignment table to the next."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.segmentation.segmenter import ASSIGNMENT_COLUMNS, ID_COLUMN

MIGRATION_COLUMNS = [
    "from_cluster_id",
    "from_label",
    "to_cluster_id",
    "to_label",
    "customers",
    "share_of_from",
]
NEW_LABEL = "(new customer)"
GONE_LABEL = "(no longer present)"


def segment_migration(previous: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """How many customers moved from each segment to each other segment.

    Parameters
    ----------
    previous, current : DataFrame
        Assignment tables with ``customer_id``, ``cluster_id``, ``cluster_label``.

    Returns
    -------
    migration : DataFrame
        One row per (from, to) pair with at least one customer, columns
        :data:`MIGRATION_COLUMNS`. Customers only in ``current`` come from
        ``(new customer)``, customers only in ``previous`` go to ``(no longer
        present)``; those rows have a null cluster id. ``share_of_from`` is
        the share of the from-segment's customers. Staying customers are the
        rows with equal ids. Sorted by from id, then to id (nulls last).
    """
    for name, table in (("previous", previous), ("current", current)):
        missing = [c for c in ASSIGNMENT_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"{name} assignments lack column(s) {missing!r}")
        if table[ID_COLUMN].duplicated().any():
            raise ValueError(f"{name} assignments have duplicate customer ids")
    prev = previous[ASSIGNMENT_COLUMNS].rename(
        columns={"cluster_id": "from_cluster_id", "cluster_label": "from_label"}
    )
    curr = current[ASSIGNMENT_COLUMNS].rename(
        columns={"cluster_id": "to_cluster_id", "cluster_label": "to_label"}
    )
    prev[ID_COLUMN] = prev[ID_COLUMN].astype(str)
    curr[ID_COLUMN] = curr[ID_COLUMN].astype(str)
    both = prev.merge(curr, on=ID_COLUMN, how="outer")
    both["from_cluster_id"] = both["from_cluster_id"].astype("Int64")
    both["to_cluster_id"] = both["to_cluster_id"].astype("Int64")
    both["from_label"] = (
        both["from_label"].astype(object).where(both["from_label"].notna(), NEW_LABEL)
    )
    both["to_label"] = both["to_label"].astype(object).where(both["to_label"].notna(), GONE_LABEL)
    keys = ["from_cluster_id", "from_label", "to_cluster_id", "to_label"]
    out = both.groupby(keys, dropna=False, sort=False).size().rename("customers").reset_index()
    out["customers"] = out["customers"].astype(np.int64)
    from_total = out.groupby(["from_cluster_id", "from_label"], dropna=False)[
        "customers"
    ].transform("sum")
    out["share_of_from"] = out["customers"] / from_total
    out = out.sort_values(["from_cluster_id", "to_cluster_id"], na_position="last", kind="stable")
    return out[MIGRATION_COLUMNS].reset_index(drop=True)
