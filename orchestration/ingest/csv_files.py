"""A CSV file on disk: mapped once, its delimiter sniffed, split by csv_records.py, and its
readable records written out for DuckDB when some were set aside."""

from __future__ import annotations

import codecs
import contextlib
import mmap
from pathlib import Path

from orchestration.ingest.csv_records import (
    CR,
    LF,
    WINDOW,
    CsvStructureError,
    Layout,
    Scan,
    serialize,
)

UTF8_BOM = b"\xef\xbb\xbf"
SNIFF_DELIMITERS = (",", ";", "\t", "|")


def scan(
    path: Path,
    delimiter: str | None,
    quote: str,
    encoding: str,
    header: bool,
    max_line_size: int,
    window: int = WINDOW,
) -> Layout:
    """Split ``path`` (an ASCII-compatible encoding; not empty) into records."""
    qb = quote.encode(encoding) if quote else b""
    if len(qb) > 1:
        raise CsvStructureError(f"the quote character {quote!r} must be a single byte")
    with path.open("rb") as fh:
        data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    s = None
    try:
        eol = CR if data.find(b"\n") < 0 and data.find(b"\r") >= 0 else LF
        start = len(UTF8_BOM) if data[:3] == UTF8_BOM and _is_utf8(encoding) else 0
        if delimiter is None:
            delim = sniff_delimiter(data, qb, eol, start, encoding)
        else:
            delim = delimiter.encode(encoding)
        s = Scan(data, delim, qb, eol, max_line_size, window)
        return s.run(start, header)
    finally:
        if s is not None:
            s.release()
        # An exception's frames may still view the map: it closes when they are collected.
        with contextlib.suppress(BufferError):
            data.close()


def write_records(path: Path, layout: Layout, quote: str, encoding: str, out: Path) -> None:
    """Write the header (if any) and the readable records of ``layout`` to ``out``."""
    qb = quote.encode(encoding) if quote else b""
    with path.open("rb") as src, out.open("wb") as dst:
        if layout.header is not None:
            dst.write(serialize(layout.header, layout.delimiter, qb, layout.eol))
        for piece in layout.pieces:
            if isinstance(piece, bytes):
                dst.write(piece)
                continue
            src.seek(piece[0])
            left = piece[1] - piece[0]
            while left > 0:
                chunk = src.read(min(left, 1 << 22))
                dst.write(chunk)
                left -= len(chunk)


def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    except LookupError:
        return False


def sniff_delimiter(data, quote: bytes, eol: int, start: int, encoding: str) -> bytes:
    """The candidate that splits the header into >= 2 fields and most of the next 20
    records into as many (ties: more fields, then the order of SNIFF_DELIMITERS)."""
    best, best_score = SNIFF_DELIMITERS[0].encode(encoding), (False, -1, -1)
    for cand in SNIFF_DELIMITERS:
        d = cand.encode(encoding)
        s = Scan(data, d, quote, eol, max_line_size=len(data) + 1, window=WINDOW)
        pos = s.skip_blank_lines(start)
        counts = []
        while pos < s.size and len(counts) < 21:
            fields, _, _, pos = s.parse_record(pos)
            counts.append(len(fields) if fields is not None else -1)
            pos = s.skip_blank_lines(pos)
        s.release()
        if not counts:
            continue
        score = (counts[0] > 1, sum(c == counts[0] for c in counts[1:]), counts[0])
        if score > best_score:
            best, best_score = d, score
    return best
