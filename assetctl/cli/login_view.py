"""How a pending device login is shown to a person: a panel on stderr with the URL, the
code, a QR code of the complete URI and a countdown. Nothing here talks to a server."""

from __future__ import annotations

import io
import os
import sys
import time
import webbrowser

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from ..auth.device_flow import DeviceAuthorization

stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def show_device_code(authorization: DeviceAuthorization, *, qr: bool) -> None:
    # The code sits in a panel; the URLs stay plain lines outside it: a URL inside a
    # box is cut or folded at the terminal's edge, and a whole line copies cleanly.
    stderr.print(Text("To sign in to assetctl, open", style="bold"))
    stderr.print(Text.assemble("  ", (authorization.verification_uri, "bold cyan")))
    code = Text.assemble(
        "Code  ",
        (authorization.user_code, "bold yellow"),
        (f"   expires in {_clock(authorization.seconds_left())}", "dim"),
    )
    stderr.print(Panel(code, expand=False))
    if authorization.verification_uri_complete:
        stderr.print(Text("or open this link, which carries the code:"))
        stderr.print(
            Text.assemble("  ", (authorization.verification_uri_complete, "cyan"))
        )
    if qr and authorization.verification_uri_complete:
        stderr.print(
            _qr_text(authorization.verification_uri_complete),
            highlight=False,
            markup=False,
        )


def open_browser(url: str | None) -> bool:
    """Open `url` in the user's browser; the caller decides whether one should be
    tried (an explicit `--browser` tries even without a display: BROWSER may name a
    terminal browser)."""
    if not url:
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
    """A one-line status on stderr, on a terminal only: the time left until the code
    expires, recomputed at every refresh of the spinner."""

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
