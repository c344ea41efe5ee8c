"""The hand-written event text used by verification equals the canonical JSON exactly."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from workflow.audit import canonical_json, fast_body_text, fast_time, format_time

texts = st.text(max_size=40)
maybe_text = st.none() | texts
maybe_int = st.none() | st.integers(0, 2**40)


@given(
    seq=st.integers(1, 2**40),
    actor_id=maybe_int,
    actor=texts,
    action=texts,
    target_type=texts,
    target_id=texts,
    item_id=maybe_int,
    department_id=maybe_int,
    from_state=maybe_text,
    to_state=maybe_text,
    comment=maybe_text,
    payload=texts,
    at=st.datetimes(timezones=st.just(dt.UTC)),
)
def test_fast_text_is_canonical_json(
    seq: int, actor_id: int | None, actor: str, action: str, target_type: str, target_id: str,
    item_id: int | None, department_id: int | None, from_state: str | None,
    to_state: str | None, comment: str | None, payload: str, at: dt.datetime,
) -> None:  # fmt: skip
    body = {
        "seq": seq, "at": format_time(at), "actor_id": actor_id, "actor": actor,
        "action": action, "target_type": target_type, "target_id": target_id,
        "item_id": item_id, "department_id": department_id, "from_state": from_state,
        "to_state": to_state, "comment": comment, "payload": payload,
    }  # fmt: skip
    fast = fast_body_text(
        seq, fast_time(at), actor_id, actor, action, target_type, target_id, item_id,
        department_id, from_state, to_state, comment, payload,
    )  # fmt: skip
    assert fast == canonical_json(body)


# From 2 January of year 1: 00:00 on 1 January at +08:00 has no UTC time (before year 1).
@given(
    st.datetimes(
        min_value=dt.datetime(1, 1, 2),
        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=8))]),
    )
)
def test_fast_time_matches_format_time(at: dt.datetime) -> None:
    assert fast_time(at) == format_time(at)
    naive_text = at.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    assert fast_time(naive_text) == format_time(at)  # SQLite hands back text
