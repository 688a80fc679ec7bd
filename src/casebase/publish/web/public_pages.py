"""The published knowledge base for researchers and policymakers.

- code chips: every ``codes`` column (a JSON array of code ids, see
  ``casebase.summaries``) is shown as coloured chips that filter by the code;
  on excerpts the chips say whether a human, the model or a rule coded it;
- links from query results to an excerpt's context, its source and its case;
- the front page's ways in: cases per code, search, charts;
- the case page: fields, themes as chips, the excerpts carrying each theme,
  similar cases;
- ``/-/casebase/charts``: code frequencies and the code × source matrix as
  SVG drawn on the server (no JavaScript, nothing loaded from elsewhere), in
  public and in coding mode.

Everything taken from the corpus reaches the page through Jinja's autoescape
or ``Markup.format``, which escapes its arguments.
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import urlencode

from datasette.utils import tilde_decode, tilde_encode
from datasette.utils.asgi import NotFound, Response
from markupsafe import Markup

from casebase.ingest.segment import CASE_COLUMNS
from casebase.publish import serving
from casebase.store import summaries
from casebase.publish.web import source_reader

PREFIX = "/-/casebase"
CHARTS_PATH = f"{PREFIX}/charts"
ORIGINS_DA = {"human": "menneske", "model": "model", "rule": "regel"}
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
GREY = "#718096"


def routes():
    return [(rf"^{CHARTS_PATH}$", charts_page)] + source_reader.routes()


def database_name(datasette) -> str | None:
    """The served casebase database: the configured file, else the first one attached."""
    if serving.config(datasette).get("db"):
        return serving.database_name(datasette)
    names = [name for name in datasette.databases if not name.startswith("_")]
    return names[0] if names else None


def _colour(value: str | None) -> str:
    return value if value and _COLOUR.match(value) else GREY


# What the cells of a page read for every row (the codebook, the model's codes, the
# cases' theme counts), kept per state of the database file: a table page of 100
# rows issues a fixed number of queries, not a few per row. A rebuild serves a new
# file and a coder's save changes this one (its WAL file, until a checkpoint moves
# the pages into the file itself), so either reads them again.
_PER_FILE: dict[tuple[str, str], tuple[tuple, object]] = {}


def _file_state(db) -> tuple | None:
    if not getattr(db, "path", None):
        return None
    try:
        stat = os.stat(db.path)
    except OSError:
        return None
    try:
        wal = os.stat(db.path + "-wal")
        wal_state = (wal.st_ino, wal.st_size, wal.st_mtime_ns)
    except OSError:
        wal_state = None
    return id(db), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, wal_state


async def _per_file(db, what: str, load):
    state = _file_state(db)
    key = (str(getattr(db, "path", None)), what)
    held = _PER_FILE.get(key)
    if state is not None and held is not None and held[0] == state:
        return held[1]
    value = await load(db)
    if state is not None:
        _PER_FILE[key] = (state, value)
    return value


async def _load_codes(db) -> dict[str, dict]:
    if not await db.table_exists("codes"):
        return {}
    rows = await db.execute("select id, label_da, parent_id, colour, depth from codes order by position")
    return {row["id"]: {**dict(row), "colour": _colour(row["colour"])} for row in rows}


async def _codes(db) -> dict[str, dict]:
    """The codebook by id, in codebook order (an older build without codes: empty)."""
    return await _per_file(db, "codes", _load_codes)


async def _load_trained_codes(db) -> set[str]:
    if not await db.table_exists("model_runs"):
        return set()
    found = (
        await db.execute(
            "select r.trained_codes from build_info b join model_runs r on r.id = b.value where b.key = 'model_run'"
        )
    ).first()
    return set((found[0] or "").split()) if found else set()


async def _load_case_theme_counts(db) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    if await db.table_exists("case_codes"):
        for r in await db.execute("select case_id, code_id, excerpts from case_codes"):
            counts.setdefault(r["case_id"], {})[r["code_id"]] = r["excerpts"]
    return counts


def casefold(text):
    """Unicode case folding for SQL (registered as ``casefold()``): SQLite's lower()
    leaves Æ, Ø and Å as they are."""
    return None if text is None else str(text).casefold()


def chip(code: dict, href: str | None = None, origin: str | None = None, score=None, count=None, evidence: str | None = None) -> Markup:
    """One code as a coloured chip; a model's coding is drawn hollow (a prediction).
    ``evidence``: what a case's theme rests on (menneske, regel, model; see
    ``store.summaries``), in the chip's title and ``data-evidence``."""
    colour = code["colour"]
    hollow = origin == "model"
    style = (
        "display:inline-block;border-radius:1em;padding:0.05em 0.6em;margin:0.1em 0.25em 0.1em 0;"
        "font-size:0.85em;text-decoration:none;white-space:nowrap;"
        + (f"color:{colour};background:#fff;border:1px dashed {colour};" if hollow else f"color:#fff;background:{colour};border:1px solid {colour};")
    )
    title = code["label_da"]
    extra = Markup("")
    if origin:
        title += f" – kodet af {ORIGINS_DA.get(origin, origin)}"
        if origin == "model" and score is not None:
            title += f" ({score:.2f})"
        extra = Markup(' <small style="opacity:0.85">{}</small>').format(ORIGINS_DA.get(origin, origin))
    if count is not None:
        extra += Markup(' <small style="opacity:0.85">{}</small>').format(count)
    if evidence:
        title += f" – bevis: {evidence}"
    tag = "a" if href else "span"
    return Markup('<{} class="casebase-chip" data-code="{}" style="{}" title="{}"{}{}>{}{}</{}>').format(
        Markup(tag),
        code["id"],
        style,
        title,
        Markup(' data-evidence="{}"').format(evidence) if evidence else Markup(""),
        Markup(' href="{}"').format(href) if href else Markup(""),
        code["label_da"],
        extra,
        Markup(tag),
    )


