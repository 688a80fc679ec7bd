"""The SQLite schema and the writes, with sqlite-utils.

A build writes a new database file next to the target and moves it into
place with one atomic rename, only when every stage succeeded: a failed or
killed build leaves the previous database as it was.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from casebase.errors import CasebaseError
from casebase.files import atomic_path
from casebase.ingest.segment import CASE_COLUMNS

# unicode61 without diacritic folding: in Danish å, æ and ø are letters of their
# own ("får" is not "far"), so they must not be folded to a and o.
FTS_TOKENIZE = "unicode61 remove_diacritics 0"
# Where a coding came from: the values of codings.origin.
ORIGINS = ("human", "model", "rule")
# "origin in …" for a chosen set of origins, bound as one JSON array parameter.
ORIGIN_LIST = "(select value from json_each(?))"
# What the publishing commands (exports) read; a file without them is no build of ours.
BUILT_TABLES = ("sources", "source_texts", "cases", "excerpts", "attributes", "codes", "codings", "decisions")


def create_schema(db: sqlite_utils.Database) -> None:
    db["sources"].create(
        {
            "id": str,
            "title": str,
            "publisher": str,
            "year": int,
            "kind": str,
            "language": str,
            "parser": str,
            "file": str,
            "sha256": str,
            "licence": str,
            "url": str,
            "description": str,
            "excerpt_count": int,
            "case_count": int,
        },
        pk="id",
    )
    db["source_texts"].create(
        {"source_id": str, "text": str},
        pk="source_id",
        foreign_keys=[("source_id", "sources", "id")],
    )
    db["cases"].create(
        {
            "id": str,
            "source_id": str,
            "title": str,
            **{column.name: column.type for column in CASE_COLUMNS},
            "excerpt_count": int,
            "codes": str,  # JSON array of code ids, see summaries.py
        },
        pk="id",
        foreign_keys=[("source_id", "sources", "id")],
    )
    db["excerpts"].create(
        {
            "id": str,
            "source_id": str,
            # Global reading order (sources in sources.yaml order, each in its own
            # order), unique: what the excerpt table sorts by, so that paging and
            # CSV streaming (keyset pagination on the sort column) lose no rows.
            "position": int,
            "seq": int,
            "kind": str,
            "section": str,
            "page": int,
            "case_id": str,
            "field": str,
            "char_start": int,
            "char_end": int,
            "text": str,
            "codes": str,  # JSON array of code ids, see summaries.py
            "origins": str,  # JSON array of the codings' origins (human, model, rule), see summaries.py
            "route": str,  # the router's verdict (human, auto, review), copied from routes for filtering
            "lemmas": str,
        },
        pk="id",
        foreign_keys=[("source_id", "sources", "id"), ("case_id", "cases", "id")],
    )
    db["attributes"].create(
        {"entity": str, "entity_id": str, "name": str, "value": str},
        pk=("entity", "entity_id", "name"),
    )
    db["build_info"].create({"key": str, "value": str}, pk="key")
    db["codes"].create(
        {
            "id": str,
            "label_da": str,
            "label_en": str,
            "parent_id": str,
            "definition": str,
            "include": str,
            "exclude": str,
            "colour": str,
            "examples": str,
            "patterns": str,
            "replaces": str,
            "depth": int,
            "position": int,
            "codebook_version": str,
            "codable": int,  # 0: a grouping code (a heading over its children), never coded
        },
        pk="id",
        foreign_keys=[("parent_id", "codes", "id")],
    )
    db["codings"].create(
        {
            "excerpt_id": str,
            "code_id": str,
            "origin": str,
            "score": float,
            "coder": str,
            "model_run": str,
            "codebook_version": str,
        },
        pk=("excerpt_id", "code_id"),
        foreign_keys=[("excerpt_id", "excerpts", "id"), ("code_id", "codes", "id")],
    )
    db["rule_hits"].create(
        {"excerpt_id": str, "code_id": str, "start": int, "end": int, "text": str, "pattern": str, "against": int},
        foreign_keys=[("excerpt_id", "excerpts", "id"), ("code_id", "codes", "id")],
    )
    db["routes"].create(
        {"excerpt_id": str, "route": str, "expected_precision": float, "confidence": float},
        pk="excerpt_id",
        foreign_keys=[("excerpt_id", "excerpts", "id")],
    )
    db["constructed_examples"].create(
        {"id": str, "code_id": str, "polarity": str, "text": str, "lemmas": str, "rule_hits": str},
        pk="id",
        foreign_keys=[("code_id", "codes", "id")],
    )
    db["decisions"].create(
        {
            "coder": str,
            "excerpt_id": str,
            "recorded_excerpt_id": str,
            "codes": str,
            "judged": str,
            "timestamp": str,
            "codebook_version": str,
            "note": str,
            "file": str,
            "line": int,
            "status": str,
            "adjudication": int,  # 1: an adjudicator's ruling on a disagreement
        },
    )
    db["suggestions"].create(
        # rule_hit: 1 where a pattern of the code (not an exclude pattern) fired in
        # the excerpt; rule and model disagree where rule_hit != (score >= threshold).
        {"excerpt_id": str, "code_id": str, "score": float, "threshold": float, "distance": float, "rule_hit": int},
        pk=("excerpt_id", "code_id"),
        foreign_keys=[("excerpt_id", "excerpts", "id"), ("code_id", "codes", "id")],
    )
    db["model_runs"].create(
        {
            "id": str,
            "created": str,
            "codebook_version": str,
            "nlp_pipeline": str,
            "training_examples": int,
            "training_hash": str,
            "trained_codes": str,
            "thresholds": str,
            "library_versions": str,
            "folds": int,
            "micro_f1": float,
            "macro_f1": float,
            "baseline_micro_f1": float,
            "baseline_macro_f1": float,
            "constructed_examples": int,
            "target_precision": float,
            "route_threshold": float,
            "route_coverage": float,
            "route_precision": float,
        },
        pk="id",
    )
    db["code_metrics"].create(
        {
            "run": str,
            "system": str,
            "stratum": str,
            "code_id": str,
            "precision": float,
            "recall": float,
            "f1": float,
            "support": int,
            "judged": int,
            "origin": str,
        },
        pk=("run", "system", "stratum", "code_id"),
        foreign_keys=[("run", "model_runs", "id"), ("code_id", "codes", "id")],
    )
    db["routing_curve"].create(
        {"run": str, "stratum": str, "confidence": float, "precision": float, "coverage": float},
        foreign_keys=[("run", "model_runs", "id")],
    )
    create_agreement_table(db)


AGREEMENT_COLUMNS = {
    "scope": str,  # code | pooled (every excerpt × code a unit) | mean (of the codes' values)
    "code_id": str,
    "measure": str,  # percent_agreement | krippendorff_alpha | cohen_kappa
    "coder_a": str,
    "coder_b": str,  # a coder, or "model" (out-of-fold predictions)
    "coders": int,
    "codes": int,
    "units": int,
    "value": float,  # NULL where the measure is undefined; note says why
    "note": str,
    "model_run": str,
    "codebook_version": str,
    "computed": str,
}


def create_agreement_table(db: sqlite_utils.Database) -> None:
    db["agreement"].create(AGREEMENT_COLUMNS, foreign_keys=[("code_id", "codes", "id")], if_not_exists=True)


# Where the rules and the model disagree (the review queue "disagreement"): a
# fraction of the scores, each read by its code and distance.
DISAGREEING = "rule_hit != (score >= threshold)"


def create_indexes(db: sqlite_utils.Database) -> None:
    excerpts = db["excerpts"]
    excerpts.create_index(["source_id", "seq"], unique=True)
    excerpts.create_index(["position"], unique=True)
    # codes: the JSON array facet and filter read this index, not the whole table
    # (2x faster on a million excerpts).
    for column in ("kind", "section", "case_id", "page", "codes", "origins", "route"):
        excerpts.create_index([column])
    cases = db["cases"]
    for column in ("source_id", "municipality", "area", "target_group", "source_theme"):
        cases.create_index([column])
    db["attributes"].create_index(["name", "value"])
    db["codings"].create_index(["code_id", "origin"])
    db["codings"].create_index(["origin"])
    db["routes"].create_index(["route"])
    db["rule_hits"].create_index(["excerpt_id"], if_not_exists=True)
    db["suggestions"].create_index(["code_id", "distance"])
    db["suggestions"].create_index(["distance"])
    # The disagreement queue and its count walk only the scores that disagree with
    # the rules, in the queue's order, whatever the corpus's size (coding_db).
    db.execute(f"create index idx_suggestions_disagreeing on suggestions(code_id, distance) where {DISAGREEING}")
    db.execute(f"create index idx_suggestions_disagreeing_distance on suggestions(distance) where {DISAGREEING}")
    db["decisions"].create_index(["excerpt_id"])
    db["decisions"].create_index(["coder"])
    excerpts.enable_fts(["text", "lemmas"], tokenize=FTS_TOKENIZE, create_triggers=True)


def write_source(db: sqlite_utils.Database, source, sha256: str, excerpt_count: int, cases: dict, cleaned_text: str | None) -> None:
    """Write a source's row, its cases and its cleaned text, once its excerpts are
    written (``write_excerpts``). Without a ``cleaned_text`` (a survey, streamed)
    nothing is written to ``source_texts``: the text is the excerpts laid out in
    order, read in parts where it is needed (``source_text.parts``)."""
    db["sources"].insert(
        {
            "id": source.id,
            "title": source.title,
            "publisher": source.publisher,
            "year": source.year,
            "kind": source.kind,
            "language": source.language,
            "parser": source.parser,
            "file": source.file,
            "sha256": sha256,
            "licence": source.licence,
            "url": source.url,
            "description": source.description,
            "excerpt_count": excerpt_count,
            "case_count": len(cases),
        }
    )
    if cleaned_text is not None:
        db["source_texts"].insert({"source_id": source.id, "text": cleaned_text})
    db["cases"].insert_all(
        (
            {
                "id": case_id,
                "source_id": source.id,
                "title": case.title,
                **{column.name: getattr(case, column.name) for column in CASE_COLUMNS},
                "excerpt_count": 0,
            }
            for case_id, case in cases.items()
        ),
        batch_size=500,
    )
    if cases:
        db.execute(
            """update cases set excerpt_count = (select count(*) from excerpts e where e.case_id = cases.id)
            where source_id = ?""",
            [source.id],
        )
        normalise_case_values(db)


# Case fields that are facets and search fields: one value per meaning, so that
# "Ledige borgere." and "Ledige borgere", or "Center for Omsorg og Rehabilitering"
# and "Center for omsorg og rehabilitering", are one facet entry.
NORMALISED_CASE_COLUMNS = ("municipality", "area", "target_group")
_TRAILING = " \t.,;:"


def tidy_case_value(value: str | None) -> str | None:
    """Whitespace collapsed, trailing punctuation dropped; None for nothing left."""
    if value is None:
        return None
    tidy = " ".join(value.split()).rstrip(_TRAILING)
    return tidy or None


def _canonical(variants: dict[str, int]) -> str:
    # The most common spelling; on a tie the one with the fewest capitals after the
    # first letter (Danish capitalises the first word, not every word).
    return min(variants, key=lambda v: (-variants[v], sum(c.isupper() for c in v[1:]), v))


def normalise_case_values(db: sqlite_utils.Database) -> None:
    """Tidy the facet columns of every case written so far and give values that
    differ only in case one spelling (re-run after each source: cases are few)."""
    for column in NORMALISED_CASE_COLUMNS:
        rows = db.execute(f"select id, {column} from cases where {column} is not null").fetchall()
        tidy = {case_id: tidy_case_value(value) for case_id, value in rows}
        variants: dict[str, dict[str, int]] = {}
        for value in tidy.values():
            if value is not None:
                spelled = variants.setdefault(value.casefold(), {})
                spelled[value] = spelled.get(value, 0) + 1
        chosen = {folded: _canonical(spelled) for folded, spelled in variants.items()}
        updates = [
            (chosen[value.casefold()] if value is not None else None, case_id)
            for case_id, value in tidy.items()
        ]
        changed = [(new, case_id) for (new, case_id), (_, old) in zip(updates, rows) if new != old]
        db.conn.executemany(f"update cases set {column} = ? where id = ?", changed)


def write_excerpts(db: sqlite_utils.Database, excerpts, lemmas) -> None:
    """Write a batch of excerpts with their lemmas and attributes, numbered on
    from the last one written (``position``: max(rowid) is a lookup, not a scan)."""
    start = db.execute("select coalesce(max(position), 0) from excerpts where rowid = (select max(rowid) from excerpts)").fetchone()[0]
    db["excerpts"].insert_all(
        (
            {
                "id": e.id,
                "source_id": e.source_id,
                "position": start + index,
                "seq": e.seq,
                "kind": e.kind,
                "section": e.section,
                "page": e.page,
                "case_id": e.case_id,
                "field": e.field,
                "char_start": e.char_start,
                "char_end": e.char_end,
                "text": e.text,
                "codes": "[]",  # until the codings are written (summaries.py)
                "origins": "[]",
                "route": None,
                "lemmas": excerpt_lemmas,
            }
            for index, (e, excerpt_lemmas) in enumerate(zip(excerpts, lemmas), start=1)
        ),
        batch_size=1000,
    )
    db["attributes"].insert_all(
        (
            {"entity": "excerpt", "entity_id": e.id, "name": name, "value": value}
            for e in excerpts
            for name, value in e.attributes.items()
        ),
        batch_size=1000,
    )


class ExcerptTexts:
    """The excerpts of a database by id, looked up as they are needed (``coding.resolve``,
    ``import-decisions``): memory independent of the corpus's size."""

    def __init__(self, db: sqlite_utils.Database):
        self.db = db

    def __contains__(self, excerpt_id) -> bool:
        return self.db.execute("select 1 from excerpts where id = ?", [excerpt_id]).fetchone() is not None

    def __getitem__(self, excerpt_id: str) -> str:
        found = self.db.execute("select text from excerpts where id = ?", [excerpt_id]).fetchone()
        if found is None:
            raise KeyError(excerpt_id)
        return found[0]

    def known(self, ids) -> set[str]:
        ids = list(ids)
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            found.update(r[0] for r in self.db.execute(f"select id from excerpts where id in ({', '.join('?' * len(chunk))})", chunk))
        return found

    def items(self):
        return self.db.execute("select id, text from excerpts order by rowid")


