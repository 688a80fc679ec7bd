"""The VIVE report (2021) and the structured cases of its Bilag 2.

Bilag 2 is a three-column table (Kommune, Område, "Beskrivelse af vigtigste
nyskabelse") under theme headings. The PDF extraction interleaved the columns:
the Kommune and Område words are glued in front of the first description line
("Favrskov Ældre Målgruppe: Plejehjemsbeboere.") or stand on short lines
before it, wrapped and split by blank lines. The description cell holds the
labelled fields Målgruppe, Formål, Indsats and Læring.

The introduction speaks of "i alt 49 nyskabelser", but the table prints 50
rows, each with its own fields; all 50 become cases.

Everything outside the table goes through the generic report parser.

Conventions:
- Case title: the municipality's official name, an en dash and the area as
  printed: "Favrskov Kommune – Ældre", "Københavns Kommune – Center for omsorg
  og rehabilitering".
- Case key: slug of municipality and area ("favrskov-aeldre"); a pair that
  repeats gets "-2", "-3" in document order.
- Theme: the heading as printed, in capitals. One heading ("Fysiske
  aktivitetstilbud online") is missing from the extraction; it is recovered
  from the theme list in the Bilag's introduction and written in capitals like
  the others.
- Fields: the text as printed, label included in the block ("Målgruppen:"
  stays as spelled), without it in the Case. An empty field ("Målgruppe:")
  gives no block and None. A link printed in a cell ("Se mere: https://...")
  stays in its field; bare URL lines the extraction repeats after a cell are
  dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from casebase.ingest.clean import Line, clean_text, join_pair, split_pages, vocabulary
from casebase.errors import CasebaseError
from casebase.ingest.segment import CASE_FIELDS, Block, Case, slug
from casebase.ingest.parsers.case_markers import mark_cases
from casebase.ingest.parsers.report import blocks_from_lines

_COLUMN_HEADER = re.compile(r"^Kommune\s+Område\s+Beskrivelse af vigtigste nyskabelse$")
# "Målgruppen:" is one case's spelling of the Målgruppe label.
_FIELD_LABEL = re.compile(r"\b(Målgruppe|Formål|Indsats|Læring)n?:")
_LABEL_FIELD = {label: key for key, label in CASE_FIELDS.items()}
# The description cell's fields, in the order they are printed.
_FIELD_ORDER = tuple(key for key in CASE_FIELDS if key not in ("municipality", "area"))
_THEME_HEADING = re.compile(r"^[A-ZÆØÅ]+(?: [A-ZÆØÅ]+)+$")
_URL = re.compile(r"https?://\S+")
_SENTENCE_END = re.compile(r"[.!?:;)”\"']$")
_INTRO_THEME = re.compile(r"^- (\S.*)$")
# Municipalities whose official name is not "<name> Kommune".
_OFFICIAL_NAMES = {"København": "Københavns Kommune", "Bornholm": "Bornholms Regionskommune"}


@dataclass
class Bilag2:
    blocks: list[Block]
    cases: list[Case]
    start: int  # index in the document's lines of the table's first line
    end: int  # index one past the table's last line


def parse(raw: str) -> tuple[list[Block], list[Case]]:
    lines = split_pages(raw)
    bilag = bilag2_cases(lines)
    before = blocks_from_lines(lines[: bilag.start])
    after = blocks_from_lines(lines[bilag.end :])
    return before + bilag.blocks + after, bilag.cases + mark_cases(before + after)


def bilag2_cases(lines: list[Line]) -> Bilag2:
    """Find the Bilag 2 table in the document's lines and untangle its cases."""
    start = _table_start(lines)
    return _TableReader(lines, start, _intro_themes(lines[:start]), _Joiner(lines)).read()


