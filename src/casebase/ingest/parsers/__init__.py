"""Parsers turn a source's raw text into blocks and cases.

Which parser applies to a source is set by ``parser:`` in corpus/sources.yaml.
Each parser module has ``parse(raw: str) -> tuple[list[Block], list[Case]]``.
"""

from __future__ import annotations

import importlib

from casebase.ingest.segment import Block, Case

PARSERS = ("report", "markdown", "vive", "plain")


def parse(parser: str, raw: str) -> tuple[list[Block], list[Case]]:
    if parser not in PARSERS:
        raise ValueError(f"unknown parser {parser!r}")
    module = importlib.import_module(f"{__name__}.{parser}")
    return module.parse(raw)
