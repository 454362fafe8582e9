"""Labelled text splits from local files, a folder per label, CoNLL files, or a hub dataset.

Every source ends as the same shape: a train, a validation and (optionally) a test table with
the columns ``text``, optionally ``text_pair``, and an integer ``label``, plus the label names in
id order. For token classification, ``text`` holds each sentence's words and ``label`` a list of
tag ids, one per word. Splits the data lacks are carved out of the training rows, seeded (and
stratified by label for sequence classification).

The files and the hub are read by `trainables.readers`; the checks that keep bad rows (null
labels, empty texts, test rows that are training rows) from training are
`trainables.data_checks`.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from trainables.data_checks import (
    DataWarning,
    check_answers,
    check_cells,
    check_labelled,
    check_messages,
    check_overlap,
    check_prompts,
    check_tagged,
    label_names_from,
)
from trainables.errors import FieldError
from trainables.readers import read_hub, read_local
from trainables.sections import DataSpec, SplitSpec
from trainables.tasks import task_named


@dataclass(frozen=True)
class LabelledSplits:
    """Train, validation and optional test rows, labels as ids into ``label_names``."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame | None
    label_names: tuple[str, ...]
    warnings: list[DataWarning] = field(default_factory=list)
    """(field, why) for data that loads but that a person may not mean: texts that are both
    training and evaluation rows, labels written both as numbers and as text."""

    def sizes(self) -> dict[str, int]:
        sizes = {"train": len(self.train), "validation": len(self.validation)}
        if self.test is not None:
            sizes["test"] = len(self.test)
        return sizes


def load_splits(data: DataSpec, task: str = "sequence_classification") -> LabelledSplits:
    """Read, label and split the data a sweep file describes, for ``task``.

    Raises:
        FieldError: a file or column is missing, a file cannot be parsed or holds no rows,
            cells are null, empty or of the wrong type (`trainables.data_checks`), a
            validation or test file is the training data again, or the labels cannot train a
            classifier (one class only, or a label outside ``data.labels``).
    """
    raw = read_hub(data) if data.hub is not None else read_local(data)
    warnings: list[DataWarning] = [
        w for frame in raw.values() for w in frame.attrs.get("warnings", [])
    ]
    labels = task_named(task).labels
    if labels in _TARGETS_IN_ROWS:  # no label names: the rows carry their own targets
        tables = {name: _TARGETS_IN_ROWS[labels](frame, data, name) for name, frame in raw.items()}
        warnings += check_overlap(tables, data)
        label_names: tuple[str, ...] = ()
    else:
        per_word = labels == "per_word"
        tables = {name: _normalise(frame, data, name, per_word) for name, frame in raw.items()}
        warnings += check_overlap(tables, data)
        label_names, tables, label_warnings = _encode_labels(tables, data, raw, per_word)
        warnings += label_warnings
    group = data.split.group_column
    if group is not None:  # carried beside each table's rows until the splits are carved
        _require_columns(raw["train"], data.split, "train", ["group_column"], "data.split")
        tables["train"] = tables["train"].assign(group=raw["train"][group].astype(str).values)
    tables = _carve_missing_splits(tables, data)
    tables = {name: table.drop(columns="group", errors="ignore") for name, table in tables.items()}
    limits = {
        "train": data.max_train_rows,
        "validation": data.max_validation_rows,
        "test": data.max_test_rows,
    }
    for name, limit in limits.items():
        if name in tables and limit is not None:
            tables[name] = _stratified_sample(tables[name], limit, data.split.seed)
    return LabelledSplits(
        train=tables["train"],
        validation=tables["validation"],
        test=tables.get("test"),
        label_names=label_names,
        warnings=warnings,
    )


def _normalise(frame: pd.DataFrame, data: DataSpec, split: str, per_word: bool) -> pd.DataFrame:
    """Keep the text and label columns under their canonical names, each cell checked."""
    columns = {data.text_column: "text", data.label_column: "label"}
    if data.text_pair_column:
        columns[data.text_pair_column] = "text_pair"
    roles = ["text_column", *(["text_pair_column"] if data.text_pair_column else [])]
    _require_columns(frame, data, split, [*roles, "label_column"])
    out = frame[list(columns)].rename(columns=columns).reset_index(drop=True)
    if per_word:
        return _words_and_tags(out, data, split)
    check_labelled(out, data, split)
    for column in ("text", "text_pair"):
        if column in out:
            out[column] = out[column].astype(str)
    return out


