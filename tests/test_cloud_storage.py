"""Results in cloud storage (`tuner.results.buckets`, `tuner.results.mirror`), against a real
S3-compatible server: moto's, started on loopback for this module, checking every request's
credentials against the IAM user it made. Credentials and endpoint reach the tuner through the
environment only.

A real tiny sweep writes to ``s3://BUCKET/runs``: Tune's state, the trials' results and
checkpoints, the reports and ``best.yaml`` land in the bucket; ``tuner report`` reads the run
back in a fresh process on a fresh mirror, ``tuner resume`` finds the finished sweep with
nothing left to do, and the secret key is in no file of the bucket or a mirror, nor in any
line printed or logged. Bad buckets, credentials, endpoints and schemes are one line and exit
code 2 from ``tuner validate``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import free_port, ray_modules_loaded_by, tiny_sweep
from tests.test_bad_input import assert_located, validate
from trainables.errors import UsageError
from tuner.results import buckets, mirror

boto3 = pytest.importorskip("boto3", reason="moto's S3 server needs `pip install -e .[dev]`")
pytest.importorskip("moto", reason="moto's S3 server needs `pip install -e .[dev]`")

BUCKET = "tuner-results"


@dataclass(frozen=True)
class Server:
    endpoint: str
    key_id: str
    secret: str


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """moto's S3 (and IAM) server on a free loopback port: its first three requests make an
    IAM user with a key that may do anything; every later one must be signed by that key."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto's server did not start:\n{log.read_text()}")
                time.sleep(0.2)
        anyone = {"aws_access_key_id": "unchecked", "aws_secret_access_key": "unchecked"}
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", **anyone)
        iam.create_user(UserName="tuner")
        policy = {"Version": "2012-10-17",
                  "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}  # fmt: skip
        iam.put_user_policy(UserName="tuner", PolicyName="all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="tuner")["AccessKey"]
        found = Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
        s3 = _client(found)
        s3.create_bucket(Bucket=BUCKET)
        # Deleted objects stay as old versions: a checkpoint deleted when its trial ended
        # can still be seen to have been uploaded.
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield found
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def _client(server: Server) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=server.key_id,
        aws_secret_access_key=server.secret,
    )


def _environment(server: Server, cache: Path) -> dict[str, str]:
    """What a user exports to reach the bucket; the mirrors go under ``cache``."""
    return {
        "AWS_ACCESS_KEY_ID": server.key_id,
        "AWS_SECRET_ACCESS_KEY": server.secret,
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "XDG_CACHE_HOME": str(cache),
    }


@pytest.fixture
def s3_env(s3_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Server:
    for name, value in _environment(s3_server, tmp_path / "cache").items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    return s3_server


def _bucket_files(server: Server, prefix: str = "") -> dict[str, bytes]:
    s3 = _client(server)
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith("/"):
                continue  # a folder's marker, as pyarrow and Tune make them
            found[item["Key"]] = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
    return found


# --- bad input: one line, exit code 2, before any trial ------------------------------------


def _bad_storage(capsys, write_sweep, valid_sweep, storage: str) -> str:
    valid_sweep["resources"]["storage_path"] = storage
    valid_sweep["search"]["storage"] = "sqlite:////nowhere/study.db"  # never opened
    path = write_sweep(valid_sweep)
    return assert_located(validate(capsys, path), path, "resources.storage_path")


def test_a_bucket_that_does_not_exist(s3_env, capsys, write_sweep, valid_sweep):
    rest = _bad_storage(capsys, write_sweep, valid_sweep, "s3://no-such-bucket/runs")
    assert rest == (
        "s3://no-such-bucket/runs: the bucket 'no-such-bucket' does not exist; create it, or "
        "fix the name"
    )


@pytest.mark.parametrize("wrong", ["secret", "key id"])
def test_credentials_the_service_refuses(
    s3_env, monkeypatch, capsys, write_sweep, valid_sweep, wrong
):
    if wrong == "secret":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-0123456789")
    else:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
    rest = _bad_storage(capsys, write_sweep, valid_sweep, f"s3://{BUCKET}/runs")
    assert rest.startswith(f"s3://{BUCKET}/runs: the credentials were refused (")
    assert "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment" in rest
    assert "not-the-secret" not in rest


def test_an_endpoint_where_nothing_listens(s3_env, monkeypatch, capsys, write_sweep, valid_sweep):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    rest = _bad_storage(capsys, write_sweep, valid_sweep, f"s3://{BUCKET}/runs")
    assert "the storage service did not answer" in rest and "check AWS_ENDPOINT_URL" in rest
    assert time.monotonic() - started < 30


def test_an_endpoint_that_never_answers_is_given_up_within_seconds(
    s3_env, monkeypatch, capsys, write_sweep, valid_sweep
):
    monkeypatch.setattr(buckets, "CHECK_TIMEOUT_S", 2)  # 10 s by default
    with socket.socket() as silent:  # takes connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        rest = _bad_storage(capsys, write_sweep, valid_sweep, f"s3://{BUCKET}/runs")
    assert "did not answer within 2s" in rest, rest
    assert time.monotonic() - started < 20  # pyarrow's own retries take over a minute


@pytest.mark.parametrize(
    ("storage", "says"),
    [
        ("nosuch://bucket/runs", "pyarrow knows no file system for the scheme 'nosuch'"),
        (f"s3://AKIA:hunter2@{BUCKET}/runs", "credentials in the URI would be written"),
        (f"s3://{BUCKET}/runs?endpoint_override=x", "options in the URI are not taken"),
    ],
)
def test_uris_that_cannot_be_taken(s3_env, capsys, write_sweep, valid_sweep, storage, says):
    rest = _bad_storage(capsys, write_sweep, valid_sweep, storage)
    assert says in rest and "hunter2" not in rest


def test_a_bucket_without_a_study_database_is_refused(s3_env, capsys, write_sweep, valid_sweep):
    valid_sweep["resources"]["storage_path"] = f"s3://{BUCKET}/runs"
    path = write_sweep(valid_sweep)
    rest = assert_located(validate(capsys, path), path, "search.storage", written="search")
    assert rest.startswith(f"results go to s3://{BUCKET}/runs, where the study's default SQLite")
    assert "set search.storage to a SQL URL" in rest


def test_the_console_script_refuses_a_missing_bucket(s3_env, write_sweep, valid_sweep):
    valid_sweep["resources"]["storage_path"] = "s3://no-such-bucket/runs"
    valid_sweep["search"]["storage"] = "sqlite:////nowhere/study.db"
    done = subprocess.run(
        [sys.executable, "-m", "tuner", "validate", str(write_sweep(valid_sweep))],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "resources.storage_path: s3://no-such-bucket/runs: the bucket" in line


# --- the mirror -----------------------------------------------------------------------------


def test_the_mirror_uploads_what_the_driver_wrote_and_leaves_checkpoints_in_the_bucket(s3_env):
    storage = f"s3://{BUCKET}/mirror-test-{time.time_ns()}"
    folder = mirror.new_mirror(storage, "run")
    assert mirror.location(folder) == f"{storage}/run"
    with pytest.raises(FileExistsError):  # the name is taken here now
        mirror.new_mirror(storage, "run")
    (folder / "sweep.yaml").write_text("name: run\n")
    (folder / ".driver.lock").write_text("123")
    mirror.push(folder)
    prefix = storage.removeprefix(f"s3://{BUCKET}/") + "/run/"
    assert set(_bucket_files(s3_env, prefix)) == {f"{prefix}sweep.yaml"}

    # Tune writes into the bucket meanwhile; the driver rewrites a file of its own.
    s3 = _client(s3_env)
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}trial_1/result.json", Body=b"{}\n")
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}trial_1/checkpoint_000000/model.bin", Body=b"w")
    (folder / "sweep.yaml").write_text("name: run\n# rewritten\n")
    mirror.pull(folder)
    assert (folder / "trial_1" / "result.json").read_text() == "{}\n"
    assert not (folder / "trial_1" / "checkpoint_000000").exists()
    assert (folder / "sweep.yaml").read_text().endswith("# rewritten\n")  # not the bucket's
    mirror.push(folder)
    assert _bucket_files(s3_env, prefix)[f"{prefix}sweep.yaml"].endswith(b"# rewritten\n")

    # Another machine (another mirror) reads the run; a new name skips the one in the bucket.
    (folder / ".tuner-mirror.json").unlink()
    assert mirror.local_folder(f"{storage}/run") == folder
    assert (folder / "trial_1" / "result.json").is_file()
    with pytest.raises(FileExistsError):
        mirror.new_mirror(storage, "run")


def test_a_folder_in_the_bucket_that_is_no_run_is_refused(s3_env):
    with pytest.raises(UsageError, match=r"holds no sweep\.yaml: it is not a sweep"):
        mirror.local_folder(f"s3://{BUCKET}/nothing-here")


def test_a_trial_finds_its_checkpoints_in_the_bucket(s3_env, tmp_path):
    from ray import tune

    from tuner.running.trial import newest_checkpoint, on_this_node

    s3 = _client(s3_env)
    for step in (3, 4):  # Tune knows of the first; a driver killed before its snapshot, not
        folder = f"ckpt/trial_1/checkpoint_00000{step}"
        s3.put_object(Bucket=BUCKET, Key=f"{folder}/trainer_state.json",
                      Body=json.dumps({"global_step": step}).encode())  # fmt: skip
        s3.put_object(Bucket=BUCKET, Key=f"{folder}/tuner-checkpoint.json",
                      Body=json.dumps({"trainer_state.json": 18}).encode())  # fmt: skip
    filesystem, path = buckets.open_uri(f"s3://{BUCKET}/ckpt/trial_1/checkpoint_000003")
    tunes = tune.Checkpoint(path, filesystem=filesystem)
    folder, given = on_this_node(f"s3://{BUCKET}/ckpt/trial_1", tunes, tmp_path)
    assert given is not None and json.loads((given / "trainer_state.json").read_text()) == {
        "global_step": 3
    }
    newest = newest_checkpoint(folder, given)
    assert newest is not None and newest.name == "checkpoint_000004"


# --- a real sweep in the bucket -------------------------------------------------------------


@dataclass(frozen=True)
class BucketRun:
    uri: str
    mirror: Path
    printed: str


@pytest.fixture(scope="module")
def bucket_run(
    s3_server: Server,
    tiny_model: Path,
    sentiment_files: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[BucketRun]:
    """A tiny sweep of two trials, retrained with one seed, into ``s3://BUCKET/runs``."""
    import ray
    from rich.console import Console

    from tuner.pipeline import run_sweep_file

    folder = tmp_path_factory.mktemp("bucket-run")
    content = tiny_sweep(tiny_model, sentiment_files, folder / "unused")
    content["training"]["num_train_epochs"] = 2  # a checkpoint after the first
    content["search"].update(num_trials=2, n_startup_trials=2)
    content["resources"]["storage_path"] = f"s3://{BUCKET}/runs"
    content["search"]["storage"] = f"sqlite:///{folder / 'study.db'}"
    content["retrain"] = {"enabled": True, "top_k": 1, "seeds": 1}
    sweep = folder / "sweep.yaml"
    sweep.write_text(yaml.safe_dump(content, sort_keys=False))
    console = Console(record=True, width=200, force_terminal=False)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _environment(s3_server, folder / "cache").items():
            patch.setenv(name, value)
        try:
            outcome = run_sweep_file(sweep, console=console)
        finally:
            ray.shutdown()
    uri = mirror.location(outcome.run.run_dir)
    yield BucketRun(uri=uri, mirror=outcome.run.run_dir, printed=console.export_text())


@pytest.mark.ray
def test_the_run_is_in_the_bucket(s3_server, bucket_run):
    assert bucket_run.uri.startswith(f"s3://{BUCKET}/runs/tiny-")
    assert f"Results (Tune's layout, readable by Tune's tools): {bucket_run.uri}" in (
        bucket_run.printed
    )
    prefix = bucket_run.uri.removeprefix(f"s3://{BUCKET}/") + "/"
    names = {key.removeprefix(prefix) for key in _bucket_files(s3_server, prefix)}
    for written in ("sweep.yaml", "data.json", "tuner.pkl", "tune.log", "report.md",
                    "report.html", "trials.csv", "trials.json", "retrain.json", "best.yaml",
                    "best.json"):  # fmt: skip
        assert written in names, sorted(names)
    assert any(name.startswith("experiment_state-") for name in names)
    assert any(name.startswith("searcher-state-") for name in names)
    trials = {name.split("/")[0] for name in names if name.startswith("trial_")}
    assert len(trials) == 2
    for trial in trials:
        assert {f"{trial}/params.json", f"{trial}/result.json"} <= names
    assert any(name.startswith("retrain-") and name.endswith("/result.json") for name in names)
    # Every trial uploaded a checkpoint (all deleted since, as their trials ended).
    versions = _client(s3_server).list_object_versions(Bucket=BUCKET, Prefix=prefix)
    uploaded = {
        v["Key"].removeprefix(prefix).split("/")[0]
        for v in versions["Versions"]
        if "/checkpoint_" in v["Key"]
    }
    assert trials <= uploaded
    assert not any("/checkpoint_" in name for name in names)
    report = json.loads(_bucket_files(s3_server, prefix + "trials.json")[prefix + "trials.json"])
    assert report["run_dir"] == bucket_run.uri
    best = _bucket_files(s3_server, prefix + "best.yaml")[prefix + "best.yaml"].decode()
    assert f"tuner train {bucket_run.uri}/best.yaml" in best


@pytest.mark.ray
def test_best_yaml_is_read_from_its_uri_for_production_training(s3_server, bucket_run, tmp_path,
                                                                 monkeypatch):  # fmt: skip
    from tuner.handoff.best_file import load_best

    for name, value in _environment(s3_server, tmp_path / "elsewhere").items():
        monkeypatch.setenv(name, value)
    handoff = load_best(mirror.local_file(f"{bucket_run.uri}/best.yaml"), [])
    assert handoff.run_dir == bucket_run.uri and handoff.sweep == "tiny"
    with pytest.raises(UsageError, match="no such file there"):
        mirror.local_file(f"{bucket_run.uri}/no-best.yaml")


@pytest.mark.ray
def test_report_reads_the_run_from_its_uri_in_a_fresh_process(
    s3_server, bucket_run, tmp_path, monkeypatch
):
    for name, value in _environment(s3_server, tmp_path / "elsewhere").items():
        monkeypatch.setenv(name, value)  # another machine: no mirror of the run yet
    assert ray_modules_loaded_by(["report", bucket_run.uri]) == []
    folder = mirror.mirror_of(bucket_run.uri)
    assert folder.is_relative_to(tmp_path / "elsewhere")
    assert (folder / "report.md").is_file() and (folder / "sweep.yaml").is_file()
    assert not list(folder.rglob("checkpoint_*"))


@pytest.mark.ray
@pytest.mark.usefixtures("ray_shutdown")
def test_resume_from_the_uri_finds_nothing_left_to_do(s3_server, bucket_run, tmp_path, monkeypatch):
    from rich.console import Console

    from tuner.pipeline import resume_sweep_folder

    for name, value in _environment(s3_server, tmp_path / "elsewhere").items():
        monkeypatch.setenv(name, value)
    prefix = bucket_run.uri.removeprefix(f"s3://{BUCKET}/") + "/"
    before = _run_folders(s3_server, prefix)
    console = Console(record=True, width=200, force_terminal=False)
    outcome = resume_sweep_folder(bucket_run.uri, console=console)
    printed = console.export_text()
    assert f"Resuming sweep 'tiny' in {bucket_run.uri}" in printed
    assert len(outcome.run.trials) == 2 and outcome.retrain is not None
    assert "Retraining" not in printed  # the retrain had been done
    assert _run_folders(s3_server, prefix) == before  # no trial and no retrain more


def _run_folders(server: Server, prefix: str) -> set[str]:
    """The trial and retrain folders of the run at ``prefix`` in the bucket."""
    keys = [key.removeprefix(prefix) for key in _bucket_files(server, prefix)]
    return {key.split("/")[0] for key in keys if "/" in key}


@pytest.mark.ray
def test_the_secret_key_is_in_no_file_and_no_line(s3_server, bucket_run):
    secret = s3_server.secret
    forms = [secret.encode(), secret.encode().hex().encode()]  # Tune's state holds hex pickles
    files = _bucket_files(s3_server)
    mirrors = bucket_run.mirror.parents[3]  # .../mirrors/s3/BUCKET/runs/RUN
    files |= {str(p): p.read_bytes() for p in mirrors.rglob("*") if p.is_file()}
    assert len(files) > 20
    leaked = [name for name, data in files.items() if any(form in data for form in forms)]
    assert not leaked
    assert secret not in bucket_run.printed


@pytest.mark.slow
@pytest.mark.ray
def test_an_interrupted_sweep_resumes_from_the_uri_on_another_machine(
    s3_env, valid_sweep, tmp_path, write_sweep, monkeypatch
):
    """Ctrl-C mid-trial (as `tests/test_interrupt.py` sends it), then `tuner resume URI` with
    an empty mirror: the interrupted trial goes on from its checkpoint in the bucket."""
    from tests.test_interrupt import _finish, _start, _sweep, _wait_for_line
    from tuner.results.folder import load_run

    valid_sweep["resources"]["storage_path"] = f"s3://{BUCKET}/interrupted"
    valid_sweep["search"]["storage"] = f"sqlite:///{tmp_path / 'study.db'}"
    driver = _start("sweep", str(_sweep(valid_sweep, tmp_path, write_sweep)))
    lines = _wait_for_line(driver, "epoch 0.5", timeout=300)  # a checkpoint is in the bucket
    driver.send_signal(signal.SIGINT)
    output = _finish(driver, lines)
    assert driver.returncode == 130, output[-3000:]
    found = re.search(r"Resume with: tuner resume (\S+)", output)
    assert found is not None, output[-3000:]
    uri = found.group(1)
    assert uri.startswith(f"s3://{BUCKET}/interrupted/tiny-")

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "elsewhere"))
    resumed = subprocess.run(
        [sys.executable, "-m", "tuner", "resume", uri], capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    run = load_run(mirror.mirror_of(uri))
    assert len(run.trials) == 4
    assert all(trial.outcome == "completed" for trial in run.trials), resumed.stdout
    continued = [t for t in run.trials if any(r.get("resumed_at_epoch", 0) > 0 for r in t.history)]
    assert continued, output[-4000:] + resumed.stdout[-6000:]
    assert s3_env.secret not in output + resumed.stdout + resumed.stderr


@pytest.mark.slow
@pytest.mark.ray
def test_every_node_must_reach_the_bucket_with_its_own_environment(s3_env, monkeypatch):
    """A node started with a wrong key (its processes inherit the environment it started in)
    is named before any trial starts; with the right one on both nodes the check passes."""
    import ray
    from ray.cluster_utils import Cluster

    from trainables.errors import FieldError
    from tuner.running.cluster import check_shared_storage
    from tuner.spec.sweep import SweepSpec

    spec = SweepSpec.model_validate(
        {**tiny_sweep(Path("model"), {k: Path(k) for k in ("train", "validation", "test")},
                      Path("unused")),
         "resources": {"storage_path": f"s3://{BUCKET}/nodes"}}
    )  # fmt: skip
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address)
        check_shared_storage(spec)
        ray.shutdown()
        with monkeypatch.context() as wrong:
            wrong.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-0123456789")
            cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address)
        with pytest.raises(FieldError, match="not reachable from the node") as refused:
            check_shared_storage(spec)
        assert "the credentials were refused" in str(refused.value)
        assert "not-the-secret" not in str(refused.value)
    finally:
        ray.shutdown()
        cluster.shutdown()
