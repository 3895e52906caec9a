"""Non-blocking device login (`login --no-wait`, then `login --resume`) on the real
Keycloak: for bots, agents and remote shells that cannot wait on a terminal."""

from __future__ import annotations

import json
import time

import pytest

from .terminal import run

pytestmark = pytest.mark.e2e


def start(env: dict, *extra: str) -> dict:
    result = run(["login", "--no-wait", "--output", "json", *extra], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_no_wait_returns_at_once_and_resume_finishes(cli_env, approve):
    started = time.monotonic()
    info = start(cli_env)
    assert time.monotonic() - started < 15
    assert set(info) >= {
        "verification_uri",
        "user_code",
        "verification_uri_complete",
        "expires_in",
        "expires_at",
    }
    assert info["expires_in"] > 0

    approve(info["verification_uri_complete"])
    finished = run(["login", "--resume"], cli_env, timeout=60)
    assert finished.returncode == 0, finished.stderr
    assert "Logged in as demo" in finished.stderr
    assert run(["token"], cli_env).returncode == 0

    again = run(["login", "--resume", "--once"], cli_env)  # the pending login is gone
    assert again.returncode == 12


def test_no_wait_text_output_names_the_code_and_next_step(cli_env):
    result = run(["login", "--no-wait"], cli_env)
    assert result.returncode == 0, result.stderr
    assert "enter the code" in result.stdout
    assert "assetctl login --resume" in result.stdout


def test_once_exit_codes_pending_then_approved(cli_env, approve):
    info = start(cli_env)
    pending = run(["login", "--resume", "--once"], cli_env)
    assert pending.returncode == 11, pending.stderr
    assert info["user_code"] in pending.stderr

    approve(info["verification_uri_complete"])
    done = run(["login", "--resume", "--once"], cli_env)
    assert done.returncode == 0, done.stderr


def test_once_denied(cli_env, approve):
    info = start(cli_env)
    approve(info["verification_uri_complete"], accept=False)
    denied = run(["login", "--resume", "--once"], cli_env)
    assert denied.returncode == 5, denied.stderr
    assert run(["login", "--resume", "--once"], cli_env).returncode == 12  # removed


def test_once_expired(cli_env):
    env = {**cli_env, "ASSETCTL_CLIENT_ID": "assetctl-cli-expiring"}  # codes live 10 s
    start(env)
    time.sleep(11)
    expired = run(["login", "--resume", "--once"], env)
    assert expired.returncode == 6, expired.stderr


def test_resume_timeout_reports_pending(cli_env):
    start(cli_env)
    started = time.monotonic()
    result = run(["login", "--resume", "--timeout", "3"], cli_env)
    assert result.returncode == 11
    assert time.monotonic() - started < 15


def test_quick_repeated_polls_never_earn_slow_down(cli_env, keycloak):
    env = {
        **cli_env,
        "ASSETCTL_CLIENT_ID": "assetctl-cli",
    }  # the server's interval is 5 s
    start(env)
    codes = [
        run(["login", "--resume", "--once"], env, timeout=60).returncode
        for _ in range(3)
    ]
    assert codes == [11, 11, 11]
    # every poll respected the interval: no slow_down error reached Keycloak's events
    errors = [
        e
        for e in keycloak.events("OAUTH2_DEVICE_CODE_TO_TOKEN_ERROR")
        if e.get("error") == "slow_down"
    ]
    assert errors == []


def test_two_profiles_pending_at_once_do_not_mix(cli_env, approve):
    first = start(
        cli_env,
    )
    second_env = {**cli_env, "ASSETCTL_PROFILE": "second"}
    second = start(second_env)
    assert first["user_code"] != second["user_code"]

    approve(
        second["verification_uri_complete"],
        username="reader",
        password="reader-password",
    )
    assert run(["login", "--resume", "--once"], second_env).returncode == 0
    assert run(["login", "--resume", "--once"], cli_env).returncode == 11

    approve(first["verification_uri_complete"])
    assert run(["login", "--resume", "--once"], cli_env).returncode == 0
    users = {
        json.loads(run(["status", "--output", "json"], env).stdout)["user"]
        for env in (cli_env, second_env)
    }
    assert users == {"demo", "reader"}


def test_new_no_wait_replaces_the_pending_login(cli_env, approve):
    old = start(cli_env)
    new = start(cli_env)
    approve(old["verification_uri_complete"])
    # the old code was approved, but only the new one is pending: still waiting
    assert run(["login", "--resume", "--once"], cli_env).returncode == 11
    approve(new["verification_uri_complete"])
    assert run(["login", "--resume", "--once"], cli_env).returncode == 0
