"""What coders read and write in the served database.

The coding page's view of one excerpt (context, codes with provenance, rule
evidence, decisions), the review queues, and ``apply_decision``: a human
decision written into a built database exactly as a rebuild would record it,
so the page shows the new codes at once and a later rebuild agrees.

Every function takes a plain ``sqlite3.Connection``; the web layer decides
which thread runs it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from markupsafe import Markup, escape

from casebase.coding import active_learning
from casebase.store import summaries
from casebase.coding.codebook import Codebook
from casebase.coding.decision_files import Decision
from casebase.ingest.segment import CODED_KINDS

CONTEXT = 2  # excerpts shown before and after the one being coded

QUEUES = {
    "uncertain": "Modellens mest usikre forslag",
    "disagreement": "Regler og model er uenige",
    "uncoded": "Ikke kodet af et menneske",
    "unjudged": "Kodet før koden fandtes",
    "double": "Kodet af en anden, ikke af mig",
    "conflict": "Uenighed mellem kodere",
    "proposed": "Ikke bedømt: foreslået til en ny kode",
}


def _rows(conn: sqlite3.Connection, sql: str, params=()) -> list[dict]:
    cursor = conn.execute(sql, params)
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


def build_info(conn: sqlite3.Connection) -> dict[str, str]:
    return {row["key"]: row["value"] for row in _rows(conn, "select key, value from build_info")}


def codes(conn: sqlite3.Connection) -> list[dict]:
    """The codebook as the database holds it, parents before children."""
    return _rows(conn, "select id, label_da, label_en, parent_id, definition, colour, depth, codable from codes order by position")


def codebook_codes(codebook: Codebook) -> list[dict]:
    """The codebook as ``codes`` gives it, read from a codebook file: what the coding
    page shows when codebook.yaml has changed since the database was built."""
    return [
        {
            "id": code.id,
            "label_da": code.label_da,
            "label_en": code.label_en,
            "parent_id": code.parent,
            "codable": int(code.codable),
            "definition": code.definition,
            "colour": code.colour,
            "depth": codebook.depth(code.id),
        }
        for code in (codebook.codes[i] for i in codebook.in_tree_order())
    ]


# --- one excerpt --------------------------------------------------------------------


def excerpt(conn: sqlite3.Connection, excerpt_id: str) -> dict | None:
    found = _rows(
        conn,
        """select e.*, s.title as source_title, s.publisher as source_publisher, s.year as source_year,
                  c.title as case_title, c.municipality as case_municipality
           from excerpts e join sources s on s.id = e.source_id left join cases c on c.id = e.case_id
           where e.id = ?""",
        (excerpt_id,),
    )
    return found[0] if found else None


def context(conn: sqlite3.Connection, row: dict) -> tuple[list[dict], list[dict]]:
    """The excerpts just before and after in the source's reading order."""
    before = _rows(
        conn,
        "select id, kind, text, page from excerpts where source_id = ? and seq < ? order by seq desc limit ?",
        (row["source_id"], row["seq"], CONTEXT),
    )
    after = _rows(
        conn,
        "select id, kind, text, page from excerpts where source_id = ? and seq > ? order by seq limit ?",
        (row["source_id"], row["seq"], CONTEXT),
    )
    return list(reversed(before)), after


def codings(conn: sqlite3.Connection, excerpt_id: str) -> dict[str, dict]:
    return {
        row["code_id"]: row
        for row in _rows(conn, "select * from codings where excerpt_id = ?", (excerpt_id,))
    }


def suggestions(conn: sqlite3.Connection, excerpt_id: str) -> dict[str, dict]:
    return {
        row["code_id"]: row
        for row in _rows(conn, "select * from suggestions where excerpt_id = ?", (excerpt_id,))
    }


def rule_hits(conn: sqlite3.Connection, excerpt_id: str) -> list[dict]:
    return _rows(conn, "select * from rule_hits where excerpt_id = ? order by start", (excerpt_id,))


def decisions(conn: sqlite3.Connection, excerpt_id: str) -> list[dict]:
    """Every decision recorded for the excerpt, newest first, superseded ones included."""
    return _rows(
        conn,
        "select * from decisions where excerpt_id = ? order by timestamp desc, rowid desc",
        (excerpt_id,),
    )


