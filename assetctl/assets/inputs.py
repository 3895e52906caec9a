"""Reading asset inputs (files, directories, stdin; JSON, JSON lines, YAML), streamed.

Items are yielded one at a time so a batch never holds every input in memory; this
module checks shape and schema but sends nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from assetctl.assets import formats
from assetctl.assets.client import check_id
from assetctl.assets.spool import Spool
from assetctl.errors import InputError, RegistryError

MAX_DEPTH = 200  # nesting levels an input may have; deeper ones break the stack
# Values in one asset as JSON spells it out, each use of a YAML alias counted again:
# nine levels of aliases used nine times each would be 387 million values.
MAX_VALUES = 1_000_000
JSON_LINES = (".jsonl", ".ndjson")
YAML_SUFFIXES = (".yaml", ".yml")
KNOWN_SUFFIXES = (".json", *JSON_LINES, *YAML_SUFFIXES)


@dataclass(frozen=True)
class InputItem:
    """One asset body read from an input, with where it came from."""

    source: str  # "path" (one object), "path:line", "path:line#n" (same line again)
    body: Mapping[str, Any]
    ordinal: int = 1  # the item's place in its file, from 1
    # The file's identity (its resolved path; "-" for stdin), however it was spelled:
    # `./in.jsonl` and `in.jsonl` on a rerun must find the same journal entries.
    origin: str = ""

    @property
    def digest(self) -> str:
        """Fingerprint of where and what: base of the journal and idempotency keys.

        The ordinal keeps two equal objects of one file apart, even on one line.
        """
        canonical = json.dumps(self.body, sort_keys=True, separators=(",", ":"))
        where = f"{self.origin or self.source}#{self.ordinal}"
        return hashlib.sha256(f"{where}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class Source:
    """One input file and the name items are reported under (`-` for stdin)."""

    label: str
    path: Path
    spool: Spool | None = None  # stdin's copy; `path` is then `-`

    def open(self) -> IO[str]:
        if self.spool is not None:
            return io.TextIOWrapper(self.spool.open(), encoding="utf-8")
        return self.path.open(encoding="utf-8")

    def open_bytes(self) -> IO[bytes]:
        return self.spool.open() if self.spool is not None else self.path.open("rb")

    @property
    def identity(self) -> str:
        """What names this input in journals: the resolved path, however it was
        typed; for stdin a digest of what came in (two different piped batches are
        two batches)."""
        if self.spool is None:
            return str(self.path.resolve())
        digest = hashlib.sha256()
        with self.open_bytes() as stream:
            for chunk in iter(lambda: stream.read(1 << 16), b""):
                digest.update(chunk)
        return f"-:{digest.hexdigest()[:32]}"


def expand_sources(args: Iterable[str], stdin: IO[str] | None = None) -> list[Source]:
    """Turn FILE, DIR and `-` arguments into a sorted list of files.

    Stdin is spooled to a temporary file once so that it can be checked and then sent,
    like any other file, without holding it in memory.
    """
    paths: list[Source] = []
    for arg in args:
        if arg == "-":
            paths.append(Source("-", Path("-"), Spool(stdin or sys.stdin)))
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
        yield from _read_file(source)


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
    from referencing.exceptions import Unresolvable

    try:
        error = best_match(validator.iter_errors(body))
    except Unresolvable as exc:
        # A `$ref` that leads nowhere passes jsonschema's schema check; it shows
        # only when an input reaches it. Say so as the registry's fault, on one line.
        raise RegistryError(
            f"the asset type's schema cannot be used: {str(exc).splitlines()[0]}",
            hint="fix the $ref in the registry's schema",
        ) from None
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
        for depth, part in enumerate(parents, start=1):
            target = target.setdefault(part, {})
            if not isinstance(target, dict):  # `--set a=2 --set a.b=1`
                field = ".".join(parents[:depth])
                raise InputError(
                    f"--set {pair!r}: {field} is set to {json.dumps(target)}, "
                    "which has no fields",
                    hint=f"set either {field} or fields inside it",
                )
        target[leaf] = _json_or_text(pair, raw)
    return patch


def _validator(schema: Mapping[str, Any] | None) -> Any:
    if schema is None:
        return None
    from jsonschema.validators import validator_for  # only where a schema is used

    cls = validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _json_or_text(pair: str, raw: str) -> Any:
    try:
        return formats.loads(raw)
    except json.JSONDecodeError:
        return raw
    except ValueError as exc:  # JSON in form, but not a number an API takes
        if raw.strip() in formats.CONSTANTS:  # NaN is not JSON: text, as documented
            return raw
        found = formats.bad_number(raw)
        raise InputError(
            f"--set {pair!r}: {found[1] if found else exc}",
            hint='quote the value ("...") to send it as text',
        ) from exc


def _read_file(source: Source) -> Iterator[InputItem]:
    name = source.label
    try:
        with source.open() as stream:
            read = _READERS[_kind(source.path, stream)]
            yield from _items(read(stream, name), name, source.identity)
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        line = _undecodable_line(source)
        raise InputError(
            f"{name}:{line}: not UTF-8 text", hint="convert it to UTF-8"
        ) from exc
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
    except ValueError:  # a number Python will not convert: JSON, refused when read
        pass
    return "json"


def _items(
    values: Iterable[tuple[str, Any]], name: str, origin: str = ""
) -> Iterator[InputItem]:
    """Values as items named `file:line`; a second object on one line adds `#N`."""
    previous = None
    for ordinal, (where, body) in enumerate(values, start=1):
        source = name + where
        if where and where == previous:
            source += f"#{ordinal}"
        previous = where
        yield _item(source, body, ordinal, origin)


def _item(source: str, body: Any, ordinal: int = 1, origin: str = "") -> InputItem:
    if not isinstance(body, dict):
        raise InputError(f"{source}: expected an object, got {type(body).__name__}")
    _check_shape(source, body)
    return InputItem(source=source, body=body, ordinal=ordinal, origin=origin)


def _check_shape(source: str, body: dict[str, Any]) -> None:
    """Refuse a body that is too deep, too big or endless once spelled out as JSON.

    YAML aliases let one object appear many times, or inside itself. Each object is
    measured once (remembered by id) but counted every time it is used, so an alias
    bomb costs a few steps, not its expanded size; no recursion, so no stack limit.
    """
    measured: dict[int, tuple[int, int]] = {}  # id -> (depth, values), once done
    inside: set[int] = set()  # ids on the path from `body` to the current object
    stack: list[tuple[Any, bool]] = [(body, False)]
    while stack:
        node, parts_done = stack.pop()
        if parts_done:
            measured[id(node)] = _measure(source, node, measured)
            inside.discard(id(node))
        elif id(node) in inside:
            raise InputError(
                f"{source}: a YAML alias is used inside the object it names, "
                "which JSON cannot spell out",
                hint="replace the alias with a copy of what it should hold",
            )
        elif id(node) not in measured:
            inside.add(id(node))
            stack.append((node, True))
            stack.extend((part, False) for part in _parts(node) if _nests(part))


def _measure(
    source: str, node: dict[str, Any] | list[Any], measured: dict[int, tuple[int, int]]
) -> tuple[int, int]:
    """Depth and value count of `node`, whose nested parts are all measured.

    Only JSON's types get here: `formats` refuses the rest (dates, NaN, odd keys).
    """
    depth, values = 0, 1
    for part in _parts(node):
        part_depth, part_values = measured[id(part)] if _nests(part) else (0, 1)
        depth, values = max(depth, part_depth), values + part_values
    if depth + 1 > MAX_DEPTH:
        raise InputError(f"{source}: nested deeper than {MAX_DEPTH} levels")
    if values > MAX_VALUES:
        raise InputError(
            f"{source}: more than {MAX_VALUES:,} values, counting each use of a "
            "YAML alias",
            hint="split the asset, or use aliases less",
        )
    return depth + 1, values


def _nests(value: Any) -> bool:
    return isinstance(value, (dict, list))


def _parts(node: dict[str, Any] | list[Any]) -> Iterable[Any]:
    return node.values() if isinstance(node, dict) else node


def _undecodable_line(source: Source) -> int:
    """The line of the first byte that is not UTF-8, counted in the raw bytes."""
    line, pending = 1, b""
    with source.open_bytes() as stream:
        while chunk := stream.read(1 << 16):
            data, pending = pending + chunk, b""
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                line += data.count(b"\n", 0, exc.start)
                if exc.end < len(data) or exc.reason != "unexpected end of data":
                    return line
                pending = data[exc.start :]  # a character cut by the chunk's end
                continue
            line += data.count(b"\n")
    return line
