"""Reading a sweep file: YAML with line numbers, ``key.sub=value`` overrides, typed validation.

Every error becomes one line that names the file, the line, the field and what to do, so that a
person can fix it before any cluster work starts.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from trainables.errors import FieldError, UsageError
from trainables.secrets import mask_url, shown
from trainables.sections import SECRET_ARGUMENTS
from tuner.spec.sweep import SweepSpec
from tuner.spec.yaml_text import RefusedYamlError, parse_yaml, read_yaml_file

FieldPath = tuple[str, ...]
Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class SweepFile:
    """A validated sweep file and where each of its fields was written."""

    path: Path
    spec: SweepSpec
    lines: dict[FieldPath, int]
    overridden: dict[FieldPath, str] = field(default_factory=dict)

    def where(self, dotted: str) -> str:
        """Where a field was set: ``file:line``, the override that set it, or the file."""
        return _where(self.path, self.lines, self.overridden, tuple(dotted.split(".")))

    def locate(self, error: FieldError) -> UsageError:
        """The same error, prefixed with the place the field was written."""
        return locate(self.path, self.lines, self.overridden, error)


def locate(
    path: Path, lines: dict[FieldPath, int], overridden: dict[FieldPath, str], error: FieldError
) -> UsageError:
    """A field's error, prefixed with where the field was written (`load_yaml_model` gives
    ``lines`` and ``overridden``)."""
    return UsageError(f"{_where(path, lines, overridden, tuple(error.field.split('.')))}: {error}")


def load_sweep_file(path: str | Path, overrides: list[str] | None = None) -> SweepFile:
    """Parse and validate a sweep file and command-line overrides.

    Raises:
        UsageError: the file is missing or malformed, or a field is wrong; the message names
            the file, the line and the field.
    """
    spec, lines, overridden = load_yaml_model(Path(path), overrides, SweepSpec, "sweep file")
    return SweepFile(path=Path(path), spec=spec, lines=lines, overridden=overridden)


def load_yaml_model(
    path: Path, overrides: list[str] | None, schema: type[Model], kind: str
) -> tuple[Model, dict[FieldPath, int], dict[FieldPath, str]]:
    """A YAML file with ``key.sub=value`` overrides, validated as ``schema``.

    Returns:
        The validated object, the line of each field, and the override that set each field.

    Raises:
        UsageError: the file is missing or malformed, or a field is wrong.
    """
    node, raw = read_yaml_file(path, kind)
    if not isinstance(raw, dict):
        sections = ", ".join(list(schema.model_fields)[:3])
        what = "holds no settings" if raw is None else f"holds a {type(raw).__name__}"
        raise UsageError(
            f"{path}: the file {what}; a {kind} is a mapping of sections ({sections}, ...)"
        )
    lines: dict[FieldPath, int] = {}
    _collect_lines(node, (), lines)

    overridden: dict[FieldPath, str] = {}
    for override in overrides or []:
        keys, value = parse_override(override)
        _set_path(raw, keys, value, override)
        # Named in errors: a secret's value stays out of them.
        secret = keys[-1] in SECRET_ARGUMENTS
        overridden[keys] = f"{'.'.join(keys)}=***" if secret else mask_url(override)

    try:
        return schema.model_validate(raw), lines, overridden
    except ValidationError as error:
        raise UsageError(_describe(error, schema, path, raw, lines, overridden)) from None


def parse_override(text: str) -> tuple[FieldPath, Any]:
    """``search.num_trials=4`` -> (("search", "num_trials"), 4), the value read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise UsageError(
            f"override {text!r}: write it as section.key=value, e.g. search.num_trials=4"
        )
    try:
        parsed = parse_yaml(value)[1] if value else None
    except RefusedYamlError as refused:
        field = ".".join(part for part in (key, refused.field) if part)
        reason = refused.describe(in_file=False).removeprefix(f"{refused.field}: ")
        shown = text if len(text) <= 80 else f"{text[:60]}..."
        raise UsageError(f"override {shown!r}: {field}: {reason}") from None
    except (yaml.YAMLError, RecursionError):
        parsed = value  # not YAML: the text itself
    return tuple(key.split(".")), parsed


def _set_path(raw: dict[str, Any], keys: FieldPath, value: Any, override: str) -> None:
    target = raw
    for depth, key in enumerate(keys[:-1]):
        child = target.setdefault(key, {})
        if not isinstance(child, dict):
            dotted = ".".join(keys[: depth + 1])
            raise UsageError(f"override {override!r}: {dotted} is not a section with keys")
        target = child
    target[keys[-1]] = value


