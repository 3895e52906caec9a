"""Token storage: the keyring store through a backend with Windows' size limit, change
detection, timeouts, refusal of plain-text and missing keyrings; the opt-in file
store."""

from __future__ import annotations

import os
import secrets
import stat
import threading
import time
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from keyring.errors import (
    KeyringLocked,
    NoKeyringError,
    PasswordDeleteError,
    PasswordSetError,
)

from assetctl.auth import store as store_module
from assetctl.auth.credentials import Credentials
from assetctl.auth.store import SERVICE, FileStore, KeyringStore, open_store
from assetctl.auth.tokens import TokenSet
from assetctl.config import Settings
from assetctl.errors import ExitCode, StorageError

WINDOWS_LIMIT = 1280  # characters (2,560 bytes of UTF-16), Windows Credential Manager


class LimitedKeyring(KeyringBackend):
    """In memory, refusing values Windows Credential Manager would refuse."""

    priority = 0.1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}
        self.set_calls: list[str] = []
        self.delete_calls: list[str] = []

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        if len(password) > WINDOWS_LIMIT:
            raise PasswordSetError("(1783, 'CredWrite', 'The stub received bad data.')")
        self.set_calls.append(username)
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.delete_calls.append(username)
        if self.items.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")

    def names(self) -> set[str]:
        return {name for service, name in self.items if service == SERVICE}


class HangingKeyring(LimitedKeyring):
    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    def get_password(self, service: str, username: str) -> str | None:
        self.release.wait(30)
        return None


class RaisingKeyring(LimitedKeyring):
    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc

    def get_password(self, service: str, username: str) -> str | None:
        raise self.exc

    def set_password(self, service: str, username: str, password: str) -> None:
        raise self.exc


class PlaintextKeyring(LimitedKeyring):
    pass


PlaintextKeyring.__module__ = "keyrings.alt.file"


def big_token_set() -> TokenSet:
    """About 4 KB as JSON: Keycloak access tokens run 1.5-4 KB."""
    return TokenSet(
        access_token="eyJhbGciOiJSUzI1NiJ9." + "a" * 2300 + ".sig",
        expires_at=1_800_000_300.0,
        refresh_token="eyJhbGciOiJIUzUxMiJ9." + "r" * 1500 + ".sig",
        refresh_expires_at=1_800_001_800.0,
        scope="openid profile email offline_access",
        issuer="https://kc.example.test/realms/demo",
        client_id="assetctl-cli",
        obtained_at=1_800_000_000.0,
    )


@pytest.fixture
def backend() -> LimitedKeyring:
    return LimitedKeyring()


@pytest.fixture
def kstore(backend: LimitedKeyring) -> KeyringStore:
    return KeyringStore(timeout=5, backend=backend)


# -- keyring store


def test_a_4kb_token_set_fits_a_backend_with_the_windows_limit(backend, kstore):
    tokens = big_token_set()
    assert len(tokens.to_json()) > 4000
    credentials = Credentials(kstore, "work")

    credentials.save_tokens(tokens)

    assert credentials.load_tokens() == tokens
    assert all(len(v) <= WINDOWS_LIMIT for v in backend.items.values())
    assert len(backend.items) > 1
    assert all(name.startswith("work/tokens") for name in backend.names())


def test_a_small_value_is_one_entry(backend, kstore):
    kstore.set("p/tokens", "small")

    assert backend.items == {(SERVICE, "p/tokens"): "small"}
    assert kstore.get("p/tokens") == "small"
    assert kstore.get("p/other") is None


@pytest.mark.parametrize("size", [10, 999, 1000, 1001, 4321, 12000])
def test_values_of_any_size_round_trip(kstore, size):
    value = "".join(chr(ord("a") + i % 26) for i in range(size))
    kstore.set("p/tokens", value)
    assert kstore.get("p/tokens") == value


def test_a_value_that_looks_like_a_manifest_round_trips(kstore):
    value = "assetctl-chunks:3:deadbeef"
    kstore.set("p/tokens", value)
    assert kstore.get("p/tokens") == value


