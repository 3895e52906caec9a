"""The registry: format, validation messages, lookup order."""

from __future__ import annotations

from pathlib import Path

import pytest

from assetctl import registry
from assetctl.errors import ExitCode, RegistryError, UnknownAssetType

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = """\
types:
  things:
    collection: /things
"""


def parse(text: str):
    return registry.parse_registry(text, "reg.yaml")


def test_defaults_for_a_minimal_type():
    thing = parse(MINIMAL).get("things")
    assert thing.item == "/things/{id}"
    assert (thing.edit, thing.id_from, thing.id_field) == ("put", "body", "id")
    assert thing.paging.style == "none"
    assert thing.schema is None


def test_example_registry_and_shipped_copy_describe_the_reference_api():
    example = (ROOT / "asset-types.yaml").read_text()
    shipped = (ROOT / "assetctl" / "data" / "asset-types.yaml").read_text()
    assert example == shipped
    types = parse(example).types
    assert types["datasets"].paging.style == "page"
    assert types["models"].edit == "merge-patch"
    assert types["models"].id_from == "location"
    assert types["models"].paging.style == "link-header"


def test_every_key_of_the_format_parses(tmp_path):
    (tmp_path / "schema.json").write_text('{"type": "object", "required": ["name"]}')
    text = """\
version: 1
api_url: https://one.example
types:
  things:
    api_url: https://two.example/v2
    description: all keys
    collection: /things
    item: /things/{id}/detail
    edit: merge-patch
    id_from: location
    id_field: key
    params: {api-version: 3}
    headers: {X-Team: data}
    schema: schema.json
    list:
      paging: next
      items: data.items
      next: links.next
      cursor_param: cursor
      size_param: per_page
      page_size: 50
  others:
    collection: /others
    list: {paging: offset, offset_param: skip, size_param: top, total: count}
"""
    path = tmp_path / "asset-types.yaml"
    path.write_text(text)
    loaded = registry.load_registry(str(path))
    thing, other = loaded.get("things"), loaded.get("others")
    assert thing.api_url == "https://two.example/v2"
    assert other.api_url == "https://one.example"
    assert thing.params == {"api-version": "3"}
    assert thing.schema == {"type": "object", "required": ["name"]}
    assert thing.item_path("a%2Fb") == "/things/a%2Fb/detail"
    assert thing.paging.cursor_param == "cursor"
    assert other.paging.offset_param == "skip"
    assert other.paging.total == "count"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            MINIMAL + "    colection: /x\n",
            "reg.yaml:4: type 'things': unknown key 'colection' "
            "(did you mean 'collection'?)",
        ),
        (
            MINIMAL + "    edit: post\n",
            "reg.yaml:4: type 'things': key 'edit' must be one of put, merge-patch",
        ),
        (
            MINIMAL + "    list:\n      paging: cursor\n",
            "reg.yaml:5: type 'things': key 'paging' must be one of",
        ),
        (
            MINIMAL + "    list:\n      pagesize: 3\n",
            "reg.yaml:5: type 'things', list: unknown key 'pagesize' "
            "(did you mean 'page_size'?)",
        ),
        (
            MINIMAL + "    item: /things/x\n",
            "reg.yaml:4: type 'things': key 'item' needs one {id}",
        ),
        (
            MINIMAL + "    schema: {type: 12}\n",
            "reg.yaml:4: type 'things': not a valid JSON Schema",
        ),
        (
            "typez: {}\n",
            "reg.yaml:1: the registry: unknown key 'typez' (did you mean 'types'?)",
        ),
        (
            "types:\n  a:\n    item: /a/{id}\n",
            "reg.yaml:2: type 'a': key 'collection' is required",
        ),
        ("types: [\n", "reg.yaml:2: not valid YAML"),
        (
            "version: 2\n" + MINIMAL,
            "reg.yaml:1: version 2 is not supported (this assetctl reads 1)",
        ),
        ("version: '1'\n" + MINIMAL, "reg.yaml:1: version '1' is not supported"),
        (
            MINIMAL + "  things:\n    collection: /other\n",
            "reg.yaml:4: key 'things' appears twice (also on line 2); "
            "YAML would silently keep only the last",
        ),
        (
            MINIMAL + "    list: {page_size: 1, page_size: 2}\n",
            "reg.yaml:4: key 'page_size' appears twice",
        ),
        (
            "api_url: assets.example.com\n" + MINIMAL,
            "reg.yaml:1: the registry: key 'api_url' must be an http(s) URL like "
            "https://api.example.com, not 'assets.example.com'",
        ),
        (
            MINIMAL + "    api_url: ftp://x.example\n",
            "reg.yaml:4: type 'things': key 'api_url' must be an http(s) URL",
        ),
        (
            MINIMAL + "    list: {paging: page, page_size: -5}\n",
            "reg.yaml:4: type 'things': key 'page_size' must be a positive whole "
            "number",
        ),
        (
            MINIMAL + "    list: {paging: page, page_size: 0}\n",
            "reg.yaml:4: type 'things': key 'page_size' must be a positive whole "
            "number",
        ),
        (
            MINIMAL + "    list: {paging: page, first_page: -1}\n",
            "reg.yaml:4: type 'things': key 'first_page' must be a whole number "
            "(0 or more)",
        ),
    ],
)
def test_a_wrong_registry_names_file_line_type_and_key(text, expected):
    with pytest.raises(RegistryError) as caught:
        parse(text)
    assert str(caught.value).startswith(expected)
    assert caught.value.exit_code == ExitCode.BAD_INPUT


