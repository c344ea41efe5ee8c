"""`flask --app wsgi …` commands, one module per command group, each registering itself.

Every command runs in the same unit of work as a request (`web.cli.common.cli_unit`, built on
`workflow.db.unit_of_work`): one commit at the end, a rollback on any error. A database it
cannot use (down, not created, never initialised, an older schema) ends it with words, not a
traceback (`web.cli.database`).
"""

from __future__ import annotations

from flask import Flask

from web.cli import (
    archive,
    assessments,
    audit,
    backup,
    demo,
    health,
    jobs,
    notices,
    notify,
    routine,
    schemes,
    setup,
    storage,
    units,
    users,
)
from web.cli.database import guard_commands

GROUPS = (
    setup,
    users,
    demo,
    notices,
    audit,
    storage,
    archive,
    routine,
    schemes,
    notify,
    jobs,
    units,
    assessments,
    backup,
    health,
)


def register_cli(app: Flask) -> None:
    """Attach every command group to the app."""
    for group in GROUPS:
        group.register(app)
    guard_commands(app.cli)
