"""sources.yaml and the files it points to: good input loads, bad input fails clearly."""

import pytest

from casebase.ingest import sources
from casebase.errors import CasebaseError


def test_real_sources_load():
    from conftest import CORPUS

    loaded = sources.load_sources(CORPUS)
    assert [s.id for s in loaded] == [
        "mm2020",
        "bikuben2020pm",
        "vive2021",
        "velfaerdsalliancer",
        "fsd2020",
        "mm2020-svar",
    ]
    vive = loaded[2]
    assert vive.parser == "vive" and vive.year == 2021 and vive.kind == "report"
    assert vive.path.name == "002_1115af9879de9034.txt"
    survey = loaded[-1]
    assert survey.text_columns == ["answer"] and survey.id_column == "answer_id"


def edit_sources(corpus, old, new):
    path = corpus / "sources.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def line_of(path, needle):
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


def test_unknown_key_names_file_and_line(corpus_copy):
    path = edit_sources(corpus_copy, "    year: 2021\n", "    year: 2021\n    yeer: 2021\n")
    with pytest.raises(CasebaseError) as error:
        sources.load_sources(corpus_copy)
    assert error.value.file == str(path)
    assert error.value.line == line_of(path, "yeer:")
    assert "unknown key 'yeer'" in str(error.value)


def test_missing_field_names_the_entry(corpus_copy):
    path = edit_sources(corpus_copy, "    publisher: Bikubenfonden\n", "")
    with pytest.raises(CasebaseError) as error:
        sources.load_sources(corpus_copy)
    assert "missing 'publisher'" in str(error.value)
    assert error.value.line == line_of(path, "id: bikuben2020pm")


def test_malformed_yaml_names_line(corpus_copy):
    path = edit_sources(corpus_copy, "    kind: guide\n", "    kind: [guide\n")
    with pytest.raises(CasebaseError) as error:
        sources.load_sources(corpus_copy)
    assert str(error.value).startswith(f"{path}:")
    assert "invalid YAML" in str(error.value)
    assert error.value.line is not None


def test_duplicate_source_id(corpus_copy):
    edit_sources(corpus_copy, "id: fsd2020", "id: mm2020")
    with pytest.raises(CasebaseError, match="duplicate source id 'mm2020'"):
        sources.load_sources(corpus_copy)


def test_unknown_kind_and_parser(corpus_copy):
    edit_sources(corpus_copy, "kind: magazine", "kind: blog")
    with pytest.raises(CasebaseError, match="unknown kind 'blog'"):
        sources.load_sources(corpus_copy)


def load(corpus, source_id):
    return next(s for s in sources.load_sources(corpus) if s.id == source_id)


def test_missing_text_file(corpus_copy):
    (corpus_copy / "texts" / "003_bc4f6dbe0a3c78dc.txt").unlink()
    with pytest.raises(CasebaseError, match="file not found") as error:
        sources.read_text(load(corpus_copy, "velfaerdsalliancer"))
    assert error.value.file.endswith("003_bc4f6dbe0a3c78dc.txt")


def test_non_utf8_text_names_line(corpus_copy):
    path = corpus_copy / "texts" / "001_3b6d13a4e48ba963.txt"
    path.write_bytes("Første linje\nAnden linje med æøå\n".encode("latin-1"))
    with pytest.raises(CasebaseError, match="not valid UTF-8") as error:
        sources.read_text(load(corpus_copy, "bikuben2020pm"))
    assert error.value.line == 1


def test_empty_and_binary_text(corpus_copy):
    path = corpus_copy / "texts" / "001_3b6d13a4e48ba963.txt"
    path.write_text("  \n\n", encoding="utf-8")
    with pytest.raises(CasebaseError, match="empty text"):
        sources.read_text(load(corpus_copy, "bikuben2020pm"))
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(CasebaseError, match="binary file"):
        sources.read_text(load(corpus_copy, "bikuben2020pm"))


def test_answers_csv_reads_rows_with_line_numbers(corpus_copy):
    rows, digest = sources.read_answers(load(corpus_copy, "mm2020-svar"))
    assert len(digest) == 64
    assert rows[0].line == 2
    assert rows[0].values["answer_id"] == "mm2020-a01"
    assert all(r.values["answer"].strip() for r in rows)


