"""Dependency aliases for the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from vault_async.fastapi import get_session

__all__ = ["SessionDep"]

SessionDep = Annotated[AsyncSession, Depends(get_session)]
