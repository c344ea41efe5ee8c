"""Tokens and the current user: POST/GET /tokens, DELETE /tokens/{id}, GET /me."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from sqlalchemy import select

from web.api import schemas as s
from web.api.blueprint import bp
from web.api.common import (
    MAX_ID,
    decode_cursor,
    encode_cursor,
    iso,
    json_response,
    query_limit,
    user_body,
)
from web.api.contract import contract, parse_body
from web.auth import api_user
from web.db import get_db
from web.errors import error_response
from web.limits import sign_in
from workflow.errors import TooManyAttempts
from workflow.models import ApiToken
from workflow.users import issue_token, revoke_token


def token_body(row: ApiToken) -> dict[str, Any]:
    """Return a token's metadata (never the token itself)."""
    return {
        "id": row.id,
        "name": row.name,
        "created_at": iso(row.created_at),
        "expires_at": iso(row.expires_at),
        "revoked_at": iso(row.revoked_at),
    }


@bp.post("/tokens")
@contract(
    "tokens",
    body=s.TokenRequest,
    ok={201: (s.TokenCreated, "The token (shown once) and the user.")},
    errors=(401, 403, 413, 415, 429),
    public=True,
)
def create_token() -> Response:
    """Check a username and password (Argon2) and issue a bearer token; 429 when brute-forced."""
    asked = parse_body(s.TokenRequest)
    username, password, name = asked.username, asked.password, asked.name or ""
    db = get_db()
    try:
        user = sign_in(db, username, password, channel="api", name_disabled=False)
    except TooManyAttempts as exc:
        response = error_response(429, "too_many_attempts", "尝试次数过多，请稍后再试")
        response.headers["Retry-After"] = str(exc.detail)
        return response
    token, row = issue_token(db, user, name=name, days=int(current_app.config["TOKEN_DAYS"]))
    body = {
        "token": token,
        "token_id": row.id,
        "expires_at": iso(row.expires_at),
        "user": user_body(user),
    }
    return json_response(body, 201)


@bp.get("/tokens")
@contract("tokens", query=s.Page, ok={200: (s.TokenList, "The tokens, oldest first.")})
def list_tokens() -> Response:
    """List the caller's own tokens (metadata only), oldest first."""
    user = api_user()
    limit = query_limit()
    after = decode_cursor("token") or 0
    rows = list(
        get_db()
        .execute(
            select(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.id > after)
            .order_by(ApiToken.id)
            .limit(limit + 1)
        )
        .scalars()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor("token", rows[-1].id) if more and rows else None
    return json_response({"tokens": [token_body(r) for r in rows], "next_cursor": next_cursor})


@bp.delete(f"/tokens/<int(max={MAX_ID}):token_id>")
@contract("tokens", ok={204: (None, "Revoked.")}, errors=(404,))
def delete_token(token_id: int) -> Response:
    """Revoke a token: its owner or an admin may; anyone else gets a 404."""
    user = api_user()
    db = get_db()
    revoke_token(db, token_id, actor=user)
    return Response(status=204)


@bp.get("/me")
@contract("tokens", ok={200: (s.Me, "The caller.")})
def me() -> Response:
    """Return the caller: username, roles, department."""
    user = api_user()
    return json_response(user_body(user))
