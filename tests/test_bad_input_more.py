"""More bad input, of the kinds an adversarial run found: paths outside the corpus,
pipes and devices, files too large, values of the wrong type, YAML alias bombs,
unwritable output paths, a read-only or full database folder, control characters
and over-long notes in decisions to import.

Each kind is a real CLI run (click's runner in-process; a subprocess with a
timeout where the old behaviour was to hang), asserting: exit 1, exactly one
line on stderr naming the file (and line), no traceback, and nothing built or
coded changed — the corpus, the codebook and the one shared built database
byte-identical.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from casebase.cli import cli
from conftest import CORPUS, REPO_CODEBOOK

REPORT = "texts/000_45e4f39cd2afe250.txt"  # the first source (mm2020): read first
ANSWERS = "answers/mm2020_answers.csv"
EXCERPT = "bikuben2020pm-06fc21b5b2f4"  # an excerpt id of the seed build


@pytest.fixture(scope="module")
def shared_db(built_db, tmp_path_factory):
    """One copy of the built seed database (and its models) that every case reads."""
    target = tmp_path_factory.mktemp("shared") / "db"
    shutil.copytree(built_db.parent, target)
    return target / built_db.name


@pytest.fixture
def site(tmp_path):
    shutil.copytree(CORPUS, tmp_path / "corpus")
    shutil.copy(REPO_CODEBOOK, tmp_path / "codebook.yaml")
    return tmp_path


def snapshot(*roots: Path) -> dict[str, str]:
    """Every regular file's digest (a sparse file planted by a case: its size and time)."""
    found = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_file() and not p.is_symlink() and "cache" not in p.parts:
                info = p.stat()
                big = info.st_size > 50_000_000
                found[str(p)] = f"{info.st_size}:{info.st_mtime_ns}" if big else hashlib.sha256(p.read_bytes()).hexdigest()
    return found


def edit(path: Path, old: str, new: str) -> int:
    """Replace the first ``old`` in the file; the line the replacement starts on."""
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def check(site):
    return ["check", "--corpus", str(site / "corpus"), "--codebook", str(site / "codebook.yaml")]


def source_file(site, new_file: str) -> int:
    """Point the press release's entry at ``new_file``; the line of its 'file:' key."""
    return edit(site / "corpus" / "sources.yaml", f"file: {REPORT}", f"file: {new_file}")


def sources_yaml(site) -> str:
    return str(site / "corpus" / "sources.yaml")


def import_decisions(site, db, name: str, content: str):
    path = site / name
    path.write_text(content, encoding="utf-8")
    return ["import-decisions", str(path), "--coder", "anna", "--corpus", str(site / "corpus"),
            "--codebook", str(site / "codebook.yaml"), "--db", str(db)]


