"""`casebase import qdpx`: a REFI-QDA project into the corpus. The round trip of
casebase's own export through an empty corpus and a build, a project as another
tool writes it, and hostile or broken files: one line each, nothing written."""

import csv
import io
import json
import signal
import shutil
import zipfile

import pytest
import sqlite_utils
from click.testing import CliRunner

from casebase.cli import cli
from casebase.coding import codebook
from casebase.ingest import segment
from casebase.ingest import sources as sources_mod
from casebase.pipeline import build
from casebase.publish import qdpx_import
from casebase.store import source_text
from conftest import CORPUS


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ---------------------------------------------------------------- the round trip


def readings(db):
    """Every coder's reading that counts, by what a person sees: the coder, whether
    it is a ruling, the source and text of the excerpt, the codes' labels, when."""
    labels = {r["id"]: r["label_da"] for r in db.query("select id, label_da from codes")}
    excerpts = {r["id"]: (r["source_id"], r["text"]) for r in db.query("select id, source_id, text from excerpts")}
    return {
        (r["coder"], r["adjudication"], excerpts[r["excerpt_id"]], frozenset(labels[c] for c in r["codes"].split()), r["timestamp"])
        for r in db.query(
            "select * from decisions where rowid in"
            " (select max(rowid) from decisions where excerpt_id is not null group by coder, excerpt_id, adjudication)"
        )
        if r["codes"]
    }


def test_round_trip_through_an_empty_corpus(built_db, tmp_path):
    exported = tmp_path / "casebase.qdpx"
    assert run("export", "qdpx", exported, "--db", built_db, "--origin", "human,model,rule").exit_code == 0
    corpus, book_path = tmp_path / "ny" / "corpus", tmp_path / "ny" / "codebook.yaml"

    dry = run("import", "qdpx", exported, "--corpus", corpus, "--codebook", book_path, "--check")
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith("Would import") and not (tmp_path / "ny").exists()

    result = run("import", "qdpx", exported, "--corpus", corpus, "--codebook", book_path)
    assert result.exit_code == 0, result.output
    # The model's and the rules' codings (however many today's model makes) are left out, all of them.
    machine = sqlite_utils.Database(built_db).execute("select count(*) from codings where origin != 'human'").fetchone()[0]
    assert (f"left out: {machine} codings by casebase's model" in result.output) == (machine > 0), result.output
    db_path = tmp_path / "ny" / "db" / "casebase.db"
    build(corpus, db_path, book_path)
    before, after = sqlite_utils.Database(built_db), sqlite_utils.Database(db_path)

    # The same texts, character for character, under the same ids and titles.
    def texts(db):
        return {r["id"]: "".join(source_text.parts(db, r["id"])) for r in db.query("select id from sources")}

    assert texts(after) == texts(before)
    fields = "id, title, publisher, year, kind, licence, url"
    # A survey's answers come back as the paragraphs of a text source (REFI-QDA has no survey).
    expected = [{**row, "kind": "report" if row["kind"] == "survey" else row["kind"]} for row in before.query(f"select {fields} from sources")]
    assert list(after.query(f"select {fields} from sources")) == expected
    # The same excerpts (the plain parser cuts the exported text where casebase did).
    assert after["excerpts"].count == before["excerpts"].count
    # The same codes: names, hierarchy, colours, definitions and criteria.
    def codes(db):
        rows = list(db.query("select c.label_da, p.label_da parent, c.colour, c.definition, c.include, c.exclude"
                             " from codes c left join codes p on p.id = c.parent_id order by c.position"))
        return rows

    assert codes(after) == codes(before)
    # The same cases, each with its columns and its excerpts.
    columns = "id, source_id, title, organisation, municipality, area, target_group, purpose, intervention, learning, source_theme, page"
    assert list(after.query(f"select {columns} from cases order by id")) == list(before.query(f"select {columns} from cases order by id"))
    members = "select case_id, text from excerpts where case_id is not null order by case_id, seq"
    assert list(after.query(members)) == list(before.query(members))
    assert after["cases"].count == 77
    # The same human readings of every coder (with its codes), rulings as rulings, at the same time.
    human = readings(before)
    assert readings(after) == human and len(human) > 250
    assert any(ruling for _, ruling, *_ in human)
    # and the model's and the rules' codings did not become anyone's decisions
    coders = {r["coder"] for r in after.query("select distinct coder from decisions")}
    assert coders == {r["coder"] for r in before.query("select distinct coder from decisions where codes != ''")}


