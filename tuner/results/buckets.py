"""A URI in cloud storage (``s3://``, ``gs://``, any that pyarrow opens): opening it as Ray
Tune opens it, and telling within seconds whether this machine can write there.

Credentials, endpoint and region come from the environment only, where pyarrow and Tune read
them (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``,
``AWS_DEFAULT_REGION``; ``GOOGLE_APPLICATION_CREDENTIALS``); a URI that holds a key or an
option is refused, since ``sweep.yaml`` keeps the URI.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow
import pyarrow.fs as pafs

from trainables.errors import FieldError
from trainables.secrets import mask_url, redact

CHECK_TIMEOUT_S = 10
"""How long a check waits for the storage service to answer, once: no minute of retries."""

_ENDPOINTS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
"""Where an S3-compatible service other than AWS answers, the first set winning (as pyarrow
and the AWS tools read them)."""

_HINTS = {
    "s3": ("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"),
    "gs": ("GOOGLE_APPLICATION_CREDENTIALS", "the network"),
}
"""Per scheme: the variables that give credentials, and what to check when nothing answers."""

_DENIED = ("ACCESS_DENIED", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
           "HTTP status 403", "Forbidden", "ExpiredToken", "InvalidToken", "PERMISSION_DENIED",
           "UNAUTHENTICATED")  # fmt: skip
_SILENT = ("NETWORK_CONNECTION", "curlCode", "Timeout", "timed out", "Could not connect",
           "Could not resolve", "Connection refused", "UNAVAILABLE")  # fmt: skip
_MISSING = ("NO_SUCH_BUCKET", "NoSuchBucket", "does not exist")


def is_uri(location: str | Path) -> bool:
    """Whether a storage path or run folder names a place by URI rather than a local folder."""
    return "://" in str(location)


def open_uri(uri: str) -> tuple[pafs.FileSystem, str]:
    """The file system and path a URI names, opened as Ray Tune opens it (pyarrow's
    ``FileSystem.from_uri``, which reads credentials, endpoint and region from the
    environment), so that the driver and the trials see the same place."""
    return pafs.FileSystem.from_uri(uri)


def check_reachable(uri: str, field: str) -> None:
    """This machine can write under ``uri``, as every trial will (`unreachable`).

    Raises:
        FieldError: naming ``field``, why it cannot and what to do.
    """
    reason = unreachable(uri)
    if reason is not None:
        raise FieldError(field, reason)


def unreachable(uri: str, *, writing: bool = True) -> str | None:
    """Why this machine cannot write under ``uri`` (or read there, not ``writing``), None where
    it can, found within seconds: a URI that would write a secret or an option into
    ``sweep.yaml``, a scheme pyarrow does not know, a bucket that does not exist, credentials
    refused, an endpoint that does not answer. To tell it can write, it writes a marker file
    there and deletes it again, as Tune does before a run."""
    shown = mask_url(uri)
    parts = urlsplit(uri)
    if "@" in parts.netloc:
        return (
            f"{shown}: credentials in the URI would be written to sweep.yaml; give them in the "
            "environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and write SCHEME://BUCKET/PATH"
        )
    if parts.query or parts.fragment:
        return (
            f"{shown}: options in the URI are not taken; give the endpoint and region in the "
            "environment (AWS_ENDPOINT_URL, AWS_DEFAULT_REGION) and write SCHEME://BUCKET/PATH"
        )
    try:
        filesystem, path = _checking_filesystem(uri)
    except (pyarrow.ArrowInvalid, pyarrow.ArrowNotImplementedError, ValueError) as error:
        return _not_opened(uri, error)
    except OSError as error:  # resolving the bucket's region asked the service already
        return _why(uri, error)
    try:
        if parts.scheme in _HINTS:
            bucket = path.split("/")[0]
            if filesystem.get_file_info(bucket).type == pafs.FileType.NotFound:
                return _missing(uri)
        if not writing:
            filesystem.get_file_info(path)
            return None
        filesystem.create_dir(path)
        marker = f"{path.rstrip('/')}/.tuner-storage-check-{uuid.uuid4().hex}"
        with filesystem.open_output_stream(marker):
            pass
        filesystem.delete_file(marker)
    except OSError as error:
        return _why(uri, error)
    return None


def _checking_filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The file system for a check: one attempt, seconds of patience. Tune's own (`open_uri`)
    retries for a minute and more where the endpoint does not answer."""
    scheme, _, path = uri.partition("://")
    if scheme == "s3":
        endpoint = _endpoint()
        options: dict[str, Any] = {}
        if endpoint is not None:
            options["endpoint_override"] = endpoint
            region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        else:  # AWS itself answers only in the bucket's own region
            region = pafs.resolve_s3_region(path.split("/")[0])
        if region:
            options["region"] = region
        filesystem: pafs.FileSystem = pafs.S3FileSystem(
            connect_timeout=CHECK_TIMEOUT_S / 2,
            request_timeout=CHECK_TIMEOUT_S,
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1),
            **options,
        )
        return filesystem, path.rstrip("/")
    if scheme in ("gs", "gcs"):
        return pafs.GcsFileSystem(retry_time_limit=timedelta(seconds=CHECK_TIMEOUT_S)), path
    return open_uri(uri)


def _endpoint() -> str | None:
    return next((os.environ[name] for name in _ENDPOINTS if os.environ.get(name)), None)


def _not_opened(uri: str, error: Exception) -> str:
    scheme = uri.partition("://")[0]
    if "Unrecognized filesystem type" in str(error):
        return (
            f"{mask_url(uri)}: pyarrow knows no file system for the scheme {scheme!r}; use "
            "s3://BUCKET/PATH, gs://BUCKET/PATH or a folder that every node mounts"
        )
    return f"{mask_url(uri)}: pyarrow cannot open it ({_first_line(error)})"


def _why(uri: str, error: OSError) -> str:
    """One line from a storage service's error: what went wrong and what to set."""
    text = str(error)
    scheme = uri.partition("://")[0]
    credentials, endpoint = _HINTS.get(scheme, ("the storage's credentials", "the network"))
    if scheme == "s3" and _endpoint() is None:
        endpoint = "the network, or set AWS_ENDPOINT_URL for a service other than AWS"
    shown, detail = mask_url(uri), _first_line(error)
    if any(sign in text for sign in _MISSING) or "not found" in text.lower():
        return _missing(uri)
    if any(sign in text for sign in _DENIED):
        return (
            f"{shown}: the credentials were refused ({detail}); set {credentials} in the "
            "environment to a key that may read and write there"
        )
    if any(sign in text for sign in _SILENT):
        return (
            f"{shown}: the storage service did not answer within {CHECK_TIMEOUT_S}s "
            f"({detail}); check {endpoint}"
        )
    return f"{shown}: cannot write there ({detail})"


def _missing(uri: str) -> str:
    bucket = uri.partition("://")[2].split("/")[0]
    return f"{mask_url(uri)}: the bucket {bucket!r} does not exist; create it, or fix the name"


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return redact(" ".join(lines[0].split()) if lines else type(error).__name__)[:200]
