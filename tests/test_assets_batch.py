"""The batch under faults (drops, 429 + Retry-After, 502/503, hangs); journal; jobs."""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
import requests

from assetctl.assets import actions
from assetctl.assets.batch import BatchOptions, run_batch
from assetctl.assets.client import AssetClient
from assetctl.assets.inputs import InputItem
from assetctl.assets.journal import Journal, NoJournal
from assetctl.assets.retry import RetryPolicy
from assetctl.errors import ExitCode, Interrupted
from assetctl.registry import parse_registry
from tests.servers.styled import AssetServer, RandomFaults, Style

THINGS = parse_registry(
    "types:\n  t: {collection: /things, list: {paging: page, items: items}}\n"
    "  m: {collection: /things, id_from: location, edit: merge-patch}\n",
    "r.yaml",
).types
FAST = RetryPolicy(attempts=8, base=0.01, cap=0.1, budget=60)


class TimeoutSession(requests.Session):
    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", 0.5)
        return super().request(*args, **kwargs)


def client(server, type_name="t", policy=FAST):
    return AssetClient(TimeoutSession(), THINGS[type_name], server.url, retry=policy)


def items(count, **extra):
    for n in range(count):
        yield InputItem(f"in.jsonl:{n + 1}", {"name": f"n{n}", **extra})


def run(server, source, action, *, journal=None, jobs=8, report=None, **kw):
    outcomes = []
    summary = run_batch(
        source,
        action,
        client(server, **kw),
        journal or NoJournal(),
        BatchOptions(jobs=jobs),
        report or outcomes.append,
    )
    return summary, outcomes


@pytest.mark.timeout(300)
def test_a_thousand_creates_under_faults_each_applied_exactly_once():
    faults = RandomFaults(rate=0.12, hang_seconds=1.0)
    with AssetServer(Style(id_from="location"), fault=faults) as server:
        summary, outcomes = run(
            server, items(1000), actions.create_action(), type_name="m"
        )
        names = Counter(a["name"] for a in server.assets.values())
    assert summary.exit_code() == 0, [o.error for o in outcomes if o.error][:3]
    assert len(outcomes) == 1000 and summary.counts["created"] == 1000
    assert len(names) == 1000 and set(names.values()) == {1}  # none twice, none skipped
    assert len({o.id for o in outcomes}) == 1000
    assert {"drop-after", "429", "429-date", "503", "hang"} <= set(server.faults_done)


@pytest.mark.timeout(300)
def test_a_thousand_edits_under_faults_with_if_match():
    with AssetServer(
        Style(edit="put"),
        fault=RandomFaults(
            rate=0.1,
            seed=3,
            hang_seconds=0.7,
            kinds=("drop-before", "drop-after", "429", "503", "hang"),
        ),
    ) as server:
        ids = server.seed(1000)
        source = (InputItem(i, {"id": i, "name": f"edited-{i}"}) for i in ids)
        summary, outcomes = run(server, source, actions.edit_action())
        stored = dict(server.assets)
    assert summary.exit_code() == 0, [o.error for o in outcomes if o.error][:3]
    assert all(stored[i]["name"] == f"edited-{i}" for i in ids)
    # An edit is resent only when its answer was lost, and then is seen as done.
    assert max(a["version"] for a in stored.values()) <= 3


def test_items_that_keep_failing_are_reported_not_lost():
    always = RandomFaults(rate=1.0, kinds=("503",))
    policy = RetryPolicy(attempts=2, base=0.01, cap=0.01, budget=5)
    with AssetServer(fault=always) as server:
        summary, outcomes = run(
            server, items(20), actions.create_action(), policy=policy
        )
    assert summary.counts["failed"] == 20 and summary.exit_code() == ExitCode.FAILURE
    assert all("HTTP 503" in o.error for o in outcomes)


def test_fail_fast_stops_early():
    always = RandomFaults(rate=1.0, kinds=("503",))
    policy = RetryPolicy(attempts=1)
    with AssetServer(fault=always) as server:
        outcomes = []
        summary = run_batch(
            items(500),
            actions.create_action(),
            client(server, policy=policy),
            NoJournal(),
            BatchOptions(jobs=2, fail_fast=True),
            outcomes.append,
        )
    assert 1 <= summary.counts["failed"] <= 4


def test_concurrency_is_bounded_and_input_is_pulled_lazily():
    in_flight, peak, pulled = 0, 0, []
    lock = threading.Lock()

    def slow(client, item, key):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        threading.Event().wait(0.01)
        with lock:
            in_flight -= 1
        return actions.Outcome(item.source, "created", item.source)

    def source():
        for item in items(200):
            pulled.append(len(done))
            yield item

    done = []
    with AssetServer() as server:
        run(server, source(), slow, jobs=3, report=done.append)
    assert peak <= 3 and len(done) == 200
    # The 100th item was read only after most of those before it had finished.
    assert pulled[100] >= 100 - 2 * 3


def test_journal_skips_what_an_earlier_run_finished(tmp_path):
    with AssetServer() as server:
        with Journal("k", tmp_path) as journal:
            first = list(items(10))
            for item in first[:4]:
                journal.record(item.digest, "created", item.source)
            journal.record(first[4].digest, "failed", None)
            key = journal.idempotency_key(first[5].digest)
        with Journal("k", tmp_path) as journal:
            assert journal.resumed and journal.idempotency_key(first[5].digest) == key
            summary, outcomes = run(
                server, items(10), actions.create_action(), journal=journal
            )
    assert summary.counts == {"skipped": 4, "created": 6}
    assert len(server.assets) == 6


def test_journal_survives_a_line_cut_short(tmp_path):
    with Journal("cut", tmp_path) as journal:
        journal.record("a", "created", "1")
    with (tmp_path / "cut.jsonl").open("a") as stream:
        stream.write('{"item": "b", "act')
    with Journal("cut", tmp_path) as journal:
        journal.record("c", "created", "3")
    with Journal("cut", tmp_path) as journal:
        assert journal.done("a") and journal.done("c") and not journal.done("b")


def test_a_second_run_of_the_same_batch_is_refused_while_one_runs(tmp_path):
    from assetctl.errors import InputError

    with Journal("same", tmp_path):
        with pytest.raises(InputError, match="in progress"):
            Journal("same", tmp_path).__enter__()


def test_ctrl_c_journals_what_finished_and_raises_interrupted(tmp_path):
    calls = 0

    def interrupting(client, item, key):
        nonlocal calls
        calls += 1
        return actions.Outcome(item.source, "created", item.source)

    def source():
        for n, item in enumerate(items(100)):
            if n == 30:
                raise KeyboardInterrupt
            yield item

    with AssetServer() as server, Journal("ctrlc", tmp_path) as journal:
        with pytest.raises(Interrupted) as caught:
            run(server, source(), interrupting, journal=journal, jobs=2)
    assert caught.value.exit_code == 130
    lines = (tmp_path / "ctrlc.jsonl").read_text().splitlines()
    done = [json.loads(x) for x in lines[1:]]
    assert len(done) == calls and 0 < calls <= 30
