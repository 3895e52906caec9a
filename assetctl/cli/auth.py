"""Commands of the auth layer: login, logout, token, status."""

from __future__ import annotations

import json
import math
import sys
import time
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated

import typer

from ..auth import login as core
from ..auth.device_flow import DeviceAuthorization, Pending
from ..auth.manager import ENV_SECRET, ENV_SECRET_FILE, ENV_TOKEN, read_client_secret
from ..auth.tokens import TokenSet
from ..errors import AuthError, ConfigError, ExitCode, Interrupted
from . import login_view
from .context import AppContext
from .output import reader_may_leave


class Output(str, Enum):
    text = "text"
    json = "json"


OutputOption = Annotated[Output, typer.Option("--output", "-o", help="Text or JSON.")]


def register(app: typer.Typer) -> None:
    """The sign-in commands, at the top and again under `assetctl auth`."""
    auth_app = typer.Typer(
        help="The same sign-in commands, grouped.", no_args_is_help=True
    )
    commands = {
        "login": auth_login,
        "logout": auth_logout,
        "token": auth_token,
        "status": auth_status,
    }
    for target in (app, auth_app):
        for name, command in commands.items():
            target.command(name)(command)
    app.add_typer(auth_app, name="auth")


def auth_login(
    ctx: typer.Context,
    client_credentials: Annotated[
        bool,
        typer.Option(
            "--client-credentials",
            help=f"Sign a service account in; secret from {ENV_SECRET} or "
            f"{ENV_SECRET_FILE}.",
        ),
    ] = False,
    client_secret_file: Annotated[
        str | None, typer.Option(help="Read the client secret from this file.")
    ] = None,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline", help="Ask for an offline token (long-lived sessions)."
        ),
    ] = False,
    browser: Annotated[
        bool | None,
        typer.Option(
            "--browser/--no-browser",
            help="Open the page in a browser [default: when there is a display].",
        ),
    ] = None,
    qr: Annotated[
        bool, typer.Option("--qr/--no-qr", help="Show the link as a QR code.")
    ] = True,
    pkce: Annotated[
        bool,
        typer.Option("--pkce/--no-pkce", help="Use PKCE where the server offers it."),
    ] = True,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait", help="Start the login, print the code and return at once."
        ),
    ] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Finish the login started with --no-wait.")
    ] = False,
    once: Annotated[
        bool,
        typer.Option(
            "--once", help="With --resume: poll once; exit 11 while still pending."
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", help="With --resume: give up after SECONDS (exit 11)."
        ),
    ] = None,
    output: OutputOption = Output.text,
) -> None:
    """Sign in with the device flow (or a service account) and store the tokens."""
    app_ctx: AppContext = ctx.obj
    authn = app_ctx.authenticator
    _check_login_flags(no_wait, resume, once, timeout, client_credentials)
    if resume and not once and timeout is None and app_ctx.settings.no_input:
        raise _usage(
            "--no-input: `--resume` would wait for a person; add --once or --timeout"
        )
    if offline and client_credentials:
        raise _usage("--offline is for device logins; a service account signs in anew")
    if authn.env_token() is not None:
        login_view.stderr.print(
            f"warning: {ENV_TOKEN} is set and wins over the login stored now; "
            "unset it to use this login"
        )

    if client_credentials:
        secret = read_client_secret(authn.env, client_secret_file)
        if secret is None:
            raise ConfigError(
                "no client secret given",
                hint=f"set {ENV_SECRET} or {ENV_SECRET_FILE}, "
                "or pass --client-secret-file",
            )
        tokens = core.login_with_client_credentials(authn, secret)
        _say_logged_in(app_ctx, tokens)
        return
    if resume:
        _resume(app_ctx, once=once, timeout=timeout, output=output)
        return

    if no_wait:
        authorization = core.start_device_login(authn, offline=offline, use_pkce=pkce)
        core.save_pending(authn, authorization)
        _print_pending(authorization, output)
        return

    _require_terminal(app_ctx)
    authorization = core.start_device_login(authn, offline=offline, use_pkce=pkce)
    login_view.show_device_code(authorization, qr=qr)
    if browser or (browser is None and login_view.has_display()):
        opened = login_view.open_browser(
            authorization.verification_uri_complete or authorization.verification_uri
        )
        if browser and not opened:
            login_view.stderr.print("No browser could be opened; open the link above.")

    countdown = login_view.Countdown()
    try:
        tokens = core.run_device_login(authn, authorization, on_wait=countdown)
    except KeyboardInterrupt:
        raise Interrupted("login cancelled") from None
    finally:
        countdown.stop()
    _say_logged_in(app_ctx, tokens)


