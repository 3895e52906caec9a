"""The local stack for development and tests (not shipped with assetctl).

Fetches and runs a pinned Keycloak with the assetctl realm, starts the reference asset
API, approves device codes without a browser, and runs a private Secret Service.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class StackError(RuntimeError):
    """The stack could not be fetched, started or used; the message says what to do."""
