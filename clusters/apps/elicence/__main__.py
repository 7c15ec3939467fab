"""``python3 -m elicence`` (on its host or pod) or ``python -m clusters.apps.elicence``.

Commands::

    serve                    run the HTTP service (settings from ELICENCE_* variables)
    migrate                  apply the schema migrations (idempotent)
    types TYPES.json         load the licence types (the spec's ``licences``) as data
    verify LICENCE.json KEYS.json
                             check a licence's seal offline against the issuer's public key

Exit codes: 0 success (verify: the seal holds), 1 an operation failed or the seal does not
hold, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from . import schema
from .seal import verify


def _fail(message: str, code: int) -> int:
    print(f"elicence: error: {message}", file=sys.stderr)
    return code


async def _with_conn(dsn: str, types: list[dict[str, str]] | None) -> Any:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        applied = await schema.migrate(conn)
        if types is None:
            return {"applied": applied, "schema": schema.LATEST}
        return {"types": await schema.load_types(conn, types)}
    finally:
        await conn.close()


def _read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="elicence", description="the e-licence library")
    parser.add_argument("--dsn", help="PostgreSQL DSN (default: $ELICENCE_DSN)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP service")
    sub.add_parser("migrate", help="apply the schema migrations")
    p_types = sub.add_parser("types", help="load the licence types from a JSON list")
    p_types.add_argument("file")
    p_verify = sub.add_parser("verify", help="verify a licence's seal offline")
    p_verify.add_argument("licence", help="a licence as served (payload and seal)")
    p_verify.add_argument("keys", help="the issuer's public key as /api/seal-keys serves it")
    args = parser.parse_args(argv)

    if args.command == "verify":
        try:
            licence, key = _read_json(args.licence), _read_json(args.keys)
            ok = verify(licence["payload"].encode(), licence["seal"], key)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return _fail(f"cannot read the licence or the key: {exc}", 2)
        print(json.dumps({"number": licence.get("number"), "seal": "valid" if ok else "INVALID"}))
        return 0 if ok else 1

    from .app import Config, build

    try:
        config = Config.from_env()
    except ValueError as exc:
        return _fail(str(exc), 2)
    if args.dsn:
        config.dsn = args.dsn
    try:
        if args.command == "serve":
            from aiohttp import web

            web.run_app(
                build(config), host=config.host, port=config.port, access_log=None, print=None
            )
            return 0
        types = None
        if args.command == "types":
            try:
                types = _read_json(args.file)
            except (OSError, ValueError) as exc:
                return _fail(f"{args.file}: {exc}", 2)
            if not isinstance(types, list):
                return _fail(f"{args.file}: expected a JSON list of licence types", 2)
        try:
            print(json.dumps(asyncio.run(_with_conn(config.dsn, types))))
        except (ValueError, KeyError) as exc:
            return _fail(f"{getattr(args, 'file', 'input')}: {exc}", 2)
        return 0
    except OSError as exc:
        return _fail(f"cannot reach the database or bind the port: {exc}", 1)
    except Exception as exc:
        if type(exc).__module__.startswith("asyncpg"):
            return _fail(f"database: {exc}", 1)
        raise


if __name__ == "__main__":
    sys.exit(main())
