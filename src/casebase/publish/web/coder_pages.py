"""The coders' pages, served by ``casebase serve --coding``.

Routes, registered only in coding mode (the public server answers every
coding URL with 403, see ``public_routes``); the login page is in ``login``:

- ``/-/casebase/code/<excerpt>``: read an excerpt in context and save a decision;
- ``/-/casebase/queue``: what to code next (uncertain model predictions,
  rule/model disagreements, excerpts no human has coded, codes not yet judged,
  double-coding), with a blind mode that hides suggestions and other coders;
- ``/-/casebase/next``: the top of a queue;
- ``/-/casebase/retrain``: rebuild with a newly trained model, in the background
  (the server's ``retraining.Retraining``).

Every write needs a logged-in coder (permission ``casebase-code``, see
``login``) and passes Datasette's CSRF protection; anything else gets 403 and
changes nothing. A save is durable in the coder's CSV before the page says so,
then applied to the served database.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from datasette.utils.asgi import Forbidden, NotFound, Response

from casebase.coding import codebook as codebook_mod
from casebase.coding import decision_files
from casebase.errors import CasebaseError
from casebase.publish import coders, coding_db
from casebase.publish import serving
from casebase.publish.web import login
from casebase.publish.web.login import PREFIX


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


# --- the coding page --------------------------------------------------------------


def _page_data(conn, excerpt_id: str, coder: str, blind: bool) -> dict | None:
    row = coding_db.excerpt(conn, excerpt_id)
    if row is None:
        return None
    before, after = coding_db.context(conn, row)
    codes = coding_db.codes(conn)
    colours = {c["id"]: c["colour"] for c in codes}
    codings = coding_db.codings(conn, excerpt_id)
    decisions = coding_db.decisions(conn, excerpt_id)
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
    info = coding_db.build_info(conn)
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
        "mine": mine,
        "codebook_version": info.get("codebook_version"),
        "since_training": coding_db.decisions_since_training(conn),
        "model_run": info.get("model_run"),
    }


def _queue_params(source) -> dict[str, str]:
    get = source.get if hasattr(source, "get") else (lambda key, default=None: source.get(key, default))
    params = {}
    for key in ("queue", "code", "blind"):
        value = get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if value:
            params[key] = value
    return params


async def code_page(datasette, request):
    coder = await login.coder(datasette, request)
    if coder is None:
        if request.method == "POST":
            raise Forbidden("Kun indloggede kodere kan gemme kodninger.")
        return login.login_redirect(request)
    excerpt_id = request.url_vars["excerpt_id"]
    if request.method == "POST":
        return await _save(datasette, request, coder, excerpt_id)
    params = _queue_params(request.args)
    blind = params.get("blind") == "1"
    data = await _run(datasette, _page_data, excerpt_id, coder, blind)
    if data is None:
        raise NotFound(f"Uddraget {excerpt_id} findes ikke i databasen.")
    db_name = serving.database_name(datasette)
    data.update(
        {
            "coder": coder,
            "adjudicator": coders.is_adjudicator(serving.coding_settings(datasette).coders, coder),
            "blind": blind,
            "queue_params": params,
            "queue_query": urlencode(params),
            "queues": coding_db.QUEUES,
            "saved": request.args.get("saved"),
            "db_name": db_name,
            "retrain": _retraining(datasette).status(),
            "codebook_changed": _codebook_changed(datasette, data["codebook_version"]),
        }
    )
    return Response.html(await datasette.render_template("casebase_code.html", data, request=request))


def _codebook_changed(datasette, version: str | None) -> bool:
    settings = serving.coding_settings(datasette)
    try:
        return codebook_mod.load(settings.codebook).version != version
    except CasebaseError:
        return True


async def _save(datasette, request, coder: str, excerpt_id: str):
    settings = serving.coding_settings(datasette)
    form = await login.read_form(request)
    params = _queue_params(form)
    note = login.form_value(form, "note").strip()
    chosen = [c for c in form.get("codes", []) if c]
    # A ruling on a disagreement is an adjudicator's alone; it is filed apart from
    # their own readings (corpus/coding/adjudications/) and counts for training.
    ruling = login.form_value(form, "action") == "adjudicate"
    if ruling and not coders.is_adjudicator(settings.coders, coder):
        raise Forbidden("Kun en koder med rollen adjudicator kan afgøre uenigheder.")

    def save():
        book = codebook_mod.load(settings.codebook)
        with serving.server_state(datasette).write_lock:
            serving.swap_if_rebuilt(datasette)
            conn = serving.connect(datasette)
            try:
                version = coding_db.build_info(conn).get("codebook_version")
                if book.version != version:
                    raise CasebaseError(
                        "kodebogen er ændret, siden databasen blev bygget; kør 'casebase build', før der kodes videre",
                        file=settings.codebook,
                    )
                unknown = [c for c in chosen if c not in book.codes]
                if unknown:
                    raise CasebaseError(f"ukendt kode: {', '.join(unknown)}", file=settings.codebook)
                row = coding_db.excerpt(conn, excerpt_id)
                if row is None:
                    raise CasebaseError(f"uddraget {excerpt_id} findes ikke")
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
                (written,) = decision_files.append(settings.coding_dir, [decision], book)
                coding_db.apply_decision(conn, written, book)
                if login.form_value(form, "action") == "next":
                    return _next_target(conn, coder, params, after=row)
                return None
            finally:
                conn.close()

    try:
        target = await asyncio.get_running_loop().run_in_executor(None, save)
    except CasebaseError as exc:
        return Response.html(
            await datasette.render_template("casebase_error.html", {"message": str(exc)}, request=request),
            status=409,
        )
    if target is None:
        query = urlencode({**params, "saved": "1"})
        return Response.redirect(f"{PREFIX}/code/{excerpt_id}?{query}")
    return Response.redirect(target)


def _next_target(conn, coder: str, params: dict, after: dict) -> str:
    """Where "save and next" goes: the top of the queue the coder works from, or
    else the next excerpt in the source's reading order."""
    query = urlencode({k: v for k, v in params.items()})
    if params.get("queue") in coding_db.QUEUES:
        items = coding_db.queue(conn, params["queue"], params.get("code"), coder, limit=1, exclude=after["id"])
        if items:
            return f"{PREFIX}/code/{items[0].excerpt_id}?{query}"
        return f"{PREFIX}/queue?{query}"
    following = conn.execute(
        "select id from excerpts where source_id = ? and seq > ? order by seq limit 1", (after["source_id"], after["seq"])
    ).fetchone()
    target = following[0] if following else after["id"]
    return f"{PREFIX}/code/{target}?{query}"


