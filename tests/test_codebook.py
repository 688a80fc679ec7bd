"""codebook.yaml: the real codebook loads; every kind of mistake names its line."""


import pytest

from casebase.coding import codebook
from casebase.errors import CasebaseError
from conftest import REPO

CODEBOOK = REPO / "codebook.yaml"


def test_real_codebook_has_the_six_codes_and_hierarchy():
    book = codebook.load(CODEBOOK)
    assert book.ids == ["digital_shift", "online_family_therapy", "to_go", "one_to_one", "outdoor", "walk_and_talk"]
    assert book.codes["walk_and_talk"].parent == "outdoor"
    assert book.codes["online_family_therapy"].parent == "digital_shift"
    for code in book.codes.values():
        assert code.label_da and code.label_en and code.definition and code.patterns
        assert code.colour.startswith("#") and len(code.colour) == 7
    assert book.close(["walk_and_talk", "to_go"]) == ["to_go", "outdoor", "walk_and_talk"]
    assert book.in_tree_order().index("outdoor") < book.in_tree_order().index("walk_and_talk")


def copy_with(tmp_path, old, new):
    text = CODEBOOK.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / "codebook.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def line_of(path, needle, nth=1):
    hits = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line]
    return hits[nth - 1]


def test_version_ignores_comments_but_not_content(tmp_path):
    original = codebook.load(CODEBOOK).version
    commented = copy_with(tmp_path, "codes:\n", "# a new comment\ncodes:\n")
    assert codebook.load(commented).version == original
    changed = copy_with(tmp_path, "label_en: Outdoor", "label_en: Outdoors")
    assert codebook.load(changed).version != original


def test_duplicate_id(tmp_path):
    path = copy_with(tmp_path, "  - id: one_to_one", "  - id: to_go")
    with pytest.raises(CasebaseError, match="duplicate code id 'to_go'") as error:
        codebook.load(path)
    assert error.value.line == line_of(path, "- id: to_go", 2)


def test_unknown_parent(tmp_path):
    path = copy_with(tmp_path, "parent: outdoor", "parent: outdoors")
    with pytest.raises(CasebaseError, match="unknown parent 'outdoors'") as error:
        codebook.load(path)
    assert error.value.line == line_of(path, "- id: walk_and_talk")


def test_parent_cycle(tmp_path):
    path = copy_with(
        tmp_path, "  - id: outdoor\n    label_da", "  - id: outdoor\n    parent: walk_and_talk\n    label_da"
    )
    with pytest.raises(CasebaseError, match="parent cycle") as error:
        codebook.load(path)
    assert error.value.file == str(path)


def test_unknown_key(tmp_path):
    path = copy_with(tmp_path, '    colour: "#dd6b20"', '    color: "#dd6b20"')
    with pytest.raises(CasebaseError, match="unknown key 'color'") as error:
        codebook.load(path)
    assert error.value.line == line_of(path, "color:")


def test_malformed_yaml(tmp_path):
    path = copy_with(tmp_path, "  - id: to_go", "  - id: [to_go")
    with pytest.raises(CasebaseError, match="invalid YAML") as error:
        codebook.load(path)
    assert error.value.line is not None


def test_bad_id_and_colour(tmp_path):
    with pytest.raises(CasebaseError, match="snake_case"):
        codebook.load(copy_with(tmp_path, "  - id: to_go", "  - id: To-Go"))
    with pytest.raises(CasebaseError, match="colour"):
        codebook.load(copy_with(tmp_path, '"#dd6b20"', '"orange"'))


def test_replaces_must_name_retired_codes(tmp_path):
    path = copy_with(tmp_path, "  - id: one_to_one\n", "  - id: one_to_one\n    replaces: [to_go]\n")
    with pytest.raises(CasebaseError, match="still in the codebook"):
        codebook.load(path)
    renamed = copy_with(tmp_path, "  - id: one_to_one\n", "  - id: individual_contact\n    replaces: [one_to_one]\n")
    assert codebook.load(renamed).renamed() == {"one_to_one": "individual_contact"}


def test_a_seventh_code_needs_nothing_else(tmp_path):
    extra = """
  - id: phone_contact
    label_da: Telefonisk kontakt
    label_en: Phone contact
    definition: Kontakt med borgerne over telefon i stedet for fremmøde.
    patterns: [telefon*, omsorgsopkald]
"""
    path = tmp_path / "codebook.yaml"
    path.write_text(CODEBOOK.read_text(encoding="utf-8") + extra, encoding="utf-8")
    book = codebook.load(path)
    assert book.ids[-1] == "phone_contact" and len(book.ids) == 7


