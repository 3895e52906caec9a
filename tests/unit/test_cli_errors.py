"""The CLI's failure paths through `assetctl.cli.app.main`: documented exit codes, one
`assetctl: error:` line on stderr, nothing on stdout, no traceback, and no keyring or
network touched where none is needed."""

from __future__ import annotations

import io
import sys
import time

import pytest

from assetctl.cli.app import main
from assetctl.errors import ExitCode

SERVER = {"ASSETCTL_SERVER_URL": "https://kc.example.test", "ASSETCTL_REALM": "demo"}


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def run(capsys, monkeypatch, rsps):
    """main(argv) with no terminal on stdin and no reachable network (`responses`
    refuses every request); returns (code, stdout, stderr, seconds)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))

    def run_main(*argv: str, env: dict[str, str] | None = None):
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        started = time.monotonic()
        code = main(list(argv))
        elapsed = time.monotonic() - started
        out, err = capsys.readouterr()
        return code, out, err, elapsed

    return run_main


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("assetctl: error: ")
    return lines[0]


def test_missing_settings_exit_3(run, keyring_requests):
    code, out, err, _ = run("token")

    assert code == ExitCode.BAD_INPUT == 3
    line = one_error_line(err)
    assert "no Keycloak server URL" in line and "ASSETCTL_SERVER_URL" in line
    assert out == ""
    assert keyring_requests == []


def test_not_logged_in_exit_4(run, keyring_requests):
    code, out, err, _ = run("token", env={**SERVER, "ASSETCTL_TOKEN_STORE": "file"})

    assert code == ExitCode.AUTH == 4
    line = one_error_line(err)
    assert "not logged in" in line and "run `assetctl login`" in line
    assert out == ""
    assert keyring_requests == []


def test_status_when_not_logged_in_exit_4(run):
    code, out, err, _ = run("status", env={**SERVER, "ASSETCTL_TOKEN_STORE": "file"})

    assert code == 4
    one_error_line(err)
    assert out == ""


def test_no_keyring_exit_10_with_the_choices(run):
    code, out, err, _ = run("token", env=SERVER)

    assert code == ExitCode.STORAGE == 10
    line = one_error_line(err)
    assert "--token-store file" in line and "ASSETCTL_TOKEN" in line
    assert out == ""


def test_unknown_flag_exit_2(run):
    code, out, err, _ = run("--no-such-flag", "token")

    assert code == ExitCode.USAGE == 2
    assert "--no-such-flag" in err
    assert "Traceback" not in err
    assert out == ""


def test_unknown_flag_is_one_error_line(run):
    _, _, err, _ = run("--no-such-flag", "token")
    assert "--no-such-flag" in one_error_line(err)


def test_login_without_a_terminal_fails_at_once_naming_the_ci_options(
    run, keyring_requests
):
    code, out, err, elapsed = run("login", env=SERVER)

    assert elapsed < 1
    assert code == ExitCode.AUTH == 4
    line = one_error_line(err)
    assert "terminal" in line
    for option in ("ASSETCTL_TOKEN", "--client-credentials", "--no-wait", "--resume"):
        assert option in line
    assert out == ""
    assert keyring_requests == []


def test_login_with_no_input_fails_even_at_a_terminal(run, monkeypatch):
    monkeypatch.setattr(sys, "stdin", Tty(""))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)

    code, _, err, elapsed = run("--no-input", "login", env=SERVER)

    assert elapsed < 1
    assert code == 4
    assert "--client-credentials" in one_error_line(err)


def test_login_once_without_resume_exit_2(run, keyring_requests):
    code, out, err, _ = run("login", "--once", env=SERVER)

    assert code == ExitCode.USAGE == 2
    assert "--resume" in err
    assert "Traceback" not in err
    assert out == ""
    assert keyring_requests == []


def test_login_once_without_resume_is_one_error_line(run):
    _, _, err, _ = run("login", "--once", env=SERVER)
    assert "--resume" in one_error_line(err)


def test_a_secret_in_an_error_never_reaches_the_terminal(run):
    token = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2lnbmF0dXJlLXZhbHVl"  # exp in 1970

    code, out, err, _ = run("token", env={**SERVER, "ASSETCTL_TOKEN": token})

    assert code == 4
    assert "ASSETCTL_TOKEN" in one_error_line(err)
    assert token not in err and token not in out


def test_bare_command_shows_help_and_exit_2(run):
    code, out, err, _ = run()
    assert code == ExitCode.USAGE
    assert "Commands:" in err and "assetctl: error" not in err
    assert out == ""


def test_an_unknown_output_format_is_a_usage_error(run):
    code, _, err, _ = run("status", "--output", "xml")
    assert code == ExitCode.USAGE
    assert "xml" in one_error_line(err)


def test_decoding_a_token_that_is_no_jwt_fails(run):
    code, out, err, _ = run(
        "token", "--decode", env={**SERVER, "ASSETCTL_TOKEN": "garbage"}
    )
    assert code == ExitCode.AUTH
    assert "not a readable JWT" in one_error_line(err)
    assert out == ""


def test_status_with_an_unusable_environment_token_exits_4(run):
    expired = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2lnbmF0dXJlLXZhbHVl"
    for token in ("garbage", expired):
        code, _, err, _ = run("status", env={**SERVER, "ASSETCTL_TOKEN": token})
        assert code == ExitCode.AUTH, err
        assert "ASSETCTL_TOKEN" in one_error_line(err)


def test_no_input_says_it_is_the_reason(run, monkeypatch):
    monkeypatch.setattr(sys, "stdin", Tty(""))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    _, _, err, _ = run("--no-input", "login", env=SERVER)
    assert "--no-input" in one_error_line(err)


@pytest.mark.parametrize(
    "argv",
    [("--version",), ("--help",), ("asset", "types"), ("login", "--help")],
)
def test_commands_that_need_no_token_never_touch_the_keyring(
    run, keyring_requests, argv
):
    code, _, err, _ = run(*argv, env=SERVER)
    assert code == 0, err
    assert keyring_requests == []


@pytest.mark.parametrize(
    "argv",
    [("token",), ("token", "--decode"), ("status",), ("--version",), ("--help",)],
)
def test_a_reader_that_leaves_early_is_not_an_error(argv, tmp_path):
    import os
    import subprocess

    import jwt

    token = jwt.encode({"exp": int(time.time()) + 600, "iss": "x"}, "k" * 32)
    env = {**os.environ, **SERVER, "ASSETCTL_TOKEN": token, "HOME": str(tmp_path)}
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head -1` that has already gone
    try:
        result = subprocess.run(
            [sys.executable, "-m", "assetctl", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            timeout=30,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize(
    "argv",
    [
        ("login", "--resume", "--timeout", "-5"),
        ("login", "--resume", "--timeout", "nan"),
        ("token", "--min-valid", "nan"),
        ("token", "--min-valid", "-1"),
        ("login", "--client-credentials", "--offline"),
    ],
)
def test_numbers_and_flag_pairs_that_mean_nothing_are_usage_errors(run, argv):
    code, out, err, _ = run(*argv, env={**SERVER, "ASSETCTL_TOKEN_STORE": "file"})

    assert code == ExitCode.USAGE, err
    one_error_line(err)
    assert out == ""


def test_no_input_refuses_a_resume_that_would_wait_for_a_person(run):
    env = {**SERVER, "ASSETCTL_TOKEN_STORE": "file"}
    code, _, err, elapsed = run("--no-input", "login", "--resume", env=env)

    assert code == ExitCode.USAGE
    assert "--once or --timeout" in one_error_line(err)
    assert elapsed < 5


def test_a_token_folded_over_lines_is_refused_without_quoting_it(run):
    import jwt

    token = jwt.encode({"sub": "ci", "exp": int(time.time()) + 600}, "k" * 32)
    folded = "\n".join(token[i : i + 20] for i in range(0, len(token), 20))
    code, out, err, _ = run("token", env={**SERVER, "ASSETCTL_TOKEN": folded})

    assert code == ExitCode.AUTH
    assert "ASSETCTL_TOKEN holds characters no access token has" in one_error_line(err)
    assert not any(piece in out + err for piece in folded.split()[1:])


def test_a_token_whose_exp_is_no_number_is_an_auth_error(run):
    import jwt

    token = jwt.encode({"sub": "ci", "exp": "soon"}, "k" * 32)
    code, _, err, _ = run("token", env={**SERVER, "ASSETCTL_TOKEN": token})

    assert code == ExitCode.AUTH
    assert "'exp' claim" in one_error_line(err)


def test_status_as_json_when_not_logged_in_still_answers_on_stdout(run):
    import json

    env = {**SERVER, "ASSETCTL_TOKEN_STORE": "file"}
    code, out, err, _ = run("status", "--output", "json", env=env)

    assert code == ExitCode.AUTH
    answer = json.loads(out)
    assert answer["logged_in"] is False and answer["profile"] == "default"
    assert "not logged in" in answer["error"]
    one_error_line(err)
