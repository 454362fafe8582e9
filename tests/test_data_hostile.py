"""Hostile data: what would train on garbage without a word is refused before Ray starts.

Null or empty labels and texts, cells of the wrong type, files that are not UTF-8, ragged or
empty, labels that differ only by their spaces, evaluation rows that are training rows, and a
model folder without its tokenizer: each is one `FieldError` naming the field, with counts and
the first rows (0-based), or a warning in `LabelledSplits.warnings` where a person could mean
it. Every case writes real files into tmp_path; the tokenizers are real.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.test_bad_input import assert_located, validate
from trainables.data import LabelledSplits, load_splits
from trainables.errors import FieldError
from trainables.modeling import TOKENIZER_FILES, load_tokenizer
from trainables.sections import DataSpec, ModelSpec, SplitSpec

Rows = list[dict[str, Any]]


# ---------------------------------------------------------------------------------------------
# helpers


def labelled(count: int = 20, prefix: str = "row") -> Rows:
    """Rows with unique texts and two labels, alternating."""
    return [{"text": f"{prefix} {i}", "label": "ab"[i % 2]} for i in range(count)]


def write(rows: Rows, path: Path) -> Path:
    """Write ``rows`` in the format the suffix names; a missing key stays missing in JSONL."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif path.suffix == ".parquet":
        pd.DataFrame(rows).to_parquet(path, index=False)
    elif path.suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    elif path.suffix == ".tsv":
        pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    else:
        raise AssertionError(f"no writer for {path}")
    return path


def refused(data: DataSpec, task: str = "sequence_classification") -> FieldError:
    with pytest.raises(FieldError) as caught:
        load_splits(data, task)
    assert "\n" not in str(caught.value)  # one line
    return caught.value


def with_nulls(rows: Rows, column: str, at: list[int], how: str) -> Rows:
    """``rows`` with ``column`` null (``None``, which parquet stores as null or NaN) or its
    key removed at the rows ``at``."""
    out = [dict(row) for row in rows]
    for index in at:
        if how == "missing":
            del out[index][column]
        else:
            out[index][column] = None
    return out


# ---------------------------------------------------------------------------------------------
# 1-3. null and empty labels


@pytest.mark.parametrize(
    ("suffix", "how"),
    [
        (".jsonl", "null"),
        (".jsonl", "missing"),
        (".json", "null"),
        (".parquet", "null"),
    ],
)
def test_null_labels_are_refused_with_their_count_and_rows(
    tmp_path: Path, suffix: str, how: str
) -> None:
    rows = with_nulls(labelled(), "label", [3, 7, 12], how)
    path = write(rows, tmp_path / f"train{suffix}")

    error = refused(DataSpec(train=str(path)))

    assert error.field == "data.train"
    assert "3 of the 20 rows of the train data have no label" in error.message
    assert "rows 3, 7 and 12 (0-based)" in error.message
    assert "drop those rows" in error.message


def test_nan_labels_in_parquet_are_refused_not_a_class(tmp_path: Path) -> None:
    frame = pd.DataFrame(labelled())
    frame["label"] = [0.0, 1.0] * 10
    frame.loc[5, "label"] = np.nan
    path = tmp_path / "train.parquet"
    frame.to_parquet(path, index=False)

    error = refused(DataSpec(train=str(path)))

    assert error.field == "data.train"
    assert "1 of the 20 rows of the train data has no label" in error.message
    assert "row 5 (0-based)" in error.message


def test_a_null_label_in_the_validation_file_names_that_split(tmp_path: Path) -> None:
    train = write(labelled(), tmp_path / "train.jsonl")
    validation = write(with_nulls(labelled(6, "v"), "label", [2], "null"), tmp_path / "v.jsonl")

    error = refused(DataSpec(train=str(train), validation=str(validation)))

    assert error.field == "data.validation"
    assert "of the validation data has no label" in error.message


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_an_empty_label_cell_is_refused_not_a_class(tmp_path: Path, suffix: str) -> None:
    rows = labelled()
    rows[4]["label"] = ""
    rows[9]["label"] = "  "
    path = write(rows, tmp_path / f"train{suffix}")

    error = refused(DataSpec(train=str(path)))

    assert error.field == "data.train"
    assert "2 of the 20 rows" in error.message and "rows 4 and 9 (0-based)" in error.message


