"""The old script's approach, for comparison: one request at a time, a new connection
for each (no session), no retries. Usage: naive_loop.py edit|list API_URL ARG."""

from __future__ import annotations

import json
import os
import sys

import requests


def edit(api: str, path: str, headers: dict) -> int:
    count = 0
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            body = json.loads(line)
            url = f"{api}/datasets/{body['id']}"
            current = requests.get(url, headers=headers, timeout=30)
            current.raise_for_status()
            sent = requests.put(url, json=body, headers=headers, timeout=30)
            sent.raise_for_status()
            count += 1
    return count


def list_all(api: str, batch: str, headers: dict) -> int:
    count, page = 0, 1
    while True:
        params = {"batch": batch, "page": page, "size": 100}
        answer = requests.get(
            f"{api}/datasets", params=params, headers=headers, timeout=30
        )
        answer.raise_for_status()
        items = answer.json()["items"]
        for item in items:
            sys.stdout.write(json.dumps(item) + "\n")
        count += len(items)
        if not items:
            return count
        page += 1


def main() -> None:
    mode, api, arg = sys.argv[1:4]
    headers = {"Authorization": f"Bearer {os.environ['ASSETCTL_TOKEN']}"}
    count = edit(api, arg, headers) if mode == "edit" else list_all(api, arg, headers)
    print(count, file=sys.stderr)


if __name__ == "__main__":
    main()