# ---------------------------------------------------------------- another tool's project

TEXT = (
    "Gåture i naturen\n"
    "\n"
    "Vi flyttede samtalerne ud i naturen og gik\nmed de unge, en og en, hver uge hele foråret.\n"
    "\n\n"
    "Et langt afsnit om meget andet: økonomi, ledelse og samarbejde med kommunen. Det blev også nævnt, at "
    "en enkelt medarbejder prøvede videosamtaler, men det var en lille del af det hele, og resten af afsnittet "
    "handler om noget helt andet end digitale tilbud.\n"
    "\n"
    "Madkasser blev bragt ud til de ældre.\n"
)
G = {
    "anna": "11111111-0000-0000-0000-000000000001",
    "bo": "11111111-0000-0000-0000-000000000002",
    "theme": "22222222-0000-0000-0000-000000000001",
    "walk": "22222222-0000-0000-0000-000000000002",
    "digital": "22222222-0000-0000-0000-000000000003",
    "source": "33333333-0000-0000-0000-000000000001",
    "pdf": "33333333-0000-0000-0000-000000000002",
    "var": "44444444-0000-0000-0000-000000000001",
    "municipality": "44444444-0000-0000-0000-000000000002",
    "case_id": "44444444-0000-0000-0000-000000000003",
    "case_span": "44444444-0000-0000-0000-000000000004",
}


def span(fragment, end_fragment=None):
    start = TEXT.index(fragment)
    end = TEXT.index(end_fragment) + len(end_fragment) if end_fragment else start + len(fragment)
    return start, end


def selection(guid_tail, start, end, user, code, date="2025-03-04T10:11:12Z"):
    return (
        f'<PlainTextSelection guid="55555555-0000-0000-0000-{guid_tail:012d}" startPosition="{start}" endPosition="{end}"'
        f' creatingUser="{user}" creationDateTime="{date}">'
        f'<Coding guid="66666666-0000-0000-0000-{guid_tail:012d}" creatingUser="{user}"><CodeRef targetGUID="{code}"/></Coding>'
        "</PlainTextSelection>"
    )


