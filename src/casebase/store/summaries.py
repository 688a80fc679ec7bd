"""What the publishing side reads about codes, kept next to the codings.

- ``excerpts.codes``: the excerpt's code ids as a JSON array, in codebook order,
  so Datasette's array facet and filter (``codes__arraycontains=``) work;
  ``excerpts.origins`` the origins of its codings (human, model, rule) as a JSON
  array, ``excerpts.route`` its route (human, auto, review): filters for researchers;
- ``case_codes(case_id, code_id, excerpts, evidence)``: a case's themes. A theme
  rests on evidence a reader accepts (``EVIDENCE``): a human coding (``menneske``),
  a rule (``regel``: the rules coded it, or the codebook's patterns fired for the
  code in the excerpt), or the model on the case's body text where the router
  trusted it alone (``model``: not a heading, figure label or short text, and
  route ``auto``). ``excerpts`` counts the excerpts that carry it, ``evidence`` is
  the strongest kind among them;
- ``cases.codes``: the case's theme ids as a JSON array;
- ``facet_counts(table_name, column_name, value, count)``: the excerpt table's facets
  counted over the whole table (what its unfiltered page shows, without reading a
  million rows; publish/web/facets.py). ``COUNTED`` names the columns: a plain
  column counts its values, a JSON list column (``set``) the rows listing each item.

They are derived from ``codings``, ``rule_hits`` and ``routes`` only: written by the
build's store stage and refreshed for the excerpts a coder's save touches
(``coding_db.apply_decision``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import sqlite_utils

# Origins in a fixed order, so equal sets read the same.
ORIGIN_ORDER = "case origin when 'human' then 0 when 'model' then 1 else 2 end"

_EXCERPT_CODES = f"""
update excerpts set
  codes = (
    select json_group_array(code_id) from (
      select c.code_id from codings c join codes k on k.id = c.code_id
      where c.excerpt_id = excerpts.id
      order by k.position
    )
  ),
  origins = (
    select json_group_array(origin) from (
      select distinct origin from codings where excerpt_id = excerpts.id order by {ORIGIN_ORDER}
    )
  ),
  route = (select route from routes where excerpt_id = excerpts.id)
"""

# Excerpt kinds that are a case's body text; headings and figure labels name a
# case, they do not describe what it did.
BODY_KINDS = ("paragraph", "quote", "case_field", "answer")
# Evidence kinds, strongest first (the number is the strength, lower is stronger).
EVIDENCE = {1: "menneske", 2: "regel", 3: "model"}

# One row per coding of a case's excerpt that counts as evidence for the case's
# theme: (case_id, code_id, excerpt_id, strength). A model coding counts only on
# body text the router sent to auto; a rule hit for the code or one of its
# sub-codes (which bring their parent) makes any coding rule evidence.
EVIDENCE_SQL = f"""
with recursive ancestry(code_id, ancestor) as (
  select id, id from codes
  union
  select a.code_id, k.parent_id from ancestry a join codes k on k.id = a.ancestor where k.parent_id is not null
),
graded as (
  select e.case_id, c.code_id, c.excerpt_id,
         case
           when c.origin = 'human' then 1
           when c.origin = 'rule' then 2
           when exists (select 1 from rule_hits h join ancestry a on a.code_id = h.code_id
                        where h.excerpt_id = c.excerpt_id and h.against = 0 and a.ancestor = c.code_id) then 2
           when c.origin = 'model' and e.kind in ({", ".join(f"'{k}'" for k in BODY_KINDS)})
                and (select r.route from routes r where r.excerpt_id = c.excerpt_id) = 'auto' then 3
         end as strength
  from codings c join excerpts e on e.id = c.excerpt_id
  where e.case_id is not null {{where}}
)
select case_id, code_id, excerpt_id, strength from graded where strength is not null
"""

_CASE_CODES = f"""
insert into case_codes (case_id, code_id, excerpts, evidence)
select case_id, code_id, count(*),
       case min(strength) {" ".join(f"when {n} then '{name}'" for n, name in EVIDENCE.items())} end
