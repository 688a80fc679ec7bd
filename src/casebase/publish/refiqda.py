"""REFI-QDA: the project exchange (.qdpx) and the codebook exchange (.qdc).

A .qdpx is a zip with ``project.qde`` (XML, namespace urn:QDA-XML:project:1.0)
and the source texts in ``sources/``; a .qdc is the codebook alone (namespace
urn:QDA-XML:codebook:1.0, the same Code/Codes structure). NVivo, ATLAS.ti,
MAXQDA and QDA Miner read and write both.

Choices this module makes, and why:

- GUIDs are uuid5 over casebase's stable ids (code id, source id, excerpt id,
  case id, coder), so a re-export of the same data is byte-identical and an
  export of a changed corpus diffs cleanly. A code's GUID is how an imported
  QDC finds the casebase code it came from: the id survives a round trip
  through another tool even when the code was renamed there.
- Selections are at the excerpt's offsets into the cleaned source text, in
  Unicode code points, which is what REFI-QDA counts and what Python indexes.
- Only human codings are exported by default: REFI-QDA has no field for
  provenance, so a tool would show a rule's or the model's suggestion as if a
  person had coded it. With ``origins`` the others come along, each under a
  User that names where it came from (``model run-…``, ``rules``).
- A code's description carries the definition and the include/exclude
  criteria as "Medtag:" / "Udelad:" lists; the import reads them back.
- XML is written with ElementTree and read with defusedxml's SAX expat
  reader: entity declarations and external references are refused, so a
  hostile file cannot expand or reach out, and the SAX locator gives the line
  numbers error messages need (ElementTree's elements do not keep them).
"""

from __future__ import annotations

import io
import json
import re
import unicodedata
import uuid
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from xml.etree import ElementTree as ET
from xml.sax import SAXParseException
from xml.sax.handler import ContentHandler, feature_namespaces

import yaml
from defusedxml import DefusedXmlException, EntitiesForbidden
from defusedxml.expatreader import create_parser

from casebase import __version__
from casebase.coding import codebook as codebook_mod
from casebase.store import database, source_text
from casebase.files import atomic_path
from casebase.coding.codebook import Code, Codebook
from casebase.errors import CasebaseError, read_bytes
from casebase.ingest.segment import CASE_COLUMNS

NS_PROJECT = "urn:QDA-XML:project:1.0"
NS_CODEBOOK = "urn:QDA-XML:codebook:1.0"
ORIGIN = f"casebase {__version__}"
DEFAULT_ORIGINS = ("human",)
INCLUDE_HEADING = "Medtag:"
EXCLUDE_HEADING = "Udelad:"
PROJECT_FILE = "project.qde"
# Zip entries carry this date so that two exports of the same data are the same bytes.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)

_GUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:casebase:refi-qda")
_GUID = re.compile(r"^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$")
_RGB = re.compile(r"^#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")
# Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# Case columns exported as REFI-QDA variables: column, variable name, type, description.
# The long case texts go into the case's description, the rest become variables.
CASE_FIELDS_IN_DESCRIPTION = tuple((c.name, c.label) for c in CASE_COLUMNS if c.name in ("purpose", "intervention", "learning"))
CASE_VARIABLES = tuple(
    (c.name, c.label, "Integer" if c.type is int else "Text", c.description)
    for c in CASE_COLUMNS
    if c.name not in dict(CASE_FIELDS_IN_DESCRIPTION)
)
SOURCE_VARIABLES = (
    ("publisher", "Udgiver", "Text", "Kildens udgiver"),
    ("year", "År", "Integer", "Udgivelsesår"),
    ("kind", "Type", "Text", "Kildens art (rapport, pressemeddelelse, survey …)"),
)
# Each kind of thing its own id variable: QualCoder (and others) file a variable under
# cases or under sources by where it is first used, so one name for both loses one side.
CASE_ID_VARIABLE = ("id", "Case-id (casebase)", "Text", "Casens id i casebase")
ANSWER_ID_VARIABLE = ("id", "Svar-id (casebase)", "Text", "Svarets uddrags-id i casebase")
SOURCE_ID_VARIABLE = ("id", "Kilde-id (casebase)", "Text", "Kildens id i casebase")
# Where a case's text lies in its source, "start-end" in REFI-QDA positions: a case is
# no selection of its own (a selection without a coding is an empty annotation in clients),
# so 'import qdpx' reads its span from here.
CASE_SPAN_VARIABLE = ("span", "Tekststed (casebase)", "Text", "Casens tekst i kilden: tegn start-slut")
ID_VARIABLES = (CASE_ID_VARIABLE, ANSWER_ID_VARIABLE, SOURCE_ID_VARIABLE, CASE_SPAN_VARIABLE)
# The User of an adjudicator's rulings: its id says so, so that 'import qdpx' files
# them as rulings again (other tools show the name).
ADJUDICATOR_USER_ID = "adjudicator:"
# The Users of the model's and the rules' codings: 'import qdpx' leaves their codings
# out, since they are suggestions, not a coder's reading.
MACHINE_USER_IDS = ("casebase-model:", "casebase-rules")


