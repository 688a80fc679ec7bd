"""A survey's cleaned text is never assembled as one value: it is laid out from its
excerpts, in parts, where it is read. The text is the same as the build stored it
before (the excerpts joined by SQLite's group_concat into source_texts)."""

import sqlite3
import tracemalloc
import zipfile

import pytest
import sqlite_utils
from click.testing import CliRunner

from casebase.cli import cli
from casebase.ingest.segment import SEPARATOR
from casebase.publish import refiqda
from casebase.store import database, source_text

SURVEY = "mm2020-svar"


def old_layout(conn, source_id: str) -> str:
    """The survey's text as the build wrote it into source_texts before."""
    return conn.execute(
        "select group_concat(text, ?) || char(10) from (select text from excerpts where source_id = ? order by seq)",
        [SEPARATOR, source_id],
    ).fetchone()[0]


def test_every_source_reads_as_the_build_laid_it_out(built_db):
    conn = sqlite3.connect(built_db)
    sources = [row[0] for row in conn.execute("select id from sources")]
    stored = {row[0] for row in conn.execute("select source_id from source_texts")}
    assert SURVEY in sources and SURVEY not in stored  # the streamed survey's text is no value
    assert stored == set(sources) - {SURVEY}  # the texts read whole are kept as they were cleaned
    for source_id in sources:
        text = "".join(source_text.parts(conn, source_id))
        assert text == old_layout(conn, source_id), source_id
        assert source_text.length(conn, source_id) == len(text)
    assert list(source_text.parts(conn, "no-such-source")) == []
    assert source_text.length(conn, "no-such-source") == 0


def test_a_survey_is_read_a_bounded_number_of_characters_at_a_time(built_db):
    conn = sqlite3.connect(built_db)
    longest = conn.execute("select max(length(text)) from excerpts where source_id = ?", [SURVEY]).fetchone()[0]
    parts = list(source_text.parts(conn, SURVEY, part_characters=200))
    assert len(parts) > 3
    assert all(len(part) < 200 + len(SEPARATOR) + longest for part in parts)
    assert "".join(parts) == old_layout(conn, SURVEY)


def test_the_qdpx_export_carries_each_text_as_before(built_db, tmp_path):
    out = tmp_path / "seed.qdpx"
    result = CliRunner().invoke(cli, ["export", "qdpx", str(out), "--db", str(built_db)])
    assert result.exit_code == 0, result.output
    conn = sqlite3.connect(built_db)
    with zipfile.ZipFile(out) as archive:
        for source_id in [row[0] for row in conn.execute("select id from sources")]:
            member = f"sources/{refiqda.guid('source', source_id)}.txt"
            assert archive.read(member) == old_layout(conn, source_id).encode("utf-8"), source_id


@pytest.fixture
def big_survey(tmp_path):
    """A database whose one survey source has 20,000 answers of 2,000 characters:
    a 40 MB text."""
    path = tmp_path / "casebase.db"
    db = sqlite_utils.Database(path)
    database.create_schema(db)
    db["sources"].insert({"id": "stor", "title": "Stor survey", "kind": "survey", "parser": "answers"})
    rows, offset = [], 0
    for seq in range(1, 20_001):
        text = f"svar {seq:05d} " + "ord " * 497 + "slut"
        rows.append((f"stor-{seq}", "stor", seq, seq, "answer", text, offset, offset + len(text)))
        offset += len(text) + len(SEPARATOR)
    db.conn.executemany(
        "insert into excerpts (id, source_id, position, seq, kind, text, char_start, char_end) values (?, ?, ?, ?, ?, ?, ?, ?)", rows
    )
    db.conn.commit()
    db.conn.close()
    return path


def test_a_large_surveys_text_is_written_a_part_at_a_time(big_survey, tmp_path):
    conn = sqlite3.connect(big_survey)
    whole = source_text.length(conn, "stor")
    assert whole > 40_000_000
    db = database.open_built(big_survey)
    project, files, _ = refiqda.build_project(db)
    out = tmp_path / "stor.qdpx"
    tracemalloc.start()
    try:
        refiqda.write_zip(out, {refiqda.PROJECT_FILE: project, **files})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Assembled, the text alone would take 40 MB as a string and 40 more as bytes.
    assert peak < 8 * source_text.PART_CHARACTERS < whole / 4, peak
    with zipfile.ZipFile(out) as archive:
        text = archive.read(f"sources/{refiqda.guid('source', 'stor')}.txt").decode("utf-8")
    assert text == old_layout(conn, "stor")
