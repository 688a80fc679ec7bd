"""Importing a REFI-QDA project (.qdpx) into the corpus.

What comes in, and where it goes:

- each text source: its text, exactly as the project holds it, in
  ``corpus/texts/<id>.txt`` with a ``sources.yaml`` entry (parser ``plain``:
  paragraphs between blank lines, nothing rewritten); PDF, picture, audio and
  video sources, and texts kept outside the project, are reported and skipped;
- the codebook: merged into codebook.yaml, codes found by GUID, then by name
  (as ``import qdc``); codes of the codebook the project lacks stay;
- the users: coders; their codings: decisions in ``corpus/coding/<coder>.csv``,
  one per coder and excerpt, anchored to the excerpts the selections cover. A
  selection codes an excerpt when it covers most of it (more than half its
  characters); a selection that covers no excerpt so is reported with its
  source and position, never dropped silently. These decisions are the other
  tool's coders' readings carried over, under their names and dates.

Everything is read and checked before anything is written: a hostile or
broken file (member names outside the archive, a zip bomb, a huge member,
malformed XML, entity declarations, positions beyond the text, references to
GUIDs the project does not define) is one error line, and nothing is written.

The writing itself touches several files. A record of what they were
(``corpus/.import-qdpx.json``) is written first and removed last: a failed write
is undone at once, and an import that was killed is undone by the next one,
while build and check refuse the half-written corpus meanwhile.
"""

from __future__ import annotations

import base64
import bisect
import io
import json
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import yaml
from filelock import FileLock, Timeout

from casebase.coding import codebook as codebook_mod
from casebase.coding import decision_files
from casebase.errors import MAX_FILE_BYTES, CasebaseError, on_file, read_bytes
from casebase.files import atomic_path
from casebase.ingest import segment
from casebase.ingest import sources as sources_mod
from casebase.ingest.parsers import plain
from casebase.progress import Progress
from casebase.publish import refiqda

# Limits on what an archive may hold; a real project is far below every one.
MAX_MEMBERS = 20_000
MAX_MEMBER_BYTES = MAX_FILE_BYTES
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
# Text and XML deflate to a fifth or so; a member that inflates a hundredfold and more
# past a megabyte is a zip bomb, not a project.
MAX_RATIO = 100
RATIO_FLOOR = 1024 * 1024
# Held while an import runs in a corpus (beside the record of what it changes).
IMPORT_LOCK = ".import-qdpx.lock"
# The longest source id taken from a project (it names the source's text file).
MAX_SOURCE_ID = 100
# The share of an excerpt's characters a selection must cover to code it.
COVERAGE = 0.5
UNKNOWN_CODER = "ukendt"
NON_TEXT_SOURCES = {
    "PDFSource": "PDF",
    "PictureSource": "picture",
    "AudioSource": "audio",
    "VideoSource": "video",
}


@dataclass
class Unplaced:
    source: str
    start: int
    end: int
    text: str
    coder: str


@dataclass
class QdpxReport:
    path: Path
    sources: list[str] = field(default_factory=list)  # source ids imported
    skipped: list[str] = field(default_factory=list)  # one line each: what was skipped and why
    codes: int = 0
    kept: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    codebook_path: Path | None = None
    decisions: int = 0
    coders: dict[str, int] = field(default_factory=dict)  # coder -> decisions
    rulings: int = 0
    codings: int = 0
    unplaced: list[Unplaced] = field(default_factory=list)
    machine: int = 0  # codings by casebase's model or rules, left out
    grouping: list[str] = field(default_factory=list)  # codings of non-codable codes, left out
    cases: int = 0  # cases imported (as sources.yaml ``cases`` of their source)
    cases_skipped: list[str] = field(default_factory=list)
    answers: int = 0  # cases that hold a survey answer's attributes, not imported
    undone: str | None = None  # the project of an earlier import that was cut off, undone first


