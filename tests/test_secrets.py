"""Secrets come from the environment and never reach a file or a line of output: a password in
a study URL and a hub token in the file are refused, references are read where they are used,
and what is printed or logged is blanked."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from trainables.errors import FieldError
from trainables.secrets import expand, mask_url, redact
from tuner.search.study import open_storage

TUNER = [sys.executable, "-m", "tuner"]
PASSWORD = "s3cret-Planted-pw"
TOKEN = "hf_PlantedTokenValue123"


def _validate(path: Path, *overrides: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [*TUNER, "validate", str(path), *overrides],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def test_a_password_in_the_study_url_is_refused_without_being_printed(valid_sweep, write_sweep):
    valid_sweep["search"]["storage"] = f"postgresql://tuner:{PASSWORD}@127.0.0.1:5/studies"
    result = _validate(write_sweep(valid_sweep))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "search.storage" in line and "${VARIABLE}" in line and "PGPASSWORD" in line
    assert PASSWORD not in result.stdout + result.stderr
    assert "tuner:***@" in line


def test_a_hub_token_in_the_file_is_refused(valid_sweep, write_sweep):
    valid_sweep["training"]["hub_token"] = TOKEN
    result = _validate(write_sweep(valid_sweep))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "training.hub_token" in line and "HF_TOKEN" in line
    assert TOKEN not in result.stdout + result.stderr


def test_a_hub_token_as_an_override_is_refused_too(valid_sweep, write_sweep):
    result = _validate(write_sweep(valid_sweep), f"training.hub_token={TOKEN}")
    assert result.returncode == 2 and TOKEN not in result.stdout + result.stderr


def test_an_unreachable_database_is_named_without_its_password(valid_sweep, write_sweep):
    valid_sweep["search"]["storage"] = "postgresql://tuner:${TUNER_TEST_DB_PW}@127.0.0.1:9/x"
    env = {"TUNER_TEST_DB_PW": PASSWORD, "PATH": "/usr/bin:/bin"}
    result = _validate(write_sweep(valid_sweep), env=env)
    assert result.returncode == 2, result.stderr
    assert "search.storage" in result.stderr and "cannot open the study database" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_a_reference_to_an_unset_variable_is_named(valid_sweep, write_sweep):
    valid_sweep["search"]["storage"] = "postgresql://tuner:${TUNER_TEST_UNSET}@127.0.0.1:9/x"
    result = _validate(write_sweep(valid_sweep), env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "${TUNER_TEST_UNSET}" in result.stderr and "not set" in result.stderr


def test_expand_reads_the_environment_and_redact_blanks_what_it_read(monkeypatch):
    monkeypatch.setenv("TUNER_TEST_SECRET", PASSWORD)
    url = "postgresql://u:${TUNER_TEST_SECRET}@host/db"
    assert expand(url, "search.storage") == f"postgresql://u:{PASSWORD}@host/db"
    assert redact(f"failed: {PASSWORD} at postgresql://u:{PASSWORD}@host/db") == (
        "failed: *** at postgresql://u:***@host/db"
    )
    assert mask_url("mysql://root:hunter2@h/db") == "mysql://root:***@h/db"
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    monkeypatch.delenv("TUNER_TEST_SECRET")
    with pytest.raises(FieldError, match=r"\$\{TUNER_TEST_SECRET\}"):
        expand(url, "search.storage")


def test_the_study_storage_pickles_its_reference_not_the_password(tmp_path, monkeypatch):
    """Tune keeps the searcher (and its study's storage) pickled in the results folder."""
    monkeypatch.setenv("TUNER_TEST_DB_FILE", str(tmp_path / "study.db"))
    storage = open_storage("sqlite:///${TUNER_TEST_DB_FILE}")
    data = pickle.dumps(storage)
    assert str(tmp_path).encode() not in data and b"${TUNER_TEST_DB_FILE}" in data
    restored = pickle.loads(data)
    assert restored.get_all_studies() == []  # it opened the real file again