def test_answers_csv_without_text_column(corpus_copy):
    path = corpus_copy / "answers" / "mm2020_answers.csv"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("answer_id,answer,", "answer_id,svar,", 1), encoding="utf-8")
    with pytest.raises(CasebaseError, match="missing column\\(s\\) 'answer'") as error:
        sources.read_answers(load(corpus_copy, "mm2020-svar"))
    assert error.value.line == 1 and error.value.file == str(path)


def test_answers_csv_with_wrong_delimiter(corpus_copy):
    path = corpus_copy / "answers" / "mm2020_answers.csv"
    path.write_text("answer_id;answer;category\nx1;Vi gik ture;Ud i naturen\n", encoding="utf-8")
    with pytest.raises(CasebaseError, match="delimiter"):
        sources.read_answers(load(corpus_copy, "mm2020-svar"))


def test_answers_duplicate_id(corpus_copy):
    path = corpus_copy / "answers" / "mm2020_answers.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines + [lines[1]]), encoding="utf-8")
    with pytest.raises(CasebaseError, match="duplicate 'answer_id' 'mm2020-a01'") as error:
        sources.read_answers(load(corpus_copy, "mm2020-svar"))
    assert error.value.line == len(lines) + 1


def test_answers_xlsx(tmp_path, corpus_copy):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["answer_id", "answer", "category", "question", "respondent", "page", "context"])
    sheet.append(["r1", "Vi holdt samtaler på gåture i skoven", "Ud i naturen", "", "forening", 5, ""])
    sheet.append([None, None, None, None, None, None, None])
    sheet.append(["r2", "Terapi online via video", "Digital omstilling", "", "", 6, ""])
    path = corpus_copy / "answers" / "mm2020_answers.xlsx"
    workbook.save(path)
    edit_sources(corpus_copy, "file: answers/mm2020_answers.csv", "file: answers/mm2020_answers.xlsx")
    rows, _ = sources.read_answers(load(corpus_copy, "mm2020-svar"))
    assert [r.values["answer_id"] for r in rows] == ["r1", "r2"]
    assert rows[1].line == 4 and rows[1].values["page"] == "6"

    sheet.merge_cells("B2:B3")
    workbook.save(path)
    with pytest.raises(CasebaseError, match="merged cells"):
        sources.read_answers(load(corpus_copy, "mm2020-svar"))


PLAIN_CASES = """    parser: plain
    cases:
      - title: Gåture med de unge
        start: 0
        end: 120
        municipality: Aarhus
        page: 3
"""


def test_a_plain_source_lists_its_cases(corpus_copy):
    path = edit_sources(corpus_copy, "    parser: markdown\n", PLAIN_CASES)
    (source,) = [s for s in sources.load_sources(corpus_copy) if s.parser == "plain"]
    assert source.cases == [{"key": "gature-med-de-unge", "title": "Gåture med de unge", "start": 0, "end": 120, "municipality": "Aarhus", "page": 3}]
    for old, new, message in (
        ("        end: 120\n", "        end: 0\n", "needs 'start' and 'end'"),
        ("        page: 3\n", "        page: tre\n", "'page' must be a whole number"),
        ("        page: 3\n", "        side: 3\n", "unknown key 'side' of a case"),
        ("    parser: plain\n", "    parser: report\n", "for parser 'plain' only"),
    ):
        path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
        with pytest.raises(CasebaseError, match=message) as error:
            sources.load_sources(corpus_copy)
        assert error.value.file == str(path) and error.value.line
        path.write_text(path.read_text(encoding="utf-8").replace(new, old, 1), encoding="utf-8")


@pytest.mark.parametrize("url", ["javascript:alert(document.cookie)", "data:text/html,<script>alert(1)</script>", "www.vive.dk"])
def test_a_source_url_is_a_web_address(corpus_copy, url):
    """The source page links to a source's url: anything but http(s) could run in a reader's browser."""
    path = edit_sources(corpus_copy, "    year: 2021\n", f"    year: 2021\n    url: '{url}'\n")
    with pytest.raises(CasebaseError, match="must be a web address starting with http:// or https://") as error:
        sources.load_sources(corpus_copy)
    assert error.value.line == line_of(path, "url: ")
    edit_sources(corpus_copy, f"    url: '{url}'\n", "    url: https://www.vive.dk/da/udgivelser/\n")
    assert any(s.url == "https://www.vive.dk/da/udgivelser/" for s in sources.load_sources(corpus_copy))
