"""Intercoder agreement: the measures against textbook examples, the edge cases,
and the command on real excerpts with two coders' decisions computed by hand."""

import shutil
from pathlib import Path
from fractions import Fraction as Fr

import numpy as np
import pytest
import sqlite_utils
import yaml
from click.testing import CliRunner
from datasette.app import Datasette

from casebase.coding import agreement, out_of_fold, training
from casebase.ingest import reading
from casebase import pipeline as build_stage
from casebase.coding import codebook
from casebase.coding import decision_files
from casebase.store import database
from casebase.cli import cli
from conftest import METADATA, REPO


def _codebook_without_constructed_examples():
    """The seed codebook without its constructed examples: these tests are about a
    handful of human decisions, too few to train on by themselves."""
    import tempfile

    data = yaml.safe_load((REPO / "codebook.yaml").read_text(encoding="utf-8"))
    for code in data["codes"]:
        code.pop("constructed_examples", None)
    path = Path(tempfile.mkdtemp(prefix="casebase-codebook-")) / "codebook.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


CODEBOOK = _codebook_without_constructed_examples()

NA = np.nan
D, F, T, U, O, W = "digital_shift", "online_family_therapy", "to_go", "one_to_one", "outdoor", "walk_and_talk"


# --- textbook examples ---------------------------------------------------------------------------


# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", example C:
# four observers, twelve units, nominal values 1-5, missing data.
KRIPPENDORFF_C = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NA, NA, NA],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NA, 3],
    [NA, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NA],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NA],
]


def test_krippendorff_alpha_nominal_with_missing_data():
    assert agreement.krippendorff_alpha(KRIPPENDORFF_C) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_binary_two_observers():
    # Krippendorff (2011), example A: binary data, two observers, ten units: alpha = 0.095.
    data = [[0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]]
    assert agreement.krippendorff_alpha(data) == pytest.approx(0.095, abs=5e-4)


def test_percent_agreement_counts_agreeing_pairs_within_units():
    # By hand, unit by unit (agreeing pairs / pairs): 3/3, 3/6, 6/6, 6/6, 6/6, 0/6,
    # 6/6, 3/6, 6/6, 3/3, 1/1; the twelfth unit has one value and is not pairable.
    assert agreement.percent_agreement(KRIPPENDORFF_C) == pytest.approx(43 / 55)


def test_cohen_kappa_fifty_items():
    # 20 yes/yes, 15 no/no, 5 yes/no, 10 no/yes: p_o = 0.7, p_e = 0.5, kappa = 0.4.
    a = ["yes"] * 20 + ["no"] * 15 + ["yes"] * 5 + ["no"] * 10
    b = ["yes"] * 20 + ["no"] * 15 + ["no"] * 5 + ["yes"] * 10
    assert agreement.cohen_kappa(a, b) == pytest.approx(0.4)
    assert agreement.percent_agreement([[x == "yes" for x in a], [x == "yes" for x in b]]) == pytest.approx(0.7)


def test_perfect_agreement():
    data = [[1, 0, 1, 0, NA], [1, 0, 1, 0, 1]]
    assert agreement.krippendorff_alpha(data) == 1.0
    assert agreement.percent_agreement(data) == 1.0
    assert agreement.cohen_kappa([1, 0, 1, 0], [1, 0, 1, 0]) == 1.0


def test_a_code_nobody_applied_is_undefined_not_nan():
    data = [[0, 0, 0], [0, 0, 0]]
    assert agreement.krippendorff_alpha(data) is None
    assert agreement.cohen_kappa([0, 0, 0], [0, 0, 0]) is None
    assert agreement.percent_agreement(data) == 1.0
    # Nothing pairable at all: one coder per unit.
    assert agreement.krippendorff_alpha([[1, NA], [NA, 0]]) is None
    assert agreement.percent_agreement([[1, NA], [NA, 0]]) is None
    # Two constant coders who never agree: defined, kappa 0.
    assert agreement.cohen_kappa([1, 1], [0, 0]) == 0.0


# --- figures from decisions ----------------------------------------------------------------------