def excerpt_rows(db: sqlite_utils.Database, ids: list[str] | None = None, batch: int = 5000):
    """Batches of (id, text, lemmas, [rule hit tuples]): of the given ids, or of
    every excerpt in the order they were written."""
    if ids is not None:
        chunks = (ids[i : i + 500] for i in range(0, len(ids), 500))
        queries = ((f"where e.id in ({', '.join('?' * len(c))})", c) for c in chunks)
    else:
        last = db.execute("select coalesce(max(rowid), 0) from excerpts").fetchone()[0]
        queries = (("where e.rowid between ? and ?", [start, start + batch - 1]) for start in range(1, last + 1, batch))
    for where, params in queries:
        rows = db.execute(f"select e.id, e.text, e.lemmas from excerpts e {where} order by e.rowid", params).fetchall()
        hits: dict[str, list[tuple]] = {}
        for row in db.execute(
            f"""select h.excerpt_id, h.code_id, h.start, h."end", h.text, h.pattern, h.against = 1
            from rule_hits h join excerpts e on e.id = h.excerpt_id {where} order by h.rowid""",
            params,
        ):
            hits.setdefault(row[0], []).append(row[1:])
        if rows:
            yield [(r[0], r[1], r[2], hits.get(r[0], [])) for r in rows]