def latest_decision(conn: sqlite3.Connection, excerpt_id: str, coder: str) -> dict | None:
    """The coder's most recent decision on the excerpt (a ruling or not)."""
    found = _rows(
        conn,
        "select * from decisions where excerpt_id = ? and coder = ? order by timestamp desc, rowid desc limit 1",
        (excerpt_id, coder),
    )
    return found[0] if found else None


def decision_token(decision: dict | None) -> str:
    """Names the coder's latest decision on an excerpt (its file and line, which a
    rebuild keeps): a form carries the token it was rendered with, so a save can
    tell a second submit of the same form from a new decision."""
    return f"{decision['file']}:{decision['line']}" if decision else "-"


def next_in_reading_order(conn: sqlite3.Connection, row: dict, exclude=()) -> str | None:
    """The next excerpt after ``row`` in its source that a coder codes (no headings
    or figure labels), leaving out ``exclude``."""
    kinds = ", ".join(f"'{k}'" for k in CODED_KINDS)
    for (excerpt_id,) in conn.execute(
        f"select id from excerpts where source_id = ? and seq > ? and kind in ({kinds}) order by seq",
        (row["source_id"], row["seq"]),
    ):
        if excerpt_id not in exclude:
            return excerpt_id
    return None


def highlight(text: str, hits: list[dict], colours: dict[str, str]) -> Markup:
    """The excerpt's text, escaped, with each rule hit marked (overlaps merged)."""
    spans: list[list] = []
    for hit in sorted(hits, key=lambda h: (h["start"], -h["end"])):
        if spans and hit["start"] < spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], hit["end"])
            spans[-1][2].append(hit)
        else:
            spans.append([hit["start"], hit["end"], [hit]])
    out, position = [], 0
    for start, end, members in spans:
        out.append(escape(text[position:start]))
        first = members[0]
        title = "; ".join(
            f"{'taler imod' if h.get('against') else 'regel for'} {h['code_id']}: {h['pattern']}" for h in members
        )
        out.append(
            Markup('<mark class="casebase-evidence" style="background-color: {}40; border-bottom: 2px {} {}" title="{}">{}</mark>').format(
                colours.get(first["code_id"], "#888888"),
                "dotted" if all(h.get("against") for h in members) else "solid",
                colours.get(first["code_id"], "#888888"),
                title,
                text[start:end],
            )
        )
        position = end
    out.append(escape(text[position:]))
    return Markup("").join(out)


# --- writing a decision ---------------------------------------------------------


def apply_decision(conn: sqlite3.Connection, decision: Decision, codebook: Codebook) -> None:
    """Record a human decision in a built database, in one transaction.

    The decision joins the audit trail in ``decisions``; if it is the excerpt's
    most recent human decision (as in a build, the latest across coders
    counts), the excerpt's codings become its codes with origin ``human``, and
    the code summaries of the excerpt and its case follow (``summaries.refresh``).
    """
    codes = codebook.close(decision.codes)
    with conn:
        conn.execute(
            """insert into decisions (coder, excerpt_id, recorded_excerpt_id, codes, judged, timestamp,
                                      codebook_version, note, file, line, status, adjudication)
               values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'placed', ?)""",
            (
                decision.coder,
                decision.excerpt_id,
                decision.excerpt_id,
                " ".join(codes),
                " ".join(codebook.ids),
                decision.timestamp,
                decision.codebook_version,
                decision.note,
                decision.file,
                decision.line,
                int(decision.adjudication),
            ),
        )
        newest = conn.execute(
            "select max(timestamp) from decisions where excerpt_id = ? and status != 'unplaced'",
            (decision.excerpt_id,),
        ).fetchone()[0]
        if newest > decision.timestamp:
            return
        conn.execute("delete from codings where excerpt_id = ?", (decision.excerpt_id,))
        conn.executemany(
            """insert into codings (excerpt_id, code_id, origin, score, coder, model_run, codebook_version)
               values (?, ?, 'human', 1.0, ?, null, ?)""",
            [(decision.excerpt_id, code, decision.coder, decision.codebook_version) for code in codes],
        )
        conn.execute(
            "update routes set route = 'human', expected_precision = null, confidence = null where excerpt_id = ?",
            (decision.excerpt_id,),
        )
        summaries.refresh(conn, [decision.excerpt_id])