def placed(coder, excerpt_id, codes, judged):
    decision = decision_files.Decision(excerpt_id, "", codes, coder, "", "v1")
    return decision_files.Placed(decision, excerpt_id, codes, judged)


def test_a_code_added_after_a_decision_is_missing_not_absent():
    resolution = decision_files.Resolution(
        [
            placed("anna", "e1", [D], [D]),  # coded before to_go existed
            placed("bo", "e1", [D], [D, T]),
            placed("bo", "e2", [], [D]),
            placed("bo", "e2", [T], [D, T]),  # bo's later decision on e2 counts
        ],
        [],
        [],
    )
    ratings = agreement.human_ratings(resolution, [D, T])
    assert ratings[D] == {"anna": {"e1": 1}, "bo": {"e1": 1, "e2": 0}}
    assert ratings[T] == {"bo": {"e1": 0, "e2": 1}}
    found = {(f.scope, f.code_id, f.measure): f for f in agreement.figures(ratings, [D, T])}
    assert found[("code", T, "krippendorff_alpha")].units == 0
    assert found[("code", T, "krippendorff_alpha")].value is None
    assert "two or more coders" in found[("code", T, "krippendorff_alpha")].note
    assert found[("code", D, "percent_agreement")].units == 1


def test_a_single_coder_has_nothing_to_compare():
    ratings = {D: {"anna": {"e1": 1, "e2": 0}}, T: {"anna": {"e1": 0, "e2": 0}}}
    found = agreement.figures(ratings, [D, T])
    assert not any(f.measure == "cohen_kappa" for f in found)
    for f in found:
        assert f.value is None
        assert "only one coder (anna)" in f.note or f.scope == "mean"


def test_the_model_against_each_coder():
    humans = {D: {"anna": {"e1": 1, "e2": 0, "e3": 1, "e4": 0}}, T: {"anna": {"e1": 0, "e2": 0, "e3": 1, "e4": 0}}}
    model = {D: {"e1": 1, "e2": 1, "e3": 1, "e4": 0}, T: {}}
    found = {
        (f.scope, f.code_id, f.measure): f
        for f in agreement.figures(humans, [D, T], model, {T: "not available: too few examples"})
        if f.coder_b == "model"
    }
    # D: anna 1,0,1,0 / model 1,1,1,0: p_o = 3/4, p_e = 1/2·3/4 + 1/2·1/4 = 1/2, kappa = 1/2.
    assert found[("code", D, "cohen_kappa")].value == pytest.approx(0.5)
    assert found[("code", D, "percent_agreement")].value == pytest.approx(0.75)
    assert found[("code", D, "cohen_kappa")].units == 4
    assert found[("code", T, "cohen_kappa")].value is None
    assert found[("code", T, "cohen_kappa")].note == "not available: too few examples"
    # Pooled over the codes the model codes: D only.
    assert found[("pooled", None, "cohen_kappa")].value == pytest.approx(0.5)
    assert found[("pooled", None, "cohen_kappa")].codes == 1
    assert found[("mean", None, "cohen_kappa")].value == pytest.approx(0.5)
    assert found[("mean", None, "cohen_kappa")].note == f"left out (no value): {T}"


# --- the command on real excerpts ----------------------------------------------------------------

# Six real excerpts coded by two coders; anna also coded a seventh alone, and
# changed her mind on the sixth (her latest decision counts).
ANNA = [[D], [D, F], [T], [O, W], [], [T], [D], []]
BO = [[D], [D], [T], [O], [T], []]


@pytest.fixture
def corpus_copy(corpus_copy):
    """The seed corpus without its coders' files: these tests write decisions whose
    agreement figures are worked out by hand."""
    for path in (corpus_copy / "coding").glob("*.csv"):
        path.unlink()
    shutil.rmtree(corpus_copy / "coding" / "adjudications", ignore_errors=True)
    return corpus_copy