class _Archive:
    """A .qdpx read without ever touching the disk: member names checked, sizes
    bounded before and while inflating."""

    def __init__(self, path: Path):
        self.path = path
        data = read_bytes(path)
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
            raise CasebaseError(f"not a REFI-QDA project: not a readable zip archive ({exc})", file=path) from None
        if len(infos) > MAX_MEMBERS:
            raise CasebaseError(f"the archive has {len(infos):,} members; casebase reads at most {MAX_MEMBERS:,}", file=path)
        total = 0
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
                raise CasebaseError(f"the archive member {name!r} points outside the archive; refusing the file", file=path)
            if info.file_size > MAX_MEMBER_BYTES:
                raise CasebaseError(
                    f"the archive member {name!r} is {info.file_size:,} bytes unpacked; the most casebase reads is {MAX_MEMBER_BYTES:,}",
                    file=path,
                )
            if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise CasebaseError(
                    f"the archive member {name!r} unpacks {info.file_size // max(info.compress_size, 1):,} times its size"
                    " (a zip bomb?); refusing the file",
                    file=path,
                )
            if name in self.members:
                # Two members of one name: which one is the text (or the project) would be the reader's guess.
                raise CasebaseError(f"the archive has two members named {name!r}; refusing the file", file=path)
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise CasebaseError(f"the archive unpacks to more than {MAX_TOTAL_BYTES:,} bytes; refusing the file", file=path)
            self.members[name] = info

    def read(self, name: str) -> bytes:
        info = self.members.get(name)
        if info is None:
            raise CasebaseError(f"the archive has no {name!r}", file=self.path)
        try:
            with self.zip.open(info) as handle:
                # The header's size may lie: read no more than it promised (and the limit).
                data = handle.read(min(info.file_size, MAX_MEMBER_BYTES) + 1)
        # What zipfile raises for an archive it cannot unpack: a damaged member (BadZipFile,
        # zlib.error, EOFError), a compression method it has no codec for, such as
        # Deflate64 (NotImplementedError), an encrypted member (RuntimeError).
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError) as exc:
            raise CasebaseError(f"the archive member {name!r} cannot be read ({exc})", file=self.path) from None
        if len(data) > info.file_size:
            raise CasebaseError(f"the archive member {name!r} is larger than its header says; refusing the file", file=self.path)
        return data


def _text(node: refiqda._Node | None) -> str:
    return "".join(node.text) if node is not None else ""


def _first(node: refiqda._Node, tag: str) -> refiqda._Node | None:
    found = node.find(tag)
    return found[0] if found else None


def _position(node: refiqda._Node, name: str, where: str) -> int:
    value = node.attrs.get(name, "").strip()
    if not re.fullmatch(r"\d{1,12}", value):
        raise CasebaseError(f"a selection's {name} {value!r} is not a position", file=where, line=node.line)
    return int(value)


def _timestamp(value: str | None) -> str | None:
    """A REFI-QDA dateTime as casebase writes a decision's time (UTC, +00:00)."""
    stamp = refiqda.utc(value)
    if stamp is None:
        return None
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).isoformat(timespec="seconds")


def coder_id(name: str) -> str:
    """A coder id from a user's name in another tool: 'Anna Jensen' -> 'anna-jensen'."""
    text = segment.slug(name)
    if text == "x" and not name.strip().lower() == "x":
        text = UNKNOWN_CODER
    if text in ("codebooks", decision_files.ADJUDICATIONS, "samples"):
        text += "-import"
    return text


@dataclass
class _Source:
    guid: str
    id: str
    name: str
    text: str
    entry: dict
    selections: list  # (line, start, end, [(user guid | None, date, code guid, line)])


def _variables(node: refiqda._Node, variables: dict[str, str]) -> dict[str, str]:
    values = {}
    for holder in node.find("VariableValue"):
        ref = _first(holder, "VariableRef")
        name = variables.get(refiqda.guid_of(ref.attrs.get("targetGUID")) if ref is not None else None)
        for child in holder.children:
            if child.tag != "VariableRef" and name:
                values[name] = _text(child).strip()
    return values


