"""The asset commands end to end: the installed CLI, real Keycloak, the reference API.

Most tests use a service-account token (`ASSETCTL_TOKEN`, client credentials of
`assetctl-ci`); the mid-batch refresh test logs in for real on the 10 s client.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from .terminal import assetctl_command, login_in_terminal, run

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
REGISTRY = REPO / "asset-types.yaml"


@pytest.fixture(scope="module")
def ci_token(keycloak) -> str:
    response = requests.post(
        f"{keycloak.issuer}/protocol/openid-connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "assetctl-ci",
            "client_secret": "dev-ci-secret",
        },
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["access_token"]


@pytest.fixture
def env(cli_env, ci_token, tmp_path):
    return {**cli_env, "ASSETCTL_TOKEN": ci_token, "ASSETCTL_REGISTRY": str(REGISTRY)}


@pytest.fixture
def api(asset_api, ci_token):
    """Reads straight from the reference API, to check what the CLI did."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {ci_token}"

    def get(path: str, **params) -> requests.Response:
        return session.get(asset_api.url + path, params=params, timeout=30)

    return get


def all_datasets(api, batch: str) -> list[dict]:
    found, page = [], 1
    while True:
        body = api("/datasets", batch=batch, size=500, page=page).json()
        found += body["items"]
        if len(found) >= body["total"] or not body["items"]:
            return found
        page += 1


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr
    return result


def test_datasets_create_list_get_edit_delete(env, api, tmp_path):
    batch = uuid.uuid4().hex
    tricky = f"{batch}/../escape"
    (tmp_path / "a.json").write_text(
        json.dumps({"id": tricky, "name": "a", "batch": batch})
    )
    created = ok(
        run(["asset", "create", "--type", "datasets", str(tmp_path / "a.json")], env)
    )
    assert created.stdout == tricky + "\n"
    assert (
        api("/datasets/" + requests.utils.quote(tricky, safe="")).json()["name"] == "a"
    )

    listed = ok(
        run(
            ["asset", "list", "-t", "datasets", "-f", f"batch={batch}", "-o", "json"],
            env,
        )
    )
    assert [a["id"] for a in json.loads(listed.stdout)] == [tricky]

    (tmp_path / "b.json").write_text(json.dumps({"name": "b", "batch": batch}))
    ok(run(["asset", "edit", "-t", "datasets", tricky, str(tmp_path / "b.json")], env))
    ok(run(["asset", "edit", "-t", "datasets", tricky, "--set", "rows=10"], env))
    stored = all_datasets(api, batch)[0]
    assert (stored["name"], stored["rows"], stored["version"]) == ("b", 10, 3)

    shown = ok(run(["asset", "get", "-t", "datasets", tricky, "-o", "json"], env))
    assert json.loads(shown.stdout)["rows"] == 10

    ok(run(["asset", "delete", "-t", "datasets", tricky, "--yes"], env))
    assert all_datasets(api, batch) == []
    missing = run(["asset", "get", "-t", "datasets", tricky], env)
    assert missing.returncode == 12 and "HTTP 404" in missing.stderr


def test_models_location_ids_merge_patch_and_link_paging(env, api, tmp_path):
    batch = uuid.uuid4().hex
    rows = [{"name": f"m{n}", "batch": batch, "params": {"lr": n}} for n in range(120)]
    write_jsonl(tmp_path / "models.jsonl", rows)
    created = ok(
        run(["asset", "create", "-t", "models", str(tmp_path / "models.jsonl")], env)
    )
    ids = created.stdout.split()
    assert len(set(ids)) == 120

    listed = ok(
        run(["asset", "list", "-t", "models", "-f", f"batch={batch}", "-o", "ids"], env)
    )
    assert sorted(listed.stdout.split()) == sorted(ids)  # pages of 100 via Link headers

    ok(
        run(
            ["asset", "edit", "-t", "models", ids[0], "--set", "params.momentum=0.9"],
            env,
        )
    )
    model = api(f"/models/{ids[0]}").json()
    assert model["params"] == {"lr": model["params"]["lr"], "momentum": 0.9}


