"""AssetClient against real HTTP servers in every paging, id and edit style."""

from __future__ import annotations

import pytest
import requests

from assetctl.assets.client import AssetClient, quote_id
from assetctl.assets.retry import RetryPolicy
from assetctl.errors import ApiError, Conflict, NetworkError, NotFound
from assetctl.registry import parse_registry
from tests.servers.styled import AssetServer, Style

FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05, budget=10)

REGISTRY = """\
types:
  page:
    collection: /things
    list: {paging: page, items: items, page_size: 4, total: total}
  page-empty-stop:
    collection: /things
    list: {paging: page, items: items, page_size: 4}
  offset:
    collection: /things
    list: {paging: offset, items: items, page_size: 4}
  next: {collection: /things, list: {paging: next, items: items, next: links.next}}
  cursor:
    collection: /things
    list: {paging: next, items: data.items, next: cursor, cursor_param: cursor,
           size_param: limit, page_size: 4}
  link:
    collection: /things
    list: {paging: link-header, size_param: limit, page_size: 4}
  none: {collection: /things, list: {paging: none}}
  location: {collection: /things, id_from: location, edit: merge-patch}
"""
TYPES = parse_registry(REGISTRY, "test.yaml").types

CASES = [
    ("page", Style(paging="page")),
    ("page-empty-stop", Style(paging="page")),
    ("offset", Style(paging="offset")),
    ("next", Style(paging="next", default_size=4)),
    ("cursor", Style(paging="cursor")),
    ("link", Style(paging="link-header", bare_array=True)),
    ("none", Style(paging="none", bare_array=True)),
]


def client_for(server: AssetServer, type_name: str) -> AssetClient:
    return AssetClient(requests.Session(), TYPES[type_name], server.url, retry=FAST)


@pytest.mark.parametrize(("type_name", "style"), CASES, ids=[c[0] for c in CASES])
def test_every_paging_style_lists_everything_once(type_name, style):
    with AssetServer(style) as server:
        ids = server.seed(11)
        got = [a["id"] for a in client_for(server, type_name).list()]
    assert got == ids
    pages = [p for m, p in server.requests if m == "GET"]
    assert len(pages) >= (1 if type_name == "none" else 3)


@pytest.mark.parametrize(("type_name", "style"), CASES, ids=[c[0] for c in CASES])
def test_filters_and_limit(type_name, style):
    with AssetServer(style) as server:
        server.seed(6, colour="red")
        server.assets["t00003"]["colour"] = "blue"
        client = client_for(server, type_name)
        blue = list(client.list({"colour": "blue"}))
        first_two = list(client.list(limit=2))
    assert [a["id"] for a in blue] == ["t00003"]
    assert [a["id"] for a in first_two] == ["t00000", "t00001"]


def test_list_streams_first_page_before_the_next_is_fetched():
    with AssetServer(Style(paging="page")) as server:
        server.seed(9)
        items = client_for(server, "page").list()
        next(items)
        assert len(server.requests) == 1


def test_body_id_and_put_with_if_match():
    with AssetServer(Style(id_from="body", edit="put")) as server:
        client = client_for(server, "page")
        created = client.create({"id": "a/../b", "name": "x"}, key="k1")
        assert created.id == "a/../b"
        assert client.item_url("a/../b").endswith("/things/a%2F..%2Fb")
        current = client.get("a/../b")
        updated = client.edit("a/../b", {"name": "y"}, etag=current.etag)
        assert server.assets["a/../b"]["name"] == "y"
        with pytest.raises(Conflict) as caught:
            client.edit("a/../b", {"name": "z"}, etag=current.etag)
    assert caught.value.status == 412
    assert "HTTP 412 Precondition Failed" in str(caught.value)
    assert updated.etag == '"2"'


def test_location_id_and_merge_patch():
    with AssetServer(Style(id_from="location", edit="merge-patch")) as server:
        client = client_for(server, "location")
        created = client.create({"name": "m", "tags": {"a": 1}}, key="k")
        assert created.body is None
        client.edit(created.id, {"tags": {"b": 2}, "name": None})
        stored = server.assets[created.id]
    assert stored["tags"] == {"a": 1, "b": 2}
    assert "name" not in stored


def test_ids_are_one_path_segment():
    for raw, quoted in [
        ("a/../b", "a%2F..%2Fb"),
        ("x y?z#", "x%20y%3Fz%23"),
        ("é", "%C3%A9"),
    ]:
        assert quote_id(raw) == quoted


def test_errors_are_mapped():
    with AssetServer() as server:
        client = client_for(server, "page")
        with pytest.raises(
            NotFound, match=r"GET /things/nope: HTTP 404 Not Found: error 404"
        ):
            client.get("nope")
        assert client.find("nope") is None
        client.create({"id": "dup"}, key="1")
        with pytest.raises(Conflict, match="409"):
            client.create({"id": "dup"}, key="2")


