"""Input reading: formats, streaming, checks before sending, --set parsing."""

from __future__ import annotations

import io
import json

import pytest

from assetctl.assets import inputs
from assetctl.errors import InputError


def items_of(*args, stdin=None):
    return list(inputs.read_items(inputs.expand_sources(args, stdin)))


def test_json_yaml_jsonl_and_directories(tmp_path):
    (tmp_path / "one.json").write_text('{"name": "a"}')
    (tmp_path / "many.json").write_text('[{"name": "b"}, {"name": "c"}]')
    (tmp_path / "docs.yaml").write_text("name: d\n---\nname: e\n")
    (tmp_path / "lines.jsonl").write_text('{"name": "f"}\n\n{"name": "g"}\n')
    (tmp_path / "notes.txt").write_text("ignored in a directory")
    got = items_of(str(tmp_path))
    assert sorted(i.body["name"] for i in got) == list("abcdefg")
    sources = {i.body["name"]: i.source for i in got}
    assert sources["g"].endswith("lines.jsonl:3")
    assert sources["e"].endswith("docs.yaml#1")


def test_stdin_is_sniffed_and_named_dash():
    got = items_of("-", stdin=io.StringIO('{"name": "x"}\n{"name": "y"}\n'))
    assert [(i.source, i.body["name"]) for i in got] == [("-:1", "x"), ("-:2", "y")]
    got = items_of("-", stdin=io.StringIO("name: z\n"))
    assert [(i.source, i.body) for i in got] == [("-", {"name": "z"})]
    inputs.remove_spooled()


def test_reading_is_lazy(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text('{"n": 1}\nnot json\n')
    stream = inputs.read_items(inputs.expand_sources([str(path)]))
    assert next(stream).body == {"n": 1}
    with pytest.raises(InputError, match="big.jsonl:2: not valid JSON"):
        next(stream)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.json", '{"a": ', "bad.json:1: not valid JSON"),
        ("bad.yaml", "a: [", "bad.yaml:1: not valid YAML"),
        ("list.json", "[1]", "list.json: expected an object, got int"),
    ],
)
def test_broken_inputs_name_the_file(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=message):
        items_of(str(tmp_path / name))


def test_missing_file():
    with pytest.raises(InputError, match="no such file"):
        inputs.expand_sources(["/nonexistent/x.json"])


def test_check_items_against_schema_and_ids(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(
        json.dumps({"name": "ok", "id": "1"}) + "\n" + json.dumps({"name": 5}) + "\n"
    )
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    sources = inputs.expand_sources([str(path)])
    with pytest.raises(
        InputError, match=r"in.jsonl:2: name: 5 is not of type 'string'"
    ):
        inputs.check_items(inputs.read_items(sources), schema)
    path.write_text('{"name": "ok", "id": "1"}\n{"name": "x"}\n')
    with pytest.raises(InputError, match="in.jsonl:2: no 'id' field"):
        inputs.check_items(inputs.read_items(sources), None, need_id="id")
    path.write_text('{"name": "ok", "id": "1"}\n')
    assert inputs.check_items(inputs.read_items(sources), schema, need_id="id") == 1


def test_digest_depends_on_source_and_content():
    a = inputs.InputItem("f.json", {"a": 1, "b": 2})
    assert a.digest == inputs.InputItem("f.json", {"b": 2, "a": 1}).digest
    assert a.digest != inputs.InputItem("g.json", {"a": 1, "b": 2}).digest
    assert a.digest != inputs.InputItem("f.json", {"a": 2, "b": 2}).digest


def test_parse_sets():
    assert inputs.parse_sets(["name=x", "size=3", "meta.tags=[1]", "flag=true"]) == {
        "name": "x",
        "size": 3,
        "meta": {"tags": [1]},
        "flag": True,
    }
    with pytest.raises(InputError, match="expected field=value"):
        inputs.parse_sets(["novalue"])


@pytest.mark.parametrize("name", ["in.csv", "notes.txt"])
def test_a_named_file_of_another_type_is_refused(tmp_path, name):
    (tmp_path / name).write_text("name\nx\n")
    with pytest.raises(InputError) as caught:
        inputs.expand_sources([str(tmp_path / name)])
    suffix = name.rpartition(".")[2]
    assert str(caught.value).endswith(
        f"{name}: unsupported input type '.{suffix}' (use .json, .jsonl, .yaml)"
    )


def test_a_named_file_without_a_suffix_is_sniffed(tmp_path):
    (tmp_path / "noext").write_text('{"name": "a"}\n{"name": "b"}\n')
    assert [i.body["name"] for i in items_of(str(tmp_path / "noext"))] == ["a", "b"]
