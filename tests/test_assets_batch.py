"""The batch under faults (drops, 429 + Retry-After, 502/503, hangs); journal; jobs."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter

import pytest
import requests

from assetctl.assets import actions
from assetctl.assets.batch import BatchOptions, run_batch
from assetctl.assets.client import AssetClient
from assetctl.assets.inputs import InputItem
from assetctl.assets.journal import Entry, Journal, NoJournal
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
        with pytest.raises(InputError) as caught:
            Journal("same", tmp_path).__enter__()
    assert str(caught.value) == (
        "another run of this same batch is running right now; wait for it to "
        "finish (or stop it), then run the command again"
    )
    with Journal("same", tmp_path):  # free again once the first ended
        pass


def test_no_lock_file_is_left_when_a_run_ends(tmp_path):
    with Journal("ok", tmp_path) as journal:
        journal.record("a", "created", "1")
        assert (tmp_path / "ok.jsonl.lock").exists()
    with pytest.raises(RuntimeError), Journal("failing", tmp_path):
        raise RuntimeError("the batch broke")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["failing.jsonl", "ok.jsonl"]


def test_a_lock_left_by_a_killed_run_does_not_block_the_next(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path;"
            "from assetctl.assets.runlock import RunLock;"
            "assert RunLock(Path(sys.argv[1])).acquire(); print('held', flush=True);"
            "time.sleep(60)",
            str(tmp_path / "k.jsonl.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert holder.stdout.readline() == "held\n"
    from assetctl.errors import InputError

    with pytest.raises(InputError, match="running right now"):
        Journal("k", tmp_path).__enter__()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / "k.jsonl.lock").exists()  # a kill leaves the file, not the lock
    with Journal("k", tmp_path):
        pass
    assert not (tmp_path / "k.jsonl.lock").exists()


def test_a_lock_on_a_removed_file_does_not_count(tmp_path):
    import fcntl
    import os

    from assetctl.assets.runlock import RunLock

    path = tmp_path / "x.lock"
    first = RunLock(path)
    assert first.acquire()
    opened_too_early = os.open(path, os.O_RDWR)  # a run between open() and flock()
    first.release()
    fcntl.flock(opened_too_early, fcntl.LOCK_EX | fcntl.LOCK_NB)  # on the old file
    try:
        assert not RunLock(path)._names(opened_too_early)
        second = RunLock(path)
        assert second.acquire()  # the path's new file is free: one real holder
        assert not RunLock(path).acquire()
        second.release()
    finally:
        os.close(opened_too_early)


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


def closed_port_url():
    server = AssetServer()
    server.httpd.server_close()
    return server.url


def test_an_unreachable_api_stops_the_batch_after_five_in_a_row(tmp_path):
    class Gone:
        url = closed_port_url()

    policy = RetryPolicy(attempts=3, base=0.01, cap=0.01, budget=5)
    with Journal("down", tmp_path) as journal:
        summary, outcomes = run(
            Gone,
            items(40),
            actions.create_action(),
            journal=journal,
            jobs=2,
            policy=policy,
        )
    failed = [o for o in outcomes if o.action == "failed"]
    unattempted = [o for o in outcomes if o.reason == actions.NOT_ATTEMPTED]
    assert summary.exit_code() == ExitCode.NETWORK == 9
    assert "could not be reached for 5 items in a row" in str(summary.fatal)
    assert 5 <= len(failed) <= 5 + 2 * 2 and len(failed) + len(unattempted) == 40
    assert {o.action for o in unattempted} == {"skipped"}
    assert summary.counts[actions.NOT_ATTEMPTED] == len(unattempted)
    journaled = (tmp_path / "down.jsonl").read_text().splitlines()[1:]
    assert [json.loads(x)["action"] for x in journaled] == ["failed"] * len(failed)


def test_a_success_between_failures_keeps_the_batch_going():
    flaky = iter(["drop-before"] * 4 + [None] + ["drop-before"] * 4 + [None] * 100)
    policy = RetryPolicy(attempts=1)
    with AssetServer(fault=lambda m, p: next(flaky, None)) as server:
        summary, outcomes = run(
            server, items(20), actions.create_action(), jobs=1, policy=policy
        )
    assert summary.fatal is None and summary.counts["failed"] == 8
    assert summary.counts["created"] == 12


@pytest.mark.parametrize(("status", "code"), [("401", 4), ("403", 5)])
def test_a_batch_stopped_by_auth_reports_the_rest_as_not_attempted(status, code):
    with AssetServer(fault=lambda m, p: status) as server:
        summary, outcomes = run(server, items(30), actions.create_action(), jobs=2)
    failed = [o for o in outcomes if o.action == "failed"]
    unattempted = [o for o in outcomes if o.reason == actions.NOT_ATTEMPTED]
    assert summary.exit_code() == code
    assert 1 <= len(failed) <= 4 and len(failed) + len(unattempted) == 30
    assert summary.counts[actions.NOT_ATTEMPTED] == len(unattempted)


def test_fail_fast_reports_the_rest_as_not_attempted():
    with AssetServer(fault=lambda m, p: "503") as server:
        outcomes = []
        summary = run_batch(
            items(50),
            actions.create_action(),
            client(server, policy=RetryPolicy(attempts=1)),
            NoJournal(),
            BatchOptions(jobs=2, fail_fast=True),
            outcomes.append,
        )
    assert len(outcomes) == 50 and summary.total == 50
    assert summary.counts["failed"] + summary.counts[actions.NOT_ATTEMPTED] == 50


def test_items_finishing_together_share_an_fsync_and_are_durable_first(
    tmp_path, monkeypatch
):
    import os
    import time

    synced_sizes = []

    def slow_disk_fsync(fd):
        time.sleep(0.005)
        synced_sizes.append(os.fstat(fd).st_size)

    monkeypatch.setattr(os, "fsync", slow_disk_fsync)
    reported_before_durable = []
    with AssetServer() as server, Journal("group", tmp_path) as journal:

        def report(outcome):
            if synced_sizes[-1] != journal.path.stat().st_size:
                reported_before_durable.append(outcome)

        summary, _ = run(
            server, items(200), actions.create_action(), journal=journal, report=report
        )
    lines = (tmp_path / "group.jsonl").read_text().splitlines()
    assert summary.counts["created"] == 200 and len(lines) == 201
    assert reported_before_durable == []
    assert len(synced_sizes) < 100  # one per group, not one per item


def test_a_real_sigint_stops_the_batch_between_steps(tmp_path):
    """SIGINT goes through the handler: the batch ends as Interrupted, journaled."""
    import signal
    import threading

    calls = 0

    def slow(client, item, key):
        nonlocal calls
        calls += 1
        if calls == 10:
            threading.Timer(0, os.kill, (os.getpid(), signal.SIGINT)).start()
        time.sleep(0.01)
        return actions.Outcome(item.source, "created", item.source)

    with AssetServer() as server, Journal("sigint", tmp_path) as journal:
        with pytest.raises(Interrupted):
            run(server, iter(items(500)), slow, journal=journal, jobs=2)
    assert calls < 500
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    lines = (tmp_path / "sigint.jsonl").read_text().splitlines()
    assert len(lines) - 1 == calls  # every item that ran is journaled


def test_a_second_sigint_ends_the_process_without_waiting_for_requests(tmp_path):
    """A real `assetctl` against an API that never answers: the first Ctrl-C waits for
    the requests in flight, the second ends the process at once, with one line and
    exit 130 (no "Exception ignored" from threads joined at exit)."""
    import signal
    import socket
    import subprocess
    import sys

    silent = socket.socket()  # accepts connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    (tmp_path / "in.jsonl").write_text(
        "".join(json.dumps({"id": f"x{n}", "name": "x"}) + "\n" for n in range(20))
    )
    env = {
        **os.environ,
        "ASSETCTL_TOKEN": "test-token",
        "ASSETCTL_SERVER_URL": "http://127.0.0.1:1",
        "ASSETCTL_REALM": "none",
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    api = f"http://127.0.0.1:{silent.getsockname()[1]}"
    child = subprocess.Popen(
        [sys.executable, "-m", "assetctl", "--timeout", "120", "--api-url", api]
        + ["asset", "create", "-t", "datasets", "in.jsonl"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3)  # started, requests in flight
        child.send_signal(signal.SIGINT)
        time.sleep(1)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)  # not the 120 s of a request
    finally:
        child.kill()
        silent.close()

    assert child.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert "interrupted" in err and "run the same command again" in err


def test_a_journal_unfinished_for_a_week_is_not_trusted(tmp_path):
    with Journal("old", tmp_path) as journal:
        journal.record("digest-1", "created", "a1")
    week_ago = time.time() - 8 * 86400
    os.utime(tmp_path / "old.jsonl", (week_ago, week_ago))

    with Journal("old", tmp_path) as journal:
        assert journal.done("digest-1") is None and not journal.resumed


def test_journal_lines_that_are_not_ours_prove_nothing(tmp_path):
    (tmp_path / "odd.jsonl").write_text(
        '{"run": "r1"}\n5\n[1]\n{"action": "created"}\n'
        '{"item": 7, "action": "created"}\n'
        '{"item": "d1", "action": "created", "id": 3}\n'
    )
    with Journal("odd", tmp_path) as journal:
        assert journal.done("d1") == Entry("d1", "created", "3")
        assert journal.run_id == "r1"