def write_build_info(db: sqlite_utils.Database, info: dict[str, str]) -> None:
    db["build_info"].upsert_all(({"key": k, "value": str(v)} for k, v in info.items()), pk="key")


TABLE_COUNTS = "table_counts"  # build_info key: rows per table when the build ended


def write_table_counts(db: sqlite_utils.Database) -> None:
    # FTS5's shadow tables are hidden; the search table itself counts its content.
    shadow = ("_data", "_idx", "_docsize", "_config", "_content")
    counts = {name: db[name].count for name in db.table_names() if not ("_fts_" in name and name.endswith(shadow))}
    write_build_info(db, {TABLE_COUNTS: json.dumps(counts, sort_keys=True)})


def inspect_data(path) -> dict | None:
    """What ``datasette inspect`` would compute for a built database, from what
    the build recorded: the row counts per table, and as the file's hash (an ETag
    and the index page's id) one that differs between any two builds, since
    hashing gigabytes at every start-up is what this avoids. None for an older
    build or a foreign file."""
    import hashlib

    try:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            info = dict(conn.execute("select key, value from build_info where key in (?, ?, ?)",
                                     [TABLE_COUNTS, "inputs_fingerprint", "built_at"]).fetchall())
        finally:
            conn.close()
        if TABLE_COUNTS not in info:
            return None
        identity = f"{info.get('inputs_fingerprint', '')} {info.get('built_at', '')}"
        return {
            "file": str(path),
            "hash": hashlib.sha256(identity.encode("utf-8")).hexdigest(),
            # /-/databases.json and the database page show it; without it they answered 500.
            "size": Path(path).stat().st_size,
            "tables": {table: {"count": n} for table, n in json.loads(info[TABLE_COUNTS]).items()},
        }
    except (sqlite3.DatabaseError, ValueError, OSError):
        return None