@pytest.mark.parametrize("size", [100, 4500])
def test_an_unchanged_value_is_not_rewritten(backend, kstore, size):
    value = "v" * size
    kstore.set("p/tokens", value)
    writes = len(backend.set_calls)

    kstore.set("p/tokens", value)

    assert len(backend.set_calls) == writes
    assert backend.delete_calls == []


def test_a_changed_value_is_rewritten(backend, kstore):
    kstore.set("p/tokens", "v" * 4500)
    writes = len(backend.set_calls)

    kstore.set("p/tokens", "w" * 4500)

    assert len(backend.set_calls) > writes
    assert kstore.get("p/tokens") == "w" * 4500


def test_shrinking_a_chunked_value_deletes_stale_chunks(backend, kstore):
    kstore.set("p/tokens", "a" * 4500)  # 5 pieces
    assert len(backend.names() - {"p/tokens"}) == 5

    kstore.set("p/tokens", "b" * 2500)  # 3 pieces, named anew; the old 5 are gone
    pieces = backend.names() - {"p/tokens"}
    assert len(pieces) == 3
    assert all(name.startswith("p/tokens#") for name in pieces)
    assert kstore.get("p/tokens") == "b" * 2500

    kstore.set("p/tokens", "c" * 20)  # one plain entry
    assert backend.names() == {"p/tokens"}
    assert kstore.get("p/tokens") == "c" * 20


def test_delete_removes_every_chunk(backend, kstore):
    kstore.set("p/tokens", "a" * 4500)
    kstore.set("q/tokens", "other profile")

    assert kstore.delete("p/tokens") is True
    assert kstore.delete("p/tokens") is False
    assert backend.names() == {"q/tokens"}


def test_a_chunk_gone_missing_reads_as_absent_not_garbage(backend, kstore):
    kstore.set("p/tokens", "a" * 4500)
    piece = sorted(name for name in backend.names() if name.endswith("#2"))[0]
    del backend.items[(SERVICE, piece)]

    assert kstore.get("p/tokens") is None
    kstore.set("p/tokens", "a" * 4500)  # and the same value can be written again
    assert kstore.get("p/tokens") == "a" * 4500


def test_a_mangled_manifest_does_not_lock_the_user_out(backend, kstore):
    backend.items[(SERVICE, "p/tokens")] = "assetctl-chunks:garbage"

    assert kstore.get("p/tokens") is None
    kstore.set("p/tokens", "fresh login")
    assert kstore.get("p/tokens") == "fresh login"
    assert kstore.delete("p/tokens") is True


def test_a_hanging_keyring_becomes_a_storage_error_within_the_timeout():
    release = threading.Event()
    hanging = KeyringStore(timeout=0.3, backend=HangingKeyring(release))
    try:
        started = time.monotonic()
        with pytest.raises(StorageError) as caught:
            hanging.get("p/tokens")
        assert time.monotonic() - started < 2
        assert caught.value.exit_code == ExitCode.STORAGE
        assert "--token-store file" in (caught.value.hint or "")
    finally:
        release.set()


def test_a_keyring_that_hangs_while_starting_is_a_storage_error(monkeypatch):
    release = threading.Event()

    def slow_get_keyring():
        release.wait(30)
        return LimitedKeyring()

    monkeypatch.setattr("keyring.get_keyring", slow_get_keyring)
    try:
        started = time.monotonic()
        with pytest.raises(StorageError):
            KeyringStore(timeout=0.3).get("p/tokens")
        assert time.monotonic() - started < 2
    finally:
        release.set()


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (NoKeyringError("No recommended backend was available."), "no system keyring"),
        (KeyringLocked("Failed to unlock the collection!"), "locked"),
        (PasswordSetError("Prompt dismissed"), "Prompt dismissed"),
    ],
)
def test_keyring_errors_become_storage_errors_with_the_hint(exc, words):
    broken = KeyringStore(timeout=5, backend=RaisingKeyring(exc))

    for action in (lambda: broken.get("p/tokens"), lambda: broken.set("p/tokens", "x")):
        with pytest.raises(StorageError) as caught:
            action()
        assert words in caught.value.message
        hint = caught.value.hint or ""
        assert "ASSETCTL_TOKEN_STORE=file" in hint and "--client-credentials" in hint


