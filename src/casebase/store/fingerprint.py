"""What a build is made from, as one hash: is the database already up to date?

Everything that can change a build's output counts: every file of the corpus
(sources.yaml, texts, answers, coding files), the codebook, the saved model
and evaluation figures in the models folder, casebase's own code and the
versions of the NLP libraries. The hash is stored in the built database
(``build_info.inputs_fingerprint``); when it matches, ``casebase build`` has
nothing to do and says so in well under a second. Deliberately light: no
spaCy or scikit-learn import on this path.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
from importlib import metadata
from pathlib import Path

KEY = "inputs_fingerprint"
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the whole casebase package
# Lock files change on every save without changing a decision.
IGNORED_SUFFIXES = (".lock", ".tmp")
LIBRARIES = ("spacy", "spacy-lookups-data", "scikit-learn", "da-core-news-sm")
MODEL_FILES = ("model.json", "evaluation.json", "out_of_fold.json")


def _files(directory: Path):
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.rglob("*") if p.is_file() and not p.name.endswith(IGNORED_SUFFIXES) and not p.name.startswith(".")
    )


def _add_file(digest, path: Path, root: Path) -> None:
    digest.update(str(path.relative_to(root)).encode("utf-8") + b"\0")
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    digest.update(b"\0")


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """casebase's own code and data, and the library versions its output depends on."""
    digest = hashlib.sha256()
    for path in _files(PACKAGE_DIR):
        if path.suffix in (".py", ".cfg", ".tsv"):
            _add_file(digest, path, PACKAGE_DIR)
    for library in LIBRARIES:
        try:
            version = metadata.version(library)
        except metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"{library}={version}\0".encode())
    return digest.hexdigest()


def sources_part(corpus_dir: Path, codebook_path: Path) -> str:
    """The code, the corpus and the codebook: taken before a build reads them, so
    that a save made while the build runs makes the next build a real one."""
    corpus_dir, codebook_path = Path(corpus_dir), Path(codebook_path)
    digest = hashlib.sha256(code_fingerprint().encode())
    for path in _files(corpus_dir):
        _add_file(digest, path, corpus_dir)
    digest.update(b"codebook\0")
    if codebook_path.is_file():
        _add_file(digest, codebook_path, codebook_path.parent)
    return digest.hexdigest()


def models_part(db_path: Path) -> str:
    """The saved model and its figures: taken after the build has (re)trained."""
    digest = hashlib.sha256()
    models = Path(db_path).parent / "models"
    for name in MODEL_FILES:
        if (models / name).is_file():
            _add_file(digest, models / name, models)
    return digest.hexdigest()


def combine(sources: str, models: str) -> str:
    return hashlib.sha256(f"{sources}:{models}".encode()).hexdigest()


def inputs_fingerprint(corpus_dir: Path, codebook_path: Path, db_path: Path) -> str:
    return combine(sources_part(corpus_dir, codebook_path), models_part(db_path))


def built_fingerprint(db_path: Path) -> str | None:
    """The fingerprint the database at ``db_path`` was built from, if it has one."""
    db_path = Path(db_path)
    if not db_path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = conn.execute("select value from build_info where key = ?", [KEY]).fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return None
    return row[0] if row else None


def up_to_date(corpus_dir: Path, codebook_path: Path, db_path: Path) -> tuple[bool, str]:
    """Whether the database was built from exactly today's inputs, and their fingerprint."""
    wanted = inputs_fingerprint(corpus_dir, codebook_path, db_path)
    return built_fingerprint(db_path) == wanted, wanted
