"""Run the installed `assetctl` as a person would: in a terminal (a pseudo-terminal), or
as a script would: with pipes and no terminal."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

import pexpect

COMPLETE_URI = re.compile(r"https?://[^\s\"']+/device\?user_code=[A-Za-z0-9-]+")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def assetctl_command() -> list[str]:
    exe = shutil.which("assetctl")
    return [exe] if exe else [sys.executable, "-m", "assetctl"]


def run(
    args: list[str], env: dict[str, str], timeout: float = 60, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Without a terminal: stdin, stdout and stderr are pipes."""
    return subprocess.run(
        [*assetctl_command(), *args],
        env=env,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class TerminalRun:
    child: pexpect.spawn
    transcript: list[str]

    def wait_for_complete_uri(self, timeout: float = 60) -> str:
        self.child.expect(COMPLETE_URI, timeout=timeout)
        self.transcript.append(self.child.before + self.child.after)
        return self.child.after

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        self.child.expect(pexpect.EOF, timeout=timeout)
        self.transcript.append(self.child.before)
        self.child.close()
        return (
            self.child.exitstatus if self.child.exitstatus is not None else -1,
            self.text(),
        )

    def text(self) -> str:
        return ANSI.sub("", "".join(self.transcript))


def spawn_in_terminal(args: list[str], env: dict[str, str]) -> TerminalRun:
    command = assetctl_command()
    child = pexpect.spawn(
        command[0],
        [*command[1:], *args],
        env=env,
        encoding="utf-8",
        dimensions=(50, 200),
    )
    return TerminalRun(child=child, transcript=[])


def login_in_terminal(
    env: dict[str, str],
    approve,
    *,
    args: list[str] = (),
    accept: bool = True,
    user: str | None = None,
) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """`assetctl login` in a terminal; the code is approved through Keycloak's pages."""
    run_ = spawn_in_terminal(["login", "--no-browser", *args], env)
    uri = run_.wait_for_complete_uri()
    kwargs = {"accept": accept}
    if user:
        kwargs["username"] = user
        kwargs["password"] = f"{user}-password"
    approve(uri, **kwargs)
    return run_.finish()
