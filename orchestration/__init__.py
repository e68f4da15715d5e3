"""Dagster orchestration of the warehouse (see orchestration/definitions.py)."""

import os

# Before anything loads scikit-learn's OpenMP runtime: waiting threads sleep instead of
# spinning (ml/__init__.py explains and measures it).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
