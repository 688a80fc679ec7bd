"""A new code from a candidate theme: written to codebook.yaml, its excerpts queued.

The codebook is edited the way a coder would: the new code, rendered by
ruamel.yaml in the layout the file's codes have (their dash's column, the file's
line ends), is appended to the ``codes:`` list, so every comment, every existing
code, its order, quoting and ``replaces`` stay exactly as they were (the file
before is a prefix of the file after), whatever editor last saved it. The result
is validated like any codebook (``codebook.load``, the old codes read as before,
and a ``check`` for the patterns) before it replaces the file, in one rename,
under a lock.

The excerpts the coder picked from the theme are queued for the new code in
``corpus/coding/queued/<code>.csv``: the build places them in the ``queued``
table and the review queue offers them as not yet judged for that code. They
carry no decision: nothing a coder decided before changes, and an earlier
decision is "not yet judged" for the new code, as for any new code.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from casebase import files
from casebase.coding import codebook as codebook_mod
from casebase.coding import decision_files
from casebase.coding.decision_files import csv_line, now, snippet_of
from casebase.errors import CasebaseError, on_file, read_bytes

QUEUED_DIR = "queued"
QUEUED_COLUMNS = ["excerpt_id", "snippet", "theme", "proposed_by", "timestamp"]
# Bounds on what a coder types: an id is also a file name (the queue) and a URL, a
# label a chip on every page, and every pattern is compiled at every build.
MAX_ID = 60
MAX_LABEL = 120
MAX_DEFINITION = 5_000
MAX_PATTERNS = 50
MAX_PATTERN = 200
# Control characters (a NUL, an escape, a line break in a label) and the bidirectional
# overrides that make a label read otherwise than it is written.
_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Colours for new codes, distinct from the seed codebook's; the first one no code uses.
PALETTE = ["#b7791f", "#805ad5", "#d53f8c", "#319795", "#dd6b20", "#3182ce", "#38a169", "#e53e3e", "#718096", "#975a16"]


def has_hidden_characters(text: str, line_breaks: bool = False) -> bool:
    """Whether ``text`` holds a control or bidirectional-override character (line
    breaks and tabs allowed where ``line_breaks``: a definition is several lines)."""
    if line_breaks:
        text = re.sub("[\n\r\t]", " ", text)
    return _HIDDEN.search(text) is not None


def refusal(code: "NewCode") -> str | None:
    """Why ``code`` cannot be written whatever the codebook holds, or None."""
    if len(code.id) > MAX_ID:
        return f"code id is {len(code.id)} characters long; at most {MAX_ID}"
    if len(code.label_da.strip()) > MAX_LABEL or len(code.label_en.strip()) > MAX_LABEL:
        return f"a label is longer than {MAX_LABEL} characters"
    if len(code.definition) > MAX_DEFINITION:
        return f"the definition is longer than {MAX_DEFINITION} characters"
    if len(code.patterns) > MAX_PATTERNS or any(len(p) > MAX_PATTERN for p in code.patterns):
        return f"at most {MAX_PATTERNS} patterns of at most {MAX_PATTERN} characters each"
    if any(has_hidden_characters(t) for t in (code.label_da, code.label_en, *code.patterns)) or has_hidden_characters(
        code.definition, line_breaks=True
    ):
        return "a label, the definition or a pattern holds a control character"
    return None


@dataclass
class NewCode:
    id: str
    label_da: str
    definition: str
    label_en: str = ""
    parent: str | None = None
    patterns: list[str] = field(default_factory=list)
    colour: str | None = None


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML()  # round trip: comments, order and quoting are kept
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    yaml.indent(mapping=2, sequence=4, offset=2)  # the codebook's own layout
    return yaml


def judged_ids(coding_dir: Path) -> set[str]:
    """Every code id a recorded codebook version had (``codebooks.csv``): the codes
    coders have judged excerpts under, present or absent."""
    return {code for codes in decision_files.read_registry(coding_dir).values() for code in codes}


def add_code(
    path: Path,
    code: NewCode,
    check: Callable[[codebook_mod.Codebook], None] | None = None,
    judged: Collection[str] = (),
) -> codebook_mod.Codebook:
    """Append ``code`` to the codebook at ``path``; returns the new codebook.

    Raises CasebaseError (naming the file, and the line where it has one) if the
    code cannot be added: its id exists, was replaced by a code or is one of the
    ``judged`` ids of a code since removed (earlier decisions would be read as
    judging the new code), its parent does not exist, a pattern does not compile
    (``check``), the file is not a valid codebook now. Nothing is written then."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import FoldedScalarString

    path = Path(path)
    refused = refusal(code)
    if refused:
        raise CasebaseError(refused, file=path)
    with on_file(path), FileLock(str(path) + ".lock"):
        current = codebook_mod.load(path)  # refuses a half-edited file, naming its line
        if code.id in current.codes:
            raise CasebaseError(f"code id {code.id!r} is already in the codebook (line {current.codes[code.id].line})", file=path)
        if code.id in current.renamed():
            raise CasebaseError(f"code id {code.id!r} is replaced by {current.renamed()[code.id]!r}; choose another id", file=path)
        if code.id in judged:
            raise CasebaseError(
                f"code id {code.id!r} belonged to a removed code that coders judged excerpts under; "
                "their decisions would be read as judging the new code; choose another id",
                file=path,
            )
        text = read_bytes(path).decode("utf-8")
        yaml = _yaml()
        data = yaml.load(text)
        entry = CommentedMap()
        entry["id"] = code.id
        entry["label_da"] = code.label_da.strip()
        entry["label_en"] = (code.label_en or code.label_da).strip()
        if code.parent:
            entry["parent"] = code.parent
        used = {c.colour.lower() for c in current.codes.values()}
        entry["colour"] = code.colour or next((c for c in PALETTE if c not in used), codebook_mod.DEFAULT_COLOUR)
        entry["definition"] = FoldedScalarString(" ".join(code.definition.split()))
        if code.patterns:
            entry["patterns"] = CommentedSeq(list(dict.fromkeys(p.strip() for p in code.patterns if p.strip())))
        written = text + _appended(text, data, entry, path)
        with files.atomic_path(path) as tmp:
            tmp.write_bytes(written.encode("utf-8"))
            try:
                book = codebook_mod.load(tmp)
                if book.ids != [*current.ids, code.id] or any(book.codes[c] != current.codes[c] for c in current.ids):
                    # The text after the codes list (a "..." end, another key) changed how
                    # the file reads: the codebook is left as it is.
                    raise CasebaseError("the codebook's existing codes would change; add the code by hand", file=path)
                if check is not None:
                    check(book)
            except CasebaseError as exc:
                if exc.message.startswith("invalid YAML") and (exc.line or 0) > text.count("\n") + (not text.endswith("\n")):
                    # The new code's own text is valid YAML: the file ends its document
                    # before its end (a "..." line), so nothing can follow the codes.
                    raise CasebaseError(
                        "the codebook's YAML document ends before the file does (a '...' line); "
                        "remove that line or add the code by hand",
                        file=path,
                    ) from None
                # Name the codebook, not the temporary file; nothing is replaced.
                raise CasebaseError(exc.message, file=path, line=exc.line) from None
        return codebook_mod.load(path)


