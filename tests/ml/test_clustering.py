"""Tests for ml.clustering: the algorithms on a prepared matrix (synthetic data, seconds)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.cluster.hierarchy import cut_tree, ward
from sklearn.cluster import DBSCAN, HDBSCAN
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)
from sklearn.utils.estimator_checks import check_estimator

from ml.clustering import (
    DegenerateDataWarning,
    SampledDBSCAN,
    SampledHDBSCAN,
    SampledKMeans,
    SampledWard,
    cluster_scores,
    knee_index,
    select_k,
    stratified_sample,
)
from ml.clustering.hierarchical import _cut_tree
from ml.clustering.metrics import _silhouette_scores
from ml.features import Winsorizer

CENTERS = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0]])


def blobs(n_per: int = 500, seed: int = 0, sd: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Four well-separated spherical groups in 3-D, shuffled."""
    rng = np.random.default_rng(seed)
    X = np.vstack([c + rng.normal(0, sd, (n_per, 3)) for c in CENTERS])
    y = np.repeat(np.arange(len(CENTERS)), n_per)
    order = rng.permutation(len(y))
    return X[order], y[order]


@pytest.fixture(scope="module")
def data():
    return blobs()


# fast settings: the behaviour under test does not depend on the defaults' sizes
FAST = {
    "kmeans": lambda **kw: SampledKMeans(k_range=(2, 6), n_resamples=2, n_init=2, **kw),
    "ward": lambda **kw: SampledWard(k_range=(2, 6), n_resamples=2, **kw),
    "dbscan": lambda **kw: SampledDBSCAN(**kw),
    "hdbscan": lambda **kw: SampledHDBSCAN(**kw),
}


# --------------------------------------------------------------------------- #
# metrics, sampling, knee, k choice
# --------------------------------------------------------------------------- #
def test_silhouette_matches_sklearn():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3))
    labelings = [rng.integers(0, k, 300) for k in (2, 3, 5)]
    labelings.append(np.r_[np.zeros(150), np.ones(149), 2])  # with a singleton cluster
    expected = [silhouette_score(X, labels) for labels in labelings]
    np.testing.assert_allclose(_silhouette_scores(X, labelings), expected, rtol=1e-9, atol=1e-12)


def test_cluster_scores_match_sklearn_and_are_nan_when_undefined(data):
    X, y = data
    noisy = np.where(np.arange(len(y)) % 50 == 0, -1, y)  # noise counts as a group
    single = np.zeros(len(y), dtype=int)
    (a, b, c) = cluster_scores(X, [y, noisy, single])
    for got, labels in ((a, y), (b, noisy)):
        assert got["silhouette"] == pytest.approx(silhouette_score(X, labels))
        assert got["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(X, labels))
        assert got["davies_bouldin"] == pytest.approx(davies_bouldin_score(X, labels))
    assert all(np.isnan(v) for v in c.values())


def test_stratified_sample_is_exactly_proportional_and_deterministic():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (9000, 2)), rng.normal(8, 1, (1000, 2))])
    small_group = np.r_[np.zeros(9000, bool), np.ones(1000, bool)]
    # direction of the first principal component, computed here independently
    pc1 = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)[2][0]
    proj = (X - X.mean(axis=0)) @ pc1
    decile = np.searchsorted(np.quantile(proj, np.linspace(0, 1, 11)[1:-1]), proj, side="right")
    for seed in range(5):
        idx = stratified_sample(X, 500, seed)
        assert len(idx) == 500 and len(np.unique(idx)) == 500
        assert np.all(np.diff(idx) > 0)
        # a simple random sample would miss these by several rows (sd ~ 6.7 and ~ 6)
        assert small_group[idx].sum() == 50
        counts = np.bincount(decile[idx], minlength=10)
        assert np.abs(counts - 50).max() <= 3  # one decile of a random sample: sd 6.7
    np.testing.assert_array_equal(stratified_sample(X, 500, 3), stratified_sample(X, 500, 3))
    assert not np.array_equal(stratified_sample(X, 500, 3), stratified_sample(X, 500, 4))
    np.testing.assert_array_equal(stratified_sample(X[:100], 500, 0), np.arange(100))


