"""Rendering results: a table on a terminal, JSON, JSON lines, YAML or bare ids.

Results go to stdout and nothing else does; progress, per-item errors and summaries
go to stderr. Lists are printed as they stream in. `NO_COLOR` turns colour off.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from itertools import islice
from typing import IO, Any

import yaml
from rich import box
from rich.console import Console
from rich.table import Table

from assetctl.assets.batch import OutputClosed
from assetctl.errors import InputError

FORMATS = ("table", "json", "jsonl", "yaml", "ids")
TABLE_CHUNK = 50  # rows measured for column widths; later rows reuse them
MAX_COLUMNS = 8  # more are named on stderr as left out
MIN_CONSOLE_WIDTH = 20
MAX_WIDTH = 40  # characters of a column before its cells end in an ellipsis
MIN_WIDTH = 10  # narrowest a column is squeezed to before columns are left out
_GAP = 3  # characters between two columns (padding and divider)


def resolve_format(
    explicit: str | None, default: str | None = None, piped: str = "json"
) -> str:
    """The chosen format: the flag, the global default, else table on a terminal.

    Writing commands pass `piped="table"` so `$(assetctl asset create ...)` is the ids.
    """
    chosen = explicit or default
    if chosen is None:
        return "table" if sys.stdout.isatty() else piped
    if chosen not in FORMATS:
        raise InputError(
            f"unknown output format {chosen!r}", hint=f"use {', '.join(FORMATS)}"
        )
    return chosen


@contextmanager
def reader_may_leave(out: IO[str] | None = None) -> Iterator[None]:
    """`assetctl asset list | head -1`: a reader that stops early is not an error."""
    try:
        yield
    except BrokenPipeError:
        silence(out or sys.stdout)


def silence(stream: IO[str]) -> None:
    """After a broken pipe, send the stream's descriptor to /dev/null: what is still
    buffered is then flushed there at exit instead of failing a second time."""
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (tests); nothing is flushed at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich exits with 1 here (rich 14); whether a reader that left is an error is
        # for the command to say (`reader_may_leave`, `OutcomeReporter`).
        raise BrokenPipeError


def console(stream: IO[str] | None = None, *, stderr: bool = False) -> Console:
    """A console for results (stdout) or messages (stderr).

    Messages are never wrapped (soft wrap): one line per item whatever the width, so
    `grep` and log collectors see whole lines; results keep rich's layout.
    """
    return _Console(
        file=stream,
        stderr=stderr,
        no_color="NO_COLOR" in os.environ,
        highlight=False,
        soft_wrap=stderr,
        width=_narrowest_width(),
    )


def _narrowest_width() -> int | None:
    """rich takes COLUMNS as it is; 0 (some CI runners set it) would print nothing."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return None
    return MIN_CONSOLE_WIDTH if columns < MIN_CONSOLE_WIDTH else None


def print_assets(
    items: Iterable[Mapping[str, Any]],
    fmt: str,
    id_field: str,
    out: IO[str] | None = None,
) -> int:
    """Print a stream of assets as they arrive; return how many were printed."""
    out = out or sys.stdout
    if fmt == "table":
        return _table(iter(items), id_field, out)
    if fmt == "json":
        return _json_array(items, out)
    count = 0
    for item in items:
        out.write(format_one(item, fmt, id_field))
        out.flush()
        count += 1
    return count


