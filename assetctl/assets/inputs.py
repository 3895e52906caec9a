"""Reading asset inputs (files, directories, stdin; JSON, JSON lines, YAML), streamed.

Items are yielded one at a time so a batch never holds every input in memory; this
module checks shape and schema but sends nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from assetctl.assets import formats
from assetctl.assets.client import check_id
from assetctl.errors import InputError

MAX_DEPTH = 200  # nesting levels an input may have; deeper ones break the stack
JSON_LINES = (".jsonl", ".ndjson")
YAML_SUFFIXES = (".yaml", ".yml")
KNOWN_SUFFIXES = (".json", *JSON_LINES, *YAML_SUFFIXES)


@dataclass(frozen=True)
class InputItem:
    """One asset body read from an input, with where it came from."""

    source: str  # "path" (one object), "path:line", "path:line#n" (same line again)
    body: Mapping[str, Any]
    ordinal: int = 1  # the item's place in its file, from 1

    @property
    def digest(self) -> str:
        """Fingerprint of where and what: base of the journal and idempotency keys.

        The ordinal keeps two equal objects of one file apart, even on one line.
        """
        canonical = json.dumps(self.body, sort_keys=True, separators=(",", ":"))
        where = f"{self.source}#{self.ordinal}"
        return hashlib.sha256(f"{where}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class Source:
    """One input file and the name items are reported under (`-` for stdin)."""

    label: str
    path: Path


def expand_sources(args: Iterable[str], stdin: IO[str] | None = None) -> list[Source]:
    """Turn FILE, DIR and `-` arguments into a sorted list of files.

    Stdin is spooled to a temporary file once so that it can be checked and then sent,
    like any other file, without holding it in memory.
    """
    paths: list[Source] = []
    for arg in args:
        if arg == "-":
            paths.append(Source("-", _spool_stdin(stdin or sys.stdin)))
            continue
        if not arg:
            raise InputError("an input file name is empty", hint="name a file")
        path = Path(arg)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in KNOWN_SUFFIXES)
            paths.extend(Source(str(p), p) for p in found)
        elif path.is_file():
            if path.suffix and path.suffix not in KNOWN_SUFFIXES:
                raise InputError(
                    f"{arg}: unsupported input type {path.suffix!r} "
                    "(use .json, .jsonl, .yaml)"
                )
            paths.append(Source(arg, path))
        else:
            raise InputError(f"{arg}: no such file or directory")
    if not paths:
        raise InputError(
            "no input files found", hint="name .json, .jsonl or .yaml files"
        )
    return paths


def read_items(sources: Iterable[Source]) -> Iterator[InputItem]:
    """Yield each asset body of each file in turn; a file may hold several."""
    for source in sources:
        yield from _read_file(source.path, source.label)


def check_items(
    items: Iterable[InputItem],
    schema: Mapping[str, Any] | None,
    *,
    id_field: str | None = None,
    need_id: str | None = None,
) -> int:
    """Validate every item before anything is sent; return how many there are.

    Ids in `id_field` (or the required `need_id`) must be usable in a URL path.
    """
    validator = _validator(schema)
    count = 0
    for item in items:
        count += 1
        if validator is not None:
            check_schema(item, validator)
        if need_id and not isinstance(item.body.get(need_id), (str, int)):
            raise InputError(
                f"{item.source}: no {need_id!r} field to say which asset to edit"
            )
        field = need_id or id_field
        if field and item.body.get(field) is not None:
            check_id(item.body[field], f"{item.source}: {field}")
    return count


def check_schema(item: InputItem, validator: Any) -> None:
    error = best_error(item.body, validator)
    if error is not None:
        raise InputError(f"{item.source}: {error}", hint="fix the input")


def best_error(body: Any, validator: Any) -> str | None:
    """`field: reason` for the most telling schema violation, or None."""
    from jsonschema.exceptions import best_match

    error = best_match(validator.iter_errors(body))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(top)"
    return f"{where}: {error.message}"


def make_validator(schema: Mapping[str, Any] | None) -> Any:
    return _validator(schema)


def parse_sets(pairs: Iterable[str]) -> dict[str, Any]:
    """`--set a.b=value` pairs as a nested patch; values are JSON if they parse."""
    patch: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--set {pair!r}: expected field=value")
        target = patch
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = _json_or_text(raw)
    return patch


def _validator(schema: Mapping[str, Any] | None) -> Any:
    if schema is None:
        return None
    from jsonschema.validators import validator_for  # only where a schema is used

    cls = validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _read_file(path: Path, name: str) -> Iterator[InputItem]:
    try:
        with path.open(encoding="utf-8") as stream:
            read = _READERS[_kind(path, stream)]
            yield from _items(read(stream, name), name)
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not UTF-8 text") from exc
    except RecursionError as exc:
        raise InputError(
            f"{name}: nested too deeply to read (at most {MAX_DEPTH} levels)"
        ) from exc


_READERS = {
    "jsonl": formats.json_lines,
    "json": formats.json_values,
    "yaml": formats.yaml_values,
}


def _kind(path: Path, stream: IO[str]) -> str:
    if path.suffix in JSON_LINES:
        return "jsonl"
    if path.suffix == ".json":
        return "json"
    if path.suffix in YAML_SUFFIXES:
        return "yaml"
    return _sniff(stream)


def _sniff(stream: IO[str]) -> str:
    """Guess the format of an unnamed input (stdin): JSON, JSON lines, else YAML."""
    head = stream.read(65536)
    stream.seek(0)
    first = head.lstrip()[:1]
    if first not in ("{", "["):
        return "yaml"
    try:
        json.loads(head)
        return "json"
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            return "jsonl"
    return "json"


def _items(values: Iterable[tuple[str, Any]], name: str) -> Iterator[InputItem]:
    """Values as items named `file:line`; a second object on one line adds `#N`."""
    previous = None
    for ordinal, (where, body) in enumerate(values, start=1):
        source = name + where
        if where and where == previous:
            source += f"#{ordinal}"
        previous = where
        yield _item(source, body, ordinal)


def _item(source: str, body: Any, ordinal: int = 1) -> InputItem:
    if not isinstance(body, dict):
        raise InputError(f"{source}: expected an object, got {type(body).__name__}")
    if _depth(body) > MAX_DEPTH:
        raise InputError(f"{source}: nested deeper than {MAX_DEPTH} levels")
    return InputItem(source=source, body=body, ordinal=ordinal)


def _depth(value: Any) -> int:
    """How deep objects and arrays nest, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in node)
    return deepest


def _spool_stdin(stdin: IO[str]) -> Path:
    # Kept until exit: the batch reads it twice (check, then send).
    spool = tempfile.NamedTemporaryFile(  # noqa: SIM115
        "w", encoding="utf-8", prefix="assetctl-stdin-", suffix="", delete=False
    )
    with spool:
        shutil.copyfileobj(stdin, spool)
    _SPOOLED.append(Path(spool.name))
    return Path(spool.name)


_SPOOLED: list[Path] = []


def remove_spooled() -> None:
    """Delete stdin spool files; commands call this when they finish."""
    while _SPOOLED:
        _SPOOLED.pop().unlink(missing_ok=True)
