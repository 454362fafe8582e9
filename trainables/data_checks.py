"""Checks that keep bad data from turning silently into garbage, run as `trainables.data` reads
it (before any trial): cells that are null, empty or of the wrong type, labels that differ only
by their spaces or their type, and evaluation rows that are training rows again.

Each check raises `FieldError` naming the split's field (``data.train``) or the column's
(``data.label_column``), with counts and the first rows (numbered from 0, as pandas and the
other errors number them), or returns warnings as ``(field, why)`` pairs where a person
could mean the data as it is.
"""

from __future__ import annotations

import numbers
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from trainables.errors import FieldError
from trainables.sections import DataSpec

DataWarning = tuple[str, str]
"""(field, why): one line each, for the person to read before the sweep runs."""

SHOWN_ROWS = 5  # the first rows an error names


def split_field(data: DataSpec, split: str) -> str:
    """The field that names a split's source: ``data.train``, or ``data.hub.train_split``."""
    return f"data.hub.{split}_split" if data.hub is not None else f"data.{split}"


def rows_text(rows: Sequence[int]) -> str:
    """``row 4``, ``rows 4, 9 and 12``, or the first few of many; numbered from 0."""
    shown = [str(row) for row in rows[:SHOWN_ROWS]]
    if len(rows) == 1:
        return f"row {shown[0]} (0-based)"
    if len(rows) <= SHOWN_ROWS:
        return f"rows {', '.join(shown[:-1])} and {shown[-1]} (0-based)"
    return f"rows {', '.join(shown)}, ... (0-based, the first {SHOWN_ROWS})"


def rows_of(count: int, total: int, split: str) -> str:
    """``3 of the 20 rows of the train data have`` (``has`` for one)."""
    return f"{count} of the {total} rows of the {split} data {'has' if count == 1 else 'have'}"


def is_missing(value: Any) -> bool:
    """A null cell: JSON null, a missing key, NaN."""
    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


def is_blank(value: Any) -> bool:
    return isinstance(value, str) and not value.strip()


def _is_sequence(value: Any) -> bool:
    return isinstance(value, list | tuple | np.ndarray)


def _type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if _is_sequence(value):
        return "a list"
    return f"a value of type {type(value).__name__}"


def check_cells(
    values: Iterable[Any],
    data: DataSpec,
    split: str,
    column: str,
    role: str,
    *,
    noun: str = "text",
    fix: str = "an empty text teaches nothing: drop those rows",
    sequences: bool = False,
    blank_allowed: bool = False,
) -> None:
    """Every cell of ``column`` (the setting ``data.{role}``) holds one ``noun``: a string or
    a number (read as text), or a list of them where ``sequences``; none is null, and none
    empty unless ``blank_allowed``.

    Raises:
        FieldError: on ``data.{role}`` for cells of the wrong type or a column with nothing
            in it, on the split's field for some empty cells.
    """
    cells = list(values)
    wrong: dict[str, list[int]] = defaultdict(list)
    empty: list[int] = []
    for row, value in enumerate(cells):
        if _is_sequence(value) and sequences:
            if len(value) == 0:
                empty.append(row)
        elif isinstance(value, bytes | dict) or not pd.api.types.is_scalar(value):
            wrong[_type_name(value)].append(row)
        elif is_missing(value) or (is_blank(value) and not blank_allowed):
            empty.append(row)
    if wrong:
        kind, rows = next(iter(wrong.items()))  # the first kind found
        raise FieldError(
            f"data.{role}",
            f"{rows_of(len(rows), len(cells), split)} {kind} in column {column!r} where a "
            f"{noun} belongs, at {rows_text(rows)}; "
            + ("give a string or a list of strings" if sequences else "give a string or number"),
        )
    if cells and len(empty) == len(cells):
        raise FieldError(
            f"data.{role}",
            f"every one of the {len(cells)} rows of the {split} data has an empty or null "
            f"{column!r}; is {column!r} the right column? Set data.{role}",
        )
    if empty:
        raise FieldError(
            split_field(data, split),
            f"{rows_of(len(empty), len(cells), split)} no {noun} "
            f"(empty, blank, null or missing {column!r}): {rows_text(empty)}; {fix}",
        )


def check_items(
    lists: Sequence[Sequence[Any]], data: DataSpec, split: str, noun: str, column: str
) -> None:
    """Every item of each row's list (its words, or its tags) is a non-empty string or a
    number.

    Raises:
        FieldError: on the split's field, naming the rows with an empty, null or nested item.
    """
    rows = [
        row
        for row, items in enumerate(lists)
        if any(
            is_missing(item)
            or is_blank(item)
            or not pd.api.types.is_scalar(item)
            or isinstance(item, bytes)
            for item in items
        )
    ]
    if rows:
        raise FieldError(
            split_field(data, split),
            f"{rows_of(len(rows), len(lists), split)} an empty, null or nested {noun} in "
            f"column {column!r}, at {rows_text(rows)}; each {noun} must be a "
            f"non-empty string: fix or drop those rows",
        )


