"""Liveness, readiness and metrics: the library's routers."""

from __future__ import annotations

from fastapi import APIRouter

from vault_async.fastapi import health_router, metrics_router

__all__ = ["router"]

router = APIRouter()
router.include_router(health_router())
router.include_router(metrics_router())
