"""`python -m devstack fetch|up|down|status|approve|demo`: the local stack.

`up` leaves Keycloak and the asset API running in the background and records them in
`.stack/` at the repo root; `down` stops them by the recorded PIDs.
"""

import argparse
import json
import logging
import os
import shutil
import sys

from devstack import REPO_ROOT, StackError
from devstack.api_server import AssetApiServer
from devstack.approve import approve_device_code
from devstack.keycloak import REALM, KeycloakServer, ensure_distribution
from devstack.ports import answers_ok, port_in_use
from devstack.procs import cmdline, group_alive, stop_group

STATE_DIR = REPO_ROOT / ".stack"
STATE_FILE = STATE_DIR / "state.json"
DEFAULT_PORTS = {
    "ASSETCTL_STACK_KC_PORT": 18080,
    "ASSETCTL_STACK_KC_MGMT_PORT": 18081,
    "ASSETCTL_STACK_API_PORT": 18090,
}
PASSWORDS = {"demo": "demo-password", "reader": "reader-password"}
CLI_CLIENT_ID = "assetctl-cli"
# A recorded PID is only ours if its command line still says so (PIDs get reused).
MARKERS = {"keycloak": "keycloak", "asset_api": "devstack.asset_api"}


def say(message: str) -> None:
    print(message, file=sys.stderr)


def port_from_env(name: str) -> int:
    raw = os.environ.get(name, str(DEFAULT_PORTS[name]))
    try:
        return int(raw)
    except ValueError:
        raise StackError(f"{name}={raw!r} is not a port number") from None


def read_state() -> dict:
    try:
        return dict(json.loads(STATE_FILE.read_text()))
    except (OSError, ValueError):
        return {}


def write_state(state: dict) -> None:
    STATE_DIR.mkdir(exist_ok=True)
    STATE_FILE.write_text(json.dumps(state, indent=2) + "\n")


def running(state: dict, name: str) -> bool:
    entry = state.get(name)
    if not entry:
        return False
    return group_alive(entry["pid"]) and MARKERS[name] in cmdline(entry["pid"])


def print_usage_env(state: dict) -> None:
    """The URLs on stderr, the env vars on stdout (so `eval "$(... up)"` works)."""
    kc, api = state["keycloak"], state["asset_api"]
    say(f"Keycloak:   {kc['url']}  (admin/admin; issuer {kc['url']}/realms/{REALM})")
    say(f"Asset API:  {api['url']}")
    say("Users: demo/demo-password (writer), reader/reader-password. Logs in .stack/")
    print(f"export ASSETCTL_SERVER_URL={kc['url']}")
    print(f"export ASSETCTL_REALM={REALM}")
    print(f"export ASSETCTL_CLIENT_ID={CLI_CLIENT_ID}")
    print(f"export ASSETCTL_API_URL={api['url']}")


def stack_fetch(args: argparse.Namespace) -> int:
    """Download and unpack the pinned Keycloak into the cache (once)."""
    say(f"Keycloak distribution: {ensure_distribution()}")
    return 0


def stack_up(args: argparse.Namespace) -> int:
    """Start Keycloak and the asset API in the background (idempotent)."""
    state = read_state()
    if running(state, "keycloak") and running(state, "asset_api"):
        say("the stack is already running")
        print_usage_env(state)
        return 0
    api_port = port_from_env("ASSETCTL_STACK_API_PORT")
    if running(state, "keycloak"):
        # Only the API went down: restarting Keycloak too would reset its keys and
        # sessions and end every stored login.
        if port_in_use(api_port):
            raise StackError(f"port {api_port} is in use; free it or set the API port")
        say("Keycloak is running; starting the asset API again")
        start_api(state, f"{state['keycloak']['url']}/realms/{REALM}", api_port)
        say("the stack is up")
        print_usage_env(state)
        return 0
    stop_recorded(state)  # a half-running stack from an interrupted `up`

    kc_port = port_from_env("ASSETCTL_STACK_KC_PORT")
    mgmt_port = port_from_env("ASSETCTL_STACK_KC_MGMT_PORT")
    for name, port in (
        ("ASSETCTL_STACK_KC_PORT", kc_port),
        ("ASSETCTL_STACK_KC_MGMT_PORT", mgmt_port),
        ("ASSETCTL_STACK_API_PORT", api_port),
    ):
        if port_in_use(port):
            raise StackError(f"port {port} is in use; free it or set {name}")

    ensure_distribution()
    say(f"starting Keycloak on {kc_port} (about 35 s on 2 cores)...")
    keycloak = KeycloakServer(kc_port, mgmt_port, STATE_DIR)
    keycloak.launch()
    state = {
        "keycloak": {
            "pid": keycloak.pid,
            "url": keycloak.base_url,
            "management_port": mgmt_port,
            "log": str(keycloak.log_path),
        }
    }
    write_state(state)
    keycloak.wait_ready()
    try:
        start_api(state, keycloak.issuer, api_port)
    except StackError:
        stop_recorded(state)
        raise
    say("the stack is up")
    print_usage_env(state)
    return 0


