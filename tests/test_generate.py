"""Tests for the synthetic demo-data generator (orchestration/demo/)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import FrozenInstanceError
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orchestration.demo import PERSONA_SHARES, PERSONAS, GenerateResult, generate

REPO = Path(__file__).resolve().parents[1]
END = pd.Timestamp("2025-12-31 23:59:59")
AS_OF = pd.Timestamp("2026-01-01")
N = 2000

TX_COLUMNS = [
    "order_id",
    "customer_id",
    "order_date",
    "product_id",
    "category",
    "quantity",
    "unit_price",
    "channel",
    "country",
]


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[GenerateResult, dict[str, pd.DataFrame]]:
    out = tmp_path_factory.mktemp("demo")
    result = generate(out, customers=N, seed=7)
    text = {"customer_id": str, "order_id": str, "product_id": str}
    frames = {
        "tx": pd.read_csv(result.transactions_path, dtype=text),
        "customers": pd.read_csv(result.customers_path, dtype=text),
        "events": pd.read_csv(result.events_path, dtype=text),
        "truth": pd.read_csv(result.ground_truth_path, dtype=text),
    }
    frames["tx"]["order_date"] = pd.to_datetime(
        frames["tx"]["order_date"], format="%Y-%m-%d %H:%M:%S"
    )
    frames["events"]["event_at"] = pd.to_datetime(
        frames["events"]["event_at"], format="%Y-%m-%d %H:%M:%S"
    )
    frames["customers"]["signup_date"] = pd.to_datetime(
        frames["customers"]["signup_date"], format="%Y-%m-%d"
    )
    return result, frames


def _paths(result: GenerateResult) -> list[Path]:
    return [
        result.transactions_path,
        result.customers_path,
        result.events_path,
        result.ground_truth_path,
    ]


def _files(result: GenerateResult) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in _paths(result)}


def _customer_features(tx: pd.DataFrame) -> pd.DataFrame:
    buys = tx[tx["quantity"] > 0].assign(amount=lambda d: d["quantity"] * d["unit_price"])
    f = buys.groupby("customer_id").agg(
        first=("order_date", "min"),
        last=("order_date", "max"),
        orders=("order_id", "nunique"),
        spend=("amount", "sum"),
    )
    f["recency"] = (AS_OF - f["last"]).dt.days
    f["tenure"] = (AS_OF - f["first"]).dt.days
    f["aov"] = f["spend"] / f["orders"]
    return f


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", customers=500, seed=11)
    b = generate(tmp_path / "b", customers=500, seed=11)
    c = generate(tmp_path / "c", customers=500, seed=12)
    assert _files(a) == _files(b)
    assert a.transactions == b.transactions and a.events == b.events
    fa, fc = _files(a), _files(c)
    for name in fa:
        assert fa[name] != fc[name], name


def test_layout_headers_and_formats(demo) -> None:
    result, _ = demo
    out = result.out_dir
    assert result.transactions_path == out / "transactions.csv"
    assert result.ground_truth_path == out / "ground_truth" / "personas.csv"
    heads = {p.name: p.read_text().splitlines()[:2] for p in _paths(result)}
    assert heads["transactions.csv"][0] == ",".join(TX_COLUMNS)
    assert heads["customers.csv"][0] == "customer_id,signup_date,age,gender,region"
    assert heads["events.csv"][0] == "customer_id,event_at,event_type"
    assert heads["personas.csv"][0] == "customer_id,persona,churned"
    raw = pd.read_csv(result.transactions_path, dtype=str)
    assert raw["order_id"].str.fullmatch(r"[OR]\d{7}").all()
    assert raw["customer_id"].str.fullmatch(r"C\d{6}").all()
    assert raw["product_id"].str.fullmatch(r"P\d{4}").all()
    assert raw["order_date"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").all()
    assert raw["unit_price"].str.fullmatch(r"\d+\.\d\d").all()
    cust = pd.read_csv(result.customers_path, dtype=str)
    assert cust["signup_date"].str.fullmatch(r"\d{4}-\d\d-\d\d").all()
    with pytest.raises(FrozenInstanceError):
        result.customers = 1  # type: ignore[misc]


def test_counts_match_result(demo) -> None:
    result, f = demo
    tx = f["tx"]
    assert result.customers == N == len(f["customers"]) == len(f["truth"])
    assert result.transactions == len(tx)
    assert result.orders == tx.loc[tx["order_id"].str.startswith("O"), "order_id"].nunique()
    assert result.returns == tx["order_id"].str.startswith("R").sum()
    assert result.events == len(f["events"])
    # Sizing: roughly 10 order lines per customer, and returns about 3 % of orders.
    assert 6 <= result.transactions / N <= 20
    assert 0.015 <= result.returns / result.orders <= 0.045


def test_every_persona_present_in_expected_share(demo) -> None:
    _, f = demo
    shares = f["truth"]["persona"].value_counts(normalize=True)
    assert set(shares.index) == set(PERSONAS)
    for name, share in zip(PERSONAS, PERSONA_SHARES, strict=True):
        assert abs(shares[name] - share) < 0.01, name


def test_persona_ids_are_shuffled(demo) -> None:
    # Ids must not reveal the persona: the first tenth of ids holds a mix.
    _, f = demo
    assert f["truth"]["persona"].iloc[: N // 10].nunique() == len(PERSONAS)


def test_nothing_after_end_date(demo) -> None:
    _, f = demo
    assert f["tx"]["order_date"].max() <= END
    assert f["events"]["event_at"].max() <= END
    # ... but the history does reach end_date (the warehouse's as-of date follows it).
    assert f["tx"]["order_date"].max() >= END - pd.Timedelta(days=3)
    assert f["tx"]["order_date"].min() >= pd.Timestamp("2024-01-02")


def test_end_date_and_years_move_the_window(tmp_path: Path) -> None:
    r = generate(tmp_path, customers=300, seed=1, end_date="2024-06-30", years=1.5)
    tx = pd.read_csv(r.transactions_path, parse_dates=["order_date"])
    assert tx["order_date"].max() <= pd.Timestamp("2024-06-30 23:59:59")
    assert tx["order_date"].min() >= pd.Timestamp("2024-06-30") - pd.Timedelta(
        days=round(1.5 * 365)
    )


def test_signup_on_or_before_first_purchase(demo) -> None:
    _, f = demo
    first = f["tx"].groupby("customer_id")["order_date"].min().dt.normalize()
    signup = f["customers"].set_index("customer_id")["signup_date"]
    joined = pd.concat([signup, first], axis=1, join="inner")
    assert len(joined) == N  # every customer has bought something
    assert (joined["signup_date"] <= joined["order_date"]).all()
    assert (joined["signup_date"] < joined["order_date"]).any()  # not all at checkout


def test_customer_attributes(demo) -> None:
    _, f = demo
    c = f["customers"]
    assert set(c["gender"]) == {"F", "M", "X"}
    assert c["region"].nunique() == 5
    age = c["age"].astype(int)
    assert age.between(18, 90).all()


def test_prices_positive_and_quantities_sane(demo) -> None:
    _, f = demo
    tx = f["tx"]
    assert (tx["unit_price"] > 0).all()
    assert (tx["quantity"] != 0).all()
    buys = tx[tx["order_id"].str.startswith("O")]
    assert (buys["quantity"] > 0).all()
    assert buys.groupby("order_id").size().between(1, 4).all()
    assert tx["channel"].isin(["web", "store", "app"]).all()
    assert tx["category"].nunique() == 8
    # A consistent catalogue: a product always has one category.
    assert (tx.groupby("product_id")["category"].nunique() == 1).all()
    assert tx["product_id"].nunique() <= 500


def test_returns_refer_to_earlier_purchases(demo) -> None:
    _, f = demo
    tx = f["tx"]
    returns = tx[tx["order_id"].str.startswith("R")]
    buys = tx[tx["order_id"].str.startswith("O")]
    assert len(returns) > 0
    assert (returns["quantity"] < 0).all()
    assert returns["order_id"].is_unique  # one line per return order
    # Each return matches an earlier purchase of the same product by the same
    # customer, at the same unit price, returning no more than was bought.
    m = returns.merge(buys, on=["customer_id", "product_id"], suffixes=("_r", "_b"))
    m = m[(m["order_date_b"] < m["order_date_r"]) & (m["unit_price_b"] == m["unit_price_r"])]
    m = m[-m["quantity_r"] <= m["quantity_b"]]
    assert set(m["order_id_r"]) == set(returns["order_id"])


def test_no_exact_duplicate_rows(demo) -> None:
    _, f = demo
    assert not f["tx"].duplicated().any()
    assert not f["events"].duplicated().any()


def test_customer_ids_unique_and_referenced(demo) -> None:
    _, f = demo
    ids = f["customers"]["customer_id"]
    assert ids.is_unique
    assert set(f["tx"]["customer_id"]) <= set(ids)
    assert set(f["events"]["customer_id"]) <= set(ids)
    assert set(f["truth"]["customer_id"]) == set(ids)


def test_events_types_and_persona_correlation(demo) -> None:
    _, f = demo
    ev = f["events"]
    assert set(ev["event_type"]) == {"email_open", "email_click", "site_visit", "app_session"}
    per_cust = ev.groupby("customer_id").size().reindex(f["truth"]["customer_id"], fill_value=0)
    rate = per_cust.groupby(f["truth"].set_index("customer_id")["persona"]).mean()
    assert rate["loyal_high_spender"] > 3 * rate["one_time_buyer"]
    assert rate["frequent_bargain_buyer"] > 3 * rate["one_time_buyer"]


def test_persona_behaviour_matches_definition(demo) -> None:
    _, f = demo
    feats = _customer_features(f["tx"]).join(f["truth"].set_index("customer_id"))
    by = feats.groupby("persona")
    one_time = feats[feats["persona"] == "one_time_buyer"]
    assert (one_time["orders"] == 1).all()
    # "Last 60 days" = the 60 calendar days ending on end_date.
    last_60 = END.normalize() - pd.Timedelta(days=59)
    assert (one_time["last"] < last_60).all()
    new = feats[feats["persona"] == "new_customer"]
    assert new["orders"].between(1, 3).all()
    assert (new["first"] >= last_60).all()
    lapsing = feats[feats["persona"] == "lapsing_regular"]
    assert (lapsing["recency"] >= 150).all()
    assert lapsing["orders"].median() >= 5
    aov = by["aov"].median()
    assert 150 <= aov["loyal_high_spender"] <= 300
    assert 10 <= aov["frequent_bargain_buyer"] <= 30
    assert aov["loyal_high_spender"] > aov["occasional_mid"] > aov["frequent_bargain_buyer"]
    orders = by["orders"].median()
    assert orders["frequent_bargain_buyer"] > orders["occasional_mid"]
    assert orders["loyal_high_spender"] > orders["occasional_mid"]
    tenure = by["tenure"].median()
    assert tenure["loyal_high_spender"] > 365


def test_churn_label_direction(demo) -> None:
    _, f = demo
    churn = (
        f["truth"]
        .assign(churned=lambda d: d["churned"].astype(int))
        .groupby("persona")["churned"]
        .mean()
    )
    assert set(f["truth"]["churned"]) == {0, 1}
    assert churn["one_time_buyer"] > churn["loyal_high_spender"]
    assert churn["one_time_buyer"] > 0.85
    assert churn["lapsing_regular"] > 0.85
    assert churn["loyal_high_spender"] < 0.15
    assert churn["frequent_bargain_buyer"] < 0.15
    assert 0.1 < churn["new_customer"] < 0.7
    assert 0.1 < churn["occasional_mid"] < 0.7


def test_churn_label_consistent_with_history(demo) -> None:
    # The future continues the same process: the longer a non-one-time customer
    # has been silent, the likelier the label says churned.
    _, f = demo
    feats = _customer_features(f["tx"]).join(f["truth"].set_index("customer_id"))
    feats["churned"] = feats["churned"].astype(int)
    repeat = feats[feats["orders"] > 1]
    recent = repeat.loc[repeat["recency"] <= 30, "churned"].mean()
    silent = repeat.loc[repeat["recency"] > 150, "churned"].mean()
    assert silent > recent + 0.5


def test_kmeans_on_log_rfm_recovers_personas(demo) -> None:
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import StandardScaler

    _, f = demo
    feats = _customer_features(f["tx"]).join(f["truth"].set_index("customer_id"))
    x = StandardScaler().fit_transform(np.log1p(feats[["recency", "orders", "aov"]]))
    labels = KMeans(n_clusters=len(PERSONAS), n_init=10, random_state=0).fit_predict(x)
    # Measured 0.953; the bar is the measured value minus 0.02 (fixed seeds: numeric drift
    # passes, personas that blur into each other fail).
    assert adjusted_rand_score(feats["persona"], labels) >= 0.933


@pytest.mark.parametrize(
    "kwargs",
    [{"customers": 0}, {"years": 0.5}, {"horizon_days": 0}, {"end_date": "not-a-date"}],
)
def test_rejects_bad_arguments(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, **kwargs)


def test_tiny_population_still_works(tmp_path: Path) -> None:
    r = generate(tmp_path, customers=1, seed=3)
    assert r.customers == 1
    assert r.transactions >= 1
    assert len(pd.read_csv(r.ground_truth_path)) == 1


def test_does_not_import_dagster() -> None:
    code = "import sys, orchestration.demo; sys.exit('dagster' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
