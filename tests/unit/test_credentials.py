"""Credentials: stored entries that cannot be read (not a JSON object, fields of the
wrong type, not text) count as absent with one warning, so `login` can replace them;
a token set that cannot be saved says the login is lost and what to do."""

from __future__ import annotations

import json
import logging

import pytest

from assetctl.auth.credentials import Credentials
from assetctl.auth.device_flow import DeviceAuthorization
from assetctl.auth.store import FileStore
from assetctl.auth.tokens import TokenSet
from assetctl.cli.app import main
from assetctl.errors import ExitCode, StorageError

from .conftest import ISSUER, MemoryStore

TOKENS = {
    "access_token": "at-stored-0123456789",
    "expires_at": 1_800_000_300.0,
    "refresh_token": "rt-stored-0123456789",
    "refresh_expires_at": 1_800_001_800.0,
    "lifetime": 300.0,
    "scope": "openid",
    "issuer": ISSUER,
    "client_id": "assetctl-cli",
    "obtained_at": 1_800_000_000.0,
}
PENDING = {
    "device_code": "dc-stored-0123456789",
    "user_code": "ABCD-EFGH",
    "verification_uri": f"{ISSUER}/device",
    "verification_uri_complete": None,
    "expires_at": 1_800_000_600.0,
    "interval": 5.0,
    "issuer": ISSUER,
    "client_id": "assetctl-cli",
    "failures": 0,
}


def with_changes(base: dict, **changes) -> str:
    return json.dumps({**base, **changes})


NOT_TOKEN_SETS = [
    "",
    "{",
    "null",
    "[]",
    '"a token"',
    "42",
    "[" * 100_000,  # deeper than json's recursion limit
    with_changes(TOKENS, expires_at=None),
    with_changes(TOKENS, expires_at="1800000300"),
    with_changes(TOKENS, expires_at=True),
    with_changes(TOKENS, expires_at=[1]),
    with_changes(TOKENS, access_token=None),
    with_changes(TOKENS, access_token=12345678),
    with_changes(TOKENS, refresh_token={"value": "x"}),
    with_changes(TOKENS, refresh_expires_at="never"),
    with_changes(TOKENS, lifetime=None),
    with_changes(TOKENS, scope=None),
    with_changes(TOKENS, issuer=7),
    with_changes(TOKENS, obtained_at=10**400),
    json.dumps({"expires_at": 1.0}),  # no access token
]
NOT_PENDING = [
    "null",
    "[1, 2]",
    with_changes(PENDING, expires_at=None),
    with_changes(PENDING, interval="5"),
    with_changes(PENDING, failures=1.5),
    with_changes(PENDING, failures=False),
    with_changes(PENDING, device_code=None),
    with_changes(PENDING, verification_uri_complete=3),
    with_changes(PENDING, next_poll_at="later"),
]


@pytest.fixture
def memory_store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def credentials(memory_store) -> Credentials:
    return Credentials(memory_store, "p")


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("text", NOT_TOKEN_SETS)
def test_an_unreadable_token_set_is_absent_and_replaceable(
    text, memory_store, credentials, caplog
):
    memory_store.items["p/tokens"] = text

    assert credentials.load_tokens() is None
    assert credentials.load_tokens() is None
    assert warnings(caplog) == ["ignoring an unreadable stored entry p/tokens"]

    fresh = TokenSet(**TOKENS)
    credentials.save_tokens(fresh)
    assert credentials.load_tokens() == fresh


@pytest.mark.parametrize("text", NOT_PENDING)
def test_an_unreadable_pending_login_is_absent(text, memory_store, credentials, caplog):
    memory_store.items["p/pending"] = text

    assert credentials.load_pending() is None
    assert warnings(caplog) == ["ignoring an unreadable stored entry p/pending"]


def test_well_typed_entries_load_whole_numbers_as_numbers(memory_store, credentials):
    memory_store.items["p/tokens"] = with_changes(
        TOKENS, expires_at=1_800_000_300, refresh_token=None, refresh_expires_at=None
    )
    memory_store.items["p/pending"] = with_changes(PENDING, interval=5, extra="ignored")

    tokens = credentials.load_tokens()
    assert tokens is not None
    assert tokens.expires_at == 1_800_000_300.0 and isinstance(tokens.expires_at, float)
    assert tokens.refresh_token is None and tokens.refresh_expires_at is None
    pending = credentials.load_pending()
    assert pending == DeviceAuthorization(**PENDING)


def test_a_token_set_round_trips_through_json():
    tokens = TokenSet(**TOKENS, realm_url="https://other.example.test/realms/demo")
    assert TokenSet.from_json(tokens.to_json()) == tokens


def test_a_file_that_is_not_utf8_is_absent_and_login_overwrites_it(tmp_path, caplog):
    folder = tmp_path / "tokens"
    folder.mkdir()
    (folder / "p__tokens.json").write_bytes(b"\xff")
    credentials = Credentials(FileStore(folder), "p")

    assert credentials.load_tokens() is None
    assert credentials.store.get("p/tokens") is None
    assert len(warnings(caplog)) == 1

    credentials.save_tokens(TokenSet(**TOKENS))
    assert credentials.load_tokens() == TokenSet(**TOKENS)


class FailingStore(MemoryStore):
    def set(self, key: str, value: str) -> None:
        raise StorageError(
            "cannot write /state/tokens/p__tokens.json: Permission denied",
            hint="check the folder's permissions",
        )


def test_tokens_that_cannot_be_saved_say_the_login_is_lost():
    credentials = Credentials(FailingStore(), "p")

    with pytest.raises(StorageError) as caught:
        credentials.save_tokens(TokenSet(**TOKENS))

    error = caught.value
    assert error.exit_code == ExitCode.STORAGE
    assert "could not save the new tokens" in error.message
    assert "Permission denied" in error.message
    hint = error.hint or ""
    assert "the login is lost" in hint
    assert "check the folder's permissions" in hint
    assert hint.endswith("then run `assetctl login`")


@pytest.mark.parametrize("content", [b"\xff", b"null", b"[]", b'{"expires_at":null}'])
@pytest.mark.parametrize("command", ["status", "token"])
def test_a_corrupted_file_entry_reads_as_not_logged_in(
    command, content, capsys, monkeypatch, isolated_home, rsps
):
    folder = isolated_home / ".local" / "state" / "assetctl" / "tokens"
    folder.mkdir(parents=True)
    (folder / "default__tokens.json").write_bytes(content)
    for name, value in {
        "ASSETCTL_SERVER_URL": "https://kc.example.test",
        "ASSETCTL_REALM": "demo",
        "ASSETCTL_TOKEN_STORE": "file",
    }.items():
        monkeypatch.setenv(name, value)

    code = main([command])

    out, err = capsys.readouterr()
    assert code == ExitCode.AUTH, err
    assert out == ""
    assert "not logged in" in err and "unexpected failure" not in err
