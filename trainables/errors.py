"""Errors that mean "the input is wrong": the command line prints them on one line and exits 2."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input that the person can fix; the message is one line that says what and how."""


class FieldError(UsageError):
    """Bad input traced to one field of the sweep file, such as ``data.text_column``.

    Code far from the YAML file (data loading, say) raises it with the dotted field name; the
    command line adds the file and line where that field was written.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class MethodError(ValueError):
    """A fine-tuning method setting is out of range, or the method cannot be applied to this
    model."""
