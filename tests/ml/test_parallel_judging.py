"""Candidates judged on several threads give what one thread gives, and the shared
strata of the stratified sample change no sample."""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import pytest
from sklearn.utils import check_random_state

import ml.segmentation.judging as judging
import ml.threads as threads
from ml.clustering import SampledDBSCAN, shared_strata, stratified_sample
from ml.clustering import base as clustering_base
from ml.segmentation import fit_candidates
from tests.ml.test_segmentation import judge_frame_for, make_customers


def _fit(monkeypatch, parallel_rows: int, cores: int):
    monkeypatch.setattr(judging, "PARALLEL_ROWS", parallel_rows)
    monkeypatch.setattr(threads, "cores", lambda: cores)
    df, truth = make_customers()
    frame = judge_frame_for(df, truth)
    return fit_candidates(df, judge_frame=frame, eval_size=2_000, n_resamples=2)


def test_parallel_judging_equals_sequential(monkeypatch):
    names = []
    real_judge = judging.judge

    def spy(*args, **kwargs):
        import threading

        names.append(threading.current_thread().name)
        return real_judge(*args, **kwargs)

    monkeypatch.setattr(judging, "judge", spy)
    sequential = _fit(monkeypatch, parallel_rows=10**9, cores=2)
    assert all(name == "MainThread" for name in names)
    names.clear()
    parallel = _fit(monkeypatch, parallel_rows=0, cores=2)
    assert any(name.startswith("fit") for name in names)  # it did run in the pool
    assert parallel.chosen == sequential.chosen
    drop = ["fit_seconds"]
    pd.testing.assert_frame_equal(
        parallel.candidates.drop(columns=drop), sequential.candidates.drop(columns=drop)
    )
    np.testing.assert_array_equal(parallel.model.labels_, sequential.model.labels_)
    pd.testing.assert_frame_equal(parallel.backtest, sequential.backtest)


def _reference_sample(X, size, rng, n_bins=10):
    """The sample as stratified_sample drew it before the strata were shared."""
    n = len(X)
    strata = clustering_base._strata(X, n_bins)
    counts = np.bincount(strata)
    quota = counts * (size / n)
    alloc = np.floor(quota).astype(np.int64)
    alloc[np.lexsort((np.arange(len(quota)), -(quota - alloc)))[: size - alloc.sum()]] += 1
    order = np.lexsort((rng.random_sample(n), strata))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - (np.cumsum(counts) - counts)[strata[order]]
    return np.flatnonzero(rank < alloc[strata])


@pytest.mark.parametrize("shared", [False, True])
def test_shared_strata_draw_the_same_samples_and_leave_the_generator_alike(shared):
    X = np.random.default_rng(3).normal(size=(20_000, 3))
    other = X + 1e-9  # different values: never served from the first array's entry
    calls = [(X, 500, 0), (X, 2_000, 0), (other, 500, 0), (X, 500, 1), (X, 500, 0)]
    with shared_strata() if shared else contextlib.nullcontext():
        for data, size, seed in calls:
            ours, theirs = check_random_state(seed), check_random_state(seed)
            got = stratified_sample(data, size, ours)
            np.testing.assert_array_equal(got, _reference_sample(data, size, theirs))
            # the generator moved on exactly as the draw moves it
            np.testing.assert_array_equal(ours.random_sample(4), theirs.random_sample(4))
        held = len(clustering_base._STRATA._entries)
    assert held == (2 if shared else 0)
    assert not clustering_base._STRATA._entries  # released when the context ends


def test_a_generator_in_another_state_is_not_served_a_stored_order():
    X = np.random.default_rng(4).normal(size=(10_000, 2))
    with shared_strata():
        first = stratified_sample(X, 300, check_random_state(0))
        rng = check_random_state(0)
        rng.random_sample(1)  # same seed, one draw further
        moved = stratified_sample(X, 300, rng)
    expected = check_random_state(0)
    expected.random_sample(1)
    np.testing.assert_array_equal(moved, _reference_sample(X, 300, expected))
    assert not np.array_equal(first, moved)


