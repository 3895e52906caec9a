"""Entry point for `assetctl` and `python -m assetctl`."""

import sys


def main() -> None:
    try:
        from .cli.app import main as run
    except KeyboardInterrupt:  # Ctrl-C while still importing
        print("assetctl: error: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(run())


if __name__ == "__main__":
    main()
