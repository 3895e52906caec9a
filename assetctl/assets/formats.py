"""Parsing JSON, JSON lines and YAML one value at a time, each with where it starts.

Every reader yields `(where, value)` pairs: `where` is `:LINE` when the line is known
(JSON lines, YAML, JSON arrays) and empty for a file that is one JSON value. A JSON
array is read element by element, so a large file never sits in memory whole. Errors
are `InputError`s naming the file and line; what the values must look like is the
caller's business (`inputs.py`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import IO, Any

import yaml

from assetctl.errors import InputError

CHUNK = 1 << 16  # characters read at a time from a JSON array
_SPACE = re.compile(r"[ \t\n\r]*")


def json_lines(stream: IO[str], name: str) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield f":{number}", json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}:{number}: not valid JSON: {exc.msg}") from exc


def json_values(stream: IO[str], name: str) -> Iterator[tuple[str, Any]]:
    """A JSON file: the elements of a top-level array one by one, else its one value."""
    head = stream.read(CHUNK)
    start = _SPACE.match(head).end()  # type: ignore[union-attr]
    if head[start : start + 1] == "[":
        yield from _JsonArray(stream, name, head, start + 1).elements()
        return
    text = head + stream.read()
    try:
        yield "", json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}:{exc.lineno}: not valid JSON: {exc.msg}") from exc


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
        self.decoder = json.JSONDecoder()

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
                value, end = self.decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as exc:
                if self.eof:
                    self._fail(exc.pos, exc.msg)
                self._read(size)
                size *= 2
                continue
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

    def _fail(self, pos: int, message: str) -> None:
        line = self.line + self.buffer.count("\n", self.line_pos, pos)
        raise InputError(f"{self.name}:{line}: not valid JSON: {message}")


def yaml_values(stream: IO[str], name: str) -> Iterator[tuple[str, Any]]:
    """Each YAML document, or each element of a document that is a list; with lines.

    A top-level list is composed one element at a time (PyYAML's event API: its C
    loader has no public way to do that), so a long list never sits in memory whole.
    """
    loader = yaml.SafeLoader(stream)
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
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise InputError(f"{name}{line}: not valid YAML: {problem}") from exc
    finally:
        loader.dispose()


def _construct(loader: yaml.SafeLoader) -> tuple[str, Any]:
    node = loader.compose_node(None, None)  # type: ignore[arg-type]
    return f":{node.start_mark.line + 1}", loader.construct_document(node)
