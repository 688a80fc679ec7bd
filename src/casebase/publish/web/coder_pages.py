"""The coders' pages, served by ``casebase serve --coding``.

Routes, registered only in coding mode (the public server answers every
coding URL with 403, see ``public_routes``); the login page is in ``login``:

- ``/-/casebase/code/<excerpt>``: read an excerpt in context and save a decision;
  "Gem og næste" and "Spring over" follow the coder's ``Walk`` (a queue, the
  Datasette list the coder came from, or reading order);
- ``/-/casebase/queue``: what to code next (uncertain model predictions,
  rule/model disagreements, excerpts no human has coded, codes not yet judged,
  double-coding), with a blind mode that hides suggestions, other coders and
  every way to a page that shows codes;
- ``/-/casebase/next``: the top of a queue;
- ``/-/casebase/retrain``: rebuild with a newly trained model, in the background
  (the server's ``retraining.Retraining``).

In Datasette's own pages every excerpt links to its coding page
(``render_excerpt_link``); other pages call ``coding_link``.

Every write needs a logged-in coder (permission ``casebase-code``, see
``login``) and passes Datasette's CSRF protection; anything else gets 403 and
changes nothing. A save is durable in the coder's CSV before the page says so,
then applied to the served database; a form sent twice saves once, and a form
that met a changed codebook is shown again with the coder's ticks, not saved.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import re
import sqlite3
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, urlencode, urlsplit

from datasette.utils import tilde_encode
from datasette.utils.asgi import Forbidden, NotFound, Response
from markupsafe import Markup

from casebase.coding import codebook as codebook_mod
from casebase.coding import decision_files
from casebase import errors
from casebase.errors import CasebaseError
from casebase.publish import coders, coding_db
from casebase.publish import serving
from casebase.publish.web import login, public_pages
from casebase.publish.web.login import PREFIX

log = logging.getLogger("casebase.coding")


async def read_only(datasette, request):
    raise Forbidden("Denne server er offentlig og skrivebeskyttet; kodning kræver 'casebase serve --coding'.")


def public_routes():
    # The public server answers every coding URL with 403: nothing there can write.
    return [(rf"^{PREFIX}/.*$", read_only)]


def routes():
    return [
        (rf"^{PREFIX}/code/(?P<excerpt_id>[A-Za-z0-9_.\-]+)$", code_page),
        (rf"^{PREFIX}/queue$", queue_page),
        (rf"^{PREFIX}/next$", next_page),
        (rf"^{PREFIX}/retrain$", retrain),
        (rf"^{PREFIX}/retrain/status$", retrain_status),
    ]


async def _run(datasette, fn, *args):
    """Run a database function on a fresh connection in a worker thread."""

    def call():
        conn = serving.connect(datasette)
        try:
            return fn(conn, *args)
        finally:
            conn.close()

    return await asyncio.get_running_loop().run_in_executor(None, call)


# --- the walk: where "Gem og næste" and "Spring over" go -------------------------------

# An excerpt id as the coding URLs take it.
_EXCERPT_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")
# Skipped excerpts a walk remembers (the newest): ids are about 20 characters, so
# the URL stays far below what browsers and servers accept.
MAX_SKIPPED = 200
# Pages of a Datasette table a list walk reads to find the excerpt after the current one.
LIST_PAGES = 20


@dataclass
class Walk:
    """What a coder works through, carried in the coding page's URL and form, so
    "Gem og næste" and "Spring over" follow the queue or list the coder came from.

    ``queue`` (with ``code``): a review queue; ``list``: a Datasette table or
    canned query page of the served database (the coder followed "✎ kod" from
    it); neither: the source's reading order, excerpts a coder codes only (no
    headings or figure labels). ``skip``: the excerpts skipped in this walk,
    never offered again in it. The skipped ids travel in the query string, not
    a cookie: a walk is one tab's, two tabs on two queues do not mix, a reload
    or a bookmark keeps it, and the server keeps no state per coder.
    """

    queue: str | None = None
    code: str | None = None
    blind: bool = False
    list: str | None = None
    skip: tuple[str, ...] = ()

    @classmethod
    def read(cls, values, db_name: str) -> "Walk":
        """From a request's arguments or a form; ``values(key)`` gives a key's values."""

        def first(key):
            found = [v for v in values(key) if v]
            return found[0] if found else None

        queue = first("queue")
        blind = first("blind") == "1"
        skip = [i for i in " ".join(values("skip")).split() if _EXCERPT_ID.match(i)]
        return cls(
            queue=queue if queue in coding_db.QUEUES else None,
            # A blind coder chooses no code: every code filter selects by codes the
            # model, the rules or other coders gave.
            code=None if blind else first("code"),
            blind=blind,
            list=None if queue else list_path(first("list"), db_name),
            skip=tuple(dict.fromkeys(skip))[-MAX_SKIPPED:],
        )

    def pairs(self) -> list[tuple[str, str]]:
        found = [("queue", self.queue), ("code", self.code), ("blind", "1" if self.blind else None), ("list", self.list)]
        if self.skip:
            found.append(("skip", " ".join(self.skip)))
        return [(k, v) for k, v in found if v]

    def query(self, *extra: tuple[str, str]) -> str:
        return urlencode([*self.pairs(), *extra])

    def skipping(self, excerpt_id: str) -> "Walk":
        return replace(self, skip=tuple(dict.fromkeys((*self.skip, excerpt_id)))[-MAX_SKIPPED:])

    def label(self, codes: list[dict]) -> str:
        """Where the next excerpt comes from, in Danish."""
        if self.queue:
            named = next((c["label_da"] for c in codes if c["id"] == self.code), self.code)
            return f"køen »{coding_db.QUEUES[self.queue]}«" + (f" for koden {named}" if named else "")
        if self.list:
            return "listen, du kom fra"
        return "kildens læserækkefølge (afsnit, citater, casefelter og svar)"

    def back(self) -> tuple[str, str]:
        """A link back to where the walk started: (url, Danish text)."""
        if self.queue:
            return f"{PREFIX}/queue?{self.query()}", "Tilbage til kodekøen"
        if self.list:
            return self.list, "Tilbage til listen"
        return f"{PREFIX}/queue" + ("?blind=1" if self.blind else ""), "Til kodekøen"


def list_path(value: str | None, db_name: str) -> str | None:
    """A table or canned query page of the served database (path and query), or None:
    the only lists a walk follows (never another site, never a row page)."""
    if not value:
        return None
    parts = urlsplit(value)
    if not re.fullmatch(rf"/{re.escape(db_name)}/[^/.]+", parts.path):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def excerpt_column(table: str | None, keys) -> str | None:
    """The column of a table or canned query row that holds an excerpt's id, or None:
    the excerpts table's ``id``, any ``excerpt_id`` (codings, suggestions,
    decisions, rule hits, routes), the canned queries' ``uddrag`` (search,
    excerpt_context, excerpts_for_code), and ``id`` in a query that lists
    excerpts in reading order (its rows have ``seq``; source_reading_order)."""
    keys = set(keys)
    if table == "excerpts":
        return "id"
    for name in ("excerpt_id", "uddrag"):
        if name in keys:
            return name
    if table is None and {"id", "seq"} <= keys:
        return "id"
    return None


async def _next_in_list(datasette, path: str, current: str, exclude: set[str]) -> str | None:
    """The first excerpt after ``current`` in a Datasette list, read as Datasette's
    JSON (following its pages), that is not in ``exclude``."""
    base, _, query = path.partition("?")
    url = f"{base}.json?" + urlencode([*parse_qsl(query, keep_blank_values=True), ("_shape", "objects")])
    passed = False
    for _ in range(LIST_PAGES):
        response = await datasette.client.get(url)
        if response.status_code != 200:
            return None
        data = response.json()
        for row in data.get("rows") or []:
            column = excerpt_column(data.get("table"), row.keys())
            excerpt_id = row.get(column) if column else None
            if excerpt_id == current:
                passed = True
            elif passed and excerpt_id and excerpt_id not in exclude:
                return excerpt_id
        if not data.get("next_url"):
            return None
        parts = urlsplit(data["next_url"])
        url = f"{parts.path}?{parts.query}"
    return None


async def _next_excerpt(datasette, coder: str, walk: Walk, current: dict) -> str | None:
    """The walk's next excerpt after ``current``, or None when it is exhausted."""
    exclude = {*walk.skip, current["id"]}
    if walk.queue:

        def first(conn):
            items = coding_db.queue(conn, walk.queue, walk.code, coder, limit=1, exclude=exclude)
            return items[0].excerpt_id if items else None

        return await _run(datasette, first)
    if walk.list:
        return await _next_in_list(datasette, walk.list, current["id"], exclude)
    return await _run(datasette, coding_db.next_in_reading_order, current, exclude)


