"""Units (被考核单位) that outlive assessments, and their lineage: create, rename, merge,
split, dissolve.

No Flask here. `apply_change` checks a change (kind, units, effective date, document,
reason), applies it, flushes and appends one `unit_changed` audit event in the caller's
transaction; the caller commits. A unit keeps its id through renames; a merge makes one new
unit of several (they end as `merged`), a split several new units of one (it ends as
`split`), a dissolution ends units without successor. The lineage is the `unit_changes`
table with its `from` and `to` units.

Each assessment's department row is one year's appearance of a unit (`Department.unit_id`);
`install_scheme` finds the unit of each department of a scheme by name (or makes it).
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from workflow.audit import record_event
from workflow.db import lock_key, serialise
from workflow.errors import Forbidden, InvalidValue, NotFound
from workflow.messages import N_, Term
from workflow.models import (
    Assessment,
    AuditEvent,
    Department,
    Unit,
    UnitAlias,
    UnitChange,
    UnitChangeLink,
    UnitName,
    User,
    utcnow,
)
from workflow.permissions import forget_own_departments
from workflow.states import Role

KINDS = ("create", "rename", "merge", "split", "dissolve")
#: Effective dates are days in the city's time zone.
LOCAL_ZONE = ZoneInfo("Asia/Shanghai")
#: What a unit's status becomes when a change ends it.
ENDED_AS = {"merge": "merged", "split": "split", "dissolve": "dissolved"}
STATUSES = ("active", "merged", "split", "dissolved")
MAX_NAME = 100
MAX_FULL_NAME = 200
MAX_DOCUMENT_NO = 100
MAX_REASON = 2000
#: The lock every unit change takes before it checks names: two changes at once that would
#: give two units one name queue here, and the second is refused.
UNIT_NAMES_LOCK = lock_key("unit-names")


@dataclass(frozen=True)
class NewUnit:
    """A unit a change leads to: its name, full name, aliases and included offices."""

    name: str
    full_name: str = ""
    aliases: tuple[str, ...] = ()
    offices: tuple[str, ...] = ()


@dataclass
class Lineage:
    """A unit's direct predecessors and successors, with the changes that link them."""

    predecessors: list[int] = field(default_factory=list)
    successors: list[int] = field(default_factory=list)
    changes: list[UnitChange] = field(default_factory=list)


def local_day(now: dt.datetime | None = None) -> dt.date:
    """The date in the city (Asia/Shanghai) at `now` (default: now)."""
    return (now or utcnow()).astimezone(LOCAL_ZONE).date()


def _require_admin(actor: User | None) -> None:
    if actor is not None and not (actor.is_active and actor.has_role(Role.ADMIN)):
        raise Forbidden("只有管理员可以调整被考核单位", code="role_required")


def get_unit(session: Session, unit_id: int) -> Unit:
    """Load a unit, else NotFound."""
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise NotFound("单位不存在：%(id)s", code="unit_not_found", params={"id": unit_id})
    return unit


def all_units(session: Session) -> list[Unit]:
    """Every unit, active ones first, then by id."""
    units = session.execute(
        select(Unit).options(selectinload(Unit.names), selectinload(Unit.aliases))
    ).scalars()
    return sorted(units, key=lambda u: (u.status != "active", u.id))


#: Characters that show nothing but are not format characters (category Cf, dropped too):
#: the combining grapheme joiner, Hangul fillers, variation selectors.
_INVISIBLE = frozenset(
    "\u034f\u115f\u1160\u3164\uffa0"
    + "".join(map(chr, range(0x180B, 0x1810)))
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)


def _shows(ch: str) -> bool:
    return ch not in _INVISIBLE and unicodedata.category(ch) != "Cf"


def clean_name(text: str) -> str:
    """A name as it is stored: invisible and format characters (zero-width spaces, direction
    overrides, the byte-order mark) dropped, runs of spaces one space, stripped."""
    return " ".join("".join(ch for ch in text if _shows(ch)).split())


