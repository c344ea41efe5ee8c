"""The pipeline's hot path at the SQL Core level: the locked read and the write of an item row.

The ORM's query and flush machinery (compiling an ORM statement's loading plan, building row
processors, the unit of work's dependency sort) costs more Python than the statements
themselves. A transition touches one item row, so the pipeline reads and writes it with
prebuilt Core statements and keeps the ORM objects in step by hand:

- `read_locked` selects the item, its assessment and the audit chain's head as one tuple
  (SELECT … FOR UPDATE OF items) and puts the item and the assessment into the session's
  identity map as persistent, unmodified objects: new ones when the session does not hold
  them, else the held ones refreshed (as `populate_existing` would; their relationships are
  expired, so they load again when read);
- `write_item` sends the columns the effects changed as one
  `UPDATE items SET … , version = :v + 1 WHERE id = :id AND version = :v` and marks them
  committed on the object (an evidence row, no transition, keeps the version: `bump=False`);
  no row updated means a concurrent change won: the same retryable
  `Conflict` as a stale flush. On PostgreSQL a transition's audit event goes in the same
  statement (data-modifying CTEs move the chain head and insert the event).

Rows whose guards need the item's collections (claims, scores, scoring points) still load
them with the ORM in the same single query (workflow/pipeline.py); the write is the same.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Select,
    Table,
    Update,
    bindparam,
    exists,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import PASSIVE_NO_INITIALIZE, get_history, set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.orm.util import identity_key

from workflow.db import conflict_from
from workflow.models import Assessment, AuditEvent, ChainHead, Item

_ITEMS = cast(Table, Item.__table__)
_ASSESSMENTS = cast(Table, Assessment.__table__)
_HEAD = cast(Table, ChainHead.__table__)
_EVENTS = cast(Table, AuditEvent.__table__)


def _column_keys(cls: type[Any], leave_out: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """The mapped column attributes of a class (attribute key = column name here)."""
    keys = tuple(p.key for p in cls.__mapper__.column_attrs if p.key not in leave_out)
    table = cast(Table, cls.__table__)
    assert all(k in table.c for k in keys), "attribute keys must be column names"
    return keys


#: The item's columns, and its assessment's without the routine configuration (a large JSON
#: document: it loads on first use, as the ORM path defers it).
ITEM_KEYS = _column_keys(Item)
ASSESSMENT_KEYS = _column_keys(Assessment, frozenset({"routine_config"}))
#: What an effect may change on the item (the key and the version are the write's own).
_WRITABLE = tuple(k for k in ITEM_KEYS if k not in ("id", "version"))
#: The item's relationships: expired when a held item is refreshed (they load again).
_RELATIONSHIPS = tuple(r.key for r in Item.__mapper__.relationships if r.key != "assessment")
#: The item's collections an effect may add to or remove from.
_COLLECTIONS = tuple(r.key for r in Item.__mapper__.relationships if r.uselist and not r.viewonly)


#: Added after FOR UPDATE OF items (PostgreSQL) for a row that judges the publication: the
#: assessment is key-share locked by the same statement, and read as it is once the lock is
#: granted (a publication or reopen in flight, which locks it FOR UPDATE, commits first).
HOLD_ASSESSMENT = "FOR KEY SHARE OF assessments"


@functools.cache
def _read_statement(publication: bool = False) -> Select[Any]:
    """SELECT item, assessment, head FOR UPDATE OF items: built once, one parameter; with
    `publication`, also FOR KEY SHARE OF assessments (PostgreSQL)."""
    stmt = (
        select(
            *(_ITEMS.c[k] for k in ITEM_KEYS),
            *(_ASSESSMENTS.c[k] for k in ASSESSMENT_KEYS),
            _HEAD.c.seq,
            _HEAD.c.hash,
        )
        .select_from(
            _ITEMS.join(_ASSESSMENTS, _ASSESSMENTS.c.id == _ITEMS.c.assessment_id).outerjoin(
                _HEAD, _HEAD.c.id == 1
            )
        )
        .where(_ITEMS.c.id == bindparam("item_id"))
        .with_for_update(of=_ITEMS)
    )
    return stmt.suffix_with(HOLD_ASSESSMENT, dialect="postgresql") if publication else stmt


def _persistent(session: Session, cls: type[Any], values: dict[str, Any]) -> Any:
    """The session's object for this row: the held one refreshed, else a new persistent one.

    Neither has pending changes afterwards: the values are committed state, as if loaded.
    """
    held = session.identity_map.get(identity_key(cls, values["id"]))
    if held is None:
        # As the ORM's loading does: the values go into the instance's dict, without the
        # attribute events a constructor fires (they would only record history to discard).
        obj = cls._sa_class_manager.new_instance()
        obj.__dict__.update(values)
        make_transient_to_detached(obj)  # persistent once added: unloaded attributes expire
        session.add(obj)
        return obj
    for key, value in values.items():
        set_committed_value(held, key, value)
    return held


def read_locked(
    session: Session, item_id: int, *, publication: bool = False
) -> tuple[Item, tuple[int, str] | None] | None:
    """Lock the item's row; return it (with its assessment) and the chain head, or None.

    One statement. The head is read, not locked (see `audit.append_after`).
    """
    row = session.execute(_read_statement(publication), {"item_id": item_id}).first()
    if row is None:
        return None
    n_item, n_assessment = len(ITEM_KEYS), len(ASSESSMENT_KEYS)
    item_values = dict(zip(ITEM_KEYS, row[:n_item], strict=True))
    assessment_values = dict(zip(ASSESSMENT_KEYS, row[n_item : n_item + n_assessment], strict=True))
    seq, head_hash = row[n_item + n_assessment :]
    held = session.identity_map.get(identity_key(Item, item_id)) is not None
    item: Item = _persistent(session, Item, item_values)
    if held:  # as populate_existing: what the item held may be older than the lock
        session.expire(item, _RELATIONSHIPS)
    set_committed_value(item, "assessment", _persistent(session, Assessment, assessment_values))
    return item, (None if seq is None else (seq, head_hash))


@functools.cache
def _update_statement(keys: tuple[str, ...]) -> Update:
    """UPDATE items SET <keys>, version WHERE id AND version: one per set of changed columns."""
    return (
        update(_ITEMS)
        .where(_ITEMS.c.id == bindparam("w_id"), _ITEMS.c.version == bindparam("w_version"))
        .values(
            {
                **{_ITEMS.c[k]: bindparam(f"w_{k}", type_=_ITEMS.c[k].type) for k in keys},
                _ITEMS.c.version: bindparam("w_next_version"),
            }
        )
    )


@functools.cache
def _update_and_append_statement(keys: tuple[str, ...]) -> Select[Any]:
    """PostgreSQL: the item's UPDATE, the chain head's move and the event's INSERT, one statement.

    Data-modifying CTEs: the head moves (and the event is written) only when the item row was
    updated and the head is still at `e_prev_seq`. The statement returns how many item rows
    and events it wrote: (1, 1) done; (1, 0) another append came first; (0, 0) the item moved.
    """
    moved_item = _update_statement(keys).returning(_ITEMS.c.id).cte("moved_item")
    moved_head = (
        update(_HEAD)
        .where(
            _HEAD.c.id == 1,
            _HEAD.c.seq == bindparam("e_prev_seq", type_=BigInteger()),
            exists(select(moved_item.c.id)),
        )
        .values(seq=bindparam("e_seq"), hash=bindparam("e_hash"))
        .returning(_HEAD.c.seq)
        .cte("moved_head")
    )
    names = [c.name for c in _EVENTS.columns]
    values = select(*(bindparam(f"e_{c.name}", type_=c.type) for c in _EVENTS.columns))
    event = (
        insert(_EVENTS)
        .from_select(names, values.select_from(moved_head))
        .returning(_EVENTS.c.seq)
        .cte("appended")
    )
    return select(
        select(func.count()).select_from(moved_item).scalar_subquery(),
        select(func.count()).select_from(event).scalar_subquery(),
    )


def changes_of(item: Item) -> dict[str, Any]:
    """The item's columns the effects changed, with their new values."""
    changes: dict[str, Any] = {}
    for key in _WRITABLE:
        added = get_history(item, key, passive=PASSIVE_NO_INITIALIZE).added
        if added:
            changes[key] = added[0]
    return changes