async def next_page(datasette, request):
    coder = await login.coder(datasette, request)
    if coder is None:
        return login.login_redirect(request)
    params = _queue_params(request.args)

    def first(conn):
        items = coding_db.queue(conn, params.get("queue", "uncertain"), params.get("code"), coder, limit=1)
        return items[0].excerpt_id if items else None

    excerpt_id = await _run(datasette, first)
    if excerpt_id is None:
        return Response.redirect(f"{PREFIX}/queue?{urlencode(params)}")
    return Response.redirect(f"{PREFIX}/code/{excerpt_id}?{urlencode(params)}")


# --- the review queue ---------------------------------------------------------------


async def queue_page(datasette, request):
    coder = await login.coder(datasette, request)
    if coder is None:
        return login.login_redirect(request)
    kind = request.args.get("queue") or "uncertain"
    if kind not in coding_db.QUEUES:
        raise NotFound(f"Ukendt kø: {kind}")
    code = request.args.get("code") or None
    blind = request.args.get("blind") == "1"

    def data(conn):
        codes = coding_db.codes(conn)
        if code and code not in {c["id"] for c in codes}:
            return None
        return {
            "codes": codes,
            "items": coding_db.queue(conn, kind, code, coder, limit=100),
            "counts": coding_db.queue_counts(conn, code, coder),
            "since_training": coding_db.decisions_since_training(conn),
            "model_run": coding_db.build_info(conn).get("model_run"),
        }

    context = await _run(datasette, data)
    if context is None:
        raise NotFound(f"Ukendt kode: {code}")
    params = {k: v for k, v in (("queue", kind), ("code", code), ("blind", "1" if blind else None)) if v}
    context.update(
        {
            "coder": coder,
            "kind": kind,
            "code": code,
            "blind": blind,
            "queues": coding_db.QUEUES,
            "queue_query": urlencode(params),
            "retrain": _retraining(datasette).status(),
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
    return Response.redirect(login.safe_next(login.form_value(form, "next") or f"{PREFIX}/queue"))


_EXCERPT_REFERENCES = frozenset({("codings", "excerpt_id"), ("suggestions", "excerpt_id"), ("decisions", "excerpt_id"), ("rule_hits", "excerpt_id")})


def render_excerpt_link(datasette, row, value, column, table):
    """In coding mode every excerpt in Datasette links to its coding page: from the
    excerpt table's text (Datasette renders the primary key itself) and from
    every column that refers to an excerpt."""
    from markupsafe import Markup, escape

    if not serving.coding_settings(datasette) or value is None:
        return None
    if table == "excerpts" and column == "text":
        excerpt_id, shown = row["id"], Markup("{}").format(value)
    elif (table, column) in _EXCERPT_REFERENCES:
        excerpt_id = str(value)
        shown = Markup('<a href="/{}/excerpts/{}">{}</a>').format(serving.database_name(datasette), value, value)
    else:
        return None
    return Markup('{} <a class="casebase-code-link" href="{}/code/{}" title="Kod uddraget">✎&nbsp;kod</a>').format(
        shown, PREFIX, escape(excerpt_id)
    )