def _collect_lines(node: yaml.Node | None, prefix: FieldPath, lines: dict[FieldPath, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # a merge of another mapping, or a key the schema refuses anyway
            key = (*prefix, str(key_node.value))
            lines[key] = key_node.start_mark.line + 1
            _collect_lines(value_node, key, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*prefix, str(index))] = item.start_mark.line + 1
            _collect_lines(item, (*prefix, str(index)), lines)


def _where(
    path: Path, lines: dict[FieldPath, int], overridden: dict[FieldPath, str], keys: FieldPath
) -> str:
    for override_keys, override in overridden.items():
        # The override set this field, a section around it, or a key inside it.
        if override_keys[: len(keys)] == keys or keys[: len(override_keys)] == override_keys:
            return f"override {override!r}"
    for depth in range(len(keys), 0, -1):
        if keys[:depth] in lines:
            return f"{path}:{lines[keys[:depth]]}"
    return str(path)


def _describe(
    error: ValidationError,
    schema: type[BaseModel],
    path: Path,
    raw: dict[str, Any],
    lines: dict[FieldPath, int],
    overridden: dict[FieldPath, str],
) -> str:
    """The first validation error as one line; the count of others follows it."""
    # An unknown key first: a misspelt section also shows up as a missing one.
    details = sorted(error.errors(), key=lambda d: d["type"] != "extra_forbidden")
    first = details[0]
    named = (first.get("ctx") or {}).get("field")  # a whole-file check naming its field
    keys = tuple(str(named).split(".")) if named else _data_path(raw, first["loc"])
    dotted = ".".join(keys) or "(top level)"
    message = _explain(first, keys, schema)
    more = (
        f" (and {len(details) - 1} more problem(s); fix this one first)" if len(details) > 1 else ""
    )
    return f"{_where(path, lines, overridden, keys)}: {dotted}: {message}{more}"


def _data_path(raw: Any, loc: tuple[int | str, ...]) -> FieldPath:
    """The error location as keys of the file, without pydantic's own steps (union tags)."""
    keys: list[str] = []
    node = raw
    for index, item in enumerate(loc):
        child = _child(node, item)
        if child is not _ABSENT:
            node = child
            keys.append(str(item))
        elif index == len(loc) - 1 and isinstance(item, str):
            keys.append(item)  # a required key that the file lacks
    return tuple(keys)


_ABSENT = object()


def _child(node: Any, item: int | str) -> Any:
    if isinstance(node, dict):
        return node.get(item, _ABSENT)
    if isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
        return node[item]
    return _ABSENT


def _explain(detail: Any, keys: FieldPath, schema: type[BaseModel]) -> str:
    kind = detail["type"]
    value = detail.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(schema, tuple(detail["loc"][:-1]))
        hint = difflib.get_close_matches(keys[-1], allowed, n=1)
        suggestion = f"did you mean {hint[0]!r}? " if hint else ""
        return f"unknown key; {suggestion}expected one of: {', '.join(allowed)}"
    if kind == "missing":
        return "required key is missing; add it"
    if kind == "union_tag_not_found":
        return "the entry has no 'type'; give type: float, int or categorical (method for `method`)"
    message = str(detail["msg"]).removeprefix("Value error, ")
    if isinstance(value, dict | list):
        return message
    return f"{message} (got {shown(value)})"


def _allowed_keys(schema: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys the section at pydantic's `loc` accepts, for 'did you mean' hints: the walk
    goes through dict values, list items and union members (a tagged entry by its tag)."""
    annotation: Any = schema
    for item in loc:
        annotation = _step(annotation, item)
        if annotation is None:
            return []
    model = _first_model(annotation)
    return list(model.model_fields) if model is not None else []


def _step(annotation: Any, item: int | str) -> Any:
    """The annotation one step of a validation error's location below `annotation`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(item))
        return None if field is None else field.annotation
    origin = get_origin(annotation)
    arguments = get_args(annotation)
    if origin is Annotated:
        return _step(arguments[0], item)
    if origin is dict:
        return arguments[1]
    if origin in (list, tuple):
        return arguments[0]
    if origin in (Union, UnionType):
        for member in arguments:  # a tagged union names its member by the tag
            model = _first_model(member)
            if model is not None and item in (_tags(model) | {model.__name__}):
                return member
        for member in arguments:
            found = _step(member, item)
            if found is not None:
                return found
    return None


def _tags(model: type[BaseModel]) -> set[Any]:
    field = model.model_fields.get("type")
    if field is None or get_origin(field.annotation) is not Literal:
        return set()
    return set(get_args(field.annotation))


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _first_model(arg)
        if found is not None:
            return found
    return None
