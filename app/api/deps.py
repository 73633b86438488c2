"""Dependency aliases for the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from vault_async.fastapi import get_session

__all__ = ["SessionDep"]

# scope="function": the session commits before the response is sent. With the default
# ("request") FastAPI runs the commit after the client already has its 201, so a failed
# commit would lose a write the client was told had succeeded.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
