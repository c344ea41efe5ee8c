"""Who is asking: the bearer token of an API request (the portal adds session login)."""

from __future__ import annotations

from flask import g, request

from web.db import get_db
from workflow.errors import NotAuthenticated
from workflow.models import User
from workflow.users import token_refusal, user_for_token


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
        # The code stays `not_authenticated` (the contract's 401); the message says what to do.
        reason = token_refusal(get_db(), token) if token else None
        if reason == "expired":
            raise NotAuthenticated("API 令牌已过期，请重新申请令牌", code="not_authenticated")
        if reason == "revoked":
            raise NotAuthenticated("API 令牌已被撤销，请重新申请令牌", code="not_authenticated")
        raise NotAuthenticated("未登录或令牌无效", code="not_authenticated")
    g.api_user = found
    return found