def test_density_assignment_in_blocks_on_threads_equals_one_block(monkeypatch):
    import ml.clustering.density as density

    X = np.random.default_rng(5).normal(size=(30_000, 2))
    one = SampledDBSCAN(sample_size=3_000, random_state=0).fit(X)
    monkeypatch.setattr(density, "_ASSIGN_BLOCK_ROWS", 4_000)
    monkeypatch.setattr(threads, "cores", lambda: 3)
    blocks = SampledDBSCAN(sample_size=3_000, random_state=0).fit(X)
    np.testing.assert_array_equal(blocks.labels_, one.labels_)
    assert (one.labels_ >= 0).any() and (one.labels_ < 0).any()  # noise and clusters both met


def _purchase_histories(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers who buy at their own rate until they stop (BG/NBD-like), and what
    they did in the next 90 days."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(60, 400, n)
    rate = rng.gamma(0.5, 1 / 20, n)
    life = rng.exponential(rng.gamma(2.0, 150, n))
    active = np.minimum(life, T)
    x = rng.poisson(rate * active)
    recency = np.where(x > 0, active * rng.beta(x + 1, 1), 0.0)
    later = rng.poisson(rate * np.clip(life - T, 0, 90))
    features = pd.DataFrame(
        {"lt_frequency": x.astype(float), "lt_recency_days": np.floor(recency),
         "lt_t_days": np.floor(T), "lt_monetary_value": rng.gamma(2, 20, n) * (x > 0),
         "gross_sales": rng.gamma(2, 20, n) * (x + 1), "frequency": x + 1,
         "recency_days": np.floor(T) - np.floor(recency)}
    )  # fmt: skip
    outcomes = pd.DataFrame({"purchase_days_in_horizon": later, "churned": later == 0})
    return features, outcomes


def test_purchase_families_judged_in_parallel_equal_one_thread(monkeypatch):
    """choose_purchase_model's families on threads: the same table, choice and fits."""
    import threading

    import ml.value_evaluation as value_evaluation
    from ml.value_evaluation import choose_purchase_model

    features, outcomes = _purchase_histories(3_000, seed=7)
    names = set()
    real_fit = value_evaluation.fit_purchase_model

    def spy(*args, **kwargs):
        names.add(threading.current_thread().name)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(value_evaluation, "fit_purchase_model", spy)
    monkeypatch.setattr(threads, "cores", lambda: 3)

    def choose(min_rows: int):
        monkeypatch.setattr(threads, "SMALL_ROWS", min_rows)
        return choose_purchase_model(features, outcomes, horizon_days=90, cutoff=None)

    one = choose(10**9)
    assert names == {"MainThread"}
    many = choose(0)
    assert any(name.startswith("fit") for name in names)
    pd.testing.assert_frame_equal(many.table, one.table)
    assert many.family == one.family and many.forecast_family == one.forecast_family
    assert len(one.models) >= 2  # at least two families fitted and compared
    for family, model in one.models.items():
        assert many.models[family].params_ == model.params_


def test_hdbscan_assignment_shortcut_gives_the_full_query_labels():
    """_assign settles a row from its two nearest components when the nearest is strictly
    nearest and in reach; the labels equal those of the rule as stated (first component
    in reach among the n_query nearest), ties and noise included."""
    from ml.clustering import SampledHDBSCAN

    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(c, 0.6, size=(4_000, 3)) for c in (0, 3, 6)])
    X[:3_000] = np.round(X[:3_000])  # a lattice of repeated points: ties at every distance
    model = SampledHDBSCAN(sample_size=2_000, random_state=0).fit(X)
    # rows far from every component (some tied with their neighbour): noise without the
    # full query once the second neighbour is beyond the largest radius
    far = np.round(rng.uniform(-30, 36, size=(2_000, 3)))
    X = np.vstack([X, far])
    d2 = model._nn.kneighbors(far, n_neighbors=2)[0][:, 1]
    assert (d2 > model.component_radius_.max()).sum() > 100
    got = model.predict(X)
    k = min(model._n_query, len(model.components_))
    dist, ind = model._nn.kneighbors(X, n_neighbors=k)
    reach = dist <= model.component_radius_[ind]
    want = np.where(
        reach.any(axis=1), model.component_labels_[ind[np.arange(len(X)), reach.argmax(axis=1)]], -1
    )
    assert k == 10
    assert (want == -1).any() and (want >= 0).any()
    np.testing.assert_array_equal(got, want)
