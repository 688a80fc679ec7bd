"""The build end to end on the real seed corpus: counts, offsets, stable ids, atomicity."""

import sqlite3

import pytest
import sqlite_utils

from casebase import pipeline as build_stage
from casebase.errors import CasebaseError
from casebase.ingest import reading, sources
from casebase.ingest.segment import excerpt_id
from casebase.store import source_text


def test_every_table_is_filled(built_db):
    db = sqlite_utils.Database(built_db)
    assert db["sources"].count == 6
    kinds = {row["kind"]: row["n"] for row in db.query("select kind, count(*) n from excerpts group by kind")}
    assert kinds["paragraph"] > 500
    assert kinds["heading"] > 50
    assert kinds["case_field"] >= 50 * 3
    assert kinds["answer"] >= 8
    assert db["cases"].count >= 50 + 6


def test_the_vive_cases_with_all_fields(built_db):
    # The report's text says "i alt 49 nyskabelser", but its Bilag 2 table has 50
    # rows, each with its own fields; every row is a case.
    db = sqlite_utils.Database(built_db)
    vive = list(db.query("select * from cases where source_id = 'vive2021' and municipality is not null"))
    assert len(vive) == 50
    for case in vive:
        assert case["area"] and case["purpose"] and case["intervention"], case
        assert case["source_theme"]
    family = [c["municipality"] for c in vive if c["source_theme"] == "ONLINE FAMILIEBEHANDLING"]
    assert len(family) == 5


def test_excerpts_are_exact_spans_of_the_cleaned_text(built_db):
    db = sqlite_utils.Database(built_db)
    texts = {row["id"]: "".join(source_text.parts(db, row["id"])) for row in db["sources"].rows}
    for row in db.query("select source_id, text, char_start, char_end from excerpts"):
        assert texts[row["source_id"]][row["char_start"] : row["char_end"]] == row["text"]


def test_case_links_to_its_excerpts(built_db):
    db = sqlite_utils.Database(built_db)
    case = next(db.query("select * from cases where municipality = 'Favrskov' and area = 'Ældre'"))
    fields = {
        row["field"]: row["text"]
        for row in db.query("select field, text from excerpts where case_id = ?", [case["id"]])
        if row["field"]
    }
    assert fields["target_group"] == "Målgruppe: Plejehjemsbeboere."
    assert fields["purpose"] == "Formål: Online pårørendekontakt."
    assert case["excerpt_count"] >= 4


def test_answers_keep_their_attributes(built_db):
    db = sqlite_utils.Database(built_db)
    answer = next(db.query("select * from excerpts where id = 'mm2020-svar-mm2020-a01'"))
    assert answer["kind"] == "answer"
    attributes = {
        row["name"]: row["value"]
        for row in db.query("select name, value from attributes where entity_id = ?", [answer["id"]])
    }
    assert attributes["category"]
    assert attributes["answer_id"] == "mm2020-a01"


def test_lemmas_and_full_text_search(built_db):
    db = sqlite_utils.Database(built_db)
    info = {row["key"]: row["value"] for row in db["build_info"].rows}
    assert info["nlp_pipeline"]
    hits = list(db["excerpts"].search("varmestuer"))
    assert hits and any("to-go" in h["text"] for h in hits)
    assert all(row["lemmas"] for row in db.query("select lemmas from excerpts where kind = 'paragraph'"))


def test_ids_are_stable_when_other_paragraphs_change(corpus_copy):
    path = corpus_copy / "texts" / "001_3b6d13a4e48ba963.txt"
    source = next(s for s in sources.load_sources(corpus_copy) if s.id == "bikuben2020pm")
    before = {e.text: e.id for e in reading.process_source(source).excerpts}
    text = path.read_text(encoding="utf-8")
    edited = text.replace("Undersøgelsen viser, at 8 ud af 10", "Undersøgelsen viser klart, at 8 ud af 10")
    assert edited != text
    path.write_text(edited, encoding="utf-8")
    after = {e.text: e.id for e in reading.process_source(source).excerpts}
    unchanged = set(before) & set(after)
    assert len(unchanged) >= len(before) - 1
    assert all(before[t] == after[t] for t in unchanged)
    assert excerpt_id("bikuben2020pm", "  Samme   tekst ") == excerpt_id("bikuben2020pm", "samme tekst")


def test_failed_build_leaves_previous_database(corpus_copy, tmp_path, built_db):
    db_path = tmp_path / "casebase.db"
    db_path.write_bytes(built_db.read_bytes())
    (corpus_copy / "texts" / "000_45e4f39cd2afe250.txt").write_bytes(b"\xff\xfe broken")
    with pytest.raises(CasebaseError):
        build_stage.build(corpus_copy, db_path)
    assert db_path.read_bytes() == built_db.read_bytes()
    assert sqlite3.connect(db_path).execute("select count(*) from excerpts").fetchone()[0] > 0
    assert list(tmp_path.glob(".*.tmp")) == []


