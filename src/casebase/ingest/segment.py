"""Excerpts and cases: the units researchers read and coders code.

A parser (see ``casebase.parsers``) turns a source into a list of ``Block``s
and ``Case``s. ``assemble`` lays the blocks out as the cleaned source text,
one block per paragraph separated by blank lines, so every excerpt is an
exact span of that text: ``cleaned[char_start:char_end] == excerpt.text``.
REFI-QDA selections and context views rely on that invariant.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field as dataclass_field

EXCERPT_KINDS = ("paragraph", "heading", "quote", "figure", "case_field", "answer")
# What coders code; headings and figure labels rarely carry a code.
CODED_KINDS = ("paragraph", "quote", "case_field", "answer")

# Fields of a case, in the order a case page shows them, with the Danish
# labels the VIVE report uses for them.
@dataclass(frozen=True)
class CaseColumn:
    """A column of a case: the one definition that the parsers, the database, the
    exports, the case page and the served metadata all read."""

    name: str
    label: str  # Danish, for users
    description: str  # Danish, for column descriptions and REFI-QDA variables
    type: type = str
    field: bool = False  # also a labelled field of the report's case (an excerpt of kind case_field)


CASE_COLUMNS = (
    CaseColumn("organisation", "Organisation", "Organisationen bag casen"),
    CaseColumn("municipality", "Kommune", "Kommunen, casen foregår i", field=True),
    CaseColumn("area", "Område", "Det kommunale område eller forvaltningen", field=True),
    CaseColumn("target_group", "Målgruppe", "Casens målgruppe", field=True),
    CaseColumn("purpose", "Formål", "Indsatsens formål, som kilden beskriver det", field=True),
    CaseColumn("intervention", "Indsats", "Hvad indsatsen gik ud på", field=True),
    CaseColumn("learning", "Læring", "Hvad man lærte af indsatsen", field=True),
    CaseColumn("source_theme", "Tema i kilden", "Temaet, kilden selv ordner casen under"),
    CaseColumn("page", "Side", "Siden i kilden, hvor casen begynder", type=int),
)
CASE_FIELDS = {c.name: c.label for c in CASE_COLUMNS if c.field}  # the labelled fields, in report order


@dataclass
class Block:
    """One excerpt-to-be as a parser sees it: cleaned text on a single line."""

    kind: str
    text: str
    page: int | None = None
    # The heading the block sits under; None lets ``assemble`` use the last heading.
    section: str | None = None
    # Links the block to a Case of the same source (``Case.key``).
    case_key: str | None = None
    # For kind == "case_field": the case field the block holds (a key of CASE_FIELDS).
    field: str | None = None


@dataclass
class Case:
    key: str
    title: str
    organisation: str | None = None
    municipality: str | None = None
    area: str | None = None
    target_group: str | None = None
    purpose: str | None = None
    intervention: str | None = None
    learning: str | None = None
    source_theme: str | None = None
    page: int | None = None


@dataclass
class Excerpt:
    id: str
    source_id: str
    seq: int
    kind: str
    text: str
    char_start: int
    char_end: int
    page: int | None
    section: str | None
    case_id: str | None = None
    field: str | None = None
    attributes: dict = dataclass_field(default_factory=dict)


def normalise_for_id(text: str) -> str:
    """The text as it counts for identity: case, spacing and Unicode form folded."""
    text = unicodedata.normalize("NFC", text).casefold()
    return re.sub(r"\s+", " ", text).strip()


def excerpt_id(source_id: str, text: str, occurrence: int = 1) -> str:
    """A stable id: the same text in the same source keeps its id across rebuilds,
    whatever changes around it. Repeats of one text are told apart by occurrence."""
    digest = hashlib.sha1(normalise_for_id(text).encode("utf-8")).hexdigest()[:12]
    suffix = "" if occurrence == 1 else f"-{occurrence}"
    return f"{source_id}-{digest}{suffix}"


def case_id(source_id: str, key: str) -> str:
    return f"{source_id}-{slug(key)}"


def slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.lower())
    folded = folded.replace("æ", "ae").replace("ø", "oe").replace("å", "aa")
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "-", folded).strip("-") or "x"


class Layout:
    """Lays blocks out one after another as a source's cleaned text, one block per
    paragraph separated by blank lines, and cuts each into its excerpt with
    offsets. Incremental, so a survey of a million answers can be laid out as it
    streams; ``assemble`` is the whole-source form."""

    def __init__(self, source_id: str):
        self.source_id = source_id
        self.offset = 0
        self.count = 0
        self.section: str | None = None
        # Occurrences per text (by its id at occurrence 1): repeats get their own ids.
        self.seen: dict[str, int] = {}

    def place(self, block: Block, stable_id: str | None = None) -> Excerpt | None:
        """The excerpt for the block (None for an empty one); ``stable_id``, when
        given, names the excerpt instead of its text."""
        text = block.text.strip()
        if not text:
            return None
        if "\n" in text:
            raise ValueError(f"block text must be one line: {text[:60]!r}")
        if block.kind not in EXCERPT_KINDS:
            raise ValueError(f"unknown excerpt kind {block.kind!r}")
        if block.kind == "heading":
            self.section = text
        if self.count:
            self.offset += len(SEPARATOR)
        start = self.offset
        self.offset += len(text)
        self.count += 1
        if stable_id is None:
            first = excerpt_id(self.source_id, text)
            self.seen[first] = occurrence = self.seen.get(first, 0) + 1
            stable_id = first if occurrence == 1 else f"{first}-{occurrence}"
        return Excerpt(
            id=stable_id,
            source_id=self.source_id,
            seq=self.count,
            kind=block.kind,
            text=text,
            char_start=start,
            char_end=self.offset,
            page=block.page,
            section=block.section if block.section is not None else self.section,
            case_id=case_id(self.source_id, block.case_key) if block.case_key else None,
            field=block.field,
        )


SEPARATOR = "\n\n"  # between two excerpts in the cleaned text


def cleaned_text(texts) -> str:
    """The cleaned text of a source from its excerpts' texts, in order."""
    joined = SEPARATOR.join(texts)
    return joined + "\n" if joined else ""


