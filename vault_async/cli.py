"""`vault-async`: command-line entry points."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from .devstack import DevStack, DevStackError


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into the same orderly exit as Ctrl-C."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _write_env_file(path: Path, env: dict[str, str]) -> None:
    """Write KEY=value lines readable by the owner only (the file holds tokens)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.writelines(f"{key}={value}\n" for key, value in env.items())


def run_devstack(args: argparse.Namespace) -> int:
    """Run the dev stack in the foreground until Ctrl-C or SIGTERM."""
    _stop_on_sigterm()
    env_file: Path | None = args.env_file
    try:
        with DevStack(db_ttl=args.db_ttl, db_max_ttl=args.db_max_ttl) as stack:
            env = stack.env()
            env["DEVSTACK_DB_STATIC_ROLE"] = stack.static_role
            if env_file is not None:
                _write_env_file(env_file, env)
            print("# vault-async dev stack is up; Ctrl-C stops it and removes its data.")
            if env_file is not None:
                print(f"# environment written to {env_file} (use: set -a; . {env_file}; set +a)")
            for key, value in env.items():
                print(f"{key}={value}")
            sys.stdout.flush()
            threading.Event().wait()  # until KeyboardInterrupt
    except KeyboardInterrupt:
        print("# dev stack stopped", file=sys.stderr)
    except DevStackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if env_file is not None:
            env_file.unlink(missing_ok=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vault-async")
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser(
        "devstack", help="run a real OpenBao + PostgreSQL on loopback for local development"
    )
    dev.add_argument("--env-file", type=Path, help="also write the environment to this file")
    dev.add_argument("--db-ttl", default="1h", help="default TTL of database credentials")
    dev.add_argument("--db-max-ttl", default="24h", help="max TTL of database credentials")
    dev.set_defaults(handler=run_devstack)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