def test_a_prompting_backend_without_a_terminal_is_a_storage_error():
    # keyrings.cryptfile asks for a password and, with no terminal, raises EOFError.
    broken = KeyringStore(timeout=5, backend=RaisingKeyring(EOFError()))

    with pytest.raises(StorageError) as caught:
        broken.get("p/tokens")
    assert caught.value.hint


def test_the_fail_backend_is_refused(keyring_requests):
    with pytest.raises(StorageError, match="no system keyring is available"):
        KeyringStore(timeout=5).get("p/tokens")
    assert keyring_requests == ["get_keyring"]


def test_a_plaintext_keyrings_alt_backend_is_refused(monkeypatch):
    plaintext = PlaintextKeyring()
    monkeypatch.setattr("keyring.get_keyring", lambda: plaintext)

    with pytest.raises(StorageError) as caught:
        KeyringStore(timeout=5).set("p/tokens", "secret-value")

    assert "keyrings.alt.file.PlaintextKeyring" in caught.value.message
    assert "--token-store file" in (caught.value.hint or "")
    assert plaintext.items == {}


def test_a_plaintext_backend_first_in_a_chain_is_refused(monkeypatch):
    class Chainer:
        backends = [PlaintextKeyring(), LimitedKeyring()]

    monkeypatch.setattr("keyring.get_keyring", lambda: Chainer())

    with pytest.raises(StorageError, match="unencrypted"):
        KeyringStore(timeout=5).get("p/tokens")


def test_a_usable_backend_is_described_by_name(monkeypatch):
    usable = LimitedKeyring()
    monkeypatch.setattr("keyring.get_keyring", lambda: usable)
    chosen = KeyringStore(timeout=5)

    chosen.set("p/tokens", "value")

    assert usable.items[(SERVICE, "p/tokens")] == "value"
    assert "LimitedKeyring" in chosen.description


def test_opening_the_store_touches_no_keyring(keyring_requests):
    open_store(Settings())
    assert keyring_requests == []


# -- file store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_file_store_writes_owner_only_files_in_an_owner_only_folder(tmp_path):
    folder = tmp_path / "state" / "tokens"
    folder.mkdir(parents=True, mode=0o755)
    os.chmod(folder, 0o755)  # noqa: S103 - the store must tighten it
    fstore = FileStore(folder)

    fstore.set("p/tokens", "secret")

    assert mode(folder) == 0o700
    files = list(folder.iterdir())
    assert [f.name for f in files] == ["p__tokens.json"]
    assert mode(files[0]) == 0o600
    assert fstore.get("p/tokens") == "secret"


def test_file_store_under_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        FileStore(tmp_path / "tokens").set("p/tokens", "secret")
    finally:
        os.umask(old)
    assert mode(tmp_path / "tokens") == 0o700
    assert mode(tmp_path / "tokens" / "p__tokens.json") == 0o600


def test_file_store_does_not_rewrite_an_unchanged_value(tmp_path, monkeypatch):
    fstore = FileStore(tmp_path / "tokens")
    fstore.set("p/tokens", "secret")
    replaced: list[object] = []
    real_replace = os.replace
    monkeypatch.setattr(
        os, "replace", lambda a, b: (replaced.append(b), real_replace(a, b))
    )

    fstore.set("p/tokens", "secret")
    assert replaced == []
    fstore.set("p/tokens", "changed")
    assert len(replaced) == 1