BUILD_CACHE_KB = 384 * 1024  # the build's page cache


@contextmanager
def atomic_database(path: Path):
    """Yield a fresh database at a temporary path; move it over ``path`` on success
    (``files.atomic_path``: fsynced, one rename, removed on failure)."""
    remove_stale_temporaries(path)
    with atomic_path(path) as tmp:
        db = sqlite_utils.Database(tmp)
        # The temporary file is thrown away on any failure and fsynced before the
        # rename: a rollback journal would only double the writes.
        db.execute("pragma journal_mode = off")
        db.execute("pragma synchronous = off")
        # Excerpt ids are hashes: every table keyed by them (excerpts, codings,
        # suggestions, routes) is written in random key order, and with SQLite's 2 MB
        # page cache each insert read its index pages back from the file.
        db.execute(f"pragma cache_size = -{BUILD_CACHE_KB}")
        try:
            yield db
            db.conn.commit()
        finally:
            db.conn.close()


def remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary databases of builds that were killed (their process is gone)."""
    for tmp in Path(path).parent.glob(f".{Path(path).name}.*.tmp"):
        try:
            pid = int(tmp.name.rsplit(".", 2)[-2])
        except ValueError:
            continue
        if pid == os.getpid() or not _process_alive(pid):
            tmp.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_codebook(db: sqlite_utils.Database, codebook) -> None:
    db["codes"].insert_all(
        (
            {
                "id": code.id,
                "label_da": code.label_da,
                "label_en": code.label_en,
                "parent_id": code.parent,
                "definition": code.definition,
                "include": "\n".join(code.include),
                "exclude": "\n".join(code.exclude),
                "colour": code.colour,
                "examples": "\n".join(code.examples),
                "patterns": "\n".join(p.text for p in code.patterns),
                "replaces": " ".join(code.replaces),
                "depth": codebook.depth(code.id),
                "position": position,
                "codebook_version": codebook.version,
                "codable": int(code.codable),
            }
            for position, code in enumerate(codebook.codes.values())
        )
    )


def write_codings(db: sqlite_utils.Database, rows: list[dict]) -> None:
    db["codings"].insert_all(rows, batch_size=1000)


def write_rule_hits(db: sqlite_utils.Database, rows) -> None:
    db["rule_hits"].insert_all(rows, batch_size=1000)


def write_decisions(db: sqlite_utils.Database, placed, unplaced) -> None:
    """Every human decision row, current or superseded, placed or not: the audit trail."""
    rows = []
    for p in placed:
        d = p.decision
        rows.append(
            {
                "coder": d.coder,
                "excerpt_id": p.excerpt_id,
                "recorded_excerpt_id": d.excerpt_id,
                "codes": " ".join(p.codes),
                "judged": " ".join(p.judged),
                "timestamp": d.timestamp,
                "codebook_version": d.codebook_version,
                "note": d.note,
                "file": d.file,
                "line": d.line,
                "status": "reanchored" if p.reanchored else "placed",
                "adjudication": int(d.adjudication),
            }
        )
    for d in unplaced:
        rows.append(
            {
                "coder": d.coder,
                "excerpt_id": None,
                "recorded_excerpt_id": d.excerpt_id,
                "codes": " ".join(d.codes),
                "judged": "",
                "timestamp": d.timestamp,
                "codebook_version": d.codebook_version,
                "note": d.note,
                "file": d.file,
                "line": d.line,
                "status": "unplaced",
                "adjudication": int(d.adjudication),
            }
        )
    db["decisions"].insert_all(rows, batch_size=1000)


def write_queued(db: sqlite_utils.Database, rows: list[dict]) -> None:
    """Excerpts queued for a new code from a candidate theme (``coding.new_codes``),
    those of this build's excerpts; the review queue offers them as not yet judged."""
    db["queued"].create(
        {"code_id": str, "excerpt_id": str, "proposed_by": str, "timestamp": str},
        pk=("code_id", "excerpt_id"),
        foreign_keys=[("excerpt_id", "excerpts", "id"), ("code_id", "codes", "id")],
    )
    known = {row[0] for row in db.execute("select id from excerpts where id in (select value from json_each(?))", [json.dumps([r["excerpt_id"] for r in rows])])}
    db["queued"].insert_all([r for r in rows if r["excerpt_id"] in known], batch_size=1000, ignore=True)


