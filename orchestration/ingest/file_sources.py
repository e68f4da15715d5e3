"""Read one source file into the temp view ``src`` for the row rules (value_rules.py).

``src`` has the file's columns (text formats: all VARCHAR) and ``_source_row``, the 1-based
data row. Records set aside for their structure before any value is read (a CSV line
with the wrong number of fields or broken quoting, csv_records.py; a whitespace line with
the wrong number of fields) are in the temp table ``_rejects`` (:data:`REJECTS_DDL`) with
the rule and the physical line. A file that cannot be read at all raises
:class:`IngestError` naming the file (and line, byte or column where there is one).
"""

from __future__ import annotations

import codecs
import glob
from pathlib import Path

import duckdb
import pyarrow as pa

from orchestration.ingest.csv_files import scan, write_records
from orchestration.ingest.csv_records import CsvStructureError, Layout, serialize
from orchestration.ingest.types import IngestError
from orchestration.io.config import SourceConfig
from orchestration.io.sql import ident, literal

REJECTS_DDL = "row BIGINT, line BIGINT, reason VARCHAR, record VARCHAR"
# Encodings DuckDB reads itself (Python codec names); others are converted to UTF-8 first.
DUCKDB_ENCODINGS = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "iso8859-1": "latin-1"}


def resolve_files(cfg: SourceConfig, root: Path, source: str) -> list[Path]:
    patterns = [cfg.path] if isinstance(cfg.path, str) else list(cfg.path)
    files: list[Path] = []
    for pattern in patterns:
        full = Path(pattern) if Path(pattern).is_absolute() else root / pattern
        matches = sorted(Path(p) for p in glob.glob(str(full)))
        if not matches:
            raise IngestError(f"{source}: no file matches {full}")
        files.extend(matches)
    return files


def infer_format(cfg: SourceConfig, path: Path) -> str:
    if cfg.format:
        return cfg.format
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".txt", ".dat"):
        return "whitespace"
    raise IngestError(f"{path}: cannot infer the format from the extension; set `format:`")


def register_source(
    con: duckdb.DuckDBPyConnection, cfg: SourceConfig, path: Path, tmp: Path
) -> None:
    """Create temp view ``src`` and temp table ``_rejects`` for ``path``; ``tmp`` is a
    folder for working copies that lives until the rows are loaded."""
    fmt = infer_format(cfg, path)
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: the file is empty (0 bytes)")
    con.execute(f"create or replace temp table _rejects ({REJECTS_DDL})")
    try:
        expected = _csv_view(con, cfg, path, tmp) if fmt == "csv" else None
        if fmt != "csv":
            _create_src_view(con, cfg, path, fmt)
        (rows,) = con.execute("select count(*) from src").fetchone()
    except duckdb.Error as exc:
        raise read_error(path, fmt, cfg, exc) from exc
    if expected is not None and rows != expected:
        raise IngestError(
            f"{path}: DuckDB read {rows:,} records where the structure check found "
            f"{expected:,}; nothing was loaded (please report this file)"
        )


