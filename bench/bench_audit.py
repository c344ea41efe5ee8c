"""Verifying and reconciling an audit trail of N events (default 1,000,000) on PostgreSQL.

Builds a province-sized world in a `fgf_bench` database (BENCH_DATABASE_URL): the 2018 scheme
over synthetic departments (installed by the real `install_scheme`), then about ten events per
item written with COPY as the operations write them (uploads, submit, return, removal,
resubmit with a not-involved claim on every third item, review, verify with rulings, score,
appeal and rescore on every tenth) interleaved over the items, with the live rows the
operations leave behind (items, evidence, scores, claims). The chain is valid and the tables
follow it, so both checks must pass. Then it times `verify_chain` (the target: under 10 s)
and `reconcile` (the target: within 2× the chain verification), medians of repeats.

    python -m bench.bench_audit [--events 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_transitions import DEFAULT_URL, ensure_database  # noqa: E402
from workflow.audit import canonical_json, format_time, hash_body, verify_chain  # noqa: E402
from workflow.db import make_engine, make_sessionmaker  # noqa: E402
from workflow.models import ChainHead  # noqa: E402
from workflow.reconcile import reconcile  # noqa: E402
from workflow.scheme import SCHEMES_DIR, parse_scheme  # noqa: E402
from workflow.setup import install_scheme  # noqa: E402
from workflow.users import create_user  # noqa: E402

#: Events per item on average (10, and 12 on every tenth item): sizes the synthetic province.
EVENTS_PER_ITEM = 10.2


@dataclass
class _Item:
    """The live row of one item as the simulated operations leave it."""

    id: int
    department_id: int
    points: list[tuple[int, str, Decimal]]  # (scoring point id, code, max)
    state: str = "draft"
    version: int = 1
    round: int = 0
    total: Decimal | None = None
    reviewed_by: int | None = None
    verified_by: int | None = None
    scored_by: int | None = None
    appeals: int = 0
    submitted_by: int | None = None
    appealed_by: int | None = None
    contributors: set[int] = field(default_factory=set)  # the department's actors
    scores: dict[int, tuple[Decimal, str | None]] = field(default_factory=dict)
    claims: dict[int, bool | None] = field(default_factory=dict)
    evidence: list[list[Any]] = field(default_factory=list)  # [id, point, purpose, sha, removed]


@dataclass
class _Cast:
    member: int
    reviewer: int
    verifier: int
    scorer: int
    scorer2: int


# (action, actor id, target type, target id, from state, to state, comment, payload)
_Event = tuple[str, int, str, int, str | None, str | None, str | None, dict[str, Any]]


def _lifecycle(item: _Item, k: int, cast: _Cast, next_id: Callable[[], int]) -> Iterator[_Event]:
    """Yield the events of one item's year, changing `item` as each operation would."""
    first, last = item.points[0], item.points[-1]
    claim = len(item.points) > 1 and k % 3 == 0
    code_of = {sp: code for sp, code, _ in item.points}

    def upload(point: int | None, purpose: str) -> _Event:
        eid = next_id()
        sha = hashlib.sha256(f"{item.id}-{eid}".encode()).hexdigest()
        item.evidence.append([eid, point, purpose, sha, False])
        item.contributors.add(cast.member)
        payload = {
            "evidence_id": eid, "filename": f"材料{eid}.pdf", "size": 1000 + eid % 977,
            "sha256": sha, "content_type": "application/pdf",
            "sub_item": code_of.get(point) if point else None, "purpose": purpose,
        }  # fmt: skip
        return ("evidence_uploaded", cast.member, "evidence", eid, None, None, None, payload)

    def move(action: str, actor: int, to: str, comment: str | None, **payload: Any) -> _Event:
        before = item.state
        item.state = to
        item.version += 1
        payload.update(version=item.version, round=item.round)
        return (action, actor, "item", item.id, before, to, comment, payload)

    def submit(claims: list[int]) -> _Event:
        item.round += 1
        item.submitted_by = cast.member
        item.contributors.add(cast.member)
        item.reviewed_by = item.verified_by = None
        item.claims = dict.fromkeys(claims)
        live = [e[3] for e in item.evidence if not e[4]]
        ids = [e[0] for e in item.evidence if not e[4]]
        codes = sorted(code_of[c] for c in claims)
        # A resubmission after the return carries its 修改说明, as the operation requires.
        note = {"change_note": "已补充会议记录"} if item.round > 1 else {}
        return move("submit", cast.member, "submitted", None,
                    evidence_sha256=live, evidence_ids=ids, not_involved=codes,
                    **note)  # fmt: skip

    def score(action: str, actor: int, full: bool) -> _Event:
        written: dict[str, Decimal] = {}
        reasons: dict[str, str] = {}
        for sp, code, maximum in item.points:
            if item.claims.get(sp):
                value, reason = maximum, "不涉及（已核实）"
            else:
                cut = Decimal(1) if not full and k % 2 and maximum > 2 else Decimal(0)
                value, reason = maximum - cut, "部分材料未按时报送" if cut else ""
            value = value.quantize(Decimal("0.01"))
            item.scores[sp] = (value, reason or None)
            written[code] = value
            if reason:
                reasons[code] = reason
        item.total = sum(written.values(), Decimal("0.00"))
        if action == "score":
            item.scored_by = actor
        return move(action, actor, "scored", None, scores=written, deductions=reasons,
                    total=item.total)  # fmt: skip

    yield upload(first[0], "evidence")
    yield upload(None, "evidence")
    yield submit([])
    item.reviewed_by = None
    yield move("return", cast.reviewer, "returned", "请补充会议记录")
    removed = item.evidence[1]
    removed[4] = True
    gone = {"evidence_id": removed[0], "filename": f"材料{removed[0]}.pdf", "sha256": removed[3]}
    yield ("evidence_removed", cast.member, "evidence", removed[0], None, None, None, gone)
    yield upload(last[0], "not_involved_proof") if claim else upload(None, "evidence")
    yield submit([last[0]] if claim else [])
    item.reviewed_by = cast.reviewer
    yield move("review", cast.reviewer, "reviewed", None)
    item.verified_by = cast.verifier
    rulings = {last[1]: True} if claim else {}
    for sp in item.claims:
        item.claims[sp] = True
    yield move("verify", cast.verifier, "verified", None, rulings=rulings)
    yield score("score", cast.scorer, full=False)
    if k % 10 == 0:
        item.appeals += 1
        item.appealed_by = cast.member
        item.contributors.add(cast.member)
        yield move("appeal", cast.member, "appealed", "已按时报送，附回执")
        yield score("rescore", cast.scorer2, full=True)


