"""Who is asking: the bearer token of an API request (the portal adds session login)."""

from __future__ import annotations

from flask import g, request

from web.db import get_db
from workflow.errors import NotAuthenticated
from workflow.models import User
from workflow.users import user_for_token


def bearer_token() -> str | None:
    """Return the token of an `Authorization: Bearer …` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def api_user() -> User:
    """Return the active user of the request's bearer token, or raise NotAuthenticated (401)."""
    cached = g.get("api_user")
    if cached is not None:
        user: User = cached
        return user
    token = bearer_token()
    found = user_for_token(get_db(), token) if token else None
    if found is None:
        raise NotAuthenticated("未登录或令牌无效", code="not_authenticated")
    g.api_user = found
    return found
