"""Free-port picking and HTTP readiness checks for the stack's servers."""

import socket
import time
from collections.abc import Callable

import requests


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    """True if something accepts connections on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def answers_ok(url: str, timeout: float = 2.0) -> bool:
    """True if GET url answers 200 right now."""
    try:
        return requests.get(url, timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def wait_until_ok(
    url: str, budget: float, still_running: Callable[[], bool], interval: float = 0.5
) -> bool:
    """Poll url until it answers 200 (True), the budget runs out or the process died."""
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        if answers_ok(url):
            return True
        if not still_running():
            return False
        time.sleep(interval)
    return False
