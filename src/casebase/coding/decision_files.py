"""Human coding decisions: the precious data.

One CSV per coder in corpus/coding/, append-only. A row is a decision: the
complete set of codes the coder judged present in an excerpt (empty means
"none of the codes"), under the codebook version the coder saw. The latest
row of a coder for an excerpt counts. Rows carry a snippet of the excerpt's
text so a decision can be re-anchored when re-segmentation changes the
excerpt's id.

``codebooks.csv`` beside the coders' files records which codes each codebook
version had, so a decision is read as judging exactly those codes: a code
added later is "not yet judged" on it, never a silent negative.

No save can make a file unreadable. Every row ends with a line end, so a
last line without one is a save cut off (a crash, a full disk): the readers
leave it out and say so (``casebase check`` lists it), and the next save first
moves it to a side file beside the coder's file (``anna.csv.torn-<time>``),
never dropping it. A write that fails is cut back to the file's old length, so
the file is as it was and the save is refused with one error. Notes are
limited in length and in the characters they may hold, so every value reads
back exactly as it was written.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock

from casebase import files
from casebase.coding.codebook import Codebook
from casebase.errors import CasebaseError, machine_error, on_file, read_bytes
from casebase.progress import Progress

log = logging.getLogger(__name__)

COLUMNS = ["excerpt_id", "snippet", "codes", "coder", "timestamp", "codebook_version", "note"]
REGISTRY = "codebooks.csv"
# An adjudicator's rulings on excerpts where coders disagree: same columns, one file
# per adjudicator, in their own folder so they are never read as a coder's decisions.
ADJUDICATIONS = "adjudications"
REGISTRY_COLUMNS = ["codebook_version", "codes"]
SNIPPET_LENGTH = 80
_CODER = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
# The longest note a decision may carry (about eight pages): a memo, not a document.
MAX_NOTE_CHARS = 20_000
# What the readers accept in one field: well above anything the writer lets through
# (csv's own default, 131,072, is a limit nobody chose).
READ_FIELD_LIMIT = 1_000_000
# Characters a note may not hold: C0 controls other than tab, line feed and carriage
# return, DEL and C1 controls. They are invisible, some tools read them as line
# ends, and a NUL makes git take the file for binary.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Side files a torn last line is moved to: <coder>.csv.torn-<UTC time>.
TORN_SUFFIX = ".torn-"


@dataclass
class Decision:
    excerpt_id: str
    snippet: str
    codes: list[str]
    coder: str
    timestamp: str
    codebook_version: str
    note: str = ""
    file: str = ""
    line: int = 0
    adjudication: bool = False  # a ruling on a disagreement between coders


def snippet_of(text: str) -> str:
    return " ".join(text.split())[:SNIPPET_LENGTH]


def moment(timestamp: str) -> datetime:
    """A decision's time, comparable across offsets (a time without one is UTC)."""
    value = datetime.fromisoformat(timestamp)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def coder_file(coding_dir: Path, coder: str, adjudication: bool = False) -> Path:
    if not _CODER.match(coder):
        raise CasebaseError(f"coder id {coder!r} must be lowercase letters, digits, '.', '_' or '-'")
    if f"{coder}.csv" == REGISTRY or coder in (ADJUDICATIONS, "samples"):
        raise CasebaseError(f"coder id {coder!r} is the name of one of casebase's own files; choose another")
    folder = Path(coding_dir) / ADJUDICATIONS if adjudication else Path(coding_dir)
    return folder / f"{coder}.csv"


def _split_codes(value: str) -> list[str]:
    return [c for c in re.split(r"[;\s]+", value.strip()) if c]


def note_problem(note: str) -> str | None:
    """Why a note cannot be saved, or None: too long, or a control character."""
    if len(note) > MAX_NOTE_CHARS:
        return f"the note has {len(note):,} characters; the longest a note may be is {MAX_NOTE_CHARS:,}"
    found = _CONTROL.search(note)
    if found:
        return f"the note holds the control character U+{ord(found.group()):04X}, which a coding file does not keep; remove it"
    return None


