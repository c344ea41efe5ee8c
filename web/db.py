"""The request boundary: one session per request and one unit of work around each view.

As Indico's ``web/rh.py`` does, a view never commits or rolls back. The boundary does, once:

- the view returns a response below 400 (a page, JSON, a redirect after POST, a file before
  its body streams): **commit**; a failed commit (a unique violation, a stale version, a
  serialization failure or a deadlock) becomes ``Conflict`` (409), answered like any refusal;
- the view raises, or answers 400 or above: **roll back**. (Sign-in counters and delays live
  in the limiter's store and the security log in its file, so a refused sign-in keeps them.)
- a view that shows a refusal on its own page runs the refused operation inside
  ``discard_on_error()``: the unit's changes go when it raises, the page is rendered from a
  fresh transaction, and the error still reaches the view's ``except``.

Responses answered by a ``before_request`` hook (sign-in redirects, refused input) never reach
the view: their session, if any, is closed uncommitted at teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, Response, current_app, g
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from workflow.db import commit_or_conflict, make_engine, make_sessionmaker


class BoundaryFlask(Flask):
    """Flask with the unit of work: commit after a successful view, roll back on an error."""

    def dispatch_request(self) -> ResponseReturnValue:
        """Run the view, then finish its unit of work before the response leaves (or streams).

        A failed commit raises here, inside Flask's error handling, so it is answered by the
        one error mapping (`web.errors`) like an error of the view itself.
        """
        response = self.make_response(super().dispatch_request())
        finish_unit(response)
        return response

    def handle_user_exception(self, e: Exception) -> ResponseReturnValue:
        """Roll back the request's unit before any error is answered."""
        discard_unit()
        return super().handle_user_exception(e)


def init_db(app: Flask) -> None:
    """Create the app's engine and session factory; close the request's session at teardown."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["engine"] = engine
    app.extensions["sessionmaker"] = make_sessionmaker(engine)

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session: Session | None = g.pop("db", None)
        if session is not None:
            session.close()  # anything not committed by the boundary is rolled back here


def get_db() -> Session:
    """Return the request's session (one per request, closed at teardown)."""
    if "db" not in g:
        g.db = current_app.extensions["sessionmaker"]()
    session: Session = g.db
    return session


def finish_unit(response: Response) -> None:
    """Commit the unit when the answer is a success (below 400), else roll it back."""
    session: Session | None = g.get("db")
    if session is None:
        return
    if response.status_code < 400:
        commit_or_conflict(session)
    else:
        session.rollback()


def discard_unit() -> None:
    """Roll back whatever the request's session holds (no session: nothing to do)."""
    session: Session | None = g.get("db")
    if session is not None:
        session.rollback()


@contextmanager
def discard_on_error() -> Iterator[Session]:
    """Run an operation whose refusal the view shows itself: on any error, undo the unit.

    The error propagates; the page the view then renders reads a fresh transaction, so it
    never shows half of a refused change.
    """
    session = get_db()
    try:
        yield session
    except BaseException:
        discard_unit()
        raise