def assemble(source_id: str, blocks: list[Block]) -> tuple[str, list[Excerpt]]:
    """Lay blocks out as the cleaned text and cut it into excerpts with offsets."""
    layout = Layout(source_id)
    excerpts = [e for e in (layout.place(block) for block in blocks) if e is not None]
    return cleaned_text(e.text for e in excerpts), excerpts


def answers_excerpts(
    source_id: str,
    rows: list,
    text_columns: list[str],
    id_column: str | None,
    attribute_columns: list[str],
) -> tuple[str, list[Excerpt]]:
    """One excerpt per non-empty answer of a survey export (kind ``answer``)."""
    layout = Layout(source_id)
    excerpts = answer_excerpts(layout, rows, text_columns, id_column, attribute_columns)
    return cleaned_text(e.text for e in excerpts), excerpts


def answer_excerpts(
    layout: Layout,
    rows: list,
    text_columns: list[str],
    id_column: str | None,
    attribute_columns: list[str],
) -> list[Excerpt]:
    """The excerpts of a batch of survey rows, laid out after the previous batches.

    With an id column the excerpt id comes from the respondent's id, so fixing
    a typo in an answer keeps its id (and the decisions coded on it); without
    one it comes from the text, as for report paragraphs. The other columns
    become the excerpt's attributes.
    """
    source_id = layout.source_id
    excerpts: list[Excerpt] = []
    for row in rows:
        values = row.values
        attributes = {name: values.get(name, "") for name in attribute_columns}
        for column in text_columns:
            text = re.sub(r"\s+", " ", values.get(column) or "").strip()
            if not text:
                continue
            stable = None
            if id_column:
                stable = slug(str(values[id_column]))
                if len(text_columns) > 1:
                    stable += f"-{slug(column)}"
                stable = f"{source_id}-{stable}"
            excerpt = layout.place(Block(kind="answer", text=text), stable)
            excerpt.attributes = dict(attributes)
            if id_column:
                excerpt.attributes[id_column] = values[id_column]
            if len(text_columns) > 1:
                excerpt.attributes["column"] = column
            excerpts.append(excerpt)
    return excerpts