def alias_bomb(indent: str) -> str:
    """Nine levels of nine aliases: 9**9 strings once expanded, 900 bytes written."""
    lines = [f'{indent}- &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{indent}- &{name} [" + ",".join(f"*{previous}" for _ in range(9)) + "]")
        previous = name
    return "\n".join(lines) + "\n"


# --- sources outside the corpus, pipes, devices, folders, sizes (F8) -------------------

def outside_relative(site, db):
    line = source_file(site, "../../../../etc/passwd")
    return check(site), (f"{sources_yaml(site)}:{line}:", "outside the corpus")


def outside_absolute(site, db):
    line = source_file(site, "/etc/hostname")
    return check(site), (f"{sources_yaml(site)}:{line}:", "outside the corpus")


def dev_zero(site, db):
    line = source_file(site, "/dev/zero")
    return check(site), (f"{sources_yaml(site)}:{line}:", "outside the corpus")


def symlink_to_dev_zero(site, db):
    (site / "corpus" / "texts" / "zero.txt").symlink_to("/dev/zero")
    line = source_file(site, "texts/zero.txt")
    return check(site), (f"{sources_yaml(site)}:{line}:", "outside the corpus")


def symlink_outside(site, db):
    secret = site / "secret.txt"
    secret.write_text("Hemmeligt: adgangskoden er 1234.\n", encoding="utf-8")
    (site / "corpus" / "texts" / "report.txt").symlink_to(secret)
    line = source_file(site, "texts/report.txt")
    return check(site), (f"{sources_yaml(site)}:{line}:", "outside the corpus")


def symlink_loop(site, db):
    (site / "corpus" / "texts" / "loop.txt").symlink_to(site / "corpus" / "texts" / "loop.txt")
    line = source_file(site, "texts/loop.txt")
    return check(site), (f"{sources_yaml(site)}:{line}:", "symbolic link loop")


def fifo_source(site, db):
    path = site / "corpus" / REPORT
    path.unlink()
    os.mkfifo(path)
    line = source_file(site, REPORT)
    return check(site), (f"{sources_yaml(site)}:{line}:", "not a regular file")


def folder_source(site, db):
    line = source_file(site, "texts")
    return check(site), (f"{sources_yaml(site)}:{line}:", "is a folder")


def source_too_large(site, db):
    with open(site / "corpus" / REPORT, "r+b") as handle:
        handle.truncate(201 * 1024 * 1024)  # sparse: costs no disk
    line = source_file(site, REPORT)
    return check(site), (f"{sources_yaml(site)}:{line}:", "the largest a source may be")


# --- values of the wrong type (F7, F9) --------------------------------------------------

def delimiter_two_characters(site, db):
    line = edit(site / "corpus" / "sources.yaml", "    id_column: answer_id\n", '    delimiter: ";;"\n    id_column: answer_id\n')
    return check(site), (f"{sources_yaml(site)}:{line}:", "delimiter ';;' must be one character")


def delimiter_number(site, db):
    line = edit(site / "corpus" / "sources.yaml", "    id_column: answer_id\n", "    delimiter: 5\n    id_column: answer_id\n")
    return check(site), (f"{sources_yaml(site)}:{line}:", "delimiter 5 must be one character")


def id_column_list(site, db):
    line = edit(site / "corpus" / "sources.yaml", "id_column: answer_id", "id_column: [answer_id]")
    return check(site), (f"{sources_yaml(site)}:{line}:", "'id_column' must be one text, not a list")


def title_list(site, db):
    path = site / "corpus" / "sources.yaml"
    lines = path.read_text(encoding="utf-8").split("\n")
    index = next(i for i, line in enumerate(lines) if line.startswith('    title: "Kortlægning'))
    lines[index] = "    title: [Kortlægning, af, nyskabelser]"
    path.write_text("\n".join(lines), encoding="utf-8")
    return check(site), (f"{path}:{index + 1}:", "'title' must be one text, not a list")


def label_list(site, db):
    line = edit(site / "codebook.yaml", "label_da: Digital omstilling", "label_da: [Digital, omstilling]")
    return check(site), (f"{site / 'codebook.yaml'}:{line}:", "'label_da' must be one text, not a list")


def definition_span(text: str) -> tuple[int, int]:
    """Where the to_go code's definition (a folded block) starts and ends."""
    start = text.index("    definition:", text.index("id: to_go"))
    return start, start + 1 + re.search(r"\n    \S", text[start + 1 :]).start()


def definition_mapping(site, db):
    path = site / "codebook.yaml"
    text = path.read_text(encoding="utf-8")
    start, end = definition_span(text)
    path.write_text(text[:start] + "    definition: {a: b}" + text[end:], encoding="utf-8")
    line = text[:start].count("\n") + 1
    return check(site), (f"{path}:{line}:", "'definition' must be one text, not a mapping")


def parent_list(site, db):
    line = edit(site / "codebook.yaml", "parent: outdoor", "parent: [outdoor]")
    return check(site), (f"{site / 'codebook.yaml'}:{line}:", "'parent' must be one text")


# --- YAML alias bombs (F7, F9) ----------------------------------------------------------

def codebook_alias_bomb(site, db):
    path = site / "codebook.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "bombs:\n" + alias_bomb("  "), encoding="utf-8")
    return check(site), (f"{path}:", "aliases")


def definition_alias_bomb(site, db):
    path = site / "codebook.yaml"
    text = path.read_text(encoding="utf-8")
    bomb = alias_bomb("      ")
    start, end = definition_span(text)
    path.write_text(text[:start] + "    definition:\n" + bomb.rstrip("\n") + text[end:], encoding="utf-8")
    return check(site), (f"{path}:", "aliases")


def sources_alias_bomb(site, db):
    path = site / "corpus" / "sources.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("sources:\n", "bombs:\n" + alias_bomb("  ") + "sources:\n", 1), encoding="utf-8")
    return check(site), (f"{path}:", "aliases")


def recursive_alias(site, db):
    path = site / "codebook.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "loop: &loop [1, *loop]\n", encoding="utf-8")
    return check(site), (f"{path}:", "aliases")


# --- texts that are no texts (F9) -------------------------------------------------------

def nul_after_8_kb(site, db):
    path = site / "corpus" / REPORT
    text = path.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) > 9000
    head = text.encode("utf-8")[:9000]
    line = head.count(b"\n") + 1
    path.write_bytes(head + b"\x00" + text.encode("utf-8")[9000:])
    return check(site), (f"{path}:{line}:", "NUL")