def test_lost_create_answer_is_replayed_by_key_not_duplicated():
    answers = iter(["drop-after", None, None])
    with AssetServer(
        fault=lambda m, p: next(answers, None) if m == "POST" else None
    ) as server:
        created = client_for(server, "page").create({"name": "n"}, key="same-key")
    assert list(server.assets) == [created.id]


def test_lost_create_answer_is_looked_up_when_the_api_has_no_keys():
    faults = iter(["drop-after"])
    style = Style(idempotency=False)
    with AssetServer(
        style, fault=lambda m, p: next(faults, None) if m == "POST" else None
    ) as server:
        created = client_for(server, "page").create({"id": "mine"}, key="k")
    posts = [r for r in server.requests if r[0] == "POST"]
    assert created.id == "mine" and len(posts) == 1


def test_retry_after_then_success_and_budget():
    faults = iter(["429", "503", "502"])
    with AssetServer(fault=lambda m, p: next(faults, None)) as server:
        server.seed(1)
        assert client_for(server, "page").get("t00000").id == "t00000"
    with AssetServer(fault=lambda m, p: "503") as server:
        with pytest.raises(ApiError, match="503"):
            client_for(server, "page").get("x")


def test_connection_refused_is_a_network_error():
    server = AssetServer()
    url = server.url
    server.httpd.server_close()
    client = AssetClient(requests.Session(), TYPES["page"], url, retry=FAST)
    with pytest.raises(NetworkError, match="cannot reach"):
        client.get("x")


def test_default_params_and_headers_on_every_request():
    registry = parse_registry(
        "types:\n  t:\n    collection: /things\n    params: {tenant: a}\n"
        "    headers: {X-Team: data}\n",
        "r.yaml",
    )
    seen = []
    with AssetServer(Style(paging="none", bare_array=True)) as server:
        session = requests.Session()
        session.hooks["response"].append(lambda r, **k: seen.append(r.request))
        client = AssetClient(session, registry.get("t"), server.url, retry=FAST)
        server.seed(1, tenant="a")
        client.get("t00000")
        list(client.list())
    assert all("tenant=a" in r.url and r.headers["X-Team"] == "data" for r in seen)


@pytest.mark.parametrize("style", ["body", "location"])
@pytest.mark.parametrize("bad", [".", ".."])
def test_an_unusable_id_from_the_server_is_refused(style, bad):
    type_name = "page" if style == "body" else "location"
    with AssetServer(Style(id_from=style)) as server:
        with pytest.raises(ApiError, match="cannot be used as an id in a URL path"):
            client_for(server, type_name).create({"id": bad, "name": "x"}, key="k")


@pytest.mark.parametrize("location", ["/things", "/things/", "/things/%2E%2E"])
def test_a_location_naming_no_usable_asset_is_refused(location):
    with AssetServer(Style(id_from="location", location=location)) as server:
        with pytest.raises(ApiError, match="cannot be used as an id"):
            client_for(server, "location").create({"name": "x"}, key="k")


@pytest.mark.parametrize("bad", ["", ".", ".."])
def test_quote_id_refuses_ids_that_leave_the_item_path(bad):
    from assetctl.errors import InputError

    with pytest.raises(InputError):
        quote_id(bad)


def test_a_refused_environment_token_says_login_cannot_help(monkeypatch):
    import requests as _requests

    from assetctl.assets import problems

    response = _requests.Response()
    response.status_code = 401
    response._content = b""
    monkeypatch.setenv("ASSETCTL_TOKEN", "eyJ.x.y")
    assert "ASSETCTL_TOKEN" in str(problems.error_for(response, "GET /datasets"))
    monkeypatch.delenv("ASSETCTL_TOKEN")
    assert "assetctl login" in str(problems.error_for(response, "GET /datasets"))


def test_a_lost_create_meeting_another_asset_with_its_id_is_a_conflict():
    # The POST never reached the API; the lookup finds someone else's asset.
    faults = iter(["drop-before"])
    with AssetServer(
        Style(idempotency=False),
        fault=lambda m, p: next(faults, None) if m == "POST" else None,
    ) as server:
        server.assets["mine"] = {"id": "mine", "name": "theirs", "version": 1}
        with pytest.raises(Conflict, match="already exists with other content"):
            client_for(server, "page").create({"id": "mine", "name": "ours"}, key="k")
        assert server.assets["mine"]["name"] == "theirs"


def test_a_delete_whose_answer_was_lost_is_done_not_failed():
    faults = iter(["drop-after"])  # deleted, then the connection dropped
    with AssetServer(
        fault=lambda m, p: next(faults, None) if m == "DELETE" else None
    ) as server:
        server.seed(1)
        client_for(server, "page").delete("t00000")
        deletes = [r for r in server.requests if r[0] == "DELETE"]
        assert "t00000" not in server.assets and len(deletes) == 2


def test_deleting_what_is_not_there_is_still_not_found():
    with AssetServer() as server:
        with pytest.raises(NotFound):
            client_for(server, "page").delete("nothing-here")