def write_item(
    session: Session,
    item: Item,
    version: int,
    changes: dict[str, Any] | None = None,
    event: dict[str, Any] | None = None,
    *,
    bump: bool = True,
) -> bool:
    """Write the item's changed columns in one UPDATE that moves the version from `version`.

    `bump=False` keeps the version (still required to be `version`): a change that is no
    transition (the first file a member attaches adds them to `contributor_ids`) must not
    make the pages that show the item stale, nor the next file's upload a conflict.

    `changes` defaults to `changes_of(item)`. With `event` (the column values of the audit
    event that follows the chain head, from `audit.chained_values`; PostgreSQL only) the same
    statement moves the head and appends the event; the return value then tells whether it
    did (False: another append came first, and the caller appends the locking way). Without,
    return whether anything was written (an unchanged item keeps its version, as with the
    ORM's flush). No item row matched: a concurrent change won, raised as the retryable
    Conflict.
    """
    if changes is None:
        changes = changes_of(item)
    if not changes:
        return False
    keys = tuple(changes)
    params = {f"w_{k}": v for k, v in changes.items()}
    next_version = version + 1 if bump else version
    params.update(w_id=item.id, w_version=version, w_next_version=next_version)
    with session.no_autoflush:  # the session's flush would write the item the ORM way
        if event is None:
            result = session.execute(_update_statement(keys), params)
            updated, appended = result.rowcount, True  # type: ignore[attr-defined]
        else:
            params.update({f"e_{k}": v for k, v in event.items()})
            params["e_prev_seq"] = event["seq"] - 1
            updated, events = session.execute(_update_and_append_statement(keys), params).one()
            appended = events == 1
    if updated != 1:
        raise conflict_from(StaleDataError(f"items row {item.id} is not at version {version}"))
    for key, value in changes.items():
        set_committed_value(item, key, value)
    set_committed_value(item, "version", next_version)
    _mark_clean(item)
    return appended


def _mark_clean(item: Item) -> None:
    """Tell the session the item has nothing left to flush, unless a collection changed.

    `set_committed_value` leaves the object on the session's list of modified objects, so the
    next flush would run the unit of work for it only to find nothing to write. When none of
    its collections changed (a submit's new claims, a score's new rows: the flush must see
    those to set their item_id), the object is committed as a flush would commit it.
    """
    for key in _COLLECTIONS:
        if get_history(item, key, passive=PASSIVE_NO_INITIALIZE).has_changes():
            return
    state = inspect(item)
    state._commit_all(state.dict, state.session.identity_map if state.session else None)
