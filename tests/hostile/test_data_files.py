"""Data files and model folders as people hand them over: `tuner validate` of a valid sweep
file whose data or model is wrong must name the field (data.train, data.labels,
model.name_or_path, ...) in one line, and accept the odd but valid ones; the data, the model
and the sweep file stay as they were.

Every case reads the data and the model (pandas, transformers: seconds), so the whole module is
slow.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import sentiment_rows
from tests.hostile.cases import Hostile, Sweep, params, setting, settings, write
from tests.hostile.harness import Case, Expect, accepted, refused, run_case

pytestmark = pytest.mark.slow

FILE = "sweep.yaml"
VALID = accepted("is valid")
NAMES = ["negative", "positive"]


def at(field: str, *more: str) -> Expect:
    return refused(FILE, field, *more)


def table(rows: list[dict[str, Any]], sep: str = "\t", header: bool = True) -> str:
    names = list(rows[0])
    lines = [sep.join(names)] if header else []
    lines += [sep.join(str(row[name]) for name in names) for row in rows]
    return "\n".join(lines) + "\n"


ROWS = sentiment_rows(120, seed=11)
"""Good training rows: text and a label id (0 negative, 1 positive)."""
GOOD = table(ROWS)


def with_row(row: str, at_line: int = 5) -> str:
    """The good TSV with one raw line put in at ``at_line``."""
    lines = GOOD.splitlines()
    lines.insert(at_line, row)
    return "\n".join(lines) + "\n"


def jsonl(rows: list[Any]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


Make = Callable[[Path, Sweep], Sweep]


def train(name: str, content: str | bytes, **values: Any) -> Make:
    """Training data ``name`` (relative to the working folder) holding ``content``."""

    def make(workdir: Path, sweep: Sweep) -> Sweep:
        write(workdir / name, content)
        sweep = setting("data.train", name)(sweep)
        for dotted, value in values.items():
            sweep = setting(dotted.replace("__", "."), value)(sweep)
        return sweep

    return make


def point(dotted: str, value: Any, prepare: Callable[[Path], Any] | None = None) -> Make:
    """Set ``dotted`` to ``value`` after ``prepare(workdir)`` made what it names."""

    def make(workdir: Path, sweep: Sweep) -> Sweep:
        if prepare is not None:
            prepare(workdir)
        return setting(dotted, value)(sweep)

    return make


def label_folders(workdir: Path) -> None:
    for index, row in enumerate(ROWS):
        write(workdir / "corpus" / NAMES[row["label"]] / f"{index:04d}.txt", row["text"])


def loose_files(workdir: Path) -> None:
    for index, row in enumerate(ROWS[:10]):
        write(workdir / "corpus" / f"{index}.txt", row["text"])


def model_copy(keep: Callable[[Path], bool], edit: Callable[[Path], Any] | None = None) -> Make:
    """data stays; model.name_or_path is a copy of the tiny model with only the files
    ``keep`` lets through, then ``edit(folder)``."""

    def make(workdir: Path, sweep: Sweep) -> Sweep:
        source = Path(sweep["model"]["name_or_path"])
        folder = workdir / "my-model"
        folder.mkdir()
        for path in source.iterdir():
            if keep(path):
                shutil.copy(path, folder / path.name)
        if edit is not None:
            edit(folder)
        return setting("model.name_or_path", "my-model")(sweep)

    return make


def no_tokenizer(path: Path) -> bool:
    return "tokenizer" not in path.name and path.suffix != ".txt"


def garbled_config(folder: Path) -> None:
    (folder / "config.json").write_text('{"model_type": "bert", "hidden_size": ')


def unknown_model_type(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "no-such-architecture"
    (folder / "config.json").write_text(json.dumps(config))


def loop(name: str) -> Callable[[Path], Any]:
    return lambda workdir: (workdir / name).symlink_to(workdir / name)


def file_named(name: str, content: str = "not a folder\n") -> Callable[[Path], Any]:
    return lambda workdir: write(workdir / name, content)


def relative_to_the_file(workdir: Path, sweep: Sweep) -> tuple[Sweep, str]:
    """conf/sweep.yaml names its data relative to itself (conf/data/train.tsv); the command
    runs one folder up, and relative paths start at the current folder."""
    write(workdir / "conf" / "data" / "train.tsv", GOOD)
    return setting("data.train", "data/train.tsv")(sweep), "conf/sweep.yaml"


UNICODE_ROWS = [
    {"text": text, "label": index % 2}
    for index, text in enumerate(
        [
            "😀 great film 🎬",
            "مرحبا this was awful",
            "naïve café — lovely",
            "e\u0301\u0301 bad",
            "zero\u200bwidth joy",
            "ＦＵＬＬＷＩＤＴＨ good",
            "\U0001f4a9 dreadful",
            "日本語 brilliant",
        ]
        * 15
    )
]


def _answered(count: int) -> list[dict[str, Any]]:
    """SQuAD-layout rows: a question, its context, and its answer where the context has it."""
    rows = []
    for index in range(count):
        city = ["London", "Paris", "Rome", "Oslo"][index % 4]
        context = f"Person {index} lived in {city} for years."
        rows.append(
            {
                "title": f"article-{index % 6}",
                "question": f"Where did person {index} live?",
                "context": context,
                "answers": {"text": [city], "answer_start": [context.index(city)]},
            }
        )
    return rows


def questions(
    edit: Callable[[list[dict[str, Any]]], Any] = lambda rows: None, **values: Any
) -> Make:
    """A question-answering sweep over SQuAD-layout files whose training rows ``edit``
    spoils."""

    def make(workdir: Path, sweep: Sweep) -> Sweep:
        rows = _answered(40)
        edit(rows)
        write(workdir / "qa" / "train.jsonl", jsonl(rows))
        for split, first in (("validation", 100), ("test", 200)):
            held = [dict(row, question=f"{row['question']} ({first + n})") for n, row in
                    enumerate(_answered(8))]  # fmt: skip
            write(workdir / "qa" / f"{split}.jsonl", jsonl(held))
        sweep = settings(
            task__type="question_answering",
            data__train="qa/train.jsonl",
            data__validation="qa/validation.jsonl",
            data__test="qa/test.jsonl",
            data__max_length=32,
            **values,
        )(sweep)
        sweep["data"].pop("labels", None)
        return sweep

    return make


def pairs(edit: Callable[[list[dict[str, Any]]], Any] = lambda rows: None, **values: Any) -> Make:
    """A summarization sweep over source and target files whose training rows ``edit``
    spoils."""

    def make(workdir: Path, sweep: Sweep) -> Sweep:
        rows = [{"document": f"a long text number {i} about things", "tldr": f"text {i}"}
                for i in range(40)]  # fmt: skip
        edit(rows)
        write(workdir / "s2s" / "train.jsonl", jsonl(rows))
        for split in ("validation", "test"):
            held = [{"document": f"another text {i} on {split}", "tldr": f"another {i}"}
                    for i in range(8)]  # fmt: skip
            write(workdir / "s2s" / f"{split}.jsonl", jsonl(held))
        sweep = settings(
            task__type="summarization",
            data__train="s2s/train.jsonl",
            data__validation="s2s/validation.jsonl",
            data__test="s2s/test.jsonl",
            data__text_column="document",
            data__target_column="tldr",
            **values,
        )(sweep)
        sweep["data"].pop("labels", None)
        return sweep

    return make


def _answer_at(row: int, start: int) -> Callable[[list[dict[str, Any]]], None]:
    def edit(rows: list[dict[str, Any]]) -> None:
        rows[row]["answers"]["answer_start"] = [start]

    return edit


CASES: list[Hostile] = [
    # --- where the data is ----------------------------------------------------------------
    Hostile("train-file-missing", point("data.train", "data/train.csv"), at("data.train")),
    Hostile(
        "train-home-path-missing", point("data.train", "~/no-such/train.csv"), at("data.train")
    ),
    Hostile(
        "train-windows-path",
        point("data.train", "C:\\Users\\me\\Documents\\train.csv"),
        at("data.train"),
    ),
    Hostile("train-relative-to-the-file", relative_to_the_file, at("data.train")),
    Hostile(
        "train-empty-folder",
        point("data.train", "corpus", lambda w: (w / "corpus").mkdir()),
        at("data.train"),
    ),
    Hostile(
        "train-folder-of-loose-files", point("data.train", "corpus", loose_files), at("data.train")
    ),
    Hostile("train-folder-per-label", point("data.train", "corpus", label_folders), VALID),
    Hostile(
        "train-symlink-loop", point("data.train", "loop.tsv", loop("loop.tsv")), at("data.train")
    ),
    Hostile(
        "validation-is-a-folder",
        point("data.validation", "dev.tsv", lambda w: (w / "dev.tsv").mkdir()),
        at("data.validation"),
    ),
    Hostile(
        "test-path-through-a-file",
        point("data.test", "notes.txt/test.tsv", file_named("notes.txt")),
        at("data.test"),
    ),
    # --- what the file holds ---------------------------------------------------------------
    Hostile("zero-byte-file", train("train.tsv", ""), at("data.train")),
    Hostile("header-only", train("train.tsv", "text\tlabel\n"), at("data.train")),
    Hostile("blank-lines-only", train("train.tsv", "\n\n\n"), at("data.train")),
    Hostile(
        "ragged-row-extra-field",
        train("train.tsv", with_row("great fun\t1\textra")),
        at("data.train"),
    ),
    Hostile(
        "ragged-row-missing-label", train("train.tsv", with_row("great fun")), at("data.train")
    ),
    Hostile("null-label-cell", train("train.tsv", with_row("great fun\t")), at("data.train")),
    Hostile("empty-text-cell", train("train.tsv", with_row("\t1")), at("data.train")),
    Hostile("whitespace-only-text", train("train.tsv", with_row("   \t1")), at("data.train")),
    Hostile("label-not-listed", train("train.tsv", with_row("so-so\tneutral")), at("data.labels")),
    Hostile("label-id-out-of-range", train("train.tsv", with_row("so-so\t7")), at("data.labels")),
    Hostile(
        "single-class",
        train("train.tsv", table([r for r in ROWS if r["label"] == 1])),
        at("data.label_column"),
    ),
    Hostile(
        "text-column-misnamed",
        train("train.tsv", GOOD.replace("text\tlabel", "sentence\tlabel", 1)),
        at("data.text_column", "sentence"),
    ),
    Hostile(
        "label-column-misnamed",
        train("train.tsv", GOOD.replace("text\tlabel", "text\tsentiment", 1)),
        at("data.label_column", "sentiment"),
    ),
    Hostile("no-header-row", train("train.tsv", table(ROWS, header=False)), at("data.text_column")),
    Hostile(
        "no-header-with-column-names",
        train(
            "train.tsv",
            table(ROWS, header=False),
            data__column_names=["text", "label"],
            data__validation=None,
            data__test=None,
        ),
        VALID,
    ),
    Hostile(
        "text-pair-column-missing",
        train("train.tsv", GOOD, data__text_pair_column="premise"),
        at("data.text_pair_column", "premise"),
    ),
    Hostile(
        "labels-differ-by-spaces",
        train(
            "train.tsv",
            table(
                [
                    {"text": r["text"], "label": NAMES[r["label"]] + (" " if i % 7 == 0 else "")}
                    for i, r in enumerate(ROWS)
                ]
            ),
            data__labels=None,
        ),
        at("data.train"),
    ),
    Hostile(
        "too-few-rows-to-split",
        train("train.tsv", table(ROWS[:3]), data__validation=None, data__test=None),
        at("data.split"),
    ),
    Hostile(
        "validation-is-the-train-file",
        lambda w, s: setting("data.validation", s["data"]["train"])(s),
        at("data.validation"),
    ),
    # --- encodings and line endings -------------------------------------------------------
    Hostile("utf8-bom", train("train.tsv", "\ufeff" + GOOD), VALID),
    Hostile("crlf-line-endings", train("train.tsv", GOOD.replace("\n", "\r\n")), VALID),
    Hostile(
        "latin1-text",
        train("train.tsv", with_row("très bien, génial\t1").encode("latin-1")),
        refused("data.train"),
    ),
    Hostile("utf16-file", train("train.tsv", GOOD.encode("utf-16")), refused("data.train")),
    Hostile(
        "cp1252-smart-quotes",
        train("train.tsv", with_row("\u201cgreat\u201d film\t1").encode("cp1252")),
        refused("data.train"),
    ),
    Hostile(
        "nul-bytes",
        train("train.tsv", GOOD.encode() + b"\x00\x00\x00\t1\n"),
        at("data.train", "NUL bytes"),
    ),
    Hostile("random-binary", train("train.csv", bytes(range(256)) * 40), at("data.train")),
    Hostile("unicode-texts", train("train.tsv", table(UNICODE_ROWS)), VALID),
    Hostile(
        "a-100k-character-text",
        train("train.tsv", with_row("good " * 20_000 + "\t1")),
        VALID,
    ),
    # --- formats --------------------------------------------------------------------------
    Hostile("tsv-saved-as-csv", train("train.csv", GOOD), at("data.text_column")),
    Hostile(
        "csv-quoted-newlines",
        train(
            "train.csv",
            'text,label\n"a good\nfilm, truly",1\n' + table(ROWS, sep=",").split("\n", 1)[1],
        ),
        VALID,
    ),
    Hostile(
        "csv-unbalanced-quote",
        train("train.csv", table(ROWS, sep=",").replace("the film was", '"the film was', 1)),
        at("data.train"),
    ),
    Hostile("jsonl-good", train("train.jsonl", jsonl(ROWS)), VALID),
    Hostile("jsonl-trailing-blank-lines", train("train.jsonl", jsonl(ROWS) + "\n\n\n"), VALID),
    Hostile(
        "jsonl-broken-line",
        train("train.jsonl", jsonl(ROWS[:5]) + '{"text": "cut sh\n' + jsonl(ROWS[5:])),
        at("data.train"),
    ),
    Hostile(
        "jsonl-null-text",
        train("train.jsonl", jsonl([*ROWS, {"text": None, "label": 1}])),
        at("data.train"),
    ),
    Hostile(
        "jsonl-text-is-an-object",
        train("train.jsonl", jsonl([*ROWS, {"text": {"en": "good"}, "label": 1}])),
        at("data.text_column", "mapping"),
    ),
    Hostile(
        "jsonl-label-types-mixed",
        train(
            "train.jsonl",
            jsonl(
                [
                    {"text": r["text"], "label": str(r["label"]) if i % 2 else r["label"]}
                    for i, r in enumerate(ROWS)
                ]
            ),
            data__labels=None,
        ),
        accepted("is valid", "2 labels: 0, 1"),
    ),
    Hostile(
        "json-object-not-records",
        train("train.json", json.dumps({"text": "a", "label": 1})),
        at("data.train"),
    ),
    Hostile("parquet-suffix-on-csv", train("train.parquet", GOOD), at("data.train")),
    Hostile("xlsx-suffix", train("train.xlsx", GOOD), at("data.format")),
    Hostile("no-suffix", train("train", GOOD), at("data.format")),
    Hostile(
        "format-says-jsonl-of-tsv", train("train.tsv", GOOD, data__format="jsonl"), at("data.train")
    ),
    # --- the model folder ------------------------------------------------------------------
    Hostile(
        "model-folder-missing", point("model.name_or_path", "models/tiny"), at("model.name_or_path")
    ),
    Hostile(
        "model-folder-empty",
        point("model.name_or_path", "empty", lambda w: (w / "empty").mkdir()),
        at("model.name_or_path"),
    ),
    Hostile(
        "model-path-is-a-file",
        point("model.name_or_path", "model.bin", file_named("model.bin")),
        at("model.name_or_path"),
    ),
    Hostile("model-without-tokenizer", model_copy(no_tokenizer), at("model.name_or_path")),
    Hostile(
        "model-without-weights",
        model_copy(lambda p: p.suffix != ".safetensors"),
        at("model.name_or_path", "no weights"),
    ),
    Hostile(
        "model-config-garbled", model_copy(lambda p: True, garbled_config), at("model.name_or_path")
    ),
    Hostile(
        "model-type-unknown",
        model_copy(lambda p: True, unknown_model_type),
        at("model.name_or_path", "model_type"),
    ),
    Hostile(
        "hub-model-offline",
        point("model.name_or_path", "bert-base-uncased-typo"),
        at("model.name_or_path"),
    ),
    # --- question answering and text generation -------------------------------------------
    Hostile("qa-valid", questions(), VALID),
    Hostile(
        "qa-without-answers",
        questions(lambda rows: [row.pop("answers") for row in rows]),
        at("data.answers_column", "no column 'answers'"),
    ),
    Hostile(
        "qa-answer-not-in-its-context",
        questions(_answer_at(3, 2)),
        at("data.answers_column", "row 3", "not in its context"),
    ),
    Hostile(
        "qa-span-past-the-context",
        questions(_answer_at(5, 500)),
        at("data.answers_column", "row 5", "runs past its context"),
    ),
    Hostile(
        "qa-answers-as-text",
        questions(lambda rows: rows[2].update(answers="London")),
        at("data.answers_column", "row 2"),
    ),
    Hostile(
        "qa-empty-question",
        questions(lambda rows: rows[4].update(question="  ")),
        at("data.train", "row 4"),
    ),
    Hostile(
        "qa-group-column-missing",
        questions(data__split={"test": 0.2, "group_column": "article"}),
        at("data.split.group_column", "no column 'article'"),
    ),
    Hostile("summaries-valid", pairs(), VALID),
    Hostile(
        "summaries-without-target-column",
        pairs(lambda rows: [row.pop("tldr") for row in rows]),
        at("data.target_column", "no column 'tldr'"),
    ),
    Hostile(
        "summaries-empty-target",
        pairs(lambda rows: rows[7].update(tldr="")),
        at("data.train", "row 7"),
    ),
    Hostile(
        "summaries-decoder-missing",
        pairs(model__decoder="no-such-folder/"),
        at("model.decoder"),
    ),
    # --- other paths of the file -----------------------------------------------------------
    Hostile(
        "storage-path-is-a-file",
        point("resources.storage_path", "results.txt", file_named("results.txt")),
        at("resources.storage_path"),
    ),
    Hostile(
        "warm-start-folder-missing",
        point("search.warm_start_from", "results/old-sweep"),
        at("search.warm_start_from"),
    ),
    Hostile(
        "study-database-folder-missing",
        point("search.storage", "sqlite:///no/such/folder/study.db"),
        at("search.storage"),
    ),
    Hostile(
        "study-database-unknown-dialect",
        point("search.storage", "nosuchdb://host/study"),
        at("search.storage"),
    ),
]


@pytest.mark.parametrize("case", params(CASES))
def test_validate_data_and_model(
    case: Hostile, base_sweep: Sweep, workdir: Path, shared_inputs: list[Path]
) -> None:
    made = case.make(workdir, base_sweep)
    content, name = made if isinstance(made, tuple) else (made, FILE)
    write(workdir / name, content)
    run_case(Case(["validate", name], workdir, case.expect, watch=shared_inputs))