def has_control(text: str) -> bool:
    """Tell whether a text holds a control character (a tab, a line break, NUL, …)."""
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def name_key(text: str) -> str:
    """What makes two names the same to a reader: full-width and half-width forms (NFKC),
    spaces, invisible characters and letter case aside (“ｘ局” is “x 局”, “住建局（人防办）” is
    “住建局(人防办)”)."""
    folded = unicodedata.normalize("NFKC", clean_name(text)).casefold()
    return "".join(ch for ch in folded if _shows(ch) and not ch.isspace())


#: How a unit answers to a name, in the order `find_unit` tries them (alias and office tie).
HOW = {"name": 0, "full_name": 1, "alias": 2, "office": 2, "former": 3}
#: The same, in words (naming the holder of a name a change may not take).
HOW_LABELS = {
    "name": N_("名称"),
    "full_name": N_("全称"),
    "alias": N_("别名"),
    "office": N_("挂牌机构"),
    "former": N_("曾用名"),
}


@dataclass(frozen=True)
class _Known:
    """One name a unit answers to: how (a key of `HOW`), and the unit's status."""

    how: str
    unit_id: int
    text: str
    status: str


#: Every name units answer to, by `name_key` (see `known_names`).
KnownNames = dict[str, list[_Known]]


def _add_known(out: KnownNames, text: str | None, how: str, unit_id: int, status: str) -> None:
    key = name_key(text or "")
    if key:
        out.setdefault(key, []).append(_Known(how, unit_id, text or "", status))


def known_names(session: Session) -> KnownNames:
    """Every name any unit answers to, by `name_key`: current names and full names, aliases
    and offices, former names. Two queries: a caller finding many units (a scheme's
    departments) reads it once and passes it to `find_unit`."""
    out: KnownNames = {}
    names = session.execute(
        select(
            UnitName.unit_id, UnitName.name, UnitName.full_name, UnitName.valid_to, Unit.status
        ).join(Unit, Unit.id == UnitName.unit_id)
    ).all()
    for uid, name, full, valid_to, status in names:
        _add_known(out, name, "name" if valid_to is None else "former", uid, status)
        _add_known(out, full, "full_name" if valid_to is None else "former", uid, status)
    aliases = session.execute(
        select(UnitAlias.unit_id, UnitAlias.alias, UnitAlias.kind, Unit.status).join(
            Unit, Unit.id == UnitAlias.unit_id
        )
    ).all()
    for uid, alias, kind, status in aliases:
        _add_known(out, alias, "office" if kind == "office" else "alias", uid, status)
    return out


def remember_unit(known: KnownNames, unit: Unit) -> None:
    """Add a unit just made (active, current names) to `known`, as `known_names` would."""
    for n in unit.names:
        _add_known(known, n.name, "name", unit.id, "active")
        _add_known(known, n.full_name, "full_name", unit.id, "active")
    for a in unit.aliases:
        _add_known(known, a.alias, "office" if a.kind == "office" else "alias", unit.id, "active")


def find_unit(
    session: Session, name: str, *, active_only: bool = False, known: KnownNames | None = None
) -> Unit | None:
    """The unit known by `name`: its current name first, then its current full name (as the
    rules write it, “住建局（人防办）”), then an alias or office, then a former name (the
    newest unit wins). Names compare as `name_key` does: full-width and half-width brackets,
    spaces and invisible characters aside."""
    found = (known if known is not None else known_names(session)).get(name_key(name), [])
    if active_only:
        found = [k for k in found if k.status == "active"]
    if not found:
        return None
    best = min(found, key=lambda k: (HOW[k.how], -k.unit_id))
    return session.get(Unit, best.unit_id)


