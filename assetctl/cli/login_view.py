"""How a pending device login is shown to a person: a panel on stderr with the URL, the
code, a QR code of the complete URI and a countdown. Nothing here talks to a server."""

from __future__ import annotations

import io
import os
import sys
import time
import webbrowser

from rich.console import Console
from rich.text import Text

from ..auth.device_flow import DeviceAuthorization

stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def show_device_code(authorization: DeviceAuthorization, *, qr: bool) -> None:
    # Plain lines, not a box: a URL must never be cut at the terminal's edge, and a
    # whole line copies cleanly. soft_wrap lets the terminal fold long ones.
    lines = [
        Text("To sign in to assetctl, open", style="bold"),
        Text.assemble("  ", (authorization.verification_uri, "bold cyan")),
        Text.assemble("and enter the code  ", (authorization.user_code, "bold yellow")),
    ]
    if authorization.verification_uri_complete:
        lines.append(Text("or open this link, which carries the code:"))
        lines.append(
            Text.assemble("  ", (authorization.verification_uri_complete, "cyan"))
        )
    lines.append(
        Text(
            f"The code expires in {_clock(authorization.seconds_left())}.", style="dim"
        )
    )
    for line in lines:
        stderr.print(line)
    if qr and authorization.verification_uri_complete:
        stderr.print(
            _qr_text(authorization.verification_uri_complete),
            highlight=False,
            markup=False,
        )


def open_browser(url: str | None) -> bool:
    if not url or not has_display():
        return False
    try:
        return webbrowser.open(url, new=2)
    except webbrowser.Error:
        return False


def has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class Countdown:
    """A one-line status on stderr, on a terminal only: time left until the code
    expires,
    recomputed at every refresh of the spinner."""

    def __init__(self) -> None:
        live = stderr.is_terminal and not stderr.is_dumb_terminal
        self._status = stderr.status("") if live else None
        self._expires_at = 0.0
        self._started = False

    def __call__(self, authorization: DeviceAuthorization) -> None:
        self._expires_at = authorization.expires_at
        if self._status is None or self._started:
            return
        self._status.update(self)
        self._status.start()
        self._started = True

    def __rich__(self) -> Text:
        left = _clock(self._expires_at - time.time())
        return Text(f"Waiting for approval; the code expires in {left}")

    def stop(self) -> None:
        if self._status is not None and self._started:
            self._status.stop()


def _qr_text(data: str) -> str:
    import segno

    buffer = io.StringIO()
    segno.make(data, error="l").terminal(out=buffer, compact=True, border=2)
    return buffer.getvalue()


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"
