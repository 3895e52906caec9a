"""Session fixtures for end-to-end tests on the real local stack.

`keycloak`, `asset_api`, `secret_service`, `approve` and `cli_env` start real servers
once per session on free ports. A test that uses any of them gets the `e2e` marker. If
something the stack needs is missing, the fixture fails with the reason: never a skip.
"""

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # devstack lives in the checkout, not installed

from devstack.api_server import AssetApiServer  # noqa: E402
from devstack.approve import approve_device_code  # noqa: E402
from devstack.keycloak import KeycloakServer  # noqa: E402
from devstack.ports import free_port  # noqa: E402
from devstack.secret_service import private_secret_service  # noqa: E402

E2E_FIXTURES = {"keycloak", "asset_api", "secret_service", "approve", "cli_env"}
TEST_CLIENT_ID = "assetctl-cli-test"
DEMO_USER = ("demo", "demo-password")
INHERITED_PREFIXES_DROPPED = ("ASSETCTL_", "KEYCLOAK_", "DBUS_", "GNOME_KEYRING")
INHERITED_DROPPED = {
    "PYTHON_KEYRING_BACKEND",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "BROWSER",
    "XDG_RUNTIME_DIR",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeycloakServer]:
    """Keycloak with the assetctl realm: .base_url, .realm, .issuer, .admin_token(),
    .events(type), .logout_user(name), .set_client_attribute(client, name, value)."""
    run_dir = tmp_path_factory.mktemp("keycloak")
    server = KeycloakServer(free_port(), free_port(), run_dir, die_with_parent=True)
    with server:
        yield server


@pytest.fixture(scope="session")
def asset_api(
    keycloak: KeycloakServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AssetApiServer]:
    """The reference asset API trusting the keycloak fixture: .url, .db_path."""
    folder = tmp_path_factory.mktemp("asset-api")
    server = AssetApiServer(
        free_port(),
        folder / "assets.db",
        keycloak.issuer,
        folder / "asset-api.log",
        die_with_parent=True,
    )
    with server:
        yield server


@pytest.fixture(scope="session")
def secret_service() -> Iterator[dict[str, str]]:
    """Env vars (DBUS_SESSION_BUS_ADDRESS, XDG_RUNTIME_DIR) of a private, unlocked
    Secret Service."""
    with private_secret_service() as env:
        yield env


@pytest.fixture(scope="session")
def approve(keycloak: KeycloakServer) -> Callable[..., None]:
    """approve(uri, username="demo", password="demo-password", *, accept=True)."""

    def approve_as(
        verification_uri_complete: str,
        username: str = DEMO_USER[0],
        password: str = DEMO_USER[1],
        *,
        accept: bool = True,
    ) -> None:
        approve_device_code(
            verification_uri_complete, username, password, accept=accept
        )

    return approve_as


@pytest.fixture
def cli_env(
    tmp_path: Path,
    keycloak: KeycloakServer,
    asset_api: AssetApiServer,
    secret_service: dict[str, str],
) -> dict[str, str]:
    """A fresh environment for running the installed `assetctl` as a subprocess."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(INHERITED_PREFIXES_DROPPED)
        and name not in INHERITED_DROPPED
    }
    home = tmp_path / "home"
    folders = {
        "HOME": home,
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_STATE_HOME": home / ".local" / "state",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_DATA_HOME": home / ".local" / "share",
    }
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    env.update({name: str(path) for name, path in folders.items()})
    env.update(secret_service)

    # The venv's bin first, so `assetctl` is the installed one; no proxy for loopback.
    env["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), env.get("PATH", "")]
    )
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(
        {
            "ASSETCTL_SERVER_URL": keycloak.base_url,
            "ASSETCTL_REALM": keycloak.realm,
            "ASSETCTL_CLIENT_ID": TEST_CLIENT_ID,
            "ASSETCTL_API_URL": asset_api.url,
        }
    )
    return env
