"""Build the FastAPI application; the Vault client and engine are started by the lifespan."""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from vault_async.fastapi import VaultRuntime, add_database_error_handlers, vault_lifespan

from .api.routes import health, users
from .db import open_service_runtime
from .limits import BodyLimit, BodySizeLimit
from .settings import DEFAULT_MAX_REQUEST_BODY_BYTES, Settings, load_settings

__all__ = ["app", "create_app"]


INPUT_PREFIX = 100
"""A 422 shows at most this many characters of a rejected string, and no other input."""


def _bounded(error: dict[str, object]) -> dict[str, object]:
    """One validation error without the raw input: a short prefix of a string, else nothing."""
    shown = {key: value for key, value in error.items() if key != "input"}
    value = error.get("input")
    if isinstance(value, str):
        shown["input"] = value[:INPUT_PREFIX]
    return shown


def _unprocessable(errors: Sequence[dict[str, object]]) -> Response:
    detail = [_bounded(e) for e in errors]
    body = json.dumps({"detail": jsonable_encoder(detail)}, ensure_ascii=True)
    return Response(body, status_code=422, media_type="application/json")


async def validation_error(request: Request, error: Exception) -> Response:
    """422 with the errors as ASCII JSON (any input, even lone surrogates, can be shown).

    The input is cut to a prefix: an answer never grows with what the client sent.
    """
    errors = error.errors() if isinstance(error, RequestValidationError) else []
    return _unprocessable([dict(e) for e in errors])


async def http_error(request: Request, error: Exception) -> Response:
    """FastAPI's answer, except that a body that is not UTF-8 is a 422 like any bad JSON.

    FastAPI answers a JSON body it cannot decode as UTF-8 with a bare 400; a client then
    sees two shapes for one mistake.
    """
    cause = error.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return _unprocessable([{
            "type": "json_invalid",
            "loc": ["body", cause.start],
            "msg": "JSON decode error",
            "ctx": {"error": f"not valid UTF-8 ({cause.reason})"},
        }])
    assert isinstance(error, HTTPException)
    return await http_exception_handler(request, error)


def create_app(
    settings: Settings | None = None, *, runtime: VaultRuntime | None = None
) -> FastAPI:
    """The application. With ``runtime`` the caller owns start-up and shutdown of Vault and DB.

    Without it, the lifespan reads the settings (from the environment unless given) and
    opens the runtime itself, so ``uvicorn app.main:app`` works too.
    """
    limit = BodyLimit(
        settings.max_request_body_bytes if settings else DEFAULT_MAX_REQUEST_BODY_BYTES
    )
    if runtime is not None:
        given = runtime
        lifespan = vault_lifespan(lambda: nullcontext(given))
    else:

        def open_from_settings() -> AbstractAsyncContextManager[VaultRuntime]:
            loaded = settings or load_settings()
            limit.max_bytes = loaded.max_request_body_bytes
            return open_service_runtime(loaded)

        lifespan = vault_lifespan(open_from_settings)
    application = FastAPI(title="vault-async reference service", lifespan=lifespan)
    application.add_middleware(BodySizeLimit, limit=limit)
    add_database_error_handlers(application)
    application.add_exception_handler(RequestValidationError, validation_error)
    application.add_exception_handler(HTTPException, http_error)
    application.include_router(health.router)
    application.include_router(users.router)
    return application


app = create_app()