def _source_entry(source_id: str, name: str, node: refiqda._Node, values: dict[str, str], path: Path) -> dict:
    year = values.get(refiqda.SOURCE_VARIABLES[1][1], "")
    stamp = refiqda.utc(node.attrs.get("creationDateTime"))
    if not re.fullmatch(r"\d{4}", year):
        year = stamp[:4] if stamp else str(datetime.now(timezone.utc).year)
    kind = values.get(refiqda.SOURCE_VARIABLES[2][1], "")
    entry = {
        "id": source_id,
        "file": f"texts/{source_id}.txt",
        "title": name,
        "publisher": values.get(refiqda.SOURCE_VARIABLES[0][1]) or f"(importeret fra {path.name})",
        "year": int(year),
        "kind": kind if kind in sources_mod.SOURCE_KINDS and kind != "survey" else "report",
        "language": "da",
        "parser": "plain",
    }
    # casebase's export adds the licence and the address to the description: read them back.
    lines = []
    for line in _text(_first(node, "Description")).strip().splitlines():
        if line.startswith("Licens: ") and "licence" not in entry:
            entry["licence"] = line.removeprefix("Licens: ").strip()
        elif line.startswith("URL: ") and "url" not in entry and re.match(r"https?://\S+$", line.removeprefix("URL: ").strip()):
            entry["url"] = line.removeprefix("URL: ").strip()
        else:
            lines.append(line)
    description = "\n".join(lines).strip()
    if description:
        entry["description"] = description
    return entry


