"""The Power BI project in powerbi/: JSON schemas, the TMDL model, the report, the export.

Everything runs offline: Microsoft's PBIP/PBIR schemas are stored in ../shared/schemas/powerbi
(see its README), the model is read with tests/powerbi_model.py, and the last test loads
a real export written by a pipeline run.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tests import powerbi_model as powerbi
from tests.powerbi_model import (
    check_export,
    check_model,
    dax_references,
    parse_tmdl,
    read_semantic_model,
    split_column_ref,
    visual_fields,
)

REPO = Path(__file__).resolve().parents[1]
PROJECT = REPO / "powerbi"
MODEL_DIR = PROJECT / "CustomerSegmentation.SemanticModel"
REPORT_DIR = PROJECT / "CustomerSegmentation.Report"
SCHEMAS = REPO.parent / "shared" / "schemas" / "powerbi"
PUBLISHED_URL = "https://developer.microsoft.com/json-schemas/"
MARTS_YAML = REPO / "dbt_project" / "models" / "marts" / "_marts__models.yml"

# File name -> the schema it must declare and validate against (../shared/schemas/powerbi/README.md).
SCHEMA_BY_NAME = {
    ".platform": "fabric/gitIntegration/platformProperties/2.1.0/schema.json",
    "definition.pbir": "fabric/item/report/definitionProperties/2.0.0/schema.json",
    "definition.pbism": "fabric/item/semanticModel/definitionProperties/1.0.0/schema.json",
    "version.json": "fabric/item/report/definition/versionMetadata/1.0.0/schema.json",
    "report.json": "fabric/item/report/definition/report/3.3.0/schema.json",
    "reportExtensions.json": "fabric/item/report/definition/reportExtension/1.0.0/schema.json",
    "pages.json": "fabric/item/report/definition/pagesMetadata/1.1.0/schema.json",
    "page.json": "fabric/item/report/definition/page/2.1.0/schema.json",
    "visual.json": "fabric/item/report/definition/visualContainer/2.9.0/schema.json",
    "mobile.json": "fabric/item/report/definition/visualContainerMobileState/2.4.0/schema.json",
    "bookmarks.json": "fabric/item/report/definition/bookmarksMetadata/1.0.0/schema.json",
}
SCHEMA_BY_SUFFIX = {
    ".pbip": "fabric/pbip/pbipProperties/1.0.0/schema.json",
    ".bookmark.json": "fabric/item/report/definition/bookmark/2.1.0/schema.json",
}
JSON_SUFFIXES = (".json", ".pbip", ".pbir", ".pbism")

# Data roles each visual type is built with here (the schema accepts any role name).
ROLES = {
    "card": ({"Values"}, {"Values"}),
    "slicer": ({"Values"}, {"Values"}),
    "tableEx": ({"Values"}, {"Values"}),
    "pivotTable": ({"Rows", "Values"}, {"Rows", "Columns", "Values"}),
    "clusteredBarChart": ({"Category", "Y"}, {"Category", "Y", "Series"}),
    "clusteredColumnChart": ({"Category", "Y"}, {"Category", "Y", "Series"}),
    "lineChart": ({"Category", "Y"}, {"Category", "Y", "Series"}),
}
MEASURES = {
    "Customers",
    "Active Customers",
    "Revenue",
    "Average Order Value",
    "Revenue Share",
    "Churn Rate",
    "Average Churn Probability",
    "Revenue at Risk",
    "Average CLV",
    "Total CLV",
    "Retention Rate",
    "Production Beats Baseline",
    "Families Not Evaluated",
    "Segment Summary Customers",
    "Campaign Customers",
    "Campaign Expected Value",
    "Predicted Churn Share",
    "Observed Churn Share",
    "Cohort Retention",
    "Segment Retention",
    "Migrating Customers",
    "Migrating Customers by Arrival Date",
}
# (from, to, active): the star schema and the marts around it; see docs/powerbi.md for the
# inactive ones (a second path to dim_segment; the migration's role-playing date).
RELATIONSHIPS = {
    ("fct_orders.customer_id", "dim_customer.customer_id", True),
    ("fct_orders.date_key", "dim_date.date_key", True),
    ("fct_customer_snapshot.customer_id", "dim_customer.customer_id", True),
    ("fct_customer_snapshot.date_key", "dim_date.date_key", True),
    ("dim_customer.cluster_id", "dim_segment.cluster_id", True),
    ("fct_customer_snapshot.cluster_id", "dim_segment.cluster_id", False),
    ("mart_campaign_targets.customer_id", "dim_customer.customer_id", True),
    ("mart_churn_by_segment.snapshot_date", "dim_date.date", True),
    ("mart_segment_retention.segment_name", "dim_segment.segment_name", True),
    ("mart_segment_migration.from_snapshot_date", "dim_date.date", True),
    ("mart_segment_migration.to_snapshot_date", "dim_date.date", False),
}
EXPORTED = {
    "dim_customer",
    "dim_segment",
    "dim_date",
    "fct_orders",
    "fct_customer_snapshot",
    "mart_segment_summary",
    "mart_model_evaluation",
    "mart_campaign_targets",
    "mart_churn_by_segment",
    "mart_cohort_retention",
    "mart_segment_retention",
    "mart_segment_migration",
}


def _project_files(pattern: str = "*") -> list[Path]:
    # .pbi/ holds Desktop's per-user files (localSettings.json, cache.abf), git-ignored.
    return sorted(p for p in PROJECT.rglob(pattern) if p.is_file() and ".pbi" not in p.parts)


JSON_FILES = [
    p for p in _project_files() if p.name == ".platform" or p.name.endswith(JSON_SUFFIXES)
]
VISUALS = _project_files("visual.json")


def _rel(path: Path) -> str:
    return path.relative_to(PROJECT).as_posix()


@pytest.fixture(scope="module")
def registry() -> Registry:
    """Every stored schema, under its published URL and its declared $id (they differ twice)."""
    if not SCHEMAS.is_dir():
        pytest.fail(f"the Power BI JSON schemas are missing: expected them in {SCHEMAS}")
    resources = []
    for path in SCHEMAS.rglob("*.json"):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resource = Resource.from_contents(contents, default_specification=DRAFT7)
        resources.append((PUBLISHED_URL + path.relative_to(SCHEMAS).as_posix(), resource))
        if contents.get("$id"):
            resources.append((contents["$id"], resource))
    return Registry().with_resources(resources)


@pytest.fixture(scope="module")
def model() -> powerbi.SemanticModel:
    return read_semantic_model(MODEL_DIR)


def _expected_schema(path: Path) -> str | None:
    if path.name in SCHEMA_BY_NAME:
        return SCHEMA_BY_NAME[path.name]
    return next((s for suffix, s in SCHEMA_BY_SUFFIX.items() if path.name.endswith(suffix)), None)


@pytest.mark.parametrize("path", JSON_FILES, ids=_rel)
def test_json_file_declares_and_validates_against_its_schema(path: Path, registry: Registry):
    schema_path = _expected_schema(path)
    assert schema_path, f"{_rel(path)}: no schema in ../shared/schemas/powerbi matches this file"
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document.get("$schema") == PUBLISHED_URL + schema_path
    schema = registry.contents(PUBLISHED_URL + schema_path)
    validator = jsonschema.Draft7Validator(schema, registry=registry)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]
    assert not errors, "\n".join(errors)


def test_project_layout():
    assert len(JSON_FILES) > 10
    pbip = json.loads((PROJECT / "CustomerSegmentation.pbip").read_text(encoding="utf-8"))
    assert [a["report"]["path"] for a in pbip["artifacts"]] == [REPORT_DIR.name]
    pbir = json.loads((REPORT_DIR / "definition.pbir").read_text(encoding="utf-8"))
    assert (REPORT_DIR / pbir["datasetReference"]["byPath"]["path"]).resolve() == MODEL_DIR
    for name in ("database", "model", "expressions", "relationships"):
        assert (MODEL_DIR / "definition" / f"{name}.tmdl").is_file()
    platforms = [json.loads((d / ".platform").read_text()) for d in (MODEL_DIR, REPORT_DIR)]
    assert [p["metadata"]["type"] for p in platforms] == ["SemanticModel", "Report"]
    unexpected = [
        _rel(p)
        for p in _project_files()
        if p not in JSON_FILES and p.suffix != ".tmdl" and p.name != ".gitignore"
    ]
    assert not unexpected, f"files the tests do not check: {unexpected}"


def test_pages_and_visual_folders_match_their_names():
    pages_dir = REPORT_DIR / "definition" / "pages"
    order = json.loads((pages_dir / "pages.json").read_text(encoding="utf-8"))["pageOrder"]
    assert len(set(order)) == len(order) == 11
    assert sorted(order) == sorted(p.name for p in pages_dir.iterdir() if p.is_dir())
    displayed = []
    for name in order:
        page = json.loads((pages_dir / name / "page.json").read_text(encoding="utf-8"))
        assert page["name"] == name
        displayed.append(page["displayName"])
        visuals = sorted((pages_dir / name / "visuals").glob("*/visual.json"))
        assert 2 <= len(visuals) <= 5, f"page {name} has {len(visuals)} visuals"
        for path in visuals:
            assert json.loads(path.read_text(encoding="utf-8"))["name"] == path.parent.name
    assert displayed == [
        "Overview",
        "Segments",
        "RFM",
        "Churn & Retention",
        "Churn by Segment",
        "Retention",
        "Segment Migration",
        "Customer Value",
        "Recommendations",
        "Campaign List",
        "How good are these numbers?",
    ]


# ---- the TMDL reader itself


def test_parse_tmdl_objects_properties_descriptions_and_multiline_expressions():
    text = (
        "/// Sales, one row per line.\n"
        "table 'Sales Lines'\n"
        "\tdataCategory: Time\n\n"
        "\t/// Net amount.\n"
        "\tmeasure 'It''s net' =\n"
        "\t\t\tVAR x = 1\n\n"
        "\t\t\tRETURN x\n"
        "\t\tformatString: #,0\n\n"
        "\tcolumn amount\n"
        "\t\tdataType: double\n"
        "\t\tisKey\n\n"
        "\tpartition 'Sales Lines' = m\n"
        "\t\tmode: import\n"
        "\t\tsource =\n"
        "\t\t\t\tlet\n"
        "\t\t\t\t\tx = 1\n"
        "\t\t\t\tin\n"
        "\t\t\t\t\tx\n"
    )
    [table] = parse_tmdl(text)
    assert (table.keyword, table.name, table.description) == (
        "table",
        "Sales Lines",
        "Sales, one row per line.",
    )
    assert table.prop("dataCategory") == "Time"
    [measure] = table.objects("measure")
    assert (measure.name, measure.description) == ("It's net", "Net amount.")
    assert measure.value == "VAR x = 1\n\nRETURN x"
    assert measure.prop("formatString") == "#,0"
    [column] = table.objects("column")
    assert (column.prop("dataType"), column.prop("isKey")) == ("double", "true")
    [partition] = table.objects("partition")
    assert partition.value == "m" and partition.prop("source") == "let\n\tx = 1\nin\n\tx"
    with pytest.raises(powerbi.TmdlError):
        parse_tmdl("table x\n    column y\n")


def test_dax_and_column_references():
    qualified, bare, tables = dax_references(
        "CALCULATE ( [Customers], 'dim customer'[recency_days] <= 90, fct[x] = \"[not a ref]\" )"
        " + COUNTROWS ( 'fct_orders' )"
    )
    assert qualified == {("dim customer", "recency_days"), ("fct", "x")}
    assert (bare, tables) == ({"Customers"}, {"fct_orders"})
    assert split_column_ref("'A b'.'c.d'") == ("A b", "c.d")
    assert split_column_ref("fct_orders.customer_id") == ("fct_orders", "customer_id")


# ---- the semantic model


def test_semantic_model_is_internally_consistent(model):
    assert set(model.tables) == EXPORTED | {"_Measures"}
    assert check_model(model) == []
    definition = MODEL_DIR / "definition"
    top = parse_tmdl((definition / "model.tmdl").read_text(encoding="utf-8"))
    assert {n.name for n in top if n.keyword == "ref table"} == set(model.tables)
    [database] = parse_tmdl((definition / "database.tmdl").read_text(encoding="utf-8"))
    assert database.keyword == "database" and int(database.prop("compatibilityLevel")) >= 1567


def test_every_exported_table_reads_parquet_from_the_export_folder_parameter(model):
    [parameter] = model.expressions.values()
    assert parameter.name == "ExportFolder"
    assert re.fullmatch(
        r'"C:\\custseg\\exports\\powerbi" meta \[IsParameterQuery=true, Type="Text", '
        r"IsParameterQueryRequired=true\]",
        parameter.value,
    )
    for table in EXPORTED:
        source = model.source(table)
        assert powerbi.parquet_file(source) == f"{table}.parquet"
        assert f'Parquet.Document(File.Contents(ExportFolder & "\\{table}.parquet"))' in source
        assert set(powerbi.m_column_types(source).values()) <= set(powerbi.M_TYPES)


def test_date_table_keys_and_relationships(model):
    assert model.tables["dim_date"].prop("dataCategory") == "Time"
    keys = {
        (t, c) for t in model.tables for c, col in model.columns(t).items() if col.prop("isKey")
    }
    assert keys == {
        ("dim_date", "date"),
        ("dim_customer", "customer_id"),
        ("dim_segment", "cluster_id"),
    }
    found = {
        (r.prop("fromColumn"), r.prop("toColumn"), r.prop("isActive") != "false")
        for r in model.relationships
    }
    assert found == RELATIONSHIPS
    assert all(
        r.prop("crossFilteringBehavior") in (None, "oneDirection") for r in model.relationships
    )


def test_measures_have_definitions_formats_and_descriptions(model):
    measures = model.measures("_Measures")
    assert set(measures) >= MEASURES
    assert model.measures() == measures, "measures live in _Measures only"
    assert "churn_probability] > 0.5" in measures["Churn Rate"].value


def _contract() -> dict[str, dict[str, str]]:
    """The dbt contracts of the marts (data_type per column): the export's declared schema."""
    models = yaml.safe_load(MARTS_YAML.read_text(encoding="utf-8"))["models"]
    return {
        m["name"]: {c["name"]: c["data_type"].upper() for c in m["columns"]}
        for m in models
        if m.get("config", {}).get("contract", {}).get("enforced")
    }