@pytest.fixture
def coded(corpus_copy, built_db, tmp_path):
    db_path = tmp_path / "db" / "casebase.db"
    db_path.parent.mkdir()
    shutil.copy(built_db, db_path)
    texts = {
        row["id"]: row["text"]
        for row in sqlite_utils.Database(db_path).query(
            "select id, text from excerpts where kind = 'case_field' and source_id = 'vive2021' order by seq limit 7"
        )
    }
    ids = list(texts)
    book = codebook.load(CODEBOOK)

    def decision(coder, excerpt_id, codes, timestamp):
        return decision_files.Decision(
            excerpt_id, decision_files.snippet_of(texts[excerpt_id]), codes, coder, timestamp, book.version
        )

    anna = [ids[i] for i in (0, 1, 2, 3, 4, 5, 5, 6)]
    decision_files.append(
        corpus_copy / "coding",
        [decision("anna", e, codes, f"2026-01-01T00:00:0{i}+00:00") for i, (e, codes) in enumerate(zip(anna, ANNA))],
        book,
    )
    decision_files.append(
        corpus_copy / "coding",
        [decision("bo", e, codes, "2026-01-02T00:00:00+00:00") for e, codes in zip(ids, BO)],
        book,
    )
    return corpus_copy, db_path


def run_agreement(corpus, db_path):
    return CliRunner().invoke(
        cli,
        ["agreement", "--corpus", str(corpus), "--codebook", str(CODEBOOK), "--db", str(db_path)],
        catch_exceptions=False,
    )


# Worked by hand from ANNA and BO on the six shared excerpts (anna's sixth is
# digital_shift, her latest decision):
#   digital_shift anna 1 1 0 0 0 1, bo 1 1 0 0 0 0: agree 5/6; p_e = 1/2·1/3 + 1/2·2/3 = 1/2,
#     kappa = (5/6 − 1/2)/(1/2) = 2/3; coincidences o11 = 4, o00 = 6, o01 = o10 = 1,
#     n1 = 5, n0 = 7, alpha = 1 − 11·2/(2·5·7) = 24/35.
#   online_family_therapy anna 0 1 0 0 0 0, bo all 0: agree 5/6, kappa 0, alpha 1 − 11·2/(2·1·11) = 0.
#   to_go anna 0 0 1 0 0 0, bo 0 0 1 0 1 0: agree 5/6; p_e = 22/36, kappa = (30 − 22)/(36 − 22) = 4/7;
#     n1 = 3, n0 = 9, alpha = 1 − 11·2/(2·3·9) = 16/27.
#   one_to_one nobody: agree 1, kappa and alpha undefined.
#   outdoor anna = bo = 0 0 0 1 0 0: 1, 1, 1.   walk_and_talk anna 0 0 0 1 0 0, bo all 0: 5/6, 0, 0.
#   pooled, 36 units, 4 disagreements: agree 8/9; anna 7 present, bo 5; 4 units present/present;
#     alpha = 1 − 71·8/(2·12·60) = 109/180; kappa: p_e = (7·5 + 29·31)/36² = 934/1296,
#     kappa = (1152 − 934)/(1296 − 934) = 109/181.
EXPECTED = {
    D: (Fr(5, 6), Fr(24, 35), Fr(2, 3)),
    F: (Fr(5, 6), 0, 0),
    T: (Fr(5, 6), Fr(16, 27), Fr(4, 7)),
    U: (1, None, None),
    O: (1, 1, 1),
    W: (Fr(5, 6), 0, 0),
}
POOLED = (Fr(8, 9), Fr(109, 180), Fr(109, 181))


def close(value, expected):
    if expected is None:
        return value is None
    return value is not None and abs(value - float(expected)) < 1e-9