def write_suggestions(db: sqlite_utils.Database, rows) -> None:
    db["suggestions"].insert_all(rows, batch_size=1000)


def write_model_run(db: sqlite_utils.Database, run: dict, metrics: list[dict], curves: list[dict]) -> None:
    db["model_runs"].insert(run)
    db["code_metrics"].insert_all(metrics)
    db["routing_curve"].insert_all(curves)


def open_built(path: Path) -> sqlite_utils.Database:
    """Open a built database read-only, or say clearly why it cannot be used."""
    path = Path(path)
    if not path.is_file():
        raise CasebaseError("no database; run 'casebase build' first", file=path)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        tables = {row[0] for row in conn.execute("select name from sqlite_master where type = 'table'")}
    except sqlite3.DatabaseError:
        raise CasebaseError("not a casebase database (not an SQLite file); run 'casebase build'", file=path) from None
    missing = [t for t in BUILT_TABLES if t not in tables]
    if missing:
        conn.close()
        raise CasebaseError(
            f"not a casebase database (no table {', '.join(missing)}); run 'casebase build'", file=path
        )
    return sqlite_utils.Database(conn)


def write_agreement(db: sqlite_utils.Database, rows: list[dict]) -> None:
    db["agreement"].insert_all(rows, batch_size=1000)


