"""The parser for plain texts from elsewhere (a REFI-QDA project's sources).

A paragraph is the text between blank lines, kept as it is: line breaks
inside it become spaces (one character for one, so offsets into the original
hold), nothing is removed or rewritten. A short line alone, without closing
punctuation, is a heading. A text casebase exported (paragraphs one a line,
separated by a blank line) reads back into the very same excerpts.
"""

from __future__ import annotations

import re

from casebase.ingest.segment import Block, Case

# A blank line: a line end, spaces or tabs only, another line end.
_BLANK_LINE = re.compile(r"(?:\r\n|\r|\n)[^\S\r\n]*(?:\r\n|\r|\n)")
_LINE_END = re.compile(r"[\r\n]")
HEADING_WORDS = 12
_CLOSING = tuple(".!?:;,…\"'»”’)")


def paragraph_spans(raw: str) -> list[tuple[int, int]]:
    """Each paragraph's [start, end) in the raw text, surrounding space left out."""
    spans = []
    start = 0
    for separator in [*_BLANK_LINE.finditer(raw), None]:
        end = separator.start() if separator else len(raw)
        chunk = raw[start:end]
        stripped = chunk.strip()
        if stripped:
            first = start + (len(chunk) - len(chunk.lstrip()))
            spans.append((first, first + len(stripped)))
        if separator:
            start = separator.end()
    return spans


def parse(raw: str) -> tuple[list[Block], list]:
    blocks = []
    for start, end in paragraph_spans(raw):
        text = _LINE_END.sub(" ", raw[start:end])
        heading = not _LINE_END.search(raw[start:end]) and len(text.split()) <= HEADING_WORDS and not text.endswith(_CLOSING)
        blocks.append(Block(kind="heading" if heading else "paragraph", text=text))
    return blocks, []


def with_cases(raw: str, blocks: list[Block], listed: list[dict]) -> list[Case]:
    """The cases sources.yaml lists for the text: each paragraph lying for more than
    half inside a case's [start, end) belongs to it (the first such case)."""
    cases = []
    spans = paragraph_spans(raw)
    for entry in listed:
        fields = {k: v for k, v in entry.items() if k not in ("key", "title", "start", "end")}
        cases.append(Case(key=entry["key"], title=entry["title"], **fields))
        for block, (start, end) in zip(blocks, spans):
            inside = min(end, entry["end"]) - max(start, entry["start"])
            if block.case_key is None and inside * 2 > end - start:
                block.case_key = entry["key"]
    return cases
