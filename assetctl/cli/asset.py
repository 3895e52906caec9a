"""`assetctl asset ...`: thin commands over the registry, asset client and batch.

Each command parses its arguments, calls the core and renders; exit codes come from
the errors raised (one item) or from the batch summary (many).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from assetctl.assets import actions, inputs, spool
from assetctl.assets.batch import BatchOptions, Summary, run_batch
from assetctl.assets.client import AssetClient, check_id
from assetctl.assets.inputs import InputItem
from assetctl.assets.journal import Journal, NoJournal, batch_key
from assetctl.cli import output
from assetctl.errors import ConfigError, InputError
from assetctl.registry import candidate_paths, load_registry

asset_app = typer.Typer(
    no_args_is_help=True,
    help="Create, edit, list and delete assets.",
    rich_markup_mode=None,
)

TypeOpt = Annotated[
    str, typer.Option("--type", "-t", help="Asset type from the registry.")
]
OutputOpt = Annotated[
    str | None,
    typer.Option("--output", "-o", help="table, json, jsonl, yaml or ids."),
]
JobsOpt = Annotated[
    int, typer.Option("--jobs", "-j", min=1, max=64, help="Requests in parallel.")
]
FailFastOpt = Annotated[
    bool, typer.Option("--fail-fast", help="Stop at the first failed item.")
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show the requests, send none.")
]
FreshOpt = Annotated[
    bool, typer.Option("--fresh", help="Ignore the journal of an interrupted run.")
]
FilesArg = Annotated[
    list[str], typer.Argument(help="Files, directories, or - for stdin.")
]


@asset_app.command("types")
def asset_types(ctx: typer.Context, output_format: OutputOpt = None) -> None:
    """List the registry's asset types and say which file it is."""
    registry = load_registry(ctx.obj.settings.registry)
    fmt = output.resolve_format(output_format, ctx.obj.output)
    rows = [
        {
            "type": t.name,
            "collection": t.collection,
            "edit": t.edit,
            "paging": t.paging.style,
            "api_url": t.api_url or "",
            "registry": registry.source,
        }
        for t in registry.types.values()
    ]
    with output.reader_may_leave():
        output.print_assets(rows, fmt, "type")
    searched = ", ".join(f"{origin}: {path}" for origin, path in candidate_paths())
    typer.echo(f"registry: {registry.source} (searched {searched})", err=True)


@asset_app.command("get")
def asset_get(
    ctx: typer.Context,
    type_name: TypeOpt,
    asset_id: Annotated[str, typer.Argument(metavar="ID")],
    output_format: OutputOpt = None,
) -> None:
    """Show one asset."""
    check_id(asset_id, "ID")
    client = _client(ctx, type_name)
    asset = client.get(asset_id)
    fmt = output.resolve_format(output_format, ctx.obj.output)
    with output.reader_may_leave():
        output.print_asset(asset.body or {}, fmt, client.type.id_field)


@asset_app.command("list")
def asset_list(
    ctx: typer.Context,
    type_name: TypeOpt,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Stop after N assets.")
    ] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option("--filter", "-f", help="key=value, sent as a query parameter."),
    ] = None,
    output_format: OutputOpt = None,
) -> None:
    """List assets, all pages, printed as they arrive."""
    client = _client(ctx, type_name)
    query: dict[str, Any] = {}
    for key, value in (_pair(f, "--filter") for f in filters or []):
        # A repeated key goes as a repeated parameter (?tag=a&tag=b), not the last.
        known = query.get(key)
        query[key] = value if known is None else [*_as_list(known), value]
    fmt = output.resolve_format(output_format, ctx.obj.output)
    with output.reader_may_leave():
        output.print_assets(client.list(query, limit), fmt, client.type.id_field)


@asset_app.command("create")
def asset_create(
    ctx: typer.Context,
    type_name: TypeOpt,
    files: FilesArg,
    jobs: JobsOpt = 4,
    fail_fast: FailFastOpt = False,
    dry_run: DryRunOpt = False,
    fresh: FreshOpt = False,
    output_format: OutputOpt = None,
) -> None:
    """Create assets from JSON or YAML files; prints the new ids."""
    batch = _Batch(ctx, type_name, "create", jobs, dry_run, output_format)
    _run_files(batch, files, actions.create_action(dry_run), fail_fast, fresh)


