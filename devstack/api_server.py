"""Start, wait for and stop the reference asset API (`python -m devstack.asset_api`).

The API itself lives in devstack/asset_api/; this module only runs it as a subprocess.
"""

import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from devstack import REPO_ROOT, StackError
from devstack.ports import wait_until_ok
from devstack.procs import log_tail, spawn, stop_group

AUDIENCE = "asset-api"
WRITER_ROLE = "asset-writer"
START_BUDGET = 60.0


class AssetApiServer:
    """The reference asset API on 127.0.0.1 trusting one realm; a context manager."""

    def __init__(
        self,
        port: int,
        db_path: Path,
        issuer: str,
        log_path: Path,
        *,
        start_budget: float = START_BUDGET,
        die_with_parent: bool = False,
    ) -> None:
        self.port = port
        self.db_path = db_path
        self.issuer = issuer
        self.log_path = log_path
        self.start_budget = start_budget
        self.die_with_parent = die_with_parent
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def health_url(self) -> str:
        return f"{self.url}/healthz"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "devstack.asset_api",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--db", str(self.db_path),
            "--issuer", self.issuer,
            "--jwks-url", f"{self.issuer}/protocol/openid-connect/certs",
            "--audience", AUDIENCE,
            "--writer-role", WRITER_ROLE,
        ]  # fmt: skip

    def start(self) -> "AssetApiServer":
        """Start the API and wait until /healthz answers 200."""
        self.launch()
        self.wait_ready()
        return self

    def launch(self) -> None:
        """Start the API in the background without waiting for it."""
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])
        )  # devstack is not installed as a package: run it from the checkout
        self.proc = spawn(
            self.argv(),
            env,
            self.log_path,
            cwd=REPO_ROOT,
            die_with_parent=self.die_with_parent,
        )

    def wait_ready(self) -> None:
        """Wait until /healthz answers 200; on failure stop and raise."""
        alive = lambda: self.proc is not None and self.proc.poll() is None  # noqa: E731
        if not wait_until_ok(self.health_url, self.start_budget, alive):
            self.stop()
            raise StackError(
                f"the asset API did not answer {self.health_url} within "
                f"{self.start_budget:.0f} s; log tail ({self.log_path}):\n"
                f"{log_tail(self.log_path)}"
            )

    def stop(self) -> None:
        """SIGTERM the API's process group, SIGKILL after 30 s."""
        if self.proc is not None:
            stop_group(self.proc.pid, proc=self.proc)
            self.proc = None

    def __enter__(self) -> "AssetApiServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
