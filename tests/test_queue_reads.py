"""The review queues read what bounds them at a million excerpts, and still list
what they mean: the disagreement queue is every score where the rules and the model
disagree (read from a partial index of exactly those), a code's uncoded queue is
its coded excerpts no human has decided (walked in reading order, or read from the
code's codings where it has few), in the same order either way."""

import shutil
import sqlite3

import pytest

from casebase.ingest.segment import CODED_KINDS
from casebase.publish import coding_db

CODES = ["digital_shift", "one_to_one", "walk_and_talk"]


@pytest.fixture(scope="module")
def conn(built_db, tmp_path_factory):
    """A copy of the seed build whose model says the opposite of what it says: on
    the seed the model has learnt the rules (their hits are features) and disagrees
    with them only where coders have decided, which the queue leaves out."""
    copy = tmp_path_factory.mktemp("queues") / "casebase.db"
    shutil.copy(built_db, copy)
    conn = sqlite3.connect(copy)
    with conn:
        conn.execute("update suggestions set score = round(1 - score, 4), distance = round(abs(1 - score - threshold), 4)")
    yield conn
    conn.close()


def human(conn) -> set[str]:
    return {r[0] for r in conn.execute(coding_db._HUMAN)}


def disagreeing(conn, code=None) -> list[tuple[float, str, int, str, str]]:
    """The disagreement queue computed from the rule hits themselves: a rule of the
    code fired and the model said no, or the model said yes and none fired."""
    fired = {(r[0], r[1]) for r in conn.execute("select excerpt_id, code_id from rule_hits where not against")}
    order = {r[0]: (r[1], r[2]) for r in conn.execute("select id, source_id, seq from excerpts")}
    decided = human(conn)
    rows = []
    for excerpt_id, code_id, score, threshold, distance in conn.execute(
        "select excerpt_id, code_id, score, threshold, distance from suggestions"
    ):
        if ((excerpt_id, code_id) in fired) != (score >= threshold) and excerpt_id not in decided and code in (None, code_id):
            rows.append((-distance, *order[excerpt_id], excerpt_id, code_id))
    return sorted(rows)


def test_the_disagreement_queue_is_where_rules_and_model_disagree(conn):
    for code in [None, *CODES]:
        expected = disagreeing(conn, code)
        assert len(expected) > 20 or code == "one_to_one"
        shown = coding_db.queue(conn, "disagreement", code, limit=10_000)
        # One line per excerpt, its first (most confident) disagreement.
        first = list(dict.fromkeys(row[3] for row in expected))
        assert [item.excerpt_id for item in shown] == first, code
        assert all(item.rule_hit != (item.score >= item.threshold) for item in shown)
        assert coding_db.queue_counts(conn, code)["disagreement"] == min(len(first), coding_db.COUNT_LIMIT + 1)


def test_a_codes_uncoded_queue_is_the_same_walked_or_read_from_its_codings(conn, monkeypatch):
    decided = human(conn)
    for code in CODES:
        expected = [
            r[0]
            for r in conn.execute(
                f"""select e.id from excerpts e where e.kind in ({", ".join("?" for _ in CODED_KINDS)})
                    and e.id in (select excerpt_id from codings where code_id = ?) order by e.source_id, e.seq""",
                [*CODED_KINDS, code],
            )
            if r[0] not in decided
        ]
        lists = []
        for few in (0, 10**9):  # walked in reading order; read from the codings and sorted
            monkeypatch.setattr(coding_db, "FEW_CODINGS", few)
            lists.append([item.excerpt_id for item in coding_db.queue(conn, "uncoded", code, limit=10_000)])
            assert coding_db.queue_counts(conn, code)["uncoded"] == min(len(expected), coding_db.COUNT_LIMIT + 1)
        assert lists[0] == lists[1] == expected, code


def plan(conn, sql, params) -> str:
    return " | ".join(row[-1] for row in conn.execute(f"explain query plan {sql}", params))


def test_the_queues_read_by_index_not_by_scanning(conn):
    for code in (None, "digital_shift"):
        sql, order, params = coding_db._queue_sql("disagreement", code, None)
        assert "idx_suggestions_disagreeing" in plan(conn, f"{sql} {order}", params)
        sql, params = coding_db._count_sql("disagreement", code, None)
        assert "idx_suggestions_disagreeing" in plan(conn, sql, params)
    # A code's uncoded excerpts are counted from its codings: no walk over the corpus.
    sql, params = coding_db._count_sql("uncoded", "digital_shift", None)
    counted = plan(conn, sql, params)
    assert "idx_codings_code_id_origin" in counted and "SCAN e" not in counted
    # The blind double queue of a code looks each candidate's coding up.
    sql, order, params = coding_db._queue_sql("double", "digital_shift", "anna")
    assert "USING COVERING INDEX sqlite_autoindex_codings_1 (excerpt_id=? AND code_id=?)" in plan(conn, f"{sql} {order}", params)
