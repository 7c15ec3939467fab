"""``python3 -m exchange`` (on its host or pod) or ``python -m clusters.apps.exchange``.

Commands::

    serve      run the HTTP service (settings from EXCHANGE_* variables)

Exit codes: 0 success, 1 an operation failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="exchange", description="the data-sharing exchange")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP service")
    parser.parse_args(argv)

    from aiohttp import web

    from .app import Config, build

    try:
        config = Config.from_env()
        app = build(config)
    except (ValueError, OSError) as exc:
        print(f"exchange: error: {exc}", file=sys.stderr)
        return 2
    try:
        web.run_app(app, host=config.host, port=config.port, access_log=None, print=None)
    except OSError as exc:
        print(
            f"exchange: error: cannot reach the database or bind the port: {exc}", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
