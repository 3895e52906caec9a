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


WIDE = [
    {
        "id": f"asset-{n:04d}",
        "name": "a long name " * 5,
        "description": "d" * 60,
        "owner": "someone@example.com",
        "size": n,
        "tags": ["a", "b"],
        "created": "2026-12-01T10:00:00Z",
        "updated": "2026-12-02T10:00:00Z",
        "extra": 1,
    }
    for n in range(3)
]


def table_at(width, rows, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    output.print_assets(iter(rows), "table", "id", out)
    return out.getvalue()


def test_a_table_cut_to_the_width_shows_an_ellipsis_and_names_what_it_left_out(
    monkeypatch, capsys
):
    text = table_at(80, WIDE, monkeypatch)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].split()[:2] == ["id", "name"]
    assert "asset-0000" in text and "…" in lines[2]  # truncation is visible
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("assetctl: the table leaves out ")
    shown = lines[0].replace("…", "").split()
    for field in WIDE[0]:
        assert any(field.startswith(s) for s in shown) or field in err


def test_a_wide_table_keeps_every_column_up_to_eight(monkeypatch, capsys):
    text = table_at(250, WIDE, monkeypatch)
    assert text.splitlines()[0].split() == list(WIDE[0])[:8]
    assert "leaves out extra;" in capsys.readouterr().err


def test_fields_first_seen_after_the_first_chunk_are_named(monkeypatch, capsys):
    rows = [{"id": f"a{n}"} for n in range(60)]
    rows[55]["late"] = "x"
    table_at(80, rows, monkeypatch)
    assert "leaves out late;" in capsys.readouterr().err


def test_fit_widths_squeezes_the_widest_then_leaves_out_from_the_end():
    assert output.fit_widths({"id": 8, "a": 30, "b": 30}, 80) == {
        "id": 8,
        "a": 30,
        "b": 30,
    }
    fitted = output.fit_widths({"id": 8, "a": 40, "b": 40}, 60)
    assert list(fitted) == ["id", "a", "b"] and sum(fitted.values()) + 6 <= 60
    assert output.fit_widths({"id": 30, "a": 40, "b": 40}, 45) == {"id": 30, "a": 12}
    assert output.fit_widths({"id": 50, "a": 40}, 20) == {"id": 20}


@pytest.mark.parametrize("columns", ["0", "-3", "5"])
def test_a_columns_value_too_small_for_anything_still_shows_the_table(
    monkeypatch, capsys, columns
):
    monkeypatch.setenv("COLUMNS", columns)
    output.print_assets(iter([{"id": "a1", "name": "first"}]), "table", "id")
    assert "a1" in capsys.readouterr().out
