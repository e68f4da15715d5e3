"""Read the Power BI project in ``powerbi/`` and check it against an export's schema.

A parser for the subset of TMDL the project writes (tables, columns, measures, M
partitions, relationships, expressions), the model fields each PBIR visual uses, and
checks that return a list of problems (empty = consistent). Only the tests use it
(tests/test_powerbi_project.py), so it lives with them rather than with the export.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# TMDL dataType -> the DuckDB export types it can load (docs/powerbi.md, "Types").
TMDL_TYPES = {
    "string": {"VARCHAR"},
    "int64": {"INTEGER", "BIGINT"},
    "double": {"DOUBLE"},
    "boolean": {"BOOLEAN"},
    "dateTime": {"DATE", "TIMESTAMP"},
}
# Power Query type in Table.TransformColumnTypes -> the DuckDB export types it fits.
M_TYPES = {
    "type text": {"VARCHAR"},
    "Int64.Type": {"INTEGER", "BIGINT"},
    "type number": {"DOUBLE"},
    "type logical": {"BOOLEAN"},
    "type date": {"DATE"},
    "type datetime": {"TIMESTAMP"},
}
OBJECTS = {"database", "model", "table", "column", "measure", "partition", "relationship"}
OBJECTS |= {"expression", "annotation", "ref", "hierarchy", "level", "queryGroup"}


class TmdlError(ValueError):
    pass


@dataclass
class Node:
    """One TMDL line: an object (``column x``) or a property (``dataType: int64``)."""

    keyword: str
    name: str | None = None
    value: str | None = None
    description: str = ""
    children: list[Node] = field(default_factory=list)

    def prop(self, key: str) -> str | None:
        return next((c.value for c in self.children if c.keyword == key and c.name is None), None)

    def objects(self, keyword: str) -> list[Node]:
        return [c for c in self.children if c.keyword == keyword and c.name is not None]


def _split_name(text: str) -> tuple[str, str]:
    """``'Avg Order' = x`` -> ("Avg Order", "= x"); unquoted names end at a space or ``.``."""
    if text.startswith("'"):
        i = 1
        while i < len(text):
            if text[i] == "'" and text[i + 1 : i + 2] == "'":
                i += 2
            elif text[i] == "'":
                return text[1:i].replace("''", "'"), text[i + 1 :].strip()
            else:
                i += 1
        raise TmdlError(f"unclosed quote in {text!r}")
    m = re.match(r"[^\s=.]+", text)
    return (m.group(0), text[m.end() :].strip()) if m else ("", text)


def _parse_line(line: str) -> tuple[Node, bool]:
    """The node and whether the line declares an object (its properties sit one level deeper)."""
    word, _, rest = line.partition(" ")
    if word == "ref":  # ref table x: the model's table order
        kind, _, rest = rest.partition(" ")
        return Node(f"ref {kind}", _split_name(rest.strip())[0]), True
    if word in OBJECTS:
        name, rest = _split_name(rest.strip()) if rest.strip() else (None, "")
        value = rest[1:].strip() if rest.startswith("=") else None
        return Node(word, name or None, value), True
    m = re.match(r"(\w+)\s*([:=])\s*(.*)$", line)
    if m:
        return Node(m.group(1), value=m.group(3)), False
    if re.fullmatch(r"\w+", line):
        return Node(line, value="true"), False  # a flag such as isKey
    raise TmdlError(f"unsupported TMDL line: {line!r}")


def parse_tmdl(text: str) -> list[Node]:
    """Top-level nodes of one TMDL file; indentation must be tabs (as Desktop writes)."""
    lines = text.splitlines()
    root = Node("")
    stack: list[tuple[int, Node]] = [(-1, root)]
    description: list[str] = []
    i = 0
    while i < len(lines):
        raw, i = lines[i], i + 1
        if not raw.strip():
            continue
        indent = _indent(raw)
        if raw[indent] == " ":
            raise TmdlError(f"indentation must be tabs: {raw!r}")
        line = raw.strip()
        if line.startswith("///"):
            description.append(line[3:].strip())
            continue
        if line.startswith("```"):
            raise TmdlError("backtick-enclosed expressions are not supported by this reader")
        node, is_object = _parse_line(line)
        node.description, description = " ".join(description), []
        if node.value == "" and line.endswith("="):
            # A multi-line expression: the following lines deeper than the property level.
            level, block = indent + 1 if is_object else indent, []
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > level):
                block.append(lines[i])
                i += 1
            depth = min((_indent(b) for b in block if b.strip()), default=0)
            node.value = "\n".join(b[depth:].rstrip() for b in block).strip("\n")
        while stack[-1][0] >= indent:
            stack.pop()
        stack[-1][1].children.append(node)
        stack.append((indent, node))
    return root.children


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip("\t"))


@dataclass(frozen=True)
class SemanticModel:
    tables: dict[str, Node]
    relationships: list[Node]
    expressions: dict[str, Node]
    files: dict[str, str]  # table name -> tables/<file>.tmdl stem

    def columns(self, table: str) -> dict[str, Node]:
        return {c.name: c for c in self.tables[table].objects("column")}

    def measures(self, table: str | None = None) -> dict[str, Node]:
        tables = [table] if table else list(self.tables)
        return {m.name: m for t in tables for m in self.tables[t].objects("measure")}

    def source(self, table: str) -> str:
        """The M (or DAX) expression of the table's only partition; "" without exactly one."""
        parts = self.tables[table].objects("partition")
        return (parts[0].prop("source") or "") if len(parts) == 1 else ""