def _last_assessed_year(session: Session, unit_id: int) -> int | None:
    """The newest year the unit appears in an assessment (None: never assessed)."""
    return session.scalar(
        select(func.max(Assessment.year))
        .select_from(Department)
        .join(Assessment, Assessment.id == Department.assessment_id)
        .where(Department.unit_id == unit_id)
    )


def make_unit(session: Session, spec: NewUnit, valid_from: dt.date | None = None) -> Unit:
    """A new active unit with its first name, aliases and offices (not audited: the caller's
    change or assessment records it)."""
    unit = Unit(status="active")
    unit.names = [
        UnitName(name=spec.name, full_name=spec.full_name or spec.name, valid_from=valid_from)
    ]
    unit.aliases = []
    _add_aliases(unit, spec)
    session.add(unit)
    session.flush()
    return unit


def unit_for_department(
    session: Session, spec: NewUnit, known: KnownNames | None = None
) -> tuple[Unit, bool]:
    """The unit a scheme's department is an appearance of (by name, an active one first),
    or a new one; returns (unit, made). With `known` (from `known_names`, for many
    departments in a row) the names are not read again, and a unit made is added to it."""
    known = known if known is not None else known_names(session)
    unit = find_unit(session, spec.name, active_only=True, known=known) or find_unit(
        session, spec.name, known=known
    )
    if unit is not None:
        return unit, False
    made = make_unit(session, spec)
    remember_unit(known, made)
    return made, True


# -- checking a change --------------------------------------------------------------------
def _text(value: Any, limit: int) -> str | None:
    """The stripped text, or None when it is missing, empty or over `limit`."""
    text = value.strip() if isinstance(value, str) else ""
    return text if text and len(text) <= limit else None


