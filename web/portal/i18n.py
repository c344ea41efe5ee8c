"""Languages: Simplified Chinese by default, English on request (Flask-Babel).

Messages are written in Chinese in the templates and code (the msgid); the English catalog is
`translations/en/LC_MESSAGES/messages.po`, compiled to `.mo` with
`pybabel compile -d web/portal/translations` (see README.md). Chinese needs no catalog.
The choice is kept in a `lang` cookie, so it survives signing in and out. The JSON API
answers in Chinese unless the client sends `Accept-Language: en`.

Refusals of the engine and the store (`workflow/messages.py`) are rendered by
`translate_message`, installed as their translator: the same catalog serves the API and the
portal, and a message's parameters (item codes, figures) are kept in both languages.

Texts written once and read later (a background job's line, an inbox message) are kept as
their msgid and parameters beside the Chinese text (`workflow.messages.stored`); the pages
render them with `stored_text` in the reader's language.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, has_request_context, redirect, request
from flask.typing import ResponseReturnValue
from flask_babel import Babel, get_locale, get_translations
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from storage import errors as storage_errors
from web.portal.auth import safe_next
from workflow import messages

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
LANGUAGES = {"zh": "中文", "en": "English"}
COOKIE = "lang"

log = logging.getLogger(__name__)
babel = Babel()
bp = Blueprint("i18n", __name__)


def select_locale() -> str | None:
    """Return `en` when the user chose English; None means the default (Chinese).

    Pages follow the `lang` cookie; the JSON API follows `Accept-Language` (Chinese unless
    English is preferred).
    """
    if request.path.startswith("/api/"):
        best = request.accept_languages.best_match(["zh", "en"], default="zh")
        return "en" if best == "en" else None
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


def translate_message(template: str, params: Mapping[str, object], code: str) -> str | None:
    """Render a refusal's message in the request's language; None keeps the Chinese text.

    The template is looked up in the catalog and formatted with the same named parameters
    (a `Term` parameter is translated, a `Phrase` rendered in turn; a counted template,
    `messages.Np_`, takes the English form its `n` parameter needs). A text the catalog lacks
    (one built at run time) falls back to the code's general text, which every code has in
    English.
    """
    if not has_request_context():
        return None
    locale = get_locale()
    if locale is None or locale.language != "en":
        return None
    translations = get_translations()
    text = messages.counted(template, params, translations.ugettext, translations.ungettext)
    if text == template:  # not in the catalog: the code's general text instead
        general = messages.text_for(code) if code else ""
        text = translations.ugettext(general) if general else general
        return None if text == general else text
    if not params:
        return text
    return text % {name: _parameter(value) for name, value in params.items()}


def _parameter(value: object) -> object:
    if isinstance(value, messages.Term | storage_errors.Term):
        return get_translations().ugettext(value)
    if isinstance(value, messages.Phrase):
        return translate_message(value.template, value.params, "") or value
    return value


def stored_text(text: object, written: str | None) -> str:
    """A text kept as its msgid and parameters (`workflow.messages.stored`: a job's line, an
    inbox message) in the page's language; `written`, the Chinese text kept beside it, for a
    row written before msgids were kept (or one whose English does not fit its parameters)."""
    if text is None:
        return written or ""
    try:
        translations = get_translations()
        return messages.render_stored(text, translations.ugettext, translations.ungettext)
    except (KeyError, TypeError, ValueError):
        log.warning("stored text %r does not render; shown as written", text, exc_info=True)
        return written or ""


def phrase_text(text: object) -> str:
    """A `Phrase` (a msgid with its parameters, made by the engine) in the page's language; any
    other text as it is."""
    if not isinstance(text, str):
        return "" if text is None else str(text)
    return stored_text(messages.stored(text), text)


def page_translators() -> dict[str, Callable[..., str]]:
    """The page's `_`, `gettext` and `ngettext`, bound to its language's catalog once.

    Flask-Babel's template callables look the request's language and catalog up again for
    every text (tens of microseconds each: three lookups of the request context); a page has
    hundreds of texts (the scheme form over six hundred). These take the catalog the page is
    rendered in and behave as Jinja's own (`newstyle`: always formatted, escaped with the
    page). A template rendered without them (the error page) keeps Flask-Babel's.
    """
    translations = get_translations()
    ugettext, ungettext = translations.ugettext, translations.ungettext

    @pass_context
    def page_gettext(context: Context, string: str, **variables: Any) -> str:
        text = ugettext(string)
        if context.eval_ctx.autoescape:
            text = Markup(text)
        return text % variables

    @pass_context
    def page_ngettext(
        context: Context, singular: str, plural: str, num: int, **variables: Any
    ) -> str:
        variables.setdefault("num", num)
        text = ungettext(singular, plural, num)
        if context.eval_ctx.autoescape:
            text = Markup(text)
        return text % variables

    return {"_": page_gettext, "gettext": page_gettext, "ngettext": page_ngettext}


def init_i18n(app: Flask) -> None:
    """Set up Flask-Babel with the portal's catalogs and the language switch."""
    babel.init_app(
        app,
        default_locale=app.config.get("BABEL_DEFAULT_LOCALE", "zh_Hans_CN"),
        default_translation_directories=str(TRANSLATIONS),
        locale_selector=select_locale,
    )
    messages.set_translator(translate_message)
    storage_errors.set_translator(translate_message)
    app.add_template_global(stored_text, "stored_text")
    app.add_template_filter(phrase_text, "phrase")
    app.context_processor(page_translators)
    app.register_blueprint(bp)
