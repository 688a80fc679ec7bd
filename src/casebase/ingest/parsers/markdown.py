"""The parser for Markdown sources (seed 001, a press release).

Blocks are the Markdown paragraphs: ``#`` headings become headings (an
italic subtitle right under a heading joins it), paragraphs opening with an
italic quotation become quotes, and emphasis markers, link syntax and the
press-wire furniture (dateline, rules, contact cards, "read more" links) are
removed. A paragraph that a stray blank line cut mid-sentence is joined again.

A heading such as "2 eksempler på nyskabelse i Corona-tiden" announces
cases: the next headings, as many as it counts, are the case titles, and the
blocks under each belong to that case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from casebase.ingest import clean
from casebase.ingest.segment import Block, Case, slug


def parse(raw: str) -> tuple[list[Block], list[Case]]:
    items = drop_empty_sections(join_broken_paragraphs(markdown_items(raw)))
    blocks = [Block(kind=item.kind, text=item.text) for item in items]
    cases = mark_example_cases(items, blocks)
    return blocks, cases


@dataclass
class Item:
    kind: str
    text: str
    level: int = 0  # heading level; 0 for other blocks


_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_DATELINE = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2})?( [A-Z]{3,4})?$")
_RULE = re.compile(r"^(-{3,}|\*{3,}|_{3,})$")
_LINK = re.compile(r"\[([^\]]*)\]\(([^)]*)\)")
_AUTOLINK = re.compile(r"<(https?://|mailto:)[^>]*>")
_EMPHASIS = re.compile(r"(\*{1,3}|_{1,3})")
_CONTACT = re.compile(r"@|\btlf\b|\b\d{2} \d{2} \d{2} \d{2}\b", re.IGNORECASE)
_ITALIC_QUOTE = re.compile(r"^\*+\s*[\"“”„]")
# A paragraph built around a link and short enough to be only that ("Læs
# rapporten ... [HER](#).", "streames på Facebook: <url>") is a pointer, not content.
_POINTER_LENGTH = 120


def markdown_items(raw: str) -> list[Item]:
    items: list[Item] = []
    for paragraph in re.split(r"\n\s*\n", raw):
        lines = [line.strip() for line in paragraph.strip().split("\n") if line.strip()]
        if not lines:
            continue
        item = item_from_lines(lines)
        if item is None:
            continue
        if item.kind == "subtitle":
            if items and items[-1].kind == "heading":
                items[-1].text = f"{items[-1].text} {item.text}"
            continue
        items.append(item)
    return items


def item_from_lines(lines: list[str]) -> Item | None:
    first = lines[0]
    heading = _HEADING.match(first)
    if heading and len(lines) == 1:
        return Item("heading", plain_text(heading.group(2)), level=len(heading.group(1)))
    source = " ".join(lines)
    if _DATELINE.match(source) or _RULE.match(source):
        return None
    text = plain_text(source)
    has_link = bool(_LINK.search(source) or _AUTOLINK.search(source))
    if not text or _CONTACT.search(text) or (has_link and len(text) < _POINTER_LENGTH):
        return None
    if re.match(r"^\*+\s*–", source):
        return Item("subtitle", text)
    if _ITALIC_QUOTE.match(source) or (source.startswith("*") and not source.startswith("**")):
        return Item("quote", text)
    return Item("paragraph", text)


def plain_text(markdown: str) -> str:
    """Text without link syntax and emphasis markers, cleaned like report text."""
    text = _AUTOLINK.sub(" ", markdown)
    text = _LINK.sub(lambda link: link.group(1), text)
    text = _EMPHASIS.sub("", text)
    return clean.clean_text(text)


def join_broken_paragraphs(items: list[Item]) -> list[Item]:
    """"... hvor samfundets sårbare grupper" + "som hjemløse og prostituerede ..."."""
    out: list[Item] = []
    for item in items:
        previous = out[-1] if out else None
        if (
            previous is not None
            and previous.kind in ("paragraph", "quote")
            and item.kind in ("paragraph", "quote")
            and continues(previous.text, item.text)
        ):
            previous.text = clean.clean_text(clean.join_pair(previous.text, item.text))
            continue
        out.append(item)
    return out


def continues(previous: str, text: str) -> bool:
    """Whether ``text`` goes on with the sentence ``previous`` left open."""
    first_letter = re.sub(r"^[^\w]+", "", text)[:1]
    return previous[-1:] not in ".!?:;”’\"" and first_letter.islower()


def drop_empty_sections(items: list[Item]) -> list[Item]:
    """A heading with nothing left under it (a contact card section) goes too."""
    out: list[Item] = []
    for i, item in enumerate(items):
        if item.kind == "heading":
            following = items[i + 1] if i + 1 < len(items) else None
            if following is None or (following.kind == "heading" and following.level <= item.level):
                continue
        out.append(item)
    return out


_EXAMPLES = re.compile(r"^(\d+|to|tre|fire|fem) eksempler\b", re.IGNORECASE)
_NUMBER_WORDS = {"to": 2, "tre": 3, "fire": 4, "fem": 5}


def mark_example_cases(items: list[Item], blocks: list[Block]) -> list[Case]:
    """Cases announced by an "N eksempler ..." heading; sets ``case_key`` in place."""
    cases: list[Case] = []
    remaining = 0
    current: Case | None = None
    for item, block in zip(items, blocks):
        if item.kind == "heading":
            announced = _EXAMPLES.match(item.text)
            if announced:
                count = announced.group(1).lower()
                remaining = int(count) if count.isdigit() else _NUMBER_WORDS[count]
                current = None
                continue
            if remaining:
                remaining -= 1
                current = Case(key=case_key(item.text), title=item.text)
                cases.append(current)
            else:
                current = None
        if current is not None:
            block.case_key = current.key
            if current.organisation is None and item.kind != "heading":
                current.organisation = organisation_named(item.text)
    return cases


def case_key(title: str) -> str:
    return slug(" ".join(title.split()[:4]))


_NAME_WORD = r"(?:[A-ZÆØÅ][\w]*(?:[’'][a-z]+)?)"
_NAME = rf"{_NAME_WORD}(?: {_NAME_WORD})*"
_ORGANISATIONS = re.compile(rf"(?<![.!?:] )(?<!^)\b({_NAME}(?:(?:, | og ){_NAME})*)")


def organisation_named(text: str) -> str | None:
    """The first run of proper names inside a sentence, e.g. "Aarhus Kommune og
    Røde Kors, Ældre Sagen, Folkekirken" or "KFUM’s Sociale Arbejde"."""
    for match in _ORGANISATIONS.finditer(text):
        name = match.group(1)
        words = re.split(r", | og | ", name)
        # a single capitalised word is too often a place or a person's first name
        if len(words) >= 2 or "’" in name:
            return name
    return None