def replace_agreement(path: Path, rows: list[dict]) -> None:
    """Swap the agreement figures of a built database for new ones in one
    transaction: on any failure the previous figures stay as they were."""
    db = sqlite_utils.Database(path)
    try:
        with db.atomic():
            create_agreement_table(db)
            db["agreement"].delete_where()
            write_agreement(db, rows)
    finally:
        db.close()


def write_constructed_examples(db: sqlite_utils.Database, examples, lemmas, hits) -> None:
    """The codebook's constructed examples with their analysis: training data, never excerpts."""
    db["constructed_examples"].insert_all(
        {
            "id": f"{code_id}:{polarity}:{index}",
            "code_id": code_id,
            "polarity": polarity,
            "text": text,
            "lemmas": text_lemmas,
            "rule_hits": json.dumps([list(h.as_tuple()) for h in found], ensure_ascii=False),
        }
        for index, ((code_id, polarity, text), text_lemmas, found) in enumerate(zip(examples, lemmas, hits))
    )


def constructed_examples(db: sqlite_utils.Database) -> list[tuple]:
    """(code id, polarity, ExcerptInput) of the constructed examples a build stored."""
    from casebase.coding.final_codes import ExcerptInput
    from casebase.coding.rules import RuleHit

    if not db["constructed_examples"].exists():
        return []
    return [
        (code_id, polarity, ExcerptInput(row_id, text, lemmas, [RuleHit(*h) for h in json.loads(hits)]))
        for row_id, code_id, polarity, text, lemmas, hits in db.execute(
            "select id, code_id, polarity, text, lemmas, rule_hits from constructed_examples order by rowid"
        )
    ]


def write_routes(db: sqlite_utils.Database, rows) -> None:
    db["routes"].insert_all(rows, batch_size=1000)
