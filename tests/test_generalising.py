"""Coding beyond the keywords: exclude patterns, constructed examples, compound parts,
calibrated routing, the random evaluation sample, the evaluation strata and the
active-learning choice."""

import csv
import json
import shutil
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner

from casebase.cli import cli
from casebase.coding import active_learning, classifier, codebook, routing, rules, sampling
from conftest import CORPUS, REPO

D, F, T, ONE, O, W = "digital_shift", "online_family_therapy", "to_go", "one_to_one", "outdoor", "walk_and_talk"


def hits(matcher, text):
    return matcher.hits(matcher.nlp(text))


# --- exclude patterns: evidence against a code ------------------------------------------


def test_an_exclude_pattern_is_evidence_against_its_code(matcher, book):
    found = hits(matcher, "Vi ringede til de ældre hver uge, og kontakten var kun telefonisk.")
    against = [h for h in found if h.against]
    assert D in {h.code_id for h in against}
    assert D not in rules.rule_codes(found, book)


def test_a_positive_hit_without_exclusion_codes(matcher, book):
    found = hits(matcher, "Samtalerne med de unge foregik over video i hele nedlukningen.")
    assert not any(h.against for h in found)
    assert D in rules.rule_codes(found, book)


def test_exclusion_of_a_child_keeps_the_parent(book):
    found = [rules.RuleHit(W, 0, 5, "gåtur", "*gåtur*"), rules.RuleHit(W, 10, 16, "turnus", "turnus", True)]
    assert rules.rule_codes(found, book) == [O]  # the child's pattern still speaks for the parent


