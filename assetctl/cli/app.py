"""The root command: global options, subcommands, and the one error handler."""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from .. import __version__
from ..errors import AssetctlError, ExitCode, Interrupted
from ..logs import configure, scrub
from .context import AppContext

log = logging.getLogger("assetctl")

app = typer.Typer(
    name="assetctl",
    help="Sign in to Keycloak with the device flow and manage assets on an API.",
    no_args_is_help=True,
    # Tracebacks with local variables would print tokens.
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"assetctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    profile: Annotated[
        str | None, typer.Option(help="Profile to use [env ASSETCTL_PROFILE].")
    ] = None,
    server_url: Annotated[
        str | None, typer.Option(help="Keycloak base URL [env ASSETCTL_SERVER_URL].")
    ] = None,
    realm: Annotated[
        str | None, typer.Option(help="Keycloak realm [env ASSETCTL_REALM].")
    ] = None,
    client_id: Annotated[
        str | None, typer.Option(help="OAuth client id [env ASSETCTL_CLIENT_ID].")
    ] = None,
    api_url: Annotated[
        str | None, typer.Option(help="Asset API base URL [env ASSETCTL_API_URL].")
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(help="Asset type registry file [env ASSETCTL_REGISTRY]."),
    ] = None,
    ca_bundle: Annotated[
        str | None, typer.Option(help="CA bundle for TLS [env ASSETCTL_CA_BUNDLE].")
    ] = None,
    allow_http: Annotated[
        bool | None,
        typer.Option("--allow-http", help="Allow plain http:// beyond loopback."),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="Seconds per HTTP request [env ASSETCTL_TIMEOUT]."),
    ] = None,
    token_store: Annotated[
        str | None,
        typer.Option(help="'keyring' (default) or 'file' (opt-in, unencrypted)."),
    ] = None,
    no_input: Annotated[
        bool | None,
        typer.Option("--no-input", help="Never prompt or wait for a person."),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option("--verbose", "-v", count=True, help="More log output (-v, -vv)."),
    ] = 0,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Log every HTTP exchange (secrets masked) and show tracebacks.",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version."
        ),
    ] = False,
) -> None:
    """Sign in to Keycloak with the device flow and manage assets on a protected API."""
    verbosity = 2 if debug else verbose
    configure(verbosity)
    ctx.obj = AppContext(
        flags={
            "profile": profile,
            "server_url": server_url,
            "realm": realm,
            "client_id": client_id,
            "api_url": api_url,
            "registry": registry,
            "ca_bundle": ca_bundle,
            "allow_http": allow_http,
            "timeout": timeout,
            "token_store": token_store,
            "no_input": no_input,
        },
        verbosity=verbosity,
    )


def _register() -> None:
    from . import auth
    from .api import api_request
    from .asset import asset_app

    auth.register(app)
    app.add_typer(asset_app, name="asset", help="Create, edit, list and delete assets.")
    app.command("api")(api_request)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure ends here as one line and a documented exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv)
    try:
        result = app(args=argv, prog_name="assetctl", standalone_mode=False)
        return int(result or 0) if isinstance(result, int) else 0
    except typer.Exit as exc:
        if exc.exit_code == ExitCode.INTERRUPTED:  # Typer's own Ctrl-C, said quietly
            _error("interrupted")
        if exc.exit_code == ExitCode.FAILURE and _reader_left():
            return int(ExitCode.OK)
        return exc.exit_code
    except AssetctlError as exc:
        if debug:
            log.debug("details", exc_info=True)
        _error(str(exc))
        if isinstance(exc, Interrupted) and exc.abandoned:
            _exit_without_joining_threads(int(exc.exit_code))
        return int(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        _error("interrupted")
        return int(ExitCode.INTERRUPTED)
    except typer.TyperException as exc:  # Click's usage errors: wrong flag, missing arg
        if (
            type(exc).__name__ == "NoArgsIsHelpError"
        ):  # bare `assetctl`, `assetctl asset`
            print(exc.format_message(), file=sys.stderr)
            return int(ExitCode.USAGE)
        _error(f"{exc.format_message()}; see `{_command_path(exc)} --help`")
        return int(getattr(exc, "exit_code", ExitCode.USAGE))
    except BrokenPipeError:
        return int(ExitCode.OK)
    except SystemExit as exc:
        if _reader_left():
            return int(ExitCode.OK)
        return exc.code if isinstance(exc.code, int) else int(ExitCode.FAILURE)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if debug:
            log.error("unexpected failure", exc_info=True)
        _error(
            f"unexpected failure: {type(exc).__name__}: {exc}; "
            "rerun with --debug and report it"
        )
        return int(ExitCode.FAILURE)


def _reader_left() -> bool:
    """Click meets a reader that left (`assetctl --help | head -1`) by wrapping stdout
    and exiting 1; for us a reader that stops early is not an error."""
    return type(sys.stdout).__name__.lstrip("_") == "PacifyFlushWrapper"


def _exit_without_joining_threads(code: int) -> None:
    """End now: the interpreter would otherwise wait for every worker thread, and a
    third Ctrl-C would land inside that wait as a traceback."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _command_path(exc: Exception) -> str:
    ctx = getattr(exc, "ctx", None)
    return ctx.command_path if ctx is not None else "assetctl"


def _error(message: str) -> None:
    print(f"assetctl: error: {scrub(message)}", file=sys.stderr)