def test_knee_of_a_bent_curve():
    flat = np.linspace(0.0, 1.0, 80)  # slow growth, then a steep rise
    steep = 1.0 + np.linspace(0.5, 20.0, 20)
    curve = np.r_[flat, steep]
    assert knee_index(curve) == 79
    assert knee_index(np.ones(10)) == 9  # flat: the last point
    assert knee_index(np.array([0.0, 1.0])) == 1


SCORES = pd.DataFrame(
    {
        "k": [2, 3, 4, 5],
        "silhouette": [0.50, 0.60, 0.55, 0.40],
        "calinski_harabasz": [100.0, 300.0, 200.0, 150.0],
        "davies_bouldin": [0.90, 0.50, 0.60, 1.00],
        "inertia": [40.0, 30.0, 20.0, 10.0],
        "stability": [0.90, 0.60, 0.95, 0.99],
    }
)


@pytest.mark.parametrize(
    ("rule", "min_stability", "expected"),
    [
        ("vote", 0.0, 3),  # k=3 is best on all three scores
        ("vote", 0.75, 4),  # k=3 is unstable; among 2, 4, 5 k=4 ranks first everywhere
        ("silhouette", 0.0, 3),
        ("silhouette", 0.75, 4),
        ("calinski_harabasz", 0.75, 4),
        ("davies_bouldin", 0.75, 4),
        ("vote", 0.999, 5),  # nothing is stable enough: the most stable k
    ],
)
def test_select_k(rule, min_stability, expected):
    assert select_k(SCORES, rule, min_stability) == expected


def test_select_k_vote_tie_goes_to_higher_silhouette():
    tied = SCORES.assign(
        silhouette=[0.5, 0.6, 0.7, 0.1],
        calinski_harabasz=[100.0, 300.0, 200.0, 50.0],
        davies_bouldin=[0.9, 0.5, 0.4, 2.0],
        stability=np.nan,
    )
    # rank sums: k=3 -> 2+1+2 = 5, k=4 -> 1+2+1 = 4: k=4 wins outright
    assert select_k(tied, "vote") == 4
    tied = tied.assign(calinski_harabasz=[100.0, 300.0, 300.0, 50.0], davies_bouldin=0.5)
    # k=3 and k=4 tie on CH and DB; k=4 has the higher silhouette
    assert select_k(tied, "vote") == 4


def test_cut_tree_matches_scipy():
    X = np.random.default_rng(3).normal(size=(200, 3))
    Z = ward(X)
    ks = [1, 2, 3, 7, 199]
    expected = cut_tree(Z, n_clusters=ks)
    for k, got, column in zip(ks, _cut_tree(Z, ks), expected.T, strict=True):
        assert len(np.unique(got)) == k
        assert adjusted_rand_score(column, got) == pytest.approx(1.0)


# --------------------------------------------------------------------------- #
# sample-and-assign
# --------------------------------------------------------------------------- #
def _sample_reference(name: str, est, S: np.ndarray) -> np.ndarray:
    """Labels the underlying algorithm gives when run on the sample alone."""
    if name == "ward":
        return cut_tree(ward(S), n_clusters=[est.n_clusters_])[:, 0]
    if name == "dbscan":
        return DBSCAN(eps=est.eps_, min_samples=est.min_samples_).fit(S).labels_
    return (
        HDBSCAN(min_cluster_size=est.min_cluster_size_, min_samples=est.min_samples_, copy=True)
        .fit(S)
        .labels_
    )


