"""Batch edit and list speed, peak memory and start-up time, against the reference API.

Starts Keycloak and the reference API (devstack), takes a service-account token, then
compares assetctl with a plain sequential loop that opens a new connection per request.
Each figure is the median of `--rounds` runs (the two sides alternate), and the load
average is printed before and after, so a busy machine shows in the output.
Run: `python benchmarks/bench_assets.py [--edits 2000] [--assets 10000] [--jobs 8]
[--rounds 3]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devstack.api_server import AssetApiServer  # noqa: E402
from devstack.keycloak import KeycloakServer  # noqa: E402
from devstack.ports import free_port  # noqa: E402

ASSETCTL = [sys.executable, "-m", "assetctl"]
NAIVE = [sys.executable, str(REPO / "benchmarks" / "naive_loop.py")]


def measure(
    args: list[str], env: dict[str, str], stdin_path: Path | None = None
) -> dict:
    """Wall time and the child's own peak RSS (from wait4, not the whole tree)."""
    stdin = stdin_path.open() if stdin_path else subprocess.DEVNULL
    started = time.perf_counter()
    child = subprocess.Popen(args, env=env, stdin=stdin, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{args} failed with status {status}")
    return {"seconds": elapsed, "peak_mib": usage.ru_maxrss / 1024}


def ci_token(keycloak: KeycloakServer) -> str:
    answer = requests.post(
        f"{keycloak.issuer}/protocol/openid-connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "assetctl-ci",
            "client_secret": os.environ.get(
                "ASSETCTL_CI_CLIENT_SECRET", "dev-ci-secret"
            ),
        },
        timeout=30,
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


def seed(env: dict, folder: Path, count: int, batch: str, jobs: int) -> Path:
    rows = folder / f"seed-{batch}.jsonl"
    with rows.open("w") as stream:
        for n in range(count):
            stream.write(
                json.dumps({"id": f"{batch}-{n}", "name": f"d{n}", "batch": batch})
                + "\n"
            )
    subprocess.run(
        [*ASSETCTL, "asset", "create", "-t", "datasets", str(rows), "-j", str(jobs)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return rows


def edits_file(rows: Path, folder: Path, tag: str) -> Path:
    out = folder / f"edits-{tag}.jsonl"
    with rows.open() as source, out.open("w") as target:
        for line in source:
            body = json.loads(line)
            target.write(json.dumps({**body, "name": f"{body['name']}-{tag}"}) + "\n")
    return out


def startup(env: dict) -> dict:
    figures = {}
    for name, args in {"--version": ["--version"], "token": ["token"]}.items():
        runs = [measure([*ASSETCTL, *args], env)["seconds"] for _ in range(7)]
        figures[name] = statistics.median(runs)
    return figures


def report(name: str, count: int, runs: list[dict]) -> None:
    """The median time of the runs and the highest peak memory among them."""
    seconds = statistics.median(r["seconds"] for r in runs)
    peak = max(r["peak_mib"] for r in runs)
    spread = ", ".join(f"{r['seconds']:.2f}" for r in runs)
    print(
        f"{name:<40} {count:>6} items {seconds:7.2f} s {count / seconds:8.0f} items/s"
        f"  peak {peak:6.1f} MiB  (runs: {spread})",
        flush=True,
    )


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def run(options: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="assetctl-bench-"))
    with KeycloakServer(free_port(), free_port(), folder / "kc") as keycloak:
        api = AssetApiServer(
            free_port(), folder / "assets.db", keycloak.issuer, folder / "api.log"
        )
        with api:
            env = {
                **os.environ,
                "ASSETCTL_TOKEN": ci_token(keycloak),
                "ASSETCTL_API_URL": api.url,
                "ASSETCTL_REGISTRY": str(REPO / "asset-types.yaml"),
                "XDG_STATE_HOME": str(folder / "state"),
                "NO_PROXY": "127.0.0.1,localhost",
            }
            benchmark(env, api.url, folder, options)


def benchmark(
    env: dict, api_url: str, folder: Path, options: argparse.Namespace
) -> None:
    print(f"# {load()}, {os.cpu_count()} cores", flush=True)
    batch = uuid.uuid4().hex
    rows = seed(env, folder, options.edits, batch, options.jobs)
    jobs = str(options.jobs)
    print(f"# batch edit of {options.edits} datasets (GET for the ETag, then PUT)")
    ours, theirs = [], []
    for n in range(options.rounds):
        mine = edits_file(rows, folder, f"ours{n}")
        edit = [*ASSETCTL, "asset", "edit", "-t", "datasets", str(mine), "-j", jobs]
        ours.append(measure(edit, env))
        naive = edits_file(rows, folder, f"naive{n}")
        theirs.append(measure([*NAIVE, "edit", api_url, str(naive)], env))
    report(f"assetctl asset edit --jobs {jobs}", options.edits, ours)
    report("sequential loop, new connection each", options.edits, theirs)

    big = uuid.uuid4().hex
    seed(env, folder, options.assets, big, options.jobs)
    print(f"# list of {options.assets} datasets (pages of 100)")
    listing = [
        *ASSETCTL,
        "asset",
        "list",
        "-t",
        "datasets",
        "-f",
        f"batch={big}",
        "-o",
        "jsonl",
    ]
    naive = [*NAIVE, "list", api_url, big]
    ours, theirs = [], []
    for _ in range(options.rounds):
        ours.append(measure(listing, env))
        theirs.append(measure(naive, env))
    report("assetctl asset list -o jsonl", options.assets, ours)
    report("sequential loop, new connection each", options.assets, theirs)

    print("# start-up (median of 7)")
    for name, seconds in startup(env).items():
        print(f"assetctl {name:<31} {seconds * 1000:7.0f} ms")
    print(f"# {load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=2000)
    parser.add_argument("--assets", type=int, default=10000)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