def test_model_types_fit_the_dbt_contracts_of_the_marts(model):
    contract = _contract()
    assert set(contract) >= EXPORTED, (
        f"marts without an enforced contract: {EXPORTED - set(contract)}"
    )
    assert check_export(model, contract) == []


# ---- the checkers report what is wrong (so the checks above can fail)

# file of the model, text there, what it becomes, the problems check_model reports
MODEL_BREAKS = [
    ("tables/fct_orders.tmdl", "column order_id\n\t\tdataType: string",
     "column order_id\n\t\tdataType: decimal",
     "fct_orders.order_id: dataType 'decimal' not allowed",
     "fct_orders.order_id: M type text does not fit decimal"),
    ("tables/fct_orders.tmdl", '& "\\fct_orders.parquet"', '& "\\fct_order.parquet"',
     "fct_orders: reads fct_order.parquet, not fct_orders.parquet"),
    ("tables/fct_orders.tmdl", '{"order_id", type text}', '{"order_id", type number}',
     "fct_orders.order_id: M type number does not fit string"),
    ("tables/fct_orders.tmdl", '{"order_id", "customer_id",', '{"customer_id",',
     "fct_orders: M lists ['customer_id', 'date_key',"),
    ("relationships.tmdl", "fromColumn: fct_orders.customer_id",
     "fromColumn: fct_orders.customer_key", "no column fct_orders.customer_key"),
    ("tables/_Measures.tmdl", "SUM ( 'fct_orders'[net_amount] )",
     "SUM ( 'fct_orders'[net_amt] )", "measure Revenue: unknown fct_orders[net_amt]"),
    ("tables/_Measures.tmdl",
     "USERELATIONSHIP ( 'fct_customer_snapshot'[cluster_id], 'dim_segment'[cluster_id] ),\n"
     "\t\t\t    CROSSFILTER ( 'dim_customer'[cluster_id], 'dim_segment'[cluster_id], NONE )\n"
     "\t\t\t)\n\t\tformatString: #,0\n",
     "USERELATIONSHIP ( 'fct_customer_snapshot'[date_key], 'dim_segment'[cluster_id] ),\n"
     "\t\t\t    CROSSFILTER ( 'dim_customer'[cluster_id], 'dim_segment'[cluster_id], NONE )\n"
     "\t\t\t)\n\t\tformatString: #,0\n",
     "measure Snapshot Customers: no relationship between [('fct_customer_snapshot', "
     "'date_key'), ('dim_segment', 'cluster_id')]"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("file", "old", "new", "problems"),
    [pytest.param(f, o, n, p, id=p[0]) for f, o, n, *p in MODEL_BREAKS],
)
def test_check_model_reports_a_broken_model(tmp_path, file, old, new, problems):
    copy = tmp_path / MODEL_DIR.name
    shutil.copytree(MODEL_DIR, copy)
    path = copy / "definition" / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in {file}"
    path.write_text(text.replace(old, new), encoding="utf-8")
    found = check_model(read_semantic_model(copy))
    assert len(found) == len(problems), found
    assert all(p in f for p, f in zip(problems, found, strict=True)), found


# what happens to the export's schema (the marts' dbt contracts), the one problem reported
EXPORT_BREAKS = [
    (lambda s: s.pop("fct_orders"), "fct_orders: fct_orders.parquet is not in the export"),
    (lambda s: s["fct_orders"].pop("order_id"), "fct_orders.order_id: not in fct_orders.parquet"),
    (lambda s: s["fct_orders"].update(net_amount="DECIMAL(18,2)"),
     "fct_orders.net_amount: DECIMAL(18,2) in fct_orders.parquet does not fit double"),
    (lambda s: s["fct_orders"].update(date_key="HUGEINT"),
     "fct_orders.date_key: HUGEINT in fct_orders.parquet does not fit int64"),
    (lambda s: s["fct_orders"].update(order_date="TIMESTAMP"),
     "fct_orders.order_date: TIMESTAMP in fct_orders.parquet does not fit M type date"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "problem"), EXPORT_BREAKS, ids=[p for _, p in EXPORT_BREAKS])
def test_check_export_reports_an_export_the_model_cannot_load(model, change, problem):
    schemas = _contract()
    assert check_export(model, schemas) == []
    change(schemas)
    assert check_export(model, schemas) == [problem]


# ---- the report


@pytest.mark.parametrize("path", VISUALS, ids=_rel)
def test_visual_uses_existing_fields_and_known_roles(path: Path, model):
    visual = json.loads(path.read_text(encoding="utf-8"))["visual"]
    required, allowed = ROLES[visual["visualType"]]
    state = visual["query"]["queryState"]
    assert required <= set(state) <= allowed
    for role in state.values():
        for projection in role["projections"]:
            [(_, entity, prop)] = visual_fields(projection["field"])
            assert projection["queryRef"] == f"{entity}.{prop}"
    fields = visual_fields(visual)
    assert fields
    for kind, entity, prop in fields:
        assert entity in model.tables, f"unknown table {entity}"
        if kind == "Measure":
            assert prop in model.measures(entity), f"unknown measure {entity}[{prop}]"
        else:
            column = model.columns(entity).get(prop)
            assert column is not None, f"unknown column {entity}[{prop}]"
            assert column.prop("isHidden") is None, f"hidden column {entity}[{prop}] in a visual"


# ---- a real export


def _export(workdir: Path) -> Path:
    folder = workdir / "exports" / "powerbi"
    assert folder.is_dir(), f"no export in {workdir}"
    return folder


def test_real_parquet_export_loads_into_the_model(published_demo, model):
    folder = _export(published_demo)
    schemas = {p.stem: powerbi.parquet_schema(p) for p in sorted(folder.glob("*.parquet"))}
    assert set(schemas) == EXPORTED, "every exported table is in the model, and only those"
    assert check_export(model, schemas) == []


def test_real_export_has_the_evaluation_table(published_demo, model):
    """The model's evaluation page reads every column of the exported mart."""
    schema = powerbi.parquet_schema(_export(published_demo) / "mart_model_evaluation.parquet")
    assert set(model.columns("mart_model_evaluation")) == set(schema)


def test_real_export_manifest_types_fit_the_model(published_demo, model):
    manifest = json.loads((_export(published_demo) / "manifest.json").read_text(encoding="utf-8"))
    schemas = {t["name"]: {c["name"]: c["type"] for c in t["columns"]} for t in manifest["tables"]}
    assert check_export(model, schemas) == []