from ({EVIDENCE_SQL})
group by case_id, code_id
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


# The excerpt table's facets (metadata.yml) counted over the whole table, by kind of facet.
COUNTED = {"excerpts": {"column": ("source_id", "kind", "section", "route"), "set": ("codes", "origins")}}


def _counting_sql(table: str, column: str, kind: str, where: str = "") -> str:
    """(value, count) over the table's rows, as the facet of this kind counts them."""
    if kind == "set":
        return f"select j.value, count(*) from {table} t join json_each(t.{column}) j {where} group by j.value"
    return f"select {column}, count(*) from {table} where {column} is not null {where.replace('where', 'and', 1)} group by {column}"


def write_facet_counts(conn: sqlite3.Connection) -> None:
    conn.execute(
        """create table facet_counts (table_name text, column_name text, value text, count integer,
           primary key (table_name, column_name, value))"""
    )
    for table, kinds in COUNTED.items():
        for kind, columns in kinds.items():
            for column in columns:
                conn.execute(f"insert into facet_counts select ?, ?, * from ({_counting_sql(table, column, kind)})", [table, column])


def _facet_values(conn: sqlite3.Connection, ids: list[str]) -> dict[tuple[str, str], dict[str, int]]:
    """(column, value) -> rows of these excerpts counted, for every counted column."""
    marks = ", ".join("?" for _ in ids)
    counted: dict[tuple[str, str], int] = {}
    for kind, columns in COUNTED["excerpts"].items():
        for column in columns:
            sql = _counting_sql("excerpts", column, kind, where=f"where {'t.' if kind == 'set' else ''}id in ({marks})")
            for value, count in conn.execute(sql, ids):
                counted[(column, value)] = count
    return counted


def write(db: sqlite_utils.Database) -> None:
    """Derive every summary from the codings of a database being built."""
    db["case_codes"].create(
        {"case_id": str, "code_id": str, "excerpts": int, "evidence": str},
        pk=("case_id", "code_id"),
        foreign_keys=[("case_id", "cases", "id"), ("code_id", "codes", "id")],
    )
    conn = db.conn
    # Excerpts are written with empty lists; the coded ones (a quarter of a big
    # survey) get their codes and origins, every one its route.
    conn.execute(f"{_EXCERPT_CODES} where id in (select excerpt_id from codings)")
    conn.execute("update excerpts set route = (select route from routes where excerpt_id = excerpts.id) where route is null")
    conn.execute(_CASE_CODES.format(where=""))
    conn.execute(_CASES_CODES)
    db["case_codes"].create_index(["code_id"])
    write_facet_counts(conn)


def refresh(conn: sqlite3.Connection, excerpt_ids: Iterable[str]) -> None:
    """Bring the summaries of these excerpts and their cases up to date with
    ``codings`` (call inside the transaction that changed them). A database
    built before the summaries (or their evidence) existed is left as it is: its
    inputs fingerprint makes the next build a full one."""
    if not conn.execute("select 1 from pragma_table_info('case_codes') where name = 'evidence'").fetchone():
        return
    ids = list(dict.fromkeys(excerpt_ids))
    if not ids:
        return
    marks = ", ".join("?" for _ in ids)
    counted = conn.execute("select 1 from sqlite_master where name = 'facet_counts'").fetchone() is not None
    before = _facet_values(conn, ids) if counted else {}
    conn.execute(f"{_EXCERPT_CODES} where id in ({marks})", ids)
    if counted:
        # The whole table's facet counts follow the excerpts' new codes, origins and route.
        after = _facet_values(conn, ids)
        changes = [(column, value, after.get((column, value), 0) - before.get((column, value), 0)) for column, value in {*before, *after}]
        conn.executemany(
            """insert into facet_counts (table_name, column_name, value, count) values ('excerpts', ?, ?, ?)
               on conflict do update set count = count + excluded.count""",
            [change for change in changes if change[2]],
        )
        conn.execute("delete from facet_counts where count <= 0")
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
