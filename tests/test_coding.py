"""Human decisions: durable appends, torn lines, concurrency, and reading them
against a changed codebook or re-segmented excerpts without losing any."""

import multiprocessing

import pytest

from casebase.coding import codebook
from casebase.coding import decision_files
from casebase.errors import CasebaseError
from conftest import REPO

WALK = "Indsats: Walk and talk i grupper på en størrelse af 5-6 borgere. Man mødes i naturen ved vandet og går en tur sammen."
FAMILY = "Formål: Online familiebehandling."
PHONE = "Læring: Telefonopkald til ikke-digitale brugere gav mulighed for dybere samtaler."


def decision(excerpt_id, text, codes, coder="anna", note=""):
    return decision_files.Decision(excerpt_id, decision_files.snippet_of(text), codes, coder, "", "", note)


def test_append_and_read_back(tmp_path, book):
    decision_files.append(tmp_path, [decision("vive2021-a", WALK, ["walk_and_talk"], note="gåture, 5-6 borgere")], book)
    decision_files.append(tmp_path, [decision("vive2021-b", PHONE, [])], book)
    rows = decision_files.read_file(tmp_path / "anna.csv")
    assert [r.excerpt_id for r in rows] == ["vive2021-a", "vive2021-b"]
    assert rows[0].codes == ["outdoor", "walk_and_talk"]  # the parent comes with the child
    assert rows[0].note == "gåture, 5-6 borgere" and rows[0].line == 2
    assert rows[1].codes == []
    assert rows[0].codebook_version == book.version
    assert decision_files.read_registry(tmp_path) == {book.version: book.ids}


def test_latest_decision_of_a_coder_counts(tmp_path, book):
    decision_files.append(tmp_path, [decision("vive2021-a", WALK, ["outdoor"])], book)
    decision_files.append(tmp_path, [decision("vive2021-a", WALK, ["walk_and_talk"])], book)
    resolution = decision_files.resolve(decision_files.read_all(tmp_path), book, decision_files.read_registry(tmp_path), {"vive2021-a": WALK})
    (current,) = resolution.current().values()
    assert current.codes == ["outdoor", "walk_and_talk"]


def test_unknown_code_is_refused_on_save(tmp_path, book):
    with pytest.raises(CasebaseError, match="unknown code id"):
        decision_files.append(tmp_path, [decision("x", WALK, ["gaature"])], book)
    assert not (tmp_path / "anna.csv").exists()


def test_torn_last_line_is_reported_and_earlier_rows_survive(tmp_path, book, caplog):
    decision_files.append(tmp_path, [decision("vive2021-a", WALK, ["walk_and_talk"])], book)
    path = tmp_path / "anna.csv"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("vive2021-b,Formål: Online fam")  # a save cut off mid-row, never acknowledged
    assert [d.excerpt_id for d in decision_files.read_file(path)] == ["vive2021-a"]
    assert "anna.csv:3: an incomplete last row" in caplog.text
    (torn,) = decision_files.torn_tails(tmp_path)
    assert (torn.path, torn.line, torn.moved) == (path, 3, False)


def _save_many(args):
    directory, coder, count = args
    book = codebook.load(REPO / "codebook.yaml")
    for i in range(count):
        decision_files.append(directory, [decision(f"vive2021-{coder}-{i}", FAMILY, ["online_family_therapy"], coder=coder)], book)


def test_two_processes_saving_at_once_lose_nothing(tmp_path):
    # Both write the same coder's file: the worst case for interleaving.
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_save_many, [(tmp_path, "anna", 500), (tmp_path, "anna", 500)])
    rows = decision_files.read_file(tmp_path / "anna.csv")
    assert len(rows) == 1000
    assert len(decision_files.read_registry(tmp_path)) == 1


def write_codebook(tmp_path, text):
    path = tmp_path / "codebook.yaml"
    path.write_text(text, encoding="utf-8")
    return codebook.load(path)