def _filter_url(datasette, database: str, table: str, code_id: str) -> str:
    return datasette.urls.table(database, table) + "?" + urlencode({"codes__arraycontains": code_id})


def _row_url(datasette, database: str, table: str, pk: str) -> str:
    return datasette.urls.row(database, table, tilde_encode(str(pk)))


def _keys(row) -> list[str]:
    return list(row.keys()) if hasattr(row, "keys") else []


# --- cells ------------------------------------------------------------------------


def render_cell(row, value, column, table, database, datasette):
    """Chips for ``codes`` columns, links for query results; None for anything else
    (called for every cell Datasette shows, so it decides without I/O)."""
    if value is None:
        return None
    if column == "codes" and isinstance(value, str) and value.startswith("["):
        return _codes_cell(row, value, table, database, datasette)
    if table is None:
        cell = _query_cell(row, value, column, database, datasette)
        if cell is not None:
            return cell
        if column == "oprindelse" and isinstance(value, str) and value.startswith("["):
            try:
                origins = json.loads(value)
            except ValueError:
                return None
            return ", ".join(ORIGINS_DA.get(o, str(o)) for o in origins) if isinstance(origins, list) else None
        if column in ("kode", "kode_b") and isinstance(value, str):
            return _code_cell(value, database, datasette)
        if column == "uddrag" and isinstance(value, str):
            return Markup('<a href="{}">{}</a><br><a href="{}">kontekst</a>').format(
                _row_url(datasette, database, "excerpts", value),
                value,
                datasette.urls.query(database, "excerpt_context") + "?" + urlencode({"uddrag": value}),
            )
        if column == "kilde" and isinstance(value, str):
            return Markup('<a href="{}">{}</a>').format(_row_url(datasette, database, "sources", value), value)
        if column == "case_id" and isinstance(value, str):
            keys = _keys(row)
            shown = next((row[k] for k in ("casetitel", "titel") if k in keys and row[k]), value)
            return Markup('<a href="{}">{}</a>').format(_row_url(datasette, database, "cases", value), shown)
    if table == "excerpts" and column == "seq" and "id" in _keys(row):
        return Markup('{} <a href="{}" title="Uddraget med dets naboer i kilden">kontekst</a>').format(
            value, datasette.urls.query(database, "excerpt_context") + "?" + urlencode({"uddrag": row["id"]})
        )
    return None