def parse_day(value: Any) -> dt.date:
    """A YYYY-MM-DD day (a date passes; full-width digits as typed with a Chinese input
    method read as ASCII ones), else InvalidValue."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(unicodedata.normalize("NFKC", value).strip())
        except ValueError:
            pass
    raise InvalidValue("生效日期须为有效日期（如 2019-03-01）", code="bad_effective_on")


def _unit_text(value: Any, n: int) -> str:
    """A name of the `n`th new unit, cleaned (`clean_name`); control characters refused."""
    if has_control(value):
        raise InvalidValue(
            "第 %(n)s 个新单位的名称、全称、别名或挂牌机构含控制字符（如换行、制表符）",
            code="bad_unit_name",
            params={"n": n},
        )
    return clean_name(value)


def parse_new_unit(value: Any, n: int) -> NewUnit:
    """A `to` entry: {"name", "full_name"?, "aliases"?, "offices"?}, else InvalidValue.

    Every name is cleaned of invisible and format characters (`clean_name`); one holding a
    control character is refused."""
    if isinstance(value, NewUnit):
        value = {
            "name": value.name,
            "full_name": value.full_name,
            "aliases": list(value.aliases),
            "offices": list(value.offices),
        }
    if not isinstance(value, Mapping):
        raise InvalidValue(
            "第 %(n)s 个新单位须为含 name 的对象", code="bad_change_units", params={"n": n}
        )
    raw = value.get("name")
    name = _unit_text(raw, n) if isinstance(raw, str) else ""
    if not name or len(name) > MAX_NAME:
        raise InvalidValue(
            "第 %(n)s 个新单位的名称不能为空，且不超过 %(max)s 字",
            code="bad_unit_name",
            params={"n": n, "max": MAX_NAME},
        )
    raw_full = value.get("full_name") or ""
    full = _unit_text(raw_full, n) if isinstance(raw_full, str) else None
    if full is None or len(full) > MAX_FULL_NAME:
        raise InvalidValue(
            "第 %(n)s 个新单位的全称不超过 %(max)s 字",
            code="bad_unit_name",
            params={"n": n, "max": MAX_FULL_NAME},
        )
    lists = []
    for key in ("aliases", "offices"):
        items = value.get(key) or []
        cleaned = (
            [_unit_text(a, n) if isinstance(a, str) else "" for a in items]
            if isinstance(items, list)
            else [""]
        )
        if not all(a and len(a) <= MAX_NAME for a in cleaned):
            raise InvalidValue(
                "第 %(n)s 个新单位的别名和挂牌机构须为不超过 %(max)s 字的名称列表",
                code="bad_unit_name",
                params={"n": n, "max": MAX_NAME},
            )
        lists.append(tuple(cleaned))
    return NewUnit(name, full, lists[0], lists[1])


def _shape(kind: str, sources: Sequence[Unit], targets: Sequence[NewUnit]) -> None:
    """The number of units on each side, as each kind needs."""
    f, t = len(sources), len(targets)
    if kind == "create" and (f or not t):
        raise InvalidValue("新设单位不能有原单位，且至少新设一个单位", code="bad_change_units")
    if kind == "rename" and (f != 1 or t != 1):
        raise InvalidValue("更名须指定一个原单位和一个新名称", code="bad_change_units")
    if kind == "merge" and (f < 2 or t != 1):
        raise InvalidValue("合并须有至少两个原单位，合并为一个新单位", code="merge_needs_two")
    if kind == "split" and (f != 1 or t < 2):
        raise InvalidValue("拆分须有一个原单位，拆分为至少两个新单位", code="split_needs_two")
    if kind == "dissolve" and (not f or t):
        raise InvalidValue("撤销须指定至少一个原单位，且不能有新单位", code="bad_change_units")


def _names_of(spec: NewUnit) -> dict[str, str]:
    """Every name a new unit answers to, by `name_key`: name, full name, aliases, offices."""
    out: dict[str, str] = {}
    for text in (spec.name, spec.full_name, *spec.aliases, *spec.offices):
        if text:
            out.setdefault(name_key(text), text)
    return out


def _check_names(session: Session, targets: Sequence[NewUnit], keep: set[int]) -> None:
    """No name a new unit answers to (name, full name, alias, office) may be one another unit
    answers to, nor repeat among the new units: names compare as `name_key` does.

    The other units are the active ones, with their former names, and those merged or split
    (their names live on in their successors); a dissolved unit's names are free again, and
    so are the names of the units the change ends (`keep`)."""
    known = known_names(session)
    seen: dict[str, int] = {}
    for n, target in enumerate(targets):
        for key, text in _names_of(target).items():
            if seen.setdefault(key, n) != n:
                raise InvalidValue(
                    "新单位名称重复：%(name)s", code="unit_name_in_use", params={"name": text}
                )
            holders = [
                k for k in known.get(key, []) if k.unit_id not in keep and k.status != "dissolved"
            ]
            if not holders:
                continue
            holder = min(holders, key=lambda k: (k.status != "active", HOW[k.how], -k.unit_id))
            unit = get_unit(session, holder.unit_id)
            params = {"name": text, "unit": unit.name, "how": Term(HOW_LABELS[holder.how])}
            if holder.status == "active":
                raise InvalidValue(
                    "名称“%(name)s”已是单位“%(unit)s”的%(how)s，"
                    "不能再用作其他单位的名称、别名或挂牌机构",
                    code="unit_name_in_use",
                    params=params,
                )
            if holder.how == "former" and key in (name_key(unit.name), name_key(unit.full_name)):
                params["how"] = Term(HOW_LABELS["name"])  # the name it bore when it ended
            raise InvalidValue(
                "名称“%(name)s”是已合并或拆分的单位“%(unit)s”的%(how)s，由其后继单位沿用，"
                "不能再用作其他单位的名称、别名或挂牌机构",
                code="unit_name_in_use",
                params=params,
            )


def _require_new_name(current: UnitName, new: NewUnit, day: dt.date) -> None:
    """Refuse a rename to the unit's present name. The same rename sent twice (a second click,
    a retried request) is named as such: the first one took, on its day."""
    if new.name != current.name or (new.full_name or new.name) != current.full_name:
        return
    if current.valid_from == day:
        raise InvalidValue(
            "单位已于 %(day)s 更名为“%(name)s”，无需再次更名",
            code="same_name",
            params={"name": current.full_name, "day": day.isoformat()},
        )
    raise InvalidValue(
        "新名称与单位“%(name)s”的现名称相同，无需更名",
        code="same_name",
        params={"name": current.name},
    )


def apply_change(
    session: Session,
    *,
    kind: str,
    effective_on: Any,
    document_no: Any,
    reason: Any,
    from_ids: Iterable[Any] = (),
    to: Iterable[Any] = (),
    actor: User | None,
    today: dt.date | None = None,
) -> UnitChange:
    """Check and apply one lineage change; audited (`unit_changed`). Nothing is applied when
    anything is refused.

    A change applies when it is recorded: who belongs to which unit, and which units a new
    year proposes, change at once. So it is recorded on or after its effective date (`today`,
    in Asia/Shanghai, by default now's), never ahead of it.
    """
    _require_admin(actor)
    # Before anything is read: a second change at once sees what the first one made.
    serialise(session, UNIT_NAMES_LOCK)
    if kind not in KINDS:
        raise InvalidValue(
            "未知的单位调整类型：%(kind)s（可用 create、rename、merge、split、dissolve）",
            code="unknown_change_kind",
            params={"kind": kind},
        )
    day = parse_day(effective_on)
    today = today or local_day()
    if day > today:
        raise InvalidValue(
            "生效日期 %(day)s 晚于今天（%(today)s）：单位调整登记后立即生效，"
            "请在生效之日或之后登记",
            code="bad_effective_on",
            params={"day": day.isoformat(), "today": today.isoformat()},
        )
    doc = _text(document_no, MAX_DOCUMENT_NO)
    if doc is None:
        raise InvalidValue(
            "请填写调整依据的文号（不超过 %(max)s 字）",
            code="change_document_required",
            params={"max": MAX_DOCUMENT_NO},
        )
    why = _text(reason, MAX_REASON)
    if why is None:
        raise InvalidValue(
            "请填写调整理由（不超过 %(max)s 字）",
            code="reason_required",
            params={"max": MAX_REASON},
        )
    ids: list[int] = []
    for raw in from_ids:
        if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw < 2**31:
            raise InvalidValue("原单位须为单位编号（整数）", code="bad_change_units")
        if raw in ids:  # named, not numbered: the id means nothing to the clerk
            raise InvalidValue(
                "原单位“%(name)s”选了两次",
                code="bad_change_units",
                params={"name": get_unit(session, raw).name},
            )
        ids.append(raw)
    sources = [get_unit(session, i) for i in ids]
    targets = [parse_new_unit(t, n) for n, t in enumerate(to, start=1)]
    _shape(kind, sources, targets)
    for unit in sources:
        if unit.status != "active":
            raise InvalidValue(
                "单位“%(name)s”已合并、拆分或撤销，不能再调整",
                code="unit_not_active",
                params={"name": unit.name},
            )
    if kind == "rename":
        _require_new_name(sources[0].current, targets[0], day)
    for unit in sources:
        started = unit.current.valid_from
        if started is not None and day <= started:
            raise InvalidValue(
                "生效日期须晚于单位“%(name)s”现名称的启用日期 %(since)s",
                code="bad_effective_on",
                params={"name": unit.name, "since": started.isoformat()},
            )
        # A change dated before a year the unit was assessed under this name would rewrite
        # that year's history (农业局 "renamed in 1990", though assessed as 农业局 in 2018).
        last_year = _last_assessed_year(session, unit.id)
        if last_year is not None and day.year < last_year:
            raise InvalidValue(
                "生效日期 %(day)s 早于单位“%(name)s”以现名称参加考核的 %(year)s 年度",
                code="bad_effective_on",
                params={"day": day.isoformat(), "name": unit.name, "year": last_year},
            )
    _check_names(session, targets, {u.id for u in sources})  # a source ends: its name is free

    before = [unit_state(u) for u in sources]
    made: list[Unit] = []
    if kind == "rename":
        unit, new = sources[0], targets[0]
        unit.current.valid_to = day
        unit.names.append(
            UnitName(name=new.name, full_name=new.full_name or new.name, valid_from=day)
        )
        _add_aliases(unit, new)
        made = [unit]
    else:
        for unit in sources:
            unit.current.valid_to = day
            unit.status = ENDED_AS[kind]
        made = [make_unit(session, t, valid_from=day) for t in targets]
    change = UnitChange(
        kind=kind,
        effective_on=day,
        document_no=doc,
        reason=why,
        created_by_id=actor.id if actor is not None else None,
    )
    change.links = [UnitChangeLink(unit_id=u.id, role="from") for u in sources] + [
        UnitChangeLink(unit_id=u.id, role="to") for u in made
    ]
    session.add(change)
    session.flush()
    forget_own_departments(session)
    record_event(
        session,
        actor=actor,
        action="unit_changed",
        target_type="unit_change",
        target_id=change.id,
        payload={
            "kind": kind,
            "effective_on": day.isoformat(),
            "document_no": doc,
            "reason": why,
            "from": before,
            "to": [unit_state(u) for u in made],
        },
    )
    return change


def _add_aliases(unit: Unit, spec: NewUnit) -> None:
    """Add the spec's aliases and offices the unit does not answer to yet (one row a name:
    an office also given as an alias, or a spelling of one already there, is not repeated)."""
    have = {name_key(a.alias) for a in unit.aliases}
    for alias, kind in [(a, "alias") for a in spec.aliases] + [(o, "office") for o in spec.offices]:
        if name_key(alias) not in have:
            unit.aliases.append(UnitAlias(alias=alias, kind=kind))
            have.add(name_key(alias))


STATUS_LABELS = {"active": "在用", "merged": "合并", "split": "拆分", "dissolved": "撤销"}
KIND_LABELS = {
    "create": "新设",
    "rename": "更名",
    "merge": "合并",
    "split": "拆分",
    "dissolve": "撤销",
}


def unit_state(unit: Unit) -> dict[str, Any]:
    """A unit as an audit payload records it."""
    return {
        "id": unit.id,
        "name": unit.name,
        "full_name": unit.full_name,
        "status": unit.status,
        "aliases": [{"alias": a.alias, "kind": a.kind} for a in unit.aliases],
    }


# -- reading the lineage ------------------------------------------------------------------
def all_changes(session: Session) -> list[UnitChange]:
    """Every lineage change, oldest effective first."""
    return list(
        session.execute(
            select(UnitChange)
            .options(selectinload(UnitChange.links))
            .order_by(UnitChange.effective_on, UnitChange.id)
        ).scalars()
    )


def lineages(session: Session) -> dict[int, Lineage]:
    """Every unit's direct predecessors and successors (renames link a unit to itself and
    are left out of both lists)."""
    out: dict[int, Lineage] = {}
    for change in all_changes(session):
        for uid in {*change.from_ids, *change.to_ids}:
            out.setdefault(uid, Lineage()).changes.append(change)
        if change.kind == "rename":
            continue
        for f in change.from_ids:
            for t in change.to_ids:
                out.setdefault(f, Lineage()).successors.append(t)
                out.setdefault(t, Lineage()).predecessors.append(f)
    return out


def accounts_left_behind(session: Session) -> list[tuple[Unit, int]]:
    """Ended units whose active accounts lead to no unit a new year assesses, with how many
    each has: an account follows merges to the unit it now works for (`workflow.permissions`),
    but a split or dissolved unit has no one successor, so a new year shows its people none of
    its items until an admin moves them to a unit (用户管理)."""
    units = {u.id: u for u in all_units(session)}
    graph = lineages(session)
    counts = session.execute(
        select(User.unit_id, func.count())
        .where(User.is_active.is_(True), User.unit_id.is_not(None))
        .group_by(User.unit_id)
    ).all()
    out: list[tuple[Unit, int]] = []
    for unit_id, n in counts:
        if unit_id not in units:
            continue
        unit: Unit | None = units[unit_id]
        seen: set[int] = set()
        while unit is not None and unit.status != "active" and unit.id not in seen:
            seen.add(unit.id)
            successors = graph.get(unit.id, Lineage()).successors
            unit = units.get(successors[0]) if len(successors) == 1 else None
        if unit is None:
            out.append((units[unit_id], int(n)))
    return sorted(out, key=lambda pair: pair[0].id)


def change_events_naming(session: Session, unit_id: int) -> list[int]:
    """The sequence numbers of the `unit_changed` events that name the unit on either side,
    as the trail records them (the audit log's 部门 filter lists a department's unit changes
    with its own events). Changes are few: their events are read whole, by the action index."""
    found = []
    for seq, payload in session.execute(
        select(AuditEvent.seq, AuditEvent.payload).where(AuditEvent.action == "unit_changed")
    ):
        try:
            data = json.loads(payload or "{}")
        except ValueError:
            continue
        sides = [data.get(side) for side in ("from", "to")] if isinstance(data, dict) else []
        named = {s.get("id") for side in sides if isinstance(side, list) for s in side
                 if isinstance(s, dict)}  # fmt: skip
        if unit_id in named:
            found.append(int(seq))
    return found


def ancestors(graph: Mapping[int, Lineage], unit_id: int) -> list[int]:
    """Every unit the unit descends from (nearest first), without itself."""
    found: list[int] = []
    todo = list(graph.get(unit_id, Lineage()).predecessors)
    while todo:
        uid = todo.pop(0)
        if uid in found or uid == unit_id:
            continue
        found.append(uid)
        todo.extend(graph.get(uid, Lineage()).predecessors)
    return found


def name_on(unit: Unit, day: dt.date) -> str:
    """The unit's name on a day (its first name before any record)."""
    for n in unit.names:
        if (n.valid_from is None or n.valid_from <= day) and (
            n.valid_to is None or day < n.valid_to
        ):
            return n.name
    return unit.names[0].name if unit.names else ""


