"""YAML text read defensively: one line for every way a file can be wrong, and bounded work.

PyYAML alone accepts a key given twice (the last one wins, silently), builds a "billion laughs"
file of nested aliases in no time but leaves every later walk of it to expand it, recurses once
per nesting level (10,000 ``[`` end in RecursionError), and reads ``1e-5`` as text. Here the
composer refuses nesting beyond `MAX_DEPTH`, a document whose aliases expand it beyond
`MAX_VALUES` values, an alias inside the collection it names, and a key given twice; numbers in
exponent form without a dot are floats. Sweep files, ``best.yaml`` and ``key=value``
overrides are all read through `parse_yaml`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from trainables.errors import UsageError
from trainables.secrets import shown

MAX_DEPTH = 50
"""Collections nested deeper than this are refused (a sweep file nests about five)."""
MAX_VALUES = 10_000
"""A document whose values, each alias counted as the whole of what it names, exceed this is
refused (a sweep file holds a few hundred)."""
MAX_BYTES = 4 * 2**20
"""A larger file is no sweep file."""


class RefusedYamlError(Exception):
    """Well-formed YAML that is refused: a key given twice, nesting too deep, too many values
    through aliases. ``field`` is the dotted key where it happened (empty at the top)."""

    def __init__(self, field: str, line: int, reason: str, first_line: int | None = None) -> None:
        super().__init__(reason)
        self.field = field
        self.line = line
        self.reason = reason
        self.first_line = first_line
        """For a key given twice: where it was given first."""

    def describe(self, in_file: bool) -> str:
        """``field: reason``; a key given twice names both of its lines in a file."""
        reason = self.reason
        if self.first_line is not None:
            where = f", on lines {self.first_line} and {self.line}" if in_file else ""
            reason = f"given twice{where}; keep one"
        return f"{self.field}: {reason}" if self.field else reason


# YAML 1.2's floats that YAML 1.1 (PyYAML) reads as text: an exponent without a dot (1e-5).
_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with a depth limit in its (recursive) composer."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise RefusedYamlError(
                    "",
                    mark.line + 1,
                    f"nested more than {MAX_DEPTH} levels deep; a sweep file nests a few",
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789"))


def parse_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the values built from it, in one parse.

    Raises:
        RefusedYamlError: a key given twice, nesting too deep, too many values through aliases, or
            an alias inside what it names.
        yaml.YAMLError: not valid YAML, or more than one document.
        RecursionError: never from the limits above; left for the caller as a last resort.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _Walk().size(node, ())
        return node, loader.construct_document(node)
    finally:
        loader.dispose()


class _Walk:
    """One pass over the node graph, each node once (an alias is the node it names): each
    node's size and depth as if aliases were written out, and the keys of each mapping."""

    def __init__(self) -> None:
        self.sizes: dict[int, tuple[int, int]] = {}
        self.open: set[int] = set()

    def size(self, node: yaml.Node, path: tuple[str, ...]) -> tuple[int, int]:
        key = id(node)
        if key in self.sizes:
            return self.sizes[key]
        line = node.start_mark.line + 1
        field = ".".join(path)
        if key in self.open:
            raise RefusedYamlError(
                field, line, "an alias (*name) inside the collection it names; write it out"
            )
        self.open.add(key)
        values, depth = 1, 1
        for child, child_path in self._children(node, path):
            child_values, child_depth = self.size(child, child_path)
            values += child_values
            depth = max(depth, child_depth + 1)
        self.open.discard(key)
        if values > MAX_VALUES:
            raise RefusedYamlError(
                field,
                line,
                f"aliases (*name) make it more than {MAX_VALUES} values; write the values out",
            )
        if depth > MAX_DEPTH:
            raise RefusedYamlError(
                field, line, f"aliases (*name) nest it more than {MAX_DEPTH} levels deep"
            )
        self.sizes[key] = values, depth
        return values, depth

    @staticmethod
    def _children(
        node: yaml.Node, path: tuple[str, ...]
    ) -> list[tuple[yaml.Node, tuple[str, ...]]]:
        if isinstance(node, yaml.SequenceNode):
            return [(item, (*path, str(index))) for index, item in enumerate(node.value)]
        if not isinstance(node, yaml.MappingNode):
            return []
        children: list[tuple[yaml.Node, tuple[str, ...]]] = []
        seen: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                name = str(key_node.value)
                if (key_node.tag, name) in seen:
                    first = seen[(key_node.tag, name)]
                    raise RefusedYamlError(".".join((*path, name)), line, "", first_line=first)
                seen[(key_node.tag, name)] = line
                children.append((value_node, (*path, name)))
            else:
                children += [(key_node, path), (value_node, path)]
        return children


def read_yaml_file(path: Path, kind: str) -> tuple[yaml.Node | None, Any]:
    """A YAML file's node tree and values.

    Raises:
        UsageError: one line naming the file (and the line, where there is one): missing, a
            folder, unreadable, too large, binary, not UTF-8, not valid YAML, more than one
            document, a tab where YAML does not allow one, or refused by `parse_yaml`.
    """
    try:
        found = path.is_file()
    except OSError as error:  # a name too long for the file system, say
        raise UsageError(f"{shown(str(path))}: {error.strerror}; pass a {kind}'s path") from None
    if not found:
        raise UsageError(f"{path}: no such {kind}; pass the path of a YAML file")
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise UsageError(
                f"{path}: {size / 2**20:.0f} MiB is too large for a {kind} (at most "
                f"{MAX_BYTES // 2**20} MiB); pass the YAML file itself"
            )
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(f"{path}: cannot read the {kind}: {error.strerror or error}") from None
    if b"\x00" in data:
        raise UsageError(f"{path}: a binary file, not YAML text; pass the {kind} itself")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UsageError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x}); save the file "
            "as UTF-8"
        ) from None
    try:
        return parse_yaml(text)
    except RefusedYamlError as refused:
        raise UsageError(f"{path}:{refused.line}: {refused.describe(in_file=True)}") from None
    except yaml.MarkedYAMLError as error:
        raise UsageError(_syntax_error(path, error, kind)) from None
    except yaml.reader.ReaderError as error:
        line = text[: error.position].count("\n") + 1
        raise UsageError(
            f"{path}:{line}: not valid YAML: the control character #x{error.character:04x} "
            "is not allowed; remove it"
        ) from None
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
    except RecursionError:
        raise UsageError(f"{path}: not valid YAML: nested too deep; flatten it") from None


def _syntax_error(path: Path, error: yaml.MarkedYAMLError, kind: str) -> str:
    line = error.problem_mark.line + 1 if error.problem_mark else "?"
    problem = error.problem or ""
    if "expected a single document" in (error.context or ""):
        return (
            f"{path}:{line}: a second YAML document starts here; a {kind} is one document: "
            "remove this '---' and what follows, or the document before it"
        )
    if "'\\t'" in problem:
        return f"{path}:{line}: not valid YAML: a tab character; indent with spaces, not tabs"
    context = error.context or ""
    if error.context_mark is not None and context:
        context += f" (started on line {error.context_mark.line + 1}),"
    return f"{path}:{line}: not valid YAML: {f'{context} {problem}'.strip()}; fix the syntax"