def test_agreement_command_on_real_excerpts(coded):
    corpus, db_path = coded
    result = run_agreement(corpus, db_path)
    assert result.exit_code == 0, result.output
    rows = list(sqlite_utils.Database(db_path).query("select * from agreement"))
    by_key = {(r["scope"], r["code_id"], r["measure"], r["coder_a"], r["coder_b"]): r for r in rows}
    for code, (percent, alpha, kappa) in EXPECTED.items():
        assert close(by_key[("code", code, "percent_agreement", None, None)]["value"], percent), code
        assert close(by_key[("code", code, "krippendorff_alpha", None, None)]["value"], alpha), code
        assert close(by_key[("code", code, "cohen_kappa", "anna", "bo")]["value"], kappa), code
        assert by_key[("code", code, "krippendorff_alpha", None, None)]["units"] == 6
        assert by_key[("code", code, "krippendorff_alpha", None, None)]["coders"] == 2
    assert "'absent', no variation" in by_key[("code", U, "krippendorff_alpha", None, None)]["note"]
    percent, alpha, kappa = POOLED
    assert close(by_key[("pooled", None, "percent_agreement", None, None)]["value"], percent)
    assert close(by_key[("pooled", None, "krippendorff_alpha", None, None)]["value"], alpha)
    assert close(by_key[("pooled", None, "cohen_kappa", "anna", "bo")]["value"], kappa)
    assert by_key[("pooled", None, "krippendorff_alpha", None, None)]["units"] == 36
    mean_alpha = by_key[("mean", None, "krippendorff_alpha", None, None)]
    assert close(mean_alpha["value"], (Fr(24, 35) + Fr(16, 27) + 1) / 5)
    assert mean_alpha["codes"] == 5 and mean_alpha["note"] == f"left out (no value): {U}"
    # Seven excerpts are far too few to train the model for any code: each model row says so.
    model_rows = [r for r in rows if r["coder_b"] == "model" and r["scope"] == "code"]
    assert {(r["code_id"], r["coder_a"]) for r in model_rows} == {(c, h) for c in EXPECTED for h in ("anna", "bo")}
    assert all(r["value"] is None and r["note"].startswith("not available: too few examples") for r in model_rows)

    out = result.output
    assert "Coders: anna, bo; 6 excerpts coded by two or more coders." in out
    line = next(l for l in out.splitlines() if l.startswith("digital_shift "))
    assert line.split() == ["digital_shift", "6", "2", "83.3%", "0.686", "|", "0.667", "(6)"]
    line = next(l for l in out.splitlines() if l.startswith("pooled "))
    assert line.split()[4:] == ["36", "2", "88.9%", "0.606", "|", "0.602", "(36)"]
    assert "every judgement was 'absent', no variation to agree on: one_to_one alpha, one_to_one kappa anna/bo" in out
    # Only the excerpts anna and bo agree on are learnt from (the others wait for a
    # ruling): three, none with walk-and-talk.
    assert "walk_and_talk            | not available: too few examples to train the model (0 present, 3 absent" in out
    assert "Stored" in out


def test_previous_figures_are_replaced_and_a_failed_write_changes_nothing(coded, monkeypatch):
    corpus, db_path = coded
    assert run_agreement(corpus, db_path).exit_code == 0
    db = sqlite_utils.Database(db_path)
    before = list(db.query("select * from agreement order by rowid"))
    assert run_agreement(corpus, db_path).exit_code == 0
    assert db["agreement"].count == len(before)  # replaced, not appended

    def broken(db, rows):
        db["agreement"].insert(rows[0])
        raise OSError("disk full")

    monkeypatch.setattr(database, "write_agreement", broken)
    with pytest.raises(OSError):
        database.replace_agreement(db_path, [{"scope": "x"}])
    after = list(sqlite_utils.Database(db_path).query("select * from agreement order by rowid"))
    assert [r["value"] for r in after] == [r["value"] for r in before]
    assert len(after) == len(before)


def test_out_of_fold_predictions_are_kept_until_the_decisions_change(coded):
    corpus, db_path = coded
    models = training.models_dir(db_path)
    first = run_agreement(corpus, db_path)
    assert "Cross-validating" in first.stderr
    assert (models / out_of_fold.OUT_OF_FOLD_FILE).exists()
    assert "Cross-validating" not in run_agreement(corpus, db_path).stderr
    book = codebook.load(CODEBOOK)
    with build_stage.built_training_set(corpus, CODEBOOK, db_path) as training_set:
        assert out_of_fold.out_of_fold(training_set, models, compute=False) is not None
        excerpt_id = training_set.resolution.placed[0].excerpt_id
        snippet = training_set.resolution.placed[0].decision.snippet
    decision_files.append(corpus / "coding", [decision_files.Decision(excerpt_id, snippet, [O], "cy", "", book.version)], book)
    with build_stage.built_training_set(corpus, CODEBOOK, db_path) as training_set:
        assert out_of_fold.out_of_fold(training_set, models, compute=False) is None


