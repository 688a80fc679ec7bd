"""Serving the knowledge base with Datasette: read-only for the public, writable for coders.

``make_datasette`` is the one place a Datasette instance is configured, for
``casebase serve``, the tests and the benchmarks alike. The plugin reads its
settings from ``plugins.casebase`` in the metadata:

- ``db``: the database file a build writes (builds swap in a new file
  atomically); when a build replaces it, the server notices on the next
  request and serves the new one on every page;
- ``served``: the file Datasette reads. The public server reads the build
  itself, immutable. The coding server reads a working copy of it
  (``coding/<name>.db`` beside the build) that its saves write to, so a public
  server on the same build never sees its file change; the copy is made afresh
  from the build at start-up and after every rebuild, with every decision in
  the coders' files that the build does not hold applied to it. The copy is in
  WAL mode, so a save never makes a page wait: each copy is a file of its own
  (``coding/<name>.<generation>.db``) and ``coding/<name>.db`` a symbolic link
  to the one served (see ``_copy_build``);
- ``allow_sql``: whether typed SQL may run (``serve --allow-sql``); off by
  default, the pages and canned queries need none;
- ``name``: the database's name in URLs (the build's file name without .db),
  the same on both servers;
- ``coding``: present only for ``serve --coding``: the corpus, codebook and
  coders file the coding pages write through.

What a server keeps between requests (the write lock, the identity of the
file it serves, the coders' retraining) is one ``ServerState`` per Datasette
instance, kept on the instance (``server_state``): two servers in one process,
as in the tests, share nothing.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import asgi_csrf
import yaml
from datasette.database import Database

from casebase import errors
from casebase.errors import CasebaseError
from casebase.ingest.segment import CASE_COLUMNS
from casebase.publish.retraining import Retraining

PLUGIN = "casebase"
# How long a server whose rebuilt database could not be served (a full disk) serves
# the old one before it tries again: not on every request, each a copy of the build.
SWAP_RETRY_SECONDS = 30
log = logging.getLogger("casebase.serving")
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


def make_datasette(db_path: Path, metadata_path: Path, coding: CodingSettings | None = None, allow_sql: bool = False):
    """A Datasette serving the build at ``db_path``: the build itself, immutable
    (fast, counted once), or for coders a working copy of it that they write to."""
    from datasette.app import Datasette

    from casebase.publish import coders

    given = Path(db_path)
    db_path = given.resolve()
    if not db_path.exists():
        raise CasebaseError("no database; run 'casebase build' first", file=db_path)
    if _is_working_copy(given) or _is_working_copy(db_path):
        # Served by name it was a database called casebase.<n> (every link a 404),
        # read immutable while the coding server wrote it, and gone at its next
        # rebuild; a coding server on it copied the copy into db/coding/coding/.
        raise CasebaseError(
            "this is the coding server's working copy, not a build; serve the build it copies "
            f"({given.absolute().parent.parent / _generation_base(given.name)})",
            file=given,
        )
    from casebase.store import database

    database.open_built(db_path).close()  # a damaged or foreign file: one clear line, not a server error
    metadata = load_metadata(metadata_path)
    config = {"db": str(db_path), "served": str(db_path), "name": db_path.stem, "allow_sql": allow_sql}
    secret = None
    if coding:
        if not coders.names(coding.coders):
            raise CasebaseError("no coders yet; add one with 'casebase coders add NAME'", file=coding.coders)
        config["served"] = str(working_copy(db_path))
        config["coding"] = {
            "corpus": str(Path(coding.corpus).resolve()),
            "codebook": str(Path(coding.codebook).resolve()),
            "coders": str(Path(coding.coders).resolve()),
        }
        secret = coders.secret(coding.coders)
    metadata.setdefault("plugins", {})[PLUGIN] = config
    # Facet suggestions try every column of a table page (50 ms each, at most): on a
    # million excerpts that was most of a filtered codings page (0.8 s, 0.18 s
    # without). The facets configured in metadata.yml are the ones users need.
    settings = {"suggest_facets": False}
    datasette = Datasette(metadata=metadata, secret=secret, settings=settings)
    # Datasette adds an in-memory database when given no file; casebase serves one file.
    datasette.remove_database("_memory")
    datasette.inspect_data = {}
    state = server_state(datasette)
    with state.write_lock:
        state.identity = _file_identity(str(db_path))
        _serve(datasette, str(db_path))
    return datasette


def _inspect(datasette, name: str, path: str) -> None:
    """Give Datasette what ``datasette inspect`` would compute (row counts, size, a
    hash), as the build recorded it, so a page of a million-row table never counts
    it again."""
    from casebase.store import database

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
        # The build being served (_file_identity); a build swaps in a new file, so a
        # different identity means "rebuilt" (swap_if_rebuilt).
        self.identity = None
        # The coders' retrain button (coding mode only).
        self.retraining = Retraining(coding.corpus, coding.codebook, db) if coding else None
        # Held for the server's life: one coding server per working copy.
        self.working_copy_lock = None
        # Wrong passwords per coder and address (login.LoginThrottle; coding mode).
        self.login_throttle = None
        # When serving a rebuilt database last failed (time.monotonic), if it did.
        self.swap_failed: float | None = None


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
    settings = config(datasette)
    return settings.get("name") or Path(settings["db"]).stem


def working_copy(db_path: Path) -> Path:
    """The coding server's working copy of the build at ``db_path``."""
    return Path(db_path).parent / "coding" / Path(db_path).name


