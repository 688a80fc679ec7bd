"""The source reader: a source's whole cleaned text in reading order, as the
desktop QDA tools show a document.

- ``/-/casebase/source/<source>``: the excerpts of a source in ``seq`` order
  (together they are the cleaned text: ``char_start``/``char_end`` tile
  it, see ``store.source_text``), with page markers, headings as headings, quotes as quotes,
  case starts, survey answers with their attributes, and in the margin one
  stripe per code on an excerpt in the code's colour (a human's or a rule's
  coding solid, the model's hollow and dashed, as the chips draw them); every
  excerpt has an anchor (``#<excerpt id>``), links to its row page and, in
  coding mode, to its coding page ("✎ kod");
- a long source is read in parts of ``PART_SIZE`` excerpts (``?del=2``), by
  ``seq`` range, so a survey of a million answers is never one page, and a
  page costs the same handful of queries whatever its size;
  ``?uddrag=<excerpt>`` opens the part that holds the excerpt;
- the case page's whole text (``case_text``), with the same stripes;
- links to the reader from the sources table, a source's row and an excerpt's
  source (``render_cell``).

Everything taken from the corpus reaches the page through Jinja's autoescape
or ``Markup.format``, which escapes its arguments.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlencode

from datasette.utils import tilde_decode, tilde_encode
from datasette.utils.asgi import Response
from markupsafe import Markup

from casebase.ingest.segment import CASE_FIELDS
from casebase.publish import serving
from casebase.publish.web import public_pages
from casebase.publish.web.login import PREFIX

READER_PATH = f"{PREFIX}/source"
PART_SIZE = 500  # excerpts per part of a long source
SHOWN_ID = 80  # characters of an unknown id repeated back in a message
STRIPE = 8  # px per stripe in the margin, gap included

EXCERPT_COLUMNS = "id, seq, kind, section, page, case_id, field, text"


def routes():
    # Anything under source/ is a source id (percent- or tilde-encoded): an id that
    # is no source gets the reader's own 404, not the public server's catch-all 403.
    return [(rf"^{READER_PATH}/(?P<source_id>.+)$", reader_page)]


def part_of(seq) -> int:
    """The part of its source that holds the excerpt with this ``seq`` (from 1)."""
    try:
        return max(1, (int(seq) - 1) // PART_SIZE + 1)
    except (TypeError, ValueError):
        return 1


def reader_url(datasette, source_id: str, seq=None, excerpt_id: str | None = None) -> str:
    """The reader at a source's start, or at an excerpt's place (its part and anchor)."""
    url = datasette.urls.path(f"{READER_PATH}/{tilde_encode(str(source_id))}")
    if seq is not None and part_of(seq) > 1:
        url += "?" + urlencode({"del": part_of(seq)})
    if excerpt_id:
        url += "#" + quote(str(excerpt_id), safe="")
    return url


# --- cells ------------------------------------------------------------------------


def render_cell(row, value, column, table, database, datasette):
    """Links to the reader from the sources table (the title; the id where a row
    has no title) and from an excerpt's source; None for anything else (no I/O)."""
    if value is None:
        return None
    keys = public_pages._keys(row)
    if table == "sources" and column == "title" and "id" in keys:
        return Markup('<a class="casebase-reader-link" href="{}" title="Læs kildens tekst med kodningerne">{}</a>').format(
            reader_url(datasette, row["id"]), value
        )
    if table == "sources" and column == "id" and not ("title" in keys and row["title"]):
        return Markup('{} <a class="casebase-reader-link" href="{}">læs kilden</a>').format(value, reader_url(datasette, value))
    if table == "excerpts" and column == "source_id":
        # Datasette hands an expanded foreign key over as {"value", "label"}: keep its
        # link to the source's row and add the excerpt's place in the reader.
        source_id, label = (value["value"], value["label"]) if isinstance(value, dict) else (value, None)
        source = Markup('<a href="{}">{}</a>').format(public_pages._row_url(datasette, database, "sources", source_id), label or source_id)
        if label and label != source_id:
            source += Markup("&nbsp;<em>{}</em>").format(source_id)
        place = reader_url(
            datasette,
            source_id,
            row["seq"] if "seq" in keys else None,
            row["id"] if "id" in keys else None,
        )
        return Markup('{}<br><a class="casebase-reader-link" href="{}" title="Uddraget på sin plads i kildens tekst">læs i kilden</a>').format(
            source, place
        )
    return None


# --- the excerpts as the reader shows them ------------------------------------------


def _stripes(datasette, database: str, codes: dict, codings: list[dict], source_id: str) -> list[dict]:
    stripes = []
    for coding in sorted(codings, key=lambda c: list(codes).index(c["code_id"]) if c["code_id"] in codes else len(codes)):
        code = codes.get(coding["code_id"])
        if code is None:
            continue
        origin = coding["origin"]
        origin_da = public_pages.ORIGINS_DA.get(origin, origin)
        title = f"{code['label_da']} – kodet af {origin_da}"
        if origin == "model" and coding["score"] is not None:
            title += f" ({coding['score']:.2f})"
        href = datasette.urls.table(database, "excerpts") + "?" + urlencode({"codes__arraycontains": code["id"], "source_id": source_id})
        stripes.append(
            {
                "code": code,
                "origin": origin,
                "origin_da": origin_da,
                "hollow": origin == "model",
                "title": title,
                "href": href,
                "chip": public_pages.chip(code, href, origin, coding["score"]),
            }
        )
    return stripes