def proposed_units(session: Session) -> list[Unit]:
    """The units a new assessment assesses unless the admin says otherwise: every active unit
    (a merged unit is assessed as its one successor, a split one as each of its parts).

    Ordered as they last appeared (by department position), new units after them."""
    from workflow.models import Department

    active = [u for u in all_units(session) if u.status == "active"]
    rows = session.execute(
        select(Department.unit_id, Department.position, Department.assessment_id)
    ).all()
    graph = lineages(session)
    last: dict[int, tuple[int, int]] = {}
    for uid, pos, aid in rows:
        if uid not in last or aid > last[uid][0]:
            last[uid] = (aid, pos)

    def place(u: Unit) -> tuple[int, int, int]:
        if u.id in last:
            return (0, last[u.id][1], u.id)
        for a in ancestors(graph, u.id):  # where its nearest predecessor stood
            if a in last:
                return (0, last[a][1], u.id)
        return (1, 0, u.id)

    return sorted(active, key=place)


# -- year over year -----------------------------------------------------------------------
@dataclass(frozen=True)
class IndicatorScore:
    """One indicator's points of a unit in one year (None while not scored)."""

    code: str
    title: str
    max_points: Decimal
    score: Decimal | None


@dataclass(frozen=True)
class UnitYear:
    """A unit's result in one assessment: its own, or a predecessor's (`via`)."""

    year: int
    assessment_id: int
    department_id: int
    name: str
    total: Decimal
    converted: Decimal
    #: None while the department's items are not all scored (`workflow.results`).
    rank: int | None
    complete: bool
    via: Unit | None
    indicators: list[IndicatorScore]
    total_points: Decimal
    #: The year's results are published (公示 started): else its rank is 暂定, as the
    #: progress page says.
    published: bool = True