def _texts(frame: pd.DataFrame, data: DataSpec, split: str) -> pd.DataFrame:
    """For language modelling: the text column, and the responses when there are some; or
    each row's conversation."""
    if data.messages_column:
        _require_columns(frame, data, split, ["messages_column"])
        return pd.DataFrame({"messages": check_messages(frame, data, split)})
    roles = {"text": "text_column", "response": "response_column"}
    if not data.response_column:
        del roles["response"]
    _require_columns(frame, data, split, roles.values())
    check_prompts(frame, data, split)
    return pd.DataFrame(
        {name: frame[getattr(data, role)].astype(str).tolist() for name, role in roles.items()}
    )


def _questions(frame: pd.DataFrame, data: DataSpec, split: str) -> pd.DataFrame:
    """For question answering: each question (``text``) with its context (``text_pair``), its
    answers' texts and start characters, and an id that tells its windows apart from other
    questions' when they are scored."""
    roles = {"text": "question_column", "text_pair": "context_column", "answers": "answers_column"}
    _require_columns(frame, data, split, roles.values())
    table = pd.DataFrame({name: frame[getattr(data, role)] for name, role in roles.items()})
    table = table.reset_index(drop=True)
    for name, noun in (("text", "question"), ("text_pair", "context")):
        role = roles[name]
        check_cells(table[name], data, split, getattr(data, role), role, noun=noun)
        table[name] = table[name].astype(str)
    answers, starts = check_answers(table, data, split)
    return pd.DataFrame(
        {
            "id": [f"{split}-{row}" for row in range(len(table))],
            "text": table["text"],
            "text_pair": table["text_pair"],
            "answers": answers,
            "answer_start": starts,
        }
    )


def _pairs(frame: pd.DataFrame, data: DataSpec, split: str) -> pd.DataFrame:
    """For summarization and translation: each source (``text``) and its target."""
    roles = {"text": "text_column", "target": "target_column"}
    _require_columns(frame, data, split, roles.values())
    for name, role in roles.items():
        noun = "source text" if name == "text" else "target text"
        column = getattr(data, role)
        check_cells(frame[column], data, split, column, role, noun=noun)
    return pd.DataFrame(
        {name: frame[getattr(data, role)].astype(str).tolist() for name, role in roles.items()}
    )


_TARGETS_IN_ROWS = {"none": _texts, "span": _questions, "target": _pairs}
"""The tables of tasks without label names, by how the task labels its rows."""


def _require_columns(
    frame: pd.DataFrame,
    data: DataSpec | SplitSpec,
    split: str,
    roles: Iterable[str],
    section: str = "data",
) -> None:
    """Raises FieldError on ``{section}.{role}`` where the file has no such column."""
    for role in roles:
        column = getattr(data, role)
        if column not in frame.columns:
            found = ", ".join(map(str, frame.columns))
            raise FieldError(
                f"{section}.{role}",
                f"no column {column!r} in the {split} data; its columns are: {found}",
            )


def _words_and_tags(table: pd.DataFrame, data: DataSpec, split: str) -> pd.DataFrame:
    """Each row's words as a list of strings (a string is split on spaces), and as many tags."""
    texts, labels = check_tagged(table, data, split)
    words, tags = [], []
    for row, (text, row_tags) in enumerate(zip(texts, labels, strict=True)):
        row_words = [str(w) for w in text]
        if len(row_words) != len(row_tags):
            raise FieldError(
                "data.label_column",
                f"row {row} of the {split} data has {len(row_words)} words but "
                f"{len(row_tags)} tags; token classification needs one tag per word",
            )
        words.append(row_words)
        tags.append(row_tags)
    return pd.DataFrame({"text": words, "label": tags})