def test_file_store_writes_atomically(tmp_path, monkeypatch):
    fstore = FileStore(tmp_path / "tokens")
    fstore.set("p/tokens", "old-secret")

    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageError, match="No space left"):
        fstore.set("p/tokens", "new-secret")

    assert fstore.get("p/tokens") == "old-secret"
    # No half-written copy of the secret left behind (logout would not remove it).
    assert [f.name for f in (tmp_path / "tokens").iterdir()] == ["p__tokens.json"]


def test_file_store_delete_and_missing(tmp_path):
    fstore = FileStore(tmp_path / "tokens")
    assert fstore.get("p/tokens") is None
    assert fstore.delete("p/tokens") is False
    fstore.set("p/tokens", "x")
    assert fstore.delete("p/tokens") is True
    assert fstore.get("p/tokens") is None


def test_file_store_keeps_profiles_apart_and_inside_its_folder(tmp_path):
    fstore = FileStore(tmp_path / "tokens")
    fstore.set("../../escape/tokens", "a")
    fstore.set("p/tokens", "b")

    assert fstore.get("../../escape/tokens") == "a"
    assert fstore.get("p/tokens") == "b"
    assert all(p.parent == tmp_path / "tokens" for p in (tmp_path / "tokens").iterdir())
    assert not (tmp_path / "escape").exists()


def test_the_file_store_is_the_users_state_folder_and_says_it_is_unencrypted(
    isolated_home,
):
    chosen = open_store(Settings(token_store="file"))
    assert isinstance(chosen, FileStore)
    assert chosen.folder == isolated_home / ".local" / "state" / "assetctl" / "tokens"
    assert "unencrypted" in chosen.description


def test_call_with_timeout_passes_results_through_and_keeps_interrupts():
    assert store_module.call_with_timeout(lambda: 42, 1, "x") == 42

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store_module.call_with_timeout(interrupted, 1, "x")


def test_a_reader_racing_a_writer_never_sees_a_torn_value(backend, kstore):
    """A writer that does not take the keyring lock (no lock folder, an older build)
    rewrites the value between our manifest read and piece reads."""
    kstore.set("p/tokens", "a" * 4500)
    real_get = backend.get_password
    swapped = []

    def racing_get(service, name):
        value = real_get(service, name)
        if name == "p/tokens" and not swapped:
            swapped.append(True)
            writer = KeyringStore(timeout=5, backend=backend)
            writer._set_unlocked("p/tokens", "b" * 4500)  # the writer wins the race
        return value

    backend.get_password = racing_get
    assert kstore.get("p/tokens") == "b" * 4500


def test_a_piece_vanishing_mid_read_is_read_again(backend, kstore):
    """Secret Service raises, rather than returning None, for an item deleted between
    its search and its read; another process's rewrite does exactly that."""
    from keyring.errors import KeyringError

    kstore.set("p/tokens", "a" * 4500)
    real_get = backend.get_password
    failures = []

    def flaky_get(service, name):
        if "#" in name and not failures:
            failures.append(name)
            raise KeyringError("Item does not exist!")
        return real_get(service, name)

    backend.get_password = flaky_get
    assert kstore.get("p/tokens") == "a" * 4500
    assert failures


