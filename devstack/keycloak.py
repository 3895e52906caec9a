"""Keycloak for the stack and the tests: fetch the pinned server, run it with the
assetctl realm imported, stop it, and the few admin calls tests need.

Each server runs from its own copy of the distribution, so parallel servers never share
`data/` or the build files that `start-dev` rewrites.
"""

import logging
import os
import shutil
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
from filelock import FileLock

from devstack import StackError
from devstack.ports import wait_until_ok
from devstack.procs import log_tail, spawn, stop_group

log = logging.getLogger(__name__)

# 26.7.5 carries the device-grant fix the notes ask for (tokens were issued to
# brute-force-locked users). The 26.8 line is not on the Maven Central mirror these
# machines reach (26.8.0-26.8.2 answer 404, checked 2026-12-03); 26.7.5 is the newest
# served release that has the fix.
KEYCLOAK_VERSION = "26.7.5"
MAVEN_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy"

REALM = "assetctl"
REALM_FILE = Path(__file__).resolve().parent / "realm" / "assetctl-realm.json"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"
CI_CLIENT_SECRET_DEFAULT = "dev-ci-secret"

START_BUDGET = 180.0
HEAP = "-Xms64m -Xmx512m"  # 2 cores and a test run beside it: keep Keycloak small
HTTP_TIMEOUT = 10.0


def cache_dir() -> Path:
    """Downloads and servers: $ASSETCTL_STACK_CACHE, else ~/.cache/assetctl-stack."""
    configured = os.environ.get("ASSETCTL_STACK_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "assetctl-stack"


def ensure_distribution(version: str = KEYCLOAK_VERSION) -> Path:
    """The unpacked Keycloak home for version, downloading and unpacking it once.

    Safe when several processes race: a lock file serialises the work and a marker file
    says the unpacked tree is complete.
    """
    cache = cache_dir()
    home = cache / f"keycloak-{version}"
    marker = home / ".assetctl-complete"
    if marker.exists():
        return home

    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / f"keycloak-{version}.lock")):
        if marker.exists():
            return home
        archive = _download(version, cache / "dl")
        _unpack(archive, cache, home)
        marker.touch()
    return home


def _download(version: str, dl_dir: Path) -> Path:
    archive = dl_dir / f"keycloak-quarkus-dist-{version}.zip"
    if archive.exists() and _readable_zip(archive):
        return archive
    if shutil.which("mvn") is None:
        raise StackError(
            "Maven (mvn) is needed to fetch Keycloak; run scripts/bootstrap"
        )

    dl_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dl_dir, prefix=".fetch-") as tmp:
        argv = [
            "mvn", "-B", "-q", MAVEN_PLUGIN,
            f"-Dartifact=org.keycloak:keycloak-quarkus-dist:{version}:zip",
            f"-DoutputDirectory={tmp}",
        ]  # fmt: skip
        log.info("downloading Keycloak %s with Maven", version)
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        fetched = Path(tmp) / archive.name
        if done.returncode != 0 or not fetched.exists():
            raise StackError(
                f"could not download Keycloak {version} with Maven "
                f"(exit {done.returncode}): {(done.stdout + done.stderr)[-2000:]}"
            )
        fetched.replace(archive)  # same folder: atomic, so a present zip is complete
    return archive


def _readable_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except zipfile.BadZipFile:
        return False


def _unpack(archive: Path, cache: Path, home: Path) -> None:
    # unzip keeps the exec bits of bin/*.sh; Python's zipfile drops them.
    if shutil.which("unzip") is None:
        raise StackError("unzip is needed to unpack Keycloak; run scripts/bootstrap")
    if home.exists():
        shutil.rmtree(home)  # a half-unpacked tree from an interrupted run
    with tempfile.TemporaryDirectory(dir=cache, prefix=".unpack-") as tmp:
        subprocess.run(["unzip", "-q", str(archive), "-d", tmp], check=True)
        (Path(tmp) / home.name).rename(home)


def java_version(env: dict[str, str]) -> str:
    """`java -version` as Keycloak's start script would run it, for error messages."""
    java_home = env.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else "java"
    try:
        done = subprocess.run(
            [java, "-version"], capture_output=True, text=True, env=env, check=False
        )
    except OSError as exc:
        return f"{java}: {exc}"
    return (done.stderr or done.stdout).strip()


