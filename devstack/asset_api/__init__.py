"""The reference asset API of assetctl's local stack (not shipped).

A Flask app served by waitress: datasets and models in SQLite behind Keycloak
bearer tokens. `python -m devstack.asset_api --help` lists its settings.
"""

from .app import create_app
from .config import Settings, parse_settings

__all__ = ["Settings", "create_app", "parse_settings"]