def auth_logout(ctx: typer.Context) -> None:
    """End the session on the server and remove the stored tokens."""
    app_ctx: AppContext = ctx.obj
    result = core.logout(app_ctx.authenticator)
    profile = app_ctx.settings.profile
    if not result.removed:
        if result.removed_pending:
            login_view.stderr.print(
                f"Profile '{profile}' was not logged in; removed its pending login."
            )
            return
        login_view.stderr.print(
            f"Profile '{profile}' was not logged in; nothing to remove."
        )
        return
    if result.server_ok:
        login_view.stderr.print(
            f"Logged out of profile '{profile}' (server session: {result.server})."
        )
    else:
        login_view.stderr.print(
            f"Removed the local tokens of profile '{profile}', but the server "
            f"session may live on: {result.server}."
        )


def auth_token(
    ctx: typer.Context,
    min_valid: Annotated[
        float, typer.Option("--min-valid", help="Seconds the token must stay valid.")
    ] = 0.0,
    decode: Annotated[
        bool, typer.Option("--decode", help="Print the token's claims as JSON instead.")
    ] = False,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Check signature, issuer and audience against the realm's keys.",
        ),
    ] = False,
    audience: Annotated[
        str | None,
        typer.Option(
            "--audience",
            envvar="ASSETCTL_AUDIENCE",
            help="Audience --verify requires.",
        ),
    ] = None,
) -> None:
    """Print a valid access token on stdout, refreshing it if needed."""
    app_ctx: AppContext = ctx.obj
    authn = app_ctx.authenticator
    if not (math.isfinite(min_valid) and min_valid >= 0):
        raise _usage("--min-valid takes a number of seconds, 0 or more")
    tokens = authn.valid_tokens(min_valid)
    if verify:
        from ..auth.verify import verify_access_token

        audience = audience or None  # an empty ASSETCTL_AUDIENCE names none
        verify_access_token(authn, tokens.access_token, audience)
        checked = (
            f"audience '{audience}' too"
            if audience
            else "no audience checked: name one with --audience"
        )
        login_view.stderr.print(f"signature, issuer and expiry verified; {checked}")
    if decode:
        claims = tokens.claims()
        if not claims:
            raise AuthError(
                f"the access token (from {authn.source()}) is not a readable JWT",
                hint="check where it came from",
            )
        _out(json.dumps(claims, indent=2, sort_keys=True))
        return
    _out(tokens.access_token)


def auth_status(ctx: typer.Context, output: OutputOption = Output.text) -> None:
    """Show who is logged in, where the tokens are and when they expire."""
    app_ctx: AppContext = ctx.obj
    try:
        info = core.status(app_ctx.authenticator)
    except AuthError as exc:
        if output is Output.json:  # scripts parsing stdout get an answer too
            _out(
                json.dumps(
                    {
                        "profile": app_ctx.settings.profile,
                        "logged_in": False,
                        "error": str(exc),
                    },
                    indent=2,
                    sort_keys=True,
                )
            )
        raise
    info["logged_in"] = True
    if output is Output.json:
        _out(json.dumps(info, indent=2, sort_keys=True))
        return
    for label, value in _status_lines(info):
        _out(f"{label:<16}{value}")


# -- helpers


def _out(text: str) -> None:
    """A result on stdout; a reader that stopped early (`| head`) is not an error."""
    with reader_may_leave():
        typer.echo(text)


def _check_login_flags(
    no_wait: bool, resume: bool, once: bool, timeout: float | None, cc: bool
) -> None:
    if no_wait and resume:
        raise _usage("--no-wait and --resume do not go together")
    if (once or timeout is not None) and not resume:
        raise _usage("--once and --timeout go with --resume")
    if cc and (no_wait or resume):
        raise _usage("--client-credentials needs no --no-wait or --resume")
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise _usage("--timeout takes a number of seconds above 0")