# Search hits as FTS5's highlight() marks them in the search query (metadata.yml).
HIT_OPEN, HIT_CLOSE = "⟦", "⟧"
_HIT = re.compile(f"{HIT_OPEN}([^{HIT_OPEN}{HIT_CLOSE}]*){HIT_CLOSE}")
# Query columns of a case field, linked to the cases with that value.
_CASE_VALUE_COLUMNS = {"tema": "source_theme", "kommune": "municipality", "område": "area"}


def _query_cell(row, value, column, database, datasette):
    """Canned-query cells that lead on: marked search hits, case values that list
    their cases, and counts of co-occurrence and matrix queries that open the
    excerpts (or cases) behind them. Which query a row comes from shows in its
    columns (render_cell is not told)."""
    keys = _keys(row)
    if column == "tekst" and isinstance(value, str) and HIT_OPEN in value:
        # The text is escaped first; only then do the marks become <mark>.
        return Markup(_HIT.sub(r"<mark>\1</mark>", str(Markup.escape(value))))
    if column in _CASE_VALUE_COLUMNS and isinstance(value, str) and value:
        url = datasette.urls.table(database, "cases") + "?" + urlencode({_CASE_VALUE_COLUMNS[column]: value})
        return Markup('<a href="{}">{}</a>').format(url, value)
    if column == "case_ids" and isinstance(value, str):
        return Markup(" ").join(
            Markup('<a href="{}">{}</a>').format(_row_url(datasette, database, "cases", case), case) for case in value.split()
        )
    if not isinstance(value, int) or isinstance(value, bool) or value == 0 or "kode" not in keys:
        return None
    if column in ("uddrag", "cases") and "kode_b" in keys:
        # code_cooccurrence and case_code_cooccurrence: both codes at once.
        target = "excerpts" if column == "uddrag" else "cases"
        url = datasette.urls.table(database, target) + "?" + urlencode(
            [("codes__arraycontains", row["kode"]), ("codes__arraycontains", row["kode_b"])]
        )
    elif column == "uddrag" and "uddrag_i_kilden" in keys:
        # code_source_matrix: the code's excerpts in the source.
        url = datasette.urls.table(database, "excerpts") + "?" + urlencode(
            {"codes__arraycontains": row["kode"], "source_id": row["kilde"]}
        )
    elif column == "uddrag" and "case_id" in keys and "bevis" in keys:
        # code_case_matrix: the excerpts that carry the theme, on the case page.
        url = _row_url(datasette, database, "cases", row["case_id"]) + f"#tema-{row['kode']}"
    else:
        return None
    return Markup('<a href="{}">{}</a>').format(url, value)


def _codes_cell(row, value: str, table, database, datasette):
    try:
        ids = json.loads(value)
    except ValueError:
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return None
    keys = _keys(row)
    excerpt_id = row["id"] if table == "excerpts" and "id" in keys else (row["uddrag"] if table is None and "uddrag" in keys else None)
    case_id = row["id"] if table == "cases" and "id" in keys else None
    target = "excerpts" if excerpt_id or table == "excerpts" else "cases"

    async def inner():
        db = datasette.get_database(database)
        codes = await _codes(db)
        if not codes or not all(i in codes for i in ids):
            return None
        origins, counts = {}, {}
        if excerpt_id:
            # The excerpt table's origins, or a canned query's (Søg, context, reading order).
            column = next((k for k in ("origins", "oprindelse") if k in keys), None)
            origins = await _origins(db, excerpt_id, ids, row[column] if column else None)
        if case_id:
            counts = (await _per_file(db, "case_theme_counts", _load_case_theme_counts)).get(case_id, {})
        if not ids:
            return Markup('<span style="color:#999">–</span>')
        return Markup("").join(
            chip(
                codes[i],
                _filter_url(datasette, database, target, i),
                *(origins.get(i) or (None, None)),
                count=counts.get(i),
            )
            for i in ids
        )

    return inner()


