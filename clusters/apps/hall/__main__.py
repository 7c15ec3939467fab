"""``python3 -m hall`` (on a hall host) or ``python -m clusters.apps.hall`` (from the repo).

Commands::

    serve                       run the HTTP service (settings from HALL_* variables)
    migrate                     apply the schema migrations (idempotent)
    seed PLAN.json              upsert sites, departments and guides from a seed plan
    staff-token --staff NAME --site CODE --roles clerk,backoffice [--days N]
                                issue a local staff token (printed once)

Exit codes: 0 success, 1 an operation failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from . import schema
from .app import Config, Problem, build, install_loop, issue_staff_token
from .auth import STAFF_ROLES
from .seed import seed


def _fail(message: str, code: int) -> int:
    print(f"hall: error: {message}", file=sys.stderr)
    return code


async def _connect(config: Config) -> Any:
    import asyncpg

    return await asyncpg.connect(config.dsn, **config.db_options())


async def _migrate(config: Config) -> list[int]:
    conn = await _connect(config)
    try:
        return await schema.migrate(conn)
    finally:
        await conn.close()


async def _seed(config: Config, plan: dict[str, Any]) -> dict[str, int]:
    conn = await _connect(config)
    try:
        await schema.migrate(conn)
        return await seed(conn, plan)
    finally:
        await conn.close()


async def _staff_token(config: Config, staff: str, roles: list[str], site: str, days: int) -> str:
    import asyncpg

    pool = await asyncpg.create_pool(config.dsn, min_size=1, max_size=1, **config.db_options())
    try:
        return await issue_staff_token(pool, staff, roles, site, days)
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hall", description="the online service hall")
    parser.add_argument("--dsn", help="PostgreSQL DSN (default: $HALL_DSN)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="listen address (default: $HALL_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default: $HALL_PORT or 8080)")
    sub.add_parser("migrate", help="apply the schema migrations")
    p_seed = sub.add_parser("seed", help="seed the catalog from a seed plan (JSON)")
    p_seed.add_argument("plan", help="the seed plan file")
    p_tok = sub.add_parser("staff-token", help="issue a local staff token")
    p_tok.add_argument("--staff", required=True)
    p_tok.add_argument("--site", required=True)
    p_tok.add_argument("--roles", required=True, help=f"comma-separated: {sorted(STAFF_ROLES)}")
    p_tok.add_argument("--days", type=int, default=30)
    args = parser.parse_args(argv)

    try:
        config = Config.from_env()
    except ValueError as exc:
        return _fail(str(exc), 2)
    if args.dsn:
        config.dsn = args.dsn
    if args.command == "serve":
        try:
            install_loop(config.loop)
        except ValueError as exc:
            return _fail(str(exc), 2)
    try:
        if args.command == "serve":
            from aiohttp import web

            host = args.host or config.host
            port = args.port or config.port
            web.run_app(
                build(config),
                host=host,
                port=port,
                ssl_context=config.server_ssl,
                access_log=None,
                print=None,
            )
            return 0
        if args.command == "migrate":
            applied = asyncio.run(_migrate(config))
            print(json.dumps({"applied": applied, "schema": schema.LATEST}))
            return 0
        if args.command == "seed":
            try:
                with open(args.plan, encoding="utf-8") as fh:
                    plan = json.load(fh)
            except (OSError, json.JSONDecodeError) as exc:
                return _fail(f"{args.plan}: {exc}", 2)
            try:
                counts = asyncio.run(_seed(config, plan))
            except ValueError as exc:
                return _fail(f"{args.plan}: {exc}", 2)
            print(json.dumps(counts))
            return 0
        if args.command == "staff-token":
            roles = [r.strip() for r in args.roles.split(",") if r.strip()]
            bad = [r for r in roles if r not in STAFF_ROLES]
            if bad or not roles:
                return _fail(f"--roles: unknown {bad}; expected some of {sorted(STAFF_ROLES)}", 2)
            try:
                print(asyncio.run(_staff_token(config, args.staff, roles, args.site, args.days)))
            except Problem as p:
                return _fail(p.message, 2)
            return 0
    except OSError as exc:
        return _fail(f"cannot reach the database or bind the port: {exc}", 1)
    except Exception as exc:
        if type(exc).__module__.startswith("asyncpg"):
            return _fail(f"database: {exc}", 1)
        raise
    return 2


if __name__ == "__main__":
    sys.exit(main())
