"""`assetctl api METHOD PATH`: one authenticated raw request, the answer on stdout.

What the old script's protected API call did, through the same session, token and
retries as every other command. The status line and headers go to stderr with -i.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import urljoin, urlsplit

import requests
import typer

from assetctl.assets import problems
from assetctl.assets.client import AssetClient
from assetctl.cli import output
from assetctl.errors import InputError
from assetctl.http import check_transport, make_session
from assetctl.registry import AssetType

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def api_request(
    ctx: typer.Context,
    method: Annotated[str, typer.Argument(help="GET, POST, PUT, PATCH, DELETE, ...")],
    path: Annotated[
        str, typer.Argument(help="Path under the API URL, e.g. /datasets.")
    ],
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="Request body file, or - for stdin."),
    ] = None,
    headers: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="Extra header 'Name: value'."),
    ] = None,
    content_type: Annotated[
        str, typer.Option(help="Content-Type of --data.")
    ] = "application/json",
    include: Annotated[
        bool,
        typer.Option(
            "--include",
            "-i",
            help="Print status and headers on stderr, then a blank line.",
        ),
    ] = False,
) -> None:
    """Send one authenticated request to the API; the answer goes to stdout.

    An explicit `-H 'Authorization: ...'` is sent as given, and no stored token is.
    """
    verb = method.upper()
    if verb not in METHODS:
        raise InputError(
            f"unknown method {method!r}", hint=f"use one of {', '.join(METHODS)}"
        )
    settings = ctx.obj.settings
    api_url = settings.require_api_url()
    url = _resolve(api_url, path)
    extra = dict(_header(h) for h in headers or [])
    body = _read_body(data)
    if body is not None:
        extra.setdefault("Content-Type", content_type)

    if any(name.lower() == "authorization" for name in extra):
        check_transport(api_url, settings, "API")  # their credential, our rules
        session = make_session(settings)
    else:
        session = ctx.obj.session()
    response = AssetClient(session, _RAW, api_url).raw(verb, url, body, extra)
    if include:
        typer.echo(f"HTTP {response.status_code} {response.reason}", err=True)
        for name, value in response.headers.items():
            typer.echo(f"{name}: {value}", err=True)
        typer.echo("", err=True)
    with output.reader_may_leave():
        sys.stdout.buffer.write(response.content)
        if _is_text(response) and not response.content.endswith(b"\n"):
            sys.stdout.buffer.write(b"\n")  # a shell prompt after it starts a line
        sys.stdout.flush()
    if response.status_code >= 400:
        raise problems.error_for(response, f"{verb} {urlsplit(url).path}")


_TEXT_TYPES = ("json", "xml", "yaml", "javascript", "csv")


def _is_text(response: requests.Response) -> bool:
    """A body a terminal shows as text (binary ones are written byte for byte)."""
    if not response.content:
        return False
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return kind.startswith("text/") or any(word in kind for word in _TEXT_TYPES)


_RAW = AssetType(name="(api)", collection="/", item="/{id}")


def _resolve(api_url: str, path: str) -> str:
    """A path under the API URL; an absolute URL must stay on the API's origin."""
    url = urljoin(api_url.rstrip("/") + "/", path.lstrip("/"))
    if urlsplit(url)[:2] != urlsplit(api_url)[:2]:
        raise InputError(
            f"{path} is not on the API at {api_url}",
            hint="give a path; the token is only sent to the API",
        )
    return url


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise InputError(f"--header {text!r}: expected 'Name: value'")
    return name.strip(), value.strip()


def _read_body(data: str | None) -> bytes | None:
    if data is None:
        return None
    if data == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(data).read_bytes()
    except OSError as exc:
        raise InputError(f"--data {data}: cannot read: {exc.strerror}") from exc