async def _go_next(datasette, coder: str, walk: Walk, current: dict, saved: bool) -> Response:
    target = await _next_excerpt(datasette, coder, walk, current)
    if target is None:
        # The walk is over: the page just coded says so and links back.
        extra = [("saved", "1")] if saved else []
        return Response.redirect(f"{PREFIX}/code/{current['id']}?{walk.query(*extra, ('done', '1'))}")
    return Response.redirect(f"{PREFIX}/code/{target}?{walk.query()}")


# --- the coding page --------------------------------------------------------------


def coding_link(datasette, excerpt_id: str | None, request=None) -> Markup | None:
    """"✎ kod": the excerpt's coding page, for any page that shows an excerpt (tables,
    canned queries, the source reader, the case page, Søg).

    None on the public server, and on a page a blind coder walks (``blind=1``
    in the request's query): a blind coder is shown no way to the pages that
    show an excerpt's codes."""
    if not excerpt_id or not serving.coding_settings(datasette):
        return None
    if request is not None and request.args.get("blind") == "1":
        return None
    # Datasette's pages send no Referer (Referrer-Policy: no-referrer); this link sends
    # it to this server alone, so "Gem og næste" can follow the list it was on.
    return Markup(
        '<a class="casebase-code-link" href="{}/code/{}" referrerpolicy="same-origin" title="Kod uddraget">✎&nbsp;kod</a>'
    ).format(PREFIX, excerpt_id)