def read_semantic_model(folder: str | Path) -> SemanticModel:
    definition = Path(folder) / "definition"
    tables, files = {}, {}
    for path in sorted((definition / "tables").glob("*.tmdl")):
        for node in parse_tmdl(path.read_text(encoding="utf-8-sig")):
            if node.keyword == "table":
                tables[node.name], files[node.name] = node, path.stem
    relationships = parse_tmdl((definition / "relationships.tmdl").read_text(encoding="utf-8-sig"))
    expressions = parse_tmdl((definition / "expressions.tmdl").read_text(encoding="utf-8-sig"))
    return SemanticModel(
        tables=tables,
        relationships=[r for r in relationships if r.keyword == "relationship"],
        expressions={e.name: e for e in expressions if e.keyword == "expression"},
        files=files,
    )


def parquet_file(m_source: str) -> str | None:
    """The file an M partition reads with Parquet.Document(File.Contents(ExportFolder & ...))."""
    m = re.search(
        r'Parquet\.Document\(\s*File\.Contents\(\s*ExportFolder\s*&\s*"\\([^"]+)"', m_source
    )
    return m.group(1) if m else None


def m_selected_columns(m_source: str) -> list[str]:
    m = re.search(r"Table\.SelectColumns\(\s*\w+\s*,\s*\{([^}]*)\}", m_source)
    return re.findall(r'"([^"]+)"', m.group(1)) if m else []


def m_column_types(m_source: str) -> dict[str, str]:
    m = re.search(r"Table\.TransformColumnTypes\(\s*\w+\s*,\s*\{(.*)\}\s*\)", m_source, re.S)
    pairs = re.findall(r'\{\s*"([^"]+)"\s*,\s*(type \w+|Int64\.Type)\s*\}', m.group(1) if m else "")
    return dict(pairs)


def split_column_ref(ref: str) -> tuple[str, str]:
    """``fct_orders.customer_id`` or ``'A B'.'c d'`` -> (table, column)."""
    table, rest = _split_name(ref.strip())
    if not rest.startswith("."):
        raise TmdlError(f"expected Table.Column, got {ref!r}")
    column, rest = _split_name(rest[1:])
    if rest:
        raise TmdlError(f"unexpected text after {ref!r}")
    return table, column


_DAX_NOISE = re.compile(r'"(?:[^"]|"")*"|//[^\n]*|--[^\n]*|/\*.*?\*/', re.S)
# 'Quoted table' with an optional [name], Table[name], or a bare [name], scanned left to right.
_DAX_TOKEN = re.compile(r"'((?:[^']|'')+)'(\[[^\]]+\])?|\b([A-Za-z_]\w*)(\[[^\]]+\])|(\[[^\]]+\])")


def _dax_tokens(expression: str) -> list[tuple[str | None, str | None]]:
    """(table, name) per reference: (t, None) a table, (t, n) a column or measure, (None, n) bare."""
    tokens = []
    for m in _DAX_TOKEN.finditer(_DAX_NOISE.sub('""', expression)):
        table = m.group(1).replace("''", "'") if m.group(1) else m.group(3)
        bracket = m.group(2) or m.group(4) or m.group(5)
        tokens.append((table, bracket[1:-1] if bracket else None))
    return tokens


def dax_references(expression: str) -> tuple[set[tuple[str, str]], set[str], set[str]]:
    """(qualified 'Table'[name] refs, bare [name] refs, 'Table' refs) of a DAX expression."""
    tokens = _dax_tokens(expression)
    qualified = {(t, n) for t, n in tokens if t and n}
    return qualified, {n for t, n in tokens if not t}, {t for t, n in tokens if t and not n}


def dax_relationship_refs(expression: str) -> list[list[tuple[str, str]]]:
    """The column arguments of every USERELATIONSHIP / CROSSFILTER call (two when well formed)."""
    text = _DAX_NOISE.sub('""', expression)
    calls = []
    for m in re.finditer(r"\b(?:USERELATIONSHIP|CROSSFILTER)\s*\(", text, re.I):
        calls.append([(t, n) for t, n in _dax_tokens(text[m.end() :])[:2] if t and n])
    return calls


def visual_fields(obj: object) -> list[tuple[str, str, str]]:
    """Every (Column | Measure, entity, property) a PBIR visual.json refers to."""
    found = []
    if isinstance(obj, dict):
        for kind in ("Column", "Measure"):
            ref = obj.get(kind)
            if isinstance(ref, dict) and "Property" in ref:
                source = ref.get("Expression", {}).get("SourceRef", {})
                found.append((kind, source.get("Entity", "<alias>"), ref["Property"]))
        for value in obj.values():
            found += visual_fields(value)
    elif isinstance(obj, list):
        for value in obj:
            found += visual_fields(value)
    return found


