"""Command lines as people type them: misspelt commands and flags, missing values, overrides
written the way other tools take them (``--key=value``, ``+key=value``, ``key = value``),
overrides that are wrong YAML or wrong values, and cluster addresses where nothing answers.
Each must end in one ``tuner: error:`` line naming the flag, the override or the address,
exit code 2, with the sweep file and the data untouched.

Flags and overrides are refused before any data is read (fast). `tuner sweep` imports Ray and
torch before it reads anything, so its cases are slow; each gets an address where no cluster
answers (unless the address is the case), so that nothing wrongly accepted starts Ray.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.hostile.cases import Hostile, Sweep, params, write
from tests.hostile.harness import Case, Expect, accepted, nowhere, refused, run_case

FILE = "sweep.yaml"
RUN = "results/tiny-20261124-011412"
TOKEN = "hf_" + "z" * 34

# The default suite keeps the sweep-file corpus; this group runs with `-m slow` (CI).
pytestmark = pytest.mark.slow


def line(*argv: str) -> Any:
    return lambda: list(argv)


def override(*values: str) -> Any:
    """``tuner validate sweep.yaml VALUES...``."""
    return line("validate", FILE, *values)


def at(field: str, *more: str, absent: tuple[str, ...] = ()) -> Expect:
    """Refused, naming the override's field."""
    return refused(field, *more, absent=absent)


