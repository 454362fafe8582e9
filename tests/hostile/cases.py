"""What the case modules share: a case's description, its pytest marks, and small edits of a
valid sweep (set, drop or rename a key; write the YAML text by hand)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.hostile.harness import Expect

Sweep = dict[str, Any]
Content = str | bytes | Sweep
"""What a file holds: YAML text, raw bytes, or a mapping written as YAML."""


@dataclass(frozen=True)
class Hostile:
    """One case: an id, how to make its input, what the command must answer.

    ``slow``: the command gets past the file's own checks (the data or model checks import
    torch and transformers, seconds). ``defect``: the product mishandles it (seen failing);
    the case is a strict xfail with this reason until the product is fixed.
    """

    id: str
    make: Callable[..., Any]
    expect: Expect
    slow: bool = False
    defect: str | None = None


def params(cases: Iterable[Hostile]) -> list[Any]:
    """The cases as pytest parameters, each with its id and marks."""
    found = []
    seen: set[str] = set()
    for case in cases:
        assert case.id not in seen, f"two cases named {case.id}"
        seen.add(case.id)
        marks: list[pytest.MarkDecorator] = []
        if case.slow:
            marks.append(pytest.mark.slow)
        if case.defect:
            marks.append(pytest.mark.xfail(strict=True, reason=case.defect))
        found.append(pytest.param(case, id=case.id, marks=marks))
    return found


def dump(content: Sweep) -> str:
    return yaml.safe_dump(content, sort_keys=False, allow_unicode=True)


def write(path: Path, content: Content) -> Path:
    """Write ``content`` to ``path`` as it is (text as UTF-8, a mapping as YAML)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_bytes(content.encode("utf-8"))
    else:
        path.write_bytes(dump(content).encode("utf-8"))
    return path


def _parent(content: Sweep, dotted: str) -> tuple[dict[str, Any], str]:
    *sections, key = dotted.split(".")
    node = content
    for name in sections:
        node = node.setdefault(name, {})
    return node, key


def setting(dotted: str, value: Any) -> Callable[[Sweep], Sweep]:
    """An edit that sets ``a.b.c`` to ``value`` (sections made where missing)."""

    def edit(content: Sweep) -> Sweep:
        content = copy.deepcopy(content)
        node, key = _parent(content, dotted)
        node[key] = value
        return content

    return edit


def settings(**values: Any) -> Callable[[Sweep], Sweep]:
    """Several `setting` edits at once; ``a__b`` names ``a.b``."""

    def edit(content: Sweep) -> Sweep:
        for dotted, value in values.items():
            content = setting(dotted.replace("__", "."), value)(content)
        return content

    return edit


def drop(dotted: str) -> Callable[[Sweep], Sweep]:
    def edit(content: Sweep) -> Sweep:
        content = copy.deepcopy(content)
        node, key = _parent(content, dotted)
        node.pop(key)
        return content

    return edit


def rename(dotted: str, new: str) -> Callable[[Sweep], Sweep]:
    """Rename the last key of ``dotted`` to ``new``, keeping its place in the file."""

    def edit(content: Sweep) -> Sweep:
        content = copy.deepcopy(content)
        node, key = _parent(content, dotted)
        items = [(new if k == key else k, v) for k, v in node.items()]
        node.clear()
        node.update(items)
        return content

    return edit


def text(edit: Callable[[str], str | bytes]) -> Callable[[Sweep], str | bytes]:
    """An edit of the file's YAML text (as `dump` writes it)."""
    return lambda content: edit(dump(content))


def replace(old: str, new: str, count: int = 1) -> Callable[[Sweep], str]:
    """An edit replacing text in the dumped file; ``old`` must be there."""

    def edit(written: str) -> str:
        assert old in written, f"{old!r} is not in the file"
        return written.replace(old, new, count)

    return text(edit)  # type: ignore[return-value]
