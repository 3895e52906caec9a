"""The work done for one input item: create, edit, apply or delete one asset.

Each action returns an `Outcome` or raises an `AssetctlError`; the batch runner decides
what a failure means for the rest. With `dry_run` the planned request is returned
instead of sent (reads still happen, so `apply --dry-run` can say what would change).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from assetctl.assets.client import AssetClient, PlannedRequest, holds
from assetctl.assets.inputs import InputItem, best_error, make_validator
from assetctl.errors import ApiError, Conflict, InputError, NotFound

# Why an item is `skipped`.
DONE_EARLIER = "done in an earlier run"
NOT_ATTEMPTED = "not attempted"


@dataclass(frozen=True)
class Outcome:
    """What happened to one item; `plan` is set for dry runs."""

    source: str
    action: str  # created, updated, unchanged, deleted, planned, skipped, failed
    id: str | None = None
    status: int | None = None
    error: str | None = None
    exit_code: int = 0
    plan: PlannedRequest | None = None
    would: str | None = None  # for dry runs: the action a real run would take
    reason: str | None = None  # for `skipped`: DONE_EARLIER or NOT_ATTEMPTED


Action = Callable[[AssetClient, InputItem, str], Outcome]


def create_action(dry_run: bool = False) -> Action:
    def create(client: AssetClient, item: InputItem, key: str) -> Outcome:
        if dry_run:
            plan = client.plan_create(item.body, key)
            known = item.body.get(client.type.id_field)
            return _planned(
                item, plan, "created", None if known is None else str(known)
            )
        asset = client.create(item.body, key=key)
        return Outcome(item.source, "created", asset.id, asset.status)

    return create


def edit_action(
    asset_id: str | None = None,
    sets: Mapping[str, Any] | None = None,
    dry_run: bool = False,
) -> Action:
    """Edit the asset named by `asset_id` or by the item's own id field.

    The current asset is read first: its ETag goes into `If-Match`, and `--set` values
    are merged into it (PUT) or sent as the patch (merge-patch). What the asset would
    become is checked against the type's schema before it is sent, unless the input
    already was (a whole PUT body from a file is checked before the batch starts).
    """
    validators: dict[int, Any] = {}

    def edit(client: AssetClient, item: InputItem, key: str) -> Outcome:
        target = asset_id if asset_id is not None else item_id(client, item)
        current = client.get(target)
        if current.body is None:  # never build a new body from an unreadable answer
            raise ApiError(f"GET {target}: the answer holds no asset to edit")
        body = _edit_body(client, current.body, item.body, sets)
        schema = client.type.schema
        if schema is not None and (sets or client.type.edit == "merge-patch"):
            if id(schema) not in validators:  # one per schema, not per item
                validators[id(schema)] = make_validator(schema)
            _check_result(client, current.body, body, validators[id(schema)])
        if dry_run:
            return _planned(
                item, client.plan_edit(target, body, current.etag), "updated", target
            )
        return _send_edit(client, item, target, body, current.etag)

    return edit


def apply_action(dry_run: bool = False) -> Action:
    """Create what is missing, update what differs, leave what is equal."""

    def apply(client: AssetClient, item: InputItem, key: str) -> Outcome:
        target = item.body.get(client.type.id_field)
        current = client.find(target) if target is not None else None
        if current is None and target is not None and client.type.id_from == "location":
            # The server picks this type's ids: creating would give the asset another
            # id than the input names, and every rerun would create it again.
            raise NotFound(
                f"no asset {target!r}, and the server chooses ids for type "
                f"'{client.type.name}'",
                hint=f"remove '{client.type.id_field}' from the input to create it, "
                "or use the id the server gave",
            )
        if current is None:
            return create_action(dry_run)(client, item, key)
        if already_applied(client, current.body or {}, item.body):
            return Outcome(item.source, "unchanged", str(target), current.status)
        if dry_run:
            plan = client.plan_edit(target, item.body, current.etag)
            return _planned(item, plan, "updated", str(target))
        return _send_edit(client, item, str(target), item.body, current.etag)

    return apply


def delete_action(dry_run: bool = False) -> Action:
    """Delete the asset whose id is the item's id field (items built from arguments)."""

    def delete(client: AssetClient, item: InputItem, key: str) -> Outcome:
        target = item_id(client, item)
        if dry_run:
            return _planned(item, client.plan_delete(target), "deleted", target)
        client.delete(target)
        return Outcome(item.source, "deleted", target, 204)

    return delete


def item_id(client: AssetClient, item: InputItem) -> str:
    return str(item.body[client.type.id_field])


def already_applied(
    client: AssetClient, current: Mapping[str, Any], desired: Mapping[str, Any]
) -> bool:
    """True when sending `desired` would change nothing: every field it names holds
    its value, and (for PUT types that declare their `server_fields`) the asset has
    no field the input left out."""
    if client.type.edit == "merge-patch":
        return merge_patch(current, desired) == current
    if not holds(current, desired):
        return False
    kept = client.type.server_fields
    if kept is None:
        return True
    left_out = set(current) - set(desired) - set(kept) - {client.type.id_field}
    return not left_out


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge recursively, null removes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _edit_body(
    client: AssetClient,
    current: Mapping[str, Any],
    given: Mapping[str, Any],
    sets: Mapping[str, Any] | None,
) -> Mapping[str, Any]:
    if not sets:
        return given
    if client.type.edit == "merge-patch":
        return sets
    return merge_patch(current, sets)


def _check_result(
    client: AssetClient,
    current: Mapping[str, Any],
    body: Mapping[str, Any],
    validator: Any,
) -> None:
    """The asset as the edit would leave it must match the schema (exit 3 if not)."""
    result = merge_patch(current, body) if client.type.edit == "merge-patch" else body
    error = best_error(result, validator)
    if error is not None:
        raise InputError(
            f"the edited asset would not match the schema: {error}",
            hint="nothing was sent; fix the --set values or the input",
        )


def _send_edit(
    client: AssetClient, item: InputItem, target: str, body: Mapping, etag: str | None
) -> Outcome:
    try:
        asset = client.edit(target, body, etag=etag)
    except Conflict as conflict:
        # A retried edit whose first answer was lost meets its own change as a 412;
        # that is success, any other change is a real conflict.
        if conflict.status != 412 or not _now_matches(client, target, body):
            raise
        return Outcome(item.source, "updated", target, 200)
    return Outcome(item.source, "updated", target, asset.status)


def _now_matches(client: AssetClient, target: str, body: Mapping[str, Any]) -> bool:
    current = client.find(target)
    return current is not None and already_applied(client, current.body or {}, body)


def _planned(
    item: InputItem, plan: PlannedRequest, would: str, target: str | None = None
) -> Outcome:
    return Outcome(item.source, "planned", target, plan=plan, would=would)