def check_labelled(table: pd.DataFrame, data: DataSpec, split: str) -> None:
    """A label per text: the ``text``, ``text_pair`` and ``label`` cells (canonical names)."""
    check_cells(table["text"], data, split, data.text_column, "text_column")
    if data.text_pair_column:
        check_cells(table["text_pair"], data, split, data.text_pair_column, "text_pair_column")
    fix = "give each row its label, or drop those rows"
    check_cells(
        table["label"], data, split, data.label_column, "label_column", noun="label", fix=fix
    )


def check_prompts(frame: pd.DataFrame, data: DataSpec, split: str) -> None:
    """Texts to model, or prompts and their responses (the columns as the file names them);
    with responses, an empty prompt still trains its response."""
    check_cells(
        frame[data.text_column],
        data,
        split,
        data.text_column,
        "text_column",
        blank_allowed=data.response_column is not None,
    )
    if data.response_column:
        fix = "give each prompt its response, or drop those rows"
        column = data.response_column
        check_cells(frame[column], data, split, column, "response_column", noun="response", fix=fix)


def check_answers(
    questions: pd.DataFrame, data: DataSpec, split: str
) -> tuple[list[list[str]], list[list[int]]]:
    """Each question's answers: a mapping of ``text`` (a list of answers) and ``answer_start``
    (where each starts in the context, in characters), every answer found in its context.

    Returns:
        Each row's answer texts and their start characters.

    Raises:
        FieldError: on ``data.answers_column`` naming the row, where a row has no answer, the
            mapping's lists differ in length or type, an answer runs past the end of its
            context, or the context does not read the answer at its start.
    """
    field = "data.answers_column"
    column = data.answers_column
    texts: list[list[str]] = []
    starts: list[list[int]] = []
    layout = f"give {{text: [...], answer_start: [...]}} in column {column!r}"
    for row, (answers, context) in enumerate(
        zip(questions["answers"], questions["text_pair"], strict=True)
    ):
        where = f"row {row} (0-based) of the {split} data"
        if not isinstance(answers, dict) or not {"text", "answer_start"} <= set(answers):
            raise FieldError(field, f"{where} has {_type_name(answers)} for its answers; {layout}")
        given, at = answers["text"], answers["answer_start"]
        if not _is_sequence(given) or not _is_sequence(at) or len(given) != len(at):
            raise FieldError(
                field, f"{where}: answers' text and answer_start are not lists of one length"
            )
        if len(given) == 0:
            raise FieldError(
                field,
                f"{where} has no answer; extractive question answering trains on answered "
                "questions: drop the row or give its answer",
            )
        for text, start in zip(given, at, strict=True):
            if not isinstance(text, str) or not text or not isinstance(start, numbers.Integral):
                raise FieldError(field, f"{where} has an answer {text!r} at {start!r}; {layout}")
            start = int(start)
            if start < 0 or start + len(text) > len(context):
                raise FieldError(
                    field,
                    f"{where}: the answer {text!r} at character {start} runs past its context "
                    f"({len(context)} characters); fix answer_start, or the answer",
                )
            found = context[start : start + len(text)]
            if found != text:
                raise FieldError(
                    field,
                    f"{where}: the answer {text!r} is not in its context at character {start} "
                    f"(the context reads {found!r} there); fix answer_start, or the answer",
                )
        texts.append([str(text) for text in given])
        starts.append([int(start) for start in at])
    return texts, starts


def check_tagged(
    table: pd.DataFrame, data: DataSpec, split: str
) -> tuple[list[list[Any]], list[list[Any]]]:
    """A tag per word: each row's words and tags (``text`` and ``label``), as lists (a string
    split on spaces), every word and tag checked."""
    fix = "a row without words trains nothing: drop those rows"
    for canonical, column, role, noun in (
        ("text", data.text_column, "text_column", "sentence"),
        ("label", data.label_column, "label_column", "tag list"),
    ):
        check_cells(table[canonical], data, split, column, role, noun=noun, fix=fix, sequences=True)
    words = [cell.split() if isinstance(cell, str) else list(cell) for cell in table["text"]]
    tags = [cell.split() if isinstance(cell, str) else list(cell) for cell in table["label"]]
    check_items(words, data, split, "word", data.text_column)
    check_items(tags, data, split, "tag", data.label_column)
    return words, tags


