"""A run folder in cloud storage, read and written through a local mirror.

Ray Tune writes such a run itself, from whichever node a trial runs on: its experiment state,
the searcher's state, every trial's results and checkpoints. The driver reads and writes a
local folder instead, as for any run: the mirror, ``~/.cache/tuner/mirrors/SCHEME/BUCKET/KEY``
(under ``$XDG_CACHE_HOME`` where that is set), which a note in it (``.tuner-mirror.json``) ties
to its URI. `pull` brings the mirror up to date before the driver reads the run, leaving
checkpoints in the bucket, where only trials read them; `push` uploads what the driver wrote
there since (``sweep.yaml``, the reports, ``best.yaml``, ...), never Tune's own files back over
newer ones. Every command on one machine meets the same mirror, and with it the same driver
lock (`tuner.results.lock`). The bucket is reached as `tuner.results.buckets` opens it.
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from trainables.errors import UsageError
from trainables.secrets import mask_url
from tuner.results.buckets import is_uri, open_uri, unreachable
from tuner.results.folder import SPEC_FILE, write_atomically

MIRROR_NOTE = ".tuner-mirror.json"
"""In a mirror: the URI it mirrors, and each file's size and time here and there when last
pulled or pushed."""


def mirror_of(uri: str) -> Path:
    """The local mirror of the run folder at ``uri``, the same for every command here."""
    scheme, _, rest = uri.partition("://")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser()
    keys = [key for key in rest.split("/") if key not in ("", ".", "..")]
    return cache.joinpath("tuner", "mirrors", scheme, *keys)


def remote_of(run_dir: Path) -> str | None:
    """The URI a folder mirrors, or None for a results folder of its own."""
    uri = _read_note(run_dir).get("uri")
    return uri if isinstance(uri, str) else None


def location(run_dir: Path) -> str:
    """Where a run is, as a person names it: its URI, or its folder's absolute path."""
    return remote_of(run_dir) or str(run_dir.resolve())


def new_mirror(storage: str, name: str) -> Path:
    """The mirror of a new run folder ``name`` under the URI ``storage``.

    Raises:
        FileExistsError: a folder of that name is in the bucket, or its mirror here.
    """
    uri = f"{storage.rstrip('/')}/{name}"
    filesystem, path = open_uri(uri)
    if filesystem.get_file_info(path).type != pafs.FileType.NotFound:
        raise FileExistsError(uri)
    mirror = mirror_of(uri)
    mirror.mkdir(parents=True, exist_ok=False)
    _write_note(mirror, uri, {})
    return mirror


def local_folder(run_dir: str | Path) -> Path:
    """The folder to read a run from: a results folder as it is; for the URI of one in cloud
    storage (or for its mirror), the mirror, brought up to date first (`pull`).

    Raises:
        UsageError: the URI cannot be read, or holds no sweep's results.
    """
    if not is_uri(run_dir):
        folder = Path(run_dir).expanduser()
        uri = remote_of(folder)
        if uri is None:
            return folder
    else:
        uri = str(run_dir).rstrip("/")
    reason = unreachable(uri, writing=False)
    if reason is not None:
        raise UsageError(reason)
    filesystem, path = open_uri(uri)
    if filesystem.get_file_info(f"{path}/{SPEC_FILE}").type == pafs.FileType.NotFound:
        raise UsageError(
            f"{mask_url(uri)} holds no {SPEC_FILE}: it is not a sweep's results folder; give "
            "the folder that `tuner sweep` printed at its end"
        )
    mirror = mirror_of(uri)
    if remote_of(mirror) is None:
        mirror.mkdir(parents=True, exist_ok=True)
        _write_note(mirror, uri, {})
    pull(mirror)
    return mirror


def local_file(path: str) -> Path:
    """A file to read: a local path as it is; a URI's file downloaded into its run's mirror
    (``tuner train s3://.../best.yaml``).

    Raises:
        UsageError: the URI cannot be read, or names no file.
    """
    if not is_uri(path):
        return Path(path)
    reason = unreachable(path, writing=False)
    if reason is not None:
        raise UsageError(reason)
    filesystem, remote = open_uri(path)
    if filesystem.get_file_info(remote).type != pafs.FileType.File:
        raise UsageError(f"{mask_url(path)}: no such file there; give the URI of a file")
    local = mirror_of(path)
    _download(filesystem, remote, local)
    return local