# codebook.yaml as last read, by the file's state: reading and checking it costs more
# than the rest of a coding page (0.1-0.2 s), and every page and save needs it.
_CODEBOOKS: dict[str, tuple[tuple, codebook_mod.Codebook]] = {}


def _file_state(path) -> tuple | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _load_codebook(settings) -> tuple[codebook_mod.Codebook | None, str | None]:
    """codebook.yaml as it is now, or None and why (a half-edited file)."""
    key, before = str(settings.codebook), _file_state(settings.codebook)
    held = _CODEBOOKS.get(key)
    if held is not None and before is not None and held[0] == before:
        return held[1], None
    try:
        book = codebook_mod.load(settings.codebook)
    except CasebaseError as exc:
        return None, str(exc)
    if before is not None and _file_state(settings.codebook) == before:
        _CODEBOOKS[key] = (before, book)  # not changed while it was read
    return book, None


def _page_data(conn, excerpt_id: str, coder: str, blind: bool, book) -> dict | None:
    row = coding_db.excerpt(conn, excerpt_id)
    if row is None:
        return None
    before, after = coding_db.context(conn, row)
    info = coding_db.build_info(conn)
    built_with = info.get("codebook_version")
    # The boxes are the codebook a save is recorded against: codebook.yaml, also when
    # it changed since the build (the page then says a rebuild comes first).
    changed = book is None or book.version != built_with
    codes = coding_db.codebook_codes(book) if book is not None and changed else coding_db.codes(conn)
    colours = {c["id"]: c["colour"] for c in coding_db.codes(conn)}
    codings = coding_db.codings(conn, excerpt_id)
    decisions = coding_db.decisions(conn, excerpt_id)
    latest = coding_db.latest_decision(conn, excerpt_id, coder)
    mine = next((d for d in decisions if d["coder"] == coder and not d.get("adjudication")), None)
    if blind:
        # Blind double-coding: no model, no rules, no other coder; only my own earlier decision.
        ticked = set((mine["codes"] or "").split()) if mine else set()
        codings, suggestions, hits = {}, {}, []
        decisions = [d for d in decisions if d["coder"] == coder]
    else:
        ticked = set(codings)
        suggestions = coding_db.suggestions(conn, excerpt_id)
        hits = coding_db.rule_hits(conn, excerpt_id)
    return {
        "excerpt": row,
        "text_html": coding_db.highlight(row["text"], hits, colours),
        "before": before,
        "after": after,
        "codes": codes,
        "codings": codings,
        "suggestions": suggestions,
        "hits": hits,
        "ticked": ticked,
        "decisions": decisions,
        "codebook_version": book.version if book is not None else built_with,
        "codebook_changed": changed,
        "token": coding_db.decision_token(latest),
        "since_training": coding_db.decisions_since_training(conn),
        "model_run": info.get("model_run"),
        "build_info": info,
    }