@pytest.mark.parametrize("name", ["ward", "dbscan", "hdbscan"])
def test_sampled_rows_keep_their_fitted_labels(data, name):
    X, y = data
    est = FAST[name](sample_size=400).fit(X)
    idx = est.sample_indices_
    assert len(idx) == 400
    reference = _sample_reference(name, est, X[idx])
    # same partition of the sample (ids may be permuted, noise is -1 in both)
    assert adjusted_rand_score(reference, est.labels_[idx]) == pytest.approx(1.0)
    np.testing.assert_array_equal(reference < 0, est.labels_[idx] < 0)
    # every other row is assigned, the same way predict assigns it
    rest = np.setdiff1d(np.arange(len(X)), idx)
    np.testing.assert_array_equal(est.labels_[rest], est.predict(X[rest]))
    assert len(est.labels_) == len(X)
    # and the planted groups are found
    clustered = est.labels_ >= 0
    assert clustered.mean() > 0.9
    assert adjusted_rand_score(y[clustered], est.labels_[clustered]) > 0.95


@pytest.mark.parametrize("name", ["kmeans", "ward"])
def test_held_out_point_next_to_a_centroid_gets_that_centroid(data, name):
    X, _ = data
    est = FAST[name](sample_size=300).fit(X)
    centers = est.cluster_centers_
    assert len(centers) == 4
    near = centers + 1e-3
    np.testing.assert_array_equal(est.predict(near), np.arange(len(centers)))
    # a point between two groups goes to the closer centroid
    between = 0.6 * centers[1] + 0.4 * centers[3]
    assert est.predict(between[None, :])[0] == 1


@pytest.mark.parametrize("name", ["dbscan", "hdbscan"])
def test_density_assignment_core_sample_or_noise(data, name):
    X, _ = data
    est = FAST[name](sample_size=400).fit(X)
    comp, comp_labels = est.components_, est.component_labels_
    picks = [np.flatnonzero(comp_labels == c)[0] for c in np.unique(comp_labels)]
    near = comp[picks] + 1e-6
    np.testing.assert_array_equal(est.predict(near), comp_labels[picks])
    far = np.array([[100.0, 100.0, 100.0], [-40.0, 0.0, 0.0]])
    np.testing.assert_array_equal(est.predict(far), [-1, -1])


def test_dbscan_eps_from_knee_separates_the_groups(data):
    X, _ = data
    est = SampledDBSCAN(sample_size=1000).fit(X)
    assert est.min_samples_ == 2 * X.shape[1]
    assert np.all(np.diff(est.k_distances_) >= 0)
    # eps is above the typical neighbourhood radius and far below the gap between groups
    assert np.median(est.k_distances_) < est.eps_ < 10.0 / 2
    assert est.n_clusters_ == 4


def test_density_noise_is_reported_not_dropped(data):
    X, y = data
    rng = np.random.default_rng(9)
    # a few scattered points far from every group (too few to form a cluster)
    outliers = rng.uniform(-60, 60, (12, 3)) + 100.0
    X2 = np.vstack([X, outliers])
    for est in (SampledDBSCAN(sample_size=800), SampledHDBSCAN(sample_size=800)):
        est.fit(X2)
        assert len(est.labels_) == len(X2)
        assert (est.labels_[-12:] == -1).all()
        assert est.noise_share_ == pytest.approx(np.mean(est.labels_ == -1))
        assert est.noise_share_ >= 12 / len(X2)


# --------------------------------------------------------------------------- #
# k-means and Ward: choice of k
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", ["kmeans", "ward"])
def test_k_is_chosen_and_scored_on_the_sample(data, name):
    X, y = data
    est = FAST[name](sample_size=600).fit(X)
    assert est.n_clusters_ == 4
    assert adjusted_rand_score(y, est.labels_) == pytest.approx(1.0)
    scores = est.k_scores_
    assert scores["k"].tolist() == [2, 3, 4, 5, 6]
    assert scores["inertia"].is_monotonic_decreasing  # the elbow curve
    assert scores["stability"].between(-1, 1).all()
    assert scores.loc[scores["k"] == 4, "stability"].item() == pytest.approx(1.0)
    assert est.fixed_params_ == {"n_clusters": 4}