async def _origins(db, excerpt_id: str, ids: list[str], row_origins: str | None) -> dict[str, tuple]:
    """(origin, score) of each of an excerpt's codes, from its row where the row says
    it: one origin for all, or the model's and the rules' (the model codes the codes
    it was trained for, the rules the rest). Only an excerpt that mixes a human's
    codes with others (a code added after the decision) is read from ``codings``.
    The score of a model's coding is on the excerpt's row and coding pages."""
    try:
        found = json.loads(row_origins) if row_origins else None
    except ValueError:
        found = None
    if isinstance(found, list) and len(found) == 1:
        return {i: (found[0], None) for i in ids}
    if isinstance(found, list) and set(found) <= {"model", "rule"}:
        trained = await _per_file(db, "trained_codes", _load_trained_codes)
        return {i: ("model" if i in trained else "rule", None) for i in ids}
    return {
        r["code_id"]: (r["origin"], r["score"])
        for r in await db.execute("select code_id, origin, score from codings where excerpt_id = ?", [excerpt_id])
    }


def _code_cell(value: str, database, datasette):
    async def inner():
        codes = await _codes(datasette.get_database(database))
        if value not in codes:
            return None
        return chip(codes[value], _filter_url(datasette, database, "cases", value))

    return inner()


# --- the front page and the case page ---------------------------------------------


def extra_template_vars(view_name, table, request, datasette):
    """Data for the front page, the case page, the find_cases form and the page links of
    a paged canned query (an awaitable dict), else None."""
    if view_name == "index":

        async def front():
            return {"casebase_front": await front_page(datasette)}

        return front()
    if view_name == "row" and table == "cases" and request is not None:
        database, pks = request.url_vars.get("database"), request.url_vars.get("pks")
        if database and pks:

            async def case():
                return {"casebase_case": await case_page(datasette, tilde_decode(database), tilde_decode(pks))}

            return case()
    if request is not None and request.url_vars.get("table") == FIND_CASES and request.url_vars.get("database"):

        async def finder():
            return {"casebase_find": await find_cases_form(datasette, tilde_decode(request.url_vars["database"]), request)}

        return finder()
    if request is not None and request.url_vars.get("table"):
        # A canned query is rendered by the table view; query.html shows the links
        # only when the query has a :side parameter.

        async def pages():
            return {"casebase_pages": page_links(request)}

        return pages()
    return None


FIND_CASES = "find_cases"
PAGE_SIZE = 1000  # rows per page of a paged canned query (its :side; metadata.yml)


def page_links(request) -> dict:
    """The page a paged canned query shows (``side``) and the URLs of the pages
    before and after it, from the request's own arguments."""
    try:
        page = max(int(request.args.get("side") or 1), 1)
    except ValueError:
        page = 1
    args = [(key, value) for key in request.args.keys() if key != "side" for value in request.args.getlist(key)]

    def url(n):
        return request.path + "?" + urlencode(args + [("side", str(n))])

    return {"page": page, "first_row": (page - 1) * PAGE_SIZE + 1, "size": PAGE_SIZE,
            "previous_url": url(page - 1) if page > 1 else None, "next_url": url(page + 1)}


async def _casebase_database(datasette, database: str):
    """The named database if it is a casebase build (it has case codes), else None."""
    try:
        db = datasette.get_database(database)
    except KeyError:
        return None
    return db if await db.table_exists("case_codes") else None


async def find_cases_form(datasette, database: str, request) -> dict | None:
    """What the Danish form of ``find_cases`` offers: the themes by label (with
    their number of cases) and the values the text fields can take."""
    db = await _casebase_database(datasette, database)
    if db is None:
        return None
    codes = await _codes(db)
    counts = {r["code_id"]: r["n"] for r in await db.execute("select code_id, count(*) as n from case_codes group by code_id")}
    values = {}
    for column in ("municipality", "area", "target_group"):
        values[column] = [
            r[0] for r in await db.execute(f"select distinct {column} from cases where {column} is not null order by casefold({column})")
        ]
    return {
        "codes": [{**code, "cases": counts.get(code_id, 0)} for code_id, code in codes.items()],
        "values": values,
        "pages": page_links(request),
    }