def unit_history(session: Session, unit: Unit, *, hide: Any = None) -> list[UnitYear]:
    """The unit's results across years, and its predecessors' (merged or split into it),
    marked with `via`; oldest year first. `hide(assessment)` → True blanks no figure but
    drops that year (a department user before publication)."""
    from workflow.models import Assessment, Department, Indicator, Item
    from workflow.notices import publication_started
    from workflow.results import assessment_results

    graph = lineages(session)
    chain = [unit.id, *ancestors(graph, unit.id)]
    deps = session.execute(
        select(Department, Assessment)
        .join(Assessment, Assessment.id == Department.assessment_id)
        .where(Department.unit_id.in_(chain))
        .order_by(Assessment.year, Assessment.id, Department.position)
    ).all()
    units = {u.id: u for u in session.scalars(select(Unit).where(Unit.id.in_(chain)))}
    out: list[UnitYear] = []
    tables: dict[int, Any] = {}
    for dep, assessment in deps:
        if hide is not None and hide(assessment):
            continue
        if assessment.id not in tables:
            tables[assessment.id] = assessment_results(session, assessment).by_department()
        row = tables[assessment.id][dep.id]
        items = session.execute(
            select(Indicator, Item.total, Item.state)
            .join(Item, Item.indicator_id == Indicator.id)
            .where(Item.department_id == dep.id)
            .order_by(Indicator.position)
        ).all()
        out.append(
            UnitYear(
                year=assessment.year,
                assessment_id=assessment.id,
                department_id=dep.id,
                name=dep.name,
                total=row.total,
                converted=row.converted,
                rank=row.rank,
                complete=row.items_scored == row.items_total,
                via=None if dep.unit_id == unit.id else units[dep.unit_id],
                indicators=[
                    IndicatorScore(
                        ind.code, ind.title, ind.max_points, total if state == "scored" else None
                    )
                    for ind, total, state in items
                ],
                total_points=assessment.total_points,
                published=publication_started(assessment),
            )
        )
    return out


