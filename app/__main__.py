"""``python -m app [--host 127.0.0.1] [--port 8000] [--dev [--db-ttl 30s] [--db-max-ttl 2m]]``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from . import _devmode
from ._startup_errors import cannot_listen, explain
from .logging_setup import configure_logging
from .settings import ENVIRONMENT, Settings, check_credential_files, load_settings

logger = logging.getLogger("app")

ROOT = Path(__file__).resolve().parent.parent


def _environment_help() -> str:
    width = max(len(name) for name, _ in ENVIRONMENT)
    rows = [f"  {name:<{width}}  {meaning}" for name, meaning in ENVIRONMENT]
    return "\n".join(["environment variables:", *rows])


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description=__doc__,
        epilog=_environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--dev", action="store_true",
        help="start OpenBao and PostgreSQL in-process, apply the migrations, then serve",
    )
    _devmode.add_arguments(parser)
    args = parser.parse_args(argv)
    _devmode.check_arguments(parser, args)
    return args


def migrate(env: Mapping[str, str] | None = None) -> None:
    """``alembic upgrade head`` with the current environment, ``env`` set only while it runs."""
    from alembic.config import Config

    from alembic import command

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    saved = {key: os.environ.get(key) for key in env or {}}
    os.environ.update(env or {})
    try:
        command.upgrade(config, "head")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _ignore_signal(signum: int, frame: FrameType | None) -> None:
    """Placeholder restored by uvicorn after it handled a signal; the shutdown is ours."""


async def serve(
    settings: Settings, host: str, port: int, sock: socket.socket | None = None
) -> None:
    """Open the runtime (fail fast with one line), serve, then shut down in order."""
    import uvicorn
    from sqlalchemy import text

    from .db import open_service_runtime
    from .main import create_app

    async with open_service_runtime(settings) as runtime:
        async with runtime.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        config = uvicorn.Config(
            create_app(settings, runtime=runtime), host=host, port=port,
            log_level=settings.log_level.lower(), timeout_graceful_shutdown=3, lifespan="on",
            log_config=None,  # uvicorn's records go through the service's handler and format
        )
        # uvicorn re-raises the signal it caught once it returns; make that a no-op so the
        # runtime below still closes the pool and revokes the leases and the token.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _ignore_signal)
        # uvicorn names a socket it was given by its tuple; say where to send requests.
        logger.info("app.serving", extra={"url": f"http://{host}:{port}"})
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
    configure_logging(os.environ)
    if not args.dev:
        return run(args.host, args.port)
    return _devmode.run_dev(args, migrate=migrate, serve=run)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before any handler of ours was in place: nothing to clean up
        sys.exit(0)