def check_model(model: SemanticModel) -> list[str]:
    """Problems inside the model: file names, types, M partitions, relationships, DAX refs."""
    problems = [p for table in model.tables for p in _check_table(model, table)]
    pairs = set()
    for rel in model.relationships:
        ends = [split_column_ref(rel.prop(key) or "") for key in ("fromColumn", "toColumn")]
        pairs.add(frozenset(ends))
        for t, c in ends:
            if t not in model.tables or c not in model.columns(t):
                problems.append(f"relationship {rel.name}: no column {t}.{c}")
    for name, measure in model.measures().items():
        problems += [f"measure {name}: {p}" for p in _check_measure(model, measure, pairs)]
    return problems


def _check_table(model: SemanticModel, table: str) -> list[str]:
    problems = []
    if model.files[table] != table:
        problems.append(f"table {table} is declared in tables/{model.files[table]}.tmdl")
    columns = model.columns(table)
    for name, col in columns.items():
        if col.prop("dataType") not in TMDL_TYPES:
            problems.append(f"{table}.{name}: dataType {col.prop('dataType')!r} not allowed")
        if col.prop("sortByColumn") and col.prop("sortByColumn") not in columns:
            problems.append(f"{table}.{name}: sortByColumn {col.prop('sortByColumn')} missing")
    source = model.source(table)
    file = parquet_file(source)
    if file is None:  # a measure table: no data of its own
        if any(col.prop("isHidden") != "true" for col in columns.values()):
            problems.append(f"{table}: reads no Parquet file, so only hidden columns allowed")
        return problems
    if file != f"{table}.parquet":
        problems.append(f"{table}: reads {file}, not {table}.parquet")
    by_source = {col.prop("sourceColumn"): col for col in columns.values()}
    types = m_column_types(source)
    for listed in (m_selected_columns(source), list(types)):
        if sorted(listed) != sorted(by_source):
            problems.append(f"{table}: M lists {sorted(listed)}, TMDL has {sorted(by_source)}")
    for name, col in by_source.items():
        data_type, m_type = col.prop("dataType"), types.get(name)
        if m_type and not M_TYPES.get(m_type, set()) & TMDL_TYPES.get(data_type, set()):
            problems.append(f"{table}.{name}: M {m_type} does not fit {data_type}")
    return problems


def _check_measure(model: SemanticModel, measure: Node, pairs: set[frozenset]) -> list[str]:
    problems = []
    if not (measure.value and measure.description and measure.prop("formatString")):
        problems.append("needs an expression, a description and a formatString")
    qualified, bare, tables = dax_references(measure.value or "")
    for t, ref in sorted(qualified):
        if t not in model.tables or (ref not in model.columns(t) and ref not in model.measures(t)):
            problems.append(f"unknown {t}[{ref}]")
    problems += [f"unknown measure [{b}]" for b in sorted(bare - set(model.measures()))]
    problems += [f"unknown table '{t}'" for t in sorted(tables - set(model.tables))]
    for call in dax_relationship_refs(measure.value or ""):
        if len(call) != 2 or frozenset(call) not in pairs:
            problems.append(f"no relationship between {call}")
    return problems


def check_export(model: SemanticModel, schemas: dict[str, dict[str, str]]) -> list[str]:
    """Problems loading the export (table -> column -> DuckDB type) into the model."""
    problems = []
    for table in model.tables:
        file = parquet_file(model.source(table))
        if file is None:
            continue
        schema = schemas.get(file.removesuffix(".parquet"))
        if schema is None:
            problems.append(f"{table}: {file} is not in the export")
            continue
        types = m_column_types(model.source(table))
        for col in model.columns(table).values():
            source, data_type = col.prop("sourceColumn"), col.prop("dataType")
            duck = schema.get(source)
            if duck is None:
                problems.append(f"{table}.{source}: not in {file}")
            elif duck not in TMDL_TYPES.get(data_type, set()):
                problems.append(f"{table}.{source}: {duck} in {file} does not fit {data_type}")
            elif duck not in M_TYPES.get(types.get(source), set()):
                problems.append(
                    f"{table}.{source}: {duck} in {file} does not fit M {types.get(source)}"
                )
    return problems


def parquet_schema(path: str | Path) -> dict[str, str]:
    """Column -> DuckDB type name of a Parquet file (other types keep their Arrow name)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def duckdb_type(t: pa.DataType) -> str:
        if pa.types.is_timestamp(t):
            return "TIMESTAMP" if t.tz is None else f"TIMESTAMP WITH TIME ZONE ({t})"
        names = {pa.string(): "VARCHAR", pa.large_string(): "VARCHAR", pa.int32(): "INTEGER"}
        names |= {pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}
        return names.get(t) or ("DATE" if pa.types.is_date32(t) else str(t))

    return {f.name: duckdb_type(f.type) for f in pq.read_schema(path)}