def _encode_labels(
    tables: dict[str, pd.DataFrame],
    data: DataSpec,
    raw: dict[str, pd.DataFrame],
    per_word: bool,
) -> tuple[tuple[str, ...], dict[str, pd.DataFrame], list[DataWarning]]:
    names = data.labels or raw["train"].attrs.get("label_names")
    # With label names given, integer labels may be ids into them (0 -> the first name).
    ids_allowed = names is not None
    warnings: list[DataWarning] = []
    if names is None:
        train_labels = tables["train"]["label"]
        found = [tag for tags in train_labels for tag in tags] if per_word else list(train_labels)
        names, warnings = label_names_from(found, data)
    to_id = {name: index for name, index in zip(names, range(len(names)), strict=True)}

    def encode(value: Any, split: str) -> int:
        if str(value) in to_id:
            return to_id[str(value)]
        if ids_allowed and isinstance(value, numbers.Integral) and 0 <= int(value) < len(names):
            return int(value)
        known = ", ".join(names)
        near = (
            f" (it differs from {str(value).strip()!r} only by its spaces)"
            if str(value).strip() in to_id
            else ""
        )
        raise FieldError(
            "data.labels" if data.labels else "data.label_column",
            f"label {value!r} in the {split} data is not among the known labels ({known})"
            f"{near}; list every label in data.labels or fix the data",
        )

    encoded = {}
    for split, table in tables.items():
        table = table.copy()
        if per_word:
            table["label"] = [[encode(v, split) for v in tags] for tags in table["label"]]
        else:
            table["label"] = [encode(v, split) for v in table["label"]]
        encoded[split] = table
    train_labels = encoded["train"]["label"]
    present = {t for tags in train_labels for t in tags} if per_word else set(train_labels)
    if len(present) < 2:
        only = names[next(iter(present))] if present else "none"
        raise FieldError(
            "data.label_column",
            f"the training data has a single class ({only!r}); a classifier needs at least "
            "two: check data.label_column and the data",
        )
    return tuple(names), encoded, warnings


def _carve_missing_splits(
    tables: dict[str, pd.DataFrame], data: DataSpec
) -> dict[str, pd.DataFrame]:
    """Split validation (and test, unless its fraction is 0) off the training rows."""
    train = tables["train"]
    total = len(train)
    seed = data.split.seed
    if "test" not in tables and data.split.test > 0:
        train, tables["test"] = _split(train, round(total * data.split.test), seed, "test")
    if "validation" not in tables:
        train, tables["validation"] = _split(
            train, round(total * data.split.validation), seed, "validation"
        )
    tables["train"] = train
    return tables


def _split(
    frame: pd.DataFrame, size: int, seed: int, name: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    if size < 1 or size >= len(frame):
        raise FieldError(
            f"data.split.{name}",
            f"{len(frame)} training rows are too few to split off a {name} split; "
            f"give data.{name} or change the fraction",
        )
    return _take(frame, size, seed)


def _stratified_sample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    return frame if size >= len(frame) else _take(frame, size, seed)[1]


def _take(frame: pd.DataFrame, size: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the rest, ``size`` rows): whole groups where the rows have them (about ``size`` rows,
    groups drawn in a seeded order until that many are taken), else stratified by label
    where every class allows it, seeded."""
    if "group" in frame:
        return _take_groups(frame, size, seed)
    from sklearn.model_selection import train_test_split  # the driver's only: trials skip it

    kept, taken = train_test_split(
        frame, test_size=size, random_state=seed, stratify=_strata(frame, size)
    )
    return kept.reset_index(drop=True), taken.reset_index(drop=True)


def _take_groups(frame: pd.DataFrame, size: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    counts = frame["group"].value_counts(sort=False)
    order = counts.index.to_numpy()[np.random.default_rng(seed).permutation(len(counts))]
    taken_groups = order[: int(np.searchsorted(counts[order].cumsum().to_numpy(), size)) + 1]
    if len(taken_groups) == len(counts):
        raise FieldError(
            "data.split.group_column",
            f"the training rows form {len(counts)} group(s), too few to carve a split of "
            f"about {size} rows from whole groups; give the split's own file",
        )
    taken = frame["group"].isin(set(taken_groups))
    return frame[~taken].reset_index(drop=True), frame[taken].reset_index(drop=True)


def _strata(frame: pd.DataFrame, size: int) -> pd.Series | None:
    """Labels to stratify on, or None where some class is too small to stratify."""
    if "label" not in frame or (len(frame) and isinstance(frame["label"].iloc[0], list)):
        return None  # text to model, or a tag per word: rows have no one class to stratify on
    counts = frame["label"].value_counts()
    classes = len(counts)
    if counts.min() < 2 or size < classes or len(frame) - size < classes:
        return None
    return frame["label"]