def test_one_coder_only(corpus_copy, tmp_path):
    book = codebook.load(CODEBOOK)
    _, excerpt = next(reading.corpus_excerpts(corpus_copy))
    decision_files.append(
        corpus_copy / "coding",
        [decision_files.Decision(excerpt.id, decision_files.snippet_of(excerpt.text), [D], "anna", "", book.version)],
        book,
    )
    result = run_agreement(corpus_copy, tmp_path / "casebase.db")
    assert result.exit_code == 0, result.output
    assert "Nothing to compare between coders: only anna has coded." in result.output
    assert "Stored" in result.output  # the database was built first


def test_no_decisions_is_a_clear_error(corpus_copy, tmp_path):
    result = CliRunner().invoke(
        cli, ["agreement", "--corpus", str(corpus_copy), "--codebook", str(CODEBOOK), "--db", str(tmp_path / "x.db")]
    )
    assert result.exit_code == 1
    assert "no human coding decisions" in result.stderr


def test_build_fills_the_agreement_table(coded, tmp_path):
    corpus, _ = coded
    db_path = tmp_path / "built" / "casebase.db"
    build_stage.build(corpus, db_path, CODEBOOK)
    rows = {
        (r["scope"], r["code_id"], r["measure"], r["coder_a"], r["coder_b"]): r
        for r in sqlite_utils.Database(db_path).query("select * from agreement")
    }
    assert close(rows[("code", D, "cohen_kappa", "anna", "bo")]["value"], Fr(2, 3))
    assert close(rows[("pooled", None, "krippendorff_alpha", None, None)]["value"], Fr(109, 180))
    # The build makes no out-of-fold predictions of its own and says so.
    model = rows[("code", D, "cohen_kappa", "anna", "model")]
    assert model["value"] is None and "run 'casebase agreement'" in model["note"]


async def test_datasette_shows_the_agreement_table(built_db):
    metadata = yaml.safe_load(METADATA.read_text(encoding="utf-8"))
    datasette = Datasette([str(built_db)], metadata=metadata)
    response = await datasette.client.get("/casebase/agreement")
    assert response.status_code == 200
    assert "Interkoderenighed" in response.text
    columns = (await datasette.client.get("/casebase/agreement.json")).json()["columns"]
    assert {"code_id", "measure", "coder_a", "coder_b", "units", "value", "computed"} <= set(columns)


def test_the_model_never_sees_the_decision_it_is_compared_with():
    # Out-of-fold: an excerpt's prediction comes from a model trained without it,
    # so flipping the labels of a whole fold cannot change that fold's predictions.
    from sklearn.model_selection import KFold
    from test_classify import LABELLED, records_for
    from casebase.coding import classifier
    from casebase.nlp import danish
    from casebase.coding import rules

    book = codebook.load(CODEBOOK)
    records = records_for([t for t, _ in LABELLED], rules.RuleMatcher(danish.load_pipeline(), book), book)
    Y = np.array([[1.0 if c in codes else 0.0 for c in book.ids] for _, codes in LABELLED])
    parents = {c.id: c.parent for c in book.codes.values() if c.parent}
    before, _ = classifier.out_of_fold_predictions(records, Y, book.ids, parents, folds=3)
    d = book.ids.index(D)
    assert not np.any(np.isnan(before[:, d]))
    _, fold = next(KFold(n_splits=3, shuffle=True, random_state=classifier.RANDOM_STATE).split(records))
    flipped = Y.copy()
    flipped[fold, d] = 1 - flipped[fold, d]
    after, _ = classifier.out_of_fold_predictions(records, flipped, book.ids, parents, folds=3)
    np.testing.assert_array_equal(after[fold], before[fold])