async def _render_code_page(datasette, request, coder: str, excerpt_id: str, walk: Walk, draft=None, messages=(), status=200):
    """The coding page; ``draft`` (ticks and note) is a form the coder has not saved yet."""
    settings = serving.coding_settings(datasette)
    book, unreadable = _load_codebook(settings)
    data = await _run(datasette, _page_data, excerpt_id, coder, walk.blind, book)
    if data is None:
        raise NotFound(f"Uddraget {excerpt_id} findes ikke i databasen.")
    note = ""  # a saved note is in the decisions below; the field is for the next one
    if draft is not None:
        known = {c["id"] for c in data["codes"]}
        data["ticked"] = {c for c in draft["codes"] if c in known}
        note = draft["note"]
    back_url, back_text = walk.back()
    data.update(
        {
            "coder": coder,
            "adjudicator": coders.is_adjudicator(settings.coders, coder),
            "blind": walk.blind,
            "walk_fields": walk.pairs(),
            "walk_query": walk.query(),
            "walk_label": walk.label(data["codes"]),
            "walk_back_url": back_url,
            "walk_back_text": back_text,
            "walk_skipped": len(walk.skip),
            "note": note,
            "messages": list(messages),
            "codebook_unreadable": unreadable,
            "saved": request.args.get("saved") == "1" and not messages,
            "done": request.args.get("done") == "1" and not messages,
            "db_name": serving.database_name(datasette),
            "retrain": _retraining(datasette).banner(data["build_info"]),
            "retrain_keeps_form": True,
        }
    )
    return Response.html(await datasette.render_template("casebase_code.html", data, request=request), status=status)


async def code_page(datasette, request):
    coder = await login.coder(datasette, request)
    if coder is None:
        if request.method == "POST":
            raise Forbidden("Kun indloggede kodere kan gemme kodninger.")
        return login.login_redirect(request)
    excerpt_id = request.url_vars["excerpt_id"]
    db_name = serving.database_name(datasette)
    if request.method == "POST":
        form = await login.read_form(request)
        return await _save(datasette, request, coder, excerpt_id, form, Walk.read(lambda k: form.get(k, []), db_name))
    walk = Walk.read(request.args.getlist, db_name)
    if not walk.queue and not walk.list:
        # Arrived by "✎ kod" from a table or query page: "Gem og næste" follows that list.
        referer = urlsplit(request.headers.get("referer", ""))
        if referer.netloc == request.headers.get("host"):
            walk = replace(walk, list=list_path(referer.path + (f"?{referer.query}" if referer.query else ""), db_name))
    draft = None
    if request.args.get("draft") == "1":
        draft = {"codes": request.args.getlist("codes"), "note": request.args.get("note") or ""}
    return await _render_code_page(datasette, request, coder, excerpt_id, walk, draft)


