"""A Flask + Flask-SQLAlchemy service on short-lived Vault database credentials.

Run it against the dev stack (from the repository's root)::

    vault-async devstack --env-file .devstack.env     # in one terminal
    set -a; . ./.devstack.env; set +a; python -m examples.flask_app   # in another

The lease engine runs on its own thread (``vault_async.sync``); Flask-SQLAlchemy's engine is
bound to its credential (``vault_async.sqlalchemy_sync``), so every request runs on a login
that is renewed, rotated and revoked behind the application's back.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Flask, abort, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from vault_async.sqlalchemy_sync import SyncEngineBinding, bind_engine
from vault_async.sync import SyncCredentialSource

__all__ = ["User", "create_app", "db"]


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class User(db.Model):  # type: ignore[name-defined,misc]
    """The reference service's ``users`` table (its migrations create it)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "email": self.email}


def create_app(
    database_url: str,
    credentials: SyncCredentialSource,
    *,
    assume_role: str | None = None,
    engine_options: dict[str, Any] | None = None,
) -> tuple[Flask, SyncEngineBinding]:
    """The app and its engine binding (``binding.detach()`` then ``db.engine.dispose()``)."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        "pool_size": 10, "max_overflow": 0, "pool_timeout": 10, **(engine_options or {}),
    }
    db.init_app(app)
    with app.app_context():
        binding = bind_engine(db.engine, credentials, assume_role=assume_role)

    @app.get("/healthz")
    def healthz() -> Any:
        db.session.execute(select(1))
        return {"status": "ok", "generation": credentials.current().generation}

    @app.get("/users/<int:user_id>")
    def get_user(user_id: int) -> Any:
        user = db.session.get(User, user_id)
        if user is None:
            abort(404)
        return user.as_json()

    @app.get("/users")
    def list_users() -> Any:
        limit = min(max(request.args.get("limit", 20, type=int) or 20, 1), 100)
        users = db.session.scalars(select(User).order_by(User.id).limit(limit))
        return jsonify([user.as_json() for user in users])

    @app.post("/users")
    def create_user() -> Any:
        body = request.get_json(silent=True) or {}
        username, email = body.get("username"), body.get("email")
        if not isinstance(username, str) or not isinstance(email, str):
            abort(422)
        user = User(username=username[:64], email=email[:254])
        db.session.add(user)
        db.session.commit()
        return user.as_json(), 201

    return app, binding