def _read_csv_limit() -> None:
    # Process-wide in the csv module; raised, never lowered (another reader may need more).
    if csv.field_size_limit() < READ_FIELD_LIMIT:
        csv.field_size_limit(READ_FIELD_LIMIT)


@dataclass
class TornTail:
    """A last line without a line end: a save cut off (or a side file it was moved to)."""

    path: Path
    line: int
    size: int  # bytes
    moved: bool = False  # True: ``path`` is the side file the line was moved to


_warned: set[tuple[str, int]] = set()


def _complete(path: Path, data: bytes) -> bytes:
    """The file's bytes up to its last line end; a torn last line after it is left
    out, with a warning in the log (once per file and size in a process)."""
    if not data or data.endswith(b"\n"):
        return data
    cut = data.rfind(b"\n") + 1
    if (str(path), len(data)) not in _warned:
        _warned.add((str(path), len(data)))
        log.warning(
            "%s:%d: an incomplete last row (%d bytes, a save that was cut off) is not read; the next save moves it to a side file",
            path, data.count(b"\n", 0, cut) + 1, len(data) - cut,
        )
    return data[:cut]


def torn_tails(coding_dir: Path) -> list[TornTail]:
    """Torn last lines in the coding files, and side files they were moved to: what
    ``casebase check`` lists so that no cut-off save goes unnoticed."""
    coding_dir = Path(coding_dir)
    found = []
    for folder in (coding_dir, coding_dir / ADJUDICATIONS):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix == ".csv" and path.is_file():
                data = path.read_bytes()
                if data and not data.endswith(b"\n"):
                    cut = data.rfind(b"\n") + 1
                    found.append(TornTail(path, data.count(b"\n", 0, cut) + 1, len(data) - cut))
            elif TORN_SUFFIX in path.name and path.is_file():
                found.append(TornTail(path, 1, path.stat().st_size, moved=True))
    return found


def read_file(path: Path, adjudication: bool = False) -> list[Decision]:
    """All rows of one coder's file. A torn last line (a save cut off mid-write,
    never acknowledged) is left out with a warning; the rows before it are intact."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CasebaseError(f"cannot read coding file: {exc.strerror}", file=path) from None
    data = _complete(path, data)
    if not data:
        return []  # a file whose first save was cut off, or refused on a full disk
    reader = _csv_reader(path, data, COLUMNS)
    coder = path.stem
    decisions = []
    for row in _rows(reader, path):
        line = reader.line_num
        if None in row or any(v is None for v in row.values()):
            raise CasebaseError("wrong number of columns", file=path, line=line)
        if row["coder"] != coder:
            raise CasebaseError(
                f"row's coder {row['coder']!r} does not match the file's coder {coder!r}",
                file=path,
                line=line,
            )
        if not row["excerpt_id"]:
            raise CasebaseError("empty excerpt_id", file=path, line=line)
        try:
            moment(row["timestamp"])
        except ValueError:
            raise CasebaseError(f"timestamp {row['timestamp']!r} is not an ISO 8601 time", file=path, line=line) from None
        decisions.append(
            Decision(
                excerpt_id=row["excerpt_id"],
                snippet=row["snippet"],
                codes=_split_codes(row["codes"]),
                coder=coder,
                timestamp=row["timestamp"],
                codebook_version=row["codebook_version"],
                note=row["note"],
                file=str(path),
                line=line,
                adjudication=adjudication,
            )
        )
    return decisions


def _rows(reader: csv.DictReader, path: Path):
    """The reader's rows; a row csv cannot read (a field over READ_FIELD_LIMIT) is
    one error naming the file and line."""
    rows = iter(reader)
    while True:
        try:
            yield next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            # DictReader's own line_num is the last good row's; its reader's is this one's.
            raise CasebaseError(f"unreadable CSV: {exc}", file=path, line=reader.reader.line_num) from None


def read_all(coding_dir: Path) -> list[Decision]:
    coding_dir = Path(coding_dir)
    if not coding_dir.is_dir():
        return []
    decisions: list[Decision] = []
    for path in sorted(coding_dir.glob("*.csv")):
        if path.name != REGISTRY:
            _check_file_name(path)
            decisions.extend(read_file(path))
    for path in sorted((coding_dir / ADJUDICATIONS).glob("*.csv")):
        _check_file_name(path)
        decisions.extend(read_file(path, adjudication=True))
    return decisions


def _check_file_name(path: Path) -> None:
    """A coder's file is named by the coder's id; 'Anna.csv' would be a second coder
    beside 'anna.csv' on most disks and the same file on others."""
    if not _CODER.match(path.stem):
        hint = f" (rename it to {path.stem.lower()}.csv)" if _CODER.match(path.stem.lower()) else ""
        raise CasebaseError(
            f"a coding file is named by its coder's id: lowercase letters, digits, '.', '_' or '-'{hint}", file=path
        )


def _csv_reader(path: Path, data: bytes, columns: list[str]) -> csv.DictReader:
    """A reader of one of casebase's coding CSV files, its header checked."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CasebaseError("not valid UTF-8", file=path, line=data[: exc.start].count(b"\n") + 1) from None
    _read_csv_limit()
    # Lines end at "\n" only, as the writer counts them (a note's "\r" is inside
    # quotes): the line numbers a save returns are the ones read back.
    reader = csv.DictReader(io.StringIO(text, newline="\n"))
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise CasebaseError(f"unreadable CSV: {exc}", file=path, line=1) from None
    if fieldnames != columns:
        raise CasebaseError(
            f"expected the columns {','.join(columns)}; found {','.join(fieldnames or [])}", file=path, line=1
        )
    return reader


