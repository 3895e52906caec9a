"""The one exception hierarchy of assetctl and the exit codes it maps to.

Every error a user can cause or meet ends as one `AssetctlError`; the command layer's
single handler prints its message on one line and exits with its code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented process exit codes (README, "Exit codes")."""

    OK = 0
    FAILURE = 1  # unexpected failure, or some items of a batch failed
    USAGE = 2  # wrong flag or argument (Click's own code)
    BAD_INPUT = 3  # broken input file, registry or configuration
    AUTH = 4  # not logged in, session ended, token rejected
    DENIED = 5  # the person denied the device login, or the API said 403
    EXPIRED = 6  # the device code expired before anyone approved it
    API = 7  # the API refused a request (other 4xx/5xx)
    CONFLICT = 8  # the asset changed meanwhile (412) or already exists (409)
    NETWORK = 9  # a server could not be reached, timed out or failed TLS
    STORAGE = 10  # no usable token store (keyring locked, missing, hanging)
    PENDING = 11  # `login --resume --once`: nobody has approved yet
    NOT_FOUND = 12  # the asset or pending login does not exist
    INTERRUPTED = 130  # Ctrl-C


class AssetctlError(Exception):
    """Base of every error that reaches the user as one line and an exit code."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        # Messages may quote what a server answered: never a secret, never one that
        # breaks the line or drives the terminal.
        from .logs import scrub

        if self.hint:
            return scrub(f"{self.message}; {self.hint}")
        return scrub(self.message)


class ConfigError(AssetctlError):
    exit_code = ExitCode.BAD_INPUT


class InputError(AssetctlError):
    exit_code = ExitCode.BAD_INPUT


class RegistryError(AssetctlError):
    exit_code = ExitCode.BAD_INPUT


class UnknownAssetType(RegistryError):
    pass


class AuthError(AssetctlError):
    exit_code = ExitCode.AUTH


class NotLoggedIn(AuthError):
    pass


class SessionEnded(AuthError):
    pass


class LoginError(AuthError):
    """The identity provider refused a login step for a reason not covered below."""


class AccessDenied(AssetctlError):
    exit_code = ExitCode.DENIED


class DeviceCodeExpired(AssetctlError):
    exit_code = ExitCode.EXPIRED


class ApiError(AssetctlError):
    exit_code = ExitCode.API

    def __init__(
        self, message: str, *, status: int | None = None, hint: str | None = None
    ):
        super().__init__(message, hint=hint)
        self.status = status


class Forbidden(ApiError):
    exit_code = ExitCode.DENIED


class Conflict(ApiError):
    exit_code = ExitCode.CONFLICT


class NotFound(ApiError):
    exit_code = ExitCode.NOT_FOUND


class NetworkError(AssetctlError):
    exit_code = ExitCode.NETWORK


class StorageError(AssetctlError):
    exit_code = ExitCode.STORAGE


class Interrupted(AssetctlError):
    exit_code = ExitCode.INTERRUPTED

    def __init__(
        self, message: str, *, hint: str | None = None, abandoned: bool = False
    ) -> None:
        super().__init__(message, hint=hint)
        # Threads were left running (a second Ctrl-C): the process must end without
        # joining them.
        self.abandoned = abandoned
