"""The asset commands, run in-process against real styled servers (no Keycloak)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assetctl.cli.app import main
from tests.servers.styled import AssetServer, Style

ROOT = Path(__file__).resolve().parent.parent

REGISTRY = """\
types:
  things:
    collection: /things
    list: {paging: page, items: items, page_size: 5, total: total}
    schema:
      type: object
      required: [name]
      properties: {name: {type: string}}
  patched:
    collection: /things
    edit: merge-patch
    id_from: location
    list: {paging: link-header, size_param: limit, page_size: 5}
  checked:
    collection: /things
    edit: merge-patch
    schema:
      type: object
      required: [name]
      properties: {name: {type: string}}
"""


@pytest.fixture
def env(tmp_path, monkeypatch):
    registry = tmp_path / "asset-types.yaml"
    registry.write_text(REGISTRY)
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "ASSETCTL_TOKEN": "test-token",
        "ASSETCTL_REGISTRY": str(registry),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "ASSETCTL_SERVER_URL": "http://127.0.0.1:1",
        "ASSETCTL_REALM": "none",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path


def run(server, *args, stdin=None, monkeypatch=None):
    return main(["--api-url", server.url, *args])


def test_create_list_get_edit_delete(env, capsys):
    (env / "a.json").write_text('{"id": "a/1", "name": "first"}')
    with AssetServer() as server:
        assert run(server, "asset", "create", "-t", "things", "a.json") == 0
        assert capsys.readouterr().out == "a/1\n"

        assert run(server, "asset", "list", "-t", "things", "-o", "json") == 0
        listed = json.loads(capsys.readouterr().out)
        assert [a["id"] for a in listed] == ["a/1"]

        (env / "b.json").write_text('{"name": "second"}')
        assert run(server, "asset", "edit", "-t", "things", "a/1", "b.json") == 0
        assert server.assets["a/1"]["name"] == "second"

        assert (
            run(server, "asset", "edit", "-t", "things", "a/1", "--set", "size=3") == 0
        )
        assert server.assets["a/1"]["size"] == 3

        assert run(server, "asset", "get", "-t", "things", "a/1", "-o", "json") == 0
        capsys.readouterr()
        assert run(server, "asset", "get", "-t", "things", "a/1", "-o", "yaml") == 0
        assert "name: second" in capsys.readouterr().out

        assert run(server, "asset", "delete", "-t", "things", "a/1") == 3
        assert "pass --yes" in capsys.readouterr().err
        assert run(server, "asset", "delete", "-t", "things", "a/1", "--yes") == 0
        assert server.assets == {}


def test_bad_input_is_refused_before_anything_is_sent(env, capsys):
    (env / "ok.json").write_text('{"name": "fine"}')
    (env / "bad.json").write_text('{"name": 7}')
    with AssetServer() as server:
        assert (
            run(server, "asset", "create", "-t", "things", "ok.json", "bad.json") == 3
        )
        assert server.requests == []
    err = capsys.readouterr().err
    assert err.startswith("assetctl: error: bad.json: name: 7 is not of type 'string'")


def test_unknown_type_says_did_you_mean(env, capsys):
    with AssetServer() as server:
        assert run(server, "asset", "list", "-t", "thing") == 3
    assert "did you mean 'things'" in capsys.readouterr().err


def test_json_lines_per_item_and_some_failed_exit(env, capsys):
    lines = [json.dumps({"id": f"i{n}", "name": "x"}) for n in range(5)]
    (env / "in.jsonl").write_text("\n".join(lines) + "\n")
    with AssetServer() as server:
        server.assets["i2"] = {"id": "i2", "version": 1}
        code = run(server, "asset", "create", "-t", "things", "in.jsonl", "-o", "json")
    out = capsys.readouterr()
    records = [json.loads(line) for line in out.out.splitlines()]
    assert code == 1
    assert sorted(r["result"] for r in records) == ["created"] * 4 + ["failed"]
    failed = next(r for r in records if r["result"] == "failed")
    assert failed["status"] == 409 and failed["input"].endswith("in.jsonl:3")
    assert "HTTP 409 Conflict" in failed["error"]
    assert "4 created" in out.err and "1 failed" in out.err


def test_one_item_conflict_exits_8(env, capsys):
    (env / "b.json").write_text('{"name": "b"}')
    with AssetServer() as server:
        server.seed(1)

        def someone_else_writes_first(method, path):
            if method == "PUT":
                server.assets["t00000"]["version"] += 1

        server.fault = someone_else_writes_first
        assert run(server, "asset", "edit", "-t", "things", "t00000", "b.json") == 8
        assert server.assets["t00000"]["name"] == "t00000"
    assert "HTTP 412 Precondition Failed" in capsys.readouterr().err


def test_apply_creates_updates_and_leaves(env, capsys):
    (env / "want.yaml").write_text(
        "id: keep\nname: same\n---\nid: change\nname: new\n---\nid: add\nname: added\n"
    )
    with AssetServer() as server:
        server.assets["keep"] = {"id": "keep", "name": "same", "version": 1}
        server.assets["change"] = {"id": "change", "name": "old", "version": 1}
        assert (
            run(
                server,
                "asset",
                "apply",
                "-t",
                "things",
                "want.yaml",
                "--dry-run",
                "-o",
                "json",
            )
            == 0
        )
        planned = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        assert server.assets["change"]["name"] == "old" and "add" not in server.assets
        assert (
            run(server, "asset", "apply", "-t", "things", "want.yaml", "-o", "json")
            == 0
        )
        applied = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        assert (
            run(server, "asset", "apply", "-t", "things", "want.yaml", "-o", "json")
            == 0
        )
        again = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    by_id = {r["id"]: r for r in planned}
    assert by_id["keep"]["result"] == "unchanged"
    assert by_id["change"]["would"] == "updated"
    assert by_id["change"]["request"]["method"] == "PUT"
    assert by_id["add"]["request"]["method"] == "POST"
    assert sorted(r["result"] for r in applied) == ["created", "unchanged", "updated"]
    assert [r["result"] for r in again] == ["unchanged"] * 3


def test_dry_run_sends_no_write(env, capsys):
    (env / "a.json").write_text('{"name": "a"}')
    with AssetServer() as server:
        server.seed(1)
        assert (
            run(server, "asset", "create", "-t", "things", "a.json", "--dry-run") == 0
        )
        assert (
            run(
                server,
                "asset",
                "edit",
                "-t",
                "things",
                "t00000",
                "--set",
                "x=1",
                "--dry-run",
            )
            == 0
        )
        assert (
            run(server, "asset", "delete", "-t", "things", "t00000", "--dry-run") == 0
        )
        writes = [r for r in server.requests if r[0] != "GET"]
    out = capsys.readouterr().out
    assert writes == []
    assert "POST " in out and "PUT " in out and "DELETE " in out
    assert 'If-Match: "1"' in out


def test_bulk_edit_by_ids_in_files_and_merge_patch(env, capsys):
    (env / "edits.jsonl").write_text(
        '{"id": "t00000", "tag": "a"}\n{"id": "t00001", "tag": "b"}\n'
    )
    with AssetServer(
        Style(edit="merge-patch", paging="link-header", bare_array=True)
    ) as server:
        server.seed(2)
        assert run(server, "asset", "edit", "-t", "patched", "edits.jsonl") == 0
        assert [server.assets[i]["tag"] for i in ("t00000", "t00001")] == ["a", "b"]
        assert server.assets["t00000"]["name"] == "t00000"


def test_edit_files_without_ids_are_refused(env, capsys):
    (env / "a.json").write_text('{"name": "a"}')
    (env / "b.json").write_text('{"name": "b"}')
    with AssetServer() as server:
        assert run(server, "asset", "edit", "-t", "things", "a.json", "b.json") == 3
    assert "no 'id' field" in capsys.readouterr().err


def test_edit_id_file_naming_another_asset_is_refused_before_sending(env, capsys):
    (env / "other.json").write_text('{"id": "t00001", "name": "x"}')
    with AssetServer() as server:
        server.seed(2)
        code = run(server, "asset", "edit", "-t", "things", "t00000", "other.json")
        assert code == 3
        assert server.requests == []
    assert "t00001" in capsys.readouterr().err


def test_list_limit_filter_ids_and_table(env, capsys):
    with AssetServer() as server:
        server.seed(12, colour="red")
        server.assets["t00004"]["colour"] = "blue"
        assert (
            run(server, "asset", "list", "-t", "things", "-o", "ids", "--limit", "7")
            == 0
        )
        assert capsys.readouterr().out.split() == [f"t{n:05d}" for n in range(7)]
        assert (
            run(
                server,
                "asset",
                "list",
                "-t",
                "things",
                "-o",
                "ids",
                "-f",
                "colour=blue",
            )
            == 0
        )
        assert capsys.readouterr().out.split() == ["t00004"]
        assert run(server, "asset", "list", "-t", "things", "-o", "table") == 0
        table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["id", "name", "version"]
    assert "t00011" in table and "\x1b[" not in table


def test_api_command(env, capsys):
    (env / "body.json").write_text('{"id": "raw", "name": "r"}')
    with AssetServer() as server:
        assert run(server, "api", "POST", "/things", "--data", "body.json") == 0
        assert json.loads(capsys.readouterr().out)["id"] == "raw"
        assert run(server, "api", "GET", "/things/raw") == 0
        assert json.loads(capsys.readouterr().out)["name"] == "r"
        assert run(server, "api", "GET", "/things/none") == 12
        assert "HTTP 404" in capsys.readouterr().err
        assert run(server, "api", "GET", "http://example.com/x") == 3


def test_types_command(env, capsys):
    with AssetServer() as server:
        assert run(server, "asset", "types", "-o", "ids") == 0
    out = capsys.readouterr()
    assert out.out.split() == ["things", "patched", "checked"]
    assert "asset-types.yaml" in out.err


@pytest.mark.parametrize("bad", ["", ".", ".."])
def test_ids_that_would_reach_another_path_are_refused_before_sending(env, capsys, bad):
    (env / "b.json").write_text('{"name": "b"}')
    (env / "with-id.json").write_text(json.dumps({"id": bad, "name": "x"}))
    (env / "bulk.jsonl").write_text(
        '{"id": "t00000", "name": "ok"}\n' + json.dumps({"id": bad, "name": "x"}) + "\n"
    )
    commands = [
        ["asset", "get", "-t", "things", bad],
        ["asset", "delete", "-t", "things", "t00000", bad, "--yes"],
        ["asset", "edit", "-t", "things", "t00000", bad, "--set", "a=1"],
        ["asset", "edit", "-t", "things", bad, "b.json"],
        ["asset", "edit", "-t", "things", "bulk.jsonl"],
        ["asset", "create", "-t", "things", "with-id.json"],
        ["asset", "apply", "-t", "things", "with-id.json"],
    ]
    with AssetServer() as server:
        server.seed(1)
        for command in commands:
            if bad in (".", "..") and command[4:] == [bad, "b.json"]:
                continue  # an existing directory first: a bulk edit of its files
            assert run(server, *command) == 3, command
            err = capsys.readouterr().err
            assert err.count("\n") == 1, err
            assert f"{bad!r} cannot be an asset id" in err
        assert server.requests == []


@pytest.mark.parametrize("answer", ["html", "cut-json", "empty-200", "json-list"])
def test_a_get_answer_that_is_not_a_json_object_is_an_api_error(env, capsys, answer):
    with AssetServer() as server:
        server.seed(1)
        server.fault = lambda method, path: answer if method == "GET" else None
        assert run(server, "asset", "get", "-t", "things", "t00000", "-o", "json") == 7
    out = capsys.readouterr()
    assert out.out == ""
    assert "GET /things/t00000: HTTP 200 answer is not" in out.err
    assert "Content-Type: " in out.err and out.err.count("\n") == 1


@pytest.mark.parametrize("answer", ["html", "cut-json", "empty-200"])
def test_an_edit_never_sends_a_body_built_from_an_unreadable_answer(
    env, capsys, answer
):
    with AssetServer() as server:
        server.seed(1, size=1, colour="red")
        server.fault = lambda method, path: answer if method == "GET" else None
        code = run(server, "asset", "edit", "-t", "things", "t00000", "--set", "size=3")
        writes = [r for r in server.requests if r[0] != "GET"]
        stored = server.assets["t00000"]
    assert code == 7 and writes == []
    assert stored["colour"] == "red" and stored["size"] == 1
    assert "HTTP 200 answer is not JSON" in capsys.readouterr().err


def test_a_list_page_that_is_not_json_names_status_and_type(env, capsys):
    with AssetServer() as server:
        server.seed(3)
        server.fault = lambda method, path: "html"
        assert run(server, "asset", "list", "-t", "things", "-o", "jsonl") == 7
    err = capsys.readouterr().err
    assert "HTTP 200 answer is not JSON (Content-Type: text/html)" in err


def start(server, *args):
    """The CLI in its own process, stdout a real pipe (for `| head -1`)."""
    return subprocess.Popen(
        [sys.executable, "-m", "assetctl", "--api-url", server.url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def read_one_line_and_leave(child):
    first = child.stdout.readline(100)
    child.stdout.close()
    err = child.stderr.read().decode()
    return first, err, child.wait(timeout=60)


def test_a_batch_whose_reader_leaves_stops_journaled_and_a_rerun_finishes(env):
    rows = [{"id": f"r{n:03d}", "name": "n"} for n in range(300)]
    (env / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    slow_writes = lambda m, p: time.sleep(0.005) if m == "POST" else None  # noqa: E731
    command = ["asset", "create", "-t", "things", "in.jsonl"]
    with AssetServer(fault=slow_writes) as server:
        first, err, code = read_one_line_and_leave(start(server, *command))
        created = set(server.assets)
        journal = next((env / "state" / "assetctl" / "journals").glob("*.jsonl"))
        journaled = {
            json.loads(line)["id"] for line in journal.read_text().splitlines()[1:]
        }
        rerun = start(server, *command)
        out, rerun_err = rerun.communicate(timeout=60)
        finished = dict(server.assets)
    assert code == 1 and first.decode().strip() in created
    assert 0 < len(created) < 300 and journaled == created
    assert err.splitlines()[-1] == (
        "assetctl: error: stdout was closed (its reader went away), so the batch "
        "stopped; what finished is journaled: run the same command again to finish it"
    )
    assert rerun.returncode == 0, rerun_err
    assert set(finished) == {r["id"] for r in rows}
    assert f"{len(created)} done in an earlier run" in rerun_err.decode()


@pytest.mark.parametrize(
    "command",
    [
        ["asset", "list", "-t", "things", "-o", "jsonl"],
        ["asset", "list", "-t", "things", "-o", "json"],
        ["asset", "list", "-t", "things", "-o", "table"],
        ["asset", "get", "-t", "things", "t00000", "-o", "yaml"],
        ["api", "GET", "/things?size=2000"],
    ],
)
def test_readers_whose_reader_leaves_exit_0_quietly(env, command):
    with AssetServer() as server:
        server.seed(2000, blurb="x" * 200)
        server.assets["t00000"]["blurb"] = "x" * 500_000
        first, err, code = read_one_line_and_leave(start(server, *command))
    assert first and code == 0 and err == ""


@pytest.mark.parametrize(
    ("type_name", "style", "sets", "reason"),
    [
        ("things", Style(), ["name=7"], "name: 7 is not of type 'string'"),
        ("things", Style(), ["name=null"], "'name' is a required property"),
        ("checked", Style(edit="merge-patch"), ["name=7"], "name: 7 is not of type"),
        ("checked", Style(edit="merge-patch"), ["name=null"], "'name' is a required"),
    ],
)
def test_set_edits_are_checked_against_the_schema_before_sending(
    env, capsys, type_name, style, sets, reason
):
    with AssetServer(style) as server:
        server.seed(1)
        args = ["asset", "edit", "-t", type_name, "t00000"]
        code = run(server, *args, *(f"--set={s}" for s in sets))
        writes = [r for r in server.requests if r[0] != "GET"]
        stored = server.assets["t00000"]
    err = " ".join(capsys.readouterr().err.split())
    assert code == 3 and writes == [] and stored["name"] == "t00000"
    assert "t00000: the edited asset would not match the schema: " in err
    assert reason in err and "nothing was sent" in err


def test_a_merge_patch_file_is_checked_as_the_asset_it_would_make(env, capsys):
    (env / "patch.json").write_text('{"name": null, "tag": "x"}')
    with AssetServer(Style(edit="merge-patch")) as server:
        server.seed(1)
        assert (
            run(server, "asset", "edit", "-t", "checked", "t00000", "patch.json") == 3
        )
        assert [r for r in server.requests if r[0] != "GET"] == []
        (env / "patch.json").write_text('{"tag": "x"}')
        assert (
            run(server, "asset", "edit", "-t", "checked", "t00000", "patch.json") == 0
        )
        assert server.assets["t00000"]["tag"] == "x"
    assert "'name' is a required property" in " ".join(capsys.readouterr().err.split())


@pytest.fixture
def fast_retries(monkeypatch):
    from functools import partial

    from assetctl.assets import client
    from assetctl.assets.retry import RetryPolicy

    monkeypatch.setattr(
        client, "RetryPolicy", partial(RetryPolicy, base=0.01, cap=0.01)
    )


def test_an_unreachable_api_ends_the_batch_with_exit_9(env, capsys, fast_retries):
    lines = [json.dumps({"name": f"n{n}"}) for n in range(40)]
    (env / "in.jsonl").write_text("\n".join(lines) + "\n")
    gone = AssetServer()
    gone.httpd.server_close()
    started = time.monotonic()
    code = run(gone, "asset", "create", "-t", "things", "in.jsonl", "-o", "json")
    took = time.monotonic() - started
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 9 and took < 30
    assert len(records) == 40
    skipped = [r for r in records if r["result"] == "skipped"]
    assert skipped and all(r["reason"] == "not attempted" for r in skipped)
    assert f"{len(skipped)} not attempted (the batch stopped)" in err
    assert err.splitlines()[-1].startswith(
        "assetctl: error: the API could not be reached for 5 items in a row, so the "
        "batch stopped; check the API URL"
    )


def test_a_forbidden_batch_names_what_it_did_not_attempt(env, capsys):
    lines = [json.dumps({"name": f"n{n}"}) for n in range(20)]
    (env / "in.jsonl").write_text("\n".join(lines) + "\n")
    with AssetServer(fault=lambda m, p: "403") as server:
        code = run(server, "asset", "create", "-t", "things", "in.jsonl", "-o", "json")
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    failed = sum(r["result"] == "failed" for r in records)
    assert code == 5 and len(records) == 20
    assert f"{failed} failed, {20 - failed} not attempted (the batch stopped)" in err


def nested(depth: int, ext: str) -> str:
    if ext == ".yaml":
        return "name: x\nd: " + "[" * depth + "]" * depth + "\n"
    return '{"name": "x", "d": ' + "[" * depth + "]" * depth + "}\n"


@pytest.mark.parametrize("ext", [".json", ".jsonl", ".yaml"])
@pytest.mark.parametrize("depth", [300, 100_000])
def test_inputs_nested_too_deep_are_one_line_errors(env, capsys, ext, depth):
    (env / f"deep{ext}").write_text(nested(depth, ext))
    with AssetServer() as server:
        assert run(server, "asset", "create", "-t", "things", f"deep{ext}") == 3
        assert server.requests == []
    err = capsys.readouterr().err
    assert err.startswith(f"assetctl: error: deep{ext}") and err.count("\n") == 1
    assert "nest" in err  # ours ("nested deeper than 200 levels") or libyaml's


def test_a_registry_that_is_not_utf8_or_a_directory_is_one_line(env, capsys):
    (env / "latin1.yaml").write_bytes(b"types:\n  caf\xe9:\n    collection: /x\n")
    with AssetServer() as server:
        assert run(server, "--registry", "latin1.yaml", "asset", "types") == 3
        assert capsys.readouterr().err == (
            "assetctl: error: latin1.yaml:2: not UTF-8 text; save the registry as "
            "UTF-8\n"
        )
        assert run(server, "--registry", str(env), "asset", "types") == 3
        err = capsys.readouterr().err
    assert f"registry {env} (from --registry) is a directory" in err


def test_a_state_folder_that_is_a_file_names_the_path(env, capsys, monkeypatch):
    (env / "a.json").write_text('{"name": "a"}')
    (env / "state-file").write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(env / "state-file"))
    with AssetServer() as server:
        for fresh in ([], ["--fresh"]):
            command = ["asset", "create", "-t", "things", "a.json", *fresh]
            assert run(server, *command) == 3
            err = capsys.readouterr().err
            assert err.startswith(
                "assetctl: error: cannot use the batch journal at "
                f"{env / 'state-file' / 'assetctl' / 'journals'}: Not a directory;"
            )
            assert err.count("\n") == 1
        assert server.requests == []


def test_a_redirect_loop_is_an_api_error(env, capsys):
    with AssetServer(fault=lambda m, p: "redirect-loop") as server:
        assert run(server, "asset", "get", "-t", "things", "x") == 7
        assert run(server, "api", "GET", "/things") == 7
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "assetctl: error: GET /things/x: the API redirected too often "
        "(a redirect loop?); check the API URL",
        "assetctl: error: GET /things: the API redirected too often "
        "(a redirect loop?); check the API URL",
    ]


@pytest.mark.parametrize("fmt", ["json", "jsonl", "yaml", "ids", "table"])
@pytest.mark.parametrize("answer", ["401", "500", "html"])
def test_a_list_whose_first_page_fails_prints_nothing(env, capsys, fmt, answer):
    with AssetServer() as server:
        server.seed(12)
        server.fault = lambda method, path: answer
        code = run(server, "asset", "list", "-t", "things", "-o", fmt)
    out, err = capsys.readouterr()
    assert code == {"401": 4, "500": 7, "html": 7}[answer]
    assert out == "" and err.count("\n") == 1


def test_a_list_that_fails_later_has_streamed_the_pages_before(env, capsys):
    pages = iter([None, "500"])
    with AssetServer() as server:
        server.seed(12)
        server.fault = lambda method, path: next(pages, "500")
        assert run(server, "asset", "list", "-t", "things", "-o", "jsonl") == 7
    assert len(capsys.readouterr().out.splitlines()) == 5


def test_per_item_errors_are_one_line_each_however_long(env, capsys):
    rows = [{"id": f"{'long-id-' * 12}{n}", "name": "x"} for n in range(3)]
    (env / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with AssetServer() as server:
        for row in rows:
            server.assets[row["id"]] = {**row, "version": 1}
        assert run(server, "asset", "create", "-t", "things", "in.jsonl") == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4 and lines[-1] == "3 failed"
    assert all(len(line) > 120 and "HTTP 409 Conflict" in line for line in lines[:3])


def test_api_honours_an_explicit_authorization_header(env, capsys, monkeypatch):
    with AssetServer() as server:
        server.seed(1)
        assert run(server, "api", "GET", "/things/t00000") == 0
        monkeypatch.delenv("ASSETCTL_TOKEN")  # no stored token is needed either
        assert (
            run(
                server,
                "api",
                "GET",
                "/things/t00000",
                "-H",
                "authorization: Basic eA==",
            )
            == 0
        )
        seen = [
            next(v for k, v in h.items() if k.lower() == "authorization")
            for h in server.headers_seen
        ]
    assert seen == ["Bearer test-token", "Basic eA=="]


def test_api_body_ends_with_a_newline_and_include_separates_headers(env, capsys):
    with AssetServer() as server:
        server.seed(1)
        assert run(server, "api", "GET", "/things/t00000", "-i") == 0
    out, err = capsys.readouterr()
    assert out.endswith("}\n") and json.loads(out)["id"] == "t00000"
    head = err.split("\n")
    assert head[0] == "HTTP 200 OK" and "Content-Type: application/json" in head
    assert err.endswith("\n\n")


def test_declining_a_delete_says_nothing_was_deleted_and_exits_0(env):
    import pexpect

    with AssetServer() as server:
        server.seed(1)
        child = pexpect.spawn(
            sys.executable,
            ["-m", "assetctl", "--api-url", server.url, "asset", "delete"]
            + ["-t", "things", "t00000"],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            encoding="utf-8",
            timeout=30,
        )
        child.expect(r"Delete things t00000\? \[y/N\]")
        child.sendline("n")
        child.expect("nothing deleted")
        child.expect(pexpect.EOF)
        child.close()
        assert "t00000" in server.assets
    assert child.exitstatus == 0


class EchoingApi:
    """A real HTTP server that refuses everything and quotes the request's
    Authorization header and an escape sequence back in its error body."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def _refuse(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                body = json.dumps(
                    {
                        "message": "bad request with "
                        + self.headers.get("Authorization", "")
                        + " \x1b]52;c;aGk=\x07 end"
                    }
                ).encode()
                self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _refuse

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> EchoingApi:
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("output", [[], ["-o", "json"]])
def test_a_server_quoting_the_token_back_never_gets_it_printed(
    env, capsys, monkeypatch, output
):
    token = "opaque-access-token-1234567890"
    monkeypatch.setenv("ASSETCTL_TOKEN", token)
    rows = [{"id": f"a{n}", "name": "x"} for n in range(2)]
    (env / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with EchoingApi() as api:
        code = main(
            [
                "--api-url",
                api.url,
                "asset",
                "create",
                "-t",
                "things",
                *output,
                "in.jsonl",
            ]
        )
    out, err = capsys.readouterr()

    assert code == 1
    assert "bad request with Bearer [redacted]" in err
    assert token not in out + err
    assert "\x1b" not in out + err and "\\x1b]52" in err


def test_a_registry_lying_in_the_working_directory_cannot_collect_tokens(
    env, capsys, monkeypatch
):
    monkeypatch.delenv("ASSETCTL_REGISTRY")
    with AssetServer() as server:
        server.seed(1)
        (env / "asset-types.yaml").write_text(
            f"types:\n  things: {{collection: /things, api_url: '{server.url}'}}\n"
        )
        refused = main(["asset", "get", "-t", "things", "t00000"])
        _, err = capsys.readouterr()
        assert refused == 3
        assert "found in the working directory" in err and "--api-url" in err
        assert server.headers_seen == []  # not even asked

        # Named on purpose, the same file is trusted to say where the API is.
        named = main(
            ["--registry", "asset-types.yaml", "asset", "get", "-t", "things", "t00000"]
        )
        assert named == 0
        assert server.headers_seen[-1]["Authorization"] == "Bearer test-token"


def test_a_delete_batch_rerun_skips_what_it_deleted_before(env, capsys):
    with AssetServer() as server:
        server.seed(2)  # t00000, t00001; "late" does not exist yet
        args = ["asset", "delete", "-t", "things", "--yes", "-o", "json"]
        assert run(server, *args, "t00000", "late", "t00001") == 1
        capsys.readouterr()

        server.assets["late"] = {"id": "late", "name": "x", "version": 1}
        assert run(server, *args, "t00000", "late", "t00001") == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    results = {line["id"]: (line["result"], line.get("reason")) for line in lines}
    assert results == {
        "t00000": ("skipped", "done in an earlier run"),
        "late": ("deleted", None),
        "t00001": ("skipped", "done in an earlier run"),
    }
    assert server.assets == {}


def test_apply_of_a_server_id_type_never_creates_under_another_id(env, capsys):
    (env / "named.json").write_text('{"id": "ghost", "name": "x"}')
    (env / "new.json").write_text('{"name": "fresh"}')
    with AssetServer(Style(id_from="location", edit="merge-patch")) as server:
        assert run(server, "asset", "apply", "-t", "patched", "named.json") == 12
        assert "the server chooses ids" in capsys.readouterr().err
        assert server.assets == {}
        assert run(server, "asset", "apply", "-t", "patched", "new.json") == 0
        assert [a["name"] for a in server.assets.values()] == ["fresh"]


def test_set_of_an_unusable_id_is_refused_before_sending(env, capsys):
    with AssetServer() as server:
        server.seed(1)
        assert (
            run(server, "asset", "edit", "-t", "things", "t00000", "--set", "id=..")
            == 3
        )
        assert "cannot be an asset id" in capsys.readouterr().err
        assert not [r for r in server.requests if r[0] != "GET"]


def test_a_rerun_naming_the_file_another_way_resumes_the_same_batch(env, capsys):
    rows = [
        {"id": "taken", "name": "x"},
        {"id": "n1", "name": "x"},
        {"id": "n2", "name": "x"},
    ]
    (env / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (env / "sub").mkdir()
    with AssetServer() as server:
        server.assets["taken"] = {"id": "taken", "name": "other", "version": 1}
        assert run(server, "asset", "create", "-t", "things", "in.jsonl") == 1
        capsys.readouterr()

        del server.assets["taken"]
        os.chdir(env / "sub")
        again = ["asset", "create", "-t", "things", "-o", "json", "../in.jsonl"]
        assert run(server, *again) == 0
        lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {x["id"]: x["result"] for x in lines} == {
        "taken": "created",
        "n1": "skipped",
        "n2": "skipped",
    }


def test_two_different_piped_batches_are_two_batches(tmp_path):
    from assetctl.assets import inputs

    def identity(text: str) -> str:
        (source,) = inputs.expand_sources(["-"], stdin=io.StringIO(text))
        return source.identity

    assert identity('{"name": "a"}') == identity('{"name": "a"}')
    assert identity('{"name": "a"}') != identity('{"name": "b"}')


def test_a_schema_ref_that_leads_nowhere_is_a_registry_error(env, capsys):
    (env / "asset-types.yaml").write_text(
        "types:\n  things:\n    collection: /things\n    schema:\n"
        "      type: object\n"
        "      properties: {name: {$ref: '#/definitions/missing'}}\n"
    )
    (env / "a.json").write_text('{"name": "x"}')
    with AssetServer() as server:
        assert run(server, "asset", "create", "-t", "things", "a.json") == 3
        assert server.requests == []
    err = capsys.readouterr().err
    assert "schema cannot be used" in err and "/definitions/missing" in err
    assert len(err.strip().splitlines()) == 1


def test_a_repeated_filter_is_sent_as_a_repeated_parameter(env, capsys):
    with AssetServer() as server:
        server.seed(1)
        code = run(
            server, "asset", "list", "-t", "things", "-f", "tag=a", "-f", "tag=b"
        )
        assert code == 0
        (path,) = [p for m, p in server.requests if m == "GET"][:1]
    assert "tag=a&tag=b" in path


def test_apply_sees_a_field_left_out_when_the_type_names_its_server_fields(env, capsys):
    (env / "asset-types.yaml").write_text(
        "types:\n  things:\n    collection: /things\n    server_fields: [version]\n"
    )
    (env / "want.json").write_text('{"id": "a1", "name": "x"}')
    with AssetServer() as server:
        server.assets["a1"] = {"id": "a1", "name": "x", "tags": ["old"], "version": 1}
        assert (
            run(server, "asset", "apply", "-t", "things", "-o", "json", "want.json")
            == 0
        )
        first = json.loads(capsys.readouterr().out)
        assert first["result"] == "updated"
        assert "tags" not in server.assets["a1"]

        assert (
            run(server, "asset", "apply", "-t", "things", "-o", "json", "want.json")
            == 0
        )
        assert json.loads(capsys.readouterr().out)["result"] == "unchanged"