def connect(datasette) -> sqlite3.Connection:
    """A writable connection to the served file (coding mode only: the working copy's
    generation now served). Under the write lock, which a swap takes too, that is the
    copy a save must reach; a page that only reads takes no lock, and a swap may
    remove the generation it looked up before it opens it: it then opens the one
    served now. ``mode=rw``: a removed generation is never created again, empty."""
    name = database_name(datasette)
    while True:
        path = datasette.databases[name].path
        try:
            conn = sqlite3.connect(_uri(path) + "?mode=rw", uri=True, timeout=30)
        except sqlite3.OperationalError:
            if datasette.databases[name].path == path:
                raise
            continue  # swapped meanwhile
        conn.execute("pragma foreign_keys = on")
        return conn


def _uri(path: str) -> str:
    """An SQLite URI of a file's path, '#', '?' and '%' in it escaped."""
    return "file:" + urllib.parse.quote(str(path))


def _file_identity(path: str) -> tuple[int, int, int, int] | None:
    """What tells one file from the next under a name (a build, the copy's lock file):
    device, inode, size and mtime. The inode number alone is not enough: a file system
    hands a freed number to the next new file (ext4 alternates two numbers for a file
    replaced again and again), so a build two builds after the one served may carry
    its number."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


class ServedDatabase(Database):
    """A Datasette database whose file a rebuild replaces while the server runs.

    Datasette keeps one read connection per worker thread under the database's
    name, so after a swap every thread went on reading the replaced file until
    the server restarted: table and query pages showed the old build while the
    casebase pages showed the new one. Here a thread's connection belongs to one
    ``ServedDatabase``: a thread still holding one to a replaced file closes it
    and connects to the file now served.
    """

    _connections = threading.local()

    def connect(self, write=False):
        """Datasette's connection, with the path escaped in its URI: Datasette writes
        "file:<path>?mode=ro", so a project in a folder named "uge #3" or "hvad nu?"
        opened (and created) an empty file under the name cut at the '#' or '?', and
        every table was "not found"."""
        if write:
            options = ""
        elif self.is_mutable:
            options = "?mode=ro&nolock=1" if self.ds.nolock else "?mode=ro"
        else:
            options = "?immutable=1"
        conn = sqlite3.connect(_uri(self.path) + options, uri=True, check_same_thread=False)
        self._all_file_connections.append(conn)
        return conn

    def _served(self) -> ServedDatabase:
        """The database served under this one's name now. A page looks its database up
        once and queries it several times; a swap meanwhile removes the coding
        server's old copy, so its later queries (and its file's size) are answered
        by the copy served, not by a file that is gone."""
        current = self.ds.databases.get(self.name)
        return current if isinstance(current, ServedDatabase) else self

    @property
    def size(self):
        served = self._served()
        return super().size if served is self else served.size

    async def execute_fn(self, fn):
        if self.ds.executor is None:
            return await super().execute_fn(fn)

        def in_thread():
            database = self._served()
            held = getattr(self._connections, self.name, None)
            if held is None or held[0] is not database:
                if held is not None:
                    # Forgotten before it is closed: should the next connect fail,
                    # the thread must not keep a closed connection as its own.
                    delattr(self._connections, self.name)
                    held[1].close()
                conn = database.connect()
                self.ds._prepare_connection(conn, self.name)
                held = (database, conn)
                setattr(self._connections, self.name, held)
            return fn(held[1])

        return await asyncio.get_running_loop().run_in_executor(self.ds.executor, in_thread)


def _serve(datasette, build: str) -> None:
    """Serve ``build`` (under the write lock): the file itself on the public server,
    a fresh working copy of it on the coding server."""
    settings = config(datasette)
    name = database_name(datasette)
    coding = coding_settings(datasette)
    if coding:
        served = Path(settings["served"])
        # A file where db/coding should be, a folder where the link should be, a full
        # disk: one line naming the path, not a traceback (or a 500 on every page).
        with errors.on_file(served, "make the coding server's working copy"):
            _lock_working_copy(datasette, served)
            generation = _copy_build(Path(build), served, coding)
        # The generation's own path, not the link: a thread's connection belongs to
        # one copy whatever the link points to by the time it connects.
        database = ServedDatabase(datasette, path=str(generation), is_mutable=True)
    else:
        _inspect(datasette, name, build)
        database = ServedDatabase(datasette, path=build, is_mutable=False)
    # One assignment, as Datasette's add_database makes it: a request running
    # meanwhile finds the old database or the new one, never none.
    database.name = database.route = name
    datasette.databases = {**datasette.databases, name: database}


def _lock_working_copy(datasette, served: Path) -> None:
    """Two coding servers on one build would each copy it over the other's working
    copy, under the other's saves: the second is refused."""
    state = server_state(datasette)
    path = served.with_name(served.name + ".lock")
    held = state.working_copy_lock
    if held is not None:
        held_stat = os.fstat(held.fileno())
        if (_file_identity(str(path)) or ())[:2] == (held_stat.st_dev, held_stat.st_ino):  # still our lock file
            return
        # Someone removed db/coding under the server: lock the new lock file, or a
        # second coding server could start on the build.
        held.close()
        state.working_copy_lock = None
    served.parent.mkdir(parents=True, exist_ok=True)
    lock = open(path, "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise CasebaseError("another coding server serves this database; stop it first", file=served) from None
    state.working_copy_lock = lock


def _copy_build(build: Path, served: Path, coding: CodingSettings) -> Path:
    """Copy the build to a new generation file, apply the decisions it does not
    hold, put it in WAL mode and point ``served`` (a symbolic link) at it in one
    rename; returns the generation's path.

    Why a file per copy: in WAL mode readers never wait for a save's commit, but
    SQLite names the -wal and -shm files after the database's path. Replacing the
    file under one name, as a rebuild does, would leave the old copy's connections
    (each server thread closes its own when it next runs) sharing the new copy's
    WAL, and the last of them would checkpoint it into the old file and delete it,
    losing the new copy's saves. A new name per copy gives each its own; SQLite
    follows the link, so ``coding/<name>.db`` opens the copy served."""
    if served.is_dir() and not served.is_symlink():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(served))
    generation = served.with_name(f"{served.stem}.{time.time_ns()}{served.suffix}")
    try:
        shutil.copyfile(build, generation)
        conn = sqlite3.connect(generation, timeout=30)
        try:
            conn.execute("pragma foreign_keys = on")
            reapply_decisions(conn, coding)
            conn.commit()
            conn.execute("pragma journal_mode = wal")
        finally:
            conn.close()
        link = served.with_name(f".{served.name}.link")
        link.unlink(missing_ok=True)
        os.symlink(generation.name, link)
        os.replace(link, served)
    except BaseException:
        _remove_with_journals(generation)
        raise
    _remove_journals(served)  # a working copy from before the copies were generations
    for old in _generations(served):
        if old != generation:
            _remove_with_journals(old)
    return generation


