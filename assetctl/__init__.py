"""assetctl: device-flow sign-in to Keycloak and assets on a protected REST API."""

__version__ = "0.1.0"