async def front_page(datasette) -> dict | None:
    name = database_name(datasette)
    if name is None:
        return None
    db = datasette.get_database(name)
    if not await db.table_exists("case_codes"):
        return None
    codes = await _codes(db)
    cases = {r["code_id"]: r["n"] for r in await db.execute("select code_id, count(*) as n from case_codes group by code_id")}
    excerpts = {r["code_id"]: r["n"] for r in await db.execute("select code_id, count(*) as n from codings group by code_id")}
    themes = []
    for code in codes.values():
        label = code["label_da"]
        themes.append(
            {
                "code": code,
                "chip": chip(code),
                "title": "Cases med " + (label[:1].lower() + label[1:]),
                "cases": cases.get(code["id"], 0),
                "excerpts": excerpts.get(code["id"], 0),
                # A theme no case has is shown, not offered as a link to an empty list.
                "cases_url": _filter_url(datasette, name, "cases", code["id"]) if cases.get(code["id"]) else None,
                "excerpts_url": datasette.urls.query(name, "excerpts_for_code") + "?" + urlencode({"kode": code["id"]}),
            }
        )
    return {
        "database": name,
        "themes": themes,
        "search_url": datasette.urls.query(name, "search"),
        "charts_url": datasette.urls.path(CHARTS_PATH),
        "report_themes_url": datasette.urls.query(name, "cases_by_theme"),
        "municipalities_url": datasette.urls.query(name, "cases_by_municipality"),
        "find_cases_url": datasette.urls.query(name, "find_cases"),
        "cases_url": datasette.urls.table(name, "cases"),
        "excerpts_url": datasette.urls.table(name, "excerpts"),
        "database_url": datasette.urls.database(name),
    }


CASE_FIELDS = tuple((c.name, c.label) for c in CASE_COLUMNS if c.name != "page")

SIMILAR_CASES_SQL = """
select o.id, o.title, o.municipality, count(*) as shared,
       sum(1.0 / (select count(*) from case_codes n where n.code_id = x.code_id)) as weight
from case_codes me
join case_codes x on x.code_id = me.code_id and x.case_id != me.case_id
join cases o on o.id = x.case_id
where me.case_id = :case
group by o.id
order by shared desc, weight desc, o.title
limit :limit
"""


async def case_page(datasette, database: str, case_id: str) -> dict | None:
    db = await _casebase_database(datasette, database)
    if db is None:
        return None
    found = (await db.execute("select * from cases where id = ?", [case_id])).rows
    if not found:
        return None
    case = dict(found[0])
    source = (await db.execute("select id, title, publisher, year from sources where id = ?", [case["source_id"]])).rows
    codes = await _codes(db)
    themes = []
    # The excerpts a theme rests on, with the evidence each gives (store.summaries).
    evidence = await db.execute(
        f"""select v.code_id, v.strength, e.id, e.text, e.field, e.page, c.origin, c.score
            from ({summaries.EVIDENCE_SQL.format(where="and e.case_id = :case")}) v
            join excerpts e on e.id = v.excerpt_id join codings c on c.excerpt_id = v.excerpt_id and c.code_id = v.code_id
            order by e.position""",
        {"case": case_id},
    )
    behind: dict[str, list[dict]] = {}
    for r in evidence:
        behind.setdefault(r["code_id"], []).append(
            {
                **dict(r),
                "url": _row_url(datasette, database, "excerpts", r["id"]),
                "origin_da": ORIGINS_DA.get(r["origin"], r["origin"]),
                "evidence": summaries.EVIDENCE[r["strength"]],
            }
        )
    for row in await db.execute(
        """select cc.code_id, cc.excerpts, cc.evidence from case_codes cc join codes k on k.id = cc.code_id
           where cc.case_id = ? order by k.position""",
        [case_id],
    ):
        code = codes[row["code_id"]]
        themes.append(
            {
                "code": code,
                "chip": chip(
                    code, _filter_url(datasette, database, "cases", code["id"]), count=row["excerpts"], evidence=row["evidence"]
                ),
                "evidence": row["evidence"],
                "excerpts": behind.get(code["id"], []),
            }
        )
    similar = [
        {**dict(r), "url": _row_url(datasette, database, "cases", r["id"])}
        for r in await db.execute(SIMILAR_CASES_SQL, {"case": case_id, "limit": 5})
    ]
    return {
        "case": case,
        "fields": [(label, case.get(key)) for key, label in CASE_FIELDS if case.get(key)],
        "source": dict(source[0]) if source else None,
        "source_url": _row_url(datasette, database, "sources", case["source_id"]),
        "themes": themes,
        "similar": similar,
        "similar_url": datasette.urls.query(database, "similar_cases") + "?" + urlencode({"case": case_id}),
        "reading": await source_reader.case_text(datasette, database, case_id),
    }