@asset_app.command("edit")
def asset_edit(
    ctx: typer.Context,
    type_name: TypeOpt,
    args: Annotated[
        list[str],
        typer.Argument(metavar="[ID] FILE... | ID... --set k=v", help="What to edit."),
    ],
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set", "-s", help="field=value (JSON or text); dotted fields nest."
        ),
    ] = None,
    jobs: JobsOpt = 4,
    fail_fast: FailFastOpt = False,
    dry_run: DryRunOpt = False,
    fresh: FreshOpt = False,
    output_format: OutputOpt = None,
) -> None:
    """Edit assets from files, or IDs with --set field=value."""
    batch = _Batch(ctx, type_name, "edit", jobs, dry_run, output_format)
    id_field = batch.client.type.id_field
    asset_id: str | None = None
    if sets:
        patch = inputs.parse_sets(sets)
        _check_ids(args)
        if id_field in patch:
            check_id(patch[id_field], f"--set {id_field}")
        items = lambda: _id_items(args, id_field)  # noqa: E731
        action = actions.edit_action(sets=patch, dry_run=dry_run)
        key: dict[str, Any] = {"ids": args, "set": patch}
    else:
        asset_id, files = _split_edit_args(args)
        if asset_id is not None:
            check_id(asset_id, "ID")
        sources = inputs.expand_sources(files)
        items = lambda: inputs.read_items(sources)  # noqa: E731
        action = actions.edit_action(asset_id=asset_id, dry_run=dry_run)
        key = {"id": asset_id, "sources": _labels(sources)}
    schema = batch.client.type.schema if batch.client.type.edit == "put" else None
    need_id = None if sets or asset_id is not None else id_field
    total = inputs.check_items(items(), schema if not sets else None, need_id=need_id)
    if asset_id is not None and total != 1:
        raise InputError(f"editing {asset_id!r} needs exactly one asset in the file")
    if asset_id is not None:
        _check_same_id(next(iter(items())), asset_id, id_field)
    batch.run(items(), action, key, total, fail_fast, fresh)


@asset_app.command("apply")
def asset_apply(
    ctx: typer.Context,
    type_name: TypeOpt,
    files: FilesArg,
    jobs: JobsOpt = 4,
    fail_fast: FailFastOpt = False,
    dry_run: DryRunOpt = False,
    fresh: FreshOpt = False,
    output_format: OutputOpt = None,
) -> None:
    """Create what is missing, update what differs, keep the rest."""
    batch = _Batch(ctx, type_name, "apply", jobs, dry_run, output_format)
    _run_files(batch, files, actions.apply_action(dry_run), fail_fast, fresh)


