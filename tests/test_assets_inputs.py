"""Input reading: formats, streaming, checks before sending, --set parsing."""

from __future__ import annotations

import io
import json

import pytest

from assetctl.assets import inputs, spool
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
    spool.remove_spooled()


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


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def refusal(*args, stdin=None):
    """The message of the InputError reading and checking `args` ends in."""
    with pytest.raises(InputError) as caught:
        sources = inputs.expand_sources(args, stdin)
        inputs.check_items(inputs.read_items(sources), None)
    spool.remove_spooled()
    assert "\n" not in str(caught.value)
    return str(caught.value)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "text",
    [
        "name: x\nself: &a [*a]\n",
        "name: x\nself: &a {again: *a}\n",
        "- &top {name: x, deeper: {up: [*top]}}\n",
    ],
)
def test_a_yaml_alias_inside_itself_is_refused_not_followed(tmp_path, text):
    message = refusal(write(tmp_path, "rec.yaml", text))
    assert message.startswith(f"{tmp_path}/rec.yaml:1: a YAML alias is used inside")


@pytest.mark.timeout(20)
def test_an_alias_bomb_is_refused_by_its_expanded_size(tmp_path):
    lines = ["name: x", "a: &a [" + ", ".join(["lol"] * 9) + "]"]
    for level, name in enumerate("bcdefghi"):
        lines.append(
            f"{name}: &{name} [" + ", ".join([f"*{'abcdefgh'[level]}"] * 9) + "]"
        )
    message = refusal(write(tmp_path, "laughs.yaml", "\n".join(lines)))
    assert message.startswith(f"{tmp_path}/laughs.yaml:1: more than 1,000,000 values")


def test_each_use_of_an_alias_counts_towards_the_size(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "MAX_VALUES", 9)
    # the body, and a list of three used twice: 1 + 2 * (1 + 3) = 9 values
    path = write(tmp_path, "shared.yaml", "a: &x [1, 2, 3]\nb: *x\n")
    assert items_of(path)[0].body == {"a": [1, 2, 3], "b": [1, 2, 3]}
    (tmp_path / "shared.yaml").write_text("a: &x [1, 2, 3]\nb: *x\nc: 0\n")
    assert "more than 9 values" in refusal(path)


def test_depth_is_still_limited(tmp_path):
    deep = json.dumps({"a": [[[]]]})
    assert items_of(write(tmp_path, "ok.json", deep))
    path = write(tmp_path, "deep.jsonl", '{"a": ' + "[" * 200 + "]" * 200 + "}")
    assert refusal(path).endswith("deep.jsonl:1: nested deeper than 200 levels")


@pytest.fixture
def tmpdir_spy(tmp_path, monkeypatch):
    """A private TMPDIR, to see what reading stdin leaves behind."""
    import tempfile

    spool_dir = tmp_path / "tmp"
    spool_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_dir))
    return spool_dir


