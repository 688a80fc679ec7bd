"""Read corpus/sources.yaml and load what each source points to.

Every problem a user can cause here (a missing field, an unknown key, a file
that is missing, empty, binary or not UTF-8, a survey export without its
configured columns) is raised as a CasebaseError naming the file and line.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from casebase import files
from casebase.errors import MAX_FILE_BYTES, CasebaseError, open_regular, read_bytes as read_file_bytes
from casebase.ingest.parsers import PARSERS

SOURCE_KINDS = ("report", "press_release", "guide", "magazine", "survey")
REQUIRED_KEYS = ("id", "file", "title", "publisher", "year", "kind", "language", "parser")
OPTIONAL_KEYS = (
    "licence",
    "url",
    "description",
    "id_column",
    "text_columns",
    "attribute_columns",
    "delimiter",
    "sheet",
    "cases",
)
SURVEY_PARSER = "answers"
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# Keys whose value is one text (a list or a mapping there is a mistake, never
# to be stored as its Python spelling).
TEXT_KEYS = ("id", "file", "title", "publisher", "kind", "language", "parser", "licence", "url", "description",
             "id_column", "delimiter", "sheet")
# A survey CSV streams, so it may be larger than a file read whole (MAX_FILE_BYTES);
# at this size its answers would pass SQLite's 1 GB cap on the source text anyway.
MAX_SURVEY_CSV_BYTES = 2 * 1024 * 1024 * 1024


@dataclass
class Source:
    id: str
    file: str
    title: str
    publisher: str
    year: int
    kind: str
    language: str
    parser: str
    path: Path
    licence: str | None = None
    url: str | None = None
    description: str | None = None
    id_column: str | None = None
    text_columns: list[str] = field(default_factory=list)
    attribute_columns: list[str] = field(default_factory=list)
    delimiter: str = ","
    sheet: str | None = None
    # For parser "plain": the cases in the text, each {"key", "title", "start", "end", and
    # case columns}, start and end character offsets into the file's text (REFI-QDA positions).
    cases: list[dict] = field(default_factory=list)
    line: int = 0  # where the entry starts in sources.yaml


# The record `casebase import qdpx` keeps while it writes (what it found, so it can be
# undone): while it is there, an import was cut off and the corpus is half written.
IMPORT_RECORD = ".import-qdpx.json"


def load_sources(corpus_dir: Path) -> list[Source]:
    corpus_dir = Path(corpus_dir)
    path = corpus_dir / "sources.yaml"
    if (corpus_dir / IMPORT_RECORD).exists():
        raise CasebaseError(
            "an import ('casebase import qdpx') into this corpus was cut off before it finished;"
            " run the same import again, which first undoes the cut-off one",
            file=corpus_dir / IMPORT_RECORD,
        )
    data = files.load_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
        raise CasebaseError("expected a top-level 'sources:' list", file=path, line=1)
    unknown_top = set(data) - {"sources"}
    if unknown_top:
        key = sorted(unknown_top)[0]
        raise CasebaseError(f"unknown key {key!r}", file=path, line=data.line_of(key))
    sources: list[Source] = []
    seen: dict[str, int] = {}
    for entry in data["sources"]:
        source = _source_from_entry(entry, corpus_dir, path)
        if source.id in seen:
            raise CasebaseError(
                f"duplicate source id {source.id!r} (first at line {seen[source.id]})",
                file=path,
                line=source.line,
            )
        seen[source.id] = source.line
        sources.append(source)
    if not sources:
        raise CasebaseError("no sources listed", file=path, line=data.line_of("sources"))
    return sources


def _source_from_entry(entry, corpus_dir: Path, path: Path) -> Source:
    if not isinstance(entry, files.Mapping):
        raise CasebaseError("each source must be a mapping of keys", file=path)
    for key in entry:
        if key not in REQUIRED_KEYS and key not in OPTIONAL_KEYS:
            raise CasebaseError(f"unknown key {key!r}", file=path, line=entry.line_of(key))
    for key in REQUIRED_KEYS:
        if entry.get(key) in (None, ""):
            raise CasebaseError(f"source is missing {key!r}", file=path, line=entry.line)

    def fail(key: str, message: str):
        raise CasebaseError(message, file=path, line=entry.line_of(key))

    for key in TEXT_KEYS:
        if isinstance(entry.get(key), (list, dict)):
            fail(key, f"{key!r} must be one text, not a {'list' if isinstance(entry[key], list) else 'mapping'}")
    source_id = str(entry["id"])
    if not _ID.match(source_id):
        fail("id", f"source id {source_id!r} must be lowercase letters, digits and '-'")
    if entry["kind"] not in SOURCE_KINDS:
        fail("kind", f"unknown kind {entry['kind']!r} (one of: {', '.join(SOURCE_KINDS)})")
    parsers = PARSERS + (SURVEY_PARSER,)
    if entry["parser"] not in parsers:
        fail("parser", f"unknown parser {entry['parser']!r} (one of: {', '.join(parsers)})")
    if not isinstance(entry["year"], int):
        fail("year", f"year must be a whole number, not {entry['year']!r}")
    url = entry.get("url")
    if url is not None and not re.match(r"https?://\S+$", str(url)):
        # The source page links to it: javascript: or data: there would run in the reader's browser.
        fail("url", f"url {str(url)[:80]!r} must be a web address starting with http:// or https://")
    is_survey = entry["parser"] == SURVEY_PARSER
    if is_survey and not entry.get("text_columns"):
        fail("parser", "a survey source needs 'text_columns'")
    for key in ("text_columns", "attribute_columns"):
        value = entry.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            fail(key, f"{key!r} must be a list of column names")
    delimiter = entry.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\"\r\n":
        fail("delimiter", f"delimiter {delimiter!r} must be one character, like ',' or ';' (tab: \"\\t\")")
    file_path = _source_path(corpus_dir, str(entry["file"]), entry["parser"] == SURVEY_PARSER, lambda m: fail("file", m))
    cases = _cases(entry, path, fail)
    return Source(
        id=source_id,
        file=str(entry["file"]),
        title=str(entry["title"]),
        publisher=str(entry["publisher"]),
        year=entry["year"],
        kind=entry["kind"],
        language=str(entry["language"]),
        parser=entry["parser"],
        path=file_path,
        licence=entry.get("licence"),
        url=entry.get("url"),
        description=entry.get("description"),
        id_column=entry.get("id_column"),
        text_columns=list(entry.get("text_columns", [])),
        attribute_columns=list(entry.get("attribute_columns", [])),
        delimiter=delimiter,
        sheet=entry.get("sheet"),
        cases=cases,
        line=entry.line,
    )


CASE_KEYS = ("key", "title", "start", "end")


def _cases(entry, path: Path, fail) -> list[dict]:
    """The cases a ``plain`` source lists (where other parsers find their own)."""
    from casebase.ingest.segment import CASE_COLUMNS, slug

    value = entry.get("cases")
    if value is None:
        return []
    if entry["parser"] != "plain":
        fail("cases", "'cases' are listed for parser 'plain' only; the other parsers find a text's cases themselves")
    if not isinstance(value, list):
        fail("cases", "'cases' must be a list of cases (title, start, end)")
    columns = {c.name: c for c in CASE_COLUMNS}
    cases, keys = [], set()
    for index, item in enumerate(value):
        line = value.line_of(index) if isinstance(value, files.Sequence) else entry.line
        if not isinstance(item, files.Mapping):
            raise CasebaseError("a case must be a mapping (title, start, end)", file=path, line=line)
        unknown = [k for k in item if k not in CASE_KEYS and k not in columns]
        if unknown:
            raise CasebaseError(
                f"unknown key {unknown[0]!r} of a case (allowed: {', '.join(CASE_KEYS + tuple(columns))})", file=path, line=item.line_of(unknown[0])
            )
        title = item.get("title")
        if not isinstance(title, str) or not title.strip():
            raise CasebaseError("a case needs a 'title'", file=path, line=line)
        start, end = item.get("start"), item.get("end")
        if not (isinstance(start, int) and isinstance(end, int) and not isinstance(start, bool) and 0 <= start < end):
            raise CasebaseError(
                f"case {title!r} needs 'start' and 'end', character offsets with 0 <= start < end", file=path, line=line
            )
        case = {"key": slug(str(item.get("key") or title)), "title": title.strip(), "start": start, "end": end}
        if case["key"] in keys:
            raise CasebaseError(f"two cases have the key {case['key']!r}; give one a 'key' of its own", file=path, line=line)
        keys.add(case["key"])
        for name, column in columns.items():
            if item.get(name) not in (None, ""):
                if not isinstance(item[name], column.type) or isinstance(item[name], bool):
                    raise CasebaseError(f"case {title!r}: {name!r} must be {'a whole number' if column.type is int else 'a text'}", file=path, line=item.line_of(name))
                case[name] = item[name]
        cases.append(case)
    return cases


def _source_path(corpus_dir: Path, file: str, streamed: bool, fail) -> Path:
    """The source's file, which must be a regular file inside the corpus folder
    (after following symbolic links) and not too large: a build publishes every
    source's text, so /etc/passwd or ../secret.txt must never get in, and a pipe
    or /dev/zero would never end. A missing file is reported when it is read."""
    path = corpus_dir / file
    try:
        resolved = path.resolve()
        inside = resolved.is_relative_to(corpus_dir.resolve())
    except (OSError, RuntimeError):  # a symbolic link loop
        fail(f"file {file!r} cannot be resolved (a symbolic link loop?)")
    if not inside:
        fail(f"file {file!r} is outside the corpus folder {str(corpus_dir)!r}; a source must be a file inside it")
    try:
        info = os.stat(resolved)
    except FileNotFoundError:
        return path
    except OSError as exc:
        fail(f"file {file!r} cannot be read: {exc.strerror}")
    if stat.S_ISDIR(info.st_mode):
        fail(f"file {file!r} is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        fail(f"file {file!r} is not a regular file (a pipe, a device or a socket)")
    limit = MAX_SURVEY_CSV_BYTES if streamed and path.suffix.lower() != ".xlsx" else MAX_FILE_BYTES
    if info.st_size > limit:
        fail(f"file {file!r} has {info.st_size:,} bytes; the largest a source may be is {limit:,}")
    return path


def read_bytes(source: Source) -> bytes:
    try:
        return read_file_bytes(source.path)
    except CasebaseError as exc:
        raise CasebaseError(f"{exc.message} (source {source.id!r})", file=source.path) from None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_text(data: bytes, path: Path) -> str:
    """Strict UTF-8: a wrongly encoded file is refused, never silently mangled."""
    nul = data.find(b"\x00")
    if nul >= 0:
        # Text never holds a NUL byte: a binary file, or binary data pasted into one.
        where = None if nul < 8192 else data[:nul].count(b"\n") + 1
        raise CasebaseError("binary file, not text (a NUL byte)", file=path, line=where)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CasebaseError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
            file=path,
            line=line,
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise CasebaseError("empty text", file=path)
    if not has_letters(text):
        raise CasebaseError("no text: only control characters and spaces", file=path)
    return text


def has_letters(text: str) -> bool:
    """Whether a text has anything but spaces and control or format characters
    (stops at the first such character, so a long text costs nothing)."""
    return any(not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf") for ch in text)


# The longest line a text source may have. A paragraph is one line; a text of
# megabytes without a line break is a failed extraction (or not prose at all),
# and refusing it at once beats spending minutes cutting it into one excerpt.
MAX_LINE_CHARS = 100_000


def read_text(source: Source) -> tuple[str, str]:
    """The source's text and the sha256 of its bytes."""
    data = read_bytes(source)
    text = decode_text(data, source.path)
    check_line_lengths(text, source.path)
    return text, sha256(data)