def _scheme(departments: int) -> Any:
    data = yaml.safe_load((SCHEMES_DIR / "jiaohe-2018.yaml").read_text("utf-8"))
    data = copy.deepcopy(data)
    data["code"] = "bench-province"
    data["departments"] = [{"name": f"合成部门{n}"} for n in range(departments)]
    return parse_scheme(data)


def build_world(url: str, events: int) -> float:
    """Fill a fresh database with a valid trail of `events` events and matching live rows."""
    ensure_database(url)
    engine = make_engine(url)
    started = time.perf_counter()
    factory = make_sessionmaker(engine)
    with factory() as s:
        indicators = 10
        departments = max(1, int(events / EVENTS_PER_ITEM / indicators) + 1)
        assessment = install_scheme(s, _scheme(departments))
        dep0 = assessment.departments[0]
        cast = _Cast(
            member=create_user(s, "bench_member", ["department"], department=dep0).id,
            reviewer=create_user(s, "bench_rev", ["reviewer"]).id,
            verifier=create_user(s, "bench_ver", ["verifier"]).id,
            scorer=create_user(s, "bench_sc", ["scorer"]).id,
            scorer2=create_user(s, "bench_sc2", ["scorer"]).id,
        )
        s.commit()
        head = s.get_one(ChainHead, 1)
        seq, prev = head.seq, head.hash
        points: dict[int, list[tuple[int, str, Decimal]]] = {}
        for sp, ind, code, maximum in s.execute(
            text("SELECT id, indicator_id, code, max_points FROM scoring_points ORDER BY position")
        ):
            points.setdefault(ind, []).append((sp, code, Decimal(maximum)))
        items = [
            _Item(i, d, points[ind])
            for i, d, ind in s.execute(
                text("SELECT id, department_id, indicator_id FROM items ORDER BY id")
            )
        ]
    counter = iter(range(1, 10**9))
    walks = [_lifecycle(it, k, cast, lambda: next(counter)) for k, it in enumerate(items)]
    base = dt.datetime(2018, 8, 1, tzinfo=dt.UTC)
    target = seq + events
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy(  # type: ignore[attr-defined]
            "COPY audit_events (seq, at, actor_id, actor, action, target_type, target_id, "
            "item_id, department_id, from_state, to_state, comment, payload, prev_hash, hash) "
            "FROM STDIN"
        ) as out:
            pending = list(zip(items, walks, strict=True))
            while seq < target and pending:  # one step of every item per round: interleaved
                still = []
                for item, walk in pending:
                    if seq >= target:
                        break
                    step = next(walk, None)
                    if step is None:
                        continue
                    still.append((item, walk))
                    action, actor, ttype, tid, before, to, comment, p = step
                    seq += 1
                    at = base + dt.timedelta(seconds=seq)
                    payload = canonical_json(p)
                    body = {
                        "seq": seq, "at": format_time(at), "actor_id": actor, "actor": "bench",
                        "action": action, "target_type": ttype, "target_id": str(tid),
                        "item_id": item.id, "department_id": item.department_id,
                        "from_state": before, "to_state": to, "comment": comment,
                        "payload": payload,
                    }  # fmt: skip
                    digest = hash_body(prev, body)
                    out.write_row(
                        (seq, at, actor, "bench", action, ttype, str(tid), item.id,
                         item.department_id, before, to, comment, payload, prev, digest)
                    )  # fmt: skip
                    prev = digest
                pending = still
        cur.execute("UPDATE audit_chain_head SET seq = %s, hash = %s WHERE id = 1", (seq, prev))
        _write_live_rows(cur, items)
        raw.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("audit_events", "items", "evidence", "scores", "not_involved_claims"):
            conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
    engine.dispose()
    return time.perf_counter() - started


