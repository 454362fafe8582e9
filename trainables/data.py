"""Labelled text splits from local files, a folder per label, CoNLL files, or a hub dataset.

Every source ends as the same shape: a train, a validation and (optionally) a test table with
the columns ``text``, optionally ``text_pair``, and an integer ``label``, plus the label names in
id order. For token classification, ``text`` holds each sentence's words and ``label`` a list of
tag ids, one per word. Splits the data lacks are carved out of the training rows, seeded (and
stratified by label for sequence classification).
"""

from __future__ import annotations

import csv
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from trainables.errors import FieldError
from trainables.locations import resolve
from trainables.sections import DataSpec
from trainables.tasks import task_named

SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".conll": "conll",
}


@dataclass(frozen=True)
class LabelledSplits:
    """Train, validation and optional test rows, labels as ids into ``label_names``."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame | None
    label_names: tuple[str, ...]

    def sizes(self) -> dict[str, int]:
        sizes = {"train": len(self.train), "validation": len(self.validation)}
        if self.test is not None:
            sizes["test"] = len(self.test)
        return sizes


def load_splits(data: DataSpec, task: str = "sequence_classification") -> LabelledSplits:
    """Read, label and split the data a sweep file describes, for ``task``.

    Raises:
        FieldError: a file or column is missing, a file cannot be parsed, or the labels cannot
            train a classifier (one class only, or a label outside ``data.labels``).
    """
    raw = _read_hub(data) if data.hub is not None else _read_local(data)
    labels = task_named(task).labels
    if labels == "none":  # text to model: no labels
        tables = {name: _texts(frame, data, name) for name, frame in raw.items()}
        label_names: tuple[str, ...] = ()
    else:
        per_word = labels == "per_word"
        tables = {name: _normalise(frame, data, name, per_word) for name, frame in raw.items()}
        label_names, tables = _encode_labels(tables, data, raw, per_word)
    tables = _carve_missing_splits(tables, data)
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
    )


def _read_local(data: DataSpec) -> dict[str, pd.DataFrame]:
    files = {"train": data.train, "validation": data.validation, "test": data.test}
    return {name: _read_file(data, name, ref) for name, ref in files.items() if ref is not None}


def _read_file(data: DataSpec, split: str, reference: str) -> pd.DataFrame:
    field = f"data.{split}"
    try:
        path = resolve(reference)
    except LookupError as error:
        raise FieldError(field, str(error)) from None
    if not path.exists():
        raise FieldError(
            field, f"no such file or folder {str(path)!r} (relative paths start at {Path.cwd()})"
        )
    fmt = data.format or ("folder" if path.is_dir() else SUFFIX_FORMATS.get(path.suffix.lower()))
    if fmt is None:
        raise FieldError(
            "data.format",
            f"cannot tell the format of {path.name!r} from its suffix; "
            f"set data.format to one of {', '.join(_READERS)}",
        )
    try:
        return _READERS[fmt](path, data)
    except FieldError:
        raise
    except (OSError, ValueError, pd.errors.ParserError) as error:
        message = " ".join(str(error).split())
        raise FieldError(field, f"cannot read {str(path)!r} as {fmt}: {message}") from None


def _read_delimited(path: Path, data: DataSpec, separator: str) -> pd.DataFrame:
    names = data.column_names
    return pd.read_csv(
        path,
        sep=separator,
        header=None if names else 0,
        names=names,
        quoting=csv.QUOTE_NONE if separator == "\t" else csv.QUOTE_MINIMAL,
        keep_default_na=False,
        encoding="utf-8",
    )


def _read_folder(path: Path, data: DataSpec) -> pd.DataFrame:
    """One subfolder per label, one text file per example (the layout of many corpora)."""
    rows = [
        {
            data.text_column: file.read_text(encoding="utf-8", errors="replace").strip(),
            data.label_column: folder.name,
        }
        for folder in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        for file in sorted(
            f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".")
        )
    ]
    if not rows:
        raise ValueError("expected one subfolder per label holding one text file per example")
    return pd.DataFrame(rows)


def _read_conll(path: Path, data: DataSpec) -> pd.DataFrame:
    """CoNLL columns: a word per line with its tag in the last column, a blank line between
    sentences; ``-DOCSTART-`` lines are skipped."""
    sentences: list[tuple[list[str], list[str]]] = []
    words: list[str] = []
    tags: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if words:
                sentences.append((words, tags))
            words, tags = [], []
            continue
        if len(fields) < 2:
            raise ValueError(f"line {number} has a word but no tag: {line!r}")
        words.append(fields[0])
        tags.append(fields[-1])
    if words:
        sentences.append((words, tags))
    if not sentences:
        raise ValueError("no sentences: expected a word and its tag per line")
    return pd.DataFrame(
        {data.text_column: [w for w, _ in sentences], data.label_column: [t for _, t in sentences]}
    )


_READERS: dict[str, Any] = {
    "csv": lambda path, data: _read_delimited(path, data, ","),
    "tsv": lambda path, data: _read_delimited(path, data, "\t"),
    "jsonl": lambda path, data: pd.read_json(path, lines=True),
    "json": lambda path, data: pd.read_json(path),
    "parquet": lambda path, data: pd.read_parquet(path),
    "folder": _read_folder,
    "conll": _read_conll,
}


def _read_hub(data: DataSpec) -> dict[str, pd.DataFrame]:
    import datasets

    hub = data.hub
    assert hub is not None
    try:
        loaded = datasets.load_dataset(hub.path, hub.name, revision=hub.revision)
    except Exception as error:  # the hub raises many kinds: offline, missing, gated
        message = " ".join(str(error).split())[:300]
        raise FieldError(
            "data.hub.path",
            f"cannot load {hub.path!r} from the hub ({message}); check the name and the "
            "connection, or point data.train at local files",
        ) from None
    wanted = {"train": hub.train_split, "validation": hub.validation_split, "test": hub.test_split}
    frames = {}
    for split, hub_split in wanted.items():
        if hub_split is None:
            continue
        if hub_split not in loaded:
            raise FieldError(
                f"data.hub.{split}_split",
                f"{hub.path!r} has no split {hub_split!r}; it has {', '.join(loaded)}",
            )
        frame = loaded[hub_split].to_pandas()
        feature = loaded[hub_split].features.get(data.label_column)
        feature = getattr(feature, "feature", feature)  # a tag per word: a list of labels
        if data.labels is None and hasattr(feature, "names"):
            frame.attrs["label_names"] = list(feature.names)
        frames[split] = frame
    return frames


def _normalise(frame: pd.DataFrame, data: DataSpec, split: str, per_word: bool) -> pd.DataFrame:
    """Keep the text and label columns under their canonical names."""
    columns = {data.text_column: "text", data.label_column: "label"}
    if data.text_pair_column:
        columns[data.text_pair_column] = "text_pair"
    for column, role in [
        (data.text_column, "text_column"),
        (data.text_pair_column, "text_pair_column"),
        (data.label_column, "label_column"),
    ]:
        if column is not None and column not in frame.columns:
            found = ", ".join(map(str, frame.columns))
            raise FieldError(
                f"data.{role}",
                f"no column {column!r} in the {split} data; its columns are: {found}",
            )
    out = frame[list(columns)].rename(columns=columns).reset_index(drop=True)
    if per_word:
        return _words_and_tags(out, split)
    for column in ("text", "text_pair"):
        if column in out:
            out[column] = out[column].astype(str)
    return out


def _texts(frame: pd.DataFrame, data: DataSpec, split: str) -> pd.DataFrame:
    """For language modelling: the text column, and the responses when there are some."""
    columns = {data.text_column: ("text", "text_column")}
    if data.response_column:
        columns[data.response_column] = ("response", "response_column")
    for column, (_, role) in columns.items():
        if column not in frame.columns:
            found = ", ".join(map(str, frame.columns))
            raise FieldError(
                f"data.{role}",
                f"no column {column!r} in the {split} data; its columns are: {found}",
            )
    return pd.DataFrame(
        {name: frame[column].astype(str).tolist() for column, (name, _) in columns.items()}
    )


def _words_and_tags(table: pd.DataFrame, split: str) -> pd.DataFrame:
    """Each row's words as a list of strings (a string is split on spaces), and as many tags."""
    words, tags = [], []
    for row, (text, labels) in enumerate(zip(table["text"], table["label"], strict=True)):
        row_words = text.split() if isinstance(text, str) else [str(w) for w in text]
        row_tags = labels.split() if isinstance(labels, str) else list(labels)
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
) -> tuple[tuple[str, ...], dict[str, pd.DataFrame]]:
    names = data.labels or raw["train"].attrs.get("label_names")
    # With label names given, integer labels may be ids into them (0 -> the first name).
    ids_allowed = names is not None
    if names is None:
        found = (
            {tag for tags in tables["train"]["label"] for tag in tags}
            if per_word
            else set(tables["train"]["label"])
        )
        names = [str(v) for v in sorted(found, key=lambda v: (str(type(v)), v))]
    to_id = {name: index for name, index in zip(names, range(len(names)), strict=True)}

    def encode(value: Any, split: str) -> int:
        if str(value) in to_id:
            return to_id[str(value)]
        if ids_allowed and isinstance(value, numbers.Integral) and 0 <= int(value) < len(names):
            return int(value)
        known = ", ".join(names)
        raise FieldError(
            "data.labels" if data.labels else "data.label_column",
            f"label {value!r} in the {split} data is not among the known labels ({known}); "
            "list every label in data.labels or fix the data",
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
    return tuple(names), encoded


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
    """(the rest, ``size`` rows): stratified by label where every class allows it, seeded."""
    from sklearn.model_selection import train_test_split  # the driver's only: trials skip it

    kept, taken = train_test_split(
        frame, test_size=size, random_state=seed, stratify=_strata(frame, size)
    )
    return kept.reset_index(drop=True), taken.reset_index(drop=True)


def _strata(frame: pd.DataFrame, size: int) -> pd.Series | None:
    """Labels to stratify on, or None where some class is too small to stratify."""
    if "label" not in frame or (len(frame) and isinstance(frame["label"].iloc[0], list)):
        return None  # text to model, or a tag per word: rows have no one class to stratify on
    counts = frame["label"].value_counts()
    classes = len(counts)
    if counts.min() < 2 or size < classes or len(frame) - size < classes:
        return None
    return frame["label"]