def piped(data: bytes) -> io.TextIOWrapper:
    """Stdin as a pipe gives it: text over bytes, decoded only when read."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")


def test_stdin_leaves_no_file_on_disk_whatever_happens(tmpdir_spy):
    schema = {"properties": {"name": {"type": "string"}}}
    sources = inputs.expand_sources(["-"], piped(b'{"name": 5}'))
    assert list(tmpdir_spy.iterdir()) == []  # before the check fails, too
    with pytest.raises(InputError, match="-: name: 5 is not of type 'string'"):
        inputs.check_items(inputs.read_items(sources), schema)
    sources = inputs.expand_sources(["-"], piped(b'{"name": "ok"}'))
    assert inputs.check_items(inputs.read_items(sources), schema) == 1
    spool.remove_spooled()
    assert list(tmpdir_spy.iterdir()) == []


def test_an_interrupted_stdin_copy_leaves_no_file(tmpdir_spy):
    class Interrupted(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        inputs.expand_sources(["-"], io.TextIOWrapper(io.BufferedReader(Interrupted())))
    assert list(tmpdir_spy.iterdir()) == []


def test_stdin_that_is_not_utf8_names_its_line(tmpdir_spy):
    message = refusal("-", stdin=piped(b'{"name": "a"}\n{"name": "\xff"}\n'))
    assert message == "-:2: not UTF-8 text; convert it to UTF-8"
    assert list(tmpdir_spy.iterdir()) == []


def test_a_file_that_is_not_utf8_names_its_line(tmp_path, monkeypatch):
    from assetctl.assets import formats

    monkeypatch.setattr(formats, "CHUNK", 4)
    text = "name: x\n" + "é" * 40_000 + "\nbad: "  # é across chunk edges, unharmed
    path = write(tmp_path, "latin.yaml", text.encode() + b"caf\xe9\n")
    assert refusal(path) == f"{path}:3: not UTF-8 text; convert it to UTF-8"


def test_readers_of_stdin_keep_their_own_places():
    sources = inputs.expand_sources(["-"], piped(b'{"n": 1}\n{"n": 2}\n{"n": 3}\n'))
    first, second = inputs.read_items(sources), inputs.read_items(sources)
    assert next(first).body == {"n": 1}
    assert next(second).body == {"n": 1}
    assert [i.body["n"] for i in first] == [2, 3]
    assert [i.body["n"] for i in second] == [2, 3]
    spool.remove_spooled()


def test_the_cli_refuses_bad_stdin_with_exit_3_and_keeps_no_copy(
    tmp_path, tmpdir_spy, monkeypatch, capsys
):
    import sys

    from assetctl.cli.app import main

    monkeypatch.chdir(tmp_path)
    for name, value in {
        "ASSETCTL_TOKEN": "test-token",
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "ASSETCTL_SERVER_URL": "http://127.0.0.1:1",
        "ASSETCTL_REALM": "none",
        "ASSETCTL_API_URL": "http://127.0.0.1:1",
    }.items():
        monkeypatch.setenv(name, value)
    for data in (b'{"name": 5}', b"name: \xff\n"):
        monkeypatch.setattr(sys, "stdin", piped(data))
        assert main(["asset", "create", "-t", "datasets", "-"]) == 3
        assert len(capsys.readouterr().err.splitlines()) == 1
        assert list(tmpdir_spy.iterdir()) == []


def test_yaml_dates_and_times_stay_text(tmp_path):
    path = write(
        tmp_path,
        "dated.yaml",
        "created: 2020-01-01\nat: 2020-01-01T10:20:30Z\n"
        "history: [2019-12-31]\nexplicit: !!timestamp 2021-02-03\n",
    )
    [item] = items_of(path)
    assert item.body == {
        "created": "2020-01-01",
        "at": "2020-01-01T10:20:30Z",
        "history": ["2019-12-31"],
        "explicit": "2021-02-03",
    }
    assert item.digest  # JSON can spell it


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: x\non: push\n",
            ':2: key on is not text (YAML reads it as True); quote it: "on"',
        ),
        (
            "name: x\n1: y\n",
            ':2: key 1 is not text (YAML reads it as 1); quote it: "1"',
        ),
        ("meta:\n  sub: {~: z}\n", ":2: key ~ is not text (YAML reads it as None)"),
        (
            "? [a, b]\n: c\n",
            ":1: a list or mapping is used as a key; keys must be text",
        ),
        (
            "name: x\nsize: .inf\n",
            ":2: .inf is not a number JSON allows (it would be sent as Infinity)",
        ),
        (
            "- name: x\n  n: -1.5\n- {n: .NaN}\n",
            ":3: .NaN is not a number JSON allows",
        ),
        ("name: x\nn: 1.0e+999\n", ":2: 1.0e+999 is not a number JSON allows"),
        (
            "name: x\nn: " + "9" * 5000 + "\n",
            ":2: an integer of 5000 digits is too long",
        ),
        ("name: x\ntags: !!set {a, b}\n", ":2: a !!set value cannot be sent as JSON"),
        (
            "name: x\nblob: !!binary aGk=\n",
            ":2: a !!binary value cannot be sent as JSON",
        ),
        (
            'name: x\nnote: "bell\a"\n',
            ":2: not valid YAML: character U+0007 is not allowed here; "
            'write it as "\\u0007" inside double quotes',
        ),
        ("\x1b", ":1: not valid YAML: character U+001B is not allowed here"),
    ],
)
def test_yaml_that_json_cannot_carry_is_refused_with_its_line(tmp_path, text, message):
    path = write(tmp_path, "in.yaml", text)
    assert refusal(path).startswith(path + message)


def test_quoted_keys_and_merge_keys_are_text(tmp_path):
    path = write(tmp_path, "ok.yaml", 'base: &b {"on": 1}\nmerged: {<<: *b, "1": y}\n')
    assert items_of(path)[0].body == {"base": {"on": 1}, "merged": {"on": 1, "1": "y"}}


BIG = "1" * 5000


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "one.json",
            '{"a": 1,\n "n": ' + BIG + "}",
            "one.json:2: an integer of 5000 digits is too long (at most 4300)",
        ),
        (
            "one.json",
            '{"name": "1e999",\n "n": 1e999}',
            "one.json:2: 1e999 is too large for a number "
            "(it would be sent as Infinity)",
        ),
        (
            "one.json",
            '{"n": [1, \n\n-Infinity]}',
            "one.json:3: not valid JSON: -Infinity is not a number JSON allows",
        ),
        (
            "in.jsonl",
            '{"a": 1}\n\n{"n": NaN}\n',
            "in.jsonl:3: not valid JSON: NaN is not a number JSON allows",
        ),
        (
            "in.jsonl",
            '{"n": -' + BIG + "}\n",
            "in.jsonl:1: an integer of 5000 digits is too long",
        ),
        (
            "many.json",
            '[{"a": 1},\n {"a": "x",\n  "n": Infinity}]',
            "many.json:3: not valid JSON: Infinity is not a number JSON allows",
        ),
        (
            "many.json",
            '[{"a": 1},\n {"n": ' + BIG + "}]",
            "many.json:2: an integer of 5000 digits is too long",
        ),
        (
            "many.json",
            '[{"a": 1},\n {"n": 2E+400}]',
            "many.json:2: 2E+400 is too large for a number",
        ),
    ],
)
@pytest.mark.parametrize("chunk", [5, 1 << 16])
def test_json_numbers_an_api_cannot_take_are_refused_with_their_line(
    tmp_path, monkeypatch, name, text, message, chunk
):
    from assetctl.assets import formats

    monkeypatch.setattr(formats, "CHUNK", chunk)
    path = write(tmp_path, name, text)
    assert refusal(path).startswith(f"{tmp_path}/{message}")


def test_a_long_integer_on_stdin_is_refused_not_a_crash():
    message = refusal("-", stdin=io.StringIO('{"n": ' + BIG + "}"))
    assert message == "-:1: an integer of 5000 digits is too long (at most 4300)"


def test_set_under_a_field_that_is_not_an_object_is_refused():
    for pairs in (["a=2", "a.b=1"], ["a.b=[1]", "a.b.c=1"]):
        with pytest.raises(InputError, match=r"which has no fields; set either a"):
            inputs.parse_sets(pairs)
    assert inputs.parse_sets(["a={}", "a.b=1"]) == {"a": {"b": 1}}


def test_set_values_json_cannot_send():
    assert inputs.parse_sets(["a=NaN", "b=Infinity"]) == {"a": "NaN", "b": "Infinity"}
    for value in ("1e999", "[1, -1e400]", BIG):
        with pytest.raises(InputError, match=r"--set 'n=.*too (large|long)"):
            inputs.parse_sets([f"n={value}"])
