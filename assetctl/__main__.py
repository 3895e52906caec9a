"""Entry point for `assetctl` and `python -m assetctl`."""

import sys


def main() -> None:
    try:
        from .cli.app import main as run
    except KeyboardInterrupt:  # Ctrl-C while still importing
        print("assetctl: error: interrupted", file=sys.stderr)
        sys.exit(130)
    code = run()
    sys.exit(_flushed(code))


def _flushed(code: int) -> int:
    """Flush stdout here, not at interpreter exit, where a reader that left early
    (`assetctl --version | true`) turned a success into exit 1 with no word."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        from .cli.output import silence

        silence(sys.stdout)  # what is still buffered goes nowhere, quietly
    except OSError as exc:  # a full disk behind `> file`
        print(
            f"assetctl: error: cannot write the output: {exc.strerror}", file=sys.stderr
        )
        return 1 if code == 0 else code
    return code


if __name__ == "__main__":
    main()