def read_registry(coding_dir: Path) -> dict[str, list[str]]:
    path = Path(coding_dir) / REGISTRY
    if not path.exists():
        return {}
    data = _complete(path, path.read_bytes())
    if not data:
        return {}
    reader = _csv_reader(path, data, REGISTRY_COLUMNS)
    registry: dict[str, list[str]] = {}
    for row in _rows(reader, path):
        if None in row or any(v is None for v in row.values()) or not row["codebook_version"]:
            raise CasebaseError("wrong number of columns", file=path, line=reader.line_num)
        if row["codebook_version"] in registry and registry[row["codebook_version"]] != _split_codes(row["codes"]):
            raise CasebaseError(
                f"codebook version {row['codebook_version']!r} listed twice with different codes", file=path, line=reader.line_num
            )
        registry[row["codebook_version"]] = _split_codes(row["codes"])
    return registry


def register_codebook(coding_dir: Path, codebook: Codebook) -> None:
    """Record which codes this codebook version has (once per version)."""
    coding_dir = Path(coding_dir)
    path = coding_dir / REGISTRY
    with on_file(path):
        coding_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if codebook.version not in read_registry(coding_dir):
                _append_rows(path, REGISTRY_COLUMNS, [[codebook.version, " ".join(codebook.ids)]])
            elif _is_torn(path):
                _append_rows(path, REGISTRY_COLUMNS, [])  # moves the torn line aside, appends nothing


