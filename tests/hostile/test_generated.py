"""Generated hostile inputs (Hypothesis): a valid sweep file with keys dropped, renamed,
retyped or given twice, sections shuffled and YAML garbled; training data of random cells,
nulls, unicode, short rows and other encodings; a finished results folder with files cut
short, overwritten, deleted or turned into folders. Every example runs the console script
and must get the corpus' answer: exit 0, or exit 2 with one line naming the file, no
traceback, nothing touched.

The mutations are plain data (`tests.hostile.generated`); only how they are drawn is here.
Examples are few (``HOSTILE_EXAMPLES``, default 20) and drawn the same way on every run
(``derandomize``); ``HOSTILE_HYPOTHESIS=explore`` draws 200 new ones per property.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import tiny_sweep
from tests.hostile.generated import (
    FOLDER_FILES,
    DataFile,
    FolderEdit,
    SweepEdit,
    apply_sweep_edits,
    check_data_file,
    check_results_folder,
    check_sweep_text,
    key_paths,
)

EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "20"))
settings.register_profile(
    "corpus",
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "explore", parent=settings.get_profile("corpus"), max_examples=200, derandomize=False
)
settings.load_profile(os.environ.get("HOSTILE_HYPOTHESIS", "corpus"))

# A sweep of the same shape as the fixtures' (its paths never matter for the shape).
SHAPE = tiny_sweep(Path("model"), {k: Path(k) for k in ("train", "validation", "test")}, Path("r"))
PATHS = key_paths(SHAPE)
SECTIONS = list(SHAPE)

text_cells = st.text(max_size=30).map(
    lambda text: text.encode("utf-8", "replace").decode("utf-8")
)  # lone surrogates have no UTF-8: '?' instead
ODD_VALUES: list[Any] = [
    None, "", " ", "many", "1e-5", "NaN", "🚀", "C:\\data\\x.csv", True, False, 0, -1, 1, 2**31,
    2**64, 10**30, -(10**30), 1e308, -1e-308, math.nan, math.inf, -math.inf, [], {}, [1, 2],
    {"type": "float"}, {"low": 1, "high": 0}, "${HOME}", "~", "../..",
]  # fmt: skip
values = st.one_of(
    st.sampled_from(ODD_VALUES),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    text_cells,
    st.lists(st.integers(), max_size=3),
)
YAML_SHARDS = [
    "{", "}", "[", "]", ":", ": ", "\t", "&a ", "*a", "*undefined", "!!python/name:os.system ",
    "!!binary ", "'", '"', "\n---\n", "\x00", "\r", "\ufeff", "- ", "? ", "|", ">", "%YAML 1.1\n",
    "\u2028", "\u00a0", "#", "\n  ", "\n\t", "<<: *a\n", "@", "`", "\x07", "\\U0000",
]  # fmt: skip
shards = st.one_of(st.sampled_from(YAML_SHARDS), text_cells)
key_names = st.one_of(
    st.sampled_from(["", " ", "Name", "search-space", "num_trails", "1", "null", "~", "ü", "<<"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-0123456789 ", min_size=1, max_size=15),
)
paths = st.sampled_from(PATHS).map(tuple)

sweep_edits = st.one_of(
    st.builds(SweepEdit, kind=st.just("drop"), path=paths),
    st.builds(SweepEdit, kind=st.just("rename"), path=paths, value=key_names),
    st.builds(SweepEdit, kind=st.just("retype"), path=paths, value=values),
    st.builds(SweepEdit, kind=st.just("duplicate"), path=paths, value=values),
    st.builds(
        SweepEdit,
        kind=st.just("shuffle"),
        value=st.lists(st.floats(0, 1), min_size=len(SECTIONS), max_size=len(SECTIONS)),
    ),
    st.builds(SweepEdit, kind=st.just("garble"), value=st.tuples(st.floats(0, 1), shards)),
)

# About 90 s: with `-m slow` (CI), so the default suite keeps the sweep-file corpus only.
pytestmark = pytest.mark.slow


@given(edits=st.lists(sweep_edits, min_size=1, max_size=4))
def test_mutated_sweep_files(
    edits: list[SweepEdit], base_for_generation: dict[str, Any], shared_inputs: list[Path]
) -> None:
    check_sweep_text(apply_sweep_edits(base_for_generation, edits), shared_inputs)


labels = st.one_of(
    st.sampled_from(["negative", "positive", "0", "1", 0, 1, " positive", "POSITIVE", None, ""]),
    st.floats(allow_nan=True, allow_infinity=True),
    text_cells,
)
texts = st.one_of(
    st.sampled_from(["the film was good", "the plot was awful", "", " ", None, "\t", "\n"]),
    text_cells,
    st.integers(),
)
data_files = st.builds(
    DataFile,
    rows=st.lists(st.tuples(texts, labels), min_size=1, max_size=60).map(tuple),
    format=st.sampled_from(["tsv", "csv", "jsonl"]),
    encoding=st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]),
    ragged=st.lists(st.integers(0, 59), max_size=3).map(tuple),
)


@given(data=data_files)
def test_generated_training_data(
    data: DataFile, base_for_generation: dict[str, Any], shared_inputs: list[Path]
) -> None:
    check_data_file(data, base_for_generation, shared_inputs)


garbage = st.binary(min_size=1, max_size=40)
folder_edits = st.one_of(
    st.builds(FolderEdit, target=st.sampled_from(FOLDER_FILES), kind=st.just("truncate"),
              value=st.floats(0, 1)),
    st.builds(FolderEdit, target=st.sampled_from(FOLDER_FILES), kind=st.just("garble"),
              value=st.tuples(st.floats(0, 1), garbage)),
    st.builds(FolderEdit, target=st.sampled_from(FOLDER_FILES), kind=st.just("append"),
              value=garbage),
    st.builds(FolderEdit, target=st.sampled_from(FOLDER_FILES),
              kind=st.sampled_from(["empty", "delete", "folder"])),
)  # fmt: skip


@given(edits=st.lists(folder_edits, min_size=1, max_size=4))
def test_damaged_results_folders(
    edits: list[FolderEdit], base_for_generation: dict[str, Any]
) -> None:
    check_results_folder(edits, base_for_generation)