def pull(run_dir: Path) -> None:
    """Download into a mirror every file that changed in the bucket since the last pull or
    push, but checkpoints; a file the driver changed here since stays as it is. Nothing for a
    folder that mirrors none."""
    note = _read_note(run_dir)
    if "uri" not in note:
        return
    filesystem, root = open_uri(note["uri"])
    known: dict[str, dict[str, list[int]]] = note.get("files", {})
    selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
    for info in filesystem.get_file_info(selector):
        name = posixpath.relpath(info.path, root)
        if info.type != pafs.FileType.File or not _mirrored(name):
            continue
        there, here = [info.size, info.mtime_ns], _stamp(run_dir / name)
        seen = known.get(name)
        kept = (  # unchanged there, or the driver's newer copy here
            seen is not None
            and here is not None
            and (seen["remote"] == there or seen["local"] != here)
        )
        if kept:
            continue
        _download(filesystem, info.path, run_dir / name)
        known[name] = {"local": _stamp(run_dir / name) or [], "remote": there}
    _write_note(run_dir, note["uri"], known)


def push(run_dir: Path) -> None:
    """Upload every file of a mirror that the driver wrote or changed since the last pull or
    push. Nothing for a folder that mirrors none."""
    note = _read_note(run_dir)
    if "uri" not in note:
        return
    filesystem, root = open_uri(note["uri"])
    known: dict[str, dict[str, list[int]]] = note.get("files", {})
    for local in sorted(run_dir.rglob("*")):
        name = local.relative_to(run_dir).as_posix()
        here = _stamp(local)
        if not local.is_file() or not _mirrored(name) or here is None:
            continue
        if name in known and known[name]["local"] == here:
            continue
        target = f"{root}/{name}"
        filesystem.create_dir(posixpath.dirname(target))
        pafs.copy_files(
            str(local),
            target,
            source_filesystem=pafs.LocalFileSystem(),
            destination_filesystem=filesystem,
            use_threads=False,  # Ray's note: pyarrow's threaded uploads to S3 are not safe
        )
        info = filesystem.get_file_info(target)
        known[name] = {"local": here, "remote": [info.size, info.mtime_ns]}
    _write_note(run_dir, note["uri"], known)


@contextmanager
def synced(run_dir: Path) -> Iterator[None]:
    """The bucket gets what the driver wrote in the block, however the block ends; where it
    ends in an error (Ctrl-C among them), the mirror first gets Tune's last state too, which
    the command's last line reads. Nothing for a folder that mirrors none."""
    try:
        yield
    except BaseException:
        with suppress(Exception):  # the error that ended the block is the one to report
            pull(run_dir)
            push(run_dir)
        raise
    push(run_dir)


def _mirrored(name: str) -> bool:
    """Checkpoints stay in the bucket, and bookkeeping (the lock, this note, a marker, a file
    half written) stays where it was made."""
    return not any(part.startswith((".", "checkpoint_")) for part in name.split("/"))


def _stamp(path: Path) -> list[int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return [status.st_size, status.st_mtime_ns]


def _download(filesystem: pafs.FileSystem, remote: str, local: Path) -> None:
    """One file, whole or not at all."""
    local.parent.mkdir(parents=True, exist_ok=True)
    partial = local.with_name(f".{local.name}.{uuid.uuid4().hex}")
    try:
        pafs.copy_files(remote, str(partial), source_filesystem=filesystem)
        os.replace(partial, local)
    finally:
        partial.unlink(missing_ok=True)


def _read_note(run_dir: Path) -> dict[str, Any]:
    try:
        note = json.loads((run_dir / MIRROR_NOTE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return note if isinstance(note, dict) else {}


def _write_note(run_dir: Path, uri: str, files: dict[str, dict[str, list[int]]]) -> None:
    write_atomically(run_dir / MIRROR_NOTE, json.dumps({"uri": uri, "files": files}))