def only_control_characters(site, db):
    path = site / "corpus" / REPORT
    path.write_text("\x01\x02\x03\n\x1b\x7f\x08\n\x0c\u200b\u00ad\n", encoding="utf-8")
    return check(site), (str(path), "only control characters")


def survey_nul_in_a_row(site, db):
    path = site / "corpus" / ANSWERS
    rows = path.read_text(encoding="utf-8").splitlines()
    extra = [f"x{i},Vi gik ture i skoven med borger nummer {i}.,Udendørs,,,1," for i in range(300)]
    bad = "x-nul,Vi holdt møder\x00 på Teams.,Digital,,,1,"
    path.write_text("\n".join(rows + extra + [bad]) + "\n", encoding="utf-8")
    return check(site), (f"{path}:{len(rows) + len(extra) + 1}:", "NUL")


def survey_answer_over_csvs_default_field_limit(site, db):
    # 160,000 characters: over csv's default field limit (131,072) and over the
    # longest answer casebase codes, whatever limit an earlier reader set.
    path = site / "corpus" / ANSWERS
    rows = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(rows + [f'x-big,"{"ord " * 40_000}",Digital,,,1,']) + "\n", encoding="utf-8")
    return check(site), (f"{path}:{len(rows) + 1}:", "the longest an answer may be is 100,000")


def survey_field_over_the_read_limit(site, db):
    path = site / "corpus" / ANSWERS
    rows = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(rows + ['x-open,"Et svar uden slutcitat,Digital,,,1,'] + ["mere tekst " * 1000] * 120) + "\n", encoding="utf-8")
    return check(site), (f"{path}:", "field larger than field limit")


