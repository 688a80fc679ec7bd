"""Candidate themes (coding.themes), the codebook write for a new code (coding.new_codes)
and `casebase themes` from the CLI, on the real seed build."""

import json
import re
import shutil
import sqlite3
import subprocess
import sys

import pytest

from casebase.coding import codebook as codebook_mod
from casebase.coding import new_codes, themes
from casebase.errors import CasebaseError
from conftest import CORPUS, REPO_CODEBOOK


@pytest.fixture(scope="module")
def conn(built_db):
    connection = sqlite3.connect(f"{built_db.resolve().as_uri()}?mode=ro", uri=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def found(conn):
    return themes.find(conn, n_themes=8, seed=3)


def test_the_same_seed_gives_the_same_themes(conn, found):
    again = themes.find(conn, n_themes=8, seed=3)
    assert [themes.as_dict(t) for t in again.themes] == [themes.as_dict(t) for t in found.themes]
    assert len(found.themes) == 8 and found.fitted == found.clustered


def test_themes_cover_only_uncovered_prose(conn, found):
    # Every clustered excerpt has one strongest theme; none is a heading or a figure
    # label, and none carries a code or rule evidence.
    assert sum(t.size for t in found.themes) == found.clustered and found.unplaced == 0
    assert [t.number for t in found.themes] == list(range(1, 9))
    assert [t.size for t in found.themes] == sorted((t.size for t in found.themes), reverse=True)
    for theme in found.themes:
        assert theme.lemmas and len(theme.representatives) == themes.REPRESENTATIVES
        for excerpt in theme.representatives:
            assert excerpt.kind in ("paragraph", "quote", "case_field", "answer")
            assert conn.execute("select count(*) from codings where excerpt_id = ?", [excerpt.id]).fetchone()[0] == 0
            assert conn.execute("select count(*) from rule_hits where excerpt_id = ? and not against", [excerpt.id]).fetchone()[0] == 0
        assert sum(theme.sources.values()) == theme.size


def test_a_large_corpus_is_placed_from_a_sample(conn, found):
    # Fitted on a sample (the path a million excerpts take), every excerpt is still placed.
    sampled = themes.find(conn, n_themes=8, seed=3, fit_sample=300)
    assert sampled.fitted == 300 and sum(t.size for t in sampled.themes) + sampled.unplaced == found.clustered
    assert sampled.unplaced < 10  # a few excerpts share no word with the sample
    assert [themes.as_dict(t) for t in themes.find(conn, n_themes=8, seed=3, fit_sample=300).themes] == [
        themes.as_dict(t) for t in sampled.themes
    ]


def test_sub_themes_come_from_one_codes_excerpts(conn):
    found = themes.find(conn, n_themes=4, seed=0, code="digital_shift")
    assert found.themes
    for theme in found.themes:
        for excerpt in theme.representatives:
            codes = {r[0] for r in conn.execute("select code_id from codings where excerpt_id = ?", [excerpt.id])}
            assert "digital_shift" in codes and "online_family_therapy" not in codes


@pytest.fixture
def codebook_copy(tmp_path):
    path = tmp_path / "codebook.yaml"
    shutil.copy(REPO_CODEBOOK, path)
    return path


def test_a_new_code_is_appended_with_comments_and_order_kept(codebook_copy):
    before = codebook_copy.read_text(encoding="utf-8")
    old = codebook_mod.load(codebook_copy)
    new = new_codes.NewCode(
        id="telefonisk_kontakt",
        label_da="Telefonisk kontakt",
        definition="Kontakt med borgere over telefon: opkald, sms, telefonrådgivning – ikke video.",
        patterns=["telefon*", "ringe * op", "sms: besked"],
    )
    book = new_codes.add_code(codebook_copy, new)
    after = codebook_copy.read_text(encoding="utf-8")
    assert after.startswith(before)  # every comment, code, quote and replaces as it was
    assert "# Patterns: words separated by spaces" in after
    assert list(book.codes) == [*old.codes, "telefonisk_kontakt"]
    code = book.codes["telefonisk_kontakt"]
    assert (code.label_da, code.label_en, code.parent) == ("Telefonisk kontakt", "Telefonisk kontakt", None)
    assert [p.text for p in code.patterns] == ["telefon*", "ringe * op", "sms: besked"]  # ':' quoted, read back
    assert code.colour not in {c.colour for c in old.codes.values()}
    for code_id in old.codes:  # the old codes read back exactly
        assert vars(book.codes[code_id]) == vars(old.codes[code_id])
    child = new_codes.add_code(codebook_copy, new_codes.NewCode("video_samtaler", "Videosamtaler", "Samtaler over video.", parent="digital_shift"))
    assert child.codes["video_samtaler"].parent == "digital_shift" and child.ids[-2:] == ["telefonisk_kontakt", "video_samtaler"]


@pytest.mark.parametrize(
    "new, check, message",
    [
        (new_codes.NewCode("outdoor", "Ude", "Ude."), None, "already in the codebook"),
        (new_codes.NewCode("ny_kode", "Ny", "Ny.", parent="findes_ikke"), None, "unknown parent"),
        (new_codes.NewCode("ny_kode", "Ny", "Ny.", patterns=["tele*fon"]), "matcher", "does not compile"),
        (new_codes.NewCode("ny_kode", "Ny", "Ny.", patterns=["?"]), "matcher", "a word with a letter or digit"),
        (new_codes.NewCode("ny_kode", "Ny", "Ny.", patterns=["telefon*", "– *"]), "matcher", "a word with a letter or digit"),
        (new_codes.NewCode("Ny-Kode", "Ny", "Ny."), None, "snake_case"),
    ],
)
def test_a_refused_code_leaves_the_codebook_as_it_was(codebook_copy, matcher, new, check, message):
    from casebase.coding import rules

    before = codebook_copy.read_bytes()
    checker = (lambda book: rules.RuleMatcher(matcher.nlp, book)) if check else None
    with pytest.raises(CasebaseError, match=message) as caught:
        new_codes.add_code(codebook_copy, new, check=checker)
    assert caught.value.file == str(codebook_copy)
    assert codebook_copy.read_bytes() == before
    assert [p.name for p in codebook_copy.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_queued_excerpts_follow_a_renamed_code(tmp_path, book):
    coding = tmp_path / "coding"
    new_codes.queue_excerpts(coding, "gammel", [("a-1", "Første  tekst"), ("a-2", "Anden")], "telefon", "anna")
    new_codes.queue_excerpts(coding, "gammel", [("a-2", "Anden"), ("a-3", "Tredje")], "telefon", "bo")
    rows = new_codes.read_queued_file(new_codes.queued_file(coding, "gammel"))
    assert [(r["excerpt_id"], r["snippet"], r["proposed_by"]) for r in rows] == [
        ("a-1", "Første tekst", "anna"), ("a-2", "Anden", "anna"), ("a-3", "Tredje", "bo")]
    renamed = codebook_mod.Codebook(
        codes={**book.codes, "ny": codebook_mod.Code("ny", "Ny", "New", "Ny.", replaces=["gammel"])}, version="x", path=book.path)
    assert {r["code_id"] for r in new_codes.read_queued(coding, renamed)} == {"ny"}
    assert new_codes.read_queued(coding, book) == []  # a deleted code's queue is left out


@pytest.mark.parametrize(
    "content, message, line",
    [(b"excerpt_id,code\na-1,x\n", "expected the columns", 1), (b"excerpt_id,snippet,theme,proposed_by,timestamp\na-1,\xff\n", "not UTF-8", 2)],
)
def test_a_damaged_queued_file_is_named(tmp_path, book, content, message, line):
    path = new_codes.queued_file(tmp_path, "outdoor")
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(CasebaseError, match=message) as caught:
        new_codes.read_queued(tmp_path, book)
    assert (caught.value.file, caught.value.line) == (str(path), line)


def themes_cli(built_db, *args):
    return subprocess.run(
        [sys.executable, "-m", "casebase", "themes", "--db", str(built_db), "--corpus", str(CORPUS), "--codebook", str(REPO_CODEBOOK), *args],
        capture_output=True, text=True, timeout=300,
    )


def test_themes_from_the_cli(built_db):
    shown = themes_cli(built_db, "--n", "6", "--json")
    assert shown.returncode == 0, shown.stderr
    lines = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [t["number"] for t in lines] == [1, 2, 3, 4, 5, 6]
    assert all(t["lemmas"] and t["patterns"] and t["representatives"] for t in lines)
    text = themes_cli(built_db, "--n", "6")
    assert text.returncode == 0 and "candidate themes, seed 0" in text.stdout and "patterns:" in text.stdout
    assert f"[{lines[0]['representatives'][0]['id']}]" in text.stdout
    unknown = themes_cli(built_db, "--code", "findes_ikke")
    assert unknown.returncode == 1 and unknown.stderr.strip().splitlines() == [f"Error: {REPO_CODEBOOK}: unknown code 'findes_ikke'"]


def trimmed_copy(built_db, tmp_path, keep):
    """A copy of the seed build with only the first ``keep`` uncovered excerpts left."""
    path = tmp_path / "casebase.db"
    shutil.copy(built_db, path)
    connection = sqlite3.connect(path)
    sql, params = themes._select(None)
    uncovered = [row[0] for row in connection.execute(sql, params)]
    connection.executemany("delete from excerpts where id = ?", [(i,) for i in uncovered[keep:]])
    connection.commit()
    return connection


@pytest.mark.parametrize("keep", [0, 1, 4, 8])
def test_a_tiny_corpus_has_no_themes_rather_than_an_error(built_db, tmp_path, keep):
    # A handful of uncovered excerpts share no word in three of them and at most 30 %:
    # no theme, where the vectorizer used to raise.
    connection = trimmed_copy(built_db, tmp_path, keep)
    try:
        found = themes.find(connection, n_themes=2, seed=0)
    finally:
        connection.close()
    assert found.themes == [] and found.clustered <= keep


def test_themes_refuse_what_they_cannot_cluster_from_the_cli(built_db, tmp_path):
    for seed in ("-1", str(2**32)):
        refused = themes_cli(built_db, "--seed", seed)
        assert refused.returncode == 2 and "Invalid value for '--seed'" in refused.stderr and "Traceback" not in refused.stderr
    # A grouping code has no excerpts of its own. The build is the seed's (a rebuild with
    # a grouping code costs half a minute); its codes table says what a build writes for
    # one: codable 0.
    (tmp_path / "db").mkdir()
    shutil.copy(built_db, tmp_path / "db" / "casebase.db")
    for folder in ("models", "cache"):
        if (built_db.parent / folder).exists():
            shutil.copytree(built_db.parent / folder, tmp_path / "db" / folder)
    connection = sqlite3.connect(tmp_path / "db" / "casebase.db")
    connection.execute("update codes set codable = 0 where id = 'digital_shift'")
    connection.commit()
    connection.close()
    refused = themes_cli(tmp_path / "db" / "casebase.db", "--code", "digital_shift")
    assert refused.returncode == 1 and refused.stderr.strip().splitlines() == [
        f"Error: {REPO_CODEBOOK}: 'digital_shift' is a grouping code (codable: false): nothing is coded with it; give one of its codes"
    ]


@pytest.mark.parametrize(
    "new, message",
    [
        (new_codes.NewCode("a" * 61, "Lang", "Lang."), "at most 60"),
        (new_codes.NewCode("lang_etiket", "x" * 121, "Lang."), "longer than 120"),
        (new_codes.NewCode("lang_definition", "Lang", "x" * 5_001), "longer than 5000"),
        (new_codes.NewCode("mange", "Mange", "Mange.", patterns=[f"ord{i}" for i in range(51)]), "at most 50 patterns"),
        (new_codes.NewCode("styretegn", "a\nb: c", "Ny."), "control character"),
        (new_codes.NewCode("nul", "a\x00b", "Ny."), "control character"),
        (new_codes.NewCode("bidi", "\u202eabc", "Ny."), "control character"),
    ],
)
def test_a_code_beyond_bounds_is_refused(codebook_copy, new, message):
    before = codebook_copy.read_bytes()
    with pytest.raises(CasebaseError, match=message):
        new_codes.add_code(codebook_copy, new)
    assert codebook_copy.read_bytes() == before


def test_the_id_of_a_removed_code_coders_judged_is_refused(codebook_copy, tmp_path):
    # Decisions under an earlier codebook judged "fjernet_kode" present or absent; a new
    # code by that id would silently inherit those readings.
    before = codebook_copy.read_bytes()
    with pytest.raises(CasebaseError, match="belonged to a removed code that coders judged"):
        new_codes.add_code(codebook_copy, new_codes.NewCode("fjernet_kode", "Ny", "Ny."), judged={"fjernet_kode", "outdoor"})
    assert codebook_copy.read_bytes() == before
    (tmp_path / "codebooks.csv").write_text("codebook_version,codes\na1,outdoor fjernet_kode\nb2,outdoor to_go\n", encoding="utf-8")
    assert new_codes.judged_ids(tmp_path) == {"outdoor", "fjernet_kode", "to_go"}


def _dash_at_column_0(text):
    return re.sub(r"(?m)^  - id:", "- id:", text).replace("\n    ", "\n  ")


@pytest.mark.parametrize(
    "layout",
    [
        lambda text: text.replace("\n", "\r\n"),  # saved by a Windows editor
        lambda text: "\ufeff" + text,  # with a byte-order mark
        lambda text: "---\n" + text,  # an explicit document start
        lambda text: text.rstrip("\n"),  # no line end after the last line
        lambda text: text + "# slut\n",  # a closing comment
        _dash_at_column_0,  # the list's dashes at column 0
    ],
)
def test_a_new_code_is_appended_to_a_codebook_of_another_layout(codebook_copy, layout):
    before = layout(REPO_CODEBOOK.read_text(encoding="utf-8")).encode("utf-8")
    codebook_copy.write_bytes(before)
    old = codebook_mod.load(codebook_copy)
    book = new_codes.add_code(codebook_copy, new_codes.NewCode("ny_kode", "Ny", "Ny kode.", patterns=["telefon*", "ny vej"]))
    after = codebook_copy.read_bytes()
    assert after.startswith(before) and book.ids == [*old.ids, "ny_kode"]
    assert all(book.codes[c] == old.codes[c] for c in old.ids)
    assert [p.text for p in book.codes["ny_kode"].patterns] == ["telefon*", "ny vej"]
    assert (b"\r\n" in after[len(before):]) == (b"\r\n" in before)


def test_a_codebook_whose_document_ends_early_is_left_alone(codebook_copy):
    codebook_copy.write_text(REPO_CODEBOOK.read_text(encoding="utf-8") + "...\n", encoding="utf-8")
    before = codebook_copy.read_bytes()
    with pytest.raises(CasebaseError, match=r"document ends before the file does \(a '\.\.\.' line\)"):
        new_codes.add_code(codebook_copy, new_codes.NewCode("ny_kode", "Ny", "Ny kode."))
    assert codebook_copy.read_bytes() == before
