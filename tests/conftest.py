import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
TEXTS = CORPUS / "texts"
METADATA = REPO / "metadata.yml"


@pytest.fixture
def corpus_copy(tmp_path) -> Path:
    """A private copy of the real corpus that a test may damage."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


@pytest.fixture(scope="session")
def built_db(tmp_path_factory) -> Path:
    """The real seed corpus, built once for the whole test session."""
    from casebase.build import build

    db_path = tmp_path_factory.mktemp("db") / "casebase.db"
    build(CORPUS, db_path)
    return db_path