def test_kmeans_scores_use_only_the_sample(data, monkeypatch):
    import ml.clustering.metrics as clustering

    seen = []
    real = clustering._silhouette_scores

    def spy(X, labelings):
        seen.append(X.shape[0])
        return real(X, labelings)

    monkeypatch.setattr(clustering, "_silhouette_scores", spy)
    X, _ = data
    est = SampledKMeans(sample_size=250, n_resamples=0).fit(X)
    assert seen == [250]  # one shared O(n^2) pass on the sample, never all 2000 rows
    assert len(est.labels_) == len(X)
    # the final centroids are refined on all rows: labels are the nearest centroids
    d = ((X[:, None, :] - est.cluster_centers_[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(est.labels_, d.argmin(axis=1))


def test_fixed_n_clusters_and_determinism(data):
    X, _ = data
    a = SampledKMeans(n_clusters=3, n_resamples=0, sample_size=500, random_state=7).fit(X)
    b = SampledKMeans(n_clusters=3, n_resamples=0, sample_size=500, random_state=7).fit(X)
    assert a.n_clusters_ == 3 and a.k_scores_["k"].tolist() == [3]
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    plain = SampledWard(n_clusters=3, compute_scores=False, n_resamples=0).fit(X)
    assert plain.k_scores_.empty and plain.n_clusters_ == 3


# --------------------------------------------------------------------------- #
# degenerate data and parameters
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", list(FAST))
def test_identical_rows_give_one_cluster(name):
    X = np.full((60, 3), 2.5)
    with pytest.warns(DegenerateDataWarning, match="identical"):
        est = FAST[name]().fit(X)
    assert est.n_clusters_ == 1
    assert (est.labels_ == 0).all()
    assert (est.predict(X[:3] + 1.0) == 0).all()


@pytest.mark.parametrize("name", list(FAST))
def test_constant_column_does_not_matter(data, name):
    X, y = data
    X2 = np.column_stack([X, np.zeros(len(X))])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateDataWarning)
        est = FAST[name](sample_size=500).fit(X2)
    clustered = est.labels_ >= 0
    assert adjusted_rand_score(y[clustered], est.labels_[clustered]) > 0.95


def test_k_range_capped_by_distinct_rows():
    X = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0], [9.0, 0.0]]), 20, axis=0)
    with pytest.warns(DegenerateDataWarning, match="reduced"):
        est = SampledKMeans(n_resamples=0).fit(X)
    assert est.k_scores_["k"].max() == 3 and est.n_clusters_ == 3
    with pytest.warns(DegenerateDataWarning, match="only 3 distinct"):
        est = SampledWard(n_clusters=5, n_resamples=0).fit(X)
    assert est.n_clusters_ == 3


@pytest.mark.parametrize(
    ("est", "match"),
    [
        (SampledKMeans(k_range=(1, 4)), "k_range"),
        (SampledKMeans(k_selection="elbow"), "k_selection"),
        (SampledKMeans(n_resamples=-1), "n_resamples"),
        (SampledWard(n_clusters=0), "n_clusters"),
        (SampledDBSCAN(eps=-1.0), "eps"),
        (SampledHDBSCAN(min_cluster_size=1), "min_cluster_size"),
        (SampledDBSCAN(sample_size=2), "sample_size"),
    ],
)
def test_bad_parameters_raise(data, est, match):
    X, _ = data
    with pytest.raises(ValueError, match=match):
        est.fit(X[:200])


# --------------------------------------------------------------------------- #
# scikit-learn's estimator checks
# --------------------------------------------------------------------------- #
# The array-API check skips itself unless SCIPY_ARRAY_API is set (it is about
# array libraries, not clustering), so a skip is allowed there and nowhere else.
@pytest.mark.parametrize(
    "estimator",
    [
        Winsorizer(),
        SampledKMeans(k_range=(2, 3), n_resamples=1, n_init=1),
        SampledWard(k_range=(2, 3), n_resamples=1),
        SampledDBSCAN(),
        SampledHDBSCAN(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_sklearn_estimator_checks_pass(estimator):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)  # tiny check data sets
        results = check_estimator(estimator, on_fail=None, on_skip=None)
    failed = [(r["check_name"], str(r["exception"])) for r in results if r["status"] == "failed"]
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert failed == []
    assert skipped <= {"check_array_api_input"}
    assert sum(r["status"] == "passed" for r in results) >= 40