def other_tool_project(selections=None, text_member="sources/interview.txt"):
    walk, digital, food = span("Vi flyttede", "foråret."), span("en enkelt medarbejder prøvede videosamtaler"), span("Madkasser", "ældre.")
    both = (TEXT.index("Gåture"), walk[1])  # a heading and a paragraph, each covered whole
    selections = selections if selections is not None else "".join(
        [
            selection(1, *walk, G["anna"], G["walk"]),
            selection(2, *both, G["bo"], G["walk"]),
            selection(3, *digital, G["anna"], G["digital"]),  # a phrase inside a long paragraph
            selection(4, *food, G["bo"], G["digital"], date="2025-03-05T08:00:00+01:00"),
            selection(5, *food, G["bo"], G["theme"]),  # a category: not codable
        ]
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1.0" name="Interviews" origin="NVivo 14">
  <Users><User guid="{G['anna']}" name="Anna Jensen"/><User guid="{G['bo']}" name="Bo"/></Users>
  <CodeBook><Codes>
    <Code guid="{G['theme']}" name="Temaer" isCodable="false">
      <Code guid="{G['walk']}" name="Gåture" isCodable="true" color="#33AA33"><Description>Samtaler på gåture.</Description></Code>
      <Code guid="{G['digital']}" name="Digitalt" isCodable="true"/>
    </Code>
  </Codes></CodeBook>
  <Variables>
    <Variable guid="{G['var']}" name="Udgiver" typeOfVariable="Text"/>
    <Variable guid="{G['municipality']}" name="Kommune" typeOfVariable="Text"/>
    <Variable guid="{G['case_id']}" name="Case-id (casebase)" typeOfVariable="Text"/>
    <Variable guid="{G['case_span']}" name="Tekststed (casebase)" typeOfVariable="Text"/>
  </Variables>
  <Cases>
    <Case guid="77777777-0000-0000-0000-000000000001" name="Gåturene">
      <SelectionRef targetGUID="55555555-0000-0000-0000-000000000001"/>
    </Case>
    <Case guid="77777777-0000-0000-0000-000000000003" name="Madkasserne">
      <VariableValue><VariableRef targetGUID="{G['case_id']}"/><TextValue>interview-med-leder-mad</TextValue></VariableValue>
      <VariableValue><VariableRef targetGUID="{G['case_span']}"/><TextValue>{TEXT.index("Madkasser")}-{len(TEXT)}</TextValue></VariableValue>
    </Case>
    <Case guid="77777777-0000-0000-0000-000000000002" name="Lederinterview">
      <VariableValue><VariableRef targetGUID="{G['municipality']}"/><TextValue>Aarhus</TextValue></VariableValue>
      <SourceRef targetGUID="{G['source']}"/>
    </Case>
  </Cases>
  <Sources>
    <TextSource guid="{G['source']}" name="Interview med leder" plainTextPath="internal://{text_member.removeprefix('sources/')}" creationDateTime="2024-05-01T09:00:00Z">
      {selections}
      <VariableValue><VariableRef targetGUID="{G['var']}"/><TextValue>Socialforvaltningen</TextValue></VariableValue>
    </TextSource>
    <PDFSource guid="{G['pdf']}" name="Rapport.pdf" path="internal://rapport.pdf"/>
  </Sources>
</Project>
"""


def write_qdpx(path, project, members=None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("project.qde", project)
        for name, data in (members if members is not None else {"sources/interview.txt": TEXT.encode()}).items():
            archive.writestr(name, data)
    return path


def test_a_project_from_another_tool(tmp_path):
    qdpx = write_qdpx(tmp_path / "nvivo.qdpx", other_tool_project())
    corpus, book_path = tmp_path / "corpus", tmp_path / "codebook.yaml"
    shutil.copytree(CORPUS, corpus)
    shutil.copy(CORPUS.parent / "codebook.yaml", book_path)
    seed_sources = (corpus / "sources.yaml").read_text(encoding="utf-8")
    result = run("import", "qdpx", qdpx, "--corpus", corpus, "--codebook", book_path)
    assert result.exit_code == 0, result.output
    # The text kept byte for byte, with a sources.yaml entry after the seed's.
    assert (corpus / "texts" / "interview-med-leder.txt").read_bytes() == TEXT.encode()
    sources_yaml = (corpus / "sources.yaml").read_text(encoding="utf-8")
    assert sources_yaml.startswith(seed_sources.rstrip("\n"))
    assert "id: interview-med-leder" in sources_yaml and "publisher: Socialforvaltningen" in sources_yaml
    assert "year: 2024" in sources_yaml and "parser: plain" in sources_yaml
    # The codebook merged: the seed's codes stay, the project's are added.
    book = codebook.load(book_path)
    assert {"digital_shift", "walk_and_talk", "temaer", "gaature", "digitalt"} <= set(book.codes)
    assert book.codes["gaature"].parent == "temaer" and book.codes["gaature"].colour == "#33aa33"
    assert book.grouping() == ["temaer"]  # isCodable="false": a heading, never coded
    # The PDF and the phrase inside a long paragraph are reported, with source and position.
    start, end = span("en enkelt medarbejder prøvede videosamtaler")
    assert "PDF source 'Rapport.pdf' skipped" in result.output
    assert "a coding of the grouping code 'Temaer' (isCodable=\"false\") in source 'Interview med leder'" in result.output
    assert f"interview-med-leder [{start}, {end}) by anna-jensen" in result.output
    # The coders' readings on the excerpts their selections cover whole.
    texts = segment.assemble("interview-med-leder", qdpx_import.plain.parse(TEXT)[0])[1]
    ids = {e.text.split()[0]: e.id for e in texts}
    anna = (corpus / "coding" / "anna-jensen.csv").read_text(encoding="utf-8").splitlines()
    bo = (corpus / "coding" / "bo.csv").read_text(encoding="utf-8").splitlines()
    assert len(anna) == 2 and anna[1].startswith(f"{ids['Vi']},") and ",gaature,anna-jensen,2025-03-04T10:11:12+00:00," in anna[1]
    assert [line.split(",")[0] for line in bo[1:]] == [ids["Gåture"], ids["Vi"], ids["Madkasser"]]
    assert bo[3].split(",")[-4:-2] == ["bo", "2025-03-05T07:00:00+00:00"]  # UTC, as casebase writes times
    # Its cases: one by the selection it refers to, one by casebase's case id and span alone
    # (a client that dropped the links), one by its whole source, with its variable.
    (source,) = [s for s in sources_mod.load_sources(corpus) if s.id == "interview-med-leder"]
    assert source.cases == [
        {"key": "gaturene", "title": "Gåturene", "start": span("Vi flyttede", "foråret.")[0], "end": span("Vi flyttede", "foråret.")[1]},
        {"key": "mad", "title": "Madkasserne", "start": TEXT.index("Madkasser"), "end": len(TEXT)},
        {"key": "lederinterview", "title": "Lederinterview", "start": 0, "end": len(TEXT), "municipality": "Aarhus"},
    ]
    blocks = qdpx_import.plain.parse(TEXT)[0]
    cases = qdpx_import.plain.with_cases(TEXT, blocks, source.cases)
    assert [c.title for c in cases] == ["Gåturene", "Madkasserne", "Lederinterview"]
    assert [b.case_key for b in blocks] == ["lederinterview", "gaturene", "lederinterview", "mad"]
    # The corpus checks clean: every imported decision lands on an excerpt.
    check = run("check", "--corpus", corpus, "--codebook", book_path)
    assert check.exit_code == 0, check.output
    # A second import of the same project is refused: its source is in the corpus already.
    again = run("import", "qdpx", qdpx, "--corpus", corpus, "--codebook", book_path)
    assert again.exit_code == 1 and "'Interview med leder' has the same text as the corpus's source 'interview-med-leder'" in again.stderr
    assert "imported before" in again.stderr


# ---------------------------------------------------------------- hostile and broken files


def zip_with(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def zip_with_duplicates(path, members):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name it is asked to write
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in members:
                archive.writestr(name, data)
    return path


HOSTILE = {
    "dot-dot member": (
        lambda p: zip_with(p, {"project.qde": other_tool_project(), "sources/interview.txt": TEXT, "../../evil.txt": "x"}),
        "'../../evil.txt' points outside the archive",
    ),
    "absolute member": (
        lambda p: zip_with(p, {"project.qde": other_tool_project(), "/etc/cron.d/evil": "x"}),
        "'/etc/cron.d/evil' points outside the archive",
    ),
    "zip bomb": (
        lambda p: zip_with(p, {"project.qde": other_tool_project(), "sources/interview.txt": b"\0" * (20 * 1024 * 1024)}),
        "a zip bomb?",
    ),
    "not a zip": (lambda p: (p.write_bytes(b"<Project/>"), p)[1], "not a readable zip archive"),
    "no project.qde": (lambda p: zip_with(p, {"sources/interview.txt": TEXT}), "has no project.qde"),
    "malformed xml": (
        lambda p: write_qdpx(p, other_tool_project().replace("</Sources>", "</Source>")),
        "project.qde):",
    ),
    "entity expansion": (
        lambda p: write_qdpx(
            p,
            '<?xml version="1.0"?>\n<!DOCTYPE Project [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>\n'
            + other_tool_project().split("\n", 1)[1].replace('name="Interviews"', 'name="&b;"'),
        ),
        "declares XML entities",
    ),
    "external entity": (
        lambda p: write_qdpx(
            p,
            '<?xml version="1.0"?>\n<!DOCTYPE Project [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
            + other_tool_project().split("\n", 1)[1].replace('name="Interviews"', 'name="&x;"'),
        ),
        "XML entities",
    ),
    "position beyond the text": (
        lambda p: write_qdpx(p, other_tool_project(selection(9, 10, len(TEXT) + 5, G["anna"], G["walk"]))),
        f"lies outside the text of source 'Interview med leder' ({len(TEXT):,} characters)",
    ),
    "unknown code guid": (
        lambda p: write_qdpx(p, other_tool_project(selection(9, 0, 5, G["anna"], "99999999-0000-0000-0000-000000000000"))),
        "which the codebook does not define",
    ),
    "unknown user guid": (
        lambda p: write_qdpx(p, other_tool_project(selection(9, 0, 5, "99999999-0000-0000-0000-000000000000", G["walk"]))),
        "is not among the project's users",
    ),
    "text not utf-8": (
        lambda p: write_qdpx(p, other_tool_project(), {"sources/interview.txt": TEXT.encode("latin-1")}),
        "not valid UTF-8",
    ),
    "missing source text": (lambda p: write_qdpx(p, other_tool_project(), {}), "has no 'sources/interview.txt'"),
    "two members of one name": (
        lambda p: zip_with_duplicates(
            p, [("project.qde", other_tool_project()), ("sources/interview.txt", TEXT), ("sources/interview.txt", "Gåture i naturen\n" * 40)]
        ),
        "the archive has two members named 'sources/interview.txt'",
    ),
    "project in another namespace": (
        lambda p: write_qdpx(p, other_tool_project().replace("urn:QDA-XML:project:1.0", "urn:QDA-XML:project:2.0")),
        "the root element is <Project> in namespace urn:QDA-XML:project:2.0, expected <Project> in urn:QDA-XML:project:1.0",
    ),
    "two users with one guid": (
        lambda p: write_qdpx(p, other_tool_project().replace(f'<User guid="{G["bo"]}"', f'<User guid="{G["anna"]}"')),
        f"duplicate GUID {G['anna']} (user 'Bo'; first at line 3)",
    ),
    "two sources with one guid": (
        lambda p: write_qdpx(
            p,
            other_tool_project().replace(
                "</Sources>", f'<TextSource guid="{G["source"]}" name="Kopi" plainTextPath="internal://interview.txt"/></Sources>'
            ),
        ),
        f"duplicate GUID {G['source']} (source 'Kopi'; first at line",
    ),
    "codes nested thousands deep": (
        lambda p: write_qdpx(
            p,
            other_tool_project().replace(
                "</Codes>",
                "".join(f'<Code guid="33333333-0000-0000-0000-{i:012d}" name="k{i}">' for i in range(3000)) + "</Code>" * 3000 + "</Codes>",
            ),
        ),
        "code 'k50' lies more than 50 levels deep in the codebook",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_or_broken_project_is_one_line_and_writes_nothing(case, tmp_path):
    make, fragment = HOSTILE[case]
    (tmp_path / "in").mkdir()
    qdpx = make(tmp_path / "in" / "project.qdpx")
    target = tmp_path / "target"
    target.mkdir()
    result = run("import", "qdpx", qdpx, "--corpus", target / "corpus", "--codebook", target / "codebook.yaml")
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "project.qdpx" in lines[0], result.stderr
    assert fragment in lines[0], lines[0]
    assert listing(target) == []


def test_a_member_larger_than_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(qdpx_import, "MAX_MEMBER_BYTES", 6000)
    qdpx = write_qdpx(tmp_path / "big.qdpx", other_tool_project(), {"sources/interview.txt": ("Lang tekst. " * 800).encode()})
    result = run("import", "qdpx", qdpx, "--corpus", tmp_path / "corpus", "--codebook", tmp_path / "codebook.yaml")
    assert result.exit_code == 1 and "'sources/interview.txt' is 9,600 bytes unpacked" in result.stderr
    assert listing(tmp_path) == ["big.qdpx"]


def test_a_size_header_that_lies_is_caught_while_reading(tmp_path):
    path = write_qdpx(tmp_path / "lies.qdpx", other_tool_project())
    data = bytearray(path.read_bytes())
    # Shrink the text member's uncompressed size in its central directory entry.
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("sources/interview.txt")
    central = data.index(b"sources/interview.txt", data.index(b"PK\x01\x02")) - 46
    data[central + 24 : central + 28] = (info.file_size // 2).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    result = run("import", "qdpx", path, "--corpus", tmp_path / "corpus", "--codebook", tmp_path / "codebook.yaml")
    assert result.exit_code == 1 and "lies.qdpx" in result.stderr, result.output
    assert listing(tmp_path) == ["lies.qdpx"]


SOURCE_ID_VARIABLE = "44444444-0000-0000-0000-000000000099"


def test_a_recorded_source_id_too_long_for_a_file_name_gives_way_to_the_name(tmp_path):
    """A "Kilde-id (casebase)" of 300 characters would name a text file no file system
    takes, found only while writing: the source's name gives its id instead."""
    project = other_tool_project().replace(
        '<VariableValue><VariableRef targetGUID="{}"/><TextValue>Socialforvaltningen'.format(G["var"]),
        '<VariableValue><VariableRef targetGUID="{}"/><TextValue>{}</TextValue></VariableValue>'.format(SOURCE_ID_VARIABLE, "a" * 300)
        + '<VariableValue><VariableRef targetGUID="{}"/><TextValue>Socialforvaltningen'.format(G["var"]),
    ).replace("</Variables>", f'<Variable guid="{SOURCE_ID_VARIABLE}" name="Kilde-id (casebase)" typeOfVariable="Text"/></Variables>')
    qdpx = write_qdpx(tmp_path / "long.qdpx", project)
    result = run("import", "qdpx", qdpx, "--corpus", tmp_path / "corpus", "--codebook", tmp_path / "codebook.yaml")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "corpus" / "texts" / "interview-med-leder.txt").read_text(encoding="utf-8") == TEXT