def read_project(path: Path, corpus: Path, progress: Progress | None = None):
    """The project's users, codes and text sources, checked through; nothing written.
    ``progress`` hears the share of project.qde parsed and the sources read."""
    progress = progress or Progress()
    archive = _Archive(path)
    where = f"{path} (project.qde)"
    if "project.qde" not in archive.members:
        raise CasebaseError("not a REFI-QDA project: the archive has no project.qde", file=path)
    root = refiqda.parse_xml_bytes(archive.read("project.qde"), where, lambda share: progress.advance(0, share=share))
    if root.tag != "Project" or root.ns != refiqda.NS_PROJECT:
        found = f"<{root.tag}>" + (f" in namespace {root.ns}" if root.ns else " without a namespace")
        raise CasebaseError(
            f"not a REFI-QDA project: the root element is {found}, expected <Project> in {refiqda.NS_PROJECT}",
            file=where,
            line=root.line,
        )
    users = {}
    for users_el in root.find("Users"):
        for user in users_el.find("User"):
            key = refiqda.guid_of(user.attrs.get("guid"))
            if key is None:
                raise CasebaseError("a <User> has no valid guid", file=where, line=user.line)
            if key in users:
                raise CasebaseError(f"duplicate GUID {key} (user {user.attrs.get('name', '')!r}; first at line {users[key][2]})", file=where, line=user.line)
            users[key] = (user.attrs.get("name", "").strip(), user.attrs.get("id", "").strip(), user.line)
    codebook_el = _first(root, "CodeBook")
    codes = refiqda.codes_of(codebook_el, where) if codebook_el is not None else []
    variables = {}
    for variables_el in root.find("Variables"):
        for variable in variables_el.find("Variable"):
            variables[refiqda.guid_of(variable.attrs.get("guid"))] = variable.attrs.get("name", "").strip()
    known_codes = {code.guid for code in codes}
    grouping = {code.guid: code.name for code in codes if not code.codable}
    taken, corpus_texts = _corpus_sources(corpus)
    report = QdpxReport(path=path)
    sources: list[_Source] = []
    spans: dict[str, tuple[str, int, int]] = {}  # every selection's GUID -> (source GUID, start, end)
    source_lines: dict[str, int] = {}  # text sources' GUIDs -> their line
    for sources_el in root.find("Sources"):
        for node in sources_el.children:
            name = " ".join(node.attrs.get("name", "").split()) or node.attrs.get("guid", "")
            if node.tag in NON_TEXT_SOURCES:
                report.skipped.append(
                    f"{where}:{node.line}: {NON_TEXT_SOURCES[node.tag]} source {name!r} skipped: casebase imports text sources only"
                )
                continue
            if node.tag != "TextSource":
                continue
            source_guid = refiqda.guid_of(node.attrs.get("guid"))
            if source_guid is None:
                raise CasebaseError(f"text source {name!r} has no valid guid", file=where, line=node.line)
            if source_guid in source_lines:
                # Selections and cases name their source by GUID: two sources with one would be guesswork.
                raise CasebaseError(
                    f"duplicate GUID {source_guid} (source {name!r}; first at line {source_lines[source_guid]})", file=where, line=node.line
                )
            source_lines[source_guid] = node.line
            text_path = node.attrs.get("plainTextPath", "").strip()
            content = _first(node, "PlainTextContent")
            if content is not None:
                text = _text(content)
            elif text_path.startswith("internal://"):
                member = "sources/" + text_path.removeprefix("internal://")
                data = archive.read(member)
                text = sources_mod.decode_text(data, f"{path} ({member})")
            else:
                report.skipped.append(
                    f"{where}:{node.line}: text source {name!r} skipped: its text is outside the project ({text_path or 'no plainTextPath'})"
                )
                continue
            text = text.removeprefix("\ufeff")
            sources_mod.check_line_lengths(text, f"{path} (source {name!r})")
            if text in corpus_texts:
                raise CasebaseError(
                    f"source {name!r} has the same text as the corpus's source {corpus_texts[text]!r}; was the project imported before?",
                    file=where,
                    line=node.line,
                )
            values = _variables(node, variables)
            source_id = _source_id(values.get(refiqda.SOURCE_ID_VARIABLE[1], ""), name, taken)
            if source_id in taken:
                raise CasebaseError(
                    f"source {name!r} has the id {source_id!r}, which {taken[source_id]}; was the project imported before?",
                    file=where,
                    line=node.line,
                )
            taken[source_id] = "this project has already"
            selections = []
            for selection in node.find("PlainTextSelection"):
                start, end = _position(selection, "startPosition", where), _position(selection, "endPosition", where)
                if not start <= end <= len(text):
                    raise CasebaseError(
                        f"selection [{start}, {end}) lies outside the text of source {name!r} ({len(text):,} characters)",
                        file=where,
                        line=selection.line,
                    )
                selection_guid = refiqda.guid_of(selection.attrs.get("guid"))
                if selection_guid:
                    spans[selection_guid] = (source_guid, start, end)
                codings = []
                for coding in selection.find("Coding"):
                    ref = _first(coding, "CodeRef")
                    target = refiqda.guid_of(ref.attrs.get("targetGUID")) if ref is not None else None
                    if target not in known_codes:
                        raise CasebaseError(
                            f"a coding refers to code {ref.attrs.get('targetGUID') if ref is not None else None!r}, which the codebook does not define",
                            file=where,
                            line=(ref or coding).line,
                        )
                    user_attr = coding.attrs.get("creatingUser") or selection.attrs.get("creatingUser")
                    user = refiqda.guid_of(user_attr) if user_attr else None
                    if user_attr and user not in users:
                        raise CasebaseError(f"a coding's user {user_attr!r} is not among the project's users", file=where, line=coding.line)
                    if target in grouping:
                        report.grouping.append(f"{where}:{coding.line}: a coding of the grouping code {grouping[target]!r} (isCodable=\"false\") in source {name!r} [{start}, {end}) left out")
                        continue
                    if user in users and users[user][1].startswith(refiqda.MACHINE_USER_IDS):
                        # casebase's own model or rules: suggestions, never a coder's reading.
                        report.machine += 1
                        continue
                    date = coding.attrs.get("creationDateTime") or selection.attrs.get("creationDateTime")
                    codings.append((user, date, target))
                if codings:
                    selections.append((selection.line, start, end, codings))
            values.pop(refiqda.SOURCE_ID_VARIABLE[1], None)
            entry = _source_entry(source_id, name, node, values, path)
            sources.append(_Source(source_guid, source_id, name, text, entry, selections))
            progress.advance(1)
    if not sources:
        raise CasebaseError("the project has no text source casebase can import", file=where, line=root.line)
    for cases_el in root.find("Cases"):
        for case in cases_el.find("Case"):
            _read_case(case, {s.guid: s for s in sources}, spans, variables, where, report)
    return users, codes, sources, report


# The case columns by the names casebase's export gives their variables, and the
# labels of the ones it writes into the case's description.
_CASE_BY_LABEL = {c.label: c for c in segment.CASE_COLUMNS}