# --- charts -----------------------------------------------------------------------

BAR_WIDTH = 420  # px for the longest bar
ROW_HEIGHT = 26
LABEL_WIDTH = 230
CELL = 64  # px, a cell of the code × source matrix
MATRIX_TOP = 90  # px above the matrix for the slanted source names


async def chart_data(datasette) -> dict:
    name = database_name(datasette)
    if name is None:
        raise NotFound("Ingen database.")
    db = datasette.get_database(name)
    codes = await _codes(db)
    if not codes:
        raise NotFound("Databasen har ingen kodebog; kør 'casebase build'.")
    counts: dict[str, dict[str, int]] = {code: {} for code in codes}
    for row in await db.execute("select code_id, origin, count(*) as n from codings group by code_id, origin"):
        if row["code_id"] in counts:
            counts[row["code_id"]][row["origin"]] = row["n"]
    largest = max([sum(c.values()) for c in counts.values()] + [1])
    bars = []
    for index, (code_id, code) in enumerate(codes.items()):
        x, segments = 0.0, []
        for origin in ("human", "rule", "model"):
            n = counts[code_id].get(origin, 0)
            if n:
                width = BAR_WIDTH * n / largest
                segments.append({"origin": origin, "origin_da": ORIGINS_DA[origin], "n": n, "x": x, "width": width})
                x += width
        bars.append(
            {
                "code": code,
                "y": index * ROW_HEIGHT,
                "total": sum(counts[code_id].values()),
                "end": x,
                "segments": segments,
                "url": datasette.urls.query(name, "excerpts_for_code") + "?" + urlencode({"kode": code_id}),
            }
        )
    sources = [dict(r) for r in await db.execute("select id, title, excerpt_count from sources order by id")]
    matrix = {
        (r["code_id"], r["source_id"]): r["n"]
        for r in await db.execute(
            "select c.code_id, e.source_id, count(*) as n from codings c join excerpts e on e.id = c.excerpt_id group by 1, 2"
        )
    }
    peak = max(list(matrix.values()) + [1])
    cells = []
    for row_index, (code_id, code) in enumerate(codes.items()):
        for column_index, source in enumerate(sources):
            n = matrix.get((code_id, source["id"]), 0)
            cells.append(
                {
                    "code": code,
                    "source": source,
                    "n": n,
                    "x": LABEL_WIDTH + column_index * CELL,
                    "y": MATRIX_TOP + row_index * ROW_HEIGHT,
                    # Area-honest shading: opacity grows with the count, zero is blank.
                    "opacity": 0 if n == 0 else 0.15 + 0.85 * n / peak,
                    "url": datasette.urls.table(name, "excerpts")
                    + "?"
                    + urlencode({"codes__arraycontains": code_id, "source_id": source["id"]}),
                }
            )
    return {
        "database": name,
        "routing": await routing_chart(db, name, datasette),
        "bars": bars,
        "bar_height": ROW_HEIGHT - 6,
        "label_width": LABEL_WIDTH,
        "frequency_width": LABEL_WIDTH + BAR_WIDTH + 60,
        "frequency_height": len(bars) * ROW_HEIGHT + 10,
        "sources": [
            {**s, "x": LABEL_WIDTH + i * CELL + CELL / 2, "url": _row_url(datasette, name, "sources", s["id"])}
            for i, s in enumerate(sources)
        ],
        "cells": cells,
        "cell_size": CELL,
        "row_height": ROW_HEIGHT,
        "matrix_width": LABEL_WIDTH + len(sources) * CELL + 90,
        "matrix_top": MATRIX_TOP,
        "matrix_height": MATRIX_TOP + len(codes) * ROW_HEIGHT + 10,
        "codes": list(codes.values()),
        "matrix_query_url": datasette.urls.query(name, "code_source_matrix"),
        "frequency_query_url": datasette.urls.query(name, "cases_by_code"),
    }


