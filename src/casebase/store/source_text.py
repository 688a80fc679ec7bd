"""A source's cleaned text, read in parts.

A text source's cleaned text is stored whole in ``source_texts`` (a file read
whole, at most 200 MB). A survey export streams through the build and its text is
never assembled: at a million answers it would be one value of ~900 MB (SQLite
caps a value at 1 GB, which one survey of ~2.2 M answers would reach). Its text is
its excerpts in ``seq`` order, one ``SEPARATOR`` between two and a line end after
the last (``segment.cleaned_text``): the excerpts' ``char_start``/``char_end`` are
offsets into exactly that. Whoever needs the text reads it here, a bounded number
of excerpts at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

from casebase.ingest.segment import SEPARATOR

PART_CHARACTERS = 1 << 20  # a part holds about this many characters (one answer more at most)


def parts(conn, source_id: str, part_characters: int | None = None) -> Iterator[str]:
    """The source's cleaned text in parts that join to the whole (``"".join``);
    nothing for an unknown source. ``conn``: sqlite3 or sqlite-utils."""
    stored = conn.execute("select text from source_texts where source_id = ?", [source_id]).fetchone()
    if stored is not None:
        yield stored[0]
        return
    size = part_characters or PART_CHARACTERS
    # One pass over the (source_id, seq) index; the cursor hands over a row at a time.
    rows = conn.execute("select text from excerpts where source_id = ? order by seq", [source_id])
    part: list[str] = []
    held, any_text = 0, False
    for (text,) in rows:
        part.append(SEPARATOR + text if any_text else text)
        held += len(part[-1])
        any_text = True
        if held >= size:
            yield "".join(part)
            part, held = [], 0
    if any_text:
        part.append("\n")
        yield "".join(part)


def length(conn, source_id: str) -> int:
    """The cleaned text's length in characters, without reading it."""
    stored = conn.execute("select length(text) from source_texts where source_id = ?", [source_id]).fetchone()
    if stored is not None:
        return stored[0] or 0
    # The last excerpt ends where the text does, but for its line end.
    last = conn.execute("select char_end from excerpts where source_id = ? order by seq desc limit 1", [source_id]).fetchone()
    return last[0] + 1 if last is not None else 0
