"""Settings: where assetctl finds Keycloak and the API, resolved once per command.

Precedence, highest first: command-line flags, `ASSETCTL_*` environment variables, the
old script's variables (`KEYCLOAK_SERVER_URL`, ...), a `.env` file in the working
directory, the profile in the config file, built-in defaults. Reading settings never
touches the network or the token store.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

log = logging.getLogger(__name__)

APP_NAME = "assetctl"

# Setting name -> (ASSETCTL_* variable, the old script's variable or None).
ENV_NAMES: dict[str, tuple[str, str | None]] = {
    "server_url": ("ASSETCTL_SERVER_URL", "KEYCLOAK_SERVER_URL"),
    "realm": ("ASSETCTL_REALM", "KEYCLOAK_REALM"),
    "client_id": ("ASSETCTL_CLIENT_ID", "KEYCLOAK_CLIENT_ID"),
    "api_url": ("ASSETCTL_API_URL", "PROTECTED_API_URL"),
    "registry": ("ASSETCTL_REGISTRY", None),
    "ca_bundle": ("ASSETCTL_CA_BUNDLE", None),
    "allow_http": ("ASSETCTL_ALLOW_HTTP", None),
    "timeout": ("ASSETCTL_TIMEOUT", None),
    "token_store": ("ASSETCTL_TOKEN_STORE", None),
    "keyring_timeout": ("ASSETCTL_KEYRING_TIMEOUT", None),
    "scope": ("ASSETCTL_SCOPE", None),
}

TOKEN_STORES = ("keyring", "file")
STRING_SETTINGS = {
    "server_url",
    "realm",
    "client_id",
    "api_url",
    "registry",
    "ca_bundle",
    "token_store",
    "scope",
}


PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know about where to go and how."""

    profile: str = "default"
    server_url: str | None = None
    realm: str | None = None
    client_id: str = "assetctl"
    api_url: str | None = None
    registry: str | None = None
    ca_bundle: str | None = None
    allow_http: bool = False
    timeout: float = 30.0
    token_store: str = "keyring"  # noqa: S105 - a store name
    keyring_timeout: float = 10.0
    scope: str = "openid"
    no_input: bool = False
    config_file: Path | None = None
    # Setting name -> where its value came from ("flag", "env ASSETCTL_REALM", ...).
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def issuer(self) -> str:
        """The realm's issuer URL, as Keycloak puts it in tokens."""
        if not self.server_url or not self.realm:
            missing = "server URL" if not self.server_url else "realm"
            if self.sources.get("profile") != "built-in default" and not any(
                source.startswith("config file profile")
                for source in self.sources.values()
            ):
                raise ConfigError(
                    f"no Keycloak {missing} configured, and profile '{self.profile}' "
                    f"is not in the config file {self.config_file}",
                    hint="check the profile name, or set ASSETCTL_SERVER_URL and "
                    "ASSETCTL_REALM",
                )
            raise ConfigError(
                f"no Keycloak {missing} configured for profile '{self.profile}'",
                hint="set ASSETCTL_SERVER_URL and ASSETCTL_REALM, pass --server-url "
                "and --realm, or add them to the config file (see `assetctl --help`)",
            )
        return f"{self.server_url.rstrip('/')}/realms/{self.realm}"

    def require_api_url(self) -> str:
        if not self.api_url:
            raise ConfigError(
                f"no API URL configured for profile '{self.profile}'",
                hint="set ASSETCTL_API_URL or pass --api-url",
            )
        return self.api_url.rstrip("/")


