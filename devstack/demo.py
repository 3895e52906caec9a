"""`python -m devstack demo`: the main job on the local stack, as a person would run it.

Signs in with the real device flow (a person approves in a browser, or, with
`--auto-approve` or without a terminal, the demo user is approved through Keycloak's
pages), then creates, lists and edits a dataset with the installed `assetctl`. Tokens go
to a private Secret Service under `.stack/`, never to the person's own keyring.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from devstack import REPO_ROOT, StackError
from devstack.approve import approve_device_code
from devstack.secret_service import private_secret_service

COMPLETE_URI = re.compile(r"https?://[^\s\"']+/device\?user_code=[A-Za-z0-9-]+")
EXAMPLES = REPO_ROOT / "examples"


def run_demo(stack_env: dict[str, str], auto_approve: bool) -> int:
    home = Path(tempfile.mkdtemp(prefix="demo-", dir=_state_dir()))
    with private_secret_service() as keyring_env:
        env = {
            **os.environ,
            **stack_env,
            **keyring_env,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_STATE_HOME": str(home / "state"),
        }
        env.pop("ASSETCTL_TOKEN", None)
        env["ASSETCTL_REGISTRY"] = str(REPO_ROOT / "asset-types.yaml")

        _step("assetctl login  (sign in as demo / demo-password)")
        if auto_approve or not sys.stdin.isatty():
            _login_auto(env)
        else:
            _say(
                "approve in your browser; no browser here? Ctrl-C, then rerun "
                "with --auto-approve"
            )
            _cli(["login"], env)

        _step("assetctl status")
        _cli(["status"], env)
        _step(
            f"assetctl asset create --type datasets {_rel(EXAMPLES / 'dataset.json')}"
        )
        created = _cli(
            [
                "asset",
                "create",
                "--type",
                "datasets",
                str(EXAMPLES / "dataset.json"),
                "--output",
                "json",
            ],
            env,
            capture=True,
        )
        asset_id = _created_id(created)
        _step("assetctl asset list --type datasets")
        _cli(["asset", "list", "--type", "datasets"], env)
        _step(
            f"assetctl asset edit --type datasets {asset_id} "
            f"{_rel(EXAMPLES / 'dataset-edit.json')}"
        )
        _cli(
            [
                "asset",
                "edit",
                "--type",
                "datasets",
                asset_id,
                str(EXAMPLES / "dataset-edit.json"),
            ],
            env,
        )
        _step(f"assetctl asset get --type datasets {asset_id}")
        _cli(["asset", "get", "--type", "datasets", asset_id, "--output", "json"], env)
        _step("done: login, create, list and edit worked end to end")
        _say(
            "the stack is still running (`.venv/bin/python -m devstack down` stops "
            "it); the demo's tokens went with its throwaway keyring"
        )
    return 0


def _login_auto(env: dict[str, str]) -> None:
    """Run `assetctl login` in a pseudo-terminal; approve its code as the demo user."""
    import pexpect

    command = _assetctl()
    if not sys.stderr.isatty():
        env = {**env, "TERM": "dumb"}  # no spinner frames in a log file
    child = pexpect.spawn(
        command[0],
        [*command[1:], "login", "--no-browser"],
        env=env,
        encoding="utf-8",
        timeout=120,
        dimensions=(50, 200),
    )
    child.logfile_read = sys.stderr
    child.expect(COMPLETE_URI)
    print(
        "\n[demo] approving the code as demo/demo-password through Keycloak's pages",
        file=sys.stderr,
    )
    approve_device_code(child.after, "demo", "demo-password")
    child.expect(pexpect.EOF)
    child.close()
    if child.exitstatus != 0:
        raise StackError(f"assetctl login exited with {child.exitstatus}")


def _cli(args: list[str], env: dict[str, str], capture: bool = False) -> str:
    result = subprocess.run(
        [*_assetctl(), *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    if result.returncode != 0:
        raise StackError(f"`assetctl {' '.join(args)}` exited with {result.returncode}")
    if capture:
        print(result.stdout, end="")
    return result.stdout or ""


def _created_id(output: str) -> str:
    for line in output.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, list) and item:
            item = item[0]
        if isinstance(item, dict):
            for key in ("id", "asset_id"):
                if item.get(key):
                    return str(item[key])
            if isinstance(item.get("asset"), dict) and item["asset"].get("id"):
                return str(item["asset"]["id"])
    raise StackError(f"could not find the new asset's id in: {output!r}")


def _assetctl() -> list[str]:
    exe = shutil.which("assetctl") or str(Path(sys.executable).with_name("assetctl"))
    return [exe] if Path(exe).exists() else [sys.executable, "-m", "assetctl"]


def _state_dir() -> Path:
    folder = REPO_ROOT / ".stack"
    folder.mkdir(exist_ok=True)
    return folder


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


def _say(text: str) -> None:
    print(f"[demo] {text}", file=sys.stderr, flush=True)


def _step(text: str) -> None:
    print(f"\n[demo] {text}", file=sys.stderr, flush=True)
