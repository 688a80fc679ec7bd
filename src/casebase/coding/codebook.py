"""The codebook: load and validate codebook.yaml.

The codebook is inductive: coders add, rename, merge and delete codes by
editing the YAML, so nothing here assumes a fixed set. A child code implies
its parent everywhere (rules, model output, human decisions); ``close`` is
the one place that rule is applied.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from casebase import files
from casebase.errors import CasebaseError

CODE_KEYS = {
    "id",
    "label_da",
    "label_en",
    "parent",
    "definition",
    "include",
    "exclude",
    "colour",
    "examples",
    "patterns",
    "exclude_patterns",
    "constructed_examples",
    "replaces",
    "codable",
}
CONSTRUCTED_KEYS = ("positive", "negative")
REQUIRED_CODE_KEYS = ("id", "label_da", "label_en", "definition")
TEXT_KEYS = ("id", "label_da", "label_en", "definition", "parent", "colour")
_CODE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_COLOUR = "#888888"


@dataclass
class Pattern:
    text: str  # as written in the codebook
    line: int


@dataclass
class Code:
    id: str
    label_da: str
    label_en: str
    definition: str
    parent: str | None = None
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    colour: str = DEFAULT_COLOUR
    examples: list[str] = field(default_factory=list)
    patterns: list[Pattern] = field(default_factory=list)
    # Words that signal the code's exclusion criteria: evidence against the code.
    exclude_patterns: list[Pattern] = field(default_factory=list)
    # Sentences a coder wrote (not quotes) that carry the code, or nearly do but fall
    # under its exclusion criteria: training data, marked and counted as constructed.
    constructed_positive: list[str] = field(default_factory=list)
    constructed_negative: list[str] = field(default_factory=list)
    replaces: list[str] = field(default_factory=list)
    # False for a grouping code (a category in NVivo, QualCoder …): a heading over
    # its children, never coded, offered or trained, and not implied by a child.
    codable: bool = True
    line: int = 0


@dataclass
class Codebook:
    codes: dict[str, Code]  # in file order
    version: str
    path: Path

    @property
    def ids(self) -> list[str]:
        return list(self.codes)

    def ancestors(self, code_id: str) -> list[str]:
        chain = []
        parent = self.codes[code_id].parent
        while parent:
            chain.append(parent)
            parent = self.codes[parent].parent
        return chain

    def children(self, code_id: str | None) -> list[str]:
        return [c.id for c in self.codes.values() if c.parent == code_id]

    def descendants(self, code_id: str) -> list[str]:
        found = []
        for child in self.children(code_id):
            found += [child] + self.descendants(child)
        return found

    def constructed_examples(self) -> list[tuple[str, str, str]]:
        """(code id, "positive" or "negative", text) for every constructed example."""
        return [
            (code.id, polarity, text)
            for code in self.codes.values()
            for polarity, texts in (("positive", code.constructed_positive), ("negative", code.constructed_negative))
            for text in texts
        ]

    def implied(self, code_id: str) -> list[str]:
        """The ancestors a coding of the code brings along: the codable ones."""
        return [a for a in self.ancestors(code_id) if self.codes[a].codable]

    def close(self, code_ids) -> list[str]:
        """The codes with every codable ancestor added, in codebook order."""
        closed = set()
        for code_id in code_ids:
            closed.add(code_id)
            closed.update(self.implied(code_id))
        return [c for c in self.codes if c in closed]

    def grouping(self) -> list[str]:
        """The codes that only group others (``codable: false``)."""
        return [c.id for c in self.codes.values() if not c.codable]

    def depth(self, code_id: str) -> int:
        return len(self.ancestors(code_id))

    def in_tree_order(self) -> list[str]:
        """Parents before their children, siblings in file order."""
        ordered: list[str] = []

        def visit(parent):
            for child in self.children(parent):
                ordered.append(child)
                visit(child)

        visit(None)
        return ordered

    def renamed(self) -> dict[str, str]:
        """Old code id -> the code that replaces it (renames and merges)."""
        return {old: code.id for code in self.codes.values() for old in code.replaces}


def _string_list(entry, key: str, path: Path) -> list[str]:
    value = entry.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CasebaseError(f"{key!r} must be a list of texts", file=path, line=entry.line_of(key))
    return [v.strip() for v in value]


def load(path: Path) -> Codebook:
    path = Path(path)
    data = files.load_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("codes"), list):
        raise CasebaseError("expected a top-level 'codes:' list", file=path, line=1)
    for key in data:
        if key != "codes":
            raise CasebaseError(f"unknown key {key!r}", file=path, line=data.line_of(key))
    codes: dict[str, Code] = {}
    for entry in data["codes"]:
        code = _code_from_entry(entry, path)
        if code.id in codes:
            raise CasebaseError(
                f"duplicate code id {code.id!r} (first at line {codes[code.id].line})",
                file=path,
                line=code.line,
            )
        codes[code.id] = code
    _check_references(codes, path)
    return Codebook(codes=codes, version=_version(codes), path=path)


def _code_from_entry(entry, path: Path) -> Code:
    if not isinstance(entry, files.Mapping):
        raise CasebaseError("each code must be a mapping of keys", file=path)
    for key in entry:
        if key not in CODE_KEYS:
            raise CasebaseError(
                f"unknown key {key!r} (allowed: {', '.join(sorted(CODE_KEYS))})",
                file=path,
                line=entry.line_of(key),
            )
    for key in REQUIRED_CODE_KEYS:
        if not entry.get(key):
            raise CasebaseError(f"code is missing {key!r}", file=path, line=entry.line)
    for key in TEXT_KEYS:
        # A list here ("label_da: [Digital, omstilling]") would be stored as its
        # Python spelling; say so instead.
        if isinstance(entry.get(key), (list, dict)):
            kind = "list" if isinstance(entry[key], list) else "mapping"
            raise CasebaseError(
                f"{key!r} must be one text, not a {kind} (put the text in quotes if it has a ':' or starts with '[')",
                file=path,
                line=entry.line_of(key),
            )
    code_id = str(entry["id"])
    if not _CODE_ID.match(code_id):
        raise CasebaseError(
            f"code id {code_id!r} must be snake_case (a-z, 0-9, _)", file=path, line=entry.line_of("id")
        )
    colour = str(entry.get("colour") or DEFAULT_COLOUR)
    if not _COLOUR.match(colour):
        raise CasebaseError(
            f"colour {colour!r} must be like '#1f77b4'", file=path, line=entry.line_of("colour")
        )
    constructed = entry.get("constructed_examples") or {}
    if constructed and (not isinstance(constructed, files.Mapping) or set(constructed) - set(CONSTRUCTED_KEYS)):
        raise CasebaseError(
            "'constructed_examples' must be a mapping with 'positive' and/or 'negative' lists",
            file=path,
            line=entry.line_of("constructed_examples"),
        )
    positive = _string_list(constructed, "positive", path) if constructed else []
    negative = _string_list(constructed, "negative", path) if constructed else []
    for key, texts in (("positive", positive), ("negative", negative)):
        for index, text in enumerate(texts):
            if not text or any(ord(ch) < 32 and ch not in "\t\n" for ch in text):
                raise CasebaseError(
                    "a constructed example must be a non-empty sentence without control characters",
                    file=path,
                    line=constructed[key].line_of(index) if hasattr(constructed[key], "line_of") else entry.line,
                )
    codable = entry.get("codable", True)
    if not isinstance(codable, bool):
        raise CasebaseError(f"'codable' must be true or false, not {codable!r}", file=path, line=entry.line_of("codable"))
    if not codable:
        for key in ("patterns", "exclude_patterns", "constructed_examples"):
            if entry.get(key):
                raise CasebaseError(
                    f"code {entry['id']!r} is a grouping code (codable: false): it is never coded, so it takes no {key!r}",
                    file=path,
                    line=entry.line_of(key),
                )
    both = set(positive) & set(negative)
    if both:
        raise CasebaseError(
            f"constructed example both positive and negative: {sorted(both)[0]!r}", file=path, line=constructed.line_of("negative")
        )
    return Code(
        id=code_id,
        label_da=str(entry["label_da"]).strip(),
        label_en=str(entry["label_en"]).strip(),
        definition=" ".join(str(entry["definition"]).split()),
        parent=str(entry["parent"]) if entry.get("parent") else None,
        include=_string_list(entry, "include", path),
        exclude=_string_list(entry, "exclude", path),
        colour=colour,
        examples=_string_list(entry, "examples", path),
        patterns=_patterns(entry, "patterns", path),
        exclude_patterns=_patterns(entry, "exclude_patterns", path),
        constructed_positive=positive,
        constructed_negative=negative,
        replaces=_string_list(entry, "replaces", path),
        codable=codable,
        line=entry.line,
    )


def _patterns(entry, key: str, path: Path) -> list[Pattern]:
    value = entry.get(key) or []
    if not isinstance(value, list):
        raise CasebaseError(f"{key!r} must be a list", file=path, line=entry.line_of(key))
    patterns = []
    for index, text in enumerate(value):
        line = value.line_of(index) if isinstance(value, files.Sequence) else entry.line
        if not isinstance(text, str) or not text.strip():
            raise CasebaseError("a pattern must be a non-empty text", file=path, line=line)
        patterns.append(Pattern(text=text.strip(), line=line))
    return patterns


def _check_references(codes: dict[str, Code], path: Path) -> None:
    for code in codes.values():
        if code.parent and code.parent not in codes:
            raise CasebaseError(
                f"code {code.id!r} has unknown parent {code.parent!r}", file=path, line=code.line
            )
    for code in codes.values():
        seen = [code.id]
        parent = code.parent
        while parent:
            if parent in seen:
                cycle = " -> ".join(seen + [parent])
                raise CasebaseError(f"parent cycle: {cycle}", file=path, line=code.line)
            seen.append(parent)
            parent = codes[parent].parent
    replaced_by: dict[str, str] = {}
    for code in codes.values():
        for old in code.replaces:
            if old in codes:
                raise CasebaseError(
                    f"code {code.id!r} replaces {old!r}, which is still in the codebook",
                    file=path,
                    line=code.line,
                )
            if old in replaced_by:
                raise CasebaseError(
                    f"{old!r} is replaced by both {replaced_by[old]!r} and {code.id!r}",
                    file=path,
                    line=code.line,
                )
            replaced_by[old] = code.id


def _version(codes: dict[str, Code]) -> str:
    """A hash of what the codes say, not of the file's layout or comments."""
    content = []
    for code in codes.values():
        item = {k: v for k, v in vars(code).items() if k != "line"}
        item["patterns"] = [p.text for p in code.patterns]
        item["exclude_patterns"] = [p.text for p in code.exclude_patterns]
        # Keys a codebook does not use leave its version as it was before they existed.
        for key in ("exclude_patterns", "constructed_positive", "constructed_negative"):
            if not item[key]:
                del item[key]
        if item["codable"]:
            del item["codable"]
        content.append(item)
    digest = hashlib.sha256(json.dumps(content, ensure_ascii=False, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:12]
