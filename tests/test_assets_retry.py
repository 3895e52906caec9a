"""Backoff, Retry-After in both forms, and the time budget."""

from __future__ import annotations

import io
from email.utils import formatdate

import pytest
import requests

from assetctl.assets.retry import (
    RetriesExhausted,
    RetryPolicy,
    retry_after,
    send_with_retry,
)


def answer(status: int, **headers: str) -> requests.Response:
    response = requests.Response()
    response.raw = io.BytesIO()
    response.status_code = status
    response.headers.update(headers)
    return response


class Clock:
    def __init__(self) -> None:
        self.now, self.slept = 1000.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_retry_after_seconds_and_http_date():
    assert retry_after(answer(429, **{"Retry-After": "7"})) == 7
    import time

    date = formatdate(time.time() + 30, usegmt=True)
    assert 28 <= retry_after(answer(503, **{"Retry-After": date})) <= 30
    assert retry_after(answer(503, **{"Retry-After": "soon"})) is None
    assert retry_after(answer(503)) is None


def test_full_jitter_stays_under_the_exponential_ceiling():
    policy = RetryPolicy(base=1, cap=8)
    for attempt in range(6):
        assert all(
            0 <= policy.backoff(attempt) <= min(8, 2**attempt) for _ in range(50)
        )


def test_retry_after_is_honoured_then_success():
    clock = Clock()
    answers = iter([answer(429, **{"Retry-After": "3"}), answer(503), answer(200)])
    got = send_with_retry(
        lambda: next(answers), RetryPolicy(), sleep=clock.sleep, clock=clock
    )
    assert got.status_code == 200
    assert clock.slept[0] == 3 and len(clock.slept) == 2


def test_budget_ends_retries_with_the_last_answer():
    clock = Clock()
    always = lambda: answer(503, **{"Retry-After": "40"})  # noqa: E731
    policy = RetryPolicy(attempts=10, budget=100)
    got = send_with_retry(always, policy, sleep=clock.sleep, clock=clock)
    assert got.status_code == 503 and clock.slept == [40, 40]


def test_other_statuses_are_not_retried():
    clock = Clock()
    answers = iter([answer(500), answer(200)])
    got = send_with_retry(
        lambda: next(answers), RetryPolicy(), sleep=clock.sleep, clock=clock
    )
    assert got.status_code == 500 and clock.slept == []


def test_connection_errors_ask_on_lost_then_give_up():
    clock = Clock()
    asked = []

    def broken():
        raise requests.ConnectionError("reset")

    def lookup():
        asked.append(1)

    with pytest.raises(RetriesExhausted):
        send_with_retry(
            broken,
            RetryPolicy(attempts=3),
            on_lost=lookup,
            sleep=clock.sleep,
            clock=clock,
        )
    assert len(asked) == 2

    found = answer(200)
    got = send_with_retry(
        broken, RetryPolicy(), on_lost=lambda: found, sleep=clock.sleep, clock=clock
    )
    assert got is found