GROUPING = """
  - id: new_ways
    label_da: Nye arbejdsformer
    label_en: New ways of working
    definition: Samler koderne for arbejdsformer, der flyttede eller opstod under krisen.
    codable: false
"""


def test_a_grouping_code_is_a_heading_never_coded(tmp_path):
    path = tmp_path / "codebook.yaml"
    text = CODEBOOK.read_text(encoding="utf-8").replace("codes:\n", "codes:" + GROUPING, 1)
    path.write_text(text, encoding="utf-8")
    book = codebook.load(path)
    assert book.grouping() == ["new_ways"] and book.codes["digital_shift"].codable
    # Under a grouping code, a code still brings its codable parents, never the grouping one.
    path.write_text(text.replace("  - id: outdoor\n", "  - id: outdoor\n    parent: new_ways\n", 1), encoding="utf-8")
    book = codebook.load(path)
    assert book.codes["outdoor"].parent == "new_ways"
    assert book.close(["walk_and_talk"]) == ["outdoor", "walk_and_talk"]
    assert book.depth("walk_and_talk") == 2  # shown under its heading
    # The key changes nothing for a codebook that does not use it.
    assert codebook.load(CODEBOOK).version == codebook.load(copy_with(tmp_path, "codes:\n", "codes:\n")).version


def test_a_grouping_code_takes_no_patterns_and_codable_is_a_yes_or_no(tmp_path):
    path = tmp_path / "codebook.yaml"
    path.write_text(CODEBOOK.read_text(encoding="utf-8") + GROUPING + "    patterns: [ny*]\n", encoding="utf-8")
    with pytest.raises(CasebaseError, match="grouping code .* takes no 'patterns'") as error:
        codebook.load(path)
    assert error.value.line == line_of(path, "patterns: [ny*]")
    path.write_text(CODEBOOK.read_text(encoding="utf-8") + GROUPING.replace("codable: false", "codable: nej"), encoding="utf-8")
    with pytest.raises(CasebaseError, match="'codable' must be true or false, not 'nej'"):
        codebook.load(path)


def test_a_decision_cannot_code_a_grouping_code(tmp_path):
    from casebase.coding import decision_files

    path = tmp_path / "codebook.yaml"
    path.write_text(CODEBOOK.read_text(encoding="utf-8") + GROUPING, encoding="utf-8")
    book = codebook.load(path)
    decision = decision_files.Decision("mm2020-x", "tekst", ["new_ways"], "anna", "", "")
    with pytest.raises(CasebaseError, match="new_ways: a grouping code"):
        decision_files.append(tmp_path / "coding", [decision], book)
    assert not (tmp_path / "coding" / "anna.csv").exists()


def test_check_says_a_reading_is_ignored_because_its_code_became_a_grouping_code(tmp_path):
    """A careless `codable: false` on a code coders have used: check names each reading
    it now ignores as what it is (not "no longer in the codebook"), and a grouping code
    that groups nothing."""
    import csv
    import shutil

    import yaml
    from click.testing import CliRunner

    from casebase.cli import cli
    from conftest import CORPUS

    shutil.copytree(CORPUS, tmp_path / "corpus")
    data = yaml.safe_load(CODEBOOK.read_text(encoding="utf-8"))
    (walk,) = [c for c in data["codes"] if c["id"] == "walk_and_talk"]
    walk["codable"] = False
    for key in ("patterns", "exclude_patterns", "constructed_examples"):
        walk.pop(key, None)
    path = tmp_path / "codebook.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", "--corpus", str(tmp_path / "corpus"), "--codebook", str(path)])
    assert result.exit_code == 0, result.output
    coded = sum(
        "walk_and_talk" in row["codes"].split()
        for csv_path in (tmp_path / "corpus" / "coding").glob("coder*.csv")
        for row in csv.DictReader(csv_path.open(encoding="utf-8"))
    )
    ignored = [line for line in result.output.splitlines() if line.startswith("grouping code  ") and ".csv:" in line]
    assert coded > 0 and len(ignored) == coded, result.output
    assert "'walk_and_talk' is a grouping code now (codable: false), which is never coded (ignored)" in ignored[0]
    assert "'walk_and_talk' is no longer in the codebook" not in result.output
    assert f"grouping code  {path}:" in result.output and "'walk_and_talk' has codable: false but groups no code" in result.output