async def _save(datasette, request, coder: str, excerpt_id: str, form: dict, walk: Walk):
    settings = serving.coding_settings(datasette)
    action = login.form_value(form, "action") or "save"
    note = login.form_value(form, "note").strip()
    chosen = [c for c in form.get("codes", []) if c]
    draft = {"codes": chosen, "note": note}
    if action == "skip":
        current = await _run(datasette, coding_db.excerpt, excerpt_id)
        if current is None:
            raise NotFound(f"Uddraget {excerpt_id} findes ikke i databasen.")
        return await _go_next(datasette, coder, walk.skipping(excerpt_id), current, saved=False)
    # A ruling on a disagreement is an adjudicator's alone; it is filed apart from
    # their own readings (corpus/coding/adjudications/) and counts for training.
    ruling = action == "adjudicate"
    if ruling and not coders.is_adjudicator(settings.coders, coder):
        raise Forbidden("Kun en koder med rollen adjudicator kan afgøre uenigheder.")
    # The codebook the form's boxes showed, and the coder's latest decision when the
    # page was rendered (forms from before these fields are taken as they come).
    shown_version = login.form_value(form, "codebook_version") or None
    token = form.get("last", [None])[0]

    def save():
        """("saved" | "duplicate", the excerpt) or ("refused", Danish reasons)."""
        book, unreadable = _load_codebook(settings)
        if book is None:
            return "refused", [f"Kodebogen (codebook.yaml) kan ikke læses lige nu, så intet er gemt: {unreadable}"]
        with serving.server_state(datasette).write_lock:
            serving.swap_if_rebuilt(datasette)
            conn = serving.connect(datasette)
            try:
                reasons = []
                labels = {c["id"]: c["label_da"] for c in coding_db.codes(conn)}
                if shown_version and shown_version != book.version:
                    dropped = [labels.get(c, c) for c in chosen if c not in book.codes]
                    reasons.append(
                        "Kodebogen (codebook.yaml) er ændret, mens siden var åben, så intet er gemt. "
                        "Afkrydsningerne og noten herunder er dine, vist med den nye kodebog"
                        + (f" (taget af, fordi koden ikke findes mere: {', '.join(dropped)})" if dropped else "")
                        + ". Se dem efter, og gem igen."
                    )
                else:
                    unknown = [c for c in chosen if c not in book.codes]
                    if unknown:
                        reasons.append(f"Intet er gemt: ukendt kode: {', '.join(unknown)}")
                if coding_db.build_info(conn).get("codebook_version") != book.version:
                    reasons.append(
                        "Databasen er bygget med en ældre kodebog end codebook.yaml, så der kan ikke gemmes, før den er "
                        "bygget igen: tryk »Gen-træn modellen« nederst (afkrydsningerne og noten bliver stående), og gem, "
                        "når den nye model er i brug."
                    )
                if reasons:
                    return "refused", reasons
                row = coding_db.excerpt(conn, excerpt_id)
                if row is None:
                    return "refused", [f"Uddraget {excerpt_id} findes ikke i databasen."]
                latest = coding_db.latest_decision(conn, excerpt_id, coder)
                if token is not None and token != coding_db.decision_token(latest):
                    # The coder saved this excerpt after the form was rendered: the same
                    # form again (a second click, the browser re-sending it) is that save,
                    # not a new row; a different one (another tab) is shown, not saved.
                    if (
                        latest is not None
                        and (latest["codes"] or "") == " ".join(book.close(chosen))
                        and (latest["note"] or "") == note
                        and bool(latest["adjudication"]) == ruling
                    ):
                        return "duplicate", row
                    return "refused", [
                        f"Du har gemt en anden kodning af uddraget, efter siden blev åbnet ({latest['timestamp']}), så intet "
                        "er gemt nu. Afkrydsningerne og noten herunder er dem, du sendte; gem igen for at erstatte den."
                    ]
                decision = decision_files.Decision(
                    excerpt_id=excerpt_id,
                    snippet=decision_files.snippet_of(row["text"]),
                    codes=chosen,
                    coder=coder,
                    timestamp=decision_files.now(),
                    codebook_version=book.version,
                    note=note,
                    adjudication=ruling,
                )
                # The coder's file first, flushed and synced: it is the record; the
                # database is a view of it that any rebuild recreates.
                refused = _note_refused(note)
                if refused:
                    return "refused", [refused]
                try:
                    (written,) = decision_files.append(settings.coding_dir, [decision], book)
                except CasebaseError as exc:
                    # A full or failing disk: the file is as it was, and the form comes
                    # back whole. The coder reads Danish; the log says which file and why.
                    log.error("casebase: %s's decision on %s was not saved: %s", coder, excerpt_id, exc)
                    return "refused", [
                        "Intet er gemt: din kodefil kunne ikke skrives (fx fordi disken er fuld; serverens log siger "
                        "hvorfor). Afkrydsningerne og noten står herunder; prøv igen om lidt, eller sig det til den, "
                        "der driver serveren."
                    ]
                try:
                    coding_db.apply_decision(conn, written, book)
                except sqlite3.OperationalError as exc:
                    if errors.machine_error(exc, serving.config(datasette)["served"]) is None:
                        raise
                    # The decision is in the coder's file, the record, but not in the copy
                    # the pages read: the next request makes the copy afresh from the
                    # build and the files, as after a rebuild, and shows it.
                    log.error("casebase: %s's decision on %s is saved but not yet shown: %s", coder, excerpt_id, exc)
                    serving.server_state(datasette).identity = None
                    return "unshown", [
                        "Gemt i din kodefil, men siderne kan ikke vise kodningen endnu: databasens arbejdskopi kunne ikke "
                        "skrives (fx fordi disken er fuld; serverens log siger hvorfor). Den vises, så snart serveren har "
                        "lavet arbejdskopien igen. Gem ikke igen."
                    ]
                return "saved", row
            finally:
                conn.close()

    outcome, detail = await asyncio.get_running_loop().run_in_executor(None, save)
    if outcome == "refused":
        # Nothing saved, nothing lost: the page again, with the coder's ticks and note.
        return await _render_code_page(datasette, request, coder, excerpt_id, walk, draft, detail, status=409)
    if outcome == "unshown":
        return await _render_code_page(datasette, request, coder, excerpt_id, walk, draft, detail)
    if action == "next":
        return await _go_next(datasette, coder, walk, detail, saved=True)
    return Response.redirect(f"{PREFIX}/code/{excerpt_id}?{walk.query(('saved', '1'))}")


