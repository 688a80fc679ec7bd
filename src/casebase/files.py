"""The files users give and get: YAML read so that errors can name the line a
problem is on, and files written whole or not at all.

Exports and imports write to a temporary file beside the target and move it
into place with one rename, so a failed or interrupted run never leaves half
a file where a user (or another tool) expects a complete one.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import yaml

from casebase.errors import CasebaseError, read_bytes


class Mapping(dict):
    """A YAML mapping that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict

    def line_of(self, key) -> int:
        return self.key_lines.get(key, self.line)


class Sequence(list):
    """A YAML sequence that remembers the line of itself and of each item."""

    line: int = 0
    item_lines: list

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> Mapping:
    loader.flatten_mapping(node)
    mapping = Mapping()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise CasebaseError(f"duplicate key {key!r}", line=key_node.start_mark.line + 1)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1
    return mapping


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> Sequence:
    sequence = Sequence(loader.construct_object(child, deep=True) for child in node.value)
    sequence.line = node.start_mark.line + 1
    sequence.item_lines = [child.start_mark.line + 1 for child in node.value]
    return sequence


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(path: Path):
    """Parse a YAML file; any problem becomes a CasebaseError naming file and line."""
    path = Path(path)
    raw = read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CasebaseError("not valid UTF-8 text", file=path, line=line) from None
    try:
        return yaml.load(text, Loader=_LineLoader)
    except CasebaseError as exc:
        exc.file = str(path)
        raise
    except (TypeError, RecursionError) as exc:
        # An unhashable key ("? [a, b]") or nesting deeper than Python's stack.
        raise CasebaseError(f"invalid YAML: {type(exc).__name__}: {str(exc)[:200]}", file=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CasebaseError(
            f"invalid YAML: {problem}", file=path, line=mark.line + 1 if mark else None
        ) from None


def json_lines(text: str, path: Path):
    """(line number, object) for each non-blank line of JSON Lines text; a line that
    is not a JSON object is one error naming the file and line."""
    import json

    # Lines end at \n only: JSON strings may hold U+2028 or U+0085 as they are.
    for number, line in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise CasebaseError(f"not valid JSON ({exc.msg})", file=path, line=number) from None
        if not isinstance(item, dict):
            raise CasebaseError("each line must be a JSON object", file=path, line=number)
        yield number, item


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside ``path``; move it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
