"""The job a sweep's trials share: model weights read once by the driver, data tokenized once,
both reaching each node through Ray's object store and read there without a copy per trial."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import ray
import torch

from tests.conftest import tiny_sweep
from trainables.modeling import load_task_model, read_weights
from trainables.sections import ModelSpec
from tuner.spec.sweep import SweepSpec

LABELS = ("negative", "positive")


@pytest.mark.parametrize("task", ["sequence_classification", "token_classification", "causal_lm"])
def test_a_model_built_from_shared_weights_equals_the_one_read_from_its_files(
    task: str, tiny_model: Path, tiny_gpt: Path
) -> None:
    spec = ModelSpec(name_or_path=str(tiny_gpt if task == "causal_lm" else tiny_model))
    weights = read_weights(spec, LABELS, task)
    assert weights is not None
    shared = load_task_model(spec, LABELS, task, weights)
    from_files = load_task_model(spec, LABELS, task)
    assert type(shared) is type(from_files)
    assert shared.config.id2label == from_files.config.id2label
    assert shared.name_or_path == from_files.name_or_path == str(spec.name_or_path)
    own, reference = shared.state_dict(), from_files.state_dict()
    assert own.keys() == reference.keys()
    fresh_head = {"classifier.weight", "classifier.bias"}  # initialised anew for the labels
    for name, tensor in reference.items():
        if name not in fresh_head:
            assert torch.equal(own[name], tensor), name
    if task == "causal_lm":  # tied input and output embeddings stay tied
        assert shared.lm_head.weight.data_ptr() == shared.transformer.wte.weight.data_ptr()


def test_each_model_gets_weights_of_its_own(tiny_model: Path) -> None:
    spec = ModelSpec(name_or_path=str(tiny_model))
    weights = read_weights(spec, LABELS)
    assert weights is not None
    first, second = (load_task_model(spec, LABELS, weights=weights) for _ in range(2))
    with torch.no_grad():
        first.bert.embeddings.word_embeddings.weight.add_(1.0)  # as training would
    assert not torch.equal(
        first.bert.embeddings.word_embeddings.weight, second.bert.embeddings.word_embeddings.weight
    )


def test_models_without_safetensors_files_are_read_by_each_trial(
    tiny_model: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    pickled = Path(shutil.copytree(tiny_model, tmp_path / "pickled"))
    torch.save(load_file(pickled / "model.safetensors"), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    assert read_weights(ModelSpec(name_or_path=str(pickled)), LABELS) is None
    assert read_weights(ModelSpec(name_or_path="some-org/some-hub-model"), LABELS) is None


def test_models_above_the_limit_are_read_by_each_trial(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trainables.modeling

    size = (tiny_model / "model.safetensors").stat().st_size
    monkeypatch.setattr(trainables.modeling, "SHARED_WEIGHTS_LIMIT", size - 1)
    assert read_weights(ModelSpec(name_or_path=str(tiny_model)), LABELS) is None
    monkeypatch.setattr(trainables.modeling, "SHARED_WEIGHTS_LIMIT", size)
    assert read_weights(ModelSpec(name_or_path=str(tiny_model)), LABELS) is not None


HUB_ID = "some-org/tiny-bert"


def cache_from_hub(cache: Path, folder: Path, names: list[str]) -> None:
    """Lay ``folder``'s files ``names`` out in a hub cache as a download of HUB_ID would."""
    commit = "5" * 40
    repo = cache / f"models--{HUB_ID.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name in names:
        shutil.copy(folder / name, snapshot / name)


@pytest.fixture
def offline_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


def test_a_hub_model_in_the_hub_cache_is_shared_as_a_folder_is(
    tiny_model: Path, offline_hub_cache: Path
) -> None:
    cache_from_hub(offline_hub_cache, tiny_model, [p.name for p in tiny_model.iterdir()])
    spec = ModelSpec(name_or_path=HUB_ID)
    weights = read_weights(spec, LABELS)
    assert weights is not None
    shared = load_task_model(spec, LABELS, weights=weights)
    assert shared.name_or_path == HUB_ID  # its id, not the cache's folder
    reference = load_task_model(ModelSpec(name_or_path=str(tiny_model)), LABELS).state_dict()
    own = shared.state_dict()
    assert own.keys() == reference.keys()
    for name in reference.keys() - {"classifier.weight", "classifier.bias"}:
        assert torch.equal(own[name], reference[name]), name


