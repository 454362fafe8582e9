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
    """Each split's file as a table of one or more rows; ``attrs["warnings"]`` holds
    (field, why) pairs for what was read but may not be meant (files not in UTF-8)."""
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
    if fmt in TEXT_FORMATS and path.is_file():
        _check_no_nul(path, field)
    try:
        frame: pd.DataFrame = _READERS[fmt](path, data)
    except FieldError:
        raise
    except UnicodeDecodeError as error:
        raise FieldError(field, _not_utf8(path, error)) from None
    except (OSError, ValueError, pd.errors.ParserError) as error:
        message = " ".join(str(error).split())
        if isinstance(error, pd.errors.ParserError):
            message += (
                "; every row needs as many cells as the header, and a separator inside a "
                "text splits it (quote such texts in CSV)"
            )
        raise FieldError(field, f"cannot read {str(path)!r} as {fmt}: {message}") from None
    if len(frame) == 0:
        raise FieldError(
            field,
            f"{str(path)!r} holds no rows (a header alone, or an empty file); give a file "
            "with examples",
        )
    replaced: list[str] = frame.attrs.pop("not_utf8", [])
    frame.attrs["warnings"] = [(field, _replaced(path, replaced, len(frame)))] if replaced else []
    return frame


def _replaced(path: Path, files: list[str], total: int) -> str:
    """The warning for a folder's files that are not UTF-8 (read with U+FFFD for their
    undecodable bytes)."""
    shown = ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")
    verb = "is" if len(files) == 1 else "are"
    return (
        f"{len(files)} of the {total} files in {str(path)!r} {verb} not UTF-8 text ({shown}); "
        "the bytes UTF-8 cannot decode became U+FFFD: save them as UTF-8"
    )


# Formats that are text: a NUL byte in one is a binary or corrupt export, never a character
# of a sentence (UTF-8 reads it without complaint).
TEXT_FORMATS = frozenset({"csv", "tsv", "jsonl", "json", "conll"})


def _check_no_nul(path: Path, field: str) -> None:
    with path.open("rb") as file:
        if file.read(2) in (b"\xff\xfe", b"\xfe\xff"):
            return  # UTF-16, whose every other byte is NUL: told apart as not UTF-8
        file.seek(0)
        for number, line in enumerate(file, start=1):
            if b"\x00" in line:
                raise FieldError(
                    field,
                    f"{str(path)!r} line {number} holds NUL bytes: a binary or corrupt export, "
                    "not text; export the file again as UTF-8 text",
                )


def _not_utf8(path: Path, error: UnicodeDecodeError) -> str:
    """One line that names the file and its first line that is not UTF-8."""
    fix = "save it as UTF-8 (from Latin-1, say: iconv -f latin1 -t utf-8 OLD > NEW)"
    if path.is_file():
        for number, line in enumerate(path.read_bytes().split(b"\n"), start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as bad:
                return (
                    f"{str(path)!r} is not UTF-8 text: line {number} holds the byte "
                    f"0x{line[bad.start]:02x}, which UTF-8 cannot decode; {fix}"
                )
    return f"{str(path)!r} is not UTF-8 text ({error.reason}); {fix}"


def _read_delimited(path: Path, data: DataSpec, separator: str) -> pd.DataFrame:
    names = data.column_names
    # Texts stay as written ("007" is not the number 7); labels may be numbers (ids).
    texts = (
        data.text_column,
        data.text_pair_column,
        data.response_column,
        data.target_column,
        data.question_column,
        data.context_column,
    )
    return pd.read_csv(
        path,
        sep=separator,
        header=None if names else 0,
        names=names,
        quoting=csv.QUOTE_NONE if separator == "\t" else csv.QUOTE_MINIMAL,
        keep_default_na=False,
        dtype={column: str for column in texts if column},
        encoding="utf-8",
    )


def _read_folder(path: Path, data: DataSpec) -> pd.DataFrame:
    """One subfolder per label, one text file per example (the layout of many corpora); the
    files that are not UTF-8 are read with replacement characters and listed in
    ``attrs["not_utf8"]``."""
    rows = []
    not_utf8 = []
    for folder in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for file in sorted(
            f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".")
        ):
            content = file.read_bytes()
            try:
                text = content.decode("utf-8")
            except UnicodeDecodeError:
                text = content.decode("utf-8", errors="replace")
                not_utf8.append(f"{folder.name}/{file.name}")
            rows.append({data.text_column: text.strip(), data.label_column: folder.name})
    if not rows:
        raise ValueError("expected one subfolder per label holding one text file per example")
    frame = pd.DataFrame(rows)
    frame.attrs["not_utf8"] = not_utf8
    return frame


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
    # JSON's own types, not pandas' guesses: the text "12" stays a string, not the number 12.0.
    "jsonl": lambda path, data: pd.read_json(path, lines=True, dtype=False),
    "json": lambda path, data: pd.read_json(path, dtype=False),
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
        if len(frame) == 0:
            raise FieldError(
                f"data.hub.{split}_split",
                f"the split {hub_split!r} of {hub.path!r} holds no rows; name another split",
            )
        frame.attrs["warnings"] = []
        feature = loaded[hub_split].features.get(data.label_column)
        feature = getattr(feature, "feature", feature)  # a tag per word: a list of labels
        if data.labels is None and hasattr(feature, "names"):
            frame.attrs["label_names"] = list(feature.names)
        frames[split] = frame
    return frames