def check_line_lengths(text: str, path: Path) -> None:
    if len(text) <= MAX_LINE_CHARS:
        return
    for number, line in enumerate(text.split("\n"), start=1):
        if len(line) > MAX_LINE_CHARS:
            raise CasebaseError(
                f"line of {len(line):,} characters; the longest a line may be is {MAX_LINE_CHARS:,}"
                " (a text extracted without line breaks?)",
                file=path,
                line=number,
            )


@dataclass
class AnswerRow:
    line: int  # line (CSV) or row (XLSX) the answer is on, for error messages
    values: dict[str, str]


def read_answers(source: Source) -> tuple[list[AnswerRow], str]:
    """Rows of a survey export (CSV or XLSX) and the sha256 of the file."""
    answers = Answers(source)
    rows = [row for batch in answers.batches() for row in batch]
    return rows, answers.sha256


class Answers:
    """A survey export read as it streams: ``batches()`` yields its rows a batch
    at a time (a CSV is never held in memory whole), checking columns and ids
    as it goes; ``sha256`` is the file's digest once the batches are exhausted."""

    def __init__(self, source: Source):
        self.source = source
        self.sha256 = ""
        self.suffix = source.path.suffix.lower()
        if self.suffix not in (".xlsx", ".csv", ".tsv", ".txt"):
            raise CasebaseError(
                f"unsupported survey file type {self.suffix or '(none)'!r}; use .csv or .xlsx",
                file=source.path,
            )

    def batches(self, size: int = 5000):
        source = self.source
        first_line: dict[str, int] = {}
        batch: list[AnswerRow] = []
        if self.suffix == ".xlsx":
            data = read_bytes(source)
            header, rows = _xlsx_rows(data, source)
            digest = hashlib.sha256(data)
            del data
        else:
            digest = hashlib.sha256()
            header, rows = _csv_rows(_utf8_lines(source, digest), source)
        _check_columns(header, source)
        for row in rows:
            if source.id_column:
                _check_unique_id(row, source, first_line)
            for column in source.text_columns:
                if len(row.values[column]) > MAX_LINE_CHARS:
                    raise CasebaseError(
                        f"an answer of {len(row.values[column]):,} characters in {column!r}; the longest an answer may be is {MAX_LINE_CHARS:,}",
                        file=source.path,
                        line=row.line,
                    )
            batch.append(row)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch
        self.sha256 = digest.hexdigest()