def _note_refused(note: str) -> str | None:
    """Why the coders' file would refuse this note (``decision_files.note_problem``),
    in Danish, or None."""
    if len(note) > decision_files.MAX_NOTE_CHARS:
        return (
            f"Intet er gemt: noten er på {len(note):,} tegn, og en note må højst være "
            f"{decision_files.MAX_NOTE_CHARS:,} tegn. Afkort den, og gem igen."
        ).replace(",", ".")
    bad = next((c for c in note if decision_files.note_problem(c)), None)
    if bad is not None:
        line = note[: note.index(bad)].count("\n") + 1
        return (
            f"Intet er gemt: noten har et usynligt kontroltegn (U+{ord(bad):04X}) i linje {line}, som kodefilen ikke "
            "kan rumme; det følger tit med tekst kopieret fra et andet program. Skriv linjen igen, og gem igen."
        )
    return None


async def next_page(datasette, request):
    coder = await login.coder(datasette, request)
    if coder is None:
        return login.login_redirect(request)
    walk = Walk.read(request.args.getlist, serving.database_name(datasette))
    walk = replace(walk, queue=walk.queue or "uncertain", list=None)

    def first(conn):
        items = coding_db.queue(conn, walk.queue, walk.code, coder, limit=1, exclude=set(walk.skip))
        return items[0].excerpt_id if items else None

    excerpt_id = await _run(datasette, first)
    if excerpt_id is None:
        return Response.redirect(f"{PREFIX}/queue?{walk.query()}")
    return Response.redirect(f"{PREFIX}/code/{excerpt_id}?{walk.query()}")


# --- the review queue ---------------------------------------------------------------


