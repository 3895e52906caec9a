"""The server's settings from flags, each also readable from `ASSET_API_*`."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_ISSUER = "http://127.0.0.1:18080/realms/assetctl"


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    db: str
    issuer: str
    jwks_url: str
    audience: str
    writer_role: str
    threads: int
    log_level: str


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ
) -> Settings:
    """Flags win over `ASSET_API_<FLAG>` variables, which win over defaults."""
    parser = argparse.ArgumentParser(
        prog="python -m devstack.asset_api",
        description="The reference asset API for assetctl's local stack.",
    )

    def option(flag: str, default: str | None, help_text: str, **kw: object) -> None:
        env_name = "ASSET_API_" + flag.upper().replace("-", "_")
        parser.add_argument(
            f"--{flag}",
            default=environ.get(env_name, default),
            help=f"{help_text} (env {env_name}; default: %(default)s)",
            **kw,  # type: ignore[arg-type]
        )

    option("host", "127.0.0.1", "address to listen on")
    option("port", "18090", "port to listen on; 0 picks a free one", type=int)
    option("db", "asset-api.sqlite3", "SQLite file holding the assets")
    option("issuer", DEFAULT_ISSUER, "token issuer, matched exactly")
    option("jwks-url", None, "JWKS URL (default: the issuer's Keycloak certs URL)")
    option("audience", "asset-api", "audience tokens must carry")
    option("writer-role", "asset-writer", "realm role needed to change assets")
    option("threads", "8", "waitress worker threads", type=int)
    option("log-level", "INFO", "logging level")

    args = parser.parse_args(argv)
    jwks_url = args.jwks_url or f"{args.issuer}/protocol/openid-connect/certs"
    return Settings(
        host=args.host,
        port=int(args.port),
        db=args.db,
        issuer=args.issuer,
        jwks_url=jwks_url,
        audience=args.audience,
        writer_role=args.writer_role,
        threads=int(args.threads),
        log_level=str(args.log_level).upper(),
    )