CASES: list[Hostile] = [
    # --- commands and flags (argparse) --------------------------------------------------------
    Hostile("no-arguments", line(), refused("command")),
    Hostile("unknown-command", line("tune", FILE), refused("tune")),
    Hostile("uppercase-command", line("VALIDATE", FILE), refused("VALIDATE")),
    Hostile("validate-without-file", line("validate"), refused("file")),
    Hostile(
        "version-flag",
        line("--version"),
        accepted("tuner "),
    ),
    Hostile(
        "misspelt-address-flag",
        line("sweep", FILE, "--adress", "10.0.0.5:6379"),
        refused("--adress"),

    ),
    Hostile(
        "misspelt-output-flag", line("report", RUN, "--ouput", "x"), refused("--ouput"),

    ),
    Hostile(
        "top-k-not-a-number", line("retrain", RUN, "--top-k", "abc"), refused("--top-k"),

    ),
    Hostile("top-k-without-value", line("retrain", RUN, "--top-k"), refused("--top-k")),
    Hostile("seeds-a-fraction", line("retrain", RUN, "--seeds", "1.5"), refused("--seeds")),
    Hostile("output-without-value", line("train", "best.yaml", "--output"), refused("--output")),
    Hostile("short-flag-from-another-tool", override("-n", "4"), refused("-n")),
    Hostile("two-run-folders", line("report", RUN, RUN + "-2"), refused("unrecognized")),
    Hostile("address-given-to-validate", override("--address", "auto"), refused("--address")),
    Hostile("top-k-given-to-resume", line("resume", RUN, "--top-k", "1"), refused("--top-k")),
    Hostile("override-given-to-report", line("report", RUN, "search.num_trials=4"),
            refused("search.num_trials=4")),
    Hostile("override-as-a-flag", override("--search.num_trials=4"),
            refused("--search.num_trials=4")),
    Hostile("windows-style-flag", line("report", RUN, "/output:reports"),
            refused("/output:reports")),
    Hostile("help", line("--help"), accepted("validate", "sweep", "report")),
    Hostile("help-of-a-command", line("retrain", "-h"), accepted("--top-k", "--seeds")),
    # --- overrides that are no key=value -------------------------------------------------
    Hostile("override-without-equals", override("search.num_trials"),
            at("search.num_trials", "section.key=value")),
    Hostile("override-without-key", override("=4"), at("=4")),
    Hostile("override-empty-part", override("search..num_trials=4"), at("search..num_trials")),
    Hostile("override-leading-dot", override(".num_trials=4"), at(".num_trials")),
    Hostile("override-spaces-around-equals", override("search.num_trials", "=", "4"),
            at("search.num_trials")),
    Hostile("override-colon-for-equals", override("search.num_trials:4"),
            at("search.num_trials:4")),
    Hostile("override-en-dash-flag", override("\u2013address", "auto"), at("\u2013address")),
    Hostile("override-hydra-plus", override("+search.num_trials=4"), at("+search")),
    # --- overrides of the wrong key or value ---------------------------------------------
    Hostile("override-empty-value", override("search.num_trials="), at("search.num_trials")),
    Hostile("override-text-value", override("search.num_trials=many"), at("search.num_trials")),
    Hostile("override-unbalanced-yaml", override("search.num_trials=[1,2"),
            at("search.num_trials")),
    Hostile("override-into-a-value", override("name.x=1"), at("name")),
    Hostile("override-unknown-section", override("nosuch.key=1"), at("nosuch")),
    Hostile("override-misspelt-key", override("search.num_trails=4"),
            at("search.num_trails", "num_trials")),
    Hostile("override-unicode-key", override("search.num_tr\u00efals=4"),
            at("search.num_tr\u00efals")),
    Hostile("override-undefined-alias", override("search.num_trials=*n"),
            at("search.num_trials")),
    Hostile("override-nan-bound", override("search_space.learning_rate.low=.nan"),
            at("search_space.learning_rate")),
    Hostile("override-overflowing-seed", override("search.seed=1e999"), at("search.seed")),
    Hostile("override-bounds-crossed", override("search_space.learning_rate.high=1.0e-9"),
            at("search_space.learning_rate", "low <= high")),
    Hostile("override-entry-by-a-value", override("search_space.learning_rate=1e-4"),
            at("search_space.learning_rate")),
    Hostile("override-section-with-a-bad-key", override("search={num_trials: 4, bogus: 1}"),
            at("search.bogus")),
    Hostile("override-newline-in-value", override("search.num_trials=4\nname: x"),
            at("search.num_trials")),
    Hostile("override-name-emptied", override("name="), at("name")),
    Hostile("override-deep-nesting", override("training.x=" + "[" * 5000 + "]" * 5000),
            at("training.x")),
    Hostile("override-alias-bomb", override(
        "training.x=[&a [1,1,1,1,1,1,1,1,1,1], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a], "
        "&c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b], &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c], "
        "[*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]]"), at("training.x", "aliases")),
    Hostile("override-hub-token", override(f"training.hub_token={TOKEN}"),
            at("training.hub_token", absent=(TOKEN,))),
    Hostile("override-storage-password", override(
        "search.storage=postgresql://me:s3cretpass@db/optuna"),
        at("search.storage", absent=("s3cretpass",))),
    # --- what the file argument is ----------------------------------------------------------
    Hostile("empty-path", line("validate", ""), refused("no such sweep file")),
    Hostile("dash-for-stdin", line("validate", "-"), refused("-", "no such")),
    Hostile("home-path-missing", line("validate", "~/sweeps/none.yaml"), refused("none.yaml")),
]  # fmt: skip


@pytest.fixture
def sweep_file(base_sweep: Sweep, workdir: Path) -> Path:
    return write(workdir / FILE, base_sweep)


@pytest.mark.parametrize("case", params(CASES))
def test_command_line(
    case: Hostile, sweep_file: Path, workdir: Path, shared_inputs: list[Path]
) -> None:
    run_case(Case(case.make(), workdir, case.expect, watch=shared_inputs))


@pytest.mark.slow
def test_validate_a_path_with_spaces_and_unicode(
    base_sweep: Sweep, workdir: Path, shared_inputs: list[Path]
) -> None:
    path = write(workdir / "my sweeps" / "réglages – v2.yaml", base_sweep)
    run_case(
        Case(["validate", str(path.relative_to(workdir))], workdir, accepted("is valid"),
             watch=shared_inputs)
    )  # fmt: skip


# --- tuner sweep: refused before Ray (slow: the command imports Ray and torch) --------------


