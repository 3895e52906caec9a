"""When and how long to wait before sending a request again.

Exponential backoff with full jitter, `Retry-After` in seconds or as an HTTP date, all
within one time budget. Deciding whether a request may be resent at all is the caller's
job (creates carry an idempotency key); this module only sends and waits.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from assetctl.errors import NetworkError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
_RETRY_AFTER = Retry()  # only its Retry-After parser (seconds and HTTP-date) is used


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts, backoff base and cap, and the total budget, all in seconds."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    budget: float = 120.0

    def backoff(self, attempt: int) -> float:
        """Full jitter: anywhere between zero and the exponential ceiling."""
        return random.uniform(0, min(self.cap, self.base * 2**attempt))  # noqa: S311


NO_RETRY = RetryPolicy(attempts=1)


class RetriesExhausted(Exception):
    """The last connection error after every attempt; the caller decides its meaning."""

    def __init__(self, cause: requests.RequestException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, _RETRY_AFTER.parse_retry_after(value))
    except InvalidHeader:
        return None


def send_with_retry(
    send: Callable[[], requests.Response],
    policy: RetryPolicy,
    *,
    on_lost: Callable[[], requests.Response | None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> requests.Response:
    """Send, and again after a connection error or a retryable status.

    `on_lost` is asked after a connection error before the request is resent: it may
    find that the first attempt did reach the server and return that answer instead.
    """
    deadline = clock() + policy.budget
    for attempt in range(policy.attempts):
        last = attempt == policy.attempts - 1
        try:
            response = send()
        except (requests.ConnectionError, requests.Timeout) as exc:
            if last or not _wait(policy.backoff(attempt), deadline, clock, sleep):
                raise RetriesExhausted(exc) from exc
            log.info("connection failed (%s), trying again", type(exc).__name__)
            found = on_lost() if on_lost else None
            if found is not None:
                return found
            continue
        if response.status_code not in RETRY_STATUSES or last:
            return response
        delay = retry_after(response)
        delay = policy.backoff(attempt) if delay is None else delay
        if not _wait(delay, deadline, clock, sleep):
            return response
        log.info("HTTP %s, trying again in %.1f s", response.status_code, delay)
        response.close()
    raise AssertionError("unreachable")  # pragma: no cover


def _wait(delay: float, deadline: float, clock: Callable[[], float], sleep) -> bool:
    """Sleep if the budget allows it; False when waiting would overrun the budget."""
    if clock() + delay > deadline:
        return False
    sleep(delay)
    return True


def network_error(exc: RetriesExhausted, url: str) -> NetworkError:
    return NetworkError(
        f"cannot reach {url}: {type(exc.cause).__name__}",
        hint="check the API URL and the network, then run the command again",
    )
