"""``python -m examples.flask_app``: serve the Flask example from the environment.

Reads the dev stack's environment (``vault-async devstack --env-file PATH`` writes it):
``VAULT_ADDR`` and the ``VAULT_*`` client and auth settings, ``DATABASE_URL`` (any
``postgresql+driver://`` URL, without credentials), ``VAULT_DB_ROLE`` (or
``VAULT_DB_STATIC_ROLE``), ``VAULT_DB_MOUNT`` (default ``database``), ``DB_ASSUME_ROLE``
(default none), ``HOST`` (default 127.0.0.1) and ``PORT`` (default 5000). SIGTERM or Ctrl-C
stops it; the leases and the login token are revoked on the way out.
"""

from __future__ import annotations

import logging
import os
import sys

from werkzeug.serving import make_server

from vault_async.sqlalchemy_sync import psycopg_url
from vault_async.sync import StartupError, start

from . import create_app, db


def setting(name: str, default: str | None = None) -> str:
    value = os.environ.get(name) or default
    if value is None:
        raise SystemExit(f"error: {name} is not set (the dev stack's env file sets it)")
    return value


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    static_role = os.environ.get("VAULT_DB_STATIC_ROLE")
    role = static_role or setting("VAULT_DB_ROLE")
    url = psycopg_url(setting("DATABASE_URL")).render_as_string(hide_password=False)
    host, port_text = setting("HOST", "127.0.0.1"), setting("PORT", "5000")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SystemExit(f"error: PORT must be a port number, got {port_text!r}")
    try:
        runtime = start(
            db_role=role, db_mount=setting("VAULT_DB_MOUNT", "database"),
            static=static_role is not None, handle_sigterm=True,
        )
    except StartupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    with runtime:
        app, binding = create_app(
            url, runtime.credentials, assume_role=os.environ.get("DB_ASSUME_ROLE") or None
        )
        server = make_server(host, int(port_text), app, threaded=True)
        print(f"serving on http://{host}:{server.server_port}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            binding.detach()
            with app.app_context():
                db.engine.dispose()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
