"""The command line's own bad input: unknown commands and flags, values of the wrong type and
malformed cluster addresses are one line and exit code 2, before Ray is imported."""

from __future__ import annotations

import pytest

from trainables.errors import UsageError
from tuner.cli import EXIT_BAD_INPUT, check_address, main


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "required: command"),
        (["sweep", "x.yaml", "--bogus"], "unrecognized arguments: --bogus"),
        (["retrain", "run", "--top-k", "two"], "--top-k: invalid int value: 'two'"),
        (["report"], "required: run_dir"),
        (["sweep", "x.yaml", "--address", "10.0.0.5"], "--address '10.0.0.5': not a Ray address"),
        (["resume", "run", "--address", "http://h:8265"], "not a Ray address"),
        (["retrain", "run", "--address", "h:99999"], "not a Ray address"),
    ],
)
def test_bad_command_lines_are_one_line_and_exit_2(argv, named, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's way out
        code = exit_.code
    assert code == EXIT_BAD_INPUT
    out, err = capsys.readouterr()
    (line,) = err.strip().splitlines()
    assert line.startswith("tuner: error: ") and named in line and not out


@pytest.mark.parametrize("address", ["auto", "10.0.0.5:6379", "head-node:6379", "ray://h:10001",
                                     "[::1]:6379"])  # fmt: skip
def test_ray_addresses_pass(address):
    check_address(address, "--address")


def test_ray_address_from_the_environment_is_named_so(monkeypatch, capsys):
    monkeypatch.setenv("RAY_ADDRESS", "not an address")
    assert main(["sweep", "x.yaml"]) == EXIT_BAD_INPUT
    assert "RAY_ADDRESS 'not an address': not a Ray address" in capsys.readouterr().err
    with pytest.raises(UsageError):
        check_address("", "--address")
