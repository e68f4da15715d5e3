"""The Power BI model is generated from the dbt marts: complete, described, up to date.

The committed TMDL is read back with the independent parser of tests/powerbi_model.py and
compared with the dbt manifest's descriptions and orchestration/publish/powerbi/model.yml.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestration.io.config import CurrencyConfig
from orchestration.publish.descriptions import from_manifest
from orchestration.publish.generate import GLOSSARY, REPO, generated_files, stale_files
from orchestration.publish.powerbi.build import SpecError, build, load_spec, render
from tests.powerbi_model import parse_tmdl, read_semantic_model

MODEL_DIR = REPO / "powerbi" / "CustomerSegmentation.SemanticModel"
# Segment tables whose rows repeat a customer across another grain column: a measure summing
# their customers must pin that column to one value (or be a ratio of two sums).
GRAIN = {
    "mart_segment_summary": "segment_type",
    "mart_churn_by_segment": "snapshot_date",
    "mart_segment_migration": "from_snapshot_date",
    "mart_cohort_retention": "months_since_first",
    "mart_segment_retention": "months_since_first",
}
CUSTOMER_COUNTS = {"customers", "cohort_customers", "active_customers", "churned_customers"}


@pytest.fixture(scope="module")
def docs(dbt_manifest: Path):
    return from_manifest(dbt_manifest)


@pytest.fixture(scope="module")
def model():
    return read_semantic_model(MODEL_DIR)


@pytest.fixture(scope="module")
def spec():
    return load_spec()


def test_committed_model_and_glossary_are_what_the_generator_writes(dbt_manifest: Path):
    files = generated_files(dbt_manifest)
    assert GLOSSARY in files and len(files) > 10
    stale = [p.as_posix() for p in stale_files(files)]
    assert stale == [], "run: python -m orchestration.publish.generate"


def test_stale_files_notices_an_edit(dbt_manifest: Path, tmp_path: Path):
    files = generated_files(dbt_manifest)
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    assert stale_files(files, tmp_path) == []
    edited = next(p for p in files if p.name == "dim_customer.tmdl")
    (tmp_path / edited).write_text(files[edited].replace("Primary key.", "Key."), encoding="utf-8")
    assert stale_files(files, tmp_path) == [edited]


def test_every_mart_column_is_in_the_model_or_left_out_with_a_reason(model, docs, spec):
    assert set(model.tables) - {"_Measures"} == set(docs), "every dbt mart is in the model"
    for table, doc in docs.items():
        in_model = set(model.columns(table))
        left_out = (spec["tables"][table] or {}).get("leave_out") or {}
        assert in_model.isdisjoint(left_out), table
        assert in_model | set(left_out) == set(doc.columns), table
        for column, reason in left_out.items():
            assert len(reason.split()) >= 8, f"{table}.{column}: give the reason in a sentence"


def test_every_table_column_and_measure_has_its_description(model, docs, spec):
    for table, doc in docs.items():
        assert model.tables[table].description == doc.description != ""
        for name, column in model.columns(table).items():
            assert column.description == doc.columns[name] != "", f"{table}.{name}"
    measures = model.measures("_Measures")
    assert [m["name"] for m in spec["measures"]] == list(measures)
    for m in spec["measures"]:
        assert measures[m["name"]].description == " ".join(m["description"].split()) != ""
    assert model.tables["_Measures"].description


def test_the_generator_refuses_a_column_without_a_description_or_a_reason(docs):
    undescribed = dict(docs)
    table = undescribed["mart_cohort_retention"]
    undescribed["mart_cohort_retention"] = type(table)(
        table.name, table.description, {**table.columns, "revenue": ""}, table.types
    )
    with pytest.raises(SpecError, match="mart_cohort_retention.revenue: no description"):
        build(undescribed, CurrencyConfig())
    spec = load_spec()
    spec["tables"]["mart_campaign_targets"]["leave_out"]["cluster_id"] = " "
    with pytest.raises(SpecError, match="left out without a reason"):
        build(docs, CurrencyConfig(), spec)
    spec = load_spec()
    del spec["tables"]["mart_segment_migration"]
    with pytest.raises(SpecError, match="every exported mart is in the model"):
        build(docs, CurrencyConfig(), spec)


def test_segment_measures_cannot_add_a_customer_twice(model):
    """Summing customers over a segment table counts each customer once.

    Implicit sums are off, so only measures add; any measure summing a customer count of a
    table with another grain column pins that column (HASONEVALUE or an equality filter),
    or divides two such sums (a rate).
    """
    top = parse_tmdl((MODEL_DIR / "definition" / "model.tmdl").read_text(encoding="utf-8"))
    [settings] = [n for n in top if n.keyword == "model"]
    assert settings.prop("discourageImplicitMeasures") == "true"
    checked = 0
    for name, measure in model.measures().items():
        text = " ".join(measure.value.split())
        for table, grain in GRAIN.items():
            if not any(f"SUM ( '{table}'[{c}] )" in text for c in CUSTOMER_COUNTS):
                continue
            checked += 1
            pinned = f"HASONEVALUE ( '{table}'[{grain}] )" in text
            pinned |= bool(re.search(rf"'{table}'\[{grain}\] = \w+", text))
            ratio = text.startswith("DIVIDE (")
            assert pinned or ratio, f"{name} may add the customers of several {grain} values"
    assert checked >= 8
    assert all(f"'{t}'[" in " ".join(m.value for m in model.measures().values()) for t in GRAIN)


def test_money_formats_follow_the_currency(docs, spec, model):
    default = CurrencyConfig().powerbi_format()
    pound = CurrencyConfig.model_validate({"code": "GBP", "symbol": "£"})
    rendered = render(build(docs, pound))
    money = {(t, c) for t, s in spec["tables"].items() for c in (s or {}).get("money", [])}
    money_measures = {m["name"] for m in spec["measures"] if m["format"] == "money"}
    assert len(money) > 20 and len(money_measures) > 10
    for table, column in money:
        assert model.columns(table)[column].prop("formatString") == default
        [node] = parse_tmdl(rendered[f"definition/tables/{table}.tmdl"])
        [col] = [c for c in node.objects("column") if c.name == column]
        assert col.prop("formatString") == '"£"#,0.00'
    [measures] = parse_tmdl(rendered["definition/tables/_Measures.tmdl"])
    for m in measures.objects("measure"):
        assert (m.prop("formatString") == '"£"#,0.00') == (m.name in money_measures), m.name
        assert model.measures()[m.name].prop("formatString") != '"£"#,0.00'


def test_glossary_carries_every_description(docs):
    text = (REPO / GLOSSARY).read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert len(rows) > 200 and all(row.endswith(" |") or row.endswith("|---|") for row in rows)
    assert "left out: The segment's id" in text
    for doc in docs.values():
        assert f"## {doc.name}\n\n{doc.description}\n" in text
        for name, description in doc.columns.items():
            assert (
                f"| `{name}` | {doc.types[name]} | {description.replace('|', chr(92) + '|')} |"
                in text
            )
