"""Loading and validating `asset-types.yaml`: which REST endpoints serve which type.

Owns the registry format, its lookup order and its error messages; it sends no request
and knows nothing of tokens.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs
import yaml

from assetctl.errors import RegistryError, UnknownAssetType

REGISTRY_FILE = "asset-types.yaml"
ENV_VAR = "ASSETCTL_REGISTRY"
EDIT_STYLES = ("put", "merge-patch")
ID_SOURCES = ("body", "location")
PAGING_STYLES = ("none", "page", "offset", "next", "link-header")

_TOP_KEYS = ("version", "api_url", "types")
_TYPE_KEYS = (
    "api_url",
    "collection",
    "item",
    "edit",
    "id_from",
    "id_field",
    "list",
    "params",
    "headers",
    "schema",
    "description",
    "server_fields",
)
_LIST_KEYS = (
    "paging",
    "items",
    "page_param",
    "size_param",
    "first_page",
    "offset_param",
    "page_size",
    "next",
    "cursor_param",
    "total",
)


@dataclass(frozen=True)
class Paging:
    """How one type's list endpoint pages and where its items sit."""

    style: str = "none"
    items: str | None = None  # dotted path in the body; None: the body is the array
    page_param: str = "page"
    size_param: str | None = None
    first_page: int = 1
    offset_param: str = "offset"
    page_size: int | None = None
    next: str = "next"  # dotted path of the next link or cursor in the body
    cursor_param: str | None = None  # set: `next` holds a cursor, not a URL
    total: str | None = None  # dotted path of the total count, ends paging early


@dataclass(frozen=True)
class AssetType:
    """One named asset type: where it lives and how its API behaves."""

    name: str
    collection: str
    item: str
    edit: str = "put"
    id_from: str = "body"
    id_field: str = "id"
    api_url: str | None = None
    paging: Paging = field(default_factory=Paging)
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    schema: Mapping[str, Any] | None = None
    description: str = ""
    # Fields the server keeps itself (a version, timestamps). Declared, they let
    # `apply` see a field removed from an input of a PUT type as a difference.
    server_fields: tuple[str, ...] | None = None

    def item_path(self, quoted_id: str) -> str:
        return self.item.replace("{id}", quoted_id)


@dataclass(frozen=True)
class Registry:
    """The loaded registry and the file it came from."""

    source: str
    types: Mapping[str, AssetType]
    # How it was found (`--registry`, ..., "working directory"): a registry that was
    # merely lying in the working directory is not trusted to name where tokens go.
    found_in: str = ""

    def get(self, name: str) -> AssetType:
        if name in self.types:
            return self.types[name]
        raise UnknownAssetType(
            f"unknown asset type {name!r} in {self.source}",
            hint=_suggest(name, self.types)
            or "run `assetctl asset types` to list them",
        )


def candidate_paths(explicit: str | None = None) -> list[tuple[str, Path]]:
    """The lookup order, first existing wins: flag, env, cwd, config dir, package."""
    found: list[tuple[str, Path]] = []
    if explicit:
        found.append(("--registry", Path(explicit)))
    if os.environ.get(ENV_VAR):
        found.append((ENV_VAR, Path(os.environ[ENV_VAR])))
    found.append(("working directory", Path.cwd() / REGISTRY_FILE))
    config_dir = Path(platformdirs.user_config_dir("assetctl"))
    found.append(("config directory", config_dir / REGISTRY_FILE))
    found.append(("package", Path(__file__).parent / "data" / REGISTRY_FILE))
    return found


def find_registry(explicit: str | None = None) -> Path:
    """Pick the registry file; a named one (flag or env) must exist."""
    return _find(explicit)[1]


def _find(explicit: str | None) -> tuple[str, Path]:
    for origin, path in candidate_paths(explicit):
        if path.is_file():
            return origin, path
        if origin in ("--registry", ENV_VAR):
            what = "is a directory" if path.is_dir() else "does not exist"
            raise RegistryError(
                f"registry {path} (from {origin}) {what}",
                hint=f"name the {REGISTRY_FILE} file itself, or unset it",
            )
    raise RegistryError("no asset-types.yaml found", hint="pass --registry FILE")


def load_registry(explicit: str | None = None) -> Registry:
    found_in, path = _find(explicit)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RegistryError(
            f"{path}:{_line_of(path, exc.start)}: not UTF-8 text",
            hint="save the registry as UTF-8",
        ) from exc
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read: {exc.strerror}") from exc
    return replace(parse_registry(text, str(path)), found_in=found_in)


