"""The local stack itself: realm, device-code approval, client credentials, the Secret
Service, and the race-safe distribution cache."""

import base64
import hashlib
import os
import secrets
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import jwt
import pytest
import requests

from devstack.approve import ApprovalError, approve_device_code
from devstack.keycloak import KeycloakServer

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TEST_CLIENT = "assetctl-cli-test"


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def start_device_flow(keycloak: KeycloakServer, **extra: str) -> dict:
    response = requests.post(
        f"{keycloak.issuer}/protocol/openid-connect/auth/device",
        data={"client_id": TEST_CLIENT, **extra},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def poll_token(
    keycloak: KeycloakServer, device: dict, **extra: str
) -> requests.Response:
    """Poll like a client would, honouring the interval, until not pending."""
    deadline = time.monotonic() + 30
    while True:
        response = requests.post(
            keycloak.token_url,
            data={
                "grant_type": DEVICE_GRANT,
                "client_id": TEST_CLIENT,
                "device_code": device["device_code"],
                **extra,
            },  # fmt: skip
            timeout=10,
        )
        pending = response.status_code == 400 and response.json()["error"] in {
            "authorization_pending",
            "slow_down",
        }
        if not pending or time.monotonic() > deadline:
            return response
        time.sleep(device["interval"])


def test_discovery_names_the_device_endpoint_and_the_fixed_issuer(keycloak):
    response = requests.get(
        f"{keycloak.issuer}/.well-known/openid-configuration", timeout=10
    )

    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == keycloak.issuer
    assert document["device_authorization_endpoint"] == (
        f"{keycloak.issuer}/protocol/openid-connect/auth/device"
    )
    assert (
        "urn:ietf:params:oauth:grant-type:device_code"
        in document["grant_types_supported"]
    )


def test_approved_device_code_gives_tokens_with_audience_and_writer_role(
    keycloak, approve
):
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    device = start_device_flow(
        keycloak,
        scope="openid offline_access",
        code_challenge=challenge.rstrip(b"=").decode(),
        code_challenge_method="S256",
    )
    assert device["interval"] == 1
    assert device["verification_uri_complete"].startswith(f"{keycloak.issuer}/device")

    approve(device["verification_uri_complete"])
    response = poll_token(keycloak, device, code_verifier=verifier)

    assert response.status_code == 200, response.text
    tokens = response.json()
    access = claims(tokens["access_token"])
    assert "asset-api" in access["aud"]
    assert {"asset-writer", "offline_access"} <= set(access["realm_access"]["roles"])
    assert access["iss"] == keycloak.issuer
    assert access["preferred_username"] == "demo"
    assert claims(tokens["refresh_token"])["typ"] == "Offline"
    assert "id_token" in tokens


def test_reader_gets_the_audience_but_not_the_writer_role(keycloak, approve):
    device = start_device_flow(keycloak)

    approve(device["verification_uri_complete"], "reader", "reader-password")
    response = poll_token(keycloak, device)

    assert response.status_code == 200, response.text
    access = claims(response.json()["access_token"])
    assert "asset-api" in access["aud"]
    assert "asset-writer" not in access["realm_access"]["roles"]


def test_denied_device_code_answers_access_denied(keycloak, approve):
    device = start_device_flow(keycloak)

    approve(device["verification_uri_complete"], accept=False)
    response = poll_token(keycloak, device)

    assert response.status_code == 400
    assert response.json()["error"] == "access_denied"


def test_wrong_password_raises_with_keycloaks_message(keycloak):
    device = start_device_flow(keycloak)

    with pytest.raises(ApprovalError, match="Invalid username or password"):
        approve_device_code(device["verification_uri_complete"], "demo", "wrong")


def test_plain_requests_session_loses_keycloaks_secure_cookies(keycloak):
    # Why approve.py carries cookies by hand (Keycloak 26.7.3, 2026-12). If this starts
    # failing, Keycloak stopped marking cookies Secure on http loopback.
    device = start_device_flow(keycloak)

    with requests.Session() as session:
        page = session.get(device["verification_uri_complete"], timeout=10)

    assert all(cookie.secure for cookie in session.cookies)
    assert 'id="kc-form-login"' not in page.text


def test_refresh_is_counted_in_stored_events(keycloak, approve):
    device = start_device_flow(keycloak)
    approve(device["verification_uri_complete"])
    tokens = poll_token(keycloak, device).json()
    before = len(keycloak.events("REFRESH_TOKEN"))

    refreshed = requests.post(
        keycloak.token_url,
        data={
            "grant_type": "refresh_token",
            "client_id": TEST_CLIENT,
            "refresh_token": tokens["refresh_token"],
        },  # fmt: skip
        timeout=10,
    )
    replayed = requests.post(
        keycloak.token_url,
        data={
            "grant_type": "refresh_token",
            "client_id": TEST_CLIENT,
            "refresh_token": tokens["refresh_token"],
        },  # fmt: skip
        timeout=10,
    )

    assert refreshed.status_code == 200
    assert replayed.status_code == 400  # rotation: a spent refresh token is refused
    assert len(keycloak.events("REFRESH_TOKEN")) == before + 1


def test_client_credentials_for_ci_carry_audience_and_writer_role(keycloak):
    response = requests.post(
        keycloak.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": "assetctl-ci",
            "client_secret": "dev-ci-secret",
        },  # fmt: skip
        timeout=10,
    )

    assert response.status_code == 200, response.text
    access = claims(response.json()["access_token"])
    assert "asset-api" in access["aud"]
    assert "asset-writer" in access["realm_access"]["roles"]
    assert "refresh_token" not in response.json()