def test_keyring_calls_of_two_stores_never_overlap(backend):
    """Two stores stand for two processes: the second waits for the first's call
    (gnome-keyring aborts under bursts of concurrent sessions)."""
    import threading
    import time as _time

    first, second = (
        KeyringStore(timeout=5, backend=backend),
        KeyringStore(timeout=5, backend=backend),
    )
    first.set("p/tokens", "v")
    inside = threading.Event()
    overlap = []
    real_get = backend.get_password

    def slow_get(service, name):
        if inside.is_set():
            overlap.append(name)
        inside.set()
        _time.sleep(0.2)
        inside.clear()
        return real_get(service, name)

    backend.get_password = slow_get
    threads = [
        threading.Thread(target=store.get, args=("p/tokens",))
        for store in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlap == []


# -- entries that cannot be read, and errors that quote what was stored


class BytesKeyring(LimitedKeyring):
    """Breaks keyring's promise of str: gives back bytes, or anything at all."""

    def __init__(self, garbage: object | None = None) -> None:
        super().__init__()
        self.garbage = garbage

    def get_password(self, service: str, username: str) -> str | None:
        value = super().get_password(service, username)
        if value is None:
            return None
        if self.garbage is not None and username == "p/tokens":
            return self.garbage  # type: ignore[return-value]
        return value.encode("utf-8")  # type: ignore[return-value]


@pytest.mark.parametrize("size", [100, 4500])
def test_a_backend_giving_utf8_bytes_is_read_as_text(size):
    backend = BytesKeyring()
    kstore = KeyringStore(timeout=5, backend=backend)
    kstore.set("p/tokens", "v" * size)

    assert kstore.get("p/tokens") == "v" * size
    kstore.set("p/tokens", "w" * size)
    assert kstore.get("p/tokens") == "w" * size
    assert kstore.delete("p/tokens") is True
    assert backend.names() == set()  # no piece left behind


@pytest.mark.parametrize("garbage", [b"\xff\xfe", 42, ["a list"]])
def test_a_backend_giving_what_is_not_text_reads_as_absent_once(garbage, caplog):
    backend = BytesKeyring(garbage)
    kstore = KeyringStore(timeout=5, backend=backend)
    kstore.set("p/tokens", "old login")

    assert kstore.get("p/tokens") is None
    assert kstore.get("p/tokens") is None
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "p/tokens" in caplog.records[0].getMessage()

    kstore.set("p/tokens", "new login")  # a new login overwrites it
    assert backend.items[(SERVICE, "p/tokens")] == "new login"
    assert kstore.delete("p/tokens") is True
    assert backend.names() == set()


def test_a_credentials_entry_of_bytes_that_are_not_utf8_is_not_logged_in():
    kstore = KeyringStore(timeout=5, backend=BytesKeyring(b"\xff"))
    credentials = Credentials(kstore, "p")
    credentials.save_tokens(big_token_set())

    assert credentials.load_tokens() is None


def test_a_manifest_naming_absurdly_many_pieces_reads_as_absent(backend, kstore):
    backend.items[(SERVICE, "p/tokens")] = "assetctl-chunks:99999999999:deadbeef"

    started = time.monotonic()
    assert kstore.get("p/tokens") is None
    assert time.monotonic() - started < 2
    kstore.set("p/tokens", "fresh login")
    assert kstore.get("p/tokens") == "fresh login"


class EchoingKeyring(LimitedKeyring):
    """A backend whose error quotes the value it was given, whole or in part."""

    def __init__(self, quote) -> None:
        super().__init__()
        self.quote = quote

    def set_password(self, service: str, username: str, password: str) -> None:
        raise PasswordSetError(f"cannot store {self.quote(password)}\nsecond line")


def stretches(value: str, run: int = 12) -> set[str]:
    return {value[i : i + run] for i in range(len(value) - run + 1)}


@pytest.mark.parametrize(
    "quote",
    [
        lambda password: password,
        lambda password: repr(password),
        lambda password: password[:300],
        lambda password: password[-40:],
        lambda password: f"{password[100:140]}...",
    ],
)
def test_no_piece_of_a_stored_value_reaches_an_error_message(quote):
    from assetctl.logs import scrub

    tokens = big_token_set().with_updates(
        # Opaque tokens: no JWT pattern would spot them.
        access_token=secrets.token_urlsafe(1900),
        refresh_token=secrets.token_urlsafe(1100),
    )
    credentials = Credentials(
        KeyringStore(timeout=5, backend=EchoingKeyring(quote)), "p"
    )

    with pytest.raises(StorageError) as caught:
        credentials.save_tokens(tokens)

    message = str(caught.value)
    assert "cannot store" in message and "second line" not in message
    for shown in (message, scrub(message)):
        assert not stretches(tokens.to_json()) & stretches(shown)
