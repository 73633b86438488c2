"""The `users` resource."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ...models import User
from ..deps import SessionDep
from ..responses import CONFLICT, NOT_FOUND, TOO_LARGE, UNAVAILABLE

__all__ = ["router"]

router = APIRouter(prefix="/users", tags=["users"], responses=UNAVAILABLE)


PG_INT_MAX = 2**31 - 1
"""``users.id`` is a PostgreSQL integer: larger ids cannot exist (and cannot be sent)."""

EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$"


class UserCreate(BaseModel):
    """Body of ``POST /users``."""

    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    email: str = Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN)

    @field_validator("email")
    @classmethod
    def _encodable(cls, value: str) -> str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text") from None
        return value


class UserOut(BaseModel):
    """A stored user."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    email: str
    created_at: dt.datetime


@router.post("", status_code=status.HTTP_201_CREATED, responses=CONFLICT | TOO_LARGE)
async def create_user(body: UserCreate, session: SessionDep) -> UserOut:
    user = User(username=body.username, email=body.email)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT, "username already exists") from None
    # The flush's INSERT ... RETURNING already loaded id and created_at (SQLAlchemy 2's
    # eager_defaults="auto"): no second round trip.
    return UserOut.model_validate(user)


@router.get("/{user_id}", responses=NOT_FOUND)
async def get_user(
    user_id: Annotated[int, Path(ge=1, le=PG_INT_MAX)], session: SessionDep
) -> UserOut:
    user = await session.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user")
    return UserOut.model_validate(user)


@router.get("")
async def list_users(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=PG_INT_MAX)] = 0,
) -> list[UserOut]:
    rows = await session.scalars(select(User).order_by(User.id).limit(limit).offset(offset))
    return [UserOut.model_validate(user) for user in rows]