def recorded(conn: sqlite3.Connection) -> set[tuple[str, bool, int]]:
    """(coder, ruling or not, line in that file) of every decision the database holds."""
    return {(row[0], bool(row[1]), row[2]) for row in conn.execute("select coder, coalesce(adjudication, 0), line from decisions")}


# --- review queues --------------------------------------------------------------

_HUMAN = "select excerpt_id from decisions where status != 'unplaced' and excerpt_id is not null"
# The rules and the model disagree (database.DISAGREEING, the partial indexes' condition).
_DISAGREEING = "(s.rule_hit != (s.score >= s.threshold))"
# A code with fewer codings than this has its uncoded queue read from its codings and
# sorted; a commoner one is found walking the corpus in reading order.
FEW_CODINGS = 20_000


def _few_codings(conn: sqlite3.Connection, code: str) -> bool:
    return conn.execute(f"select count(*) from (select 1 from codings where code_id = ? limit {FEW_CODINGS})", [code]).fetchone()[0] < FEW_CODINGS


@dataclass
class QueueItem:
    excerpt_id: str
    text: str
    source_id: str
    kind: str
    code_id: str | None = None
    score: float | None = None
    threshold: float | None = None
    rule_hit: bool | None = None


# A queue's count stops here: counting further would read the whole corpus on every
# queue page (22 s at 200 k excerpts); the page says "over 1.000" instead: enough to
# choose a queue by.
COUNT_LIMIT = 1_000

_SHORT_HEADING = (
    f"(e.kind = 'heading' and length(trim(e.text)) - length(replace(trim(e.text), ' ', '')) < {active_learning.SHORT_HEADING})"
)


def _uncertain_sql(review: bool) -> str:
    """One code's suggestions nearest its threshold, in one route class (the router's
    ``review`` or the rest): walks the index on (code_id, distance) and stops at the limit."""
    return f"""select s.excerpt_id, e.text, e.source_id, e.kind, s.code_id, s.score, s.threshold, null as rule_hit
               from suggestions s join excerpts e on e.id = s.excerpt_id
               left join routes r on r.excerpt_id = s.excerpt_id
               where s.code_id = :code and coalesce(r.route, 'review') {'=' if review else '!='} 'review'
                 and s.excerpt_id not in ({_HUMAN})
                 and e.kind != 'figure' and not {_SHORT_HEADING}
               order by s.distance, e.source_id, e.seq
               limit :limit"""


def _uncertain(conn: sqlite3.Connection, code: str | None, wanted: int):
    """The "uncertain" queue in order, enough of it for ``wanted`` excerpts.

    What one more human label teaches the model most (coding.active_learning):
    excerpts the router sent to review first; then the codes take turns, each with
    its prediction nearest the threshold, so the list is not one code's threshold
    band; figure labels and headings of three words or fewer left out (excerpts with
    the same text have the same id, so a text is listed once). Turn t
    holds each code's t-th row, so the first ``wanted`` turns hold at least
    ``wanted`` excerpts: each code's first ``wanted`` rows are all the turns need,
    and the other route class is read only when the first runs short."""
    codes = [code] if code else [row[0] for row in conn.execute("select id from codes order by id")]
    for review in (True, False):
        turns = []
        for code_id in codes:
            rows = _rows(conn, _uncertain_sql(review), {"code": code_id, "limit": wanted})
            turns.extend(((turn, code_id), row) for turn, row in enumerate(rows))
        turns.sort(key=lambda pair: pair[0])
        yield from (row for _, row in turns)