def test_exclude_patterns_are_validated_with_their_line(tmp_path):
    text = (REPO / "codebook.yaml").read_text(encoding="utf-8")
    broken = text.replace("    exclude_patterns:\n", "    exclude_patterns:\n      - '* telefon'\n", 1)
    path = tmp_path / "codebook.yaml"
    path.write_text(broken, encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", "--codebook", str(path), "--corpus", str(CORPUS)])
    assert result.exit_code == 1
    line = broken[: broken.index("      - '* telefon'")].count("\n") + 1
    assert f"codebook.yaml:{line}:" in result.stderr and "does not compile" in result.stderr


def test_constructed_examples_must_be_positive_or_negative_lists(tmp_path):
    text = (REPO / "codebook.yaml").read_text(encoding="utf-8")
    path = tmp_path / "codebook.yaml"
    path.write_text(text.replace("    constructed_examples:\n      positive:", "    constructed_examples:\n      maybe:", 1), encoding="utf-8")
    with pytest.raises(Exception, match="constructed_examples"):
        codebook.load(path)


# --- constructed examples: training data, counted apart, never scored --------------------


def test_the_build_stores_constructed_examples_and_trains_on_them(built_db, book):
    conn = sqlite3.connect(built_db)
    stored = conn.execute("select code_id, polarity, count(*) from constructed_examples group by 1, 2").fetchall()
    conn.close()
    expected = {(c.id, "positive"): len(c.constructed_positive) for c in book.codes.values()}
    expected |= {(c.id, "negative"): len(c.constructed_negative) for c in book.codes.values()}
    assert {(c, p): n for c, p, n in stored} == {k: v for k, v in expected.items() if v}
    meta = json.loads((built_db.parent / "models" / "model.json").read_text(encoding="utf-8"))
    assert meta["constructed_examples"] == sum(expected.values()) > 0
    # Figures, thresholds and the routing rest on human decisions only.
    assert 0 < meta["routing"]["examples"] <= meta["training_examples"]


def test_constructed_labels_judge_only_their_code(book):
    from casebase.coding.final_codes import ExcerptInput
    from casebase.coding.training import TrainingSet

    examples = [(W, "positive", ExcerptInput("a", "Vi gik en tur og talte.", "vi gå en tur og tale", [])),
                (O, "negative", ExcerptInput("b", "Naturen var et tema.", "natur være et tema", []))]
    training_set = TrainingSet(book, None, "", lambda ids: {}, examples)
    _, Y = training_set.constructed_data()
    ids = book.ids
    assert Y[0, ids.index(W)] == 1 and Y[0, ids.index(O)] == 1 and np.isnan(Y[0, ids.index(D)])
    assert Y[1, ids.index(O)] == 0 and Y[1, ids.index(W)] == 0 and np.isnan(Y[1, ids.index(T)])


# --- compound parts ---------------------------------------------------------------------


def test_compounds_split_into_modifier_and_head():
    parts = classifier.CompoundParts().fit(["familie behandling video samtale skærm", "gåtur"])
    assert parts.split("familiebehandling") == ("familie", "behandling")
    assert parts.split("videosamtale") == ("video", "samtale")
    assert parts.split("skærmsamtale") == ("skærm", "samtale")  # never seen whole
    assert parts.split("samtale") == ()
    assert parts.transform(["ingen sammensatte ord"]) == ["_ "]


# --- routing ------------------------------------------------------------------------------


def test_confidence_is_the_chance_every_call_is_right():
    conf = routing.confidence(np.array([[0.9, 0.1, np.nan]]), np.array([0.5, 0.5, 0.5]))
    assert conf[0] == pytest.approx(0.9 * 0.9)


def test_the_operating_point_needs_the_lower_bound_to_reach_the_target():
    conf = np.linspace(1, 0, 200)
    correct = np.r_[np.ones(120), np.zeros(80)].astype(bool)  # the 120 most confident are right
    points = routing.curve(conf, correct)
    point = routing.operating_point(points, 0.95, 200)
    assert point["threshold"] is not None
    assert point["precision"] >= 0.95
    assert point["coverage"] > 0.55  # 120 right of the first 126 or so
    assert routing.lower_bound(point["precision"], round(point["coverage"] * 200)) >= 0.95
    assert routing.operating_point(points, 0.999, 200)["threshold"] is None


def test_unknown_text_goes_to_review():
    record = {"lemmas": "zyx qwv plo", "rules": [], "against": []}
    assert routing.unknown_text(record, {"vi", "gå"})
    assert routing.route(1.0, record, {"vi", "gå"}, False, {"threshold": 0.5, "curve": []})[0] == "review"
    # Its expected precision is the curve's where such texts stand (confidence 0), not
    # the one its own confidence would read among the texts the model knows.
    curve = [[0.99, 0.99, 0.3], [0.5, 0.9, 0.8], [0.0, 0.8, 1.0]]
    assert routing.route(0.999, record, {"vi", "gå"}, False, {"threshold": 0.5, "curve": curve}) == ("review", 0.8)
    known = {"lemmas": "vi gå tur", "rules": [], "against": []}
    assert routing.route(0.9, known, {"vi", "gå", "tur"}, False, {"threshold": 0.5, "curve": [[0.9, 0.97, 0.5]]}) == ("auto", 0.97)


def test_an_uncoded_change_of_practice_goes_to_review():
    # Every code is a changed practice: a text that tells of one but gets no code is a
    # code in words the model has not learnt, or a theme no code covers yet.
    point = {"threshold": 0.5, "curve": [[0.9, 0.97, 0.5]]}
    vocabulary = {"bibliotek", "pakke", "pose", "levere", "til", "låner", "der", "ikke", "kunne", "komme", "ind", "købe", "ny", "bog"}
    changed = {"text": "Biblioteket pakkede poser, der blev leveret til lånere, der ikke kunne komme ind.",
               "lemmas": "bibliotek pakke pose der blive levere til låner der ikke kunne komme ind", "rules": [], "against": []}
    assert routing.tells_of_change(changed)
    assert routing.route(0.99, changed, vocabulary, False, point, coded=False)[0] == "review"
    # Coded, the model has spoken on it: its confidence decides.
    assert routing.route(0.99, changed, vocabulary, False, point, coded=True)[0] == "auto"
    plain = {"text": "Biblioteket købte nye bøger.", "lemmas": "bibliotek købe ny bog", "rules": [], "against": []}
    assert not routing.tells_of_change(plain)
    assert routing.route(0.99, plain, vocabulary, False, point, coded=False)[0] == "auto"
    # Word forms and lemmas both count; a word only sharing the start does not.
    for text in ("Caféen blev erstattet af besøg.", "Holdene blev lagt om.", "Vi måtte ikke samles.", "Koret blev aflyst."):
        assert routing.tells_of_change({"text": text, "lemmas": ""}), text
    assert not routing.tells_of_change({"text": "Den lukkethed, vi mødte, var svær.", "lemmas": "den lukkethed vi møde være svær"})


def test_a_child_is_coded_only_where_its_parent_is():
    codes = classifier.CodeClassifier(code_ids=("digital", "therapy", "outdoor"), parents={"therapy": "digital"})
    codes.estimators_ = {"digital": None, "therapy": None, "outdoor": None}
    codes.thresholds_ = {"digital": 0.4, "therapy": 0.1, "outdoor": 0.5}
    predicted = codes.predict_from_scores(np.array([[0.2, 0.2, 0.6], [0.5, 0.2, 0.1], [0.5, 0.05, 0.1]]))
    # The child passes its own low threshold, the parent not: the child's topic words alone.
    assert predicted[0].tolist() == [0, 0, 1]
    assert predicted[1].tolist() == [1, 1, 0]
    assert predicted[2].tolist() == [1, 0, 0]


def test_classify_gives_a_route_and_an_expected_precision(built_db, tmp_path):
    texts = tmp_path / "svar.txt"
    texts.write_text("Vi holdt samtalerne på video.\nqwzx plorv trimf.\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["classify", str(texts), "--db", str(built_db), "--codebook", str(REPO / "codebook.yaml")]
    )
    assert result.exit_code == 0, result.output
    first, second = [json.loads(line) for line in result.output.splitlines()]
    assert first["route"] in ("auto", "review") and 0 <= first["expected_precision"] <= 1
    assert second["route"] == "review"  # words the model never saw: uncertain, not negative


def test_every_excerpt_has_a_route(built_db):
    conn = sqlite3.connect(built_db)
    counts = dict(conn.execute("select route, count(*) from routes group by route").fetchall())
    excerpts = conn.execute("select count(*) from excerpts").fetchone()[0]
    human = conn.execute("select count(distinct excerpt_id) from decisions where status = 'placed'").fetchone()[0]
    conn.close()
    assert sum(counts.values()) == excerpts
    assert counts["human"] == human
    assert set(counts) <= {"human", "auto", "review"}


# --- the random sample --------------------------------------------------------------------


def test_a_sample_is_stratified_deterministic_and_never_replaced(built_db, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(CORPUS, site / "corpus")
    shutil.copytree(built_db.parent, site / "db")
    args = ["sample", "--size", "60", "--seed", "7", "--corpus", str(site / "corpus"),
            "--codebook", str(REPO / "codebook.yaml"), "--db", str(site / "db" / built_db.name)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    path = site / "corpus" / "coding" / "samples" / "random-7.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert len(rows) == 60
    conn = sqlite3.connect(site / "db" / built_db.name)
    decided = {r[0] for r in conn.execute("select excerpt_id from decisions")}
    kinds = dict(conn.execute("select kind, count(*) from excerpts where id not in (select excerpt_id from decisions where excerpt_id is not null) group by kind"))
    conn.close()
    assert not decided & {r["excerpt_id"] for r in rows}
    drawn = {k: sum(1 for r in rows if r["kind"] == k) for k in kinds}
    total = sum(kinds.values())
    assert all(abs(drawn[k] - 60 * n / total) < 1 for k, n in kinds.items())
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "never replaced" in again.stderr
    chosen, _, _ = sampling.draw(
        [(r["excerpt_id"], r["kind"], "", "") for r in rows] + [("x-extra", "paragraph", "", "")], set(), 10, 3
    )
    assert chosen == sampling.draw([("x-extra", "paragraph", "", "")] + [(r["excerpt_id"], r["kind"], "", "") for r in rows], set(), 10, 3)[0]


def test_the_recorded_sample_is_coded_and_kept_apart():
    sampled = sampling.sampled_ids(CORPUS)
    assert len(sampled) >= 400
    coded = set()
    for path in (CORPUS / "coding").glob("coder*.csv"):
        coded |= {row["excerpt_id"] for row in csv.DictReader(path.open(encoding="utf-8"))}
    assert sampled <= coded


# --- evaluation strata --------------------------------------------------------------------


def test_evaluate_reports_each_stratum(built_db, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(CORPUS, site / "corpus")
    shutil.copytree(built_db.parent, site / "db")
    answers = tmp_path / "answers.jsonl"
    answers.write_text(
        "\n".join(
            json.dumps({"id": str(i), "text": text, "codes": codes}, ensure_ascii=False)
            for i, (text, codes) in enumerate(
                [
                    ("Vi holdt alle samtaler med de unge over video.", [D]),
                    ("Vi gik ture med borgerne i skoven og snakkede undervejs.", [O, W]),
                    ("Vores personalemøder blev holdt på Teams.", []),
                    ("Maden blev kørt ud til de ældre, der ikke kunne komme i caféen.", [T]),
                ]
            )
        )
        + "\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli,
        ["evaluate", "--corpus", str(site / "corpus"), "--codebook", str(REPO / "codebook.yaml"),
         "--db", str(site / "db" / built_db.name), "--answers", str(answers)],
    )
    assert result.exit_code == 0, result.output
    for title in ("All decisions, out of fold", "Random sample", "Labelled answers", "Routing (out of fold"):
        assert title in result.output
    assert "4 excerpts; macro-F1" in result.output
    conn = sqlite3.connect(site / "db" / built_db.name)
    strata = {r[0] for r in conn.execute("select distinct stratum from code_metrics")}
    curves = {r[0] for r in conn.execute("select distinct stratum from routing_curve")}
    conn.close()
    assert {"all_decisions", "random_sample", "answers"} <= strata
    assert {"training", "all_decisions", "random_sample", "answers"} <= curves


def test_a_bad_answers_file_is_one_line(built_db, tmp_path):
    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"text": "Vi gik ture.", "codes": ["gåture"]}\n', encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["evaluate", "--db", str(built_db), "--codebook", str(REPO / "codebook.yaml"), "--answers", str(answers)]
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {answers}:1: unknown code(s): gåture"


# --- active learning ------------------------------------------------------------------------


def test_the_queue_spreads_over_codes_and_skips_labels_and_repeats():
    thresholds = {D: 0.5, O: 0.3}
    candidates = [
        active_learning.Candidate("d1", "paragraph", "videomøder med borgerne hver uge", {D: 0.49, O: 0.01}),
        active_learning.Candidate("d2", "paragraph", "videomøder med borgerne hver uge igen", {D: 0.51, O: 0.01}),
        active_learning.Candidate("d3", "paragraph", "nye digitale tilbud til unge", {D: 0.45, O: 0.01}),
        active_learning.Candidate("o1", "paragraph", "aktiviteter flyttet udenfor i haven", {D: 0.01, O: 0.29}),
        active_learning.Candidate("f1", "figure", "Figur 3.1 videomøder", {D: 0.5, O: 0.3}),
        active_learning.Candidate("h1", "heading", "Gåture", {D: 0.01, O: 0.3}),
    ]
    chosen = [c.id for c in active_learning.choose(candidates, thresholds, 3)]
    assert chosen[0] in ("d1", "d2") and chosen[1] == "o1"  # the codes take turns
    assert not {"d1", "d2"} <= set(chosen)  # near-repeats of each other
    assert "f1" not in chosen and "h1" not in chosen
    assert len(chosen) == 3
