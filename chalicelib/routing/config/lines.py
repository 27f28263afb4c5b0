"""YAML with line numbers: the document as plain data, where each of its nodes is, and problems placed at lines.

PyYAML's safe loader without YAML 1.1's surprises (``18:00`` stays a string, ``no`` is not false), guarded
against alias bombs and recursive anchors. Every node's path (``("rules", 0, "queue")``) maps to its line, so
a schema error or a cross-field check is reported where the ops person has to look.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from chalicelib.routing.config.problems import ConfigError, Problem

# Guards against alias bombs and recursive anchors in a YAML document.
_MAX_NODES = 50_000
_MAX_DEPTH = 40

Path_ = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """YAML without the 1.1 surprises: ``18:00`` stays a string (not 1080), ``no`` is not false, dates stay text."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag.rsplit(":", 1)[-1] not in {"bool", "int", "float", "timestamp"}
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|false|True|False|TRUE|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+.0123456789"),
)


class _TooLarge(Exception):
    """A document with too many nodes (aliases multiply them) or nested too deep, recursive anchors included."""


def load_yaml(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    """The document as plain data, and the line of every node in it by path; ``ConfigError`` if it is no YAML."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: dict[Path_, int] = {(): node.start_mark.line + 1}
        problems: list[Problem] = []
        _map_lines(node, (), lines, problems, [0], set())
        if problems:
            raise ConfigError.from_problems(source, problems)
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        # Only PyYAML's description, not its snippet of the document.
        what = ": ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise ConfigError.from_problems(source, [Problem(line, "", f"not valid YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError.from_problems(source, [Problem(None, "", f"not valid YAML: {type(exc).__name__}")]) from None
    except _TooLarge:
        message = f"too large or recursive (at most {_MAX_NODES} nodes, nested {_MAX_DEPTH} deep)"
        raise ConfigError.from_problems(source, [Problem(None, "", message)]) from None
    finally:
        loader.dispose()


def _map_lines(
    node: yaml.Node, path: Path_, lines: dict[Path_, int], problems: list[Problem], count: list[int], active: set[int]
) -> None:
    """Record the line of every node under ``path``; report duplicate keys, recursion and alias bombs."""
    count[0] += 1
    if count[0] > _MAX_NODES or len(path) > _MAX_DEPTH or id(node) in active:
        raise _TooLarge
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged.extend(value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node])
                continue
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(Problem(line, render_path((*path, key)), f"duplicate key (first on line {seen[key]})"))
                continue
            seen[key] = line
            lines[(*path, key)] = line
            _map_lines(value_node, (*path, key), lines, problems, count, active)
        for merged_node in merged:  # explicit keys win over merged ones, as in the constructor
            if isinstance(merged_node, yaml.MappingNode):
                for key_node, value_node in merged_node.value:
                    key = str(key_node.value)
                    if key not in seen:
                        seen[key] = key_node.start_mark.line + 1
                        lines[(*path, key)] = seen[key]
                        _map_lines(value_node, (*path, key), lines, problems, count, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _map_lines(item, (*path, index), lines, problems, count, active)
    active.discard(id(node))


def render_path(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def line_of(lines: Mapping[Path_, int], path: Path_) -> int | None:
    """The line of ``path``, or of its nearest ancestor present in the document."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def pydantic_problems(exc: ValidationError, lines: Mapping[Path_, int], schema: type[BaseModel]) -> list[Problem]:
    """pydantic's errors as problems at the lines of the document they are about (``schema``: the root model)."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        path: Path_ = ()
        for part in error["loc"]:
            # Keep the parts that are in the document; pydantic adds its own (union members, "[key]").
            candidates = (part, str(part)) if isinstance(part, int) else (part,)
            found = next((c for c in candidates if (*path, c) in lines), None)
            if found is not None:
                path = (*path, found)
        shown, message = path, error["msg"]
        if error["type"] == "missing" and error["loc"]:
            shown = (*path, error["loc"][-1])
        if error["type"] == "extra_forbidden":
            known = _known_keys(error["loc"], schema)
            message = f"unknown key (expected one of: {', '.join(known)})" if known else "unknown key"
        problems.append(Problem(line_of(lines, path), render_path(shown), message))
    # One error per place is enough (a union reports each member's complaint).
    unique = {(p.line, p.field): p for p in reversed(problems)}
    return list(unique.values())


def _known_keys(loc: tuple[str | int, ...], schema: type[BaseModel]) -> list[str]:
    """The keys allowed beside the unknown one at ``loc``, found by following ``loc`` through the schema."""
    current: Any = schema
    for part in loc[:-1]:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field_info = current.model_fields.get(str(part))
            if field_info is None:
                return []
            current = field_info.annotation
        elif get_origin(current) in (list, dict):
            current = get_args(current)[-1]
        else:
            return []
    current = _unwrap(current)
    return list(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def _unwrap(annotation: Any) -> Any:
    """``X`` out of ``Annotated[X, ...]`` and ``X | None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