def test_batch_json_lines_apply_and_exit_codes(env, api, tmp_path):
    batch = uuid.uuid4().hex
    rows = [{"id": f"{batch}-{n}", "name": f"d{n}", "batch": batch} for n in range(300)]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    result = ok(
        run(
            ["asset", "create", "-t", "datasets", str(source), "-j", "8", "-o", "json"],
            env,
        )
    )
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 300 and {r["result"] for r in records} == {"created"}
    assert len(all_datasets(api, batch)) == 300

    rows[5]["name"] = "changed"
    write_jsonl(source, rows)
    applied = ok(
        run(["asset", "apply", "-t", "datasets", str(source), "-o", "json"], env)
    )
    results = [json.loads(line)["result"] for line in applied.stdout.splitlines()]
    assert results.count("updated") == 1 and results.count("unchanged") == 299

    again = run(["asset", "create", "-t", "datasets", str(source), "-o", "json"], env)
    assert again.returncode == 1  # every item exists: 409 each, some failed
    assert "HTTP 409" in again.stderr

    bad = tmp_path / "bad.json"
    bad.write_text('{"name": ""}')
    refused = run(["asset", "create", "-t", "datasets", str(bad)], env)
    assert refused.returncode == 3 and "name" in refused.stderr


def test_stdin_and_yaml_inputs(env, api):
    batch = uuid.uuid4().hex
    text = f"name: y1\nbatch: {batch}\n---\nname: y2\nbatch: {batch}\n"
    ok(run(["asset", "create", "-t", "datasets", "-"], env, stdin=text))
    assert sorted(d["name"] for d in all_datasets(api, batch)) == ["y1", "y2"]


def test_killed_batch_resumes_with_nothing_twice_and_nothing_skipped(
    env, api, tmp_path
):
    batch = uuid.uuid4().hex
    rows = [{"name": f"r{n}", "batch": batch} for n in range(600)]  # server-chosen ids
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    args = [
        *assetctl_command(),
        "asset",
        "create",
        "-t",
        "datasets",
        str(source),
        "-j",
        "4",
    ]
    first = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    for _ in range(50):  # let some items finish, then kill it without warning
        first.stdout.readline()
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = len(all_datasets(api, batch))
    assert 50 <= before < 600

    second = ok(run(args[len(assetctl_command()) :], env, timeout=300))
    stored = all_datasets(api, batch)
    names = [d["name"] for d in stored]
    assert len(names) == 600 and len(set(names)) == 600
    assert "done in an earlier run" in second.stderr


def test_interrupted_batch_exits_130_and_resumes(env, api, tmp_path):
    batch = uuid.uuid4().hex
    rows = [{"name": f"c{n}", "batch": batch} for n in range(400)]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    args = [
        *assetctl_command(),
        "asset",
        "create",
        "-t",
        "datasets",
        str(source),
        "-j",
        "2",
    ]
    first = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    for _ in range(30):
        first.stdout.readline()
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    ok(run(args[len(assetctl_command()) :], env, timeout=300))
    names = [d["name"] for d in all_datasets(api, batch)]
    assert len(names) == 400 and len(set(names)) == 400


def test_api_command(env, asset_api, tmp_path):
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"name": "raw"}))
    created = ok(run(["api", "POST", "/datasets", "--data", str(body)], env))
    asset_id = json.loads(created.stdout)["id"]
    fetched = ok(run(["api", "GET", f"/datasets/{asset_id}"], env))
    assert json.loads(fetched.stdout)["name"] == "raw"
    missing = run(["api", "GET", "/datasets/nope"], env)
    assert missing.returncode == 12


def test_no_token_is_an_auth_failure(cli_env, tmp_path):
    env = {
        **cli_env,
        "ASSETCTL_TOKEN": "not-a-token",
        "ASSETCTL_REGISTRY": str(REGISTRY),
    }
    (tmp_path / "a.json").write_text('{"name": "x"}')
    result = run(["asset", "create", "-t", "datasets", str(tmp_path / "a.json")], env)
    assert result.returncode == 4, result.stderr


def test_token_expiring_mid_batch_is_refreshed_without_failing_an_item(
    cli_env, approve, keycloak, api, tmp_path
):
    env = {
        **cli_env,
        "ASSETCTL_CLIENT_ID": "assetctl-cli-short",
        "ASSETCTL_REGISTRY": str(REGISTRY),
    }
    code, out = login_in_terminal(env, approve)
    assert code == 0, out
    logged_in = time.monotonic()
    batch = uuid.uuid4().hex
    # Enough items to outlast the token even on a quiet machine (~330 items/s there).
    rows = [{"name": f"s{n}", "batch": batch} for n in range(4000)]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    before = len(keycloak.events("REFRESH_TOKEN"))
    time.sleep(7)  # start with about 3 s of the 10 s access token left

    args = ["asset", "create", "-t", "datasets", str(source), "-j", "2", "-o", "json"]
    result = run(args, env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - logged_in > 11, "the batch ended before the token expired"
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["result"] for r in records} == {"created"} and len(records) == len(rows)
    assert len(all_datasets(api, batch)) == len(rows)
    assert len(keycloak.events("REFRESH_TOKEN")) > before