def year_distribution(session: Session) -> list[tuple[int, int, list[Decimal]]]:
    """Per assessment (year, id): every department's total, for the office-wide spread."""
    from workflow.models import Assessment
    from workflow.results import assessment_results

    out = []
    for a in session.scalars(select(Assessment).order_by(Assessment.year, Assessment.id)):
        rows = assessment_results(session, a).rows
        out.append((a.year, a.id, sorted(r.total for r in rows)))
    return out


# -- a reorganisation from a file (the shipped 示例) -------------------------------------------
def apply_reorganisation(session: Session, path: Any, *, actor: User | None) -> list[UnitChange]:
    """Apply every change of a reorganisation file (YAML: `changes: [{kind, from: [names],
    to: [{name, full_name}], effective_on, document_no, reason}]`), in order, each checked and
    audited as any other change. Units are named as they are at the time of the change."""
    from pathlib import Path

    import yaml

    data = yaml.safe_load(Path(path).read_text("utf-8"))
    out = []
    for n, change in enumerate(data.get("changes") or [], start=1):
        ids = []
        for name in change.get("from") or []:
            unit = find_unit(session, str(name), active_only=True)
            if unit is None:
                raise NotFound(
                    "第 %(n)s 项调整的单位不存在：%(name)s",
                    code="unit_not_found",
                    params={"n": n, "name": name},
                )
            ids.append(unit.id)
        out.append(
            apply_change(
                session,
                kind=str(change.get("kind", "")),
                effective_on=str(change.get("effective_on", "")),
                document_no=change.get("document_no"),
                reason=change.get("reason"),
                from_ids=ids,
                to=change.get("to") or [],
                actor=actor,
            )
        )
    return out
