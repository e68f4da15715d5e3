"""TMDL text for the objects the generator writes: tables, columns, measures, partitions,
relationships and the model's table list.

Tabs for indentation and the property order Power BI Desktop writes, so a model saved by
Desktop and one written here differ only where the content does.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

# DuckDB type (the dbt contract's data_type) -> (TMDL dataType, Power Query type).
TYPES = {
    "VARCHAR": ("string", "type text"),
    "INTEGER": ("int64", "Int64.Type"),
    "BIGINT": ("int64", "Int64.Type"),
    "DOUBLE": ("double", "type number"),
    "BOOLEAN": ("boolean", "type logical"),
    "DATE": ("dateTime", "type date"),
    "TIMESTAMP": ("dateTime", "type datetime"),
}
_RELATIONSHIPS = uuid.UUID("6f3e2a9c-41d5-5b0e-9a57-3c1f0e8d2b64")  # namespace of their ids


@dataclass(frozen=True)
class Column:
    name: str
    duckdb_type: str
    description: str
    format: str | None = None
    hidden: bool = False
    key: bool = False
    sort_by: str | None = None


@dataclass(frozen=True)
class Measure:
    name: str
    expression: str
    description: str
    format: str
    folder: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: list[Column] = field(default_factory=list)
    measures: list[Measure] = field(default_factory=list)
    data_category: str | None = None


@dataclass(frozen=True)
class Relationship:
    from_column: str  # table.column, the many side
    to_column: str  # table.column, the one side
    active: bool = True

    @property
    def name(self) -> str:
        """A stable id: the same two columns always give the same name."""
        return str(uuid.uuid5(_RELATIONSHIPS, f"{self.from_column}->{self.to_column}"))


def quote(name: str) -> str:
    """A TMDL / DAX object name: bare when it is a plain identifier, else 'quoted'."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return name
    return "'" + name.replace("'", "''") + "'"


def _description(text: str, indent: str) -> list[str]:
    return [f"{indent}/// {line}" for line in text.splitlines() if line.strip()]


def _expression(head: str, expression: str, indent: str) -> list[str]:
    """``head = expr`` on one line, or ``head =`` and the lines two levels deeper."""
    lines = expression.strip().splitlines()
    if len(lines) == 1:
        return [f"{indent}{head} = {lines[0]}"]
    deeper = indent + "\t\t"
    return [f"{indent}{head} ="] + [f"{deeper}{line}" if line.strip() else "" for line in lines]


def column(col: Column) -> list[str]:
    data_type, _ = TYPES[col.duckdb_type]
    out = _description(col.description, "\t") + [f"\tcolumn {quote(col.name)}"]
    out.append(f"\t\tdataType: {data_type}")
    out += ["\t\tisHidden"] if col.hidden else []
    out += ["\t\tisKey"] if col.key else []
    out += [f"\t\tformatString: {col.format}"] if col.format else []
    out += ["\t\tsummarizeBy: none", f"\t\tsourceColumn: {col.name}"]
    out += [f"\t\tsortByColumn: {quote(col.sort_by)}"] if col.sort_by else []
    if col.duckdb_type == "DATE":
        out += ["", "\t\tannotation UnderlyingDateTimeDataType = Date"]
    return out


def measure(m: Measure) -> list[str]:
    out = _description(m.description, "\t")
    out += _expression(f"measure {quote(m.name)}", m.expression, "\t")
    out.append(f"\t\tformatString: {m.format}")
    out += [f"\t\tdisplayFolder: {m.folder}"] if m.folder else []
    return out


def parquet_partition(table: str, columns: list[Column]) -> list[str]:
    """The M partition: read <table>.parquet from ExportFolder, select and type the columns."""
    names = ", ".join(f'"{c.name}"' for c in columns)
    types = [f'{{"{c.name}", {TYPES[c.duckdb_type][1]}}}' for c in columns]
    m = [
        "let",
        f'\tSource = Parquet.Document(File.Contents(ExportFolder & "\\{table}.parquet")),',
        f"\tSelected = Table.SelectColumns(Source, {{{names}}}),",
        "\tTyped = Table.TransformColumnTypes(Selected, {",
        *[f"\t\t{t}," for t in types[:-1]],
        f"\t\t{types[-1]}",
        "\t})",
        "in",
        "\tTyped",
    ]
    return [f"\tpartition {quote(table)} = m", "\t\tmode: import", "\t\tsource ="] + [
        f"\t\t\t\t{line}" for line in m
    ]


def table(t: Table, partition: list[str]) -> str:
    out = _description(t.description, "") + [f"table {quote(t.name)}"]
    out += [f"\tdataCategory: {t.data_category}"] if t.data_category else []
    for block in [measure(m) for m in t.measures] + [column(c) for c in t.columns] + [partition]:
        out += [""] + block
    return "\n".join(out) + "\n"


def relationships(rels: list[Relationship]) -> str:
    blocks = []
    for r in rels:
        lines = [f"relationship {r.name}"]
        lines += [] if r.active else ["\tisActive: false"]
        lines += [f"\tfromColumn: {_ref(r.from_column)}", f"\ttoColumn: {_ref(r.to_column)}"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _ref(column_ref: str) -> str:
    table, column_name = column_ref.split(".", 1)
    return f"{quote(table)}.{quote(column_name)}"


def model(tables: list[str], queries: list[str]) -> str:
    """model.tmdl: settings, the query order (the parameter first) and the table list."""
    order = ",".join(f'"{q}"' for q in queries)
    lines = [
        "model Model",
        "\tculture: en-US",
        "\tdefaultPowerBIDataSourceVersion: powerBI_V3",
        "\tdiscourageImplicitMeasures",
        "\tsourceQueryCulture: en-US",
        "",
        "annotation __PBI_TimeIntelligenceEnabled = 0",
        "",
        f"annotation PBI_QueryOrder = [{order}]",
        "",
    ]
    return "\n".join(lines + [f"ref table {quote(t)}" for t in tables]) + "\n"