def guid(kind: str, key: str) -> str:
    """The GUID of a casebase thing: the same for the same id, export after export."""
    return str(uuid.uuid5(_GUID_NAMESPACE, f"{kind}:{key}"))


def code_guid(code_id: str) -> str:
    return guid("code", code_id)


# ---------------------------------------------------------------- writing XML


def _clean(text) -> str:
    return _NOT_XML.sub("", str(text))


def _root(tag: str, ns: str, attrs: dict) -> ET.Element:
    # The namespace is declared as the root's default and the tags stay unqualified:
    # ElementTree would otherwise invent an ns0: prefix, which some QDA tools do not expect.
    return ET.Element(tag, {"xmlns": ns, **{k: _clean(v) for k, v in attrs.items()}})


def _el(parent, tag: str, attrs: dict | None = None, text=None) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _clean(v) for k, v in (attrs or {}).items() if v is not None})
    if text is not None:
        element.text = _clean(text)
    return element


def _serialise(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def code_description(code: Code) -> str:
    """Definition, then the include and exclude criteria as lists other tools show as text."""
    parts = [code.definition]
    if code.include:
        parts.append("\n".join([INCLUDE_HEADING, *(f"- {item}" for item in code.include)]))
    if code.exclude:
        parts.append("\n".join([EXCLUDE_HEADING, *(f"- {item}" for item in code.exclude)]))
    return "\n\n".join(p for p in parts if p)


def parse_description(text: str) -> tuple[str, list[str], list[str]]:
    """The inverse of ``code_description``: definition, include, exclude. A
    description written in another tool without the headings is all definition."""
    definition: list[str] = []
    lists: dict[str, list[str]] = {"include": [], "exclude": []}
    section = None
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        stripped = line.strip()
        if stripped == INCLUDE_HEADING:
            section = "include"
        elif stripped == EXCLUDE_HEADING:
            section = "exclude"
        elif not stripped:
            continue
        elif section is None:
            definition.append(stripped)
        elif stripped[:2] in ("- ", "* ", "• "):
            lists[section].append(stripped[2:].strip())
        elif lists[section]:
            lists[section][-1] += " " + stripped
        else:
            lists[section].append(stripped)
    return " ".join(" ".join(definition).split()), lists["include"], lists["exclude"]


def _codes_into(parent: ET.Element, codes: list[Code]) -> None:
    if not codes:
        raise CasebaseError("the codebook has no codes; REFI-QDA needs at least one")
    children: dict[str | None, list[Code]] = {}
    for code in codes:
        children.setdefault(code.parent, []).append(code)
    container = _el(parent, "Codes")

    def add(into: ET.Element, code: Code) -> None:
        element = _el(
            into,
            "Code",
            {"guid": code_guid(code.id), "name": code.label_da, "isCodable": "true" if code.codable else "false", "color": code.colour},
        )
        _el(element, "Description", text=code_description(code))
        for child in children.get(code.id, []):
            add(element, child)

    for code in children.get(None, []):
        add(container, code)


def codebook_xml(codes: list[Code]) -> bytes:
    """A REFI-QDA Codebook (.qdc) document."""
    root = _root("CodeBook", NS_CODEBOOK, {"origin": ORIGIN})
    _codes_into(root, codes)
    return _serialise(root)


def export_qdc(book: Codebook, out: Path) -> int:
    """Write the codebook as a .qdc file; returns the number of codes."""
    data = codebook_xml(list(book.codes.values()))
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    return len(book.codes)


# ---------------------------------------------------------------- the project


@dataclass
class ProjectReport:
    path: Path
    origins: tuple[str, ...]
    sources: int = 0
    selections: int = 0
    codings: dict[str, int] = field(default_factory=dict)  # by origin
    cases: int = 0
    users: int = 0


def _lines(value: str | None) -> list[str]:
    return [line for line in (value or "").split("\n") if line.strip()]


def codes_from_db(db) -> list[Code]:
    return [
        Code(
            id=row["id"],
            label_da=row["label_da"],
            label_en=row["label_en"],
            definition=row["definition"] or "",
            parent=row["parent_id"],
            include=_lines(row["include"]),
            exclude=_lines(row["exclude"]),
            colour=row["colour"] or codebook_mod.DEFAULT_COLOUR,
            codable=bool(row.get("codable", 1)),
        )
        for row in db.query("select * from codes order by position")
    ]


def utc(value: str | None) -> str | None:
    """An ISO timestamp as UTC ending in Z (2026-11-25T09:04:46Z), as REFI-QDA
    clients expect: QualCoder strips "T" and "Z" and keeps any offset as text.
    A time without an offset is UTC; None for what is no timestamp."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        # A time at the edge of the calendar (year 1 or 9999) may have no UTC time.
        moment = moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _User:
    key: str
    name: str
    id: str


def _human_user(coder: str, adjudication: bool) -> _User:
    if adjudication:
        return _User(f"adjudicator:{coder}", f"{coder} (afgørelse)", ADJUDICATOR_USER_ID + coder)
    return _User(f"coder:{coder}", coder, coder)


def _machine_user(row: dict) -> _User:
    if row["origin"] == "model":
        run = row["model_run"] or "model"
        return _User(f"model:{run}", f"model {run}", MACHINE_USER_IDS[0] + run)
    return _User("rules", "rules", MACHINE_USER_IDS[1])


@dataclass
class _Selection:
    """One user's codings of one excerpt: the user and the date are on the
    selection as well as on each coding, since clients read them there."""

    guid: str
    name: str
    start: int
    end: int
    user: str  # the User's GUID
    created: str | None
    codes: list[str] = field(default_factory=list)


@dataclass
class _Project:
    """What project.qde says, read from the database, before it becomes XML."""

    origins: tuple[str, ...]
    codes: list[Code]
    info: dict[str, str]
    sources: list[dict]
    cases: list[dict]
    answers: dict[str, dict[str, str]]  # survey answer's excerpt id -> its attributes
    users: dict[str, _User] = field(default_factory=dict)
    selections: dict[str, list[_Selection]] = field(default_factory=dict)  # source id -> selections
    # Where each case and each survey answer lies: {"source_id", "start", "end"}.
    case_spans: dict[str, dict] = field(default_factory=dict)
    answer_spans: dict[str, dict] = field(default_factory=dict)
    coding_counts: dict[str, int] = field(default_factory=dict)


def read_project(db, origins=DEFAULT_ORIGINS) -> _Project:
    codes = codes_from_db(db)
    position = {code.id: i for i, code in enumerate(codes)}
    excerpts = {row["id"]: row for row in db.query("select id, source_id, seq, char_start, char_end from excerpts")}
    project = _Project(
        origins=tuple(origins),
        codes=codes,
        info={row["key"]: row["value"] for row in db.query("select key, value from build_info")}
        if db["build_info"].exists()
        else {},
        sources=[{**row, "length": source_text.length(db, row["id"])} for row in db.query("select * from sources order by rowid")],
        cases=list(db.query("select * from cases order by rowid")),
        answers={},
    )
    project.selections = {source["id"]: [] for source in project.sources}
    built = utc(project.info.get("built_at"))

    def add(excerpt_id: str, user: _User, created: str | None, code_ids: list[str], origin: str) -> None:
        excerpt = excerpts[excerpt_id]
        project.users.setdefault(user.key, user)
        selection = _Selection(
            guid("selection", f"{excerpt_id}|{user.key}"),
            excerpt_id,
            excerpt["char_start"],
            excerpt["char_end"],
            guid("user", user.key),
            created or built,
        )
        selection.codes = sorted(code_ids, key=position.__getitem__)
        project.selections[excerpt["source_id"]].append(selection)
        project.coding_counts[origin] = project.coding_counts.get(origin, 0) + len(code_ids)

    if "human" in origins and db["decisions"].exists():
        # Every coder's reading that counts (the last one written per coder and
        # excerpt), and every adjudicator's: double coding stays double, so another
        # tool can compare the coders. A "none of the codes" reading has no coding
        # to carry: REFI-QDA has no negative coding.
        for row in db.query(
            "select coder, excerpt_id, codes, timestamp, adjudication from decisions where rowid in"
            " (select max(rowid) from decisions where excerpt_id is not null group by coder, excerpt_id, adjudication)"
            " order by coder, adjudication"
        ):
            code_ids = [c for c in (row["codes"] or "").split() if c in position]
            if code_ids and row["excerpt_id"] in excerpts:
                user = _human_user(row["coder"], bool(row["adjudication"]))
                add(row["excerpt_id"], user, utc(row["timestamp"]), code_ids, "human")
    machine = [o for o in origins if o != "human"]
    if machine:
        runs = {row["id"]: utc(row["created"]) for row in db.query("select id, created from model_runs")} if db["model_runs"].exists() else {}
        runs = {MACHINE_USER_IDS[0] + run: created for run, created in runs.items()}
        grouped: dict[tuple[str, str], tuple[_User, str, list[str]]] = {}
        for row in db.query(f"select * from codings where origin in {database.ORIGIN_LIST}", [json.dumps(machine)]):
            user = _machine_user(row)
            held = grouped.setdefault((row["excerpt_id"], user.key), (user, row["origin"], []))
            held[2].append(row["code_id"])
        for (excerpt_id, _), (user, origin, code_ids) in grouped.items():
            add(excerpt_id, user, runs.get(user.id) if origin == "model" else None, code_ids, origin)
    for selections in project.selections.values():
        selections.sort(key=lambda s: (s.start, -s.end, s.user, s.guid))
    for row in db.query("select entity_id, name, value from attributes where entity = 'excerpt' order by rowid"):
        if row["entity_id"] in excerpts and row["value"] not in (None, ""):
            project.answers.setdefault(row["entity_id"], {})[row["name"]] = row["value"]
    for excerpt_id in project.answers:
        excerpt = excerpts[excerpt_id]
        project.answer_spans[excerpt_id] = {"source_id": excerpt["source_id"], "start": excerpt["char_start"], "end": excerpt["char_end"]}
    # A case of the cases table is the span of its excerpts (they are contiguous).
    project.case_spans = {
        row["case_id"]: row
        for row in db.query(
            "select case_id, source_id, min(char_start) start, max(char_end) end from excerpts"
            " where case_id is not null group by case_id, source_id"
        )
    }
    return project


def _variable_value(parent: ET.Element, var_name: str, kind: str, value) -> None:
    if value is None or value == "":
        return
    if kind == "Integer":
        try:
            value = int(value)
        except (TypeError, ValueError):
            return
    holder = _el(parent, "VariableValue")
    _el(holder, "VariableRef", {"targetGUID": guid("variable", var_name)})
    _el(holder, "IntegerValue" if kind == "Integer" else "TextValue", text=str(value))


def _users_element(root: ET.Element, users: dict[str, _User]) -> None:
    if not users:
        return
    users_el = _el(root, "Users")
    order = {"coder": 0, "adjudicator": 1, "model": 2, "rules": 3}
    for key in sorted(users, key=lambda k: (order[k.split(":")[0]], k)):
        user = users[key]
        _el(users_el, "User", {"guid": guid("user", key), "name": user.name, "id": user.id})


def _attribute_variables(answers: dict[str, dict[str, str]]) -> dict[str, str]:
    """Survey attribute -> the name of its variable (kept apart from the built-in names)."""
    builtin = {v[1] for v in (*ID_VARIABLES, *CASE_VARIABLES, *SOURCE_VARIABLES)}
    names = sorted({name for attrs in answers.values() for name in attrs})
    return {name: (name if name not in builtin else f"{name} (svar)") for name in names}


def _variables_element(root: ET.Element, attribute_variables: dict[str, str]) -> None:
    variables_el = _el(root, "Variables")
    for _, var_name, kind, description in (*ID_VARIABLES, *CASE_VARIABLES, *SOURCE_VARIABLES):
        variable = _el(variables_el, "Variable", {"guid": guid("variable", var_name), "name": var_name, "typeOfVariable": kind})
        _el(variable, "Description", text=description)
    for attr, var_name in attribute_variables.items():
        variable = _el(variables_el, "Variable", {"guid": guid("variable", var_name), "name": var_name, "typeOfVariable": "Text"})
        _el(variable, "Description", text=f"Attributten '{attr}' fra surveyeksporten")


def _cases_element(root: ET.Element, project: _Project, attribute_variables: dict[str, str]) -> int:
    """Cases with their variables, linked to their source (SourceRef) and to the
    coded selections inside them (SelectionRef). A case's span is no selection
    of its own: a selection without a coding is an empty annotation in clients."""
    if not project.cases and not project.answers:
        return 0
    cases_el = _el(root, "Cases")

    def refs(case_el: ET.Element, source_id: str, start: int, end: int) -> None:
        _el(case_el, "SourceRef", {"targetGUID": guid("source", source_id)})
        for selection in project.selections.get(source_id, []):
            if start <= selection.start and selection.end <= end:
                _el(case_el, "SelectionRef", {"targetGUID": selection.guid})

    for case in project.cases:
        case_el = _el(cases_el, "Case", {"guid": guid("case", case["id"]), "name": case["title"] or case["id"]})
        description = "\n".join(f"{label}: {case[col]}" for col, label in CASE_FIELDS_IN_DESCRIPTION if case.get(col))
        if description:
            _el(case_el, "Description", text=description)
        _variable_value(case_el, CASE_ID_VARIABLE[1], "Text", case["id"])
        for column, var_name, kind, _ in CASE_VARIABLES:
            _variable_value(case_el, var_name, kind, case.get(column))
        span = project.case_spans.get(case["id"])
        if span:
            _variable_value(case_el, CASE_SPAN_VARIABLE[1], "Text", f"{span['start']}-{span['end']}")
            refs(case_el, span["source_id"], span["start"], span["end"])
    for excerpt_id, attrs in project.answers.items():
        case_el = _el(cases_el, "Case", {"guid": guid("case", f"excerpt:{excerpt_id}"), "name": f"Besvarelse {excerpt_id}"})
        _variable_value(case_el, ANSWER_ID_VARIABLE[1], "Text", excerpt_id)
        for attr, value in attrs.items():
            _variable_value(case_el, attribute_variables[attr], "Text", value)
        span = project.answer_spans[excerpt_id]
        refs(case_el, span["source_id"], span["start"], span["end"])
    return len(project.cases) + len(project.answers)


def _sources_element(root: ET.Element, project: _Project, db) -> tuple[dict[str, Member], int]:
    """The TextSources with their selections; returns the source files (read from
    ``db`` as the zip is written) and the selection count."""
    files: dict[str, Member] = {}
    count = 0
    if not project.sources:
        return files, count
    sources_el = _el(root, "Sources")
    for source in project.sources:
        source_guid = guid("source", source["id"])
        # The text as the build cleaned it: UTF-8 without BOM, \n line ends, so that
        # code point offsets into it are the excerpts' offsets. Written in parts: a
        # survey's text is never one value.
        files[f"sources/{source_guid}.txt"] = Member(
            lambda source_id=source["id"]: (part.encode("utf-8") for part in source_text.parts(db, source_id)),
            source["length"] * 4,  # UTF-8 takes at most four bytes a character
        )
        source_el = _el(
            sources_el,
            "TextSource",
            {"guid": source_guid, "name": source["title"] or source["id"], "plainTextPath": f"internal://{source_guid}.txt"},
        )
        description = "\n".join(
            part
            for part in (
                source["description"],
                f"Licens: {source['licence']}" if source.get("licence") else None,
                f"URL: {source['url']}" if source.get("url") else None,
            )
            if part
        )
        if description:
            _el(source_el, "Description", text=description)
        for selection in project.selections[source["id"]]:
            if not 0 <= selection.start <= selection.end <= source["length"]:
                raise CasebaseError(
                    f"selection {selection.name!r} [{selection.start}, {selection.end}) lies outside the text"
                    f" of source {source['id']!r}; rebuild the database"
                )
            who = {"creatingUser": selection.user, "creationDateTime": selection.created}
            selection_el = _el(
                source_el,
                "PlainTextSelection",
                {
                    "guid": selection.guid,
                    "name": selection.name,
                    "startPosition": str(selection.start),
                    "endPosition": str(selection.end),
                    **who,
                },
            )
            for code_id in selection.codes:
                coding_el = _el(selection_el, "Coding", {"guid": guid("coding", f"{selection.guid}|{code_id}"), **who})
                _el(coding_el, "CodeRef", {"targetGUID": code_guid(code_id)})
            count += 1
        _variable_value(source_el, SOURCE_ID_VARIABLE[1], "Text", source["id"])
        for column, var_name, kind, _ in SOURCE_VARIABLES:
            _variable_value(source_el, var_name, kind, source.get(column))
    return files, count


def build_project(db, origins=DEFAULT_ORIGINS, name: str = "casebase") -> tuple[bytes, dict[str, Member], ProjectReport]:
    """project.qde and the source files (zip name -> member, read from ``db`` when
    written) from a built database."""
    project = read_project(db, origins)
    root = _root("Project", NS_PROJECT, {"name": name, "origin": ORIGIN})
    _users_element(root, project.users)
    if project.codes:
        _codes_into(_el(root, "CodeBook"), project.codes)
    attribute_variables = _attribute_variables(project.answers)
    _variables_element(root, attribute_variables)
    cases = _cases_element(root, project, attribute_variables)
    files, selections = _sources_element(root, project, db)
    described = [f"Eksporteret fra casebase ({ORIGIN})."]
    if project.info.get("codebook_version"):
        described.append(f"Kodebog version {project.info['codebook_version']}.")
    described.append(f"Kodninger med oprindelse: {', '.join(project.origins)}.")
    if "model" in project.origins and project.info.get("model_run"):
        described.append(f"Modelkørsel: {project.info['model_run']}.")
    _el(root, "Description", text=" ".join(described))
    report = ProjectReport(
        path=Path(),
        origins=project.origins,
        sources=len(project.sources),
        selections=selections,
        codings=project.coding_counts,
        cases=cases,
        users=len(project.users),
    )
    return _serialise(root), files, report


@dataclass
class Member:
    """A zip member written in parts: ``parts()`` yields its bytes, at most
    ``most_bytes`` of them (whether the member may need ZIP64)."""

    parts: Callable[[], Iterable[bytes]]
    most_bytes: int


def write_zip(out: Path, entries: dict[str, bytes | Member]) -> None:
    """A zip whose bytes depend only on its entries: fixed dates, fixed order and modes."""
    with atomic_path(out) as tmp:
        with zipfile.ZipFile(tmp, "w") as archive:
            for name, entry in entries.items():
                info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3
                info.external_attr = 0o644 << 16
                if isinstance(entry, Member):
                    # The same bytes as writing it whole, unless it may pass 2 GB.
                    with archive.open(info, "w", force_zip64=entry.most_bytes * 1.05 > zipfile.ZIP64_LIMIT) as member:
                        for part in entry.parts():
                            member.write(part)
                else:
                    archive.writestr(info, entry)


def export_qdpx(db_path: Path, out: Path, origins=DEFAULT_ORIGINS, name: str = "casebase") -> ProjectReport:
    db = database.open_built(db_path)
    try:
        project, files, report = build_project(db, origins, name)
        write_zip(out, {PROJECT_FILE: project, **dict(sorted(files.items()))})
    finally:
        db.conn.close()
    report.path = Path(out)
    return report


# ---------------------------------------------------------------- reading a QDC


@dataclass
class _Node:
    ns: str
    tag: str
    attrs: dict[str, str]
    line: int
    children: list["_Node"] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def find(self, tag: str) -> list["_Node"]:
        return [c for c in self.children if c.tag == tag and c.ns == self.ns]


class _TreeBuilder(ContentHandler):
    """SAX events (with namespaces) into a tree of nodes that know their line."""

    def __init__(self):
        super().__init__()
        self.stack: list[_Node] = []
        self.roots: list[_Node] = []

    def startElementNS(self, name, qname, attrs):
        ns, tag = name
        # Unqualified attributes by their name, as REFI-QDA writes them; a
        # namespaced one as "namespace name", as expat would report it.
        values = {(f"{a_ns} {a_name}" if a_ns else a_name): value for (a_ns, a_name), value in attrs.items()}
        node = _Node(ns or "", tag, values, self._locator.getLineNumber())
        (self.stack[-1].children if self.stack else self.roots).append(node)
        self.stack.append(node)

    def endElementNS(self, name, qname):
        self.stack.pop()

    def characters(self, content):
        if self.stack:
            self.stack[-1].text.append(content)


def _parse_xml(path: Path) -> _Node:
    """The document as a tree of nodes that know their line; any problem is a
    CasebaseError naming the file and, where the parser says, the line."""
    path = Path(path)
    return parse_xml_bytes(read_bytes(path), path)


class _ReadShare(io.BytesIO):
    """The bytes the parser reads, telling ``on_read`` the share read so far."""

    def __init__(self, data: bytes, on_read: Callable[[float], None]):
        super().__init__(data)
        self.size = max(len(data), 1)
        self.on_read = on_read

    def read(self, size=-1):
        chunk = super().read(size)
        self.on_read(self.tell() / self.size)
        return chunk


def parse_xml_bytes(data: bytes, where, on_read: Callable[[float], None] | None = None) -> _Node:
    """``data`` as a tree of nodes; errors name ``where`` (a file, or a member of one).
    ``on_read`` hears the share of ``data`` parsed, as the parser goes."""
    parser = create_parser()  # defusedxml's: forbids entity declarations and external references
    parser.setFeature(feature_namespaces, True)
    builder = _TreeBuilder()
    parser.setContentHandler(builder)
    try:
        parser.parse(_ReadShare(data, on_read) if on_read else io.BytesIO(data))
    except SAXParseException as exc:
        problem = exc.getMessage()
        if problem.startswith("not well-formed (") and problem.endswith(")"):
            problem = problem[len("not well-formed (") : -1]
        raise CasebaseError(
            f"not well-formed XML ({problem}, column {exc.getColumnNumber() + 1})", file=where, line=exc.getLineNumber()
        ) from None
    except EntitiesForbidden:
        raise CasebaseError(
            "the file declares XML entities, which casebase does not read", file=where, line=parser.getLineNumber()
        ) from None
    except DefusedXmlException:
        # An external DTD or entity: casebase reads nothing from outside the file.
        raise CasebaseError(
            "the file refers to an external DTD or entity, which casebase does not read",
            file=where,
            line=parser.getLineNumber(),
        ) from None
    return builder.roots[0]


@dataclass
class QdcCode:
    guid: str  # lower case, without braces
    name: str
    colour: str | None
    description: str | None  # None: the file has no Description for the code
    parent_guid: str | None
    line: int
    codable: bool = True  # isCodable="false": a category that groups codes


def read_qdc(path: Path) -> list[QdcCode]:
    """The codes of a REFI-QDA codebook, parents before children, in file order."""
    path = Path(path)
    root = _parse_xml(path)
    if root.tag != "CodeBook" or root.ns not in (NS_CODEBOOK, NS_PROJECT):
        found = f"<{root.tag}>" + (f" in namespace {root.ns}" if root.ns else " without a namespace")
        raise CasebaseError(
            f"not a REFI-QDA codebook: the root element is {found}, expected <CodeBook> in {NS_CODEBOOK}",
            file=path,
            line=root.line,
        )
    return codes_of(root, path)


# The deepest nesting of codes a codebook may have.
MAX_CODE_DEPTH = 50


def codes_of(codebook: _Node, where) -> list[QdcCode]:
    """The codes under a <CodeBook> element (of a .qdc or a project), parents first."""
    containers = codebook.find("Codes")
    if not containers or not containers[0].find("Code"):
        raise CasebaseError("the codebook has no codes (<Codes> with <Code> elements)", file=where, line=codebook.line)
    codes: list[QdcCode] = []
    seen: dict[str, int] = {}

    def visit(node: _Node, parent: str | None, depth: int) -> None:
        name = " ".join(node.attrs.get("name", "").split())
        if not name:
            raise CasebaseError("a <Code> has no name", file=where, line=node.line)
        if depth > MAX_CODE_DEPTH:
            # A codebook is a few levels deep; thousands of nested codes are a hostile file.
            raise CasebaseError(f"code {name!r} lies more than {MAX_CODE_DEPTH} levels deep in the codebook", file=where, line=node.line)
        match = _GUID.match(node.attrs.get("guid", "").strip())
        if not match:
            raise CasebaseError(f"code {name!r} has no valid guid", file=where, line=node.line)
        code_guid_ = match.group(1).lower()
        if code_guid_ in seen:
            raise CasebaseError(
                f"duplicate GUID {code_guid_} (code {name!r}; first at line {seen[code_guid_]})", file=where, line=node.line
            )
        seen[code_guid_] = node.line
        colour = node.attrs.get("color", "").strip() or None
        if colour is not None:
            if not _RGB.match(colour):
                raise CasebaseError(f"code {name!r} has colour {colour!r}, not like '#1f77b4'", file=where, line=node.line)
            if len(colour) == 4:
                colour = "#" + "".join(c * 2 for c in colour[1:])
            colour = colour.lower()
        descriptions = node.find("Description")
        description = "".join(descriptions[0].text) if descriptions else None
        codable = node.attrs.get("isCodable", "true").strip().lower() not in ("false", "0")
        codes.append(QdcCode(code_guid_, name, colour, description, parent, node.line, codable))
        for child in node.find("Code"):
            visit(child, code_guid_, depth + 1)

    for node in containers[0].find("Code"):
        visit(node, None, 1)
    return codes


def guid_of(value: str | None) -> str | None:
    """A GUID as casebase compares them (lower case, no braces), or None."""
    match = _GUID.match((value or "").strip())
    return match.group(1).lower() if match else None


# ---------------------------------------------------------------- QDC -> codebook.yaml

_FOLD = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "Æ": "ae", "Ø": "oe", "Å": "aa", "ß": "ss"})
ID_MAX_LENGTH = 48


def code_id_from_name(name: str) -> str:
    """A snake_case code id from a code's name: 'Udendørs / ud i naturen' -> 'udendoers_ud_i_naturen'."""
    text = unicodedata.normalize("NFKD", name.translate(_FOLD).lower())
    text = text.encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    if len(text) > ID_MAX_LENGTH:
        text = text[:ID_MAX_LENGTH].rsplit("_", 1)[0] or text[:ID_MAX_LENGTH]
    if not text or not text[0].isalpha():
        text = f"code_{text}".rstrip("_")
    return text


@dataclass
class ImportReport:
    path: Path
    codes: int = 0
    kept: list[str] = field(default_factory=list)  # ids of codes matched in the existing codebook
    new: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # codes of the existing codebook not in the file


class _Dumper(yaml.SafeDumper):
    """Lists indented under their key, as codebook.yaml is written by hand."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


class _Folded(str):
    """A long text written as a folded block (``>-``), as definitions are by hand."""


_Dumper.add_representer(_Folded, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style=">"))


def _entry(code: Code) -> dict:
    entry: dict = {"id": code.id, "label_da": code.label_da, "label_en": code.label_en}
    if code.parent:
        entry["parent"] = code.parent
    entry["colour"] = code.colour
    entry["definition"] = _Folded(code.definition)
    for key in ("include", "exclude", "examples"):
        if getattr(code, key):
            entry[key] = list(getattr(code, key))
    if code.patterns:
        entry["patterns"] = [p.text for p in code.patterns]
    if code.exclude_patterns:
        entry["exclude_patterns"] = [p.text for p in code.exclude_patterns]
    constructed = {"positive": code.constructed_positive, "negative": code.constructed_negative}
    if any(constructed.values()):
        entry["constructed_examples"] = {key: list(texts) for key, texts in constructed.items() if texts}
    if code.replaces:
        entry["replaces"] = list(code.replaces)
    if not code.codable:
        entry["codable"] = False
    return entry


def codebook_yaml(codes: list[Code], header: str) -> str:
    blocks = []
    for code in codes:
        dumped = yaml.dump([_entry(code)], Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=96)
        blocks.append("".join(f"  {line}" if line.strip() else line for line in dumped.splitlines(keepends=True)))
    return header + "codes:\n" + "\n".join(blocks)


def _header(existing_path: Path | None, qdc_path: Path) -> str:
    """Keep the comment block that opens the existing codebook; otherwise say where this came from."""
    if existing_path is not None and existing_path.exists():
        lines = []
        for line in existing_path.read_text(encoding="utf-8").splitlines(keepends=True):
            if line.startswith("#") or not line.strip():
                lines.append(line)
            else:
                break
        if any(line.startswith("#") for line in lines):
            return "".join(lines).rstrip("\n") + "\n"
    return (
        f"# casebase codebook, imported from {qdc_path.name} with 'casebase import qdc'.\n"
        "# Keys of a code: id (snake_case, stable), label_da, label_en, parent, definition,\n"
        "#   include / exclude, colour, examples, patterns (Danish rule patterns),\n"
        "#   exclude_patterns, constructed_examples (positive / negative), replaces.\n"
    )


def codes_from_qdc(qdc_codes: list[QdcCode], existing: Codebook | None, source: Path) -> tuple[list[Code], ImportReport]:
    """casebase codes for the QDC's codes, keeping the id (and the casebase-only
    fields: English label, examples, patterns, exclude patterns, constructed
    examples, replaces) of each code that the existing codebook already has,
    found by GUID first and by name second."""
    report = ImportReport(path=Path())
    old = dict(existing.codes) if existing else {}
    by_guid = {code_guid(code_id): code_id for code_id in old}
    names: dict[str, list[str]] = {}
    for code in old.values():
        names.setdefault(code.label_da, []).append(code.id)
    taken: set[str] = set()
    # A new code never reuses an id the codebook knows (now or as renamed): that
    # id's human decisions belong to another code.
    reserved = set(old) | {r for code in old.values() for r in code.replaces}
    ids: dict[str, str] = {}
    for q in qdc_codes:
        if q.guid in by_guid:
            ids[q.guid] = by_guid[q.guid]
            taken.add(by_guid[q.guid])
    for q in qdc_codes:
        if q.guid not in ids:
            # By name only where the name is unambiguous and its code is not in the file by GUID.
            candidates = [c for c in names.get(q.name, []) if c not in taken]
            if len(candidates) == 1 and len(names[q.name]) == 1:
                ids[q.guid] = candidates[0]
                taken.add(candidates[0])
    report.kept = [ids[q.guid] for q in qdc_codes if q.guid in ids]
    for q in qdc_codes:
        if q.guid in ids:
            continue
        base = code_id_from_name(q.name)
        candidate, n = base, 2
        while candidate in taken or candidate in reserved:
            candidate, n = f"{base}_{n}", n + 1
        ids[q.guid] = candidate
        taken.add(candidate)
        report.new.append(candidate)
    codes = []
    for q in qdc_codes:
        code_id = ids[q.guid]
        before = old.get(code_id)
        if before is not None and before.codable and not q.codable and (
            before.patterns or before.exclude_patterns or before.constructed_positive or before.constructed_negative
        ):
            # A category in the other tool, a code with rules and training examples here: say which
            # code and why, rather than that the merged codebook would not load.
            raise CasebaseError(
                f"code {q.name!r} is a category (isCodable=\"false\") in {source.name}, but the codebook's code {code_id!r}"
                " is coded and has patterns or constructed examples; make it a code in the other tool, or remove them"
                " from codebook.yaml first if it is to group codes only",
                file=source,
            )
        if q.description is not None and q.description.strip():
            definition, include, exclude = parse_description(q.description)
        elif before is not None:
            definition, include, exclude = before.definition, before.include, before.exclude
        else:
            definition, include, exclude = "", [], []
        if not definition:
            definition = before.definition if before else f"(Ingen beskrivelse i {source.name}; skriv kodens definition her.)"
        codes.append(
            Code(
                id=code_id,
                label_da=q.name,
                label_en=before.label_en if before else q.name,
                definition=definition,
                parent=ids[q.parent_guid] if q.parent_guid else None,
                include=list(include),
                exclude=list(exclude),
                colour=q.colour or (before.colour if before else codebook_mod.DEFAULT_COLOUR),
                examples=list(before.examples) if before else [],
                patterns=list(before.patterns) if before else [],
                exclude_patterns=list(before.exclude_patterns) if before else [],
                constructed_positive=list(before.constructed_positive) if before else [],
                constructed_negative=list(before.constructed_negative) if before else [],
                replaces=list(before.replaces) if before else [],
                codable=q.codable,
            )
        )
    report.removed = [code_id for code_id in old if code_id not in taken]
    report.codes = len(codes)
    return codes, report


def import_qdc(qdc_path: Path, out: Path, existing_path: Path | None = None, force: bool = False) -> ImportReport:
    """Write codebook YAML at ``out`` from a .qdc file. Refuses to replace an
    existing file unless ``force``; writes atomically and only a codebook that
    loads. ``existing_path``, when it exists, is the casebase codebook whose
    ids (and casebase-only fields) are kept for the codes that match."""
    qdc_path, out = Path(qdc_path), Path(out)
    if out.exists() and not force:
        raise CasebaseError("already exists; use --force to replace it, or --output to write elsewhere", file=out)
    qdc_codes = read_qdc(qdc_path)
    existing = None
    if existing_path is not None and Path(existing_path).exists():
        existing = codebook_mod.load(existing_path)
    codes, report = codes_from_qdc(qdc_codes, existing, qdc_path)
    text = codebook_yaml(codes, _header(Path(existing_path) if existing_path else None, qdc_path))
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
        try:
            codebook_mod.load(tmp)
        except CasebaseError as exc:
            raise CasebaseError(f"the imported codebook would not load: {exc.message}", file=qdc_path) from None
    report.path = out
    return report
