"""Errors that mean "the input is wrong": the command line prints them on one line and exits 2.

Defined in `trainables.errors`, below both layers, since the training step raises them too.
"""

from __future__ import annotations

from trainables.errors import FieldError as FieldError
from trainables.errors import UsageError as UsageError
