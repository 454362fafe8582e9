"""Secrets (database passwords, hub tokens) come from the environment, never from a file the
tuner writes back.

A sweep file names a secret by reference, ``${VARIABLE}``, and the reference is what the
tuner keeps in ``sweep.yaml``, ``best.yaml`` and its reports; the value is read from the
environment only where it is used (`expand`), and every value read so is blanked from the
text the tuner prints or logs (`redact`). A URL is shown with ``***`` for its password
(`mask_url`).
"""

from __future__ import annotations

import os
import re

from trainables.errors import FieldError

REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""``${VARIABLE}``: the value of an environment variable, read where it is used."""

_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)(?P<pw>[^@\s]+)@")

MASK = "***"

_expanded: set[str] = set()
"""Every secret value this process read from the environment, to blank out of its output."""

SECRET_VARIABLES = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "PGPASSWORD",
    "MYSQL_PWD",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "RAY_AUTH_TOKEN",
    "WANDB_API_KEY",
)
"""Variables the libraries read secrets from by themselves; their values are blanked too."""


def expand(value: str, field: str) -> str:
    """``value`` with each ``${VARIABLE}`` replaced by the environment's value.

    Raises:
        FieldError: a variable it names is not set.
    """

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        found = os.environ.get(name)
        if found is None:
            raise FieldError(
                field, f"${{{name}}} names an environment variable that is not set; export it"
            )
        if found:
            _expanded.add(found)
        return found

    return REFERENCE.sub(lookup, value)


def url_password(url: str) -> str | None:
    """The password a URL holds as written (``user:password@host``), or None."""
    match = _URL_PASSWORD.search(url)
    return match.group("pw") if match else None


def is_reference(value: str) -> bool:
    """Whether the value is made of environment references only (``${A}`` or ``${A}${B}``)."""
    return bool(value) and not REFERENCE.sub("", value)


def mask_url(url: str) -> str:
    """The URL with ``***`` for its password: ``postgresql://user:***@host/db``."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}@", url)


def redact(text: str) -> str:
    """``text`` without any secret: passwords in URLs, and every value `expand` read."""
    text = mask_url(text)
    known = {os.environ.get(name, "") for name in SECRET_VARIABLES}
    secrets = {value for value in _expanded | known if len(value) >= 4}
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


SHOWN_LIMIT = 80


def shown(value: object, limit: int = SHOWN_LIMIT) -> str:
    """A value as an error message quotes it: a mapping's secret keys masked, the repr cut to
    ``limit`` characters, a URL's password masked."""
    if isinstance(value, dict):
        value = {key: MASK if key in SECRET_KEYS else item for key, item in value.items()}
    text = repr(value)
    if len(text) > limit:
        text = f"{text[: limit - 3]}..."
    return mask_url(text)


SECRET_KEYS = {"hub_token", "push_to_hub_token", "token", "password"}
"""Keys whose values are masked wherever a mapping is quoted."""