def _usage(message: str) -> typer.BadParameter:
    return typer.BadParameter(message)


def _require_terminal(app_ctx: AppContext) -> None:
    if app_ctx.settings.no_input or not (sys.stdin.isatty() and sys.stderr.isatty()):
        reason = (
            "--no-input rules out the interactive device login"
            if app_ctx.settings.no_input
            else "the device login needs a person at a terminal"
        )
        raise AuthError(
            reason,
            hint=f"in CI use {ENV_TOKEN}, `assetctl login --client-credentials`, or "
            "`assetctl login --no-wait` then `assetctl login --resume`",
        )


def _resume(
    app_ctx: AppContext, *, once: bool, timeout: float | None, output: str
) -> None:
    authn = app_ctx.authenticator
    countdown = login_view.Countdown() if not once else None
    try:
        outcome = core.resume_device_login(
            authn, once=once, timeout=timeout, on_wait=countdown
        )
    except KeyboardInterrupt:
        raise Interrupted(
            "stopped waiting; the login is still pending (`assetctl login --resume`)"
        ) from None
    finally:
        if countdown:
            countdown.stop()
    if isinstance(outcome, Pending):
        # Not an error: the answer a script looping on `--once` expects most often.
        left = int(outcome.authorization.seconds_left())
        login_view.stderr.print(
            "Still waiting for approval "
            f"(code {outcome.authorization.user_code}, {left} s left); "
            "run `assetctl login --resume` again later."
        )
        raise typer.Exit(ExitCode.PENDING)
    _say_logged_in(app_ctx, outcome)


def _print_pending(authorization: DeviceAuthorization, output: str) -> None:
    expires = datetime.fromtimestamp(authorization.expires_at, tz=timezone.utc)
    info = {
        "verification_uri": authorization.verification_uri,
        "user_code": authorization.user_code,
        "verification_uri_complete": authorization.verification_uri_complete,
        "expires_in": int(authorization.seconds_left()),
        "expires_at": expires.isoformat(timespec="seconds"),
        "interval": int(authorization.interval),
    }
    if output is Output.json:
        _out(json.dumps(info, sort_keys=True))
        return
    _out(f"Open {info['verification_uri']} and enter the code {info['user_code']}")
    if info["verification_uri_complete"]:
        _out(f"or go straight to {info['verification_uri_complete']}")
    _out(f"The code expires at {info['expires_at']}. Then run: assetctl login --resume")


def _say_logged_in(app_ctx: AppContext, tokens: TokenSet) -> None:
    authn = app_ctx.authenticator
    left = int(tokens.seconds_left())
    login_view.stderr.print(
        f"Logged in as {core.who(tokens)} at {tokens.issuer} "
        f"(profile '{app_ctx.settings.profile}'); "
        f"tokens stored in the {authn.credentials.description}; "
        f"access token valid for {left} s."
    )


def _status_lines(info: dict) -> list[tuple[str, str]]:
    def expiry(seconds: int | None, none: str) -> str:
        if seconds is None:
            return none
        if seconds <= 0:
            return "expired"
        at = time.strftime("%H:%M:%S", time.localtime(time.time() + seconds))
        return f"in {seconds} s ({at})"

    return [
        ("Profile", info["profile"]),
        ("Issuer", info["issuer"]),
        ("Client", info["client_id"]),
        ("User", info["user"] + (f" <{info['email']}>" if info.get("email") else "")),
        ("Roles", ", ".join(info["roles"]) or "-"),
        ("Scopes", " ".join(info["scopes"]) or "-"),
        ("Access token", expiry(info["access_expires_in"], "no expiry given")),
        (
            "Refresh token",
            expiry(
                info["refresh_expires_in"],
                "no fixed expiry" if info["has_refresh_token"] else "none",
            ),
        ),
        ("Token source", info["token_source"]),
        ("Stored in", info["storage"]),
    ]


__all__ = ["ExitCode"]