def _csv_view(con: duckdb.DuckDBPyConnection, cfg: SourceConfig, path: Path, tmp: Path) -> int:
    """``src`` over the records of a CSV file that keep csv_records.py's rules; returns
    how many there are."""
    try:
        name = codecs.lookup(cfg.encoding).name
    except LookupError:
        raise IngestError(f"{path}: unknown encoding {cfg.encoding!r} (`encoding:`)") from None
    readable, encoding = path, DUCKDB_ENCODINGS.get(name)
    if encoding is None:
        readable, encoding = _to_utf8(path, cfg.encoding, tmp / "utf8.csv"), "utf-8"
    try:
        layout = scan(readable, cfg.delimiter, cfg.quote, encoding, cfg.header, cfg.max_line_size)
    except CsvStructureError as exc:
        raise IngestError(f"{path}: {exc}") from None
    if not layout.as_is:
        write_records(readable, layout, cfg.quote, encoding, tmp / "records.csv")
        readable = tmp / "records.csv"
    names = _header_names(con, layout, cfg, encoding, tmp) if cfg.header else None
    names = names or [f"column{i}" for i in range(layout.fields)]
    _store_rejects(con, layout, path, cfg.encoding, encoding)
    q = literal(cfg.quote)
    columns = ", ".join(f"{literal(n)}: 'VARCHAR'" for n in names)
    opts = [
        f"columns = {{{columns}}}", "auto_detect = false", f"header = {str(cfg.header).lower()}",
        f"delim = {literal(layout.delimiter.decode(encoding))}", f"quote = {q}", f"escape = {q}",
        f"encoding = {literal(encoding)}", "strict_mode = false", "parallel = false",
        # Records are checked against the limit already; rewritten ones may be longer.
        f"max_line_size = {2 * int(cfg.max_line_size) + 1024}",
    ]  # fmt: skip
    rows = f"select *, row_number() over () as _csv_n from read_csv({literal(str(readable))}, {', '.join(opts)})"
    if not layout.rejected:
        body = f"select * exclude (_csv_n), _csv_n as _source_row from ({rows})"
    else:
        # Data row of the n-th record read = n + the rejected rows before it: with rejected
        # row r_j (j = 1, 2, ...) the j-th, n comes after it when n > r_j - j.
        gaps = pa.table(
            {
                "g": [r.row - j for j, r in enumerate(layout.rejected, start=1)],
                "j": list(range(1, len(layout.rejected) + 1)),
            }
        )
        con.register("_csv_gaps_arrow", gaps)
        con.execute(
            "create or replace temp table _csv_gaps as "
            "select g, max(j) as j from _csv_gaps_arrow group by g"
        )
        con.unregister("_csv_gaps_arrow")
        body = (
            f"select s.* exclude (_csv_n), s._csv_n + coalesce(g.j, 0) as _source_row "
            f"from ({rows}) s asof left join _csv_gaps g on s._csv_n > g.g"
        )
    con.execute(f"create or replace temp view src as {body}")
    return layout.rows - len(layout.rejected)


def _header_names(con, layout: Layout, cfg: SourceConfig, encoding: str, tmp: Path) -> list[str]:
    """The column names DuckDB gives the header (empty ones, duplicates)."""
    head = tmp / "header.csv"
    quote = cfg.quote.encode(encoding)
    head.write_bytes(serialize(layout.header, layout.delimiter, quote, layout.eol))
    q = literal(cfg.quote)
    rel = con.execute(
        f"select * from read_csv({literal(str(head))}, header = true, all_varchar = true, "
        f"delim = {literal(layout.delimiter.decode(encoding))}, quote = {q}, escape = {q}, "
        f"encoding = {literal(encoding)}, comment = '', strict_mode = false) limit 0"
    )
    names = [d[0] for d in rel.description]
    if len(names) != layout.fields:
        raise IngestError(f"{head}: DuckDB reads {len(names)} header names, not {layout.fields}")
    return names


def _store_rejects(con, layout: Layout, path: Path, declared: str, encoding: str) -> None:
    if not layout.rejected:
        return
    try:
        text = [r.record.decode(encoding) for r in layout.rejected]
    except UnicodeDecodeError:
        raise IngestError(_invalid_bytes_message(path, declared)) from None
    table = pa.table(
        {
            "row": [r.row for r in layout.rejected],
            "line": [r.line for r in layout.rejected],
            "reason": [r.reason for r in layout.rejected],
            "record": text,
        }
    )
    con.register("_rejects_arrow", table)
    con.execute("insert into _rejects select * from _rejects_arrow")
    con.unregister("_rejects_arrow")