def test_a_label_column_with_nothing_in_it_names_the_column(tmp_path: Path) -> None:
    rows = [{"text": f"row {i}", "label": None, "category": "ab"[i % 2]} for i in range(10)]
    path = write(rows, tmp_path / "train.jsonl")

    error = refused(DataSpec(train=str(path)))

    assert error.field == "data.label_column"
    assert "every one of the 10 rows" in error.message and "right column" in error.message


# ---------------------------------------------------------------------------------------------
# 2, 4. null and empty texts


@pytest.mark.parametrize(
    ("suffix", "how"), [(".json", "null"), (".jsonl", "missing"), (".parquet", "null")]
)
def test_null_texts_are_refused_not_the_string_none(tmp_path: Path, suffix: str, how: str) -> None:
    path = write(with_nulls(labelled(), "text", [0, 11], how), tmp_path / f"train{suffix}")

    error = refused(DataSpec(train=str(path)))

    assert error.field == "data.train"
    assert "2 of the 20 rows of the train data have no text" in error.message
    assert "rows 0 and 11 (0-based)" in error.message


def test_empty_and_blank_texts_are_refused_with_the_first_rows(tmp_path: Path) -> None:
    rows = labelled(40)
    for index in (2, 5, 8, 13, 21, 34, 39):
        rows[index]["text"] = " \t " if index % 2 else ""
    path = write(rows, tmp_path / "train.jsonl")

    error = refused(DataSpec(train=str(path)))

    assert error.field == "data.train"
    assert "7 of the 40 rows of the train data have no text" in error.message
    assert "rows 2, 5, 8, 13, 21, ... (0-based, the first 5)" in error.message
    assert "drop those rows" in error.message


def test_a_split_whose_texts_are_all_empty_names_the_text_column(tmp_path: Path) -> None:
    rows = [{"text": " ", "label": "ab"[i % 2], "body": f"text {i}"} for i in range(12)]
    path = write(rows, tmp_path / "train.csv")

    error = refused(DataSpec(train=str(path)))

    assert error.field == "data.text_column"
    assert "every one of the 12 rows of the train data" in error.message


