"""Split a CSV file into records before DuckDB reads a value of it (docs/data_contract.md).

DuckDB's lenient CSV reader pads short lines, drops extra fields, ends a line at a lone
carriage return and may take lines starting with ``#`` for comments: values would move
to other columns and rows would vanish without a trace. This module reads the bytes once,
splits them by the rules below, and returns the records that break one (for the
quarantine) and the byte ranges of those that keep them; DuckDB then reads only those
(the original file when nothing was set aside), so each value it returns sits under the
header that names it.

* A record ends at a line feed (``\\n``, or ``\\r\\n``) outside a quoted field; a file
  without any line feed uses ``\\r`` alone. Empty lines are not records.
* A field that starts with the quote character is quoted: it runs to the next quote
  character that is not doubled (``""`` is one quote) and may hold delimiters and line
  breaks; a delimiter or the end of the record follows it. Any other field runs to the next
  delimiter, quote characters included (``12" screen``).
* Every record has as many fields as the header (without a header: as the first record).

Rules broken, each with the physical line (1 = the first line of the file):
``wrong field count``, ``carriage return outside quotes`` (``line feed`` in a file of
``\\r`` line ends), ``text after closing quote``, ``unterminated quote``. After a quoting
error the record's first physical line is set aside and reading resumes on the next line:
where the record was meant to end cannot be known.

Records are found with numpy over windows of the file (quote parity decides what is
inside a quoted field); a record whose quotes are not plainly paired goes through the
field-by-field parser :meth:`Scan.parse_record`, which defines the rules above.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

LF, CR = 0x0A, 0x0D
WINDOW = 8 << 20  # bytes the vectorised pass looks at in one go
RESTART = 64 << 10  # window after a record that needed the field-by-field parser
_NONE = np.empty(0, dtype=np.int64)


class CsvStructureError(ValueError):
    """The file cannot be split into records: a broken header or a too long record."""


@dataclass
class Rejected:
    row: int  # data row, 1-based (the header is not counted)
    line: int  # physical line where the record starts, 1 = the file's first line
    reason: str
    record: bytes  # the record's bytes without its line end


@dataclass
class Layout:
    """What :func:`scan` found; ``pieces`` are what DuckDB should read, in file order."""

    header: list[bytes] | None  # the header's fields; None for a file without a header
    fields: int
    rows: int  # data records, rows read
    delimiter: bytes
    eol: bytes
    rejected: list[Rejected] = field(default_factory=list)
    # (start, end) byte ranges of the file, or rewritten records (each ending in ``eol``).
    pieces: list[tuple[int, int] | bytes] = field(default_factory=list)
    # The original file reads as is: nothing set aside or rewritten, a plain header line.
    as_is: bool = True


def serialize(fields: list[bytes], delim: bytes, quote: bytes, eol: bytes) -> bytes:
    """One record in plain RFC 4180 form, which DuckDB reads the same way."""
    if not quote:
        return delim.join(fields) + eol
    qq = quote + quote
    return delim.join(quote + f.replace(quote, qq) + quote if f else b"" for f in fields) + eol


class Scan:
    def __init__(self, data, delim: bytes, quote: bytes, eol: int, max_line_size: int, window):
        self.data, self.size = data, len(data)
        self.arr = np.frombuffer(data, dtype=np.uint8)
        self.delim, self.k = delim, len(delim)
        self.quote = quote[0] if quote else None
        self.qb = quote
        self.eol, self.eolb = eol, bytes([eol])
        self.max_line_size, self.window = max_line_size, window
        self.stray_name = "carriage return" if eol == LF else "line feed"
        self._stops = re.compile(b"|".join([re.escape(delim), b"\n", b"\r"]))
        self.fields = 0
        self.rows = 0
        self.line = 1  # physical line at the position being read
        self.rejected: list[Rejected] = []
        self.pieces: list[tuple[int, int] | bytes] = []
        self.keep_from = 0  # start of the run of records read as they are

    def release(self) -> None:
        """Drop the array view of the data, so that a memory map of it can close."""
        self.arr = None

    # -- driver -------------------------------------------------------------------------
    def run(self, start: int, header: bool) -> Layout:
        pos = self.skip_blank_lines(start)
        as_is = pos == start
        fields, reasons, end, nxt = self.parse_record(pos)
        if fields is None or reasons:
            what = "header" if header else "first record"
            raise CsvStructureError(
                f"the {what} (line {self.line}) cannot be read: {'; '.join(reasons)}"
            )
        self.fields = len(fields)
        head = None
        if header:
            head = fields
            raw = bytes(self.data[pos:end])
            as_is = as_is and (not self.qb or self.qb not in raw) and b"\r" not in raw
            self.line += self.data[pos:nxt].count(self.eolb)
            pos = nxt
        data_start = self.keep_from = pos
        window = self.window
        while pos < self.size:
            if self.k != 1:  # the vectorised pass knows one-byte delimiters only
                pos = self._slow(pos)
                continue
            nxt, slow = self._fast(pos, min(self.size, pos + window))
            if slow:
                pos, window = self._slow(nxt), RESTART
            elif nxt > pos:
                pos, window = nxt, min(window * 2, self.window)
            elif window > self.max_line_size:
                pos = self._slow(pos)  # one long record: the parser finds its end
            else:
                window *= 2
        if self.size > self.keep_from:
            self.pieces.append((self.keep_from, self.size))
        whole = [(data_start, self.size)] if self.size > data_start else []
        return Layout(
            header=head, fields=self.fields, rows=self.rows, delimiter=self.delim,
            eol=self.eolb, rejected=self.rejected, pieces=self.pieces,
            as_is=as_is and self.pieces == whole,
        )  # fmt: skip

    def skip_blank_lines(self, pos: int) -> int:
        while pos < self.size:
            if self.data[pos] == self.eol:
                pos, self.line = pos + 1, self.line + 1
            elif self.eol == LF and self.data[pos : pos + 2] == b"\r\n":
                pos, self.line = pos + 2, self.line + 1
            else:
                break
        return pos

    def _set_aside(self, start: int, nxt: int, replacement: bytes | None = None) -> None:
        """Records from ``start`` to ``nxt`` are not read as they are."""
        if start > self.keep_from:
            self.pieces.append((self.keep_from, start))
        if replacement is not None:
            self.pieces.append(replacement)
        self.keep_from = nxt

    def _reject(self, start: int, end: int, nxt: int, line: int, reasons: list[str]) -> None:
        self.rejected.append(Rejected(self.rows, line, "; ".join(reasons), self.data[start:end]))
        self._set_aside(start, nxt)

    def _too_long(self, line: int, size: int) -> CsvStructureError:
        return CsvStructureError(
            f"a line is longer than max_line_size ({self.max_line_size:,} bytes) at line "
            f"{line} (counting the header; {size:,} bytes); raise `max_line_size:` if the "
            "line is real"
        )

    def _count_reason(self, n: int, line: int) -> str:
        return f"wrong field count: {n} fields, {self.fields} expected (line {line})"

    # -- vectorised pass ----------------------------------------------------------------
    def _fast(self, start: int, stop: int) -> tuple[int, bool]:
        """Take the complete records in [start, stop) up to the first one whose quotes are
        not plainly paired. Returns where the next record starts and whether it needs
        the field-by-field parser."""
        at_eof = stop == self.size
        buf = self.arr[start:stop]
        n = stop - start
        eols = np.flatnonzero(buf == self.eol)
        q = np.flatnonzero(buf == self.quote) if self.quote is not None else _NONE
        ends = eols[(np.searchsorted(q, eols) & 1) == 0] if q.size else eols
        if at_eof and (not ends.size or ends[-1] + 1 < n):
            ends = np.append(ends, n)  # the last record has no line end
        if not ends.size:
            return start, False
        nexts = np.minimum(ends + 1, n)
        bad = self._first_quote_error(buf, q[q < nexts[-1]], n, at_eof) if q.size else None
        slow = bad is not None
        if slow:
            r = int(np.searchsorted(nexts, bad, side="right"))
            if r == 0:
                return start, True
            ends, nexts = ends[:r], nexts[:r]
        self._take(buf, start, ends, nexts, eols, q)
        return start + int(nexts[-1]), slow

    def _first_quote_error(self, buf, q, n: int, at_eof: bool) -> int | None:
        """Position of the first quote that is neither at a field start, nor closing a
        field, nor half of a doubled quote inside one; or of a quote never closed."""
        opens, closes = q[0::2], q[1::2]
        errors = []
        if opens.size > closes.size:  # only at the end of the file
            errors.append(int(opens[-1]))
            opens = opens[:-1]
        if opens.size:
            prev = buf[np.maximum(opens - 1, 0)]
            ok = (opens == 0) | (prev == self.eol) | (prev == self.delim[0])
            ok[1:] |= closes[:-1] == opens[1:] - 1  # second half of a doubled quote
            nx = closes + 1
            after = buf[np.minimum(nx, n - 1)]
            ok_close = (nx >= n) | (after == self.delim[0]) | (after == self.eol)
            if self.eol == LF:
                after2 = buf[np.minimum(nx + 1, n - 1)]
                ok_close |= (after == CR) & (((nx + 1 >= n) & at_eof) | (after2 == LF))
            ok_close[:-1] |= opens[1:] == nx[:-1]  # first half of a doubled quote
            for bad in (opens[~ok], closes[~ok_close]):
                if bad.size:
                    errors.append(int(bad[0]))
        return min(errors) if errors else None

    def _take(self, buf, start: int, ends, nexts, eols, q) -> None:
        cut = int(nexts[-1])
        starts = np.concatenate(([0], nexts[:-1]))
        content = ends.copy()
        if self.eol == LF:  # "\r\n", or "\r" at the end of the file
            content -= (ends > starts) & (buf[np.maximum(ends - 1, 0)] == CR)
        lengths = content - starts
        lines = self.line + np.searchsorted(eols, starts)
        long = np.flatnonzero(lengths > self.max_line_size)
        if long.size:
            raise self._too_long(int(lines[long[0]]), int(lengths[long[0]]))
        dl = np.flatnonzero(buf[:cut] == self.delim[0])
        if q.size:
            dl = dl[(np.searchsorted(q, dl) & 1) == 0]
        counts = np.diff(np.searchsorted(dl, np.append(starts, cut))) + 1
        stray = np.zeros(len(starts), dtype=bool)
        other = np.flatnonzero(buf[:cut] == (CR if self.eol == LF else LF))
        if q.size and other.size:
            other = other[(np.searchsorted(q, other) & 1) == 0]
        if other.size:
            rec = np.searchsorted(nexts, other, side="right")
            stray[rec[(other < content[rec])]] = True
        blank = lengths == 0
        odd = np.flatnonzero(blank | (counts != self.fields) | stray)
        rows_before = np.cumsum(~blank) + self.rows
        for i in odd:
            a, b = start + int(starts[i]), start + int(nexts[i])
            if blank[i]:
                self._set_aside(a, b)
                continue
            reasons, line = [], int(lines[i])
            if stray[i]:
                reasons.append(f"{self.stray_name} outside quotes (line {line})")
            if counts[i] != self.fields:
                reasons.append(self._count_reason(int(counts[i]), line))
            self.rows = int(rows_before[i])
            self._reject(a, start + int(content[i]), b, line, reasons)
        self.rows = int(rows_before[-1])
        self.line += int(np.searchsorted(eols, cut))

    # -- field-by-field parser ----------------------------------------------------------
    def _slow(self, pos: int) -> int:
        """Read the record at ``pos`` with :meth:`parse_record`; returns where the next starts."""
        line = self.line
        fields, broken, end, nxt = self.parse_record(pos)
        self.line += self.data[pos:nxt].count(self.eolb)
        if end == pos and fields is not None:  # an empty line
            self._set_aside(pos, nxt)
            return nxt
        if end - pos > self.max_line_size:
            raise self._too_long(line, end - pos)
        self.rows += 1
        reasons = [f"{why} (line {line})" for why in broken]
        if fields is not None and len(fields) != self.fields:
            reasons.append(self._count_reason(len(fields), line))
        if reasons:
            self._reject(pos, end, nxt, line, reasons)
        else:
            self._set_aside(pos, nxt, serialize(fields, self.delim, self.qb, self.eolb))
        return nxt

    def parse_record(self, pos: int) -> tuple[list[bytes] | None, list[str], int, int]:
        """(fields, broken rules, end of the record's content, start of the next record);
        fields is None after a quoting error, and the record is then the first line."""
        data, size, k = self.data, self.size, self.k
        fields: list[bytes] = []
        reasons: list[str] = []
        p = pos
        while True:
            if self.quote is not None and p < size and data[p] == self.quote:
                opened, parts, s = p, [], p + 1
                while True:
                    j = data.find(self.qb, s)
                    if j < 0:
                        return self._first_line(pos, "unterminated quote")
                    parts.append(data[s:j])
                    if j + 1 < size and data[j + 1] == self.quote:
                        parts.append(self.qb)
                        s = j + 2
                        continue
                    break
                p = j + 1
                if data[p : p + k] == self.delim:
                    fields.append(b"".join(parts))
                    p += k
                    continue
                end = self._record_end(p)
                if end is None:  # on a later line, most likely a quote was never closed
                    later = self.data.find(self.eolb, opened, j) >= 0
                    why = "unterminated quote" if later else "text after closing quote"
                    return self._first_line(pos, why)
                fields.append(b"".join(parts))
                return fields, reasons, end[0], end[1]
            s = p
            while True:
                m = self._stops.search(data, s)
                e = m.start() if m else size
                if m is not None and data[e : e + k] == self.delim:
                    fields.append(data[p:e])
                    p = e + k
                    break
                end = self._record_end(e)
                if end is not None:
                    fields.append(data[p:e])
                    return fields, reasons, end[0], end[1]
                if not reasons:
                    reasons.append(f"{self.stray_name} outside quotes")
                s = e + 1

    def _record_end(self, p: int) -> tuple[int, int] | None:
        """(content end, next record) when a record ends at ``p``, else None."""
        if p >= self.size:
            return self.size, self.size
        b = self.data[p]
        if b == self.eol:
            return p, p + 1
        if self.eol == LF and b == CR:
            if p + 1 == self.size:
                return p, self.size
            if self.data[p + 1] == LF:
                return p, p + 2
        return None

    def _first_line(self, pos: int, why: str) -> tuple[None, list[str], int, int]:
        j = self.data.find(self.eolb, pos)
        nxt = self.size if j < 0 else j + 1
        end = self.size if j < 0 else j
        if self.eol == LF and end > pos and self.data[end - 1] == CR:
            end -= 1
        return None, [why], end, nxt
