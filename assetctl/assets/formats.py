"""Parsing JSON, JSON lines and YAML one value at a time, each with where it starts.

Every reader yields `(where, value)` pairs: `where` is `:LINE` when the line is known
(JSON lines, YAML, JSON arrays) and empty for a file that is one JSON value. A JSON
array is read element by element, so a large file never sits in memory whole. Values
are only what JSON can carry (no NaN or Infinity, YAML dates stay text, keys are text).
Errors are `InputError`s naming the file and line; what the values must look like is
the caller's business (`inputs.py`).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator
from typing import IO, Any

import yaml

from assetctl.errors import InputError

CHUNK = 1 << 16  # characters read at a time from a JSON array
_SPACE = re.compile(r"[ \t\n\r]*")


class _BadNumber(ValueError):
    """A number Python's json would read but an API cannot take (NaN, 1e999)."""


def _no_constant(name: str) -> Any:
    raise _BadNumber(name)


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _BadNumber(text)
    return value


# Python's json reads NaN, Infinity and 1e999 (as inf) and then writes `Infinity`,
# which is not JSON: APIs reject it. Numbers are refused here, where the line is known.
CONSTANTS = ("NaN", "Infinity", "-Infinity")
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[-+.\w]+')  # a string, or a bare word
_INTEGER = re.compile(r"-?\d+")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def loads(text: str) -> Any:
    """One JSON value; `ValueError` for bad JSON or a number an API cannot take."""
    return _DECODER.decode(text)


def number_problem(token: str) -> str | None:
    """Why a bare JSON token cannot be sent (NaN, 1e999, 5,000 digits), or None."""
    if token in CONSTANTS:
        return f"not valid JSON: {token} is not a number JSON allows"
    if _INTEGER.fullmatch(token):
        limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
        digits = len(token.lstrip("-"))
        if limit and digits > limit:
            return f"an integer of {digits} digits is too long (at most {limit})"
        return None
    if _NUMBER.fullmatch(token) and math.isinf(float(token)):
        return f"{token} is too large for a number (it would be sent as Infinity)"
    return None


def bad_number(text: str, start: int = 0) -> tuple[int, str] | None:
    """Where (an offset in `text`) and why the first number an API cannot take is."""
    for match in _TOKEN.finditer(text, start):
        problem = number_problem(match.group())
        if problem:
            return match.start(), problem
    return None


def _bad_number(text: str, start: int, exc: ValueError) -> tuple[int, str]:
    return bad_number(text, start) or (start, f"not valid JSON: {exc}")


def json_lines(stream: IO[str], name: str) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield f":{number}", _DECODER.decode(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}:{number}: not valid JSON: {exc.msg}") from exc
        except ValueError as exc:
            _, problem = _bad_number(line, 0, exc)
            raise InputError(f"{name}:{number}: {problem}") from exc


def json_values(stream: IO[str], name: str) -> Iterator[tuple[str, Any]]:
    """A JSON file: the elements of a top-level array one by one, else its one value."""
    head = stream.read(CHUNK)
    start = _SPACE.match(head).end()  # type: ignore[union-attr]
    if head[start : start + 1] == "[":
        yield from _JsonArray(stream, name, head, start + 1).elements()
        return
    text = head + stream.read()
    try:
        yield "", _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    except ValueError as exc:
        where, problem = _bad_number(text, 0, exc)
        line = text.count("\n", 0, where) + 1
        raise InputError(f"{name}:{line}: {problem}") from exc


class _JsonArray:
    """Decodes one array element at a time from a sliding buffer (stdlib only).

    `raw_decode` fails on an element cut by the end of the buffer, so more is read
    and it is tried again (reads double, so a huge element costs O(n log n)). A
    value that ends exactly at the buffer's end may be a number cut short (`12|34`):
    it is tried again with more text too.
    """

    def __init__(self, stream: IO[str], name: str, head: str, pos: int) -> None:
        self.stream, self.name = stream, name
        self.buffer, self.pos = head, pos
        self.line, self.line_pos = 1, 0  # `line` is the line at buffer[line_pos]
        self.eof = False

    def elements(self) -> Iterator[tuple[str, Any]]:
        self._skip_space()
        if self._peek() == "]":
            self._end(self.pos + 1)
            return
        while True:
            line = self._line_at(self.pos)
            value, self.pos = self._decode()
            yield f":{line}", value
            self._skip_space()
            mark = self._peek()
            if mark == "]":
                self._end(self.pos + 1)
                return
            if mark != ",":
                self._fail(self.pos, "Expecting ',' delimiter")
            self.pos += 1
            self._skip_space()
            self._drop_consumed()

    def _decode(self) -> tuple[Any, int]:
        size = CHUNK
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as exc:
                if self.eof:
                    self._fail(exc.pos, exc.msg)
                self._read(size)
                size *= 2
                continue
            except ValueError as exc:  # a cut number only gets longer: refuse now
                where, problem = _bad_number(self.buffer, self.pos, exc)
                self._fail(where, problem, prefix="")
            if end < len(self.buffer) or self.eof:
                return value, end
            self._read(size)  # may be a number cut short: decode with more text

    def _end(self, after: int) -> None:
        self.pos = after
        self._skip_space()
        if self.pos < len(self.buffer):
            self._fail(self.pos, "Extra data")

    def _skip_space(self) -> None:
        while True:
            self.pos = _SPACE.match(self.buffer, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buffer) or self.eof:
                return
            self._read(CHUNK)

    def _peek(self) -> str:
        return self.buffer[self.pos : self.pos + 1]

    def _read(self, size: int) -> None:
        more = self.stream.read(size)
        self.eof = not more
        self.buffer += more

    def _drop_consumed(self) -> None:
        if self.pos < CHUNK:
            return
        self._line_at(self.pos)
        self.buffer = self.buffer[self.pos :]
        self.line_pos -= self.pos
        self.pos = 0

    def _line_at(self, pos: int) -> int:
        self.line += self.buffer.count("\n", self.line_pos, pos)
        self.line_pos = pos
        return self.line

    def _fail(self, pos: int, message: str, prefix: str = "not valid JSON: ") -> None:
        line = self.line + self.buffer.count("\n", self.line_pos, pos)
        raise InputError(f"{self.name}:{line}: {prefix}{message}")