CURVE_WIDTH, CURVE_HEIGHT, CURVE_PAD = 520, 300, 48
STRATA_DA = {
    "all_decisions": ("Alle beslutninger (ud af fold)", "#2b6cb0"),
    "random_sample": ("Tilfældig stikprøve", "#dd6b20"),
    "answers": ("Mærkede svar uden for korpusset", "#2f855a"),
    "training": ("Træningens egen kurve", "#888888"),
}
ROUTES_DA = {"human": "afgjort af en koder", "auto": "modellen alene (auto)", "review": "til gennemsyn (review)"}


async def routing_chart(db, name: str, datasette) -> dict:
    """The model's coverage–precision curves (precision of the excerpts at or above a
    confidence against the share of excerpts that is), the operating point and the
    excerpts per route."""
    tables = set(await db.table_names())
    if not {"routing_curve", "routes", "model_runs"} <= tables:
        return {}
    run = (await db.execute("select value from build_info where key = 'model_run'")).first()
    run = run[0] if run else None
    point = (await db.execute("select target_precision, route_threshold, route_coverage, route_precision from model_runs where id = ?", [run])).first()
    rows = await db.execute("select stratum, precision, coverage from routing_curve where run = ? order by stratum, coverage", [run])
    by_stratum: dict[str, list] = {}
    for row in rows:
        by_stratum.setdefault(row["stratum"], []).append((row["coverage"], row["precision"]))
    low = min([p for points in by_stratum.values() for _, p in points] + [0.8])
    low = max(0.0, min(0.8, low - 0.02))

    def xy(coverage, precision):
        x = CURVE_PAD + coverage * (CURVE_WIDTH - 2 * CURVE_PAD)
        y = CURVE_HEIGHT - CURVE_PAD - (precision - low) / (1 - low) * (CURVE_HEIGHT - 2 * CURVE_PAD)
        return round(x, 1), round(y, 1)

    lines = [
        {"label": STRATA_DA.get(s, (s, "#444"))[0], "colour": STRATA_DA.get(s, (s, "#444"))[1],
         "points": " ".join("%s,%s" % xy(c, p) for c, p in points)}
        for s, points in sorted(by_stratum.items(), key=lambda kv: list(STRATA_DA).index(kv[0]) if kv[0] in STRATA_DA else 9)
    ]
    counts = [dict(r) for r in await db.execute("select route, count(*) as n from routes group by route order by n desc")]
    target = point["target_precision"] if point else None
    return {
        "lines": lines,
        "width": CURVE_WIDTH,
        "height": CURVE_HEIGHT,
        "pad": CURVE_PAD,
        "low": low,
        "target_y": xy(0, target)[1] if target else None,
        "target": target,
        "point": xy(point["route_coverage"], point["route_precision"]) if point and point["route_threshold"] is not None else None,
        "coverage": point["route_coverage"] if point else None,
        "precision": point["route_precision"] if point else None,
        "counts": [{"route": c["route"], "route_da": ROUTES_DA.get(c["route"], c["route"]), "n": c["n"]} for c in counts],
        "query_url": datasette.urls.query(name, "routing"),
        "routes_url": datasette.urls.table(name, "routes"),
    }


async def charts_page(datasette, request):
    data = await chart_data(datasette)
    return Response.html(await datasette.render_template("casebase_charts.html", data, request=request))
