"""What a person sees during `assetctl login` in a terminal: the QR code scans to the
complete URI, the countdown runs down, and the browser is opened only when it should
be. All against the real Keycloak; the "browser" is a script that records its URL."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest
import zxingcpp

from .terminal import spawn_in_terminal

pytestmark = pytest.mark.e2e

# segno's compact terminal QR: each character holds two rows of modules; a block is a
# light module (the code is drawn light on the terminal's dark background).
HALF_BLOCKS = {"█": (1, 1), "▀": (1, 0), "▄": (0, 1), " ": (0, 0)}
COUNTDOWN = re.compile(r"the code expires in (\d+):(\d\d)")


def decode_terminal_qr(text: str) -> list[str]:
    """Redraw the QR code found in `text` as a grey image and read it like a phone."""
    lines = [
        line.rstrip("\r")
        for line in text.splitlines()
        if line.strip("\r") and set(line.strip("\r")) <= set(HALF_BLOCKS)
    ]
    assert lines, "no QR code in the output"
    modules: list[list[int]] = []
    for line in lines:
        modules.append([HALF_BLOCKS[c][0] for c in line])
        modules.append([HALF_BLOCKS[c][1] for c in line])

    scale, quiet = 4, 4
    width = (max(len(row) for row in modules) + 2 * quiet) * scale
    height = (len(modules) + 2 * quiet) * scale
    pixels = bytearray(b"\xff") * (width * height)
    for y, row in enumerate(modules):
        for x, light in enumerate(row):
            if light:
                continue
            for dy in range(scale):
                start = ((y + quiet) * scale + dy) * width + (x + quiet) * scale
                pixels[start : start + scale] = b"\x00" * scale
    image = memoryview(bytes(pixels)).cast("B", (height, width))
    return [barcode.text for barcode in zxingcpp.read_barcodes(image)]


def recording_browser(tmp_path: Path) -> tuple[str, Path]:
    """A BROWSER command that writes the URL it is asked to open into a file."""
    record = tmp_path / "opened.txt"
    script = tmp_path / "browser.py"
    script.write_text(
        f"import sys, pathlib\npathlib.Path({str(record)!r}).write_text(sys.argv[1])\n",
        encoding="utf-8",
    )
    return f"{sys.executable} {script} %s", record


def test_the_qr_code_scans_to_the_complete_uri(cli_env):
    terminal = spawn_in_terminal(["login", "--no-browser"], cli_env)
    uri = terminal.wait_for_complete_uri()
    terminal.child.expect("Waiting for approval", timeout=30)
    terminal.transcript.append(terminal.child.before)
    terminal.child.sendintr()
    code, out = terminal.finish(timeout=30)

    assert code == 130, out
    assert decode_terminal_qr(out) == [uri]


def test_no_qr_shows_no_code_block(cli_env):
    terminal = spawn_in_terminal(["login", "--no-browser", "--no-qr"], cli_env)
    terminal.wait_for_complete_uri()
    terminal.child.expect("Waiting for approval", timeout=30)
    terminal.transcript.append(terminal.child.before)
    terminal.child.sendintr()
    code, out = terminal.finish(timeout=30)

    assert code == 130, out
    assert "▄▄▄▄▄" not in out


def test_the_countdown_runs_down_to_the_codes_expiry(cli_env):
    terminal = spawn_in_terminal(["login", "--no-browser", "--no-qr"], cli_env)
    terminal.wait_for_complete_uri()
    seen = set()
    deadline = time.monotonic() + 20
    while len(seen) < 3 and time.monotonic() < deadline:
        terminal.child.expect(COUNTDOWN, timeout=10)
        minutes, seconds = terminal.child.match.groups()
        seen.add(int(minutes) * 60 + int(seconds))
    terminal.child.sendintr()
    code, _ = terminal.finish(timeout=30)

    assert code == 130
    assert len(seen) >= 3, seen
    # The realm's device codes live 600 s; the countdown starts near that and falls.
    assert 540 <= max(seen) <= 600, seen
    assert min(seen) < max(seen)


@pytest.mark.parametrize(
    ("flag", "display", "opens"),
    [
        (None, ":99", True),  # default: a display means a browser can be shown
        (None, None, False),  # default: no display, nothing to open
        ("--no-browser", ":99", False),
        ("--browser", None, True),  # asked for explicitly
    ],
)
def test_the_browser_is_opened_with_the_complete_uri_only_when_it_should_be(
    cli_env, tmp_path, flag, display, opens
):
    browser, record = recording_browser(tmp_path)
    env = {**cli_env, "BROWSER": browser}
    if display:
        env["DISPLAY"] = display
    terminal = spawn_in_terminal(["login", "--no-qr", *([flag] if flag else [])], env)
    uri = terminal.wait_for_complete_uri()
    terminal.child.expect("Waiting for approval", timeout=30)
    terminal.child.sendintr()
    code, out = terminal.finish(timeout=30)

    assert code == 130, out
    if opens:
        assert record.read_text(encoding="utf-8") == uri
    else:
        assert not record.exists()


def test_a_full_login_shows_url_code_and_panel(cli_env, approve):
    terminal = spawn_in_terminal(["login", "--no-browser", "--no-qr"], cli_env)
    uri = terminal.wait_for_complete_uri()
    approve(uri)
    code, out = terminal.finish()

    assert code == 0, out
    user_code = uri.rsplit("=", 1)[1]
    assert re.search(r"│\s*Code\s+" + re.escape(user_code), out), out
    lines = [line.strip() for line in out.replace("\r", "").splitlines()]
    assert uri.split("?")[0] in lines  # the verification URI, a whole line to copy
    assert uri in lines
    assert "Logged in as demo" in out