def test_an_empty_file_in_a_label_folder_is_an_empty_text(tmp_path: Path) -> None:
    for label in ("a", "b"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for index in range(5):
            (tmp_path / "data" / label / f"{index}.txt").write_text(f"{label} text {index}")
    (tmp_path / "data" / "b" / "9.txt").write_text("\n  \n")

    error = refused(DataSpec(train=str(tmp_path / "data")))

    assert error.field == "data.train" and "1 of the 11 rows" in error.message


def test_an_empty_text_pair_is_refused_on_the_split(tmp_path: Path) -> None:
    rows = [{**row, "second": f"pair {i}"} for i, row in enumerate(labelled())]
    rows[6]["second"] = None
    path = write(rows, tmp_path / "train.jsonl")

    error = refused(DataSpec(train=str(path), text_pair_column="second"))

    assert error.field == "data.train" and "'second'" in error.message
    assert "row 6 (0-based)" in error.message


def test_numbers_as_texts_stay_as_written(tmp_path: Path) -> None:
    """Texts that look like numbers are read as the text written: "007" is not 7.0."""
    rows = [{"text": f"00{i}", "label": "ab"[i % 2]} for i in range(10)]
    for suffix in (".jsonl", ".csv"):
        path = write(rows, tmp_path / f"train{suffix}")
        splits = load_splits(DataSpec(train=str(path), split=SplitSpec(validation=0.2, test=0)))
        everything = {*splits.train["text"], *splits.validation["text"]}
        assert everything == {row["text"] for row in rows}, suffix


def test_numbers_in_a_json_text_cell_are_texts(tmp_path: Path) -> None:
    rows = [{"text": i * 11, "label": "ab"[i % 2]} for i in range(10)]
    path = write(rows, tmp_path / "train.jsonl")

    splits = load_splits(DataSpec(train=str(path), split=SplitSpec(validation=0.2, test=0)))

    assert "11" in {*splits.train["text"], *splits.validation["text"]}


# ---------------------------------------------------------------------------------------------
# 5. evaluation rows that are training rows


@pytest.mark.parametrize("split", ["validation", "test"])
def test_an_evaluation_split_that_is_the_training_data_is_refused(
    tmp_path: Path, split: str
) -> None:
    train = write(labelled(), tmp_path / "train.csv")
    shuffled = write(list(reversed(labelled())), tmp_path / "again.jsonl")
    other = write(labelled(8, "held-out"), tmp_path / "other.csv")
    files = {"validation": str(other), "test": str(other), split: str(shuffled)}

    error = refused(DataSpec(train=str(train), **files))

    assert error.field == f"data.{split}"
    assert f"the {split} data is the training data again (the same 20 rows)" in error.message


def test_the_same_file_for_train_and_test_is_refused(tmp_path: Path) -> None:
    path = write(labelled(), tmp_path / "train.tsv")

    error = refused(DataSpec(train=str(path), test=str(path)))

    assert error.field == "data.test"


def test_evaluation_rows_that_are_also_training_rows_give_a_warning(tmp_path: Path) -> None:
    train = write(labelled(), tmp_path / "train.jsonl")
    validation = write(labelled(3) + labelled(7, "new"), tmp_path / "validation.jsonl")
    test = write(labelled(10, "unseen"), tmp_path / "test.jsonl")

    splits = load_splits(DataSpec(train=str(train), validation=str(validation), test=str(test)))

    ((field, why),) = splits.warnings
    assert field == "data.validation"
    assert why.startswith("3 of the 10 validation rows (30%) are training rows too")
    assert "rows 0, 1 and 2 (0-based)" in why


def test_distinct_splits_and_carved_splits_give_no_warning(tmp_path: Path) -> None:
    train = write(labelled(40), tmp_path / "train.jsonl")
    validation = write(labelled(10, "new"), tmp_path / "validation.jsonl")

    given = load_splits(DataSpec(train=str(train), validation=str(validation)))
    carved = load_splits(DataSpec(train=str(train)))

    assert given.warnings == [] and carved.warnings == []


# ---------------------------------------------------------------------------------------------
# 6. a model folder without its tokenizer


@pytest.fixture
def weights_only(tiny_model: Path, tmp_path: Path) -> Path:
    """The tiny model's folder with its configuration and weights, and no tokenizer."""
    folder = tmp_path / "weights-only"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model / name, folder / name)
    return folder


def test_a_model_folder_without_tokenizer_files_is_refused(weights_only: Path) -> None:
    with pytest.raises(FieldError) as caught:
        load_tokenizer(ModelSpec(name_or_path=str(weights_only)))

    error = caught.value
    assert error.field == "model.name_or_path"
    assert "has no tokenizer files" in error.message
    assert all(name in error.message for name in ("tokenizer.json", "vocab.txt"))
    assert "tokenizer.save_pretrained" in error.message


def test_a_tokenizer_of_a_handful_of_tokens_is_refused(weights_only: Path) -> None:
    from transformers import BertTokenizerFast

    vocabulary = weights_only / "tiny-vocab.txt"
    vocabulary.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the"]))
    BertTokenizerFast(vocab_file=str(vocabulary)).save_pretrained(weights_only)
    vocabulary.unlink()

    with pytest.raises(FieldError) as caught:
        load_tokenizer(ModelSpec(name_or_path=str(weights_only)))

    assert caught.value.field == "model.name_or_path"
    assert re.search(r"knows only \d tokens", caught.value.message)