def start_api(state: dict, issuer: str, port: int) -> None:
    """Start the asset API trusting `issuer`; record it in `state`."""
    api = AssetApiServer(
        port, STATE_DIR / "assets.db", issuer, STATE_DIR / "asset-api.log"
    )
    api.launch()
    state["asset_api"] = {"pid": api.pid, "url": api.url, "db": str(api.db_path),
                          "log": str(api.log_path)}  # fmt: skip
    write_state(state)
    api.wait_ready()


def stop_recorded(state: dict) -> None:
    for name in ("asset_api", "keycloak"):
        if running(state, name):
            say(f"stopping {name} (pid {state[name]['pid']})")
            stop_group(state[name]["pid"])
    shutil.rmtree(STATE_DIR / "keycloak", ignore_errors=True)  # the per-run server copy
    STATE_FILE.unlink(missing_ok=True)


def stack_down(args: argparse.Namespace) -> int:
    """Stop what `up` started (idempotent)."""
    state = read_state()
    if not any(running(state, name) for name in MARKERS):
        say("the stack is not running")
    stop_recorded(state)
    return 0


def stack_status(args: argparse.Namespace) -> int:
    """Say what runs and whether it answers; exit 1 unless all is up."""
    state = read_state()
    checks = {
        "keycloak": lambda e: (
            f"{e['url']}/realms/{REALM}/.well-known/openid-configuration"
        ),
        "asset_api": lambda e: f"{e['url']}/healthz",
    }
    healthy = True
    for name, url_of in checks.items():
        entry = state.get(name)
        if not entry or not running(state, name):
            say(f"{name}: not running")
            healthy = False
            continue
        ok = answers_ok(url_of(entry))
        healthy = healthy and ok
        answer = "answering" if ok else "NOT answering"
        say(f"{name}: pid {entry['pid']}, {entry['url']}, {answer}")
    return 0 if healthy else 1


def stack_approve(args: argparse.Namespace) -> int:
    """Log in on the device page and accept (or deny) the device code."""
    password = args.password or PASSWORDS.get(args.user)
    if password is None:
        raise StackError(f"no known password for {args.user!r}; pass --password")
    approve_device_code(args.uri, args.user, password, accept=not args.deny)
    say("denied" if args.deny else "approved")
    return 0


def stack_demo(args: argparse.Namespace) -> int:
    """Bring the stack up if needed; then log in, create, list and edit."""
    from devstack.demo import run_demo

    state = read_state()
    if not all(running(state, name) for name in MARKERS):
        stack_up(args)
        state = read_state()
    env = {
        "ASSETCTL_SERVER_URL": state["keycloak"]["url"],
        "ASSETCTL_REALM": REALM,
        "ASSETCTL_CLIENT_ID": CLI_CLIENT_ID,
        "ASSETCTL_API_URL": state["asset_api"]["url"],
    }
    return run_demo(env, auto_approve=args.auto_approve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, func in (
        ("fetch", stack_fetch),
        ("up", stack_up),
        ("down", stack_down),
        ("status", stack_status),
    ):
        commands.add_parser(name, help=func.__doc__).set_defaults(func=func)

    approve = commands.add_parser("approve", help=stack_approve.__doc__)
    approve.add_argument("uri", help="verification_uri_complete from the device flow")
    approve.add_argument("--user", default="demo")
    approve.add_argument("--password", help="default: the stack's password for --user")
    approve.add_argument("--deny", action="store_true", help="deny instead of accept")
    approve.set_defaults(func=stack_approve)

    demo = commands.add_parser("demo", help=stack_demo.__doc__)
    demo.add_argument(
        "--auto-approve",
        action="store_true",
        help="approve the device code as demo/demo-password "
        "(default without a terminal)",
    )
    demo.set_defaults(func=stack_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return int(args.func(args))
    except StackError as exc:
        say(f"devstack: error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