def _table_start(lines: list[Line]) -> int:
    for index, line in enumerate(lines):
        if _COLUMN_HEADER.match(line.text.strip()):
            previous = index - 1
            while previous >= 0 and not lines[previous].text.strip():
                previous -= 1
            if previous >= 0 and _THEME_HEADING.match(lines[previous].text.strip()):
                return previous
            return index
    raise CasebaseError("no Bilag 2 table (no 'Kommune Område Beskrivelse ...' header) found")


def _intro_themes(lines: list[Line]) -> list[str]:
    """The bullet list of themes in the introduction just before the table."""
    themes: list[str] = []
    for line in reversed(lines):
        text = line.text.strip()
        bullet = _INTRO_THEME.match(text)
        if bullet:
            themes.append(bullet.group(1).strip())
        elif text and themes:
            break
    return themes[::-1]


class _Joiner:
    """Joins a cell's lines into cleaned text (``clean.clean_text``):
    ``clean.join_pair`` with the whole document's vocabulary, so a line-end
    hyphen is kept where the report spells the word with one ("corona-" +
    "nedlukningen"). A URL broken at a hyphen is settled by the URLs the report
    prints whole: "https://www.kl.dk/ny-" + "heder/..." loses its hyphen,
    "...videokonsultation-" + "med-egen-laege/" keeps it."""

    def __init__(self, lines: list[Line]):
        texts = [line.text for line in lines]
        self.hyphenated = vocabulary(texts)
        self.urls = {
            token
            for text in texts
            for token in text.split()
            if _URL.match(token) and not token.endswith("-")
        }

    def join(self, texts: list[str]) -> str:
        out = ""
        for text in texts:
            text = " ".join(text.split())
            if not text:
                continue
            if not out:
                out = text
            elif out.endswith("-") and _URL.match(out.rpartition(" ")[2]):
                out = self._join_url(out, text)
            else:
                out = join_pair(out, text, self.hyphenated)
        return clean_text(out)

    def _join_url(self, out: str, text: str) -> str:
        merged = out[:-1] + text
        if not self._starts_known_url(out + text) and self._starts_known_url(merged):
            return merged
        return out + text

    def _starts_known_url(self, text: str) -> bool:
        url = _URL.search(text).group(0)
        return any(known.startswith(url) for known in self.urls)


@dataclass
class _Field:
    key: str
    label: str  # as printed, with its colon
    page: int
    texts: list[str] = field(default_factory=list)


@dataclass
class _Row:
    header: list[list[str]]  # the Kommune/Område lines, grouped by blank lines
    page: int
    theme: str | None
    fields: list[_Field] = field(default_factory=list)