def default_config_file(env: Mapping[str, str]) -> Path:
    if env.get("ASSETCTL_CONFIG"):
        return Path(env["ASSETCTL_CONFIG"])
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolve settings from every source; `flags` holds only values the user gave."""
    env = os.environ if env is None else env
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    config_file = default_config_file(env)
    config = _read_config_file(config_file, explicit=bool(env.get("ASSETCTL_CONFIG")))
    dotenv = _read_dotenv((cwd or Path.cwd()) / ".env")

    for name in config.get("profiles", {}):
        _checked_profile(name, f"config file {config_file}: [profiles]")
        _profile_values(config, name, config_file)  # a typo anywhere is said at once
    profile, profile_source = _choose_profile(flags, env, config)
    layers = [
        ("built-in default", {}),
        (
            f"config file profile '{profile}'",
            _profile_values(config, profile, config_file),
        ),
        (".env file", _env_values(dotenv, legacy=True)),
        ("old script variable", _env_values(env, legacy=True, only_legacy=True)),
        ("environment", _env_values(env, legacy=False)),
        ("flag", flags),
    ]

    values: dict[str, Any] = {}
    sources: dict[str, str] = {"profile": profile_source}
    for source, layer in layers:
        for name, value in layer.items():
            if isinstance(value, tuple):  # from a variable: name it, for error messages
                value, variable = value
                values[name], sources[name] = value, f"{source} {variable}"
            else:
                values[name], sources[name] = value, source

    values.pop("profile", None)
    _warn_about_shadowed_profile(profile, layers[1][1], values, sources)
    return _build(profile, values, sources, config_file)


def _warn_about_shadowed_profile(
    profile: str,
    from_profile: Mapping[str, Any],
    values: Mapping[str, Any],
    sources: Mapping[str, str],
) -> None:
    """A variable exported for one server quietly beating the chosen profile's own
    value would send that profile's tokens elsewhere: say so (flags are deliberate)."""
    for name in ("server_url", "realm", "client_id", "api_url"):
        source = sources.get(name, "")
        if (
            name in from_profile
            and values.get(name) != from_profile[name]
            and source.startswith(("environment", "old script", ".env"))
        ):
            log.warning(
                "%s overrides %s of profile '%s' (%s); unset it to use the profile's",
                source,
                name,
                profile,
                from_profile[name],
            )


def _choose_profile(
    flags: Mapping[str, Any], env: Mapping[str, str], config: Mapping[str, Any]
) -> tuple[str, str]:
    if flags.get("profile") is not None:
        return _checked_profile(str(flags["profile"]), "--profile"), "flag"
    if env.get("ASSETCTL_PROFILE"):
        name = _checked_profile(env["ASSETCTL_PROFILE"], "ASSETCTL_PROFILE")
        return name, "env ASSETCTL_PROFILE"
    if config.get("default_profile"):
        name = str(config["default_profile"])
        if name not in config.get("profiles", {}):
            raise ConfigError(
                f"the config file's default_profile '{name}' has no [profiles.{name}]",
                hint=f"known profiles: {_known(config)}",
            )
        return name, "config file default_profile"
    return "default", "built-in default"


def _checked_profile(name: str, where: str) -> str:
    # Profile names become key and file names in the token store and lock folder:
    # "a/b" and "a__b" must never share tokens.
    if not PROFILE_NAME.fullmatch(name):
        raise ConfigError(
            f"{where}: '{name}' is not a profile name",
            hint="use letters, digits, '.', '_' and '-' (up to 64), "
            "starting with a letter or digit",
        )
    return name


def _env_values(
    env: Mapping[str, str], *, legacy: bool, only_legacy: bool = False
) -> dict[str, tuple[str, str]]:
    """Setting name -> (value, the variable it came from)."""
    values = {}
    for name, (new, old) in ENV_NAMES.items():
        if not only_legacy and env.get(new):
            values[name] = (env[new], new)
        elif legacy and old and env.get(old):
            values[name] = (env[old], old)
    return values


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    # The old script kept ACCESS_TOKEN / REFRESH_TOKEN here too; only settings are read.
    try:
        values = dotenv_values(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read {path}: {exc}", hint="fix the file (UTF-8 text) or remove it"
        ) from exc
    return {k: v for k, v in values.items() if v is not None}


