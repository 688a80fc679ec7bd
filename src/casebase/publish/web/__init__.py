"""casebase's Datasette plugin, registered through the ``datasette`` entry point.

Only the hook registrations live here; the work is in
``casebase.publish.serving`` (the server's state, database swaps after a
rebuild), ``login`` (the coders' login and permission), ``coder_pages`` (the
coders' pages) and ``public_pages`` (code chips, the front and case pages,
charts). Templates are in ``templates/``, found by Datasette because this is
the plugin's package.
"""

from __future__ import annotations

import asyncio
import sqlite3

from datasette import hookimpl
from datasette.facets import ColumnFacet

from casebase.publish import serving
from casebase.publish.web import chrome
from casebase.publish.web import facets
from casebase.publish.web import coder_pages as coding_web
from casebase.publish.web import login
from casebase.publish.web import public_pages
from casebase.publish.web import source_reader
from casebase.publish.web import theme_pages


def _lemmatize(text):
    # Imported on first use: loading the Danish pipeline costs time that a
    # Datasette process that never searches should not pay at start-up.
    from casebase.nlp import danish

    if text is None:
        return None
    return danish.lemmatize(str(text))


# SQL functions no page or canned query uses and that a typed query could misuse:
# fts3_tokenizer returns a native pointer (and can register a tokenizer), and a
# single zeroblob or randomblob call allocates gigabytes in one step, beyond the
# reach of Datasette's time limit.
DENIED_FUNCTIONS = frozenset({"fts3_tokenizer", "zeroblob", "randomblob", "load_extension"})


def _authorize(action, name, function, database, trigger):
    if action == sqlite3.SQLITE_FUNCTION and (function or "").lower() in DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


@hookimpl
def prepare_connection(conn):
    conn.set_authorizer(_authorize)
    # lemmatize('gåturene') -> 'gåtur': lets SQL (and canned queries) search the
    # excerpts' lemma column with the same Danish pipeline that built it.
    conn.create_function("lemmatize", 1, _lemmatize, deterministic=True)
    # casefold('ÆRØ') = 'ærø': SQLite's lower() folds only ASCII (find_cases).
    conn.create_function("casefold", 1, public_pages.casefold, deterministic=True)


@hookimpl
def startup(datasette):
    async def load_pipeline():
        # Otherwise the first Danish search pays for loading the pipeline inside
        # Datasette's SQL time limit, and times out.
        await asyncio.get_running_loop().run_in_executor(None, _lemmatize, "gåturene")

    return load_pipeline


@hookimpl(hookwrapper=True)
def register_facet_classes():
    # casebase's facet type "set" joins the others, and Datasette's column facet gives
    # way to one that reads an unfiltered page's counts from the build (see facets.py).
    outcome = yield
    classes = [[facets.CountedColumnFacet if cls is ColumnFacet else cls for cls in found] for found in outcome.get_result()]
    outcome.force_result([*classes, [facets.SetFacet]])


@hookimpl
def asgi_wrapper(datasette):
    return serving.asgi_wrapper(datasette)


@hookimpl
def register_routes(datasette):
    # The charts come first: the public server's catch-all 403 for coding URLs
    # (coding_web.public_routes) must not shadow them.
    if serving.coding_settings(datasette):
        coding_routes = login.routes() + coding_web.routes() + theme_pages.routes()
    else:
        coding_routes = coding_web.public_routes()
    return public_pages.routes() + coding_routes


@hookimpl
def permission_allowed(datasette, actor, action):
    return login.permission_allowed(datasette, actor, action)


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    # Coding links (coding mode only) first; the publishing chips and links otherwise.
    link = coding_web.render_excerpt_link(datasette, row, value, column, table)
    if link is not None:
        return link
    cell = public_pages.render_cell(row, value, column, table, database, datasette)
    if cell is not None:
        return cell
    # Links to the source reader: sources' titles, an excerpt's source.
    return source_reader.render_cell(row, value, column, table, database, datasette)


@hookimpl
def extra_template_vars(view_name, table, database, request, datasette):
    # The Danish chrome (every page) beside the front and case pages' data.
    parts = [
        public_pages.extra_template_vars(view_name, table, request, datasette),
        chrome.extra_template_vars(view_name, database, datasette),
    ]

    async def merged():
        found = {}
        for part in parts:
            if part is not None:
                found.update(await part)
        return found

    return merged()


@hookimpl
def menu_links(datasette, actor):
    if not serving.coding_settings(datasette):
        return None
    if actor and actor.get("id"):
        return [
            {"href": f"{coding_web.PREFIX}/queue", "label": "Kodekø"},
            {"href": f"{coding_web.PREFIX}/queue?blind=1", "label": "Kodekø (blind)"},
            {"href": f"{coding_web.PREFIX}/themes", "label": "Kandidattemaer"},
        ]
    return [{"href": f"{login.PREFIX}/login", "label": "Log ind som koder"}]