def _to_utf8(path: Path, encoding: str, out: Path) -> Path:
    """A UTF-8 copy of a file in an encoding DuckDB does not read (UTF-16, cp1252 ...)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = 0
    with path.open("rb") as src, out.open("wb") as dst:
        while True:
            chunk = src.read(1 << 22)
            try:
                dst.write(decoder.decode(chunk, final=not chunk).encode("utf-8"))
            except UnicodeDecodeError as err:
                raise IngestError(
                    f"{path}: not valid {encoding} at byte offset {offset + err.start}; "
                    "set `encoding:` to the file's encoding (e.g. latin-1)"
                ) from None
            if not chunk:
                return out
            offset += len(chunk)


def read_error(path: Path, fmt: str, cfg: SourceConfig, exc: duckdb.Error) -> IngestError:
    """An IngestError naming the file and, where it can be found, the line."""
    text = str(exc)
    if "invalid unicode" in text.lower():
        return IngestError(_invalid_bytes_message(path, cfg.encoding))
    if "Maximum line size" in text:
        where = _find_long_line(path, cfg.max_line_size)
        return IngestError(
            f"{path}: a line is longer than max_line_size ({cfg.max_line_size:,} bytes){where}; "
            f"raise `max_line_size:` if the line is real"
        )
    first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return IngestError(f"{path}: cannot be read as {fmt}: {first_line[:300]}")


def _invalid_bytes_message(path: Path, encoding: str) -> str:
    return (
        f"{path}: not valid {encoding}{_find_invalid_bytes(path, encoding)}; "
        f"set `encoding:` to the file's encoding (e.g. latin-1)"
    )


def _find_invalid_bytes(path: Path, encoding: str) -> str:
    """' at line L (byte offset B)' for the first undecodable byte, '' when not found."""
    try:
        decoder_name = codecs.lookup(encoding).name
    except LookupError:
        return ""
    if decoder_name not in ("utf-8", "utf-8-sig"):
        return ""  # multi-byte line breaks (utf-16): leave the position to DuckDB's message
    offset = 0
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                bad = raw[err.start : err.start + 4]
                return (
                    f" at line {lineno} (counting the header; byte offset "
                    f"{offset + err.start}: {bad!r})"
                )
            offset += len(raw)
    return ""


def _find_long_line(path: Path, limit: int) -> str:
    """' at line L (N bytes)' for the first physical line over ``limit`` bytes, '' if none."""
    with path.open("rb") as fh:
        lineno, size = 1, 0
        while chunk := fh.read(1 << 20):
            parts = chunk.split(b"\n")
            for i, part in enumerate(parts):
                size += len(part)
                if i < len(parts) - 1:
                    if size > limit:
                        return f" at line {lineno} (counting the header; {size:,} bytes)"
                    lineno, size = lineno + 1, 0
        if size > limit:
            return f" at line {lineno} (counting the header; {size:,} bytes)"
    return ""


def _create_src_view(con: duckdb.DuckDBPyConnection, cfg: SourceConfig, path: Path, fmt: str):
    p = literal(str(path))
    if fmt == "parquet":
        body = (
            f"select * exclude (file_row_number), file_row_number + 1 as _source_row "
            f"from read_parquet({p}, file_row_number = true)"
        )
        con.execute(f"create or replace temp view src as {body}")
        return
    lines = (
        f"select line, row_number() over () as _n from read_csv({p}, columns = {{'line': "
        f"'VARCHAR'}}, header = false, delim = '\\x01', quote = '', escape = '', "
        f"auto_detect = false, encoding = {literal(cfg.encoding)}, parallel = false, "
        f"max_line_size = {int(cfg.max_line_size)})"
    )
    con.execute(f"create or replace temp view _lines as {lines}")
    offset = 1 if cfg.header else 0
    if fmt == "fixed_width":
        cols = ", ".join(
            f"nullif(trim(substr(line, {s}, {e - s})), '') as {ident(n)}"
            for n, (s, e) in (cfg.widths or {}).items()
        )
        body = f"select {cols}, _n - {offset} as _source_row from _lines where _n > {offset}"
        con.execute(f"create or replace temp view src as {body}")
        return
    # whitespace-separated: a line with another number of fields than the header is set aside
    if cfg.header:
        header_line = con.execute("select line from _lines where _n = 1").fetchone()
        if header_line is None:
            raise IngestError(f"{path}: the file is empty (no header line)")
        names = header_line[0].split()
        if not names:
            raise IngestError(f"{path}: the header line is blank")
    else:
        first = con.execute("select line from _lines where _n = 1").fetchone()
        names = [f"column{i}" for i in range(len(first[0].split()) if first else 0)]
    blank = "' ' || chr(9) || chr(13)"
    con.execute(
        f"create or replace temp view _fields as select "
        rf"regexp_split_to_array(trim(line, {blank}), '\s+') as _parts, line, _n "
        f"from _lines where _n > {offset} and trim(line, {blank}) <> ''"
    )
    cols = ", ".join(f"_parts[{i + 1}] as {ident(n)}" for i, n in enumerate(names))
    n = len(names)
    con.execute(
        f"create or replace temp view src as select {cols}, _n - {offset} as _source_row "
        f"from _fields where len(_parts) = {n}"
    )
    con.execute(
        f"insert into _rejects select _n - {offset}, _n, 'wrong field count: ' || "
        f"len(_parts) || ' fields, {n} expected (line ' || _n || ')', line "
        f"from _fields where len(_parts) <> {n}"
    )
