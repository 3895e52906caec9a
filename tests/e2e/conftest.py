"""Every end-to-end test gets its own profile: the Secret Service is shared by the whole
run, and a login left behind by one test must not satisfy the next."""

from __future__ import annotations

import hashlib

import pytest


@pytest.fixture
def cli_env(cli_env: dict[str, str], request: pytest.FixtureRequest) -> dict[str, str]:
    profile = "t" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]
    return {**cli_env, "ASSETCTL_PROFILE": profile}
