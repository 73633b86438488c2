"""Build the FastAPI application; the Vault client and engine are started by the lifespan."""

from __future__ import annotations

import json
from contextlib import nullcontext

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError

from vault_async.fastapi import VaultRuntime, add_database_error_handlers, vault_lifespan

from .api.routes import health, users
from .db import open_service_runtime
from .settings import Settings, load_settings

__all__ = ["app", "create_app"]


async def validation_error(request: Request, error: Exception) -> Response:
    """422 with the errors as ASCII JSON, so any input (even lone surrogates) can be echoed."""
    errors = error.errors() if isinstance(error, RequestValidationError) else []
    body = json.dumps({"detail": jsonable_encoder(errors)}, ensure_ascii=True)
    return Response(body, status_code=422, media_type="application/json")


def create_app(
    settings: Settings | None = None, *, runtime: VaultRuntime | None = None
) -> FastAPI:
    """The application. With ``runtime`` the caller owns start-up and shutdown of Vault and DB.

    Without it, the lifespan reads the settings (from the environment unless given) and
    opens the runtime itself, so ``uvicorn app.main:app`` works too.
    """
    if runtime is not None:
        given = runtime
        lifespan = vault_lifespan(lambda: nullcontext(given))
    else:
        lifespan = vault_lifespan(lambda: open_service_runtime(settings or load_settings()))
    application = FastAPI(title="vault-async reference service", lifespan=lifespan)
    add_database_error_handlers(application)
    application.add_exception_handler(RequestValidationError, validation_error)
    application.include_router(health.router)
    application.include_router(users.router)
    return application


app = create_app()
