"""The Power BI semantic model from the dbt marts and ``model.yml``.

dbt gives the tables, columns, types and descriptions (:mod:`..descriptions`); ``model.yml``
the model's own choices (keys, hidden columns, formats, columns left out and why,
relationships, measures); the project config the currency of money formats. The result
is the TMDL text of every generated file, by path under the ``.SemanticModel`` folder.
``expressions.tmdl`` (the ``ExportFolder`` parameter Desktop rewrites) and
``database.tmdl`` stay hand-written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from orchestration.io.config import CurrencyConfig
from orchestration.publish.descriptions import TableDoc
from orchestration.publish.powerbi import tmdl

SPEC = Path(__file__).with_name("model.yml")
MEASURES = "_Measures"
PARAMETER = "ExportFolder"
# Format kinds a column may be listed under in model.yml (money: the currency's).
KINDS = ("count", "decimal", "plain", "percent", "metric", "date", "month", "datetime", "money")
DEFAULT_KIND = {"INTEGER": "count", "BIGINT": "count", "DOUBLE": "decimal"}
DEFAULT_KIND |= {"DATE": "date", "TIMESTAMP": "datetime"}


class SpecError(ValueError):
    """model.yml and the dbt marts disagree (a name that does not exist, a missing text)."""


@dataclass(frozen=True)
class Model:
    tables: list[tmdl.Table]
    relationships: list[tmdl.Relationship]
    left_out: dict[str, dict[str, str]]  # table -> column -> reason

    def column_status(self, table: str, column: str) -> str:
        """'visible', 'hidden' or 'left out: <reason>' (for the glossary)."""
        if column in self.left_out.get(table, {}):
            return "left out: " + " ".join(self.left_out[table][column].split())
        t = next(t for t in self.tables if t.name == table)
        return "hidden" if next(c for c in t.columns if c.name == column).hidden else "visible"


def load_spec(path: str | Path = SPEC) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def build(docs: dict[str, TableDoc], currency: CurrencyConfig, spec: dict | None = None) -> Model:
    """The model: every mart of ``docs`` (dbt, in model.yml's order) and the measures table."""
    spec = spec if spec is not None else load_spec()
    formats = {**spec["formats"], "money": currency.powerbi_format()}
    tables_spec = spec["tables"]
    if set(tables_spec) != set(docs):
        raise SpecError(
            f"model.yml lists {sorted(tables_spec)}, the dbt marts are {sorted(docs)}: "
            "every exported mart is in the model"
        )
    tables = [_table(docs[name], tables_spec[name] or {}, formats) for name in tables_spec]
    tables.insert(0, _measures_table(spec, formats))
    relationships = [
        tmdl.Relationship(r["from"], r["to"], r.get("active", True)) for r in spec["relationships"]
    ]
    columns = {f"{t.name}.{c.name}" for t in tables for c in t.columns}
    for r in relationships:
        unknown = {r.from_column, r.to_column} - columns
        if unknown:
            raise SpecError(f"relationship {r.from_column} -> {r.to_column}: no {sorted(unknown)}")
    left_out = {name: dict((s or {}).get("leave_out", {})) for name, s in tables_spec.items()}
    return Model(tables, relationships, left_out)


def _table(doc: TableDoc, spec: dict, formats: dict[str, str]) -> tmdl.Table:
    known = set(doc.columns)
    kind_of = {}
    for kind in KINDS:
        for name in spec.get(kind, []):
            kind_of[name] = kind
    left_out = spec.get("leave_out", {})
    named = set(kind_of) | set(spec.get("hidden", [])) | set(spec.get("sort_by", {}))
    named |= set(spec.get("sort_by", {}).values()) | set(left_out) | {spec.get("key")} - {None}
    if named - known:
        raise SpecError(f"model.yml, {doc.name}: no column(s) {sorted(named - known)} in dbt")
    if not doc.description:
        raise SpecError(f"{doc.name}: no description in dbt")
    columns = []
    for name, text in doc.columns.items():
        if name in left_out:
            if not str(left_out[name]).strip():
                raise SpecError(f"model.yml, {doc.name}.{name}: left out without a reason")
            continue
        if not text:
            raise SpecError(f"{doc.name}.{name}: no description in dbt")
        duck = doc.types[name]
        if duck not in tmdl.TYPES:
            raise SpecError(f"{doc.name}.{name}: type {duck!r} has no Power BI type")
        kind = kind_of.get(name, DEFAULT_KIND.get(duck))
        columns.append(
            tmdl.Column(
                name,
                duck,
                text,
                format=formats[kind] if kind else None,
                hidden=name in spec.get("hidden", []),
                key=name == spec.get("key"),
                sort_by=spec.get("sort_by", {}).get(name),
            )
        )
    return tmdl.Table(doc.name, doc.description, columns, data_category=spec.get("data_category"))


def _measures_table(spec: dict, formats: dict[str, str]) -> tmdl.Table:
    measures = []
    for m in spec["measures"]:
        if m["format"] not in KINDS:
            raise SpecError(f"measure {m['name']}: unknown format {m['format']!r}")
        measures.append(
            tmdl.Measure(
                m["name"],
                m["expression"],
                " ".join(m["description"].split()),
                formats[m["format"]],
                m.get("folder"),
            )
        )
    placeholder = tmdl.Column("Placeholder", "BIGINT", "", format="0", hidden=True)
    return tmdl.Table(MEASURES, " ".join(spec["measures_table"].split()), [placeholder], measures)


def render(model: Model) -> dict[str, str]:
    """File text by path relative to the ``.SemanticModel`` folder."""
    files = {}
    for t in model.tables:
        if t.name == MEASURES:
            partition = [
                f"\tpartition {MEASURES} = m",
                "\t\tmode: import",
                "\t\tsource = #table(type table [Placeholder = Int64.Type], {})",
            ]
        else:
            partition = tmdl.parquet_partition(t.name, t.columns)
        files[f"definition/tables/{t.name}.tmdl"] = tmdl.table(t, partition)
    files["definition/relationships.tmdl"] = tmdl.relationships(model.relationships)
    names = [t.name for t in model.tables]
    queries = [PARAMETER, *[n for n in names if n != MEASURES], MEASURES]
    files["definition/model.tmdl"] = tmdl.model(names, queries)
    return files