SWEEP_CASES: list[Hostile] = [
    Hostile("missing-file", lambda: ["missing.yaml"], refused("missing.yaml", "no such")),
    Hostile("bad-file", lambda: ["bad.yaml"], refused("bad.yaml", "search.num_trials")),
    Hostile("bad-override", lambda: [FILE, "search.num_trials=0"], refused("search.num_trials")),
    Hostile("secret-override", lambda: [FILE, f"training.hub_token={TOKEN}"],
            refused("training.hub_token", absent=(TOKEN,))),
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("case", params(SWEEP_CASES))
def test_sweep_refused_before_ray(
    case: Hostile, sweep_file: Path, base_sweep: Sweep, workdir: Path, shared_inputs: list[Path]
) -> None:
    write(workdir / "bad.yaml", {**base_sweep, "search": {"num_trials": 0}})
    argv = ["sweep", *case.make(), "--address", nowhere()]
    run_case(Case(argv, workdir, case.expect, watch=shared_inputs))


ADDRESS_ENV = {
    "ray-address-variable": lambda: {"RAY_ADDRESS": nowhere()},
    "ray-address-port-beyond-65535": lambda: {"RAY_ADDRESS": "127.0.0.1:70000"},
    "ray-address-dashboard-url": lambda: {"RAY_ADDRESS": "http://127.0.0.1:8265"},
}

MALFORMED = "not a Ray address"
MALFORMED_ADDRESSES: list[Hostile] = [
    Hostile("no-port", lambda: ["--address", "localhost"], refused("'localhost'", MALFORMED)),
    Hostile("dashboard-url", lambda: ["--address", "http://10.0.0.5:8265"],
            refused("http://10.0.0.5:8265", MALFORMED)),
    Hostile("port-zero", lambda: ["--address", "127.0.0.1:0"], refused("127.0.0.1:0", MALFORMED)),
    Hostile("port-negative", lambda: ["--address", "127.0.0.1:-1"], refused("127.0.0.1:-1")),
    Hostile("port-beyond-65535", lambda: ["--address", "127.0.0.1:99999"],
            refused("127.0.0.1:99999", MALFORMED)),
    Hostile("two-ports", lambda: ["--address", "10.0.0.5:6379:1"], refused("10.0.0.5:6379:1")),
    Hostile("space-for-colon", lambda: ["--address", "10.0.0.5 6379"], refused("10.0.0.5 6379")),
    Hostile("client-address-without-port", lambda: ["--address", "ray://10.0.0.5"],
            refused("ray://10.0.0.5")),
    Hostile("empty-address", lambda: ["--address", ""], refused("--address")),
    Hostile("ray-address-port-beyond-65535", lambda: [], refused("RAY_ADDRESS", "70000")),
    Hostile("ray-address-dashboard-url", lambda: [], refused("RAY_ADDRESS", "http://")),
]  # fmt: skip


@pytest.mark.parametrize("case", params(MALFORMED_ADDRESSES))
def test_sweep_with_a_malformed_address(
    case: Hostile, workdir: Path, shared_inputs: list[Path]
) -> None:
    """Refused before the file is read: the file named does not exist, so the address must
    be what the line is about (and nothing can reach Ray)."""
    env = ADDRESS_ENV.get(case.id, dict)()
    argv = ["sweep", "missing.yaml", *case.make()]
    run_case(Case(argv, workdir, case.expect, watch=shared_inputs, env=env))


ADDRESS_CASES: list[Hostile] = [
    Hostile("closed-port", lambda: ["--address", nowhere()], refused("--address", "127.0.0.1")),
    Hostile("unknown-host", lambda: ["--address", "no-such-head.invalid:6379"],
            refused("no-such-head.invalid")),
    Hostile("ipv6-in-brackets", lambda: ["--address", f"[::1]:{nowhere().rsplit(':')[1]}"],
            refused("--address", "[::1]")),
    Hostile("ray-address-variable", lambda: [], refused("RAY_ADDRESS")),
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("case", params(ADDRESS_CASES))
def test_sweep_with_an_address_where_nothing_answers(
    case: Hostile, sweep_file: Path, workdir: Path, shared_inputs: list[Path]
) -> None:
    """A valid file and a cluster address that cannot be joined: the file is checked and the
    data tokenized, then the address is refused before Ray connects or starts."""
    env = ADDRESS_ENV.get(case.id, dict)()
    run_case(
        Case(["sweep", FILE, *case.make()], workdir, case.expect, watch=shared_inputs, env=env)
    )