async def queue_page(datasette, request):
    coder = await login.coder(datasette, request)
    if coder is None:
        return login.login_redirect(request)
    kind = request.args.get("queue") or "uncertain"
    if kind not in coding_db.QUEUES:
        raise NotFound(f"Ukendt kø: {kind}")
    walk = Walk.read(request.args.getlist, serving.database_name(datasette))
    walk = replace(walk, queue=kind, list=None)
    code = walk.code

    def data(conn):
        codes = coding_db.codes(conn)
        if code and code not in {c["id"] for c in codes}:
            return None
        return {
            "codes": codes,
            "items": coding_db.queue(conn, kind, code, coder, limit=100, exclude=set(walk.skip)),
            "counts": coding_db.queue_counts(conn, code, coder),
            "since_training": coding_db.decisions_since_training(conn),
            "model_run": (info := coding_db.build_info(conn)).get("model_run"),
            "build_info": info,
        }

    context = await _run(datasette, data)
    if context is None:
        raise NotFound(f"Ukendt kode: {code}")
    context.update(
        {
            "coder": coder,
            "kind": kind,
            "code": code,
            "blind": walk.blind,
            "queues": coding_db.QUEUES,
            # A queue counted to its limit says so (coding_db.queue_counts).
            "count_text": {
                key: f"over {coding_db.COUNT_LIMIT:,}".replace(",", ".") if n > coding_db.COUNT_LIMIT else str(n)
                for key, n in context["counts"].items()
            },
            "code_by_id": {c["id"]: c for c in context["codes"]},
            "queue_query": walk.query(),
            "skipped": len(walk.skip),
            "unskipped_query": replace(walk, skip=()).query(),
            "retrain": _retraining(datasette).banner(context["build_info"]),
        }
    )
    return Response.html(await datasette.render_template("casebase_queue.html", context, request=request))


# --- retraining -----------------------------------------------------------------------


def _retraining(datasette):
    return serving.server_state(datasette).retraining


async def retrain(datasette, request):
    coder = await login.coder(datasette, request)
    if request.method != "POST":
        return Response.redirect(f"{PREFIX}/queue")
    if coder is None:
        raise Forbidden("Kun indloggede kodere kan gen-træne modellen.")
    form = await login.read_form(request)
    # A press while a build runs changes nothing: the pages already show that build.
    _retraining(datasette).start(by=coder)
    excerpt_id = login.form_value(form, "excerpt")
    if _EXCERPT_ID.match(excerpt_id):
        # Pressed on the coding page (the button submits the coding form): back to
        # it with the coder's unsaved ticks and note, to save once the model is in use.
        walk = Walk.read(lambda k: form.get(k, []), serving.database_name(datasette))
        draft = [("draft", "1"), *(("codes", c) for c in form.get("codes", []) if c), ("note", login.form_value(form, "note"))]
        return Response.redirect(f"{PREFIX}/code/{excerpt_id}?{walk.query(*draft)}")
    return Response.redirect(login.safe_next(login.form_value(form, "next") or f"{PREFIX}/queue"))


async def retrain_status(datasette, request):
    """The retrain banner as JSON, for the pages to follow a running build's progress
    without a reload (``_casebase_retrain.html``)."""
    if await login.coder(datasette, request) is None:
        raise Forbidden("Kun indloggede kodere kan se gen-træningen.")
    served = await _run(datasette, coding_db.build_info)
    banner = _retraining(datasette).banner(served)
    return Response.json({"state": banner["state"], "text": banner["text"], "error": banner.get("error")},
                         headers={"Cache-Control": "no-store"})


# --- "✎ kod" in Datasette's pages -----------------------------------------------------


def render_excerpt_link(datasette, row, value, column, table):
    """In coding mode every excerpt in Datasette links to its coding page ("✎ kod"):
    the excerpt table's text (Datasette renders the primary key itself), every
    column of a table that refers to an excerpt, and the excerpt column of
    every canned query (``excerpt_column``). The cell keeps what the public
    pages show in it (``public_pages.render_cell``), or else links the id to
    the excerpt's row."""
    if isinstance(value, dict):
        # A foreign key Datasette has expanded for its label: {"value": id, "label": …}.
        value = value.get("value")
    if value is None or not serving.coding_settings(datasette):
        return None
    keys = list(row.keys()) if hasattr(row, "keys") else []
    if table == "excerpts":
        if column != "text" or "id" not in keys:
            return None
        return Markup("{} {}").format(value, coding_link(datasette, row["id"]))
    if column != excerpt_column(table, keys):
        return None
    database = serving.database_name(datasette)
    link = coding_link(datasette, str(value))
    shown = public_pages.render_cell(row, value, column, table, database, datasette)
    plain = Markup('<a href="{}">{}</a>').format(datasette.urls.row(database, "excerpts", tilde_encode(str(value))), value)
    if inspect.isawaitable(shown):

        async def composed():
            return Markup("{} {}").format((await shown) or plain, link)

        return composed()
    return Markup("{} {}").format(shown or plain, link)