def _is_torn(path: Path) -> bool:
    with open(path, "rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return False
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"


def append(coding_dir: Path, decisions: list[Decision], codebook: Codebook) -> list[Decision]:
    """Append decisions to their coders' files, durably: the rows are flushed and
    fsynced before this returns, under a lock, so two coders (or two processes)
    saving at once never lose or interleave rows. Returns the decisions as
    written (codes closed under the hierarchy, file and line filled in).

    A save that cannot be written whole (a full disk, a failing one) leaves the
    file as it was and raises one CasebaseError: nothing was saved."""
    unknown = {c for d in decisions for c in d.codes if c not in codebook.codes}
    if unknown:
        raise CasebaseError(f"unknown code id(s): {', '.join(sorted(unknown))}", file=codebook.path)
    grouping = sorted({c for d in decisions for c in d.codes if not codebook.codes[c].codable})
    if grouping:
        raise CasebaseError(
            f"{', '.join(grouping)}: a grouping code (codable: false) is never coded; choose one of its codes", file=codebook.path
        )
    by_coder: dict[tuple[str, bool], list[Decision]] = {}
    for decision in decisions:
        path = coder_file(coding_dir, decision.coder, decision.adjudication)
        problem = note_problem(decision.note)
        if problem:
            raise CasebaseError(f"{problem}; nothing was saved", file=path)
        by_coder.setdefault((decision.coder, decision.adjudication), []).append(decision)
    register_codebook(coding_dir, codebook)
    written = []
    for (coder, adjudication), rows in by_coder.items():
        path = coder_file(coding_dir, coder, adjudication)
        rows = [
            Decision(
                excerpt_id=d.excerpt_id,
                snippet=d.snippet,
                codes=codebook.close(d.codes),
                coder=d.coder,
                timestamp=d.timestamp or now(),
                codebook_version=d.codebook_version or codebook.version,
                note=d.note,
                file=str(path),
                adjudication=adjudication,
            )
            for d in rows
        ]
        with on_file(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(path) + ".lock"):
                lines = _append_rows(
                    path,
                    COLUMNS,
                    [[d.excerpt_id, d.snippet, " ".join(d.codes), d.coder, d.timestamp, d.codebook_version, d.note] for d in rows],
                )
        for decision, line in zip(rows, lines):
            decision.line = line
        written.extend(rows)
    return written


def csv_line(row: list[str]) -> str:
    """One CSV row ending in a line feed, with every field that holds a line feed or
    a carriage return quoted. (csv quotes only the characters of its line
    terminator: with "\n" a lone "\r" went out bare, and a reader split the row.)"""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(row)
    return buffer.getvalue()[:-2] + "\n"


# Line ends counted in each file this process appended to, keyed by the file's
# identity, size and modification time after that append: the next save to an
# unchanged file takes its line number from here instead of reading the whole file
# (a save is O(1) in the file's size). Any other change to the file (another
# process's save, an edit, a torn line) changes the key, and the file is counted
# again. Only read and written under the file's lock.
_LINE_ENDS: dict[str, tuple[tuple[int, int, int, int], int]] = {}
# Bytes read at a time when a file has to be counted: memory stays flat however large it is.
_CHUNK = 1 << 20


def _stamp(stat: os.stat_result) -> tuple[int, int, int, int]:
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _count_line_ends(fd: int, size: int) -> tuple[int, int]:
    """(line ends in the first ``size`` bytes, offset just after the last one), read in chunks."""
    ends, cut, offset = 0, 0, 0
    while offset < size:
        chunk = os.pread(fd, min(_CHUNK, size - offset), offset)
        if not chunk:
            break
        ends += chunk.count(b"\n")
        last = chunk.rfind(b"\n")
        if last >= 0:
            cut = offset + last + 1
        offset += len(chunk)
    return ends, cut


def _append_rows(path: Path, columns: list[str], rows: list[list[str]]) -> list[int]:
    """Append CSV rows (the caller holds the file's lock); returns the line each row
    ends on (as csv's line_num counts).

    A torn last line is first moved to a side file. The rows go out in whole lines
    and are fsynced; if that fails the file is cut back to its old length, so the
    file is never left with part of a row that the next save would glue onto.
    A file this process last wrote, unchanged since, is not read at all."""
    key = str(path)
    with open(path, "a+b") as handle:
        fd = handle.fileno()
        stat = os.fstat(fd)
        size = stat.st_size
        known = _LINE_ENDS.get(key)
        if known is not None and known[0] == _stamp(stat):
            line = known[1]
        else:
            line, cut = _count_line_ends(fd, size)
            if cut < size:
                _move_aside(path, os.pread(fd, size - cut, cut), line + 1)
                os.ftruncate(fd, cut)
                os.fsync(fd)
                size = cut
        text = ""
        if size == 0:
            text = csv_line(columns)
            line += 1
        ends = []
        for row in rows:
            written = csv_line(row)
            text += written
            line += written.count("\n")
            ends.append(line)
        payload = memoryview(text.encode("utf-8"))
        try:
            # O_APPEND (mode "a"): every write lands at the end, however many it takes.
            while payload:
                payload = payload[os.write(fd, payload) :]
            os.fsync(fd)
        except OSError as exc:
            _LINE_ENDS.pop(key, None)
            raise _failed_write(path, fd, size, exc) from None
        _LINE_ENDS[key] = (_stamp(os.fstat(fd)), line)
    if size == 0:
        _sync_folder(path.parent)
    return ends


def _failed_write(path: Path, fd: int, size: int, exc: OSError) -> CasebaseError:
    """Cut the file back to ``size`` after a failed write; the error to raise."""
    error = machine_error(exc, path)
    why = error.message.removeprefix("cannot write: ") if error else exc.strerror or type(exc).__name__
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    except OSError:
        return CasebaseError(
            f"nothing was saved ({why}); the partial row could not be removed and the next save moves it aside",
            file=path,
        )
    return CasebaseError(f"nothing was saved ({why}); the file is as it was", file=path)


def _move_aside(path: Path, tail: bytes, line: int) -> None:
    """Keep a torn last line in a side file beside ``path`` (synced) before it is cut
    off: a row nobody was told was saved, kept for a person to look at."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    side = path.with_name(f"{path.name}{TORN_SUFFIX}{stamp}")
    number = 1
    while side.exists():
        number += 1
        side = path.with_name(f"{path.name}{TORN_SUFFIX}{stamp}-{number}")
    try:
        with open(side, "xb") as handle:
            handle.write(tail)
            handle.flush()
            os.fsync(handle.fileno())
        _sync_folder(path.parent)
    except OSError as exc:
        side.unlink(missing_ok=True)
        error = machine_error(exc, side)
        why = error.message.removeprefix("cannot write: ") if error else exc.strerror
        raise CasebaseError(
            f"line {line} is an incomplete row (a save that was cut off) and cannot be moved aside ({why}); nothing was saved",
            file=path,
        ) from None
    log.warning(
        "%s:%d: an incomplete last row (%d bytes, a save that was cut off) was moved to %s; nothing in it was acknowledged",
        path, line, len(tail), side.name,
    )


def _sync_folder(folder: Path) -> None:
    """fsync a folder, so a file just created in it survives a crash of the machine."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not every file system syncs folders; the file's own data is synced
    finally:
        os.close(fd)


def latest(decisions: list[Decision]) -> dict[tuple[str, str], Decision]:
    """The decision that counts for each (coder, excerpt): the last one written."""
    current: dict[tuple[str, str], Decision] = {}
    for decision in decisions:
        current[(decision.coder, decision.excerpt_id)] = decision
    return current


@dataclass
class Placed:
    """A decision read against today's codebook and excerpts."""

    decision: Decision
    excerpt_id: str  # where it lands now (re-anchored if the old id is gone)
    codes: list[str]  # present, in today's code ids
    judged: list[str]  # the codes the decision judged, in today's code ids
    reanchored: bool = False


@dataclass
class Resolution:
    placed: list[Placed]
    unplaced: list[Decision]  # excerpt gone and the snippet matches no excerpt (or several)
    deleted_codes: list[tuple[Decision, str]]  # codes no longer in the codebook
    _settled: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def current(self) -> dict[tuple[str, str], Placed]:
        """The decision that counts per (coder, excerpt): the latest placed one
        (a coder's own readings; adjudications are apart, see ``adjudicated``)."""
        result: dict[tuple[str, str], Placed] = {}
        for placed in self.placed:
            if not placed.decision.adjudication:
                result[(placed.decision.coder, placed.excerpt_id)] = placed
        return result

    def adjudicated(self) -> dict[str, Placed]:
        """The latest ruling per excerpt."""
        result: dict[str, Placed] = {}
        for placed in self.placed:
            if placed.decision.adjudication:
                held = result.get(placed.excerpt_id)
                if held is None or moment(placed.decision.timestamp) >= moment(held.decision.timestamp):
                    result[placed.excerpt_id] = placed
        return result

    def settled(self) -> tuple[dict[str, Placed], dict[str, list[Placed]]]:
        # Asked once per batch of a build's coding pass: worked out once.
        if self._settled is None:
            self._settled = self._settle()
        return self._settled

    def _settle(self) -> tuple[dict[str, Placed], dict[str, list[Placed]]]:
        """The decision each excerpt is learnt from, and the disagreements left open.

        An excerpt's coders agree when their current decisions give the same codes
        on every code they both judged; then the latest decision counts. Where they
        disagree, an adjudicator's ruling made after every one of their decisions
        counts; without one the excerpt is left out of training (an open
        disagreement, not "last saved wins")."""
        by_excerpt: dict[str, list[Placed]] = {}
        for placed in self.current().values():
            by_excerpt.setdefault(placed.excerpt_id, []).append(placed)
        rulings = self.adjudicated()
        settled: dict[str, Placed] = {}
        open_: dict[str, list[Placed]] = {}
        for excerpt_id, readings in by_excerpt.items():
            latest_reading = max(readings, key=lambda p: moment(p.decision.timestamp))
            ruling = rulings.get(excerpt_id)
            if ruling and moment(ruling.decision.timestamp) >= moment(latest_reading.decision.timestamp):
                settled[excerpt_id] = ruling
            elif disagree(readings):
                open_[excerpt_id] = readings
            else:
                settled[excerpt_id] = latest_reading
        for excerpt_id, ruling in rulings.items():
            settled.setdefault(excerpt_id, ruling)
        return settled, open_


def disagree(readings: list[Placed]) -> bool:
    """Whether any two readings differ on a code both judged."""
    for i, a in enumerate(readings):
        for b in readings[i + 1 :]:
            shared = set(a.judged) & set(b.judged)
            if {c for c in a.codes if c in shared} != {c for c in b.codes if c in shared}:
                return True
    return False


class TextsByID:
    """Excerpt texts held in a dict, looked up as ``resolve`` needs them."""

    def __init__(self, texts: dict[str, str]):
        self.texts = texts

    def known(self, ids) -> set[str]:
        return {i for i in ids if i in self.texts}

    def items(self):
        return self.texts.items()


def resolve(
    decisions: list[Decision],
    codebook: Codebook,
    registry: dict[str, list[str]],
    excerpts,
) -> Resolution:
    """Map decisions onto today's excerpts and codes. Nothing is dropped silently:
    what cannot be placed is returned for ``casebase check`` to report.

    ``excerpts`` are today's excerpt texts by id, or a lookup with the same two
    methods as ``TextsByID`` (a database being built: ``store.ExcerptTexts``),
    so a million excerpts need not be held in memory to place a few thousand
    decisions."""
    if isinstance(excerpts, dict):
        excerpts = TextsByID(excerpts)
    renamed = codebook.renamed()
    known = excerpts.known({d.excerpt_id for d in decisions})
    # Only decisions whose excerpt is gone are looked up by snippet: one pass, if any.
    lost = {d.snippet for d in decisions if d.excerpt_id not in known}
    by_snippet: dict[str, list[str]] = {}
    if lost:
        for excerpt_id, text in excerpts.items():
            snippet = snippet_of(text)
            if snippet in lost:
                by_snippet.setdefault(snippet, []).append(excerpt_id)

    def today(code_id: str) -> str | None:
        if code_id in codebook.codes:
            return code_id
        return renamed.get(code_id)

    placed, unplaced, deleted = [], [], []
    for decision in decisions:
        if decision.codebook_version not in registry:
            raise CasebaseError(
                f"unknown codebook version {decision.codebook_version!r} (not in {REGISTRY})",
                file=decision.file,
                line=decision.line,
            )
        known_then = registry[decision.codebook_version]
        codes = []
        for code_id in decision.codes:
            if code_id not in known_then and today(code_id) is None:
                raise CasebaseError(f"unknown code id {code_id!r}", file=decision.file, line=decision.line)
            mapped = today(code_id)
            # A code made a grouping code since is no reading any more: as if deleted.
            if mapped is None or not codebook.codes[mapped].codable:
                deleted.append((decision, code_id))
            else:
                codes.append(mapped)
        judged = {today(c) for c in known_then} - {None}
        excerpt_id, reanchored = decision.excerpt_id, False
        if excerpt_id not in known:
            candidates = by_snippet.get(decision.snippet, [])
            if len(candidates) != 1:
                unplaced.append(decision)
                continue
            excerpt_id, reanchored = candidates[0], True
        placed.append(
            Placed(
                decision=decision,
                excerpt_id=excerpt_id,
                codes=codebook.close(codes),
                judged=[c for c in codebook.codes if c in judged],
                reanchored=reanchored,
            )
        )
    return Resolution(placed=placed, unplaced=unplaced, deleted_codes=deleted)


def read_import(path: Path, coder: str, excerpt_texts, codebook: Codebook, progress: Progress | None = None) -> list[Decision]:
    """Decisions made outside casebase (a spreadsheet, another tool's export):
    a .csv with columns excerpt_id, codes, note (and optionally text, the start
    of the excerpt as read) or a .jsonl with those fields. Every row is checked
    before anything is written. ``excerpt_texts``: the texts by id, a dict or a
    lookup that answers ``[]`` (``store.ExcerptTexts``). ``progress`` hears the
    rows checked (stage "decisions")."""
    path = Path(path)
    data = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CasebaseError("not valid UTF-8", file=path, line=data[: exc.start].count(b"\n") + 1) from None
    del data
    if path.suffix.lower() == ".csv":
        rows = _import_rows(text, path)
    elif path.suffix.lower() == ".jsonl":
        rows = files.json_lines(text, path)
    else:
        raise CasebaseError("use a .csv or .jsonl file", file=path)
    lines = text.count("\n") + 1  # how far the file has been read, by its line numbers
    progress = progress or Progress()
    progress.start("decisions")
    decisions = []
    for line, row in rows:
        excerpt_id = row.get("excerpt_id")
        excerpt_id = str(excerpt_id).strip() if isinstance(excerpt_id, (str, int)) else ""
        try:
            excerpt_text = excerpt_texts[excerpt_id]  # one look-up per row
        except KeyError:
            raise CasebaseError(f"unknown excerpt id {excerpt_id!r}", file=path, line=line) from None
        codes = row.get("codes") or []
        if isinstance(codes, str):
            codes = _split_codes(codes)
        elif isinstance(codes, list) and all(isinstance(c, str) for c in codes):
            codes = list(codes)
        else:
            raise CasebaseError(
                f"'codes' must be code ids separated by spaces, or a list of code ids; not {codes!r}", file=path, line=line
            )
        unknown = [c for c in codes if c not in codebook.codes]
        if unknown:
            raise CasebaseError(f"unknown code id(s): {', '.join(unknown)}", file=path, line=line)
        grouping = [c for c in codes if not codebook.codes[c].codable]
        if grouping:
            raise CasebaseError(
                f"{', '.join(grouping)}: a grouping code (codable: false) is never coded; choose one of its codes", file=path, line=line
            )
        note = row.get("note")
        if note is not None and not isinstance(note, str):
            raise CasebaseError("'note' must be a text", file=path, line=line)
        problem = note_problem((note or "").strip())
        if problem:
            raise CasebaseError(problem, file=path, line=line)
        # An optional "text" (the start of the excerpt as the coder read it) guards
        # against a decision written against the wrong excerpt id.
        seen = " ".join(str(row.get("text") or "").split())
        if seen and not " ".join(excerpt_text.split()).startswith(seen):
            raise CasebaseError(
                f"the text {seen[:40]!r} is not the start of excerpt {excerpt_id!r}; was the decision written for another excerpt?",
                file=path,
                line=line,
            )
        decisions.append(
            Decision(
                excerpt_id=excerpt_id,
                snippet=snippet_of(excerpt_text),
                codes=codes,
                coder=coder,
                timestamp=now(),
                codebook_version=codebook.version,
                note=(note or "").strip(),
            )
        )
        progress.advance(1, share=line / lines)
    progress.end()
    return decisions


def _import_rows(text: str, path: Path):
    """(line, row) for each row of an import CSV, read as it is checked."""
    _read_csv_limit()
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise CasebaseError(f"unreadable CSV: {exc}", file=path, line=1) from None
    missing = {"excerpt_id", "codes"} - set(fieldnames or [])
    if missing:
        raise CasebaseError(f"missing column(s): {', '.join(sorted(missing))}", file=path, line=1)
    for row in _rows(reader, path):
        if None in row:
            raise CasebaseError("more values than columns", file=path, line=reader.line_num)
        yield reader.line_num, row