def junk_xml_xlsx(site, db):
    import zipfile

    path = site / "corpus" / "answers" / "mm.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        for name in ["[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/worksheets/sheet1.xml"]:
            archive.writestr(name, "<junk<<>")
    edit(site / "corpus" / "sources.yaml", f"file: {ANSWERS}", "file: answers/mm.xlsx")
    return check(site), (str(path), "not a readable XLSX workbook")


# --- coding files (F1, F3, F7, F9) -------------------------------------------------------

def upper_case_coder_file(site, db):
    coding = site / "corpus" / "coding"
    (coding / "Anna.csv").write_text((coding / "coder1.csv").read_text(encoding="utf-8").replace(",coder1,", ",Anna,"), encoding="utf-8")
    return check(site), (str(coding / "Anna.csv"), "rename it to anna.csv")


def coder_field_over_the_read_limit(site, db):
    path = site / "corpus" / "coding" / "coder1.csv"
    first = path.read_text(encoding="utf-8").splitlines()[1]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(first.rsplit(",", 1)[0] + ',"' + "x" * 1_100_000 + '"\n')
    line = len(path.read_text(encoding="utf-8").splitlines())
    return check(site), (f"{path}:{line}:", "field larger than field limit")


def unquoted_carriage_return_in_a_coder_file(site, db):
    # What casebase wrote before notes with a lone "\r" were quoted: the row splits.
    path = site / "corpus" / "coding" / "coder1.csv"
    first = path.read_text(encoding="utf-8").splitlines()[1]
    with open(path, "a", encoding="utf-8", newline="") as handle:
        handle.write(first.rsplit(",", 1)[0] + ",før\refter\n")
    line = path.read_bytes().count(b"\n")
    return check(site), (f"{path}:{line}:", "unreadable CSV")


def latin1_byte_in_the_registry(site, db):
    path = site / "corpus" / "coding" / "codebooks.csv"
    line = path.read_bytes().count(b"\n") + 1
    with open(path, "ab") as handle:
        handle.write("åbn,outdoor\n".encode("latin-1"))
    return check(site), (f"{path}:{line}:", "not valid UTF-8")


def import_codes_number(site, db):
    args = import_decisions(site, db, "d.jsonl", f'{{"excerpt_id": "{EXCERPT}", "codes": 5}}\n')
    return args, (f"{site / 'd.jsonl'}:1:", "'codes' must be")


def import_codes_list_of_numbers(site, db):
    args = import_decisions(site, db, "d.jsonl", f'{{"excerpt_id": "{EXCERPT}", "codes": ["outdoor"]}}\n{{"excerpt_id": "{EXCERPT}", "codes": [1, 2]}}\n')
    return args, (f"{site / 'd.jsonl'}:2:", "'codes' must be")


def import_note_number(site, db):
    args = import_decisions(site, db, "d.jsonl", f'{{"excerpt_id": "{EXCERPT}", "codes": "outdoor", "note": 5}}\n')
    return args, (f"{site / 'd.jsonl'}:1:", "'note' must be a text")


def import_note_with_nul(site, db):
    args = import_decisions(site, db, "d.jsonl", f'{{"excerpt_id": "{EXCERPT}", "codes": "", "note": "før\\u0000efter"}}\n')
    return args, (f"{site / 'd.jsonl'}:1:", "U+0000")


def import_note_with_escape(site, db):
    args = import_decisions(site, db, "d.jsonl", f'{{"excerpt_id": "{EXCERPT}", "codes": "", "note": "\\u001b[2J ryddet"}}\n')
    return args, (f"{site / 'd.jsonl'}:1:", "U+001B")


def import_note_too_long(site, db):
    args = import_decisions(site, db, "d.csv", f"excerpt_id,codes,note\n{EXCERPT},outdoor,kort\n{EXCERPT},outdoor,{'lang ' * 5000}\n")
    return args, (f"{site / 'd.csv'}:3:", "the longest a note may be is 20,000")


def import_csv_row_too_long(site, db):
    args = import_decisions(site, db, "d.csv", f"excerpt_id,codes,note\n{EXCERPT},outdoor,kort,ekstra\n")
    return args, (f"{site / 'd.csv'}:2:", "more values than columns")


def import_csv_not_utf8(site, db):
    path = site / "d.csv"
    args = import_decisions(site, db, "d.csv", "")
    path.write_bytes(f"excerpt_id,codes,note\n{EXCERPT},outdoor,".encode() + "Århus".encode("latin-1") + b"\n")
    return args, (f"{path}:2:", "not valid UTF-8")


def import_from_a_fifo(site, db):
    path = site / "d.jsonl"
    os.mkfifo(path)
    return ["import-decisions", str(path), "--coder", "anna", "--corpus", str(site / "corpus"),
            "--codebook", str(site / "codebook.yaml"), "--db", str(db)], (str(path), "not a regular file")


# --- unwritable outputs, paths of the wrong kind (F7, F9) -------------------------------

def export_xlsx_to_proc(site, db):
    return ["export", "xlsx", "/proc/x.xlsx", "--db", str(db)], ("/proc/x.xlsx:", "cannot write")


def export_xlsx_under_a_file(site, db):
    out = site / "codebook.yaml" / "out.xlsx"
    return ["export", "xlsx", str(out), "--db", str(db)], (f"{out}:", "is a file, not a folder")


def export_xlsx_to_a_folder(site, db):
    return ["export", "xlsx", str(site / "corpus"), "--db", str(db)], (str(site / "corpus"), "is a folder")


def export_qdc_to_proc(site, db):
    return ["export", "qdc", "/proc/x.qdc", "--codebook", str(site / "codebook.yaml")], ("/proc/x.qdc:", "cannot write")


def export_qdpx_under_a_file(site, db):
    out = site / "corpus" / "sources.yaml" / "deep" / "p.qdpx"
    return ["export", "qdpx", str(out), "--db", str(db)], (f"{out}:", "is a file, not a folder")


def import_qdc_output_under_a_file(site, db):
    qdc, out = site / "in.qdc", site / "codebook.yaml" / "new.yaml"
    assert CliRunner().invoke(cli, ["export", "qdc", str(qdc), "--codebook", str(site / "codebook.yaml")]).exit_code == 0
    return ["import", "qdc", str(qdc), "--codebook", str(site / "codebook.yaml"), "-o", str(out)], (f"{out}:", "is a file, not a folder")


def db_is_a_folder_for_serve(site, db):
    return ["serve", "--db", str(site / "corpus")], (str(site / "corpus"), "--db wants a file")


def db_is_a_folder_for_build(site, db):
    return ["build", "--corpus", str(site / "corpus"), "--codebook", str(site / "codebook.yaml"), "--db", str(site / "corpus")], (
        str(site / "corpus"), "--db wants a file")


def corpus_is_a_file(site, db):
    return ["check", "--corpus", str(site / "codebook.yaml"), "--codebook", str(site / "codebook.yaml")], (
        str(site / "codebook.yaml"), "--corpus wants a folder")


def codebook_is_a_folder(site, db):
    return ["check", "--corpus", str(site / "corpus"), "--codebook", str(site / "corpus")], (str(site / "corpus"), "--codebook wants a file")


def codebook_is_a_fifo(site, db):
    path = site / "fifo.yaml"
    os.mkfifo(path)
    return ["check", "--corpus", str(site / "corpus"), "--codebook", str(path)], (str(path), "not a regular file")


def metadata_is_a_folder(site, db):
    return ["serve", "--db", str(db), "--metadata", str(site / "corpus")], (str(site / "corpus"), "--metadata wants a file")


# --- texts to classify (F7) -------------------------------------------------------------

def classify(site, db, name):
    return ["classify", str(site / name), "--codebook", str(site / "codebook.yaml"), "--db", str(db)]


def classify_million_character_line(site, db):
    (site / "in.txt").write_text("Vi gik ture. " * 80_000 + "\n", encoding="utf-8")
    return classify(site, db, "in.txt"), (f"{site / 'in.txt'}:1:", "characters")


def classify_sparse_gigabyte(site, db):
    with open(site / "in.txt", "wb") as handle:
        handle.truncate(1024 ** 3)
    return classify(site, db, "in.txt"), (str(site / "in.txt"), "the largest casebase reads")


def classify_nul_late(site, db):
    (site / "in.txt").write_bytes(("Vi gik ture i skoven.\n" * 1000).encode() + b"Vi\x00 gik\n")
    return classify(site, db, "in.txt"), (f"{site / 'in.txt'}:1001:", "NUL")


def classify_a_fifo(site, db):
    os.mkfifo(site / "in.txt")
    return classify(site, db, "in.txt"), (str(site / "in.txt"), "not a regular file")


def classify_a_folder(site, db):
    (site / "in.txt").mkdir()
    return classify(site, db, "in.txt"), (str(site / "in.txt"), "is a folder")


def classify_csv_header_only(site, db):
    (site / "in.csv").write_text("text\n", encoding="utf-8")
    return classify(site, db, "in.csv"), (f"{site / 'in.csv'}:2:", "no rows")


def evaluate_answers_from_dev_zero(site, db):
    return ["evaluate", "--answers", "/dev/zero", "--corpus", str(site / "corpus"), "--codebook", str(site / "codebook.yaml"),
            "--db", str(db)], ("/dev/zero", "not a regular file")


CASES = {
    "source ../../../../etc/passwd": outside_relative,
    "source /etc/hostname": outside_absolute,
    "source /dev/zero": dev_zero,
    "source a symlink to /dev/zero": symlink_to_dev_zero,
    "source a symlink outside the corpus": symlink_outside,
    "source a symlink loop": symlink_loop,
    "source a FIFO": fifo_source,
    "source a folder": folder_source,
    "source over the size limit": source_too_large,
    "delimiter ';;'": delimiter_two_characters,
    "delimiter a number": delimiter_number,
    "id_column a list": id_column_list,
    "source title a list": title_list,
    "label_da a list": label_list,
    "definition a mapping": definition_mapping,
    "parent a list": parent_list,
    "alias bomb in the codebook": codebook_alias_bomb,
    "alias bomb in a definition": definition_alias_bomb,
    "alias bomb in sources.yaml": sources_alias_bomb,
    "recursive alias": recursive_alias,
    "NUL after the first 8 KB of a text": nul_after_8_kb,
    "a text of control characters only": only_control_characters,
    "NUL in a survey row": survey_nul_in_a_row,
    "survey answer over csv's default field limit": survey_answer_over_csvs_default_field_limit,
    "survey field over the read limit (an unclosed quote)": survey_field_over_the_read_limit,
    "XLSX of junk XML": junk_xml_xlsx,
    "upper-case coder file": upper_case_coder_file,
    "coder field over the read limit": coder_field_over_the_read_limit,
    "unquoted carriage return in a coder file": unquoted_carriage_return_in_a_coder_file,
    "Latin-1 byte in codebooks.csv": latin1_byte_in_the_registry,
    "import codes: 5": import_codes_number,
    "import codes: [1, 2]": import_codes_list_of_numbers,
    "import note: 5": import_note_number,
    "import note with NUL": import_note_with_nul,
    "import note with ESC": import_note_with_escape,
    "import note over the limit": import_note_too_long,
    "import CSV row with an extra value": import_csv_row_too_long,
    "import CSV not UTF-8": import_csv_not_utf8,
    "import from a FIFO": import_from_a_fifo,
    "export xlsx to /proc": export_xlsx_to_proc,
    "export xlsx under a file": export_xlsx_under_a_file,
    "export xlsx to a folder": export_xlsx_to_a_folder,
    "export qdc to /proc": export_qdc_to_proc,
    "export qdpx under a file": export_qdpx_under_a_file,
    "import qdc output under a file": import_qdc_output_under_a_file,
    "--db a folder (serve)": db_is_a_folder_for_serve,
    "--db a folder (build)": db_is_a_folder_for_build,
    "--corpus a file": corpus_is_a_file,
    "--codebook a folder": codebook_is_a_folder,
    "--codebook a FIFO": codebook_is_a_fifo,
    "--metadata a folder": metadata_is_a_folder,
    "classify a CSV of a header only": classify_csv_header_only,
    "classify a 1,000,000-character line": classify_million_character_line,
    "classify a 1 GB sparse file": classify_sparse_gigabyte,
    "classify NUL on line 1001": classify_nul_late,
    "classify a FIFO": classify_a_fifo,
    "classify a folder": classify_a_folder,
    "evaluate --answers /dev/zero": evaluate_answers_from_dev_zero,
}

# The old behaviour of these was to block for ever or read without end: run in a
# process of their own with a timeout, so a regression fails instead of hanging.
IN_A_SUBPROCESS = {
    "source a FIFO", "source /dev/zero", "source a symlink to /dev/zero", "import from a FIFO",
    "--codebook a FIFO", "classify a FIFO", "classify a 1 GB sparse file", "evaluate --answers /dev/zero",
}


def run(args, subprocess_run: bool, cwd: Path) -> tuple[int, str, str]:
    if subprocess_run:
        done = subprocess.run([sys.executable, "-m", "casebase", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
        return done.returncode, done.stdout, done.stderr
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_the_suites_together_cover_at_least_sixty_kinds():
    import test_bad_input

    assert len(CASES) + len(test_bad_input.CASES) >= 60


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_naming_the_file_and_damages_nothing(case, site, shared_db):
    args, expected = CASES[case](site, shared_db)
    before = snapshot(site, shared_db.parent)
    code, out, err = run(args, case in IN_A_SUBPROCESS, site)
    assert code == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ") and "Traceback" not in out + err, err
    assert len(lines[0]) < 700, lines[0][:300]
    for fragment in expected:
        assert fragment in lines[0], lines[0]
    assert snapshot(site, shared_db.parent) == before
    assert not list(shared_db.parent.glob(".*.tmp"))


# --- the database folder read-only or full (F7): a disk of its own --------------------

@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs (root only): ``mount(size, read_only)`` gives its folder."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    mounted = []

    def mount(size: str, read_only: bool = False) -> Path:
        target = tmp_path / f"disk{len(mounted)}"
        target.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", str(target)], check=True)


def build_into(site, db: Path):
    return ["build", "--force", "--corpus", str(site / "corpus"), "--codebook", str(site / "codebook.yaml"), "--db", str(db)]


def one_line(code, out, err, *fragments):
    assert code == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in out + err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_a_build_into_a_read_only_folder_is_one_line(site, tmpfs):
    folder = tmpfs("1m", read_only=True)
    before = snapshot(site)
    one_line(*run(build_into(site, folder / "casebase.db"), False, site), f"{folder / 'casebase.db'}:", "read-only file system")
    assert snapshot(site) == before


def test_a_build_onto_a_full_disk_is_one_line_and_leaves_the_disk_as_it_was(site, tmpfs, shared_db):
    # Room for the previous build's model and cache, not for a new database.
    used = sum(p.stat().st_size for p in shared_db.parent.rglob("*") if p.is_file() and p.name != shared_db.name)
    folder = tmpfs(f"{used // 1024 + 2048}k")
    for part in ("models", "cache"):
        shutil.copytree(shared_db.parent / part, folder / part)
    before = snapshot(site, folder)
    one_line(*run(build_into(site, folder / "casebase.db"), False, site), f"{folder / 'casebase.db'}:", "full")
    assert snapshot(site, folder) == before
    assert not (folder / "casebase.db").exists() and not list(folder.glob(".*.tmp"))


def test_any_command_on_a_read_only_disk_is_one_line(site, tmpfs):
    # Not an atomic output file: coders.json is written by its own code. The command
    # layer names the file the system call failed on.
    folder = tmpfs("1m", read_only=True)
    one_line(*run(["coders", "add", "anna", "--coders", str(folder / "coders.json"), "--password", "anna-koder-1"], False, site),
             str(folder), "read-only file system")
