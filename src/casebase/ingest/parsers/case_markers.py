"""Cases that a report marks out in its own layout.

The generic report parser cuts a source into blocks; this module finds the
runs of blocks the report itself presents as a case and links them to a
``Case``. Only what the layout clearly delimits becomes a case:

- CASE articles (Mandag Morgen 2020): a page opens with the kicker "CASE",
  then the title and a lead, or straight away the body with the title and lead
  placed further down the page. The expert comment "Casen er interessant,
  fordi:" belongs to the case; the article may go on after it on the same
  page. The case ends at the first page after the comment's page, or earlier
  where a new chapter kicker (TEMA, PERSPEKTIV, "– hvad lærte vi?") or another
  case begins. On the comment's page the kicker "CASE" is repeated as a
  running header; it does not open a new case.
- "Minicase:" boxes: the kicker, a title, a few paragraphs, all on one page.
- INSPIRATION boxes (Fremtidens velfærdsalliancer): an optional box heading,
  "INSPIRATION: <text>", more paragraphs, and a closing "Kilde: ..." line. A
  box is a case when its first sentence (or failing that its heading) names an
  organisation, project or municipality that did something. Boxes that open
  with a general statement (the evidence methods, the debate on rules, the
  first cost-benefit analyses, the roles of company volunteers) are
  background, not cases, and stay unlinked.

Magazine articles without such a kicker (the FSD magazine 2020) are not
guessed at: their titles, bylines and bodies are interleaved across pages,
so no run of blocks is clearly one case.

Conventions:
- Title: the case's printed title; for a box without a heading, its
  organisation.
- Key: slug of the first words of the title (articles) or of the organisation
  (boxes, whose headings the segmentation finds less reliably than the
  organisation in their first sentence), "-2", "-3" for repeats.
- Organisation: see ``organisation_named_in``; municipality only where the
  organisation is a municipality ("Københavns Kommune" -> "København").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from casebase.ingest.segment import Block, Case, slug

# Uppercase only: "Casen er interessant" and "case" in running text are not kickers.
_CASE_KICKER = re.compile(r"^CASE(?!\w)\s*(?P<rest>.*)$")
_MINICASE_KICKER = re.compile(r"^Minicase:\s*(?P<rest>.*)$")
_BOX_KICKER = re.compile(r"(?:^|\s)INSPIRATION:\s*")
_COMMENTARY = re.compile(r"^(?:CASE\s+)?Casen er interessant, fordi:")
_SOURCE_LINE = re.compile(r"^Kilde:")
_CHAPTER_KICKER = re.compile(r"^(?:TEMA|PERSPEKTIV)\b|– hvad lærte vi\?")
# A box heading glued in front of "INSPIRATION:" is short; a longer prefix is
# body text the segmentation ran into the box.
_MAX_GLUED_HEADING = 120
# How far a box may run looking for its "Kilde:" line before it is taken to
# have none; the longest box in the seeds (KPMG) spans about 15 blocks.
_BOX_SEARCH_LIMIT = 30
_KEY_WORDS = 6

# Words that open a sentence or a name phrase without being part of a name.
_FUNCTION_WORDS = {
    "I", "Hos", "For", "Den", "Det", "De", "Der", "En", "Et", "Med", "Når",
    "Som", "Under", "Hvis", "Men", "Og", "Hvad", "Efter", "Til", "Fra", "Af",
}
_NAME_TOKEN = re.compile(r"^[A-ZÆØÅ][\w’'+&-]*$")
_NAME_CONNECTORS = {"og", "for", "&"}
_MUNICIPALITY = re.compile(r"(?P<name>[A-ZÆØÅ][\w-]*) (?:Regions)?[Kk]ommune$")
# The only official municipality names with a genitive s; every other one is
# "<name> Kommune", so "Aarhus" and "Halsnæs" keep their s.
_GENITIVE_MUNICIPALITIES = {"Københavns": "København", "Bornholms": "Bornholm", "Vesthimmerlands": "Vesthimmerland"}
_SENTENCE_END = ".!?:;”\"’)"
# A capital after an en dash opens a new clause, as in the tip lists
# ("Fortæl om det – Lad interne ambassadører ..."); in running prose the
# word after a dash is lower case.
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?:])\s+(?=[A-ZÆØÅ”“\"])|\s+–\s+(?=[A-ZÆØÅ])")
_WORD = re.compile(r"[\w’'+&-]+(?:\.[\w’'+&-]+)*")


@dataclass
class _Span:
    """A recognised case: its blocks by index, its printed title, and where to
    read its organisation."""

    start: int
    end: int  # one past the last block
    title: str | None
    lead: int | None = None  # the block that introduces the case
    organisation: str | None = None
    keyed_by_organisation: bool = False


def mark_cases(blocks: list[Block]) -> list[Case]:
    """Link the blocks of every clearly delimited case to a new Case; return the cases."""
    vocabulary = Vocabulary(blocks)
    spans = _case_articles(blocks, vocabulary) + _minicases(blocks) + _inspiration_boxes(blocks, vocabulary)
    cases: list[Case] = []
    keys: set[str] = set()
    for span in sorted(spans, key=lambda s: s.start):
        organisation = span.organisation or _span_organisation(blocks, span, vocabulary)
        title = span.title or organisation
        if title is None:
            continue
        key = _unique_key(organisation if span.keyed_by_organisation else title, keys)
        cases.append(
            Case(
                key=key,
                title=title,
                organisation=organisation,
                municipality=municipality_of(organisation),
                page=blocks[span.start].page,
            )
        )
        for block in blocks[span.start : span.end]:
            block.case_key = key
    return cases


# --- CASE articles and minicases -------------------------------------------


def _case_articles(blocks: list[Block], vocabulary: Vocabulary) -> list[_Span]:
    spans = []
    i = 0
    while i < len(blocks):
        match = _CASE_KICKER.match(blocks[i].text.strip())
        if not match or _is_running_header(blocks, i):
            i += 1
            continue
        end = _article_end(blocks, i)
        title, lead = _article_title(blocks, i, end, match["rest"], vocabulary)
        spans.append(_Span(start=i, end=end, title=title, lead=lead))
        i = end
    return spans


def _minicases(blocks: list[Block]) -> list[_Span]:
    spans = []
    for i, block in enumerate(blocks):
        match = _MINICASE_KICKER.match(block.text.strip())
        if not match:
            continue
        end = _page_end(blocks, i)
        if match["rest"]:
            spans.append(_Span(start=i, end=end, title=match["rest"], lead=i + 1))
        elif i + 1 < end:
            spans.append(_Span(start=i, end=end, title=blocks[i + 1].text.strip(), lead=i + 2))
    return spans


def _is_running_header(blocks: list[Block], i: int) -> bool:
    """The kicker repeated on the page of the expert comment, not a new article."""
    if _COMMENTARY.match(blocks[i].text.strip()):
        return True
    return i + 1 < len(blocks) and bool(_COMMENTARY.match(blocks[i + 1].text.strip()))


def _opens_section(blocks: list[Block], i: int) -> bool:
    text = blocks[i].text.strip()
    if _CHAPTER_KICKER.search(text) or _MINICASE_KICKER.match(text) or _BOX_KICKER.search(text):
        return True
    return bool(_CASE_KICKER.match(text)) and not _is_running_header(blocks, i)


def _article_end(blocks: list[Block], start: int) -> int:
    commentary_page = None
    for i in range(start + 1, len(blocks)):
        if _opens_section(blocks, i):
            return i
        if commentary_page is not None and blocks[i].page != commentary_page:
            return i
        if _COMMENTARY.match(blocks[i].text.strip()):
            commentary_page = blocks[i].page
    return len(blocks)


def _page_end(blocks: list[Block], start: int) -> int:
    for i in range(start + 1, len(blocks)):
        if blocks[i].page != blocks[start].page or _opens_section(blocks, i):
            return i
    return len(blocks)


def _article_title(
    blocks: list[Block], start: int, end: int, rest: str, vocabulary: Vocabulary
) -> tuple[str | None, int | None]:
    """The printed title and the index of the lead that follows it.

    Most articles print the title right after the kicker. One (KFUM's drive
    outs) opens with body text and prints its title and lead further down,
    between subheadings; the title is the heading whose next paragraph, the
    lead, introduces who the case is about by naming an organisation.
    """
    if rest and blocks[start].kind == "heading":
        return rest, start + 1
    if not rest and start + 1 < end and blocks[start + 1].kind == "heading":
        return blocks[start + 1].text.strip(), start + 2
    headings = []
    for i in range(start + 1, end):
        if _COMMENTARY.match(blocks[i].text.strip()):
            break
        if blocks[i].kind == "heading":
            headings.append(i)
    for i in headings:
        following = blocks[i + 1] if i + 1 < end else None
        if following is not None and following.kind == "paragraph" and organisation_named_in(following.text, vocabulary):
            return blocks[i].text.strip(), i + 1
    if headings:
        return blocks[headings[0]].text.strip(), headings[0] + 1
    return None, None


# --- INSPIRATION boxes -----------------------------------------------------


def _inspiration_boxes(blocks: list[Block], vocabulary: Vocabulary) -> list[_Span]:
    spans = []
    for i, block in enumerate(blocks):
        match = _BOX_KICKER.search(block.text)
        if not match:
            continue
        start, heading = i, _glued_heading(block.text[: match.start()])
        # A box's heading is printed right above it; one on the page before
        # belongs to something else (often the previous box's displaced heading).
        if (
            heading is None
            and not block.text[: match.start()].strip()
            and i > 0
            and _is_box_heading(blocks[i - 1])
            and blocks[i - 1].page == block.page
        ):
            start, heading = i - 1, blocks[i - 1].text.strip()
        opening, opening_end = _box_opening(blocks, i, match.end())
        end = _box_end(blocks, i, opening_end)
        if heading is None and end < len(blocks) and _SOURCE_LINE.match(blocks[end - 1].text.strip()):
            if _is_displaced_heading(blocks, end):
                heading = blocks[end].text.strip()
                end += 1
        first_sentence = " ".join(_sentences(opening)[:1])
        organisation = organisation_named_in(first_sentence, vocabulary) or (
            organisation_named_in(heading, vocabulary) if heading else None
        )
        if organisation:
            spans.append(_Span(start=start, end=end, title=heading, organisation=organisation, keyed_by_organisation=True))
    return spans


def _glued_heading(prefix: str) -> str | None:
    """A box heading the segmentation glued in front of "INSPIRATION:"."""
    prefix = prefix.strip()
    if not prefix or len(prefix) > _MAX_GLUED_HEADING or prefix[-1] in ".!?":
        return None
    return prefix


def _is_box_heading(block: Block) -> bool:
    # A short heading line may come out as a figure label when no body text follows it.
    text = block.text.strip()
    return (
        block.kind in ("heading", "figure")
        and _glued_heading(text) is not None
        and not _CHAPTER_KICKER.search(text)
        and not _SOURCE_LINE.match(text)
        # the guide's running label beside its boxes, not any box's own heading
        and text.casefold() != "inspiration"
    )


def _box_opening(blocks: list[Block], i: int, offset: int) -> tuple[str, int]:
    """The box's opening text after the kicker, and one past its last block.

    A kicker line that breaks off mid-sentence ("INSPIRATION: Den
    socialøkonomiske virksomhed") goes on in the next block."""
    text = blocks[i].text[offset:].strip()
    end = i + 1
    if (not text or text[-1] not in _SENTENCE_END) and end < len(blocks):
        text = f"{text} {blocks[end].text.strip()}".strip()
        end += 1
    return text, end


def _box_end(blocks: list[Block], start: int, opening_end: int) -> int:
    """One past the box's "Kilde:" line.

    The box may run on to the next page, but not past another box or
    section. Without a "Kilde:" line its extent is unknown, and only its
    opening is taken, so that no body text is passed off as part of a case."""
    for i in range(opening_end, min(len(blocks), start + _BOX_SEARCH_LIMIT)):
        if _opens_section(blocks, i) or _is_next_box_heading(blocks, i):
            break
        if blocks[i].page is not None and blocks[start].page is not None and blocks[i].page > blocks[start].page + 1:
            break
        if _SOURCE_LINE.match(blocks[i].text.strip()):
            return i + 1
    return opening_end


def _is_next_box_heading(blocks: list[Block], i: int) -> bool:
    return i + 1 < len(blocks) and bool(_BOX_KICKER.match(blocks[i + 1].text)) and _is_box_heading(blocks[i])


def _is_displaced_heading(blocks: list[Block], i: int) -> bool:
    """A heading printed after the box's source line, when the box opened a page."""
    return _is_box_heading(blocks[i]) and not _opens_section(blocks, i) and not _is_next_box_heading(blocks, i)


# --- Organisations ---------------------------------------------------------


class Vocabulary:
    """Which words of a source occur in lower case, and which as names mid-sentence.

    A capitalised word that the source also writes in lower case ("Frivillige",
    "Brugerne") is an ordinary word at the start of a sentence; one it never
    writes in lower case ("Fryshuset", "KPMG") is a name.
    """

    def __init__(self, blocks: list[Block]):
        self.lower: set[str] = set()
        self.mid_sentence_names: set[str] = set()
        for block in blocks:
            for sentence in _sentences(block.text):
                words = _WORD.findall(sentence)
                for position, word in enumerate(words):
                    if word[:1].islower():
                        self.lower.add(word)
                    elif position > 0 and _NAME_TOKEN.match(word):
                        self.mid_sentence_names.add(word)

    def is_name(self, word: str, sentence_initial: bool) -> bool:
        if word.lower() in self.lower:
            return False
        if not sentence_initial:
            return True
        return word in self.mid_sentence_names or _genitive_stem(word) in self.mid_sentence_names


def organisation_named_in(text: str, vocabulary: Vocabulary) -> str | None:
    """The organisation a sentence names, by a documented heuristic.

    Name phrases are runs of capitalised words, joined by "og", "for" or "&"
    ("Bo og Naboskab Præstø", "Lær for Livet", "KFUM’s Sociale Arbejde").
    Leading function words are dropped ("Hos", "For", "Den"). A phrase right
    after the preposition "i" is a place ("i Danmark", "I Halsnæs"), unless it
    is a municipality. A municipality ("Gribskov Kommune") wins over other
    names in the sentence, because the seeds name the person who speaks for it
    first ("giver Jacob Eberholst, kontorchef i ... Københavns Kommune").
    Otherwise the first phrase that is a name (see ``Vocabulary``) wins, with a
    genitive s dropped when the source also uses the bare name
    ("Mødrehjælpens projekt" -> "Mødrehjælpen").
    """
    for sentence in _sentences(text):
        phrases = list(_name_phrases(sentence, vocabulary))
        for phrase, _ in phrases:
            if _MUNICIPALITY.search(phrase):
                return phrase
        for phrase, is_place in phrases:
            if not is_place:
                if " " not in phrase and _genitive_stem(phrase) in vocabulary.mid_sentence_names:
                    return _genitive_stem(phrase)
                return phrase
    return None


def _name_phrases(sentence: str, vocabulary: Vocabulary):
    """(phrase, is_place) for every name phrase of a sentence, in order."""
    words = _WORD.findall(sentence)
    i = 0
    while i < len(words):
        if not _NAME_TOKEN.match(words[i]):
            i += 1
            continue
        j = i + 1
        while j < len(words):
            if _NAME_TOKEN.match(words[j]):
                j += 1
            elif words[j] in _NAME_CONNECTORS and j + 1 < len(words) and _NAME_TOKEN.match(words[j + 1]):
                j += 2
            else:
                break
        tokens = words[i:j]
        first = i
        while tokens and tokens[0] in _FUNCTION_WORDS:
            tokens, first = tokens[1:], first + 1
        while tokens and tokens[-1] in _NAME_CONNECTORS:
            tokens = tokens[:-1]
        place = first > 0 and words[first - 1] in ("i", "I")
        if tokens and (len(tokens) > 1 or vocabulary.is_name(tokens[0], sentence_initial=first == 0)):
            yield " ".join(tokens), place
        i = j


def _genitive_stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def municipality_of(organisation: str | None) -> str | None:
    """The municipality an organisation is, or None: "Høje-Taastrup Kommune" -> "Høje-Taastrup"."""
    if not organisation:
        return None
    match = _MUNICIPALITY.search(organisation)
    if not match:
        return None
    return _GENITIVE_MUNICIPALITIES.get(match["name"], match["name"])


def _span_organisation(blocks: list[Block], span: _Span, vocabulary: Vocabulary) -> str | None:
    """The organisation named first in the case, reading from its lead (which
    introduces who the case is about), then from its start."""
    order = list(range(span.lead, span.end)) if span.lead is not None else []
    order += [i for i in range(span.start, span.end) if i not in order]
    for i in order:
        text = blocks[i].text.strip()
        # The kicker would read as part of a name ("CASE Stenvad").
        if blocks[i].kind == "heading" or _COMMENTARY.match(text) or _CASE_KICKER.match(text):
            continue
        named = organisation_named_in(text, vocabulary)
        if named:
            return named
    return None


# --- Helpers ---------------------------------------------------------------


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_SPLIT.split(text.strip()) if s]


def _unique_key(title: str, taken: set[str]) -> str:
    base = slug(" ".join(title.split()[:_KEY_WORDS]))
    key, n = base, 1
    while key in taken:
        n += 1
        key = f"{base}-{n}"
    taken.add(key)
    return key
