"""Reading a data section's sources into tables as they are: CSV, TSV, JSON Lines, JSON,
Parquet, a folder per label, CoNLL files, or a hub dataset through ``datasets``. Labelling and
splitting them is `trainables.data`'s job.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd

from trainables.errors import FieldError
from trainables.locations import resolve
from trainables.sections import DataSpec

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


def read_local(data: DataSpec) -> dict[str, pd.DataFrame]:
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


def read_hub(data: DataSpec) -> dict[str, pd.DataFrame]:
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
