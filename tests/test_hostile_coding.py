"""Hostile and damaged input to the coding stage: one line naming the file, never a
traceback, and nothing lost or misread."""

import json

import pytest
from click.testing import CliRunner

from casebase.cli import cli
from casebase.coding import codebook, decision_files, routing, rules
from casebase.errors import CasebaseError
from casebase.publish import coders
from conftest import CORPUS, REPO

D, O, W = "digital_shift", "outdoor", "walk_and_talk"


def one_line(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_a_childs_evidence_outweighs_its_parents_exclusion(book):
    hits = [rules.RuleHit(W, 0, 5, "gåtur", "*gåtur*"), rules.RuleHit(O, 20, 28, "naturfag", "naturfag*", True)]
    assert rules.rule_codes(hits, book) == [O, W]
    assert rules.rule_codes(hits[1:] + [rules.RuleHit(O, 0, 5, "skov", "i skoven")], book) == []


def test_coder_ids_that_are_casebase_files_are_refused(tmp_path, book):
    for name in ("codebooks", "adjudications", "samples"):
        with pytest.raises(CasebaseError, match="casebase's own files"):
            decision_files.append(tmp_path, [decision_files.Decision("x", "", [], name, "", "")], book)
    assert not (tmp_path / "codebooks.csv").exists() or "x," not in (tmp_path / "codebooks.csv").read_text()


def test_a_damaged_registry_is_one_line(corpus_copy):
    args = ["check", "--corpus", str(corpus_copy), "--codebook", str(REPO / "codebook.yaml")]
    registry = corpus_copy / "coding" / "codebooks.csv"
    original = registry.read_bytes()
    registry.write_bytes(original + b"\xff\xfe\n")
    one_line(CliRunner().invoke(cli, args), "codebooks.csv:", "not valid UTF-8")
    registry.write_bytes(original + b"abcdef123456\n")
    one_line(CliRunner().invoke(cli, args), "codebooks.csv:", "wrong number of columns")


def test_a_timestamp_that_is_no_time_is_refused(corpus_copy):
    path = corpus_copy / "coding" / "coder4.csv"
    text = path.read_text(encoding="utf-8")
    first = text.splitlines()[1]
    stamp = first.split(",")[-3]
    path.write_text(text.replace(first, first.replace(stamp, "garbage"), 1), encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", "--corpus", str(corpus_copy), "--codebook", str(REPO / "codebook.yaml")])
    one_line(result, "coder4.csv:2:", "not an ISO 8601 time")


def test_rulings_compare_as_times_not_strings():
    earlier = decision_files.moment("2026-12-05T01:00:00+02:00")  # 23:00 UTC the day before
    later = decision_files.moment("2026-12-04T23:30:00+00:00")
    assert earlier < later


def test_yaml_that_cannot_be_built_is_one_line(tmp_path):
    path = tmp_path / "codebook.yaml"
    path.write_text("codes:\n  - ? [a, b]\n    : c\n", encoding="utf-8")
    one_line(CliRunner().invoke(cli, ["check", "--codebook", str(path), "--corpus", str(CORPUS)]), "codebook.yaml", "invalid YAML")
    path.write_text("codes: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    one_line(CliRunner().invoke(cli, ["check", "--codebook", str(path), "--corpus", str(CORPUS)]), "codebook.yaml")


@pytest.mark.parametrize("sentence", ['""', '"   "', '"Vi\\u0000 gik"'])
def test_empty_or_control_character_constructed_examples_are_refused(tmp_path, sentence):
    text = (REPO / "codebook.yaml").read_text(encoding="utf-8")
    marker = "    constructed_examples:\n      positive:\n"
    path = tmp_path / "codebook.yaml"
    path.write_text(text.replace(marker, marker + f"        - {sentence}\n", 1), encoding="utf-8")
    line = text[: text.index(marker)].count("\n") + 3  # the new item, after the two marker lines
    with pytest.raises(CasebaseError, match="constructed example") as error:
        codebook.load(path)
    assert error.value.line == line


def test_one_sentence_cannot_be_both_positive_and_negative(tmp_path):
    text = (REPO / "codebook.yaml").read_text(encoding="utf-8")
    marker = "      negative:\n"
    path = tmp_path / "codebook.yaml"
    path.write_text(text.replace(marker, marker + '        - "Vi holdt samtalerne over video."\n', 1).replace(
        "      positive:\n", '      positive:\n        - "Vi holdt samtalerne over video."\n', 1), encoding="utf-8")
    with pytest.raises(CasebaseError, match="both positive and negative"):
        codebook.load(path)


def test_a_sample_folder_that_is_a_file_is_one_line(built_db, tmp_path):
    import shutil

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    shutil.rmtree(corpus / "coding" / "samples")
    (corpus / "coding" / "samples").write_text("hi\n", encoding="utf-8")
    shutil.copytree(built_db.parent, tmp_path / "db")
    result = CliRunner().invoke(cli, ["sample", "--size", "5", "--seed", "3", "--corpus", str(corpus),
                                      "--codebook", str(REPO / "codebook.yaml"), "--db", str(tmp_path / "db" / built_db.name)])
    one_line(result, "samples")


def test_texts_to_code_over_the_limit_are_one_line(built_db, tmp_path):
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"text": "ord " * 260_000}) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["classify", str(big), "--db", str(built_db), "--codebook", str(REPO / "codebook.yaml")])
    one_line(result, "big.jsonl:1", "characters")


def test_json_lines_keep_line_separators_inside_strings_and_accept_a_bom(tmp_path, built_db):
    path = tmp_path / "svar.jsonl"
    path.write_text("\ufeff" + json.dumps({"text": "Vi holdt møder\u2028over video."}, ensure_ascii=False) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["classify", str(path), "--db", str(built_db), "--codebook", str(REPO / "codebook.yaml")])
    assert result.exit_code == 0, result.output
    assert len(result.output.strip("\n").split("\n")) == 1  # one result: U+2028 stayed inside the text


def test_a_new_password_keeps_the_role(tmp_path):
    path = tmp_path / "coders.json"
    coders.add(path, "cy", "første-kode-1", adjudicator=True)
    coders.add(path, "cy", "anden-kode-22")
    assert coders.is_adjudicator(path, "cy")
    coders.add(path, "cy", "tredje-kode-333", adjudicator=False)
    assert not coders.is_adjudicator(path, "cy")


def test_a_code_given_to_a_short_text_is_not_promised():
    record = {"lemmas": "digital", "rules": [D], "against": []}
    curve = {"threshold": 0.5, "curve": [[0.9, 0.97, 0.5]]}
    assert routing.route(0.95, record, {"digital"}, False, curve, coded=True)[0] == "review"
    assert routing.route(0.95, record, {"digital"}, False, curve, coded=False)[0] == "auto"