def test_a_user_called_unknown_is_not_merged_with_codings_without_a_user(tmp_path):
    """Codings without a creatingUser go to the coder 'ukendt'; a user whose name is
    "Ukendt" is another person, and keeps a file of their own."""
    anna, bo = G["anna"], G["bo"]
    walk, food = span("Vi flyttede", "foråret."), span("Madkasser", "ældre.")
    project = other_tool_project(
        selection(1, *walk, anna, G["walk"]) + selection(2, *food, bo, G["digital"]).replace(f' creatingUser="{bo}"', "")
    ).replace('name="Anna Jensen"', 'name="Ukendt"')
    qdpx = write_qdpx(tmp_path / "ukendt.qdpx", project)
    result = run("import", "qdpx", qdpx, "--corpus", tmp_path / "corpus", "--codebook", tmp_path / "codebook.yaml")
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "corpus" / "coding").glob("*.csv") if p.name != "codebooks.csv")
    assert len(files) == 2, files
    codes = [list(csv.DictReader((tmp_path / "corpus" / "coding" / f).open(encoding="utf-8")))[0]["codes"] for f in files]
    assert sorted(codes) == ["digitalt", "gaature"]


def test_a_date_at_the_edge_of_the_calendar_is_no_date():
    from casebase.publish import refiqda

    assert refiqda.utc("9999-12-31T23:59:59-14:00") is None
    assert refiqda.utc("0001-01-01T00:00:00+14:00") is None
    assert refiqda.utc("2025-03-05T08:00:00+01:00") == "2025-03-05T07:00:00Z"