def _content(path):
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return {
            "excerpts": conn.execute("select id, source_id, seq, kind, char_start, char_end, text, lemmas, codes from excerpts order by id").fetchall(),
            "source_texts": conn.execute("select * from source_texts order by source_id").fetchall(),
            "sources": conn.execute("select * from sources order by id").fetchall(),
            "cases": conn.execute("select * from cases order by id").fetchall(),
            "attributes": conn.execute("select * from attributes order by entity_id, name").fetchall(),
            "rule_hits": conn.execute('select excerpt_id, code_id, start, "end", pattern from rule_hits order by 1, 2, 3, 5').fetchall(),
            "codings": conn.execute("select excerpt_id, code_id, origin, round(score, 6), coder from codings order by 1, 2").fetchall(),
            "suggestions": conn.execute("select excerpt_id, code_id, round(score, 6) from suggestions order by 1, 2").fetchall(),
            "decisions": conn.execute("select coder, excerpt_id, line, status from decisions order by coder, line").fetchall(),
        }
    finally:
        conn.close()


def test_the_build_streams_in_batches_and_workers_without_changing_a_row(tmp_path, built_db, monkeypatch):
    """The build reads, analyses, writes and codes a batch at a time (constant
    memory in the corpus size) and spreads big batches over worker processes.
    Neither may change what is built: tiny batches in one process, and tiny
    batches over two worker processes, give exactly the database of a normal build."""
    import shutil

    from casebase.nlp import analysis
    from conftest import CORPUS, REPO

    expected = _content(built_db)
    assert len(expected["excerpts"]) > 2000 and expected["codings"] and expected["suggestions"]
    monkeypatch.setattr(reading, "BATCH", 97)  # a survey source and every report cross batch borders
    for processes, minimum in ((1, 10**9), (2, 1)):
        monkeypatch.setattr(analysis, "PARALLEL_MINIMUM", minimum)
        monkeypatch.setattr(analysis, "CHUNK", 13)
        site = tmp_path / f"site-{processes}"
        site.mkdir()
        shutil.copytree(built_db.parent / "models", site / "models")  # the same model, not a retrained one
        report = build_stage.build(CORPUS, site / "casebase.db", REPO / "codebook.yaml", processes=processes)
        assert not report.retrained
        got = _content(site / "casebase.db")
        for table in expected:
            assert got[table] == expected[table], (processes, table)


def test_a_label_edit_rebuilds_from_the_caches_without_spacy_or_scikit_learn(tmp_path, built_db):
    """Editing a label changes no text, no pattern and no decision: the rebuild
    takes lemmas, rule hits, model scores and agreement figures from the caches,
    and never imports spaCy or scikit-learn (seconds of every such rebuild)."""
    import shutil
    import subprocess
    import sys

    from conftest import CORPUS, REPO

    site = tmp_path / "db"
    shutil.copytree(built_db.parent, site)
    codebook = tmp_path / "codebook.yaml"
    text = (REPO / "codebook.yaml").read_text(encoding="utf-8")
    assert "label_da: Digital omstilling\n" in text
    codebook.write_text(text.replace("label_da: Digital omstilling\n", "label_da: Digital omstilling (redigeret)\n"), encoding="utf-8")
    code = (
        "import sys; from pathlib import Path; from casebase import pipeline; "
        f"report = pipeline.build(Path({str(CORPUS)!r}), Path({str(site / built_db.name)!r}), Path({str(codebook)!r})); "
        "print(report.retrained, sorted(m for m in ('spacy', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(REPO / "src")}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False []"
    db = sqlite_utils.Database(site / built_db.name)
    before = sqlite_utils.Database(built_db)
    assert db["codes"].get("digital_shift")["label_da"] == "Digital omstilling (redigeret)"
    query = "select excerpt_id, code_id, origin, score from codings order by 1, 2"
    assert list(db.query(query)) == list(before.query(query))
    assert list(db.query("select * from agreement order by rowid")) == list(before.query("select * from agreement order by rowid"))


def test_a_pattern_edit_retrains_only_when_a_training_rows_rule_hits_change(tmp_path, built_db):
    """Rule hits are model features: a new pattern that fires on no decided excerpt or
    constructed example leaves the training data as it was, so the saved model is
    kept; one that fires on a decided excerpt retrains."""
    import shutil

    from casebase import pipeline
    from conftest import CORPUS, REPO

    site = tmp_path / "db"
    shutil.copytree(built_db.parent, site)
    codebook = tmp_path / "codebook.yaml"
    text = (REPO / "codebook.yaml").read_text(encoding="utf-8")
    anchor = "      - gå * tur*\n"
    assert anchor in text and "      - skov\n" not in text
    before = sqlite_utils.Database(built_db)
    run = before["build_info"].get("model_run")["value"]

    codebook.write_text(text.replace(anchor, anchor + "      - gåtursnakkeriet\n", 1), encoding="utf-8")
    report = pipeline.build(CORPUS, site / built_db.name, codebook)
    assert not report.retrained and report.model_run == run
    query = "select excerpt_id, code_id, origin, score from codings order by 1, 2"
    assert list(sqlite_utils.Database(site / built_db.name).query(query)) == list(before.query(query))

    codebook.write_text(text.replace(anchor, anchor + "      - skov\n", 1), encoding="utf-8")
    report = pipeline.build(CORPUS, site / built_db.name, codebook)
    assert report.retrained and report.model_run == run  # the same decisions, new features
    db = sqlite_utils.Database(site / built_db.name)
    assert db.execute("select count(*) from rule_hits where pattern = 'skov'").fetchone()[0] >= 9