def label_names_from(values: Iterable[Any], data: DataSpec) -> tuple[list[str], list[DataWarning]]:
    """The label names the training rows hold, sorted (numbers as numbers), each name once,
    and a warning where a name is written both as a number and as text.

    Raises:
        FieldError: two labels differ only by the spaces around them.
    """
    counts = Counter(values)
    ordered = sorted(counts, key=lambda v: (str(type(v)), v))
    names = list(dict.fromkeys(str(value) for value in ordered))
    warnings: list[DataWarning] = []
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for value, count in counts.items():
        number = isinstance(value, numbers.Number) and not isinstance(value, bool)
        kinds[str(value)]["as numbers" if number else "as text"] += count
    for name, kind in kinds.items():
        if len(kind) > 1:
            written = " and ".join(f"{count} rows {how}" for how, count in sorted(kind.items()))
            warnings.append(
                (
                    split_field(data, "train"),
                    f"label {name!r} is written both ways ({written}); they are taken as one class",
                )
            )
    stripped: dict[str, list[str]] = defaultdict(list)
    for name in names:
        stripped[name.strip()].append(name)
    for variants in stripped.values():
        if len(variants) > 1:
            shown = " and ".join(f"{name!r} ({kinds[name].total()} rows)" for name in variants)
            raise FieldError(
                split_field(data, "train"),
                f"labels {shown} in the train data differ only by the spaces around them, so "
                "they would be different classes; remove the spaces from the labels, or list "
                "every label in data.labels if they are different classes",
            )
    return names, warnings


def _row_keys(table: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Each row's inputs (the text, with its pair or response, or the conversation), as a
    hashable key."""
    columns = [c for c in ("text", "text_pair", "response", "messages") if c in table]
    return [
        tuple(_hashable(cell) for cell in row)
        for row in table[columns].itertuples(index=False, name=None)
    ]


def _hashable(cell: Any) -> Any:
    if isinstance(cell, dict):
        return tuple(sorted((key, _hashable(value)) for key, value in cell.items()))
    if _is_sequence(cell):
        return tuple(_hashable(item) for item in cell)
    return cell


CHAT_ROLES = ("system", "user", "assistant", "tool")
"""The roles of a conversation's turns, as chat templates know them."""


def check_messages(frame: pd.DataFrame, data: DataSpec, split: str) -> list[list[dict[str, str]]]:
    """Each row a conversation: a list of turns, each a mapping of a known ``role`` to its
    ``content`` (a string), with at least one turn of the assistant (the turns the loss
    counts).

    Returns:
        Each row's turns, as ``{role, content}`` mappings.

    Raises:
        FieldError: on ``data.messages_column`` naming the row and what is wrong with it.
    """
    field = "data.messages_column"
    layout = "give a list of {role, content} turns"
    conversations = []
    for row, cell in enumerate(frame[str(data.messages_column)]):
        where = f"row {row} (0-based) of the {split} data"
        if not _is_sequence(cell) or len(cell) == 0:
            raise FieldError(field, f"{where} has {_type_name(cell)} for its messages; {layout}")
        turns = []
        for number, turn in enumerate(cell):
            if not isinstance(turn, dict) or not {"role", "content"} <= set(turn):
                raise FieldError(field, f"{where}: turn {number} is {_type_name(turn)}; {layout}")
            role, content = turn["role"], turn["content"]
            if role not in CHAT_ROLES:
                raise FieldError(
                    field,
                    f"{where}: turn {number} has the role {role!r}, which chat templates do "
                    f"not know; use one of {', '.join(CHAT_ROLES)}",
                )
            if not isinstance(content, str):
                raise FieldError(field, f"{where}: turn {number}'s content is not text")
            turns.append({"role": str(role), "content": content})
        if not any(turn["role"] == "assistant" for turn in turns):
            raise FieldError(
                field,
                f"{where} has no assistant turn, and the loss counts the assistant's turns "
                "only: drop the row or give it the answer",
            )
        conversations.append(turns)
    return conversations


def check_overlap(tables: dict[str, pd.DataFrame], data: DataSpec) -> list[DataWarning]:
    """Whether the validation and test rows are new to the training rows (by their texts).

    Returns:
        A warning for each split some of whose rows are training rows too.

    Raises:
        FieldError: on the split's field, where the split is the training rows again.
    """
    train_keys = _row_keys(tables["train"])
    train = set(train_keys)
    warnings: list[DataWarning] = []
    for split in ("validation", "test"):
        if split not in tables:
            continue
        keys = _row_keys(tables[split])
        field = split_field(data, split)
        if Counter(keys) == Counter(train_keys):
            raise FieldError(
                field,
                f"the {split} data is the training data again (the same {len(keys)} rows), so "
                "its scores would measure memory, not learning; give held-out rows, or leave "
                f"{field} out to have it split off the training rows",
            )
        seen = [row for row, key in enumerate(keys) if key in train]
        if seen:
            warnings.append(
                (
                    field,
                    f"{len(seen)} of the {len(keys)} {split} rows ({len(seen) / len(keys):.0%}) "
                    f"are training rows too (the same texts; {rows_text(seen)}), which "
                    "flatters their scores; drop them from one of the files",
                )
            )
    return warnings
