"""The sample-size rule: all rows up to 5,000, then a quarter of them, up to a cap."""

from __future__ import annotations

import numpy as np
import pytest

import ml.segmentation.judging as judging
import ml.segmentation.selection as selection
from ml.clustering import SampledDBSCAN, SampledHDBSCAN, SampledKMeans, proportional_size


@pytest.mark.parametrize(
    ("n_rows", "cap", "expected"),
    [
        (1_000, 10_000, 1_000),  # every row up to 5,000
        (5_000, 10_000, 5_000),
        (12_000, 10_000, 5_000),  # a quarter is less than 5,000: 5,000
        (23_570, 10_000, 5_893),  # a quarter, rounded up
        (100_000, 10_000, 10_000),  # the cap
        (3_000, 2_000, 2_000),  # a cap below 5,000 still caps
    ],
)
def test_proportional_size(n_rows, cap, expected):
    assert proportional_size(n_rows, cap) == expected


def _blobs(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 6.0]])
    return centres[rng.integers(0, 3, n)] + rng.normal(0, 0.5, (n, 2))


@pytest.mark.parametrize("cls", [SampledDBSCAN, SampledHDBSCAN])
def test_density_methods_sample_by_the_rule(cls):
    X = _blobs(24_000)
    fitted = cls(sample_size=10_000, random_state=0).fit(X)
    assert len(fitted.sample_indices_) == proportional_size(24_000, 10_000) == 6_000
    small = cls(sample_size=300, random_state=0).fit(X[:1_000])
    assert len(small.sample_indices_) == 300


def test_kmeans_sample_stays_fixed():
    fitted = SampledKMeans(n_clusters=3, sample_size=7_000, random_state=0).fit(_blobs(24_000))
    assert len(fitted.sample_indices_) == 7_000


def test_diagnostics_sample_follows_the_rule(monkeypatch):
    """eval_size caps the silhouette sample of each feature set, by the rule."""
    from tests.ml.test_segmentation import judge_frame_for, make_customers

    sizes = []
    real = judging.stratified_sample

    def spy(X, size, random_state=None):
        sizes.append((len(X), size))
        return real(X, size, random_state)

    monkeypatch.setattr(judging, "stratified_sample", spy)
    df, truth = make_customers()
    frame = judge_frame_for(df, truth)
    selection.fit_candidates(
        df, judge_frame=frame, algorithms=["kmeans"], eval_size=400, n_resamples=0
    )
    assert sizes and all(size == proportional_size(n, 400) for n, size in sizes)
