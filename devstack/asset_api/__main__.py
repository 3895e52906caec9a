"""Run the asset API under waitress until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

import waitress

from .app import create_app
from .config import parse_settings

log = logging.getLogger("asset_api")


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_settings(argv)
    logging.basicConfig(
        level=settings.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = create_app(settings)
    server = waitress.create_server(
        app, host=settings.host, port=settings.port, threads=settings.threads
    )

    # Tests and the stack launcher wait for this line; with --port 0 it is
    # the only place the chosen port shows.
    port = getattr(server, "effective_port", settings.port)
    log.info("asset-api listening on http://%s:%s", settings.host, port)
    signal.signal(signal.SIGTERM, stop)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        log.info("asset-api stopped")
    return 0


def stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