def _line_of(path: Path, offset: int) -> int:
    return path.read_bytes()[:offset].count(b"\n") + 1


def parse_registry(text: str, source: str) -> Registry:
    """Parse and validate registry text; errors name file, line, type and key."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
        root = yaml.compose(text)
    except _DuplicateKey as exc:
        raise RegistryError(f"{source}:{exc.line}: {exc}") from exc
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", -1) + 1
        problem = getattr(exc, "problem", None) or "unreadable"
        raise RegistryError(f"{source}:{line}: not valid YAML: {problem}") from exc
    except RecursionError as exc:
        raise RegistryError(f"{source}: nested too deeply to read") from exc
    locate = _Locator(source, root)
    if not isinstance(data, dict):
        raise RegistryError(f"{source}:1: expected a mapping with a `types` key")
    _check_keys(data, _TOP_KEYS, locate, (), "the registry")
    if data.get("version", 1) != 1 or isinstance(data.get("version"), bool):
        raise locate.error(
            ("version",),
            f"version {data['version']!r} is not supported (this assetctl reads 1)",
        )
    types = data.get("types")
    if not isinstance(types, dict) or not types:
        raise locate.error(("types",), "`types` must be a non-empty mapping")
    base = _optional_url(data, locate, (), "the registry")
    base_dir = Path(source).parent
    parsed = {
        str(name): _parse_type(str(name), spec, locate, base, base_dir)
        for name, spec in types.items()
    }
    return Registry(source=source, types=parsed)


def _parse_type(
    name: str, spec: Any, locate: _Locator, base: str | None, base_dir: Path
) -> AssetType:
    where = ("types", name)
    if not isinstance(spec, dict):
        raise locate.error(where, f"type {name!r}: expected a mapping")
    _check_keys(spec, _TYPE_KEYS, locate, where, f"type {name!r}")
    collection = _required_path(spec, "collection", locate, where, name)
    item = spec.get("item", collection.rstrip("/") + "/{id}")
    if not isinstance(item, str) or item.count("{id}") != 1:
        raise locate.error(
            (*where, "item"), f"type {name!r}: key 'item' needs one {{id}}"
        )

    return AssetType(
        name=name,
        collection=collection,
        item=item,
        edit=_choice(spec, "edit", EDIT_STYLES, locate, where, name),
        id_from=_choice(spec, "id_from", ID_SOURCES, locate, where, name),
        id_field=_optional_str(spec, "id_field", locate, where) or "id",
        api_url=_optional_url(spec, locate, where, f"type {name!r}") or base,
        paging=_parse_paging(spec.get("list", {}), locate, (*where, "list"), name),
        params=_str_map(spec, "params", locate, where, name),
        headers=_str_map(spec, "headers", locate, where, name),
        schema=_load_schema(spec.get("schema"), locate, (*where, "schema"), base_dir),
        description=str(spec.get("description", "")),
        server_fields=_str_list(spec, "server_fields", locate, where, name),
    )


def _str_list(
    spec: Mapping, key: str, locate: _Locator, where: tuple, name: str
) -> tuple[str, ...] | None:
    if key not in spec:
        return None
    value = spec[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise locate.error(
            (*where, key), f"type {name!r}: key {key!r} must be a list of field names"
        )
    return tuple(value)


def _parse_paging(spec: Any, locate: _Locator, where: tuple, name: str) -> Paging:
    if not isinstance(spec, dict):
        raise locate.error(where, f"type {name!r}: key 'list' must be a mapping")
    _check_keys(spec, _LIST_KEYS, locate, where, f"type {name!r}, list")
    values: dict[str, Any] = {
        "style": _choice(spec, "paging", PAGING_STYLES, locate, where, name)
    }
    for key in ("items", "page_param", "size_param", "offset_param", "next"):
        if key in spec:
            values[key] = _optional_str(spec, key, locate, where)
    for key in ("cursor_param", "total"):
        values[key] = _optional_str(spec, key, locate, where)
    if "first_page" in spec:
        values["first_page"] = _int(spec, "first_page", locate, where, name)
    if "page_size" in spec:
        values["page_size"] = _int(spec, "page_size", locate, where, name, least=1)
    if values["style"] == "offset" and not spec.get("size_param"):
        values["size_param"] = "limit"
    if values["style"] == "page" and not spec.get("size_param"):
        values["size_param"] = "size"
    return Paging(**values)


def _load_schema(value: Any, locate: _Locator, where: tuple, base_dir: Path) -> Any:
    """An inline JSON Schema, or a JSON/YAML file path relative to the registry."""
    if value is None:
        return None
    if isinstance(value, str):
        path = base_dir / value
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise locate.error(
                where, f"schema file {path} unreadable: {exc.strerror}"
            ) from exc
        except UnicodeDecodeError as exc:
            raise locate.error(where, f"schema file {path} is not UTF-8 text") from exc
        try:
            value = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError, RecursionError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise locate.error(
                where, f"schema file {path} is not valid JSON or YAML: {first_line}"
            ) from exc
    if not isinstance(value, dict):
        raise locate.error(where, "schema must be a mapping or a file name")
    import jsonschema  # here: 30 ms that commands without schemas never pay

    try:
        jsonschema.validators.validator_for(value).check_schema(value)
    except jsonschema.SchemaError as exc:
        raise locate.error(where, f"not a valid JSON Schema: {exc.message}") from exc
    return value


def _check_keys(
    spec: Mapping, allowed: Iterable[str], locate: _Locator, where: tuple, what: str
) -> None:
    for key in spec:
        if key not in allowed:
            hint = _suggest(str(key), allowed)
            message = f"{what}: unknown key {key!r}" + (f" ({hint})" if hint else "")
            raise locate.error((*where, key), message, key_node=True)


def _choice(
    spec: Mapping, key: str, allowed: tuple, locate: _Locator, where: tuple, name: str
) -> str:
    value = spec.get(key, allowed[0])
    if value not in allowed:
        raise locate.error(
            (*where, key),
            f"type {name!r}: key {key!r} must be one of {', '.join(allowed)}",
        )
    return str(value)


def _required_path(
    spec: Mapping, key: str, locate: _Locator, where: tuple, name: str
) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value:
        raise locate.error(
            where,
            f"type {name!r}: key {key!r} is required (a path like /items)",
            key_node=True,
        )
    return value


def _optional_str(
    spec: Mapping, key: str, locate: _Locator, where: tuple
) -> str | None:
    value = spec.get(key)
    if value is not None and not isinstance(value, str):
        raise locate.error((*where, key), f"key {key!r} must be a string")
    return value


def _optional_url(
    spec: Mapping, locate: _Locator, where: tuple, what: str
) -> str | None:
    value = _optional_str(spec, "api_url", locate, where)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise locate.error(
            (*where, "api_url"),
            f"{what}: key 'api_url' must be an http(s) URL like "
            f"https://api.example.com, not {value!r}",
        )
    return value


def _int(
    spec: Mapping, key: str, locate: _Locator, where: tuple, name: str, least: int = 0
) -> int:
    value = spec[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        kind = "a positive whole number" if least > 0 else "a whole number (0 or more)"
        raise locate.error((*where, key), f"type {name!r}: key {key!r} must be {kind}")
    return value


def _str_map(
    spec: Mapping, key: str, locate: _Locator, where: tuple, name: str
) -> dict:
    value = spec.get(key, {})
    if not isinstance(value, dict):
        raise locate.error(
            (*where, key), f"type {name!r}: key {key!r} must be a mapping"
        )
    return {str(k): str(v) for k, v in value.items()}


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else ""


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping.

    PyYAML keeps the last of duplicate keys without a word (6.0), which would hide
    the first definition of a type.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int)) and key in seen:
                raise _DuplicateKey(
                    f"key {key!r} appears twice (also on line {seen[key]}); "
                    "YAML would silently keep only the last",
                    line,
                )
            if isinstance(key, (str, int)):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


class _Locator:
    """Finds the line of a key path in the composed YAML tree for error messages."""

    def __init__(self, source: str, root: yaml.Node | None) -> None:
        self.source = source
        self.root = root

    def error(
        self, path: tuple, message: str, *, key_node: bool = False
    ) -> RegistryError:
        if len(path) > 1 and path[0] == "types" and not message.startswith("type "):
            message = f"type {path[1]!r}: {message}"  # every message names its type
        return RegistryError(f"{self.source}:{self.line(path, key_node)}: {message}")

    def line(self, path: tuple, key_node: bool = False) -> int:
        node, line = self.root, 1
        for step in path:
            if not isinstance(node, yaml.MappingNode):
                break
            pair = next((p for p in node.value if p[0].value == str(step)), None)
            if pair is None:
                break
            line = (pair[0] if key_node else pair[1]).start_mark.line + 1
            node = pair[1]
        return line