def _queue_sql(kind: str, code: str | None, coder: str | None, few_codings: bool = False) -> tuple[str, str, dict]:
    """The queue's rows (one or more per excerpt), its ORDER BY and parameters, for every queue but
    "uncertain" (``_uncertain``). Each is driven by what bounds it (the decisions,
    or an index in the queue's order), so reading its first rows does not sort the
    corpus. A code filter is written into the SQL only when there is one: an
    ``:code is null or ...`` keeps SQLite from using the index on it."""
    kinds = ", ".join(f"'{k}'" for k in CODED_KINDS)
    params = {"code": code, "coder": coder}
    # A look-up per excerpt read (the codings' primary key), not a list of every
    # excerpt coded with the code (400,000 of a million for a common code).
    coded_with = "and exists (select 1 from codings c where c.excerpt_id = e.id and c.code_id = :code)" if code else ""
    if kind == "disagreement":
        # The partial indexes on the disagreeing scores, in distance order (database.DISAGREEING).
        return (
            f"""select s.excerpt_id, e.text, e.source_id, e.kind, s.code_id, s.score, s.threshold, s.rule_hit
                from suggestions s join excerpts e on e.id = s.excerpt_id
                where {_DISAGREEING} and s.excerpt_id not in ({_HUMAN}) {'and s.code_id = :code' if code else ''}
""",
            "order by s.distance desc, e.source_id, e.seq",
            params,
        )
    if kind == "uncoded":
        # "+e.kind": SQLite walks reading order (source_id, seq) and stops at the limit;
        # by the index on kind it sorted every excerpt first. A code with few codings
        # is read from them instead and sorted: walking the corpus for them would
        # read most of it.
        driven = code is not None and few_codings
        return (
            f"""select e.id as excerpt_id, e.text, e.source_id, e.kind, :code as code_id,
                       null as score, null as threshold, null as rule_hit
                from {'codings c cross join excerpts e on e.id = c.excerpt_id' if driven else 'excerpts e'}
                where +e.kind in ({kinds}) and e.id not in ({_HUMAN}) {'and c.code_id = :code' if driven else coded_with}
""",
            "order by e.source_id, e.seq",
            params,
        )
    if kind == "unjudged":
        # The latest decision per excerpt judged a codebook without this code: the
        # excerpt is not a negative for it, only not yet looked at.
        return (
            f"""with latest as (
                  select excerpt_id, judged, max(timestamp) from decisions
                  where status != 'unplaced' group by excerpt_id
                )
                select e.id as excerpt_id, e.text, e.source_id, e.kind, c.id as code_id,
                       null as score, null as threshold, null as rule_hit
                from latest l join excerpts e on e.id = l.excerpt_id join codes c
                where (' ' || l.judged || ' ') not like ('% ' || c.id || ' %')
                  {'and c.id = :code' if code else ''}
""",
            "order by e.source_id, e.seq",
            params,
        )
    if kind == "double":
        return (
            f"""with others as (
                  select distinct excerpt_id from decisions where status != 'unplaced' and coder != :coder
                  except select excerpt_id from decisions where status != 'unplaced' and coder = :coder
                )
                select e.id as excerpt_id, e.text, e.source_id, e.kind, :code as code_id,
                       null as score, null as threshold, null as rule_hit
                from others o cross join excerpts e on e.id = o.excerpt_id
                where 1 {coded_with}
""",
            "order by e.source_id, e.seq",
            params,
        )
    if kind == "conflict":
        # Coders whose current decisions differ, and no ruling made after them: left
        # out of training until an adjudicator rules (decision_files.Resolution.settled).
        return (
            f"""with current as (
                  select coder, excerpt_id, codes, max(timestamp) as ts from decisions
                  where status != 'unplaced' and coalesce(adjudication, 0) = 0 and excerpt_id is not null
                  group by coder, excerpt_id
                ), readings as (
                  select excerpt_id, count(distinct codes) as variants, max(ts) as latest
                  from current group by excerpt_id having count(distinct codes) > 1
                ), rulings as (
                  select excerpt_id, max(timestamp) as ts from decisions
                  where adjudication = 1 and status != 'unplaced' group by excerpt_id
                )
                select e.id as excerpt_id, e.text, e.source_id, e.kind, :code as code_id,
                       null as score, null as threshold, null as rule_hit
                from readings c cross join excerpts e on e.id = c.excerpt_id
                left join rulings r on r.excerpt_id = c.excerpt_id
                where (r.ts is null or r.ts < c.latest)
                  {"and c.excerpt_id in (select excerpt_id from current where (' ' || codes || ' ') like ('% ' || :code || ' %'))" if code else ''}
""",
            "order by e.source_id, e.seq",
            params,
        )
    if kind == "proposed":
        # Excerpts a coder queued for a new code from a candidate theme (coding.new_codes),
        # best first: not yet judged for it until a decision judged a codebook with it.
        return (
            """select e.id as excerpt_id, e.text, e.source_id, e.kind, q.code_id,
                       null as score, null as threshold, null as rule_hit
                from queued q join excerpts e on e.id = q.excerpt_id
                where (:code is null or q.code_id = :code)
                  and not exists (select 1 from decisions d where d.excerpt_id = q.excerpt_id and d.status != 'unplaced'
                                  and (' ' || d.judged || ' ') like ('% ' || q.code_id || ' %'))
""",
            "order by q.timestamp, q.rowid",
            {"code": code},
        )
    raise ValueError(f"unknown queue {kind!r}")


