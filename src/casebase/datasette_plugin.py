"""casebase's Datasette plugin, registered through the ``datasette`` entry point."""

from __future__ import annotations

from datasette import hookimpl


def _lemmatize(text):
    # Imported on first use: loading the Danish pipeline costs time that a
    # Datasette process that never searches should not pay at start-up.
    from . import nlp

    if text is None:
        return None
    return nlp.lemmatize(str(text))


@hookimpl
def prepare_connection(conn):
    # lemmatize('gåturene') -> 'gåtur': lets SQL (and canned queries) search the
    # excerpts' lemma column with the same Danish pipeline that built it.
    conn.create_function("lemmatize", 1, _lemmatize, deterministic=True)
