"""The ``driftrec`` console script's entry point, outside the ``driftrec`` package.

Importing anything from ``driftrec`` first imports the package (numpy, Gymnasium: about a
second, longer under load). A Ctrl-C in that second used to end in Python's traceback; here
it exits with code 130 and one line, like a Ctrl-C at any later moment (which
:func:`driftrec.experiments.cli.main` handles). This module must stay free of imports that
take time.
"""

from __future__ import annotations

import signal
import sys


def _interrupted() -> int:
    for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not break the exit
        signal.signal(sig, signal.SIG_IGN)
    print("driftrec: interrupted while starting; nothing was run", file=sys.stderr)
    return 130


def main() -> int:
    """Import the command line interface, then run it (see ``driftrec --help``)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # started with SIGINT ignored (``cmd &`` in a script): Python then installs no handler,
        # and a Ctrl-C in the import would be lost; the command obeys it later anyway
        # (driftrec.experiments.guard), so obey it from the start
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        from driftrec.experiments.cli import main as cli_main
    except KeyboardInterrupt:
        return _interrupted()
    try:
        return cli_main()
    except KeyboardInterrupt:  # only between the import and the command's own handling
        return _interrupted()


if __name__ == "__main__":
    sys.exit(main())
