"""A private, unlocked Secret Service (D-Bus session bus + gnome-keyring) for tests.

Everything lives in a throwaway folder, so a real user's keyring is never touched. The
caller gets the environment variables a child process needs to reach it.
"""

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack import StackError
from devstack.procs import log_tail, stop_group, terminate_with_parent

KEYRING_PASSWORD = "devstack-keyring"
READY_BUDGET = 20.0
SECRETS_BUS_NAME = "org.freedesktop.secrets"


@contextmanager
def private_secret_service(
    password: str = KEYRING_PASSWORD,
) -> Iterator[dict[str, str]]:
    """Run a session bus and an unlocked gnome-keyring; yield the env to reach them.

    Yields DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR. Both daemons are stopped by PID
    and the folder removed on exit.
    """
    missing = [
        tool
        for tool in ("dbus-daemon", "gnome-keyring-daemon")
        if not shutil.which(tool)
    ]
    if missing:
        raise StackError(f"{', '.join(missing)} not installed; run scripts/bootstrap")

    root = Path(tempfile.mkdtemp(prefix="assetctl-secrets-"))
    procs: list[subprocess.Popen] = []
    try:
        env = _private_env(root)
        bus = _start_bus(root, env)
        procs.append(bus)
        env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={root / 'runtime' / 'bus'}"
        procs.append(_start_keyring(root, env, password))
        yield {
            "DBUS_SESSION_BUS_ADDRESS": env["DBUS_SESSION_BUS_ADDRESS"],
            "XDG_RUNTIME_DIR": env["XDG_RUNTIME_DIR"],
        }
    finally:
        for proc in reversed(procs):
            stop_group(proc.pid, grace=5, proc=proc)
        shutil.rmtree(root, ignore_errors=True)


def _private_env(root: Path) -> dict[str, str]:
    folders = {
        "HOME": root / "home",
        "XDG_DATA_HOME": root / "data",
        "XDG_CONFIG_HOME": root / "config",
        "XDG_CACHE_HOME": root / "cache",
        "XDG_RUNTIME_DIR": root / "runtime",
    }
    for folder in folders.values():
        folder.mkdir(mode=0o700)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DBUS_", "GNOME_KEYRING"))
    }
    env.pop("DISPLAY", None)  # no X11 autolaunch of another bus
    env.update({name: str(path) for name, path in folders.items()})
    return env


def _start_bus(root: Path, env: dict[str, str]) -> subprocess.Popen:
    # Our own child in its own session (not --fork), so we hold its PID for the stop.
    socket = root / "runtime" / "bus"
    log_path = root / "dbus.log"
    with open(log_path, "wb") as log:
        bus = subprocess.Popen(
            [
                "dbus-daemon",
                "--session",
                "--nofork",
                "--nopidfile",
                f"--address=unix:path={socket}",
            ],  # fmt: skip
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=terminate_with_parent,
        )
    if not _wait(lambda: socket.exists(), bus):
        stop_group(bus.pid, grace=2, proc=bus)
        raise StackError(f"private dbus-daemon did not start: {log_tail(log_path)}")
    return bus


def _start_keyring(root: Path, env: dict[str, str], password: str) -> subprocess.Popen:
    # --foreground keeps the daemon our child; --unlock reads the password from stdin
    # (no trailing newline: it would become part of the password).
    log_path = root / "gnome-keyring.log"
    with open(log_path, "wb") as log:
        keyring = subprocess.Popen(
            [
                "gnome-keyring-daemon",
                "--foreground",
                "--unlock",
                "--components=secrets",
            ],
            env=env,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=terminate_with_parent,
        )
    assert keyring.stdin is not None
    keyring.stdin.write(password.encode())
    keyring.stdin.close()
    if not _wait(lambda: _name_has_owner(env, SECRETS_BUS_NAME), keyring):
        stop_group(keyring.pid, grace=2, proc=keyring)
        raise StackError(f"gnome-keyring-daemon did not start: {log_tail(log_path)}")
    return keyring


def _name_has_owner(env: dict[str, str], name: str) -> bool:
    done = subprocess.run(
        [
            "dbus-send",
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            f"string:{name}",
        ],  # fmt: skip
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return "boolean true" in done.stdout


def _wait(ready, proc: subprocess.Popen) -> bool:
    deadline = time.monotonic() + READY_BUDGET
    while time.monotonic() < deadline:
        if ready():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False