def yaml_values(stream: IO[str], name: str) -> Iterator[tuple[str, Any]]:
    """Each YAML document, or each element of a document that is a list; with lines."""
    try:
        yield from _yaml_values(stream)
    except yaml.reader.ReaderError as exc:  # a control character, say
        at = _line_of_char(stream, exc.position)
        raise InputError(f"{name}:{at}: not valid YAML: {_unprintable(exc)}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        prefix = "" if isinstance(exc, _NotJson) else "not valid YAML: "
        raise InputError(f"{name}{line}: {prefix}{problem}") from exc


def _yaml_values(stream: IO[str]) -> Iterator[tuple[str, Any]]:
    """A top-level list is composed one element at a time (PyYAML's event API: its C
    loader has no public way to do that), so a long list never sits in memory whole.
    """
    loader = _JsonLoader(stream)
    try:
        loader.get_event()  # stream start
        while not loader.check_event(yaml.StreamEndEvent):
            loader.get_event()  # document start
            if loader.check_event(yaml.SequenceStartEvent):
                loader.get_event()
                while not loader.check_event(yaml.SequenceEndEvent):
                    yield _construct(loader)
                loader.get_event()
            else:
                where, value = _construct(loader)
                if value is not None:  # an empty document (`---` alone)
                    yield where, value
            loader.get_event()  # document end
            loader.anchors = {}
    finally:
        loader.dispose()


def _construct(loader: yaml.SafeLoader) -> tuple[str, Any]:
    node = loader.compose_node(None, None)  # type: ignore[arg-type]
    return f":{node.start_mark.line + 1}", loader.construct_document(node)


def _line_of_char(stream: IO[str], position: int) -> int:
    """The line of character `position`, counted by reading the stream again."""
    stream.seek(0)
    line, left = 1, position
    while left > 0 and (chunk := stream.read(min(left, CHUNK))):
        line, left = line + chunk.count("\n"), left - len(chunk)
    return line


def _unprintable(exc: yaml.reader.ReaderError) -> str:
    if not isinstance(exc.character, int):
        return str(exc.reason)
    code = exc.character
    return (
        f"character U+{code:04X} is not allowed here; "
        f'write it as "\\u{code:04x}" inside double quotes'
    )


_TAG = "tag:yaml.org,2002:"


class _NotJson(yaml.MarkedYAMLError):
    """Valid YAML that JSON cannot carry: a key that is not text, `.inf`, `!!set`."""


class _JsonLoader(yaml.SafeLoader):
    """PyYAML's safe loader, making only what JSON can carry.

    Dates and times stay the text they were written as: YAML 1.1 makes them
    `datetime` objects, which JSON has no type for (asset files are full of dates).
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TAG + "timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)  # merge keys (`<<`) are not keys
            for key_node, _ in node.value:
                _check_key(self, key_node)
        return super().construct_mapping(node, deep)


def _check_key(loader: yaml.SafeLoader, node: yaml.Node) -> None:
    """Keys must be text: YAML 1.1 reads `on:` as True and `1:` as a number."""
    if isinstance(node, yaml.ScalarNode):
        key = loader.construct_object(node)  # type: ignore[no-untyped-call]
        if isinstance(key, str):
            return
        problem = (
            f"key {node.value} is not text (YAML reads it as {key!r}); "
            f'quote it: "{node.value}"'
        )
    else:
        problem = "a list or mapping is used as a key; keys must be text"
    raise _NotJson(problem=problem, problem_mark=node.start_mark)


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


def _finite_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    value = loader.construct_yaml_float(node)  # type: ignore[no-untyped-call]
    if math.isfinite(value):
        return float(value)
    sent = json.dumps(value)
    problem = f"{node.value} is not a number JSON allows (it would be sent as {sent})"
    raise _NotJson(problem=problem, problem_mark=node.start_mark)


def _int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    try:
        return int(loader.construct_yaml_int(node))  # type: ignore[no-untyped-call]
    except ValueError as exc:  # more digits than Python converts (4,300)
        digits = str(node.value).replace("_", "").lstrip("+")
        problem = number_problem(digits) or str(exc)
        raise _NotJson(problem=problem, problem_mark=node.start_mark) from exc


def _not_json(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    kind = str(node.tag).removeprefix(_TAG)
    problem = f"a !!{kind} value cannot be sent as JSON"
    raise _NotJson(problem=problem, problem_mark=node.start_mark)


_JsonLoader.add_constructor(_TAG + "timestamp", _timestamp_as_text)
_JsonLoader.add_constructor(_TAG + "float", _finite_float)
_JsonLoader.add_constructor(_TAG + "int", _int)
for _kind in ("binary", "set", "omap", "pairs"):
    _JsonLoader.add_constructor(_TAG + _kind, _not_json)