def _read_case(case: refiqda._Node, sources: dict, spans: dict, variables: dict, where: str, report: QdpxReport) -> None:
    """A case of the project as a case of the source its text lies in (sources.yaml
    ``cases``): its span, title and the case columns its variables and description give."""
    name = " ".join(case.attrs.get("name", "").split())
    if not name:
        return  # a nameless case holds a file's variables (MAXQDA, Quirkos), no case
    values = _variables(case, variables)
    if refiqda.ANSWER_ID_VARIABLE[1] in values:
        report.answers += 1  # a survey answer's attributes (casebase's export): its text is a paragraph now
        return
    refs = [refiqda.guid_of(r.attrs.get("targetGUID")) for r in case.find("SourceRef")]
    selected = [spans[g] for g in (refiqda.guid_of(r.attrs.get("targetGUID")) for r in case.find("SelectionRef")) if g in spans]
    source = next((sources[g] for g in refs + [s[0] for s in selected] if g in sources), None)
    recorded_id = values.get(refiqda.CASE_ID_VARIABLE[1], "")
    if source is None and recorded_id:
        # A client that keeps a case's variables but not its links (QualCoder): casebase's
        # case id still names its source.
        owners = [s for s in sources.values() if recorded_id.startswith(f"{s.id}-")]
        source = max(owners, key=lambda s: len(s.id), default=None)
    if source is None:
        report.cases_skipped.append(f"{where}:{case.line}: case {name!r} refers to no imported text source; not imported")
        return
    recorded = re.fullmatch(r"(\d+)-(\d+)", values.get(refiqda.CASE_SPAN_VARIABLE[1], ""))
    inside = [(s, e) for g, s, e in selected if g == source.guid]
    if recorded and int(recorded.group(1)) < int(recorded.group(2)) <= len(source.text):
        start, end = int(recorded.group(1)), int(recorded.group(2))
    elif inside:
        start, end = min(s for s, _ in inside), max(e for _, e in inside)
    else:
        start, end = 0, len(source.text)  # a case linked to its whole source (an interview, say)
    if start >= end:
        report.cases_skipped.append(f"{where}:{case.line}: case {name!r} covers no text; not imported")
        return
    key = recorded_id.removeprefix(f"{source.id}-") if recorded_id.startswith(f"{source.id}-") else name
    entry = {"key": segment.slug(key), "title": name, "start": start, "end": end}
    taken = {c["key"] for c in source.entry.get("cases", [])}
    base, n = entry["key"], 2
    while entry["key"] in taken:
        entry["key"], n = f"{base}-{n}", n + 1
    for label, value in values.items():
        column = _CASE_BY_LABEL.get(label)
        if column and value:
            if column.type is int:
                if re.fullmatch(r"\d{1,9}", value):
                    entry[column.name] = int(value)
            else:
                entry[column.name] = value
    for line in _text(_first(case, "Description")).splitlines():
        label, _, value = line.partition(": ")
        if label in _CASE_BY_LABEL and value.strip() and _CASE_BY_LABEL[label].name not in entry:
            entry[_CASE_BY_LABEL[label].name] = value.strip()
    source.entry.setdefault("cases", []).append(entry)
    report.cases += 1


