"""The CLI: help, check, and bad input as one clear line with nothing damaged."""


import pytest
from click.testing import CliRunner

from casebase.cli import cli


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_help_explains_each_command():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("build", "check", "serve"):
        assert command in result.output
    assert "Validate sources.yaml" in run("check", "--help").output


def test_check_lists_every_source(corpus_copy):
    result = run("check", "--corpus", str(corpus_copy))
    assert result.exit_code == 0, result.output
    lines = [l for l in result.output.splitlines() if l.startswith("ok") and " excerpts " in l]
    assert len(lines) == 6
    assert "ok  codebook" in result.output
    assert any("vive2021" in l and " 50 cases" in l for l in lines)


@pytest.fixture
def previous_db(tmp_path):
    db = tmp_path / "db" / "casebase.db"
    db.parent.mkdir()
    db.write_bytes(b"the previous build")
    return db


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output


BAD_INPUTS = {
    "missing text": lambda c: (c / "texts" / "004_a09c0e09be8629b7.txt").unlink(),
    "not utf-8": lambda c: (c / "texts" / "004_a09c0e09be8629b7.txt").write_bytes("Århus\nKøge".encode("cp1252")),
    "empty text": lambda c: (c / "texts" / "004_a09c0e09be8629b7.txt").write_text("\n \n"),
    "unknown key": lambda c: (c / "sources.yaml").write_text(
        (c / "sources.yaml").read_text().replace("    kind: magazine\n", "    kind: magazine\n    colour: red\n")
    ),
    "missing field": lambda c: (c / "sources.yaml").write_text(
        (c / "sources.yaml").read_text().replace("    kind: magazine\n", "")
    ),
    "no text column": lambda c: (c / "answers" / "mm2020_answers.csv").write_text(
        "answer_id,svar\nx1,Vi gik ture\n"
    ),
}
EXPECTED = {
    "missing text": ("004_a09c0e09be8629b7.txt", "file not found"),
    "not utf-8": ("004_a09c0e09be8629b7.txt:1", "not valid UTF-8"),
    "empty text": ("004_a09c0e09be8629b7.txt", "empty text"),
    "unknown key": ("sources.yaml:", "unknown key 'colour'"),
    "missing field": ("sources.yaml:", "missing 'kind'"),
    "no text column": ("mm2020_answers.csv:1", "missing column(s) 'answer'"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_clearly_and_keeps_previous_db(case, corpus_copy, previous_db):
    BAD_INPUTS[case](corpus_copy)
    result = run("build", "--corpus", str(corpus_copy), "--db", str(previous_db))
    assert_one_line_error(result, *EXPECTED[case])
    assert previous_db.read_bytes() == b"the previous build"
    # Nothing beside the database but the analysis cache of the sources read before the error.
    assert [p.name for p in previous_db.parent.iterdir() if p.name != "cache"] == ["casebase.db"]


def test_serve_without_database(tmp_path):
    result = run("serve", "--db", str(tmp_path / "none.db"))
    assert_one_line_error(result, "none.db", "run 'casebase build' first")