def _utf8_lines(source: Source, digest):
    """The lines of a text file, decoded strictly one at a time (hashed on the way)."""
    try:
        handle = open_regular(source.path, MAX_SURVEY_CSV_BYTES)
    except CasebaseError as exc:
        raise CasebaseError(f"{exc.message} (source {source.id!r})", file=source.path) from None
    with handle:
        head = handle.read(8192)
        if b"\x00" in head:
            raise CasebaseError("binary file, not text (a NUL byte)", file=source.path)
        handle.seek(0)
        for number, raw in enumerate(handle, start=1):
            digest.update(raw)
            if b"\x00" in raw:
                raise CasebaseError("binary data in a text file (a NUL byte)", file=source.path, line=number)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CasebaseError(
                    f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
                    file=source.path,
                    line=number,
                ) from None
            yield line.removeprefix("\ufeff") if number == 1 else line


def _check_unique_id(row: AnswerRow, source: Source, first_line: dict[str, int]) -> None:
    value = str(row.values[source.id_column]).strip()
    if not value:
        raise CasebaseError(f"empty {source.id_column!r}", file=source.path, line=row.line)
    if value in first_line:
        raise CasebaseError(
            f"duplicate {source.id_column!r} {value!r} (first on line {first_line[value]})",
            file=source.path,
            line=row.line,
        )
    first_line[value] = row.line


