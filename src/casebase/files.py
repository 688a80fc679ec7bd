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

from casebase.errors import CasebaseError, on_file, read_bytes

# The most values a YAML document may hold once its aliases are expanded. A
# codebook of a hundred codes holds tens of thousands; an "alias bomb" (a list of
# ten aliases of a list of ten aliases ...) holds billions, and anything that
# walked it (a message quoting it, the codebook's hash) would never finish.
MAX_YAML_NODES = 1_000_000


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
    def compose_document(self):
        node = super().compose_document()
        _check_expansion(node)
        return node


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand to more than MAX_YAML_NODES values,
    counted on the composed nodes (each distinct node once), before any is built."""
    sizes: dict[int, int] = {}

    def size(node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        # A node met again while its own size is being counted is a cycle (&a [*a]):
        # an endless expansion, counted as too many.
        sizes[id(node)] = MAX_YAML_NODES + 1
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(key) + size(value) for key, value in node.value)
        sizes[id(node)] = total
        if total > MAX_YAML_NODES:
            raise CasebaseError(
                f"the document expands to more than {MAX_YAML_NODES:,} values through its aliases (*name);"
                " write the values out, or use fewer aliases",
                line=node.start_mark.line + 1,
            )
        return total

    size(root)


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
    """Yield a temporary path beside ``path``; move it over ``path`` on success.
    A path that cannot be written (under a file, on a read-only or full disk, in
    /proc) is one CasebaseError naming ``path``; nothing is left behind."""
    path = Path(path)
    if path.is_dir():
        raise CasebaseError("is a folder, not a file; give a file name", file=path)
    existing = next((p for p in path.parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise CasebaseError(f"cannot write here: {str(existing)!r} is a file, not a folder", file=path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # The temporary file's own name would only puzzle: errors name the target. It is
    # created here, so a place that cannot be written (/proc, a missing drive) is
    # found before any work; the work itself is wrapped for a full or failing disk
    # only, so a bug in it is not passed off as the user's path.
    with on_file(path, name_part=False):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        tmp.touch()
    try:
        with on_file(path, name_part=False, storage_only=True):
            yield tmp
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # the error being raised says what went wrong; a leftover .tmp is harmless
        raise