def _appended(text: str, data, entry, path: Path) -> str:
    """The text that appends ``entry`` to the codes list of the codebook ``text``,
    rendered by ruamel.yaml in the layout the file's codes already have (their dash's
    column, the file's line ends), so the file before stays, byte for byte, a prefix of
    the file after: a BOM, a "---", CRLF lines or another indentation included."""
    codes = data["codes"]
    line, _ = codes.lc.item(0)
    first = text.splitlines()[line]
    if not first.lstrip().startswith("-"):
        raise CasebaseError("the codes are not a block list ('- id: ...' a line each); add the code by hand", file=path, line=line + 1)
    dash = len(first) - len(first.lstrip(" "))
    out = io.StringIO()
    _yaml().dump([entry], out)  # "  - id: ...": the dash at column 2
    rendered = out.getvalue().splitlines()
    shift = dash - 2
    rendered = [" " * shift + r if shift >= 0 else r[-shift:] for r in rendered]
    newline = "\r\n" if "\r\n" in text else "\n"
    before = "" if text.endswith(("\n", "\r")) else newline
    return before + "".join(r + newline for r in rendered)


def queued_file(coding_dir: Path, code_id: str) -> Path:
    return Path(coding_dir) / QUEUED_DIR / f"{code_id}.csv"


def queue_excerpts(coding_dir: Path, code_id: str, excerpts: list[tuple[str, str]], theme: str, coder: str) -> Path:
    """Queue (excerpt id, text) pairs for ``code_id``, proposed by ``coder`` from the
    theme described by ``theme``; the file is written whole (earlier rows kept)."""
    path = queued_file(coding_dir, code_id)
    rows = read_queued_file(path) if path.exists() else []
    known = {r["excerpt_id"] for r in rows}
    stamp = now()
    for excerpt_id, text in excerpts:
        if excerpt_id not in known:
            rows.append({"excerpt_id": excerpt_id, "snippet": snippet_of(text), "theme": theme, "proposed_by": coder, "timestamp": stamp})
            known.add(excerpt_id)
    with files.atomic_path(path) as tmp:
        tmp.write_text(
            csv_line(QUEUED_COLUMNS) + "".join(csv_line([r[c] for c in QUEUED_COLUMNS]) for r in rows), encoding="utf-8"
        )
    return path


def read_queued_file(path: Path) -> list[dict]:
    try:
        text = read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CasebaseError("not UTF-8 text", file=path, line=read_bytes(path)[: exc.start].count(b"\n") + 1) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames != QUEUED_COLUMNS:
        raise CasebaseError(f"expected the columns {', '.join(QUEUED_COLUMNS)}", file=path, line=1)
    return list(reader)


def read_queued(coding_dir: Path, codebook: codebook_mod.Codebook) -> list[dict]:
    """Every queued excerpt as (code_id, excerpt_id, proposed_by, timestamp), for the
    codes of today's codebook (a renamed code's queue follows it)."""
    renamed = codebook.renamed()
    found = []
    for path in sorted((Path(coding_dir) / QUEUED_DIR).glob("*.csv")):
        code_id = renamed.get(path.stem, path.stem)
        if code_id not in codebook.codes:
            continue
        for row in read_queued_file(path):
            found.append(
                {"code_id": code_id, "excerpt_id": row["excerpt_id"], "proposed_by": row["proposed_by"], "timestamp": row["timestamp"]}
            )
    return found
