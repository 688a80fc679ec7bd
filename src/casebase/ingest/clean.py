"""Repair PDF-extraction noise in the seed reports.

The reports were extracted page by page and concatenated: a line that begins
with a single space usually starts a new page, words are hyphenated across
line breaks, and running headers, figure labels and footnote URLs sit among
the body lines. This module works on physical lines and on the text of one
block; ``casebase.parsers.report`` groups the lines into blocks.

Conventions of the cleaned text:

- whitespace is collapsed to single spaces; tabs, bullet glyphs and the
  replacement character left by lost glyphs are removed (a lost glyph inside
  a word was the "fi" ligature: "De\ufffdnition" becomes "Definition");
- double quotes are typographic pairs: an opening quote (after a space, a
  bracket or at the start) is “ and a closing one is ”, whichever of " “ ” „
  the source used (Danish typesetting often opens with ”);
- single quotes and apostrophes are ’ (opening ‘ is kept), straight ' becomes ’;
- a hyphen at a line end is a break hyphen and is removed when the next line
  continues the word in lower case, unless the joined word is a hyphenated
  compound (see ``join_lines``).
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


def starts_page(line: Line) -> bool:
    return line.number > 1 and bool(_PAGE_START.match(line.text))


_LOST_LIGATURE = re.compile(r"(?<=[a-zæøå])\ufffd(?=[a-zæøå])", re.IGNORECASE)
_GLYPH_NOISE = re.compile("[\ufffd\uf0b7\u25aa\u2022\u25cf\u00ad]")
_OPENING_CONTEXT = re.compile(r"[\s(\[{/–—-]")


def clean_text(text: str) -> str:
    """One line or block of text with glyph noise, spacing and quotes normalised."""
    text = _LOST_LIGATURE.sub("fi", text)
    text = _GLYPH_NOISE.sub(" ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return normalise_quotes(text)


def normalise_quotes(text: str) -> str:
    """Double quotes as “ ” pairs by position; straight apostrophes as ’."""
    chars = list(text.replace("'", "’"))
    for i, char in enumerate(chars):
        if char not in "\"“”„":
            continue
        before = chars[i - 1] if i > 0 else " "
        after = chars[i + 1] if i + 1 < len(chars) else " "
        opening = bool(_OPENING_CONTEXT.match(before)) and not after.isspace()
        chars[i] = "“" if opening else "”"
    return "".join(chars)


# Hyphenated compounds whose second part can be mistaken for the rest of a
# word broken across lines.
HYPHEN_COMPOUNDS = ("to-go", "én-til-én", "en-til-en", "walk-and-talk", "drive-in", "face-to-face")
# Words after which a line-final "x-" is the first half of a suspended
# compound ("hjemløse- og stofmisbrugsmiljøer"), not a broken word.
_SUSPENDED_COMPOUND_FOLLOWERS = ("og", "eller", "samt", "og/eller")

_LINE_FINAL_HYPHEN = re.compile(r"(\S*?)(\w)-$")
_FIRST_WORD = re.compile(r"^[\w/-]+")


def join_lines(texts: list[str], hyphenated: frozenset[str] = frozenset()) -> str:
    """Join physical lines into one paragraph, repairing hyphenation at line ends.

    ``hyphenated`` holds words (lower case) the same document spells with a
    hyphen inside a line; a break that would rebuild one of them keeps its
    hyphen, so "cost-benefit-" + "analyser" stays "cost-benefit-analyser".
    """
    out = ""
    for text in texts:
        text = re.sub(r"\s+", " ", text).strip()
        if not text:
            continue
        out = join_pair(out, text, hyphenated) if out else text
    return out


def join_pair(left: str, right: str, hyphenated: frozenset[str] = frozenset()) -> str:
    """``left`` and ``right`` joined as one run of text across a line break."""
    left, right = left.rstrip(), right.lstrip()
    match = _LINE_FINAL_HYPHEN.search(left)
    if not match or not right:
        return f"{left} {right}".strip()
    head = match.group(1) + match.group(2)
    first = _FIRST_WORD.match(right)
    tail = first.group(0) if first else ""
    if tail.lower() in _SUSPENDED_COMPOUND_FOLLOWERS:
        return f"{left} {right}"
    if keeps_hyphen(head, tail, hyphenated):
        return left + right
    return left[:-1] + right


def keeps_hyphen(head: str, tail: str, hyphenated: frozenset[str] = frozenset()) -> bool:
    """Whether ``head-`` at a line end and ``tail`` on the next line form a
    hyphenated word rather than one word broken in two."""
    if not tail or not tail[0].islower():
        # "covid-" + "19-krisen", "Faaborg-" + "Midtfyn"
        return True
    word = re.sub(r"^\W+", "", head)
    last_part = word.rsplit("-", 1)[-1]
    if last_part[-1:].isdigit() or len(last_part) == 1:
        return True  # "covid-19-" + "krisen", "a-" + "kasser"
    if len(last_part) >= 2 and last_part.isupper():
        return True  # "STU-" + "elever", "CSR-" + "indsats"
    joined = f"{word}-{tail}".lower()
    tail_clean = re.sub(r"\W+$", "", tail.lower())
    joined_clean = f"{word}-{tail_clean}".lower()
    if joined_clean in hyphenated and (word + tail_clean).lower() not in hyphenated:
        return True
    break_at = len(word)
    for compound in HYPHEN_COMPOUNDS:
        start = joined.find(compound)
        while start != -1:
            if start < break_at < start + len(compound):
                return True
            start = joined.find(compound, start + 1)
    return False


_WORD = re.compile(r"\w[\w-]*\w")


def vocabulary(texts: list[str]) -> frozenset[str]:
    """Lower-case words as spelled inside lines, for ``join_lines``' hyphen check."""
    words: set[str] = set()
    for text in texts:
        # the last word of a line may be the first half of a broken word
        for word in _WORD.findall(text.rsplit(" ", 1)[0] if text.rstrip().endswith("-") else text):
            words.add(word.lower())
    return frozenset(words)