def _items(datasette, database: str, rows, codes: dict, codings: dict, cases: dict, attributes: dict) -> list[dict]:
    """The excerpts with what the reader draws around them: page markers where the
    page changes, case starts, stripes, links."""
    coding = serving.coding_settings(datasette) is not None
    items, page, case_id = [], None, None
    for row in rows:
        row = dict(row)
        item = {
            **row,
            "row_url": public_pages._row_url(datasette, database, "excerpts", row["id"]),
            "code_url": datasette.urls.path(f"{PREFIX}/code/{quote(row['id'], safe='')}") if coding else None,
            "field_lead": _field_lead(row["text"], CASE_FIELDS.get(row["field"]) if row["field"] else None),
            "page_marker": row["page"] if row["page"] is not None and row["page"] != page else None,
            "case_start": None,
            "stripes": _stripes(datasette, database, codes, codings.get(row["id"], []), row["source_id"]),
            "attributes": attributes.get(row["id"], []),
        }
        if row["case_id"] and row["case_id"] != case_id and row["case_id"] in cases:
            item["case_start"] = {"title": cases[row["case_id"]], "url": public_pages._row_url(datasette, database, "cases", row["case_id"])}
        if row["page"] is not None:
            page = row["page"]
        case_id = row["case_id"]
        items.append(item)
    return items


def _field_lead(text: str, label: str | None) -> str | None:
    """The label a case field's text begins with ("Målgruppe:"), to set in bold;
    None when the text does not begin with one."""
    head, colon, _ = (text or "").partition(":")
    if label and colon and len(head) <= len(label) + 2 and head.lower().startswith(label.lower()):
        return head + colon
    return None


def _legend(items: list[dict], codes: dict) -> list[dict]:
    """The codes on these excerpts, in codebook order, with how many excerpts carry
    each and by whom they were coded."""
    seen: dict[str, dict] = {}
    for item in items:
        for stripe in item["stripes"]:
            entry = seen.setdefault(stripe["code"]["id"], {"code": stripe["code"], "href": stripe["href"], "n": 0, "origins": {}})
            entry["n"] += 1
            entry["origins"][stripe["origin"]] = entry["origins"].get(stripe["origin"], 0) + 1
    return [
        {
            **seen[code_id],
            "origins": [
                {"origin": origin, "origin_da": public_pages.ORIGINS_DA[origin], "n": seen[code_id]["origins"][origin]}
                for origin in public_pages.ORIGINS_DA
                if origin in seen[code_id]["origins"]
            ],
        }
        for code_id in codes
        if code_id in seen
    ]


def _stripes_width(items: list[dict]) -> int:
    return max([len(item["stripes"]) for item in items] + [1]) * STRIPE


async def _part(db, datasette, database: str, source_id: str, low: int, high: int) -> tuple[list[dict], dict]:
    """Excerpts ``low`` ≤ seq ≤ ``high`` of a source, with their codings, cases and
    attributes: the same few queries whatever the number of excerpts."""
    params = {"source": source_id, "low": low, "high": high}
    rows = await db.execute(
        f"select source_id, {EXCERPT_COLUMNS} from excerpts where source_id = :source and seq between :low and :high order by seq",
        params,
    )
    codings: dict[str, list[dict]] = {}
    for r in await db.execute(
        """select c.excerpt_id, c.code_id, c.origin, c.score from excerpts e join codings c on c.excerpt_id = e.id
           where e.source_id = :source and e.seq between :low and :high""",
        params,
    ):
        codings.setdefault(r["excerpt_id"], []).append(dict(r))
    cases = {
        r["id"]: r["title"]
        for r in await db.execute(
            """select id, title from cases where id in
               (select case_id from excerpts where source_id = :source and seq between :low and :high and case_id is not null)""",
            params,
        )
    }
    attributes: dict[str, list] = {}
    for r in await db.execute(
        # CROSS JOIN: from the part's excerpts to their attributes. Left to itself SQLite
        # walked every excerpt attribute of the database (2 M in a survey of a million).
        """select a.entity_id, a.name, a.value from excerpts e
           cross join attributes a on a.entity = 'excerpt' and a.entity_id = e.id
           where e.source_id = :source and e.seq between :low and :high and e.kind = 'answer' and a.value != ''
           order by e.seq, a.name""",
        params,
    ):
        attributes.setdefault(r["entity_id"], []).append((r["name"], r["value"]))
    codes = await public_pages._codes(db)
    # Each part opens with its page number (no marker carried over from the part before).
    return _items(datasette, database, rows, codes, codings, cases, attributes), codes


