"""The hash-chained, append-only audit trail (DESIGN.md §4).

hash = SHA-256(prev_hash ‖ canonical JSON of the event). Appends lock the single chain-head
row, so concurrent requests queue up instead of forking the chain; the event is written in
the same transaction as the change it records.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import multiprocessing
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any, cast

from sqlalchemy import BigInteger, Table, TextClause, bindparam, select, text
from sqlalchemy.orm import Session

from workflow.db import lock_row
from workflow.messages import N_, Phrase, Term
from workflow.models import AuditEvent, ChainHead, User, utcnow

GENESIS_HASH = "0" * 64
VERIFY_BATCH = 20000
#: Chains at least this long are verified by a process pool (PostgreSQL only).
PARALLEL_MIN_EVENTS = 50_000

log = logging.getLogger(__name__)


def _default(value: Any) -> Any:
    """Serialise the types our payloads carry: decimals and times as strings."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return format_time(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    raise TypeError(f"cannot put {type(value).__name__} into an audit payload")


def canonical_json(value: Any) -> str:
    """Return the canonical JSON text: sorted keys, no spaces, UTF-8, decimals as strings."""
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_default
    )


def json_line(record: Mapping[str, Any]) -> str:
    """Return one JSON Lines record with its newline; U+2028/U+2029 escaped.

    JSON allows the two separators raw, but JavaScript (before ES2019) and many line-based
    readers treat them as line ends, which would split one record into two.
    """
    text = json.dumps(record, ensure_ascii=False, sort_keys=True, default=_default)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n"


def format_time(value: dt.datetime) -> str:
    """Format a UTC time the one way the chain hashes it."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    # isoformat, not strftime: strftime writes year 999 as "999" on some platforms.
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def event_body(event: AuditEvent) -> dict[str, Any]:
    """Return the hashed fields of an event (everything but the hash itself)."""
    return {
        "seq": event.seq,
        "at": format_time(event.at),
        "actor_id": event.actor_id,
        "actor": event.actor,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "item_id": event.item_id,
        "department_id": event.department_id,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "comment": event.comment,
        "payload": event.payload,
    }


def _text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def _int(value: int | None) -> str:
    return "null" if value is None else str(int(value))


def fast_body_text(
    seq: int,
    at: str,
    actor_id: int | None,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    item_id: int | None,
    department_id: int | None,
    from_state: str | None,
    to_state: str | None,
    comment: str | None,
    payload: str,
) -> str:
    """Return exactly `canonical_json(event_body(...))`, written out by hand (5× faster).

    Verification of a million events spends most of its time here; the keys are fixed and
    sorted, so the text can be assembled without the generic encoder. A test compares both.
    """
    return (
        f'{{"action":{_text(action)},"actor":{_text(actor)},"actor_id":{_int(actor_id)},'
        f'"at":{_text(at)},"comment":{_text(comment)},"department_id":{_int(department_id)},'
        f'"from_state":{_text(from_state)},"item_id":{_int(item_id)},'
        f'"payload":{_text(payload)},"seq":{_int(seq)},"target_id":{_text(target_id)},'
        f'"target_type":{_text(target_type)},"to_state":{_text(to_state)}}}'
    )


def fast_time(value: dt.datetime | str) -> str:
    """format_time for values read back from the database (aware datetime or SQLite text)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    offset = value.utcoffset()
    if offset:
        value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def hash_body(prev_hash: str, body: Mapping[str, Any]) -> str:
    """Return SHA-256(prev_hash ‖ canonical JSON of the body) as hex."""
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(canonical_json(body).encode("utf-8"))
    return digest.hexdigest()


def compute_hash(prev_hash: str, event: AuditEvent) -> str:
    """Return SHA-256(prev_hash ‖ canonical JSON of the event) as hex."""
    return hash_body(prev_hash, event_body(event))


def ensure_head(session: Session) -> None:
    """Create the chain-head row when the database has none yet."""
    if session.get(ChainHead, 1) is None:
        session.add(ChainHead(id=1, seq=0, hash=GENESIS_HASH))
        session.flush()


