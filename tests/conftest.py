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
    from casebase.pipeline import build

    db_path = tmp_path_factory.mktemp("db") / "casebase.db"
    build(CORPUS, db_path)
    return db_path


REPO_CODEBOOK = REPO / "codebook.yaml"


@pytest.fixture(scope="session")
def book():
    """The seed codebook (tests that change a codebook write their own copy)."""
    from casebase.coding import codebook

    return codebook.load(REPO_CODEBOOK)


@pytest.fixture(scope="session")
def matcher(book):
    """The seed codebook's rules on the Danish pipeline."""
    from casebase.coding import rules
    from casebase.nlp import danish

    return rules.RuleMatcher(danish.load_pipeline(), book)
PASSWORDS = {"anna": "anna-koder-1", "bo": "bo-koder-22"}


def make_coding_site(site: Path, built_db: Path):
    """A private copy of the built seed database, its model and analyses, the corpus and
    the codebook, with two coder accounts, in ``site``: what 'casebase serve --coding'
    serves. Returns the folder and its CodingSettings."""
    from casebase.publish import coders
    from casebase.publish import serving

    shutil.copytree(CORPUS, site / "corpus")
    shutil.copy(REPO_CODEBOOK, site / "codebook.yaml")
    (site / "db").mkdir()
    shutil.copy(built_db, site / "db" / "casebase.db")
    for folder in ("models", "cache"):  # a retrain reuses the build's model and analyses
        if (built_db.parent / folder).exists():
            shutil.copytree(built_db.parent / folder, site / "db" / folder)
    for name, password in PASSWORDS.items():
        coders.add(site / "coders.json", name, password)
    settings = serving.CodingSettings(site / "corpus", site / "codebook.yaml", site / "coders.json")
    return site, settings


def coding_server_args(site: Path, settings) -> list[str]:
    """'casebase serve' arguments for a site made by make_coding_site."""
    return ["--coding", "--db", str(site / "db" / "casebase.db"), "--corpus", str(settings.corpus),
            "--codebook", str(settings.codebook), "--coders", str(settings.coders)]


@pytest.fixture
def coding_site(tmp_path, built_db):
    return make_coding_site(tmp_path / "site", built_db)