def test_a_hub_model_whose_weights_are_not_cached_here_offline_is_read_by_each_trial(
    tiny_model: Path, offline_hub_cache: Path
) -> None:
    cache_from_hub(offline_hub_cache, tiny_model, ["config.json"])  # as the checks leave it
    assert read_weights(ModelSpec(name_or_path=HUB_ID), LABELS) is None


def test_a_sharded_model_is_shared_only_with_every_shard(tiny_model: Path, tmp_path: Path) -> None:
    sharded = tmp_path / "sharded"
    load_task_model(ModelSpec(name_or_path=str(tiny_model)), LABELS).save_pretrained(
        sharded, max_shard_size="100KB"
    )
    shards = sorted(sharded.glob("model-*.safetensors"))
    assert len(shards) > 1
    spec = ModelSpec(name_or_path=str(sharded))
    assert read_weights(spec, LABELS) is not None
    shards[-1].unlink()
    assert read_weights(spec, LABELS) is None


@pytest.mark.ray
@pytest.mark.usefixtures("ray_shutdown")
def test_trials_open_no_model_file(
    tiny_model: Path, sentiment_files: dict[str, Path], tmp_path: Path
) -> None:
    """The model's folder is gone before the first trial starts; every trial still trains."""
    from tuner.results.formatting import make_console
    from tuner.running.cluster import connect
    from tuner.running.job import training_job
    from tuner.running.tune_run import new_run_dir, run_sweep
    from tuner.validation.validate import check_sweep

    model = Path(shutil.copytree(tiny_model, tmp_path / "model"))
    content = tiny_sweep(model, sentiment_files, tmp_path / "results")
    content["search"].update(num_trials=2, max_concurrent_trials=2)
    content["training"]["num_train_epochs"] = 1
    checked = check_sweep(SweepSpec.model_validate(content))
    job = training_job(checked)
    shutil.rmtree(model)
    connect(checked.spec, address=None)
    run = run_sweep(checked.spec, job, new_run_dir(checked.spec), make_console())
    assert [trial.outcome for trial in run.trials] == ["completed", "completed"]


@ray.remote(num_cpus=1)
def _private_memory_per_fetch(jobs: list[ray.ObjectRef]) -> list[float]:
    """How much this process's own memory (USS) grows as it fetches each job in turn and reads
    every page of its data and weights, as a trial does."""
    import psutil

    process = psutil.Process(os.getpid())
    grown = []
    for reference in jobs:
        before = process.memory_full_info().uss
        job = ray.get(reference)
        chunks = job.features.train.data.column("input_ids").chunks
        touched = sum(int(np.asarray(chunk.values).sum()) for chunk in chunks)
        touched += sum(int(blob.sum()) for blob in job.weights.files)
        assert touched > 0
        grown.append(float(process.memory_full_info().uss - before))
        del job
    return grown


@pytest.mark.ray
@pytest.mark.usefixtures("ray_shutdown")
def test_concurrent_trials_share_one_copy_of_the_data_and_the_weights(job_factory) -> None:
    """Two trials on a node fetch a job holding tens of MB of tokens and the weights; neither
    takes a private copy of them."""
    import dataclasses

    import datasets

    from trainables.features import Features

    job = small_job = job_factory()
    rows = 500_000
    big = datasets.Dataset.from_dict(
        {"input_ids": np.ones((rows, 32), dtype=np.int64), "labels": np.zeros(rows, dtype=np.int64)}
    )
    features = Features(
        train=big,
        validation=job.features.validation,
        test=None,
        label_names=LABELS,
        train_lengths=np.full(rows, 32, dtype=np.int32),
    )
    assert job.weights is not None
    job = dataclasses.replace(job, features=features)
    shared_bytes = big.data.nbytes + job.weights.nbytes
    assert shared_bytes > 60 * 2**20
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    small, big = ray.put(small_job), ray.put(job)
    # Fetching the small job twice first loads the libraries the job's objects need and
    # warms the process's allocator (about 340 MB, then 12 MB); a copy of the big job's data
    # would add at least its size on top.
    fetches = [small, small, big]
    for grown in ray.get([_private_memory_per_fetch.remote(fetches) for _ in range(2)]):
        assert grown[2] < 0.05 * shared_bytes, f"a trial copied {grown[2] / 2**20:.0f} MB"
