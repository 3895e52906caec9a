"""Running one action over many items: bounded concurrency, journal, fail-fast, Ctrl-C.

Items are pulled from their generator only as worker slots free up, so memory stays
flat however many there are. Every finished item is journaled (from this thread) and
made durable before it is reported; items that finish together share one fsync.
Rendering is the caller's `report` callback.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field

from assetctl.assets.actions import DONE_EARLIER, NOT_ATTEMPTED, Action, Outcome
from assetctl.assets.client import AssetClient
from assetctl.assets.inputs import InputItem
from assetctl.assets.journal import Journal
from assetctl.errors import (
    AssetctlError,
    AuthError,
    ExitCode,
    Forbidden,
    Interrupted,
    NetworkError,
)

log = logging.getLogger(__name__)

# Errors that would fail every remaining item the same way: stop the batch.
FATAL = (AuthError, Forbidden)


class OutputClosed(AssetctlError):
    """stdout's reader went away (`| head -1`): the batch stops, journaled, resumable.

    A `report` callback raises it; items in flight still finish and are journaled.
    """

    def __init__(self) -> None:
        super().__init__(
            "stdout was closed (its reader went away), so the batch stopped",
            hint="what finished is journaled: run the same command again to finish it",
        )


@dataclass
class Summary:
    """Counts per action, and the exit code they add up to."""

    counts: Counter = field(default_factory=Counter)
    first_failure: Outcome | None = None
    fatal: AssetctlError | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def failed(self) -> int:
        return self.counts["failed"]

    def exit_code(self) -> int:
        if self.fatal is not None:
            return int(self.fatal.exit_code)
        if not self.failed:
            return ExitCode.OK
        if self.total == 1 and self.first_failure is not None:
            return self.first_failure.exit_code  # one item: its own code (8 for 412)
        return ExitCode.FAILURE

    def add(self, outcome: Outcome) -> None:
        not_attempted = outcome.reason == NOT_ATTEMPTED
        self.counts[NOT_ATTEMPTED if not_attempted else outcome.action] += 1
        if outcome.action == "failed" and self.first_failure is None:
            self.first_failure = outcome


@dataclass(frozen=True)
class BatchOptions:
    jobs: int = 4
    fail_fast: bool = False
    # Items in a row that failed to reach the API before the batch gives up (each has
    # already used its retries): a down API must not cost every item its full budget.
    unreachable_limit: int = 5


def unreachable(count: int) -> NetworkError:
    return NetworkError(
        f"the API could not be reached for {count} items in a row, "
        "so the batch stopped",
        hint="check the API URL and the network, then run the same command again "
        "to do the rest",
    )


def run_batch(
    items: Iterable[InputItem],
    action: Action,
    client: AssetClient,
    journal: Journal,
    options: BatchOptions,
    report: Callable[[Outcome], None],
) -> Summary:
    """Apply `action` to every item not already done; return the summary."""
    runner = _Runner(action, client, journal, options, report)
    pool = ThreadPoolExecutor(max_workers=options.jobs, thread_name_prefix="asset")
    waited = True
    try:
        with ctrl_c_at_safe_points(runner.interrupted):
            try:
                runner.feed(items, pool)
                runner.drain(everything=True)
            except KeyboardInterrupt:
                waited = runner.stop_now()
                raise Interrupted(
                    f"interrupted after {runner.summary.total} item(s)",
                    hint="run the same command again to do only the rest",
                    abandoned=not waited,
                ) from None
    finally:
        # After a second Ctrl-C nobody waits for requests in flight (their retries
        # could take minutes); the journal holds what finished, resumes redo the rest.
        pool.shutdown(wait=waited, cancel_futures=True)
    return runner.summary


@contextmanager
def ctrl_c_at_safe_points(flag: threading.Event) -> Iterator[None]:
    """The first Ctrl-C only sets `flag`; the runner acts on it between steps.

    A KeyboardInterrupt raised at an arbitrary point can leave a future's lock held
    inside concurrent.futures.wait, so a worker blocks forever in set_result and the
    pool never shuts down (seen as a hung batch after Ctrl-C). A second Ctrl-C still
    interrupts at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: object) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _Runner:
    def __init__(
        self,
        action: Action,
        client: AssetClient,
        journal: Journal,
        options: BatchOptions,
        report: Callable[[Outcome], None],
    ) -> None:
        self.action, self.client, self.journal = action, client, journal
        self.options, self.report = options, report
        self.summary = Summary()
        self.pending: dict[Future, InputItem] = {}
        self.stopping = False
        self.unreachable_in_a_row = 0
        self.interrupted = threading.Event()

    def feed(self, items: Iterable[InputItem], pool: ThreadPoolExecutor) -> None:
        """Submit items as slots free up; once stopping, report the rest unattempted."""
        window = self.options.jobs * 2  # in flight plus one queued each: flat memory
        for item in items:
            self._check_interrupt()
            if self.stopping:
                self._not_attempted(item)
                continue
            if self._skip_if_done(item):
                continue
            key = self.journal.idempotency_key(item.digest)
            self.pending[pool.submit(self._attempt, item, key)] = item
            while len(self.pending) >= window:
                self.drain(everything=False)

    def drain(self, *, everything: bool) -> None:
        while self.pending:
            done, _ = wait(self.pending, timeout=0.2, return_when=FIRST_COMPLETED)
            finished = [(self.pending.pop(f), f.result()) for f in done]
            for item, outcome in finished:
                if outcome.action != "planned":
                    self.journal.record(
                        item.digest, outcome.action, outcome.id, sync=False
                    )
            self.journal.sync()  # durable before reported, one fsync per group
            for _, outcome in finished:
                self._finish(outcome)
            if self.stopping:
                self._cancel_queued()
            self._check_interrupt()
            if not everything and done:
                return

    def _check_interrupt(self) -> None:
        """Turn a Ctrl-C seen by the signal handler into KeyboardInterrupt, here."""
        if self.interrupted.is_set() and not self.stopping:
            raise KeyboardInterrupt

    def stop_now(self) -> bool:
        """Ctrl-C: drop queued items, let running ones end and journal them. False
        when a second Ctrl-C said not to wait for them."""
        self.stopping = True
        self._cancel_queued(report=False)
        try:
            self.drain(everything=True)
        except KeyboardInterrupt:
            log.warning("second Ctrl-C: not waiting for requests in flight")
            self.journal.sync()
            return False
        return True

    def _cancel_queued(self, *, report: bool = True) -> None:
        for future in list(self.pending):
            if future.cancel():
                item = self.pending.pop(future)
                if report:
                    self._not_attempted(item)

    def _attempt(self, item: InputItem, key: str) -> Outcome:
        try:
            return self.action(self.client, item, key)
        except AssetctlError as exc:
            if isinstance(exc, FATAL) and self.summary.fatal is None:
                self.summary.fatal = exc
            return Outcome(
                item.source,
                "failed",
                status=getattr(exc, "status", None),
                error=str(exc),
                exit_code=int(exc.exit_code),
            )

    def _finish(self, outcome: Outcome) -> None:
        self.summary.add(outcome)
        self._report(outcome)
        failed = outcome.action == "failed"
        self._count_unreachable(outcome)
        if self.summary.fatal is not None or (failed and self.options.fail_fast):
            self.stopping = True

    def _count_unreachable(self, outcome: Outcome) -> None:
        """The circuit breaker: stop after so many items in a row found no API."""
        if outcome.action == "failed" and outcome.exit_code == ExitCode.NETWORK:
            self.unreachable_in_a_row += 1
        else:
            self.unreachable_in_a_row = 0  # the API answered, whatever it said
        limit = self.options.unreachable_limit
        if self.unreachable_in_a_row >= limit and self.summary.fatal is None:
            self.summary.fatal = unreachable(limit)

    def _not_attempted(self, item: InputItem) -> None:
        """An item the batch stopped before: reported, never journaled."""
        outcome = Outcome(item.source, "skipped", reason=NOT_ATTEMPTED)
        self.summary.add(outcome)
        self._report(outcome)

    def _report(self, outcome: Outcome) -> None:
        try:
            self.report(outcome)
        except OutputClosed as closed:
            if self.summary.fatal is None:
                self.summary.fatal = closed
            self.stopping = True

    def _skip_if_done(self, item: InputItem) -> bool:
        entry = self.journal.done(item.digest)
        if entry is None:
            return False
        outcome = Outcome(item.source, "skipped", entry.id, reason=DONE_EARLIER)
        self.summary.add(outcome)
        self._report(outcome)
        return True
