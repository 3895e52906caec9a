"""Fakes and isolation for the unit tests: no Keycloak, no real keyring, no real home.

Every test here runs with HOME and the XDG folders in its own temporary folder, no
inherited ASSETCTL_*/KEYCLOAK_* variables, a working directory without a `.env`, and a
keyring that records whoever asks for it. None of these fixtures starts a server.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses

from assetctl.errors import StorageError

ISSUER = "https://kc.example.test/realms/demo"
TOKEN_URL = f"{ISSUER}/protocol/openid-connect/token"
DEVICE_URL = f"{ISSUER}/protocol/openid-connect/auth/device"
DISCOVERY_URL = f"{ISSUER}/.well-known/openid-configuration"
LEGACY_NAMES = ("KEYCLOAK_SERVER_URL", "KEYCLOAK_REALM", "KEYCLOAK_CLIENT_ID")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    folders = {
        "HOME": home,
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_STATE_HOME": home / ".local" / "state",
        "XDG_DATA_HOME": home / ".local" / "share",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_RUNTIME_DIR": home / "run",
    }
    for name, folder in folders.items():
        folder.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(name, str(folder))
    for name in list(os.environ):
        if name.startswith("ASSETCTL_") or name in LEGACY_NAMES:
            monkeypatch.delenv(name)
    for name in (
        "PROTECTED_API_URL",
        "PYTHON_KEYRING_BACKEND",
        "DBUS_SESSION_BUS_ADDRESS",
    ):
        monkeypatch.delenv(name, raising=False)
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return home


@pytest.fixture(autouse=True)
def keyring_requests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Any use of the real keyring module gets the `fail` backend and is recorded."""
    import keyring
    import keyring.core
    from keyring.backends import fail

    asked: list[str] = []

    def get_keyring() -> object:
        asked.append("get_keyring")
        return fail.Keyring()

    monkeypatch.setattr(keyring, "get_keyring", get_keyring)
    monkeypatch.setattr(keyring.core, "get_keyring", get_keyring)
    return asked


@pytest.fixture(autouse=True)
def restore_root_logging() -> Iterator[None]:
    """`logs.configure` replaces the root handlers; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    urllib3_level = logging.getLogger("urllib3").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("urllib3").setLevel(urllib3_level)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


class FakeClock:
    """time.time and time.sleep for code that takes `now=` and `sleep=`."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, f"asked to sleep {seconds} s"
        # A polling loop that never ends fails here instead of hanging the run.
        assert len(self.sleeps) < 1000, "still sleeping after 1000 waits"
        self.sleeps.append(seconds)
        self.t += seconds

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class MemoryStore:
    """An in-memory SecretStore that counts writes and can be told to fail them."""

    description = "memory"

    def __init__(self) -> None:
        self.items: dict[str, str] = {}
        self.writes: list[tuple[str, str]] = []
        self.fail_writes: str | None = None

    def get(self, key: str) -> str | None:
        return self.items.get(key)

    def set(self, key: str, value: str) -> None:
        if self.fail_writes:
            raise StorageError(self.fail_writes)
        self.writes.append((key, value))
        self.items[key] = value

    def delete(self, key: str) -> bool:
        return self.items.pop(key, None) is not None


@pytest.fixture
def memory_store() -> MemoryStore:
    return MemoryStore()
