"""assetctl: sign in to Keycloak with the device flow and manage assets on a REST API."""

__version__ = "0.1.0"
