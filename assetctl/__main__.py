"""Entry point for `assetctl` and `python -m assetctl`."""

import sys


def main() -> None:
    from .cli.app import main as run

    sys.exit(run())


if __name__ == "__main__":
    main()