def chained_values(
    prev_seq: int,
    prev_hash: str,
    *,
    actor: User | None,
    action: str,
    target_type: str,
    target_id: object,
    item_id: int | None = None,
    department_id: int | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    comment: str | None = None,
    payload: Mapping[str, Any] | None = None,
    actor_name: str | None = None,
) -> dict[str, Any]:
    """The column values of the event that follows (`prev_seq`, `prev_hash`), hashed.

    A plain dict (no ORM object): the one-statement appends insert it with Core.
    """
    values: dict[str, Any] = {
        "seq": prev_seq + 1,
        "at": utcnow(),
        "actor_id": actor.id if actor is not None else None,
        "actor": actor.username if actor is not None else (actor_name or "system"),
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "item_id": item_id,
        "department_id": department_id,
        "from_state": from_state,
        "to_state": to_state,
        "comment": comment,
        "payload": canonical_json(dict(payload or {})),
        "prev_hash": prev_hash,
    }
    body = {k: values[k] for k in _BODY_KEYS}
    body["at"] = format_time(values["at"])
    values["hash"] = hash_body(prev_hash, body)
    return values


#: The hashed fields, as `event_body` names them.
_BODY_KEYS = (
    "seq", "at", "actor_id", "actor", "action", "target_type", "target_id", "item_id",
    "department_id", "from_state", "to_state", "comment", "payload",
)  # fmt: skip


def _chained(prev_seq: int, prev_hash: str, **fields: Any) -> AuditEvent:
    """The event that follows (`prev_seq`, `prev_hash`) in the chain, hashed, not yet stored."""
    return AuditEvent(**chained_values(prev_seq, prev_hash, **fields))


