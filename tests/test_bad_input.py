"""Bad input of every kind a user can cause: one clear error line naming the
file (and line, where it has one), a non-zero exit, and nothing damaged — the
previous database byte-identical, the codebook and the coding files unchanged.

(tests/test_cli.py holds a few more build cases of the same pattern.)
"""

import hashlib
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from casebase.cli import cli
from conftest import CORPUS, REPO_CODEBOOK

TEXT = "texts/004_a09c0e09be8629b7.txt"
ANSWERS = "answers/mm2020_answers.csv"


@pytest.fixture
def site(tmp_path, built_db):
    """A corpus, codebook and previous build (with its model and caches) to damage."""
    shutil.copytree(CORPUS, tmp_path / "corpus")
    shutil.copy(REPO_CODEBOOK, tmp_path / "codebook.yaml")
    shutil.copytree(built_db.parent, tmp_path / "db")
    return tmp_path


def snapshot(site: Path) -> dict[str, str]:
    """Every file a user keeps or a build publishes (caches excluded)."""
    files = [p for p in site.rglob("*") if p.is_file() and "cache" not in p.parts]
    return {str(p.relative_to(site)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def build(site):
    return ["build", "--force", "--corpus", str(site / "corpus"), "--codebook", str(site / "codebook.yaml"), "--db", str(site / "db" / "casebase.db")]


def xlsx_with_merged_cells(site: Path) -> list[str]:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["answer_id", "answer", "category", "question", "respondent", "page", "context"])
    sheet.append(["x1", "Vi gik ture i skoven med borgerne.", "Udendørs", "", "", 1, ""])
    sheet.append(["x2", "Vi holdt møder på Teams.", "Digital", "", "", 1, ""])
    sheet.merge_cells("C2:C3")
    book.save(site / "corpus" / "answers" / "mm2020.xlsx")
    edit(site / "corpus" / "sources.yaml", "file: answers/mm2020_answers.csv", "file: answers/mm2020.xlsx")
    return build(site)


def fifty_mb_line(site: Path) -> list[str]:
    (site / "corpus" / TEXT).write_text("Vi gik ture i skoven. " * (50_000_000 // 22), encoding="utf-8")
    return build(site)


def truncated_yaml(site: Path) -> list[str]:
    path = site / "corpus" / "sources.yaml"
    text = path.read_text(encoding="utf-8")
    cut = text.index('title: "Kortlægning') + 20  # inside a quoted string
    path.write_text(text[:cut], encoding="utf-8")
    return build(site)


def unknown_code_in_coding_file(site: Path) -> list[str]:
    path = site / "corpus" / "coding" / "coder1.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for i, line in enumerate(lines[1:], start=1):
        if "digital_shift" in line:
            lines[i] = line.replace("digital_shift", "gaature", 1)
            break
    path.write_text("".join(lines), encoding="utf-8")
    return build(site)


def glued_coding_line(site: Path) -> list[str]:
    # What a save on a full disk did before casebase cut failed writes back: a torn
    # row, and the next save's row glued onto it. (A torn last line alone is left
    # out with a warning and moved aside by the next save: tests/test_coder_files.py.)
    path = site / "corpus" / "coding" / "coder1.csv"
    last = path.read_text(encoding="utf-8").splitlines()[-1]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("vive2021-abc,Indsats: Walk and ta" + last + "\n")
    return build(site)


def then(_done, args: list[str]) -> list[str]:
    """The command to run, after the damage done in the first argument."""
    return args


def corrupt_db(site: Path) -> None:
    (site / "db" / "casebase.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)


CASES = {
    "truncated sources.yaml": (truncated_yaml, ("sources.yaml:",)),
    "invalid YAML codebook": (
        lambda s: then((s / "codebook.yaml").write_text((s / "codebook.yaml").read_text(encoding="utf-8") + "  - id: [open\n", encoding="utf-8"), build(s)),
        ("codebook.yaml:", "YAML"),
    ),
    "unknown key in sources.yaml": (
        lambda s: then(edit(s / "corpus" / "sources.yaml", "    kind: magazine\n", "    kind: magazine\n    colour: red\n"), build(s)),
        ("sources.yaml:", "unknown key 'colour'"),
    ),
    "unknown key in codebook": (
        lambda s: then(edit(s / "codebook.yaml", "    label_en: Digital shift\n", "    label_en: Digital shift\n    farve: blå\n"), build(s)),
        ("codebook.yaml:", "unknown key 'farve'"),
    ),
    "duplicate code id": (
        lambda s: then(edit(s / "codebook.yaml", "  - id: one_to_one\n", "  - id: to_go\n"), build(s)),
        ("codebook.yaml:", "duplicate code id 'to_go'"),
    ),
    "parent cycle": (
        lambda s: then(edit(s / "codebook.yaml", "  - id: outdoor\n", "  - id: outdoor\n    parent: walk_and_talk\n"), build(s)),
        ("codebook.yaml:", "parent cycle"),
    ),
    "unknown parent": (
        lambda s: then(edit(s / "codebook.yaml", "  - id: outdoor\n", "  - id: outdoor\n    parent: nature\n"), build(s)),
        ("codebook.yaml:", "nature"),
    ),
    "not UTF-8 text": (
        lambda s: then((s / "corpus" / TEXT).write_bytes("Århus og Køge".encode("cp1252")), build(s)),
        (f"{TEXT}:1", "not valid UTF-8"),
    ),
    "empty text": (lambda s: then((s / "corpus" / TEXT).write_text(" \n\n"), build(s)), (TEXT, "empty text")),
    "binary file as .txt": (
        lambda s: then((s / "corpus" / TEXT).write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))), build(s)),
        (TEXT, "binary file"),
    ),
    "missing source file": (lambda s: then((s / "corpus" / TEXT).unlink(), build(s)), (TEXT, "file not found")),
    "duplicate source id": (
        lambda s: then(edit(s / "corpus" / "sources.yaml", "  - id: bikuben2020pm\n", "  - id: mm2020\n"), build(s)),
        ("sources.yaml:", "duplicate source id 'mm2020'"),
    ),
    "CSV with the wrong delimiter": (
        lambda s: then(
            (s / "corpus" / ANSWERS).write_text(
                (s / "corpus" / ANSWERS).read_text(encoding="utf-8").splitlines()[0].replace(",", ";") + "\nx1;Vi gik ture;;;;;\n",
                encoding="utf-8",
            ),
            build(s),
        ),
        (f"{ANSWERS}:1", "delimiter"),
    ),
    "CSV without the text column": (
        lambda s: then((s / "corpus" / ANSWERS).write_text("answer_id,svar\nx1,Vi gik ture\n", encoding="utf-8"), build(s)),
        (f"{ANSWERS}:1", "missing column(s) 'answer'"),
    ),
    "50 MB single-line text": (fifty_mb_line, (f"{TEXT}:1", "longest a line may be")),
    "XLSX with merged cells": (xlsx_with_merged_cells, ("mm2020.xlsx:2", "merged cells")),
    "unknown code in a coding file": (unknown_code_in_coding_file, ("coder1.csv:", "unknown code id 'gaature'")),
    "torn row glued to the next in a coding file": (glued_coding_line, ("coder1.csv:", "wrong number of columns")),
    "corrupt model file": (
        lambda s: then((s / "db" / "models" / "model.joblib").write_bytes(b"not a pickle at all"), build(s)),
        ("model.joblib", "damaged"),
    ),
    "corrupt DB for serve": (
        lambda s: then(corrupt_db(s), ["serve", "--db", str(s / "db" / "casebase.db")]),
        ("casebase.db", "not a casebase database"),
    ),
    "corrupt DB for export": (
        lambda s: then(corrupt_db(s), ["export", "qdpx", str(s / "out.qdpx"), "--db", str(s / "db" / "casebase.db")]),
        ("casebase.db", "not a casebase database"),
    ),
    "corrupt DB for import-decisions": (
        lambda s: then(
            (corrupt_db(s), (s / "decisions.csv").write_text("excerpt_id,codes,note\nx,outdoor,\n", encoding="utf-8")),
            ["import-decisions", str(s / "decisions.csv"), "--coder", "anna", "--corpus", str(s / "corpus"),
            "--codebook", str(s / "codebook.yaml"), "--db", str(s / "db" / "casebase.db")],
        ),
        ("casebase.db", "not a casebase database"),
    ),
    "QDC that is not XML": (
        lambda s: then(
            (s / "codes.qdc").write_text("codes: [this is yaml]\n", encoding="utf-8"),
            ["import", "qdc", str(s / "codes.qdc"), "--codebook", str(s / "codebook.yaml"), "-o", str(s / "new.yaml")],
        ),
        ("codes.qdc",),
    ),
    "classify input not UTF-8": (
        lambda s: then(
            (s / "in.txt").write_bytes("Vi gik ture i Ålborg".encode("latin-1")),
            ["classify", str(s / "in.txt"), "--codebook", str(s / "codebook.yaml"), "--db", str(s / "db" / "casebase.db")],
        ),
        ("in.txt:1", "not valid UTF-8"),
    ),
}


def test_there_are_at_least_twenty_kinds():
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_clear_line_and_damages_nothing(case, site):
    damage, expected = CASES[case]
    args = damage(site)
    before = snapshot(site)
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and "Traceback" not in result.output
    for fragment in expected:
        assert fragment in lines[0], lines[0]
    assert snapshot(site) == before
    assert not list((site / "db").glob(".casebase.db.*.tmp"))


def test_decision_for_an_excerpt_that_no_longer_exists_is_reported_unplaced(site):
    path = site / "corpus" / "coding" / "coder1.csv"
    version = path.read_text(encoding="utf-8").splitlines()[1].split(",")[-2]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"mm2020-gone,Et afsnit der ikke længere findes,outdoor,coder1,2026-11-25T10:00:00+00:00,{version},\n")
    line = len(path.read_text(encoding="utf-8").splitlines())
    before = snapshot(site)
    result = CliRunner().invoke(cli, ["check", "--corpus", str(site / "corpus"), "--codebook", str(site / "codebook.yaml")])
    assert result.exit_code == 0, result.output
    assert f"unplaced  {path}:{line}: excerpt 'mm2020-gone' not found" in result.output
    assert snapshot(site) == before
