"""Serving the knowledge base with Datasette: read-only for the public, writable for coders.

``make_datasette`` is the one place a Datasette instance is configured, for
``casebase serve``, the tests and the benchmarks alike. The plugin reads its
settings from ``plugins.casebase`` in the metadata:

- ``db``: the database file; when a build replaces it (builds swap in a new
  file atomically), the server notices on the next request and serves the
  new one, re-applying any coding decision saved while the build ran;
- ``coding``: present only for ``serve --coding``: the corpus, codebook and
  coders file the coding pages write through.

What a server keeps between requests (the write lock, the identity of the
file it serves, the coders' retraining) is one ``ServerState`` per Datasette
instance, kept on the instance (``server_state``): two servers in one process,
as in the tests, share nothing.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import yaml

from casebase.errors import CasebaseError
from casebase.ingest.segment import CASE_COLUMNS
from casebase.publish.retraining import Retraining

PLUGIN = "casebase"
# The attribute of a Datasette instance that holds its ServerState.
STATE_ATTRIBUTE = "casebase_server_state"


@dataclass
class CodingSettings:
    corpus: Path
    codebook: Path
    coders: Path

    @property
    def coding_dir(self) -> Path:
        return self.corpus / "coding"


def load_metadata(path: Path) -> dict:
    """metadata.yml, with the case columns' descriptions from their one definition
    (``segment.CASE_COLUMNS``)."""
    try:
        metadata = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise CasebaseError("metadata file not found", file=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise CasebaseError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=path, line=mark.line + 1 if mark else None) from None
    for database_metadata in (metadata.get("databases") or {}).values():
        cases = (database_metadata.get("tables") or {}).get("cases")
        if isinstance(cases, dict):
            columns = cases.setdefault("columns", {})
            for column in CASE_COLUMNS:
                columns.setdefault(column.name, column.description)
    return metadata


def make_datasette(db_path: Path, metadata_path: Path, coding: CodingSettings | None = None):
    """A Datasette serving ``db_path``: immutable (fast, counted once) unless
    coders write to it."""
    from datasette.app import Datasette

    from casebase.publish import coders

    db_path = Path(db_path).resolve()
    if not db_path.exists():
        raise CasebaseError("no database; run 'casebase build' first", file=db_path)
    from casebase.store import database

    database.open_built(db_path).close()  # a damaged or foreign file: one clear line, not a server error
    metadata = load_metadata(metadata_path)
    config = {"db": str(db_path)}
    secret = None
    if coding:
        if not coders.names(coding.coders):
            raise CasebaseError("no coders yet; add one with 'casebase coders add NAME'", file=coding.coders)
        config["coding"] = {
            "corpus": str(Path(coding.corpus).resolve()),
            "codebook": str(Path(coding.codebook).resolve()),
            "coders": str(Path(coding.coders).resolve()),
        }
        secret = coders.secret(coding.coders)
    metadata.setdefault("plugins", {})[PLUGIN] = config
    files = {"files": [str(db_path)]} if coding else {"immutables": [str(db_path)]}
    # Facet suggestions try every column of a table page (50 ms each, at most): on a
    # million excerpts that was most of a filtered codings page (0.8 s, 0.18 s
    # without). The facets configured in metadata.yml are the ones users need.
    settings = {"suggest_facets": False}
    datasette = Datasette(metadata=metadata, secret=secret, settings=settings, **files)
    if not coding:
        datasette.inspect_data = {}
        _inspect(datasette, str(db_path))
    server_state(datasette)  # the file's identity now: a build that replaces it later is noticed
    return datasette


def _inspect(datasette, path: str) -> None:
    """Give Datasette what ``datasette inspect`` would compute (row counts, a hash),
    as the build recorded it, so a page of a million-row table never counts it again."""
    from casebase.store import database

    name = Path(path).stem
    data = database.inspect_data(path)
    if data:
        datasette.inspect_data[name] = data
    else:
        datasette.inspect_data.pop(name, None)


def config(datasette) -> dict:
    return datasette.plugin_config(PLUGIN) or {}


def coding_settings(datasette) -> CodingSettings | None:
    coding = config(datasette).get("coding")
    if not coding:
        return None
    return CodingSettings(Path(coding["corpus"]), Path(coding["codebook"]), Path(coding["coders"]))


class ServerState:
    """What one served database keeps between requests."""

    def __init__(self, db: str, coding: CodingSettings | None):
        # Saving a decision and swapping in a rebuilt database never interleave.
        self.write_lock = threading.Lock()
        # (device, inode) of the file being served; a build swaps in a new file,
        # so a different identity means "rebuilt" (swap_if_rebuilt, under write_lock).
        self.identity = _identity(db)
        # The coders' retrain button (coding mode only).
        self.retraining = Retraining(coding.corpus, coding.codebook, db) if coding else None


def server_state(datasette) -> ServerState:
    """The state of this Datasette's casebase server, made on first use.

    ``make_datasette`` makes it; a plain ``datasette serve`` with casebase's
    settings in its metadata gets it on its first request, in the ASGI wrapper
    on the event loop, before any worker thread can ask for it.
    """
    state = getattr(datasette, STATE_ATTRIBUTE, None)
    if state is None:
        state = ServerState(config(datasette)["db"], coding_settings(datasette))
        setattr(datasette, STATE_ATTRIBUTE, state)
    return state


def database_name(datasette) -> str:
    return Path(config(datasette)["db"]).stem


def connect(datasette) -> sqlite3.Connection:
    """A writable connection to the served file (coding mode only)."""
    conn = sqlite3.connect(config(datasette)["db"], timeout=30)
    conn.execute("pragma foreign_keys = on")
    return conn


def _identity(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def swap_if_rebuilt(datasette) -> None:
    """If a build replaced the database file, serve the new one (call under the
    server's write_lock)."""
    from datasette.database import Database

    path = config(datasette).get("db")
    if not path:
        return
    state = server_state(datasette)
    current = _identity(path)
    if current is None or current == state.identity:
        return
    name = database_name(datasette)
    mutable = coding_settings(datasette) is not None
    datasette.remove_database(name)
    datasette.add_database(Database(datasette, path=path, is_mutable=mutable), name=name)
    state.identity = current
    if not mutable:
        _inspect(datasette, path)
    settings = coding_settings(datasette)
    if settings:
        reapply_decisions(datasette, settings)


def reapply_decisions(datasette, settings: CodingSettings) -> int:
    """Decisions in the coders' files that the database does not hold (saved while
    a build was reading the files) are applied to it. Returns how many."""
    from casebase.coding import codebook as codebook_mod
    from casebase.coding import decision_files
    from casebase.publish import coding_db

    conn = connect(datasette)
    try:
        held = coding_db.recorded(conn)
        version = coding_db.build_info(conn).get("codebook_version")
        book = codebook_mod.load(settings.codebook)
        if book.version != version:
            return 0  # the next build places them; the pages say the codebook changed
        ids = {row[0] for row in conn.execute("select id from excerpts")}
        missing = [
            d
            for d in decision_files.read_all(settings.coding_dir)
            if (d.coder, d.adjudication, d.line) not in held and d.excerpt_id in ids and d.codebook_version == version
        ]
        for decision in sorted(missing, key=lambda d: d.timestamp):
            coding_db.apply_decision(conn, decision, book)
        return len(missing)
    finally:
        conn.close()


def asgi_wrapper(datasette):
    def wrap(app):
        async def checked(scope, receive, send):
            # Plain `datasette serve` (no casebase settings) serves the file as it is.
            if scope["type"] == "http" and config(datasette).get("db"):
                lock = server_state(datasette).write_lock

                def check():
                    with lock:
                        swap_if_rebuilt(datasette)

                await asyncio.get_running_loop().run_in_executor(None, check)
            await app(scope, receive, send)

        return checked

    return wrap


def run(datasette, host: str, port: int) -> None:
    import uvicorn

    asyncio.run(datasette.invoke_startup())
    uvicorn.run(datasette.app(), host=host, port=port, lifespan="on")