# What the survey reader accepts in one field, set explicitly (csv's default is
# process-wide and 131,072): above the longest answer (MAX_LINE_CHARS), so an
# over-long answer is reported as such, and bounded, so a file that is one
# unclosed quote is refused rather than read into memory.
CSV_FIELD_LIMIT = 1_000_000


def _csv_rows(lines, source: Source):
    """The header and a generator of the rows of a CSV, from its decoded lines."""
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    reader = csv.reader(lines, delimiter=source.delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise CasebaseError("empty CSV file", file=source.path, line=1) from None
    except csv.Error as exc:
        raise CasebaseError(f"unreadable CSV: {exc}", file=source.path, line=1) from None

    def rows():
        try:
            for values in reader:
                line = reader.line_num
                if not any(v.strip() for v in values):
                    continue
                if len(values) != len(header):
                    raise CasebaseError(
                        f"row has {len(values)} columns, the header has {len(header)}",
                        file=source.path,
                        line=line,
                    )
                yield AnswerRow(line=line, values=dict(zip(header, values)))
        except csv.Error as exc:
            raise CasebaseError(f"unreadable CSV: {exc}", file=source.path, line=reader.line_num) from None

    return header, rows()


def _xlsx_rows(data: bytes, source: Source) -> tuple[list[str], list[AnswerRow]]:
    import openpyxl
    from xml.etree.ElementTree import ParseError
    from zipfile import BadZipFile

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    except (BadZipFile, KeyError, ValueError, OSError, ParseError) as exc:
        raise CasebaseError(f"not a readable XLSX workbook ({exc})", file=source.path) from None
    if source.sheet:
        if source.sheet not in workbook.sheetnames:
            raise CasebaseError(
                f"no sheet {source.sheet!r} (sheets: {', '.join(workbook.sheetnames)})",
                file=source.path,
            )
        sheet = workbook[source.sheet]
    else:
        sheet = workbook.worksheets[0]
    if sheet.merged_cells.ranges:
        merged = sorted(str(r) for r in sheet.merged_cells.ranges)[0]
        raise CasebaseError(
            f"sheet {sheet.title!r} has merged cells ({merged}); unmerge them so each answer is one row",
            file=source.path,
            line=int(re.sub(r"\D", "", merged.split(":")[0]) or 1),
        )
    rows_iter = sheet.iter_rows(values_only=True)
    try:
        header = ["" if h is None else str(h).strip() for h in next(rows_iter)]
    except StopIteration:
        raise CasebaseError("empty sheet", file=source.path, line=1) from None
    rows: list[AnswerRow] = []
    for number, values in enumerate(rows_iter, start=2):
        cells = ["" if v is None else str(v) for v in values]
        if not any(c.strip() for c in cells):
            continue
        rows.append(AnswerRow(line=number, values=dict(zip(header, cells))))
    return header, rows


def _check_columns(header: list[str], source: Source) -> None:
    needed = list(source.text_columns) + list(source.attribute_columns)
    if source.id_column:
        needed.append(source.id_column)
    missing = [c for c in needed if c not in header]
    if missing:
        hint = ""
        if len(header) == 1 and any(d in header[0] for d in ";\t|,"):
            hint = f"; the header is one column — is the delimiter {source.delimiter!r} right?"
        raise CasebaseError(
            f"missing column(s) {', '.join(repr(c) for c in missing)}; found {', '.join(repr(h) for h in header)}{hint}",
            file=source.path,
            line=1,
        )


def _check_length(text: str, path: Path, line: int) -> None:
    if len(text) > MAX_LINE_CHARS:
        raise CasebaseError(
            f"a text of {len(text):,} characters; the longest a text to code may be is {MAX_LINE_CHARS:,}", file=path, line=line
        )


def read_input_texts(path: Path, column: str | None = None) -> list[str]:
    """Texts to code from a .txt (one per line), .csv (a 'text' column or --column)
    or .jsonl (a 'text' field) file, in order."""
    path = Path(path)
    data = read_file_bytes(path)
    text = decode_text(data, path)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        # Lines end at \n (and \r\n) only: a form feed or U+2028 inside a text is no new text.
        texts = [(number, line.strip()) for number, line in enumerate(text.split("\n"), start=1) if line.strip()]
        for number, line in texts:
            _check_length(line, path, number)
        return [line for _, line in texts]
    if suffix == ".csv":
        name = column or "text"
        if csv.field_size_limit() < CSV_FIELD_LIMIT:
            csv.field_size_limit(CSV_FIELD_LIMIT)
        reader = csv.DictReader(io.StringIO(text, newline=""))
        try:
            fieldnames = reader.fieldnames
        except csv.Error as exc:
            raise CasebaseError(f"unreadable CSV: {exc}", file=path, line=1) from None
        if name not in (fieldnames or []):
            raise CasebaseError(
                f"no column {name!r}; found {', '.join(repr(f) for f in reader.fieldnames or [])}",
                file=path,
                line=1,
            )
        texts = []
        try:
            for row in reader:
                _check_length(row[name] or "", path, reader.line_num)
                texts.append(row[name] or "")
        except csv.Error as exc:
            # DictReader's own line_num is the last good row's; its reader's is this one's.
            raise CasebaseError(f"unreadable CSV: {exc}", file=path, line=reader.reader.line_num) from None
        if not texts:  # a header alone: nothing to code, as an empty .txt
            raise CasebaseError(f"no rows under the header; column {name!r} has no text", file=path, line=2)
        return texts
    if suffix in (".jsonl", ".ndjson"):
        texts = []
        for number, item in files.json_lines(text, path):
            field_name = column or "text"
            if not isinstance(item.get(field_name), str):
                raise CasebaseError(f"no text field {field_name!r}", file=path, line=number)
            _check_length(item[field_name], path, number)
            texts.append(item[field_name])
        return texts
    raise CasebaseError(f"unsupported file type {suffix or '(none)'!r}; use .txt, .csv or .jsonl", file=path)
