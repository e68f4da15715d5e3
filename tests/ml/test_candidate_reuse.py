"""Work shared between segmentation candidates: one Ward tree per sample, paired
bootstrap resamples that stop once the verdict is clear (synthetic data, seconds)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster.hierarchy import cut_tree, ward
from sklearn.metrics import adjusted_rand_score

import ml.clustering.hierarchical as hierarchical
from ml.clustering import SampledKMeans, SampledWard
from ml.segmentation.candidates import MIN_RESAMPLES, STABILITY_MARGIN, bootstrap_stability


def blobs(n_per: int = 300, seed: int = 0) -> np.ndarray:
    centers = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0], [8.0, 8.0]])
    rng = np.random.default_rng(seed)
    X = np.vstack([c + rng.normal(0, 1.0, (n_per, 2)) for c in centers])
    return X[rng.permutation(len(X))]


@pytest.fixture
def tree_calls(monkeypatch):
    """Count the Ward trees actually built (the cache emptied first)."""
    calls = []
    real = hierarchical.ward_linkage

    def spy(S):
        calls.append(S.shape[0])
        return real(S)

    monkeypatch.setattr(hierarchical, "ward_linkage", spy)
    monkeypatch.setattr(hierarchical, "_TREES", type(hierarchical._TREES)())
    return calls


def test_ward_candidates_share_one_tree_per_sample(tree_calls):
    X = blobs()
    fits = {
        k: SampledWard(n_clusters=k, compute_scores=False, n_resamples=0, sample_size=500).fit(X)
        for k in (3, 4, 5, 6)
    }
    assert tree_calls == [500]  # one tree for the four k: same data, same seed, same sample
    # each cut is the exact cut of that tree, as without the cache
    S = X[fits[3].sample_indices_]
    expected = cut_tree(ward(S), n_clusters=[3, 4, 5, 6])
    for column, (k, est) in zip(expected.T, fits.items(), strict=True):
        assert est.n_clusters_ == k
        assert adjusted_rand_score(column, est.labels_[est.sample_indices_]) == pytest.approx(1.0)
    SampledWard(n_clusters=4, compute_scores=False, n_resamples=0, sample_size=500,
                random_state=1).fit(X)  # fmt: skip
    assert tree_calls == [500, 500]  # another sample, another tree


def test_ward_stability_refits_share_trees_across_k(tree_calls):
    X = blobs()
    ward_fits = [
        SampledWard(n_clusters=k, compute_scores=False, n_resamples=0).fit(X) for k in (3, 4)
    ]
    eval_idx = np.arange(0, len(X), 2)
    first = bootstrap_stability(ward_fits[0], X, eval_idx, 3, len(X), random_state=0)
    built = len(tree_calls)
    assert built == 1 + 3  # the reference tree, then one per resample
    second = bootstrap_stability(ward_fits[1], X, eval_idx, 3, len(X), random_state=0)
    assert len(tree_calls) == built  # k=4 is judged on the same resamples: no new tree
    assert 0.0 < first <= 1.0 and 0.0 < second <= 1.0


class CountingKMeans(SampledKMeans):
    """SampledKMeans counting its fits (clones share the class-level list)."""

    fitted_rows: list = []

    def fit(self, X, y=None):
        type(self).fitted_rows.append(np.asarray(X).copy())
        return super().fit(X, y)


@pytest.fixture
def four_blobs_fit():
    CountingKMeans.fitted_rows = []
    X = blobs()
    est = CountingKMeans(n_clusters=4, compute_scores=False, n_resamples=0, n_init=2).fit(X)
    CountingKMeans.fitted_rows = []
    return X, est, np.arange(len(X))


def test_bootstrap_runs_every_resample_without_a_threshold(four_blobs_fit):
    X, est, eval_idx = four_blobs_fit
    value = bootstrap_stability(est, X, eval_idx, 5, 600, random_state=0)
    assert len(CountingKMeans.fitted_rows) == 5
    assert value > 0.95  # four well-separated blobs at k=4


def test_bootstrap_stops_once_a_pass_is_clear(four_blobs_fit):
    X, est, eval_idx = four_blobs_fit
    value = bootstrap_stability(est, X, eval_idx, 5, 600, random_state=0, threshold=0.75)
    assert len(CountingKMeans.fitted_rows) == MIN_RESAMPLES
    assert value >= 0.75 + STABILITY_MARGIN


def test_bootstrap_stops_once_a_fail_is_clear(four_blobs_fit):
    X, est, eval_idx = four_blobs_fit
    value = bootstrap_stability(est, X, eval_idx, 5, 600, random_state=0, threshold=1.2)
    assert len(CountingKMeans.fitted_rows) == MIN_RESAMPLES  # an ARI never exceeds 1
    assert value < 1.2


def test_bootstrap_runs_on_while_the_verdict_is_open(four_blobs_fit):
    X, est, eval_idx = four_blobs_fit
    full = bootstrap_stability(est, X, eval_idx, 5, 600, random_state=0)
    CountingKMeans.fitted_rows = []
    # a threshold right at the ARIs: no verdict is clear, every resample runs
    same = bootstrap_stability(est, X, eval_idx, 5, 600, random_state=0, threshold=full)
    assert len(CountingKMeans.fitted_rows) == 5
    assert same == pytest.approx(full)


def test_candidates_on_one_matrix_get_the_same_resamples(four_blobs_fit):
    X, est, eval_idx = four_blobs_fit
    other = CountingKMeans(n_clusters=3, compute_scores=False, n_resamples=0, n_init=2).fit(X)
    CountingKMeans.fitted_rows = []
    bootstrap_stability(est, X, eval_idx, 3, 600, random_state=4)
    first = CountingKMeans.fitted_rows
    CountingKMeans.fitted_rows = []
    bootstrap_stability(other, X, eval_idx, 3, 600, random_state=4)
    assert len(first) == len(CountingKMeans.fitted_rows) == 3
    for a, b in zip(first, CountingKMeans.fitted_rows, strict=True):
        np.testing.assert_array_equal(a, b)
    CountingKMeans.fitted_rows = []
    bootstrap_stability(other, X, eval_idx, 3, 600, random_state=5)
    assert not np.array_equal(first[0], CountingKMeans.fitted_rows[0])
