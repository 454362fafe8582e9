"""A benchmark's own block of a document: the figures between two markers that name it, written
by the benchmark that measured them rather than copied by hand."""

from __future__ import annotations

from pathlib import Path


def markers(benchmark: str) -> tuple[str, str]:
    return f"<!-- {benchmark}: begin -->", f"<!-- {benchmark}: end -->"


def has_block(path: Path, benchmark: str) -> bool:
    """Whether the document has the benchmark's block (checked before a long run)."""
    begin, end = markers(benchmark)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    return begin in text and end in text


def write_block(path: Path, benchmark: str, block: str) -> None:
    """Replace what lies between the benchmark's markers with ``block``."""
    begin, end = markers(benchmark)
    head, rest = path.read_text(encoding="utf-8").split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{block.strip()}\n{end}{tail}", encoding="utf-8")
