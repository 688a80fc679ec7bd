"""Which Danish pipeline a build uses, known without importing spaCy.

Every build records the pipeline that produced its lemmas, and the analysis
cache is keyed by it. A rebuild whose lemmas and rule hits all come from the
cache never needs spaCy itself, so the name of the fallback pipeline is read
here from its config file and the installed versions, not from a loaded
pipeline (importing spaCy is a second of such a rebuild).
"""

from __future__ import annotations

import configparser
import functools
import json
from importlib import metadata, resources

TRAINED_PACKAGE = "da_core_news_sm"
FALLBACK_NAME = "casebase-da-fallback"
# Part of the name stored with every build: bump it whenever the fallback's
# output changes, so that builds know their lemmas are stale.
FALLBACK_VERSION = "1"
FALLBACK_CONFIG = resources.files("casebase") / "data" / "fallback.cfg"


def trained_installed() -> bool:
    try:
        metadata.distribution(TRAINED_PACKAGE)
    except metadata.PackageNotFoundError:
        return False
    return True


def fallback_name(lexicons: list[str]) -> str:
    versions = f"spaCy {metadata.version('spacy')}"
    # The lookup table's contents are part of the lemmas, so its version is too.
    if "spacy_lookups" in lexicons:
        versions += f", spacy-lookups-data {metadata.version('spacy-lookups-data')}"
    return f"{FALLBACK_NAME} {FALLBACK_VERSION} ({versions})"


@functools.lru_cache(maxsize=1)
def pipeline_identity() -> str:
    """``danish.pipeline_name(danish.load_pipeline())``, without loading or importing
    spaCy: a trained package is named by its distribution, the fallback by its config."""
    if trained_installed():
        # spaCy names a packaged pipeline lang_name version: da_core_news_sm 3.8.0.
        return f"{TRAINED_PACKAGE} {metadata.version(TRAINED_PACKAGE)}"
    # The config is thinc's format: INI sections with JSON values.
    config = configparser.ConfigParser(interpolation=None)
    config.read_string(FALLBACK_CONFIG.read_text(encoding="utf-8"))
    return fallback_name(json.loads(config["components.casebase_lemmatizer"]["lexicons"]))
