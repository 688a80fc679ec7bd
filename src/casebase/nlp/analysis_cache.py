"""A cache of the NLP's and the rules' output, keyed by excerpt text.

Rebuilds mostly see texts they have seen before: a codebook edit changes no
text, and a changed source keeps most of its paragraphs. So a build keeps,
for every excerpt text it analysed, the tokens and lemmas the Danish pipeline
gave it (enough to rebuild the ``Doc`` the rule matcher needs without running
the pipeline), and, per rule set, the rule hits. A codebook edit then re-runs
only the matcher; an edit that leaves the patterns alone re-runs nothing.

The cache is a plain SQLite file beside the database (``db/cache/``). It is a
cache and nothing more: it is never published, a damaged file is deleted and
rebuilt, and entries made by another NLP pipeline are dropped on open.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import json

CACHE_DIR = "cache"
CACHE_FILE = "analysis.sqlite"
_CHUNK = 500  # keys per SELECT ... IN (...)


def cache_path(db_path: Path) -> Path:
    return Path(db_path).parent / CACHE_DIR / CACHE_FILE


def text_key(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8")).digest()


class AnalysisCache:
    def __init__(self, path: Path, pipeline_name: str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._open(pipeline_name)
        except sqlite3.DatabaseError:
            # Damaged (a killed writer, a disk error): a cache is rebuilt, never repaired.
            self.path.unlink(missing_ok=True)
            self._open(pipeline_name)

    def _open(self, pipeline_name: str) -> None:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.conn = conn
        # Losing the last writes of a cache on a power cut costs only time.
        conn.execute("pragma journal_mode = wal")
        conn.execute("pragma synchronous = off")
        conn.execute("create table if not exists meta (key text primary key, value text)")
        conn.execute("create table if not exists docs (key blob primary key, lemmas text, tokens text) without rowid")
        conn.execute(
            "create table if not exists hits (ruleset text, key blob, hits text, primary key (ruleset, key)) without rowid"
        )
        # Other results keyed by excerpt content, e.g. a model run's scores ("scores:<run>").
        conn.execute(
            "create table if not exists results (kind text, key blob, value text, primary key (kind, key)) without rowid"
        )
        row = conn.execute("select value from meta where key = 'pipeline'").fetchone()
        if row is None or row[0] != pipeline_name:
            conn.execute("begin")
            conn.execute("delete from docs")
            conn.execute("delete from hits")
            conn.execute("delete from results")
            conn.execute("insert or replace into meta values ('pipeline', ?)", [pipeline_name])
            conn.execute("commit")

    def close(self) -> None:
        self.conn.close()

    def _select(self, sql: str, keys: list[bytes], prefix: list = ()) -> dict:
        found = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(sql.format(marks=marks), [*prefix, *chunk]):
                found[row[0]] = row[1:]
        return found

    def docs(self, keys: list[bytes]) -> dict[bytes, tuple[str, str]]:
        """(lemmas, tokens) per known key."""
        return self._select("select key, lemmas, tokens from docs where key in ({marks})", keys)

    def hits(self, ruleset: str, keys: list[bytes]) -> dict[bytes, list[tuple]]:
        """Rule hits as (code_id, start, end, text, pattern[, against]) per key matched under ``ruleset``."""
        rows = self._select("select key, hits from hits where ruleset = ? and key in ({marks})", keys, [ruleset])
        return {key: [tuple(h) for h in json.loads(value[0])] for key, value in rows.items()}

    def put(self, docs: list[tuple[bytes, str, str]], hits: list[tuple[str, bytes, list[tuple]]]) -> None:
        conn = self.conn
        conn.execute("begin")
        conn.executemany("insert or replace into docs values (?, ?, ?)", docs)
        conn.executemany(
            "insert or replace into hits values (?, ?, ?)",
            ((ruleset, key, json.dumps([list(h.as_tuple()) for h in found], ensure_ascii=False)) for ruleset, key, found in hits),
        )
        conn.execute("commit")


    def results(self, kind: str, keys: list[bytes]) -> dict[bytes, object]:
        rows = self._select("select key, value from results where kind = ? and key in ({marks})", keys, [kind])
        return {key: json.loads(value[0]) for key, value in rows.items()}

    def put_results(self, kind: str, items: list[tuple[bytes, object]]) -> None:
        conn = self.conn
        conn.execute("begin")
        conn.executemany(
            "insert or replace into results values (?, ?, ?)",
            ((kind, key, json.dumps(value, ensure_ascii=False)) for key, value in items),
        )
        conn.execute("commit")


def encode_tokens(doc) -> str:
    """What rebuilds the doc for the matcher: token offsets and lemmas
    (a lemma equal to the word's lower-case form is stored as '')."""
    from spacy.attrs import IDX, LEMMA, LENGTH, LOWER

    strings = doc.vocab.strings
    rows = doc.to_array([IDX, LENGTH, LOWER, LEMMA]).tolist()
    starts = [r[0] for r in rows]
    ends = [r[0] + r[1] for r in rows]
    lemmas = ["" if r[3] == r[2] else strings[r[3]] for r in rows]
    return json.dumps([starts, ends, lemmas], ensure_ascii=False, separators=(",", ":"))


def decode_doc(vocab, text: str, tokens: str):
    from spacy.tokens import Doc

    starts, ends, lemmas = json.loads(tokens)
    words = [text[s:e] for s, e in zip(starts, ends)]
    following = starts[1:] + [len(text)]
    spaces = [e < n for e, n in zip(ends, following)]
    lemmas = [lemma or word.lower() for lemma, word in zip(lemmas, words)]
    return Doc(vocab, words=words, spaces=spaces, lemmas=lemmas)
