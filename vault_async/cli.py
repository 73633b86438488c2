"""`vault-async`: command-line entry points."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from ._config import check_namespace
from ._exceptions import InvalidConfig
from .devstack import DevStack, DevStackError
from .devstack._envfile import EnvFile, check_target, write_env_file
from .devstack._errors import EnvFileError

EXIT_BAD_ARGUMENTS = 2
_SECRET_KEY_PARTS = ("TOKEN", "SECRET", "PASSWORD")


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into the same orderly exit as Ctrl-C."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def is_secret(key: str, value: str) -> bool:
    """Tokens, secret IDs, passwords, and URLs that carry a password."""
    if any(part in key.upper() for part in _SECRET_KEY_PARTS):
        return True
    try:
        return urllib.parse.urlsplit(value).password is not None
    except ValueError:
        return False


def migration_env_file(env_file: Path) -> Path:
    """Where the migrations' environment goes: beside the service's, ``<env-file>.migrate``."""
    return env_file.with_name(env_file.name + ".migrate")


def _print_env(env: dict[str, str], env_file: Path | None, show_secrets: bool) -> None:
    """The environment on stdout, secrets only with --show-secrets; the ready line comes last."""
    hidden = [key for key, value in env.items() if is_secret(key, value)]
    for key, value in env.items():
        if show_secrets or key not in hidden:
            print(f"{key}={value}")
    if hidden and not show_secrets:
        names = ", ".join(hidden)
        if env_file is not None:
            print(f"# not shown here: {names} (in {env_file}; --show-secrets prints them)")
        else:
            print(f"# not shown: {names}; rerun with --env-file PATH or --show-secrets to get them")
    if env_file is not None:
        print(f"# environment written to {env_file} (mode 0600; use: set -a; . {env_file}; set +a)")
        migrate = migration_env_file(env_file)
        print(
            f"# migrations' own login written to {migrate} (mode 0600; use: "
            f"(set -a; . {migrate}; alembic upgrade head))"
        )
    else:
        print("# migrations log in on their own AppRole: --env-file PATH writes it to PATH.migrate")
    print("# vault-async dev stack is up; Ctrl-C stops it and removes its data.")
    sys.stdout.flush()


def run_devstack(args: argparse.Namespace) -> int:
    """Run the dev stack in the foreground until Ctrl-C or SIGTERM."""
    env_file: Path | None = args.env_file
    written: list[EnvFile] = []
    try:
        if env_file is not None:
            for path in (env_file, migration_env_file(env_file)):
                check_target(path)  # before the stack starts: a bad path fails fast
        _stop_on_sigterm()
        with DevStack(
            db_ttl=args.db_ttl, db_max_ttl=args.db_max_ttl, nodes=args.nodes,
            namespace=args.namespace,
        ) as stack:
            # The service logs in by AppRole; the root token is here for `bao` in that shell.
            env = stack.env() | {"VAULT_TOKEN": stack.root_token}
            env["DEVSTACK_DB_STATIC_ROLE"] = stack.static_role
            if env_file is not None:
                stack.own_file(env_file.absolute())  # noted first: a SIGKILL leaves no orphan
                written.append(write_env_file(env_file, env))
                migrate = migration_env_file(env_file)
                stack.own_file(migrate.absolute())
                written.append(write_env_file(migrate, stack.migration_env()))
            if args.nodes > 1:
                print(f"# OpenBao nodes: {' '.join(stack.vault_addrs)}")
            if stack.namespace is not None:
                print(f"# configured inside OpenBao namespace {stack.namespace} (VAULT_NAMESPACE)")
            _print_env(env, env_file, args.show_secrets)
            threading.Event().wait()  # until KeyboardInterrupt
    except KeyboardInterrupt:
        print("# dev stack stopped", file=sys.stderr)
    except EnvFileError as exc:
        print(f"error: --env-file {exc.reason}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    except DevStackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for done in written:
            done.remove()
    return 0


def _node_count(text: str) -> int:
    """--nodes: a whole number of OpenBao nodes, 1 or more."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of nodes (1 or more)")
    return count


def _namespace(text: str) -> str:
    """--namespace: an OpenBao namespace path such as team-a or team-a/app."""
    try:
        return check_namespace(text, "--namespace")
    except InvalidConfig as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vault-async")
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser(
        "devstack", help="run a real OpenBao + PostgreSQL on loopback for local development"
    )
    dev.add_argument(
        "--env-file", type=Path, metavar="PATH",
        help=(
            "write the service's environment, secrets included, to PATH, and the migrations' "
            "(their own AppRole login, for alembic upgrade head) to PATH.migrate; both mode "
            "0600, removed on exit, or by the next dev stack to start if this one was killed"
        ),
    )
    dev.add_argument(
        "--show-secrets", action="store_true",
        help="also print VAULT_TOKEN and VAULT_SECRET_ID on stdout (default: not printed)",
    )
    dev.add_argument("--db-ttl", default="1h", help="default TTL of database credentials")
    dev.add_argument("--db-max-ttl", default="24h", help="max TTL of database credentials")
    dev.add_argument(
        "--nodes", type=_node_count, default=1, metavar="N",
        help=(
            "run N OpenBao nodes as one raft cluster (VAULT_ADDR is the first node's; "
            "default 1: one dev-mode server)"
        ),
    )
    dev.add_argument(
        "--namespace", type=_namespace, metavar="NAME",
        help=(
            "create this OpenBao namespace (team-a, or nested: team-a/app) and configure the "
            "database engine, AppRole and KV inside it instead of at the root; the "
            "environment then carries VAULT_NAMESPACE"
        ),
    )
    dev.set_defaults(handler=run_devstack)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
