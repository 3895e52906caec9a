"""The auth layer end to end: the installed CLI against the real Keycloak of the local
stack, tokens in a real Secret Service (gnome-keyring in a private D-Bus session)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import keyring
import pytest
import requests

from .terminal import login_in_terminal, run, spawn_in_terminal

pytestmark = pytest.mark.e2e


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def stored_tokens(env: dict) -> dict:
    """Read the token set straight from the Secret Service, as another program could."""
    import os

    saved = dict(os.environ)
    os.environ.update(
        {k: v for k, v in env.items() if k.startswith(("DBUS", "XDG", "HOME"))}
    )
    try:
        from assetctl.auth.store import KeyringStore

        profile = env["ASSETCTL_PROFILE"]
        text = KeyringStore(timeout=10, backend=keyring.get_keyring()).get(
            f"{profile}/tokens"
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert text is not None, "no token set in the keyring"
    return json.loads(text)


def test_login_stores_tokens_in_the_secret_service_and_token_prints_them(
    cli_env, approve, keycloak
):
    code, out = login_in_terminal(cli_env, approve)
    assert code == 0, out
    assert "Logged in as demo" in out

    stored = stored_tokens(cli_env)
    assert stored["issuer"] == keycloak.issuer
    assert stored["refresh_token"]

    result = run(["token"], cli_env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n"  # the token and nothing else
    assert token == stored["access_token"]
    assert claims(token)["preferred_username"] == "demo"
    assert "asset-api" in claims(token)["aud"]


def test_token_verify_checks_signature_issuer_and_audience(cli_env, approve):
    code, out = login_in_terminal(cli_env, approve)
    assert code == 0, out

    ok = run(["token", "--verify", "--audience", "asset-api"], cli_env)
    assert ok.returncode == 0, ok.stderr
    assert "verified" in ok.stderr

    wrong = run(["token", "--verify", "--audience", "someone-else"], cli_env)
    assert wrong.returncode == 4
    assert "audience" in wrong.stderr.lower()

    decoded = run(["token", "--decode"], cli_env)
    assert json.loads(decoded.stdout)["preferred_username"] == "demo"


def test_denied_consent_ends_login_with_its_own_exit_code(cli_env, approve):
    code, out = login_in_terminal(cli_env, approve, accept=False)
    assert code == 5, out
    assert "denied" in out
    assert "Traceback" not in out


def test_expired_access_token_is_refreshed_on_next_command(cli_env, approve, keycloak):
    env = {**cli_env, "ASSETCTL_CLIENT_ID": "assetctl-cli-short"}
    code, out = login_in_terminal(env, approve)
    assert code == 0, out
    first = run(["token"], env).stdout.strip()
    before = len(keycloak.events("REFRESH_TOKEN"))

    time.sleep(11)  # the short client's access tokens live 10 s
    result = run(["token"], env)
    assert result.returncode == 0, result.stderr
    second = result.stdout.strip()

    assert second != first
    assert claims(second)["exp"] > claims(first)["exp"]
    assert len(keycloak.events("REFRESH_TOKEN")) == before + 1
    assert stored_tokens(env)["access_token"] == second


def test_sixteen_processes_share_one_refresh_and_the_session_survives(
    cli_env, approve, keycloak
):
    env = {**cli_env, "ASSETCTL_CLIENT_ID": "assetctl-cli-short"}
    # 20 s tokens here: 16 interpreters starting on 2 busy cores can take over 10 s,
    # and the new token must stay fresh until the last of them has read it.
    keycloak.set_client_attribute("assetctl-cli-short", "access.token.lifespan", "20")
    try:
        code, out = login_in_terminal(env, approve)
        assert code == 0, out
        time.sleep(21)
        before = len(keycloak.events("REFRESH_TOKEN"))

        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(
                pool.map(lambda _: run(["token"], env, timeout=120), range(16))
            )
    finally:
        keycloak.set_client_attribute(
            "assetctl-cli-short", "access.token.lifespan", "10"
        )

    assert [r.returncode for r in results] == [0] * 16, [
        r.stderr for r in results if r.returncode
    ]
    tokens = {r.stdout.strip() for r in results}
    assert len(tokens) == 1
    assert len(keycloak.events("REFRESH_TOKEN")) == before + 1
    assert not keycloak.events("REFRESH_TOKEN_ERROR")

    time.sleep(21)  # the session is still alive: the next refresh works too
    again = run(["token"], env)
    assert again.returncode == 0, again.stderr


def test_revoked_session_fails_fast_with_the_auth_exit_code(cli_env, approve, keycloak):
    env = {**cli_env, "ASSETCTL_CLIENT_ID": "assetctl-cli-short"}
    code, out = login_in_terminal(env, approve)
    assert code == 0, out
    keycloak.logout_user("demo")  # an administrator ends every session of the user
    time.sleep(11)

    # status asks the server once the access token ran out: ended shows as ended.
    status = run(["status"], env)
    assert status.returncode == 4, status.stdout
    assert "session ended" in status.stderr

    started = time.monotonic()
    result = run(["token"], env)
    assert result.returncode == 4
    assert "session ended" in result.stderr
    assert "assetctl login" in result.stderr
    assert result.stderr.count("\n") == 1
    assert time.monotonic() - started < 10


def test_logout_ends_the_server_session_and_removes_tokens(cli_env, approve, keycloak):
    code, out = login_in_terminal(cli_env, approve)
    assert code == 0, out
    refresh_token = stored_tokens(cli_env)["refresh_token"]

    result = run(["logout"], cli_env)
    assert result.returncode == 0, result.stderr
    assert "Logged out" in result.stderr

    answer = refresh_answer(keycloak, refresh_token)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert run(["status"], cli_env).returncode == 4


def test_logout_without_server_still_removes_tokens(cli_env, approve):
    code, out = login_in_terminal(cli_env, approve)
    assert code == 0, out

    # Keycloak out of reach: every request goes through a proxy where nothing listens.
    unreachable = {
        **cli_env,
        "NO_PROXY": "",
        "no_proxy": "",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
    }
    offline = run(["logout"], unreachable)
    assert offline.returncode == 0, offline.stderr
    assert "may live on" in offline.stderr
    assert run(["status"], cli_env).returncode == 4


def refresh_answer(keycloak, refresh_token: str, client_id: str = "assetctl-cli-test"):
    return requests.post(
        f"{keycloak.issuer}/protocol/openid-connect/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
        },
        timeout=10,
    )


def test_logout_ends_the_session_at_the_server_that_issued_it(
    cli_env, approve, keycloak
):
    code, out = login_in_terminal(cli_env, approve)
    assert code == 0, out
    refresh_token = stored_tokens(cli_env)["refresh_token"]

    # The server URL changed since the login: the refresh token must not go there.
    moved = run(["--server-url", "http://127.0.0.1:9", "logout"], cli_env)
    assert moved.returncode == 0, moved.stderr
    assert "Logged out" in moved.stderr
    answer = refresh_answer(keycloak, refresh_token)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_a_second_login_ends_the_session_of_the_first(cli_env, approve, keycloak):
    before = len(keycloak.user_sessions("assetctl-cli-test"))
    code, out = login_in_terminal(cli_env, approve)
    assert code == 0, out
    first = stored_tokens(cli_env)["refresh_token"]
    assert len(keycloak.user_sessions("assetctl-cli-test")) == before + 1

    code, out = login_in_terminal(cli_env, approve)
    assert code == 0, out
    assert stored_tokens(cli_env)["refresh_token"] != first
    assert len(keycloak.user_sessions("assetctl-cli-test")) == before + 1
    assert refresh_answer(keycloak, first).status_code == 400


def test_a_server_url_that_is_not_keycloaks_own_name_works(cli_env, approve, keycloak):
    # Keycloak names itself 127.0.0.1 (--hostname); the user reaches it as localhost,
    # as behind a proxy or an internal DNS name.
    env = {
        **cli_env,
        "ASSETCTL_SERVER_URL": keycloak.base_url.replace("127.0.0.1", "localhost"),
    }
    code, out = login_in_terminal(env, approve)
    assert code == 0, out
    token = run(["token"], env)
    assert token.returncode == 0, token.stderr
    assert claims(token.stdout.strip())["iss"] == keycloak.issuer

    started = run(["login", "--no-wait", "--output", "json"], env)
    assert started.returncode == 0, started.stderr
    approve(json.loads(started.stdout)["verification_uri_complete"])
    finished = run(["login", "--resume", "--once"], env)
    assert finished.returncode == 0, finished.stderr


def test_status_reports_user_roles_expiry_and_storage(cli_env, approve, keycloak):
    assert run(["status"], cli_env).returncode == 4
    assert login_in_terminal(cli_env, approve, args=["--offline"])[0] == 0

    result = run(["status", "--output", "json"], cli_env)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["user"] == "demo"
    assert info["issuer"] == keycloak.issuer
    assert "asset-writer" in info["roles"]
    assert "offline_access" in info["scopes"]
    assert info["refresh_expires_in"] is None  # offline tokens: no fixed expiry
    assert info["access_expires_in"] > 0
    assert "keyring" in info["storage"].lower()
    text = run(["status"], cli_env).stdout
    assert "demo" in text and "Stored in" in text


def test_login_without_terminal_fails_at_once_naming_ci_options(cli_env):
    started = time.monotonic()
    result = run(["login"], cli_env)
    assert time.monotonic() - started < 5  # interpreter start-up included
    assert result.returncode == 4
    assert "ASSETCTL_TOKEN" in result.stderr and "--client-credentials" in result.stderr


def test_service_account_login_with_secret_from_environment(cli_env):
    env = {
        **cli_env,
        "ASSETCTL_CLIENT_ID": "assetctl-ci",
        "ASSETCTL_CLIENT_SECRET": "dev-ci-secret",
    }
    result = run(["login", "--client-credentials"], env)
    assert result.returncode == 0, result.stderr

    info = json.loads(run(["status", "--output", "json"], env).stdout)
    assert info["grant"] == "client_credentials"
    assert "asset-writer" in info["roles"]
    token = run(["token"], env).stdout.strip()
    assert claims(token)["azp"] == "assetctl-ci"

    bad = run(
        ["login", "--client-credentials"], {**env, "ASSETCTL_CLIENT_SECRET": "wrong"}
    )
    assert bad.returncode == 4
    assert "wrong" not in bad.stderr


def test_environment_token_wins_and_status_says_so(cli_env, approve, keycloak):
    code, out = login_in_terminal(cli_env, approve)
    assert code == 0, out
    stored = run(["token"], cli_env).stdout.strip()
    # Another valid token (the CI service account's), so which one wins can show.
    supplied = requests.post(
        keycloak.token_url,
        data={"grant_type": "client_credentials"},
        auth=("assetctl-ci", "dev-ci-secret"),
        timeout=10,
    ).json()["access_token"]
    env = {**cli_env, "ASSETCTL_TOKEN": supplied}

    info = json.loads(run(["status", "--output", "json"], env).stdout)
    assert info["token_source"] == "environment variable ASSETCTL_TOKEN"
    assert info["user"] != "demo"
    assert run(["token"], env).stdout.strip() == supplied != stored


def test_debug_output_of_login_refresh_and_logout_holds_no_secret(
    cli_env, approve, keycloak
):
    env = {**cli_env, "ASSETCTL_CLIENT_ID": "assetctl-cli-short"}
    run_ = spawn_in_terminal(["--debug", "login", "--no-browser"], env)
    uri = run_.wait_for_complete_uri()
    approve(uri)
    code, login_out = run_.finish()
    assert code == 0, login_out
    first = stored_tokens(env)

    time.sleep(11)
    refreshed = run(["--debug", "status"], env)
    token = run(["--debug", "token"], env)
    second = stored_tokens(env)
    logout = run(["--debug", "logout"], env)

    everything = (
        login_out + refreshed.stderr + token.stderr + logout.stdout + logout.stderr
    )
    assert "POST" in everything  # the exchanges were logged
    secrets = [first["access_token"], first["refresh_token"], second["refresh_token"]]
    for secret in secrets:
        for piece in (secret, secret[-40:]):
            assert piece not in everything
    assert (
        token.stdout.strip() == second["access_token"]
    )  # stdout is the one place for it


def test_no_keyring_fails_before_the_device_flow_and_file_store_is_opt_in(cli_env):
    env = {k: v for k, v in cli_env.items() if not k.startswith("DBUS")}
    env["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=/nonexistent"
    result = run(["login", "--no-wait"], env)
    assert result.returncode == 10, result.stderr
    assert "--token-store file" in result.stderr
    assert "user_code" not in result.stdout and "Open" not in result.stdout

    env["ASSETCTL_TOKEN_STORE"] = "file"
    started = run(["login", "--no-wait", "--output", "json"], env)
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["user_code"]


def test_plain_http_to_a_remote_server_is_refused(cli_env):
    env = {**cli_env, "ASSETCTL_SERVER_URL": "http://keycloak.example.com"}
    result = run(["login", "--no-wait"], env)
    assert result.returncode == 3
    assert "http://" in result.stderr and "--allow-http" in result.stderr


def test_pkce_is_used_where_the_server_requires_it(cli_env, approve, keycloak):
    keycloak.set_client_attribute(
        "assetctl-cli-test", "pkce.code.challenge.method", "S256"
    )
    try:
        code, out = login_in_terminal(cli_env, approve)
        assert code == 0, out

        refused = run(["login", "--no-wait", "--no-pkce"], cli_env)
        assert refused.returncode == 4, refused.stderr
        assert "Traceback" not in refused.stderr
    finally:
        keycloak.set_client_attribute(
            "assetctl-cli-test", "pkce.code.challenge.method", ""
        )


def test_service_account_secret_from_a_file(cli_env, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("dev-ci-secret\n")
    env = {**cli_env, "ASSETCTL_CLIENT_ID": "assetctl-ci"}

    result = run(
        ["login", "--client-credentials", "--client-secret-file", str(secret_file)], env
    )
    assert result.returncode == 0, result.stderr
    assert run(["token"], env).returncode == 0

    missing = run(["login", "--client-credentials"], env)
    assert missing.returncode == 3
    assert "ASSETCTL_CLIENT_SECRET" in missing.stderr


def test_old_script_settings_from_a_dotenv_file_still_work(cli_env, tmp_path, keycloak):
    env = {
        k: v
        for k, v in cli_env.items()
        if not k.startswith(("ASSETCTL_SERVER", "ASSETCTL_REALM", "ASSETCTL_CLIENT"))
    }
    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").write_text(
        f"KEYCLOAK_SERVER_URL={keycloak.base_url}\n"
        f"KEYCLOAK_REALM={keycloak.realm}\n"
        "KEYCLOAK_CLIENT_ID=assetctl-cli-test\n"
        "ACCESS_TOKEN=left-behind-by-the-old-script\n"
    )
    import subprocess

    from .terminal import assetctl_command

    result = subprocess.run(
        [*assetctl_command(), "login", "--no-wait", "--output", "json"],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert keycloak.base_url in json.loads(result.stdout)["verification_uri"]


def test_login_warns_when_assetctl_token_would_shadow_it(cli_env, approve):
    code, out = login_in_terminal(
        {**cli_env, "ASSETCTL_TOKEN": "eyJhbGciOiJub25lIn0.e30."}, approve
    )
    assert code == 0, out
    assert "ASSETCTL_TOKEN is set" in out


def test_ctrl_c_ends_the_login_cleanly_with_130(cli_env):
    terminal = spawn_in_terminal(["login", "--no-browser"], cli_env)
    terminal.wait_for_complete_uri()
    time.sleep(1)
    terminal.child.sendintr()
    code, out = terminal.finish(timeout=30)
    assert code == 130, out
    assert "cancelled" in out and "Traceback" not in out


def test_status_reports_the_opt_in_file_store(cli_env, approve):
    env = {**cli_env, "ASSETCTL_TOKEN_STORE": "file"}
    code, out = login_in_terminal(env, approve)
    assert code == 0, out
    info = json.loads(run(["status", "--output", "json"], env).stdout)
    assert info["storage"].startswith("file ") and "opt-in" in info["storage"]
    import os
    import stat
    from pathlib import Path

    folder = Path(env["XDG_STATE_HOME"]) / "assetctl" / "tokens"
    files = list(folder.iterdir())
    assert files and all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)


def test_min_valid_is_honoured_or_refused_clearly(cli_env, approve):
    env = {**cli_env, "ASSETCTL_CLIENT_ID": "assetctl-cli-short"}  # 10 s tokens
    code, out = login_in_terminal(env, approve)
    assert code == 0, out
    first = run(["token"], env).stdout.strip()

    time.sleep(4)
    fresh = run(["token", "--min-valid", "8"], env)  # 6 s left: must refresh first
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.strip() != first
    assert claims(fresh.stdout.strip())["exp"] - time.time() >= 7

    too_long = run(["token", "--min-valid", "60"], env)
    assert too_long.returncode == 4
    assert "--min-valid" in too_long.stderr
