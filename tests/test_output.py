"""Rendering: streamed table, JSON array, JSON lines, YAML, ids, NO_COLOR, batches."""

from __future__ import annotations

import io
import json

import pytest
import yaml

from assetctl.assets.actions import Outcome
from assetctl.assets.client import PlannedRequest
from assetctl.cli import output
from assetctl.errors import InputError

ROWS = [{"id": f"a{n}", "name": f"n{n}", "meta": {"k": n}} for n in range(120)]


def render(fmt, rows=ROWS):
    out = io.StringIO()
    count = output.print_assets(iter(rows), fmt, "id", out)
    return count, out.getvalue()


def test_json_is_one_valid_array_even_when_empty():
    count, text = render("json")
    assert count == 120 and json.loads(text) == ROWS
    assert json.loads(render("json", [])[1]) == []


def test_jsonl_yaml_and_ids():
    assert [json.loads(x) for x in render("jsonl")[1].splitlines()] == ROWS
    assert list(yaml.safe_load_all(render("yaml")[1])) == ROWS
    assert render("ids")[1].split() == [r["id"] for r in ROWS]


def test_table_streams_in_aligned_chunks_with_one_header(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    count, text = render("table")
    lines = [line for line in text.splitlines() if line.strip()]
    assert count == 120
    assert lines[0].split() == ["id", "name", "meta"]
    body = [line for line in lines if line.startswith("a")]
    assert len(body) == 120
    assert len({line.index("n") for line in body}) == 1  # same column everywhere
    assert "\x1b[" not in text


def test_items_are_printed_before_the_stream_ends():
    out = io.StringIO()
    seen = []

    def rows():
        yield {"id": "first"}
        seen.append(out.getvalue())
        yield {"id": "second"}

    output.print_assets(rows(), "jsonl", "id", out)
    assert "first" in seen[0]


def test_no_color_is_honoured(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert output.console(io.StringIO()).no_color
    monkeypatch.delenv("NO_COLOR")
    assert not output.console(io.StringIO()).no_color


def test_resolve_format(monkeypatch):
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    assert output.resolve_format(None) == "json"
    assert output.resolve_format(None, piped="table") == "table"
    assert output.resolve_format(None, "yaml") == "yaml"
    assert output.resolve_format("ids", "yaml") == "ids"
    with pytest.raises(InputError, match="unknown output format"):
        output.resolve_format("xml")


def test_batch_lines(capsys):
    plan = PlannedRequest("POST", "http://api/x", {"Idempotency-Key": "k"}, {"a": 1})
    outcomes = [
        Outcome("a.json", "created", "1", 201),
        Outcome(
            "b.json",
            "failed",
            status=412,
            error="HTTP 412 Precondition Failed",
            exit_code=8,
        ),
        Outcome("c.json", "planned", plan=plan, would="created"),
    ]
    out = io.StringIO()
    with output.OutcomeReporter("json", 3, out=out) as report:
        for outcome in outcomes:
            report(outcome)
    records = [json.loads(x) for x in out.getvalue().splitlines()]
    assert records[0] == {
        "input": "a.json",
        "result": "created",
        "id": "1",
        "status": 201,
    }
    assert records[1]["exit_code"] == 8 and records[1]["status"] == 412
    assert (
        records[2]["request"]["body"] == {"a": 1} and records[2]["would"] == "created"
    )
    assert "b.json: HTTP 412" in capsys.readouterr().err

    out = io.StringIO()
    with output.OutcomeReporter("table", 3, out=out) as report:
        for outcome in outcomes:
            report(outcome)
    assert out.getvalue().startswith("1\nPOST http://api/x\nIdempotency-Key: k\n")