def _read_config_file(path: Path, explicit: bool = False) -> dict[str, Any]:
    if explicit and path.is_dir():
        raise ConfigError(
            f"ASSETCTL_CONFIG names a directory ({path})",
            hint="point ASSETCTL_CONFIG at a TOML file, or unset it",
        )
    if explicit and not path.exists():
        log.warning("ASSETCTL_CONFIG names %s, which does not exist; ignoring it", path)
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc}", hint="fix or remove the file"
        ) from exc

    unknown = set(data) - {"default_profile", "profiles"}
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown key '{sorted(unknown)[0]}'",
            hint="allowed at top level: default_profile, [profiles.NAME]",
        )
    profiles = data.get("profiles", {})
    # `[profiles]` with settings right under it (no profile name) was silently ignored.
    if not isinstance(profiles, dict) or not all(
        isinstance(p, dict) for p in profiles.values()
    ):
        raise ConfigError(
            f"config file {path}: 'profiles' must hold one table per profile",
            hint="write settings under [profiles.NAME], e.g. [profiles.default]",
        )
    return data


def _profile_values(
    config: Mapping[str, Any], profile: str, path: Path
) -> dict[str, Any]:
    profiles = config.get("profiles", {})
    values = dict(profiles.get(profile, {}))
    known = set(ENV_NAMES)
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"config file {path}: profile '{profile}' has unknown key '{key}'",
                hint=f"known keys: {', '.join(sorted(known))}",
            )
        if not isinstance(value, str | bool | int | float):
            raise ConfigError(
                f"config file {path}: profile '{profile}': {key} must be a plain "
                f"value, not {type(value).__name__}"
            )
        if key in STRING_SETTINGS and not isinstance(value, str):
            raise ConfigError(
                f"config file {path}: profile '{profile}': {key} must be a string, "
                f"got {value!r}",
                hint=f'quote it: {key} = "..."',
            )
    return values


def _known(config: Mapping[str, Any]) -> str:
    return ", ".join(sorted(config.get("profiles", {}))) or "none"


def _build(
    profile: str, values: dict[str, Any], sources: dict[str, str], config_file: Path
) -> Settings:
    known = {f.name for f in fields(Settings)}
    kwargs: dict[str, Any] = {k: v for k, v in values.items() if k in known}
    for name in ("timeout", "keyring_timeout"):
        if name in kwargs:
            kwargs[name] = _seconds(name, kwargs[name], sources.get(name))
    if "allow_http" in kwargs:
        kwargs["allow_http"] = _as_bool(kwargs["allow_http"], sources.get("allow_http"))

    for name in ("server_url", "api_url"):
        if kwargs.get(name):
            _check_url(name, str(kwargs[name]), sources.get(name))
    if kwargs.get("ca_bundle") and not Path(kwargs["ca_bundle"]).is_file():
        raise ConfigError(
            f"the CA bundle {kwargs['ca_bundle']} (from {sources.get('ca_bundle')}) "
            "is not a file",
            hint="name a PEM file of CA certificates",
        )

    store = kwargs.get("token_store", "keyring")
    if store not in TOKEN_STORES:
        raise ConfigError(
            f"unknown token store '{store}' (from {sources.get('token_store')})",
            hint="use 'keyring' (default) or 'file'",
        )
    return Settings(profile=profile, config_file=config_file, sources=sources, **kwargs)


def _check_url(name: str, url: str, source: str | None) -> None:
    """A URL requests could not even parse failed later as "unexpected failure"."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError as exc:
        raise ConfigError(
            f"{name} '{url}' (from {source}) is not a valid URL: {exc}",
            hint="fix the value, e.g. https://host:8443",
        ) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{name} '{url}' (from {source}) is not an http(s) URL",
            hint="fix the value, e.g. https://host:8443",
        )


def _seconds(name: str, value: Any, source: str | None) -> float:
    # Zero, negative or NaN got through before and failed later inside requests
    # ("unexpected failure") or made every keyring call time out at once.
    try:
        # `timeout = true` in TOML is a mistake, not one second.
        seconds = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise ConfigError(
            f"{name} must be a positive number of seconds, got {value!r} "
            f"(from {source})",
            hint="fix the value",
        )
    return seconds


def _as_bool(value: Any, source: str | None = None) -> bool:
    """Yes or no; anything else ("maybe") is a mistake to say, not a quiet no."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(
        f"allow_http must be yes or no, got {value!r} (from {source})",
        hint="use 1/true/yes or 0/false/no",
    )