def _int(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 1 else None


async def reader_page(datasette, request):
    raw = request.url_vars["source_id"]
    source_id = tilde_decode(unquote(raw))
    database = public_pages.database_name(datasette)
    db = datasette.get_database(database) if database else None
    found = (
        (await db.execute("select id, title, publisher, year, kind, licence, url, excerpt_count from sources where id = ?", [source_id])).first()
        if db is not None and await db.table_exists("sources")
        else None
    )
    if found is None:
        return await _missing(datasette, request, database, f"Kilden »{_shown(source_id)}« findes ikke i databasen.")
    source = dict(found)
    last = (await db.execute("select max(seq) from excerpts where source_id = ?", [source_id])).first()[0] or 0
    parts = max(1, part_of(last)) if last else 1
    part = 1
    if request.args.get("uddrag"):
        at = (await db.execute("select seq from excerpts where id = ? and source_id = ?", [request.args["uddrag"], source_id])).first()
        if at is None:
            return await _missing(datasette, request, database, f"Uddraget »{_shown(request.args['uddrag'])}« findes ikke i denne kilde.", source)
        part = part_of(at["seq"])
    elif request.args.get("del") is not None:
        part = _int(request.args["del"])
        if part is None or part > parts:
            return await _missing(
                datasette, request, database, f"Del »{_shown(request.args['del'])}« findes ikke; kilden har {parts} del{'e' if parts != 1 else ''}.", source
            )
    low, high = (part - 1) * PART_SIZE + 1, part * PART_SIZE
    items, codes = await _part(db, datasette, database, source_id, low, high)
    first_section = items[0]["section"] if items and items[0]["kind"] != "heading" and part > 1 else None

    def part_url(n: int) -> str:
        url = reader_url(datasette, source_id)
        return url + ("?" + urlencode({"del": n}) if n > 1 else "")

    context = {
        "source": source,
        "source_url": public_pages._row_url(datasette, database, "sources", source_id),
        "sources_url": datasette.urls.table(database, "sources"),
        "excerpts_url": datasette.urls.table(database, "excerpts") + "?" + urlencode({"source_id": source_id}),
        "cases_url": datasette.urls.table(database, "cases") + "?" + urlencode({"source_id": source_id}),
        "items": items,
        "legend": _legend(items, codes),
        "stripes_width": _stripes_width(items),
        "continued_section": first_section,
        "part": part,
        "parts": parts,
        "low": low,
        "high": min(high, last),
        "previous_url": part_url(part - 1) if part > 1 else None,
        "next_url": part_url(part + 1) if part < parts else None,
        "first_url": part_url(1) if part > 2 else None,
        "last_url": part_url(parts) if part < parts - 1 else None,
        "coding": serving.coding_settings(datasette) is not None,
    }
    return Response.html(await datasette.render_template("casebase_source.html", context, request=request))


def _shown(value: str) -> str:
    value = str(value)
    return value if len(value) <= SHOWN_ID else value[:SHOWN_ID] + "…"


async def _missing(datasette, request, database, message: str, source: dict | None = None):
    context = {
        "missing": message,
        "source": source,
        "source_reader_url": reader_url(datasette, source["id"]) if source else None,
        "sources_url": datasette.urls.table(database, "sources") if database else datasette.urls.instance(),
    }
    return Response.html(await datasette.render_template("casebase_source.html", context, request=request), status=404)


# --- the case page ------------------------------------------------------------------


async def case_text(datasette, database: str, case_id: str) -> dict | None:
    """A case's whole text in reading order with its codings marked, for the case
    page (``public_pages.case_page``); None for a case without excerpts."""
    db = datasette.get_database(database)
    rows = await db.execute(f"select source_id, {EXCERPT_COLUMNS} from excerpts where case_id = ? order by seq", [case_id])
    if not rows.rows:
        return None
    codings: dict[str, list[dict]] = {}
    for r in await db.execute(
        "select c.excerpt_id, c.code_id, c.origin, c.score from excerpts e join codings c on c.excerpt_id = e.id where e.case_id = ?",
        [case_id],
    ):
        codings.setdefault(r["excerpt_id"], []).append(dict(r))
    attributes: dict[str, list] = {}
    for r in await db.execute(
        # CROSS JOIN, as in _part: the case's excerpts first (the case page at a million
        # answers passed Datasette's time limit walking every excerpt attribute).
        """select a.entity_id, a.name, a.value from excerpts e cross join attributes a on a.entity = 'excerpt' and a.entity_id = e.id
           where e.case_id = ? and e.kind = 'answer' and a.value != '' order by e.seq, a.name""",
        [case_id],
    ):
        attributes.setdefault(r["entity_id"], []).append((r["name"], r["value"]))
    # The case is the page's subject: no "case starts here" marker inside it.
    codes = await public_pages._codes(db)
    items = _items(datasette, database, rows, codes, codings, {}, attributes)
    first = items[0]
    return {
        "excerpts": items,
        "legend": _legend(items, codes),
        "stripes_width": _stripes_width(items),
        "coded": sum(1 for item in items if item["stripes"]),
        "reader_url": reader_url(datasette, first["source_id"], first["seq"], first["id"]),
        "coding": serving.coding_settings(datasette) is not None,
    }
