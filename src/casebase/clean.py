"""Repair PDF-extraction noise in the seed reports.

The reports were extracted page by page and concatenated: a line that begins
with a single space usually starts a new page, words are hyphenated across
line breaks, and running headers, figure labels and footnote URLs sit among
the body lines. This module works on physical lines; parsers group them into
blocks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass
class Line:
    text: str  # the physical line, without its line break
    page: int  # 1-based page of the extraction
    number: int  # 1-based line number in the source file


_PAGE_START = re.compile(r"^ (?! )\S")


def split_pages(raw: str) -> list[Line]:
    """Physical lines with the page each is on."""
    lines: list[Line] = []
    page = 1
    for number, text in enumerate(raw.split("\n"), start=1):
        text = text.rstrip("\r")
        if number > 1 and _PAGE_START.match(text):
            page += 1
        lines.append(Line(text=text, page=page, number=number))
    return lines


_HYPHEN_END = re.compile(r"(\w)- ?$")


def join_lines(texts: list[str]) -> str:
    """Join physical lines into one paragraph, repairing hyphenation at line ends."""
    out = ""
    for text in texts:
        text = text.strip()
        if not text:
            continue
        if not out:
            out = text
        elif _HYPHEN_END.search(out) and text[:1].islower():
            out = _HYPHEN_END.sub(r"\1", out) + text
        else:
            out = out + " " + text
    return re.sub(r"\s+", " ", out).strip()