def _generation_base(name: str) -> str:
    """The working copy's name for a generation's file name (casebase.<n>.db -> casebase.db)."""
    stem, _, suffix = name.rpartition(".")
    base, _, number = stem.rpartition(".")
    return f"{base}.{suffix}" if base and number.isdigit() else name


def _is_working_copy(path: Path) -> bool:
    """Whether ``path`` is a coding server's working copy (the link or a generation):
    in a folder ``coding`` that holds the copy's lock file."""
    path = Path(path).absolute()
    return path.parent.name == "coding" and (path.parent / (_generation_base(path.name) + ".lock")).exists()


def _generations(served: Path) -> list[Path]:
    """The generation files of the working copy ``served`` on disk."""
    prefix, suffix = served.stem + ".", served.suffix
    return [
        path
        for path in served.parent.glob(f"{served.stem}.*{suffix}")
        if path.name[len(prefix) : len(path.name) - len(suffix)].isdigit()
    ]


def _remove_with_journals(db: Path) -> None:
    """A copy no longer served, with its journals. Connections still open on it
    (threads that have not run since the swap) keep reading it until they close;
    its WAL name is its own, so nothing they do reaches the copy served."""
    db.unlink(missing_ok=True)
    _remove_journals(db)


def _remove_journals(db: Path) -> None:
    """Remove what a server killed in the middle of a write left beside ``db`` (under
    the write lock and the working-copy lock, so no live writer owns them).

    SQLite would take a leftover journal as the file's own: read-only connections
    refuse a file with a hot journal (every page answered 500), and the first write
    rolled the dead server's pages into the fresh copy. The copy needs nothing from
    them: every saved decision is in the coders' files and is applied again."""
    for suffix in ("-journal", "-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)


def swap_if_rebuilt(datasette) -> None:
    """If a build replaced the database file, serve the new one (call under the
    server's write_lock)."""
    path = config(datasette).get("db")
    if not path:
        return
    state = server_state(datasette)
    current = _file_identity(path)
    if current is None or (current == state.identity and not _copy_missing(datasette)):
        return
    if state.swap_failed is not None and time.monotonic() - state.swap_failed < SWAP_RETRY_SECONDS:
        return
    try:
        _serve(datasette, path)
    except CasebaseError as exc:
        # The machine's error (a full disk) making the new working copy: every page
        # answered 500 and copied the whole build again, and no save went through.
        # The copy served stays, with every save, until a later try succeeds; the
        # decisions saved meanwhile are in the coders' files and are applied to the
        # new copy then.
        state.swap_failed = time.monotonic()
        log.error("the rebuilt database is not served yet: %s", exc)
        return
    state.swap_failed = None
    state.identity = current


def _copy_missing(datasette) -> bool:
    """Whether the coding server's working copy is gone (``make clean`` or a removed
    db/coding while it ran): it is made again, as after a rebuild."""
    settings = config(datasette)
    served = settings.get("served")
    return bool(settings.get("coding")) and not os.path.exists(served)


def reapply_decisions(conn: sqlite3.Connection, coding: CodingSettings) -> int:
    """Decisions in the coders' files that the database does not hold (saved while
    a build was reading the files, or just before a server stopped) are applied
    to it. Returns how many."""
    from casebase.coding import codebook as codebook_mod
    from casebase.coding import decision_files
    from casebase.publish import coding_db

    held = coding_db.recorded(conn)
    version = coding_db.build_info(conn).get("codebook_version")
    book = codebook_mod.load(coding.codebook)
    if book.version != version:
        return 0  # the next build places them; the pages say the codebook changed
    candidates = [
        d for d in decision_files.read_all(coding.coding_dir)
        if (d.coder, d.adjudication, d.line) not in held and d.codebook_version == version
    ]
    # Only the candidates' excerpts are looked up (not every id of a million-excerpt corpus).
    ids = {
        row[0]
        for row in conn.execute(
            "select id from excerpts where id in (select value from json_each(?))",
            (json.dumps(sorted({d.excerpt_id for d in candidates})),),
        )
    }
    missing = [d for d in candidates if d.excerpt_id in ids]
    for decision in sorted(missing, key=lambda d: d.timestamp):
        coding_db.apply_decision(conn, decision, book)
    return len(missing)


# Methods that change something: each must carry Datasette's CSRF token.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


CSRF_REFUSED = ("Afvist: formularen var forældet eller manglede sin sikkerhedsnøgle (CSRF). "
                "Gå tilbage, genindlæs siden og prøv igen.")
# What asgi-csrf answers (in English) when a token does not match.
CSRF_MESSAGES = frozenset(asgi_csrf.error_messages.values()) | {"CSRF validation failed"}


NO_DATABASE = ("Databasen findes ikke lige nu: den er slettet, og en ny er endnu ikke bygget (fx under "
               "'make clean' og 'casebase build'). Intet er gemt eller ændret. Prøv igen, når den er bygget.")


async def _refuse(send, message: str, status: int = 403, title: str = "Afvist") -> None:
    page = (f'<!DOCTYPE html><html lang="da"><head><meta charset="utf-8"><title>{title} – Casebase</title>'
            f'</head><body><h1>{title}</h1><p>{message}</p></body></html>')
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/html; charset=utf-8")]})
    await send({"type": "http.response.body", "body": page.encode("utf-8")})


def _in_danish(send):
    """asgi-csrf answers a failed token check with one English line ("form-urlencoded
    POST field did not match cookie"); a coder sees the Danish refusal instead. Only a
    403 whose whole body is one of asgi-csrf's messages is replaced."""
    held = []

    async def sending(message):
        if message["type"] == "http.response.start" and message.get("status") == 403:
            held.append(message)
            return
        if held and message["type"] == "http.response.body":
            start = held.pop()
            if not message.get("more_body") and message.get("body", b"").decode("utf-8", "replace") in CSRF_MESSAGES:
                await _refuse(send, CSRF_REFUSED)
                return
            await send(start)
        await send(message)

    return sending



def asgi_wrapper(datasette):
    def wrap(app):
        async def checked(scope, receive, send):
            if scope["type"] == "http" and scope.get("method") in UNSAFE_METHODS:
                # Datasette's CSRF check (asgi-csrf) lets a request through when it has
                # no cookies or an "Authorization: Bearer" header, trusting it is not a
                # browser's. casebase authenticates by cookie alone, so neither may
                # skip the check: the header is dropped, and a write without cookies
                # (a forged login from another site) is refused.
                headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"authorization"]
                if not any(k.lower() == b"cookie" for k, _ in headers):
                    await _refuse(send, CSRF_REFUSED)
                    return
                scope = {**scope, "headers": headers}
                send = _in_danish(send)
            # Plain `datasette serve` (no casebase settings) serves the file as it is.
            path = config(datasette).get("db") if scope["type"] == "http" else None
            # A stat or two per request; only a rebuilt file (or a removed working copy)
            # takes the lock (and is copied, on the coding server), so reading pages never
            # queue behind a save.
            build = _file_identity(path) if path else None
            copy_missing = bool(path) and _copy_missing(datasette)
            if path and (build not in (None, server_state(datasette).identity) or copy_missing):
                lock = server_state(datasette).write_lock

                def check():
                    with lock:
                        swap_if_rebuilt(datasette)

                await asyncio.get_running_loop().run_in_executor(None, check)
            if path and build is None and (copy_missing or not config(datasette).get("coding")):
                # The build removed (and the coding server's copy with it): every page
                # answered 500 "unable to open database file" until the next build.
                await _refuse(send, NO_DATABASE, status=503, title="Ingen database lige nu")
                return
            if scope["type"] != "http" or scope.get("method") not in UNSAFE_METHODS:
                await app(scope, receive, send)
                return
            started = False

            async def sending(message):
                nonlocal started
                started = started or message["type"] == "http.response.start"
                await send(message)

            try:
                await app(scope, receive, sending)
            except UnicodeDecodeError:
                # asgi-csrf decodes a form's body before anything of casebase sees it:
                # a body that is not UTF-8 (no browser sends one) is a bad request.
                if started:
                    raise
                await _refuse(send, "Formularen kunne ikke læses: den var ikke skrevet i UTF-8.", status=400)

        return checked

    return wrap


def run(datasette, host: str, port: int) -> None:
    import uvicorn

    asyncio.run(datasette.invoke_startup())
    retraining = server_state(datasette).retraining
    if retraining:
        retraining.keep_warm()  # the retrain button's build process, ready before it is pressed
    try:
        uvicorn.run(datasette.app(), host=host, port=port, lifespan="on")
    finally:
        if retraining:
            retraining.close()