def _corpus_sources(corpus: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Source ids the corpus has and the text files in the way (what an imported
    source may not be called), and the corpus's texts by their content."""
    taken, texts = {}, {}
    if (corpus / "sources.yaml").exists():
        for source in sources_mod.load_sources(corpus):
            taken[source.id] = f"the corpus's sources.yaml has (line {source.line})"
            if source.parser != sources_mod.SURVEY_PARSER and source.path.is_file():
                with on_file(source.path):
                    texts.setdefault(source.path.read_bytes().decode("utf-8", "replace").removeprefix("\ufeff"), source.id)
    for text in (corpus / "texts").glob("*.txt") if (corpus / "texts").is_dir() else []:
        taken.setdefault(text.stem, f"names the file {text} that exists")
    return taken, texts


def _source_id(recorded: str, name: str, taken: dict[str, str]) -> str:
    # casebase's own export names its sources; another tool's source gets an id from its name.
    if re.fullmatch(r"[a-z0-9][a-z0-9-]*", recorded) and len(recorded) <= MAX_SOURCE_ID:
        return recorded
    base = segment.slug(name)[:40].strip("-") or "kilde"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def _coders(users: dict[str, tuple[str, str, int]]) -> dict[str | None, tuple[str, bool]]:
    """User GUID -> (coder id, whether their codings are rulings)."""
    result: dict[str | None, tuple[str, bool]] = {None: (UNKNOWN_CODER, False)}
    # Codings without a user are filed under UNKNOWN_CODER: a user of that name is another coder.
    used: dict[tuple[str, bool], str | None] = {(UNKNOWN_CODER, False): None}
    for key, (name, user_id, _) in users.items():
        ruling = user_id.startswith(refiqda.ADJUDICATOR_USER_ID)
        base = coder_id(user_id.removeprefix(refiqda.ADJUDICATOR_USER_ID) if ruling else (name or user_id))
        candidate, n = base, 2
        while used.get((candidate, ruling), key) != key:
            candidate, n = f"{base}-{n}", n + 1
        used[(candidate, ruling)] = key
        result[key] = (candidate, ruling)
    return result


def import_qdpx(
    path: Path, corpus: Path, codebook_path: Path, output: Path | None = None, check: bool = False, progress: Progress | None = None
) -> QdpxReport:
    """``progress`` hears the stages: reading the project, placing its codings on
    the excerpts (selections done of all), writing the corpus."""
    corpus, progress = Path(corpus), progress or Progress()
    if not corpus.is_dir():
        return _import_qdpx(path, corpus, codebook_path, output, check, progress)
    if not (corpus / "sources.yaml").exists() and any(corpus.iterdir()):
        # A folder that holds other things is no corpus: a mistyped --corpus (the project's
        # own folder, a home folder) would get texts/, coding/ and a sources.yaml strewn in it.
        raise CasebaseError("is no corpus (it has no sources.yaml) and is not empty; give a corpus, or a new or empty folder", file=corpus)
    # One import into a corpus at a time: two would each merge the codebook and
    # sources.yaml as they found them, and the second would drop the first's codes.
    lock = FileLock(str(corpus / IMPORT_LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise CasebaseError("another 'casebase import qdpx' into this corpus is running; run this one when it has finished", file=corpus) from None
    try:
        return _import_qdpx(path, corpus, codebook_path, output, check, progress)
    finally:
        lock.release()


def _import_qdpx(path: Path, corpus: Path, codebook_path: Path, output: Path | None, check: bool, progress: Progress) -> QdpxReport:
    path, corpus, codebook_path = Path(path), Path(corpus), Path(codebook_path)
    out = Path(output) if output else codebook_path
    undone = None if check else undo_interrupted(corpus, (codebook_path, out))
    if output and out.exists():
        raise CasebaseError("already exists; choose another --output, or leave it out to merge into --codebook", file=out)
    progress.start("project")
    users, qdc_codes, sources, report = read_project(path, corpus, progress)
    report.undone = undone
    existing = codebook_mod.load(codebook_path) if codebook_path.exists() else None

    # The codebook: the project's codes merged into the existing ones.
    if qdc_codes:
        codes, merged = refiqda.codes_from_qdc(qdc_codes, existing, path)
        if existing:
            codes += [existing.codes[code_id] for code_id in merged.removed]
        ids = {q.guid: code.id for q, code in zip(qdc_codes, codes)}
        report.kept, report.new = merged.kept, merged.new
        text = refiqda.codebook_yaml(codes, refiqda._header(codebook_path if existing else None, path))
    elif existing:
        codes, ids, text = list(existing.codes.values()), {}, None
    else:
        raise CasebaseError("the project has no codebook and there is no codebook.yaml to code with", file=path)
    report.codes = len(codes)
    report.codebook_path = out if text is not None else codebook_path

    # Decisions: per source, the excerpts the plain parser will make, each
    # selection's codings on the excerpts it mostly covers.
    coders = _coders(users)
    readings: dict[tuple[str, bool, str], dict] = {}
    progress.start("place", total=sum(len(source.selections) for source in sources))
    for source in sources:
        spans = plain.paragraph_spans(source.text)
        blocks, _ = plain.parse(source.text)
        _, excerpts = segment.assemble(source.id, blocks)
        assert len(excerpts) == len(spans)
        # The paragraphs lie in order without overlap: a selection's candidates are found by
        # bisection (a project may hold tens of thousands of selections in one long text).
        starts, ends = [s for s, _ in spans], [e for _, e in spans]
        for _, start, end, codings in source.selections:
            first, last = bisect.bisect_right(ends, start), bisect.bisect_left(starts, end)
            covered = [
                excerpts[i]
                for i in range(first, last)
                if min(end, ends[i]) - max(start, starts[i]) > COVERAGE * (ends[i] - starts[i])
            ]
            for user, date, target in codings:
                coder, ruling = coders[user]
                report.codings += 1
                if not covered:
                    report.unplaced.append(Unplaced(source.id, start, end, " ".join(source.text[start:end].split())[:60], coder))
                    continue
                for excerpt in covered:
                    held = readings.setdefault(
                        (coder, ruling, excerpt.id), {"codes": set(), "time": None, "excerpt": excerpt}
                    )
                    held["codes"].add(ids[target])
                    stamp = _timestamp(date)
                    if stamp and (held["time"] is None or stamp > held["time"]):
                        held["time"] = stamp
            progress.advance(1)
    book = _checked_codebook(text, path) if text is not None else existing
    order = {code_id: i for i, code_id in enumerate(book.codes)}
    decisions = []
    for (coder, ruling, excerpt_id), held in readings.items():
        decisions.append(
            decision_files.Decision(
                excerpt_id=excerpt_id,
                snippet=decision_files.snippet_of(held["excerpt"].text),
                codes=sorted(held["codes"], key=order.__getitem__),
                coder=coder,
                timestamp=held["time"] or decision_files.now(),
                codebook_version=book.version,
                adjudication=ruling,
            )
        )
        report.coders[coder] = report.coders.get(coder, 0) + 1
        report.rulings += ruling
    report.decisions = len(decisions)
    report.sources = [s.id for s in sources]
    if check:
        progress.end()
        return report
    progress.start("corpus")

    # Writing: the texts, then sources.yaml, the codebook and the decisions. Each
    # file is written whole or not at all, but together they are several files:
    # the record of what was there before lets a cut-off import be undone.
    texts = corpus / "texts"
    coder_files = sorted({decision_files.coder_file(corpus / "coding", d.coder, d.adjudication) for d in decisions})
    _write_record(corpus, path, sources, [corpus / "sources.yaml", out if text is not None else None], coder_files)
    try:
        for source in sources:
            target = texts / f"{source.id}.txt"
            with on_file(target):
                texts.mkdir(parents=True, exist_ok=True)
                with atomic_path(target) as tmp:
                    tmp.write_text(source.text, encoding="utf-8", newline="")
        _append_sources(corpus / "sources.yaml", [s.entry for s in sources], path)
        if text is not None:
            with on_file(out):
                with atomic_path(out) as tmp:
                    tmp.write_text(text, encoding="utf-8")
            book = codebook_mod.load(out)
        decision_files.append(corpus / "coding", decisions, book)
    except BaseException:
        # A write that failed (a full disk, a codebook path that is a folder) or Ctrl-C:
        # what was written is undone now. Should the undo fail too, the record stays
        # and the next import undoes it.
        try:
            undo_interrupted(corpus, (codebook_path, out))
        except CasebaseError:
            pass
        raise
    with on_file(corpus / sources_mod.IMPORT_RECORD):
        (corpus / sources_mod.IMPORT_RECORD).unlink()
    progress.end()
    return report


def _write_record(corpus: Path, project: Path, sources: list, replaced: list, appended: list) -> None:
    """What the import is about to change, as it was: the files it replaces (their
    bytes, or None for a file it creates), the coders' files it appends to (their
    length) and the sources it adds. Written before anything else."""
    record = {
        "project": str(project),
        "sources": [s.id for s in sources],
        "replaced": {
            str(p): base64.b64encode(p.read_bytes()).decode("ascii") if p.exists() else None for p in replaced if p is not None
        },
        "appended": {str(p): _whole_lines(p) for p in appended},
    }
    target = corpus / sources_mod.IMPORT_RECORD
    with on_file(target):
        with atomic_path(target) as tmp:
            tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")


def _whole_lines(path: Path) -> int | None:
    """A coder's file's length up to its last line end (None: no file yet). A torn last
    line is moved to a side file by the import's own save (decision_files), so the file
    to cut back to ends before it."""
    if not path.exists():
        return None
    with on_file(path):
        data = path.read_bytes()
    return data.rfind(b"\n") + 1 if data and not data.endswith(b"\n") else len(data)


def undo_interrupted(corpus: Path, codebooks: tuple[Path, ...] = ()) -> str | None:
    """Undo an import that was cut off (killed, a power cut) half-way, from its
    record: the texts it added are removed, sources.yaml and the codebook are as
    they were, and each coder's file is cut back to its length before the import.
    Rows a coder saved meanwhile (never on an excerpt of the imported sources,
    which no build has seen) are kept. Returns the project's name, or None when
    no import was cut off.

    The record is a file in the corpus, which may come from elsewhere (a copy, a
    git clone): it is obeyed only for files of this corpus (its texts, sources.yaml,
    its coders' files) and the codebook(s) this import was given."""
    corpus = Path(corpus)
    target = corpus / sources_mod.IMPORT_RECORD
    if not target.exists():
        return None
    try:
        record = json.loads(read_bytes(target))
        source_ids = [str(source_id) for source_id in record["sources"]]
        replaced, appended = dict(record["replaced"]), dict(record["appended"])
        project = Path(str(record["project"])).name
    except (ValueError, KeyError, TypeError) as exc:
        raise CasebaseError(f"the record of a cut-off import cannot be read ({exc}); restore the corpus from git", file=target) from None
    coding = (corpus / "coding").resolve()
    allowed = {(corpus / "sources.yaml").resolve()} | {Path(p).resolve() for p in codebooks}
    strays = [n for n in replaced if Path(n).resolve() not in allowed]
    strays += [n for n in appended if not (Path(n).resolve().is_relative_to(coding) and n.endswith(".csv"))]
    strays += [i for i in source_ids if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", i)]
    if strays:
        raise CasebaseError(
            f"the record of a cut-off import names {strays[0]!r}, which is not this corpus's or the codebook's;"
            " it is not followed: restore the corpus from git and delete the record",
            file=target,
        )
    prefixes = tuple(f"{source_id}-".encode() for source_id in source_ids)
    texts = [corpus / "texts" / f"{source_id}.txt" for source_id in source_ids]
    for name, size in appended.items():
        coder_path = Path(name)
        with on_file(coder_path):
            if not coder_path.exists():
                continue
            with FileLock(str(coder_path) + ".lock"):
                data = coder_path.read_bytes()
                head, lines = data[: size or 0], data[size or 0 :].splitlines(keepends=True)
                # A last line without its line end is the import's own write, cut off.
                if lines and not lines[-1].endswith(b"\n"):
                    lines.pop()
                if size is None and lines and lines[0].startswith(b"excerpt_id,"):
                    head = lines.pop(0)  # the header the import wrote for a new coder
                kept = [line for line in lines if not line.startswith(prefixes)]
                if size is None and not kept:
                    coder_path.unlink()
                    continue
                with atomic_path(coder_path) as tmp:
                    tmp.write_bytes(head + b"".join(kept))
    for name, before in replaced.items():
        replaced_path = Path(name)
        with on_file(replaced_path):
            if before is None:
                replaced_path.unlink(missing_ok=True)
            else:
                with atomic_path(replaced_path) as tmp:
                    tmp.write_bytes(base64.b64decode(before))
    for text_path in texts:
        with on_file(text_path):
            text_path.unlink(missing_ok=True)
    with on_file(target):
        target.unlink()
    return project


def _checked_codebook(text: str, path: Path):
    """The merged codebook as casebase will load it (its version is the decisions')."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder) / "codebook.yaml"
        tmp.write_text(text, encoding="utf-8")
        try:
            return codebook_mod.load(tmp)
        except CasebaseError as exc:
            raise CasebaseError(f"the imported codebook would not load: {exc.message}", file=path) from None


SOURCES_HEADER = (
    "# One entry per source. Text files live in corpus/texts/.\n"
    "# Keys: id, file, title, publisher, year, kind, language, parser; optional: licence, url,\n"
    "#   description; for kind: survey also text_columns, id_column, attribute_columns, delimiter, sheet.\n"
    "sources:\n"
)


def _append_sources(target: Path, entries: list[dict], path: Path) -> None:
    blocks = []
    for entry in entries:
        dumped = yaml.dump([entry], Dumper=refiqda._Dumper, allow_unicode=True, sort_keys=False, width=96)
        blocks.append("".join(f"  {line}" if line.strip() else line for line in dumped.splitlines(keepends=True)))
    added = f"  # Imported from {path.name} with 'casebase import qdpx'.\n" + "\n".join(blocks)
    with on_file(target):
        before = target.read_text(encoding="utf-8") if target.exists() else SOURCES_HEADER
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            tmp.write_text(before.rstrip("\n") + "\n\n" + added, encoding="utf-8")
