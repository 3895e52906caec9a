"""`TokenSet`: the tokens of one login and when they stop working.

Expiry comes from the server's `expires_in`, counted from when the answer arrived on
this machine, never from the token's own `iat`/`exp`: a server whose clock is a few
seconds off
must not make a fresh token look expired (or an old one look fresh).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import jwt

from ..logs import register_secret

# Refresh this long before expiry, at most: a request in flight must not carry a token
# that dies on the way. Short-lived tokens get a tenth of their life instead.
REFRESH_MARGIN = 30.0


@dataclass(frozen=True)
class TokenSet:
    access_token: str = field(repr=False)
    expires_at: float
    refresh_token: str | None = field(default=None, repr=False)
    # None: the server gave no refresh expiry (offline tokens say 0, meaning "no fixed
    # lifetime", not "never": the server can still end them).
    refresh_expires_at: float | None = None
    lifetime: float = 300.0
    scope: str = ""
    token_type: str = "Bearer"  # noqa: S105 - a scheme name
    issuer: str = ""
    client_id: str = ""
    obtained_at: float = 0.0
    # The realm URL the login was made at, when it differs from `issuer`.
    realm_url: str = ""
    # "device" or "client_credentials": how to get a new set when this one runs out.
    grant: str = "device"

    def __post_init__(self) -> None:
        register_secret(self.access_token)
        register_secret(self.refresh_token)

    @classmethod
    def from_response(
        cls,
        body: Mapping[str, Any],
        *,
        issuer: str,
        client_id: str,
        realm_url: str = "",
        previous: TokenSet | None = None,
        now: float | None = None,
        grant: str | None = None,
    ) -> TokenSet:
        """Build from a token endpoint answer; `previous` keeps a refresh token the
        server chose not to rotate."""
        now = time.time() if now is None else now
        lifetime = float(body.get("expires_in") or 300)
        refresh_in = float(body.get("refresh_expires_in") or 0)
        refresh_token = body.get("refresh_token") or (
            previous.refresh_token if previous else None
        )
        return cls(
            access_token=str(body["access_token"]),
            expires_at=now + lifetime,
            refresh_token=refresh_token,
            refresh_expires_at=now + refresh_in if refresh_in > 0 else None,
            lifetime=lifetime,
            scope=str(body.get("scope", "")),
            token_type=str(body.get("token_type", "Bearer")),
            issuer=issuer,
            client_id=client_id,
            realm_url=realm_url,
            obtained_at=now,
            grant=grant or (previous.grant if previous else "device"),
        )

    def margin(self) -> float:
        return min(REFRESH_MARGIN, self.lifetime / 10)

    def seconds_left(self, now: float | None = None) -> float:
        return self.expires_at - (time.time() if now is None else now)

    def is_fresh(self, min_valid: float = 0.0, now: float | None = None) -> bool:
        """True if the access token stays valid for `min_valid` seconds, and for the
        refresh margin at least."""
        return self.seconds_left(now) > max(min_valid, self.margin())

    def refresh_expired(self, now: float | None = None) -> bool:
        if self.refresh_token is None:
            return True
        if self.refresh_expires_at is None:
            return False
        return self.refresh_expires_at <= (time.time() if now is None else now)

    def made_at(self, realm_url: str, client_id: str) -> bool:
        return client_id == self.client_id and same_realm(
            realm_url, self.issuer, self.realm_url
        )

    def with_updates(self, **changes: Any) -> TokenSet:
        return replace(self, **changes)

    def claims(self) -> dict[str, Any]:
        """The access token's claims, unverified (for display, never for trust)."""
        try:
            return dict(
                jwt.decode(self.access_token, options={"verify_signature": False})
            )
        except jwt.PyJWTError:
            return {}

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TokenSet:
        """A stored set; `ValueError` or `TypeError` if it is not one."""
        return cls(**stored_fields(cls, text))


def stored_fields(cls: type[Any], text: str) -> dict[str, Any]:
    """The fields of dataclass `cls` in a stored JSON object, each checked against its
    type (a hand edit or another program may have written anything); unknown keys are
    dropped. `ValueError` for text that is not a JSON object, `TypeError` for a field of
    the wrong type; a missing required field is left for `cls` to refuse."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"not a JSON object but {type(data).__name__}")
    hints = get_type_hints(cls)
    fields: dict[str, Any] = {}
    for name, value in data.items():
        if name not in cls.__dataclass_fields__:
            continue
        fields[name] = _checked(name, value, hints[name])
    return fields


_CHECKED = (str, int, float, type(None))


def _checked(name: str, value: Any, hint: Any) -> Any:
    allowed = get_args(hint) if get_origin(hint) in (Union, UnionType) else (hint,)
    if any(kind not in _CHECKED for kind in allowed):
        return value  # a kind of field this check does not know: the class decides
    if value is None and type(None) in allowed:
        return None
    if float in allowed and _is_number(value):
        try:
            return float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise ValueError(f"{name} is out of range") from None
    if int in allowed and isinstance(value, int) and not isinstance(value, bool):
        return value
    if str in allowed and isinstance(value, str):
        return value
    wanted = " or ".join(getattr(kind, "__name__", str(kind)) for kind in allowed)
    raise TypeError(f"{name} is {type(value).__name__}, not {wanted}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same_realm(realm_url: str, issuer: str, recorded_realm_url: str = "") -> bool:
    """Whether something issued by `issuer`, obtained at `recorded_realm_url`, belongs
    to the realm configured as `realm_url`: either name of the realm counts."""
    wanted = realm_url.rstrip("/")
    return wanted in {issuer.rstrip("/"), recorded_realm_url.rstrip("/")} - {""}
