"""``python -m app [--host 127.0.0.1] [--port 8000] [--dev]``: serve the reference service."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from types import FrameType

import uvicorn
from sqlalchemy import text

from ._startup_errors import cannot_listen, explain
from .settings import Settings, check_credential_files, load_settings

logger = logging.getLogger("app")

ROOT = Path(__file__).resolve().parent.parent


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--dev", action="store_true",
        help="start OpenBao and PostgreSQL in-process, apply the migrations, then serve",
    )
    return parser.parse_args(argv)


def migrate() -> None:
    """``alembic upgrade head`` with the current environment."""
    from alembic.config import Config

    from alembic import command

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    command.upgrade(config, "head")


def _ignore_signal(signum: int, frame: FrameType | None) -> None:
    """Placeholder restored by uvicorn after it handled a signal; the shutdown is ours."""


async def serve(
    settings: Settings, host: str, port: int, sock: socket.socket | None = None
) -> None:
    """Open the runtime (fail fast with one line), serve, then shut down in order."""
    from .db import open_service_runtime
    from .main import create_app

    async with open_service_runtime(settings) as runtime:
        async with runtime.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        config = uvicorn.Config(
            create_app(settings, runtime=runtime), host=host, port=port,
            log_level=settings.log_level.lower(), timeout_graceful_shutdown=3, lifespan="on",
        )
        # uvicorn re-raises the signal it caught once it returns; make that a no-op so the
        # runtime below still closes the pool and revokes the leases and the token.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _ignore_signal)
        await uvicorn.Server(config).serve(sockets=None if sock is None else [sock])
        logger.info("app.shutdown", extra={"stage": "revoking"})


def _listen(host: str, port: int) -> socket.socket:
    """Bind the listening socket first: a port in use fails before Vault is asked."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def run(host: str, port: int) -> int:
    """Serve until stopped; a failed start prints one line and returns its exit code."""
    settings: Settings | None = None
    try:
        settings = load_settings()
        logging.getLogger().setLevel(settings.log_level)
        check_credential_files(settings)
        try:
            sock = _listen(host, port)
        except OSError as error:
            failure = cannot_listen(host, port, error)
            print(failure.line, file=sys.stderr)
            return failure.code
        with sock:
            asyncio.run(serve(settings, host, port, sock))
    except KeyboardInterrupt:
        return 0
    except Exception as error:
        failure = explain(error, settings)
        print(failure.line, file=sys.stderr)
        return failure.code
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not args.dev:
        return run(args.host, args.port)
    from vault_async.devstack import DevStack

    with DevStack() as stack:
        os.environ.update(stack.env())
        print(f"dev stack: Vault at {stack.vault_addr}, PostgreSQL at {stack.database_url}")
        migrate()
        return run(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
