"""What the publishing side reads about codes, kept next to the codings.

- ``excerpts.codes``: the excerpt's code ids as a JSON array, in codebook order,
  so Datasette's array facet and filter (``codes__arraycontains=``) work;
- ``case_codes(case_id, code_id, excerpts)``: a case's themes, the codes of its
  excerpts with how many excerpts carry each;
- ``cases.codes``: the case's code ids as a JSON array.

They are derived from ``codings`` only: written by the build's store stage and
refreshed for the excerpts a coder's save touches (``review.apply_decision``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import sqlite_utils

_EXCERPT_CODES = """
update excerpts set codes = (
  select json_group_array(code_id) from (
    select c.code_id from codings c join codes k on k.id = c.code_id
    where c.excerpt_id = excerpts.id
    order by k.position
  )
)
"""

_CASE_CODES = """
insert into case_codes (case_id, code_id, excerpts)
select e.case_id, c.code_id, count(*)
from codings c join excerpts e on e.id = c.excerpt_id
where e.case_id is not null {where}
group by e.case_id, c.code_id
"""

_CASES_CODES = """
update cases set codes = (
  select json_group_array(code_id) from (
    select cc.code_id from case_codes cc join codes k on k.id = cc.code_id
    where cc.case_id = cases.id
    order by k.position
  )
)
"""


def write(db: sqlite_utils.Database) -> None:
    """Derive every summary from the codings of a database being built."""
    db["case_codes"].create(
        {"case_id": str, "code_id": str, "excerpts": int},
        pk=("case_id", "code_id"),
        foreign_keys=[("case_id", "cases", "id"), ("code_id", "codes", "id")],
    )
    conn = db.conn
    # Excerpts are written with an empty list; only the coded ones (a quarter of a
    # big survey) are rewritten, not every row of the table.
    conn.execute(f"{_EXCERPT_CODES} where id in (select excerpt_id from codings)")
    conn.execute(_CASE_CODES.format(where=""))
    conn.execute(_CASES_CODES)
    db["case_codes"].create_index(["code_id"])


def refresh(conn: sqlite3.Connection, excerpt_ids: Iterable[str]) -> None:
    """Bring the summaries of these excerpts and their cases up to date with
    ``codings`` (call inside the transaction that changed them). A database
    built before the summaries existed is left as it is."""
    if not conn.execute("select 1 from sqlite_master where type = 'table' and name = 'case_codes'").fetchone():
        return
    ids = list(dict.fromkeys(excerpt_ids))
    if not ids:
        return
    marks = ", ".join("?" for _ in ids)
    conn.execute(f"{_EXCERPT_CODES} where id in ({marks})", ids)
    cases = [
        row[0]
        for row in conn.execute(f"select distinct case_id from excerpts where id in ({marks}) and case_id is not null", ids)
    ]
    if not cases:
        return
    case_marks = ", ".join("?" for _ in cases)
    conn.execute(f"delete from case_codes where case_id in ({case_marks})", cases)
    conn.execute(_CASE_CODES.format(where=f"and e.case_id in ({case_marks})"), cases)
    conn.execute(f"{_CASES_CODES} where id in ({case_marks})", cases)