def _stream(conn: sqlite3.Connection, sql: str, params):
    """The rows as dicts, read from the cursor as they are needed."""
    cursor = conn.execute(sql, params)
    columns = [c[0] for c in cursor.description]
    for row in cursor:
        yield dict(zip(columns, row))


def queue(
    conn: sqlite3.Connection, kind: str, code: str | None = None, coder: str | None = None, limit: int = 50, exclude=()
) -> list[QueueItem]:
    """The queue's first ``limit`` excerpts, leaving out the ids in ``exclude`` (the
    one just coded, the ones a coder skipped). Reads only as far as it needs."""
    if kind == "uncertain":
        rows = _uncertain(conn, code, limit + len(exclude))
    elif kind in QUEUES:
        sql, order, params = _queue_sql(kind, code, coder, code is not None and _few_codings(conn, code))
        rows = _stream(conn, f"{sql} {order}", params)
    else:
        raise ValueError(f"unknown queue {kind!r}")
    items, seen = [], set(exclude)
    for row in rows:
        # One line per excerpt: an excerpt near the cut for two codes is one thing to read.
        if row["excerpt_id"] in seen:
            continue
        seen.add(row["excerpt_id"])
        row["rule_hit"] = None if row["rule_hit"] is None else bool(row["rule_hit"])
        items.append(QueueItem(**row))
        if len(items) >= limit:
            break
    return items


def _count_sql(kind: str, code: str | None, coder: str | None) -> tuple[str, dict]:
    """The excerpts of a queue, unordered (what counting it needs)."""
    if kind == "uncertain":
        return (
            f"""select s.excerpt_id from suggestions s join excerpts e on e.id = s.excerpt_id
                where s.excerpt_id not in ({_HUMAN}) {'and s.code_id = :code' if code else ''}
                  and e.kind != 'figure' and not {_SHORT_HEADING}""",
            {"code": code},
        )
    if kind == "disagreement":
        # A rule fired and the model said no, or the model said yes and no rule fired:
        # read from the partial index of exactly those scores.
        return (
            f"""select s.excerpt_id from suggestions s
                where {_DISAGREEING} and s.excerpt_id not in ({_HUMAN}) {'and s.code_id = :code' if code else ''}""",
            {"code": code},
        )
    # Counting is not ordered: the uncoded excerpts of a code are read from its codings.
    sql, _, params = _queue_sql(kind, code, coder, few_codings=code is not None)
    return f"select excerpt_id from ({sql})", params


def queue_counts(conn: sqlite3.Connection, code: str | None = None, coder: str | None = None) -> dict[str, int]:
    """Excerpts per queue, each counted up to ``COUNT_LIMIT + 1`` (more means "over
    COUNT_LIMIT"): a count reads no further than that, whatever the corpus's size."""
    counts = {}
    for kind in QUEUES:
        sql, params = _count_sql(kind, code, coder)
        counts[kind] = conn.execute(
            f"select count(*) from (select distinct excerpt_id from ({sql}) limit {COUNT_LIMIT + 1})", params
        ).fetchone()[0]
    return counts


def decisions_since_training(conn: sqlite3.Connection) -> int:
    """Human decisions recorded after the current model was trained (all of them if none was)."""
    run = build_info(conn).get("model_run")
    created = None
    if run:
        found = conn.execute("select created from model_runs where id = ?", (run,)).fetchone()
        created = found[0] if found else None
    if created is None:
        return conn.execute("select count(*) from decisions where status != 'unplaced'").fetchone()[0]
    return conn.execute(
        "select count(*) from decisions where status != 'unplaced' and timestamp > ?", (created,)
    ).fetchone()[0]