class KeycloakServer:
    """One Keycloak on 127.0.0.1 with the assetctl realm; a context manager.

    `start()` returns once the realm's discovery document answers. The server runs in
    its own process group and can be left running (`pid`) and stopped later by PID.
    """

    def __init__(
        self,
        port: int,
        management_port: int,
        run_dir: Path,
        *,
        env: dict[str, str] | None = None,
        start_budget: float = START_BUDGET,
        die_with_parent: bool = False,
    ) -> None:
        self.port = port
        self.management_port = management_port
        self.run_dir = run_dir
        self.home = run_dir / "keycloak"
        self.log_path = run_dir / "keycloak.log"
        self.extra_env = env or {}
        self.start_budget = start_budget
        self.die_with_parent = die_with_parent
        self.proc: subprocess.Popen | None = None
        self.started_in: float | None = None
        self._launched_at = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def realm(self) -> str:
        return REALM

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/realms/{REALM}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> "KeycloakServer":
        """Copy the distribution, import the realm, start, and wait for the realm."""
        self.launch()
        self.wait_ready()
        return self

    def launch(self) -> None:
        """Start the server in the background without waiting for it."""
        self._prepare_home(ensure_distribution())
        argv = [
            str(self.home / "bin" / "kc.sh"), "start-dev",
            "--http-host=127.0.0.1", f"--http-port={self.port}",
            f"--hostname={self.base_url}",
            f"--http-management-port={self.management_port}",
            "--health-enabled=true", "--db=dev-mem", "--import-realm",
        ]  # fmt: skip
        self._launched_at = time.monotonic()
        self.proc = spawn(
            argv,
            self._env(),
            self.log_path,
            cwd=self.run_dir,
            die_with_parent=self.die_with_parent,
        )

    def wait_ready(self) -> None:
        """Wait until the realm's discovery document answers; else stop and raise."""
        alive = lambda: self.proc is not None and self.proc.poll() is None  # noqa: E731
        if not wait_until_ok(self.discovery_url, self.start_budget, alive):
            self.stop()
            raise StackError(
                f"Keycloak did not serve {self.discovery_url} within "
                f"{self.start_budget:.0f} s.\n"
                f"java -version:\n{java_version(self._env())}\n"
                f"log tail ({self.log_path}):\n{log_tail(self.log_path)}"
            )
        self.started_in = time.monotonic() - self._launched_at
        log.info("Keycloak ready on %s in %.1f s", self.base_url, self.started_in)

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after 30 s; remove the copied home."""
        if self.proc is not None:
            stop_group(self.proc.pid, proc=self.proc)
            self.proc = None
        shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> "KeycloakServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _prepare_home(self, dist: Path) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.home.exists():
            shutil.rmtree(self.home)
        shutil.copytree(dist, self.home, symlinks=True)
        import_dir = self.home / "data" / "import"
        import_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(REALM_FILE, import_dir / REALM_FILE.name)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("JAVA_OPTS", None)  # it would replace all of kc.sh's defaults
        env.update(
            {
                "KC_BOOTSTRAP_ADMIN_USERNAME": ADMIN_USERNAME,
                "KC_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "JAVA_OPTS_KC_HEAP": HEAP,
            }
        )
        java_home = os.environ.get("ASSETCTL_STACK_JAVA_HOME")
        if java_home:
            env["JAVA_HOME"] = java_home
        env.update(self.extra_env)
        return env

    # Admin calls (admin-cli in the master realm; tokens are fetched per call).

    def admin_token(self) -> str:
        """A fresh admin access token from the master realm."""
        response = requests.post(
            f"{self.base_url}/realms/master/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": ADMIN_USERNAME,
                "password": ADMIN_PASSWORD,
            },
            timeout=HTTP_TIMEOUT,
        )
        _raise_for(response, "admin token")
        return str(response.json()["access_token"])

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call the admin API under /admin/realms/assetctl; raise on an error status."""
        headers = {"Authorization": f"Bearer {self.admin_token()}"}
        response = requests.request(
            method,
            f"{self.base_url}/admin/realms/{REALM}{path}",
            headers=headers,
            timeout=HTTP_TIMEOUT,
            **kwargs,
        )
        _raise_for(response, f"admin {method} {path}")
        return response

    def events(self, event_type: str, client_id: str | None = None) -> list[dict]:
        """Stored user events of one type (e.g. REFRESH_TOKEN), newest first."""
        params = {"type": event_type, "max": "1000"}
        if client_id:
            params["client"] = client_id
        return list(self.admin("GET", "/events", params=params).json())

    def clear_events(self) -> None:
        """Delete all stored user events of the realm."""
        self.admin("DELETE", "/events")

    def client_uuid(self, client_id: str) -> str:
        """Keycloak's internal id of a client."""
        found = self.admin("GET", "/clients", params={"clientId": client_id}).json()
        if not found:
            raise StackError(f"no client {client_id!r} in realm {REALM}")
        return str(found[0]["id"])

    def set_client_attribute(self, client_id: str, name: str, value: str) -> None:
        """Change one client attribute at run time (e.g. a token lifespan)."""
        uuid = self.client_uuid(client_id)
        client = self.admin("GET", f"/clients/{uuid}").json()
        client.setdefault("attributes", {})[name] = value
        self.admin("PUT", f"/clients/{uuid}", json=client)

    def user_id(self, username: str) -> str:
        """Keycloak's internal id of a user."""
        params = {"username": username, "exact": "true"}
        found = self.admin("GET", "/users", params=params).json()
        if not found:
            raise StackError(f"no user {username!r} in realm {REALM}")
        return str(found[0]["id"])

    def logout_user(self, username: str) -> None:
        """End every session of a user, as an administrator would."""
        self.admin("POST", f"/users/{self.user_id(username)}/logout")

    def user_sessions(self, client_id: str) -> list[dict]:
        """Active user sessions of a client."""
        uuid = self.client_uuid(client_id)
        return list(self.admin("GET", f"/clients/{uuid}/user-sessions").json())


def _raise_for(response: requests.Response, what: str) -> None:
    if response.status_code >= 400:
        raise StackError(
            f"{what} failed: HTTP {response.status_code} {response.text[:500]}"
        )