def test_asset_api_answers_health(asset_api):
    assert requests.get(f"{asset_api.url}/healthz", timeout=10).status_code == 200


def test_secret_service_stores_and_reads_4kb_through_keyring(secret_service, tmp_path):
    script = (
        "import keyring, sys\n"
        "backend = keyring.get_keyring()\n"
        "value = 'v' * 4096\n"
        "keyring.set_password('assetctl-devstack-test', 'demo', value)\n"
        "assert keyring.get_password('assetctl-devstack-test', 'demo') == value\n"
        "print(type(backend).__module__)\n"
    )
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DBUS_", "PYTHON_KEY"))
    }
    env.update(
        secret_service, HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg")
    )

    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "keyring.backends.SecretService"


def test_cli_env_is_isolated_and_points_at_the_fixtures(cli_env, keycloak, asset_api):
    assert cli_env["ASSETCTL_SERVER_URL"] == keycloak.base_url
    assert cli_env["ASSETCTL_REALM"] == "assetctl"
    assert cli_env["ASSETCTL_CLIENT_ID"] == TEST_CLIENT
    assert cli_env["ASSETCTL_API_URL"] == asset_api.url
    assert not [name for name in cli_env if name.startswith("KEYCLOAK_")]
    assert Path(cli_env["XDG_CONFIG_HOME"]).is_relative_to(cli_env["HOME"])


RACE_SCRIPT = """
import sys
from devstack.keycloak import ensure_distribution
print(ensure_distribution("0.0-test"))
"""


def test_distribution_cache_survives_two_racing_processes(tmp_path):
    cache = tmp_path / "cache"
    archive = cache / "dl" / "keycloak-quarkus-dist-0.0-test.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("keycloak-0.0-test/bin/kc.sh")
        info.external_attr = (stat.S_IFREG | 0o755) << 16
        zf.writestr(info, "#!/bin/sh\n")
    env = dict(os.environ, ASSETCTL_STACK_CACHE=str(cache))
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)

    runs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE_SCRIPT],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=60)[0].strip() for run in runs]

    home = cache / "keycloak-0.0-test"
    assert [run.returncode for run in runs] == [0, 0]
    assert outputs == [str(home), str(home)]
    assert os.access(home / "bin" / "kc.sh", os.X_OK)  # unzip kept the exec bit
    assert (home / ".assetctl-complete").exists()
    assert not [p for p in cache.iterdir() if p.name.startswith(".unpack-")]