class _TableReader:
    """Walks the table's lines once; a case row starts at a field label that
    does not continue the current row's field order, or that has Kommune/Område
    lines before it."""

    def __init__(self, lines: list[Line], start: int, intro_themes: list[str], joiner: _Joiner):
        self.lines = lines
        self.start = start
        self.intro_themes = intro_themes
        self.joiner = joiner
        self.themes: list[str] = []
        self.theme_pages: dict[str, int] = {}
        self.rows: list[_Row] = []
        self.header: list[list[str]] = [[]]
        self.header_page: int | None = None
        self.field: _Field | None = None
        self.after_theme_heading = False
        self.end = start

    def read(self) -> Bilag2:
        for index in range(self.start, len(self.lines)):
            self._read_line(index, self.lines[index])
        return self._result()

    def _read_line(self, index: int, line: Line) -> None:
        text = line.text.strip()
        if not text:
            self.field = None
            if self.header[-1]:
                self.header.append([])
            return
        if _URL.fullmatch(text):
            # Bare link targets the extraction repeats after a cell; the link
            # itself is printed in the cell's text.
            return
        if _COLUMN_HEADER.match(text):
            self.field = None
            if not self.after_theme_heading and len(self.intro_themes) > len(self.themes):
                self._add_theme(self.intro_themes[len(self.themes)].upper(), line.page)
            self.after_theme_heading = False
            return
        self.after_theme_heading = False
        if _THEME_HEADING.match(text):
            self.field = None
            self.after_theme_heading = True
            if not self.themes or self.themes[-1] != text:
                self._add_theme(text, line.page)
            return
        label = _FIELD_LABEL.search(text)
        if label and (label.start() == 0 or self.field is None):
            self._start_field(line, text, label)
        elif self.field and self._continues_field(index, text):
            self.field.texts.append(text)
        else:
            self.field = None
            self._add_header(line, text)
            return
        self.end = index + 1

    def _add_theme(self, theme: str, page: int) -> None:
        self.themes.append(theme)
        self.theme_pages[theme] = page

    def _continues_field(self, index: int, text: str) -> bool:
        if self.lines[index - 1].page == self.lines[index].page:
            return True
        # A new page may as well start the next row's Kommune/Område.
        last = self.field.texts[-1]
        return text[:1].islower() or last.endswith("-") or not _SENTENCE_END.search(last)

    def _add_header(self, line: Line, text: str) -> None:
        if self.header_page is None:
            self.header_page = line.page
        self.header[-1].append(text)

    def _start_field(self, line: Line, text: str, label: re.Match) -> None:
        glued = text[: label.start()].strip()
        if glued:
            self._add_header(line, glued)
        key = _LABEL_FIELD[label.group(1)]
        row = self.rows[-1] if self.rows else None
        has_header = any(self.header)
        if row is None or has_header or _FIELD_ORDER.index(key) <= _FIELD_ORDER.index(
            row.fields[-1].key
        ):
            if not has_header:
                raise CasebaseError(
                    f"Bilag 2 case without Kommune/Område before line {line.number}"
                )
            row = _Row(
                header=[group for group in self.header if group],
                page=self.header_page,
                theme=self.themes[-1] if self.themes else None,
            )
            self.rows.append(row)
            self.header, self.header_page = [[]], None
        self.field = _Field(key=key, label=label.group(0), page=line.page)
        self.field.texts.append(text[label.end() :])
        row.fields.append(self.field)

    def _result(self) -> Bilag2:
        blocks: list[Block] = []
        cases: list[Case] = []
        keys: dict[str, int] = {}
        themes_shown: set[str] = set()
        for row in self.rows:
            municipality, area = self._municipality_and_area(row.header)
            base = slug(f"{municipality} {area}")
            keys[base] = keys.get(base, 0) + 1
            key = base if keys[base] == 1 else f"{base}-{keys[base]}"
            organisation = _OFFICIAL_NAMES.get(municipality, f"{municipality} Kommune")
            title = f"{organisation} – {area}"
            case = Case(
                key=key,
                title=title,
                organisation=organisation,
                municipality=municipality,
                area=area,
                source_theme=row.theme,
                page=row.page,
            )
            if row.theme and row.theme not in themes_shown:
                themes_shown.add(row.theme)
                blocks.append(
                    Block("heading", row.theme, page=self.theme_pages[row.theme], section=row.theme)
                )
            blocks.append(Block("heading", title, page=row.page, section=row.theme, case_key=key))
            for fld in row.fields:
                value = self.joiner.join(fld.texts)
                if not value:
                    continue
                setattr(case, fld.key, value)
                blocks.append(
                    Block(
                        "case_field",
                        f"{fld.label} {value}",
                        page=fld.page,
                        section=row.theme,
                        case_key=key,
                        field=fld.key,
                    )
                )
            cases.append(case)
        return Bilag2(blocks=blocks, cases=cases, start=self.start, end=self.end)

    def _municipality_and_area(self, header: list[list[str]]) -> tuple[str, str]:
        if len(header) > 1:
            # The municipality stood alone (maybe wrapped) above the area.
            return self.joiner.join(header[0]), self.joiner.join(
                [text for group in header[1:] for text in group]
            )
        # Every Danish municipality name is one word, so the first word of the
        # row is the municipality and the rest the area.
        first, _, rest = header[0][0].partition(" ")
        return first, self.joiner.join([rest, *header[0][1:]])
