"""Run the real ``tuner`` console script on one hostile input and check what every case must
show: the exit code, one ``tuner: error:`` line naming the field or file (or a clean success),
no traceback, and no file touched that the command had no business touching.

Every case of the corpus goes through `run_case`; the modules only say what the input is and
what the command should answer.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "tuner: error:"
TIMEOUT_S = 120
"""A case that runs longer than this hangs; it fails instead of blocking the run."""
MAX_ERROR_CHARS = 2000
"""An error line longer than this is no message a person reads (a value echoed whole)."""


@dataclass(frozen=True)
class Expect:
    """What the command must answer.

    ``code`` 2: stderr is exactly one ``tuner: error:`` line holding each of ``says``, and
    ``absent`` appears nowhere (a secret, say). ``code`` 0: stdout holds each of ``says``.
    ``may_create``: glob patterns (relative to a watched root) of files the command may add.
    """

    code: int
    says: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    may_create: tuple[str, ...] = ()


def refused(*says: str, absent: Sequence[str] = (), may_create: Sequence[str] = ()) -> Expect:
    """Exit code 2 with one error line holding every one of ``says``."""
    return Expect(code=2, says=says, absent=tuple(absent), may_create=tuple(may_create))


def accepted(*says: str, may_create: Sequence[str] = ()) -> Expect:
    """Exit code 0, stdout holding every one of ``says``."""
    return Expect(code=0, says=says, may_create=tuple(may_create))


@dataclass(frozen=True)
class Outcome:
    argv: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    seconds: float

    def describe(self) -> str:
        """The command and what it printed, for a failing case's message."""
        out = self.stdout[-1500:]
        return (
            f"\n$ tuner {' '.join(self.argv)}\nexit {self.code} after {self.seconds:.1f}s"
            f"\n--- stderr ---\n{self.stderr[-3000:]}\n--- stdout (tail) ---\n{out}"
        )


def tuner_env(extra: dict[str, str] | None = None, scratch: Path | None = None) -> dict[str, str]:
    """The environment of a case: offline (no hub lookups), joined to no Ray cluster, and
    a private temporary folder, so that nothing of a case lands in the shared /tmp."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "PYTEST"))}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONDONTWRITEBYTECODE="1",
        COLUMNS="200",
    )
    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(scratch)
    env.update(extra or {})
    return env


def run_tuner(
    argv: Sequence[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = TIMEOUT_S,
) -> Outcome:
    """``python -m tuner ARGV`` in a fresh process; a hang is a failure after ``timeout``."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tuner", *argv],
            cwd=cwd,
            env=env if env is not None else tuner_env(),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout or ""
        err = expired.stderr or ""
        raise AssertionError(
            f"tuner {' '.join(argv)} hung: no answer within {timeout:.0f}s"
            f"\n--- stderr ---\n{err if isinstance(err, str) else err.decode(errors='replace')}"
            f"\n--- stdout ---\n{out if isinstance(out, str) else out.decode(errors='replace')}"
        ) from None
    return Outcome(
        argv=tuple(argv),
        code=done.returncode,
        stdout=done.stdout,
        stderr=done.stderr,
        seconds=time.monotonic() - started,
    )


Snapshot = dict[Path, tuple[str, int]]
"""Each path under the watched roots: (sha256 or "<dir>" or "<link>", mtime in ns)."""


def snapshot(roots: Iterable[Path]) -> Snapshot:
    """Every file, folder and link under ``roots`` with its content hash and mtime."""
    seen: Snapshot = {}
    for root in roots:
        if not root.exists() and not root.is_symlink():
            continue
        paths = [root, *root.rglob("*")] if root.is_dir() else [root]
        for path in paths:
            if path.is_symlink():
                seen[path] = (f"<link {os.readlink(path)}>", 0)
            elif path.is_dir():
                seen[path] = ("<dir>", 0)  # a folder's mtime follows what it holds
            elif path.is_file():
                stat = path.stat()
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                seen[path] = (digest, stat.st_mtime_ns)
            else:
                seen[path] = ("<special>", 0)
    return seen


def _relative(path: Path, roots: Sequence[Path]) -> str:
    for root in roots:
        if path == root or root in path.parents:
            return path.relative_to(root).as_posix()
    return path.as_posix()


def changes(
    before: Snapshot, after: Snapshot, roots: Sequence[Path], may_create: Sequence[str]
) -> list[str]:
    """What the command did to the watched files that it should not have."""
    found = []
    for path, (digest, mtime) in before.items():
        if path not in after:
            found.append(f"removed {path}")
        elif after[path] != (digest, mtime):
            found.append(f"changed {path}")
    for path in after.keys() - before.keys():
        name = _relative(path, roots)
        allowed = any(fnmatch.fnmatch(name, pattern) for pattern in may_create)
        # A folder that only holds what may be created may be created too.
        if not allowed and after[path][0] == "<dir>":
            inside = [p for p in after if path in p.parents]
            allowed = all(
                after[p][0] == "<dir>"
                or any(fnmatch.fnmatch(_relative(p, roots), g) for g in may_create)
                for p in inside
            ) and bool(may_create)
        if not allowed:
            found.append(f"created {path}")
    return sorted(found)


def check(outcome: Outcome, expect: Expect) -> None:
    """The answer every case must give; raises AssertionError with the whole story."""
    story = outcome.describe()
    for stream, text in (("stdout", outcome.stdout), ("stderr", outcome.stderr)):
        assert "Traceback" not in text, f"a traceback on {stream}{story}"
    assert outcome.code == expect.code, f"exit code {outcome.code}, expected {expect.code}{story}"
    if expect.code == 0:
        for fragment in expect.says:
            assert fragment in outcome.stdout, f"stdout lacks {fragment!r}{story}"
        return
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1, f"stderr has {len(lines)} lines, expected one{story}"
    line = lines[0]
    assert line.startswith(PREFIX), f"the error line does not start with {PREFIX!r}{story}"
    assert line.removeprefix(PREFIX).strip(), f"an empty error message{story}"
    assert len(line) <= MAX_ERROR_CHARS, f"an error line of {len(line)} characters{story}"
    for fragment in expect.says:
        assert fragment in line, f"the error line lacks {fragment!r}{story}"
    for secret in expect.absent:
        assert secret not in outcome.stderr + outcome.stdout, f"{secret!r} was printed{story}"


@dataclass
class Case:
    """One hostile input: the command line, where it runs, what it may touch."""

    argv: list[str]
    cwd: Path
    expect: Expect
    watch: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = TIMEOUT_S


def run_case(case: Case) -> Outcome:
    """Snapshot the watched files, run the command, check its answer and the files."""
    roots = sorted({*case.watch, case.cwd})
    before = snapshot(roots)
    env = tuner_env(case.env, scratch=case.cwd.parent / f"{case.cwd.name}-tmp")
    outcome = run_tuner(case.argv, case.cwd, env, case.timeout)
    check(outcome, case.expect)
    touched = changes(before, snapshot(roots), roots, case.expect.may_create)
    assert not touched, (
        "files changed that should not have: " + "; ".join(touched) + (outcome.describe())
    )
    return outcome


def closed_port() -> int:
    """A loopback TCP port that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def nowhere() -> str:
    """An address where no Ray cluster answers: given to every command that could start
    Ray, so that an input the tuner wrongly accepts ends at the cluster check instead of
    starting a sweep."""
    return f"127.0.0.1:{closed_port()}"