def record_event(
    session: Session,
    *,
    actor: User | None,
    action: str,
    target_type: str,
    target_id: object,
    item_id: int | None = None,
    department_id: int | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    comment: str | None = None,
    payload: Mapping[str, Any] | None = None,
    actor_name: str | None = None,
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction and flush it."""
    if session.get_bind().dialect.name == "sqlite":
        # No row locks: take the write lock before reading the head, or two transactions
        # whose first write this is would both append after the same event.
        lock_row(session, ChainHead, 1)
    locked = (
        select(ChainHead)
        .where(ChainHead.id == 1)
        .with_for_update()
        .execution_options(populate_existing=True)  # an append may have moved it under us
    )
    head = session.execute(locked).scalar_one_or_none()
    if head is None:
        ensure_head(session)
        head = session.execute(locked).scalar_one()
    event = _chained(head.seq, head.hash, actor=actor, actor_name=actor_name, action=action,
                     target_type=target_type, target_id=target_id, item_id=item_id,
                     department_id=department_id, from_state=from_state, to_state=to_state,
                     comment=comment, payload=payload)  # fmt: skip
    session.add(event)
    head.seq = event.seq
    head.hash = event.hash
    session.flush()
    return event


_APPEND_COLUMNS = tuple(cast(Table, AuditEvent.__table__).columns)


@functools.cache
def _append_statement() -> TextClause:
    """PostgreSQL: move the head from `prev_seq` and insert the event, in one statement.

    Built once, with typed parameters; the data-modifying CTE writes nothing when the head is
    no longer at `prev_seq`, and RETURNING then yields no row.
    """
    names = [c.name for c in _APPEND_COLUMNS]
    sql = (
        "WITH moved AS (UPDATE audit_chain_head SET seq = :seq, hash = :hash "
        "WHERE id = 1 AND seq = :prev_seq RETURNING seq) "
        f"INSERT INTO audit_events ({', '.join(names)}) "
        f"SELECT {', '.join(':' + n for n in names)} FROM moved RETURNING seq"
    )
    return text(sql).bindparams(
        *[bindparam(c.name, type_=c.type) for c in _APPEND_COLUMNS],
        bindparam("prev_seq", type_=BigInteger()),
    )


def append_after(
    session: Session,
    seen: tuple[int, str] | None,
    *,
    actor: User,
    action: str,
    target_type: str,
    target_id: object,
    item_id: int | None = None,
    department_id: int | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    comment: str | None = None,
    payload: Mapping[str, Any] | None = None,
) -> None:
    """Append one event after the head `seen` earlier in the transaction: one statement.

    On PostgreSQL the head moves and the event is written in a single statement, provided the
    head is still the one seen (`UPDATE … WHERE seq = seen` inside a data-modifying CTE, so a
    concurrent append makes it write nothing). When the head moved, or on SQLite, or when no
    head was seen, the event is appended the locking way (`record_event`). The chain is the
    same either way: each event names the hash of the one before it.
    """
    fields: dict[str, Any] = {
        "actor": actor,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "item_id": item_id,
        "department_id": department_id,
        "from_state": from_state,
        "to_state": to_state,
        "comment": comment,
        "payload": payload,
    }
    if seen is None or session.get_bind().dialect.name != "postgresql":
        record_event(session, **fields)
        return
    seq, prev_hash = seen
    values = chained_values(seq, prev_hash, **fields)
    written = session.execute(_append_statement(), {**values, "prev_seq": seq}).first()
    if written is None:  # someone appended first
        record_event(session, **fields)


@dataclass(frozen=True)
class Verification:
    """The outcome of a chain verification."""

    ok: bool
    events: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None
    problem: str | None

    def as_dict(self) -> dict[str, Any]:
        """Return the API shape of the result."""
        return {
            "ok": self.ok,
            "events": self.events,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
        }


_EVENT_COLUMNS = (
    "seq, at, actor_id, actor, action, target_type, target_id, item_id, department_id, "
    "from_state, to_state, comment, payload, prev_hash, hash"
)


def _iter_events(session: Session) -> Iterator[tuple[Any, ...]]:
    """Stream the chain in sequence order, in keyset batches (memory stays flat).

    Plain SQL on the session's connection: no ORM or type processing per row, which is most
    of the cost at a million events.
    """
    conn = session.connection()
    sql = (
        f"SELECT {_EVENT_COLUMNS} FROM audit_events WHERE seq > %(last)s ORDER BY seq LIMIT "
        f"{VERIFY_BATCH}"
    )
    if conn.dialect.paramstyle == "qmark":
        sql = sql.replace("%(last)s", "?")
    last = 0
    while True:
        params: Any = (last,) if conn.dialect.paramstyle == "qmark" else {"last": last}
        rows = conn.exec_driver_sql(sql, params).all()
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


# What a verification found is kept as msgids (`Phrase`, `Term`): the job that verifies
# shows it in the language of whoever reads it.
def _gap(expected: int, seq: int) -> str:
    return Phrase(
        N_("序号不连续：应为 %(expected)s，实为 %(seq)s"), {"expected": expected, "seq": seq}
    )


_BAD_LINK = Term(N_("prev_hash 与上一事件的哈希不符"))
_BAD_HASH = Term(N_("事件内容与其哈希不符（记录被修改）"))


def _row_digest(row: tuple[Any, ...], prev_hash: str) -> str:
    """Return the hash an event row should carry, given the hash before it."""
    (seq, at, actor_id, actor, action, ttype, tid, item_id, dep_id, fs, ts, comment,
     payload) = row[:13]  # fmt: skip
    text = fast_body_text(
        seq, fast_time(at), actor_id, actor, action, ttype, tid, item_id, dep_id, fs, ts,
        comment, payload,
    )  # fmt: skip
    return hashlib.sha256(prev_hash.encode("ascii") + text.encode("utf-8")).hexdigest()


#: (events, seq of the last good event, its hash, first bad seq or None, problem or None)
_Outcome = tuple[int, int, str, int | None, str | None]


def _verify_sequential(session: Session) -> _Outcome:
    """Walk the chain in one pass, in sequence order."""
    prev_hash = GENESIS_HASH
    expected_seq = 1
    count = 0
    first_bad: int | None = None
    problem: str | None = None
    for row in _iter_events(session):
        seq, row_prev, row_hash = row[0], row[13], row[14]
        count += 1
        if first_bad is not None:
            continue
        if seq != expected_seq:
            first_bad, problem = expected_seq, _gap(expected_seq, seq)
            continue
        if row_prev != prev_hash:
            first_bad, problem = seq, _BAD_LINK
            continue
        if _row_digest(row, prev_hash) != row_hash:
            first_bad, problem = seq, _BAD_HASH
            continue
        prev_hash = row_hash
        expected_seq += 1
    return count, expected_seq - 1, prev_hash, first_bad, problem


@dataclass(frozen=True)
class _Span:
    """What a worker found in one range of sequence numbers."""

    count: int
    first: tuple[int, str] | None  # (seq, prev_hash) of its first row
    last: tuple[int, str] | None  # (seq, hash) of its last row
    # (first bad seq, problem, seq and hash of the last good row before it, None when that
    # row is in the previous span)
    bad: tuple[int, str, int | None, str | None] | None


def _verify_span(conninfo: str, low: int, high: int) -> _Span:
    """Check the events with low <= seq <= high on a connection of our own (a worker process).

    Each row's hash is recomputed from the row's own prev_hash; links and continuity inside
    the span are checked here, those across spans by the caller.
    """
    import psycopg

    count = 0
    first: tuple[int, str] | None = None
    prev: tuple[int, str] | None = None
    bad: tuple[int, str, int | None, str | None] | None = None
    sql = (
        f"SELECT {_EVENT_COLUMNS} FROM audit_events WHERE seq > %s AND seq <= %s "
        f"ORDER BY seq LIMIT {VERIFY_BATCH}"
    )
    with psycopg.connect(conninfo) as conn:
        after = low - 1
        while bad is None:
            rows = conn.execute(sql, (after, high)).fetchall()
            if not rows:
                break
            for row in rows:
                seq, row_prev, row_hash = row[0], row[13], row[14]
                count += 1
                if first is None:
                    first = (seq, row_prev)
                if prev is not None and seq != prev[0] + 1:
                    bad = (prev[0] + 1, _gap(prev[0] + 1, seq), prev[0], prev[1])
                elif prev is not None and row_prev != prev[1]:
                    bad = (seq, _BAD_LINK, prev[0], prev[1])
                elif _row_digest(row, row_prev) != row_hash:
                    bad = (seq, _BAD_HASH, *(prev or (None, None)))
                prev = (seq, row_hash)
                if bad is not None:
                    break
            after = prev[0] if prev is not None else after
        if bad is not None:  # the rest only counts
            tail = conn.execute(
                "SELECT count(*), max(seq) FROM audit_events WHERE seq > %s AND seq <= %s",
                (after, high),
            ).fetchone()
            if tail is not None and tail[0]:
                count += int(tail[0])
                last_hash = conn.execute(
                    "SELECT hash FROM audit_events WHERE seq = %s", (tail[1],)
                ).fetchone()
                prev = (int(tail[1]), str(last_hash[0]) if last_hash else "")
    return _Span(count, first, prev, bad)


def parallel_conninfo(session: Session) -> tuple[str, int] | None:
    """Return (libpq URL, highest seq) when the parallel path applies, else None.

    It applies on PostgreSQL through psycopg, with more than one CPU, a chain of at least
    PARALLEL_MIN_EVENTS events, and a transaction that has written nothing (the workers read
    committed data on their own connections).
    """
    conn = session.connection()
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg":
        return None
    if (os.cpu_count() or 1) < 2:
        return None
    written, high = conn.exec_driver_sql(
        "SELECT pg_current_xact_id_if_assigned(), (SELECT max(seq) FROM audit_events)"
    ).one()
    if written is not None or high is None or high < PARALLEL_MIN_EVENTS:
        return None
    url = conn.engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False), int(high)


def _verify_parallel(session: Session) -> _Outcome | None:
    """Verify the chain in spans of sequence numbers, os.cpu_count() worker processes.

    The outcome is the sequential one: spans are combined in order, the first problem (by
    sequence number, and for one row in the sequential order of checks) wins.
    """
    target = parallel_conninfo(session)
    if target is None:
        return None
    conninfo, high = target
    workers = os.cpu_count() or 2
    pieces = workers * 4
    step = -(-high // pieces)
    bounds = [(low, min(high, low + step - 1)) for low in range(1, high + 1, step)]
    context = multiprocessing.get_context("spawn")  # forked children would share our socket
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        spans = list(pool.map(_verify_span, [conninfo] * len(bounds), *zip(*bounds, strict=True)))
    count = 0
    good: tuple[int, str] = (0, GENESIS_HASH)
    first_bad: int | None = None
    problem: str | None = None
    for span in spans:
        count += span.count
        if first_bad is not None or span.first is None or span.last is None:
            continue
        seq, row_prev = span.first
        if seq != good[0] + 1:
            first_bad, problem = good[0] + 1, _gap(good[0] + 1, seq)
        elif row_prev != good[1]:
            first_bad, problem = seq, _BAD_LINK
        elif span.bad is not None:
            first_bad, problem, good_seq, good_hash = span.bad
            if good_seq is not None and good_hash is not None:
                good = (good_seq, good_hash)
        else:
            good = span.last
    return count, good[0], good[1], first_bad, problem


def verify_chain(session: Session, checkpoint: Mapping[str, Any] | None = None) -> Verification:
    """Recompute every hash; name the first event that does not match.

    Detects changed, deleted, reordered and inserted rows (sequence gaps and broken links),
    a tail cut below the chain-head row, and, with a checkpoint, a tail cut below it.
    Long chains on PostgreSQL are checked by a pool of processes (same result).
    """
    outcome: _Outcome | None = None
    session.connection()  # a database that does not answer fails here, not as the pool failing
    try:
        outcome = _verify_parallel(session)
    except Exception:  # the sequential pass gives the same answer, slower
        log.warning("parallel chain verification failed; verifying sequentially", exc_info=True)
    if outcome is None:
        outcome = _verify_sequential(session)
    count, last_seq, prev_hash, first_bad, problem = outcome
    head = session.get(ChainHead, 1)
    if first_bad is None and head is not None and (head.seq != last_seq or head.hash != prev_hash):
        first_bad = last_seq + 1
        problem = Phrase(
            N_("链尾被截断或链头不符：链头记录为第 %(head)s 号事件，实际最后为第 %(last)s 号"),
            {"head": head.seq, "last": last_seq},
        )
    if first_bad is None and checkpoint is not None:
        cp_seq = int(checkpoint["seq"])
        cp_hash = str(checkpoint["hash"])
        if cp_seq > last_seq:
            first_bad = last_seq + 1
            problem = Phrase(
                N_("链尾被截断：检查点为第 %(checkpoint)s 号事件，实际最后为第 %(last)s 号"),
                {"checkpoint": cp_seq, "last": last_seq},
            )
        else:
            at_cp = session.execute(
                select(AuditEvent.hash).where(AuditEvent.seq == cp_seq)
            ).scalar_one_or_none()
            if at_cp != cp_hash:
                first_bad = cp_seq
                problem = Phrase(
                    N_("第 %(checkpoint)s 号事件的哈希与检查点不符"), {"checkpoint": cp_seq}
                )
    return Verification(
        ok=first_bad is None,
        events=count,
        head_seq=last_seq,
        head_hash=prev_hash,
        first_bad_seq=first_bad,
        problem=problem,
    )


def checkpoint(session: Session) -> dict[str, Any]:
    """Return the current head as a checkpoint to keep outside the database."""
    head = session.get(ChainHead, 1)
    seq, hash_ = (head.seq, head.hash) if head is not None else (0, GENESIS_HASH)
    return {"seq": seq, "hash": hash_, "exported_at": format_time(utcnow())}


def payload_of(event: AuditEvent) -> Any:
    """Return an event's payload as data."""
    return json.loads(event.payload)
