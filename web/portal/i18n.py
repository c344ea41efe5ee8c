"""Languages: Simplified Chinese by default, English on request (Flask-Babel).

Messages are written in Chinese in the templates and code (the msgid); the English catalog is
`translations/en/LC_MESSAGES/messages.po`, compiled to `.mo` with
`pybabel compile -d web/portal/translations` (see README.md). Chinese needs no catalog.
The choice is kept in a `lang` cookie, so it survives signing in and out.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, redirect, request
from flask.typing import ResponseReturnValue
from flask_babel import Babel

from web.portal.auth import safe_next

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
LANGUAGES = {"zh": "中文", "en": "English"}
COOKIE = "lang"

babel = Babel()
bp = Blueprint("i18n", __name__)


def select_locale() -> str | None:
    """Return `en` when the user chose English; None means the default (Chinese)."""
    return "en" if request.cookies.get(COOKIE) == "en" else None


def current_language() -> str:
    """Return the language code the page is shown in (`zh` or `en`)."""
    return "en" if select_locale() == "en" else "zh"


@bp.post("/language")
def set_language() -> ResponseReturnValue:
    """Switch the interface language and go back to the page the user was on."""
    lang = request.form.get("lang", "zh")
    response = redirect(safe_next(request.form.get("next")) or "/", code=303)
    response.set_cookie(
        COOKIE,
        "en" if lang == "en" else "zh",
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="Lax",
    )
    return response


def init_i18n(app: Flask) -> None:
    """Set up Flask-Babel with the portal's catalogs and the language switch."""
    babel.init_app(
        app,
        default_locale=app.config.get("BABEL_DEFAULT_LOCALE", "zh_Hans_CN"),
        default_translation_directories=str(TRANSLATIONS),
        locale_selector=select_locale,
    )
    app.register_blueprint(bp)
