"""Adjudication: disagreements between coders are left out of training until an
adjudicator rules; the ruling is filed apart, counts for training, and is reached
from the review queue "Uenighed mellem kodere"."""

import re

from click.testing import CliRunner

from casebase.cli import cli
from casebase.coding import codebook, decision_files, final_codes
from casebase.publish import coders, serving
from conftest import METADATA, PASSWORDS, REPO
from test_coding_web import csv_rows, login

EXCERPT = "vive2021-d5824dac7eea"  # Middelfart: virtual housing support and joint walks
D, O, W = "digital_shift", "outdoor", "walk_and_talk"


def reading(coder, codes, day, adjudication=False, excerpt=EXCERPT):
    timestamp = f"2026-01-0{day}T00:00:00+00:00"
    decision = decision_files.Decision(excerpt, "", codes, coder, timestamp, "v1", adjudication=adjudication)
    return decision_files.Placed(decision, excerpt, codes, [D, O, W])


def test_agreeing_coders_train_and_disagreeing_ones_wait_for_a_ruling():
    agree = decision_files.Resolution([reading("anna", [D], "1"), reading("bo", [D], "2")], [], [])
    settled, open_ = agree.settled()
    assert settled[EXCERPT].decision.coder == "bo" and not open_
    differ = decision_files.Resolution([reading("anna", [D], "1"), reading("bo", [D, O], "2")], [], [])
    settled, open_ = differ.settled()
    assert EXCERPT not in settled and [p.decision.coder for p in open_[EXCERPT]] == ["anna", "bo"]
    assert final_codes.training_decisions(differ) == []
    # What the excerpt shows meanwhile: the latest reading.
    assert final_codes.shown_decisions(differ)[EXCERPT].decision.coder == "bo"
    ruled = decision_files.Resolution(differ.placed + [reading("cy", [D, O, W], "3", adjudication=True)], [], [])
    settled, open_ = ruled.settled()
    assert settled[EXCERPT].decision.coder == "cy" and settled[EXCERPT].codes == [D, O, W] and not open_
    # A coder who changes their reading after the ruling opens the question again.
    reopened = decision_files.Resolution(ruled.placed + [reading("anna", [O], "4")], [], [])
    assert EXCERPT in reopened.settled()[1]
    # The ruling is not a coder's reading: agreement figures never see it.
    assert ("cy", EXCERPT) not in ruled.current()


def test_check_reports_an_open_disagreement_and_a_ruling_closes_it(corpus_copy):
    book = codebook.load(REPO / "codebook.yaml")
    snippet = "Indsats"
    decision_files.append(corpus_copy / "coding", [decision_files.Decision(EXCERPT, snippet, [D], "anna", "", "")], book)
    decision_files.append(corpus_copy / "coding", [decision_files.Decision(EXCERPT, snippet, [D, O], "bo", "", "")], book)
    args = ["check", "--corpus", str(corpus_copy), "--codebook", str(REPO / "codebook.yaml")]
    output = CliRunner().invoke(cli, args).output
    assert f"disagreement  {EXCERPT}:" in output
    decision_files.append(
        corpus_copy / "coding",
        [decision_files.Decision(EXCERPT, snippet, [D, O, W], "cy", "", "", note="Gåturene er samtaler", adjudication=True)],
        book,
    )
    assert (corpus_copy / "coding" / "adjudications" / "cy.csv").exists()
    assert f"disagreement  {EXCERPT}:" not in CliRunner().invoke(cli, args).output


async def test_the_adjudicator_rules_from_the_queue(coding_site):
    root, settings = coding_site
    coders.add(settings.coders, "cy", "cy-afgør-333", adjudicator=True)
    datasette = serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)
    anna, anna_token = await login(datasette, "anna")
    bo, bo_token = await login(datasette, "bo")
    for cookies, token, codes in ((anna, anna_token, [D]), (bo, bo_token, [D, O])):
        saved = await datasette.client.post(
            f"/-/casebase/code/{EXCERPT}", data={"codes": codes, "csrftoken": token, "action": "save"}, cookies=cookies
        )
        assert saved.status_code == 302
    queue = await datasette.client.get("/-/casebase/queue?queue=conflict", cookies=anna)
    assert f"/-/casebase/code/{EXCERPT}?queue=conflict" in queue.text
    # A coder without the role cannot rule, and the page offers it only to adjudicators.
    page = await datasette.client.get(f"/-/casebase/code/{EXCERPT}", cookies=anna)
    assert 'value="adjudicate"' not in page.text
    refused = await datasette.client.post(
        f"/-/casebase/code/{EXCERPT}", data={"codes": [D], "csrftoken": anna_token, "action": "adjudicate"}, cookies=anna
    )
    assert refused.status_code == 403
    assert not (root / "corpus" / "coding" / "adjudications" / "anna.csv").exists()
    cy, cy_token = await login(datasette, "cy", "cy-afgør-333")
    page = await datasette.client.get(f"/-/casebase/code/{EXCERPT}", cookies=cy)
    assert 'value="adjudicate"' in page.text
    ruled = await datasette.client.post(
        f"/-/casebase/code/{EXCERPT}",
        data={"codes": [D, O, W], "note": "Gåturene er samvær", "csrftoken": cy_token, "action": "adjudicate"},
        cookies=cy,
    )
    assert ruled.status_code == 302
    rulings = decision_files.read_file(root / "corpus" / "coding" / "adjudications" / "cy.csv", adjudication=True)
    assert [(r.excerpt_id, r.codes) for r in rulings] == [(EXCERPT, [D, O, W])]
    assert csv_rows(root, "cy") == []  # the ruling is not one of cy's own readings
    queue = await datasette.client.get("/-/casebase/queue?queue=conflict", cookies=cy)
    assert f"/-/casebase/code/{EXCERPT}?queue=conflict" not in queue.text
    page = await datasette.client.get(f"/-/casebase/code/{EXCERPT}", cookies=cy)
    assert re.search(r"cy \(afgørelse\)", page.text)


def test_coders_list_shows_the_role(tmp_path):
    path = tmp_path / "coders.json"
    coders.add(path, "anna", PASSWORDS["anna"])
    coders.add(path, "cy", "cy-afgør-333", adjudicator=True)
    output = CliRunner().invoke(cli, ["coders", "list", "--coders", str(path)]).output
    assert output.splitlines() == ["anna", "cy  (adjudicator)"]