def test_a_model_folder_with_its_tokenizer_loads(tiny_model: Path) -> None:
    assert any((tiny_model / name).is_file() for name in TOKENIZER_FILES)
    assert len(load_tokenizer(ModelSpec(name_or_path=str(tiny_model)))) > 1000


def test_the_command_line_names_the_model_without_a_tokenizer(
    capsys, write_sweep, valid_sweep, weights_only
):
    valid_sweep["model"]["name_or_path"] = str(weights_only)
    path = write_sweep(valid_sweep)

    rest = assert_located(validate(capsys, path), path, "model.name_or_path")

    assert "has no tokenizer files" in rest


# ---------------------------------------------------------------------------------------------
# 7. cells of the wrong type, files that cannot be read as they claim


@pytest.mark.parametrize(
    ("column", "value", "field", "kind"),
    [
        ("text", ["two", "words"], "data.text_column", "a list"),
        ("text", {"en": "hello"}, "data.text_column", "a mapping"),
        ("label", ["a", "b"], "data.label_column", "a list"),
        ("label", {"name": "a"}, "data.label_column", "a mapping"),
    ],
)
def test_a_list_or_mapping_in_a_cell_is_refused(
    tmp_path: Path, column: str, value: Any, field: str, kind: str
) -> None:
    rows = labelled()
    rows[8][column] = value
    path = write(rows, tmp_path / "train.jsonl")

    error = refused(DataSpec(train=str(path)))

    assert error.field == field
    assert f"1 of the 20 rows of the train data has {kind} in column {column!r}" in error.message
    assert "row 8 (0-based)" in error.message


def test_a_csv_that_is_not_utf8_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    lines = ["text,label", *(f"fine {i},{'ab'[i % 2]}" for i in range(6)), "café au lait,a"]
    path.write_bytes("\n".join(lines).encode("latin-1"))

    error = refused(DataSpec(train=str(path)))

    assert error.field == "data.train"
    assert f"{str(path)!r} is not UTF-8 text: line 8 holds the byte 0xe9" in error.message
    assert "save it as UTF-8" in error.message


def test_the_command_line_reports_a_file_that_is_not_utf8_in_one_line(
    capsys, write_sweep, valid_sweep, tmp_path
):
    bad = tmp_path / "latin.tsv"
    bad.write_bytes("text\tlabel\nna\xefve\tpositive\ngood\tnegative\n".encode("latin-1"))
    valid_sweep["data"]["train"] = str(bad)
    path = write_sweep(valid_sweep)

    rest = assert_located(validate(capsys, path), path, "data.train")

    assert "not UTF-8" in rest and "line 2" in rest