def _write_live_rows(cur: Any, items: list[_Item]) -> None:
    """COPY the evidence, scores and claims, then set the items' fields from a temp table."""
    at = dt.datetime(2018, 12, 1, tzinfo=dt.UTC)
    with cur.copy(
        "COPY evidence (id, item_id, scoring_point_id, purpose, filename, size, sha256, "
        "content_type, storage_key, uploaded_by_id, uploaded_at, removed_at) FROM STDIN"
    ) as out:
        for it in items:
            for eid, point, purpose, sha, removed in it.evidence:
                out.write_row(
                    (eid, it.id, point, purpose, f"材料{eid}.pdf", 1000 + eid % 977, sha,
                     "application/pdf", f"sha256/{sha[:2]}/{sha}", 1, at, at if removed else None)
                )  # fmt: skip
    cur.execute("SELECT setval('evidence_id_seq', (SELECT max(id) FROM evidence))")
    with cur.copy(
        "COPY scores (item_id, scoring_point_id, points, deduction_reason, scored_by_id, "
        "scored_at) FROM STDIN"
    ) as out:
        for it in items:
            for sp, (value, reason) in it.scores.items():
                out.write_row((it.id, sp, value, reason, it.scored_by or 1, at))
    with cur.copy(
        "COPY not_involved_claims (item_id, scoring_point_id, claimed_by_id, claimed_at, "
        "is_upheld) FROM STDIN"
    ) as out:
        for it in items:
            for sp, ruling in it.claims.items():
                out.write_row((it.id, sp, 1, at, ruling))
    cur.execute(
        "CREATE TEMP TABLE bench_items (id int, state text, version int, round int, "
        "total numeric(7,2), reviewed_by_id int, verified_by_id int, scored_by_id int, "
        "appeal_count int, submitted_by_id int, appealed_by_id int, contributor_ids json)"
    )
    with cur.copy("COPY bench_items FROM STDIN") as out:
        for it in items:
            if it.version > 1 or it.evidence:
                out.write_row(
                    (it.id, it.state, it.version, it.round, it.total, it.reviewed_by,
                     it.verified_by, it.scored_by, it.appeals, it.submitted_by, it.appealed_by,
                     json.dumps(sorted(it.contributors)))
                )  # fmt: skip
    cur.execute(
        "UPDATE items i SET state = b.state, version = b.version, round = b.round, "
        "total = b.total, reviewed_by_id = b.reviewed_by_id, verified_by_id = b.verified_by_id, "
        "scored_by_id = b.scored_by_id, appeal_count = b.appeal_count, "
        "submitted_by_id = b.submitted_by_id, appealed_by_id = b.appealed_by_id, "
        "contributor_ids = b.contributor_ids "
        "FROM bench_items b WHERE i.id = b.id"
    )


def measure(url: str, repeat: int, events: int) -> dict[str, float]:
    """Median seconds of verify_chain and of reconcile on the built world (both must pass)."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    runs: dict[str, list[float]] = {"verify": [], "reconcile": []}
    for _ in range(repeat):
        with factory() as s:
            started = time.perf_counter()
            chain = verify_chain(s)
            runs["verify"].append(time.perf_counter() - started)
            assert chain.ok and chain.events >= events, chain
        with factory() as s:
            started = time.perf_counter()
            tables = reconcile(s)
            runs["reconcile"].append(time.perf_counter() - started)
            assert tables.ok, tables.differences[:5]
    engine.dispose()
    return {name: statistics.median(values) for name, values in runs.items()}


def main(argv: list[str] | None = None) -> int:
    """Build the world once, verify and reconcile it `repeat` times, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    built = build_world(url, args.events)
    figures = measure(url, args.repeat, args.events)
    verify, tables = figures["verify"], figures["reconcile"]
    print(f"PostgreSQL, trail of {args.events:,} item events, median of {args.repeat} runs")
    print()
    print("| measure | seconds | events per second | target |")
    print("|---|---|---|---|")
    print(f"| build (scheme, COPY of events and rows) | {built:.2f} | — | — |")
    print(
        f"| verify_chain | {verify:.2f} | {args.events / verify:,.0f} | < 10 s for 1,000,000 "
        f"({'met' if verify * 1_000_000 / args.events < 10 else 'missed'}) |"
    )
    print(
        f"| reconcile | {tables:.2f} | {args.events / tables:,.0f} | ≤ 2× verify_chain "
        f"({tables / verify:.2f}×, {'met' if tables <= 2 * verify else 'missed'}) |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