# ---------------------------------------------------------------- an import cut off half-way

KILLED_IMPORT = """
import os, signal, sys
from casebase.coding import decision_files
from casebase.cli import cli

real = decision_files._append_rows
calls = []


def append_then_die(path, *args, **kwargs):
    # The first coder's rows written, the second's cut off mid-row: then the power goes.
    calls.append(path)
    if len([p for p in calls if p.name != "codebooks.csv"]) == 2:
        with open(path, "ab") as handle:
            handle.write(b"interview-med-leder-0")
        os.kill(os.getpid(), signal.SIGKILL)
    return real(path, *args, **kwargs)


decision_files._append_rows = append_then_die
cli(sys.argv[1:])
"""


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


def test_an_import_killed_half_way_is_undone_before_anything_reads_the_corpus(tmp_path):
    """kill -9 while the decisions are written: sources.yaml, the codebook and a text
    are new, one coder's rows are in, another's cut off. Nothing may build on that;
    the next import undoes it (a coder's save in between kept) and imports whole."""
    import subprocess
    import sys

    corpus, book_path = tmp_path / "corpus", tmp_path / "codebook.yaml"
    shutil.copytree(CORPUS, corpus)
    shutil.copy(CORPUS.parent / "codebook.yaml", book_path)
    before = {**snapshot(corpus), "codebook.yaml": book_path.read_bytes()}
    # "coder1" is a coder the corpus has: the import appends to an existing file.
    qdpx = write_qdpx(tmp_path / "p.qdpx", other_tool_project().replace('name="Anna Jensen"', 'name="coder1"'))
    args = ["import", "qdpx", str(qdpx), "--corpus", str(corpus), "--codebook", str(book_path)]
    killed = subprocess.run([sys.executable, "-c", KILLED_IMPORT, *args], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (corpus / "texts" / "interview-med-leder.txt").exists()

    # Half an import: the build and the check refuse it in one line.
    for command in (["build", "--corpus", corpus, "--codebook", book_path, "--db", tmp_path / "db" / "x.db"], ["check", "--corpus", corpus, "--codebook", book_path]):
        refused = run(*command)
        assert refused.exit_code == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.output
        assert ".import-qdpx.json" in refused.stderr and "was cut off" in refused.stderr
    assert not (tmp_path / "db" / "x.db").exists()

    # A coder saves a reading of a seed excerpt meanwhile (the coding pages run on the old build).
    saved = "mm2020-0000000000aa,En læsning,,coder1,2026-12-05T10:00:00+00:00,62ed4de4fd13,gemt imens\n"
    with open(corpus / "coding" / "coder1.csv", "a", encoding="utf-8") as handle:
        handle.write(saved)

    # Undone: every file as it was, the coder's save kept (the registry of codebook versions may keep one).
    assert qdpx_import.undo_interrupted(corpus, (book_path,)) == "p.qdpx"
    after = {**snapshot(corpus), "codebook.yaml": book_path.read_bytes()}
    expected = {**before, "coding/coder1.csv": before["coding/coder1.csv"] + saved.encode()}
    after.pop("coding/codebooks.csv"), expected.pop("coding/codebooks.csv")
    assert after == expected

    # Killed again, then imported whole: the same as one import that was never cut off.
    assert subprocess.run([sys.executable, "-c", KILLED_IMPORT, *args], capture_output=True).returncode == -signal.SIGKILL
    again = run(*args)
    assert again.exit_code == 0, again.output
    assert again.output.startswith("Undid the import of p.qdpx that was cut off before it finished\nImported")
    rows = (corpus / "coding" / "coder1.csv").read_text(encoding="utf-8")
    assert rows.count("interview-med-leder-") == 1 and rows.count("gemt imens") == 1 and rows.endswith("\n")
    assert len((corpus / "coding" / "bo.csv").read_text(encoding="utf-8").splitlines()) == 4
    assert not (corpus / ".import-qdpx.json").exists()
    assert run("check", "--corpus", corpus, "--codebook", book_path).exit_code == 0


def test_a_write_that_fails_half_way_is_undone_at_once(tmp_path):
    """The texts, sources.yaml and the codebook written, then the decisions cannot be
    (corpus/coding is a file): one error line, and everything is as it was."""
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    shutil.copy(CORPUS.parent / "codebook.yaml", tmp_path / "codebook.yaml")
    shutil.rmtree(corpus / "coding")
    (corpus / "coding").write_text("not a folder\n", encoding="utf-8")
    before = {**snapshot(corpus), "codebook.yaml": (tmp_path / "codebook.yaml").read_bytes()}
    qdpx = write_qdpx(tmp_path / "p.qdpx", other_tool_project())
    result = run("import", "qdpx", qdpx, "--corpus", corpus, "--codebook", tmp_path / "codebook.yaml")
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "cannot write: a file is in the way" in result.stderr, result.stderr
    assert {**snapshot(corpus), "codebook.yaml": (tmp_path / "codebook.yaml").read_bytes()} == before


def test_a_url_that_is_no_web_address_stays_in_the_description(tmp_path):
    """casebase reads "URL: ..." in a source's description back as its url, which the
    source page links to: a javascript: address from a hostile project must not get there."""
    project = other_tool_project().replace(
        'creationDateTime="2024-05-01T09:00:00Z">',
        'creationDateTime="2024-05-01T09:00:00Z"><Description>URL: javascript:alert(document.cookie)</Description>',
        1,
    )
    qdpx = write_qdpx(tmp_path / "p.qdpx", project)
    result = run("import", "qdpx", qdpx, "--corpus", tmp_path / "corpus", "--codebook", tmp_path / "codebook.yaml")
    assert result.exit_code == 0, result.output
    (source,) = sources_mod.load_sources(tmp_path / "corpus")
    assert source.url is None and source.description == "URL: javascript:alert(document.cookie)"


def test_a_category_that_is_a_coded_code_here_is_refused_by_name(tmp_path):
    """The project files "Digital omstilling" as a category (isCodable="false"); in the
    codebook it is digital_shift, coded and with patterns. One line that says so."""
    corpus, book_path = tmp_path / "corpus", tmp_path / "codebook.yaml"
    shutil.copytree(CORPUS, corpus)
    shutil.copy(CORPUS.parent / "codebook.yaml", book_path)
    before = {**snapshot(corpus), "codebook.yaml": book_path.read_bytes()}
    project = other_tool_project().replace('name="Temaer" isCodable="false"', 'name="Digital omstilling" isCodable="false"')
    result = run("import", "qdpx", write_qdpx(tmp_path / "p.qdpx", project), "--corpus", corpus, "--codebook", book_path)
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "code 'Digital omstilling' is a category (isCodable=\"false\") in p.qdpx, but the codebook's code 'digital_shift'" in result.stderr
    assert {**snapshot(corpus), "codebook.yaml": book_path.read_bytes()} == before


def test_undoing_an_import_into_a_coders_file_with_a_torn_last_line(tmp_path):
    """coder1's file ends in a save that was cut off; the import's own save moves that to a
    side file first. Undone, the file is its whole rows and the torn bytes are in the side file."""
    import subprocess
    import sys

    corpus, book_path = tmp_path / "corpus", tmp_path / "codebook.yaml"
    shutil.copytree(CORPUS, corpus)
    shutil.copy(CORPUS.parent / "codebook.yaml", book_path)
    coder1 = corpus / "coding" / "coder1.csv"
    whole = coder1.read_bytes()
    coder1.write_bytes(whole + b"mm2020-0000000000aa,Halvt gem")
    qdpx = write_qdpx(tmp_path / "p.qdpx", other_tool_project().replace('name="Anna Jensen"', 'name="coder1"'))
    args = ["import", "qdpx", str(qdpx), "--corpus", str(corpus), "--codebook", str(book_path)]
    assert subprocess.run([sys.executable, "-c", KILLED_IMPORT, *args], capture_output=True).returncode == -signal.SIGKILL
    assert qdpx_import.undo_interrupted(corpus, (book_path,)) == "p.qdpx"
    assert coder1.read_bytes() == whole
    (side,) = (corpus / "coding").glob("coder1.csv.torn-*")
    assert side.read_bytes() == b"mm2020-0000000000aa,Halvt gem"


@pytest.mark.parametrize(
    "record",
    [
        {"project": "p.qdpx", "sources": [], "replaced": {"{victim}": "aGFjaw=="}, "appended": {}},
        {"project": "p.qdpx", "sources": [], "replaced": {}, "appended": {"{victim}": 0}},
        {"project": "p.qdpx", "sources": ["../../victim"], "replaced": {}, "appended": {}},
    ],
    ids=["replaced", "appended", "source id"],
)
def test_a_record_from_elsewhere_is_not_followed_outside_the_corpus(tmp_path, record):
    """The record is a file in the corpus (a copy, a clone may bring one): an import never
    writes or deletes a file it names outside the corpus and the codebook."""
    corpus, book_path = tmp_path / "corpus", tmp_path / "codebook.yaml"
    shutil.copytree(CORPUS, corpus)
    shutil.copy(CORPUS.parent / "codebook.yaml", book_path)
    victim = tmp_path / "victim.csv"
    victim.write_text("excerpt_id\nvigtigt\n", encoding="utf-8")
    (corpus / "victim.txt").write_text("vigtigt\n", encoding="utf-8")
    text = json.dumps(record).replace("{victim}", str(victim))
    (corpus / ".import-qdpx.json").write_text(text, encoding="utf-8")
    qdpx = write_qdpx(tmp_path / "p.qdpx", other_tool_project())
    result = run("import", "qdpx", qdpx, "--corpus", corpus, "--codebook", book_path)
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert ".import-qdpx.json: the record of a cut-off import names" in result.stderr and "is not followed" in result.stderr
    assert victim.read_text(encoding="utf-8") == "excerpt_id\nvigtigt\n" and (corpus / "victim.txt").exists()


def test_a_second_import_into_a_corpus_while_one_runs_is_refused(tmp_path):
    """Two imports at once (a script importing several projects in parallel) would each
    merge the codebook as they found it: the second is refused until the first is done."""
    from filelock import FileLock

    corpus, book_path = tmp_path / "corpus", tmp_path / "codebook.yaml"
    shutil.copytree(CORPUS, corpus)
    shutil.copy(CORPUS.parent / "codebook.yaml", book_path)
    before = {**snapshot(corpus), "codebook.yaml": book_path.read_bytes()}
    qdpx = write_qdpx(tmp_path / "p.qdpx", other_tool_project())
    with FileLock(str(corpus / qdpx_import.IMPORT_LOCK)):  # as the running import holds it
        result = run("import", "qdpx", qdpx, "--corpus", corpus, "--codebook", book_path)
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "another 'casebase import qdpx' into this corpus is running" in result.stderr
    assert {**snapshot(corpus), "codebook.yaml": book_path.read_bytes()} == before
    assert run("import", "qdpx", qdpx, "--corpus", corpus, "--codebook", book_path).exit_code == 0


def test_a_folder_that_is_no_corpus_is_not_written_into(tmp_path):
    """--corpus mistyped as a folder with other things in it (no sources.yaml): refused,
    nothing strewn there. A new or empty folder is a new corpus."""
    folder = tmp_path / "projekt"
    folder.mkdir()
    (folder / "noter.txt").write_text("mine noter\n", encoding="utf-8")
    qdpx = write_qdpx(tmp_path / "p.qdpx", other_tool_project())
    result = run("import", "qdpx", qdpx, "--corpus", folder, "--codebook", tmp_path / "codebook.yaml")
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "is no corpus (it has no sources.yaml) and is not empty" in result.stderr
    assert listing(folder) == ["noter.txt"] and not (tmp_path / "codebook.yaml").exists()
    (tmp_path / "tom").mkdir()
    assert run("import", "qdpx", qdpx, "--corpus", tmp_path / "tom", "--codebook", tmp_path / "codebook.yaml").exit_code == 0
