"""The Optuna study in a real PostgreSQL server that the test starts, and concurrent writers to
one study (PostgreSQL and SQLite) that never lock each other out."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import optuna
import pytest

from tests.conftest import free_port, sweep_in_process
from tuner.search.study import open_storage

WRITERS, TRIALS_EACH = 4, 15


def _server_binary(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


PASSWORD = "pg-Planted-s3cret"
TOKEN = "hf_PlantedToken0123456789"


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server on a loopback port; its SQLAlchemy URL. Over TCP it asks
    the password `PASSWORD`, which the URL leaves out (see `test_no_secret_reaches_...`); the
    unix socket trusts, and sets it."""
    pytest.importorskip("psycopg2", reason="psycopg2 is missing: pip install -e .[postgres]")
    initdb, pg_ctl = _server_binary("initdb"), _server_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    # PostgreSQL refuses to run as root: run it as the postgres user the package creates.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="tuner-pg-"))
    if as_user:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", free_port()
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-U", "tuner", "--auth-local=trust",
         "--auth-host=scram-sha-256"],
        check=True, capture_output=True,
    )  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    start = [pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]
    subprocess.run([*as_user, *start], check=True, capture_output=True)
    psql = _server_binary("psql") or "psql"
    subprocess.run(
        [*as_user, psql, "-h", str(folder), "-p", str(port), "-U", "tuner", "-d", "postgres",
         "-c", f"ALTER USER tuner PASSWORD '{PASSWORD}'"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield f"postgresql+psycopg2://tuner:${{TUNER_TEST_PG_PASSWORD}}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], check=False)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _password_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNER_TEST_PG_PASSWORD", PASSWORD)


def _opened(url: str) -> str:
    """The URL as the libraries take it, the password read from the environment."""
    return url.replace("${TUNER_TEST_PG_PASSWORD}", PASSWORD)


@pytest.mark.ray
def test_sweeps_keep_and_continue_their_study_in_postgresql(postgres, valid_sweep):
    valid_sweep["training"]["num_train_epochs"] = 1
    valid_sweep["search"].update(
        num_trials=2, n_startup_trials=1, storage=postgres, study_name="team"
    )
    valid_sweep["scheduler"] = {"type": "none"}
    sweep_in_process(valid_sweep)
    sweep_in_process(valid_sweep)  # the same study name: it goes on with the first sweep's trials
    study = optuna.load_study(study_name="team", storage=_opened(postgres))
    assert len(study.trials) == 4
    assert all(trial.state.name == "COMPLETE" for trial in study.trials)
    assert set(study.trials[0].params) == set(valid_sweep["search_space"])


def _write_trials(url: str, study_name: str, writer: int) -> int:
    """One writer process: ask and tell TRIALS_EACH trials, as a sweep's driver does."""
    study = optuna.load_study(study_name=study_name, storage=open_storage(url))
    space = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    for _ in range(TRIALS_EACH):
        trial = study.ask(space)
        study.tell(trial, trial.params["x"] + writer)
    return TRIALS_EACH


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_concurrent_writers_to_one_study_never_lock_each_other_out(database, request, tmp_path):
    url = (
        request.getfixturevalue("postgres")
        if database == "postgresql"
        else f"sqlite:///{tmp_path / 'study.db'}"
    )
    name = f"shared-{database}"
    optuna.create_study(study_name=name, storage=open_storage(url))
    with ProcessPoolExecutor(WRITERS) as pool:  # separate processes, separate connections
        written = list(pool.map(_write_trials, [url] * WRITERS, [name] * WRITERS, range(WRITERS)))
    assert written == [TRIALS_EACH] * WRITERS  # no writer failed ("database is locked")
    trials = optuna.load_study(study_name=name, storage=open_storage(url)).trials
    assert len(trials) == WRITERS * TRIALS_EACH
    assert len({trial.number for trial in trials}) == len(trials)
    assert all(trial.state.name == "COMPLETE" for trial in trials)


@pytest.mark.ray
def test_no_secret_reaches_a_file_or_a_line_of_output(postgres, valid_sweep, write_sweep):
    """A database password (read from the environment by reference) and a hub token (in
    HF_TOKEN) are planted; a whole sweep with its retrain, a report and an error later, no
    file in the results folder and no line of output holds either."""
    valid_sweep["training"]["num_train_epochs"] = 1
    valid_sweep["search"].update(num_trials=2, n_startup_trials=1, storage=postgres)
    valid_sweep["scheduler"] = {"type": "none"}
    valid_sweep["retrain"] = {"enabled": True, "top_k": 1, "seeds": 1}
    path = write_sweep(valid_sweep)
    env = {**os.environ, "TUNER_TEST_PG_PASSWORD": PASSWORD, "HF_TOKEN": TOKEN}
    tuner = [sys.executable, "-m", "tuner"]
    runs = [subprocess.run([*tuner, "sweep", str(path)], capture_output=True, text=True,
                           env=env, timeout=900)]  # fmt: skip
    assert runs[0].returncode == 0, runs[0].stdout[-3000:] + runs[0].stderr[-3000:]
    (run_dir,) = Path(valid_sweep["resources"]["storage_path"]).glob("tiny-*")
    assert (run_dir / "best.yaml").is_file()
    for args in (
        ["report", str(run_dir)],
        [
            "validate",
            str(path),
            "search.storage="
            + postgres.replace("127.0.0.1", "127.0.0.1:1").rsplit(":", 1)[0]
            + "/x",
        ],
    ):
        runs.append(subprocess.run([*tuner, *args], capture_output=True, text=True, env=env,
                                   timeout=300))  # fmt: skip
    assert runs[-1].returncode == 2 and "cannot open the study database" in runs[-1].stderr
    output = "".join(run.stdout + run.stderr for run in runs)
    files = [file for file in run_dir.rglob("*") if file.is_file()]
    assert len(files) > 20
    for secret in (PASSWORD, TOKEN):
        assert secret not in output
        leaked = [str(file) for file in files if secret.encode() in file.read_bytes()]
        assert not leaked, f"{secret} written to {leaked}"
    assert "${TUNER_TEST_PG_PASSWORD}" in (run_dir / "sweep.yaml").read_text()