def test_a_folder_file_that_is_not_utf8_gives_a_warning(tmp_path: Path) -> None:
    for label in ("a", "b"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for index in range(5):
            (tmp_path / "data" / label / f"{index}.txt").write_text(f"{label} text {index}")
    (tmp_path / "data" / "a" / "latin.txt").write_bytes("£15m".encode("latin-1"))

    splits = load_splits(DataSpec(train=str(tmp_path / "data")))

    ((field, why),) = splits.warnings
    assert field == "data.train"
    assert "1 of the 11 files" in why and "a/latin.txt" in why


def test_a_ragged_csv_row_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    rows = "".join(f"t {i},{'ab'[i % 2]}\n" for i in range(6))
    path.write_text(f"text,label\n{rows}x,a,b\n")

    error = refused(DataSpec(train=str(path)))

    assert error.field == "data.train"
    assert "line 8" in error.message and "as many cells as the header" in error.message


def test_a_csv_row_with_too_few_cells_has_an_empty_label(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    rows = "".join(f"t {i},{'ab'[i % 2]}\n" for i in range(6))
    path.write_text(f"text,label\n{rows}x\n")

    error = refused(DataSpec(train=str(path)))

    assert error.field == "data.train" and "row 6 (0-based)" in error.message


@pytest.mark.parametrize(("name", "content"), [("train.csv", "text,label\n"), ("train.jsonl", "")])
def test_a_file_without_rows_is_refused_on_its_split(
    tmp_path: Path, name: str, content: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    train = write(labelled(), tmp_path / "fine.csv")

    error = refused(DataSpec(train=str(train), test=str(path)))

    assert error.field == "data.test" and "holds no rows" in error.message


def test_a_missing_label_column_is_refused_on_the_label_column(tmp_path: Path) -> None:
    path = write([{"text": f"row {i}"} for i in range(10)], tmp_path / "train.jsonl")

    error = refused(DataSpec(train=str(path)))

    assert error.field == "data.label_column" and "its columns are: text" in error.message


# ---------------------------------------------------------------------------------------------
# 8. labels that differ by type or by spaces; data.labels


def test_a_label_written_as_number_and_as_text_is_one_class_with_a_warning(
    tmp_path: Path,
) -> None:
    rows = [{"text": f"row {i}", "label": [1, "1", 0][i % 3]} for i in range(30)]
    path = write(rows, tmp_path / "train.jsonl")

    splits = load_splits(DataSpec(train=str(path)))

    assert splits.label_names == ("0", "1")
    ((field, why),) = splits.warnings
    assert field == "data.train"
    assert "label '1' is written both ways (10 rows as numbers and 10 rows as text)" in why


def test_labels_that_differ_only_by_spaces_are_refused(tmp_path: Path) -> None:
    rows = [{"text": f"row {i}", "label": ["pos", "pos ", "neg"][i % 3]} for i in range(30)]
    path = write(rows, tmp_path / "train.jsonl")

    error = refused(DataSpec(train=str(path)))

    assert error.field == "data.train"
    assert "'pos' (10 rows) and 'pos ' (10 rows)" in error.message
    assert "data.labels" in error.message


def test_labels_that_differ_only_by_spaces_may_be_listed_as_classes(tmp_path: Path) -> None:
    rows = [{"text": f"row {i}", "label": ["pos", "pos ", "neg"][i % 3]} for i in range(30)]
    path = write(rows, tmp_path / "train.jsonl")

    splits = load_splits(DataSpec(train=str(path), labels=["neg", "pos", "pos "]))

    assert splits.label_names == ("neg", "pos", "pos ")


def test_a_validation_label_with_spaces_says_which_label_it_resembles(tmp_path: Path) -> None:
    train = write(labelled(), tmp_path / "train.jsonl")
    rows = labelled(6, "v")
    rows[1]["label"] = "b "
    validation = write(rows, tmp_path / "validation.jsonl")

    error = refused(DataSpec(train=str(train), validation=str(validation)))

    assert error.field == "data.label_column"
    assert "differs from 'b' only by its spaces" in error.message


def test_explicit_labels_still_map_names_and_ids(tmp_path: Path) -> None:
    rows = [{"text": f"row {i}", "label": i % 2} for i in range(20)]
    path = write(rows, tmp_path / "train.parquet")

    splits = load_splits(DataSpec(train=str(path), labels=["negative", "positive"]))

    assert splits.label_names == ("negative", "positive")
    assert splits.warnings == []
    assert isinstance(splits, LabelledSplits)


# ---------------------------------------------------------------------------------------------
# the other tasks: tagging and language modelling


def sentences(count: int, prefix: str = "w") -> Rows:
    return [
        {"tokens": [f"{prefix}{i}", "lives", "in", "Rome"], "tags": ["B-PER", "O", "O", "B-LOC"]}
        for i in range(count)
    ]


def tagging(path: Path) -> DataSpec:
    return DataSpec(
        train=str(path), text_column="tokens", label_column="tags", split=SplitSpec(test=0)
    )


@pytest.mark.parametrize("tag", ["", None, " "])
def test_an_empty_or_null_tag_is_refused(tmp_path: Path, tag: Any) -> None:
    rows = sentences(10)
    rows[4]["tags"] = ["B-PER", tag, "O", "B-LOC"]
    path = write(rows, tmp_path / "train.jsonl")

    error = refused(tagging(path), "token_classification")

    assert error.field == "data.train"
    assert "an empty, null or nested tag in column 'tags'" in error.message
    assert "row 4 (0-based)" in error.message


def test_a_null_word_or_a_sentence_without_words_is_refused(tmp_path: Path) -> None:
    rows = sentences(10)
    rows[2]["tokens"] = ["w2", None, "in", "Rome"]
    path = write(rows, tmp_path / "train.jsonl")
    assert "empty, null or nested word" in refused(tagging(path), "token_classification").message

    rows = sentences(10)
    rows[3] = {"tokens": [], "tags": []}
    path = write(rows, tmp_path / "empty.jsonl")
    error = refused(tagging(path), "token_classification")
    assert error.field == "data.train" and "no sentence" in error.message


def test_null_tags_in_a_row_are_refused(tmp_path: Path) -> None:
    rows = sentences(10)
    rows[5]["tags"] = None
    path = write(rows, tmp_path / "train.jsonl")

    error = refused(tagging(path), "token_classification")

    assert error.field == "data.train" and "no tag list" in error.message


def test_conll_files_still_read(tmp_path: Path) -> None:
    blocks = [f"w{i} B-PER\nlives O\nin O\nRome B-LOC\n" for i in range(10)]
    path = tmp_path / "train.conll"
    path.write_text("\n".join(blocks))

    splits = load_splits(DataSpec(train=str(path), split=SplitSpec(test=0)), "token_classification")

    assert splits.label_names == ("B-LOC", "B-PER", "O")


def prompts(count: int, prefix: str = "q") -> Rows:
    return [{"text": f"{prefix} {i} asks", "response": f"answer {i}"} for i in range(count)]


def language(path: Path, responses: bool = True) -> DataSpec:
    return DataSpec(
        train=str(path),
        response_column="response" if responses else None,
        split=SplitSpec(test=0),
    )


@pytest.mark.parametrize("response", [None, "", "missing"])
def test_a_null_or_empty_response_is_refused(tmp_path: Path, response: str | None) -> None:
    rows = prompts(10)
    if response == "missing":
        del rows[7]["response"]
    else:
        rows[7]["response"] = response
    path = write(rows, tmp_path / "train.jsonl")

    error = refused(language(path), "causal_lm")

    assert error.field == "data.train"
    assert "1 of the 10 rows of the train data has no response" in error.message
    assert "row 7 (0-based)" in error.message


def test_an_empty_prompt_still_trains_its_response(tmp_path: Path) -> None:
    rows = prompts(10)
    rows[1]["text"] = ""
    path = write(rows, tmp_path / "train.jsonl")

    splits = load_splits(language(path), "causal_lm")

    assert "" in {*splits.train["text"], *splits.validation["text"]}


def test_a_null_text_to_model_is_refused(tmp_path: Path) -> None:
    rows = [{"text": f"some text {i}"} for i in range(10)]
    rows[0]["text"] = None
    path = write(rows, tmp_path / "train.jsonl")

    error = refused(language(path, responses=False), "causal_lm")

    assert error.field == "data.train" and "row 0 (0-based)" in error.message


def test_a_language_model_test_file_that_is_the_training_file_is_refused(tmp_path: Path) -> None:
    path = write(prompts(10), tmp_path / "train.jsonl")
    data = DataSpec(train=str(path), test=str(path), response_column="response")

    assert refused(data, "causal_lm").field == "data.test"
