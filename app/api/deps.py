"""Dependency aliases for the routes."""

from __future__ import annotations

from vault_async.fastapi import SessionDep

__all__ = ["SessionDep"]
