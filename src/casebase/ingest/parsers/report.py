"""The generic parser for PDF-text extractions of reports (seeds 000, 002, 003, 004).

Physical lines are cut into chunks at blank lines, page starts and lines that
can only open something new (a figure caption, a footnote, a list bullet).
Each chunk becomes one piece: body text, a heading candidate, figure
material, a lone number or furniture to drop. Passes over the pieces then
decide what the layout alone cannot tell a line at a time:

- a lone number followed by a lower-case fragment is a stat call-out
  ("23 pct." + "af organisationerne er enige ...") and becomes a figure;
- NOTE:/KILDE: lines join the figure they document or are dropped;
- a short line without final punctuation is a heading when body text
  follows it, otherwise a figure label;
- a paragraph left unfinished (no sentence-final punctuation, or a break
  hyphen) is continued by the next lower-case paragraph, even when a page
  break or figure material sits between the two halves;
- a paragraph that opens with a quotation mark and is a quotation throughout,
  or that opens with an interview dash, is a quote.

Running headers (the same short line opening three or more pages, such as
"CASE" or "TEMA") are dropped, except that an all-caps one is kept as a
heading on the first page of each run, so the start of a CASE article stays
visible to ``case_markers``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from casebase.ingest import clean
from casebase.ingest.clean import Line
from casebase.ingest.segment import Block, Case
from casebase.ingest.parsers.case_markers import mark_cases


def parse(raw: str) -> tuple[list[Block], list[Case]]:
    blocks = blocks_from_lines(clean.split_pages(raw))
    return blocks, mark_cases(blocks)


@dataclass
class Piece:
    """A run of physical lines that will become at most one block."""

    kind: str  # text | headline | caps | figure | note | number | attribution | header
    lines: list[str]
    page: int
    page_start: bool = False
    # A headline split off the top of a body chunk: the body follows it.
    opens_body: bool = False
    text: str = field(default="", init=False)


def blocks_from_lines(lines: list[Line]) -> list[Block]:
    """Blocks of one report, in reading order of the extraction."""
    hyphenated = clean.vocabulary([line.text for line in lines])
    pieces = pieces_from_lines(lines, running_headers(lines))
    for piece in pieces:
        piece.text = clean.clean_text(clean.join_lines(piece.lines, hyphenated))
    pieces = [piece for piece in pieces if piece.text]
    pieces = keep_run_starts(pieces)
    pieces = merge_stat_callouts(pieces)
    pieces = attach_notes(pieces)
    pieces = attach_attributions(pieces)
    pieces = join_continuations(pieces, hyphenated)
    decide_headlines(pieces)
    pieces = attach_heading_tails(pieces)
    pieces = absorb_figure_labels(pieces)
    return [to_block(piece) for piece in pieces]


def keep_run_starts(pieces: list[Piece]) -> list[Piece]:
    """A running header kept once per run of pages, and only if all-caps."""
    out: list[Piece] = []
    previous: Piece | None = None
    for piece in pieces:
        if piece.kind != "header":
            out.append(piece)
            continue
        run_continues = previous is not None and previous.text == piece.text and previous.page == piece.page - 1
        if not run_continues and piece.text.isupper():
            out.append(piece)
        previous = piece
    return out


# --- lines -----------------------------------------------------------------

_NUMBERED_HEADING = re.compile(r"^\d+(\.\d+)*\.?\s+[A-ZÆØÅ]")
# "Figur 2.1 I hvilken grad ...", "Figur 1 – Omtrent ...", but not "Figur 3.2 viser, at ..."
_CAPTION = re.compile(r"^(Figur|Tabel|Illustration|Boks)\s+\d+(\.\d+)*\s*[:.–-]?\s*[A-ZÆØÅ“”\d]")
_NOTE = re.compile(r"^(NOTE|KILDE|Note|Kilde|Kilder|Anm\.)\s*:")
# "1 Se http://...", "4 Lederpanel, Faglig Hovedorganisation, 2020"
_CITING_FOOTNOTE = re.compile(r"^\s*\d{1,2}\s+(Se|Kilde|Jf\.)\s|^\s*\d{1,2} [A-ZÆØÅ][^.]*, (\w+ )?(19|20)\d\d\s*$")
# "6  Første mail med link til ..." as VIVE and the guide set their footnotes
_SPACED_FOOTNOTE = re.compile(r"^\s*\d{1,2}\s{2,}\S")
_BULLET = re.compile(r"^\s*([\u25aa\u2022\uf0b7\u25cf\ufffd]|-\s)\s*")
_NUMBERS_ONLY = re.compile(r"^([-–+]?\d[\d.,]*\s*(%|pct\.?|procent)?\s*)+$")
_LONE_NUMBER = re.compile(r"^\d[\d.,]*\s*(%|pct\.?|procent)?$")
_URL = re.compile(
    r"(https?://|www\.)\S*"
    r"|\S*%[0-9A-F]{2}\S*"
    r"|\S*/\S*/\S*"
    r"|\S+\.(pdf|aspx?|ashx|html?)\b\S*"
)
_LETTER = re.compile(r"[A-Za-zÆØÅæøåÉé]")


def opens_page(line: Line) -> bool:
    """The first line of a page, including the first page."""
    return clean.starts_page(line) or (line.number == 1 and line.text.startswith(" "))


def running_headers(lines: list[Line]) -> set[str]:
    """Short lines that open three or more pages: page furniture, not content."""
    openers = Counter(line.text.strip() for line in lines if opens_page(line) and len(line.text.split()) <= 3)
    return {text for text, count in openers.items() if count >= 3}


def strip_urls(text: str) -> str:
    """The line without URLs and URL fragments (a URL broken over lines leaves
    pieces like "Publikationer/2010/~/media/")."""
    text = _URL.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip()


def is_caps_line(text: str) -> bool:
    letters = _LETTER.findall(text)
    return len(letters) >= 4 and text.upper() == text and len(text.split()) <= 10 and not text.endswith(".")


def pieces_from_lines(lines: list[Line], headers: set[str]) -> list[Piece]:
    pieces: list[Piece] = []
    current: Piece | None = None
    # Once a chunk turns into a footnote, caption or note, the rest of it is too.
    mode = "text"
    url_pending = False
    for index, line in enumerate(lines):
        raw = line.text
        page_start = clean.starts_page(line)
        if not raw.strip() or page_start:
            current, mode = None, "text"
            if not raw.strip():
                continue
        stripped = raw.strip()
        if opens_page(line) and stripped in headers:
            pieces.append(Piece("header", [stripped], line.page, page_start=True))
            continue
        if mode == "footnote" or is_footnote_start(raw, lines[index + 1].text if index + 1 < len(lines) else ""):
            current, mode = None, "footnote"
            continue
        if url_pending and " " not in stripped:
            url_pending = False
            continue  # the rest of a URL broken at a hyphen or slash
        url_pending = bool(re.search(r"(https?://|www\.)\S*[-/_.]$", stripped))
        text = strip_urls(stripped)
        if not _LETTER.search(text) and not _NUMBERS_ONLY.match(text):
            continue
        if mode in ("figure", "note") and current is not None:
            current.lines.append(text)
            continue
        kind = line_kind(text)
        if kind != "text" and current is not None and current.kind == "text" and is_unfinished(current.lines[-1]):
            # a sentence running on: "i daglig tale bare KBH+.", "(jf. Figur 2.6)"
            kind = "text"
        if kind in ("figure", "note"):
            mode = kind
        bullet = _BULLET.match(stripped)
        if bullet:
            text = strip_urls(stripped[bullet.end():])
        starts_new = (
            current is None
            or kind != "text"
            or current.kind != "text"
            or bullet is not None
        )
        if kind == "caps" and current is not None and current.kind == "caps":
            current.lines.append(text)
            continue
        if starts_new:
            current = Piece(kind, [text], line.page, page_start=page_start)
            pieces.append(current)
        else:
            current.lines.append(text)
    return [piece for chunk in pieces for piece in split_headline(chunk)]


def is_footnote_start(raw: str, next_raw: str) -> bool:
    """A footnote opens with its number; a numbered heading looks the same but
    is followed by body text in upper case ("1  Færre unge kriminelle")."""
    if _CITING_FOOTNOTE.match(raw):
        return True
    if not _SPACED_FOOTNOTE.match(raw):
        return False
    return not (is_numbered_heading(raw.strip()) and opens_body(next_raw.strip()))


def is_numbered_heading(text: str) -> bool:
    text = re.sub(r"\s+", " ", text)
    return bool(_NUMBERED_HEADING.match(text)) and is_headline_text(text) and "," not in text


def line_kind(text: str) -> str:
    if _NUMBERS_ONLY.match(text):
        return "number"
    if _CAPTION.match(text):
        return "figure"
    if _NOTE.match(text):
        return "note"
    if is_caps_line(text):
        return "attribution" if "," in text else "caps"
    return "text"


# --- headings --------------------------------------------------------------

# A line ending in one of these is a sentence running on, not a heading.
_FUNCTION_WORDS = frozenset(
    """af at de den der det efter en et for fra har hvor i ikke kan man med
    men mod når og om på som til ud under ved være var er blev bliver også så
    eller samt hos hvis end mellem sin sine sit deres vores jeres alle mere mest nogle
    skal vil kunne""".split()
)
_TERMINAL = ".!?:;…"
_SENTENCE_BREAK = re.compile(r"[.!?:] [A-ZÆØÅ]")
_CLAUSE = re.compile(r", (og|men|der|som|at|hvor|fordi|når|mens|så) ")


def opens_body(text: str) -> bool:
    """Begins like a sentence: a capital, a digit, a quote or an interview dash."""
    return bool(re.match(r"[A-ZÆØÅÉ0-9“]|– [A-ZÆØÅ]", text))


def is_headline_text(text: str) -> bool:
    """Short, capitalised, without final punctuation and not ending mid-phrase."""
    text = text.strip()
    words = text.split()
    if not words or len(words) > 12 or len(text) > 90:
        return False
    if _SENTENCE_BREAK.search(re.sub(r"^\d+(\.\d+)*\.?\s", "", text)):
        return False  # "Så langt så godt med fordommene. I projektet"
    if _CLAUSE.search(text):
        return False  # "Men forløbene viste sig vanskeligere end forventet, og i april"
    if text[-1] in _TERMINAL + ",-–" or not (text[0].isupper() or text[0].isdigit()):
        return False
    return words[-1].lower().strip("”“’") not in _FUNCTION_WORDS


def split_headline(piece: Piece) -> list[Piece]:
    """A body chunk whose first lines are a heading: heading and body apart.

    Up to three short lines count, the first capitalised, none ending a
    sentence (a short question may end the last), and the body must open
    with a capital right after them and run on for more than a fragment."""
    if piece.kind != "text" or len(piece.lines) < 2:
        return [piece]
    for size in range(1, min(3, len(piece.lines) - 1) + 1):
        head, body = piece.lines[:size], piece.lines[size:]
        if any(line.rstrip()[-1:] in _TERMINAL + ",-" for line in head[:-1]):
            return [piece]
        joined = short_question(" ".join(head).strip())
        substantial = sum(len(line) for line in body) >= 60 or ends_mid_phrase(body[-1]) or body[-1].endswith("-")
        if opens_body(body[0]) and is_headline_text(joined) and substantial:
            return [
                Piece("headline", head, piece.page, piece.page_start, opens_body=True),
                Piece("text", body, piece.page),
            ]
    return [piece]


def short_question(text: str) -> str:
    """A short question as a headline candidate: "Hvem er Metropol?" -> "Hvem er Metropol"."""
    if text.endswith("?") and len(text.split()) <= 8:
        return text[:-1]
    return text


def looks_like_body(piece: Piece) -> bool:
    text = piece.text
    return piece.kind == "text" and len(text) >= 60 and opens_body(text)


def heads_body(pieces: list[Piece], i: int) -> bool:
    """Whether body text follows piece ``i`` on the same page."""
    following = pieces[i + 1] if i + 1 < len(pieces) else None
    return following is not None and following.page == pieces[i].page and looks_like_body(following)


def decide_headlines(pieces: list[Piece]) -> None:
    """Headline candidates become headings, figure labels or paragraphs."""
    for i, piece in enumerate(pieces):
        following = pieces[i + 1] if i + 1 < len(pieces) else None
        body_follows = heads_body(pieces, i)
        if piece.kind == "caps":
            piece.kind = "heading" if body_follows or following is None or following.kind != "number" else "figure"
        elif piece.kind == "headline":
            piece.kind = "heading"
        elif piece.kind == "text" and is_headline_text(short_question(piece.text)) and len(piece.lines) <= 3:
            if is_numbered_heading(piece.text) or body_follows:
                piece.kind = "heading"
            elif "," not in piece.text:
                piece.kind = "figure"
        elif piece.kind == "text" and piece.text[:1].islower() and len(piece.text) < 40 and is_unfinished(piece.text):
            piece.kind = "figure"  # a stray fragment of a call-out box


# --- figures ---------------------------------------------------------------


def merge_stat_callouts(pieces: list[Piece]) -> list[Piece]:
    """"23 pct." + "af organisationerne er enige ..." as one figure; other lone
    numbers (chart values, page numbers) are dropped."""
    out: list[Piece] = []
    for i, piece in enumerate(pieces):
        if piece.kind != "number":
            out.append(piece)
            continue
        following = pieces[i + 1] if i + 1 < len(pieces) else None
        if (
            following is not None
            and _LONE_NUMBER.match(piece.text)
            and following.kind == "text"
            and not following.page_start
            and following.text[:1].islower()
        ):
            following.kind = "figure"
            following.text = f"{piece.text} {following.text}"
    return out


def attach_notes(pieces: list[Piece]) -> list[Piece]:
    """NOTE:/KILDE: lines join the figure just before them on the same page.

    A "Kilde:" line with no figure to document credits the text box it closes
    (the INSPIRATION boxes end with one), so it stays as a figure block of its
    own: it marks where the box ends and keeps the box's source.
    """
    out: list[Piece] = []
    for piece in pieces:
        if piece.kind != "note":
            out.append(piece)
            continue
        figure = next((p for p in reversed(out[-3:]) if p.kind == "figure" and p.page == piece.page), None)
        if figure is not None:
            figure.text = f"{figure.text} {piece.text}"
        elif piece.text.startswith("Kilde:"):
            piece.kind = "figure"
            out.append(piece)
    return out


def attach_attributions(pieces: list[Piece]) -> list[Piece]:
    """An all-caps "NAME, TITLE, ORGANISATION" line signs the text just before it."""
    out: list[Piece] = []
    for piece in pieces:
        if piece.kind != "attribution":
            out.append(piece)
            continue
        if out and out[-1].kind == "text":
            out[-1].text = f"{out[-1].text} – {piece.text}"
    return out


# --- continuations ---------------------------------------------------------

# How far back (in pieces) an unfinished paragraph may still be continued:
# figure material and boxes set between its two halves stay where they are.
_CONTINUATION_REACH = 30
# Abbreviations that end a line without ending the sentence.
_ABBREVIATION_END = re.compile(r"\b(bl\.a|f\.eks|fx|ca|jf|mv|dvs|evt|inkl|ekskl|hhv|pga|nr|ifm|ift|mht|vha)\.$", re.IGNORECASE)


def is_unfinished(text: str) -> bool:
    text = text.rstrip()
    return text[-1:] not in _TERMINAL + "”\"’)" or bool(_ABBREVIATION_END.search(text))


def ends_mid_phrase(text: str) -> bool:
    """Ends on a comma or a function word: the sentence must go on."""
    words = text.split()
    return bool(words) and (text.endswith(",") or words[-1].lower() in _FUNCTION_WORDS)


def join_continuations(pieces: list[Piece], hyphenated: frozenset[str]) -> list[Piece]:
    """Paragraphs split by a page break, a column break or interleaved figure
    material joined again.

    A paragraph that opens in lower case continues the latest unfinished
    paragraph within reach (one ending in a break hyphen first); one that
    opens in upper case continues only the piece right before it, and only
    if that piece stopped on a comma or a function word."""
    hosts_allowed = [
        piece.kind == "text" and not (is_headline_text(piece.text) and heads_body(pieces, i))
        for i, piece in enumerate(pieces)
    ]
    out: list[Piece] = []
    open_hosts: list[int] = []
    for piece, can_host in zip(pieces, hosts_allowed):
        host = continued_host(out, open_hosts, piece)
        if host is not None:
            out[host].text = clean.clean_text(clean.join_pair(out[host].text, piece.text, hyphenated))
            out[host].lines += piece.lines
            if not is_unfinished(out[host].text):
                open_hosts.remove(host)
            continue
        out.append(piece)
        if can_host and is_unfinished(piece.text):
            open_hosts.append(len(out) - 1)
    return out


def reads_as_prose(text: str) -> bool:
    """Longer than a label, or punctuated like a sentence: not a chart legend."""
    return len(text) >= 60 or bool(re.search(r"[,.;:]", text))


def continued_host(out: list[Piece], open_hosts: list[int], piece: Piece) -> int | None:
    """The index in ``out`` of the unfinished paragraph ``piece`` continues."""
    if piece.kind != "text" or not out:
        return None
    if piece.text[:1].islower():
        reachable = [
            i for i in open_hosts if len(out) - i <= _CONTINUATION_REACH and 0 <= piece.page - out[i].page <= 1
        ]
        hyphenated = [i for i in reachable if out[i].text.endswith("-")]
        prose = [i for i in reachable if reads_as_prose(out[i].text)]
        candidates = hyphenated or prose or reachable
        return candidates[-1] if candidates else None
    last = len(out) - 1
    if (
        last in open_hosts
        and len(out[last].lines[-1]) >= 35  # a body line, not a box title's last words
        and piece.page - out[last].page <= 1
        and ends_mid_phrase(out[last].text)
        # a figure's title and survey question often follow a column's last line
        and not _QUESTION.search(piece.text)
        and not is_headline_text(piece.text)
    ):
        return last
    return None


def attach_heading_tails(pieces: list[Piece]) -> list[Piece]:
    """"SAMARBEJDE PÅ TVÆRS" + "– hvad lærte vi?": a subtitle set on its own line."""
    out: list[Piece] = []
    for piece in pieces:
        if out and out[-1].kind == "heading" and re.match(r"^– [a-zæøå]", piece.text):
            out[-1].text = f"{out[-1].text} {piece.text}"
            continue
        out.append(piece)
    return out


_QUESTION = re.compile(r"“[^“]*[?…]\s*’?”$")


def absorb_figure_labels(pieces: list[Piece]) -> list[Piece]:
    """Axis labels, legends and survey questions around a figure caption are
    figure material, not paragraphs or headings."""
    questions: set[int] = set()
    for i, piece in enumerate(pieces):
        if not is_caption(piece):
            continue
        # the chart's title and survey question sit just before or after the caption
        for near in pieces[max(0, i - 2) : i + 3]:
            if near.kind == "text" and near.page == piece.page and _QUESTION.search(near.text):
                near.kind = "figure"
                questions.add(id(near))
        for label in pieces[i + 1 :]:
            if label.page != piece.page or is_caption(label) or not is_label(label):
                break
            label.kind = "figure"
    return merge_chart_titles(pieces, questions)


def merge_chart_titles(pieces: list[Piece], questions: set[int]) -> list[Piece]:
    """A chart title split off above its survey question joins the question."""
    out: list[Piece] = []
    for piece in pieces:
        title = out[-1] if out else None
        if id(piece) in questions and title is not None and title.kind in ("heading", "figure") and title.opens_body:
            title.kind, title.text = "figure", f"{title.text} {piece.text}"
            continue
        out.append(piece)
    return out


def is_caption(piece: Piece) -> bool:
    return piece.kind == "figure" and bool(_CAPTION.match(piece.text))


def is_label(piece: Piece) -> bool:
    """Short text that does not read as a finished sentence."""
    if piece.kind not in ("text", "heading", "figure"):
        return False
    text = piece.text
    if is_numbered_heading(text):
        return False
    return len(piece.lines) <= 3 and (len(text) < 60 or text[-1] not in ".!:;”")


# --- blocks ----------------------------------------------------------------

_QUOTE_OPEN = "“"
_QUOTE_CLOSE = "”"


def is_quote(text: str) -> bool:
    """A quoted statement set off as its own paragraph."""
    if re.match(r"^– [A-ZÆØÅ]", text):
        return True  # interview speech in the magazine layout
    if not text.startswith(_QUOTE_OPEN):
        return False
    close = text.find(_QUOTE_CLOSE)
    # The quotation runs (nearly) to the end: “...,” siger X. / “...” 52-årig kvinde
    return close == -1 or close >= len(text) * 0.6


def to_block(piece: Piece) -> Block:
    kind = piece.kind
    if kind == "text":
        kind = "quote" if is_quote(piece.text) else "paragraph"
    elif kind in ("header", "caps", "headline"):
        kind = "heading"
    return Block(kind=kind, text=piece.text, page=piece.page)