def print_asset(
    item: Mapping[str, Any], fmt: str, id_field: str, out: IO[str] | None = None
) -> None:
    """One asset: a two-column field/value table on a terminal."""
    out = out or sys.stdout
    if fmt != "table":
        out.write(
            format_one(
                item, "json" if fmt == "jsonl" else fmt, id_field, indent=fmt == "json"
            )
        )
        return
    table = Table(box=box.SIMPLE, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in item.items():
        table.add_row(str(key), cell(value))
    console(out).print(table)


def format_one(
    item: Any, fmt: str, id_field: str = "id", *, indent: bool = False
) -> str:
    if fmt == "ids":
        return (
            f"{item.get(id_field, '')}\n" if isinstance(item, Mapping) else f"{item}\n"
        )
    if fmt == "yaml":
        return "---\n" + yaml.safe_dump(
            _plain(item), sort_keys=False, allow_unicode=True
        )
    return json.dumps(item, indent=2 if indent else None, ensure_ascii=False) + "\n"


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _json_array(items: Iterable[Any], out: IO[str]) -> int:
    """A JSON array written element by element, so it streams and stays valid JSON.

    Nothing is written before the first item (or the end) arrives: a first page that
    fails leaves stdout empty, not holding a lone `[`.
    """
    stream = iter(items)
    first = next(stream, _END)
    if first is _END:
        out.write("[]\n")
        out.flush()
        return 0
    out.write("[\n  " + json.dumps(first, ensure_ascii=False))
    out.flush()
    count = 1
    for item in stream:
        out.write(",\n  " + json.dumps(item, ensure_ascii=False))
        out.flush()
        count += 1
    out.write("\n]\n")
    out.flush()
    return count


_END = object()


def _table(items: Iterator[Mapping[str, Any]], id_field: str, out: IO[str]) -> int:
    """Tables in chunks: the first sets columns and widths, the rest follow unheaded.

    Columns are fitted to the console's width: long cells end in an ellipsis, and
    fields that do not fit (or only appear after the first chunk) are named on
    stderr, never dropped silently.
    """
    first = list(islice(items, TABLE_CHUNK))
    if not first:
        console(stderr=True).print("no assets")
        return 0
    show = console(out)
    fields = _columns(first, id_field)
    natural = {
        c: min(MAX_WIDTH, max(len(c), *(len(cell(r.get(c))) for r in first)))
        for c in fields[:MAX_COLUMNS]
    }
    widths = fit_widths(natural, show.width)
    left_out = dict.fromkeys(c for c in fields if c not in widths)
    chunk, count, header = first, 0, True
    while chunk:
        show.print(_chunk_table(chunk, widths, header))
        count += len(chunk)
        for row in chunk:
            left_out.update(dict.fromkeys(k for k in row if k not in widths))
        chunk, header = list(islice(items, TABLE_CHUNK)), False
    if left_out:
        _name_left_out(list(left_out))
    return count


def fit_widths(natural: Mapping[str, int], available: int) -> dict[str, int]:
    """Column widths that fit `available` characters, keeping the columns' order.

    The first column (the id) keeps its width; the widest of the others give way,
    down to MIN_WIDTH each; columns that still do not fit are left out from the end.
    """
    names = list(natural)
    for keep in range(len(names), 1, -1):
        widths = {c: natural[c] for c in names[:keep]}
        if _squeeze(widths, available):
            return widths
    return {names[0]: max(1, min(natural[names[0]], available))}


def _squeeze(widths: dict[str, int], available: int) -> bool:
    others = list(widths)[1:]
    while True:
        excess = sum(widths.values()) + _GAP * (len(widths) - 1) - available
        if excess <= 0:
            return True
        wide = [c for c in others if widths[c] > MIN_WIDTH]
        if not wide:
            return False
        widest = max(wide, key=lambda c: widths[c])
        widths[widest] = max(MIN_WIDTH, widths[widest] - excess, widths[widest] // 2)


def _name_left_out(fields: list[str]) -> None:
    shown = ", ".join(fields[:6]) + (
        f" and {len(fields) - 6} more" if len(fields) > 6 else ""
    )
    console(stderr=True).print(
        f"assetctl: the table leaves out {shown}; -o json or -o yaml shows every field",
        markup=False,
    )


def _chunk_table(rows: list, widths: Mapping[str, int], header: bool) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD, show_header=header, show_edge=False, pad_edge=False
    )
    for column, width in widths.items():
        table.add_column(
            column, min_width=width, max_width=width, no_wrap=True, overflow="ellipsis"
        )
    for row in rows:
        table.add_row(*(cell(row.get(c)) for c in widths))
    return table


def _columns(rows: list[Mapping[str, Any]], id_field: str) -> list[str]:
    """Every field of the rows, the id first; the first MAX_COLUMNS are candidates."""
    seen: dict[str, None] = {id_field: None} if any(id_field in r for r in rows) else {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _plain(value: Any) -> Any:
    """Mappings as dicts so yaml.safe_dump accepts frozen or proxy mappings."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class OutcomeReporter:
    """Per-item results of a batch: a line per item on stdout, progress on stderr.

    JSON and JSON lines print one object per item; `ids` and the table format print the
    ids that were written (what `create` promises); failures always get a stderr line.
    """

    def __init__(
        self, fmt: str, total: int | None, *, out: IO[str] | None = None
    ) -> None:
        self.fmt = fmt
        self.out = out or sys.stdout
        self.closed = False
        self.errors = console(stderr=True)
        self.progress = (
            _progress(self.errors, total) if self.errors.is_terminal else None
        )

    def __enter__(self) -> OutcomeReporter:
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.progress:
            self.progress.stop()

    def __call__(self, outcome: Any) -> None:
        if self.progress:
            self.progress.advance(self.progress.task_ids[0])
        if outcome.action == "failed":
            self.errors.print(
                f"assetctl: {outcome.source}: {outcome.error}", markup=False
            )
        self._write(self._line(outcome))

    def _write(self, text: str) -> None:
        """Results to stdout until its reader goes away; then `OutputClosed`, once."""
        if self.closed or not text:
            return
        try:
            self.out.write(text)
            self.out.flush()
        except BrokenPipeError:
            self.closed = True
            silence(self.out)
            raise OutputClosed() from None

    def summary(self, counts: Mapping[str, int]) -> None:
        parts = [
            f"{n} {_SUMMARY_WORDS.get(a, a)}" for a, n in sorted(counts.items()) if n
        ]
        self.errors.print(", ".join(parts) or "nothing to do", markup=False)

    def _line(self, outcome: Any) -> str:
        if self.fmt in ("json", "jsonl"):
            return json.dumps(outcome_record(outcome), ensure_ascii=False) + "\n"
        if self.fmt == "yaml":
            return format_one(outcome_record(outcome), "yaml")
        if outcome.action == "planned":
            return _plan_text(outcome.plan)
        written = outcome.action in (
            "created",
            "updated",
            "deleted",
            "unchanged",
            "skipped",
        )
        return f"{outcome.id}\n" if written and outcome.id else ""


_SUMMARY_WORDS = {
    "skipped": "done in an earlier run",
    "not attempted": "not attempted (the batch stopped)",
    "planned": "planned (dry run)",
}


def outcome_record(outcome: Any) -> dict[str, Any]:
    """The JSON object of one batch item (documented in README.md, "Assets")."""
    record: dict[str, Any] = {"input": outcome.source, "result": outcome.action}
    if outcome.id is not None:
        record["id"] = outcome.id
    if outcome.status is not None:
        record["status"] = outcome.status
    if outcome.reason is not None:
        record["reason"] = outcome.reason
    if outcome.error is not None:
        record["error"] = outcome.error
        record["exit_code"] = outcome.exit_code
    if outcome.plan is not None:
        record["would"] = outcome.would
        record["request"] = plan_record(outcome.plan)
    return record


def plan_record(plan: Any) -> dict[str, Any]:
    record = {"method": plan.method, "url": plan.url, "headers": dict(plan.headers)}
    if plan.body is not None:
        record["body"] = plan.body
    return record


def _plan_text(plan: Any) -> str:
    lines = [f"{plan.method} {plan.url}"]
    lines += [f"{name}: {value}" for name, value in plan.headers.items()]
    if plan.body is not None:
        lines.append(json.dumps(plan.body, ensure_ascii=False, indent=2))
    return "\n".join(lines) + "\n\n"


def _progress(errors: Console, total: int | None) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    progress = Progress(
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    )
    progress.add_task("assets", total=total)
    return progress