@asset_app.command("delete")
def asset_delete(
    ctx: typer.Context,
    type_name: TypeOpt,
    ids: Annotated[list[str], typer.Argument(metavar="ID...")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    jobs: JobsOpt = 4,
    fail_fast: FailFastOpt = False,
    dry_run: DryRunOpt = False,
    output_format: OutputOpt = None,
) -> None:
    """Delete assets (asks on a terminal; --yes otherwise)."""
    _check_ids(ids)
    if not (yes or dry_run):
        _confirm_delete(ctx, type_name, ids)
    batch = _Batch(ctx, type_name, "delete", jobs, dry_run, output_format)
    items = _id_items(ids, batch.client.type.id_field)
    batch.run(
        items, actions.delete_action(dry_run), {"ids": ids}, len(ids), fail_fast, False
    )


class _Batch:
    """What the writing commands share: client, journal, reporter, exit code."""

    def __init__(
        self,
        ctx: typer.Context,
        type_name: str,
        command: str,
        jobs: int,
        dry_run: bool,
        output_format: str | None,
    ) -> None:
        self.command, self.jobs, self.dry_run = command, jobs, dry_run
        self.client = _client(ctx, type_name, jobs=jobs)
        self.fmt = output.resolve_format(output_format, ctx.obj.output, piped="table")

    def run(
        self,
        items: Iterable[InputItem],
        action: actions.Action,
        key_parts: dict[str, Any],
        total: int,
        fail_fast: bool,
        fresh: bool,
    ) -> None:
        journal = self._journal(key_parts, fresh)
        options = BatchOptions(jobs=self.jobs, fail_fast=fail_fast)
        try:
            with journal, output.OutcomeReporter(self.fmt, total) as report:
                summary = run_batch(
                    items, action, self.client, journal, options, report
                )
                if summary.exit_code() == 0:
                    journal.discard()
            report.summary(summary.counts)
        finally:
            spool.remove_spooled()
        _finish(summary)

    def _journal(self, key_parts: dict[str, Any], fresh: bool) -> Journal:
        if self.dry_run:
            return NoJournal()
        parts = {"command": self.command, "type": self.client.type.name, **key_parts}
        key = batch_key({**parts, "url": self.client.collection_url()})
        return Journal(key, fresh=fresh)


def _finish(summary: Summary) -> None:
    if summary.fatal is not None:
        raise summary.fatal
    code = summary.exit_code()
    if code:
        raise typer.Exit(code)


def _client(ctx: typer.Context, type_name: str, jobs: int = 1) -> AssetClient:
    app = ctx.obj
    registry = load_registry(app.settings.registry)
    asset_type = registry.get(type_name)
    if asset_type.api_url and not app.settings.api_url:
        # The registry names the API: authorize against it instead of the profile's,
        # unless the registry merely lay in the working directory (a cloned repo's
        # file must not be able to collect the user's tokens).
        if registry.found_in == "working directory":
            raise ConfigError(
                f"{registry.source} (found in the working directory) sends type "
                f"'{type_name}' to {asset_type.api_url}, and no API URL is configured",
                hint="set --api-url (ASSETCTL_API_URL) to that URL if you trust it, "
                "or name the registry with --registry",
            )
        from assetctl.auth import authorized_session

        settings = replace(app.settings, api_url=asset_type.api_url)
        session = authorized_session(settings, app.authenticator, pool_size=jobs)
        return AssetClient(session, asset_type, asset_type.api_url)
    session = app.session(pool_size=jobs)
    return AssetClient(session, asset_type, app.settings.require_api_url())


def _split_edit_args(args: list[str]) -> tuple[str | None, list[str]]:
    """`ID FILE` when the first of two arguments is not a path; else all are files."""
    first = args[0] if len(args) == 2 else "-"
    if first != "-" and (not first or not Path(first).exists()):
        return first, [args[1]]
    return None, args


def _check_ids(ids: Iterable[str]) -> None:
    for asset_id in ids:
        check_id(asset_id, "ID")


def _id_items(ids: Iterable[str], id_field: str) -> Iterator[InputItem]:
    for asset_id in ids:
        yield InputItem(source=asset_id, body={id_field: asset_id})


def _confirm_delete(ctx: typer.Context, type_name: str, ids: list[str]) -> None:
    if ctx.obj.settings.no_input or not sys.stdin.isatty():
        raise InputError("deleting needs confirmation", hint="pass --yes")
    shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    if not typer.confirm(f"Delete {type_name} {shown}?", err=True):
        typer.echo("nothing deleted", err=True)
        raise typer.Exit(0)  # the person chose; nothing failed


def _labels(sources: Iterable[inputs.Source]) -> list[str]:
    return [s.identity for s in sources]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _pair(text: str, flag: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise InputError(f"{flag} {text!r}: expected key=value")
    return key, value


def _run_files(
    batch: _Batch,
    files: list[str],
    action: actions.Action,
    fail_fast: bool,
    fresh: bool,
) -> None:
    """Check every input first (nothing is sent if one is bad), then run the batch."""
    sources = inputs.expand_sources(files)
    type_ = batch.client.type
    total = inputs.check_items(
        inputs.read_items(sources), type_.schema, id_field=type_.id_field
    )
    key = {"sources": _labels(sources)}
    batch.run(inputs.read_items(sources), action, key, total, fail_fast, fresh)


def _check_same_id(item: inputs.InputItem, asset_id: str, id_field: str) -> None:
    """`edit ID FILE` where the file names another asset: a mistake, caught before
    anything is sent."""
    named = item.body.get(id_field)
    if named is not None and str(named) != asset_id:
        raise InputError(
            f"{item.source}: {id_field} is {named!r}, "
            f"but the command edits {asset_id!r}",
            hint=f"remove {id_field} from the file, or edit {named!r}",
        )
