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
    assert sources["e"].endswith("docs.yaml:3")
    assert sources["b"].endswith("many.json:1") and sources["c"].endswith(
        "many.json:1#2"
    )
    assert sources["a"].endswith("one.json")


def test_stdin_is_sniffed_and_named_dash():
    got = items_of("-", stdin=io.StringIO('{"name": "x"}\n{"name": "y"}\n'))
    assert [(i.source, i.body["name"]) for i in got] == [("-:1", "x"), ("-:2", "y")]
    got = items_of("-", stdin=io.StringIO("name: z\n"))
    assert [(i.source, i.body) for i in got] == [("-:1", {"name": "z"})]
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
        ("bad.yaml", "a: [", r"bad.yaml:\d: not valid YAML"),
        ("list.json", "[1]", "list.json:1: expected an object, got int"),
        ("one.json", "7", "one.json: expected an object, got int"),
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


ARRAY = [
    {"name": f"n{n}", "tags": list(range(n % 7)), "text": "x" * (n % 300)}
    for n in range(3000)
]


@pytest.mark.parametrize("chunk", [7, 64, 1 << 16])
@pytest.mark.parametrize("indent", [None, 2])
def test_json_arrays_stream_in_chunks_with_the_line_of_each_object(
    tmp_path, monkeypatch, chunk, indent
):
    from assetctl.assets import formats

    monkeypatch.setattr(formats, "CHUNK", chunk)
    path = tmp_path / "big.json"
    path.write_text(json.dumps(ARRAY, indent=indent))
    got = items_of(str(path))
    assert [i.body for i in got] == ARRAY
    if indent:
        lines = path.read_text().splitlines()
        for item in got[:50]:
            line = int(item.source.rpartition(":")[2])
            assert lines[line - 1].strip() == "{"
            assert lines[line].strip() == f'"name": "{item.body["name"]}",'
    else:
        assert got[1].source.endswith("big.json:1#2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", None),
        ("  [ ]  \n", None),
        (
            '[{"a": 1},\n {"a": 12345678',
            r"x.json:2: not valid JSON: Expecting ',' delim",
        ),
        ('[{"a": 1}\n {"a": 2}]', r"x.json:2: not valid JSON: Expecting ','"),
        ('[{"a": 1}] [', r"x.json:1: not valid JSON: Extra data"),
        ("[", r"x.json:1: not valid JSON: Expecting value"),
        ('[{"a": 1},]', r"x.json:1: not valid JSON: Expecting value"),
    ],
)
def test_json_array_errors_name_the_line(tmp_path, monkeypatch, text, message):
    from assetctl.assets import formats

    monkeypatch.setattr(formats, "CHUNK", 4)
    (tmp_path / "x.json").write_text(text)
    if message is None:
        assert items_of(str(tmp_path / "x.json")) == []
        return
    with pytest.raises(InputError, match=message):
        items_of(str(tmp_path / "x.json"))


def test_numbers_cut_by_the_buffer_are_read_whole(tmp_path, monkeypatch):
    from assetctl.assets import formats

    monkeypatch.setattr(formats, "CHUNK", 3)
    (tmp_path / "n.json").write_text('[{"n": 1234567}, {"n": 89.5e3}]')
    assert [i.body["n"] for i in items_of(str(tmp_path / "n.json"))] == [
        1234567,
        89500.0,
    ]


def test_equal_objects_on_one_line_have_different_digests(tmp_path):
    (tmp_path / "same.json").write_text('[{"name": "x"}, {"name": "x"}]')
    first, second = items_of(str(tmp_path / "same.json"))
    assert first.digest != second.digest


def test_a_large_json_array_is_read_in_flat_memory(tmp_path):
    import tracemalloc

    path = tmp_path / "large.json"
    with path.open("w") as stream:
        stream.write("[")
        for n in range(60_000):
            stream.write(("," if n else "") + json.dumps({"n": n, "pad": "p" * 200}))
        stream.write("]")
    size = path.stat().st_size
    tracemalloc.start()
    count = sum(1 for _ in inputs.read_items(inputs.expand_sources([str(path)])))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 60_000 and size > 12_000_000
    assert peak < 2_000_000  # a few chunks, not the file


def test_a_long_yaml_list_streams_and_keeps_anchors_and_lines(tmp_path):
    import tracemalloc

    path = tmp_path / "list.yaml"
    with path.open("w") as stream:
        stream.write("- &base {name: first, team: data}\n")
        for n in range(3_000):
            stream.write(f"- {{<<: *base, name: n{n}, pad: {'p' * 100}}}\n")
        stream.write("---\n---\nname: last\n")
    tracemalloc.start()
    got = inputs.read_items(inputs.expand_sources([str(path)]))
    first, second = next(got), next(got)
    rest = sum(1 for _ in got)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert first.source.endswith("list.yaml:1") and second.source.endswith(":2")
    assert second.body == {"name": "n0", "team": "data", "pad": "p" * 100}
    assert rest == 3_000  # 2,999 more list items and the last document
    assert peak < 1_000_000  # the whole list would take several times that
