"""The documents say what the code does: their sweep-file examples validate, their figures are
the benchmarks' own, and they name no issue tracker's numbers.

Fast and without Ray: the examples go through `SweepSpec` only, and the figures' renderer
(`benchmarks/figures.py`) needs the standard library only.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tuner.spec.sweep import SweepSpec

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PERFORMANCE = DOCS / "performance.md"
DOCUMENTS = sorted([*DOCS.glob("*.md"), REPO / "README.md"])

# A block that is not meant to validate says so on its first line, with the reason after it.
MARKER = "# not a complete section"
WHOLE = ("name", "model", "data", "search_space")
# What a fragment of a sweep file is merged into: each of the fragment's sections replaces
# this sweep's section of that name.
MINIMAL: dict[str, Any] = {
    "name": "docs-example",
    "model": {"name_or_path": "some/model"},
    "data": {"train": "train.csv"},
    "search_space": {
        "learning_rate": {"type": "float", "low": 1.0e-5, "high": 1.0e-4, "log": True},
    },
}


def yaml_blocks(path: Path) -> list[tuple[int, str]]:
    """The document's ```yaml fenced blocks, with the line each one's fence is on."""
    text = path.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, found.start()) + 1, found.group(1))
        for found in re.finditer(r"^```yaml[ \t]*\n(.*?)^```", text, re.M | re.S)
    ]


EXAMPLES = [
    pytest.param(block, id=f"{path.relative_to(REPO)}:{line}")
    for path in DOCUMENTS
    for line, block in yaml_blocks(path)
]


def test_the_sweep_file_reference_has_examples() -> None:
    assert yaml_blocks(DOCS / "sweep-file.md"), "no ```yaml block found in docs/sweep-file.md"


def test_the_minimal_sweep_is_valid() -> None:
    SweepSpec.model_validate(MINIMAL)


@pytest.mark.parametrize("block", EXAMPLES)
def test_every_sweep_file_example_validates(block: str) -> None:
    """A whole sweep file validates as it is; a fragment (one or more sections) validates in
    the minimal sweep. A block meant otherwise carries the marker on its first line."""
    if block.lstrip().startswith(MARKER):
        pytest.skip(block.lstrip().splitlines()[0])
    content = yaml.safe_load(block)
    assert isinstance(content, dict) and content, (
        f"not a mapping of sweep-file sections; mark it `{MARKER}: why` if it is not one"
    )
    if all(section in content for section in WHOLE):
        SweepSpec.model_validate(content)
    else:
        SweepSpec.model_validate({**MINIMAL, **content})


ISSUE_REFERENCES = (
    re.compile(r"\b(?:issues?|pull requests?|PRs?|tickets?)\s*#?\d+\b", re.I),
    re.compile(r"(?<![\w&#/])#\d+\b"),  # "#17", not a heading, an anchor or an entity
)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_no_document_refers_to_issue_numbers(path: Path) -> None:
    found = [
        f"{path.name}:{number}: {match.group(0)}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for pattern in ISSUE_REFERENCES
        for match in pattern.finditer(line)
    ]
    assert not found, "issue references; say what the change does instead:\n" + "\n".join(found)


@pytest.mark.parametrize("name", ["performance.md", "design.md"])
def test_no_dated_notes(name: str) -> None:
    dates = re.findall(r"\b20\d\d-[01]\d-[0-3]\d\b", (DOCS / name).read_text(encoding="utf-8"))
    assert not dates, f"docs/{name} has dates {dates}: figures come from the benchmarks' JSON"


def figures_module() -> ModuleType:
    """benchmarks/figures.py, which renders each benchmark's block of performance.md."""
    path = REPO / "benchmarks" / "figures.py"
    spec = importlib.util.spec_from_file_location("benchmark_figures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_cited_json_exists_or_the_doc_says_how_to_make_it() -> None:
    text = PERFORMANCE.read_text(encoding="utf-8")
    cited = set(re.findall(r"(?:docs/)?figures/[\w.-]+\.json\b", text))
    assert cited, "docs/performance.md cites no figures JSON"
    missing = []
    for reference in cited:
        relative = reference.removeprefix("docs/")
        if not (DOCS / relative).is_file() and f"--json docs/{relative}" not in text:
            missing.append(reference)
    assert not missing, f"cited, absent, and no command that writes them: {sorted(missing)}"


def test_every_benchmark_block_is_what_its_json_renders() -> None:
    """No figure typed by hand: each block between a benchmark's markers is its JSON as
    `python benchmarks/figures.py` renders it (or the line naming the command, without)."""
    figures = figures_module()
    stale = []
    for name in figures.BENCHMARKS:
        held = figures.current_block(PERFORMANCE, name)
        assert held is not None, f"docs/performance.md has no {name} block"
        if held != figures.block(name):
            stale.append(name)
    assert not stale, f"blocks differ from their JSON: {stale}; run python benchmarks/figures.py"


@pytest.mark.parametrize("name", ["performance.md", "design.md"])
def test_the_files_a_document_names_exist(name: str) -> None:
    text = (DOCS / name).read_text(encoding="utf-8")
    named = set(re.findall(r"\b(?:tuner|trainables|benchmarks|tests)/[\w/]+\.py\b", text))
    absent = sorted(path for path in named if not (REPO / path).is_file())
    assert not absent, f"docs/{name} names files that do not exist: {absent}"


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the document's headings."""
    headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.M)
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings
    }


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_links_to_a_section_find_it(path: Path) -> None:
    links = re.findall(r"\]\(([\w./-]*\.md)?#([\w-]+)\)", path.read_text(encoding="utf-8"))
    broken = [
        f"{target or path.name}#{anchor}"
        for target, anchor in links
        if anchor not in anchors(path.parent / target if target else path)
    ]
    assert not broken, f"{path.name} links to sections that do not exist: {broken}"