def test_unknown_type_suggests_the_close_one():
    with pytest.raises(UnknownAssetType, match="did you mean 'things'"):
        parse(MINIMAL).get("thing")


def test_lookup_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(registry.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    shipped = Path(registry.__file__).parent / "data" / "asset-types.yaml"
    assert registry.find_registry() == shipped

    user = tmp_path / "config" / "assetctl" / "asset-types.yaml"
    user.parent.mkdir(parents=True)
    user.write_text(MINIMAL)
    assert registry.find_registry() == user

    local = tmp_path / "asset-types.yaml"
    local.write_text(MINIMAL)
    assert registry.find_registry() == local

    env = tmp_path / "env.yaml"
    env.write_text(MINIMAL)
    monkeypatch.setenv(registry.ENV_VAR, str(env))
    assert registry.find_registry() == env

    flag = tmp_path / "flag.yaml"
    flag.write_text(MINIMAL)
    assert registry.find_registry(str(flag)) == flag


def test_a_named_registry_must_exist(tmp_path):
    with pytest.raises(RegistryError, match="does not exist"):
        registry.find_registry(str(tmp_path / "missing.yaml"))


def test_version_1_and_a_zero_first_page_are_fine():
    parsed = parse("version: 1\n" + MINIMAL + "    list: {first_page: 0}\n")
    assert parsed.get("things").paging.first_page == 0


def test_a_registry_directory_is_named_as_one(tmp_path):
    with pytest.raises(RegistryError, match="is a directory"):
        registry.find_registry(str(tmp_path))


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("s.json", b'{"type": "object",'),
        ("s.yaml", b"type: [object\n  bad: : :\n"),
        ("s.yaml", b"\xff\xfe not text"),
    ],
)
def test_a_broken_schema_file_is_one_line_naming_registry_and_type(
    tmp_path, name, content
):
    (tmp_path / name).write_bytes(content)
    text = f"types:\n  things:\n    collection: /things\n    schema: {name}\n"
    (tmp_path / "asset-types.yaml").write_text(text)
    with pytest.raises(RegistryError) as caught:
        registry.load_registry(str(tmp_path / "asset-types.yaml"))
    message = str(caught.value)
    assert "asset-types.yaml:4" in message and "things" in message
    assert name in message and "\n" not in message


def test_server_fields_must_be_a_list_of_names():
    good = registry.parse_registry(
        "types:\n  t: {collection: /t, server_fields: [version]}\n", "r.yaml"
    )
    assert good.types["t"].server_fields == ("version",)
    assert (
        registry.parse_registry("types:\n  t: {collection: /t}\n", "r.yaml")
        .types["t"]
        .server_fields
        is None
    )
    with pytest.raises(RegistryError, match="list of field names"):
        registry.parse_registry(
            "types:\n  t: {collection: /t, server_fields: 3}\n", "r.yaml"
        )