def test_rename_merge_delete_and_new_code_keep_decisions(tmp_path, book):
    coding_dir = tmp_path / "coding"
    decision_files.append(
        coding_dir,
        [
            decision("e-walk", WALK, ["walk_and_talk"]),
            decision("e-family", FAMILY, ["online_family_therapy"]),
            decision("e-121", "Én-til-én samtaler", ["one_to_one", "to_go"]),
        ],
        book,
    )
    original = (REPO / "codebook.yaml").read_text(encoding="utf-8")
    # rename walk_and_talk, merge to_go + one_to_one, add a new code
    edited = (
        original.replace("  - id: walk_and_talk\n", "  - id: walking_meetings\n    replaces: [walk_and_talk]\n")
        .replace("  - id: to_go\n", "  - id: outreach_and_individual\n    replaces: [to_go, one_to_one]\n")
        .replace("  - id: one_to_one\n", "  - id: phone_contact\n")
    )
    new_book = write_codebook(tmp_path, edited)
    texts = {"e-walk": WALK, "e-family": FAMILY, "e-121": "Én-til-én samtaler"}
    resolution = decision_files.resolve(decision_files.read_all(coding_dir), new_book, decision_files.read_registry(coding_dir), texts)
    current = {p.excerpt_id: p for p in resolution.current().values()}
    assert current["e-walk"].codes == ["outdoor", "walking_meetings"]
    assert current["e-121"].codes == ["outreach_and_individual"]
    # the new code was not in the codebook the coder saw: not judged, not a negative
    assert "phone_contact" not in current["e-121"].judged
    assert "outreach_and_individual" in current["e-121"].judged
    assert resolution.unplaced == [] and resolution.deleted_codes == []

    # delete online_family_therapy: the decision stays, the code is reported
    deleted = original.split("  - id: online_family_therapy")[0] + "  - id: to_go" + original.split("  - id: to_go", 1)[1]
    resolution = decision_files.resolve(
        decision_files.read_all(coding_dir), write_codebook(tmp_path, deleted), decision_files.read_registry(coding_dir), texts
    )
    assert [(d.excerpt_id, code) for d, code in resolution.deleted_codes] == [("e-family", "online_family_therapy")]
    assert {p.excerpt_id for p in resolution.placed} == set(texts)


def test_reanchoring_by_snippet_and_unplaced(tmp_path, book):
    decision_files.append(tmp_path, [decision("old-id", WALK, ["walk_and_talk"]), decision("gone", PHONE, [])], book)
    resolution = decision_files.resolve(decision_files.read_all(tmp_path), book, decision_files.read_registry(tmp_path), {"new-id": WALK})
    (placed,) = resolution.placed
    assert placed.excerpt_id == "new-id" and placed.reanchored
    assert [d.excerpt_id for d in resolution.unplaced] == ["gone"]


def test_unknown_code_in_a_file_names_the_line(tmp_path, book):
    decision_files.append(tmp_path, [decision("a", WALK, ["walk_and_talk"])], book)
    path = tmp_path / "anna.csv"
    path.write_text(path.read_text(encoding="utf-8").replace("outdoor walk_and_talk", "outdoor gaature"), encoding="utf-8")
    with pytest.raises(CasebaseError, match="unknown code id 'gaature'") as error:
        decision_files.resolve(decision_files.read_all(tmp_path), book, decision_files.read_registry(tmp_path), {"a": WALK})
    assert error.value.line == 2 and error.value.file == str(path)


def test_import_refuses_a_decision_written_for_another_excerpt(tmp_path):
    from casebase.coding import codebook as codebook_mod
    from casebase.errors import CasebaseError

    book = codebook_mod.load(REPO / "codebook.yaml")
    texts = {
        "vive2021-a": "Formål: Online bostøtte.",
        "vive2021-b": "Målgruppe: Ledige borgere.",
    }
    good = tmp_path / "good.jsonl"
    good.write_text(
        '{"excerpt_id": "vive2021-a", "codes": ["digital_shift"], "text": "Formål: Online"}\n', encoding="utf-8"
    )
    assert [d.codes for d in decision_files.read_import(good, "anna", texts, book)] == [["digital_shift"]]
    shifted = tmp_path / "shifted.jsonl"
    shifted.write_text(
        '{"excerpt_id": "vive2021-a", "codes": []}\n'
        '{"excerpt_id": "vive2021-b", "codes": ["digital_shift"], "text": "Formål: Online bostøtte"}\n',
        encoding="utf-8",
    )
    with pytest.raises(CasebaseError) as error:
        decision_files.read_import(shifted, "anna", texts, book)
    assert error.value.line == 2 and "another excerpt" in str(error.value)
