"""Translating many texts at once: an export's thousands of labels from one catalog.

Flask-Babel's `gettext` looks the request's language and catalog up again for every text
(three lookups of the request context, tens of microseconds); an audit export translates
about twenty texts a row, which was nearly half of its time. Inside `one_catalog()` the
`gettext` and `ngettext` here take the catalog of that moment, once; outside it they are
Flask-Babel's own. Same texts either way: the block only keeps the lookup.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import flask_babel
from babel.support import NullTranslations

#: The catalog `one_catalog()` took; None outside it.
_CATALOG: ContextVar[NullTranslations | None] = ContextVar("catalog", default=None)


def gettext(string: str, **variables: Any) -> str:
    """Flask-Babel's `gettext`, from the block's catalog inside `one_catalog()`."""
    catalog = _CATALOG.get()
    if catalog is None:
        return flask_babel.gettext(string, **variables)
    text: str = catalog.ugettext(string)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """Flask-Babel's `ngettext`, from the block's catalog inside `one_catalog()`."""
    catalog = _CATALOG.get()
    if catalog is None:
        return flask_babel.ngettext(singular, plural, num, **variables)
    variables.setdefault("num", num)
    text: str = catalog.ungettext(singular, plural, num)
    return text % variables


@contextmanager
def one_catalog() -> Iterator[None]:
    """Translate the block's texts from the catalog of the language in force now.

    Only around code that runs to its end inside the block (not a streamed body): a
    language forced inside the block (`force_locale`) would not be seen.
    """
    token = _CATALOG.set(flask_babel.get_translations())
    try:
        yield
    finally:
        _CATALOG.reset(token)
