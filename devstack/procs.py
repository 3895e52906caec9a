"""Background processes of the stack: start in their own process group, stop the group.

Stopping works from the PID alone, so `python -m devstack down` can stop what an earlier
`up` started.
"""

import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path

STOP_GRACE = 30.0
PR_SET_PDEATHSIG = 1


def spawn(
    argv: list[str],
    env: dict[str, str],
    log_path: Path,
    cwd: Path,
    *,
    die_with_parent: bool = False,
) -> subprocess.Popen:
    """Start argv in a new session (own process group), output written to log_path.

    die_with_parent: SIGTERM the child when this process dies (a test session killed
    hard), so no server is left eating the 2 cores. Never for `up`, which exits at once.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=terminate_with_parent if die_with_parent else None,
        )


def terminate_with_parent() -> None:
    """A preexec_fn: the child gets SIGTERM when its parent dies."""
    # Linux prctl(PR_SET_PDEATHSIG, SIGTERM); it survives exec, so kc.sh's `exec java`
    # keeps it. Elsewhere this is a no-op.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def group_alive(pgid: int) -> bool:
    """True while any process of the group exists (zombies included)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(
    pgid: int, grace: float = STOP_GRACE, proc: subprocess.Popen | None = None
) -> None:
    """SIGTERM the group, SIGKILL it after `grace` s; reap proc if it is our child."""
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _still_there(pgid, proc):
        time.sleep(0.2)
    if _still_there(pgid, proc):
        _signal_group(pgid, signal.SIGKILL)
    if proc is not None:
        proc.wait(timeout=10)


def cmdline(pid: int) -> str:
    """The command line of pid, or "" if there is no such process (Linux /proc)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def log_tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _still_there(pgid: int, proc: subprocess.Popen | None) -> bool:
    if proc is not None:
        proc.poll()  # reap the leader so a zombie does not count as alive
    return group_alive(pgid)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
